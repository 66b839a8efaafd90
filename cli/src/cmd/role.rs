//! `rapidmq role`: roles of the caller's tenant and their bindings to users, on a broker with
//! authentication on (docs/security.md). Permissions are given and shown in their one-line text
//! form (`allow publish,describe topic:orders.*`), which the client core parses.

use serde_json::json;

use super::{Ctx, SdkResult};
use crate::output::{self, Stdout};

#[derive(Debug, clap::Subcommand)]
pub enum RoleCommand {
    /// List the built-in and custom roles of your tenant with their permissions.
    #[command(visible_alias = "list")]
    Ls,
    /// Create a custom role from one or more permissions.
    #[command(after_help = "Examples:\n  \
        rapidmq role create orders-writer --permission 'allow publish,describe topic:orders.*'\n  \
        rapidmq role create auditor --permission 'allow describe tenant' \\\n      \
        --permission 'allow consume,describe topic:*' \\\n      \
        --permission 'deny consume subscription:*/payroll-*'\n\n\
        A permission is `allow|deny ACTIONS RESOURCE`: actions are publish, consume, create,\n\
        delete, alter, describe, admin (comma-separated) or all; the resource is\n\
        topic:PATTERN, subscription:TOPIC/SUB, tenant or cluster. A pattern without wildcards\n\
        is literal, one trailing * makes it a prefix, otherwise * and ? are globs.")]
    Create {
        name: String,
        /// A permission in its text form; repeat for more.
        #[arg(
            long = "permission",
            short = 'p',
            value_name = "PERMISSION",
            required = true
        )]
        permissions: Vec<String>,
    },
    /// Delete a custom role and its bindings.
    #[command(visible_alias = "delete")]
    Rm { name: String },
    /// Bind a role to a user (binding twice is not an error).
    #[command(after_help = "Examples:\n  \
        rapidmq role bind ci-bot producer\n  \
        rapidmq role bind ops admin --cluster   # a cluster admin (needs one to run it)")]
    Bind {
        user: String,
        role: String,
        /// Across the broker instead of in your tenant (only a cluster admin may).
        #[arg(long)]
        cluster: bool,
    },
    /// Remove a role from a user.
    Unbind { user: String, role: String },
    /// List the role bindings of your tenant, or of one user.
    Bindings { user: Option<String> },
}

fn scope_of(cluster: bool) -> rapidmq::BindingScope {
    if cluster {
        rapidmq::BindingScope::Cluster
    } else {
        rapidmq::BindingScope::Tenant
    }
}

pub async fn run(ctx: &Ctx, command: RoleCommand) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    let admin = ctx.connect().await?.admin();
    let mut out = Stdout::new();
    match command {
        RoleCommand::Ls => {
            let roles = admin.list_roles().await.cli(ctx)?;
            if ctx.json() {
                let roles: Vec<_> = roles.iter().map(role_json).collect();
                out.json_pretty(&json!(roles))?;
            } else {
                let mut table = output::table(["ROLE", "BUILT-IN", "PERMISSIONS"]);
                for r in &roles {
                    let permissions: Vec<String> =
                        r.permissions.iter().map(ToString::to_string).collect();
                    table.add_row(vec![
                        r.name.clone(),
                        if r.builtin { "yes" } else { "no" }.to_string(),
                        permissions.join("\n"),
                    ]);
                }
                output::print_table(&mut out, &table)?;
            }
        }
        RoleCommand::Create { name, permissions } => {
            let role = admin.create_role(&name, &permissions).await.cli(ctx)?;
            if ctx.json() {
                out.json_pretty(&role_json(&role))?;
            } else {
                out.line(format!("created role {}", role.name))?;
            }
        }
        RoleCommand::Rm { name } => {
            admin.delete_role(&name).await.cli(ctx)?;
            if !ctx.json() {
                out.line(format!("deleted role {name} and its bindings"))?;
            }
        }
        RoleCommand::Bind {
            user,
            role,
            cluster,
        } => {
            let binding = admin
                .bind_role(&user, &role, scope_of(cluster))
                .await
                .cli(ctx)?;
            if ctx.json() {
                out.json_pretty(&binding_json(&binding))?;
            } else {
                out.line(format!(
                    "bound {} to {} ({} scope)",
                    binding.role,
                    binding.user,
                    binding.scope.as_str()
                ))?;
            }
        }
        RoleCommand::Unbind { user, role } => {
            admin.unbind_role(&user, &role).await.cli(ctx)?;
            if !ctx.json() {
                out.line(format!("unbound {role} from {user}"))?;
            }
        }
        RoleCommand::Bindings { user } => {
            let bindings = admin.list_role_bindings(user).await.cli(ctx)?;
            if ctx.json() {
                let bindings: Vec<_> = bindings.iter().map(binding_json).collect();
                out.json_pretty(&json!(bindings))?;
            } else {
                let mut table = output::table(["USER", "ROLE", "SCOPE"]);
                for b in &bindings {
                    table.add_row(vec![
                        b.user.clone(),
                        b.role.clone(),
                        b.scope.as_str().to_string(),
                    ]);
                }
                output::print_table(&mut out, &table)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn role_json(role: &rapidmq::RoleInfo) -> serde_json::Value {
    let permissions: Vec<String> = role.permissions.iter().map(ToString::to_string).collect();
    json!({"name": role.name, "builtin": role.builtin, "permissions": permissions})
}

fn binding_json(binding: &rapidmq::RoleBinding) -> serde_json::Value {
    json!({"tenant": binding.tenant, "user": binding.user, "role": binding.role, "scope": binding.scope.as_str()})
}
