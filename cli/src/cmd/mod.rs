//! The client subcommands of `rapidmq`: one command per file, each a clap `Args`/`Subcommand`
//! type plus an async `run(ctx, args)`.
//!
//! Every command talks to the broker through the `rapidmq` SDK (and so through the shared client
//! core), never through raw gRPC. [`Ctx`] carries the global options (`--server`, TLS,
//! credentials, `--output`) and connects; [`SdkResult::cli`] turns SDK errors into messages a person understands,
//! keeping the stable error code (e.g. `TOPIC_NOT_FOUND (2001)`) in front.
//!
//! - `topic.rs`: `topic create|list|describe|delete|alter`
//! - `sub.rs`: `sub create|list|describe|seek|delete`
//! - `publish.rs`, `consume.rs`: messages from and to the shell
//! - `request.rs`: `request` and `reply`, request/reply from the shell
//! - `dlq.rs`: `dlq list|replay` (dead letters of queue subscriptions)
//! - `trace.rs`: flow events of a traced message (REST, on the HTTP listener)
//! - `status.rs`, `completions.rs`
//! - `cluster.rs`: `cluster status` (metadata leader and members), `add-node`, `remove-node`
//! - `tls.rs`: `tls dev-certs` (offline: writes development certificates)
//! - `whoami.rs`, `user.rs`, `token.rs`: who you are, users and API tokens (`token generate`
//!   is offline)
//! - `role.rs`: roles and their bindings to users
//! - `context.rs`: `context add|ls|use|show|rm`, the named contexts of `crate::config`
//!   (offline); [`ConnectionArgs::resolve`] layers flags and environment over the selected one
//! - `tenant.rs`: tenants, their quotas and usage (cluster admins)
//! - `audit.rs`: the audit log, as a table or exported as JSON lines
//! - `bench/`: the load generator

pub mod audit;
pub mod bench;
pub mod cluster;
pub mod completions;
pub mod consume;
pub mod context;
pub mod dlq;
pub mod publish;
pub mod request;
pub mod role;
pub mod status;
pub mod sub;
pub mod tenant;
pub mod tls;
pub mod token;
pub mod topic;
pub mod trace;
pub mod user;
pub mod whoami;

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use rapidmq::{Client, ErrorCode};

use crate::config;
use crate::output::Format;

/// What every client command gets: the broker address, TLS, credentials and output format,
/// each from a flag, the environment, the selected context or the default, in that order.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The broker's gRPC URL, normalised to `http://host:port` (or kept `https://`).
    pub server: String,
    pub format: Format,
    /// TLS settings from `--tls-ca`, `--tls-cert`, `--tls-key` and `--tls-server-name` (or the
    /// context); `None` when none is given (an `https://` server is then verified against the
    /// system roots).
    pub tls: Option<rapidmq::TlsConfig>,
    /// A token from `--token` / `RAPIDMQ_TOKEN` or the context, or the context's user with a
    /// password from `RAPIDMQ_PASSWORD` or the terminal.
    pub credentials: Option<rapidmq::Credentials>,
    /// The tenant to act in (the context's `tenant`), sent as `rapidmq-tenant` on gRPC and REST.
    pub tenant: Option<String>,
    /// The broker's REST URL from the context; `trace --http` and `RAPIDMQ_HTTP` come first.
    pub http: Option<String>,
}

/// The global TLS flags.
#[derive(Debug, Default, Clone)]
pub struct TlsArgs {
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub server_name: Option<String>,
}

/// The global connection options as given on the command line or in the environment (clap
/// ranks those two), before the context fills in what they leave out.
#[derive(Debug, Default, Clone)]
pub struct ConnectionArgs {
    pub server: Option<String>,
    pub tls: TlsArgs,
    pub token: Option<String>,
    /// The tenant to act in, from `--tenant` / `RAPIDMQ_TENANT`.
    pub tenant: Option<String>,
}

