//! Delay, TTL, msg-id dedup and bad message fields through the SDK, against a real broker.
//! Waiting for a delay or a TTL to pass is time passing by design; each such wait says so.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{Env, guarded, text};
use rapidmq::{ErrorCode, Message, SendStatus, StartPosition, TopicConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_gets_a_scheduled_receipt_and_is_consumed_only_after_its_delay() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    let sent_at = Instant::now();
    let delayed = producer
        .send(Message::new("later").with_delay(Duration::from_millis(1500)))
        .await
        .unwrap();
    let now = producer.send(Message::new("now")).await.unwrap();
    let delayed = guarded("receipt", delayed).await.unwrap();
    let now = guarded("receipt", now).await.unwrap();
    assert_eq!(
        (delayed.status, delayed.offset),
        (SendStatus::Scheduled, None)
    );
    assert_eq!((now.status, now.offset), (SendStatus::Appended, Some(0)));

    let consumer = env
        .client
        .consumer(&topic)
        .subscription("s")
        .start(StartPosition::Earliest)
        .subscribe()
        .await
        .unwrap();
    let first = guarded("poll", consumer.poll(10, Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(text(&first[0].value), "now");
    assert_eq!(first.len(), 1, "the delayed message is not visible yet");
    // Time passes: the next poll waits until the broker appends the message when due.
    let second = guarded("poll", consumer.poll(10, Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(text(&second[0].value), "later");
    assert!(sent_at.elapsed() >= Duration::from_millis(1500));
    assert_eq!(second[0].offset, 1, "it got its offset when due");
    assert!(second[0].deliver_at_ms.is_some());
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_message_is_never_delivered() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    let short = producer
        .send(Message::new("expires").with_ttl(Duration::from_millis(300)))
        .await
        .unwrap();
    guarded("receipt", short).await.unwrap();
    let long = producer
        .send(Message::new("lives").with_ttl(Duration::from_secs(600)))
        .await
        .unwrap();
    guarded("receipt", long).await.unwrap();
    // Time passes: the first message's TTL runs out before anyone consumes.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let consumer = env
        .client
        .consumer(&topic)
        .subscription("late")
        .start(StartPosition::Earliest)
        .subscribe()
        .await
        .unwrap();
    let got = guarded("poll", consumer.poll(10, Duration::from_secs(30)))
        .await
        .unwrap();
    // Delivery is in offset order, so receiving the later message proves the earlier was skipped.
    assert_eq!(
        got.iter().map(|m| text(&m.value)).collect::<Vec<_>>(),
        ["lives"]
    );
    assert_eq!(got[0].ttl, Some(Duration::from_secs(600)));
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_msg_id_within_the_window_gets_a_deduplicated_receipt_and_one_copy_is_kept() {
    let env = Env::start().await;
    let topic = env
        .topic_with(TopicConfig {
            partitions: 1,
            dedup_window_ms: Some(60_000),
            ..TopicConfig::default()
        })
        .await;
    let first = env.client.producer(&topic).build().await.unwrap();
    let second = env.client.producer(&topic).build().await.unwrap();
    let a = first
        .send(Message::new("a1").with_msg_id("order-1"))
        .await
        .unwrap();
    assert_eq!(guarded("receipt", a).await.unwrap().offset, Some(0));

    // One batch from another producer: a repeat, a new id, a delayed one and a plain message.
    let receipts = vec![
        second
            .send(Message::new("a2").with_msg_id("order-1"))
            .await
            .unwrap(),
        second
            .send(Message::new("b").with_msg_id("order-2"))
            .await
            .unwrap(),
        second
            .send(Message::new("c").with_delay(Duration::from_secs(3600)))
            .await
            .unwrap(),
        second.send(Message::new("d")).await.unwrap(),
    ];
    second.flush().await.unwrap();
    let mut got = Vec::new();
    for r in receipts {
        let d = guarded("receipt", r).await.unwrap();
        got.push((d.status, d.offset));
    }
    assert_eq!(
        got,
        [
            (SendStatus::Deduplicated, None),
            (SendStatus::Appended, Some(1)),
            (SendStatus::Scheduled, None),
            (SendStatus::Appended, Some(2)),
        ]
    );
    let log: Vec<String> = env
        .read_log(&topic)
        .await
        .iter()
        .map(|m| text(&m.value))
        .collect();
    assert_eq!(log, ["a1", "b", "d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_dedup_window_a_repeated_msg_id_is_kept() {
    let env = Env::start().await;
    let topic = env
        .topic_with(TopicConfig {
            partitions: 1,
            dedup_window_ms: Some(500),
            ..TopicConfig::default()
        })
        .await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    let first = producer
        .send(Message::new("x").with_msg_id("id"))
        .await
        .unwrap();
    guarded("receipt", first).await.unwrap();
    // Time passes: the dedup window runs out.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let again = producer
        .send(Message::new("x").with_msg_id("id"))
        .await
        .unwrap();
    let again = guarded("receipt", again).await.unwrap();
    assert_eq!(
        (again.status, again.offset),
        (SendStatus::Appended, Some(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_priority_and_far_deliver_at_fail_with_their_codes() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    let r = producer
        .send(Message::new("x").with_priority(10))
        .await
        .unwrap();
    let err = guarded("receipt", r).await.expect_err("priority 10");
    assert_eq!(err.code(), ErrorCode::InvalidPriority);
    assert!(!err.is_retriable());
    let far = SystemTime::now() + Duration::from_secs(10 * 365 * 24 * 3600);
    let r = producer
        .send(Message::new("x").with_deliver_at(far))
        .await
        .unwrap();
    let err = guarded("receipt", r).await.expect_err("too far");
    assert_eq!(err.code(), ErrorCode::DeliverAtOutOfRange);
    // Refused batches consume no sequence numbers: the producer carries on.
    let r = producer.send(Message::new("ok")).await.unwrap();
    assert_eq!(guarded("receipt", r).await.unwrap().offset, Some(0));
}
