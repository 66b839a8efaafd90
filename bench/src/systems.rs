//! The three systems under test behind one interface: a [`Session`] (a fresh topic / stream /
//! key at one persistence [`Tier`]) makes [`Publisher`]s and [`Subscriber`]s.
//!
//! - RapidMQ: our SDK (`rapidmq`), one partition; memory = `Storage::Memory`, persisted =
//!   `Durability::Buffered`, fsync = `Durability::Fsync` (one fsync per group commit).
//! - NATS JetStream (`async-nats`): one stream, one subject; memory = memory storage, persisted =
//!   file storage. NATS 2.9 has no per-write fsync (its file store syncs on an interval), so the
//!   fsync tier is not available.
//! - Redis Streams (`redis`): one stream key, `XADD` pipelined, `XREAD` from id 0; memory = no
//!   AOF, persisted = AOF `appendfsync everysec`, fsync = AOF `appendfsync always`. The tier is set
//!   with `CONFIG SET` on the server under test.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use rapidmq::{Durability, Message, StartPosition, Storage, TopicConfig};

/// Waits for one batch's acknowledgements.
pub type AckFuture = BoxFuture<'static, anyhow::Result<()>>;

/// A system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    Rapidmq,
    Nats,
    Redis,
}

impl System {
    pub const ALL: [System; 3] = [System::Rapidmq, System::Nats, System::Redis];

    pub fn name(self) -> &'static str {
        match self {
            System::Rapidmq => "rapidmq",
            System::Nats => "nats",
            System::Redis => "redis",
        }
    }

    /// Why this system cannot run `tier`, if it cannot.
    pub fn unsupported(self, tier: Tier) -> Option<&'static str> {
        match (self, tier) {
            (System::Nats, Tier::Fsync) => {
                Some("NATS 2.9 cannot fsync each write (file store syncs on an interval)")
            }
            _ => None,
        }
    }

    /// What `tier` means for this system, for the report.
    pub fn tier_setting(self, tier: Tier) -> &'static str {
        match (self, tier) {
            (System::Rapidmq, Tier::Memory) => "storage memory",
            (System::Rapidmq, Tier::Persisted) => "durability buffered",
            (System::Rapidmq, Tier::Fsync) => "durability fsync",
            (System::Nats, Tier::Memory) => "memory storage",
            (System::Nats, Tier::Persisted) => "file storage",
            (System::Nats, Tier::Fsync) => "n/a",
            (System::Redis, Tier::Memory) => "no AOF",
            (System::Redis, Tier::Persisted) => "AOF everysec",
            (System::Redis, Tier::Fsync) => "AOF always",
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for System {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        System::ALL
            .into_iter()
            .find(|system| system.name() == s)
            .ok_or_else(|| anyhow!("unknown system {s:?} (rapidmq, nats or redis)"))
    }
}

/// A persistence tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    Memory,
    Persisted,
    Fsync,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Memory, Tier::Persisted, Tier::Fsync];

    pub fn name(self) -> &'static str {
        match self {
            Tier::Memory => "memory",
            Tier::Persisted => "persisted",
            Tier::Fsync => "fsync",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Tier {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Tier::ALL
            .into_iter()
            .find(|tier| tier.name() == s)
            .ok_or_else(|| anyhow!("unknown tier {s:?} (memory, persisted or fsync)"))
    }
}

/// Where a system listens.
#[derive(Debug, Clone)]
pub struct Target {
    pub system: System,
    /// `http://host:port` (RapidMQ gRPC), `nats://host:port` or `redis://host:port`.
    pub url: String,
    /// RapidMQ's HTTP address (`host:port`), to read its fsync count from `/v1/status`.
    pub http: Option<String>,
    /// RapidMQ consumers' prefetch; `None` keeps the SDK's default.
    pub prefetch: Option<u32>,
}

/// How publishers batch.
#[derive(Debug, Clone, Copy)]
pub struct PublishOptions {
    /// Messages per batch.
    pub batch: usize,
    /// Batches the driver keeps in flight.
    pub inflight: usize,
    /// RapidMQ only: send a batch as soon as a request slot is free instead of lingering.
    pub linger_zero: bool,
    pub size: usize,
}

/// A fresh topic / stream / key on one system at one tier.
pub struct Session {
    target: Target,
    name: String,
    admin: Admin,
}

enum Admin {
    Rapidmq(rapidmq::Client),
    Nats(async_nats::jetstream::Context),
    Redis(redis::aio::MultiplexedConnection),
}

