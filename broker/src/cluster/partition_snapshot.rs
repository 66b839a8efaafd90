//! A partition group's snapshot: its small state (producers, next offset = the applied point,
//! last append time, log start, every subscription's committed offset and queue ack state, the
//! delayed messages not released yet) plus a *range* of its log, `[log start, next offset)`, whose batches are read from the store only while the
//! snapshot is sent.
//!
//! **Building** one captures that state on the state machine's task: the log state from
//! memory, the cursors from the store (one short scan of the topic's cursors, which hold what
//! the group applied so far), the pending delayed messages from the store's schedule (which is
//! keyed by due time first, so this reads all of it, every node's partitions); no batch of the
//! log is read, and what `raft_state` stores is this record ([`Head`], a few bytes per producer
//! and subscription, plus the pending delayed messages whole), never a copy of the log.
//! Batches are immutable once applied, so the sender reads
//! them later, when it streams ([`Source`]): chunk by chunk, through the index
//! (`engine/partition/located.rs`), in bounded memory, while applies go on.
//!
//! **Trims racing a send.** A batch a trim removed since the snapshot was built is simply not
//! sent (trims cut a prefix, so everything before it is gone too). The receiver keeps the last
//! contiguous run of batches that ends at the snapshot's next offset: its log start is the first
//! batch of that run, the snapshot's or later. That is safe: the later cut comes from a trim
//! that is a later entry of the log, which the receiver applies anyway after the install (a
//! no-op then, its log start being there already), and retention allows cutting earlier than
//! asked. For the same reason the leader need not keep raft log entries for a snapshot in
//! flight: the purge keeps every entry holding a retained batch (`Purge::KeepRetained`), and
//! only trims delete them, which the rule above absorbs.
//!
//! **Receiving** ([`Staging`]): each chunk's batches are written to `Cf::Log` at their offsets
//! as they arrive (contents at a committed offset are the same on every replica, so a batch the
//! replica already holds is overwritten with itself); only their index entries are kept in
//! memory (a few bytes per batch). Installing switches the partition in one write batch: index
//! entries, producers, cursors, the schedule (the partition's entries replaced by the
//! snapshot's: a delayed message the group released while this replica was away is not
//! released again here), watermark (with the applied log id, `state_machine.rs`), and deletes
//! every `Cf::Log` value outside the snapshot's run. The batches go in with plain index entries,
//! the single-node way: the leader's raft indexes mean nothing in this replica's raft log.
//! An abandoned transfer (a chunk gap, a transfer that starts anew, an install openraft
//! refused) deletes the values it staged, except those the replica's index still serves from
//! `Cf::Log`: the replica keeps serving its old state throughout. The staged range is recorded
//! in `raft_state` with each chunk ([`StateKey::SnapshotStaging`]), so what a crash abandoned
//! is deleted the same way when the group opens again.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::keys::{self, GroupId, StateKey};
use super::{decode, encode, read_state};
use crate::cluster::wire::{SnapshotSink, SnapshotSource};
use crate::engine::batch::{self, IndexEntry};
use crate::engine::commit::{LogCursor, ProducerState, log_key, producer_key, watermark_key};
use crate::engine::{
    ConsumerChange, PartitionEntry, PartitionShared, decode_offset, keys as engine_keys,
    partition_schedule,
};
use crate::storage::{Cf, StorageError, WriteBatch};

/// How many index entries one scan of a send reads.
const INDEX_CHUNK: usize = 1024;

