//! Adding and removing nodes of a running cluster with real processes (`rapidmq cluster
//! add-node|remove-node`): a fourth node started with `--join` waits as "not a member yet",
//! is added through a follower (forwarded to the leader), catches up (it lists the topic
//! created before it joined) and votes: with one of the original nodes killed, the other three
//! keep a leader and a create through the new node succeeds; the killed node is then removed,
//! and a running one, which then says it was removed.
//!
//! Every wait polls the nodes until the condition holds, bounded by `PATIENCE`; no fixed sleep.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::cluster::{
    agreed_leader, cluster_cli, cluster_cli_ok, free_ports, peer_list, start_node, start_node_with,
    status, while_unavailable,
};
use common::{
    PATIENCE, TestBroker, connect, create_topic, decode, encode, eventually, msg, topic_config,
};
use rapidmq_proto::v1 as pb;
use serde_json::Value;

/// The topic names `node` lists, if it answers.
async fn topic_names(node: &TestBroker) -> Option<BTreeSet<String>> {
    let mut clients = tokio::time::timeout(Duration::from_secs(2), connect(node))
        .await
        .ok()?;
    let listed = clients
        .admin
        .list_topics(pb::ListTopicsRequest {})
        .await
        .ok()?
        .into_inner();
    Some(listed.topics.into_iter().map(|t| t.name).collect())
}

/// Topic `name` as `node` describes it, once `node` has applied its creation.
async fn topic_info(node: &TestBroker, name: &str) -> pb::TopicInfo {
    let mut clients = connect(node).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let described = clients
            .admin
            .describe_topic(pb::DescribeTopicRequest { name: name.into() })
            .await;
        match described {
            Ok(info) => return info.into_inner(),
            Err(status) => assert!(
                tokio::time::Instant::now() < deadline,
                "{} never listed `{name}`: {status}",
                node.grpc_url()
            ),
        }
    }
}

/// Waits until `node`'s status satisfies `check`; returns that status.
async fn until_status(
    client: &reqwest::Client,
    node: &TestBroker,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let seen = status(client, node, "http").await;
        if let Some(seen) = seen.as_ref().filter(|s| check(s)) {
            return seen.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last status: {seen:#?}\n{}",
            node.log()
        );
    }
}

