//! `rust-producer URL TOPIC COUNT SIZE`: sends COUNT messages of SIZE bytes through sdk-rust with
//! default producer settings, waits for every receipt, and prints `{"msgs_per_s": N}`.

use std::time::Instant;

use rapidmq::{Client, Message};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (url, topic) = (&args[1], &args[2]);
    let count: usize = args[3].parse()?;
    let size: usize = args[4].parse()?;
    let client = Client::connect(url.clone()).await?;
    let producer = client.producer(topic).build().await?;
    let payload = vec![b'x'; size];
    let started = Instant::now();
    let mut receipts = Vec::with_capacity(count);
    for _ in 0..count {
        receipts.push(producer.send(Message::new(payload.clone())).await?);
    }
    for receipt in receipts {
        receipt.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("{{\"msgs_per_s\": {:.0}}}", count as f64 / elapsed);
    producer.close().await?;
    Ok(())
}
