//! What committing an append means, shared by the single-node writer (`writer.rs`) and a
//! partition group's state machine (`cluster/partition_group.rs`), so both assign offsets and
//! answer idempotent producers the same way.
//!
//! A commit is two steps around one store write:
//! - **stage** ([`stage_append`]): given the partition's log state (the next offset, the last
//!   append time, the producers' sequence state), decide what one append becomes: a sequence
//!   check, then offsets and an append time, the disk changes in the [`WriteBatch`] (the stored
//!   batch in `Cf::Log` unless a raft log entry holds it, its `Cf::Index` entry, the producer's state in `Cf::Producers`, the
//!   [`AppendExtra`]s) and the batch to publish. It touches no memory readers see.
//! - **publish** ([`PartitionShared::publish`]): once the write succeeded, make it visible:
//!   bytes, tail cache, high watermark. When the write failed, the owner of the log state rolls
//!   it back instead (the writer: [`LogState::roll_back`]).

use std::sync::Arc;

use bytes::Bytes;
use lru::LruCache;
use rapidmq_proto::ErrorCode;

use super::{AppendAck, AppendExtra, PartitionShared, keys};
use crate::engine::batch::{self, IndexEntry, RaftLocation, StoredBatch};
use crate::engine::producer::{RecentBatch, SequenceCheck};
use crate::engine::topic::AckDurability;
use crate::error::{Error, Result};
use crate::storage::{Cf, WriteBatch};

/// The keys and producer state a partition group's snapshot writes, as the writer lays them out.
pub use crate::engine::keys::{log_key, offset_of_log_key, producer_key, watermark_key};
pub use crate::engine::producer::ProducerState;

/// Where the next append goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCursor {
    pub next_offset: u64,
    /// Append times never go backwards, even when the clock does.
    pub last_append_time_ms: i64,
}

/// The producers' sequence state a commit reads and advances, wherever it is kept.
pub trait ProducerStates {
    /// The state of producer `id`, if it has one.
    fn get(&mut self, id: u64) -> Option<&ProducerState>;
    /// Forgets producer `id` (its state expired).
    fn forget(&mut self, id: u64);
    /// The state of producer `id`, a fresh one if it had none.
    fn entry(&mut self, id: u64) -> &mut ProducerState;
}

impl ProducerStates for LruCache<u64, ProducerState> {
    fn get(&mut self, id: u64) -> Option<&ProducerState> {
        LruCache::get(self, &id)
    }

    fn forget(&mut self, id: u64) {
        self.pop(&id);
    }

    fn entry(&mut self, id: u64) -> &mut ProducerState {
        self.get_or_insert_mut(id, ProducerState::default)
    }
}

/// The single writer's log state: its cursor, the producers it keeps in memory, and where the
/// next write must first delete what a failed write may have left.
pub struct LogState {
    pub cursor: LogCursor,
    pub producers: LruCache<u64, ProducerState>,
    /// Set after a failed write: the next write first deletes the log and index from here on.
    pub cleanup_from: Option<u64>,
}

impl LogState {
    /// Nothing of a write that failed is visible: gives its offsets back (from `first_offset`),
    /// has the next write delete anything the store may still hold there, and forgets producer
    /// state the staging advanced, so it is reloaded from the store.
    pub fn roll_back(&mut self, first_offset: u64) {
        self.cursor.next_offset = first_offset;
        self.cleanup_from = Some(
            self.cleanup_from
                .map_or(first_offset, |c| c.min(first_offset)),
        );
        self.producers.clear();
    }

    /// Puts the deletion of a failed write's leftovers in front of `ops`, if one is due.
    pub fn with_cleanup(&self, topic_id: u32, partition: u32, ops: WriteBatch) -> WriteBatch {
        let Some(from) = self.cleanup_from else {
            return ops;
        };
        let mut cleanup = WriteBatch::new();
        let lower = keys::log_key(topic_id, partition, from);
        let upper = keys::log_key(topic_id, partition, u64::MAX);
        cleanup.delete_range(Cf::Log, lower.clone(), upper.clone());
        cleanup.delete_range(Cf::Index, lower, upper);
        cleanup.extend(ops);
        cleanup
    }
}

/// The partition an append is staged for and what its acks guarantee.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub topic_id: u32,
    pub partition: u32,
    pub durability: AckDurability,
    /// Producer state unused for longer than this is forgotten.
    pub producer_state_ttl_ms: u64,
    pub new_producers: NewProducers,
}

