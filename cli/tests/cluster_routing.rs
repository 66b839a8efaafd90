//! Client routing with three real `rapidmq serve` processes: `GetMetadata` names each
//! partition's leader, and the Rust SDK's producer, connected to one node only (one that does
//! not lead every partition), sends each partition's batches to its leader directly (no node
//! forwards an append: `rapidmq_cluster_forwarded_appends_total` stays still). Then a partition
//! leader other than that node is killed (`kill -9`) while the producer publishes: it carries
//! on after the election. The killed node comes back and leads its partitions again: the
//! producer, which still knows the leaders of the failover, goes back to it after the first
//! forwarded batch (whose ack names the leader). The node serves every acknowledged message at
//! its acknowledged offset, none twice.
//!
//! Every wait polls until the condition holds, bounded by `PATIENCE`; no fixed sleep.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::{
    create_cluster_topic, key_of_each_partition, preferred_leaders, start_nodes,
};
use common::{BrokerOptions, PATIENCE, TestBroker, connect, decode, topic_config};
use rapidmq::{Client, Message};
use rapidmq_proto::v1 as pb;

const TOPIC: &str = "routed";
const PARTITIONS: u32 = 3;
/// Messages per partition before the kill, and while and after it.
const BEFORE: usize = 30;
const AFTER: usize = 60;
/// Rounds of one message per partition, each acked before the next, once the killed node
/// leads again.
const RETURNED: usize = 10;

/// `GetMetadata` of the topic from `node`, once it names a leader of every partition and
/// every node's client address (nodes register in the metadata log after they start: a client
/// given a table without a leader's address sends that leader's batches to its seed).
async fn metadata(node: &TestBroker, not: Option<u64>) -> pb::GetMetadataResponse {
    let mut clients = connect(node).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = clients
            .messaging
            .get_metadata(pb::GetMetadataRequest {
                topics: vec![TOPIC.into()],
            })
            .await
            .expect("GetMetadata")
            .into_inner();
        let leaders_known = answer.topics.len() == 1
            && answer.topics[0]
                .partitions
                .iter()
                .all(|p| p.leader != 0 && Some(p.leader) != not && p.term > 0);
        if leaders_known && everyone_registered(&answer) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "no leader of every partition: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `rapidmq_cluster_forwarded_appends_total` of `node`.
async fn forwarded(http: &reqwest::Client, node: &TestBroker) -> u64 {
    let text = http
        .get(format!("{}/metrics", node.http_url()))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix("rapidmq_cluster_forwarded_appends_total "))
        .unwrap_or_else(|| panic!("no forwarded-appends counter in:\n{text}"))
        .trim()
        .parse()
        .expect("a count")
}

/// Everything `node` serves of `partition`, offset → value.
async fn served(node: &TestBroker, partition: u32) -> BTreeMap<u64, String> {
    let mut clients = connect(node).await;
    let mut seen = BTreeMap::new();
    let mut offset = 0;
    loop {
        let fetched = clients
            .messaging
            .fetch(pb::FetchRequest {
                topic: TOPIC.into(),
                partition,
                offset,
                max_messages: 1000,
                max_wait_ms: 0,
            })
            .await
            .expect("fetch")
            .into_inner();
        let received: Vec<_> = fetched.batches.iter().flat_map(decode).collect();
        let Some(last) = received.last() else {
            return seen;
        };
        offset = last.offset + 1;
        for r in received {
            let value = String::from_utf8(r.msg.value.to_vec()).expect("utf-8 value");
            assert!(
                seen.insert(r.offset, value).is_none(),
                "offset {} served twice",
                r.offset
            );
        }
    }
}

