//! The tail cache: recently committed batches kept in memory (shared `Bytes`, no copies) so that
//! consumers that keep up are served without RocksDB.
//!
//! Each partition has its own [`TailCache`], a suffix of its log; every one of them draws on one
//! broker-wide [`TailBudget`] (`storage.tail_cache_bytes`). When an admission takes the budget
//! past its limit, the batches admitted longest ago are evicted first, whichever partition holds
//! them. A reader whose offset is no longer cached reads from the store instead, so eviction
//! costs speed, never data.
//!
//! Locks: the budget's admission order is a mutex that may be held while a partition's cache
//! lock is taken (to evict), never the other way round. Only the partition's writer task pushes
//! to its cache, so a cache's admissions enter the order in the order its batches were cached. Byte and batch counts are atomics
//! updated by whoever removes a batch, under that cache's lock, so each batch is counted out once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};

use super::batch::StoredBatch;

/// Stale admission records (of batches already gone by retention, reload or topic deletion)
/// tolerated before the admission order is compacted.
const STALE_SLACK: usize = 1024;

/// The broker-wide byte budget of all partitions' tail caches.
#[derive(Debug)]
pub struct TailBudget {
    limit: usize,
    used: AtomicUsize,
    cached: AtomicUsize,
    next_seq: AtomicU64,
    /// Cached batches in admission order (oldest first); some may already be gone.
    order: Mutex<VecDeque<Admitted>>,
}

#[derive(Debug)]
struct Admitted {
    cache: Weak<TailCache>,
    seq: u64,
}

/// One partition's cached tail: a contiguous suffix of its committed log.
#[derive(Debug)]
pub struct TailCache {
    budget: Arc<TailBudget>,
    inner: RwLock<Tail>,
}

#[derive(Debug, Default)]
struct Tail {
    batches: VecDeque<Cached>,
    bytes: usize,
}

#[derive(Debug)]
struct Cached {
    /// Admission number, increasing within a cache (and across the broker).
    seq: u64,
    batch: Arc<StoredBatch>,
}

impl TailBudget {
    /// A budget of `limit` bytes shared by every partition; 0 caches nothing.
    pub fn new(limit: usize) -> Arc<TailBudget> {
        Arc::new(TailBudget {
            limit,
            used: AtomicUsize::new(0),
            cached: AtomicUsize::new(0),
            next_seq: AtomicU64::new(0),
            order: Mutex::new(VecDeque::new()),
        })
    }

    /// Stored bytes of the batches cached now, across partitions.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Batches cached now, across partitions.
    pub fn cached(&self) -> usize {
        self.cached.load(Ordering::Acquire)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn counted_out(&self, bytes: usize, batches: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        self.cached.fetch_sub(batches, Ordering::AcqRel);
    }

    /// Records admissions, then evicts the oldest cached batches until the budget holds.
    fn admit(&self, cache: &Arc<TailCache>, seqs: impl Iterator<Item = u64>) {
        let mut order = self.order.lock();
        for seq in seqs {
            order.push_back(Admitted {
                cache: Arc::downgrade(cache),
                seq,
            });
        }
        while self.used() > self.limit {
            let Some(oldest) = order.pop_front() else {
                break;
            };
            if let Some(owner) = oldest.cache.upgrade() {
                owner.evict(oldest.seq);
            }
        }
        if order.len() > 2 * self.cached() + STALE_SLACK {
            order.retain(|a| a.cache.upgrade().is_some_and(|c| c.holds(a.seq)));
        }
    }
}

impl TailCache {
    pub fn new(budget: Arc<TailBudget>) -> Arc<TailCache> {
        Arc::new(TailCache {
            budget,
            inner: RwLock::new(Tail::default()),
        })
    }

    /// Caches newly committed batches (in offset order, following those already cached), then
    /// evicts the broker's oldest cached batches if the budget is exceeded.
    pub fn push(self: &Arc<Self>, batches: Vec<Arc<StoredBatch>>) {
        if batches.is_empty() {
            return;
        }
        let first = self
            .budget
            .next_seq
            .fetch_add(batches.len() as u64, Ordering::Relaxed);
        let count = batches.len();
        {
            let mut tail = self.inner.write();
            let mut added = 0;
            for (i, batch) in batches.into_iter().enumerate() {
                added += batch.stored_len();
                tail.batches.push_back(Cached {
                    seq: first + i as u64,
                    batch,
                });
            }
            tail.bytes += added;
            self.budget.used.fetch_add(added, Ordering::AcqRel);
            self.budget.cached.fetch_add(count, Ordering::AcqRel);
        }
        self.budget.admit(self, first..first + count as u64);
    }

