//! Bounded resources against a real broker: the publish byte budget, connection, stream,
//! request, live-session and per-tenant limits, each with the error a client gets; the `Host`
//! check of the HTTP listener; and `GET` endpoints that change nothing.

mod common;
mod rest_common;

use futures::future::join_all;
use rapidmq_proto::{ERROR_CODE_METADATA, ErrorCode, RETRY_AFTER_METADATA};
use rest_common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn broker_with(env: &[(&str, &str)]) -> TestBroker {
    TestBroker::start_with(BrokerOptions {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    })
}

fn http_addr(broker: &TestBroker) -> String {
    broker.http_url().trim_start_matches("http://").to_string()
}

/// Sends one HTTP/1.1 request on a new connection with this `Host` and returns the status.
async fn status_with_host(broker: &TestBroker, path: &str, host: &str) -> u16 {
    let mut conn = TcpStream::connect(http_addr(broker)).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

#[tokio::test]
async fn listing_dead_letters_creates_no_subscription() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("jobs.dlq", 1).await;

    let listed = rest.get("/v1/topics/jobs.dlq/dead-letters").await.ok();
    assert_eq!(listed["dead_letters"], json!([]));
    let subscriptions = rest.get("/v1/topics/jobs.dlq/subscriptions").await.ok();
    assert_eq!(
        subscriptions["subscriptions"],
        json!([]),
        "a GET must not create the replay cursor: {subscriptions}"
    );
    // Nor does the gRPC listing.
    let mut c = common::connect(&broker).await;
    c.admin
        .list_dead_letters(rapidmq_proto::v1::ListDeadLettersRequest {
            dead_letter_topic: "jobs.dlq".into(),
            max: 10,
            page_token: String::new(),
        })
        .await
        .unwrap();
    let subscriptions = rest.get("/v1/subscriptions").await.ok();
    assert_eq!(subscriptions["subscriptions"], json!([]), "{subscriptions}");
}

#[tokio::test]
async fn requests_naming_an_unknown_host_are_refused() {
    let broker = TestBroker::start();
    let port = http_addr(&broker).rsplit(':').next().unwrap().to_string();
    for host in ["evil.example".to_string(), format!("evil.example:{port}")] {
        assert_eq!(
            status_with_host(&broker, "/v1/topics", &host).await,
            403,
            "{host}"
        );
        assert_eq!(status_with_host(&broker, "/", &host).await, 403, "{host}");
        assert_eq!(
            status_with_host(&broker, "/metrics", &host).await,
            403,
            "{host}"
        );
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "localhost".to_string(),
    ] {
        assert_eq!(
            status_with_host(&broker, "/v1/topics", &host).await,
            200,
            "{host}"
        );
    }
    // Probes may address the broker by any name.
    assert_eq!(
        status_with_host(&broker, "/healthz", "evil.example").await,
        200
    );
    assert_eq!(
        status_with_host(&broker, "/readyz", "evil.example").await,
        200
    );

    // The refusal is a problem like any other.
    let rest = Rest::new(&broker);
    let reply = rest
        .send(
            rest.http
                .get(rest.url("/v1/topics"))
                .header("host", "evil.example"),
        )
        .await;
    reply.problem(403, "PERMISSION_DENIED");
}

