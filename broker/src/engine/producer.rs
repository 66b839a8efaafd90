//! Idempotent-producer state: for each `(partition, producer_id)`, the next expected sequence and
//! the offsets of the last few batches, so a retried batch gets its original offsets back.
//!
//! The state is written in the same WriteBatch as the append it describes, so after a crash it
//! is exactly as durable as the data, and dedup holds across restarts.

use std::collections::VecDeque;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// How many recent batches per producer keep their offsets. Clients keep at most this many
/// batches in flight per partition.
pub const RECENT_BATCHES: usize = 8;

/// Encoded size of one [`RecentBatch`] without its deduplicated indexes.
const ENTRY_LEN: usize = 34;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentBatch {
    pub base_sequence: u64,
    /// Messages the producer counted in the batch (its sequence numbers).
    pub span: u32,
    pub base_offset: u64,
    /// Messages the batch put in the log (fewer than `span` when some were delayed or deduplicated).
    pub count: u32,
    pub append_time_ms: i64,
    /// Indexes of the batch's messages dropped as msg-id duplicates, so a retry is answered
    /// exactly as the original was.
    pub deduplicated: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerState {
    pub next_sequence: u64,
    pub last_write_ms: i64,
    pub recent: VecDeque<RecentBatch>,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceCheck {
    /// The expected next batch (or the producer is unknown): append it.
    Append,
    /// Already stored: answer with these offsets.
    Duplicate(RecentBatch),
    /// Already stored, but too long ago to know its offsets.
    DuplicateUnknown,
    /// Sequences were skipped: batches in between never arrived.
    Gap { expected: u64 },
}

impl ProducerState {
    /// Classifies a batch starting at `base_sequence`.
    pub fn check(state: Option<&ProducerState>, base_sequence: u64) -> SequenceCheck {
        let Some(state) = state else {
            return SequenceCheck::Append;
        };
        if base_sequence == state.next_sequence {
            return SequenceCheck::Append;
        }
        if base_sequence > state.next_sequence {
            return SequenceCheck::Gap {
                expected: state.next_sequence,
            };
        }
        state
            .recent
            .iter()
            .find(|b| b.base_sequence == base_sequence)
            .map_or(SequenceCheck::DuplicateUnknown, |b| {
                SequenceCheck::Duplicate(b.clone())
            })
    }

    /// Records an appended batch.
    pub fn record(&mut self, batch: RecentBatch) {
        // `publish::check_sequence` refused batches whose span passes `u64::MAX`.
        self.next_sequence = batch.base_sequence.saturating_add(u64::from(batch.span));
        self.last_write_ms = batch.append_time_ms;
        if self.recent.len() == RECENT_BATCHES {
            self.recent.pop_front();
        }
        self.recent.push_back(batch);
    }

    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(17 + self.recent.len() * ENTRY_LEN);
        buf.put_u64(self.next_sequence);
        buf.put_i64(self.last_write_ms);
        buf.put_u8(self.recent.len() as u8);
        for b in &self.recent {
            buf.put_u64(b.base_sequence);
            buf.put_u32(b.span);
            buf.put_u64(b.base_offset);
            buf.put_u32(b.count);
            buf.put_i64(b.append_time_ms);
            buf.put_u16(b.deduplicated.len() as u16);
            for index in &b.deduplicated {
                buf.put_u32(*index);
            }
        }
        buf.freeze()
    }

    /// Decodes a stored state; `None` if the bytes are not one.
    pub fn decode(mut value: &[u8]) -> Option<ProducerState> {
        if value.len() < 17 {
            return None;
        }
        let next_sequence = value.get_u64();
        let last_write_ms = value.get_i64();
        let n = value.get_u8() as usize;
        let mut recent = VecDeque::with_capacity(n);
        for _ in 0..n {
            if value.len() < ENTRY_LEN {
                return None;
            }
            let mut batch = RecentBatch {
                base_sequence: value.get_u64(),
                span: value.get_u32(),
                base_offset: value.get_u64(),
                count: value.get_u32(),
                append_time_ms: value.get_i64(),
                deduplicated: Vec::new(),
            };
            let dropped = value.get_u16() as usize;
            if value.len() < dropped * 4 {
                return None;
            }
            batch.deduplicated = (0..dropped).map(|_| value.get_u32()).collect();
            recent.push_back(batch);
        }
        if !value.is_empty() {
            return None;
        }
        Some(ProducerState {
            next_sequence,
            last_write_ms,
            recent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seq: u64, offset: u64, count: u32) -> RecentBatch {
        RecentBatch {
            base_sequence: seq,
            span: count,
            base_offset: offset,
            count,
            append_time_ms: 1,
            deduplicated: if seq.is_multiple_of(4) {
                vec![1, 3]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn retried_batch_gets_its_original_offsets() {
        let mut state = ProducerState::default();
        state.record(batch(0, 100, 10));
        state.record(batch(10, 110, 5));
        assert_eq!(
            ProducerState::check(Some(&state), 15),
            SequenceCheck::Append
        );
        assert_eq!(
            ProducerState::check(Some(&state), 0),
            SequenceCheck::Duplicate(batch(0, 100, 10))
        );
        assert_eq!(
            ProducerState::check(Some(&state), 10),
            SequenceCheck::Duplicate(batch(10, 110, 5))
        );
        assert_eq!(
            ProducerState::check(Some(&state), 3),
            SequenceCheck::DuplicateUnknown
        );
        assert_eq!(
            ProducerState::check(Some(&state), 20),
            SequenceCheck::Gap { expected: 15 }
        );
        assert_eq!(ProducerState::check(None, 20), SequenceCheck::Append);
    }

    #[test]
    fn keeps_only_the_most_recent_batches_and_round_trips() {
        let mut state = ProducerState::default();
        for i in 0..20 {
            state.record(batch(i * 2, i * 2, 2));
        }
        assert_eq!(state.recent.len(), RECENT_BATCHES);
        assert_eq!(state.next_sequence, 40);
        assert_eq!(ProducerState::decode(&state.encode()), Some(state));
        assert_eq!(ProducerState::decode(b"short"), None);
    }
}
