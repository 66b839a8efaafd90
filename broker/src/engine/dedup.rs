//! Per-topic `msg-id` dedup: a message whose `msg-id` header was already accepted within the
//! topic's dedup window is dropped.
//!
//! Records live in the `dedup` column family (written with the append that accepted the id), so
//! dedup holds across restarts. An in-memory LRU of recently reserved and accepted ids answers
//! most checks without a store read and closes the race between two concurrent publishes of the
//! same id; a failed append releases its reservations. The LRU holds at most
//! [`MAX_CACHED_IDS`] ids per topic and evicts the least recently used one in constant time: an
//! evicted id is still found in the store. [`Dedup::purge_expired`], run by the retention task,
//! deletes records whose window has passed, so the column family holds about one window of ids.

use std::num::NonZeroUsize;
use std::sync::Arc;

use bytes::Bytes;
use lru::LruCache;
use parking_lot::Mutex;

use super::keys;
use crate::error::Result;
use crate::storage::{Cf, Store, WriteBatch};

/// Ids each topic keeps in memory. Ids reserved by batches still being committed must fit, or a
/// concurrent duplicate of an evicted one could be accepted before its record is stored.
pub const MAX_CACHED_IDS: usize = 100_000;

/// Records read per store scan when purging.
const PURGE_CHUNK: usize = 4096;

pub struct Dedup {
    store: Arc<dyn Store>,
    /// id → expiry, for ids reserved or accepted since the broker started.
    recent: Mutex<LruCache<Bytes, i64>>,
}

impl Dedup {
    pub fn new(store: Arc<dyn Store>) -> Dedup {
        Dedup::with_capacity(store, MAX_CACHED_IDS)
    }

