//! `rapidmq audit ls|export`: the audit log (docs/security.md#audit-log): failed logins,
//! denials, and every change to users, tokens, roles, bindings, tenants, quotas, topics and
//! subscriptions. Tenant admins see their tenant's records, cluster admins every record.
//!
//! `ls` prints a page at a time (every page with `--all`); `export` writes every record that
//! matches as JSON lines, to a file or stdout, with its progress on stderr.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal as _, Write};
use std::str::FromStr;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use rapidmq::{Admin, AuditEvent, AuditQuery};
use serde_json::{Value, json};

use super::{Ctx, SdkResult};
use crate::output::{self, Stdout};
use crate::parse::{HumanDuration, Position, now_ms};

/// Records one export call asks for: the broker's maximum page.
const EXPORT_PAGE: u32 = 1000;

/// Without a terminal, `export` reports its progress on stderr every this many records.
const EXPORT_REPORT_EVERY: u64 = 10_000;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// List audit records, oldest first, a page at a time.
    #[command(
        visible_alias = "list",
        after_help = "Examples:\n  \
        rapidmq audit ls --since 1h\n  \
        rapidmq audit ls --action auth. --outcome failed\n  \
        rapidmq audit ls --actor acme/alice --since 2024-05-01T00:00:00Z --all\n  \
        rapidmq audit ls --page-token <NEXT_PAGE_TOKEN>"
    )]
    Ls {
        #[command(flatten)]
        filter: AuditFilter,
        /// Page size: at most this many per page (1 to 1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Continue where a previous page ended (its next page token).
        #[arg(long, value_name = "TOKEN")]
        page_token: Option<String>,
        /// Follow the pages to the end.
        #[arg(long)]
        all: bool,
    },
    /// Write every matching audit record as JSON lines (one object per line), oldest first.
    #[command(after_help = "Examples:\n  \
        rapidmq audit export --since 7d --file audit.jsonl\n  \
        rapidmq audit export --action topic. | jq -r .target")]
    Export {
        #[command(flatten)]
        filter: AuditFilter,
        /// The file to write (replaced if it exists); stdout without it.
        #[arg(long, short = 'f', value_name = "FILE")]
        file: Option<String>,
    },
}

/// Which records: every filter is optional.
#[derive(Debug, clap::Args)]
pub struct AuditFilter {
    /// From this time on: a duration ago (1h, 7d), an RFC 3339 UTC time or @EPOCH_MS.
    #[arg(long, value_name = "WHEN")]
    since: Option<AuditTime>,
    /// Before this time (same forms as --since).
    #[arg(long, value_name = "WHEN")]
    until: Option<AuditTime>,
    /// Only this actor's records: `tenant/user`, `token:<id>` or `anonymous`.
    #[arg(long)]
    actor: Option<String>,
    /// Only actions starting with this, e.g. `auth.` or `topic.delete`.
    #[arg(long, value_name = "PREFIX")]
    action: Option<String>,
    /// Only this outcome.
    #[arg(long, value_enum)]
    outcome: Option<Outcome>,
}

impl AuditFilter {
    fn query(&self, limit: u32, page_token: Option<String>) -> AuditQuery {
        AuditQuery {
            since_ms: self.since.map(|t| t.0),
            until_ms: self.until.map(|t| t.0),
            actor: self.actor.clone(),
            action_prefix: self.action.clone(),
            outcome: self.outcome.map(|o| o.as_str().to_string()),
            limit: Some(limit),
            page_token,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Outcome {
    Ok,
    Denied,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// A point in time in ms since the epoch: a duration ago (`1h`), or anything `--from` takes as
/// a time (`2024-05-01T12:00:00Z`, `@1700000000000`, `-10m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AuditTime(u64);

impl FromStr for AuditTime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "`{s}` is not a time: use a duration ago (30m, 7d), an RFC 3339 UTC time \
                 (2024-05-01T12:00:00Z) or @EPOCH_MS"
            )
        };
        let ms = if let Ok(ago) = s.parse::<HumanDuration>() {
            now_ms().saturating_sub(ago.as_millis_u64() as i64)
        } else {
            match s.parse::<Position>().map_err(|_| bad())?.0 {
                rapidmq::StartPosition::Timestamp(ms) => ms,
                _ => return Err(bad()),
            }
        };
        Ok(AuditTime(u64::try_from(ms).unwrap_or(0)))
    }
}

pub async fn run(ctx: &Ctx, command: AuditCommand) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    let admin = ctx.connect().await?.admin();
    match command {
        AuditCommand::Ls {
            filter,
            limit,
            page_token,
            all,
        } => {
            let mut out = Stdout::new();
            list(ctx, &admin, &filter, limit, page_token, all, &mut out).await?;
            out.flush()?;
        }
        AuditCommand::Export { filter, file } => export(ctx, &admin, &filter, file).await?,
    }
    Ok(())
}

