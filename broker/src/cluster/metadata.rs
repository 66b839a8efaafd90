//! The metadata group's application, [`Metadata`]: the node table plus the engine, and the
//! [`Proposer`] through which the engine's metadata commands reach the group.
//!
//! **Apply.** A `RegisterNode` changes the node table. An engine command goes through the
//! engine's two phases (`engine/replicated/`): `write` has the engine decide it against the
//! applied state and the entries before it in the run (a refused entry writes nothing), and
//! puts the decided command's batch (`MetaCommand::to_write_batch`) in the run's batch; `apply`
//! makes its in-memory effects and replies with the index and the refusal, if any. The run's
//! decisions wait in [`Staged`] between the two phases, in log order.
//!
//! **Propose.** On the leader, `client_write`; on a follower, the command is forwarded to the
//! leader with `Cluster.Propose`, and the follower then waits until it applied the entry's
//! index itself, so whoever asked can use the change on this node at once. No leader within
//! [`LEADER_WAIT`], or a failed forward, is `UNAVAILABLE` naming the leader; the client
//! retries (a retried create may then find its topic there: `ALREADY_EXISTS`).
//!
//! **Snapshots** carry the node table and the engine's replicated records (topics,
//! subscriptions, users, tokens, roles, bindings, tenants, the next topic id). Messages go
//! through each partition's own group (`partitions.rs`); consumer cursors stay node-local.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::{ClientWriteError, RaftError};
use openraft::type_config::alias::{LogIdOf, StoredMembershipOf};
use serde::{Deserialize, Serialize};

use super::node::{MetaRaft, leader_addr, propose};
use super::node_table::{MetaCommand, MetaConfig, MetaReply, NodeTable};
use super::{Apply, NodeTls, decode, encode};
use crate::engine::{self, Decision, Engine, MetaLog, Run};
use crate::error::{Error, Result};
use crate::storage::{StorageError, WriteBatch};

/// How long a proposal waits for the group to have a leader, and a follower for its own apply.
pub const LEADER_WAIT: Duration = Duration::from_secs(10);

/// The metadata state machine's application.
pub struct Metadata {
    nodes: NodeTable,
    engine: Arc<Engine>,
}

/// What the writes of a run hand on to its applies: the engine's view of the run and each
/// engine entry's decision, in log order.
pub struct Staged {
    run: Run,
    decisions: VecDeque<Decision>,
}

/// A snapshot: the node table and the engine's records, each encoded.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    nodes: Vec<u8>,
    engine: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Metadata {
    /// `nodes` and `engine` must hold what the store holds (as opened).
    pub fn new(nodes: NodeTable, engine: Arc<Engine>) -> Metadata {
        Metadata { nodes, engine }
    }

    pub fn nodes(&self) -> &NodeTable {
        &self.nodes
    }
}

fn storage(err: Error) -> StorageError {
    StorageError(err.to_string())
}

impl Apply<MetaConfig> for Metadata {
    type Staged = Staged;

    fn stage(&self) -> Staged {
        Staged {
            run: self.engine.stage_replicated(),
            decisions: VecDeque::new(),
        }
    }

    /// New topics are placed on the voters as of their entry's place in the log.
    fn membership(&self, staged: &mut Staged, membership: &StoredMembershipOf<MetaConfig>) {
        staged
            .run
            .set_voters(membership.membership().voter_ids().collect());
    }

    async fn write(
        &self,
        staged: &mut Staged,
        _log_id: &LogIdOf<MetaConfig>,
        data: &MetaCommand,
        batch: &mut WriteBatch,
    ) -> std::result::Result<(), StorageError> {
        match data {
            MetaCommand::RegisterNode { id, node } => self.nodes.write_register(*id, node, batch),
            MetaCommand::Engine(command) => {
                let decision = self
                    .engine
                    .decide_replicated(&mut staged.run, command)
                    .await
                    .map_err(storage)?;
                if let Decision::Apply(command) = &decision {
                    batch.extend(command.to_write_batch());
                }
                staged.decisions.push_back(decision);
                Ok(())
            }
        }
    }

