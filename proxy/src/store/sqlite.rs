//! [`SqliteStore`]: the [`Store`] on a SQLite file, through sqlx's query API.
//!
//! The file lives in the configured data directory and runs in WAL mode (readers never wait
//! for the writer), with foreign keys on, `synchronous = FULL` (a committed payment
//! transition survives a power cut, which "persist before acting" depends on) and a busy
//! timeout, so that concurrent writers queue instead of failing.
//!
//! Payment and refund writes go through one writer task with its own connection, which
//! commits the writes queued meanwhile together in one `BEGIN IMMEDIATE` transaction (group
//! commit, see `sqlite_writer`): a read-check-write sequence (idempotency check, version
//! check, refund cap) cannot interleave with another writer, no writer sleeps in SQLite's
//! busy handler, and a burst of payments shares its fsyncs. Reads use a pool of connections
//! and never wait for the writer (WAL). Terminal changes, rare and often made by another
//! process (`paycode-proxy terminal …`), use their own transactions.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use paycode_api::{AttemptId, AuthCode, Fen, PaymentState};
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqliteConnection, Transaction};
use wxpay::messages::{OutRefundNo, OutTradeNo};

use super::records::{
    Action, CloseState, Failure, Millis, PaymentEvent, PaymentRecord, RefundRecord, TerminalRecord,
    parse_refund_state, refund_state_name,
};
use super::sqlite_writer::Writer;
use super::{InsertOutcome, Store, StoreError};
use crate::config::StoreConfig;
use crate::private_file;

/// How long a writer waits for the write lock before giving up with an error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The reading connection pool's size: long-polls and lists read in parallel under WAL
/// (payment and refund writes have the writer's own connection).
const MAX_CONNECTIONS: u32 = 8;

/// The migrations in `proxy/migrations/sqlite`, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The states of a settled payment, as SQL. It must read exactly like the predicate of the
/// partial index `payments_unsettled_by_next_action`, or SQLite will not use that index;
/// a unit test checks it against [`PaymentState::is_settled`].
const SETTLED_STATES_SQL: &str = "('paid', 'failed', 'cancelled')";

const PAYMENT_COLUMNS: &str = "id, attempt_id, terminal_id, out_trade_no, amount_fen, auth_code, \
     auth_code_last4, description, state, version, maybe_sent, micropay_attempts, query_count, \
     reverse_count, cancel_requested, seen_paid, money_returned, transaction_id, failure_code, \
     failure_message, attention_reason, submitted_at, next_action_at, created_at, updated_at, \
     settled_at, business_day, lease_owner, lease_until, next_action, pending_failure_code, \
     pending_failure_message, retry_attempts, not_sent_attempts, auth_code_fingerprint, \
     close_state";

/// The columns a payment is created with and never changes.
const PAYMENT_IMMUTABLE_COLUMNS: &str = "id, attempt_id, terminal_id, out_trade_no, amount_fen, \
     auth_code_last4, created_at, business_day, auth_code_fingerprint";

/// The columns every update rewrites, in the order [`bind_mutable`] binds them.
const PAYMENT_MUTABLE_COLUMNS: &str = "auth_code, description, state, version, maybe_sent, \
     micropay_attempts, query_count, reverse_count, cancel_requested, seen_paid, \
     money_returned, transaction_id, failure_code, failure_message, attention_reason, \
     submitted_at, next_action_at, updated_at, settled_at, lease_owner, lease_until, \
     next_action, pending_failure_code, pending_failure_message, retry_attempts, \
     not_sent_attempts, close_state";

/// One `?` per entry of [`PAYMENT_MUTABLE_COLUMNS`].
const PAYMENT_MUTABLE_PLACEHOLDERS: &str =
    "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?";

const REFUND_COLUMNS: &str = "id, payment_id, refund_attempt_id, out_refund_no, amount_fen, reason, \
     state, version, wechat_refund_id, failure_code, failure_message, attempts, next_action_at, \
     created_at, updated_at, applied_at";

const TERMINAL_COLUMNS: &str = "id, name, token_hash, created_at, revoked_at";

/// The [`Store`] on a SQLite database.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: Writer,
}

