//! One partition group on three nodes in one process (own RocksDB store and `Cluster` server
//! each, on 127.0.0.1): idempotent producers append through the leader, the leader stops
//! mid-stream, the producers retry what was not acked to the new leader, the old leader comes
//! back and catches up. Every replica must end with the same batches, index and high watermark,
//! no acked batch lost, none stored twice, offsets contiguous, each batch only in the raft log.
//! A replica that joins after the leader snapshotted and purged its log catches up by a
//! snapshot, sent in chunks, and serves every retained batch at the same offsets. Waits are on
//! raft metrics and on acks, never on a sleep.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::{BasicNode, Raft};
use parking_lot::RwLock;
use rapidmq_broker::cluster::partition_group::{
    AppendCommand, GroupOptions, PartitionCommand, PartitionConfig, PartitionGroup, PartitionReply,
};
use rapidmq_broker::cluster::{GroupNetwork, GroupStateMachine, LogStore, group_config};
use rapidmq_broker::engine::{
    AckDurability, ConsumerState, PartitionEntry, PartitionSettings, PartitionShared, TailBudget,
};
use rapidmq_broker::storage::{Cf, RocksStore, RocksTuning, Store};
use support::gate::{Gate, Gated};
use support::{Host, WAIT, members};
use tokio::sync::watch;

/// An fsync topic without msg-id dedup.
const FSYNC: PartitionSettings = PartitionSettings {
    ack: AckDurability::Fsync,
    dedup_window_ms: 0,
};

const GROUP: u64 = 1;
const TOPIC: u32 = 9;
const PRODUCERS: u64 = 4;
const BATCHES: u64 = 30;
/// Acked batches (all producers) after which the leader is stopped.
const STOP_LEADER_AFTER: u64 = 40;
/// Snapshot chunk size: every snapshot of these tests takes several.
const CHUNK: usize = 4096;

type Machine = GroupStateMachine<PartitionConfig, PartitionGroup>;

/// This test's group carries appends only: no subscription takes consumer entries.
#[derive(Debug)]
struct NoSubscriptions;

impl ConsumerState for NoSubscriptions {
    fn applied(&self, _entry: &PartitionEntry) {}

    fn committed(&self, _topic_id: u32, _partition: u32, _subscription: &str) -> Option<u64> {
        None
    }
}

/// One replica: its host, its store, its raft (while running), its partition as readers see it.
struct Node {
    id: u64,
    host: Host,
    store: Arc<dyn Store>,
    raft: Option<Raft<PartitionConfig, Machine>>,
    partition: Arc<PartitionShared>,
    /// Holds the batch reads of `store` when closed.
    gate: Arc<Gate>,
}

impl Node {
    async fn start(id: u64, store: Arc<dyn Store>, addr: SocketAddr) -> Node {
        let host = Host::start(id, addr).await;
        let gate = Arc::new(Gate::default());
        let store: Arc<dyn Store> = Arc::new(Gated {
            inner: store,
            gate: Arc::clone(&gate),
        });
        let options = GroupOptions {
            group: GROUP,
            settings: FSYNC,
            tail_budget: TailBudget::new(1 << 20),
            tenant_storage: Arc::default(),
            producer_state_ttl_ms: 3_600_000,
            consumers: Arc::new(NoSubscriptions),
        };
        let app = PartitionGroup::open(Arc::clone(&store), TOPIC, 0, options).unwrap();
        let partition = Arc::clone(app.shared());
        let (source, sink) = (app.snapshot_source(), app.snapshot_sink());
        // As a node wires its groups (`cluster/partitions.rs`): the state machine applies an
        // entry only once the log wrote it, so no index record reaches the store before the
        // batch it points at (a replica read afresh from the store then sees every applied one).
        let mut machine = GroupStateMachine::open(Arc::clone(&store), GROUP, app).unwrap();
        let log = LogStore::for_partition(Arc::clone(&store), GROUP);
        machine.follow_log(log.tail());
        let config = Arc::new(group_config("test").validate().unwrap());
        let raft = Raft::new(
            id,
            config,
            GroupNetwork::new(id, GROUP, host.peers.clone())
                .with_snapshot_chunk(CHUNK)
                .with_snapshot_source(source),
            log,
            machine,
        )
        .await
        .unwrap();
        host.groups.insert(GROUP, Arc::new(raft.clone()));
        host.groups.insert_snapshot_sink(GROUP, sink);
        Node {
            id,
            host,
            store,
            raft: Some(raft),
            partition,
            gate,
        }
    }

    async fn stop(&mut self) {
        if let Some(raft) = self.raft.take() {
            raft.shutdown().await.unwrap();
        }
        self.host.stop().await;
    }

