//! The [`Checker`]: what it keeps of the history, and how events reach the invariants.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use super::{Completeness, ConsumerKind, Event, Invariant, LogEntry, Record, Rules, Violation};

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
    /// Consumer sessions cut by a link fault.
    pub session_cuts: usize,
    /// Leader windows opened (cluster faults).
    pub leader_windows: usize,
}

/// The one checker: fed the history in order (all at once, or in pieces as it is recorded), it
/// keeps what the invariants need and reports the violations found so far.
#[derive(Debug)]
pub struct Checker {
    pub(super) rules: Rules,
    pub(super) counts: Counts,
    pub(super) violations: Vec<Violation>,
    pub(super) now: Duration,
    /// Every message sent, with its delivery time if delayed.
    pub(super) sent: HashMap<String, Option<i64>>,
    /// Sent order per (producer, key).
    pub(super) keyed: BTreeMap<(u32, String), Vec<String>>,
    /// Acknowledged messages: when, and where (None: scheduled).
    pub(super) acked: HashMap<String, (Duration, u32, Option<u64>)>,
    /// What each offset holds, when it was first seen there, and whether it is known committed.
    pub(super) at_offset: HashMap<(u32, u64), Held>,
    pub(super) placed: HashMap<String, (u32, u64)>,
    /// When each run crashed or had its session cut: acks of the run sent shortly before may be
    /// lost.
    pub(super) crashes: HashMap<u32, Duration>,
    pub(super) queue_acks: HashMap<String, Vec<(u32, Duration)>>,
    pub(super) queue_deliveries: HashMap<String, Vec<(u32, Duration)>>,
    pub(super) delivered_to: HashMap<ConsumerKind, HashSet<String>>,
    /// Last stream delivery per (run, partition), and the highest over all runs per partition.
    pub(super) stream_last: HashMap<(u32, u32), u64>,
    pub(super) stream_max: HashMap<u32, u64>,
    pub(super) commits: HashMap<u32, u64>,
    pub(super) last_read: Option<Vec<LogEntry>>,
    /// Each node's last full read: its ends and what it held below them.
    pub(super) node_reads: BTreeMap<u32, NodeRead>,
    /// Leader windows: when each opened, and when it was settled (`None`: still open).
    pub(super) leader_windows: Vec<(Duration, Option<Duration>)>,
}

/// What one offset holds, as far as the history shows.
#[derive(Debug, Clone)]
pub(super) struct Held {
    pub(super) id: String,
    pub(super) seen: Duration,
    /// Acknowledged to its producer, or read below a node's commit point; otherwise only a
    /// consumer saw it there.
    pub(super) committed: bool,
}

/// A node's last full read, as the replica comparison needs it.
#[derive(Debug, Clone, Default)]
pub(super) struct NodeRead {
    pub(super) ends: BTreeMap<u32, u64>,
    pub(super) ids: HashMap<(u32, u64), String>,
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
            node_reads: BTreeMap::new(),
            leader_windows: Vec::new(),
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

    pub(super) fn violation(&mut self, invariant: Invariant, detail: String) {
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
                    self.place(*partition, *offset, id, "its publish ack", true);
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
                self.place(*partition, *offset, id, "a queue ack", false);
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
            Event::LogRead {
                node,
                began,
                ends,
                entries,
            } => self.log_read(*node, *began, ends, entries),
            Event::Crash { run } => {
                self.counts.crashes += 1;
                self.crashes.insert(*run, self.now);
            }
            Event::SessionCut { run } => {
                self.counts.session_cuts += 1;
                self.crashes.entry(*run).or_insert(self.now);
            }
            Event::LeadersMayMove => {
                self.counts.leader_windows += 1;
                self.leader_windows.push((self.now, None));
            }
            Event::LeadersSettled => {
                let now = self.now;
                for (_, settled) in self.leader_windows.iter_mut().filter(|w| w.1.is_none()) {
                    *settled = Some(now);
                }
            }
        }
    }

    /// Whether a leader window overlaps `from..=to`: a partition's leader may have moved in
    /// between.
    pub(super) fn leaders_may_have_moved(&self, from: Duration, to: Duration) -> bool {
        let settle = self.rules.leader_settle;
        self.leader_windows.iter().any(|&(opened, settled)| {
            opened <= to && settled.is_none_or(|settled| settled + settle >= from)
        })
    }
}
