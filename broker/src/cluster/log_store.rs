//! [`LogStore`]: openraft's log storage for one raft group, over the shared [`Store`].
//!
//! Entries live in `raft_log` under `group | index` (see [`keys`]); the vote, the committed log
//! id and the last purged log id live in `raft_state`. Every write that changes the log or the
//! vote is synced before the call returns or reports, so a crash never forgets a vote or an
//! entry this node acknowledged. `save_committed` is not synced: a committed id lost in a crash
//! only means fewer entries are re-applied at startup, and RocksDB's write-ahead log is replayed
//! in order, so it can never come back ahead of the entries it points at.
//!
//! **Purging** is a per-group policy ([`Purge`]). The metadata group's state machine holds
//! everything its entries made, so a purge deletes them. A partition group's entries ARE the
//! partition's batches (each stored once, docs/adr/0005-clustering.md §3): a purge records the
//! purged log id but deletes only the entries below the group's `RetainedFrom` record, which its
//! trims and snapshot installs move; a trim deletes the entries of the batches it drops, but
//! only those openraft purged already (it may still send the others to a lagging follower).
//! Either way an entry goes once both openraft and the partition are done with it.
//!
//! openraft serialises the calls of one group (`&mut self`); groups share the store but never a
//! key, so they need no ordering between them.

use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::type_config::alias::{LogIdOf, VoteOf};
use openraft::{OptionalSend, RaftTypeConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keys::{self, GroupId, StateKey};
use super::{blocking, decode, encode, io_err, read_state};
use crate::storage::{Cf, StorageError, Store, WriteBatch};

/// Puts in `batch` the deletion of `group`'s raft log and of its `raft_state` records from
/// `from` on (`StateKey::Vote`: all of them; a later kind keeps the vote).
pub fn drop_group(batch: &mut WriteBatch, group: GroupId, from: StateKey) {
    let (first, end) = keys::entry_range(group, 0, None);
    batch.delete_range(Cf::RaftLog, first, end);
    batch.delete_range(
        Cf::RaftState,
        keys::state(group, from).to_vec(),
        keys::state(group + 1, StateKey::Vote).to_vec(),
    );
}

/// What a group's `purge` deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purge {
    /// Every purged entry (the metadata group: its state machine holds what they made).
    Delete,
    /// Only purged entries below the group's `RetainedFrom` record: a partition group, whose
    /// entries hold the batches the partition still retains.
    KeepRetained,
}

/// The raft log, vote and log pointers of one group.
pub struct LogStore<C> {
    store: Arc<dyn Store>,
    group: GroupId,
    purge: Purge,
    _config: PhantomData<fn() -> C>,
}

impl<C> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            store: Arc::clone(&self.store),
            group: self.group,
            purge: self.purge,
            _config: PhantomData,
        }
    }
}

impl<C> Debug for LogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("group", &self.group)
            .field("purge", &self.purge)
            .finish()
    }
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    /// The log of `group` in `store`, whose purges delete entries ([`Purge::Delete`]).
    /// Opening reads nothing: openraft asks for the log state.
    pub fn new(store: Arc<dyn Store>, group: GroupId) -> LogStore<C> {
        LogStore::with_purge(store, group, Purge::Delete)
    }

    /// The log of a partition group: its purges keep the entries of retained batches.
    pub fn for_partition(store: Arc<dyn Store>, group: GroupId) -> LogStore<C> {
        LogStore::with_purge(store, group, Purge::KeepRetained)
    }

    /// The log of `group` in `store`, purged as `purge` says.
    pub fn with_purge(store: Arc<dyn Store>, group: GroupId, purge: Purge) -> LogStore<C> {
        LogStore {
            store,
            group,
            purge,
            _config: PhantomData,
        }
    }

    /// The group this log belongs to.
    pub fn group(&self) -> GroupId {
        self.group
    }

    async fn put_state<T: Serialize>(
        &self,
        kind: StateKey,
        value: &T,
        sync: bool,
    ) -> Result<(), StorageError> {
        let mut batch = WriteBatch::new();
        batch.put(
            Cf::RaftState,
            keys::state(self.group, kind).to_vec(),
            encode(value)?,
        );
        blocking(&self.store, move |store| store.write(batch, sync)).await
    }

    async fn get_state<T: DeserializeOwned + Send + 'static>(
        &self,
        kind: StateKey,
    ) -> Result<Option<T>, StorageError> {
        let group = self.group;
        blocking(&self.store, move |store| read_state(store, group, kind)).await
    }
}

/// Writes `batch` synced, then reports the outcome to `flushed`: the report never comes before
/// the fsync returned, and a failed write is reported as failed.
async fn write_synced_then_report(
    store: &Arc<dyn Store>,
    batch: WriteBatch,
    flushed: impl FnOnce(Result<(), io::Error>),
) -> Result<(), StorageError> {
    let result = blocking(store, move |store| store.write(batch, true)).await;
    flushed(result.as_ref().map(|_| ()).map_err(io_err));
    result
}

