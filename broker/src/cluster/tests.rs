//! openraft's storage suite on both stores, and the behaviour the suite does not see: groups
//! sharing a store, payloads applied atomically with the applied log id, snapshot data.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::stream;
use openraft::entry::RaftEntry;
use openraft::storage::{RaftLogReader, RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::{EntryPayload, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};

use super::*;
use crate::storage::{MemStore, RocksStore, RocksTuning, WriteBatch};

/// A note to keep, the payload of the test groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note(String);

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many notes the group held after applying an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held(usize);

openraft::declare_raft_types!(
    pub TestConfig:
        D = Note,
        R = Held,
);

/// Keeps notes in the order they were applied, in memory and under `Cf::Meta`
/// `note/<group>/<position>`. Positions are assigned at apply and are not raft indexes (blank
/// and membership entries take none), as offsets will be: a run's writes carry the next
/// position in [`Apply::Staged`].
#[derive(Debug, Default)]
pub(super) struct Notes {
    group: GroupId,
    notes: Vec<String>,
}

fn note_key(group: GroupId, position: usize) -> Vec<u8> {
    format!("note/{group}/{position:020}").into_bytes()
}

impl Apply<TestConfig> for Notes {
    /// The position the next note written in this run takes.
    type Staged = usize;

    fn stage(&self) -> usize {
        self.notes.len()
    }

    async fn write(
        &self,
        next: &mut usize,
        _log_id: &LogIdOf<TestConfig>,
        data: &Note,
        batch: &mut WriteBatch,
    ) -> Result<(), crate::storage::StorageError> {
        batch.put(
            Cf::Meta,
            note_key(self.group, *next),
            data.0.clone().into_bytes(),
        );
        *next += 1;
        Ok(())
    }

    async fn apply(
        &mut self,
        _next: &mut usize,
        _log_id: &LogIdOf<TestConfig>,
        data: Note,
    ) -> Held {
        self.notes.push(data.0);
        Held(self.notes.len())
    }

    fn no_payload(&mut self, _log_id: &LogIdOf<TestConfig>) -> Held {
        Held(self.notes.len())
    }

    fn snapshot(&self) -> Result<Vec<u8>, crate::storage::StorageError> {
        encode(&self.notes)
    }

    fn write_restore(
        &self,
        snapshot: &[u8],
        batch: &mut WriteBatch,
    ) -> Result<(), crate::storage::StorageError> {
        let notes: Vec<String> = decode(snapshot)?;
        for (position, note) in notes.into_iter().enumerate() {
            batch.put(Cf::Meta, note_key(self.group, position), note.into_bytes());
        }
        Ok(())
    }

    async fn restore(&mut self, snapshot: &[u8]) -> Result<(), crate::storage::StorageError> {
        self.notes = decode(snapshot)?;
        Ok(())
    }
}

type Log = LogStore<TestConfig>;
type Machine = GroupStateMachine<TestConfig, Notes>;

/// The group every suite run uses; its neighbours hold entries the suite must never see.
const GROUP: GroupId = 256;

fn open_group(store: &Arc<dyn Store>, group: GroupId) -> (Log, Machine) {
    let notes = Notes {
        group,
        ..Notes::default()
    };
    let machine = GroupStateMachine::open(Arc::clone(store), group, notes).unwrap();
    (LogStore::new(Arc::clone(store), group), machine)
}

fn log_id(term: u64, index: u64) -> LogIdOf<TestConfig> {
    openraft::testing::log_id::<TestConfig>(term, 0, index)
}

fn vote(term: u64, node: u64) -> VoteOf<TestConfig> {
    VoteOf::<TestConfig>::new(term, node)
}

fn entry(term: u64, index: u64, note: &str) -> EntryOf<TestConfig> {
    EntryOf::<TestConfig> {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Note(note.to_string())),
    }
}

/// Applies `entries` as openraft does, without responders.
async fn apply(machine: &mut Machine, entries: Vec<EntryOf<TestConfig>>) {
    let entries = entries.into_iter().map(|entry| Ok((entry, None)));
    machine.apply(stream::iter(entries)).await.unwrap();
}

/// Fills the groups just below and above [`GROUP`], whose keys sit next to its own (255 and 257
/// differ from 256 in the last byte of the group id), with entries and raft state.
async fn fill_neighbours(store: &Arc<dyn Store>) {
    for group in [GROUP - 1, GROUP + 1] {
        let (mut log, _) = open_group(store, group);
        let entries = (0..=30).map(|i| entry(9, i, "neighbour"));
        log.blocking_append(entries).await.unwrap();
        log.save_vote(&vote(9, 1)).await.unwrap();
        log.purge(log_id(9, 0)).await.unwrap();
    }
}