    /// Cached batches from the one holding `from`, at most `max_batches` and about `max_bytes`;
    /// `None` when `from` is older than the cache (read the store instead).
    pub fn read(
        &self,
        from: u64,
        max_batches: usize,
        max_bytes: usize,
    ) -> Option<Vec<Arc<StoredBatch>>> {
        let tail = self.inner.read();
        let first = tail.batches.front()?;
        if from < first.batch.base_offset {
            return None;
        }
        let start = tail
            .batches
            .partition_point(|c| c.batch.end_offset() <= from);
        let mut out = Vec::new();
        let mut bytes = 0;
        for cached in tail.batches.range(start..) {
            if out.len() >= max_batches || (bytes >= max_bytes && !out.is_empty()) {
                break;
            }
            bytes += cached.batch.payload.len();
            out.push(cached.batch.clone());
        }
        Some(out)
    }

    /// Drops every cached batch that ends at or before `cut` (retention).
    pub fn truncate(&self, cut: u64) {
        let mut tail = self.inner.write();
        let (mut bytes, mut batches) = (0, 0);
        while tail
            .batches
            .front()
            .is_some_and(|c| c.batch.end_offset() <= cut)
        {
            if let Some(old) = tail.batches.pop_front() {
                bytes += old.batch.stored_len();
                batches += 1;
            }
        }
        tail.bytes -= bytes;
        self.budget.counted_out(bytes, batches);
    }

    /// Drops everything cached.
    pub fn clear(&self) {
        let mut tail = self.inner.write();
        let batches = tail.batches.len();
        tail.batches.clear();
        self.budget
            .counted_out(std::mem::take(&mut tail.bytes), batches);
    }

    /// Stored bytes cached for this partition.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.inner.read().bytes
    }

    /// Evicts the batch admitted as `seq` if it is still the oldest one cached here.
    fn evict(&self, seq: u64) {
        let mut tail = self.inner.write();
        if tail.batches.front().is_some_and(|c| c.seq == seq)
            && let Some(old) = tail.batches.pop_front()
        {
            let len = old.batch.stored_len();
            tail.bytes -= len;
            self.budget.counted_out(len, 1);
        }
    }

    /// Whether the batch admitted as `seq` is still cached (batches leave from the front only).
    fn holds(&self, seq: u64) -> bool {
        self.inner
            .read()
            .batches
            .front()
            .is_some_and(|c| c.seq <= seq)
    }
}