impl SqliteStore {
    /// Opens (creating if needed) the database named by `config`, and brings its schema up
    /// to date. Creates the data directory first.
    pub async fn connect(config: &StoreConfig) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StoreError::DataDirectory {
            path: config.data_dir.clone(),
            source,
        })?;
        let options = match &config.database_url {
            Some(url) => SqliteConnectOptions::from_str(url)?,
            None => SqliteConnectOptions::new().filename(config.default_database_path()),
        };
        let database = options.get_filename().to_owned();
        // The database holds payments and token hashes: owner-only, like its -wal and -shm
        // files, which SQLite creates with the database file's mode.
        if database != Path::new(":memory:") && !database.as_os_str().is_empty() {
            private_file::ensure_private(&database).map_err(|source| StoreError::Permissions {
                path: database.clone(),
                source,
            })?;
            for suffix in ["-wal", "-shm"] {
                let mut companion = database.clone().into_os_string();
                companion.push(suffix);
                let companion = std::path::PathBuf::from(companion);
                if companion.exists() {
                    private_file::restrict_to_owner(&companion).map_err(|source| {
                        StoreError::Permissions {
                            path: companion.clone(),
                            source,
                        }
                    })?;
                }
            }
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        let writer = Writer::start(&options).await?;
        Ok(SqliteStore { pool, writer })
    }

    /// Starts a transaction that holds the write lock from its first statement.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_payment(
        &self,
        payment: &PaymentRecord,
    ) -> Result<InsertOutcome<PaymentRecord>, StoreError> {
        let payment = payment.clone();
        self.writer
            .write(move |connection| Box::pin(insert_payment(connection, payment)))
            .await
    }

    async fn get_payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(payment_from_row).transpose()
    }

    async fn get_payment_by_attempt(
        &self,
        attempt_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE attempt_id = ?"
        ))
        .bind(attempt_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(payment_from_row).transpose()
    }

    async fn update_payment(
        &self,
        payment: &PaymentRecord,
        detail: &str,
    ) -> Result<PaymentRecord, StoreError> {
        let (payment, detail) = (payment.clone(), detail.to_owned());
        self.writer
            .write(move |connection| Box::pin(update_payment(connection, payment, detail)))
            .await
    }

    async fn list_payments(
        &self,
        business_day: NaiveDate,
        terminal_id: Option<&str>,
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        let rows = match terminal_id {
            Some(terminal_id) => {
                sqlx::query(&format!(
                    "SELECT {PAYMENT_COLUMNS} FROM payments \
                     WHERE business_day = ? AND terminal_id = ? \
                     ORDER BY created_at DESC, id DESC"
                ))
                .bind(day_to_text(business_day))
                .bind(terminal_id)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {PAYMENT_COLUMNS} FROM payments WHERE business_day = ? \
                     ORDER BY created_at DESC, id DESC"
                ))
                .bind(day_to_text(business_day))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(payment_from_row).collect()
    }

    async fn unsettled_payments(&self) -> Result<Vec<PaymentRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE state NOT IN {SETTLED_STATES_SQL} \
             ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(payment_from_row).collect()
    }

    async fn payments_to_close(&self) -> Result<Vec<PaymentRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE close_state = 'pending' \
             ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(payment_from_row).collect()
    }

    async fn count_payments_by_state(&self) -> Result<Vec<(PaymentState, u64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS count FROM payments GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_payment_state(&row.try_get::<String, _>("state")?)?,
                    i64_to_u64(row.try_get("count")?, "COUNT(*)")?,
                ))
            })
            .collect()
    }

    async fn payment_events(&self, payment_id: &str) -> Result<Vec<PaymentEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT payment_id, at, from_state, to_state, detail FROM payment_events \
             WHERE payment_id = ? ORDER BY id",
        )
        .bind(payment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let from_state: Option<String> = row.try_get("from_state")?;
                Ok(PaymentEvent {
                    payment_id: row.try_get("payment_id")?,
                    at: Millis(row.try_get("at")?),
                    from_state: from_state.as_deref().map(parse_payment_state).transpose()?,
                    to_state: parse_payment_state(&row.try_get::<String, _>("to_state")?)?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }

    async fn insert_refund(
        &self,
        refund: &RefundRecord,
    ) -> Result<InsertOutcome<RefundRecord>, StoreError> {
        let refund = refund.clone();
        self.writer
            .write(move |connection| Box::pin(insert_refund(connection, refund)))
            .await
    }

    async fn update_refund(&self, refund: &RefundRecord) -> Result<RefundRecord, StoreError> {
        let refund = refund.clone();
        self.writer
            .write(move |connection| Box::pin(update_refund(connection, refund)))
            .await
    }

    async fn get_refund(&self, id: &str) -> Result<Option<RefundRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(refund_from_row).transpose()
    }

    async fn refunds_for_payment(&self, payment_id: &str) -> Result<Vec<RefundRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = ? ORDER BY created_at, id"
        ))
        .bind(payment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(refund_from_row).collect()
    }

    async fn refunds_for_day(
        &self,
        business_day: NaiveDate,
        terminal_id: Option<&str>,
    ) -> Result<Vec<RefundRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id IN \
             (SELECT id FROM payments WHERE business_day = ?1 \
              AND (?2 IS NULL OR terminal_id = ?2)) \
             ORDER BY created_at, id"
        ))
        .bind(day_to_text(business_day))
        .bind(terminal_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(refund_from_row).collect()
    }

    async fn unfinished_refunds(&self) -> Result<Vec<RefundRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds \
             WHERE state IN ('queued', 'submitting', 'processing') \
             ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(refund_from_row).collect()
    }

    async fn add_terminal(
        &self,
        name: &str,
        token_hash: &str,
    ) -> Result<TerminalRecord, StoreError> {
        let terminal = TerminalRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            token_hash: token_hash.to_owned(),
            created_at: Millis::now(),
            revoked_at: None,
        };
        sqlx::query(&format!(
            "INSERT INTO terminals ({TERMINAL_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
        ))
        .bind(&terminal.id)
        .bind(&terminal.name)
        .bind(&terminal.token_hash)
        .bind(terminal.created_at.0)
        .bind(terminal.revoked_at.map(|at| at.0))
        .execute(&self.pool)
        .await
        .map_err(|error| unique_violation_as_exists(error, "terminal", name))?;
        Ok(terminal)
    }

    async fn terminal_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<TerminalRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TERMINAL_COLUMNS} FROM terminals WHERE token_hash = ?"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(terminal_from_row).transpose()
    }

    async fn list_terminals(&self) -> Result<Vec<TerminalRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TERMINAL_COLUMNS} FROM terminals ORDER BY created_at, name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(terminal_from_row).collect()
    }

    async fn add_pairing_code(
        &self,
        terminal_name: &str,
        code_hash: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<TerminalRecord, StoreError> {
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "SELECT {TERMINAL_COLUMNS} FROM terminals WHERE name = ? AND revoked_at IS NULL"
        ))
        .bind(terminal_name)
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            entity: "terminal",
            key: terminal_name.to_owned(),
        })?;
        let terminal = terminal_from_row(&row)?;
        sqlx::query("DELETE FROM pairing_codes WHERE terminal_id = ? OR expires_at <= ?")
            .bind(&terminal.id)
            .bind(now.0)
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "INSERT INTO pairing_codes (code_hash, terminal_id, created_at, expires_at) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(code_hash)
        .bind(&terminal.id)
        .bind(now.0)
        .bind(expires_at.0)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(terminal)
    }

    async fn redeem_pairing_code(
        &self,
        code_hash: &str,
        now: Millis,
        new_token_hash: &str,
    ) -> Result<Option<TerminalRecord>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let code = sqlx::query(
            "DELETE FROM pairing_codes WHERE code_hash = ? RETURNING terminal_id, expires_at",
        )
        .bind(code_hash)
        .fetch_optional(&mut *transaction)
        .await?;
        let terminal_id = match code {
            Some(row) if row.try_get::<i64, _>("expires_at")? > now.0 => {
                row.try_get::<String, _>("terminal_id")?
            }
            _ => {
                transaction.commit().await?;
                return Ok(None);
            }
        };
        let updated =
            sqlx::query("UPDATE terminals SET token_hash = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(new_token_hash)
                .bind(&terminal_id)
                .execute(&mut *transaction)
                .await?;
        let terminal = if updated.rows_affected() == 1 {
            let row = sqlx::query(&format!(
                "SELECT {TERMINAL_COLUMNS} FROM terminals WHERE id = ?"
            ))
            .bind(&terminal_id)
            .fetch_one(&mut *transaction)
            .await?;
            Some(terminal_from_row(&row)?)
        } else {
            None
        };
        transaction.commit().await?;
        Ok(terminal)
    }

    async fn revoke_terminal(&self, name: &str) -> Result<TerminalRecord, StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query("UPDATE terminals SET revoked_at = COALESCE(revoked_at, ?) WHERE name = ?")
            .bind(Millis::now().0)
            .bind(name)
            .execute(&mut *transaction)
            .await?;
        let row = sqlx::query(&format!(
            "SELECT {TERMINAL_COLUMNS} FROM terminals WHERE name = ?"
        ))
        .bind(name)
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            entity: "terminal",
            key: name.to_owned(),
        })?;
        let terminal = terminal_from_row(&row)?;
        transaction.commit().await?;
        Ok(terminal)
    }
}

