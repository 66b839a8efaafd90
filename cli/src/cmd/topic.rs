//! `rapidmq topic create|list|describe|delete|alter`.

use anyhow::bail;
use rapidmq::{Storage, TopicConfig, TopicInfo};
use serde_json::json;

use super::{Ctx, DurabilityArg, SdkResult, durability_name, storage_name};
use crate::output::{self, Stdout, human_bytes, human_millis, rfc3339};
use crate::parse::{ByteSize, HumanDuration};

#[derive(Debug, clap::Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    #[command(after_help = "Examples:\n  \
        rapidmq topic create orders\n  \
        rapidmq topic create orders --partitions 8 --retention-time 7d --retention-bytes 10GiB\n  \
        rapidmq topic create metrics --storage memory\n  \
        rapidmq topic create audit --durability fsync --max-message-bytes 1MiB\n  \
        rapidmq topic create payments --dedup-window 10m   # drop repeated msg-id headers\n  \
        rapidmq topic create orders --replication-factor 3   # cluster mode")]
    Create {
        /// Topic name: [A-Za-z0-9._-], 1 to 200 characters.
        name: String,
        #[command(flatten)]
        settings: TopicSettings,
        /// Cluster mode: copies of each partition, on distinct nodes [default: min(3, voting
        /// nodes)]. A single-node broker accepts 1 only.
        #[arg(long, value_name = "N")]
        replication_factor: Option<u32>,
        /// Storage: disk (durable) or memory (lost on restart).
        #[arg(long, value_enum)]
        storage: Option<StorageArg>,
        /// Succeed when the topic already exists.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List topics.
    #[command(after_help = "Examples:\n  rapidmq topic list\n  rapidmq topic list --output json")]
    List,
    /// Show a topic's settings and partitions.
    #[command(after_help = "Examples:\n  rapidmq topic describe orders\n  \
        rapidmq topic describe orders --output json")]
    Describe {
        /// Topic name.
        name: String,
    },
    /// Delete a topic, its messages and its subscriptions.
    #[command(after_help = "Examples:\n  rapidmq topic delete orders\n  \
        rapidmq topic delete orders --if-exists")]
    Delete {
        /// Topic name.
        name: String,
        /// Succeed when the topic does not exist.
        #[arg(long)]
        if_exists: bool,
    },
    /// Change a topic's retention, max message size, durability or dedup window.
    #[command(
        after_help = "Examples:\n  rapidmq topic alter orders --retention-time 30d\n  \
        rapidmq topic alter orders --max-message-bytes 4MiB\n\n\
        Not supported by this broker yet: its Admin API has no AlterTopic call."
    )]
    Alter {
        /// Topic name.
        name: String,
        #[command(flatten)]
        settings: TopicSettings,
    },
}

