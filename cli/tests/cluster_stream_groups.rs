//! Stream consumer groups in a cluster, with three real `rapidmq serve` processes and the Rust
//! SDK: the members of one stream subscription, each connected to a different node, split the
//! topic's partitions between them (none receives a message twice across the group), because
//! every member joins through the node that coordinates the subscription: the leader of the
//! partition its name hashes to. Then that node is killed (`kill -9`); the members join again
//! through the new coordinator and go on splitting the partitions.
//!
//! With more nodes than the replication factor, the coordinator serves the partitions it holds
//! no replica of from their leaders, to SDK members and to REST polls alike.
//!
//! Every wait polls until the condition holds, bounded by `PATIENCE`; no fixed sleep.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::cluster::{
    cluster_cli_ok, create_cluster_topic, free_ports, partition_leader, peer_list,
    preferred_leaders, publish_to_each_partition, start_node_in_env, start_nodes, topic_metadata,
};
use common::{BrokerOptions, PATIENCE, TestBroker, connect, topic_config};
use rapidmq::{Client, Consumer};
use serde_json::Value;

const TOPIC: &str = "events";
const PARTITIONS: u32 = 3;
/// Messages per partition in each phase.
const MESSAGES: usize = 20;

async fn publish(client: &Client, phase: &str) -> BTreeSet<String> {
    publish_to_each_partition(client, TOPIC, PARTITIONS, phase, MESSAGES).await
}

/// Polls both members until together they received every value of `expected`; what each
/// received, value → how many times.
async fn consume(
    members: &[&Consumer],
    expected: &BTreeSet<String>,
) -> Vec<BTreeMap<String, usize>> {
    let mut received = vec![BTreeMap::new(); members.len()];
    let deadline = Instant::now() + PATIENCE;
    loop {
        for (member, seen) in members.iter().zip(&mut received) {
            for message in member
                .poll(100, Duration::from_millis(100))
                .await
                .expect("poll")
            {
                let value = String::from_utf8(message.value.to_vec()).expect("utf-8");
                *seen.entry(value).or_insert(0) += 1;
            }
        }
        let all: BTreeSet<&String> = received.iter().flat_map(|r| r.keys()).collect();
        if expected.iter().all(|v| all.contains(v)) {
            return received;
        }
        assert!(
            Instant::now() < deadline,
            "the group received {} of {} messages",
            all.len(),
            expected.len()
        );
    }
}

