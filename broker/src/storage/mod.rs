//! Storage: the [`Store`] trait and its two implementations.
//!
//! - [`RocksStore`]: embedded RocksDB, one column family per concern ([`Cf`]). Everything durable.
//!   Opening a data directory from an older version creates the column families it lacks.
//! - [`MemStore`]: ordered in-memory maps with the same interface, for `memory` topics (never
//!   written to disk) and for tests.
//!
//! The engine never talks to RocksDB directly. It turns each command into a [`WriteBatch`] and
//! hands it to [`Store::write`], so a write is atomic across column families, and a single-node
//! commit is exactly one `write` (with one fsync when `sync` is set).
//!
//! A failed write or sync of the disk store marks it failed until [`RocksStore::recover`]
//! succeeds (see `rocks.rs`); `fault` is the test-only fault injection.

pub mod fault;
mod memory;
mod rocks;

use std::sync::Arc;

use bytes::Bytes;

pub use memory::MemStore;
pub use rocks::{RocksStore, RocksTuning};

/// Column families, one per concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cf {
    /// Stored batches, keyed by `(topic_id, partition, base_offset)`.
    Log,
    /// One small entry per stored batch (count, append time, size), same keys as `Log`.
    Index,
    /// Topics and subscriptions.
    Meta,
    /// Committed offsets of stream subscriptions.
    Cursors,
    /// Idempotent-producer state per `(topic_id, partition, producer_id)`.
    Producers,
    /// Queue-mode ack state per `(topic_id, subscription, partition)`.
    Acks,
    /// Delayed messages, keyed by due time first.
    Schedule,
    /// `msg-id` dedup records per `(topic_id, msg-id)`.
    Dedup,
    /// The audit log, keyed by `(ts_ms, node, seq)` (`crate::audit`).
    Audit,
    /// Raft log entries of every raft group, keyed by `(group_id, raft_index)` (`crate::cluster`).
    RaftLog,
    /// Per raft group: vote, committed and last purged log ids, applied state and the current
    /// snapshot (`crate::cluster::keys`).
    RaftState,
}

impl Cf {
    /// Every column family.
    pub const ALL: [Cf; 11] = [
        Cf::Log,
        Cf::Index,
        Cf::Meta,
        Cf::Cursors,
        Cf::Producers,
        Cf::Acks,
        Cf::Schedule,
        Cf::Dedup,
        Cf::Audit,
        Cf::RaftLog,
        Cf::RaftState,
    ];

    /// The RocksDB column family name.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Log => "log",
            Cf::Index => "index",
            Cf::Meta => "meta",
            Cf::Cursors => "cursors",
            Cf::Producers => "producers",
            Cf::Acks => "acks",
            Cf::Schedule => "schedule",
            Cf::Dedup => "dedup",
            Cf::Audit => "audit",
            Cf::RaftLog => "raft_log",
            Cf::RaftState => "raft_state",
        }
    }
}

/// One change inside a [`WriteBatch`].
#[derive(Debug, Clone)]
pub enum Op {
    Put {
        cf: Cf,
        key: Vec<u8>,
        value: Bytes,
    },
    Delete {
        cf: Cf,
        key: Vec<u8>,
    },
    /// Deletes every key in `[from, to)`.
    DeleteRange {
        cf: Cf,
        from: Vec<u8>,
        to: Vec<u8>,
    },
}

/// Changes applied atomically by one [`Store::write`].
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    ops: Vec<Op>,
}

impl WriteBatch {
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    pub fn put(&mut self, cf: Cf, key: Vec<u8>, value: impl Into<Bytes>) {
        self.ops.push(Op::Put {
            cf,
            key,
            value: value.into(),
        });
    }

    pub fn delete(&mut self, cf: Cf, key: Vec<u8>) {
        self.ops.push(Op::Delete { cf, key });
    }

    pub fn delete_range(&mut self, cf: Cf, from: Vec<u8>, to: Vec<u8>) {
        self.ops.push(Op::DeleteRange { cf, from, to });
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Appends every change of `other`.
    pub fn extend(&mut self, other: WriteBatch) {
        self.ops.extend(other.ops);
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }
}

/// A storage failure. The engine reports it to clients as `STORAGE_ERROR` (retriable).
#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub struct StorageError(pub String);

impl From<rocksdb::Error> for StorageError {
    fn from(err: rocksdb::Error) -> Self {
        StorageError(err.into_string())
    }
}

/// Told of every read that found stored data damaged (a value failing the checksum it was
/// stored with: a flipped byte, a truncated file): the column family and the key the read
/// asked for (a scan's first key). Called on the reading thread; it must not block.
pub type DamageSink = Arc<dyn Fn(Cf, &[u8]) + Send + Sync>;

/// A key-ordered store with atomic multi-column-family writes.
///
/// Calls block (RocksDB does disk I/O); async callers run them on the blocking pool.
pub trait Store: Send + Sync + 'static {
    /// Applies `batch` atomically. With `sync`, returns only after the write is on stable
    /// storage (one fsync of the write-ahead log for the whole batch).
    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), StorageError>;

    /// The value at `key`.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Bytes>, StorageError>;

    /// Up to `limit` entries with `from <= key < to`, in key order.
    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, StorageError>;

    /// The entry with the greatest key in `[lower, at]`.
    fn seek_prev(
        &self,
        cf: Cf,
        lower: &[u8],
        at: &[u8],
    ) -> Result<Option<(Vec<u8>, Bytes)>, StorageError>;

    /// Makes every earlier write durable (used by `buffered` topics on an interval).
    fn sync(&self) -> Result<(), StorageError>;

    /// Number of fsyncs issued so far (for benchmarks and metrics).
    fn fsyncs(&self) -> u64;

    /// Reads every value with `from <= key < to` and checks it against the checksums it was
    /// stored with: `Ok(None)` when all of them match, `Ok(Some(what))` when stored data is
    /// damaged (a flipped byte, a truncated file), `Err` when the read failed otherwise. A
    /// store that keeps no checksums (memory) finds nothing.
    fn verify(&self, _cf: Cf, _from: &[u8], _to: &[u8]) -> Result<Option<String>, StorageError> {
        Ok(None)
    }

    /// From now on, every `get`, `scan` or `seek_prev` that fails because stored data is
    /// damaged also tells `sink` (set once; later calls are ignored). The read still fails
    /// as before. A store that keeps no checksums (memory) never calls it.
    fn on_damage(&self, _sink: DamageSink) {}
}

#[cfg(test)]
mod tests;
