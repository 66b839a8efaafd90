//! A membership change left halfway (its joint configuration committed, its second step never
//! proposed: the caller went away, or the leader lost the leadership in between) is finished by
//! the group's leader: openraft proposes the second step only from the caller's future.

use std::time::Duration;

use openraft::ChangeMembers;
use rapidmq_broker::cluster::leaders::LeaderBalance;
use rapidmq_broker::cluster::partition_writer::Replicas;

use super::*;

/// Whether `raft`'s membership is a joint configuration that it has applied.
fn joint_applied(metrics: &openraft::RaftMetrics<PartitionConfig>) -> bool {
    let config = &metrics.membership_config;
    config.membership().get_joint_config().len() > 1
        && config.log_id().as_ref().map(|id| id.index)
            <= metrics.last_applied.as_ref().map(|id| id.index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_change_left_joint_is_finished_by_the_leader() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = start_group(&dirs).await;
    let rafts: Vec<(u64, Raft<PartitionConfig, Machine>)> = nodes
        .iter()
        .map(|n| (n.id, n.raft.clone().unwrap()))
        .collect();
    let refs: Vec<_> = rafts.iter().map(|(id, raft)| (*id, raft)).collect();
    let leader_id = support::leader(&refs).await;
    let leader = rafts
        .iter()
        .find(|(id, _)| *id == leader_id)
        .unwrap()
        .1
        .clone();
    let leaving = rafts
        .iter()
        .map(|(id, _)| *id)
        .find(|&id| id != leader_id)
        .unwrap();

    // The change's first step goes to the leader; its caller then goes away before it is
    // polled again, so the second step is never proposed.
    let change =
        leader.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([leaving])), true);
    let mut change = Box::pin(change);
    assert!(futures::poll!(&mut change).is_pending());
    leader
        .wait(Some(WAIT))
        .metrics(joint_applied, "the joint configuration is applied")
        .await
        .unwrap();
    drop(change);

    // Every node runs the finisher, as a broker does; the leader finishes the change.
    let mut finishers = Vec::new();
    for (id, raft) in &rafts {
        let balance = Arc::new(LeaderBalance::new(
            *id,
            Duration::from_millis(1500),
            Duration::from_secs(10),
            Arc::default(),
        ));
        let replicas = Replicas::new(rafts.iter().map(|(id, _)| *id).collect());
        balance.insert(GROUP, raft.clone(), &replicas);
        finishers.push(balance.drive_joint_changes(Duration::from_millis(100)));
    }
    let finished = leader
        .wait(Some(WAIT))
        .metrics(
            |m| {
                let membership = m.membership_config.membership();
                membership.get_joint_config().len() == 1
                    && !membership.voter_ids().any(|id| id == leaving)
                    && m.membership_config.log_id().as_ref().map(|id| id.index)
                        <= m.last_applied.as_ref().map(|id| id.index)
            },
            "the change is finished: one set of voters, without the leaving node",
        )
        .await
        .unwrap();
    let membership = finished.membership_config.membership();
    assert!(
        membership.learner_ids().any(|id| id == leaving),
        "the leaving voter stays a learner, as the change asked: {membership:?}"
    );

    for finisher in finishers {
        finisher.abort();
    }
    for node in &mut nodes {
        node.stop().await;
    }
}