/// Waits until the members' assignments split the partitions: disjoint, all covered.
async fn split(members: &[&Consumer]) -> Vec<Vec<u32>> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        // Polling drives nothing here (the session task runs on its own); it only waits.
        let assignments: Vec<Vec<u32>> = members.iter().map(|m| m.assignment()).collect();
        let total: usize = assignments.iter().map(Vec::len).sum();
        let union: BTreeSet<u32> = assignments.iter().flatten().copied().collect();
        if total == PARTITIONS as usize && union.len() == PARTITIONS as usize {
            return assignments;
        }
        assert!(
            Instant::now() < deadline,
            "the members never split the partitions: {assignments:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_through_different_nodes_split_the_partitions_and_follow_the_coordinator() {
    let mut nodes = start_nodes(3, |_| BrokerOptions {
        env: vec![(
            "RAPIDMQ_CLUSTER__LEADER_REBALANCE_INTERVAL_MS".into(),
            "0".into(),
        )],
        ..BrokerOptions::default()
    });
    let clients = connect(&nodes[0]).await;
    create_cluster_topic(&clients, TOPIC, topic_config(PARTITIONS)).await;
    let leaders = preferred_leaders(&nodes, TOPIC, PARTITIONS).await;
    eprintln!("partition leaders: {leaders:?}");
    // A subscription coordinated by node 3, so that killing it leaves both members' seeds up.
    let subscription = (0..)
        .map(|i| format!("group-{i}"))
        .find(|name| {
            let p = rapidmq_proto::partition_for_key(name.as_bytes(), PARTITIONS);
            leaders[p as usize] == 3
        })
        .expect("a name that hashes to a partition node 3 leads");
    eprintln!("subscription {subscription}, coordinated by node 3");

    let through_1 = Client::connect(nodes[0].grpc_url()).await.expect("connect");
    let through_2 = Client::connect(nodes[1].grpc_url()).await.expect("connect");
    let subscribe = |client: &Client, name: &'static str| {
        client
            .consumer(TOPIC)
            .subscription(subscription.clone())
            .consumer_name(name)
            .subscribe()
    };
    let a = subscribe(&through_1, "a")
        .await
        .expect("subscribe through node 1");
    let b = subscribe(&through_2, "b")
        .await
        .expect("subscribe through node 2");
    let members = [&a, &b];
    let assignments = split(&members).await;
    eprintln!("assignments: {assignments:?}");

    let sent = publish(&through_1, "before").await;
    let received = consume(&members, &sent).await;
    for (member, seen) in received.iter().enumerate() {
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "member {member} received {twice:?} more than once"
        );
    }
    let both: Vec<&String> = received[0]
        .keys()
        .filter(|v| received[1].contains_key(*v))
        .collect();
    assert!(
        both.is_empty(),
        "both members received {} messages, e.g. {:?}: they did not split the partitions",
        both.len(),
        both.first()
    );

    // The coordinator dies: both join again through the new one and split the partitions.
    eprintln!("killing node 3");
    let reconnects: Vec<u64> = members.iter().map(|m| m.stats().reconnects).collect();
    nodes[2].kill();
    let deadline = Instant::now() + PATIENCE;
    while members
        .iter()
        .zip(&reconnects)
        .any(|(m, before)| m.stats().reconnects == *before)
    {
        assert!(
            Instant::now() < deadline,
            "a member never noticed the coordinator die"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let assignments = split(&members).await;
    eprintln!("assignments after the kill: {assignments:?}");
    let sent = publish(&through_1, "after").await;
    let received = consume(&members, &sent).await;
    let got: BTreeSet<&String> = received.iter().flat_map(|r| r.keys()).collect();
    assert!(
        sent.iter().all(|v| got.contains(v)),
        "every message after the kill arrived"
    );
    a.close().await.expect("close a");
    b.close().await.expect("close b");
}

/// A subscription through `client` as member `name`, once it is assigned all `partitions`.
async fn sole_member(
    client: &Client,
    topic: &str,
    subscription: &str,
    partitions: u32,
) -> Consumer {
    let member = client
        .consumer(topic)
        .subscription(subscription)
        .consumer_name("sole")
        .auto_commit(true)
        .subscribe()
        .await
        .expect("subscribe");
    let deadline = Instant::now() + PATIENCE;
    while member.assignment().len() != partitions as usize {
        assert!(
            Instant::now() < deadline,
            "the member was never assigned every partition: {:?}",
            member.assignment()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    member
}

/// With more nodes than the replication factor, the node that coordinates a subscription
/// holds no replica of some partitions: its member still gets every message of those (read
/// from their leaders), and a member that joins again resumes from the offsets the group
/// committed on them rather than from the subscription's start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_without_a_replica_serves_those_partitions_from_their_leaders() {
    const WIDE: &str = "wide";
    const WIDE_PARTITIONS: u32 = 4;
    let nodes = start_nodes(4, |_| BrokerOptions {
        env: vec![(
            "RAPIDMQ_CLUSTER__LEADER_REBALANCE_INTERVAL_MS".into(),
            "0".into(),
        )],
        ..BrokerOptions::default()
    });
    let clients = connect(&nodes[0]).await;
    let mut config = topic_config(WIDE_PARTITIONS);
    config.replication_factor = Some(3);
    let created = create_cluster_topic(&clients, WIDE, config).await;
    let subscription = "group-0";
    let coordinating = rapidmq_proto::partition_for_key(subscription.as_bytes(), WIDE_PARTITIONS);
    // Asked of a replica: a node that is not one does not follow the group's elections.
    let replica = created.partitions[coordinating as usize].replicas[0];
    let coordinator = partition_leader(
        &connect(&nodes[replica as usize - 1]).await,
        WIDE,
        coordinating,
    )
    .await;
    let outside: Vec<u32> = created
        .partitions
        .iter()
        .filter(|p| !p.replicas.contains(&coordinator))
        .map(|p| p.partition)
        .collect();
    eprintln!("coordinator node {coordinator} holds no replica of partitions {outside:?}");
    assert!(
        !outside.is_empty(),
        "RF 3 of 4 nodes leaves the coordinator out of some partition"
    );

    let client = Client::connect(nodes[0].grpc_url()).await.expect("connect");
    let member = sole_member(&client, WIDE, subscription, WIDE_PARTITIONS).await;
    let sent = publish_to_each_partition(&client, WIDE, WIDE_PARTITIONS, "first", MESSAGES).await;
    let received = consume(&[&member], &sent).await;
    let twice: Vec<_> = received[0].iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "received more than once: {twice:?}");
    member
        .close()
        .await
        .expect("close, committing what it received");

    // Joined again: only what was published since.
    let sent = publish_to_each_partition(&client, WIDE, WIDE_PARTITIONS, "second", MESSAGES).await;
    let member = sole_member(&client, WIDE, subscription, WIDE_PARTITIONS).await;
    let received = consume(&[&member], &sent).await;
    let again: Vec<&String> = received[0].keys().filter(|v| !sent.contains(*v)).collect();
    assert!(
        again.is_empty(),
        "{} messages of before were delivered again, e.g. {:?}",
        again.len(),
        again.first()
    );
    member.close().await.expect("close");

    // REST polls through the coordinator read those partitions from their leaders too, from
    // the committed offsets, and their commits move the group's offsets.
    let sent = publish_to_each_partition(&client, WIDE, WIDE_PARTITIONS, "third", MESSAGES).await;
    let rest = &nodes[coordinator as usize - 1];
    let received = rest_poll_until(rest, WIDE, subscription, &sent).await;
    let twice: Vec<_> = received.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "REST received more than once: {twice:?}");
    let stale: Vec<&String> = received.keys().filter(|v| !sent.contains(*v)).collect();
    assert!(
        stale.is_empty(),
        "REST got messages committed before, e.g. {:?}",
        stale.first()
    );
}

