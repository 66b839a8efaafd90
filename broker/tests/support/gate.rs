//! A store whose point reads of batches (`Cf::Log`, `Cf::RaftLog` gets) can be held: what a
//! partition snapshot's send does, and nothing on the apply path does (the raft log is read by
//! scans).

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use rapidmq_broker::storage::{Cf, StorageError, Store, WriteBatch};
use tokio::sync::watch;

/// Holds batch reads once closed, after letting `allow` more through.
#[derive(Default)]
pub struct Gate {
    state: Mutex<(bool, usize)>,
    opened: Condvar,
    /// How many reads were held so far.
    held: watch::Sender<usize>,
}

impl Gate {
    /// Holds every batch read after the next `allow`.
    pub fn close_after(&self, allow: usize) {
        *self.state.lock() = (true, allow);
    }

    /// Lets every read through again.
    pub fn open(&self) {
        self.state.lock().0 = false;
        self.opened.notify_all();
    }

    /// Watches how many reads were held.
    pub fn held(&self) -> watch::Receiver<usize> {
        self.held.subscribe()
    }

    fn pass(&self) {
        let mut state = self.state.lock();
        if !state.0 {
            return;
        }
        if state.1 > 0 {
            state.1 -= 1;
            return;
        }
        self.held.send_modify(|held| *held += 1);
        while state.0 {
            self.opened.wait(&mut state);
        }
    }
}

/// `inner`, with its batch reads going through `gate`.
pub struct Gated {
    pub inner: Arc<dyn Store>,
    pub gate: Arc<Gate>,
}

impl Store for Gated {
    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), StorageError> {
        self.inner.write(batch, sync)
    }

    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        if matches!(cf, Cf::Log | Cf::RaftLog) {
            self.gate.pass();
        }
        self.inner.get(cf, key)
    }

    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, StorageError> {
        self.inner.scan(cf, from, to, limit)
    }

    fn seek_prev(
        &self,
        cf: Cf,
        lower: &[u8],
        at: &[u8],
    ) -> Result<Option<(Vec<u8>, Bytes)>, StorageError> {
        self.inner.seek_prev(cf, lower, at)
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.inner.sync()
    }

    fn fsyncs(&self) -> u64 {
        self.inner.fsyncs()
    }
}
