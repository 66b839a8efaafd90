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
//! `slot`: what the window holds per offset; `persist`: the persisted form (the `acks` column
//! family); `tests`: the rules on an injected clock.

mod persist;
mod slot;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use prost::Message as _;

pub use slot::QueuedMessage;
use slot::{Slot, SlotState};

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

/// When something set at millisecond `now` to wait `ms` falls due (a nack delay, an ack
/// deadline): one millisecond past `now + ms`, because the clock counts whole milliseconds
/// and the nack or claim may have come at the end of millisecond `now`. Due at `now + ms`, a
/// message nacked with a 400 ms backoff could be handed out again 399.1 ms later; this way a
/// delay or deadline is a minimum, never up to a millisecond short. Never 0 (which means
/// "now" in a ready slot).
fn due_after(now: i64, ms: u64) -> i64 {
    now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))
        .saturating_add(1)
        .max(1)
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
    /// Which reset this state descends from: in cluster mode, the raft index of the seek (or
    /// queue start) that began it, carried by every state the leader persists from then on; 0
    /// on a single node. A replicated partition skips a persisted state older than its
    /// current one ([`QueuePartition::encoded_epoch`]): a leader's interval flush that encoded
    /// the state before a seek and was committed after it.
    epoch: u64,
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

    /// A fresh state whose first message is `floor`, begun by the reset of epoch `epoch`
    /// (the raft index of a seek or queue start applied by a partition group).
    pub fn reset(floor: u64, epoch: u64) -> QueuePartition {
        QueuePartition {
            epoch,
            ..QueuePartition::new(floor)
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
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
        let deadline = due_after(now, ack_deadline_ms);
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
            due_after(now, delay_ms)
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
        let deadline = due_after(now, extend_ms);
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
}

#[cfg(test)]
mod tests;
