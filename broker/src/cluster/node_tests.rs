//! The joint finishers on three in-process nodes talking over 127.0.0.1: a membership change
//! left halfway, as a leader that stopped between openraft's two steps leaves it, is finished
//! by the leader that has it, in the metadata group (`finish_metadata_joint`) and in a
//! partition's group (`LeaderBalance::finish_joint_changes`).
//!
//! Every wait polls until the condition holds, bounded by `PATIENCE`; no fixed sleep.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use openraft::entry::RaftPayload;
use openraft::storage::RaftStateMachine;
use openraft::{Membership, Precondition, RaftTypeConfig};

use super::*;
use crate::config::{Config, PeerList};

/// Longest any wait of these tests takes.
const PATIENCE: Duration = Duration::from_secs(30);
/// Between two looks at a condition polled for.
const POLL: Duration = Duration::from_millis(50);

/// A node, its engine and the data directory it runs on.
struct Node {
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
    node: ClusterNode,
}

/// Ports free on 127.0.0.1 at the time of asking, one per node.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect()
}

/// Node `id` of the cluster of `peers`, on an engine of its own.
async fn start(id: u64, peers: &[String]) -> Node {
    let dir = tempfile::tempdir().expect("a data directory");
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        cluster: ClusterConfig {
            node_id: id,
            peers: PeerList(peers.to_vec()),
            ..ClusterConfig::default()
        },
        ..Config::default()
    };
    let cluster = config.cluster.clone();
    let runtime = tokio::runtime::Handle::current();
    let engine = tokio::task::spawn_blocking(move || Engine::open(config, runtime))
        .await
        .expect("the engine opens")
        .expect("the engine opens");
    // No client listeners: the metadata group does not need them.
    let me = NodeInfo {
        grpc_addr: String::new(),
        http_addr: String::new(),
    };
    let node = ClusterNode::start(&cluster, NodeTls::plaintext(), Arc::clone(&engine), me)
        .await
        .expect("the node starts");
    Node {
        _dir: dir,
        engine,
        node,
    }
}

/// Polls `done` until it holds; panics naming `what` after `PATIENCE`.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// Three nodes of one cluster, once they name one metadata leader; its id.
async fn three_nodes() -> (Vec<Node>, u64) {
    let ports = free_ports(3);
    let peers: Vec<String> = (1..=3)
        .zip(&ports)
        .map(|(id, port)| format!("{id}=127.0.0.1:{port}"))
        .collect();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start(id, &peers).await);
    }
    let mut leader = 0;
    until("the three nodes name one metadata leader", || {
        let leaders: BTreeSet<_> = nodes.iter().map(|n| n.node.status().leader).collect();
        match leaders.into_iter().collect::<Vec<_>>()[..] {
            [Some(id)] => {
                leader = id;
                true
            }
            _ => false,
        }
    })
    .await;
    (nodes, leader)
}

/// The voter sets of `raft`'s membership, and the index of the entry that holds it.
fn voters<C, SM>(raft: &Raft<C, SM>) -> (Vec<BTreeSet<u64>>, Option<u64>)
where
    C: RaftTypeConfig<NodeId = u64>,
    SM: RaftStateMachine<C>,
{
    let metrics = raft.metrics().borrow_watched().clone();
    let config = &metrics.membership_config;
    let index = config.log_id().as_ref().map(|id| id.index());
    (config.membership().get_joint_config().clone(), index)
}

/// Leaves the group `raft` leads, of voters `all`, halfway through a change from `all` back
/// to itself through `all` without its highest id: appends and commits the joint
/// configuration alone, as a leader that stopped after openraft's first step leaves it. The
/// index of that entry.
async fn leave_joint<C, SM>(raft: &Raft<C, SM>, all: &BTreeSet<u64>) -> u64
where
    C: RaftTypeConfig<NodeId = u64>,
    SM: RaftStateMachine<C>,
{
    let observed = raft.metrics().borrow_watched().membership_config.clone();
    let known: BTreeMap<u64, C::Node> = observed
        .membership()
        .nodes()
        .map(|(id, node)| (*id, node.clone()))
        .collect();
    let mut fewer = all.clone();
    fewer.pop_last();
    let joint = vec![fewer, all.clone()];
    let proposed = Membership::new(joint.clone(), known).expect("a joint membership");
    let written = raft
        .append_membership(
            proposed,
            C::Payload::blank(),
            [Precondition::LastMembershipLogId {
                last_membership_log_id: observed.log_id().clone(),
            }],
        )
        .await
        .expect("the joint membership commits");
    let committed = written
        .membership
        .expect("the write carries its membership");
    assert_eq!(committed.get_joint_config(), &joint, "left joint");
    written.log_id.index()
}

async fn stop(nodes: Vec<Node>) {
    for node in &nodes {
        node.node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metadata_leader_finishes_a_membership_change_left_halfway() {
    let (nodes, leader) = three_nodes().await;
    let raft = &nodes[(leader - 1) as usize].node.raft;
    let all = BTreeSet::from([1, 2, 3]);
    until("the founding membership is committed", || {
        voters(raft).0 == vec![all.clone()]
    })
    .await;
    let joint_index = leave_joint(raft, &all).await;

    // The leader finishes it: the newer set of voters becomes the membership, in a later entry.
    until("the leader finishes the joint membership", || {
        let (configs, index) = voters(raft);
        configs == vec![all.clone()] && index > Some(joint_index)
    })
    .await;
    stop(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_leader_finishes_a_membership_change_left_halfway() {
    let (nodes, leader) = three_nodes().await;
    let spec = crate::engine::TopicSpec {
        partitions: Some(1),
        replication_factor: Some(3),
        ..Default::default()
    };
    let engine = &nodes[(leader - 1) as usize].engine;
    engine
        .create_topic(&crate::principal::Principal::anonymous(), "joint", spec)
        .await
        .expect("the topic is created");
    // The node leading the partition's group, once its three replicas are its voters.
    let all = BTreeSet::from([1, 2, 3]);
    let mut raft = None;
    until("a node leads the partition's group of three voters", || {
        raft = nodes.iter().find_map(|node| {
            node.node.balance.hosted().into_iter().find(|raft| {
                let leading = raft.metrics().borrow_watched().state == ServerState::Leader;
                leading && voters(raft).0 == vec![all.clone()]
            })
        });
        raft.is_some()
    })
    .await;
    let raft = raft.expect("the partition's leader");
    let joint_index = leave_joint(&raft, &all).await;

    until(
        "the partition's leader finishes the joint membership",
        || {
            let (configs, index) = voters(&raft);
            configs == vec![all.clone()] && index > Some(joint_index)
        },
    )
    .await;
    stop(nodes).await;
}