/// Long-polls stream subscription `subscription` of `topic` over `node`'s REST API, committing
/// what each poll returned, until every value of `expected` arrived; value → times received.
async fn rest_poll_until(
    node: &TestBroker,
    topic: &str,
    subscription: &str,
    expected: &BTreeSet<String>,
) -> BTreeMap<String, usize> {
    let http = reqwest::Client::new();
    let base = format!(
        "{}/v1/topics/{topic}/subscriptions/{subscription}",
        node.http_url()
    );
    let mut received = BTreeMap::new();
    let deadline = Instant::now() + PATIENCE;
    while !expected.iter().all(|v| received.contains_key(v)) {
        assert!(
            Instant::now() < deadline,
            "REST polls received {} of {} messages",
            received.len(),
            expected.len()
        );
        let answer: Value = http
            .get(format!("{base}/messages?max=1000&wait_ms=500"))
            .send()
            .await
            .expect("poll")
            .error_for_status()
            .expect("poll answered")
            .json()
            .await
            .expect("poll JSON");
        for message in answer["messages"].as_array().expect("messages") {
            let value = message["value"]
                .as_str()
                .expect("a UTF-8 value")
                .to_string();
            *received.entry(value).or_insert(0) += 1;
        }
        let commit = &answer["commit"];
        if !commit.as_array().expect("commit").is_empty() {
            http.post(format!("{base}/commit"))
                .json(&serde_json::json!({ "offsets": commit }))
                .send()
                .await
                .expect("commit")
                .error_for_status()
                .expect("commit answered");
        }
    }
    received
}

