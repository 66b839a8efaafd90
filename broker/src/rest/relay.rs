//! REST in cluster mode: a REST client talks to one node and does not follow leader hints, so
//! that node asks the others for what it does not serve itself (`Cluster.Relay`,
//! docs/clustering.md "REST in cluster mode"):
//!
//! - **Queue polls.** A queue partition is delivered by its leader only. A poll claims from
//!   this node's session and, in the same round, from a session of the same consumer on each
//!   node that leads partitions of the topic (named `<consumer> via node <n>[ for <user>]`
//!   there, kept between polls and dropped when idle as any REST consumer is). Each source gets
//!   its share of `max`; every source's answer is awaited, so nothing claimed is left behind.
//!   A round waits at most [`ROUND`] for a first message, then the next round asks again, until
//!   the poll's deadline: a message that arrives on one node while another is waited on is
//!   handed out within a round.
//! - **Settling receipts.** Each receipt goes to its partition's leader, where the delivery is
//!   in flight.
//! - **Stream polls** join the subscription's group on its coordinator (the leader of the
//!   partition its name hashes to), so REST pollers through different nodes, and SDK members,
//!   split the partitions.
//! - **Live stream sessions** (Server-Sent Events, WebSocket) take their messages from a
//!   stream session kept for them on the coordinator (`consumers`, named `<consumer> via node
//!   <n>[ for <user>]` there), which holds their group membership and position between takes;
//!   their commits are made there as that member, and the session is closed when they end.
//!
//! The node asked serves the request as its own REST layer would, inside the caller's tenant,
//! as the broker (`Principal::system`): the asking node authorised the caller, and only nodes of
//! the cluster reach `Cluster.Relay`. Requests and answers are JSON (the REST types' own
//! encoding). A node asked does not relay further.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::future::{BoxFuture, join_all};
use rapidmq_proto::ErrorCode;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::RestState;
use super::acks::PartitionOffset;
use super::consume::{MIN_POLL, PollResult, poll_here};
use super::error::ApiError;
use super::messages::{MessageOut, Receipt};
use crate::cluster::node::ClusterNode;
use crate::cluster::service::RelayHandler;
use crate::engine::{Settlement, SubscriptionMode};
use crate::principal::{Principal, TenantId};

/// Longest a queue poll waits on its sources before it asks them all again.
pub const ROUND: Duration = Duration::from_millis(250);
/// Time a relayed request gets beyond its own wait.
const RELAY_TIMEOUT: Duration = Duration::from_secs(5);

/// A long-poll as the handler took it.
#[derive(Clone, Copy)]
pub struct Poll<'a> {
    pub topic: &'a str,
    pub subscription: &'a str,
    pub consumer: &'a str,
    pub max: u32,
    pub deadline: Instant,
}

/// What one node asks another's REST layer.
#[derive(Debug, Serialize, Deserialize)]
enum Ask {
    /// Claims for a queue consumer, named there as in the module docs.
    QueuePoll(Relayed),
    Settle {
        tenant: String,
        topic: String,
        subscription: String,
        receipts: Vec<Receipt>,
        how: Settlement,
    },
    /// A stream poll, on the subscription's coordinator.
    StreamPoll(Relayed),
    /// Closes the kept session of a consumer (named as in `QueuePoll`): what a queue session
    /// claimed and was not acked goes back to the others; a stream session leaves its group.
    #[serde(rename = "CloseQueue")]
    Close {
        tenant: String,
        topic: String,
        subscription: String,
        consumer: String,
    },
    /// Takes messages from a live stream session kept on the coordinator (named as in
    /// `QueuePoll`), joining the group on the first take.
    StreamTake(Relayed),
    /// Commits as the member of such a kept stream session.
    StreamCommit {
        tenant: String,
        topic: String,
        subscription: String,
        consumer: String,
        offsets: Vec<PartitionOffset>,
    },
}

/// A long-poll as another node relays it.
#[derive(Debug, Serialize, Deserialize)]
struct Relayed {
    tenant: String,
    topic: String,
    subscription: String,
    consumer: String,
    max: u32,
    wait_ms: u64,
}

