//! A recorded history of what clients saw while a broker was being crashed, and one checker
//! over it.
//!
//! A chaos test records an [`Event`] for everything its clients observe: a publish sent and
//! acknowledged (with its offset), a delivery to a stream or queue consumer, a queue ack sent, a
//! committed offset read back, a full read of the log, a `kill -9` and a restart. [`History`]
//! stamps each event with the time since the history began, in the order they were recorded.
//! [`check`] then replays the whole history and reports every [`Violation`] of the durability
//! contract (`docs/durability.md`):
//!
//! | [`Invariant`] | what must hold |
//! |---|---|
//! | `AckedMessageLost` | a message acknowledged to its producer, or once read at an offset, is read at that offset in every later full read |
//! | `DuplicateOffset` | one offset holds one message, and one message is stored at one offset |
//! | `KeyOrder` | the messages one producer sent with one key are stored in the order it sent them |
//! | `StreamGap` | a stream subscription delivers each partition's offsets one after the other, and resumes after a crash no further than one past what it had delivered |
//! | `CommitWentBack` | a subscription's committed offset never decreases |
//! | `AckedQueueMessageRedelivered` | a queue message whose ack was sent at least [`Rules::queue_ack_window`] before the crash of that broker run (or in a run not crashed yet) is never delivered again |
//! | `QueueDeliveredTwice` | within one broker run, a queue message is delivered again only after its ack deadline |
//! | `DelayedDeliveredEarly` | a delayed message is neither appended nor delivered before its delivery time |
//! | `UnknownMessage` | everything read was published by the test |
//! | `NotDelivered` | (final check only) every stored or acknowledged message reached the stream and the queue subscription |
//!
//! The [`Checker`] is fed the history in order ([`History::drain`] hands over what was recorded
//! since the last call) and keeps only what the invariants need; what it reports depends only on
//! the events fed, so its unit tests feed it small bad histories and show each check fire.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
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
    /// client's clock when it did.
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
    /// The whole log, read from offset 0 up to the high watermark. The read began at `began`
    /// ([`History::now`] before it started): what was acknowledged or seen by then must be in it.
    LogRead {
        began: Duration,
        entries: Vec<LogEntry>,
    },
    /// Broker run `run` is about to be killed with SIGKILL.
    Crash { run: u32 },
    /// Broker run `run` is ready.
    Started { run: u32 },
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

/// The documented allowances the checker applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// A queue ack sent less than this before its broker run was killed may be lost
    /// (`docs/durability.md`, "Queue ack state": acks of the last `queue.ack_flush_interval_ms`
    /// may be lost; the window adds the ack's transit and the flush's own write).
    pub queue_ack_window: Duration,
    /// The queue subscription's ack deadline: within one broker run, a message is delivered
    /// again only after this.
    pub queue_ack_deadline: Duration,
}

/// The invariants the [`Checker`] enforces; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Invariant {
    AckedMessageLost,
    DuplicateOffset,
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

/// Counts over the history fed so far, for a run's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub sent: usize,
    pub acked: usize,
    /// Acknowledged as scheduled (delayed) rather than appended.
    pub scheduled: usize,
    pub failed: usize,
    /// Messages in the last full log read.
    pub stored: usize,
    pub stream_deliveries: usize,
    pub queue_deliveries: usize,
    /// Queue deliveries of a message delivered before.
    pub queue_redeliveries: usize,
    pub crashes: usize,
}

