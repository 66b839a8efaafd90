//! `rapidmq consume TOPIC`: print messages as raw lines or JSON objects.
//!
//! Consumes through an SDK consumer: ephemeral (no `--subscription`: nothing is committed) or a
//! member of a named subscription, whose position is committed after each message is printed.
//!
//! **When it stops.** With `-n`, after that many messages. Without `--follow`, at the end of the
//! log: the topic's high watermarks are read before subscribing, and the command stops once every
//! partition it owns has been read up to them (when a start offset cannot be known, e.g. a
//! timestamp start on a partition with no newer message, the idle `--timeout` ends it). With
//! `--follow`, it waits for new messages until Ctrl-C or the idle `--timeout`.
//!
//! **Queue mode** (`--mode queue`, with a subscription): deliveries come one by one with their
//! attempt count; each is acked after it is printed, or nacked with `--nack` (redelivered after
//! `--nack-delay`, dead-lettered after the subscription's `max_deliveries`). There is no end of
//! log in queue mode: without `--follow` the command stops at `-n` or after the idle timeout.
//!
//! **Pipes.** Output goes through [`Stdout`]; when the reader goes away (`| head -n 1`) the write
//! fails with a broken pipe, the consumer is closed (committing what was printed) and main exits
//! with success.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::bail;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rapidmq::{Consumer, QueueConsumer, ReceivedMessage, StartPosition};
use serde_json::json;
use tokio::time::Instant;

use super::{Ctx, ModeArg, SdkResult};
use crate::output::{Format, Stdout};
use crate::parse::{HumanDuration, Position};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    rapidmq consume orders                              # everything stored, then exit\n  \
    rapidmq consume orders --follow                     # new messages until Ctrl-C\n  \
    rapidmq consume orders -n 10 --output json\n  \
    rapidmq consume orders --subscription billing --follow\n  \
    rapidmq consume orders --from -10m                  # the last ten minutes\n  \
    rapidmq consume orders --from 1200 | head -n 1\n  \
    rapidmq consume jobs -s workers --mode queue --follow   # ack each delivery\n  \
    rapidmq consume jobs -s workers --mode queue --nack -n 5   # watch redeliveries\n\n\
    JSON objects carry topic, partition, offset, attempt, key, value, headers and timestamps;\n\
    values that are not UTF-8 come as value_base64 instead of value.")]
pub struct ConsumeArgs {
    /// Topic name.
    topic: String,
    /// Join this subscription (created on first use) and commit what is printed. Without it, an
    /// ephemeral consumer that commits nothing.
    #[arg(long, short = 's')]
    subscription: Option<String>,
    /// Delivery mode.
    #[arg(long, value_enum, default_value_t = ModeArg::Stream)]
    mode: ModeArg,
    /// Start: earliest, latest, OFFSET, @EPOCH_MS, RFC 3339 time, or -DURATION. For a named
    /// subscription, used only when this creates it. [default: earliest; latest with --follow]
    #[arg(long, value_name = "POSITION")]
    from: Option<Position>,
    /// Stop after this many messages.
    #[arg(long, short = 'n')]
    count: Option<u64>,
    /// Keep waiting for new messages instead of stopping at the end of the log.
    #[arg(long, short = 'F')]
    follow: bool,
    /// Stop after this long without a message [default: 5s; none with --follow].
    #[arg(long, value_name = "DURATION")]
    timeout: Option<HumanDuration>,
    /// Queue mode: nack every delivery instead of acking it, to test redelivery and dead
    /// letters.
    #[arg(long)]
    nack: bool,
    /// Queue mode: with --nack, redeliver after this delay.
    #[arg(long, value_name = "DURATION", default_value = "0s", requires = "nack")]
    nack_delay: HumanDuration,
    /// A consumer name shown by `sub describe`.
    #[arg(long)]
    name: Option<String>,
}

/// Idle time after which a non-following consume gives up when it cannot tell where the end is.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the stop conditions are re-checked while no message arrives.
const CHECK_INTERVAL: Duration = Duration::from_millis(200);

