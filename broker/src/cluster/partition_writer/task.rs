//! The writer task of a partition ([`super::GroupWriter`]): it takes what the engine queued in
//! order, proposes it where this node leads the group and forwards it to the leader elsewhere,
//! and answers each request once its entry applied.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::ClientWriteError;
use openraft::impls::ProgressResponder;
use openraft::raft::ClientWriteResponse;
use rapidmq_proto::ErrorCode;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{FORWARDED_APPENDS, Op, PROPOSAL_TIMEOUT, PartitionRaft, RETRY, Route};
use crate::clock::Clock;
use crate::cluster::network::RPC_TIMEOUT;
use crate::cluster::partition_group::{
    AppendCommand, PartitionCommand, PartitionConfig, PartitionReply,
};
use crate::cluster::rpc::Rpc;
use crate::cluster::{decode, encode};
use crate::engine::{AppendAck, AppendRequest, CommitHook, PartitionShared};
use crate::error::{Error, Result};

/// Entries proposed or forwarded together at most.
const MAX_BATCH: usize = 256;

/// Who waits for an entry's reply.
pub(super) enum Waiter {
    Append(Option<CommitHook>, oneshot::Sender<Result<AppendAck>>),
    Trim(oneshot::Sender<Result<()>>),
    /// Answered with the entry's raft index.
    Consume(oneshot::Sender<Result<u64>>),
}

/// The writer task's state.
pub(super) struct Task {
    pub(super) route: Route,
    pub(super) shared: Arc<PartitionShared>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) raft: Arc<OnceLock<PartitionRaft>>,
}

