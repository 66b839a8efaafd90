//! Steps of a replica move where this node leads the group ([`GroupLog::settle`](crate::engine::GroupLog::settle)).

use std::collections::BTreeSet;

use openraft::ChangeMembers;
use openraft::async_runtime::watch::WatchReceiver;

use super::{PartitionRaft, Route};
use crate::cluster::leaders::standing;
use crate::cluster::network::RPC_TIMEOUT;

/// One step of taking `raft`'s group to the voters `replicas`, where this node leads it
/// ([`GroupLog::settle`](crate::engine::GroupLog::settle)): whether the group got there.
pub(super) async fn settle(
    raft: &PartitionRaft,
    route: &Route,
    replicas: &[u64],
    from: &[u64],
) -> std::result::Result<bool, String> {
    let me = route.me;
    let metrics = raft.metrics().borrow_watched().clone();
    if metrics.state != openraft::ServerState::Leader || metrics.current_leader != Some(me) {
        return Ok(false);
    }
    let membership = metrics.membership_config.membership();
    if membership.get_joint_config().len() > 1 {
        // A change under way: the leader that started it finishes it, or, if it lost the
        // leadership halfway, the leader after it (`LeaderBalance::finish_joint_changes`).
        return Ok(false);
    }
    let wanted: BTreeSet<u64> = replicas.iter().copied().collect();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let learners: BTreeSet<u64> = membership.learner_ids().collect();
    let text = |err: &dyn std::fmt::Display| err.to_string();
    let joining: BTreeSet<u64> = wanted.difference(&voters).copied().collect();
    for &id in joining.difference(&learners) {
        let addr = route
            .addresses
            .get(id)
            .ok_or_else(|| format!("node {id} has no known cluster address"))?;
        raft.add_learner(id, openraft::BasicNode::new(addr), false)
            .await
            .map_err(|err| text(&err))?;
        tracing::info!(
            group = route.group,
            node = id,
            "a new replica joins as a learner"
        );
    }
    if !joining.is_empty() {
        if !joining.iter().all(|&id| standing(raft, me, id).caught_up()) {
            return Ok(false);
        }
        raft.change_membership(ChangeMembers::AddVoterIds(joining.clone()), false)
            .await
            .map_err(|err| text(&err))?;
        tracing::info!(group = route.group, nodes = ?joining, "new replicas caught up: voters now");
        return Ok(false);
    }
    if !wanted.contains(&me) {
        // Leadership first goes to a replica of the new set: a leader does not remove itself.
        // One that was a replica before the move if one is ready: a node the move added is
        // still taking in the data of every partition moving onto it, and the appends it would
        // lead would wait behind those writes. The leader balancer hands the group to its
        // preferred replica later (`cluster/leaders.rs`).
        let ready = |id: &u64| standing(raft, me, *id).ready(RPC_TIMEOUT);
        let to = replicas
            .iter()
            .copied()
            .filter(|id| from.contains(id))
            .find(ready)
            .or_else(|| replicas.iter().copied().find(ready));
        if let Some(to) = to {
            raft.trigger()
                .transfer_leader(to)
                .await
                .map_err(|err| text(&err))?;
            tracing::info!(
                group = route.group,
                to,
                "handing leadership to a new replica"
            );
        }
        return Ok(false);
    }
    let leaving: BTreeSet<u64> = voters.difference(&wanted).copied().collect();
    if !leaving.is_empty() {
        raft.change_membership(ChangeMembers::RemoveVoters(leaving.clone()), false)
            .await
            .map_err(|err| text(&err))?;
        tracing::info!(group = route.group, nodes = ?leaving, "old replicas left the group");
        return Ok(false);
    }
    let extra: BTreeSet<u64> = learners.difference(&wanted).copied().collect();
    if !extra.is_empty() {
        raft.change_membership(ChangeMembers::RemoveNodes(extra), false)
            .await
            .map_err(|err| text(&err))?;
        return Ok(false);
    }
    let at = metrics
        .membership_config
        .log_id()
        .as_ref()
        .map(|id| id.index);
    let applied = metrics.last_applied.as_ref().map(|id| id.index);
    Ok(at <= applied)
}
