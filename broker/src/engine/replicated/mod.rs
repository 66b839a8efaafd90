//! The engine's side of cluster mode's metadata group (docs/adr/0005-clustering.md §1, §2).
//!
//! In cluster mode [`Engine::apply`] does not write: it hands the command to the node's
//! [`MetaLog`] (the metadata raft group, `cluster::metadata`), which returns once the entry is
//! applied on this node. Every node applies every committed entry in log order, in the two
//! phases of the group's state machine:
//!
//! - **Decide** ([`Engine::decide_replicated`], phase one, before the run's batch is written):
//!   checks the command against the state applied so far plus the entries before it in the same
//!   run ([`Run`]), and either refuses it (the proposer gets the error: a concurrent create of
//!   the same topic through another node, a delete of a topic that is gone) or fixes what only
//!   the applied state can fix: a new topic's id (from the applied `next_topic_id`, so every
//!   node gives the same id) and its placement ([`placement`]: replication factor and each
//!   partition's replicas), and for what this node holds: the delayed messages a topic delete
//!   removes and a new subscription's starting cursors (clamped to this node's high
//!   watermarks; cursors are node-local). A topic being deleted is fenced here, on every
//!   node: its writers stop before the delete is written.
//! - **Apply** ([`Engine::apply_replicated`], phase two, once the batch is on disk): the
//!   in-memory effects, the same function single-node mode runs after its own write.
//!
//! Snapshots carry the replicated records of `Cf::Meta` (topics, subscriptions, users, tokens,
//! roles, bindings, tenants and the next topic id): [`Engine::metadata_records`],
//! [`Engine::write_metadata_restore`], [`Engine::restore_metadata`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::future::BoxFuture;
use rapidmq_proto::ErrorCode;

use super::command::MetaCommand;
use super::topic::TopicRecord;
use super::{Engine, TopicState, keys, scheduler, tenants};
use crate::auth::{AuthCommand, BINDING_PREFIX, ROLE_PREFIX, TOKEN_PREFIX, USER_PREFIX};
use crate::error::{Error, Result};
use crate::principal::TenantId;
use crate::storage::{Cf, Store as _, WriteBatch};
use crate::tenant::{TENANT_PREFIX, tenant_key};

/// Where cluster mode's metadata commands go instead of the engine's own write: the metadata
/// raft group. `propose` returns once the command is applied on this node, with the refusal the
/// group's apply gave it, if any.
pub trait MetaLog: Send + Sync + 'static {
    fn propose(&self, command: MetaCommand) -> BoxFuture<'_, Result<()>>;
}

/// What the decisions of one run of entries carry from entry to entry: the changes of the
/// entries decided before, which memory does not show until the run is applied.
#[derive(Debug, Default)]
pub struct Run {
    next_topic_id: u32,
    /// Who new topics are placed on: the metadata group's voters as of the entry being decided
    /// ([`Run::set_voters`]); empty (topics not placed) outside cluster mode.
    voters: Vec<u64>,
    /// `(tenant, name)` → the topic's id, or `None` once deleted in this run.
    topics: HashMap<(String, String), Option<u32>>,
    /// Topic id → whether it exists after this run's entries so far.
    topic_ids: HashMap<u32, bool>,
    subscriptions: HashMap<(u32, String), bool>,
    users: HashMap<(String, String), bool>,
    /// `(topic id, partition)` → its placement after a replica move decided in this run.
    moves: HashMap<(u32, u32), moves::Placement>,
}

/// What phase one made of a command.
#[derive(Debug)]
pub enum Decision {
    /// Write and apply this (the command, with what apply fixed).
    Apply(MetaCommand),
    /// Refused: nothing is written, and the proposer gets this error.
    Refuse(Error),
}

/// The `Cf::Meta` prefixes of replicated records (snapshots carry them whole).
const REPLICATED: [&[u8]; 8] = [
    keys::TOPIC_META_PREFIX,
    keys::REPLICAS_PREFIX,
    b"sub/",
    USER_PREFIX,
    TOKEN_PREFIX,
    ROLE_PREFIX,
    BINDING_PREFIX,
    TENANT_PREFIX,
];

impl Run {
    /// The metadata group's voters from here on in the log (its state machine says, at the
    /// start of each run and at each membership entry, so every node places alike).
    pub fn set_voters(&mut self, mut voters: Vec<u64>) {
        voters.sort_unstable();
        self.voters = voters;
    }
}

