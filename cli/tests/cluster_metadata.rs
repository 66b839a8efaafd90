//! Engine metadata through the metadata raft group, with three real `rapidmq serve` processes:
//! a topic and a subscription created through one node exist on every node, a delete through
//! another removes them everywhere, a node killed (`kill -9`) while a topic is created has it
//! after its restart, and two creates of one topic name through two nodes at once end with one
//! topic, the same on every node, and `ALREADY_EXISTS` for the other. With auth on, user
//! `admin` is created once per cluster, whichever node's bootstrap secret wins.
//!
//! Every wait polls the nodes until the condition holds, bounded by `PATIENCE`; no fixed sleep.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::cluster::free_ports;
use common::{BrokerOptions, Clients, PATIENCE, TestBroker, connect, error_code, topic_config};
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1 as pb;

fn start_cluster() -> Vec<TestBroker> {
    start_cluster_with(|_| BrokerOptions::default())
}

/// Three nodes; `options` gives each node's own (by id), the cluster flags are added.
fn start_cluster_with(options: impl Fn(u64) -> BrokerOptions) -> Vec<TestBroker> {
    let peers = free_ports(3)
        .iter()
        .enumerate()
        .map(|(i, port)| format!("{}=127.0.0.1:{port}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    (1..=3u64)
        .map(|id| {
            let mut options = options(id);
            options.args.extend([
                "--node-id".into(),
                id.to_string(),
                "--peers".into(),
                peers.clone(),
            ]);
            TestBroker::start_with(options)
        })
        .collect()
}

/// The topics `node` lists: name → (partition count, created_at_ms).
async fn topics(node: &TestBroker) -> Option<Vec<(String, u32, i64)>> {
    let mut clients = tokio::time::timeout(Duration::from_secs(2), connect(node))
        .await
        .ok()?;
    let listed = clients
        .admin
        .list_topics(pb::ListTopicsRequest {})
        .await
        .ok()?
        .into_inner();
    Some(
        listed
            .topics
            .into_iter()
            .map(|t| (t.name, t.partitions.len() as u32, t.created_at_ms))
            .collect(),
    )
}

async fn subscriptions(node: &TestBroker, topic: &str) -> Option<BTreeSet<String>> {
    let mut clients = connect(node).await;
    let listed = clients
        .admin
        .list_subscriptions(pb::ListSubscriptionsRequest {
            topic: topic.into(),
        })
        .await
        .ok()?
        .into_inner();
    Some(listed.subscriptions.into_iter().map(|s| s.name).collect())
}

/// Polls until `check` holds for what every node of `nodes` lists, bounded by `PATIENCE`.
async fn until_every_node<F>(nodes: &[&TestBroker], what: &str, check: F)
where
    F: Fn(&[(String, u32, i64)]) -> bool,
{
    let deadline = Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let mut seen = Vec::new();
        for node in nodes {
            seen.push(topics(node).await);
        }
        if seen.iter().all(|t| t.as_deref().is_some_and(&check)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not on every node in time; they list {seen:#?}"
        );
    }
}

async fn create(
    clients: &mut Clients,
    name: &str,
    partitions: u32,
) -> Result<pb::TopicInfo, tonic::Status> {
    clients
        .admin
        .create_topic(pb::CreateTopicRequest {
            name: name.into(),
            config: Some(topic_config(partitions)),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn has(topics: &[(String, u32, i64)], name: &str) -> bool {
    topics.iter().any(|(n, _, _)| n == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_and_subscriptions_are_the_same_on_every_node() {
    let mut nodes = start_cluster();
    let mut via_2 = connect(&nodes[1]).await;

    // Through node 2 (it waits for the group's leader): a topic and a subscription, usable on
    // node 2 at once and listed on nodes 1 and 3.
    let created = tokio::time::timeout(PATIENCE, async {
        loop {
            match create(&mut via_2, "orders", 2).await {
                Ok(info) => return info,
                Err(status) if error_code(&status) == ErrorCode::Unavailable => continue,
                Err(status) => panic!("create topic through node 2: {status:?}"),
            }
        }
    })
    .await
    .expect("the cluster took topics in time");
    assert_eq!(created.partitions.len(), 2);
    via_2
        .admin
        .create_subscription(pb::CreateSubscriptionRequest {
            topic: "orders".into(),
            name: "billing".into(),
            mode: pb::SubscriptionMode::Stream as i32,
            ..Default::default()
        })
        .await
        .expect("create a subscription through node 2");
    let all: Vec<&TestBroker> = nodes.iter().collect();
    until_every_node(&all, "topic orders", |t| {
        t.iter()
            .any(|(n, p, at)| n == "orders" && *p == 2 && *at == created.created_at_ms)
    })
    .await;
    for node in &nodes {
        let deadline = Instant::now() + PATIENCE;
        while subscriptions(node, "orders").await != Some(["billing".to_string()].into()) {
            assert!(
                Instant::now() < deadline,
                "subscription billing is not on every node"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // Node 3 is killed; a topic is created through node 1 meanwhile; node 3 has it once back.
    nodes[2].kill();
    let mut via_1 = connect(&nodes[0]).await;
    create(&mut via_1, "while-down", 1)
        .await
        .expect("create a topic with node 3 down");
    nodes[2].start_again();
    until_every_node(&nodes.iter().collect::<Vec<_>>(), "topic while-down", |t| {
        has(t, "while-down")
    })
    .await;

    // Deleted through node 3: gone everywhere (on node 3 as soon as the call returns).
    let mut via_3 = connect(&nodes[2]).await;
    via_3
        .admin
        .delete_topic(pb::DeleteTopicRequest {
            name: "orders".into(),
        })
        .await
        .expect("delete topic orders through node 3");
    let on_3 = topics(&nodes[2]).await.expect("node 3 lists topics");
    assert!(!has(&on_3, "orders"), "{on_3:?}");
    until_every_node(&nodes.iter().collect::<Vec<_>>(), "delete of orders", |t| {
        !has(t, "orders") && has(t, "while-down")
    })
    .await;

    // Two creates of one name through two nodes at once: one topic, the same everywhere.
    let (a, b) = tokio::join!(create(&mut via_1, "race", 2), create(&mut via_3, "race", 3));
    let (won, lost) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        other => panic!("exactly one create must succeed: {other:?}"),
    };
    assert_eq!(lost.code(), tonic::Code::AlreadyExists, "{lost:?}");
    assert_eq!(error_code(&lost), ErrorCode::TopicAlreadyExists);
    let winner = (won.partitions.len() as u32, won.created_at_ms);
    until_every_node(&nodes.iter().collect::<Vec<_>>(), "topic race", |t| {
        t.iter()
            .any(|(n, p, at)| n == "race" && (*p, *at) == winner)
    })
    .await;
    println!("race won with {} partitions", winner.0);
}

/// Whether `token` authenticates on `node` (`GET /v1/auth/whoami`).
async fn admits(node: &TestBroker, token: &str) -> bool {
    reqwest::Client::new()
        .get(format!("{}/v1/auth/whoami", node.http_url()))
        .bearer_auth(token)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_admin_is_created_once_per_cluster() {
    // Nodes 1 and 2 each have a bootstrap token of their own; node 3 has none.
    let tokens: Vec<String> = (0..2)
        .map(|_| rapidmq_broker::auth::Token::generate().unwrap().to_string())
        .collect();
    let nodes = start_cluster_with(|id| BrokerOptions {
        env: match tokens.get(id as usize - 1) {
            Some(token) => vec![("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN".into(), token.clone())],
            None => Vec::new(),
        },
        args: vec!["--auth".into()],
    });
    let deadline = Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let winner = loop {
        tick.tick().await;
        let mut admitted = Vec::new();
        for token in &tokens {
            let mut everywhere = true;
            for node in &nodes {
                everywhere &= admits(node, token).await;
            }
            admitted.push(everywhere);
        }
        if let Some(winner) = admitted.iter().position(|&a| a) {
            break winner;
        }
        assert!(
            Instant::now() < deadline,
            "no bootstrap token works on every node"
        );
    };
    let loser = &tokens[1 - winner];
    for node in &nodes {
        assert!(
            !admits(node, loser).await,
            "node {}'s bootstrap token works too: admin was created twice",
            2 - winner
        );
    }
    println!("node {}'s bootstrap token made user admin", winner + 1);
}