/// The one checker: fed the history in order (all at once, or in pieces as it is recorded), it
/// keeps what the invariants need and reports the violations found so far.
#[derive(Debug)]
pub struct Checker {
    rules: Rules,
    counts: Counts,
    violations: Vec<Violation>,
    now: Duration,
    /// Every message sent, with its delivery time if delayed.
    sent: HashMap<String, Option<i64>>,
    /// Sent order per (producer, key).
    keyed: BTreeMap<(u32, String), Vec<String>>,
    /// Acknowledged messages: when, and where (None: scheduled).
    acked: HashMap<String, (Duration, u32, Option<u64>)>,
    /// What each offset holds, and when it was first seen there.
    at_offset: HashMap<(u32, u64), (String, Duration)>,
    placed: HashMap<String, (u32, u64)>,
    crashes: HashMap<u32, Duration>,
    queue_acks: HashMap<String, Vec<(u32, Duration)>>,
    queue_deliveries: HashMap<String, Vec<(u32, Duration)>>,
    delivered_to: HashMap<ConsumerKind, HashSet<String>>,
    /// Last stream delivery per (run, partition), and the highest over all runs per partition.
    stream_last: HashMap<(u32, u32), u64>,
    stream_max: HashMap<u32, u64>,
    commits: HashMap<u32, u64>,
    last_read: Option<Vec<LogEntry>>,
}

/// Replays `records` with a new [`Checker`] and returns every violation found.
pub fn check(records: &[Record], rules: &Rules, completeness: Completeness) -> Vec<Violation> {
    let mut checker = Checker::new(*rules);
    checker.feed(records);
    checker.violations(completeness)
}

impl Checker {
    pub fn new(rules: Rules) -> Checker {
        Checker {
            rules,
            counts: Counts::default(),
            violations: Vec::new(),
            now: Duration::ZERO,
            sent: HashMap::new(),
            keyed: BTreeMap::new(),
            acked: HashMap::new(),
            at_offset: HashMap::new(),
            placed: HashMap::new(),
            crashes: HashMap::new(),
            queue_acks: HashMap::new(),
            queue_deliveries: HashMap::new(),
            delivered_to: HashMap::new(),
            stream_last: HashMap::new(),
            stream_max: HashMap::new(),
            commits: HashMap::new(),
            last_read: None,
        }
    }

    /// Applies `records`, which must follow the ones fed before.
    pub fn feed(&mut self, records: &[Record]) {
        let rules = self.rules;
        for record in records {
            self.now = record.at;
            self.apply(&record.event, &rules);
        }
    }

    /// Every violation in what was fed so far: those seen while feeding, in order, then the
    /// per-key order over everything stored, then (for [`Completeness::Final`]) what the last
    /// log read holds but a subscription never got, and what was acknowledged but is not in it.
    pub fn violations(&self, completeness: Completeness) -> Vec<Violation> {
        let mut all = self.violations.clone();
        all.extend(self.key_order_violations());
        if completeness == Completeness::Final {
            all.extend(self.final_violations());
        }
        all
    }

    /// What was fed so far, counted.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Acknowledged messages (appended or scheduled) missing from the last log read.
    pub fn acked_missing_from_last_read(&self) -> Vec<String> {
        let stored: HashSet<&str> = self
            .last_read
            .iter()
            .flatten()
            .map(|e| e.id.as_str())
            .collect();
        let mut missing: Vec<String> = self
            .acked
            .keys()
            .filter(|id| !stored.contains(id.as_str()))
            .cloned()
            .collect();
        missing.sort();
        missing
    }

    /// Messages of the last log read that the stream subscription or the queue subscription has
    /// not received yet, with which one.
    pub fn undelivered(&self) -> Vec<String> {
        let empty = HashSet::new();
        let stream = self
            .delivered_to
            .get(&ConsumerKind::Stream)
            .unwrap_or(&empty);
        let queue: HashSet<&String> = self
            .delivered_to
            .iter()
            .filter(|(kind, _)| matches!(kind, ConsumerKind::Queue(_)))
            .flat_map(|(_, ids)| ids)
            .collect();
        let mut missing = Vec::new();
        for entry in self.last_read.iter().flatten() {
            if !stream.contains(&entry.id) {
                missing.push(format!(
                    "{} never reached the stream subscription",
                    entry.id
                ));
            }
            if !queue.contains(&entry.id) {
                missing.push(format!("{} never reached the queue subscription", entry.id));
            }
        }
        missing
    }

    fn violation(&mut self, invariant: Invariant, detail: String) {
        self.violations.push(Violation {
            invariant,
            at: self.now,
            detail,
        });
    }