struct RocksBuilder;

impl StoreBuilder<TestConfig, Log, Machine, tempfile::TempDir> for RocksBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, Log, Machine), openraft::StorageError<TestConfig>> {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(RocksStore::open(dir.path(), &RocksTuning::default()).unwrap());
        fill_neighbours(&store).await;
        let (log, machine) = open_group(&store, GROUP);
        Ok((dir, log, machine))
    }
}

struct MemBuilder;

impl StoreBuilder<TestConfig, Log, Machine> for MemBuilder {
    async fn build(&self) -> Result<((), Log, Machine), openraft::StorageError<TestConfig>> {
        let store: Arc<dyn Store> = Arc::new(MemStore::new());
        fill_neighbours(&store).await;
        let (log, machine) = open_group(&store, GROUP);
        Ok(((), log, machine))
    }
}

#[tokio::test]
async fn openraft_storage_suite_passes_on_rocksdb() {
    Suite::test_all(RocksBuilder).await.unwrap();
}

#[tokio::test]
async fn openraft_storage_suite_passes_on_the_memory_store() {
    Suite::test_all(MemBuilder).await.unwrap();
}

fn rocks(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(RocksStore::open(dir.path(), &RocksTuning::default()).unwrap())
}

#[tokio::test]
async fn groups_sharing_a_store_keep_their_logs_and_votes_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = rocks(&dir);
    let (mut one, _) = open_group(&store, 1);
    let (mut two, _) = open_group(&store, 2);
    one.blocking_append((0..300).map(|i| entry(1, i, "one")))
        .await
        .unwrap();
    two.blocking_append((0..5).map(|i| entry(2, i, "two")))
        .await
        .unwrap();
    one.save_vote(&vote(1, 1)).await.unwrap();
    two.save_vote(&vote(2, 2)).await.unwrap();

    one.purge(log_id(1, 255)).await.unwrap();
    two.truncate_after(Some(log_id(2, 2))).await.unwrap();

    let left: Vec<u64> = one
        .try_get_log_entries(..)
        .await
        .unwrap()
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    assert_eq!(
        left,
        (256..300).collect::<Vec<_>>(),
        "index 256 sorts after 255"
    );
    let two_entries = two.try_get_log_entries(..).await.unwrap();
    assert_eq!(two_entries.len(), 3);
    assert!(
        two_entries
            .iter()
            .all(|e| e.payload == EntryPayload::Normal(Note("two".into())))
    );
    assert_eq!(one.read_vote().await.unwrap(), Some(vote(1, 1)));
    assert_eq!(two.read_vote().await.unwrap(), Some(vote(2, 2)));
    let state = two.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, None);
    assert_eq!(state.last_log_id, Some(log_id(2, 2)));
}

#[tokio::test]
async fn the_log_vote_and_applied_state_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = rocks(&dir);
        let (mut log, mut machine) = open_group(&store, GROUP);
        log.blocking_append((1..=3).map(|i| entry(4, i, &format!("n{i}"))))
            .await
            .unwrap();
        log.save_vote(&vote(4, 7)).await.unwrap();
        log.save_committed(Some(log_id(4, 3))).await.unwrap();
        let entries = log.try_get_log_entries(1..=2).await.unwrap();
        apply(&mut machine, entries).await;
        assert_eq!(machine.app().notes.len(), 2);
        // The committed id is queued to the log's writer: a group stops after its last write.
        log.drained().await;
    }
    let store = rocks(&dir);
    let (mut log, mut machine) = open_group(&store, GROUP);
    assert_eq!(log.read_vote().await.unwrap(), Some(vote(4, 7)));
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(4, 3)));
    assert_eq!(
        log.get_log_state().await.unwrap().last_log_id,
        Some(log_id(4, 3))
    );
    let (applied, _) = machine.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(4, 2)));
    // The payloads' own writes went in the same batch as the applied log id, each note at the
    // position the run's staging gave it.
    assert_eq!(
        store.get(Cf::Meta, &note_key(GROUP, 0)).unwrap().unwrap(),
        &b"n1"[..]
    );
    assert_eq!(
        store.get(Cf::Meta, &note_key(GROUP, 1)).unwrap().unwrap(),
        &b"n2"[..]
    );
    assert!(store.get(Cf::Meta, &note_key(GROUP, 2)).unwrap().is_none());
}

