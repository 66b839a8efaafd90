//! Cluster mode under faults: three `rapidmq serve` processes whose node-to-node links each run
//! through their own in-process TCP proxy (`common::nemesis`). While two clients create topics
//! through random nodes (a quarter of the attempts reuse a recent name, so creates race), a
//! seeded nemesis kills a node (-9) and restarts it, pauses one (SIGSTOP/SIGCONT), cuts a link
//! (both ways, one way, reset, delayed) or isolates a node from both others.
//!
//! Once every fault is healed the nodes must agree on one leader and on the same topics, and
//! every outcome a client saw must be explained by that one history:
//! - every acknowledged create is on every node, and it is the attempt that won its name (each
//!   attempt carries a unique marker in its config);
//! - no attempt refused as `TOPIC_ALREADY_EXISTS` won its name;
//! - nothing exists that no client attempted.
//!
//! The seed is printed; `RAPIDMQ_CLUSTER_FAULT_SEED` replays the schedule and
//! `RAPIDMQ_CLUSTER_FAULT_SECS` sets how long faults are injected (default 20 s in `make test`;
//! `make cluster-faults` runs longer).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::nemesis::{NODES, NemesisFault, ProxiedCluster};
use common::{PATIENCE, error_code};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::admin_client::AdminClient;
use tonic::transport::Endpoint;

const DEFAULT_FAULT_SECS: u64 = 20;
/// Retention markers start here, so a marker is never a broker default.
const MARKER_BASE: u64 = 7_000_000_000;
/// How long one create may take before the client counts it as unknown.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
    )
}

/// What a client saw of one create attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Acked,
    AlreadyExists,
    /// Failed or timed out: it may or may not have taken effect.
    Unknown,
}

#[derive(Debug, Clone)]
struct Attempt {
    name: String,
    marker: u64,
    node: usize,
    outcome: Outcome,
}

async fn admin(url: &str) -> Option<AdminClient<tonic::transport::Channel>> {
    let channel = Endpoint::from_shared(url.to_string())
        .ok()?
        .connect_timeout(Duration::from_secs(1))
        .timeout(CALL_TIMEOUT)
        .connect()
        .await
        .ok()?;
    Some(AdminClient::new(channel))
}

/// One client: creates topics through random nodes until `stop`, recording every outcome.
async fn create_topics(
    urls: Arc<Mutex<Vec<String>>>,
    attempts: Arc<Mutex<Vec<Attempt>>>,
    next: Arc<AtomicU64>,
    mut rng: StdRng,
    stop: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let n = next.fetch_add(1, Ordering::Relaxed);
        let name = if n >= 5 && rng.random_bool(0.25) {
            format!("t{}", rng.random_range(n - 5..n))
        } else {
            format!("t{n}")
        };
        let marker = MARKER_BASE + n;
        let node = rng.random_range(0..NODES);
        let url = urls.lock().unwrap()[node].clone();
        let outcome = match admin(&url).await {
            None => Outcome::Unknown,
            Some(mut admin) => {
                let request = pb::CreateTopicRequest {
                    name: name.clone(),
                    config: Some(pb::TopicConfig {
                        partitions: Some(1),
                        retention_ms: Some(marker),
                        ..Default::default()
                    }),
                };
                match tokio::time::timeout(CALL_TIMEOUT, admin.create_topic(request)).await {
                    Ok(Ok(_)) => Outcome::Acked,
                    Ok(Err(status))
                        if status
                            .metadata()
                            .get(rapidmq_proto::ERROR_CODE_METADATA)
                            .is_some()
                            && error_code(&status) == ErrorCode::TopicAlreadyExists =>
                    {
                        Outcome::AlreadyExists
                    }
                    Ok(Err(_)) | Err(_) => Outcome::Unknown,
                }
            }
        };
        attempts.lock().unwrap().push(Attempt {
            name,
            marker,
            node,
            outcome,
        });
    }
}

