//! The HTTPS listeners: TLS accept loops, per-connection request extensions, and the
//! connection-level faults (drop, reset, primary-host outage) an axum handler cannot express.
//!
//! Client certificates are *optional* at the TLS layer, as on WeChat's nginx front: a
//! connection without one is accepted, and only `/secapi/*` requests are refused (with
//! nginx's HTML 400 page) by the handlers. A certificate that does not chain to the
//! simulator's CA fails the handshake.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tower::Service;

use super::ledger::Host;
use super::pki::Pki;
use super::{SimError, SimState};

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the TLS acceptor: the generated server certificate, and an optional client
/// certificate verifier that trusts only the generated CA.
pub(crate) fn tls_acceptor(pki: &Pki) -> Result<TlsAcceptor, SimError> {
    let tls_error = |error: &dyn std::fmt::Display| SimError::Tls(error.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(pki.ca_der.clone())
        .map_err(|error| tls_error(&error))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|error| tls_error(&error))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| tls_error(&error))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![pki.server_cert_der.clone()], pki.server_key())
        .map_err(|error| tls_error(&error))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Binds a listener.
pub(crate) async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, SimError> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| SimError::Bind {
            addr,
            message: error.to_string(),
        })
}

/// What a handler learns about the connection its request came on (a request extension).
#[derive(Clone, Debug)]
pub(crate) struct ConnInfo {
    /// Which listener accepted the connection.
    pub(crate) host: Host,
    /// The verified client certificate, if the client presented one.
    pub(crate) client_cert: Option<CertificateDer<'static>>,
    /// Lets the handler close or reset the connection instead of replying.
    pub(crate) kill: Arc<KillSwitch>,
}

/// A one-way switch a handler flips to end its connection without a reply.
///
/// Hyper owns the connection, so the handler cannot close it directly. Instead the
/// connection's I/O wrapper ([`SimIo`]) fails every read and write once the switch is set;
/// hyper then abandons the connection while trying to write the (dummy) response, before a
/// single byte of it reaches the socket.
#[derive(Debug, Default)]
pub(crate) struct KillSwitch(AtomicU8);

const ALIVE: u8 = 0;
const CLOSE: u8 = 1;
const RESET: u8 = 2;

impl KillSwitch {
    /// Close the connection (TCP FIN, no TLS close_notify) instead of replying.
    pub(crate) fn close(&self) {
        self.0.store(CLOSE, Ordering::SeqCst);
    }

    /// Reset the connection (TCP RST) instead of replying.
    pub(crate) fn reset(&self) {
        self.0.store(RESET, Ordering::SeqCst);
    }
}

/// The TLS stream, wrapped so a [`KillSwitch`] can end it.
struct SimIo {
    inner: TlsStream<TcpStream>,
    kill: Arc<KillSwitch>,
}

impl SimIo {
    fn killed(&self) -> Option<io::Error> {
        match self.kill.0.load(Ordering::SeqCst) {
            ALIVE => None,
            RESET => {
                // A zero linger makes the kernel send RST instead of FIN when hyper drops
                // the socket a moment later.
                let _ = self.inner.get_ref().0.set_zero_linger();
                Some(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "simulated connection reset",
                ))
            }
            _ => Some(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "simulated connection drop",
            )),
        }
    }
}

impl AsyncRead for SimIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(error) = self.killed() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(error) = self.killed() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(error) = self.killed() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(error) = self.killed() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Accepts connections until shutdown. On the primary host during an outage, connections
/// are closed right after accept, before any TLS byte is exchanged.
pub(crate) async fn serve(
    listener: TcpListener,
    host: Host,
    tls: TlsAcceptor,
    router: Router,
    state: Arc<SimState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _peer)) => tcp,
            Err(error) => {
                // Accept errors (e.g. too many open files) are transient; back off briefly
                // rather than spinning.
                tracing::warn!(%error, "simulator accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if host == Host::Primary && state.primary_outage() {
            drop(tcp);
            continue;
        }
        tokio::spawn(connection(
            tcp,
            host,
            tls.clone(),
            router.clone(),
            shutdown.clone(),
        ));
    }
}

/// Serves one connection: TLS handshake, then HTTP/1.1 with keep-alive.
async fn connection(
    tcp: TcpStream,
    host: Host,
    tls: TlsAcceptor,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp));
    let tls_stream = tokio::select! {
        _ = shutdown.wait_for(|stop| *stop) => return,
        handshake = handshake => match handshake {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%error, "simulator TLS handshake failed");
                return;
            }
            Err(_elapsed) => return,
        },
    };
    let client_cert = tls_stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|cert| cert.clone().into_owned());
    let kill = Arc::new(KillSwitch::default());
    let info = ConnInfo {
        host,
        client_cert,
        kill: kill.clone(),
    };
    let io = TokioIo::new(SimIo {
        inner: tls_stream,
        kill,
    });
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(info.clone());
        let mut router = router.clone();
        async move { router.call(request).await }
    });
    let serving = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::select! {
        result = serving => {
            if let Err(error) = result {
                tracing::debug!(%error, "simulator connection ended with an error");
            }
        }
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}
