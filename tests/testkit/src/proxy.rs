//! An in-process TCP proxy for one link, whose faults a test changes while traffic flows.
//!
//! [`LinkProxy::start`] listens on `127.0.0.1:0` and forwards every connection it accepts to a
//! target address; clients connect to [`LinkProxy::addr`] instead of the target. [`LinkProxy::set`]
//! puts the link in one [`Fault`] at a time, at once for live connections and for new ones:
//!
//! | [`Fault`] | live connections | new connections |
//! |---|---|---|
//! | `Pass` | bytes forwarded both ways | forwarded |
//! | `Reset` | reset (RST to both ends) | accepted, then reset at once |
//! | `Blackhole` | bytes both ways read and dropped: writes succeed, nothing arrives, reads hang | accepted (the kernel completes the handshake), then hang |
//! | `OneWay(d)` | bytes in direction `d` dropped, the other direction forwarded | forwarded likewise |
//! | `Delay(t)` | every chunk forwarded `t` after it was read, in order | likewise |
//!
//! A TCP stream never has a hole in the middle, so a connection that lost bytes to a blackhole
//! or a one-way cut cannot carry on once the link heals: when the fault is lifted it is reset,
//! as a real connection is once its retransmissions time out, and the ends reconnect.
//! Dropping the proxy resets every connection it carries.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One direction of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the connecting client to the target.
    ToTarget,
    /// From the target back to the client.
    FromTarget,
}

/// What the link does to its traffic; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    Reset,
    Blackhole,
    OneWay(Direction),
    Delay(Duration),
}

impl Fault {
    /// Whether bytes travelling in `direction` are dropped.
    fn drops(self, direction: Direction) -> bool {
        self == Fault::Blackhole || self == Fault::OneWay(direction)
    }

    /// Whether the link loses bytes at all (connections that lost some are reset on healing).
    fn loses_bytes(self) -> bool {
        matches!(self, Fault::Blackhole | Fault::OneWay(_))
    }
}

/// A running proxy for one link. Dropping it stops it and resets its connections.
#[derive(Debug)]
pub struct LinkProxy {
    addr: SocketAddr,
    target: SocketAddr,
    fault: watch::Sender<Fault>,
    accept: JoinHandle<()>,
}

impl LinkProxy {
    /// Listens on `127.0.0.1:0` and forwards to `target`, passing everything.
    pub async fn start(target: SocketAddr) -> std::io::Result<LinkProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (fault, watcher) = watch::channel(Fault::Pass);
        let accept = tokio::spawn(accept_loop(listener, target, watcher));
        Ok(LinkProxy {
            addr,
            target,
            fault,
            accept,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// [`LinkProxy::addr`] as a URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where the proxy forwards to.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Puts the link in `fault`, at once for live and new connections.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// The link's current fault.
    pub fn fault(&self) -> Fault {
        *self.fault.borrow()
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        // The connections watch `fault`: its sender going away resets them.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, fault: watch::Receiver<Fault>) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(connection(client, target, fault.clone()));
            }
            // A failed accept (e.g. the peer gave up in the backlog) concerns one connection.
            Err(err) => tracing::debug!(cause = %err, "proxy accept failed"),
        }
    }
}

/// Carries one client connection until both directions close or a fault ends it.
async fn connection(mut client: TcpStream, target: SocketAddr, mut fault: watch::Receiver<Fault>) {
    let at_accept = *fault.borrow_and_update();
    match at_accept {
        Fault::Reset => return reset(&client),
        Fault::Blackhole => return hang(client, fault).await,
        _ => {}
    }
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        return reset(&client);
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let lost = AtomicBool::new(false);
    let cut = {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let to_target = pump(
            client_read,
            upstream_write,
            Direction::ToTarget,
            fault.clone(),
            &lost,
        );
        let from_target = pump(
            upstream_read,
            client_write,
            Direction::FromTarget,
            fault.clone(),
            &lost,
        );
        tokio::select! {
            _ = async { tokio::join!(to_target, from_target) } => false,
            () = until_cut(&mut fault, &lost) => true,
        }
    };
    if cut {
        reset(&client);
        reset(&upstream);
    }
}

/// Returns when the link is reset, when it heals after this connection lost bytes, or when the
/// proxy is dropped.
async fn until_cut(fault: &mut watch::Receiver<Fault>, lost: &AtomicBool) {
    while fault.changed().await.is_ok() {
        let now = *fault.borrow_and_update();
        if now == Fault::Reset || (lost.load(Ordering::Relaxed) && !now.loses_bytes()) {
            return;
        }
    }
}

/// A connection accepted while the link is blackholed: what the client sends is dropped and
/// nothing comes back, until the blackhole lifts (then it is reset, having lost bytes).
async fn hang(mut client: TcpStream, mut fault: watch::Receiver<Fault>) {
    let mut buf = [0u8; 4096];
    tokio::select! {
        _ = async { while matches!(client.read(&mut buf).await, Ok(n) if n > 0) {} } => {}
        _ = fault.wait_for(|f| *f != Fault::Blackhole) => {}
    }
    reset(&client);
}

/// Forwards one direction: reads chunks, and hands each to a writer that sends it when due
/// (now, or after the link's delay), in order. Dropped chunks mark the connection as `lost`.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    direction: Direction,
    fault: watch::Receiver<Fault>,
    lost: &AtomicBool,
) {
    let (chunks, mut due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            // No await between reading the fault and marking the loss: a change of fault is
            // seen by `until_cut` only after this.
            let now = *fault.borrow();
            if now.drops(direction) {
                lost.store(true, Ordering::Relaxed);
                continue;
            }
            let delay = match now {
                Fault::Delay(delay) => delay,
                _ => Duration::ZERO,
            };
            if chunks
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
            {
                return;
            }
        }
    };
    let write = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        // The reader saw end of stream: pass the half-close on.
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}

