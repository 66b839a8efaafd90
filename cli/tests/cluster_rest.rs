//! REST in cluster mode, with three real `rapidmq serve` processes: a REST client that talks to
//! one node only gets what the whole cluster holds (docs/clustering.md "REST in cluster mode").
//!
//! - Queue: a topic with one partition led by each node. Long-polls through one node receive
//!   the messages of all three partitions, each once; their acks through that node reach every
//!   partition's leader (each partition's queue floor moves to its end). Nacks through a third
//!   node redeliver, as second attempts, to a consumer polling through a second.
//! - Stream: a long-poll through a node that does not coordinate the subscription joins the
//!   group on the coordinator, which lists it as a member while the poll waits. Server-Sent
//!   Events through one node and a WebSocket through another join the group there too and split
//!   the partitions: each message reaches one of them, once; the WebSocket's commit is made as
//!   its member; closing the events stream hands its partitions to the WebSocket. With auth on,
//!   revoking the token of such an events stream ends it.
//! - With auth on, the same through a user's token: the node a poll reaches authorises it, and
//!   the others serve their share for that user; a request without a token is refused.
//! - Live sessions of a queue subscription: Server-Sent Events through one node carry the
//!   messages of all three partitions; a WebSocket through another acks one of what it got
//!   and closes, and the others are handed back at once, well before their ack deadline.
//!
//! Every wait polls until the condition holds, bounded by `PATIENCE`; no fixed sleep.

mod common;
mod rest_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use common::cluster::{
    create_subscription_retrying, key_of_each_partition, preferred_leaders,
    publish_to_each_partition, replicated_topic_with, start_nodes,
};
use common::{
    BrokerOptions, Clients, PATIENCE, TestBroker, connect, eventually, queue_subscription,
    topic_config,
};
use futures::{SinkExt, StreamExt};
use rapidmq_proto::v1 as pb;
use rest_common::{Rest, SseReader};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;

const PARTITIONS: u32 = 3;
/// Messages per partition.
const MESSAGES: usize = 20;
/// Long enough that nothing is redelivered on its own during the test.
const ACK_DEADLINE_MS: u64 = 120_000;

fn options(_: u64) -> BrokerOptions {
    BrokerOptions::default()
}

fn subscription_url(node: &TestBroker, topic: &str, subscription: &str) -> String {
    format!(
        "{}/v1/topics/{topic}/subscriptions/{subscription}",
        node.http_url()
    )
}

/// Publishes `count` messages to each partition of `topic` through `node`, values named
/// after `phase`; the values sent.
async fn publish(node: &TestBroker, topic: &str, phase: &str, count: usize) -> BTreeSet<String> {
    let client = rapidmq::Client::connect(node.grpc_url())
        .await
        .expect("connect the SDK");
    publish_to_each_partition(&client, topic, PARTITIONS, phase, count).await
}

/// What REST long-polls of `consumer` through `node` returned until every value of `expected`
/// arrived: value → the messages carrying it.
async fn poll_until(
    node: &TestBroker,
    topic: &str,
    subscription: &str,
    consumer: &str,
    expected: &BTreeSet<String>,
) -> BTreeMap<String, Vec<Value>> {
    poll_until_by(node, topic, subscription, consumer, expected, 1000).await
}

/// [`poll_until`] with polls of at most `max` messages (each answer checked to keep to it).
async fn poll_until_by(
    node: &TestBroker,
    topic: &str,
    subscription: &str,
    consumer: &str,
    expected: &BTreeSet<String>,
    max: usize,
) -> BTreeMap<String, Vec<Value>> {
    let http = reqwest::Client::new();
    let url = format!(
        "{}/messages?max={max}&wait_ms=500&consumer={consumer}",
        subscription_url(node, topic, subscription)
    );
    let mut received: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let deadline = Instant::now() + PATIENCE;
    while !expected.iter().all(|v| received.contains_key(v)) {
        assert!(
            Instant::now() < deadline,
            "REST polls through {} received {} of {} messages",
            node.http_url(),
            received.len(),
            expected.len()
        );
        let answer: Value = http
            .get(&url)
            .send()
            .await
            .expect("poll")
            .error_for_status()
            .expect("poll answered")
            .json()
            .await
            .expect("poll JSON");
        let messages = answer["messages"].as_array().expect("messages");
        assert!(
            messages.len() <= max,
            "{} messages for max={max}",
            messages.len()
        );
        for message in messages {
            let value = message["value"].as_str().expect("a UTF-8 value");
            received
                .entry(value.to_string())
                .or_default()
                .push(message.clone());
        }
    }
    received
}

