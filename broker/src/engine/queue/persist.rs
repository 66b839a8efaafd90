//! The persisted form of a queue partition (the `acks` column family): the floor, then for
//! each offset above it that is done or has been delivered, its attempt count and whether it is
//! done. Restoring it redelivers only unsettled messages, with their attempt counts. A state
//! begun by a replicated reset ends with its epoch (8 bytes more); a single node's states never
//! carry one, so they read as they always did.

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
        let mut buf = BytesMut::with_capacity(20 + entries.len() * 12);
        buf.put_u64(self.floor);
        buf.put_u32(entries.len() as u32);
        for (offset, attempts, done) in entries {
            buf.put_u64(offset);
            buf.put_u32(attempts | if done { 1 << 31 } else { 0 });
        }
        if self.epoch != 0 {
            buf.put_u64(self.epoch);
        }
        buf.freeze()
    }

    /// The epoch of a persisted state ([`QueuePartition::epoch`]) without decoding the rest;
    /// `None` when `value` is not one.
    pub fn encoded_epoch(value: &[u8]) -> Option<u64> {
        let n = u32::from_be_bytes(value.get(8..12)?.try_into().ok()?) as usize;
        let trailer = value.get(12 + n.checked_mul(12)?..)?;
        match trailer.len() {
            0 => Some(0),
            8 => Some(u64::from_be_bytes(trailer.try_into().ok()?)),
            _ => None,
        }
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
            *self = QueuePartition::reset(high_watermark, self.epoch);
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
        let epoch = QueuePartition::encoded_epoch(value)?;
        let floor = value.get_u64();
        let n = value.get_u32() as usize;
        let mut state = QueuePartition::reset(floor, epoch);
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
