//! A partition's raft group: its openraft types ([`PartitionConfig`]), its entries
//! ([`PartitionCommand`], pure data) and its state machine's [`Apply`] ([`PartitionGroup`]).
//!
//! Every replica applies the same committed entries with the single-node writer's own logic
//! (`engine/partition/commit.rs`): `write` runs the idempotent-producer sequence check, assigns
//! offsets and append times (offsets are assigned at apply, they are not raft indexes) and fills
//! the run's batch; `apply` publishes to the partition's readers (high watermark, tail cache)
//! and returns the ack, or the sequence error, as the reply. Offsets come only from the entries
//! applied before, and append times from the leader (carried in the entry), so every replica
//! stores the same batches at the same offsets; producer state is applied everywhere too, so a
//! producer's retry proposed to whichever replica leads next is answered as a duplicate with the
//! original offsets.
//!
//! A trim (retention) carries the leader's cutoff; each replica cuts at the same batch boundary
//! (the batches and their offsets being the same everywhere).
//!
//! **Consumer entries** (a stream subscription's committed offset, a queue subscription's seek)
//! are the engine's own [`PartitionEntry`] values: every replica writes them with
//! [`PartitionEntry::write_to`] and, once written, hands them to the engine's subscriptions
//! ([`ConsumerState`], the code single-node mode runs after its own write), so a consumer
//! resumes from its commit on whichever replica it reconnects to.
//!
//! **Each batch is stored once**, as its raft log entry (`Cf::RaftLog`, `group | index`): at
//! apply only its `Cf::Index` entry is written, carrying that raft location, and reads follow it
//! (`engine/partition/located.rs`). The group's log store purges with [`Purge::KeepRetained`]
//! (`log_store.rs`): entries stay until a trim drops their batches. A trim deletes, in its write
//! batch, the index entries it drops and the raft log entries below the first batch it keeps
//! (those openraft purged already; a later purge deletes the rest), and records that raft index
//! as the group's `RetainedFrom`.
//!
//! **Snapshots** are the partition's small state (with its subscriptions' cursors) plus the
//! log range it names (`partition_snapshot.rs`): built without reading the log, stored small; the batches stream from the
//! store when sent ([`PartitionGroup::snapshot_source`]) and are written as they arrive
//! ([`PartitionGroup::snapshot_sink`]); installing switches to them with plain index entries.
//!
//! **Known gaps** (ADR 5 §3 is the target):
//! - A trim's plan reads the index (and the purged log id) from the store inside `write`, on
//!   the raft task (trims are rare and read index entries only).
//! - Raft log entries that hold no batch (blank, membership, duplicates, refused appends) stay
//!   until a trim passes them.
//! - After a restart, the last append time starts from 0 (as the single-node writer's does), so
//!   a replica that restarted can stamp an earlier time than one that did not if the leader's
//!   clock went backwards.
//! - The ack reports the partition's durability setting; an ack through the group
//!   (`partition_writer/`) means more: a majority of the replicas synced the entry in their
//!   raft log (the log store syncs every append), whatever the setting. Per-durability commit
//!   rules (ADR 5 §3) are not built yet.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use openraft::EntryPayload;
use openraft::type_config::alias::{EntryOf, LogIdOf};
use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::Purge;
use super::keys::{self, GroupId, StateKey};
use super::{decode, encode, read_state};
use crate::engine::batch::{IndexEntry, RaftLocation, StoredBatch};
use crate::engine::commit::{
    self, Append, LogCursor, NewProducers, ProducerState, ProducerStates, Span, Staged, Target,
    log_key, offset_of_log_key, producer_key,
};
use crate::engine::{
    AppendExtra, ConsumerChange, ConsumerState, PartitionEntry, PartitionSettings, PartitionShared,
    QueuePartition, TailBudget, keys as engine_keys,
};
use crate::error::Error;
use crate::storage::{Cf, StorageError, Store, WriteBatch};

use super::Apply;
use super::wire::{SnapshotSink, SnapshotSource};

