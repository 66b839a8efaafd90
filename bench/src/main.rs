//! `rapidmq-bench`: one load generator for RapidMQ, NATS JetStream and Redis Streams.
//!
//! ```text
//! rapidmq-bench run --system nats --url nats://127.0.0.1:4222 --workload throughput \
//!     --tier persisted --size 100 --batch 1000 --count 200000 >> results.jsonl
//! rapidmq-bench render results.jsonl > table.md
//! ```
//! `run` prints one JSON record per run (a failed or unsupported run is a record too, so a
//! matrix goes on); `render` turns a file of records into the markdown tables of
//! `docs/benchmarks.md`. `scripts/bench-peers.sh` (`make bench-peers`) starts the peers and runs
//! the matrix.

mod report;
mod stats;
mod systems;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::report::Record;
use crate::systems::{System, Target, Tier};
use crate::workload::{Plan, Workload};

#[derive(Debug, Parser)]
#[command(
    name = "rapidmq-bench",
    about = "Benchmarks RapidMQ against NATS JetStream and Redis Streams"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one workload on one system and prints its JSON record.
    Run(RunArgs),
    /// Renders a file of JSON records (one per line) as markdown tables.
    Render {
        /// The records file.
        file: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// rapidmq, nats or redis.
    #[arg(long)]
    system: System,
    /// RapidMQ consumers' prefetch (default: the SDK's); a diagnostic, the matrix keeps the
    /// default.
    #[arg(long)]
    prefetch: Option<u32>,
    /// http://host:port (RapidMQ gRPC), nats://host:port or redis://host:port.
    #[arg(long)]
    url: String,
    /// RapidMQ's HTTP address (host:port), to count fsyncs through /v1/status.
    #[arg(long)]
    http: Option<String>,
    /// latency, throughput, fanout, replay or openloop.
    #[arg(long)]
    workload: Workload,
    /// memory, persisted or fsync.
    #[arg(long, default_value = "persisted")]
    tier: Tier,
    /// Message size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Messages per batch (throughput, fanout, replay).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Batches in flight (throughput, fanout, replay).
    #[arg(long, default_value_t = 5)]
    inflight: usize,
    /// Subscribers (fanout).
    #[arg(long, default_value_t = 10)]
    consumers: usize,
    /// Messages to publish (every workload but openloop).
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Openloop: offered messages per second.
    #[arg(long, default_value_t = 10_000.0)]
    rate: f64,
    /// Openloop: seconds to send for.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// The repeat number, copied into the record.
    #[arg(long, default_value_t = 0)]
    repeat: u32,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Render { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("read {}", file.display()))?;
            let mut records = Vec::new();
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                records.push(
                    serde_json::from_str::<Record>(line).with_context(|| {
                        format!("{}:{}: not a run record", file.display(), n + 1)
                    })?,
                );
            }
            print!("{}", report::render(&records));
            Ok(())
        }
        Command::Run(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let record = runtime.block_on(run(&args));
            println!("{}", serde_json::to_string(&record)?);
            if let Some(error) = &record.error {
                eprintln!(
                    "rapidmq-bench: {} {} {} {} B failed: {error}",
                    args.system, args.workload, args.tier, args.size
                );
            }
            Ok(())
        }
    }
}

async fn run(args: &RunArgs) -> Record {
    let (fanout, openloop) = (
        args.workload == Workload::Fanout,
        args.workload == Workload::OpenLoop,
    );
    let mut record = Record {
        system: args.system.to_string(),
        tier: args.tier.to_string(),
        workload: args.workload.to_string(),
        size: args.size,
        batch: match args.workload {
            Workload::Latency | Workload::OpenLoop => 1,
            _ => args.batch,
        },
        consumers: if fanout { args.consumers } else { 1 },
        rate: if openloop { args.rate } else { 0.0 },
        repeat: args.repeat,
        published: 0,
        publish_secs: 0.0,
        delivered: 0,
        deliver_secs: 0.0,
        ack_us: None,
        e2e_us: None,
        fsyncs: None,
        load1: 0.0,
        unsupported: args.system.unsupported(args.tier).map(str::to_string),
        error: None,
    };
    if record.unsupported.is_none() {
        let target = Target {
            system: args.system,
            url: args.url.clone(),
            http: args.http.clone(),
            prefetch: args.prefetch,
        };
        let plan = Plan {
            workload: args.workload,
            tier: args.tier,
            size: args.size,
            batch: args.batch,
            inflight: args.inflight,
            consumers: args.consumers,
            count: args.count,
            rate: args.rate,
            duration: Duration::from_secs_f64(args.duration),
        };
        let name = format!(
            "bench_{}_{}_{}",
            args.workload,
            std::process::id(),
            args.repeat
        );
        match workload::run(&target, &plan, &name).await {
            Ok(outcome) => {
                record.published = outcome.published;
                record.publish_secs = outcome.publish_secs;
                record.delivered = outcome.delivered;
                record.deliver_secs = outcome.deliver_secs;
                record.ack_us = stats::percentiles(&outcome.ack);
                record.e2e_us = stats::percentiles(&outcome.e2e);
                record.fsyncs = outcome.fsyncs;
            }
            Err(error) => record.error = Some(format!("{error:#}")),
        }
    }
    record.load1 = load_average();
    record
}

/// The 1-minute load average (0 where /proc/loadavg is missing).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}
