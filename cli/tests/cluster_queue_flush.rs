//! A queue partition's leader whose group lost its quorum cannot persist the ack state it
//! holds: each interval flush waits for the group until its proposal times out (10 s), and
//! fails. With real processes: five nodes, so that the metadata group keeps its quorum while
//! the partition's two other replicas are down, one partition with three replicas and a queue
//! subscription. A metadata change through that leader (a topic created) must not wait for the
//! stuck flush: before the fix the flush held the metadata lock for those 10 s.
//!
//! Every wait polls until the condition holds, bounded by `PATIENCE`; no fixed sleep. The
//! leader's log says when the flush has waited a second and when it failed (10 s): the topic's
//! creation, started in between, must end before the failure.

mod common;

use std::collections::BTreeSet;

use common::cluster::{
    agreed_leader, committed_offset, create_cluster_topic, create_subscription_retrying,
    partition_leader, publish_retrying, start_nodes,
};
use common::{
    BrokerOptions, QueueConsumer, connect, encode, eventually, msg, queue_settings,
    queue_subscription, receipt, topic_config,
};
use rapidmq_proto::v1 as pb;

const TOPIC: &str = "jobs";
const SUBSCRIPTION: &str = "workers";
/// Long enough that nothing times out and moves on its own during the test.
const ACK_DEADLINE_MS: u64 = 120_000;
/// What the leader logs when a flush has waited a second for the group, and when it failed.
const FLUSH_WAITS: &str = "persisting queue ack state waits for the partition's group";
const FLUSH_FAILED: &str = "persisting queue ack state failed";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_stuck_on_a_partition_without_quorum_holds_up_no_other_metadata_change() {
    let mut nodes = start_nodes(5, |_| BrokerOptions {
        env: vec![("RAPIDMQ_LOG".into(), "rapidmq=info,openraft=warn".into())],
        ..BrokerOptions::default()
    });
    let all: BTreeSet<u64> = (1..=5).collect();
    agreed_leader(
        &reqwest::Client::new(),
        "http",
        &nodes.iter().collect::<Vec<_>>(),
        &all,
        None,
    )
    .await;
    let first = connect(&nodes[0]).await;
    let mut config = topic_config(1);
    config.replication_factor = Some(3);
    let created = create_cluster_topic(&first, TOPIC, config).await;
    let replicas = created.partitions[0].replicas.clone();
    let subscription = queue_subscription(TOPIC, SUBSCRIPTION, ACK_DEADLINE_MS, 5);
    create_subscription_retrying(&first, subscription).await;
    let publish = pb::PublishRequest {
        topic: TOPIC.into(),
        partition: 0,
        batch: encode(&[msg("", "job")]),
        ..Default::default()
    };
    publish_retrying(&first, publish).await.expect("publish");

    // A node that holds no replica of the partition does not follow its elections: ask one
    // that does.
    let at = |id: u64| (id - 1) as usize;
    let on_replica = connect(&nodes[at(replicas[0])]).await;
    let leader = partition_leader(&on_replica, TOPIC, 0).await;
    let mut on_leader = connect(&nodes[at(leader)]).await;
    eventually("the partition's leader knows the subscription", || async {
        committed_offset(&on_leader, TOPIC, SUBSCRIPTION, 0)
            .await
            .is_some()
    })
    .await;
    let mut consumer = QueueConsumer::open(
        &mut on_leader,
        TOPIC,
        SUBSCRIPTION,
        queue_settings(ACK_DEADLINE_MS, 5),
        10,
    )
    .await
    .expect("open a queue consumer on the partition's leader");
    let delivered = consumer.receive(1).await;

    // The partition's other replicas go down; the metadata group keeps three of its five.
    let others: Vec<u64> = replicas
        .iter()
        .copied()
        .filter(|&id| id != leader)
        .collect();
    assert_eq!(others.len(), 2, "replicas {replicas:?}, leader {leader}");
    for &id in &others {
        nodes[at(id)].kill();
    }
    // Acked while the leader still holds its lease: ack state it can no longer persist. Its
    // next flush waits for the group until the proposal times out (10 s), and says so.
    consumer.ack(delivered.iter().map(receipt).collect()).await;
    eventually("the leader's flush waits for its group", || async {
        nodes[at(leader)].log().contains(FLUSH_WAITS)
    })
    .await;

    // A topic created through the leader meanwhile does not wait for that flush.
    let mut other = topic_config(1);
    other.replication_factor = Some(1);
    create_cluster_topic(&on_leader, "unrelated", other).await;
    let log = nodes[at(leader)].log();
    assert!(
        !log.contains(FLUSH_FAILED),
        "creating a topic through node {leader} waited for its stuck queue flush:\n{log}"
    );
    eventually("the stuck flush fails in the end", || async {
        nodes[at(leader)].log().contains(FLUSH_FAILED)
    })
    .await;
}
