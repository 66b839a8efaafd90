//! Leadership returning to the preferred replica, with three real `rapidmq serve` processes: a
//! topic of 6 partitions (replication factor 3) starts with every partition led by its first
//! replica; one node is killed (`kill -9`), the survivors take over its partitions, and once it
//! is back and caught up its partitions' leadership comes back to it, by the nodes' own periodic
//! round (`cluster.leader_rebalance_interval_ms`), or, with the rounds off, by `rapidmq cluster
//! rebalance-leaders`. Publishing to every partition works throughout (a publish that lands on
//! a leader being handed over or an election is retried while `UNAVAILABLE`) and right after the
//! return.
//!
//! Every wait polls until the condition holds, bounded by `PATIENCE`; no fixed sleep.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{
    cluster_cli_ok, create_cluster_topic, led_by_preferred, publish_retrying, start_nodes,
    topic_metadata,
};
use common::{BrokerOptions, Clients, PATIENCE, TestBroker, connect, msg, topic_config};
use rapidmq_proto::v1 as pb;
use serde_json::Value;

const TOPIC: &str = "spread";
const PARTITIONS: u32 = 6;
/// The node killed and restarted: the preferred leader of two partitions.
const VICTIM: u64 = 2;

/// Three nodes whose periodic leader rounds run every `interval_ms` (0: off), openraft logging
/// warnings only (a line per election step otherwise).
fn cluster(interval_ms: u64) -> Vec<TestBroker> {
    start_nodes(3, |_| BrokerOptions {
        env: vec![
            ("RAPIDMQ_LOG".into(), "rapidmq=info,openraft=warn".into()),
            (
                "RAPIDMQ_CLUSTER__LEADER_REBALANCE_INTERVAL_MS".into(),
                interval_ms.to_string(),
            ),
        ],
        ..BrokerOptions::default()
    })
}

/// Creates the topic through `node`, retrying while the metadata group has no leader.
async fn create(node: &TestBroker) {
    let clients = connect(node).await;
    create_cluster_topic(&clients, TOPIC, topic_config(PARTITIONS)).await;
}

/// The topic's partitions as `node` knows them; none while it has not applied the topic yet.
async fn partitions(node: &TestBroker) -> Vec<pb::PartitionMetadata> {
    topic_metadata(node, TOPIC)
        .await
        .and_then(|answer| answer.topics.into_iter().find(|t| t.name == TOPIC))
        .map(|t| t.partitions)
        .unwrap_or_default()
}

/// Publishes one message to every partition through `clients`, each retried while
/// `UNAVAILABLE` (an election, a hand-over in progress).
async fn publish_everywhere(clients: &Clients, round: &str) {
    for partition in 0..PARTITIONS {
        let request = pb::PublishRequest {
            topic: TOPIC.into(),
            partition,
            batch: common::encode(&[msg("k", format!("{round}-p{partition}"))]),
            ..Default::default()
        };
        publish_retrying(clients, request)
            .await
            .unwrap_or_else(|status| {
                panic!("publish {round} to partition {partition}: {status:?}")
            });
    }
}

/// Publishes one message to every partition through `clients`, no retry: the leaders are
/// settled.
async fn publish_once_everywhere(clients: &mut Clients, round: &str) {
    for partition in 0..PARTITIONS {
        let message = msg("k", format!("{round}-p{partition}"));
        common::publish(clients, TOPIC, partition, &[message])
            .await
            .unwrap_or_else(|status| {
                panic!("publish {round} to partition {partition}: {status:?}")
            });
    }
}

/// `rapidmq_cluster_leader_transfers_total` of `node`.
async fn transfers(node: &TestBroker) -> u64 {
    let text = reqwest::get(format!("{}/metrics", node.http_url()))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix("rapidmq_cluster_leader_transfers_total "))
        .unwrap_or_else(|| panic!("no leader-transfers counter in:\n{text}"))
        .trim()
        .parse()
        .expect("a count")
}

