//! Retention by message count and by age drops old batches, and consumers skip to what is left.

mod common;

use common::*;
use rapidmq_proto::v1 as pb;

fn fast_retention() -> BrokerOptions {
    BrokerOptions {
        env: vec![("RAPIDMQ_RETENTION__CHECK_INTERVAL_MS".into(), "100".into())],
        ..Default::default()
    }
}

async fn partition_info(c: &mut Clients, topic: &str) -> pb::PartitionInfo {
    c.admin
        .describe_topic(pb::DescribeTopicRequest { name: topic.into() })
        .await
        .unwrap()
        .into_inner()
        .partitions
        .swap_remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_count_keeps_only_the_newest_messages() {
    let broker = TestBroker::start_with(fast_retention());
    let mut c = connect(&broker).await;
    create_topic(
        &mut c,
        "metrics",
        pb::TopicConfig {
            retention_messages: Some(250),
            ..topic_config(1)
        },
    )
    .await;
    for b in 0..10 {
        let batch: Vec<Msg> = (0..100)
            .map(|i| msg("k", format!("{}", b * 100 + i)))
            .collect();
        publish(&mut c, "metrics", 0, &batch).await.unwrap();
    }
    // Only whole batches go. The newest 250 messages are offsets 750..1000; the batch [700, 800)
    // holds some of them, so it stays and the log starts at 700.
    let mut cc = Clients {
        admin: c.admin.clone(),
        messaging: c.messaging.clone(),
    };
    eventually("retention drops the old batches", || {
        let mut c = Clients {
            admin: cc.admin.clone(),
            messaging: cc.messaging.clone(),
        };
        async move { partition_info(&mut c, "metrics").await.log_start_offset == 700 }
    })
    .await;
    let info = partition_info(&mut cc, "metrics").await;
    assert_eq!(info.high_watermark, 1000);

    let mut consumer = Consumer::open(
        &mut c,
        "metrics",
        "late",
        start(pb::StartKind::Earliest),
        1000,
    )
    .await
    .unwrap();
    let got = consumer.receive(300).await;
    assert_eq!(got.first().map(|r| r.offset), Some(700));
    assert_eq!(got.last().map(|r| r.offset), Some(999));

    let fetched = c
        .messaging
        .fetch(pb::FetchRequest {
            topic: "metrics".into(),
            partition: 0,
            offset: 0,
            max_messages: 10,
            max_wait_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.log_start_offset, 700);
    assert_eq!(
        decode(&fetched.batches[0])[0].offset,
        700,
        "a fetch below the log start begins at the log start"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_time_removes_expired_batches_and_offsets_stay_dense() {
    let mut broker = TestBroker::start_with(fast_retention());
    let mut c = connect(&broker).await;
    create_topic(
        &mut c,
        "sessions",
        pb::TopicConfig {
            retention_ms: Some(300),
            ..topic_config(1)
        },
    )
    .await;
    publish(&mut c, "sessions", 0, &[msg("a", "1"), msg("a", "2")])
        .await
        .unwrap();
    eventually("the expired batch is removed", || {
        let mut c = Clients {
            admin: c.admin.clone(),
            messaging: c.messaging.clone(),
        };
        async move {
            let info = partition_info(&mut c, "sessions").await;
            info.log_start_offset == 2 && info.bytes == 0
        }
    })
    .await;
    // The next offset continues after the removed ones, also across a restart of an empty log.
    broker.restart();
    let mut c = connect(&broker).await;
    let ack = publish(&mut c, "sessions", 0, &[msg("a", "3")])
        .await
        .unwrap();
    assert_eq!(ack.base_offset, 2);
}