/// What the first batch of a producer the partition keeps no state for may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewProducers {
    /// Any sequence. Single-node mode: its one writer takes a partition's batches in the order
    /// they arrive, and its retention pass deletes the state of producers idle for longer than
    /// `producer_state_ttl_ms`, which then go on from where they were.
    AnySequence,
    /// Sequence 0 only. A partition group: a producer's batch can reach the group ahead of the
    /// batch before it, when the node that proposed that one lost the leadership before it was
    /// committed and forwarded the next one to the new leader. Taken as a new producer's first
    /// batch it would be stored ahead of its predecessor, which could then never be stored
    /// (docs/clustering.md "The produce path"). A group forgets a producer's state only
    /// when the producer's next batch finds it expired, and takes that batch whatever its
    /// sequence.
    FromZero,
}

/// One append as data: what an `AppendRequest` carries minus its hooks.
#[derive(Debug)]
pub struct Append<'a> {
    pub payload: &'a Bytes,
    pub count: u32,
    pub flags: u8,
    pub producer_id: u64,
    pub base_sequence: u64,
    pub sequence_span: u32,
    pub deduplicated: Vec<u32>,
    pub extras: &'a [AppendExtra],
    pub value_bytes: Option<u64>,
    /// The raft log entry that holds the batch (a replicated partition): only its index entry
    /// is written, pointing there; `None` writes the batch to `Cf::Log`.
    pub raft: Option<RaftLocation>,
}

/// What staging made of one append.
#[derive(Debug)]
pub enum Staged {
    /// Appended: its disk changes are in the batch, its stored batch (if it has messages) in
    /// `stored`.
    Appended(AppendAck),
    /// A retry of a batch already stored (or staged): answered with the original's offsets.
    Duplicate(AppendAck),
    /// Refused by the sequence check; nothing was staged.
    Refused(Error),
}

/// Stages one append at `cursor`: the sequence check against `producers` (at time `now`), then
/// offsets, append time, and its disk changes into `ops`. Advances `cursor` and `producers`.
pub fn stage_append(
    target: &Target,
    cursor: &mut LogCursor,
    producers: &mut impl ProducerStates,
    append: Append<'_>,
    now: i64,
    ops: &mut WriteBatch,
    stored: &mut Vec<Arc<StoredBatch>>,
) -> Staged {
    let (t, p) = (target.topic_id, target.partition);
    let ack = |base_offset, count, append_time_ms, duplicate| AppendAck {
        base_offset,
        count,
        append_time_ms,
        durability: target.durability,
        duplicate,
        deduplicated: Vec::new(),
    };
    if append.producer_id != 0 {
        match sequence_check(target, producers, &append, now) {
            SequenceCheck::Append => {}
            SequenceCheck::Duplicate(original) => {
                let mut ack = ack(
                    original.base_offset,
                    original.count,
                    original.append_time_ms,
                    true,
                );
                ack.deduplicated = original.deduplicated;
                return Staged::Duplicate(ack);
            }
            SequenceCheck::DuplicateUnknown => {
                return Staged::Refused(Error::new(
                    ErrorCode::OutOfOrderSequence,
                    format!(
                        "batch with sequence {} of producer {} was stored long ago; its offsets are no longer known",
                        append.base_sequence, append.producer_id
                    ),
                ));
            }
            SequenceCheck::Gap { expected } => {
                return Staged::Refused(Error::new(
                    ErrorCode::OutOfOrderSequence,
                    format!(
                        "producer {} sent sequence {} but {} was expected: batches in between are missing",
                        append.producer_id, append.base_sequence, expected
                    ),
                ));
            }
        }
    }
    let base_offset = cursor.next_offset;
    let append_time_ms = now.max(cursor.last_append_time_ms);
    cursor.next_offset += u64::from(append.count);
    cursor.last_append_time_ms = append_time_ms;

    if append.count > 0 {
        let key = keys::log_key(t, p, base_offset);
        let stored_len = batch::HEADER_LEN + append.payload.len();
        let entry = IndexEntry {
            count: append.count,
            append_time_ms,
            stored_len: stored_len as u32,
            raft: append.raft,
        };
        ops.put(Cf::Index, key.clone(), entry.encode());
        // A batch the raft log holds is not written again, nor copied: the tail cache shares
        // the entry's payload.
        let payload = match append.raft {
            Some(_) => append.payload.clone(),
            None => {
                let value = batch::encode_stored(
                    append.flags,
                    base_offset,
                    append.count,
                    append_time_ms,
                    append.producer_id,
                    append.base_sequence,
                    append.payload,
                );
                ops.put(Cf::Log, key, value.clone());
                value.slice(batch::HEADER_LEN..)
            }
        };
        stored.push(Arc::new(StoredBatch {
            flags: append.flags,
            base_offset,
            count: append.count,
            append_time_ms,
            payload,
            value_bytes: append.value_bytes,
        }));
    }
    for extra in append.extras {
        extra.write_to(t, ops);
    }
    if append.producer_id != 0 {
        let state = producers.entry(append.producer_id);
        state.record(RecentBatch {
            base_sequence: append.base_sequence,
            span: append.sequence_span,
            base_offset,
            count: append.count,
            append_time_ms,
            deduplicated: append.deduplicated,
        });
        ops.put(
            Cf::Producers,
            keys::producer_key(t, p, append.producer_id),
            state.encode(),
        );
    }
    Staged::Appended(ack(base_offset, append.count, append_time_ms, false))
}

