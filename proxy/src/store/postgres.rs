//! [`PostgresStore`]: the [`Store`] on a PostgreSQL database (`[store] database_url =
//! "postgres://…"`), the store several proxies can share once they lease the payments they
//! drive (`docs/postgresql.md` §4).
//!
//! Every method is one transaction at PostgreSQL's default isolation (READ COMMITTED) on a
//! pooled connection, and keeps the trait's promises with row locks and conditional writes
//! rather than a single writer (`docs/postgresql.md` §2):
//! - inserts are `INSERT … ON CONFLICT DO NOTHING`; when nothing was inserted, the stored row
//!   is read back and compared. A racing insert of the same key waits for the other
//!   transaction and then sees its row. A payment and its creation event are one statement.
//! - updates are `UPDATE … WHERE id = $n AND version = $m`. A payment update is one statement
//!   that locks the row at that version (`SELECT … FOR NO KEY UPDATE`), updates it and writes
//!   its audit event from the update's result; a writer that lost the race finds no row at
//!   its version once the winner commits.
//! - a refund locks its payment (`FOR NO KEY UPDATE`) before the idempotency check and the
//!   sum of the payment's refunds, so two refunds of one payment are decided one after the
//!   other and the cap holds.
//!
//! Times are BIGINT epoch milliseconds, as on SQLite; the schema is in
//! `proxy/migrations/postgres`, numbered like the SQLite one, and is brought up to date on
//! connect (the migrator holds an advisory lock, so proxies starting together apply it once).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use paycode_api::PaymentState;
use sqlx::migrate::Migrate;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, PgConnection, Row};

use super::records::{
    MerchantIds, Millis, PaymentEvent, PaymentRecord, RefundRecord, StoreRecord, TerminalRecord,
    refund_state_name,
};
use super::rows::{
    Columns, EVENT_COLUMNS, PAYMENT_COLUMNS, PAYMENT_IMMUTABLE_COLUMNS, PAYMENT_MUTABLE_COLUMNS,
    REFUND_COLUMNS, SETTLED_STATES_SQL, STORE_COLUMNS, TERMINAL_COLUMNS,
    UNFINISHED_REFUND_STATES_SQL, bind_mutable, bind_refund, check_refund_cap, column_count,
    event_from_row, existing_or_conflict, fen_to_i64, i64_to_u64, parse_payment_state,
    payment_difference, payment_from_row, refund_difference, refund_from_row, store_from_row,
    terminal_from_row, u64_to_i64, unique_violation_as_exists,
};
use super::{InsertOutcome, Store, StoreError};
use crate::config::StoreConfig;

/// The migrations in `proxy/migrations/postgres`, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// How long a call waits for a pooled connection before failing with a transient error.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The [`Store`] on a PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database named by `config.database_url` with a pool of
    /// `config.pool_size` connections, and brings its schema up to date.
    pub async fn connect(config: &StoreConfig) -> Result<PostgresStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(config.pool_size)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // Check a pooled connection before handing it out (sqlx's default, relied on):
            // one the server ended (a restart, a fail-over, an administrator) is replaced
            // instead of failing the call that drew it.
            .test_before_acquire(true)
            .connect_with(connect_options(config)?)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PostgresStore { pool })
    }

    /// Brings the schema of the database named by `config` up to date and returns the
    /// versions applied now, oldest first.
    pub async fn migrate(config: &StoreConfig) -> Result<Vec<i64>, StoreError> {
        let mut connection = connect_options(config)?.connect().await?;
        connection.ensure_migrations_table().await?;
        let before = connection.list_applied_migrations().await?;
        MIGRATOR.run(&mut connection).await?;
        connection.close().await?;
        Ok(super::newly_applied(&MIGRATOR, &before))
    }
}

/// The connection settings in `config.database_url` (validated by `Config::validate`).
fn connect_options(config: &StoreConfig) -> Result<PgConnectOptions, StoreError> {
    let url = config.database_url.as_deref().unwrap_or_default();
    Ok(PgConnectOptions::from_str(url)?.application_name("paycode-proxy"))
}

