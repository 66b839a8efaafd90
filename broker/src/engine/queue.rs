//! Queue-mode delivery state for one partition of one subscription.
//!
//! Offsets below `floor` are settled (acked, dead-lettered or expired). Above it, a window of
//! messages read from the log holds each message's state: ready (possibly not before some time,
//! after a nack), in flight to one consumer until an ack deadline, being dead-lettered, or done.
//! Consumers claim ready messages highest priority first, then lowest offset, so priority is
//! honoured within the window ("what has been prefetched").
//!
//! Every operation costs O(log window) per message it touches, never a scan of the window:
//! ready messages sit in a set ordered by (priority, offset), nack delays and ack deadlines in
//! sets ordered by time, and the counts describe reports are kept as messages change state.
//! A claim first moves whatever became due (a delay ran out, a deadline passed) into the ready
//! set, then takes from its front.
//!
//! Everything here takes the time as a parameter: the clock is injected, so the rules (deadlines,
//! nack delays, TTL, max deliveries) are tested without waiting. Ack deadlines and nack delays
//! run on a monotonic clock ([`Clock::now`]), TTL on the wall clock (it is measured from the
//! append time): a step of the system clock (NTP at boot, a VM resumed) must not make every
//! message in flight overdue at once and hand it to a second consumer.
//!
//! A claim can be taken back ([`QueuePartition::unclaim`]) when the delivery never reached the
//! consumer (its stream closed first): the message is ready again and the attempt is not
//! counted. Done slots above the floor (behind a message parked by a long nack delay) keep only
//! their offset, not the message, and do not count against the window, so a parked message does
//! not stop the messages after it.
//!
//! Persisted form (the `acks` column family): the floor, then for each offset above it that is
//! done or has been delivered, its attempt count and whether it is done. Restoring it redelivers
//! only unsettled messages, with their attempt counts.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message as _;
use rapidmq_proto::v1 as pb;

/// The time as the queue rules see it: `mono_ms` (monotonic, for ack deadlines and nack delays)
/// and `wall_ms` (for TTL, which counts from the append time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub mono_ms: i64,
    pub wall_ms: i64,
}

impl Clock {
    /// The current time, `wall_ms` read from the engine's clock. The monotonic part counts
    /// from the first call in this process (plus one, so it is never 0, which means "now" in a
    /// ready slot).
    pub fn now(wall_ms: i64) -> Clock {
        Clock {
            mono_ms: mono_now_ms(),
            wall_ms,
        }
    }
}

/// Milliseconds on the queue's monotonic clock (see [`Clock`]).
pub fn mono_now_ms() -> i64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    i64::try_from(START.elapsed().as_millis())
        .unwrap_or(i64::MAX)
        .saturating_add(1)
}

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
    /// Deliverable from `not_before` on; 0 means now (the slot is in the ready set), anything
    /// else waits in the delayed set until it is due.
    Ready {
        not_before: i64,
    },
    /// With a consumer until `deadline` (the slot is in the deadline set).
    InFlight {
        deadline: i64,
        delivery_id: u64,
        member: u64,
    },
    /// Its deadline passed: back in the ready set, but the receipt still acks until the message
    /// is claimed again.
    Overdue {
        delivery_id: u64,
        member: u64,
    },
    /// Being appended to the dead-letter topic; neither deliverable nor settled.
    DeadLettering,
    Done,
}

impl SlotState {
    fn in_flight(self) -> bool {
        matches!(self, SlotState::InFlight { .. } | SlotState::Overdue { .. })
    }

