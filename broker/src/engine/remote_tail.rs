//! A stream session's source for a partition this node holds no replica of (cluster mode,
//! docs/clustering.md "Stream consumer groups").
//!
//! A subscription's coordinator serves every member's session, whatever partitions it holds:
//! with more nodes than the replication factor it is not a replica of some. For those a
//! [`RemoteTail`] reads ahead from the partition group's leader (`Cluster.ReadBatches`,
//! [`Partition::read_remote`](super::partition::Partition::read_remote)) on its own task, into
//! a bounded buffer the session takes from, and signals new batches on a watch shaped like a
//! local partition's high watermark: the session waits on it as on a local one. The task runs
//! apart from the session because a session's `next` is cancelled whenever its transport has
//! something else to do; a read in flight then carries on.
//!
//! The leader answers only what it applied (committed), and holds a read that is at its end
//! until a batch comes or a while passes, so an idle partition costs one RPC per
//! [`LONG_POLL`]. A read that fails (no leader, a leader that cannot be reached) is tried again
//! after a backoff; the session goes on with its other partitions meanwhile, as with a local
//! partition that has no leader.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::batch::StoredBatch;
use super::topic::Topic;

/// Bytes of batches held ahead of the session at most.
const AHEAD_BYTES: usize = 4 << 20;
/// Bytes asked of the leader per read.
const PER_READ: usize = 1 << 20;
/// How long the leader holds a read at the partition's end.
const LONG_POLL: Duration = Duration::from_secs(2);
/// The wait after a failed read: doubled per failure, up to the maximum.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Ahead {
    batches: VecDeque<Arc<StoredBatch>>,
    bytes: usize,
    log_start: u64,
}

/// Batches of one partition read ahead from its leader, from an offset on.
pub(super) struct RemoteTail {
    ahead: Arc<Mutex<Ahead>>,
    /// Bumped whenever batches arrive (or the log start moves); kept here so that the
    /// session's receiver never sees it closed.
    arrived: Arc<watch::Sender<u64>>,
    /// The session took batches: room for more.
    room: Arc<Notify>,
    task: JoinHandle<()>,
}

impl RemoteTail {
    /// Starts reading partition `partition` of `topic` from offset `from`.
    pub fn spawn(topic: Arc<Topic>, partition: u32, from: u64) -> RemoteTail {
        let ahead = Arc::new(Mutex::new(Ahead {
            log_start: from,
            ..Ahead::default()
        }));
        let arrived = Arc::new(watch::channel(0).0);
        let room = Arc::new(Notify::new());
        let reader = Reader {
            topic,
            partition,
            next: from,
            ahead: Arc::clone(&ahead),
            arrived: Arc::clone(&arrived),
            room: Arc::clone(&room),
        };
        let task = tokio::spawn(reader.run());
        RemoteTail {
            ahead,
            arrived,
            room,
            task,
        }
    }

    /// Changes whenever batches arrive.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.arrived.subscribe()
    }

    /// The partition's log start, as the leader last answered it.
    pub fn log_start(&self) -> u64 {
        self.ahead.lock().log_start
    }

    /// The batches held that end after `from`, up to `max_batches` and about `max_bytes` (at
    /// least one); those that end at or before it are dropped.
    pub fn take(&self, from: u64, max_batches: usize, max_bytes: usize) -> Vec<Arc<StoredBatch>> {
        let mut taken = Vec::new();
        let mut bytes = 0;
        {
            let mut ahead = self.ahead.lock();
            while let Some(front) = ahead.batches.front() {
                let passed = front.end_offset() <= from;
                let full = taken.len() >= max_batches || (!taken.is_empty() && bytes >= max_bytes);
                if !passed && full {
                    break;
                }
                let Some(batch) = ahead.batches.pop_front() else {
                    break;
                };
                ahead.bytes -= batch.payload.len();
                if !passed {
                    bytes += batch.payload.len();
                    taken.push(batch);
                }
            }
        }
        self.room.notify_one();
        taken
    }
}

impl Drop for RemoteTail {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The task that reads ahead.
struct Reader {
    topic: Arc<Topic>,
    partition: u32,
    /// The offset of the next read.
    next: u64,
    ahead: Arc<Mutex<Ahead>>,
    arrived: Arc<watch::Sender<u64>>,
    room: Arc<Notify>,
}

impl Reader {
    async fn run(mut self) {
        let mut backoff = MIN_BACKOFF;
        loop {
            while self.ahead.lock().bytes >= AHEAD_BYTES {
                self.room.notified().await;
            }
            let Some(partition) = self.topic.partition(self.partition) else {
                return;
            };
            let asked = Instant::now();
            let Some(read) = partition.read_remote(self.next, PER_READ, LONG_POLL).await else {
                // This node holds the partition now (a replica moved here): the session reads
                // it locally once it is assigned again; nothing more comes from here.
                return;
            };
            match read {
                Ok(read) => {
                    backoff = MIN_BACKOFF;
                    let moved = self.keep(read);
                    if moved {
                        self.arrived.send_modify(|n| *n = n.wrapping_add(1));
                    } else if asked.elapsed() < LONG_POLL / 2 {
                        // The leader did not hold the read (it had just trimmed, or was not
                        // at the end after all): do not ask again at once.
                        tokio::time::sleep(MIN_BACKOFF).await;
                    }
                }
                Err(err) => {
                    tracing::debug!(
                        topic = %self.topic.name(),
                        partition = self.partition,
                        error = %err,
                        "reading a partition from its leader failed; trying again"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Holds what `read` brought past the next offset; whether anything changed for the session.
    fn keep(&mut self, read: super::RemoteRead) -> bool {
        let mut ahead = self.ahead.lock();
        let mut moved = read.log_start != ahead.log_start;
        ahead.log_start = read.log_start;
        // Retention removed what was next.
        self.next = self.next.max(read.log_start);
        for batch in read.batches {
            if batch.end_offset() <= self.next {
                continue;
            }
            self.next = batch.end_offset();
            ahead.bytes += batch.payload.len();
            ahead.batches.push_back(Arc::new(batch));
            moved = true;
        }
        moved
    }
}
