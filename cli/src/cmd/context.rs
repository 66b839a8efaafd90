//! `rapidmq context`: named contexts, the connection settings of the brokers one works with,
//! kept in `~/.config/rapidmq/config.toml` (`crate::config`), like `nats context` or
//! `rpk profile`. These commands are offline: they only edit the file.
//!
//! `context add` takes the global `--server`, `--tls-*` and `--token` flags as the context's
//! values (only as given on its command line, never from the environment), plus `--http`,
//! `--tenant`, `--token-file` and `--user` of its own. [`connection`] is how every client command
//! finds its settings: flags and environment over the selected context over the defaults.

use std::path::Path;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::{ConnectionArgs, Ctx};
use crate::config::{self, Config, Credential};
use crate::output::{self, Format, Stdout};

/// What `show` prints instead of a token.
const REDACTED: &str = "<redacted>";

#[derive(Debug, clap::Subcommand)]
pub enum ContextCommand {
    /// Add a context: a broker's address, TLS files, credential and tenant under a name.
    Add(AddArgs),
    /// List the contexts; `*` marks the current one.
    #[command(visible_alias = "list")]
    Ls,
    /// Make a context the current one.
    Use { name: String },
    /// Show a context (by default the one in use), with its token redacted.
    Show { name: Option<String> },
    /// Remove a context.
    #[command(visible_alias = "delete")]
    Rm { name: String },
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The context takes --server, --tls-ca, --tls-cert, --tls-key, \
    --tls-server-name and --token as given on this command line.\n\n\
    Examples:\n  \
    rapidmq context add local --server 127.0.0.1:7420 --use\n  \
    rapidmq context add prod --server https://broker.example.com:7420 \\\n    \
    --http https://broker.example.com:7421 --tls-ca prod-ca.pem --token-file ~/.rapidmq-prod-token\n  \
    rapidmq context add acme --server https://broker.example.com:7420 --user acme/alice --tenant acme"
)]
pub struct AddArgs {
    /// Its name: [A-Za-z0-9._-], 1 to 64 characters.
    name: String,
    /// The broker's REST URL (`rapidmq trace`).
    #[arg(long, value_name = "URL")]
    http: Option<String>,
    /// The tenant to act in, sent as `rapidmq-tenant` (cluster admins).
    // When the CLI gains a global `--tenant`, this becomes that flag, as --server is.
    #[arg(long, value_name = "TENANT")]
    tenant: Option<String>,
    /// A file whose first line is the token (kept out of the contexts file).
    #[arg(long, value_name = "FILE")]
    token_file: Option<String>,
    /// Log in as this user (`alice` or `tenant/alice`); the password is prompted for or read
    /// from RAPIDMQ_PASSWORD, never stored.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// Make it the current context.
    #[arg(long = "use")]
    make_current: bool,
}

/// The settings a client command connects with: `args` (flags and environment) over the
/// context named by `selected` (`--context`, `RAPIDMQ_CONTEXT`) or the current one, over the
/// defaults.
pub fn connection(
    args: ConnectionArgs,
    selected: Option<&str>,
    format: Format,
) -> anyhow::Result<Ctx> {
    let config = match Config::path() {
        Ok(path) => Config::load(&path)?,
        // Without a home there are no contexts, which matters only when one is asked for.
        Err(_) if selected.is_none() => Config::default(),
        Err(err) => return Err(err),
    };
    args.resolve(config.select(selected)?, format)
}

