//! Cluster identity (docs/clustering.md "Cluster identity"): a node of another cluster that
//! listens at the address of a node that is down gets this cluster's raft messages, and refuses
//! them, instead of taking them for its own groups (both clusters number their groups and nodes
//! alike). Before the check, the leader of this cluster's partition stopped with a panic within
//! seconds (a heartbeat answered with a log it had never sent) and the other cluster's node
//! with it; in CI this came from two tests of one file whose nodes met at a reused port.
//!
//! Every wait polls until the condition holds, bounded by `PATIENCE`; no fixed sleep.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{
    create_cluster_topic, free_ports, partition_leader, publish_retrying, start_node,
};
use common::{PATIENCE, connect, encode, msg, topic_config};
use rapidmq_proto::v1 as pb;

/// `--peers` for these `(node id, port)` pairs.
fn peers(ports: &[(u64, u16)]) -> String {
    ports
        .iter()
        .map(|(id, port)| format!("{id}=127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A publish of one message to partition 0 of `orders` as producer 5, sequence `seq`.
fn publish(seq: u64) -> pb::PublishRequest {
    pb::PublishRequest {
        topic: "orders".into(),
        partition: 0,
        producer_id: 5,
        base_sequence: seq,
        batch: encode(&[msg("k", format!("m{seq}"))]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_cluster_at_a_down_peers_address_refuses_its_messages() {
    let x_ports: Vec<(u64, u16)> = (1..=3u64).zip(free_ports(3)).collect();
    let mut x: Vec<_> = (1..=3).map(|id| start_node(id, &peers(&x_ports))).collect();
    let via_x = connect(&x[0]).await;
    create_cluster_topic(&via_x, "orders", topic_config(1)).await;
    let leader = partition_leader(&via_x, "orders", 0).await;
    let via_leader = connect(&x[leader as usize - 1]).await;
    publish_retrying(&via_leader, publish(0))
        .await
        .expect("a publish before");

    // A follower goes down; a node of cluster Y, with the same id, starts at its address.
    let down = (1..=3u64).find(|id| *id != leader).expect("a follower");
    x[down as usize - 1].kill();
    let mut others = free_ports(2).into_iter();
    let y_ports: Vec<(u64, u16)> = (1..=3u64)
        .map(|id| match id == down {
            true => (id, x_ports[down as usize - 1].1),
            false => (id, others.next().expect("a port")),
        })
        .collect();
    let y: Vec<_> = (1..=3).map(|id| start_node(id, &peers(&y_ports))).collect();
    let via_y = connect(&y[0]).await;
    create_cluster_topic(&via_y, "orders", topic_config(1)).await;

    // X's leader keeps sending to that address: Y's node refuses each request, and X carries
    // on with its other follower.
    let impostor = &y[down as usize - 1];
    let deadline = Instant::now() + PATIENCE;
    let mut seq = 1;
    while !impostor.log().contains("cluster_request_refused") {
        assert!(
            Instant::now() < deadline,
            "Y's node never refused X's requests"
        );
        publish_retrying(&via_leader, publish(seq))
            .await
            .unwrap_or_else(|status| panic!("X publish {seq}: {status:?}"));
        seq += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..10 {
        publish_retrying(&via_leader, publish(seq))
            .await
            .unwrap_or_else(|status| panic!("X publish {seq}: {status:?}"));
        seq += 1;
    }
    let refused = impostor.log();
    assert!(
        refused.contains("the request came from cluster"),
        "refused as another cluster's: {refused}"
    );
    publish_retrying(&connect(&y[0]).await, publish(0))
        .await
        .expect("cluster Y serves its own topic");
    for (name, node) in x.iter().map(|n| ("X", n)).chain(y.iter().map(|n| ("Y", n))) {
        assert!(
            !node.log().contains(" panicked at "),
            "a node of {name} panicked: {}",
            node.log()
        );
    }
}