#[path = "partition_snapshot.rs"]
mod snapshot;

openraft::declare_raft_types!(
    /// The openraft types of a partition's group.
    pub PartitionConfig:
        D = PartitionCommand,
        R = PartitionReply,
);

/// An entry of a partition's group: pure data, fixed by the leader before it is proposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionCommand {
    /// Appends one producer batch.
    Append(AppendCommand),
    /// Drops every batch that ends at or before `before` (retention; the leader's cutoff).
    Trim { before: u64 },
    /// Consumer state of this partition: committed offsets, queue seeks.
    Consumer(Vec<PartitionEntry>),
}

impl PartitionCommand {
    /// Whether only the leader may propose it, never forward it. Queue ack state holds what the
    /// node delivering the partition (its leader) settled: forwarded by a deposed leader, it
    /// would land after the new leader's first entry and replace, on the replicas, what the new
    /// leader settled since. A release of delayed messages (an append that unschedules) was
    /// decided from the node's own schedule: forwarded by a node that no longer leads, or one
    /// that restarted still believing it leads its old term and has not caught up, it would
    /// append again what the leader released meanwhile (the nemesis smoke, seed
    /// 7247198347424984057: one delayed message at offsets 34 and 35).
    pub fn leader_only(&self) -> bool {
        match self {
            PartitionCommand::Consumer(entries) => entries
                .iter()
                .any(|entry| matches!(entry.change, ConsumerChange::QueueState(_))),
            PartitionCommand::Append(append) => append
                .extras
                .iter()
                .any(|extra| matches!(extra, AppendExtra::Unschedule { .. })),
            PartitionCommand::Trim { .. } => false,
        }
    }
}

impl fmt::Display for PartitionCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionCommand::Append(append) => write!(
                f,
                "append {} messages (producer {} sequence {})",
                append.count, append.producer_id, append.base_sequence
            ),
            PartitionCommand::Trim { before } => write!(f, "trim before {before}"),
            PartitionCommand::Consumer(entries) => {
                write!(f, "{} consumer entries", entries.len())
            }
        }
    }
}

/// What an `AppendRequest` carries minus its hooks, plus the leader's append time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendCommand {
    /// The validated, encoded `MessageBatch`; empty when `count` is 0.
    pub payload: Bytes,
    pub count: u32,
    /// Stored-batch header flags.
    pub flags: u8,
    /// 0 when the producer is not idempotent.
    pub producer_id: u64,
    pub base_sequence: u64,
    pub sequence_span: u32,
    /// Indexes of the producer's messages dropped as msg-id duplicates.
    pub deduplicated: Vec<u32>,
    /// Changes committed with the append (msg-id dedup records, delayed messages).
    pub extras: Vec<AppendExtra>,
    pub value_bytes: Option<u64>,
    /// The leader's clock when it proposed the append: every replica stamps from it.
    pub append_time_ms: i64,
}

/// The reply to a partition entry, once applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionReply {
    /// Stored at these offsets; `duplicate` when it was a retry of a stored batch, answered
    /// with the original's offsets.
    Appended {
        base_offset: u64,
        count: u32,
        append_time_ms: i64,
        duplicate: bool,
        deduplicated: Vec<u32>,
    },
    /// Refused by the idempotent-producer sequence check (`OUT_OF_ORDER_SEQUENCE`); nothing was
    /// stored.
    OutOfOrder(String),
    /// Trimmed: the partition's log start now.
    Trimmed { log_start: u64 },
    /// Consumer entries applied, at this raft index (a node that forwarded them waits until
    /// it applied that far too).
    Consumed { index: u64 },
    /// A blank or membership entry.
    Nothing,
}

/// A partition's group state: what its entries are applied to.
pub struct PartitionGroup {
    group: GroupId,
    shared: Arc<PartitionShared>,
    producer_state_ttl_ms: u64,
    cursor: LogCursor,
    /// Every producer's state, all in memory: the replicas' `write` cannot wait on the store.
    producers: HashMap<u64, ProducerState>,
    /// Snapshot transfers being received.
    staging: Arc<snapshot::Staging>,
    /// Where applied consumer entries take effect in memory.
    consumers: Arc<dyn ConsumerState>,
}

