//! `rapidmq publish TOPIC [VALUE]`: one message from the argument, one per stdin line, or one
//! file as one message. Publishing goes through the SDK producer (batching, idempotence,
//! retries); receipts are checked as they complete, so a long stdin stream holds only the
//! receipts still in flight.

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use bytes::Bytes;
use rapidmq::{Delivery, Message, SendReceipt, SendStatus};
use serde_json::json;
use tokio::sync::mpsc;

use super::{CompressionArg, Ctx, SdkResult, durability_name, send_status_name};
use crate::output::Stdout;
use crate::parse::{HeaderArg, HumanDuration};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    rapidmq publish orders 'hello'\n  \
    rapidmq publish orders '{\"id\":7}' --key customer-7 --header source=web\n  \
    seq 1000 | rapidmq publish orders\n  \
    rapidmq publish orders --file invoice.pdf --header content-type=application/pdf\n  \
    rapidmq publish orders 'remind me' --delay 15m       # appended when due\n  \
    rapidmq publish jobs 'urgent' --priority 9 --ttl 1h\n  \
    rapidmq publish payments 'p-1' --msg-id p-1          # dropped if repeated within the dedup window\n  \
    cat events.ndjson | rapidmq publish orders --output json   # one receipt per line\n  \
    cat events.ndjson | rapidmq publish orders --compression zstd")]
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
    /// Hold the message in the broker's schedule; it is appended (and delivered) this long
    /// after the broker received it.
    #[arg(long, value_name = "DURATION")]
    delay: Option<HumanDuration>,
    /// Never deliver it after this long from its append time.
    #[arg(long, value_name = "DURATION")]
    ttl: Option<HumanDuration>,
    /// Priority 0 (lowest, default) to 9: queue subscriptions deliver higher ones first.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=9))]
    priority: Option<u8>,
    /// Application message id (the `msg-id` header), for topics with a dedup window.
    #[arg(long, value_name = "ID")]
    msg_id: Option<String>,
    /// Pack each batch's messages with this codec (stored compressed, unpacked by consumers).
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    compression: CompressionArg,
}

/// Receipts kept in flight before the oldest is awaited (bounds memory on endless stdin).
const MAX_PENDING_RECEIPTS: usize = 100_000;

pub async fn run(ctx: &Ctx, args: PublishArgs) -> anyhow::Result<()> {
    ctx.table_or_json()?;
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
    let producer = client
        .producer(args.topic.clone())
        .compression(args.compression.into())
        .build()
        .await
        .cli(ctx)?;
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
                out.line(describe(&args.topic, &delivery))?;
            }
        }
        None => {
            let mut lines = stdin_lines();
            while let Some(line) = lines.recv().await {
                let line = line.context("cannot read stdin")?;
                let receipt = producer.send(message(&args, line)).await.cli(ctx)?;
                receipts.push(receipt, &mut out).await?;
            }
            // Receipts first, in order: the first failure ends the command at once, rather than
            // after every later batch has spent its own retries in a flush. (Batches go out on
            // their linger without a flush.)
            receipts.finish(&mut out).await?;
            producer.flush().await.cli(ctx)?;
            if !ctx.json() {
                let mut summary = format!("published {} messages to {}", receipts.done, args.topic);
                if receipts.scheduled + receipts.deduplicated > 0 {
                    summary.push_str(&format!(
                        " ({} scheduled, {} dropped as msg-id duplicates)",
                        receipts.scheduled, receipts.deduplicated
                    ));
                }
                out.line(summary)?;
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
    if let Some(id) = &args.msg_id {
        message = message.with_msg_id(id.clone());
    }
    if let Some(delay) = args.delay {
        message = message.with_delay(delay.0);
    }
    if let Some(ttl) = args.ttl {
        message = message.with_ttl(ttl.0);
    }
    if let Some(priority) = args.priority {
        message = message.with_priority(priority);
    }
    message
}

/// One line saying what happened to a single published message.
fn describe(topic: &str, d: &Delivery) -> String {
    match (d.status, d.offset) {
        (SendStatus::Appended, Some(offset)) => format!(
            "published to {topic} partition {} offset {offset} ({})",
            d.partition,
            durability_name(d.durability)
        ),
        (SendStatus::Scheduled, _) => format!(
            "scheduled on {topic} partition {}: appended when due ({})",
            d.partition,
            durability_name(d.durability)
        ),
        (SendStatus::Deduplicated, _) => {
            format!("not published: {topic} already had this msg-id within its dedup window")
        }
        (status, offset) => format!(
            "{} on {topic} partition {} offset {offset:?}",
            send_status_name(status),
            d.partition
        ),
    }
}

fn receipt_json(d: &Delivery) -> serde_json::Value {
    json!({
        "partition": d.partition,
        "offset": d.offset,
        "status": send_status_name(d.status),
        "durability": durability_name(d.durability),
    })
}

/// Receipts in send order; completed ones at the front are reported as they finish.
struct Receipts<'a> {
    ctx: &'a Ctx,
    pending: VecDeque<SendReceipt>,
    done: u64,
    scheduled: u64,
    deduplicated: u64,
}

impl<'a> Receipts<'a> {
    fn new(ctx: &'a Ctx) -> Self {
        Receipts {
            ctx,
            pending: VecDeque::new(),
            done: 0,
            scheduled: 0,
            deduplicated: 0,
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
        match delivery.status {
            SendStatus::Scheduled => self.scheduled += 1,
            SendStatus::Deduplicated => self.deduplicated += 1,
            SendStatus::Appended => {}
        }
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
