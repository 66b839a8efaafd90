//! Three nodes in one process, each with its own RocksDB store and its own `Cluster` server on
//! 127.0.0.1, hosting the same raft groups over the coalescing network (broker/src/cluster/).
//! Everything waits on openraft's metrics with a timeout, never on a sleep; the one fixed
//! duration is the idle window whose RPCs are counted.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::future::join_all;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::type_config::alias::LogIdOf;
use openraft::{Raft, ServerState};
use parking_lot::Mutex;
use rapidmq_broker::cluster::{
    Apply, GroupId, GroupNetwork, GroupStateMachine, LogStore, group_config, service::HEARTBEAT,
};
use rapidmq_broker::storage::{Cf, RocksStore, RocksTuning, StorageError, Store, WriteBatch};
use serde::{Deserialize, Serialize};
use support::{Host, WAIT, members};

const GROUPS: u64 = 50;
const NODES: u64 = 3;
/// Snapshot chunk size: tiny, so group 1's snapshot takes several.
const CHUNK: usize = 16;

/// A note to keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Note(String);

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

openraft::declare_raft_types!(
    Cfg:
        D = Note,
        R = usize,
);

type Machine = GroupStateMachine<Cfg, Notes>;

/// Keeps a group's notes in order, in memory (shared with the test) and under `Cf::Meta`.
struct Notes {
    group: GroupId,
    notes: Arc<Mutex<Vec<String>>>,
}

fn notes_prefix(group: GroupId) -> String {
    format!("test-note/{group:020}/")
}

impl Notes {
    /// The notes of `group` on disk, as a restarted node finds them.
    fn open(store: &dyn Store, group: GroupId) -> Notes {
        let prefix = notes_prefix(group);
        let upper = format!("test-note/{group:020}0");
        let notes = store
            .scan(Cf::Meta, prefix.as_bytes(), upper.as_bytes(), usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(_, value)| String::from_utf8(value.to_vec()).unwrap())
            .collect();
        Notes {
            group,
            notes: Arc::new(Mutex::new(notes)),
        }
    }
}

impl Apply<Cfg> for Notes {
    type Staged = usize;

    fn stage(&self) -> usize {
        self.notes.lock().len()
    }

    async fn write(
        &self,
        next: &mut usize,
        _log_id: &LogIdOf<Cfg>,
        data: &Note,
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        let key = format!("{}{:020}", notes_prefix(self.group), *next);
        batch.put(Cf::Meta, key.into_bytes(), data.0.clone().into_bytes());
        *next += 1;
        Ok(())
    }

    async fn apply(&mut self, _next: &mut usize, _log_id: &LogIdOf<Cfg>, data: Note) -> usize {
        let mut notes = self.notes.lock();
        notes.push(data.0);
        notes.len()
    }

    fn no_payload(&mut self, _log_id: &LogIdOf<Cfg>) -> usize {
        self.notes.lock().len()
    }

    fn snapshot(&self) -> Result<Vec<u8>, StorageError> {
        serde_json::to_vec(&*self.notes.lock()).map_err(|err| StorageError(err.to_string()))
    }

    fn write_restore(&self, snapshot: &[u8], batch: &mut WriteBatch) -> Result<(), StorageError> {
        let notes: Vec<String> =
            serde_json::from_slice(snapshot).map_err(|err| StorageError(err.to_string()))?;
        for (position, note) in notes.into_iter().enumerate() {
            let key = format!("{}{position:020}", notes_prefix(self.group));
            batch.put(Cf::Meta, key.into_bytes(), note.into_bytes());
        }
        Ok(())
    }

    async fn restore(&mut self, snapshot: &[u8]) -> Result<(), StorageError> {
        *self.notes.lock() =
            serde_json::from_slice(snapshot).map_err(|err| StorageError(err.to_string()))?;
        Ok(())
    }
}

/// One node: its store, its server, its groups.
struct Node {
    id: u64,
    host: Host,
    store: Arc<dyn Store>,
    rafts: BTreeMap<GroupId, Raft<Cfg, Machine>>,
    notes: BTreeMap<GroupId, Arc<Mutex<Vec<String>>>>,
}

impl Node {
    /// Starts node `id` on `store`: its server on `addr` (port 0 the first time, the same
    /// address on a restart) and every group, from what the store holds.
    async fn start(id: u64, store: Arc<dyn Store>, addr: SocketAddr) -> Node {
        let host = Host::start(id, addr).await;
        let config = Arc::new(group_config("test").validate().unwrap());
        let mut rafts = BTreeMap::new();
        let mut notes = BTreeMap::new();
        for group in 1..=GROUPS {
            let app = Notes::open(&*store, group);
            notes.insert(group, Arc::clone(&app.notes));
            // As a node wires its groups: an entry is applied only once the log wrote it.
            let mut machine = GroupStateMachine::open(Arc::clone(&store), group, app).unwrap();
            let log = LogStore::new(Arc::clone(&store), group);
            machine.follow_log(log.tail());
            let raft = Raft::new(
                id,
                Arc::clone(&config),
                GroupNetwork::new(id, group, host.peers.clone()).with_snapshot_chunk(CHUNK),
                log,
                machine,
            )
            .await
            .unwrap();
            host.groups.insert(group, Arc::new(raft.clone()));
            rafts.insert(group, raft);
        }
        Node {
            id,
            host,
            store,
            rafts,
            notes,
        }
    }

