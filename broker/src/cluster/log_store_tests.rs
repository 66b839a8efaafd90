//! Tests of the raft log store: appends read from memory until written, truncations, the
//! writer's order and syncs.

use std::time::Duration;

use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::EntryOf;

use super::*;
use crate::cluster::partition_group::PartitionConfig;
use crate::storage::MemStore;

/// A store that records, in one timeline with the test's own events, each write as it
/// returns; with `fail`, every write fails. Each write first takes a ticket from `gate`.
struct Recording {
    inner: MemStore,
    events: Arc<Mutex<Vec<String>>>,
    fail: bool,
    gate: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Store for Recording {
    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), StorageError> {
        self.gate.lock().recv().expect("the test ended");
        if self.fail {
            return Err(StorageError("disk gone".into()));
        }
        self.inner.write(batch, sync)?;
        self.events.lock().push(format!("write sync={sync}"));
        Ok(())
    }
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<bytes::Bytes>, StorageError> {
        self.inner.get(cf, key)
    }
    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, bytes::Bytes)>, StorageError> {
        self.events.lock().push("scan".to_string());
        self.inner.scan(cf, from, to, limit)
    }
    fn seek_prev(
        &self,
        cf: Cf,
        lower: &[u8],
        at: &[u8],
    ) -> Result<Option<(Vec<u8>, bytes::Bytes)>, StorageError> {
        self.inner.seek_prev(cf, lower, at)
    }
    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }
    fn fsyncs(&self) -> u64 {
        0
    }
}

/// Each `send` lets one write of a [`Recording`] store through.
type Gate = std::sync::mpsc::Sender<()>;

/// The store, its timeline, and its gate.
fn recording(fail: bool) -> (Arc<dyn Store>, Arc<Mutex<Vec<String>>>, Gate) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let (open, gate) = std::sync::mpsc::channel();
    let store = Recording {
        inner: MemStore::new(),
        events: Arc::clone(&events),
        fail,
        gate: Mutex::new(gate),
    };
    (Arc::new(store), events, open)
}

type Log = LogStore<PartitionConfig>;

fn blank(index: u64) -> EntryOf<PartitionConfig> {
    EntryOf::<PartitionConfig>::new_blank(openraft::testing::log_id::<PartitionConfig>(1, 0, index))
}

fn indexes(entries: &[EntryOf<PartitionConfig>]) -> Vec<u64> {
    entries.iter().map(RaftEntry::index).collect()
}

/// The raft indexes of group 1 in the store itself.
fn stored(store: &Arc<dyn Store>) -> Vec<u64> {
    let (lower, upper) = keys::entry_range(1, 0, None);
    store
        .scan(Cf::RaftLog, &lower, &upper, usize::MAX)
        .unwrap()
        .iter()
        .map(|(_, value)| decode::<EntryOf<PartitionConfig>>(value).unwrap().index())
        .collect()
}

/// Appends `entries` and returns what their flush report says, once it came.
async fn append(
    log: &mut Log,
    entries: Vec<EntryOf<PartitionConfig>>,
) -> oneshot::Receiver<Result<(), io::Error>> {
    let (report, reported) = PartitionConfig::oneshot();
    log.append(entries, IOFlushed::signal(report))
        .await
        .expect("queued");
    reported
}

/// Appends one entry to a [`Recording`] store's log (whose writes fail with `fail`), lets
/// the write through and adds the flush report to the timeline: the log and the timeline.
async fn one_write(fail: bool) -> (Log, Vec<String>) {
    let (store, events, open) = recording(fail);
    let mut log = Log::for_partition(Arc::clone(&store), 1);
    let reported = append(&mut log, vec![blank(1)]).await;
    open.send(()).unwrap();
    let result = reported.await.expect("reported");
    events.lock().push(format!("flushed ok={}", result.is_ok()));
    let timeline = events.lock().clone();
    (log, timeline)
}

#[tokio::test]
async fn the_flush_report_comes_after_the_synced_write() {
    let (_, timeline) = one_write(false).await;
    assert_eq!(timeline, ["write sync=true", "flushed ok=true"]);
}

#[tokio::test]
async fn a_failed_write_is_reported_as_failed() {
    let (log, timeline) = one_write(true).await;
    assert_eq!(timeline, ["flushed ok=false"]);
    assert_eq!(
        *log.unwritten().borrow(),
        1,
        "an apply of the entry still waits: it is not in the store"
    );
}

