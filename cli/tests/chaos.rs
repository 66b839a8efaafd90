//! The chaos test: `kill -9` the broker at random points while idempotent producers publish to an
//! `fsync` topic (keyed and delayed messages), two competing queue consumers ack what they get,
//! and a stream subscription commits offsets. After every restart, one checker
//! (`rapidmq_testkit::history`) replays everything the clients observed and reports each broken
//! invariant of `docs/durability.md`; at the end, after a final drain, it also checks that every
//! stored message reached both subscriptions.
//!
//! The schedule (when each kill lands, which messages are delayed and by how much) comes from a
//! seeded RNG. The seed is printed; `RAPIDMQ_CHAOS_SEED` replays it and `RAPIDMQ_CHAOS_CYCLES`
//! sets the number of kills (`make chaos` runs 100). Timing still differs between runs, so a
//! seed replays the schedule, not the exact interleaving.
//!
//! Each broker run gets its own consumer client, closed before the next run starts: a delivery
//! is attributed to the broker run that made it, which the queue-ack rule needs. The producers
//! live across runs (their client follows the broker to its new port), so their retries after a
//! crash exercise idempotence.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rapidmq::{
    Client, Durability, Message, Producer, QueueConsumer, ReceivedMessage, StartPosition,
    TopicConfig,
};
use rapidmq_testkit::history::{
    Checker, Completeness, ConsumerKind, Counts, Event, History, LogEntry, Rules, Violation,
    summarize,
};
use rapidmq_testkit::{BrokerOptions, TestBroker};
use tokio::task::JoinHandle;

/// Kills in `make test`: about a minute in a debug build on two cores (20 cycles took 30 s).
const DEFAULT_CYCLES: u32 = 40;
const TOPIC: &str = "chaos";
const PARTITIONS: u32 = 3;
const STREAM_SUBSCRIPTION: &str = "audit";
const QUEUE_SUBSCRIPTION: &str = "work";
const PRODUCERS: u32 = 2;
const QUEUE_CONSUMERS: u32 = 2;
/// Messages per producer window; every 8th message is delayed (and has no key).
const WINDOW: u64 = 8;
/// A producer sends one window per tick, so the log stays small enough to read in full after
/// every restart.
const PRODUCER_TICK: Duration = Duration::from_millis(30);
/// `queue.ack_flush_interval_ms` of the broker under test.
const ACK_FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Longer than the whole test: within one broker run no queue message may come back.
const ACK_DEADLINE: Duration = Duration::from_secs(600);
/// The bound on every wait for the broker or the clients; reaching it fails the test.
const GUARD: Duration = Duration::from_secs(120);