impl Engine {
    /// Makes this engine a replica: from now on [`Engine::apply`] proposes to `log`. Set once,
    /// by cluster mode, before the broker serves.
    pub fn set_meta_log(&self, log: Arc<dyn MetaLog>) {
        if self.meta_log.set(log).is_err() {
            tracing::warn!("the metadata log was set twice; keeping the first");
        }
    }

    /// Whether metadata changes go through a cluster's metadata group.
    pub(super) fn replicated(&self) -> bool {
        self.meta_log.get().is_some()
    }

    pub(super) fn meta_log(&self) -> Option<&Arc<dyn MetaLog>> {
        self.meta_log.get()
    }

    /// Starts a run of committed entries from the state applied so far.
    pub fn stage_replicated(&self) -> Run {
        Run {
            next_topic_id: self.next_topic_id.load(Ordering::Relaxed),
            ..Run::default()
        }
    }

    /// Phase one of a committed metadata entry (see the module docs). `Err` is a storage
    /// failure (the group stops), never a refusal.
    pub async fn decide_replicated(
        &self,
        run: &mut Run,
        command: &MetaCommand,
    ) -> Result<Decision> {
        if let MetaCommand::Audited { command, entry } = command {
            return Ok(
                match Box::pin(self.decide_replicated(run, command)).await? {
                    Decision::Apply(command) => Decision::Apply(command.audited(entry.clone())),
                    refused => refused,
                },
            );
        }
        let decided = match command {
            MetaCommand::CreateTopic(record) => {
                let key = (record.tenant.clone(), record.name.clone());
                if self.topic_in_run(run, &key).is_some() {
                    return Ok(refuse(
                        ErrorCode::TopicAlreadyExists,
                        format!("topic `{}` already exists", record.name),
                    ));
                }
                let mut placed = TopicRecord {
                    id: run.next_topic_id,
                    ..record.clone()
                };
                if let Err(refused) = placement::place(&mut placed, &run.voters) {
                    return Ok(Decision::Refuse(refused));
                }
                run.next_topic_id += 1;
                run.topics.insert(key, Some(placed.id));
                run.topic_ids.insert(placed.id, true);
                MetaCommand::CreateTopic(placed)
            }
            MetaCommand::AlterTopic(record) => {
                if !self.topic_id_in_run(run, record.id) {
                    return Ok(Decision::Refuse(Error::topic_not_found(&record.name)));
                }
                command.clone()
            }
            MetaCommand::DeleteTopic { record, .. } => {
                if !self.topic_id_in_run(run, record.id) {
                    return Ok(Decision::Refuse(Error::topic_not_found(&record.name)));
                }
                // Fenced on this node: its writers finish what they queued and stop.
                if let Some(topic) = self.topic_by_id(record.id) {
                    for partition in &topic.partitions {
                        partition.close().await;
                    }
                }
                let scheduled = self.scheduled_keys(record.id).await?;
                run.topics
                    .insert((record.tenant.clone(), record.name.clone()), None);
                run.topic_ids.insert(record.id, false);
                MetaCommand::DeleteTopic {
                    record: record.clone(),
                    scheduled,
                }
            }
            MetaCommand::CreateSubscription {
                topic_id,
                record,
                cursors,
            } => {
                if !self.topic_id_in_run(run, *topic_id) {
                    return Ok(refuse(
                        ErrorCode::TopicNotFound,
                        format!("topic id {topic_id} no longer exists"),
                    ));
                }
                let key = (*topic_id, record.name.clone());
                if self.subscription_in_run(run, &key) {
                    return Ok(refuse(
                        ErrorCode::SubscriptionAlreadyExists,
                        format!("subscription `{}` already exists", record.name),
                    ));
                }
                run.subscriptions.insert(key, true);
                // This node's partitions are its own: a start past its log is its log's end.
                // Where a partition's group already fixed the start (its `Start` entry applied
                // on this node before this one: the proposer's metadata ran ahead), that start
                // is kept, not written over with this node's own.
                let topic = self.topic_by_id(*topic_id);
                let mut fixed = Vec::with_capacity(cursors.len());
                for (p, &offset) in cursors.iter().enumerate() {
                    let key = keys::cursor_key(*topic_id, &record.name, p as u32);
                    let stored = self.disk.get(Cf::Cursors, &key)?;
                    let high = topic
                        .as_ref()
                        .and_then(|t| t.partitions.get(p))
                        .map_or(0, |partition| partition.shared().high_watermark());
                    fixed.push(
                        stored
                            .as_deref()
                            .and_then(crate::engine::partition::decode_offset)
                            .unwrap_or(offset.min(high)),
                    );
                }
                let cursors = fixed;
                MetaCommand::CreateSubscription {
                    topic_id: *topic_id,
                    record: record.clone(),
                    cursors,
                }
            }
            MetaCommand::DeleteSubscription { topic_id, name } => {
                let key = (*topic_id, name.clone());
                if !self.subscription_in_run(run, &key) {
                    return Ok(refuse(
                        ErrorCode::SubscriptionNotFound,
                        format!("subscription `{name}` does not exist"),
                    ));
                }
                run.subscriptions.insert(key, false);
                command.clone()
            }
            MetaCommand::Auth(AuthCommand::PutUser { user, create, .. }) => {
                let key = (user.tenant.clone(), user.name.clone());
                let exists = match run.users.get(&key) {
                    Some(&exists) => exists,
                    None => self.auth.user(&user.tenant, &user.name).is_some(),
                };
                if *create && exists {
                    return Ok(refuse(
                        ErrorCode::UserAlreadyExists,
                        format!("user `{}` already exists", user.name),
                    ));
                }
                run.users.insert(key, true);
                command.clone()
            }
            MetaCommand::Auth(AuthCommand::DeleteUser { tenant, name, .. }) => {
                run.users.insert((tenant.clone(), name.clone()), false);
                command.clone()
            }
            MetaCommand::MoveReplicas {
                topic_id,
                partition,
                moved,
            } => return Ok(self.decide_move(run, *topic_id, *partition, moved)),
            // Puts and deletes that replace whole records: the last in log order wins, the
            // same on every node.
            MetaCommand::Auth(_)
            | MetaCommand::PutTenant(_)
            | MetaCommand::DeleteTenant { .. }
            | MetaCommand::Audited { .. } => command.clone(),
        };
        Ok(Decision::Apply(decided))
    }

