//! Fan-out across subscriptions and partition sharing within one.

mod common;

use std::collections::HashSet;

use common::*;
use rapidmq_proto::v1 as pb;

async fn publish_numbered(
    c: &mut Clients,
    topic: &str,
    partitions: u32,
    per_partition: usize,
) -> HashSet<String> {
    let mut all = HashSet::new();
    for p in 0..partitions {
        let batch: Vec<Msg> = (0..per_partition)
            .map(|i| msg(format!("k{p}"), format!("p{p}-m{i}")))
            .collect();
        all.extend(
            batch
                .iter()
                .map(|m| String::from_utf8(m.value.to_vec()).unwrap()),
        );
        publish(c, topic, p, &batch).await.unwrap();
    }
    all
}

fn values(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| String::from_utf8(r.msg.value.to_vec()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscription_receives_every_message() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "news", topic_config(3)).await;
    let sent = publish_numbered(&mut c, "news", 3, 500).await;
    for name in ["audit", "search"] {
        let mut consumer =
            Consumer::open(&mut c, "news", name, start(pb::StartKind::Earliest), 1000)
                .await
                .unwrap();
        let got = values(&consumer.receive(sent.len()).await);
        assert_eq!(got.len(), sent.len());
        assert_eq!(
            got.into_iter().collect::<HashSet<_>>(),
            sent,
            "subscription {name} sees everything"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_split_partitions_and_a_leaver_hands_over_without_loss() {
    const PARTITIONS: u32 = 4;
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "jobs", topic_config(PARTITIONS)).await;

    let mut a = Consumer::open(
        &mut c,
        "jobs",
        "workers",
        start(pb::StartKind::Earliest),
        10_000,
    )
    .await
    .unwrap();
    assert_eq!(a.partitions(), vec![0, 1, 2, 3]);
    let mut b = Consumer::open(
        &mut c,
        "jobs",
        "workers",
        start(pb::StartKind::Earliest),
        10_000,
    )
    .await
    .unwrap();
    a.await_assignment().await;
    assert_eq!(a.partitions(), vec![0, 2]);
    assert_eq!(b.partitions(), vec![1, 3]);

    // Phase 1: both members share the work; together they see each message exactly once.
    let first = publish_numbered(&mut c, "jobs", PARTITIONS, 250).await;
    let got_a = a.receive(500).await;
    let got_b = b.receive(500).await;
    assert!(
        got_a.iter().all(|r| r.partition % 2 == 0),
        "a only gets its partitions"
    );
    assert!(
        got_b.iter().all(|r| r.partition % 2 == 1),
        "b only gets its partitions"
    );
    let mut together = values(&got_a);
    together.extend(values(&got_b));
    assert_eq!(together.len(), first.len());
    assert_eq!(together.into_iter().collect::<HashSet<_>>(), first);

    // a commits what it processed, then leaves; b takes over a's partitions from a's commit.
    a.commit(&next_offsets(&got_a)).await;
    let describe = |mut c: Clients| async move {
        c.admin
            .describe_subscription(pb::DescribeSubscriptionRequest {
                topic: "jobs".into(),
                name: "workers".into(),
            })
            .await
            .unwrap()
            .into_inner()
    };
    eventually("a's commit is recorded", || {
        let c = connect_clone(&c);
        async move {
            describe(c)
                .await
                .cursors
                .iter()
                .filter(|x| x.partition % 2 == 0)
                .all(|x| x.committed_offset == 250)
        }
    })
    .await;
    drop(a);
    b.await_assignment().await;
    assert_eq!(b.partitions(), vec![0, 1, 2, 3]);
    let resumed: Vec<(u32, u64)> = b
        .assignment
        .iter()
        .filter(|(p, _)| p % 2 == 0)
        .copied()
        .collect();
    assert_eq!(
        resumed,
        vec![(0, 250), (2, 250)],
        "the new owner resumes from the commit"
    );

    // Phase 2: everything published after the hand-over reaches b; nothing is lost.
    let second = publish_numbered(&mut c, "jobs", PARTITIONS, 100).await;
    let got = values(&b.receive(400).await);
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), second);
    let info = describe(connect_clone(&c)).await;
    assert_eq!(info.members.len(), 1);
}

fn connect_clone(c: &Clients) -> Clients {
    Clients {
        admin: c.admin.clone(),
        messaging: c.messaging.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_for_a_partition_owned_by_another_member_is_refused() {
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "split", topic_config(2)).await;
    let mut a = Consumer::open(&mut c, "split", "g", start(pb::StartKind::Earliest), 10)
        .await
        .unwrap();
    let _b = Consumer::open(&mut c, "split", "g", start(pb::StartKind::Earliest), 10)
        .await
        .unwrap();
    a.await_assignment().await;
    assert_eq!(a.partitions(), vec![0]);
    a.commit(&[(1, 0)]).await;
    match a.next_event().await {
        Some(pb::consume_response::Kind::Error(err)) => assert_eq!(err.name, "NOT_PARTITION_OWNER"),
        other => panic!("expected NOT_PARTITION_OWNER, got {other:?}"),
    }
}