    /// Every batch a reader gets from offset 0 `(base offset, count, payload)`, from the store
    /// (a partition opened afresh: its tail cache is empty).
    async fn batches(&self) -> Vec<(u64, u32, Bytes)> {
        let shared = PartitionShared::open(
            TOPIC,
            0,
            Arc::clone(&self.store),
            true,
            TailBudget::new(1 << 20),
            Arc::default(),
            FSYNC,
        )
        .unwrap();
        let mut out = Vec::new();
        let mut from = 0;
        loop {
            let batches = shared.read(from, 1000, usize::MAX).await.unwrap();
            let Some(last) = batches.last() else {
                return out;
            };
            from = last.end_offset();
            out.extend(
                batches
                    .iter()
                    .map(|b| (b.base_offset, b.count, b.payload.clone())),
            );
        }
    }

    /// `(key, value)` of every entry of the partition in `cf`.
    fn contents(&self, cf: Cf) -> Vec<(Vec<u8>, Bytes)> {
        let lower = [TOPIC.to_be_bytes(), 0u32.to_be_bytes()].concat();
        let upper = [TOPIC.to_be_bytes(), 1u32.to_be_bytes()].concat();
        self.store.scan(cf, &lower, &upper, usize::MAX).unwrap()
    }
}

/// The running replicas, as producers find them.
type Running = Arc<RwLock<Vec<(u64, Raft<PartitionConfig, Machine>)>>>;

/// Proposes `command` at the leader until one applies it, finding the leader again after any
/// error (a stopped leader, a leader change, a follower asked).
async fn propose(running: &Running, command: PartitionCommand) -> PartitionReply {
    for _ in 0..20 {
        let replicas = running.read().clone();
        let refs: Vec<(u64, &Raft<PartitionConfig, Machine>)> =
            replicas.iter().map(|(id, raft)| (*id, raft)).collect();
        let leader = match support::try_leader(&refs).await {
            Ok(leader) => leader,
            Err(err) => {
                eprintln!("finding the leader: {err}; retrying");
                continue;
            }
        };
        let (_, raft) = refs.iter().find(|(id, _)| *id == leader).unwrap();
        match raft.client_write(command.clone()).await {
            Ok(written) => return written.data,
            Err(err) => eprintln!("propose via node {leader}: {err}; retrying"),
        }
    }
    panic!("no leader applied {command}");
}

fn append(producer_id: u64, sequence: u64) -> PartitionCommand {
    sized_append(producer_id, sequence, 0)
}

/// An append whose payload is padded to at least `len` bytes.
fn sized_append(producer_id: u64, sequence: u64, len: usize) -> PartitionCommand {
    let mut payload = format!("producer {producer_id} sequence {sequence}");
    while payload.len() < len {
        payload.push('.');
    }
    PartitionCommand::Append(AppendCommand {
        payload: Bytes::from(payload),
        count: 1 + (sequence % 3) as u32,
        flags: 0,
        producer_id,
        base_sequence: (0..sequence).map(|s| 1 + s % 3).sum(),
        sequence_span: 1 + (sequence % 3) as u32,
        deduplicated: Vec::new(),
        extras: Vec::new(),
        value_bytes: None,
        append_time_ms: 1_000 + sequence as i64,
    })
}

