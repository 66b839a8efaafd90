//! REST bad input: every mistake gets a 4xx problem+json with a stable code, never a 5xx.

mod rest_common;

use rest_common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends only the headers of a POST announcing `length` body bytes, and reads the answer.
async fn announce_oversized_body(broker: &TestBroker, path: &str, length: usize) -> Reply {
    let addr = broker.http_url().trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .expect("an answer in time")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    Reply {
        status: reqwest::StatusCode::from_u16(status).unwrap(),
        content_type,
        body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_4xx_problems_and_the_broker_keeps_serving() {
    let broker = TestBroker::start_with(BrokerOptions {
        args: vec![],
        env: vec![
            ("RAPIDMQ_LIMITS__MAX_REQUEST_BYTES".into(), "1049600".into()),
            ("RAPIDMQ_LIMITS__MAX_MESSAGE_BYTES".into(), "1048576".into()),
        ],
    });
    let rest = Rest::new(&broker);
    rest.create_topic("t", 1).await;
    let raw = |path: &str, body: &'static str| {
        rest.http
            .post(rest.url(path))
            .header("content-type", "application/json")
            .body(body)
    };

    // Malformed JSON.
    rest.send(raw("/v1/topics", "{\"name\": "))
        .await
        .problem(400, "MALFORMED_REQUEST");
    // Wrong types and unknown fields.
    rest.post("/v1/topics", json!({"name": 5}))
        .await
        .problem(400, "INVALID_ARGUMENT");
    rest.post(
        "/v1/topics",
        json!({"name": "a", "config": {"partitions": -1}}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
    rest.post("/v1/topics", json!({"name": "a", "typo": 1}))
        .await
        .problem(400, "INVALID_ARGUMENT");
    rest.post(
        "/v1/topics/t/message",
        json!({"value": "v", "priority": "high"}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
    // Not JSON at all.
    rest.send(rest.http.post(rest.url("/v1/topics")).body("name=x"))
        .await
        .problem(415, "MALFORMED_REQUEST");
    // Bad base64, and both forms of a value.
    rest.post("/v1/topics/t/message", json!({"value_base64": "%%%"}))
        .await
        .problem(400, "INVALID_ARGUMENT");
    rest.post(
        "/v1/topics/t/message",
        json!({"value": "a", "value_base64": "YQ=="}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
    rest.post("/v1/topics/t/message", json!({"key_base64": "!"}))
        .await
        .problem(400, "INVALID_ARGUMENT");
    // Engine-level checks keep their codes.
    rest.post(
        "/v1/topics/t/message",
        json!({"value": "v", "priority": 10}),
    )
    .await
    .problem(400, "INVALID_PRIORITY");
    rest.post("/v1/topics/t/messages", json!({"messages": []}))
        .await
        .problem(400, "EMPTY_BATCH");
    rest.post("/v1/topics/t/message?partition=3", json!({"value": "v"}))
        .await
        .problem(404, "PARTITION_NOT_FOUND");
    rest.post("/v1/topics/nope/message", json!({"value": "v"}))
        .await
        .problem(404, "TOPIC_NOT_FOUND");
    rest.post(
        "/v1/topics/t/message",
        json!({"value": "v", "delay_ms": i64::MAX}),
    )
    .await
    .problem(400, "DELIVER_AT_OUT_OF_RANGE");
    // Beyond the document's `int64`: refused as it is parsed.
    rest.post(
        "/v1/topics/t/message",
        json!({"value": "v", "delay_ms": u64::MAX}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
    // Oversized bodies: a message over the topic limit, and a body over the request limit.
    // Under the request limit (1 MiB + 1 KiB) but over the topic's 1 MiB message limit.
    let big = "x".repeat(1_048_700);
    rest.post("/v1/topics/t/message", json!({ "value": big }))
        .await
        .problem(413, "MESSAGE_TOO_LARGE");
    // A body announced over the request limit is refused before it is read. (Sent raw: an HTTP
    // client writing the whole body would race the early answer and the connection close.)
    let reply = announce_oversized_body(&broker, "/v1/topics/t/message", 2 << 20).await;
    reply.problem(413, "MESSAGE_TOO_LARGE");
    // Bad path and query parameters.
    rest.get("/v1/topics/t/partitions/minus-one/messages")
        .await
        .problem(400, "INVALID_ARGUMENT");
    rest.get("/v1/topics/t/partitions/0/messages?offset=-5")
        .await
        .problem(400, "INVALID_ARGUMENT");
    rest.post(
        "/v1/topics/t/message?partition=99999999999",
        json!({"value": "v"}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
    rest.get("/v1/topics/bad%20name")
        .await
        .problem(400, "INVALID_NAME");
    // Unknown routes and wrong methods.
    rest.get("/v1/nothing-here")
        .await
        .problem(404, "INVALID_ARGUMENT");
    rest.get("/nothing").await.problem(404, "INVALID_ARGUMENT");
    let wrong = rest.send(rest.http.put(rest.url("/v1/topics"))).await;
    wrong.problem(405, "INVALID_ARGUMENT");
    rest.post(
        "/v1/topics/t/subscriptions",
        json!({"name": "s", "mode": "sideways"}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
    rest.post(
        "/v1/topics/t/subscriptions/none/ack",
        json!({"receipts": [{"partition": 0}]}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");

    // Still serving.
    let ok = rest
        .post("/v1/topics/t/message", json!({"value": "fine"}))
        .await
        .ok();
    assert_eq!(ok["base_offset"], 0);
    assert_eq!(rest.get("/healthz").await.status.as_u16(), 200);
}
