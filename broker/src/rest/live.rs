//! One live consumer session for the streaming transports (Server-Sent Events, WebSocket): open
//! it on an existing subscription in the subscription's own mode, then take messages from it.
//!
//! In cluster mode a session reaches past the node it was opened on:
//! - a queue subscription's session claims through relayed polls ([`relay::poll_queue`]), so
//!   that it gets every partition, not only those this node leads;
//! - a stream subscription's session, where another node coordinates the subscription, takes
//!   its messages from a stream session kept for it there ([`relay::take_stream`]), so that it
//!   is a member of the one group and splits the partitions with the other members.
//!
//! A task claims (or takes) when asked and keeps what it got until it is taken, so taking stays
//! cancel-safe. It works as `<consumer> (live session <n>)`, apart from the long-polls of the
//! same consumer, and the sessions behind it are closed when the live session ends: what a
//! queue session claimed and was not acked goes back, and a stream session leaves its group,
//! as a session of this node alone does. A stream session whose coordinator stops
//! coordinating ends with the error, as one on this node does; the client opens a new one,
//! which resumes from the committed offsets.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rapidmq_proto::ErrorCode;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::RestState;
use super::error::ApiError;
use super::messages::MessageOut;
use super::relay;
use crate::cluster::node::ClusterNode;
use crate::engine::{AccessWatch, Engine, Session, SessionEvent, SubscriptionMode};
use crate::error::Error;
use crate::principal::Principal;

/// How long one take from a stream session on the coordinator waits for messages before the
/// task takes again; also about how long a closed live session stays a member there.
const TAKE_WAIT: Duration = Duration::from_secs(1);

/// A live session.
pub enum Live {
    /// A session of this node's engine (boxed: it is large beside the other).
    Here(Box<Session>),
    /// Cluster mode: a queue subscription's session claiming on every node leading its
    /// partitions, or a stream subscription's session on its coordinator elsewhere.
    Relayed(Relayed),
}

/// Joins `subscription` as `consumer`. The subscription must exist: streaming never creates one.
pub async fn open(
    state: &Arc<RestState>,
    principal: &Principal,
    topic: &str,
    subscription: &str,
    consumer: &str,
) -> Result<Live, ApiError> {
    let engine = &state.engine;
    let mode = engine.consume_mode(principal, topic, subscription)?;
    if state.cluster.is_some() {
        let source = match mode {
            SubscriptionMode::Queue => Some(Source::Queue(BTreeSet::new())),
            SubscriptionMode::Stream => engine
                .coordinator_elsewhere(principal, topic, subscription)?
                .map(|node| {
                    let access = engine.consume_watch(principal, topic, subscription);
                    let access = access.map(Box::new);
                    Source::Stream(node, access)
                }),
        };
        if let Some(source) = source {
            return Ok(Live::Relayed(Relayed::start(
                Arc::clone(state),
                principal.clone(),
                (topic, subscription, consumer),
                source,
            )));
        }
    }
    Ok(Live::Here(Box::new(
        engine
            .subscribe(
                principal,
                topic,
                Some(subscription),
                mode,
                Default::default(),
                None,
                consumer,
            )
            .await?,
    )))
}

/// The next messages, at most `credits` (at least 1). Cancel-safe. Empty when the session only
/// changed assignment.
pub async fn next(
    engine: &Engine,
    session: &mut Live,
    credits: u32,
) -> Result<Vec<MessageOut>, ApiError> {
    match session {
        Live::Here(session) => next_here(engine, session, credits).await,
        Live::Relayed(relayed) => relayed.next(credits).await,
    }
}

async fn next_here(
    engine: &Engine,
    session: &mut Session,
    credits: u32,
) -> Result<Vec<MessageOut>, ApiError> {
    match session {
        Session::Stream(stream) => match stream.next(credits).await? {
            SessionEvent::Assigned { .. } => Ok(Vec::new()),
            SessionEvent::Delivery(delivery) => {
                MessageOut::from_delivery(&delivery).map_err(|_| {
                    Error::new(ErrorCode::Internal, "a stored batch does not decode").into()
                })
            }
        },
        Session::Queue(queue) => {
            let deliveries = queue.next(engine, credits).await?;
            engine.observe_queue_deliveries(
                queue.topic(),
                queue.subscription().name(),
                &deliveries,
            );
            Ok(deliveries.iter().map(MessageOut::from_queue).collect())
        }
    }
}

/// Where a relayed session gets its messages.
enum Source {
    /// Claims through relayed queue polls; the other nodes asked so far, where its consumer
    /// may hold a session.
    Queue(BTreeSet<u64>),
    /// Takes from the stream session kept for it on the named node, the subscription's
    /// coordinator. That session runs as the broker, so the caller's credential and grant are
    /// checked here before each take (`None`: nothing can end them).
    Stream(u64, Option<Box<AccessWatch>>),
}