    fn apply(&mut self, event: &Event, rules: &Rules) {
        match event {
            Event::PublishSent {
                producer,
                id,
                key,
                deliver_at_ms,
            } => {
                self.counts.sent += 1;
                if let Some(key) = key {
                    self.keyed
                        .entry((*producer, key.clone()))
                        .or_default()
                        .push(id.clone());
                }
                self.sent.insert(id.clone(), *deliver_at_ms);
            }
            Event::PublishAcked {
                id,
                partition,
                offset,
            } => {
                self.counts.acked += 1;
                self.counts.scheduled += usize::from(offset.is_none());
                if !self.sent.contains_key(id) {
                    self.violation(
                        Invariant::UnknownMessage,
                        format!("ack for {id}, never sent"),
                    );
                }
                self.acked
                    .insert(id.clone(), (self.now, *partition, *offset));
                if let Some(offset) = offset {
                    self.place(*partition, *offset, id, "its publish ack");
                }
            }
            Event::PublishFailed { .. } => self.counts.failed += 1,
            Event::Started { .. } => {}
            Event::Delivered {
                consumer,
                run,
                entry,
                wall_ms,
            } => self.delivered(*consumer, *run, entry, *wall_ms, rules),
            Event::QueueAckSent {
                run,
                id,
                partition,
                offset,
            } => {
                self.place(*partition, *offset, id, "a queue ack");
                self.queue_acks
                    .entry(id.clone())
                    .or_default()
                    .push((*run, self.now));
            }
            Event::CommitObserved { partition, offset } => {
                let last = self.commits.entry(*partition).or_insert(*offset);
                if *offset < *last {
                    let was = *last;
                    self.violation(
                        Invariant::CommitWentBack,
                        format!("partition {partition}: committed offset {was}, then {offset}"),
                    );
                } else {
                    *last = *offset;
                }
            }
            Event::LogRead { began, entries } => self.log_read(*began, entries),
            Event::Crash { run } => {
                self.counts.crashes += 1;
                self.crashes.insert(*run, self.now);
            }
        }
    }

    /// Associates `(partition, offset)` with `id`; each side must have one partner only.
    fn place(&mut self, partition: u32, offset: u64, id: &str, source: &str) {
        if let Some((held, _)) = self.at_offset.get(&(partition, offset)) {
            if held != id {
                let held = held.clone();
                self.violation(
                    Invariant::DuplicateOffset,
                    format!("{partition}:{offset} holds {held}, but {source} says {id}"),
                );
            }
            return;
        }
        if let Some(&(p, o)) = self.placed.get(id) {
            if (p, o) != (partition, offset) {
                self.violation(
                    Invariant::DuplicateOffset,
                    format!("{id} is stored at {p}:{o} and, by {source}, at {partition}:{offset}"),
                );
            }
            return;
        }
        self.at_offset
            .insert((partition, offset), (id.to_string(), self.now));
        self.placed.insert(id.to_string(), (partition, offset));
    }

    fn check_appended_after_due(&mut self, entry: &LogEntry, seen_ms: Option<i64>) {
        let Some(due) = self.sent.get(&entry.id).copied().flatten() else {
            return;
        };
        if entry.append_time_ms < due {
            self.violation(
                Invariant::DelayedDeliveredEarly,
                format!(
                    "{} due at {due} was appended at {} ({} ms early)",
                    entry.id,
                    entry.append_time_ms,
                    due - entry.append_time_ms
                ),
            );
        }
        if let Some(seen) = seen_ms.filter(|&seen| seen < due) {
            self.violation(
                Invariant::DelayedDeliveredEarly,
                format!(
                    "{} due at {due} was delivered at {seen} ({} ms early)",
                    entry.id,
                    due - seen
                ),
            );
        }
    }

    fn known(&mut self, id: &str, what: &str) -> bool {
        if self.sent.contains_key(id) {
            return true;
        }
        self.violation(
            Invariant::UnknownMessage,
            format!("{what} {id}, which was never sent"),
        );
        false
    }

