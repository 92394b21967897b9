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
//! - **One live proxy per name.** The listening connection holds a session advisory lock on
//!   this proxy's `[server] instance` for its whole life ([`Coordination::claim_instance`]):
//!   a second proxy started under a name in use is refused, since its logs, metrics and
//!   WeChat `User-Agent` could not be told apart from the first's. PostgreSQL frees the lock
//!   when the session ends, which it notices at once when the process dies on the same or a
//!   live host (the socket closes); a restart waits a bounded time for that.
//!
//! SQLite has none of this: one proxy owns the file and hears its own changes.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
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

/// The first key of the instance-name advisory lock (`pg_try_advisory_lock(int, int)`): the
/// bytes "PCYi". The two-key form has a key space of its own, apart from the one-key locks
/// (such as the migrator's), so only another user of this same first key could clash.
const INSTANCE_LOCK_SPACE: i32 = 0x5043_5969;

/// How often a start that found its name taken tries again.
const CLAIM_RETRY: Duration = Duration::from_millis(100);

/// The coordination sessions' TCP settings on the server's side, so PostgreSQL ends the
/// session of a proxy whose machine vanished (power loss: no socket was closed) within about
/// half a minute instead of the system's two hours of keepalive silence, and frees its
/// instance name: keepalive probes after 10 s idle, every 5 s, 3 unanswered end it; data
/// unacknowledged for 30 s (an announcement sent to the dead machine) ends it too
/// (`tcp_user_timeout`, PostgreSQL 12 and later). Ignored on a Unix-domain socket, where
/// PostgreSQL sees the closed socket at once. Settable by any user, per session
/// (docs/postgresql.md §4).
pub const SERVER_TCP_SETTINGS: [(&str, &str); 4] = [
    ("tcp_keepalives_idle", "10"),
    ("tcp_keepalives_interval", "5"),
    ("tcp_keepalives_count", "3"),
    ("tcp_user_timeout", "30000"),
];

/// Why [`Coordination::claim_instance`] refused.
#[derive(Debug, thiserror::Error)]
pub enum InstanceClaimError {
    /// Another live proxy on the database runs under this name.
    #[error(
        "server.instance: another proxy on this database is already running as \"{name}\" \
         (waited {waited:?} for it to go away); give every proxy its own [server] instance \
         (or PAYCODE_SERVER__INSTANCE; the default, the host's name, is the same for two \
         proxies on one host), or stop the other one"
    )]
    Taken {
        /// The name in use.
        name: String,
        /// How long this start waited for it to be freed.
        waited: Duration,
    },
    /// The database did not answer.
    #[error("server.instance: cannot claim \"{name}\" on the database")]
    Database {
        /// The name.
        name: String,
        /// Why.
        source: sqlx::Error,
    },
}

/// This proxy's connections for coordinating with the other proxies on its database.
#[derive(Clone, Debug)]
pub struct Coordination {
    pool: PgPool,
    /// `[server] instance`.
    name: Arc<str>,
    /// The listening connection [`Coordination::claim_instance`] opened, holding the
    /// instance's lock, until [`Coordination::listen`] takes it over.
    claimed: Arc<Mutex<Option<PgListener>>>,
}

