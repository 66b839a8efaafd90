//! `rapidmq serve`: load the config, bind, announce the bound addresses, serve until SIGINT or
//! SIGTERM.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use rapidmq_broker::config::LogFormat;
use rapidmq_broker::{Broker, Config, Listeners};
use serde::Serialize;

use crate::logging;
use crate::output::Stdout;

/// Options of `rapidmq serve`. Flags override `RAPIDMQ_*` variables, which override the file.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  rapidmq serve\n  rapidmq serve --data-dir /var/lib/rapidmq --grpc-listen 0.0.0.0:7420\n  rapidmq serve --config rapidmq.toml --check-config\n  rapidmq serve --node-id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003\n\nEvery config field can also be set as RAPIDMQ_<FIELD>, with __ between sections,\ne.g. RAPIDMQ_STORAGE__FSYNC_INTERVAL_MS=50. Logs: RAPIDMQ_LOG=rapidmq=debug,\nRAPIDMQ_LOG_FORMAT=json."
)]
pub struct ServeArgs {
    /// TOML config file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory [default: ./data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// gRPC listen address; port 0 picks a free port [default: 127.0.0.1:7420].
    #[arg(long, value_name = "ADDR")]
    grpc_listen: Option<SocketAddr>,
    /// HTTP listen address (health, readiness) [default: 127.0.0.1:7421].
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<SocketAddr>,
    /// PEM certificate chain (leaf first); with --tls-key-file, both listeners serve TLS.
    #[arg(long, value_name = "FILE")]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key of the TLS certificate.
    #[arg(long, value_name = "FILE")]
    tls_key_file: Option<PathBuf>,
    /// PEM CA certificates that client certificates must chain to (mutual TLS).
    #[arg(long, value_name = "FILE")]
    tls_client_ca_file: Option<PathBuf>,
    /// Whether clients present a certificate [default: none].
    #[arg(long, value_name = "MODE", value_parser = ["none", "optional", "required"])]
    tls_client_auth: Option<String>,
    /// Require credentials on every request and a role for every action (auth.enabled). The
    /// first start creates user `admin` (a cluster admin) from RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN (see `rapidmq token
    /// generate`) or RAPIDMQ_BOOTSTRAP_ADMIN_PASSWORD.
    #[arg(long)]
    auth: bool,
    /// Cluster mode: this node's id, one of --peers (cluster.node_id).
    #[arg(long, value_name = "ID")]
    node_id: Option<u64>,
    /// Cluster mode: every node, this one included, as id=host:port cluster addresses,
    /// comma-separated (cluster.peers). Without peers the broker runs alone.
    #[arg(long, value_name = "ID=ADDR,...")]
    peers: Option<String>,
    /// Where this node listens for the other nodes [default: its address in --peers].
    #[arg(long, value_name = "ADDR")]
    cluster_addr: Option<String>,
    /// PEM CA that every node's certificate chains to (cluster.ca_file). Needed in cluster mode
    /// with TLS on: nodes then talk mutual TLS and accept only certificates from this CA.
    #[arg(long, value_name = "FILE")]
    cluster_ca_file: Option<PathBuf>,
    /// With TLS off, allow non-loopback cluster addresses: node-to-node traffic is then
    /// plaintext and unauthenticated (cluster.insecure).
    #[arg(long)]
    cluster_insecure: bool,
    /// Join a running cluster (cluster.join): never initialize the metadata group; wait, "not a
    /// member yet", until `rapidmq cluster add-node` adds this node.
    #[arg(long)]
    join: bool,
    /// Validate the configuration, print it, and exit.
    #[arg(long)]
    check_config: bool,
    /// Once ready, write the bound addresses to this file as JSON (for test harnesses).
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
}

/// Flag values layered over the file and the environment; unset flags are skipped.
#[derive(Serialize)]
struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grpc_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "TlsOverrides::is_empty")]
    tls: TlsOverrides,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<AuthOverrides>,
    #[serde(skip_serializing_if = "ClusterOverrides::is_empty")]
    cluster: ClusterOverrides,
}

/// `--node-id`, `--peers`, `--cluster-addr`, `--cluster-ca-file`, `--cluster-insecure`,
/// `--join`, layered over the `[cluster]` section.
#[derive(Serialize)]
struct ClusterOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peers: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    insecure: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    join: Option<bool>,
}

impl ClusterOverrides {
    fn is_empty(&self) -> bool {
        self.node_id.is_none()
            && self.peers.is_none()
            && self.cluster_addr.is_none()
            && self.ca_file.is_none()
            && self.insecure.is_none()
            && self.join.is_none()
    }
}

/// `--auth`, layered over the `[auth]` section.
#[derive(Serialize)]
struct AuthOverrides {
    enabled: bool,
}

/// The `--tls-*` flags, layered over the `[tls]` section.
#[derive(Serialize)]
struct TlsOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    cert_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ca_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_auth: Option<String>,
}

