//! The engine: topics, partitions, subscriptions and retention, behind one service API that
//! knows nothing about transports. gRPC (and later REST) adapters call these methods with a
//! [`Principal`] and map [`Error`]s by their stable code.
//!
//! Layout:
//! - `access`: authorization; every entry point checks one action on one resource first
//!   (docs/adr/0004-security.md §6), and open consumers re-check on auth changes.
//! - `partition`: one partition: its single writer task (`partition/writer.rs`, group commit),
//!   tail cache and reads.
//! - `tail_cache`: each partition's cache of recent batches, all under one broker-wide budget.
//! - `batch`: validation of producer batches and the stored-batch header.
//! - `topics`: topic administration (create, alter, list, describe, delete).
//! - `publish`: the publish path, from a producer batch to a queued append (quotas, dedup,
//!   delayed messages).
//! - `fetch`: reads by offset (`Fetch`).
//! - `tenants`: tenant administration, the count quotas and usage.
//! - `producer`: idempotent-producer sequence state.
//! - `topic`, `subscription`: live objects and their durable records.
//! - `session`: a consumer session over a subscription (or an ephemeral tail).
//! - `command`: metadata commands, pure data (topics, subscriptions, users, roles, tenants).
//! - `apply`: the one apply path: [`Engine::apply`] writes a metadata command and makes its
//!   in-memory effects, [`Engine::apply_audited`] the same with the audit record of an admin
//!   change in the same write, and `apply_partition` the same for partition entries (committed
//!   offsets, queue ack state: `partition/entry.rs`). A partition's log changes only through
//!   its writer.
//! - `audit`: the audit log's side of the engine: stamping, the writer and retention tasks,
//!   queries.
//! - `background`: the background tasks (scheduler, fsync of buffered topics, queue ack-state
//!   flush, retention, session sweep, storage probe, audit retention) and readiness.
//! - `retention`: what the retention task enforces.
//! - `replicated`: cluster mode's side of the one apply path: [`Engine::apply`] proposes to
//!   the metadata group ([`MetaLog`]), whose state machine decides each committed command
//!   against the applied state (conflicts, ids) and applies it through the same in-memory
//!   effects; snapshots of the replicated records.
//! - `recovery`: opening the engine: every stored topic and subscription made live, and what
//!   that repairs (the next topic id, and cursors and queue state above a recovered log).
//! - `health`: supervision of background tasks (a panic is caught, logged as a health event and
//!   the task carries on) and the storage probe behind `/readyz`.
//! - `keys`: the storage key layout.
//! - `observe`: what the engine tells `crate::observability` (scrape-time snapshots, delivery
//!   counting, flow events).

mod access;
mod apply;
mod audit;
mod background;
pub mod batch;
mod command;
mod dedup;
mod dlq;
mod fetch;
mod health;
pub(crate) mod keys;
mod observe;
mod partition;
mod producer;
mod publish;
mod queue;
mod queue_session;
mod recovery;
mod remote_tail;
mod replicated;
mod rest_support;
mod retention;
mod roles;
mod scheduler;
mod session;
mod slice;
mod subscription;
mod subscriptions;
mod tail_cache;
mod tenants;
mod topic;
mod topics;
mod users;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1::LeaderHint;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use access::AccessWatch;
pub use command::MetaCommand;
pub use dlq::{
    DEFAULT_PAGE, DEFAULT_REPLAY, DeadLetterInfo, DeadLetterPage, MAX_PAGE, MAX_REPLAY,
    ReplayOutcome,
};
/// What an append becomes, shared with a partition group's state machine.
pub(crate) use partition::commit;
pub use partition::replicated::{
    ConsumerState, GroupLog, PartitionHost, PartitionView, RemoteRead,
};
pub use partition::{
    AppendAck, AppendExtra, AppendRequest, CommitHook, ConsumerChange, PartitionEntry,
    PartitionOptions, PartitionSettings, PartitionShared, StartAt, decode_offset,
};
pub use publish::{ForwardedAnswer, ForwardedPublish};
pub use queue::{QueueCounters, QueuePartition, QueuedMessage};
pub use queue_session::{QueueDelivery, QueueSession, ReceiptRef, Undelivered};
pub use replicated::{Decision, MetaLog, Moved, Placement, ReplicaMove, Run};
pub use rest_support::Settlement;
pub use roles::RoleInfo;
pub use scheduler::partition_schedule;
pub use session::{Delivery, SessionEvent, StreamSession};
pub use subscription::{MemberStatus, QueueSettings, SubscriptionMode};
pub use tail_cache::TailBudget;
pub use tenants::{TenantStatus, TenantUsage};
pub use topic::{
    AckDurability, DurabilityMode, PartitionStatus, StorageKind, TopicSettings, TopicSpec,
    TopicStatus,
};
pub use users::IssuedToken;

