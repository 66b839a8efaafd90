//! Result types as Python classes: immutable snapshots converted from the core's domain types.
//! Enums become lower-case strings (`"fsync"`, `"disk"`, `"stream"`), times stay integer
//! milliseconds since the epoch as in the core.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBytes;
use rapidmq_core as core;

pub(crate) fn durability_name(d: core::Durability) -> &'static str {
    match d {
        core::Durability::Unspecified => "unspecified",
        core::Durability::Fsync => "fsync",
        core::Durability::Buffered => "buffered",
        core::Durability::Memory => "memory",
    }
}

pub(crate) fn storage_name(s: core::Storage) -> &'static str {
    match s {
        core::Storage::Default => "default",
        core::Storage::Disk => "disk",
        core::Storage::Memory => "memory",
    }
}

pub(crate) fn send_status_name(s: core::SendStatus) -> &'static str {
    match s {
        core::SendStatus::Appended => "appended",
        core::SendStatus::Scheduled => "scheduled",
        core::SendStatus::Deduplicated => "deduplicated",
    }
}

/// What happened to a sent message: the result of a `SendReceipt`.
#[pyclass(module = "rapidmq", name = "Delivery", frozen, get_all, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// The partition.
    partition: u32,
    /// The offset within the partition; set exactly when `status` is "appended".
    offset: Option<u64>,
    /// What the acknowledgement guarantees: "fsync", "buffered", "memory" or "unspecified".
    durability: &'static str,
    /// "appended", "scheduled" (waiting in the broker's delay schedule) or "deduplicated"
    /// (dropped as a repeat of its msg-id).
    status: &'static str,
}

impl From<core::Delivery> for Delivery {
    fn from(d: core::Delivery) -> Self {
        Delivery {
            partition: d.partition,
            offset: d.offset,
            durability: durability_name(d.durability),
            status: send_status_name(d.status),
        }
    }
}

#[pymethods]
impl Delivery {
    fn __repr__(&self) -> String {
        let offset = self
            .offset
            .map_or_else(|| "None".to_string(), |o| o.to_string());
        format!(
            "Delivery(partition={}, offset={offset}, durability='{}', status='{}')",
            self.partition, self.durability, self.status
        )
    }
}

/// A batch as the broker acknowledged it (`Client.publish_batch`).
#[pyclass(module = "rapidmq", name = "PublishAck", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct PublishAck {
    /// The partition.
    partition: u32,
    /// Offset of the first message.
    base_offset: u64,
    /// Messages in the batch.
    count: u32,
    /// What the acknowledgement guarantees.
    durability: &'static str,
    /// Whether the broker already had this batch (the offsets are the original ones).
    duplicate: bool,
    /// Broker append time, ms since the epoch.
    append_time_ms: i64,
    /// Messages of the batch held in the delay schedule (not counted in `count`).
    scheduled: u32,
    /// Indexes within the batch of messages dropped as msg-id duplicates.
    deduplicated: Vec<u32>,
}

impl From<core::PublishAck> for PublishAck {
    fn from(a: core::PublishAck) -> Self {
        PublishAck {
            partition: a.partition,
            base_offset: a.base_offset,
            count: a.count,
            durability: durability_name(a.durability),
            duplicate: a.duplicate,
            append_time_ms: a.append_time_ms,
            scheduled: a.scheduled,
            deduplicated: a.deduplicated,
        }
    }
}

#[pymethods]
impl PublishAck {
    fn __repr__(&self) -> String {
        format!(
            "PublishAck(partition={}, base_offset={}, count={}, duplicate={})",
            self.partition,
            self.base_offset,
            self.count,
            if self.duplicate { "True" } else { "False" }
        )
    }
}

/// `rapidmq._json._decode`, looked up once.
static DECODE_JSON: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A message value parsed as JSON, or the dataclass `cls` built from it: `rapidmq._json` does
/// it (Python's `json` module and `dataclasses`), and raises its `InvalidArgumentError`s.
pub(crate) fn decode_json<'py>(
    py: Python<'py>,
    value: &[u8],
    cls: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let decode = DECODE_JSON.get_or_try_init(py, || {
        py.import("rapidmq._json")?
            .getattr("_decode")
            .map(Bound::unbind)
    })?;
    decode.bind(py).call1((PyBytes::new(py, value), cls))
}

