//! [`GroupStateMachine`]: openraft's state machine for one raft group, over an [`Apply`].
//!
//! The raft side (last applied log id, membership, snapshots) lives here; what an entry means
//! lives in the [`Apply`] the engine implements (metadata commands for the metadata group,
//! partition entries for a partition's group).
//!
//! **Apply is one write.** The changes an [`Apply`] makes for a run of entries go into one
//! [`WriteBatch`] together with the group's new applied record, so after a crash the disk holds
//! either all of a run or none of it, and openraft re-applies from the applied log id on disk
//! (up to the committed id the log store saved). Memory is changed as entries are applied, before
//! the write: a failed write is a fatal storage error, the raft group stops, and the node rebuilds
//! memory from disk when it restarts. The write is not synced: the entries are already durable
//! in the raft log, and RocksDB replays its write-ahead log in order, so a synced write that
//! follows (a snapshot, a vote, an append) makes every earlier apply durable too.
//!
//! **Snapshots** are the [`Apply`]'s encoded state plus the raft meta, stored whole in
//! `raft_state` (synced) and installed whole. Streaming the retained batches of a partition in
//! chunks is for the partition groups, later.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftTypeConfig, SnapshotMeta, StorageIOError,
    StoredMembership,
};

use super::keys::{self, GroupId, StateKey};
use super::{blocking, encode, read_state};
use crate::storage::{Cf, StorageError, Store, WriteBatch};

type RaftResult<T, C> = Result<T, openraft::StorageError<<C as RaftTypeConfig>::NodeId>>;
type Membership<C> = StoredMembership<<C as RaftTypeConfig>::NodeId, <C as RaftTypeConfig>::Node>;
type Meta<C> = SnapshotMeta<<C as RaftTypeConfig>::NodeId, <C as RaftTypeConfig>::Node>;

/// What a group's committed entries mean: the engine implements it per kind of group.
pub trait Apply<C: RaftTypeConfig>: Send + Sync + 'static {
    /// Applies one committed payload: changes memory and puts its disk changes in `batch`,
    /// which is written with the group's applied log id once the run of entries is applied.
    fn apply(&mut self, log_id: &LogId<C::NodeId>, data: &C::D, batch: &mut WriteBatch) -> C::R;

    /// The response for an entry without a payload (a blank or a membership entry).
    fn no_payload(&mut self, log_id: &LogId<C::NodeId>) -> C::R;

    /// The state a snapshot carries, encoded.
    fn snapshot(&self) -> Result<Vec<u8>, StorageError>;

    /// Replaces the state with a snapshot's: memory now, disk changes in `batch` (written with
    /// the snapshot and the new applied log id).
    fn restore(&mut self, snapshot: &[u8], batch: &mut WriteBatch) -> Result<(), StorageError>;
}

/// The raft state machine of one group.
pub struct GroupStateMachine<C: RaftTypeConfig, A> {
    store: Arc<dyn Store>,
    group: GroupId,
    applied: Option<LogId<C::NodeId>>,
    membership: Membership<C>,
    app: A,
    /// Held while the current snapshot is replaced: openraft builds snapshots in a task of their
    /// own, which may finish after a newer snapshot was installed.
    snapshot_lock: Arc<Mutex<()>>,
}

impl<C, A> GroupStateMachine<C, A>
where
    C: RaftTypeConfig<Entry = Entry<C>, SnapshotData = Cursor<Vec<u8>>>,
    A: Apply<C>,
{
    /// The state machine of `group`, with the applied log id and membership it last wrote.
    /// `app` must already hold the state its own records on disk describe. Blocks.
    pub fn open(store: Arc<dyn Store>, group: GroupId, app: A) -> Result<Self, StorageError> {
        let (applied, membership) =
            read_state(&*store, group, StateKey::Applied)?.unwrap_or_default();
        Ok(GroupStateMachine {
            store,
            group,
            applied,
            membership,
            app,
            snapshot_lock: Arc::default(),
        })
    }

    /// The application state.
    pub fn app(&self) -> &A {
        &self.app
    }

    fn put_applied(&self, batch: &mut WriteBatch) -> Result<(), StorageError> {
        let applied = encode(&(&self.applied, &self.membership))?;
        batch.put(
            Cf::RaftState,
            keys::state(self.group, StateKey::Applied).to_vec(),
            applied,
        );
        Ok(())
    }
}

fn sm_read_err<C: RaftTypeConfig>(err: StorageError) -> openraft::StorageError<C::NodeId> {
    StorageIOError::read_state_machine(&err).into()
}

fn sm_write_err<C: RaftTypeConfig>(err: StorageError) -> openraft::StorageError<C::NodeId> {
    StorageIOError::write_state_machine(&err).into()
}

fn snapshot_err<C: RaftTypeConfig>(err: StorageError) -> openraft::StorageError<C::NodeId> {
    StorageIOError::write_snapshot(None, &err).into()
}

