//! Delayed messages, TTL and msg-id dedup against a real broker.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rapidmq_broker::clock::{Clock, SystemClock};
use rapidmq_proto::v1 as pb;

async fn high_watermark(c: &mut Clients, topic: &str) -> u64 {
    c.admin
        .describe_topic(pb::DescribeTopicRequest { name: topic.into() })
        .await
        .unwrap()
        .into_inner()
        .partitions[0]
        .high_watermark
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_is_invisible_until_due_and_survives_a_restart() {
    let mut broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "reminders", topic_config(1)).await;
    let sent = Instant::now();
    let ack = publish_raw(
        &mut c,
        "reminders",
        0,
        vec![
            pb::Message {
                delay_ms: 3_000,
                ..raw("later")
            },
            raw("now"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        (ack.count, ack.scheduled),
        (1, 1),
        "one appended now, one scheduled"
    );

    let mut tail = Consumer::open(&mut c, "reminders", "r", start(pb::StartKind::Earliest), 10)
        .await
        .unwrap();
    assert_eq!(tail.receive(1).await[0].msg.value, "now");
    assert_eq!(
        high_watermark(&mut c, "reminders").await,
        1,
        "the delayed message is not in the log yet"
    );

    // A restart while it waits: the schedule is on disk.
    drop(tail);
    broker.restart();
    let mut c = connect(&broker).await;
    let mut tail = Consumer::open(
        &mut c,
        "reminders",
        "after",
        start(pb::StartKind::Earliest),
        10,
    )
    .await
    .unwrap();
    let got = tail.receive(2).await;
    assert_eq!(got[0].msg.value, "now");
    let got = &got[1..];
    assert_eq!(got[0].msg.value, "later");
    assert_eq!(got[0].offset, 1);
    assert!(
        sent.elapsed() >= Duration::from_millis(3_000),
        "visible only once due ({:?})",
        sent.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_message_is_not_delivered_in_either_mode() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "quotes", topic_config(1)).await;
    publish_raw(
        &mut c,
        "quotes",
        0,
        vec![
            pb::Message {
                ttl_ms: 1_000,
                ..raw("stale")
            },
            raw("fresh"),
        ],
    )
    .await
    .unwrap();
    // The message must outlive its TTL before anyone consumes: the passing time is the behaviour
    // under test, not a synchronisation.
    tokio::time::sleep(Duration::from_millis(2_000)).await;

    let mut stream = Consumer::open(&mut c, "quotes", "s", start(pb::StartKind::Earliest), 10)
        .await
        .unwrap();
    let got = stream.receive(1).await;
    assert_eq!(got[0].msg.value, "fresh");
    assert_eq!(got[0].offset, 1);

    let mut queue = QueueConsumer::open(&mut c, "quotes", "q", queue_settings(30_000, 5), 10)
        .await
        .unwrap();
    let got = queue.receive(1).await;
    assert_eq!(value_of(&got[0]), "fresh");
    let info = c
        .admin
        .describe_subscription(pb::DescribeSubscriptionRequest {
            topic: "quotes".into(),
            name: "q".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        info.queue_stats.unwrap().expired,
        1,
        "the expiry is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_msg_id_within_the_window_is_kept_once_and_again_after_it() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(
        &mut c,
        "payments",
        pb::TopicConfig {
            dedup_window_ms: Some(1_000),
            ..topic_config(2)
        },
    )
    .await;
    let with_id = |id: &str, value: &str| pb::Message {
        headers: vec![pb::Header {
            key: "msg-id".into(),
            value: id.to_string().into(),
        }],
        ..raw(value)
    };
    // Two producers, two partitions, the same id.
    let first = publish_raw(
        &mut c,
        "payments",
        0,
        vec![with_id("pay-1", "a"), with_id("pay-2", "b")],
    )
    .await
    .unwrap();
    assert!(first.deduplicated.is_empty());
    let second = publish_raw(&mut c, "payments", 1, vec![with_id("pay-1", "a again")])
        .await
        .unwrap();
    assert_eq!(second.deduplicated, vec![0]);
    assert_eq!(second.count, 0);

    // Once the window has passed, the same id is accepted again; waiting it out is the point.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let third = publish_raw(&mut c, "payments", 1, vec![with_id("pay-1", "a later")])
        .await
        .unwrap();
    assert!(third.deduplicated.is_empty());
    assert_eq!(third.count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delays_reach_queue_consumers_when_due() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "retries", topic_config(1)).await;
    let mut q = QueueConsumer::open(&mut c, "retries", "w", queue_settings(30_000, 5), 10)
        .await
        .unwrap();
    let due = SystemClock.now_ms() + 1_500;
    publish_raw(
        &mut c,
        "retries",
        0,
        vec![pb::Message {
            deliver_at_ms: due,
            ..raw("retry")
        }],
    )
    .await
    .unwrap();
    let got = q.receive(1).await;
    assert!(SystemClock.now_ms() >= due, "not before deliver_at");
    assert_eq!(got[0].message.as_ref().unwrap().deliver_at_ms, due);
}
