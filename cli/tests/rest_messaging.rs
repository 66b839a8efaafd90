//! REST: publishing, fetching, long-poll consumption, ack/nack/extend/commit, dead letters, and
//! data crossing between the REST and gRPC APIs both ways.

mod common;
mod rest_common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use common::{Clients, Consumer, QueueConsumer, connect, queue_settings, start, value_of};
use rapidmq_proto::v1 as pb;
use rest_common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_messages_are_fetched_by_offset_with_keys_headers_and_binary_values() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("t", 4).await;

    let one = rest
        .post(
            "/v1/topics/t/message?partition=2",
            json!({"value": "hello", "key": "k1", "headers": [{"key": "h", "value": "v"}, {"key": "bin", "value_base64": BASE64.encode([0, 255])}]}),
        )
        .await
        .ok();
    assert_eq!(one["partition"], 2);
    assert_eq!(one["base_offset"], 0);
    assert_eq!(one["count"], 1);
    assert_eq!(one["durability"], "fsync");

    let batch = rest
        .post(
            "/v1/topics/t/messages?partition=2",
            json!({"messages": [{"value": "a"}, {"value_base64": BASE64.encode([0xff, 0x01])}, {"value": "c", "priority": 3, "ttl_ms": 600000}]}),
        )
        .await
        .ok();
    assert_eq!(batch["results"][0]["base_offset"], 1);
    assert_eq!(batch["results"][0]["count"], 3);

    let fetched = rest
        .get("/v1/topics/t/partitions/2/messages?offset=0&max=10")
        .await
        .ok();
    let messages = fetched["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(fetched["next_offset"], 4);
    assert_eq!(fetched["high_watermark"], 4);
    assert_eq!(messages[0]["value"], "hello");
    assert_eq!(messages[0]["key"], "k1");
    assert_eq!(messages[0]["headers"][0]["key"], "h");
    assert_eq!(messages[0]["headers"][0]["value"], "v");
    assert_eq!(
        messages[0]["headers"][1]["value_base64"],
        BASE64.encode([0, 255])
    );
    assert!(messages[1]["value"].is_string());
    assert!(
        messages[2].get("value").is_none(),
        "binary has no text form"
    );
    assert_eq!(messages[2]["value_base64"], BASE64.encode([0xff, 0x01]));
    assert_eq!(messages[3]["priority"], 3);
    assert_eq!(messages[3]["ttl_ms"], 600000);

    let from_two = rest
        .get("/v1/topics/t/partitions/2/messages?offset=2&max=1")
        .await
        .ok();
    assert_eq!(from_two["messages"][0]["offset"], 2);
    assert_eq!(from_two["next_offset"], 3);
    rest.get("/v1/topics/t/partitions/2/messages?offset=99")
        .await
        .problem(400, "OFFSET_OUT_OF_RANGE");
    rest.get("/v1/topics/t/partitions/9/messages")
        .await
        .problem(404, "PARTITION_NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_messages_land_on_the_key_partition_and_keyless_ones_round_robin() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("t", 8).await;
    let keys = ["alpha", "beta", "gamma", "delta"];
    let reply = rest
        .post(
            "/v1/topics/t/messages",
            json!({"messages": keys.iter().map(|k| json!({"key": k, "value": k})).collect::<Vec<_>>()}),
        )
        .await
        .ok();
    for result in reply["results"].as_array().unwrap() {
        let p = result["partition"].as_u64().unwrap() as u32;
        let fetched = rest
            .get(&format!("/v1/topics/t/partitions/{p}/messages"))
            .await
            .ok();
        for m in fetched["messages"].as_array().unwrap() {
            let key = m["key"].as_str().unwrap();
            assert_eq!(rapidmq_proto::partition_for_key(key.as_bytes(), 8), p);
        }
    }
    let mut partitions = std::collections::HashSet::new();
    for i in 0..8 {
        let r = rest
            .post("/v1/topics/t/message", json!({"value": format!("v{i}")}))
            .await
            .ok();
        partitions.insert(r["partition"].as_u64().unwrap());
    }
    assert_eq!(
        partitions.len(),
        8,
        "keyless publishes rotate over every partition"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_over_rest_answers_an_sdk_request_through_its_headers() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("prices", 1).await;
    let client = rapidmq::Client::connect(broker.grpc_url()).await.unwrap();
    let requester = tokio::spawn({
        let client = client.clone();
        async move {
            let request = rapidmq::Message::new("EURUSD");
            client
                .request("prices", request, std::time::Duration::from_secs(60))
                .await
        }
    });

    let fetched = rest
        .get("/v1/topics/prices/partitions/0/messages?offset=0&max=1&wait_ms=30000")
        .await
        .ok();
    let request = &fetched["messages"][0];
    assert_eq!(request["value"], "EURUSD");
    let header = |name: &str| {
        request["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["key"] == name)
            .map(|h| h["value"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no {name} header in {request}"))
    };
    let inbox = header(rapidmq::REPLY_TO_HEADER);
    let correlation = header(rapidmq::CORRELATION_ID_HEADER);
    rest.post(
        &format!("/v1/topics/{inbox}/message"),
        json!({"value": "1.0842", "headers": [{"key": "correlation-id", "value": correlation}]}),
    )
    .await
    .ok();

    let reply = requester.await.unwrap().unwrap();
    assert_eq!(reply.value, Bytes::from_static(b"1.0842"));
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_key_is_a_key_and_a_missing_one_is_none() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("t", 8).await;
    let expected = rapidmq_proto::partition_for_key(b"", 8);
    let empty = rest
        .post("/v1/topics/t/message", json!({"value": "empty", "key": ""}))
        .await
        .ok();
    assert_eq!(
        empty["partition"], expected,
        "an empty key has its partition"
    );
    let base64 = rest
        .post(
            "/v1/topics/t/message",
            json!({"value": "empty64", "key_base64": ""}),
        )
        .await
        .ok();
    assert_eq!(base64["partition"], expected);
    rest.post(
        &format!("/v1/topics/t/message?partition={expected}"),
        json!({"value": "none"}),
    )
    .await
    .ok();

    let fetched = rest
        .get(&format!("/v1/topics/t/partitions/{expected}/messages"))
        .await
        .ok();
    let messages = fetched["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    for m in &messages[..2] {
        assert_eq!(m["key"], "", "{m}");
        assert_eq!(m["key_base64"], "", "{m}");
    }
    assert_eq!(messages[2]["value"], "none");
    assert!(messages[2].get("key").is_none(), "{}", messages[2]);
    assert!(messages[2].get("key_base64").is_none(), "{}", messages[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_returns_stream_messages_and_resumes_from_the_commit() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("t", 2).await;
    rest.create_subscription("t", json!({"name": "s", "start": {"kind": "earliest"}}))
        .await;

    let empty = rest
        .get("/v1/topics/t/subscriptions/s/messages?wait_ms=0")
        .await
        .ok();
    assert_eq!(empty["messages"].as_array().unwrap().len(), 0);

    // A poll waiting for data is woken by a publish.
    let poller = {
        let rest = Rest::new(&broker);
        tokio::spawn(async move {
            rest.get("/v1/topics/t/subscriptions/s/messages?wait_ms=20000&max=10")
                .await
                .ok()
        })
    };
    rest.post(
        "/v1/topics/t/messages?partition=1",
        json!({"messages": [{"value": "one"}, {"value": "two"}]}),
    )
    .await
    .ok();
    let polled = poller.await.unwrap();
    assert_eq!(polled["mode"], "stream");
    assert_eq!(values(&polled["messages"]), ["one", "two"]);
    assert_eq!(polled["commit"], json!([{"partition": 1, "offset": 2}]));

    // Not committed: the next poll sees them again.
    let again = rest
        .get("/v1/topics/t/subscriptions/s/messages?wait_ms=5000")
        .await
        .ok();
    assert_eq!(values(&again["messages"]), ["one", "two"]);
    let commit = rest
        .post(
            "/v1/topics/t/subscriptions/s/commit",
            json!({"offsets": polled["commit"]}),
        )
        .await;
    assert_eq!(commit.status.as_u16(), 204, "{commit:?}");
    let after = rest
        .get("/v1/topics/t/subscriptions/s/messages?wait_ms=0")
        .await
        .ok();
    assert_eq!(after["messages"].as_array().unwrap().len(), 0);
    let described = rest.describe_subscription("t", "s").await;
    assert_eq!(described["total_lag"], 0);

    rest.post(
        "/v1/topics/t/subscriptions/s/commit",
        json!({"offsets": [{"partition": 1, "offset": 99}]}),
    )
    .await
    .problem(400, "OFFSET_OUT_OF_RANGE");
    rest.get("/v1/topics/t/subscriptions/missing/messages")
        .await
        .problem(404, "SUBSCRIPTION_NOT_FOUND");
}

fn receipts(messages: &Value) -> Value {
    Value::Array(
        messages
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["receipt"].clone())
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_long_poll_hands_out_receipts_that_ack_nack_and_extend_accept() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("jobs", 1).await;
    rest.create_subscription(
        "jobs",
        json!({"name": "w", "mode": "queue", "start": {"kind": "earliest"}, "queue": {"ack_deadline_ms": 60000, "max_deliveries": 2}}),
    )
    .await;
    rest.post(
        "/v1/topics/jobs/messages",
        json!({"messages": [{"value": "j1"}, {"value": "j2"}, {"value": "j3"}]}),
    )
    .await
    .ok();

    let first = rest
        .get("/v1/topics/jobs/subscriptions/w/messages?max=3&wait_ms=5000&consumer=c1")
        .await
        .ok();
    assert_eq!(first["mode"], "queue");
    let messages = first["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0]["attempt"], 1);
    let sub = rest.describe_subscription("jobs", "w").await;
    assert_eq!(sub["queue_stats"]["in_flight"], 3);

    // Another consumer gets nothing: all three are in flight with c1.
    let other = rest
        .get("/v1/topics/jobs/subscriptions/w/messages?wait_ms=0&consumer=c2")
        .await
        .ok();
    assert_eq!(other["messages"].as_array().unwrap().len(), 0);

    let ack = rest
        .post(
            "/v1/topics/jobs/subscriptions/w/ack",
            json!({"receipts": [messages[0]["receipt"]]}),
        )
        .await;
    assert_eq!(ack.status.as_u16(), 204, "{ack:?}");
    let extend = rest
        .post(
            "/v1/topics/jobs/subscriptions/w/extend",
            json!({"receipts": [messages[1]["receipt"]], "extend_ms": 120000}),
        )
        .await;
    assert_eq!(extend.status.as_u16(), 204, "{extend:?}");
    let nack = rest
        .post(
            "/v1/topics/jobs/subscriptions/w/nack",
            json!({"receipts": [messages[2]["receipt"]]}),
        )
        .await;
    assert_eq!(nack.status.as_u16(), 204, "{nack:?}");

    let redelivered = rest
        .get("/v1/topics/jobs/subscriptions/w/messages?wait_ms=5000&consumer=c2")
        .await
        .ok();
    assert_eq!(values(&redelivered["messages"]), ["j3"]);
    assert_eq!(redelivered["messages"][0]["attempt"], 2);

    // Acking the same receipt twice names nothing in flight.
    rest.post(
        "/v1/topics/jobs/subscriptions/w/ack",
        json!({"receipts": [messages[0]["receipt"]]}),
    )
    .await
    .problem(409, "RECEIPT_UNKNOWN");
    rest.post(
        "/v1/topics/jobs/subscriptions/w/ack",
        json!({"receipts": receipts(&json!([messages[1]]))}),
    )
    .await
    .ok();

    // The last allowed attempt, nacked, goes to the dead-letter topic.
    rest.post(
        "/v1/topics/jobs/subscriptions/w/nack",
        json!({"receipts": receipts(&redelivered["messages"])}),
    )
    .await
    .ok();
    let letters = rest.get("/v1/topics/jobs.dlq/dead-letters").await.ok();
    assert_eq!(letters["next_page_token"], "", "one letter is one page");
    let letters = letters["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["original_topic"], "jobs");
    assert_eq!(letters[0]["original_offset"], 2);
    assert_eq!(letters[0]["attempts"], 2);
    assert_eq!(letters[0]["message"]["value"], "j3");

    let replayed = rest
        .post("/v1/topics/jobs.dlq/dead-letters/replay", json!(null))
        .await
        .ok();
    assert_eq!(replayed["replayed"], 1);
    assert_eq!(replayed["remaining"], 0);
    let back = rest
        .get("/v1/topics/jobs/subscriptions/w/messages?wait_ms=5000&consumer=c1")
        .await
        .ok();
    assert_eq!(values(&back["messages"]), ["j3"]);
    let none_left = rest.get("/v1/topics/jobs.dlq/dead-letters").await.ok();
    assert_eq!(none_left["dead_letters"].as_array().unwrap().len(), 0);

    // Mode mismatches carry the same code as on gRPC.
    rest.create_subscription("jobs", json!({"name": "s"})).await;
    rest.post(
        "/v1/topics/jobs/subscriptions/s/ack",
        json!({"receipts": []}),
    )
    .await
    .problem(409, "SUBSCRIPTION_MODE_MISMATCH");
}

async fn grpc(broker: &TestBroker) -> Clients {
    connect(broker).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_published_over_grpc_are_consumed_over_rest() {
    let broker = TestBroker::start();
    let mut c = grpc(&broker).await;
    let rest = Rest::new(&broker);
    common::create_topic(&mut c, "x", common::topic_config(1)).await;
    rest.create_subscription("x", json!({"name": "s", "start": {"kind": "earliest"}}))
        .await;
    common::publish_raw(
        &mut c,
        "x",
        0,
        vec![
            pb::Message {
                key: Some(Bytes::from_static(b"k")),
                value: Bytes::from_static(b"from grpc"),
                headers: vec![pb::Header {
                    key: "h".into(),
                    value: Bytes::from_static(b"1"),
                }],
                ..Default::default()
            },
            common::raw("second"),
        ],
    )
    .await
    .unwrap();
    let polled = rest
        .get("/v1/topics/x/subscriptions/s/messages?wait_ms=5000")
        .await
        .ok();
    assert_eq!(values(&polled["messages"]), ["from grpc", "second"]);
    assert_eq!(polled["messages"][0]["key"], "k");
    assert_eq!(polled["messages"][0]["headers"][0]["value"], "1");
    assert_eq!(
        polled["messages"][0]["timestamp_ms"], 1_700_000_000_000i64,
        "the producer's timestamp crosses over"
    );
    let fetched = rest.get("/v1/topics/x/partitions/0/messages").await.ok();
    assert_eq!(values(&fetched["messages"]), ["from grpc", "second"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_published_over_rest_are_consumed_over_grpc() {
    let broker = TestBroker::start();
    let mut c = grpc(&broker).await;
    let rest = Rest::new(&broker);
    rest.create_topic("y", 2).await;
    rest.post(
        "/v1/topics/y/messages?partition=1",
        json!({"messages": [{"key": "k", "value": "from rest", "headers": [{"key": "h", "value": "v"}]}, {"value_base64": BASE64.encode([1, 2, 3])}]}),
    )
    .await
    .ok();
    let mut consumer = Consumer::open(&mut c, "y", "g", start(pb::StartKind::Earliest), 10)
        .await
        .unwrap();
    let received = consumer.receive(2).await;
    assert_eq!(received[0].partition, 1);
    assert_eq!(&received[0].msg.key[..], b"k");
    assert_eq!(&received[0].msg.value[..], b"from rest");
    assert_eq!(&received[1].msg.value[..], &[1, 2, 3]);

    // Queue mode too: REST publishes, a gRPC queue consumer acks, REST sees it settled.
    rest.create_topic("q", 1).await;
    rest.post("/v1/topics/q/message", json!({"value": "job"}))
        .await
        .ok();
    let mut worker = QueueConsumer::open(&mut c, "q", "w", queue_settings(60_000, 5), 5)
        .await
        .unwrap();
    let jobs = worker.receive(1).await;
    assert_eq!(value_of(&jobs[0]), "job");
    // The receipt a gRPC consumer got is accepted by the REST ack endpoint.
    let r = jobs[0].receipt.unwrap();
    let ack = rest
        .post(
            "/v1/topics/q/subscriptions/w/ack",
            json!({"receipts": [{"partition": r.partition, "offset": r.offset, "delivery_id": r.delivery_id}]}),
        )
        .await;
    assert_eq!(ack.status.as_u16(), 204, "{ack:?}");
    let sub = rest.describe_subscription("q", "w").await;
    assert_eq!(sub["queue_stats"]["in_flight"], 0);
    assert_eq!(sub["total_lag"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_batches_are_read_over_rest_like_any_other() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("packed", 1).await;
    rest.create_subscription(
        "packed",
        json!({"name": "s", "start": {"kind": "earliest"}}),
    )
    .await;
    let client = rapidmq::Client::connect(broker.grpc_url()).await.unwrap();
    let producer = client
        .producer("packed")
        .compression(rapidmq::Compression::Zstd)
        .linger(std::time::Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    let sent: Vec<String> = (0..50)
        .map(|i| format!(r#"{{"order_id":{i},"status":"shipped"}}"#))
        .collect();
    let mut receipts = Vec::new();
    for value in &sent {
        receipts.push(
            producer
                .send(rapidmq::Message::new(value.clone()))
                .await
                .unwrap(),
        );
    }
    producer.close().await.unwrap();
    for receipt in receipts {
        receipt.await.unwrap();
    }
    let stored: u64 = client
        .admin()
        .describe_topic("packed")
        .await
        .unwrap()
        .partitions
        .iter()
        .map(|p| p.bytes)
        .sum();
    let plain: usize = sent.iter().map(|v| v.len()).sum();
    assert!(
        (stored as usize) < plain / 2,
        "stored {stored} bytes for {plain} bytes of values: not compressed"
    );

    let fetched = rest
        .get("/v1/topics/packed/partitions/0/messages?offset=0&max=100")
        .await
        .ok();
    assert_eq!(values(&fetched["messages"]), sent);
    let polled = rest
        .get("/v1/topics/packed/subscriptions/s/messages?wait_ms=5000&max=100")
        .await
        .ok();
    assert_eq!(values(&polled["messages"]), sent);
    client.close().await.unwrap();
}
