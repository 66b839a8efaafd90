//! Domain types of the client API. Wire types from `rapidmq-proto` are converted to and from these
//! at the boundary, in [`crate::convert`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// A message to publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Optional key; messages with the same key go to the same partition.
    pub key: Option<Bytes>,
    /// The payload.
    pub value: Bytes,
    /// Ordered application headers; keys may repeat.
    pub headers: Vec<(String, Bytes)>,
    /// Producer timestamp in ms since the epoch; `send` fills in the current time when `None`.
    pub timestamp_ms: Option<i64>,
    /// Delayed delivery relative to the broker's clock: the message waits in the broker's
    /// persisted schedule and is appended (gets its offset) this long after the broker received
    /// it. Takes precedence over `deliver_at_ms`. The receipt reports [`SendStatus::Scheduled`].
    pub delay: Option<Duration>,
    /// Delayed delivery at an absolute time, ms since the epoch (the broker refuses times beyond
    /// its horizon with `DELIVER_AT_OUT_OF_RANGE`).
    pub deliver_at_ms: Option<i64>,
    /// Time to live from the broker's append time; an expired message is never delivered.
    pub ttl: Option<Duration>,
    /// 0 (lowest, the default) to 9 (highest); queue subscriptions deliver higher priorities
    /// first. Above 9 the broker refuses the batch with `INVALID_PRIORITY`.
    pub priority: u8,
}

impl Message {
    /// A keyless message with `value`.
    pub fn new(value: impl Into<Bytes>) -> Message {
        Message {
            value: value.into(),
            ..Message::default()
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Message {
        self.key = Some(key.into());
        self
    }

    /// Appends a header.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Message {
        self.headers.push((key.into(), value.into()));
        self
    }

    /// Sets the application message id (the `msg-id` header) that topics with a dedup window
    /// use to drop repeats; the receipt of a dropped repeat reports [`SendStatus::Deduplicated`].
    pub fn with_msg_id(self, id: impl Into<Bytes>) -> Message {
        self.with_header(MSG_ID_HEADER, id)
    }

    /// Delivers the message `delay` after the broker receives it (see [`Message::delay`]).
    pub fn with_delay(mut self, delay: Duration) -> Message {
        self.delay = Some(delay);
        self
    }

    /// Delivers the message at `at` (see [`Message::deliver_at_ms`]).
    pub fn with_deliver_at(mut self, at: SystemTime) -> Message {
        let ms = at
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(1);
        self.deliver_at_ms = Some(ms.max(1));
        self
    }

    /// Sets the time to live (see [`Message::ttl`]).
    pub fn with_ttl(mut self, ttl: Duration) -> Message {
        self.ttl = Some(ttl);
        self
    }

    /// Sets the priority, 0–9 (see [`Message::priority`]).
    pub fn with_priority(mut self, priority: u8) -> Message {
        self.priority = priority;
        self
    }

    /// Whether the broker will put this message in its delay schedule rather than the log.
    pub fn is_delayed(&self) -> bool {
        self.delay.is_some_and(|d| !d.is_zero()) || self.deliver_at_ms.is_some_and(|t| t > 0)
    }
}

pub use rapidmq_proto::MSG_ID_HEADER;

/// What the broker guaranteed when it acknowledged a write (or, in a topic config, asks for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// Not reported, or the broker's default in a topic config.
    #[default]
    Unspecified,
    /// Fsynced before the acknowledgement.
    Fsync,
    /// Reached the OS; fsynced on an interval.
    Buffered,
    /// Held in memory only.
    Memory,
}

/// How a producer packs each batch's messages (docs/adr/0006-batch-compression.md). The broker
/// stores a compressed batch as sent; consumers' cores decompress it. A batch that would not
/// shrink is sent plain, so the choice costs nothing on incompressible data beyond the try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Messages travel and are stored as they are.
    #[default]
    None,
    /// LZ4 frames: cheap on CPU, a moderate ratio.
    Lz4,
    /// Zstandard frames (level 3): a better ratio for more CPU.
    Zstd,
}

impl Compression {
    /// Every choice, in the order of [`Compression::name`]'s documentation.
    pub const ALL: [Compression; 3] = [Compression::None, Compression::Lz4, Compression::Zstd];

