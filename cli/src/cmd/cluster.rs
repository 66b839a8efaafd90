//! `rapidmq cluster status`: the cluster as the node answering sees it (metadata leader, term,
//! members); `rapidmq cluster add-node|remove-node`: the metadata group's membership;
//! `rapidmq cluster rebalance-leaders`: partition leadership back to the preferred replicas;
//! `rapidmq cluster rebalance`: partition replicas spread evenly over the nodes.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{Ctx, SdkResult};
use crate::output::{self, Stdout};
use crate::parse::HumanDuration;

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Show the metadata leader, the term and every node with its addresses and whether the
    /// answering node hears from it.
    #[command(
        after_help = "Examples:\n  rapidmq cluster status\n  rapidmq cluster status --output json"
    )]
    Status,
    /// Add a node to the metadata group, through any node: it joins as a learner, catches up
    /// (progress on stderr), then becomes a voter. Start the node first (`rapidmq serve
    /// --node-id ID --join --peers ...`, the existing nodes and itself); it waits as "not a member
    /// yet". Adding a voter again changes nothing.
    #[command(after_help = "Examples:\n  rapidmq cluster add-node 4 --cluster-addr 10.0.0.4:7400")]
    AddNode {
        /// The new node's id (its --node-id).
        id: u64,
        /// The new node's cluster listener, host:port, as the other nodes reach it.
        #[arg(long)]
        cluster_addr: String,
    },
    /// Remove a node: first every partition replica it holds moves to the other nodes (as
    /// `rebalance --exclude ID`; progress on stderr), then it leaves the metadata group. The
    /// last voter cannot be removed, nor a node whose replicas have nowhere to go (fewer other
    /// nodes than a topic's replication factor); fewer than 3 voters tolerate no failure (a
    /// warning says so). The removed node may keep running: it takes no part, and its status
    /// says "removed".
    #[command(
        after_help = "Examples:\n  rapidmq cluster remove-node 4\n  rapidmq cluster remove-node 4 --timeout 30m"
    )]
    RemoveNode {
        /// The node's id.
        id: u64,
        /// Give up waiting for the replicas to move off after this long (they go on moving;
        /// run the command again to remove the node once they moved) [default: no limit].
        #[arg(long, value_name = "DURATION")]
        timeout: Option<HumanDuration>,
    },
    /// Move partition replicas so every voting node holds an even share, and spread the
    /// preferred leaders: after nodes were added (automatic with `cluster.rebalance_on_join`),
    /// or to empty nodes (`--exclude`). Each move adds the new replicas as learners, waits until
    /// they caught up, then changes the partition's group; publishing goes on meanwhile.
    /// Waits until every move completed (progress on stderr) unless --no-wait.
    #[command(
        after_help = "Examples:\n  rapidmq cluster rebalance --dry-run\n  rapidmq cluster rebalance\n  rapidmq cluster rebalance --exclude 3"
    )]
    Rebalance {
        /// Move every replica off these nodes (comma-separated ids).
        #[arg(long, value_delimiter = ',')]
        exclude: Vec<u64>,
        /// Print the moves without making them.
        #[arg(long)]
        dry_run: bool,
        /// Return once the moves started.
        #[arg(long)]
        no_wait: bool,
        /// Give up waiting after this long; the moves go on (`rapidmq cluster status` shows
        /// how many partitions are still moving) [default: no limit].
        #[arg(long, value_name = "DURATION", conflicts_with = "no_wait")]
        timeout: Option<HumanDuration>,
    },
    /// Hand each partition's leadership back to its preferred replica (its first), on every
    /// node, where that replica is caught up and reachable: after a failover the surviving nodes
    /// lead the partitions of the node that was down. Nodes also do this on their own every
    /// `cluster.leader_rebalance_interval_ms`. Prints how many transfers started; each
    /// completes within about an election timeout (`topic describe` shows the leaders).
    #[command(after_help = "Examples:\n  rapidmq cluster rebalance-leaders")]
    RebalanceLeaders,
}

/// How long `add-node` waits for the broker: its catch-up (60 s on the leader) and the two
/// membership entries.
const ADD_TIMEOUT: Duration = Duration::from_secs(100);

