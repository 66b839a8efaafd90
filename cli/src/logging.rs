//! Installs the tracing subscriber for the binary: `RAPIDMQ_LOG` (or `RUST_LOG`) filters, default
//! `rapidmq=info,tower_http=info`; JSON lines when the log format is `json`; and, when
//! `observability.otlp_endpoint` is set, an OpenTelemetry layer exporting the broker's spans
//! (`rapidmq=debug`: requests, publish, commit, deliver) over OTLP/HTTP.

use std::io::IsTerminal as _;
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub const DEFAULT_FILTER: &str = "rapidmq=info,tower_http=info";

/// What OTLP export records: the broker's spans down to `debug`.
const OTLP_FILTER: &str = "rapidmq=debug";

/// How long one OTLP export may take.
const OTLP_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps span export running; dropping it flushes the spans still buffered.
pub struct Logging {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Logging {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Logging, plus OTLP/HTTP span export to `otlp_endpoint` (e.g. `http://127.0.0.1:4318`) unless
/// it is empty.
pub fn init_with_export(json: bool, otlp_endpoint: &str) -> anyhow::Result<Logging> {
    let filter = std::env::var("RAPIDMQ_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    // Colour only on a terminal: a log file or a pipe to journald must stay plain text.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let fmt = if json {
        fmt.json().with_filter(filter).boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    let (otel, provider) = if otlp_endpoint.is_empty() {
        (None, None)
    } else {
        let provider = otlp_provider(otlp_endpoint)?;
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("rapidmq"))
            .with_filter(EnvFilter::new(OTLP_FILTER));
        (Some(layer), Some(provider))
    };
    tracing_subscriber::registry().with(fmt).with(otel).init();
    if let Some(endpoint) = provider.as_ref().map(|_| otlp_endpoint) {
        tracing::info!(endpoint, "exporting spans over OTLP/HTTP");
    }
    Ok(Logging { provider })
}

/// For the client commands: logs of the client core (retries, reroutes, reconnects) to stderr,
/// only when `RAPIDMQ_LOG` names a filter (e.g. `RAPIDMQ_LOG=rapidmq_core=debug rapidmq bench
/// pub ...`); without it a command prints its own output only.
pub fn init_client() {
    let Some(filter) = std::env::var("RAPIDMQ_LOG")
        .ok()
        .and_then(|spec| EnvFilter::try_new(spec).ok())
    else {
        return;
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter);
    tracing_subscriber::registry().with(fmt).init();
}

fn otlp_provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let client = reqwest::blocking::Client::builder()
        .timeout(OTLP_TIMEOUT)
        .build()
        .context("cannot build the OTLP HTTP client")?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(BlockingHttp(client))
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_timeout(OTLP_TIMEOUT)
        .build()
        .context("cannot set up OTLP span export")?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("rapidmq").build())
        .build())
}

/// The OTLP exporter's HTTP client: the workspace's reqwest, blocking. The batch span processor
/// exports from a thread of its own, outside the tokio runtime, where blocking is fine.
#[derive(Debug)]
struct BlockingHttp(reqwest::blocking::Client);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for BlockingHttp {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<
        opentelemetry_http::Response<opentelemetry_http::Bytes>,
        opentelemetry_http::HttpError,
    > {
        let (parts, body) = request.into_parts();
        let response = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body.to_vec())
            .send()?;
        let mut answer = opentelemetry_http::Response::builder().status(response.status());
        if let Some(headers) = answer.headers_mut() {
            *headers = response.headers().clone();
        }
        Ok(answer.body(response.bytes()?)?)
    }
}
