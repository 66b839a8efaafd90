//! Cluster mode with real processes: three `rapidmq serve` nodes, each with its own data
//! directory, form the metadata group, register in the node table, elect a new leader when the
//! leader is killed (`kill -9`), and take the old leader back when it restarts.
//!
//! Every wait polls `GET /v1/cluster` of the running nodes until the condition holds, bounded
//! by `PATIENCE`; no fixed sleep.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::cluster::{agreed_leader, cluster_cli_ok, free_ports, peer_list, start_node, status};
use common::{PATIENCE, TestBroker};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_elect_register_fail_over_and_rejoin() {
    let peers = peer_list(&free_ports(3));
    let mut nodes: Vec<TestBroker> = (1..=3u64).map(|id| start_node(id, &peers)).collect();
    let client = reqwest::Client::new();
    let all: BTreeSet<u64> = [1, 2, 3].into();

    let (leader, statuses) = agreed_leader(
        &client,
        "http",
        &nodes.iter().collect::<Vec<_>>(),
        &all,
        None,
    )
    .await;
    assert_eq!(statuses[0]["mode"], "cluster");
    for node in &nodes {
        let log = node.log();
        assert_eq!(
            log.matches("cluster listener is unauthenticated").count(),
            1,
            "TLS off: one warning at start; log: {log}"
        );
    }
    let term = statuses[0]["term"].as_u64().unwrap();
    println!("three nodes agree: leader {leader}, term {term}");
    // The broker's own status names the node it runs as.
    for (i, node) in nodes.iter().enumerate() {
        assert_eq!(
            broker_status(&client, node).await["node_id"],
            (i + 1).to_string()
        );
    }

    // kill -9 the leader: the other two elect a new one.
    let killed = (leader - 1) as usize;
    nodes[killed].kill();
    let failover = Instant::now();
    let survivors: Vec<&TestBroker> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != killed)
        .map(|(_, n)| n)
        .collect();
    let (new_leader, statuses) =
        agreed_leader(&client, "http", &survivors, &all, Some(leader)).await;
    let failover = failover.elapsed();
    println!(
        "failover: node {new_leader} leads {} ms after node {leader} was killed",
        failover.as_millis()
    );
    assert!(statuses.iter().all(|s| s["term"].as_u64().unwrap() > term));
    assert!(
        failover < Duration::from_secs(15),
        "failover took {failover:?}"
    );

    // The new leader says so in its metrics; a survivor counts the change it saw.
    let metrics = scrape(&client, &nodes[(new_leader - 1) as usize]).await;
    assert_eq!(
        sample(&metrics, "rapidmq_cluster_leader{group=\"metadata\"}"),
        Some(1.0),
        "{metrics}"
    );
    let follower = survivors
        .iter()
        .find(|n| n.grpc_addr() != nodes[(new_leader - 1) as usize].grpc_addr())
        .expect("a surviving follower");
    let metrics = scrape(&client, follower).await;
    assert_eq!(
        sample(&metrics, "rapidmq_cluster_leader{group=\"metadata\"}"),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "rapidmq_cluster_has_leader{group=\"metadata\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            "rapidmq_cluster_leader_changes_total{group=\"metadata\"}"
        ) >= Some(1.0),
        "the follower saw node {leader} give way to node {new_leader}: {metrics}"
    );

    // The old leader restarts (new client ports, same data) and rejoins: the same leader, the
    // whole table with its new addresses.
    nodes[killed].start_again();
    let (rejoined, statuses) = agreed_leader(
        &client,
        "http",
        &nodes.iter().collect::<Vec<_>>(),
        &all,
        None,
    )
    .await;
    assert_eq!(
        rejoined, new_leader,
        "the restarted node follows the new leader"
    );
    let me = statuses
        .iter()
        .find(|s| s["node_id"].as_u64() == Some(leader))
        .expect("the restarted node answers");
    println!("node {leader} rejoined: {me}");

    // The leader sees both followers caught up; the dashboard's overview carries the group.
    let leader_node = &nodes[(new_leader - 1) as usize];
    let deadline = Instant::now() + PATIENCE;
    loop {
        let metrics = scrape(&client, leader_node).await;
        let lags: Vec<Option<f64>> = (1..=3u64)
            .filter(|id| *id != new_leader)
            .map(|id| {
                sample(
                    &metrics,
                    &format!("rapidmq_cluster_replication_lag{{group=\"metadata\",peer=\"{id}\"}}"),
                )
            })
            .collect();
        if lags.iter().all(|lag| *lag == Some(0.0)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "followers' replication lag never reached 0: {lags:?}\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The CLI reads the same status over gRPC (Admin.GetClusterStatus), as JSON and as a table.
    let node = &nodes[killed];
    let json = cli_status(node, &["--output", "json"]);
    let json: Value = serde_json::from_str(&json).expect("cluster status --output json is JSON");
    assert_eq!(json["mode"], "cluster");
    assert_eq!(json["node_id"].as_u64(), Some(leader));
    assert_eq!(json["leader_id"].as_u64(), Some(new_leader));
    assert_eq!(json["nodes"].as_array().map(Vec::len), Some(3));
    assert_eq!(json["nodes"][killed]["grpc_addr"], node.grpc_addr());
    // Every node names the same cluster id: the one the founding nodes derived from `--peers`.
    let id = json["cluster_id"]
        .as_str()
        .expect("a cluster id")
        .to_string();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    for other in &nodes {
        let json: Value = serde_json::from_str(&cli_status(other, &["--output", "json"]))
            .expect("cluster status --output json is JSON");
        assert_eq!(json["cluster_id"].as_str(), Some(id.as_str()), "{json}");
    }
    let table = cli_status(node, &[]);
    println!("{table}");
    assert!(table.contains("leader"), "{table}");
    assert!(
        table.contains(&id),
        "the table shows the cluster id: {table}"
    );
}

/// The node's `/metrics` text.
async fn scrape(client: &reqwest::Client, node: &TestBroker) -> String {
    client
        .get(format!("{}/metrics", node.http_url()))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("a metrics body")
}

/// The value of the sample `series` (name and labels as exported) in `metrics`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

fn cli_status(node: &TestBroker, extra: &[&str]) -> String {
    cluster_cli_ok(node, &[&["status"], extra].concat())
}

#[test]
fn single_node_mode_says_so() {
    let broker = TestBroker::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let body = runtime
        .block_on(status(&reqwest::Client::new(), &broker, "http"))
        .expect("GET /v1/cluster answers");
    assert_eq!(body["mode"], "single-node");
    assert!(body["node_id"].is_null());
    let status = runtime.block_on(broker_status(&reqwest::Client::new(), &broker));
    assert_eq!(status["node_id"], "single");
    let json = cli_status(&broker, &["--output", "json"]);
    let json: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(json["mode"], "single-node");
    assert!(cli_status(&broker, &[]).contains("single node"));
}

#[test]
fn bad_peers_are_refused_with_the_reason() {
    let output = rapidmq_testkit::cli_command()
        .args([
            "serve",
            "--node-id",
            "4",
            "--peers",
            "1=127.0.0.1:7001",
            "--check-config",
        ])
        .output()
        .expect("run rapidmq");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("node_id 4 is not one of cluster.peers"),
        "{stderr}"
    );
}

/// `GET /v1/status` of `node`.
async fn broker_status(client: &reqwest::Client, node: &TestBroker) -> Value {
    client
        .get(format!("{}/v1/status", node.http_url()))
        .send()
        .await
        .expect("GET /v1/status")
        .json()
        .await
        .expect("GET /v1/status is JSON")
}