/// One page (or, with `all`, every page from `page_token` on) as a table or one JSON document.
async fn list(
    ctx: &Ctx,
    admin: &Admin,
    filter: &AuditFilter,
    limit: u32,
    mut page_token: Option<String>,
    all: bool,
    out: &mut Stdout,
) -> anyhow::Result<()> {
    let mut events = Vec::new();
    let mut listed = 0usize;
    loop {
        let page = admin
            .list_audit_events(&filter.query(limit, page_token))
            .await
            .cli(ctx)?;
        listed += page.events.len();
        page_token = page.next_page_token;
        if ctx.json() {
            events.extend(page.events.iter().map(event_json));
        } else if !page.events.is_empty() {
            // Printed page by page, so a long `--all` shows its first records at once.
            print_events(out, &page.events)?;
        }
        if !all || page_token.is_none() {
            break;
        }
    }
    if ctx.json() {
        out.json_pretty(&json!({"events": events, "next_page_token": page_token}))?;
        return Ok(());
    }
    if listed == 0 && page_token.is_none() {
        out.line("no audit records match")?;
    }
    if let Some(token) = &page_token {
        out.line(format!(
            "more: --page-token {token} for the next page (or --all)"
        ))?;
    }
    Ok(())
}

fn print_events(out: &mut Stdout, events: &[AuditEvent]) -> io::Result<()> {
    let mut table = output::table([
        "TIME", "TENANT", "ACTOR", "SOURCE", "ACTION", "TARGET", "OUTCOME", "COUNT", "DETAIL",
    ]);
    for e in events {
        table.add_row(vec![
            output::rfc3339(e.ts_ms as i64),
            e.tenant.clone(),
            e.actor.clone(),
            format!("{}/{}", e.transport, e.source_addr),
            e.action.clone(),
            e.target.clone(),
            e.outcome.clone(),
            e.count.to_string(),
            e.detail.replace(['\n', '\r', '\t'], " "),
        ]);
    }
    output::print_table(out, &table)
}

/// Every matching record as JSON lines to `file` (or stdout), page by page, so memory stays at
/// one page however long the log is. Progress goes to stderr: a counter on a terminal, a line
/// every [`EXPORT_REPORT_EVERY`] records otherwise, and the total at the end for a file.
async fn export(
    ctx: &Ctx,
    admin: &Admin,
    filter: &AuditFilter,
    file: Option<String>,
) -> anyhow::Result<()> {
    let mut sink: Box<dyn Write> = match &file {
        Some(path) => {
            Box::new(BufWriter::new(File::create(path).map_err(|err| {
                anyhow::anyhow!("cannot create `{path}`: {err}")
            })?))
        }
        None => Box::new(BufWriter::with_capacity(64 * 1024, io::stdout().lock())),
    };
    let bar = progress();
    let mut exported = 0u64;
    let mut page_token = None;
    loop {
        let page = admin
            .list_audit_events(&filter.query(EXPORT_PAGE, page_token))
            .await
            .cli(ctx)?;
        for event in &page.events {
            serde_json::to_writer(&mut sink, &event_json(event)).map_err(io::Error::other)?;
            sink.write_all(b"\n")?;
        }
        let before = exported;
        exported += page.events.len() as u64;
        bar.set_position(exported);
        if bar.is_hidden() && before / EXPORT_REPORT_EVERY != exported / EXPORT_REPORT_EVERY {
            eprintln!("exported {exported} audit records…");
        }
        page_token = page.next_page_token;
        if page_token.is_none() {
            break;
        }
    }
    sink.flush()?;
    bar.finish_and_clear();
    if let Some(path) = file {
        eprintln!("exported {exported} audit records to {path}");
    }
    Ok(())
}

/// A counter on stderr while exporting, hidden when stderr is not a terminal.
fn progress() -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {human_pos} audit records ({per_sec})")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// An audit record as the API names its fields.
fn event_json(e: &AuditEvent) -> Value {
    json!({
        "id": e.id,
        "ts_ms": e.ts_ms,
        "node": e.node,
        "tenant": e.tenant,
        "actor": e.actor,
        "source_addr": e.source_addr,
        "transport": e.transport,
        "action": e.action,
        "target": e.target,
        "outcome": e.outcome,
        "detail": e.detail,
        "count": e.count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_ago_durations_or_absolute() {
        let t = |s: &str| s.parse::<AuditTime>().map(|t| t.0);
        assert_eq!(t("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(t("@1700000000000"), Ok(1_700_000_000_000));
        let hour_ago = t("1h").unwrap();
        let now = now_ms() as u64;
        assert!(hour_ago <= now - 3_600_000 && hour_ago > now - 3_700_000);
        assert!(t("-10m").unwrap() < now);
        assert!(t("earliest").is_err());
        assert!(t("yesterday").is_err());
    }
}
