//! TLS on both listeners (docs/adr/0004-security.md §2).
//!
//! The broker terminates TLS itself rather than through tonic's `ServerTlsConfig`, which cannot
//! change its certificate without a restart:
//! - [`Reloader`] (`reload.rs`) builds a `rustls::ServerConfig` from the `[tls]` files and swaps
//!   in a new one on SIGHUP or when the files' contents change; existing connections keep the
//!   config they were handshaken with.
//! - [`Acceptor`] (`accept.rs`) takes counted TCP connections from a listener, handshakes them
//!   concurrently, each bounded by `tls.handshake_timeout_ms`, and hands out finished
//!   [`MaybeTls`] streams, so one slow client never holds up the accept loop. It serves gRPC as
//!   a stream ([`Acceptor::into_stream`]) and HTTP as an `axum::serve::Listener`.
//! - [`MaybeTls`] (`stream.rs`) is the connection either way: plain when TLS is off.
//! - [`PeerInfo`] (`peer.rs`) is what the connection tells about its client (address, TLS, a
//!   verified client certificate); both servers put it in every request's extensions.

mod accept;
mod peer;
mod reload;
mod stream;

pub use accept::{Acceptor, Protocol};
pub use peer::PeerInfo;
pub use reload::{Reloader, TlsError};
pub use stream::MaybeTls;
