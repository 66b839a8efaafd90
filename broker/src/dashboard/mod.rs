//! The dashboard: one page served at `/` on the HTTP listener, embedded in the binary (plain
//! HTML, CSS and JavaScript written for RapidMQ — no CDN, no third-party code, works offline),
//! fed by a Server-Sent Events stream of overview snapshots at `/dashboard/events`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use futures::Stream;
use serde::Deserialize;

use crate::engine::Engine;
use crate::observability::overview::Sampler;

const INDEX: &str = include_str!("index.html");
const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("app.js");

/// Fastest and slowest refresh a client may ask for, in ms.
const MIN_INTERVAL_MS: u64 = 200;
const MAX_INTERVAL_MS: u64 = 10_000;

/// `/`, its assets and its event stream.
pub fn routes(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route(
            "/dashboard/style.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }),
        )
        .route(
            "/dashboard/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    SCRIPT,
                )
            }),
        )
        .route("/dashboard/events", get(events))
        .with_state(engine)
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    /// Refresh interval in ms (default 1000).
    interval_ms: Option<u64>,
}

/// One `overview` event per interval: rates over the interval, latency quantiles, topics,
/// subscriptions and health.
async fn events(
    State(engine): State<Arc<Engine>>,
    Query(query): Query<EventsQuery>,
) -> impl IntoResponse {
    let interval = Duration::from_millis(
        query
            .interval_ms
            .unwrap_or(1000)
            .clamp(MIN_INTERVAL_MS, MAX_INTERVAL_MS),
    );
    Sse::new(stream(engine, interval)).keep_alive(KeepAlive::default())
}

fn stream(
    engine: Arc<Engine>,
    interval: Duration,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let sampler = Sampler::new(&*engine);
    // The first snapshot goes out one interval in, so its rates cover a whole interval.
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures::stream::unfold(
        (engine, sampler, ticker),
        move |(engine, mut sampler, mut ticker)| async move {
            ticker.tick().await;
            let overview = sampler.sample(&*engine);
            let event = Event::default()
                .event("overview")
                .json_data(&overview)
                .unwrap_or_else(|_| Event::default().comment("unencodable overview"));
            Some((Ok(event), (engine, sampler, ticker)))
        },
    )
}
