//! Producer behaviour against a real broker: batching, idempotence, errors.

mod common;

use std::time::Duration;

use common::{Env, guarded, publish_values};
use rapidmq::{ErrorCode, Message, TopicConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_sends_with_5ms_linger_make_far_fewer_requests_than_messages() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let producer = env
        .client
        .producer(&topic)
        .linger(Duration::from_millis(5))
        .build()
        .await
        .unwrap();
    let deliveries = publish_values(&producer, 10_000).await;
    let offsets: Vec<u64> = deliveries
        .iter()
        .map(|d| d.offset.expect("appended"))
        .collect();
    assert_eq!(offsets, (0..10_000).collect::<Vec<_>>());
    let stats = producer.stats();
    assert_eq!(stats.messages_acked, 10_000);
    assert_eq!(stats.retries, 0);
    assert!(
        stats.requests * 10 <= 10_000,
        "10k messages took {} requests",
        stats.requests
    );
    assert_eq!(stats.requests, stats.batches);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_batch_is_sent_without_waiting_for_linger() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let producer = env
        .client
        .producer(&topic)
        .linger(Duration::from_secs(3600))
        .max_batch_messages(100)
        .build()
        .await
        .unwrap();
    let mut receipts = Vec::new();
    for i in 0..150 {
        receipts.push(producer.send(Message::new(format!("{i}"))).await.unwrap());
    }
    let mut rest = receipts.split_off(100);
    for receipt in receipts {
        guarded("full batch", receipt).await.unwrap();
    }
    // The first 100 made one full batch; the other 50 wait for the (hour-long) linger.
    assert_eq!(producer.stats().batches, 1);
    assert!(rest[0].try_result().is_none());
    guarded("flush", producer.flush()).await.unwrap();
    for receipt in rest {
        receipt.await.unwrap();
    }
    assert_eq!(producer.stats().batches, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_messages_land_on_the_partition_of_the_shared_function() {
    let env = Env::start().await;
    let topic = env.topic(8).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    for key in ["order-42", "user:7", "a"] {
        let receipt = producer
            .send(Message::new("v").with_key(key))
            .await
            .unwrap();
        let delivery = guarded("receipt", receipt).await.unwrap();
        let expected = rapidmq_proto::partition_for_key(key.as_bytes(), 8);
        assert_eq!(delivery.partition, expected, "key {key:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_too_large_fails_at_once_with_its_code_and_no_retries() {
    let env = Env::start().await;
    let topic = env
        .topic_with(TopicConfig {
            partitions: 1,
            max_message_bytes: Some(1024),
            ..TopicConfig::default()
        })
        .await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    let receipt = producer.send(Message::new(vec![0u8; 4096])).await.unwrap();
    let err = guarded("receipt", receipt).await.expect_err("too large");
    assert_eq!(err.code(), ErrorCode::MessageTooLarge);
    assert!(!err.is_retriable());
    let stats = producer.stats();
    assert_eq!((stats.requests, stats.retries), (1, 0));

    // The rejected batch did not consume sequence numbers: the next message goes through.
    let receipt = producer.send(Message::new("small")).await.unwrap();
    let delivery = guarded("receipt", receipt).await.unwrap();
    assert_eq!(delivery.offset, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topic_fails_at_once_with_topic_not_found() {
    let env = Env::start().await;
    let err = env
        .client
        .producer("no-such-topic")
        .build()
        .await
        .expect_err("unknown topic");
    assert_eq!(err.code(), ErrorCode::TopicNotFound);
    assert!(!err.is_retriable());

    // A topic deleted under a live producer: the batch fails once, without retries.
    let topic = env.topic(1).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    env.client.admin().delete_topic(&topic).await.unwrap();
    let receipt = producer.send(Message::new("x")).await.unwrap();
    let err = guarded("receipt", receipt)
        .await
        .expect_err("deleted topic");
    assert_eq!(err.code(), ErrorCode::TopicNotFound);
    assert_eq!(producer.stats().retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ack_is_retried_and_the_broker_returns_the_original_offsets() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    producer
        .faults()
        .lose_acks
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let deliveries = publish_values(&producer, 10).await;
    let offsets: Vec<u64> = deliveries
        .iter()
        .map(|d| d.offset.expect("appended"))
        .collect();
    assert_eq!(offsets, (0..10).collect::<Vec<_>>());
    let stats = producer.stats();
    assert_eq!((stats.requests, stats.retries, stats.duplicates), (2, 1, 1));
    let log = env.read_log(&topic).await;
    assert_eq!(log.len(), 10, "the log holds one copy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_batch_is_deduplicated_across_a_broker_restart() {
    let mut env = Env::start().await;
    let topic = env.topic(1).await;
    let batch = || {
        (0..5)
            .map(|i| Message::new(format!("m{i}")))
            .collect::<Vec<_>>()
    };
    let producer_id = 0x5EED_u64;
    let first = env
        .client
        .publish_batch(&topic, 0, producer_id, 0, batch())
        .await
        .unwrap();
    assert_eq!((first.base_offset, first.duplicate), (0, false));

    env.crash_and_restart();

    let again = guarded(
        "resend",
        env.client.publish_batch(&topic, 0, producer_id, 0, batch()),
    )
    .await
    .unwrap();
    assert!(again.duplicate);
    assert_eq!((again.base_offset, again.count), (0, 5));
    assert_eq!(env.read_log(&topic).await.len(), 5);

    let next = env
        .client
        .publish_batch(&topic, 0, producer_id, 5, batch())
        .await
        .unwrap();
    assert_eq!((next.base_offset, next.duplicate), (5, false));
    let err = env
        .client
        .publish_batch(&topic, 0, producer_id, 20, batch())
        .await
        .expect_err("a gap in the sequence");
    assert_eq!(err.code(), ErrorCode::OutOfOrderSequence);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_key_is_a_key_and_stays_apart_from_no_key() {
    let env = Env::start().await;
    let topic = env.topic(8).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    let empty = producer
        .send(Message::new("empty").with_key(""))
        .await
        .unwrap();
    let empty = guarded("receipt", empty).await.unwrap();
    assert_eq!(
        empty.partition,
        rapidmq_proto::partition_for_key(b"", 8),
        "an empty key goes to its own partition, as any key"
    );
    let none = producer.send(Message::new("none")).await.unwrap();
    guarded("receipt", none).await.unwrap();

    let log = env.read_log(&topic).await;
    let key_of = |value: &str| {
        let m = log.iter().find(|m| &m.value[..] == value.as_bytes());
        m.expect("read back").key.clone()
    };
    assert_eq!(key_of("empty").as_deref(), Some(&b""[..]));
    assert_eq!(key_of("none"), None);
}

/// Conformance C30: a batch send is queued whole, in order, or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_send_is_queued_in_order_or_not_at_all() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    let mut out_of_range = Message::new("bad");
    out_of_range.timestamp_ms = Some(i64::MAX / 2 + 1);
    let err = producer
        .send_batch([Message::new("x0"), out_of_range, Message::new("x2")])
        .await
        .expect_err("an invalid message fails the batch");
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.to_string().contains("message 1 of the batch"), "{err}");

    let receipts = producer
        .send_batch((0..100).map(|i| Message::new(format!("m{i}")).with_key(format!("k{i}"))))
        .await
        .unwrap();
    let mut offsets = Vec::new();
    for receipt in receipts {
        offsets.push(guarded("receipt", receipt).await.unwrap().offset);
    }
    assert_eq!(offsets, (0..100).map(Some).collect::<Vec<_>>());
    let log = env.read_log(&topic).await;
    let values: Vec<&[u8]> = log.iter().map(|m| &m.value[..]).collect();
    let sent: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    assert_eq!(
        values,
        sent.iter().map(|s| s.as_bytes()).collect::<Vec<_>>(),
        "nothing of the refused batch was stored, the other in order"
    );

    producer.close().await.unwrap();
    let err = producer
        .send_batch([Message::new("late")])
        .await
        .expect_err("closed");
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(matches!(err, rapidmq::Error::Closed { .. }), "{err:?}");
}
