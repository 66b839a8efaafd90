//! Storage failure fails closed, and background tasks never die silently.
//!
//! The disk-full tests put the broker's data directory on a small tmpfs (we run as root in CI),
//! fill it, free space again and check what the broker answered and stored. Where the test
//! cannot mount one, it falls back to the broker's test-only fault file
//! (`RAPIDMQ_TEST_FAULT_FILE`, line `fail-writes`), which makes every disk write fail with an
//! I/O error while the line is there. Panics are injected through the same file (`panic writer`).

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1 as pb;

/// Size of the tmpfs the broker's data directory lives on.
const DISK_MB: u64 = 48;
/// A file that takes part of the tmpfs and is deleted to free space.
const BALLAST_MB: u64 = 32;
/// Messages per publish and the size of each value: 256 KiB per publish.
const BATCH: usize = 16;
const VALUE_BYTES: usize = 16 << 10;

/// How the test makes the broker's disk writes fail, and how it lets them work again.
enum Fault {
    /// A tmpfs mounted on the data directory, with a ballast file to delete.
    SmallDisk {
        mountpoint: PathBuf,
        ballast: PathBuf,
    },
    /// The broker's fault file.
    FaultFile(PathBuf),
}

impl Fault {
    /// Starts a broker whose disk writes can be made to fail. The returned fault must be
    /// dropped before the broker (it unmounts the tmpfs).
    fn start() -> (TestBroker, Fault) {
        let fault_file = tempfile::NamedTempFile::new()
            .expect("a fault file")
            .into_temp_path()
            .keep()
            .expect("keep the fault file");
        let options = BrokerOptions {
            env: vec![(
                "RAPIDMQ_TEST_FAULT_FILE".into(),
                fault_file.display().to_string(),
            )],
            ..Default::default()
        };
        let mut broker = TestBroker::start_with(options);
        broker.stop();
        let dir = broker.data_dir().to_path_buf();
        let fault = match mount_tmpfs(&dir) {
            Some(()) => {
                let ballast = dir.join("ballast");
                std::fs::write(&ballast, vec![0xa5u8; (BALLAST_MB << 20) as usize])
                    .expect("write the ballast file");
                Fault::SmallDisk {
                    mountpoint: dir,
                    ballast,
                }
            }
            None => {
                eprintln!("cannot mount a tmpfs here: using the broker's fault file instead");
                Fault::FaultFile(fault_file)
            }
        };
        broker.start_again();
        (broker, fault)
    }

    /// Makes writes fail: the fault file's line (a small disk just fills up as the test writes).
    fn inject(&self) {
        if let Fault::FaultFile(path) = self {
            std::fs::write(path, "fail-writes\n").expect("write the fault file");
        }
    }

    /// Lets writes work again: deletes the ballast, or the fault file's line.
    fn clear(&self) {
        match self {
            Fault::SmallDisk { ballast, .. } => {
                std::fs::remove_file(ballast).expect("delete the ballast file")
            }
            Fault::FaultFile(path) => std::fs::write(path, "").expect("clear the fault file"),
        }
    }
}