/// A partition snapshot as stored and installed: the state, and the log range it names.
#[derive(Debug, Serialize, Deserialize)]
struct Head {
    next_offset: u64,
    last_append_time_ms: i64,
    log_start: u64,
    /// `(producer id, ProducerState::encode)`.
    producers: Vec<(u64, Vec<u8>)>,
    /// `(subscription, committed offset)` of every subscription with a cursor on the partition.
    cursors: Vec<(String, u64)>,
    /// `(subscription, QueuePartition::encode)` of every queue subscription with ack state on
    /// the partition, as the leader last proposed it.
    acks: Vec<(String, Vec<u8>)>,
    /// `(schedule key, batch)` of every delayed message of the partition not released yet: a
    /// replica rebuilt from the snapshot releases these when it leads, and none the group
    /// released already.
    schedule: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Head {
    /// The cursors and queue ack states as the entries that set them.
    fn cursor_entries(&self, shared: &PartitionShared) -> Vec<PartitionEntry> {
        let commits = self
            .cursors
            .iter()
            .map(|(name, offset)| (name, ConsumerChange::Commit(*offset)));
        let acks = self.acks.iter().map(|(name, state)| {
            let state = Bytes::copy_from_slice(state);
            (name, ConsumerChange::QueueState(state))
        });
        commits
            .chain(acks)
            .map(|(name, change)| PartitionEntry::new(shared.topic_id, shared.index, name, change))
            .collect()
    }
}

/// The state a restored snapshot gives the group.
pub(super) struct Restored {
    pub cursor: LogCursor,
    pub producers: HashMap<u64, ProducerState>,
    /// The subscriptions' cursors, written: their in-memory effects are the caller's.
    pub consumers: Vec<PartitionEntry>,
}

/// The committed offset of every subscription on `shared`'s partition, by name, from the
/// store.
fn cursors(shared: &PartitionShared) -> Result<Vec<(String, u64)>, StorageError> {
    Ok(subscription_values(shared, Cf::Cursors)?
        .into_iter()
        .filter_map(|(name, value)| Some((name, decode_offset(&value)?)))
        .collect())
}

/// What `cf` holds for each subscription on `shared`'s partition, by name: one scan of the
/// topic's keys there (a key per subscription and partition, `keys::cursor_key`).
fn subscription_values(
    shared: &PartitionShared,
    cf: Cf,
) -> Result<Vec<(String, Bytes)>, StorageError> {
    let topic = shared.topic_id;
    let from = engine_keys::topic_start(topic);
    let to = engine_keys::topic_end(topic);
    let scanned = shared.store().scan(cf, &from, &to, usize::MAX)?;
    Ok(scanned
        .into_iter()
        .filter_map(|(key, value)| {
            let (name, partition) = engine_keys::parse_cursor_key(&key)?;
            (partition == shared.index).then(|| (name.to_string(), value))
        })
        .collect())
}

/// Encodes the partition's snapshot: `cursor` and `producers` as applied, the log start now,
/// the subscriptions' cursors and queue ack states and the pending delayed messages as stored.
/// Reads no batch of the log.
pub(super) fn build(
    shared: &PartitionShared,
    cursor: LogCursor,
    producers: &HashMap<u64, ProducerState>,
) -> Result<Vec<u8>, StorageError> {
    let mut producers: Vec<(u64, Vec<u8>)> = producers
        .iter()
        .map(|(id, state)| (*id, state.encode().to_vec()))
        .collect();
    producers.sort_unstable_by_key(|(id, _)| *id);
    encode(&Head {
        next_offset: cursor.next_offset,
        last_append_time_ms: cursor.last_append_time_ms,
        log_start: shared.log_start(),
        producers,
        cursors: cursors(shared)?,
        acks: subscription_values(shared, Cf::Acks)?
            .into_iter()
            .map(|(name, state)| (name, state.to_vec()))
            .collect(),
        schedule: partition_schedule(shared.store().as_ref(), shared.topic_id, shared.index)?
            .into_iter()
            .map(|(key, batch)| (key, batch.to_vec()))
            .collect(),
    })
}

/// Reads a snapshot's batches from the partition's store, for the sender.
pub struct Source {
    pub(super) shared: Arc<PartitionShared>,
}

impl SnapshotSource for Source {
    fn read(
        &self,
        snapshot: &[u8],
        from: Option<u64>,
        max_bytes: usize,
    ) -> Result<(Vec<u8>, Option<u64>), String> {
        let head: Head = decode(snapshot).map_err(|err| err.to_string())?;
        let mut cursor = from.unwrap_or(head.log_start);
        let mut out = Vec::new();
        while cursor < head.next_offset {
            let entries = self
                .shared
                .scan_index(cursor, INDEX_CHUNK)
                .map_err(|err| err.to_string())?;
            if entries.is_empty() {
                break;
            }
            for (base, entry) in entries {
                if base >= head.next_offset {
                    return Ok((out, None));
                }
                cursor = base + u64::from(entry.count);
                // Gone: a trim removed it since the index was read.
                let Some(value) = self
                    .shared
                    .stored_value(base, &entry)
                    .map_err(|err| err.to_string())?
                else {
                    continue;
                };
                out = postcard::to_extend(&(base, &value[..]), out)
                    .map_err(|err| format!("encode snapshot batch: {err}"))?;
                if out.len() >= max_bytes {
                    return Ok((out, Some(cursor)));
                }
            }
        }
        Ok((out, None))
    }
}

/// A snapshot transfer being received: its batches are in `Cf::Log` already.
#[derive(Default)]
struct Transfer {
    id: u64,
    next_chunk: u64,
    /// `(base offset, plain index entry)` of every batch staged, in offset order.
    staged: Vec<(u64, IndexEntry)>,
    /// The offsets `[from, to)` staged, as recorded in `raft_state`.
    range: Option<(u64, u64)>,
    /// Its last chunk came: it waits for the install.
    sealed: bool,
}

/// Receives a partition's snapshot transfers into its store; see the module doc.
pub struct Staging {
    shared: Arc<PartitionShared>,
    /// The `raft_state` key of the staged range ([`StateKey::SnapshotStaging`]).
    record: Vec<u8>,
    transfer: Mutex<Option<Transfer>>,
    /// What an install wrote, for its second phase: `(log start, bytes)`.
    installed: Mutex<Option<(u64, u64)>>,
}

impl Staging {
    /// The staging of `shared`'s group `group`, after cleaning up what a transfer that a crash
    /// abandoned staged. Blocks.
    pub(super) fn open(
        shared: Arc<PartitionShared>,
        group: GroupId,
    ) -> Result<Staging, StorageError> {
        let staging = Staging {
            record: keys::state(group, StateKey::SnapshotStaging).to_vec(),
            shared,
            transfer: Mutex::new(None),
            installed: Mutex::new(None),
        };
        let store = staging.shared.store();
        if let Some(range) = read_state::<(u64, u64)>(&**store, group, StateKey::SnapshotStaging)? {
            let mut batch = WriteBatch::new();
            staging.put_clean(range, &mut batch)?;
            store.write(batch, false)?;
        }
        Ok(staging)
    }

