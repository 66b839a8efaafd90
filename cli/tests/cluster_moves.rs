//! Moving partition replicas with real processes (docs/clustering.md "Moving replicas"): a
//! fourth node is added (`rapidmq cluster add-node`) while a producer publishes, and replicas
//! move to it on their own (`cluster.rebalance_on_join`); then an original node is removed
//! (`rapidmq cluster remove-node`), which first moves every replica off it. After each step
//! every partition's replicas are where `topic describe` says, each holds the same batches, and
//! every acknowledged message is there, once.
//!
//! Every wait polls the nodes until the condition holds, bounded by `PATIENCE`; no fixed sleep.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::cluster::{
    agreed_leader, cluster_cli, cluster_cli_ok, create_cluster_topic, fetch_all, free_ports,
    key_of_each_partition, peer_list, publish_retrying, start_node, start_node_in_env,
};
use common::{PATIENCE, TestBroker, connect, decode, encode, msg, topic_config};
use rapidmq_proto::v1 as pb;
use serde_json::Value;

const TOPIC: &str = "moving";
const PARTITIONS: u32 = 4;

/// Each partition's replicas as `node` describes the topic.
async fn placement(node: &TestBroker) -> Vec<Vec<u64>> {
    let mut clients = connect(node).await;
    let info = clients
        .admin
        .describe_topic(pb::DescribeTopicRequest { name: TOPIC.into() })
        .await
        .expect("describe")
        .into_inner();
    info.partitions.into_iter().map(|p| p.replicas).collect()
}

/// Replicas per node in `placement`.
fn load(placement: &[Vec<u64>]) -> BTreeMap<u64, usize> {
    let mut load = BTreeMap::new();
    for replicas in placement {
        for id in replicas {
            *load.entry(*id).or_default() += 1;
        }
    }
    load
}

/// Waits until `node` says no partition is moving; its status then.
async fn settled(node: &TestBroker) -> Value {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + PATIENCE * 2;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let status = common::cluster::status(&client, node, "http").await;
        if let Some(status) = status.filter(|s| s["moving_partitions"] == 0) {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replica moves did not complete\n{}",
            node.log()
        );
    }
}

/// Reads `rapidmq_cluster_moves_stepping` and `rapidmq_cluster_moves_waiting` from each of
/// `nodes` (HTTP base URLs) every 20 ms until `stop`; the most each node showed of each.
async fn watch_move_slots(
    nodes: Vec<String>,
    stop: Arc<AtomicBool>,
) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
    let client = reqwest::Client::new();
    let (mut stepping, mut waiting) = (BTreeMap::new(), BTreeMap::new());
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        for node in &nodes {
            let Ok(answer) = client.get(format!("{node}/metrics")).send().await else {
                continue;
            };
            let text = answer.text().await.unwrap_or_default();
            for (name, most) in [
                ("rapidmq_cluster_moves_stepping ", &mut stepping),
                ("rapidmq_cluster_moves_waiting ", &mut waiting),
            ] {
                if let Some(value) = text
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .and_then(|v| v.trim().parse::<i64>().ok())
                {
                    let seen = most.entry(node.clone()).or_insert(0);
                    *seen = (*seen).max(value);
                }
            }
        }
    }
    (stepping, waiting)
}

/// Every message of every partition, as each replica of it serves it: asserts the replicas
/// hold the same batches; the `(key, value)`s by partition.
async fn replicated_messages(
    nodes: &BTreeMap<u64, TestBroker>,
    placement: &[Vec<u64>],
) -> Vec<Vec<(String, String)>> {
    let mut all = Vec::new();
    for (p, replicas) in placement.iter().enumerate() {
        // Replicas apply what the leader committed a moment apart: poll until they agree.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let copies = loop {
            tick.tick().await;
            let mut copies = Vec::new();
            for id in replicas {
                let clients = connect(&nodes[id]).await;
                copies.push(fetch_all(&clients, TOPIC, p as u32).await.expect("fetch"));
            }
            if copies.iter().all(|copy| *copy == copies[0]) {
                break copies;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "partition {p}: replicas {replicas:?} hold different batches"
            );
        };
        all.push(
            copies[0]
                .iter()
                .flat_map(decode)
                .map(|r| {
                    (
                        String::from_utf8_lossy(&r.msg.key).into_owned(),
                        String::from_utf8_lossy(&r.msg.value).into_owned(),
                    )
                })
                .collect(),
        );
    }
    all
}

