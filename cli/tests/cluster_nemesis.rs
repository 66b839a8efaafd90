//! The cluster nemesis run: three nodes with proxied peer links (`common::nemesis`), a topic of
//! `RAPIDMQ_NEMESIS_PARTITIONS` partitions with three replicas each (`fsync`), idempotent
//! producers through random nodes, a stream subscription that commits and one queue consumer per
//! node (a replicated partition is delivered by its leader only, so every partition is served).
//! A seeded nemesis kills (-9), pauses and cuts links for `RAPIDMQ_NEMESIS_SECS`; after every
//! fault heals, the nodes must agree on every partition's leader again. Then: full reads of the
//! log from every node, a final drain, and the history checker (`rapidmq_testkit::history`)
//! must find nothing.
//!
//! Every fault opens a leader window for the checker (`Event::LeadersMayMove`), closed once the
//! nodes agree on the leaders again (`Event::LeadersSettled`): within it a queue message may be
//! delivered again and a queue ack may be lost (docs/clustering.md, "### Queues"). Every other
//! invariant holds as strictly as on a single node.
//!
//! Failover time: from each kill of a node that led partitions to the first publish to one of
//! them acknowledged after it; p50/p99/max are printed.
//!
//! The seed is printed; `RAPIDMQ_NEMESIS_SEED` replays the schedule (not the interleaving).
//! `make cluster-nemesis` runs 300 s with 50 partitions.

mod common;
mod workload;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::PATIENCE;
use common::nemesis::{FaultKind, NODES, NemesisFault, ProxiedCluster};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rapidmq::{Client, Durability, TopicConfig};
use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::admin_client::AdminClient;
use rapidmq_testkit::history::{
    Checker, Completeness, Event, History, Record, Rules, Violation, summarize,
};
use tonic::transport::Endpoint;
use workload::{
    ACK_DEADLINE, Consumers, RunTag, Summary, TOPIC, drain, env_number, guarded, observe_commits,
    produce, read_log,
};