impl Relayed {
    /// `poll` of `principal` for `consumer`, waiting until `until` there.
    fn new(
        principal: &Principal,
        poll: Poll<'_>,
        consumer: String,
        max: u32,
        until: Instant,
    ) -> Relayed {
        let wait = until.saturating_duration_since(Instant::now());
        Relayed {
            tenant: principal.tenant().to_string(),
            topic: poll.topic.to_string(),
            subscription: poll.subscription.to_string(),
            consumer,
            max,
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        }
    }

    fn wait(&self) -> Duration {
        Duration::from_millis(self.wait_ms)
    }
}

/// The answer to an [`Ask`].
#[derive(Debug, Serialize, Deserialize)]
enum Answer {
    Messages(Vec<MessageOut>),
    /// How many receipts named nothing in flight.
    Settled(usize),
    Polled(PollResult),
    Closed,
    Committed,
    Failed {
        code: u32,
        detail: String,
    },
}

impl From<ApiError> for Answer {
    fn from(err: ApiError) -> Answer {
        Answer::Failed {
            code: err.code().code(),
            detail: err.detail().to_string(),
        }
    }
}

impl RelayHandler for RestState {
    fn relay(&self, ask: Vec<u8>) -> BoxFuture<'_, Vec<u8>> {
        Box::pin(async move {
            let answer = match serde_json::from_slice::<Ask>(&ask) {
                Ok(ask) => self.serve(ask).await.unwrap_or_else(Answer::from),
                Err(err) => Answer::from(ApiError::new(
                    ErrorCode::MalformedRequest,
                    format!("a relayed REST request this node cannot read: {err}"),
                )),
            };
            serde_json::to_vec(&answer).unwrap_or_default()
        })
    }
}

impl RestState {
    /// Serves another node's [`Ask`] with this node alone.
    async fn serve(&self, ask: Ask) -> Result<Answer, ApiError> {
        let system = |tenant: String| Principal::system(TenantId::new(tenant));
        match ask {
            Ask::QueuePoll(poll) => {
                let polled = self.serve_poll(SubscriptionMode::Queue, poll).await?;
                Ok(Answer::Messages(polled.messages))
            }
            Ask::StreamPoll(poll) => Ok(Answer::Polled(
                self.serve_poll(SubscriptionMode::Stream, poll).await?,
            )),
            Ask::Settle {
                tenant,
                topic,
                subscription,
                receipts,
                how,
            } => {
                let refs = super::acks::receipts(&receipts);
                let unknown = self
                    .engine
                    .settle(&system(tenant), &topic, &subscription, &refs, how)
                    .await?;
                Ok(Answer::Settled(unknown))
            }
            Ask::Close {
                tenant,
                topic,
                subscription,
                consumer,
            } => {
                let principal = system(tenant);
                self.consumers
                    .close(&principal, &topic, &subscription, &consumer);
                Ok(Answer::Closed)
            }
            Ask::StreamTake(take) => {
                let principal = system(take.tenant.clone());
                let deadline = Instant::now() + take.wait().max(MIN_POLL);
                let taken = self
                    .consumers
                    .take_stream(
                        &self.engine,
                        &principal,
                        &take.topic,
                        &take.subscription,
                        &take.consumer,
                        take.max,
                        deadline,
                    )
                    .await?;
                Ok(Answer::Messages(taken.messages))
            }
            Ask::StreamCommit {
                tenant,
                topic,
                subscription,
                consumer,
                offsets,
            } => {
                let offsets: Vec<(u32, u64)> =
                    offsets.iter().map(|o| (o.partition, o.offset)).collect();
                self.consumers
                    .commit_stream(
                        &self.engine,
                        &system(tenant),
                        &topic,
                        &subscription,
                        &consumer,
                        &offsets,
                    )
                    .await?;
                Ok(Answer::Committed)
            }
        }
    }

