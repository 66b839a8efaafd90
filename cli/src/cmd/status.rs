//! `rapidmq status`: what the broker says about itself.

use serde_json::json;

use super::{Ctx, SdkResult};
use crate::output::{self, Stdout, human_millis};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  rapidmq status\n  rapidmq status --output json\n  \
    rapidmq --server 10.0.0.5:7420 status"
)]
pub struct StatusArgs {}

pub async fn run(ctx: &Ctx, _args: StatusArgs) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    let client = ctx.connect().await?;
    let status = client.admin().status().await.cli(ctx)?;
    let mut out = Stdout::new();
    if ctx.json() {
        out.json_pretty(&json!({
            "server": ctx.server,
            "version": status.version,
            "node_id": status.node_id,
            "uptime_ms": status.uptime_ms,
            "topics": status.topics,
            "subscriptions": status.subscriptions,
            "cluster": null,
        }))?;
    } else {
        let table = output::properties([
            ("Server", ctx.server.clone()),
            ("Version", status.version),
            ("Node", status.node_id),
            ("Uptime", human_millis(status.uptime_ms)),
            ("Topics", status.topics.to_string()),
            ("Subscriptions", status.subscriptions.to_string()),
            ("Cluster", "single node".to_string()),
        ]);
        output::print_table(&mut out, &table)?;
    }
    out.flush()?;
    Ok(())
}
