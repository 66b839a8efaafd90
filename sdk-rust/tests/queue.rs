//! Queue-mode consumers against a real broker: competing consumers, ack, nack, ack deadline,
//! dead letters and replay, priority, restart, stream errors.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Env, eventually, guarded, text};
use rapidmq::{
    ErrorCode, Message, QueueConsumer, QueueMessage, QueueSettings, StartPosition, SubscriptionMode,
};

async fn send_all(env: &Env, topic: &str, messages: Vec<Message>) {
    let producer = env.client.producer(topic).build().await.unwrap();
    let mut receipts = Vec::new();
    for m in messages {
        receipts.push(producer.send(m).await.unwrap());
    }
    for r in receipts {
        guarded("receipt", r).await.unwrap();
    }
    producer.close().await.unwrap();
}

/// Polls until exactly `n` deliveries have come.
async fn receive(consumer: &QueueConsumer, n: usize) -> Vec<QueueMessage> {
    let mut out = Vec::new();
    while out.len() < n {
        let got = guarded(
            "poll",
            consumer.poll(n - out.len(), Duration::from_secs(30)),
        )
        .await
        .unwrap();
        assert!(!got.is_empty(), "stalled after {} deliveries", out.len());
        out.extend(got);
    }
    out
}

fn worker(env: &Env, topic: &str, sub: &str) -> rapidmq::QueueConsumerBuilder {
    env.client
        .queue_consumer(topic)
        .subscription(sub)
        .start(StartPosition::Earliest)
        .ack_interval(Duration::from_millis(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competing_consumers_share_the_work_and_each_message_is_delivered_once() {
    const TOTAL: usize = 3000;
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let a = worker(&env, &topic, "w")
        .prefetch(50)
        .subscribe()
        .await
        .unwrap();
    let b = worker(&env, &topic, "w")
        .prefetch(50)
        .subscribe()
        .await
        .unwrap();
    send_all(
        &env,
        &topic,
        (0..TOTAL).map(|i| Message::new(i.to_string())).collect(),
    )
    .await;

    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for consumer in [a.clone(), b.clone()] {
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while done.load(Ordering::SeqCst) < TOTAL {
                let got = consumer
                    .poll(100, Duration::from_millis(100))
                    .await
                    .unwrap();
                for d in got {
                    assert_eq!(d.attempt, 1);
                    consumer.ack(&d.receipt).unwrap();
                    mine.push(d.message.offset);
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }
            mine
        }));
    }
    let mut per_offset: HashMap<u64, usize> = HashMap::new();
    let mut shares = Vec::new();
    for task in tasks {
        let mine = guarded("worker", task).await.unwrap();
        shares.push(mine.len());
        for offset in mine {
            *per_offset.entry(offset).or_default() += 1;
        }
    }
    assert_eq!(per_offset.len(), TOTAL);
    assert!(per_offset.values().all(|&n| n == 1), "a message came twice");
    assert!(
        shares.iter().all(|&n| n > 0),
        "both consumers worked: {shares:?}"
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
    let info = env
        .client
        .admin()
        .describe_subscription(&topic, "w")
        .await
        .unwrap();
    assert_eq!(info.mode, SubscriptionMode::Queue);
    assert_eq!(info.queue_stats.unwrap().in_flight, 0, "every ack arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_go_out_once_a_batch_is_pending_without_waiting_for_the_interval() {
    let batch = rapidmq::defaults::ACK_BATCH;
    let env = Env::start().await;
    let topic = env.topic(1).await;
    send_all(
        &env,
        &topic,
        (0..batch + 10)
            .map(|i| Message::new(i.to_string()))
            .collect(),
    )
    .await;
    let consumer = worker(&env, &topic, "w")
        .ack_interval(Duration::from_secs(3600))
        .subscribe()
        .await
        .unwrap();
    let got = receive(&consumer, batch + 10).await;
    for m in &got[..batch - 1] {
        consumer.ack(&m.receipt).unwrap();
    }
    assert_eq!(
        consumer.stats().ack_requests,
        0,
        "below the batch, acks wait"
    );
    consumer.ack(&got[batch - 1].receipt).unwrap();
    let admin = env.client.admin();
    let in_flight = || async {
        let info = admin.describe_subscription(&topic, "w").await.unwrap();
        info.queue_stats.unwrap().in_flight
    };
    eventually("the full batch of acks reaches the broker", || async {
        in_flight().await == 10
    })
    .await;
    assert_eq!(consumer.stats().ack_requests, 1);
    for m in &got[batch..] {
        consumer.ack(&m.receipt).unwrap();
    }
    consumer.flush().await.unwrap();
    eventually("the rest arrive on flush", || async {
        in_flight().await == 0
    })
    .await;
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacked_message_is_redelivered_then_dead_lettered_after_max_deliveries_and_replayed() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    send_all(&env, &topic, vec![Message::new("poison").with_key("k")]).await;
    let q = worker(&env, &topic, "senders")
        .max_deliveries(2)
        .subscribe()
        .await
        .unwrap();

    let first = receive(&q, 1).await;
    assert_eq!(first[0].attempt, 1);
    // Time passes: a nack with a delay must not come back before it.
    let nacked_at = Instant::now();
    q.nack(&first[0].receipt, Duration::from_millis(1500))
        .unwrap();
    let second = receive(&q, 1).await;
    assert!(nacked_at.elapsed() >= Duration::from_millis(1500));
    assert_eq!(second[0].attempt, 2);
    assert_eq!(text(&second[0].message.value), "poison");
    q.nack(&second[0].receipt, Duration::ZERO).unwrap();

    let admin = env.client.admin();
    let dlq = format!("{topic}.dlq");
    let pending = |n: usize| {
        let (admin, dlq) = (admin.clone(), dlq.clone());
        async move {
            admin
                .list_dead_letters(dlq, 10, None)
                .await
                .is_ok_and(|p| p.dead_letters.len() == n)
        }
    };
    eventually("the message is dead-lettered", || pending(1)).await;
    let page = admin.list_dead_letters(&dlq, 10, None).await.unwrap();
    assert_eq!(page.next_page_token, None, "one letter is one page");
    let letters = page.dead_letters;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!((letter.partition, letter.offset), (0, 0));
    assert_eq!(
        (
            letter.original_topic.as_str(),
            letter.original_partition,
            letter.original_offset
        ),
        (topic.as_str(), 0, 0)
    );
    assert_eq!(letter.attempts, 2);
    assert_eq!(text(&letter.message.value), "poison");
    assert!(
        letter
            .message
            .headers
            .iter()
            .any(|(k, v)| k == "rapidmq-dlq-topic" && text(v) == topic)
    );
    let stats = admin
        .describe_subscription(&topic, "senders")
        .await
        .unwrap()
        .queue_stats
        .unwrap();
    assert_eq!(stats.dead_lettered, 1);

    // Two more letters: pages of two follow the token, and replay counts down what remains.
    send_all(&env, &topic, vec![Message::new("p1"), Message::new("p2")]).await;
    for _ in 0..2 {
        for m in receive(&q, 2).await {
            q.nack(&m.receipt, Duration::ZERO).unwrap();
        }
    }
    eventually("three letters are pending", || pending(3)).await;
    let first = admin.list_dead_letters(&dlq, 2, None).await.unwrap();
    let token = first.next_page_token.expect("a second page");
    let second = admin
        .list_dead_letters(&dlq, 2, Some(&token))
        .await
        .unwrap();
    assert_eq!(second.next_page_token, None);
    let offsets: Vec<u64> = first
        .dead_letters
        .iter()
        .chain(&second.dead_letters)
        .map(|d| d.offset)
        .collect();
    assert_eq!(offsets, [0, 1, 2], "each letter once, in order");
    let err = admin
        .list_dead_letters(&dlq, 2, Some("not-a-token"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    let err = admin.list_dead_letters(&dlq, 1001, None).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);

    let replay = admin.replay_dead_letters(&dlq, Some(2)).await.unwrap();
    assert_eq!((replay.replayed, replay.remaining), (2, 1));
    let replay = admin.replay_dead_letters(&dlq, None).await.unwrap();
    assert_eq!((replay.replayed, replay.remaining), (1, 0));
    let mut back: Vec<(String, u32)> = receive(&q, 3)
        .await
        .into_iter()
        .map(|m| {
            q.ack(&m.receipt).unwrap();
            (text(&m.message.value), m.attempt)
        })
        .collect();
    back.sort();
    assert_eq!(
        back,
        [("p1".into(), 1), ("p2".into(), 1), ("poison".into(), 1)],
        "each replayed message comes back once and starts over"
    );
    q.close().await.unwrap();
    let page = admin.list_dead_letters(&dlq, 10, None).await.unwrap();
    assert!(page.dead_letters.is_empty() && page.next_page_token.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacked_delivery_comes_back_after_its_deadline_unless_extended() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    send_all(
        &env,
        &topic,
        vec![Message::new("slow"), Message::new("stuck")],
    )
    .await;
    let q = worker(&env, &topic, "w")
        .ack_deadline(Duration::from_millis(800))
        .subscribe()
        .await
        .unwrap();
    let got = receive(&q, 2).await;
    let (slow, stuck) = if text(&got[0].message.value) == "slow" {
        (&got[0], &got[1])
    } else {
        (&got[1], &got[0])
    };
    q.extend_deadline(&slow.receipt, Duration::from_secs(30))
        .unwrap();
    // Time passes: only the message whose deadline ran out is delivered again.
    let started = Instant::now();
    let again = receive(&q, 1).await;
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(text(&again[0].message.value), "stuck");
    assert_eq!(again[0].attempt, 2);
    q.ack(&again[0].receipt).unwrap();
    q.ack(&slow.receipt).unwrap();
    // The first delivery of `stuck` timed out: the broker refuses its receipt on the stream,
    // which the consumer surfaces without ending the subscription.
    q.ack(&stuck.receipt).unwrap();
    q.flush().await.unwrap();
    eventually("the stale ack is reported", || async {
        q.stats().stream_errors >= 1
    })
    .await;
    let errors = q.take_stream_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].code(), ErrorCode::ReceiptUnknown);
    q.close().await.unwrap();
    let info = env
        .client
        .admin()
        .describe_subscription(&topic, "w")
        .await
        .unwrap();
    assert_eq!(info.queue_stats.unwrap().in_flight, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_mixed_priorities_is_delivered_highest_first() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let priorities = [3u8, 9, 0, 5, 9, 1, 7];
    send_all(
        &env,
        &topic,
        priorities
            .iter()
            .map(|&p| Message::new(format!("p{p}")).with_priority(p))
            .collect(),
    )
    .await;
    let q = worker(&env, &topic, "pager").subscribe().await.unwrap();
    let got: Vec<u8> = receive(&q, priorities.len())
        .await
        .iter()
        .map(|d| d.message.priority)
        .collect();
    assert_eq!(got, [9, 9, 7, 5, 3, 1, 0]);
    q.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_the_unacked_message_returns_and_stale_receipts_are_dropped() {
    let mut env = Env::start().await;
    let topic = env.topic(1).await;
    send_all(&env, &topic, vec![Message::new("a"), Message::new("b")]).await;
    let q = worker(&env, &topic, "w")
        .ack_deadline(Duration::from_secs(60))
        .subscribe()
        .await
        .unwrap();
    let got = receive(&q, 2).await;
    let (acked, held) = (&got[0], &got[1]);
    q.ack(&acked.receipt).unwrap();
    q.flush().await.unwrap();
    let admin = env.client.admin();
    eventually("the ack is recorded", || {
        let (admin, topic) = (admin.clone(), topic.clone());
        async move {
            admin
                .describe_subscription(topic, "w")
                .await
                .is_ok_and(|i| i.total_lag == 1)
        }
    })
    .await;
    // A graceful restart: the broker persists ack state on an interval and on shutdown, so no
    // acked message comes back (after `kill -9` the documented window is that interval).
    env.restart();

    let again = receive(&q, 1).await;
    assert_eq!(text(&again[0].message.value), text(&held.message.value));
    assert_eq!(
        again[0].attempt, 2,
        "the attempt count survives the restart"
    );
    assert!(q.stats().reconnects >= 1);
    q.ack(&held.receipt).unwrap();
    assert_eq!(
        q.stats().stale_receipts,
        1,
        "the old receipt is dropped locally"
    );
    q.ack(&again[0].receipt).unwrap();
    q.close().await.unwrap();
    assert!(q.take_stream_errors().is_empty());
    let stats = env
        .client
        .admin()
        .describe_subscription(&topic, "w")
        .await
        .unwrap()
        .queue_stats
        .unwrap();
    assert_eq!(stats.in_flight, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_settings_are_created_and_described_and_bad_ones_get_their_codes() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let admin = env.client.admin();
    let settings = QueueSettings {
        ack_deadline: Some(Duration::from_secs(12)),
        max_deliveries: Some(7),
        dead_letter_topic: Some(format!("{topic}-dead")),
    };
    let info = admin
        .create_queue_subscription(&topic, "jobs", StartPosition::Earliest, settings.clone())
        .await
        .unwrap();
    assert_eq!(info.mode, SubscriptionMode::Queue);
    let described = admin.describe_subscription(&topic, "jobs").await.unwrap();
    assert_eq!(described.queue, Some(settings));
    assert_eq!(described.queue_stats.unwrap_or_default().in_flight, 0);

    let err = worker(&env, &topic, "zero")
        .max_deliveries(0)
        .subscribe()
        .await
        .expect_err("max_deliveries 0");
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    let err = env
        .client
        .queue_consumer(&topic)
        .subscribe()
        .await
        .expect_err("no subscription name");
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    admin
        .create_subscription(&topic, "stream", StartPosition::Earliest)
        .await
        .unwrap();
    let err = worker(&env, &topic, "stream")
        .subscribe()
        .await
        .expect_err("a stream subscription");
    assert_eq!(err.code(), ErrorCode::SubscriptionModeMismatch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_polls_lose_no_deliveries_and_each_is_acked_once() {
    const TOTAL: u64 = 2000;
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let consumer = worker(&env, &topic, "cancel")
        .prefetch(20)
        .ack_deadline(Duration::from_secs(120))
        .subscribe()
        .await
        .unwrap();
    let producer = env.client.producer(&topic).build().await.unwrap();
    let publisher = tokio::spawn(async move {
        for burst in 0..TOTAL / 25 {
            let mut receipts = Vec::new();
            for i in 0..25 {
                let message = Message::new((burst * 25 + i).to_string());
                receipts.push(producer.send(message).await.unwrap());
            }
            producer.flush().await.unwrap();
            for receipt in receipts {
                receipt.await.unwrap();
            }
        }
        producer.close().await.unwrap();
    });

    let mut received: Vec<QueueMessage> = Vec::new();
    let mut round = 0u64;
    guarded("polls with cancellations", async {
        while consumer.stats().polled < TOTAL {
            round += 1;
            let budget = if round.is_multiple_of(4) {
                Duration::from_millis(50)
            } else {
                Duration::from_micros(round % 300)
            };
            if let Ok(result) =
                tokio::time::timeout(budget, consumer.poll(7, Duration::from_secs(5))).await
            {
                for delivery in result.unwrap() {
                    consumer.ack(&delivery.receipt).unwrap();
                    received.push(delivery);
                }
            }
        }
    })
    .await;
    publisher.await.unwrap();
    consumer.flush().await.unwrap();

    // Every delivery handed out reached a completed poll and was acked, once, on its first attempt.
    let mut offsets: Vec<u64> = received.iter().map(|d| d.message.offset).collect();
    offsets.sort_unstable();
    let missing: Vec<u64> = (0..TOTAL)
        .filter(|o| offsets.binary_search(o).is_err())
        .collect();
    assert!(missing.is_empty(), "lost to cancelled polls: {missing:?}");
    assert_eq!(offsets.len() as u64, TOTAL, "duplicates");
    assert!(received.iter().all(|d| d.attempt == 1));
    let stats = consumer.stats();
    assert_eq!((stats.polled, stats.acked), (TOTAL, TOTAL), "{stats:?}");
    consumer.close().await.unwrap();
}

/// A backlog of larger messages reaches a queue consumer with the default prefetch: the broker
/// splits what the credits allow into responses a client can decode, rather than one response
/// of every claimed message (8 MiB here, twice gRPC's usual 4 MiB limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_large_messages_arrives_in_responses_of_bounded_size() {
    const TOTAL: usize = 1000;
    const SIZE: usize = 8 << 10;
    let env = Env::start().await;
    let topic = env.topic(2).await;
    send_all(
        &env,
        &topic,
        (0..TOTAL)
            .map(|i| Message::new(format!("{i:08}{}", "x".repeat(SIZE - 8))))
            .collect(),
    )
    .await;
    let consumer = worker(&env, &topic, "big").subscribe().await.unwrap();
    let delivered = receive(&consumer, TOTAL).await;
    let mut seen: Vec<usize> = delivered
        .iter()
        .map(|d| {
            assert_eq!(d.message.value.len(), SIZE);
            text(&d.message.value)[..8].parse().unwrap()
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..TOTAL).collect::<Vec<_>>());
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_consumer_is_a_stream_of_deliveries_to_ack() {
    use futures::StreamExt;
    let env = Env::start().await;
    let topic = env.topic(2).await;
    send_all(
        &env,
        &topic,
        (0..20).map(|i| Message::new(format!("job {i}"))).collect(),
    )
    .await;
    let mut consumer = worker(&env, &topic, "stream-workers")
        .subscribe()
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let delivery = guarded("next", consumer.next()).await;
        let delivery = delivery.expect("not ended").expect("a delivery");
        assert_eq!(delivery.attempt, 1);
        consumer.ack(&delivery.receipt).unwrap();
        seen.push(text(&delivery.message.value));
    }
    seen.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("job {i}")).collect();
    expected.sort();
    assert_eq!(seen, expected);
    consumer.close().await.unwrap();
    assert!(
        consumer.next().await.is_none(),
        "the stream ends once closed"
    );
    eventually("every delivery acked", || async {
        let info = env
            .client
            .admin()
            .describe_subscription(&topic, "stream-workers")
            .await
            .unwrap();
        info.total_lag == 0 && info.queue_stats.is_some_and(|s| s.in_flight == 0)
    })
    .await;
}

/// Each value a handler saw, with the attempt and time of each call.
type Attempts = HashMap<String, Vec<(u32, Instant)>>;

/// C26 queue-handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_acks_what_it_handles_and_nacks_failures_with_backoff_until_dead_lettered() {
    use rapidmq::RunConfig;
    let env = Env::start().await;
    let topic = env.topic(2).await;
    let mut messages: Vec<Message> = (0..18).map(|i| Message::new(format!("ok-{i}"))).collect();
    messages.push(Message::new("flaky"));
    messages.push(Message::new("poison"));
    send_all(&env, &topic, messages).await;
    let consumer = worker(&env, &topic, "handled")
        .max_deliveries(3)
        .subscribe()
        .await
        .unwrap();

    let handled: Arc<std::sync::Mutex<Attempts>> = Arc::default();
    let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let config = RunConfig {
        concurrency: 4,
        retry_backoff: Duration::from_millis(200),
        max_retry_backoff: Duration::from_secs(5),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = {
        let (consumer, handled) = (consumer.clone(), handled.clone());
        let (running, most) = (running.clone(), most.clone());
        tokio::spawn(async move {
            let stop = async move {
                let _ = stopped.await;
            };
            consumer
                .run(config, stop, move |delivery| {
                    let (handled, running, most) = (handled.clone(), running.clone(), most.clone());
                    async move {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        let value = text(&delivery.message.value);
                        let attempt = delivery.attempt;
                        let entry = (attempt, Instant::now());
                        handled
                            .lock()
                            .unwrap()
                            .entry(value.clone())
                            .or_default()
                            .push(entry);
                        tokio::task::yield_now().await; // let other deliveries start meanwhile
                        running.fetch_sub(1, Ordering::SeqCst);
                        match value.as_str() {
                            "poison" => Err("always fails"),
                            "flaky" if attempt == 1 => Err("fails once"),
                            _ => Ok(()),
                        }
                    }
                })
                .await
        })
    };

    let dlq = format!("{topic}.dlq");
    let admin = env.client.admin();
    eventually("the poison message is dead-lettered", || {
        let (admin, dlq) = (admin.clone(), dlq.clone());
        async move {
            admin
                .list_dead_letters(dlq, 10, None)
                .await
                .is_ok_and(|p| p.dead_letters.len() == 1)
        }
    })
    .await;
    eventually("everything else is handled", || {
        let handled = handled.clone();
        async move { handled.lock().unwrap().len() == 20 }
    })
    .await;
    stop.send(()).unwrap();
    guarded("run stops", run).await.unwrap().unwrap();

    let handled = handled.lock().unwrap().clone();
    for i in 0..18 {
        let attempts: Vec<u32> = handled[&format!("ok-{i}")].iter().map(|a| a.0).collect();
        assert_eq!(attempts, [1], "ok-{i} handled once");
    }
    let flaky = &handled["flaky"];
    assert_eq!(flaky.iter().map(|a| a.0).collect::<Vec<_>>(), [1, 2]);
    assert!(
        flaky[1].1 - flaky[0].1 >= Duration::from_millis(200),
        "backoff of attempt 1"
    );
    let poison = &handled["poison"];
    assert_eq!(poison.iter().map(|a| a.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(
        poison[1].1 - poison[0].1 >= Duration::from_millis(200),
        "backoff of attempt 1"
    );
    assert!(
        poison[2].1 - poison[1].1 >= Duration::from_millis(400),
        "doubled for attempt 2"
    );
    let letters = admin.list_dead_letters(&dlq, 10, None).await.unwrap();
    assert_eq!(text(&letters.dead_letters[0].message.value), "poison");
    assert_eq!(letters.dead_letters[0].attempts, 3);
    assert!(most.load(Ordering::SeqCst) <= 4, "at most 4 at once");
    let info = admin
        .describe_subscription(&topic, "handled")
        .await
        .unwrap();
    assert_eq!(
        info.queue_stats.expect("queue stats").in_flight,
        0,
        "all settled"
    );
    assert_eq!(
        rapidmq::retry_delay(3, config.retry_backoff, config.max_retry_backoff),
        Duration::from_millis(800)
    );
}