pub async fn run(ctx: &Ctx, args: ConsumeArgs) -> anyhow::Result<()> {
    if args.count == Some(0) {
        bail!("--count must be at least 1");
    }
    if args.mode == ModeArg::Queue {
        return run_queue(ctx, &args).await;
    }
    if args.nack {
        bail!("--nack applies to queue subscriptions: add --mode queue");
    }
    let start = args.from.map(|p| p.0).unwrap_or(if args.follow {
        StartPosition::Latest
    } else {
        StartPosition::Earliest
    });
    let client = ctx.connect().await?;
    let admin = client.admin();
    let end = if args.follow {
        None
    } else {
        let topic = admin.describe_topic(args.topic.clone()).await.cli(ctx)?;
        let committed = match &args.subscription {
            Some(name) => match admin.describe_subscription(args.topic.clone(), name).await {
                Ok(info) => Some(
                    info.cursors
                        .iter()
                        .map(|c| (c.partition, c.committed_offset))
                        .collect::<HashMap<_, _>>(),
                ),
                Err(err) if err.code() == rapidmq::ErrorCode::SubscriptionNotFound => None,
                Err(err) => return Err(err).cli(ctx),
            },
            None => None,
        };
        Some(EndOfLog::new(&topic, committed.as_ref(), start))
    };
    let prefetch = args.count.unwrap_or(1000).clamp(1, 1000) as u32;
    let mut builder = client
        .consumer(args.topic.clone())
        .start(start)
        .prefetch(prefetch)
        .auto_commit(false);
    if let Some(name) = &args.subscription {
        builder = builder.subscription(name.clone());
    }
    if let Some(name) = &args.name {
        builder = builder.consumer_name(name.clone());
    }
    let consumer = builder.subscribe().await.cli(ctx)?;
    let mut out = Stdout::new();
    let result = consume(ctx, &args, &consumer, end, &mut out).await;
    let flushed = out.flush();
    // Commit what was printed, whatever happened to stdout.
    let closed = consumer.close().await.cli(ctx);
    result?;
    flushed?;
    closed
}

async fn consume(
    ctx: &Ctx,
    args: &ConsumeArgs,
    consumer: &Consumer,
    mut end: Option<EndOfLog>,
    out: &mut Stdout,
) -> anyhow::Result<()> {
    let idle = args
        .timeout
        .map(|t| t.0)
        .or((!args.follow).then_some(DEFAULT_IDLE_TIMEOUT));
    let named = args.subscription.is_some();
    let mut printed = 0u64;
    let mut last_message = Instant::now();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        if args.count.is_some_and(|n| printed >= n) {
            return Ok(());
        }
        if let Some(end) = &end
            && end.reached(&consumer.assignment())
        {
            return Ok(());
        }
        let wait = match idle {
            Some(idle) => {
                let left = idle.saturating_sub(last_message.elapsed());
                if left.is_zero() {
                    return match args.count {
                        Some(n) if args.follow => bail!(
                            "timed out after {idle:?} without a message: received {printed} of {n}"
                        ),
                        _ => Ok(()),
                    };
                }
                left.min(CHECK_INTERVAL)
            }
            None => CHECK_INTERVAL,
        };
        let max = args.count.map_or(1000, |n| (n - printed).min(1000)) as usize;
        let messages = tokio::select! {
            polled = consumer.poll(max, wait) => polled.cli(ctx)?,
            _ = &mut ctrl_c => return Ok(()),
        };
        if messages.is_empty() {
            continue;
        }
        last_message = Instant::now();
        for message in &messages {
            write_message(ctx.format, message, 1, out)?;
            printed += 1;
            if named {
                consumer.ack(message).cli(ctx)?;
            }
            if let Some(end) = &mut end {
                end.advance(message.partition, message.offset + 1);
            }
        }
        out.flush()?;
    }
}

