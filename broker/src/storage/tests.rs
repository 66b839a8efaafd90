//! The same behaviour checks run against both stores.

use super::*;

fn stores() -> Vec<(&'static str, Box<dyn Store>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let rocks = RocksStore::open(dir.path(), &RocksTuning::default()).unwrap();
    vec![
        ("memory", Box::new(MemStore::new()), None),
        ("rocksdb", Box::new(rocks), Some(dir)),
    ]
}

#[test]
fn writes_are_visible_in_key_order() {
    for (name, store, _dir) in stores() {
        let mut batch = WriteBatch::new();
        for k in [3u8, 1, 2, 9] {
            batch.put(Cf::Log, vec![k], vec![k * 10]);
        }
        batch.put(Cf::Meta, vec![1], &b"other cf"[..]);
        store.write(batch, true).unwrap();
        let keys: Vec<Vec<u8>> = store
            .scan(Cf::Log, &[0], &[9], 10)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![vec![1], vec![2], vec![3]], "{name}");
        assert_eq!(
            store.get(Cf::Log, &[2]).unwrap().unwrap(),
            &[20][..],
            "{name}"
        );
        assert_eq!(
            store.get(Cf::Meta, &[1]).unwrap().unwrap(),
            &b"other cf"[..],
            "{name}"
        );
        assert!(store.get(Cf::Index, &[1]).unwrap().is_none(), "{name}");
    }
}

#[test]
fn seek_prev_finds_the_batch_holding_an_offset() {
    for (name, store, _dir) in stores() {
        let mut batch = WriteBatch::new();
        batch.put(Cf::Log, vec![0, 0], &b"a"[..]);
        batch.put(Cf::Log, vec![0, 10], &b"b"[..]);
        batch.put(Cf::Log, vec![1, 0], &b"other partition"[..]);
        store.write(batch, false).unwrap();
        let hit = store.seek_prev(Cf::Log, &[0, 0], &[0, 7]).unwrap().unwrap();
        assert_eq!(hit.0, vec![0, 0], "{name}");
        let hit = store
            .seek_prev(Cf::Log, &[0, 0], &[0, 255])
            .unwrap()
            .unwrap();
        assert_eq!(hit.0, vec![0, 10], "{name}");
        assert!(
            store
                .seek_prev(Cf::Log, &[1, 1], &[1, 5])
                .unwrap()
                .is_none(),
            "{name}"
        );
    }
}

#[test]
fn delete_range_removes_only_the_range() {
    for (name, store, _dir) in stores() {
        let mut batch = WriteBatch::new();
        for k in 0u8..10 {
            batch.put(Cf::Index, vec![k], vec![k]);
        }
        store.write(batch, false).unwrap();
        let mut batch = WriteBatch::new();
        batch.delete_range(Cf::Index, vec![2], vec![5]);
        batch.delete(Cf::Index, vec![9]);
        store.write(batch, true).unwrap();
        let keys: Vec<u8> = store
            .scan(Cf::Index, &[0], &[255], 100)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k[0])
            .collect();
        assert_eq!(keys, vec![0, 1, 5, 6, 7, 8], "{name}");
    }
}

#[test]
fn rocksdb_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RocksStore::open(dir.path(), &RocksTuning::default()).unwrap();
        let mut batch = WriteBatch::new();
        batch.put(Cf::Cursors, b"sub".to_vec(), &b"42"[..]);
        store.write(batch, true).unwrap();
        assert_eq!(store.fsyncs(), 1);
    }
    let store = RocksStore::open(dir.path(), &RocksTuning::default()).unwrap();
    assert_eq!(store.get(Cf::Cursors, b"sub").unwrap().unwrap(), &b"42"[..]);
}

/// Writes 100 values of 8 KiB to `Cf::RaftLog` of a store in `dir` with a small write buffer,
/// which puts most of them in blob files, checks they verify, and closes the store; the tuning
/// to open it again with.
fn with_blob_files(dir: &std::path::Path) -> RocksTuning {
    let tuning = RocksTuning {
        log_write_buffer_bytes: 64 << 10,
        ..RocksTuning::default()
    };
    let store = RocksStore::open(dir, &tuning).unwrap();
    for key in 0..100u8 {
        let mut batch = WriteBatch::new();
        // Above `min_blob_bytes`: the value goes to a blob file once flushed.
        batch.put(Cf::RaftLog, vec![key], vec![key; 8192]);
        store.write(batch, false).unwrap();
    }
    assert_eq!(store.verify(Cf::RaftLog, &[0], &[255]).unwrap(), None);
    tuning
}

