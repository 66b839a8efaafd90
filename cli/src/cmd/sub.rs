//! `rapidmq sub create|list|describe|seek|delete`: named subscriptions (cursors) on topics.

use rapidmq::{QueueSettings, SubscriptionInfo};
use serde_json::json;

use super::{Ctx, ModeArg, SdkResult, mode_name};
use crate::output::{self, Stdout, human_millis, rfc3339};
use crate::parse::{HumanDuration, Position};

#[derive(Debug, clap::Subcommand)]
pub enum SubCommand {
    /// Create a subscription.
    #[command(after_help = "Examples:\n  \
        rapidmq sub create orders billing\n  \
        rapidmq sub create orders audit --from earliest\n  \
        rapidmq sub create orders replay --from 2024-05-01T00:00:00Z\n  \
        rapidmq sub create orders work --mode queue --ack-deadline 30s --max-deliveries 5")]
    Create {
        /// Topic name.
        topic: String,
        /// Subscription name.
        name: String,
        /// Delivery mode.
        #[arg(long, value_enum, default_value_t = ModeArg::Stream)]
        mode: ModeArg,
        /// Where it starts: earliest, latest, OFFSET, @EPOCH_MS, RFC 3339 time, or -DURATION.
        #[arg(long, default_value = "latest", value_name = "POSITION")]
        from: Position,
        /// Queue mode: redeliver a message not acked within this time [broker default: 30s].
        #[arg(long, value_name = "DURATION")]
        ack_deadline: Option<HumanDuration>,
        /// Queue mode: deliveries before a message moves to the dead-letter topic [broker
        /// default: 5].
        #[arg(long, value_name = "N")]
        max_deliveries: Option<u32>,
        /// Queue mode: the dead-letter topic [default: <topic>.dlq].
        #[arg(long, value_name = "TOPIC")]
        dead_letter_topic: Option<String>,
    },
    /// List subscriptions, of one topic or of all.
    #[command(
        after_help = "Examples:\n  rapidmq sub list\n  rapidmq sub list orders\n  \
        rapidmq sub list --output json"
    )]
    List {
        /// Only this topic's subscriptions.
        topic: Option<String>,
    },
    /// Show a subscription's cursors, lag and members.
    #[command(after_help = "Examples:\n  rapidmq sub describe orders billing\n  \
        rapidmq sub describe orders billing --output json")]
    Describe {
        /// Topic name.
        topic: String,
        /// Subscription name.
        name: String,
    },
    /// Move a subscription's cursor (all partitions, or one).
    #[command(after_help = "Examples:\n  \
        rapidmq sub seek orders billing --to earliest\n  \
        rapidmq sub seek orders billing --to 1200 --partition 3\n  \
        rapidmq sub seek orders billing --to -1h")]
    Seek {
        /// Topic name.
        topic: String,
        /// Subscription name.
        name: String,
        /// Target: earliest, latest, OFFSET, @EPOCH_MS, RFC 3339 time, or -DURATION.
        #[arg(long, value_name = "POSITION")]
        to: Position,
        /// Only this partition.
        #[arg(long)]
        partition: Option<u32>,
    },
    /// Delete a subscription.
    #[command(after_help = "Examples:\n  rapidmq sub delete orders billing")]
    Delete {
        /// Topic name.
        topic: String,
        /// Subscription name.
        name: String,
    },
}

