//! Helpers shared by the broker's end-to-end tests: raw gRPC clients against a [`TestBroker`].
#![allow(dead_code, unused_imports)]

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::admin_client::AdminClient;
use rapidmq_proto::v1::messaging_client::MessagingClient;
use rapidmq_proto::{ERROR_CODE_METADATA, ErrorCode};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

pub use rapidmq_testkit::{BrokerOptions, TestBroker};

pub mod cluster;
pub mod nemesis;

/// How long a test waits for an expected event before failing.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Clients {
    pub admin: AdminClient<Channel>,
    pub messaging: MessagingClient<Channel>,
}

pub async fn connect(broker: &TestBroker) -> Clients {
    let channel = Channel::from_shared(broker.grpc_url())
        .unwrap()
        .connect()
        .await
        .expect("connect to broker");
    Clients {
        admin: AdminClient::new(channel.clone()),
        messaging: MessagingClient::new(channel).max_decoding_message_size(64 << 20),
    }
}

/// The stable error code carried by a failed call.
pub fn error_code(status: &tonic::Status) -> ErrorCode {
    let code = status
        .metadata()
        .get(ERROR_CODE_METADATA)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("status without an error code: {status:?}"));
    ErrorCode::from_code(code).unwrap_or_else(|| panic!("unknown error code {code}"))
}

pub fn topic_config(partitions: u32) -> pb::TopicConfig {
    pb::TopicConfig {
        partitions: Some(partitions),
        ..Default::default()
    }
}

pub async fn create_topic(c: &mut Clients, name: &str, config: pb::TopicConfig) -> pb::TopicInfo {
    c.admin
        .create_topic(pb::CreateTopicRequest {
            name: name.into(),
            config: Some(config),
        })
        .await
        .expect("create topic")
        .into_inner()
}

/// A test message: key (empty: none) and value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Msg {
    pub key: Bytes,
    pub value: Bytes,
}

pub fn msg(key: impl Into<String>, value: impl Into<String>) -> Msg {
    Msg {
        key: Bytes::from(key.into()),
        value: Bytes::from(value.into()),
    }
}

pub fn encode(messages: &[Msg]) -> Bytes {
    pb::MessageBatch {
        messages: messages
            .iter()
            .map(|m| pb::Message {
                key: (!m.key.is_empty()).then(|| m.key.clone()),
                value: m.value.clone(),
                headers: vec![pb::Header {
                    key: "test".into(),
                    value: Bytes::from_static(b"1"),
                }],
                ..Default::default()
            })
            .collect(),
        base_timestamp_ms: 1_700_000_000_000,
        compression: 0,
        ..Default::default()
    }
    .encode_to_vec()
    .into()
}

