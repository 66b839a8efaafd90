//! Queue-mode subscriptions against a real broker: competing consumers, ack deadlines, nack,
//! dead letters, restart, priority.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1 as pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competing_consumers_share_the_work_and_each_message_is_acked_once() {
    const TOTAL: usize = 30_000;
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "tasks", topic_config(1)).await;
    let mut consumers = Vec::new();
    for _ in 0..3 {
        consumers.push(
            QueueConsumer::open(&mut c, "tasks", "workers", queue_settings(30_000, 5), 200)
                .await
                .unwrap(),
        );
    }
    for chunk in 0..(TOTAL / 1000) {
        let batch: Vec<Msg> = (0..1000)
            .map(|i| msg("", format!("task-{}", chunk * 1000 + i)))
            .collect();
        publish(&mut c, "tasks", 0, &batch).await.unwrap();
    }

    // Each consumer works until everything is acked; acks flow back on each stream.
    let (done_tx, _) = tokio::sync::watch::channel(0usize);
    let done_tx = std::sync::Arc::new(done_tx);
    let mut tasks = Vec::new();
    for mut consumer in consumers {
        let done = done_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine: Vec<(u64, String)> = Vec::new();
            let mut finished = done.subscribe();
            loop {
                let next = tokio::select! {
                    next = consumer.next_within(PATIENCE) => next,
                    _ = finished.wait_for(|n| *n >= TOTAL) => break,
                };
                match next {
                    Some(pb::consume_response::Kind::QueueBatch(batch)) => {
                        let receipts: Vec<pb::Receipt> =
                            batch.messages.iter().map(receipt).collect();
                        mine.extend(
                            batch
                                .messages
                                .iter()
                                .map(|m| (receipt(m).offset, value_of(m))),
                        );
                        consumer.ack(receipts.clone()).await;
                        consumer.credit(receipts.len() as u32).await;
                        done.send_modify(|n| *n += receipts.len());
                    }
                    Some(pb::consume_response::Kind::Error(err)) => panic!("stream error: {err:?}"),
                    other => panic!(
                        "unexpected {other:?} with {} acked in total",
                        *done.borrow()
                    ),
                }
            }
            // Kept open until every task is done: a stream closed with acks still on the
            // wire gives its unacked messages back for redelivery (at-least-once), and another
            // consumer would receive them again.
            (mine, consumer)
        }));
    }
    let mut per_offset: HashMap<u64, usize> = HashMap::new();
    let mut shares = Vec::new();
    let mut open = Vec::new();
    for task in tasks {
        let (mine, consumer) = task.await.unwrap();
        open.push(consumer);
        shares.push(mine.len());
        for (offset, value) in mine {
            assert_eq!(value, format!("task-{offset}"));
            *per_offset.entry(offset).or_default() += 1;
        }
    }
    assert_eq!(per_offset.len(), TOTAL, "every message was delivered");
    assert!(
        per_offset.values().all(|&n| n == 1),
        "no message was delivered twice"
    );
    assert!(
        shares.iter().all(|&n| n > TOTAL / 10),
        "the load is spread: {shares:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacked_message_moves_to_another_consumer_after_the_deadline_unless_extended() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "jobs", topic_config(1)).await;
    publish(&mut c, "jobs", 0, &[msg("", "slow"), msg("", "stuck")])
        .await
        .unwrap();

    let mut a = QueueConsumer::open(&mut c, "jobs", "w", queue_settings(800, 5), 2)
        .await
        .unwrap();
    let got = a.receive(2).await;
    let (slow, stuck) = if value_of(&got[0]) == "slow" {
        (&got[0], &got[1])
    } else {
        (&got[1], &got[0])
    };
    assert_eq!(slow.attempt, 1);
    a.extend(vec![receipt(slow)], 10_000).await;

    // b waits; only the message whose deadline passed comes to it, as a second attempt.
    let mut b = QueueConsumer::open(&mut c, "jobs", "w", queue_settings(800, 5), 10)
        .await
        .unwrap();
    let started = Instant::now();
    let redelivered = b.receive(1).await;
    assert_eq!(value_of(&redelivered[0]), "stuck");
    assert_eq!(redelivered[0].attempt, 2);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "not before the deadline"
    );
    b.ack(vec![receipt(&redelivered[0])]).await;
    // a's extended message is still a's: its ack succeeds, its stale receipt for `stuck` fails.
    a.ack(vec![receipt(slow)]).await;
    a.ack(vec![receipt(stuck)]).await;
    match a.next_within(PATIENCE).await {
        Some(pb::consume_response::Kind::Error(err)) => {
            assert_eq!(err.name, "RECEIPT_UNKNOWN");
            assert!(
                err.message.starts_with("1 receipt"),
                "only the stale receipt fails: {}",
                err.message
            );
        }
        other => panic!("expected RECEIPT_UNKNOWN for the stale receipt, got {other:?}"),
    }
    assert!(
        b.next_within(Duration::from_millis(1500)).await.is_none(),
        "the extended message was not redelivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_with_delay_redelivers_no_sooner_and_the_last_attempt_goes_to_the_dlq_and_replays() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "mail", topic_config(1)).await;
    publish_raw(
        &mut c,
        "mail",
        0,
        vec![pb::Message {
            key: Some("k1".into()),
            ..raw("poison")
        }],
    )
    .await
    .unwrap();
    let mut q = QueueConsumer::open(&mut c, "mail", "senders", queue_settings(30_000, 3), 1)
        .await
        .unwrap();

    let first = q.receive(1).await;
    let nacked_at = Instant::now();
    q.nack(vec![receipt(&first[0])], 2_000).await;
    q.credit(1).await;
    let second = q.receive(1).await;
    assert!(
        nacked_at.elapsed() >= Duration::from_millis(2_000),
        "redelivered after {:?}",
        nacked_at.elapsed()
    );
    assert_eq!(second[0].attempt, 2);
    q.nack(vec![receipt(&second[0])], 0).await;
    q.credit(1).await;
    let third = q.receive(1).await;
    assert_eq!(third[0].attempt, 3);
    q.nack(vec![receipt(&third[0])], 0).await;

    let dlq = "mail.dlq";
    eventually("the message reaches the dead-letter topic", || {
        let mut admin = c.admin.clone();
        async move {
            admin
                .list_dead_letters(pb::ListDeadLettersRequest {
                    dead_letter_topic: dlq.into(),
                    max: 10,
                    page_token: String::new(),
                })
                .await
                .is_ok_and(|r| !r.into_inner().dead_letters.is_empty())
        }
    })
    .await;
    let page = c
        .admin
        .list_dead_letters(pb::ListDeadLettersRequest {
            dead_letter_topic: dlq.into(),
            max: 10,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(page.next_page_token.is_empty(), "one letter is one page");
    let letters = page.dead_letters;
    let letter = &letters[0];
    assert_eq!((letter.partition, letter.offset), (0, 0));
    assert_eq!(
        (
            letter.original_topic.as_str(),
            letter.original_partition,
            letter.original_offset
        ),
        ("mail", 0, 0)
    );
    assert_eq!(letter.attempts, 3);
    assert!(letter.reason.contains("nacked"), "{}", letter.reason);
    let headers: HashMap<String, String> = letter
        .message
        .as_ref()
        .unwrap()
        .headers
        .iter()
        .map(|h| {
            (
                h.key.clone(),
                String::from_utf8_lossy(&h.value).into_owned(),
            )
        })
        .collect();
    assert_eq!(headers["rapidmq-dlq-topic"], "mail");
    assert_eq!(headers["rapidmq-dlq-attempts"], "3");
    assert_eq!(headers["rapidmq-dlq-subscription"], "senders");

    let replayed = c
        .admin
        .replay_dead_letters(pb::ReplayDeadLettersRequest {
            dead_letter_topic: dlq.into(),
            max: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((replayed.replayed, replayed.remaining), (1, 0));
    q.credit(1).await;
    let back = q.receive(1).await;
    assert_eq!(value_of(&back[0]), "poison");
    assert_eq!(back[0].attempt, 1, "a replayed message starts over");
    assert!(
        back[0]
            .message
            .as_ref()
            .unwrap()
            .headers
            .iter()
            .all(|h| !h.key.starts_with("rapidmq-dlq-"))
    );
    let pending = c
        .admin
        .list_dead_letters(pb::ListDeadLettersRequest {
            dead_letter_topic: dlq.into(),
            max: 10,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        pending.dead_letters.is_empty(),
        "replayed letters are no longer pending"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_only_unacked_messages_come_back_with_their_attempts() {
    let mut broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "orders", topic_config(2)).await;
    for p in 0..2 {
        let batch: Vec<Msg> = (0..50).map(|i| msg("", format!("p{p}-{i}"))).collect();
        publish(&mut c, "orders", p, &batch).await.unwrap();
    }
    let mut q = QueueConsumer::open(&mut c, "orders", "ship", queue_settings(60_000, 5), 60)
        .await
        .unwrap();
    let got = q.receive(60).await;
    let (acked, held) = got.split_at(40);
    q.ack(acked.iter().map(receipt).collect()).await;
    let acked_values: Vec<String> = acked.iter().map(value_of).collect();
    let held_values: Vec<String> = held.iter().map(value_of).collect();
    // Wait until the acks are persisted (the broker flushes ack state on an interval).
    eventually("acks are recorded", || {
        let mut admin = c.admin.clone();
        async move {
            let info = admin
                .describe_subscription(pb::DescribeSubscriptionRequest {
                    topic: "orders".into(),
                    name: "ship".into(),
                })
                .await
                .unwrap()
                .into_inner();
            info.total_lag == 60
        }
    })
    .await;
    drop(q);
    broker.restart();
    let mut c = connect(&broker).await;
    let mut q = QueueConsumer::open(&mut c, "orders", "ship", queue_settings(60_000, 5), 100)
        .await
        .unwrap();
    let again = q.receive(60).await;
    let values: Vec<String> = again.iter().map(value_of).collect();
    assert!(
        values.iter().all(|v| !acked_values.contains(v)),
        "no acked message comes back"
    );
    for m in &again {
        let expected = if held_values.contains(&value_of(m)) {
            2
        } else {
            1
        };
        assert_eq!(
            m.attempt,
            expected,
            "attempt count of {} survives the restart",
            value_of(m)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_highest_priority_goes_first() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "alerts", topic_config(1)).await;
    let priorities = [3u32, 9, 0, 5, 9, 1, 7];
    let messages = priorities
        .iter()
        .enumerate()
        .map(|(i, &p)| pb::Message {
            priority: p,
            ..raw(&format!("{i}:{p}"))
        })
        .collect();
    publish_raw(&mut c, "alerts", 0, messages).await.unwrap();
    let mut q = QueueConsumer::open(&mut c, "alerts", "pager", queue_settings(30_000, 5), 100)
        .await
        .unwrap();
    let got: Vec<u32> = q
        .receive(priorities.len())
        .await
        .iter()
        .map(|m| m.message.as_ref().unwrap().priority)
        .collect();
    assert_eq!(got, vec![9, 9, 7, 5, 3, 1, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_bad_input_gets_its_codes() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "q", topic_config(1)).await;

    let Err(err) = QueueConsumer::open(&mut c, "q", "zero", queue_settings(1000, 0), 1).await
    else {
        panic!("max_deliveries 0 is refused")
    };
    assert_eq!(error_code(&err), ErrorCode::InvalidArgument);

    let err = publish_raw(
        &mut c,
        "q",
        0,
        vec![pb::Message {
            priority: 10,
            ..raw("x")
        }],
    )
    .await
    .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::InvalidPriority);
    let far = i64::MAX / 2;
    let err = publish_raw(
        &mut c,
        "q",
        0,
        vec![pb::Message {
            deliver_at_ms: far,
            ..raw("x")
        }],
    )
    .await
    .unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::DeliverAtOutOfRange);

    // An unknown receipt, and one of another subscription, are refused on the stream.
    publish(&mut c, "q", 0, &[msg("", "one")]).await.unwrap();
    let mut a = QueueConsumer::open(&mut c, "q", "a", queue_settings(30_000, 5), 1)
        .await
        .unwrap();
    let mine = a.receive(1).await;
    let mut b = QueueConsumer::open(&mut c, "q", "b", queue_settings(30_000, 5), 1)
        .await
        .unwrap();
    b.receive(1).await;
    b.ack(vec![receipt(&mine[0])]).await;
    match b.next_within(PATIENCE).await {
        Some(pb::consume_response::Kind::Error(err)) => assert_eq!(err.name, "RECEIPT_UNKNOWN"),
        other => panic!("expected RECEIPT_UNKNOWN, got {other:?}"),
    }
    a.ack(vec![pb::Receipt {
        partition: 0,
        offset: 99,
        delivery_id: 1,
    }])
    .await;
    match a.next_within(PATIENCE).await {
        Some(pb::consume_response::Kind::Error(err)) => assert_eq!(err.name, "RECEIPT_UNKNOWN"),
        other => panic!("expected RECEIPT_UNKNOWN, got {other:?}"),
    }

    // Nack on a stream subscription.
    let stream = Consumer::open(&mut c, "q", "s", start(pb::StartKind::Earliest), 1)
        .await
        .unwrap();
    stream
        .tx
        .send(pb::ConsumeRequest {
            kind: Some(pb::consume_request::Kind::Nack(pb::Nack {
                receipts: vec![],
                delay_ms: 0,
            })),
        })
        .await
        .unwrap();
    let mut stream = stream;
    loop {
        match stream.next_event().await {
            Some(pb::consume_response::Kind::Batch(_)) => continue,
            Some(pb::consume_response::Kind::Error(err)) => {
                assert_eq!(err.name, "SUBSCRIPTION_MODE_MISMATCH");
                break;
            }
            other => panic!("expected SUBSCRIPTION_MODE_MISMATCH, got {other:?}"),
        }
    }
}
