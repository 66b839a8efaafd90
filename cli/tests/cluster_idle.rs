//! Many idle partitions on three real `rapidmq serve` processes (issue 17, ADR 5 §4): topics
//! totalling `RAPIDMQ_IDLE_PARTITIONS` partitions (replication factor 3, so every node runs a
//! replica of every group) are created, every group gets a leader, and then nothing happens
//! for `RAPIDMQ_IDLE_SECONDS`. Over that hold:
//!
//! - no partition group elects (`rapidmq_cluster_partition_elections_total`, terms started) or
//!   changes leader (`rapidmq_cluster_partition_leader_changes_total`) on any node, and every
//!   group still knows its leader at every scrape (`rapidmq_cluster_partition_groups_leaderless`);
//! - each node's raft batches to each peer stay within [`RPCS_PER_TICK`] per heartbeat
//!   interval (300 ms), however many groups it leads: heartbeats of all groups to one peer are
//!   coalesced (`cluster/network.rs`, `Groups::drive_heartbeats`).
//!
//! It prints, per node, the RPC and raft message rates per peer and the CPU the process used
//! (from `/proc/<pid>/stat`). `make test` runs 300 partitions for 20 s; `make cluster-idle`
//! 1000 for 600 s (the result is recorded in docs/clustering.md, "Many partitions").
//!
//! Every wait polls until the condition holds, bounded; the hold itself is the measurement.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{start_nodes, while_unavailable};
use common::{BrokerOptions, PATIENCE, TestBroker, connect, topic_config};
use rapidmq_proto::v1 as pb;

/// Topics the partitions are spread over.
const TOPICS: u32 = 10;
/// The heartbeat interval of every group (`cluster/service.rs` `HEARTBEAT`, the default
/// `cluster.heartbeat_ms`).
const HEARTBEAT: Duration = Duration::from_millis(300);
/// Raft batches a node may send one peer per heartbeat interval while idle. The node's
/// heartbeat task asks all its leaders at once; their heartbeats reach the peer queue over a
/// few milliseconds, and the peer's sender sends what is queued whenever no RPC is in flight:
/// the first heartbeat of a round alone, the rest in the next one or two. Four is the bound,
/// whatever the number of groups; a thousand uncoalesced groups would send hundreds.
const RPCS_PER_TICK: f64 = 4.0;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The node's `/metrics` text.
async fn scrape(client: &reqwest::Client, node: &TestBroker) -> String {
    client
        .get(format!("{}/metrics", node.http_url()))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("a metrics body")
}

/// The value of the sample `series` (name and labels as exported) in `metrics`, 0 if absent.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// What one node reports, and the CPU its process used so far.
#[derive(Debug, Clone, Default)]
struct Figures {
    groups: f64,
    leaderless: f64,
    leading: f64,
    leader_changes: f64,
    elections: f64,
    /// `(peer, rpcs, raft messages)` sent to each other node.
    traffic: Vec<(u64, f64, f64)>,
    cpu_seconds: f64,
}

async fn figures(client: &reqwest::Client, node: &TestBroker, me: u64) -> Figures {
    let text = scrape(client, node).await;
    let traffic = (1..=3)
        .filter(|peer| *peer != me)
        .map(|peer| {
            let rpcs = sample(
                &text,
                &format!("rapidmq_cluster_rpcs_total{{peer=\"{peer}\"}}"),
            );
            let messages = sample(
                &text,
                &format!("rapidmq_cluster_raft_messages_total{{peer=\"{peer}\"}}"),
            );
            (peer, rpcs, messages)
        })
        .collect();
    Figures {
        groups: sample(&text, "rapidmq_cluster_partition_groups"),
        leaderless: sample(&text, "rapidmq_cluster_partition_groups_leaderless"),
        leading: sample(&text, "rapidmq_cluster_partition_groups_leading"),
        leader_changes: sample(&text, "rapidmq_cluster_partition_leader_changes_total"),
        elections: sample(&text, "rapidmq_cluster_partition_elections_total"),
        traffic,
        cpu_seconds: cpu_seconds(node),
    }
}