impl Columns for PgRow {
    fn text(&self, column: &'static str) -> Result<String, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn optional_text(&self, column: &'static str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn integer(&self, column: &'static str) -> Result<i64, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn optional_integer(&self, column: &'static str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn flag(&self, column: &'static str) -> Result<bool, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn day(&self, column: &'static str) -> Result<NaiveDate, StoreError> {
        Ok(self.try_get(column)?)
    }
}

/// `$first, $first+1, …` for `count` parameters.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn insert_payment(
        &self,
        payment: &PaymentRecord,
    ) -> Result<InsertOutcome<PaymentRecord>, StoreError> {
        let mut connection = self.pool.acquire().await?;
        insert_payment(&mut connection, payment).await
    }

    async fn get_payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"
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
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE attempt_id = $1"
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
        let mut connection = self.pool.acquire().await?;
        update_payment(&mut connection, payment, detail).await
    }

    async fn list_payments(
        &self,
        business_day: NaiveDate,
        store_id: &str,
        terminal_id: Option<&str>,
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments \
             WHERE store_id = $1 AND business_day = $2 AND ($3::TEXT IS NULL OR terminal_id = $3) \
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(store_id)
        .bind(business_day)
        .bind(terminal_id)
        .fetch_all(&self.pool)
        .await?;
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
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM payment_events WHERE payment_id = $1 ORDER BY id"
        ))
        .bind(payment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn insert_refund(
        &self,
        refund: &RefundRecord,
    ) -> Result<InsertOutcome<RefundRecord>, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let outcome = insert_refund(&mut transaction, refund).await?;
        transaction.commit().await?;
        Ok(outcome)
    }

    async fn update_refund(&self, refund: &RefundRecord) -> Result<RefundRecord, StoreError> {
        let expected_version = u64_to_i64(refund.version, "version")?;
        let row = sqlx::query(&format!(
            "UPDATE refunds SET state = $1, version = $2, wechat_refund_id = $3, \
             failure_code = $4, failure_message = $5, attempts = $6, next_action_at = $7, \
             updated_at = $8, applied_at = $9 \
             WHERE id = $10 AND version = $11 RETURNING {REFUND_COLUMNS}"
        ))
        .bind(refund_state_name(refund.state))
        .bind(expected_version + 1)
        .bind(&refund.wechat_refund_id)
        .bind(&refund.failure_code)
        .bind(&refund.failure_message)
        .bind(i64::from(refund.attempts))
        .bind(refund.next_action_at.map(|at| at.0))
        .bind(Millis::now().0)
        .bind(refund.applied_at.map(|at| at.0))
        .bind(&refund.id)
        .bind(expected_version)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => refund_from_row(&row),
            None => {
                let mut connection = self.pool.acquire().await?;
                Err(stale_or_missing(&mut connection, "refund", &refund.id, refund.version).await)
            }
        }
    }

    async fn get_refund(&self, id: &str) -> Result<Option<RefundRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(refund_from_row).transpose()
    }

    async fn refunds_for_payment(&self, payment_id: &str) -> Result<Vec<RefundRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = $1 ORDER BY created_at, id"
        ))
        .bind(payment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(refund_from_row).collect()
    }

    async fn refunds_for_day(
        &self,
        business_day: NaiveDate,
        store_id: &str,
        terminal_id: Option<&str>,
    ) -> Result<Vec<RefundRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id IN \
             (SELECT id FROM payments WHERE store_id = $1 AND business_day = $2 \
              AND ($3::TEXT IS NULL OR terminal_id = $3)) \
             ORDER BY created_at, id"
        ))
        .bind(store_id)
        .bind(business_day)
        .bind(terminal_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(refund_from_row).collect()
    }

    async fn unfinished_refunds(&self) -> Result<Vec<RefundRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds \
             WHERE state IN {UNFINISHED_REFUND_STATES_SQL} ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(refund_from_row).collect()
    }

    async fn add_terminal(
        &self,
        name: &str,
        token_hash: &str,
        store_id: &str,
    ) -> Result<TerminalRecord, StoreError> {
        let terminal = TerminalRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            store_id: store_id.to_owned(),
            token_hash: token_hash.to_owned(),
            created_at: Millis::now(),
            revoked_at: None,
        };
        sqlx::query(&format!(
            "INSERT INTO terminals ({TERMINAL_COLUMNS}) VALUES ({})",
            placeholders(1, column_count(TERMINAL_COLUMNS))
        ))
        .bind(&terminal.id)
        .bind(&terminal.name)
        .bind(&terminal.token_hash)
        .bind(terminal.created_at.0)
        .bind(terminal.revoked_at.map(|at| at.0))
        .bind(&terminal.store_id)
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
            "SELECT {TERMINAL_COLUMNS} FROM terminals WHERE token_hash = $1"
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
        let mut transaction = self.pool.begin().await?;
        // The terminal's row lock orders two codes issued for it at once: the later one wins.
        let row = sqlx::query(&format!(
            "SELECT {TERMINAL_COLUMNS} FROM terminals WHERE name = $1 AND revoked_at IS NULL \
             FOR UPDATE"
        ))
        .bind(terminal_name)
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            entity: "terminal",
            key: terminal_name.to_owned(),
        })?;
        let terminal = terminal_from_row(&row)?;
        sqlx::query("DELETE FROM pairing_codes WHERE terminal_id = $1 OR expires_at <= $2")
            .bind(&terminal.id)
            .bind(now.0)
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "INSERT INTO pairing_codes (code_hash, terminal_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
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
        let mut transaction = self.pool.begin().await?;
        // Deleting first makes the code single-use even when two exchanges race: only one
        // of them gets the row back.
        let code = sqlx::query(
            "DELETE FROM pairing_codes WHERE code_hash = $1 RETURNING terminal_id, expires_at",
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
        let row = sqlx::query(&format!(
            "UPDATE terminals SET token_hash = $1 WHERE id = $2 AND revoked_at IS NULL \
             RETURNING {TERMINAL_COLUMNS}"
        ))
        .bind(new_token_hash)
        .bind(&terminal_id)
        .fetch_optional(&mut *transaction)
        .await?;
        transaction.commit().await?;
        row.as_ref().map(terminal_from_row).transpose()
    }

    async fn revoke_terminal(&self, name: &str) -> Result<TerminalRecord, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE terminals SET revoked_at = COALESCE(revoked_at, $1) WHERE name = $2 \
             RETURNING {TERMINAL_COLUMNS}"
        ))
        .bind(Millis::now().0)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            entity: "terminal",
            key: name.to_owned(),
        })?;
        terminal_from_row(&row)
    }

    async fn add_store(&self, store: &StoreRecord) -> Result<StoreRecord, StoreError> {
        sqlx::query(&format!(
            "INSERT INTO stores ({STORE_COLUMNS}) VALUES ({})",
            placeholders(1, column_count(STORE_COLUMNS))
        ))
        .bind(&store.id)
        .bind(&store.name)
        .bind(&store.account)
        .bind(&store.sub_mch_id)
        .bind(&store.sub_appid)
        .bind(&store.address)
        .bind(store.created_at.0)
        .bind(store.disabled_at.map(|at| at.0))
        .execute(&self.pool)
        .await
        .map_err(|error| unique_violation_as_exists(error, "store", &store.name))?;
        Ok(store.clone())
    }

    async fn get_store(&self, id: &str) -> Result<Option<StoreRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {STORE_COLUMNS} FROM stores WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(store_from_row).transpose()
    }

    async fn list_stores(&self) -> Result<Vec<StoreRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {STORE_COLUMNS} FROM stores ORDER BY created_at, name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(store_from_row).collect()
    }

    async fn disable_store(&self, name: &str) -> Result<StoreRecord, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE stores SET disabled_at = COALESCE(disabled_at, $1) WHERE name = $2 \
             RETURNING {STORE_COLUMNS}"
        ))
        .bind(Millis::now().0)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            entity: "store",
            key: name.to_owned(),
        })?;
        store_from_row(&row)
    }

    async fn adopt_unbound_rows(
        &self,
        store: &StoreRecord,
        merchant: &MerchantIds,
    ) -> Result<u64, StoreError> {
        // One transaction: proxies starting together may both adopt; the second finds the
        // rows filled in (its updates wait for the first's row locks, then match nothing).
        let mut transaction = self.pool.begin().await?;
        sqlx::query(
            "UPDATE stores SET sub_mch_id = $1, sub_appid = $2 \
             WHERE id = $3 AND sub_mch_id IS NULL AND sub_appid IS NULL",
        )
        .bind(&merchant.sub_mch_id)
        .bind(&merchant.sub_appid)
        .bind(&store.id)
        .execute(&mut *transaction)
        .await?;
        let mut adopted = 0;
        for table in ["payments", "refunds"] {
            adopted += sqlx::query(&format!(
                "UPDATE {table} SET appid = $1, mch_id = $2, sub_appid = $3, sub_mch_id = $4 \
                 WHERE store_id = $5 AND mch_id IS NULL"
            ))
            .bind(&merchant.appid)
            .bind(&merchant.mch_id)
            .bind(&merchant.sub_appid)
            .bind(&merchant.sub_mch_id)
            .bind(&store.id)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        }
        transaction.commit().await?;
        Ok(adopted)
    }
}