impl Session {
    /// Creates `name` on the target at `tier` (after removing any leftover of the same name).
    pub async fn create(target: &Target, tier: Tier, name: &str) -> anyhow::Result<Session> {
        if let Some(why) = target.system.unsupported(tier) {
            bail!("{}: {why}", target.system);
        }
        let admin = match target.system {
            System::Rapidmq => {
                let client = rapidmq::Client::connect(target.url.clone()).await?;
                let (storage, durability) = match tier {
                    Tier::Memory => (Storage::Memory, Durability::Unspecified),
                    Tier::Persisted => (Storage::Disk, Durability::Buffered),
                    Tier::Fsync => (Storage::Disk, Durability::Fsync),
                };
                let config = TopicConfig {
                    partitions: 1,
                    storage,
                    durability,
                    ..TopicConfig::default()
                };
                client
                    .admin()
                    .create_topic(name, config)
                    .await
                    .context("create the RapidMQ topic")?;
                Admin::Rapidmq(client)
            }
            System::Nats => {
                let client = async_nats::connect(target.url.as_str()).await?;
                let js = async_nats::jetstream::new(client);
                let _ = js.delete_stream(name).await;
                let storage = match tier {
                    Tier::Memory => async_nats::jetstream::stream::StorageType::Memory,
                    _ => async_nats::jetstream::stream::StorageType::File,
                };
                js.create_stream(async_nats::jetstream::stream::Config {
                    name: name.to_string(),
                    subjects: vec![name.to_string()],
                    storage,
                    ..Default::default()
                })
                .await
                .map_err(|e| anyhow!("create the JetStream stream: {e}"))?;
                Admin::Nats(js)
            }
            System::Redis => {
                let client = redis::Client::open(target.url.as_str())?;
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis_set_tier(&mut conn, tier).await?;
                let () = redis::cmd("DEL").arg(name).query_async(&mut conn).await?;
                Admin::Redis(conn)
            }
        };
        Ok(Session {
            target: target.clone(),
            name: name.to_string(),
            admin,
        })
    }

    /// A publisher on its own connection.
    pub async fn publisher(&self, options: PublishOptions) -> anyhow::Result<Publisher> {
        Ok(match self.target.system {
            System::Rapidmq => {
                let client = rapidmq::Client::connect(self.target.url.clone()).await?;
                let batch = options.batch.max(1);
                let mut builder = client
                    .producer(self.name.clone())
                    .max_batch_messages(batch)
                    .max_batch_bytes((batch * (options.size + 64)).max(1 << 20))
                    .max_buffered_messages((batch * (options.inflight + 1)).max(1024));
                if options.linger_zero {
                    builder = builder.linger(Duration::ZERO);
                }
                Publisher::Rapidmq(builder.build().await?, client)
            }
            System::Nats => {
                let client = async_nats::connect(self.target.url.as_str()).await?;
                Publisher::Nats {
                    js: Box::new(async_nats::jetstream::new(client.clone())),
                    client,
                    subject: self.name.clone(),
                }
            }
            System::Redis => {
                let client = redis::Client::open(self.target.url.as_str())?;
                Publisher::Redis {
                    conn: client.get_multiplexed_async_connection().await?,
                    key: self.name.clone(),
                }
            }
        })
    }