impl ConnectionArgs {
    /// The settings to connect with: these arguments over `context`'s over the defaults
    /// (docs/adr/0004-security.md §12). A context's `token_file` is read and its `user`'s
    /// password taken from `RAPIDMQ_PASSWORD` or prompted for here, once per command.
    pub fn resolve(
        self,
        context: Option<(&str, &config::Context)>,
        format: Format,
    ) -> anyhow::Result<Ctx> {
        let (name, context) = match context {
            Some((name, context)) => (name, context.clone()),
            None => ("", config::Context::default()),
        };
        let credentials = match self.token {
            Some(token) => Some(rapidmq::Credentials::Token(token)),
            None => context_credentials(name, &context)?,
        };
        let context_tls = [
            &context.ca,
            &context.cert,
            &context.key,
            &context.server_name,
        ]
        .iter()
        .any(|field| field.is_some());
        if let Some(server) = &self.server
            && context_tls
            && server.starts_with("http://")
        {
            anyhow::bail!(
                "`{server}` (--server or RAPIDMQ_SERVER) is http:// but context `{name}` has TLS settings: use https://, or another context (--context)"
            );
        }
        let server = self
            .server
            .or(context.server)
            .unwrap_or_else(|| rapidmq::defaults::ENDPOINT.to_string());
        let tls = TlsArgs {
            ca: self.tls.ca.or(context.ca),
            cert: self.tls.cert.or(context.cert),
            key: self.tls.key.or(context.key),
            server_name: self.tls.server_name.or(context.server_name),
        };
        let mut ctx = Ctx::new(&server, format).with_tls(tls);
        ctx.credentials = credentials;
        ctx.tenant = self.tenant.or(context.tenant);
        ctx.http = context.http;
        Ok(ctx)
    }
}

/// The credentials a context names: its token, the first line of its token file, or its user
/// with a password from `RAPIDMQ_PASSWORD` or the terminal (never from the file).
fn context_credentials(
    name: &str,
    context: &config::Context,
) -> anyhow::Result<Option<rapidmq::Credentials>> {
    Ok(match context.credential() {
        None => None,
        Some(config::Credential::Token(token)) => Some(rapidmq::Credentials::Token(token.into())),
        Some(config::Credential::TokenFile(path)) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("context `{name}`: cannot read the token file `{path}`")
            })?;
            let token = text.lines().next().unwrap_or_default().trim();
            anyhow::ensure!(
                !token.is_empty(),
                "context `{name}`: the token file `{path}` is empty"
            );
            Some(rapidmq::Credentials::Token(token.into()))
        }
        Some(config::Credential::User(user)) => Some(rapidmq::Credentials::UserPassword {
            user: user.into(),
            password: password_for(name, user)?,
        }),
    })
}

