//! Consumer behaviour against a real broker: flow control, order, commits.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Env, eventually, guarded, publish_values};
use rapidmq::{ErrorCode, Message, StartPosition, TopicConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_100_never_buffers_more_than_100_messages_ahead_of_poll() {
    let env = Env::start().await;
    let topic = env.topic(2).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    publish_values(&producer, 1000).await;

    let consumer = env
        .client
        .consumer(&topic)
        .subscription("prefetch")
        .start(StartPosition::Earliest)
        .prefetch(100)
        .subscribe()
        .await
        .unwrap();
    let mut received = 0;
    while received < 1000 {
        let messages = guarded("poll", consumer.poll(7, Duration::from_secs(10)))
            .await
            .unwrap();
        assert!(!messages.is_empty(), "stalled at {received}");
        received += messages.len();
        let stats = consumer.stats();
        assert!(stats.buffered <= 100, "{stats:?}");
        for m in &messages {
            consumer.ack(m).unwrap();
        }
    }
    let stats = consumer.stats();
    assert!(stats.max_buffered <= 100, "{stats:?}");
    assert!(stats.max_buffered > 7, "the buffer never filled: {stats:?}");
    assert_eq!(stats.received, 1000);
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_bytes_bound_the_buffer_and_every_message_still_arrives() {
    const MESSAGES: usize = 1000;
    const BATCH: usize = 50;
    const BYTES: u64 = 64 * 1024;
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let producer = env
        .client
        .producer(&topic)
        .max_batch_messages(BATCH)
        .build()
        .await
        .unwrap();
    let value = vec![b'v'; 1000];
    let mut receipts = Vec::new();
    for _ in 0..MESSAGES {
        receipts.push(producer.send(Message::new(value.clone())).await.unwrap());
    }
    for receipt in receipts {
        guarded("receipt", receipt).await.unwrap();
    }

    // 1,000 messages of 1 kB pass through a 64 KiB window again and again: a byte credit not
    // granted back would stall the consumer before the end.
    let consumer = env
        .client
        .consumer(&topic)
        .subscription("bytes")
        .start(StartPosition::Earliest)
        .prefetch_bytes(BYTES)
        .subscribe()
        .await
        .unwrap();
    // Before any poll the window fills: a batch whole, then more while byte credits are left.
    eventually("the window filled", || async {
        consumer.stats().buffered as usize > BATCH
    })
    .await;
    let mut received = 0;
    while received < MESSAGES {
        let messages = guarded("poll", consumer.poll(7, Duration::from_secs(10)))
            .await
            .unwrap();
        assert!(!messages.is_empty(), "stalled at {received}");
        received += messages.len();
    }
    let stats = consumer.stats();
    assert_eq!(stats.received, MESSAGES as u64);
    // The window plus the one batch that may pass it, in messages of a little over 1 kB.
    let bound = BYTES as usize / 1000 + BATCH;
    assert!(stats.max_buffered as usize <= bound, "{stats:?}");
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_keyed_messages_arrive_in_order_per_key() {
    let env = Env::start().await;
    let topic = env.topic(4).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    let mut receipts = Vec::new();
    for i in 0..10_000u32 {
        let key = format!("k{}", i % 10);
        receipts.push(
            producer
                .send(Message::new(i.to_string()).with_key(key))
                .await
                .unwrap(),
        );
    }
    for receipt in receipts {
        guarded("receipt", receipt).await.unwrap();
    }

    let consumer = env
        .client
        .consumer(&topic)
        .subscription("order")
        .start(StartPosition::Earliest)
        .auto_commit(true)
        .subscribe()
        .await
        .unwrap();
    let mut last_per_key: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut received = 0;
    while received < 10_000 {
        let messages = guarded("poll", consumer.poll(1000, Duration::from_secs(10)))
            .await
            .unwrap();
        assert!(!messages.is_empty(), "stalled at {received}");
        for m in messages {
            let key = m.key.clone().expect("keyed").to_vec();
            let value: u32 = std::str::from_utf8(&m.value).unwrap().parse().unwrap();
            assert_eq!(
                m.partition,
                rapidmq_proto::partition_for_key(&key, 4),
                "key on its partition"
            );
            if let Some(previous) = last_per_key.insert(key, value) {
                assert!(previous < value, "out of order: {previous} then {value}");
            }
            received += 1;
        }
    }
    assert_eq!(received, 10_000);
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_are_committed_on_close_and_a_new_member_resumes_after_them() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    publish_values(&producer, 100).await;

    let consumer = env
        .client
        .consumer(&topic)
        .subscription("resume")
        .start(StartPosition::Earliest)
        .prefetch(10)
        .subscribe()
        .await
        .unwrap();
    let mut acked = 0;
    while acked < 60 {
        let messages = guarded("poll", consumer.poll(60 - acked, Duration::from_secs(10)))
            .await
            .unwrap();
        for m in &messages {
            assert_eq!(m.offset, acked as u64);
            consumer.ack(m).unwrap();
            acked += 1;
        }
    }
    consumer.close().await.unwrap();
    let info = env
        .client
        .admin()
        .describe_subscription(&topic, "resume")
        .await
        .unwrap();
    assert_eq!(info.cursors[0].committed_offset, 60);
    assert_eq!(info.total_lag, 40);

    let next = env
        .client
        .consumer(&topic)
        .subscription("resume")
        .subscribe()
        .await
        .unwrap();
    let messages = guarded("poll", next.poll(1, Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(messages[0].offset, 60);
    let err = next
        .nack(&messages[0], Duration::from_secs(1))
        .expect_err("stream mode");
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    next.close().await.unwrap();
}

/// What a caller took with `poll_unacked` and did not hand on goes back in front, in order, and
/// is neither acknowledged nor granted to the broker a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_put_back_are_polled_again_in_order_without_new_credits() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    publish_values(&producer, 500).await;

    let consumer = env
        .client
        .consumer(&topic)
        .subscription("put-back")
        .start(StartPosition::Earliest)
        .prefetch(10)
        .auto_commit(true)
        .subscribe()
        .await
        .unwrap();
    // Take the window and put it all back, again and again: had each put-back message been
    // credited again when taken anew, the broker would now be owed a hundred more.
    for round in 0..10 {
        let taken = guarded("poll", consumer.poll_unacked(10, Duration::from_secs(10)))
            .await
            .unwrap();
        let offsets: Vec<u64> = taken.iter().map(|m| m.offset).collect();
        assert_eq!(
            offsets,
            (0..offsets.len() as u64).collect::<Vec<_>>(),
            "round {round}"
        );
        consumer.put_back(taken);
    }
    // Hand on four, put back the rest: the next poll starts at the fifth.
    let taken = guarded("poll", consumer.poll_unacked(10, Duration::from_secs(10)))
        .await
        .unwrap();
    let (handed, rest) = taken.split_at(4);
    consumer
        .ack_offsets(handed.iter().map(|m| (m.partition, m.offset)))
        .unwrap();
    consumer.put_back(rest.to_vec());
    let mut next = 4;
    while next < 500 {
        let messages = guarded("poll", consumer.poll(50, Duration::from_secs(10)))
            .await
            .unwrap();
        assert!(!messages.is_empty(), "stalled at {next}");
        for m in &messages {
            assert_eq!(m.offset, next);
            next += 1;
        }
        let stats = consumer.stats();
        assert!(stats.max_buffered <= 10, "{stats:?}");
    }
    consumer.close().await.unwrap();
    let info = env
        .client
        .admin()
        .describe_subscription(&topic, "put-back")
        .await
        .unwrap();
    assert_eq!(info.cursors[0].committed_offset, 500);
}

/// Put back after the last acknowledgement was committed: a new member resumes at the first
/// message put back, not after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_put_back_is_not_committed_past() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    publish_values(&producer, 20).await;

    let consumer = env
        .client
        .consumer(&topic)
        .subscription("put-back-commit")
        .start(StartPosition::Earliest)
        .auto_commit(true)
        .subscribe()
        .await
        .unwrap();
    let mut taken = Vec::new();
    while taken.len() < 20 {
        taken.extend(
            guarded(
                "poll",
                consumer.poll_unacked(20 - taken.len(), Duration::from_secs(10)),
            )
            .await
            .unwrap(),
        );
    }
    consumer.ack_offsets([(0, 0), (0, 1), (0, 2)]).unwrap();
    // Acknowledged after the ones put back: it must not carry the position past them.
    consumer.ack_offsets([(0, 9)]).unwrap();
    let rest: Vec<_> = taken.into_iter().filter(|m| m.offset >= 3).collect();
    consumer.put_back(rest);
    consumer.close().await.unwrap();

    let next = env
        .client
        .consumer(&topic)
        .subscription("put-back-commit")
        .subscribe()
        .await
        .unwrap();
    let messages = guarded("poll", next.poll(1, Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(messages[0].offset, 3);
    next.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_acks_commit_only_up_to_the_first_unacked_message() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    publish_values(&producer, 10).await;
    let consumer = env
        .client
        .consumer(&topic)
        .subscription("gaps")
        .start(StartPosition::Earliest)
        .subscribe()
        .await
        .unwrap();
    let mut messages = Vec::new();
    while messages.len() < 10 {
        messages.extend(
            guarded("poll", consumer.poll(10, Duration::from_secs(10)))
                .await
                .unwrap(),
        );
    }
    for m in messages.iter().filter(|m| m.offset != 4) {
        consumer.ack(m).unwrap();
    }
    consumer.close().await.unwrap();
    let info = env
        .client
        .admin()
        .describe_subscription(&topic, "gaps")
        .await
        .unwrap();
    assert_eq!(info.cursors[0].committed_offset, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_to_an_unknown_topic_fails_with_topic_not_found() {
    let env = Env::start().await;
    let err = env
        .client
        .consumer("missing-topic")
        .subscription("s")
        .subscribe()
        .await
        .expect_err("unknown topic");
    assert_eq!(err.code(), ErrorCode::TopicNotFound);
    let err = env
        .client
        .consumer("bad/name")
        .subscribe()
        .await
        .expect_err("invalid name");
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_one_subscription_split_the_partitions_and_together_see_everything() {
    let env = Env::start().await;
    let topic = env.topic(2).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    publish_values(&producer, 200).await;

    let subscribe = || {
        env.client
            .consumer(&topic)
            .subscription("group")
            .start(StartPosition::Earliest)
            .prefetch(10)
            .auto_commit(true)
            .subscribe()
    };
    let a = subscribe().await.unwrap();
    let b = subscribe().await.unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut rounds = 0;
    while seen.len() < 200 || a.assignment().len() != 1 || b.assignment().len() != 1 {
        rounds += 1;
        assert!(
            rounds < 10_000,
            "no progress: {} seen, {:?} / {:?}",
            seen.len(),
            a.assignment(),
            b.assignment()
        );
        for member in [&a, &b] {
            let messages = guarded("poll", member.poll(50, Duration::from_millis(200)))
                .await
                .unwrap();
            for m in messages {
                seen.insert(m.value.clone());
            }
        }
    }
    let (pa, pb) = (a.assignment(), b.assignment());
    assert_ne!(pa, pb, "each member owns its own partition");
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// Polls `consumer`-like `poll` in a loop, giving up on most calls after a few microseconds (the
/// way a caller's timeout or a cancelled coroutine drops the future), until `done` says every
/// message was handed out. Returns what the completed polls returned.
async fn poll_with_cancellations<T, P, F>(mut poll: P, mut done: impl FnMut() -> bool) -> Vec<T>
where
    P: FnMut() -> F,
    F: std::future::Future<Output = rapidmq::Result<Vec<T>>>,
{
    let mut received = Vec::new();
    let mut round = 0u64;
    while !done() {
        round += 1;
        // Mostly tiny budgets (cancelled while waiting or just as messages arrive), sometimes a
        // real one so the loop always makes progress.
        let budget = if round.is_multiple_of(4) {
            Duration::from_millis(50)
        } else {
            Duration::from_micros(round % 300)
        };
        if let Ok(result) = tokio::time::timeout(budget, poll()).await {
            received.extend(result.unwrap());
        }
    }
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_polls_lose_no_messages() {
    const TOTAL: u64 = 3000;
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let consumer = env
        .client
        .consumer(&topic)
        .subscription("cancel")
        .start(StartPosition::Earliest)
        .prefetch(20)
        .subscribe()
        .await
        .unwrap();
    let producer = env.client.producer(&topic).build().await.unwrap();
    let publisher = tokio::spawn(async move {
        // Small flushed bursts, so messages keep trickling in while polls wait.
        for burst in 0..TOTAL / 30 {
            let mut receipts = Vec::new();
            for i in 0..30 {
                let message = Message::new((burst * 30 + i).to_string());
                receipts.push(producer.send(message).await.unwrap());
            }
            producer.flush().await.unwrap();
            for receipt in receipts {
                receipt.await.unwrap();
            }
        }
        producer.close().await.unwrap();
    });

    let received = guarded(
        "polls with cancellations",
        poll_with_cancellations(
            || consumer.poll(7, Duration::from_secs(5)),
            || consumer.stats().polled >= TOTAL,
        ),
    )
    .await;
    publisher.await.unwrap();

    // Every message handed out by the consumer reached a completed poll, exactly once.
    let mut offsets: Vec<u64> = received.iter().map(|m| m.offset).collect();
    offsets.sort_unstable();
    let missing: Vec<u64> = (0..TOTAL)
        .filter(|o| offsets.binary_search(o).is_err())
        .collect();
    assert!(missing.is_empty(), "lost to cancelled polls: {missing:?}");
    assert_eq!(offsets.len() as u64, TOTAL, "duplicates");
    let stats = consumer.stats();
    assert_eq!(stats.polled, TOTAL, "{stats:?}");
    consumer.close().await.unwrap();
}

/// Every message the broker accepts can be read back: one of 5 MiB (a topic may allow up to
/// 8 MiB by default) goes through a consumer and a fetch, past gRPC's usual 4 MiB response limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_larger_than_4_mib_is_consumed_and_fetched() {
    const SIZE: usize = 5 << 20;
    let env = Env::start().await;
    let topic = env
        .topic_with(TopicConfig {
            partitions: 1,
            max_message_bytes: Some(6 << 20),
            ..TopicConfig::default()
        })
        .await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    let receipt = producer.send(Message::new(vec![7u8; SIZE])).await.unwrap();
    guarded("receipt", receipt).await.unwrap();
    producer.close().await.unwrap();

    let consumer = env
        .client
        .consumer(&topic)
        .subscription("large")
        .start(StartPosition::Earliest)
        .subscribe()
        .await
        .unwrap();
    let messages = guarded("poll", consumer.poll(1, Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].value.len(), SIZE);
    consumer.close().await.unwrap();

    let fetched = guarded("fetch", env.client.fetch(&topic, 0, 0, 1))
        .await
        .unwrap();
    assert_eq!(fetched.messages.len(), 1);
    assert_eq!(fetched.messages[0].value.len(), SIZE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_is_a_stream_that_takes_only_what_it_yields_and_ends_on_close() {
    use futures::StreamExt;
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    publish_values(&producer, 100).await;

    // Auto-commit counts what the consumer hands out as acknowledged: a stream that took more
    // than it yielded would commit messages the application never saw.
    let mut consumer = env
        .client
        .consumer(&topic)
        .subscription("stream")
        .start(StartPosition::Earliest)
        .auto_commit(true)
        .subscribe()
        .await
        .unwrap();
    for expected in 0..30u64 {
        let message = guarded("next", consumer.next()).await;
        let message = message.expect("not ended").expect("a message");
        assert_eq!(message.offset, expected);
        assert_eq!(&message.value[..], expected.to_string().as_bytes());
    }
    consumer.close().await.unwrap();
    assert!(
        consumer.next().await.is_none(),
        "the stream ends once closed"
    );
    let info = env
        .client
        .admin()
        .describe_subscription(&topic, "stream")
        .await
        .unwrap();
    assert_eq!(
        info.cursors[0].committed_offset, 30,
        "exactly what was yielded"
    );
}