use crate::audit::{AuditLog, AuditSink};
use crate::auth::{Action, Auth, Resource};
use crate::clock::{self, Clock};
use crate::config::Config;
use crate::error::{Error, Result, check_name};
use crate::observability::{FlowLog, Metrics};
use crate::principal::{Principal, TenantId};
use crate::storage::{MemStore, RocksStore, RocksTuning, Store};
use crate::tenant::Tenants;
use health::Health;
use topic::{Topic, TopicRecord};

/// Longest a Fetch long-polls, whatever it asks for.
pub const MAX_FETCH_WAIT: Duration = Duration::from_secs(30);

/// Where a new subscription, a seek or an ephemeral tail starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartPosition {
    #[default]
    Latest,
    Earliest,
    Offset(u64),
    Timestamp(i64),
}

/// One producer batch for one partition.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PublishParams {
    pub topic: String,
    pub partition: u32,
    pub producer_id: u64,
    pub base_sequence: u64,
    /// An encoded `MessageBatch`.
    pub batch: Bytes,
}

/// The acknowledgement of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishAck {
    pub ack: AppendAck,
    /// Messages held in the delay schedule.
    pub scheduled: u32,
    /// Indexes of messages dropped as msg-id duplicates.
    pub deduplicated: Vec<u32>,
    /// Cluster mode, when this node does not lead the partition (it forwarded the batch): the
    /// leader it knows, so that a client sends the partition's next batches there.
    pub leader_hint: Option<LeaderHint>,
}

/// What Fetch returns.
#[derive(Debug, Clone)]
pub struct FetchResult {
    pub deliveries: Vec<Delivery>,
    pub high_watermark: u64,
    pub log_start_offset: u64,
}

/// Queue settings given at creation; `None` takes the broker default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSpec {
    pub ack_deadline_ms: Option<u64>,
    pub max_deliveries: Option<u32>,
    pub dead_letter_topic: Option<String>,
}

/// A consumer session of either mode.
pub enum Session {
    Stream(StreamSession),
    Queue(QueueSession),
}

/// A subscription snapshot for admin answers.
#[derive(Debug, Clone)]
pub struct SubscriptionStatus {
    pub topic: String,
    pub name: String,
    pub mode: SubscriptionMode,
    /// Queue mode: settings, messages in flight, counters.
    pub queue: Option<(QueueSettings, u64, QueueCounters)>,
    /// `(partition, committed, high_watermark, lag)`.
    pub cursors: Vec<(u32, u64, u64, u64)>,
    pub members: Vec<MemberStatus>,
    pub created_at_ms: i64,
}

impl SubscriptionStatus {
    pub fn total_lag(&self) -> u64 {
        self.cursors.iter().map(|c| c.3).sum()
    }
}

/// Broker-wide figures for `GetStatus`.
#[derive(Debug, Clone)]
pub struct EngineStatus {
    pub uptime: Duration,
    pub topics: u32,
    pub subscriptions: u32,
    pub fsyncs: u64,
}

type TopicKey = (TenantId, String);

/// Whether a topic still serves sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicState {
    Open,
    Deleted,
    /// The broker is shutting down.
    Stopping,
    /// A delete of the topic failed after it had been fenced: it serves again as a new live
    /// topic, and sessions of the old one end (to subscribe again).
    Reopened,
}

struct LiveTopic {
    topic: Arc<Topic>,
    closed: watch::Sender<TopicState>,
}

