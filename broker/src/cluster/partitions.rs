//! The partition groups a broker process hosts in cluster mode: the engine's
//! [`PartitionHost`] (docs/clustering.md "Hosting").
//!
//! The metadata group places each topic (`engine/replicated/placement.rs`); when a node applies
//! the topic (or finds it at start) the engine asks this host to open each partition:
//!
//! - On a replica, the partition's group starts: its [`PartitionGroup`] over the partition the
//!   engine's readers use, its [`GroupStateMachine`] and [`LogStore`] on the node's store, its
//!   raft registered in the node's [`Groups`] (so the coalescing network and the node's one
//!   heartbeat task carry it). The preferred leader (the first replica) initializes a new
//!   group with the replica set and campaigns at once; the others initialize it too, with the
//!   same membership (openraft accepts that), if no leader reached them within two election
//!   timeouts. So a new group elects its preferred leader, and new groups do not campaign from
//!   every replica at once; "already initialized" is the normal restart.
//! - On a node that is not a replica (more voters than the replication factor), nothing starts:
//!   its writer only forwards appends to the replicas, and it serves no reads of the partition.
//!
//! Either way the engine's handle writes through a [`GroupWriter`]. Closing the handle stops
//! the group on this node; a deleted topic's groups also lose their raft log and state
//! ([`PartitionHost::delete`]; the partition's batches go with the topic's own delete).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, Raft};

use super::keys::{self, GroupId, StateKey};
use super::leaders::LeaderBalance;
use super::node::{MetaRaft, leader_addr};
use super::partition_group::{PartitionConfig, PartitionGroup};
use super::partition_writer::{GroupWriter, PartitionHandle, PartitionRaft, Replicas, Route};
use super::rebuild;
use super::{
    GroupNetwork, GroupStateMachine, Groups, LogStore, LogWriter, NodeTls, Peers, blocking,
    drop_group,
};
use crate::engine::{
    ConsumerState, GroupLog, PartitionHost, PartitionOptions, PartitionShared, Placement,
};
use crate::error::{Error, Result};
use crate::observability::cluster::ClusterCounters;
use crate::storage::{Cf, Store, WriteBatch};

/// Where each node's cluster listener is: the configured `--peers`, then the metadata group's
/// membership, which also knows the nodes added later (`cluster add-node`).
#[derive(Default)]
pub struct Addresses {
    peers: BTreeMap<u64, String>,
    metadata: OnceLock<MetaRaft>,
}

impl Addresses {
    /// The addresses of `peers`; the metadata group's are known once [`Addresses::set_metadata`]
    /// has run.
    pub fn new(peers: BTreeMap<u64, String>) -> Addresses {
        Addresses {
            peers,
            metadata: OnceLock::new(),
        }
    }

    /// From now on, nodes that are not peers are looked up in `raft`'s membership.
    pub fn set_metadata(&self, raft: MetaRaft) {
        let _ = self.metadata.set(raft);
    }

    /// Node `id`'s cluster address, if it is known.
    pub fn get(&self, id: u64) -> Option<String> {
        match self.metadata.get() {
            Some(raft) => leader_addr(raft, &self.peers, id),
            None => self.peers.get(&id).cloned(),
        }
    }
}

/// Resolves once a started group's log wrote its last queued write ([`LogStore::drained`]).
type LogStopped = parking_lot::Mutex<Option<futures::future::BoxFuture<'static, ()>>>;

/// This node's partition groups.
#[derive(Clone)]
pub struct PartitionHosting {
    me: u64,
    store: Arc<dyn Store>,
    /// One writer task for every group's raft log: groups that append at once share an fsync.
    log_writer: LogWriter,
    groups: Arc<Groups>,
    network: Peers,
    config: Arc<openraft::Config>,
    addresses: Arc<Addresses>,
    tls: NodeTls,
    /// Where the groups' leaders and elections are summed for the node's metrics.
    counters: Arc<ClusterCounters>,
    /// Hands the groups this node leads back to their preferred replicas.
    balance: Arc<LeaderBalance>,
}