/// Every node's topics as `name → (retention marker, created_at_ms)`, or `None` for a node that
/// does not answer.
async fn topics_of(url: &str) -> Option<BTreeMap<String, (u64, i64)>> {
    let mut admin = admin(url).await?;
    let listed = admin
        .list_topics(pb::ListTopicsRequest::default())
        .await
        .ok()?
        .into_inner();
    Some(
        listed
            .topics
            .into_iter()
            .map(|t| {
                let marker = t.config.and_then(|c| c.retention_ms).unwrap_or_default();
                (t.name, (marker, t.created_at_ms))
            })
            .collect(),
    )
}

/// Waits until every node answers with the same topics, and returns them.
async fn converged(urls: &[String]) -> BTreeMap<String, (u64, i64)> {
    let deadline = Instant::now() + PATIENCE * 2;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let mut views = Vec::new();
        for url in urls {
            views.push(topics_of(url).await);
        }
        if let Some(Some(first)) = views.first()
            && views.iter().all(|v| v.as_ref() == Some(first))
        {
            return first.clone();
        }
        let sizes: Vec<Option<usize>> = views
            .iter()
            .map(|v| v.as_ref().map(BTreeMap::len))
            .collect();
        assert!(
            Instant::now() < deadline,
            "the nodes never agreed on the topics; topics per node: {sizes:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metadata_survives_kills_pauses_and_cut_links() {
    let seed = env_number("RAPIDMQ_CLUSTER_FAULT_SEED").unwrap_or_else(rand::random);
    let secs = env_number("RAPIDMQ_CLUSTER_FAULT_SECS").unwrap_or(DEFAULT_FAULT_SECS);
    println!("cluster faults: seed {seed}, {secs} s of faults");
    let mut schedule = StdRng::seed_from_u64(seed);
    let mut cluster = ProxiedCluster::start(&[]).await;

    let attempts = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(create_topics(
                Arc::clone(&cluster.urls),
                Arc::clone(&attempts),
                Arc::clone(&next),
                StdRng::seed_from_u64(schedule.random()),
                Arc::clone(&stop),
            ))
        })
        .collect();

    let end = Instant::now() + Duration::from_secs(secs);
    let mut faults: BTreeMap<&str, u32> = BTreeMap::new();
    while Instant::now() < end {
        let fault = NemesisFault::next(&mut schedule);
        cluster.begin(&fault);
        tokio::time::sleep(fault.hold).await;
        cluster.end(&fault);
        *faults.entry(fault.name()).or_default() += 1;
        tokio::time::sleep(fault.quiet).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("a client task");
    }
    println!("faults: {faults:?}");

    let urls = cluster.urls();
    let topics = converged(&urls).await;
    let attempts = attempts.lock().unwrap().clone();
    let count = |o: Outcome| attempts.iter().filter(|a| a.outcome == o).count();
    println!(
        "{} attempts: {} acked, {} refused as existing, {} unknown; {} topics on every node",
        attempts.len(),
        count(Outcome::Acked),
        count(Outcome::AlreadyExists),
        count(Outcome::Unknown),
        topics.len()
    );
    assert!(
        count(Outcome::Acked) >= 10,
        "too few creates succeeded to check anything: {attempts:?}"
    );

    let mut problems = Vec::new();
    let attempted: BTreeMap<u64, &Attempt> = attempts.iter().map(|a| (a.marker, a)).collect();
    for attempt in attempts.iter().filter(|a| a.outcome != Outcome::Unknown) {
        let winner = topics.get(&attempt.name).map(|(marker, _)| *marker);
        match attempt.outcome {
            Outcome::Acked if winner != Some(attempt.marker) => problems.push(format!(
                "create of {} (marker {}) through node {} was acked, but the topic is {winner:?}",
                attempt.name,
                attempt.marker,
                attempt.node + 1
            )),
            Outcome::AlreadyExists if winner == Some(attempt.marker) => problems.push(format!(
                "create of {} (marker {}) was refused as existing, yet it is the topic",
                attempt.name, attempt.marker
            )),
            _ => {}
        }
    }
    for (name, (marker, _)) in &topics {
        match attempted.get(marker) {
            Some(attempt) if attempt.name == *name => {}
            _ => problems.push(format!(
                "{name} (marker {marker}) exists, but no client attempted it"
            )),
        }
    }
    let names: BTreeSet<&str> = attempts.iter().map(|a| a.name.as_str()).collect();
    println!("{} names attempted", names.len());
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