/// Waits until every node sees every partition led by its preferred replica; with `ask`, runs
/// `rapidmq cluster rebalance-leaders` on that node at every poll (until the replicas caught up
/// a rebalance may start nothing). The partitions then, and the transfers the runs reported.
async fn until_preferred_leaders(
    nodes: &[TestBroker],
    ask: Option<&TestBroker>,
) -> (Vec<pb::PartitionMetadata>, u64) {
    let deadline = Instant::now() + PATIENCE;
    let mut started = 0;
    loop {
        if let Some(node) = ask {
            let answer: Value = serde_json::from_str(&cluster_cli_ok(
                node,
                &["rebalance-leaders", "--output", "json"],
            ))
            .expect("JSON");
            started += answer["transfers"].as_u64().expect("transfers");
            assert_eq!(answer["unreachable"], serde_json::json!([]), "{answer}");
        }
        let mut seen = Vec::new();
        for node in nodes {
            seen.push(partitions(node).await);
        }
        let settled = |p: &Vec<pb::PartitionMetadata>| {
            p.len() == PARTITIONS as usize && p.iter().all(led_by_preferred)
        };
        if seen.iter().all(settled) {
            return (seen.swap_remove(0), started);
        }
        if Instant::now() >= deadline {
            for (i, node) in nodes.iter().enumerate() {
                eprintln!("--- node {} log ---\n{}", i + 1, node.log());
            }
            panic!("leadership not with the preferred replicas within {PATIENCE:?}: {seen:#?}");
        }
        tokio::time::sleep(Duration::from_millis(if ask.is_some() { 500 } else { 100 })).await;
    }
}

/// Waits until the survivors, asked, agree that none of them is leaderless and `VICTIM` leads
/// nothing.
async fn until_survivors_lead(survivors: &[&TestBroker]) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut seen = Vec::new();
        for node in survivors {
            seen.push(partitions(node).await);
        }
        let taken_over = |p: &Vec<pb::PartitionMetadata>| {
            p.len() == PARTITIONS as usize && p.iter().all(|p| p.leader != 0 && p.leader != VICTIM)
        };
        if seen.iter().all(taken_over) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the survivors did not take over within {PATIENCE:?}: {seen:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts the cluster (leader rounds every `interval_ms`, 0: off, then `rebalance-leaders` on
/// node 1 settles the first leaders), waits until every partition is led by its preferred
/// replica, kills [`VICTIM`], waits until the survivors lead its partitions, publishes, and
/// restarts it. The nodes, and the partitions the victim prefers.
async fn fail_over_and_restart(interval_ms: u64) -> (Vec<TestBroker>, Vec<u32>) {
    let mut nodes = cluster(interval_ms);
    create(&nodes[0]).await;
    let ask = (interval_ms == 0).then_some(&nodes[0]);
    let (placed, _) = until_preferred_leaders(&nodes, ask).await;
    let preferred: Vec<u32> = placed
        .iter()
        .filter(|p| p.replicas[0] == VICTIM)
        .map(|p| p.partition)
        .collect();
    assert!(
        !preferred.is_empty(),
        "node {VICTIM} prefers no partition: {placed:?}"
    );
    publish_everywhere(&connect(&nodes[0]).await, "before").await;

    eprintln!("killing node {VICTIM}, preferred leader of partitions {preferred:?}");
    nodes[VICTIM as usize - 1].kill();
    until_survivors_lead(&[&nodes[0], &nodes[2]]).await;
    publish_everywhere(&connect(&nodes[0]).await, "failed-over").await;

    tokio::task::block_in_place(|| nodes[VICTIM as usize - 1].start_again());
    (nodes, preferred)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_returns_to_the_restarted_preferred_replica_on_its_own() {
    let (nodes, preferred) = fail_over_and_restart(500).await;
    let publishing = async {
        // Publishing carries on while leadership moves back.
        let clients = connect(&nodes[0]).await;
        for round in 0..3 {
            publish_everywhere(&clients, &format!("returning-{round}")).await;
        }
    };
    let (_, (back, _)) = tokio::join!(publishing, until_preferred_leaders(&nodes, None));
    for p in back.iter().filter(|p| preferred.contains(&p.partition)) {
        assert_eq!(p.leader, VICTIM, "{p:?}");
    }
    publish_once_everywhere(&mut connect(&nodes[2]).await, "returned").await;
    let started = transfers(&nodes[0]).await + transfers(&nodes[2]).await;
    assert!(started >= 1, "the survivors started no transfer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_leaders_hands_leadership_back_when_the_rounds_are_off() {
    let (nodes, preferred) = fail_over_and_restart(0).await;
    // Asked through the restarted node, which asks the survivors (they lead its partitions).
    let victim = &nodes[VICTIM as usize - 1];
    let (back, started) = until_preferred_leaders(&nodes, Some(victim)).await;
    for p in back.iter().filter(|p| preferred.contains(&p.partition)) {
        assert_eq!(p.leader, VICTIM, "{p:?}");
    }
    assert!(started >= 1, "rebalance-leaders reported no transfer");
    publish_once_everywhere(&mut connect(&nodes[0]).await, "returned").await;
}