/// One producer: its batches in order, one in flight, each retried until acked. Returns the
/// acked `(base_offset, count)` per batch.
async fn produce(running: Running, producer_id: u64, acked: watch::Sender<u64>) -> Vec<(u64, u32)> {
    let mut offsets = Vec::new();
    for sequence in 0..BATCHES {
        match propose(&running, append(producer_id, sequence)).await {
            PartitionReply::Appended {
                base_offset, count, ..
            } => offsets.push((base_offset, count)),
            other => panic!("producer {producer_id} batch {sequence}: {other:?}"),
        }
        acked.send_modify(|n| *n += 1);
    }
    offsets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_agree_and_retries_after_a_leader_change_are_stored_once() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let store: Arc<dyn Store> =
            Arc::new(RocksStore::open(dir.path(), &RocksTuning::default()).unwrap());
        let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
        nodes.push(Node::start(i as u64 + 1, store, any_port).await);
    }
    let members = members(nodes.iter().map(|n| &n.host));
    nodes[0]
        .raft
        .as_ref()
        .unwrap()
        .initialize(members)
        .await
        .unwrap();
    let running: Running = Arc::new(RwLock::new(
        nodes
            .iter()
            .map(|n| (n.id, n.raft.clone().unwrap()))
            .collect(),
    ));

    // Producers append concurrently; once some are acked, the leader stops mid-stream.
    let (acked, mut acked_rx) = watch::channel(0u64);
    let producers: Vec<_> = (1..=PRODUCERS)
        .map(|id| tokio::spawn(produce(Arc::clone(&running), id, acked.clone())))
        .collect();
    // Bounded, so a producer that failed ends the test instead of hanging it.
    tokio::time::timeout(4 * WAIT, acked_rx.wait_for(|n| *n >= STOP_LEADER_AFTER))
        .await
        .expect("producers make progress")
        .unwrap();
    let old_leader = {
        let replicas = running.read().clone();
        let refs: Vec<_> = replicas.iter().map(|(id, raft)| (*id, raft)).collect();
        support::leader(&refs).await
    };
    running.write().retain(|(id, _)| *id != old_leader);
    let stopped = nodes.iter().position(|n| n.id == old_leader).unwrap();
    eprintln!("stopping leader {old_leader}");
    let addr = nodes[stopped].host.addr;
    nodes[stopped].stop().await;

    eprintln!("stopped leader {old_leader}");
    let mut acks: BTreeMap<u64, Vec<(u64, u32)>> = BTreeMap::new();
    for (id, producer) in (1..=PRODUCERS).zip(join_all(producers).await) {
        acks.insert(id, producer.unwrap());
    }
    assert_eq!(*acked_rx.borrow(), PRODUCERS * BATCHES);

    // A producer whose ack got lost retries to the new leader: the original offsets come back.
    let (&producer, offsets) = acks.iter().next().unwrap();
    let last = BATCHES - 1;
    let retried = propose(&running, append(producer, last)).await;
    let (base_offset, count) = offsets[last as usize];
    assert!(
        matches!(
            retried,
            PartitionReply::Appended { base_offset: b, count: c, duplicate: true, .. }
                if b == base_offset && c == count
        ),
        "a retry of a stored batch is answered with its original offsets: {retried:?}"
    );

    // The old leader comes back from its store and catches up.
    let store = Arc::clone(&nodes[stopped].store);
    nodes[stopped] = Node::start(old_leader, store, addr).await;
    // The leader applied every acked write; a follower may still lag it, so waiting for a
    // follower's index would let the comparison below race the last entries.
    let last_applied = {
        let replicas = running.read().clone();
        let refs: Vec<_> = replicas.iter().map(|(id, raft)| (*id, raft)).collect();
        let leader = support::leader(&refs).await;
        let (_, raft) = refs.iter().find(|(id, _)| *id == leader).unwrap();
        raft.metrics().borrow_watched().last_applied.unwrap().index
    };
    for node in &nodes {
        node.raft
            .as_ref()
            .unwrap()
            .wait(Some(WAIT))
            .applied_index_at_least(Some(last_applied), format!("node {} applied", node.id))
            .await
            .unwrap();
    }

    // Every replica holds the same batches, index and high watermark, the batches only in the
    // raft log.
    let log = nodes[0].batches().await;
    let index = nodes[0].contents(Cf::Index);
    let high_watermark = nodes[0].partition.high_watermark();
    for node in &nodes {
        assert!(
            node.contents(Cf::Log).is_empty(),
            "no Cf::Log copy on node {}",
            node.id
        );
        assert_eq!(node.batches().await, log, "batches on node {}", node.id);
        assert_eq!(
            node.contents(Cf::Index),
            index,
            "Cf::Index on node {}",
            node.id
        );
        assert_eq!(node.partition.high_watermark(), high_watermark);
    }

    // Each batch is stored once, offsets are contiguous from 0, and every ack points at it.
    assert_eq!(
        log.len() as u64,
        PRODUCERS * BATCHES,
        "no batch stored twice"
    );
    let mut next = 0;
    let mut payloads = BTreeSet::new();
    let mut stored_at = BTreeMap::new();
    for (base_offset, count, payload) in &log {
        assert_eq!(*base_offset, next, "offsets are contiguous");
        next = base_offset + u64::from(*count);
        assert!(payloads.insert(payload.clone()), "stored once");
        stored_at.insert(*base_offset, (payload.clone(), *count));
    }
    assert_eq!(next, high_watermark);
    for (producer, offsets) in &acks {
        for (sequence, (base_offset, count)) in offsets.iter().enumerate() {
            let (payload, stored_count) = &stored_at[base_offset];
            assert_eq!(
                payload.as_ref(),
                format!("producer {producer} sequence {sequence}").as_bytes(),
                "the acked offset holds the acked batch"
            );
            assert_eq!(stored_count, count);
        }
    }
    for node in &mut nodes {
        node.stop().await;
    }
}

