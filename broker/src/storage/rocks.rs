//! The RocksDB [`Store`].
//!
//! Tuning, by column family:
//! - `log` and `raft_log` hold whole encoded batches (tens of KB each at batch 1000). Values go to blob files,
//!   so compaction moves only small references, and a large write buffer absorbs bursts.
//! - the others hold small values and use the defaults with a modest write buffer.
//!
//! Durable writes set `sync` on the write options: RocksDB appends the batch to its WAL and
//! fdatasyncs it before returning. The engine's group commit makes that one fsync per group.
//!
//! Failure: the first failed write or sync marks the store failed ([`RocksStore::failure`]) and
//! logs a `storage_failed` health event; the broker then reports not ready. RocksDB itself may
//! stay in its background-error state after the disk has room again, and this version of the
//! bindings has no `DB::resume`, so [`RocksStore::recover`] probes with a small synced write
//! and, if that still fails while the filesystem has room for recovery, closes and reopens the
//! database (recovery replays the write-ahead log: nothing acknowledged is lost).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use rocksdb::{
    BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Direction,
    IteratorMode, Options, ReadOptions, WriteOptions,
};

use super::{Cf, DamageSink, Op, StorageError, Store, WriteBatch, fault};

/// Room beyond the write-ahead logs' size that a reopen wants free (recovery flushes the
/// replayed logs to table files).
const REOPEN_MARGIN_BYTES: u64 = 4 << 20;
/// The key a probe deletes: a real synced write that leaves nothing behind.
const PROBE_KEY: &[u8] = b"\xffrapidmq-storage-probe";

/// Knobs for the RocksDB store, from the broker config.
#[derive(Debug, Clone)]
pub struct RocksTuning {
    /// Write buffer (memtable) size of the log column family, in bytes.
    pub log_write_buffer_bytes: usize,
    /// Values at least this large go to blob files.
    pub min_blob_bytes: u64,
    /// Block cache shared by all column families, in bytes.
    pub block_cache_bytes: usize,
    /// Memtable flushes and compactions write (and compactions read) with direct I/O, past the
    /// page cache, where the filesystem allows it ([`direct_io_works`]).
    pub direct_io_flush: bool,
}

impl Default for RocksTuning {
    fn default() -> Self {
        RocksTuning {
            log_write_buffer_bytes: 128 << 20,
            min_blob_bytes: 4096,
            block_cache_bytes: 64 << 20,
            direct_io_flush: false,
        }
    }
}

/// RocksDB with one column family per [`Cf`].
pub struct RocksStore {
    path: PathBuf,
    tuning: RocksTuning,
    /// `None` only while a reopen is under way or after it failed.
    db: RwLock<Option<DB>>,
    fsyncs: AtomicU64,
    /// The cause of the first write or sync that failed since the store last recovered.
    failure: Mutex<Option<String>>,
    /// Told of reads that found damaged data ([`Store::on_damage`]).
    damage: OnceLock<DamageSink>,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.path)
            .finish()
    }
}

impl RocksStore {
    /// Opens (or creates) the store under `path`.
    pub fn open(path: &Path, tuning: &RocksTuning) -> Result<RocksStore, StorageError> {
        Ok(RocksStore {
            path: path.to_path_buf(),
            tuning: tuning.clone(),
            db: RwLock::new(Some(open_db(path, tuning)?)),
            fsyncs: AtomicU64::new(0),
            failure: Mutex::new(None),
            damage: OnceLock::new(),
        })
    }

    /// Why the store is failing writes, if a write or sync failed since it last recovered.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    /// Records a failed write or sync; the first one since the last recovery is a health event.
    fn fail(&self, err: &StorageError) {
        let mut failure = self.failure.lock();
        if failure.is_none() {
            tracing::error!(target: "rapidmq::health", event = "storage_failed", cause = %err, "storage is failing writes: not ready until a probe write succeeds");
            *failure = Some(err.to_string());
        }
    }

