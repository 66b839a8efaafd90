//! What a cluster-mode node reports about its raft groups, pushed here by the cluster (which
//! watches openraft's metrics) and read at scrape time by `exposition` and by the dashboard's
//! `overview`; [`families`] writes them as the `rapidmq_cluster_*` metrics. Single-node mode
//! never sets it, and nothing cluster-related is exported then.
//!
//! The metadata group reports per group; partition groups report aggregates only
//! ([`ClusterCounters`]: groups hosted, groups without a known leader, leader changes and terms
//! started, summed), never one series per group, to keep label cardinality bounded with
//! thousands of partitions. Node-to-node traffic is counted per peer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;
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

/// Counters the cluster bumps as things happen: the partition groups this node hosts, summed,
/// and the raft traffic it sent, per peer.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    /// Partition groups running on this node.
    pub partition_groups: AtomicI64,
    /// Of those, the ones that know no leader (an election under way, or cut off).
    pub partition_groups_leaderless: AtomicI64,
    /// Of those, the ones this node leads.
    pub partition_groups_leading: AtomicI64,
    /// Times a partition group's leader changed to another node, as this node saw it (the
    /// rule of [`GroupFigures::leader_changes`]), summed over the groups.
    pub partition_leader_changes: AtomicU64,
    /// Times a partition group's term rose on this node (an election started, here or by a
    /// peer that won it; with pre-vote a term only rises for an election that could win),
    /// summed over the groups; a group's first term is not counted.
    pub partition_elections: AtomicU64,
    /// Leadership transfers this node started, handing a partition group back to its preferred
    /// replica (`cluster/leaders.rs`).
    pub leader_transfers: AtomicU64,
    /// Partition replicas this node found damaged (stored batches failing their checksums) and
    /// rebuilt from the other replicas (`cluster/rebuild.rs`).
    pub replica_rebuilds: AtomicU64,
    /// Partitions whose replicas are moving (`engine/replicated/moves.rs`), as this node
    /// applied the metadata: the same on every node.
    pub moving_partitions: AtomicI64,
    /// Replica moves this node leads and takes steps of now (`cluster.max_concurrent_moves`
    /// bounds them).
    pub moves_stepping: AtomicI64,
    /// Replica moves this node leads that wait for one of those slots.
    pub moves_waiting: AtomicI64,
    peers: Mutex<BTreeMap<u64, Arc<PeerTraffic>>>,
}

/// What this node sent to one peer.
#[derive(Debug, Default)]
pub struct PeerTraffic {
    /// Raft batches (requests on the `Cluster.RaftStream` to the peer, one round trip each).
    pub rpcs: AtomicU64,
    /// Raft messages they carried (all groups).
    pub messages: AtomicU64,
}

impl ClusterCounters {
    /// The traffic counters of peer `id`.
    pub fn peer(&self, id: u64) -> Arc<PeerTraffic> {
        Arc::clone(self.peers.lock().entry(id).or_default())
    }

    /// `(peer, rpcs, messages)` of every peer sent to so far.
    pub fn traffic(&self) -> Vec<(u64, u64, u64)> {
        self.peers
            .lock()
            .iter()
            .map(|(id, t)| {
                let rpcs = t.rpcs.load(Ordering::Relaxed);
                (*id, rpcs, t.messages.load(Ordering::Relaxed))
            })
            .collect()
    }
}

/// The partition and traffic families of [`ClusterCounters`].
pub(super) fn counter_families(e: &mut DescriptorEncoder, c: &ClusterCounters) -> std::fmt::Result {
    use MetricType::{Counter, Gauge};
    let gauge = |s: &mut MetricEncoder, v: u64| s.encode_gauge(&(v as i64));
    let load = |a: &AtomicI64| a.load(Ordering::Relaxed).max(0) as u64;
    let single = |v: u64| std::iter::once((Vec::new(), v));
    family(
        e,
        "cluster_partition_groups",
        "Partition groups this node hosts (replicas it runs).",
        None,
        Gauge,
        single(load(&c.partition_groups)),
        gauge,
    )?;
    family(
        e,
        "cluster_partition_groups_leaderless",
        "Partition groups on this node that know no leader.",
        None,
        Gauge,
        single(load(&c.partition_groups_leaderless)),
        gauge,
    )?;
    family(
        e,
        "cluster_partition_groups_leading",
        "Partition groups this node leads.",
        None,
        Gauge,
        single(load(&c.partition_groups_leading)),
        gauge,
    )?;
    family(
        e,
        "cluster_moving_partitions",
        "Partitions whose replicas are moving (rapidmq cluster rebalance): started, not complete.",
        None,
        Gauge,
        single(load(&c.moving_partitions)),
        gauge,
    )?;
    family(
        e,
        "cluster_moves_stepping",
        "Replica moves of partitions this node leads that it takes steps of now (at most cluster.max_concurrent_moves).",
        None,
        Gauge,
        single(load(&c.moves_stepping)),
        gauge,
    )?;
    family(
        e,
        "cluster_moves_waiting",
        "Replica moves of partitions this node leads that wait for a slot (cluster.max_concurrent_moves).",
        None,
        Gauge,
        single(load(&c.moves_waiting)),
        gauge,
    )?;
    family(
        e,
        "cluster_partition_leader_changes",
        "Times a partition group's leader changed to another node, as this node saw it, summed over its groups.",
        None,
        Counter,
        single(c.partition_leader_changes.load(Ordering::Relaxed)),
        counter,
    )?;
    family(
        e,
        "cluster_partition_elections",
        "Times a partition group's raft term rose on this node (elections), summed over its groups.",
        None,
        Counter,
        single(c.partition_elections.load(Ordering::Relaxed)),
        counter,
    )?;
    family(
        e,
        "cluster_leader_transfers",
        "Leadership transfers this node started, handing a partition group back to its preferred replica.",
        None,
        Counter,
        single(c.leader_transfers.load(Ordering::Relaxed)),
        counter,
    )?;
    family(
        e,
        "cluster_replica_rebuilds",
        "Partition replicas this node found damaged on disk (failing their checksums) and rebuilt from the other replicas.",
        None,
        Counter,
        single(c.replica_rebuilds.load(Ordering::Relaxed)),
        counter,
    )?;
    let traffic = c.traffic();
    family(
        e,
        "cluster_rpcs",
        "Raft batches this node sent, per peer: requests on its stream to the peer, each carrying the raft messages of many groups.",
        None,
        Counter,
        traffic
            .iter()
            .map(|&(peer, rpcs, _)| (vec![("peer", peer.to_string())], rpcs)),
        counter,
    )?;
    family(
        e,
        "cluster_raft_messages",
        "Raft messages (appends, heartbeats, votes, snapshot chunks) this node sent, per peer.",
        None,
        Counter,
        traffic
            .iter()
            .map(|&(peer, _, messages)| (vec![("peer", peer.to_string())], messages)),
        counter,
    )
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