pub async fn publish(
    c: &mut Clients,
    topic: &str,
    partition: u32,
    messages: &[Msg],
) -> Result<pb::PublishResponse, tonic::Status> {
    c.messaging
        .publish(pb::PublishRequest {
            topic: topic.into(),
            partition,
            batch: encode(messages),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// A message as consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub partition: u32,
    pub offset: u64,
    pub msg: Msg,
}

/// Decodes the delivered messages of a batch.
pub fn decode(batch: &pb::DeliveryBatch) -> Vec<Received> {
    let decoded = pb::MessageBatch::decode(batch.batch.clone()).expect("delivered batch decodes");
    decoded
        .messages
        .into_iter()
        .enumerate()
        .skip(batch.skip as usize)
        .take(batch.count as usize)
        .map(|(i, m)| Received {
            partition: batch.partition,
            offset: batch.base_offset + i as u64,
            msg: Msg {
                key: m.key.unwrap_or_default(),
                value: m.value,
            },
        })
        .collect()
}

/// A raw Consume stream.
pub struct Consumer {
    pub tx: mpsc::Sender<pb::ConsumeRequest>,
    pub stream: tonic::Streaming<pb::ConsumeResponse>,
    pub member_id: String,
    pub assignment: Vec<(u32, u64)>,
    pub generation: u64,
    pub credits_used: u64,
}

pub fn start(kind: pb::StartKind) -> pb::StartPosition {
    pb::StartPosition {
        kind: kind as i32,
        ..Default::default()
    }
}

impl Consumer {
    pub async fn open(
        c: &mut Clients,
        topic: &str,
        subscription: &str,
        start: pb::StartPosition,
        credits: u32,
    ) -> Result<Consumer, tonic::Status> {
        Consumer::subscribe(
            c,
            pb::Subscribe {
                topic: topic.into(),
                subscription: subscription.into(),
                start: Some(start),
                credits,
                consumer_name: "test".into(),
                ..Default::default()
            },
        )
        .await
    }

    /// Opens a stream with `subscribe` as its first message.
    pub async fn subscribe(
        c: &mut Clients,
        subscribe: pb::Subscribe,
    ) -> Result<Consumer, tonic::Status> {
        let (tx, rx) = mpsc::channel(64);
        tx.send(pb::ConsumeRequest {
            kind: Some(pb::consume_request::Kind::Subscribe(subscribe)),
        })
        .await
        .unwrap();
        let mut stream = c
            .messaging
            .consume(ReceiverStream::new(rx))
            .await?
            .into_inner();
        let first = stream.message().await?.expect("Subscribed");
        let Some(pb::consume_response::Kind::Subscribed(subscribed)) = first.kind else {
            panic!("expected Subscribed, got {first:?}")
        };
        let mut consumer = Consumer {
            tx,
            stream,
            member_id: subscribed.member_id,
            assignment: Vec::new(),
            generation: 0,
            credits_used: 0,
        };
        consumer.await_assignment().await;
        Ok(consumer)
    }

    /// Waits for the next Assignment message (ignoring nothing else: it must come next).
    pub async fn await_assignment(&mut self) {
        let response = tokio::time::timeout(PATIENCE, self.stream.message())
            .await
            .expect("assignment in time")
            .expect("stream ok")
            .expect("stream open");
        match response.kind {
            Some(pb::consume_response::Kind::Assignment(a)) => self.set_assignment(a),
            other => panic!("expected an Assignment, got {other:?}"),
        }
    }

    fn set_assignment(&mut self, a: pb::Assignment) {
        self.generation = a.generation;
        self.assignment = a
            .partitions
            .iter()
            .map(|p| (p.partition, p.offset))
            .collect();
    }

    pub fn partitions(&self) -> Vec<u32> {
        self.assignment.iter().map(|(p, _)| *p).collect()
    }

    pub async fn credit(&self, messages: u32) {
        self.grant(messages, 0).await;
    }

    pub async fn grant(&self, messages: u32, bytes: u64) {
        self.tx
            .send(pb::ConsumeRequest {
                kind: Some(pb::consume_request::Kind::Credit(pb::Credit {
                    messages,
                    bytes,
                })),
            })
            .await
            .unwrap();
    }

    /// The next response other than an assignment change, or `None` if nothing arrives within
    /// `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<pb::consume_response::Kind> {
        loop {
            match tokio::time::timeout(wait, self.stream.message()).await {
                Ok(response) => match response.expect("stream ok").expect("stream open").kind {
                    Some(pb::consume_response::Kind::Assignment(a)) => self.set_assignment(a),
                    other => return other,
                },
                Err(_) => return None,
            }
        }
    }

    pub async fn commit(&self, offsets: &[(u32, u64)]) {
        self.tx
            .send(pb::ConsumeRequest {
                kind: Some(pb::consume_request::Kind::Commit(pb::Commit {
                    offsets: offsets
                        .iter()
                        .map(|&(partition, offset)| pb::PartitionOffset { partition, offset })
                        .collect(),
                })),
            })
            .await
            .unwrap();
    }

    /// The next response other than an assignment change (which it records).
    pub async fn next_event(&mut self) -> Option<pb::consume_response::Kind> {
        loop {
            let response = tokio::time::timeout(PATIENCE, self.stream.message())
                .await
                .expect("consume event in time")
                .expect("stream ok")?;
            match response.kind {
                Some(pb::consume_response::Kind::Assignment(a)) => self.set_assignment(a),
                other => return other,
            }
        }
    }

    /// Receives exactly `n` messages, granting credits as it goes.
    pub async fn receive(&mut self, n: usize) -> Vec<Received> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.next_event().await {
                Some(pb::consume_response::Kind::Batch(batch)) => {
                    self.credits_used += u64::from(batch.count);
                    self.credit(batch.count).await;
                    out.extend(decode(&batch));
                }
                Some(pb::consume_response::Kind::Error(err)) => panic!("stream error: {err:?}"),
                other => panic!("unexpected consume event {other:?}"),
            }
        }
        out
    }
}

/// Commits, per partition, the offset after the highest one received.
pub fn next_offsets(received: &[Received]) -> Vec<(u32, u64)> {
    let mut next: HashMap<u32, u64> = HashMap::new();
    for r in received {
        let e = next.entry(r.partition).or_default();
        *e = (*e).max(r.offset + 1);
    }
    let mut v: Vec<_> = next.into_iter().collect();
    v.sort();
    v
}

/// Polls `condition` until it holds or PATIENCE passes. For conditions that depend on the
/// broker's own timers (retention), where there is no event to wait on.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
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

/// A queue-mode Consume stream.
pub struct QueueConsumer {
    pub tx: mpsc::Sender<pb::ConsumeRequest>,
    pub stream: tonic::Streaming<pb::ConsumeResponse>,
}

