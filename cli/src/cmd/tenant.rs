//! `rapidmq tenant`: tenants, their quotas and usage (docs/security.md#tenants). Creating,
//! listing, deleting and setting quotas take a cluster admin; a tenant's own admins may `show`
//! it. A cluster admin acts inside a tenant with the global `--tenant NAME`.
//!
//! Quotas are given as flags named after the `TenantQuotas` fields (`--max-topics`); byte
//! quotas take sizes (`10MiB`, `1GB`), and every quota takes `unlimited` (stored as 0).

use std::str::FromStr;

use rapidmq::{TenantInfo, TenantQuotas};
use serde_json::{Map, Value, json};

use super::{Ctx, SdkResult};
use crate::output::{self, Stdout};
use crate::parse::ByteSize;

#[derive(Debug, clap::Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; quotas not given take the broker's defaults (`[quota_defaults]`).
    #[command(after_help = "Examples:\n  \
        rapidmq tenant create acme\n  \
        rapidmq tenant create acme --publish-bytes-per-sec 5MiB --storage-bytes 10GiB \\\n      \
        --max-topics 50 --max-connections unlimited\n  \
        rapidmq --tenant acme user create alice --role admin   # acme/alice, acme's admin")]
    Create {
        name: String,
        #[command(flatten)]
        quotas: QuotaArgs,
    },
    /// List the tenants with their usage.
    #[command(visible_alias = "list")]
    Ls,
    /// Show a tenant's quotas in effect next to its usage (your own tenant without NAME).
    #[command(visible_alias = "describe")]
    Show { name: Option<String> },
    /// Delete a tenant that has no topics and no users left.
    #[command(visible_alias = "delete")]
    Rm { name: String },
    /// Change quotas.
    #[command(subcommand)]
    Quota(QuotaCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum QuotaCommand {
    /// Change some of a tenant's quotas: the flags given replace, `--reset` names go back to
    /// the broker's defaults, the rest stay as they are.
    #[command(after_help = "Examples:\n  \
        rapidmq tenant quota set acme --publish-msgs-per-sec 10000 --storage-bytes 20GiB\n  \
        rapidmq tenant quota set acme --max-topics unlimited\n  \
        rapidmq tenant quota set acme --reset storage-bytes,max-topics")]
    Set {
        name: String,
        #[command(flatten)]
        quotas: QuotaArgs,
        /// Quotas that go back to the broker's defaults (comma-separated or repeated).
        #[arg(
            long,
            value_name = "QUOTA",
            value_delimiter = ',',
            value_parser = quota_names(),
        )]
        reset: Vec<String>,
    },
}

/// The quota names as flags spell them, in `TenantQuotas::NAMES` order.
const QUOTA_FLAGS: [&str; 7] = [
    "publish-bytes-per-sec",
    "publish-msgs-per-sec",
    "consume-bytes-per-sec",
    "storage-bytes",
    "max-topics",
    "max-partitions",
    "max-connections",
];

/// `--reset` values: the flag spellings, and (hidden) the API's with `_`.
fn quota_names() -> clap::builder::PossibleValuesParser {
    let names = QUOTA_FLAGS.into_iter().zip(TenantQuotas::NAMES);
    clap::builder::PossibleValuesParser::new(
        names.map(|(flag, name)| clap::builder::PossibleValue::new(flag).alias(name)),
    )
}

/// One flag per quota; `unlimited` (or 0) lifts it.
#[derive(Debug, Default, clap::Args)]
pub struct QuotaArgs {
    /// Published bytes per second, per broker node (e.g. 5MiB).
    #[arg(long, value_name = "SIZE")]
    publish_bytes_per_sec: Option<Limit<ByteSize>>,
    /// Published messages per second, per broker node.
    #[arg(long, value_name = "N")]
    publish_msgs_per_sec: Option<Limit<u64>>,
    /// Consumed bytes per second, per broker node (e.g. 20MiB).
    #[arg(long, value_name = "SIZE")]
    consume_bytes_per_sec: Option<Limit<ByteSize>>,
    /// Bytes stored in the tenant's partitions (e.g. 10GiB).
    #[arg(long, value_name = "SIZE")]
    storage_bytes: Option<Limit<ByteSize>>,
    /// Topics.
    #[arg(long, value_name = "N")]
    max_topics: Option<Limit<u64>>,
    /// Partitions over all topics.
    #[arg(long, value_name = "N")]
    max_partitions: Option<Limit<u64>>,
    /// Open client connections.
    #[arg(long, value_name = "N")]
    max_connections: Option<Limit<u64>>,
}

