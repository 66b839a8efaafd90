//! Consumes a topic through a named subscription, acknowledging every message.
//!
//! ```text
//! cargo run -p rapidmq --example consumer -- orders billing
//! ```
//! Stops after 5 seconds without messages. Environment: `RAPIDMQ_ENDPOINT`.

use std::time::Duration;

use rapidmq::{Client, StartPosition};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "orders".to_string());
    let subscription = args.next().unwrap_or_else(|| "example".to_string());
    let endpoint = std::env::var("RAPIDMQ_ENDPOINT")
        .unwrap_or_else(|_| rapidmq::defaults::ENDPOINT.to_string());

    let client = Client::connect(endpoint).await?;
    let consumer = client
        .consumer(&topic)
        .subscription(&subscription)
        .start(StartPosition::Earliest)
        .subscribe()
        .await?;
    let mut total = 0u64;
    loop {
        let messages = consumer.poll(500, Duration::from_secs(5)).await?;
        if messages.is_empty() {
            break;
        }
        for message in &messages {
            println!(
                "{}:{} {}",
                message.partition,
                message.offset,
                String::from_utf8_lossy(&message.value)
            );
            consumer.ack(message)?;
        }
        total += messages.len() as u64;
    }
    consumer.close().await?;
    let lag = client.admin().lag(&topic, &subscription).await?;
    println!("consumed {total} messages; lag now {lag}");
    Ok(())
}
