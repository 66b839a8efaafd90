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
