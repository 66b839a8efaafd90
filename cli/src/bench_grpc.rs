//! `rapidmq bench-grpc`: the transport and storage baseline. It drives the broker's gRPC API
//! directly — pre-encoded batches on pipelined `PublishStream`s, then one `Consume` stream from
//! offset 0 — without the client core, so the figures show what the broker itself can do.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use prost::Message as _;
use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::admin_client::AdminClient;
use rapidmq_proto::v1::messaging_client::MessagingClient;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use crate::output::Stdout;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  rapidmq bench-grpc --messages 1000000 --size 100 --batch 1000 --durability fsync"
)]
pub struct BenchArgs {
    /// Broker gRPC URL.
    #[arg(long, env = "RAPIDMQ_SERVER", default_value = "http://127.0.0.1:7420")]
    server: String,
    /// Topic to use; created (1 partition) if missing. Default: a fresh topic per run.
    #[arg(long)]
    topic: Option<String>,
    /// Total messages to publish.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Message value size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Messages per publish request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Concurrent producers (each its own PublishStream, on its own connection).
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Publish requests in flight per producer.
    #[arg(long, default_value_t = 16)]
    inflight: usize,
    /// Durability of the created topic: fsync or buffered.
    #[arg(long, default_value = "fsync")]
    durability: String,
    /// Skip the consume phase.
    #[arg(long)]
    no_consume: bool,
    /// Publish delayed messages (due this many ms after publishing) to measure the schedule;
    /// they are not in the log yet, so the consume phase is skipped.
    #[arg(long, value_name = "MS")]
    delay_ms: Option<u64>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Phase {
    messages: u64,
    seconds: f64,
    msgs_per_sec: f64,
    mb_per_sec: f64,
    fsyncs: u64,
    fsyncs_per_sec: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    topic: String,
    size: usize,
    batch: usize,
    producers: usize,
    inflight: usize,
    durability: String,
    publish: Phase,
    consume: Option<Phase>,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(args))
}

async fn connect(server: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(server.to_string())?
        .tcp_nodelay(true)
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(32 << 20))
        .connect()
        .await
        .with_context(|| {
            format!("cannot reach broker at {server}: is it running? (`rapidmq serve`)")
        })
}