// The write operations. A payment's insert and update are single statements (each its own
// transaction); a refund's insert is a transaction that an error rolls back (it is dropped
// uncommitted), so a refusal leaves nothing behind.

async fn insert_payment(
    connection: &mut PgConnection,
    payment: &PaymentRecord,
) -> Result<InsertOutcome<PaymentRecord>, StoreError> {
    // One statement, so one implicit transaction and one round trip: the payment and its
    // creation event, or (a row with the same attempt, order number or id exists) neither.
    let immutable = column_count(PAYMENT_IMMUTABLE_COLUMNS);
    let query = format!(
        "WITH inserted AS (\
             INSERT INTO payments ({PAYMENT_IMMUTABLE_COLUMNS}, {PAYMENT_MUTABLE_COLUMNS}) \
             VALUES ({}) ON CONFLICT DO NOTHING \
             RETURNING id, state, created_at) \
         INSERT INTO payment_events (payment_id, at, from_state, to_state, detail) \
         SELECT id, created_at, NULL, state, 'created' FROM inserted",
        placeholders(1, immutable + column_count(PAYMENT_MUTABLE_COLUMNS))
    );
    let insert = sqlx::query(&query)
        .bind(&payment.id)
        .bind(payment.attempt_id.as_str())
        .bind(&payment.terminal_id)
        .bind(payment.out_trade_no.as_str())
        .bind(fen_to_i64(payment.amount_fen, "amount_fen")?)
        .bind(&payment.auth_code_last4)
        .bind(payment.created_at.0)
        .bind(payment.business_day)
        .bind(&payment.auth_code_fingerprint)
        .bind(&payment.store_id)
        .bind(&payment.merchant.appid)
        .bind(&payment.merchant.mch_id)
        .bind(&payment.merchant.sub_appid)
        .bind(&payment.merchant.sub_mch_id);
    let inserted = bind_mutable(insert, payment, payment.version, payment.updated_at)?
        .execute(&mut *connection)
        .await?;
    if inserted.rows_affected() == 1 {
        return Ok(InsertOutcome::Inserted(payment.clone()));
    }
    // The other row was stored first and committed (a conflicting insert waits for the other
    // transaction), so this new statement sees it. `ON CONFLICT` names no column on purpose:
    // two racing inserts of one attempt clash on `out_trade_no` too, which a conflict target
    // of `attempt_id` alone would turn into a unique-violation error.
    let row = sqlx::query(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE attempt_id = $1"
    ))
    .bind(payment.attempt_id.as_str())
    .fetch_optional(&mut *connection)
    .await?;
    let Some(row) = row else {
        return Err(StoreError::AlreadyExists {
            entity: "payment",
            key: payment.out_trade_no.as_str().to_owned(),
        });
    };
    let existing = payment_from_row(&row)?;
    let differs = payment_difference(&existing, payment);
    existing_or_conflict(existing, differs, "payment", &payment.attempt_id)
}

