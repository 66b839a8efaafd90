//! A replica whose stored partition data is damaged rebuilds it from the other replicas
//! (docs/clustering.md "Damaged data").
//!
//! **Finding it.** Before a partition group starts on a node, the node reads every batch it
//! holds of the partition (its raft log entries, the batches a snapshot install put in the
//! log column family, and their index entries) and checks each against the checksums RocksDB
//! stored with it ([`damage`]): a flipped byte or a truncated file fails that check. A read
//! that finds damage later, while the group runs, fails instead of returning the bytes (a
//! consumer's fetch gets `STORAGE_ERROR`; a leader that cannot read an entry stops the group
//! on its node rather than send it, since openraft's storage errors are fatal to the group),
//! so damage is never served or replicated. The store tells [`watch_damage`] of that read,
//! and the group stops on this node and starts again the way it does at a start, checked
//! ([`Engine::rebuild_damaged`]): the running replica rebuilds without a restart.
//!
//! **Rebuilding**, safely. A replica that drops its log must not count towards a majority of
//! what it no longer holds: were it to vote as before, a leader lacking an entry it had
//! acknowledged could be elected with its vote, and the entry lost. So the damaged replica
//! first asks the group's leader to make it a learner ([`Request::Demote`]: openraft's
//! `RemoveVoters` keeping it as a learner, committed by the other replicas, and
//! `allow_next_revert`, so the leader replicates to it from the start instead of refusing a
//! log that went backwards). Only then does it delete its copy of the partition ([`wipe`]:
//! the group's raft log and records, except its vote, and the partition's batches, index,
//! producers, schedule and watermark) and start the group empty. The leader sends it
//! everything again (entries, or a snapshot where it purged them) and the replica applies
//! them as any replica does, so it ends byte-identical. Once it has applied what the leader
//! sent and the leader sees it caught up, it asks to vote again ([`Request::Promote`],
//! `AddVoterIds`), which [`rejoin`] does for every group that finds this node a learner.
//!
//! A node that stops between the steps picks up where it was: damage still on disk is found
//! again (and a demotion of a learner changes nothing); a wiped learner is promoted by
//! [`rejoin`] once caught up. A partition with no other replica cannot be rebuilt: the node
//! says so and serves what is intact (reads of the damaged batches fail).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::{ChangeMembers, ServerState};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::keys::{self, GroupId, StateKey};
use super::leaders::standing;
use super::log_store::drop_group;
use super::network::RPC_TIMEOUT;
use super::node_table::METADATA;
use super::partition_writer::{PartitionRaft, Route};
use super::rpc::{self, Rpc};
use crate::engine::commit::{log_key, producer_key, watermark_key};
use crate::engine::partition_schedule;
use crate::engine::{Engine, PartitionShared};
use crate::storage::{Cf, StorageError, Store, WriteBatch};

/// What a replica asks the leader of its group (`Cluster.RebuildReplica`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Make the replica a learner and replicate to it from the start: it is about to drop its
    /// copy.
    Demote,
    /// Make the replica, a learner, a voter again if it caught up.
    Promote,
}

/// How long a replica waits before asking again when no leader took its request.
const RETRY: Duration = Duration::from_secs(1);

/// Where the stored data of partition `partition` of topic `topic_id` (group `group`) fails its
/// checksums, if it does anywhere. Reads all of it. Blocks.
pub fn damage(
    store: &dyn Store,
    group: GroupId,
    topic_id: u32,
    partition: u32,
) -> Result<Option<String>, StorageError> {
    let (from, to) = keys::entry_range(group, 0, None);
    if let Some(found) = store.verify(Cf::RaftLog, &from, &to)? {
        return Ok(Some(format!("raft log: {found}")));
    }
    let (from, to) = (
        log_key(topic_id, partition, 0),
        log_key(topic_id, partition, u64::MAX),
    );
    if let Some(found) = store.verify(Cf::Log, &from, &to)? {
        return Ok(Some(format!("batches: {found}")));
    }
    Ok(store
        .verify(Cf::Index, &from, &to)?
        .map(|found| format!("index: {found}")))
}

/// How long after a damaged partition's rebuild started reads that find it damaged again are
/// taken as the same damage (reads under way when it started, or the rebuild still waiting for
/// a leader) rather than a reason to start over.
const REBUILD_QUIET: Duration = Duration::from_secs(30);

