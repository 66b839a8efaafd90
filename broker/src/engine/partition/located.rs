//! Reads of a replicated partition's batches, which live once, in its raft log
//! (docs/adr/0005-clustering.md §3): each `Cf::Index` entry says which raft log entry holds its
//! batch, and the batch is rebuilt from that entry's append and the index entry's offsets and
//! append time, as the same [`StoredBatch`] a single-node partition serves. Index entries
//! without a raft location (batches a snapshot install wrote) are read from `Cf::Log`.

use std::sync::Arc;

use bytes::Bytes;

use super::{INDEX_CHUNK, PartitionShared, keys};
use crate::cluster::keys as raft_keys;
use crate::cluster::partition_group::{AppendCommand, entry_append};
use crate::engine::batch::{self, IndexEntry, StoredBatch};
use crate::error::{Error, Result};
use crate::storage::Cf;

impl PartitionShared {
    /// Batches from the index entry at `start` (the batch holding `from`) up to `hw`, following
    /// each index entry to where its batch lives; at most `max_batches`, about `max_bytes`.
    pub(super) fn read_indexed(
        &self,
        start: u64,
        from: u64,
        hw: u64,
        max_batches: usize,
        max_bytes: usize,
    ) -> Result<Vec<Arc<StoredBatch>>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut cursor = start;
        'scan: while out.len() < max_batches && bytes < max_bytes && cursor < hw {
            let entries = self.scan_index(cursor, (max_batches - out.len()).min(INDEX_CHUNK))?;
            if entries.is_empty() {
                break;
            }
            for (base, entry) in entries {
                if base >= hw {
                    break 'scan;
                }
                cursor = base + u64::from(entry.count);
                if cursor <= from {
                    continue;
                }
                // Gone: a trim removed it since the index was read.
                let Some(batch) = self.load_batch(base, &entry)? else {
                    break 'scan;
                };
                bytes += batch.payload.len();
                out.push(Arc::new(batch));
                if out.len() >= max_batches || bytes >= max_bytes {
                    break 'scan;
                }
            }
        }
        Ok(out)
    }

    /// The batch at `base` that `entry` indexes, wherever it lives; `None` if it is gone.
    pub fn load_batch(&self, base: u64, entry: &IndexEntry) -> Result<Option<StoredBatch>> {
        let Some(append) = self.located_append(entry)? else {
            let value = self
                .store
                .get(Cf::Log, &keys::log_key(self.topic_id, self.index, base))?;
            return value.map(batch::decode_stored).transpose();
        };
        Ok(append.map(|append| StoredBatch {
            flags: append.flags,
            base_offset: base,
            count: entry.count,
            append_time_ms: entry.append_time_ms,
            payload: append.payload,
            value_bytes: None,
        }))
    }

    /// The batch at `base` as a single-node partition stores it in `Cf::Log` (header and
    /// payload), wherever it lives; `None` if it is gone.
    pub fn stored_value(&self, base: u64, entry: &IndexEntry) -> Result<Option<Bytes>> {
        let Some(append) = self.located_append(entry)? else {
            return Ok(self
                .store
                .get(Cf::Log, &keys::log_key(self.topic_id, self.index, base))?);
        };
        Ok(append.map(|append| {
            batch::encode_stored(
                append.flags,
                base,
                entry.count,
                entry.append_time_ms,
                append.producer_id,
                append.base_sequence,
                &append.payload,
            )
        }))
    }

    /// The append of the raft log entry `entry` points at: `None` when the entry has no raft
    /// location, `Some(None)` when the raft log entry is gone.
    fn located_append(&self, entry: &IndexEntry) -> Result<Option<Option<AppendCommand>>> {
        let Some(raft) = entry.raft else {
            return Ok(None);
        };
        let Some(value) = self
            .store
            .get(Cf::RaftLog, &raft_keys::entry(raft.group, raft.index))?
        else {
            return Ok(Some(None));
        };
        let append = entry_append(&value)?.ok_or_else(|| {
            Error::internal(format!(
                "raft log entry {}/{} holds no append",
                raft.group, raft.index
            ))
        })?;
        Ok(Some(Some(append)))
    }
}
