//! Reports a raft group to the broker's metrics (`observability::cluster`): one task per group
//! follows openraft's metrics channel and pushes the figures on every change, so scrapes and
//! the dashboard read them without touching raft.

use std::sync::Arc;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::type_config::alias::WatchReceiverOf;
use openraft::{RaftMetrics, RaftTypeConfig, ServerState};
use tokio::task::JoinHandle;

use crate::observability::Metrics;
use crate::observability::cluster::GroupFigures;

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
