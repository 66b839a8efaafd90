//! What a chaos test records: the [`Event`]s its clients observe, stamped into a [`History`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which consumer saw a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumerKind {
    /// The stream-mode subscription (one member, committing offsets).
    Stream,
    /// Queue-mode consumer number `n` (competing consumers of one subscription).
    Queue(u32),
}

/// One message as read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub partition: u32,
    pub offset: u64,
    /// The message's identity: its value, unique per message sent by the test.
    pub id: String,
    /// The broker's append time (ms since the epoch).
    pub append_time_ms: i64,
}

/// What a client observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A producer is about to send message `id`. `key` is set for keyed messages (per-key order
    /// is checked per producer and key); `deliver_at_ms` for delayed ones.
    PublishSent {
        producer: u32,
        id: String,
        key: Option<String>,
        deliver_at_ms: Option<i64>,
    },
    /// The broker acknowledged `id`: appended at `offset`, or scheduled (`offset` is `None`).
    PublishAcked {
        id: String,
        partition: u32,
        offset: Option<u64>,
    },
    /// The send of `id` failed for good (it may or may not be stored).
    PublishFailed { id: String, error: String },
    /// A consumer connected to broker run `run` returned a message from `poll`. `wall_ms` is the
    /// client's clock when it did. (`run` is the test's tag for what a delivery belongs to: the
    /// broker run when brokers crash, the consumer session when links fail; a run ends with a
    /// [`Event::Crash`] or an [`Event::SessionCut`].)
    Delivered {
        consumer: ConsumerKind,
        run: u32,
        entry: LogEntry,
        wall_ms: i64,
    },
    /// A queue consumer of broker run `run` handed the ack of the delivery of `id` at
    /// `(partition, offset)` to its stream (`flush` returned, on the session the delivery came
    /// from).
    QueueAckSent {
        run: u32,
        id: String,
        partition: u32,
        offset: u64,
    },
    /// The subscription's committed offset of `partition`, read back from the broker.
    CommitObserved { partition: u32, offset: u64 },
    /// The whole log as node `node` holds it (a single broker is node 0), read from each
    /// partition's start up to `ends[partition]` (exclusive): the node's commit point, which the
    /// read reached. Entries at or above their partition's end (a replica's uncommitted tail)
    /// are neither required nor compared; a partition without an end is committed throughout. The read began at `began` ([`History::now`] before it
    /// started): what was acknowledged or seen by then, below the ends, must be in it.
    LogRead {
        node: u32,
        began: Duration,
        ends: BTreeMap<u32, u64>,
        entries: Vec<LogEntry>,
    },
    /// Broker run `run` is about to be killed with SIGKILL.
    Crash { run: u32 },
    /// The connections of consumer session `run` are about to be cut by a link fault: for the
    /// queue ack rule this is the session's crash (acks sent shortly before may be lost, and its
    /// deliveries come back to the next session). The first cut of a session counts.
    SessionCut { run: u32 },
    /// Broker run `run` is ready.
    Started { run: u32 },
    /// A fault (kill, pause, cut link) of a cluster node is about to begin: from now on any
    /// partition's leader may move, and with it queue delivery (leases are soft state on the
    /// leader, its last acks may not have been proposed yet). Open until
    /// [`Event::LeadersSettled`].
    LeadersMayMove,
    /// Every fault is healed and every node names the same leader for every partition: the
    /// windows opened by [`Event::LeadersMayMove`] close
    /// [`Rules::leader_settle`](super::Rules::leader_settle) from now.
    LeadersSettled,
}

/// An event and when it was recorded, as time since the history began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub at: Duration,
    pub event: Event,
}

/// A thread-safe, append-only history. Events are stamped under the lock, so their order and
/// their times agree.
#[derive(Debug)]
pub struct History {
    start: Instant,
    records: Mutex<Vec<Record>>,
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

impl History {
    pub fn new() -> History {
        History {
            start: Instant::now(),
            records: Mutex::new(Vec::new()),
        }
    }

    /// Appends `event`, stamped with the time since the history began.
    pub fn record(&self, event: Event) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let at = self.start.elapsed();
        records.push(Record { at, event });
    }

    /// The time since the history began, on the clock that stamps events.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Appends several events with one stamp.
    pub fn record_all(&self, events: impl IntoIterator<Item = Event>) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let at = self.start.elapsed();
        records.extend(events.into_iter().map(|event| Record { at, event }));
    }

    /// Takes every record made since the last call, oldest first: feed them to a [`Checker`],
    /// which keeps what it needs, so a long run does not hold every full log read in memory.
    pub fn drain(&self) -> Vec<Record> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
