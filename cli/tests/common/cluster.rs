//! Pieces shared by the cluster-mode tests (`cluster*.rs`): ports for the cluster listeners,
//! starting a node, running `rapidmq cluster …` against one, and waiting until the nodes agree
//! on a leader.

use std::collections::BTreeSet;
use std::process::Output;
use std::time::{Duration, Instant};

use rapidmq_proto::ErrorCode;
use serde_json::Value;

use super::{BrokerOptions, PATIENCE, TestBroker, error_code};

/// Free cluster ports, so each node can be told every peer's address before any node starts.
/// They are picked below the kernel's ephemeral range (32768–60999 on Linux): the brokers bind
/// their gRPC and HTTP listeners to port 0, which the kernel takes from that range, so a port
/// released there can go to another broker's listener before the node meant to have it binds
/// ("cannot bind cluster address … Address already in use"). Below it, only a test picking the
/// same port at the same moment could take it; each pick is checked by binding it.
///
/// A port is handed out once per test process: the tests of a file run at once, and a node that
/// is down (killed, paused, stopped) leaves its port free while its cluster still sends to it.
/// Another test's node listening there got those raft messages, for groups with the same ids,
/// and both clusters' groups broke (a leader's raft panicked: CI, 6 December 2026).
pub fn free_ports(count: usize) -> Vec<u16> {
    static HANDED_OUT: std::sync::Mutex<BTreeSet<u16>> = std::sync::Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut next = nanos ^ std::process::id();
    let mut listeners = Vec::new();
    for _ in 0..SPAN {
        if listeners.len() == count {
            break;
        }
        let port = (LOW + next % SPAN) as u16;
        next = next.wrapping_add(7919);
        if handed_out.contains(&port) {
            continue;
        }
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            handed_out.insert(port);
            listeners.push(listener);
        }
    }
    assert_eq!(
        listeners.len(),
        count,
        "no free ports below the ephemeral range"
    );
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect()
}

/// `--peers` for nodes `1..=ports.len()`, node `i + 1` at `127.0.0.1:ports[i]`.
pub fn peer_list(ports: &[u16]) -> String {
    ports
        .iter()
        .enumerate()
        .map(|(i, port)| format!("{}=127.0.0.1:{port}", i + 1))
        .collect::<Vec<_>>()
        .join(",")
}

/// Starts node `id` of a cluster with these `--peers`.
pub fn start_node(id: u64, peers: &str) -> TestBroker {
    start_node_with(id, peers, &[])
}

/// [`start_node`] with more flags (`--join`).
pub fn start_node_with(id: u64, peers: &str, extra: &[&str]) -> TestBroker {
    start_node_in_env(id, peers, extra, Vec::new())
}