    fn delivery(self) -> Option<(u64, u64)> {
        match self {
            SlotState::InFlight {
                delivery_id,
                member,
                ..
            }
            | SlotState::Overdue {
                delivery_id,
                member,
            } => Some((delivery_id, member)),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Slot {
    /// `None` once done: a settled message waiting for the floor to pass it keeps no payload.
    message: Option<Arc<QueuedMessage>>,
    priority: u32,
    attempts: u32,
    state: SlotState,
    /// The delivery id of the latest claim, so it can be taken back if it never reached the
    /// consumer (0: none to take back).
    last_delivery: u64,
}

impl Slot {
    fn message(&self) -> Arc<QueuedMessage> {
        // Only done slots drop their message, and done slots are never claimed or nacked.
        self.message
            .clone()
            .expect("an unsettled slot keeps its message")
    }
}

/// What claims may still take for one delivery: `messages` more messages and `bytes` more
/// encoded bytes, except that the first message always fits (a message larger than the budget
/// must still go out, alone). One budget can span the claims on several partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    messages: usize,
    bytes: usize,
    taken: usize,
}

impl Budget {
    pub fn new(messages: usize, bytes: usize) -> Budget {
        Budget {
            messages,
            bytes,
            taken: 0,
        }
    }

    /// A budget of `messages` messages of any size.
    pub fn messages(messages: usize) -> Budget {
        Budget::new(messages, usize::MAX)
    }

    pub fn exhausted(&self) -> bool {
        self.messages == 0 || (self.taken > 0 && self.bytes == 0)
    }

    fn take(&mut self, size: usize) -> bool {
        let fits = self.messages > 0 && (self.taken == 0 || size <= self.bytes);
        if fits {
            self.messages -= 1;
            self.bytes = self.bytes.saturating_sub(size);
            self.taken += 1;
        }
        fits
    }
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
    /// Deliverable now: highest priority first, then lowest offset.
    ready: BTreeSet<(Reverse<u32>, u64)>,
    /// Nacked with a delay: `(not_before, offset)`.
    delayed: BTreeSet<(i64, u64)>,
    /// In flight: `(deadline, offset)`.
    deadlines: BTreeSet<(i64, u64)>,
    /// Slots in flight (overdue ones included).
    in_flight: usize,
    /// Loaded slots not done.
    unsettled: usize,
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

    /// Loaded messages not settled yet: what the window limit counts (done slots kept behind a
    /// parked message do not).
    pub fn unsettled(&self) -> usize {
        self.unsettled
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Moves the floor up to `log_start` if retention removed messages below it.
    pub fn skip_to(&mut self, log_start: u64) {
        if self.floor < log_start {
            let kept = self.window.split_off(&log_start);
            for (offset, slot) in std::mem::replace(&mut self.window, kept) {
                self.unindex(offset, slot.priority, slot.state);
            }
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
            let priority = message.priority();
            self.index(offset, priority, state);
            self.window.insert(
                offset,
                Slot {
                    message: (!done).then_some(message),
                    priority,
                    attempts,
                    state,
                    last_delivery: 0,
                },
            );
            self.read_pos = offset + 1;
        }
        self.advance_floor();
    }

    /// Claims what `budget` allows for `member`, highest priority first: expired ones met on
    /// the way are settled, ones past `max_deliveries` are returned for dead-lettering, the
    /// rest go in flight until `now + ack_deadline_ms`.
    pub fn claim(
        &mut self,
        budget: &mut Budget,
        clock: Clock,
        member: u64,
        ack_deadline_ms: u64,
        max_deliveries: u32,
        next_delivery_id: &mut dyn FnMut() -> u64,
    ) -> (Vec<Claimed>, Vec<DeadLetter>) {
        let now = clock.mono_ms;
        self.promote_due(now);
        let deadline = now.saturating_add(i64::try_from(ack_deadline_ms).unwrap_or(i64::MAX));
        let mut claimed = Vec::new();
        let mut dead = Vec::new();
        let mut expired = 0;
        while !budget.exhausted() {
            let Some(&(_, offset)) = self.ready.first() else {
                break;
            };
            let slot = &self.window[&offset];
            let (message, attempts) = (slot.message(), slot.attempts);
            if message.expired(clock.wall_ms) {
                self.set_state(offset, SlotState::Done);
                expired += 1;
                continue;
            }
            if attempts >= max_deliveries {
                self.set_state(offset, SlotState::DeadLettering);
                dead.push(DeadLetter {
                    offset,
                    attempts,
                    reason: "ack deadline exceeded on the last allowed delivery",
                    message,
                });
                continue;
            }
            if !budget.take(message.message.encoded_len()) {
                break;
            }
            let delivery_id = next_delivery_id();
            self.set_state(
                offset,
                SlotState::InFlight {
                    deadline,
                    delivery_id,
                    member,
                },
            );
            let slot = self.window.get_mut(&offset).expect("claimed slot");
            slot.attempts += 1;
            slot.last_delivery = delivery_id;
            if slot.attempts > 1 {
                self.counters.redeliveries += 1;
            }
            claimed.push(Claimed {
                offset,
                delivery_id,
                attempt: slot.attempts,
                message,
            });
        }
        self.counters.expired += expired;
        if !claimed.is_empty() || !dead.is_empty() || expired > 0 {
            self.dirty = true;
        }
        self.advance_floor();
        (claimed, dead)
    }

    /// Takes back the claim `delivery_id` of `offset` because it never reached the consumer: the
    /// message is ready again and the attempt is not counted. Also works after the member left
    /// (its messages were released); a no-op once the message was settled or claimed again.
    pub fn unclaim(&mut self, offset: u64, delivery_id: u64) -> bool {
        let Some(slot) = self.window.get_mut(&offset) else {
            return false;
        };
        if delivery_id == 0 || slot.last_delivery != delivery_id {
            return false;
        }
        let back_in_ready = match slot.state {
            SlotState::InFlight { .. } | SlotState::Overdue { .. } => true,
            SlotState::Ready { not_before: 0 } => false,
            // Nacked (so it was received), being dead-lettered, or settled: nothing to undo.
            SlotState::Ready { .. } | SlotState::DeadLettering | SlotState::Done => return false,
        };
        slot.last_delivery = 0;
        if slot.attempts > 1 {
            self.counters.redeliveries = self.counters.redeliveries.saturating_sub(1);
        }
        slot.attempts = slot.attempts.saturating_sub(1);
        if back_in_ready {
            self.set_state(offset, SlotState::Ready { not_before: 0 });
        }
        self.dirty = true;
        true
    }

    /// Moves messages whose nack delay ran out or whose ack deadline passed into the ready set.
    fn promote_due(&mut self, now: i64) {
        while let Some(&(at, offset)) = self.delayed.first()
            && at <= now
        {
            self.set_state(offset, SlotState::Ready { not_before: 0 });
        }
        while let Some(&(at, offset)) = self.deadlines.first()
            && at <= now
        {
            let (delivery_id, member) = self.window[&offset]
                .state
                .delivery()
                .expect("a slot with a deadline is in flight");
            self.set_state(
                offset,
                SlotState::Overdue {
                    delivery_id,
                    member,
                },
            );
        }
    }

    /// Puts the slot at `offset` in `state`, keeping the indexes and counts in step.
    fn set_state(&mut self, offset: u64, state: SlotState) {
        let Some(slot) = self.window.get_mut(&offset) else {
            return;
        };
        let old = std::mem::replace(&mut slot.state, state);
        if state == SlotState::Done {
            slot.message = None;
        }
        let priority = slot.priority;
        self.unindex(offset, priority, old);
        self.index(offset, priority, state);
    }

    fn index(&mut self, offset: u64, priority: u32, state: SlotState) {
        match state {
            SlotState::Ready { not_before: 0 } | SlotState::Overdue { .. } => {
                self.ready.insert((Reverse(priority), offset));
            }
            SlotState::Ready { not_before } => {
                self.delayed.insert((not_before, offset));
            }
            SlotState::InFlight { deadline, .. } => {
                self.deadlines.insert((deadline, offset));
            }
            SlotState::DeadLettering | SlotState::Done => {}
        }
        self.in_flight += usize::from(state.in_flight());
        self.unsettled += usize::from(state != SlotState::Done);
    }

    fn unindex(&mut self, offset: u64, priority: u32, state: SlotState) {
        match state {
            SlotState::Ready { not_before: 0 } | SlotState::Overdue { .. } => {
                self.ready.remove(&(Reverse(priority), offset));
            }
            SlotState::Ready { not_before } => {
                self.delayed.remove(&(not_before, offset));
            }
            SlotState::InFlight { deadline, .. } => {
                self.deadlines.remove(&(deadline, offset));
            }
            SlotState::DeadLettering | SlotState::Done => {}
        }
        self.in_flight -= usize::from(state.in_flight());
        self.unsettled -= usize::from(state != SlotState::Done);
    }

    /// The attempts of the delivery `delivery_id` of `offset`, if it is still out.
    fn delivered(&self, offset: u64, delivery_id: u64) -> Option<u32> {
        self.window.get(&offset).and_then(|slot| {
            slot.state
                .delivery()
                .filter(|&(id, _)| id == delivery_id)
                .map(|_| slot.attempts)
        })
    }

    pub fn ack(&mut self, offset: u64, delivery_id: u64) -> Settle {
        if self.delivered(offset, delivery_id).is_none() {
            return Settle::Unknown;
        }
        self.set_state(offset, SlotState::Done);
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
        let Some(attempts) = self.delivered(offset, delivery_id) else {
            return Settle::Unknown;
        };
        if attempts >= max_deliveries {
            self.set_state(offset, SlotState::DeadLettering);
            return Settle::DeadLetter(DeadLetter {
                offset,
                attempts,
                reason: "nacked on the last allowed delivery",
                message: self.window[&offset].message(),
            });
        }
        let not_before = if delay_ms == 0 {
            0
        } else {
            now.saturating_add(i64::try_from(delay_ms).unwrap_or(i64::MAX))
                .max(1)
        };
        self.set_state(offset, SlotState::Ready { not_before });
        Settle::Done
    }

    pub fn extend(&mut self, offset: u64, delivery_id: u64, now: i64, extend_ms: u64) -> Settle {
        let Some(slot) = self.window.get(&offset) else {
            return Settle::Unknown;
        };
        let Some((_, member)) = slot.state.delivery().filter(|&(id, _)| id == delivery_id) else {
            return Settle::Unknown;
        };
        let deadline = now.saturating_add(i64::try_from(extend_ms).unwrap_or(i64::MAX));
        self.set_state(
            offset,
            SlotState::InFlight {
                deadline,
                delivery_id,
                member,
            },
        );
        Settle::Done
    }

    /// Records the outcome of a dead-letter append.
    pub fn dead_lettered(&mut self, offset: u64, succeeded: bool) {
        if self
            .window
            .get(&offset)
            .is_some_and(|slot| slot.state == SlotState::DeadLettering)
        {
            if succeeded {
                self.set_state(offset, SlotState::Done);
                self.counters.dead_lettered += 1;
            } else {
                self.set_state(offset, SlotState::Ready { not_before: 0 });
            }
            self.dirty = true;
            self.advance_floor();
        }
    }

    /// Makes everything in flight to `member` available again (it left).
    pub fn release_member(&mut self, member: u64) -> bool {
        let theirs: Vec<u64> = self
            .window
            .iter()
            .filter(|(_, slot)| slot.state.delivery().is_some_and(|(_, m)| m == member))
            .map(|(&offset, _)| offset)
            .collect();
        for &offset in &theirs {
            self.set_state(offset, SlotState::Ready { not_before: 0 });
        }
        !theirs.is_empty()
    }

    /// The earliest time something not available now becomes available (a nack delay or an
    /// ack deadline), if any.
    pub fn next_timer(&self) -> Option<i64> {
        let delayed = self.delayed.first().map(|&(at, _)| at);
        let deadline = self.deadlines.first().map(|&(at, _)| at);
        delayed.into_iter().chain(deadline).min()
    }

    /// Whether a claim at `now` could hand something out (ignoring max deliveries and TTL).
    pub fn has_available(&self, now: i64) -> bool {
        !self.ready.is_empty() || self.next_timer().is_some_and(|at| at <= now)
    }

    /// Messages not yet settled, counting those not loaded.
    pub fn backlog(&self, high_watermark: u64) -> u64 {
        high_watermark.saturating_sub(self.read_pos) + self.unsettled as u64
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

    /// Marks the state as changed, so the next flush writes it (after a flush failed).
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
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

    /// Both clocks at `ms`.
    fn at(ms: i64) -> Clock {
        Clock {
            mono_ms: ms,
            wall_ms: ms,
        }
    }

    fn ids() -> impl FnMut() -> u64 {
        let mut next = 0;
        move || {
            next += 1;
            next
        }
    }

    impl QueuePartition {
        /// Recomputes the indexes and counts from the slots by a full scan and compares.
        fn assert_consistent(&self) {
            let mut ready = BTreeSet::new();
            let mut delayed = BTreeSet::new();
            let mut deadlines = BTreeSet::new();
            let (mut in_flight, mut unsettled) = (0, 0);
            for (&offset, slot) in &self.window {
                match slot.state {
                    SlotState::Ready { not_before: 0 } | SlotState::Overdue { .. } => {
                        ready.insert((Reverse(slot.priority), offset));
                    }
                    SlotState::Ready { not_before } => {
                        delayed.insert((not_before, offset));
                    }
                    SlotState::InFlight { deadline, .. } => {
                        deadlines.insert((deadline, offset));
                    }
                    SlotState::DeadLettering | SlotState::Done => {}
                }
                in_flight += usize::from(slot.state.in_flight());
                unsettled += usize::from(slot.state != SlotState::Done);
            }
            assert_eq!(self.ready, ready);
            assert_eq!(self.delayed, delayed);
            assert_eq!(self.deadlines, deadlines);
            assert_eq!((self.in_flight, self.unsettled), (in_flight, unsettled));
        }
    }

    fn loaded(n: u64) -> QueuePartition {
        let mut q = QueuePartition::new(0);
        q.load((0..n).map(|o| (o, message(0, 0))));
        q
    }

    #[test]
    fn a_claim_stops_at_its_byte_budget_but_always_takes_one_message() {
        let mut q = QueuePartition::new(0);
        let sized = |len: usize| {
            Arc::new(QueuedMessage {
                message: pb::Message {
                    value: vec![b'x'; len].into(),
                    ..Default::default()
                },
                append_time_ms: 1_000,
                base_timestamp_ms: 1_000,
            })
        };
        q.load([
            (0, sized(100)),
            (1, sized(100)),
            (2, sized(100)),
            (3, sized(1_000)),
        ]);
        let size = sized(100).message.encoded_len();
        let mut id = ids();
        let (c, _) = q.claim(
            &mut Budget::new(10, 2 * size + 1),
            at(0),
            1,
            30_000,
            5,
            &mut id,
        );
        assert_eq!(c.iter().map(|c| c.offset).collect::<Vec<_>>(), vec![0, 1]);
        let (c, _) = q.claim(&mut Budget::new(10, 1), at(0), 1, 30_000, 5, &mut id);
        assert_eq!(c.iter().map(|c| c.offset).collect::<Vec<_>>(), vec![2]);
        let (c, _) = q.claim(&mut Budget::new(10, 1), at(0), 1, 30_000, 5, &mut id);
        assert_eq!(
            c.iter().map(|c| c.offset).collect::<Vec<_>>(),
            vec![3],
            "one larger than the budget still goes"
        );
        q.assert_consistent();
    }

    #[test]
    fn each_message_is_claimed_once_until_acked() {
        let mut q = loaded(3);
        let mut id = ids();
        let (a, _) = q.claim(&mut Budget::messages(2), at(10), 1, 30_000, 5, &mut id);
        let (b, _) = q.claim(&mut Budget::messages(5), at(10), 2, 30_000, 5, &mut id);
        assert_eq!(a.iter().map(|c| c.offset).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(b.iter().map(|c| c.offset).collect::<Vec<_>>(), vec![2]);
        assert!(
            q.claim(&mut Budget::messages(5), at(10), 3, 30_000, 5, &mut id)
                .0
                .is_empty()
        );
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
        let (first, _) = q.claim(&mut Budget::messages(2), at(0), 1, 1_000, 5, &mut id);
        assert!(
            q.claim(&mut Budget::messages(2), at(999), 2, 1_000, 5, &mut id)
                .0
                .is_empty()
        );
        assert_eq!(q.extend(1, first[1].delivery_id, 500, 5_000), Settle::Done);
        let (again, _) = q.claim(&mut Budget::messages(2), at(1_000), 2, 1_000, 5, &mut id);
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
        let (c, _) = q.claim(&mut Budget::messages(1), at(0), 1, 30_000, 2, &mut id);
        assert_eq!(q.nack(0, c[0].delivery_id, 0, 2_000, 2), Settle::Done);
        assert!(
            q.claim(&mut Budget::messages(1), at(1_999), 1, 30_000, 2, &mut id)
                .0
                .is_empty(),
            "not before the delay"
        );
        let (c, _) = q.claim(&mut Budget::messages(1), at(2_000), 1, 30_000, 2, &mut id);
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
        let (c, _) = q.claim(&mut Budget::messages(4), at(0), 1, 30_000, 5, &mut ids());
        assert_eq!(
            c.iter().map(|c| c.offset).collect::<Vec<_>>(),
            vec![1, 3, 2, 0]
        );
    }

    #[test]
    fn expired_messages_are_never_delivered_and_are_counted() {
        let mut q = QueuePartition::new(0);
        q.load([(0, message(0, 500)), (1, message(0, 0))]);
        let (c, _) = q.claim(
            &mut Budget::messages(2),
            at(1_600),
            1,
            30_000,
            5,
            &mut ids(),
        );
        assert_eq!(c.iter().map(|c| c.offset).collect::<Vec<_>>(), vec![1]);
        assert_eq!(q.counters.expired, 1);
    }

    #[test]
    fn a_restored_state_above_the_recovered_log_is_clamped_to_it() {
        let mut q = loaded(4);
        let mut id = ids();
        let (c, _) = q.claim(&mut Budget::messages(3), at(0), 1, 30_000, 5, &mut id);
        q.ack(0, c[0].delivery_id);
        q.ack(2, c[2].delivery_id);
        let encoded = q.encode();

        // The whole log is gone (a memory topic after a restart): a fresh state at 0.
        let mut restored = QueuePartition::decode(&encoded).unwrap();
        assert_eq!(restored.clamp_to(0), Some(3));
        assert_eq!((restored.floor(), restored.read_pos()), (0, 0));
        assert!(restored.is_dirty());
        assert_eq!(
            QueuePartition::decode(&restored.encode()).unwrap().floor(),
            0
        );

        // The log lost offsets 2 and 3: the ack of 2 does not settle the next message there.
        let mut restored = QueuePartition::decode(&encoded).unwrap();
        assert_eq!(restored.clamp_to(2), Some(3));
        restored.load((1..4).map(|o| (o, message(0, 0))));
        let (c, _) = restored.claim(&mut Budget::messages(10), at(0), 2, 30_000, 5, &mut id);
        let got: Vec<(u64, u32)> = c.iter().map(|c| (c.offset, c.attempt)).collect();
        assert_eq!(got, vec![(1, 2), (2, 1), (3, 1)]);

        // A state within the log is left alone.
        let mut restored = QueuePartition::decode(&encoded).unwrap();
        assert_eq!(restored.clamp_to(3), None);
        assert!(!restored.is_dirty());
    }

    #[test]
    fn persisted_state_redelivers_only_unsettled_messages_with_their_attempts() {
        let mut q = loaded(4);
        let mut id = ids();
        let (c, _) = q.claim(&mut Budget::messages(3), at(0), 1, 30_000, 5, &mut id);
        q.ack(0, c[0].delivery_id);
        q.ack(2, c[2].delivery_id);
        let encoded = q.encode();
        let mut restored = QueuePartition::decode(&encoded).unwrap();
        assert_eq!(restored.floor(), 1);
        restored.load((1..4).map(|o| (o, message(0, 0))));
        let (c, _) = restored.claim(&mut Budget::messages(10), at(0), 2, 30_000, 5, &mut id);
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
        q.claim(&mut Budget::messages(1), at(0), 7, 30_000, 5, &mut id);
        assert!(q.release_member(7));
        let (c, _) = q.claim(&mut Budget::messages(2), at(0), 8, 30_000, 5, &mut id);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn an_overdue_receipt_still_acks_until_the_message_is_claimed_again() {
        let mut q = loaded(1);
        let mut id = ids();
        let (c, _) = q.claim(&mut Budget::messages(1), at(0), 1, 1_000, 5, &mut id);
        assert!(q.has_available(1_000), "the deadline passed");
        assert!(
            q.claim(&mut Budget::messages(0), at(1_000), 2, 1_000, 5, &mut id)
                .0
                .is_empty()
        );
        assert_eq!(
            q.in_flight(),
            1,
            "overdue, but not given to anyone else yet"
        );
        assert_eq!(q.ack(0, c[0].delivery_id), Settle::Done);
        assert_eq!(q.floor(), 1);
        assert_eq!((q.in_flight(), q.backlog(1)), (0, 0));
        q.assert_consistent();
    }

    #[test]
    fn indexes_and_counts_follow_every_state_change() {
        // A deterministic mix of every operation on a window of mixed priorities and TTLs,
        // checked against a full scan after each step.
        let mut q = QueuePartition::new(0);
        let mut id = ids();
        let mut out: Vec<Claimed> = Vec::new();
        let mut seed = 0x2545_f491_u64;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        let mut loaded_to = 0;
        for step in 0..5_000_i64 {
            let now = step * 10;
            match next(8) {
                0 => {
                    let batch: Vec<_> = (loaded_to..loaded_to + next(20))
                        .map(|o| {
                            (
                                o,
                                message(next(10) as u32, [0, 0, 0, 700][next(4) as usize]),
                            )
                        })
                        .collect();
                    loaded_to += batch.len() as u64;
                    q.load(batch);
                }
                1 | 2 => {
                    let (claimed, dead) = q.claim(
                        &mut Budget::messages(next(8) as usize),
                        at(now),
                        next(3),
                        300,
                        4,
                        &mut id,
                    );
                    out.extend(claimed);
                    for letter in dead {
                        q.dead_lettered(letter.offset, next(4) > 0);
                    }
                }
                3 | 4 if !out.is_empty() => {
                    let c = out.swap_remove(next(out.len() as u64) as usize);
                    q.ack(c.offset, c.delivery_id);
                }
                5 if !out.is_empty() => {
                    let c = out.swap_remove(next(out.len() as u64) as usize);
                    if let Settle::DeadLetter(letter) =
                        q.nack(c.offset, c.delivery_id, now, next(3) * 100, 4)
                    {
                        q.dead_lettered(letter.offset, true);
                    }
                }
                6 if !out.is_empty() => {
                    let c = &out[next(out.len() as u64) as usize];
                    q.extend(c.offset, c.delivery_id, now, 500);
                }
                7 => {
                    q.release_member(next(3));
                }
                _ => {}
            }
            q.assert_consistent();
        }
        assert!(
            q.counters.redeliveries > 0 && q.counters.expired > 0 && q.counters.dead_lettered > 0
        );
    }

    #[test]
    fn a_claim_that_never_reached_the_consumer_is_taken_back_without_an_attempt() {
        let mut q = loaded(2);
        let mut id = ids();
        let (c, _) = q.claim(&mut Budget::messages(2), at(0), 1, 30_000, 1, &mut id);
        assert!(q.unclaim(0, c[0].delivery_id));
        // The member left before the second receipt was taken back: it still counts no attempt.
        q.release_member(1);
        assert!(q.unclaim(1, c[1].delivery_id));
        assert!(!q.unclaim(1, c[1].delivery_id), "only once");
        q.assert_consistent();
        let (again, dead) = q.claim(&mut Budget::messages(2), at(0), 2, 30_000, 1, &mut id);
        assert!(
            dead.is_empty(),
            "max_deliveries 1: nothing was delivered yet"
        );
        assert_eq!(
            again
                .iter()
                .map(|c| (c.offset, c.attempt))
                .collect::<Vec<_>>(),
            vec![(0, 1), (1, 1)]
        );
        assert_eq!(q.counters.redeliveries, 0);
        assert!(
            !q.unclaim(0, c[0].delivery_id),
            "a stale claim cannot undo the new one"
        );
        q.assert_consistent();
    }

    #[test]
    fn a_wall_clock_step_does_not_make_deliveries_overdue() {
        let mut q = loaded(1);
        let mut id = ids();
        let (c, _) = q.claim(&mut Budget::messages(1), at(1_000), 1, 30_000, 5, &mut id);
        let stepped = Clock {
            mono_ms: 2_000,
            wall_ms: 1_000 + 3_600_000,
        };
        assert!(
            q.claim(&mut Budget::messages(1), stepped, 2, 30_000, 5, &mut id)
                .0
                .is_empty()
        );
        assert!(!q.has_available(stepped.mono_ms));
        assert_eq!(q.ack(0, c[0].delivery_id), Settle::Done);
    }

    #[test]
    fn a_parked_message_does_not_count_against_the_window() {
        let mut q = loaded(1);
        let mut id = ids();
        let (c, _) = q.claim(&mut Budget::messages(1), at(0), 1, 30_000, 5, &mut id);
        let day = 24 * 3_600_000;
        assert_eq!(q.nack(0, c[0].delivery_id, 0, day, 5), Settle::Done);
        q.load((1..1_001).map(|o| (o, message(0, 0))));
        let (c, _) = q.claim(&mut Budget::messages(1_000), at(1), 1, 30_000, 5, &mut id);
        assert_eq!(c.len(), 1_000, "the messages behind the parked one flow");
        for d in &c {
            q.ack(d.offset, d.delivery_id);
        }
        assert_eq!(q.floor(), 0, "the parked message holds the floor");
        assert_eq!(q.unsettled(), 1, "but only it counts against the window");
        assert!(
            q.window.values().filter(|s| s.message.is_some()).count() == 1,
            "settled slots keep no payload"
        );
        q.assert_consistent();
    }
}
