//! Extreme numbers (`u64::MAX`, `i64::MAX`, `i64::MIN`, 0) in every client-supplied field of the
//! publish, fetch, consume, commit, seek, ack/nack/extend and topic paths: the broker answers
//! with a clear error or takes the value as documented, never panics (a debug build panics on
//! overflow), keeps serving, and stores nothing wrongly.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use prost::Message as _;
use rapidmq_broker::clock::{Clock, SystemClock};
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1 as pb;

/// Publishes `batch` to partition 0 as `producer_id` from `base_sequence`.
async fn publish_batch(
    c: &mut Clients,
    topic: &str,
    batch: pb::MessageBatch,
    producer_id: u64,
    base_sequence: u64,
) -> Result<pb::PublishResponse, tonic::Status> {
    c.messaging
        .publish(pb::PublishRequest {
            topic: topic.into(),
            partition: 0,
            producer_id,
            base_sequence,
            batch: batch.encode_to_vec().into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn one(message: pb::Message) -> pb::MessageBatch {
    pb::MessageBatch {
        messages: vec![message],
        base_timestamp_ms: 1_700_000_000_000,
        compression: 0,
        ..Default::default()
    }
}

/// Reads partition 0 from offset 0 until `n` messages are there (long-polling, no sleeps):
/// `(value, producer timestamp)` of each, the timestamp computed without overflow.
async fn read(c: &mut Clients, topic: &str, n: usize) -> Vec<(String, i128)> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let response = c
            .messaging
            .fetch(pb::FetchRequest {
                topic: topic.into(),
                partition: 0,
                offset: 0,
                max_messages: 1000,
                max_wait_ms: 0,
            })
            .await
            .expect("fetch")
            .into_inner();
        let mut out = Vec::new();
        for delivery in &response.batches {
            let batch =
                pb::MessageBatch::decode(delivery.batch.clone()).expect("stored batch decodes");
            for m in batch
                .messages
                .iter()
                .skip(delivery.skip as usize)
                .take(delivery.count as usize)
            {
                out.push((
                    String::from_utf8(m.value.to_vec()).expect("UTF-8 value"),
                    i128::from(batch.base_timestamp_ms) + i128::from(m.timestamp_delta_ms),
                ));
            }
        }
        if out.len() >= n {
            return out;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} messages in `{topic}`: {out:?}",
            out.len()
        );
        // Long-poll for the next append instead of sleeping.
        let _ = c
            .messaging
            .fetch(pb::FetchRequest {
                topic: topic.into(),
                partition: 0,
                offset: response.high_watermark,
                max_messages: 1,
                max_wait_ms: 500,
            })
            .await;
    }
}

