//! The bench's producer and consumer tasks. Each has its own SDK client (its own connection),
//! counts into shared atomics for the progress bar, and returns its own latency histogram.
//!
//! Every message value starts with its send time: nanoseconds since the run's `epoch`, so a
//! consumer in the same process measures end-to-end latency without clock skew. Open-loop runs
//! (`--rate`) stamp and measure from the *intended* send time, so a stalled broker shows up as
//! latency instead of silently slowing the sender (no coordinated omission).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use hdrhistogram::Histogram;
use rapidmq::{Client, Message, ReceivedMessage, SendReceipt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::report::{histogram, record};
use crate::cmd::{Ctx, SdkResult};

/// Counters shared by every task of a run.
#[derive(Debug, Default)]
pub struct Shared {
    pub published: AtomicU64,
    pub consumed: AtomicU64,
    /// Messages the consumers must receive before they stop; `u64::MAX` until known (duration
    /// runs learn it when the producers finish).
    pub target: AtomicU64,
    /// Set when any task fails, so the others stop early.
    pub failed: AtomicBool,
}

/// What one producer task does.
#[derive(Debug, Clone)]
pub struct ProducerPlan {
    pub topic: String,
    pub size: usize,
    pub batch: usize,
    /// Batches in flight per partition.
    pub inflight: usize,
    pub partitions: u32,
    /// Messages to send, or `None` to send until `deadline`.
    pub count: Option<u64>,
    pub deadline: Option<Instant>,
    /// Messages per second for this producer (open loop), or `None` for as fast as possible.
    pub rate: Option<f64>,
    pub epoch: Instant,
    pub compression: rapidmq::Compression,
    pub payload: Payload,
}

/// What the bytes of a bench message after its send time look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    /// One repeated byte (the most compressible payload there is).
    #[default]
    Filler,
    /// JSON-like records (an order event with varying ids, names and amounts), for realistic
    /// compression figures.
    Json,
}

