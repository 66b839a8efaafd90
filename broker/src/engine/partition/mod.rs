//! One partition: a single-writer group commit, a tail cache, and reads.
//!
//! Writes: every append and truncation goes to the partition's writer task through a bounded
//! channel (backpressure). The writer takes everything queued (up to a byte budget), assigns
//! offsets and append times, turns the group into one [`WriteBatch`] — batches, index entries,
//! producer state — and applies it with one `Store::write` (one fsync for `fsync` topics). Then it
//! publishes the batches to the tail cache, advances the high watermark and answers every waiter.
//! While one group is being written, the next one queues up: that is the group commit.
//!
//! Reads: consumers that keep up are served from the tail cache (shared `Bytes`, no copies, no
//! RocksDB; its bytes come from one broker-wide budget, see [`super::tail_cache`]); older or
//! evicted offsets come from the store. Consumers wait for new data on the high-watermark
//! watch channel, never by polling. Only data that the store has committed is ever visible.
//!
//! Failures: a group whose write fails is answered with `STORAGE_ERROR`; nothing of it became
//! visible, and its offsets go to the next group, whose write first deletes whatever the store
//! might hold at or above them (a failed write can still reach the write-ahead log, and a reopen
//! replays it). A panic inside a group commit is caught (`health::catch`): the writer reloads
//! the partition's state from the store and carries on, so the partition never stops answering.
//!
//! `commit`: what an append becomes (offsets, producer state, disk changes) and how a written
//! commit is made visible, shared with a partition group's state machine
//! (`cluster/partition_group.rs`); `writer`: the writer task; `located`: reads of batches a
//! replicated partition keeps in its raft log; this module: the handle, the shared state and
//! the reads. `replicated`: in cluster mode, the handle's writes go to the partition's raft
//! group instead of the writer ([`replicated::GroupLog`]); the reads are the same, from the
//! state the group applied.

pub(crate) mod commit;
mod entry;
mod located;
pub mod replicated;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use lru::LruCache;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::batch::{self, IndexEntry, StoredBatch};
use super::health::Health;
use super::keys;
use super::producer::ProducerState;
use super::tail_cache::{TailBudget, TailCache};
use super::topic::AckDurability;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::observability::Metrics;
use crate::storage::{Cf, Store, WriteBatch};
use commit::{LogCursor, LogState};
pub use entry::{AppendExtra, ConsumerChange, PartitionEntry, StartAt, decode_offset};
use writer::Writer;

/// Requests queued per partition before publishers wait.
const QUEUE_DEPTH: usize = 4096;
/// Producers whose state the writer keeps in memory per partition. Before each group commit the
/// least recently used ones beyond this are evicted (their state stays in the store), never
/// during one, so a producer's state is not reloaded between its batches of one group.
const MAX_CACHED_PRODUCERS: usize = 10_000;
/// Index entries read per store scan.
const INDEX_CHUNK: usize = 4096;

/// What of its topic's settings a partition follows; an altered topic changes them while the
/// partition runs ([`PartitionShared::alter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionSettings {
    /// What an ack guarantees.
    pub ack: AckDurability,
    /// The topic's `msg-id` dedup window (0: off); a replica rebuilt from a snapshot recreates
    /// the dedup records of the window from the batches it receives.
    pub dedup_window_ms: u64,
}

/// What a partition needs to know about its topic and the broker.
#[derive(Debug, Clone)]
pub struct PartitionOptions {
    pub settings: PartitionSettings,
    /// The broker-wide budget this partition's tail cache draws on.
    pub tail_budget: Arc<TailBudget>,
    pub max_group_commit_bytes: usize,
    pub producer_state_ttl_ms: u64,
    /// Set after each unsynced write of a `buffered` topic, so the broker's interval fsync
    /// knows there is something to sync.
    pub dirty: Arc<AtomicBool>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// Stamps append times and ages producer state.
    pub clock: Arc<dyn Clock>,
    /// The bytes the tenant stores, which this partition's bytes are part of (its storage
    /// quota).
    pub tenant_storage: Arc<AtomicU64>,
}

/// Called with the base offset once an append is stored, before readers can see it (so flow
/// events of a publish precede those of its deliveries).
pub type CommitHook = Box<dyn FnOnce(u64) + Send + Sync>;