impl PartitionHosting {
    /// Hosts groups on `store` for node `me`, their raft messages routed by `groups` and sent
    /// through `network`, with the metadata group's raft settings `config`; nodes are found at
    /// `addresses`, reached with `tls`; their leaders and elections are summed in `counters`;
    /// each running group is known to `balance`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        me: u64,
        store: Arc<dyn Store>,
        groups: Arc<Groups>,
        network: Peers,
        config: Arc<openraft::Config>,
        addresses: Arc<Addresses>,
        tls: NodeTls,
        counters: Arc<ClusterCounters>,
        balance: Arc<LeaderBalance>,
    ) -> PartitionHosting {
        PartitionHosting {
            counters,
            balance,
            me,
            log_writer: LogWriter::new(&store),
            store,
            groups,
            network,
            config,
            addresses,
            tls,
        }
    }

    /// `machine`, if this node's copy of its partition passes its checksums; otherwise a new
    /// one over an emptied copy, once the group's leader made this node a learner, which the
    /// leader then fills again ([`rebuild`]). A partition no other node holds keeps its copy.
    async fn checked(&self, machine: Machine, copy: &LocalCopy) -> Result<Machine> {
        let (group, topic_id, partition) =
            (copy.route.group, copy.route.topic_id, copy.route.partition);
        let found = blocking(&self.store, move |store| {
            rebuild::damage(store, group, topic_id, partition)
        })
        .await
        .map_err(|err| Error::internal(format!("checking partition group {group}: {err}")))?;
        let Some(damage) = found else {
            return Ok(machine);
        };
        if copy.route.replicas.get().len() < 2 {
            tracing::error!(
                topic_id, partition, %damage,
                "stored batches of the partition are damaged and no other node holds them: \
                 serving what is intact (reads of the damaged batches fail)"
            );
            return Ok(machine);
        }
        tracing::error!(
            topic_id, partition, %damage,
            "stored batches of the partition are damaged: rebuilding this replica from the others"
        );
        self.counters
            .replica_rebuilds
            .fetch_add(1, Ordering::Relaxed);
        // Nothing damaged is served meanwhile: readers see an empty partition.
        copy.shared.restored(0, 0, 0);
        drop(machine);
        rebuild::demote(&copy.route).await;
        let (store, shared, consumers, ttl) = (
            Arc::clone(&self.store),
            Arc::clone(&copy.shared),
            Arc::clone(&copy.consumers),
            copy.producer_state_ttl_ms,
        );
        let machine = tokio::task::spawn_blocking(move || {
            rebuild::wipe(store.as_ref(), group, &shared)
                .map_err(|err| Error::internal(err.to_string()))?;
            let app = PartitionGroup::with_shared(group, shared, ttl, consumers)?;
            GroupStateMachine::open(store, group, app)
                .map_err(|err| Error::internal(err.to_string()))
        })
        .await
        .map_err(|err| Error::internal(format!("rebuilding partition group {group}: {err}")))??;
        tracing::info!(
            topic_id,
            partition,
            "emptied this replica's copy of the partition: the leader sends it again"
        );
        Ok(machine)
    }

    /// Starts `route`'s group on this node with `machine` and sets it in `slot`; initializes it
    /// with the route's replicas.
    async fn start(
        &self,
        machine: Machine,
        route: &Route,
        options: &PartitionOptions,
        slot: &OnceLock<PartitionRaft>,
        log_stopped: &LogStopped,
        fresh: bool,
    ) -> Result<()> {
        let (group, replicas) = (route.group, route.replicas.get());
        // Snapshots stream the partition's batches: read from the store when sent, written to
        // it as they arrive.
        let (source, sink, (shared, consumers)) = {
            let app = machine.app();
            (
                app.snapshot_source(),
                app.snapshot_sink(),
                app.applied_into(),
            )
        };
        self.groups.insert_snapshot_sink(group, sink);
        let log = LogStore::for_partition(Arc::clone(&self.store), group).sharing(&self.log_writer);
        let mut machine = machine;
        machine.follow_log(log.tail());
        *log_stopped.lock() = Some(Box::pin(log.drained()));
        let raft = Raft::new(
            self.me,
            Arc::clone(&self.config),
            GroupNetwork::new(self.me, group, self.network.clone()).with_snapshot_source(source),
            log,
            machine,
        )
        .await
        .map_err(|err| Error::internal(format!("starting partition group {group}: {err}")))?;
        drop(super::observe::spawn_partition::<PartitionConfig>(
            raft.metrics(),
            Arc::clone(&self.counters),
        ));
        self.groups.insert(
            group,
            Arc::new(PartitionHandle {
                raft: raft.clone(),
                clock: Arc::clone(&options.clock),
                shared,
                consumers,
            }),
        );
        let _ = slot.set(raft.clone());
        self.balance.insert(group, raft.clone(), &route.replicas);
        // A learner here (its copy rebuilt) asks to vote again once caught up. Only a replica
        // that starts empty or as a learner can be one: a voter holding its log stays a voter.
        if rebuild::may_rejoin(&raft, self.me) {
            drop(tokio::spawn(rebuild::rejoin(raft.clone(), route.clone())));
        }
        let members: BTreeMap<u64, BasicNode> = replicas
            .iter()
            .map(|id| {
                let addr = self.addresses.get(*id).unwrap_or_default();
                (*id, BasicNode::new(addr))
            })
            .collect();
        // The preferred leader (the first replica) initializes a new group at once and
        // campaigns; the other replicas initialize only if no leader reached them by then
        // (`FALLBACK` election timeouts: the preferred one may be down). So a new group elects
        // its preferred leader, which spreads leaders as placement intends, and a thousand new
        // groups do not all campaign from every replica at once. openraft accepts the same
        // membership on every replica, so a late initialize changes nothing; "already
        // initialized" is a restart, or a leader that got there first. A partition whose
        // replicas moved is never initialized here: its group exists, and a new replica waits
        // for the leader to add it.
        if !fresh {
            return Ok(());
        }
        if replicas.first() == Some(&self.me) {
            if initialize(&raft, group, members).await? {
                // A new group: nobody else campaigns yet, nothing to disrupt.
                let _ = raft.trigger().elect(false).await;
            }
        } else {
            let wait = Duration::from_millis(self.config.election_timeout_max * FALLBACK);
            let raft = raft.clone();
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                if let Err(err) = initialize(&raft, group, members).await {
                    tracing::debug!(group, cause = %err, "partition group not initialized");
                }
            });
        }
        Ok(())
    }
}

