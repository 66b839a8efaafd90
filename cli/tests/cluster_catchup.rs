//! A replica that missed more than its group keeps in the log catches up by snapshot, with real
//! processes: three nodes snapshot every few entries; one is killed while a partition takes
//! hundreds of batches; restarted, it installs the leader's snapshot (its log says so) and then
//! serves exactly what the others serve: the same batches, byte for byte, from the same log
//! start, and takes part in what comes after. A replica rebuilt from a snapshot also holds the
//! partition's pending delayed messages and not those released while it was away: made the
//! leader, it releases each exactly once. And it knows the `msg-id`s the group accepted while
//! it was away: made the leader, it drops a retry of one as a duplicate.
//!
//! Every wait polls until the condition holds, bounded by `PATIENCE`; no fixed sleep.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{
    fetch_all, partition_leader, publish_retrying, replicated_topic, replicated_topic_with,
    start_nodes,
};
use common::{
    BrokerOptions, Clients, PATIENCE, TestBroker, connect, decode, encode, eventually, msg, raw,
    topic_config,
};
use prost::Message as _;
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
async fn served(clients: &Clients) -> Option<(u64, Vec<pb::DeliveryBatch>)> {
    let batches = fetch_all(clients, TOPIC, 0).await.ok()?;
    let log_start = batches.first().map_or(0, |batch| batch.base_offset);
    Some((log_start, batches))
}

