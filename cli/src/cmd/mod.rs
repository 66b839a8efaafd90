//! The client subcommands of `rapidmq`: one command per file, each a clap `Args`/`Subcommand`
//! type plus an async `run(ctx, args)`.
//!
//! Every command talks to the broker through the `rapidmq` SDK (and so through the shared client
//! core), never through raw gRPC. [`Ctx`] carries the global options (`--server`, `--output`)
//! and connects; [`SdkResult::cli`] turns SDK errors into messages a person understands,
//! keeping the stable error code (e.g. `TOPIC_NOT_FOUND (2001)`) in front.
//!
//! - `topic.rs`: `topic create|list|describe|delete|alter`
//! - `sub.rs`: `sub create|list|describe|seek|delete`
//! - `publish.rs`, `consume.rs`: messages from and to the shell
//! - `dlq.rs`: `dlq list|replay` (dead letters of queue subscriptions)
//! - `trace.rs`: flow events of a traced message (REST, on the HTTP listener)
//! - `status.rs`, `completions.rs`
//! - `tls.rs`: `tls dev-certs` (offline: writes development certificates)
//! - `whoami.rs`, `user.rs`, `token.rs`: who you are, users and API tokens (`token generate`
//!   is offline)
//! - `role.rs`: roles and their bindings to users
//! - `tenant.rs`: tenants, their quotas and usage (cluster admins)
//! - `audit.rs`: the audit log, as a table or exported as JSON lines
//! - `bench/`: the load generator

pub mod audit;
pub mod bench;
pub mod completions;
pub mod consume;
pub mod dlq;
pub mod publish;
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

use crate::output::Format;

/// What every client command gets: the broker address and the output format.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The broker's gRPC URL, normalised to `http://host:port` (or kept `https://`).
    pub server: String,
    pub format: Format,
    /// TLS settings from `--tls-ca`, `--tls-cert`, `--tls-key` and `--tls-server-name`; `None`
    /// when none is given (an `https://` server is then verified against the system roots).
    pub tls: Option<rapidmq::TlsConfig>,
    /// The API or session token from `--token` / `RAPIDMQ_TOKEN`.
    pub token: Option<String>,
    /// The tenant to act in from `--tenant` / `RAPIDMQ_TENANT` (sent as `rapidmq-tenant`);
    /// `None`: the token's own.
    pub tenant: Option<String>,
}

/// The global TLS flags.
#[derive(Debug, Default, Clone)]
pub struct TlsArgs {
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub server_name: Option<String>,
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
            token: None,
            tenant: None,
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

    /// An HTTP client for the broker's HTTP listener at `base` (`http://` or `https://`), with
    /// the TLS flags applied as for gRPC: `--tls-ca` replaces the system roots, `--tls-cert` and
    /// `--tls-key` are presented for mutual TLS, and `--tls-server-name` is the name the
    /// certificate is verified against (the request then goes to `base`'s address under that
    /// name, as `curl --connect-to` does). TLS flags with an `http://` URL are an error, so TLS
    /// is never silently off. `--tenant` goes with every request as `rapidmq-tenant`. Returns
    /// the client and the URL to send requests to.
    pub async fn http_client(
        &self,
        base: &str,
        timeout: Duration,
    ) -> anyhow::Result<(reqwest::Client, reqwest::Url)> {
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
        if let Some(tenant) = &self.tenant {
            let value = reqwest::header::HeaderValue::from_str(tenant)
                .with_context(|| format!("--tenant `{tenant}` is not a tenant name"))?;
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(rapidmq_proto::TENANT_METADATA, value);
            builder = builder.default_headers(headers);
        }
        let client = builder.build().context("cannot build the HTTP client")?;
        Ok((client, url))
    }

    /// Connects to the broker.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        let mut builder = Client::builder()
            .endpoint(self.server.clone())
            .connect_timeout(Duration::from_secs(3));
        if let Some(token) = &self.token {
            builder = builder.credentials(rapidmq::Credentials::Token(token.clone()));
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

/// `--mode` of subscriptions and consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ModeArg {
    /// Ordered per partition; partitions shared among members; offsets committed.
    #[default]
    Stream,
    /// One by one to any consumer, acked individually; redelivered and dead-lettered.
    Queue,
}
