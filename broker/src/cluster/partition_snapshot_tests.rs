//! Partition snapshots without raft: building one reads no batch and stays small; its batches
//! stream from the leader's store chunk by chunk; a trim racing the send and an abandoned
//! transfer leave the replica consistent.

use super::*;

/// `n` appends of a producer that is not idempotent, one message each.
fn appends(from: u64, n: u64) -> Vec<PartitionCommand> {
    (from..from + n)
        .map(|i| append(0, i, 1, 100 + i as i64))
        .collect()
}

/// Installs the snapshot `replica` was sealed with, both phases.
async fn install(store: &Arc<dyn Store>, replica: &mut PartitionGroup, snapshot: &[u8]) {
    let mut batch = WriteBatch::new();
    replica.write_restore(snapshot, &mut batch).unwrap();
    store.write(batch, true).unwrap();
    replica.restore(snapshot).await.unwrap();
}

#[tokio::test]
async fn a_snapshot_names_the_log_and_stays_small_however_much_is_retained() {
    let (store, mut leader) = replica();
    apply_in_runs(&*store, &mut leader, &appends(0, 300), 100).await;
    let snapshot = leader.snapshot().unwrap();
    assert!(
        leader.shared().bytes() > 8_000,
        "{}",
        leader.shared().bytes()
    );
    assert!(
        snapshot.len() < 32,
        "the snapshot is the partition's state, not its batches: {} bytes",
        snapshot.len()
    );
    assert!(chunks(&leader, &snapshot).len() > 50, "streamed in chunks");
}

#[tokio::test]
async fn a_trim_racing_the_send_leaves_the_replica_at_the_later_cut() {
    let (store, mut leader) = replica();
    apply_in_runs(&*store, &mut leader, &appends(0, 10), 10).await;
    let snapshot = leader.snapshot().unwrap();
    let source = leader.snapshot_source();
    let (first, next) = source.read(&snapshot, None, CHUNK).unwrap();
    let next = next.expect("more than one chunk");
    assert!(
        next < 6,
        "the first chunk ends before the trim's cut: {next}"
    );

    // Retention cuts at 6 while the snapshot is on its way: what is left streams from there.
    let trim = [PartitionCommand::Trim { before: 6 }];
    apply_after(&*store, &mut leader, &trim, 11).await;
    let (fresh_store, mut fresh) = replica();
    let sink = fresh.snapshot_sink();
    sink.stage(1, 0, &first).unwrap();
    let mut from = Some(next);
    let mut chunk = 1;
    while let Some(at) = from {
        let (data, next) = source.read(&snapshot, Some(at), CHUNK).unwrap();
        sink.stage(1, chunk, &data).unwrap();
        (from, chunk) = (next, chunk + 1);
    }
    sink.seal(1).unwrap();
    install(&fresh_store, &mut fresh, &snapshot).await;
    assert_eq!(
        fresh.shared().log_start(),
        6,
        "the first batch after the gap"
    );
    assert_eq!(fresh.shared().high_watermark(), 10);
    assert_eq!(fresh.shared().bytes(), leader.shared().bytes());
    assert_eq!(read_all(&fresh_store).await, read_all(&store).await);
    assert_eq!(
        contents(&*fresh_store, Cf::Log).len(),
        4,
        "nothing before it"
    );

    // The trim, a later entry, is applied after the install: already done.
    let replies = apply_after(&*fresh_store, &mut fresh, &trim, 11).await;
    assert_eq!(replies, [PartitionReply::Trimmed { log_start: 6 }]);
    assert_eq!(read_all(&fresh_store).await, read_all(&store).await);
}

/// What a replica's store holds and serves for its partition.
async fn state(
    store: &Arc<dyn Store>,
) -> (Vec<(Vec<u8>, Bytes)>, Vec<(Vec<u8>, Bytes)>, Vec<Read>) {
    (
        contents(&**store, Cf::Log),
        contents(&**store, Cf::Index),
        read_all(store).await,
    )
}

#[tokio::test]
async fn an_abandoned_transfer_leaves_the_replica_serving_its_old_state() {
    let (store, mut leader) = replica();
    apply_in_runs(&*store, &mut leader, &appends(0, 5), 5).await;
    let first = leader.snapshot().unwrap();
    let (replica_store, mut replica) = replica();
    transfer(&leader, &replica, &first, 1);
    install(&replica_store, &mut replica, &first).await;
    apply_after(&*store, &mut leader, &appends(5, 10), 6).await;
    let second = leader.snapshot().unwrap();
    let chunks = chunks(&leader, &second);
    assert!(chunks.len() >= 5, "{} chunks", chunks.len());

    let before = state(&replica_store).await;
    // A gap abandons the transfer: what it staged goes, what the replica served stays.
    let sink = replica.snapshot_sink();
    sink.stage(2, 0, &chunks[0]).unwrap();
    sink.stage(2, 1, &chunks[1]).unwrap();
    sink.stage(2, 2, &chunks[2]).unwrap();
    assert!(sink.stage(2, 4, &chunks[4]).is_err(), "a chunk gap");
    assert!(sink.stage(2, 3, &chunks[3]).is_err(), "abandoned");
    assert_eq!(state(&replica_store).await, before);
    assert_eq!(replica.shared().high_watermark(), 5);
    let mut staged_again = WriteBatch::new();
    assert!(
        replica.write_restore(&second, &mut staged_again).is_err(),
        "an abandoned transfer cannot be installed"
    );

    // A sender that stopped mid-way: the next transfer replaces its staged batches.
    sink.stage(3, 0, &chunks[0]).unwrap();
    sink.stage(3, 1, &chunks[1]).unwrap();
    sink.stage(3, 2, &chunks[2]).unwrap();
    sink.stage(4, 0, &chunks[0]).unwrap();
    sink.abandon(4).unwrap();
    assert_eq!(state(&replica_store).await, before);

    // A receiver that crashed mid-transfer cleans up when its group opens again.
    for (chunk, data) in chunks[..chunks.len() - 1].iter().enumerate() {
        sink.stage(6, chunk as u64, data).unwrap();
    }
    assert_ne!(state(&replica_store).await.0, before.0, "staged in Cf::Log");
    let reopened = PartitionGroup::open(Arc::clone(&replica_store), 7, 0, options()).unwrap();
    assert_eq!(state(&replica_store).await, before);
    let record = keys::state(GROUP, StateKey::SnapshotStaging);
    assert_eq!(replica_store.get(Cf::RaftState, &record).unwrap(), None);
    drop(reopened);

    // An install without its transfer is refused; a whole transfer installs.
    let mut batch = WriteBatch::new();
    assert!(replica.write_restore(&second, &mut batch).is_err());
    transfer(&leader, &replica, &second, 5);
    install(&replica_store, &mut replica, &second).await;
    assert_eq!(read_all(&replica_store).await, read_all(&store).await);
    assert_eq!(replica.shared().high_watermark(), 15);
}
