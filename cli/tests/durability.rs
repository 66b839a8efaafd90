//! What survives a restart and a crash: committed offsets, and every message acked under
//! `fsync` durability even after `kill -9`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use rapidmq_proto::v1 as pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_restart_and_the_consumer_resumes_there() {
    let mut broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "ledger", topic_config(2)).await;
    for p in 0..2 {
        let batch: Vec<Msg> = (0..100).map(|i| msg("k", format!("p{p}-{i}"))).collect();
        publish(&mut c, "ledger", p, &batch).await.unwrap();
    }
    let mut consumer = Consumer::open(
        &mut c,
        "ledger",
        "books",
        start(pb::StartKind::Earliest),
        60,
    )
    .await
    .unwrap();
    let got = consumer.receive(60).await;
    let commit = next_offsets(&got);
    c.messaging
        .commit_offset(pb::CommitOffsetRequest {
            topic: "ledger".into(),
            subscription: "books".into(),
            offsets: commit
                .iter()
                .map(|&(partition, offset)| pb::PartitionOffset { partition, offset })
                .collect(),
        })
        .await
        .unwrap();
    drop(consumer);

    broker.restart();
    let mut c = connect(&broker).await;
    let info = c
        .admin
        .describe_subscription(pb::DescribeSubscriptionRequest {
            topic: "ledger".into(),
            name: "books".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let committed: Vec<(u32, u64)> = info
        .cursors
        .iter()
        .map(|x| (x.partition, x.committed_offset))
        .filter(|x| x.1 > 0)
        .collect();
    assert_eq!(committed, commit, "commits survive the restart");
    assert_eq!(info.total_lag, 200 - 60);

    let mut consumer = Consumer::open(
        &mut c,
        "ledger",
        "books",
        start(pb::StartKind::Earliest),
        1000,
    )
    .await
    .unwrap();
    let resumed: Vec<(u32, u64)> = consumer.assignment.clone();
    for (p, offset) in &resumed {
        let expected = commit.iter().find(|(cp, _)| cp == p).map_or(0, |x| x.1);
        assert_eq!(*offset, expected, "partition {p} resumes from its commit");
    }
    let rest = consumer.receive(140).await;
    let mut all: Vec<String> = got
        .iter()
        .chain(&rest)
        .map(|r| String::from_utf8(r.msg.value.to_vec()).unwrap())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        200,
        "before and after the restart together cover every message once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_that_was_acked_with_fsync() {
    let mut broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "payments", topic_config(2)).await;

    // Publishers run flat out on both partitions; the broker is killed under them.
    let acked: Arc<acks::Acks> = Arc::default();
    let running = Arc::new(AtomicBool::new(true));
    let mut tasks = Vec::new();
    for p in 0..2u32 {
        let mut c = Clients {
            admin: c.admin.clone(),
            messaging: c.messaging.clone(),
        };
        let (acked, running) = (acked.clone(), running.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while running.load(Ordering::Acquire) {
                let batch: Vec<Msg> = (0..10)
                    .map(|j| msg(format!("p{p}"), format!("p{p}-{}", i + j)))
                    .collect();
                match publish(&mut c, "payments", p, &batch).await {
                    Ok(ack) => acked.record(p, ack.base_offset, &batch),
                    Err(_) => return,
                }
                i += 10;
            }
        }));
    }
    acked.wait_for_at_least(2000).await;
    broker.kill();
    running.store(false, Ordering::Release);
    for task in tasks {
        task.await.unwrap();
    }

    broker.start_again();
    let mut c = connect(&broker).await;
    let acked = acked.snapshot();
    assert!(
        acked.len() >= 2000,
        "the test published while the broker died"
    );
    for p in 0..2u32 {
        let mine: Vec<_> = acked.iter().filter(|(ap, _, _)| *ap == p).collect();
        let Some(max) = mine.iter().map(|(_, o, _)| *o).max() else {
            continue;
        };
        let mut read = Vec::new();
        while read.len() as u64 <= max {
            let response = c
                .messaging
                .fetch(pb::FetchRequest {
                    topic: "payments".into(),
                    partition: p,
                    offset: read.len() as u64,
                    max_messages: 10_000,
                    max_wait_ms: 0,
                })
                .await
                .unwrap()
                .into_inner();
            let got: Vec<Received> = response.batches.iter().flat_map(decode).collect();
            assert!(
                !got.is_empty(),
                "partition {p}: acked offset {max} is missing after the crash (hw {})",
                response.high_watermark
            );
            read.extend(got);
        }
        for (_, offset, value) in mine {
            assert_eq!(
                &read[*offset as usize].msg.value, value,
                "partition {p} offset {offset} holds what was acked"
            );
        }
    }
}

/// Acked messages, shared between publisher tasks and the test.
mod acks {
    use std::sync::Mutex;

    use bytes::Bytes;
    use tokio::sync::Notify;

    use super::Msg;

    #[derive(Default)]
    pub struct Acks {
        inner: Mutex<Vec<(u32, u64, Bytes)>>,
        changed: Notify,
    }

    impl Acks {
        pub fn record(&self, partition: u32, base: u64, batch: &[Msg]) {
            let mut inner = self.inner.lock().unwrap();
            for (i, m) in batch.iter().enumerate() {
                inner.push((partition, base + i as u64, m.value.clone()));
            }
            self.changed.notify_waiters();
        }

        pub async fn wait_for_at_least(&self, n: usize) {
            loop {
                let notified = self.changed.notified();
                if self.inner.lock().unwrap().len() >= n {
                    return;
                }
                notified.await;
            }
        }

        pub fn snapshot(&self) -> Vec<(u32, u64, Bytes)> {
            self.inner.lock().unwrap().clone()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_keeps_buffered_writes() {
    let mut broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(
        &mut c,
        "logs",
        pb::TopicConfig {
            durability: pb::Durability::Buffered as i32,
            ..topic_config(1)
        },
    )
    .await;
    let batch: Vec<Msg> = (0..500).map(|i| msg("k", format!("line-{i}"))).collect();
    publish(&mut c, "logs", 0, &batch).await.unwrap();
    broker.restart();
    let mut c = connect(&broker).await;
    let info = c
        .admin
        .describe_topic(pb::DescribeTopicRequest {
            name: "logs".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.partitions[0].high_watermark, 500);
    assert!(
        broker.log().contains("engine stopped"),
        "the broker drained on SIGTERM"
    );
}
