//! The link-fault test: one broker behind an in-process TCP proxy (`rapidmq_testkit::proxy`).
//! Idempotent producers, a stream subscription and a queue consumer of the Rust SDK all reach
//! the broker through the proxy, while a seeded nemesis resets the link, blackholes it, cuts it
//! one way (either way), delays it, or pauses the broker (SIGSTOP/SIGCONT), at random. Between faults, a client that bypasses the
//! proxy reads the whole log; at the end, after a drain over a healed link, one checker
//! (`rapidmq_testkit::history`) replays everything the clients observed: no acknowledged message
//! lost, none stored twice, per-key order kept, no committed offset going back, no acknowledged
//! queue message redelivered, and everything stored reached both subscriptions.
//!
//! The broker never crashes here; what ends is the consumers' sessions. So deliveries are
//! attributed to the consumer's session ([`RunTag::Session`]), and the nemesis records a
//! `SessionCut` of the queue consumer's session before every fault that breaks connections: an
//! ack sent just before it may be lost in transit, and that message comes back. With one queue
//! consumer, "delivered twice in one run" means twice in one session, which the broker must not
//! do before the ack deadline.
//!
//! The seed is printed; `RAPIDMQ_LINK_SEED` replays the schedule (not the exact interleaving)
//! and `RAPIDMQ_LINK_SECS` sets how long faults are injected (default 30 s; the whole test stops
//! by itself within about a minute).

mod workload;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rapidmq::Client;
use rapidmq_testkit::history::{
    Checker, Completeness, Counts, Event, History, Rules, Violation, summarize,
};
use rapidmq_testkit::proxy::{Direction, Fault, LinkProxy};
use rapidmq_testkit::{BrokerOptions, TestBroker};
use workload::{
    ACK_DEADLINE, Consumers, RunTag, Summary, connect, create_topic, drain, env_number, guarded,
    observe_commits, produce, read_log,
};

/// How long faults are injected in `make test`.
const DEFAULT_FAULT_SECS: u64 = 30;
const PRODUCERS: u32 = 2;
/// The longest delay the nemesis adds to the link, each way.
const MAX_DELAY: Duration = Duration::from_millis(200);