    /// Tries to make the failed store writable again: a synced probe write; if RocksDB still
    /// refuses it (its background-error state outlives the cause) and the filesystem has room
    /// for recovery, a close and reopen, then the probe again. `Ok` clears the failure.
    pub fn recover(&self) -> Result<(), StorageError> {
        if self.probe().is_err() {
            let free = available_bytes(&self.path)?;
            let needed = wal_bytes(&self.path) + REOPEN_MARGIN_BYTES;
            if free < needed {
                return Err(StorageError(format!(
                    "{free} bytes free under {}; reopening the store needs about {needed}",
                    self.path.display()
                )));
            }
            tracing::warn!(target: "rapidmq::health", event = "storage_reopen", path = %self.path.display(), "reopening the store to leave RocksDB's error state");
            self.reopen()?;
            self.probe()?;
        }
        *self.failure.lock() = None;
        Ok(())
    }

    /// One synced write that changes nothing, straight to RocksDB.
    fn probe(&self) -> Result<(), StorageError> {
        if fault::active("fail-writes") {
            return Err(injected());
        }
        let guard = self.db.read();
        let db = guard.as_ref().ok_or_else(closed)?;
        let mut wb = rocksdb::WriteBatch::default();
        wb.delete_cf(cf(db, Cf::Meta), PROBE_KEY);
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        db.write_opt(wb, &opts)?;
        Ok(())
    }

    /// Closes the database (after every call in progress) and opens it again.
    fn reopen(&self) -> Result<(), StorageError> {
        let mut db = self.db.write();
        // Closing first releases RocksDB's lock file.
        drop(db.take());
        *db = Some(open_db(&self.path, &self.tuning)?);
        Ok(())
    }

    /// The error of a read of `key` in `cf` that RocksDB failed with `err`; a checksum that did
    /// not match (RocksDB's `Corruption`) is also told to the damage sink.
    fn read_failed(&self, cf: Cf, key: &[u8], err: rocksdb::Error) -> StorageError {
        if err.kind() == rocksdb::ErrorKind::Corruption
            && let Some(sink) = self.damage.get()
        {
            sink(cf, key);
        }
        err.into()
    }

    /// Runs `f` on the open database; a store being reopened answers with an error.
    fn with_db<T>(
        &self,
        f: impl FnOnce(&DB) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let guard = self.db.read();
        f(guard.as_ref().ok_or_else(closed)?)
    }
}

fn closed() -> StorageError {
    StorageError("the store is closed while it is being reopened".into())
}

fn injected() -> StorageError {
    StorageError("injected I/O error (test fault file)".into())
}

