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

mod workload;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rapidmq::Client;
use rapidmq_testkit::history::{
    Checker, Completeness, Counts, Event, History, Rules, Violation, summarize,
};
use rapidmq_testkit::{BrokerOptions, TestBroker};
use workload::{
    ACK_DEADLINE, Consumers, QUEUE_SUBSCRIPTION, RunTag, Summary, TOPIC, connect, create_topic,
    drain, env_number, guarded, observe_commits, produce, read_log,
};

/// Kills in `make test`: about a minute in a debug build on two cores (20 cycles took 30 s).
const DEFAULT_CYCLES: u32 = 40;
const PRODUCERS: u32 = 2;
const QUEUE_CONSUMERS: u32 = 2;
/// `queue.ack_flush_interval_ms` of the broker under test.
const ACK_FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// What the checker allows: acks sent within the last two flush intervals before a crash, plus
/// 300 ms for the ack's transit and the flush's own fsync, may be lost (docs/durability.md,
/// "Queue ack state").
fn rules() -> Rules {
    Rules {
        queue_ack_window: 2 * ACK_FLUSH_INTERVAL + Duration::from_millis(300),
        queue_ack_deadline: ACK_DEADLINE,
        leader_settle: Duration::ZERO,
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
        name: "chaos",
        seed,
        faults: format!("{cycles_run} kill -9 cycles"),
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
    let client = connect(broker.grpc_url()).await;
    create_topic(&client).await;

    let mut schedule = StdRng::seed_from_u64(seed);
    let mut consumers = start_consumers(&broker, &history, 0).await;
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

        read_log(&client, &history, 0).await;
        observe_commits(&client, &history).await;
        checker.feed(&history.drain());
        let violations = checker.violations(Completeness::Partial);
        if !violations.is_empty() {
            println!("chaos: the check after restart {} failed", run + 1);
            stop_producers.store(true, Ordering::Relaxed);
            return (checker.counts(), violations, run + 1);
        }
        consumers = start_consumers(&broker, &history, run + 1).await;
    }

    // The final drain: no more kills; everything stored must reach both subscriptions.
    stop_producers.store(true, Ordering::Relaxed);
    for producer in producers {
        guarded("a producer to finish", producer)
            .await
            .expect("producer task");
    }
    // Read the log until every acknowledged message is in it, then wait (bounded) until both
    // subscriptions have received everything in that read (`drain`).
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
    let undelivered = drain(&client, &history, &mut checker).await;
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

/// The consumers of broker run `run`, on their own client.
async fn start_consumers(broker: &TestBroker, history: &Arc<History>, run: u32) -> Consumers {
    let queues = vec![RunTag::Broker(run); QUEUE_CONSUMERS as usize];
    Consumers::start(broker.grpc_url(), history, RunTag::Broker(run), &queues).await
}

/// What the broker and the consumers say when the drain did not finish: the queue
/// subscription's counters, each consumer's, and the broker's warnings.
async fn report_stall(
    client: &Client,
    consumers: &Consumers,
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
    println!(
        "chaos: stream consumer: {:?}",
        consumers.stream.as_ref().map(|s| s.stats())
    );
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
