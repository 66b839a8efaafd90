//! [`LogStore`]: openraft's log storage for one raft group, over the shared [`Store`].
//!
//! Entries live in `raft_log` under `group | index` (see [`keys`]); the vote, the committed log
//! id and the last purged log id live in `raft_state`. Every write that changes the log or the
//! vote is synced before it is reported, so a crash never forgets a vote or an entry this node
//! acknowledged. `save_committed` is queued behind the appends and not awaited: a committed id
//! lost in a crash only means fewer entries are re-applied at startup, and it is written after
//! the entries it points at (which may still be queued when it is saved: the followers can commit
//! an entry before this node stored it), so it can never come back ahead of them.
//!
//! **Appends do not wait for the disk** (openraft's contract for `append`): the entries are kept
//! in memory ([`Held`]) and queued to the log's writer task ([`LogWriter`]; a node's partition
//! groups share one), which writes them in order, synced, several queued appends (of any of its
//! groups) in one write, and then reports them flushed. Meanwhile
//! openraft replicates them (its readers take them from memory), so the leader's fsync and its
//! followers' overlap instead of following each other. Two rules keep that safe:
//! - The group's apply waits until the entries it applies are in the store
//!   ([`LogTail::written_through`], `GroupStateMachine::follow_log`): a partition's readers read a
//!   batch from its raft entry, and the apply's own write must follow the entries' in RocksDB's
//!   write-ahead log, so a crash never keeps an applied record without its entry.
//! - `truncate_after` drops the truncated entries from memory, waits for the writes queued
//!   before it, then deletes; nothing queued earlier can write a truncated entry back. `purge`
//!   waits for them the same way.
//!
//! **Written entries stay in memory until applied.** openraft's apply reads the entries it applies
//! through the log reader, right after they commit, when they are written already: holding them
//! until the group applied them ([`LogTail::applied`]) saves every replica reading back and
//! decoding each entry it just wrote. Entries not applied yet are few (the commit pipeline), and
//! [`MAX_HELD_WRITTEN_BYTES`] bounds them for a group whose apply falls behind; a reader of an
//! older entry (a lagging follower's replication) reads the store.
//!
//! A group that stops leaves the writer task to finish the writes queued; [`LogStore::drained`]
//! resolves once it did, so the caller deletes a group's copy only after its last write. The
//! task ends once every handle of the writer is gone.
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

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};

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
pub struct LogStore<C: RaftTypeConfig> {
    store: Arc<dyn Store>,
    group: GroupId,
    purge: Purge,
    held: Arc<Held<C>>,
    /// The writer task this log's writes go through, maybe shared with other groups' logs.
    writer: LogWriter,
    _config: PhantomData<fn() -> C>,
}

impl<C: RaftTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            store: Arc::clone(&self.store),
            group: self.group,
            purge: self.purge,
            held: Arc::clone(&self.held),
            writer: self.writer.clone(),
            _config: PhantomData,
        }
    }
}

/// Encoded bytes of the written, unapplied entries a group holds in memory at most; the oldest go
/// first (their readers read the store).
const MAX_HELD_WRITTEN_BYTES: usize = 32 << 20;

/// The entries a log holds in memory, so that its readers need not read them from the store:
/// every entry appended and not in the store yet, and the written ones the group has not applied
/// yet. Together they are one contiguous run of indexes that ends at the log's last entry: the
/// writer writes appends in order, the apply takes entries in order, and a truncation drops a
/// tail.
struct Held<C: RaftTypeConfig> {
    entries: Mutex<HeldEntries<C>>,
    /// The lowest index not written yet, `u64::MAX` when none: what the group's apply waits on.
    lowest: watch::Sender<u64>,
}

struct HeldEntries<C: RaftTypeConfig> {
    /// Appended, not in the store yet; with each one's encoded size.
    unwritten: BTreeMap<u64, (C::Entry, usize)>,
    /// In the store, not applied yet.
    written: BTreeMap<u64, (C::Entry, usize)>,
    written_bytes: usize,
    /// The highest index the group applied (0: none).
    applied: u64,
}

impl<C: RaftTypeConfig> HeldEntries<C> {
    /// Drops the written entries the group applied, then the oldest ones over the bound.
    fn release(&mut self) {
        while let Some(entry) = self.written.first_entry() {
            if *entry.key() > self.applied && self.written_bytes <= MAX_HELD_WRITTEN_BYTES {
                break;
            }
            self.written_bytes -= entry.remove().1;
        }
    }

    /// Moves the entries of a write that is in the store to the written ones.
    fn written(&mut self, log_ids: &[LogIdOf<C>]) {
        for log_id in log_ids {
            // Only the entry this write held: a truncation may have put another there.
            let held = self.unwritten.get(&log_id.index).map(|(e, _)| e.log_id());
            if held.as_ref() == Some(log_id)
                && let Some(entry) = self.unwritten.remove(&log_id.index)
            {
                self.written_bytes += entry.1;
                self.written.insert(log_id.index, entry);
            }
        }
        self.release();
    }

