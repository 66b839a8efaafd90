//! Engine calls for adapters without a long-lived consumer connection (REST): settling queue
//! deliveries by receipt. A receipt names a delivery, not a session, so an ack may arrive on any
//! request; it takes effect exactly as it would on the Consume stream that received it. And,
//! in cluster mode, which node serves what a REST request needs (`crate::rest::relay`).

use rapidmq_proto::ErrorCode;

use super::queue::{Settle, mono_now_ms};
use super::queue_session::{check_extension, check_nack_delay};
use super::{Engine, ReceiptRef};
use crate::auth::{Action, Resource};
use crate::error::{Error, Result};
use crate::principal::Principal;

/// What to do with the deliveries named by receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Settlement {
    Ack,
    /// Redeliver after `delay_ms` (or dead-letter on the last allowed attempt).
    Nack {
        delay_ms: u64,
    },
    /// Push the ack deadline out to now + `extend_ms`.
    Extend {
        extend_ms: u64,
    },
}

impl Engine {
    /// Acks, nacks or extends deliveries of a queue subscription. Returns how many receipts
    /// named no delivery in flight (already settled, redelivered, or foreign); the others are
    /// settled all the same.
    pub async fn settle(
        &self,
        principal: &Principal,
        topic: &str,
        subscription: &str,
        receipts: &[ReceiptRef],
        how: Settlement,
    ) -> Result<usize> {
        let resource = Resource::Subscription {
            topic,
            name: subscription,
        };
        self.authorize(principal, Action::Consume, resource)?;
        let live = self.topic(principal, topic)?;
        let sub = self.subscription(&live, subscription)?;
        let Some(queue) = &sub.queue else {
            return Err(Error::new(
                ErrorCode::SubscriptionModeMismatch,
                format!(
                    "`{subscription}` is a stream subscription: commit offsets instead of settling receipts"
                ),
            ));
        };
        match how {
            Settlement::Ack => {}
            Settlement::Nack { delay_ms } => check_nack_delay(self, delay_ms)?,
            Settlement::Extend { extend_ms } => check_extension(self, extend_ms)?,
        }
        let max_deliveries = queue.settings.max_deliveries;
        let mut unknown = 0;
        let mut dead_letters = Vec::new();
        for r in receipts {
            let Some(partition) = queue.partitions.get(r.partition as usize) else {
                unknown += 1;
                continue;
            };
            let outcome = {
                let mut q = partition.lock();
                match how {
                    Settlement::Ack => q.ack(r.offset, r.delivery_id),
                    Settlement::Nack { delay_ms } => q.nack(
                        r.offset,
                        r.delivery_id,
                        mono_now_ms(),
                        delay_ms,
                        max_deliveries,
                    ),
                    Settlement::Extend { extend_ms } => {
                        q.extend(r.offset, r.delivery_id, mono_now_ms(), extend_ms)
                    }
                }
            };
            match outcome {
                Settle::Done => {}
                Settle::Unknown => unknown += 1,
                Settle::DeadLetter(letter) => {
                    dead_letters.extend(self.spawn_dead_letter(&live, &sub, r.partition, letter))
                }
            }
        }
        // Answer once the dead letters are stored; a dropped request does not cancel them.
        for task in dead_letters {
            let _ = task.await;
        }
        if matches!(how, Settlement::Nack { .. }) {
            queue.changed.notify_waiters();
        }
        Ok(unknown)
    }

    /// Cluster mode: the other nodes that lead partitions of `topic` as this node knows them,
    /// each once, in id order. Empty for a topic whose partitions are not replicated.
    pub fn other_leaders(&self, principal: &Principal, topic: &str) -> Result<Vec<u64>> {
        let live = self.topic(principal, topic)?;
        let me = self.config.cluster.node_id;
        let mut leaders: Vec<u64> = live
            .partitions
            .iter()
            .filter(|p| p.replicated() && !p.leads_with_lease())
            .filter_map(|p| p.leader())
            .filter(|&leader| leader != me)
            .collect();
        leaders.sort_unstable();
        leaders.dedup();
        Ok(leaders)
    }

    /// Cluster mode: the node that leads `partition` of `topic`, where that is not this node.
    /// `None` where this node leads it, the topic is not replicated, or there is no such
    /// partition (this node then answers for it); `UNAVAILABLE` when this node knows no leader.
    pub fn leader_elsewhere(
        &self,
        principal: &Principal,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>> {
        let live = self.topic(principal, topic)?;
        let Some(p) = live.partitions.get(partition as usize) else {
            return Ok(None);
        };
        if !p.replicated() || p.leads_with_lease() {
            return Ok(None);
        }
        match p.leader() {
            Some(leader) if leader == self.config.cluster.node_id => Ok(None),
            Some(leader) => Ok(Some(leader)),
            None => Err(Error::unavailable(format!(
                "partition {partition} of topic `{topic}` has no leader now; retry"
            ))),
        }
    }

    /// Cluster mode: the node that coordinates stream subscription `name` of `topic`
    /// ([`Engine::stream_coordinator`]), where that is not this node. `None` where this node
    /// coordinates it or the topic is not replicated; `UNAVAILABLE` when the coordinating
    /// partition has no leader this node knows.
    pub fn coordinator_elsewhere(
        &self,
        principal: &Principal,
        topic: &str,
        name: &str,
    ) -> Result<Option<u64>> {
        match self.coordinating_partition(principal, topic, name)? {
            Some((_, index)) => self.leader_elsewhere(principal, topic, index),
            None => Ok(None),
        }
    }
}
