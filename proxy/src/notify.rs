//! Several proxies on one PostgreSQL database (docs/postgresql.md §4): [`Coordination`], the
//! few connections of this proxy that are about the others rather than about payments.
//!
//! - **Wake-ups.** Migration 0009 announces every payment and refund change on the channel
//!   [`CHANNEL`] when its transaction commits. [`Coordination::listen`] holds one dedicated
//!   connection that LISTENs (so the connection string must reach PostgreSQL directly or
//!   through a session-mode pooler: a transaction-mode pooler hands the connection to others
//!   between statements and the LISTEN is lost), and passes each announcement to the
//!   engine ([`Engine::heard`]): long-polls held here answer within milliseconds of a commit
//!   made by another proxy. A lost connection is reopened after [`RECONNECT_AFTER`]; what
//!   was announced meanwhile is lost, so the engine is told ([`Change::Missed`]) and
//!   long-polls re-read their payment on a timer as well.
//! - **The micropay limit**, shared by every proxy on the database
//!   ([`Engine::share_micropay_limits`]), runs its two short statements on this pool.
//!
//! SQLite has none of this: one proxy owns the file and hears its own changes.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio_util::sync::CancellationToken;

use crate::config::{StoreBackend, StoreConfig};
use crate::engine::{Change, Engine};

/// The channel migration 0009's triggers announce changes on.
pub const CHANNEL: &str = "paycode_change";

/// How long the listener waits before opening a lost connection again.
pub const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Connections of the coordination pool: one held by the listener, the others for the
/// limiter's statements (each a single short statement).
pub const POOL_SIZE: u32 = 5;

/// How long a limiter statement waits for a connection of the pool.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// This proxy's connections for coordinating with the other proxies on its database.
#[derive(Clone, Debug)]
pub struct Coordination {
    pool: PgPool,
}

impl Coordination {
    /// The coordination pool for the store `config` names, or `None` on SQLite. Opens no
    /// connection yet: the first use does.
    pub fn for_store(config: &StoreConfig) -> Result<Option<Coordination>, sqlx::Error> {
        if config.backend() != StoreBackend::Postgres {
            return Ok(None);
        }
        let url = config.database_url.as_deref().unwrap_or_default();
        let options =
            PgConnectOptions::from_str(url)?.application_name("paycode-proxy coordination");
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(Some(Coordination { pool }))
    }

    /// The pool, for [`Engine::share_micropay_limits`].
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Listens for changes until `stop` is cancelled, handing each to `engine`, and reopens
    /// the connection whenever it is lost.
    pub async fn listen(&self, engine: Engine, stop: CancellationToken) {
        engine.hear_changes();
        loop {
            match self.listen_once(&engine, &stop).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, "lost the database's change announcements; listening again shortly");
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RECONNECT_AFTER) => {}
            }
        }
    }

    /// One listening connection, until `stop` (`Ok`) or an error.
    async fn listen_once(
        &self,
        engine: &Engine,
        stop: &CancellationToken,
    ) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        // Reopened on the next read rather than at once: the loop above paces reconnects.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        // Whatever was committed before this point was not heard.
        engine.heard(Change::Missed);
        loop {
            let received = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                received = listener.try_recv() => received?,
            };
            match received {
                Some(notification) => match Change::parse(notification.payload()) {
                    Some(change) => engine.heard(change),
                    None => tracing::warn!(
                        payload = notification.payload(),
                        "an announcement on {CHANNEL} that is not a change; ignored"
                    ),
                },
                None => {
                    return Err(sqlx::Error::Protocol(
                        "the listening connection closed".into(),
                    ));
                }
            }
        }
    }
}