async fn publish(clients: &Clients, index: usize) {
    let request = pb::PublishRequest {
        topic: TOPIC.into(),
        partition: 0,
        batch: encode(&[msg(format!("k{index}"), format!("batch {index}"))]),
        ..Default::default()
    };
    publish_retrying(clients, request).await.expect("publish");
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
    let (first, _) = replicated_topic(&nodes, TOPIC, 3).await;
    publish(&first, 0).await;

    // Node 3 goes down; the other two take many more batches than a group keeps.
    nodes[2].kill();
    for index in 1..BATCHES {
        publish(&first, index).await;
    }
    // Node 1 may follow the partition's leader: it serves an acked batch once it applied it.
    let deadline = Instant::now() + PATIENCE;
    let (start, expected) = loop {
        let (start, batches) = served(&first).await.expect("node 1 serves");
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
    let third = connect(&nodes[2]).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen = served(&third).await;
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
        let seen = served(&third).await.expect("node 3 serves");
        if seen.1.len() > expected.len() || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(after.len(), expected.len() + 1);
}

/// The values `clients`' node serves of partition 0, in offset order.
async fn served_values(clients: &Clients) -> Vec<String> {
    let (_, batches) = served(clients).await.unwrap_or_default();
    batches
        .iter()
        .flat_map(decode)
        .map(|r| String::from_utf8_lossy(&r.msg.value).into_owned())
        .collect()
}

/// Publishes one message delayed by `delay_ms` through `clients`' node (retried while the
/// partition has no leader).
async fn publish_delayed(clients: &Clients, value: &str, delay_ms: u64) {
    let message = pb::Message {
        delay_ms,
        ..raw(value)
    };
    publish_one(clients, message, "a delayed message").await;
}

/// Publishes `message` alone to partition 0 through `clients`' node (retried while the
/// partition has no leader); the ack.
async fn publish_one(clients: &Clients, message: pb::Message, what: &str) -> pb::PublishResponse {
    let batch = pb::MessageBatch {
        messages: vec![message],
        base_timestamp_ms: 0,
        compression: 0,
        ..Default::default()
    };
    let request = pb::PublishRequest {
        topic: TOPIC.into(),
        partition: 0,
        batch: batch.encode_to_vec().into(),
        ..Default::default()
    };
    publish_retrying(clients, request)
        .await
        .unwrap_or_else(|err| panic!("publish {what}: {err}"))
}

/// Three nodes that snapshot every few entries and hand leadership back to a partition's
/// preferred replica soon after it returns.
fn snapshotting_nodes() -> Vec<TestBroker> {
    start_nodes(3, |_| BrokerOptions {
        env: vec![
            (
                "RAPIDMQ_CLUSTER__SNAPSHOT_EVERY_ENTRIES".into(),
                SNAPSHOT_EVERY.into(),
            ),
            (
                "RAPIDMQ_CLUSTER__LEADER_REBALANCE_INTERVAL_MS".into(),
                "500".into(),
            ),
            ("RAPIDMQ_LOG".into(), format!("info,{PURGE_LOG}=debug")),
        ],
        ..BrokerOptions::default()
    })
}

/// Partition 0's preferred replica, once it leads, and a connection to another node.
async fn preferred_leading(nodes: &[TestBroker], created: &pb::TopicInfo) -> (u64, Clients) {
    let preferred = created.partitions[0].replicas[0];
    let other = (1..=3u64).find(|&id| id != preferred).expect("three nodes");
    let through_other = connect(&nodes[(other - 1) as usize]).await;
    eventually("the preferred replica leads", || async {
        partition_leader(&through_other, TOPIC, 0).await == preferred
    })
    .await;
    (preferred, through_other)
}

/// Restarts the killed `preferred` replica and waits until it leads partition 0 again, as it
/// and a survivor (`through_other`) see it (the restarted node reports the leadership it had
/// before it died until it hears of the newer term); checks it caught up by snapshot. A
/// connection to it.
async fn back_by_snapshot(
    nodes: &mut [TestBroker],
    preferred: u64,
    through_other: &Clients,
) -> Clients {
    let index = (preferred - 1) as usize;
    nodes[index].restart();
    let through_preferred = connect(&nodes[index]).await;
    eventually("the preferred replica leads again", || async {
        partition_leader(through_other, TOPIC, 0).await == preferred
            && partition_leader(&through_preferred, TOPIC, 0).await == preferred
    })
    .await;
    assert!(
        nodes[index]
            .log()
            .contains("installed a snapshot from the leader"),
        "node {preferred} caught up from the log, not by snapshot:\n{}",
        purges(nodes)
    );
    through_preferred
}

/// A replica rebuilt from a snapshot has the partition's schedule as the group has it: the
/// delayed message published while it was down (its entry purged from the leader's log before
/// it came back) is pending there, and the one released while it was down is gone. Made the
/// leader again (it is the preferred replica), it releases the pending one, once, and not the
/// released one a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_rebuilt_from_a_snapshot_releases_each_delayed_message_once() {
    /// Released while the preferred replica is down.
    const EARLY_MS: u64 = 500;
    /// Due once the preferred replica is back and leads again.
    const LATE_MS: u64 = 25_000;
    let mut nodes = snapshotting_nodes();
    let (_, created) = replicated_topic(&nodes, TOPIC, 3).await;
    let (preferred, through_other) = preferred_leading(&nodes, &created).await;
    let node = |id: u64| (id - 1) as usize;

    // "early" is scheduled on every replica, then the preferred one goes down and the others
    // release it.
    publish_delayed(&through_other, "early", EARLY_MS).await;
    nodes[node(preferred)].kill();
    eventually("a survivor releases the early message", || async {
        served_values(&through_other).await == ["early"]
    })
    .await;
    // "late" is scheduled, then many batches: the leader purges the entries the preferred
    // replica missed, the schedule of "late" among them.
    publish_delayed(&through_other, "late", LATE_MS).await;
    let late_due = Instant::now() + Duration::from_millis(LATE_MS);
    for index in 0..BATCHES {
        publish(&through_other, index).await;
    }

    // Back, it catches up by snapshot and leads again before "late" is due.
    let through_preferred = back_by_snapshot(&mut nodes, preferred, &through_other).await;
    assert!(
        Instant::now() < late_due,
        "the preferred replica took the lead only after the late message was due; the test \
         cannot tell who released it"
    );

    // It releases "late" once it is due, and never "early" again.
    let deadline = late_due + PATIENCE;
    let values = loop {
        let values = served_values(&through_preferred).await;
        if values.last().map(String::as_str) == Some("late") {
            break values;
        }
        assert!(
            Instant::now() < deadline,
            "node {preferred} (the leader) never released the late message: it serves {} \
             messages, the last {:?}",
            values.len(),
            values.last()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let count = |value: &str| values.iter().filter(|v| *v == value).count();
    assert_eq!(
        (count("early"), count("late"), values.len()),
        (1, 1, BATCHES + 2),
        "each delayed message once, with every batch"
    );
    // The replicas agree.
    eventually("the other replica serves the same", || async {
        served_values(&through_other).await == values
    })
    .await;
}

/// Publishes one message with `msg-id` `id` through `clients`' node (retried while the partition
/// has no leader); the indexes the ack reports as duplicates.
async fn publish_with_id(clients: &Clients, id: &str) -> Vec<u32> {
    let message = pb::Message {
        headers: vec![pb::Header {
            key: "msg-id".into(),
            value: id.as_bytes().to_vec().into(),
        }],
        ..raw(id)
    };
    publish_one(clients, message, "a message with a msg-id")
        .await
        .deduplicated
}

/// The `msg-id` dedup records of a topic are written with each publish on every replica; a
/// replica that missed the publishes (their entries purged from the leader's log before it came
/// back) gets them with the snapshot's batches. Made the leader, it drops a retry of an id the
/// group accepted while it was away, as the old leader would have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_rebuilt_from_a_snapshot_drops_a_retried_msg_id() {
    let mut nodes = snapshotting_nodes();
    let config = pb::TopicConfig {
        replication_factor: Some(3),
        dedup_window_ms: Some(600_000),
        ..topic_config(1)
    };
    let (_, created) = replicated_topic_with(&nodes, TOPIC, config).await;
    let (preferred, through_other) = preferred_leading(&nodes, &created).await;
    let node = |id: u64| (id - 1) as usize;

    nodes[node(preferred)].kill();
    for index in 0..BATCHES {
        let duplicates = publish_with_id(&through_other, &format!("id-{index}")).await;
        assert!(duplicates.is_empty(), "id-{index} is new");
    }
    assert_eq!(
        publish_with_id(&through_other, "id-7").await,
        [0],
        "the survivors drop a retry"
    );

    let through_preferred = back_by_snapshot(&mut nodes, preferred, &through_other).await;

    assert_eq!(
        publish_with_id(&through_preferred, "id-7").await,
        [0],
        "the rebuilt leader drops a retry of an id the group accepted while it was away"
    );
    assert!(
        publish_with_id(&through_preferred, "id-new")
            .await
            .is_empty(),
        "a new id is stored"
    );
    let values = served_values(&through_preferred).await;
    assert_eq!(values.len(), BATCHES + 1, "each id once");
    assert_eq!(values.iter().filter(|v| *v == "id-7").count(), 1);
}
