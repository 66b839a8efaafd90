//! The two phases of the metadata group's apply on in-process engines, without raft.

use std::collections::BTreeMap;

use futures::stream;
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::EntryOf;
use openraft::{EntryPayload, RaftSnapshotBuilder};

use super::*;
use crate::cluster::GroupStateMachine;
use crate::cluster::metadata::Metadata;
use crate::cluster::node_table::{self, METADATA, MetaConfig, NodeTable};
use crate::config::Config;
use crate::engine::subscription::{SubscriptionMode, SubscriptionRecord};
use crate::engine::topic::{DurabilityMode, StorageKind, TopicSettings};

/// One node's engine with its metadata state machine, driven without raft.
struct Replica {
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
    machine: GroupStateMachine<MetaConfig, Metadata>,
    next_index: u64,
}

async fn replica() -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let runtime = tokio::runtime::Handle::current();
    let engine = tokio::task::spawn_blocking(move || Engine::open(config, runtime))
        .await
        .unwrap()
        .unwrap();
    let store = engine.disk_store();
    let app = Metadata::new(NodeTable::open(&*store).unwrap(), engine.clone());
    let machine = GroupStateMachine::open(store, METADATA, app).unwrap();
    Replica {
        _dir: dir,
        engine,
        machine,
        next_index: 1,
    }
}

impl Replica {
    /// Applies `commands` as one run of committed entries, as openraft hands them over.
    async fn apply(&mut self, commands: &[MetaCommand]) {
        let entries: Vec<_> = commands
            .iter()
            .map(|command| {
                let index = self.next_index;
                self.next_index += 1;
                Ok((
                    EntryOf::<MetaConfig> {
                        log_id: openraft::testing::log_id::<MetaConfig>(1, 0, index),
                        payload: EntryPayload::Normal(node_table::MetaCommand::Engine(
                            command.clone(),
                        )),
                    },
                    None,
                ))
            })
            .collect();
        self.machine.apply(stream::iter(entries)).await.unwrap();
    }

    /// Topic name → (id, partitions, subscriptions).
    fn topics(&self) -> BTreeMap<String, (u32, usize, BTreeSet<String>)> {
        self.engine
            .topics_snapshot()
            .into_iter()
            .map(|t| {
                let subs = t.subscriptions.read().keys().cloned().collect();
                (t.name().to_string(), (t.id(), t.partitions.len(), subs))
            })
            .collect()
    }

    async fn stop(self) {
        self.engine.begin_shutdown();
        self.engine.shutdown().await;
    }
}

fn record(id: u32, name: &str, partitions: u32) -> TopicRecord {
    TopicRecord {
        id,
        tenant: "default".into(),
        name: name.into(),
        settings: TopicSettings {
            partitions,
            retention_ms: 0,
            retention_bytes: 0,
            retention_messages: 0,
            max_message_bytes: 1024,
            storage: StorageKind::Disk,
            durability: DurabilityMode::Fsync,
            dedup_window_ms: 0,
        },
        created_at_ms: 0,
        replication_factor: None,
        replicas: Vec::new(),
    }
}

fn create_user(name: &str, created_at_ms: u64) -> MetaCommand {
    MetaCommand::Auth(AuthCommand::PutUser {
        user: crate::auth::UserRecord {
            tenant: "default".into(),
            name: name.into(),
            password_phc: None,
            disabled: false,
            created_at_ms,
        },
        create: true,
        tokens: Vec::new(),
        bindings: Vec::new(),
    })
}