    async fn apply(
        &mut self,
        staged: &mut Staged,
        log_id: &LogIdOf<MetaConfig>,
        data: MetaCommand,
    ) -> MetaReply {
        let index = log_id.index;
        match data {
            MetaCommand::RegisterNode { id, node } => {
                self.nodes.apply_register(id, node);
                MetaReply::applied(index)
            }
            MetaCommand::Engine(_) => match staged.decisions.pop_front() {
                Some(Decision::Apply(command)) => {
                    match self.engine.apply_replicated(&command).await {
                        Ok(()) => MetaReply::applied(index),
                        Err(err) => {
                            tracing::error!(cause = %err, index, "applying a metadata entry in memory");
                            MetaReply::refused(index, &err)
                        }
                    }
                }
                Some(Decision::Refuse(err)) => MetaReply::refused(index, &err),
                None => MetaReply::refused(index, &Error::internal("no decision for an entry")),
            },
        }
    }

    fn no_payload(&mut self, log_id: &LogIdOf<MetaConfig>) -> MetaReply {
        MetaReply::applied(log_id.index)
    }

    fn snapshot(&self) -> std::result::Result<Vec<u8>, StorageError> {
        encode(&Snapshot {
            nodes: self.nodes.snapshot()?,
            engine: self.engine.metadata_records().map_err(storage)?,
        })
    }

    fn write_restore(
        &self,
        snapshot: &[u8],
        batch: &mut WriteBatch,
    ) -> std::result::Result<(), StorageError> {
        let snapshot: Snapshot = decode(snapshot)?;
        self.nodes.write_restore(&snapshot.nodes, batch)?;
        self.engine
            .write_metadata_restore(&snapshot.engine, batch)
            .map_err(storage)
    }

    async fn restore(&mut self, snapshot: &[u8]) -> std::result::Result<(), StorageError> {
        let snapshot: Snapshot = decode(snapshot)?;
        self.nodes.restore(&snapshot.nodes)?;
        self.engine.restore_metadata().await.map_err(storage)
    }
}

/// Proposes the engine's metadata commands to the metadata group (the engine's [`MetaLog`] in
/// cluster mode).
pub struct Proposer {
    id: u64,
    raft: MetaRaft,
    peers: BTreeMap<u64, String>,
    tls: NodeTls,
}

impl Proposer {
    pub fn new(id: u64, raft: MetaRaft, peers: BTreeMap<u64, String>, tls: NodeTls) -> Proposer {
        Proposer {
            id,
            raft,
            peers,
            tls,
        }
    }

    /// The current leader, waiting up to [`LEADER_WAIT`] for one.
    async fn leader(&self) -> Result<u64> {
        let mut metrics = self.raft.metrics();
        let wait = async {
            loop {
                if let Some(leader) = metrics.borrow_watched().current_leader {
                    return Ok(leader);
                }
                if metrics.changed().await.is_err() {
                    return Err(Error::unavailable("the metadata group stopped"));
                }
            }
        };
        tokio::time::timeout(LEADER_WAIT, wait)
            .await
            .map_err(|_| Error::unavailable("the metadata group has no leader"))?
    }

    async fn propose_entry(&self, command: engine::MetaCommand) -> Result<()> {
        let entry = MetaCommand::Engine(command);
        let leader = self.leader().await?;
        if leader == self.id {
            return match self.raft.client_write(entry).await {
                Ok(written) => written.data.into_result(),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                    Err(Error::unavailable(format!(
                        "not the metadata leader any more (now node {:?}); retry",
                        forward.leader_id
                    )))
                }
                Err(err) => Err(Error::unavailable(format!("metadata group: {err}"))),
            };
        }
        let addr = leader_addr(&self.raft, &self.peers, leader).ok_or_else(|| {
            Error::unavailable(format!("no address for the metadata leader, node {leader}"))
        })?;
        let answer = propose(&self.tls, &addr, &entry).await.map_err(|err| {
            Error::unavailable(format!(
                "forwarding to the metadata leader, node {leader} at {addr}: {err}"
            ))
        })?;
        let reply: MetaReply = decode(&answer).map_err(|err| Error::internal(err.to_string()))?;
        self.raft
            .wait(Some(LEADER_WAIT))
            .applied_index_at_least(Some(reply.index), "a forwarded metadata entry")
            .await
            .map_err(|err| {
                Error::unavailable(format!(
                    "metadata entry {} not applied here yet: {err}",
                    reply.index
                ))
            })?;
        reply.into_result()
    }
}

impl MetaLog for Proposer {
    fn propose(&self, command: engine::MetaCommand) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.propose_entry(command))
    }
}
