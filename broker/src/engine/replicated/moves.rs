//! Moving partition replicas between nodes (docs/clustering.md "Moving replicas").
//!
//! A topic's record keeps the replicas placed at create; a partition whose replicas moved has
//! a [`Moved`] record beside it (`replicas/<topic>/<partition>` in `Cf::Meta`, replicated by
//! the metadata group, carried in its snapshots, deleted with the topic).
//!
//! **A move** of a partition from replicas `A` to `B`:
//! 1. [`MetaCommand::MoveReplicas`] with `{replicas: B, from: A}` commits through the metadata
//!    group (refused unless `A` is where the partition's group may have members now, and every
//!    node of `B` votes in the metadata group; a move under way is redirected from its `A ∪ B`). Every node that holds `A ∪ B` runs the
//!    partition's group from then on: a node of `B` not in `A` starts it empty and never
//!    initializes it (the group exists: it waits for the leader).
//! 2. The group's leader, wherever it is, walks its membership to `B` ([`GroupLog::settle`],
//!    one step at a time, driven by a task on every node of `A ∪ B`): the nodes of `B` join as
//!    learners, become voters once caught up (log or streamed snapshot), leadership goes to a
//!    node of `B` if the leader is not one, then the nodes of `A` not in `B` leave.
//! 3. Once the group's committed voters are `B`, the leader proposes `{replicas: B, from: []}`.
//!    Applying it, each node of `A` not in `B` stops the group and deletes its copy of the
//!    partition; it forwards writes to the replicas from then on.
//!
//! No acknowledged write is lost on the way: each membership step is a raft joint-consensus
//! change, a node leaves only after the group's committed membership left it out, and its copy
//! is deleted only then. A node down through the end of a move finds, when it starts, that it
//! holds none of the partition's replicas and deletes what it had.
//!
//! [`plan`] decides the moves of `rapidmq cluster rebalance` ([`Engine::rebalance_replicas`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rapidmq_proto::ErrorCode;
use serde::{Deserialize, Serialize};

use super::super::command::MetaCommand;
use super::super::topic::Topic;
use super::super::{Engine, keys};
use super::{Decision, Run, refuse};
use crate::audit::Audit;
use crate::auth::{Action, Resource};
use crate::error::{Error, Result};
use crate::observability::cluster::ClusterCounters;
use crate::principal::Principal;
use crate::storage::{Cf, Store};

/// How often a node checks on the moves of the partitions it holds.
const STEP: Duration = Duration::from_millis(250);

/// Where a partition's replicas are after a move started ([`MetaCommand::MoveReplicas`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    /// The replicas, preferred leader first.
    pub replicas: Vec<u64>,
    /// The replicas before the move under way; empty once it completed.
    pub from: Vec<u64>,
}

/// Where a partition's replicas are, as this node applied it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// The replicas, preferred leader first (empty: the partition is not placed).
    pub replicas: Vec<u64>,
    /// The replicas before the move under way, if one is.
    pub from: Vec<u64>,
    /// Whether the replicas ever moved: the group then exists elsewhere already, and a node
    /// that starts it empty waits for its leader rather than initializing it.
    pub moved: bool,
}

impl Placement {
    /// Whether node `id` runs the partition's group: it is a replica, or was one before the move
    /// under way.
    pub fn hosts(&self, id: u64) -> bool {
        self.replicas.contains(&id) || self.from.contains(&id)
    }

    /// Whether a move of the partition is under way.
    pub fn moving(&self) -> bool {
        !self.from.is_empty()
    }

    /// Every node that may be a member of the partition's group now: the replicas, and during a
    /// move the nodes it moves from. A new move starts from these (a move under way is
    /// redirected: its group goes to the new replicas from wherever it got).
    pub fn members(&self) -> Vec<u64> {
        let mut members = self.replicas.clone();
        members.extend(self.from.iter().filter(|id| !self.replicas.contains(id)));
        members
    }

    fn with(moved: Moved) -> Placement {
        Placement {
            replicas: moved.replicas,
            from: moved.from,
            moved: true,
        }
    }
}

/// A move [`Engine::rebalance_replicas`] started (or, for a dry run, would start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaMove {
    pub tenant: String,
    pub topic: String,
    pub partition: u32,
    pub from: Vec<u64>,
    pub to: Vec<u64>,
}