impl Task {
    pub(super) async fn run(&self, mut rx: mpsc::Receiver<Op>) {
        let mut stop = false;
        while !stop {
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut ops = vec![first];
            while ops.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => ops.push(op),
                    Err(_) => break,
                }
            }
            let mut pending = Vec::with_capacity(ops.len());
            for op in ops {
                match op {
                    Op::Append(request, reply) => {
                        let (command, hook) = append_command(request, self.clock.now_ms());
                        pending.push((command, Waiter::Append(hook, reply)));
                    }
                    Op::Trim(before, done) => {
                        pending.push((PartitionCommand::Trim { before }, Waiter::Trim(done)));
                    }
                    Op::Consume(entries, done) => {
                        let command = PartitionCommand::Consumer(entries);
                        pending.push((command, Waiter::Consume(done)));
                    }
                    Op::Barrier(done) => {
                        if !pending.is_empty() {
                            self.submit(std::mem::take(&mut pending)).await;
                        }
                        let _ = done.send(());
                    }
                    Op::Stop => stop = true,
                }
            }
            if !pending.is_empty() {
                self.submit(pending).await;
            }
        }
    }

    /// Proposes `pending` on this node if it leads the group, else forwards it to the leader,
    /// until every entry is answered or [`PROPOSAL_TIMEOUT`] passed.
    async fn submit(&self, mut pending: Vec<(PartitionCommand, Waiter)>) {
        let deadline = Instant::now() + PROPOSAL_TIMEOUT;
        let mut tried = 0usize;
        let mut last_error = String::from("no leader");
        while !pending.is_empty() {
            if Instant::now() >= deadline {
                let err = Error::unavailable(format!(
                    "{} has no reachable leader after {:?}: {last_error}",
                    self.route.name(),
                    PROPOSAL_TIMEOUT
                ));
                for (_, waiter) in pending {
                    waiter.fail(err.clone());
                }
                return;
            }
            let Some(target) = next_target(self.raft.get(), &self.route, tried, deadline).await
            else {
                continue;
            };
            tried += 1;
            if target == self.route.me
                && let Some(raft) = self.raft.get()
            {
                let (commands, waiters): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
                let replies = propose_in_order(raft, commands).await;
                let shared = Arc::clone(&self.shared);
                let name = self.route.name();
                // Answered as entries apply, while the task takes the next ones, and by the
                // deadline at the latest: a leader that lost every other replica commits
                // nothing and stays leader (openraft does not step it down). The entry may
                // still commit once one is back, so the answer is the retryable UNAVAILABLE; an
                // idempotent producer's retry is then answered with the stored batch.
                tokio::spawn(async move {
                    for (reply, waiter) in replies.into_iter().zip(waiters) {
                        let reply = match reply {
                            Ok(rx) => match tokio::time::timeout_at(deadline, rx).await {
                                Ok(answer) => answer
                                    .map_err(|_| "the group stopped".to_string())
                                    .and_then(|written| written),
                                Err(_) => Err(format!(
                                    "not committed within {PROPOSAL_TIMEOUT:?}: this node leads \
                                     the group but too few of its replicas answer"
                                )),
                            },
                            Err(err) => Err(err),
                        };
                        waiter.answer(&shared, reply, &name);
                    }
                });
                return;
            }
            let (leader_only, forwarded): (Vec<_>, Vec<_>) = pending
                .into_iter()
                .partition(|(command, _)| command.leader_only());
            pending = forwarded;
            for (_, waiter) in leader_only {
                waiter.fail(Error::unavailable(format!(
                    "{}: this node no longer leads the group (queue ack state and releases of delayed messages are proposed by the leader only)",
                    self.route.name()
                )));
            }
            if pending.is_empty() {
                return;
            }
            match self.forward(target, &pending).await {
                Ok(answers) => {
                    let mut retry = Vec::new();
                    for ((command, waiter), answer) in pending.into_iter().zip(answers) {
                        match answer {
                            Ok(reply) => waiter.answer(&self.shared, Ok(reply), &self.route.name()),
                            Err(err) => {
                                last_error = err;
                                retry.push((command, waiter));
                            }
                        }
                    }
                    pending = retry;
                }
                Err(err) => last_error = err,
            }
            if !pending.is_empty() {
                tokio::time::sleep(RETRY).await;
            }
        }
    }

    /// Sends `pending`'s commands to `leader` in one `Cluster.Propose`; its answer per command.
    async fn forward(
        &self,
        leader: u64,
        pending: &[(PartitionCommand, Waiter)],
    ) -> std::result::Result<Vec<std::result::Result<PartitionReply, String>>, String> {
        let commands: Vec<&PartitionCommand> = pending.iter().map(|(c, _)| c).collect();
        let text = |err: &dyn std::fmt::Display| format!("forwarding to node {leader}: {err}");
        let inner = encode(&commands).map_err(|err| text(&err))?;
        let request = (self.route.group, serde_bytes::Bytes::new(&inner));
        let answer: serde_bytes::ByteBuf = (self.route)
            .call(leader, "forwarding to", RPC_TIMEOUT, Rpc::Propose, &request)
            .await?;
        let answers: Vec<std::result::Result<PartitionReply, String>> =
            decode(&answer).map_err(|err| text(&err))?;
        if answers.len() != pending.len() {
            return Err(format!(
                "node {leader} answered {} of {} entries",
                answers.len(),
                pending.len()
            ));
        }
        let appends = commands
            .iter()
            .filter(|c| matches!(c, PartitionCommand::Append(_)))
            .count();
        FORWARDED_APPENDS.fetch_add(appends as u64, Ordering::Relaxed);
        Ok(answers)
    }
}

/// Where the `tried`-th attempt to reach a group's leader goes: the leader this node's `raft`
/// knows, or, on a node that is not a replica (no `raft`), the replicas in turn, the preferred
/// leader first. While an election runs, `None` after waiting until `raft` knows a leader, its
/// metrics change, or `deadline`: ask again.
pub(in crate::cluster) async fn next_target(
    raft: Option<&PartitionRaft>,
    route: &Route,
    tried: usize,
    deadline: Instant,
) -> Option<u64> {
    match raft {
        Some(raft) => {
            let leader = raft.metrics().borrow_watched().current_leader;
            if leader.is_none() {
                wait_for_leader(raft, deadline).await;
            }
            leader
        }
        None => {
            let replicas = route.replicas.get();
            Some(
                replicas
                    .get(tried % replicas.len().max(1))
                    .copied()
                    .unwrap_or_default(),
            )
        }
    }
}