/// Sends `count` messages per partition, starting at message `from`, and waits for every ack;
/// records partition → offset → value.
async fn publish(
    producer: &rapidmq::Producer,
    keys: &[String],
    from: usize,
    count: usize,
    acked: &mut BTreeMap<u32, BTreeMap<u64, String>>,
) {
    let mut receipts = Vec::new();
    for i in from..from + count {
        for (p, key) in keys.iter().enumerate() {
            let value = format!("p{p}-m{i}");
            let receipt = producer
                .send(Message::new(value.clone()).with_key(key.clone()))
                .await
                .expect("send");
            receipts.push((p as u32, value, receipt));
        }
    }
    for (p, value, receipt) in receipts {
        let delivery = receipt
            .await
            .unwrap_or_else(|err| panic!("{value} was not acked: {err}"));
        assert_eq!(delivery.partition, p);
        let offset = delivery.offset.expect("appended");
        assert!(
            acked.entry(p).or_default().insert(offset, value).is_none(),
            "offset {offset} of partition {p} acked twice"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_sends_to_each_leader_and_survives_the_loss_of_one() {
    let mut nodes = start_nodes(3, |_| BrokerOptions::default());
    let via_1 = connect(&nodes[0]).await;
    create_cluster_topic(&via_1, TOPIC, topic_config(PARTITIONS)).await;

    let known = metadata(&nodes[0], None).await;
    let leaders: Vec<u64> = known.topics[0]
        .partitions
        .iter()
        .map(|p| p.leader)
        .collect();
    eprintln!("partition leaders: {leaders:?}");
    for p in &known.topics[0].partitions {
        assert_eq!(p.replicas.len(), 3, "{p:?}");
    }
    // The seed is the node leading the fewest partitions (elections decide who leads: all
    // three may have one leader), so that some partition is led elsewhere and would be
    // forwarded by a client that does not route.
    let seed = (1..=3u64)
        .min_by_key(|id| leaders.iter().filter(|&&l| l == *id).count())
        .expect("three nodes");
    assert!(leaders.iter().any(|&l| l != seed), "{leaders:?}");
    eprintln!("producer connected to node {seed}");
    let seed_node = seed as usize - 1;
    // The client learns the cluster from its seed: wait until the seed's own table is complete.
    metadata(&nodes[seed_node], None).await;

    // Connected to the seed only; each partition's batches go to its leader.
    let http = reqwest::Client::new();
    let mut before = 0;
    for node in &nodes {
        before += forwarded(&http, node).await;
    }
    let client = Client::connect(nodes[seed_node].grpc_url())
        .await
        .expect("connect");
    let producer = client
        .producer(TOPIC)
        .idempotence(true)
        .build()
        .await
        .expect("producer");
    let keys = key_of_each_partition(PARTITIONS);
    let mut acked = BTreeMap::new();
    publish(&producer, &keys, 0, BEFORE, &mut acked).await;
    let mut after = 0;
    for node in &nodes {
        after += forwarded(&http, node).await;
    }
    assert_eq!(
        after, before,
        "no append was forwarded: the producer sent to the leaders"
    );

    // Kill -9 a partition leader other than the seed while batches are on the wire.
    let victim = *leaders
        .iter()
        .find(|&&l| l != seed)
        .expect("a leader other than the seed");
    let mut receipts = Vec::new();
    for i in BEFORE..BEFORE + AFTER / 2 {
        for (p, key) in keys.iter().enumerate() {
            let value = format!("p{p}-m{i}");
            let receipt = producer
                .send(Message::new(value.clone()).with_key(key.clone()))
                .await
                .expect("send");
            receipts.push((p as u32, value, receipt));
        }
        if i == BEFORE + 2 {
            eprintln!("killing node {victim}");
            nodes[victim as usize - 1].kill();
        }
    }
    for (p, value, receipt) in receipts {
        let delivery = receipt
            .await
            .unwrap_or_else(|err| panic!("{value} was not acked: {err}"));
        let offset = delivery.offset.expect("appended");
        assert!(
            acked.entry(p).or_default().insert(offset, value).is_none(),
            "offset {offset} of partition {p} acked twice"
        );
    }
    // After the election: the new leaders are learned and the producer carries on.
    metadata(&nodes[seed_node], Some(victim)).await;
    publish(&producer, &keys, BEFORE + AFTER / 2, AFTER / 2, &mut acked).await;

    // The victim comes back and takes the leadership of its preferred partitions again. The
    // producer still knows the leaders of the failover, which forward what it sends them: the
    // ack of the first forwarded batch names the leader, and the producer goes there.
    tokio::task::block_in_place(|| nodes[victim as usize - 1].start_again());
    preferred_leaders(&nodes, TOPIC, PARTITIONS).await;
    let mut before = 0;
    for node in &nodes {
        before += forwarded(&http, node).await;
    }
    for round in 0..RETURNED {
        let from = BEFORE + AFTER + round;
        publish(&producer, &keys, from, 1, &mut acked).await;
    }
    let mut after = 0;
    for node in &nodes {
        after += forwarded(&http, node).await;
    }
    assert!(
        after - before <= u64::from(PARTITIONS),
        "{} of {RETURNED} rounds of batches were forwarded: the producer did not go to the returned leader",
        after - before
    );
    producer.close().await.expect("close");

    // The seed serves every acked message at its acked offset, and nothing else: none twice.
    for p in 0..PARTITIONS {
        let offsets = &acked[&p];
        assert_eq!(offsets.len(), BEFORE + AFTER + RETURNED, "partition {p}");
        let deadline = Instant::now() + PATIENCE;
        loop {
            let seen = served(&nodes[seed_node], p).await;
            if &seen == offsets {
                break;
            }
            assert!(
                Instant::now() < deadline && seen.len() < offsets.len(),
                "node {seed} serves partition {p} as acked: {} served, {} acked",
                seen.len(),
                offsets.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_replica_answers_a_fetch_with_a_leader_hint() {
    let nodes = start_nodes(3, |_| BrokerOptions::default());
    let via_1 = connect(&nodes[0]).await;
    let mut config = topic_config(1);
    config.replication_factor = Some(2);
    create_cluster_topic(&via_1, TOPIC, config).await;
    // A node that is not a replica does not follow the group's elections: ask a replica.
    let mut known = None;
    let deadline = Instant::now() + PATIENCE;
    while known.is_none() {
        for node in &nodes {
            // A node that has not applied the topic yet does not know it.
            let Ok(answer) = connect(node)
                .await
                .messaging
                .get_metadata(pb::GetMetadataRequest {
                    topics: vec![TOPIC.into()],
                })
                .await
            else {
                continue;
            };
            let answer = answer.into_inner();
            let led = answer.topics[0].partitions[0].leader != 0;
            if led && everyone_registered(&answer) {
                known = Some(answer);
                break;
            }
        }
        assert!(Instant::now() < deadline, "no node names a leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let known = known.expect("metadata");
    let partition = &known.topics[0].partitions[0];
    let outsider = (1..=3u64)
        .find(|id| !partition.replicas.contains(id))
        .expect("RF 2 of 3 leaves one node out");
    let mut clients = connect(&nodes[outsider as usize - 1]).await;
    // The hint's address comes from the outsider's own node table: wait until it knows every node
    // (nodes register themselves through the metadata log after they start).
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = clients
            .messaging
            .get_metadata(pb::GetMetadataRequest { topics: Vec::new() })
            .await
            .expect("GetMetadata on the outsider")
            .into_inner();
        if everyone_registered(&answer) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the outsider never learned every node: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // REST says the same as GetMetadata: the nodes with their addresses, the replicas.
    let rest: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/v1/metadata?topics={TOPIC}",
            nodes[outsider as usize - 1].http_url()
        ))
        .send()
        .await
        .expect("GET /v1/metadata")
        .json()
        .await
        .expect("a JSON answer");
    let rest_nodes: Vec<(u64, &str)> = rest["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| (n["id"].as_u64().unwrap(), n["grpc_addr"].as_str().unwrap()))
        .collect();
    let grpc_nodes: Vec<(u64, &str)> = known
        .nodes
        .iter()
        .map(|n| (n.id, n.grpc_addr.as_str()))
        .collect();
    assert_eq!(rest_nodes, grpc_nodes, "{rest}");
    assert_eq!(rest["topics"][0]["name"], TOPIC, "{rest}");
    assert_eq!(
        rest["topics"][0]["partitions"][0]["replicas"],
        serde_json::json!(partition.replicas),
        "{rest}"
    );
    let status = clients
        .messaging
        .fetch(pb::FetchRequest {
            topic: TOPIC.into(),
            partition: 0,
            offset: 0,
            max_messages: 10,
            max_wait_ms: 0,
        })
        .await
        .expect_err("a node without a replica cannot serve a fetch");
    assert_eq!(status.code(), tonic::Code::Unavailable);
    let hint = rapidmq_proto::hint::decode_hint(status.details())
        .unwrap_or_else(|| panic!("no leader hint in {status:?}"));
    assert_eq!((hint.topic.as_str(), hint.partition), (TOPIC, 0));
    // Not following the group, it names the preferred leader (its first replica).
    assert_eq!(hint.leader, partition.replicas[0], "{hint:?}");
    let leader_addr = &known
        .nodes
        .iter()
        .find(|n| n.id == hint.leader)
        .expect("the leader in the node table")
        .grpc_addr;
    assert_eq!(&hint.grpc_addr, leader_addr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_broker_leads_everything_and_keeps_the_client_on_its_connection() {
    let broker = TestBroker::start();
    let mut clients = connect(&broker).await;
    clients
        .admin
        .create_topic(pb::CreateTopicRequest {
            name: TOPIC.into(),
            config: Some(topic_config(2)),
        })
        .await
        .expect("create topic");
    let answer = clients
        .messaging
        .get_metadata(pb::GetMetadataRequest { topics: Vec::new() })
        .await
        .expect("GetMetadata")
        .into_inner();
    assert_eq!(answer.nodes.len(), 1);
    assert_eq!(answer.nodes[0].id, 1);
    assert!(answer.nodes[0].grpc_addr.is_empty());
    assert_eq!(answer.topics.len(), 1);
    for (i, p) in answer.topics[0].partitions.iter().enumerate() {
        assert_eq!((p.partition, p.leader, p.term), (i as u32, 1, 0));
        assert!(p.replicas.is_empty());
    }
    let missing = clients
        .messaging
        .get_metadata(pb::GetMetadataRequest {
            topics: vec!["nope".into()],
        })
        .await
        .expect_err("an unknown topic is refused");
    assert_eq!(
        common::error_code(&missing),
        rapidmq_proto::ErrorCode::TopicNotFound
    );
    // And over REST: node 1 leads both partitions; an unknown topic is a 404.
    let http = reqwest::Client::new();
    let rest: serde_json::Value = http
        .get(format!("{}/v1/metadata", broker.http_url()))
        .send()
        .await
        .expect("GET /v1/metadata")
        .json()
        .await
        .expect("a JSON answer");
    assert_eq!(
        rest,
        serde_json::json!({
            "nodes": [{"id": 1, "grpc_addr": "", "http_addr": ""}],
            "topics": [{"name": TOPIC, "partitions": [
                {"partition": 0, "leader": 1, "term": 0, "replicas": []},
                {"partition": 1, "leader": 1, "term": 0, "replicas": []},
            ]}],
        })
    );
    let missing = http
        .get(format!(
            "{}/v1/metadata?topics={TOPIC},nope",
            broker.http_url()
        ))
        .send()
        .await
        .expect("GET /v1/metadata?topics=…");
    assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);
    let problem: serde_json::Value = missing.json().await.expect("a problem document");
    assert_eq!(problem["name"], "TOPIC_NOT_FOUND", "{problem}");
}

/// Whether an answer's node table holds all three nodes, each with its address.
fn everyone_registered(answer: &pb::GetMetadataResponse) -> bool {
    answer.nodes.len() == 3 && answer.nodes.iter().all(|n| !n.grpc_addr.is_empty())
}