/// What the writes of one run carry to the next and to the applies.
pub struct Run {
    cursor: LogCursor,
    log_start: u64,
    /// Producer states this run changed (`None`: expired), over the applied ones.
    producers: HashMap<u64, Option<ProducerState>>,
    /// The batches this run appended, for a trim later in the run, with the raft index of each.
    appended: Vec<(Span, u64)>,
    outcomes: VecDeque<Outcome>,
    /// The epoch of each queue subscription's ack state that this run reset or replaced, over
    /// the stored ones ([`PartitionGroup::stale_queue_state`]).
    queue_epochs: HashMap<String, u64>,
    /// Whether the run's state was made the applied state (at its first apply).
    merged: bool,
}

enum Outcome {
    Append(Staged, Vec<Arc<StoredBatch>>),
    Trim {
        removed: u64,
        cut: u64,
    },
    /// The entries as written (a start resolved).
    Consumer(Vec<PartitionEntry>),
}

/// A run's producer states over the applied ones.
struct Overlay<'a> {
    applied: &'a HashMap<u64, ProducerState>,
    run: &'a mut HashMap<u64, Option<ProducerState>>,
}

impl ProducerStates for Overlay<'_> {
    fn get(&mut self, id: u64) -> Option<&ProducerState> {
        match self.run.get(&id) {
            Some(state) => state.as_ref(),
            None => self.applied.get(&id),
        }
    }

    fn forget(&mut self, id: u64) {
        self.run.insert(id, None);
    }

    fn entry(&mut self, id: u64) -> &mut ProducerState {
        let applied = self.applied;
        self.run
            .entry(id)
            .or_insert_with(|| applied.get(&id).cloned())
            .get_or_insert_with(ProducerState::default)
    }
}

/// What a partition group needs besides its store.
#[derive(Debug, Clone)]
pub struct GroupOptions {
    /// The group's id: its raft log entries are `group | index` in `Cf::RaftLog`.
    pub group: GroupId,
    pub settings: PartitionSettings,
    pub tail_budget: Arc<TailBudget>,
    pub tenant_storage: Arc<AtomicU64>,
    pub producer_state_ttl_ms: u64,
    pub consumers: Arc<dyn ConsumerState>,
}

impl PartitionGroup {
    /// The group state of partition `partition` of topic `topic_id`, recovered from `store`:
    /// the log as applied so far and every producer's state. Blocks.
    pub fn open(
        store: Arc<dyn Store>,
        topic_id: u32,
        partition: u32,
        options: GroupOptions,
    ) -> Result<PartitionGroup, Error> {
        let shared = PartitionShared::open(
            topic_id,
            partition,
            store,
            true,
            options.tail_budget,
            options.tenant_storage,
            options.settings,
        )?;
        PartitionGroup::with_shared(
            options.group,
            shared,
            options.producer_state_ttl_ms,
            options.consumers,
        )
    }

    /// The group state over `shared`, a partition opened from its store (the engine's, in a
    /// broker process), with every producer's state recovered; its consumer entries take
    /// effect in `consumers`. Blocks.
    pub fn with_shared(
        group: GroupId,
        shared: Arc<PartitionShared>,
        producer_state_ttl_ms: u64,
        consumers: Arc<dyn ConsumerState>,
    ) -> Result<PartitionGroup, Error> {
        let (from, to) = producer_range(shared.topic_id, shared.index);
        let mut producers = HashMap::new();
        for (key, value) in shared.store().scan(Cf::Producers, &from, &to, usize::MAX)? {
            if let (Some(id), Some(state)) =
                (offset_of_log_key(&key), ProducerState::decode(&value))
            {
                producers.insert(id, state);
            }
        }
        Ok(PartitionGroup {
            group,
            cursor: LogCursor {
                next_offset: shared.high_watermark(),
                last_append_time_ms: shared.last_append_time_ms()?,
            },
            staging: Arc::new(snapshot::Staging::open(Arc::clone(&shared), group)?),
            shared,
            producer_state_ttl_ms,
            producers,
            consumers,
        })
    }

