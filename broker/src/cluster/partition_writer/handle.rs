//! A partition group as the node's `Cluster` service sees it.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use openraft::ReadPolicy;
use openraft::async_runtime::watch::WatchReceiver;

use super::PartitionRaft;
use super::task::propose_in_order;
use crate::clock::Clock;
use crate::cluster::partition_group::PartitionCommand;
use crate::cluster::rebuild;
use crate::cluster::wire::{GroupHandle, ReadAnswer, ReadAsk};
use crate::cluster::{decode, encode};
use crate::engine::{ConsumerState, PartitionShared, PartitionView, RemoteRead};

/// Batches a remote read answers at most, and the longest it waits for one.
const READ_BATCHES: usize = 64;
const MAX_READ_WAIT: Duration = Duration::from_secs(5);

/// A partition group as the `Cluster` service sees it: its raft, plus a `propose` that takes
/// the forwarded entries of a partition's writer (an encoded `Vec<PartitionCommand>`), stamps
/// appends with this leader's clock, proposes them in order and answers each once applied (an
/// encoded `Vec<Result<PartitionReply, String>>`).
pub struct PartitionHandle {
    pub raft: PartitionRaft,
    pub clock: Arc<dyn Clock>,
    /// What the group applies into, for [`GroupHandle::read_view`].
    pub shared: Arc<PartitionShared>,
    pub consumers: Arc<dyn ConsumerState>,
}

impl GroupHandle for PartitionHandle {
    fn handle(&self, message: Vec<u8>) -> BoxFuture<'_, std::result::Result<Vec<u8>, String>> {
        self.raft.handle(message)
    }

    fn heartbeat(&self) -> BoxFuture<'_, ()> {
        GroupHandle::heartbeat(&self.raft)
    }

    fn install_snapshot(
        &self,
        head: Vec<u8>,
        data: Vec<u8>,
    ) -> BoxFuture<'_, std::result::Result<Vec<u8>, String>> {
        self.raft.install_snapshot(head, data)
    }

    fn propose(&self, command: Vec<u8>) -> BoxFuture<'_, std::result::Result<Vec<u8>, String>> {
        Box::pin(async move {
            let mut commands: Vec<PartitionCommand> =
                decode(&command).map_err(|err| err.to_string())?;
            let now = self.clock.now_ms();
            for command in &mut commands {
                if let PartitionCommand::Append(append) = command {
                    append.append_time_ms = now;
                }
            }
            let mut answers = Vec::with_capacity(commands.len());
            for reply in propose_in_order(&self.raft, commands).await {
                answers.push(match reply {
                    Ok(rx) => rx.await.unwrap_or_else(|_| Err("the group stopped".into())),
                    Err(err) => Err(err),
                });
            }
            encode(&answers).map_err(|err| err.to_string())
        })
    }

    fn read_index(&self) -> BoxFuture<'_, std::result::Result<u64, String>> {
        GroupHandle::read_index(&self.raft)
    }

    fn read_view(
        &self,
        subscription: Option<String>,
    ) -> BoxFuture<'_, std::result::Result<Vec<u8>, String>> {
        Box::pin(async move {
            self.raft
                .ensure_linearizable(ReadPolicy::ReadIndex)
                .await
                .map_err(|err| err.to_string())?;
            let view = PartitionView::of(&self.shared, &*self.consumers, subscription.as_deref());
            encode(&view).map_err(|err| err.to_string())
        })
    }

    fn read_batches(&self, ask: ReadAsk) -> BoxFuture<'_, std::result::Result<Vec<u8>, String>> {
        Box::pin(async move {
            let leader = {
                let metrics = self.raft.metrics();
                let metrics = metrics.borrow_watched();
                (metrics.current_leader != Some(metrics.id)).then_some(metrics.current_leader)
            };
            if let Some(leader) = leader {
                return encode(&ReadAnswer::NotLeader(leader)).map_err(|err| err.to_string());
            }
            // What this leader applied is committed: no read index needed.
            let shared = &self.shared;
            if ask.from >= shared.high_watermark() && ask.wait_ms > 0 {
                let wait = Duration::from_millis(u64::from(ask.wait_ms)).min(MAX_READ_WAIT);
                let mut high_watermark = shared.watch_high_watermark();
                let _ =
                    tokio::time::timeout(wait, high_watermark.wait_for(|&hw| hw > ask.from)).await;
            }
            let batches = shared
                .read(ask.from, READ_BATCHES, ask.max_bytes as usize)
                .await
                .map_err(|err| err.to_string())?;
            let read = RemoteRead {
                batches: batches.iter().map(|batch| (**batch).clone()).collect(),
                high_watermark: shared.high_watermark(),
                log_start: shared.log_start(),
            };
            encode(&ReadAnswer::Read(read)).map_err(|err| err.to_string())
        })
    }

    fn rebuild_replica(
        &self,
        node: u64,
        request: rebuild::Request,
    ) -> BoxFuture<'_, std::result::Result<bool, String>> {
        Box::pin(rebuild::answer(&self.raft, node, request))
    }
}