/// The moves that leave every partition on `rf` distinct nodes of `voters` minus `exclude`
/// (its current ones where it can), each such node with an even share of the replicas (at most
/// one apart) and of the first replicas (the preferred leaders), moving as few replicas as it
/// finds. `partitions`: each partition's replicas now; the answer: the index of each partition
/// to move and its new replicas. Refused when a partition has more replicas than nodes remain.
pub fn plan(
    partitions: &[Vec<u64>],
    voters: &[u64],
    exclude: &[u64],
) -> std::result::Result<Vec<(usize, Vec<u64>)>, String> {
    let nodes: BTreeSet<u64> = voters
        .iter()
        .copied()
        .filter(|id| !exclude.contains(id))
        .collect();
    let mut load: BTreeMap<u64, usize> = nodes.iter().map(|&id| (id, 0)).collect();
    let mut target: Vec<Vec<u64>> = Vec::with_capacity(partitions.len());
    for replicas in partitions {
        if replicas.len() > nodes.len() {
            return Err(format!(
                "a partition has {} replicas but only {} voting nodes would hold them",
                replicas.len(),
                nodes.len()
            ));
        }
        for id in replicas.iter().filter(|id| nodes.contains(id)) {
            *load.entry(*id).or_default() += 1;
        }
        target.push(replicas.clone());
    }
    // Replicas on nodes that go: to the least loaded node the partition is not on, in place
    // (a preferred leader's replacement is preferred).
    for replicas in &mut target {
        for k in 0..replicas.len() {
            if nodes.contains(&replicas[k]) {
                continue;
            }
            let to = least(&load, |id| !replicas.contains(&id)).expect("enough nodes remain");
            replicas[k] = to;
            *load.get_mut(&to).expect("a node") += 1;
        }
    }
    // Then from the most loaded node to the least, while they are more than one apart.
    even_out(&mut load, partitions.len() * nodes.len(), |most, fewest| {
        let Some(replicas) = target
            .iter_mut()
            .find(|r| r.contains(&most) && !r.contains(&fewest))
        else {
            return false;
        };
        let k = replicas.iter().position(|&id| id == most).expect("held");
        replicas[k] = fewest;
        true
    });
    // Then the preferred leaders, by reordering a partition's replicas.
    let mut leads: BTreeMap<u64, usize> = nodes.iter().map(|&id| (id, 0)).collect();
    for replicas in &target {
        if let Some(first) = replicas.first() {
            *leads.entry(*first).or_default() += 1;
        }
    }
    even_out(&mut leads, partitions.len(), |most, fewest| {
        let Some(replicas) = target
            .iter_mut()
            .find(|r| r.first() == Some(&most) && r.contains(&fewest))
        else {
            return false;
        };
        let k = replicas.iter().position(|&id| id == fewest).expect("held");
        replicas.swap(0, k);
        true
    });
    Ok(target
        .into_iter()
        .enumerate()
        .filter(|(i, replicas)| *replicas != partitions[*i])
        .collect())
}

/// Evens out `counts` to at most one apart, in up to `rounds` steps: while the node with the
/// most is two or more above the node with the fewest, `step(most, fewest)` moves one from the
/// first to the second, or says it found none to move.
fn even_out(
    counts: &mut BTreeMap<u64, usize>,
    rounds: usize,
    mut step: impl FnMut(u64, u64) -> bool,
) {
    for _ in 0..rounds {
        let (Some(most), Some(fewest)) = (most(counts), least(counts, |_| true)) else {
            return;
        };
        if counts[&most] <= counts[&fewest] + 1 || !step(most, fewest) {
            return;
        }
        *counts.get_mut(&most).expect("a node") -= 1;
        *counts.get_mut(&fewest).expect("a node") += 1;
    }
}

/// The node with the most, ties to the highest id.
fn most(counts: &BTreeMap<u64, usize>) -> Option<u64> {
    counts
        .iter()
        .max_by_key(|(id, count)| (**count, **id))
        .map(|(id, _)| *id)
}

/// The node with the fewest among those `allowed`, ties to the lowest id.
fn least(counts: &BTreeMap<u64, usize>, allowed: impl Fn(u64) -> bool) -> Option<u64> {
    counts
        .iter()
        .filter(|(id, _)| allowed(**id))
        .min_by_key(|(id, count)| (**count, **id))
        .map(|(id, _)| *id)
}

