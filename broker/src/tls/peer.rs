//! What is known about the other end of a connection, computed once per connection and put in
//! every request's extensions (tonic's connect info; axum's `ConnectInfo<PeerInfo>`), for the
//! authentication layer to come (docs/adr/0004-security.md §4).

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;

use super::Acceptor;
use crate::tenant::ConnectionTenant;

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
    /// The tenant the connection counts towards (`max_connections`), shared by its requests.
    pub tenant: ConnectionTenant,
}

impl PeerInfo {
    /// Whether a password may be sent over this connection: it is encrypted, or it comes from
    /// this host (loopback). An unknown peer is neither. `allow_plaintext` is
    /// `auth.allow_plaintext_passwords`.
    pub fn may_send_passwords(&self, allow_plaintext: bool) -> bool {
        allow_plaintext
            || self.tls
            || self
                .remote
                .is_some_and(|addr| addr.ip().to_canonical().is_loopback())
    }

    /// A peer the transport told nothing about (a request served in-process).
    pub fn unknown() -> PeerInfo {
        PeerInfo {
            remote: None,
            tls: false,
            client_certificate: None,
            tenant: ConnectionTenant::default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(remote: &str, tls: bool) -> PeerInfo {
        PeerInfo {
            remote: Some(remote.parse().unwrap()),
            tls,
            client_certificate: None,
            tenant: ConnectionTenant::default(),
        }
    }

    #[test]
    fn passwords_need_tls_or_a_loopback_peer_unless_plaintext_is_allowed() {
        for loopback in [
            "127.0.0.1:5000",
            "127.9.9.9:5000",
            "[::1]:5000",
            "[::ffff:127.0.0.1]:5000",
        ] {
            assert!(
                peer(loopback, false).may_send_passwords(false),
                "{loopback}"
            );
        }
        for remote in [
            "10.0.0.7:5000",
            "[2001:db8::1]:5000",
            "[::ffff:10.0.0.7]:5000",
        ] {
            assert!(!peer(remote, false).may_send_passwords(false), "{remote}");
            assert!(
                peer(remote, true).may_send_passwords(false),
                "{remote} over TLS"
            );
            assert!(
                peer(remote, false).may_send_passwords(true),
                "{remote} allowed"
            );
        }
        assert!(!PeerInfo::unknown().may_send_passwords(false));
        assert!(PeerInfo::unknown().may_send_passwords(true));
    }
}