pub async fn run(ctx: &Ctx, command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Status => status(ctx).await,
        ClusterCommand::AddNode { id, cluster_addr } => add_node(ctx, id, &cluster_addr).await,
        ClusterCommand::RemoveNode { id, timeout } => {
            remove_node(ctx, id, timeout.map(|t| t.0)).await
        }
        ClusterCommand::RebalanceLeaders => rebalance_leaders(ctx).await,
        ClusterCommand::Rebalance {
            exclude,
            dry_run,
            no_wait,
            timeout,
        } => {
            let wait = (!no_wait).then_some(timeout.map(|t| t.0));
            rebalance(ctx, &exclude, dry_run, wait).await
        }
    }
}

/// `wait`: `None` returns once the moves started; `Some(limit)` waits until they completed, for
/// at most `limit` when there is one.
async fn rebalance(
    ctx: &Ctx,
    exclude: &[u64],
    dry_run: bool,
    wait: Option<Option<Duration>>,
) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    let client = ctx.connect().await?;
    let moves = client
        .admin()
        .rebalance_replicas(exclude, dry_run)
        .await
        .cli(ctx)?;
    if let (false, Some(limit)) = (dry_run, wait) {
        wait_for_moves(ctx, &client, limit).await?;
    }
    let mut out = Stdout::new();
    if ctx.json() {
        let listed: Vec<_> = moves
            .iter()
            .map(|m| {
                json!({
                    "tenant": m.tenant,
                    "topic": m.topic,
                    "partition": m.partition,
                    "from": m.from,
                    "to": m.to,
                })
            })
            .collect();
        out.json_pretty(&json!({ "moves": listed, "dry_run": dry_run }))?;
    } else if moves.is_empty() {
        out.line("Nothing to move: every node holds an even share.")?;
    } else {
        let mut table = output::table(["TENANT", "TOPIC", "PARTITION", "FROM", "TO"]);
        let ids = |ids: &[u64]| ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        for m in &moves {
            table.add_row(vec![
                m.tenant.clone(),
                m.topic.clone(),
                m.partition.to_string(),
                ids(&m.from),
                ids(&m.to),
            ]);
        }
        output::print_table(&mut out, &table)?;
        let done = match (dry_run, wait) {
            (true, _) => "planned, not started (--dry-run)",
            (false, None) => "started (`rapidmq cluster status` shows those still moving)",
            (false, Some(_)) => "done",
        };
        out.line(format!("{} moves {done}.", moves.len()))?;
    }
    out.flush()?;
    Ok(())
}

/// Waits until no partition is moving, printing progress to stderr every few seconds; fails once
/// `limit` passed with partitions still moving (they go on).
async fn wait_for_moves(
    ctx: &Ctx,
    client: &rapidmq::Client,
    limit: Option<Duration>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_millis(500));
    let mut said = Instant::now();
    let mut at_start = None;
    loop {
        ticks.tick().await;
        let moving = client
            .admin()
            .cluster_status()
            .await
            .cli(ctx)?
            .moving_partitions;
        if moving == 0 {
            return Ok(());
        }
        let total = *at_start.get_or_insert(moving);
        if let Some(limit) = limit.filter(|limit| started.elapsed() >= *limit) {
            anyhow::bail!(
                "{moving} of {total} partitions still moving after {}s; the moves go on \
                 (`rapidmq cluster status` shows how many are left). A move waits for its new \
                 replicas to catch up: check that every node is up and reachable.",
                limit.as_secs()
            );
        }
        if said.elapsed() >= Duration::from_secs(2) {
            said = Instant::now();
            eprintln!(
                "moving replicas: {} of {total} partitions done, {moving} moving ({}s)",
                total.saturating_sub(moving),
                started.elapsed().as_secs()
            );
        }
    }
}

async fn rebalance_leaders(ctx: &Ctx) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    let client = ctx.connect().await?;
    let rebalance = client.admin().rebalance_leaders().await.cli(ctx)?;
    let mut out = Stdout::new();
    if ctx.json() {
        out.json_pretty(&json!({
            "transfers": rebalance.transfers,
            "unreachable": rebalance.unreachable,
        }))?;
    } else {
        let mut rows = vec![("Transfers", rebalance.transfers.to_string())];
        if !rebalance.unreachable.is_empty() {
            let listed = rebalance
                .unreachable
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            rows.push(("Unreachable", listed));
        }
        output::print_table(&mut out, &output::properties(rows))?;
    }
    out.flush()?;
    Ok(())
}