    fn with_capacity(store: Arc<dyn Store>, ids: usize) -> Dedup {
        Dedup {
            store,
            recent: Mutex::new(LruCache::new(
                NonZeroUsize::new(ids).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// Reserves `id` unless it was accepted within the window: true when the message is new.
    pub fn reserve(&self, topic_id: u32, id: &Bytes, now_ms: i64, expires_ms: i64) -> Result<bool> {
        let mut recent = self.recent.lock();
        if let Some(&expiry) = recent.get(id)
            && expiry > now_ms
        {
            return Ok(false);
        }
        let stored = self
            .store
            .get(Cf::Dedup, &keys::dedup_key(topic_id, id))?
            .and_then(|v| v.as_ref().try_into().ok().map(i64::from_be_bytes));
        if stored.is_some_and(|expiry| expiry > now_ms) {
            return Ok(false);
        }
        recent.put(id.clone(), expires_ms);
        Ok(true)
    }

    /// Forgets reservations of a batch that was not committed.
    pub fn release(&self, ids: &[Bytes]) {
        let mut recent = self.recent.lock();
        for id in ids {
            recent.pop(id);
        }
    }

    /// Deletes the topic's records whose window ended at or before `now_ms`; returns how many.
    /// An id reserved again since (still in memory with a later expiry) keeps its record. Blocks
    /// on storage.
    pub fn purge_expired(&self, topic_id: u32, now_ms: i64) -> Result<usize> {
        let prefix = topic_id.to_be_bytes();
        let end = keys::prefix_end(&prefix);
        let mut from = prefix.to_vec();
        let mut removed = 0;
        loop {
            let chunk = self.store.scan(Cf::Dedup, &from, &end, PURGE_CHUNK)?;
            let Some((last, _)) = chunk.last() else {
                break;
            };
            // The smallest key after `last`.
            from = last.clone();
            from.push(0);
            let mut batch = WriteBatch::new();
            {
                let recent = self.recent.lock();
                for (key, value) in &chunk {
                    let expiry = value.as_ref().try_into().ok().map(i64::from_be_bytes);
                    let reserved_again = recent
                        .peek(&key[prefix.len()..])
                        .is_some_and(|&expiry| expiry > now_ms);
                    if expiry.is_none_or(|expiry| expiry <= now_ms) && !reserved_again {
                        batch.delete(Cf::Dedup, key.clone());
                        removed += 1;
                    }
                }
            }
            if !batch.is_empty() {
                self.store.write(batch, false)?;
            }
            if chunk.len() < PURGE_CHUNK {
                break;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStore;

    #[test]
    fn an_id_is_accepted_once_per_window_and_again_after_it() {
        let store: Arc<dyn Store> = Arc::new(MemStore::new());
        let dedup = Dedup::new(store.clone());
        let id = Bytes::from_static(b"order-1");
        assert!(dedup.reserve(1, &id, 1000, 2000).unwrap());
        assert!(
            !dedup.reserve(1, &id, 1500, 2500).unwrap(),
            "within the window"
        );
        assert!(
            dedup.reserve(1, &id, 2001, 3001).unwrap(),
            "after the window"
        );

        // A failed batch releases its reservation.
        let other = Bytes::from_static(b"order-2");
        assert!(dedup.reserve(1, &other, 1000, 2000).unwrap());
        dedup.release(std::slice::from_ref(&other));
        assert!(dedup.reserve(1, &other, 1000, 2000).unwrap());

        // Records written with appends are honoured by a fresh instance (a restart).
        let mut batch = WriteBatch::new();
        batch.put(
            Cf::Dedup,
            keys::dedup_key(1, b"order-3"),
            Bytes::copy_from_slice(&5000i64.to_be_bytes()),
        );
        store.write(batch, true).unwrap();
        let restarted = Dedup::new(store);
        assert!(
            !restarted
                .reserve(1, &Bytes::from_static(b"order-3"), 4000, 9000)
                .unwrap()
        );
    }

    fn record(store: &Arc<dyn Store>, topic_id: u32, id: &[u8], expiry: i64) {
        let mut batch = WriteBatch::new();
        batch.put(
            Cf::Dedup,
            keys::dedup_key(topic_id, id),
            Bytes::copy_from_slice(&expiry.to_be_bytes()),
        );
        store.write(batch, true).unwrap();
    }

    #[test]
    fn memory_holds_a_bounded_number_of_ids_and_evicted_ones_are_found_in_the_store() {
        let store: Arc<dyn Store> = Arc::new(MemStore::new());
        let dedup = Dedup::with_capacity(store.clone(), 3);
        for i in 0..10u8 {
            let id = Bytes::from(vec![i]);
            assert!(dedup.reserve(1, &id, 1000, 2000).unwrap());
            // The append that accepted it stores its record.
            record(&store, 1, &id, 2000);
        }
        assert_eq!(
            dedup.recent.lock().len(),
            3,
            "only the 3 most recent ids stay"
        );
        for i in 0..10u8 {
            assert!(
                !dedup.reserve(1, &Bytes::from(vec![i]), 1500, 2500).unwrap(),
                "id {i} is still a duplicate within its window"
            );
        }
    }

    #[test]
    fn purge_deletes_only_this_topics_records_whose_window_has_passed() {
        let store: Arc<dyn Store> = Arc::new(MemStore::new());
        let dedup = Dedup::new(store.clone());
        for i in 0..10_000u32 {
            let expiry = if i % 2 == 0 { 1000 } else { 3000 };
            record(&store, 7, &i.to_be_bytes(), expiry);
        }
        record(&store, 8, b"other topic", 1000);
        // Reserved again after its window, before the new record is written: kept.
        let again = Bytes::copy_from_slice(&0u32.to_be_bytes());
        assert!(dedup.reserve(7, &again, 2000, 4000).unwrap());

        assert_eq!(dedup.purge_expired(7, 2000).unwrap(), 4_999);
        let left = store.scan(Cf::Dedup, &[], &[0xff; 8], usize::MAX).unwrap();
        assert_eq!(left.len(), 5_002);
        assert!(
            store
                .get(Cf::Dedup, &keys::dedup_key(8, b"other topic"))
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .get(Cf::Dedup, &keys::dedup_key(7, &again))
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .get(Cf::Dedup, &keys::dedup_key(7, &2u32.to_be_bytes()))
                .unwrap()
                .is_none()
        );
        assert_eq!(dedup.purge_expired(7, 2000).unwrap(), 0);
    }
}