    /// Drops every entry from index `from` on.
    fn truncate(&mut self, from: u64) {
        drop(self.unwritten.split_off(&from));
        let dropped = self.written.split_off(&from);
        self.written_bytes -= dropped.values().map(|(_, size)| size).sum::<usize>();
    }

    /// The entries held in `[from, to)`, in order.
    fn range(&self, from: u64, to: Option<u64>) -> Vec<C::Entry>
    where
        C::Entry: Clone,
    {
        let range = (
            Bound::Included(from),
            to.map_or(Bound::Unbounded, Bound::Excluded),
        );
        self.written
            .range(range)
            .chain(self.unwritten.range(range))
            .map(|(_, (entry, _))| entry.clone())
            .collect()
    }

    fn last(&self) -> Option<&C::Entry> {
        let last = self.unwritten.values().next_back();
        last.or_else(|| self.written.values().next_back())
            .map(|(entry, _)| entry)
    }
}

impl<C: RaftTypeConfig> Held<C> {
    fn new() -> Held<C> {
        Held {
            entries: Mutex::new(HeldEntries {
                unwritten: BTreeMap::new(),
                written: BTreeMap::new(),
                written_bytes: 0,
                applied: 0,
            }),
            lowest: watch::Sender::new(u64::MAX),
        }
    }

    /// Applies `change` to the entries and publishes the lowest unwritten index.
    fn update(&self, change: impl FnOnce(&mut HeldEntries<C>)) {
        let mut entries = self.entries.lock();
        change(&mut entries);
        let lowest = entries.unwritten.keys().next().copied().unwrap_or(u64::MAX);
        self.lowest.send_if_modified(|current| {
            let changed = *current != lowest;
            *current = lowest;
            changed
        });
    }
}

/// What a group's apply needs of its log: when an entry is in the store, and telling the log
/// which entries it applied, so that it stops holding them.
pub struct LogTail<C: RaftTypeConfig> {
    held: Arc<Held<C>>,
    unwritten: watch::Receiver<u64>,
}

impl<C: RaftTypeConfig> LogTail<C> {
    /// Resolves once every entry up to `index` is in the store; fails when the log is gone.
    pub async fn written_through(&mut self, index: u64) -> Result<(), io::Error> {
        self.unwritten
            .wait_for(|lowest| *lowest > index)
            .await
            .map(drop)
            .map_err(|_| io::Error::other("the group's raft log stopped"))
    }

    /// The group applied every entry up to `index`: the log stops holding them in memory.
    pub fn applied(&self, index: u64) {
        self.held.update(|entries| {
            entries.applied = entries.applied.max(index);
            entries.release();
        });
    }
}

/// The writer task of one or more groups' logs (a node's partition groups share one): writes
/// what is queued in order, everything queued by then in one synced write, so groups that
/// append at once pay one fsync. Started by the first write; clones share it.
#[derive(Clone)]
pub struct LogWriter {
    store: Weak<dyn Store>,
    queue: Arc<OnceLock<mpsc::UnboundedSender<Queued>>>,
}

/// What runs once a queued write is in the store, or failed.
type OnWritten = Box<dyn FnOnce(&Result<(), String>) + Send>;

/// A write queued to the writer task, and what to do once it is in the store (or failed).
struct Queued {
    batch: WriteBatch,
    /// Whether the write must be synced before `done` runs (an append's is; a committed id's
    /// is not).
    sync: bool,
    done: OnWritten,
}

impl LogWriter {
    /// A writer for logs in `store`. It does not keep the store open.
    pub fn new(store: &Arc<dyn Store>) -> LogWriter {
        LogWriter {
            store: Arc::downgrade(store),
            queue: Arc::default(),
        }
    }

    /// The queue to the writer task, which the first call starts.
    fn sender(&self) -> &mpsc::UnboundedSender<Queued> {
        self.queue.get_or_init(|| {
            let (queue, received) = mpsc::unbounded_channel();
            drop(tokio::spawn(write_in_order(self.store.clone(), received)));
            queue
        })
    }

    /// Queues `batch`, to be synced with `sync`; `done` runs with the write's result.
    fn queue(&self, batch: WriteBatch, sync: bool, done: OnWritten) {
        let queued = Queued { batch, sync, done };
        if let Err(mpsc::error::SendError(queued)) = self.sender().send(queued) {
            (queued.done)(&Err("the raft log's writer stopped".to_string()));
        }
    }