    /// `none`, `lz4` or `zstd`: the spelling every SDK, the CLI and the docs use.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    pub(crate) fn to_wire(self) -> rapidmq_proto::v1::Compression {
        match self {
            Compression::None => rapidmq_proto::v1::Compression::None,
            Compression::Lz4 => rapidmq_proto::v1::Compression::Lz4,
            Compression::Zstd => rapidmq_proto::v1::Compression::Zstd,
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Compression {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Compression> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                crate::Error::invalid(format!(
                    "unknown compression `{s}`; choose none, lz4 or zstd"
                ))
            })
    }
}

/// What the broker did with one sent message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendStatus {
    /// Appended to the log; [`Delivery::offset`] is set.
    Appended,
    /// Held in the broker's persisted delay schedule; it gets an offset when due, which the
    /// producer does not learn.
    Scheduled,
    /// Dropped because its `msg-id` was seen within the topic's dedup window.
    Deduplicated,
}

/// Where a message was stored: the result of a send receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The partition.
    pub partition: u32,
    /// The offset within the partition; `Some` exactly when `status` is
    /// [`SendStatus::Appended`].
    pub offset: Option<u64>,
    /// What the acknowledgement guarantees (for a scheduled message: its schedule entry).
    pub durability: Durability,
    /// Appended, scheduled or deduplicated.
    pub status: SendStatus,
}

/// A published batch as the broker acknowledged it (the low-level [`crate::Client::publish_batch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishAck {
    /// The partition.
    pub partition: u32,
    /// Offset of the first message.
    pub base_offset: u64,
    /// Messages in the batch.
    pub count: u32,
    /// What the acknowledgement guarantees.
    pub durability: Durability,
    /// Whether the broker had already stored this batch (the offsets are the original ones).
    pub duplicate: bool,
    /// Broker append time in ms since the epoch.
    pub append_time_ms: i64,
    /// Messages of the batch held in the delay schedule (not counted in `count`).
    pub scheduled: u32,
    /// Indexes within the batch of messages dropped as `msg-id` duplicates.
    pub deduplicated: Vec<u32>,
}

/// A consumed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The offset within the partition.
    pub offset: u64,
    /// The key, if the producer set one.
    pub key: Option<Bytes>,
    /// The payload.
    pub value: Bytes,
    /// Application headers, in order.
    pub headers: Vec<(String, Bytes)>,
    /// Producer timestamp in ms since the epoch.
    pub timestamp_ms: i64,
    /// Broker append time in ms since the epoch.
    pub append_time_ms: i64,
    /// The message's delivery time when it was delayed (ms since the epoch).
    pub deliver_at_ms: Option<i64>,
    /// Its time to live, if it has one.
    pub ttl: Option<Duration>,
    /// Its priority, 0–9.
    pub priority: u8,
}

/// Where a new subscription (or a seek) starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StartPosition {
    /// Only messages appended from now on. The default.
    #[default]
    Latest,
    /// The oldest retained message.
    Earliest,
    /// This offset, clamped to the retained range.
    Offset(u64),
    /// The first message appended at or after this time (ms since the epoch).
    Timestamp(i64),
}

/// Where a topic's partitions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Storage {
    /// The broker's default.
    #[default]
    Default,
    /// Durable, in the broker's store.
    Disk,
    /// In memory only, lost on restart.
    Memory,
}

/// Topic settings. `None` and `Default` take the broker's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicConfig {
    /// Partition count (0: the broker's default).
    pub partitions: u32,
    /// Time retention per partition, ms (0: unlimited).
    pub retention_ms: Option<u64>,
    /// Size retention per partition, bytes (0: unlimited).
    pub retention_bytes: Option<u64>,
    /// Message-count retention per partition (0: unlimited).
    pub retention_messages: Option<u64>,
    /// Largest message accepted, bytes.
    pub max_message_bytes: Option<u32>,
    /// Disk or memory.
    pub storage: Storage,
    /// Ack durability (`Unspecified`: the broker's default, fsync).
    pub durability: Durability,
    /// Messages whose `msg-id` header was seen within this window are dropped (0: off).
    pub dedup_window_ms: Option<u64>,
    /// Cluster mode: copies of each partition (`None`: min(3, voting nodes)). A single-node
    /// broker accepts 1 only.
    pub replication_factor: Option<u32>,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition.
    pub partition: u32,
    /// Oldest retained offset.
    pub log_start_offset: u64,
    /// Next offset to be written.
    pub high_watermark: u64,
    /// Stored bytes.
    pub bytes: u64,
    /// Cluster mode: the nodes holding the partition, preferred leader first; empty otherwise.
    pub replicas: Vec<u64>,
    /// Cluster mode: the partition group's leader as the answering node knows it.
    pub leader: Option<u64>,
}

