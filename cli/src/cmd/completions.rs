//! `rapidmq completions bash|zsh|fish`: shell completion scripts, generated from the clap
//! definitions so they never drift from the real flags.

use clap::CommandFactory;
use clap_complete::Shell;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    rapidmq completions bash > /etc/bash_completion.d/rapidmq\n  \
    rapidmq completions zsh > \"${fpath[1]}/_rapidmq\"\n  \
    rapidmq completions fish > ~/.config/fish/completions/rapidmq.fish")]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: CompletionShell,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

pub fn run(args: CompletionsArgs) -> anyhow::Result<()> {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut command = crate::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "rapidmq", &mut script);
    let mut out = crate::output::Stdout::new();
    out.bytes_line(script.strip_suffix(b"\n").unwrap_or(&script))?;
    out.flush()?;
    Ok(())
}