/// Classifies an idempotent producer's batch, first forgetting the producer's state if it
/// expired by `now`.
fn sequence_check(
    target: &Target,
    producers: &mut impl ProducerStates,
    append: &Append<'_>,
    now: i64,
) -> SequenceCheck {
    let id = append.producer_id;
    let ttl = i64::try_from(target.producer_state_ttl_ms).unwrap_or(i64::MAX);
    match producers.get(id) {
        Some(state) if now.saturating_sub(state.last_write_ms) > ttl => {
            producers.forget(id);
            SequenceCheck::Append
        }
        None if target.new_producers == NewProducers::FromZero && append.base_sequence != 0 => {
            SequenceCheck::Gap { expected: 0 }
        }
        state => ProducerState::check(state, append.base_sequence),
    }
}

/// The bytes `stored` occupies in the store.
pub fn stored_bytes(stored: &[Arc<StoredBatch>]) -> u64 {
    stored.iter().map(|b| b.stored_len() as u64).sum()
}

/// A batch as a trim sees it: where it starts, how many offsets it spans, its stored bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub base_offset: u64,
    pub count: u32,
    pub stored_len: u32,
}

impl PartitionShared {
    /// Makes a successful write visible: counts its bytes, publishes its batches to the tail
    /// cache, and moves the high watermark to `high_watermark`.
    pub fn publish(&self, stored: Vec<Arc<StoredBatch>>, added: u64, high_watermark: u64) {
        self.add_bytes(added);
        self.tail.push(stored);
        self.hw.send_replace(high_watermark);
    }

    /// Plans a trim (retention): every batch that ends at or before `before` goes. Walks the
    /// index from `log_start`, then `pending` (batches staged but not yet written, in order),
    /// and puts the deletions and the watermark record (`high_watermark`) in `ops`. Returns
    /// `(removed bytes, the new log start)`; `log_start` itself when nothing goes. Blocks.
    pub fn plan_trim(
        &self,
        log_start: u64,
        before: u64,
        high_watermark: u64,
        pending: &[Span],
        ops: &mut WriteBatch,
    ) -> Result<(u64, u64)> {
        let (t, p) = (self.topic_id, self.index);
        let mut removed = 0u64;
        let mut from = log_start;
        let mut drop_up_to = |span: Span, from: &mut u64| {
            if span.base_offset + u64::from(span.count) > before {
                return false;
            }
            removed += u64::from(span.stored_len);
            *from = span.base_offset + u64::from(span.count);
            true
        };
        let mut reached = false;
        'scan: loop {
            let entries = self.scan_index(from, super::INDEX_CHUNK)?;
            if entries.is_empty() {
                break;
            }
            for (base, entry) in entries {
                let span = Span {
                    base_offset: base,
                    count: entry.count,
                    stored_len: entry.stored_len,
                };
                if !drop_up_to(span, &mut from) {
                    reached = true;
                    break 'scan;
                }
            }
        }
        if !reached {
            let start = from;
            for span in pending.iter().filter(|s| s.base_offset >= start) {
                if !drop_up_to(*span, &mut from) {
                    break;
                }
            }
        }
        // `from` is now the end of the last whole batch to drop: cut there.
        let cut = from;
        ops.delete_range(Cf::Log, keys::log_key(t, p, 0), keys::log_key(t, p, cut));
        ops.delete_range(Cf::Index, keys::log_key(t, p, 0), keys::log_key(t, p, cut));
        ops.put(
            Cf::Meta,
            keys::watermark_key(t, p),
            Bytes::copy_from_slice(&high_watermark.to_be_bytes()),
        );
        Ok((removed, cut))
    }

    /// Replaces what readers see with an installed snapshot's state: the log start, the high
    /// watermark, the bytes stored; the tail cache is dropped (reads go to the store).
    pub fn restored(&self, log_start: u64, high_watermark: u64, bytes: u64) {
        self.tail.clear();
        self.set_bytes(bytes);
        self.log_start
            .store(log_start, std::sync::atomic::Ordering::Release);
        self.hw.send_replace(high_watermark);
    }

    /// Makes a written trim visible: the new log start, the bytes it freed, the tail cache.
    pub fn trimmed(&self, removed: u64, cut: u64) {
        if cut <= self.log_start() {
            return;
        }
        self.log_start
            .store(cut, std::sync::atomic::Ordering::Release);
        self.remove_bytes(removed);
        self.tail.truncate(cut);
    }
}
