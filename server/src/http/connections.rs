//! The accept loop: how connections are taken, bounded and closed.
//!
//! `axum::serve` holds a connection for as long as its client keeps it open, however slowly it
//! sends: a client sending a byte every few seconds was held for ever. Connections are served
//! here instead, each with hyper's HTTP/1.1 server directly, so that every one is bounded:
//!
//! - its request head must arrive within [`Config::header_read_timeout`] (hyper's own timer,
//!   which runs whenever the connection waits for a head, so it also bounds a keep-alive wait);
//! - its request bodies within [`Config::body_read_timeout`] ([`super::bodies`], which also holds
//!   every body's bytes against [`Config::max_body_memory_bytes`]);
//! - with no request in progress, it is closed once no byte moved either way for
//!   [`Config::idle_timeout`] (a client that stopped reading its answer included);
//! - at most [`Config::max_connections_per_address`] are open from one address.
//!
//! HTTP/2 is not offered: devices speak HTTP/1.1, and every bound above is written for it.
//! With [`Config::tls`], the TLS handshake (rustls, through `tokio-rustls`) is bounded by the
//! header timeout too. On shutdown the loop stops accepting, asks every connection to close
//! after its request in flight, and waits for them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::config::{Config, TlsFiles};

/// Accepts connections on `listener` and serves `router` on each until `shutdown` completes;
/// then lets each finish the request it is serving, and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: std::sync::Arc<Config>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let per_address = Arc::new(AddressCounts::default());
    // Every connection holds a receiver: its change asks it to close, and the sender's
    // `closed()` completes once every connection has dropped its receiver.
    let (closing, closing_seen) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, or a connection reset before it was taken: the
                // listener itself is fine, so go on after a moment instead of spinning.
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = AddressCounts::take(&per_address, peer.ip(), config.max_connections_per_address) else {
            tracing::debug!(%peer, "too many connections from this address: closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (router, config, tls, closing_seen) = (router.clone(), config.clone(), tls.clone(), closing_seen.clone());
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(stream, peer, router, &config, closing_seen).await,
                Some(acceptor) => {
                    // A handshake that does not finish in time is a slow head by another name.
                    match tokio::time::timeout(config.header_read_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(stream, peer, router, &config, closing_seen).await,
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    drop(closing_seen);
    closing.closed().await;
    Ok(())
}

/// Serves one connection until it ends, idles out, or the server shuts down.
async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    router: Router,
    config: &Config,
    mut closing: tokio::sync::watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched { inner: stream, activity: activity.clone() });
    let in_service = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let (router, activity) = (router.clone(), in_service.clone());
        async move {
            let _request = activity.request_started();
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            Ok::<_, Infallible>(router.oneshot(request).await.unwrap_or_else(|never| match never {}))
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(config.header_read_timeout).keep_alive(true);
    let connection = http.serve_connection(io, service);
    tokio::pin!(connection);
    let mut asked_to_close = *closing.borrow();
    if asked_to_close {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            () = activity.idle_for(config.idle_timeout) => {
                tracing::debug!(%peer, "idle connection closed");
                return;
            }
            changed = closing.changed(), if !asked_to_close => {
                asked_to_close = true;
                if changed.is_err() || *closing.borrow() {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// The open connections of each client address.
#[derive(Default)]
struct AddressCounts {
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl AddressCounts {
    /// A place for one more connection from `address`, or `None` if it has `max` open already.
    fn take(counts: &Arc<Self>, address: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut open = counts.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(address).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressSlot { counts: counts.clone(), address })
    }
}

/// One connection's place in its address's count, given back when dropped.
struct AddressSlot {
    counts: Arc<AddressCounts>,
    address: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// When a connection last moved a byte, and how many of its requests are being handled.
struct Activity {
    started: Instant,
    /// Milliseconds after `started` of the last byte read or written.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self { started: Instant::now(), last_ms: AtomicU64::new(0), in_flight: AtomicUsize::new(0) }
    }

    fn touch(&self) {
        self.last_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// Counts a request as in progress until the guard is dropped (its answer's head is ready).
    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Completes once no request is in progress and no byte moved for `idle`. A request in
    /// progress may compute for long without a byte moving (its body has its own timeout).
    async fn idle_for(&self, idle: Duration) {
        loop {
            let deadline = self.last() + idle;
            if Instant::now() >= deadline {
                if self.in_flight.load(Ordering::Relaxed) == 0 {
                    return;
                }
                tokio::time::sleep(idle).await;
            } else {
                tokio::time::sleep_until(deadline).await;
            }
        }
    }
}

struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection's stream that notes every byte it moves in its [`Activity`].
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The TLS acceptor of the certificate chain and key in `files` (PEM), with rustls's `ring`
/// provider and its safe defaults (TLS 1.2 and 1.3), offering HTTP/1.1 by ALPN.
pub fn tls_acceptor(files: &TlsFiles) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |what: &str, path: &std::path::Path, error: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what} {}: {error}", path.display()))
    };
    let chain = std::fs::read(&files.certificate_chain)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid("the certificate chain", &files.certificate_chain, &e))?;
    if chain.is_empty() {
        return Err(invalid("the certificate chain", &files.certificate_chain, &"no certificate in it"));
    }
    let key = std::fs::read(&files.private_key)?;
    let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| invalid("the private key", &files.private_key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("the TLS versions of", &files.certificate_chain, &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid("the certificate and key", &files.certificate_chain, &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
