//! Admin operations and bad input against a real broker.

mod common;

use common::{Env, publish_values};
use rapidmq::{ErrorCode, StartPosition, TopicConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_can_be_created_listed_described_and_deleted() {
    let env = Env::start().await;
    let admin = env.client.admin();
    let info = admin
        .create_topic(
            "admin-topic",
            TopicConfig {
                partitions: 3,
                ..TopicConfig::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(info.partitions.len(), 3);
    let err = admin
        .create_topic("admin-topic", TopicConfig::default())
        .await
        .expect_err("exists");
    assert_eq!(err.code(), ErrorCode::TopicAlreadyExists);
    assert!(
        admin
            .list_topics()
            .await
            .unwrap()
            .iter()
            .any(|t| t.name == "admin-topic")
    );
    assert_eq!(
        admin
            .describe_topic("admin-topic")
            .await
            .unwrap()
            .config
            .partitions,
        3
    );
    admin.delete_topic("admin-topic").await.unwrap();
    let err = admin
        .describe_topic("admin-topic")
        .await
        .expect_err("deleted");
    assert_eq!(err.code(), ErrorCode::TopicNotFound);
    assert!(admin.status().await.unwrap().topics == 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_and_counts_are_rejected_with_stable_codes() {
    let env = Env::start().await;
    let admin = env.client.admin();
    let err = admin
        .create_topic("bad name", TopicConfig::default())
        .await
        .expect_err("invalid name");
    assert_eq!(err.code(), ErrorCode::InvalidName);
    let err = admin
        .create_topic("x".repeat(201), TopicConfig::default())
        .await
        .expect_err("too long");
    assert_eq!(err.code(), ErrorCode::InvalidName);
    assert!(!err.is_retriable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_report_lag_and_can_be_seeked_and_deleted() {
    let env = Env::start().await;
    let topic = env.topic(2).await;
    let admin = env.client.admin();
    let sub = admin
        .create_subscription(&topic, "audit", StartPosition::Earliest)
        .await
        .unwrap();
    assert_eq!(sub.total_lag, 0);
    let producer = env.client.producer(&topic).build().await.unwrap();
    publish_values(&producer, 50).await;
    assert_eq!(admin.lag(&topic, "audit").await.unwrap(), 50);

    let seeked = admin
        .seek_subscription(&topic, "audit", StartPosition::Latest, None)
        .await
        .unwrap();
    assert_eq!(seeked.total_lag, 0);
    let listed = admin.list_subscriptions(Some(topic.clone())).await.unwrap();
    assert_eq!(listed.len(), 1);
    admin.delete_subscription(&topic, "audit").await.unwrap();
    let err = admin
        .describe_subscription(&topic, "audit")
        .await
        .expect_err("deleted");
    assert_eq!(err.code(), ErrorCode::SubscriptionNotFound);
}
