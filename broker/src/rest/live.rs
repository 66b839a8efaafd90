//! One live consumer session for the streaming transports (Server-Sent Events, WebSocket): open
//! it on an existing subscription in the subscription's own mode, then take messages from it.
//!
//! In cluster mode a queue subscription's session claims through relayed polls
//! ([`relay::poll_queue`]), so that it gets every partition, not only those the node it reached
//! leads: a task claims when asked and keeps what it claimed until it is taken, so taking stays
//! cancel-safe. Its claims are made as `<consumer> (live session <n>)`, apart from the
//! long-polls of the same consumer, and the sessions behind them are closed when the live
//! session ends, which hands back what was claimed and not acked, as a session of this node
//! alone does.

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
use crate::engine::{Engine, Session, SessionEvent, SubscriptionMode};
use crate::error::Error;
use crate::principal::Principal;

/// How long one relayed claim waits for messages before the task claims again.
const CLAIM_WAIT: Duration = Duration::from_secs(10);

/// A live session.
pub enum Live {
    /// A session of this node's engine (boxed: it is large beside the other).
    Here(Box<Session>),
    /// Cluster mode, a queue subscription: claims on every node leading its partitions.
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
    if mode == SubscriptionMode::Queue && state.cluster.is_some() {
        return Ok(Live::Relayed(Relayed::start(
            Arc::clone(state),
            principal.clone(),
            topic,
            subscription,
            consumer,
        )));
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

/// A relayed queue session: the task that claims, asked for how many at a time.
pub struct Relayed {
    asks: mpsc::Sender<u32>,
    claimed: mpsc::Receiver<Result<Vec<MessageOut>, ApiError>>,
    /// Whether an ask is out that `claimed` has not answered yet.
    asked: bool,
}

impl Relayed {
    fn start(
        state: Arc<RestState>,
        principal: Principal,
        topic: &str,
        subscription: &str,
        consumer: &str,
    ) -> Relayed {
        static SESSIONS: AtomicU64 = AtomicU64::new(1);
        let n = SESSIONS.fetch_add(1, Ordering::Relaxed);
        let consumer = format!("{consumer} (live session {n})");
        let (topic, subscription) = (topic.to_string(), subscription.to_string());
        let (asks, mut asked) = mpsc::channel::<u32>(1);
        let (answer, claimed) = mpsc::channel(1);
        tokio::spawn(async move {
            let Some(cluster) = state.cluster.clone() else {
                return;
            };
            // The other nodes where this session's consumer may hold a session.
            let mut nodes = BTreeSet::new();
            'asks: while let Some(max) = asked.recv().await {
                let claim = loop {
                    let poll = relay::Poll {
                        topic: &topic,
                        subscription: &subscription,
                        consumer: &consumer,
                        max,
                        deadline: Instant::now() + CLAIM_WAIT,
                    };
                    // Once the session is gone, a claim cut short is handed back by the
                    // closing below, with everything else its sessions hold.
                    let claimed = tokio::select! {
                        claimed = relay::poll_queue_noting(&state, &cluster, &principal, poll, &mut nodes) => claimed,
                        () = answer.closed() => break 'asks,
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
            relay::close_queue(&state, &cluster, &principal, poll, &nodes).await;
        });
        Relayed {
            asks,
            claimed,
            asked: false,
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
