//! Publish 100k keyed messages over 4 partitions and consume them through a stream
//! subscription: each arrives once, in order per partition, on the partition the shared
//! partition function picks.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use rapidmq_proto::partition_for_key;
use rapidmq_proto::v1 as pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_messages_arrive_once_in_partition_order() {
    const TOTAL: usize = 100_000;
    const PARTITIONS: u32 = 4;
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "orders", topic_config(PARTITIONS)).await;

    let mut per_partition: HashMap<u32, Vec<Msg>> = HashMap::new();
    for i in 0..TOTAL {
        let m = msg(format!("customer-{}", i % 997), format!("order-{i}"));
        per_partition
            .entry(partition_for_key(&m.key, PARTITIONS))
            .or_default()
            .push(m);
    }
    for (&partition, messages) in &per_partition {
        let mut expected_offset = 0;
        for chunk in messages.chunks(1000) {
            let ack = publish(&mut c, "orders", partition, chunk).await.unwrap();
            assert_eq!(
                ack.base_offset, expected_offset,
                "offsets are dense per partition"
            );
            assert_eq!(ack.count as usize, chunk.len());
            assert_eq!(
                ack.durability,
                pb::Durability::Fsync as i32,
                "fsync is the default"
            );
            expected_offset += chunk.len() as u64;
        }
    }

    let mut consumer = Consumer::open(
        &mut c,
        "orders",
        "billing",
        start(pb::StartKind::Earliest),
        5000,
    )
    .await
    .unwrap();
    assert_eq!(consumer.partitions(), vec![0, 1, 2, 3]);
    let received = consumer.receive(TOTAL).await;
    assert_eq!(received.len(), TOTAL);

    let mut got: HashMap<u32, Vec<Received>> = HashMap::new();
    for r in received {
        assert_eq!(
            r.partition,
            partition_for_key(&r.msg.key, PARTITIONS),
            "partition follows the partition function"
        );
        got.entry(r.partition).or_default().push(r);
    }
    for (partition, sent) in &per_partition {
        let got = &got[partition];
        assert_eq!(
            got.len(),
            sent.len(),
            "partition {partition}: each message exactly once"
        );
        for (i, (r, m)) in got.iter().zip(sent).enumerate() {
            assert_eq!(
                r.offset, i as u64,
                "partition {partition}: offsets in order"
            );
            assert_eq!(
                &r.msg, m,
                "partition {partition}: messages in publish order"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_reads_from_any_offset_and_long_polls_for_new_data() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "events", topic_config(1)).await;
    let batch: Vec<Msg> = (0..10).map(|i| msg("k", format!("v{i}"))).collect();
    publish(&mut c, "events", 0, &batch).await.unwrap();
    publish(&mut c, "events", 0, &batch).await.unwrap();

    let response = c
        .messaging
        .fetch(pb::FetchRequest {
            topic: "events".into(),
            partition: 0,
            offset: 7,
            max_messages: 5,
            max_wait_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let got: Vec<Received> = response.batches.iter().flat_map(decode).collect();
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![7, 8, 9, 10, 11]
    );
    assert_eq!(response.high_watermark, 20);

    // A long poll at the end returns as soon as something is published.
    let mut fetcher = c.messaging.clone();
    let poll = tokio::spawn(async move {
        fetcher
            .fetch(pb::FetchRequest {
                topic: "events".into(),
                partition: 0,
                offset: 20,
                max_messages: 100,
                max_wait_ms: 20_000,
            })
            .await
            .unwrap()
            .into_inner()
    });
    publish(&mut c, "events", 0, &[msg("k", "late")])
        .await
        .unwrap();
    let response = poll.await.unwrap();
    let got: Vec<Received> = response.batches.iter().flat_map(decode).collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].offset, 20);
    assert_eq!(got[0].msg.value, "late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_tail_sees_only_new_messages_and_persists_nothing() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "ticks", topic_config(2)).await;
    publish(&mut c, "ticks", 0, &[msg("a", "old")])
        .await
        .unwrap();

    let mut tail = Consumer::open(&mut c, "ticks", "", start(pb::StartKind::Latest), 100)
        .await
        .unwrap();
    assert_eq!(tail.partitions(), vec![0, 1]);
    publish(&mut c, "ticks", 1, &[msg("b", "new")])
        .await
        .unwrap();
    let got = tail.receive(1).await;
    assert_eq!(got[0].msg.value, "new");

    let subs = c
        .admin
        .list_subscriptions(pb::ListSubscriptionsRequest {
            topic: "ticks".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        subs.subscriptions.is_empty(),
        "an ephemeral tail creates no subscription"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_buffered_topics_report_what_their_ack_guarantees() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(
        &mut c,
        "mem",
        pb::TopicConfig {
            storage: pb::Storage::Memory as i32,
            ..topic_config(1)
        },
    )
    .await;
    create_topic(
        &mut c,
        "buf",
        pb::TopicConfig {
            durability: pb::Durability::Buffered as i32,
            ..topic_config(1)
        },
    )
    .await;
    let ack = publish(&mut c, "mem", 0, &[msg("k", "v")]).await.unwrap();
    assert_eq!(ack.durability, pb::Durability::Memory as i32);
    let ack = publish(&mut c, "buf", 0, &[msg("k", "v")]).await.unwrap();
    assert_eq!(ack.durability, pb::Durability::Buffered as i32);

    let mut tail = Consumer::open(&mut c, "mem", "reader", start(pb::StartKind::Earliest), 10)
        .await
        .unwrap();
    assert_eq!(tail.receive(1).await[0].msg.value, "v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_credits_hold_back_stream_deliveries_until_the_consumer_grants_them() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "big", topic_config(1)).await;
    let value = "v".repeat(1000);
    for _ in 0..3 {
        let batch: Vec<Msg> = (0..10)
            .map(|i| msg(format!("k{i}"), value.clone()))
            .collect();
        publish(&mut c, "big", 0, &batch).await.unwrap();
    }

    // Credits for every message, but a single byte: one batch goes out whole, then none.
    let mut consumer = Consumer::subscribe(
        &mut c,
        pb::Subscribe {
            topic: "big".into(),
            subscription: "s".into(),
            start: Some(start(pb::StartKind::Earliest)),
            credits: 1000,
            credit_bytes: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let first = match consumer.next_event().await {
        Some(pb::consume_response::Kind::Batch(batch)) => batch,
        other => panic!("expected a batch, got {other:?}"),
    };
    assert_eq!((first.base_offset, first.count), (0, 10));
    assert!(first.batch.len() > 10_000, "{} bytes", first.batch.len());
    assert_eq!(
        consumer.next_within(Duration::from_millis(500)).await,
        None,
        "a batch beyond the byte credits"
    );

    // Granting back what the first batch was charged (and no message) lets exactly one more
    // through: the byte credits are at 1 again.
    consumer.grant(0, first.batch.len() as u64).await;
    match consumer.next_event().await {
        Some(pb::consume_response::Kind::Batch(batch)) => {
            assert_eq!((batch.base_offset, batch.count), (10, 10));
            assert_eq!(batch.batch.len(), first.batch.len());
        }
        other => panic!("expected the second batch, got {other:?}"),
    }
    assert_eq!(consumer.next_within(Duration::from_millis(500)).await, None);
    consumer.grant(0, first.batch.len() as u64).await;
    match consumer.next_event().await {
        Some(pb::consume_response::Kind::Batch(batch)) => assert_eq!(batch.base_offset, 20),
        other => panic!("expected the third batch, got {other:?}"),
    }

    // A credit that grants nothing at all is refused, and the stream stays open.
    consumer.grant(0, 0).await;
    match consumer.next_event().await {
        Some(pb::consume_response::Kind::Error(err)) => assert_eq!(err.name, "INVALID_CREDITS"),
        other => panic!("expected INVALID_CREDITS, got {other:?}"),
    }
}