fn subscribe(topic_id: u32, name: &str) -> MetaCommand {
    MetaCommand::CreateSubscription {
        topic_id,
        record: SubscriptionRecord {
            name: name.into(),
            mode: SubscriptionMode::Stream,
            created_at_ms: 0,
            queue: None,
        },
        // The proposer's high watermark; this node's partitions are empty.
        cursors: vec![50, 50],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_entries_resolve_the_same_on_every_replica_and_through_a_snapshot() {
    // Proposers on different nodes picked their ids and names without seeing each other.
    let first_run = [
        MetaCommand::CreateTopic(record(1, "race", 2)),
        MetaCommand::CreateTopic(record(1, "race", 3)),
        MetaCommand::CreateTopic(record(1, "other", 1)),
        subscribe(1, "billing"),
        subscribe(1, "billing"),
    ];
    let second_run = [
        MetaCommand::DeleteTopic {
            record: record(1, "race", 2),
            scheduled: Vec::new(),
        },
        MetaCommand::DeleteTopic {
            record: record(1, "race", 2),
            scheduled: Vec::new(),
        },
        MetaCommand::CreateTopic(record(1, "later", 1)),
        subscribe(2, "audit"),
        create_user("alice", 1),
        create_user("alice", 2),
    ];
    let mut replicas = vec![replica().await, replica().await];
    for replica in &mut replicas {
        replica.apply(&first_run).await;
        let race = replica.topics().remove("race").expect("race exists");
        assert_eq!(race.0, 1, "the first create takes the applied next id");
        assert_eq!(race.1, 2, "the second create of `race` is refused");
        assert_eq!(race.2, ["billing".to_string()].into());
        let sub =
            replica.engine.topic_by_id(1).unwrap().subscriptions.read()["billing"].committed(0);
        assert_eq!(sub, 0, "the start is clamped to this node's log");
        replica.apply(&second_run).await;
    }
    let expected: BTreeMap<String, (u32, usize, BTreeSet<String>)> = [
        ("other".to_string(), (2, 1, ["audit".to_string()].into())),
        ("later".to_string(), (3, 1, BTreeSet::new())),
    ]
    .into();
    let alice = |replica: &Replica| {
        let user = replica.engine.auth.user("default", "alice");
        user.map(|user| user.created_at_ms)
    };
    for replica in &replicas {
        assert_eq!(replica.topics(), expected);
        assert_eq!(replica.engine.next_topic_id.load(Ordering::Relaxed), 4);
        assert_eq!(
            alice(replica),
            Some(1),
            "the second create of alice is refused"
        );
    }

    // A node that joins after the log was purged gets it all from a snapshot, over a stale
    // state of its own (a topic the cluster deleted).
    let snapshot = replicas[0]
        .machine
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut joiner = replica().await;
    let stale_tenant = crate::tenant::TenantRecord {
        name: "stale".into(),
        quotas: Default::default(),
        created_at_ms: 0,
    };
    joiner
        .apply(&[
            MetaCommand::CreateTopic(record(1, "stale", 1)),
            create_user("stale", 0),
            MetaCommand::PutTenant(stale_tenant),
        ])
        .await;
    joiner
        .machine
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();
    assert_eq!(joiner.topics(), expected);
    assert_eq!(joiner.engine.next_topic_id.load(Ordering::Relaxed), 4);
    assert_eq!(alice(&joiner), Some(1));
    assert!(joiner.engine.auth.user("default", "stale").is_none());
    assert!(!joiner.engine.tenants.exists("stale"));

    for replica in replicas {
        replica.stop().await;
    }
    joiner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_start_its_partition_group_applied_first_survives_the_subscriptions_creation() {
    let mut node = replica().await;
    node.apply(&[MetaCommand::CreateTopic(record(1, "jobs", 2))])
        .await;
    // The partitions' groups apply the new subscription's start (epoch: the raft index of the
    // `Start` entry) before this node's metadata group applies the subscription itself.
    let mut batch = WriteBatch::default();
    for partition in 0..2 {
        let start = crate::engine::partition::ConsumerChange::ResetQueue {
            offset: 0,
            epoch: 42,
        };
        crate::engine::partition::PartitionEntry::new(1, partition, "workers", start)
            .write_to(&mut batch);
    }
    node.engine.disk_store().write(batch, true).unwrap();
    node.apply(&[MetaCommand::CreateSubscription {
        topic_id: 1,
        record: SubscriptionRecord {
            name: "workers".into(),
            mode: SubscriptionMode::Queue,
            created_at_ms: 0,
            queue: Some(crate::engine::subscription::QueueSettings {
                ack_deadline_ms: 30_000,
                max_deliveries: 5,
                dead_letter_topic: "jobs.dlq".into(),
            }),
        },
        cursors: vec![0, 0],
    }])
    .await;
    let topic = node.engine.topic_by_id(1).expect("the topic");
    let sub = topic
        .subscriptions
        .read()
        .get("workers")
        .cloned()
        .expect("the subscription");
    let queue = sub.queue.as_ref().expect("a queue");
    // The leader's flushes carry this epoch; with 0 every replica would skip them as older
    // than the start.
    let epochs: Vec<u64> = queue.partitions.iter().map(|q| q.lock().epoch()).collect();
    assert_eq!(epochs, [42, 42]);
    node.stop().await;
}