/// Makes the socket's close a reset (RST) rather than an orderly FIN; the owner drops it next.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    /// How long a test watches for bytes that must not arrive.
    const QUIET: Duration = Duration::from_millis(300);
    /// The bound on waiting for what must happen.
    const GUARD: Duration = Duration::from_secs(10);

    /// An echo server that counts the bytes it received.
    async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = conn.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        counter.fetch_add(n, Ordering::SeqCst);
                        if conn.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (addr, received)
    }

    async fn proxied() -> (LinkProxy, Arc<AtomicUsize>) {
        let (target, received) = echo_server().await;
        (LinkProxy::start(target).await.unwrap(), received)
    }

    async fn echo(conn: &mut TcpStream, text: &[u8]) -> Vec<u8> {
        conn.write_all(text).await.unwrap();
        let mut back = vec![0u8; text.len()];
        tokio::time::timeout(GUARD, conn.read_exact(&mut back))
            .await
            .expect("the echo came back in time")
            .unwrap();
        back
    }

    /// Nothing arrives on `conn` for [`QUIET`].
    async fn stays_silent(conn: &mut TcpStream) -> bool {
        let mut buf = [0u8; 16];
        tokio::time::timeout(QUIET, conn.read(&mut buf))
            .await
            .is_err()
    }

    /// `conn` is closed by the proxy (reset or end of stream) within [`GUARD`].
    async fn closes(conn: &mut TcpStream) -> bool {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(GUARD, conn.read(&mut buf)).await;
        matches!(read, Ok(Ok(0) | Err(_)))
    }

    async fn wait_for_count(counter: &AtomicUsize, at_least: usize) {
        let deadline = Instant::now() + GUARD;
        while counter.load(Ordering::SeqCst) < at_least {
            assert!(Instant::now() < deadline, "the target never got the bytes");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn pass_forwards_both_directions() {
        let (proxy, received) = proxied().await;
        let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(echo(&mut conn, b"hello").await, b"hello");
        assert_eq!(received.load(Ordering::SeqCst), 5);
        assert_eq!(proxy.fault(), Fault::Pass);
    }

    #[tokio::test]
    async fn reset_drops_live_connections_and_refuses_new_ones_until_healed() {
        let (proxy, _) = proxied().await;
        let mut live = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(echo(&mut live, b"before").await, b"before");
        proxy.set(Fault::Reset);
        assert!(closes(&mut live).await, "the live connection was not cut");
        let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
        let _ = refused.write_all(b"during").await;
        assert!(
            closes(&mut refused).await,
            "a new connection was let through"
        );
        proxy.set(Fault::Pass);
        let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(echo(&mut after, b"after").await, b"after");
    }

    #[tokio::test]
    async fn blackhole_drops_bytes_silently_and_connections_hang_until_healed() {
        let (proxy, received) = proxied().await;
        let mut live = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(echo(&mut live, b"ok").await, b"ok");
        proxy.set(Fault::Blackhole);
        live.write_all(b"lost").await.unwrap();
        assert!(
            stays_silent(&mut live).await,
            "bytes came back through a blackhole"
        );
        let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
        new.write_all(b"lost too").await.unwrap();
        assert!(
            stays_silent(&mut new).await,
            "a new connection got an answer"
        );
        assert_eq!(
            received.load(Ordering::SeqCst),
            2,
            "the target got dropped bytes"
        );
        proxy.set(Fault::Pass);
        assert!(
            closes(&mut live).await,
            "a connection with a hole survived the heal"
        );
        assert!(
            closes(&mut new).await,
            "a hung connection survived the heal"
        );
        let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(echo(&mut after, b"after").await, b"after");
    }

    #[tokio::test]
    async fn a_one_way_cut_drops_one_direction_and_forwards_the_other() {
        let (proxy, received) = proxied().await;
        // Replies cut: the target gets the bytes, the client hears nothing.
        let mut replies_cut = TcpStream::connect(proxy.addr()).await.unwrap();
        proxy.set(Fault::OneWay(Direction::FromTarget));
        replies_cut.write_all(b"ping").await.unwrap();
        wait_for_count(&received, 4).await;
        assert!(
            stays_silent(&mut replies_cut).await,
            "a reply crossed the cut"
        );
        // Requests cut: the target gets nothing.
        proxy.set(Fault::OneWay(Direction::ToTarget));
        let mut requests_cut = TcpStream::connect(proxy.addr()).await.unwrap();
        requests_cut.write_all(b"pong").await.unwrap();
        assert!(stays_silent(&mut requests_cut).await);
        assert_eq!(
            received.load(Ordering::SeqCst),
            4,
            "a request crossed the cut"
        );
        proxy.set(Fault::Pass);
        assert!(closes(&mut replies_cut).await);
        assert!(closes(&mut requests_cut).await);
        let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(echo(&mut after, b"after").await, b"after");
    }

    #[tokio::test]
    async fn delay_holds_every_chunk_back_in_order() {
        let (proxy, _) = proxied().await;
        let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
        let delay = Duration::from_millis(150);
        proxy.set(Fault::Delay(delay));
        let started = Instant::now();
        conn.write_all(b"one,").await.unwrap();
        conn.write_all(b"two").await.unwrap();
        let mut back = vec![0u8; 7];
        tokio::time::timeout(GUARD, conn.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, b"one,two");
        // Delayed on the way there and on the way back.
        assert!(started.elapsed() >= 2 * delay, "{:?}", started.elapsed());
        // The connection survives a delay: it lost nothing.
        proxy.set(Fault::Pass);
        assert_eq!(echo(&mut conn, b"three").await, b"three");
    }
}
