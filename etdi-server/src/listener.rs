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

/// Bounds on connections, before any request is read: what an
/// unauthenticated client can make the server hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// Most connections open at once (default 16,384; never more than the
    /// process's file-descriptor limit allows, less a reserve for files,
    /// the audit log and outbound connections). One more is answered
    /// `503` and closed.
    pub max_connections: usize,
    /// Longest time a client may take to send a request's headers, and
    /// longest a kept-alive connection may sit idle between requests
    /// (default 10 s); then the connection is closed.
    pub header_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 16_384,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

impl ConnectionLimits {
    /// These limits with `max_connections` set.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// These limits with `header_read_timeout` set.
    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        self.header_read_timeout = d;
        self
    }
}

/// File descriptors kept free of connections for everything else.
const FD_RESERVE: u64 = 256;

/// Raises this process's soft limit on open files to its hard limit (many
/// systems start services at 1,024, which 1,030 idle sockets exhaust) and
/// returns the limit now in force. Called by [`serve`]; harmless to call
/// again.
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current != now.maximum {
        let raised = Rlimit {
            current: now.maximum,
            maximum: now.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "could not raise the open-file limit");
        }
    }
    // `None` is "unlimited".
    Some(getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX))
}

/// What a connection tells its requests about its peer (as axum's
/// `ConnectInfo`).
pub trait PeerInfo: Send + 'static {
    /// The value inserted into each request as `ConnectInfo<Info>`.
    type Info: Clone + Send + Sync + 'static;
    /// The information of this connection from `addr`.
    fn peer_info(&self, addr: SocketAddr) -> Self::Info;
}

impl PeerInfo for TcpStream {
    type Info = SocketAddr;
    fn peer_info(&self, addr: SocketAddr) -> SocketAddr {
        addr
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets the
/// requests in progress finish (the caller bounds how long). Unlike
/// `axum::serve`, connections are bounded ([`ConnectionLimits`]): a client
/// that sends no complete request head within the header timeout, or sits
/// idle that long between requests, is disconnected, and past
/// `max_connections` a new connection gets `503` and is closed. The
/// soft file-descriptor limit is raised to the hard one first
/// ([`raise_fd_limit`]). Each request carries `ConnectInfo` of its peer.
pub async fn serve<L>(
    mut listener: L,
    app: axum::Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
    L::Io: PeerInfo,
{
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt;

    let fds = raise_fd_limit().unwrap_or(1024);
    let cap = usize::try_from(fds.saturating_sub(FD_RESERVE))
        .unwrap_or(usize::MAX)
        .clamp(1, limits.max_connections.max(1));
    let slots = Arc::new(tokio::sync::Semaphore::new(cap));
    let (closing, _) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, addr) = tokio::select! {
            conn = listener.accept() => conn,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Over the cap: say so and close, without holding the socket.
            tracing::warn!(%addr, cap, "connection refused: too many connections");
            tokio::spawn(async move {
                let mut io = io;
                let refusal = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: 21\r\n\r\ntoo many connections\n";
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    io.write_all(refusal).await?;
                    io.shutdown().await
                })
                .await;
            });
            continue;
        };
        let info = io.peer_info(addr);
        let app = app.clone();
        let mut closing = closing.subscribe();
        tokio::spawn(async move {
            let _slot = slot;
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    use tower::ServiceExt;
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(info.clone()));
                    app.clone().oneshot(req)
                });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%addr, error = %e, "connection ended");
                    }
                    return;
                }
                _ = closing.wait_for(|c| *c) => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
    // Stop: no new connections; every open one finishes its request in
    // progress and closes.
    let _ = closing.send(true);
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}
