//! Leadership returning to each partition's preferred replica (docs/clustering.md "Leader
//! balance").
//!
//! Placement makes a partition's first replica its preferred leader, so the first replicas, and
//! with them the leaders, spread over the nodes. A failover moves leadership to the survivors,
//! and nothing moved it back: after a node restarted, the others kept leading its partitions.
//! Here each node, for every group it leads whose preferred leader is another node, hands the
//! leadership back (openraft's `transfer_leader`, sent over the peer queues,
//! `network.rs`) once that replica is back, that is:
//!
//! - a voter of the group,
//! - acknowledged a heartbeat within an election timeout (it is up and reachable),
//! - caught up: its matched log index is at most [`CAUGHT_UP`] entries behind the leader's last
//!   one (the target waits for the rest before it campaigns; openraft refuses it if it cannot),
//! - and the group is not halfway through a membership change (a joint configuration).
//!
//! A transfer stops the old leader proposing at once and the target campaigns without waiting
//! for a lease: leadership moves in about one round trip plus a synced vote. To avoid flapping a
//! group gets at most one transfer per round interval (and at least two election timeouts apart:
//! time for a transfer that did not take to end in an ordinary election), and
//! a round starts at most [`PER_ROUND`] transfers, so a node that took over hundreds of groups
//! returns them in steps rather than in one burst of elections.
//!
//! Each node runs its rounds on its own (`cluster.leader_rebalance_interval_ms`; 0 turns them
//! off), and `rapidmq cluster rebalance-leaders` runs one at once on every node
//! ([`LeaderBalance::round`]).
//!
//! **Membership changes left halfway.** openraft changes a group's voters in two entries: a
//! joint configuration (a majority of the old voters *and* of the new ones), then the new one
//! alone, proposed by the leader once the first committed. A leader that loses the leadership in
//! between (an election, a transfer, a restart) leaves the group joint, and no later leader
//! finishes it on its own: the group then needs a majority of both sets for every write and
//! election, and a move of its replicas waits forever. So, once a second, each node finishes
//! the joint configuration of every group it leads that has been applied and still joint at two
//! looks in a row ([`LeaderBalance::finish_joint_changes`]): the second step of a change in
//! progress follows its first within milliseconds.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use openraft::Instant as _;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::storage::RaftStateMachine;
use openraft::{ChangeMembers, Raft, RaftTypeConfig, ServerState};
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::NodeTls;
use super::keys::GroupId;
use super::network::RPC_TIMEOUT;
use super::partition_writer::{PartitionRaft, Replicas};
use super::rpc::{self, Rpc};
use crate::observability::cluster::ClusterCounters;

/// How many entries behind the leader's last log index the preferred replica may be and still
/// count as caught up: a busy partition's follower is always a few in-flight appends behind.
pub const CAUGHT_UP: u64 = 64;

/// Transfers one round starts at most.
pub const PER_ROUND: usize = 32;

/// A partition group this node runs, and its preferred leader.
struct Hosted {
    raft: PartitionRaft,
    /// The group's replicas: the first is its preferred leader (a replica move changes it).
    replicas: Replicas,
    /// Whether the group was left halfway through a membership change
    /// ([`LeaderBalance::finish_joint_changes`]).
    joint: JointWatch,
    /// When this node last handed the group's leadership over.
    transferred: Option<Instant>,
}

/// The partition groups of this node, for the return of their leadership.
pub struct LeaderBalance {
    me: u64,
    groups: Mutex<HashMap<GroupId, Hosted>>,
    /// A replica that acknowledged a heartbeat within this long is reachable.
    healthy_within: Duration,
    /// At most one transfer per group in this long.
    gap: Duration,
    counters: Arc<ClusterCounters>,
}

/// What the leader of a group knows of one replica, from its raft metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Whether this node leads the group.
    pub leading: bool,
    /// The leader's last log index.
    pub last_index: u64,
    /// Whether the replica is a voter of the group.
    pub voter: bool,
    /// Whether the group's membership is one set of voters, not a joint configuration halfway
    /// through a change.
    pub uniform: bool,
    /// The last log index the leader knows the replica has.
    pub matched: Option<u64>,
    /// How long ago the replica last acknowledged a heartbeat.
    pub acked_ago: Option<Duration>,
}

impl Standing {
    /// Whether leadership may go to the replica now: it votes, it answered within
    /// `healthy_within` and it is caught up, and no membership change is halfway (a transfer
    /// then would leave it joint).
    pub fn ready(&self, healthy_within: Duration) -> bool {
        self.leading
            && self.voter
            && self.uniform
            && self.acked_ago.is_some_and(|ago| ago < healthy_within)
            && self.caught_up()
    }