    async fn serve_poll(
        &self,
        mode: SubscriptionMode,
        poll: Relayed,
    ) -> Result<PollResult, ApiError> {
        let principal = Principal::system(TenantId::new(poll.tenant.clone()));
        let deadline = Instant::now() + poll.wait().max(MIN_POLL);
        poll_here(
            self,
            &principal,
            mode,
            &poll.topic,
            &poll.subscription,
            &poll.consumer,
            poll.max,
            deadline,
        )
        .await
    }
}

/// Asks `node`'s REST layer, waiting `wait` there at most.
async fn ask(
    cluster: &ClusterNode,
    node: u64,
    ask: &Ask,
    wait: Duration,
) -> Result<Answer, ApiError> {
    let unavailable = |detail: String| ApiError::new(ErrorCode::Unavailable, detail);
    let request = serde_json::to_vec(ask)
        .map_err(|err| ApiError::from(crate::Error::internal(err.to_string())))?;
    let answer = cluster
        .relay(node, request, wait + RELAY_TIMEOUT)
        .await
        .map_err(|err| unavailable(format!("asking another node failed: {err}")))?;
    match serde_json::from_slice(&answer) {
        Ok(Answer::Failed { code, detail }) => Err(ApiError::new(
            ErrorCode::from_code(code).unwrap_or(ErrorCode::Internal),
            detail,
        )),
        Ok(answer) => Ok(answer),
        Err(err) => Err(unavailable(format!(
            "node {node} answered what this node cannot read: {err}"
        ))),
    }
}

fn unexpected(node: u64) -> ApiError {
    ApiError::from(crate::Error::internal(format!(
        "node {node} answered a relayed REST request with another kind of answer"
    )))
}

/// Where a queue poll claims: this node, or another node's session of the same consumer.
#[derive(Clone, Copy)]
enum Source {
    Here,
    Node(u64),
}

/// A queue poll in cluster mode: claims from this node and every node that leads partitions
/// of the topic, in rounds (module docs).
pub async fn poll_queue(
    state: &RestState,
    cluster: &ClusterNode,
    principal: &Principal,
    poll: Poll<'_>,
) -> Result<Vec<MessageOut>, ApiError> {
    poll_queue_noting(state, cluster, principal, poll, &mut BTreeSet::new()).await
}

/// [`poll_queue`], adding each other node it asked to `asked` (where the consumer may now hold
/// a session, for [`close_queue`]).
pub async fn poll_queue_noting(
    state: &RestState,
    cluster: &ClusterNode,
    principal: &Principal,
    poll: Poll<'_>,
    asked: &mut BTreeSet<u64>,
) -> Result<Vec<MessageOut>, ApiError> {
    let remote_consumer = remote_consumer(cluster, principal, poll.consumer);
    loop {
        let now = Instant::now();
        let round_end = poll.deadline.min(now + ROUND).max(now + MIN_POLL);
        let mut sources = vec![Source::Here];
        sources.extend(
            state
                .engine
                .other_leaders(principal, poll.topic)?
                .into_iter()
                .map(Source::Node),
        );
        let turn = state.relay_turn.fetch_add(1, Ordering::Relaxed);
        let shares = shares(poll.max, sources.len(), turn);
        for (source, share) in sources.iter().zip(&shares) {
            if let (Source::Node(node), 1..) = (source, share) {
                asked.insert(*node);
            }
        }
        let claims = sources
            .iter()
            .zip(shares)
            .filter(|(_, share)| *share > 0)
            .map(|(&source, share)| {
                let remote_consumer = remote_consumer.clone();
                async move {
                    let claimed = match source {
                        Source::Here => poll_here(
                            state,
                            principal,
                            SubscriptionMode::Queue,
                            poll.topic,
                            poll.subscription,
                            poll.consumer,
                            share,
                            round_end,
                        )
                        .await
                        .map(|polled| polled.messages),
                        Source::Node(node) => {
                            let request =
                                Relayed::new(principal, poll, remote_consumer, share, round_end);
                            let wait = request.wait();
                            let request = Ask::QueuePoll(request);
                            match ask(cluster, node, &request, wait).await {
                                Ok(Answer::Messages(messages)) => Ok(messages),
                                Ok(_) => Err(unexpected(node)),
                                Err(err) => Err(err),
                            }
                        }
                    };
                    (claimed, source)
                }
            });
        let mut messages = Vec::new();
        // Sources without a share this round were not asked: each answer names its source.
        for (claimed, source) in join_all(claims).await {
            match (claimed, source) {
                (Ok(claimed), _) => messages.extend(claimed),
                // This node's own refusal (no such subscription, not allowed) is the answer.
                (Err(err), Source::Here) => return Err(err),
                // A node that cannot be asked now: its partitions get a new leader, which a
                // later round asks.
                (Err(err), Source::Node(node)) => tracing::debug!(
                    node,
                    cause = err.detail(),
                    "a REST queue poll could not claim from another node"
                ),
            }
        }
        if !messages.is_empty() || Instant::now() >= poll.deadline {
            return Ok(messages);
        }
    }
}

