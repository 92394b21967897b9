//! Wiring: the [`router`] over an [`AppState`], and [`Application`], which binds the port
//! and serves until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::Config;
use crate::error::log_server_errors;
use crate::routes;
/// Re-exported where the wiring is, for callers that build an [`Application`] from a state.
pub use crate::state::AppState;
use crate::store::StoreError;
use crate::tls::inspect::{TlsLoadError, server_config};
use crate::wechat::WechatSetupError;

/// The whole HTTP surface: `/healthz`, `/readyz`, the JSON API under `/api/v1`, and the
/// built cashier app for every other path.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.server.body_limit_bytes;
    let app_dir = state.config.server.app_dir.clone();
    Router::new()
        .merge(routes::health::router())
        .merge(routes::metrics::router())
        .merge(routes::api_router())
        .merge(app_router(&app_dir))
        // Layers apply bottom-up: tracing sees every request first; the error logger sees the
        // final response; the body limit makes body extractors reject oversized bodies with
        // 413 (and `ApiJson` turns that into an ErrorBody). Tracing's own failure log is
        // off because `log_server_errors` already logs each 5xx once, with its cause.
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(close_after_refused_body))
        .layer(axum::middleware::from_fn(log_server_errors))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                .on_failure(()),
        )
        .with_state(state)
}

