//! Partition group state machines applied directly (no raft): replicas that split the same
//! committed entries into different runs end in the same state; each batch is stored once, in
//! the raft log, and reads serve the bytes a single-node partition would; consumer entries
//! apply alike everywhere and travel in snapshots.

use bytes::BufMut;
use lru::LruCache;
use openraft::entry::RaftEntry;
use openraft::storage::RaftLogStorage;

use super::*;
use crate::cluster::LogStore;
use crate::engine::{
    AckDurability, ConsumerChange, TailBudget, decode_offset, keys as engine_keys,
};
use crate::storage::MemStore;

/// An fsync topic without msg-id dedup.
const FSYNC: PartitionSettings = PartitionSettings {
    ack: AckDurability::Fsync,
    dedup_window_ms: 0,
};

const GROUP: GroupId = 42;

/// The consumer entries a replica handed to the engine, in order.
#[derive(Debug, Default)]
struct Recorded(parking_lot::Mutex<Vec<PartitionEntry>>);

impl ConsumerState for Recorded {
    fn applied(&self, entry: &PartitionEntry) {
        self.0.lock().push(entry.clone());
    }

    /// Records only: no test here reads offsets through it.
    fn committed(&self, _topic_id: u32, _partition: u32, _subscription: &str) -> Option<u64> {
        None
    }
}

fn options() -> GroupOptions {
    GroupOptions {
        group: GROUP,
        settings: FSYNC,
        tail_budget: TailBudget::new(1 << 20),
        tenant_storage: Arc::default(),
        producer_state_ttl_ms: 60_000,
        consumers: Arc::new(Recorded::default()),
    }
}

fn replica() -> (Arc<dyn Store>, PartitionGroup) {
    let (store, group, _) = recorded_replica();
    (store, group)
}

/// A replica, and what it hands to the engine's subscriptions.
fn recorded_replica() -> (Arc<dyn Store>, PartitionGroup, Arc<Recorded>) {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let recorded = Arc::new(Recorded::default());
    let options = GroupOptions {
        consumers: Arc::clone(&recorded) as Arc<dyn ConsumerState>,
        ..options()
    };
    let group = PartitionGroup::open(Arc::clone(&store), 7, 0, options).unwrap();
    (store, group, recorded)
}

fn append(producer_id: u64, base_sequence: u64, count: u32, time: i64) -> PartitionCommand {
    PartitionCommand::Append(AppendCommand {
        payload: Bytes::from(format!("batch {producer_id}/{base_sequence}")),
        count,
        flags: 0,
        producer_id,
        base_sequence,
        sequence_span: count,
        deduplicated: Vec::new(),
        extras: Vec::new(),
        value_bytes: None,
        append_time_ms: time,
    })
}

fn log_id(index: u64) -> LogIdOf<PartitionConfig> {
    openraft::testing::log_id::<PartitionConfig>(1, 0, index)
}

/// Applies `commands` in runs of `run_len` entries, as `GroupStateMachine` does: every write of
/// a run into one batch, the batch written, then every apply. Entry `i` (from 0) is raft index
/// `i + 1`, appended to the raft log first, as the log store does.
async fn apply_in_runs(
    store: &dyn Store,
    group: &mut PartitionGroup,
    commands: &[PartitionCommand],
    run_len: usize,
) -> Vec<PartitionReply> {
    let mut replies = Vec::new();
    for (chunk_index, chunk) in commands.chunks(run_len).enumerate() {
        let first = (chunk_index * run_len) as u64 + 1;
        let ids: Vec<_> = (0..chunk.len() as u64).map(|i| log_id(first + i)).collect();
        let mut entries = WriteBatch::new();
        for (command, id) in chunk.iter().zip(&ids) {
            let entry = EntryOf::<PartitionConfig>::new_normal(*id, command.clone());
            let key = keys::entry(GROUP, id.index).to_vec();
            entries.put(Cf::RaftLog, key, encode(&entry).unwrap());
        }
        store.write(entries, true).unwrap();
        let mut run = group.stage();
        let mut batch = WriteBatch::new();
        for (command, id) in chunk.iter().zip(&ids) {
            group
                .write(&mut run, id, command, &mut batch)
                .await
                .unwrap();
        }
        store.write(batch, false).unwrap();
        for (command, id) in chunk.iter().zip(&ids) {
            replies.push(group.apply(&mut run, id, command.clone()).await);
        }
    }
    replies
}