/// Faults in `make test`: a clean run of 20 s over 12 partitions took 26 s in all on two shared
/// cores, so 40 s keeps the test near a minute.
const DEFAULT_SECS: u64 = 40;
/// Partitions in `make test`; the 50 (`make cluster-nemesis`) take too long to create
/// and elect on two shared cores for every `make test`.
const DEFAULT_PARTITIONS: u32 = 12;
const PRODUCERS: u32 = 2;
/// `queue.ack_flush_interval_ms` of the nodes.
const ACK_FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// What the checker allows: queue acks of the last flush intervals before a leader window
/// (plus the proposal's replication under a delayed link and the fsync) may be lost; a window
/// closes 1 s after the nodes agree on every leader (a new leader delivers once it applied an
/// entry of its term and its consume sessions notice, every 250 ms; a deposed leader's consumer
/// may still ack to it meanwhile).
fn rules() -> Rules {
    Rules {
        queue_ack_window: 2 * ACK_FLUSH_INTERVAL + Duration::from_millis(800),
        queue_ack_deadline: ACK_DEADLINE,
        leader_settle: Duration::from_secs(1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicated_partitions_under_kills_pauses_and_cut_links_break_no_invariant() {
    let seed = env_number("RAPIDMQ_NEMESIS_SEED").unwrap_or_else(rand::random);
    let secs = env_number("RAPIDMQ_NEMESIS_SECS").unwrap_or(DEFAULT_SECS);
    let partitions =
        env_number("RAPIDMQ_NEMESIS_PARTITIONS").map_or(DEFAULT_PARTITIONS, |n| n as u32);
    println!(
        "cluster nemesis: seed {seed}, {secs} s of faults, {partitions} partitions (replay: \
         RAPIDMQ_NEMESIS_SEED={seed} RAPIDMQ_NEMESIS_SECS={secs} \
         RAPIDMQ_NEMESIS_PARTITIONS={partitions})"
    );
    let started = Instant::now();
    let mut run = NemesisRun::start(seed, partitions).await;
    let faults = run.faults(secs).await;
    let violations = run.finish().await;
    let counts = run.checker.counts();
    let summary = Summary {
        name: "cluster nemesis",
        seed,
        faults: format!("{faults} over {partitions} partitions"),
        elapsed: started.elapsed(),
        counts,
        violations: violations.len(),
    };
    println!("{summary}");
    println!("cluster nemesis: {}", run.failover_report());
    if !violations.is_empty() {
        run.report_nodes().await;
    }
    assert!(
        violations.is_empty(),
        "cluster nemesis: {} violation(s) with seed {seed} (replay: RAPIDMQ_NEMESIS_SEED={seed} \
         RAPIDMQ_NEMESIS_SECS={secs} RAPIDMQ_NEMESIS_PARTITIONS={partitions}):\n{}",
        violations.len(),
        summarize(&violations, 20)
    );
}

/// A kill of a node that led `partitions`, at `killed` (history time), until a publish to one of
/// them is acknowledged.
struct Failover {
    killed: Duration,
    partitions: BTreeSet<u32>,
}

struct NemesisRun {
    cluster: ProxiedCluster,
    history: Arc<History>,
    checker: Checker,
    schedule: StdRng,
    partitions: u32,
    producer_clients: Vec<Client>,
    producers: Vec<tokio::task::JoinHandle<()>>,
    stop_producers: Arc<AtomicBool>,
    stream: Option<Consumers>,
    /// The queue consumer through each node.
    queues: Vec<Option<Consumers>>,
    pending_failovers: Vec<Failover>,
    failovers: Vec<Duration>,
}

impl NemesisRun {
    async fn start(seed: u64, partitions: u32) -> NemesisRun {
        let env = vec![
            (
                "RAPIDMQ_QUEUE__ACK_FLUSH_INTERVAL_MS".to_string(),
                ACK_FLUSH_INTERVAL.as_millis().to_string(),
            ),
            // The nodes' logs are printed when the test fails; keep them to what matters.
            ("RAPIDMQ_LOG".to_string(), "rapidmq=info,warn".to_string()),
        ];
        let cluster = ProxiedCluster::start(&env).await;
        let history = Arc::new(History::new());
        let mut schedule = StdRng::seed_from_u64(seed);
        let urls = cluster.urls();
        let admin_client = connect_to(rotated(&urls, 0)).await;
        create_topic(&admin_client, partitions).await;
        admin_client.close().await.ok();
        let mut run = NemesisRun {
            cluster,
            history,
            checker: Checker::new(rules()),
            schedule: StdRng::seed_from_u64(schedule.random()),
            partitions,
            producer_clients: Vec::new(),
            producers: Vec::new(),
            stop_producers: Arc::new(AtomicBool::new(false)),
            stream: None,
            queues: (0..NODES).map(|_| None).collect(),
            pending_failovers: Vec::new(),
            failovers: Vec::new(),
        };
        run.await_leaders().await;
        run.history.record(Event::Started { run: 0 });
        for node in 0..NODES {
            run.start_queue_consumer(node).await;
        }
        let stream_client = connect_to(rotated(&urls, schedule.random_range(0..NODES))).await;
        run.stream = Some(
            Consumers::on(
                stream_client,
                &run.history,
                Some(RunTag::Session { base: 0 }),
                &[],
            )
            .await,
        );
        for p in 0..PRODUCERS {
            let client = connect_to(rotated(&urls, schedule.random_range(0..NODES))).await;
            let producer = client.producer(TOPIC).build().await.expect("producer");
            run.producers.push(tokio::spawn(produce(
                p,
                producer,
                Arc::clone(&run.history),
                StdRng::seed_from_u64(seed.wrapping_add(u64::from(p) + 1)),
                Arc::clone(&run.stop_producers),
            )));
            run.producer_clients.push(client);
        }
        run
    }

    /// The queue consumer through `node`. All of them are one run for the checker: two nodes
    /// never deliver the same message outside a leader window.
    async fn start_queue_consumer(&mut self, node: usize) {
        let client = connect_to(vec![self.cluster.urls()[node].clone()]).await;
        let consumers = Consumers::on(client, &self.history, None, &[RunTag::Broker(0)]).await;
        self.queues[node] = Some(consumers);
    }

    /// Injects faults for `secs`, checking the history after each; returns what was injected.
    async fn faults(&mut self, secs: u64) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut injected: BTreeMap<&str, u32> = BTreeMap::new();
        while Instant::now() < end {
            let fault = NemesisFault::next(&mut self.schedule);
            self.inject(&fault).await;
            *injected.entry(fault.name()).or_default() += 1;
            self.feed();
            let violations = self.checker.violations(Completeness::Partial);
            if !violations.is_empty() {
                println!("cluster nemesis: the check after a {} failed", fault.name());
                break;
            }
            tokio::time::sleep(fault.quiet).await;
        }
        format!("{injected:?}")
    }

    /// One fault: opens a leader window, injects, holds, heals, waits until the nodes agree on
    /// every leader, closes the window.
    async fn inject(&mut self, fault: &NemesisFault) {
        let led = if fault.kind == FaultKind::Kill {
            self.led_by(fault.node).await
        } else {
            BTreeSet::new()
        };
        println!(
            "cluster nemesis: at {:.3} s: {} node {} (other {}, {:?}), held {} ms",
            self.history.now().as_secs_f64(),
            fault.name(),
            fault.node + 1,
            fault.other + 1,
            fault.kind,
            fault.hold.as_millis()
        );
        self.history.record(Event::LeadersMayMove);
        self.cluster.begin(fault);
        if fault.kind == FaultKind::Kill {
            if !led.is_empty() {
                self.pending_failovers.push(Failover {
                    killed: self.history.now(),
                    partitions: led,
                });
            }
            if let Some(queue) = self.queues[fault.node].take() {
                queue.stop().await;
            }
        }
        tokio::time::sleep(fault.hold).await;
        self.cluster.end(fault);
        if fault.kind == FaultKind::Kill {
            let urls = self.cluster.urls();
            for (n, client) in self.producer_clients.iter().enumerate() {
                client
                    .set_endpoints(rotated(&urls, n))
                    .expect("point a producer at the nodes");
            }
            // The restarted node goes last: the stream consumer reads its committed offsets
            // back through its client's first node, and a replica still catching up shows
            // the commits it has not applied yet as older ones (docs/clustering.md, "What a
            // failover loses"): the read must go where the commits go.
            if let Some(stream) = &self.stream {
                stream
                    .client
                    .set_endpoints(rotated(&urls, fault.node + 1))
                    .expect("point the stream consumer at the nodes");
            }
            self.start_queue_consumer(fault.node).await;
        }
        self.await_leaders().await;
        self.history.record(Event::LeadersSettled);
        println!(
            "cluster nemesis: at {:.3} s: healed; the nodes agree on every leader",
            self.history.now().as_secs_f64()
        );
    }

    /// Partitions whose leader, as any node that answers says, is `node`.
    async fn led_by(&self, node: usize) -> BTreeSet<u32> {
        let id = node as u64 + 1;
        let mut led = BTreeSet::new();
        for url in self.cluster.urls() {
            if let Some(leaders) = leaders(&url).await {
                led.extend(leaders.iter().filter(|(_, l)| **l == id).map(|(p, _)| *p));
            }
        }
        led
    }

    /// Waits (bounded) until every node answers and names the same leader for every partition.
    async fn await_leaders(&self) {
        let deadline = Instant::now() + PATIENCE * 2;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            let mut views = Vec::new();
            for url in self.cluster.urls() {
                views.push(leaders(&url).await);
            }
            let complete = |v: &Option<BTreeMap<u32, u64>>| {
                v.as_ref().is_some_and(|v| {
                    v.len() == self.partitions as usize && v.values().all(|l| *l != 0)
                })
            };
            if views.iter().all(complete) && views.iter().all(|v| *v == views[0]) {
                return;
            }
            if Instant::now() >= deadline {
                for (i, node) in self.cluster.nodes.iter().enumerate() {
                    eprintln!("--- node {} log ---\n{}", i + 1, node.log());
                }
                panic!("the nodes did not agree on every partition's leader: {views:?}");
            }
        }
    }

    /// Feeds what was recorded since the last call to the checker, resolving the failovers the
    /// publish acks in it end.
    fn feed(&mut self) {
        let records = self.history.drain();
        self.resolve_failovers(&records);
        self.checker.feed(&records);
    }

    fn resolve_failovers(&mut self, records: &[Record]) {
        for record in records {
            let Event::PublishAcked { partition, .. } = &record.event else {
                continue;
            };
            let at = record.at;
            let failovers = &mut self.failovers;
            self.pending_failovers.retain(|f| {
                let resolved = at > f.killed && f.partitions.contains(partition);
                if resolved {
                    failovers.push(at - f.killed);
                }
                !resolved
            });
        }
    }

    /// After the faults: stop producing, read the log from every node, drain both
    /// subscriptions, and check everything.
    async fn finish(&mut self) -> Vec<Violation> {
        self.stop_producers.store(true, Ordering::Relaxed);
        for producer in self.producers.drain(..) {
            guarded("a producer to finish", producer)
                .await
                .expect("producer task");
        }
        let urls = self.cluster.urls();
        let readers: Vec<Client> = {
            let mut readers = Vec::new();
            for url in &urls {
                readers.push(connect_to(vec![url.clone()]).await);
            }
            readers
        };
        for (node, reader) in readers.iter().enumerate() {
            read_log(reader, &self.history, node as u32).await;
        }
        self.feed();
        let mut violations = self.checker.violations(Completeness::Partial);
        if violations.is_empty() {
            // `drain` reads through node 0 (node 0 in the history too) until every acknowledged
            // message is there, then waits until both subscriptions got everything.
            let undelivered = drain(&readers[0], &self.history, &mut self.checker).await;
            if !undelivered.is_empty() {
                println!(
                    "cluster nemesis: {} deliveries still missing after the drain, e.g. {:?}",
                    undelivered.len(),
                    &undelivered[..undelivered.len().min(5)]
                );
            }
            let consumers = self.queues.iter_mut().filter_map(Option::take);
            for consumers in consumers.chain(self.stream.take()) {
                consumers.commit_and_stop().await;
            }
            observe_commits(&readers[0], &self.history).await;
            self.feed();
            violations = self.checker.violations(Completeness::Final);
        }
        for client in readers.iter().chain(&self.producer_clients) {
            client.close().await.ok();
        }
        violations
    }

    /// What each node says of the partitions (log start, high watermark, leader), and the
    /// broker's own warnings and errors of each node's log (not openraft's RPC timeouts, which
    /// every cut link causes), for a failed run.
    async fn report_nodes(&self) {
        for (node, url) in self.cluster.urls().iter().enumerate() {
            let described = describe(url).await;
            let partitions: Vec<String> = described
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| {
                    format!(
                        "{}: {}..{} leader {}",
                        p.partition, p.log_start_offset, p.high_watermark, p.leader
                    )
                })
                .collect();
            println!(
                "cluster nemesis: node {} partitions: {}",
                node + 1,
                partitions.join(", ")
            );
            let log = self.cluster.nodes[node].log();
            let own: Vec<&str> = log
                .lines()
                .filter(|l| (l.contains("WARN") || l.contains("ERROR")) && !l.contains("openraft"))
                .collect();
            println!(
                "cluster nemesis: node {}: {} warnings/errors of its own, the last ones:\n{}",
                node + 1,
                own.len(),
                own[own.len().saturating_sub(15)..].join("\n")
            );
        }
    }

    fn failover_report(&self) -> String {
        let mut times = self.failovers.clone();
        times.sort();
        let at = |q: f64| {
            times
                .get(((times.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .map_or("-".to_string(), |d| format!("{} ms", d.as_millis()))
        };
        format!(
            "failover (kill of a leader to the first acknowledged publish to one of its \
             partitions): {} measured, p50 {}, p99 {}, max {}; {} kills without a publish to \
             their partitions afterwards",
            times.len(),
            at(0.5),
            at(0.99),
            at(1.0),
            self.pending_failovers.len()
        )
    }
}

/// `urls` starting at `first`: a client tries its endpoints in order.
fn rotated(urls: &[String], first: usize) -> Vec<String> {
    (0..urls.len())
        .map(|i| urls[(first + i) % urls.len()].clone())
        .collect()
}

async fn connect_to(endpoints: Vec<String>) -> Client {
    Client::builder()
        .endpoints(endpoints)
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect to the cluster")
}

/// Creates the topic, retrying (bounded) while the metadata group has no leader.
async fn create_topic(client: &Client, partitions: u32) {
    let config = TopicConfig {
        partitions,
        durability: Durability::Fsync,
        replication_factor: Some(3),
        ..TopicConfig::default()
    };
    let deadline = Instant::now() + PATIENCE;
    loop {
        match client.admin().create_topic(TOPIC, config).await {
            Ok(_) => return,
            Err(err) if Instant::now() < deadline => {
                eprintln!("create the topic: {err}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("create the topic: {err}"),
        }
    }
}

/// The topic as the node at `url` describes it, or `None` if it does not answer.
async fn describe(url: &str) -> Option<pb::TopicInfo> {
    let channel = Endpoint::from_shared(url.to_string())
        .ok()?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .ok()?;
    let topic = AdminClient::new(channel)
        .describe_topic(pb::DescribeTopicRequest { name: TOPIC.into() })
        .await
        .ok()?;
    Some(topic.into_inner())
}

/// Each partition's leader as the node at `url` knows it (0: none), or `None` if it does not
/// answer.
async fn leaders(url: &str) -> Option<BTreeMap<u32, u64>> {
    let topic = describe(url).await?;
    Some(
        topic
            .partitions
            .iter()
            .map(|p| (p.partition, p.leader))
            .collect(),
    )
}
