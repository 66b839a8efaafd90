//! What a cluster-mode node reports about its raft groups, pushed here by the cluster (which
//! watches openraft's metrics) and read at scrape time by `exposition` and by the dashboard's
//! `overview`. Single-node mode never sets it, and nothing cluster-related is exported then.
//!
//! Only the metadata group reports so far; partition groups will report aggregates (leaders
//! held, the worst replication lag), never one series per group, to keep label cardinality
//! bounded with thousands of partitions.

use serde::Serialize;

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