/// A consumed message. `key`, `value` and header values are `bytes`.
#[pyclass(module = "rapidmq", name = "ReceivedMessage", frozen)]
pub(crate) struct ReceivedMessage {
    pub(crate) inner: core::ReceivedMessage,
}

#[pymethods]
impl ReceivedMessage {
    /// The topic.
    #[getter]
    fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// The partition.
    #[getter]
    fn partition(&self) -> u32 {
        self.inner.partition
    }

    /// The offset within the partition.
    #[getter]
    fn offset(&self) -> u64 {
        self.inner.offset
    }

    /// The key, or None.
    #[getter]
    fn key<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.key.as_ref().map(|k| PyBytes::new(py, k))
    }

    /// The payload.
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.value)
    }

    /// Application headers, in order, as `(name, value)` pairs.
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> Vec<(&str, Bound<'py, PyBytes>)> {
        self.inner
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), PyBytes::new(py, v)))
            .collect()
    }

    /// Producer timestamp, ms since the epoch.
    #[getter]
    fn timestamp_ms(&self) -> i64 {
        self.inner.timestamp_ms
    }

    /// Broker append time, ms since the epoch.
    #[getter]
    fn append_time_ms(&self) -> i64 {
        self.inner.append_time_ms
    }

    /// When it was delayed: its delivery time, ms since the epoch.
    #[getter]
    fn deliver_at_ms(&self) -> Option<i64> {
        self.inner.deliver_at_ms
    }

    /// Its time to live in seconds, if it has one.
    #[getter]
    fn ttl(&self) -> Option<f64> {
        self.inner.ttl.map(|t| t.as_secs_f64())
    }

    /// Its priority, 0-9.
    #[getter]
    fn priority(&self) -> u8 {
        self.inner.priority
    }

    /// The value parsed as JSON; with `cls`, a dataclass, that dataclass built from it (C28).
    /// Raises `InvalidArgumentError` when the value is not JSON or `cls` cannot be built from it.
    #[pyo3(signature = (cls=None))]
    fn json<'py>(
        &self,
        py: Python<'py>,
        cls: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        decode_json(py, &self.inner.value, cls)
    }

    fn __repr__(&self) -> String {
        format!(
            "ReceivedMessage(topic='{}', partition={}, offset={}, {} bytes)",
            self.inner.topic,
            self.inner.partition,
            self.inner.offset,
            self.inner.value.len()
        )
    }
}

/// Topic settings as the broker resolved them.
#[pyclass(module = "rapidmq", name = "TopicSettings", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct TopicSettings {
    /// Partition count.
    partitions: u32,
    /// Time retention per partition, ms (0: unlimited).
    retention_ms: Option<u64>,
    /// Size retention per partition, bytes (0: unlimited).
    retention_bytes: Option<u64>,
    /// Message-count retention per partition (0: unlimited).
    retention_messages: Option<u64>,
    /// Largest message accepted, bytes.
    max_message_bytes: Option<u32>,
    /// "default", "disk" or "memory".
    storage: &'static str,
    /// "unspecified", "fsync", "buffered" or "memory".
    durability: &'static str,
    /// Window in ms within which repeated msg-id headers are dropped (0: off).
    dedup_window_ms: Option<u64>,
    /// Cluster mode: copies of each partition; `None` on a single-node broker.
    replication_factor: Option<u32>,
}

impl From<core::TopicConfig> for TopicSettings {
    fn from(c: core::TopicConfig) -> Self {
        TopicSettings {
            partitions: c.partitions,
            retention_ms: c.retention_ms,
            retention_bytes: c.retention_bytes,
            retention_messages: c.retention_messages,
            max_message_bytes: c.max_message_bytes,
            storage: storage_name(c.storage),
            durability: durability_name(c.durability),
            dedup_window_ms: c.dedup_window_ms,
            replication_factor: c.replication_factor,
        }
    }
}

/// One partition of a topic.
#[pyclass(module = "rapidmq", name = "PartitionInfo", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct PartitionInfo {
    /// The partition.
    partition: u32,
    /// Oldest retained offset.
    log_start_offset: u64,
    /// Next offset to be written.
    high_watermark: u64,
    /// Stored bytes.
    bytes: u64,
    /// Cluster mode: the nodes holding the partition, preferred leader first; empty otherwise.
    replicas: Vec<u64>,
    /// Cluster mode: the partition group's leader as the answering node knows it.
    leader: Option<u64>,
}