/// The broker is alive, healthy, still takes and serves writes, and logged no panic.
async fn assert_healthy(broker: &TestBroker, c: &mut Clients) {
    let health = reqwest::get(format!("{}/healthz", broker.http_url()))
        .await
        .expect("the broker answers /healthz");
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let name = "health-check";
    let _ = c
        .admin
        .create_topic(pb::CreateTopicRequest {
            name: name.into(),
            config: Some(topic_config(1)),
        })
        .await;
    publish(c, name, 0, &[msg("k", "alive")])
        .await
        .expect("the broker still takes writes");
    assert!(
        read(c, name, 1).await.iter().any(|(v, _)| v == "alive"),
        "the broker still serves reads"
    );
    let log = broker.log();
    assert!(!log.contains("panicked"), "the broker panicked:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_sequence_past_u64_max_is_refused_and_the_partition_keeps_writing() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "seq", topic_config(1)).await;

    // u64::MAX + 1 message: the next expected sequence would not fit.
    let err = publish_batch(&mut c, "seq", one(raw("overflow")), 7, u64::MAX)
        .await
        .expect_err("a sequence range past u64::MAX is refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert_eq!(error_code(&err), ErrorCode::InvalidArgument);
    let two = pb::MessageBatch {
        messages: vec![raw("a"), raw("b")],
        ..one(raw(""))
    };
    let err = publish_batch(&mut c, "seq", two, 7, u64::MAX - 1)
        .await
        .expect_err("two messages from u64::MAX - 1 do not fit either");
    assert_eq!(error_code(&err), ErrorCode::InvalidArgument);

    // The last message that fits: its sequence is u64::MAX - 1, the next expected u64::MAX.
    let ack = publish_batch(&mut c, "seq", one(raw("last")), 7, u64::MAX - 1)
        .await
        .expect("the last sequence that fits is accepted");
    assert_eq!((ack.base_offset, ack.duplicate), (0, false));
    let retry = publish_batch(&mut c, "seq", one(raw("last")), 7, u64::MAX - 1)
        .await
        .expect("a retry is answered");
    assert_eq!((retry.base_offset, retry.duplicate), (0, true));
    // Sequences do not wrap back to 0.
    let err = publish_batch(&mut c, "seq", one(raw("wrapped")), 7, 0)
        .await
        .expect_err("sequence 0 after u64::MAX - 1 is not the next one");
    assert_eq!(error_code(&err), ErrorCode::OutOfOrderSequence);
    publish_batch(&mut c, "seq", one(raw("other producer")), u64::MAX, 0)
        .await
        .expect("producer id u64::MAX is an id like any other");
    publish(&mut c, "seq", 0, &[msg("k", "plain")])
        .await
        .expect("the partition keeps writing");

    let values: Vec<String> = read(&mut c, "seq", 3)
        .await
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    assert_eq!(values, ["last", "other producer", "plain"]);
    assert_healthy(&broker, &mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_timestamps_beyond_i64_are_refused() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "ts", topic_config(1)).await;

    for (base, delta) in [(i64::MAX, 1), (i64::MIN, -1), (1_700_000_000_000, i64::MAX)] {
        let batch = pb::MessageBatch {
            messages: vec![pb::Message {
                timestamp_delta_ms: delta,
                ..raw("beyond")
            }],
            base_timestamp_ms: base,
            compression: 0,
            ..Default::default()
        };
        let err = publish_batch(&mut c, "ts", batch, 0, 0)
            .await
            .expect_err("a producer timestamp beyond i64 is refused");
        assert_eq!(
            error_code(&err),
            ErrorCode::InvalidArgument,
            "{base} + {delta}"
        );
    }
    // The extremes themselves are timestamps like any other.
    for (base, delta) in [(i64::MAX, 0), (0, i64::MIN), (i64::MIN, i64::MAX)] {
        let batch = pb::MessageBatch {
            messages: vec![pb::Message {
                timestamp_delta_ms: delta,
                ..raw("edge")
            }],
            base_timestamp_ms: base,
            compression: 0,
            ..Default::default()
        };
        publish_batch(&mut c, "ts", batch, 0, 0)
            .await
            .expect("a producer timestamp within i64 is accepted");
    }
    let timestamps: Vec<i128> = read(&mut c, "ts", 3)
        .await
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(timestamps, [i128::from(i64::MAX), i128::from(i64::MIN), -1]);
    assert_healthy(&broker, &mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_messages_with_extreme_timestamps_come_due_with_their_timestamps() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "later", topic_config(1)).await;

    // Two batches due at the same moment, so the broker merges them into one appended batch.
    let due = SystemClock.now_ms() + 1_500;
    for (value, base) in [("earliest", i64::MIN), ("latest", i64::MAX)] {
        let batch = pb::MessageBatch {
            messages: vec![pb::Message {
                deliver_at_ms: due,
                ..raw(value)
            }],
            base_timestamp_ms: base,
            compression: 0,
            ..Default::default()
        };
        let ack = publish_batch(&mut c, "later", batch, 0, 0).await.unwrap();
        assert_eq!(ack.scheduled, 1);
    }
    let mut got = read(&mut c, "later", 2).await;
    got.sort();
    assert_eq!(
        got,
        [
            ("earliest".to_string(), i128::from(i64::MIN)),
            ("latest".to_string(), i128::from(i64::MAX)),
        ]
    );
    assert_healthy(&broker, &mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_values_in_messages_get_clear_errors_or_are_taken_as_documented() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "m", topic_config(1)).await;

    let refused = [
        (
            pb::Message {
                priority: u32::MAX,
                ..raw("x")
            },
            ErrorCode::InvalidPriority,
        ),
        (
            pb::Message {
                delay_ms: u64::MAX,
                ..raw("x")
            },
            ErrorCode::DeliverAtOutOfRange,
        ),
        (
            pb::Message {
                deliver_at_ms: i64::MAX,
                ..raw("x")
            },
            ErrorCode::DeliverAtOutOfRange,
        ),
        (
            pb::Message {
                ttl_ms: i64::MIN,
                ..raw("x")
            },
            ErrorCode::InvalidArgument,
        ),
    ];
    for (message, code) in refused {
        let err = publish_batch(&mut c, "m", one(message.clone()), 0, 0)
            .await
            .expect_err("refused");
        assert_eq!(error_code(&err), code, "{message:?}");
    }
    let err = c
        .messaging
        .publish(pb::PublishRequest {
            topic: "m".into(),
            partition: u32::MAX,
            batch: one(raw("x")).encode_to_vec().into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::PartitionNotFound);

    // A TTL of i64::MAX never expires; a due time long past is no delay at all.
    publish_batch(
        &mut c,
        "m",
        one(pb::Message {
            ttl_ms: i64::MAX,
            ..raw("forever")
        }),
        0,
        0,
    )
    .await
    .unwrap();
    let ack = publish_batch(
        &mut c,
        "m",
        one(pb::Message {
            deliver_at_ms: i64::MIN,
            ..raw("long ago")
        }),
        0,
        0,
    )
    .await
    .unwrap();
    assert_eq!(ack.scheduled, 0);
    let values: Vec<String> = read(&mut c, "m", 2)
        .await
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    assert_eq!(values, ["forever", "long ago"]);

    let mut consumer = Consumer::open(&mut c, "m", "s", start(pb::StartKind::Earliest), 1)
        .await
        .unwrap();
    let got: Vec<Bytes> = consumer
        .receive(2)
        .await
        .into_iter()
        .map(|r| r.msg.value)
        .collect();
    assert_eq!(got, [Bytes::from("forever"), Bytes::from("long ago")]);
    assert_healthy(&broker, &mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_offsets_credits_deadlines_and_delays_get_clear_answers() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "o", topic_config(1)).await;
    publish(&mut c, "o", 0, &[msg("k", "a"), msg("k", "b")])
        .await
        .unwrap();

    // Fetch.
    let err = c
        .messaging
        .fetch(pb::FetchRequest {
            topic: "o".into(),
            partition: 0,
            offset: u64::MAX,
            max_messages: u32::MAX,
            max_wait_ms: u32::MAX,
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::OffsetOutOfRange);
    let fetched = c
        .messaging
        .fetch(pb::FetchRequest {
            topic: "o".into(),
            partition: 0,
            offset: 0,
            max_messages: u32::MAX,
            max_wait_ms: u32::MAX,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.batches.iter().map(|b| b.count).sum::<u32>(), 2);
    let err = c
        .messaging
        .fetch(pb::FetchRequest {
            topic: "o".into(),
            partition: u32::MAX,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::PartitionNotFound);

    // A stream consumer with every credit there is, granted again on top.
    let mut consumer = Consumer::open(&mut c, "o", "s", start(pb::StartKind::Earliest), u32::MAX)
        .await
        .unwrap();
    consumer.credit(u32::MAX).await;
    assert_eq!(consumer.receive(2).await.len(), 2);

    // Commits and seeks.
    let err = c
        .messaging
        .commit_offset(pb::CommitOffsetRequest {
            topic: "o".into(),
            subscription: "s".into(),
            offsets: vec![pb::PartitionOffset {
                partition: 0,
                offset: u64::MAX,
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::OffsetOutOfRange);
    let seek = |position: pb::StartPosition, partition: Option<u32>| pb::SeekSubscriptionRequest {
        topic: "o".into(),
        name: "s".into(),
        position: Some(position),
        partition,
    };
    let committed = |info: pb::SubscriptionInfo| info.cursors[0].committed_offset;
    let info = c
        .admin
        .seek_subscription(seek(
            pb::StartPosition {
                kind: pb::StartKind::Offset as i32,
                offset: u64::MAX,
                timestamp_ms: 0,
            },
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        committed(info),
        2,
        "an offset past the end seeks to the end"
    );
    let info = c
        .admin
        .seek_subscription(seek(
            pb::StartPosition {
                kind: pb::StartKind::Timestamp as i32,
                offset: 0,
                timestamp_ms: i64::MIN,
            },
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        committed(info),
        0,
        "the earliest timestamp seeks to the start"
    );
    let info = c
        .admin
        .seek_subscription(seek(
            pb::StartPosition {
                kind: pb::StartKind::Timestamp as i32,
                offset: 0,
                timestamp_ms: i64::MAX,
            },
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(committed(info), 2, "the latest timestamp seeks to the end");
    let err = c
        .admin
        .seek_subscription(seek(
            pb::StartPosition {
                kind: pb::StartKind::Earliest as i32,
                ..Default::default()
            },
            Some(u32::MAX),
        ))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::PartitionNotFound);
    drop(consumer);

    // A queue subscription with the longest deadline and the most deliveries there are.
    let mut queue = QueueConsumer::open(
        &mut c,
        "o",
        "q",
        queue_settings(u64::MAX, u32::MAX),
        u32::MAX,
    )
    .await
    .unwrap();
    let got = queue.receive(2).await;
    queue.credit(u32::MAX).await;
    // The longest extension and nack delay are refused (above `queue.max_ack_extension_ms` and
    // `queue.max_nack_delay_ms`, 24 h); the longest allowed ones are taken.
    const DAY_MS: u64 = 86_400_000;
    queue.extend(vec![receipt(&got[0])], u64::MAX).await;
    queue.nack(vec![receipt(&got[1])], u64::MAX).await;
    for what in ["extend", "nack"] {
        match queue.next_within(PATIENCE).await {
            Some(pb::consume_response::Kind::Error(err)) => {
                assert_eq!(err.name, "INVALID_ARGUMENT", "{what}: {err:?}")
            }
            other => panic!("{what}: expected INVALID_ARGUMENT, got {other:?}"),
        }
    }
    queue.extend(vec![receipt(&got[0])], DAY_MS).await;
    queue.nack(vec![receipt(&got[1])], DAY_MS).await;
    queue
        .ack(vec![pb::Receipt {
            partition: u32::MAX,
            offset: u64::MAX,
            delivery_id: u64::MAX,
        }])
        .await;
    match queue.next_within(PATIENCE).await {
        Some(pb::consume_response::Kind::Error(err)) => assert_eq!(err.name, "RECEIPT_UNKNOWN"),
        other => panic!("expected RECEIPT_UNKNOWN, got {other:?}"),
    }
    queue.ack(vec![receipt(&got[0])]).await;
    let nothing = queue.next_within(Duration::from_millis(300)).await;
    assert!(
        nothing.is_none(),
        "the extended message was acked and the nacked one waits: {nothing:?}"
    );
    drop(queue);

    // Topic settings at their extremes.
    let info = create_topic(
        &mut c,
        "wide",
        pb::TopicConfig {
            partitions: Some(1),
            retention_ms: Some(u64::MAX),
            retention_bytes: Some(u64::MAX),
            retention_messages: Some(u64::MAX),
            dedup_window_ms: Some(u64::MAX),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(info.config.unwrap().dedup_window_ms, Some(u64::MAX));
    let with_id = || {
        one(pb::Message {
            headers: vec![pb::Header {
                key: "msg-id".into(),
                value: Bytes::from_static(b"once"),
            }],
            ..raw("once")
        })
    };
    let first = publish_batch(&mut c, "wide", with_id(), 0, 0)
        .await
        .unwrap();
    assert!(first.deduplicated.is_empty());
    let second = publish_batch(&mut c, "wide", with_id(), 0, 0)
        .await
        .unwrap();
    assert_eq!(
        second.deduplicated,
        [0],
        "the id is remembered for the whole window"
    );
    for config in [
        pb::TopicConfig {
            partitions: Some(u32::MAX),
            ..Default::default()
        },
        pb::TopicConfig {
            partitions: Some(1),
            max_message_bytes: Some(u32::MAX),
            ..Default::default()
        },
    ] {
        let err = c
            .admin
            .create_topic(pb::CreateTopicRequest {
                name: "too-much".into(),
                config: Some(config),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    }
    assert_healthy(&broker, &mut c).await;
}
