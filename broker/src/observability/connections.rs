//! Counting and bounding open connections: a stream wrapper that holds the `connections` gauge
//! up, and one of its listener's `limits.max_connections` slots, while it lives, for the gRPC
//! incoming stream and the HTTP listener. A connection accepted when every slot is taken is
//! closed at once.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::metrics::{Metrics, Transport};

/// An accepted connection (gRPC or HTTP), counted in `rapidmq_connections` until it is dropped.
pub struct Counted {
    inner: TcpStream,
    metrics: Arc<Metrics>,
    transport: Transport,
    _slot: OwnedSemaphorePermit,
}

/// The open connections one listener may have.
#[derive(Debug, Clone)]
pub struct ConnectionSlots(Arc<Semaphore>);

impl ConnectionSlots {
    pub fn new(max: usize) -> ConnectionSlots {
        ConnectionSlots(Arc::new(Semaphore::new(max)))
    }

    /// Counts `stream` as open, or closes it when the listener is full.
    pub fn admit(
        &self,
        stream: TcpStream,
        metrics: &Arc<Metrics>,
        transport: Transport,
    ) -> Option<Counted> {
        match self.0.clone().try_acquire_owned() {
            Ok(slot) => Some(Counted::new(stream, metrics.clone(), transport, slot)),
            Err(_) => {
                tracing::debug!(
                    ?transport,
                    "connection refused: limits.max_connections reached"
                );
                None
            }
        }
    }
}

impl Counted {
    fn new(
        inner: TcpStream,
        metrics: Arc<Metrics>,
        transport: Transport,
        slot: OwnedSemaphorePermit,
    ) -> Counted {
        crate::net::send_small_writes_at_once(&inner, "client");
        metrics.connection_opened(transport);
        Counted {
            inner,
            metrics,
            transport,
            _slot: slot,
        }
    }
}

impl Counted {
    /// Reads the first bytes without consuming them (to tell TLS from plaintext).
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.peek(buf).await
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.metrics.connection_closed(self.transport);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Counted {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// A listener handing out counted connections (to axum directly, or to `tls::Acceptor`).
pub struct CountedListener {
    inner: TcpListener,
    metrics: Arc<Metrics>,
    slots: ConnectionSlots,
    transport: Transport,
}

impl CountedListener {
    pub fn new(
        inner: TcpListener,
        metrics: Arc<Metrics>,
        slots: ConnectionSlots,
        transport: Transport,
    ) -> CountedListener {
        CountedListener {
            inner,
            metrics,
            slots,
            transport,
        }
    }
}

impl axum::serve::Listener for CountedListener {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            if let Some(counted) = self.slots.admit(stream, &self.metrics, self.transport) {
                return (counted, addr);
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_small_writes_at_once() {
        crate::net::assert_accepts_without_nagle(|listener| async move {
            let (stream, _) = listener.accept().await.unwrap();
            let metrics = Arc::new(Metrics::new(true, 10, Duration::from_secs(1)));
            let counted = ConnectionSlots::new(1)
                .admit(stream, &metrics, Transport::Grpc)
                .expect("a free slot");
            counted.inner.nodelay().unwrap()
        })
        .await;
    }
}
