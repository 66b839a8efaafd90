//! `rapidmq`: the broker (`rapidmq serve`) and the command line, in one binary.

mod bench_grpc;
mod logging;
mod serve;

use clap::{Parser, Subcommand};

/// RapidMQ: a durable message broker with pub/sub and work queues on the same topics.
#[derive(Debug, Parser)]
#[command(name = "rapidmq", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a broker.
    Serve(serve::ServeArgs),
    /// Measure raw gRPC publish and consume throughput (no client core), for the storage and
    /// transport baseline in docs/benchmarks.md.
    BenchGrpc(bench_grpc::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::BenchGrpc(args) => bench_grpc::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