/// The partition group whose data the key `key` of `cf` belongs to, if it is a partition's:
/// batches, index entries and raft log entries all start with `topic_id | partition`, which is
/// the group id ([`keys::partition_group`]).
fn damaged_group(cf: Cf, key: &[u8]) -> Option<GroupId> {
    if !matches!(cf, Cf::Log | Cf::Index | Cf::RaftLog) {
        return None;
    }
    let prefix: [u8; 8] = key.get(..8)?.try_into().ok()?;
    Some(GroupId::from_be_bytes(prefix))
}

/// From now on, a read of `store` that finds a partition's stored data damaged while the node
/// runs has `engine` rebuild this node's copy of that partition ([`Engine::rebuild_damaged`]),
/// once per [`REBUILD_QUIET`] at most. Damage to anything else (the metadata group's log, the
/// node's own records) is logged: no other replica can hand it back while the node runs.
pub fn watch_damage(store: &Arc<dyn Store>, engine: Weak<Engine>) -> JoinHandle<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    store.on_damage(Arc::new(move |cf, key: &[u8]| {
        let _ = tx.send((cf, damaged_group(cf, key)));
    }));
    tokio::spawn(async move {
        let mut started: HashMap<GroupId, Instant> = HashMap::new();
        let mut told = false;
        while let Some((cf, group)) = rx.recv().await {
            let Some(group) = group.filter(|&group| group != METADATA) else {
                if !std::mem::replace(&mut told, true) {
                    tracing::error!(
                        column_family = cf.name(),
                        "a read found stored data damaged outside the partitions' batches: \
                         other replicas cannot rebuild it (docs/clustering.md, \"Damaged data\")"
                    );
                }
                continue;
            };
            if started
                .get(&group)
                .is_some_and(|at| at.elapsed() < REBUILD_QUIET)
            {
                continue;
            }
            started.insert(group, Instant::now());
            let Some(engine) = engine.upgrade() else {
                return;
            };
            let (topic_id, partition) = ((group >> 32) as u32, group as u32);
            tokio::spawn(async move { engine.rebuild_damaged(topic_id, partition).await });
        }
    })
}

/// Deletes this node's copy of `shared`'s partition and of its group `group`: the raft log and
/// every record of the group but its vote (a replica never votes twice in a term), and the
/// partition's batches, index entries, producers, schedule and watermark. Readers see an empty
/// partition from here on. Its subscriptions' cursors stay: the group's entries set them again.
/// Blocks.
pub fn wipe(
    store: &dyn Store,
    group: GroupId,
    shared: &PartitionShared,
) -> Result<(), StorageError> {
    let (t, p) = (shared.topic_id, shared.index);
    let mut batch = WriteBatch::new();
    drop_group(&mut batch, group, StateKey::Committed);
    let (lower, upper) = (log_key(t, p, 0), log_key(t, p, u64::MAX));
    batch.delete_range(Cf::Index, lower.clone(), upper.clone());
    batch.delete_range(Cf::Log, lower, upper);
    batch.delete_range(
        Cf::Producers,
        producer_key(t, p, 0),
        producer_key(t, p, u64::MAX),
    );
    for (key, _) in partition_schedule(store, t, p)? {
        batch.delete(Cf::Schedule, key);
    }
    batch.delete(Cf::Meta, watermark_key(t, p));
    store.write(batch, true)?;
    shared.restored(0, 0, 0);
    Ok(())
}

/// Asks the leader of `route`'s group, among the other replicas, for `request` on this node's
/// behalf: what the leader answered (for [`Request::Promote`], whether the node votes now),
/// or why no replica took it.
pub async fn ask(route: &Route, request: Request) -> Result<bool, String> {
    let mut refused = Vec::new();
    for node in route
        .replicas
        .get()
        .into_iter()
        .filter(|&id| id != route.me)
    {
        let Some(addr) = route.addresses.get(node) else {
            refused.push(format!("node {node}: no known address"));
            continue;
        };
        let call = (route.group, route.me, request);
        let answer: Result<Result<bool, String>, String> =
            rpc::call(&route.tls, &addr, RPC_TIMEOUT, Rpc::RebuildReplica, &call).await;
        match answer {
            Ok(Ok(done)) => return Ok(done),
            Ok(Err(why)) | Err(why) => refused.push(format!("node {node}: {why}")),
        }
    }
    Err(refused.join("; "))
}

