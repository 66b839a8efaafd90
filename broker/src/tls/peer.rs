//! What is known about the other end of a connection, computed once per connection and put in
//! every request's extensions (tonic's connect info; axum's `ConnectInfo<PeerInfo>`), for the
//! authentication layer to come (docs/adr/0004-security.md §4).

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;

use super::Acceptor;

/// The peer of a served connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The client's address, when the socket still knows it.
    pub remote: Option<SocketAddr>,
    /// Whether the connection is encrypted.
    pub tls: bool,
    /// The leaf of the client certificate that the handshake verified against
    /// `tls.client_ca_file` (mutual TLS); `None` without one.
    pub client_certificate: Option<Arc<CertificateDer<'static>>>,
}

impl PeerInfo {
    /// A peer the transport told nothing about (a request served in-process).
    pub fn unknown() -> PeerInfo {
        PeerInfo {
            remote: None,
            tls: false,
            client_certificate: None,
        }
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Acceptor>>
    for PeerInfo
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, Acceptor>) -> PeerInfo {
        stream.io().peer_info()
    }
}