    fn delivered(
        &mut self,
        consumer: ConsumerKind,
        run: u32,
        entry: &LogEntry,
        wall_ms: i64,
        rules: &Rules,
    ) {
        let LogEntry {
            partition,
            offset,
            id,
            ..
        } = entry;
        if !self.known(id, "delivered") {
            return;
        }
        self.place(*partition, *offset, id, "a delivery");
        self.check_appended_after_due(entry, Some(wall_ms));
        self.delivered_to
            .entry(consumer)
            .or_default()
            .insert(id.clone());
        match consumer {
            ConsumerKind::Stream => {
                self.counts.stream_deliveries += 1;
                self.stream_delivery(run, *partition, *offset);
            }
            ConsumerKind::Queue(n) => {
                self.counts.queue_deliveries += 1;
                self.queue_delivery(n, run, id, rules);
            }
        }
    }

    fn stream_delivery(&mut self, run: u32, partition: u32, offset: u64) {
        let expected = self
            .stream_last
            .get(&(run, partition))
            .map(|&last| last + 1);
        match expected {
            Some(next) if offset != next => self.violation(
                Invariant::StreamGap,
                format!(
                    "run {run}, partition {partition}: offset {offset} after {}",
                    next - 1
                ),
            ),
            None => {
                // The first delivery of this run resumes at the committed offset, which is at
                // most one past what was delivered before.
                let resume_limit = self.stream_max.get(&partition).map_or(0, |&max| max + 1);
                if offset > resume_limit {
                    self.violation(
                        Invariant::StreamGap,
                        format!(
                            "run {run}, partition {partition}: resumed at {offset}, but only \
                             offsets below {resume_limit} were ever delivered"
                        ),
                    );
                }
            }
            _ => {}
        }
        self.stream_last.insert((run, partition), offset);
        let max = self.stream_max.entry(partition).or_insert(offset);
        *max = (*max).max(offset);
    }

    fn queue_delivery(&mut self, consumer: u32, run: u32, id: &str, rules: &Rules) {
        let acks = self.queue_acks.get(id).cloned().unwrap_or_default();
        for (ack_run, acked_at) in acks {
            let protected = match self.crashes.get(&ack_run) {
                None => true,
                Some(&crash) => crash >= acked_at + rules.queue_ack_window,
            };
            if protected {
                let crash = self
                    .crashes
                    .get(&ack_run)
                    .map_or("not crashed".to_string(), |c| format!("crashed at {c:?}"));
                self.violation(
                    Invariant::AckedQueueMessageRedelivered,
                    format!(
                        "{id} delivered to queue consumer {consumer} in run {run}; its ack was \
                         sent at {acked_at:?} in run {ack_run} ({crash}, window {:?})",
                        rules.queue_ack_window
                    ),
                );
            }
        }
        let now = self.now;
        let earlier = self.queue_deliveries.entry(id.to_string()).or_default();
        self.counts.queue_redeliveries += usize::from(!earlier.is_empty());
        let twice = earlier
            .iter()
            .find(|&&(r, at)| r == run && now < at + rules.queue_ack_deadline)
            .copied();
        earlier.push((run, now));
        if let Some((_, at)) = twice {
            self.violation(
                Invariant::QueueDeliveredTwice,
                format!(
                    "{id} delivered at {at:?} and again to queue consumer {consumer} at {now:?} \
                     in run {run}, before its ack deadline {:?}",
                    rules.queue_ack_deadline
                ),
            );
        }
    }

