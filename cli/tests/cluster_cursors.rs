//! Consumer cursors are replicated through their partition's group, with real processes: three
//! nodes, a topic with three replicas, a stream subscription. A consumer commits through the
//! partition's leader and every node reports the commit; the leader is killed (-9) and a
//! consumer through the new leader (the subscription's coordinator) resumes from the commit and commits more (through the new
//! leader's election); the old leader, restarted, reports that later commit too. A
//! subscription created at `latest` through a node without a replica starts at the end of the
//! log on every replica.
//!
//! Every wait polls until the condition holds, bounded by `PATIENCE`; no fixed sleep.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use common::cluster::{
    committed_offset, one_replicated_partition, partition_leader, publish_retrying,
    replicated_topic, start_nodes, while_unavailable,
};
use common::{
    BrokerOptions, Clients, Consumer, TestBroker, connect, encode, eventually, msg, start,
};
use rapidmq_proto::v1 as pb;

const TOPIC: &str = "cursors";
const SUBSCRIPTION: &str = "readers";
/// Messages published, in one batch.
const MESSAGES: u64 = 20;
/// What the consumer through node 1 commits.
const FIRST_COMMIT: u64 = 8;
/// What the consumer through node 2 commits after node 1 died.
const SECOND_COMMIT: u64 = 15;

/// The committed offset of partition 0 `clients`' node reports.
async fn committed(clients: &Clients) -> Option<u64> {
    committed_offset(clients, TOPIC, SUBSCRIPTION, 0).await
}

/// Commits `offset` on partition 0 through `clients`' node (`CommitOffset`).
async fn commit(
    clients: &Clients,
    offset: u64,
) -> Result<tonic::Response<pb::CommitOffsetResponse>, tonic::Status> {
    let mut messaging = clients.messaging.clone();
    messaging
        .commit_offset(pb::CommitOffsetRequest {
            topic: TOPIC.into(),
            subscription: SUBSCRIPTION.into(),
            offsets: vec![pb::PartitionOffset {
                partition: 0,
                offset,
            }],
        })
        .await
}

/// Waits until every node of `clients` reports `offset` as the committed one.
async fn everywhere_committed(clients: &[(u64, &Clients)], offset: u64) {
    for (id, clients) in clients {
        eventually(&format!("node {id} reports offset {offset}"), || async {
            committed(clients).await == Some(offset)
        })
        .await;
    }
}