impl Source {
    /// How long one claim waits: the task claims again after it, and a live session that ends
    /// lets the claim in flight finish before it closes the sessions behind it.
    fn wait(&self) -> Duration {
        match self {
            // One round of relayed polls, as a long-poll makes them.
            Source::Queue(_) => relay::ROUND,
            Source::Stream(..) => TAKE_WAIT,
        }
    }

    async fn claim(
        &mut self,
        state: &RestState,
        cluster: &ClusterNode,
        principal: &Principal,
        poll: relay::Poll<'_>,
    ) -> Result<Vec<MessageOut>, ApiError> {
        match self {
            Source::Queue(nodes) => {
                relay::poll_queue_noting(state, cluster, principal, poll, nodes).await
            }
            Source::Stream(node, access) => {
                if let Some(access) = access {
                    access.check()?;
                }
                relay::take_stream(cluster, *node, principal, poll).await
            }
        }
    }

    /// Closes the sessions behind it.
    async fn close(
        &self,
        state: &RestState,
        cluster: &ClusterNode,
        principal: &Principal,
        poll: relay::Poll<'_>,
    ) {
        match self {
            Source::Queue(nodes) => {
                relay::close_queue(state, cluster, principal, poll, nodes).await;
            }
            Source::Stream(node, _) => relay::close_stream(cluster, *node, principal, poll).await,
        }
    }
}

/// A relayed session: the task that claims, asked for how many at a time.
pub struct Relayed {
    asks: mpsc::Sender<u32>,
    claimed: mpsc::Receiver<Result<Vec<MessageOut>, ApiError>>,
    /// Whether an ask is out that `claimed` has not answered yet.
    asked: bool,
    /// The coordinator a stream session takes from; `None` for a queue session.
    pub coordinator: Option<u64>,
    /// The name its sessions elsewhere go under (before the node's suffix).
    pub consumer: String,
}

impl Relayed {
    fn start(
        state: Arc<RestState>,
        principal: Principal,
        (topic, subscription, consumer): (&str, &str, &str),
        mut source: Source,
    ) -> Relayed {
        static SESSIONS: AtomicU64 = AtomicU64::new(1);
        let n = SESSIONS.fetch_add(1, Ordering::Relaxed);
        let consumer = format!("{consumer} (live session {n})");
        let coordinator = match source {
            Source::Stream(node, _) => Some(node),
            Source::Queue(_) => None,
        };
        let (topic, subscription) = (topic.to_string(), subscription.to_string());
        let (asks, mut asked) = mpsc::channel::<u32>(1);
        let (answer, claimed) = mpsc::channel(1);
        let name = consumer.clone();
        tokio::spawn(async move {
            let Some(cluster) = state.cluster.clone() else {
                return;
            };
            'asks: while let Some(max) = asked.recv().await {
                let claim = loop {
                    let poll = relay::Poll {
                        topic: &topic,
                        subscription: &subscription,
                        consumer: &consumer,
                        max,
                        deadline: Instant::now() + source.wait(),
                    };
                    let claiming = source.claim(&state, &cluster, &principal, poll);
                    tokio::pin!(claiming);
                    let claimed = tokio::select! {
                        claimed = &mut claiming => claimed,
                        () = answer.closed() => {
                            // The session is gone. The claim in flight finishes first (within
                            // its short wait): cut short, its request could still reach its
                            // node after the close below, join there again and keep what it
                            // claims until that session is idle. What it claims is handed
                            // back by the close, with everything else its sessions hold.
                            let _ = claiming.await;
                            break 'asks;
                        }
                    };
                    match claimed {
                        Ok(messages) if messages.is_empty() => {}
                        claim => break claim,
                    }
                };
                let failed = claim.is_err();
                if answer.send(claim).await.is_err() || failed {
                    break;
                }
            }
            let poll = relay::Poll {
                topic: &topic,
                subscription: &subscription,
                consumer: &consumer,
                max: 0,
                deadline: Instant::now(),
            };
            source.close(&state, &cluster, &principal, poll).await;
        });
        Relayed {
            asks,
            claimed,
            asked: false,
            coordinator,
            consumer: name,
        }
    }

    async fn next(&mut self, credits: u32) -> Result<Vec<MessageOut>, ApiError> {
        if !self.asked {
            // One ask at most is out, so the channel has room.
            self.asks
                .try_send(credits.max(1))
                .map_err(|_| ApiError::new(ErrorCode::Unavailable, "the session ended"))?;
            self.asked = true;
        }
        let claimed = self.claimed.recv().await;
        self.asked = false;
        claimed.unwrap_or_else(|| Err(ApiError::new(ErrorCode::Unavailable, "the session ended")))
    }
}
