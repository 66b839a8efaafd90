//! Consuming over a WebSocket: `GET .../subscriptions/{s}/ws` upgrades, then the broker sends
//! messages within the credits the client grants, and the client settles over the same socket.
//!
//! Client frames (JSON text), each with an optional `id` the broker echoes in a `done` reply:
//! `{"op":"credit","messages":N}`, `{"op":"ack","receipts":[..]}`,
//! `{"op":"nack","receipts":[..],"delay_ms":N}`, `{"op":"extend","receipts":[..],"extend_ms":N}`,
//! `{"op":"commit","offsets":[{"partition":P,"offset":O}]}`.
//!
//! Broker frames: `{"type":"messages","messages":[..]}`, `{"type":"done","id":N}`, and
//! `{"type":"error","id":N,"problem":{..}}` (the socket stays open unless the session ended).
//! This is the gRPC `Consume` stream over JSON.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use rapidmq_proto::ErrorCode;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::acks::{PartitionOffset, receipts, unknown_receipts};
use super::error::{ApiError, Path, Problem, Query};
use super::live::Live;
use super::messages::{MessageOut, Receipt};
use super::{RestState, live};
use crate::engine::{Session, Settlement};
use crate::principal::Principal;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SocketQuery {
    /// The consumer's name, shown by describe (default `rest-ws`).
    pub consumer: Option<String>,
    /// Messages the broker may send before the client grants more (default 100).
    #[param(minimum = 1)]
    pub credits: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum ClientFrame {
    Credit {
        id: Option<u64>,
        messages: u32,
    },
    Ack {
        id: Option<u64>,
        receipts: Vec<Receipt>,
    },
    Nack {
        id: Option<u64>,
        receipts: Vec<Receipt>,
        #[serde(default)]
        delay_ms: u64,
    },
    Extend {
        id: Option<u64>,
        receipts: Vec<Receipt>,
        extend_ms: u64,
    },
    Commit {
        id: Option<u64>,
        offsets: Vec<PartitionOffset>,
    },
}

impl ClientFrame {
    fn id(&self) -> Option<u64> {
        match self {
            ClientFrame::Credit { id, .. }
            | ClientFrame::Ack { id, .. }
            | ClientFrame::Nack { id, .. }
            | ClientFrame::Extend { id, .. }
            | ClientFrame::Commit { id, .. } => *id,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ServerFrame {
    Messages {
        messages: Vec<MessageOut>,
    },
    Done {
        id: u64,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        problem: Problem,
    },
}

/// Consumes a subscription over a WebSocket.
#[utoipa::path(get, path = "/v1/topics/{topic}/subscriptions/{subscription}/ws", tag = "consume",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$"), ("subscription" = String, Path, description = "Subscription name", pattern = r"^[A-Za-z0-9._-]{1,200}$"), SocketQuery),
    responses(
        (status = 101, description = "Switching protocols: JSON frames as described in docs/rest.md"),
        (status = "default", description = "An error (RFC 9457), e.g. a request without WebSocket upgrade headers", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn socket(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path((topic, subscription)): Path<(String, String)>,
    Query(query): Query<SocketQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|rejection| {
        let status = if rejection.status().is_client_error() {
            rejection.status()
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError::with_status(ErrorCode::MalformedRequest, status, rejection.body_text())
    })?;
    let credits = query.credits.unwrap_or(100);
    if credits == 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidCredits,
            "credits must be at least 1",
        ));
    }
    let consumer = query.consumer.unwrap_or_else(|| "rest-ws".to_string());
    let permit = state.live_session_permit()?;
    let session = live::open(&state, &principal, &topic, &subscription, &consumer).await?;
    Ok(upgrade.on_upgrade(move |socket| async move {
        let _permit = permit;
        run(
            socket,
            state,
            principal,
            topic,
            subscription,
            session,
            credits,
        )
        .await
    }))
}

fn text(frame: &ServerFrame) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(frame).unwrap_or_default(),
    ))
}

async fn run(
    socket: WebSocket,
    state: Arc<RestState>,
    principal: Principal,
    topic: String,
    subscription: String,
    mut session: Live,
    mut credits: u32,
) {
    let engine = &state.engine;
    let (mut sink, mut inbound) = socket.split();
    loop {
        let reply = tokio::select! {
            incoming = inbound.next() => {
                let frame = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(Message::Binary(_))) => {
                        let err = ApiError::new(ErrorCode::MalformedRequest, "frames are JSON text");
                        if sink.send(text(&ServerFrame::Error { id: None, problem: err.problem() })).await.is_err() { return; }
                        continue;
                    }
                    Some(Ok(_)) => continue,
                };
                let frame: ClientFrame = match serde_json::from_str(frame.as_str()) {
                    Ok(frame) => frame,
                    Err(err) => {
                        let err = ApiError::new(ErrorCode::MalformedRequest, format!("unreadable frame: {err}"));
                        if sink.send(text(&ServerFrame::Error { id: None, problem: err.problem() })).await.is_err() { return; }
                        continue;
                    }
                };
                let id = frame.id();
                let outcome = match frame {
                    ClientFrame::Credit { messages: 0, .. } => Err(ApiError::new(ErrorCode::InvalidCredits, "a credit must grant at least 1 message")),
                    ClientFrame::Credit { messages, .. } => {
                        credits = credits.saturating_add(messages);
                        Ok(())
                    }
                    other => settle(&state, &principal, &topic, &subscription, &session, other).await,
                };
                match (outcome, id) {
                    (Ok(()), Some(id)) => Some(ServerFrame::Done { id }),
                    (Ok(()), None) => None,
                    (Err(err), id) => Some(ServerFrame::Error { id, problem: err.problem() }),
                }
            }
            result = live::next(engine, &mut session, credits), if credits > 0 => {
                match result {
                    Ok(messages) if messages.is_empty() => None,
                    Ok(messages) => {
                        credits = credits.saturating_sub(messages.len() as u32);
                        Some(ServerFrame::Messages { messages })
                    }
                    Err(err) => {
                        let problem = err.problem();
                        let _ = sink.send(text(&ServerFrame::Error { id: None, problem })).await;
                        let _ = sink.close().await;
                        return;
                    }
                }
            }
        };
        if let Some(reply) = reply
            && sink.send(text(&reply)).await.is_err()
        {
            return;
        }
    }
}

