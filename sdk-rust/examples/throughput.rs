//! Producer benchmark through the SDK (the closing note of the client-core issue): throughput
//! with default batching, and send-to-ack latency at a fixed rate. Build with `--release`.
//!
//! ```text
//! cargo run --release -p rapidmq --example throughput -- publish 1000000 100
//! cargo run --release -p rapidmq --example throughput -- latency 10000 20
//! ```
//! `publish <messages> <size>`: sends that many keyless messages of `size` bytes to a fresh
//! 1-partition fsync topic (like `rapidmq bench-grpc`) as fast as `send` accepts them, and
//! reports messages/s once every receipt resolved.
//! `latency <rate> <seconds>`: sends 100-byte messages paced at `rate` per second and reports
//! p50/p90/p99/max of send-to-receipt time, without the first second (warm-up).
//! Environment: `RAPIDMQ_ENDPOINT`; `RAPIDMQ_BENCH_IN_FLIGHT` (batches per partition in flight,
//! default [`rapidmq::defaults::MAX_IN_FLIGHT_PER_PARTITION`]).

use std::time::{Duration, Instant};

use rapidmq::{Client, Message, TopicConfig};
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let endpoint = std::env::var("RAPIDMQ_ENDPOINT")
        .unwrap_or_else(|_| rapidmq::defaults::ENDPOINT.to_string());
    let client = Client::connect(endpoint).await?;
    let number = |i: usize, default: u64| -> u64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    let topic = format!("sdk-bench-{}", std::process::id());
    let config = TopicConfig {
        partitions: 1,
        ..TopicConfig::default()
    };
    client.admin().create_topic(&topic, config).await?;
    // Default batching; RAPIDMQ_BENCH_IN_FLIGHT overrides the per-partition pipeline depth.
    let mut builder = client.producer(&topic);
    if let Some(n) = std::env::var("RAPIDMQ_BENCH_IN_FLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        builder = builder.max_in_flight_per_partition(n);
    }
    let producer = builder.build().await?;
    match args.first().map(String::as_str) {
        Some("latency") => latency(&producer, number(1, 10_000), number(2, 20)).await?,
        _ => publish(&producer, number(1, 1_000_000), number(2, 100) as usize).await?,
    }
    println!("producer stats: {:?}", producer.stats());
    producer.close().await?;
    client.admin().delete_topic(&topic).await?;
    Ok(())
}

async fn publish(
    producer: &rapidmq::Producer,
    messages: u64,
    size: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let value = bytes::Bytes::from(vec![b'x'; size]);
    let (tx, mut rx) = mpsc::unbounded_channel::<rapidmq::SendReceipt>();
    let waiter = tokio::spawn(async move {
        let mut acked = 0u64;
        while let Some(receipt) = rx.recv().await {
            receipt.await.expect("acknowledged");
            acked += 1;
        }
        acked
    });
    let started = Instant::now();
    for _ in 0..messages {
        tx.send(producer.send(Message::new(value.clone())).await?)?;
    }
    drop(tx);
    let acked = waiter.await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "publish: {acked} x {size} B in {seconds:.2} s = {:.0} msgs/s, {:.1} MB/s",
        acked as f64 / seconds,
        (acked as f64 * size as f64) / seconds / 1e6
    );
    Ok(())
}

async fn latency(
    producer: &rapidmq::Producer,
    rate: u64,
    seconds: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let value = bytes::Bytes::from(vec![b'x'; 100]);
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, rapidmq::SendReceipt)>();
    let waiter = tokio::spawn(async move {
        let mut samples = Vec::new();
        while let Some((sent, receipt)) = rx.recv().await {
            receipt.await.expect("acknowledged");
            samples.push((sent, sent.elapsed()));
        }
        samples
    });
    // 1 ms ticks, each sending its share, so the rate holds without one timer per message.
    let per_tick = (rate / 1000).max(1);
    let ticks = seconds * rate / per_tick;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(per_tick as f64 / rate as f64));
    let started = Instant::now();
    for _ in 0..ticks {
        tick.tick().await;
        for _ in 0..per_tick {
            let now = Instant::now();
            tx.send((now, producer.send(Message::new(value.clone())).await?))?;
        }
    }
    drop(tx);
    let samples = waiter.await?;
    let achieved = samples.len() as f64 / started.elapsed().as_secs_f64();
    let warm = started + Duration::from_secs(1);
    let mut micros: Vec<u64> = samples
        .iter()
        .filter(|(sent, _)| *sent >= warm)
        .map(|(_, d)| d.as_micros() as u64)
        .collect();
    micros.sort_unstable();
    let pct =
        |p: f64| micros[((micros.len() as f64 * p) as usize).min(micros.len() - 1)] as f64 / 1000.0;
    println!(
        "latency at {rate} msgs/s target ({achieved:.0} achieved), {} samples: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        micros.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}