impl TlsOverrides {
    fn is_empty(&self) -> bool {
        self.cert_file.is_none()
            && self.key_file.is_none()
            && self.client_ca_file.is_none()
            && self.client_auth.is_none()
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = FlagOverrides {
        data_dir: args.data_dir.clone(),
        grpc_listen: args.grpc_listen,
        http_listen: args.http_listen,
        tls: TlsOverrides {
            cert_file: args.tls_cert_file.clone(),
            key_file: args.tls_key_file.clone(),
            client_ca_file: args.tls_client_ca_file.clone(),
            client_auth: args.tls_client_auth.clone(),
        },
        auth: args.auth.then_some(AuthOverrides { enabled: true }),
        cluster: ClusterOverrides {
            node_id: args.node_id,
            peers: args.peers.clone(),
            cluster_addr: args.cluster_addr.clone(),
            ca_file: args.cluster_ca_file.clone(),
            insecure: args.cluster_insecure.then_some(true),
            join: args.join.then_some(true),
        },
    };
    let config =
        Config::load(args.config.as_deref(), overrides).context("invalid configuration")?;
    if args.check_config {
        // Through `Stdout`, not `print!`: `--check-config | head` must not panic.
        let mut out = Stdout::new();
        out.line("configuration is valid:\n")?;
        out.line(toml_string(&config)?.trim_end())?;
        out.flush()?;
        return Ok(());
    }
    // Before any thread starts (the log exporter's, the runtime's).
    let allocator_tuned = rapidmq_broker::allocator::keep_freed_memory();
    let _logging = logging::init_with_export(
        config.log_format == LogFormat::Json,
        &config.observability.otlp_endpoint,
    )?;
    if !allocator_tuned {
        tracing::debug!("allocator thresholds left at the C library's defaults");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("rapidmq")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, args.ready_file))
}

fn toml_string(config: &Config) -> anyhow::Result<String> {
    // Render through JSON values so the output is stable and readable without another crate.
    let value = serde_json::to_value(config)?;
    let mut out = String::new();
    render(&mut out, "", &value);
    Ok(out)
}

fn render(out: &mut String, section: &str, value: &serde_json::Value) {
    let Some(map) = value.as_object() else { return };
    for (key, v) in map.iter().filter(|(_, v)| !v.is_object()) {
        out.push_str(&format!("{key} = {v}\n"));
    }
    for (key, v) in map.iter().filter(|(_, v)| v.is_object()) {
        let name = if section.is_empty() {
            key.clone()
        } else {
            format!("{section}.{key}")
        };
        out.push_str(&format!("\n[{name}]\n"));
        render(out, &name, v);
    }
}

async fn serve(config: Config, ready_file: Option<PathBuf>) -> anyhow::Result<()> {
    let listeners = Listeners::bind(&config).await.with_context(|| {
        format!(
            "cannot bind {} / {}",
            config.grpc_listen, config.http_listen
        )
    })?;
    let (grpc, http) = (listeners.grpc_addr()?, listeners.http_addr()?);
    let broker = Broker::open(config.clone()).await.with_context(|| {
        format!(
            "cannot start the broker (data directory {})",
            config.data_dir.display()
        )
    })?;
    let tls = broker.tls_reloader();
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%grpc, %http, tls = tls.is_some(), data_dir = %config.data_dir.display(), version = env!("CARGO_PKG_VERSION"), "rapidmq ready");
    // The banner is for whoever watches; a closed stdout (`rapidmq serve | head -1`, a
    // supervisor that dropped the pipe) must not take the broker down, so its errors are
    // ignored rather than panicking as `println!` would.
    let tls_note = if tls.is_some() { "  (TLS)" } else { "" };
    let _ = write!(
        std::io::stdout().lock(),
        "rapidmq {} ready\n  gRPC  {grpc}{tls_note}\n  HTTP  {scheme}://{http}  (/healthz, /readyz)\n  data  {}\n",
        env!("CARGO_PKG_VERSION"),
        config.data_dir.display()
    );
    if let Some(path) = ready_file {
        let body = serde_json::json!({ "grpc": grpc.to_string(), "http": http.to_string(), "pid": std::process::id(), "tls": tls.is_some() });
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, body.to_string())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(tls) = tls {
        reload_on_sighup(tls);
    }
    broker.serve(listeners, shutdown_signal()).await?;
    tracing::info!("rapidmq stopped");
    Ok(())
}

/// Reloads the TLS files on every SIGHUP (the poll of `tls.reload_interval_ms` also does).
#[cfg(unix)]
fn reload_on_sighup(tls: std::sync::Arc<rapidmq_broker::tls::Reloader>) {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(mut hangups) => {
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the TLS files");
                    // A failure is logged by `reload`, and the current certificate stays.
                    let _ = tls.reload();
                }
            });
        }
        Err(err) => {
            tracing::warn!(cause = %err, "cannot listen for SIGHUP; TLS files reload only by polling")
        }
    }
}

#[cfg(not(unix))]
fn reload_on_sighup(_tls: std::sync::Arc<rapidmq_broker::tls::Reloader>) {}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
