//! The REST contract: the broker accepts exactly what its OpenAPI document says. Each test is a
//! mismatch schemathesis (`--checks all`) found between `/v1/openapi.json` and the server.

mod rest_common;

use rest_common::*;
use serde_json::{Value, json};

/// A broker with a topic `t` (2 partitions), a stream subscription `s` and a queue subscription
/// `q`.
async fn broker_with_topic() -> (TestBroker, Rest) {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("t", 2).await;
    rest.create_subscription("t", json!({"name": "s", "start": {"kind": "earliest"}}))
        .await;
    rest.create_subscription("t", json!({"name": "q", "mode": "queue"}))
        .await;
    (broker, rest)
}

async fn document(rest: &Rest) -> Value {
    rest.get("/v1/openapi.json").await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_array_is_not_an_object() {
    let (_broker, rest) = broker_with_topic().await;
    // serde reads a struct from an array of its fields; the document says `object`.
    rest.post("/v1/topics/t/message", json!([null, null]))
        .await
        .problem(400, "INVALID_ARGUMENT");
    rest.post("/v1/topics/t/messages", json!({"messages": [[null, null]]}))
        .await
        .problem(400, "INVALID_ARGUMENT");
    rest.post("/v1/topics/t/messages", json!([[{"value": "v"}]]))
        .await
        .problem(400, "INVALID_ARGUMENT");
    rest.post(
        "/v1/topics/t/subscriptions/q/ack",
        json!({"receipts": [[0, 0, 1]]}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
    rest.post("/v1/topics", json!(["x", null]))
        .await
        .problem(400, "INVALID_ARGUMENT");
    // Nothing was published by the refused requests.
    let fetched = rest.get("/v1/topics/t").await.ok();
    let stored: u64 = fetched["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["high_watermark"].as_u64().unwrap())
        .sum();
    assert_eq!(stored, 0, "{fetched}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enum_is_a_string_not_an_object() {
    let (_broker, rest) = broker_with_topic().await;
    rest.post(
        "/v1/topics/t/subscriptions",
        json!({"name": "x", "mode": {"queue": null}}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
    rest.post(
        "/v1/topics/t/subscriptions",
        json!({"name": "x", "mode": "queue"}),
    )
    .await
    .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_bounds_refuse_instead_of_clamping() {
    let (_broker, rest) = broker_with_topic().await;
    let fetch = "/v1/topics/t/partitions/0/messages";
    let poll = "/v1/topics/t/subscriptions/s/messages";
    for base in [fetch, poll] {
        for bad in [
            "max=0",
            "max=10001",
            "max=2147483648",
            "wait_ms=30001",
            "wait_ms=-1",
        ] {
            rest.get(&format!("{base}?{bad}"))
                .await
                .problem(400, "INVALID_ARGUMENT");
        }
        // The bounds themselves are accepted.
        rest.get(&format!("{base}?max=10000&wait_ms=0")).await.ok();
        rest.get(&format!("{base}?max=1&wait_ms=0")).await.ok();
    }
    rest.get("/v1/flow-events?limit=0")
        .await
        .problem(400, "INVALID_ARGUMENT");
    rest.get("/v1/flow-events?limit=1001")
        .await
        .problem(400, "INVALID_ARGUMENT");
    rest.get("/v1/flow-events?limit=1000").await.ok();
    rest.send(
        rest.http
            .post(rest.url("/v1/topics/t.dlq/dead-letters/replay?max=0")),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integers_have_the_range_of_their_documented_format() {
    let (_broker, rest) = broker_with_topic().await;
    // Offsets are `int64`: i64::MAX is the largest (here past the end of the log, which the
    // engine says with its own code), one more is not an offset at all.
    let fetch = "/v1/topics/t/partitions/0/messages?wait_ms=0&offset=";
    rest.get(&format!("{fetch}{}", i64::MAX))
        .await
        .problem(400, "OFFSET_OUT_OF_RANGE");
    rest.get(&format!("{fetch}{}", i64::MAX as u64 + 1))
        .await
        .problem(400, "INVALID_ARGUMENT");
    rest.post(
        "/v1/topics/t/subscriptions/s/commit",
        json!({"offsets": [{"partition": 0, "offset": i64::MAX as u64 + 1}]}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
    // Partitions are `int32`: 2^31 is out of range, not an unknown partition.
    rest.post(
        "/v1/topics/t/message?partition=2147483648",
        json!({"value": "v"}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
    rest.post(
        "/v1/topics/t/message?partition=2147483647",
        json!({"value": "v"}),
    )
    .await
    .problem(404, "PARTITION_NOT_FOUND");
    rest.post(
        "/v1/topics/t/subscriptions/q/ack",
        json!({"receipts": [{"partition": 2147483648u64, "offset": 0, "delivery_id": 1}]}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
    rest.post(
        "/v1/topics/t/subscriptions/q/ack",
        json!({"receipts": [{"partition": 0, "offset": 0, "delivery_id": i64::MAX as u64 + 1}]}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integer_written_with_a_zero_fraction_is_accepted() {
    let (_broker, rest) = broker_with_topic().await;
    // JSON Schema counts 3.0 as an integer, so a client may send it.
    let reply = rest
        .post(
            "/v1/topics/t/message",
            serde_json::from_str(r#"{"value": "v", "priority": 3.0, "ttl_ms": 60000.0}"#).unwrap(),
        )
        .await
        .ok();
    let partition = reply["partition"].as_u64().unwrap();
    let fetched = rest
        .get(&format!("/v1/topics/t/partitions/{partition}/messages"))
        .await
        .ok();
    assert_eq!(fetched["messages"][0]["priority"], 3, "{fetched}");
    assert_eq!(fetched["messages"][0]["ttl_ms"], 60000, "{fetched}");
    // Exactly, also where a float parser would be off by an ulp (2068954616789867.2).
    // (Sent as text: a JSON value in this test would round it the same way.)
    let raw =
        r#"{"receipts": [{"partition": 0.0, "offset": 1e1, "delivery_id": 2068954616789867.0}]}"#;
    rest.send(
        rest.http
            .post(rest.url("/v1/topics/t/subscriptions/q/ack"))
            .header("content-type", "application/json")
            .body(raw),
    )
    .await
    .problem(409, "RECEIPT_UNKNOWN");
    // A fraction is still no integer.
    rest.post(
        "/v1/topics/t/message",
        serde_json::from_str(r#"{"value": "v", "priority": 3.5}"#).unwrap(),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_carries_the_configured_limits() {
    let broker = TestBroker::start_with(BrokerOptions {
        args: vec![],
        env: vec![
            ("RAPIDMQ_LIMITS__MAX_PARTITIONS".into(), "16".into()),
            ("RAPIDMQ_LIMITS__MAX_DELAY_MS".into(), "60000".into()),
        ],
    });
    let rest = Rest::new(&broker);
    let doc = document(&rest).await;
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["TopicConfig"]["properties"]["partitions"]["maximum"], 16,
        "{}",
        schemas["TopicConfig"]
    );
    assert_eq!(
        schemas["MessageIn"]["properties"]["delay_ms"]["maximum"], 60000,
        "{}",
        schemas["MessageIn"]
    );
    // ... and the broker draws the line where the document does.
    rest.post(
        "/v1/topics",
        json!({"name": "wide", "config": {"partitions": 17}}),
    )
    .await
    .problem(400, "INVALID_PARTITION_COUNT");
    rest.post(
        "/v1/topics",
        json!({"name": "wide", "config": {"partitions": 16}}),
    )
    .await
    .ok();
    rest.post(
        "/v1/topics/wide/message",
        json!({"value": "v", "delay_ms": 60001}),
    )
    .await
    .problem(400, "DELIVER_AT_OUT_OF_RANGE");
    let scheduled = rest
        .post(
            "/v1/topics/wide/message",
            json!({"value": "v", "delay_ms": 60000}),
        )
        .await
        .ok();
    assert_eq!(scheduled["scheduled"], 1, "{scheduled}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_states_the_rules_the_broker_enforces() {
    let (_broker, rest) = broker_with_topic().await;
    let doc = document(&rest).await;
    let schemas = &doc["components"]["schemas"];

    // Text or base64, not both.
    let not = &schemas["MessageIn"]["not"]["anyOf"];
    assert_eq!(
        not[0]["required"],
        json!(["value", "value_base64"]),
        "{not}"
    );
    assert_eq!(not[1]["required"], json!(["key", "key_base64"]), "{not}");
    assert_eq!(
        schemas["HeaderIn"]["not"]["anyOf"][0]["required"],
        json!(["value", "value_base64"])
    );
    rest.post(
        "/v1/topics/t/message",
        json!({"value": "a", "value_base64": "YQ=="}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");

    // Base64 is standard and padded, with zero trailing bits.
    let pattern = schemas["MessageIn"]["properties"]["value_base64"]["pattern"]
        .as_str()
        .unwrap_or_default();
    assert!(pattern.contains("[AQgw]=="), "{pattern:?}");
    rest.post(
        "/v1/topics/t/message?partition=0",
        json!({"value_base64": "YR=="}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
    rest.post(
        "/v1/topics/t/message?partition=0",
        json!({"value_base64": "YQ=="}),
    )
    .await
    .ok();

    // `memory` durability is reported, never set.
    assert_eq!(
        schemas["DurabilitySetting"]["enum"],
        json!(["fsync", "buffered"])
    );
    let durability = schemas["TopicConfig"]["properties"]["durability"].to_string();
    assert!(durability.contains("DurabilitySetting"), "{durability}");
    rest.post(
        "/v1/topics",
        json!({"name": "m", "config": {"durability": "memory"}}),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");

    // An altered topic keeps its partitions and storage: the PATCH body has no such fields.
    let alter = &schemas["AlterTopic"];
    assert_eq!(alter["additionalProperties"], false, "{alter}");
    assert!(alter["properties"].get("partitions").is_none(), "{alter}");
    assert!(alter["properties"].get("storage").is_none(), "{alter}");
    let same = json!({"partitions": 2});
    rest.send(rest.http.patch(rest.url("/v1/topics/t")).json(&same))
        .await
        .problem(400, "INVALID_ARGUMENT");

    // A dead-letter topic is a topic name (or empty for the default).
    let dlq = &schemas["QueueSettings"]["properties"]["dead_letter_topic"]["pattern"];
    assert_eq!(dlq, "^[A-Za-z0-9._-]{0,200}$");
    rest.create_subscription(
        "t",
        json!({"name": "q2", "mode": "queue", "queue": {"dead_letter_topic": ""}}),
    )
    .await;
    rest.post(
        "/v1/topics/t/subscriptions",
        json!({"name": "q3", "mode": "queue", "queue": {"dead_letter_topic": "no spaces"}}),
    )
    .await
    .problem(400, "INVALID_NAME");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_beyond_int64_are_refused_not_rounded() {
    let (_broker, rest) = broker_with_topic().await;
    // No i64 holds it, so JSON parsers read it as a float, which rounds it to i64::MIN.
    rest.post(
        "/v1/topics/t/message?partition=0",
        serde_json::from_str(r#"{"value": "v", "deliver_at_ms": -9223372036854775809}"#).unwrap(),
    )
    .await
    .problem(400, "INVALID_ARGUMENT");
    rest.post(
        "/v1/topics/t/message?partition=0",
        json!({"value": "v", "deliver_at_ms": i64::MIN}),
    )
    .await
    .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_and_bounds_are_documented() {
    let (_broker, rest) = broker_with_topic().await;
    let doc = document(&rest).await;
    let topic = doc["paths"]["/v1/subscriptions"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "topic")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        topic["schema"]["pattern"], "^[A-Za-z0-9._-]{0,200}$",
        "{topic}"
    );
    let all = rest.get("/v1/subscriptions?topic=").await.ok();
    assert_eq!(all["subscriptions"].as_array().map(Vec::len), Some(2));
    rest.get("/v1/subscriptions?topic=no%20spaces")
        .await
        .problem(400, "INVALID_NAME");
    // The dead-letter listing's `max` is at least 1, as documented, not "0 means the default".
    rest.get("/v1/topics/t.dlq/dead-letters?max=0")
        .await
        .problem(400, "INVALID_ARGUMENT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_settings_keep_their_minimums_on_a_stream_subscription() {
    let (_broker, rest) = broker_with_topic().await;
    for queue in [json!({"max_deliveries": 0}), json!({"ack_deadline_ms": 0})] {
        rest.post(
            "/v1/topics/t/subscriptions",
            json!({"name": "x", "queue": queue}),
        )
        .await
        .problem(400, "INVALID_ARGUMENT");
    }
    rest.post(
        "/v1/topics/t/subscriptions",
        json!({"name": "x", "queue": {"dead_letter_topic": "\u{84}"}}),
    )
    .await
    .problem(400, "INVALID_NAME");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_topic_of_plain_messages_replays_nothing() {
    let (_broker, rest) = broker_with_topic().await;
    rest.post(
        "/v1/topics/t/message?partition=0",
        json!({"value": "plain"}),
    )
    .await
    .ok();
    // No dead-letter headers: nowhere to go back to, so nothing is replayed (it was a 400
    // INVALID_NAME for the empty original topic).
    let replay = "/v1/topics/t/dead-letters/replay";
    for _ in 0..2 {
        let replayed = rest.send(rest.http.post(rest.url(replay))).await.ok();
        assert_eq!(replayed["replayed"], 0, "{replayed}");
    }
}
