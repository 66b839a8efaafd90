//! Shared helpers for the integration tests: a real broker from `rapidmq-testkit`, a connected
//! client, unique topic names, and bounded waits (a guard against hangs, never a way to sync).

#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rapidmq::{Client, Message, Producer, ReceivedMessage, TopicConfig};
use rapidmq_testkit::{BrokerOptions, TestBroker};

/// Upper bound for anything a test waits on; reaching it fails the test.
pub const GUARD: Duration = Duration::from_secs(60);

pub struct Env {
    pub broker: TestBroker,
    pub client: Client,
}

impl Env {
    pub async fn start() -> Env {
        let broker = tokio::task::block_in_place(TestBroker::start);
        let client = Client::connect(broker.grpc_url())
            .await
            .expect("connect to the test broker");
        Env { broker, client }
    }

    /// Creates a topic with a unique name and `partitions` partitions.
    pub async fn topic(&self, partitions: u32) -> String {
        self.topic_with(TopicConfig {
            partitions,
            ..TopicConfig::default()
        })
        .await
    }

    pub async fn topic_with(&self, config: TopicConfig) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.client
            .admin()
            .create_topic(&name, config)
            .await
            .expect("create topic");
        name
    }

    /// Kills the broker (`kill -9`), starts it again on the same data and points the client at
    /// its new address (the testkit binds port 0, so the port changes).
    pub fn crash_and_restart(&mut self) {
        tokio::task::block_in_place(|| {
            self.broker.kill();
            self.broker.start_again();
        });
        self.client
            .set_endpoints([self.broker.grpc_url()])
            .expect("new endpoint");
        assert_eq!(self.client.endpoints(), [self.broker.grpc_url()]);
    }

    /// Graceful restart (SIGTERM), then the new address.
    pub fn restart(&mut self) {
        tokio::task::block_in_place(|| self.broker.restart());
        self.client
            .set_endpoints([self.broker.grpc_url()])
            .expect("new endpoint");
    }

    /// Every message of every partition, read back with Fetch.
    pub async fn read_log(&self, topic: &str) -> Vec<ReceivedMessage> {
        read_log(&self.client, topic).await
    }
}

/// Every message of every partition of `topic` as `client`'s node serves it, read back with
/// Fetch, each partition in offset order.
pub async fn read_log(client: &Client, topic: &str) -> Vec<ReceivedMessage> {
    let info = client
        .admin()
        .describe_topic(topic)
        .await
        .expect("describe");
    let mut all = Vec::new();
    for p in info.partitions {
        let mut offset = p.log_start_offset;
        while offset < p.high_watermark {
            let fetched = client
                .fetch(topic, p.partition, offset, 1000)
                .await
                .expect("fetch");
            let last = fetched.messages.last().map(|m| m.offset).expect("progress");
            offset = last + 1;
            all.extend(fetched.messages);
        }
    }
    all
}

/// Starts `count` cluster-mode nodes (ids `1..=count`, every one a peer of the others), each
/// on its own ephemeral ports and data directory. The cluster ports are bound and released
/// first, so every node is told every peer's address before any node starts.
pub fn start_cluster(count: u64) -> Vec<TestBroker> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    let peers = listeners
        .iter()
        .zip(1..)
        .map(|(l, id)| format!("{id}={}", l.local_addr().expect("local address")))
        .collect::<Vec<_>>()
        .join(",");
    drop(listeners);
    (1..=count)
        .map(|id| {
            TestBroker::start_with(BrokerOptions {
                args: vec![
                    "--node-id".into(),
                    id.to_string(),
                    "--peers".into(),
                    peers.clone(),
                ],
                ..BrokerOptions::default()
            })
        })
        .collect()
}

/// Awaits `future`, failing the test if it takes longer than [`GUARD`].
pub async fn guarded<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(GUARD, future).await {
        Ok(output) => output,
        Err(_) => panic!("{what} did not finish within {GUARD:?}"),
    }
}

/// Sends `n` keyless messages `"0"`, `"1"`, ... and waits for every receipt.
pub async fn publish_values(producer: &Producer, n: usize) -> Vec<rapidmq::Delivery> {
    let mut receipts = Vec::with_capacity(n);
    for i in 0..n {
        receipts.push(
            producer
                .send(Message::new(i.to_string()))
                .await
                .expect("send"),
        );
    }
    let mut deliveries = Vec::with_capacity(n);
    for receipt in receipts {
        deliveries.push(guarded("receipt", receipt).await.expect("delivered"));
    }
    deliveries
}

/// Checks `condition` every 20 ms until it holds, failing after [`GUARD`]. Only for state the
/// broker changes on its own timers (dead-lettering, stream errors), where no event exists to
/// await.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + GUARD;
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

/// A value of a message as text.
pub fn text(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}