    /// Phase two of a committed metadata entry that phase one let through, once its batch is
    /// on disk: the in-memory effects, as single-node mode makes them after its own write.
    pub async fn apply_replicated(&self, command: &MetaCommand) -> Result<()> {
        self.apply_written(command).await
    }

    fn topic_in_run(&self, run: &Run, key: &(String, String)) -> Option<u32> {
        match run.topics.get(key) {
            Some(id) => *id,
            None => self
                .topics
                .read()
                .get(&(TenantId::new(key.0.clone()), key.1.clone()))
                .map(|live| live.topic.id()),
        }
    }

    fn topic_id_in_run(&self, run: &Run, id: u32) -> bool {
        match run.topic_ids.get(&id) {
            Some(&exists) => exists,
            None => self.topic_ids.read().contains_key(&id),
        }
    }

    fn subscription_in_run(&self, run: &Run, key: &(u32, String)) -> bool {
        if let Some(&exists) = run.subscriptions.get(key) {
            return exists;
        }
        // A topic deleted in this run took its subscriptions with it.
        self.topic_id_in_run(run, key.0)
            && self
                .topic_by_id(key.0)
                .is_some_and(|topic| topic.subscriptions.read().contains_key(&key.1))
    }

    /// The replicated records as the store holds them (which is the applied state between
    /// runs), for a snapshot of the metadata group. Blocks.
    pub fn metadata_records(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut records = Vec::new();
        for prefix in REPLICATED {
            let found = self
                .disk
                .scan(Cf::Meta, prefix, &keys::prefix_end(prefix), usize::MAX)?;
            records.extend(found.into_iter().map(|(k, v)| (k.to_vec(), v.to_vec())));
        }
        if let Some(next) = self.disk.get(Cf::Meta, keys::NEXT_TOPIC_ID_KEY)? {
            records.push((keys::NEXT_TOPIC_ID_KEY.to_vec(), next.to_vec()));
        }
        Ok(records)
    }