/// Starts nodes with fresh stores (in `dirs`) and initializes the group on them.
async fn start_group(dirs: &[tempfile::TempDir]) -> Vec<Node> {
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let store: Arc<dyn Store> =
            Arc::new(RocksStore::open(dir.path(), &RocksTuning::default()).unwrap());
        let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
        nodes.push(Node::start(i as u64 + 1, store, any_port).await);
    }
    let members = members(nodes.iter().map(|n| &n.host));
    let first = nodes[0].raft.as_ref().unwrap();
    first.initialize(members).await.unwrap();
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_joins_after_a_purge_catches_up_by_a_chunked_snapshot() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = start_group(&dirs[..3]).await;
    let running: Running = Arc::new(RwLock::new(
        nodes
            .iter()
            .map(|n| (n.id, n.raft.clone().unwrap()))
            .collect(),
    ));
    for sequence in 0..40 {
        let reply = propose(&running, sized_append(1, sequence, 300)).await;
        assert!(matches!(
            reply,
            PartitionReply::Appended {
                duplicate: false,
                ..
            }
        ));
    }
    // Retention drops the first batches (those ending at or before offset 20).
    let trimmed = propose(&running, PartitionCommand::Trim { before: 20 }).await;
    let PartitionReply::Trimmed { log_start } = trimmed else {
        panic!("trim: {trimmed:?}");
    };
    assert!(log_start > 0 && log_start <= 20);

    // The leader snapshots and purges its log: the entries of retained batches stay.
    let leader_id = {
        let replicas = running.read().clone();
        let refs: Vec<_> = replicas.iter().map(|(id, raft)| (*id, raft)).collect();
        support::leader(&refs).await
    };
    let leader = nodes.iter().find(|n| n.id == leader_id).unwrap();
    let raft = leader.raft.clone().unwrap();
    let applied = raft.metrics().borrow_watched().last_applied.unwrap().index;
    raft.trigger().snapshot().await.unwrap();
    raft.wait(Some(WAIT))
        .metrics(
            |m| m.snapshot.as_ref().is_some_and(|s| s.index >= applied),
            "the leader snapshotted",
        )
        .await
        .unwrap();
    raft.trigger().purge_log(applied).await.unwrap();
    raft.wait(Some(WAIT))
        .metrics(
            |m| m.purged.as_ref().is_some_and(|p| p.index >= applied),
            "the leader purged its log",
        )
        .await
        .unwrap();
    let retained = leader.batches().await;
    assert_eq!(retained.first().map(|b| b.0), Some(log_start));
    let retained_offsets: u64 = retained.iter().map(|b| u64::from(b.1)).sum();
    assert_eq!(
        log_start + retained_offsets,
        leader.partition.high_watermark()
    );
    let (lower, upper) = (GROUP.to_be_bytes(), (GROUP + 1).to_be_bytes());
    let raft_log = leader
        .store
        .scan(Cf::RaftLog, &lower, &upper, usize::MAX)
        .unwrap();
    assert!(
        raft_log.len() >= retained.len(),
        "the purge kept the entries of the retained batches ({} entries, {} batches)",
        raft_log.len(),
        retained.len()
    );

    // A fourth replica joins: the leader's log starts after the purge, so a snapshot it is.
    let store: Arc<dyn Store> =
        Arc::new(RocksStore::open(dirs[3].path(), &RocksTuning::default()).unwrap());
    let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let late = Node::start(4, store, any_port).await;
    raft.add_learner(4, BasicNode::new(late.host.addr), true)
        .await
        .unwrap();
    let late_raft = late.raft.clone().unwrap();
    late_raft
        .wait(Some(WAIT))
        .applied_index_at_least(Some(applied), "the late replica caught up")
        .await
        .unwrap();
    let installed: usize = late.contents(Cf::Log).iter().map(|(_, v)| v.len()).sum();
    assert!(
        installed > 2 * CHUNK,
        "the snapshot took several chunks: {installed} bytes of batches"
    );
    assert_eq!(
        late.batches().await,
        retained,
        "every retained batch at its offset"
    );
    assert_eq!(late.partition.log_start(), log_start);

    // Appends after the join reach it through the log; its reads cross from the installed
    // batches to the raft log's.
    let reply = propose(&running, sized_append(1, 40, 300)).await;
    let PartitionReply::Appended { base_offset, .. } = reply else {
        panic!("append: {reply:?}");
    };
    let mut high_watermark = late.partition.watch_high_watermark();
    tokio::time::timeout(WAIT, high_watermark.wait_for(|hw| *hw > base_offset))
        .await
        .expect("the late replica applies the append")
        .unwrap();
    let after = late.batches().await;
    assert_eq!(after.last().map(|b| b.0), Some(base_offset));
    assert_eq!(after, leader.batches().await);

    nodes.push(late);
    for node in &mut nodes {
        node.stop().await;
    }
}

#[path = "partition_group/joint.rs"]
mod joint;
#[path = "partition_group/snapshot.rs"]
mod snapshot;