// The write operations, each run by the writer inside its batch transaction. Each checks
// everything that can refuse it (idempotency, version, cap) before its first write, so a
// refusal leaves nothing behind in the shared transaction.

async fn insert_payment(
    connection: &mut SqliteConnection,
    payment: PaymentRecord,
) -> Result<InsertOutcome<PaymentRecord>, StoreError> {
    let query = format!(
        "INSERT INTO payments ({PAYMENT_IMMUTABLE_COLUMNS}, {PAYMENT_MUTABLE_COLUMNS}) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, {PAYMENT_MUTABLE_PLACEHOLDERS}) \
         ON CONFLICT (attempt_id) DO NOTHING"
    );
    let inserted = sqlx::query(&query)
        .bind(&payment.id)
        .bind(payment.attempt_id.as_str())
        .bind(&payment.terminal_id)
        .bind(payment.out_trade_no.as_str())
        .bind(fen_to_i64(payment.amount_fen, "amount_fen")?)
        .bind(&payment.auth_code_last4)
        .bind(payment.created_at.0)
        .bind(day_to_text(payment.business_day))
        .bind(&payment.auth_code_fingerprint);
    let inserted = bind_mutable(inserted, &payment, payment.version, payment.updated_at)?
        .execute(&mut *connection)
        .await
        .map_err(|error| {
            unique_violation_as_exists(error, "payment", payment.out_trade_no.as_str())
        })?;
    if inserted.rows_affected() == 0 {
        let row = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE attempt_id = ?"
        ))
        .bind(payment.attempt_id.as_str())
        .fetch_one(&mut *connection)
        .await?;
        let existing = payment_from_row(&row)?;
        return match payment_difference(&existing, &payment) {
            None => Ok(InsertOutcome::Existing(existing)),
            Some(differs) => Err(StoreError::Conflict {
                entity: "payment",
                attempt_id: payment.attempt_id.to_string(),
                differs,
            }),
        };
    }
    sqlx::query(
        "INSERT INTO payment_events (payment_id, at, from_state, to_state, detail) \
         VALUES (?, ?, NULL, ?, 'created')",
    )
    .bind(&payment.id)
    .bind(payment.created_at.0)
    .bind(payment.state.as_str())
    .execute(&mut *connection)
    .await?;
    Ok(InsertOutcome::Inserted(payment))
}