    fn log_read(&mut self, began: Duration, entries: &[LogEntry]) {
        let by_offset: HashMap<(u32, u64), &LogEntry> = entries
            .iter()
            .map(|e| ((e.partition, e.offset), e))
            .collect();
        // Everything acknowledged or seen at an offset before this read began is still there.
        let mut expected: Vec<((u32, u64), String)> = self
            .at_offset
            .iter()
            .filter(|(_, (_, seen))| *seen <= began)
            .map(|(&at, (id, _))| (at, id.clone()))
            .collect();
        expected.sort();
        for ((partition, offset), id) in expected {
            match by_offset.get(&(partition, offset)) {
                None => {
                    let how = match self.acked.get(&id) {
                        Some((at, _, _)) => format!("acknowledged at {at:?}"),
                        None => "seen earlier".into(),
                    };
                    self.violation(
                        Invariant::AckedMessageLost,
                        format!("{id} at {partition}:{offset} ({how}) is missing"),
                    );
                }
                Some(entry) if entry.id != id => self.violation(
                    Invariant::DuplicateOffset,
                    format!("{partition}:{offset} held {id}, now holds {}", entry.id),
                ),
                Some(_) => {}
            }
        }
        for entry in entries {
            if self.known(&entry.id, "read") {
                self.place(entry.partition, entry.offset, &entry.id, "a log read");
                self.check_appended_after_due(entry, None);
            }
        }
        self.counts.stored = entries.len();
        self.last_read = Some(entries.to_vec());
    }

    fn key_order_violations(&self) -> Vec<Violation> {
        let mut found = Vec::new();
        for ((producer, key), ids) in &self.keyed {
            let mut previous: Option<(&str, u32, u64)> = None;
            for id in ids {
                let Some(&(partition, offset)) = self.placed.get(id) else {
                    continue;
                };
                let out_of_order = previous.filter(|&(_, p, o)| p != partition || o >= offset);
                if let Some((before, p, o)) = out_of_order {
                    found.push(Violation {
                        invariant: Invariant::KeyOrder,
                        at: self.now,
                        detail: format!(
                            "producer {producer}, key {key}: {before} (sent first) at {p}:{o}, \
                             {id} at {partition}:{offset}"
                        ),
                    });
                }
                previous = Some((id, partition, offset));
            }
        }
        found
    }

    fn final_violations(&self) -> Vec<Violation> {
        let violation = |invariant, detail| Violation {
            invariant,
            at: self.now,
            detail,
        };
        if self.last_read.is_none() {
            let detail = "the final check needs a final log read".to_string();
            return vec![violation(Invariant::NotDelivered, detail)];
        }
        let mut found = Vec::new();
        for id in self.acked_missing_from_last_read() {
            let scheduled = self.sent.get(&id).copied().flatten().is_some();
            found.push(violation(
                Invariant::AckedMessageLost,
                format!("{id} (scheduled: {scheduled}) was acknowledged but is not in the log"),
            ));
        }
        for detail in self.undelivered() {
            found.push(violation(Invariant::NotDelivered, detail));
        }
        found
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        queue_ack_window: Duration::from_millis(500),
        queue_ack_deadline: Duration::from_secs(300),
    };

    fn at(ms: u64, event: Event) -> Record {
        Record {
            at: Duration::from_millis(ms),
            event,
        }
    }

    fn sent(id: &str, key: Option<&str>) -> Event {
        Event::PublishSent {
            producer: 0,
            id: id.into(),
            key: key.map(Into::into),
            deliver_at_ms: None,
        }
    }

    fn acked(id: &str, partition: u32, offset: u64) -> Event {
        Event::PublishAcked {
            id: id.into(),
            partition,
            offset: Some(offset),
        }
    }

    fn entry(id: &str, partition: u32, offset: u64) -> LogEntry {
        LogEntry {
            partition,
            offset,
            id: id.into(),
            append_time_ms: 1_000,
        }
    }

    fn read(began_ms: u64, entries: &[(&str, u32, u64)]) -> Event {
        Event::LogRead {
            began: Duration::from_millis(began_ms),
            entries: entries.iter().map(|&(id, p, o)| entry(id, p, o)).collect(),
        }
    }

    fn delivered(consumer: ConsumerKind, run: u32, id: &str, p: u32, o: u64) -> Event {
        Event::Delivered {
            consumer,
            run,
            entry: entry(id, p, o),
            wall_ms: 1_000,
        }
    }