/// openraft's contract for `append`: entries are readable when it returns, before they are
/// on disk. The apply waits on `unwritten`; a truncation drops unwritten entries and deletes
/// after the writes queued before it, so none comes back; `drained` waits for the last.
#[tokio::test]
async fn appended_entries_are_read_from_memory_until_written_and_never_outlive_a_truncation() {
    let (store, _events, open) = recording(false);
    let mut log = Log::for_partition(Arc::clone(&store), 1);
    let unwritten = log.unwritten();
    let mut reader = log.get_log_reader().await;

    let reported = append(&mut log, vec![blank(1), blank(2)]).await;
    assert_eq!(*unwritten.borrow(), 1, "the apply of entry 1 waits");
    assert_eq!(
        indexes(&reader.try_get_log_entries(1..3).await.unwrap()),
        [1, 2]
    );
    assert!(stored(&store).is_empty(), "not written yet");
    assert_eq!(
        log.get_log_state()
            .await
            .unwrap()
            .last_log_id
            .map(|id| id.index),
        Some(2)
    );
    open.send(()).unwrap();
    reported.await.unwrap().unwrap();
    assert_eq!(*unwritten.borrow(), u64::MAX);
    assert_eq!(stored(&store), [1, 2]);

    // 3 and 4 queued, read from memory after 1 and 2 from the store; then truncated to 2
    // while still queued.
    let reported = append(&mut log, vec![blank(3), blank(4)]).await;
    assert_eq!(*unwritten.borrow(), 3);
    assert_eq!(
        indexes(&reader.try_get_log_entries(1..).await.unwrap()),
        [1, 2, 3, 4]
    );
    open.send(()).unwrap(); // the queued write of 3 and 4
    open.send(()).unwrap(); // the truncation's delete
    log.truncate_after(Some(openraft::testing::log_id::<PartitionConfig>(1, 0, 2)))
        .await
        .unwrap();
    reported.await.unwrap().unwrap();
    assert_eq!(*unwritten.borrow(), u64::MAX);
    assert_eq!(
        indexes(&reader.try_get_log_entries(1..).await.unwrap()),
        [1, 2]
    );
    assert_eq!(stored(&store), [1, 2], "the truncated entries stay deleted");

    // A write still queued when the group stops: `drained` waits for it.
    let reported = append(&mut log, vec![blank(3)]).await;
    let drained = log.drained();
    drop((log, reader));
    open.send(()).unwrap();
    drained.await;
    assert_eq!(stored(&store), [1, 2, 3], "written before drained resolved");
    reported.await.unwrap().unwrap();
}

/// The apply reads what it applies through the log reader right after the write: those
/// reads come from memory until the group applied the entries.
#[tokio::test]
async fn written_entries_are_read_from_memory_until_applied() {
    let (store, events, open) = recording(false);
    let mut log = Log::for_partition(Arc::clone(&store), 1);
    let mut tail = log.tail();
    let mut reader = log.get_log_reader().await;
    let reported = append(&mut log, vec![blank(1), blank(2), blank(3)]).await;
    open.send(()).unwrap();
    reported.await.unwrap().unwrap();
    tail.written_through(3).await.unwrap();
    assert_eq!(stored(&store), [1, 2, 3]);
    events.lock().clear();

    assert_eq!(
        indexes(&reader.try_get_log_entries(1..4).await.unwrap()),
        [1, 2, 3]
    );
    assert!(
        events.lock().is_empty(),
        "no store read: {:?}",
        events.lock()
    );

    tail.applied(2);
    assert_eq!(
        indexes(&reader.try_get_log_entries(1..4).await.unwrap()),
        [1, 2, 3]
    );
    assert_eq!(
        *events.lock(),
        ["scan"],
        "1 and 2 from the store, 3 from memory"
    );
    events.lock().clear();
    assert_eq!(
        indexes(&reader.try_get_log_entries(3..).await.unwrap()),
        [3]
    );
    assert!(events.lock().is_empty());

    // A truncation drops held written entries too.
    open.send(()).unwrap(); // the truncation's delete
    log.truncate_after(Some(openraft::testing::log_id::<PartitionConfig>(1, 0, 2)))
        .await
        .unwrap();
    assert_eq!(
        indexes(&reader.try_get_log_entries(1..).await.unwrap()),
        [1, 2]
    );
    assert_eq!(stored(&store), [1, 2]);
}

/// The followers can commit an entry this node has not stored yet: the committed id saved
/// then must not reach the disk before the entry, or a crash in between leaves a start that
/// re-applies an entry the log does not have (the partition group then does not start).
#[tokio::test]
async fn a_committed_id_never_reaches_the_disk_before_its_entries() {
    let (store, _events, open) = recording(false);
    let mut log = Log::for_partition(Arc::clone(&store), 1);
    let reported = append(&mut log, vec![blank(1), blank(2)]).await;
    let committed = Some(openraft::testing::log_id::<PartitionConfig>(1, 0, 2));
    tokio::time::timeout(Duration::from_secs(10), log.save_committed(committed))
        .await
        .expect("saved without waiting for a write")
        .expect("saved");
    let on_disk = || {
        read_state::<Option<LogIdOf<PartitionConfig>>>(&*store, 1, StateKey::Committed)
            .unwrap()
            .flatten()
            .map(|id| id.index)
    };
    assert_eq!(
        on_disk(),
        None,
        "queued behind the entries, which are not written"
    );
    assert!(stored(&store).is_empty());

    open.send(()).unwrap();
    reported.await.unwrap().unwrap();
    assert_eq!(stored(&store), [1, 2]);
    open.send(()).unwrap(); // the committed id, if the writer did not take it with them
    let committed = log.read_committed().await.unwrap().map(|id| id.index);
    assert_eq!((committed, on_disk()), (Some(2), Some(2)));
}

#[test]
fn index_bounds_cover_every_range_form() {
    assert_eq!(index_bounds(&(3..7)), Some((3, Some(7))));
    assert_eq!(index_bounds(&(3..=7)), Some((3, Some(8))));
    assert_eq!(index_bounds(&(3..)), Some((3, None)));
    assert_eq!(index_bounds(&(..)), Some((0, None)));
    assert_eq!(index_bounds(&(..=u64::MAX)), Some((0, None)));
    assert_eq!(index_bounds(&(3..3)), None);
    assert_eq!(
        index_bounds(&(Bound::Included(5), Bound::Excluded(3))),
        None
    );
    assert_eq!(
        index_bounds(&(Bound::Excluded(u64::MAX), Bound::Unbounded)),
        None
    );
}