/// Binds a payment's mutable columns in the order of [`PAYMENT_MUTABLE_COLUMNS`], with the
/// version and update time to store.
fn bind_mutable<'q>(
    query: Query<'q, Sqlite, SqliteArguments<'q>>,
    payment: &'q PaymentRecord,
    version: u64,
    updated_at: Millis,
) -> Result<Query<'q, Sqlite, SqliteArguments<'q>>, StoreError> {
    let pending_code = payment
        .pending_failure
        .as_ref()
        .map(|failure| failure.code.as_str());
    let pending_message = payment
        .pending_failure
        .as_ref()
        .map(|failure| failure.message.as_str());
    Ok(query
        .bind(payment.auth_code.as_ref().map(AuthCode::expose))
        .bind(&payment.description)
        .bind(payment.state.as_str())
        .bind(u64_to_i64(version, "version")?)
        .bind(payment.maybe_sent)
        .bind(payment.micropay_attempts)
        .bind(payment.query_count)
        .bind(payment.reverse_count)
        .bind(payment.cancel_requested)
        .bind(payment.seen_paid)
        .bind(payment.money_returned)
        .bind(&payment.transaction_id)
        .bind(&payment.failure_code)
        .bind(&payment.failure_message)
        .bind(&payment.attention_reason)
        .bind(payment.submitted_at.map(|at| at.0))
        .bind(payment.next_action_at.map(|at| at.0))
        .bind(updated_at.0)
        .bind(payment.settled_at.map(|at| at.0))
        .bind(&payment.lease_owner)
        .bind(payment.lease_until.map(|at| at.0))
        .bind(payment.next_action.map(Action::as_str))
        .bind(pending_code)
        .bind(pending_message)
        .bind(payment.reverse_attempts)
        .bind(payment.not_sent_attempts)
        .bind(payment.close_state.map(CloseState::as_str)))
}