    fn queue_ack(run: u32, id: &str, p: u32, o: u64) -> Event {
        Event::QueueAckSent {
            run,
            id: id.into(),
            partition: p,
            offset: o,
        }
    }

    fn invariants(records: &[Record], completeness: Completeness) -> Vec<Invariant> {
        check(records, &RULES, completeness)
            .into_iter()
            .map(|v| v.invariant)
            .collect()
    }

    /// A run where everything goes right, used as the base the bad histories break.
    fn good_history() -> Vec<Record> {
        vec![
            at(0, Event::Started { run: 0 }),
            at(1, sent("a", Some("k"))),
            at(2, sent("b", Some("k"))),
            at(5, acked("a", 0, 0)),
            at(6, acked("b", 0, 1)),
            at(10, delivered(ConsumerKind::Stream, 0, "a", 0, 0)),
            at(11, delivered(ConsumerKind::Queue(0), 0, "a", 0, 0)),
            at(12, queue_ack(0, "a", 0, 0)),
            at(
                20,
                Event::CommitObserved {
                    partition: 0,
                    offset: 1,
                },
            ),
            at(2_000, Event::Crash { run: 0 }),
            at(2_500, Event::Started { run: 1 }),
            at(2_600, read(2_600, &[("a", 0, 0), ("b", 0, 1)])),
            at(2_700, delivered(ConsumerKind::Stream, 1, "b", 0, 1)),
            at(2_800, delivered(ConsumerKind::Queue(1), 1, "b", 0, 1)),
            at(
                2_900,
                Event::CommitObserved {
                    partition: 0,
                    offset: 2,
                },
            ),
        ]
    }

    #[test]
    fn a_good_history_has_no_violation() {
        assert_eq!(invariants(&good_history(), Completeness::Final), vec![]);
    }

    #[test]
    fn an_acked_message_missing_after_a_restart_is_reported() {
        let mut history = good_history();
        history[11] = at(2_600, read(2_600, &[("a", 0, 0)]));
        let found = invariants(&history, Completeness::Partial);
        assert!(found.contains(&Invariant::AckedMessageLost), "{found:?}");
    }

    #[test]
    fn a_message_acked_after_a_read_began_need_not_be_in_it() {
        let mut history = good_history();
        history.push(at(3_000, sent("c", Some("k"))));
        history.push(at(3_050, acked("c", 0, 2)));
        history.push(at(3_100, read(3_000, &[("a", 0, 0), ("b", 0, 1)])));
        assert_eq!(invariants(&history, Completeness::Partial), vec![]);
    }

    #[test]
    fn a_message_read_once_and_gone_later_is_reported() {
        let mut history = good_history();
        history.push(at(3_000, sent("c", None)));
        history.push(at(
            3_100,
            read(3_100, &[("a", 0, 0), ("b", 0, 1), ("c", 0, 2)]),
        ));
        history.push(at(3_200, read(3_200, &[("a", 0, 0), ("b", 0, 1)])));
        let found = invariants(&history, Completeness::Partial);
        assert_eq!(found, vec![Invariant::AckedMessageLost]);
    }

    #[test]
    fn an_acked_message_missing_from_the_final_read_is_reported_even_when_scheduled() {
        let mut history = good_history();
        history.push(at(
            3_000,
            Event::PublishSent {
                producer: 0,
                id: "later".into(),
                key: None,
                deliver_at_ms: Some(5_000),
            },
        ));
        history.push(at(
            3_001,
            Event::PublishAcked {
                id: "later".into(),
                partition: 0,
                offset: None,
            },
        ));
        history.push(at(9_000, read(9_000, &[("a", 0, 0), ("b", 0, 1)])));
        let found = invariants(&history, Completeness::Final);
        assert_eq!(found, vec![Invariant::AckedMessageLost]);
    }

    #[test]
    fn two_messages_at_one_offset_are_reported() {
        let mut history = good_history();
        history[4] = at(6, acked("b", 0, 0));
        let found = invariants(&history, Completeness::Partial);
        assert!(found.contains(&Invariant::DuplicateOffset), "{found:?}");
    }