impl Engine {
    /// Each partition's placement: as placed at create, or as moved since (`store` holds the
    /// moves). Blocks on storage.
    pub(in crate::engine) fn load_placement(
        &self,
        topic_id: u32,
        placed: &[Vec<u64>],
        store: &dyn Store,
    ) -> Result<Vec<Placement>> {
        placed
            .iter()
            .enumerate()
            .map(|(p, replicas)| {
                let key = keys::replicas_key(topic_id, p as u32);
                Ok(match store.get(Cf::Meta, &key)? {
                    Some(value) => {
                        Placement::with(serde_json::from_slice(&value).map_err(|err| {
                            Error::internal(format!("moved replicas record: {err}"))
                        })?)
                    }
                    None => Placement {
                        replicas: replicas.clone(),
                        ..Placement::default()
                    },
                })
            })
            .collect()
    }

    /// Phase one of [`MetaCommand::MoveReplicas`]: a start needs the partition at its `from`
    /// replicas with no move under way and every new replica a voter; an end needs the move it
    /// ends under way.
    pub(super) fn decide_move(
        &self,
        run: &mut Run,
        topic_id: u32,
        partition: u32,
        moved: &Moved,
    ) -> Decision {
        if !self.topic_id_in_run(run, topic_id) {
            return refuse(
                ErrorCode::TopicNotFound,
                format!("topic id {topic_id} no longer exists"),
            );
        }
        let current = match run.moves.get(&(topic_id, partition)) {
            Some(placement) => Some(placement.clone()),
            None => self
                .topic_by_id(topic_id)
                .and_then(|topic| topic.placement.read().get(partition as usize).cloned()),
        };
        let Some(current) = current.filter(|c| !c.replicas.is_empty()) else {
            return refuse(
                ErrorCode::InvalidArgument,
                format!("topic id {topic_id} has no placed partition {partition}"),
            );
        };
        let starts = !moved.from.is_empty();
        let fits = if starts {
            moved.from == current.members()
        } else {
            current.moving() && current.replicas == moved.replicas
        };
        if !fits {
            return refuse(
                ErrorCode::InvalidArgument,
                format!(
                    "partition {partition} of topic id {topic_id} is not where the move expects it (replicas {:?}, moving from {:?})",
                    current.replicas, current.from
                ),
            );
        }
        let distinct: BTreeSet<u64> = moved.replicas.iter().copied().collect();
        if starts
            && (distinct.len() != moved.replicas.len()
                || moved.replicas.len() != current.replicas.len()
                || !moved.replicas.iter().all(|id| run.voters.contains(id)))
        {
            return refuse(
                ErrorCode::InvalidArgument,
                format!(
                    "replicas {:?}: as many distinct voting nodes as before are needed",
                    moved.replicas
                ),
            );
        }
        run.moves
            .insert((topic_id, partition), Placement::with(moved.clone()));
        Decision::Apply(MetaCommand::MoveReplicas {
            topic_id,
            partition,
            moved: moved.clone(),
        })
    }

    /// The in-memory effects of [`MetaCommand::MoveReplicas`] (written): the partition's
    /// placement, and this node's part in its group.
    pub(in crate::engine) async fn apply_move(&self, topic_id: u32, partition: u32, moved: &Moved) {
        let Some(topic) = self.topic_by_id(topic_id) else {
            return;
        };
        let placement = Placement::with(moved.clone());
        if let Some(slot) = topic.placement.write().get_mut(partition as usize) {
            *slot = placement.clone();
        }
        self.count_moving();
        self.rehost(&topic, partition, &placement).await;
    }

