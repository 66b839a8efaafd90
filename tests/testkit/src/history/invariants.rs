//! The invariants themselves: each method checks one family of observations.

use super::{Checker, ConsumerKind, Invariant, LogEntry, Rules, Violation};

impl Checker {
    pub(super) fn check_appended_after_due(&mut self, entry: &LogEntry, seen_ms: Option<i64>) {
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

    pub(super) fn known(&mut self, id: &str, what: &str) -> bool {
        if self.sent.contains_key(id) {
            return true;
        }
        self.violation(
            Invariant::UnknownMessage,
            format!("{what} {id}, which was never sent"),
        );
        false
    }

    pub(super) fn delivered(
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
        self.place(*partition, *offset, id, "a delivery", false);
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

    pub(super) fn stream_delivery(&mut self, run: u32, partition: u32, offset: u64) {
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

    pub(super) fn queue_delivery(&mut self, consumer: u32, run: u32, id: &str, rules: &Rules) {
        let acks = self.queue_acks.get(id).cloned().unwrap_or_default();
        for (ack_run, acked_at) in acks {
            let protected = match self.crashes.get(&ack_run) {
                None => true,
                Some(&crash) => crash >= acked_at + rules.queue_ack_window,
            } && !self
                .leaders_may_have_moved(acked_at, acked_at + rules.queue_ack_window);
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
        let earlier = self.queue_deliveries.get(id).cloned().unwrap_or_default();
        self.counts.queue_redeliveries += usize::from(!earlier.is_empty());
        let twice = earlier.iter().find(|&&(r, at)| {
            r == run && now < at + rules.queue_ack_deadline && !self.leaders_may_have_moved(at, now)
        });
        let twice = twice.copied();
        self.queue_deliveries
            .entry(id.to_string())
            .or_default()
            .push((run, now));
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

    pub(super) fn key_order_violations(&self) -> Vec<Violation> {
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

    pub(super) fn final_violations(&self) -> Vec<Violation> {
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