/// Publishes per `plan`; returns the messages acknowledged and their send → ack latencies.
pub async fn produce(
    ctx: Ctx,
    client: Client,
    plan: ProducerPlan,
    shared: Arc<Shared>,
) -> anyhow::Result<(u64, Histogram<u64>)> {
    // The batches in flight per partition and one filling behind them: enough to reach the
    // batch size, small enough that ack latency is not queueing time in the producer's own
    // buffer.
    let buffered = (plan.batch * (plan.inflight + 1) * plan.partitions as usize).max(2);
    let producer = client
        .producer(plan.topic.clone())
        .max_batch_messages(plan.batch)
        .max_in_flight_per_partition(plan.inflight)
        .max_buffered_messages(buffered)
        .compression(plan.compression)
        .build()
        .await
        .cli(&ctx)?;
    let (tx, mut rx) = mpsc::channel::<(Instant, SendReceipt)>(buffered.max(1024));
    let collector = {
        let (ctx, shared) = (ctx.clone(), shared.clone());
        tokio::spawn(async move {
            let mut latency = histogram();
            let mut acked = 0u64;
            while let Some((sent, receipt)) = rx.recv().await {
                receipt.await.cli(&ctx)?;
                record(&mut latency, sent.elapsed());
                acked += 1;
                shared.published.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok((acked, latency))
        })
    };
    let started = Instant::now();
    let mut sent = 0u64;
    while plan.count.is_none_or(|n| sent < n) && !shared.failed.load(Ordering::Relaxed) {
        let now = Instant::now();
        if plan.deadline.is_some_and(|d| now >= d) {
            break;
        }
        let at = match plan.rate {
            Some(rate) => {
                let intended = started + Duration::from_secs_f64(sent as f64 / rate);
                tokio::time::sleep_until(intended).await;
                intended
            }
            None => now,
        };
        let receipt = producer
            .send(Message::new(value(
                plan.size,
                at,
                plan.epoch,
                plan.payload,
                sent,
            )))
            .await
            .cli(&ctx)?;
        if tx.send((at, receipt)).await.is_err() {
            break; // the collector failed; its error is reported below
        }
        sent += 1;
    }
    drop(tx);
    producer.flush().await.cli(&ctx)?;
    let result = collector.await.context("bench producer task")?;
    producer.close().await.cli(&ctx)?;
    result
}

/// A value of `size` bytes starting with the send time (when it fits), then `payload` bytes
/// (`n`: the message's number, which varies a JSON payload).
pub fn value(size: usize, at: Instant, epoch: Instant, payload: Payload, n: u64) -> Bytes {
    let mut value = BytesMut::with_capacity(size);
    if size >= 8 {
        let nanos = u64::try_from(at.duration_since(epoch).as_nanos()).unwrap_or(u64::MAX);
        value.put_u64(nanos);
    }
    match payload {
        Payload::Filler => value.resize(size, b'x'),
        Payload::Json => {
            let mut record = json_record(n);
            while value.len() < size {
                let take = record.len().min(size - value.len());
                value.extend_from_slice(&record.as_bytes()[..take]);
                record = json_record(n.wrapping_mul(31).wrapping_add(7));
            }
        }
    }
    value.freeze()
}

/// One JSON-like order event; the fields vary with `n` as a real stream's would.
pub fn json_record(n: u64) -> String {
    const STATUSES: [&str; 4] = ["created", "paid", "shipped", "delivered"];
    const CURRENCIES: [&str; 3] = ["EUR", "USD", "JPY"];
    let mix = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!(
        r#"{{"order_id":{},"customer":"c-{:05}","status":"{}","amount":{}.{:02},"currency":"{}"}}"#,
        1_000_000 + n,
        mix % 50_000,
        STATUSES[(mix >> 20) as usize % STATUSES.len()],
        (mix >> 24) % 5000,
        (mix >> 40) % 100,
        CURRENCIES[(mix >> 50) as usize % CURRENCIES.len()],
    )
}

/// The send time stamped in a value, if any.
fn sent_at(value: &[u8], epoch: Instant) -> Option<Instant> {
    let nanos = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    epoch.checked_add(Duration::from_nanos(nanos))
}

/// What one consumer task does.
#[derive(Debug, Clone)]
pub struct ConsumerPlan {
    pub topic: String,
    pub subscription: String,
    /// Whether values carry send times worth measuring (pubsub, queue).
    pub measure: bool,
    /// Queue-mode members (each delivery acked) instead of stream-mode ones.
    pub queue: bool,
    /// Queue mode: send every ack on its own (flush after each) instead of in the core's
    /// batches.
    pub ack_each: bool,
    pub epoch: Instant,
}

/// A member of the bench subscription: stream mode (auto-commit) or queue mode (every delivery
/// acked).
pub enum Member {
    Stream(rapidmq::Consumer),
    Queue {
        consumer: rapidmq::QueueConsumer,
        ack_each: bool,
    },
}

impl Member {
    async fn poll(&self, ctx: &Ctx) -> anyhow::Result<Vec<ReceivedMessage>> {
        let wait = Duration::from_millis(100);
        match self {
            Member::Stream(c) => c.poll(1000, wait).await.cli(ctx),
            Member::Queue { consumer, ack_each } => {
                let deliveries = consumer.poll(1000, wait).await.cli(ctx)?;
                for d in &deliveries {
                    consumer.ack(&d.receipt).cli(ctx)?;
                    if *ack_each {
                        consumer.flush().await.cli(ctx)?;
                    }
                }
                Ok(deliveries.into_iter().map(|d| d.message).collect())
            }
        }
    }

    async fn close(&self, ctx: &Ctx) -> anyhow::Result<()> {
        match self {
            Member::Stream(c) => c.close().await.cli(ctx),
            Member::Queue { consumer, .. } => consumer.close().await.cli(ctx),
        }
    }
}

/// A consumer that joined the subscription; [`consume`] runs it.
pub async fn subscribe(
    ctx: &Ctx,
    client: &Client,
    plan: &ConsumerPlan,
    index: usize,
) -> anyhow::Result<Member> {
    if plan.queue {
        return client
            .queue_consumer(plan.topic.clone())
            .subscription(plan.subscription.clone())
            .consumer_name(format!("bench-{index}"))
            .subscribe()
            .await
            .cli(ctx)
            .map(|consumer| Member::Queue {
                consumer,
                ack_each: plan.ack_each,
            });
    }
    client
        .consumer(plan.topic.clone())
        .subscription(plan.subscription.clone())
        .consumer_name(format!("bench-{index}"))
        .auto_commit(true)
        .subscribe()
        .await
        .cli(ctx)
        .map(Member::Stream)
}

/// How long consumers wait without any progress before the run fails.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Polls until the run's consumers together received `shared.target` messages; returns this
/// consumer's count and end-to-end latencies.
pub async fn consume(
    ctx: Ctx,
    consumer: Member,
    plan: ConsumerPlan,
    shared: Arc<Shared>,
) -> anyhow::Result<(u64, Histogram<u64>)> {
    let mut latency = histogram();
    let mut received = 0u64;
    let mut progress_at = Instant::now();
    let mut last_total = 0;
    while shared.consumed.load(Ordering::Relaxed) < shared.target.load(Ordering::Relaxed) {
        if shared.failed.load(Ordering::Relaxed) {
            break;
        }
        let messages = consumer.poll(&ctx).await?;
        let now = Instant::now();
        if plan.measure {
            for m in &messages {
                if let Some(sent) = sent_at(&m.value, plan.epoch) {
                    record(&mut latency, now.saturating_duration_since(sent));
                }
            }
        }
        received += messages.len() as u64;
        let total = shared
            .consumed
            .fetch_add(messages.len() as u64, Ordering::Relaxed)
            + messages.len() as u64;
        if total != last_total {
            last_total = total;
            progress_at = now;
        } else if now.duration_since(progress_at) > STALL_TIMEOUT {
            anyhow::bail!(
                "consumers stalled: {total} messages received, none for {STALL_TIMEOUT:?}"
            );
        }
    }
    consumer.close(&ctx).await?;
    Ok((received, latency))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_send_time_and_have_the_requested_size() {
        let epoch = Instant::now();
        let at = epoch + Duration::from_millis(1234);
        let v = value(100, at, epoch, Payload::Filler, 0);
        assert_eq!(v.len(), 100);
        assert_eq!(sent_at(&v, epoch), Some(at));
        assert_eq!(value(4, at, epoch, Payload::Filler, 0).len(), 4);
        assert_eq!(
            sent_at(&value(4, at, epoch, Payload::Filler, 0), epoch),
            None
        );
        let json = value(100, at, epoch, Payload::Json, 12);
        assert_eq!(json.len(), 100);
        assert_eq!(sent_at(&json, epoch), Some(at));
        assert!(json[8..].starts_with(br#"{"order_id":1000012,"customer":"c-"#));
    }
}