fn contents(store: &dyn Store, cf: Cf) -> Vec<(Vec<u8>, Bytes)> {
    store
        .scan(cf, &log_key(7, 0, 0), &log_key(7, 0, u64::MAX), usize::MAX)
        .unwrap()
}

#[tokio::test]
async fn a_trim_leaves_the_same_log_start_on_every_replica_however_runs_are_cut() {
    let commands = vec![
        append(0, 0, 3, 100),
        append(11, 0, 2, 101),
        append(11, 2, 4, 102),
        append(12, 0, 1, 103),
        // Mid-batch cutoff: only whole batches ending at or before 6 go (offsets 0..5).
        PartitionCommand::Trim { before: 6 },
        append(11, 6, 2, 104),
        append(11, 2, 4, 105), // a retry: a duplicate with its original offsets
        PartitionCommand::Trim { before: 9 },
        append(0, 0, 4, 106),
    ];
    let mut outcomes = Vec::new();
    for run_len in [1, 2, 3, commands.len()] {
        let (store, mut group) = replica();
        let replies = apply_in_runs(&*store, &mut group, &commands, run_len).await;
        let shared = group.shared();
        outcomes.push((
            replies,
            shared.log_start(),
            shared.high_watermark(),
            contents(&*store, Cf::Log),
            contents(&*store, Cf::Index),
        ));
    }
    let (replies, log_start, high_watermark, log, index) = &outcomes[0];
    assert_eq!(*log_start, 9, "batches [0,3) [3,5) [5,9) were trimmed");
    assert_eq!(*high_watermark, 16);
    assert_eq!(
        replies[4],
        PartitionReply::Trimmed { log_start: 5 },
        "the batch [5,9) straddles the first cutoff and stays"
    );
    assert_eq!(
        replies[6],
        PartitionReply::Appended {
            base_offset: 5,
            count: 4,
            append_time_ms: 102,
            duplicate: true,
            deduplicated: Vec::new(),
        }
    );
    assert!(log.is_empty(), "each batch is stored once, in the raft log");
    assert_eq!(index.len(), 3, "[9,10) [10,12) [12,16) remain");
    for (i, other) in outcomes.iter().enumerate().skip(1) {
        assert_eq!(&other.0, replies, "replies of replica {i}");
        assert_eq!(other.1, *log_start, "log start of replica {i}");
        assert_eq!(other.2, *high_watermark, "high watermark of replica {i}");
        assert_eq!(&other.3, log, "Cf::Log of replica {i}");
        assert_eq!(&other.4, index, "Cf::Index of replica {i}");
    }
}

/// A node that proposed a producer's first batch can lose the leadership before it commits
/// and forward the producer's next batch to the new leader (bench-cluster, 3 partitions): the
/// group must not take that one as the first of a new producer, which would store it ahead of
/// the first and make the first's retry `OUT_OF_ORDER_SEQUENCE` ("stored long ago").
#[tokio::test]
async fn a_producer_the_group_does_not_know_must_start_at_sequence_zero() {
    let (store, mut group) = replica();
    let commands = [
        append(31, 1000, 1000, 10), // ahead of its predecessor: refused
        append(31, 0, 1000, 11),    // the first batch, retried
        append(31, 1000, 1000, 12), // the second, retried
    ];
    let replies = apply_in_runs(&*store, &mut group, &commands, 3).await;
    assert!(
        matches!(&replies[0], PartitionReply::OutOfOrder(text) if text.contains("0 was expected")),
        "{:?}",
        replies[0]
    );
    let offsets: Vec<_> = replies[1..]
        .iter()
        .map(|reply| match reply {
            PartitionReply::Appended {
                base_offset,
                duplicate: false,
                ..
            } => *base_offset,
            other => panic!("not appended: {other:?}"),
        })
        .collect();
    assert_eq!(offsets, [0, 1000]);

    // A producer whose state expired is taken at whatever sequence it goes on from.
    let late = 12 + 60_000 + 1;
    let replies = apply_after(&*store, &mut group, &[append(31, 7000, 5, late)], 4).await;
    assert!(
        matches!(
            replies[0],
            PartitionReply::Appended {
                base_offset: 2000,
                ..
            }
        ),
        "{:?}",
        replies[0]
    );
}