#[test]
fn a_flipped_byte_in_a_blob_file_fails_verification_and_nothing_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let tuning = with_blob_files(dir.path());
    let all = (vec![0u8], vec![255u8]);
    let blobs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "blob"))
        .collect();
    assert!(!blobs.is_empty(), "nothing was flushed to a blob file");
    for blob in &blobs {
        let mut bytes = std::fs::read(blob).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(blob, bytes).unwrap();
    }
    let store = RocksStore::open(dir.path(), &tuning).unwrap();
    let found = store.verify(Cf::RaftLog, &all.0, &all.1).unwrap();
    assert!(
        found.as_deref().is_some_and(|f| f.contains("Corruption")),
        "{found:?}"
    );
    assert_eq!(store.verify(Cf::Log, &all.0, &all.1).unwrap(), None);
    assert_eq!(
        MemStore::new().verify(Cf::RaftLog, &all.0, &all.1).unwrap(),
        None
    );
}

#[test]
fn a_truncated_blob_file_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let tuning = with_blob_files(dir.path());
    let all = (vec![0u8], vec![255u8]);
    let mut truncated = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "blob") {
            let len = std::fs::metadata(&path).unwrap().len();
            let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            file.set_len(len / 2).unwrap();
            truncated += 1;
        }
    }
    assert!(truncated > 0, "nothing was flushed to a blob file");
    // The store opens; reading the cut records fails their check.
    let store = RocksStore::open(dir.path(), &tuning).unwrap();
    let found = store.verify(Cf::RaftLog, &all.0, &all.1).unwrap();
    assert!(
        found.as_deref().is_some_and(|f| f.contains("Corruption")),
        "{found:?}"
    );
}

#[test]
fn an_older_data_dir_gains_the_column_families_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    {
        // A store from before the audit log: every column family but `audit`.
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let older = Cf::ALL
            .iter()
            .filter(|&&cf| cf != Cf::Audit)
            .map(|cf| cf.name());
        let db = rocksdb::DB::open_cf(&opts, dir.path(), older).unwrap();
        db.put_cf(db.cf_handle("meta").unwrap(), b"topic", b"kept")
            .unwrap();
    }
    let store = RocksStore::open(dir.path(), &RocksTuning::default()).unwrap();
    assert_eq!(
        store.get(Cf::Meta, b"topic").unwrap().unwrap(),
        &b"kept"[..]
    );
    let mut batch = WriteBatch::new();
    batch.put(Cf::Audit, b"record".to_vec(), &b"{}"[..]);
    store.write(batch, true).unwrap();
    assert_eq!(
        store.get(Cf::Audit, b"record").unwrap().unwrap(),
        &b"{}"[..]
    );
}

#[test]
fn a_data_dir_from_before_clustering_gains_the_raft_column_families() {
    let dir = tempfile::tempdir().unwrap();
    {
        // A single-node store from before `crate::cluster`: no `raft_log`, no `raft_state`.
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let older = Cf::ALL
            .iter()
            .filter(|&&cf| !matches!(cf, Cf::RaftLog | Cf::RaftState))
            .map(|cf| cf.name());
        let db = rocksdb::DB::open_cf(&opts, dir.path(), older).unwrap();
        db.put_cf(db.cf_handle("log").unwrap(), b"batch", b"kept")
            .unwrap();
    }
    let store = RocksStore::open(dir.path(), &RocksTuning::default()).unwrap();
    assert_eq!(store.get(Cf::Log, b"batch").unwrap().unwrap(), &b"kept"[..]);
    let mut batch = WriteBatch::new();
    batch.put(Cf::RaftLog, vec![0; 16], &b"entry"[..]);
    batch.put(Cf::RaftState, vec![0; 9], &b"vote"[..]);
    store.write(batch, true).unwrap();
    drop(store);
    let store = RocksStore::open(dir.path(), &RocksTuning::default()).unwrap();
    assert_eq!(
        store.get(Cf::RaftLog, &[0; 16]).unwrap().unwrap(),
        &b"entry"[..]
    );
    assert_eq!(
        store.get(Cf::RaftState, &[0; 9]).unwrap().unwrap(),
        &b"vote"[..]
    );
}
