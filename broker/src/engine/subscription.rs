//! Stream subscriptions: the durable record, committed offsets, and the live group of members
//! that share the topic's partitions.
//!
//! Assignment is deterministic: members are kept in join order and member `i` of `n` owns the
//! partitions `p` with `p % n == i`. Every join or leave bumps the generation and pushes each
//! member its new partition set through a watch channel, so a member's session sees the newest
//! assignment without polling. A new owner resumes from the committed offset, so nothing is lost
//! (delivery is at-least-once across rebalances).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use super::queue::{QueueCounters, QueuePartition};
use crate::clock::{Clock, SystemClock};

/// How a subscription hands out messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionMode {
    #[default]
    Stream,
    Queue,
}

/// Settings of a queue-mode subscription, all resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSettings {
    pub ack_deadline_ms: u64,
    pub max_deliveries: u32,
    pub dead_letter_topic: String,
}

/// The durable description of a subscription (metadata column family, JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub name: String,
    pub mode: SubscriptionMode,
    pub created_at_ms: i64,
    /// Set for queue mode.
    #[serde(default)]
    pub queue: Option<QueueSettings>,
}

/// The live state of a queue-mode subscription.
pub struct QueueRuntime {
    pub settings: QueueSettings,
    pub partitions: Vec<Mutex<QueuePartition>>,
    /// Woken when messages may have become available (nack, a member left, dead letter failed).
    pub changed: Notify,
    next_member: AtomicU64,
    members: Mutex<Vec<(u64, String)>>,
}

impl QueueRuntime {
    pub fn new(settings: QueueSettings, partitions: Vec<QueuePartition>) -> QueueRuntime {
        QueueRuntime {
            settings,
            partitions: partitions.into_iter().map(Mutex::new).collect(),
            changed: Notify::new(),
            next_member: AtomicU64::new(1),
            members: Mutex::new(Vec::new()),
        }
    }

    /// A delivery id no other delivery of this broker process has, and none from before a
    /// restart: one counter for every queue subscription, started from the clock. (Per
    /// subscription counters seeded from the clock gave two subscriptions created in the same
    /// millisecond the same ids, so one's receipt could ack the other's delivery.)
    pub fn next_delivery_id(&self) -> u64 {
        static NEXT: LazyLock<AtomicU64> =
            LazyLock::new(|| AtomicU64::new((SystemClock.now_ms() as u64) << 16));
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    pub fn join(&self, name: &str) -> u64 {
        let id = self.next_member.fetch_add(1, Ordering::Relaxed);
        self.members.lock().push((id, name.to_string()));
        id
    }

    /// Removes a member and makes its in-flight messages available again.
    pub fn leave(&self, member: u64) {
        self.members.lock().retain(|(id, _)| *id != member);
        let mut released = false;
        for partition in &self.partitions {
            released |= partition.lock().release_member(member);
        }
        if released {
            self.changed.notify_waiters();
        }
    }

    pub fn member_list(&self) -> Vec<(u64, String)> {
        self.members.lock().clone()
    }

    pub fn counters(&self) -> (u64, QueueCounters) {
        let mut total = QueueCounters::default();
        let mut in_flight = 0;
        for partition in &self.partitions {
            let q = partition.lock();
            in_flight += q.in_flight() as u64;
            total.redeliveries += q.counters.redeliveries;
            total.dead_lettered += q.counters.dead_lettered;
            total.expired += q.counters.expired;
        }
        (in_flight, total)
    }
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
    /// Queue mode only.
    pub queue: Option<QueueRuntime>,
    closed: watch::Sender<bool>,
}

impl Subscription {
    pub fn new(record: SubscriptionRecord, topic_id: u32, cursors: Vec<u64>) -> Subscription {
        let queue = record.queue.clone().map(|settings| {
            QueueRuntime::new(
                settings,
                cursors
                    .iter()
                    .map(|&floor| QueuePartition::new(floor))
                    .collect(),
            )
        });
        Subscription::with_queue(record, topic_id, cursors, queue)
    }

    pub fn with_queue(
        record: SubscriptionRecord,
        topic_id: u32,
        cursors: Vec<u64>,
        queue: Option<QueueRuntime>,
    ) -> Subscription {
        let (closed, _) = watch::channel(false);
        Subscription {
            record,
            topic_id,
            cursors: cursors.into_iter().map(AtomicU64::new).collect(),
            group: Mutex::new(Group::default()),
            queue,
            closed,
        }
    }

    /// Fires once the subscription is closed (deleted, or its topic is).
    pub fn watch_closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
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

    /// What a subscription reports as `partition`'s committed offset: the cursor of a stream
    /// subscription, the floor (lowest offset not settled) of a queue one.
    pub fn committed_or_floor(&self, partition: u32) -> u64 {
        match &self.queue {
            Some(queue) => queue
                .partitions
                .get(partition as usize)
                .map_or(0, |state| state.lock().floor()),
            None => self.committed(partition),
        }
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
            target: "rapidmq::health",
            event = "rebalance",
            subscription = %self.record.name,
            members = n,
            generation,
            "subscription rebalanced"
        );
    }

    /// Rebalances since the broker started (the group's generation).
    pub fn rebalances(&self) -> u64 {
        self.group.lock().generation
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
        if let Some(queue) = &self.queue {
            return queue
                .member_list()
                .into_iter()
                .map(|(id, name)| MemberStatus {
                    member_id: format!("{}-{id}", self.record.name),
                    consumer_name: name,
                    partitions: (0..self.partitions()).collect(),
                })
                .collect();
        }
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
        self.closed.send_replace(true);
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

    #[test]
    fn two_queue_subscriptions_never_share_a_delivery_id() {
        // Created in the same millisecond, as two subscriptions of one test often are.
        let settings = QueueSettings {
            ack_deadline_ms: 30_000,
            max_deliveries: 5,
            dead_letter_topic: "q.dlq".into(),
        };
        let a = QueueRuntime::new(settings.clone(), Vec::new());
        let b = QueueRuntime::new(settings, Vec::new());
        let ids_a: Vec<u64> = (0..100).map(|_| a.next_delivery_id()).collect();
        let ids_b: Vec<u64> = (0..100).map(|_| b.next_delivery_id()).collect();
        assert!(ids_a.iter().all(|id| !ids_b.contains(id)));
    }

    fn subscription(partitions: usize) -> Arc<Subscription> {
        let record = SubscriptionRecord {
            name: "s".into(),
            mode: SubscriptionMode::Stream,
            created_at_ms: 0,
            queue: None,
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