/// Settings shared by `create` and `alter`.
#[derive(Debug, Clone, clap::Args)]
pub struct TopicSettings {
    /// Partition count [default: the broker's].
    #[arg(long, short = 'p')]
    partitions: Option<u32>,
    /// Time retention per partition (e.g. 7d, 12h; 0 = unlimited).
    #[arg(long, value_name = "DURATION")]
    retention_time: Option<HumanDuration>,
    /// Size retention per partition (e.g. 10GiB; 0 = unlimited).
    #[arg(long, value_name = "SIZE")]
    retention_bytes: Option<ByteSize>,
    /// Message-count retention per partition (0 = unlimited).
    #[arg(long, value_name = "N")]
    retention_messages: Option<u64>,
    /// Largest message accepted (e.g. 1MiB).
    #[arg(long, value_name = "SIZE")]
    max_message_bytes: Option<ByteSize>,
    /// When a publish is acknowledged: fsync (default) or buffered.
    #[arg(long, value_enum)]
    durability: Option<DurabilityArg>,
    /// Drop messages whose `msg-id` header was seen within this window (e.g. 10m; 0 = off).
    #[arg(long, value_name = "DURATION")]
    dedup_window: Option<HumanDuration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StorageArg {
    Disk,
    Memory,
}

impl TopicSettings {
    fn config(&self, storage: Option<StorageArg>) -> anyhow::Result<TopicConfig> {
        let max_message_bytes = match self.max_message_bytes {
            Some(ByteSize(n)) => Some(
                u32::try_from(n)
                    .map_err(|_| anyhow::anyhow!("--max-message-bytes is too large"))?,
            ),
            None => None,
        };
        if self.partitions == Some(0) {
            bail!("--partitions must be at least 1");
        }
        Ok(TopicConfig {
            partitions: self.partitions.unwrap_or(0),
            retention_ms: self.retention_time.map(HumanDuration::as_millis_u64),
            retention_bytes: self.retention_bytes.map(|b| b.0),
            retention_messages: self.retention_messages,
            max_message_bytes,
            storage: match storage {
                None => Storage::Default,
                Some(StorageArg::Disk) => Storage::Disk,
                Some(StorageArg::Memory) => Storage::Memory,
            },
            durability: self.durability.map(Into::into).unwrap_or_default(),
            dedup_window_ms: self.dedup_window.map(HumanDuration::as_millis_u64),
            replication_factor: None,
        })
    }
}

pub async fn run(ctx: &Ctx, command: TopicCommand) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    let client = ctx.connect().await?;
    let admin = client.admin();
    let mut out = Stdout::new();
    match command {
        TopicCommand::Create {
            name,
            settings,
            storage,
            replication_factor,
            if_not_exists,
        } => {
            if replication_factor == Some(0) {
                bail!("--replication-factor must be at least 1");
            }
            let config = TopicConfig {
                replication_factor,
                ..settings.config(storage)?
            };
            let info = match admin.create_topic(name.clone(), config).await {
                Err(err)
                    if if_not_exists && err.code() == rapidmq::ErrorCode::TopicAlreadyExists =>
                {
                    admin.describe_topic(name).await.cli(ctx)?
                }
                other => other.cli(ctx)?,
            };
            if ctx.json() {
                out.json_pretty(&topic_json(&info))?;
            } else {
                out.line(format!(
                    "created topic {} ({} partitions, durability {})",
                    info.name,
                    info.partitions.len(),
                    durability_name(info.config.durability)
                ))?;
            }
        }
        TopicCommand::List => {
            let mut topics = admin.list_topics().await.cli(ctx)?;
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            if ctx.json() {
                let list: Vec<_> = topics.iter().map(topic_json).collect();
                out.json_pretty(&list)?;
            } else {
                let mut table = output::table([
                    "TOPIC",
                    "PARTITIONS",
                    "MESSAGES",
                    "SIZE",
                    "DURABILITY",
                    "STORAGE",
                    "RETENTION",
                ]);
                for t in &topics {
                    table.add_row(vec![
                        t.name.clone(),
                        t.partitions.len().to_string(),
                        messages(t).to_string(),
                        human_bytes(t.partitions.iter().map(|p| p.bytes).sum()),
                        durability_name(t.config.durability).to_string(),
                        storage_name(t.config.storage).to_string(),
                        retention(&t.config),
                    ]);
                }
                if topics.is_empty() {
                    out.line("no topics (create one with `rapidmq topic create NAME`)")?;
                } else {
                    output::print_table(&mut out, &table)?;
                }
            }
        }
        TopicCommand::Describe { name } => {
            let info = admin.describe_topic(name).await.cli(ctx)?;
            if ctx.json() {
                out.json_pretty(&topic_json(&info))?;
            } else {
                describe_table(&mut out, &info)?;
            }
        }
        TopicCommand::Delete { name, if_exists } => {
            match admin.delete_topic(name.clone()).await {
                Err(err) if if_exists && err.code() == rapidmq::ErrorCode::TopicNotFound => {}
                other => other.cli(ctx)?,
            }
            if ctx.json() {
                out.json_pretty(&json!({ "deleted": name }))?;
            } else {
                out.line(format!("deleted topic {name}"))?;
            }
        }
        TopicCommand::Alter { name, settings } => {
            if settings.partitions.is_some() {
                bail!("the partition count of a topic cannot be altered");
            }
            let info = admin
                .alter_topic(name, settings.config(None)?)
                .await
                .cli(ctx)?;
            if ctx.json() {
                out.json_pretty(&topic_json(&info))?;
            } else {
                describe_table(&mut out, &info)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn messages(t: &TopicInfo) -> u64 {
    t.partitions
        .iter()
        .map(|p| p.high_watermark.saturating_sub(p.log_start_offset))
        .sum()
}

fn limit(value: Option<u64>, show: impl Fn(u64) -> String) -> Option<String> {
    value.filter(|&v| v > 0).map(show)
}

fn retention(c: &TopicConfig) -> String {
    let parts: Vec<String> = [
        limit(c.retention_ms, human_millis),
        limit(c.retention_bytes, human_bytes),
        limit(c.retention_messages, |n| format!("{n} msgs")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        "unlimited".into()
    } else {
        parts.join(", ")
    }
}

fn describe_table(out: &mut Stdout, info: &TopicInfo) -> std::io::Result<()> {
    let c = &info.config;
    let props = output::properties([
        ("Topic", info.name.clone()),
        ("Created", rfc3339(info.created_at_ms)),
        ("Partitions", info.partitions.len().to_string()),
        ("Durability", durability_name(c.durability).to_string()),
        ("Storage", storage_name(c.storage).to_string()),
        ("Retention", retention(c)),
        (
            "Max message",
            c.max_message_bytes
                .map(|b| human_bytes(u64::from(b)))
                .unwrap_or_else(|| "default".into()),
        ),
        (
            "Dedup window",
            limit(c.dedup_window_ms, human_millis).unwrap_or_else(|| "off".into()),
        ),
        ("Messages", messages(info).to_string()),
    ]);
    output::print_table(out, &props)?;
    out.line("")?;
    // Cluster mode: each partition's replicas, preferred leader first.
    let placed = info.partitions.iter().any(|p| !p.replicas.is_empty());
    let mut header = vec!["PARTITION", "START OFFSET", "HIGH WATERMARK", "SIZE"];
    if placed {
        header.extend(["REPLICAS", "LEADER"]);
    }
    let mut table = output::table(header);
    for p in &info.partitions {
        let mut row = vec![
            p.partition.to_string(),
            p.log_start_offset.to_string(),
            p.high_watermark.to_string(),
            human_bytes(p.bytes),
        ];
        if placed {
            let ids: Vec<String> = p.replicas.iter().map(u64::to_string).collect();
            row.push(ids.join(","));
            row.push(p.leader.map_or_else(|| "-".into(), |id| id.to_string()));
        }
        table.add_row(row);
    }
    output::print_table(out, &table)
}

/// The JSON shape of a topic (stable for scripts).
pub fn topic_json(t: &TopicInfo) -> serde_json::Value {
    let c = &t.config;
    json!({
        "name": t.name,
        "created_at_ms": t.created_at_ms,
        "config": {
            "partitions": t.partitions.len(),
            "retention_ms": c.retention_ms,
            "retention_bytes": c.retention_bytes,
            "retention_messages": c.retention_messages,
            "max_message_bytes": c.max_message_bytes,
            "storage": storage_name(c.storage),
            "durability": durability_name(c.durability),
            "dedup_window_ms": c.dedup_window_ms,
            "replication_factor": c.replication_factor,
        },
        "messages": messages(t),
        "partitions": t.partitions.iter().map(|p| json!({
            "partition": p.partition,
            "log_start_offset": p.log_start_offset,
            "high_watermark": p.high_watermark,
            "bytes": p.bytes,
            "replicas": p.replicas,
            "leader": p.leader,
        })).collect::<Vec<_>>(),
    })
}