    #[test]
    fn one_message_stored_twice_is_reported() {
        let mut history = good_history();
        history[11] = at(2_600, read(2_600, &[("a", 0, 0), ("b", 0, 1), ("a", 0, 2)]));
        let found = invariants(&history, Completeness::Partial);
        assert_eq!(found, vec![Invariant::DuplicateOffset]);
    }

    #[test]
    fn messages_of_one_key_stored_out_of_send_order_are_reported() {
        let mut history = good_history();
        history[3] = at(5, acked("a", 0, 1));
        history[4] = at(6, acked("b", 0, 0));
        history.truncate(5);
        assert_eq!(
            invariants(&history, Completeness::Partial),
            vec![Invariant::KeyOrder]
        );
    }

    #[test]
    fn a_stream_that_skips_an_offset_is_reported() {
        let mut history = good_history();
        history.truncate(9);
        history.push(at(30, sent("c", None)));
        history.push(at(31, acked("c", 0, 2)));
        history.push(at(32, delivered(ConsumerKind::Stream, 0, "c", 0, 2)));
        assert_eq!(
            invariants(&history, Completeness::Partial),
            vec![Invariant::StreamGap]
        );
    }

    #[test]
    fn a_stream_that_resumes_past_what_it_delivered_is_reported() {
        let mut history = good_history();
        history.push(at(3_000, sent("c", None)));
        history.push(at(3_001, acked("c", 0, 2)));
        history.push(at(3_002, Event::Crash { run: 1 }));
        history.push(at(3_003, Event::Started { run: 2 }));
        history.push(at(3_004, delivered(ConsumerKind::Stream, 2, "c", 0, 2)));
        assert_eq!(invariants(&history, Completeness::Partial), vec![]);
        history.pop();
        history.push(at(3_000, sent("d", None)));
        history.push(at(3_001, acked("d", 0, 3)));
        history.push(at(3_004, delivered(ConsumerKind::Stream, 2, "d", 0, 3)));
        assert_eq!(
            invariants(&history, Completeness::Partial),
            vec![Invariant::StreamGap]
        );
    }

    #[test]
    fn a_committed_offset_that_goes_back_is_reported() {
        let mut history = good_history();
        history.push(at(
            3_000,
            Event::CommitObserved {
                partition: 0,
                offset: 1,
            },
        ));
        assert_eq!(
            invariants(&history, Completeness::Partial),
            vec![Invariant::CommitWentBack]
        );
    }

    #[test]
    fn a_queue_message_acked_well_before_the_crash_and_redelivered_is_reported() {
        let mut history = good_history();
        history.push(at(3_000, delivered(ConsumerKind::Queue(0), 1, "a", 0, 0)));
        assert_eq!(
            invariants(&history, Completeness::Partial),
            vec![Invariant::AckedQueueMessageRedelivered]
        );
    }

    #[test]
    fn a_queue_message_acked_just_before_the_crash_may_come_back() {
        let mut history = good_history();
        // Acked 100 ms before the crash: inside the documented window.
        history.insert(9, at(1_900, queue_ack(0, "b", 0, 1)));
        history.insert(
            9,
            at(1_890, delivered(ConsumerKind::Queue(0), 0, "b", 0, 1)),
        );
        assert_eq!(invariants(&history, Completeness::Final), vec![]);
        // The same redelivery with the ack 600 ms before the crash is a violation.
        history[10] = at(1_400, queue_ack(0, "b", 0, 1));
        history[9] = at(1_390, delivered(ConsumerKind::Queue(0), 0, "b", 0, 1));
        assert_eq!(
            invariants(&history, Completeness::Final),
            vec![Invariant::AckedQueueMessageRedelivered]
        );
    }

    #[test]
    fn a_queue_message_redelivered_in_the_same_run_after_its_ack_is_reported() {
        let mut history = good_history();
        history.insert(8, at(13, delivered(ConsumerKind::Queue(1), 0, "a", 0, 0)));
        let found = invariants(&history, Completeness::Partial);
        assert!(
            found.contains(&Invariant::AckedQueueMessageRedelivered),
            "{found:?}"
        );
        assert!(found.contains(&Invariant::QueueDeliveredTwice), "{found:?}");
    }