#[tokio::test]
async fn a_restored_snapshot_keeps_offsets_log_start_and_producer_dedup() {
    let (store, mut leader) = replica();
    let commands = [
        append(21, 0, 2, 10),
        append(21, 2, 3, 11),
        PartitionCommand::Trim { before: 2 },
    ];
    apply_in_runs(&*store, &mut leader, &commands, 2).await;
    let snapshot = leader.snapshot().unwrap();

    let (fresh_store, mut fresh) = replica();
    transfer(&leader, &fresh, &snapshot, 1);
    let mut batch = WriteBatch::new();
    fresh.write_restore(&snapshot, &mut batch).unwrap();
    fresh_store.write(batch, true).unwrap();
    fresh.restore(&snapshot).await.unwrap();
    assert_eq!(fresh.shared().log_start(), 2);
    assert_eq!(fresh.shared().high_watermark(), 5);

    // The producer's retry is a duplicate on the restored replica; its next batch goes on at 5.
    let more = [append(21, 2, 3, 12), append(21, 5, 1, 13)];
    let replies = apply_in_runs(&*fresh_store, &mut fresh, &more, 2).await;
    assert!(matches!(
        replies[0],
        PartitionReply::Appended {
            base_offset: 2,
            duplicate: true,
            ..
        }
    ));
    assert!(matches!(
        replies[1],
        PartitionReply::Appended {
            base_offset: 5,
            duplicate: false,
            ..
        }
    ));
}

fn consumer(subscription: &str, change: ConsumerChange) -> PartitionEntry {
    PartitionEntry::new(7, 0, subscription, change)
}

