//! An in-memory [`Store`]: one ordered map per column family behind a lock.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use parking_lot::RwLock;

use super::{Cf, Op, StorageError, Store, WriteBatch};

/// Ordered in-memory maps; nothing touches the disk.
#[derive(Debug, Default)]
pub struct MemStore {
    maps: RwLock<BTreeMap<Cf, BTreeMap<Vec<u8>, Bytes>>>,
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }
}

impl Store for MemStore {
    fn write(&self, batch: WriteBatch, _sync: bool) -> Result<(), StorageError> {
        let mut maps = self.maps.write();
        for op in batch.into_ops() {
            match op {
                Op::Put { cf, key, value } => {
                    maps.entry(cf).or_default().insert(key, value);
                }
                Op::Delete { cf, key } => {
                    maps.entry(cf).or_default().remove(&key);
                }
                Op::DeleteRange { cf, from, to } => {
                    let map = maps.entry(cf).or_default();
                    let doomed: Vec<Vec<u8>> = map
                        .range::<[u8], _>((Bound::Included(&from[..]), Bound::Excluded(&to[..])))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for key in doomed {
                        map.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        Ok(self.maps.read().get(&cf).and_then(|m| m.get(key).cloned()))
    }

    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, StorageError> {
        let maps = self.maps.read();
        let Some(map) = maps.get(&cf) else {
            return Ok(Vec::new());
        };
        Ok(map
            .range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn seek_prev(
        &self,
        cf: Cf,
        lower: &[u8],
        at: &[u8],
    ) -> Result<Option<(Vec<u8>, Bytes)>, StorageError> {
        let maps = self.maps.read();
        let Some(map) = maps.get(&cf) else {
            return Ok(None);
        };
        Ok(map
            .range::<[u8], _>((Bound::Included(lower), Bound::Included(at)))
            .next_back()
            .map(|(k, v)| (k.clone(), v.clone())))
    }

    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn fsyncs(&self) -> u64 {
        0
    }
}