    /// The partition as its readers see it.
    pub fn shared(&self) -> &Arc<PartitionShared> {
        &self.shared
    }

    /// Where this group's network reads the batches of a snapshot it sends
    /// ([`GroupNetwork::with_snapshot_source`](super::GroupNetwork::with_snapshot_source)).
    pub fn snapshot_source(&self) -> Arc<dyn SnapshotSource> {
        Arc::new(snapshot::Source {
            shared: Arc::clone(&self.shared),
        })
    }

    /// Where the node's `Cluster` service writes the batches of a snapshot this replica
    /// receives ([`Groups::insert_snapshot_sink`](super::Groups::insert_snapshot_sink)).
    pub fn snapshot_sink(&self) -> Arc<dyn SnapshotSink> {
        Arc::clone(&self.staging) as Arc<dyn SnapshotSink>
    }

    /// What the group applies into: the partition's readers' state and the subscriptions', for
    /// answering `Cluster.ReadView` ([`PartitionHandle`](super::PartitionHandle)).
    pub fn applied_into(&self) -> (Arc<PartitionShared>, Arc<dyn ConsumerState>) {
        (Arc::clone(&self.shared), Arc::clone(&self.consumers))
    }

    fn target(&self) -> Target {
        Target {
            topic_id: self.shared.topic_id,
            partition: self.shared.index,
            durability: self.shared.ack(),
            producer_state_ttl_ms: self.producer_state_ttl_ms,
            new_producers: NewProducers::FromZero,
        }
    }

    /// Whether a queue ack state of epoch `epoch` (`entry`'s) is older than the subscription's
    /// current one: the leader encoded it before a seek (or a new subscription's start) that
    /// this group applied first. The leader's interval flush and a seek through any node meet
    /// only here, so each replica decides it alike, from the entries before it: the run's, else
    /// the stored state. Skipped, it would put back acks the seek cleared, on every follower
    /// and on disk; the leader, which holds the seek's state, persists it with its next flush.
    fn stale_queue_state(
        &self,
        run: &Run,
        entry: &PartitionEntry,
        epoch: u64,
    ) -> Result<bool, StorageError> {
        let current = match run.queue_epochs.get(&entry.subscription) {
            Some(&current) => current,
            None => {
                let key =
                    engine_keys::cursor_key(entry.topic_id, &entry.subscription, entry.partition);
                let stored = self.shared.store().get(Cf::Acks, &key)?;
                stored
                    .and_then(|state| QueuePartition::encoded_epoch(&state))
                    .unwrap_or(0)
            }
        };
        Ok(epoch < current)
    }

    /// Makes the run's log state the applied one, once, at the run's first apply.
    fn merge(&mut self, run: &mut Run) {
        if run.merged {
            return;
        }
        run.merged = true;
        self.cursor = run.cursor;
        for (id, state) in run.producers.drain() {
            match state {
                Some(state) => self.producers.insert(id, state),
                None => self.producers.remove(&id),
            };
        }
    }
}

/// The `Cf::Producers` key range of a partition.
fn producer_range(topic_id: u32, partition: u32) -> (Vec<u8>, Vec<u8>) {
    (
        producer_key(topic_id, partition, 0),
        producer_key(topic_id, partition, u64::MAX),
    )
}

/// The append a raft log entry of a partition group holds (`None`: a trim, a blank or a
/// membership entry): where a replicated partition's reads find a batch's payload.
pub fn entry_append(entry: &[u8]) -> Result<Option<AppendCommand>, Error> {
    let entry: EntryOf<PartitionConfig> =
        decode(entry).map_err(|err| Error::internal(err.to_string()))?;
    Ok(match entry.payload {
        EntryPayload::Normal(PartitionCommand::Append(append)) => Some(append),
        _ => None,
    })
}

