//! Wiring: the [`router`] over an [`AppState`], and [`Application`], which binds the port
//! and serves until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse};
use tokio::net::TcpListener;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::Config;
use crate::error::log_server_errors;
use crate::routes;
/// Re-exported where the wiring is, for callers that build an [`Application`] from a state.
pub use crate::state::AppState;
use crate::store::StoreError;
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
        .layer(axum::middleware::from_fn(log_server_errors))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                .on_failure(()),
        )
        .with_state(state)
}

/// Serves the built app from `app_dir`, answering unknown paths with `index.html` so that
/// the app's own routes survive a reload. Without a built app, a page explains how to build
/// it.
fn app_router(app_dir: &Path) -> Router<AppState> {
    let index = app_dir.join("index.html");
    if index.is_file() {
        let files = ServeDir::new(app_dir).fallback(ServeFile::new(index));
        Router::new().fallback_service(files)
    } else {
        tracing::warn!(
            app_dir = %app_dir.display(),
            "the cashier app is not built; `/` explains how to build it"
        );
        Router::new().fallback(app_not_built)
    }
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
    /// handle on the state before serving).
    pub async fn build_with_state(state: AppState) -> Result<Application, StartupError> {
        let configured = state.config.server.listen;
        let bind_error = |source| StartupError::Bind {
            address: configured,
            source,
        };
        let listener = TcpListener::bind(configured).await.map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        Ok(Application {
            listener,
            address,
            state,
        })
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
        engine.start().await.map_err(std::io::Error::other)?;
        tracing::info!(address = %self.address, "paycode-proxy listening");
        let served = axum::serve(
            self.listener,
            router(self.state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        engine.shutdown().await;
        tracing::info!("stopped");
        served
    }
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