/// The name a consumer's session kept on another node (queue claims, live stream sessions) goes
/// under there.
fn remote_consumer(cluster: &ClusterNode, principal: &Principal, consumer: &str) -> String {
    match principal.name() {
        Some(user) => format!("{consumer} via node {} for {user}", cluster.id()),
        None => format!("{consumer} via node {}", cluster.id()),
    }
}

/// Closes the sessions `poll`'s consumer claimed through, here and on the nodes in `asked`
/// ([`poll_queue_noting`]), so what they hold and was not acked goes back at once rather than
/// when they are idle long enough. A node that cannot be asked keeps its session until then.
pub async fn close_queue(
    state: &RestState,
    cluster: &ClusterNode,
    principal: &Principal,
    poll: Poll<'_>,
    asked: &BTreeSet<u64>,
) {
    state
        .consumers
        .close(principal, poll.topic, poll.subscription, poll.consumer);
    let request = Ask::Close {
        tenant: principal.tenant().to_string(),
        topic: poll.topic.to_string(),
        subscription: poll.subscription.to_string(),
        consumer: remote_consumer(cluster, principal, poll.consumer),
    };
    let request = &request;
    let closes = asked.iter().map(|&node| async move {
        if let Err(err) = ask(cluster, node, request, Duration::ZERO).await {
            tracing::debug!(
                node,
                cause = err.detail(),
                "a REST queue session on another node was left to its idle timeout"
            );
        }
    });
    join_all(closes).await;
}

/// `max` split over `sources`: each gets as many as the others, the first `max % sources`
/// from `turn` on one more (so a poll of fewer messages than sources asks a different source
/// each time).
fn shares(max: u32, sources: usize, turn: usize) -> Vec<u32> {
    let n = u32::try_from(sources).unwrap_or(u32::MAX).max(1);
    let mut shares = vec![max / n; sources];
    for k in 0..(max % n) as usize {
        shares[(turn + k) % sources] += 1;
    }
    shares
}

/// A stream poll in cluster mode: on the subscription's coordinator.
pub async fn poll_stream(
    state: &RestState,
    cluster: &ClusterNode,
    principal: &Principal,
    poll: Poll<'_>,
) -> Result<PollResult, ApiError> {
    let coordinator =
        state
            .engine
            .coordinator_elsewhere(principal, poll.topic, poll.subscription)?;
    let Some(node) = coordinator else {
        return poll_here(
            state,
            principal,
            SubscriptionMode::Stream,
            poll.topic,
            poll.subscription,
            poll.consumer,
            poll.max,
            poll.deadline,
        )
        .await;
    };
    let request = Relayed::new(
        principal,
        poll,
        poll.consumer.to_string(),
        poll.max,
        poll.deadline,
    );
    let wait = request.wait();
    let request = Ask::StreamPoll(request);
    match ask(cluster, node, &request, wait).await? {
        Answer::Polled(polled) => Ok(polled),
        _ => Err(unexpected(node)),
    }
}