    /// Makes this node's part in `topic`'s partition `p` what `placement` says: runs its group
    /// where this node is (or was, during a move) a replica, forwards to the replicas otherwise,
    /// deleting the copy it no longer holds. Drives the move under way, if any.
    pub(in crate::engine) async fn rehost(
        &self,
        topic: &Arc<Topic>,
        p: u32,
        placement: &Placement,
    ) {
        let Some(host) = self.partition_host.get() else {
            return;
        };
        let Some(partition) = topic.partitions.get(p as usize) else {
            return;
        };
        let _swapping = self.rehosting.lock().await;
        let Some(log) = partition.group_log() else {
            return;
        };
        let hosts = placement.hosts(host.node_id());
        if hosts == log.is_replica() {
            log.set_replicas(placement);
        } else {
            let options = self.partition_options(&topic.record);
            let consumers = self.consumer_state();
            let opened = host.open(
                topic.id(),
                p,
                placement,
                Arc::clone(partition.shared()),
                consumers,
                &options,
            );
            match opened {
                Ok(new) => {
                    if let Some(old) = partition.replace_group_log(new) {
                        old.close().await;
                    }
                    if !hosts {
                        if let Err(err) = host.retire(topic.id(), p, partition.shared()).await {
                            tracing::warn!(cause = %err, topic_id = topic.id(), partition = p, "deleting this node's copy of a moved partition");
                        } else {
                            tracing::info!(
                                topic_id = topic.id(),
                                partition = p,
                                "replicas moved off this node: its copy of the partition is deleted"
                            );
                        }
                    }
                }
                Err(err) => {
                    tracing::error!(cause = %err, topic_id = topic.id(), partition = p, "partition group did not start here for a replica move");
                }
            }
        }
        if placement.moving() && hosts {
            self.drive_move(topic.id(), p);
        }
    }

    /// Drives the move of partition `p` of topic `topic_id` from this node until it completed
    /// (one task per partition at most): where this node leads the partition's group it takes
    /// the group's membership to the new replicas step by step ([`GroupLog::settle`]), then
    /// proposes the move's end. It takes steps only while it holds one of the node's
    /// `cluster.max_concurrent_moves` slots, taken at its first step as leader and kept until
    /// the move ends or another node leads the group; moves without a slot wait their turn.
    pub(in crate::engine) fn drive_move(&self, topic_id: u32, p: u32) {
        if !self.movers.lock().insert((topic_id, p)) {
            return;
        }
        self.count_moving();
        let engine = self.this.clone();
        let mut slot = MoveSlot::new(self);
        self.runtime.spawn(async move {
            let mut interval = tokio::time::interval(STEP);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                let placement = engine.topic_by_id(topic_id).and_then(|topic| {
                    let placement = topic.placement.read().get(p as usize).cloned()?;
                    Some((placement, topic.partitions.get(p as usize)?.group_log()))
                });
                let Some((placement, Some(log))) = placement.filter(|(pl, _)| pl.moving()) else {
                    engine.movers.lock().remove(&(topic_id, p));
                    engine.count_moving();
                    return;
                };
                // Only the group's leader takes steps, and only with a slot, held until the
                // move ends or another node leads the group.
                if !log.leads_applied() {
                    slot.release();
                    continue;
                }
                if !slot.take() {
                    continue;
                }
                match log.settle(&placement.replicas, &placement.from).await {
                    Ok(true) => {
                        let end = MetaCommand::MoveReplicas {
                            topic_id,
                            partition: p,
                            moved: Moved {
                                replicas: placement.replicas.clone(),
                                from: Vec::new(),
                            },
                        };
                        match engine.apply(end).await {
                            Ok(()) => tracing::info!(
                                topic_id,
                                partition = p,
                                replicas = ?placement.replicas,
                                "partition replicas moved"
                            ),
                            Err(err) => tracing::debug!(cause = %err, topic_id, partition = p, "ending a replica move"),
                        }
                    }
                    Ok(false) => {}
                    Err(err) => {
                        tracing::debug!(cause = %err, topic_id, partition = p, "a replica move step");
                    }
                }
            }
        });
    }

    /// Partitions node `id` holds a replica of, or holds one of while it moves off.
    pub fn partitions_on(&self, id: u64) -> usize {
        self.placements_where(|p| p.hosts(id))
    }

    /// Sets the `rapidmq_cluster_moving_partitions` gauge.
    fn count_moving(&self) {
        self.metrics
            .cluster_counters
            .moving_partitions
            .store(i64::from(self.moving_partitions()), Ordering::Relaxed);
    }

    /// Partitions whose replicas are moving, over every topic.
    pub fn moving_partitions(&self) -> u32 {
        self.placements_where(Placement::moving) as u32
    }

    /// Partitions, over every topic, whose placement satisfies `pred`.
    fn placements_where(&self, pred: impl Fn(&Placement) -> bool) -> usize {
        self.topics
            .read()
            .values()
            .map(|live| {
                live.topic
                    .placement
                    .read()
                    .iter()
                    .filter(|p| pred(p))
                    .count()
            })
            .sum()
    }

    /// Plans the moves that spread the replicas of every placed topic (of every tenant) evenly
    /// over `voters` (the metadata group's) less `exclude`, and starts them unless `dry_run`
    /// ([`plan`]). A partition with a move under way is planned from where it goes. Cluster
    /// admins only.
    pub async fn rebalance_replicas(
        &self,
        principal: &Principal,
        voters: &[u64],
        exclude: &[u64],
        dry_run: bool,
    ) -> Result<Vec<ReplicaMove>> {
        self.auth
            .authorize(principal, Action::Admin, Resource::Cluster)?;
        if let Some(id) = exclude.iter().find(|id| !voters.contains(id)) {
            return Err(Error::new(
                ErrorCode::NodeNotFound,
                format!("node {id} is not a voting member of the cluster"),
            ));
        }
        let _guard = self.meta_lock.lock().await;
        let mut names = Vec::new();
        let mut partitions = Vec::new();
        let mut topics: Vec<Arc<Topic>> = self
            .topics
            .read()
            .values()
            .map(|live| Arc::clone(&live.topic))
            .collect();
        topics.sort_by_key(|topic| topic.id());
        for topic in &topics {
            for (p, placement) in topic.placement.read().iter().enumerate() {
                if placement.replicas.is_empty() {
                    continue;
                }
                // A partition moving is planned from where it goes, and redirected if needed
                // (a node it moves to was excluded since).
                names.push((Arc::clone(topic), p as u32, placement.members()));
                partitions.push(placement.replicas.clone());
            }
        }
        let planned = plan(&partitions, voters, exclude)
            .map_err(|why| Error::new(ErrorCode::InvalidArgument, why))?;
        let mut moves = Vec::with_capacity(planned.len());
        for (i, to) in planned {
            let (topic, p, members) = &names[i];
            let planned = ReplicaMove {
                tenant: topic.record.tenant.clone(),
                topic: topic.name().to_string(),
                partition: *p,
                from: partitions[i].clone(),
                to: to.clone(),
            };
            if dry_run {
                moves.push(planned);
                continue;
            }
            let command = MetaCommand::MoveReplicas {
                topic_id: topic.id(),
                partition: *p,
                moved: Moved {
                    replicas: to,
                    from: members.clone(),
                },
            };
            let audit = Audit::new(
                principal,
                "cluster.move_replicas",
                format!("topic:{}/{p}", topic.name()),
            );
            match self.apply_audited(command, audit).await {
                Ok(()) => moves.push(planned),
                // Moved meanwhile (through another node): left as it is now.
                Err(err) if err.code() == ErrorCode::InvalidArgument => {
                    tracing::info!(cause = %err, "a planned replica move was not started");
                }
                Err(err) => return Err(err),
            }
        }
        if !moves.is_empty() && !dry_run {
            tracing::info!(moves = moves.len(), "replica moves started");
        }
        Ok(moves)
    }
}

