//! Cluster administration through the Rust SDK: a one-node cluster (`serve --node-id 1 --peers
//! 1=127.0.0.1:PORT`) reports itself, refuses bad removals with their codes and has no leader
//! to move; a broker in single-node mode says so.

mod common;

use common::{Env, eventually};
use rapidmq::{Client, ClusterStatus, ErrorCode};
use rapidmq_testkit::{BrokerOptions, TestBroker};

/// A free port for the cluster listener (bound, then released for the broker to take).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_node_cluster_reports_itself_refuses_bad_removals_and_rebalances_nothing() {
    let addr = format!("127.0.0.1:{}", free_port());
    let broker = tokio::task::block_in_place(|| {
        TestBroker::start_with(BrokerOptions {
            args: vec![
                "--node-id".into(),
                "1".into(),
                "--peers".into(),
                format!("1={addr}"),
            ],
            ..BrokerOptions::default()
        })
    });
    let client = Client::connect(broker.grpc_url()).await.unwrap();
    let admin = client.admin();
    eventually("node 1 to lead", || async {
        admin.cluster_status().await.ok().and_then(|s| s.leader_id) == Some(1)
    })
    .await;

    let status: ClusterStatus = admin.cluster_status().await.unwrap();
    assert_eq!(
        (
            status.mode.as_str(),
            status.node_id,
            status.membership.as_str()
        ),
        ("cluster", 1, "voter")
    );
    assert!(status.term >= 1, "{status:?}");
    let nodes: Vec<_> = status
        .nodes
        .iter()
        .map(|n| (n.id, n.role.as_str(), n.cluster_addr.as_str()))
        .collect();
    assert_eq!(nodes, [(1, "voter", addr.as_str())]);

    let unknown = admin.remove_node(9).await.expect_err("node 9 is no member");
    assert_eq!(unknown.code(), ErrorCode::NodeNotFound);
    assert!(
        unknown.to_string().contains("node 9 is not a member"),
        "{unknown}"
    );
    let last = admin
        .remove_node(1)
        .await
        .expect_err("the last voter stays");
    assert_eq!(last.code(), ErrorCode::InvalidArgument);
    assert!(last.to_string().contains("last voter"), "{last}");
    assert_eq!(admin.cluster_status().await.unwrap().nodes[0].role, "voter");
    // The one node leads every partition it has and has no other node to ask.
    let rebalance = admin.rebalance_leaders().await.unwrap();
    assert_eq!((rebalance.transfers, rebalance.unreachable), (0, vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_broker_says_it_is_not_in_cluster_mode() {
    let env = Env::start().await;
    let admin = env.client.admin();
    let status = admin.cluster_status().await.unwrap();
    assert_eq!(status.mode, "single-node");
    assert_eq!(
        (
            status.leader_id,
            status.membership.as_str(),
            status.nodes.len()
        ),
        (None, "", 0)
    );
    let removed = admin.remove_node(1).await.expect_err("not in cluster mode");
    assert_eq!(removed.code(), ErrorCode::InvalidArgument);
    let added = admin
        .add_node(2, "127.0.0.1:7002")
        .await
        .expect_err("not in cluster mode");
    assert_eq!(added.code(), ErrorCode::InvalidArgument);
    let rebalance = admin.rebalance_leaders().await.unwrap();
    assert_eq!((rebalance.transfers, rebalance.unreachable), (0, vec![]));
}
