//! The HTTP listener: liveness and readiness, Prometheus metrics at `/metrics`, the dashboard at
//! `/`, and the REST API under `/v1` with its hygiene layers (body size limit, timeout,
//! problem+json for every error, gzip, optional CORS).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::Config;
use crate::engine::Engine;
use crate::observability::exposition;
use crate::rest::error::{method_not_allowed, not_found, problem_fallback};
use crate::{dashboard, rest};

/// Routes served on the HTTP listener. `ready` is true while the broker accepts requests.
pub fn router(ready: Arc<AtomicBool>, engine: Arc<Engine>, config: &Config) -> Router {
    let api = rest::router(engine.clone(), config)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(config.http.request_timeout_ms),
        ))
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(config.limits.max_request_bytes))
        // Outermost, so that the answers of the layers above become problems too.
        .layer(map_response(problem_fallback))
        .layer(from_fn(request_span));
    let registry = Arc::new(exposition::registry(&engine));
    let dashboard = config
        .observability
        .dashboard
        .then(|| dashboard::routes(engine.clone()));
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move { metrics(&registry) }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state((ready, engine.clone()))
        .merge(api)
        .merge(dashboard.unwrap_or_default())
        .fallback(not_found)
        .layer(CompressionLayer::new().gzip(true));
    match cors(&config.http.cors_allowed_origins) {
        Some(cors) => app.layer(cors),
        None => app,
    }
}

/// CORS for the configured origins; none configured means no CORS headers at all.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        // Config validation has checked that every origin is a valid header value.
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([header::CONTENT_TYPE]),
    )
}

/// One span per REST request, with the caller's tenant and the route; the handlers' own spans
/// (topic, subscription) nest inside it. Answers are logged at debug with their latency.
async fn request_span(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_string(),
        |p| p.as_str().to_string(),
    );
    let span = tracing::info_span!(
        "http",
        method = %request.method(),
        route = %route,
        tenant = %rest::request_tenant(),
    );
    let started = std::time::Instant::now();
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "request answered"
        )
    });
    response
}

/// The Prometheus text exposition.
fn metrics(registry: &Registry) -> Response {
    match exposition::encode(registry) {
        Ok(body) => ([(header::CONTENT_TYPE, exposition::CONTENT_TYPE)], body).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics could not be encoded\n",
        )
            .into_response(),
    }
}

/// 200 while the broker accepts requests and its storage takes writes; 503 while it shuts down
/// or while the disk store is failing writes (until a probe write succeeds again).
async fn readyz(
    State((ready, engine)): State<(Arc<AtomicBool>, Arc<Engine>)>,
) -> (StatusCode, String) {
    if !ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into());
    }
    match engine.not_ready_reason() {
        None => (StatusCode::OK, "ready\n".into()),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}
