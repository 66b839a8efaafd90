//! Producer pipelining: several batches per partition in flight on one `PublishStream`, with
//! per-partition order and no duplicates across lost acks and a broker crash.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Env, guarded, text};
use rapidmq::Message;

const TOTAL: u32 = 20_000;
const KEYS: u32 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_batches_keep_order_per_key_across_lost_acks_and_a_broker_crash() {
    let mut env = Env::start().await;
    let topic = env.topic(2).await;
    let producer = env
        .client
        .producer(&topic)
        .max_batch_messages(50)
        .linger(Duration::from_millis(1))
        .max_in_flight_per_partition(5)
        .build()
        .await
        .unwrap();
    // Acks lost in the middle of a window: the failed batch and every later one are resent.
    producer.faults().lose_acks.store(3, Ordering::SeqCst);

    let (progress, mut acked_so_far) = tokio::sync::watch::channel(0u32);
    let producing = {
        let producer = producer.clone();
        tokio::spawn(async move {
            let mut window = Vec::new();
            let mut acked = 0;
            for i in 0..TOTAL {
                let message = Message::new(i.to_string()).with_key(format!("k{}", i % KEYS));
                window.push(producer.send(message).await.expect("send"));
                if window.len() == 2000 || i + 1 == TOTAL {
                    for receipt in window.drain(..) {
                        receipt.await.expect("every message is acked eventually");
                        acked += 1;
                    }
                    progress.send_replace(acked);
                }
            }
        })
    };
    guarded("a third acked", acked_so_far.wait_for(|&n| n >= TOTAL / 3))
        .await
        .unwrap();
    env.crash_and_restart();
    guarded("producer", producing).await.unwrap();

    let stats = producer.stats();
    assert!(
        stats.max_partition_in_flight > 1,
        "batches were pipelined: {stats:?}"
    );
    assert!(stats.retries >= 3, "{stats:?}");
    let log = env.read_log(&topic).await;
    let mut seen = HashSet::new();
    let mut last: HashMap<String, u32> = HashMap::new();
    for m in &log {
        let value: u32 = text(&m.value).parse().unwrap();
        assert!(seen.insert(value), "duplicate {value}");
        let key = text(m.key.as_deref().unwrap());
        if let Some(previous) = last.insert(key.clone(), value) {
            assert!(previous < value, "key {key}: {previous} before {value}");
        }
    }
    assert_eq!(seen.len(), TOTAL as usize, "nothing acked is missing");
    println!("pipelined producer across a crash: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_inside_a_full_pipeline_fails_alone_and_later_batches_keep_their_order() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let producer = env
        .client
        .producer(&topic)
        .max_batch_messages(1)
        .max_in_flight_per_partition(5)
        .build()
        .await
        .unwrap();
    let mut receipts = Vec::new();
    for i in 0..40u32 {
        // Every tenth message is refused by the broker (priority above 9).
        let priority = if i % 10 == 5 { 10 } else { 0 };
        let message = Message::new(i.to_string()).with_priority(priority);
        receipts.push((i, producer.send(message).await.unwrap()));
    }
    let mut offsets = Vec::new();
    for (i, receipt) in receipts {
        match guarded("receipt", receipt).await {
            Ok(d) => offsets.push(d.offset.expect("appended")),
            Err(err) => {
                assert_eq!(i % 10, 5, "only the refused messages fail");
                assert_eq!(err.code(), rapidmq::ErrorCode::InvalidPriority);
            }
        }
    }
    // Later batches were refused as out of sequence, resequenced and resent: dense offsets, and
    // the log in send order.
    assert_eq!(offsets, (0..36).collect::<Vec<u64>>());
    let log: Vec<u32> = env
        .read_log(&topic)
        .await
        .iter()
        .map(|m| text(&m.value).parse().unwrap())
        .collect();
    let expected: Vec<u32> = (0..40).filter(|i| i % 10 != 5).collect();
    assert_eq!(log, expected);
    assert!(producer.stats().max_partition_in_flight > 1);
}
