//! Durable storage of payments, refunds, terminals and the payment audit trail.
//!
//! [`Store`] is the interface, with two implementations: [`SqliteStore`] (the default, one
//! proxy on one file) and [`PostgresStore`] (several proxies may share one database);
//! `[store] database_url` chooses ([`connect`]). No database-specific type crosses the
//! interface, times are epoch milliseconds ([`Millis`]), and every rule that must hold under
//! concurrency (idempotent inserts, optimistic versions, the refund cap, the audit event) is
//! a promise of the trait, which each implementation keeps with its own means (SQLite: one
//! writer in `BEGIN IMMEDIATE` transactions; PostgreSQL: `ON CONFLICT DO NOTHING`, versioned
//! `UPDATE`s and `SELECT … FOR NO KEY UPDATE`; `docs/postgresql.md` §2). One conformance
//! suite (`proxy/tests/proxy/store.rs`) holds both to the same promises.
//!
//! The trait is object-safe (through `async_trait`), so the HTTP layer and the payments
//! engine share one `Arc<dyn Store>`.

mod books;
pub mod postgres;
pub mod records;
mod rows;
mod shared;
pub mod sqlite;
mod sqlite_writer;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use paycode_api::{Fen, PaymentState, Role};
use sqlx::migrate::{AppliedMigration, Migrator};

use crate::books::records::{BooksDay, BooksMismatch, MismatchStatus};
use crate::config::{StoreBackend, StoreConfig};

pub use postgres::PostgresStore;
pub use records::{
    Action, ApprovalUse, ApprovedAction, CloseState, Failure, LockoutPolicy, ManagerRecord,
    MerchantIds, Millis, NewApproval, PaymentEvent, PaymentRecord, PinCheck, RefundRecord,
    StoreRecord, TerminalRecord,
};
pub use sqlite::SqliteStore;

/// Opens the store `config` names (SQLite unless `database_url` is a `postgres://` URL) and
/// brings its schema up to date.
///
/// A PostgreSQL server that cannot be reached is [`StoreError::Unreachable`], naming the
/// server and the real cause; a database migrated by a newer binary is
/// [`StoreError::NewerSchema`].
pub async fn connect(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = match config.backend() {
        StoreBackend::Sqlite => Arc::new(SqliteStore::connect(config).await.map_err(explain)?),
        StoreBackend::Postgres => {
            reach_postgres(config).await?;
            Arc::new(PostgresStore::connect(config).await.map_err(explain)?)
        }
    };
    Ok(store)
}

/// Brings the schema of the database `config` names up to date without starting anything
/// else (`paycode-proxy migrate`), and returns the migration versions applied now, oldest
/// first (empty when it was up to date). Errors as [`connect`]'s.
pub async fn migrate(config: &StoreConfig) -> Result<Vec<i64>, StoreError> {
    match config.backend() {
        StoreBackend::Sqlite => SqliteStore::migrate(config).await,
        StoreBackend::Postgres => {
            reach_postgres(config).await?;
            PostgresStore::migrate(config).await
        }
    }
    .map_err(explain)
}

/// How long [`reach_postgres`] waits for the server.
const REACH_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens and closes one connection to the PostgreSQL server `config` names, so that a server
/// out of reach is reported with its own cause (connection refused, unknown host, a wrong
/// password) rather than as the pool's time-out that hides it.
async fn reach_postgres(config: &StoreConfig) -> Result<(), StoreError> {
    use sqlx::{ConnectOptions, Connection};
    let unreachable = |source| StoreError::Unreachable {
        database: config.describe(),
        source,
    };
    let url = config.database_url.as_deref().unwrap_or_default();
    let options = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url)
        .map_err(unreachable)?;
    let connection = tokio::time::timeout(REACH_TIMEOUT, options.connect())
        .await
        .map_err(|_| {
            unreachable(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {REACH_TIMEOUT:?}"),
            )))
        })?
        .map_err(unreachable)?;
    // Closing politely is a courtesy: the connection was made, which is what this checks.
    let _ = connection.close().await;
    Ok(())
}