async fn update_payment(
    connection: &mut PgConnection,
    payment: &PaymentRecord,
    detail: &str,
) -> Result<PaymentRecord, StoreError> {
    let now = Millis::now();
    let expected_version = u64_to_i64(payment.version, "version")?;
    // One statement (one implicit transaction, one round trip). `current` locks the row at
    // the expected version and reads the state being replaced: a concurrent writer of that
    // version waits there and, once this commits, finds no row at its version. The update
    // repeats the version condition (where a lease fence will join it), and the event is
    // written from the update's result: with the change, or not at all.
    let mutable = column_count(PAYMENT_MUTABLE_COLUMNS);
    let query = format!(
        "WITH current AS (\
             SELECT id AS locked_id, state AS from_state FROM payments \
             WHERE id = ${id} AND version = ${version} FOR NO KEY UPDATE), \
         changed AS (\
             UPDATE payments SET ({PAYMENT_MUTABLE_COLUMNS}) = ({values}) \
             FROM current \
             WHERE payments.id = current.locked_id AND payments.version = ${version} \
             RETURNING {PAYMENT_COLUMNS}), \
         recorded AS (\
             INSERT INTO payment_events (payment_id, at, from_state, to_state, detail) \
             SELECT changed.id, ${now}, current.from_state, ${to_state}, ${detail} \
             FROM changed, current) \
         SELECT {PAYMENT_COLUMNS} FROM changed",
        values = placeholders(1, mutable),
        id = mutable + 1,
        version = mutable + 2,
        now = mutable + 3,
        to_state = mutable + 4,
        detail = mutable + 5,
    );
    let row = bind_mutable(sqlx::query(&query), payment, payment.version + 1, now)?
        .bind(&payment.id)
        .bind(expected_version)
        .bind(now.0)
        .bind(payment.state.as_str())
        .bind(detail)
        .fetch_optional(&mut *connection)
        .await?;
    match row {
        // The row as stored, immutable fields included, rather than the caller's copy.
        Some(row) => payment_from_row(&row),
        None => Err(stale_or_missing(connection, "payment", &payment.id, payment.version).await),
    }
}

