//! [`GroupStateMachine`]: openraft's state machine for one raft group, over an [`Apply`].
//!
//! The raft side (last applied log id, membership, snapshots) lives here; what an entry means
//! lives in the [`Apply`] the engine implements (metadata commands for the metadata group,
//! partition entries for a partition's group).
//!
//! **Write, then apply.** The entries of a run (up to `APPLY_CHUNK` of them) are first written:
//! the [`Apply`] puts each one's disk changes into one [`WriteBatch`], together with the group's
//! new applied record, so after a crash the disk holds either all of a run or none of it, and
//! openraft re-applies from the applied log id on disk (up to the committed id the log store
//! saved). Only after that write returned does memory change: the [`Apply`] applies each entry,
//! the applied log id and membership advance, and each client's reply is sent. A failed write is
//! a storage error that stops the group, with memory still matching the disk. The write is not
//! synced: the entries are already durable in the raft log, and RocksDB replays its write-ahead
//! log in order, so a synced write that follows (a snapshot, a vote, an append) makes every
//! earlier apply durable too. openraft 0.10 hands the entries as a stream of
//! `(entry, responder)`.
//!
//! **Snapshots** are the [`Apply`]'s encoded state plus the raft meta, stored in `raft_state`
//! (synced) and installed in the same two phases. A partition group's is a small record naming
//! its log range (its batches stream beside it, from the store, see `partition_snapshot.rs`),
//! so building one reads no batch and costs the apply task nothing. Installing one also records
//! that no entry up to its last log id is needed any more (`RetainedFrom`).

use std::io;
use std::sync::Arc;

use futures::{Stream, StreamExt, TryStreamExt};
use parking_lot::Mutex;

use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::{EntryPayload, OptionalSend, StoredMembership};

use super::keys::{self, GroupId, StateKey};
use super::log_store::LogTail;
use super::{GroupConfig, blocking, encode, io_err, read_state};
use crate::storage::{Cf, StorageError, Store, WriteBatch};

type Membership<C> = StoredMembershipOf<C>;
type Meta<C> = SnapshotMetaOf<C>;

/// How many committed entries one batch write covers at most: a follower catching up applies
/// long runs, and each chunk is one write.
const APPLY_CHUNK: usize = 1024;