/// The broker engine.
pub struct Engine {
    config: Config,
    disk: Arc<RocksStore>,
    memory: Arc<MemStore>,
    topics: RwLock<HashMap<TopicKey, LiveTopic>>,
    /// The same topics by id, for entries (which name topics by id). Changed with `topics`, in
    /// `apply.rs` only; taken before `topics` when both are.
    topic_ids: RwLock<HashMap<u32, TopicKey>>,
    next_topic_id: AtomicU32,
    /// Serialises metadata changes (create/delete topic or subscription).
    meta_lock: tokio::sync::Mutex<()>,
    /// Orders the interval flush of queue ack state with what must not be undone by a state
    /// encoded before it: a queue seek, a delete of the subscription or its topic (taken after
    /// `meta_lock` where both are). Apart from `meta_lock`, so a flush waiting for a partition
    /// group without a quorum holds up no other metadata change.
    queue_state_lock: tokio::sync::Mutex<()>,
    /// Cluster mode: the metadata group, where [`Engine::apply`] proposes (`replicated/`).
    /// Unset in single-node mode.
    meta_log: std::sync::OnceLock<Arc<dyn MetaLog>>,
    /// Cluster mode: opens the raft groups of placed topics' partitions
    /// (`replicated/hosting.rs`).
    partition_host: std::sync::OnceLock<Arc<dyn partition::replicated::PartitionHost>>,
    /// Cluster mode: set once the topics recovered at start are reopened on their groups
    /// (`Engine::set_partition_host`); background writes wait for it.
    groups_hosted: AtomicBool,
    runtime: tokio::runtime::Handle,
    started: Instant,
    buffered_dirty: Arc<AtomicBool>,
    schedule_wake: Arc<tokio::sync::Notify>,
    background: Mutex<Vec<JoinHandle<()>>>,
    stopping: watch::Sender<bool>,
    metrics: Arc<Metrics>,
    flow: Arc<FlowLog>,
    health: Arc<Health>,
    /// Wall-clock time, for everything the engine stamps or compares with it.
    clock: Arc<dyn Clock>,
    /// The engine itself, for work that must outlive the request that started it (dead letters).
    this: std::sync::Weak<Engine>,
    /// Cluster mode: the partitions whose replica moves this node drives
    /// (`replicated/moves.rs`), by `(topic id, partition)`.
    movers: Mutex<std::collections::HashSet<(u32, u32)>>,
    /// Cluster mode: held while a partition's group log is swapped for another (a replica move,
    /// a damaged copy rebuilt), so two swaps of one partition never interleave.
    rehosting: tokio::sync::Mutex<()>,
    /// Cluster mode: the moves this node may take steps of at once (`cluster.max_concurrent_moves`;
    /// `None`: no limit).
    move_slots: Option<Arc<tokio::sync::Semaphore>>,
    /// Shared by every partition's tail cache (`storage.tail_cache_bytes`).
    tail_budget: Arc<tail_cache::TailBudget>,
    /// Users and tokens; changed only through [`Engine::apply_auth`].
    auth: Arc<Auth>,
    /// Tenants and their quotas; changed only through [`Engine::apply_tenant`].
    tenants: Arc<Tenants>,
    audit: AuditLog,
    /// The failures the audit writer takes, until it starts.
    audit_failures: Mutex<Option<crate::audit::Failures>>,
}

impl Engine {
    /// Opens the store under `config.data_dir`, recovers every topic and starts the background
    /// tasks (buffered fsync, retention). Blocks on storage: call it from a blocking context.
    pub fn open(config: Config, runtime: tokio::runtime::Handle) -> Result<Arc<Engine>> {
        Engine::open_with_clock(config, runtime, clock::system())
    }