/// [`start_node_with`] with environment variables (settings).
pub fn start_node_in_env(
    id: u64,
    peers: &str,
    extra: &[&str],
    env: Vec<(String, String)>,
) -> TestBroker {
    let mut args = vec![
        "--node-id".into(),
        id.to_string(),
        "--peers".into(),
        peers.to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    TestBroker::start_with(BrokerOptions { args, env })
}

/// Runs `rapidmq --server <node> cluster <args>`.
pub fn cluster_cli(node: &TestBroker, args: &[&str]) -> Output {
    rapidmq_testkit::cli_command()
        .args(["--server", node.grpc_addr(), "cluster"])
        .args(args)
        .output()
        .expect("run rapidmq cluster")
}

/// [`cluster_cli`]'s stdout, asserting it succeeded.
pub fn cluster_cli_ok(node: &TestBroker, args: &[&str]) -> String {
    let output = cluster_cli(node, args);
    assert!(
        output.status.success(),
        "rapidmq cluster {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// `GET /v1/cluster` of `node` over `scheme` (`http` or `https`), if it answers.
pub async fn status(client: &reqwest::Client, node: &TestBroker, scheme: &str) -> Option<Value> {
    let addr = node.http_url().trim_start_matches("http://").to_string();
    let response = client
        .get(format!("{scheme}://{addr}/v1/cluster"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

/// The leader every node of `nodes` reports, once they all report the same one (other than
/// `not`), with every node of `ids` in the table, registered at its current client addresses;
/// and their statuses.
pub async fn agreed_leader(
    client: &reqwest::Client,
    scheme: &str,
    nodes: &[&TestBroker],
    ids: &BTreeSet<u64>,
    not: Option<u64>,
) -> (u64, Vec<Value>) {
    let deadline = Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let mut statuses = Vec::new();
        for node in nodes {
            if let Some(status) = status(client, node, scheme).await {
                statuses.push(status);
            }
        }
        let leaders: BTreeSet<Option<u64>> =
            statuses.iter().map(|s| s["leader_id"].as_u64()).collect();
        let registered = |s: &Value| -> BTreeSet<u64> {
            s["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|n| !n["grpc_addr"].as_str().unwrap_or_default().is_empty())
                .filter_map(|n| n["id"].as_u64())
                .collect()
        };
        let complete = statuses.len() == nodes.len()
            && leaders.len() == 1
            && statuses.iter().all(|s| registered(s) == *ids)
            && nodes.iter().all(|node| {
                statuses[0]["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|n| n["http_addr"].as_str() == node.http_url().strip_prefix("http://"))
            });
        if complete
            && let Some(Some(leader)) = leaders.first().copied()
            && Some(leader) != not
        {
            return (leader, statuses);
        }
        if Instant::now() >= deadline {
            for (i, node) in nodes.iter().enumerate() {
                eprintln!("--- node {} log ---\n{}", i + 1, node.log());
            }
            panic!("the nodes did not agree on a leader with the whole table: {statuses:#?}");
        }
    }
}

/// `count` nodes of one cluster (ids 1..=count, every one a peer), each started with
/// `options(id)` plus the cluster flags.
pub fn start_nodes(count: u64, options: impl Fn(u64) -> super::BrokerOptions) -> Vec<TestBroker> {
    let peers = free_ports(count as usize)
        .iter()
        .enumerate()
        .map(|(i, port)| format!("{}=127.0.0.1:{port}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    (1..=count)
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

/// Retries `attempt` while it fails with `UNAVAILABLE` (no leader yet, a leader just lost),
/// bounded by `PATIENCE`; any other outcome is returned.
pub async fn while_unavailable<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match attempt().await {
            Err(status)
                if error_code(&status) == ErrorCode::Unavailable && Instant::now() < deadline =>
            {
                eprintln!("{what}: {}; retrying", status.message());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// Creates topic `name` through `clients`, retrying while the metadata group has no leader.
pub async fn create_cluster_topic(
    clients: &super::Clients,
    name: &str,
    config: rapidmq_proto::v1::TopicConfig,
) -> rapidmq_proto::v1::TopicInfo {
    let request = rapidmq_proto::v1::CreateTopicRequest {
        name: name.into(),
        config: Some(config),
    };
    while_unavailable("create topic", || {
        let mut admin = clients.admin.clone();
        let request = request.clone();
        async move { admin.create_topic(request).await }
    })
    .await
    .unwrap_or_else(|status| panic!("create topic {name}: {status:?}"))
    .into_inner()
}

/// Three started `nodes` made ready for a test of one replicated partition: waits until they
/// agree on a metadata leader, then through node 1 creates `topic` with one partition and
/// `replication_factor` replicas. Node 1's clients and the created topic.
pub async fn replicated_topic(
    nodes: &[TestBroker],
    topic: &str,
    replication_factor: u32,
) -> (super::Clients, rapidmq_proto::v1::TopicInfo) {
    let mut config = super::topic_config(1);
    config.replication_factor = Some(replication_factor);
    replicated_topic_with(nodes, topic, config).await
}

/// [`replicated_topic`] with the topic's whole `config`.
pub async fn replicated_topic_with(
    nodes: &[TestBroker],
    topic: &str,
    config: rapidmq_proto::v1::TopicConfig,
) -> (super::Clients, rapidmq_proto::v1::TopicInfo) {
    agreed_leader(
        &reqwest::Client::new(),
        "http",
        &nodes.iter().collect::<Vec<_>>(),
        &[1, 2, 3].into(),
        None,
    )
    .await;
    let first = super::connect(&nodes[0]).await;
    let created = create_cluster_topic(&first, topic, config).await;
    (first, created)
}

/// The leader of `partition` of `topic` that `clients`' node knows, once it knows one
/// (bounded by `PATIENCE`).
pub async fn partition_leader(clients: &super::Clients, topic: &str, partition: u32) -> u64 {
    let deadline = Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let metadata = clients
            .messaging
            .clone()
            .get_metadata(rapidmq_proto::v1::GetMetadataRequest {
                topics: vec![topic.into()],
            })
            .await;
        let leader = metadata.ok().and_then(|m| {
            let topic = m.into_inner().topics.into_iter().next()?;
            topic
                .partitions
                .iter()
                .find(|p| p.partition == partition)
                .map(|p| p.leader)
        });
        match leader {
            Some(leader) if leader != 0 => return leader,
            _ => assert!(
                Instant::now() < deadline,
                "partition {partition} of {topic} has no leader"
            ),
        }
    }
}

/// The committed offset of `partition` (for a queue subscription, its floor: the lowest offset
/// not settled) that `clients`' node reports for `subscription` of `topic` (none while it does
/// not know the subscription or cannot answer).
pub async fn committed_offset(
    clients: &super::Clients,
    topic: &str,
    subscription: &str,
    partition: u32,
) -> Option<u64> {
    let info = clients
        .admin
        .clone()
        .describe_subscription(rapidmq_proto::v1::DescribeSubscriptionRequest {
            topic: topic.into(),
            name: subscription.into(),
        })
        .await
        .ok()?
        .into_inner();
    info.cursors
        .iter()
        .find(|c| c.partition == partition)
        .map(|c| c.committed_offset)
}

/// Three started `nodes` made ready for a test of one replicated partition: waits until they
/// agree on a metadata leader, then through node 1 creates `topic` (one partition, three
/// replicas), `subscription`, and publishes `messages` to it in one batch (each step retried
/// while the cluster has no leader for it). Returns node 1's clients.
pub async fn one_replicated_partition(
    nodes: &[TestBroker],
    topic: &str,
    subscription: rapidmq_proto::v1::CreateSubscriptionRequest,
    messages: &[super::Msg],
) -> super::Clients {
    use rapidmq_proto::v1 as pb;
    let (first, _) = replicated_topic(nodes, topic, 3).await;
    create_subscription_retrying(&first, subscription).await;
    let request = pb::PublishRequest {
        topic: topic.into(),
        partition: 0,
        batch: super::encode(messages),
        ..Default::default()
    };
    publish_retrying(&first, request).await.expect("publish");
    first
}

/// Creates the subscription `request` asks for through `clients`' node, retried while the
/// cluster has no metadata leader.
pub async fn create_subscription_retrying(
    clients: &super::Clients,
    request: rapidmq_proto::v1::CreateSubscriptionRequest,
) {
    while_unavailable("create subscription", || {
        let mut admin = clients.admin.clone();
        let request = request.clone();
        async move { admin.create_subscription(request).await }
    })
    .await
    .expect("create subscription");
}

/// Every batch `clients`' node serves of `partition` of `topic`, from its log start, as fetched
/// (the stored batches), or the first fetch's error.
pub async fn fetch_all(
    clients: &super::Clients,
    topic: &str,
    partition: u32,
) -> Result<Vec<rapidmq_proto::v1::DeliveryBatch>, tonic::Status> {
    let mut batches = Vec::new();
    let mut offset = 0;
    loop {
        let fetched = clients
            .messaging
            .clone()
            .fetch(rapidmq_proto::v1::FetchRequest {
                topic: topic.into(),
                partition,
                offset,
                max_messages: 1000,
                max_wait_ms: 0,
            })
            .await?
            .into_inner();
        let Some(last) = fetched.batches.last() else {
            return Ok(batches);
        };
        offset = last.base_offset + u64::from(last.count);
        batches.extend(fetched.batches);
    }
}

/// Publishes `request` through `clients`' node, sent again while the answer is `UNAVAILABLE`
/// (an election, a hand-over in progress; bounded by `PATIENCE`): the first other answer.
pub async fn publish_retrying(
    clients: &super::Clients,
    request: rapidmq_proto::v1::PublishRequest,
) -> Result<rapidmq_proto::v1::PublishResponse, tonic::Status> {
    while_unavailable("publish", || {
        let mut messaging = clients.messaging.clone();
        let request = request.clone();
        async move { messaging.publish(request).await }
    })
    .await
    .map(tonic::Response::into_inner)
}

/// A key of each of `partitions` partitions (the one `partition_for_key` maps there), in
/// partition order.
pub fn key_of_each_partition(partitions: u32) -> Vec<String> {
    (0..partitions)
        .map(|p| {
            (0..)
                .map(|i| format!("key-{i}"))
                .find(|k| rapidmq_proto::partition_for_key(k.as_bytes(), partitions) == p)
                .expect("a key of every partition")
        })
        .collect()
}

/// `GetMetadata` of `topic` from `node`; none while the node has not applied the topic yet.
pub async fn topic_metadata(
    node: &TestBroker,
    topic: &str,
) -> Option<rapidmq_proto::v1::GetMetadataResponse> {
    let mut clients = super::connect(node).await;
    let answer = clients
        .messaging
        .get_metadata(rapidmq_proto::v1::GetMetadataRequest {
            topics: vec![topic.into()],
        })
        .await;
    match answer {
        Ok(answer) => Some(answer.into_inner()),
        Err(status) if error_code(&status) == ErrorCode::TopicNotFound => None,
        Err(status) => panic!("GetMetadata: {status:?}"),
    }
}

/// Whether a partition (of a topic with three replicas) is led by its preferred replica, the
/// first.
pub fn led_by_preferred(p: &rapidmq_proto::v1::PartitionMetadata) -> bool {
    p.replicas.len() == 3 && p.leader == p.replicas[0]
}

/// Waits until every node of `nodes` sees each of the `partitions` partitions of `topic` led by
/// its preferred replica, and every node registered with a client address; runs `rapidmq
/// cluster rebalance-leaders` on the first node at every poll (until a restarted node caught
/// up, a rebalance may start nothing). The leaders then, by partition.
pub async fn preferred_leaders(nodes: &[TestBroker], topic: &str, partitions: u32) -> Vec<u64> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        cluster_cli_ok(&nodes[0], &["rebalance-leaders"]);
        let mut seen = Vec::new();
        for node in nodes {
            seen.push(topic_metadata(node, topic).await);
        }
        let settled = |answer: &Option<rapidmq_proto::v1::GetMetadataResponse>| {
            answer.as_ref().is_some_and(|answer| {
                let led = answer
                    .topics
                    .iter()
                    .find(|t| t.name == topic)
                    .is_some_and(|t| {
                        t.partitions.len() == partitions as usize
                            && t.partitions.iter().all(led_by_preferred)
                    });
                let registered = answer.nodes.len() == nodes.len()
                    && answer.nodes.iter().all(|n| !n.grpc_addr.is_empty());
                led && registered
            })
        };
        if seen.iter().all(settled) {
            let answer = seen.swap_remove(0).expect("metadata");
            let topic = answer.topics.into_iter().find(|t| t.name == topic);
            return topic
                .expect("the topic")
                .partitions
                .iter()
                .map(|p| p.leader)
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "the preferred replicas do not lead {topic}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Publishes `count` messages to each of `topic`'s `partitions` through `client` (one key per
/// partition), values named after `phase`, and waits for every ack; the values sent.
pub async fn publish_to_each_partition(
    client: &rapidmq::Client,
    topic: &str,
    partitions: u32,
    phase: &str,
    count: usize,
) -> BTreeSet<String> {
    let producer = client.producer(topic).build().await.expect("producer");
    let mut sent = BTreeSet::new();
    let mut receipts = Vec::new();
    for i in 0..count {
        for key in key_of_each_partition(partitions) {
            let value = format!("{phase}-{key}-{i}");
            let receipt = producer
                .send(rapidmq::Message::new(value.clone()).with_key(key))
                .await
                .expect("send");
            receipts.push(receipt);
            sent.insert(value);
        }
    }
    for receipt in receipts {
        receipt.await.expect("acked");
    }
    producer.close().await.expect("close");
    sent
}
