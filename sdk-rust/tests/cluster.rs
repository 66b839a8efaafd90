//! Cluster administration through the Rust SDK: a one-node cluster (`serve --node-id 1 --peers
//! 1=127.0.0.1:PORT`) reports itself, refuses bad removals with their codes and has no leader
//! to move; a broker in single-node mode says so. Conformance C24 (`cluster-failover`): on three
//! settled nodes there is no replica to move, then a producer and a queue consumer connected to
//! node 1 carry on when another node, a partition leader, is killed.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{Env, eventually, guarded, read_log, start_cluster, text};
use rapidmq::{
    Client, ClusterStatus, Delivery, Durability, ErrorCode, Message, SendStatus, StartPosition,
    TopicConfig,
};
use rapidmq_testkit::{BrokerOptions, TestBroker};

/// C24: messages sent, and keys they spread over.
const FAILOVER_MESSAGES: u32 = 300;
const FAILOVER_KEYS: u32 = 10;
/// C24: receipts awaited together; the kill lands while one window is on the wire.
const FAILOVER_WINDOW: u32 = 30;

/// A free port for the cluster listener (bound, then released for the broker to take).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_node_cluster_reports_itself_refuses_bad_removals_and_rebalances_nothing() {
    let addr = format!("127.0.0.1:{}", free_port());
    let broker = tokio::task::block_in_place(|| {
        TestBroker::start_with(BrokerOptions {
            args: vec![
                "--node-id".into(),
                "1".into(),
                "--peers".into(),
                format!("1={addr}"),
            ],
            ..BrokerOptions::default()
        })
    });
    let client = Client::connect(broker.grpc_url()).await.unwrap();
    let admin = client.admin();
    eventually("node 1 to lead", || async {
        admin.cluster_status().await.ok().and_then(|s| s.leader_id) == Some(1)
    })
    .await;

    let status: ClusterStatus = admin.cluster_status().await.unwrap();
    assert_eq!(
        (
            status.mode.as_str(),
            status.node_id,
            status.membership.as_str()
        ),
        ("cluster", 1, "voter")
    );
    assert!(status.term >= 1, "{status:?}");
    // The id the founding node derived from its peers: 128 bits in hex.
    assert!(
        status.cluster_id.len() == 32
            && status
                .cluster_id
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{status:?}"
    );
    let nodes: Vec<_> = status
        .nodes
        .iter()
        .map(|n| (n.id, n.role.as_str(), n.cluster_addr.as_str()))
        .collect();
    assert_eq!(nodes, [(1, "voter", addr.as_str())]);

    let unknown = admin.remove_node(9).await.expect_err("node 9 is no member");
    assert_eq!(unknown.code(), ErrorCode::NodeNotFound);
    assert!(
        unknown.to_string().contains("node 9 is not a member"),
        "{unknown}"
    );
    let last = admin
        .remove_node(1)
        .await
        .expect_err("the last voter stays");
    assert_eq!(last.code(), ErrorCode::InvalidArgument);
    assert!(last.to_string().contains("last voter"), "{last}");
    assert_eq!(admin.cluster_status().await.unwrap().nodes[0].role, "voter");
    // The one node leads every partition it has and has no other node to ask.
    let rebalance = admin.rebalance_leaders().await.unwrap();
    assert_eq!((rebalance.transfers, rebalance.unreachable), (0, vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_broker_says_it_is_not_in_cluster_mode() {
    let env = Env::start().await;
    let admin = env.client.admin();
    let status = admin.cluster_status().await.unwrap();
    assert_eq!(status.mode, "single-node");
    assert_eq!(
        (
            status.leader_id,
            status.membership.as_str(),
            status.nodes.len(),
            status.moving_partitions,
            status.cluster_id.as_str()
        ),
        (None, "", 0, 0, "")
    );
    let removed = admin.remove_node(1).await.expect_err("not in cluster mode");
    assert_eq!(removed.code(), ErrorCode::InvalidArgument);
    let added = admin
        .add_node(2, "127.0.0.1:7002")
        .await
        .expect_err("not in cluster mode");
    assert_eq!(added.code(), ErrorCode::InvalidArgument);
    let rebalance = admin.rebalance_leaders().await.unwrap();
    assert_eq!((rebalance.transfers, rebalance.unreachable), (0, vec![]));
    let moved = admin
        .rebalance_replicas(&[], false)
        .await
        .expect_err("not in cluster mode");
    assert_eq!(moved.code(), ErrorCode::InvalidArgument);
}

/// C24 `cluster-failover`: three nodes, a topic of three partitions replicated three times
/// (fsync), a client connected to node 1 only. Settled, the cluster has no replica to move and
/// none moving, and refuses to move replicas off a node that is not a member. A producer sends
/// keyed messages (each partition's batches to its leader) and a queue consumer acks what it
/// polls (one stream per node); a third of the way in, a node other than node 1 that leads a
/// partition is killed (`kill -9`). Every send is appended (the core follows the new leader and
/// retries idempotently), the consumer gets every message, and the log holds each once, each
/// key's messages in send order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_and_a_queue_consumer_through_node_1_carry_on_when_a_partition_leader_is_killed()
{
    let mut nodes = tokio::task::block_in_place(|| start_cluster(3));
    let client = Client::connect(nodes[0].grpc_url()).await.unwrap();
    let admin = client.admin();
    eventually("a leader and three registered voters", || async {
        admin.cluster_status().await.ok().is_some_and(|s| {
            s.leader_id.is_some()
                && s.nodes.len() == 3
                && s.nodes
                    .iter()
                    .all(|n| n.role == "voter" && !n.grpc_addr.is_empty())
        })
    })
    .await;
    let topic = "failover";
    let config = TopicConfig {
        partitions: 3,
        replication_factor: Some(3),
        durability: Durability::Fsync,
        ..TopicConfig::default()
    };
    admin
        .create_topic(topic, config)
        .await
        .expect("create topic");
    eventually("a leader of every partition", || async {
        admin.describe_topic(topic).await.ok().is_some_and(|t| {
            t.partitions
                .iter()
                .all(|p| p.leader.is_some() && p.replicas.len() == 3)
        })
    })
    .await;

    // Three partitions of three replicas on three voters, each node the preferred leader of
    // one: balanced already.
    let planned = admin.rebalance_replicas(&[], true).await.unwrap();
    assert_eq!(planned, vec![]);
    assert_eq!(admin.cluster_status().await.unwrap().moving_partitions, 0);
    let unknown = admin
        .rebalance_replicas(&[9], false)
        .await
        .expect_err("node 9 is no member");
    assert_eq!(unknown.code(), ErrorCode::NodeNotFound);

    let queue = client
        .queue_consumer(topic)
        .subscription("failover")
        .start(StartPosition::Earliest)
        .ack_interval(Duration::from_millis(20))
        .subscribe()
        .await
        .unwrap();
    let consuming = {
        let queue = queue.clone();
        tokio::spawn(async move {
            let mut seen = HashSet::new();
            while seen.len() < FAILOVER_MESSAGES as usize {
                let got = queue
                    .poll(100, Duration::from_secs(30))
                    .await
                    .expect("poll survives the failover");
                assert!(!got.is_empty(), "queue consumer stalled at {}", seen.len());
                for delivery in got {
                    seen.insert(text(&delivery.message.value));
                    queue.ack(&delivery.receipt).expect("ack");
                }
            }
            queue.flush().await.expect("acks sent");
            seen
        })
    };

    let producer = client.producer(topic).build().await.unwrap();
    let mut receipts: Vec<(u32, Delivery)> = Vec::new();
    let mut victim = None;
    for start in (0..FAILOVER_MESSAGES).step_by(FAILOVER_WINDOW as usize) {
        let mut window = Vec::new();
        for i in start..(start + FAILOVER_WINDOW).min(FAILOVER_MESSAGES) {
            let message = Message::new(i.to_string()).with_key(format!("k{}", i % FAILOVER_KEYS));
            window.push((i, producer.send(message).await.expect("send")));
        }
        if victim.is_none() && start >= FAILOVER_MESSAGES / 3 {
            let id = partition_leader_other_than_1(&client, topic).await;
            eprintln!("killing node {id}");
            tokio::task::block_in_place(|| nodes[id as usize - 1].kill());
            victim = Some(id);
        }
        for (i, receipt) in window {
            let delivery = guarded("receipt", receipt)
                .await
                .unwrap_or_else(|err| panic!("message {i} was not sent: {err}"));
            assert_eq!(delivery.status, SendStatus::Appended, "message {i}");
            receipts.push((i, delivery));
        }
    }
    producer.close().await.unwrap();
    println!("producer stats: {:?}", producer.stats());

    let seen = guarded("queue consumer", consuming).await.unwrap();
    let sent: HashSet<String> = (0..FAILOVER_MESSAGES).map(|i| i.to_string()).collect();
    assert_eq!(seen, sent, "the queue consumer got every message");
    println!("queue consumer stats: {:?}", queue.stats());
    queue.close().await.unwrap();

    // Node 1 is a replica of every partition: once it has applied every acked append it serves
    // the whole log, and a retried batch appended twice would show as more messages.
    eventually("node 1 to serve every acked message", || async {
        read_log(&client, topic).await.len() >= FAILOVER_MESSAGES as usize
    })
    .await;
    let log = read_log(&client, topic).await;
    let mut at: HashMap<(u32, u64), String> = HashMap::new();
    let mut logged = HashSet::new();
    let mut last_of_key: HashMap<String, u32> = HashMap::new();
    for m in &log {
        let value = text(&m.value);
        assert!(
            logged.insert(value.clone()),
            "{value} is in the log twice (again at {}:{})",
            m.partition,
            m.offset
        );
        let i: u32 = value.parse().unwrap();
        let key = text(m.key.as_deref().expect("keyed"));
        if let Some(before) = last_of_key.insert(key.clone(), i) {
            assert!(
                before < i,
                "key {key}: {i} after {before} in partition {}",
                m.partition
            );
        }
        at.insert((m.partition, m.offset), value);
    }
    assert_eq!(log.len(), FAILOVER_MESSAGES as usize);
    for (i, delivery) in &receipts {
        let offset = delivery.offset.expect("appended");
        assert_eq!(
            at.get(&(delivery.partition, offset)),
            Some(&i.to_string()),
            "receipt of {i} names {}:{offset}",
            delivery.partition
        );
    }
}

/// The node other than node 1 that leads a partition of `topic` (as node 1 knows), or node 2
/// when node 1 leads them all: the failover scenario kills a node either way.
async fn partition_leader_other_than_1(client: &Client, topic: &str) -> u64 {
    let info = client
        .admin()
        .describe_topic(topic)
        .await
        .expect("describe");
    info.partitions
        .iter()
        .filter_map(|p| p.leader)
        .find(|&leader| leader != 1)
        .unwrap_or(2)
}