/// Acks, nacks, extensions and commits, checked against the session's mode as on gRPC.
async fn settle(
    state: &RestState,
    principal: &Principal,
    topic: &str,
    subscription: &str,
    session: &Live,
    frame: ClientFrame,
) -> Result<(), ApiError> {
    let engine = &state.engine;
    let session = match session {
        Live::Here(session) => &**session,
        Live::Relayed(relayed) => match relayed.coordinator {
            Some(node) => {
                return commit_relayed(
                    state,
                    principal,
                    (topic, subscription),
                    relayed,
                    node,
                    frame,
                )
                .await;
            }
            None => return settle_relayed(state, principal, topic, subscription, frame).await,
        },
    };
    match (session, frame) {
        (Session::Queue(queue), ClientFrame::Ack { receipts: r, .. }) => {
            unknown_receipts(queue.ack(&receipts(&r)))
        }
        (
            Session::Queue(queue),
            ClientFrame::Nack {
                receipts: r,
                delay_ms,
                ..
            },
        ) => unknown_receipts(queue.nack(engine, &receipts(&r), delay_ms).await?),
        (
            Session::Queue(queue),
            ClientFrame::Extend {
                receipts: r,
                extend_ms,
                ..
            },
        ) => unknown_receipts(queue.extend(engine, &receipts(&r), extend_ms)?),
        (Session::Stream(stream), ClientFrame::Commit { offsets, .. }) => {
            let offsets: Vec<(u32, u64)> =
                offsets.iter().map(|o| (o.partition, o.offset)).collect();
            Ok(engine
                .commit(principal, topic, subscription, &offsets, stream.member_id())
                .await?)
        }
        (Session::Queue(_), ClientFrame::Commit { .. }) => Err(queue_commit()),
        (Session::Stream(_), _) => Err(stream_settle()),
        (_, ClientFrame::Credit { .. }) => Ok(()),
    }
}

fn stream_settle() -> ApiError {
    ApiError::new(
        ErrorCode::SubscriptionModeMismatch,
        "ack, nack and deadline extension are for queue subscriptions; stream subscriptions commit offsets",
    )
}

/// Committing through a relayed stream session (cluster mode): on the coordinator `node`, as
/// the group member its kept session is.
async fn commit_relayed(
    state: &RestState,
    principal: &Principal,
    (topic, subscription): (&str, &str),
    relayed: &live::Relayed,
    node: u64,
    frame: ClientFrame,
) -> Result<(), ApiError> {
    let offsets = match frame {
        ClientFrame::Commit { offsets, .. } => offsets,
        ClientFrame::Credit { .. } => return Ok(()),
        _ => return Err(stream_settle()),
    };
    let Some(cluster) = &state.cluster else {
        return Err(crate::Error::internal("a relayed session outside cluster mode").into());
    };
    let names = (topic, subscription, relayed.consumer.as_str());
    super::relay::commit_stream(cluster, node, principal, names, offsets).await
}

fn queue_commit() -> ApiError {
    ApiError::new(
        ErrorCode::SubscriptionModeMismatch,
        "this is a queue subscription: ack messages instead of committing offsets",
    )
}

/// Settling through a relayed queue session (cluster mode): each receipt on its partition's
/// leader, as the ack endpoint does.
async fn settle_relayed(
    state: &RestState,
    principal: &Principal,
    topic: &str,
    subscription: &str,
    frame: ClientFrame,
) -> Result<(), ApiError> {
    let (list, how) = match frame {
        ClientFrame::Ack { receipts, .. } => (receipts, Settlement::Ack),
        ClientFrame::Nack {
            receipts, delay_ms, ..
        } => (receipts, Settlement::Nack { delay_ms }),
        ClientFrame::Extend {
            receipts,
            extend_ms,
            ..
        } => (receipts, Settlement::Extend { extend_ms }),
        ClientFrame::Commit { .. } => return Err(queue_commit()),
        ClientFrame::Credit { .. } => return Ok(()),
    };
    let Some(cluster) = &state.cluster else {
        return Err(crate::Error::internal("a relayed session outside cluster mode").into());
    };
    let unknown =
        super::relay::settle(state, cluster, principal, topic, subscription, &list, how).await?;
    unknown_receipts(unknown)
}
