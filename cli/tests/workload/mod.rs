//! The clients of the fault tests (`chaos.rs`: kill -9; `link_faults.rs`: a faulty link), and
//! how they record what they observe into a [`History`] for the checker
//! (`rapidmq_testkit::history`).
//!
//! Idempotent producers publish windows of keyed and delayed messages to an `fsync` topic; a
//! stream subscription commits what it consumed and reads its committed offsets back; queue
//! consumers ack what they get. Every observation becomes an [`Event`], attributed to a run by a
//! [`RunTag`]. [`read_log`] records a full read of the log.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use rand::rngs::StdRng;
use rapidmq::{
    Client, Durability, Message, Producer, QueueConsumer, ReceivedMessage, StartPosition,
    TopicConfig,
};
use rapidmq_testkit::history::{Checker, ConsumerKind, Counts, Event, History, LogEntry};
use tokio::task::JoinHandle;

pub const TOPIC: &str = "chaos";
pub const PARTITIONS: u32 = 3;
pub const STREAM_SUBSCRIPTION: &str = "audit";
pub const QUEUE_SUBSCRIPTION: &str = "work";
/// Messages per producer window; every 8th message is delayed (and has no key).
pub const WINDOW: u64 = 8;
/// A producer sends one window per tick, so the log stays small enough to read in full often.
pub const PRODUCER_TICK: Duration = Duration::from_millis(30);
/// Longer than the whole test: within one run no queue message may come back.
pub const ACK_DEADLINE: Duration = Duration::from_secs(600);
/// The bound on every wait for the broker or the clients; reaching it fails the test.
pub const GUARD: Duration = Duration::from_secs(120);

pub fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
    )
}

pub async fn connect(endpoint: String) -> Client {
    Client::builder()
        .endpoint(endpoint)
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect to the broker")
}

pub async fn create_topic(client: &Client) {
    client
        .admin()
        .create_topic(
            TOPIC,
            TopicConfig {
                partitions: PARTITIONS,
                durability: Durability::Fsync,
                ..TopicConfig::default()
            },
        )
        .await
        .expect("create the chaos topic");
}

pub async fn guarded<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(GUARD, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn entry(message: &ReceivedMessage) -> LogEntry {
    LogEntry {
        partition: message.partition,
        offset: message.offset,
        id: String::from_utf8_lossy(&message.value).into_owned(),
        append_time_ms: message.append_time_ms,
    }
}

/// One producer: a window of messages per tick, every receipt awaited before the next window.
/// Keyed messages go to `p<producer>-k<n>`; every [`WINDOW`]th message is delayed by 50 ms to
/// 1.5 s instead.
pub async fn produce(
    producer_no: u32,
    producer: Producer,
    history: Arc<History>,
    mut rng: StdRng,
    stop: Arc<AtomicBool>,
) {
    let mut seq = 0u64;
    let mut tick = tokio::time::interval(PRODUCER_TICK);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let mut receipts = Vec::new();
        for _ in 0..WINDOW {
            let id = format!("{producer_no}:{seq}");
            let (message, key, deliver_at_ms) = if seq % WINDOW == WINDOW - 1 {
                let due = now_ms() + rng.random_range(50..1500);
                let at = UNIX_EPOCH + Duration::from_millis(due as u64);
                (
                    Message::new(id.clone()).with_deliver_at(at),
                    None,
                    Some(due),
                )
            } else {
                let key = format!("p{producer_no}-k{}", seq % 5);
                (
                    Message::new(id.clone()).with_key(key.clone()),
                    Some(key),
                    None,
                )
            };
            seq += 1;
            history.record(Event::PublishSent {
                producer: producer_no,
                id: id.clone(),
                key,
                deliver_at_ms,
            });
            match producer.send(message).await {
                Ok(receipt) => receipts.push((id, receipt)),
                Err(err) => history.record(Event::PublishFailed {
                    id,
                    error: err.to_string(),
                }),
            }
        }
        for (id, receipt) in receipts {
            history.record(match receipt.await {
                Ok(delivery) => Event::PublishAcked {
                    id,
                    partition: delivery.partition,
                    offset: delivery.offset,
                },
                Err(err) => Event::PublishFailed {
                    id,
                    error: err.to_string(),
                },
            });
        }
    }
    producer.flush().await.ok();
}

/// What a consumer's deliveries are attributed to: the checker's `run`.
#[derive(Debug, Clone, Copy)]
pub enum RunTag {
    /// The broker run the consumer's client was made for (it does not outlive the run).
    Broker(u32),
    /// The consumer's own session, `base` + its reconnect count: a link fault ends sessions,
    /// not broker runs. A poll during which the consumer reconnected cannot tell which session
    /// its deliveries came from; they get a tag of their own, never reused, and no ack of
    /// theirs is recorded.
    Session { base: u32 },
}