async fn update_payment(
    connection: &mut SqliteConnection,
    payment: PaymentRecord,
    detail: String,
) -> Result<PaymentRecord, StoreError> {
    let now = Millis::now();
    let expected_version = u64_to_i64(payment.version, "version")?;
    // The event goes first: it reads the state being replaced, and it is written only if
    // the row is still at the expected version, which is also the update's condition.
    let recorded = sqlx::query(
        "INSERT INTO payment_events (payment_id, at, from_state, to_state, detail) \
         SELECT id, ?, state, ?, ? FROM payments WHERE id = ? AND version = ?",
    )
    .bind(now.0)
    .bind(payment.state.as_str())
    .bind(&detail)
    .bind(&payment.id)
    .bind(expected_version)
    .execute(&mut *connection)
    .await?;
    if recorded.rows_affected() == 0 {
        return Err(stale_or_missing(connection, "payment", &payment.id, payment.version).await);
    }
    let query = format!(
        "UPDATE payments SET ({PAYMENT_MUTABLE_COLUMNS}) = ({PAYMENT_MUTABLE_PLACEHOLDERS}) \
         WHERE id = ? AND version = ? RETURNING {PAYMENT_COLUMNS}"
    );
    let update = bind_mutable(sqlx::query(&query), &payment, payment.version + 1, now)?;
    let row = update
        .bind(&payment.id)
        .bind(expected_version)
        .fetch_one(&mut *connection)
        .await?;
    // The row as stored, immutable fields included, rather than the caller's copy.
    payment_from_row(&row)
}

