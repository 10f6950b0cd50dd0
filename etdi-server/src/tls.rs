//! HTTPS and mutual TLS for the Streamable HTTP transport, on rustls.
//!
//! [`TlsListener`] is an axum listener: a background task accepts TCP
//! connections and runs each TLS handshake in its own task, with a time
//! limit and a bound on handshakes in flight, so a slow or silent client
//! cannot stall the others. Completed connections are handed to axum, and
//! the client certificate (when the rustls configuration asked for one,
//! e.g. etdi-auth's `MtlsServerConfigBuilder`) travels with each request as
//! [`TlsPeer`]. The HTTP auth layer then passes the certificate to the
//! token verifier (RFC 8705 certificate-bound tokens) or, when
//! [`crate::BearerAuth::accept_client_certificates`] is on, takes the
//! certificate's identity as the principal. Every accepted socket gets
//! `TCP_NODELAY` before the handshake (see [`crate::listener`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rmcp::ServerHandler;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::ServeError;
use crate::http::{HttpOptions, router};
use crate::server::SecureServer;

/// Bounds of the TLS accept loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsLimits {
    /// Longest time a client may take to complete the handshake (default
    /// 10 s).
    pub handshake_timeout: Duration,
    /// Most handshakes in progress at once (default 256); further TCP
    /// connections wait to be accepted.
    pub max_handshakes: usize,
}

impl Default for TlsLimits {
    fn default() -> Self {
        TlsLimits {
            handshake_timeout: Duration::from_secs(10),
            max_handshakes: 256,
        }
    }
}

/// A TLS listener for [`axum::serve()`].
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl TlsListener {
    /// Serves TLS with `config` on `tcp`.
    pub fn new(
        tcp: TcpListener,
        config: Arc<tokio_rustls::rustls::ServerConfig>,
        limits: TlsLimits,
    ) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(limits.max_handshakes.max(1));
        let acceptor = TlsAcceptor::from(config);
        let permits = Arc::new(Semaphore::new(limits.max_handshakes.max(1)));
        tokio::spawn(async move {
            loop {
                // Stop accepting when axum is gone.
                if tx.is_closed() {
                    return;
                }
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (tcp, addr) = match tcp.accept().await {
                    Ok(v) => v,
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // instead of spinning.
                        tracing::warn!(error = %e, "TLS listener accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Before the handshake, whose flights are small writes too.
                crate::listener::set_nodelay(&tcp);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await
                    {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept task ended; never return a connection again.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The TLS peer of a request: its address and, when it presented one, the
/// verified end-entity certificate (DER).
#[derive(Debug, Clone)]
pub struct TlsPeer {
    /// Remote address.
    pub addr: SocketAddr,
    /// The client certificate, as verified during the handshake.
    pub certificate: Option<Arc<[u8]>>,
}

impl TlsPeer {
    fn of(stream: &TlsStream<TcpStream>, addr: SocketAddr) -> Self {
        let (_, conn) = stream.get_ref();
        TlsPeer {
            addr,
            certificate: conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| Arc::from(c.as_ref())),
        }
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for TlsPeer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        TlsPeer::of(stream.io(), *stream.remote_addr())
    }
}

impl crate::listener::PeerInfo for TlsStream<TcpStream> {
    type Info = TlsPeer;
    fn peer_info(&self, addr: SocketAddr) -> TlsPeer {
        TlsPeer::of(self, addr)
    }
}

/// Serves `server` over HTTPS on `listener` (see [`crate::http::router`]
/// for the routes and authentication).
pub async fn serve_https<H>(
    server: SecureServer<H>,
    listener: TlsListener,
    options: HttpOptions,
) -> Result<(), ServeError>
where
    H: ServerHandler + Send + Sync + 'static,
{
    let limits = options.connections;
    let app = router(server, options).map_err(ServeError::Build)?;
    crate::listener::serve(listener, app, limits, std::future::pending())
        .await
        .map_err(|e| ServeError::Io(e.to_string()))
}