    /// Whether the replica's matched log index is within [`CAUGHT_UP`] of the leader's last.
    pub fn caught_up(&self) -> bool {
        self.matched
            .is_some_and(|matched| matched + CAUGHT_UP >= self.last_index)
    }
}

impl LeaderBalance {
    /// The balance of node `me`'s groups: a replica is reachable when it acknowledged a
    /// heartbeat within `election_timeout`; a group is handed over at most once per `interval`
    /// (at least two election timeouts). Transfers are counted in `counters`.
    pub fn new(
        me: u64,
        election_timeout: Duration,
        interval: Duration,
        counters: Arc<ClusterCounters>,
    ) -> LeaderBalance {
        LeaderBalance {
            me,
            groups: Mutex::new(HashMap::new()),
            healthy_within: election_timeout,
            gap: interval.max(election_timeout * 2),
            counters,
        }
    }

    /// `group` runs here as `raft`; the first of `replicas` is its preferred leader.
    pub fn insert(&self, group: GroupId, raft: PartitionRaft, replicas: &Replicas) {
        let hosted = Hosted {
            raft,
            replicas: replicas.clone(),
            joint: JointWatch::default(),
            transferred: None,
        };
        self.groups.lock().insert(group, hosted);
    }

    /// `group` stopped on this node.
    pub fn remove(&self, group: GroupId) {
        self.groups.lock().remove(&group);
    }

    /// Hands the leadership of each group this node leads back to its preferred replica where
    /// that one is ready and the group was not handed over within the gap, [`PER_ROUND`] at
    /// most; how many transfers it started.
    pub async fn round(&self) -> usize {
        let now = Instant::now();
        let due: Vec<(GroupId, PartitionRaft, u64)> = {
            let mut groups = self.groups.lock();
            let mut due = Vec::new();
            for (group, hosted) in groups.iter_mut() {
                if due.len() == PER_ROUND {
                    break;
                }
                let recent = hosted
                    .transferred
                    .is_some_and(|at| now.duration_since(at) < self.gap);
                let Some(preferred) = hosted.replicas.first() else {
                    continue;
                };
                if preferred == self.me || recent {
                    continue;
                }
                if standing(&hosted.raft, self.me, preferred).ready(self.healthy_within) {
                    hosted.transferred = Some(now);
                    due.push((*group, hosted.raft.clone(), preferred));
                }
            }
            due
        };
        let mut started = 0;
        for (group, raft, to) in due {
            match raft.trigger().transfer_leader(to).await {
                Ok(()) => {
                    tracing::info!(group, to, "handing partition leadership back");
                    started += 1;
                }
                Err(err) => tracing::debug!(group, cause = %err, "leadership transfer"),
            }
        }
        self.counters
            .leader_transfers
            .fetch_add(started as u64, Ordering::Relaxed);
        started
    }

    /// Finishes the membership changes left halfway in the groups this node leads: each whose
    /// membership is a joint configuration, applied here, that it also was at the last call
    /// (the same entry) gets the change's second step, the new voters alone. How many it
    /// started.
    pub fn finish_joint_changes(&self) -> usize {
        let mut stuck = Vec::new();
        for (group, hosted) in self.groups.lock().iter_mut() {
            if hosted.joint.stuck(&hosted.raft, self.me) {
                stuck.push((*group, hosted.raft.clone()));
            }
        }
        let started = stuck.len();
        for (group, raft) in stuck {
            // The voters the change leaves out stay learners: a replica being rebuilt was
            // demoted to one to be sent everything again, and a move removes the learners it
            // does not want at its last step.
            tokio::spawn(async move { finish_joint(&raft, group, true).await });
        }
        started
    }

    /// The groups this node hosts (tests).
    #[cfg(test)]
    pub(super) fn hosted(&self) -> Vec<PartitionRaft> {
        self.groups
            .lock()
            .values()
            .map(|hosted| hosted.raft.clone())
            .collect()
    }

    /// Runs [`finish_joint_changes`](LeaderBalance::finish_joint_changes) every `interval`
    /// until the handle is aborted.
    pub fn drive_joint_changes(self: &Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let balance = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                balance.finish_joint_changes();
            }
        })
    }

    /// Runs a [`round`](LeaderBalance::round) every `interval` until the handle is aborted.
    pub fn drive(self: &Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let balance = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate: nothing is to return right after a start.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                balance.round().await;
            }
        })
    }
}

/// Asks the node whose cluster listener is `addr` for a round now (`Cluster.RebalanceLeaders`);
/// how many transfers it started.
pub async fn ask(tls: &NodeTls, addr: &str) -> Result<u64, String> {
    rpc::call(tls, addr, RPC_TIMEOUT, Rpc::RebalanceLeaders, &())
        .await
        .map_err(|err| format!("node at {addr}: {err}"))
}