/// A partition group's state machine on this node.
type Machine = GroupStateMachine<PartitionConfig, PartitionGroup>;

/// What rebuilding this node's copy of a partition needs.
struct LocalCopy {
    route: Route,
    shared: Arc<PartitionShared>,
    consumers: Arc<dyn ConsumerState>,
    producer_state_ttl_ms: u64,
}

/// Election timeouts a replica other than the preferred leader waits before it initializes a
/// new group itself.
const FALLBACK: u64 = 2;

/// Initializes `raft` with `members`; whether it was new (not initialized before).
async fn initialize(
    raft: &PartitionRaft,
    group: GroupId,
    members: BTreeMap<u64, BasicNode>,
) -> Result<bool> {
    match raft.initialize(members).await {
        Ok(()) => {
            tracing::debug!(group, "initialized a partition group");
            Ok(true)
        }
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(false),
        Err(err) => Err(Error::internal(format!(
            "initializing partition group {group}: {err}"
        ))),
    }
}

impl PartitionHost for PartitionHosting {
    fn node_id(&self) -> u64 {
        self.me
    }

    fn open(
        &self,
        topic_id: u32,
        index: u32,
        placement: &Placement,
        shared: Arc<PartitionShared>,
        consumers: Arc<dyn ConsumerState>,
        options: &PartitionOptions,
    ) -> Result<Arc<dyn GroupLog>> {
        let group = keys::partition_group(topic_id, index);
        let route = Route {
            me: self.me,
            group,
            topic_id,
            partition: index,
            replicas: Replicas::new(placement.members()),
            addresses: Arc::clone(&self.addresses),
            tls: self.tls.clone(),
            publisher: self.groups.publisher().clone(),
        };
        let slot: Arc<OnceLock<PartitionRaft>> = Arc::default();
        if !placement.hosts(self.me) {
            let writer = GroupWriter::spawn(
                route,
                shared,
                Arc::clone(&options.clock),
                slot,
                Box::pin(async {}),
                Box::pin(async {}),
            );
            return Ok(Arc::new(writer));
        }
        let copy = LocalCopy {
            route: route.clone(),
            shared: Arc::clone(&shared),
            consumers: Arc::clone(&consumers),
            producer_state_ttl_ms: options.producer_state_ttl_ms,
        };
        let app = PartitionGroup::with_shared(
            group,
            Arc::clone(&shared),
            options.producer_state_ttl_ms,
            consumers,
        )?;
        let machine = GroupStateMachine::open(Arc::clone(&self.store), group, app)
            .map_err(|err| Error::internal(err.to_string()))?;
        let host = self.clone();
        let fresh = !placement.moved;
        let (start_slot, stop_slot) = (Arc::clone(&slot), Arc::clone(&slot));
        let log_stopped: Arc<LogStopped> = Arc::default();
        let start_log = Arc::clone(&log_stopped);
        let start_options = options.clone();
        let started = Box::pin(async move {
            let machine = match host.checked(machine, &copy).await {
                Ok(machine) => machine,
                Err(err) => {
                    tracing::error!(cause = %err, group, "partition group did not start");
                    return;
                }
            };
            if let Err(err) = host
                .start(
                    machine,
                    &copy.route,
                    &start_options,
                    &start_slot,
                    &start_log,
                    fresh,
                )
                .await
            {
                tracing::error!(cause = %err, group, "partition group did not start");
            }
        });
        let (groups, balance) = (Arc::clone(&self.groups), Arc::clone(&self.balance));
        let stopped = Box::pin(async move {
            groups.remove(group);
            balance.remove(group);
            if let Some(raft) = stop_slot.get()
                && let Err(err) = raft.shutdown().await
            {
                tracing::warn!(cause = %err, group, "stopping a partition group");
            }
            // The group's last log writes land before anyone deletes its copy.
            let log_stopped = log_stopped.lock().take();
            if let Some(log_stopped) = log_stopped {
                log_stopped.await;
            }
        });
        let writer = GroupWriter::spawn(
            route,
            shared,
            Arc::clone(&options.clock),
            slot,
            started,
            stopped,
        );
        Ok(Arc::new(writer))
    }

