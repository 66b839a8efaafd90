//! Reports a raft group to the broker's metrics (`observability::cluster`): one task per group
//! follows openraft's metrics channel and pushes the figures on every change, so scrapes and
//! the dashboard read them without touching raft. Partition groups add to the node's sums
//! instead ([`spawn_partition`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::type_config::alias::WatchReceiverOf;
use openraft::{RaftMetrics, RaftTypeConfig, ServerState};
use tokio::task::JoinHandle;

use crate::observability::Metrics;
use crate::observability::cluster::{ClusterCounters, GroupFigures};

/// Follows `raft_metrics` of the group called `group` until the group shuts down (its channel
/// closes), pushing its figures to `metrics` on every change.
pub fn spawn<C>(
    group: &'static str,
    mut raft_metrics: WatchReceiverOf<C, RaftMetrics<C>>,
    metrics: Arc<Metrics>,
) -> JoinHandle<()>
where
    C: RaftTypeConfig<NodeId = u64, Term = u64>,
{
    tokio::spawn(async move {
        let mut leader_changes = 0;
        let mut last_leader = None;
        loop {
            let figures = {
                let now = raft_metrics.borrow_watched();
                let leader = now.current_leader;
                if leader.is_some() && last_leader.is_some() && leader != last_leader {
                    leader_changes += 1;
                }
                if leader.is_some() {
                    last_leader = leader;
                }
                figures(group, &now, leader_changes)
            };
            metrics.set_cluster_group(figures);
            if raft_metrics.changed().await.is_err() {
                return;
            }
        }
    })
}

/// The figures of one metrics update. The first leader a node learns of is not a change;
/// losing the leader (an election under way) is not one either, only a different one is.
fn figures<C>(group: &'static str, now: &RaftMetrics<C>, leader_changes: u64) -> GroupFigures
where
    C: RaftTypeConfig<NodeId = u64, Term = u64>,
{
    let last_index = now.last_log_index.unwrap_or(0);
    let replication_lag = match (&now.state, &now.replication) {
        (ServerState::Leader, Some(replication)) => replication
            .iter()
            .filter(|(peer, _)| **peer != now.id)
            .map(|(peer, matched)| {
                let lag = matched
                    .as_ref()
                    .map(|log_id| last_index.saturating_sub(log_id.index()));
                (*peer, lag)
            })
            .collect(),
        _ => Vec::new(),
    };
    GroupFigures {
        group,
        node_id: now.id,
        term: now.current_term,
        leader: now.current_leader,
        leader_changes,
        applied_index: now.last_applied.as_ref().map_or(0, |log_id| log_id.index()),
        replication_lag,
    }
}

/// Follows one partition group's `raft_metrics` until it shuts down, adding what it sees to the
/// node's partition sums in `counters` (no series of its own: there may be thousands).
pub fn spawn_partition<C>(
    mut raft_metrics: WatchReceiverOf<C, RaftMetrics<C>>,
    counters: Arc<ClusterCounters>,
) -> JoinHandle<()>
where
    C: RaftTypeConfig<NodeId = u64, Term = u64>,
{
    counters.partition_groups.fetch_add(1, Ordering::Relaxed);
    counters
        .partition_groups_leaderless
        .fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let mut seen = Seen::default();
        loop {
            let (me, leader, term) = {
                let now = raft_metrics.borrow_watched();
                (now.id, now.current_leader, now.current_term)
            };
            seen.update(me, leader, term, &counters);
            if raft_metrics.changed().await.is_err() {
                break;
            }
        }
        counters.partition_groups.fetch_sub(1, Ordering::Relaxed);
        seen.update(0, None, 0, &counters);
        counters
            .partition_groups_leaderless
            .fetch_sub(1, Ordering::Relaxed);
    })
}

/// What one partition group's follower of metrics saw last.
#[derive(Default)]
struct Seen {
    /// The leader known now.
    leader: Option<u64>,
    /// Whether this node is that leader.
    leading: bool,
    /// The last leader known (kept while an election is under way).
    last_leader: Option<u64>,
    term: Option<u64>,
}

impl Seen {
    /// Counts what changed since the last update; the rules of [`figures`] for leaders.
    fn update(&mut self, me: u64, leader: Option<u64>, term: u64, counters: &ClusterCounters) {
        if leader.is_some() && self.last_leader.is_some() && leader != self.last_leader {
            counters
                .partition_leader_changes
                .fetch_add(1, Ordering::Relaxed);
        }
        if let Some(before) = self.term
            && term > before
        {
            counters.partition_elections.fetch_add(1, Ordering::Relaxed);
        }
        let leaderless = &counters.partition_groups_leaderless;
        match (self.leader, leader) {
            (None, Some(_)) => leaderless.fetch_sub(1, Ordering::Relaxed),
            (Some(_), None) => leaderless.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        let leading = &counters.partition_groups_leading;
        match (self.leading, leader == Some(me)) {
            (false, true) => leading.fetch_add(1, Ordering::Relaxed),
            (true, false) => leading.fetch_sub(1, Ordering::Relaxed),
            _ => 0,
        };
        self.leading = leader == Some(me);
        self.leader = leader;
        self.last_leader = leader.or(self.last_leader);
        self.term = Some(term);
    }
}
