//! Consuming a subscription by long-poll: `GET .../subscriptions/{s}/messages` returns as soon
//! as messages are there, or empty after `wait_ms`.
//!
//! - Stream mode: the request joins the subscription's group for its duration, reads from the
//!   committed offsets of the partitions it is assigned, and leaves. Nothing is committed: the
//!   answer carries the offsets to commit (`commit`) once the messages are processed, and the
//!   next poll starts from the committed offsets. A poll whose messages are never committed
//!   gets them again.
//! - Queue mode: the request claims through the consumer's session kept between requests (see
//!   `consumers`); the messages carry receipts for the ack, nack and extend endpoints.
//! - Cluster mode: a queue poll also claims from the partitions other nodes lead, and a stream
//!   poll joins the group on its coordinator, through those nodes (`relay`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};

use super::acks::PartitionOffset;
use super::error::{ApiError, Json, Path, Problem, Query};
use super::messages::MessageOut;
use super::subscriptions::Mode;
use super::{RestState, params, relay};
use crate::engine::{Session, SessionEvent, StreamSession, SubscriptionMode};
use crate::principal::Principal;

/// Time a poll gets to read stored messages even with `wait_ms=0`.
pub(super) const MIN_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PollQuery {
    /// Most messages to return (1 to 10000, default 100).
    #[param(minimum = 1, maximum = 10000)]
    pub max: Option<u32>,
    /// Wait up to this long for the first message (ms, at most 30000; the broker waits at most
    /// half of its `http.request_timeout_ms`). Default 1000.
    #[param(minimum = 0, maximum = 30000)]
    pub wait_ms: Option<u64>,
    /// The consumer's name (default `rest`). Queue mode: requests with the same name share one
    /// session, so its unacked messages stay with it between requests.
    pub consumer: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PollResult {
    pub mode: Mode,
    pub messages: Vec<MessageOut>,
    /// Stream mode: the offsets to commit once these messages are processed.
    pub commit: Vec<PartitionOffset>,
}

/// Long-polls a subscription for messages.
#[utoipa::path(get, path = "/v1/topics/{topic}/subscriptions/{subscription}/messages", tag = "consume",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$"), ("subscription" = String, Path, description = "Subscription name", pattern = r"^[A-Za-z0-9._-]{1,200}$"), PollQuery),
    responses(
        (status = 200, description = "Messages (possibly none)", body = PollResult),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn poll(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path((topic, subscription)): Path<(String, String)>,
    Query(query): Query<PollQuery>,
) -> Result<Json<PollResult>, ApiError> {
    let max = params::max_messages(query.max)?;
    let wait = params::wait(query.wait_ms, 1000, state.max_wait)?;
    let deadline = Instant::now() + wait.max(MIN_POLL);
    let consumer = query.consumer.unwrap_or_else(|| "rest".to_string());
    let mode = state
        .engine
        .consume_mode(&principal, &topic, &subscription)?;
    let Some(cluster) = &state.cluster else {
        return Ok(Json(
            poll_here(
                &state,
                &principal,
                mode,
                &topic,
                &subscription,
                &consumer,
                max,
                deadline,
            )
            .await?,
        ));
    };
    let ask = relay::Poll {
        topic: &topic,
        subscription: &subscription,
        consumer: &consumer,
        max,
        deadline,
    };
    Ok(Json(match mode {
        SubscriptionMode::Queue => PollResult {
            mode: Mode::Queue,
            messages: relay::poll_queue(&state, cluster, &principal, ask).await?,
            commit: Vec::new(),
        },
        SubscriptionMode::Stream => relay::poll_stream(&state, cluster, &principal, ask).await?,
    }))
}

/// A poll served by this node alone: a queue's partitions this node leads, or a stream
/// subscription's group joined here.
#[allow(clippy::too_many_arguments)]
pub(super) async fn poll_here(
    state: &RestState,
    principal: &Principal,
    mode: SubscriptionMode,
    topic: &str,
    subscription: &str,
    consumer: &str,
    max: u32,
    deadline: Instant,
) -> Result<PollResult, ApiError> {
    match mode {
        SubscriptionMode::Queue => {
            let deliveries = state
                .consumers
                .poll(
                    &state.engine,
                    principal,
                    topic,
                    subscription,
                    consumer,
                    max,
                    deadline,
                )
                .await?;
            Ok(PollResult {
                mode: Mode::Queue,
                messages: deliveries.iter().map(MessageOut::from_queue).collect(),
                commit: Vec::new(),
            })
        }
        SubscriptionMode::Stream => {
            let session = state
                .engine
                .subscribe(
                    principal,
                    topic,
                    Some(subscription),
                    SubscriptionMode::Stream,
                    Default::default(),
                    None,
                    consumer,
                )
                .await?;
            let Session::Stream(mut session) = session else {
                return Err(
                    crate::Error::internal("a stream subscribe returned a queue session").into(),
                );
            };
            let taken = take_stream(&mut session, max, deadline).await?;
            Ok(PollResult {
                mode: Mode::Stream,
                messages: taken.messages,
                commit: taken.commit,
            })
        }
    }
}

/// What [`take_stream`] took: the messages, and the offsets to commit once they are processed.
#[derive(Debug, Default)]
pub(super) struct Taken {
    pub messages: Vec<MessageOut>,
    pub commit: Vec<PartitionOffset>,
}

/// Up to `max` messages of a stream session: waits until `deadline` for the first delivery,
/// then takes only what is ready now. Assignment changes are skipped.
pub(super) async fn take_stream(
    session: &mut StreamSession,
    max: u32,
    deadline: Instant,
) -> Result<Taken, ApiError> {
    let mut messages: Vec<MessageOut> = Vec::new();
    let mut commit: BTreeMap<u32, u64> = BTreeMap::new();
    loop {
        let remaining = max - messages.len() as u32;
        if remaining == 0 {
            break;
        }
        // Wait for the first messages; after that take only what is ready now.
        let event = if messages.is_empty() {
            match tokio::time::timeout_at(deadline, session.next(remaining)).await {
                Ok(event) => event?,
                Err(_) => break,
            }
        } else {
            match session.next(remaining).now_or_never() {
                Some(event) => event?,
                None => break,
            }
        };
        if let SessionEvent::Delivery(delivery) = event {
            commit.insert(
                delivery.partition,
                delivery.base_offset + u64::from(delivery.skip + delivery.count),
            );
            messages.extend(MessageOut::from_delivery(&delivery)?);
        }
    }
    Ok(Taken {
        messages,
        commit: commit
            .into_iter()
            .map(|(partition, offset)| PartitionOffset { partition, offset })
            .collect(),
    })
}
