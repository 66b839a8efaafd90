//! Every client default, defined once. The SDKs show these values in their docs and builders
//! instead of restating them, so that a Python and a Go producer batch exactly alike.

use std::time::Duration;

/// gRPC endpoint used when none is configured (the broker's default listen address).
pub const ENDPOINT: &str = "http://127.0.0.1:7420";
/// How long establishing a connection to one endpoint may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take before it fails with `TIMEOUT` (retriable).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a producer waits for more messages before sending a partition's batch.
pub const LINGER: Duration = Duration::from_millis(5);
/// A batch is sent as soon as it holds this many messages.
pub const MAX_BATCH_MESSAGES: usize = 1000;
/// A batch is sent before it would grow past this many encoded bytes.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Publish requests in flight at once across all partitions of a producer.
pub const MAX_IN_FLIGHT_REQUESTS: usize = 16;
/// Batches of one partition in flight at once (pipelined on one ordered `PublishStream`), as in
/// Kafka. At most [`MAX_IN_FLIGHT_PER_PARTITION_LIMIT`].
pub const MAX_IN_FLIGHT_PER_PARTITION: usize = 5;
/// The largest `max_in_flight_per_partition`: the broker remembers the offsets of the last 8
/// batches per producer and partition, which a resend of any in-flight batch must find.
pub const MAX_IN_FLIGHT_PER_PARTITION_LIMIT: usize = 8;
/// Messages a producer buffers (queued or in flight) before `send` waits for room.
pub const MAX_BUFFERED_MESSAGES: usize = 100_000;
/// Whether producers are idempotent (producer id + per-partition sequence).
pub const IDEMPOTENCE: bool = true;
/// Batch compression: none, since 100 B messages are often too small to gain and the CPU is
/// better spent publishing (docs/benchmarks.md "Batch compression" has the trade-off).
pub const COMPRESSION: crate::types::Compression = crate::types::Compression::None;

/// First retry backoff ceiling; each retry doubles it (full jitter picks in `[0, ceiling]`).
pub const RETRY_INITIAL_BACKOFF: Duration = Duration::from_millis(50);
/// Largest retry backoff ceiling.
pub const RETRY_MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Retries allowed for one request after its first attempt.
pub const MAX_RETRIES: u32 = 30;
/// Total time one batch may spend in retries before it fails with its last error.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Stream mode: messages a consumer may hold ahead of `poll` (the credits it grants the
/// broker). Several producer batches, so the broker sends the next while `poll` drains the last;
/// [`PREFETCH_BYTES`] bounds the memory this takes for larger messages.
pub const STREAM_PREFETCH: u32 = 10_000;
/// Stream mode: bytes of delivered batches a consumer may hold ahead of `poll`.
pub const PREFETCH_BYTES: u64 = 1 << 20;
/// Queue mode: deliveries a consumer may hold ahead of `poll`. Each holds a lease that runs
/// while it waits in the buffer, so the window stays small enough to be handled in time.
pub const QUEUE_PREFETCH: u32 = 1000;
/// How often a consumer sends its accumulated commits.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(500);
/// Whether `poll` acknowledges the messages it returns.
pub const AUTO_COMMIT: bool = false;
/// Queue mode: how often a consumer sends its accumulated acks (the same timer as commits).
pub const ACK_INTERVAL: Duration = COMMIT_INTERVAL;
/// Queue mode: pending acks are also sent as soon as this many have accumulated, so a fast
/// consumer frees the broker's delivery window without waiting for the interval.
pub const ACK_BATCH: usize = 256;
/// How long `close` waits for the final commit to reach the broker.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Queue handlers (`run` in every SDK): deliveries handled at once.
pub const HANDLER_CONCURRENCY: usize = 1;
/// Queue handlers: a failed delivery comes back after this delay at its first failure, doubled
/// at each later one ([`crate::retry_delay`]).
pub const HANDLER_RETRY_BACKOFF: Duration = Duration::from_secs(1);
/// Queue handlers: the longest delay before a failed delivery comes back.
pub const HANDLER_MAX_RETRY_BACKOFF: Duration = Duration::from_secs(60);
