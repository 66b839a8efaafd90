//! REST streaming: Server-Sent Events and WebSocket consumers get messages live, and their
//! acks and commits take effect.

mod rest_common;

use futures::{SinkExt, StreamExt};
use rest_common::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_stream_messages_live_and_commits_take_effect() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("t", 1).await;
    rest.create_subscription("t", json!({"name": "s", "start": {"kind": "earliest"}}))
        .await;
    rest.post("/v1/topics/t/message", json!({"value": "before"}))
        .await
        .ok();
    let mut events = SseReader::open(&rest, "/v1/topics/t/subscriptions/s/events").await;
    let first = events.messages(1).await;
    assert_eq!(first[0]["value"], "before");
    // Published while the stream is open: arrives live.
    rest.post(
        "/v1/topics/t/messages",
        json!({"messages": [{"value": "live1"}, {"value": "live2"}]}),
    )
    .await
    .ok();
    let live = events.messages(2).await;
    assert_eq!(live[0]["value"], "live1");
    assert_eq!(live[1]["offset"], 2);
    let commit = rest
        .post(
            "/v1/topics/t/subscriptions/s/commit",
            json!({"offsets": [{"partition": 0, "offset": 3}]}),
        )
        .await;
    assert_eq!(commit.status.as_u16(), 204);
    let sub = rest.describe_subscription("t", "s").await;
    assert_eq!(sub["total_lag"], 0);
    assert_eq!(sub["members"][0]["consumer_name"], "rest-sse");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_queue_events_carry_receipts_that_acks_settle() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("jobs", 1).await;
    rest.create_subscription(
        "jobs",
        json!({"name": "w", "mode": "queue", "queue": {"ack_deadline_ms": 60000}}),
    )
    .await;
    let mut events = SseReader::open(&rest, "/v1/topics/jobs/subscriptions/w/events").await;
    rest.post(
        "/v1/topics/jobs/messages",
        json!({"messages": [{"value": "a"}, {"value": "b"}]}),
    )
    .await
    .ok();
    let messages = events.messages(2).await;
    assert_eq!(messages[0]["attempt"], 1);
    let ack = rest
        .post(
            "/v1/topics/jobs/subscriptions/w/ack",
            json!({"receipts": [messages[0]["receipt"], messages[1]["receipt"]]}),
        )
        .await;
    assert_eq!(ack.status.as_u16(), 204, "{ack:?}");
    let sub = rest.describe_subscription("jobs", "w").await;
    assert_eq!(sub["queue_stats"]["in_flight"], 0);
    assert_eq!(sub["total_lag"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_stream_ends_with_an_error_event_when_the_subscription_is_deleted() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("t", 1).await;
    rest.create_subscription("t", json!({"name": "s"})).await;
    let mut events = SseReader::open(&rest, "/v1/topics/t/subscriptions/s/events").await;
    rest.delete("/v1/topics/t/subscriptions/s").await;
    let (event, problem) = events.next().await;
    assert_eq!(event, "error");
    assert_eq!(problem["name"], "SUBSCRIPTION_NOT_FOUND");
    rest.get("/v1/topics/t/subscriptions/s/events")
        .await
        .problem(404, "SUBSCRIPTION_NOT_FOUND");
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_socket(broker: &TestBroker, path: &str) -> Socket {
    let url = format!("{}{path}", broker.http_url().replacen("http", "ws", 1));
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket upgrade");
    socket
}

async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON frame from the broker.
async fn receive(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("the socket reads");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

async fn receive_messages(socket: &mut Socket, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let frame = receive(socket).await;
        assert_eq!(frame["type"], "messages", "{frame}");
        out.extend(frame["messages"].as_array().unwrap().iter().cloned());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_queue_consumer_receives_live_and_acks_over_the_socket() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("jobs", 1).await;
    rest.create_subscription(
        "jobs",
        json!({"name": "w", "mode": "queue", "queue": {"ack_deadline_ms": 60000, "max_deliveries": 5}}),
    )
    .await;
    let mut socket = open_socket(&broker, "/v1/topics/jobs/subscriptions/w/ws?credits=2").await;
    rest.post(
        "/v1/topics/jobs/messages",
        json!({"messages": [{"value": "a"}, {"value": "b"}, {"value": "c"}]}),
    )
    .await
    .ok();
    let first = receive_messages(&mut socket, 2).await;
    assert_eq!(values(&json!(first)), ["a", "b"]);

    // Credits are spent: "c" waits until more are granted.
    send(
        &mut socket,
        json!({"op": "ack", "id": 1, "receipts": [first[0]["receipt"]]}),
    )
    .await;
    assert_eq!(receive(&mut socket).await, json!({"type": "done", "id": 1}));
    send(
        &mut socket,
        json!({"op": "nack", "id": 2, "receipts": [first[1]["receipt"]]}),
    )
    .await;
    assert_eq!(receive(&mut socket).await, json!({"type": "done", "id": 2}));
    send(&mut socket, json!({"op": "credit", "id": 3, "messages": 5})).await;
    let mut rest_of = Vec::new();
    while rest_of.len() < 2 {
        let frame = receive(&mut socket).await;
        match frame["type"].as_str() {
            Some("done") => assert_eq!(frame["id"], 3),
            Some("messages") => rest_of.extend(frame["messages"].as_array().unwrap().clone()),
            _ => panic!("unexpected frame {frame}"),
        }
    }
    let mut got = values(&json!(rest_of));
    got.sort();
    assert_eq!(got, ["b", "c"], "the nacked message comes back");
    let receipts: Vec<Value> = rest_of.iter().map(|m| m["receipt"].clone()).collect();
    send(
        &mut socket,
        json!({"op": "extend", "id": 4, "receipts": receipts, "extend_ms": 90000}),
    )
    .await;
    assert_eq!(receive(&mut socket).await, json!({"type": "done", "id": 4}));
    send(
        &mut socket,
        json!({"op": "ack", "id": 5, "receipts": receipts}),
    )
    .await;
    assert_eq!(receive(&mut socket).await, json!({"type": "done", "id": 5}));
    let sub = rest.describe_subscription("jobs", "w").await;
    assert_eq!(sub["queue_stats"]["in_flight"], 0);
    assert_eq!(sub["total_lag"], 0);

    // Bad frames get an error frame; the socket stays usable.
    send(
        &mut socket,
        json!({"op": "ack", "id": 6, "receipts": [first[0]["receipt"]]}),
    )
    .await;
    let err = receive(&mut socket).await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["id"], 6);
    assert_eq!(err["problem"]["name"], "RECEIPT_UNKNOWN");
    send(&mut socket, json!({"op": "commit", "id": 7, "offsets": []})).await;
    assert_eq!(
        receive(&mut socket).await["problem"]["name"],
        "SUBSCRIPTION_MODE_MISMATCH"
    );
    socket.send(Message::Text("not json".into())).await.unwrap();
    assert_eq!(
        receive(&mut socket).await["problem"]["name"],
        "MALFORMED_REQUEST"
    );
    send(&mut socket, json!({"op": "credit", "id": 8, "messages": 1})).await;
    assert_eq!(receive(&mut socket).await, json!({"type": "done", "id": 8}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_stream_consumer_commits_over_the_socket() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("t", 1).await;
    rest.create_subscription("t", json!({"name": "s"})).await;
    let mut socket = open_socket(&broker, "/v1/topics/t/subscriptions/s/ws").await;
    // The session is live before the publish: a stream subscription from latest sees it.
    rest.post("/v1/topics/t/message", json!({"value": "x"}))
        .await
        .ok();
    let got = receive_messages(&mut socket, 1).await;
    assert_eq!(got[0]["value"], "x");
    send(
        &mut socket,
        json!({"op": "commit", "id": 1, "offsets": [{"partition": 0, "offset": 1}]}),
    )
    .await;
    assert_eq!(receive(&mut socket).await, json!({"type": "done", "id": 1}));
    let sub = rest.describe_subscription("t", "s").await;
    assert_eq!(sub["cursors"][0]["committed_offset"], 1);
    send(&mut socket, json!({"op": "ack", "id": 2, "receipts": []})).await;
    assert_eq!(
        receive(&mut socket).await["problem"]["name"],
        "SUBSCRIPTION_MODE_MISMATCH"
    );

    // Without upgrade headers the endpoint answers a problem, not a 5xx.
    rest.get("/v1/topics/t/subscriptions/s/ws")
        .await
        .problem(400, "MALFORMED_REQUEST");
}

/// The nack delay and deadline extension caps (`queue.max_nack_delay_ms`,
/// `queue.max_ack_extension_ms`, 24 h by default) hold on the REST and WebSocket consumers as on
/// gRPC: above the cap the request is refused with INVALID_ARGUMENT and settles nothing, and the
/// served OpenAPI document states the cap as the field's `maximum`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_delay_and_extension_above_the_cap_are_refused_over_rest_and_websocket() {
    const DAY_MS: u64 = 86_400_000;
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("jobs", 1).await;
    rest.create_subscription(
        "jobs",
        json!({"name": "w", "mode": "queue", "start": {"kind": "earliest"}, "queue": {"ack_deadline_ms": 60000, "max_deliveries": 5}}),
    )
    .await;
    rest.post(
        "/v1/topics/jobs/messages",
        json!({"messages": [{"value": "a"}, {"value": "b"}, {"value": "c"}, {"value": "d"}]}),
    )
    .await
    .ok();

    let doc = rest.get("/v1/openapi.json").await.ok();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["Nack"]["properties"]["delay_ms"]["maximum"], DAY_MS);
    assert_eq!(
        schemas["Extend"]["properties"]["extend_ms"]["maximum"],
        DAY_MS
    );

    // REST long-polling consumer.
    let polled = rest
        .get("/v1/topics/jobs/subscriptions/w/messages?max=2&wait_ms=5000&consumer=c1")
        .await
        .ok();
    let polled = polled["messages"].as_array().unwrap().clone();
    assert_eq!(values(&json!(polled)), ["a", "b"]);
    let receipts: Vec<Value> = polled.iter().map(|m| m["receipt"].clone()).collect();
    rest.post(
        "/v1/topics/jobs/subscriptions/w/nack",
        json!({"receipts": [receipts[0]], "delay_ms": DAY_MS + 1}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
    rest.post(
        "/v1/topics/jobs/subscriptions/w/extend",
        json!({"receipts": [receipts[1]], "extend_ms": DAY_MS + 1}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
    // Nothing was settled: both receipts still name their deliveries.
    let extend = rest
        .post(
            "/v1/topics/jobs/subscriptions/w/extend",
            json!({"receipts": receipts, "extend_ms": DAY_MS}),
        )
        .await;
    assert_eq!(extend.status.as_u16(), 204, "{extend:?}");
    let ack = rest
        .post(
            "/v1/topics/jobs/subscriptions/w/ack",
            json!({"receipts": receipts}),
        )
        .await;
    assert_eq!(ack.status.as_u16(), 204, "{ack:?}");

    // WebSocket consumer.
    let mut socket = open_socket(&broker, "/v1/topics/jobs/subscriptions/w/ws?credits=2").await;
    let got = receive_messages(&mut socket, 2).await;
    assert_eq!(values(&json!(got)), ["c", "d"]);
    let receipts: Vec<Value> = got.iter().map(|m| m["receipt"].clone()).collect();
    send(
        &mut socket,
        json!({"op": "nack", "id": 1, "receipts": [receipts[0]], "delay_ms": DAY_MS + 1}),
    )
    .await;
    let err = receive(&mut socket).await;
    assert_eq!(
        (&err["type"], &err["id"]),
        (&json!("error"), &json!(1)),
        "{err}"
    );
    assert_eq!(err["problem"]["name"], "INVALID_ARGUMENT", "{err}");
    send(
        &mut socket,
        json!({"op": "extend", "id": 2, "receipts": [receipts[1]], "extend_ms": DAY_MS + 1}),
    )
    .await;
    let err = receive(&mut socket).await;
    assert_eq!(
        (&err["type"], &err["id"]),
        (&json!("error"), &json!(2)),
        "{err}"
    );
    assert_eq!(err["problem"]["name"], "INVALID_ARGUMENT", "{err}");
    send(
        &mut socket,
        json!({"op": "ack", "id": 3, "receipts": receipts}),
    )
    .await;
    assert_eq!(receive(&mut socket).await, json!({"type": "done", "id": 3}));
    let sub = rest.describe_subscription("jobs", "w").await;
    assert_eq!(sub["queue_stats"]["in_flight"], 0);
    assert_eq!(sub["total_lag"], 0, "all four acked");
}
