//! Observability: `/metrics` counts a known workload exactly and parses as Prometheus text,
//! consumer lag follows consumption, a `traceparent` travels unchanged from producer to consumer
//! with its flow events queryable over REST and with `rapidmq trace`, and the dashboard is
//! served from the binary.

mod common;
mod rest_common;

use std::collections::HashMap;
use std::time::Duration;

use rapidmq::{Client, Message, StartPosition, TopicConfig};
use rest_common::*;
use serde_json::{Value, json};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const SCOPED: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// One scrape, parsed: `name{labels}` → value, with labels sorted.
struct Scrape {
    samples: HashMap<String, f64>,
    text: String,
}

impl Scrape {
    async fn take(rest: &Rest) -> Scrape {
        let response = rest.http.get(rest.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let parsed = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
        let mut samples = HashMap::new();
        for sample in parsed.samples {
            let value = match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(_) | prometheus_parse::Value::Summary(_) => {
                    continue;
                }
            };
            let mut labels: Vec<String> = sample
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            labels.sort();
            samples.insert(format!("{}{{{}}}", sample.metric, labels.join(",")), value);
        }
        Scrape { samples, text }
    }

    /// The value of `name` with exactly these labels (given in sorted order).
    #[track_caller]
    fn get(&self, name: &str, labels: &str) -> f64 {
        let key = format!("{name}{{{labels}}}");
        *self
            .samples
            .get(&key)
            .unwrap_or_else(|| panic!("no sample {key} in:\n{}", self.text))
    }
}

