//! `rapidmq user`: users of the caller's tenant on a broker with authentication on
//! (docs/security.md). Passwords are read from `RAPIDMQ_PASSWORD` or, with `--password-stdin`,
//! from the first line of stdin: never from a flag, which `ps` would show.

use std::io::BufRead as _;

use serde_json::json;

use super::{Ctx, SdkResult};
use crate::output::{self, Stdout};

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user (with a password from RAPIDMQ_PASSWORD or --password-stdin, or none),
    /// optionally bound to roles.
    #[command(after_help = "Examples:\n  \
        RAPIDMQ_PASSWORD=… rapidmq user create alice --role consumer\n  \
        rapidmq user create ci-bot --role producer   # tokens only: rapidmq token create --user ci-bot")]
    Create {
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// A role to bind in your tenant once the user exists; repeat for more.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// List the users of your tenant.
    #[command(visible_alias = "list")]
    Ls,
    /// Delete a user, revoke its tokens and remove its role bindings.
    #[command(visible_alias = "delete")]
    Rm { name: String },
    /// Set a user's password (from RAPIDMQ_PASSWORD or --password-stdin).
    Passwd {
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of stdin.
    #[arg(long)]
    password_stdin: bool,
}

impl PasswordArgs {
    /// The password from stdin or `RAPIDMQ_PASSWORD`; `None` when neither gives one.
    fn read(&self) -> anyhow::Result<Option<String>> {
        if self.password_stdin {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']).to_string();
            anyhow::ensure!(!password.is_empty(), "the password on stdin is empty");
            return Ok(Some(password));
        }
        Ok(std::env::var("RAPIDMQ_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty()))
    }
}

pub async fn run(ctx: &Ctx, command: UserCommand) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    let admin = ctx.connect().await?.admin();
    let mut out = Stdout::new();
    match command {
        UserCommand::Create {
            name,
            password,
            roles,
        } => {
            let user = admin.create_user(&name, password.read()?).await.cli(ctx)?;
            for role in &roles {
                admin
                    .bind_role(&name, role, rapidmq::BindingScope::Tenant)
                    .await
                    .cli(ctx)
                    .map_err(|err| {
                        err.context(format!(
                            "created user {name} but could not bind role {role}"
                        ))
                    })?;
            }
            if ctx.json() {
                out.json_pretty(&json!({"tenant": user.tenant, "name": user.name, "has_password": user.has_password, "roles": roles}))?;
            } else if roles.is_empty() {
                out.line(format!("created user {}", user.name))?;
            } else {
                out.line(format!(
                    "created user {} with roles {}",
                    user.name,
                    roles.join(", ")
                ))?;
            }
        }
        UserCommand::Ls => {
            let users = admin.list_users().await.cli(ctx)?;
            if ctx.json() {
                let users: Vec<_> = users
                    .iter()
                    .map(|u| json!({"tenant": u.tenant, "name": u.name, "has_password": u.has_password, "created_at_ms": u.created_at_ms}))
                    .collect();
                out.json_pretty(&json!(users))?;
            } else {
                let mut table = output::table(["USER", "PASSWORD", "CREATED"]);
                for u in &users {
                    table.add_row(vec![
                        u.name.clone(),
                        if u.has_password { "yes" } else { "no" }.to_string(),
                        output::rfc3339(u.created_at_ms as i64),
                    ]);
                }
                output::print_table(&mut out, &table)?;
            }
        }
        UserCommand::Rm { name } => {
            admin.delete_user(&name).await.cli(ctx)?;
            if !ctx.json() {
                out.line(format!(
                    "deleted user {name}, revoked its tokens and removed its role bindings"
                ))?;
            }
        }
        UserCommand::Passwd { name, password } => {
            let password = password.read()?.ok_or_else(|| {
                anyhow::anyhow!(
                    "give the password in RAPIDMQ_PASSWORD or on stdin with --password-stdin"
                )
            })?;
            admin.set_password(&name, password).await.cli(ctx)?;
            if !ctx.json() {
                out.line(format!("set the password of {name}"))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