impl Drop for TailCache {
    fn drop(&mut self) {
        let tail = self.inner.get_mut();
        self.budget.counted_out(tail.bytes, tail.batches.len());
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::engine::batch::HEADER_LEN;

    /// A batch of `count` messages at `base` whose stored length is `HEADER_LEN + payload`.
    fn batch(base: u64, count: u32, payload: usize) -> Arc<StoredBatch> {
        Arc::new(StoredBatch {
            flags: 0,
            base_offset: base,
            count,
            append_time_ms: 0,
            payload: Bytes::from(vec![0u8; payload]),
            value_bytes: None,
        })
    }

    fn cached_offsets(cache: &TailCache) -> Vec<u64> {
        let offsets: Vec<u64> = (cache.inner.read().batches.iter())
            .map(|c| c.batch.base_offset)
            .collect();
        // Every cached batch is readable from its own offset on.
        for (i, &offset) in offsets.iter().enumerate() {
            let read = cache.read(offset, usize::MAX, usize::MAX);
            assert_eq!(read.map(|r| r.len()), Some(offsets.len() - i));
        }
        offsets
    }

    #[test]
    fn the_budget_is_never_exceeded_and_counts_what_the_caches_hold() {
        let budget = TailBudget::new(10_000);
        let caches: Vec<_> = (0..7).map(|_| TailCache::new(budget.clone())).collect();
        let mut next = [0u64; 7];
        for i in 0..2_000usize {
            let p = (i * 5 + i / 3) % 7;
            let size = 1 + (i * 37) % 900;
            caches[p].push(vec![batch(next[p], 2, size)]);
            next[p] += 2;
            assert!(
                budget.used() <= budget.limit(),
                "over budget after push {i}"
            );
            let held: usize = caches.iter().map(|c| c.bytes()).sum();
            assert_eq!(budget.used(), held);
            if i % 97 == 0 {
                caches[p].truncate(next[p].saturating_sub(4));
                let held: usize = caches.iter().map(|c| c.bytes()).sum();
                assert_eq!(budget.used(), held);
            }
        }
        assert!(budget.used() > 0);
        // Stale records of truncated batches do not pile up in the admission order.
        assert!(budget.order.lock().len() <= 2 * budget.cached() + STALE_SLACK + 1);
    }

    #[test]
    fn the_oldest_batches_are_evicted_first_whichever_partition_holds_them() {
        let unit = HEADER_LEN + 100;
        let budget = TailBudget::new(3 * unit);
        let a = TailCache::new(budget.clone());
        let b = TailCache::new(budget.clone());
        a.push(vec![batch(0, 1, 100)]);
        b.push(vec![batch(0, 1, 100)]);
        a.push(vec![batch(1, 1, 100)]);
        assert_eq!(budget.used(), 3 * unit);

        b.push(vec![batch(1, 1, 100)]);
        assert_eq!(cached_offsets(&a), [1], "a's first batch was the oldest");
        assert!(
            a.read(0, 10, usize::MAX).is_none(),
            "offset 0 is read from the store"
        );
        assert_eq!(cached_offsets(&b), [0, 1]);

        a.push(vec![batch(2, 1, 100)]);
        assert_eq!(cached_offsets(&b), [1], "then b's first");
        assert_eq!(cached_offsets(&a), [1, 2]);
        assert_eq!(budget.used(), 3 * unit);
    }

    #[test]
    fn a_batch_larger_than_the_budget_is_not_kept() {
        let budget = TailBudget::new(1000);
        let cache = TailCache::new(budget.clone());
        cache.push(vec![batch(0, 1, 100)]);
        cache.push(vec![batch(1, 1, 5000)]);
        assert_eq!(budget.used(), 0);
        assert!(cache.read(1, 10, usize::MAX).is_none());
        cache.push(vec![batch(2, 1, 100)]);
        assert_eq!(cached_offsets(&cache), [2]);
    }

    #[test]
    fn a_dropped_or_cleared_cache_gives_its_bytes_back() {
        let budget = TailBudget::new(1 << 20);
        let a = TailCache::new(budget.clone());
        let b = TailCache::new(budget.clone());
        a.push(vec![batch(0, 1, 100), batch(1, 1, 100)]);
        b.push(vec![batch(0, 1, 300)]);
        drop(a);
        assert_eq!(budget.used(), HEADER_LEN + 300);
        b.clear();
        assert_eq!((budget.used(), budget.cached()), (0, 0));
        // Stale admissions are skipped, not double-counted, when eviction reaches them.
        let c = TailCache::new(TailBudget::new(0));
        c.push(vec![batch(0, 1, 1)]);
        assert_eq!(c.budget.used(), 0);
    }

    #[test]
    fn writers_admitting_at_once_leave_the_budget_consistent() {
        let budget = TailBudget::new(50_000);
        let caches: Vec<_> = (0..4).map(|_| TailCache::new(budget.clone())).collect();
        std::thread::scope(|scope| {
            for cache in &caches {
                scope.spawn(move || {
                    for i in 0..2_000u64 {
                        cache.push(vec![batch(i, 1, 100 + (i as usize % 7) * 300)]);
                        if i % 500 == 499 {
                            cache.truncate(i - 10);
                        }
                    }
                });
            }
        });
        let held: usize = caches.iter().map(|c| c.bytes()).sum();
        assert_eq!(budget.used(), held);
        assert!(budget.used() <= budget.limit());
        for cache in &caches {
            let offsets = cached_offsets(cache);
            assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
        }
        // Eviction takes the batches admitted longest ago, so the last one admitted (some
        // writer's final batch) is still cached.
        assert!(
            caches
                .iter()
                .any(|c| cached_offsets(c).last() == Some(&1_999)),
            "the batch admitted last is cached"
        );
        drop(caches);
        assert_eq!((budget.used(), budget.cached()), (0, 0));
    }
}