/// What the checker allows: acks sent within the last two flush intervals before a crash, plus
/// 300 ms for the ack's transit and the flush's own fsync, may be lost (docs/durability.md,
/// "Queue ack state").
fn rules() -> Rules {
    Rules {
        queue_ack_window: 2 * ACK_FLUSH_INTERVAL + Duration::from_millis(300),
        queue_ack_deadline: ACK_DEADLINE,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_at_random_points_breaks_no_invariant_of_the_durability_contract() {
    let seed = env_number("RAPIDMQ_CHAOS_SEED").unwrap_or_else(rand::random);
    let cycles = env_number("RAPIDMQ_CHAOS_CYCLES").map_or(DEFAULT_CYCLES, |n| n as u32);
    println!(
        "chaos: seed {seed}, {cycles} cycles (replay: RAPIDMQ_CHAOS_SEED={seed} \
         RAPIDMQ_CHAOS_CYCLES={cycles})"
    );
    let started = Instant::now();
    let (counts, violations, cycles_run) = run(seed, cycles).await;
    let summary = Summary {
        seed,
        cycles: cycles_run,
        elapsed: started.elapsed(),
        counts,
        violations: violations.len(),
    };
    println!("{summary}");
    assert!(
        violations.is_empty(),
        "chaos: {} violation(s) with seed {seed} (replay: RAPIDMQ_CHAOS_SEED={seed} \
         RAPIDMQ_CHAOS_CYCLES={cycles}):\n{}",
        violations.len(),
        summarize(&violations, 10)
    );
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
    )
}

/// Runs `cycles` kill/restart cycles and the final drain; returns what the checker counted, the
/// violations it found and how many cycles ran (fewer when a check failed early).
async fn run(seed: u64, cycles: u32) -> (Counts, Vec<Violation>, u32) {
    let mut broker = tokio::task::block_in_place(|| {
        TestBroker::start_with(BrokerOptions {
            env: vec![
                (
                    "RAPIDMQ_QUEUE__ACK_FLUSH_INTERVAL_MS".into(),
                    ACK_FLUSH_INTERVAL.as_millis().to_string(),
                ),
                // The broker's log is printed when the test fails; keep it to what matters.
                ("RAPIDMQ_LOG".into(), "rapidmq=info,warn".into()),
            ],
            args: vec![],
        })
    });
    let history = Arc::new(History::new());
    let mut checker = Checker::new(rules());
    history.record(Event::Started { run: 0 });
    let client = connect(&broker).await;
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

    let mut schedule = StdRng::seed_from_u64(seed);
    let mut consumers = RunConsumers::start(&broker, &history, 0).await;
    let stop_producers = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let producer = client.producer(TOPIC).build().await.expect("producer");
        producers.push(tokio::spawn(produce(
            p,
            producer,
            Arc::clone(&history),
            StdRng::seed_from_u64(seed.wrapping_add(u64::from(p) + 1)),
            Arc::clone(&stop_producers),
        )));
    }

    for run in 0..cycles {
        // The fault schedule: the broker dies this long after its consumers subscribed.
        let kill_after = Duration::from_millis(schedule.random_range(300..1500));
        tokio::time::sleep(kill_after).await;
        history.record(Event::Crash { run });
        tokio::task::block_in_place(|| broker.kill());
        consumers.stop().await;
        tokio::task::block_in_place(|| broker.start_again());
        history.record(Event::Started { run: run + 1 });
        client
            .set_endpoints([broker.grpc_url()])
            .expect("point the producers at the restarted broker");

        read_log(&client, &history).await;
        observe_commits(&client, &history).await;
        checker.feed(&history.drain());
        let violations = checker.violations(Completeness::Partial);
        if !violations.is_empty() {
            println!("chaos: the check after restart {} failed", run + 1);
            stop_producers.store(true, Ordering::Relaxed);
            return (checker.counts(), violations, run + 1);
        }
        consumers = RunConsumers::start(&broker, &history, run + 1).await;
    }

    // The final drain: no more kills; everything stored must reach both subscriptions.
    stop_producers.store(true, Ordering::Relaxed);
    for producer in producers {
        guarded("a producer to finish", producer)
            .await
            .expect("producer task");
    }
    // Delayed messages are due at most 1.5 s after the last send: read the log until every
    // acknowledged message is in it (or the guard passes; the final check reports what is not).
    let deadline = Instant::now() + GUARD;
    loop {
        read_log(&client, &history).await;
        checker.feed(&history.drain());
        if checker.acked_missing_from_last_read().is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Then wait (bounded) until both subscriptions have received everything in that read.
    //
    // Found by `make chaos` on 3 December (seed 16748971886351285216, 100 cycles, debug broker
    // of main at 7a6050f): after the last restart, 28 stored and acknowledged messages, among
    // the last each producer sent (ids 0:63823-0:63934 and 1:63863-1:63900, keyed and delayed
    // ones), were reported as never having reached a subscription within this drain's 120 s
    // (invariant NotDelivered; the 10 printed were all missing from the queue subscription).
    // Replaying the seed passed (214 s), so it depends on timing. The next `make chaos` (seed
    // 2097613499460426710) left 141 undelivered and `report_stall` showed why: the queue
    // subscription reported in_flight 141 while both consumers had nothing buffered, had
    // received and acked all they were sent, and never reconnected. The broker claimed those
    // deliveries without any consumer getting them; they wait for the 600 s ack deadline.
    // Likely cause (from the code): QueueSession::claim awaits the refill of the next
    // partition after claiming from an earlier one, and the consume loop's select! drops that
    // future when an ack or credit arrives, losing the claimed messages.
    // A broker bug (see docs/durability.md, "Chaos testing"), left to the queue fixes of
    // issue 15: this check stays as strict as it is.
    let deadline = Instant::now() + GUARD;
    loop {
        checker.feed(&history.drain());
        if checker.undelivered().is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let undelivered = checker.undelivered();
    if !undelivered.is_empty() {
        report_stall(&client, &consumers, &broker, &undelivered).await;
    }
    consumers.commit_and_stop().await;
    observe_commits(&client, &history).await;
    checker.feed(&history.drain());
    let violations = checker.violations(Completeness::Final);
    client.close().await.expect("close the producer client");
    (checker.counts(), violations, cycles)
}

/// What the broker and the consumers say when the drain did not finish: the queue
/// subscription's counters, each consumer's, and the broker's warnings.
async fn report_stall(
    client: &Client,
    consumers: &RunConsumers,
    broker: &TestBroker,
    undelivered: &[String],
) {
    println!(
        "chaos: {} deliveries still missing after the drain, e.g. {:?}",
        undelivered.len(),
        &undelivered[..undelivered.len().min(5)]
    );
    let info = client
        .admin()
        .describe_subscription(TOPIC, QUEUE_SUBSCRIPTION)
        .await;
    println!("chaos: queue subscription: {info:?}");
    for (n, queue) in consumers.queues.iter().enumerate() {
        println!(
            "chaos: queue consumer {n}: {:?}, stream errors {:?}",
            queue.stats(),
            queue.take_stream_errors()
        );
    }
    println!("chaos: stream consumer: {:?}", consumers.stream.stats());
    let log = broker.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    println!(
        "chaos: {} broker warnings/errors, the last ones:\n{}",
        warnings.len(),
        warnings[warnings.len().saturating_sub(30)..].join("\n")
    );
}

async fn connect(broker: &TestBroker) -> Client {
    Client::builder()
        .endpoint(broker.grpc_url())
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect to the broker")
}

async fn guarded<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(GUARD, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn now_ms() -> i64 {
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
async fn produce(
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

/// The consumers connected to one broker run, on their own client.
struct RunConsumers {
    client: Client,
    stream: rapidmq::Consumer,
    queues: Vec<QueueConsumer>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunConsumers {
    async fn start(broker: &TestBroker, history: &Arc<History>, run: u32) -> RunConsumers {
        let client = connect(broker).await;
        let stop = Arc::new(AtomicBool::new(false));
        let stream = client
            .consumer(TOPIC)
            .subscription(STREAM_SUBSCRIPTION)
            .start(StartPosition::Earliest)
            .prefetch(500)
            .commit_interval(Duration::from_millis(50))
            .subscribe()
            .await
            .expect("subscribe the stream consumer");
        let mut tasks = vec![tokio::spawn(consume_stream(
            stream.clone(),
            client.clone(),
            Arc::clone(history),
            run,
            Arc::clone(&stop),
        ))];
        let mut queues = Vec::new();
        for n in 0..QUEUE_CONSUMERS {
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
                n,
                queue.clone(),
                Arc::clone(history),
                run,
                Arc::clone(&stop),
            )));
            queues.push(queue);
        }
        RunConsumers {
            client,
            stream,
            queues,
            stop,
            tasks,
        }
    }

    /// Stops the consumer tasks and closes the run's client, so nothing of this run reaches the
    /// next broker.
    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = guarded("a consumer task to stop", task).await;
        }
        guarded("the consumer client to close", self.client.close())
            .await
            .expect("close the consumer client");
    }

    /// At the end of a run that is not killed: commit and ack what was consumed, then stop.
    async fn commit_and_stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = guarded("a consumer task to stop", task).await;
        }
        let _ = self.stream.commit().await;
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
    run: u32,
    stop: Arc<AtomicBool>,
) {
    let admin = client.admin();
    while !stop.load(Ordering::Relaxed) {
        let Ok(messages) = consumer.poll(500, Duration::from_millis(100)).await else {
            return;
        };
        if messages.is_empty() {
            continue;
        }
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
        if consumer.commit().await.is_err() {
            return;
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
    run: u32,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let session = consumer.stats().reconnects;
        let Ok(deliveries) = consumer.poll(100, Duration::from_millis(100)).await else {
            return;
        };
        if deliveries.is_empty() {
            continue;
        }
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
        if flushed && consumer.stats().reconnects == session {
            history.record_all(deliveries.iter().map(|d| Event::QueueAckSent {
                run,
                id: entry(&d.message).id,
                partition: d.message.partition,
                offset: d.message.offset,
            }));
        }
    }
}

/// Reads the whole log (every partition from 0 to its high watermark) and records it.
async fn read_log(client: &Client, history: &History) {
    let began = history.now();
    let topic = guarded("describe_topic", client.admin().describe_topic(TOPIC))
        .await
        .expect("describe the chaos topic");
    let mut entries = Vec::new();
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
    }
    history.record(Event::LogRead { began, entries });
}

async fn observe_commits(client: &Client, history: &History) {
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

/// What a chaos run did, for the test output and docs/durability.md.
struct Summary {
    seed: u64,
    cycles: u32,
    elapsed: Duration,
    counts: Counts,
    violations: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.counts;
        write!(
            f,
            "chaos summary: seed {}, {} kill -9 cycles in {:.1} s; {} messages sent, {} acked \
             ({} of them scheduled), {} failed, {} stored; {} stream deliveries, {} queue \
             deliveries ({} redeliveries); {} violation(s)",
            self.seed,
            self.cycles,
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
