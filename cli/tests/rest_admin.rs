//! REST: topics, subscriptions, status, the OpenAPI document and docs page, CORS and gzip.

mod rest_common;

use reqwest::StatusCode;
use rest_common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_listed_described_and_deleted() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);

    let created = rest
        .post(
            "/v1/topics",
            json!({"name": "orders", "config": {"partitions": 3, "storage": "memory", "retention_ms": 0}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(created.body["name"], "orders");
    assert_eq!(created.body["config"]["partitions"], 3);
    assert_eq!(created.body["config"]["storage"], "memory");
    assert_eq!(created.body["config"]["durability"], "memory");
    assert_eq!(created.body["partitions"].as_array().unwrap().len(), 3);
    rest.create_topic("audit", 1).await;

    let listed = rest.get("/v1/topics").await.ok();
    let names: Vec<&str> = listed["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["audit", "orders"]);

    let described = rest.get("/v1/topics/orders").await.ok();
    assert_eq!(described["config"]["retention_ms"], 0);

    rest.post("/v1/topics", json!({"name": "orders"}))
        .await
        .problem(409, "TOPIC_ALREADY_EXISTS");
    rest.post(
        "/v1/topics",
        json!({"name": "x", "config": {"partitions": 0}}),
    )
    .await
    .problem(400, "INVALID_PARTITION_COUNT");
    rest.post("/v1/topics", json!({"name": "bad/name"}))
        .await
        .problem(400, "INVALID_NAME");

    let deleted = rest.delete("/v1/topics/orders").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    rest.get("/v1/topics/orders")
        .await
        .problem(404, "TOPIC_NOT_FOUND");
    rest.delete("/v1/topics/orders")
        .await
        .problem(404, "TOPIC_NOT_FOUND");

    let status = rest.get("/v1/status").await.ok();
    assert_eq!(status["topics"], 1);
    assert!(status["version"].as_str().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_created_listed_sought_and_deleted() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("events", 2).await;
    rest.post(
        "/v1/topics/events/messages?partition=0",
        json!({"messages": [{"value": "a"}, {"value": "b"}, {"value": "c"}]}),
    )
    .await
    .ok();

    let stream = rest
        .create_subscription(
            "events",
            json!({"name": "audit", "start": {"kind": "earliest"}}),
        )
        .await;
    assert_eq!(stream["mode"], "stream");
    assert_eq!(stream["total_lag"], 3);
    let queue = rest
        .create_subscription(
            "events",
            json!({"name": "work", "mode": "queue", "queue": {"ack_deadline_ms": 5000, "max_deliveries": 2}}),
        )
        .await;
    assert_eq!(queue["mode"], "queue");
    assert_eq!(queue["queue"]["ack_deadline_ms"], 5000);
    assert_eq!(queue["queue"]["dead_letter_topic"], "events.dlq");
    assert_eq!(queue["queue_stats"]["in_flight"], 0);
    rest.post("/v1/topics/events/subscriptions", json!({"name": "audit"}))
        .await
        .problem(409, "SUBSCRIPTION_ALREADY_EXISTS");

    let listed = rest.get("/v1/topics/events/subscriptions").await.ok();
    assert_eq!(listed["subscriptions"].as_array().unwrap().len(), 2);
    let all = rest.get("/v1/subscriptions").await.ok();
    assert_eq!(all["subscriptions"].as_array().unwrap().len(), 2);
    let filtered = rest.get("/v1/subscriptions?topic=events").await.ok();
    assert_eq!(filtered["subscriptions"].as_array().unwrap().len(), 2);
    rest.get("/v1/subscriptions?topic=nope")
        .await
        .problem(404, "TOPIC_NOT_FOUND");

    let sought = rest
        .post(
            "/v1/topics/events/subscriptions/audit/seek",
            json!({"position": {"kind": "offset", "offset": 2}, "partition": 0}),
        )
        .await
        .ok();
    assert_eq!(sought["cursors"][0]["committed_offset"], 2);
    assert_eq!(sought["total_lag"], 1);
    let latest = rest
        .post(
            "/v1/topics/events/subscriptions/audit/seek",
            json!({"position": {"kind": "latest"}}),
        )
        .await
        .ok();
    assert_eq!(latest["total_lag"], 0);

    let described = rest.describe_subscription("events", "audit").await;
    assert_eq!(described["name"], "audit");
    let deleted = rest.delete("/v1/topics/events/subscriptions/audit").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    rest.get("/v1/topics/events/subscriptions/audit")
        .await
        .problem(404, "SUBSCRIPTION_NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_and_offline_docs_page_are_served() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    let doc = rest.get("/v1/openapi.json").await.ok();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/topics",
        "/v1/topics/{topic}",
        "/v1/topics/{topic}/message",
        "/v1/topics/{topic}/messages",
        "/v1/topics/{topic}/partitions/{partition}/messages",
        "/v1/subscriptions",
        "/v1/topics/{topic}/subscriptions/{subscription}/messages",
        "/v1/topics/{topic}/subscriptions/{subscription}/ack",
        "/v1/topics/{topic}/subscriptions/{subscription}/nack",
        "/v1/topics/{topic}/subscriptions/{subscription}/extend",
        "/v1/topics/{topic}/subscriptions/{subscription}/commit",
        "/v1/topics/{topic}/subscriptions/{subscription}/seek",
        "/v1/topics/{topic}/subscriptions/{subscription}/events",
        "/v1/topics/{topic}/subscriptions/{subscription}/ws",
        "/v1/topics/{topic}/dead-letters",
        "/v1/topics/{topic}/dead-letters/replay",
        "/v1/status",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the document");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());

    let page = rest.http.get(rest.url("/v1/docs/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    // Everything the page loads comes from the broker itself.
    for attr in ["src=\"http", "href=\"http", "src='http", "href='http"] {
        assert!(
            !html.contains(attr),
            "the docs page loads a remote resource: {html}"
        );
    }
    let init = rest
        .http
        .get(rest.url("/v1/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/v1/openapi.json"), "{init}");
    assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_by_default_and_follows_the_config() {
    let plain = TestBroker::start();
    let rest = Rest::new(&plain);
    let response = rest
        .http
        .get(rest.url("/v1/topics"))
        .header("Origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let broker = TestBroker::start_with(BrokerOptions {
        env: vec![(
            "RAPIDMQ_HTTP__CORS_ALLOWED_ORIGINS".into(),
            "[\"https://app.example\"]".into(),
        )],
        ..Default::default()
    });
    let rest = Rest::new(&broker);
    let preflight = rest
        .http
        .request(reqwest::Method::OPTIONS, rest.url("/v1/topics"))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{preflight:?}");
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = rest
        .http
        .get(rest.url("/v1/topics"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_client_can_read_why_its_session_was_refused() {
    // Without `access-control-expose-headers` a browser hides `rapidmq-auth-reason: expired`,
    // so a web client could not tell an expired session (log in again) from bad credentials.
    let broker = TestBroker::start_with(BrokerOptions {
        env: vec![(
            "RAPIDMQ_HTTP__CORS_ALLOWED_ORIGINS".into(),
            "[\"https://app.example\"]".into(),
        )],
        ..Default::default()
    });
    let rest = Rest::new(&broker);
    let response = rest
        .http
        .get(rest.url("/v1/topics"))
        .header("Origin", "https://app.example")
        .send()
        .await
        .unwrap();
    let exposed = response
        .headers()
        .get("access-control-expose-headers")
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .unwrap_or_default();
    for header in ["rapidmq-auth-reason", "retry-after"] {
        assert!(
            exposed.split(',').any(|h| h.trim() == header),
            "{header} not in {exposed:?}"
        );
    }
}

/// A browser asks before a cross-origin PUT (set a password) or PATCH (alter a topic): the
/// preflight must allow every method the REST API serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_may_send_every_method_the_api_serves() {
    let broker = TestBroker::start_with(BrokerOptions {
        env: vec![(
            "RAPIDMQ_HTTP__CORS_ALLOWED_ORIGINS".into(),
            "[\"https://app.example\"]".into(),
        )],
        ..Default::default()
    });
    let rest = Rest::new(&broker);
    for (method, path) in [
        ("PUT", "/v1/users/alice/password"),
        ("PATCH", "/v1/topics/orders"),
        ("DELETE", "/v1/topics/orders"),
        ("POST", "/v1/topics"),
    ] {
        let response = rest
            .http
            .request(reqwest::Method::OPTIONS, rest.url(path))
            .header("Origin", "https://app.example")
            .header("Access-Control-Request-Method", method)
            .send()
            .await
            .unwrap();
        let allowed = response
            .headers()
            .get("access-control-allow-methods")
            .map(|v| v.to_str().unwrap().to_ascii_uppercase())
            .unwrap_or_default();
        assert!(
            allowed.split(',').any(|m| m.trim() == method),
            "{method} {path}: preflight allows {allowed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_are_gzipped_when_the_client_accepts_it() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    let response = rest
        .http
        .get(rest.url("/v1/openapi.json"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-encoding"], "gzip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_is_altered_with_patch() {
    let broker = TestBroker::start();
    let rest = Rest::new(&broker);
    rest.create_topic("metrics", 2).await;
    let patch = |body: serde_json::Value| {
        rest.send(rest.http.patch(rest.url("/v1/topics/metrics")).json(&body))
    };
    let altered = patch(json!({"retention_messages": 100, "durability": "buffered"}))
        .await
        .ok();
    assert_eq!(altered["config"]["retention_messages"], 100);
    assert_eq!(altered["config"]["durability"], "buffered");
    assert_eq!(altered["config"]["partitions"], 2);
    // The partition count and the storage are fixed: not fields of the PATCH body.
    patch(json!({"partitions": 5}))
        .await
        .problem(400, "INVALID_ARGUMENT");
    patch(json!({"storage": "memory"}))
        .await
        .problem(400, "INVALID_ARGUMENT");
    let described = rest.get("/v1/topics/metrics").await.ok();
    assert_eq!(described["config"]["retention_messages"], 100);
}