impl QuotaArgs {
    fn quotas(&self) -> TenantQuotas {
        TenantQuotas {
            publish_bytes_per_sec: self.publish_bytes_per_sec.map(Limit::value),
            publish_msgs_per_sec: self.publish_msgs_per_sec.map(Limit::value),
            consume_bytes_per_sec: self.consume_bytes_per_sec.map(Limit::value),
            storage_bytes: self.storage_bytes.map(Limit::value),
            max_topics: self.max_topics.map(Limit::value),
            max_partitions: self.max_partitions.map(Limit::value),
            max_connections: self.max_connections.map(Limit::value),
        }
    }
}

/// A quota value: `unlimited` (0), or a size or count as `T` parses it.
#[derive(Debug, Clone, Copy)]
struct Limit<T>(T);

/// What a quota flag holds: a size (`10MiB`) or a count.
trait QuotaValue: Sized + Copy {
    const UNLIMITED: Self;
    fn parse(s: &str) -> Result<Self, String>;
    fn value(self) -> u64;
}

impl QuotaValue for ByteSize {
    const UNLIMITED: Self = ByteSize(0);
    fn parse(s: &str) -> Result<Self, String> {
        s.parse()
    }
    fn value(self) -> u64 {
        self.0
    }
}

impl QuotaValue for u64 {
    const UNLIMITED: Self = 0;
    fn parse(s: &str) -> Result<Self, String> {
        s.trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a count: a whole number, or unlimited"))
    }
    fn value(self) -> u64 {
        self
    }
}

impl<T: QuotaValue> FromStr for Limit<T> {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("unlimited") {
            return Ok(Limit(T::UNLIMITED));
        }
        T::parse(s).map(Limit)
    }
}

impl<T: QuotaValue> Limit<T> {
    fn value(self) -> u64 {
        self.0.value()
    }
}