/// A migration error in words an operator can act on: a database that has a migration this
/// binary does not know was migrated by a newer binary.
fn explain(error: StoreError) -> StoreError {
    match error {
        StoreError::Migration(sqlx::migrate::MigrateError::VersionMissing(version)) => {
            StoreError::NewerSchema { version }
        }
        other => other,
    }
}

/// The versions of `migrator`'s migrations that are not among `before` (those a database
/// had applied before it ran), oldest first.
fn newly_applied(migrator: &Migrator, before: &[AppliedMigration]) -> Vec<i64> {
    let before: HashSet<i64> = before.iter().map(|migration| migration.version).collect();
    migrator
        .iter()
        .map(|migration| migration.version)
        .filter(|version| !before.contains(version))
        .collect()
}

/// What an idempotent insert did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InsertOutcome<T> {
    /// The record was new and is now stored (as returned).
    Inserted(T),
    /// A record with the same idempotency key and the same contents already existed; this is
    /// the stored one, which may have moved on since.
    Existing(T),
}

impl<T> InsertOutcome<T> {
    /// The stored record, whichever way it came to be.
    pub fn into_record(self) -> T {
        match self {
            InsertOutcome::Inserted(record) | InsertOutcome::Existing(record) => record,
        }
    }

    /// Whether this call created the record.
    pub fn was_inserted(&self) -> bool {
        matches!(self, InsertOutcome::Inserted(_))
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The payment, refund or terminal does not exist.
    #[error("{entity} {key} not found")]
    NotFound {
        /// `payment`, `refund`, `terminal` or `store`.
        entity: &'static str,
        /// The id or name looked up.
        key: String,
    },
    /// An idempotency key was reused for different contents (another amount, payment code,
    /// terminal or payment). Nothing was stored; the existing record is untouched.
    #[error("{entity} attempt {attempt_id} already exists with different {differs}")]
    Conflict {
        /// `payment` or `refund`.
        entity: &'static str,
        /// The reused key.
        attempt_id: String,
        /// Which contents differ, e.g. `amount_fen`.
        differs: &'static str,
    },
    /// The write names a lease epoch that is no longer the record's: another instance has
    /// claimed it since (`docs/postgresql.md` §4). Nothing was stored. The writer lost the
    /// lease: it drops what it was doing and must not write as the owner again. (A writer
    /// that is not the engine, such as a cashier's cancel, reads the record again.)
    #[error("{entity} {id} was claimed by another instance since lease epoch {expected}")]
    LeaseLost {
        /// `payment` or `refund`.
        entity: &'static str,
        /// The record.
        id: String,
        /// The epoch the write named.
        expected: u64,
    },
    /// A record was changed since it was read (optimistic concurrency): read it again and
    /// redo the change on the fresh copy.
    #[error("{entity} {id} changed since version {expected}")]
    StaleVersion {
        /// `payment` or `refund`.
        entity: &'static str,
        /// The record.
        id: String,
        /// The version the caller expected to replace.
        expected: u64,
    },
    /// A refund would take back more than the payment brought in. Nothing was stored.
    #[error(
        "refund of {requested} exceeds what is left of {payment_amount} ({already_refunded} already refunded or pending)"
    )]
    RefundExceedsPayment {
        /// The payment's amount.
        payment_amount: Fen,
        /// The sum of the payment's refunds that have not failed.
        already_refunded: Fen,
        /// The amount asked for.
        requested: Fen,
    },
    /// A unique value other than an idempotency key is taken (a terminal name, an
    /// `out_trade_no`, a token hash).
    #[error("{entity} {key} already exists")]
    AlreadyExists {
        /// What kind of value.
        entity: &'static str,
        /// The value.
        key: String,
    },
    /// A stored value cannot be read back (an unknown state name, a negative amount): the
    /// database was changed by something other than this code.
    #[error("stored {column} has an unreadable value {value:?}")]
    Corrupt {
        /// The column.
        column: &'static str,
        /// The value found.
        value: String,
    },
    /// A value does not fit the database's integer range.
    #[error("{field} is out of range for storage")]
    OutOfRange {
        /// The field.
        field: &'static str,
    },
    /// The database could not be reached or answered with an error.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A write was not committed: the transaction it shared with other writes failed, or
    /// the store is closing. Nothing of it was stored; retrying later may succeed.
    #[error("the write was not stored: {reason}")]
    NotCommitted {
        /// Why.
        reason: String,
    },
    /// The PostgreSQL server could not be reached at start (`store.database_url`).
    #[error("store.database_url: cannot reach {database}")]
    Unreachable {
        /// The server and database, without user or password (`PostgreSQL HOST:PORT/NAME`).
        database: String,
        /// Why: the connection's own error.
        source: sqlx::Error,
    },
    /// The database has a migration this binary does not know: a newer paycode-proxy
    /// migrated it. Nothing was changed.
    #[error(
        "the database was migrated by a newer paycode-proxy (migration {version} is unknown \
         to this binary): upgrade this binary; never run an older paycode-proxy against it"
    )]
    NewerSchema {
        /// The unknown migration's version.
        version: i64,
    },
    /// The schema could not be brought up to date.
    #[error("database migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}")]
    DataDirectory {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database file could not be made readable by its owner only.
    #[error("cannot make {path} readable by its owner only (mode 0600)")]
    Permissions {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether the failure is the database being out of reach or busy for now (a pool
    /// timeout, a closed pool, an I/O error, a write that was not committed), so that the
    /// same request may succeed later: the HTTP layer answers these with 503 rather than
    /// 500. Every other error says something about the request or the stored data.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(error)) => {
                let code = error.code().unwrap_or_default();
                if error
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                {
                    is_transient_sqlstate(&code)
                } else {
                    is_transient_sqlite_code(&code)
                }
            }
            StoreError::Database(error) => matches!(
                error,
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::WorkerCrashed
            ),
            StoreError::NotCommitted { .. } | StoreError::Unreachable { .. } => true,
            StoreError::NotFound { .. }
            | StoreError::Conflict { .. }
            | StoreError::StaleVersion { .. }
            | StoreError::LeaseLost { .. }
            | StoreError::RefundExceedsPayment { .. }
            | StoreError::AlreadyExists { .. }
            | StoreError::Corrupt { .. }
            | StoreError::OutOfRange { .. }
            | StoreError::Migration(_)
            | StoreError::NewerSchema { .. }
            | StoreError::DataDirectory { .. }
            | StoreError::Permissions { .. } => false,
        }
    }
}

