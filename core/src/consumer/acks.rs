//! Ack tracking for stream mode: turns per-message acks into commit positions.
//!
//! An ack of offset `o` on partition `p` lets the commit position move to `o + 1` once every
//! message polled before it on `p` is acked too (acks may arrive in any order). Only messages
//! handed to the application are tracked, so the memory held is bounded by what is polled and
//! not yet acked.

use std::collections::{BTreeMap, HashMap};

use rapidmq_proto::v1::PartitionOffset;

#[derive(Debug, Default)]
struct PartitionAcks {
    /// Polled offsets not yet committable: `true` once acked.
    pending: BTreeMap<u64, bool>,
    /// The next offset to consume as far as commits go.
    position: u64,
    /// The last position sent to the broker.
    sent: u64,
}

/// Ack state of the owned partitions.
#[derive(Debug, Default)]
pub(crate) struct AckTracker {
    partitions: HashMap<u32, PartitionAcks>,
}

impl AckTracker {
    /// Starts tracking `partition` at `offset` (a new assignment); earlier state is dropped.
    pub(crate) fn assign(&mut self, partition: u32, offset: u64) {
        self.partitions.insert(
            partition,
            PartitionAcks {
                pending: BTreeMap::new(),
                position: offset,
                sent: offset,
            },
        );
    }

    /// Stops tracking every partition not in `keep`.
    pub(crate) fn retain(&mut self, keep: impl Fn(u32) -> bool) {
        self.partitions.retain(|p, _| keep(*p));
    }

    pub(crate) fn owns(&self, partition: u32) -> bool {
        self.partitions.contains_key(&partition)
    }

    /// Drops everything (the session ended).
    pub(crate) fn clear(&mut self) {
        self.partitions.clear();
    }

    /// A message was handed to the application.
    pub(crate) fn polled(&mut self, partition: u32, offset: u64) {
        if let Some(acks) = self.partitions.get_mut(&partition)
            && offset >= acks.position
        {
            acks.pending.insert(offset, false);
        }
    }

    /// A message was handed to the application and acknowledged at once (auto-commit): the same
    /// as [`AckTracker::polled`] then [`AckTracker::ack`], without tracking it when every
    /// earlier message of its partition is acknowledged already.
    pub(crate) fn polled_acked(&mut self, partition: u32, offset: u64) {
        if let Some(acks) = self.partitions.get_mut(&partition)
            && acks.pending.is_empty()
        {
            acks.position = acks.position.max(offset + 1);
            return;
        }
        self.polled(partition, offset);
        self.ack(partition, offset);
    }

    /// The application acknowledged a message; returns whether it was tracked.
    pub(crate) fn ack(&mut self, partition: u32, offset: u64) -> bool {
        let Some(acks) = self.partitions.get_mut(&partition) else {
            return false;
        };
        let Some(flag) = acks.pending.get_mut(&offset) else {
            return false;
        };
        *flag = true;
        while let Some(entry) = acks.pending.first_entry() {
            if !*entry.get() {
                break;
            }
            acks.position = *entry.key() + 1;
            entry.remove();
        }
        true
    }

    /// Positions that moved since they were last taken.
    pub(crate) fn take_commits(&mut self) -> Vec<PartitionOffset> {
        let mut commits: Vec<_> = self
            .partitions
            .iter_mut()
            .filter(|(_, acks)| acks.position > acks.sent)
            .map(|(&partition, acks)| {
                acks.sent = acks.position;
                PartitionOffset {
                    partition,
                    offset: acks.position,
                }
            })
            .collect();
        commits.sort_by_key(|c| c.partition);
        commits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_acks_commit_only_the_contiguous_prefix() {
        let mut acks = AckTracker::default();
        acks.assign(0, 10);
        for o in 10..15 {
            acks.polled(0, o);
        }
        assert!(acks.ack(0, 11));
        assert!(acks.take_commits().is_empty());
        acks.ack(0, 10);
        assert_eq!(
            acks.take_commits(),
            [PartitionOffset {
                partition: 0,
                offset: 12
            }]
        );
        acks.ack(0, 14);
        acks.ack(0, 13);
        acks.ack(0, 12);
        assert_eq!(acks.take_commits()[0].offset, 15);
        assert!(acks.take_commits().is_empty(), "nothing moved since");
    }

    #[test]
    fn auto_acked_messages_move_the_position_as_polled_then_acked_ones_do() {
        let mut fast = AckTracker::default();
        let mut slow = AckTracker::default();
        for acks in [&mut fast, &mut slow] {
            acks.assign(0, 10);
            acks.assign(1, 0);
        }
        // Offsets with a gap (a compacted or scheduled message), one below the position, and
        // one behind a message polled but not acked yet.
        for (partition, offset) in [(0, 10), (0, 12), (0, 5), (1, 0)] {
            fast.polled_acked(partition, offset);
            slow.polled(partition, offset);
            slow.ack(partition, offset);
        }
        assert_eq!(fast.take_commits(), slow.take_commits());
        for acks in [&mut fast, &mut slow] {
            acks.polled(0, 13);
        }
        fast.polled_acked(0, 14);
        slow.polled(0, 14);
        slow.ack(0, 14);
        assert!(fast.take_commits().is_empty() && slow.take_commits().is_empty());
        assert!(fast.ack(0, 13) && slow.ack(0, 13));
        let commits = fast.take_commits();
        assert_eq!(commits, slow.take_commits());
        assert_eq!(commits[0].offset, 15);
        fast.polled_acked(7, 1);
        assert!(
            fast.take_commits().is_empty(),
            "a partition not owned is not tracked"
        );
    }

    #[test]
    fn acks_of_revoked_or_unknown_messages_are_ignored() {
        let mut acks = AckTracker::default();
        acks.assign(1, 0);
        acks.polled(1, 0);
        acks.retain(|p| p != 1);
        assert!(!acks.ack(1, 0));
        assert!(!acks.ack(2, 0));
        assert!(acks.take_commits().is_empty());
    }
}