async fn insert_refund(
    connection: &mut PgConnection,
    refund: &RefundRecord,
) -> Result<InsertOutcome<RefundRecord>, StoreError> {
    // The payment's lock comes first: refunds of one payment are decided one at a time, so
    // the idempotency check and the cap below see every refund committed before.
    let payment_amount: Option<i64> =
        sqlx::query("SELECT amount_fen FROM payments WHERE id = $1 FOR NO KEY UPDATE")
            .bind(&refund.payment_id)
            .fetch_optional(&mut *connection)
            .await?
            .map(|row| row.try_get("amount_fen"))
            .transpose()?;
    if let Some(existing) = existing_refund(connection, refund).await? {
        return Ok(existing);
    }
    let payment_amount = payment_amount.ok_or_else(|| StoreError::NotFound {
        entity: "payment",
        key: refund.payment_id.clone(),
    })?;
    let already_refunded: i64 = sqlx::query(
        "SELECT COALESCE(SUM(amount_fen), 0)::BIGINT AS total FROM refunds \
         WHERE payment_id = $1 AND state <> 'failed'",
    )
    .bind(&refund.payment_id)
    .fetch_one(&mut *connection)
    .await?
    .try_get("total")?;
    check_refund_cap(payment_amount, already_refunded, refund.amount_fen)?;
    let query = format!(
        "INSERT INTO refunds ({REFUND_COLUMNS}) VALUES ({}) ON CONFLICT DO NOTHING",
        placeholders(1, column_count(REFUND_COLUMNS))
    );
    let inserted = bind_refund(sqlx::query(&query), refund)?
        .execute(&mut *connection)
        .await?;
    if inserted.rows_affected() == 1 {
        return Ok(InsertOutcome::Inserted(refund.clone()));
    }
    // A row with the same attempt, refund number or id was stored first. For the same
    // attempt, that was a refund of another payment (whose lock this transaction does not
    // hold) at the same moment; it has committed, so it can be compared.
    match existing_refund(connection, refund).await? {
        Some(existing) => Ok(existing),
        None => Err(StoreError::AlreadyExists {
            entity: "refund",
            key: refund.out_refund_no.as_str().to_owned(),
        }),
    }
}

