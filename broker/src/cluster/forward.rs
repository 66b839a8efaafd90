//! Publishes a node hands to a partition's leader as their producer sent them
//! (`Cluster.Publish`; docs/clustering.md "msg-id dedup").
//!
//! A topic with a dedup window drops a message whose `msg-id` it accepted within the window.
//! The check needs every id the group accepted and the ids its appends in flight reserved,
//! and only the leader has both: a follower applies an accepted id a moment after the leader,
//! and a node that holds no replica has none. So a node that does not lead the partition sends
//! such a publish to the leader unprepared, where the engine publishes it as if the producer
//! had sent it there ([`Engine::begin_forwarded_publish`](crate::engine::Engine::begin_forwarded_publish)).
//!
//! **Order.** A partition's forwarded publishes queue on one task, which sends what is queued
//! in one RPC at a time; the leader queues them on the partition in that order before it waits
//! for any. Before each RPC the task waits until the partition's writer has passed on what this
//! node queued before (a barrier on the writer's queue), and the engine keeps sending the
//! partition's publishes here while any is unanswered ([`Forwarder::busy`]), so an idempotent
//! producer's batches are not reordered when the leadership moves to or from this node.
//!
//! **Failures.** An RPC that fails is sent again, to the leader known then, until
//! [`PROPOSAL_TIMEOUT`] passed: the leader's dedup check drops a message it already took, and
//! an idempotent producer's batch is answered as a duplicate. If this node leads by then, it
//! publishes them itself.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::network::RPC_TIMEOUT;
use super::partition_writer::{
    Op, PROPOSAL_TIMEOUT, PartitionRaft, RETRY, Route, closing, next_target,
};
use super::rpc::Rpc;
use crate::engine::{ForwardedAnswer, ForwardedPublish, PublishAck};
use crate::error::{Error, Result};

/// Publishes sent in one RPC at most, by count and by batch bytes.
const MAX_PUBLISHES: usize = 256;
const MAX_BYTES: usize = 8 << 20;

/// A publish waiting to be forwarded, and who waits for its answer.
struct Queued {
    publish: ForwardedPublish,
    reply: oneshot::Sender<Result<PublishAck>>,
}

/// The forwarding queue of one partition.
pub struct Forwarder {
    tx: mpsc::Sender<Queued>,
    /// Publishes queued and not yet answered by the leader (or queued on this node's writer,
    /// where this node leads).
    unanswered: Arc<AtomicUsize>,
}

impl Forwarder {
    /// Starts the task that forwards `route`'s publishes; `writer` is the partition writer's
    /// queue (for the barrier), `raft` the group's raft where this node is a replica.
    pub fn spawn(
        route: Route,
        raft: Arc<OnceLock<PartitionRaft>>,
        writer: mpsc::Sender<Op>,
    ) -> Forwarder {
        let (tx, rx) = mpsc::channel(MAX_PUBLISHES);
        let unanswered = Arc::new(AtomicUsize::new(0));
        let task = Task {
            route,
            raft,
            writer,
            unanswered: Arc::clone(&unanswered),
        };
        tokio::spawn(task.run(rx));
        Forwarder { tx, unanswered }
    }

    /// Whether a publish queued here is still unanswered.
    pub fn busy(&self) -> bool {
        self.unanswered.load(Ordering::Acquire) > 0
    }

    /// Queues `publish`; the receiver resolves with the leader's answer.
    pub async fn queue(
        &self,
        publish: ForwardedPublish,
    ) -> Result<oneshot::Receiver<Result<PublishAck>>> {
        let (reply, rx) = oneshot::channel();
        self.unanswered.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(Queued { publish, reply }).await.is_err() {
            self.unanswered.fetch_sub(1, Ordering::AcqRel);
            return Err(closing());
        }
        Ok(rx)
    }
}

struct Task {
    route: Route,
    raft: Arc<OnceLock<PartitionRaft>>,
    writer: mpsc::Sender<Op>,
    unanswered: Arc<AtomicUsize>,
}

impl Task {
    async fn run(self, mut rx: mpsc::Receiver<Queued>) {
        while let Some(first) = rx.recv().await {
            let mut bytes = first.publish.params.batch.len();
            let mut queued = vec![first];
            while queued.len() < MAX_PUBLISHES && bytes < MAX_BYTES {
                match rx.try_recv() {
                    Ok(next) => {
                        bytes += next.publish.params.batch.len();
                        queued.push(next);
                    }
                    Err(_) => break,
                }
            }
            let count = queued.len();
            self.forward(queued).await;
            self.unanswered.fetch_sub(count, Ordering::AcqRel);
        }
    }

    /// Sends `queued` to the leader (or publishes them here, where this node leads) and
    /// answers each, within [`PROPOSAL_TIMEOUT`].
    async fn forward(&self, queued: Vec<Queued>) {
        // What this node queued on the partition's writer before these goes first.
        let (done, barrier) = oneshot::channel();
        if self.writer.send(Op::Barrier(done)).await.is_err() || barrier.await.is_err() {
            return fail(queued, &closing());
        }
        let deadline = Instant::now() + PROPOSAL_TIMEOUT;
        let mut tried = 0usize;
        let mut last_error = String::from("no leader");
        loop {
            if Instant::now() >= deadline {
                let err = Error::unavailable(format!(
                    "{} has no reachable leader after {PROPOSAL_TIMEOUT:?}: {last_error}",
                    self.route.name()
                ));
                return fail(queued, &err);
            }
            let Some(target) = next_target(self.raft.get(), &self.route, tried, deadline).await
            else {
                continue;
            };
            tried += 1;
            if target == self.route.me {
                return self.publish_here(queued).await;
            }
            match self.call(target, &queued).await {
                Ok(answers) => {
                    for (queued, answer) in queued.into_iter().zip(answers) {
                        let _ = queued.reply.send(answer.into());
                    }
                    return;
                }
                Err(err) => last_error = err,
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    /// This node leads: the engine publishes `queued` here, in order.
    async fn publish_here(&self, queued: Vec<Queued>) {
        let Some(engine) = self.route.publisher.engine() else {
            return fail(queued, &Error::unavailable("the broker is stopping"));
        };
        for Queued { publish, reply } in queued {
            match engine.begin_forwarded_publish(publish).await {
                Ok(ack) => {
                    tokio::spawn(async move {
                        let _ = reply.send(ack.await);
                    });
                }
                Err(err) => {
                    let _ = reply.send(Err(err));
                }
            }
        }
    }

    /// `queued` in one `Cluster.Publish` to `leader`: its answer for each.
    async fn call(
        &self,
        leader: u64,
        queued: &[Queued],
    ) -> std::result::Result<Vec<ForwardedAnswer>, String> {
        let publishes: Vec<&ForwardedPublish> = queued.iter().map(|q| &q.publish).collect();
        // The leader answers once its appends committed, or failed after its own deadline.
        let timeout = PROPOSAL_TIMEOUT + RPC_TIMEOUT;
        let answers: Vec<ForwardedAnswer> = (self.route)
            .call(leader, "publishing on", timeout, Rpc::Publish, &publishes)
            .await?;
        if answers.len() != queued.len() {
            return Err(format!(
                "node {leader} answered {} of {} publishes",
                answers.len(),
                queued.len()
            ));
        }
        Ok(answers)
    }
}

fn fail(queued: Vec<Queued>, err: &Error) {
    for queued in queued {
        let _ = queued.reply.send(Err(err.clone()));
    }
}
