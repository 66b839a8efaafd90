//! A replica that missed more than its group keeps in the log catches up by snapshot, with real
//! processes: three nodes snapshot every few entries; one is killed while a partition takes
//! hundreds of batches; restarted, it installs the leader's snapshot (its log says so) and then
//! serves exactly what the others serve: the same batches, byte for byte, from the same log
//! start, and takes part in what comes after.
//!
//! Every wait polls until the condition holds, bounded by `PATIENCE`; no fixed sleep.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{agreed_leader, create_cluster_topic, start_nodes, while_unavailable};
use common::{BrokerOptions, Clients, PATIENCE, TestBroker, connect, encode, msg, topic_config};
use rapidmq_proto::v1 as pb;

const TOPIC: &str = "catchup";
/// Batches published while one node is down: many times what a group keeps in its log.
const BATCHES: usize = 150;
const SNAPSHOT_EVERY: &str = "10";
/// openraft's module that logs log purges on a leader (and what postponed them).
const PURGE_LOG: &str = "openraft::engine::handler::replication_handler";

/// Each node's last lines about purging its log.
fn purges(nodes: &[TestBroker]) -> String {
    let mut out = String::new();
    for (id, node) in (1..).zip(nodes) {
        let log = node.log();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("purge")).collect();
        out.push_str(&format!(
            "node {id}: {} purge lines, the last:\n",
            lines.len()
        ));
        for line in lines.iter().rev().take(5).rev() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

/// Everything `node` serves of partition 0, as fetched (the stored batches), from its log start.
async fn served(clients: &mut Clients) -> Option<(u64, Vec<pb::DeliveryBatch>)> {
    let mut batches = Vec::new();
    let mut offset = 0;
    let mut log_start = None;
    loop {
        let fetched = clients
            .messaging
            .fetch(pb::FetchRequest {
                topic: TOPIC.into(),
                partition: 0,
                offset,
                max_messages: 1000,
                max_wait_ms: 0,
            })
            .await
            .ok()?
            .into_inner();
        let Some(last) = fetched.batches.last() else {
            return Some((log_start.unwrap_or(offset), batches));
        };
        log_start.get_or_insert(fetched.batches[0].base_offset);
        offset = last.base_offset + u64::from(last.count);
        batches.extend(fetched.batches);
    }
}

async fn publish(clients: &Clients, index: usize) {
    let messaging = clients.messaging.clone();
    while_unavailable("publish", || {
        let mut messaging = messaging.clone();
        async move {
            messaging
                .publish(pb::PublishRequest {
                    topic: TOPIC.into(),
                    partition: 0,
                    batch: encode(&[msg(format!("k{index}"), format!("batch {index}"))]),
                    ..Default::default()
                })
                .await
        }
    })
    .await
    .expect("publish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_fell_behind_catches_up_by_snapshot_and_serves_the_same_bytes() {
    let mut nodes: Vec<TestBroker> = start_nodes(3, |_| BrokerOptions {
        env: vec![
            (
                "RAPIDMQ_CLUSTER__SNAPSHOT_EVERY_ENTRIES".into(),
                SNAPSHOT_EVERY.into(),
            ),
            // What the leaders purged, and why not, for the failure message.
            ("RAPIDMQ_LOG".into(), format!("info,{PURGE_LOG}=debug")),
        ],
        ..BrokerOptions::default()
    });
    let client = reqwest::Client::new();
    agreed_leader(
        &client,
        "http",
        &nodes.iter().collect::<Vec<_>>(),
        &[1, 2, 3].into(),
        None,
    )
    .await;
    let mut first = connect(&nodes[0]).await;
    let mut config = topic_config(1);
    config.replication_factor = Some(3);
    create_cluster_topic(&first, TOPIC, config).await;
    publish(&first, 0).await;

    // Node 3 goes down; the other two take many more batches than a group keeps.
    nodes[2].kill();
    for index in 1..BATCHES {
        publish(&first, index).await;
    }
    // Node 1 may follow the partition's leader: it serves an acked batch once it applied it.
    let deadline = Instant::now() + PATIENCE;
    let (start, expected) = loop {
        let (start, batches) = served(&mut first).await.expect("node 1 serves");
        let count: u64 = batches.iter().map(|b| u64::from(b.count)).sum();
        if start + count == BATCHES as u64 {
            break (start, batches);
        }
        assert!(
            Instant::now() < deadline,
            "node 1 serves {count} from {start}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(start, 0, "nothing was trimmed");

    // Back, it installs a snapshot (it is far behind what the leader keeps) and serves the same.
    nodes[2].restart();
    let mut third = connect(&nodes[2]).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen = served(&mut third).await;
        if seen.as_ref() == Some(&(start, expected.clone())) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 3 serves {:?} batches from {:?}, node 1 {} from {start}\n{}",
            seen.as_ref().map(|(_, b)| b.len()),
            seen.as_ref().map(|(s, _)| *s),
            expected.len(),
            nodes[2].log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        nodes[2]
            .log()
            .contains("installed a snapshot from the leader"),
        "node 3 caught up from the log, not by snapshot (the leader kept the entries it \
         missed):\n{}",
        purges(&nodes)
    );

    // It takes part again: a batch published now reaches it too.
    publish(&first, BATCHES).await;
    let (_, after) = loop {
        let seen = served(&mut third).await.expect("node 3 serves");
        if seen.1.len() > expected.len() || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(after.len(), expected.len() + 1);
}