/// Looks, now and then, whether a group was left halfway through a membership change.
#[derive(Debug, Default)]
pub struct JointWatch {
    /// The log index of the joint configuration the group had, applied, at the last look.
    seen: Option<u64>,
}

impl JointWatch {
    /// Whether node `me` leads `raft`'s group and its membership is a joint configuration it
    /// has applied (committed, not a change just proposed), the same one as at the last look.
    /// The next look starts over.
    pub fn stuck<C, SM>(&mut self, raft: &Raft<C, SM>, me: u64) -> bool
    where
        C: RaftTypeConfig<NodeId = u64>,
        SM: RaftStateMachine<C>,
    {
        let joint = {
            let watch = raft.metrics();
            let metrics = watch.borrow_watched();
            let leading =
                metrics.state == ServerState::Leader && metrics.current_leader == Some(me);
            let config = &metrics.membership_config;
            let index = config.log_id().as_ref().map(|id| id.index());
            let applied = metrics.last_applied.as_ref().map(|id| id.index());
            let joint = config.membership().get_joint_config().len() > 1;
            index.filter(|_| leading && joint && index <= applied)
        };
        let stuck = joint.is_some() && joint == self.seen;
        self.seen = if stuck { None } else { joint };
        stuck
    }
}

/// Gives the group `raft` leads the second step of the membership change it was left halfway
/// through: adding no voter to a joint configuration makes its newer set of voters the
/// membership; with `retain`, the voters it leaves out stay learners.
pub async fn finish_joint<C, SM>(raft: &Raft<C, SM>, group: GroupId, retain: bool)
where
    C: RaftTypeConfig<NodeId = u64>,
    SM: RaftStateMachine<C>,
{
    let change = ChangeMembers::AddVoterIds(BTreeSet::new());
    match raft.change_membership(change, retain).await {
        Ok(_) => tracing::info!(
            group,
            "finished a membership change a former leader left halfway"
        ),
        Err(err) => tracing::debug!(group, cause = %err, "finishing a joint membership"),
    }
}

/// What `raft`'s metrics on node `me` say of replica `replica`.
pub(super) fn standing(raft: &PartitionRaft, me: u64, replica: u64) -> Standing {
    let metrics = raft.metrics().borrow_watched().clone();
    let leading = metrics.state == ServerState::Leader && metrics.current_leader == Some(me);
    let membership = metrics.membership_config.membership();
    let voter = membership.voter_ids().any(|id| id == replica);
    let uniform = membership.get_joint_config().len() == 1;
    let matched = metrics
        .replication
        .as_ref()
        .and_then(|r| r.get(&replica).cloned().flatten())
        .map(|log_id| log_id.index);
    let acked_ago = metrics
        .heartbeat
        .as_ref()
        .and_then(|acks| acks.get(&replica).copied().flatten())
        .map(|acked| acked.elapsed());
    Standing {
        leading,
        last_index: metrics.last_log_index.unwrap_or(0),
        voter,
        uniform,
        matched,
        acked_ago,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(1500);

    fn back() -> Standing {
        Standing {
            leading: true,
            last_index: 1000,
            voter: true,
            uniform: true,
            matched: Some(1000),
            acked_ago: Some(Duration::from_millis(300)),
        }
    }

    #[test]
    fn a_caught_up_reachable_preferred_replica_gets_the_leadership_back() {
        assert!(back().ready(TIMEOUT));
        let close = Standing {
            matched: Some(1000 - CAUGHT_UP),
            ..back()
        };
        assert!(close.ready(TIMEOUT), "a few appends in flight");
    }

    #[test]
    fn a_replica_that_is_behind_silent_or_not_a_voter_does_not() {
        let behind = Standing {
            matched: Some(1000 - CAUGHT_UP - 1),
            ..back()
        };
        let never_matched = Standing {
            matched: None,
            ..back()
        };
        let silent = Standing {
            acked_ago: Some(TIMEOUT),
            ..back()
        };
        let never_acked = Standing {
            acked_ago: None,
            ..back()
        };
        let learner = Standing {
            voter: false,
            ..back()
        };
        let follower = Standing {
            leading: false,
            ..back()
        };
        let mid_change = Standing {
            uniform: false,
            ..back()
        };
        for standing in [
            behind,
            never_matched,
            silent,
            never_acked,
            learner,
            follower,
            mid_change,
        ] {
            assert!(!standing.ready(TIMEOUT), "{standing:?}");
        }
    }
}
