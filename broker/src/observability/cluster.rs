//! What a cluster-mode node reports about its raft groups, pushed here by the cluster (which
//! watches openraft's metrics) and read at scrape time by `exposition` and by the dashboard's
//! `overview`; [`families`] writes them as the `rapidmq_cluster_*` metrics. Single-node mode
//! never sets it, and nothing cluster-related is exported then.
//!
//! Only the metadata group reports so far; partition groups will report aggregates (leaders
//! held, the worst replication lag), never one series per group, to keep label cardinality
//! bounded with thousands of partitions.

use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder};
use prometheus_client::metrics::MetricType;
use serde::Serialize;

use super::exposition::{counter, family};

/// One raft group as this node sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupFigures {
    /// `metadata` (later: `partitions`, summed over the partition groups).
    pub group: &'static str,
    pub node_id: u64,
    pub term: u64,
    /// The leader this node knows of, if any.
    pub leader: Option<u64>,
    /// Times this node saw the group's leader change to another known node (elections won by a
    /// new node, or this node learning of a leader it did not know), since it started.
    pub leader_changes: u64,
    /// The last log index applied to this node's state machine.
    pub applied_index: u64,
    /// On the leader only: each follower's lag in log entries behind the leader's last log
    /// index (`None` when the follower has acknowledged nothing yet).
    pub replication_lag: Vec<(u64, Option<u64>)>,
}

impl GroupFigures {
    /// Whether this node leads the group.
    pub fn leading(&self) -> bool {
        self.leader == Some(self.node_id)
    }
}

/// The `cluster_*` families, one sample per raft group (`group` label), and one per follower
/// for the replication lag a leader sees.
pub(super) fn families(e: &mut DescriptorEncoder, groups: &[GroupFigures]) -> std::fmt::Result {
    use MetricType::{Counter, Gauge};
    let by_group = |pick: fn(&GroupFigures) -> u64| {
        groups
            .iter()
            .map(move |g| (vec![("group", g.group.to_string())], pick(g)))
    };
    let gauge = |s: &mut MetricEncoder, v: u64| s.encode_gauge(&(v as i64));
    family(
        e,
        "cluster_term",
        "The raft term this node is in, per group.",
        None,
        Gauge,
        by_group(|g| g.term),
        gauge,
    )?;
    family(
        e,
        "cluster_leader",
        "1 when this node leads the group, else 0.",
        None,
        Gauge,
        by_group(|g| u64::from(g.leading())),
        gauge,
    )?;
    family(
        e,
        "cluster_has_leader",
        "1 when this node knows a leader of the group, else 0 (an election is under way or the node is cut off).",
        None,
        Gauge,
        by_group(|g| u64::from(g.leader.is_some())),
        gauge,
    )?;
    family(
        e,
        "cluster_leader_changes",
        "Times the group's leader changed to another node, as this node saw it.",
        None,
        Counter,
        by_group(|g| g.leader_changes),
        counter,
    )?;
    family(
        e,
        "cluster_applied_index",
        "The last raft log index applied on this node, per group.",
        None,
        Gauge,
        by_group(|g| g.applied_index),
        gauge,
    )?;
    family(
        e,
        "cluster_replication_lag",
        "On a leader: log entries each follower is behind (followers that acknowledged nothing yet are left out).",
        None,
        Gauge,
        groups.iter().flat_map(|g| {
            g.replication_lag.iter().filter_map(|&(peer, lag)| {
                Some((
                    vec![("group", g.group.to_string()), ("peer", peer.to_string())],
                    lag?,
                ))
            })
        }),
        gauge,
    )
}
