//! Runs one workload against one system and measures it.
//!
//! Every value starts with its *intended* send time (nanoseconds since the process's epoch), so
//! consumers in the same process measure end-to-end latency without clock skew, and open-loop
//! runs measure from when a message should have been sent (no coordinated omission).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::{BufMut, Bytes, BytesMut};
use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::stats::{histogram, record};
use crate::systems::{AckFuture, PublishOptions, Session, Target, Tier};

/// The workloads of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// 1P/1C, batch 1, one message in flight: the publish round trip.
    Latency,
    /// 1P/1C, batches of `batch` with several in flight.
    Throughput,
    /// 1 producer, `consumers` subscribers each reading everything.
    Fanout,
    /// Publish `count`, then one consumer reads them all from the start.
    Replay,
    /// Messages sent at a fixed rate whatever the acks do; latency from the intended send time.
    OpenLoop,
}

impl Workload {
    pub const ALL: [Workload; 5] = [
        Workload::Latency,
        Workload::Throughput,
        Workload::Fanout,
        Workload::Replay,
        Workload::OpenLoop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Latency => "latency",
            Workload::Throughput => "throughput",
            Workload::Fanout => "fanout",
            Workload::Replay => "replay",
            Workload::OpenLoop => "openloop",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| {
                anyhow!("unknown workload {s:?} (latency, throughput, fanout, replay, openloop)")
            })
    }
}

/// One run's parameters.
#[derive(Debug, Clone)]
pub struct Plan {
    pub workload: Workload,
    pub tier: Tier,
    pub size: usize,
    pub batch: usize,
    pub inflight: usize,
    pub consumers: usize,
    /// Messages to publish (closed-loop and replay runs).
    pub count: u64,
    /// Open loop: messages per second, and for how long.
    pub rate: f64,
    pub duration: Duration,
}

/// What one run measured.
#[derive(Debug)]
pub struct Outcome {
    pub published: u64,
    /// First send to last acknowledgement.
    pub publish_secs: f64,
    /// Messages delivered, summed over consumers.
    pub delivered: u64,
    /// First send (replay: first read) to the last delivery of the last consumer.
    pub deliver_secs: f64,
    /// Publish → acknowledgement, per message (a batch counts once per message).
    pub ack: Histogram<u64>,
    /// Intended send → delivery, per message (empty for replay).
    pub e2e: Histogram<u64>,
    pub fsyncs: Option<u64>,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// A value of `size` bytes starting with `at` (when it fits).
pub fn stamped(size: usize, at: Instant) -> Bytes {
    let mut value = BytesMut::with_capacity(size);
    if size >= 8 {
        let nanos = u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(0);
        value.put_u64(nanos);
    }
    value.resize(size, b'x');
    value.freeze()
}

/// The send time stamped in a value, if any.
pub fn stamp_of(value: &[u8]) -> Option<Instant> {
    let nanos = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    epoch().checked_add(Duration::from_nanos(nanos))
}

/// How long a consumer may see nothing before the run fails.
const STALL: Duration = Duration::from_secs(30);

/// Runs `plan` on a fresh topic / stream named `name` on `target`.
pub async fn run(target: &Target, plan: &Plan, name: &str) -> anyhow::Result<Outcome> {
    epoch();
    let session = Session::create(target, plan.tier, name).await?;
    let fsyncs_before = session.fsyncs().await?;
    let result = match plan.workload {
        Workload::Replay => replay(&session, plan).await,
        _ => live(&session, plan).await,
    };
    let fsyncs_after = session.fsyncs().await?;
    session.delete().await.context("delete the run's topic")?;
    let mut outcome = result?;
    outcome.fsyncs = fsyncs_before
        .zip(fsyncs_after)
        .map(|(before, after)| after.saturating_sub(before));
    Ok(outcome)
}

/// Producer and consumers at the same time.
async fn live(session: &Session, plan: &Plan) -> anyhow::Result<Outcome> {
    let consumers = match plan.workload {
        Workload::Fanout => plan.consumers.max(1),
        _ => 1,
    };
    let expected = Arc::new(AtomicU64::new(u64::MAX));
    let mut readers = Vec::new();
    for index in 0..consumers {
        let subscriber = session.subscriber(index).await?;
        readers.push(tokio::spawn(consume(subscriber, expected.clone(), true)));
    }
    let started = Instant::now();
    let (published, publish_secs, ack) = publish(session, plan, started).await?;
    expected.store(published, Ordering::SeqCst);
    let mut delivered = 0;
    let mut e2e = histogram();
    let mut last = started;
    for reader in readers {
        let (count, histogram, done) = reader.await.context("consumer task")??;
        delivered += count;
        e2e.add(histogram)?;
        last = last.max(done);
    }
    Ok(Outcome {
        published,
        publish_secs,
        delivered,
        deliver_secs: (last - started).as_secs_f64(),
        ack,
        e2e,
        fsyncs: None,
    })
}

/// Publishes everything first, then times one consumer reading it from the start.
async fn replay(session: &Session, plan: &Plan) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let (published, publish_secs, ack) = publish(session, plan, started).await?;
    let subscriber = session.subscriber(0).await?;
    let reading = Instant::now();
    let (delivered, _, done) = consume(subscriber, Arc::new(AtomicU64::new(published)), false)
        .await
        .context("replay consumer")?;
    Ok(Outcome {
        published,
        publish_secs,
        delivered,
        deliver_secs: (done - reading).as_secs_f64(),
        ack,
        e2e: histogram(),
        fsyncs: None,
    })
}