    /// [`Engine::open`] on `clock` instead of the system's wall clock.
    pub fn open_with_clock(
        config: Config,
        runtime: tokio::runtime::Handle,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Engine>> {
        std::fs::create_dir_all(&config.data_dir).map_err(|err| {
            Error::new(
                ErrorCode::StorageError,
                format!(
                    "cannot create data dir {}: {err}",
                    config.data_dir.display()
                ),
            )
        })?;
        let tuning = RocksTuning {
            log_write_buffer_bytes: config.storage.log_write_buffer_bytes,
            block_cache_bytes: config.storage.block_cache_bytes,
            direct_io_flush: config.storage.direct_io_flush,
            ..RocksTuning::default()
        };
        let disk = Arc::new(RocksStore::open(&config.data_dir.join("store"), &tuning)?);
        let (stopping, _) = watch::channel(false);
        let o = &config.observability;
        let metrics = Arc::new(
            Metrics::new(
                o.metrics,
                o.max_topic_series,
                Duration::from_millis(o.slow_fsync_ms),
            )
            .with_max_lag_series(o.max_lag_series),
        );
        let flow = Arc::new(FlowLog::new(
            o.flow_events,
            o.flow_events_bytes,
            o.flow_all_messages,
        ));
        let tail_budget = tail_cache::TailBudget::new(config.storage.tail_cache_bytes);
        let tenants = Arc::new(Tenants::new(config.quota_defaults));
        tenants::recover(&tenants, &*disk)?;
        let (sink, audit_failures) = AuditSink::channel(metrics.clone(), clock.clone());
        // In a cluster every node writes every node's audited changes: the node id in the key
        // keeps two nodes' records of the same millisecond apart.
        let node = match config.cluster.enabled() {
            true => u16::try_from(config.cluster.node_id).unwrap_or(u16::MAX),
            false => crate::audit::SINGLE_NODE,
        };
        let audit = AuditLog {
            stamp: Arc::new(crate::audit::recover_stamp(&*disk, node)?),
            sink: sink.clone(),
        };
        let auth = Arc::new(Auth::new(
            &config.auth,
            tenants.clone(),
            sink,
            clock.clone(),
        ));
        auth.recover(&*disk)?;
        let engine = Arc::new_cyclic(|this| Engine {
            this: this.clone(),
            movers: Mutex::default(),
            rehosting: tokio::sync::Mutex::new(()),
            move_slots: (config.cluster.max_concurrent_moves > 0).then(|| {
                let slots = config.cluster.max_concurrent_moves as usize;
                Arc::new(tokio::sync::Semaphore::new(slots))
            }),
            config,
            disk,
            memory: Arc::new(MemStore::new()),
            topics: RwLock::new(HashMap::new()),
            topic_ids: RwLock::new(HashMap::new()),
            next_topic_id: AtomicU32::new(1),
            meta_lock: tokio::sync::Mutex::new(()),
            queue_state_lock: tokio::sync::Mutex::new(()),
            meta_log: std::sync::OnceLock::new(),
            partition_host: std::sync::OnceLock::new(),
            groups_hosted: AtomicBool::new(false),
            runtime,
            started: Instant::now(),
            buffered_dirty: Arc::new(AtomicBool::new(false)),
            schedule_wake: Arc::new(tokio::sync::Notify::new()),
            background: Mutex::new(Vec::new()),
            stopping,
            metrics,
            flow,
            health: Arc::new(Health::default()),
            clock,
            tail_budget,
            auth,
            tenants,
            audit,
            audit_failures: Mutex::new(Some(audit_failures)),
        });
        engine.recover()?;
        engine.start_background();
        Ok(engine)
    }

    /// The configuration the engine was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The wall clock the engine stamps and compares times with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn open_topic(&self, record: TopicRecord) -> Result<Arc<Topic>> {
        let settings = &record.settings;
        let quota = self.tenants.runtime(&record.tenant);
        let (store, blocking_io): (Arc<dyn Store>, bool) = match settings.storage {
            StorageKind::Disk => (self.disk.clone(), true),
            StorageKind::Memory => (self.memory.clone(), false),
        };
        let options = self.partition_options(&record);
        let placement = self.load_placement(record.id, &record.replicas, &*store)?;
        let partitions =
            self.open_partitions(&record, &placement, &store, blocking_io, &options)?;
        let counters = self.metrics.topic(&record.tenant, &record.name);
        Ok(Arc::new(Topic {
            placement: RwLock::new(placement),
            counters,
            tenant: TenantId::new(record.tenant.clone()),
            quota,
            settings: RwLock::new(record.settings.clone()),
            record,
            partitions,
            subscriptions: RwLock::new(Default::default()),
            dedup: dedup::Dedup::new(store),
            replays: tokio::sync::Mutex::new(()),
        }))
    }