/// A live stream session's next messages, from the stream session kept for `poll`'s consumer
/// on `node`, the subscription's coordinator (joined there on the first take).
pub async fn take_stream(
    cluster: &ClusterNode,
    node: u64,
    principal: &Principal,
    poll: Poll<'_>,
) -> Result<Vec<MessageOut>, ApiError> {
    let consumer = remote_consumer(cluster, principal, poll.consumer);
    let request = Relayed::new(principal, poll, consumer, poll.max, poll.deadline);
    let wait = request.wait();
    match ask(cluster, node, &Ask::StreamTake(request), wait).await? {
        Answer::Messages(messages) => Ok(messages),
        _ => Err(unexpected(node)),
    }
}

/// Commits `offsets` as the member of the stream session kept for `consumer` on `node`
/// ([`take_stream`]).
pub async fn commit_stream(
    cluster: &ClusterNode,
    node: u64,
    principal: &Principal,
    (topic, subscription, consumer): (&str, &str, &str),
    offsets: Vec<PartitionOffset>,
) -> Result<(), ApiError> {
    let request = Ask::StreamCommit {
        tenant: principal.tenant().to_string(),
        topic: topic.to_string(),
        subscription: subscription.to_string(),
        consumer: remote_consumer(cluster, principal, consumer),
        offsets,
    };
    match ask(cluster, node, &request, Duration::ZERO).await? {
        Answer::Committed => Ok(()),
        _ => Err(unexpected(node)),
    }
}

/// Closes the stream session kept for `poll`'s consumer on `node` ([`take_stream`]): it
/// leaves the group, whose other members take its partitions. A node that cannot be asked
/// keeps it until it is idle for `http.consumer_idle_timeout_ms`.
pub async fn close_stream(cluster: &ClusterNode, node: u64, principal: &Principal, poll: Poll<'_>) {
    let request = Ask::Close {
        tenant: principal.tenant().to_string(),
        topic: poll.topic.to_string(),
        subscription: poll.subscription.to_string(),
        consumer: remote_consumer(cluster, principal, poll.consumer),
    };
    if let Err(err) = ask(cluster, node, &request, Duration::ZERO).await {
        tracing::debug!(
            node,
            cause = err.detail(),
            "a live stream session on the coordinator was left to its idle timeout"
        );
    }
}

/// Settles receipts in cluster mode: each on its partition's leader. Returns how many named
/// nothing in flight; a node's failure is the answer (the receipts of the others are settled
/// all the same).
pub async fn settle(
    state: &RestState,
    cluster: &ClusterNode,
    principal: &Principal,
    topic: &str,
    subscription: &str,
    receipts: &[Receipt],
    how: Settlement,
) -> Result<usize, ApiError> {
    let mut here = Vec::new();
    let mut elsewhere: std::collections::BTreeMap<u64, Vec<Receipt>> = Default::default();
    for receipt in receipts {
        match state
            .engine
            .leader_elsewhere(principal, topic, receipt.partition)?
        {
            Some(node) => elsewhere.entry(node).or_default().push(*receipt),
            None => here.push(*receipt),
        }
    }
    // Even with every receipt elsewhere: this checks the caller and the request.
    let refs = super::acks::receipts(&here);
    let mut unknown = state
        .engine
        .settle(principal, topic, subscription, &refs, how)
        .await?;
    let asked = elsewhere.into_iter().map(|(node, receipts)| async move {
        let request = Ask::Settle {
            tenant: principal.tenant().to_string(),
            topic: topic.to_string(),
            subscription: subscription.to_string(),
            receipts,
            how,
        };
        match ask(cluster, node, &request, Duration::ZERO).await? {
            Answer::Settled(unknown) => Ok(unknown),
            _ => Err(unexpected(node)),
        }
    });
    for answer in join_all(asked).await {
        unknown += answer?;
    }
    Ok(unknown)
}

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn a_poll_is_shared_evenly_and_the_rest_turns() {
        assert_eq!(shares(100, 3, 0), [34, 33, 33]);
        assert_eq!(shares(100, 3, 1), [33, 34, 33]);
        assert_eq!(shares(1, 3, 0), [1, 0, 0]);
        assert_eq!(shares(1, 3, 2), [0, 0, 1]);
        assert_eq!(shares(2, 3, 2), [1, 0, 1]);
        assert_eq!(shares(7, 1, 5), [7]);
    }
}
