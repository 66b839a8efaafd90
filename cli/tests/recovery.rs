//! What recovery does with state that no longer matches the log: cursors and queue state above
//! a recovered high watermark, leftovers of deleted topics, and seeks of queue subscriptions,
//! each across a real broker restart or crash.

mod common;

use common::*;
use rapidmq_proto::v1 as pb;

fn memory_topic() -> pb::TopicConfig {
    pb::TopicConfig {
        storage: pb::Storage::Memory as i32,
        ..topic_config(1)
    }
}

async fn describe(c: &mut Clients, topic: &str, name: &str) -> pb::SubscriptionInfo {
    c.admin
        .describe_subscription(pb::DescribeSubscriptionRequest {
            topic: topic.into(),
            name: name.into(),
        })
        .await
        .expect("describe subscription")
        .into_inner()
}

async fn committed(c: &mut Clients, topic: &str, name: &str) -> u64 {
    describe(c, topic, name).await.cursors[0].committed_offset
}

async fn high_watermark(c: &mut Clients, topic: &str) -> u64 {
    c.admin
        .describe_topic(pb::DescribeTopicRequest { name: topic.into() })
        .await
        .expect("describe topic")
        .into_inner()
        .partitions[0]
        .high_watermark
}

/// Waits until a queue subscription's floor reaches `floor` (its acks were processed).
async fn settled(c: &Clients, topic: &str, name: &str, floor: u64) {
    eventually("the acks are processed", || {
        let mut c = Clients {
            admin: c.admin.clone(),
            messaging: c.messaging.clone(),
        };
        async move { committed(&mut c, topic, name).await == floor }
    })
    .await;
}

/// `rapidmq_recovery_clamps_total` from `/metrics`.
async fn recovery_clamps(broker: &TestBroker) -> u64 {
    let text = reqwest::get(format!("{}/metrics", broker.http_url()))
        .await
        .expect("scrape /metrics")
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("rapidmq_recovery_clamps_total "))
        .unwrap_or_else(|| panic!("no rapidmq_recovery_clamps_total in:\n{text}"))
        .trim()
        .parse()
        .expect("an integer counter")
}