/// An append waiting for its group commit.
pub struct AppendRequest {
    /// The validated, encoded `MessageBatch`; empty when `count` is 0.
    pub payload: Bytes,
    /// Messages appended to the log.
    pub count: u32,
    /// Stored-batch header flags (`batch::FLAG_*`).
    pub flags: u8,
    /// 0 when the producer is not idempotent.
    pub producer_id: u64,
    pub base_sequence: u64,
    /// Messages the producer counted (its sequence span); at least `count`.
    pub sequence_span: u32,
    /// Indexes of the producer's messages dropped as msg-id duplicates (remembered for retries).
    pub deduplicated: Vec<u32>,
    /// More changes committed atomically with the append: delayed messages and their release,
    /// msg-id dedup records.
    pub extras: Vec<AppendExtra>,
    /// Runs after the commit, before the high watermark moves.
    pub on_commit: Option<CommitHook>,
    /// Sum of the messages' value lengths, when the payload is the producer's batch unsplit
    /// (kept with the cached batch so deliveries need not walk it to count bytes).
    pub value_bytes: Option<u64>,
}

impl std::fmt::Debug for AppendRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendRequest")
            .field("count", &self.count)
            .field("flags", &self.flags)
            .field("producer_id", &self.producer_id)
            .field("base_sequence", &self.base_sequence)
            .field("on_commit", &self.on_commit.is_some())
            .finish_non_exhaustive()
    }
}

impl AppendRequest {
    /// A plain append of a validated batch.
    pub fn batch(payload: Bytes, count: u32, flags: u8) -> AppendRequest {
        AppendRequest {
            payload,
            count,
            flags,
            producer_id: 0,
            base_sequence: 0,
            sequence_span: count,
            deduplicated: Vec::new(),
            extras: Vec::new(),
            on_commit: None,
            value_bytes: None,
        }
    }
}

/// The acknowledgement of an append.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppendAck {
    pub base_offset: u64,
    pub count: u32,
    pub append_time_ms: i64,
    pub durability: AckDurability,
    pub duplicate: bool,
    /// For a duplicate: the indexes the original dropped as msg-id duplicates.
    pub deduplicated: Vec<u32>,
}

enum Command {
    Append(AppendRequest, oneshot::Sender<Result<AppendAck>>),
    Truncate {
        before: u64,
        done: oneshot::Sender<Result<()>>,
    },
    /// Commit what came before, then stop.
    Stop,
}

/// State shared by the writer task and every reader.
pub struct PartitionShared {
    pub topic_id: u32,
    pub index: u32,
    store: Arc<dyn Store>,
    /// Whether store calls do disk I/O and must run on the blocking pool.
    blocking_io: bool,
    hw: watch::Sender<u64>,
    log_start: AtomicU64,
    bytes: AtomicU64,
    /// The tenant's total, moved with `bytes`.
    tenant_storage: Arc<AtomicU64>,
    tail: Arc<TailCache>,
    /// The topic's settings it follows; a topic can be altered while it runs.
    settings: parking_lot::Mutex<PartitionSettings>,
}

/// A partition: the handle through which the engine appends and reads.
pub struct Partition {
    shared: Arc<PartitionShared>,
    backend: Backend,
}

/// Who takes a partition's writes (the group's side: `replicated.rs`).
enum Backend {
    /// The single-node writer task.
    Writer {
        tx: mpsc::Sender<Command>,
        task: Mutex<Option<JoinHandle<()>>>,
    },
    /// The partition's raft group (cluster mode): replaced when this node starts or stops
    /// holding one of its replicas (a replica move, `replicated/moves.rs`).
    Group(parking_lot::RwLock<Arc<dyn replicated::GroupLog>>),
}

