//! `rapidmq bench`: the built-in load generator, driving the broker through the SDK (so through
//! the same client core every SDK runs).
//!
//! Workloads:
//! - `pub`: producers publish; reports msgs/s, MB/s and send → ack latency.
//! - `sub`: the topic is filled first (not measured), then consumers of one subscription read it;
//!   reports consume throughput.
//! - `pubsub`: consumers subscribe, then producers publish; reports publish throughput and ack
//!   latency, and consume throughput with end-to-end (send → received) latency.
//! - `queue`: like `pubsub`, with queue-mode consumers that ack every delivery.
//! - `codec`: no broker; each compression codec's ratio and CPU cost per batch (`codec.rs`).
//!
//! Layout: this file parses the options and runs the phases; `workers.rs` holds the producer and
//! consumer tasks; `report.rs` the histograms and the output. The progress bar (indicatif) is
//! drawn on stderr only when it is a terminal.

mod codec;
mod report;
mod workers;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rapidmq::{Client, ErrorCode, QueueSettings, StartPosition, TopicConfig};
use tokio::time::Instant;

use self::report::{Phase, Report, histogram};
use self::workers::{ConsumerPlan, Payload, ProducerPlan, Shared};
use super::{CompressionArg, Ctx, DurabilityArg, SdkResult};
use crate::output::Stdout;
use crate::parse::HumanDuration;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    rapidmq bench pub --count 1000000 --size 100 --batch 1000\n  \
    rapidmq bench pub --batch 1 --count 5000 --durability buffered\n  \
    rapidmq bench pubsub --producers 2 --consumers 2 --partitions 4 --duration 30s\n  \
    rapidmq bench pubsub --rate 10000 --duration 20s     # open loop, for latency\n  \
    rapidmq bench sub --count 500000 --json\n  \
    rapidmq bench queue --consumers 4 --count 200000\n  \
    rapidmq bench queue --consumers 4 --count 50000 --ack-each\n  \
    rapidmq bench pub --payload json --compression lz4\n  \
    rapidmq bench codec --payload json                   # ratio and CPU per codec, no broker\n\n\
    A fresh topic is created per run and deleted afterwards, unless --topic names one\n\
    (created if missing, kept).")]
pub struct BenchArgs {
    /// The workload.
    #[arg(value_enum)]
    workload: Workload,
    /// Concurrent producers, each with its own connection.
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Concurrent consumers, members of one subscription (sub, pubsub).
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Message size in bytes (the first 8 carry the send time).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Messages per producer batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Batches in flight per partition and producer (pipelined on one stream).
    #[arg(long, default_value_t = rapidmq::defaults::MAX_IN_FLIGHT_PER_PARTITION)]
    inflight: usize,
    /// Total messages to publish [default: 100000 unless --duration].
    #[arg(long, conflicts_with = "duration")]
    count: Option<u64>,
    /// Publish for this long instead of a count (e.g. 30s).
    #[arg(long, value_name = "DURATION")]
    duration: Option<HumanDuration>,
    /// Total messages per second across producers (open loop, for latency); none: as fast as
    /// possible.
    #[arg(long)]
    rate: Option<u64>,
    /// Use this topic (created if missing, kept afterwards).
    #[arg(long)]
    topic: Option<String>,
    /// Partitions of a created topic.
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// Durability of a created topic.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Fsync)]
    durability: DurabilityArg,
    /// Queue mode: send each ack on its own request instead of in the client core's batches.
    #[arg(long)]
    ack_each: bool,
    /// Keep the topic the run created.
    #[arg(long)]
    keep: bool,
    /// Print one JSON object for scripts instead of a table.
    #[arg(long)]
    json: bool,
    /// Producer batch compression.
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    compression: CompressionArg,
    /// What message values hold after their 8-byte send time.
    #[arg(long, value_enum, default_value_t = Payload::Filler)]
    payload: Payload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    /// Publish only.
    Pub,
    /// Consume a pre-filled topic.
    Sub,
    /// Publish and consume at once (end-to-end latency).
    Pubsub,
    /// Publish while queue-mode consumers ack every delivery (end-to-end latency).
    Queue,
    /// No broker: what each compression codec makes of batches of --batch messages of --size
    /// bytes (--payload), and its CPU cost per batch.
    Codec,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Pub => "pub",
            Workload::Sub => "sub",
            Workload::Pubsub => "pubsub",
            Workload::Queue => "queue",
            Workload::Codec => "codec",
        }
    }
}

const DEFAULT_COUNT: u64 = 100_000;

