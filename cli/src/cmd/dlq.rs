//! `rapidmq dlq list|replay`: dead letters of queue subscriptions.
//!
//! A message that exhausts `max_deliveries` on a queue subscription moves to the dead-letter
//! topic (`<topic>.dlq` by default) with `rapidmq-dlq-*` headers saying why. `list` shows the
//! letters not yet replayed; `replay` publishes them back to the topics they came from.

use serde_json::json;

use super::{Ctx, SdkResult};
use crate::output::{self, Stdout};

#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// List the dead letters of a topic (messages that exhausted their deliveries).
    #[command(after_help = "Examples:\n  rapidmq dlq list orders\n  \
        rapidmq dlq list orders --max 10 --output json\n  \
        rapidmq dlq list --dead-letter-topic orders-failed")]
    List {
        #[command(flatten)]
        target: DlqTarget,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        max: u32,
    },
    /// Publish dead letters back to the topic they came from (without the dlq headers).
    #[command(after_help = "Examples:\n  rapidmq dlq replay orders\n  \
        rapidmq dlq replay orders --max 1")]
    Replay {
        #[command(flatten)]
        target: DlqTarget,
        /// At most this many [default: all pending].
        #[arg(long)]
        max: Option<u32>,
    },
}

/// Which dead-letter topic: `<TOPIC>.dlq`, or one named outright.
#[derive(Debug, clap::Args)]
pub struct DlqTarget {
    /// The topic whose dead letters to use (its dead-letter topic is `<TOPIC>.dlq`).
    #[arg(required_unless_present = "dead_letter_topic")]
    topic: Option<String>,
    /// The dead-letter topic itself, when a subscription set its own.
    #[arg(long, value_name = "TOPIC", conflicts_with = "topic")]
    dead_letter_topic: Option<String>,
}

impl DlqTarget {
    fn name(&self) -> String {
        match (&self.dead_letter_topic, &self.topic) {
            (Some(dlq), _) => dlq.clone(),
            (None, Some(topic)) => format!("{topic}.dlq"),
            (None, None) => ".dlq".into(), // clap requires one of them
        }
    }
}

pub async fn run(ctx: &Ctx, command: DlqCommand) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    let client = ctx.connect().await?;
    let admin = client.admin();
    let mut out = Stdout::new();
    match command {
        DlqCommand::List { target, max } => {
            let dlq = target.name();
            let letters = admin.list_dead_letters(dlq.clone(), max).await.cli(ctx)?;
            if ctx.json() {
                let list: Vec<_> = letters
                    .iter()
                    .map(|d| {
                        json!({
                            "dead_letter_topic": dlq,
                            "offset": d.offset,
                            "original_topic": d.original_topic,
                            "original_partition": d.original_partition,
                            "original_offset": d.original_offset,
                            "attempts": d.attempts,
                            "reason": d.reason,
                            "key": d.message.key.as_deref().map(String::from_utf8_lossy),
                            "value": String::from_utf8_lossy(&d.message.value),
                            "headers": d.message.headers.iter().map(|(k, v)| json!({
                                "key": k,
                                "value": String::from_utf8_lossy(v),
                            })).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                out.json_pretty(&list)?;
            } else if letters.is_empty() {
                out.line(format!("no pending dead letters in {dlq}"))?;
            } else {
                let mut table = output::table(["OFFSET", "FROM", "ATTEMPTS", "REASON", "VALUE"]);
                for d in &letters {
                    table.add_row(vec![
                        d.offset.to_string(),
                        format!(
                            "{}/{}@{}",
                            d.original_topic, d.original_partition, d.original_offset
                        ),
                        d.attempts.to_string(),
                        d.reason.clone(),
                        preview(&d.message.value),
                    ]);
                }
                output::print_table(&mut out, &table)?;
            }
        }
        DlqCommand::Replay { target, max } => {
            let dlq = target.name();
            let replayed = admin.replay_dead_letters(dlq.clone(), max).await.cli(ctx)?;
            if ctx.json() {
                out.json_pretty(&json!({ "dead_letter_topic": dlq, "replayed": replayed }))?;
            } else {
                out.line(format!("replayed {replayed} dead letter(s) from {dlq}"))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The start of a value, readable in a table cell.
fn preview(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut short: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        short.push('…');
    }
    short.replace(['\n', '\r', '\t'], " ")
}
