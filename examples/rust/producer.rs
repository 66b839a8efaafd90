//! Publishes messages to a topic and prints where each batch landed.
//!
//! ```text
//! rapidmq serve &                       # a broker on 127.0.0.1:7420
//! cargo run -p rapidmq --example producer -- orders 1000
//! ```
//! Environment: `RAPIDMQ_ENDPOINT` (default `http://127.0.0.1:7420`).

use rapidmq::{Client, ErrorCode, Message, TopicConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "orders".to_string());
    let count: u64 = args.next().map(|n| n.parse()).transpose()?.unwrap_or(1000);
    let endpoint = std::env::var("RAPIDMQ_ENDPOINT")
        .unwrap_or_else(|_| rapidmq::defaults::ENDPOINT.to_string());

    let client = Client::connect(endpoint).await?;
    let config = TopicConfig {
        partitions: 4,
        ..TopicConfig::default()
    };
    match client.admin().create_topic(&topic, config).await {
        Ok(_) => println!("created topic {topic}"),
        Err(e) if e.code() == ErrorCode::TopicAlreadyExists => {}
        Err(e) => return Err(e.into()),
    }

    let producer = client.producer(&topic).build().await?;
    let mut receipts = Vec::with_capacity(count as usize);
    for i in 0..count {
        let message = Message::new(format!("order #{i}")).with_key(format!("customer-{}", i % 10));
        receipts.push(producer.send(message).await?);
    }
    producer.flush().await?;
    let mut last = None;
    for receipt in receipts {
        last = Some(receipt.await?);
    }
    let stats = producer.stats();
    println!(
        "sent {} messages in {} requests; last at {:?}",
        stats.messages_acked, stats.requests, last
    );
    producer.close().await?;
    Ok(())
}
