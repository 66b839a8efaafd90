//! Where messages are stored: every observation places a message at an offset, and each full
//! read of the log, from one node or several, is held to what was placed before it and to what
//! the other nodes hold.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use super::checker::{Held, NodeRead};
use super::{Checker, Invariant, LogEntry};

impl Checker {
    /// Associates `(partition, offset)` with `id`; each side must have one partner only.
    /// `committed`: the source shows the message committed there (its publish ack, a full read
    /// below a commit point), not only that a consumer got it from there.
    pub(super) fn place(
        &mut self,
        partition: u32,
        offset: u64,
        id: &str,
        source: &str,
        committed: bool,
    ) {
        if let Some(held) = self.at_offset.get_mut(&(partition, offset)) {
            if held.id == id {
                held.committed |= committed;
                return;
            }
            let held = held.clone();
            if !committed || held.committed {
                self.violation(
                    Invariant::DuplicateOffset,
                    format!(
                        "{partition}:{offset} holds {}, but {source} says {id}",
                        held.id
                    ),
                );
                return;
            }
            // A consumer got something else from there: the committed message takes the offset.
            self.uncommitted_read(partition, offset, &held, format!("{source} says {id}"));
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
        let held = Held {
            id: id.to_string(),
            seen: self.now,
            committed,
        };
        self.at_offset.insert((partition, offset), held);
        self.placed.insert(id.to_string(), (partition, offset));
    }

    /// A consumer got `held` from `partition:offset`, and a committed observation contradicts
    /// it: the consumer read above the commit point. The offset is forgotten, so the committed
    /// message can take it.
    fn uncommitted_read(&mut self, partition: u32, offset: u64, held: &Held, instead: String) {
        self.violation(
            Invariant::UncommittedRead,
            format!(
                "{} was delivered from {partition}:{offset} at {:?}, but {instead}",
                held.id, held.seen
            ),
        );
        self.at_offset.remove(&(partition, offset));
        if self.placed.get(&held.id) == Some(&(partition, offset)) {
            self.placed.remove(&held.id);
        }
    }

    pub(super) fn log_read(
        &mut self,
        node: u32,
        began: Duration,
        ends: &BTreeMap<u32, u64>,
        entries: &[LogEntry],
    ) {
        let end = |partition: u32| ends.get(&partition).copied().unwrap_or(u64::MAX);
        let committed: Vec<&LogEntry> = entries
            .iter()
            .filter(|e| e.offset < end(e.partition))
            .collect();
        let diverged = self.compare_with_other_nodes(node, ends, &committed);
        let by_offset: HashMap<(u32, u64), &LogEntry> = committed
            .iter()
            .map(|e| ((e.partition, e.offset), *e))
            .collect();
        // Everything acknowledged or seen below this read's ends before it began is still there.
        let mut expected: Vec<((u32, u64), Held)> = self
            .at_offset
            .iter()
            .filter(|&(&(p, o), held)| held.seen <= began && o < end(p))
            .filter(|(at, _)| !diverged.contains(*at))
            .map(|(&at, held)| (at, held.clone()))
            .collect();
        expected.sort_by_key(|(at, _)| *at);
        for ((partition, offset), held) in expected {
            let found = by_offset.get(&(partition, offset));
            match found {
                Some(entry) if entry.id == held.id => {}
                _ if !held.committed => {
                    let instead = found.map_or_else(
                        || format!("a full read of node {node} does not hold it"),
                        |e| format!("node {node} holds {} there", e.id),
                    );
                    self.uncommitted_read(partition, offset, &held, instead);
                }
                None => {
                    let how = match self.acked.get(&held.id) {
                        Some((at, _, _)) => format!("acknowledged at {at:?}"),
                        None => "seen earlier".into(),
                    };
                    self.violation(
                        Invariant::AckedMessageLost,
                        format!(
                            "{} at {partition}:{offset} ({how}) is missing on node {node}",
                            held.id
                        ),
                    );
                }
                Some(entry) => self.violation(
                    Invariant::DuplicateOffset,
                    format!(
                        "{partition}:{offset} held {}, now holds {} on node {node}",
                        held.id, entry.id
                    ),
                ),
            }
        }
        for entry in &committed {
            if diverged.contains(&(entry.partition, entry.offset)) {
                continue;
            }
            if self.known(&entry.id, "read") {
                self.place(entry.partition, entry.offset, &entry.id, "a log read", true);
                self.check_appended_after_due(entry, None);
            }
        }
        self.counts.stored = committed.len();
        self.last_read = Some(committed.iter().map(|e| (*e).clone()).collect());
        let ids = by_offset
            .into_iter()
            .map(|(at, e)| (at, e.id.clone()))
            .collect();
        let read = NodeRead {
            ends: ends.clone(),
            ids,
        };
        self.node_reads.insert(node, read);
    }

    /// Reports every offset below both ends where `node`'s read and another node's last read
    /// hold different messages, and returns them (the other checks skip them: one disagreement
    /// is one violation).
    fn compare_with_other_nodes(
        &mut self,
        node: u32,
        ends: &BTreeMap<u32, u64>,
        committed: &[&LogEntry],
    ) -> HashSet<(u32, u64)> {
        let mut diverged = HashSet::new();
        let mut found = Vec::new();
        for (&other, theirs) in self.node_reads.iter().filter(|(n, _)| **n != node) {
            for entry in committed {
                let at = (entry.partition, entry.offset);
                let their_end = theirs
                    .ends
                    .get(&entry.partition)
                    .copied()
                    .unwrap_or(u64::MAX);
                match theirs.ids.get(&at) {
                    Some(id) if entry.offset < their_end && *id != entry.id => {
                        found.push(format!(
                            "{}:{} holds {} on node {node} (end {}) and {id} on node {other} \
                             (end {their_end})",
                            entry.partition,
                            entry.offset,
                            entry.id,
                            ends.get(&entry.partition).copied().unwrap_or(u64::MAX)
                        ));
                        diverged.insert(at);
                    }
                    _ => {}
                }
            }
        }
        for detail in found {
            self.violation(Invariant::ReplicaDiverged, detail);
        }
        diverged
    }
}
