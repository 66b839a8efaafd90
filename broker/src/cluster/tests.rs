//! openraft's storage suite on both stores, and the behaviour the suite does not see: groups
//! sharing a store, payloads applied atomically with the applied log id, snapshot data.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::stream;
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

/// Keeps notes by raft index, in memory and under `Cf::Meta` `note/<group>/<index>`.
#[derive(Debug, Default)]
struct Notes {
    group: GroupId,
    notes: BTreeMap<u64, String>,
}

fn note_key(group: GroupId, index: u64) -> Vec<u8> {
    format!("note/{group}/{index:020}").into_bytes()
}

impl Apply<TestConfig> for Notes {
    fn apply(&mut self, log_id: &LogIdOf<TestConfig>, data: &Note, batch: &mut WriteBatch) -> Held {
        self.notes.insert(log_id.index, data.0.clone());
        batch.put(
            Cf::Meta,
            note_key(self.group, log_id.index),
            data.0.clone().into_bytes(),
        );
        Held(self.notes.len())
    }

    fn no_payload(&mut self, _log_id: &LogIdOf<TestConfig>) -> Held {
        Held(self.notes.len())
    }

    fn snapshot(&self) -> Result<Vec<u8>, crate::storage::StorageError> {
        encode(&self.notes)
    }

    fn restore(
        &mut self,
        snapshot: &[u8],
        batch: &mut WriteBatch,
    ) -> Result<(), crate::storage::StorageError> {
        self.notes = decode(snapshot)?;
        for (index, note) in &self.notes {
            batch.put(
                Cf::Meta,
                note_key(self.group, *index),
                note.clone().into_bytes(),
            );
        }
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
    // The payload's own write went in the same batch as the applied log id.
    assert_eq!(
        store.get(Cf::Meta, &note_key(GROUP, 2)).unwrap().unwrap(),
        &b"n2"[..]
    );
    assert!(store.get(Cf::Meta, &note_key(GROUP, 3)).unwrap().is_none());
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
        store.get(Cf::Meta, &note_key(2, 4)).unwrap().unwrap(),
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