pub async fn run(ctx: &Ctx, command: SubCommand) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    if let SubCommand::Create {
        mode: ModeArg::Stream,
        ack_deadline,
        max_deliveries,
        dead_letter_topic,
        ..
    } = &command
        && (ack_deadline.is_some() || max_deliveries.is_some() || dead_letter_topic.is_some())
    {
        anyhow::bail!(
            "--ack-deadline, --max-deliveries and --dead-letter-topic apply to queue \
             subscriptions: add --mode queue"
        );
    }
    let client = ctx.connect().await?;
    let admin = client.admin();
    let mut out = Stdout::new();
    match command {
        SubCommand::Create {
            topic,
            name,
            mode,
            from,
            ack_deadline,
            max_deliveries,
            dead_letter_topic,
        } => {
            let created = match mode {
                ModeArg::Stream => admin.create_subscription(topic, name, from.0).await,
                ModeArg::Queue => {
                    let settings = QueueSettings {
                        ack_deadline: ack_deadline.map(|d| d.0),
                        max_deliveries,
                        dead_letter_topic,
                    };
                    admin
                        .create_queue_subscription(topic, name, from.0, settings)
                        .await
                }
            };
            let info = created.cli(ctx)?;
            if ctx.json() {
                out.json_pretty(&sub_json(&info))?;
            } else {
                out.line(format!(
                    "created {} subscription {} on {} (from {from}, lag {})",
                    mode_name(info.mode),
                    info.name,
                    info.topic,
                    info.total_lag
                ))?;
            }
        }
        SubCommand::List { topic } => {
            let mut subs = admin.list_subscriptions(topic).await.cli(ctx)?;
            subs.sort_by(|a, b| (&a.topic, &a.name).cmp(&(&b.topic, &b.name)));
            if ctx.json() {
                out.json_pretty(&subs.iter().map(sub_json).collect::<Vec<_>>())?;
            } else if subs.is_empty() {
                out.line("no subscriptions")?;
            } else {
                let mut table = output::table(["TOPIC", "SUBSCRIPTION", "MODE", "MEMBERS", "LAG"]);
                for s in &subs {
                    table.add_row(vec![
                        s.topic.clone(),
                        s.name.clone(),
                        mode_name(s.mode).to_string(),
                        s.members.len().to_string(),
                        s.total_lag.to_string(),
                    ]);
                }
                output::print_table(&mut out, &table)?;
            }
        }
        SubCommand::Describe { topic, name } => {
            let info = admin.describe_subscription(topic, name).await.cli(ctx)?;
            if ctx.json() {
                out.json_pretty(&sub_json(&info))?;
            } else {
                describe_table(&mut out, &info)?;
            }
        }
        SubCommand::Seek {
            topic,
            name,
            to,
            partition,
        } => {
            let info = admin
                .seek_subscription(topic, name, to.0, partition)
                .await
                .cli(ctx)?;
            if ctx.json() {
                out.json_pretty(&sub_json(&info))?;
            } else {
                let scope =
                    partition.map_or("every partition".to_string(), |p| format!("partition {p}"));
                out.line(format!(
                    "moved {}/{} to {to} on {scope} (lag now {})",
                    info.topic, info.name, info.total_lag
                ))?;
            }
        }
        SubCommand::Delete { topic, name } => {
            admin
                .delete_subscription(topic.clone(), name.clone())
                .await
                .cli(ctx)?;
            if ctx.json() {
                out.json_pretty(&json!({ "deleted": { "topic": topic, "subscription": name } }))?;
            } else {
                out.line(format!("deleted subscription {topic}/{name}"))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn describe_table(out: &mut Stdout, info: &SubscriptionInfo) -> std::io::Result<()> {
    let props = output::properties([
        ("Topic", info.topic.clone()),
        ("Subscription", info.name.clone()),
        ("Mode", mode_name(info.mode).to_string()),
        ("Created", rfc3339(info.created_at_ms)),
        ("Members", info.members.len().to_string()),
        ("Lag", info.total_lag.to_string()),
    ]);
    output::print_table(out, &props)?;
    if let Some(q) = &info.queue {
        let stats = info.queue_stats.unwrap_or_default();
        let queue = output::properties([
            (
                "Ack deadline",
                q.ack_deadline
                    .map_or("default".into(), |d| human_millis(d.as_millis() as u64)),
            ),
            (
                "Max deliveries",
                q.max_deliveries.map_or("default".into(), |n| n.to_string()),
            ),
            (
                "Dead letters to",
                q.dead_letter_topic
                    .clone()
                    .unwrap_or_else(|| format!("{}.dlq", info.topic)),
            ),
            ("In flight", stats.in_flight.to_string()),
            ("Redeliveries", stats.redeliveries.to_string()),
            ("Dead-lettered", stats.dead_lettered.to_string()),
            ("Expired", stats.expired.to_string()),
        ]);
        output::print_table(out, &queue)?;
    }
    out.line("")?;
    let mut cursors = output::table(["PARTITION", "COMMITTED", "HIGH WATERMARK", "LAG"]);
    for c in &info.cursors {
        cursors.add_row(vec![
            c.partition.to_string(),
            c.committed_offset.to_string(),
            c.high_watermark.to_string(),
            c.lag.to_string(),
        ]);
    }
    output::print_table(out, &cursors)?;
    if !info.members.is_empty() {
        out.line("")?;
        let mut members = output::table(["MEMBER", "CONSUMER", "PARTITIONS"]);
        for m in &info.members {
            let partitions: Vec<String> = m.partitions.iter().map(u32::to_string).collect();
            members.add_row(vec![
                m.member_id.clone(),
                m.consumer_name.clone(),
                partitions.join(","),
            ]);
        }
        output::print_table(out, &members)?;
    }
    Ok(())
}

/// The JSON shape of a subscription (stable for scripts).
pub fn sub_json(s: &SubscriptionInfo) -> serde_json::Value {
    json!({
        "topic": s.topic,
        "name": s.name,
        "mode": mode_name(s.mode),
        "created_at_ms": s.created_at_ms,
        "total_lag": s.total_lag,
        "cursors": s.cursors.iter().map(|c| json!({
            "partition": c.partition,
            "committed_offset": c.committed_offset,
            "high_watermark": c.high_watermark,
            "lag": c.lag,
        })).collect::<Vec<_>>(),
        "members": s.members.iter().map(|m| json!({
            "member_id": m.member_id,
            "consumer_name": m.consumer_name,
            "partitions": m.partitions,
        })).collect::<Vec<_>>(),
        "queue": s.queue.as_ref().map(|q| json!({
            "ack_deadline_ms": q.ack_deadline.map(|d| d.as_millis() as u64),
            "max_deliveries": q.max_deliveries,
            "dead_letter_topic": q.dead_letter_topic,
        })),
        "queue_stats": s.queue_stats.map(|q| json!({
            "in_flight": q.in_flight,
            "redeliveries": q.redeliveries,
            "dead_lettered": q.dead_lettered,
            "expired": q.expired,
        })),
    })
}
