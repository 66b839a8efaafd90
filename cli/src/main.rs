//! `rapidmq`: the broker (`rapidmq serve`) and the command line, in one binary.
//!
//! Layout:
//! - `serve.rs`: runs a broker.
//! - `bench_grpc.rs`: the raw gRPC baseline benchmark (no client core).
//! - `cmd/`: the client commands (topics, subscriptions, publish, consume, dlq, status, bench,
//!   completions), which all go through the `rapidmq` SDK.
//! - `output.rs`: tables, JSON and a stdout that exits cleanly on a closed pipe.
//! - `parse.rs`: durations, sizes, positions and headers as the command line writes them.
//! - `config.rs`: the named contexts file (`rapidmq context`).
//!
//! Errors print as `error: …` on stderr with exit status 1; usage errors come from clap with
//! status 2; a closed stdout (`| head`) ends the command quietly with status 0.

mod bench_grpc;
mod cmd;
mod config;
mod logging;
mod output;
mod parse;
mod serve;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches as _, Parser, Subcommand};

use crate::cmd::{ConnectionArgs, Ctx};
use crate::output::Format;

/// `rapidmq --version`: the release version and the git revision it was built from.
static VERSION: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{} ({})", rapidmq::VERSION, rapidmq::GIT_REVISION));

/// RapidMQ: a durable message broker with pub/sub and work queues on the same topics.
#[derive(Debug, Parser)]
#[command(
    name = "rapidmq",
    version = VERSION.as_str(),
    about,
    propagate_version = true,
    after_help = "Examples:\n  \
        rapidmq serve                                   # start a broker on 127.0.0.1:7420\n  \
        rapidmq topic create orders --partitions 4\n  \
        seq 10 | rapidmq publish orders\n  \
        rapidmq consume orders --output json\n  \
        rapidmq --server 10.0.0.5:7420 status\n  \
        rapidmq context add prod --server https://10.0.0.5:7420 --tls-ca ca.pem --use\n  \
        rapidmq bench pubsub --duration 10s\n\n\
        Docs: docs/cli.md"
)]
pub struct Cli {
    /// Broker gRPC address (http://host:port, https://host:port for TLS, or host:port)
    /// [default: the context's, else http://127.0.0.1:7420].
    #[arg(long, global = true, env = "RAPIDMQ_SERVER", value_name = "URL")]
    server: Option<String>,
    /// The named context to use instead of the current one (`rapidmq context ls`); flags and
    /// environment variables override its settings one by one.
    #[arg(long, global = true, env = "RAPIDMQ_CONTEXT", value_name = "NAME")]
    context: Option<String>,
    /// CA certificates (PEM) to verify an https:// broker with; the system roots by default.
    /// The TLS flags all start with `--tls-`, so none can shadow a subcommand's own flag
    /// (`publish --key` is the message key).
    #[arg(long, global = true, env = "RAPIDMQ_TLS_CA", value_name = "FILE")]
    tls_ca: Option<String>,
    /// Client certificate (PEM) for mutual TLS; needs --tls-key.
    #[arg(
        long,
        global = true,
        env = "RAPIDMQ_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<String>,
    /// Private key (PEM) of the --tls-cert client certificate.
    #[arg(
        long,
        global = true,
        env = "RAPIDMQ_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<String>,
    /// Name to verify the broker's certificate against; the --server host by default.
    #[arg(
        long,
        global = true,
        env = "RAPIDMQ_TLS_SERVER_NAME",
        value_name = "NAME"
    )]
    tls_server_name: Option<String>,
    /// API or session token for a broker with authentication on (`rapidmq token create`, or
    /// RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN for the first admin).
    #[arg(
        long,
        global = true,
        env = "RAPIDMQ_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// The tenant to act in (a cluster admin acting inside another tenant); your token's own
    /// by default.
    #[arg(long, global = true, env = "RAPIDMQ_TENANT", value_name = "NAME")]
    tenant: Option<String>,
    /// Output format: table (people) or json (scripts); `consume` also takes raw.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a broker.
    Serve(serve::ServeArgs),
    /// Manage topics.
    #[command(subcommand)]
    Topic(cmd::topic::TopicCommand),
    /// Manage subscriptions.
    #[command(subcommand)]
    Sub(cmd::sub::SubCommand),
    /// Publish messages: an argument, stdin lines, or a file.
    Publish(cmd::publish::PublishArgs),
    /// Print messages of a topic.
    Consume(cmd::consume::ConsumeArgs),
    /// Send a request and print its reply.
    Request(cmd::request::RequestArgs),
    /// Answer the requests on a topic (a queue subscription), with a value or an echo.
    Reply(cmd::request::ReplyArgs),
    /// Inspect and replay dead letters (queue mode).
    #[command(subcommand)]
    Dlq(cmd::dlq::DlqCommand),
    /// Show the broker's version, uptime and counts.
    Status(cmd::status::StatusArgs),
    /// Cluster mode: the metadata leader and the node table.
    #[command(subcommand)]
    Cluster(cmd::cluster::ClusterCommand),
    /// Show the broker's recent flow events of a message (by msg-id, key or traceparent).
    Trace(cmd::trace::TraceArgs),
    /// Load-test the broker through the client SDK.
    Bench(cmd::bench::BenchArgs),
    /// Measure raw gRPC publish and consume throughput (no client core), for the storage and
    /// transport baseline in docs/benchmarks.md.
    BenchGrpc(bench_grpc::BenchArgs),
    /// Print a shell completion script.
    Completions(cmd::completions::CompletionsArgs),
    /// TLS helpers: development certificates.
    #[command(subcommand)]
    Tls(cmd::tls::TlsCommand),
    /// Show who the broker takes you for (with --token).
    Whoami(cmd::whoami::WhoamiArgs),
    /// Manage the users of your tenant (a broker with --auth).
    #[command(subcommand)]
    User(cmd::user::UserCommand),
    /// API tokens: generate one locally, or create, list and revoke them.
    #[command(subcommand)]
    Token(cmd::token::TokenCommand),
    /// Roles of your tenant and their bindings to users (a broker with --auth).
    #[command(subcommand)]
    Role(cmd::role::RoleCommand),
    /// Named contexts: the server, TLS files, credential and tenant of each broker you use.
    #[command(subcommand)]
    Context(cmd::context::ContextCommand),
    /// Tenants, their quotas and usage (cluster admins; a tenant's admins may show their own).
    #[command(subcommand)]
    Tenant(cmd::tenant::TenantCommand),
    /// The audit log: failed logins, denials and every admin change.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
}