    /// A subscriber on its own connection that reads everything from the start; `index`
    /// distinguishes the subscriptions of a fan-out.
    pub async fn subscriber(&self, index: usize) -> anyhow::Result<Subscriber> {
        Ok(match self.target.system {
            System::Rapidmq => {
                let client = rapidmq::Client::connect(self.target.url.clone()).await?;
                let mut builder = client
                    .consumer(self.name.clone())
                    .subscription(format!("{}-{index}", self.name))
                    .start(StartPosition::Earliest);
                if let Some(prefetch) = self.target.prefetch {
                    builder = builder.prefetch(prefetch);
                }
                let consumer = builder.subscribe().await?;
                Subscriber::Rapidmq(consumer, client)
            }
            System::Nats => {
                let client = async_nats::connect(self.target.url.as_str()).await?;
                let js = async_nats::jetstream::new(client);
                let stream = js
                    .get_stream(&self.name)
                    .await
                    .map_err(|e| anyhow!("get the JetStream stream: {e}"))?;
                let consumer = stream
                    .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| anyhow!("create the ordered consumer: {e}"))?;
                let messages = consumer
                    .messages()
                    .await
                    .map_err(|e| anyhow!("open the ordered consumer: {e}"))?;
                Subscriber::Nats(Box::new(messages))
            }
            System::Redis => {
                let client = redis::Client::open(self.target.url.as_str())?;
                Subscriber::Redis {
                    conn: client.get_multiplexed_async_connection().await?,
                    key: self.name.clone(),
                    last_id: "0".to_string(),
                }
            }
        })
    }

    /// fsyncs the broker has issued, where the system reports them (RapidMQ's `/v1/status`).
    pub async fn fsyncs(&self) -> anyhow::Result<Option<u64>> {
        match (&self.target.system, &self.target.http) {
            (System::Rapidmq, Some(http)) => {
                let body = http_get(http, "/v1/status").await?;
                let status: serde_json::Value = serde_json::from_str(&body)
                    .with_context(|| format!("parse /v1/status: {body}"))?;
                Ok(status.get("fsyncs").and_then(serde_json::Value::as_u64))
            }
            _ => Ok(None),
        }
    }

    /// Deletes the topic / stream / key.
    pub async fn delete(self) -> anyhow::Result<()> {
        match self.admin {
            Admin::Rapidmq(client) => {
                client.admin().delete_topic(&self.name).await?;
                client.close().await?;
            }
            Admin::Nats(js) => {
                js.delete_stream(&self.name)
                    .await
                    .map_err(|e| anyhow!("delete the JetStream stream: {e}"))?;
            }
            Admin::Redis(mut conn) => {
                let () = redis::cmd("DEL")
                    .arg(&self.name)
                    .query_async(&mut conn)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Sets Redis's persistence for `tier` and waits until an AOF rewrite it started is over.
async fn redis_set_tier(
    conn: &mut redis::aio::MultiplexedConnection,
    tier: Tier,
) -> anyhow::Result<()> {
    let (appendonly, appendfsync) = match tier {
        Tier::Memory => ("no", "everysec"),
        Tier::Persisted => ("yes", "everysec"),
        Tier::Fsync => ("yes", "always"),
    };
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("save")
        .arg("")
        .arg("appendfsync")
        .arg(appendfsync)
        .arg("appendonly")
        .arg(appendonly)
        .query_async(conn)
        .await
        .context("CONFIG SET the Redis persistence tier")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("persistence")
            .query_async(conn)
            .await?;
        if !info.contains("aof_rewrite_in_progress:1") && !info.contains("aof_rewrite_scheduled:1")
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("Redis AOF rewrite still running after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await; // bounded poll of INFO
    }
}

/// Sends batches.
pub enum Publisher {
    Rapidmq(rapidmq::Producer, rapidmq::Client),
    Nats {
        js: Box<async_nats::jetstream::Context>,
        client: async_nats::Client,
        subject: String,
    },
    Redis {
        conn: redis::aio::MultiplexedConnection,
        key: String,
    },
}

impl Publisher {
    /// Hands `values` to the system (returns once they are sent or buffered for sending) and
    /// returns a future of their acknowledgements.
    pub async fn send(&mut self, values: Vec<Bytes>) -> anyhow::Result<AckFuture> {
        match self {
            Publisher::Rapidmq(producer, _) => {
                let mut receipts = Vec::with_capacity(values.len());
                for value in values {
                    receipts.push(producer.send(Message::new(value)).await?);
                }
                Ok(Box::pin(async move {
                    for receipt in receipts {
                        receipt.await?;
                    }
                    Ok(())
                }))
            }
            Publisher::Nats { js, subject, .. } => {
                let mut acks = Vec::with_capacity(values.len());
                for value in values {
                    acks.push(
                        js.publish(subject.clone(), value)
                            .await
                            .map_err(|e| anyhow!("JetStream publish: {e}"))?,
                    );
                }
                Ok(Box::pin(async move {
                    for ack in acks {
                        ack.await.map_err(|e| anyhow!("JetStream ack: {e}"))?;
                    }
                    Ok(())
                }))
            }
            Publisher::Redis { conn, key } => {
                let mut pipe = redis::pipe();
                for value in &values {
                    pipe.cmd("XADD")
                        .arg(key.as_str())
                        .arg("*")
                        .arg("v")
                        .arg(value.as_ref())
                        .ignore();
                }
                let mut conn = conn.clone();
                // Spawned so the pipeline is written now, not when the ack is first awaited.
                let task = tokio::spawn(async move { pipe.query_async::<()>(&mut conn).await });
                Ok(Box::pin(async move { Ok(task.await??) }))
            }
        }
    }

    pub async fn close(self) -> anyhow::Result<()> {
        match self {
            Publisher::Rapidmq(producer, client) => {
                producer.close().await?;
                client.close().await?;
            }
            Publisher::Nats { client, .. } => {
                client.flush().await?;
            }
            Publisher::Redis { .. } => {}
        }
        Ok(())
    }
}

/// Reads what was published, from the start.
pub enum Subscriber {
    Rapidmq(rapidmq::Consumer, rapidmq::Client),
    Nats(Box<async_nats::jetstream::consumer::pull::Ordered>),
    Redis {
        conn: redis::aio::MultiplexedConnection,
        key: String,
        last_id: String,
    },
}

/// How long one `next` waits for messages.
const POLL: Duration = Duration::from_millis(200);

impl Subscriber {
    /// The next values, waiting up to 200 ms; empty when none arrived.
    pub async fn next(&mut self) -> anyhow::Result<Vec<Bytes>> {
        match self {
            Subscriber::Rapidmq(consumer, _) => Ok(consumer
                .poll(1000, POLL)
                .await?
                .into_iter()
                .map(|m| m.value)
                .collect()),
            Subscriber::Nats(messages) => {
                let mut values = Vec::new();
                match tokio::time::timeout(POLL, messages.next()).await {
                    Err(_) | Ok(None) => return Ok(values),
                    Ok(Some(message)) => values.push(
                        message
                            .map_err(|e| anyhow!("JetStream consume: {e}"))?
                            .message
                            .payload,
                    ),
                }
                // Take what is already buffered without waiting again.
                while values.len() < 1000 {
                    match futures::FutureExt::now_or_never(messages.next()) {
                        Some(Some(message)) => values.push(
                            message
                                .map_err(|e| anyhow!("JetStream consume: {e}"))?
                                .message
                                .payload,
                        ),
                        _ => break,
                    }
                }
                Ok(values)
            }
            Subscriber::Redis { conn, key, last_id } => {
                let reply: redis::Value = redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(1000)
                    .arg("BLOCK")
                    .arg(POLL.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(key.as_str())
                    .arg(last_id.as_str())
                    .query_async(conn)
                    .await?;
                let (values, last) = parse_xread(reply)?;
                if let Some(last) = last {
                    *last_id = last;
                }
                Ok(values)
            }
        }
    }

    pub async fn close(self) -> anyhow::Result<()> {
        if let Subscriber::Rapidmq(consumer, client) = self {
            consumer.close().await?;
            client.close().await?;
        }
        Ok(())
    }
}

/// The values (field `v`) and the last entry id of an `XREAD` reply on one key (RESP2 shape:
/// `[[key, [[id, [field, value, ...]], ...]]]`, or nil on timeout).
pub fn parse_xread(reply: redis::Value) -> anyhow::Result<(Vec<Bytes>, Option<String>)> {
    use redis::Value;
    let keys = match reply {
        Value::Nil => return Ok((Vec::new(), None)),
        Value::Array(keys) => keys,
        other => bail!("unexpected XREAD reply {other:?}"),
    };
    let mut values = Vec::new();
    let mut last = None;
    for key in keys {
        let Value::Array(mut pair) = key else {
            bail!("unexpected XREAD key entry");
        };
        let Some(Value::Array(entries)) = pair.pop() else {
            bail!("unexpected XREAD entries");
        };
        for entry in entries {
            let Value::Array(mut entry) = entry else {
                bail!("unexpected XREAD entry");
            };
            let (Some(Value::Array(fields)), Some(id)) = (entry.pop(), entry.pop()) else {
                bail!("unexpected XREAD entry shape");
            };
            last = Some(match id {
                Value::BulkString(id) => String::from_utf8(id)?,
                Value::SimpleString(id) => id,
                other => bail!("unexpected XREAD id {other:?}"),
            });
            let mut fields = fields.into_iter();
            while let (Some(field), Some(value)) = (fields.next(), fields.next()) {
                if let (Value::BulkString(field), Value::BulkString(value)) = (field, value)
                    && field == b"v"
                {
                    values.push(Bytes::from(value));
                }
            }
        }
    }
    Ok((values, last))
}

/// A minimal HTTP/1.0 GET on 127.0.0.1 (RapidMQ's status endpoint); returns the body.
async fn http_get(addr: &str, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP response from {addr}"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!(
            "GET {path} on {addr}: {}",
            head.lines().next().unwrap_or("")
        );
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    #[test]
    fn parses_xread_replies() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk(b"k"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk(b"1-0"),
                    Value::Array(vec![bulk(b"v"), bulk(b"a")]),
                ]),
                Value::Array(vec![
                    bulk(b"1-1"),
                    Value::Array(vec![bulk(b"x"), bulk(b"skip"), bulk(b"v"), bulk(b"b")]),
                ]),
            ]),
        ])]);
        let (values, last) = parse_xread(reply).unwrap();
        assert_eq!(values, vec![Bytes::from("a"), Bytes::from("b")]);
        assert_eq!(last.as_deref(), Some("1-1"));
        assert_eq!(parse_xread(Value::Nil).unwrap(), (Vec::new(), None));
        assert!(parse_xread(Value::Int(3)).is_err());
    }

    #[test]
    fn names_round_trip_and_nats_has_no_fsync_tier() {
        for system in System::ALL {
            assert_eq!(system.name().parse::<System>().unwrap(), system);
        }
        for tier in Tier::ALL {
            assert_eq!(tier.name().parse::<Tier>().unwrap(), tier);
        }
        assert!("kafka".parse::<System>().is_err());
        assert!(System::Nats.unsupported(Tier::Fsync).is_some());
        assert!(System::Redis.unsupported(Tier::Fsync).is_none());
        assert!(System::Rapidmq.unsupported(Tier::Fsync).is_none());
    }
}