/// A move's claim on one of the slots `cluster.max_concurrent_moves` gives this node, kept by
/// the task that drives the move; what it holds or waits for shows in the
/// `cluster_moves_stepping` and `cluster_moves_waiting` gauges. Dropped with the task (the move
/// ended), it gives its slot back.
struct MoveSlot {
    slots: Option<Arc<tokio::sync::Semaphore>>,
    counters: Arc<ClusterCounters>,
    state: SlotState,
}

enum SlotState {
    Idle,
    Waiting,
    /// The permit is `None` where no limit is set.
    Held {
        _permit: Option<tokio::sync::OwnedSemaphorePermit>,
    },
}

impl MoveSlot {
    fn new(engine: &Engine) -> MoveSlot {
        MoveSlot {
            slots: engine.move_slots.clone(),
            counters: Arc::clone(&engine.metrics.cluster_counters),
            state: SlotState::Idle,
        }
    }

    /// Whether the move holds a slot now: takes a free one if it does not.
    fn take(&mut self) -> bool {
        if matches!(self.state, SlotState::Held { .. }) {
            return true;
        }
        let permit = match &self.slots {
            None => None,
            Some(slots) => match Arc::clone(slots).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    self.set(SlotState::Waiting);
                    return false;
                }
            },
        };
        self.set(SlotState::Held { _permit: permit });
        true
    }

    /// Gives the slot back, or stops waiting for one (this node no longer leads the group).
    fn release(&mut self) {
        self.set(SlotState::Idle);
    }

    fn set(&mut self, state: SlotState) {
        let gauge = |state: &SlotState| match state {
            SlotState::Idle => None,
            SlotState::Waiting => Some(&self.counters.moves_waiting),
            SlotState::Held { .. } => Some(&self.counters.moves_stepping),
        };
        if let Some(gauge) = gauge(&self.state) {
            gauge.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(gauge) = gauge(&state) {
            gauge.fetch_add(1, Ordering::Relaxed);
        }
        self.state = state;
    }
}