    /// A future that resolves once the writer wrote everything queued by the time it is
    /// polled. Starts the task (call it in a runtime).
    fn drained(&self) -> impl Future<Output = ()> + Send + 'static {
        let queue = self.sender().clone();
        async move {
            let (reply, written) = oneshot::channel();
            let marker = Queued {
                batch: WriteBatch::new(),
                sync: false,
                done: Box::new(move |_| {
                    let _ = reply.send(());
                }),
            };
            if queue.send(marker).is_ok() {
                let _ = written.await;
            }
        }
    }
}

/// Who learns that a queued write is in the store (synced).
enum Done<C: RaftTypeConfig> {
    Flushed(IOFlushed<C>),
    Reply(oneshot::Sender<Result<(), String>>),
    /// Nobody waits: a failed write is reported by the appends it was written with.
    Nothing,
}

impl<C: RaftTypeConfig> Debug for LogStore<C> {
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
    C::Entry: Clone + Serialize + DeserializeOwned,
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
            writer: LogWriter::new(&store),
            store,
            group,
            purge,
            held: Arc::new(Held::new()),
            _config: PhantomData,
        }
    }

    /// The lowest index of an entry appended but not in the store yet (`u64::MAX`: none). The
    /// group's state machine applies an entry only once it is lower than that.
    fn unwritten(&self) -> watch::Receiver<u64> {
        self.held.lowest.subscribe()
    }

    /// The handle the group's state machine follows the log with
    /// (`GroupStateMachine::follow_log`).
    pub fn tail(&self) -> LogTail<C> {
        LogTail {
            held: Arc::clone(&self.held),
            unwritten: self.unwritten(),
        }
    }

    /// Shares `writer` with the other logs that use it (instead of a writer of its own).
    pub fn sharing(mut self, writer: &LogWriter) -> LogStore<C> {
        self.writer = writer.clone();
        self
    }

    /// A future that resolves once the log's writer task wrote everything queued by the time
    /// it is polled: awaited after the group stopped, its last write. Starts the task (call
    /// it in a runtime).
    pub fn drained(&self) -> impl Future<Output = ()> + Send + 'static {
        self.writer.drained()
    }

    /// Queues `batch` (writing `entries`, synced with `sync`) to the writer task: once written,
    /// the entries move to the written ones held, then `done` learns the result. A failed write
    /// keeps its entries unwritten: the apply never takes an entry that is not in the store
    /// (openraft stops the group on the failure report).
    fn queue(&self, batch: WriteBatch, entries: Vec<LogIdOf<C>>, sync: bool, done: Done<C>) {
        let held = Arc::clone(&self.held);
        self.writer.queue(
            batch,
            sync,
            Box::new(move |result| {
                if result.is_ok() && !entries.is_empty() {
                    held.update(|held| held.written(&entries));
                }
                done.report(result.clone());
            }),
        );
    }

    /// Resolves once every write queued before the call is in the store.
    async fn written(&self) -> Result<(), StorageError> {
        let (reply, written) = oneshot::channel();
        self.queue(WriteBatch::new(), Vec::new(), false, Done::Reply(reply));
        match written.await {
            Ok(result) => result.map_err(StorageError),
            Err(_) => Err(StorageError("the raft log's writer stopped".to_string())),
        }
    }

    /// The group this log belongs to.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// Writes a `raft_state` record, synced.
    async fn put_state<T: Serialize>(&self, kind: StateKey, value: &T) -> Result<(), StorageError> {
        let mut batch = WriteBatch::new();
        batch.put(
            Cf::RaftState,
            keys::state(self.group, kind).to_vec(),
            encode(value)?,
        );
        blocking(&self.store, move |store| store.write(batch, true)).await
    }

    async fn get_state<T: DeserializeOwned + Send + 'static>(
        &self,
        kind: StateKey,
    ) -> Result<Option<T>, StorageError> {
        let group = self.group;
        blocking(&self.store, move |store| read_state(store, group, kind)).await
    }
}

impl<C: RaftTypeConfig> Done<C> {
    fn report(self, result: Result<(), String>) {
        match self {
            Done::Flushed(flushed) => {
                flushed.io_completed(result.map_err(|err| io_err(StorageError(err))));
            }
            Done::Reply(reply) => {
                let _ = reply.send(result);
            }
            Done::Nothing => {}
        }
    }
}

