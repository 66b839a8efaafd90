//! Stream subscriptions: the durable record, committed offsets, and the live group of members
//! that share the topic's partitions.
//!
//! Assignment is deterministic: members are kept in join order and member `i` of `n` owns the
//! partitions `p` with `p % n == i`. Every join or leave bumps the generation and pushes each
//! member its new partition set through a watch channel, so a member's session sees the newest
//! assignment without polling. A new owner resumes from the committed offset, so nothing is lost
//! (delivery is at-least-once across rebalances).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// How a subscription hands out messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionMode {
    #[default]
    Stream,
}

/// The durable description of a subscription (metadata column family, JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub name: String,
    pub mode: SubscriptionMode,
    pub created_at_ms: i64,
}

/// The partitions one member owns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    pub generation: u64,
    pub partitions: Vec<u32>,
    /// Set by a seek: resume every partition from its committed offset, not just new ones.
    pub reset: bool,
}

/// A live member as shown by describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    pub member_id: String,
    pub consumer_name: String,
    pub partitions: Vec<u32>,
}

struct Member {
    id: String,
    name: String,
    partitions: Vec<u32>,
    tx: watch::Sender<Arc<Assignment>>,
}

#[derive(Default)]
struct Group {
    generation: u64,
    next_member: u64,
    members: Vec<Member>,
    closed: bool,
}

/// A live subscription.
pub struct Subscription {
    pub record: SubscriptionRecord,
    pub topic_id: u32,
    cursors: Vec<AtomicU64>,
    group: Mutex<Group>,
}

impl Subscription {
    pub fn new(record: SubscriptionRecord, topic_id: u32, cursors: Vec<u64>) -> Subscription {
        Subscription {
            record,
            topic_id,
            cursors: cursors.into_iter().map(AtomicU64::new).collect(),
            group: Mutex::new(Group::default()),
        }
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }

    pub fn partitions(&self) -> u32 {
        self.cursors.len() as u32
    }

    /// The committed offset (next offset to consume) of `partition`.
    pub fn committed(&self, partition: u32) -> u64 {
        self.cursors
            .get(partition as usize)
            .map_or(0, |c| c.load(Ordering::Acquire))
    }

    /// Records a commit that has been made durable.
    pub fn set_committed(&self, partition: u32, offset: u64) {
        if let Some(cursor) = self.cursors.get(partition as usize) {
            cursor.store(offset, Ordering::Release);
        }
    }

    /// Adds a member and rebalances. The handle leaves the group when dropped.
    pub fn join(self: &Arc<Self>, consumer_name: &str) -> MemberHandle {
        let mut group = self.group.lock();
        group.next_member += 1;
        let id = format!("{}-{}", self.record.name, group.next_member);
        let (tx, rx) = watch::channel(Arc::new(Assignment::default()));
        group.members.push(Member {
            id: id.clone(),
            name: consumer_name.to_string(),
            partitions: Vec::new(),
            tx,
        });
        self.rebalance(&mut group, false);
        if group.closed {
            // Joined a subscription being deleted: end the member's session at once.
            group.members.retain(|m| m.id != id);
        }
        MemberHandle {
            subscription: self.clone(),
            id,
            rx,
        }
    }

    fn leave(&self, member_id: &str) {
        let mut group = self.group.lock();
        let before = group.members.len();
        group.members.retain(|m| m.id != member_id);
        if group.members.len() != before {
            self.rebalance(&mut group, false);
        }
    }

    /// Makes every member resume from the committed offsets (after a seek).
    pub fn reset_members(&self) {
        let mut group = self.group.lock();
        self.rebalance(&mut group, true);
    }

    fn rebalance(&self, group: &mut Group, reset: bool) {
        group.generation += 1;
        let n = group.members.len() as u32;
        let generation = group.generation;
        for (i, member) in group.members.iter_mut().enumerate() {
            member.partitions = (0..self.partitions())
                .filter(|p| p % n == i as u32)
                .collect();
            member.tx.send_replace(Arc::new(Assignment {
                generation,
                partitions: member.partitions.clone(),
                reset,
            }));
        }
        tracing::info!(
            subscription = %self.record.name,
            members = n,
            generation,
            "subscription rebalanced"
        );
    }

    /// Whether `member_id` currently owns `partition`.
    pub fn owns(&self, member_id: &str, partition: u32) -> bool {
        self.group
            .lock()
            .members
            .iter()
            .any(|m| m.id == member_id && m.partitions.contains(&partition))
    }

    pub fn members(&self) -> Vec<MemberStatus> {
        self.group
            .lock()
            .members
            .iter()
            .map(|m| MemberStatus {
                member_id: m.id.clone(),
                consumer_name: m.name.clone(),
                partitions: m.partitions.clone(),
            })
            .collect()
    }

    /// Ends every member's session (the subscription or its topic is being deleted).
    pub fn close(&self) {
        let mut group = self.group.lock();
        group.closed = true;
        group.members.clear();
    }
}

/// A member's place in the group.
pub struct MemberHandle {
    subscription: Arc<Subscription>,
    id: String,
    rx: watch::Receiver<Arc<Assignment>>,
}

impl MemberHandle {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn subscription(&self) -> &Arc<Subscription> {
        &self.subscription
    }

    /// Receives every new assignment; errors once the subscription is closed.
    pub fn assignments(&mut self) -> &mut watch::Receiver<Arc<Assignment>> {
        &mut self.rx
    }
}

impl Drop for MemberHandle {
    fn drop(&mut self) {
        self.subscription.leave(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(partitions: usize) -> Arc<Subscription> {
        let record = SubscriptionRecord {
            name: "s".into(),
            mode: SubscriptionMode::Stream,
            created_at_ms: 0,
        };
        Arc::new(Subscription::new(record, 1, vec![0; partitions]))
    }

    #[test]
    fn members_split_partitions_and_take_over_on_leave() {
        let sub = subscription(4);
        let mut a = sub.join("a");
        assert_eq!(
            a.assignments().borrow_and_update().partitions,
            vec![0, 1, 2, 3]
        );
        let mut b = sub.join("b");
        assert_eq!(a.assignments().borrow_and_update().partitions, vec![0, 2]);
        assert_eq!(b.assignments().borrow_and_update().partitions, vec![1, 3]);
        assert!(sub.owns(b.id(), 3) && !sub.owns(a.id(), 3));
        drop(a);
        assert!(b.assignments().has_changed().unwrap());
        let assignment = b.assignments().borrow_and_update().clone();
        assert_eq!(assignment.partitions, vec![0, 1, 2, 3]);
        assert_eq!(assignment.generation, 3);
    }

    #[test]
    fn closing_ends_every_member() {
        let sub = subscription(2);
        let mut a = sub.join("a");
        sub.close();
        assert!(a.assignments().has_changed().is_err());
        let mut late = sub.join("late");
        assert!(late.assignments().has_changed().is_err());
    }
}
