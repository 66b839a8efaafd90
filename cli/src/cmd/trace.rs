//! `rapidmq trace`: the broker's recent flow events of a message (published, scheduled,
//! deduplicated, delivered, dead-lettered), found by `msg-id` header, key or traceparent.
//!
//! Flow events are served by the REST API (`GET /v1/flow-events`) on the broker's HTTP
//! listener, so this command talks HTTP to `--http` (or the context's `http`), not gRPC to
//! `--server`. An `https://` listener is reached with the same TLS flags as gRPC (`--tls-ca`,
//! `--tls-cert`, `--tls-key`, `--tls-server-name`), and the credentials go along.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use super::Ctx;
use crate::output::{self, Stdout, rfc3339};

/// Default HTTP listener of a local broker.
const DEFAULT_HTTP: &str = "http://127.0.0.1:7421";

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Messages are traced when they carry a `traceparent` or `msg-id` header (or every\n\
    message, with observability.flow_all_messages = true on the broker).\n\n\
    Examples:\n  rapidmq trace --msg-id order-17\n  rapidmq trace --key customer-7 --topic orders\n  \
    rapidmq trace --traceparent 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 -o json\n  \
    rapidmq trace --http http://10.0.0.5:7421 --msg-id order-17\n  \
    rapidmq trace --http https://broker.internal:7421 --tls-ca ca.pem --msg-id order-17"
)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["msg_id", "key", "traceparent"])))]
pub struct TraceArgs {
    /// The message's `msg-id` header.
    #[arg(long, value_name = "ID")]
    msg_id: Option<String>,
    /// The message key.
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// The message's W3C traceparent header.
    #[arg(long, value_name = "TRACEPARENT")]
    traceparent: Option<String>,
    /// Only events on this topic.
    #[arg(long, value_name = "TOPIC")]
    topic: Option<String>,
    /// Most events to show, the newest (1 to 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: u32,
    /// The broker's HTTP listener (`https://` uses the --tls-* flags) [default: the context's
    /// `http`, else http://127.0.0.1:7421].
    #[arg(long, env = "RAPIDMQ_HTTP", value_name = "URL")]
    http: Option<String>,
}

/// A failed request: a TLS handshake failure says what to fix (as for gRPC); anything else
/// means the listener could not be reached.
fn http_error(base: &str, err: reqwest::Error) -> anyhow::Error {
    match rapidmq::Error::tls_handshake_failure(base, &err) {
        Some(tls) => anyhow::anyhow!("{}: {tls}", tls.code()),
        None => anyhow::Error::new(err.without_url()).context(format!(
            "cannot reach the broker's HTTP listener at {base}: is it running? (--http)"
        )),
    }
}

pub async fn run(ctx: &Ctx, args: TraceArgs) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    let base = ctx.http_base(args.http.as_deref(), DEFAULT_HTTP);
    let mut query: Vec<(&str, String)> = vec![("limit", args.limit.to_string())];
    for (name, value) in [
        ("msg_id", &args.msg_id),
        ("key", &args.key),
        ("traceparent", &args.traceparent),
        ("topic", &args.topic),
    ] {
        if let Some(value) = value {
            query.push((name, value.clone()));
        }
    }
    let (http, base_url) = ctx.http_client(&base, Duration::from_secs(10)).await?;
    let response = http
        .get(format!(
            "{}/v1/flow-events",
            base_url.as_str().trim_end_matches('/')
        ))
        .query(&query)
        .send()
        .await
        .map_err(|err| http_error(&base, err))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("{base} did not answer with JSON (HTTP {status})"))?;
    if !status.is_success() {
        let name = body["name"].as_str().unwrap_or("ERROR");
        let detail = body["detail"].as_str().unwrap_or("request failed");
        anyhow::bail!("{name}: {detail}");
    }
    let events = body["events"].as_array().cloned().unwrap_or_default();
    let mut out = Stdout::new();
    if ctx.json() {
        out.json_pretty(&Value::Array(events))?;
    } else if events.is_empty() {
        let capacity = body["capacity"].as_u64().unwrap_or(0);
        if capacity == 0 {
            out.line("no flow events: the broker records none (observability.flow_events = 0)")?;
        } else {
            out.line(format!(
                "no flow events match (the broker keeps the last {capacity}; only messages with a traceparent or msg-id header are traced)"
            ))?;
        }
    } else {
        let mut table = output::table([
            "Time",
            "Event",
            "Topic",
            "Partition",
            "Offset",
            "Subscription",
            "Attempt",
            "Msg-id",
            "Key",
        ]);
        let text = |v: &Value| match v {
            Value::Null => "-".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for e in &events {
            table.add_row(vec![
                rfc3339(e["time_ms"].as_i64().unwrap_or(0)),
                text(&e["kind"]),
                text(&e["topic"]),
                text(&e["partition"]),
                text(&e["offset"]),
                text(&e["subscription"]),
                text(&e["attempt"]),
                text(&e["msg_id"]),
                text(&e["key"]),
            ]);
        }
        output::print_table(&mut out, &table)?;
        if let Some(tp) = events.iter().find_map(|e| e["traceparent"].as_str()) {
            out.line(format!("traceparent: {tp}"))?;
        }
    }
    out.flush()?;
    Ok(())
}
