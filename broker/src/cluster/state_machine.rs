//! [`GroupStateMachine`]: openraft's state machine for one raft group, over an [`Apply`].
//!
//! The raft side (last applied log id, membership, snapshots) lives here; what an entry means
//! lives in the [`Apply`] the engine implements (metadata commands for the metadata group,
//! partition entries for a partition's group).
//!
//! **Apply is one write.** The changes an [`Apply`] makes for a run of entries (up to
//! `APPLY_CHUNK` of them) go into one [`WriteBatch`] together with the group's new applied
//! record, so after a crash the disk holds either all of a run or none of it, and openraft re-applies from the applied log id on disk
//! (up to the committed id the log store saved). Memory is changed as entries are applied, before
//! the write: a failed write is a fatal storage error, the raft group stops, and the node rebuilds
//! memory from disk when it restarts. The write is not synced: the entries are already durable
//! in the raft log, and RocksDB replays its write-ahead log in order, so a synced write that
//! follows (a snapshot, a vote, an append) makes every earlier apply durable too.
//! openraft 0.10 hands the entries as a stream of `(entry, responder)`; each client's reply is
//! sent once its entry's write has returned.
//!
//! **Snapshots** are the [`Apply`]'s encoded state plus the raft meta, stored whole in
//! `raft_state` (synced) and installed whole. Streaming the retained batches of a partition in
//! chunks is for the partition groups, later.

use std::io;
use std::sync::Arc;

use futures::{Stream, StreamExt, TryStreamExt};
use parking_lot::Mutex;

use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::{EntryPayload, OptionalSend, StoredMembership};

use super::keys::{self, GroupId, StateKey};
use super::{GroupConfig, blocking, encode, io_err, read_state};
use crate::storage::{Cf, StorageError, Store, WriteBatch};

type Membership<C> = StoredMembershipOf<C>;
type Meta<C> = SnapshotMetaOf<C>;

/// How many committed entries one batch write covers at most: a follower catching up applies
/// long runs, and each chunk is one write.
const APPLY_CHUNK: usize = 1024;

/// What a group's committed entries mean: the engine implements it per kind of group.
pub trait Apply<C: GroupConfig>: Send + Sync + 'static {
    /// Applies one committed payload: changes memory and puts its disk changes in `batch`,
    /// which is written with the group's applied log id once the run of entries is applied.
    fn apply(&mut self, log_id: &LogIdOf<C>, data: &C::D, batch: &mut WriteBatch) -> C::R;

    /// The response for an entry without a payload (a blank or a membership entry).
    fn no_payload(&mut self, log_id: &LogIdOf<C>) -> C::R;

    /// The state a snapshot carries, encoded.
    fn snapshot(&self) -> Result<Vec<u8>, StorageError>;

    /// Replaces the state with a snapshot's: memory now, disk changes in `batch` (written with
    /// the snapshot and the new applied log id).
    fn restore(&mut self, snapshot: &[u8], batch: &mut WriteBatch) -> Result<(), StorageError>;
}

/// The raft state machine of one group.
pub struct GroupStateMachine<C: GroupConfig, A> {
    store: Arc<dyn Store>,
    group: GroupId,
    applied: Option<LogIdOf<C>>,
    membership: Membership<C>,
    app: A,
    /// Held while the current snapshot is replaced: openraft builds snapshots in a task of their
    /// own, which may finish after a newer snapshot was installed.
    snapshot_lock: Arc<Mutex<()>>,
}

impl<C, A> GroupStateMachine<C, A>
where
    C: GroupConfig,
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

    /// Applies one chunk of committed entries: one batch write, then the replies.
    async fn apply_chunk(&mut self, chunk: Vec<EntryResponder<C>>) -> Result<(), io::Error> {
        let mut batch = WriteBatch::new();
        let mut replies = Vec::with_capacity(chunk.len());
        for (entry, responder) in chunk {
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
            replies.push((responder, reply));
        }
        self.put_applied(&mut batch).map_err(io_err)?;
        blocking(&self.store, move |store| store.write(batch, false))
            .await
            .map_err(io_err)?;
        for (responder, reply) in replies {
            if let Some(responder) = responder {
                responder.send(reply);
            }
        }
        Ok(())
    }
}

impl<C, A> RaftStateMachine<C> for GroupStateMachine<C, A>
where
    C: GroupConfig,
    A: Apply<C>,
{
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = SnapshotBuilder<C>;

    async fn applied_state(&mut self) -> Result<(Option<LogIdOf<C>>, Membership<C>), io::Error> {
        Ok((self.applied.clone(), self.membership.clone()))
    }

    async fn apply<Strm>(&mut self, entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<C>, io::Error>> + Unpin + OptionalSend,
    {
        let mut chunks = entries.try_ready_chunks(APPLY_CHUNK);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|err| err.1)?;
            self.apply_chunk(chunk).await?;
        }
        Ok(())
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

    async fn install_snapshot(&mut self, meta: &Meta<C>, data: Vec<u8>) -> Result<(), io::Error> {
        let mut batch = WriteBatch::new();
        self.app.restore(&data, &mut batch).map_err(io_err)?;
        self.applied = meta.last_log_id.clone();
        self.membership = meta.last_membership.clone();
        self.put_applied(&mut batch).map_err(io_err)?;
        let stored = encode(&(meta, &data)).map_err(io_err)?;
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
        .map_err(io_err)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<C, Vec<u8>>>, io::Error> {
        let group = self.group;
        let stored: Option<(Meta<C>, Vec<u8>)> = blocking(&self.store, move |store| {
            read_state(store, group, StateKey::Snapshot)
        })
        .await
        .map_err(io_err)?;
        Ok(stored.map(|(meta, snapshot)| SnapshotOf::<C, Vec<u8>> { meta, snapshot }))
    }
}

/// Builds a snapshot from the state a group's state machine had when the builder was made.
pub struct SnapshotBuilder<C: GroupConfig> {
    store: Arc<dyn Store>,
    group: GroupId,
    applied: Option<LogIdOf<C>>,
    membership: Membership<C>,
    data: Result<Vec<u8>, StorageError>,
    snapshot_lock: Arc<Mutex<()>>,
}

impl<C: GroupConfig> RaftSnapshotBuilder<C> for SnapshotBuilder<C> {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<C, Vec<u8>>, io::Error> {
        let data = match &self.data {
            Ok(data) => data.clone(),
            Err(err) => return Err(io_err(err)),
        };
        let meta = Meta::<C> {
            last_log_id: self.applied.clone(),
            last_membership: self.membership.clone(),
        };
        let mut batch = WriteBatch::new();
        let stored = encode(&(&meta, &data)).map_err(io_err)?;
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
        .map_err(io_err)?;
        Ok(SnapshotOf::<C, Vec<u8>> {
            meta,
            snapshot: data,
        })
    }
}