/// A replica that moves off the node coordinating a subscription: the member's session on that
/// node goes on delivering the partition, read from its leader from where it was, without the
/// member joining again. Node 4 joins a 3-node cluster (no rebalance on join, no automatic
/// leader transfers); the subscription is named so that its coordinator loses a replica of
/// another partition in the rebalance that follows and keeps the one it leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_follows_a_replica_that_moves_off_its_node() {
    const MOVING: &str = "moving";
    const MOVING_PARTITIONS: u32 = 3;
    let ports = free_ports(4);
    let all = peer_list(&ports);
    let three = all.split(',').take(3).collect::<Vec<_>>().join(",");
    let start = |id: u64, peers: &str, extra: &[&str]| {
        let env = [
            ("RAPIDMQ_CLUSTER__LEADER_REBALANCE_INTERVAL_MS", "0"),
            ("RAPIDMQ_CLUSTER__REBALANCE_ON_JOIN", "false"),
        ];
        let env = env.map(|(k, v)| (k.to_string(), v.to_string()));
        start_node_in_env(id, peers, extra, env.to_vec())
    };
    let mut nodes: Vec<TestBroker> = (1..=3).map(|id| start(id, &three, &[])).collect();
    let clients = connect(&nodes[0]).await;
    let mut config = topic_config(MOVING_PARTITIONS);
    config.replication_factor = Some(3);
    create_cluster_topic(&clients, MOVING, config).await;
    let leaders = preferred_leaders(&nodes, MOVING, MOVING_PARTITIONS).await;
    nodes.push(start(4, &all, &["--join"]));
    cluster_cli_ok(
        &nodes[0],
        &[
            "add-node",
            "4",
            "--cluster-addr",
            &format!("127.0.0.1:{}", ports[3]),
        ],
    );

    // Which node loses a replica of which partition, and keeps the partition it leads.
    let planned: Value = serde_json::from_str(&cluster_cli_ok(
        &nodes[0],
        &["rebalance", "--dry-run", "--output", "json"],
    ))
    .expect("JSON");
    let lost: Vec<(u32, u64)> = planned["moves"]
        .as_array()
        .expect("moves")
        .iter()
        .flat_map(|m| {
            let ids = |key: &str| -> BTreeSet<u64> {
                m[key]
                    .as_array()
                    .expect("node ids")
                    .iter()
                    .map(|id| id.as_u64().expect("node id"))
                    .collect()
            };
            let partition = m["partition"].as_u64().expect("partition") as u32;
            let (from, to) = (ids("from"), ids("to"));
            from.difference(&to)
                .map(|node| (partition, *node))
                .collect::<Vec<_>>()
        })
        .collect();
    let (moved, coordinator) = lost
        .iter()
        .copied()
        .find(|&(partition, node)| {
            leaders
                .iter()
                .enumerate()
                .any(|(p, leader)| *leader == node && p as u32 != partition)
                && !lost
                    .iter()
                    .any(|&(p, n)| n == node && leaders[p as usize] == node)
        })
        .unwrap_or_else(|| panic!("no node loses a replica and keeps its lead: {planned:#}"));
    let coordinating = leaders
        .iter()
        .position(|leader| *leader == coordinator)
        .expect("the partition it leads") as u32;
    let subscription = (0..)
        .map(|i| format!("group-{i}"))
        .find(|name| {
            rapidmq_proto::partition_for_key(name.as_bytes(), MOVING_PARTITIONS) == coordinating
        })
        .expect("a name that hashes to the coordinating partition");
    eprintln!(
        "leaders {leaders:?}; {subscription} is coordinated by node {coordinator}, which loses its replica of partition {moved}"
    );

    let client = Client::connect(nodes[0].grpc_url()).await.expect("connect");
    let member = sole_member(&client, MOVING, &subscription, MOVING_PARTITIONS).await;
    let sent =
        publish_to_each_partition(&client, MOVING, MOVING_PARTITIONS, "before", MESSAGES).await;
    consume(&[&member], &sent).await;

    cluster_cli_ok(&nodes[0], &["rebalance"]);
    let after = topic_metadata(&nodes[coordinator as usize - 1], MOVING)
        .await
        .expect("metadata");
    let partitions = &after.topics[0].partitions;
    assert!(
        !partitions[moved as usize].replicas.contains(&coordinator),
        "node {coordinator} still holds partition {moved}: {partitions:?}"
    );
    assert_eq!(
        partition_leader(
            &connect(&nodes[coordinator as usize - 1]).await,
            MOVING,
            coordinating
        )
        .await,
        coordinator,
        "the coordinator changed, so the member joined again elsewhere"
    );

    // The same session: every message of the moved partition too.
    let sent =
        publish_to_each_partition(&client, MOVING, MOVING_PARTITIONS, "after", MESSAGES).await;
    let received = consume(&[&member], &sent).await;
    let unexpected: Vec<&String> = received[0].keys().filter(|v| !sent.contains(*v)).collect();
    assert!(unexpected.is_empty(), "delivered again: {unexpected:?}");
    member.close().await.expect("close");
}