/// User plus system CPU time of the node's process, from `/proc/<pid>/stat` (clock ticks of
/// 1/100 s, Linux's `USER_HZ`).
fn cpu_seconds(node: &TestBroker) -> f64 {
    let pid = node.pid().expect("the node runs");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let after = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_partition_groups_neither_elect_nor_send_more_than_heartbeats() {
    let partitions = env_or("RAPIDMQ_IDLE_PARTITIONS", 300).max(u64::from(TOPICS)) as u32;
    let hold = Duration::from_secs(env_or("RAPIDMQ_IDLE_SECONDS", 20));
    let per_topic = partitions / TOPICS;
    let partitions = per_topic * TOPICS;
    // The broker's own logs as in production; the test harness's default also logs openraft at
    // info, a line per election step and failed heartbeat of every group: with a thousand groups
    // that alone kept two debug-build cores busy enough to delay heartbeats.
    let nodes = start_nodes(3, |_| BrokerOptions {
        env: vec![("RAPIDMQ_LOG".into(), "rapidmq=info,openraft=warn".into())],
        ..BrokerOptions::default()
    });
    let client = reqwest::Client::new();

    let started = Instant::now();
    let clients = connect(&nodes[0]).await;
    for topic in 0..TOPICS {
        let mut config = topic_config(per_topic);
        config.replication_factor = Some(3);
        let request = pb::CreateTopicRequest {
            name: format!("idle-{topic}"),
            config: Some(config),
        };
        while_unavailable("create topic", || {
            let mut admin = clients.admin.clone();
            let request = request.clone();
            async move { admin.create_topic(request).await }
        })
        .await
        .unwrap_or_else(|status| panic!("create topic idle-{topic}: {status:?}"));
    }

    // Every node runs every group, each knows a leader. Starting a thousand groups takes a
    // while on a shared two-core machine: the bound grows with the count.
    let deadline = Instant::now() + PATIENCE + Duration::from_millis(60 * u64::from(partitions));
    loop {
        let mut all = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            all.push(figures(&client, node, i as u64 + 1).await);
        }
        if all
            .iter()
            .all(|f| f.groups == f64::from(partitions) && f.leaderless == 0.0)
        {
            break;
        }
        if Instant::now() >= deadline {
            panic!("not every one of {partitions} groups has a leader on every node: {all:#?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "{partitions} partition groups led on all 3 nodes after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut before = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        before.push(figures(&client, node, i as u64 + 1).await);
    }
    let hold_started = Instant::now();
    // Scrape every few seconds: a group that loses its leader even briefly shows here.
    while hold_started.elapsed() < hold {
        let step = (hold - hold_started.elapsed()).min(Duration::from_secs(5));
        tokio::time::sleep(step).await;
        for (i, node) in nodes.iter().enumerate() {
            let now = figures(&client, node, i as u64 + 1).await;
            assert_eq!(
                now.leaderless,
                0.0,
                "node {} has leaderless groups {:.0} s into the hold: {now:?}",
                i + 1,
                hold_started.elapsed().as_secs_f64()
            );
        }
    }
    let seconds = hold_started.elapsed().as_secs_f64();
    let bound = RPCS_PER_TICK / HEARTBEAT.as_secs_f64();
    println!("held {seconds:.0} s idle; bound {bound:.1} RPCs per peer per second");
    let mut failures = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let id = i as u64 + 1;
        let (then, now) = (&before[i], figures(&client, node, id).await);
        let cpu = (now.cpu_seconds - then.cpu_seconds) / seconds * 100.0;
        println!(
            "node {id}: elections {} leader changes {} groups {} leading {} leaderless {} cpu {cpu:.1}%",
            now.elections - then.elections,
            now.leader_changes - then.leader_changes,
            now.groups,
            now.leading,
            now.leaderless,
        );
        if now.elections != then.elections || now.leader_changes != then.leader_changes {
            failures.push(format!("node {id} saw elections during the hold"));
        }
        if now.groups != f64::from(partitions) || now.leaderless != 0.0 {
            failures.push(format!("node {id} does not run every group led: {now:?}"));
        }
        for ((peer, rpcs, messages), (_, rpcs0, messages0)) in now.traffic.iter().zip(&then.traffic)
        {
            let rate = (rpcs - rpcs0) / seconds;
            let carried = (messages - messages0) / seconds;
            println!(
                "node {id} -> {peer}: {rate:.2} RPCs/s, {carried:.1} raft messages/s ({:.2} per group led per second)",
                carried / now.leading.max(1.0)
            );
            // Each group this node leads heartbeats at least once per minimum election
            // timeout (1.5 s), or its followers would start elections.
            if carried < now.leading / 1.5 {
                failures.push(format!(
                    "node {id} sent {carried:.1} messages/s to node {peer} for {} groups led: heartbeats fall behind",
                    now.leading
                ));
            }
            if rate > bound {
                failures.push(format!(
                    "node {id} sent {rate:.2} RPCs/s to node {peer}, above {bound:.1}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