/// Runs a `context` command. `given` holds the connection flags given on the command line;
/// `selected` is `--context` / `RAPIDMQ_CONTEXT`.
pub fn run(
    command: ContextCommand,
    given: ConnectionArgs,
    selected: Option<&str>,
    format: Format,
) -> anyhow::Result<()> {
    if format == Format::Raw {
        bail!("--output raw applies to `consume` only; use table or json");
    }
    let json = format == Format::Json;
    let path = Config::path()?;
    let mut config = Config::load(&path)?;
    let mut out = Stdout::new();
    match command {
        ContextCommand::Add(args) => {
            let name = args.name.clone();
            config::check_name(&name)?;
            if config.contexts.contains_key(&name) {
                bail!("context `{name}` exists; `rapidmq context rm {name}` first to replace it");
            }
            let make_current = args.make_current;
            let context = new_context(args, given)?;
            context.check(&name)?;
            config.contexts.insert(name.clone(), context);
            if make_current {
                config.current = Some(name.clone());
            }
            config.save(&path)?;
            if !json {
                let current = if make_current { ", now current" } else { "" };
                out.line(format!(
                    "added context {name}{current} ({})",
                    path.display()
                ))?;
            }
        }
        ContextCommand::Ls => {
            if json {
                let list: Vec<Value> = config
                    .contexts
                    .iter()
                    .map(|(name, context)| describe(name, context, &config))
                    .collect();
                out.json_pretty(&list)?;
            } else {
                let mut table = output::table(["", "NAME", "SERVER", "TENANT", "CREDENTIAL"]);
                for (name, context) in &config.contexts {
                    let current = config.current.as_deref() == Some(name.as_str());
                    table.add_row(vec![
                        if current { "*" } else { "" }.to_string(),
                        name.clone(),
                        context.server.clone().unwrap_or_else(|| "-".into()),
                        context.tenant.clone().unwrap_or_else(|| "-".into()),
                        credential_summary(context),
                    ]);
                }
                output::print_table(&mut out, &table)?;
            }
        }
        ContextCommand::Use { name } => {
            config.get(&name)?;
            config.current = Some(name.clone());
            config.save(&path)?;
            if !json {
                out.line(format!("using context {name}"))?;
            }
        }
        ContextCommand::Show { name } => {
            let name = name.as_deref().or(selected).or(config.current.as_deref());
            let Some(name) = name else {
                bail!("no context is in use; name one, or `rapidmq context use NAME`");
            };
            let context = config.get(name)?;
            if json {
                out.json_pretty(&describe(name, context, &config))?;
            } else {
                let current = config.current.as_deref() == Some(name);
                let field = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
                let table = output::properties([
                    ("Name", name.to_string()),
                    ("Current", if current { "yes" } else { "no" }.to_string()),
                    ("Server", field(&context.server)),
                    ("HTTP", field(&context.http)),
                    ("CA", field(&context.ca)),
                    ("Cert", field(&context.cert)),
                    ("Key", field(&context.key)),
                    ("Server name", field(&context.server_name)),
                    ("Tenant", field(&context.tenant)),
                    ("Credential", credential_summary(context)),
                ]);
                output::print_table(&mut out, &table)?;
            }
        }
        ContextCommand::Rm { name } => {
            config.get(&name)?;
            config.contexts.remove(&name);
            let was_current = config.current.as_deref() == Some(name.as_str());
            if was_current {
                config.current = None;
            }
            config.save(&path)?;
            if !json {
                let note = if was_current {
                    "; no context is current now"
                } else {
                    ""
                };
                out.line(format!("removed context {name}{note}"))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The context `add` describes: URLs with their scheme, file paths made absolute so the
/// context works from any directory.
fn new_context(args: AddArgs, given: ConnectionArgs) -> anyhow::Result<config::Context> {
    let kinds = [
        given.token.is_some(),
        args.token_file.is_some(),
        args.user.is_some(),
    ];
    if kinds.into_iter().filter(|&given| given).count() > 1 {
        bail!("give one credential: --token, --token-file or --user");
    }
    let tenant = args.tenant.or(given.tenant);
    if let Some(tenant) = &tenant {
        config::check_name(tenant).context("--tenant")?;
    }
    let url = |flag: &str, url: Option<String>| {
        url.map(|url| config::broker_url(&url).with_context(|| flag.to_string()))
            .transpose()
    };
    Ok(config::Context {
        server: url("--server", given.server)?,
        http: url("--http", args.http)?,
        ca: absolute(given.tls.ca)?,
        cert: absolute(given.tls.cert)?,
        key: absolute(given.tls.key)?,
        server_name: given.tls.server_name,
        tenant,
        token: given.token,
        token_file: absolute(args.token_file)?,
        user: args.user,
    })
}

fn absolute(path: Option<String>) -> anyhow::Result<Option<String>> {
    path.map(|path| {
        std::path::absolute(Path::new(&path))
            .map(|p| p.display().to_string())
            .with_context(|| format!("cannot make `{path}` an absolute path"))
    })
    .transpose()
}

/// Which credential a context uses, without its secret.
fn credential_summary(context: &config::Context) -> String {
    match context.credential() {
        None => "-".into(),
        Some(Credential::Token(_)) => format!("token {REDACTED}"),
        Some(Credential::TokenFile(path)) => format!("token file {path}"),
        Some(Credential::User(user)) => {
            format!("user {user} (password prompted or RAPIDMQ_PASSWORD)")
        }
    }
}

/// A context as JSON, its token redacted.
fn describe(name: &str, context: &config::Context, config: &Config) -> Value {
    json!({
        "name": name,
        "current": config.current.as_deref() == Some(name),
        "server": context.server,
        "http": context.http,
        "ca": context.ca,
        "cert": context.cert,
        "key": context.key,
        "server_name": context.server_name,
        "tenant": context.tenant,
        "token": context.token.as_ref().map(|_| REDACTED),
        "token_file": context.token_file,
        "user": context.user,
    })
}
