//! `rapidmq token`: API tokens. `generate` makes a fresh `rmq_<id>_<secret>` token locally
//! (nothing is sent anywhere), e.g. for `RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN` (docs/security.md).

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Print a fresh random token, made on this machine (for RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN).
    #[command(after_help = "Examples:\n  \
        export RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN=$(rapidmq token generate)\n  \
        rapidmq serve --auth\n  \
        curl -H \"authorization: Bearer $RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN\" localhost:7421/v1/topics")]
    Generate,
}

pub fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Generate => {
            let token = rapidmq_broker::auth::Token::generate()?;
            println!("{token}");
            Ok(())
        }
    }
}
