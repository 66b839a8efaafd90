//! Adding and removing nodes of the metadata group (`rapidmq cluster add-node|remove-node`,
//! issue 17).
//!
//! **Add.** The leader adds the node as a learner (openraft `AddNodes`, the node's cluster
//! address in the membership), waits until the learner's replication reached the entry that
//! added it (by log, or by snapshot when the log was purged), within [`CATCH_UP`], then promotes
//! it to voter (`change_membership`, joint consensus). Adding a voter again changes nothing and
//! says so; a learner left behind by an add that timed out is promoted by the next add.
//!
//! **Remove.** The leader proposes the voters without the node (`retain = false`: it leaves the
//! membership). Refused when no voter would remain; the answer warns when fewer than three
//! remain (the group then tolerates no failure). The leader stops replicating to a removed node
//! once the change commits, so the node may never see the entry that leaves it out: the leader
//! then tells it (`MemberChange::Removed`, best effort), and its status says `removed` until it
//! sees a newer membership (it was added again).
//!
//! **Any node.** A node that does not lead the group forwards the change to the leader with
//! `Cluster.ChangeMembers` and returns its answer. Only the metadata group's membership changes
//! here; partition replicas move with rebalance (a later step of issue 17).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::{BasicNode, ChangeMembers};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::node::{MetaRaft, leader_addr};
use super::rpc::{self, Rpc};
use super::{NodeTls, decode, encode};
use crate::error::{Error, Result};

/// How long an add waits for the new node to catch up before it gives up (the node stays a
/// learner; adding it again resumes).
pub const CATCH_UP: Duration = Duration::from_secs(60);

/// How long a forwarded change may take: the catch-up plus the two membership entries.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(90);

/// How long the leader tries to tell a removed node.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(3);

/// A membership change, as a node forwards it to the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MemberChange {
    /// Add node `id`, reached at `addr` (its cluster listener), as a voter.
    Add { id: u64, addr: String },
    /// Remove node `id` from the group.
    Remove { id: u64 },
    /// From the leader to node `id`: the group no longer has it.
    Removed { id: u64 },
}

/// What a change did: the voters afterwards and a note for the operator (already a voter,
/// few voters left), if any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changed {
    pub voters: Vec<u64>,
    pub note: String,
}

/// Where a forwarded change arrives: the metadata group's leader side of [`MemberChange`].
pub struct Members {
    id: u64,
    raft: MetaRaft,
    peers: BTreeMap<u64, String>,
    tls: NodeTls,
    /// Set when this node learnt it was removed: the index of the membership entry it knew
    /// then (0: none).
    removed_at: Mutex<Option<u64>>,
}

impl Members {
    pub fn new(id: u64, raft: MetaRaft, peers: BTreeMap<u64, String>, tls: NodeTls) -> Members {
        Members {
            id,
            raft,
            peers,
            tls,
            removed_at: Mutex::new(None),
        }
    }

    /// Whether this node was removed from the group, and has seen no membership since
    /// (`membership_index`: the index of the membership entry it knows now, 0 for none).
    pub fn removed(&self, membership_index: u64) -> bool {
        self.removed_at
            .lock()
            .is_some_and(|at| membership_index <= at)
    }

    fn note_removed(&self) {
        let known = self
            .raft
            .metrics()
            .borrow_watched()
            .membership_config
            .clone();
        let index = known.log_id().as_ref().map_or(0, |log_id| log_id.index);
        *self.removed_at.lock() = Some(index);
        tracing::warn!(
            node_id = self.id,
            "removed from the metadata group: this node takes no part any more"
        );
    }

    /// Makes `change` through the leader: here if this node leads the group, else forwarded.
    pub async fn change(&self, change: MemberChange) -> Result<Changed> {
        if let MemberChange::Add { id, addr } = &change {
            check_addr(*id, addr)?;
        }
        let leader = self.raft.metrics().borrow_watched().current_leader;
        match leader {
            Some(leader) if leader == self.id => self.lead(change).await,
            Some(leader) => self.forward(leader, change).await,
            None => Err(Error::unavailable(
                "the metadata group has no leader (or this node is not a member); retry",
            )),
        }
    }