impl Drop for MoveSlot {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loads(target: &[Vec<u64>]) -> BTreeMap<u64, usize> {
        let mut load = BTreeMap::new();
        for replicas in target {
            for id in replicas {
                *load.entry(*id).or_default() += 1;
            }
        }
        load
    }

    fn applied(partitions: &[Vec<u64>], moves: &[(usize, Vec<u64>)]) -> Vec<Vec<u64>> {
        let mut target = partitions.to_vec();
        for (i, to) in moves {
            target[*i] = to.clone();
        }
        target
    }

    #[test]
    fn a_balanced_placement_moves_nothing() {
        let partitions = vec![vec![1, 2, 3], vec![2, 3, 1], vec![3, 1, 2]];
        assert!(plan(&partitions, &[1, 2, 3], &[]).unwrap().is_empty());
    }

    #[test]
    fn a_new_node_gets_its_share_and_each_partition_keeps_distinct_replicas() {
        let partitions: Vec<Vec<u64>> = (0..8)
            .map(|p| (0..3).map(|k| (p + k) % 3 + 1).collect())
            .collect();
        let moves = plan(&partitions, &[1, 2, 3, 4], &[]).unwrap();
        let target = applied(&partitions, &moves);
        let load = loads(&target);
        assert_eq!(load.values().sum::<usize>(), 24, "{load:?}");
        assert!(
            load.values().all(|&n| n == 6),
            "24 replicas over 4 nodes: {load:?}"
        );
        for replicas in &target {
            let distinct: BTreeSet<u64> = replicas.iter().copied().collect();
            assert_eq!(distinct.len(), 3, "{replicas:?}");
        }
        let mut leads = BTreeMap::new();
        for replicas in &target {
            *leads.entry(replicas[0]).or_insert(0) += 1;
        }
        assert!(
            leads.values().all(|&n| n == 2),
            "preferred leaders: {leads:?}"
        );
        // As few as it finds: the new node's six replicas come from six partitions.
        let moved_replicas: usize = moves
            .iter()
            .map(|(i, to)| to.iter().filter(|id| !partitions[*i].contains(id)).count())
            .sum();
        assert_eq!(moved_replicas, 6);
    }

    #[test]
    fn an_excluded_node_holds_nothing_afterwards() {
        let partitions = vec![vec![1, 2, 3], vec![2, 3, 4], vec![3, 4, 1], vec![4, 1, 2]];
        let moves = plan(&partitions, &[1, 2, 3, 4], &[2]).unwrap();
        let target = applied(&partitions, &moves);
        assert!(target.iter().all(|r| !r.contains(&2)), "{target:?}");
        assert!(loads(&target).values().all(|&n| n == 4));
        // The replacement of a preferred leader is the preferred leader.
        assert_ne!(target[1][0], 2);
        assert_eq!(&target[1][1..], &[3, 4]);
    }

    #[test]
    fn too_few_nodes_left_is_refused() {
        let err = plan(&[vec![1, 2, 3]], &[1, 2, 3], &[3]).unwrap_err();
        assert!(err.contains("only 2 voting nodes"), "{err}");
    }

    #[test]
    fn moved_records_round_trip_in_the_store_encoding() {
        let moved = Moved {
            replicas: vec![2, 3, 4],
            from: vec![1, 2, 3],
        };
        let json: Moved = serde_json::from_slice(&serde_json::to_vec(&moved).unwrap()).unwrap();
        assert_eq!(json, moved);
        let placement = Placement::with(moved);
        assert!(placement.hosts(1) && placement.hosts(4) && !placement.hosts(5));
        assert!(placement.moving() && placement.moved);
    }
}