    #[test]
    fn a_queue_message_given_to_two_consumers_in_one_run_is_reported() {
        let mut history = good_history();
        history.insert(
            11,
            at(2_850, delivered(ConsumerKind::Queue(0), 1, "b", 0, 1)),
        );
        assert_eq!(
            invariants(&history, Completeness::Partial),
            vec![Invariant::QueueDeliveredTwice]
        );
    }

    #[test]
    fn a_delayed_message_appended_or_delivered_early_is_reported() {
        let delayed = |due: i64| Event::PublishSent {
            producer: 0,
            id: "d".into(),
            key: None,
            deliver_at_ms: Some(due),
        };
        let delivery = |append: i64, wall: i64| Event::Delivered {
            consumer: ConsumerKind::Stream,
            run: 0,
            entry: LogEntry {
                partition: 0,
                offset: 0,
                id: "d".into(),
                append_time_ms: append,
            },
            wall_ms: wall,
        };
        let on_time = vec![at(0, delayed(5_000)), at(10, delivery(5_000, 5_001))];
        assert_eq!(invariants(&on_time, Completeness::Partial), vec![]);
        let appended_early = vec![at(0, delayed(5_000)), at(10, delivery(4_990, 5_001))];
        assert_eq!(
            invariants(&appended_early, Completeness::Partial),
            vec![Invariant::DelayedDeliveredEarly]
        );
        let seen_early = vec![at(0, delayed(5_000)), at(10, delivery(5_000, 4_999))];
        assert_eq!(
            invariants(&seen_early, Completeness::Partial),
            vec![Invariant::DelayedDeliveredEarly]
        );
    }

    #[test]
    fn a_message_nobody_sent_is_reported() {
        let mut history = good_history();
        history.push(at(3_000, delivered(ConsumerKind::Stream, 1, "ghost", 0, 2)));
        assert_eq!(
            invariants(&history, Completeness::Partial),
            vec![Invariant::UnknownMessage]
        );
    }

    #[test]
    fn a_stored_message_never_consumed_fails_the_final_check_only() {
        let mut history = good_history();
        history.truncate(12);
        assert_eq!(invariants(&history, Completeness::Partial), vec![]);
        assert_eq!(
            invariants(&history, Completeness::Final),
            vec![Invariant::NotDelivered, Invariant::NotDelivered]
        );
    }

    #[test]
    fn feeding_the_history_in_pieces_finds_what_one_replay_finds() {
        let mut history = good_history();
        history.push(at(3_000, delivered(ConsumerKind::Queue(0), 1, "a", 0, 0)));
        history.push(at(
            3_100,
            Event::CommitObserved {
                partition: 0,
                offset: 0,
            },
        ));
        let whole = check(&history, &RULES, Completeness::Final);
        assert_eq!(whole.len(), 2, "{whole:?}");
        for split in 0..history.len() {
            let mut checker = Checker::new(RULES);
            checker.feed(&history[..split]);
            checker.feed(&history[split..]);
            assert_eq!(
                checker.violations(Completeness::Final),
                whole,
                "split at {split}"
            );
        }
        let mut checker = Checker::new(RULES);
        checker.feed(&history);
        let counts = checker.counts();
        assert_eq!((counts.sent, counts.acked, counts.stored), (2, 2, 2));
        assert_eq!((counts.queue_deliveries, counts.queue_redeliveries), (3, 1));
        assert_eq!(counts.crashes, 1);
    }

    #[test]
    fn the_history_stamps_events_in_order() {
        let history = History::new();
        history.record(Event::Started { run: 0 });
        history.record_all([Event::Crash { run: 0 }, Event::Started { run: 1 }]);
        let records = history.drain();
        assert_eq!(records.len(), 3);
        assert!(records.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(history.drain().is_empty());
    }
}
