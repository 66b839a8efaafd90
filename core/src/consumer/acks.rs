//! Ack tracking for stream mode: turns per-message acks into commit positions.
//!
//! An ack of offset `o` on partition `p` lets the commit position move to `o + 1` once every
//! message polled before it on `p` is acked too (acks may arrive in any order). Only messages
//! handed to the application are tracked, so the memory held is bounded by what is polled and
//! not yet acked.

use std::collections::{HashMap, VecDeque};

use rapidmq_proto::v1::PartitionOffset;

#[derive(Debug, Default)]
struct PartitionAcks {
    /// Polled offsets not yet committable, in increasing order: `true` once acked. Messages of
    /// a partition are polled in offset order, so a poll appends and an ack finds its entry by
    /// binary search.
    pending: VecDeque<(u64, bool)>,
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
                pending: VecDeque::new(),
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
            match acks.pending.back() {
                None => acks.pending.push_back((offset, false)),
                Some(&(last, _)) if last < offset => acks.pending.push_back((offset, false)),
                // Not after the last one (not expected: a partition is polled in order).
                Some(_) => {
                    if let Err(at) = acks.pending.binary_search_by_key(&offset, |e| e.0) {
                        acks.pending.insert(at, (offset, false));
                    }
                }
            }
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

    /// Whether the message was polled (in this session, while its partition is owned) and is
    /// not acknowledged yet.
    pub(crate) fn is_pending(&self, partition: u32, offset: u64) -> bool {
        self.partitions.get(&partition).is_some_and(|acks| {
            acks.pending
                .binary_search_by_key(&offset, |e| e.0)
                .is_ok_and(|at| !acks.pending[at].1)
        })
    }

    /// The application acknowledged a message; returns whether it was tracked.
    pub(crate) fn ack(&mut self, partition: u32, offset: u64) -> bool {
        let Some(acks) = self.partitions.get_mut(&partition) else {
            return false;
        };
        let Ok(at) = acks.pending.binary_search_by_key(&offset, |e| e.0) else {
            return false;
        };
        acks.pending[at].1 = true;
        while let Some(&(offset, true)) = acks.pending.front() {
            acks.position = offset + 1;
            acks.pending.pop_front();
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
    fn a_message_polled_out_of_order_still_holds_the_position_until_acked() {
        let mut t = AckTracker::default();
        t.assign(0, 0);
        t.polled(0, 5);
        t.polled(0, 3);
        t.polled(0, 5); // twice: tracked once
        assert!(t.ack(0, 5));
        assert!(t.take_commits().is_empty(), "3 is not acked yet");
        assert!(t.ack(0, 3));
        assert_eq!(
            t.take_commits(),
            vec![PartitionOffset {
                partition: 0,
                offset: 6
            }]
        );
        assert!(!t.ack(0, 4), "4 was never polled");
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