impl Partition {
    /// Recovers the partition's state from `store` and starts its writer. Blocks on storage.
    pub fn open(
        topic_id: u32,
        index: u32,
        store: Arc<dyn Store>,
        blocking_io: bool,
        options: PartitionOptions,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Partition> {
        let shared = PartitionShared::open(
            topic_id,
            index,
            store,
            blocking_io,
            options.tail_budget.clone(),
            options.tenant_storage.clone(),
            options.settings,
        )?;
        let high_watermark = shared.high_watermark();
        let last_append_time_ms = shared.last_append_time_ms()?;
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let writer = Writer {
            shared: shared.clone(),
            rx,
            log: LogState {
                cursor: LogCursor {
                    next_offset: high_watermark,
                    last_append_time_ms,
                },
                producers: LruCache::unbounded(),
                cleanup_from: None,
            },
            task: format!("partition writer {topic_id}/{index}").into(),
            options,
        };
        let handle = runtime.spawn(writer.run());
        Ok(Partition {
            shared,
            backend: Backend::Writer {
                tx,
                task: Mutex::new(Some(handle)),
            },
        })
    }

    pub fn shared(&self) -> &Arc<PartitionShared> {
        &self.shared
    }

    /// Queues an append; the returned receiver resolves once it is committed (or failed).
    pub async fn append(
        &self,
        request: AppendRequest,
    ) -> Result<oneshot::Receiver<Result<AppendAck>>> {
        let tx = match &self.backend {
            Backend::Writer { tx, .. } => tx,
            Backend::Group(log) => {
                let log = Arc::clone(&log.read());
                return log.append(request).await;
            }
        };
        let (reply, rx) = oneshot::channel();
        tx.send(Command::Append(request, reply))
            .await
            .map_err(|_| Error::unavailable("the partition is closing"))?;
        Ok(rx)
    }

    /// Drops every batch that ends at or before `before` (retention).
    pub async fn truncate(&self, before: u64) -> Result<()> {
        let tx = match &self.backend {
            Backend::Writer { tx, .. } => tx,
            Backend::Group(log) => {
                let log = Arc::clone(&log.read());
                return log.truncate(before).await;
            }
        };
        let (done, rx) = oneshot::channel();
        tx.send(Command::Truncate { before, done })
            .await
            .map_err(|_| Error::unavailable("the partition is closing"))?;
        rx.await
            .map_err(|_| Error::unavailable("the partition is closing"))?
    }

    /// Stops the writer after it has committed everything already queued; later appends fail
    /// with `UNAVAILABLE`.
    pub async fn close(&self) {
        let (tx, task) = match &self.backend {
            Backend::Writer { tx, task } => (tx, task),
            Backend::Group(log) => {
                let log = Arc::clone(&log.read());
                return log.close().await;
            }
        };
        let _ = tx.send(Command::Stop).await;
        let handle = task.lock().take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }
}

/// A partition that goes (its topic deleted, the broker stopping) no longer counts towards its
/// tenant's storage.
impl Drop for PartitionShared {
    fn drop(&mut self) {
        self.tenant_storage
            .fetch_sub(self.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

impl PartitionShared {
    /// The shared state of partition `index` of topic `topic_id`, recovered from `store`.
    /// Blocks on storage.
    pub fn open(
        topic_id: u32,
        index: u32,
        store: Arc<dyn Store>,
        blocking_io: bool,
        tail_budget: Arc<TailBudget>,
        tenant_storage: Arc<AtomicU64>,
        settings: PartitionSettings,
    ) -> Result<Arc<PartitionShared>> {
        let (log_start, high_watermark, bytes) = recover(&*store, topic_id, index)?;
        tenant_storage.fetch_add(bytes, Ordering::Relaxed);
        let (hw, _) = watch::channel(high_watermark);
        Ok(Arc::new(PartitionShared {
            topic_id,
            index,
            store,
            blocking_io,
            hw,
            log_start: AtomicU64::new(log_start),
            bytes: AtomicU64::new(bytes),
            tenant_storage,
            tail: TailCache::new(tail_budget),
            settings: parking_lot::Mutex::new(settings),
        }))
    }

    /// The store this partition lives in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// What acks of this partition guarantee.
    pub fn ack(&self) -> AckDurability {
        self.settings.lock().ack
    }

    /// The topic's `msg-id` dedup window (0: off).
    pub fn dedup_window_ms(&self) -> u64 {
        self.settings.lock().dedup_window_ms
    }

    /// Follows an altered topic: later group commits take its durability.
    pub fn alter(&self, settings: PartitionSettings) {
        *self.settings.lock() = settings;
    }

    /// One past the last committed offset.
    pub fn high_watermark(&self) -> u64 {
        *self.hw.borrow()
    }

    /// A receiver that wakes whenever the high watermark moves.
    pub fn watch_high_watermark(&self) -> watch::Receiver<u64> {
        self.hw.subscribe()
    }

    /// The append time of the last batch below the high watermark, 0 when none is left: where
    /// a reopened log's append times go on from, so that they stay monotonic across a restart
    /// and a partition group's replica that restarted stamps an entry as the others do. A
    /// log whose every batch was trimmed starts again from 0. Blocks.
    pub fn last_append_time_ms(&self) -> Result<i64> {
        let (t, p) = (self.topic_id, self.index);
        let Some(last) = self.high_watermark().checked_sub(1) else {
            return Ok(0);
        };
        let found = self.store.seek_prev(
            Cf::Index,
            &keys::log_key(t, p, 0),
            &keys::log_key(t, p, last),
        )?;
        match found {
            Some((_, value)) => Ok(IndexEntry::decode(&value)?.append_time_ms),
            None => Ok(0),
        }
    }

    /// Wakes every watcher of the high watermark without moving it.
    pub fn wake_readers(&self) {
        self.hw.send_modify(|_| {});
    }

    /// The first offset still retained.
    pub fn log_start(&self) -> u64 {
        self.log_start.load(Ordering::Acquire)
    }

    /// Bytes stored for this partition.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn add_bytes(&self, added: u64) {
        self.bytes.fetch_add(added, Ordering::Relaxed);
        self.tenant_storage.fetch_add(added, Ordering::Relaxed);
    }

    fn remove_bytes(&self, removed: u64) {
        let removed = removed.min(self.bytes());
        self.bytes.fetch_sub(removed, Ordering::Relaxed);
        self.tenant_storage.fetch_sub(removed, Ordering::Relaxed);
    }

    /// Sets the bytes to what a recovery counted, moving the tenant's total by the difference.
    fn set_bytes(&self, bytes: u64) {
        let before = self.bytes.swap(bytes, Ordering::Relaxed);
        self.tenant_storage.fetch_add(bytes, Ordering::Relaxed);
        self.tenant_storage.fetch_sub(before, Ordering::Relaxed);
    }

    /// Committed batches from the one holding `from` (or the first retained one, if `from` is
    /// older), at most `max_batches` of them and about `max_bytes`. Empty at the high watermark.
    pub async fn read(
        self: &Arc<Self>,
        from: u64,
        max_batches: usize,
        max_bytes: usize,
    ) -> Result<Vec<Arc<StoredBatch>>> {
        let from = from.max(self.log_start());
        let hw = self.high_watermark();
        if from >= hw || max_batches == 0 {
            return Ok(Vec::new());
        }
        if let Some(batches) = self.tail.read(from, max_batches, max_bytes) {
            return Ok(batches);
        }
        let this = self.clone();
        self.blocking(move || this.read_store(from, hw, max_batches, max_bytes))
            .await
    }

    fn read_store(
        &self,
        from: u64,
        hw: u64,
        max_batches: usize,
        max_bytes: usize,
    ) -> Result<Vec<Arc<StoredBatch>>> {
        let (t, p) = (self.topic_id, self.index);
        let lower = keys::log_key(t, p, 0);
        let start = match self
            .store
            .seek_prev(Cf::Index, &lower, &keys::log_key(t, p, from))?
        {
            Some((key, value)) => {
                let base = keys::offset_of_log_key(&key).unwrap_or(from);
                let entry = IndexEntry::decode(&value)?;
                if base + u64::from(entry.count) > from {
                    base
                } else {
                    from
                }
            }
            None => from,
        };
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut cursor = keys::log_key(t, p, start);
        let end = keys::log_key(t, p, hw);
        'scan: while out.len() < max_batches && bytes < max_bytes {
            let chunk =
                self.store
                    .scan(Cf::Log, &cursor, &end, (max_batches - out.len()).min(64))?;
            let Some((last_key, _)) = chunk.last() else {
                break;
            };
            cursor = keys::log_key(
                t,
                p,
                keys::offset_of_log_key(last_key).unwrap_or(u64::MAX - 1) + 1,
            );
            for (_, value) in chunk {
                let batch = batch::decode_stored(value)?;
                if batch.end_offset() <= from {
                    continue;
                }
                bytes += batch.payload.len();
                out.push(Arc::new(batch));
                if out.len() >= max_batches || bytes >= max_bytes {
                    break 'scan;
                }
            }
        }
        if out.is_empty() {
            // Nothing in `Cf::Log` from there: a replicated partition's batches are in its
            // raft log, where the index entries point (`located.rs`).
            return self.read_indexed(start, from, hw, max_batches, max_bytes);
        }
        Ok(out)
    }

    /// Index entries `(base_offset, entry)` from the batch holding `from` on, at most `limit`.
    pub fn scan_index(&self, from: u64, limit: usize) -> Result<Vec<(u64, IndexEntry)>> {
        let (t, p) = (self.topic_id, self.index);
        let entries = self.store.scan(
            Cf::Index,
            &keys::log_key(t, p, from),
            &keys::log_key(t, p, u64::MAX),
            limit,
        )?;
        entries
            .into_iter()
            .map(|(key, value)| {
                let base = keys::offset_of_log_key(&key)
                    .ok_or_else(|| Error::internal("bad index key"))?;
                Ok((base, IndexEntry::decode(&value)?))
            })
            .collect()
    }

    /// Keys of producer state last written before `cutoff_ms`.
    pub fn expired_producers(&self, cutoff_ms: i64) -> Result<Vec<Vec<u8>>> {
        let (t, p) = (self.topic_id, self.index);
        let from = keys::producer_key(t, p, 0);
        let to = keys::producer_key(t, p, u64::MAX);
        let mut expired = Vec::new();
        for (key, value) in self.store.scan(Cf::Producers, &from, &to, usize::MAX)? {
            if ProducerState::decode(&value).is_none_or(|state| state.last_write_ms < cutoff_ms) {
                expired.push(key);
            }
        }
        Ok(expired)
    }

    pub fn delete_producers(&self, keys: Vec<Vec<u8>>) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::new();
        for key in keys {
            batch.delete(Cf::Producers, key);
        }
        Ok(self.store.write(batch, false)?)
    }