    async fn lead(&self, change: MemberChange) -> Result<Changed> {
        match change {
            MemberChange::Add { id, addr } => self.add(id, addr).await,
            MemberChange::Remove { id } => self.remove(id).await,
            MemberChange::Removed { id } => {
                if id == self.id {
                    self.note_removed();
                }
                Ok(Changed::default())
            }
        }
    }

    async fn add(&self, id: u64, addr: String) -> Result<Changed> {
        let membership = self
            .raft
            .metrics()
            .borrow_watched()
            .membership_config
            .clone();
        let membership = membership.membership();
        if membership.voter_ids().any(|voter| voter == id) {
            let known = membership.get_node(&id).map(|n| n.addr.clone());
            let mut note = format!("node {id} is already a voter");
            if let Some(known) = known.filter(|known| *known != addr) {
                note.push_str(&format!(" (at {known}; the address given was not used)"));
            }
            return Ok(Changed {
                voters: membership.voter_ids().collect(),
                note,
            });
        }
        let added = self
            .raft
            .add_learner(id, BasicNode::new(&addr), false)
            .await
            .map_err(raft_error)?;
        tracing::info!(node_id = id, %addr, "added as a learner of the metadata group; catching up");
        let target = added.log_id.index;
        self.raft
            .wait(Some(CATCH_UP))
            .metrics(
                |m| {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(&id).cloned().flatten())
                        .is_some_and(|matched| matched.index >= target)
                },
                "the new node to catch up",
            )
            .await
            .map_err(|err| {
                Error::unavailable(format!(
                    "node {id} at {addr} did not catch up within {}s ({err}); it stays a \
                     learner: check that it runs and reaches this node, then add it again",
                    CATCH_UP.as_secs()
                ))
            })?;
        let changed = self
            .raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(raft_error)?;
        tracing::info!(node_id = id, "promoted to voter of the metadata group");
        let voters: Vec<u64> = match &changed.membership {
            Some(membership) => membership.voter_ids().collect(),
            None => Vec::new(),
        };
        Ok(Changed {
            note: few_voters(voters.len()),
            voters,
        })
    }

    async fn remove(&self, id: u64) -> Result<Changed> {
        let membership = self
            .raft
            .metrics()
            .borrow_watched()
            .membership_config
            .clone();
        let membership = membership.membership();
        if membership.get_node(&id).is_none() {
            return Err(Error::new(
                rapidmq_proto::ErrorCode::NodeNotFound,
                format!("node {id} is not a member of the metadata group"),
            ));
        }
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let change = if voters.contains(&id) {
            if voters.len() == 1 {
                return Err(Error::invalid(format!(
                    "node {id} is the last voter of the metadata group: removing it would \
                     leave no one to decide"
                )));
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        let changed = self
            .raft
            .change_membership(change, false)
            .await
            .map_err(raft_error)?;
        tracing::info!(node_id = id, "removed from the metadata group");
        if id == self.id {
            self.note_removed();
        } else if let Some(addr) = leader_addr(&self.raft, &self.peers, id)
            .or_else(|| membership.get_node(&id).map(|node| node.addr.clone()))
        {
            tokio::spawn(tell_removed(self.tls.clone(), addr, id));
        }
        let voters: Vec<u64> = match &changed.membership {
            Some(membership) => membership.voter_ids().collect(),
            None => voters.into_iter().filter(|v| *v != id).collect(),
        };
        Ok(Changed {
            note: few_voters(voters.len()),
            voters,
        })
    }

    async fn forward(&self, leader: u64, change: MemberChange) -> Result<Changed> {
        let addr = leader_addr(&self.raft, &self.peers, leader).ok_or_else(|| {
            Error::unavailable(format!("no address for the metadata leader, node {leader}"))
        })?;
        let unreachable = |err: &dyn std::fmt::Display| {
            Error::unavailable(format!(
                "forwarding to the metadata leader, node {leader} at {addr}: {err}"
            ))
        };
        let answer: Answer = rpc::call(
            &self.tls,
            &addr,
            FORWARD_TIMEOUT,
            Rpc::ChangeMembers,
            &change,
        )
        .await
        .map_err(|err| unreachable(&err))?;
        answer.map_err(|(code, message)| {
            let code = rapidmq_proto::ErrorCode::from_name(&code)
                .unwrap_or(rapidmq_proto::ErrorCode::Internal);
            Error::new(code, message)
        })
    }
}

/// Tells node `id` at `addr` that it was removed; a node that is down never hears it.
async fn tell_removed(tls: NodeTls, addr: String, id: u64) {
    let change = MemberChange::Removed { id };
    let told = rpc::call::<Answer>(&tls, &addr, NOTICE_TIMEOUT, Rpc::ChangeMembers, &change);
    if let Err(err) = told.await {
        tracing::info!(node_id = id, %addr, cause = %err, "could not tell a removed node");
    }
}

/// A forwarded change's answer: what it did, or its error's code name and message.
type Answer = std::result::Result<Changed, (String, String)>;

/// The leader side of `Cluster.ChangeMembers`, as the `Cluster` service calls it.
pub trait MembersHandle: Send + Sync + 'static {
    /// Decodes a [`MemberChange`], makes it if this node leads the group (never forwards
    /// again), and encodes the [`Answer`].
    fn change(&self, request: Vec<u8>) -> BoxFuture<'_, std::result::Result<Vec<u8>, String>>;
}

