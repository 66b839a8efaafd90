//! Domain types of the client API. Wire types from `rapidmq-proto` are converted to and from these
//! at the boundary, in [`crate::convert`].

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
}

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

/// Where a message was stored: the result of a send receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The partition.
    pub partition: u32,
    /// The offset within the partition.
    pub offset: u64,
    /// What the acknowledgement guarantees.
    pub durability: Durability,
}

/// A published batch as the broker acknowledged it (the low-level [`crate::Client::publish_batch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

/// One partition of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition.
    pub partition: u32,
    /// Oldest retained offset.
    pub log_start_offset: u64,
    /// Next offset to be written.
    pub high_watermark: u64,
    /// Stored bytes.
    pub bytes: u64,
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
pub enum SubscriptionMode {
    /// Ordered per partition; partitions shared among members; offsets committed.
    #[default]
    Stream,
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