fn values(prefix: &str, range: std::ops::Range<u32>) -> Vec<Msg> {
    range.map(|i| msg("", format!("{prefix}-{i}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_above_the_recovered_log_is_clamped_and_sees_every_new_message() {
    let mut broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "ticks", memory_topic()).await;
    publish(&mut c, "ticks", 0, &values("before", 0..100))
        .await
        .unwrap();
    c.admin
        .create_subscription(pb::CreateSubscriptionRequest {
            topic: "ticks".into(),
            name: "reader".into(),
            start: Some(start(pb::StartKind::Latest)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        committed(&mut c, "ticks", "reader").await,
        100,
        "a new subscription starts at the end of the log"
    );

    // A memory topic comes back empty: its log restarts at offset 0.
    broker.restart();
    let mut c = connect(&broker).await;
    assert_eq!(high_watermark(&mut c, "ticks").await, 0);
    assert_eq!(
        committed(&mut c, "ticks", "reader").await,
        0,
        "the cursor is clamped to the recovered high watermark"
    );
    assert!(
        broker.log().contains("cursor_clamped"),
        "the clamp is logged as a health event"
    );
    assert_eq!(recovery_clamps(&broker).await, 1, "and counted");

    publish(&mut c, "ticks", 0, &values("after", 0..150))
        .await
        .unwrap();
    let mut consumer = Consumer::open(&mut c, "ticks", "reader", start(pb::StartKind::Latest), 200)
        .await
        .unwrap();
    let got = consumer.receive(150).await;
    let offsets: Vec<u64> = got.iter().map(|r| r.offset).collect();
    assert_eq!(
        offsets,
        (0..150).collect::<Vec<u64>>(),
        "no new message skipped"
    );
    assert_eq!(got[0].msg.value, "after-0");

    // The clamped value was persisted: a second restart does not bring 100 back.
    drop(consumer);
    broker.kill();
    broker.start_again();
    let mut c = connect(&broker).await;
    assert_eq!(committed(&mut c, "ticks", "reader").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_floor_above_the_recovered_log_is_clamped_and_new_messages_are_delivered() {
    let mut broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "jobs", memory_topic()).await;
    publish(&mut c, "jobs", 0, &values("old", 0..10))
        .await
        .unwrap();
    let mut q = QueueConsumer::open(&mut c, "jobs", "workers", queue_settings(60_000, 5), 10)
        .await
        .unwrap();
    let got = q.receive(10).await;
    q.ack(got.iter().map(receipt).collect()).await;
    settled(&c, "jobs", "workers", 10).await;
    drop(q);

    // The graceful stop persists the floor (10); the memory topic comes back empty.
    broker.restart();
    let mut c = connect(&broker).await;
    assert_eq!(high_watermark(&mut c, "jobs").await, 0);
    assert_eq!(
        committed(&mut c, "jobs", "workers").await,
        0,
        "the queue floor is clamped to the recovered high watermark"
    );
    assert!(
        broker.log().contains("queue_state_clamped"),
        "the clamp is logged as a health event"
    );
    assert_eq!(recovery_clamps(&broker).await, 1, "and counted");

    publish(&mut c, "jobs", 0, &values("new", 0..10))
        .await
        .unwrap();
    let mut q = QueueConsumer::open(&mut c, "jobs", "workers", queue_settings(60_000, 5), 10)
        .await
        .unwrap();
    let mut got: Vec<String> = q.receive(10).await.iter().map(value_of).collect();
    got.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("new-{i}")).collect();
    expected.sort();
    assert_eq!(got, expected, "every new message is delivered once");
}

/// Publishes a message due at `deliver_at_ms` and checks it was scheduled, not appended.
async fn publish_due_at(c: &mut Clients, topic: &str, value: &str, deliver_at_ms: i64) {
    let ack = publish_raw(
        c,
        topic,
        0,
        vec![pb::Message {
            deliver_at_ms,
            ..raw(value)
        }],
    )
    .await
    .unwrap();
    assert_eq!(ack.scheduled, 1, "{value} is held in the schedule");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Waits for the delayed `sentinel` published on `topic` at the same due time as a deleted
/// topic's delayed message: the scheduler releases entries in due order, so once the sentinel is
/// in the log the old message has been dealt with too. Returns every value in the log.
async fn log_once_the_sentinel_is_due(c: &mut Clients, topic: &str) -> Vec<String> {
    let mut tail = Consumer::open(c, topic, "tail", start(pb::StartKind::Earliest), 10)
        .await
        .unwrap();
    let first = tail.receive(1).await;
    assert_eq!(
        first[0].msg.value, "sentinel",
        "the first message in the new topic is its own"
    );
    let hw = high_watermark(c, topic).await;
    let fetched = c
        .messaging
        .fetch(pb::FetchRequest {
            topic: topic.into(),
            partition: 0,
            offset: 0,
            max_messages: 100,
            max_wait_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let values: Vec<String> = fetched
        .batches
        .iter()
        .flat_map(decode)
        .map(|r| String::from_utf8(r.msg.value.to_vec()).unwrap())
        .collect();
    assert_eq!(values.len() as u64, hw);
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_of_a_deleted_topic_never_reaches_a_new_topic_of_the_same_name() {
    let mut broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "reminders", topic_config(1)).await;
    // Due after the delete, the restart and the new topic's creation.
    let due = now_ms() + 6_000;
    publish_due_at(&mut c, "reminders", "from-the-deleted-topic", due).await;
    c.admin
        .delete_topic(pb::DeleteTopicRequest {
            name: "reminders".into(),
        })
        .await
        .unwrap();

    broker.kill();
    broker.start_again();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "reminders", topic_config(1)).await;
    publish_due_at(&mut c, "reminders", "sentinel", due).await;

    let log = log_once_the_sentinel_is_due(&mut c, "reminders").await;
    assert_eq!(log, vec!["sentinel".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_after_a_delete_and_a_restart_inherits_none_of_the_deleted_topics_state() {
    let mut broker = TestBroker::start();
    let mut c = connect(&broker).await;
    let dedup = pb::TopicConfig {
        dedup_window_ms: Some(3_600_000),
        ..topic_config(1)
    };
    create_topic(&mut c, "a", dedup).await;
    let with_id = |value: &str| pb::Message {
        headers: vec![pb::Header {
            key: "msg-id".into(),
            value: bytes::Bytes::from_static(b"order-1"),
        }],
        ..raw(value)
    };
    let ack = publish_raw(&mut c, "a", 0, vec![with_id("first")])
        .await
        .unwrap();
    assert!(ack.deduplicated.is_empty());
    let due = now_ms() + 6_000;
    publish_due_at(&mut c, "a", "from-a", due).await;
    let mut q = QueueConsumer::open(&mut c, "a", "workers", queue_settings(60_000, 5), 10)
        .await
        .unwrap();
    let got = q.receive(1).await;
    q.ack(got.iter().map(receipt).collect()).await;
    drop(q);
    c.admin
        .delete_topic(pb::DeleteTopicRequest { name: "a".into() })
        .await
        .unwrap();

    broker.restart();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "b", dedup).await;
    let ack = publish_raw(&mut c, "b", 0, vec![with_id("first-in-b")])
        .await
        .unwrap();
    assert!(
        ack.deduplicated.is_empty(),
        "b has no dedup record of a's msg-id"
    );
    let mut q = QueueConsumer::open(&mut c, "b", "workers", queue_settings(60_000, 5), 10)
        .await
        .unwrap();
    let got = q.receive(1).await;
    assert_eq!(value_of(&got[0]), "first-in-b", "b has no queue state of a");
    assert_eq!(got[0].attempt, 1);
    q.ack(got.iter().map(receipt).collect()).await;
    drop(q);

    publish_due_at(&mut c, "b", "sentinel", due).await;
    let mut tail = Consumer::open(&mut c, "b", "tail", start(pb::StartKind::Latest), 10)
        .await
        .unwrap();
    let got = tail.receive(1).await;
    assert_eq!(
        got[0].msg.value, "sentinel",
        "b has no delayed message of a"
    );
    assert_eq!(high_watermark(&mut c, "b").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_seek_survives_a_crash_and_the_sought_messages_are_delivered_again() {
    let mut broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "work", topic_config(1)).await;
    publish(&mut c, "work", 0, &values("job", 0..10))
        .await
        .unwrap();
    let mut q = QueueConsumer::open(&mut c, "work", "workers", queue_settings(60_000, 5), 10)
        .await
        .unwrap();
    let got = q.receive(10).await;
    q.ack(got.iter().map(receipt).collect()).await;
    settled(&c, "work", "workers", 10).await;
    drop(q);
    // A graceful restart persists the ack state: every message is settled.
    broker.restart();
    let mut c = connect(&broker).await;
    assert_eq!(committed(&mut c, "work", "workers").await, 10);

    let sought = c
        .admin
        .seek_subscription(pb::SeekSubscriptionRequest {
            topic: "work".into(),
            name: "workers".into(),
            position: Some(start(pb::StartKind::Earliest)),
            partition: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sought.cursors[0].committed_offset, 0);

    // The seek was answered, so it is on disk, ack state included: a crash keeps all of it.
    broker.kill();
    broker.start_again();
    let mut c = connect(&broker).await;
    assert_eq!(
        committed(&mut c, "work", "workers").await,
        0,
        "the seek survives the crash"
    );
    let mut q = QueueConsumer::open(&mut c, "work", "workers", queue_settings(60_000, 5), 10)
        .await
        .unwrap();
    let again = q.receive(10).await;
    let mut values: Vec<String> = again.iter().map(value_of).collect();
    values.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("job-{i}")).collect();
    expected.sort();
    assert_eq!(values, expected, "every sought message is delivered again");
    assert!(
        again.iter().all(|m| m.attempt == 1),
        "the seek reset the attempt counts"
    );
}
