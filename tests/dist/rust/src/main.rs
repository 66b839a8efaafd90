//! The Rust quickstart of `make test-dist`: the `rapidmq` crate as packaged for crates.io, against
//! a broker started from the release archive. Publishes three messages with keys and headers to
//! a new topic, reads them back, and fails on any difference.
//!
//!     cargo run -- http://127.0.0.1:7420

use std::time::Duration;

use rapidmq::{Client, Message, StartPosition, TopicConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::args().nth(1).ok_or("usage: quickstart ENDPOINT")?;
    println!("rapidmq {} ({})", rapidmq::VERSION, rapidmq::GIT_REVISION);
    let client = Client::connect(endpoint).await?;
    let topic = format!("dist-rust-{}", std::process::id());
    client
        .admin()
        .create_topic(&topic, TopicConfig::default())
        .await?;

    let producer = client.producer(&topic).build().await?;
    let mut sent = Vec::new();
    for i in 0..3 {
        let message = Message::new(format!("hello {i}"))
            .with_key(format!("key-{i}"))
            .with_header("lang", "rust");
        sent.push(producer.send(message).await?);
    }
    for receipt in sent {
        receipt.await?;
    }

    let consumer = client
        .consumer(&topic)
        .subscription("quickstart")
        .start(StartPosition::Earliest)
        .subscribe()
        .await?;
    let mut got = Vec::new();
    while got.len() < 3 {
        let polled = consumer.poll(10, Duration::from_secs(10)).await?;
        if polled.is_empty() {
            return Err(format!("only {} of 3 messages arrived", got.len()).into());
        }
        got.extend(polled);
    }
    for (i, m) in got.iter().enumerate() {
        let want_value = format!("hello {i}");
        let want_key = format!("key-{i}");
        if m.value != want_value.as_bytes()
            || m.key.as_deref() != Some(want_key.as_bytes())
            || m.headers.len() != 1
            || m.headers[0].0 != "lang"
            || m.headers[0].1[..] != b"rust"[..]
        {
            return Err(format!("message {i} came back as {m:?}").into());
        }
        consumer.ack(m)?;
    }
    consumer.close().await?;
    client.admin().delete_topic(&topic).await?;
    println!("rust quickstart: 3 messages published and consumed back");
    Ok(())
}

