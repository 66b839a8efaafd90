//! How nodes serve and reach each other (docs/security.md "Node-to-node traffic"): mutual TLS
//! when the broker's TLS is on, plaintext (loopback only, unless `cluster.insecure`) when it is
//! off.
//!
//! With TLS on, the certificates come from the broker's one [`Reloader`], loaded with
//! `cluster.ca_file`: the node's `tls.cert_file` serves the cluster listener and is the client
//! certificate it presents to its peers; both ends accept only certificates that chain to the
//! cluster CA, and a client verifies its peer's certificate for the host of the peer's address
//! in `cluster.peers` (an IP SAN for an IP, a DNS SAN for a name). A reload (SIGHUP, the file
//! poll) applies to every node-to-node connection opened after it.
//!
//! [`NodeTls::serve`] is the listener side, [`NodeTls::channel`] the client side (the per-peer
//! channels of [`Peers`](super::Peers) and `Cluster.Propose`, through [`NodeTls::client`],
//! which also stamps the cluster id on each request).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::{Connected, Router, TcpConnectInfo};
use tonic::transport::{Channel, Endpoint, Uri};

use super::identity::ClusterIdentity;
use super::proto::cluster_client::ClusterClient;
use crate::config::peer_host;
use crate::tls::Reloader;

/// How many handshakes on the cluster listener may be in progress at once. Each is bounded by
/// the handshake timeout; the bound is high so that clients stalling their handshakes delay a
/// node's new connection only once they fill it, and open connections not at all.
const MAX_HANDSHAKES: usize = 1024;

/// Whether and how node-to-node traffic is secured, and which cluster it speaks for. Cloned into
/// every peer channel.
#[derive(Clone)]
pub struct NodeTls {
    /// `None`: plaintext.
    reloader: Option<Arc<Reloader>>,
    handshake_timeout: Duration,
    /// Stamped on every request to a peer ([`NodeTls::client`]).
    identity: ClusterIdentity,
}

/// A client of a peer's `Cluster` service: each request carries this node's cluster id.
pub type PeerClient = ClusterClient<InterceptedService<Channel, ClusterIdentity>>;

impl NodeTls {
    /// Plaintext both ways.
    pub fn plaintext() -> NodeTls {
        NodeTls {
            reloader: None,
            handshake_timeout: Duration::ZERO,
            identity: ClusterIdentity::default(),
        }
    }

    /// Mutual TLS with the configs of `reloader`, which must have been loaded with the cluster
    /// CA ([`Reloader::load_with_cluster_ca`]); `None`: plaintext. A handshake on the listener
    /// that takes longer than `handshake_timeout` is dropped.
    pub fn new(reloader: Option<Arc<Reloader>>, handshake_timeout: Duration) -> NodeTls {
        NodeTls {
            reloader,
            handshake_timeout,
            identity: ClusterIdentity::default(),
        }
    }

    /// The same, speaking for the cluster `identity` names.
    pub fn with_identity(mut self, identity: ClusterIdentity) -> NodeTls {
        self.identity = identity;
        self
    }

    /// The cluster this node speaks for.
    pub fn identity(&self) -> &ClusterIdentity {
        &self.identity
    }

    /// A client of the cluster listener at `addr` over [`NodeTls::channel`], whose requests
    /// carry this node's cluster id.
    pub fn client(&self, addr: &str, timeout: Duration) -> Result<PeerClient, String> {
        let channel = self.channel(addr, timeout)?;
        Ok(ClusterClient::with_interceptor(
            channel,
            self.identity.clone(),
        ))
    }

    /// Serves `router` on `listener` until `shutdown` resolves. With TLS, only connections whose
    /// client certificate chains to the cluster CA get through; a plaintext one fails its
    /// handshake. Without, a warning says that the listener is open to anyone.
    pub async fn serve(
        &self,
        router: Router,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), tonic::transport::Error> {
        let Some(reloader) = &self.reloader else {
            tracing::warn!(
                addr = ?listener.local_addr().ok(),
                "cluster listener is unauthenticated (TLS off): whoever reaches it can vote and write raft entries; set tls.cert_file, tls.key_file and cluster.ca_file"
            );
            let incoming = accepted(listener).map(Ok::<_, io::Error>);
            return router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await;
        };
        let (reloader, timeout) = (Arc::clone(reloader), self.handshake_timeout);
        let incoming = accepted(listener)
            .map(move |tcp| handshake(tcp, Arc::clone(&reloader), timeout))
            .buffer_unordered(MAX_HANDSHAKES)
            .filter_map(|conn| async move { conn.map(Ok::<_, io::Error>) });
        router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    }