/// Settles (`ack`, `nack`) the receipts of `messages` through `node`'s REST API.
async fn settle(
    node: &TestBroker,
    topic: &str,
    subscription: &str,
    how: &str,
    messages: &[&Value],
) {
    let receipts: Vec<&Value> = messages.iter().map(|m| &m["receipt"]).collect();
    let answer = reqwest::Client::new()
        .post(format!(
            "{}/{how}",
            subscription_url(node, topic, subscription)
        ))
        .json(&json!({ "receipts": receipts }))
        .send()
        .await
        .expect(how);
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    assert_eq!(status, 204, "{how} through {}: {body}", node.http_url());
}

/// The queue floor (lowest unsettled offset) of each partition as `clients`' node describes
/// the subscription.
async fn floors(clients: &Clients, topic: &str, subscription: &str) -> Vec<u64> {
    let Ok(info) = clients
        .admin
        .clone()
        .describe_subscription(pb::DescribeSubscriptionRequest {
            topic: topic.into(),
            name: subscription.into(),
        })
        .await
    else {
        return Vec::new();
    };
    let mut cursors = info.into_inner().cursors;
    cursors.sort_by_key(|c| c.partition);
    cursors.iter().map(|c| c.committed_offset).collect()
}

/// Waits until `clients`' node reports each partition's queue floor at `end`.
async fn floors_reach(clients: &Clients, topic: &str, subscription: &str, end: &[u64]) {
    eventually(
        "every partition's queue floor where it should be",
        || async { floors(clients, topic, subscription).await == end },
    )
    .await;
}

/// Three nodes with queue subscription `subscription` of `topic`, whose partitions are led one
/// by each node ([`spread_topic`]). Node 1's clients.
async fn queue_on_three_nodes(topic: &str, subscription: &str) -> (Vec<TestBroker>, Clients) {
    let nodes = start_nodes(3, options);
    let clients = spread_topic(&nodes, topic).await;
    create_subscription_retrying(
        &clients,
        queue_subscription(topic, subscription, ACK_DEADLINE_MS, 5),
    )
    .await;
    (nodes, clients)
}