/// Tags for polls that straddled a reconnect, counting down from the top.
static STRADDLING: AtomicU32 = AtomicU32::new(u32::MAX);

impl RunTag {
    /// The run of a poll that began at reconnect count `before` and returned at `after`, and
    /// whether it is known for sure.
    fn of_poll(self, before: u64, after: u64) -> (u32, bool) {
        match self {
            RunTag::Broker(run) => (run, before == after),
            RunTag::Session { base } if before == after => (base + before as u32, true),
            RunTag::Session { .. } => (STRADDLING.fetch_sub(1, Ordering::Relaxed), false),
        }
    }
}

/// A stream consumer and queue consumers on their own client, recording what they observe.
pub struct Consumers {
    pub client: Client,
    /// The stream consumer, unless these are queue consumers only.
    pub stream: Option<rapidmq::Consumer>,
    pub queues: Vec<QueueConsumer>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Consumers {
    /// Subscribes through `endpoint`; queue consumer `n` is tagged `queue_tags[n]`.
    pub async fn start(
        endpoint: String,
        history: &Arc<History>,
        stream_tag: RunTag,
        queue_tags: &[RunTag],
    ) -> Consumers {
        Consumers::on(
            connect(endpoint).await,
            history,
            Some(stream_tag),
            queue_tags,
        )
        .await
    }

    /// Subscribes on `client`: the stream consumer if `stream_tag` is given, and a queue
    /// consumer per `queue_tags` entry.
    pub async fn on(
        client: Client,
        history: &Arc<History>,
        stream_tag: Option<RunTag>,
        queue_tags: &[RunTag],
    ) -> Consumers {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let mut stream = None;
        if let Some(tag) = stream_tag {
            let consumer = client
                .consumer(TOPIC)
                .subscription(STREAM_SUBSCRIPTION)
                .start(StartPosition::Earliest)
                .prefetch(500)
                .commit_interval(Duration::from_millis(50))
                .subscribe()
                .await
                .expect("subscribe the stream consumer");
            tasks.push(tokio::spawn(consume_stream(
                consumer.clone(),
                client.clone(),
                Arc::clone(history),
                tag,
                Arc::clone(&stop),
            )));
            stream = Some(consumer);
        }
        let mut queues = Vec::new();
        for (n, &tag) in queue_tags.iter().enumerate() {
            let queue = client
                .queue_consumer(TOPIC)
                .subscription(QUEUE_SUBSCRIPTION)
                .start(StartPosition::Earliest)
                .ack_deadline(ACK_DEADLINE)
                .max_deliveries(10_000)
                .prefetch(100)
                .ack_interval(Duration::from_millis(20))
                .subscribe()
                .await
                .expect("subscribe a queue consumer");
            tasks.push(tokio::spawn(consume_queue(
                n as u32,
                queue.clone(),
                Arc::clone(history),
                tag,
                Arc::clone(&stop),
            )));
            queues.push(queue);
        }
        Consumers {
            client,
            stream,
            queues,
            stop,
            tasks,
        }
    }

    /// Stops the consumer tasks and closes the client, so nothing of this run reaches the next.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = guarded("a consumer task to stop", task).await;
        }
        guarded("the consumer client to close", self.client.close())
            .await
            .expect("close the consumer client");
    }

    /// At the end of a run that is not cut: commit and ack what was consumed, then stop.
    pub async fn commit_and_stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = guarded("a consumer task to stop", task).await;
        }
        if let Some(stream) = &self.stream {
            let _ = stream.commit().await;
        }
        for queue in &self.queues {
            let _ = queue.flush().await;
        }
        guarded("the consumer client to close", self.client.close())
            .await
            .expect("close the consumer client");
    }
}

async fn consume_stream(
    consumer: rapidmq::Consumer,
    client: Client,
    history: Arc<History>,
    tag: RunTag,
    stop: Arc<AtomicBool>,
) {
    let admin = client.admin();
    while !stop.load(Ordering::Relaxed) {
        let before = consumer.stats().reconnects;
        let Ok(messages) = consumer.poll(500, Duration::from_millis(100)).await else {
            return;
        };
        if messages.is_empty() {
            continue;
        }
        let (run, _) = tag.of_poll(before, consumer.stats().reconnects);
        let wall_ms = now_ms();
        history.record_all(messages.iter().map(|m| Event::Delivered {
            consumer: ConsumerKind::Stream,
            run,
            entry: entry(m),
            wall_ms,
        }));
        for m in &messages {
            if consumer.ack(m).is_err() {
                return;
            }
        }
        // A commit fails while the broker is unreachable; the next one carries the positions.
        if consumer.commit().await.is_err() {
            continue;
        }
        // Read the committed offsets back while the broker may be dying: each answer is a
        // point the checker holds later answers to.
        let read = tokio::time::timeout(
            Duration::from_secs(1),
            admin.describe_subscription(TOPIC, STREAM_SUBSCRIPTION),
        )
        .await;
        if let Ok(Ok(info)) = read {
            history.record_all(info.cursors.iter().map(|c| Event::CommitObserved {
                partition: c.partition,
                offset: c.committed_offset,
            }));
        }
    }
}