/// Waits until `raft` knows a leader, its metrics change, or `deadline`.
pub(super) async fn wait_for_leader(raft: &PartitionRaft, deadline: Instant) {
    let mut metrics = raft.metrics();
    let _ = tokio::time::timeout_at(deadline, metrics.changed()).await;
}

type Written = std::result::Result<PartitionReply, String>;

/// Proposes `commands` on `raft` in order, each with its own responder, without waiting for
/// any to commit; the receivers of their replies, in the same order.
pub(super) async fn propose_in_order(
    raft: &PartitionRaft,
    commands: Vec<PartitionCommand>,
) -> Vec<std::result::Result<oneshot::Receiver<Written>, String>> {
    let mut replies = Vec::with_capacity(commands.len());
    for command in commands {
        let (responder, rx) = ProgressResponder::<PartitionConfig, _>::complete_only();
        if let Err(err) = raft.client_write_ff(command, Some(responder)).await {
            replies.push(Err(err.to_string()));
            continue;
        }
        let (tx, reply) = oneshot::channel();
        tokio::spawn(async move {
            let written = match rx.await {
                Ok(written) => written_reply(written),
                Err(_) => Err("the group stopped".to_string()),
            };
            let _ = tx.send(written);
        });
        replies.push(Ok(reply));
    }
    replies
}

fn written_reply(
    written: std::result::Result<
        ClientWriteResponse<PartitionConfig>,
        ClientWriteError<PartitionConfig>,
    >,
) -> Written {
    match written {
        Ok(response) => Ok(response.data),
        Err(ClientWriteError::ForwardToLeader(forward)) => Err(format!(
            "not the leader any more (now node {:?})",
            forward.leader_id
        )),
        Err(err) => Err(err.to_string()),
    }
}

impl Waiter {
    fn fail(self, err: Error) {
        match self {
            Waiter::Append(_, reply) => {
                let _ = reply.send(Err(err));
            }
            Waiter::Trim(done) => {
                let _ = done.send(Err(err));
            }
            Waiter::Consume(done) => {
                let _ = done.send(Err(err));
            }
        }
    }

    /// Answers with the entry's reply: the ack (after the hook), the sequence refusal, or the
    /// group's failure as `UNAVAILABLE`.
    fn answer(self, shared: &PartitionShared, written: Written, name: &str) {
        let reply = match written {
            Ok(reply) => reply,
            Err(err) => return self.fail(Error::unavailable(format!("{name}: {err}"))),
        };
        match (self, reply) {
            (
                Waiter::Append(hook, tx),
                PartitionReply::Appended {
                    base_offset,
                    count,
                    append_time_ms,
                    duplicate,
                    deduplicated,
                },
            ) => {
                if let Some(hook) = hook.filter(|_| !duplicate) {
                    hook(base_offset);
                }
                let _ = tx.send(Ok(AppendAck {
                    base_offset,
                    count,
                    append_time_ms,
                    durability: shared.ack(),
                    duplicate,
                    deduplicated,
                }));
            }
            (Waiter::Append(_, tx), PartitionReply::OutOfOrder(message)) => {
                let _ = tx.send(Err(Error::new(ErrorCode::OutOfOrderSequence, message)));
            }
            (Waiter::Trim(done), PartitionReply::Trimmed { .. }) => {
                let _ = done.send(Ok(()));
            }
            (Waiter::Consume(done), PartitionReply::Consumed { index }) => {
                let _ = done.send(Ok(index));
            }
            (waiter, other) => waiter.fail(Error::internal(format!(
                "{name}: unexpected reply {other:?}"
            ))),
        }
    }
}

/// The entry of an append: the request's data stamped with `now`, and its hook apart.
fn append_command(request: AppendRequest, now: i64) -> (PartitionCommand, Option<CommitHook>) {
    let AppendRequest {
        payload,
        count,
        flags,
        producer_id,
        base_sequence,
        sequence_span,
        deduplicated,
        extras,
        on_commit,
        value_bytes,
    } = request;
    let command = AppendCommand {
        payload,
        count,
        flags,
        producer_id,
        base_sequence,
        sequence_span,
        deduplicated,
        extras,
        value_bytes,
        append_time_ms: now,
    };
    (PartitionCommand::Append(command), on_commit)
}