async fn insert_refund(
    connection: &mut SqliteConnection,
    refund: RefundRecord,
) -> Result<InsertOutcome<RefundRecord>, StoreError> {
    let existing = sqlx::query(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE refund_attempt_id = ?"
    ))
    .bind(refund.refund_attempt_id.as_str())
    .fetch_optional(&mut *connection)
    .await?;
    if let Some(row) = existing {
        let existing = refund_from_row(&row)?;
        let differs = if existing.payment_id != refund.payment_id {
            Some("payment_id")
        } else if existing.amount_fen != refund.amount_fen {
            Some("amount_fen")
        } else {
            None
        };
        return match differs {
            None => Ok(InsertOutcome::Existing(existing)),
            Some(differs) => Err(StoreError::Conflict {
                entity: "refund",
                attempt_id: refund.refund_attempt_id.to_string(),
                differs,
            }),
        };
    }
    let payment_amount: i64 = sqlx::query("SELECT amount_fen FROM payments WHERE id = ?")
        .bind(&refund.payment_id)
        .fetch_optional(&mut *connection)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            entity: "payment",
            key: refund.payment_id.clone(),
        })?
        .try_get("amount_fen")?;
    let already_refunded: i64 = sqlx::query(
        "SELECT COALESCE(SUM(amount_fen), 0) AS total FROM refunds \
         WHERE payment_id = ? AND state <> 'failed'",
    )
    .bind(&refund.payment_id)
    .fetch_one(&mut *connection)
    .await?
    .try_get("total")?;
    let payment_amount = i64_to_fen(payment_amount, "payments.amount_fen")?;
    let already_refunded = i64_to_fen(already_refunded, "refunds.amount_fen")?;
    let fits = already_refunded
        .checked_add(refund.amount_fen)
        .is_some_and(|total| total <= payment_amount);
    if !fits {
        return Err(StoreError::RefundExceedsPayment {
            payment_amount,
            already_refunded,
            requested: refund.amount_fen,
        });
    }
    sqlx::query(&format!(
        "INSERT INTO refunds ({REFUND_COLUMNS}) VALUES \
         (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&refund.id)
    .bind(&refund.payment_id)
    .bind(refund.refund_attempt_id.as_str())
    .bind(refund.out_refund_no.as_str())
    .bind(fen_to_i64(refund.amount_fen, "amount_fen")?)
    .bind(&refund.reason)
    .bind(refund_state_name(refund.state))
    .bind(u64_to_i64(refund.version, "version")?)
    .bind(&refund.wechat_refund_id)
    .bind(&refund.failure_code)
    .bind(&refund.failure_message)
    .bind(refund.attempts)
    .bind(refund.next_action_at.map(|at| at.0))
    .bind(refund.created_at.0)
    .bind(refund.updated_at.0)
    .bind(refund.applied_at.map(|at| at.0))
    .execute(&mut *connection)
    .await
    .map_err(|error| unique_violation_as_exists(error, "refund", refund.out_refund_no.as_str()))?;
    Ok(InsertOutcome::Inserted(refund))
}

async fn update_refund(
    connection: &mut SqliteConnection,
    refund: RefundRecord,
) -> Result<RefundRecord, StoreError> {
    let expected_version = u64_to_i64(refund.version, "version")?;
    let row = sqlx::query(&format!(
        "UPDATE refunds SET state = ?, version = ?, wechat_refund_id = ?, failure_code = ?, \
         failure_message = ?, attempts = ?, next_action_at = ?, updated_at = ?, applied_at = ? \
         WHERE id = ? AND version = ? RETURNING {REFUND_COLUMNS}"
    ))
    .bind(refund_state_name(refund.state))
    .bind(expected_version + 1)
    .bind(&refund.wechat_refund_id)
    .bind(&refund.failure_code)
    .bind(&refund.failure_message)
    .bind(refund.attempts)
    .bind(refund.next_action_at.map(|at| at.0))
    .bind(Millis::now().0)
    .bind(refund.applied_at.map(|at| at.0))
    .bind(&refund.id)
    .bind(expected_version)
    .fetch_optional(&mut *connection)
    .await?;
    match row {
        Some(row) => refund_from_row(&row),
        None => Err(stale_or_missing(connection, "refund", &refund.id, refund.version).await),
    }
}

/// Why a versioned write to `entity` (`payment` or `refund`) matched no row: the row moved
/// past `expected`, or it does not exist.
async fn stale_or_missing(
    connection: &mut SqliteConnection,
    entity: &'static str,
    id: &str,
    expected: u64,
) -> StoreError {
    let query = match entity {
        "payment" => "SELECT 1 FROM payments WHERE id = ?",
        _ => "SELECT 1 FROM refunds WHERE id = ?",
    };
    match sqlx::query(query)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await
    {
        Ok(Some(_)) => StoreError::StaleVersion {
            entity,
            id: id.to_owned(),
            expected,
        },
        Ok(None) => StoreError::NotFound {
            entity,
            key: id.to_owned(),
        },
        Err(error) => StoreError::Database(error),
    }
}

/// Which field makes `requested` a different payment from `existing`, if any. The payment
/// code is compared in full while both records still hold it; once the engine has wiped the
/// stored code, its last four digits are all that is left to compare.
fn payment_difference(existing: &PaymentRecord, requested: &PaymentRecord) -> Option<&'static str> {
    let same_code = match (
        (&existing.auth_code, &existing.auth_code_fingerprint),
        (&requested.auth_code, &requested.auth_code_fingerprint),
    ) {
        ((Some(stored), _), (Some(given), _)) => stored == given,
        ((_, Some(stored)), (_, Some(given))) => stored == given,
        _ => existing.auth_code_last4 == requested.auth_code_last4,
    };
    if existing.amount_fen != requested.amount_fen {
        Some("amount_fen")
    } else if !same_code {
        Some("auth_code")
    } else if existing.terminal_id != requested.terminal_id {
        Some("terminal_id")
    } else {
        None
    }
}