/// Bytes available to unprivileged writers on the filesystem holding `path`.
fn available_bytes(path: &Path) -> Result<u64, StorageError> {
    let stat = rustix::fs::statvfs(path)
        .map_err(|err| StorageError(format!("statvfs {}: {err}", path.display())))?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Total size of the write-ahead log files (`*.log`) in the store directory.
fn wal_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn cf(db: &DB, cf: Cf) -> &ColumnFamily {
    // Every Cf is created at open, so the handle always exists.
    db.cf_handle(cf.name())
        .expect("column family created at open")
}

/// Opens (or creates) the database under `path` with every column family.
fn open_db(path: &Path, tuning: &RocksTuning) -> Result<DB, StorageError> {
    let mut db_opts = Options::default();
    db_opts.create_if_missing(true);
    db_opts.create_missing_column_families(true);
    db_opts.set_max_background_jobs(2);
    db_opts.set_bytes_per_sync(1 << 20);
    db_opts.set_keep_log_file_num(4);
    db_opts.set_max_total_wal_size(512 << 20);
    // A flush writes every batch a second time (to a blob file, after the write-ahead log);
    // through the page cache that copy cost three replicas on one machine a sixth of its CPU,
    // but past it readers of flushed batches read them from disk: off unless asked for
    // (docs/benchmarks.md, "direct I/O for flushes").
    if tuning.direct_io_flush {
        if direct_io_works(path) {
            db_opts.set_use_direct_io_for_flush_and_compaction(true);
        } else {
            tracing::warn!(
                path = %path.display(),
                "the data dir's filesystem refuses direct I/O: flushes go through the page cache"
            );
        }
    }

    let cache = rocksdb::Cache::new_lru_cache(tuning.block_cache_bytes);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&cache);

    let descriptors = Cf::ALL.iter().map(|&cf| {
        let mut opts = Options::default();
        opts.set_block_based_table_factory(&table);
        match cf {
            Cf::Log | Cf::RaftLog => {
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
    Ok(DB::open_cf_descriptors(&db_opts, path, descriptors)?)
}

/// Whether files in the directory `path` (created if missing) open with `O_DIRECT`: tmpfs on
/// older kernels and some network filesystems refuse it, and RocksDB would then fail its
/// first flush.
fn direct_io_works(path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    if std::fs::create_dir_all(path).is_err() {
        return false;
    }
    let probe = path.join(".direct-io-probe");
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
        .open(&probe);
    let _ = std::fs::remove_file(&probe);
    opened.is_ok()
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

fn encode(db: &DB, batch: &WriteBatch) -> rocksdb::WriteBatch {
    let mut wb = rocksdb::WriteBatch::with_capacity_bytes(encoded_len(batch));
    for op in batch.ops() {
        match op {
            Op::Put { cf: c, key, value } => wb.put_cf(cf(db, *c), key, value),
            Op::Delete { cf: c, key } => wb.delete_cf(cf(db, *c), key),
            Op::DeleteRange { cf: c, from, to } => wb.delete_range_cf(cf(db, *c), from, to),
        }
    }
    wb
}

impl Store for RocksStore {
    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), StorageError> {
        let result = if fault::active("fail-writes") {
            Err(injected())
        } else {
            self.with_db(|db| {
                // Sized up front: growing the batch's buffer by doubling copied a group commit's
                // megabytes several times over (callgrind: 11% of the broker's instructions
                // under publish).
                let wb = encode(db, &batch);
                let mut opts = WriteOptions::default();
                opts.set_sync(sync);
                Ok(db.write_opt(wb, &opts)?)
            })
        };
        if let Err(err) = &result {
            self.fail(err);
        } else if sync {
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn get(&self, cf_: Cf, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        self.with_db(|db| {
            let value = db
                .get_cf(cf(db, cf_), key)
                .map_err(|err| self.read_failed(cf_, key, err))?;
            Ok(value.map(Bytes::from))
        })
    }

    fn scan(
        &self,
        cf_: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, StorageError> {
        self.with_db(|db| {
            let mut opts = ReadOptions::default();
            opts.set_iterate_upper_bound(to.to_vec());
            let iter = db.iterator_cf_opt(
                cf(db, cf_),
                opts,
                IteratorMode::From(from, Direction::Forward),
            );
            let mut out = Vec::new();
            for item in iter.take(limit) {
                let (key, value) = item.map_err(|err| self.read_failed(cf_, from, err))?;
                out.push((key.into_vec(), Bytes::from(value.into_vec())));
            }
            Ok(out)
        })
    }

    fn seek_prev(
        &self,
        cf_: Cf,
        lower: &[u8],
        at: &[u8],
    ) -> Result<Option<(Vec<u8>, Bytes)>, StorageError> {
        self.with_db(|db| {
            let mut opts = ReadOptions::default();
            opts.set_iterate_lower_bound(lower.to_vec());
            let mut iter = db.raw_iterator_cf_opt(cf(db, cf_), opts);
            iter.seek_for_prev(at);
            if iter.valid() {
                let key = iter.key().map(<[u8]>::to_vec);
                let value = iter.value().map(Bytes::copy_from_slice);
                if let (Some(key), Some(value)) = (key, value) {
                    return Ok(Some((key, value)));
                }
            }
            iter.status()
                .map_err(|err| self.read_failed(cf_, at, err))?;
            Ok(None)
        })
    }

    fn verify(&self, cf_: Cf, from: &[u8], to: &[u8]) -> Result<Option<String>, StorageError> {
        self.with_db(|db| {
            let mut opts = ReadOptions::default();
            opts.set_iterate_upper_bound(to.to_vec());
            // A scan of everything: keep the cache for what readers read.
            opts.fill_cache(false);
            opts.set_verify_checksums(true);
            let mut iter = db.raw_iterator_cf_opt(cf(db, cf_), opts);
            iter.seek(from);
            while iter.valid() {
                // A value in a blob file is read (and its checksum checked) only when asked for.
                let _ = iter.value();
                iter.next();
            }
            match iter.status() {
                Ok(()) => Ok(None),
                Err(err) if err.kind() == rocksdb::ErrorKind::Corruption => {
                    Ok(Some(err.into_string()))
                }
                Err(err) => Err(err.into()),
            }
        })
    }

    fn on_damage(&self, sink: DamageSink) {
        if self.damage.set(sink).is_err() {
            tracing::warn!("a second damage sink for the store; keeping the first");
        }
    }

    fn sync(&self) -> Result<(), StorageError> {
        let result = if fault::active("fail-writes") {
            Err(injected())
        } else {
            self.with_db(|db| Ok(db.flush_wal(true)?))
        };
        match &result {
            Ok(()) => {
                self.fsyncs.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => self.fail(err),
        }
        result
    }

    fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

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
        let guard = store.db.read();
        let encoded = encode(guard.as_ref().unwrap(), &batch);
        assert!(encoded.size_in_bytes() <= encoded_len(&batch));
        assert!(
            encoded_len(&batch) - encoded.size_in_bytes() < 100,
            "a tight bound"
        );
    }

    #[test]
    fn the_direct_io_probe_leaves_nothing_behind_and_fails_where_no_dir_can_be() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        // ext4 and xfs take O_DIRECT; whatever the answer, the probe file is gone.
        let _ = direct_io_works(&store);
        assert_eq!(std::fs::read_dir(&store).unwrap().count(), 0);
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        assert!(!direct_io_works(&file.join("store")));
    }

    #[test]
    fn a_store_flushes_blob_files_with_direct_io_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let tuning = RocksTuning {
            log_write_buffer_bytes: 64 << 10,
            direct_io_flush: true,
            ..RocksTuning::default()
        };
        let store = RocksStore::open(dir.path(), &tuning).unwrap();
        for key in 0..40u8 {
            let mut batch = WriteBatch::new();
            batch.put(Cf::RaftLog, vec![key], vec![key; 8192]);
            store.write(batch, false).unwrap();
        }
        assert_eq!(store.verify(Cf::RaftLog, &[0], &[255]).unwrap(), None);
        for key in [0u8, 39] {
            assert_eq!(
                store.get(Cf::RaftLog, &[key]).unwrap().unwrap(),
                &[key; 8192][..]
            );
        }
        let blobs = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|entry| {
                let path = entry.as_ref().unwrap().path();
                path.extension().is_some_and(|ext| ext == "blob")
            })
            .count();
        assert!(blobs > 0, "flushed to blob files");
    }

    #[test]
    fn a_read_of_a_damaged_value_fails_and_tells_the_damage_sink() {
        let dir = tempfile::tempdir().unwrap();
        let tuning = RocksTuning {
            log_write_buffer_bytes: 64 << 10,
            ..RocksTuning::default()
        };
        let store = RocksStore::open(dir.path(), &tuning).unwrap();
        /// The reads the sink was told of.
        type Told = Arc<Mutex<Vec<(Cf, Vec<u8>)>>>;
        let told: Told = Arc::default();
        let sink = Arc::clone(&told);
        store.on_damage(Arc::new(move |cf, key: &[u8]| {
            sink.lock().push((cf, key.to_vec()));
        }));
        for key in 0..40u8 {
            let mut batch = WriteBatch::new();
            batch.put(Cf::RaftLog, vec![key], vec![key; 8192]);
            store.write(batch, false).unwrap();
        }
        {
            let guard = store.db.read();
            let db = guard.as_ref().unwrap();
            db.flush_cf(cf(db, Cf::RaftLog)).unwrap();
        }
        let blobs: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "blob"))
            .collect();
        assert!(!blobs.is_empty(), "flushed to blob files");
        for blob in &blobs {
            let mut bytes = std::fs::read(blob).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff;
            std::fs::write(blob, bytes).unwrap();
        }

        let mut failed = Vec::new();
        for key in 0..40u8 {
            match store.get(Cf::RaftLog, &[key]) {
                Ok(value) => assert_eq!(value.unwrap(), &[key; 8192][..], "never other bytes"),
                Err(_) => failed.push((Cf::RaftLog, vec![key])),
            }
        }
        assert!(
            !failed.is_empty(),
            "a flipped byte in every blob file damaged no value"
        );
        assert_eq!(
            *told.lock(),
            failed,
            "each failed get, and only those, is told"
        );

        told.lock().clear();
        assert!(store.scan(Cf::RaftLog, &[0], &[255], 100).is_err());
        assert_eq!(
            *told.lock(),
            vec![(Cf::RaftLog, vec![0])],
            "a scan tells its first key"
        );
        // Other failures (a closed store) are not damage.
        told.lock().clear();
        drop(store.db.write().take());
        assert!(store.get(Cf::RaftLog, &[0]).is_err());
        assert!(told.lock().is_empty());
    }
}