impl MembersHandle for Members {
    fn change(&self, request: Vec<u8>) -> BoxFuture<'_, std::result::Result<Vec<u8>, String>> {
        Box::pin(async move {
            let change: MemberChange = decode(&request).map_err(|err| err.to_string())?;
            let leading = self.raft.metrics().borrow_watched().current_leader == Some(self.id);
            let notice = matches!(change, MemberChange::Removed { .. });
            let answer: Answer = if leading || notice {
                self.lead(change)
                    .await
                    .map_err(|err| (err.code().name().to_string(), err.message().to_string()))
            } else {
                Err((
                    "UNAVAILABLE".to_string(),
                    "not the metadata leader any more; retry".to_string(),
                ))
            };
            encode(&answer).map_err(|err| err.to_string())
        })
    }
}

/// Shared so the `Cluster` service and the admin transports reach the same [`Members`].
pub type SharedMembers = Arc<Members>;

/// `addr` must be `host:port`, and `id` a node id.
fn check_addr(id: u64, addr: &str) -> Result<()> {
    if id == 0 {
        return Err(Error::invalid("node ids are 1 or more"));
    }
    let valid = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !valid {
        return Err(Error::invalid(format!(
            "cluster address `{addr}` is not host:port"
        )));
    }
    Ok(())
}

/// The warning for a group left with `voters` voters, if it tolerates no failure.
fn few_voters(voters: usize) -> String {
    if voters >= 3 {
        return String::new();
    }
    format!(
        "the metadata group has {voters} voter{}: it stops if any of them fails (3 or more \
         tolerate a failure)",
        if voters == 1 { "" } else { "s" }
    )
}

fn raft_error(err: impl std::fmt::Display) -> Error {
    Error::unavailable(format!("metadata group membership: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_add_needs_a_node_id_and_a_host_and_port() {
        assert!(check_addr(4, "127.0.0.1:7004").is_ok());
        assert!(check_addr(4, "node-4.internal:7004").is_ok());
        for (id, addr) in [
            (0, "127.0.0.1:7004"),
            (4, "nowhere"),
            (4, ":7004"),
            (4, "h:99999"),
        ] {
            let err = check_addr(id, addr).unwrap_err();
            assert_eq!(
                err.code(),
                rapidmq_proto::ErrorCode::InvalidArgument,
                "{addr}"
            );
        }
    }

    #[test]
    fn fewer_than_three_voters_are_warned_about() {
        assert_eq!(few_voters(3), "");
        assert_eq!(few_voters(5), "");
        assert!(few_voters(2).contains("2 voters"));
        assert!(few_voters(1).contains("1 voter:"));
    }
}
