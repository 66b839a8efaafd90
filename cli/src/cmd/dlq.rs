//! `rapidmq dlq list|replay`: dead letters of queue subscriptions.
//!
//! Dead letters come with queue mode, which this broker and the SDK do not have yet; both
//! commands are wired (flags, help, docs) and fail with a clear message until then.

use anyhow::bail;

use super::{Ctx, QUEUE_MODE_UNAVAILABLE};

#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// List the dead letters of a topic (messages that exhausted their deliveries).
    #[command(after_help = "Examples:\n  rapidmq dlq list orders\n  \
        rapidmq dlq list orders --max 10 --output json\n\n\
        Needs queue mode, which this broker does not have yet.")]
    List {
        /// The topic whose dead-letter topic (`<topic>.dlq` by default) to read.
        topic: String,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        max: u32,
    },
    /// Publish dead letters back to the topic they came from.
    #[command(after_help = "Examples:\n  rapidmq dlq replay orders\n  \
        rapidmq dlq replay orders --max 1\n\n\
        Needs queue mode, which this broker does not have yet.")]
    Replay {
        /// The topic whose dead letters to replay.
        topic: String,
        /// At most this many [default: all].
        #[arg(long)]
        max: Option<u32>,
    },
}

pub async fn run(ctx: &Ctx, command: DlqCommand) -> anyhow::Result<()> {
    ctx.table_or_json()?;
    let topic = match &command {
        DlqCommand::List { topic, .. } | DlqCommand::Replay { topic, .. } => topic,
    };
    bail!("{QUEUE_MODE_UNAVAILABLE}: topic {topic} can have no dead letters")
}