    /// The first offset appended at or after `timestamp_ms`; the high watermark if none was.
    pub async fn offset_for_timestamp(self: &Arc<Self>, timestamp_ms: i64) -> Result<u64> {
        let this = self.clone();
        self.blocking(move || {
            let mut from = this.log_start();
            loop {
                let entries = this.scan_index(from, INDEX_CHUNK)?;
                let Some(&(last_base, last)) = entries.last() else {
                    return Ok(this.high_watermark());
                };
                if let Some((base, _)) = entries
                    .iter()
                    .find(|(_, e)| e.append_time_ms >= timestamp_ms)
                {
                    return Ok(*base);
                }
                from = last_base + u64::from(last.count);
            }
        })
        .await
    }

    /// Runs a store call on the blocking pool when it does disk I/O.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if self.blocking_io {
            tokio::task::spawn_blocking(f)
                .await
                .map_err(|err| Error::internal(format!("storage task failed: {err}")))?
        } else {
            f()
        }
    }
}

/// Reads `(log_start, high_watermark, bytes)` back from the index and the watermark record.
fn recover(store: &dyn Store, topic_id: u32, index: u32) -> Result<(u64, u64, u64)> {
    let watermark = store
        .get(Cf::Meta, &keys::watermark_key(topic_id, index))?
        .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0);
    let mut first = None;
    let mut end = 0;
    let mut bytes = 0u64;
    let mut cursor = keys::log_key(topic_id, index, 0);
    let stop = keys::log_key(topic_id, index, u64::MAX);
    loop {
        let chunk = store.scan(Cf::Index, &cursor, &stop, INDEX_CHUNK)?;
        let Some((last_key, _)) = chunk.last() else {
            break;
        };
        cursor = keys::log_key(
            topic_id,
            index,
            keys::offset_of_log_key(last_key).unwrap_or(u64::MAX - 1) + 1,
        );
        for (key, value) in chunk {
            let base =
                keys::offset_of_log_key(&key).ok_or_else(|| Error::internal("bad index key"))?;
            let entry = IndexEntry::decode(&value)?;
            first.get_or_insert(base);
            end = base + u64::from(entry.count);
            bytes += u64::from(entry.stored_len);
        }
    }
    let high_watermark = end.max(watermark);
    Ok((first.unwrap_or(high_watermark), high_watermark, bytes))
}

#[cfg(test)]
mod tests;
