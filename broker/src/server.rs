//! Wiring: open the engine, serve gRPC and HTTP on bound listeners until a shutdown future
//! resolves, then drain. The binary and the tests call the same [`Broker::serve`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::auth::{AuthLayer, BootstrapSecret, GrpcReject};
use crate::budget::PublishBudget;
use crate::cluster::NodeTls;
use crate::cluster::node::ClusterNode;
use crate::cluster::node_table::NodeInfo;
use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::observability::Transport;
use crate::observability::connections::{ConnectionSlots, CountedListener};
use crate::rest::cluster::ClusterHandle;
use crate::tls::{Acceptor, PeerInfo, Protocol, Reloader};
use crate::{grpc, http};

/// How long in-flight requests get to finish after shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The two bound listeners.
pub struct Listeners {
    pub grpc: TcpListener,
    pub http: TcpListener,
}

impl Listeners {
    /// Binds the addresses from `config` (port 0 picks a free port).
    pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
        Ok(Listeners {
            grpc: TcpListener::bind(config.grpc_listen).await?,
            http: TcpListener::bind(config.http_listen).await?,
        })
    }

    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }
}

/// An opened broker, ready to serve.
pub struct Broker {
    engine: Arc<Engine>,
    config: Config,
    tls: Option<Arc<Reloader>>,
    /// Cluster mode with auth on: the bootstrap admin's secret, proposed once the metadata
    /// group runs ([`Engine::bootstrap_admin_in_cluster`]).
    bootstrap: Option<Option<BootstrapSecret>>,
}

impl Broker {
    /// Loads the TLS files (if configured), then opens storage and recovers every topic. Bad
    /// TLS files fail it before storage is touched.
    pub async fn open(config: Config) -> Result<Broker> {
        let cluster_ca = config
            .cluster
            .enabled()
            .then_some(config.cluster.ca_file.as_path());
        let tls = Reloader::load_with_cluster_ca(&config.tls, cluster_ca)
            .map_err(|err| Error::invalid(format!("TLS configuration: {err}")))?;
        let runtime = tokio::runtime::Handle::current();
        let engine_config = config.clone();
        let engine = tokio::task::spawn_blocking(move || Engine::open(engine_config, runtime))
            .await
            .map_err(|err| Error::internal(format!("opening storage failed: {err}")))??;
        let mut bootstrap = None;
        if config.auth.enabled {
            let secret = BootstrapSecret::from_env_and_config(&config.auth)?;
            if config.cluster.enabled() {
                bootstrap = Some(secret);
            } else {
                engine.bootstrap_admin(secret).await?;
            }
        } else if BootstrapSecret::is_set(&config.auth) {
            tracing::warn!(
                "a bootstrap admin secret is set but authentication is off: ignoring it"
            );
        }
        Ok(Broker {
            engine,
            config,
            tls,
            bootstrap,
        })
    }