    /// Stops everything the node runs; its store stays, as a disk does.
    async fn stop(&mut self) {
        for raft in self.rafts.values() {
            raft.shutdown().await.unwrap();
        }
        self.rafts.clear();
        self.host.stop().await;
    }

    fn rpcs(&self) -> (u64, u64) {
        let traffic = self.host.peers.traffic();
        (
            traffic.rpcs.load(Ordering::Relaxed),
            traffic.messages.load(Ordering::Relaxed),
        )
    }
}

/// The leader of `group` as the running nodes agree on it, once they do.
async fn leader(nodes: &[Node], group: GroupId) -> u64 {
    let running: Vec<(u64, &Raft<Cfg, Machine>)> = nodes
        .iter()
        .filter_map(|n| n.rafts.get(&group).map(|raft| (n.id, raft)))
        .collect();
    support::leader(&running).await
}

/// Writes `note` to `group` through its leader, finding the leader again if it moved.
async fn write(nodes: &[Node], group: GroupId, note: String) -> u64 {
    for _ in 0..10 {
        let id = leader(nodes, group).await;
        let node = nodes.iter().find(|n| n.id == id).unwrap();
        match node.rafts[&group].client_write(Note(note.clone())).await {
            Ok(written) => return written.log_id.index,
            Err(err) => eprintln!("write to group {group} via node {id}: {err}; retrying"),
        }
    }
    panic!("no leader of group {group} took a write");
}

/// Writes `per_group` notes to every group, all groups at once, and waits until every running
/// node applied them.
async fn write_everywhere(nodes: &[Node], round: &str, per_group: usize) {
    let last: Vec<(GroupId, u64)> = join_all((1..=GROUPS).map(|group| async move {
        let mut last = 0;
        for i in 0..per_group {
            last = write(nodes, group, format!("{round}-{group}-{i}")).await;
        }
        (group, last)
    }))
    .await;
    for node in nodes.iter().filter(|n| !n.rafts.is_empty()) {
        for &(group, index) in &last {
            node.rafts[&group]
                .wait(Some(WAIT))
                .applied_index_at_least(Some(index), format!("node {} applied {group}", node.id))
                .await
                .unwrap();
        }
    }
}