/// Three nodes with `topic` (three partitions, three replicas), each partition led by its
/// preferred replica, one per node. Node 1's clients.
async fn spread_topic(nodes: &[TestBroker], topic: &str) -> Clients {
    let mut config = topic_config(PARTITIONS);
    config.replication_factor = Some(3);
    let (clients, _) = replicated_topic_with(nodes, topic, config).await;
    let leaders: BTreeSet<u64> = preferred_leaders(nodes, topic, PARTITIONS)
        .await
        .into_iter()
        .collect();
    assert_eq!(leaders, [1, 2, 3].into(), "one partition led by each node");
    clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_queue_consumer_of_one_node_gets_and_settles_every_partition() {
    const TOPIC: &str = "jobs";
    const SUBSCRIPTION: &str = "workers";
    let (nodes, clients) = queue_on_three_nodes(TOPIC, SUBSCRIPTION).await;
    let sent = publish(&nodes[0], TOPIC, "first", MESSAGES).await;

    // Every message of every partition through node 1, each once.
    let received = poll_until(&nodes[0], TOPIC, SUBSCRIPTION, "w", &sent).await;
    let twice: Vec<_> = received.iter().filter(|(_, m)| m.len() > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let partitions: BTreeSet<u64> = received
        .values()
        .map(|m| m[0]["partition"].as_u64().expect("partition"))
        .collect();
    assert_eq!(partitions, [0, 1, 2].into());
    let messages: Vec<&Value> = received.values().map(|m| &m[0]).collect();
    assert!(messages.iter().all(|m| m["attempt"] == 1));

    // Their acks through node 1 reach each partition's leader.
    settle(&nodes[0], TOPIC, SUBSCRIPTION, "ack", &messages).await;
    let end = vec![MESSAGES as u64; PARTITIONS as usize];
    for node in &nodes {
        floors_reach(&connect(node).await, TOPIC, SUBSCRIPTION, &end).await;
    }

    // Nacked through node 3, what node 2's consumer got comes again, to node 3's consumer.
    let sent = publish(&nodes[1], TOPIC, "second", 1).await;
    // One message a poll, fewer than the three nodes asked: the nodes take turns.
    let first = poll_until_by(&nodes[1], TOPIC, SUBSCRIPTION, "x", &sent, 1).await;
    let messages: Vec<&Value> = first.values().map(|m| &m[0]).collect();
    settle(&nodes[2], TOPIC, SUBSCRIPTION, "nack", &messages).await;
    let again = poll_until(&nodes[2], TOPIC, SUBSCRIPTION, "y", &sent).await;
    let attempts: Vec<&Value> = again.values().map(|m| &m[0]["attempt"]).collect();
    assert!(
        attempts.iter().all(|a| **a == 2),
        "redelivered as second attempts: {attempts:?}"
    );
    let messages: Vec<&Value> = again.values().map(|m| &m[0]).collect();
    settle(&nodes[0], TOPIC, SUBSCRIPTION, "ack", &messages).await;
    let end = vec![MESSAGES as u64 + 1; PARTITIONS as usize];
    floors_reach(&clients, TOPIC, SUBSCRIPTION, &end).await;
}

/// The members of stream subscription `subscription` of `topic` that `node` lists, with the
/// partitions assigned to each.
async fn assignment(
    node: &TestBroker,
    topic: &str,
    subscription: &str,
) -> BTreeMap<String, Vec<u32>> {
    let answer = reqwest::Client::new()
        .get(subscription_url(node, topic, subscription))
        .send()
        .await
        .expect("describe");
    let Ok(answer) = answer.error_for_status() else {
        return BTreeMap::new();
    };
    let described: Value = answer.json().await.expect("describe JSON");
    described["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let name = m["consumer_name"]
                .as_str()
                .expect("consumer_name")
                .to_string();
            let partitions = m["partitions"].as_array().expect("partitions");
            let partitions = partitions
                .iter()
                .map(|p| p.as_u64().expect("a partition") as u32);
            (name, partitions.collect())
        })
        .collect()
}

/// A stream subscription of `topic` that node `coordinator` coordinates (it leads the
/// partition the name hashes to), created; its name.
async fn stream_coordinated_by(
    nodes: &[TestBroker],
    clients: &Clients,
    topic: &str,
    coordinator: u64,
) -> String {
    let leaders = preferred_leaders(nodes, topic, PARTITIONS).await;
    let subscription = (0..)
        .map(|i| format!("readers-{i}"))
        .find(|name| {
            let partition = rapidmq_proto::partition_for_key(name.as_bytes(), PARTITIONS);
            leaders[partition as usize] == coordinator
        })
        .expect("a name coordinated by the node");
    create_subscription_retrying(
        clients,
        pb::CreateSubscriptionRequest {
            topic: topic.into(),
            name: subscription.clone(),
            mode: pb::SubscriptionMode::Stream as i32,
            start: None,
            queue: None,
        },
    )
    .await;
    subscription
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_stream_poll_joins_the_group_on_the_coordinator() {
    const TOPIC: &str = "events";
    let nodes = start_nodes(3, options);
    let clients = spread_topic(&nodes, TOPIC).await;
    // A subscription coordinated by node 3, polled through node 1.
    let subscription = stream_coordinated_by(&nodes, &clients, TOPIC, 3).await;
    let url = format!(
        "{}/messages?wait_ms=10000&consumer=far-reader",
        subscription_url(&nodes[0], TOPIC, &subscription)
    );
    let poll = tokio::spawn(async move {
        reqwest::Client::new()
            .get(url)
            .send()
            .await
            .expect("poll")
            .error_for_status()
            .expect("poll answered")
            .json::<Value>()
            .await
            .expect("poll JSON")
    });
    eventually(
        "the coordinator lists the REST poll as a member",
        || async {
            assignment(&nodes[2], TOPIC, &subscription)
                .await
                .contains_key("far-reader")
        },
    )
    .await;
    // A message published meanwhile ends the poll, from whichever partition it went to.
    let sent = publish(&nodes[1], TOPIC, "late", 1).await;
    let answer = poll.await.expect("the poll task");
    let got: BTreeSet<String> = answer["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["value"].as_str().expect("value").to_string())
        .collect();
    assert!(!got.is_empty() && got.is_subset(&sent), "{answer}");
}

/// The next JSON frame of `socket` that is not a ping.
async fn frame<S>(socket: &mut S) -> Value
where
    S: futures::Stream<Item = Result<Frame, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let next = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("the socket reads");
        if let Frame::Text(text) = next {
            return serde_json::from_str(text.as_str()).expect("a JSON frame");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_queue_sessions_of_one_node_get_every_partition_and_hand_back_what_they_held() {
    const TOPIC: &str = "tasks";
    const SUBSCRIPTION: &str = "workers";
    let (nodes, clients) = queue_on_three_nodes(TOPIC, SUBSCRIPTION).await;

    // Server-Sent Events through node 1: every message of every partition, each once.
    let rest = Rest::new(&nodes[0]);
    let path = format!("/v1/topics/{TOPIC}/subscriptions/{SUBSCRIPTION}/events?consumer=sse");
    let mut events = SseReader::open(&rest, &path).await;
    let sent = publish(&nodes[1], TOPIC, "sse", MESSAGES).await;
    let got = events.messages(sent.len()).await;
    let values: BTreeSet<String> = got
        .iter()
        .map(|m| m["value"].as_str().expect("value").to_string())
        .collect();
    assert_eq!(values, sent, "each message once");
    let messages: Vec<&Value> = got.iter().collect();
    settle(&nodes[1], TOPIC, SUBSCRIPTION, "ack", &messages).await;
    drop(events);
    let end = vec![MESSAGES as u64; PARTITIONS as usize];
    floors_reach(&clients, TOPIC, SUBSCRIPTION, &end).await;
    // Its sessions end on every node before the WebSocket's claims, which they would share.
    eventually("no node lists a session of the events stream", || async {
        let mut left = false;
        for node in &nodes {
            let members = assignment(node, TOPIC, SUBSCRIPTION).await;
            left |= members.keys().any(|name| name.starts_with("sse"));
        }
        !left
    })
    .await;

    // A WebSocket through node 3 gets one message of each partition, acks one and closes.
    let sent = publish(&nodes[1], TOPIC, "ws", 1).await;
    let url = format!(
        "{}/v1/topics/{TOPIC}/subscriptions/{SUBSCRIPTION}/ws?consumer=ws&credits=10",
        nodes[2].http_url().replacen("http", "ws", 1)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("open the WebSocket");
    let mut held: Vec<Value> = Vec::new();
    while held.len() < sent.len() {
        let frame = frame(&mut socket).await;
        assert_eq!(frame["type"], "messages", "{frame}");
        held.extend(
            frame["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .cloned(),
        );
    }
    let acked = held.remove(0);
    let ack = json!({"op": "ack", "id": 1, "receipts": [acked["receipt"]]});
    socket
        .send(Frame::Text(ack.to_string().into()))
        .await
        .expect("send the ack");
    let done = frame(&mut socket).await;
    assert_eq!(done, json!({"type": "done", "id": 1}));
    socket.close(None).await.expect("close the WebSocket");

    // What it held and did not ack comes back to a poll through node 2, as second attempts,
    // long before the ack deadline; what it acked does not.
    let expected: BTreeSet<String> = held
        .iter()
        .map(|m| m["value"].as_str().expect("value").to_string())
        .collect();
    let again = poll_until(&nodes[1], TOPIC, SUBSCRIPTION, "after", &expected).await;
    assert!(
        !again.contains_key(acked["value"].as_str().expect("value")),
        "the acked message came again"
    );
    assert!(again.values().all(|m| m[0]["attempt"] == 2), "{again:?}");
}

/// The partitions assigned to the member of `assigned` whose name starts with `prefix`.
fn assigned_to(assigned: &BTreeMap<String, Vec<u32>>, prefix: &str) -> Option<BTreeSet<u32>> {
    assigned
        .iter()
        .find(|(name, _)| name.starts_with(prefix))
        .map(|(_, partitions)| partitions.iter().copied().collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stream_sessions_through_other_nodes_split_the_group_on_its_coordinator() {
    const TOPIC: &str = "feed";
    let nodes = start_nodes(3, options);
    let clients = spread_topic(&nodes, TOPIC).await;
    let subscription = stream_coordinated_by(&nodes, &clients, TOPIC, 3).await;

    // Server-Sent Events through node 1 and a WebSocket through node 2: both join the one
    // group on node 3, which splits the three partitions between them.
    let path = format!("/v1/topics/{TOPIC}/subscriptions/{subscription}/events?consumer=sse");
    let mut events = SseReader::open(&Rest::new(&nodes[0]), &path).await;
    let url = format!(
        "{}/v1/topics/{TOPIC}/subscriptions/{subscription}/ws?consumer=ws&credits=1000",
        nodes[1].http_url().replacen("http", "ws", 1)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("open the WebSocket");
    let split = |assigned: &BTreeMap<String, Vec<u32>>| {
        let sse = assigned_to(assigned, "sse (live session ")?;
        let ws = assigned_to(assigned, "ws (live session ")?;
        let whole = sse.is_disjoint(&ws) && sse.union(&ws).count() == PARTITIONS as usize;
        (whole && !sse.is_empty() && !ws.is_empty()).then_some((sse, ws))
    };
    eventually(
        "node 3 splits the partitions between the two sessions",
        || async { split(&assignment(&nodes[2], TOPIC, &subscription).await).is_some() },
    )
    .await;
    let (sse_partitions, ws_partitions) =
        split(&assignment(&nodes[2], TOPIC, &subscription).await).expect("the split holds");

    // Each session gets the messages of its own partitions, so each message comes once.
    let sent = publish(&nodes[0], TOPIC, "live", MESSAGES).await;
    let mut got = events.messages(sse_partitions.len() * MESSAGES).await;
    let for_sse = got.len();
    while got.len() < sent.len() {
        let frame = frame(&mut socket).await;
        assert_eq!(frame["type"], "messages", "{frame}");
        got.extend(
            frame["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .cloned(),
        );
    }
    for (i, message) in got.iter().enumerate() {
        let partition = message["partition"].as_u64().expect("partition") as u32;
        let own = if i < for_sse {
            &sse_partitions
        } else {
            &ws_partitions
        };
        assert!(
            own.contains(&partition),
            "a message of partition {partition} came to the other session: {message}"
        );
    }
    let values: BTreeSet<String> = got
        .iter()
        .map(|m| m["value"].as_str().expect("value").to_string())
        .collect();
    assert_eq!(values, sent, "every message");
    assert_eq!(got.len(), sent.len(), "each message once");

    // The WebSocket commits as its member on node 3.
    let offsets: Vec<Value> = ws_partitions
        .iter()
        .map(|p| json!({"partition": p, "offset": MESSAGES}))
        .collect();
    let commit = json!({"op": "commit", "id": 7, "offsets": offsets});
    socket
        .send(Frame::Text(commit.to_string().into()))
        .await
        .expect("send the commit");
    assert_eq!(frame(&mut socket).await, json!({"type": "done", "id": 7}));
    eventually("the commit reaches the WebSocket's partitions", || async {
        let committed = floors(&clients, TOPIC, &subscription).await;
        ws_partitions
            .iter()
            .all(|p| committed.get(*p as usize) == Some(&(MESSAGES as u64)))
    })
    .await;

    // Closing the Server-Sent Events ends its membership on node 3: the WebSocket's session
    // takes every partition.
    drop(events);
    eventually(
        "the WebSocket's session is the only member, with every partition",
        || async {
            let assigned = assignment(&nodes[2], TOPIC, &subscription).await;
            assigned.len() == 1
                && assigned_to(&assigned, "ws (live session ").is_some_and(|p| p.len() == 3)
        },
    )
    .await;
    socket.close(None).await.expect("close the WebSocket");
}

/// `request` with `token`, sent; status and JSON body (`Null` when empty).
async fn send_with(request: reqwest::RequestBuilder, token: Option<&str>) -> (u16, Value) {
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let answer = request.send().await.expect("REST request");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// Sends what `request` makes until it is not refused as `UNAVAILABLE` (the cluster has no
/// leader for it yet), bounded by `PATIENCE`; its status and body.
async fn while_unavailable(
    what: &str,
    token: &str,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> (u16, Value) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = send_with(request(), Some(token)).await;
        if status != 503 {
            return (status, body);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still unavailable: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await; // retry pace of a refused request
    }
}

/// Three nodes with auth on, node 1 bootstrapped with an admin token, once every node knows
/// it; the token.
async fn nodes_with_auth() -> (Vec<TestBroker>, String) {
    let token = rapidmq_broker::auth::Token::generate()
        .expect("a token")
        .to_string();
    let nodes = start_nodes(3, |id| BrokerOptions {
        env: match id {
            1 => vec![("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN".into(), token.clone())],
            _ => Vec::new(),
        },
        args: vec!["--auth".into()],
    });
    let http = reqwest::Client::new();
    for node in &nodes {
        eventually("the bootstrap admin is known on every node", || async {
            let whoami = http.get(format!("{}/v1/auth/whoami", node.http_url()));
            send_with(whoami, Some(&token)).await.0 == 200
        })
        .await;
    }
    (nodes, token)
}

/// The leader of each partition of `topic` as `node` knows it, with `token`; those it knows.
async fn partition_leaders(node: &TestBroker, topic: &str, token: &str) -> Vec<u64> {
    let metadata =
        reqwest::Client::new().get(format!("{}/v1/metadata?topics={topic}", node.http_url()));
    let (_, body) = send_with(metadata, Some(token)).await;
    body["topics"][0]["partitions"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["leader"].as_u64()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_a_live_stream_session_through_another_node_ends_when_its_token_is_revoked() {
    const TOPIC: &str = "guarded";
    let (nodes, admin) = nodes_with_auth().await;
    let http = reqwest::Client::new();
    let first = &nodes[0];
    let (status, body) = while_unavailable("create the topic", &admin, || {
        http.post(format!("{}/v1/topics", first.http_url())).json(
            &json!({"name": TOPIC, "config": {"partitions": PARTITIONS, "replication_factor": 3}}),
        )
    })
    .await;
    assert_eq!(status, 201, "{body}");
    // A subscription coordinated by another node than node 1, where the session is opened.
    eventually("every partition has a leader", || async {
        partition_leaders(first, TOPIC, &admin).await.len() == PARTITIONS as usize
    })
    .await;
    let leaders = partition_leaders(first, TOPIC, &admin).await;
    let subscription = (0..)
        .map(|i| format!("readers-{i}"))
        .find(|name| {
            let partition = rapidmq_proto::partition_for_key(name.as_bytes(), PARTITIONS);
            leaders[partition as usize] != 1
        })
        .expect("a name coordinated elsewhere");
    let (status, body) = while_unavailable("create the subscription", &admin, || {
        http.post(format!(
            "{}/v1/topics/{TOPIC}/subscriptions",
            first.http_url()
        ))
        .json(&json!({"name": subscription, "mode": "stream", "start": {"kind": "earliest"}}))
    })
    .await;
    assert_eq!(status, 201, "{body}");

    // Server-Sent Events through node 1 with a token of their own; a message comes through.
    let tokens = http.post(format!("{}/v1/users/admin/tokens", first.http_url()));
    let (status, created) = send_with(tokens.json(&json!({})), Some(&admin)).await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().expect("the token");
    let id = created["info"]["id"].as_str().expect("the token's id");
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {token}").parse().expect("a header value");
    headers.insert(reqwest::header::AUTHORIZATION, bearer);
    let rest = Rest {
        http: reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("a client"),
        base: first.http_url(),
    };
    let path = format!("/v1/topics/{TOPIC}/subscriptions/{subscription}/events?consumer=sse");
    let mut events = SseReader::open(&rest, &path).await;
    let (status, body) = while_unavailable("publish", &admin, || {
        http.post(format!("{}/v1/topics/{TOPIC}/messages", first.http_url()))
            .json(&json!({"messages": [{"value": "before"}]}))
    })
    .await;
    assert_eq!(status, 200, "{body}");
    let got = events.messages(1).await;
    assert_eq!(got[0]["value"], "before");

    // Revoked, the token ends the session: the coordinator's session runs as the broker, so
    // the node the client reached checks the caller.
    let revoke = http.delete(format!("{}/v1/tokens/{id}", first.http_url()));
    let (status, _) = send_with(revoke, Some(&admin)).await;
    assert_eq!(status, 204);
    let (event, problem) = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("the session ends in time");
    assert_eq!(event, "error", "{problem}");
    assert_eq!(problem["name"], "UNAUTHENTICATED", "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_a_users_rest_queue_poll_of_one_node_gets_every_partition() {
    const TOPIC: &str = "secured";
    const SUBSCRIPTION: &str = "workers";
    let (nodes, token) = nodes_with_auth().await;
    let http = reqwest::Client::new();
    let first = &nodes[0];
    let (status, body) = while_unavailable("create the topic", &token, || {
        http.post(format!("{}/v1/topics", first.http_url())).json(
            &json!({"name": TOPIC, "config": {"partitions": PARTITIONS, "replication_factor": 3}}),
        )
    })
    .await;
    assert_eq!(status, 201, "{body}");
    // Each node leads one partition, so a poll through node 1 needs the other two.
    eventually("one partition led by each node", || async {
        let metadata = http.get(format!("{}/v1/metadata?topics={TOPIC}", first.http_url()));
        let (_, body) = send_with(metadata, Some(&token)).await;
        let leaders: BTreeSet<u64> = body["topics"][0]["partitions"]
            .as_array()
            .map(|p| p.iter().filter_map(|p| p["leader"].as_u64()).collect())
            .unwrap_or_default();
        leaders == [1, 2, 3].into()
    })
    .await;
    let (status, body) = while_unavailable("create the subscription", &token, || {
        http.post(format!(
            "{}/v1/topics/{TOPIC}/subscriptions",
            first.http_url()
        ))
        .json(
            &json!({"name": SUBSCRIPTION, "mode": "queue", "start": {"kind": "earliest"},
                "queue": {"ack_deadline_ms": ACK_DEADLINE_MS, "max_deliveries": 5}}),
        )
    })
    .await;
    assert_eq!(status, 201, "{body}");
    let mut sent = BTreeSet::new();
    let mut messages = Vec::new();
    for key in key_of_each_partition(PARTITIONS) {
        for i in 0..MESSAGES {
            let value = format!("secured-{key}-{i}");
            messages.push(json!({"key": key, "value": value}));
            sent.insert(value);
        }
    }
    let (status, body) = while_unavailable("publish", &token, || {
        http.post(format!("{}/v1/topics/{TOPIC}/messages", first.http_url()))
            .json(&json!({ "messages": messages }))
    })
    .await;
    assert_eq!(status, 200, "{body}");

    let base = subscription_url(first, TOPIC, SUBSCRIPTION);
    let poll = format!("{base}/messages?max=1000&wait_ms=500&consumer=w");
    let (status, _) = send_with(http.get(&poll), None).await;
    assert_eq!(status, 401, "a poll without a token is refused");
    let mut received: BTreeMap<String, Value> = BTreeMap::new();
    let deadline = Instant::now() + PATIENCE;
    while received.len() < sent.len() {
        assert!(
            Instant::now() < deadline,
            "received {} of {}",
            received.len(),
            sent.len()
        );
        let (status, body) = send_with(http.get(&poll), Some(&token)).await;
        assert_eq!(status, 200, "{body}");
        for message in body["messages"].as_array().expect("messages") {
            let value = message["value"].as_str().expect("value").to_string();
            assert!(
                received.insert(value, message.clone()).is_none(),
                "twice: {message}"
            );
        }
    }
    assert_eq!(received.keys().cloned().collect::<BTreeSet<_>>(), sent);
    let receipts: Vec<&Value> = received.values().map(|m| &m["receipt"]).collect();
    let ack = http
        .post(format!("{base}/ack"))
        .json(&json!({ "receipts": receipts }));
    let (status, body) = send_with(ack, Some(&token)).await;
    assert_eq!(status, 204, "{body}");
    eventually("every partition's queue floor at its end", || async {
        let (_, body) = send_with(http.get(&base), Some(&token)).await;
        let floors: Vec<u64> = body["cursors"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|c| c["committed_offset"].as_u64())
                    .collect()
            })
            .unwrap_or_default();
        floors == vec![MESSAGES as u64; PARTITIONS as usize]
    })
    .await;
}