/// What a group's committed entries mean: the engine implements it per kind of group.
///
/// Applying is two phases, as everywhere in the engine (docs/ARCHITECTURE.md): first every
/// entry of a run is **written** into one [`WriteBatch`] (`write`, which cannot change memory:
/// it takes `&self`); the batch is written with the group's applied log id; only after that
/// write succeeded is each entry **applied** to memory (`apply`, in log order), and its reply
/// sent. A failed write changes nothing in memory: the group stops with a storage error, and
/// memory still matches the disk.
///
/// **State carried between writes.** The writes of a run see the memory as it was before the
/// run, so an entry whose disk changes depend on the entries before it in the same run (the
/// next offset to assign, a producer's last sequence) reads and advances that in
/// [`Apply::Staged`]: `stage` makes it from the applied state at the start of a run, each
/// `write` advances it, and the same value goes on to the `apply` calls of the run, which can
/// take what the write fixed (say, the base offset of an entry) instead of computing it again.
pub trait Apply<C: GroupConfig>: Send + Sync + 'static {
    /// What the writes of one run carry from entry to entry and hand on to the applies.
    type Staged: Send;

    /// Starts a run of committed entries from the state applied so far.
    fn stage(&self) -> Self::Staged;

    /// Phase one: puts the disk changes of the payload at `log_id` in `batch`, advancing
    /// `staged`. An error is a storage failure (the group stops), never a refusal of the entry:
    /// an entry that cannot take effect still commits, and its reply says so. Async, for work
    /// that must come before the write, such as stopping a topic's writers before its delete.
    fn write(
        &self,
        staged: &mut Self::Staged,
        log_id: &LogIdOf<C>,
        data: &C::D,
        batch: &mut WriteBatch,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Phase two, once the run's batch is on disk: makes the payload's in-memory effects and
    /// returns the client's reply. Async: the engine's in-memory effects await (closing a
    /// deleted topic's partitions).
    fn apply(
        &mut self,
        staged: &mut Self::Staged,
        log_id: &LogIdOf<C>,
        data: C::D,
    ) -> impl Future<Output = C::R> + Send;

    /// Phase one of a membership entry, and of every run with the membership applied before
    /// it: the group's members as of that point of the log, the same on every replica (unlike
    /// the membership openraft reports, which takes effect when appended, before it commits).
    fn membership(&self, _staged: &mut Self::Staged, _membership: &StoredMembershipOf<C>) {}

    /// The reply for an entry without a payload (a blank or a membership entry), in phase two.
    fn no_payload(&mut self, log_id: &LogIdOf<C>) -> C::R;

    /// The state a snapshot carries, encoded. Runs on the state machine's task: it must be
    /// cheap (no store reads of the log).
    fn snapshot(&self) -> Result<Vec<u8>, StorageError>;

    /// Phase one of installing a snapshot: puts the disk changes that replace the state with
    /// `snapshot`'s in `batch` (written, synced, with the snapshot and its applied log id).
    fn write_restore(&self, snapshot: &[u8], batch: &mut WriteBatch) -> Result<(), StorageError>;

    /// Phase two of installing a snapshot, once that batch is on disk: replaces the memory.
    fn restore(&mut self, snapshot: &[u8])
    -> impl Future<Output = Result<(), StorageError>> + Send;
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
    /// The group's log as the apply follows it ([`LogTail`]): an entry is applied only once it
    /// is in the store, and the log stops holding applied entries in memory. `None` applies at
    /// once (tests that write the log themselves).
    log: Option<LogTail<C>>,
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
            log: None,
        })
    }

    /// Applies an entry only once the group's log wrote it ([`LogTail::written_through`]): a
    /// partition's readers read a batch from its raft entry, and this machine's write must
    /// follow the entries' in the store's write-ahead log, so a crash never keeps an applied
    /// record without its entry. Tells the log what it applied ([`LogTail::applied`]).
    pub fn follow_log(&mut self, log: LogTail<C>) {
        self.log = Some(log);
    }

    /// The application state.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// Applies one chunk of committed entries: writes them all in one batch with the new applied
    /// record, then, once that write returned, applies them to memory and sends the replies.
    async fn apply_chunk(&mut self, chunk: Vec<EntryResponder<C>>) -> Result<(), io::Error> {
        let Some((last, _)) = chunk.last() else {
            return Ok(());
        };
        let applied = Some(last.log_id.clone());
        let last_index = last.log_id.index;
        if let Some(log) = &mut self.log {
            log.written_through(last_index).await?;
        }
        // Apart: a responder is not `Sync`, so the writes (which await) borrow the entries only.
        let (entries, responders): (Vec<_>, Vec<_>) = chunk.into_iter().unzip();
        let mut membership = None;
        let mut staged = self.app.stage();
        self.app.membership(&mut staged, &self.membership);
        let mut batch = WriteBatch::new();
        for entry in &entries {
            match &entry.payload {
                EntryPayload::Normal(data) => self
                    .app
                    .write(&mut staged, &entry.log_id, data, &mut batch)
                    .await
                    .map_err(io_err)?,
                EntryPayload::Blank => {}
                EntryPayload::Membership(config) => {
                    let stored = StoredMembership::new(Some(entry.log_id.clone()), config.clone());
                    self.app.membership(&mut staged, &stored);
                    membership = Some(stored);
                }
            }
        }
        let membership = membership.as_ref().unwrap_or(&self.membership);
        put_applied::<C>(&mut batch, self.group, &applied, membership).map_err(io_err)?;
        blocking(&self.store, move |store| store.write(batch, false))
            .await
            .map_err(io_err)?;

        for (entry, responder) in entries.into_iter().zip(responders) {
            let log_id = entry.log_id;
            let reply = match entry.payload {
                EntryPayload::Normal(data) => self.app.apply(&mut staged, &log_id, data).await,
                EntryPayload::Blank => self.app.no_payload(&log_id),
                EntryPayload::Membership(config) => {
                    self.membership = StoredMembership::new(Some(log_id.clone()), config);
                    self.app.no_payload(&log_id)
                }
            };
            self.applied = Some(log_id);
            if let Some(responder) = responder {
                responder.send(reply);
            }
        }
        if let Some(log) = &self.log {
            log.applied(last_index);
        }
        Ok(())
    }
}

/// Puts `group`'s applied record (last applied log id and membership) in `batch`.
fn put_applied<C: GroupConfig>(
    batch: &mut WriteBatch,
    group: GroupId,
    applied: &Option<LogIdOf<C>>,
    membership: &Membership<C>,
) -> Result<(), StorageError> {
    batch.put(
        Cf::RaftState,
        keys::state(group, StateKey::Applied).to_vec(),
        encode(&(applied, membership))?,
    );
    Ok(())
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
        self.app.write_restore(&data, &mut batch).map_err(io_err)?;
        put_applied::<C>(
            &mut batch,
            self.group,
            &meta.last_log_id,
            &meta.last_membership,
        )
        .map_err(io_err)?;
        let stored = encode(&(meta, &data)).map_err(io_err)?;
        batch.put(
            Cf::RaftState,
            keys::state(self.group, StateKey::Snapshot).to_vec(),
            stored,
        );
        // The snapshot replaces every entry up to its last log id: none of them holds anything
        // the state machine still needs (a partition group's purge may now delete them).
        if let Some(last) = &meta.last_log_id {
            batch.put(
                Cf::RaftState,
                keys::state(self.group, StateKey::RetainedFrom).to_vec(),
                encode(&last.index.saturating_add(1)).map_err(io_err)?,
            );
        }
        let lock = Arc::clone(&self.snapshot_lock);
        blocking(&self.store, move |store| {
            let _replacing = lock.lock();
            store.write(batch, true)
        })
        .await
        .map_err(io_err)?;
        self.app.restore(&data).await.map_err(io_err)?;
        self.applied = meta.last_log_id.clone();
        self.membership = meta.last_membership.clone();
        tracing::info!(
            group = self.group,
            last = ?meta.last_log_id.as_ref().map(|id| id.index),
            "installed a snapshot from the leader"
        );
        Ok(())
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
