//! Batch compression (conformance C29) against a real broker: with LZ4 and Zstandard, a batch of
//! JSON-like messages, an empty value and non-UTF-8 bytes reads back exactly as sent, through
//! the log and through a queue subscription (which the broker serves by decompressing), while
//! the topic stores far fewer bytes than the same messages sent plain.

mod common;

use std::time::Duration;

use common::{Env, guarded, read_log};
use rapidmq::{Compression, ErrorCode, Message, StartPosition};

/// The messages of the scenario: 200 JSON-like records, an empty value, non-UTF-8 bytes.
fn messages() -> Vec<Message> {
    let mut messages: Vec<Message> = (0..200)
        .map(|n| {
            Message::new(format!(
                r#"{{"order_id":{},"status":"shipped","customer":"c-{}"}}"#,
                1000 + n,
                n % 7
            ))
            .with_key(format!("k-{}", n % 5))
            .with_header("n", n.to_string())
        })
        .collect();
    messages.push(Message::new(""));
    messages.push(Message::new(vec![0u8, 0xff, 0xfe, 0x80]));
    messages
}

/// Sends the scenario's messages with `compression` in one batch; returns the stored bytes.
async fn publish(env: &Env, topic: &str, compression: Compression) -> u64 {
    let producer = env
        .client
        .producer(topic)
        .compression(compression)
        .linger(Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    let mut receipts = Vec::new();
    for message in messages() {
        receipts.push(producer.send(message).await.unwrap());
    }
    producer.flush().await.unwrap();
    for (index, receipt) in receipts.into_iter().enumerate() {
        let delivery = guarded("send", receipt).await.unwrap();
        assert_eq!(delivery.offset, Some(index as u64), "{compression}");
    }
    producer.close().await.unwrap();
    let info = env.client.admin().describe_topic(topic).await.unwrap();
    info.partitions.iter().map(|p| p.bytes).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_batches_read_back_exactly_and_store_fewer_bytes() {
    let env = Env::start().await;
    let mut stored = Vec::new();
    for compression in Compression::ALL {
        let topic = env.topic(1).await;
        stored.push((compression, publish(&env, &topic, compression).await));
        let log = read_log(&env.client, &topic).await;
        let sent = messages();
        assert_eq!(log.len(), sent.len(), "{compression}");
        for (index, (got, want)) in log.iter().zip(&sent).enumerate() {
            assert_eq!(got.offset, index as u64, "{compression}");
            assert_eq!(got.key, want.key, "{compression}: message {index}");
            assert_eq!(got.value, want.value, "{compression}: message {index}");
            assert_eq!(got.headers, want.headers, "{compression}: message {index}");
        }
    }
    let plain = stored[0].1;
    for &(compression, bytes) in &stored[1..] {
        assert!(
            bytes * 10 < plain * 7,
            "{compression} stored {bytes} bytes, the plain topic {plain}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_subscription_delivers_compressed_messages_one_by_one() {
    let env = Env::start().await;
    for compression in [Compression::Lz4, Compression::Zstd] {
        let topic = env.topic(1).await;
        publish(&env, &topic, compression).await;
        let consumer = env
            .client
            .queue_consumer(&topic)
            .subscription("work")
            .start(StartPosition::Earliest)
            .subscribe()
            .await
            .unwrap();
        let sent = messages();
        let mut got = Vec::new();
        while got.len() < sent.len() {
            let polled = guarded("poll", consumer.poll(100, Duration::from_millis(200)))
                .await
                .unwrap();
            for delivery in polled {
                consumer.ack(&delivery.receipt).unwrap();
                got.push(delivery.message);
            }
        }
        got.sort_by_key(|m| m.offset);
        for (index, (got, want)) in got.iter().zip(&sent).enumerate() {
            assert_eq!(got.offset, index as u64, "{compression}");
            assert_eq!(got.value, want.value, "{compression}: message {index}");
            assert_eq!(got.headers, want.headers, "{compression}: message {index}");
        }
        consumer.close().await.unwrap();
    }
}

#[test]
fn codecs_have_one_spelling_and_unknown_names_are_invalid() {
    for compression in Compression::ALL {
        assert_eq!(
            compression.name().parse::<Compression>().unwrap(),
            compression
        );
    }
    assert_eq!("ZSTD".parse::<Compression>().unwrap(), Compression::Zstd);
    assert_eq!(Compression::default(), Compression::None);
    let err = "gzip".parse::<Compression>().unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
}