fn topic(name: &str) -> String {
    format!("tenant=\"default\",topic=\"{name}\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_known_workload_exactly_and_parse_as_prometheus_text() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("orders", 2).await;
    rest.create_topic("jobs", 1).await;
    rest.create_subscription(
        "jobs",
        json!({"name": "w", "mode": "queue", "start": {"kind": "earliest"}, "queue": {"ack_deadline_ms": 60000, "max_deliveries": 1}}),
    )
    .await;

    // 10 messages of 1..=10 bytes to partition 0, 5 of 100 bytes to partition 1.
    let small: Vec<Value> = (1..=10).map(|n| json!({"value": "x".repeat(n)})).collect();
    let large: Vec<Value> = (0..5).map(|_| json!({"value": "y".repeat(100)})).collect();
    rest.post(
        "/v1/topics/orders/messages?partition=0",
        json!({ "messages": small }),
    )
    .await
    .ok();
    rest.post(
        "/v1/topics/orders/messages?partition=1",
        json!({ "messages": large }),
    )
    .await
    .ok();
    // Read partition 0 back: 10 messages, 55 bytes out.
    let fetched = rest
        .get("/v1/topics/orders/partitions/0/messages?offset=0&max=100")
        .await
        .ok();
    assert_eq!(fetched["messages"].as_array().unwrap().len(), 10);

    // Three jobs; one acked, two nacked on their only allowed attempt: two DLQ moves.
    rest.post(
        "/v1/topics/jobs/messages?partition=0",
        json!({"messages": [{"value": "job-1"}, {"value": "job-2"}, {"value": "job-3"}]}),
    )
    .await
    .ok();
    let polled = rest
        .get("/v1/topics/jobs/subscriptions/w/messages?max=3&wait_ms=5000&consumer=c1")
        .await
        .ok();
    let jobs = polled["messages"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), 3);
    rest.post(
        "/v1/topics/jobs/subscriptions/w/ack",
        json!({"receipts": [jobs[0]["receipt"]]}),
    )
    .await
    .ok();
    rest.post(
        "/v1/topics/jobs/subscriptions/w/nack",
        json!({"receipts": [jobs[1]["receipt"], jobs[2]["receipt"]]}),
    )
    .await
    .ok();
    // A topic with a dedup window: the second `once` is dropped as a duplicate.
    rest.post(
        "/v1/topics",
        json!({"name": "deduped", "config": {"partitions": 1, "dedup_window_ms": 600000}}),
    )
    .await
    .ok();
    let with_id =
        |value: &str| json!({"value": value, "headers": [{"key": "msg-id", "value": "once"}]});
    rest.post(
        "/v1/topics/deduped/messages?partition=0",
        json!({"messages": [with_id("first"), with_id("again")]}),
    )
    .await
    .ok();
    // An error answered over HTTP.
    rest.get("/v1/topics/missing")
        .await
        .problem(404, "TOPIC_NOT_FOUND");

    let m = Scrape::take(&rest).await;
    assert_eq!(m.get("rapidmq_messages_in_total", &topic("orders")), 15.0);
    assert_eq!(
        m.get("rapidmq_messages_in_bytes_total", &topic("orders")),
        555.0
    );
    assert_eq!(m.get("rapidmq_messages_out_total", &topic("orders")), 10.0);
    assert_eq!(
        m.get("rapidmq_messages_out_bytes_total", &topic("orders")),
        55.0
    );
    assert_eq!(m.get("rapidmq_messages_in_total", &topic("jobs")), 3.0);
    assert_eq!(
        m.get("rapidmq_messages_in_bytes_total", &topic("jobs")),
        15.0
    );
    assert_eq!(m.get("rapidmq_messages_out_total", &topic("jobs")), 3.0);
    assert_eq!(
        m.get("rapidmq_messages_out_bytes_total", &topic("jobs")),
        15.0
    );
    assert_eq!(m.get("rapidmq_dlq_moves_total", &topic("jobs")), 2.0);
    // The dead letters were published to jobs.dlq (created on the first move).
    assert_eq!(m.get("rapidmq_messages_in_total", &topic("jobs.dlq")), 2.0);
    assert_eq!(
        m.get("rapidmq_messages_in_bytes_total", &topic("jobs.dlq")),
        10.0
    );
    let sub = "subscription=\"w\",tenant=\"default\",topic=\"jobs\"";
    assert_eq!(m.get("rapidmq_dead_lettered_total", sub), 2.0);
    assert_eq!(m.get("rapidmq_redeliveries_total", sub), 0.0);
    assert_eq!(m.get("rapidmq_in_flight", sub), 0.0);
    assert_eq!(m.get("rapidmq_dedup_hits_total", &topic("orders")), 0.0);
    assert_eq!(m.get("rapidmq_dedup_hits_total", &topic("deduped")), 1.0);
    assert_eq!(m.get("rapidmq_messages_in_total", &topic("deduped")), 1.0);
    assert_eq!(
        m.get("rapidmq_messages_in_bytes_total", &topic("deduped")),
        5.0
    );
    assert_eq!(
        m.get(
            "rapidmq_errors_total",
            "code=\"TOPIC_NOT_FOUND\",transport=\"http\""
        ),
        1.0
    );
    // Publishes: orders ×2, jobs ×1, jobs.dlq ×2 (one per dead letter), deduped ×1.
    assert_eq!(m.get("rapidmq_publish_latency_seconds_count", ""), 6.0);
    // Deliveries: the fetch (one batch) and three queue messages.
    assert_eq!(m.get("rapidmq_end_to_end_latency_seconds_count", ""), 4.0);
    // Each fsync group commit is counted; at least one per publish landed.
    assert!(m.get("rapidmq_fsyncs_total", "") >= 1.0);
    assert!(m.get("rapidmq_group_commit_messages_count", "") >= 5.0);
    assert!(m.get("rapidmq_storage_bytes", &topic("orders")) > 555.0);
    assert_eq!(m.get("rapidmq_topic_partitions", &topic("orders")), 2.0);
    assert_eq!(m.get("rapidmq_subscriptions", "mode=\"queue\""), 1.0);
    assert!(m.get("rapidmq_connections", "transport=\"http\"") >= 1.0);
    assert!(m.text.ends_with("# EOF\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_past_the_series_limit_count_under_other() {
    let broker = TestBroker::start_with(BrokerOptions {
        env: vec![("RAPIDMQ_OBSERVABILITY__MAX_TOPIC_SERIES".into(), "1".into())],
        ..Default::default()
    });
    let rest = Rest::new(&broker);
    for name in ["a", "b", "c"] {
        rest.create_topic(name, 1).await;
        rest.post(
            &format!("/v1/topics/{name}/messages?partition=0"),
            json!({"messages": [{"value": "12345"}]}),
        )
        .await
        .ok();
    }
    let m = Scrape::take(&rest).await;
    assert_eq!(m.get("rapidmq_messages_in_total", &topic("a")), 1.0);
    let other = "tenant=\"_other\",topic=\"_other\"";
    assert_eq!(m.get("rapidmq_messages_in_total", other), 2.0);
    assert!(!m.text.contains("topic=\"b\""), "{}", m.text);
}

/// The lag of subscription `s` on partition 0 of `lagged`.
async fn lag(rest: &Rest) -> f64 {
    Scrape::take(rest).await.get(
        "rapidmq_consumer_lag",
        "partition=\"0\",subscription=\"s\",tenant=\"default\",topic=\"lagged\"",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_lag_is_600_after_consuming_400_of_1000_and_0_after_catching_up() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("lagged", 1).await;
    rest.create_subscription(
        "lagged",
        json!({"name": "s", "mode": "stream", "start": {"kind": "earliest"}}),
    )
    .await;
    let messages: Vec<Value> = (0..1000)
        .map(|i| json!({"value": format!("m{i}")}))
        .collect();
    rest.post(
        "/v1/topics/lagged/messages?partition=0",
        json!({ "messages": messages }),
    )
    .await
    .ok();
    assert_eq!(lag(&rest).await, 1000.0);

    let mut consumed = 0;
    while consumed < 400 {
        let polled = rest
            .get(&format!(
                "/v1/topics/lagged/subscriptions/s/messages?max={}&wait_ms=5000",
                400 - consumed
            ))
            .await
            .ok();
        consumed += polled["messages"].as_array().unwrap().len();
        rest.post(
            "/v1/topics/lagged/subscriptions/s/commit",
            json!({"offsets": polled["commit"]}),
        )
        .await
        .ok();
    }
    assert_eq!(consumed, 400);
    assert_eq!(lag(&rest).await, 600.0);

    while consumed < 1000 {
        let polled = rest
            .get("/v1/topics/lagged/subscriptions/s/messages?max=1000&wait_ms=5000")
            .await
            .ok();
        consumed += polled["messages"].as_array().unwrap().len();
        rest.post(
            "/v1/topics/lagged/subscriptions/s/commit",
            json!({"offsets": polled["commit"]}),
        )
        .await
        .ok();
    }
    assert_eq!(consumed, 1000);
    assert_eq!(lag(&rest).await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_arrives_unchanged_and_its_flow_events_can_be_queried() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    let client = Client::connect(broker.grpc_url()).await.unwrap();
    client
        .admin()
        .create_topic(
            "traced",
            TopicConfig {
                partitions: 1,
                ..TopicConfig::default()
            },
        )
        .await
        .unwrap();
    let consumer = client
        .queue_consumer("traced")
        .subscription("workers")
        .start(StartPosition::Earliest)
        .subscribe()
        .await
        .unwrap();
    let producer = client.producer("traced").build().await.unwrap();
    producer
        .send(Message::new("untraced").with_key("order-7"))
        .await
        .unwrap()
        .await
        .unwrap();
    let receipt = producer
        .send(
            Message::new("payload")
                .with_key("order-7")
                .with_msg_id("m-1")
                .with_header("traceparent", TRACEPARENT),
        )
        .await
        .unwrap();
    let delivery = receipt.await.unwrap();
    assert_eq!(delivery.offset, Some(1));
    // Sent inside the application's trace context: the core adds the traceparent.
    let scoped = rapidmq_core::trace::in_context(SCOPED, async {
        let receipt = producer.send(Message::new("scoped")).await.unwrap();
        receipt.await.unwrap()
    })
    .await;
    assert_eq!(scoped.offset, Some(2));

    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while received.len() < 3 && tokio::time::Instant::now() < deadline {
        received.extend(consumer.poll(10, Duration::from_secs(1)).await.unwrap());
    }
    assert_eq!(received.len(), 3);
    let traced = &received[1].message;
    assert_eq!(traced.value.as_ref(), b"payload");
    let header = |name: &str| {
        traced
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("traceparent").as_deref(),
        Some(TRACEPARENT.as_bytes())
    );
    let scoped = &received[2].message;
    let scoped_header: Vec<_> = scoped
        .headers
        .iter()
        .filter(|(k, _)| k == "traceparent")
        .collect();
    assert_eq!(scoped_header.len(), 1);
    assert_eq!(scoped_header[0].1.as_ref(), SCOPED.as_bytes());
    assert!(received[0].message.headers.is_empty());
    for delivery in &received {
        consumer.ack(&delivery.receipt).unwrap();
    }

    let by_id = rest.get("/v1/flow-events?msg_id=m-1").await.ok();
    let events = by_id["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["published", "delivered"], "{by_id}");
    assert_eq!(events[0]["topic"], "traced");
    assert_eq!(events[0]["partition"], 0);
    assert_eq!(events[0]["offset"], 1);
    assert_eq!(events[0]["traceparent"], TRACEPARENT);
    assert_eq!(events[0]["key"], "order-7");
    assert_eq!(events[1]["subscription"], "workers");
    assert_eq!(events[1]["attempt"], 1);
    assert_eq!(events[1]["offset"], 1);
    assert!(by_id["capacity"].as_u64().unwrap() > 0);

    // By key: the untraced message with the same key recorded nothing.
    let by_key = rest.get("/v1/flow-events?key=order-7").await.ok();
    assert_eq!(by_key["events"], by_id["events"]);
    let by_trace = rest
        .get(&format!("/v1/flow-events?traceparent={TRACEPARENT}"))
        .await
        .ok();
    assert_eq!(by_trace["events"], by_id["events"]);
    let scoped_events = rest
        .get(&format!("/v1/flow-events?traceparent={SCOPED}"))
        .await
        .ok();
    let kinds: Vec<&str> = scoped_events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["published", "delivered"], "{scoped_events}");
    let none = rest.get("/v1/flow-events?msg_id=unknown").await.ok();
    assert_eq!(none["events"], json!([]));

    // The same through the command line.
    let output = rapidmq_testkit::cli_command()
        .args([
            "trace",
            "--http",
            &broker.http_url(),
            "--msg-id",
            "m-1",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed, by_id["events"]);
    let table = rapidmq_testkit::cli_command()
        .args(["trace", "--http", &broker.http_url(), "--key", "order-7"])
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("published") && table.contains("delivered"),
        "{table}"
    );
    assert!(table.contains("workers"), "{table}");
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_its_event_stream_are_served_from_the_binary() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    let page = rest.http.get(rest.url("/")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("/dashboard/app.js"), "{html}");
    for asset in ["/dashboard/app.js", "/dashboard/style.css"] {
        let reply = rest.http.get(rest.url(asset)).send().await.unwrap();
        assert_eq!(reply.status().as_u16(), 200, "{asset}");
        // Nothing is loaded from another host.
        assert!(!reply.text().await.unwrap().contains("://"), "{asset}");
    }
    assert!(!html.contains("://"));

    rest.create_topic("shown", 3).await;
    let mut events = rest
        .http
        .get(rest.url("/dashboard/events?interval_ms=200"))
        .send()
        .await
        .unwrap();
    assert!(
        events.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buffer = String::new();
    let overview: Value = loop {
        let chunk = tokio::time::timeout(PATIENCE, events.chunk())
            .await
            .expect("an overview event")
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        if let Some(end) = buffer.find("\n\n") {
            let event = &buffer[..end];
            if event.starts_with("event: overview") {
                let data = event
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap();
                break serde_json::from_str(data).unwrap();
            }
            buffer.drain(..end + 2);
        }
    };
    assert_eq!(overview["topics"][0]["name"], "shown");
    assert_eq!(overview["topics"][0]["partitions"], 3);
    // `degraded` after a slow fsync on a loaded machine; never storage errors here.
    let status = overview["health"]["status"].as_str().unwrap();
    assert!(status == "ok" || status == "degraded", "{overview}");
    assert_eq!(overview["health"]["storage_errors"], 0);
    assert!(overview["totals"]["connections_http"].as_i64().unwrap() >= 1);
}

/// A stand-in OTLP/HTTP collector: answers every request 200 and hands `(path, content type,
/// body)` to the test.
fn fake_collector() -> (String, std::sync::mpsc::Receiver<(String, String, Vec<u8>)>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let path = request_line
                .split(' ')
                .nth(1)
                .unwrap_or_default()
                .to_string();
            let (mut length, mut content_type) = (0, String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap_or_default();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "content-type" => content_type = value.trim().to_string(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if tx.send((path, content_type, body)).is_err() {
                return;
            }
        }
    });
    (endpoint, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_spans_are_exported_over_otlp_when_an_endpoint_is_configured() {
    let (endpoint, exports) = fake_collector();
    let broker = TestBroker::start_with(BrokerOptions {
        env: vec![
            ("RAPIDMQ_OBSERVABILITY__OTLP_ENDPOINT".into(), endpoint),
            // The batch span processor's export interval, in ms (OpenTelemetry's variable).
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
        ],
        ..Default::default()
    });
    let rest = Rest::new(&broker);
    rest.create_topic("exported", 1).await;
    rest.post(
        "/v1/topics/exported/messages?partition=0",
        json!({"messages": [{"value": "x"}]}),
    )
    .await
    .ok();
    let found = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + PATIENCE;
        let has = |body: &[u8], what: &[u8]| body.windows(what.len()).any(|w| w == what);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            let Ok((path, content_type, body)) = exports.recv_timeout(left) else {
                break;
            };
            assert_eq!(path, "/v1/traces");
            assert_eq!(content_type, "application/x-protobuf");
            if has(&body, b"publish") && has(&body, b"commit") {
                assert!(has(&body, b"rapidmq"), "service name");
                assert!(has(&body, b"exported"), "the topic attribute");
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(found, "no export with publish and commit spans");
}