fn assert_same_notes(nodes: &[Node], expect_per_group: usize) {
    for group in 1..=GROUPS {
        let first = nodes[0].notes[&group].lock().clone();
        assert_eq!(first.len(), expect_per_group, "group {group} on node 1");
        for node in &nodes[1..] {
            assert_eq!(
                *node.notes[&group].lock(),
                first,
                "group {group}: node {} applied the same notes as node 1",
                node.id
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_fail_over_catch_up_and_coalesce_heartbeats() {
    let dirs: Vec<tempfile::TempDir> = (0..NODES).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let store: Arc<dyn Store> =
            Arc::new(RocksStore::open(dir.path(), &RocksTuning::default()).unwrap());
        let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
        nodes.push(Node::start(i as u64 + 1, store, any_port).await);
    }

    // Every group is initialised on a different node in turn, so leadership starts spread.
    let members = members(nodes.iter().map(|n| &n.host));
    for group in 1..=GROUPS {
        let node = &nodes[(group % NODES) as usize];
        node.rafts[&group]
            .initialize(members.clone())
            .await
            .unwrap();
    }
    let started = Instant::now();
    let mut leaders = BTreeMap::new();
    for group in 1..=GROUPS {
        *leaders.entry(leader(&nodes, group).await).or_insert(0) += 1;
    }
    println!(
        "{GROUPS} groups elected leaders in {:?}: groups led per node {leaders:?}",
        started.elapsed()
    );

    write_everywhere(&nodes, "first", 3).await;
    assert_same_notes(&nodes, 3);

    // Idle: every group has a leader and nothing to write; only heartbeats flow.
    let terms: Vec<u64> = nodes[0]
        .rafts
        .values()
        .map(|r| r.metrics().borrow_watched().current_term)
        .collect();
    let before: Vec<(u64, u64)> = nodes.iter().map(Node::rpcs).collect();
    let window = Duration::from_secs(3);
    let idle_from = Instant::now();
    tokio::time::sleep(window).await; // the measured window, not a synchronisation
    let seconds = idle_from.elapsed().as_secs_f64();
    let after: Vec<(u64, u64)> = nodes.iter().map(Node::rpcs).collect();
    let rpcs: u64 = before.iter().zip(&after).map(|(b, a)| a.0 - b.0).sum();
    let messages: u64 = before.iter().zip(&after).map(|(b, a)| a.1 - b.1).sum();
    let links = (NODES * (NODES - 1)) as f64;
    let heartbeat_rate = 1.0 / HEARTBEAT.as_secs_f64();
    let rpc_rate = rpcs as f64 / seconds;
    let uncoalesced = GROUPS as f64 * (NODES - 1) as f64 * heartbeat_rate;
    println!(
        "idle {seconds:.2} s, {GROUPS} groups, {NODES} nodes: {rpc_rate:.1} RPCs/s carrying \
         {:.1} raft messages/s ({links} links x {heartbeat_rate:.2} heartbeats/s = {:.1}; \
         one RPC per group heartbeat would be {uncoalesced:.1}/s)",
        messages as f64 / seconds,
        links * heartbeat_rate
    );
    assert!(
        rpc_rate <= 3.0 * links * heartbeat_rate,
        "idle RPCs ({rpc_rate:.1}/s) are bounded by links x heartbeat rate, not by groups"
    );
    assert!(
        messages as f64 / seconds >= 0.5 * uncoalesced,
        "the heartbeats of every group were carried ({messages} messages)"
    );
    let terms_after: Vec<u64> = nodes[0]
        .rafts
        .values()
        .map(|r| r.metrics().borrow_watched().current_term)
        .collect();
    assert_eq!(terms, terms_after, "no election while idle");

    // Node 3 stops (server, groups, heartbeats); the other two elect leaders for the groups it
    // led and keep committing.
    let addr3 = nodes[2].host.addr;
    nodes[2].stop().await;
    let failover = Instant::now();
    write_everywhere(&nodes, "second", 2).await;
    println!(
        "every group committed on two nodes {:?} after node 3 stopped",
        failover.elapsed()
    );
    assert_same_notes(&nodes[..2], 5);
    for group in 1..=GROUPS {
        assert_eq!(nodes[2].notes[&group].lock().len(), 3, "node 3 was stopped");
    }

    // Group 1's leader snapshots and purges its log: node 3 can only catch up by a snapshot,
    // which goes in chunks; the purge deletes the entries (a metadata-like group's policy).
    let id = leader(&nodes[..2], 1).await;
    let raft = nodes.iter().find(|n| n.id == id).unwrap().rafts[&1].clone();
    let applied = raft.metrics().borrow_watched().last_applied.unwrap().index;
    raft.trigger().snapshot().await.unwrap();
    raft.wait(Some(WAIT))
        .metrics(
            |m| m.snapshot.as_ref().is_some_and(|s| s.index >= applied),
            "group 1 snapshotted",
        )
        .await
        .unwrap();
    raft.trigger().purge_log(applied).await.unwrap();
    raft.wait(Some(WAIT))
        .metrics(
            |m| m.purged.as_ref().is_some_and(|p| p.index >= applied),
            "group 1 purged its log",
        )
        .await
        .unwrap();
    let store = &nodes.iter().find(|n| n.id == id).unwrap().store;
    let (lower, upper) = (1u64.to_be_bytes(), 2u64.to_be_bytes());
    let entries = store.scan(Cf::RaftLog, &lower, &upper, usize::MAX).unwrap();
    assert!(
        entries.is_empty(),
        "purged entries deleted: {}",
        entries.len()
    );

    // Node 3 comes back on the same address from its own store and catches up.
    let store3 = Arc::clone(&nodes[2].store);
    nodes[2] = Node::start(3, store3, addr3).await;
    let back = Instant::now();
    for group in 1..=GROUPS {
        let index = nodes[0].rafts[&group]
            .metrics()
            .borrow_watched()
            .last_applied
            .unwrap()
            .index;
        nodes[2].rafts[&group]
            .wait(Some(WAIT))
            .applied_index_at_least(Some(index), format!("node 3 caught up in group {group}"))
            .await
            .unwrap();
    }
    println!(
        "node 3 caught up in every group {:?} after its restart",
        back.elapsed()
    );
    assert_same_notes(&nodes, 5);
    let installed = nodes[2].rafts[&1].metrics().borrow_watched().snapshot;
    assert!(
        installed.is_some_and(|s| s.index >= applied),
        "node 3 caught up group 1 by a snapshot: {installed:?}"
    );

    // Group 1's leader hands it to another node: the transfer travels on the peer queues, so
    // the target campaigns at once and the others vote for it, well before any follower's
    // election timeout (without it, a new leader comes only after one, and may be any node).
    let from = leader(&nodes, 1).await;
    let to = if from == 3 { 1 } else { 3 };
    let handing = Instant::now();
    let raft = &nodes.iter().find(|n| n.id == from).unwrap().rafts[&1];
    raft.trigger().transfer_leader(to).await.unwrap();
    nodes[to as usize - 1].rafts[&1]
        .wait(Some(WAIT))
        .metrics(
            |m| m.state == ServerState::Leader,
            format!("node {to} leads group 1"),
        )
        .await
        .unwrap();
    let took = handing.elapsed();
    println!("group 1 handed from node {from} to node {to} in {took:?}");
    let election_timeout = Duration::from_millis(group_config("test").election_timeout_min);
    assert!(
        took < election_timeout,
        "a transfer, not an election after a timeout: {took:?}"
    );
    assert_eq!(leader(&nodes, 1).await, to);

    write_everywhere(&nodes, "third", 1).await;
    assert_same_notes(&nodes, 6);
    for node in &mut nodes {
        node.stop().await;
    }
}