impl PartitionGroup {
    /// Puts the deletion of the raft log entries below the first batch still retained after a
    /// trim to `cut` (the trim at raft index `trim_index`) in `batch`, and records that index
    /// as the group's `RetainedFrom`. Only entries openraft purged already go now; a later purge
    /// deletes the rest (`log_store.rs`). Reads the store (trims are rare).
    fn trim_raft_log(
        &self,
        run: &Run,
        cut: u64,
        trim_index: u64,
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        let store = self.shared.store();
        let first_retained = match run.appended.iter().find(|(s, _)| s.base_offset == cut) {
            Some((_, index)) => Some(*index),
            None => {
                let key = log_key(self.shared.topic_id, self.shared.index, cut);
                match store.get(Cf::Index, &key)? {
                    Some(value) => match IndexEntry::decode(&value).map_err(storage)?.raft {
                        Some(raft) => Some(raft.index),
                        // Written by a snapshot install: no raft entry below the install's
                        // holds a retained batch, and `RetainedFrom` says so already.
                        None => return Ok(()),
                    },
                    None => None,
                }
            }
        };
        // No batch left: everything up to the trim itself is done with.
        let retained_from = first_retained.unwrap_or(trim_index + 1);
        let purged: Option<LogIdOf<PartitionConfig>> =
            read_state(&**store, self.group, StateKey::LastPurged)?;
        let to = purged.map_or(0, |purged| (purged.index + 1).min(retained_from));
        let (from, to) = keys::entry_range(self.group, 0, Some(to));
        batch.delete_range(Cf::RaftLog, from, to);
        batch.put(
            Cf::RaftState,
            keys::state(self.group, StateKey::RetainedFrom).to_vec(),
            encode(&retained_from)?,
        );
        Ok(())
    }
}

fn storage(err: Error) -> StorageError {
    StorageError(err.to_string())
}

impl Apply<PartitionConfig> for PartitionGroup {
    type Staged = Run;

    fn stage(&self) -> Run {
        Run {
            cursor: self.cursor,
            log_start: self.shared.log_start(),
            producers: HashMap::new(),
            appended: Vec::new(),
            outcomes: VecDeque::new(),
            queue_epochs: HashMap::new(),
            merged: false,
        }
    }

    async fn write(
        &self,
        run: &mut Run,
        log_id: &LogIdOf<PartitionConfig>,
        data: &PartitionCommand,
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        match data {
            PartitionCommand::Append(append) => {
                let mut stored = Vec::with_capacity(1);
                let mut producers = Overlay {
                    applied: &self.producers,
                    run: &mut run.producers,
                };
                let staged = commit::stage_append(
                    &self.target(),
                    &mut run.cursor,
                    &mut producers,
                    Append {
                        payload: &append.payload,
                        count: append.count,
                        flags: append.flags,
                        producer_id: append.producer_id,
                        base_sequence: append.base_sequence,
                        sequence_span: append.sequence_span,
                        deduplicated: append.deduplicated.clone(),
                        extras: &append.extras,
                        value_bytes: append.value_bytes,
                        raft: Some(RaftLocation {
                            group: self.group,
                            index: log_id.index,
                        }),
                    },
                    append.append_time_ms,
                    batch,
                    &mut stored,
                );
                let span = |b: &Arc<StoredBatch>| Span {
                    base_offset: b.base_offset,
                    count: b.count,
                    stored_len: b.stored_len() as u32,
                };
                run.appended
                    .extend(stored.iter().map(|b| (span(b), log_id.index)));
                run.outcomes.push_back(Outcome::Append(staged, stored));
            }
            PartitionCommand::Trim { before } => {
                let before = (*before).min(run.cursor.next_offset);
                let (removed, cut) = if before <= run.log_start {
                    (0, run.log_start)
                } else {
                    let pending: Vec<Span> = run.appended.iter().map(|(span, _)| *span).collect();
                    let planned = self
                        .shared
                        .plan_trim(
                            run.log_start,
                            before,
                            run.cursor.next_offset,
                            &pending,
                            batch,
                        )
                        .map_err(storage)?;
                    if planned.1 > run.log_start {
                        self.trim_raft_log(run, planned.1, log_id.index, batch)?;
                    }
                    planned
                };
                run.log_start = run.log_start.max(cut);
                run.outcomes.push_back(Outcome::Trim { removed, cut });
            }
            PartitionCommand::Consumer(entries) => {
                let mut written = Vec::with_capacity(entries.len());
                for entry in entries {
                    // A new subscription's start is fixed here, against the log as of this
                    // entry; a queue's start or seek gets this entry's index as its epoch.
                    let entry = entry.resolved(run.log_start, run.cursor.next_offset, log_id.index);
                    match &entry.change {
                        ConsumerChange::ResetQueue { epoch, .. } => {
                            run.queue_epochs.insert(entry.subscription.clone(), *epoch);
                        }
                        ConsumerChange::QueueState(state) => {
                            let epoch = QueuePartition::encoded_epoch(state).unwrap_or(0);
                            if self.stale_queue_state(run, &entry, epoch)? {
                                tracing::debug!(group = self.group, subscription = %entry.subscription, epoch, "skipped queue ack state encoded before a seek that applied first");
                                continue;
                            }
                            run.queue_epochs.insert(entry.subscription.clone(), epoch);
                        }
                        _ => {}
                    }
                    entry.write_to(batch);
                    written.push(entry);
                }
                run.outcomes.push_back(Outcome::Consumer(written));
            }
        }
        Ok(())
    }

