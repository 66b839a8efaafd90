//! Bad input gets a stable error code, and the broker keeps serving.

mod common;

use common::*;
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

async fn create(
    c: &mut Clients,
    name: &str,
    config: pb::TopicConfig,
) -> Result<pb::TopicInfo, tonic::Status> {
    c.admin
        .create_topic(pb::CreateTopicRequest {
            name: name.into(),
            config: Some(config),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_stable_codes_and_the_broker_keeps_serving() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(
        &mut c,
        "good",
        pb::TopicConfig {
            max_message_bytes: Some(1024),
            ..topic_config(2)
        },
    )
    .await;

    let err = publish(&mut c, "nope", 0, &[msg("k", "v")])
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::TopicNotFound);
    assert_eq!(err.code(), tonic::Code::NotFound);

    let err = create(&mut c, "bad/name", topic_config(1))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::InvalidName);
    let err = create(&mut c, &"x".repeat(201), topic_config(1))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::InvalidName);

    let err = publish(
        &mut c,
        "good",
        0,
        &[msg("k", "small"), msg("k", "x".repeat(2000))],
    )
    .await
    .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::MessageTooLarge);
    assert!(
        err.message().contains("1024"),
        "the message says the limit: {}",
        err.message()
    );

    let err = create(&mut c, "zero", topic_config(0)).await.unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::InvalidPartitionCount);
    let err = create(&mut c, "huge", topic_config(100_000))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::InvalidPartitionCount);

    let err = create(&mut c, "good", topic_config(1)).await.unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::TopicAlreadyExists);

    let err = publish(&mut c, "good", 7, &[msg("k", "v")])
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::PartitionNotFound);

    let err = c
        .messaging
        .publish(pb::PublishRequest {
            topic: "good".into(),
            batch: bytes::Bytes::from_static(&[0x0a, 0xff, 0x01]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::MalformedRequest);

    let err = c
        .messaging
        .publish(pb::PublishRequest {
            topic: "good".into(),
            batch: encode(&[]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::EmptyBatch);

    let Err(err) = Consumer::open(&mut c, "good", "s", start(pb::StartKind::Earliest), 0).await
    else {
        panic!("0 credits is refused")
    };
    assert_eq!(error_code(&err), ErrorCode::InvalidCredits);

    let err = Consumer::open(
        &mut c,
        "good",
        "bad name",
        start(pb::StartKind::Earliest),
        1,
    )
    .await
    .err()
    .expect("bad name");
    assert_eq!(error_code(&err), ErrorCode::InvalidName);

    let err = c
        .admin
        .describe_subscription(pb::DescribeSubscriptionRequest {
            topic: "good".into(),
            name: "ghost".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::SubscriptionNotFound);

    let err = c
        .messaging
        .fetch(pb::FetchRequest {
            topic: "good".into(),
            partition: 0,
            offset: 99,
            max_messages: 1,
            max_wait_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::OffsetOutOfRange);

    // After all that, the broker still works.
    let ack = publish(&mut c, "good", 1, &[msg("k", "still here")])
        .await
        .unwrap();
    assert_eq!(ack.base_offset, 0);
    let topics = c
        .admin
        .list_topics(pb::ListTopicsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        topics
            .topics
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        vec!["good"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consume_stream_rejects_zero_credits_and_out_of_order_messages_without_closing() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "t", topic_config(1)).await;

    // A stream that does not start with Subscribe is refused with its code.
    let (tx, rx) = mpsc::channel(4);
    tx.send(pb::ConsumeRequest {
        kind: Some(pb::consume_request::Kind::Credit(pb::Credit {
            messages: 5,
            bytes: 0,
        })),
    })
    .await
    .unwrap();
    let err = c
        .messaging
        .consume(ReceiverStream::new(rx))
        .await
        .expect_err("refused");
    assert_eq!(error_code(&err), ErrorCode::NotSubscribed);

    let mut consumer = Consumer::open(&mut c, "t", "s", start(pb::StartKind::Earliest), 1)
        .await
        .unwrap();
    consumer.credit(0).await;
    match consumer.next_event().await {
        Some(pb::consume_response::Kind::Error(err)) => assert_eq!(err.name, "INVALID_CREDITS"),
        other => panic!("expected INVALID_CREDITS, got {other:?}"),
    }
    // The stream is still usable.
    publish(&mut c, "t", 0, &[msg("k", "v")]).await.unwrap();
    assert_eq!(consumer.receive(1).await[0].msg.value, "v");
}

/// Issue 15's batch (`CggSAUEwgN3bARIA`): one message with a TTL, then `base_timestamp_ms` (a
/// varint field) sent as length-delimited bytes. prost cannot decode it.
const UNDECODABLE_BATCH: [u8; 12] = [
    0x0a, 0x08, 0x12, 0x01, 0x41, 0x30, 0x80, 0xdd, 0xdb, 0x01, 0x12, 0x00,
];

async fn publish_bytes(
    c: &mut Clients,
    topic: &str,
    batch: bytes::Bytes,
) -> Result<pb::PublishResponse, tonic::Status> {
    c.messaging
        .publish(pb::PublishRequest {
            topic: topic.into(),
            partition: 0,
            batch,
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_prost_cannot_decode_is_refused_and_every_reader_keeps_reading() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "poison", topic_config(1)).await;
    publish(&mut c, "poison", 0, &[msg("k", "before")])
        .await
        .unwrap();

    let err = publish_bytes(
        &mut c,
        "poison",
        bytes::Bytes::from_static(&UNDECODABLE_BATCH),
    )
    .await
    .expect_err("a batch prost cannot decode is refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert_eq!(error_code(&err), ErrorCode::MalformedRequest);

    // As strict as prost and no stricter: an unknown field, even a group, is skipped.
    let mut with_group = encode(&[msg("k", "after")]).to_vec();
    with_group.extend_from_slice(&[0x4b, 0x08, 0x01, 0x4c]); // field 9: a group holding a varint
    publish_bytes(&mut c, "poison", with_group.into())
        .await
        .expect("a batch prost decodes is accepted");

    // A stream subscription.
    let mut stream = Consumer::open(
        &mut c,
        "poison",
        "stream",
        start(pb::StartKind::Earliest),
        10,
    )
    .await
    .unwrap();
    let got: Vec<_> = stream.receive(2).await.into_iter().map(|r| r.msg).collect();
    assert_eq!(got, vec![msg("k", "before"), msg("k", "after")]);

    // A queue subscription.
    let mut queue = QueueConsumer::open(&mut c, "poison", "queue", queue_settings(30_000, 5), 10)
        .await
        .unwrap();
    let got: Vec<String> = queue.receive(2).await.iter().map(value_of).collect();
    assert_eq!(got, ["before", "after"]);

    // The REST reader.
    let response = reqwest::get(format!(
        "{}/v1/topics/poison/partitions/0/messages?offset=0&max=10",
        broker.http_url()
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    let values: Vec<&str> = body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["value"].as_str().expect("a UTF-8 value"))
        .collect();
    assert_eq!(values, ["before", "after"]);
}
