//! What every listener of the broker does to the TCP connections it accepts.

use tokio::net::TcpStream;

/// Turns Nagle's algorithm off on an accepted connection. The broker binds its listeners itself,
/// so neither tonic's nor axum's TCP_NODELAY setting reaches them; with Nagle on, a small write
/// (an ack, a delivery, an append's answer, a heartbeat) waits behind the peer's delayed ACK, up
/// to 40 ms a round trip (docs/benchmarks.md: the client tail and the cluster's publish rate).
/// `listener` names the listener in the debug log when the socket refuses.
pub(crate) fn send_small_writes_at_once(tcp: &TcpStream, listener: &str) {
    if let Err(err) = tcp.set_nodelay(true) {
        tracing::debug!(cause = %err, listener, "cannot set TCP_NODELAY on an accepted connection");
    }
}

/// Checks that `accept`, given a fresh loopback listener with one client connecting, returns
/// the accepted connection's TCP_NODELAY.
#[cfg(test)]
pub(crate) async fn assert_accepts_without_nagle<F, Fut>(accept: F)
where
    F: FnOnce(tokio::net::TcpListener) -> Fut,
    Fut: Future<Output = bool>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = tokio::spawn(TcpStream::connect(listener.local_addr().unwrap()));
    assert!(accept(listener).await, "Nagle's algorithm is off");
    drop(client.await.unwrap().unwrap());
}