pub async fn run(ctx: &Ctx, command: TenantCommand) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    let admin = ctx.connect().await?.admin();
    let mut out = Stdout::new();
    match command {
        TenantCommand::Create { name, quotas } => {
            let tenant = admin
                .create_tenant(&name, &quotas.quotas())
                .await
                .cli(ctx)?;
            if ctx.json() {
                out.json_pretty(&tenant_json(&tenant))?;
            } else {
                out.line(format!("created tenant {}", tenant.name))?;
            }
        }
        TenantCommand::Ls => {
            let tenants = admin.list_tenants().await.cli(ctx)?;
            if ctx.json() {
                let tenants: Vec<_> = tenants.iter().map(tenant_json).collect();
                out.json_pretty(&json!(tenants))?;
            } else {
                let mut table = output::table([
                    "TENANT",
                    "TOPICS",
                    "PARTITIONS",
                    "STORAGE",
                    "CONNECTIONS",
                    "USERS",
                    "CREATED",
                ]);
                for t in &tenants {
                    let u = &t.usage;
                    table.add_row(vec![
                        t.name.clone(),
                        u.topics.to_string(),
                        u.partitions.to_string(),
                        output::human_bytes(u.storage_bytes),
                        u.connections.to_string(),
                        u.users.to_string(),
                        created(t),
                    ]);
                }
                output::print_table(&mut out, &table)?;
            }
        }
        TenantCommand::Show { name } => {
            let tenant = admin.describe_tenant(name).await.cli(ctx)?;
            if ctx.json() {
                out.json_pretty(&tenant_json(&tenant))?;
            } else {
                print_tenant(&mut out, &tenant)?;
            }
        }
        TenantCommand::Rm { name } => {
            admin.delete_tenant(&name).await.cli(ctx)?;
            if !ctx.json() {
                out.line(format!("deleted tenant {name}"))?;
            }
        }
        TenantCommand::Quota(QuotaCommand::Set {
            name,
            quotas,
            reset,
        }) => {
            let quotas = quotas.quotas();
            let reset: Vec<String> = reset.iter().map(|r| r.replace('-', "_")).collect();
            if let Some(both) = quotas
                .iter()
                .find(|(name, value)| value.is_some() && reset.iter().any(|r| r == name))
            {
                anyhow::bail!(
                    "--{} is both set and reset: give one",
                    both.0.replace('_', "-")
                );
            }
            if quotas == TenantQuotas::default() && reset.is_empty() {
                anyhow::bail!(
                    "nothing to change: give a quota flag (e.g. --max-topics 10) or --reset QUOTA"
                );
            }
            let tenant = admin
                .set_tenant_quotas(&name, &quotas, &reset)
                .await
                .cli(ctx)?;
            if ctx.json() {
                out.json_pretty(&tenant_json(&tenant))?;
            } else {
                print_tenant(&mut out, &tenant)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// When the tenant was created; `-` for `default`, which always existed.
fn created(tenant: &TenantInfo) -> String {
    if tenant.created_at_ms == 0 {
        "-".into()
    } else {
        output::rfc3339(tenant.created_at_ms as i64)
    }
}

/// The tenant's name, then each quota in effect next to what the tenant uses of it.
fn print_tenant(out: &mut Stdout, tenant: &TenantInfo) -> std::io::Result<()> {
    let header = output::properties([
        ("tenant", tenant.name.clone()),
        ("created", created(tenant)),
        ("users", tenant.usage.users.to_string()),
    ]);
    output::print_table(out, &header)?;
    out.line("")?;
    let (q, u) = (&tenant.quotas, &tenant.usage);
    let bytes_rate = |v| format!("{}/s", output::human_bytes(v));
    let count = |v: u64| v.to_string();
    let rows = [
        (
            "publish_bytes_per_sec",
            limit(q.publish_bytes_per_sec, bytes_rate),
            None,
        ),
        (
            "publish_msgs_per_sec",
            limit(q.publish_msgs_per_sec, |v| format!("{v}/s")),
            None,
        ),
        (
            "consume_bytes_per_sec",
            limit(q.consume_bytes_per_sec, bytes_rate),
            None,
        ),
        (
            "storage_bytes",
            limit(q.storage_bytes, output::human_bytes),
            Some(output::human_bytes(u.storage_bytes)),
        ),
        (
            "max_topics",
            limit(q.max_topics, count),
            Some(count(u.topics)),
        ),
        (
            "max_partitions",
            limit(q.max_partitions, count),
            Some(count(u.partitions)),
        ),
        (
            "max_connections",
            limit(q.max_connections, count),
            Some(count(u.connections)),
        ),
    ];
    let mut table = output::table(["QUOTA", "LIMIT", "USAGE"]);
    for (name, limit, usage) in rows {
        table.add_row(vec![
            name.to_string(),
            limit,
            usage.unwrap_or_else(|| "-".into()),
        ]);
    }
    output::print_table(out, &table)
}

/// A quota for people: `unlimited` for 0, `-` when the broker did not say.
fn limit(value: Option<u64>, show: impl Fn(u64) -> String) -> String {
    match value {
        None => "-".into(),
        Some(0) => "unlimited".into(),
        Some(v) => show(v),
    }
}

/// `{"name", "created_at_ms", "quotas": {QUOTA: N (0 = unlimited)}, "usage": {…}}`.
fn tenant_json(tenant: &TenantInfo) -> Value {
    let quotas: Map<String, Value> = tenant
        .quotas
        .iter()
        .map(|(name, value)| (name.to_string(), json!(value)))
        .collect();
    let u = &tenant.usage;
    json!({
        "name": tenant.name,
        "created_at_ms": tenant.created_at_ms,
        "quotas": quotas,
        "usage": {
            "topics": u.topics,
            "partitions": u.partitions,
            "storage_bytes": u.storage_bytes,
            "connections": u.connections,
            "users": u.users,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_flags_take_sizes_counts_and_unlimited() {
        let size = |s: &str| s.parse::<Limit<ByteSize>>().map(Limit::value);
        let count = |s: &str| s.parse::<Limit<u64>>().map(Limit::value);
        assert_eq!(size("5MiB"), Ok(5 << 20));
        assert_eq!(size("1GB"), Ok(1_000_000_000));
        assert_eq!(size("unlimited"), Ok(0));
        assert_eq!(count("Unlimited"), Ok(0));
        assert_eq!(count("50"), Ok(50));
        assert!(count("5MiB").is_err());
        assert!(size("lots").is_err());
    }

    #[test]
    fn the_flag_names_are_the_quota_names() {
        let flags: Vec<String> = QUOTA_FLAGS.iter().map(|f| f.replace('-', "_")).collect();
        assert_eq!(flags, TenantQuotas::NAMES);
    }
}