/// Turns a unique-constraint failure into [`StoreError::AlreadyExists`]; other errors pass
/// through.
fn unique_violation_as_exists(error: sqlx::Error, entity: &'static str, key: &str) -> StoreError {
    match &error {
        sqlx::Error::Database(database_error) if database_error.is_unique_violation() => {
            StoreError::AlreadyExists {
                entity,
                key: key.to_owned(),
            }
        }
        _ => StoreError::Database(error),
    }
}

fn payment_from_row(row: &SqliteRow) -> Result<PaymentRecord, StoreError> {
    let attempt_id: String = row.try_get("attempt_id")?;
    let auth_code: Option<String> = row.try_get("auth_code")?;
    let business_day: String = row.try_get("business_day")?;
    // Validated once, here: the engine sends the stored number as it is.
    let out_trade_no: String = row.try_get("out_trade_no")?;
    Ok(PaymentRecord {
        id: row.try_get("id")?,
        attempt_id: AttemptId::parse(&attempt_id).map_err(|_| StoreError::Corrupt {
            column: "payments.attempt_id",
            value: attempt_id.clone(),
        })?,
        terminal_id: row.try_get("terminal_id")?,
        out_trade_no: OutTradeNo::new(out_trade_no.clone()).map_err(|_| StoreError::Corrupt {
            column: "payments.out_trade_no",
            value: out_trade_no,
        })?,
        amount_fen: i64_to_fen(row.try_get("amount_fen")?, "payments.amount_fen")?,
        auth_code: auth_code
            .map(|code| {
                AuthCode::parse(&code).map_err(|_| StoreError::Corrupt {
                    column: "payments.auth_code",
                    // The stored value is a payment code (or something else entirely);
                    // either way it must not reach a log, so only its length is reported.
                    value: format!("<{} characters>", code.len()),
                })
            })
            .transpose()?,
        auth_code_last4: row.try_get("auth_code_last4")?,
        auth_code_fingerprint: row.try_get("auth_code_fingerprint")?,
        description: row.try_get("description")?,
        state: parse_payment_state(&row.try_get::<String, _>("state")?)?,
        version: i64_to_u64(row.try_get("version")?, "payments.version")?,
        maybe_sent: row.try_get("maybe_sent")?,
        micropay_attempts: row.try_get("micropay_attempts")?,
        query_count: row.try_get("query_count")?,
        reverse_count: row.try_get("reverse_count")?,
        cancel_requested: row.try_get("cancel_requested")?,
        seen_paid: row.try_get("seen_paid")?,
        money_returned: row.try_get("money_returned")?,
        transaction_id: row.try_get("transaction_id")?,
        failure_code: row.try_get("failure_code")?,
        failure_message: row.try_get("failure_message")?,
        attention_reason: row.try_get("attention_reason")?,
        submitted_at: row.try_get::<Option<i64>, _>("submitted_at")?.map(Millis),
        next_action_at: row.try_get::<Option<i64>, _>("next_action_at")?.map(Millis),
        created_at: Millis(row.try_get("created_at")?),
        updated_at: Millis(row.try_get("updated_at")?),
        settled_at: row.try_get::<Option<i64>, _>("settled_at")?.map(Millis),
        business_day: NaiveDate::parse_from_str(&business_day, "%Y-%m-%d").map_err(|_| {
            StoreError::Corrupt {
                column: "payments.business_day",
                value: business_day.clone(),
            }
        })?,
        lease_owner: row.try_get("lease_owner")?,
        lease_until: row.try_get::<Option<i64>, _>("lease_until")?.map(Millis),
        next_action: row
            .try_get::<Option<String>, _>("next_action")?
            .map(|name| {
                Action::parse(&name).ok_or(StoreError::Corrupt {
                    column: "payments.next_action",
                    value: name,
                })
            })
            .transpose()?,
        pending_failure: match (
            row.try_get::<Option<String>, _>("pending_failure_code")?,
            row.try_get::<Option<String>, _>("pending_failure_message")?,
        ) {
            (Some(code), message) => Some(Failure::new(code, message.unwrap_or_default())),
            (None, _) => None,
        },
        reverse_attempts: row.try_get("retry_attempts")?,
        not_sent_attempts: row.try_get("not_sent_attempts")?,
        close_state: row
            .try_get::<Option<String>, _>("close_state")?
            .map(|name| {
                CloseState::parse(&name).ok_or(StoreError::Corrupt {
                    column: "payments.close_state",
                    value: name,
                })
            })
            .transpose()?,
    })
}

