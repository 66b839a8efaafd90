//! `rapidmq publish TOPIC [VALUE]`: one message from the argument, one per stdin line, or one
//! file as one message. Publishing goes through the SDK producer (batching, idempotence,
//! retries); receipts are checked as they complete, so a long stdin stream holds only the
//! receipts still in flight.

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use bytes::Bytes;
use rapidmq::{Delivery, Message, SendReceipt};
use serde_json::json;
use tokio::sync::mpsc;

use super::{Ctx, QUEUE_MODE_UNAVAILABLE, SdkResult, durability_name};
use crate::output::Stdout;
use crate::parse::{HeaderArg, HumanDuration};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    rapidmq publish orders 'hello'\n  \
    rapidmq publish orders '{\"id\":7}' --key customer-7 --header source=web\n  \
    seq 1000 | rapidmq publish orders\n  \
    rapidmq publish orders --file invoice.pdf --header content-type=application/pdf\n  \
    cat events.ndjson | rapidmq publish orders --output json   # one receipt per line")]
pub struct PublishArgs {
    /// Topic name.
    topic: String,
    /// The message value. Without it (and without --file), each line of stdin is one message.
    #[arg(conflicts_with = "file")]
    value: Option<String>,
    /// Send this file's content as one message.
    #[arg(long, short = 'f', value_name = "PATH")]
    file: Option<PathBuf>,
    /// Message key: messages with the same key go to the same partition, in order.
    #[arg(long, short = 'k')]
    key: Option<String>,
    /// A header, KEY=VALUE; repeat for more.
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE")]
    headers: Vec<HeaderArg>,
    /// Deliver after this delay (queue mode and scheduling; not in this broker yet).
    #[arg(long, value_name = "DURATION")]
    delay: Option<HumanDuration>,
    /// Expire after this long (not in this broker yet).
    #[arg(long, value_name = "DURATION")]
    ttl: Option<HumanDuration>,
    /// Priority 0-9 for queue subscriptions (not in this broker yet).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=9))]
    priority: Option<u32>,
}

/// Receipts kept in flight before the oldest is awaited (bounds memory on endless stdin).
const MAX_PENDING_RECEIPTS: usize = 100_000;

pub async fn run(ctx: &Ctx, args: PublishArgs) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    if args.delay.is_some() || args.ttl.is_some() || args.priority.is_some() {
        bail!(
            "--delay, --ttl and --priority need delayed delivery and queue mode: \
             {QUEUE_MODE_UNAVAILABLE}"
        );
    }
    let single = match (&args.value, &args.file) {
        (Some(value), _) => Some(Bytes::from(value.clone())),
        (None, Some(path)) => {
            Some(Bytes::from(std::fs::read(path).with_context(|| {
                format!("cannot read {}", path.display())
            })?))
        }
        (None, None) => None,
    };
    let client = ctx.connect().await?;
    let producer = client.producer(args.topic.clone()).build().await.cli(ctx)?;
    let mut out = Stdout::new();
    let mut receipts = Receipts::new(ctx);
    match single {
        Some(value) => {
            let receipt = producer.send(message(&args, value)).await.cli(ctx)?;
            producer.flush().await.cli(ctx)?;
            let delivery = receipt.await.cli(ctx)?;
            if ctx.json() {
                out.json_line(&receipt_json(&delivery))?;
            } else {
                out.line(format!(
                    "published to {} partition {} offset {} ({})",
                    args.topic,
                    delivery.partition,
                    delivery.offset,
                    durability_name(delivery.durability)
                ))?;
            }
        }
        None => {
            let mut lines = stdin_lines();
            while let Some(line) = lines.recv().await {
                let line = line.context("cannot read stdin")?;
                let receipt = producer.send(message(&args, line)).await.cli(ctx)?;
                receipts.push(receipt, &mut out).await?;
            }
            producer.flush().await.cli(ctx)?;
            receipts.finish(&mut out).await?;
            if !ctx.json() {
                out.line(format!(
                    "published {} messages to {}",
                    receipts.done, args.topic
                ))?;
            }
        }
    }
    producer.close().await.cli(ctx)?;
    out.flush()?;
    Ok(())
}

fn message(args: &PublishArgs, value: Bytes) -> Message {
    let mut message = Message::new(value);
    if let Some(key) = &args.key {
        message = message.with_key(key.clone());
    }
    for h in &args.headers {
        message = message.with_header(h.key.clone(), h.value.clone());
    }
    message
}

fn receipt_json(d: &Delivery) -> serde_json::Value {
    json!({
        "partition": d.partition,
        "offset": d.offset,
        "durability": durability_name(d.durability),
    })
}

/// Receipts in send order; completed ones at the front are reported as they finish.
struct Receipts<'a> {
    ctx: &'a Ctx,
    pending: VecDeque<SendReceipt>,
    done: u64,
}

impl<'a> Receipts<'a> {
    fn new(ctx: &'a Ctx) -> Self {
        Receipts {
            ctx,
            pending: VecDeque::new(),
            done: 0,
        }
    }

    async fn push(&mut self, receipt: SendReceipt, out: &mut Stdout) -> anyhow::Result<()> {
        self.pending.push_back(receipt);
        while let Some(front) = self.pending.front_mut() {
            let result = match front.try_result() {
                Some(result) => result,
                None if self.pending.len() > MAX_PENDING_RECEIPTS => match self.pending.pop_front()
                {
                    Some(receipt) => {
                        self.report(receipt.await, out)?;
                        continue;
                    }
                    None => break,
                },
                None => break,
            };
            self.pending.pop_front();
            self.report(result, out)?;
        }
        Ok(())
    }

    async fn finish(&mut self, out: &mut Stdout) -> anyhow::Result<()> {
        while let Some(receipt) = self.pending.pop_front() {
            self.report(receipt.await, out)?;
        }
        Ok(())
    }

    fn report(
        &mut self,
        result: rapidmq::Result<Delivery>,
        out: &mut Stdout,
    ) -> anyhow::Result<()> {
        let delivery = result.cli(self.ctx).with_context(|| {
            format!("publishing failed after {} messages were stored", self.done)
        })?;
        self.done += 1;
        if self.ctx.json() {
            out.json_line(&receipt_json(&delivery))?;
        }
        Ok(())
    }
}

/// Lines of stdin (without the line ending), read on a blocking thread so a slow or interactive
/// stdin never stalls the runtime. Lines are bytes: values need not be UTF-8.
fn stdin_lines() -> mpsc::Receiver<std::io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(1024);
    tokio::task::spawn_blocking(move || {
        let stdin = std::io::stdin();
        let mut reader = stdin.lock();
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    if tx.blocking_send(Ok(Bytes::from(line))).is_err() {
                        break;
                    }
                }
                Err(err) => {
                    let _ = tx.blocking_send(Err(err));
                    break;
                }
            }
        }
    });
    rx
}
