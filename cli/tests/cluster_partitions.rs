//! Partition data through the partition groups, with three real `rapidmq serve` processes: a
//! topic's partitions are placed on every node (replication factor 3 by default), an idempotent
//! producer publishes through node 1, and nodes 2 and 3 serve the same messages at the same
//! offsets. Then the node leading partition 0 is killed (`kill -9`), the producer carries on
//! through a survivor that does not lead partition 0 (its appends are forwarded to the new
//! leader), and both survivors serve every acknowledged message at its acknowledged offset,
//! none twice. A replication factor above the voters is refused with its stable code. A leader
//! that lost both other replicas answers a publish `UNAVAILABLE` in bounded time, and the
//! producer's retry is stored once.
//!
//! Every wait polls until the condition holds, bounded by `PATIENCE`; no fixed sleep.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::cluster::{
    create_cluster_topic, fetch_all, partition_leader as known_leader, publish_retrying,
    replicated_topic_with, start_nodes, while_unavailable,
};
use common::{
    BrokerOptions, Clients, PATIENCE, TestBroker, connect, decode, encode, error_code, msg, start,
    topic_config,
};
use prost::Message as _;
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1 as pb;
use serde_json::Value;

const TOPIC: &str = "orders";
const PARTITIONS: u32 = 3;
const PRODUCER: u64 = 77;
/// Messages per batch.
const BATCH: u64 = 4;
/// Batches per partition before the leader of partition 0 is killed, and after.
const BEFORE: u64 = 8;
const AFTER: u64 = 8;

/// What the producer had acknowledged: per partition, offset → value.
type Acked = BTreeMap<u32, BTreeMap<u64, String>>;

/// Publishes batch `index` of `partition` through `clients` as the idempotent producer, the
/// same sequence on every retry, and records the acked offsets.
async fn publish(clients: &mut Clients, acked: &mut Acked, partition: u32, index: u64) {
    let values: Vec<String> = (0..BATCH)
        .map(|i| format!("p{partition}-m{}", index * BATCH + i))
        .collect();
    let messages: Vec<_> = values.iter().map(|v| msg("k", v.clone())).collect();
    let request = pb::PublishRequest {
        topic: TOPIC.into(),
        partition,
        producer_id: PRODUCER,
        base_sequence: index * BATCH,
        batch: encode(&messages),
    };
    let answer = publish_retrying(clients, request)
        .await
        .unwrap_or_else(|status| panic!("publish p{partition} batch {index}: {status:?}"));
    assert_eq!(answer.count as u64, BATCH);
    let offsets = acked.entry(partition).or_default();
    for (i, value) in values.into_iter().enumerate() {
        offsets.insert(answer.base_offset + i as u64, value);
    }
}