    /// What `record`'s partitions are opened with.
    fn partition_options(&self, record: &TopicRecord) -> PartitionOptions {
        let settings = &record.settings;
        PartitionOptions {
            settings: settings.partition_settings(),
            tail_budget: self.tail_budget.clone(),
            max_group_commit_bytes: self.config.storage.max_group_commit_bytes,
            producer_state_ttl_ms: self.config.storage.producer_state_ttl_ms,
            dirty: self.buffered_dirty.clone(),
            metrics: self.metrics.clone(),
            health: self.health.clone(),
            clock: self.clock.clone(),
            tenant_storage: self.tenants.runtime(&record.tenant).storage_counter(),
        }
    }

    fn topic(&self, principal: &Principal, name: &str) -> Result<Arc<Topic>> {
        check_name("topic", name)?;
        self.topics
            .read()
            .get(&(principal.tenant().clone(), name.to_string()))
            .map(|live| live.topic.clone())
            .ok_or_else(|| Error::topic_not_found(name))
    }

    fn topic_closed(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Option<watch::Receiver<TopicState>> {
        self.topics
            .read()
            .get(&(principal.tenant().clone(), name.to_string()))
            .map(|live| live.closed.subscribe())
    }

    // ---- broker ----

    pub fn status(&self, principal: &Principal) -> Result<EngineStatus> {
        self.authorize(principal, Action::Describe, Resource::Tenant)?;
        let topics = self.topics.read();
        let mine = topics
            .iter()
            .filter(|((tenant, _), _)| tenant == principal.tenant());
        let (count, subscriptions) = mine.fold((0u32, 0u32), |(t, s), (_, live)| {
            (t + 1, s + live.topic.subscriptions.read().len() as u32)
        });
        Ok(EngineStatus {
            uptime: self.started.elapsed(),
            topics: count,
            subscriptions,
            fsyncs: self.disk.fsyncs(),
        })
    }

    /// The disk store, which cluster mode's raft groups share (broker/src/cluster/).
    pub fn disk_store(&self) -> Arc<dyn Store> {
        self.disk.clone()
    }

    /// fsyncs issued by the disk store so far.
    pub fn fsyncs(&self) -> u64 {
        self.disk.fsyncs()
    }

    /// Ends every consumer session (their streams finish with `UNAVAILABLE`), so transports can
    /// drain. Call before stopping the transports.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
        for live in self.topics.read().values() {
            live.closed.send_replace(TopicState::Stopping);
        }
    }

    /// Drains every partition writer, fsyncs buffered writes and stops background tasks. Call it
    /// after the transports have stopped accepting requests.
    pub async fn shutdown(&self) {
        self.stopping.send_replace(true);
        let tasks: Vec<_> = self.background.lock().drain(..).collect();
        for task in tasks {
            let _ = task.await;
        }
        self.flush_queue_state().await;
        let live: Vec<LiveTopic> = self.topics.write().drain().map(|(_, live)| live).collect();
        for topic in live {
            topic.closed.send_replace(TopicState::Stopping);
            for sub in topic.topic.subscriptions.read().values() {
                sub.close();
            }
            for partition in &topic.topic.partitions {
                partition.close().await;
            }
        }
        self.buffered_dirty.store(true, Ordering::Release);
        self.sync_buffered().await;
        tracing::info!("engine stopped");
    }

    /// The schedule keys of a topic's pending delayed messages, in either store.
    async fn scheduled_keys(&self, topic_id: u32) -> Result<Vec<Vec<u8>>> {
        let (disk, memory) = (self.disk.clone(), self.memory.clone());
        tokio::task::spawn_blocking(move || {
            let mut keys = scheduler::scheduled_keys(&*disk, topic_id)?;
            keys.extend(scheduler::scheduled_keys(&*memory, topic_id)?);
            Ok::<_, Error>(keys)
        })
        .await
        .map_err(|err| Error::internal(format!("schedule scan failed: {err}")))?
    }

    fn topics_snapshot(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .values()
            .map(|live| live.topic.clone())
            .collect()
    }
}