/// A memory store whose writes fail while `failing` is set.
struct FlakyStore {
    inner: MemStore,
    failing: AtomicBool,
}

impl Store for FlakyStore {
    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), crate::storage::StorageError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(crate::storage::StorageError("disk gone".into()));
        }
        self.inner.write(batch, sync)
    }
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Bytes>, crate::storage::StorageError> {
        self.inner.get(cf, key)
    }
    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, crate::storage::StorageError> {
        self.inner.scan(cf, from, to, limit)
    }
    fn seek_prev(
        &self,
        cf: Cf,
        lower: &[u8],
        at: &[u8],
    ) -> Result<Option<(Vec<u8>, Bytes)>, crate::storage::StorageError> {
        self.inner.seek_prev(cf, lower, at)
    }
    fn sync(&self) -> Result<(), crate::storage::StorageError> {
        Ok(())
    }
    fn fsyncs(&self) -> u64 {
        0
    }
}

#[tokio::test]
async fn memory_changes_only_after_the_runs_write_succeeded() {
    let flaky = Arc::new(FlakyStore {
        inner: MemStore::new(),
        failing: AtomicBool::new(false),
    });
    let store: Arc<dyn Store> = flaky.clone();
    let (mut log, mut machine) = open_group(&store, GROUP);
    let run = vec![
        entry(1, 1, "n1"),
        EntryOf::<TestConfig>::new_blank(log_id(1, 2)),
        entry(1, 3, "n3"),
    ];
    log.blocking_append(run.clone()).await.unwrap();

    flaky.failing.store(true, Ordering::SeqCst);
    let entries = run.clone().into_iter().map(|entry| Ok((entry, None)));
    let failed = machine.apply(stream::iter(entries)).await;
    assert!(failed.is_err(), "a failed write fails the apply");
    assert!(machine.app().notes.is_empty(), "memory is untouched");
    assert_eq!(machine.applied_state().await.unwrap().0, None);

    flaky.failing.store(false, Ordering::SeqCst);
    apply(&mut machine, run).await;
    assert_eq!(machine.app().notes, ["n1", "n3"]);
    assert_eq!(machine.applied_state().await.unwrap().0, Some(log_id(1, 3)));
    // The blank took no position: the run's writes carried the next position from n1 to n3.
    assert_eq!(
        store.get(Cf::Meta, &note_key(GROUP, 1)).unwrap().unwrap(),
        &b"n3"[..]
    );
}

#[tokio::test]
async fn an_installed_snapshot_carries_the_application_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = rocks(&dir);
    let (mut leader_log, mut leader) = open_group(&store, 1);
    let (_, mut follower) = open_group(&store, 2);
    leader_log
        .blocking_append((1..=4).map(|i| entry(1, i, &format!("n{i}"))))
        .await
        .unwrap();
    let entries = leader_log.try_get_log_entries(1..5).await.unwrap();
    apply(&mut leader, entries).await;

    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    follower
        .install_snapshot(&snapshot.meta, snapshot.snapshot.clone())
        .await
        .unwrap();

    assert_eq!(follower.app().notes, leader.app().notes);
    assert_eq!(follower.app().notes.len(), 4);
    assert_eq!(
        store.get(Cf::Meta, &note_key(2, 3)).unwrap().unwrap(),
        &b"n4"[..]
    );
    let current = follower.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snapshot.meta);
    assert_eq!(
        follower.applied_state().await.unwrap().0,
        Some(log_id(1, 4))
    );
}

#[tokio::test]
async fn a_snapshot_built_before_a_newer_install_does_not_replace_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = rocks(&dir);
    let (mut log, mut leader) = open_group(&store, 1);
    let (_, mut follower) = open_group(&store, 2);
    log.blocking_append((1..=4).map(|i| entry(1, i, &format!("n{i}"))))
        .await
        .unwrap();
    apply(&mut follower, log.try_get_log_entries(1..=2).await.unwrap()).await;
    let mut stale = follower.get_snapshot_builder().await;
    apply(&mut leader, log.try_get_log_entries(1..=4).await.unwrap()).await;
    let newer = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    follower
        .install_snapshot(&newer.meta, newer.snapshot)
        .await
        .unwrap();

    let built = stale.build_snapshot().await.unwrap();
    assert_eq!(built.meta.last_log_id, Some(log_id(1, 2)));
    let current = follower.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(
        current.meta, newer.meta,
        "the installed snapshot stays current"
    );
}