    async fn apply(
        &mut self,
        run: &mut Run,
        log_id: &LogIdOf<PartitionConfig>,
        _data: PartitionCommand,
    ) -> PartitionReply {
        self.merge(run);
        match run.outcomes.pop_front() {
            Some(Outcome::Append(Staged::Appended(ack), stored)) => {
                let added = commit::stored_bytes(&stored);
                let end = ack.base_offset + u64::from(ack.count);
                if end > self.shared.high_watermark() {
                    self.shared.publish(stored, added, end);
                }
                appended(ack)
            }
            Some(Outcome::Append(Staged::Duplicate(ack), _)) => appended(ack),
            Some(Outcome::Append(Staged::Refused(err), _)) => {
                PartitionReply::OutOfOrder(err.to_string())
            }
            Some(Outcome::Trim { removed, cut }) => {
                self.shared.trimmed(removed, cut);
                PartitionReply::Trimmed {
                    log_start: self.shared.log_start(),
                }
            }
            Some(Outcome::Consumer(entries)) => {
                for entry in &entries {
                    self.consumers.applied(entry);
                }
                PartitionReply::Consumed {
                    index: log_id.index,
                }
            }
            None => PartitionReply::Nothing,
        }
    }

    fn no_payload(&mut self, _log_id: &LogIdOf<PartitionConfig>) -> PartitionReply {
        PartitionReply::Nothing
    }

    fn snapshot(&self) -> Result<Vec<u8>, StorageError> {
        snapshot::build(&self.shared, self.cursor, &self.producers)
    }

    fn write_restore(&self, snapshot: &[u8], batch: &mut WriteBatch) -> Result<(), StorageError> {
        snapshot::write_restore(&self.shared, &self.staging, snapshot, batch)
    }

    async fn restore(&mut self, snapshot: &[u8]) -> Result<(), StorageError> {
        let restored = snapshot::restore(&self.shared, &self.staging, snapshot)?;
        self.cursor = restored.cursor;
        self.producers = restored.producers;
        for entry in &restored.consumers {
            self.consumers.applied(entry);
        }
        Ok(())
    }
}

fn appended(ack: crate::engine::AppendAck) -> PartitionReply {
    PartitionReply::Appended {
        base_offset: ack.base_offset,
        count: ack.count,
        append_time_ms: ack.append_time_ms,
        duplicate: ack.duplicate,
        deduplicated: ack.deduplicated,
    }
}

#[cfg(test)]
#[path = "partition_group_tests.rs"]
mod tests;
