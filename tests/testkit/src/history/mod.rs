//! A recorded history of what clients saw while faults were injected (brokers crashed, links
//! cut), and one checker over it.
//!
//! A fault test records an [`Event`] for everything its clients observe: a publish sent and
//! acknowledged (with its offset), a delivery to a stream or queue consumer, a queue ack sent, a
//! committed offset read back, a full read of the log from one node, a `kill -9`, a restart and
//! a consumer session cut by a link fault. [`History`] stamps each event with the time since
//! the history began, in the order they were recorded.
//! [`check`] then replays the whole history and reports every [`Violation`] of the durability
//! contract (`docs/durability.md`):
//!
//! | [`Invariant`] | what must hold |
//! |---|---|
//! | `AckedMessageLost` | a message acknowledged to its producer, or once read at an offset, is read at that offset in every later full read |
//! | `DuplicateOffset` | one offset holds one message, and one message is stored at one offset |
//! | `ReplicaDiverged` | two full reads from different nodes hold the same message at every offset both hold below the lower of their ends (commit points) |
//! | `UncommittedRead` | a message a consumer got from an offset is what every later full read (below its end) and publish ack says is there: no consumer reads above the commit point |
//! | `KeyOrder` | the messages one producer sent with one key are stored in the order it sent them |
//! | `StreamGap` | a stream subscription delivers each partition's offsets one after the other, and resumes after a crash no further than one past what it had delivered |
//! | `CommitWentBack` | a subscription's committed offset never decreases |
//! | `AckedQueueMessageRedelivered` | a queue message whose ack was sent at least [`Rules::queue_ack_window`] before the crash (or session cut) of its run, or in a run not ended yet, is never delivered again; in a cluster, also not if its ack was sent within a leader window (below) or up to [`Rules::queue_ack_window`] before one opened |
//! | `QueueDeliveredTwice` | within one run (a broker run, or a consumer session), a queue message is delivered again only after its ack deadline; in a cluster, or when a leader window (below) lies between the two deliveries |
//! | `DelayedDeliveredEarly` | a delayed message is neither appended nor delivered before its delivery time |
//! | `UnknownMessage` | everything read was published by the test |
//! | `NotDelivered` | (final check only) every stored or acknowledged message reached the stream and the queue subscription |
//!
//! A *leader window* is the cluster's allowance for a leadership change (docs/clustering.md,
//! "### Queues"): a replicated partition is delivered by its leader only, which holds the
//! leases in memory and proposes its ack state every flush interval, so a new leader delivers
//! again what was in flight on the old one, and acks of the last flush interval, or acks sent to
//! a node that no longer leads, may be lost. A window opens at [`Event::LeadersMayMove`] (a
//! fault of any node, conservatively for every partition) and closes [`Rules::leader_settle`]
//! after the next [`Event::LeadersSettled`]. It relaxes only the two queue invariants above;
//! outside windows they hold as strictly as within one broker run.
//!
//! The [`Checker`] is fed the history in order ([`History::drain`] hands over what was recorded
//! since the last call) and keeps only what the invariants need; what it reports depends only on
//! the events fed, so its unit tests feed it small bad histories and show each check fire.
//!
//! Layout: `event` holds what is recorded ([`Event`], [`History`]); `checker` the
//! [`Checker`] and what it keeps; `reads` where messages are stored (placing them at offsets,
//! full reads, replicas compared); `invariants` the consumer-side checks, one method per
//! invariant family; this file the vocabulary of the verdict ([`Rules`], [`Invariant`],
//! [`Violation`]).

mod checker;
mod event;
mod invariants;
mod reads;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub use checker::{Checker, Counts, check};
pub use event::{ConsumerKind, Event, History, LogEntry, Record};

/// The documented allowances the checker applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// A queue ack sent less than this before its broker run was killed (or its consumer
    /// session cut, [`Event::SessionCut`]) may be lost
    /// (`docs/durability.md`, "Queue ack state": acks of the last `queue.ack_flush_interval_ms`
    /// may be lost; the window adds the ack's transit and the flush's own write).
    pub queue_ack_window: Duration,
    /// The queue subscription's ack deadline: within one broker run, a message is delivered
    /// again only after this.
    pub queue_ack_deadline: Duration,
    /// How long a leader window stays open after [`Event::LeadersSettled`]: a new leader takes
    /// up queue delivery once it applied an entry of its term and its consume sessions notice
    /// (every 250 ms), and a deposed leader's consumers may still ack to it. Zero where no
    /// window is ever opened (a single node).
    pub leader_settle: Duration,
}

/// The invariants the [`Checker`] enforces; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Invariant {
    AckedMessageLost,
    DuplicateOffset,
    ReplicaDiverged,
    UncommittedRead,
    KeyOrder,
    StreamGap,
    CommitWentBack,
    AckedQueueMessageRedelivered,
    QueueDeliveredTwice,
    DelayedDeliveredEarly,
    UnknownMessage,
    NotDelivered,
}

/// One broken invariant, with what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: Invariant,
    /// When (time since the history began) the violating observation was recorded.
    pub at: Duration,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} at {:?}: {}", self.invariant, self.at, self.detail)
    }
}

/// Whether the history is complete: the last full read came after every producer stopped and
/// every consumer drained, so what was stored must also have been delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// Checked mid-run (after a restart): deliveries may still be pending.
    Partial,
    /// Checked at the end.
    Final,
}

/// A reader's view of a violation list: how many of each invariant, and the first few.
pub fn summarize(violations: &[Violation], examples: usize) -> String {
    let mut counts: BTreeMap<Invariant, usize> = BTreeMap::new();
    for v in violations {
        *counts.entry(v.invariant).or_default() += 1;
    }
    let mut out = String::new();
    for (invariant, n) in &counts {
        out.push_str(&format!("{invariant:?}: {n}\n"));
        for v in violations
            .iter()
            .filter(|v| v.invariant == *invariant)
            .take(examples)
        {
            out.push_str(&format!("  {v}\n"));
        }
    }
    out
}
