//! Queue delivery and ack state in cluster mode, with real processes: three nodes, a queue
//! subscription on a one-partition topic with three replicas.
//!
//! Only the partition's leader delivers it: a consumer through another node gets nothing while
//! a consumer through the leader takes every message. The leader proposes its ack state to the
//! partition's group, so the other replicas see the acks. The leader is killed (-9); the new
//! leader delivers only what was not acked, as second attempts, to the consumer through it.
//!
//! Every wait polls until the condition holds, bounded by `PATIENCE`; no fixed sleep.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::cluster::{committed_offset, one_replicated_partition, partition_leader, start_nodes};
use common::{
    BrokerOptions, Clients, QueueConsumer, connect, eventually, msg, queue_settings,
    queue_subscription, receipt, value_of,
};
use rapidmq_proto::v1 as pb;

const TOPIC: &str = "jobs";
const SUBSCRIPTION: &str = "workers";
const MESSAGES: usize = 30;
/// How many of them the first consumer acks (the lowest offsets).
const ACKED: usize = 20;
/// Long enough that nothing times out and moves on its own during the test.
const ACK_DEADLINE_MS: u64 = 120_000;

/// The queue floor (lowest unsettled offset) of partition 0 that `clients`' node reports.
async fn floor(clients: &Clients) -> Option<u64> {
    committed_offset(clients, TOPIC, SUBSCRIPTION, 0).await
}

async fn open(clients: &mut Clients) -> QueueConsumer {
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

/// Whether `consumer` has a message waiting, without waiting for one.
async fn holds_a_message(consumer: &mut QueueConsumer) -> bool {
    matches!(
        consumer.next_within(Duration::ZERO).await,
        Some(pb::consume_response::Kind::QueueBatch(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_delivers_and_a_new_leader_redelivers_only_what_was_not_acked() {
    // Leadership stays where the election put it (no return to the preferred replica), so the
    // test knows which node delivers.
    let mut nodes = start_nodes(3, |_| BrokerOptions {
        env: vec![(
            "RAPIDMQ_CLUSTER__LEADER_REBALANCE_INTERVAL_MS".into(),
            "0".into(),
        )],
        ..BrokerOptions::default()
    });
    let subscription = queue_subscription(TOPIC, SUBSCRIPTION, ACK_DEADLINE_MS, 5);
    let messages: Vec<_> = (0..MESSAGES).map(|i| msg("", format!("job {i}"))).collect();
    let seed = one_replicated_partition(&nodes, TOPIC, subscription, &messages).await;

    let leader = partition_leader(&seed, TOPIC, 0).await;
    let node = |id: u64| (id - 1) as usize;
    let others: Vec<u64> = (1..=3).filter(|&id| id != leader).collect();
    let mut clients = Vec::new();
    for id in 1..=3u64 {
        let clients_of = connect(&nodes[node(id)]).await;
        eventually(&format!("node {id} knows the subscription"), || async {
            floor(&clients_of).await.is_some()
        })
        .await;
        clients.push(clients_of);
    }
    // Consumers through the other nodes first, then through the leader.
    let mut elsewhere = Vec::new();
    for &id in &others {
        elsewhere.push((id, open(&mut clients[node(id)]).await));
    }
    let mut at_leader = open(&mut clients[node(leader)]).await;
    let first = at_leader.receive(MESSAGES).await;
    let mut offsets: Vec<u64> = first.iter().map(|m| receipt(m).offset).collect();
    offsets.sort_unstable();
    assert_eq!(offsets, (0..MESSAGES as u64).collect::<Vec<_>>());
    let mut by_offset = first.clone();
    by_offset.sort_by_key(|m| receipt(m).offset);
    let (acked, held) = by_offset.split_at(ACKED);
    at_leader.ack(acked.iter().map(receipt).collect()).await;

    // The acks reach every replica, through the group.
    for &id in &others {
        eventually(&format!("node {id} sees the acks"), || async {
            floor(&clients[node(id)]).await == Some(ACKED as u64)
        })
        .await;
    }
    for (id, consumer) in &mut elsewhere {
        assert!(
            !holds_a_message(consumer).await,
            "node {id} delivered a message its leader {leader} delivers"
        );
    }

    // The leader dies; the new one delivers what was not acked, as second attempts.
    drop(at_leader);
    nodes[node(leader)].kill();
    let new_leader = AtomicU64::new(leader);
    eventually("a new leader is elected", || async {
        let seen = partition_leader(&clients[node(others[0])], TOPIC, 0).await;
        new_leader.store(seen, Ordering::Relaxed);
        seen != leader
    })
    .await;
    let new_leader = new_leader.into_inner();
    let (_, consumer) = elsewhere
        .iter_mut()
        .find(|(id, _)| *id == new_leader)
        .expect("the new leader is one of the others");
    let again = consumer.receive(MESSAGES - ACKED).await;
    let mut values: Vec<String> = again.iter().map(value_of).collect();
    values.sort();
    let mut expected: Vec<String> = held.iter().map(value_of).collect();
    expected.sort();
    assert_eq!(values, expected, "exactly the unacked messages come back");
    assert!(
        again.iter().all(|m| m.attempt == 2),
        "each is a second attempt: {:?}",
        again.iter().map(|m| m.attempt).collect::<Vec<_>>()
    );
    let (other, rest) = elsewhere
        .iter_mut()
        .find(|(id, _)| *id != new_leader)
        .expect("a third node");
    assert!(
        !holds_a_message(rest).await,
        "node {other} delivered a message its leader {new_leader} delivers"
    );
}