/// The members a status lists, by id, with their roles.
fn members(status: &Value) -> Vec<(u64, String)> {
    status["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            (
                n["id"].as_u64().unwrap_or_default(),
                n["role"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Deletes `topic` through `clients`' node, retrying while the metadata group has no leader.
async fn delete_topic(clients: &common::Clients, topic: &str) {
    while_unavailable("delete topic", || {
        let mut admin = clients.admin.clone();
        async move {
            admin
                .delete_topic(pb::DeleteTopicRequest { name: topic.into() })
                .await
        }
    })
    .await
    .unwrap_or_else(|status| panic!("delete {topic}: {status:?}"));
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_node_joins_catches_up_votes_and_a_killed_node_is_removed() {
    // Nodes 2, 3 and 4 form the cluster; node 1 joins later. Its id is the lowest of its
    // --peers, which would have it initialize a group of its own: --join says not to.
    let ports = free_ports(4);
    let all_peers = peer_list(&ports);
    let three = all_peers.split(',').skip(1).collect::<Vec<_>>().join(",");
    let mut nodes: BTreeMap<u64, TestBroker> =
        (2..=4u64).map(|id| (id, start_node(id, &three))).collect();
    let client = reqwest::Client::new();
    let (leader, _) = agreed_leader(
        &client,
        "http",
        &nodes.values().collect::<Vec<_>>(),
        &[2, 3, 4].into(),
        None,
    )
    .await;
    let mut clients = connect(&nodes[&2]).await;
    create_topic(&mut clients, "before-join", topic_config(2)).await;

    // Node 1 starts with every node in --peers, itself included: it does not initialize a
    // group of its own, and says it is not a member yet.
    nodes.insert(1, start_node_with(1, &all_peers, &["--join"]));
    let waiting = until_status(&client, &nodes[&1], "node 1 waiting to join", |s| {
        s["membership"] == "not a member yet"
    })
    .await;
    assert!(members(&waiting).is_empty(), "{waiting:#}");
    assert!(waiting["leader_id"].is_null(), "{waiting:#}");
    let listed = cluster_cli_ok(&nodes[&1], &["status"]);
    assert!(listed.contains("not a member yet"), "{listed}");

    // Added through a follower, which forwards to the leader.
    let follower = (2..=4u64).find(|id| *id != leader).unwrap();
    let addr1 = format!("127.0.0.1:{}", ports[0]);
    let added = cluster_cli(
        &nodes[&follower],
        &[
            "add-node",
            "1",
            "--cluster-addr",
            &addr1,
            "--output",
            "json",
        ],
    );
    assert!(added.status.success(), "add-node: {}", stderr(&added));
    let added: Value = serde_json::from_slice(&added.stdout).expect("JSON");
    assert_eq!(
        added["voters"],
        serde_json::json!([1, 2, 3, 4]),
        "{added:#}"
    );
    // Replicas move to it (`cluster.rebalance_on_join`): cluster_moves.rs follows them.
    assert!(
        added["note"]
            .as_str()
            .is_some_and(|note| note.contains("moving replicas of 1 partition ")),
        "{added:#}"
    );

    // The replica moving to node 1 gets there.
    until_status(&client, &nodes[&1], "the replica move to complete", |s| {
        s["moving_partitions"] == 0
    })
    .await;

    // Every node lists four voters, node 1 registered; node 1 caught up on the topic.
    // (The change commits on the leader first; each node shows it once it applied it.)
    let all: Vec<&TestBroker> = nodes.values().collect();
    let (_, statuses) = agreed_leader(&client, "http", &all, &[1, 2, 3, 4].into(), None).await;
    let voters: Vec<(u64, String)> = (1..=4).map(|id| (id, "voter".into())).collect();
    for node in nodes.values() {
        until_status(&client, node, "four voters", |s| {
            members(s) == voters && s["membership"] == "voter"
        })
        .await;
    }
    let names = topic_names(&nodes[&1]).await.expect("node 1 answers");
    assert!(names.contains("before-join"), "{names:?}");
    let table = cluster_cli_ok(&nodes[&1], &["status"]);
    println!("{table}");
    assert!(table.contains("voter"), "{table}");

    // New topics are placed on the group's voters, node 1 among them (it is in no other
    // node's --peers): a factor of 4 is accepted through node 2, every node places it alike,
    // and node 1 serves what is published through node 2.
    let mut four = topic_config(1);
    four.replication_factor = Some(4);
    create_topic(&mut clients, "on-four", four).await;
    let mut placed = BTreeSet::new();
    for node in nodes.values() {
        let info = topic_info(node, "on-four").await;
        placed.insert(info.partitions[0].replicas.clone());
    }
    assert_eq!(
        placed.len(),
        1,
        "nodes place the topic differently: {placed:?}"
    );
    assert_eq!(
        placed
            .first()
            .unwrap()
            .iter()
            .copied()
            .collect::<BTreeSet<u64>>(),
        (1..=4).collect()
    );
    let through_two = clients.messaging.clone();
    while_unavailable("publish to the four replicas", || {
        let mut through_two = through_two.clone();
        async move {
            through_two
                .publish(pb::PublishRequest {
                    topic: "on-four".into(),
                    batch: encode(&[msg("k", "v")]),
                    ..Default::default()
                })
                .await
        }
    })
    .await
    .expect("publish through node 2");
    let on_one = connect(&nodes[&1]).await.messaging;
    eventually("node 1 to serve the message", || {
        let mut on_one = on_one.clone();
        async move {
            let fetched = on_one
                .fetch(pb::FetchRequest {
                    topic: "on-four".into(),
                    partition: 0,
                    offset: 0,
                    max_messages: 10,
                    max_wait_ms: 0,
                })
                .await;
            fetched.is_ok_and(|f| f.into_inner().batches.iter().flat_map(decode).count() == 1)
        }
    })
    .await;

    // Adding it again changes nothing and says so.
    let again = cluster_cli_ok(&nodes[&2], &["add-node", "1", "--cluster-addr", &addr1]);
    assert!(again.contains("already a voter"), "{again}");

    // kill -9 an original node (the leader): the other three, node 1 among them, elect one.
    let killed = statuses[0]["leader_id"].as_u64().unwrap();
    assert_ne!(killed, 1, "a new learner does not lead");
    nodes.get_mut(&killed).unwrap().kill();
    let survivors: Vec<&TestBroker> = nodes
        .iter()
        .filter(|(id, _)| **id != killed)
        .map(|(_, n)| n)
        .collect();
    let (new_leader, _) = agreed_leader(
        &client,
        "http",
        &survivors,
        &[1, 2, 3, 4].into(),
        Some(killed),
    )
    .await;
    println!("node {killed} killed; node {new_leader} leads");
    let mut through_new = connect(&nodes[&1]).await;
    create_topic(&mut through_new, "after-kill", topic_config(1)).await;
    assert!(
        topic_names(&nodes[&1])
            .await
            .is_some_and(|t| t.contains("after-kill"))
    );

    // Its replicas must move first: those of the four-replica topic have nowhere to go.
    let stuck = cluster_cli(&nodes[&1], &["remove-node", &killed.to_string()]);
    assert!(!stuck.status.success());
    assert!(
        stderr(&stuck).contains("only 3 voting nodes would hold them"),
        "{}",
        stderr(&stuck)
    );
    delete_topic(&through_new, "on-four").await;

    // Remove the killed node: its replicas move to the others (it is down: the survivors of
    // each partition's group send them), then three voters, on every survivor.
    let removed = cluster_cli_ok(&nodes[&1], &["remove-node", &killed.to_string()]);
    assert!(
        removed.contains(&format!("node {killed} removed")),
        "{removed}"
    );
    let remaining: BTreeSet<u64> = (1..=4).filter(|id| *id != killed).collect();
    let (_, statuses) = agreed_leader(&client, "http", &survivors, &remaining, None).await;
    for status in &statuses {
        let ids: BTreeSet<u64> = members(status).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, remaining, "{status:#}");
    }

    // Remove a running node too: two voters left, with a warning; the removed node keeps
    // running, takes no part, and says it was removed. (Its three-replica topics could not
    // move onto two nodes: they go first.)
    for topic in ["before-join", "after-kill"] {
        delete_topic(&through_new, topic).await;
    }
    let live = remaining.iter().copied().find(|id| *id != 1).unwrap();
    let removed = cluster_cli_ok(&nodes[&1], &["remove-node", &live.to_string()]);
    assert!(removed.contains("2 voters"), "the warning: {removed}");
    until_status(&client, &nodes[&live], "the removed node to say so", |s| {
        s["membership"] == "removed"
    })
    .await;

    // A node that is not a member, and a bad address, are refused with the reason.
    let unknown = cluster_cli(&nodes[&1], &["remove-node", "9"]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("node 9 is not a member of the metadata group")
            && stderr(&unknown).contains("NODE_NOT_FOUND (5006)"),
        "{}",
        stderr(&unknown)
    );
    let bad = cluster_cli(&nodes[&1], &["add-node", "5", "--cluster-addr", "nowhere"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("cluster address `nowhere` is not host:port"),
        "{}",
        stderr(&bad)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_voter_cannot_be_removed_and_a_single_node_has_no_members() {
    let one = start_node(1, &peer_list(&free_ports(1)));
    let client = reqwest::Client::new();
    agreed_leader(&client, "http", &[&one], &[1].into(), None).await;
    let refused = cluster_cli(&one, &["remove-node", "1"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("node 1 is the last voter of the metadata group"),
        "{}",
        stderr(&refused)
    );
    let status = status(&client, &one, "http").await.expect("status");
    assert_eq!(members(&status), vec![(1, "voter".to_string())]);

    // Without --peers there is no group to change.
    let single = TestBroker::start();
    for args in [
        &["add-node", "2", "--cluster-addr", "127.0.0.1:7002"][..],
        &["remove-node", "2"],
    ] {
        let refused = cluster_cli(&single, args);
        assert!(!refused.status.success());
        assert!(
            stderr(&refused).contains("not in cluster mode"),
            "{args:?}: {}",
            stderr(&refused)
        );
    }
}