/// A topic as the broker describes it.
#[pyclass(module = "rapidmq", name = "TopicInfo", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct TopicInfo {
    /// The name.
    name: String,
    /// Every setting, resolved.
    config: TopicSettings,
    /// The partitions.
    partitions: Vec<PartitionInfo>,
    /// Creation time, ms since the epoch.
    created_at_ms: i64,
}

impl From<core::TopicInfo> for TopicInfo {
    fn from(t: core::TopicInfo) -> Self {
        TopicInfo {
            name: t.name,
            config: t.config.into(),
            partitions: t
                .partitions
                .into_iter()
                .map(|p| PartitionInfo {
                    partition: p.partition,
                    log_start_offset: p.log_start_offset,
                    high_watermark: p.high_watermark,
                    bytes: p.bytes,
                    replicas: p.replicas,
                    leader: p.leader,
                })
                .collect(),
            created_at_ms: t.created_at_ms,
        }
    }
}

#[pymethods]
impl TopicInfo {
    fn __repr__(&self) -> String {
        format!(
            "TopicInfo(name='{}', partitions={})",
            self.name,
            self.partitions.len()
        )
    }
}

/// A subscription's position on one partition.
#[pyclass(module = "rapidmq", name = "PartitionCursor", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct PartitionCursor {
    /// The partition.
    partition: u32,
    /// Next offset to consume.
    committed_offset: u64,
    /// The partition's high watermark.
    high_watermark: u64,
    /// Messages not yet committed.
    lag: u64,
}

/// A live member of a subscription.
#[pyclass(module = "rapidmq", name = "MemberInfo", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct MemberInfo {
    /// Broker-assigned id.
    member_id: String,
    /// The name the consumer gave.
    consumer_name: String,
    /// Partitions it owns.
    partitions: Vec<u32>,
}

/// A subscription as the broker describes it, with its lag.
#[pyclass(module = "rapidmq", name = "SubscriptionInfo", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct SubscriptionInfo {
    /// The topic.
    topic: String,
    /// The name.
    name: String,
    /// The mode: "stream" or "queue".
    mode: &'static str,
    /// Per-partition positions and lag.
    cursors: Vec<PartitionCursor>,
    /// Live members.
    members: Vec<MemberInfo>,
    /// Sum of the per-partition lag.
    total_lag: u64,
    /// Creation time, ms since the epoch.
    created_at_ms: i64,
    /// Queue mode: the effective settings.
    queue: Option<QueueSettings>,
    /// Queue mode: the counters.
    queue_stats: Option<QueueStats>,
}

/// Settings of a queue-mode subscription.
#[pyclass(module = "rapidmq", name = "QueueSettings", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct QueueSettings {
    /// Seconds before an unacked delivery is redelivered.
    ack_deadline: Option<f64>,
    /// Deliveries before a message moves to the dead-letter topic.
    max_deliveries: Option<u32>,
    /// The dead-letter topic.
    dead_letter_topic: Option<String>,
}

/// Counters of a queue-mode subscription.
#[pyclass(module = "rapidmq", name = "QueueStats", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct QueueStats {
    /// Deliveries not yet acked.
    in_flight: u64,
    /// Redeliveries so far (deadline passed or nacked).
    redeliveries: u64,
    /// Messages moved to the dead-letter topic.
    dead_lettered: u64,
    /// Messages that expired (TTL) before delivery.
    expired: u64,
}

/// A message that exhausted its deliveries, with where it came from.
#[pyclass(module = "rapidmq", name = "DeadLetter", frozen)]
pub(crate) struct DeadLetter {
    inner: core::DeadLetter,
}

impl From<core::DeadLetter> for DeadLetter {
    fn from(inner: core::DeadLetter) -> Self {
        DeadLetter { inner }
    }
}

#[pymethods]
impl DeadLetter {
    /// Its partition in the dead-letter topic.
    #[getter]
    fn partition(&self) -> u32 {
        self.inner.partition
    }

    /// Its offset in that partition.
    #[getter]
    fn offset(&self) -> u64 {
        self.inner.offset
    }

    /// The topic it came from.
    #[getter]
    fn original_topic(&self) -> &str {
        &self.inner.original_topic
    }