    /// A lazy channel to the cluster listener at `addr` (`host:port`, as in `cluster.peers`):
    /// connected on first use, reconnected by tonic, each connect and each RPC bounded by
    /// `timeout`. With TLS, every connection is a fresh handshake with the current config.
    pub fn channel(&self, addr: &str, timeout: Duration) -> Result<Channel, String> {
        let bad = |err: &dyn std::fmt::Display| format!("bad peer address {addr}: {err}");
        // The connector below does the TLS, so the endpoint tonic connects to stays `http`
        // (tonic refuses an `https` endpoint without its own TLS config); requests carry the
        // `https` origin.
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|err| bad(&err))?
            .connect_timeout(timeout)
            .timeout(timeout)
            // Replies carry batches too (reads from a leader, snapshots): the same windows as
            // the listener's (`node.rs`).
            .initial_stream_window_size(super::rpc::STREAM_WINDOW)
            .initial_connection_window_size(super::rpc::CONNECTION_WINDOW);
        let Some(reloader) = &self.reloader else {
            return Ok(endpoint.connect_lazy());
        };
        let name = ServerName::try_from(peer_host(addr).to_string()).map_err(|err| bad(&err))?;
        let origin: Uri = format!("https://{addr}").parse().map_err(|err| bad(&err))?;
        let (reloader, addr) = (Arc::clone(reloader), addr.to_string());
        let connector = tower::service_fn(move |_: Uri| {
            let (reloader, name, addr) = (Arc::clone(&reloader), name.clone(), addr.clone());
            async move {
                let config = reloader
                    .cluster_client_config()
                    .ok_or_else(|| io::Error::other("no cluster CA loaded (cluster.ca_file)"))?;
                let tcp = TcpStream::connect(&addr).await?;
                tcp.set_nodelay(true)?;
                let tls = TlsConnector::from(config).connect(name, tcp).await?;
                Ok::<_, io::Error>(TokioIo::new(tls))
            }
        });
        Ok(endpoint
            .origin(origin)
            .connect_with_connector_lazy(connector))
    }
}

/// The connections `listener` accepts, each with TCP_NODELAY set: replicated publishes wait on
/// small answers (an append's, a heartbeat's, a forwarded batch's).
fn accepted(listener: TcpListener) -> impl futures::Stream<Item = TcpStream> {
    TcpListenerStream::new(listener).filter_map(|accepted| async move {
        let tcp = accepted
            .inspect_err(|err| tracing::debug!(cause = %err, "cluster accept failed"))
            .ok()?;
        crate::net::send_small_writes_at_once(&tcp, "cluster");
        Some(tcp)
    })
}

/// Handshakes one connection to the cluster listener; `None` when it failed or timed out.
async fn handshake(
    tcp: TcpStream,
    reloader: Arc<Reloader>,
    timeout: Duration,
) -> Option<NodeConnection> {
    let peer = tcp.peer_addr().ok();
    let Some(config) = reloader.cluster_server_config() else {
        tracing::error!("cluster listener without a cluster CA loaded; refusing connections");
        return None;
    };
    match tokio::time::timeout(timeout, TlsAcceptor::from(config).accept(tcp)).await {
        Ok(Ok(tls)) => Some(NodeConnection(Box::new(tls))),
        Ok(Err(err)) => {
            tracing::warn!(?peer, cause = %err, "cluster TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::warn!(?peer, ?timeout, "cluster TLS handshake timed out");
            None
        }
    }
}

/// A connection to the cluster listener after its handshake.
struct NodeConnection(Box<TlsStream<TcpStream>>);

impl Connected for NodeConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for NodeConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().0.as_mut()).poll_read(cx, buf)
    }
}

impl AsyncWrite for NodeConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().0.as_mut()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().0.as_mut()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().0.as_mut()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().0.as_mut()).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_small_writes_at_once() {
        crate::net::assert_accepts_without_nagle(|listener| async move {
            let mut incoming = std::pin::pin!(accepted(listener));
            incoming
                .next()
                .await
                .expect("a connection")
                .nodelay()
                .unwrap()
        })
        .await;
    }
}
