//! The RocksDB [`Store`].
//!
//! Tuning, by column family:
//! - `log` holds whole encoded batches (tens of KB each at batch 1000). Values go to blob files,
//!   so compaction moves only small references, and a large write buffer absorbs bursts.
//! - the others hold small values and use the defaults with a modest write buffer.
//!
//! Durable writes set `sync` on the write options: RocksDB appends the batch to its WAL and
//! fdatasyncs it before returning. The engine's group commit makes that one fsync per group.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rocksdb::{
    BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Direction,
    IteratorMode, Options, ReadOptions, WriteOptions,
};

use super::{Cf, Op, StorageError, Store, WriteBatch};

/// Knobs for the RocksDB store, from the broker config.
#[derive(Debug, Clone)]
pub struct RocksTuning {
    /// Write buffer (memtable) size of the log column family, in bytes.
    pub log_write_buffer_bytes: usize,
    /// Values at least this large go to blob files.
    pub min_blob_bytes: u64,
    /// Block cache shared by all column families, in bytes.
    pub block_cache_bytes: usize,
}

impl Default for RocksTuning {
    fn default() -> Self {
        RocksTuning {
            log_write_buffer_bytes: 128 << 20,
            min_blob_bytes: 4096,
            block_cache_bytes: 64 << 20,
        }
    }
}

/// RocksDB with one column family per [`Cf`].
pub struct RocksStore {
    db: DB,
    fsyncs: AtomicU64,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.db.path())
            .finish()
    }
}

impl RocksStore {
    /// Opens (or creates) the store under `path`.
    pub fn open(path: &Path, tuning: &RocksTuning) -> Result<RocksStore, StorageError> {
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(2);
        db_opts.set_bytes_per_sync(1 << 20);
        db_opts.set_keep_log_file_num(4);
        db_opts.set_max_total_wal_size(512 << 20);

        let cache = rocksdb::Cache::new_lru_cache(tuning.block_cache_bytes);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);

        let descriptors = Cf::ALL.iter().map(|&cf| {
            let mut opts = Options::default();
            opts.set_block_based_table_factory(&table);
            match cf {
                Cf::Log => {
                    opts.set_write_buffer_size(tuning.log_write_buffer_bytes);
                    opts.set_max_write_buffer_number(4);
                    opts.set_enable_blob_files(true);
                    opts.set_min_blob_size(tuning.min_blob_bytes);
                    opts.set_blob_file_size(256 << 20);
                    opts.set_enable_blob_gc(true);
                    opts.set_blob_compression_type(DBCompressionType::None);
                    opts.set_compression_type(DBCompressionType::Lz4);
                }
                _ => {
                    opts.set_write_buffer_size(16 << 20);
                    opts.set_compression_type(DBCompressionType::Lz4);
                }
            }
            ColumnFamilyDescriptor::new(cf.name(), opts)
        });
        let db = DB::open_cf_descriptors(&db_opts, path, descriptors)?;
        Ok(RocksStore {
            db,
            fsyncs: AtomicU64::new(0),
        })
    }

    fn cf(&self, cf: Cf) -> &ColumnFamily {
        // Every Cf is created at open, so the handle always exists.
        self.db
            .cf_handle(cf.name())
            .expect("column family created at open")
    }
}

/// An upper bound of the bytes RocksDB's write batch encoding of `batch` takes: a 12-byte header,
/// then per record a tag, the column family and each slice with its varint length.
fn encoded_len(batch: &WriteBatch) -> usize {
    const RECORD: usize = 1 + 5 + 2 * 5;
    12 + batch
        .ops()
        .iter()
        .map(|op| {
            RECORD
                + match op {
                    Op::Put { key, value, .. } => key.len() + value.len(),
                    Op::Delete { key, .. } => key.len(),
                    Op::DeleteRange { from, to, .. } => from.len() + to.len(),
                }
        })
        .sum::<usize>()
}

impl RocksStore {
    fn encode(&self, batch: &WriteBatch) -> rocksdb::WriteBatch {
        let mut wb = rocksdb::WriteBatch::with_capacity_bytes(encoded_len(batch));
        for op in batch.ops() {
            match op {
                Op::Put { cf, key, value } => wb.put_cf(self.cf(*cf), key, value),
                Op::Delete { cf, key } => wb.delete_cf(self.cf(*cf), key),
                Op::DeleteRange { cf, from, to } => wb.delete_range_cf(self.cf(*cf), from, to),
            }
        }
        wb
    }
}

impl Store for RocksStore {
    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), StorageError> {
        // Sized up front: growing the batch's buffer by doubling copied a group commit's
        // megabytes several times over (callgrind: 11% of the broker's instructions under publish).
        let wb = self.encode(&batch);
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.db.write_opt(wb, &opts)?;
        if sync {
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        Ok(self.db.get_cf(self.cf(cf), key)?.map(Bytes::from))
    }

    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, StorageError> {
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(to.to_vec());
        let iter = self.db.iterator_cf_opt(
            self.cf(cf),
            opts,
            IteratorMode::From(from, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter.take(limit) {
            let (key, value) = item?;
            out.push((key.into_vec(), Bytes::from(value.into_vec())));
        }
        Ok(out)
    }

    fn seek_prev(
        &self,
        cf: Cf,
        lower: &[u8],
        at: &[u8],
    ) -> Result<Option<(Vec<u8>, Bytes)>, StorageError> {
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(lower.to_vec());
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(cf), opts);
        iter.seek_for_prev(at);
        if iter.valid() {
            let key = iter.key().map(<[u8]>::to_vec);
            let value = iter.value().map(Bytes::copy_from_slice);
            if let (Some(key), Some(value)) = (key, value) {
                return Ok(Some((key, value)));
            }
        }
        iter.status()?;
        Ok(None)
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.db.flush_wal(true)?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_batches_are_sized_for_their_encoding_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path(), &RocksTuning::default()).unwrap();
        let mut batch = WriteBatch::new();
        batch.put(Cf::Log, vec![1; 16], vec![7; 100_000]);
        batch.put(Cf::Index, vec![2; 16], vec![8; 300]);
        batch.delete(Cf::Producers, vec![3; 200]);
        batch.delete_range(Cf::Log, vec![0], vec![0xff; 130]);
        let encoded = store.encode(&batch);
        assert!(encoded.size_in_bytes() <= encoded_len(&batch));
        assert!(
            encoded_len(&batch) - encoded.size_in_bytes() < 100,
            "a tight bound"
        );
    }
}