/// `RAPIDMQ_PASSWORD`, or a prompt on the terminal without echo.
fn password_for(context: &str, user: &str) -> anyhow::Result<String> {
    if let Some(password) = std::env::var("RAPIDMQ_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
    {
        return Ok(password);
    }
    let password = rpassword::prompt_password(format!("password for {user} (context {context}): "))
        .with_context(|| {
            format!(
                "context `{context}` logs in as {user}: set RAPIDMQ_PASSWORD or run on a terminal"
            )
        })?;
    anyhow::ensure!(!password.is_empty(), "no password given for {user}");
    Ok(password)
}

/// A PEM file named by `flag`.
fn read_pem(path: &str, flag: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{flag}: cannot read `{path}`"))
}

/// The message for a broker that cannot be reached.
pub fn unreachable(server: &str) -> String {
    format!("cannot reach broker at {server}: is it running? (`rapidmq serve`)")
}

impl Ctx {
    pub fn new(server: &str, format: Format) -> Ctx {
        let server = if server.contains("://") {
            server.to_string()
        } else {
            format!("http://{server}")
        };
        Ctx {
            server,
            format,
            tls: None,
            credentials: None,
            tenant: None,
            http: None,
        }
    }

    /// Uses the TLS flags, if any is set.
    pub fn with_tls(mut self, args: TlsArgs) -> Ctx {
        if args.ca.is_some()
            || args.cert.is_some()
            || args.key.is_some()
            || args.server_name.is_some()
        {
            self.tls = Some(rapidmq::TlsConfig {
                ca_cert_path: args.ca,
                client_cert_path: args.cert,
                client_key_path: args.key,
                server_name: args.server_name,
                ..rapidmq::TlsConfig::default()
            });
        }
        self
    }

    /// The REST URL to use: `flag` (`--http` or `RAPIDMQ_HTTP`), else the context's, else
    /// `default`; `host:port` means `http://`.
    pub fn http_base(&self, flag: Option<&str>, default: &str) -> String {
        let base = flag
            .or(self.http.as_deref())
            .unwrap_or(default)
            .trim_end_matches('/');
        if base.contains("://") {
            base.to_string()
        } else {
            format!("http://{base}")
        }
    }

    /// An HTTP client for the broker's HTTP listener at `base` (`http://` or `https://`), with
    /// the TLS flags applied as for gRPC: `--tls-ca` replaces the system roots, `--tls-cert` and
    /// `--tls-key` are presented for mutual TLS, and `--tls-server-name` is the name the
    /// certificate is verified against (the request then goes to `base`'s address under that
    /// name, as `curl --connect-to` does). TLS flags with an `http://` URL are an error, so TLS
    /// is never silently off. Every request carries the credentials (a user logs in first, at
    /// `/v1/auth/login`) and the tenant. Returns the client and the URL to send requests to.
    pub async fn http_client(
        &self,
        base: &str,
        timeout: Duration,
    ) -> anyhow::Result<(reqwest::Client, reqwest::Url)> {
        let (builder, url) = self.http_builder(base, timeout).await?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(tenant) = &self.tenant {
            let value = reqwest::header::HeaderValue::from_str(tenant)
                .with_context(|| format!("tenant `{tenant}` cannot be sent in a header"))?;
            headers.insert(rapidmq_proto::TENANT_METADATA, value);
        }
        let token = match &self.credentials {
            None => None,
            Some(rapidmq::Credentials::Token(token)) => Some(token.clone()),
            Some(rapidmq::Credentials::UserPassword { user, password }) => {
                let (login, _) = self.http_builder(base, timeout).await?;
                let login = login.build().context("cannot build the HTTP client")?;
                Some(rest_login(&login, &url, user, password).await?)
            }
        };
        if let Some(token) = token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .context("the token cannot be sent in a header")?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let client = builder
            .default_headers(headers)
            .build()
            .context("cannot build the HTTP client")?;
        Ok((client, url))
    }

    /// A client builder with the TLS settings applied, and the URL to send requests to.
    async fn http_builder(
        &self,
        base: &str,
        timeout: Duration,
    ) -> anyhow::Result<(reqwest::ClientBuilder, reqwest::Url)> {
        let mut url = reqwest::Url::parse(base).with_context(|| format!("bad URL `{base}`"))?;
        let mut builder = reqwest::Client::builder().timeout(timeout);
        if let Some(tls) = &self.tls {
            if url.scheme() != "https" {
                anyhow::bail!(
                    "TLS flags are set but `{base}` is {}://: use https://",
                    url.scheme()
                );
            }
            if let Some(path) = &tls.ca_cert_path {
                let pem = read_pem(path, "--tls-ca")?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .with_context(|| format!("--tls-ca `{path}`: not PEM certificates"))?;
                builder = builder.tls_built_in_root_certs(false);
                for cert in certs {
                    builder = builder.add_root_certificate(cert);
                }
            }
            if let (Some(cert), Some(key)) = (&tls.client_cert_path, &tls.client_key_path) {
                let mut pem = read_pem(cert, "--tls-cert")?;
                pem.push(b'\n');
                pem.extend(read_pem(key, "--tls-key")?);
                let identity = reqwest::Identity::from_pem(&pem).with_context(|| {
                    format!(
                        "--tls-cert `{cert}` / --tls-key `{key}`: not a PEM certificate and key"
                    )
                })?;
                builder = builder.identity(identity);
            }
            if let Some(name) = &tls.server_name {
                let host = url.host_str().unwrap_or_default().to_string();
                let port = url.port_or_known_default().unwrap_or(443);
                let addrs: Vec<std::net::SocketAddr> =
                    tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
                        .await
                        .with_context(|| format!("cannot resolve `{host}`"))?
                        .collect();
                url.set_host(Some(name))
                    .with_context(|| format!("--tls-server-name `{name}` is not a host name"))?;
                builder = builder.resolve_to_addrs(name, &addrs);
            }
        }
        Ok((builder, url))
    }

    /// Connects to the broker.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        self.connect_waiting(rapidmq::defaults::REQUEST_TIMEOUT)
            .await
    }

    /// Connects to the broker, with calls that may take up to `request_timeout` (an operation
    /// that blocks until the cluster did something, such as `cluster add-node`).
    pub async fn connect_waiting(&self, request_timeout: Duration) -> anyhow::Result<Client> {
        let mut builder = Client::builder()
            .endpoint(self.server.clone())
            .connect_timeout(Duration::from_secs(3))
            .request_timeout(request_timeout);
        if let Some(credentials) = &self.credentials {
            builder = builder.credentials(credentials.clone());
        }
        if let Some(tenant) = &self.tenant {
            builder = builder.tenant(tenant.clone());
        }
        if let Some(tls) = &self.tls {
            builder = builder.tls(tls.clone());
        }
        builder.connect().await.cli(self)
    }

    /// Whether output is JSON.
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// Rejects `--output raw` for commands that print tables.
    pub fn table_or_json(&self) -> anyhow::Result<()> {
        if self.format == Format::Raw {
            anyhow::bail!("--output raw applies to `consume` only; use table or json");
        }
        Ok(())
    }
}