async fn setup(nodes: &[TestBroker]) -> Clients {
    let subscription = pb::CreateSubscriptionRequest {
        topic: TOPIC.into(),
        name: SUBSCRIPTION.into(),
        mode: pb::SubscriptionMode::Stream as i32,
        start: Some(start(pb::StartKind::Earliest)),
        queue: None,
    };
    let messages: Vec<_> = (0..MESSAGES)
        .map(|i| msg(format!("k{i}"), format!("message {i}")))
        .collect();
    one_replicated_partition(nodes, TOPIC, subscription, &messages).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_through_the_leader_survives_its_death_and_reaches_every_replica() {
    let mut nodes = start_nodes(3, |_| BrokerOptions::default());
    let seed = setup(&nodes).await;
    // A: the partition's leader; B and C the other replicas.
    let a = partition_leader(&seed, TOPIC, 0).await;
    let (b, c) = match a {
        1 => (2, 3),
        2 => (1, 3),
        _ => (1, 2),
    };
    let node = |id: u64| (id - 1) as usize;
    let mut through_a = connect(&nodes[node(a)]).await;
    let through_b = connect(&nodes[node(b)]).await;
    let through_c = connect(&nodes[node(c)]).await;

    // A consumer through A reads from the start and commits part of it.
    let mut consumer = Consumer::open(
        &mut through_a,
        TOPIC,
        SUBSCRIPTION,
        start(pb::StartKind::Earliest),
        MESSAGES as u32,
    )
    .await
    .expect("consume through the leader");
    assert_eq!(consumer.assignment, vec![(0, 0)]);
    let received = consumer.receive(MESSAGES as usize).await;
    assert_eq!(received.len() as u64, MESSAGES);
    consumer.commit(&[(0, FIRST_COMMIT)]).await;
    everywhere_committed(
        &[(a, &through_a), (b, &through_b), (c, &through_c)],
        FIRST_COMMIT,
    )
    .await;

    // A dies without a word; a consumer through the new leader (which coordinates the
    // subscription now) resumes from the commit.
    drop(consumer);
    nodes[node(a)].kill();
    let new_leader = AtomicU64::new(a);
    eventually("B or C leads", || async {
        let seen = partition_leader(&through_b, TOPIC, 0).await;
        new_leader.store(seen, Ordering::Relaxed);
        seen != a
    })
    .await;
    let mut resuming = connect(&nodes[node(new_leader.into_inner())]).await;
    let mut resumed = while_unavailable_consumer(&mut resuming).await;
    assert_eq!(resumed.assignment, vec![(0, FIRST_COMMIT)]);
    let rest = resumed.receive((MESSAGES - FIRST_COMMIT) as usize).await;
    assert_eq!(
        rest.first().map(|r| r.offset),
        Some(FIRST_COMMIT),
        "delivery resumes at the commit"
    );
    // The partition elects a new leader without A: the commit waits for one.
    while_unavailable("commit through B", || commit(&through_b, SECOND_COMMIT))
        .await
        .expect("commit through B");
    assert_eq!(
        committed(&through_b).await,
        Some(SECOND_COMMIT),
        "the node a commit went through shows it once it returned"
    );
    everywhere_committed(&[(c, &through_c)], SECOND_COMMIT).await;

    // A, back, catches up with the commit it missed.
    nodes[node(a)].restart();
    let through_a = connect(&nodes[node(a)]).await;
    everywhere_committed(&[(a, &through_a)], SECOND_COMMIT).await;
}

/// A subscription created at `latest` through a node that holds no replica of the partition
/// (its own log is empty) starts at the end of the log on every replica: the start is fixed by
/// the partition's group, not by the node the create went through. That node describes, commits
/// and seeks the subscription, and describes the topic, as the group has them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_created_at_latest_through_a_node_without_a_replica_starts_at_the_end() {
    let nodes = start_nodes(3, |_| BrokerOptions::default());
    let (first, created) = replicated_topic(&nodes, TOPIC, 2).await;
    let replicas = created.partitions[0].replicas.clone();
    assert_eq!(replicas.len(), 2, "{created:?}");
    let outsider = (1..=3u64)
        .find(|id| !replicas.contains(id))
        .expect("RF 2 of 3 leaves one node out");
    let messages: Vec<_> = (0..MESSAGES)
        .map(|i| msg(format!("k{i}"), format!("message {i}")))
        .collect();
    let request = pb::PublishRequest {
        topic: TOPIC.into(),
        partition: 0,
        batch: encode(&messages),
        ..Default::default()
    };
    publish_retrying(&first, request).await.expect("publish");

    let through = connect(&nodes[outsider as usize - 1]).await;
    eventually("the outsider knows the topic", || async {
        through
            .admin
            .clone()
            .describe_topic(pb::DescribeTopicRequest { name: TOPIC.into() })
            .await
            .is_ok()
    })
    .await;
    while_unavailable("create subscription", || {
        let mut admin = through.admin.clone();
        async move {
            admin
                .create_subscription(pb::CreateSubscriptionRequest {
                    topic: TOPIC.into(),
                    name: SUBSCRIPTION.into(),
                    mode: pb::SubscriptionMode::Stream as i32,
                    start: Some(start(pb::StartKind::Latest)),
                    queue: None,
                })
                .await
        }
    })
    .await
    .expect("create subscription through the outsider");
    for &id in &replicas {
        let clients = connect(&nodes[id as usize - 1]).await;
        everywhere_committed(&[(id, &clients)], MESSAGES).await;
    }

    // The outsider holds none of the partition, yet describes it as the group has it: asked of
    // the partition's leader, also right after a commit through the outsider returned.
    let cursor = |info: pb::SubscriptionInfo| {
        let cursor = &info.cursors[0];
        (cursor.committed_offset, cursor.high_watermark)
    };
    let describe = || async {
        through
            .admin
            .clone()
            .describe_subscription(pb::DescribeSubscriptionRequest {
                topic: TOPIC.into(),
                name: SUBSCRIPTION.into(),
            })
            .await
            .expect("describe through the outsider")
            .into_inner()
    };
    assert_eq!(cursor(describe().await), (MESSAGES, MESSAGES));
    commit(&through, FIRST_COMMIT)
        .await
        .expect("commit through the outsider");
    assert_eq!(cursor(describe().await), (FIRST_COMMIT, MESSAGES));
    // A seek through it resolves `latest` in the group's log, not in its own empty one.
    let sought = through
        .admin
        .clone()
        .seek_subscription(pb::SeekSubscriptionRequest {
            topic: TOPIC.into(),
            name: SUBSCRIPTION.into(),
            position: Some(start(pb::StartKind::Latest)),
            partition: None,
        })
        .await
        .expect("seek through the outsider")
        .into_inner();
    assert_eq!(cursor(sought), (MESSAGES, MESSAGES));
    assert_eq!(cursor(describe().await), (MESSAGES, MESSAGES));
    let topic = through
        .admin
        .clone()
        .describe_topic(pb::DescribeTopicRequest { name: TOPIC.into() })
        .await
        .expect("describe the topic through the outsider")
        .into_inner();
    let partition = &topic.partitions[0];
    assert_eq!(
        (partition.log_start_offset, partition.high_watermark),
        (0, MESSAGES),
        "the outsider describes the partition's log as the group has it"
    );
    assert!(partition.bytes > 0, "{partition:?}");
}

