//! Helpers for the REST tests: a small JSON client against a [`TestBroker`]'s HTTP listener.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub use rapidmq_testkit::{BrokerOptions, TestBroker};

/// How long a test waits for an expected event before failing.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub const PROBLEM_JSON: &str = "application/problem+json";

pub struct Rest {
    pub http: reqwest::Client,
    pub base: String,
}

/// A response: status, content type and JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

impl Reply {
    /// Asserts a 2xx and returns the body.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert!(self.status.is_success(), "expected success, got {self:?}");
        self.body
    }

    /// Asserts an RFC 9457 problem with this status and error name.
    #[track_caller]
    pub fn problem(&self, status: u16, name: &str) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert!(
            self.content_type.starts_with(PROBLEM_JSON),
            "not problem+json: {self:?}"
        );
        let b = &self.body;
        assert_eq!(b["status"], status, "{self:?}");
        assert_eq!(b["name"], name, "{self:?}");
        assert!(b["code"].as_u64().is_some(), "{self:?}");
        assert!(b["title"].as_str().is_some(), "{self:?}");
        assert!(b["detail"].as_str().is_some(), "{self:?}");
        assert_eq!(b["type"], format!("urn:rapidmq:error:{name}"), "{self:?}");
    }
}

impl Rest {
    pub fn new(broker: &TestBroker) -> Rest {
        Rest {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            base: broker.http_url(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("HTTP request");
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = response.bytes().await.expect("HTTP body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.post(self.url(path)).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.http.delete(self.url(path))).await
    }

    pub async fn create_topic(&self, name: &str, partitions: u32) -> Value {
        let reply = self
            .post(
                "/v1/topics",
                json!({"name": name, "config": {"partitions": partitions}}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        reply.body
    }

    pub async fn create_subscription(&self, topic: &str, body: Value) -> Value {
        let reply = self
            .post(&format!("/v1/topics/{topic}/subscriptions"), body)
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        reply.body
    }

    pub async fn describe_subscription(&self, topic: &str, name: &str) -> Value {
        self.get(&format!("/v1/topics/{topic}/subscriptions/{name}"))
            .await
            .ok()
    }
}

/// The `value` fields of consumed messages.
pub fn values(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .expect("messages array")
        .iter()
        .map(|m| m["value"].as_str().expect("UTF-8 value").to_string())
        .collect()
}

/// Polls `condition` until it holds or PATIENCE passes: for broker state that changes without an
/// event the test could wait on (a settle applied on another connection).
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
    }
}

/// Reads `event:`/`data:` records from a Server-Sent Events body.
pub struct SseReader {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl SseReader {
    pub async fn open(rest: &Rest, path: &str) -> SseReader {
        let response = rest.http.get(rest.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        SseReader {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event that carries data: `(event name, data as JSON)`.
    pub async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let record: String = self.buffer.drain(..end + 2).collect();
                let mut event = "message".to_string();
                let mut data = String::new();
                for line in record.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return (event, serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout(PATIENCE, self.body.next())
                .await
                .expect("an event in time")
                .expect("the stream is open")
                .expect("the stream reads");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    pub async fn messages(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            let (event, data) = self.next().await;
            assert_eq!(event, "message", "{data}");
            out.push(data);
        }
        out
    }
}