    /// The TLS configuration's reloader (SIGHUP calls its `reload`); `None` when TLS is off.
    pub fn tls_reloader(&self) -> Option<Arc<Reloader>> {
        self.tls.clone()
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Serves until `shutdown` resolves, then stops accepting, ends consumer streams, drains
    /// in-flight requests (bounded), commits what the partitions have queued and closes storage.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let Broker {
            engine,
            config,
            tls,
            bootstrap,
        } = self;
        let cluster = start_cluster(&config, &engine, &listeners, tls.clone()).await?;
        let bootstrap =
            bootstrap.map(|secret| tokio::spawn(engine.clone().bootstrap_admin_in_cluster(secret)));
        let ready = Arc::new(AtomicBool::new(true));
        let (stop_tx, stop_rx) = watch::channel(false);

        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(rapidmq_proto::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|err| Error::internal(format!("reflection: {err}")))?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(rapidmq_proto::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .map_err(|err| Error::internal(format!("reflection: {err}")))?;
        let limits = &config.limits;
        let publish_budget = PublishBudget::new(limits.max_inflight_publish_bytes);
        // Requests being handled, gRPC and REST together (`limits.max_concurrent_requests`).
        let requests = Arc::new(Semaphore::new(limits.max_concurrent_requests));
        let (messaging, admin, auth) = grpc::services(
            engine.clone(),
            limits.max_request_bytes,
            limits.max_inflight_per_stream,
            publish_budget.clone(),
            cluster.clone(),
        );

        warn_if_exposed_without_tls(&listeners, tls.is_some());
        log_auth_mode(&listeners, config.auth.enabled);
        if let Some(tls) = &tls {
            tls.spawn_poll(stop_rx.clone());
        }
        let handshake_timeout = Duration::from_millis(config.tls.handshake_timeout_ms);
        let metrics = engine.metrics().clone();
        let incoming = Acceptor::new(
            CountedListener::new(
                listeners.grpc,
                metrics.clone(),
                ConnectionSlots::new(limits.max_connections),
                Transport::Grpc,
            ),
            Protocol::Grpc,
            tls.clone(),
            handshake_timeout,
        )
        .into_stream();
        let mut grpc_stop = stop_rx.clone();
        // TCP_NODELAY is set where connections are accepted (`Counted::new`): tonic's own
        // `tcp_nodelay` applies only to listeners it binds itself.
        let grpc = tonic::transport::Server::builder()
            // One span per RPC (a PublishStream or Consume stream is one RPC), so the handler's
            // topic/subscription span and every log line inside it carry the caller's tenant.
            .trace_fn(|request| {
                tracing::info_span!("grpc", method = %request.uri().path(), tenant = tracing::field::Empty)
            })
            .initial_stream_window_size(Some(8 << 20))
            .initial_connection_window_size(Some(32 << 20))
            .max_concurrent_streams(Some(limits.max_streams_per_connection))
            // A request beyond `limits.max_concurrent_requests` is refused at once with
            // RESOURCE_EXHAUSTED, not queued.
            .layer(grpc::concurrency_limit(requests.clone()))
            // Puts the caller's `Principal` in every request's extensions, or refuses bad
            // credentials (docs/adr/0004-security.md §4).
            .layer(AuthLayer::<GrpcReject>::new(engine.auth().clone()))
            .add_service(messaging)
            .add_service(admin)
            .add_service(auth)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = grpc_stop.changed().await;
            });

        let mut http_stop = stop_rx.clone();
        let http = axum::serve(
            Acceptor::new(
                CountedListener::new(
                    listeners.http,
                    metrics,
                    ConnectionSlots::new(limits.max_connections),
                    Transport::Http,
                ),
                Protocol::Http,
                tls,
                handshake_timeout,
            ),
            http::router(
                ready.clone(),
                engine.clone(),
                &config,
                publish_budget,
                requests,
                cluster.clone(),
            )
            .layer(axum::Extension(cluster.clone()))
            .into_make_service_with_connect_info::<PeerInfo>(),
        )
        .with_graceful_shutdown(async move {
            let _ = http_stop.changed().await;
        })
        .into_future();

        let servers = async {
            let (grpc, http) = tokio::join!(grpc, http);
            if let Err(err) = grpc {
                tracing::error!(cause = %err, "gRPC server failed");
            }
            if let Err(err) = http {
                tracing::error!(cause = %err, "HTTP server failed");
            }
        };
        tokio::pin!(servers);

        tokio::select! {
            _ = &mut servers => {
                tracing::error!("a listener stopped on its own; shutting down");
            }
            _ = shutdown => {
                tracing::info!("shutdown requested: draining");
                ready.store(false, Ordering::Release);
                engine.begin_shutdown();
                let _ = stop_tx.send(true);
                if tokio::time::timeout(DRAIN_TIMEOUT, &mut servers).await.is_err() {
                    tracing::warn!(timeout = ?DRAIN_TIMEOUT, "in-flight requests did not finish in time; closing them");
                }
            }
        }
        if let Some(bootstrap) = bootstrap {
            bootstrap.abort();
        }
        if let Some(cluster) = &cluster {
            cluster.shutdown().await;
        }
        engine.shutdown().await;
        Ok(())
    }
}

/// In cluster mode, joins the cluster: its listener, the metadata group, this node's entry
/// in the node table (docs/adr/0005-clustering.md). `None` in single-node mode.
async fn start_cluster(
    config: &Config,
    engine: &Arc<Engine>,
    listeners: &Listeners,
    tls: Option<Arc<Reloader>>,
) -> Result<ClusterHandle> {
    if !config.cluster.enabled() {
        return Ok(None);
    }
    let addr = |addr: std::io::Result<SocketAddr>| {
        addr.map(|a| a.to_string())
            .map_err(|err| Error::internal(format!("listener address: {err}")))
    };
    let me = NodeInfo {
        grpc_addr: addr(listeners.grpc_addr())?,
        http_addr: addr(listeners.http_addr())?,
    };
    let tls = NodeTls::new(tls, Duration::from_millis(config.tls.handshake_timeout_ms));
    let node = ClusterNode::start(&config.cluster, tls, Arc::clone(engine), me).await?;
    // Ends by itself when the group shuts down.
    drop(node.report_to(Arc::clone(engine.metrics())));
    Ok(Some(Arc::new(node)))
}

/// Says how requests are authenticated: with auth off, that every request runs as anonymous,
/// and a warning when a listener is reachable from other hosts.
fn log_auth_mode(listeners: &Listeners, enabled: bool) {
    if enabled {
        tracing::info!("auth enabled: requests need a token or a session");
        return;
    }
    let exposed = [listeners.grpc_addr(), listeners.http_addr()]
        .into_iter()
        .flatten()
        .any(|addr| !addr.ip().is_loopback());
    if exposed {
        tracing::warn!(
            "auth disabled on a non-loopback address: anyone who can reach the ports can read, write and delete everything; enable with --auth"
        );
    } else {
        tracing::info!(
            "auth disabled: every request runs as anonymous in tenant `default`; enable with --auth"
        );
    }
}

/// Warns about each listener bound to a non-loopback address while TLS is off: whoever can
/// reach it can read the traffic.
fn warn_if_exposed_without_tls(listeners: &Listeners, tls: bool) {
    if tls {
        return;
    }
    for (listener, addr) in [
        ("gRPC", listeners.grpc_addr()),
        ("HTTP", listeners.http_addr()),
    ] {
        if let Ok(addr) = addr
            && !addr.ip().is_loopback()
        {
            tracing::warn!(
                listener,
                %addr,
                "listening on a non-loopback address without TLS: traffic travels in clear text; set tls.cert_file and tls.key_file"
            );
        }
    }
}