/// Everything `node` serves of `partition`, offset → value, once it serves `count` messages.
async fn served(node: &TestBroker, partition: u32, count: usize) -> BTreeMap<u64, String> {
    let mut clients = connect(node).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
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
                break;
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
        if seen.len() >= count {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{} serves {} of {count} messages of partition {partition}",
            node.grpc_url(),
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `rapidmq topic describe TOPIC --output json` against `node`, once `node` has applied the
/// topic's create (a create answers once the metadata leader applied it; a follower applies it
/// a moment later, and until then says `TOPIC_NOT_FOUND`).
fn describe(node: &TestBroker) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let output = rapidmq_testkit::cli_command()
            .args(["topic", "describe", TOPIC, "--output", "json"])
            .env("RAPIDMQ_SERVER", node.grpc_url())
            .output()
            .expect("run rapidmq");
        if output.status.success() {
            return serde_json::from_slice(&output.stdout).expect("describe prints JSON");
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("TOPIC_NOT_FOUND") && Instant::now() < deadline,
            "describe: {stderr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Each partition's replicas as `node` describes them.
fn placement(node: &TestBroker) -> Vec<Vec<u64>> {
    describe(node)["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            p["replicas"]
                .as_array()
                .expect("replicas")
                .iter()
                .map(|id| id.as_u64().expect("node id"))
                .collect()
        })
        .collect()
}

/// The leader of partition `partition` once every node of `nodes` names the same one, other
/// than `not`.
async fn partition_leader(nodes: &[&TestBroker], partition: u32, not: Option<u64>) -> u64 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let leaders: BTreeSet<Option<u64>> = nodes
            .iter()
            .map(|node| describe(node)["partitions"][partition as usize]["leader"].as_u64())
            .collect();
        if leaders.len() == 1
            && let Some(Some(leader)) = leaders.first().copied()
            && Some(leader) != not
        {
            return leader;
        }
        assert!(
            Instant::now() < deadline,
            "no agreed leader of partition {partition}: {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks that `node` serves exactly what was acked, at the acked offsets.
async fn serves_what_was_acked(node: &TestBroker, acked: &Acked) {
    for (partition, offsets) in acked {
        let seen = served(node, *partition, offsets.len()).await;
        assert_eq!(
            &seen,
            offsets,
            "{} serves partition {partition} as acked",
            node.grpc_url()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_replicated_and_survive_the_loss_of_their_leader() {
    let mut nodes = start_nodes(3, |_| BrokerOptions::default());
    let mut via_1 = connect(&nodes[0]).await;
    let created = create_cluster_topic(&via_1, TOPIC, topic_config(PARTITIONS)).await;
    assert_eq!(created.config.and_then(|c| c.replication_factor), Some(3));

    // Placed on every node, first replicas spread; every node describes the same placement.
    let placed = placement(&nodes[0]);
    assert_eq!(placed.len(), PARTITIONS as usize);
    for replicas in &placed {
        let set: BTreeSet<u64> = replicas.iter().copied().collect();
        assert_eq!(set, BTreeSet::from([1, 2, 3]), "{placed:?}");
    }
    let firsts: BTreeSet<u64> = placed.iter().map(|r| r[0]).collect();
    assert_eq!(firsts.len(), 3, "preferred leaders spread: {placed:?}");
    for node in &nodes[1..] {
        assert_eq!(placement(node), placed);
    }
    // A new group elects its preferred leader: leaders are spread like the first replicas.
    let all: Vec<&TestBroker> = nodes.iter().collect();
    for (partition, replicas) in (0..).zip(&placed) {
        assert_eq!(
            partition_leader(&all, partition, None).await,
            replicas[0],
            "partition {partition} led by its first replica"
        );
    }

    // Through node 1; nodes 2 and 3 serve the same messages at the same offsets.
    let mut acked = Acked::new();
    for index in 0..BEFORE {
        for partition in 0..PARTITIONS {
            publish(&mut via_1, &mut acked, partition, index).await;
        }
    }
    for node in &nodes {
        serves_what_was_acked(node, &acked).await;
    }

    // Kill -9 the leader of partition 0; carry on through a survivor that does not lead it.
    let old = partition_leader(&all, 0, None).await;
    eprintln!("killing node {old}, the leader of partition 0");
    nodes[old as usize - 1].kill();
    let survivors: Vec<usize> = (0..3).filter(|i| *i + 1 != old as usize).collect();
    let new = partition_leader(
        &survivors.iter().map(|i| &nodes[*i]).collect::<Vec<_>>(),
        0,
        Some(old),
    )
    .await;
    let through = survivors
        .iter()
        .copied()
        .find(|i| *i as u64 + 1 != new)
        .expect("a survivor that does not lead partition 0");
    eprintln!(
        "partition 0 now led by node {new}; publishing through node {}",
        through + 1
    );
    let mut via = connect(&nodes[through]).await;
    for index in BEFORE..BEFORE + AFTER {
        for partition in 0..PARTITIONS {
            publish(&mut via, &mut acked, partition, index).await;
        }
    }

    // Every acked message, at its acked offset, on both survivors; none twice.
    for partition in 0..PARTITIONS {
        let offsets = &acked[&partition];
        assert_eq!(offsets.len() as u64, (BEFORE + AFTER) * BATCH);
        let values: BTreeSet<&String> = offsets.values().collect();
        assert_eq!(values.len(), offsets.len(), "no message acked twice");
    }
    for i in &survivors {
        serves_what_was_acked(&nodes[*i], &acked).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replication_factor_above_the_voters_is_refused_and_below_it_outsiders_forward() {
    let nodes = start_nodes(3, |_| BrokerOptions::default());
    let create = |name: &str, rf: &str| {
        rapidmq_testkit::cli_command()
            .args(["topic", "create", name, "--replication-factor", rf])
            .args(["--partitions", "3", "--output", "json"])
            .env("RAPIDMQ_SERVER", nodes[1].grpc_url())
            .output()
            .expect("run rapidmq")
    };
    // The first create may meet a metadata group still electing: retried while unavailable.
    let deadline = Instant::now() + PATIENCE;
    let refused = loop {
        let output = create("wide", "4");
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        if !stderr.contains("UNAVAILABLE") || Instant::now() >= deadline {
            break output;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!refused.status.success(), "RF 4 on 3 nodes is refused");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("INVALID_TOPIC_CONFIG"), "{stderr}");

    // Through gRPC: the stable code, as an INVALID_ARGUMENT.
    let mut clients = connect(&nodes[2]).await;
    let mut config = topic_config(1);
    config.replication_factor = Some(4);
    let status = clients
        .admin
        .create_topic(pb::CreateTopicRequest {
            name: "wide".into(),
            config: Some(config),
        })
        .await
        .expect_err("RF 4 on 3 nodes is refused");
    assert_eq!(error_code(&status), ErrorCode::InvalidTopicConfig);
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    // RF 2: two replicas per partition, on distinct nodes, first replicas spread.
    let placed = create("narrow", "2");
    assert!(
        placed.status.success(),
        "{}",
        String::from_utf8_lossy(&placed.stderr)
    );
    let info: Value = serde_json::from_slice(&placed.stdout).expect("JSON");
    assert_eq!(info["config"]["replication_factor"], 2);
    let firsts: BTreeSet<u64> = info["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            let replicas = p["replicas"].as_array().expect("replicas");
            assert_eq!(replicas.len(), 2);
            assert_ne!(replicas[0], replicas[1]);
            replicas[0].as_u64().expect("node id")
        })
        .collect();
    assert_eq!(firsts.len(), 3);

    // A node that is not a replica of partition 0 forwards its appends to the replicas.
    let replicas: BTreeSet<u64> = info["partitions"][0]["replicas"]
        .as_array()
        .expect("replicas")
        .iter()
        .map(|id| id.as_u64().expect("node id"))
        .collect();
    let outsider = (1..=3u64)
        .find(|id| !replicas.contains(id))
        .expect("RF 2 of 3 leaves one node out");
    let via = connect(&nodes[outsider as usize - 1]).await;
    let request = pb::PublishRequest {
        topic: "narrow".into(),
        partition: 0,
        batch: encode(&[msg("k", "from an outsider")]),
        ..Default::default()
    };
    let ack = while_unavailable("publish through a non-replica", || {
        let mut messaging = via.messaging.clone();
        let request = request.clone();
        async move { messaging.publish(request).await }
    })
    .await
    .expect("a non-replica forwards the append")
    .into_inner();
    let replica = &nodes[*replicas.first().expect("a replica") as usize - 1];
    let mut clients = connect(replica).await;
    let fetched = clients
        .messaging
        .fetch(pb::FetchRequest {
            topic: "narrow".into(),
            partition: 0,
            offset: ack.base_offset,
            max_messages: 1,
            max_wait_ms: PATIENCE.as_millis() as u32,
        })
        .await
        .expect("fetch")
        .into_inner();
    let received: Vec<_> = fetched.batches.iter().flat_map(decode).collect();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].offset, ack.base_offset);
    assert_eq!(&received[0].msg.value[..], b"from an outsider");

    // The outsider lists the topic with the group's figures for partition 0, as it describes
    // it, not with its own (it holds none of the data).
    let listed = via
        .admin
        .clone()
        .list_topics(pb::ListTopicsRequest::default())
        .await
        .expect("list topics")
        .into_inner();
    let narrow = listed
        .topics
        .iter()
        .find(|t| t.name == "narrow")
        .expect("the topic is listed");
    assert_eq!(
        narrow.partitions[0].high_watermark,
        ack.base_offset + 1,
        "listed through a node without a replica"
    );

    // So does it list a subscription: partition 0's high watermark and lag are the group's.
    let admin = via.admin.clone();
    while_unavailable("create a subscription", || {
        let mut admin = admin.clone();
        async move {
            admin
                .create_subscription(pb::CreateSubscriptionRequest {
                    topic: "narrow".into(),
                    name: "audit".into(),
                    mode: pb::SubscriptionMode::Stream as i32,
                    start: Some(start(pb::StartKind::Earliest)),
                    queue: None,
                })
                .await
        }
    })
    .await
    .expect("create a subscription");
    let listed = admin
        .clone()
        .list_subscriptions(pb::ListSubscriptionsRequest {
            topic: "narrow".into(),
        })
        .await
        .expect("list subscriptions")
        .into_inner();
    let cursor = &listed.subscriptions[0].cursors[0];
    assert_eq!(cursor.partition, 0);
    assert_eq!(
        (cursor.high_watermark, cursor.lag),
        (ack.base_offset + 1, ack.base_offset + 1),
        "subscription listed through a node without a replica"
    );
}

/// A leader cut off from both other replicas cannot commit. A publish to it is answered
/// `UNAVAILABLE` once the proposal deadline passes (`PROPOSAL_TIMEOUT`, 10 s) instead of waiting
/// for as long as they stay away. The entry it proposed may still commit when one comes back,
/// so the producer's retry (same producer, same sequence) is answered with that batch's offset,
/// and the message is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_its_leader_cannot_commit_fails_in_time_and_its_retry_is_stored_once() {
    let mut nodes = start_nodes(3, |_| BrokerOptions::default());
    let via_1 = connect(&nodes[0]).await;
    create_cluster_topic(&via_1, TOPIC, topic_config(1)).await;
    let all: Vec<&TestBroker> = nodes.iter().collect();
    let leader = partition_leader(&all, 0, None).await;
    let mut via_leader = connect(&nodes[leader as usize - 1]).await;
    let mut acked = Acked::new();
    publish(&mut via_leader, &mut acked, 0, 0).await;
    let others: Vec<usize> = (0..3).filter(|i| *i as u64 + 1 != leader).collect();
    for i in &others {
        nodes[*i].kill();
    }

    let request = pb::PublishRequest {
        topic: TOPIC.into(),
        partition: 0,
        producer_id: PRODUCER,
        base_sequence: BATCH,
        batch: encode(&[msg("k", "late")]),
    };
    let answer = tokio::time::timeout(PATIENCE, via_leader.messaging.publish(request.clone()))
        .await
        .expect("the publish is answered while the other replicas are down");
    let status = answer.expect_err("nothing commits without a second replica");
    assert_eq!(error_code(&status), ErrorCode::Unavailable, "{status:?}");

    nodes[others[0]].restart();
    let retried = publish_retrying(&via_leader, request)
        .await
        .expect("the retry once a second replica is back");
    assert_eq!(retried.base_offset, BATCH, "right after the first batch");
    let stored = served(&nodes[leader as usize - 1], 0, BATCH as usize + 1).await;
    assert_eq!(
        stored.values().filter(|v| *v == "late").count(),
        1,
        "stored once: {stored:?}"
    );
    assert_eq!(stored.get(&BATCH).map(String::as_str), Some("late"));
}

/// A leader whose disk is slower than its followers' can crash with entries the followers
/// committed but it never stored: it replicates each entry while its own write is under way. Back
/// up, it must not lead its old term again. Were it to, it would number its next entry like the
/// one it lost (same term, same index), the followers would take the two for one, and the
/// replicas would hold different messages at the same offsets (the nemesis run, seed
/// 1896079380718991802: a thousand offsets of one partition). It must win an election first,
/// which its shorter log cannot, so a follower leads and the restarted node catches up.
///
/// The leader's raft log writes are held (`stall raft-log-writes`) while a message commits on
/// the followers; the followers are paused (SIGSTOP) while the leader is killed and started
/// again, so the restarted node is alone and acts on what it has; a publish through it cannot be
/// acknowledged then. Once the followers run again, every replica must serve the same messages
/// at the same offsets, the publish retried through the restarted node among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_leader_that_lost_committed_entries_does_not_lead_its_old_term() {
    let faults = tempfile::tempdir().expect("a directory for the fault files");
    let fault_file = |id: u64| faults.path().join(format!("node-{id}"));
    for id in 1..=3 {
        std::fs::write(fault_file(id), "").expect("an empty fault file");
    }
    let mut nodes = start_nodes(3, |id| BrokerOptions {
        env: vec![(
            "RAPIDMQ_TEST_FAULT_FILE".into(),
            fault_file(id).display().to_string(),
        )],
        ..BrokerOptions::default()
    });
    let via_1 = connect(&nodes[0]).await;
    create_cluster_topic(&via_1, TOPIC, topic_config(1)).await;
    let all: Vec<&TestBroker> = nodes.iter().collect();
    let leader = partition_leader(&all, 0, None).await;
    let at = leader as usize - 1;
    let followers: Vec<usize> = (0..3).filter(|i| *i != at).collect();
    let plain = |value: &str| pb::PublishRequest {
        topic: TOPIC.into(),
        partition: 0,
        batch: encode(&[msg("k", value)]),
        ..Default::default()
    };
    let via_leader = connect(&nodes[at]).await;
    publish_retrying(&via_leader, plain("before"))
        .await
        .expect("the first publish");

    // Committed by the followers, never stored by the leader: its publish stays unanswered.
    std::fs::write(fault_file(leader), "stall raft-log-writes\n").expect("stall the leader");
    let mut unstored = via_leader.messaging.clone();
    let unanswered = tokio::spawn(async move { unstored.publish(plain("unstored")).await });
    for i in &followers {
        served(&nodes[*i], 0, 2).await;
    }
    for i in &followers {
        nodes[*i].pause();
    }
    nodes[at].kill();
    let _ = unanswered.await;
    std::fs::write(fault_file(leader), "").expect("clear the stall");
    nodes[at].start_again();

    // Alone, the restarted node acknowledges nothing, whatever it believes it leads.
    let mut alone = connect(&nodes[at]).await;
    let answer = tokio::time::timeout(PATIENCE, alone.messaging.publish(plain("after")))
        .await
        .expect("a publish through the lone node is answered in time");
    assert!(
        answer.is_err(),
        "acknowledged without a majority: {answer:?}"
    );

    for i in &followers {
        nodes[*i].resume();
    }
    let acked = publish_retrying(&alone, plain("after"))
        .await
        .expect("the publish once the followers are back");
    let count = acked.base_offset as usize + 1;
    let mut seen = Vec::new();
    for node in &nodes {
        seen.push(served(node, 0, count).await);
    }
    assert_eq!(seen[0].get(&0).map(String::as_str), Some("before"));
    assert_eq!(
        seen[0].get(&acked.base_offset).map(String::as_str),
        Some("after")
    );
    assert!(
        seen.iter().all(|s| *s == seen[0]),
        "the replicas hold different messages (node {leader} restarted): {seen:#?}"
    );
}

/// A batch of one message with `msg-id` `id` (its value too).
fn with_msg_id(id: &str) -> Bytes {
    pb::MessageBatch {
        messages: vec![pb::Message {
            value: Bytes::from(id.to_string()),
            headers: vec![pb::Header {
                key: "msg-id".into(),
                value: Bytes::from(id.to_string()),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
    .encode_to_vec()
    .into()
}

/// Publishes message `id` (as its `msg-id`) to partition 0 of `topic` through `clients`' node;
/// the indexes the broker dropped as duplicates.
async fn publish_msg_id(clients: &Clients, topic: &str, id: &str) -> Vec<u32> {
    let request = pb::PublishRequest {
        topic: topic.into(),
        partition: 0,
        batch: with_msg_id(id),
        ..Default::default()
    };
    publish_retrying(clients, request)
        .await
        .unwrap_or_else(|status| panic!("publish {id}: {status:?}"))
        .deduplicated
}

/// On a topic with a `msg-id` dedup window, a retry is dropped whichever node it reaches: the
/// partition's leader, a replica that follows, or a node that holds no replica (the check
/// runs on the leader, which has every id the group accepted). And a stream of an idempotent
/// producer's batches through a node that does not lead keeps its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_msg_id_is_dropped_through_any_node() {
    const TOPIC: &str = "ids";
    let nodes = start_nodes(3, |_| BrokerOptions::default());
    let config = pb::TopicConfig {
        replication_factor: Some(2),
        dedup_window_ms: Some(600_000),
        ..topic_config(1)
    };
    let (first, created) = replicated_topic_with(&nodes, TOPIC, config).await;
    drop(first);
    let replicas = &created.partitions[0].replicas;
    let replica_clients = connect(&nodes[replicas[0] as usize - 1]).await;
    let leader = known_leader(&replica_clients, TOPIC, 0).await;
    let follower = *replicas.iter().find(|&&id| id != leader).expect("RF 2");
    let outsider = (1..=3u64)
        .find(|id| !replicas.contains(id))
        .expect("RF 2 of 3 leaves one node out");
    let via = |id: u64| connect(&nodes[id as usize - 1]);
    let (leader, follower, outsider) =
        (via(leader).await, via(follower).await, via(outsider).await);

    assert!(
        publish_msg_id(&leader, TOPIC, "x").await.is_empty(),
        "x is new"
    );
    assert_eq!(
        publish_msg_id(&outsider, TOPIC, "x").await,
        [0],
        "a node without a replica drops a retry of x"
    );
    assert_eq!(
        publish_msg_id(&follower, TOPIC, "x").await,
        [0],
        "so does the follower"
    );
    assert!(
        publish_msg_id(&outsider, TOPIC, "y").await.is_empty(),
        "y is new"
    );
    assert_eq!(publish_msg_id(&follower, TOPIC, "y").await, [0]);
    assert_eq!(publish_msg_id(&leader, TOPIC, "y").await, [0]);

    // An idempotent producer's stream through the node without a replica: every batch
    // acknowledged, at offsets in the order sent.
    const STREAMED: u64 = 40;
    let (tx, rx) = tokio::sync::mpsc::channel(STREAMED as usize);
    for sequence in 0..STREAMED {
        tx.send(pb::PublishStreamRequest {
            correlation_id: sequence,
            request: Some(pb::PublishRequest {
                topic: TOPIC.into(),
                partition: 0,
                producer_id: PRODUCER,
                base_sequence: sequence,
                batch: with_msg_id(&format!("s-{sequence}")),
            }),
        })
        .await
        .expect("queue a request");
    }
    drop(tx);
    let mut acks = outsider
        .messaging
        .clone()
        .publish_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("open a publish stream")
        .into_inner();
    let mut offsets = Vec::new();
    while let Some(answer) = acks.message().await.expect("the stream answers") {
        match answer.result {
            Some(pb::publish_stream_response::Result::Ok(ack)) => {
                assert!(
                    ack.deduplicated.is_empty(),
                    "s-{} is new",
                    answer.correlation_id
                );
                offsets.push((answer.correlation_id, ack.base_offset));
            }
            other => panic!("batch {}: {other:?}", answer.correlation_id),
        }
    }
    assert_eq!(offsets.len() as u64, STREAMED);
    offsets.sort();
    assert!(
        offsets.windows(2).all(|w| w[0].1 < w[1].1),
        "offsets in the order sent: {offsets:?}"
    );

    let stored: Vec<String> = fetch_all(&leader, TOPIC, 0)
        .await
        .expect("fetch from the leader")
        .iter()
        .flat_map(decode)
        .map(|m| String::from_utf8_lossy(&m.msg.value).to_string())
        .collect();
    let mut expected = vec!["x".to_string(), "y".to_string()];
    expected.extend((0..STREAMED).map(|s| format!("s-{s}")));
    assert_eq!(stored, expected, "each id stored once, in order");
}