impl Drop for Fault {
    fn drop(&mut self) {
        match self {
            Fault::SmallDisk { mountpoint, .. } => {
                // Lazy: the broker may still hold files open; it is killed right after.
                let _ = Command::new("umount").arg("-l").arg(&*mountpoint).status();
            }
            Fault::FaultFile(path) => {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Mounts a `DISK_MB` tmpfs on `dir`, if this process may (root, and `mount` works).
fn mount_tmpfs(dir: &Path) -> Option<()> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return None;
    }
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={DISK_MB}m"), "tmpfs"])
        .arg(dir)
        .status()
        .ok()?;
    status.success().then_some(())
}

/// `(status, body)` of `GET /readyz`.
async fn readyz(broker: &TestBroker) -> (u16, String) {
    let response = reqwest::get(format!("{}/readyz", broker.http_url()))
        .await
        .expect("GET /readyz");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// A batch of unique, recognisable values.
fn batch(id: u64) -> Vec<Msg> {
    (0..BATCH)
        .map(|i| {
            let mut value = format!("batch-{id}-msg-{i}-").into_bytes();
            value.resize(VALUE_BYTES, b'.');
            Msg {
                key: bytes::Bytes::new(),
                value: value.into(),
            }
        })
        .collect()
}

/// What the broker answered: acked values at their offsets, and values it refused.
#[derive(Default)]
struct Outcomes {
    acked: HashMap<bytes::Bytes, u64>,
    refused: HashSet<bytes::Bytes>,
    next_id: u64,
}

impl Outcomes {
    /// Publishes one new batch and records the answer.
    async fn publish(&mut self, c: &mut Clients) -> Result<(), tonic::Status> {
        let messages = batch(self.next_id);
        self.next_id += 1;
        match publish(c, "filled", 0, &messages).await {
            Ok(ack) => {
                for (i, m) in messages.into_iter().enumerate() {
                    self.acked.insert(m.value, ack.base_offset + i as u64);
                }
                Ok(())
            }
            Err(status) => {
                self.refused.extend(messages.into_iter().map(|m| m.value));
                Err(status)
            }
        }
    }
}

/// Every message of partition 0 of `topic`, in offset order.
async fn read_all(c: &mut Clients, topic: &str) -> Vec<Received> {
    let mut read: Vec<Received> = Vec::new();
    loop {
        let response = c
            .messaging
            .fetch(pb::FetchRequest {
                topic: topic.into(),
                partition: 0,
                offset: read.len() as u64,
                max_messages: 10_000,
                max_wait_ms: 0,
            })
            .await
            .expect("fetch")
            .into_inner();
        let got: Vec<Received> = response.batches.iter().flat_map(decode).collect();
        if got.is_empty() {
            assert_eq!(
                read.len() as u64,
                response.high_watermark,
                "everything below the high watermark is readable"
            );
            return read;
        }
        read.extend(got);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_fails_closed_and_the_broker_recovers_without_a_restart() {
    let (broker, fault) = Fault::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "filled", topic_config(1)).await;
    assert_eq!(readyz(&broker).await.0, 200, "ready before the disk fills");
    let mut outcomes = Outcomes::default();
    for _ in 0..3 {
        outcomes.publish(&mut c).await.expect("the disk has room");
    }

    // Fill the disk: publish until the broker refuses, which must be STORAGE_ERROR.
    fault.inject();
    let refusal = loop {
        assert!(
            outcomes.next_id < 4 * DISK_MB * 4,
            "the broker acked more than the disk holds"
        );
        if let Err(status) = outcomes.publish(&mut c).await {
            break status;
        }
    };
    assert_eq!(
        error_code(&refusal),
        ErrorCode::StorageError,
        "a write the disk refuses is a STORAGE_ERROR: {refusal:?}"
    );
    assert_eq!(refusal.code(), tonic::Code::Unavailable, "and retriable");

    // The broker says it is not ready, and keeps refusing writes with the same code.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = readyz(&broker).await;
        if status == 503 {
            assert!(body.contains("storage"), "the reason is given: {body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still answers {status} while every write fails"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..3 {
        let err = outcomes
            .publish(&mut c)
            .await
            .expect_err("writes fail while the disk is full");
        assert_eq!(error_code(&err), ErrorCode::StorageError);
    }

    // Free space: publishing works again without a restart, and the broker is ready again.
    fault.clear();
    let deadline = Instant::now() + PATIENCE;
    while let Err(err) = outcomes.publish(&mut c).await {
        assert_eq!(error_code(&err), ErrorCode::StorageError, "{err:?}");
        assert!(
            Instant::now() < deadline,
            "publishing still fails {PATIENCE:?} after space was freed: {err:?}\n{}",
            broker.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..5 {
        outcomes
            .publish(&mut c)
            .await
            .expect("publishing works after recovery");
    }
    let (status, body) = readyz(&broker).await;
    assert_eq!(status, 200, "ready again once writes work: {body}");

    // Every acked message is readable at its offset; nothing refused is.
    let read = read_all(&mut c, "filled").await;
    let stored: HashMap<&bytes::Bytes, u64> =
        read.iter().map(|r| (&r.msg.value, r.offset)).collect();
    assert_eq!(stored.len(), read.len(), "no message is stored twice");
    for (value, offset) in &outcomes.acked {
        assert_eq!(
            stored.get(value),
            Some(offset),
            "acked message {} is readable at its offset",
            String::from_utf8_lossy(&value[..24])
        );
    }
    let leaked: Vec<String> = outcomes
        .refused
        .iter()
        .filter(|v| stored.contains_key(v))
        .map(|v| String::from_utf8_lossy(&v[..24]).into_owned())
        .collect();
    assert!(
        leaked.is_empty(),
        "{} refused messages are readable, e.g. {:?}",
        leaked.len(),
        leaked.first()
    );
    assert_eq!(
        read.len(),
        outcomes.acked.len(),
        "only acked messages are stored"
    );
    drop(fault);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapidmq_publish_gives_up_on_a_failing_disk_with_the_storage_error() {
    let (broker, fault) = Fault::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "filled", topic_config(1)).await;
    fault.inject();
    let mut outcomes = Outcomes::default();
    while outcomes.publish(&mut c).await.is_ok() {
        assert!(outcomes.next_id < 4 * DISK_MB * 4, "the disk never filled");
    }

    // 8 MiB of lines: several batches in flight on the partition, all refused.
    let line = format!("{}\n", "x".repeat(VALUE_BYTES));
    let input = line.repeat(512);
    let started = Instant::now();
    let mut child = rapidmq_testkit::cli_command()
        .args(["publish", "filled"])
        .env("RAPIDMQ_SERVER", broker.grpc_url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rapidmq publish");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || {
        // The command may exit before it has read everything.
        let _ = stdin.write_all(input.as_bytes());
    });
    // The retry budget (30 retries, backoff up to 1 s) ends in about 10-15 s.
    let limit = Duration::from_secs(25);
    while child.try_wait().expect("poll rapidmq publish").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rapidmq publish still runs {limit:?} after it started against a full disk");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    let output = child.wait_with_output().expect("rapidmq publish output");
    let _ = writer.join();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "publishing to a full disk fails; stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        stderr.contains("STORAGE_ERROR") && stderr.contains("5002"),
        "the error says what failed: {stderr}"
    );
    eprintln!("rapidmq publish gave up after {elapsed:?}");
    drop(fault);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_writer_that_panics_is_restarted_and_the_partition_keeps_working() {
    let fault_file = tempfile::NamedTempFile::new().expect("a fault file");
    let broker = TestBroker::start_with(BrokerOptions {
        env: vec![(
            "RAPIDMQ_TEST_FAULT_FILE".into(),
            fault_file.path().display().to_string(),
        )],
        ..Default::default()
    });
    let mut c = connect(&broker).await;
    create_topic(&mut c, "sturdy", topic_config(1)).await;
    std::fs::write(fault_file.path(), "panic writer\n").expect("arm the fault");

    let first = publish(&mut c, "sturdy", 0, &[msg("k", "lost in the panic")]).await;
    let err = first.expect_err("the group commit that panicked is not acked");
    assert_eq!(
        error_code(&err),
        ErrorCode::Unavailable,
        "retriable: {err:?}"
    );
    assert_eq!(
        std::fs::read_to_string(fault_file.path()).unwrap(),
        "",
        "the fault fired once"
    );

    // The same partition keeps taking writes, at the offsets the failed group gave back.
    let mut expected = Vec::new();
    for i in 0..20 {
        let value = format!("after-{i}");
        let ack = publish(&mut c, "sturdy", 0, &[msg("k", &value)])
            .await
            .expect("the partition keeps working after its writer panicked");
        assert_eq!(ack.base_offset, i);
        expected.push(value);
    }
    let read: Vec<String> = read_all(&mut c, "sturdy")
        .await
        .into_iter()
        .map(|r| String::from_utf8_lossy(&r.msg.value).into_owned())
        .collect();
    assert_eq!(read, expected);

    let log = broker.log();
    assert!(
        log.contains("task_panicked") && log.contains("partition writer"),
        "the panic is a health event in the log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_task_that_panics_runs_again_on_its_next_tick() {
    let fault_file = tempfile::NamedTempFile::new().expect("a fault file");
    std::fs::write(fault_file.path(), "panic fsync\npanic fsync\n").expect("arm the fault");
    let broker = TestBroker::start_with(BrokerOptions {
        env: vec![(
            "RAPIDMQ_TEST_FAULT_FILE".into(),
            fault_file.path().display().to_string(),
        )],
        ..Default::default()
    });
    // Both faults fire, on two ticks of the same task: it was not dead after the first, and
    // each panic is a health event.
    eventually("the fsync task panicked twice", || {
        let log = broker.log();
        async move { log.matches("task_panicked").count() == 2 }
    })
    .await;
    assert_eq!(std::fs::read_to_string(fault_file.path()).unwrap(), "");
    let (status, _) = readyz(&broker).await;
    assert_eq!(status, 200);
}

/// Fsyncs the disk store has issued (`GET /v1/status`).
async fn fsyncs(broker: &TestBroker) -> u64 {
    let status: serde_json::Value = reqwest::get(format!("{}/v1/status", broker.http_url()))
        .await
        .expect("GET /v1/status")
        .json()
        .await
        .expect("status JSON");
    status["fsyncs"].as_u64().expect("fsyncs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_acks_taken_while_the_disk_is_full_are_persisted_once_it_recovers() {
    let (mut broker, fault) = Fault::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "filled", topic_config(1)).await;
    create_topic(&mut c, "jobs", topic_config(1)).await;
    let jobs: Vec<Msg> = (0..20).map(|i| msg("", format!("job-{i}"))).collect();
    publish(&mut c, "jobs", 0, &jobs).await.unwrap();
    let mut q = QueueConsumer::open(&mut c, "jobs", "work", queue_settings(60_000, 5), 20)
        .await
        .unwrap();
    let got = q.receive(20).await;

    // The disk fills up; the acks then taken cannot be flushed.
    fault.inject();
    let mut outcomes = Outcomes::default();
    while outcomes.publish(&mut c).await.is_ok() {
        assert!(outcomes.next_id < 4 * DISK_MB * 4, "the disk never filled");
    }
    eventually("the broker reports not ready", || async {
        readyz(&broker).await.0 == 503
    })
    .await;
    let before = fsyncs(&broker).await;
    let (acked, held) = got.split_at(10);
    q.ack(acked.iter().map(receipt).collect()).await;
    eventually("the acks are taken", || {
        let mut admin = c.admin.clone();
        async move {
            let info = admin
                .describe_subscription(pb::DescribeSubscriptionRequest {
                    topic: "jobs".into(),
                    name: "work".into(),
                })
                .await
                .unwrap()
                .into_inner();
            info.total_lag == 10
        }
    })
    .await;

    // Space comes back: the ack state, kept dirty, is written by the next flush.
    fault.clear();
    eventually("the broker is ready again", || async {
        readyz(&broker).await.0 == 200
    })
    .await;
    eventually("a flush after the recovery", || async {
        fsyncs(&broker).await > before
    })
    .await;

    // kill -9 with the consumer still connected (its end would change the state again and
    // flush it): only what was flushed survives. The acked jobs do not come back.
    broker.kill();
    drop(q);
    broker.start_again();
    let mut c = connect(&broker).await;
    let mut q = QueueConsumer::open(&mut c, "jobs", "work", queue_settings(60_000, 5), 20)
        .await
        .unwrap();
    let again: Vec<String> = q.receive(10).await.iter().map(value_of).collect();
    let held: Vec<String> = held.iter().map(value_of).collect();
    assert!(
        again.iter().all(|v| held.contains(v)),
        "only unacked jobs come back after the restart: {again:?}"
    );
    drop(fault);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_flush_on_a_failing_disk_ends_after_its_retry_budget() {
    let (broker, fault) = Fault::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "filled", topic_config(1)).await;
    fault.inject();
    let mut outcomes = Outcomes::default();
    while outcomes.publish(&mut c).await.is_ok() {
        assert!(outcomes.next_id < 4 * DISK_MB * 4, "the disk never filled");
    }

    // Eight 1 MiB batches for one partition: five in flight, three queued behind them.
    let client = rapidmq::Client::connect(broker.grpc_url())
        .await
        .expect("connect");
    let producer = client.producer("filled").build().await.expect("producer");
    let mut receipts = Vec::new();
    for i in 0..512 {
        let mut value = format!("sdk-{i}-").into_bytes();
        value.resize(VALUE_BYTES, b'.');
        receipts.push(
            producer
                .send(rapidmq::Message::new(value))
                .await
                .expect("send"),
        );
    }
    let started = Instant::now();
    // The batches retried together share one budget (30 retries, backoff up to 1 s: about
    // 10-15 s plus the attempts themselves, 25 s for both budgets on an idle debug build); the
    // ones queued behind them take at most one more. What this guards is that the flush ends at
    // all: the bound is generous, since each attempt's round trip slows on a loaded machine
    // (40 s was exceeded in CI with builds beside it).
    tokio::time::timeout(Duration::from_secs(120), producer.flush())
        .await
        .expect("flush ends after its retry budgets")
        .expect("flush");
    eprintln!(
        "flush on a failing disk ended after {:?}",
        started.elapsed()
    );
    for receipt in receipts {
        let err = receipt.await.expect_err("nothing is stored on a full disk");
        assert_eq!(err.code(), ErrorCode::StorageError, "{err}");
    }
    drop(fault);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_delete_the_disk_refuses_leaves_the_topic_whole() {
    let (broker, fault) = Fault::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "filled", topic_config(1)).await;
    create_topic(&mut c, "kept", topic_config(1)).await;
    let before: Vec<Msg> = (0..5).map(|i| msg("", format!("before-{i}"))).collect();
    publish(&mut c, "kept", 0, &before).await.unwrap();
    let mut reader = Consumer::open(&mut c, "kept", "reader", start(pb::StartKind::Earliest), 5)
        .await
        .unwrap();
    let got = reader.receive(5).await;
    reader.commit(&next_offsets(&got)).await;
    eventually("the commit is stored", || {
        let mut admin = c.admin.clone();
        async move {
            let info = admin
                .describe_subscription(pb::DescribeSubscriptionRequest {
                    topic: "kept".into(),
                    name: "reader".into(),
                })
                .await
                .unwrap()
                .into_inner();
            info.total_lag == 0
        }
    })
    .await;

    // The disk fills up, so the delete cannot be written: it fails, and the topic stays.
    fault.inject();
    let mut outcomes = Outcomes::default();
    while outcomes.publish(&mut c).await.is_ok() {
        assert!(outcomes.next_id < 4 * DISK_MB * 4, "the disk never filled");
    }
    let refused = c
        .admin
        .delete_topic(pb::DeleteTopicRequest {
            name: "kept".into(),
        })
        .await
        .expect_err("a delete the disk refuses fails");
    assert_eq!(error_code(&refused), ErrorCode::StorageError, "{refused:?}");
    let described = c
        .admin
        .describe_topic(pb::DescribeTopicRequest {
            name: "kept".into(),
        })
        .await
        .expect("the topic whose delete failed is still there");
    assert_eq!(described.into_inner().partitions.len(), 1);

    // Once the disk has room, the topic takes writes and its subscription resumes where it
    // committed, as if the delete had never been asked for.
    fault.clear();
    eventually("the broker is ready again", || async {
        readyz(&broker).await.0 == 200
    })
    .await;
    let after = [msg("", "after")];
    let ack = publish(&mut c, "kept", 0, &after)
        .await
        .expect("the topic takes writes after the failed delete");
    assert_eq!(ack.base_offset, 5, "at the offset after what it held");
    drop(reader);
    let mut reader = Consumer::open(&mut c, "kept", "reader", start(pb::StartKind::Earliest), 5)
        .await
        .expect("the subscription is still there");
    let resumed = reader.receive(1).await;
    assert_eq!(resumed[0].offset, 5, "it resumes after its commit");
    assert_eq!(&resumed[0].msg.value[..], b"after");

    // And the delete, asked again, goes through.
    c.admin
        .delete_topic(pb::DeleteTopicRequest {
            name: "kept".into(),
        })
        .await
        .expect("the delete works once the disk has room");
    drop(fault);
}
