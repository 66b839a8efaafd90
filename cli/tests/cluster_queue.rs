//! Queue consumers in a cluster, with three real `rapidmq serve` processes: a topic of three
//! partitions (replication factor 3) whose leaders are on three different nodes (each on its
//! preferred replica, which placement spreads), and a queue subscription. A node delivers only
//! the partitions it leads, so the Rust SDK's queue consumer reads from every node (one session
//! each, learned from `GetMetadata`): connected to node 1 only, it receives every message once;
//! then two consumers, through node 1 and node 2 at once, share the next messages, none
//! delivered to both.
//!
//! Every wait polls until the condition holds, bounded by `PATIENCE`; no fixed sleep.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::cluster::{
    create_cluster_topic, key_of_each_partition, led_by_preferred, start_nodes, topic_metadata,
    while_unavailable,
};
use common::{BrokerOptions, PATIENCE, TestBroker, connect, start, topic_config};
use rapidmq::{Client, Message, QueueConsumer, QueueSettings, StartPosition};
use rapidmq_proto::v1 as pb;

const TOPIC: &str = "jobs";
const SUBSCRIPTION: &str = "workers";
const PARTITIONS: u32 = 3;
/// Messages per partition in each round.
const PER_PARTITION: usize = 100;

/// Three nodes whose periodic leader rounds run every 500 ms, so that leadership settles on the
/// preferred replicas soon after the topic's groups elect; openraft logging warnings only.
fn cluster() -> Vec<TestBroker> {
    start_nodes(3, |_| BrokerOptions {
        env: vec![
            ("RAPIDMQ_LOG".into(), "rapidmq=info,openraft=warn".into()),
            (
                "RAPIDMQ_CLUSTER__LEADER_REBALANCE_INTERVAL_MS".into(),
                "500".into(),
            ),
        ],
        ..BrokerOptions::default()
    })
}

/// Whether `answer` names every node's client address and every partition led by its
/// preferred (first) replica: a client that learns the cluster from it reaches every leader.
fn settled(answer: &pb::GetMetadataResponse) -> bool {
    let registered =
        answer.nodes.len() == 3 && answer.nodes.iter().all(|n| !n.grpc_addr.is_empty());
    let led_by_preferred = answer.topics.len() == 1
        && answer.topics[0].partitions.len() == PARTITIONS as usize
        && answer.topics[0].partitions.iter().all(led_by_preferred);
    registered && led_by_preferred
}