/// `consume --mode queue`: a queue consumer of a named subscription.
async fn run_queue(ctx: &Ctx, args: &ConsumeArgs) -> anyhow::Result<()> {
    let Some(subscription) = &args.subscription else {
        bail!("--mode queue needs a subscription: add --subscription NAME");
    };
    let client = ctx.connect().await?;
    let prefetch = args.count.unwrap_or(100).clamp(1, 100) as u32;
    let mut builder = client
        .queue_consumer(args.topic.clone())
        .subscription(subscription.clone())
        .start(args.from.map_or(StartPosition::Earliest, |p| p.0))
        .prefetch(prefetch)
        .auto_ack(false);
    if let Some(name) = &args.name {
        builder = builder.consumer_name(name.clone());
    }
    let consumer = builder.subscribe().await.cli(ctx)?;
    let mut out = Stdout::new();
    let result = consume_queue(ctx, args, &consumer, &mut out).await;
    let flushed = out.flush();
    let closed = consumer.close().await.cli(ctx);
    result?;
    flushed?;
    closed
}

async fn consume_queue(
    ctx: &Ctx,
    args: &ConsumeArgs,
    consumer: &QueueConsumer,
    out: &mut Stdout,
) -> anyhow::Result<()> {
    let idle = args
        .timeout
        .map(|t| t.0)
        .or((!args.follow).then_some(DEFAULT_IDLE_TIMEOUT));
    let mut printed = 0u64;
    let mut last_message = Instant::now();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        if args.count.is_some_and(|n| printed >= n) {
            return Ok(());
        }
        let wait = match idle {
            Some(idle) => {
                let left = idle.saturating_sub(last_message.elapsed());
                if left.is_zero() {
                    return match args.count {
                        Some(n) if args.follow => bail!(
                            "timed out after {idle:?} without a message: received {printed} of {n}"
                        ),
                        _ => Ok(()),
                    };
                }
                left
            }
            None => CHECK_INTERVAL,
        };
        let max = args.count.map_or(100, |n| (n - printed).min(100)) as usize;
        let deliveries = tokio::select! {
            polled = consumer.poll(max, wait) => polled.cli(ctx)?,
            _ = &mut ctrl_c => return Ok(()),
        };
        if deliveries.is_empty() {
            continue;
        }
        last_message = Instant::now();
        for delivery in &deliveries {
            write_message(ctx.format, &delivery.message, delivery.attempt, out)?;
            printed += 1;
            if args.nack {
                consumer
                    .nack(&delivery.receipt, args.nack_delay.0)
                    .cli(ctx)?;
            } else {
                consumer.ack(&delivery.receipt).cli(ctx)?;
            }
        }
        out.flush()?;
    }
}

pub(crate) fn write_message(
    format: Format,
    m: &ReceivedMessage,
    attempt: u32,
    out: &mut Stdout,
) -> std::io::Result<()> {
    match format {
        Format::Table | Format::Raw => out.bytes_line(&m.value),
        Format::Json => {
            let mut object = json!({
                "topic": m.topic,
                "partition": m.partition,
                "offset": m.offset,
                "attempt": attempt,
                "timestamp_ms": m.timestamp_ms,
                "append_time_ms": m.append_time_ms,
            });
            put_bytes(&mut object, "key", m.key.as_deref());
            put_bytes(&mut object, "value", Some(&m.value));
            object["headers"] = m
                .headers
                .iter()
                .map(|(k, v)| {
                    let mut h = json!({ "key": k });
                    put_bytes(&mut h, "value", Some(v));
                    h
                })
                .collect();
            out.json_line(&object)
        }
    }
}

/// `field` as a UTF-8 string, or `field_base64` when the bytes are not UTF-8; null when absent.
fn put_bytes(object: &mut serde_json::Value, field: &str, bytes: Option<&[u8]>) {
    match bytes.map(std::str::from_utf8) {
        None => object[field] = serde_json::Value::Null,
        Some(Ok(text)) => object[field] = json!(text),
        Some(Err(_)) => {
            object[format!("{field}_base64")] = json!(STANDARD.encode(bytes.unwrap_or(&[])))
        }
    }
}