/// A commit that returned is what every replica reports next, at once: a follower that has
/// not applied it yet (it learns of the commit with the leader's next message) first catches
/// up with what the group committed (a raft read index, asked of the leader), so
/// `DescribeSubscription` through it never shows an older offset. A consumer joins through the
/// leader, which coordinates the subscription (a join through a follower is refused with a hint
/// naming the leader), and starts at the commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_reports_a_commit_as_soon_as_it_returned() {
    let nodes = start_nodes(3, |_| BrokerOptions::default());
    let seed = setup(&nodes).await;
    let leader = partition_leader(&seed, TOPIC, 0).await;
    let mut through_leader = connect(&nodes[leader as usize - 1]).await;
    let mut followers = Vec::new();
    for id in (1..=3u64).filter(|&id| id != leader) {
        followers.push((id, connect(&nodes[id as usize - 1]).await));
    }
    for offset in 1..=MESSAGES {
        commit(&through_leader, offset)
            .await
            .expect("commit through the leader");
        for (id, clients) in &mut followers {
            assert_eq!(
                committed(clients).await,
                Some(offset),
                "node {id} reports the commit that returned"
            );
            if offset % 5 == 0 {
                let refused = Consumer::open(
                    clients,
                    TOPIC,
                    SUBSCRIPTION,
                    start(pb::StartKind::Earliest),
                    1,
                )
                .await
                .err()
                .unwrap_or_else(|| panic!("node {id}, a follower, took a member"));
                assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
                let hint = rapidmq_proto::hint::decode_hint(refused.details())
                    .unwrap_or_else(|| panic!("no leader hint: {refused:?}"));
                assert_eq!(hint.leader, leader, "the hint names the coordinator");
            }
        }
        if offset % 5 == 0 {
            let joined = Consumer::open(
                &mut through_leader,
                TOPIC,
                SUBSCRIPTION,
                start(pb::StartKind::Earliest),
                1,
            )
            .await
            .expect("join through the leader");
            assert_eq!(
                joined.assignment,
                vec![(0, offset)],
                "a consumer joining through the leader starts at the commit"
            );
        }
    }
}

/// Joins the subscription through `clients`' node, again while it answers `UNAVAILABLE` (the
/// new leader confirms its leadership first).
async fn while_unavailable_consumer(clients: &mut Clients) -> Consumer {
    let deadline = std::time::Instant::now() + common::PATIENCE;
    loop {
        match Consumer::open(
            clients,
            TOPIC,
            SUBSCRIPTION,
            start(pb::StartKind::Earliest),
            MESSAGES as u32,
        )
        .await
        {
            Ok(consumer) => return consumer,
            Err(status) if status.code() == tonic::Code::Unavailable => {
                assert!(std::time::Instant::now() < deadline, "{status:?}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(status) => panic!("join through the new leader: {status:?}"),
        }
    }
}