/// A topic as the broker describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The name.
    pub name: String,
    /// Every setting, resolved.
    pub config: TopicConfig,
    /// The partitions.
    pub partitions: Vec<PartitionInfo>,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
}

/// A subscription's position on one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionCursor {
    /// The partition.
    pub partition: u32,
    /// Next offset to consume.
    pub committed_offset: u64,
    /// The partition's high watermark.
    pub high_watermark: u64,
    /// Messages not yet committed.
    pub lag: u64,
}

/// A live member of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Broker-assigned id.
    pub member_id: String,
    /// The name the consumer gave.
    pub consumer_name: String,
    /// Partitions it owns.
    pub partitions: Vec<u32>,
}

/// Subscription modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SubscriptionMode {
    /// Ordered per partition; partitions shared among members; offsets committed.
    #[default]
    Stream,
    /// Messages go one by one to any live consumer and are acked individually; unacked ones are
    /// redelivered after the ack deadline and dead-lettered after `max_deliveries` attempts.
    Queue,
}

/// Settings of a queue-mode subscription; `None` takes the broker default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSettings {
    /// Visibility timeout: an unacked delivery is redelivered after this long (broker default
    /// 30 s).
    pub ack_deadline: Option<Duration>,
    /// Deliveries before a message moves to the dead-letter topic (broker default 5; 0 is
    /// refused with `INVALID_ARGUMENT`).
    pub max_deliveries: Option<u32>,
    /// The dead-letter topic (broker default `<topic>.dlq`, created when first needed).
    pub dead_letter_topic: Option<String>,
}

/// Counters of a queue-mode subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Deliveries not yet acked.
    pub in_flight: u64,
    /// Redeliveries so far (deadline passed or nacked).
    pub redeliveries: u64,
    /// Messages moved to the dead-letter topic.
    pub dead_lettered: u64,
    /// Messages that expired (TTL) before delivery.
    pub expired: u64,
}

/// A dead letter: a message that exhausted its deliveries, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its partition in the dead-letter topic.
    pub partition: u32,
    /// Its offset in that partition.
    pub offset: u64,
    /// The topic it came from.
    pub original_topic: String,
    /// Its partition there.
    pub original_partition: u32,
    /// Its offset there.
    pub original_offset: u64,
    /// Why it was dead-lettered.
    pub reason: String,
    /// Deliveries it had.
    pub attempts: u32,
    /// The message (with the `rapidmq-dlq-*` headers the broker added).
    pub message: ReceivedMessage,
}

/// One page of the dead letters not yet replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterPage {
    /// Oldest first within each partition of the dead-letter topic, partitions in order.
    pub dead_letters: Vec<DeadLetter>,
    /// Pass it to [`Admin::list_dead_letters`](crate::Admin::list_dead_letters) for the next
    /// page; `None` when every partition was read to its end. A page can hold fewer letters
    /// than asked for and still have a next one.
    pub next_page_token: Option<String>,
}

/// What one call of [`Admin::replay_dead_letters`](crate::Admin::replay_dead_letters) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetterReplay {
    /// Dead letters published back to their topics by this call.
    pub replayed: u32,
    /// Messages still pending in the dead-letter topic after this call, over all partitions.
    pub remaining: u64,
}

/// A subscription as the broker describes it, with its lag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    /// The topic.
    pub topic: String,
    /// The name.
    pub name: String,
    /// The mode.
    pub mode: SubscriptionMode,
    /// Per-partition positions and lag.
    pub cursors: Vec<PartitionCursor>,
    /// Live members.
    pub members: Vec<MemberInfo>,
    /// Sum of the per-partition lag.
    pub total_lag: u64,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Queue mode: the effective settings.
    pub queue: Option<QueueSettings>,
    /// Queue mode: the counters.
    pub queue_stats: Option<QueueStats>,
}