    fn retire<'a>(
        &'a self,
        topic_id: u32,
        index: u32,
        shared: &'a Arc<PartitionShared>,
    ) -> BoxFuture<'a, Result<()>> {
        let group = keys::partition_group(topic_id, index);
        let (store, shared) = (Arc::clone(&self.store), Arc::clone(shared));
        Box::pin(async move {
            let wiped = tokio::task::spawn_blocking(move || {
                // Nothing applied here: nothing to delete (the common case at a start).
                if store
                    .get(Cf::RaftState, &keys::state(group, StateKey::Applied))?
                    .is_none()
                {
                    return Ok(false);
                }
                rebuild::wipe(store.as_ref(), group, &shared).map(|()| true)
            })
            .await
            .map_err(|err| Error::internal(format!("deleting partition group {group}: {err}")))?
            .map_err(|err| Error::internal(err.to_string()))?;
            if wiped {
                tracing::info!(
                    group,
                    "the partition's replicas moved off this node: its copy is deleted"
                );
            }
            Ok(())
        })
    }

    fn delete(&self, topic_id: u32, index: u32) -> BoxFuture<'_, Result<()>> {
        let group = keys::partition_group(topic_id, index);
        Box::pin(async move {
            let mut batch = WriteBatch::new();
            drop_group(&mut batch, group, StateKey::Vote);
            blocking(&self.store, move |store| store.write(batch, true))
                .await
                .map_err(|err| Error::internal(err.to_string()))
        })
    }
}