/// The publisher side: returns (messages acknowledged, seconds to the last ack, ack latency).
async fn publish(
    session: &Session,
    plan: &Plan,
    started: Instant,
) -> anyhow::Result<(u64, f64, Histogram<u64>)> {
    let open_loop = plan.workload == Workload::OpenLoop;
    let batch = if open_loop || plan.workload == Workload::Latency {
        1
    } else {
        plan.batch.max(1)
    };
    let inflight = match plan.workload {
        Workload::Latency => 1,
        // Open loop: the rate decides, never the acks.
        Workload::OpenLoop => Semaphore::MAX_PERMITS,
        _ => plan.inflight.max(1),
    };
    let mut publisher = session
        .publisher(PublishOptions {
            batch: if open_loop { 1000 } else { batch },
            inflight: plan.inflight.max(1),
            linger_zero: matches!(plan.workload, Workload::Latency | Workload::OpenLoop),
            size: plan.size,
        })
        .await?;
    let permits = Arc::new(Semaphore::new(inflight));
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, u64, AckFuture, _)>();
    let collector = tokio::spawn(async move {
        let mut ack = histogram();
        let mut acked = 0u64;
        let mut last = Instant::now();
        while let Some((sent, n, future, permit)) = rx.recv().await {
            future.await?;
            last = Instant::now();
            record(&mut ack, last - sent, n);
            acked += n;
            drop(permit);
        }
        anyhow::Ok((acked, last, ack))
    });
    let total = if open_loop {
        (plan.rate * plan.duration.as_secs_f64()).round() as u64
    } else {
        plan.count
    };
    let mut sent = 0u64;
    while sent < total {
        let permit = permits.clone().acquire_owned().await?;
        let at = if open_loop {
            let intended = started + Duration::from_secs_f64(sent as f64 / plan.rate);
            tokio::time::sleep_until(intended).await;
            intended
        } else {
            Instant::now()
        };
        let n = (total - sent).min(batch as u64);
        let values = (0..n).map(|_| stamped(plan.size, at)).collect();
        let future = publisher.send(values).await?;
        if tx.send((at, n, future, permit)).is_err() {
            break; // the collector failed: its error is returned below
        }
        sent += n;
    }
    drop(tx);
    let (acked, last, ack) = collector.await.context("ack collector")??;
    publisher.close().await?;
    if acked != total {
        bail!("{acked} of {total} messages acknowledged");
    }
    Ok((acked, (last - started).as_secs_f64(), ack))
}

/// Reads until `expected` values arrived; returns (count, e2e latency, time of the last one).
async fn consume(
    mut subscriber: crate::systems::Subscriber,
    expected: Arc<AtomicU64>,
    measure: bool,
) -> anyhow::Result<(u64, Histogram<u64>, Instant)> {
    let mut e2e = histogram();
    let mut received = 0u64;
    let mut last = Instant::now();
    while received < expected.load(Ordering::SeqCst) {
        let values = subscriber.next().await?;
        let now = Instant::now();
        if values.is_empty() {
            if now - last > STALL {
                bail!(
                    "consumer stalled at {received} of {} messages",
                    expected.load(Ordering::SeqCst)
                );
            }
            continue;
        }
        if measure {
            for value in &values {
                if let Some(at) = stamp_of(value) {
                    record(&mut e2e, now.saturating_duration_since(at), 1);
                }
            }
        }
        received += values.len() as u64;
        last = now;
    }
    subscriber.close().await?;
    Ok((received, e2e, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        let at = Instant::now() + Duration::from_millis(3);
        let value = stamped(100, at);
        assert_eq!(value.len(), 100);
        let back = stamp_of(&value).unwrap();
        let diff = if back > at { back - at } else { at - back };
        assert!(diff < Duration::from_micros(1), "{diff:?}");
        assert_eq!(stamped(4, at).len(), 4);
        assert_eq!(stamp_of(&stamped(4, at)), None);
    }

    #[test]
    fn workload_names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(w.name().parse::<Workload>().unwrap(), w);
        }
        assert!("soak".parse::<Workload>().is_err());
    }
}