/// Whether a PostgreSQL SQLSTATE says "busy or out of reach for now" rather than something
/// about the request: class 08 (connection exception), 40001 (serialization_failure), 40P01
/// (deadlock_detected), class 53 (insufficient resources: too many connections, out of
/// memory or disk), 57P01 to 57P03 (the server is shutting down or starting).
fn is_transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "40001" | "40P01" | "57P01" | "57P02" | "57P03")
}

/// Whether a SQLite result code says "busy for now": `SQLITE_BUSY` (5) or `SQLITE_LOCKED`
/// (6), or one of their extended codes (whose low byte is the primary code).
fn is_transient_sqlite_code(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
}

/// A lease an instance asks for: who (its run id, `Instance::run_id`) and for how long.
/// The store takes the lease's start from its own clock (PostgreSQL: the database's), never
/// from the instance's.
#[derive(Clone, Copy, Debug)]
pub struct LeaseTerms<'a> {
    /// The owner to record (`lease_owner`).
    pub owner: &'a str,
    /// How long the lease lasts from the moment the database writes it.
    pub duration: Duration,
}

/// Which due work a claim takes.
#[derive(Clone, Copy, Debug)]
pub struct ClaimRequest<'a> {
    /// The lease to take.
    pub terms: LeaseTerms<'a>,
    /// Take rows whose next action is due at or before this (the instance's clock, as
    /// `next_action_at` is); rows with no planned time are always due.
    pub due_before: Millis,
    /// At most this many rows of each kind.
    pub limit: u32,
    /// Take rows whose lease has not expired as well: only for a store that has one owner
    /// (SQLite), whose previous run has ended when a new one starts. Otherwise a row held
    /// under an unexpired lease is never taken.
    pub take_over: bool,
}

