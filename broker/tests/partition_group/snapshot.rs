//! A partition snapshot is a small record, built without reading a batch; its batches stream
//! from the leader's store while the leader goes on applying, and a trim racing the send still
//! leaves the new replica identical to the leader.

use openraft::ServerState;
use rapidmq_broker::cluster::keys::{self, StateKey};

use super::*;

/// Retained batches: at `CHUNK` bytes a chunk, the snapshot takes about a dozen chunks.
const RETAINED: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_streams_from_the_store_while_applies_go_on_and_a_trim_races_it() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = start_group(&dirs[..3]).await;
    let running: Running = Arc::new(RwLock::new(
        nodes
            .iter()
            .map(|n| (n.id, n.raft.clone().unwrap()))
            .collect(),
    ));
    let mut ends = Vec::new();
    for sequence in 0..RETAINED {
        match propose(&running, sized_append(1, sequence, 1000)).await {
            PartitionReply::Appended {
                base_offset, count, ..
            } => ends.push(base_offset + u64::from(count)),
            other => panic!("append {sequence}: {other:?}"),
        }
    }
    let leader_id = {
        let replicas = running.read().clone();
        let refs: Vec<_> = replicas.iter().map(|(id, raft)| (*id, raft)).collect();
        support::leader(&refs).await
    };
    let leader = nodes.iter().find(|n| n.id == leader_id).unwrap();
    let raft = leader.raft.clone().unwrap();
    let retained = leader.batches().await;

    // From now on the leader's batch reads hold after the first few: building the snapshot
    // must not need one (it would stop the state machine's task).
    leader.gate.close_after(6);
    let applied = raft.metrics().borrow_watched().last_applied.unwrap().index;
    raft.trigger().snapshot().await.unwrap();
    raft.wait(Some(WAIT))
        .metrics(
            |m| m.snapshot.as_ref().is_some_and(|s| s.index >= applied),
            "the leader snapshotted without reading a batch",
        )
        .await
        .unwrap();
    let stored = leader
        .store
        .get(Cf::RaftState, &keys::state(GROUP, StateKey::Snapshot))
        .unwrap()
        .unwrap();
    assert!(
        stored.len() < 512,
        "raft_state holds the snapshot's state, not its {} bytes of batches: {} bytes",
        leader.partition.bytes(),
        stored.len()
    );
    raft.trigger().purge_log(applied).await.unwrap();
    raft.wait(Some(WAIT))
        .metrics(
            |m| m.purged.as_ref().is_some_and(|p| p.index >= applied),
            "the leader purged its log",
        )
        .await
        .unwrap();

    // A fourth replica joins: the snapshot's send reads the batches and is held mid-way.
    let store: Arc<dyn Store> =
        Arc::new(RocksStore::open(dirs[3].path(), &RocksTuning::default()).unwrap());
    let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let late = Node::start(4, store, any_port).await;
    raft.add_learner(4, BasicNode::new(late.host.addr), false)
        .await
        .unwrap();
    let mut held = leader.gate.held();
    tokio::time::timeout(WAIT, held.wait_for(|n| *n > 0))
        .await
        .expect("the send reads batches from the store")
        .unwrap();

    // Meanwhile appends commit and apply, and retention cuts past what was sent so far.
    for sequence in RETAINED..RETAINED + 5 {
        let reply = propose(&running, sized_append(1, sequence, 1000)).await;
        assert!(
            matches!(reply, PartitionReply::Appended { .. }),
            "{reply:?}"
        );
    }
    let before = ends[RETAINED as usize / 2];
    let trimmed = propose(&running, PartitionCommand::Trim { before }).await;
    assert_eq!(trimmed, PartitionReply::Trimmed { log_start: before });
    assert_eq!(*held.borrow(), 1, "the send is still held");
    leader.gate.open();

    let last = raft.metrics().borrow_watched().last_applied.unwrap().index;
    let late_raft = late.raft.clone().unwrap();
    late_raft
        .wait(Some(WAIT))
        .applied_index_at_least(Some(last), "the late replica caught up")
        .await
        .unwrap();
    assert_eq!(
        late_raft.metrics().borrow_watched().state,
        ServerState::Learner
    );
    let installed: usize = late.contents(Cf::Log).iter().map(|(_, v)| v.len()).sum();
    assert!(
        installed > 4 * CHUNK,
        "installed from a snapshot of several chunks: {installed} bytes"
    );
    let now = leader.batches().await;
    assert_eq!(now.first().map(|b| b.0), Some(before));
    assert!(now.len() < retained.len() + 5);
    assert_eq!(
        late.batches().await,
        now,
        "the same batches at the same offsets"
    );
    assert_eq!(late.partition.log_start(), leader.partition.log_start());
    assert_eq!(
        late.partition.high_watermark(),
        leader.partition.high_watermark()
    );
    assert_eq!(late.partition.bytes(), leader.partition.bytes());

    nodes.push(late);
    for node in &mut nodes {
        node.stop().await;
    }
}
