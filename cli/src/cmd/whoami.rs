//! `rapidmq whoami`: who the broker takes the caller for (with `--token` / `RAPIDMQ_TOKEN`).

use serde_json::json;

use super::{Ctx, SdkResult};
use crate::output::Stdout;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  rapidmq --token \"$RAPIDMQ_TOKEN\" whoami\n  rapidmq whoami --output json"
)]
pub struct WhoamiArgs {}

pub async fn run(ctx: &Ctx, _args: WhoamiArgs) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    let client = ctx.connect().await?;
    let (tenant, user) = client.core().whoami().await.cli(ctx)?;
    let mut out = Stdout::new();
    if ctx.json() {
        let user = Some(user).filter(|u| !u.is_empty());
        out.json_pretty(&json!({"tenant": tenant, "user": user}))?;
    } else if user.is_empty() {
        out.line(format!("anonymous (tenant {tenant})"))?;
    } else {
        out.line(format!("{tenant}/{user}"))?;
    }
    out.flush()?;
    Ok(())
}
