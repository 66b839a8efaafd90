//! `rapidmq request TOPIC VALUE` and `rapidmq reply TOPIC [VALUE]`: request/reply from the shell,
//! through the SDK's `Client::request` and `Client::reply` (docs/sdk-conformance.md, C27).
//!
//! `request` sends one request and prints the reply (its value, or the JSON object `consume`
//! prints); no reply within `--timeout` is an error. `reply` answers the requests of a queue
//! subscription, each with the same value or (`--echo`) with the request itself, acking each
//! answered one, until Ctrl-C or `-n`. A message that is no request is nacked (so it is
//! dead-lettered after the subscription's `max_deliveries`); one whose requester has gone (its
//! inbox was deleted) is acked without a reply. Both are reported on stderr.

use anyhow::bail;
use bytes::Bytes;
use rapidmq::{ErrorCode, Message, ReceivedMessage};

use super::consume::write_message;
use super::{Ctx, SdkResult};
use crate::output::Stdout;
use crate::parse::{HeaderArg, HumanDuration, Position};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    rapidmq request prices EURUSD                       # prints the reply's value\n  \
    rapidmq request prices EURUSD --timeout 500ms -o json\n  \
    rapidmq request orders '{\"id\":7}' --key customer-7 --header source=cli")]
pub struct RequestArgs {
    /// Topic the request goes to (its responders consume it).
    topic: String,
    /// The request's value.
    value: String,
    /// Message key: requests with the same key go to the same partition, in order.
    #[arg(long, short = 'k')]
    key: Option<String>,
    /// A header, KEY=VALUE; repeat for more.
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE")]
    headers: Vec<HeaderArg>,
    /// How long to wait for the send and the reply.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    timeout: HumanDuration,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    rapidmq reply prices 1.0842                         # answer every request with 1.0842\n  \
    rapidmq reply prices --echo -n 1                    # answer one request with itself\n  \
    rapidmq reply orders ok --subscription order-svc -o json   # log each request as JSON")]
pub struct ReplyArgs {
    /// Topic whose requests to answer.
    topic: String,
    /// The value of every reply (or --echo).
    #[arg(required_unless_present = "echo", conflicts_with = "echo")]
    value: Option<String>,
    /// Reply with each request's own key, value and headers.
    #[arg(long)]
    echo: bool,
    /// The queue subscription the responders share (created on first use).
    #[arg(long, short = 's', default_value = "responders")]
    subscription: String,
    /// Where a new subscription starts: earliest, latest, OFFSET, @EPOCH_MS, RFC 3339 time or
    /// -DURATION.
    #[arg(long, value_name = "POSITION", default_value = "latest")]
    from: Position,
    /// Stop after answering this many requests.
    #[arg(long, short = 'n')]
    count: Option<u64>,
}

pub async fn run_request(ctx: &Ctx, args: RequestArgs) -> anyhow::Result<()> {
    let client = ctx.connect().await?;
    let mut request = Message::new(args.value);
    if let Some(key) = args.key {
        request = request.with_key(key);
    }
    for h in args.headers {
        request = request.with_header(h.key, h.value);
    }
    let answer = client.request(args.topic, request, args.timeout.0).await;
    let closed = client.close().await;
    let reply = answer.cli(ctx)?;
    closed.cli(ctx)?;
    let mut out = Stdout::new();
    write_message(ctx.format, &reply, 1, &mut out)?;
    Ok(out.flush()?)
}

pub async fn run_reply(ctx: &Ctx, args: ReplyArgs) -> anyhow::Result<()> {
    if args.count == Some(0) {
        bail!("--count must be at least 1");
    }
    let client = ctx.connect().await?;
    let consumer = client
        .queue_consumer(args.topic.clone())
        .subscription(args.subscription.clone())
        .start(args.from.0)
        .auto_ack(false)
        .subscribe()
        .await
        .cli(ctx)?;
    let mut out = Stdout::new();
    let mut answered = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let result: anyhow::Result<()> = async {
        while args.count.is_none_or(|n| answered < n) {
            let max = args.count.map_or(100, |n| (n - answered).min(100)) as usize;
            let deliveries = tokio::select! {
                polled = consumer.poll(max, std::time::Duration::from_secs(1)) => polled.cli(ctx)?,
                _ = &mut ctrl_c => return Ok(()),
            };
            for delivery in deliveries {
                let request = &delivery.message;
                let reply = match &args.value {
                    Some(value) => Message::new(value.clone()),
                    None => echo(request),
                };
                match client.reply(request, reply).await {
                    Ok(_) => {
                        consumer.ack(&delivery.receipt).cli(ctx)?;
                        write_message(ctx.format, request, delivery.attempt, &mut out)?;
                        out.flush()?;
                        answered += 1;
                    }
                    Err(err) if err.code() == ErrorCode::InvalidArgument => {
                        eprintln!(
                            "{} partition {} offset {}: not a request (no reply-to); nacked",
                            request.topic, request.partition, request.offset
                        );
                        consumer
                            .nack(&delivery.receipt, std::time::Duration::ZERO)
                            .cli(ctx)?;
                    }
                    Err(err) if err.code() == ErrorCode::TopicNotFound => {
                        eprintln!(
                            "{} partition {} offset {}: the requester has gone; acked unanswered",
                            request.topic, request.partition, request.offset
                        );
                        consumer.ack(&delivery.receipt).cli(ctx)?;
                    }
                    Err(err) => return Err(err).cli(ctx),
                }
            }
        }
        Ok(())
    }
    .await;
    let flushed = out.flush();
    let closed = client.close().await.cli(ctx);
    result?;
    flushed?;
    closed
}

/// A reply carrying the request's key, value and headers, without the ones request/reply adds.
fn echo(request: &ReceivedMessage) -> Message {
    let mut reply = Message::new(Bytes::clone(&request.value));
    if let Some(key) = &request.key {
        reply = reply.with_key(key.clone());
    }
    for (name, value) in &request.headers {
        if name != rapidmq::REPLY_TO_HEADER && name != rapidmq::CORRELATION_ID_HEADER {
            reply = reply.with_header(name.clone(), value.clone());
        }
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_keeps_the_request_but_its_request_headers() {
        let request = ReceivedMessage {
            topic: "t".into(),
            partition: 0,
            offset: 3,
            key: Some(Bytes::new()),
            value: Bytes::from_static(b"\xff v"),
            headers: vec![
                ("a".into(), Bytes::from_static(b"1")),
                (
                    rapidmq::REPLY_TO_HEADER.into(),
                    Bytes::from_static(b"_inbox.x"),
                ),
                (
                    rapidmq::CORRELATION_ID_HEADER.into(),
                    Bytes::from_static(b"c"),
                ),
                ("b".into(), Bytes::new()),
            ],
            timestamp_ms: 0,
            append_time_ms: 0,
            deliver_at_ms: None,
            ttl: None,
            priority: 0,
        };
        let reply = echo(&request);
        assert_eq!(reply.key, Some(Bytes::new()));
        assert_eq!(reply.value, request.value);
        assert_eq!(
            reply.headers,
            vec![
                ("a".into(), Bytes::from_static(b"1")),
                ("b".into(), Bytes::new())
            ]
        );
    }
}