async fn consume_queue(
    consumer_no: u32,
    consumer: QueueConsumer,
    history: Arc<History>,
    tag: RunTag,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let before = consumer.stats().reconnects;
        let Ok(deliveries) = consumer.poll(100, Duration::from_millis(100)).await else {
            return;
        };
        if deliveries.is_empty() {
            continue;
        }
        let (run, certain) = tag.of_poll(before, consumer.stats().reconnects);
        let wall_ms = now_ms();
        history.record_all(deliveries.iter().map(|d| Event::Delivered {
            consumer: ConsumerKind::Queue(consumer_no),
            run,
            entry: entry(&d.message),
            wall_ms,
        }));
        for d in &deliveries {
            if consumer.ack(&d.receipt).is_err() {
                return;
            }
        }
        // An ack counts as sent once `flush` handed it to the stream of the session the
        // deliveries came from; after a reconnect the client drops it as stale.
        let flushed = consumer.flush().await.is_ok();
        if certain && flushed && consumer.stats().reconnects == before {
            history.record_all(deliveries.iter().map(|d| Event::QueueAckSent {
                run,
                id: entry(&d.message).id,
                partition: d.message.partition,
                offset: d.message.offset,
            }));
        }
    }
}

/// Reads the whole log (every partition from its start to its high watermark, or past it if it
/// grew meanwhile) and records it as node `node`'s.
pub async fn read_log(client: &Client, history: &History, node: u32) {
    let began = history.now();
    let topic = guarded("describe_topic", client.admin().describe_topic(TOPIC))
        .await
        .expect("describe the chaos topic");
    let mut entries = Vec::new();
    let mut ends = BTreeMap::new();
    for partition in &topic.partitions {
        let mut offset = partition.log_start_offset;
        while offset < partition.high_watermark {
            let fetched = guarded(
                "fetch",
                client.fetch(TOPIC, partition.partition, offset, 2000),
            )
            .await
            .expect("fetch the log");
            let Some(last) = fetched.messages.last() else {
                panic!(
                    "fetch of partition {} at {offset} returned nothing below the high \
                     watermark {}",
                    partition.partition, partition.high_watermark
                );
            };
            offset = last.offset + 1;
            entries.extend(fetched.messages.iter().map(entry));
        }
        // A single broker serves only what it committed: all it returned is below its end.
        ends.insert(partition.partition, offset);
    }
    history.record(Event::LogRead {
        node,
        began,
        ends,
        entries,
    });
}

/// The drain after the faults, once producers have stopped: reads the log until every
/// acknowledged message is in it (delayed messages are due at most 1.5 s after the last send),
/// then waits until both subscriptions have received everything in that read. Each wait is
/// bounded by [`GUARD`]; the final check reports what is still missing. Returns what never
/// reached a subscription.
pub async fn drain(client: &Client, history: &History, checker: &mut Checker) -> Vec<String> {
    let deadline = Instant::now() + GUARD;
    loop {
        read_log(client, history, 0).await;
        checker.feed(&history.drain());
        if checker.acked_missing_from_last_read().is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + GUARD;
    loop {
        checker.feed(&history.drain());
        if checker.undelivered().is_empty() || Instant::now() >= deadline {
            return checker.undelivered();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn observe_commits(client: &Client, history: &History) {
    let info = guarded(
        "describe_subscription",
        client
            .admin()
            .describe_subscription(TOPIC, STREAM_SUBSCRIPTION),
    )
    .await
    .expect("describe the stream subscription");
    history.record_all(info.cursors.iter().map(|c| Event::CommitObserved {
        partition: c.partition,
        offset: c.committed_offset,
    }));
}

/// What a fault run did, for the test output and the docs.
pub struct Summary {
    /// The test, e.g. `chaos`.
    pub name: &'static str,
    pub seed: u64,
    /// The faults injected, e.g. `40 kill -9 cycles`.
    pub faults: String,
    pub elapsed: Duration,
    pub counts: Counts,
    pub violations: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.counts;
        write!(
            f,
            "{} summary: seed {}, {} in {:.1} s; {} messages sent, {} acked ({} of them \
             scheduled), {} failed, {} stored; {} stream deliveries, {} queue deliveries ({} \
             redeliveries); {} violation(s)",
            self.name,
            self.seed,
            self.faults,
            self.elapsed.as_secs_f64(),
            c.sent,
            c.acked,
            c.scheduled,
            c.failed,
            c.stored,
            c.stream_deliveries,
            c.queue_deliveries,
            c.queue_redeliveries,
            self.violations
        )
    }
}