/// A record this instance now holds, with the time its lease had left when the database
/// answered (measured on the database's clock; the instance counts it down on its monotonic
/// clock from when it SENT the query, so a slow answer only shortens it).
#[derive(Clone, Debug)]
pub struct Leased<T> {
    /// The record, with its new `lease_owner`, `lease_until` and `lease_epoch`.
    pub record: T,
    /// What was left of the lease.
    pub remaining: Duration,
}

/// A lease still held after a renewal: the record's id, its current version (a version
/// the holder did not write was written by someone else, e.g. a cashier's cancel on another
/// instance), and what the lease has left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Renewed {
    /// The payment or refund.
    pub id: String,
    /// Its version now.
    pub version: u64,
    /// What the renewed lease has left, on the database's clock.
    pub remaining: Duration,
}

/// The leases an instance holds, by id and the epoch it claimed them at.
#[derive(Clone, Debug, Default)]
pub struct HeldLeases {
    /// Payments: `(id, lease_epoch)`.
    pub payments: Vec<(String, u64)>,
    /// Refunds: `(id, lease_epoch)`.
    pub refunds: Vec<(String, u64)>,
}

/// What a renewal found still held; a lease missing here is lost.
#[derive(Clone, Debug, Default)]
pub struct Renewal {
    /// Payments still held.
    pub payments: Vec<Renewed>,
    /// Refunds still held.
    pub refunds: Vec<Renewed>,
}

