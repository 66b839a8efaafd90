//! Queue-mode delivery state for one partition of one subscription.
//!
//! Offsets below `floor` are settled (acked, dead-lettered or expired). Above it, a window of
//! messages read from the log holds each message's state: ready (possibly not before some time,
//! after a nack), in flight to one consumer until an ack deadline, being dead-lettered, or done.
//! Consumers claim ready messages highest priority first, then lowest offset, so priority is
//! honoured within the window ("what has been prefetched").
//!
//! Everything here takes `now` as a parameter: the clock is injected, so the rules (deadlines,
//! nack delays, TTL, max deliveries) are tested without waiting.
//!
//! Persisted form (the `acks` column family): the floor, then for each offset above it that is
//! done or has been delivered, its attempt count and whether it is done. Restoring it redelivers
//! only unsettled messages, with their attempt counts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rapidmq_proto::v1 as pb;

/// One message as a queue holds it.
#[derive(Debug)]
pub struct QueuedMessage {
    pub message: pb::Message,
    pub append_time_ms: i64,
    pub base_timestamp_ms: i64,
}

impl QueuedMessage {
    fn priority(&self) -> u32 {
        self.message.priority
    }

    fn expired(&self, now_ms: i64) -> bool {
        self.message.ttl_ms > 0 && self.append_time_ms.saturating_add(self.message.ttl_ms) <= now_ms
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Ready {
        not_before: i64,
    },
    InFlight {
        deadline: i64,
        delivery_id: u64,
        member: u64,
    },
    /// Being appended to the dead-letter topic; neither deliverable nor settled.
    DeadLettering,
    Done,
}

#[derive(Debug)]
struct Slot {
    message: Arc<QueuedMessage>,
    attempts: u32,
    state: SlotState,
}

/// A message handed to a consumer.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub offset: u64,
    pub delivery_id: u64,
    pub attempt: u32,
    pub message: Arc<QueuedMessage>,
}

/// A message to move to the dead-letter topic.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub offset: u64,
    pub attempts: u32,
    pub reason: &'static str,
    pub message: Arc<QueuedMessage>,
}

/// Counters reported by describe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounters {
    pub redeliveries: u64,
    pub dead_lettered: u64,
    pub expired: u64,
}

/// What an ack, nack or extension did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    Done,
    /// The receipt does not name a delivery in flight.
    Unknown,
    /// A nack past `max_deliveries`: dead-letter it.
    DeadLetter(DeadLetter),
}

impl PartialEq for DeadLetter {
    fn eq(&self, other: &Self) -> bool {
        self.offset == other.offset
            && self.attempts == other.attempts
            && self.reason == other.reason
    }
}
impl Eq for DeadLetter {}

/// The state of one partition of a queue subscription.
#[derive(Debug, Default)]
pub struct QueuePartition {
    floor: u64,
    /// Next offset to load into the window.
    read_pos: u64,
    window: BTreeMap<u64, Slot>,
    /// Restored `(attempts, done)` for offsets not loaded yet.
    restored: HashMap<u64, (u32, bool)>,
    dirty: bool,
    pub counters: QueueCounters,
}

impl QueuePartition {
    /// A fresh state whose first message is `floor`.
    pub fn new(floor: u64) -> QueuePartition {
        QueuePartition {
            floor,
            read_pos: floor,
            ..Default::default()
        }
    }

    pub fn floor(&self) -> u64 {
        self.floor
    }

    pub fn read_pos(&self) -> u64 {
        self.read_pos
    }

