//! A partition group's snapshot: its state (producers, next offset, last append time, log
//! start) and every batch it retains, from the log start on, as a single-node partition stores
//! it in `Cf::Log` (header and payload).
//!
//! Layout (postcard): a [`Head`], then `Head::batches` records `(base offset, stored value)`.
//! Built straight into one buffer, batch by batch, and read back record by record, borrowing
//! from the snapshot, so no second copy of the batches is held while either happens.
//!
//! **Installing** replaces everything the replica held for the partition: its producers, its
//! index, its batches. The batches go to `Cf::Log` with plain index entries, the single-node
//! way: the leader's raft indexes mean nothing in this replica's raft log, which the snapshot
//! replaces (openraft purges it after the install), so there is no raft log entry the index
//! could point at. Batches appended after the install live in the raft log again, and reads
//! follow each index entry to wherever its batch is (`engine/partition/located.rs`).

use std::collections::HashMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::encode;
use crate::engine::PartitionShared;
use crate::engine::batch::{self, IndexEntry};
use crate::engine::commit::{LogCursor, ProducerState, log_key, producer_key, watermark_key};
use crate::error::Error;
use crate::storage::{Cf, StorageError, WriteBatch};

/// How many index entries one scan of a snapshot build reads.
const INDEX_CHUNK: usize = 4096;

/// What a snapshot holds before its batches.
#[derive(Debug, Serialize, Deserialize)]
struct Head {
    next_offset: u64,
    last_append_time_ms: i64,
    log_start: u64,
    /// `(producer id, ProducerState::encode)`.
    producers: Vec<(u64, Vec<u8>)>,
    /// How many `(base offset, stored value)` records follow.
    batches: u64,
}

/// The state a restored snapshot gives the group.
pub(super) struct Restored {
    pub cursor: LogCursor,
    pub producers: HashMap<u64, ProducerState>,
}

fn storage(err: Error) -> StorageError {
    StorageError(err.to_string())
}

/// Encodes the partition's snapshot: `cursor` and `producers` as applied, the batches from the
/// store. Blocks on the store.
pub(super) fn build(
    shared: &PartitionShared,
    cursor: LogCursor,
    producers: &HashMap<u64, ProducerState>,
) -> Result<Vec<u8>, StorageError> {
    let log_start = shared.log_start();
    let mut entries = Vec::new();
    let mut from = log_start;
    'scan: loop {
        let chunk = shared.scan_index(from, INDEX_CHUNK).map_err(storage)?;
        if chunk.is_empty() {
            break;
        }
        for (base, entry) in chunk {
            if base >= cursor.next_offset {
                break 'scan;
            }
            from = base + u64::from(entry.count);
            entries.push((base, entry));
        }
    }
    let mut producers: Vec<(u64, Vec<u8>)> = producers
        .iter()
        .map(|(id, state)| (*id, state.encode().to_vec()))
        .collect();
    producers.sort_unstable_by_key(|(id, _)| *id);
    let mut out = encode(&Head {
        next_offset: cursor.next_offset,
        last_append_time_ms: cursor.last_append_time_ms,
        log_start,
        producers,
        batches: entries.len() as u64,
    })?;
    for (base, entry) in entries {
        let value = shared
            .stored_value(base, &entry)
            .map_err(storage)?
            .ok_or_else(|| StorageError(format!("the batch at offset {base} is missing")))?;
        out = postcard::to_extend(&(base, &value[..]), out)
            .map_err(|err| StorageError(format!("encode snapshot batch: {err}")))?;
    }
    Ok(out)
}

/// The head of `snapshot` and its batch records `(base offset, stored value)`.
fn read(snapshot: &[u8]) -> Result<(Head, Records<'_>), StorageError> {
    let (head, rest): (Head, &[u8]) = postcard::take_from_bytes(snapshot)
        .map_err(|err| StorageError(format!("decode snapshot head: {err}")))?;
    let left = head.batches;
    Ok((head, Records { rest, left }))
}

/// A snapshot's batch records, read one at a time.
struct Records<'a> {
    rest: &'a [u8],
    left: u64,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<(u64, &'a [u8]), StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(
            postcard::take_from_bytes::<(u64, &[u8])>(self.rest)
                .map(|(record, rest)| {
                    self.rest = rest;
                    record
                })
                .map_err(|err| StorageError(format!("decode snapshot batch: {err}"))),
        )
    }
}

/// Puts the disk changes that replace the partition with `snapshot`'s in `batch`: producers,
/// every batch and index entry (the ones held before deleted), the watermark record.
pub(super) fn write_restore(
    shared: &PartitionShared,
    snapshot: &[u8],
    batch: &mut WriteBatch,
) -> Result<(), StorageError> {
    let (head, records) = read(snapshot)?;
    let (t, p) = (shared.topic_id, shared.index);
    let (from, to) = (producer_key(t, p, 0), producer_key(t, p, u64::MAX));
    batch.delete_range(Cf::Producers, from, to);
    for (id, state) in head.producers {
        batch.put(Cf::Producers, producer_key(t, p, id), Bytes::from(state));
    }
    let (lower, upper) = (log_key(t, p, 0), log_key(t, p, u64::MAX));
    batch.delete_range(Cf::Log, lower.clone(), upper.clone());
    batch.delete_range(Cf::Index, lower, upper);
    for record in records {
        let (base, value) = record?;
        let value = Bytes::copy_from_slice(value);
        let stored = batch::decode_stored(value.clone()).map_err(storage)?;
        let entry = IndexEntry {
            count: stored.count,
            append_time_ms: stored.append_time_ms,
            stored_len: value.len() as u32,
            raft: None,
        };
        batch.put(Cf::Index, log_key(t, p, base), entry.encode());
        batch.put(Cf::Log, log_key(t, p, base), value);
    }
    batch.put(
        Cf::Meta,
        watermark_key(t, p),
        Bytes::copy_from_slice(&head.next_offset.to_be_bytes()),
    );
    Ok(())
}

/// Makes an installed `snapshot` what readers see, and returns the group's state from it.
pub(super) fn restore(shared: &PartitionShared, snapshot: &[u8]) -> Result<Restored, StorageError> {
    let (head, records) = read(snapshot)?;
    let mut bytes = 0u64;
    for record in records {
        bytes += record?.1.len() as u64;
    }
    shared.restored(head.log_start, head.next_offset, bytes);
    Ok(Restored {
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