/// Logs in at the REST API for a session token (what the core does at connect for gRPC).
async fn rest_login(
    http: &reqwest::Client,
    base: &reqwest::Url,
    user: &str,
    password: &str,
) -> anyhow::Result<String> {
    let url = format!("{}/v1/auth/login", base.as_str().trim_end_matches('/'));
    let response = http
        .post(&url)
        .json(&serde_json::json!({"user": user, "password": password}))
        .send()
        .await
        .with_context(|| format!("cannot log in as {user} at {base}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        let name = body["name"].as_str().unwrap_or("ERROR");
        let detail = body["detail"].as_str().unwrap_or("login failed");
        anyhow::bail!("{name}: {detail} (logging in as {user})");
    }
    body["token"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("{base} answered a login without a token"))
}

/// Turns SDK errors into CLI errors.
pub trait SdkResult<T> {
    /// The error with its code in front, or the "cannot reach broker" message.
    fn cli(self, ctx: &Ctx) -> anyhow::Result<T>;
}

impl<T> SdkResult<T> for rapidmq::Result<T> {
    fn cli(self, ctx: &Ctx) -> anyhow::Result<T> {
        self.map_err(|err| describe(err, ctx))
    }
}

fn describe(err: rapidmq::Error, ctx: &Ctx) -> anyhow::Error {
    match &err {
        rapidmq::Error::Unavailable { message } => {
            tracing::debug!(cause = %message, "broker unavailable");
            anyhow!("{}", unreachable(&ctx.server))
        }
        rapidmq::Error::Broker { code, message, .. } => {
            let hint = match code {
                ErrorCode::TopicNotFound => "; `rapidmq topic list` shows the topics",
                ErrorCode::SubscriptionNotFound => "; `rapidmq sub list` shows the subscriptions",
                ErrorCode::TopicAlreadyExists | ErrorCode::SubscriptionAlreadyExists => "",
                ErrorCode::InvalidName => " (names are [A-Za-z0-9._-], 1 to 200 characters)",
                ErrorCode::TenantNotFound if ctx.tenant.is_some() => {
                    "; check --tenant / RAPIDMQ_TENANT (only a cluster admin may name another tenant)"
                }
                ErrorCode::TenantNotFound => "; `rapidmq tenant ls` shows the tenants",
                ErrorCode::TenantNotEmpty => {
                    "; delete its topics and users first (`rapidmq --tenant NAME topic list`, `user ls`)"
                }
                _ => "",
            };
            anyhow!("{code}: {message}{hint}")
        }
        _ => anyhow!("{}: {err}", err.code()),
    }
}

/// Display names shared by the table outputs.
pub fn durability_name(d: rapidmq::Durability) -> &'static str {
    match d {
        rapidmq::Durability::Unspecified => "default",
        rapidmq::Durability::Fsync => "fsync",
        rapidmq::Durability::Buffered => "buffered",
        rapidmq::Durability::Memory => "memory",
    }
}

pub fn storage_name(s: rapidmq::Storage) -> &'static str {
    match s {
        rapidmq::Storage::Default => "default",
        rapidmq::Storage::Disk => "disk",
        rapidmq::Storage::Memory => "memory",
    }
}

pub fn mode_name(m: rapidmq::SubscriptionMode) -> &'static str {
    match m {
        rapidmq::SubscriptionMode::Stream => "stream",
        rapidmq::SubscriptionMode::Queue => "queue",
        _ => "unknown",
    }
}

pub fn send_status_name(s: rapidmq::SendStatus) -> &'static str {
    match s {
        rapidmq::SendStatus::Appended => "appended",
        rapidmq::SendStatus::Scheduled => "scheduled",
        rapidmq::SendStatus::Deduplicated => "deduplicated",
    }
}

/// `--durability` values a topic can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DurabilityArg {
    /// Acknowledge after the group commit was fsynced (the default).
    Fsync,
    /// Acknowledge once written to the OS; fsync on an interval.
    Buffered,
}

impl From<DurabilityArg> for rapidmq::Durability {
    fn from(d: DurabilityArg) -> Self {
        match d {
            DurabilityArg::Fsync => rapidmq::Durability::Fsync,
            DurabilityArg::Buffered => rapidmq::Durability::Buffered,
        }
    }
}

/// `--compression` of a producer: how each batch's messages are packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CompressionArg {
    /// As they are (the default).
    #[default]
    None,
    /// LZ4 frames: cheap on CPU, a moderate ratio.
    Lz4,
    /// Zstandard frames (level 3): a better ratio for more CPU.
    Zstd,
}

impl From<CompressionArg> for rapidmq::Compression {
    fn from(c: CompressionArg) -> Self {
        match c {
            CompressionArg::None => rapidmq::Compression::None,
            CompressionArg::Lz4 => rapidmq::Compression::Lz4,
            CompressionArg::Zstd => rapidmq::Compression::Zstd,
        }
    }
}

/// `--mode` of subscriptions and consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ModeArg {
    /// Ordered per partition; partitions shared among members; offsets committed.
    #[default]
    Stream,
    /// One by one to any consumer, acked individually; redelivered and dead-lettered.
    Queue,
}
