//! A broker crash in the middle of a run: the producer keeps going, the consumer resumes, and
//! the log ends up with every acknowledged message exactly once.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Env, guarded};
use rapidmq::{Message, StartPosition};

const TOTAL: u32 = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_and_consumer_carry_on_across_a_broker_crash_without_loss_or_duplicates() {
    run_across_restart(Env::crash_and_restart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_and_consumer_carry_on_across_a_graceful_broker_restart() {
    run_across_restart(Env::restart).await;
}

async fn run_across_restart(restart: fn(&mut Env)) {
    let mut env = Env::start().await;
    let topic = env.topic(2).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    let consumer = env
        .client
        .consumer(&topic)
        .subscription("restart")
        .start(StartPosition::Earliest)
        .prefetch(100)
        .commit_interval(Duration::from_millis(50))
        .subscribe()
        .await
        .unwrap();

    // The producer paces itself on its receipts, so the crash lands mid-run.
    let (progress, mut acked_so_far) = tokio::sync::watch::channel(0u32);
    let producing = {
        let producer = producer.clone();
        tokio::spawn(async move {
            let mut acked = HashSet::new();
            let mut window = Vec::new();
            for i in 0..TOTAL {
                let message = Message::new(i.to_string()).with_key(format!("k{}", i % 7));
                window.push((i, producer.send(message).await.expect("send")));
                if window.len() == 100 || i + 1 == TOTAL {
                    for (value, receipt) in window.drain(..) {
                        receipt.await.expect("every message is acked eventually");
                        acked.insert(value);
                    }
                    progress.send_replace(acked.len() as u32);
                }
            }
            acked
        })
    };
    let consuming = {
        let consumer = consumer.clone();
        tokio::spawn(async move {
            let mut seen = HashSet::new();
            while seen.len() < TOTAL as usize {
                let messages = consumer
                    .poll(500, Duration::from_secs(30))
                    .await
                    .expect("poll survives the crash");
                assert!(!messages.is_empty(), "consumer stalled at {}", seen.len());
                for m in messages {
                    seen.insert(
                        std::str::from_utf8(&m.value)
                            .unwrap()
                            .parse::<u32>()
                            .unwrap(),
                    );
                    consumer.ack(&m).unwrap();
                }
            }
            seen
        })
    };

    guarded(
        "first third acked",
        acked_so_far.wait_for(|&n| n >= TOTAL / 3),
    )
    .await
    .unwrap();
    restart(&mut env);

    let acked = guarded("producer", producing).await.unwrap();
    assert_eq!(acked.len(), TOTAL as usize);
    let seen = guarded("consumer", consuming).await.unwrap();
    assert_eq!(seen.len(), TOTAL as usize);
    assert!(consumer.stats().reconnects >= 1, "{:?}", consumer.stats());
    consumer.close().await.unwrap();

    let log = env.read_log(&topic).await;
    let mut values = HashSet::new();
    for m in &log {
        let value: u32 = std::str::from_utf8(&m.value).unwrap().parse().unwrap();
        assert!(
            values.insert(value),
            "duplicate {value} at {}:{}",
            m.partition,
            m.offset
        );
    }
    assert!(
        acked.iter().all(|v| values.contains(v)),
        "an acked message is missing"
    );
    println!("producer stats after the restart: {:?}", producer.stats());
}
