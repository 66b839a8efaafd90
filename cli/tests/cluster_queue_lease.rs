//! A queue partition's leader cut off from the other replicas, with real processes: three nodes
//! whose node-to-node links run through proxies, a queue subscription on a one-partition topic
//! with three replicas.
//!
//! The leader's links to both others are cut (clients still reach it). The others elect a new
//! leader, which delivers every message to a consumer through it, and takes its acks. The old
//! leader has not heard of that: raft does not depose a leader that hears from nobody. Only its
//! lease (a majority acknowledged it within the last second) keeps it from delivering the same
//! messages, from its own ack state, to a consumer through it: acked messages handed out again.
//!
//! Every wait polls until the condition holds, bounded by `PATIENCE`; the one fixed wait is the
//! bounded window in which the old leader must deliver nothing.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::cluster::{committed_offset, one_replicated_partition, partition_leader};
use common::nemesis::{NODES, ProxiedCluster};
use common::{
    QueueConsumer, connect, eventually, msg, queue_settings, queue_subscription, receipt,
};
use rapidmq_proto::v1 as pb;
use rapidmq_testkit::proxy::Fault;

const TOPIC: &str = "jobs";
const SUBSCRIPTION: &str = "workers";
const MESSAGES: usize = 30;
/// Long enough that nothing times out and moves on its own during the test.
const ACK_DEADLINE_MS: u64 = 120_000;
/// How long the cut-off leader is watched for a delivery: several lease lengths, and several
/// times the interval at which a queue session looks at the leadership again.
const WATCH: Duration = Duration::from_secs(3);

async fn open(clients: &mut common::Clients) -> QueueConsumer {
    QueueConsumer::open(
        clients,
        TOPIC,
        SUBSCRIPTION,
        queue_settings(ACK_DEADLINE_MS, 5),
        MESSAGES as u32,
    )
    .await
    .expect("open a queue consumer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_its_replicas_delivers_nothing_the_new_leader_settled() {
    // Leadership stays where the elections put it (no return to the preferred replica).
    let env = vec![(
        "RAPIDMQ_CLUSTER__LEADER_REBALANCE_INTERVAL_MS".to_string(),
        "0".to_string(),
    )];
    let cluster = ProxiedCluster::start(&env).await;
    let subscription = queue_subscription(TOPIC, SUBSCRIPTION, ACK_DEADLINE_MS, 5);
    let messages: Vec<_> = (0..MESSAGES).map(|i| msg("", format!("job {i}"))).collect();
    let seed = one_replicated_partition(&cluster.nodes, TOPIC, subscription, &messages).await;
    let old = partition_leader(&seed, TOPIC, 0).await;
    let index = |id: u64| (id - 1) as usize;
    // The old leader must know the subscription before it is cut off: a node that has not
    // applied its creation yet would try to create it, through the metadata leader it cannot
    // reach, and refuse the consumer.
    let on_old = connect(&cluster.nodes[index(old)]).await;
    eventually("the partition's leader knows the subscription", || async {
        committed_offset(&on_old, TOPIC, SUBSCRIPTION, 0)
            .await
            .is_some()
    })
    .await;
    let others: Vec<u64> = (1..=NODES as u64).filter(|&id| id != old).collect();

    eprintln!("cutting node {old}, the partition's leader, off from nodes {others:?}");
    for &id in &others {
        cluster.links[&(index(old), index(id))].set(Fault::Blackhole);
        cluster.links[&(index(id), index(old))].set(Fault::Blackhole);
    }
    let mut survivor = connect(&cluster.nodes[index(others[0])]).await;
    let new = AtomicU64::new(old);
    eventually("the others elect a new leader", || async {
        let seen = partition_leader(&survivor, TOPIC, 0).await;
        new.store(seen, Ordering::Relaxed);
        seen != old
    })
    .await;
    let new = new.into_inner();
    eprintln!("node {new} leads now");
    if new != others[0] {
        survivor = connect(&cluster.nodes[index(new)]).await;
    }

    // The new leader delivers everything, and settles it.
    let mut consumer = open(&mut survivor).await;
    let delivered = consumer.receive(MESSAGES).await;
    consumer.ack(delivered.iter().map(receipt).collect()).await;
    eventually("the new leader took the acks", || async {
        committed_offset(&survivor, TOPIC, SUBSCRIPTION, 0).await == Some(MESSAGES as u64)
    })
    .await;

    // The old leader, which still believes it leads, hands none of it out again.
    let mut cut_off = connect(&cluster.nodes[index(old)]).await;
    let mut stale = open(&mut cut_off).await;
    let mut again = Vec::new();
    let until = tokio::time::Instant::now() + WATCH;
    while let Some(left) = until.checked_duration_since(tokio::time::Instant::now()) {
        if let Some(pb::consume_response::Kind::QueueBatch(batch)) = stale.next_within(left).await {
            again.extend(batch.messages.iter().map(|m| receipt(m).offset));
        }
    }
    assert!(
        again.is_empty(),
        "node {old}, cut off, delivered offsets {again:?} that node {new} had delivered and settled"
    );
}