    /// Puts the deletion of the `Cf::Log` values in `[from, to)` in `batch`, except those the
    /// partition's index serves from `Cf::Log` (the same bytes, written by an earlier install),
    /// and of the staged range's record. Reads the index only.
    fn put_clean(
        &self,
        (from, to): (u64, u64),
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        let (t, p) = (self.shared.topic_id, self.shared.index);
        let store = self.shared.store();
        let index = store.scan(
            Cf::Index,
            &log_key(t, p, from),
            &log_key(t, p, to),
            usize::MAX,
        )?;
        let mut gap_from = log_key(t, p, from);
        for (key, value) in index {
            let entry = IndexEntry::decode(&value).map_err(|err| StorageError(err.to_string()))?;
            if entry.raft.is_none() {
                batch.delete_range(Cf::Log, gap_from, key.clone());
                // Just past this key: the next offset's key.
                gap_from = key;
                gap_from.push(0);
            }
        }
        batch.delete_range(Cf::Log, gap_from, log_key(t, p, to));
        batch.delete(Cf::RaftState, self.record.clone());
        Ok(())
    }

    /// Deletes what `transfer` staged (see [`Staging::put_clean`]).
    fn clean(&self, transfer: Transfer) -> Result<(), String> {
        let Some(range) = transfer.range else {
            return Ok(());
        };
        let mut batch = WriteBatch::new();
        self.put_clean(range, &mut batch)
            .and_then(|()| self.shared.store().write(batch, false))
            .map_err(|err| err.to_string())
    }

