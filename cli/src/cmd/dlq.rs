//! `rapidmq dlq list|replay`: dead letters of queue subscriptions.
//!
//! A message that exhausts `max_deliveries` on a queue subscription moves to the dead-letter
//! topic (`<topic>.dlq` by default) with `rapidmq-dlq-*` headers saying why. `list` shows the
//! letters not yet replayed, a page at a time (or every page with `--all`); `replay` publishes
//! them back to the topics they came from, calling the broker (which replays a bounded number
//! per call) until nothing is pending or `--max` are replayed.

use std::io;

use rapidmq::{Admin, DeadLetter};
use serde_json::{Value, json};

use super::{Ctx, SdkResult};
use crate::output::{self, Stdout};

/// Letters one replay call asks for: the broker's default, so a long run reports progress
/// every thousand.
const REPLAY_PER_CALL: u64 = 1000;

#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// List the dead letters of a topic (messages that exhausted their deliveries), a page at
    /// a time.
    #[command(after_help = "Examples:\n  rapidmq dlq list orders\n  \
        rapidmq dlq list orders --max 10 --output json\n  \
        rapidmq dlq list orders --page-token <NEXT_PAGE_TOKEN>\n  \
        rapidmq dlq list orders --all\n  \
        rapidmq dlq list --dead-letter-topic orders-failed")]
    List {
        #[command(flatten)]
        target: DlqTarget,
        /// Page size: at most this many per page (1 to 1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        max: u32,
        /// Continue where a previous page ended (its next page token).
        #[arg(long, value_name = "TOKEN")]
        page_token: Option<String>,
        /// Follow the pages to the end (from --page-token, or the start).
        #[arg(long)]
        all: bool,
    },
    /// Publish dead letters back to the topic they came from (without the dlq headers).
    #[command(after_help = "Examples:\n  rapidmq dlq replay orders\n  \
        rapidmq dlq replay orders --max 1")]
    Replay {
        #[command(flatten)]
        target: DlqTarget,
        /// At most this many in total [default: all pending when the replay starts].
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        max: Option<u64>,
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
        DlqCommand::List {
            target,
            max,
            page_token,
            all,
        } => {
            let dlq = target.name();
            if all {
                list_all(ctx, &admin, &dlq, max, page_token, &mut out).await?;
            } else {
                list_page(ctx, &admin, &dlq, max, page_token, &mut out).await?;
            }
        }
        DlqCommand::Replay { target, max } => {
            let dlq = target.name();
            let (replayed, remaining) = replay(ctx, &admin, &dlq, max).await?;
            if ctx.json() {
                out.json_pretty(&json!({
                    "dead_letter_topic": dlq,
                    "replayed": replayed,
                    "remaining": remaining,
                }))?;
            } else if remaining > 0 {
                out.line(format!(
                    "replayed {replayed} dead letter(s) from {dlq}; {remaining} still pending"
                ))?;
            } else {
                out.line(format!("replayed {replayed} dead letter(s) from {dlq}"))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// One page, with the token of the next one.
async fn list_page(
    ctx: &Ctx,
    admin: &Admin,
    dlq: &str,
    max: u32,
    page_token: Option<String>,
    out: &mut Stdout,
) -> anyhow::Result<()> {
    let page = admin
        .list_dead_letters(dlq, max, page_token.as_deref())
        .await
        .cli(ctx)?;
    if ctx.json() {
        let letters: Vec<Value> = page.dead_letters.iter().map(letter_json).collect();
        out.json_pretty(&json!({
            "dead_letter_topic": dlq,
            "dead_letters": letters,
            "next_page_token": page.next_page_token,
        }))?;
        return Ok(());
    }
    if page.dead_letters.is_empty() && page.next_page_token.is_none() {
        out.line(format!("no pending dead letters in {dlq}"))?;
    } else {
        print_letters(out, &page.dead_letters)?;
    }
    if let Some(token) = &page.next_page_token {
        out.line(format!(
            "more: --page-token {token} for the next page (or --all)"
        ))?;
    }
    Ok(())
}

/// Every page from `page_token` on. Pages are printed as they arrive, so memory stays at one
/// page however many letters there are; the JSON document is written piece by piece.
async fn list_all(
    ctx: &Ctx,
    admin: &Admin,
    dlq: &str,
    max: u32,
    mut page_token: Option<String>,
    out: &mut Stdout,
) -> anyhow::Result<()> {
    let mut json = ctx.json().then(|| JsonList::start(out, dlq)).transpose()?;
    let mut listed = 0usize;
    loop {
        let page = admin
            .list_dead_letters(dlq, max, page_token.as_deref())
            .await
            .cli(ctx)?;
        listed += page.dead_letters.len();
        match &mut json {
            Some(list) => {
                for letter in &page.dead_letters {
                    list.push(out, &letter_json(letter))?;
                }
            }
            None if !page.dead_letters.is_empty() => print_letters(out, &page.dead_letters)?,
            None => {}
        }
        page_token = page.next_page_token;
        if page_token.is_none() {
            break;
        }
    }
    match json {
        Some(list) => list.finish(out)?,
        None if listed == 0 => out.line(format!("no pending dead letters in {dlq}"))?,
        None => {}
    }
    Ok(())
}

/// Replays until nothing is pending, or `max` are replayed; returns how many were replayed and
/// how many are still pending. Without `max` it stops after what was pending when it started,
/// so letters that fail again and come back are not replayed round and round.
async fn replay(
    ctx: &Ctx,
    admin: &Admin,
    dlq: &str,
    max: Option<u64>,
) -> anyhow::Result<(u64, u64)> {
    let mut replayed = 0u64;
    let mut limit = max;
    let mut pending = u64::MAX;
    loop {
        let ask = limit.map_or(REPLAY_PER_CALL, |l| (l - replayed).min(REPLAY_PER_CALL));
        let outcome = admin
            .replay_dead_letters(dlq, Some(ask as u32))
            .await
            .cli(ctx)?;
        replayed += u64::from(outcome.replayed);
        let limit = *limit.get_or_insert(replayed + outcome.remaining);
        // A call may replay nothing yet move the cursor past messages without dead-letter
        // headers; one that moved nothing at all ends the run rather than spinning.
        let stuck = outcome.replayed == 0 && outcome.remaining >= pending;
        pending = outcome.remaining;
        if pending == 0 || replayed >= limit || stuck {
            return Ok((replayed, pending));
        }
        eprintln!("replayed {replayed}, {pending} pending");
    }
}

fn letter_json(d: &DeadLetter) -> Value {
    json!({
        "partition": d.partition,
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
}

fn print_letters(out: &mut Stdout, letters: &[DeadLetter]) -> io::Result<()> {
    let mut table = output::table(["PARTITION", "OFFSET", "FROM", "ATTEMPTS", "REASON", "VALUE"]);
    for d in letters {
        table.add_row(vec![
            d.partition.to_string(),
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
    output::print_table(out, &table)
}

/// The `--all --output json` document, written one letter at a time: the same shape as one
/// page's, with `next_page_token` null.
struct JsonList {
    /// The letter before the current one, held back until it is known whether a comma follows.
    held: Option<String>,
}

impl JsonList {
    fn start(out: &mut Stdout, dlq: &str) -> io::Result<JsonList> {
        out.line("{")?;
        out.line(format!("  \"dead_letter_topic\": {},", json!(dlq)))?;
        out.line("  \"dead_letters\": [")?;
        Ok(JsonList { held: None })
    }

    fn push(&mut self, out: &mut Stdout, letter: &Value) -> io::Result<()> {
        if let Some(previous) = self.held.replace(format!("    {letter}")) {
            out.line(format!("{previous},"))?;
        }
        Ok(())
    }

    fn finish(self, out: &mut Stdout) -> io::Result<()> {
        if let Some(last) = self.held {
            out.line(last)?;
        }
        out.line("  ],")?;
        out.line("  \"next_page_token\": null")?;
        out.line("}")
    }
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