    /// Its partition there.
    #[getter]
    fn original_partition(&self) -> u32 {
        self.inner.original_partition
    }

    /// Its offset there.
    #[getter]
    fn original_offset(&self) -> u64 {
        self.inner.original_offset
    }

    /// Why it was dead-lettered.
    #[getter]
    fn reason(&self) -> &str {
        &self.inner.reason
    }

    /// Deliveries it had.
    #[getter]
    fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// The message, with the `rapidmq-dlq-*` headers the broker added.
    #[getter]
    fn message(&self) -> ReceivedMessage {
        ReceivedMessage {
            inner: self.inner.message.clone(),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "DeadLetter(original_topic='{}', original_offset={}, attempts={}, reason='{}')",
            self.inner.original_topic,
            self.inner.original_offset,
            self.inner.attempts,
            self.inner.reason
        )
    }
}

/// One page of dead letters from `Admin.list_dead_letters`.
#[pyclass(module = "rapidmq", name = "DeadLetterPage", frozen)]
pub(crate) struct DeadLetterPage {
    dead_letters: Vec<core::DeadLetter>,
    /// Pass it as `page_token` for the next page; `None` when there is nothing more.
    #[pyo3(get)]
    next_page_token: Option<String>,
}

impl From<core::DeadLetterPage> for DeadLetterPage {
    fn from(p: core::DeadLetterPage) -> Self {
        DeadLetterPage {
            dead_letters: p.dead_letters,
            next_page_token: p.next_page_token,
        }
    }
}

#[pymethods]
impl DeadLetterPage {
    /// Oldest first within each partition of the dead-letter topic, partitions in order.
    #[getter]
    fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead_letters
            .iter()
            .map(|d| DeadLetter { inner: d.clone() })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "DeadLetterPage(dead_letters=<{} letters>, next_page_token={:?})",
            self.dead_letters.len(),
            self.next_page_token
        )
    }
}

/// What one `Admin.replay_dead_letters` call did.
#[pyclass(module = "rapidmq", name = "DeadLetterReplay", frozen)]
pub(crate) struct DeadLetterReplay {
    /// Dead letters published back to their topics by this call.
    #[pyo3(get)]
    replayed: u32,
    /// Messages still pending in the dead-letter topic, over all partitions.
    #[pyo3(get)]
    remaining: u64,
}

impl From<core::DeadLetterReplay> for DeadLetterReplay {
    fn from(r: core::DeadLetterReplay) -> Self {
        DeadLetterReplay {
            replayed: r.replayed,
            remaining: r.remaining,
        }
    }
}

#[pymethods]
impl DeadLetterReplay {
    fn __repr__(&self) -> String {
        format!(
            "DeadLetterReplay(replayed={}, remaining={})",
            self.replayed, self.remaining
        )
    }
}

impl From<core::SubscriptionInfo> for SubscriptionInfo {
    fn from(s: core::SubscriptionInfo) -> Self {
        SubscriptionInfo {
            topic: s.topic,
            name: s.name,
            mode: match s.mode {
                core::SubscriptionMode::Stream => "stream",
                core::SubscriptionMode::Queue => "queue",
                _ => "unknown",
            },
            cursors: s
                .cursors
                .into_iter()
                .map(|c| PartitionCursor {
                    partition: c.partition,
                    committed_offset: c.committed_offset,
                    high_watermark: c.high_watermark,
                    lag: c.lag,
                })
                .collect(),
            members: s
                .members
                .into_iter()
                .map(|m| MemberInfo {
                    member_id: m.member_id,
                    consumer_name: m.consumer_name,
                    partitions: m.partitions,
                })
                .collect(),
            total_lag: s.total_lag,
            created_at_ms: s.created_at_ms,
            queue: s.queue.map(|q| QueueSettings {
                ack_deadline: q.ack_deadline.map(|d| d.as_secs_f64()),
                max_deliveries: q.max_deliveries,
                dead_letter_topic: q.dead_letter_topic,
            }),
            queue_stats: s.queue_stats.map(|q| QueueStats {
                in_flight: q.in_flight,
                redeliveries: q.redeliveries,
                dead_lettered: q.dead_lettered,
                expired: q.expired,
            }),
        }
    }
}

