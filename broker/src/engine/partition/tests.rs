//! Failed and panicking group commits: nothing of a failed group becomes visible, and a
//! panicked writer reloads from the store.

use super::*;
use crate::storage::{MemStore, StorageError};
use std::time::Duration;

/// A store whose armed write fails (or panics) after it was applied: a write reported as
/// failed that still reached the write-ahead log (and comes back when the log is replayed).
#[derive(Default)]
struct LeakyStore {
    inner: MemStore,
    fail_next: AtomicBool,
    panic_next: AtomicBool,
}

impl Store for LeakyStore {
    fn write(&self, batch: WriteBatch, sync: bool) -> std::result::Result<(), StorageError> {
        let fail = self.fail_next.swap(false, Ordering::SeqCst);
        self.inner.write(batch, sync)?;
        if fail {
            return Err(StorageError("injected: failed after the write".into()));
        }
        if self.panic_next.swap(false, Ordering::SeqCst) {
            panic!("injected: panic after the write");
        }
        Ok(())
    }

    fn get(&self, cf: Cf, key: &[u8]) -> std::result::Result<Option<Bytes>, StorageError> {
        self.inner.get(cf, key)
    }

    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> std::result::Result<Vec<(Vec<u8>, Bytes)>, StorageError> {
        self.inner.scan(cf, from, to, limit)
    }

    fn seek_prev(
        &self,
        cf: Cf,
        lower: &[u8],
        at: &[u8],
    ) -> std::result::Result<Option<(Vec<u8>, Bytes)>, StorageError> {
        self.inner.seek_prev(cf, lower, at)
    }

    fn sync(&self) -> std::result::Result<(), StorageError> {
        self.inner.sync()
    }

    fn fsyncs(&self) -> u64 {
        0
    }
}

fn options() -> PartitionOptions {
    PartitionOptions {
        settings: PartitionSettings {
            ack: AckDurability::Fsync,
            dedup_window_ms: 0,
        },
        tail_budget: TailBudget::new(1 << 20),
        max_group_commit_bytes: 1 << 20,
        producer_state_ttl_ms: 60_000,
        dirty: Arc::default(),
        metrics: Arc::new(Metrics::new(false, 10, Duration::from_secs(1))),
        health: Arc::default(),
        clock: crate::clock::system(),
        tenant_storage: Arc::default(),
    }
}

fn request(count: u32) -> AppendRequest {
    AppendRequest::batch(Bytes::from_static(b"payload"), count, 0)
}

#[tokio::test]
async fn nothing_of_a_failed_group_comes_back_even_if_the_store_kept_it() {
    let store = Arc::new(LeakyStore::default());
    let runtime = tokio::runtime::Handle::current();
    let partition = Partition::open(1, 0, store.clone(), false, options(), &runtime).unwrap();

    // Two batches queued before the writer runs share one group, whose write fails.
    store.fail_next.store(true, Ordering::SeqCst);
    let first = partition.append(request(1)).await.unwrap();
    let second = partition.append(request(2)).await.unwrap();
    assert!(first.await.unwrap().is_err());
    assert!(second.await.unwrap().is_err());
    assert_eq!(
        partition.shared().high_watermark(),
        0,
        "nothing became visible"
    );

    // The next group reuses offset 0 and removes the failed group's leftovers.
    let ack = partition.append(request(1)).await.unwrap().await.unwrap();
    assert_eq!(ack.unwrap().base_offset, 0);
    assert_eq!(partition.shared().high_watermark(), 1);
    partition.close().await;

    // Recovery (as after a restart) finds only what was acknowledged.
    let reopened = Partition::open(1, 0, store.clone(), false, options(), &runtime).unwrap();
    assert_eq!(reopened.shared().high_watermark(), 1);
    assert_eq!(reopened.shared().scan_index(0, 10).unwrap().len(), 1);
    reopened.close().await;
}

#[tokio::test]
async fn a_writer_that_panics_mid_commit_reloads_from_the_store_and_keeps_writing() {
    let store = Arc::new(LeakyStore::default());
    let runtime = tokio::runtime::Handle::current();
    let options = options();
    let health = options.health.clone();
    let partition = Partition::open(1, 0, store.clone(), false, options, &runtime).unwrap();
    let ack = partition.append(request(3)).await.unwrap().await.unwrap();
    assert_eq!(ack.unwrap().base_offset, 0);

    // The write is stored, then the writer panics before answering.
    store.panic_next.store(true, Ordering::SeqCst);
    let lost = partition.append(request(2)).await.unwrap();
    assert!(lost.await.is_err(), "the panicked group is not answered");
    assert_eq!(health.task_panics(), 1);

    // The writer carries on from what the store holds: the stored group is visible.
    let ack = partition.append(request(1)).await.unwrap().await.unwrap();
    assert_eq!(ack.unwrap().base_offset, 5);
    assert_eq!(partition.shared().high_watermark(), 6);
    partition.close().await;
}
