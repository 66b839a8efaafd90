//! `rapidmq token`: API tokens (docs/security.md). `generate` makes a fresh `rmq_<id>_<secret>`
//! token locally (nothing is sent anywhere), e.g. for `RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN`; the others
//! talk to the broker.

use serde_json::json;

use super::{Ctx, SdkResult};
use crate::output::{self, Stdout};
use crate::parse::HumanDuration;

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Print a fresh random token, made on this machine (for RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN).
    #[command(after_help = "Examples:\n  \
        export RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN=$(rapidmq token generate)\n  \
        rapidmq serve --auth\n  \
        rapidmq --token \"$RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN\" whoami")]
    Generate,
    /// Create an API token; it is printed once, the broker keeps only its hash.
    #[command(after_help = "Examples:\n  \
        rapidmq token create --user ci-bot --description ci --ttl 30d")]
    Create {
        /// The user the token acts as; yourself by default.
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// How long the token lasts (e.g. 12h, 30d); forever by default.
        #[arg(long)]
        ttl: Option<HumanDuration>,
    },
    /// List tokens (API and sessions) without their secrets.
    #[command(visible_alias = "list")]
    Ls {
        /// Only this user's tokens.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke tokens by id, at once.
    Revoke {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// `generate`, which needs no broker.
pub fn generate() -> anyhow::Result<()> {
    let token = rapidmq_broker::auth::Token::generate()?;
    let mut out = Stdout::new();
    out.line(token.to_string())?;
    Ok(out.flush()?)
}

pub async fn run(ctx: &Ctx, command: TokenCommand) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    let mut out = Stdout::new();
    match command {
        TokenCommand::Generate => return generate(),
        TokenCommand::Create {
            user,
            description,
            ttl,
        } => {
            let admin = ctx.connect().await?.admin();
            let created = admin
                .create_token(user, description, ttl.map(|ttl| ttl.0))
                .await
                .cli(ctx)?;
            if ctx.json() {
                out.json_pretty(&json!({"token": created.token, "id": created.info.id, "user": created.info.user, "expires_at_ms": created.info.expires_at_ms}))?;
            } else {
                out.line(&created.token)?;
            }
        }
        TokenCommand::Ls { user } => {
            let tokens = ctx
                .connect()
                .await?
                .admin()
                .list_tokens(user)
                .await
                .cli(ctx)?;
            if ctx.json() {
                let tokens: Vec<_> = tokens
                    .iter()
                    .map(|t| json!({"id": t.id, "user": t.user, "kind": t.kind, "description": t.description, "created_at_ms": t.created_at_ms, "expires_at_ms": t.expires_at_ms}))
                    .collect();
                out.json_pretty(&json!(tokens))?;
            } else {
                let mut table = output::table(["ID", "USER", "KIND", "DESCRIPTION", "EXPIRES"]);
                for t in &tokens {
                    table.add_row(vec![
                        t.id.clone(),
                        t.user.clone(),
                        t.kind.clone(),
                        t.description.clone(),
                        t.expires_at_ms
                            .map_or_else(|| "never".to_string(), |at| output::rfc3339(at as i64)),
                    ]);
                }
                output::print_table(&mut out, &table)?;
            }
        }
        TokenCommand::Revoke { ids } => {
            let count = ids.len();
            ctx.connect()
                .await?
                .admin()
                .revoke_tokens(ids)
                .await
                .cli(ctx)?;
            if !ctx.json() {
                out.line(format!("revoked {count} token(s)"))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