#[tokio::test]
async fn configured_host_names_are_answered() {
    let broker = broker_with(&[("RAPIDMQ_HTTP__ALLOWED_HOSTS", r#"["broker.internal"]"#)]);
    assert_eq!(
        status_with_host(&broker, "/v1/topics", "broker.internal:7421").await,
        200
    );
    assert_eq!(
        status_with_host(&broker, "/v1/topics", "other.internal").await,
        403
    );
}

/// A broker whose publish byte budget holds two 30 KB messages.
fn small_budget_broker() -> TestBroker {
    broker_with(&[
        ("RAPIDMQ_TOPIC_DEFAULTS__MAX_MESSAGE_BYTES", "32768"),
        ("RAPIDMQ_LIMITS__MAX_MESSAGE_BYTES", "32768"),
        ("RAPIDMQ_LIMITS__MAX_REQUEST_BYTES", "65536"),
        ("RAPIDMQ_LIMITS__MAX_INFLIGHT_PUBLISH_BYTES", "65536"),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rest_publishes_beyond_the_byte_budget_get_429_with_retry_after() {
    let broker = small_budget_broker();
    let rest = Rest::new(&broker);
    rest.create_topic("t", 1).await;
    let value = "x".repeat(30_000);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    // Bursts of concurrent publishes until one finds the budget spent.
    let refused = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no publish was ever refused"
        );
        let burst = (0..32).map(|_| {
            rest.http
                .post(rest.url("/v1/topics/t/message"))
                .json(&json!({"value": value}))
                .send()
        });
        let mut refused = None;
        for response in join_all(burst).await {
            let response = response.unwrap();
            match response.status().as_u16() {
                200 | 201 => {}
                429 => refused = Some(response),
                other => panic!("unexpected status {other}: {response:?}"),
            }
        }
        if let Some(refused) = refused {
            break refused;
        }
    };
    let retry_after = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(retry_after, "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["name"], "RESOURCE_EXHAUSTED", "{body}");
    assert_eq!(body["status"], 429, "{body}");
    // The budget comes back: a lone publish goes through.
    let reply = rest
        .post("/v1/topics/t/message", json!({"value": value}))
        .await;
    assert!(reply.status.is_success(), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_publishes_beyond_the_byte_budget_are_refused_with_a_retry_hint() {
    let broker = small_budget_broker();
    let mut c = common::connect(&broker).await;
    common::create_topic(&mut c, "t", common::topic_config(1)).await;
    let value = "x".repeat(30_000);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let status = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no publish was ever refused"
        );
        let burst = (0..32).map(|_| {
            let mut c = common::Clients {
                admin: c.admin.clone(),
                messaging: c.messaging.clone(),
            };
            let value = value.clone();
            async move { common::publish_raw(&mut c, "t", 0, vec![common::raw(&value)]).await }
        });
        let refused = join_all(burst)
            .await
            .into_iter()
            .filter_map(Result::err)
            .inspect(|status| {
                assert_eq!(
                    common::error_code(status),
                    ErrorCode::ResourceExhausted,
                    "{status:?}"
                )
            })
            .next();
        if let Some(status) = refused {
            break status;
        }
    };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    let metadata = |key: &str| {
        status
            .metadata()
            .get(key)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(metadata(ERROR_CODE_METADATA).as_deref(), Some("5004"));
    assert_eq!(metadata(RETRY_AFTER_METADATA).as_deref(), Some("100"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn producers_beyond_the_byte_budget_wait_and_every_message_is_stored_in_order() {
    let broker = small_budget_broker();
    let rest = Rest::new(&broker);
    rest.create_topic("t", 4).await;
    let client = rapidmq::Client::connect(broker.grpc_url()).await.unwrap();
    // One message per batch, pipelined: far more 30 KB publishes at once than the budget holds.
    let producer = client
        .producer("t")
        .max_batch_messages(1)
        .build()
        .await
        .unwrap();
    let value = "x".repeat(30_000);
    let mut receipts = Vec::new();
    for i in 0..200 {
        let message = rapidmq::Message::new(value.clone()).with_key(format!("k{}", i % 4));
        receipts.push((i % 4, producer.send(message).await.unwrap()));
    }
    // Per key (one partition each), offsets follow the send order.
    let mut last = std::collections::HashMap::new();
    for (key, receipt) in receipts {
        let delivery = receipt.await.expect("every message is stored");
        let offset = delivery.offset.expect("appended, not scheduled");
        if let Some(previous) = last.insert(key, offset) {
            assert!(
                offset > previous,
                "key {key}: offset {offset} after {previous}"
            );
        }
    }
    let stats = producer.stats();
    assert_eq!(stats.messages_failed, 0, "{stats:?}");
    let topic = rest.get("/v1/topics/t").await.ok();
    let stored: u64 = topic["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["high_watermark"].as_u64().unwrap())
        .sum();
    assert_eq!(stored, 200, "{topic}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_client_core_retries_a_shedding_broker_after_its_hint() {
    let broker = broker_with(&[("RAPIDMQ_LIMITS__MAX_CONCURRENT_REQUESTS", "2")]);
    let rest = Rest::new(&broker);
    rest.create_topic("t", 1).await;
    rest.create_subscription("t", json!({"name": "s0"})).await;
    rest.create_subscription("t", json!({"name": "s1"})).await;
    let client = rapidmq::Client::connect(broker.grpc_url()).await.unwrap();
    let polls = hold_request_places(&rest, 2, 5000);
    eventually("the broker sheds load", || async {
        let reply = rest.get("/v1/topics").await;
        if reply.status.as_u16() == 429 {
            assert_eq!(reply.content_type, PROBLEM_JSON);
            true
        } else {
            false
        }
    })
    .await;
    let started = std::time::Instant::now();
    // Refused while the long-polls hold both places, then retried until they end.
    let topics = client.admin().list_topics().await.unwrap();
    assert_eq!(topics.len(), 1);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(500),
        "answered at once: {:?}",
        started.elapsed()
    );
    for poll in polls {
        assert_eq!(poll.await.unwrap().status().as_u16(), 200);
    }
}

/// Holds `n` request places with long-polls of `wait_ms` on the empty subscriptions `s0`..`sn`.
/// A poll refused because the caller's own probe took a place at the same moment is sent again,
/// so every place ends up held.
fn hold_request_places(
    rest: &Rest,
    n: usize,
    wait_ms: u64,
) -> Vec<tokio::task::JoinHandle<reqwest::Response>> {
    (0..n)
        .map(|i| {
            let http = rest.http.clone();
            let url = rest.url(&format!(
                "/v1/topics/t/subscriptions/s{i}/messages?wait_ms={wait_ms}"
            ));
            tokio::spawn(async move {
                loop {
                    let reply = http.get(&url).send().await.unwrap();
                    if reply.status().as_u16() != 429 {
                        return reply;
                    }
                }
            })
        })
        .collect()
}

/// Opens an HTTP/2 connection to the gRPC listener and returns the server's first SETTINGS
/// frame payload, or `None` if the broker closed the connection instead.
async fn grpc_settings(broker: &TestBroker) -> (TcpStream, Option<Vec<u8>>) {
    let mut conn = TcpStream::connect(broker.grpc_addr()).await.unwrap();
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
    preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    if conn.write_all(&preface).await.is_err() {
        return (conn, None);
    }
    let mut header = [0u8; 9];
    match tokio::time::timeout(PATIENCE, conn.read_exact(&mut header)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return (conn, None),
        Err(_) => panic!("the gRPC listener neither answered nor closed"),
    }
    assert_eq!(header[3], 4, "the server starts with SETTINGS");
    let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    let mut payload = vec![0u8; len];
    conn.read_exact(&mut payload).await.unwrap();
    (conn, Some(payload))
}

/// Whether an HTTP/1.1 request on a new connection is answered (rather than the connection
/// closed unanswered); the connection is returned open.
async fn http_answered(broker: &TestBroker) -> (TcpStream, bool) {
    let mut conn = TcpStream::connect(http_addr(broker)).await.unwrap();
    let _ = conn
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(PATIENCE, conn.read(&mut buf))
        .await
        .expect("the HTTP listener neither answered nor closed");
    let answered = matches!(read, Ok(n) if n > 0 && buf.starts_with(b"HTTP/1.1 200"));
    (conn, answered)
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_on_both_listeners() {
    let broker = broker_with(&[("RAPIDMQ_LIMITS__MAX_CONNECTIONS", "2")]);

    let (first, answered) = http_answered(&broker).await;
    assert!(answered);
    let (_second, answered) = http_answered(&broker).await;
    assert!(answered);
    let (_third, answered) = http_answered(&broker).await;
    assert!(!answered, "a third HTTP connection was served");
    drop(first);
    eventually("a slot is free again after a connection closes", || async {
        http_answered(&broker).await.1
    })
    .await;

    let (first, settings) = grpc_settings(&broker).await;
    assert!(settings.is_some());
    let (_second, settings) = grpc_settings(&broker).await;
    assert!(settings.is_some());
    let (_third, settings) = grpc_settings(&broker).await;
    assert!(settings.is_none(), "a third gRPC connection was served");
    drop(first);
    eventually("a gRPC slot is free again", || async {
        grpc_settings(&broker).await.1.is_some()
    })
    .await;
}

#[tokio::test]
async fn grpc_connections_advertise_the_stream_limit() {
    let broker = broker_with(&[("RAPIDMQ_LIMITS__MAX_STREAMS_PER_CONNECTION", "7")]);
    let (_conn, settings) = grpc_settings(&broker).await;
    let settings = settings.expect("the connection is served");
    // SETTINGS_MAX_CONCURRENT_STREAMS is identifier 3.
    let max_streams = settings.chunks(6).find_map(|s| {
        (u16::from_be_bytes([s[0], s[1]]) == 3)
            .then(|| u32::from_be_bytes([s[2], s[3], s[4], s[5]]))
    });
    assert_eq!(max_streams, Some(7), "settings: {settings:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_beyond_the_concurrency_limit_are_refused_on_both_transports() {
    let broker = broker_with(&[("RAPIDMQ_LIMITS__MAX_CONCURRENT_REQUESTS", "2")]);
    let rest = Rest::new(&broker);
    rest.create_topic("t", 1).await;
    rest.create_subscription("t", json!({"name": "s0"})).await;
    rest.create_subscription("t", json!({"name": "s1"})).await;
    let polls = hold_request_places(&rest, 2, 15000);
    eventually("a third request is refused", || async {
        let reply = rest.get("/v1/topics").await;
        if reply.status.as_u16() == 429 {
            reply.problem(429, "RESOURCE_EXHAUSTED");
            true
        } else {
            false
        }
    })
    .await;
    let mut c = common::connect(&broker).await;
    let status = c
        .admin
        .list_topics(rapidmq_proto::v1::ListTopicsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(common::error_code(&status), ErrorCode::ResourceExhausted);
    // Health checks are not counted.
    assert_eq!(
        status_with_host(&broker, "/healthz", "localhost").await,
        200
    );
    for poll in polls {
        poll.abort();
    }
    eventually("requests are served again", || async {
        rest.get("/v1/topics").await.status.is_success()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_sessions_beyond_the_limit_are_refused() {
    let broker = broker_with(&[("RAPIDMQ_LIMITS__MAX_LIVE_SESSIONS", "1")]);
    let rest = Rest::new(&broker);
    rest.create_topic("t", 1).await;
    rest.create_subscription("t", json!({"name": "s"})).await;
    let events = rest.url("/v1/topics/t/subscriptions/s/events");
    let first = rest.http.get(&events).send().await.unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let second = rest.send(rest.http.get(&events)).await;
    second.problem(429, "RESOURCE_EXHAUSTED");
    drop(first);
    eventually("the session's place is free once it closes", || async {
        let next = rest.http.get(&events).send().await.unwrap();
        next.status().as_u16() == 200
    })
    .await;
}

#[tokio::test]
async fn topics_and_subscriptions_per_tenant_are_bounded() {
    let broker = broker_with(&[
        ("RAPIDMQ_LIMITS__MAX_TOPICS_PER_TENANT", "2"),
        ("RAPIDMQ_LIMITS__MAX_SUBSCRIPTIONS_PER_TENANT", "2"),
    ]);
    let rest = Rest::new(&broker);
    rest.create_topic("a", 1).await;
    rest.create_topic("b", 1).await;
    rest.post("/v1/topics", json!({"name": "c"}))
        .await
        .problem(429, "RESOURCE_EXHAUSTED");
    assert_eq!(rest.delete("/v1/topics/b").await.status.as_u16(), 204);
    rest.create_topic("c", 1).await;

    rest.create_subscription("a", json!({"name": "s1"})).await;
    rest.create_subscription("c", json!({"name": "s2"})).await;
    rest.post("/v1/topics/a/subscriptions", json!({"name": "s3"}))
        .await
        .problem(429, "RESOURCE_EXHAUSTED");
    assert_eq!(
        rest.delete("/v1/topics/c/subscriptions/s2")
            .await
            .status
            .as_u16(),
        204
    );
    rest.create_subscription("a", json!({"name": "s3"})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_per_tenant_are_bounded() {
    let broker = broker_with(&[("RAPIDMQ_LIMITS__MAX_MEMBERS_PER_TENANT", "2")]);
    let rest = Rest::new(&broker);
    rest.create_topic("t", 1).await;
    rest.create_subscription("t", json!({"name": "a"})).await;
    rest.create_subscription("t", json!({"name": "b"})).await;
    let a = rest.url("/v1/topics/t/subscriptions/a/events");
    let b = rest.url("/v1/topics/t/subscriptions/b/events");
    let first = rest.http.get(&a).send().await.unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let second = rest.http.get(&b).send().await.unwrap();
    assert_eq!(second.status().as_u16(), 200);
    // A third member, of either subscription, is refused.
    rest.send(rest.http.get(&a))
        .await
        .problem(429, "RESOURCE_EXHAUSTED");
    rest.send(rest.http.get(&b))
        .await
        .problem(429, "RESOURCE_EXHAUSTED");
    drop(first);
    eventually("a member's place is free once it leaves", || async {
        let next = rest.http.get(&a).send().await.unwrap();
        next.status().as_u16() == 200
    })
    .await;
}