#[pymethods]
impl SubscriptionInfo {
    fn __repr__(&self) -> String {
        format!(
            "SubscriptionInfo(topic='{}', name='{}', mode='{}', total_lag={})",
            self.topic, self.name, self.mode, self.total_lag
        )
    }
}

/// Broker status.
#[pyclass(module = "rapidmq", name = "BrokerStatus", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct BrokerStatus {
    /// Broker version.
    version: String,
    /// Uptime in ms.
    uptime_ms: u64,
    /// Topic count.
    topics: u32,
    /// Subscription count.
    subscriptions: u32,
    /// Node id.
    node_id: String,
}

impl From<core::BrokerStatus> for BrokerStatus {
    fn from(s: core::BrokerStatus) -> Self {
        BrokerStatus {
            version: s.version,
            uptime_ms: s.uptime_ms,
            topics: s.topics,
            subscriptions: s.subscriptions,
            node_id: s.node_id,
        }
    }
}

/// A producer's counters since it was created.
#[pyclass(module = "rapidmq", name = "ProducerStats", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct ProducerStats {
    /// Messages accepted by `send`.
    messages_sent: u64,
    /// Messages acknowledged by the broker.
    messages_acked: u64,
    /// Messages whose batch failed.
    messages_failed: u64,
    /// Batches handed to the network.
    batches: u64,
    /// Publish requests sent, first attempts and retries.
    requests: u64,
    /// Retries.
    retries: u64,
    /// Batches the broker reported as duplicates.
    duplicates: u64,
    /// The deepest pipeline (batches in flight on one partition) reached.
    max_partition_in_flight: u64,
}

impl From<core::ProducerStats> for ProducerStats {
    fn from(s: core::ProducerStats) -> Self {
        ProducerStats {
            messages_sent: s.messages_sent,
            messages_acked: s.messages_acked,
            messages_failed: s.messages_failed,
            batches: s.batches,
            requests: s.requests,
            retries: s.retries,
            duplicates: s.duplicates,
            max_partition_in_flight: s.max_partition_in_flight,
        }
    }
}

#[pymethods]
impl ProducerStats {
    fn __repr__(&self) -> String {
        format!("{self:?}")
    }
}

/// A consumer's counters since it was created.
#[pyclass(module = "rapidmq", name = "ConsumerStats", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct ConsumerStats {
    /// Messages received from the broker.
    received: u64,
    /// Messages returned by `poll`.
    polled: u64,
    /// Messages buffered ahead of `poll` now.
    buffered: u64,
    /// The most messages ever buffered ahead of `poll`; never above `prefetch`.
    max_buffered: u64,
    /// Commit messages sent.
    commits: u64,
    /// Sessions re-established after the stream broke.
    reconnects: u64,
    /// Buffered messages dropped because their partition was revoked.
    dropped_on_revoke: u64,
    /// The latest assignment generation.
    generation: u64,
}

impl From<core::ConsumerStats> for ConsumerStats {
    fn from(s: core::ConsumerStats) -> Self {
        ConsumerStats {
            received: s.received,
            polled: s.polled,
            buffered: s.buffered,
            max_buffered: s.max_buffered,
            commits: s.commits,
            reconnects: s.reconnects,
            dropped_on_revoke: s.dropped_on_revoke,
            generation: s.generation,
        }
    }
}

#[pymethods]
impl ConsumerStats {
    fn __repr__(&self) -> String {
        format!("{self:?}")
    }
}

/// Messages read by `Client.fetch`.
#[pyclass(module = "rapidmq", name = "FetchResult", frozen)]
pub(crate) struct FetchResult {
    messages: Vec<core::ReceivedMessage>,
    /// The partition's next offset to be written.
    #[pyo3(get)]
    high_watermark: u64,
    /// The partition's oldest retained offset.
    #[pyo3(get)]
    log_start_offset: u64,
}

impl From<core::FetchResult> for FetchResult {
    fn from(f: core::FetchResult) -> Self {
        FetchResult {
            messages: f.messages,
            high_watermark: f.high_watermark,
            log_start_offset: f.log_start_offset,
        }
    }
}

#[pymethods]
impl FetchResult {
    /// The messages, in offset order.
    #[getter]
    fn messages(&self) -> Vec<ReceivedMessage> {
        self.messages
            .iter()
            .map(|m| ReceivedMessage { inner: m.clone() })
            .collect()
    }
}
