//! The accept path of every etdi HTTP endpoint: each accepted TCP socket
//! gets `TCP_NODELAY` before anything is read from or written to it.
//!
//! Without it, an answer written in more than one segment (an SSE stream's
//! headers, then its events) waits for the client's delayed acknowledgement,
//! about 40 ms on Linux, on every call of a kept-alive connection, while the
//! CPU sits idle: Nagle's algorithm holds the second segment back until the
//! first is acknowledged. `axum::serve` on a bare `TcpListener` leaves the
//! option off. [`TcpAccept`] is the plain listener; [`crate::tls::TlsListener`]
//! sets the option the same way, before the handshake.

use std::net::SocketAddr;
use std::time::Duration;

use axum::serve::Listener;
use tokio::net::{TcpListener, TcpStream};

/// Turns off Nagle's algorithm on `stream`. A failure is logged, not
/// returned: the connection still works, only slower.
pub fn set_nodelay(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::warn!(error = %e, "could not set TCP_NODELAY on an accepted connection");
    }
}

/// A plain TCP listener for [`axum::serve()`] that sets `TCP_NODELAY` on
/// every accepted connection. [`crate::http::serve_http`] and `etdi proxy`
/// accept through it; a consumer serving [`crate::http::router`] with their
/// own `axum::serve` should too.
#[derive(Debug)]
pub struct TcpAccept {
    inner: TcpListener,
}

impl TcpAccept {
    /// Accepts on `listener`.
    pub fn new(listener: TcpListener) -> Self {
        TcpAccept { inner: listener }
    }

    /// Binds `addr` and accepts on it.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(TcpAccept::new(TcpListener::bind(addr).await?))
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl From<TcpListener> for TcpAccept {
    fn from(listener: TcpListener) -> Self {
        TcpAccept::new(listener)
    }
}

impl Listener for TcpAccept {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    set_nodelay(&stream);
                    return (stream, addr);
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off
                    // instead of spinning (axum's own listener does the
                    // same).
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
