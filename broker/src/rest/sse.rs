//! Consuming as Server-Sent Events: `GET .../subscriptions/{s}/events` streams one `message`
//! event per message (its `id` is `partition-offset`), for as long as the client reads.
//!
//! SSE only flows from the broker, so settling goes through the ordinary endpoints: `commit`
//! (stream mode) and `ack`/`nack`/`extend` with the receipts carried by the events (queue mode).
//! A fatal error ends the stream with an `error` event holding a problem document.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use utoipa::IntoParams;

use super::error::{ApiError, Path, Problem, Query};
use super::{RestState, live};
use crate::principal::Principal;

/// Messages taken from the session per step.
const STEP: u32 = 100;
/// Events buffered before the session waits for the client to read.
const DEPTH: usize = 64;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// The consumer's name, shown by describe (default `rest-sse`).
    pub consumer: Option<String>,
}

/// Streams a subscription's messages as Server-Sent Events.
#[utoipa::path(get, path = "/v1/topics/{topic}/subscriptions/{subscription}/events", tag = "consume",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9._-]{1,200}$"), ("subscription" = String, Path, description = "Subscription name", pattern = r"^[A-Za-z0-9._-]{1,200}$"), StreamQuery),
    responses(
        (status = 200, description = "An event stream: `event: message` with a Message as JSON data, `event: error` with a Problem", content_type = "text/event-stream", body = String),
        (status = "default", description = "An error (RFC 9457)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn events(
    principal: Principal,
    State(state): State<Arc<RestState>>,
    Path((topic, subscription)): Path<(String, String)>,
    Query(query): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let consumer = query.consumer.unwrap_or_else(|| "rest-sse".to_string());
    let permit = state.live_session_permit()?;
    let mut session = live::open(&state, &principal, &topic, &subscription, &consumer).await?;
    let (tx, rx) = mpsc::channel::<Event>(DEPTH);
    let engine = state.engine.clone();
    tokio::spawn(async move {
        let _permit = permit;
        loop {
            let result = tokio::select! {
                _ = tx.closed() => return,
                result = live::next(&engine, &mut session, STEP) => result,
            };
            match result {
                Ok(messages) => {
                    for m in messages {
                        let event = Event::default()
                            .event("message")
                            .id(format!("{}-{}", m.partition, m.offset))
                            .json_data(&m);
                        let Ok(event) = event else { continue };
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                }
                Err(err) => {
                    let problem = err.problem();
                    if let Ok(event) = Event::default().event("error").json_data(&problem) {
                        let _ = tx.send(event).await;
                    }
                    return;
                }
            }
        }
    });
    Ok(Sse::new(ReceiverStream::new(rx).map(Ok)).keep_alive(KeepAlive::default()))
}