    /// Phase one of installing a snapshot: puts in `batch` what replaces the replicated records
    /// with `records`, and deletes this node's data of every topic the snapshot does not hold.
    /// Blocks.
    pub fn write_metadata_restore(
        &self,
        records: &[(Vec<u8>, Vec<u8>)],
        batch: &mut WriteBatch,
    ) -> Result<()> {
        let kept: BTreeSet<u32> = topic_records(records)?.iter().map(|r| r.id).collect();
        for record in topic_records(&self.metadata_records()?)? {
            if !kept.contains(&record.id) {
                let mut scheduled = scheduler::scheduled_keys(&*self.disk, record.id)?;
                scheduled.extend(scheduler::scheduled_keys(&*self.memory, record.id)?);
                batch.extend(MetaCommand::DeleteTopic { record, scheduled }.to_write_batch());
            }
        }
        for prefix in REPLICATED {
            batch.delete_range(Cf::Meta, prefix.to_vec(), keys::prefix_end(prefix));
        }
        for (key, value) in records {
            batch.put(Cf::Meta, key.clone(), value.clone());
        }
        Ok(())
    }

    /// Phase two of installing a snapshot, once its records are on disk: topics the snapshot
    /// does not hold are closed, the others opened or given their settings, each topic's
    /// subscriptions made those on disk, and users, tokens, roles, bindings and tenants
    /// replaced by those on disk.
    pub async fn restore_metadata(&self) -> Result<()> {
        let records = self.metadata_records()?;
        let topics = topic_records(&records)?;
        let kept: BTreeSet<u32> = topics.iter().map(|r| r.id).collect();
        let gone: Vec<u32> = self
            .topic_ids
            .read()
            .keys()
            .copied()
            .filter(|id| !kept.contains(id))
            .collect();
        for id in gone {
            if let Some(live) = self.remove_topic(id) {
                live.closed.send_replace(TopicState::Deleted);
                for sub in live.topic.subscriptions.read().values() {
                    sub.close();
                }
                for partition in &live.topic.partitions {
                    partition.close().await;
                }
            }
        }
        for record in topics {
            let Some(live) = self.topic_by_id(record.id) else {
                let topic = self.open_topic(record)?;
                for sub in self.recover_subscriptions(&topic)? {
                    topic
                        .subscriptions
                        .write()
                        .insert(sub.name().to_string(), sub);
                }
                self.insert_topic(topic);
                continue;
            };
            *live.settings.write() = record.settings.clone();
            let placement = self.load_placement(record.id, &record.replicas, &*self.disk)?;
            for (p, placement) in placement.into_iter().enumerate() {
                let current = live.placement.read().get(p).cloned();
                if current.is_some_and(|current| current != placement) {
                    if let Some(slot) = live.placement.write().get_mut(p) {
                        *slot = placement.clone();
                    }
                    self.rehost(&live, p as u32, &placement).await;
                }
            }
            let wanted = self.recover_subscriptions(&live)?;
            let mut subs = live.subscriptions.write();
            subs.retain(|name, sub| {
                let keep = wanted.iter().any(|w| w.name() == name);
                if !keep {
                    sub.close();
                }
                keep
            });
            for sub in wanted {
                subs.entry(sub.name().to_string()).or_insert(sub);
            }
        }
        let next = self.recovered_next_topic_id(kept.last().copied())?;
        self.next_topic_id.store(next, Ordering::Relaxed);
        self.auth.reload(&*self.disk)?;
        let kept: BTreeSet<Vec<u8>> = records.iter().map(|(key, _)| key.clone()).collect();
        for tenant in self.tenants.records() {
            if !kept.contains(&tenant_key(&tenant.name)) {
                self.tenants.delete(&tenant.name);
            }
        }
        tenants::recover(&self.tenants, &*self.disk)?;
        Ok(())
    }
}

fn refuse(code: ErrorCode, message: String) -> Decision {
    Decision::Refuse(Error::new(code, message))
}

fn topic_records(records: &[(Vec<u8>, Vec<u8>)]) -> Result<Vec<TopicRecord>> {
    records
        .iter()
        .filter(|(key, _)| key.starts_with(keys::TOPIC_META_PREFIX))
        .map(|(_, value)| {
            serde_json::from_slice(value)
                .map_err(|err| Error::internal(format!("unreadable topic record: {err}")))
        })
        .collect()
}

#[cfg(test)]
mod tests;

mod hosting;
pub mod moves;
pub mod placement;

pub use moves::{Moved, Placement, ReplicaMove};
