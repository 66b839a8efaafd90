//! Stored batches: validation of a producer's encoded `MessageBatch`, and the small header the
//! broker puts in front of it.
//!
//! - `validate.rs`: the strict walk of a producer's batch on publish (as strict as prost).
//! - `values.rs`: the lenient walk of a stored batch that counts a delivery's value bytes.
//! - here: the stored value's header and the per-batch index entry.
//!
//! The broker never re-encodes a batch. It walks the protobuf wire format once to count messages
//! and check limits (no allocation, no payload copies), exactly as strictly as prost decodes it
//! (a batch that is stored must be readable by every consumer), then stores
//! `header ++ batch bytes` as one RocksDB value and serves `batch bytes` unchanged.
//!
//! Stored value layout (version 1, big-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 0 | version (1) |
//! | 1 | flags: bit 0 = some message has a TTL |
//! | 2..10 | base offset |
//! | 10..14 | message count |
//! | 14..22 | broker append time, ms since the epoch |
//! | 22..30 | producer id (0 when not idempotent) |
//! | 30..38 | producer base sequence |
//! | 38.. | the producer's encoded `MessageBatch` |
//!
//! Batches holding delayed messages (`deliver_at_ms`/`delay_ms`) or, on topics with a dedup
//! window, `msg-id` headers are the exception: the broker decodes and splits them (see
//! `publish.rs`), because some of their messages do not go to the log now.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};

mod validate;
mod values;

#[cfg(test)]
mod tests;

pub use validate::{BatchSummary, Limits, validate};
pub use values::value_bytes;

const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 38;

/// Header flag: at least one message of the batch has a TTL.
pub const FLAG_TTL: u8 = 1;

/// Header flag: at least one message of the batch is traced (a `traceparent` or `msg-id`
/// header, or every message when the broker traces all): deliveries record flow events.
pub const FLAG_TRACED: u8 = 2;

/// Highest priority a message may carry.
pub const MAX_PRIORITY: u64 = 9;

/// One batch as stored and served.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredBatch {
    pub flags: u8,
    pub base_offset: u64,
    pub count: u32,
    pub append_time_ms: i64,
    /// The producer's encoded `MessageBatch`.
    pub payload: Bytes,
    /// Sum of the messages' value lengths, when known without a walk (batches appended as the
    /// producer sent them, while they are in the tail cache); `None` after a store read.
    pub value_bytes: Option<u64>,
}

impl StoredBatch {
    /// One past the last offset in the batch.
    pub fn end_offset(&self) -> u64 {
        self.base_offset + u64::from(self.count)
    }

    /// Bytes the batch occupies in storage.
    pub fn stored_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }
}

/// Builds the stored value for a batch.
#[allow(clippy::too_many_arguments)]
pub fn encode_stored(
    flags: u8,
    base_offset: u64,
    count: u32,
    append_time_ms: i64,
    producer_id: u64,
    base_sequence: u64,
    payload: &[u8],
) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEADER_LEN + payload.len());
    buf.put_u8(VERSION);
    buf.put_u8(flags);
    buf.put_u64(base_offset);
    buf.put_u32(count);
    buf.put_i64(append_time_ms);
    buf.put_u64(producer_id);
    buf.put_u64(base_sequence);
    buf.put_slice(payload);
    buf.freeze()
}

/// Reads a stored value back. The payload is a slice of `value`, not a copy.
pub fn decode_stored(value: Bytes) -> Result<StoredBatch> {
    if value.len() < HEADER_LEN || value[0] != VERSION {
        return Err(Error::internal("stored batch has an unknown format"));
    }
    let flags = value[1];
    let mut header = &value[2..HEADER_LEN];
    let base_offset = header.get_u64();
    let count = header.get_u32();
    let append_time_ms = header.get_i64();
    Ok(StoredBatch {
        flags,
        base_offset,
        count,
        append_time_ms,
        payload: value.slice(HEADER_LEN..),
        value_bytes: None,
    })
}

pub use rapidmq_proto::{MSG_ID_HEADER, TRACEPARENT_HEADER};

/// Per-batch index entry: message count, append time and stored size, and for a replicated
/// partition where the batch lives in the raft log.
///
/// Encoded as 16 bytes (`count u32 | append time i64 | stored len u32`), the single-node layout,
/// or 32 when the batch is stored once, as its raft log entry (`... | group u64 | raft index
/// u64`): the batch is then not in `Cf::Log` (docs/adr/0005-clustering.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub count: u32,
    pub append_time_ms: i64,
    /// What the batch would occupy as a `Cf::Log` value (header and payload), wherever it lives.
    pub stored_len: u32,
    /// Where a replicated partition's batch lives: `None` when it is in `Cf::Log`.
    pub raft: Option<RaftLocation>,
}

/// The raft log entry holding a batch: key `group | index` in `Cf::RaftLog`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftLocation {
    pub group: u64,
    pub index: u64,
}

impl IndexEntry {
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(32);
        buf.put_u32(self.count);
        buf.put_i64(self.append_time_ms);
        buf.put_u32(self.stored_len);
        if let Some(raft) = self.raft {
            buf.put_u64(raft.group);
            buf.put_u64(raft.index);
        }
        buf.freeze()
    }

    pub fn decode(mut value: &[u8]) -> Result<IndexEntry> {
        if value.len() != 16 && value.len() != 32 {
            return Err(Error::internal("index entry has an unknown format"));
        }
        let mut entry = IndexEntry {
            count: value.get_u32(),
            append_time_ms: value.get_i64(),
            stored_len: value.get_u32(),
            raft: None,
        };
        if value.has_remaining() {
            entry.raft = Some(RaftLocation {
                group: value.get_u64(),
                index: value.get_u64(),
            });
        }
        Ok(entry)
    }
}