/// Asks for [`Request::Demote`] until a leader took it. Returns only then.
pub async fn demote(route: &Route) {
    let mut attempts = 0u64;
    loop {
        match ask(route, Request::Demote).await {
            Ok(_) => return,
            Err(why) => {
                if attempts.is_multiple_of(30) {
                    tracing::warn!(
                        group = route.group,
                        cause = %why,
                        "a damaged replica waits for its group's leader to make it a learner"
                    );
                }
                attempts += 1;
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// The leader's side of `request` from replica `node` of the group `raft` runs: `Err` when this
/// node does not lead the group or the change failed.
pub async fn answer(raft: &PartitionRaft, node: u64, request: Request) -> Result<bool, String> {
    let metrics = raft.metrics().borrow_watched().clone();
    let me = metrics.id;
    if metrics.state != ServerState::Leader || metrics.current_leader != Some(me) {
        return Err(format!("node {me} does not lead the group"));
    }
    let membership = metrics.membership_config.membership();
    let voter = membership.voter_ids().any(|id| id == node);
    match request {
        Request::Demote => {
            if voter {
                raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([node])), true)
                    .await
                    .map_err(|err| err.to_string())?;
                tracing::warn!(
                    node,
                    "a replica found its copy of the partition damaged: a learner until it is \
                     rebuilt"
                );
            }
            raft.trigger()
                .allow_next_revert(&node, true)
                .await
                .map_err(|err| err.to_string())?
                .map_err(|err| err.to_string())?;
            Ok(true)
        }
        Request::Promote => {
            if voter {
                return Ok(true);
            }
            if !membership.learner_ids().any(|id| id == node) {
                return Err(format!("node {node} is not a learner of the group"));
            }
            if !standing(raft, me, node).caught_up() {
                return Ok(false);
            }
            raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node])), false)
                .await
                .map_err(|err| err.to_string())?;
            tracing::info!(node, "a rebuilt replica caught up: a voter again");
            Ok(true)
        }
    }
}

/// Whether the group `raft` runs on node `me` could make it a learner that [`rejoin`] must
/// promote: it starts with an empty log (a rebuilt copy, as any new replica) or as a learner.
pub fn may_rejoin(raft: &PartitionRaft, me: u64) -> bool {
    let watch = raft.metrics();
    let metrics = watch.borrow_watched();
    metrics.last_log_index.is_none()
        || metrics
            .membership_config
            .membership()
            .learner_ids()
            .any(|id| id == me)
}

/// Watches the group `raft` runs on this node for as long as it runs: whenever this node is a
/// learner of it that has applied what a leader sent it since it started, asks the leader to
/// promote it ([`Request::Promote`]), once a [`RETRY`] until the leader does. It never stops at
/// "a voter": a replica rebuilding from an empty log passes through the group's older
/// memberships, which still count it as a voter, before it reaches the one that made it a
/// learner. It looks when the group's metrics change, at most once a [`RETRY`], so an idle
/// group costs nothing.
pub async fn rejoin(raft: PartitionRaft, route: Route) {
    let mut changes = raft.metrics();
    drop(raft);
    // A learner waiting for its promotion; the leader may promote it without being asked (its
    // own step towards the placement, `GroupLog::settle`), and may then hand it the leadership.
    let mut promoting = false;
    loop {
        let (learner, voter, applied) = {
            let metrics = changes.borrow_watched();
            let membership = metrics.membership_config.membership();
            (
                membership.learner_ids().any(|id| id == route.me),
                membership.voter_ids().any(|id| id == route.me),
                metrics.last_applied.is_some(),
            )
        };
        if learner && applied {
            promoting = true;
        } else if promoting && voter {
            promoting = false;
            tracing::info!(group = route.group, "a voter of the group again");
        }
        // Applied: what it has came from a leader after the demotion (it started empty), so
        // the leader's view of its log is current, not the one from before it dropped it.
        let waiting = learner
            && applied
            && match ask(&route, Request::Promote).await {
                Ok(true) => {
                    promoting = false;
                    tracing::info!(group = route.group, "a voter of the group again");
                    false
                }
                Ok(false) => true,
                Err(why) => {
                    tracing::debug!(group = route.group, cause = %why, "promotion");
                    true
                }
            };
        // A learner not yet promoted asks again after a RETRY even if nothing changes here:
        // the leader may only now have seen it catch up.
        if !waiting && changes.changed().await.is_err() {
            return;
        }
        tokio::time::sleep(RETRY).await;
        // The group stopped on this node: its metrics have no sender any more.
        while let Some(seen) = changes.changed().now_or_never() {
            if seen.is_err() {
                return;
            }
        }
    }
}