/// Every committed offset `store` holds for topic 7, `(subscription, partition, offset)`.
fn stored_cursors(store: &dyn Store) -> Vec<(String, u32, u64)> {
    let (from, to) = (engine_keys::topic_start(7), engine_keys::topic_end(7));
    store
        .scan(Cf::Cursors, &from, &to, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(key, value)| {
            let (name, partition) = engine_keys::parse_cursor_key(&key).unwrap();
            (name.to_string(), partition, decode_offset(&value).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn consumer_entries_apply_the_same_on_every_replica_and_travel_in_a_snapshot() {
    let commits = vec![
        consumer("readers", ConsumerChange::Commit(2)),
        consumer("audit", ConsumerChange::Commit(1)),
    ];
    // The leader's queue ack state after the seek (raft index 4, its epoch): offset 4 acked
    // on its first attempt.
    let acked = queue_state(4, &[4], 4);
    let later = vec![
        consumer("readers", ConsumerChange::Commit(5)),
        consumer("workers", ConsumerChange::SeekQueue(4)),
        consumer("workers", ConsumerChange::QueueState(acked.clone())),
    ];
    let commands = vec![
        append(0, 0, 3, 100),
        PartitionCommand::Consumer(commits.clone()),
        append(0, 3, 2, 101),
        PartitionCommand::Consumer(later.clone()),
    ];
    let mut applied: Vec<PartitionEntry> = commits.iter().chain(&later).cloned().collect();
    applied[3].change = ConsumerChange::ResetQueue {
        offset: 4,
        epoch: 4,
    };
    let cursors = vec![
        ("audit".to_string(), 0, 1),
        ("readers".to_string(), 0, 5),
        ("workers".to_string(), 0, 4),
    ];
    let mut replicas = Vec::new();
    for run_len in [1, 3, commands.len()] {
        let (store, mut group, recorded) = recorded_replica();
        let replies = apply_in_runs(&*store, &mut group, &commands, run_len).await;
        assert_eq!(replies[1], PartitionReply::Consumed { index: 2 });
        assert_eq!(replies[3], PartitionReply::Consumed { index: 4 });
        assert_eq!(stored_cursors(&*store), cursors, "run length {run_len}");
        assert_eq!(*recorded.0.lock(), applied, "run length {run_len}");
        let acks = store
            .get(Cf::Acks, &engine_keys::cursor_key(7, "workers", 0))
            .unwrap();
        assert_eq!(
            acks.as_ref(),
            Some(&acked),
            "the ack state applied last is stored"
        );
        replicas.push((store, group));
    }

    // A replica that missed all of it (and holds a stale cursor of its own) installs the
    // snapshot: it stores and applies every subscription's cursor and queue ack state.
    let (_, leader) = &replicas[0];
    let snapshot = leader.snapshot().unwrap();
    let (fresh_store, mut fresh, recorded) = recorded_replica();
    let stale = [PartitionCommand::Consumer(vec![consumer(
        "readers",
        ConsumerChange::Commit(1),
    )])];
    apply_in_runs(&*fresh_store, &mut fresh, &stale, 1).await;
    recorded.0.lock().clear();
    transfer(leader, &fresh, &snapshot, 1);
    let mut batch = WriteBatch::new();
    fresh.write_restore(&snapshot, &mut batch).unwrap();
    fresh_store.write(batch, true).unwrap();
    fresh.restore(&snapshot).await.unwrap();
    assert_eq!(stored_cursors(&*fresh_store), cursors);
    let restored: Vec<PartitionEntry> = cursors
        .iter()
        .map(|(name, _, offset)| consumer(name, ConsumerChange::Commit(*offset)))
        .chain([consumer(
            "workers",
            ConsumerChange::QueueState(acked.clone()),
        )])
        .collect();
    assert_eq!(*recorded.0.lock(), restored);
    let acks = fresh_store
        .get(Cf::Acks, &engine_keys::cursor_key(7, "workers", 0))
        .unwrap();
    assert_eq!(acks, Some(acked), "the queue ack state travels too");
    assert_eq!(fresh.shared().high_watermark(), 5);
}

/// A queue ack state as `QueuePartition::encode` writes it: the floor, the offsets above it
/// with their attempts (all done here), then the epoch when there is one.
fn queue_state(floor: u64, done: &[u64], epoch: u64) -> Bytes {
    let mut state = bytes::BytesMut::new();
    state.put_u64(floor);
    state.put_u32(done.len() as u32);
    for &offset in done {
        state.put_u64(offset);
        state.put_u32(1 | 1 << 31);
    }
    if epoch != 0 {
        state.put_u64(epoch);
    }
    state.freeze()
}

/// The leader's interval flush encodes its queue ack state; a seek through another node is
/// forwarded to the leader and commits first; then the flush commits. The flush's state is
/// older than the seek and must not put back the acks the seek cleared, on any replica, however
/// the entries fall into runs; a state the leader encoded after the seek is taken.
#[tokio::test]
async fn a_queue_state_encoded_before_a_seek_does_not_undo_it() {
    let key = engine_keys::cursor_key(7, "workers", 0);
    // Before the seek: offsets 0 to 2 acked, 3 acked out of order.
    let before = queue_state(3, &[4], 0);
    let commands = vec![
        append(0, 0, 6, 100),
        PartitionCommand::Consumer(vec![consumer("workers", ConsumerChange::SeekQueue(0))]),
        PartitionCommand::Consumer(vec![consumer(
            "workers",
            ConsumerChange::QueueState(before.clone()),
        )]),
    ];
    for run_len in [1, 2, 3] {
        let (store, mut group, recorded) = recorded_replica();
        apply_in_runs(&*store, &mut group, &commands, run_len).await;
        let acks = store.get(Cf::Acks, &key).unwrap().unwrap();
        assert_ne!(
            acks, before,
            "run length {run_len}: the seek was undone on disk"
        );
        assert_eq!(
            &acks[..12],
            &queue_state(0, &[], 0)[..],
            "run length {run_len}"
        );
        let cursor = store.get(Cf::Cursors, &key).unwrap().unwrap();
        assert_eq!(decode_offset(&cursor), Some(0), "run length {run_len}");
        assert!(
            !recorded
                .0
                .lock()
                .iter()
                .any(|entry| matches!(entry.change, ConsumerChange::QueueState(_))),
            "run length {run_len}: the stale state was applied in memory"
        );
    }

    // The seek is raft index 2: a state the leader encoded after it carries that epoch.
    let after = queue_state(1, &[], 2);
    let mut later = commands.clone();
    later.push(PartitionCommand::Consumer(vec![consumer(
        "workers",
        ConsumerChange::QueueState(after.clone()),
    )]));
    for run_len in [1, 4] {
        let (store, mut group, recorded) = recorded_replica();
        apply_in_runs(&*store, &mut group, &later, run_len).await;
        assert_eq!(store.get(Cf::Acks, &key).unwrap(), Some(after.clone()));
        let applied: Vec<ConsumerChange> = recorded
            .0
            .lock()
            .iter()
            .map(|entry| entry.change.clone())
            .collect();
        assert_eq!(
            applied,
            vec![
                ConsumerChange::ResetQueue {
                    offset: 0,
                    epoch: 2
                },
                ConsumerChange::QueueState(after.clone()),
            ],
            "run length {run_len}"
        );
    }
}

/// Sends `leader`'s `snapshot` to `replica` as the network does: its batches read from the
/// leader's store in chunks of about `CHUNK` bytes, staged on the replica, then sealed.
fn transfer(leader: &PartitionGroup, replica: &PartitionGroup, snapshot: &[u8], id: u64) {
    let sink = replica.snapshot_sink();
    for (chunk, data) in chunks(leader, snapshot).iter().enumerate() {
        sink.stage(id, chunk as u64, data).unwrap();
    }
    sink.seal(id).unwrap();
}

/// How many bytes the snapshot chunks of these tests carry (a few batches each).
const CHUNK: usize = 64;

/// The chunks `leader` streams for `snapshot`.
fn chunks(leader: &PartitionGroup, snapshot: &[u8]) -> Vec<Vec<u8>> {
    let source = leader.snapshot_source();
    let (mut from, mut out) = (None, Vec::new());
    loop {
        let (data, next) = source.read(snapshot, from, CHUNK).unwrap();
        if !data.is_empty() {
            out.push(data);
        }
        match next {
            Some(next) => from = Some(next),
            None => return out,
        }
    }
}

/// A batch as a reader gets it: offsets, time, flags, payload.
type Read = (u64, u32, i64, u8, Bytes);

/// Every batch a reader of `store`'s partition gets from offset 0, from the store (a partition
/// opened afresh: its tail cache is empty).
async fn read_all(store: &Arc<dyn Store>) -> Vec<Read> {
    let shared = PartitionShared::open(
        7,
        0,
        Arc::clone(store),
        false,
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
        out.extend(batches.iter().map(|b| {
            let payload = b.payload.clone();
            (b.base_offset, b.count, b.append_time_ms, b.flags, payload)
        }));
    }
}

/// The store of a single-node partition that committed the appends of `commands` with the
/// writer's own commit (`stage_append`, batches in `Cf::Log`), at the same append times.
fn single_node(commands: &[PartitionCommand]) -> Arc<dyn Store> {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let target = Target {
        topic_id: 7,
        partition: 0,
        durability: AckDurability::Fsync,
        producer_state_ttl_ms: 60_000,
        new_producers: NewProducers::AnySequence,
    };
    let mut cursor = LogCursor::default();
    let mut producers: LruCache<u64, ProducerState> = LruCache::unbounded();
    for command in commands {
        let PartitionCommand::Append(a) = command else {
            continue;
        };
        let mut batch = WriteBatch::new();
        let append = Append {
            payload: &a.payload,
            count: a.count,
            flags: a.flags,
            producer_id: a.producer_id,
            base_sequence: a.base_sequence,
            sequence_span: a.sequence_span,
            deduplicated: a.deduplicated.clone(),
            extras: &a.extras,
            value_bytes: a.value_bytes,
            raft: None,
        };
        let now = a.append_time_ms;
        let mut stored = Vec::new();
        commit::stage_append(
            &target,
            &mut cursor,
            &mut producers,
            append,
            now,
            &mut batch,
            &mut stored,
        );
        store.write(batch, false).unwrap();
    }
    store
}

fn raft_indexes(store: &dyn Store) -> Vec<u64> {
    let (from, to) = keys::entry_range(GROUP, 0, None);
    let entries = store.scan(Cf::RaftLog, &from, &to, usize::MAX).unwrap();
    entries
        .iter()
        .filter_map(|(key, _)| keys::entry_index(key))
        .collect()
}

fn flagged(mut command: PartitionCommand, flags: u8) -> PartitionCommand {
    if let PartitionCommand::Append(append) = &mut command {
        append.flags = flags;
    }
    command
}

#[tokio::test]
async fn a_replicated_partition_stores_each_batch_once_and_reads_the_single_node_bytes() {
    let commands = vec![
        append(0, 0, 3, 100),
        flagged(append(11, 0, 2, 101), 1),
        append(11, 0, 2, 102), // a retry: stored nothing
        append(12, 0, 5, 99),  // the clock went back: stamped 101
    ];
    let (store, mut group) = replica();
    apply_in_runs(&*store, &mut group, &commands, 2).await;

    assert!(contents(&*store, Cf::Log).is_empty(), "no Cf::Log copy");
    let located: Vec<(u64, Option<u64>)> = group
        .shared()
        .scan_index(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(base, entry)| (base, entry.raft.map(|r| r.index)))
        .collect();
    assert_eq!(
        located,
        [(0, Some(1)), (3, Some(2)), (5, Some(4))],
        "offsets stay offsets; each index entry names its raft entry"
    );

    let reference = single_node(&commands);
    let want = read_all(&reference).await;
    assert_eq!(want.len(), 3);
    assert_eq!(
        read_all(&store).await,
        want,
        "the same batches, byte for byte"
    );
    // And a read from the middle of a batch starts at that batch.
    let shared = PartitionShared::open(
        7,
        0,
        Arc::clone(&store),
        false,
        TailBudget::new(1 << 20),
        Arc::default(),
        FSYNC,
    )
    .unwrap();
    let from_4 = shared.read(4, 10, usize::MAX).await.unwrap();
    assert_eq!(from_4[0].base_offset, 3);
    assert_eq!(
        shared.bytes(),
        PartitionShared::open(
            7,
            0,
            reference,
            false,
            TailBudget::new(1 << 20),
            Arc::default(),
            FSYNC,
        )
        .unwrap()
        .bytes(),
        "stored bytes count as if in Cf::Log"
    );
}

#[tokio::test]
async fn a_trim_deletes_the_raft_entries_below_the_cut_once_purged() {
    let commands = vec![
        append(0, 0, 3, 100),
        append(0, 0, 2, 101),
        append(0, 0, 4, 102),
        append(0, 0, 1, 103),
    ];
    let (store, mut group) = replica();
    apply_in_runs(&*store, &mut group, &commands, 4).await;
    let mut log: LogStore<PartitionConfig> = LogStore::for_partition(Arc::clone(&store), GROUP);

    // openraft purges after a snapshot: the entries hold retained batches and stay.
    log.purge(log_id(3)).await.unwrap();
    assert_eq!(
        raft_indexes(&*store),
        [1, 2, 3, 4],
        "a purge keeps retained batches"
    );

    // Trim before 5: [0,3) and [3,5) go, and their raft entries 1 and 2 with them.
    let trim = [PartitionCommand::Trim { before: 6 }];
    let replies = apply_after(&*store, &mut group, &trim, 5).await;
    assert_eq!(replies, [PartitionReply::Trimmed { log_start: 5 }]);
    assert_eq!(raft_indexes(&*store), [3, 4, 5]);
    assert_eq!(contents(&*store, Cf::Index).len(), 2);
    let reads = read_all(&store).await;
    let offsets: Vec<u64> = reads.iter().map(|r| r.0).collect();
    assert_eq!(offsets, [5, 9], "reads after the trim still work");

    // Trimming the rest deletes only what openraft purged (up to 3); the next purge the rest.
    let trim = [PartitionCommand::Trim { before: 100 }];
    apply_after(&*store, &mut group, &trim, 6).await;
    assert_eq!(
        raft_indexes(&*store),
        [4, 5, 6],
        "not purged yet: kept for replication"
    );
    assert!(contents(&*store, Cf::Index).is_empty());
    log.purge(log_id(6)).await.unwrap();
    assert!(raft_indexes(&*store).is_empty(), "purged and trimmed: gone");
    assert!(read_all(&store).await.is_empty());
}

/// Applies `commands` as one run, the first at raft index `first`.
async fn apply_after(
    store: &dyn Store,
    group: &mut PartitionGroup,
    commands: &[PartitionCommand],
    first: u64,
) -> Vec<PartitionReply> {
    let mut run = group.stage();
    let mut batch = WriteBatch::new();
    for (i, command) in commands.iter().enumerate() {
        let entry =
            EntryOf::<PartitionConfig>::new_normal(log_id(first + i as u64), command.clone());
        let key = keys::entry(GROUP, first + i as u64).to_vec();
        batch.put(Cf::RaftLog, key, encode(&entry).unwrap());
    }
    for (i, command) in commands.iter().enumerate() {
        let id = log_id(first + i as u64);
        group
            .write(&mut run, &id, command, &mut batch)
            .await
            .unwrap();
    }
    store.write(batch, false).unwrap();
    let mut replies = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        let id = log_id(first + i as u64);
        replies.push(group.apply(&mut run, &id, command.clone()).await);
    }
    replies
}

/// Append times stay monotonic across a restart: a replica that restarted stamps an entry
/// whose leader's clock is behind the last batch's time as the replicas that did not restart
/// do (the nemesis of broker/tests/partition_group.rs: `Cf::Index` differed on the restarted
/// node after a leader change).
#[tokio::test]
async fn a_restarted_replica_stamps_append_times_as_the_others_do() {
    let before = [append(0, 0, 2, 200), append(0, 2, 1, 300)];
    let after = [append(0, 3, 1, 250)];
    let (kept_store, mut kept) = replica();
    apply_after(&*kept_store, &mut kept, &before, 1).await;
    let (store, mut restarted) = replica();
    apply_after(&*store, &mut restarted, &before, 1).await;
    drop(restarted);
    let mut restarted = PartitionGroup::open(Arc::clone(&store), 7, 0, options()).unwrap();

    let kept_replies = apply_after(&*kept_store, &mut kept, &after, 3).await;
    let restarted_replies = apply_after(&*store, &mut restarted, &after, 3).await;
    assert_eq!(
        kept_replies,
        vec![PartitionReply::Appended {
            base_offset: 3,
            count: 1,
            append_time_ms: 300,
            duplicate: false,
            deduplicated: Vec::new(),
        }],
        "a leader's clock behind the log's last time does not take it back"
    );
    assert_eq!(restarted_replies, kept_replies);
    assert_eq!(
        contents(&*store, Cf::Index),
        contents(&*kept_store, Cf::Index)
    );
}

#[tokio::test]
async fn a_snapshot_carries_the_retained_batches_to_a_replica_that_held_other_ones() {
    let (store, mut leader) = replica();
    let commands = [
        append(0, 0, 3, 100),
        append(31, 0, 2, 101),
        append(31, 2, 4, 102),
        PartitionCommand::Trim { before: 3 },
    ];
    apply_in_runs(&*store, &mut leader, &commands, 3).await;
    let want = read_all(&store).await;
    assert_eq!(want.iter().map(|r| r.0).collect::<Vec<_>>(), [3, 5]);
    let snapshot = leader.snapshot().unwrap();

    // A replica that held a different history installs it: only the snapshot's batches remain.
    let (replica_store, mut replica) = replica();
    apply_in_runs(&*replica_store, &mut replica, &[append(0, 0, 20, 5)], 1).await;
    transfer(&leader, &replica, &snapshot, 1);
    let mut batch = WriteBatch::new();
    replica.write_restore(&snapshot, &mut batch).unwrap();
    replica_store.write(batch, true).unwrap();
    replica.restore(&snapshot).await.unwrap();
    assert_eq!(replica.shared().log_start(), 3);
    assert_eq!(replica.shared().high_watermark(), 9);
    assert_eq!(replica.shared().bytes(), leader.shared().bytes());
    assert_eq!(
        read_all(&replica_store).await,
        want,
        "every retained batch at its offset"
    );
    assert_eq!(
        contents(&*replica_store, Cf::Log).len(),
        2,
        "installed the single-node way"
    );

    // Appends after the install live in the raft log again; reads cross from one to the other.
    let more = [append(31, 6, 1, 103)];
    apply_after(&*replica_store, &mut replica, &more, 10).await;
    apply_after(&*store, &mut leader, &more, 10).await;
    let after = read_all(&replica_store).await;
    assert_eq!(after.iter().map(|r| r.0).collect::<Vec<_>>(), [3, 5, 9]);
    let located: Vec<(u64, Option<u64>)> = replica
        .shared()
        .scan_index(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(base, entry)| (base, entry.raft.map(|r| r.index)))
        .collect();
    assert_eq!(
        located,
        [(3, None), (5, None), (9, Some(10))],
        "installed batches in Cf::Log; offset 9 is raft index 10 on this replica"
    );
    assert_eq!(after, read_all(&store).await);
}

#[path = "partition_snapshot_tests.rs"]
mod snapshot;

/// What was decided from the proposing node's own state never goes through another node: a
/// release of delayed messages (its schedule) and queue ack state (its deliveries). Plain
/// appends, schedules, commits and trims may be forwarded.
#[test]
fn releases_and_queue_state_are_proposed_by_the_leader_only() {
    let with_extra = |extra: AppendExtra| {
        let PartitionCommand::Append(mut command) = append(0, 0, 1, 1) else {
            unreachable!("append builds an append");
        };
        command.extras = vec![extra];
        PartitionCommand::Append(command)
    };
    let release = with_extra(AppendExtra::Unschedule { key: vec![1; 24] });
    let schedule = with_extra(AppendExtra::Schedule {
        key: vec![1; 24],
        batch: Bytes::from_static(b"later"),
    });
    let state = PartitionCommand::Consumer(vec![consumer(
        "workers",
        ConsumerChange::QueueState(Bytes::from_static(b"state")),
    )]);
    let commit = PartitionCommand::Consumer(vec![consumer("readers", ConsumerChange::Commit(3))]);
    assert!(release.leader_only());
    assert!(state.leader_only());
    assert!(!append(5, 0, 1, 1).leader_only());
    assert!(!schedule.leader_only());
    assert!(!commit.leader_only());
    assert!(!PartitionCommand::Trim { before: 3 }.leader_only());
}
