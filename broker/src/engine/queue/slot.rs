//! What a queue partition holds per offset of its window: the message and its slot state.

use std::sync::Arc;

use rapidmq_proto::v1 as pb;

/// One message as a queue holds it.
#[derive(Debug)]
pub struct QueuedMessage {
    pub message: pb::Message,
    pub append_time_ms: i64,
    pub base_timestamp_ms: i64,
}

impl QueuedMessage {
    pub(super) fn priority(&self) -> u32 {
        self.message.priority
    }

    pub(super) fn expired(&self, now_ms: i64) -> bool {
        self.message.ttl_ms > 0 && self.append_time_ms.saturating_add(self.message.ttl_ms) <= now_ms
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SlotState {
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
    pub(super) fn in_flight(self) -> bool {
        matches!(self, SlotState::InFlight { .. } | SlotState::Overdue { .. })
    }

    pub(super) fn delivery(self) -> Option<(u64, u64)> {
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
pub(super) struct Slot {
    /// `None` once done: a settled message waiting for the floor to pass it keeps no payload.
    pub(super) message: Option<Arc<QueuedMessage>>,
    pub(super) priority: u32,
    pub(super) attempts: u32,
    pub(super) state: SlotState,
    /// The delivery id of the latest claim, so it can be taken back if it never reached the
    /// consumer (0: none to take back).
    pub(super) last_delivery: u64,
}

impl Slot {
    pub(super) fn message(&self) -> Arc<QueuedMessage> {
        // Only done slots drop their message, and done slots are never claimed or nacked.
        self.message
            .clone()
            .expect("an unsettled slot keeps its message")
    }
}