/// Publishes one message to every partition in turn (the client picks the partition) through
/// `clients` until `stop`, retrying each while the cluster answers `UNAVAILABLE`; the values
/// acknowledged, by partition.
async fn publish_until(
    clients: common::Clients,
    stop: Arc<AtomicBool>,
) -> BTreeMap<u32, Vec<String>> {
    let keys = key_of_each_partition(PARTITIONS);
    let mut acked: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for (p, key) in keys.iter().enumerate() {
            let value = format!("m{n}");
            n += 1;
            let request = pb::PublishRequest {
                topic: TOPIC.into(),
                partition: p as u32,
                batch: encode(&[msg(key.clone(), value.clone())]),
                ..Default::default()
            };
            if publish_retrying(&clients, request).await.is_ok() {
                acked.entry(p as u32).or_default().push(value);
            }
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_move_to_an_added_node_and_off_a_removed_one_without_losing_a_write() {
    let ports = free_ports(4);
    let all_peers = peer_list(&ports);
    let three = all_peers.split(',').take(3).collect::<Vec<_>>().join(",");
    // One move at a time per leader, so that the moves queue and go through their slots.
    let one_slot = || {
        vec![(
            "RAPIDMQ_CLUSTER__MAX_CONCURRENT_MOVES".to_string(),
            "1".to_string(),
        )]
    };
    let mut nodes: BTreeMap<u64, TestBroker> = (1..=3u64)
        .map(|id| (id, start_node_in_env(id, &three, &[], one_slot())))
        .collect();
    let client = reqwest::Client::new();
    agreed_leader(
        &client,
        "http",
        &nodes.values().collect::<Vec<_>>(),
        &[1, 2, 3].into(),
        None,
    )
    .await;
    let through_one = connect(&nodes[&1]).await;
    create_cluster_topic(&through_one, TOPIC, topic_config(PARTITIONS)).await;
    let before = placement(&nodes[&1]).await;
    assert_eq!(load(&before), BTreeMap::from([(1, 4), (2, 4), (3, 4)]));

    // A producer publishes through node 2 for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let producer = tokio::spawn(publish_until(connect(&nodes[&2]).await, Arc::clone(&stop)));

    // Node 4 joins; adding it moves replicas to it.
    nodes.insert(4, start_node_in_env(4, &all_peers, &["--join"], one_slot()));
    let watched: Vec<String> = nodes.values().map(TestBroker::http_url).collect();
    let stop_watching = Arc::new(AtomicBool::new(false));
    let slots = tokio::spawn(watch_move_slots(watched, Arc::clone(&stop_watching)));
    let addr4 = format!("127.0.0.1:{}", ports[3]);
    let added = cluster_cli(
        &nodes[&1],
        &[
            "add-node",
            "4",
            "--cluster-addr",
            &addr4,
            "--output",
            "json",
        ],
    );
    assert!(
        added.status.success(),
        "add-node: {}",
        String::from_utf8_lossy(&added.stderr)
    );
    let added: Value = serde_json::from_slice(&added.stdout).expect("JSON");
    assert!(
        added["note"]
            .as_str()
            .is_some_and(|note| note.contains("moving replicas of")),
        "{added:#}"
    );
    for node in nodes.values() {
        settled(node).await;
    }
    let after_join = placement(&nodes[&4]).await;
    println!("placement after node 4 joined: {after_join:?}");
    assert_eq!(
        load(&after_join),
        BTreeMap::from([(1, 3), (2, 3), (3, 3), (4, 3)]),
        "12 replicas over 4 nodes"
    );
    for node in nodes.values() {
        assert_eq!(placement(node).await, after_join, "every node agrees");
    }
    let leads: BTreeSet<u64> = after_join.iter().map(|r| r[0]).collect();
    assert_eq!(
        leads.len(),
        4,
        "one preferred leader on each node: {after_join:?}"
    );
    // Nothing left to do: a rebalance now plans no move.
    let planned = cluster_cli_ok(&nodes[&3], &["rebalance", "--dry-run"]);
    assert!(planned.contains("Nothing to move"), "{planned}");

    // Remove node 1: its replicas move to the others first, then it leaves.
    let removed = cluster_cli(&nodes[&2], &["remove-node", "1"]);
    assert!(
        removed.status.success(),
        "remove-node: {}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let said = String::from_utf8_lossy(&removed.stdout);
    assert!(said.contains("node 1 removed"), "{said}");
    assert!(
        String::from_utf8_lossy(&removed.stderr).contains("off node 1"),
        "progress on stderr: {}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let after_remove = placement(&nodes[&2]).await;
    println!("placement after node 1 left: {after_remove:?}");
    assert!(after_remove.iter().all(|r| !r.contains(&1) && r.len() == 3));
    assert_eq!(
        load(&after_remove),
        BTreeMap::from([(2, 4), (3, 4), (4, 4)])
    );

    stop_watching.store(true, Ordering::Relaxed);
    let (stepping, waiting) = slots.await.expect("slot watcher");
    println!("moves stepping at once, most per node: {stepping:?}; waiting: {waiting:?}");
    assert!(
        stepping.values().all(|&most| most <= 1),
        "a node took steps of more moves at once than its one slot: {stepping:?}"
    );
    assert!(
        stepping.values().any(|&most| most == 1),
        "no node was ever seen moving a replica: {stepping:?}"
    );

    stop.store(true, Ordering::Relaxed);
    let acked = producer.await.expect("producer");
    let total: usize = acked.values().map(Vec::len).sum();
    println!("{total} messages acknowledged during the moves");
    assert!(
        total >= PARTITIONS as usize,
        "the producer got acks: {acked:?}"
    );
    let remaining: BTreeMap<u64, TestBroker> =
        nodes.into_iter().filter(|(id, _)| *id != 1).collect();
    let stored = replicated_messages(&remaining, &after_remove).await;
    for (p, values) in &acked {
        let held: Vec<&str> = stored[*p as usize]
            .iter()
            .map(|(_, v)| v.as_str())
            .collect();
        let mut seen = BTreeSet::new();
        for value in values {
            assert!(
                held.contains(&value.as_str()),
                "partition {p}: acknowledged {value} is not stored; stored: {held:?}"
            );
            seen.insert(value.as_str());
        }
        let duplicated = held.len() - held.iter().collect::<BTreeSet<_>>().len();
        assert_eq!(duplicated, 0, "partition {p}: duplicates in {held:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_replicas_have_nowhere_to_go_is_not_removed() {
    let ports = free_ports(3);
    let peers = peer_list(&ports);
    let nodes: Vec<TestBroker> = (1..=3u64).map(|id| start_node(id, &peers)).collect();
    let client = reqwest::Client::new();
    agreed_leader(
        &client,
        "http",
        &nodes.iter().collect::<Vec<_>>(),
        &[1, 2, 3].into(),
        None,
    )
    .await;
    let clients = connect(&nodes[0]).await;
    create_cluster_topic(&clients, TOPIC, topic_config(2)).await;
    // Three replicas of each partition and three nodes: removing one leaves two.
    let refused = cluster_cli(&nodes[0], &["remove-node", "3"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("only 2 voting nodes would hold them")
            && stderr.contains("INVALID_ARGUMENT"),
        "{stderr}"
    );
    // The server refuses a remove that would leave replicas behind, whoever asks.
    let mut admin = clients.admin.clone();
    let direct = admin
        .remove_node(pb::RemoveNodeRequest { node_id: 3 })
        .await
        .expect_err("refused");
    assert!(
        direct
            .message()
            .contains("still holds replicas of 2 partition(s)"),
        "{direct:?}"
    );
    // Nothing moved, nothing planned for an unknown node.
    assert_eq!(
        load(&placement(&nodes[0]).await),
        BTreeMap::from([(1, 2), (2, 2), (3, 2)])
    );
    let unknown = cluster_cli(&nodes[0], &["rebalance", "--exclude", "9"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("NODE_NOT_FOUND"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}

/// A move waits for its new replica to catch up, so one whose new node is down does not end:
/// `rebalance --timeout` gives up waiting (exit status 1, saying how many partitions are still
/// moving), and the move stays under way for a later rebalance to redirect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_that_cannot_finish_stops_waiting_at_its_timeout() {
    let ports = free_ports(4);
    let peers = peer_list(&ports);
    let mut nodes: Vec<TestBroker> = (1..=4u64).map(|id| start_node(id, &peers)).collect();
    let client = reqwest::Client::new();
    agreed_leader(
        &client,
        "http",
        &nodes.iter().collect::<Vec<_>>(),
        &[1, 2, 3, 4].into(),
        None,
    )
    .await;
    let clients = connect(&nodes[0]).await;
    create_cluster_topic(&clients, TOPIC, topic_config(PARTITIONS)).await;
    // Four partitions with three replicas each over four nodes: one partition holds node 1
    // and not node 4, so excluding node 1 moves that replica to node 4, which is down.
    let before = placement(&nodes[0]).await;
    assert!(
        before.iter().any(|r| r.contains(&1) && !r.contains(&4)),
        "{before:?}"
    );
    nodes[3].kill();
    let waited = cluster_cli(
        &nodes[0],
        &["rebalance", "--exclude", "1", "--timeout", "2s"],
    );
    assert!(!waited.status.success());
    let stderr = String::from_utf8_lossy(&waited.stderr);
    assert!(
        stderr.contains("still moving after 2s") && stderr.contains("the moves go on"),
        "{stderr}"
    );
    let status = cluster_cli_ok(&nodes[1], &["status", "--output", "json"]);
    let status: Value = serde_json::from_str(&status).expect("JSON");
    assert!(
        status["moving_partitions"].as_u64() >= Some(1),
        "the moves are still under way: {status:#}"
    );
}