impl Coordination {
    /// The coordination pool for the store `config` names, or `None` on SQLite, for the proxy
    /// called `name` (`[server] instance`). Opens no connection yet: the first use does.
    pub fn for_store(
        config: &StoreConfig,
        name: &str,
    ) -> Result<Option<Coordination>, sqlx::Error> {
        if config.backend() != StoreBackend::Postgres {
            return Ok(None);
        }
        let url = config.database_url.as_deref().unwrap_or_default();
        let options = PgConnectOptions::from_str(url)?
            .application_name(&format!("paycode-proxy coordination {name}"));
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // `SET` after connecting rather than startup options, which PgBouncer refuses
            // unless told to ignore them.
            .after_connect(|connection, _| {
                Box::pin(async move {
                    for (setting, value) in SERVER_TCP_SETTINGS {
                        sqlx::query(&format!("SET {setting} = {value}"))
                            .execute(&mut *connection)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy_with(options);
        Ok(Some(Coordination {
            pool,
            name: name.into(),
            claimed: Arc::default(),
        }))
    }

    /// Opens the listening connection and takes this proxy's instance lock on it, trying
    /// again for up to `wait` while another session holds it (a previous run of this proxy
    /// that was killed: PostgreSQL frees its lock when it sees the socket close). Refuses
    /// with [`InstanceClaimError::Taken`] when the name is still held after `wait`.
    pub async fn claim_instance(&self, wait: Duration) -> Result<(), InstanceClaimError> {
        let database = |source| InstanceClaimError::Database {
            name: self.name.to_string(),
            source,
        };
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(database)?;
        let started = tokio::time::Instant::now();
        let mut said = false;
        while !self.lock_instance(&mut listener).await.map_err(database)? {
            if started.elapsed() >= wait {
                return Err(InstanceClaimError::Taken {
                    name: self.name.to_string(),
                    waited: started.elapsed(),
                });
            }
            if !said {
                said = true;
                tracing::info!(
                    instance = %self.name,
                    "another proxy on the database runs as \"{}\"; waiting up to {wait:?} for \
                     it to go away (a previous run that was just stopped)",
                    self.name
                );
            }
            tokio::time::sleep(CLAIM_RETRY).await;
        }
        *self
            .claimed
            .lock()
            .unwrap_or_else(|error| error.into_inner()) = Some(listener);
        Ok(())
    }

    /// `pg_try_advisory_lock` of this proxy's name on `listener`'s session: whether it holds
    /// it now.
    async fn lock_instance(&self, listener: &mut PgListener) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(INSTANCE_LOCK_SPACE)
            .bind(instance_key(&self.name))
            .fetch_one(listener)
            .await
    }

    /// The pool, for [`Engine::share_micropay_limits`].
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Listens for changes until `stop` is cancelled, handing each to `engine`, and reopens
    /// the connection whenever it is lost. The first connection is the one
    /// [`Coordination::claim_instance`] opened, if it ran; every new one takes the instance
    /// lock again.
    pub async fn listen(&self, engine: Engine, stop: CancellationToken) {
        engine.hear_changes();
        loop {
            let claimed = self
                .claimed
                .lock()
                .unwrap_or_else(|error| error.into_inner())
                .take();
            let listening = match claimed {
                Some(listener) => Ok(listener),
                None => self.reconnect().await,
            };
            let outcome = match listening {
                Ok(mut listener) => {
                    let outcome = self.listen_on(&mut listener, &engine, &stop).await;
                    if outcome.is_err() {
                        // The connection may still be alive (an error of LISTEN itself): it
                        // returns to the pool, which must not keep the lock for it.
                        let _ = tokio::time::timeout(
                            ACQUIRE_TIMEOUT,
                            sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut listener),
                        )
                        .await;
                    }
                    outcome
                }
                Err(error) => Err(error),
            };
            match outcome {
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

    /// A new listening connection after the last was lost, with the instance lock taken
    /// again. Should another proxy have taken the name meanwhile (it started while this
    /// one's connection was down), this one says so and listens all the same: payments stay
    /// safe, only the two cannot be told apart.
    async fn reconnect(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        if !self.lock_instance(&mut listener).await? {
            tracing::error!(
                instance = %self.name,
                "server.instance: another proxy on this database took the name \"{}\" while \
                 this one's connection was down; give each proxy its own name",
                self.name
            );
        }
        Ok(listener)
    }

    /// Listens on `listener` until `stop` (`Ok`) or an error.
    async fn listen_on(
        &self,
        listener: &mut PgListener,
        engine: &Engine,
        stop: &CancellationToken,
    ) -> Result<(), sqlx::Error> {
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

/// The second key of the instance lock: the first four bytes of the name's SHA-256. Two
/// different names share a key with odds of one in four billion (the second would be
/// refused as if it had the first's name).
fn instance_key(name: &str) -> i32 {
    let digest = Sha256::digest(name.as_bytes());
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}