/// Broker status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerStatus {
    /// Broker version.
    pub version: String,
    /// Uptime in ms.
    pub uptime_ms: u64,
    /// Topic count.
    pub topics: u32,
    /// Subscription count.
    pub subscriptions: u32,
    /// Node id.
    pub node_id: String,
}

/// The cluster as the node that answered sees it ([`Admin::cluster_status`](crate::Admin)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// `single-node` (the other fields empty) or `cluster`.
    pub mode: String,
    /// The answering node's id.
    pub node_id: u64,
    /// The metadata group's leader, if there is one.
    pub leader_id: Option<u64>,
    /// The metadata group's term.
    pub term: u64,
    /// The metadata group's last applied index on the answering node.
    pub last_applied: Option<u64>,
    /// The answering node's part in the metadata group: `voter`, `learner`, `not a member yet`
    /// or `removed` (empty in single-node mode).
    pub membership: String,
    /// The metadata group's members, with their addresses from the node table.
    pub nodes: Vec<ClusterNode>,
    /// Partitions whose replicas are moving ([`Admin::rebalance_replicas`](crate::Admin)):
    /// started, not yet complete.
    pub moving_partitions: u32,
    /// The cluster's identity, which a node joining it can be given (`cluster.id`, or
    /// `RAPIDMQ_CLUSTER__ID`) so that it refuses other clusters. Empty in single-node mode and
    /// on a joining node that has not learned it yet.
    pub cluster_id: String,
}

/// What [`Admin::add_node`](crate::Admin) or `remove_node` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipChange {
    /// The metadata group's voters afterwards.
    pub voters: Vec<u64>,
    /// For the operator (already a voter, few voters left); empty when there is nothing to say.
    pub note: String,
}

/// What [`Admin::rebalance_leaders`](crate::Admin) started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderRebalance {
    /// Leadership transfers started, summed over the nodes (each completes within about an
    /// election timeout).
    pub transfers: u64,
    /// Nodes that could not be asked (down or unreachable).
    pub unreachable: Vec<u64>,
}

/// One partition's replicas before and after a move that
/// [`Admin::rebalance_replicas`](crate::Admin) started (or planned), preferred leader first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaMove {
    /// The topic's tenant.
    pub tenant: String,
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// The replicas before the move.
    pub from: Vec<u64>,
    /// The replicas after it.
    pub to: Vec<u64>,
}

/// A node of the cluster's node table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// Node id.
    pub id: u64,
    /// Node-to-node address.
    pub cluster_addr: String,
    /// Client gRPC address; empty until the node registered.
    pub grpc_addr: String,
    /// Client HTTP address; empty until the node registered.
    pub http_addr: String,
    /// Whether the answering node currently hears from it.
    pub reachable: bool,
    /// `voter` or `learner` (being added, catching up).
    pub role: String,
    /// The last raft index the leader knows the node has (answered by the leader only).
    pub matched: Option<u64>,
}

/// A user of the caller's tenant (a broker with authentication on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user's tenant.
    pub tenant: String,
    /// The user name.
    pub name: String,
    /// Whether the user can log in with a password.
    pub has_password: bool,
    /// When the user was created, in ms since the Unix epoch.
    pub created_at_ms: u64,
}

/// A token without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The public id (the part after `rmq_`).
    pub id: String,
    /// The owner's tenant.
    pub tenant: String,
    /// The user the token acts as.
    pub user: String,
    /// `api` (created by an admin) or `session` (from a login).
    pub kind: String,
    /// What it is for.
    pub description: String,
    /// When it was created, in ms since the Unix epoch.
    pub created_at_ms: u64,
    /// When it expires, in ms since the Unix epoch; `None` if it does not.
    pub expires_at_ms: Option<u64>,
}

/// A new API token: the full token, shown only here, and its description.
#[derive(Clone, PartialEq, Eq)]
pub struct CreatedToken {
    /// The token in full, `rmq_<id>_<secret>`.
    pub token: String,
    /// The token without its secret.
    pub info: TokenInfo,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("token", &"***")
            .field("info", &self.info)
            .finish()
    }
}