impl<C, A> RaftStateMachine<C> for GroupStateMachine<C, A>
where
    C: RaftTypeConfig<Entry = Entry<C>, SnapshotData = Cursor<Vec<u8>>>,
    A: Apply<C>,
{
    type SnapshotBuilder = SnapshotBuilder<C>;

    async fn applied_state(&mut self) -> RaftResult<(Option<LogId<C::NodeId>>, Membership<C>), C> {
        Ok((self.applied.clone(), self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> RaftResult<Vec<C::R>, C>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::new();
        let mut replies = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            let reply = match entry.payload {
                EntryPayload::Normal(data) => self.app.apply(&log_id, &data, &mut batch),
                EntryPayload::Blank => self.app.no_payload(&log_id),
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(log_id.clone()), membership);
                    self.app.no_payload(&log_id)
                }
            };
            self.applied = Some(log_id);
            replies.push(reply);
        }
        if replies.is_empty() {
            return Ok(replies);
        }
        self.put_applied(&mut batch).map_err(sm_write_err::<C>)?;
        blocking(&self.store, move |store| store.write(batch, false))
            .await
            .map_err(sm_write_err::<C>)?;
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            store: Arc::clone(&self.store),
            group: self.group,
            applied: self.applied.clone(),
            membership: self.membership.clone(),
            data: self.app.snapshot(),
            snapshot_lock: Arc::clone(&self.snapshot_lock),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> RaftResult<Box<Cursor<Vec<u8>>>, C> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta<C>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> RaftResult<(), C> {
        let data = snapshot.into_inner();
        let mut batch = WriteBatch::new();
        self.app
            .restore(&data, &mut batch)
            .map_err(snapshot_err::<C>)?;
        self.applied = meta.last_log_id.clone();
        self.membership = meta.last_membership.clone();
        self.put_applied(&mut batch).map_err(snapshot_err::<C>)?;
        let stored = encode(&(meta, &data)).map_err(snapshot_err::<C>)?;
        batch.put(
            Cf::RaftState,
            keys::state(self.group, StateKey::Snapshot).to_vec(),
            stored,
        );
        let lock = Arc::clone(&self.snapshot_lock);
        blocking(&self.store, move |store| {
            let _replacing = lock.lock();
            store.write(batch, true)
        })
        .await
        .map_err(snapshot_err::<C>)
    }

    async fn get_current_snapshot(&mut self) -> RaftResult<Option<Snapshot<C>>, C> {
        let group = self.group;
        let stored: Option<(Meta<C>, Vec<u8>)> = blocking(&self.store, move |store| {
            read_state(store, group, StateKey::Snapshot)
        })
        .await
        .map_err(sm_read_err::<C>)?;
        Ok(stored.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// Builds a snapshot from the state a group's state machine had when the builder was made.
pub struct SnapshotBuilder<C: RaftTypeConfig> {
    store: Arc<dyn Store>,
    group: GroupId,
    applied: Option<LogId<C::NodeId>>,
    membership: Membership<C>,
    data: Result<Vec<u8>, StorageError>,
    snapshot_lock: Arc<Mutex<()>>,
}

/// Tells snapshots of the same log id apart within a process; the time tells them apart across
/// restarts.
static SNAPSHOT_SEQ: AtomicU64 = AtomicU64::new(0);

impl<C> RaftSnapshotBuilder<C> for SnapshotBuilder<C>
where
    C: RaftTypeConfig<Entry = Entry<C>, SnapshotData = Cursor<Vec<u8>>>,
{
    async fn build_snapshot(&mut self) -> RaftResult<Snapshot<C>, C> {
        let data = match &self.data {
            Ok(data) => data.clone(),
            Err(err) => return Err(snapshot_err::<C>(StorageError(err.0.clone()))),
        };
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let index = self.applied.as_ref().map_or(0, |id| id.index);
        let meta = Meta::<C> {
            last_log_id: self.applied.clone(),
            last_membership: self.membership.clone(),
            snapshot_id: format!(
                "{}-{index}-{millis}-{}",
                self.group,
                SNAPSHOT_SEQ.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let mut batch = WriteBatch::new();
        let stored = encode(&(&meta, &data)).map_err(snapshot_err::<C>)?;
        batch.put(
            Cf::RaftState,
            keys::state(self.group, StateKey::Snapshot).to_vec(),
            stored,
        );
        let group = self.group;
        let built_up_to = meta.last_log_id.clone();
        let lock = Arc::clone(&self.snapshot_lock);
        blocking(&self.store, move |store| {
            let _replacing = lock.lock();
            // A snapshot installed while this one was being built is newer: it stays current.
            let current: Option<(Meta<C>, Vec<u8>)> = read_state(store, group, StateKey::Snapshot)?;
            if current.is_some_and(|(current, _)| current.last_log_id > built_up_to) {
                return Ok(());
            }
            store.write(batch, true)
        })
        .await
        .map_err(snapshot_err::<C>)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}