fn main() -> std::process::ExitCode {
    let (cli, matches) = parse();
    let args = ConnectionArgs {
        server: cli.server.clone(),
        tls: cmd::TlsArgs {
            ca: cli.tls_ca.clone(),
            cert: cli.tls_cert.clone(),
            key: cli.tls_key.clone(),
            server_name: cli.tls_server_name.clone(),
        },
        token: cli.token.clone(),
        tenant: cli.tenant.clone(),
    };
    let selected = cli.context.as_deref().filter(|name| !name.is_empty());
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::BenchGrpc(args) => bench_grpc::run(args),
        Command::Completions(args) => cmd::completions::run(args),
        Command::Tls(command) => cmd::tls::run(command),
        Command::Token(cmd::token::TokenCommand::Generate) => cmd::token::generate(),
        Command::Context(command) => cmd::context::run(
            command,
            given_on_command_line(args, &matches),
            selected,
            cli.output,
        ),
        command => {
            logging::init_client();
            cmd::context::connection(args, selected, cli.output)
                .and_then(|ctx| client_command(&ctx, command))
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) if output::is_broken_pipe(&err) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The connection options that were written on the command line, not taken from the
/// environment (what `context add` stores).
fn given_on_command_line(args: ConnectionArgs, matches: &ArgMatches) -> ConnectionArgs {
    let given = |id: &str, value: Option<String>| {
        value.filter(|_| matches.value_source(id) == Some(ValueSource::CommandLine))
    };
    ConnectionArgs {
        server: given("server", args.server),
        tls: cmd::TlsArgs {
            ca: given("tls_ca", args.tls.ca),
            cert: given("tls_cert", args.tls.cert),
            key: given("tls_key", args.tls.key),
            server_name: given("tls_server_name", args.tls.server_name),
        },
        token: given("token", args.token),
        tenant: given("tenant", args.tenant),
    }
}

/// Parses the command line; a usage error always ends with the usage of the (sub)command it is
/// about, which clap leaves out for invalid values. The matches say where each value came from.
fn parse() -> (Cli, ArgMatches) {
    let err = match Cli::command()
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)))
    {
        Ok(parsed) => return parsed,
        Err(err) => err,
    };
    use clap::error::ErrorKind;
    if err.use_stderr()
        && !matches!(
            err.kind(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        )
        && !err.to_string().contains("Usage:")
    {
        let _ = err.print();
        eprintln!("\n{}", usage_of(std::env::args().skip(1)));
        std::process::exit(err.exit_code());
    }
    err.exit()
}

/// The usage line of the deepest subcommand named in `args`.
fn usage_of(args: impl Iterator<Item = String>) -> clap::builder::StyledStr {
    let mut command = Cli::command();
    command.build();
    for arg in args {
        if arg.starts_with('-') {
            continue;
        }
        match command.find_subcommand(&arg) {
            Some(sub) => {
                let sub = sub.clone();
                command = sub;
            }
            // An option's value or a positional argument.
            None => continue,
        }
    }
    command.render_usage()
}

/// Runs a command that talks to a broker, on a runtime of its own.
fn client_command(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("rapidmq-cli")
        .build()
        .map_err(|err| anyhow::anyhow!("cannot start the async runtime: {err}"))?;
    let result = runtime.block_on(async {
        match command {
            Command::Topic(c) => cmd::topic::run(ctx, c).await,
            Command::Sub(c) => cmd::sub::run(ctx, c).await,
            Command::Publish(a) => cmd::publish::run(ctx, a).await,
            Command::Consume(a) => cmd::consume::run(ctx, a).await,
            Command::Request(a) => cmd::request::run_request(ctx, a).await,
            Command::Reply(a) => cmd::request::run_reply(ctx, a).await,
            Command::Dlq(c) => cmd::dlq::run(ctx, c).await,
            Command::Status(a) => cmd::status::run(ctx, a).await,
            Command::Cluster(c) => cmd::cluster::run(ctx, c).await,
            Command::Trace(a) => cmd::trace::run(ctx, a).await,
            Command::Bench(a) => cmd::bench::run(ctx, a).await,
            Command::Whoami(a) => cmd::whoami::run(ctx, a).await,
            Command::User(c) => cmd::user::run(ctx, c).await,
            Command::Token(c) => cmd::token::run(ctx, c).await,
            Command::Role(c) => cmd::role::run(ctx, c).await,
            Command::Tenant(c) => cmd::tenant::run(ctx, c).await,
            Command::Audit(c) => cmd::audit::run(ctx, c).await,
            Command::Serve(_)
            | Command::BenchGrpc(_)
            | Command::Completions(_)
            | Command::Tls(_)
            | Command::Context(_) => Ok(()),
        }
    });
    // Do not wait for background tasks (e.g. a stdin reader blocked on a terminal).
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}