/// What the checker allows: an ack sent less than this before its session was cut may not have
/// reached the broker (two delayed trips and the consumer's ack interval, with a margin).
fn rules() -> Rules {
    Rules {
        queue_ack_window: 2 * MAX_DELAY + Duration::from_millis(600),
        queue_ack_deadline: ACK_DEADLINE,
        leader_settle: Duration::ZERO,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_link_faults_break_no_invariant_of_the_durability_contract() {
    let seed = env_number("RAPIDMQ_LINK_SEED").unwrap_or_else(rand::random);
    let secs = env_number("RAPIDMQ_LINK_SECS").unwrap_or(DEFAULT_FAULT_SECS);
    println!(
        "link faults: seed {seed}, {secs} s of faults (replay: RAPIDMQ_LINK_SEED={seed} \
         RAPIDMQ_LINK_SECS={secs})"
    );
    let started = Instant::now();
    let mut broker = tokio::task::block_in_place(|| {
        TestBroker::start_with(BrokerOptions {
            // The broker's log is printed when the test fails; keep it to what matters.
            env: vec![("RAPIDMQ_LOG".into(), "rapidmq=info,warn".into())],
            args: vec![],
        })
    });
    let (tally, counts, violations) = run(&mut broker, seed, Duration::from_secs(secs)).await;
    let summary = Summary {
        name: "link faults",
        seed,
        faults: tally.to_string(),
        elapsed: started.elapsed(),
        counts,
        violations: violations.len(),
    };
    println!("{summary}");
    assert_clean(&violations, seed, secs);
}

fn assert_clean(violations: &[Violation], seed: u64, secs: u64) {
    assert!(
        violations.is_empty(),
        "link faults: {} violation(s) with seed {seed} (replay: RAPIDMQ_LINK_SEED={seed} \
         RAPIDMQ_LINK_SECS={secs}):\n{}",
        violations.len(),
        summarize(violations, 10)
    );
}

/// Injects faults for `faults_for`, then heals the link and drains; returns the faults injected,
/// what the checker counted and the violations it found (of the partial check that failed
/// early, or of the final one).
async fn run(
    broker: &mut TestBroker,
    seed: u64,
    faults_for: Duration,
) -> (Tally, Counts, Vec<Violation>) {
    let target: SocketAddr = broker.grpc_addr().parse().expect("the broker's address");
    let proxy = LinkProxy::start(target)
        .await
        .expect("start the link proxy");
    let history = Arc::new(History::new());
    let mut checker = Checker::new(rules());
    history.record(Event::Started { run: 0 });
    // Full reads and the final commit check bypass the proxy.
    let direct = connect(broker.grpc_url()).await;
    create_topic(&direct).await;

    let session = RunTag::Session { base: 0 };
    let consumers = Consumers::start(proxy.url(), &history, session, &[session]).await;
    let producing = connect(proxy.url()).await;
    let stop_producers = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let producer = producing.producer(workload::TOPIC).build().await;
        producers.push(tokio::spawn(produce(
            p,
            producer.expect("producer"),
            Arc::clone(&history),
            StdRng::seed_from_u64(seed.wrapping_add(u64::from(p) + 1)),
            Arc::clone(&stop_producers),
        )));
    }

    let mut schedule = StdRng::seed_from_u64(seed);
    let mut tally = Tally::default();
    let end = Instant::now() + faults_for;
    while Instant::now() < end {
        let nemesis = Nemesis::random(&mut schedule);
        tally.count(nemesis);
        if nemesis.cuts_sessions() {
            let queue_session = consumers.queues[0].stats().reconnects as u32;
            history.record(Event::SessionCut { run: queue_session });
        }
        // The schedule: how long the fault holds, then how long the link passes.
        let hold = Duration::from_millis(schedule.random_range(300..2000));
        match nemesis {
            Nemesis::Link(fault) => {
                proxy.set(fault);
                tokio::time::sleep(hold).await;
                proxy.set(Fault::Pass);
            }
            Nemesis::Pause => {
                tokio::task::block_in_place(|| broker.pause());
                tokio::time::sleep(hold).await;
                tokio::task::block_in_place(|| broker.resume());
            }
        }
        tokio::time::sleep(Duration::from_millis(schedule.random_range(300..1500))).await;
        read_log(&direct, &history, 0).await;
        checker.feed(&history.drain());
        let violations = checker.violations(Completeness::Partial);
        if !violations.is_empty() {
            println!(
                "link faults: the check after fault {} failed",
                tally.total()
            );
            stop_producers.store(true, Ordering::Relaxed);
            return (tally, checker.counts(), violations);
        }
    }

    // The drain, over a healed link: everything acknowledged must be stored, and everything
    // stored must reach both subscriptions.
    stop_producers.store(true, Ordering::Relaxed);
    for producer in producers {
        guarded("a producer to finish", producer)
            .await
            .expect("producer task");
    }
    let undelivered = drain(&direct, &history, &mut checker).await;
    if !undelivered.is_empty() {
        report_stall(&direct, &consumers, &undelivered).await;
    }
    consumers.commit_and_stop().await;
    observe_commits(&direct, &history).await;
    checker.feed(&history.drain());
    close(producing).await;
    close(direct).await;
    (
        tally,
        checker.counts(),
        checker.violations(Completeness::Final),
    )
}

async fn close(client: Client) {
    guarded("a client to close", client.close())
        .await
        .expect("close a client");
}

/// One fault the nemesis injects.
#[derive(Debug, Clone, Copy)]
enum Nemesis {
    /// The link between the clients and the broker misbehaves.
    Link(Fault),
    /// The broker is frozen (SIGSTOP), its connections open, then thawed.
    Pause,
}

impl Nemesis {
    fn random(rng: &mut StdRng) -> Nemesis {
        Nemesis::Link(match rng.random_range(0..6) {
            0 => Fault::Reset,
            1 => Fault::Blackhole,
            2 => Fault::OneWay(Direction::ToTarget),
            3 => Fault::OneWay(Direction::FromTarget),
            4 => Fault::Delay(Duration::from_millis(
                rng.random_range(10..=MAX_DELAY.as_millis() as u64),
            )),
            _ => return Nemesis::Pause,
        })
    }

    /// Whether it ends the consumers' sessions (connections reset now, or when the link heals).
    fn cuts_sessions(self) -> bool {
        matches!(
            self,
            Nemesis::Link(Fault::Reset | Fault::Blackhole | Fault::OneWay(_))
        )
    }
}

/// How many faults of each kind the nemesis injected.
#[derive(Debug, Default)]
struct Tally(BTreeMap<&'static str, u32>);

impl Tally {
    fn count(&mut self, nemesis: Nemesis) {
        let kind = match nemesis {
            Nemesis::Link(Fault::Pass) => "pass",
            Nemesis::Link(Fault::Reset) => "reset",
            Nemesis::Link(Fault::Blackhole) => "blackhole",
            Nemesis::Link(Fault::OneWay(Direction::ToTarget)) => "cut to broker",
            Nemesis::Link(Fault::OneWay(Direction::FromTarget)) => "cut from broker",
            Nemesis::Link(Fault::Delay(_)) => "delay",
            Nemesis::Pause => "broker pause",
        };
        *self.0.entry(kind).or_default() += 1;
    }

    fn total(&self) -> u32 {
        self.0.values().sum()
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<String> = self.0.iter().map(|(k, n)| format!("{n} {k}")).collect();
        write!(f, "{} faults ({})", self.total(), kinds.join(", "))
    }
}

/// What the consumers say when the drain did not finish.
async fn report_stall(client: &Client, consumers: &Consumers, undelivered: &[String]) {
    println!(
        "link faults: {} deliveries still missing after the drain, e.g. {:?}",
        undelivered.len(),
        &undelivered[..undelivered.len().min(5)]
    );
    let info = client
        .admin()
        .describe_subscription(workload::TOPIC, workload::QUEUE_SUBSCRIPTION)
        .await;
    println!("link faults: queue subscription: {info:?}");
    for (n, queue) in consumers.queues.iter().enumerate() {
        println!(
            "link faults: queue consumer {n}: {:?}, stream errors {:?}",
            queue.stats(),
            queue.take_stream_errors()
        );
    }
    println!(
        "link faults: stream consumer: {:?}",
        consumers.stream.as_ref().map(|s| s.stats())
    );
}