    /// The sealed transfer's staged batches, taken for an install.
    fn take_sealed(&self) -> Result<Vec<(u64, IndexEntry)>, StorageError> {
        let mut current = self.transfer.lock();
        match current.take() {
            Some(transfer) if transfer.sealed => Ok(transfer.staged),
            other => {
                *current = other;
                Err(StorageError(
                    "no snapshot transfer was received for this install".into(),
                ))
            }
        }
    }
}

impl SnapshotSink for Staging {
    fn stage(&self, transfer: u64, chunk: u64, data: &[u8]) -> Result<(), String> {
        let mut current = self.transfer.lock();
        // A first chunk starts anew, whatever was staged (another leader's transfer, say).
        if chunk == 0 || current.as_ref().is_none_or(|t| t.id != transfer) {
            if chunk != 0 {
                return Err(format!("snapshot chunk {chunk} of an unknown transfer"));
            }
            if let Some(old) = current.take() {
                self.clean(old)?;
            }
            *current = Some(Transfer {
                id: transfer,
                ..Transfer::default()
            });
        }
        let Some(staging) = current.as_mut() else {
            return Err("no transfer".into());
        };
        if chunk != staging.next_chunk || staging.sealed {
            let expected = staging.next_chunk;
            if let Some(old) = current.take() {
                self.clean(old)?;
            }
            return Err(format!(
                "snapshot chunk {chunk} of transfer {transfer} where {expected} was due: abandoned"
            ));
        }
        let (t, p) = (self.shared.topic_id, self.shared.index);
        let dedup = DedupRebuild {
            topic_id: t,
            window_ms: self.shared.dedup_window_ms(),
            now_ms: crate::clock::system().now_ms(),
        };
        let mut batch = WriteBatch::new();
        let mut rest = data;
        let mut staged = Vec::new();
        while !rest.is_empty() {
            let ((base, value), tail): ((u64, &[u8]), &[u8]) = postcard::take_from_bytes(rest)
                .map_err(|err| format!("decode snapshot batch: {err}"))?;
            rest = tail;
            let value = Bytes::copy_from_slice(value);
            let stored = batch::decode_stored(value.clone()).map_err(|err| err.to_string())?;
            dedup.put_records(&stored, &mut batch);
            let entry = IndexEntry {
                count: stored.count,
                append_time_ms: stored.append_time_ms,
                stored_len: value.len() as u32,
                raft: None,
            };
            staged.push((base, entry));
            batch.put(Cf::Log, log_key(t, p, base), value);
        }
        // Recorded before the write, so a failed write's values are cleaned too; on disk with
        // them, so a crash's are cleaned when the group opens again.
        if let (Some(first), Some(last)) = (staged.first(), staged.last()) {
            let end = last.0 + u64::from(last.1.count);
            let range = staging.range.map_or((first.0, end), |(from, to)| {
                (from.min(first.0), to.max(end))
            });
            staging.range = Some(range);
            let record = encode(&range).map_err(|err| err.to_string())?;
            batch.put(Cf::RaftState, self.record.clone(), record);
        }
        staging.staged.extend(staged);
        staging.next_chunk += 1;
        self.shared
            .store()
            .write(batch, false)
            .map_err(|err| err.to_string())
    }

    fn seal(&self, transfer: u64) -> Result<(), String> {
        let mut current = self.transfer.lock();
        match current.as_mut() {
            Some(staging) if staging.id == transfer => staging.sealed = true,
            _ => {
                // No batch came (an empty range, or all trimmed meanwhile).
                if let Some(old) = current.take() {
                    self.clean(old)?;
                }
                *current = Some(Transfer {
                    id: transfer,
                    sealed: true,
                    ..Transfer::default()
                });
            }
        }
        Ok(())
    }

    fn abandon(&self, transfer: u64) -> Result<(), String> {
        let mut current = self.transfer.lock();
        if current.as_ref().is_some_and(|t| t.id == transfer)
            && let Some(old) = current.take()
        {
            self.clean(old)?;
        }
        Ok(())
    }
}

/// The first offset of the last contiguous run of `staged` batches that ends at `end` (`end`
/// when there is none), and the bytes of that run.
/// Recreates the `msg-id` dedup records of a snapshot's batches. Each replica writes them when it
/// applies an append (`AppendExtra::Dedup`), but a replica that receives the batch in a snapshot
/// never applies that entry: without them, made the leader, it would store a retry of an id the
/// group accepted while it was away. A record expires a dedup window after the batch's append
/// time (about when the publish was checked: the append is stamped a moment later); batches
/// whose window passed, by this node's clock, get none. Records are per topic, and true
/// whether or not the install follows, so an abandoned transfer leaves them.
struct DedupRebuild {
    topic_id: u32,
    /// The topic's dedup window now (0: off).
    window_ms: u64,
    now_ms: i64,
}

impl DedupRebuild {
    /// Puts the dedup records of `stored`'s messages in `batch`. A batch whose messages do not
    /// decode (never one the group committed) gets none: the replica still takes its data.
    fn put_records(&self, stored: &batch::StoredBatch, batch: &mut WriteBatch) {
        let window = i64::try_from(self.window_ms).unwrap_or(i64::MAX);
        let expires_ms = stored.append_time_ms.saturating_add(window);
        // Only batches with a msg-id (or traceparent) header are flagged traced.
        if window == 0 || stored.flags & batch::FLAG_TRACED == 0 || expires_ms <= self.now_ms {
            return;
        }
        let messages = match rapidmq_proto::batch::decode(stored.payload.clone()) {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!(topic_id = self.topic_id, base_offset = stored.base_offset, cause = %err, "a snapshot batch's messages do not decode; no dedup records for it");
                return;
            }
        };
        let expiry = Bytes::copy_from_slice(&expires_ms.to_be_bytes());
        for message in &messages.messages {
            // The first msg-id header counts, as when the batch was published.
            if let Some(id) = message
                .headers
                .iter()
                .find(|h| h.key == batch::MSG_ID_HEADER)
            {
                let key = engine_keys::dedup_key(self.topic_id, &id.value);
                batch.put(Cf::Dedup, key, expiry.clone());
            }
        }
    }
}