/// The end of the log as it was when the command started: per partition, the high watermark to
/// reach and the position reached so far (`None` until known).
struct EndOfLog {
    partitions: HashMap<u32, (Option<u64>, u64)>,
}

impl EndOfLog {
    fn new(
        topic: &rapidmq::TopicInfo,
        committed: Option<&HashMap<u32, u64>>,
        start: StartPosition,
    ) -> EndOfLog {
        let partitions = topic
            .partitions
            .iter()
            .map(|p| {
                let (low, high) = (p.log_start_offset, p.high_watermark);
                let position = match (committed.and_then(|c| c.get(&p.partition)), start) {
                    (Some(&offset), _) => Some(offset),
                    (None, StartPosition::Earliest) => Some(low),
                    (None, StartPosition::Latest) => Some(high),
                    (None, StartPosition::Offset(o)) => Some(o.clamp(low, high)),
                    (None, StartPosition::Timestamp(_)) => (low >= high).then_some(high),
                };
                (p.partition, (position, high))
            })
            .collect();
        EndOfLog { partitions }
    }

    fn advance(&mut self, partition: u32, next: u64) {
        if let Some((position, _)) = self.partitions.get_mut(&partition) {
            *position = Some(position.map_or(next, |p| p.max(next)));
        }
    }

    /// Whether every partition this member owns has been read to its end.
    fn reached(&self, assignment: &[u32]) -> bool {
        !assignment.is_empty()
            && assignment.iter().all(|p| {
                self.partitions
                    .get(p)
                    .is_none_or(|(position, high)| position.is_some_and(|pos| pos >= *high))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_text_when_utf8_base64_otherwise_and_null_when_absent() {
        let mut object = json!({});
        put_bytes(&mut object, "value", Some(b"caf\xc3\xa9"));
        put_bytes(&mut object, "key", Some(&[0xff, 0xfe, 0x00, 0x01]));
        put_bytes(&mut object, "none", None);
        assert_eq!(
            object,
            json!({ "value": "café", "key_base64": "//4AAQ==", "none": null })
        );
    }

    fn topic(partitions: &[(u64, u64)]) -> rapidmq::TopicInfo {
        rapidmq::TopicInfo {
            name: "t".into(),
            config: rapidmq::TopicConfig::default(),
            partitions: partitions
                .iter()
                .enumerate()
                .map(|(i, &(low, high))| rapidmq::PartitionInfo {
                    partition: i as u32,
                    log_start_offset: low,
                    high_watermark: high,
                    bytes: 0,
                    replicas: Vec::new(),
                    leader: None,
                })
                .collect(),
            created_at_ms: 0,
        }
    }

    #[test]
    fn end_of_log_is_reached_once_every_owned_partition_is_read_to_its_watermark() {
        let mut end = EndOfLog::new(&topic(&[(0, 2), (0, 0)]), None, StartPosition::Earliest);
        assert!(!end.reached(&[]), "no assignment yet");
        assert!(end.reached(&[1]), "an empty partition is at its end");
        assert!(!end.reached(&[0, 1]));
        end.advance(0, 1);
        assert!(!end.reached(&[0, 1]));
        end.advance(0, 2);
        assert!(end.reached(&[0, 1]));
    }

    #[test]
    fn end_of_log_starts_from_committed_offsets_of_a_named_subscription() {
        let committed = HashMap::from([(0, 5)]);
        let end = EndOfLog::new(&topic(&[(0, 5)]), Some(&committed), StartPosition::Earliest);
        assert!(end.reached(&[0]));
        let end = EndOfLog::new(&topic(&[(0, 5)]), None, StartPosition::Timestamp(1));
        assert!(
            !end.reached(&[0]),
            "a timestamp start is unknown until a message arrives"
        );
    }
}