/// The stored refund under `refund`'s attempt id, if any, as an idempotent insert answers
/// it (the stored record, or a conflict).
async fn existing_refund(
    connection: &mut PgConnection,
    refund: &RefundRecord,
) -> Result<Option<InsertOutcome<RefundRecord>>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE refund_attempt_id = $1"
    ))
    .bind(refund.refund_attempt_id.as_str())
    .fetch_optional(&mut *connection)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let existing = refund_from_row(&row)?;
    let differs = refund_difference(&existing, refund);
    existing_or_conflict(existing, differs, "refund", &refund.refund_attempt_id).map(Some)
}

/// Why a versioned write to `entity` (`payment` or `refund`) matched no row: the row moved
/// past `expected`, or it does not exist.
async fn stale_or_missing(
    connection: &mut PgConnection,
    entity: &'static str,
    id: &str,
    expected: u64,
) -> StoreError {
    let query = match entity {
        "payment" => "SELECT 1 FROM payments WHERE id = $1",
        _ => "SELECT 1 FROM refunds WHERE id = $1",
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

#[cfg(test)]
mod tests {
    use paycode_api::payments::RefundState;

    use super::*;
    use crate::store::records::{Action, CloseState};

    /// Every migration, concatenated: the CHECK constraints must allow every name the code
    /// writes (a name missing here would make a write fail at run time).
    fn migrations() -> String {
        MIGRATOR
            .iter()
            .map(|migration| migration.sql.to_string())
            .collect()
    }

    #[test]
    fn the_check_constraints_allow_every_name_the_code_writes() {
        let sql = migrations();
        let quoted = |name: &str| format!("'{name}'");
        for state in PaymentState::ALL {
            assert!(sql.contains(&quoted(state.as_str())), "{state:?}");
        }
        for state in [
            RefundState::Queued,
            RefundState::Submitting,
            RefundState::Processing,
            RefundState::Succeeded,
            RefundState::Failed,
        ] {
            assert!(sql.contains(&quoted(refund_state_name(state))), "{state:?}");
        }
        for action in [
            Action::Micropay,
            Action::Query,
            Action::PreReverseQuery,
            Action::Reverse,
            Action::FinalQuery,
            Action::Recheck,
            Action::CloseReverse,
        ] {
            assert!(sql.contains(&quoted(action.as_str())), "{action:?}");
        }
        for close in [
            CloseState::Pending,
            CloseState::Closed,
            CloseState::NeedsAttention,
        ] {
            assert!(sql.contains(&quoted(close.as_str())), "{close:?}");
        }
    }

    #[test]
    fn both_back_ends_have_the_same_migrations() {
        let sqlite = sqlx::migrate!("migrations/sqlite");
        let versions = |migrator: &sqlx::migrate::Migrator| {
            migrator
                .iter()
                .map(|migration| (migration.version, migration.description.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(versions(&MIGRATOR), versions(&sqlite));
    }

    #[test]
    fn placeholders_are_numbered_from_the_first() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
    }
}