fn last_run(staged: &[(u64, IndexEntry)], end: u64) -> (u64, u64) {
    let (mut start, mut bytes) = (end, 0u64);
    for (base, entry) in staged.iter().rev() {
        if base + u64::from(entry.count) != start {
            break;
        }
        start = *base;
        bytes += u64::from(entry.stored_len);
    }
    (start, bytes)
}

/// Puts the disk changes that replace the partition with `snapshot`'s in `batch`: producers,
/// the index entries of the staged batches it keeps (those held before deleted), the deletion
/// of every `Cf::Log` value outside them, the subscriptions' cursors and queue ack states (a
/// subscription the snapshot does not name keeps its own), the partition's schedule, the
/// watermark record.
pub(super) fn write_restore(
    shared: &PartitionShared,
    staging: &Staging,
    snapshot: &[u8],
    batch: &mut WriteBatch,
) -> Result<(), StorageError> {
    let head: Head = decode(snapshot)?;
    let staged = staging.take_sealed()?;
    let (start, bytes) = last_run(&staged, head.next_offset);
    let (t, p) = (shared.topic_id, shared.index);
    let (from, to) = (producer_key(t, p, 0), producer_key(t, p, u64::MAX));
    batch.delete_range(Cf::Producers, from, to);
    for (id, state) in &head.producers {
        let state = Bytes::copy_from_slice(state);
        batch.put(Cf::Producers, producer_key(t, p, *id), state);
    }
    let (lower, upper) = (log_key(t, p, 0), log_key(t, p, u64::MAX));
    batch.delete_range(Cf::Index, lower.clone(), upper.clone());
    batch.delete_range(Cf::Log, lower, log_key(t, p, start));
    batch.delete_range(Cf::Log, log_key(t, p, head.next_offset), upper);
    for (base, entry) in staged.into_iter().filter(|(base, _)| *base >= start) {
        batch.put(Cf::Index, log_key(t, p, base), entry.encode());
    }
    for entry in head.cursor_entries(shared) {
        entry.write_to(batch);
    }
    // The schedule becomes the snapshot's: released entries go, pending ones come.
    for (key, _) in partition_schedule(shared.store().as_ref(), t, p)? {
        batch.delete(Cf::Schedule, key);
    }
    for (key, value) in &head.schedule {
        batch.put(Cf::Schedule, key.clone(), Bytes::copy_from_slice(value));
    }
    batch.put(
        Cf::Meta,
        watermark_key(t, p),
        Bytes::copy_from_slice(&head.next_offset.to_be_bytes()),
    );
    batch.delete(Cf::RaftState, staging.record.clone());
    *staging.installed.lock() = Some((start, bytes));
    Ok(())
}

/// Makes an installed `snapshot` what readers see, and returns the group's state from it.
pub(super) fn restore(
    shared: &PartitionShared,
    staging: &Staging,
    snapshot: &[u8],
) -> Result<Restored, StorageError> {
    let head: Head = decode(snapshot)?;
    let (log_start, bytes) = staging
        .installed
        .lock()
        .take()
        .ok_or_else(|| StorageError("restore without a written install".into()))?;
    shared.restored(log_start, head.next_offset, bytes);
    let consumers = head.cursor_entries(shared);
    Ok(Restored {
        consumers,
        cursor: LogCursor {
            next_offset: head.next_offset,
            last_append_time_ms: head.last_append_time_ms,
        },
        producers: head
            .producers
            .into_iter()
            .filter_map(|(id, state)| Some((id, ProducerState::decode(&state)?)))
            .collect(),
    })
}