pub async fn run(ctx: &Ctx, args: BenchArgs) -> anyhow::Result<()> {
    if args.producers == 0
        || args.consumers == 0
        || args.batch == 0
        || args.partitions == 0
        || args.inflight == 0
    {
        bail!("--producers, --consumers, --batch, --inflight and --partitions must be at least 1");
    }
    if args.count == Some(0) || args.rate == Some(0) {
        bail!("--count and --rate must be at least 1");
    }
    if args.workload == Workload::Sub && args.duration.is_some() {
        bail!("`bench sub` reads a pre-filled topic: give --count, not --duration");
    }
    if args.ack_each && args.workload != Workload::Queue {
        bail!("--ack-each is for the queue workload");
    }
    if args.workload == Workload::Codec {
        let report = codec::run(args.size, args.batch, args.payload);
        let mut out = Stdout::new();
        report.print(&mut out, args.json)?;
        out.flush()?;
        return Ok(());
    }
    let client = ctx.connect().await?;
    let (topic, created) = prepare_topic(ctx, &client, &args).await?;
    let result = run_workload(ctx, &client, &args, &topic).await;
    if created && !args.keep {
        // Best effort: a failed cleanup must not hide the run's own result.
        let _ = client.admin().delete_topic(topic.clone()).await;
    }
    let report = result?;
    let mut out = Stdout::new();
    report.print(&mut out, args.json)?;
    out.flush()?;
    Ok(())
}

async fn prepare_topic(
    ctx: &Ctx,
    client: &Client,
    args: &BenchArgs,
) -> anyhow::Result<(String, bool)> {
    let (name, fresh) = match &args.topic {
        Some(name) => (name.clone(), false),
        None => (
            format!(
                "bench-{}-{}-{}",
                args.workload.name(),
                std::process::id(),
                crate::parse::now_ms()
            ),
            true,
        ),
    };
    let config = TopicConfig {
        partitions: args.partitions,
        durability: args.durability.into(),
        ..TopicConfig::default()
    };
    match client.admin().create_topic(name.clone(), config).await {
        Ok(_) => Ok((name, true)),
        Err(err) if !fresh && err.code() == ErrorCode::TopicAlreadyExists => Ok((name, false)),
        Err(err) => Err(err).cli(ctx).context("cannot create the bench topic"),
    }
}