async fn add_node(ctx: &Ctx, id: u64, cluster_addr: &str) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    let client = ctx.connect_waiting(ADD_TIMEOUT).await?;
    let admin = client.admin();
    let adding = admin.add_node(id, cluster_addr);
    tokio::pin!(adding);
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.tick().await;
    let changed = loop {
        tokio::select! {
            changed = &mut adding => break changed.cli(ctx)?,
            _ = ticks.tick() => {
                let seen = client.admin().cluster_status().await.ok().map(|status| {
                    let node = status.nodes.iter().find(|n| n.id == id);
                    let last = status
                        .nodes
                        .iter()
                        .find(|n| Some(n.id) == status.leader_id)
                        .and_then(|n| n.matched);
                    Seen {
                        role: node.map(|n| n.role.clone()),
                        matched: node.and_then(|n| n.matched),
                        last,
                    }
                });
                eprintln!("{}", catch_up_line(id, seen, started.elapsed()));
            }
        }
    };
    print_change(
        ctx,
        &changed.voters,
        &changed.note,
        &format!("node {id} is a voter"),
    )
}

/// What the answering node's status says of the node being added.
struct Seen {
    role: Option<String>,
    matched: Option<u64>,
    /// The leader's last log index (known when the answering node leads).
    last: Option<u64>,
}

/// One progress line of `add-node`: the node's role and, on the leader, how far it caught up.
fn catch_up_line(id: u64, seen: Option<Seen>, waited: Duration) -> String {
    let secs = waited.as_secs();
    let Some(seen) = seen else {
        return format!("adding node {id}… ({secs}s)");
    };
    match (seen.role, seen.matched, seen.last) {
        (Some(role), Some(matched), Some(last)) => {
            format!("node {id}: {role}, caught up to index {matched} of {last} ({secs}s)")
        }
        (Some(role), _, _) => format!("node {id}: {role}, catching up… ({secs}s)"),
        (None, _, _) => format!("adding node {id}: not a member yet… ({secs}s)"),
    }
}

async fn remove_node(ctx: &Ctx, id: u64, timeout: Option<Duration>) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    let client = ctx.connect().await?;
    let voter = client
        .admin()
        .cluster_status()
        .await
        .cli(ctx)?
        .nodes
        .iter()
        .any(|n| n.id == id && n.role == "voter");
    if voter {
        let moves = client
            .admin()
            .rebalance_replicas(&[id], false)
            .await
            .cli(ctx)?;
        if !moves.is_empty() {
            eprintln!(
                "moving the replicas of {} partitions off node {id}",
                moves.len()
            );
        }
        wait_for_moves(ctx, &client, timeout).await?;
    }
    let changed = client.admin().remove_node(id).await.cli(ctx)?;
    print_change(
        ctx,
        &changed.voters,
        &changed.note,
        &format!("node {id} removed"),
    )
}

fn print_change(ctx: &Ctx, voters: &[u64], note: &str, done: &str) -> anyhow::Result<()> {
    let mut out = Stdout::new();
    let listed = voters
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if ctx.json() {
        out.json_pretty(&json!({
            "voters": voters,
            "note": (!note.is_empty()).then_some(note),
        }))?;
    } else {
        let mut rows = vec![("Done", done.to_string()), ("Voters", listed)];
        if !note.is_empty() {
            rows.push(("Note", note.to_string()));
        }
        output::print_table(&mut out, &output::properties(rows))?;
    }
    out.flush()?;
    Ok(())
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
                    "role": n.role,
                    "matched": n.matched,
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
            "membership": (!single).then_some(&status.membership),
            "moving_partitions": status.moving_partitions,
            "cluster_id": (!status.cluster_id.is_empty()).then_some(&status.cluster_id),
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
        let or_unknown = |id: &str| match id {
            "" => "not known yet (a joining node learns it from the cluster)".to_string(),
            id => id.to_string(),
        };
        let summary = output::properties([
            ("Server", ctx.server.clone()),
            ("Mode", status.mode.clone()),
            ("Node", status.node_id.to_string()),
            ("Leader", or_dash(status.leader_id)),
            ("Term", status.term.to_string()),
            ("Applied", or_dash(status.last_applied)),
            ("Membership", status.membership.clone()),
            ("Moving", format!("{} partitions", status.moving_partitions)),
            ("Cluster id", or_unknown(&status.cluster_id)),
        ]);
        output::print_table(&mut out, &summary)?;
        let mut table = output::table(["NODE", "ROLE", "CLUSTER", "GRPC", "HTTP", "REACHABLE"]);
        for n in &status.nodes {
            let role = if Some(n.id) == status.leader_id {
                "leader"
            } else if n.role == "learner" {
                "learner"
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
