//! Altering a topic's settings while it runs.

mod common;

use common::*;
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1 as pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altered_settings_take_effect_at_once_and_survive_a_restart() {
    let mut broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "events", topic_config(2)).await;
    let ack = publish(&mut c, "events", 0, &[msg("k", "v")])
        .await
        .unwrap();
    assert_eq!(ack.durability, pb::Durability::Fsync as i32);

    let altered = c
        .admin
        .alter_topic(pb::AlterTopicRequest {
            name: "events".into(),
            config: Some(pb::TopicConfig {
                durability: pb::Durability::Buffered as i32,
                max_message_bytes: Some(64),
                retention_messages: Some(1000),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let config = altered.config.unwrap();
    assert_eq!(config.durability, pb::Durability::Buffered as i32);
    assert_eq!(
        (
            config.max_message_bytes,
            config.retention_messages,
            config.partitions
        ),
        (Some(64), Some(1000), Some(2))
    );

    let ack = publish(&mut c, "events", 1, &[msg("k", "v")])
        .await
        .unwrap();
    assert_eq!(
        ack.durability,
        pb::Durability::Buffered as i32,
        "the next ack reports the new durability"
    );
    let err = publish(&mut c, "events", 1, &[msg("k", "x".repeat(100))])
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&err),
        ErrorCode::MessageTooLarge,
        "the new size limit applies"
    );

    broker.restart();
    let mut c = connect(&broker).await;
    let info = c
        .admin
        .describe_topic(pb::DescribeTopicRequest {
            name: "events".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let config = info.config.unwrap();
    assert_eq!(config.durability, pb::Durability::Buffered as i32);
    assert_eq!(config.max_message_bytes, Some(64));
    assert_eq!(
        info.partitions
            .iter()
            .map(|p| p.high_watermark)
            .sum::<u64>(),
        2,
        "the data is still there"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_and_storage_cannot_be_altered() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "fixed", topic_config(2)).await;
    let alter = |config: pb::TopicConfig| pb::AlterTopicRequest {
        name: "fixed".into(),
        config: Some(config),
    };
    let err = c
        .admin
        .alter_topic(alter(topic_config(3)))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::InvalidPartitionCount);
    let err = c
        .admin
        .alter_topic(alter(pb::TopicConfig {
            storage: pb::Storage::Memory as i32,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::InvalidTopicConfig);
    let err = c
        .admin
        .alter_topic(pb::AlterTopicRequest {
            name: "nope".into(),
            config: None,
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::TopicNotFound);
}
