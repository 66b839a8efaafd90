//! `rapidmq cluster status`: the cluster as the node answering sees it (metadata leader, term,
//! node table).

use serde_json::json;

use super::{Ctx, SdkResult};
use crate::output::{self, Stdout};

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Show the metadata leader, the term and every node with its addresses and whether the
    /// answering node hears from it.
    #[command(
        after_help = "Examples:\n  rapidmq cluster status\n  rapidmq cluster status --output json"
    )]
    Status,
}

pub async fn run(ctx: &Ctx, command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Status => status(ctx).await,
    }
}

async fn status(ctx: &Ctx) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    let client = ctx.connect().await?;
    let status = client.admin().cluster_status().await.cli(ctx)?;
    let single = status.mode == "single-node";
    let mut out = Stdout::new();
    if ctx.json() {
        let nodes: Vec<_> = status
            .nodes
            .iter()
            .map(|n| {
                json!({
                    "id": n.id,
                    "cluster_addr": n.cluster_addr,
                    "grpc_addr": n.grpc_addr,
                    "http_addr": n.http_addr,
                    "reachable": n.reachable,
                })
            })
            .collect();
        out.json_pretty(&json!({
            "server": ctx.server,
            "mode": status.mode,
            "node_id": (!single).then_some(status.node_id),
            "leader_id": status.leader_id,
            "term": status.term,
            "last_applied": status.last_applied,
            "nodes": nodes,
        }))?;
    } else if single {
        let table = output::properties([
            ("Server", ctx.server.clone()),
            ("Mode", "single node (no raft)".to_string()),
        ]);
        output::print_table(&mut out, &table)?;
    } else {
        let or_dash = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        let summary = output::properties([
            ("Server", ctx.server.clone()),
            ("Mode", status.mode.clone()),
            ("Node", status.node_id.to_string()),
            ("Leader", or_dash(status.leader_id)),
            ("Term", status.term.to_string()),
            ("Applied", or_dash(status.last_applied)),
        ]);
        output::print_table(&mut out, &summary)?;
        let mut table = output::table(["NODE", "ROLE", "CLUSTER", "GRPC", "HTTP", "REACHABLE"]);
        for n in &status.nodes {
            let role = if Some(n.id) == status.leader_id {
                "leader"
            } else {
                "follower"
            };
            let or_dash = |s: &str| {
                if s.is_empty() {
                    "-".to_string()
                } else {
                    s.to_string()
                }
            };
            table.add_row(vec![
                n.id.to_string(),
                role.to_string(),
                n.cluster_addr.clone(),
                or_dash(&n.grpc_addr),
                or_dash(&n.http_addr),
                if n.reachable { "yes" } else { "no" }.to_string(),
            ]);
        }
        output::print_table(&mut out, &table)?;
    }
    out.flush()?;
    Ok(())
}