/// The writer task: writes what is queued in order, everything queued by then in one write,
/// synced if any of them asks for it, then runs each one's `done` in order: none runs before
/// the write (and its fsync) returned, and a failed write is reported as failed. Ends once every
/// handle of the writer is gone and the queue is empty. It does not keep the store open.
async fn write_in_order(store: Weak<dyn Store>, mut queue: mpsc::UnboundedReceiver<Queued>) {
    /// Queued writes taken together at most.
    const MAX_WRITES: usize = 256;
    let mut taken = Vec::with_capacity(MAX_WRITES);
    while queue.recv_many(&mut taken, MAX_WRITES).await > 0 {
        stall_point().await;
        let mut batch = WriteBatch::new();
        for queued in &mut taken {
            batch.extend(std::mem::take(&mut queued.batch));
        }
        let sync = taken.iter().any(|queued| queued.sync);
        let result = match store.upgrade() {
            _ if batch.is_empty() => Ok(()),
            Some(store) => blocking(&store, move |store| store.write(batch, sync))
                .await
                .map_err(|err| err.to_string()),
            None => Err("the store is closed".to_string()),
        };
        for queued in taken.drain(..) {
            (queued.done)(&result);
        }
    }
}

/// Test-only (`RAPIDMQ_TEST_FAULT_FILE`, line `stall raft-log-writes`): holds the writer while
/// the line is there, so the node's groups replicate and commit entries that are not in its own
/// store yet, as a slow disk would.
async fn stall_point() {
    const RECHECK: std::time::Duration = std::time::Duration::from_millis(10);
    while crate::storage::fault::active("stall raft-log-writes") {
        tokio::time::sleep(RECHECK).await;
    }
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
    C::Entry: Clone + Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, io::Error> {
        let Some((from, to)) = index_bounds(&range) else {
            return Ok(Vec::new());
        };
        // The range's tail may be held in memory (not written yet, or not applied yet): those
        // entries come from there, the ones below the first of them (all written, since writes
        // go in order) from the store.
        let held = self.held.entries.lock().range(from, to);
        let stored_to = held.first().map_or(to, |entry| Some(entry.index()));
        let mut entries = if stored_to.is_none_or(|stored_to| from < stored_to) {
            let (lower, upper) = keys::entry_range(self.group, from, stored_to);
            blocking(&self.store, move |store| {
                store
                    .scan(Cf::RaftLog, &lower, &upper, usize::MAX)?
                    .iter()
                    .map(|(_, value)| decode::<C::Entry>(value))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .map_err(io_err)?
        } else {
            Vec::new()
        };
        entries.extend(held);
        Ok(entries)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        self.get_state(StateKey::Vote).await.map_err(io_err)
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
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
        let held = self.held.entries.lock().last().map(RaftEntry::log_id);
        let last_entry = held.max(last_entry);
        Ok(LogState {
            last_log_id: last_entry.or_else(|| last_purged.clone()),
            last_purged_log_id: last_purged,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        self.put_state(StateKey::Vote, vote).await.map_err(io_err)
    }

    /// Queued behind the appends, not written at once: the entries it points at may still be
    /// queued (the followers can commit an entry before this node stored it), and a committed id
    /// on disk ahead of the log would have the next start re-apply entries that are not there.
    /// Neither awaited nor synced: losing it in a crash only means fewer entries are re-applied at
    /// the start, and RocksDB replays its write-ahead log in order, so it never comes back
    /// without the entries written before it.
    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let mut batch = WriteBatch::new();
        batch.put(
            Cf::RaftState,
            keys::state(self.group, StateKey::Committed).to_vec(),
            encode(&committed).map_err(io_err)?,
        );
        self.queue(batch, Vec::new(), false, Done::Nothing);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        // What `save_committed` queued last.
        self.written().await.map_err(io_err)?;
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
        let mut appended = Vec::new();
        for entry in entries {
            let key = keys::entry(self.group, entry.index());
            let value = encode(&entry).map_err(io_err)?;
            appended.push((entry, value.len()));
            batch.put(Cf::RaftLog, key.to_vec(), value);
        }
        let log_ids = appended.iter().map(|(entry, _)| entry.log_id()).collect();
        self.held.update(|held| {
            let appended = appended.into_iter().map(|entry| (entry.0.index(), entry));
            held.unwritten.extend(appended);
        });
        self.queue(batch, log_ids, true, Done::Flushed(callback));
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let from = match last_log_id {
            None => 0,
            Some(last) => match last.index.checked_add(1) {
                Some(from) => from,
                None => return Ok(()),
            },
        };
        // Readers stop seeing the truncated entries now; the delete follows every write queued
        // before it, so none of them writes a truncated entry back.
        self.held.update(|held| held.truncate(from));
        self.written().await.map_err(io_err)?;
        let (from, to) = keys::entry_range(self.group, from, None);
        let mut batch = WriteBatch::new();
        batch.delete_range(Cf::RaftLog, from, to);
        blocking(&self.store, move |store| store.write(batch, true))
            .await
            .map_err(io_err)
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        // After the writes queued before it, as a truncation: none writes a purged entry back.
        self.written().await.map_err(io_err)?;
        // openraft purges entries applied or covered by an installed snapshot.
        self.held.update(|held| {
            held.applied = held.applied.max(log_id.index);
            held.release();
        });
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
#[path = "log_store_tests.rs"]
mod tests;
