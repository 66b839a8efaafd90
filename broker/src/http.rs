//! The HTTP listener: liveness and readiness, Prometheus metrics at `/metrics`, the dashboard at
//! `/`, and the REST API under `/v1` with its hygiene layers (body size limit, timeout,
//! concurrency limit, problem+json for every error, gzip, optional CORS). Every route but the
//! health checks answers only requests whose `Host` it knows (see [`HostCheck`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use rapidmq_proto::{AUTH_REASON_METADATA, ErrorCode, QUOTA_METADATA, TENANT_METADATA};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::auth::{AuthLayer, HttpReject};
use crate::budget::PublishBudget;
use crate::config::Config;
use crate::engine::Engine;
use crate::observability::exposition;
use crate::rest::error::{ApiError, method_not_allowed, not_found, problem_fallback};
use crate::{dashboard, rest};

/// Routes served on the HTTP listener. `ready` is true while the broker accepts requests;
/// `requests` holds one permit per request being handled (shared with gRPC).
pub fn router(
    ready: Arc<AtomicBool>,
    engine: Arc<Engine>,
    config: &Config,
    publish_budget: PublishBudget,
    requests: Arc<Semaphore>,
    cluster: rest::cluster::ClusterHandle,
) -> Router {
    let api = rest::router(engine.clone(), config, publish_budget, cluster)
        .method_not_allowed_fallback(method_not_allowed)
        // A request beyond `limits.max_concurrent_requests` is refused at once, not queued.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    ApiError::from(crate::budget::too_many_requests())
                }))
                .layer(LoadShedLayer::new())
                .layer(GlobalConcurrencyLimitLayer::with_semaphore(requests)),
        )
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
        .merge(api)
        .merge(dashboard.unwrap_or_default())
        .fallback(not_found)
        // Inside the Host check: a request from an unknown Host is refused before its
        // credentials are looked at.
        .layer(AuthLayer::<HttpReject>::new(engine.auth().clone()))
        .layer(from_fn_with_state(
            Arc::new(HostCheck::new(config)),
            check_host,
        ))
        // Health checks answer any `Host`: probes address the broker by IP or pod name, and
        // they reveal nothing.
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz).with_state((ready, engine.clone())))
        .layer(CompressionLayer::new().gzip(true));
    match cors(&config.http.cors_allowed_origins) {
        Some(cors) => app.layer(cors),
        None => app,
    }
}

/// Which `Host` headers the listener answers. A web page can point a DNS name it controls at
/// 127.0.0.1 (DNS rebinding) and then call a local broker as a same-origin site; its requests
/// carry that name in `Host`. Answering only known names (and IP literals, which a rebinding
/// page cannot use) closes that door.
pub struct HostCheck {
    /// Lower-case names allowed besides `localhost` and IP literals; `*` allows any.
    names: Vec<String>,
}

impl HostCheck {
    pub fn new(config: &Config) -> HostCheck {
        HostCheck {
            names: config
                .http
                .allowed_hosts
                .iter()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a request with this `Host` value (name or IP, with an optional port) is answered.
    pub fn allows(&self, host: &str) -> bool {
        if self.names.iter().any(|n| n == "*") {
            return true;
        }
        let name = match host.strip_prefix('[') {
            // `[::1]:7421`: an IPv6 literal.
            Some(rest) => {
                let Some((ip, after)) = rest.split_once(']') else {
                    return false;
                };
                let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
                return port_ok && ip.parse::<std::net::Ipv6Addr>().is_ok();
            }
            None => match host.rsplit_once(':') {
                Some((name, port)) if is_port(port) => name,
                _ => host,
            },
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name.parse::<std::net::IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.contains(&name)
    }
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Answers `403` to a request whose `Host` is not allowed (or missing, in HTTP/1.1 terms).
async fn check_host(State(hosts): State<Arc<HostCheck>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_string()));
    match host {
        Some(host) if hosts.allows(&host) => next.run(request).await,
        _ => ApiError::with_status(
            ErrorCode::PermissionDenied,
            StatusCode::FORBIDDEN,
            "this Host is not one the broker answers to; add it to http.allowed_hosts",
        )
        .into_response(),
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
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static(TENANT_METADATA),
            ])
            // A browser hides response headers not listed here: a web client needs
            // `rapidmq-auth-reason: expired` to know it should log in again, and `retry-after`
            // to know when to retry.
            .expose_headers([
                HeaderName::from_static(AUTH_REASON_METADATA),
                HeaderName::from_static(QUOTA_METADATA),
                header::RETRY_AFTER,
            ]),
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
        tenant = tracing::field::Empty,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names_ip_literals_and_configured_names_are_allowed() {
        let mut config = Config::default();
        config.http.allowed_hosts = vec!["Broker.Internal".into()];
        let hosts = HostCheck::new(&config);
        for ok in [
            "localhost",
            "localhost:7421",
            "LOCALHOST.",
            "app.localhost:80",
            "127.0.0.1:7421",
            "10.1.2.3",
            "[::1]:7421",
            "[::1]",
            "broker.internal:7421",
            "broker.internal",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:7421",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "[::1].evil.example",
            "",
        ] {
            assert!(!hosts.allows(refused), "{refused}");
        }
        config.http.allowed_hosts = vec!["*".into()];
        assert!(HostCheck::new(&config).allows("evil.example"));
    }
}
