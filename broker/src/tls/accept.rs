//! Accepting connections on either listener: TLS handshakes run concurrently beside the accept
//! loop, each bounded by `tls.handshake_timeout_ms`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::{MaybeTls, Reloader};
use crate::observability::connections::{Counted, CountedListener};

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a plaintext HTTP/1 request to a TLS port is answered with before the connection closes.
const PLAINTEXT_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: 37\r\n\r\nthis port requires TLS: use https://\n";

/// Which listener an [`Acceptor`] serves: it picks the ALPN protocols and how a plaintext
/// client is turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/2 only; a plaintext client is closed.
    Grpc,
    /// HTTP/2 and HTTP/1.1; a plaintext client is answered `400` before closing.
    Http,
}

/// Hands out the connections of one listener, plain when TLS is off, otherwise only those
/// whose handshake finished in time.
pub struct Acceptor {
    inner: CountedListener,
    protocol: Protocol,
    tls: Option<Arc<Reloader>>,
    handshake_timeout: Duration,
    handshakes: JoinSet<Option<(MaybeTls, SocketAddr)>>,
}

impl Acceptor {
    pub fn new(
        inner: CountedListener,
        protocol: Protocol,
        tls: Option<Arc<Reloader>>,
        handshake_timeout: Duration,
    ) -> Acceptor {
        Acceptor {
            inner,
            protocol,
            tls,
            handshake_timeout,
            handshakes: JoinSet::new(),
        }
    }

    /// The next ready connection. Cancel-safe: a handshake in progress carries on in the
    /// `JoinSet` and is handed out by a later call.
    pub async fn accept(&mut self) -> (MaybeTls, SocketAddr) {
        loop {
            tokio::select! {
                (stream, addr) = axum::serve::Listener::accept(&mut self.inner) => {
                    let Some(tls) = &self.tls else {
                        return (MaybeTls::Plain(stream), addr);
                    };
                    self.handshakes.spawn(handshake(
                        stream,
                        addr,
                        tls.server_config(self.protocol),
                        self.protocol,
                        self.handshake_timeout,
                    ));
                }
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(conn)) = done {
                        return conn;
                    }
                }
            }
        }
    }

    /// The connections as the stream tonic's `serve_with_incoming_shutdown` takes. It never
    /// ends and never yields an error: failed handshakes are logged and skipped.
    pub fn into_stream(self) -> impl Stream<Item = io::Result<MaybeTls>> + Send + 'static {
        futures::stream::unfold(self, |mut acceptor| async move {
            let (io, _) = acceptor.accept().await;
            Some((Ok(io), acceptor))
        })
    }
}

impl axum::serve::Listener for Acceptor {
    type Io = MaybeTls;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        Acceptor::accept(self).await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Handshakes one connection; `None` when it failed, timed out or was not TLS at all.
async fn handshake(
    stream: Counted,
    addr: SocketAddr,
    config: Arc<ServerConfig>,
    protocol: Protocol,
    timeout: Duration,
) -> Option<(MaybeTls, SocketAddr)> {
    let attempt = async {
        let mut first = [0u8; 1];
        if stream.peek(&mut first).await? == 0 {
            return Ok(None);
        }
        if first[0] != TLS_HANDSHAKE_RECORD {
            refuse_plaintext(stream, protocol).await;
            tracing::debug!(%addr, ?protocol, "plaintext connection to a TLS port refused");
            return Ok(None);
        }
        let tls = TlsAcceptor::from(config).accept(stream).await?;
        Ok::<_, io::Error>(Some(MaybeTls::Tls(Box::new(tls))))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(Some(conn))) => Some((conn, addr)),
        Ok(Ok(None)) => None,
        Ok(Err(err)) => {
            tracing::debug!(%addr, ?protocol, cause = %err, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%addr, ?protocol, ?timeout, "TLS handshake timed out");
            None
        }
    }
}

/// Tells a plaintext HTTP client why it is refused; a gRPC client is simply closed (it would
/// not read an HTTP/1 answer). The request is read and dropped after answering, so closing
/// does not reset the connection before the client reads the answer.
async fn refuse_plaintext(mut stream: Counted, protocol: Protocol) {
    if protocol == Protocol::Grpc {
        return;
    }
    if stream.write_all(PLAINTEXT_ANSWER).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 64 << 10 {
        match stream.read(&mut sink).await {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_answer_declares_its_length() {
        let (_, body) = std::str::from_utf8(PLAINTEXT_ANSWER)
            .unwrap()
            .split_once("\r\n\r\n")
            .unwrap();
        assert!(
            std::str::from_utf8(PLAINTEXT_ANSWER)
                .unwrap()
                .contains(&format!("content-length: {}\r\n", body.len()))
        );
    }

    mod peer {
        use rcgen::{
            BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        };
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        use tokio::net::TcpListener;

        use super::*;
        use crate::config::{ClientAuth, TlsConfig};
        use crate::observability::Transport;
        use crate::observability::connections::ConnectionSlots;
        use crate::observability::metrics::Metrics;

        fn leaf(
            issuer: &Issuer<'_, KeyPair>,
            names: &[&str],
            usage: ExtendedKeyUsagePurpose,
        ) -> (String, String) {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let mut params = CertificateParams::new(names).unwrap();
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        }

        #[tokio::test]
        async fn a_verified_client_certificate_reaches_the_peer_info() {
            let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let ca_key = KeyPair::generate().unwrap();
            let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
            let issuer = Issuer::new(ca, ca_key);
            let (server_cert, server_key) =
                leaf(&issuer, &["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
            let (client_cert, client_key) = leaf(&issuer, &[], ExtendedKeyUsagePurpose::ClientAuth);

            let dir = tempfile::tempdir().unwrap();
            let path = |name: &str, contents: &str| {
                let path = dir.path().join(name);
                std::fs::write(&path, contents).unwrap();
                path
            };
            let settings = TlsConfig {
                cert_file: path("cert.pem", &server_cert),
                key_file: path("key.pem", &server_key),
                client_ca_file: path("ca.pem", &ca_pem),
                client_auth: ClientAuth::Optional,
                ..TlsConfig::default()
            };
            let reloader = Reloader::load(&settings).unwrap();

            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let metrics = Arc::new(Metrics::new(true, 10, Duration::from_secs(1)));
            let mut acceptor = Acceptor::new(
                CountedListener::new(listener, metrics, ConnectionSlots::new(4), Transport::Grpc),
                Protocol::Grpc,
                reloader,
                Duration::from_secs(10),
            );

            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
                .unwrap();
            let client_leaf = CertificateDer::from_pem_slice(client_cert.as_bytes()).unwrap();
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![client_leaf.clone()],
                PrivateKeyDer::from_pem_slice(client_key.as_bytes()).unwrap(),
            )
            .unwrap();
            let client = tokio::spawn(async move {
                let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(ServerName::try_from("localhost").unwrap(), tcp)
                    .await
                    .unwrap()
            });

            let (conn, _) = tokio::time::timeout(Duration::from_secs(30), acceptor.accept())
                .await
                .expect("handshake in time");
            let peer = conn.peer_info();
            assert!(peer.tls);
            assert_eq!(peer.remote.map(|a| a.ip()), Some(addr.ip()));
            assert_eq!(peer.client_certificate.as_deref(), Some(&client_leaf));
            drop(client.await.unwrap());
        }
    }
}