fn refund_from_row(row: &SqliteRow) -> Result<RefundRecord, StoreError> {
    let refund_attempt_id: String = row.try_get("refund_attempt_id")?;
    let state: String = row.try_get("state")?;
    // Validated once, here: the engine sends the stored number as it is.
    let out_refund_no: String = row.try_get("out_refund_no")?;
    Ok(RefundRecord {
        id: row.try_get("id")?,
        payment_id: row.try_get("payment_id")?,
        refund_attempt_id: AttemptId::parse(&refund_attempt_id).map_err(|_| {
            StoreError::Corrupt {
                column: "refunds.refund_attempt_id",
                value: refund_attempt_id.clone(),
            }
        })?,
        out_refund_no: OutRefundNo::new(out_refund_no.clone()).map_err(|_| {
            StoreError::Corrupt {
                column: "refunds.out_refund_no",
                value: out_refund_no,
            }
        })?,
        amount_fen: i64_to_fen(row.try_get("amount_fen")?, "refunds.amount_fen")?,
        reason: row.try_get("reason")?,
        state: parse_refund_state(&state).ok_or_else(|| StoreError::Corrupt {
            column: "refunds.state",
            value: state.clone(),
        })?,
        version: i64_to_u64(row.try_get("version")?, "refunds.version")?,
        wechat_refund_id: row.try_get("wechat_refund_id")?,
        failure_code: row.try_get("failure_code")?,
        failure_message: row.try_get("failure_message")?,
        attempts: row.try_get("attempts")?,
        next_action_at: row.try_get::<Option<i64>, _>("next_action_at")?.map(Millis),
        applied_at: row.try_get::<Option<i64>, _>("applied_at")?.map(Millis),
        created_at: Millis(row.try_get("created_at")?),
        updated_at: Millis(row.try_get("updated_at")?),
    })
}

fn terminal_from_row(row: &SqliteRow) -> Result<TerminalRecord, StoreError> {
    Ok(TerminalRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        token_hash: row.try_get("token_hash")?,
        created_at: Millis(row.try_get("created_at")?),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(Millis),
    })
}

fn parse_payment_state(name: &str) -> Result<PaymentState, StoreError> {
    PaymentState::parse(name).ok_or_else(|| StoreError::Corrupt {
        column: "state",
        value: name.to_owned(),
    })
}

fn day_to_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

fn u64_to_i64(value: u64, field: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { field })
}

fn fen_to_i64(amount: Fen, field: &'static str) -> Result<i64, StoreError> {
    u64_to_i64(amount.get(), field)
}

fn i64_to_u64(value: i64, column: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        column,
        value: value.to_string(),
    })
}

fn i64_to_fen(value: i64, column: &'static str) -> Result<Fen, StoreError> {
    i64_to_u64(value, column).map(Fen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_insert_and_update_column_lists_cover_every_column_once() {
        let names = |list: &str| {
            let mut names: Vec<String> =
                list.split(',').map(|name| name.trim().to_owned()).collect();
            names.sort();
            names
        };
        let mut written = names(PAYMENT_IMMUTABLE_COLUMNS);
        written.extend(names(PAYMENT_MUTABLE_COLUMNS));
        written.sort();
        assert_eq!(written, names(PAYMENT_COLUMNS));
        assert_eq!(
            PAYMENT_MUTABLE_PLACEHOLDERS.matches('?').count(),
            names(PAYMENT_MUTABLE_COLUMNS).len()
        );
    }

    #[test]
    fn the_settled_states_sql_matches_the_api() {
        let settled: Vec<String> = PaymentState::ALL
            .into_iter()
            .filter(|state| state.is_settled())
            .map(|state| format!("'{}'", state.as_str()))
            .collect();
        assert_eq!(SETTLED_STATES_SQL, format!("({})", settled.join(", ")));
        let migration = include_str!("../../migrations/sqlite/0001_init.sql");
        assert!(migration.contains(&format!("WHERE state NOT IN {SETTLED_STATES_SQL}")));
    }
}