async fn run_workload(
    ctx: &Ctx,
    client: &Client,
    args: &BenchArgs,
    topic: &str,
) -> anyhow::Result<Report> {
    let info = client.admin().describe_topic(topic).await.cli(ctx)?;
    let partitions = u32::try_from(info.partitions.len()).unwrap_or(u32::MAX);
    let epoch = Instant::now();
    let count = match args.duration {
        Some(_) => None,
        None => Some(args.count.unwrap_or(DEFAULT_COUNT)),
    };
    let plan = ProducerPlan {
        topic: topic.to_string(),
        size: args.size,
        batch: args.batch,
        inflight: args.inflight,
        partitions,
        count: None,
        deadline: None,
        rate: args.rate.map(|r| r as f64 / args.producers as f64),
        epoch,
        compression: args.compression.into(),
        payload: args.payload,
    };
    let subscription = format!("bench-{}", crate::parse::now_ms());
    let consumer_plan = ConsumerPlan {
        topic: topic.to_string(),
        subscription: subscription.clone(),
        measure: matches!(args.workload, Workload::Pubsub | Workload::Queue),
        queue: args.workload == Workload::Queue,
        ack_each: args.ack_each,
        epoch,
    };
    let shared = Arc::new(Shared::default());
    shared
        .target
        .store(count.unwrap_or(u64::MAX), Ordering::Relaxed);

    let consuming = args.workload != Workload::Pub;
    if consuming {
        // The subscription starts at the current end, so only this run's messages count.
        let admin = client.admin();
        let created = if args.workload == Workload::Queue {
            admin
                .create_queue_subscription(
                    topic,
                    subscription.clone(),
                    StartPosition::Latest,
                    QueueSettings::default(),
                )
                .await
        } else {
            admin
                .create_subscription(topic, subscription.clone(), StartPosition::Latest)
                .await
        };
        created.cli(ctx)?;
    }
    if args.workload == Workload::Sub {
        let fill = ProducerPlan {
            count,
            rate: None,
            ..plan.clone()
        };
        let bar = progress(count, "filling");
        let ticker = tick(bar.clone(), shared.clone(), false);
        let filled = workers::produce(ctx.clone(), client.clone(), fill, shared.clone()).await;
        ticker.abort();
        bar.finish_and_clear();
        filled?;
    }

    let mut consumers = Vec::new();
    if consuming {
        for i in 0..args.consumers {
            let client = ctx.connect().await?;
            let consumer = workers::subscribe(ctx, &client, &consumer_plan, i).await?;
            consumers.push((client, consumer));
        }
    }
    let bar = progress(
        count,
        if args.workload == Workload::Pub {
            "published"
        } else {
            "consumed"
        },
    );
    let ticker = tick(bar.clone(), shared.clone(), consuming);
    let started = Instant::now();
    let consumer_tasks: Vec<_> = consumers
        .into_iter()
        .map(|(_client, consumer)| {
            let (ctx, plan, shared) = (ctx.clone(), consumer_plan.clone(), shared.clone());
            tokio::spawn(async move {
                let result = workers::consume(ctx, consumer, plan, shared.clone()).await;
                if result.is_err() {
                    shared.failed.store(true, Ordering::Relaxed);
                }
                result
            })
        })
        .collect();

    let mut published = 0;
    let mut publish_latency = histogram();
    let mut publish_elapsed = Duration::ZERO;
    if args.workload != Workload::Sub {
        let deadline = args.duration.map(|d| started + d.0);
        let mut producers = Vec::new();
        for p in 0..args.producers {
            let share = count.map(|n| {
                n / args.producers as u64 + u64::from((p as u64) < n % args.producers as u64)
            });
            let plan = ProducerPlan {
                count: share,
                deadline,
                ..plan.clone()
            };
            let client = ctx.connect().await?;
            let (ctx, shared) = (ctx.clone(), shared.clone());
            producers.push(tokio::spawn(async move {
                let result = workers::produce(ctx, client, plan, shared.clone()).await;
                if result.is_err() {
                    shared.failed.store(true, Ordering::Relaxed);
                }
                result
            }));
        }
        let mut first_error = None;
        for producer in producers {
            match producer.await.context("bench producer task")? {
                Ok((acked, latency)) => {
                    published += acked;
                    publish_latency.add(latency).context("merging latencies")?;
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        publish_elapsed = started.elapsed();
        if let Some(err) = first_error {
            shared.target.store(0, Ordering::Relaxed);
            ticker.abort();
            bar.finish_and_clear();
            return Err(err);
        }
        shared.target.store(published, Ordering::Relaxed);
    } else {
        published = count.unwrap_or(0);
    }

    let mut consumed = 0;
    let mut consume_latency = histogram();
    let mut first_error = None;
    for task in consumer_tasks {
        match task.await.context("bench consumer task")? {
            Ok((received, latency)) => {
                consumed += received;
                consume_latency.add(latency).context("merging latencies")?;
            }
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    let consume_elapsed = started.elapsed();
    ticker.abort();
    bar.finish_and_clear();
    if consuming {
        // Best effort, like the topic: leave nothing behind on a kept topic.
        let _ = client
            .admin()
            .delete_subscription(topic, subscription.clone())
            .await;
    }
    if let Some(err) = first_error {
        return Err(err);
    }

    let mut phases = Vec::new();
    if args.workload != Workload::Sub {
        phases.push(Phase::new(
            "publish",
            published,
            args.size,
            publish_elapsed,
            &publish_latency,
        ));
    }
    if consuming {
        phases.push(Phase::new(
            "consume",
            consumed,
            args.size,
            consume_elapsed,
            &consume_latency,
        ));
    }
    let main = phases.last().cloned().context("a bench run has a phase")?;
    Ok(Report {
        workload: args.workload.name(),
        topic: topic.to_string(),
        count: main.messages,
        msgs_per_sec: main.msgs_per_sec,
        mb_per_sec: main.mb_per_sec,
        size: args.size,
        batch: args.batch,
        inflight: args.inflight,
        producers: args.producers,
        consumers: if consuming { args.consumers } else { 0 },
        partitions,
        durability: super::durability_name(info.config.durability),
        rate: args.rate,
        compression: rapidmq::Compression::from(args.compression).name(),
        payload: args.payload,
        phases,
    })
}

/// A progress bar on stderr, or a hidden one when stderr is not a terminal.
fn progress(count: Option<u64>, what: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(count.unwrap_or(0));
    let template = if count.is_some() {
        "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} {msg} ({per_sec})"
    } else {
        "{spinner} [{elapsed_precise}] {human_pos} {msg} ({per_sec})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(what);
    bar
}

/// Refreshes the bar from the shared counters ten times a second (display only).
fn tick(bar: ProgressBar, shared: Arc<Shared>, consumed: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        loop {
            interval.tick().await;
            let counter = if consumed {
                &shared.consumed
            } else {
                &shared.published
            };
            bar.set_position(counter.load(Ordering::Relaxed));
        }
    })
}
