//! Per-topic `msg-id` dedup: a message whose `msg-id` header was already accepted within the
//! topic's dedup window is dropped.
//!
//! Records live in the `dedup` column family (written with the append that accepted the id), so
//! dedup holds across restarts. A small in-memory map of ids reserved by batches still being
//! committed closes the race between two concurrent publishes of the same id; a failed append
//! releases its reservations.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::keys;
use crate::error::Result;
use crate::storage::{Cf, Store};

pub struct Dedup {
    store: Arc<dyn Store>,
    /// id → expiry, for ids accepted since the broker started (and reservations in flight).
    recent: Mutex<HashMap<Bytes, i64>>,
}

impl Dedup {
    pub fn new(store: Arc<dyn Store>) -> Dedup {
        Dedup {
            store,
            recent: Mutex::new(HashMap::new()),
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
        recent.insert(id.clone(), expires_ms);
        if recent.len() > 100_000 {
            recent.retain(|_, expiry| *expiry > now_ms);
        }
        Ok(true)
    }

    /// Forgets reservations of a batch that was not committed.
    pub fn release(&self, ids: &[Bytes]) {
        let mut recent = self.recent.lock();
        for id in ids {
            recent.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemStore, WriteBatch};

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
}