/// Waits until every node sees every partition led by its preferred replica; the leaders then.
async fn until_preferred_leaders(nodes: &[TestBroker]) -> Vec<u64> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut seen = Vec::new();
        for node in nodes {
            seen.push(topic_metadata(node, TOPIC).await);
        }
        if seen.iter().all(|m| m.as_ref().is_some_and(settled)) {
            let answer = seen.swap_remove(0).expect("metadata");
            return answer.topics[0]
                .partitions
                .iter()
                .map(|p| p.leader)
                .collect();
        }
        if Instant::now() >= deadline {
            for (i, node) in nodes.iter().enumerate() {
                eprintln!("--- node {} log ---\n{}", i + 1, node.log());
            }
            panic!("leadership not with the preferred replicas within {PATIENCE:?}: {seen:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates the queue subscription through node 1 and waits until every node knows it.
async fn create_subscription(nodes: &[TestBroker]) {
    let first = connect(&nodes[0]).await;
    while_unavailable("create subscription", || {
        let mut admin = first.admin.clone();
        async move {
            admin
                .create_subscription(pb::CreateSubscriptionRequest {
                    topic: TOPIC.into(),
                    name: SUBSCRIPTION.into(),
                    mode: pb::SubscriptionMode::Queue as i32,
                    start: Some(start(pb::StartKind::Earliest)),
                    queue: Some(QueueSettings::default().into()),
                })
                .await
        }
    })
    .await
    .expect("create subscription");
    let deadline = Instant::now() + PATIENCE;
    for (i, node) in nodes.iter().enumerate() {
        let mut clients = connect(node).await;
        loop {
            let known = clients
                .admin
                .describe_subscription(pb::DescribeSubscriptionRequest {
                    topic: TOPIC.into(),
                    name: SUBSCRIPTION.into(),
                })
                .await;
            if known.is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {} does not know the subscription: {known:?}",
                i + 1
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Publishes `PER_PARTITION` messages to every partition (round `round`) through `client` and
/// waits for every ack; their values.
async fn publish(client: &Client, round: usize) -> BTreeSet<String> {
    let producer = client.producer(TOPIC).build().await.expect("producer");
    let mut receipts = Vec::new();
    for i in 0..PER_PARTITION {
        for (p, key) in key_of_each_partition(PARTITIONS).iter().enumerate() {
            let value = format!("r{round}-p{p}-m{i}");
            let receipt = producer
                .send(Message::new(value.clone()).with_key(key.clone()))
                .await
                .expect("send");
            receipts.push((p as u32, value, receipt));
        }
    }
    let mut values = BTreeSet::new();
    for (p, value, receipt) in receipts {
        let delivery = receipt
            .await
            .unwrap_or_else(|err| panic!("{value} was not acked: {err}"));
        assert_eq!(delivery.partition, p, "{value}");
        values.insert(value);
    }
    producer.close().await.expect("close the producer");
    values
}

/// A queue consumer of the subscription through `node` only.
async fn consumer(node: &TestBroker) -> (Client, QueueConsumer) {
    let client = Client::connect(node.grpc_url()).await.expect("connect");
    let consumer = client
        .queue_consumer(TOPIC)
        .subscription(SUBSCRIPTION)
        .start(StartPosition::Earliest)
        .ack_interval(Duration::from_millis(20))
        .subscribe()
        .await
        .expect("subscribe");
    (client, consumer)
}

/// Polls and acks until `done` (shared by every consumer of the round) reaches `total`; the
/// values `consumer` received, in order.
async fn drain(consumer: QueueConsumer, done: Arc<AtomicUsize>, total: usize) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    let mut mine = Vec::new();
    while done.load(Ordering::SeqCst) < total {
        assert!(
            Instant::now() < deadline,
            "{} of {total} delivered within {PATIENCE:?}; stats {:?}",
            done.load(Ordering::SeqCst),
            consumer.stats()
        );
        let got = consumer
            .poll(100, Duration::from_millis(100))
            .await
            .expect("poll");
        for delivery in got {
            assert_eq!(delivery.attempt, 1, "a redelivery: {delivery:?}");
            consumer.ack(&delivery.receipt).expect("ack");
            let value = String::from_utf8(delivery.message.value.to_vec()).expect("utf-8");
            mine.push(value);
            done.fetch_add(1, Ordering::SeqCst);
        }
    }
    consumer.flush().await.expect("flush");
    mine
}

/// Every value delivered, with how many times, over all consumers.
fn deliveries(shares: &[Vec<String>]) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for value in shares.iter().flatten() {
        *count.entry(value.clone()).or_default() += 1;
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_consumer_through_one_node_gets_every_partition_and_two_share_them() {
    let nodes = cluster();
    let first = connect(&nodes[0]).await;
    let mut config = topic_config(PARTITIONS);
    config.replication_factor = Some(3);
    create_cluster_topic(&first, TOPIC, config).await;
    let leaders = until_preferred_leaders(&nodes).await;
    eprintln!("partition leaders: {leaders:?}");
    assert_eq!(
        leaders.iter().collect::<BTreeSet<_>>().len(),
        3,
        "placement spreads the preferred leaders: {leaders:?}"
    );
    create_subscription(&nodes).await;
    let publisher = Client::connect(nodes[0].grpc_url()).await.expect("connect");
    let total = PER_PARTITION * PARTITIONS as usize;

    // One consumer through node 1: every message of every partition, once.
    let sent = publish(&publisher, 1).await;
    let (client, alone) = consumer(&nodes[0]).await;
    let got = drain(alone.clone(), Arc::new(AtomicUsize::new(0)), total).await;
    let count = deliveries(std::slice::from_ref(&got));
    assert!(
        count.values().all(|&n| n == 1),
        "delivered more than once: {:?}",
        count.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    assert_eq!(count.keys().cloned().collect::<BTreeSet<_>>(), sent);
    let stats = alone.stats();
    eprintln!("the consumer through node 1: {stats:?}");
    assert_eq!(stats.stale_receipts, 0, "{stats:?}");
    alone.close().await.expect("close");
    client.close().await.expect("close the client");

    // Two consumers at once, through node 1 and node 2: together every message, none to both.
    let (client_1, through_1) = consumer(&nodes[0]).await;
    let (client_2, through_2) = consumer(&nodes[1]).await;
    let sent = publish(&publisher, 2).await;
    let done = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = [through_1.clone(), through_2.clone()]
        .into_iter()
        .map(|c| tokio::spawn(drain(c, done.clone(), total)))
        .collect();
    let mut shares = Vec::new();
    for task in tasks {
        shares.push(task.await.expect("a consumer task"));
    }
    eprintln!(
        "shares: node 1 {}, node 2 {}",
        shares[0].len(),
        shares[1].len()
    );
    let count = deliveries(&shares);
    assert!(
        count.values().all(|&n| n == 1),
        "delivered to both or twice: {:?}",
        count.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    assert_eq!(count.keys().cloned().collect::<BTreeSet<_>>(), sent);
    for (consumer, client) in [(through_1, client_1), (through_2, client_2)] {
        consumer.close().await.expect("close");
        client.close().await.expect("close the client");
    }
    publisher.close().await.expect("close the publisher");
}