/// Durable storage for the proxy. Every method is one transaction.
///
/// Implementations must be safe to call from many tasks at once and keep these promises
/// under concurrency:
/// - inserts are idempotent on their attempt id;
/// - updates succeed only against the version they were read at, and bump it by exactly one;
/// - each payment change writes its [`PaymentEvent`] in the same transaction;
/// - the refund cap is checked in the transaction that inserts the refund;
/// - updates are fenced: they succeed only while the record's `lease_epoch` is the one they
///   name, and never change the lease columns;
/// - a claim never hands a row to two owners at once, and bumps its `lease_epoch`; lease
///   times come from the store's clock (`docs/postgresql.md` §4).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the database answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes the connection pool, waiting for connections in use to be returned. Later
    /// reads fail with a transient error ([`StoreError::is_transient`]); on SQLite, writes
    /// already queued are still committed by the writer, which stops with the last handle.
    async fn close(&self);

    /// Stores a new payment, or returns the one already stored under its `attempt_id`.
    ///
    /// Writes a creation event. If a payment with the same `attempt_id` exists with another
    /// amount, payment code (compared in full while both are kept, else by fingerprint, else,
    /// for rows older than the fingerprint, by last four digits) or terminal, fails with [`StoreError::Conflict`]; another payment with the same
    /// `out_trade_no` fails with [`StoreError::AlreadyExists`].
    async fn insert_payment(
        &self,
        payment: &PaymentRecord,
    ) -> Result<InsertOutcome<PaymentRecord>, StoreError>;

    /// The payment with this id, if any.
    async fn get_payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError>;

    /// The payment with this id, or [`StoreError::NotFound`] if there is none.
    async fn existing_payment(&self, id: &str) -> Result<PaymentRecord, StoreError> {
        self.get_payment(id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                entity: "payment",
                key: id.to_owned(),
            })
    }

    /// The payment made under this idempotency key, if any.
    async fn get_payment_by_attempt(
        &self,
        attempt_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError>;

    /// Stores a new payment like [`Store::insert_payment`], already leased to `terms.owner`
    /// (epoch 1, until the store's clock plus `terms.duration`) when it is new: the
    /// creating instance drives it without waiting for a claim. An existing payment is
    /// returned as stored, its lease untouched.
    async fn insert_leased_payment(
        &self,
        payment: &PaymentRecord,
        terms: LeaseTerms<'_>,
    ) -> Result<InsertOutcome<PaymentRecord>, StoreError>;

    /// Replaces the mutable fields of a payment, provided it is still at `payment.version`
    /// and `payment.lease_epoch` (the fence).
    ///
    /// Returns the stored record with `version + 1` and a fresh `updated_at`, and writes an
    /// event with `detail` in the same transaction. Immutable fields (`attempt_id`,
    /// `terminal_id`, `out_trade_no`, `amount_fen`, `auth_code_last4`,
    /// `auth_code_fingerprint`, `created_at`, `business_day`) and the lease columns are not
    /// changed. Fails with [`StoreError::LeaseLost`] if the row was claimed since (its
    /// epoch moved), [`StoreError::StaleVersion`] if the row moved and
    /// [`StoreError::NotFound`] if it does not exist.
    async fn update_payment(
        &self,
        payment: &PaymentRecord,
        detail: &str,
    ) -> Result<PaymentRecord, StoreError>;

    /// One store's payments of a business day, newest first, optionally for one terminal
    /// only.
    async fn list_payments(
        &self,
        business_day: NaiveDate,
        store_id: &str,
        terminal_id: Option<&str>,
    ) -> Result<Vec<PaymentRecord>, StoreError>;

    /// Every payment that is not settled (`paid`, `failed`, `cancelled`), including those
    /// that need attention, oldest first: the open work of the whole database (for checks
    /// and reports; the engine claims its share with [`Store::claim_due`]).
    async fn unsettled_payments(&self) -> Result<Vec<PaymentRecord>, StoreError>;

    /// Every settled payment whose order is still owed a close at WeChat (close state
    /// `pending`), oldest first: open work besides [`Store::unsettled_payments`], which
    /// [`Store::claim_due`] takes too.
    async fn payments_to_close(&self) -> Result<Vec<PaymentRecord>, StoreError>;

    /// How many payments are stored in each state (states with none are left out).
    async fn count_payments_by_state(&self) -> Result<Vec<(PaymentState, u64)>, StoreError>;

    /// A payment's audit trail, oldest first.
    async fn payment_events(&self, payment_id: &str) -> Result<Vec<PaymentEvent>, StoreError>;

    /// Stores a new refund, or returns the one already stored under its
    /// `refund_attempt_id`.
    ///
    /// Fails with [`StoreError::Conflict`] if that key was used with another amount or
    /// payment, [`StoreError::NotFound`] if the payment does not exist, and
    /// [`StoreError::RefundExceedsPayment`] if the payment's refunds that have not failed plus
    /// this one would exceed the payment's amount.
    async fn insert_refund(
        &self,
        refund: &RefundRecord,
    ) -> Result<InsertOutcome<RefundRecord>, StoreError>;

    /// Stores a new refund like [`Store::insert_refund`], already leased to `terms.owner`
    /// when it is new (as [`Store::insert_leased_payment`]).
    async fn insert_leased_refund(
        &self,
        refund: &RefundRecord,
        terms: LeaseTerms<'_>,
    ) -> Result<InsertOutcome<RefundRecord>, StoreError>;

    /// Replaces the mutable fields of a refund (`state`, `wechat_refund_id`, `failure_*`,
    /// `attempts`, `next_action_at`, `applied_at`), provided it is still at `refund.version`
    /// and `refund.lease_epoch`; returns it with `version + 1` and a fresh `updated_at`.
    /// Fails like [`Store::update_payment`].
    async fn update_refund(&self, refund: &RefundRecord) -> Result<RefundRecord, StoreError>;

    /// The refund with this id, if any.
    async fn get_refund(&self, id: &str) -> Result<Option<RefundRecord>, StoreError>;

    /// A payment's refunds, oldest first.
    async fn refunds_for_payment(&self, payment_id: &str) -> Result<Vec<RefundRecord>, StoreError>;

    /// The refunds of one store's payments of a business day (only `terminal_id`'s when
    /// given), oldest first: the day list's refunds in one query rather than one per payment.
    async fn refunds_for_day(
        &self,
        business_day: NaiveDate,
        store_id: &str,
        terminal_id: Option<&str>,
    ) -> Result<Vec<RefundRecord>, StoreError>;

    /// Every refund still `queued`, `submitting` or `processing`, oldest first.
    async fn unfinished_refunds(&self) -> Result<Vec<RefundRecord>, StoreError>;

    /// The store's clock now (PostgreSQL: the database server's), the clock leases are
    /// measured on.
    async fn clock(&self) -> Result<Millis, StoreError>;

    /// Claims due work for `request.terms.owner`: unsettled payments (and settled ones
    /// still owed a close) and unfinished refunds whose next action is due by
    /// `request.due_before`, which nobody holds under an unexpired lease (unless
    /// `take_over`), oldest due first, at most `limit` of each. Each claimed row gets the
    /// owner, a lease until the store's clock plus the duration, and `lease_epoch + 1`.
    /// A lease of `owner` itself that lapsed is taken again only once it has been over for
    /// another `duration` (until then a late renewal extends it: the owner's own steps are
    /// not fenced off by its own claim).
    /// Rows another claimer is claiming at the same moment are skipped, never waited for or
    /// handed out twice.
    async fn claim_due(
        &self,
        request: ClaimRequest<'_>,
    ) -> Result<(Vec<Leased<PaymentRecord>>, Vec<Leased<RefundRecord>>), StoreError>;

    /// Extends the leases in `held` that `terms.owner` still holds at the same epoch to the
    /// store's clock plus `terms.duration`, and returns those (a lease missing from the
    /// answer was lost: claimed by another owner, or the row is gone). Versions do not move.
    async fn renew_leases(
        &self,
        terms: LeaseTerms<'_>,
        held: &HeldLeases,
    ) -> Result<Renewal, StoreError>;

    /// Hands back the leases in `held` that `owner` still holds (graceful shutdown): their
    /// owner and time are cleared, so another instance may claim them at once. Returns how
    /// many were handed back.
    async fn release_leases(&self, owner: &str, held: &HeldLeases) -> Result<u64, StoreError>;

    /// Adds a terminal to the store `store_id`; fails with [`StoreError::AlreadyExists`] if
    /// the name is taken.
    async fn add_terminal(
        &self,
        name: &str,
        token_hash: &str,
        store_id: &str,
    ) -> Result<TerminalRecord, StoreError>;

    /// The terminal whose token has this hash, revoked or not.
    async fn terminal_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<TerminalRecord>, StoreError>;

    /// Every terminal, in the order they were added.
    async fn list_terminals(&self) -> Result<Vec<TerminalRecord>, StoreError>;

    /// Stores a pairing code (its hash) for the active terminal called `terminal_name`,
    /// valid until `expires_at`, replacing any earlier code of that terminal and dropping
    /// expired codes. Fails with [`StoreError::NotFound`] for an unknown or revoked terminal.
    async fn add_pairing_code(
        &self,
        terminal_name: &str,
        code_hash: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<TerminalRecord, StoreError>;

    /// Uses up the pairing code with this hash: when it exists, has not expired at `now`
    /// and its terminal is active, the terminal's token hash becomes `new_token_hash` (the
    /// previous token stops working) and the terminal is returned. The code is deleted in
    /// every case, so it never works twice; `None` when it did not work.
    async fn redeem_pairing_code(
        &self,
        code_hash: &str,
        now: Millis,
        new_token_hash: &str,
    ) -> Result<Option<TerminalRecord>, StoreError>;

    /// Revokes the terminal with this name and returns it. Revoking twice keeps the first
    /// revocation time. Fails with [`StoreError::NotFound`] for an unknown name.
    async fn revoke_terminal(&self, name: &str) -> Result<TerminalRecord, StoreError>;

    /// Adds a store; fails with [`StoreError::AlreadyExists`] if the name or id is taken.
    async fn add_store(&self, store: &StoreRecord) -> Result<StoreRecord, StoreError>;

    /// The store with this id, disabled or not.
    async fn get_store(&self, id: &str) -> Result<Option<StoreRecord>, StoreError>;

    /// Every store, in the order they were added.
    async fn list_stores(&self) -> Result<Vec<StoreRecord>, StoreError>;

    /// Disables the store with this name and returns it; disabling twice keeps the first
    /// time. Fails with [`StoreError::NotFound`] for an unknown name.
    async fn disable_store(&self, name: &str) -> Result<StoreRecord, StoreError>;

    /// Adopts the rows a database from before stores left unbound, in one transaction:
    /// gives `store` the sub-merchant of `merchant` if it has none, and records `merchant` on
    /// every payment and refund of `store` without merchant fields. Returns how many rows
    /// were filled in; a second call finds none.
    async fn adopt_unbound_rows(
        &self,
        store: &StoreRecord,
        merchant: &MerchantIds,
    ) -> Result<u64, StoreError>;

    // ---- Manager approvals (migration 0011, docs/approvals.md) ----

    /// Gives the terminal called `name` the role `role` and returns it. Fails with
    /// [`StoreError::NotFound`] for an unknown name.
    async fn set_terminal_role(&self, name: &str, role: Role)
    -> Result<TerminalRecord, StoreError>;

    /// Adds a manager; fails with [`StoreError::AlreadyExists`] if a manager not removed
    /// has the name, and [`StoreError::NotFound`] if `store_id` names no store.
    async fn add_manager(&self, manager: &ManagerRecord) -> Result<ManagerRecord, StoreError>;

    /// The manager (not removed) called `name`, if any.
    async fn manager_by_name(&self, name: &str) -> Result<Option<ManagerRecord>, StoreError>;

    /// Every manager, removed ones included, in the order they were added.
    async fn list_managers(&self) -> Result<Vec<ManagerRecord>, StoreError>;

    /// Replaces the PIN hash of the manager (not removed) called `name`, clearing its
    /// failures and lockout. Fails with [`StoreError::NotFound`] for an unknown name.
    async fn set_manager_pin(
        &self,
        name: &str,
        pin_hash: &str,
    ) -> Result<ManagerRecord, StoreError>;

    /// Removes the manager called `name` (its approvals stop working) and returns it.
    /// Fails with [`StoreError::NotFound`] for an unknown or already removed name.
    async fn remove_manager(&self, name: &str) -> Result<ManagerRecord, StoreError>;

    /// Counts one PIN check of manager `manager_id` (`accepted`: the PIN matched its hash)
    /// by [`records::pin_transition`] in one transaction on the store's clock, so checks
    /// racing on several proxies count exactly. Fails with [`StoreError::NotFound`] for an
    /// unknown or removed manager.
    async fn record_pin_check(
        &self,
        manager_id: &str,
        accepted: bool,
        policy: LockoutPolicy,
    ) -> Result<PinCheck, StoreError>;

    /// Stores an approval, valid from the store's clock now for `approval.ttl`, and returns
    /// when it expires.
    async fn insert_approval(&self, approval: &NewApproval) -> Result<Millis, StoreError>;

    /// Uses an approval: when the token hash exists, belongs to `use_.terminal_id`, is for
    /// `use_.action`, has not expired (store's clock), its manager is not removed and
    /// approves for `use_.store_id`, and (for a one-use approval) it was not used, marks it used and writes the [`ApprovedAction`]
    /// in the same transaction, and returns it with the manager's store (`None`: every
    /// store). Otherwise `None` and nothing changes. Of two uses of one one-use approval
    /// racing, exactly one succeeds.
    async fn use_approval(
        &self,
        use_: ApprovalUse<'_>,
    ) -> Result<Option<(ApprovedAction, Option<String>)>, StoreError>;

    /// The approved actions at or after `since`, oldest first: the audit log.
    async fn approved_actions(&self, since: Millis) -> Result<Vec<ApprovedAction>, StoreError>;

    // ---- The owner's books (migration 0012, `crate::books`): kept together at the end. ----

    /// Stores the run of one business day of one account, in one transaction, and returns
    /// every stored mismatch of that day and account.
    ///
    /// The day row replaces the stored one, except that a run that did not reconcile
    /// (waiting for the bill, failed) never replaces a reconciled day. For a reconciled run,
    /// `found` are its mismatches (by their stable ids): a new one is stored as given; a
    /// stored one takes the new text and `in_latest_run`, and the given status only while
    /// it is `open` or `cleared`, so a re-run never reopens or loses what a manager (or an
    /// earlier run's verified query) settled. A stored mismatch of the day not in `found`
    /// is no longer in the latest run and, if it was open, becomes `cleared` (by
    /// `day.run_by`, at `day.run_at`).
    async fn save_books_day(
        &self,
        day: &BooksDay,
        found: &[BooksMismatch],
    ) -> Result<Vec<BooksMismatch>, StoreError>;

    /// The stored run of `day` for the account `mch_id`, if any.
    async fn books_day(&self, day: NaiveDate, mch_id: &str)
    -> Result<Option<BooksDay>, StoreError>;

    /// The stored runs of the days `from` to `to` (both included), by day then account.
    async fn books_days(&self, from: NaiveDate, to: NaiveDate)
    -> Result<Vec<BooksDay>, StoreError>;

    /// The stored mismatches of `day` for `mch_id`, by id.
    async fn books_mismatches(
        &self,
        day: NaiveDate,
        mch_id: &str,
    ) -> Result<Vec<BooksMismatch>, StoreError>;

    /// The stored mismatch with this id, if any.
    async fn books_mismatch(&self, id: &str) -> Result<Option<BooksMismatch>, StoreError>;

    /// Sets a mismatch's status, with a note, who and when; returns it. Fails with
    /// [`StoreError::NotFound`] for an unknown id.
    async fn settle_books_mismatch(
        &self,
        id: &str,
        status: MismatchStatus,
        note: Option<&str>,
        by: &str,
        at: Millis,
    ) -> Result<BooksMismatch, StoreError>;

    /// How many mismatches are open, per account `mch_id` (accounts with none left out).
    async fn count_open_books_mismatches(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// Claims the run of `day` for `mch_id` for `owner` for `duration` on the store's clock:
    /// `true` when the claim was free, lapsed or already `owner`'s (then extended), `false`
    /// while another owner holds it. Several proxies thus run a day of an account once.
    async fn claim_books_run(
        &self,
        day: NaiveDate,
        mch_id: &str,
        owner: &str,
        duration: Duration,
    ) -> Result<bool, StoreError>;

    /// Hands back `owner`'s claim of the run of `day` for `mch_id` (nothing if not held).
    async fn release_books_run(
        &self,
        day: NaiveDate,
        mch_id: &str,
        owner: &str,
    ) -> Result<(), StoreError>;

    /// The payments of the account `mch_id` a bill of the instants `from` to `to` may list:
    /// created, or paid by WeChat's time (`wechat_paid_at`, else `settled_at`), in
    /// `[from, to)`, or with one of `out_trade_nos`; oldest first.
    async fn books_payments(
        &self,
        mch_id: &str,
        from: Millis,
        to: Millis,
        out_trade_nos: &[String],
    ) -> Result<Vec<PaymentRecord>, StoreError>;

    /// The refunds of the account `mch_id` such a bill may list: created, or refunded by
    /// WeChat's time (`wechat_refunded_at`, else accepted: `applied_at`), in `[from, to)`,
    /// or with one of `out_refund_nos`; oldest first.
    async fn books_refunds(
        &self,
        mch_id: &str,
        from: Millis,
        to: Millis,
        out_refund_nos: &[String],
    ) -> Result<Vec<RefundRecord>, StoreError>;
}

/// Why a fenced, versioned write matched no row although the row exists: the lease was
/// claimed since (the stored epoch is not the one the write named), else the version moved.
fn refusal(entity: &'static str, id: &str, expected: u64, epoch: u64, stored: i64) -> StoreError {
    if u64::try_from(stored).ok() != Some(epoch) {
        StoreError::LeaseLost {
            entity,
            id: id.to_owned(),
            expected: epoch,
        }
    } else {
        StoreError::StaleVersion {
            entity,
            id: id.to_owned(),
            expected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unreachable_or_busy_database_is_transient() {
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_transient());
        assert!(StoreError::Database(sqlx::Error::PoolClosed).is_transient());
        assert!(
            StoreError::NotCommitted {
                reason: "closing".into()
            }
            .is_transient()
        );
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_transient());
        for code in ["08006", "40001", "40P01", "53300", "57P01"] {
            assert!(is_transient_sqlstate(code), "{code}");
        }
        // Unique and foreign-key violations, a syntax error.
        for code in ["23505", "23503", "42601"] {
            assert!(!is_transient_sqlstate(code), "{code}");
        }
        for code in ["5", "517", "6"] {
            assert!(is_transient_sqlite_code(code), "{code}");
        }
        // A constraint failure and a unique violation (its extended code).
        for code in ["19", "2067"] {
            assert!(!is_transient_sqlite_code(code), "{code}");
        }
        assert!(
            !StoreError::Corrupt {
                column: "state",
                value: "x".into()
            }
            .is_transient()
        );
    }
}