/// Adds `Connection: close` to a 413 answered over HTTP/1.x. The refused body was never
/// read, so the server drops the connection after answering; without the header a client
/// pools it, and its next request on it races the close and fails (`IncompleteMessage` in
/// hyper, a network error in a browser). RFC 9112 §9.6: a server that closes says so.
/// HTTP/2 refuses a body per stream and keeps the connection, and forbids the header.
async fn close_after_refused_body(request: Request, next: Next) -> Response {
    let http1 = request.version() < axum::http::Version::HTTP_2;
    let mut response = next.run(request).await;
    if http1 && response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Serves the built app from `app_dir`, answering unknown paths with `index.html` so that
/// the app's own routes survive a reload. Without a built app, a page explains how to build
/// it.
///
/// A file's precompressed copy (`NAME.br`, `NAME.gz`, which a release build writes:
/// `scripts/precompress`) is sent as it is to a browser that accepts its encoding: brotli at
/// its best level, too slow to run per request, makes the wasm a fifth smaller than on the
/// fly. Any other file is compressed on the fly (brotli or gzip, as the browser accepts):
/// the wasm shrinks to about a third, and since hashed assets are cached for a year
/// ([`cache_control`]) each tablet asks for them once per release, so any `app_dir` (a
/// release build or `trunk build`) benefits without a build step.
fn app_router(app_dir: &Path) -> Router<AppState> {
    let index = app_dir.join("index.html");
    if index.is_file() {
        let files = ServeDir::new(app_dir)
            .precompressed_br()
            .precompressed_gzip()
            .fallback(
                ServeFile::new(index)
                    .precompressed_br()
                    .precompressed_gzip(),
            );
        Router::new()
            .fallback_service(files)
            .layer(axum::middleware::from_fn(cache_control))
            .layer(CompressionLayer::new().br(true).gzip(true))
    } else {
        tracing::warn!(
            app_dir = %app_dir.display(),
            "the cashier app is not built; `/` explains how to build it"
        );
        Router::new().fallback(app_not_built)
    }
}

/// Sets `Cache-Control` on the app's files: Trunk's content-hashed assets (a name ending in
/// `-` and the hash in hex, like `paycode-app-b3aceb16c2715634_bg.wasm`) never change, so a
/// browser keeps them a year without asking; everything else (`index.html`, `sw.js`, the
/// manifest, the app's own routes) is revalidated on every load, so a new release is seen
/// at once.
async fn cache_control(request: Request, next: Next) -> Response {
    let immutable = is_hashed_asset(request.uri().path());
    let mut response = next.run(request).await;
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        let value = if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    response
}

/// The fewest hex digits taken as a content hash. Trunk 0.21 writes its 64-bit hash with
/// `{:x}` (`pipelines/mod.rs`), without leading zeros: 16 digits, fewer in one build of
/// sixteen (`paycode-app-3b3bc41992fe9ff`), under 8 in one of about four billion.
const MIN_HASH_DIGITS: usize = 8;

/// Whether `path` names a Trunk asset with a content hash in its name.
pub fn is_hashed_asset(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    let stem = name.split('.').next().unwrap_or_default();
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(base, hash)| {
        !base.is_empty()
            && (MIN_HASH_DIGITS..=16).contains(&hash.len())
            && hash.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

const APP_NOT_BUILT_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Paycode: the cashier app is not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>Paycode proxy is running</h1>
<p>The cashier app has not been built yet, so there is nothing to show here.</p>
<p>Build it with <code>scripts/demo</code> (builds the app, then starts the proxy in demo mode),
or with <code>trunk build --release</code> in the repository root, then point
<code>server.app_dir</code> in <code>paycode.toml</code> at the resulting <code>dist/</code>
directory and restart the proxy.</p>
<p>The JSON API is available under <code>/api/v1</code>; <code>/healthz</code> and
<code>/readyz</code> report the service's health.</p>
</body>
</html>
"#;

async fn app_not_built(uri: Uri) -> impl IntoResponse {
    let status = if uri.path() == "/" || uri.path() == "/index.html" {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    (status, Html(APP_NOT_BUILT_PAGE))
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The store could not be opened or migrated.
    #[error("cannot open the store")]
    Store(#[from] StoreError),
    /// The WeChat Pay client could not be set up.
    #[error(transparent)]
    Wechat(#[from] WechatSetupError),
    /// A store does not fit the configured accounts.
    #[error("a store does not fit the configuration")]
    Binding(#[from] crate::stores::BindingError),
    /// The serving certificate (`[server.tls]`) cannot be used.
    #[error("server.tls: cannot use the certificate")]
    Tls(#[from] TlsLoadError),
    /// The CA page (`server.tls.ca_listen`) cannot offer `server.tls.ca_pem`.
    #[error("server.tls.ca_pem: {0}")]
    CaPage(String),
    /// Another live proxy on the PostgreSQL database runs under this `[server] instance`.
    #[error(transparent)]
    Instance(#[from] crate::notify::InstanceClaimError),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}")]
    Bind {
        /// The configured address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The proxy, bound to its port and ready to serve.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    ca_page: Option<(TcpListener, Router)>,
    state: AppState,
}

impl Application {
    /// Opens the store, binds its stores to the configured accounts
    /// ([`stores::bind_at_start`](crate::stores::bind_at_start)), builds the state and binds
    /// `server.listen` (port 0 picks a free port; tests read it back with
    /// [`Application::port`]).
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let store = crate::store::connect(&config.store).await?;
        crate::stores::bind_at_start(&config, store.as_ref()).await?;
        let state = AppState::new(Arc::new(config), store)?;
        Application::build_with_state(state).await
    }

    /// Binds `server.listen` for an already built state (demo mode and tests that need a
    /// handle on the state before serving). On PostgreSQL it first claims the instance's
    /// name on the database ([`Coordination::claim_instance`](crate::notify::Coordination::claim_instance)),
    /// waiting up to [`instance_claim_wait`] for a previous run to go away.
    pub async fn build_with_state(state: AppState) -> Result<Application, StartupError> {
        if let Some(coordination) = &state.coordination {
            coordination
                .claim_instance(instance_claim_wait(&state.config))
                .await?;
        }
        let configured = state.config.server.listen;
        let bind_error = |source| StartupError::Bind {
            address: configured,
            source,
        };
        let server = &state.config.server;
        let tls = match &server.tls {
            Some(tls) => Some(server_config(&tls.cert_pem, &tls.key_pem)?),
            None => None,
        };
        let listener = TcpListener::bind(configured).await.map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        let ca_page = match server
            .tls
            .as_ref()
            .and_then(|tls| tls.ca_listen.zip(tls.ca_pem.as_ref()))
        {
            Some((ca_listen, ca_pem)) => {
                let pem = std::fs::read_to_string(ca_pem).map_err(|error| {
                    StartupError::CaPage(format!("cannot read {}: {error}", ca_pem.display()))
                })?;
                let app_url = crate::tls::app_url(server, address.port());
                let router = crate::tls::ca_page::router(&pem, Some(app_url))
                    .map_err(StartupError::CaPage)?;
                let ca_listener =
                    TcpListener::bind(ca_listen)
                        .await
                        .map_err(|source| StartupError::Bind {
                            address: ca_listen,
                            source,
                        })?;
                Some((ca_listener, router))
            }
            None => None,
        };
        if let Some(warning) = crate::state::plain_http_warning(&state.config) {
            tracing::warn!("SERVING PLAIN HTTP ON THE NETWORK: {warning}");
        }
        Ok(Application {
            listener,
            address,
            tls,
            ca_page,
            state,
        })
    }

    /// The address of the plain-HTTP CA page, when `server.tls.ca_listen` is set.
    pub fn ca_page_address(&self) -> Option<SocketAddr> {
        self.ca_page
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// `https` when serving TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The address actually bound.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The state the handlers will see.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes the requests in flight.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Resumes unfinished payments, then serves until `shutdown` completes. On shutdown it
    /// finishes the requests in flight, lets WeChat calls in flight finish and commit, and
    /// leaves pending payments in the store for the next start.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let engine = self.state.engine.clone();
        let stop = CancellationToken::new();
        // Listen before resuming, so that nothing another proxy commits meanwhile is missed.
        let coordination = self.state.coordination.clone();
        let listening = coordination.clone().map(|coordination| {
            let (engine, stop) = (engine.clone(), stop.clone());
            tokio::spawn(async move { coordination.listen(engine, stop).await })
        });
        engine.start().await.map_err(std::io::Error::other)?;
        tracing::info!(
            address = %self.address,
            scheme = self.scheme(),
            instance = %self.state.instance.name,
            "paycode-proxy listening"
        );
        let stopping = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            stopping.cancel();
        });
        if self.state.config.books.daily_run {
            let settings = crate::books::daily::DailySettings::new(
                &self.state.config.books,
                &self.state.instance.run_id,
            );
            let (books, stop) = (self.state.books.clone(), stop.clone());
            tokio::spawn(async move { crate::books::daily::run(books, settings, stop).await });
        }
        if let Some((listener, ca_router)) = self.ca_page {
            let stop = stop.clone();
            tracing::info!(address = ?listener.local_addr().ok(), "offering the CA certificate over plain HTTP");
            tokio::spawn(async move {
                let served = axum::serve(listener, ca_router)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
                if let Err(error) = served {
                    tracing::error!(%error, "the CA page stopped");
                }
            });
        }
        let app = router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let served = match self.tls {
            Some(tls) => {
                let listener = crate::tls::listener::TlsListener::new(self.listener, tls)?
                    // `tap_io` gives the connection's peer address to `ConnectInfo`.
                    .tap_io(|_| {});
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
            }
            None => {
                axum::serve(self.listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
            }
        };
        engine.shutdown().await;
        if let Some(listening) = listening {
            // `stop` is cancelled: the listener has returned or is about to.
            let _ = listening.await;
        }
        if let Some(coordination) = coordination {
            coordination.pool().close().await;
        }
        tracing::info!("stopped");
        served
    }
}

/// How long a start waits for another session to free its instance name: `[leases]
/// duration` (10 s by default; a killed proxy's payments are taken over after it too), and at
/// least one second, enough for PostgreSQL to see the socket of a killed process close.
pub fn instance_claim_wait(config: &Config) -> std::time::Duration {
    config
        .leases
        .duration
        .max(std::time::Duration::from_secs(1))
}

/// Completes on Ctrl-C or, on Unix, SIGTERM (what `docker stop` and systemd send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::DefaultBodyLimit;
    use axum::http::{Request, StatusCode, Version, header};
    use tower::ServiceExt;

    use super::{close_after_refused_body, is_hashed_asset};
    use crate::extract::ApiJson;

    #[tokio::test]
    async fn a_refused_body_closes_an_http1_connection_and_nothing_else_does() {
        // Arrange
        async fn accept(ApiJson(_): ApiJson<serde_json::Value>) {}
        let router = axum::Router::new()
            .route("/", axum::routing::post(accept))
            .layer(DefaultBodyLimit::max(1024))
            .layer(axum::middleware::from_fn(close_after_refused_body));
        let post = |version: Version, body: String| {
            Request::post("/")
                .version(version)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap()
        };
        let oversized = format!("\"{}\"", "x".repeat(2048));

        for (version, body, status, closes) in [
            (
                Version::HTTP_11,
                oversized.clone(),
                StatusCode::PAYLOAD_TOO_LARGE,
                true,
            ),
            (
                Version::HTTP_10,
                oversized.clone(),
                StatusCode::PAYLOAD_TOO_LARGE,
                true,
            ),
            (
                Version::HTTP_2,
                oversized,
                StatusCode::PAYLOAD_TOO_LARGE,
                false,
            ),
            (
                Version::HTTP_11,
                "{".to_owned(),
                StatusCode::BAD_REQUEST,
                false,
            ),
            (Version::HTTP_11, "{}".to_owned(), StatusCode::OK, false),
        ] {
            // Act
            let response = router.clone().oneshot(post(version, body)).await.unwrap();

            // Assert
            assert_eq!(response.status(), status, "{version:?}");
            assert_eq!(
                response.headers().get(header::CONNECTION).is_some(),
                closes,
                "{version:?} {status}"
            );
        }
    }

    #[test]
    fn trunk_hashed_names_are_recognised() {
        for hashed in [
            "/paycode-app-b3aceb16c2715634_bg.wasm",
            "/paycode-app-b3aceb16c2715634.js",
            // A hash with a leading zero, which Trunk does not write.
            "/paycode-app-3b3bc41992fe9ff_bg.wasm",
            "/style-6c952b743834b71e.css",
            "/icon-e7caef3872c8bc5a.svg",
        ] {
            assert!(is_hashed_asset(hashed), "{hashed}");
        }
        for plain in [
            "/",
            "/index.html",
            "/sw.js",
            "/manifest.webmanifest",
            "/history/2024-03-02",
            "/x-1234.js",
        ] {
            assert!(!is_hashed_asset(plain), "{plain}");
        }
    }
}