pub fn queue_settings(ack_deadline_ms: u64, max_deliveries: u32) -> pb::QueueSettings {
    pb::QueueSettings {
        ack_deadline_ms: Some(ack_deadline_ms),
        max_deliveries: Some(max_deliveries),
        dead_letter_topic: None,
    }
}

/// The request for a queue subscription `name` of `topic` from its earliest message, with
/// `ack_deadline_ms` and `max_deliveries`.
pub fn queue_subscription(
    topic: &str,
    name: &str,
    ack_deadline_ms: u64,
    max_deliveries: u32,
) -> pb::CreateSubscriptionRequest {
    pb::CreateSubscriptionRequest {
        topic: topic.into(),
        name: name.into(),
        mode: pb::SubscriptionMode::Queue as i32,
        start: Some(start(pb::StartKind::Earliest)),
        queue: Some(queue_settings(ack_deadline_ms, max_deliveries)),
    }
}

impl QueueConsumer {
    pub async fn open(
        c: &mut Clients,
        topic: &str,
        subscription: &str,
        queue: pb::QueueSettings,
        credits: u32,
    ) -> Result<QueueConsumer, tonic::Status> {
        let (tx, rx) = mpsc::channel(64);
        tx.send(pb::ConsumeRequest {
            kind: Some(pb::consume_request::Kind::Subscribe(pb::Subscribe {
                topic: topic.into(),
                subscription: subscription.into(),
                mode: pb::SubscriptionMode::Queue as i32,
                start: Some(start(pb::StartKind::Earliest)),
                credits,
                consumer_name: "worker".into(),
                queue: Some(queue),
                credit_bytes: 0,
            })),
        })
        .await
        .unwrap();
        let mut stream = c
            .messaging
            .consume(ReceiverStream::new(rx))
            .await?
            .into_inner();
        let first = stream.message().await?.expect("Subscribed");
        assert!(
            matches!(first.kind, Some(pb::consume_response::Kind::Subscribed(_))),
            "{first:?}"
        );
        Ok(QueueConsumer { tx, stream })
    }

    async fn send(&self, kind: pb::consume_request::Kind) {
        self.tx
            .send(pb::ConsumeRequest { kind: Some(kind) })
            .await
            .unwrap();
    }

    pub async fn credit(&self, messages: u32) {
        self.send(pb::consume_request::Kind::Credit(pb::Credit {
            messages,
            bytes: 0,
        }))
        .await;
    }

    pub async fn ack(&self, receipts: Vec<pb::Receipt>) {
        self.send(pb::consume_request::Kind::Ack(pb::Ack { receipts }))
            .await;
    }

    pub async fn nack(&self, receipts: Vec<pb::Receipt>, delay_ms: u64) {
        self.send(pb::consume_request::Kind::Nack(pb::Nack {
            receipts,
            delay_ms,
        }))
        .await;
    }

    pub async fn extend(&self, receipts: Vec<pb::Receipt>, extend_ms: u64) {
        self.send(pb::consume_request::Kind::Extend(pb::ExtendDeadline {
            receipts,
            extend_ms,
        }))
        .await;
    }

    /// The next response, or `None` if nothing arrives within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<pb::consume_response::Kind> {
        match tokio::time::timeout(wait, self.stream.message()).await {
            Ok(response) => response.expect("stream ok").expect("stream open").kind,
            Err(_) => None,
        }
    }

    /// Exactly `n` queue messages (waiting up to PATIENCE), without acking or re-crediting.
    pub async fn receive(&mut self, n: usize) -> Vec<pb::QueueMessage> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.next_within(PATIENCE).await {
                Some(pb::consume_response::Kind::QueueBatch(batch)) => out.extend(batch.messages),
                Some(pb::consume_response::Kind::Error(err)) => panic!("stream error: {err:?}"),
                other => panic!("expected queue messages, got {other:?}"),
            }
        }
        out
    }
}

pub fn value_of(m: &pb::QueueMessage) -> String {
    String::from_utf8(m.message.as_ref().expect("message").value.to_vec()).unwrap()
}

pub fn receipt(m: &pb::QueueMessage) -> pb::Receipt {
    m.receipt.expect("receipt")
}

/// Publishes raw messages (for delay, TTL, priority and header fields).
pub async fn publish_raw(
    c: &mut Clients,
    topic: &str,
    partition: u32,
    messages: Vec<pb::Message>,
) -> Result<pb::PublishResponse, tonic::Status> {
    let batch = pb::MessageBatch {
        messages,
        base_timestamp_ms: 1_700_000_000_000,
        compression: 0,
        ..Default::default()
    };
    c.messaging
        .publish(pb::PublishRequest {
            topic: topic.into(),
            partition,
            batch: batch.encode_to_vec().into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

pub fn raw(value: &str) -> pb::Message {
    pb::Message {
        value: Bytes::from(value.to_string()),
        ..Default::default()
    }
}