async fn fsyncs(admin: &mut AdminClient<Channel>) -> anyhow::Result<u64> {
    Ok(admin
        .get_status(pb::GetStatusRequest {})
        .await?
        .into_inner()
        .fsyncs)
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    if args.batch == 0 || args.producers == 0 || args.inflight == 0 || args.messages == 0 {
        bail!("--messages, --batch, --producers and --inflight must be at least 1");
    }
    let durability = match args.durability.as_str() {
        "fsync" => pb::Durability::Fsync,
        "buffered" => pb::Durability::Buffered,
        other => bail!("--durability must be fsync or buffered, not `{other}`"),
    };
    let channel = connect(&args.server).await?;
    let mut admin = AdminClient::new(channel.clone());
    let topic = args
        .topic
        .clone()
        .unwrap_or_else(|| format!("bench-{}-{}", args.durability, std::process::id()));
    let created = admin
        .create_topic(pb::CreateTopicRequest {
            name: topic.clone(),
            config: Some(pb::TopicConfig {
                partitions: Some(1),
                durability: durability as i32,
                retention_ms: Some(0),
                ..Default::default()
            }),
        })
        .await;
    if let Err(status) = created
        && status.code() != tonic::Code::AlreadyExists
    {
        return Err(status).context("cannot create the bench topic");
    }

    let batch = encode_batch(args.batch, args.size, args.delay_ms.unwrap_or(0));
    let requests_total = args.messages.div_ceil(args.batch as u64);
    let fsyncs_before = fsyncs(&mut admin).await?;
    let started = Instant::now();
    let mut producers = Vec::new();
    for p in 0..args.producers {
        let share = requests_total / args.producers as u64
            + u64::from((p as u64) < requests_total % args.producers as u64);
        let (server, topic, batch) = (args.server.clone(), topic.clone(), batch.clone());
        let inflight = args.inflight;
        producers.push(tokio::spawn(async move {
            produce(&server, &topic, batch, share, inflight).await
        }));
    }
    let mut published = 0;
    for producer in producers {
        published += producer.await?? * args.batch as u64;
    }
    let publish = phase(
        published,
        args.size,
        started.elapsed(),
        fsyncs(&mut admin).await? - fsyncs_before,
    );

    let consume = if args.no_consume || args.delay_ms.is_some() {
        None
    } else {
        let started = Instant::now();
        let consumed = consume(channel.clone(), &topic, published).await?;
        Some(phase(consumed, args.size, started.elapsed(), 0))
    };
    let report = Report {
        topic,
        size: args.size,
        batch: args.batch,
        producers: args.producers,
        inflight: args.inflight,
        durability: args.durability.clone(),
        publish,
        consume,
    };
    let mut out = Stdout::new();
    if args.json {
        out.json_pretty(&report)?;
    } else {
        out.line(format!(
            "{} producer(s) x {} in flight, {} B messages, batch {}, durability {}",
            report.producers, report.inflight, report.size, report.batch, report.durability
        ))?;
        out.line(format!(
            "{:<8} {:>10} {:>8} {:>12} {:>9} {:>10}",
            "phase", "messages", "secs", "msgs/s", "MB/s", "fsyncs/s"
        ))?;
        for (name, p) in [
            ("publish", Some(&report.publish)),
            ("consume", report.consume.as_ref()),
        ] {
            if let Some(p) = p {
                out.line(format!(
                    "{:<8} {:>10} {:>8.2} {:>12.0} {:>9.1} {:>10.0}",
                    name, p.messages, p.seconds, p.msgs_per_sec, p.mb_per_sec, p.fsyncs_per_sec
                ))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn phase(messages: u64, size: usize, elapsed: Duration, fsyncs: u64) -> Phase {
    let seconds = elapsed.as_secs_f64();
    Phase {
        messages,
        seconds,
        msgs_per_sec: messages as f64 / seconds,
        mb_per_sec: (messages as f64 * size as f64) / seconds / 1e6,
        fsyncs,
        fsyncs_per_sec: fsyncs as f64 / seconds,
    }
}

fn encode_batch(count: usize, size: usize, delay_ms: u64) -> Bytes {
    let value = Bytes::from(vec![b'x'; size]);
    let batch = pb::MessageBatch {
        messages: (0..count)
            .map(|i| pb::Message {
                timestamp_delta_ms: (i % 2) as i64,
                value: value.clone(),
                delay_ms,
                ..Default::default()
            })
            .collect(),
        base_timestamp_ms: crate::parse::now_ms(),
        compression: 0,
        ..Default::default()
    };
    Bytes::from(batch.encode_to_vec())
}

/// Sends `requests` copies of `batch` on one PublishStream with up to `inflight` unacknowledged.
async fn produce(
    server: &str,
    topic: &str,
    batch: Bytes,
    requests: u64,
    inflight: usize,
) -> anyhow::Result<u64> {
    let mut client = MessagingClient::new(connect(server).await?)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let (tx, rx) = mpsc::channel(inflight);
    let mut responses = client
        .publish_stream(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let mut sent = 0u64;
    let mut acked = 0u64;
    while acked < requests {
        while sent < requests && sent - acked < inflight as u64 {
            let request = pb::PublishStreamRequest {
                correlation_id: sent,
                request: Some(pb::PublishRequest {
                    topic: topic.to_string(),
                    partition: 0,
                    batch: batch.clone(),
                    ..Default::default()
                }),
            };
            tx.send(request).await.context("publish stream closed")?;
            sent += 1;
        }
        let response = responses
            .message()
            .await?
            .context("publish stream ended early")?;
        if let Some(pb::publish_stream_response::Result::Error(err)) = response.result {
            bail!(
                "publish failed: {} ({}): {}",
                err.name,
                err.code,
                err.message
            );
        }
        acked += 1;
    }
    Ok(acked)
}

/// Reads `expected` messages from offset 0 on an ephemeral Consume stream, decoding every batch.
async fn consume(channel: Channel, topic: &str, expected: u64) -> anyhow::Result<u64> {
    const CREDITS: u32 = 200_000;
    let mut client = MessagingClient::new(channel).max_decoding_message_size(64 << 20);
    let (tx, rx) = mpsc::channel(16);
    tx.send(pb::ConsumeRequest {
        kind: Some(pb::consume_request::Kind::Subscribe(pb::Subscribe {
            topic: topic.to_string(),
            start: Some(pb::StartPosition {
                kind: pb::StartKind::Earliest as i32,
                ..Default::default()
            }),
            credits: CREDITS,
            ..Default::default()
        })),
    })
    .await?;
    let mut stream = client.consume(ReceiverStream::new(rx)).await?.into_inner();
    let mut received = 0u64;
    let mut since_credit = 0u64;
    while received < expected {
        let Some(response) = stream.message().await? else {
            bail!("consume stream ended early")
        };
        if let Some(pb::consume_response::Kind::Batch(batch)) = response.kind {
            let decoded = rapidmq_proto::batch::decode(batch.batch)?;
            let delivered = decoded
                .messages
                .len()
                .min((batch.skip + batch.count) as usize)
                - batch.skip as usize;
            received += delivered as u64;
            since_credit += delivered as u64;
            if since_credit >= u64::from(CREDITS / 2) {
                let grant = since_credit as u32;
                since_credit = 0;
                tx.send(pb::ConsumeRequest {
                    kind: Some(pb::consume_request::Kind::Credit(pb::Credit {
                        messages: grant,
                        bytes: 0,
                    })),
                })
                .await?;
            }
        }
    }
    Ok(received)
}