/// `[from, to)` raft indexes of a range, `to == None` meaning no upper bound; `None` when the
/// range is empty.
fn index_bounds(range: &impl RangeBounds<u64>) -> Option<(u64, Option<u64>)> {
    let from = match range.start_bound() {
        Bound::Included(&from) => from,
        Bound::Excluded(&from) => from.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(&last) => last.checked_add(1),
        Bound::Excluded(&to) => Some(to),
        Bound::Unbounded => None,
    };
    match to {
        Some(to) if to <= from => None,
        _ => Some((from, to)),
    }
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, io::Error> {
        let Some((from, to)) = index_bounds(&range) else {
            return Ok(Vec::new());
        };
        let (lower, upper) = keys::entry_range(self.group, from, to);
        blocking(&self.store, move |store| {
            store
                .scan(Cf::RaftLog, &lower, &upper, usize::MAX)?
                .iter()
                .map(|(_, value)| decode(value))
                .collect()
        })
        .await
        .map_err(io_err)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        self.get_state(StateKey::Vote).await.map_err(io_err)
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    type LogReader = LogStore<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let group = self.group;
        let (last_purged, last_entry) = blocking(&self.store, move |store| {
            let last_purged: Option<LogIdOf<C>> = read_state(store, group, StateKey::LastPurged)?;
            let (lower, _) = keys::entry_range(group, 0, None);
            let last = store.seek_prev(Cf::RaftLog, &lower, &keys::entry(group, u64::MAX))?;
            let last = match last {
                Some((_, value)) => Some(decode::<C::Entry>(&value)?.log_id()),
                None => None,
            };
            Ok((last_purged, last))
        })
        .await
        .map_err(io_err)?;
        Ok(LogState {
            last_log_id: last_entry.or_else(|| last_purged.clone()),
            last_purged_log_id: last_purged,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        self.put_state(StateKey::Vote, vote, true)
            .await
            .map_err(io_err)
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        self.put_state(StateKey::Committed, &committed, false)
            .await
            .map_err(io_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        let committed: Option<Option<LogIdOf<C>>> =
            self.get_state(StateKey::Committed).await.map_err(io_err)?;
        Ok(committed.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::new();
        for entry in entries {
            let key = keys::entry(self.group, entry.index());
            batch.put(Cf::RaftLog, key.to_vec(), encode(&entry).map_err(io_err)?);
        }
        write_synced_then_report(&self.store, batch, |result| callback.io_completed(result))
            .await
            .map_err(io_err)
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let from = match last_log_id {
            None => 0,
            Some(last) => match last.index.checked_add(1) {
                Some(from) => from,
                None => return Ok(()),
            },
        };
        let (from, to) = keys::entry_range(self.group, from, None);
        let mut batch = WriteBatch::new();
        batch.delete_range(Cf::RaftLog, from, to);
        blocking(&self.store, move |store| store.write(batch, true))
            .await
            .map_err(io_err)
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        let (group, purge) = (self.group, self.purge);
        let mut batch = WriteBatch::new();
        batch.put(
            Cf::RaftState,
            keys::state(group, StateKey::LastPurged).to_vec(),
            encode(&log_id).map_err(io_err)?,
        );
        let purged_to = log_id.index.checked_add(1);
        blocking(&self.store, move |store| {
            let to = match purge {
                Purge::Delete => purged_to,
                Purge::KeepRetained => {
                    let retained_from: u64 =
                        read_state(store, group, StateKey::RetainedFrom)?.unwrap_or(0);
                    Some(purged_to.map_or(retained_from, |to| to.min(retained_from)))
                }
            };
            let (from, to) = keys::entry_range(group, 0, to);
            batch.delete_range(Cf::RaftLog, from, to);
            store.write(batch, true)
        })
        .await
        .map_err(io_err)
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use super::*;
    use crate::storage::MemStore;

    /// A store that records, in one timeline with the test's own events, each write as it
    /// returns; with `fail`, every write fails.
    struct Recording {
        inner: MemStore,
        events: Arc<Mutex<Vec<String>>>,
        fail: bool,
    }

    impl Store for Recording {
        fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), StorageError> {
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

    fn recording(fail: bool) -> (Arc<dyn Store>, Arc<Mutex<Vec<String>>>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let store = Recording {
            inner: MemStore::new(),
            events: Arc::clone(&events),
            fail,
        };
        (Arc::new(store), events)
    }

    async fn write_and_record(store: &Arc<dyn Store>, events: &Arc<Mutex<Vec<String>>>) -> bool {
        let mut batch = WriteBatch::new();
        batch.put(Cf::RaftLog, keys::entry(1, 1).to_vec(), &b"entry"[..]);
        let report = Arc::clone(events);
        write_synced_then_report(store, batch, move |result| {
            report.lock().push(format!("flushed ok={}", result.is_ok()));
        })
        .await
        .is_ok()
    }

    #[tokio::test]
    async fn the_flush_report_comes_after_the_synced_write() {
        let (store, events) = recording(false);
        assert!(write_and_record(&store, &events).await);
        assert_eq!(*events.lock(), ["write sync=true", "flushed ok=true"]);
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_as_failed() {
        let (store, events) = recording(true);
        assert!(!write_and_record(&store, &events).await);
        assert_eq!(*events.lock(), ["flushed ok=false"]);
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
}
