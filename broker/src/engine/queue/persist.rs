//! The persisted form of a queue partition (the `acks` column family): the floor, then for
//! each offset above it that is done or has been delivered, its attempt count and whether it is
//! done. Restoring it redelivers only unsettled messages, with their attempt counts.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::QueuePartition;
use super::slot::SlotState;

impl QueuePartition {
    /// The persisted form; clears the dirty flag.
    pub fn encode(&mut self) -> Bytes {
        self.dirty = false;
        let entries: Vec<(u64, u32, bool)> = self
            .window
            .iter()
            .filter(|(_, s)| s.attempts > 0 || s.state == SlotState::Done)
            .map(|(&o, s)| (o, s.attempts, s.state == SlotState::Done))
            .chain(self.restored.iter().map(|(&o, &(a, d))| (o, a, d)))
            .collect();
        let mut buf = BytesMut::with_capacity(12 + entries.len() * 12);
        buf.put_u64(self.floor);
        buf.put_u32(entries.len() as u32);
        for (offset, attempts, done) in entries {
            buf.put_u64(offset);
            buf.put_u32(attempts | if done { 1 << 31 } else { 0 });
        }
        buf.freeze()
    }

    /// Fits a state just restored by [`QueuePartition::decode`] to a log recovered up to
    /// `high_watermark` (a memory topic restarts empty; a buffered one can lose its tail): the
    /// floor comes down to it and nothing at or above it stays settled or counted, so the
    /// messages that get those offsets next are delivered as new. When anything changed, returns
    /// the offset the state reached before (past its floor and every recorded offset) and leaves
    /// the state dirty, to be persisted.
    pub fn clamp_to(&mut self, high_watermark: u64) -> Option<u64> {
        let reached = self
            .restored
            .keys()
            .map(|&offset| offset + 1)
            .fold(self.floor, u64::max);
        if reached <= high_watermark {
            return None;
        }
        if self.floor > high_watermark {
            *self = QueuePartition::new(high_watermark);
        } else {
            self.restored.retain(|&offset, _| offset < high_watermark);
        }
        self.dirty = true;
        Some(reached)
    }

    /// Restores a persisted state.
    pub fn decode(mut value: &[u8]) -> Option<QueuePartition> {
        if value.len() < 12 {
            return None;
        }
        let floor = value.get_u64();
        let n = value.get_u32() as usize;
        if value.len() != n * 12 {
            return None;
        }
        let mut state = QueuePartition::new(floor);
        for _ in 0..n {
            let offset = value.get_u64();
            let raw = value.get_u32();
            if offset >= floor {
                state
                    .restored
                    .insert(offset, (raw & !(1 << 31), raw & (1 << 31) != 0));
            }
        }
        Some(state)
    }
}