    pub fn window_len(&self) -> usize {
        self.window.len()
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub fn in_flight(&self) -> usize {
        self.window
            .values()
            .filter(|s| matches!(s.state, SlotState::InFlight { .. }))
            .count()
    }

    /// Moves the floor up to `log_start` if retention removed messages below it.
    pub fn skip_to(&mut self, log_start: u64) {
        if self.floor < log_start {
            self.window.retain(|&offset, _| offset >= log_start);
            self.floor = log_start;
            self.read_pos = self.read_pos.max(log_start);
            self.dirty = true;
        }
    }

    /// Adds messages read from the log, starting at `read_pos`. Offsets already loaded are
    /// ignored (another consumer loaded them first).
    pub fn load(&mut self, messages: impl IntoIterator<Item = (u64, Arc<QueuedMessage>)>) {
        for (offset, message) in messages {
            if offset < self.read_pos {
                continue;
            }
            let (attempts, done) = self.restored.remove(&offset).unwrap_or((0, false));
            let state = if done {
                SlotState::Done
            } else {
                SlotState::Ready { not_before: 0 }
            };
            self.window.insert(
                offset,
                Slot {
                    message,
                    attempts,
                    state,
                },
            );
            self.read_pos = offset + 1;
        }
        self.advance_floor();
    }

    /// Claims up to `max` messages for `member`: expired ones are settled, ones past
    /// `max_deliveries` are returned for dead-lettering, the rest go in flight until
    /// `now + ack_deadline_ms`.
    pub fn claim(
        &mut self,
        max: usize,
        now: i64,
        member: u64,
        ack_deadline_ms: u64,
        max_deliveries: u32,
        next_delivery_id: &mut dyn FnMut() -> u64,
    ) -> (Vec<Claimed>, Vec<DeadLetter>) {
        let mut candidates: Vec<(u32, u64)> = Vec::new();
        let mut dead = Vec::new();
        for (&offset, slot) in self.window.iter_mut() {
            let available = match slot.state {
                SlotState::Ready { not_before } => not_before <= now,
                SlotState::InFlight { deadline, .. } => deadline <= now,
                SlotState::DeadLettering | SlotState::Done => false,
            };
            if !available {
                continue;
            }
            if slot.message.expired(now) {
                slot.state = SlotState::Done;
                self.counters.expired += 1;
                self.dirty = true;
                continue;
            }
            if slot.attempts >= max_deliveries {
                slot.state = SlotState::DeadLettering;
                dead.push(DeadLetter {
                    offset,
                    attempts: slot.attempts,
                    reason: "ack deadline exceeded on the last allowed delivery",
                    message: slot.message.clone(),
                });
                continue;
            }
            candidates.push((slot.message.priority(), offset));
        }
        // Highest priority first, then oldest.
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let deadline = now.saturating_add(i64::try_from(ack_deadline_ms).unwrap_or(i64::MAX));
        let mut claimed = Vec::new();
        for (_, offset) in candidates.into_iter().take(max) {
            let Some(slot) = self.window.get_mut(&offset) else {
                continue;
            };
            slot.attempts += 1;
            if slot.attempts > 1 {
                self.counters.redeliveries += 1;
            }
            let delivery_id = next_delivery_id();
            slot.state = SlotState::InFlight {
                deadline,
                delivery_id,
                member,
            };
            claimed.push(Claimed {
                offset,
                delivery_id,
                attempt: slot.attempts,
                message: slot.message.clone(),
            });
        }
        if !claimed.is_empty() || !dead.is_empty() {
            self.dirty = true;
        }
        self.advance_floor();
        (claimed, dead)
    }

    fn in_flight_slot(&mut self, offset: u64, delivery_id: u64) -> Option<&mut Slot> {
        self.window
            .get_mut(&offset)
            .filter(|slot| matches!(slot.state, SlotState::InFlight { delivery_id: id, .. } if id == delivery_id))
    }

    pub fn ack(&mut self, offset: u64, delivery_id: u64) -> Settle {
        let Some(slot) = self.in_flight_slot(offset, delivery_id) else {
            return Settle::Unknown;
        };
        slot.state = SlotState::Done;
        self.dirty = true;
        self.advance_floor();
        Settle::Done
    }

    /// Gives a delivery back: redelivered after `delay_ms`, or dead-lettered when it has used
    /// up `max_deliveries`.
    pub fn nack(
        &mut self,
        offset: u64,
        delivery_id: u64,
        now: i64,
        delay_ms: u64,
        max_deliveries: u32,
    ) -> Settle {
        self.dirty = true;
        let Some(slot) = self.in_flight_slot(offset, delivery_id) else {
            return Settle::Unknown;
        };
        if slot.attempts >= max_deliveries {
            slot.state = SlotState::DeadLettering;
            return Settle::DeadLetter(DeadLetter {
                offset,
                attempts: slot.attempts,
                reason: "nacked on the last allowed delivery",
                message: slot.message.clone(),
            });
        }
        slot.state = SlotState::Ready {
            not_before: now.saturating_add(i64::try_from(delay_ms).unwrap_or(i64::MAX)),
        };
        Settle::Done
    }

    pub fn extend(&mut self, offset: u64, delivery_id: u64, now: i64, extend_ms: u64) -> Settle {
        let Some(slot) = self.in_flight_slot(offset, delivery_id) else {
            return Settle::Unknown;
        };
        if let SlotState::InFlight { deadline, .. } = &mut slot.state {
            *deadline = now.saturating_add(i64::try_from(extend_ms).unwrap_or(i64::MAX));
        }
        Settle::Done
    }

    /// Records the outcome of a dead-letter append.
    pub fn dead_lettered(&mut self, offset: u64, succeeded: bool) {
        if let Some(slot) = self.window.get_mut(&offset)
            && slot.state == SlotState::DeadLettering
        {
            if succeeded {
                slot.state = SlotState::Done;
                self.counters.dead_lettered += 1;
            } else {
                slot.state = SlotState::Ready { not_before: 0 };
            }
            self.dirty = true;
            self.advance_floor();
        }
    }

    /// Makes everything in flight to `member` available again (it left).
    pub fn release_member(&mut self, member: u64) -> bool {
        let mut released = false;
        for slot in self.window.values_mut() {
            if matches!(slot.state, SlotState::InFlight { member: m, .. } if m == member) {
                slot.state = SlotState::Ready { not_before: 0 };
                released = true;
            }
        }
        released
    }

    /// The earliest time something not available now becomes available (a nack delay or an
    /// ack deadline), if any.
    pub fn next_timer(&self) -> Option<i64> {
        self.window
            .values()
            .filter_map(|slot| match slot.state {
                SlotState::Ready { not_before } if not_before > 0 => Some(not_before),
                SlotState::InFlight { deadline, .. } => Some(deadline),
                _ => None,
            })
            .min()
    }

    /// Whether a claim at `now` could hand something out (ignoring max deliveries and TTL).
    pub fn has_available(&self, now: i64) -> bool {
        self.window.values().any(|slot| match slot.state {
            SlotState::Ready { not_before } => not_before <= now,
            SlotState::InFlight { deadline, .. } => deadline <= now,
            _ => false,
        })
    }

    /// Messages not yet settled, counting those not loaded.
    pub fn backlog(&self, high_watermark: u64) -> u64 {
        let unloaded = high_watermark.saturating_sub(self.read_pos);
        let loaded = self
            .window
            .values()
            .filter(|s| s.state != SlotState::Done)
            .count() as u64;
        unloaded + loaded
    }

    fn advance_floor(&mut self) {
        while let Some(entry) = self.window.first_entry() {
            if entry.get().state != SlotState::Done {
                break;
            }
            let offset = *entry.key();
            entry.remove();
            self.floor = offset + 1;
        }
        if self.window.is_empty() {
            self.floor = self.floor.max(self.read_pos);
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn message(priority: u32, ttl_ms: i64) -> Arc<QueuedMessage> {
        Arc::new(QueuedMessage {
            message: pb::Message {
                priority,
                ttl_ms,
                ..Default::default()
            },
            append_time_ms: 1_000,
            base_timestamp_ms: 1_000,
        })
    }

    fn ids() -> impl FnMut() -> u64 {
        let mut next = 0;
        move || {
            next += 1;
            next
        }
    }

    fn loaded(n: u64) -> QueuePartition {
        let mut q = QueuePartition::new(0);
        q.load((0..n).map(|o| (o, message(0, 0))));
        q
    }

    #[test]
    fn each_message_is_claimed_once_until_acked() {
        let mut q = loaded(3);
        let mut id = ids();
        let (a, _) = q.claim(2, 10, 1, 30_000, 5, &mut id);
        let (b, _) = q.claim(5, 10, 2, 30_000, 5, &mut id);
        assert_eq!(a.iter().map(|c| c.offset).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(b.iter().map(|c| c.offset).collect::<Vec<_>>(), vec![2]);
        assert!(q.claim(5, 10, 3, 30_000, 5, &mut id).0.is_empty());
        assert_eq!(q.ack(0, a[0].delivery_id), Settle::Done);
        assert_eq!(
            q.ack(0, a[0].delivery_id),
            Settle::Unknown,
            "a second ack is unknown"
        );
        assert_eq!(q.floor(), 1);
        assert_eq!(
            q.ack(2, a[0].delivery_id),
            Settle::Unknown,
            "a foreign receipt is unknown"
        );
    }

    #[test]
    fn an_unacked_message_comes_back_after_its_deadline_unless_extended() {
        let mut q = loaded(2);
        let mut id = ids();
        let (first, _) = q.claim(2, 0, 1, 1_000, 5, &mut id);
        assert!(q.claim(2, 999, 2, 1_000, 5, &mut id).0.is_empty());
        assert_eq!(q.extend(1, first[1].delivery_id, 500, 5_000), Settle::Done);
        let (again, _) = q.claim(2, 1_000, 2, 1_000, 5, &mut id);
        assert_eq!(again.len(), 1, "only the unextended message is redelivered");
        assert_eq!((again[0].offset, again[0].attempt), (0, 2));
        assert_eq!(
            q.ack(0, first[0].delivery_id),
            Settle::Unknown,
            "the stale receipt no longer acks"
        );
        assert_eq!(q.counters.redeliveries, 1);
        assert_eq!(q.next_timer(), Some(2_000));
    }

    #[test]
    fn nack_delays_redelivery_and_the_last_allowed_attempt_dead_letters() {
        let mut q = loaded(1);
        let mut id = ids();
        let (c, _) = q.claim(1, 0, 1, 30_000, 2, &mut id);
        assert_eq!(q.nack(0, c[0].delivery_id, 0, 2_000, 2), Settle::Done);
        assert!(
            q.claim(1, 1_999, 1, 30_000, 2, &mut id).0.is_empty(),
            "not before the delay"
        );
        let (c, _) = q.claim(1, 2_000, 1, 30_000, 2, &mut id);
        assert_eq!(c[0].attempt, 2);
        let Settle::DeadLetter(dead) = q.nack(0, c[0].delivery_id, 2_000, 0, 2) else {
            panic!("expected a dead letter")
        };
        assert_eq!(dead.attempts, 2);
        assert_eq!(q.floor(), 0, "not settled until the dead letter is stored");
        q.dead_lettered(0, true);
        assert_eq!(q.floor(), 1);
        assert_eq!(q.counters.dead_lettered, 1);
    }

    #[test]
    fn higher_priorities_go_first_among_loaded_messages() {
        let mut q = QueuePartition::new(0);
        q.load([
            (0, message(1, 0)),
            (1, message(9, 0)),
            (2, message(5, 0)),
            (3, message(9, 0)),
        ]);
        let (c, _) = q.claim(4, 0, 1, 30_000, 5, &mut ids());
        assert_eq!(
            c.iter().map(|c| c.offset).collect::<Vec<_>>(),
            vec![1, 3, 2, 0]
        );
    }

    #[test]
    fn expired_messages_are_never_delivered_and_are_counted() {
        let mut q = QueuePartition::new(0);
        q.load([(0, message(0, 500)), (1, message(0, 0))]);
        let (c, _) = q.claim(2, 1_600, 1, 30_000, 5, &mut ids());
        assert_eq!(c.iter().map(|c| c.offset).collect::<Vec<_>>(), vec![1]);
        assert_eq!(q.counters.expired, 1);
    }

    #[test]
    fn persisted_state_redelivers_only_unsettled_messages_with_their_attempts() {
        let mut q = loaded(4);
        let mut id = ids();
        let (c, _) = q.claim(3, 0, 1, 30_000, 5, &mut id);
        q.ack(0, c[0].delivery_id);
        q.ack(2, c[2].delivery_id);
        let encoded = q.encode();
        let mut restored = QueuePartition::decode(&encoded).unwrap();
        assert_eq!(restored.floor(), 1);
        restored.load((1..4).map(|o| (o, message(0, 0))));
        let (c, _) = restored.claim(10, 0, 2, 30_000, 5, &mut id);
        let got: Vec<(u64, u32)> = c.iter().map(|c| (c.offset, c.attempt)).collect();
        assert_eq!(
            got,
            vec![(1, 2), (3, 1)],
            "2 stays acked; 1 keeps its attempt count"
        );
    }

    #[test]
    fn a_leaving_member_gives_its_messages_back_at_once() {
        let mut q = loaded(2);
        let mut id = ids();
        q.claim(1, 0, 7, 30_000, 5, &mut id);
        assert!(q.release_member(7));
        let (c, _) = q.claim(2, 0, 8, 30_000, 5, &mut id);
        assert_eq!(c.len(), 2);
    }
}
