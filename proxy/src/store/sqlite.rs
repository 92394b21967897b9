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
//! and never wait for the writer (WAL). Terminal and store changes, rare and often made by
//! another process (`paycode-proxy terminal …`, `store …`), run outside the writer: each is
//! one statement, except adopting a pre-store database's rows at start, one `BEGIN
//! IMMEDIATE` transaction.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use paycode_api::{PaymentState, Role};
use sqlx::migrate::Migrate;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row, Sqlite, SqliteConnection};

use super::books;
use super::records::{
    ApprovalUse, ApprovedAction, LockoutPolicy, ManagerRecord, MerchantIds, Millis, NewApproval,
    PaymentEvent, PaymentRecord, PinCheck, RefundRecord, StoreRecord, TerminalRecord,
};
use super::rows::{
    DayColumn, LEASE_COLUMNS, MANAGER_COLUMNS, PAYMENT_COLUMNS, PAYMENT_IMMUTABLE_COLUMNS,
    PAYMENT_MUTABLE_COLUMNS, REFUND_COLUMNS, SETTLED_STATES_SQL, STORE_COLUMNS, TERMINAL_COLUMNS,
    UNFINISHED_REFUND_STATES_SQL, bind_immutable, bind_mutable, bind_refund, check_refund_cap,
    claimed, duration_ms, existing_or_conflict, i64_to_u64, manager_from_row, payment_difference,
    payment_from_row, refund_difference, refund_from_row, store_from_row, terminal_from_row,
    u64_to_i64, unique_violation_as_exists,
};
use super::shared::{Dialect, question_marks, update_refund_sql};
use super::sqlite_writer::Writer;
use super::{
    ClaimRequest, HeldLeases, InsertOutcome, LeaseTerms, Leased, Renewal, Renewed, Store,
    StoreError,
};
use crate::books::records::{BooksDay, BooksMismatch, MismatchStatus};
use crate::config::StoreConfig;
use crate::private_file;

/// How long a writer waits for the write lock before giving up with an error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The migrations in `proxy/migrations/sqlite`, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

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
        let options = connect_options(config)?;
        // Reads use the pool (`pool_size` connections: long-polls and lists read in parallel
        // under WAL); payment and refund writes have the writer's own connection.
        let pool = SqlitePoolOptions::new()
            .max_connections(config.pool_size)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        let writer = Writer::start(&options).await?;
        Ok(SqliteStore { pool, writer })
    }

    /// Brings the schema of the database named by `config` up to date (creating the file and
    /// its directory if needed) and returns the versions applied now, oldest first.
    pub async fn migrate(config: &StoreConfig) -> Result<Vec<i64>, StoreError> {
        let mut connection = connect_options(config)?.connect().await?;
        connection.ensure_migrations_table().await?;
        let before = connection.list_applied_migrations().await?;
        MIGRATOR.run(&mut connection).await?;
        connection.close().await?;
        Ok(super::newly_applied(&MIGRATOR, &before))
    }
}

/// The connection settings for `config`'s database, after creating the data directory.
fn connect_options(config: &StoreConfig) -> Result<SqliteConnectOptions, StoreError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StoreError::DataDirectory {
        path: config.data_dir.clone(),
        source,
    })?;
    let options = match &config.database_url {
        Some(url) => SqliteConnectOptions::from_str(url)?,
        None => SqliteConnectOptions::new().filename(config.default_database_path()),
    };
    restrict_to_owner(options.get_filename())?;
    Ok(options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT))
}

/// The database holds payments and token hashes: owner-only, like its `-wal` and `-shm`
/// files, which SQLite creates with the database file's mode (an existing, wider file is
/// narrowed).
fn restrict_to_owner(database: &Path) -> Result<(), StoreError> {
    if database == Path::new(":memory:") || database.as_os_str().is_empty() {
        return Ok(());
    }
    let permissions = |path: PathBuf| move |source| StoreError::Permissions { path, source };
    private_file::ensure_private(database).map_err(permissions(database.to_owned()))?;
    for suffix in ["-wal", "-shm"] {
        let mut companion = database.as_os_str().to_owned();
        companion.push(suffix);
        let companion = PathBuf::from(companion);
        if companion.exists() {
            private_file::restrict_to_owner(&companion).map_err(permissions(companion.clone()))?;
        }
    }
    Ok(())
}

impl DayColumn for SqliteRow {
    /// `YYYY-MM-DD` text.
    fn day_column(&self, column: &'static str) -> Result<NaiveDate, StoreError> {
        books::parse_day(column, self.try_get(column)?)
    }
}

#[async_trait]
impl Store for SqliteStore {
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
        let payment = payment.clone();
        self.writer
            .write(move |connection| Box::pin(insert_payment(connection, payment, None)))
            .await
    }

    async fn insert_leased_payment(
        &self,
        payment: &PaymentRecord,
        terms: LeaseTerms<'_>,
    ) -> Result<InsertOutcome<PaymentRecord>, StoreError> {
        let (payment, lease) = (payment.clone(), OwnedTerms::of(terms));
        self.writer
            .write(move |connection| Box::pin(insert_payment(connection, payment, Some(lease))))
            .await
    }

    async fn get_payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        Sqlite::get_payment(&self.pool, id).await
    }

    async fn get_payment_by_attempt(
        &self,
        attempt_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        Sqlite::get_payment_by_attempt(&self.pool, attempt_id).await
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
        store_id: &str,
        terminal_id: Option<&str>,
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments \
             WHERE store_id = ?1 AND business_day = ?2 AND (?3 IS NULL OR terminal_id = ?3) \
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(store_id)
        .bind(books::day_text(business_day))
        .bind(terminal_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(payment_from_row).collect()
    }

    async fn unsettled_payments(&self) -> Result<Vec<PaymentRecord>, StoreError> {
        Sqlite::unsettled_payments(&self.pool).await
    }

    async fn payments_to_close(&self) -> Result<Vec<PaymentRecord>, StoreError> {
        Sqlite::payments_to_close(&self.pool).await
    }

    async fn count_payments_by_state(&self) -> Result<Vec<(PaymentState, u64)>, StoreError> {
        Sqlite::count_payments_by_state(&self.pool).await
    }

    async fn payment_events(&self, payment_id: &str) -> Result<Vec<PaymentEvent>, StoreError> {
        Sqlite::payment_events(&self.pool, payment_id).await
    }

    async fn insert_refund(
        &self,
        refund: &RefundRecord,
    ) -> Result<InsertOutcome<RefundRecord>, StoreError> {
        let refund = refund.clone();
        self.writer
            .write(move |connection| Box::pin(insert_refund(connection, refund, None)))
            .await
    }

    async fn insert_leased_refund(
        &self,
        refund: &RefundRecord,
        terms: LeaseTerms<'_>,
    ) -> Result<InsertOutcome<RefundRecord>, StoreError> {
        let (refund, lease) = (refund.clone(), OwnedTerms::of(terms));
        self.writer
            .write(move |connection| Box::pin(insert_refund(connection, refund, Some(lease))))
            .await
    }

    async fn update_refund(&self, refund: &RefundRecord) -> Result<RefundRecord, StoreError> {
        let refund = refund.clone();
        self.writer
            .write(move |connection| Box::pin(update_refund(connection, refund)))
            .await
    }

    async fn get_refund(&self, id: &str) -> Result<Option<RefundRecord>, StoreError> {
        Sqlite::get_refund(&self.pool, id).await
    }

    async fn refunds_for_payment(&self, payment_id: &str) -> Result<Vec<RefundRecord>, StoreError> {
        Sqlite::refunds_for_payment(&self.pool, payment_id).await
    }

    async fn refunds_for_day(
        &self,
        business_day: NaiveDate,
        store_id: &str,
        terminal_id: Option<&str>,
    ) -> Result<Vec<RefundRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id IN \
             (SELECT id FROM payments WHERE store_id = ?1 AND business_day = ?2 \
              AND (?3 IS NULL OR terminal_id = ?3)) \
             ORDER BY created_at, id"
        ))
        .bind(store_id)
        .bind(books::day_text(business_day))
        .bind(terminal_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(refund_from_row).collect()
    }

    async fn unfinished_refunds(&self) -> Result<Vec<RefundRecord>, StoreError> {
        Sqlite::unfinished_refunds(&self.pool).await
    }

    async fn clock(&self) -> Result<Millis, StoreError> {
        Ok(Millis::now())
    }

    async fn claim_due(
        &self,
        request: ClaimRequest<'_>,
    ) -> Result<(Vec<Leased<PaymentRecord>>, Vec<Leased<RefundRecord>>), StoreError> {
        let (terms, due_before, limit, take_over) = (
            OwnedTerms::of(request.terms),
            request.due_before,
            request.limit,
            request.take_over,
        );
        self.writer
            .write(move |connection| {
                Box::pin(claim_due(connection, terms, due_before, limit, take_over))
            })
            .await
    }

    async fn renew_leases(
        &self,
        terms: LeaseTerms<'_>,
        held: &HeldLeases,
    ) -> Result<Renewal, StoreError> {
        let (terms, held) = (OwnedTerms::of(terms), held.clone());
        self.writer
            .write(move |connection| Box::pin(renew_leases(connection, terms, held)))
            .await
    }

    async fn release_leases(&self, owner: &str, held: &HeldLeases) -> Result<u64, StoreError> {
        let (owner, held) = (owner.to_owned(), held.clone());
        self.writer
            .write(move |connection| Box::pin(release_leases(connection, owner, held)))
            .await
    }

    async fn add_terminal(
        &self,
        name: &str,
        token_hash: &str,
        store_id: &str,
    ) -> Result<TerminalRecord, StoreError> {
        Sqlite::add_terminal(&self.pool, name, token_hash, store_id).await
    }

    async fn terminal_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<TerminalRecord>, StoreError> {
        Sqlite::terminal_by_token_hash(&self.pool, token_hash).await
    }

    async fn list_terminals(&self) -> Result<Vec<TerminalRecord>, StoreError> {
        Sqlite::listed(&self.pool, "terminals", TERMINAL_COLUMNS, terminal_from_row).await
    }

    async fn add_pairing_code(
        &self,
        terminal_name: &str,
        code_hash: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<TerminalRecord, StoreError> {
        Sqlite::add_pairing_code(
            self.pool.begin_with("BEGIN IMMEDIATE").await?,
            terminal_name,
            code_hash,
            now,
            expires_at,
        )
        .await
    }

    async fn redeem_pairing_code(
        &self,
        code_hash: &str,
        now: Millis,
        new_token_hash: &str,
    ) -> Result<Option<TerminalRecord>, StoreError> {
        let mut transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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
        Sqlite::revoke_terminal(&self.pool, name).await
    }

    async fn add_store(&self, store: &StoreRecord) -> Result<StoreRecord, StoreError> {
        Sqlite::add_store(&self.pool, store).await
    }

    async fn get_store(&self, id: &str) -> Result<Option<StoreRecord>, StoreError> {
        Sqlite::get_store(&self.pool, id).await
    }

    async fn list_stores(&self) -> Result<Vec<StoreRecord>, StoreError> {
        Sqlite::listed(&self.pool, "stores", STORE_COLUMNS, store_from_row).await
    }

    async fn disable_store(&self, name: &str) -> Result<StoreRecord, StoreError> {
        Sqlite::disable_store(&self.pool, name).await
    }

    async fn adopt_unbound_rows(
        &self,
        store: &StoreRecord,
        merchant: &MerchantIds,
    ) -> Result<u64, StoreError> {
        // Holds the write lock from its first statement, like the writer's batches.
        Sqlite::adopt_unbound_rows(
            self.pool.begin_with("BEGIN IMMEDIATE").await?,
            store,
            merchant,
        )
        .await
    }

    // ---- Manager approvals (migration 0011, docs/approvals.md) ----

    async fn set_terminal_role(
        &self,
        name: &str,
        role: Role,
    ) -> Result<TerminalRecord, StoreError> {
        Sqlite::set_terminal_role(&self.pool, name, role).await
    }

    async fn add_manager(&self, manager: &ManagerRecord) -> Result<ManagerRecord, StoreError> {
        Sqlite::add_manager(&self.pool, manager).await
    }

    async fn manager_by_name(&self, name: &str) -> Result<Option<ManagerRecord>, StoreError> {
        Sqlite::manager_by_name(&self.pool, name).await
    }

    async fn list_managers(&self) -> Result<Vec<ManagerRecord>, StoreError> {
        Sqlite::listed(&self.pool, "managers", MANAGER_COLUMNS, manager_from_row).await
    }

    async fn set_manager_pin(
        &self,
        name: &str,
        pin_hash: &str,
    ) -> Result<ManagerRecord, StoreError> {
        Sqlite::set_manager_pin(&self.pool, name, pin_hash).await
    }

    async fn remove_manager(&self, name: &str) -> Result<ManagerRecord, StoreError> {
        let text = format!(
            "UPDATE managers SET removed_at = ? WHERE name = ? AND removed_at IS NULL \
             RETURNING {MANAGER_COLUMNS}"
        );
        let query = sqlx::query(&text).bind(Millis::now().0).bind(name);
        Sqlite::found(&self.pool, query, "manager", name, manager_from_row).await
    }

    async fn record_pin_check(
        &self,
        manager_id: &str,
        accepted: bool,
        policy: LockoutPolicy,
    ) -> Result<PinCheck, StoreError> {
        // The write lock from the first statement: checks on two connections count one
        // after the other.
        Sqlite::record_pin_check(
            self.pool.begin_with("BEGIN IMMEDIATE").await?,
            manager_id,
            accepted,
            policy,
        )
        .await
    }

    async fn insert_approval(&self, approval: &NewApproval) -> Result<Millis, StoreError> {
        let now = Millis::now();
        let expires_at = Millis(now.0.saturating_add(duration_ms(approval.ttl)));
        sqlx::query(
            "INSERT INTO approvals (token_hash, terminal_id, manager_id, action, reason, once, \
             created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&approval.token_hash)
        .bind(&approval.terminal_id)
        .bind(&approval.manager_id)
        .bind(approval.action.as_str())
        .bind(&approval.reason)
        .bind(approval.once)
        .bind(now.0)
        .bind(expires_at.0)
        .execute(&self.pool)
        .await
        .map_err(|error| unique_violation_as_exists(error, "approval", "token"))?;
        Ok(expires_at)
    }

    async fn use_approval(
        &self,
        use_: ApprovalUse<'_>,
    ) -> Result<Option<(ApprovedAction, Option<String>)>, StoreError> {
        let now = Millis::now();
        let mut transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // Marking it used first makes a one-use approval single-use when two uses race:
        // only one of them changes the row.
        let row = sqlx::query(
            "UPDATE approvals SET used_at = COALESCE(used_at, ?) \
             WHERE token_hash = ? AND terminal_id = ? AND action = ? AND expires_at > ? \
             AND (once = 0 OR used_at IS NULL) \
             AND manager_id IN (SELECT id FROM managers WHERE removed_at IS NULL \
                 AND (store_id IS NULL OR store_id = ?)) \
             RETURNING manager_id, reason",
        )
        .bind(now.0)
        .bind(use_.token_hash)
        .bind(use_.terminal_id)
        .bind(use_.action.as_str())
        .bind(now.0)
        .bind(use_.store_id)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(row) = row else {
            transaction.commit().await?;
            return Ok(None);
        };
        Sqlite::record_approved_action(
            transaction,
            use_,
            row.try_get("manager_id")?,
            now,
            row.try_get("reason")?,
        )
        .await
        .map(Some)
    }

    async fn approved_actions(&self, since: Millis) -> Result<Vec<ApprovedAction>, StoreError> {
        Sqlite::approved_actions(&self.pool, since).await
    }

    // ---- The owner's books (migration 0012): kept together at the end. ----

    async fn save_books_day(
        &self,
        day: &BooksDay,
        found: &[BooksMismatch],
    ) -> Result<Vec<BooksMismatch>, StoreError> {
        Sqlite::save_books_day(self.pool.begin_with("BEGIN IMMEDIATE").await?, day, found).await
    }

    async fn books_day(
        &self,
        day: NaiveDate,
        mch_id: &str,
    ) -> Result<Option<BooksDay>, StoreError> {
        Sqlite::books_day(&self.pool, day, mch_id).await
    }

    async fn books_days(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<BooksDay>, StoreError> {
        Sqlite::books_days(&self.pool, from, to).await
    }

    async fn books_mismatches(
        &self,
        day: NaiveDate,
        mch_id: &str,
    ) -> Result<Vec<BooksMismatch>, StoreError> {
        Sqlite::books_mismatches(&self.pool, day, mch_id).await
    }

    async fn books_mismatch(&self, id: &str) -> Result<Option<BooksMismatch>, StoreError> {
        Sqlite::books_mismatch(&self.pool, id).await
    }

    async fn settle_books_mismatch(
        &self,
        id: &str,
        status: MismatchStatus,
        note: Option<&str>,
        by: &str,
        at: Millis,
    ) -> Result<BooksMismatch, StoreError> {
        Sqlite::settle_books_mismatch(&self.pool, status, note, by, at, id).await
    }

    async fn count_open_books_mismatches(&self) -> Result<Vec<(String, u64)>, StoreError> {
        Sqlite::count_open_books_mismatches(&self.pool).await
    }

    async fn claim_books_run(
        &self,
        day: NaiveDate,
        mch_id: &str,
        owner: &str,
        duration: Duration,
    ) -> Result<bool, StoreError> {
        let lasts = i64::try_from(duration.as_millis())
            .map_err(|_| StoreError::OutOfRange { field: "duration" })?;
        let claimed = sqlx::query(&claim_books_run_sql())
            .bind(books::day_text(day))
            .bind(mch_id)
            .bind(owner)
            .bind(lasts)
            .bind(Millis::now().0)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(claimed == 1)
    }

    async fn release_books_run(
        &self,
        day: NaiveDate,
        mch_id: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        Sqlite::release_books_run(&self.pool, day, mch_id, owner).await
    }

    async fn books_payments(
        &self,
        mch_id: &str,
        from: Millis,
        to: Millis,
        out_trade_nos: &[String],
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        Sqlite::books_payments(&self.pool, mch_id, from, to, out_trade_nos).await
    }

    async fn books_refunds(
        &self,
        mch_id: &str,
        from: Millis,
        to: Millis,
        out_refund_nos: &[String],
    ) -> Result<Vec<RefundRecord>, StoreError> {
        Sqlite::books_refunds(&self.pool, mch_id, from, to, out_refund_nos).await
    }
}

// The write operations, each run by the writer inside its batch transaction. Each checks
// everything that can refuse it (idempotency, version, cap) before its first write, so a
// refusal leaves nothing behind in the shared transaction.

async fn insert_payment(
    connection: &mut SqliteConnection,
    payment: PaymentRecord,
    lease: Option<OwnedTerms>,
) -> Result<InsertOutcome<PaymentRecord>, StoreError> {
    let query = format!(
        "INSERT INTO payments \
             ({PAYMENT_IMMUTABLE_COLUMNS}, {PAYMENT_MUTABLE_COLUMNS}, {LEASE_COLUMNS}) \
         VALUES ({}, {}, {}) ON CONFLICT (attempt_id) DO NOTHING",
        question_marks(PAYMENT_IMMUTABLE_COLUMNS),
        question_marks(PAYMENT_MUTABLE_COLUMNS),
        question_marks(LEASE_COLUMNS)
    );
    let payment = leased(payment, lease.as_ref());
    let day = books::day_text(payment.business_day);
    let inserted = bind_immutable(sqlx::query(&query), &payment, day)?;
    let inserted = bind_mutable(inserted, &payment, payment.version, payment.updated_at)?
        .bind(payment.lease_owner.as_deref())
        .bind(payment.lease_until.map(|at| at.0))
        .bind(u64_to_i64(payment.lease_epoch, "lease_epoch")?)
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
        let differs = payment_difference(&existing, &payment);
        return existing_or_conflict(existing, differs, "payment", &payment.attempt_id);
    }
    sqlx::query(
        "INSERT INTO payment_events \
             (payment_id, at, from_state, to_state, detail, lease_owner, lease_epoch) \
         VALUES (?, ?, NULL, ?, 'created', ?, ?)",
    )
    .bind(&payment.id)
    .bind(payment.created_at.0)
    .bind(payment.state.as_str())
    .bind(payment.lease_owner.as_deref())
    .bind(u64_to_i64(payment.lease_epoch, "lease_epoch")?)
    .execute(&mut *connection)
    .await?;
    Ok(InsertOutcome::Inserted(payment))
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
    let epoch = u64_to_i64(payment.lease_epoch, "lease_epoch")?;
    let recorded = sqlx::query(
        "INSERT INTO payment_events \
             (payment_id, at, from_state, to_state, detail, lease_owner, lease_epoch) \
         SELECT id, ?, state, ?, ?, ?, ? FROM payments WHERE id = ? AND version = ? \
         AND lease_epoch = ?",
    )
    .bind(now.0)
    .bind(payment.state.as_str())
    .bind(&detail)
    .bind(payment.lease_owner.as_deref())
    .bind(epoch)
    .bind(&payment.id)
    .bind(expected_version)
    .bind(epoch)
    .execute(&mut *connection)
    .await?;
    if recorded.rows_affected() == 0 {
        return Err(Sqlite::refused(
            connection,
            "payment",
            &payment.id,
            payment.version,
            payment.lease_epoch,
        )
        .await);
    }
    let query = format!(
        "UPDATE payments SET ({PAYMENT_MUTABLE_COLUMNS}) = ({}) \
         WHERE id = ? AND version = ? AND lease_epoch = ? RETURNING {PAYMENT_COLUMNS}",
        question_marks(PAYMENT_MUTABLE_COLUMNS)
    );
    let update = bind_mutable(sqlx::query(&query), &payment, payment.version + 1, now)?;
    let row = update
        .bind(&payment.id)
        .bind(expected_version)
        .bind(epoch)
        .fetch_one(&mut *connection)
        .await?;
    // The row as stored, immutable fields included, rather than the caller's copy.
    payment_from_row(&row)
}

async fn insert_refund(
    connection: &mut SqliteConnection,
    refund: RefundRecord,
    lease: Option<OwnedTerms>,
) -> Result<InsertOutcome<RefundRecord>, StoreError> {
    let existing = sqlx::query(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE refund_attempt_id = ?"
    ))
    .bind(refund.refund_attempt_id.as_str())
    .fetch_optional(&mut *connection)
    .await?;
    if let Some(row) = existing {
        let existing = refund_from_row(&row)?;
        let differs = refund_difference(&existing, &refund);
        return existing_or_conflict(existing, differs, "refund", &refund.refund_attempt_id);
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
    check_refund_cap(payment_amount, already_refunded, refund.amount_fen)?;
    let query = format!(
        "INSERT INTO refunds ({REFUND_COLUMNS}) VALUES ({})",
        question_marks(REFUND_COLUMNS)
    );
    let mut refund = refund;
    if let Some(lease) = &lease {
        refund.lease_owner = Some(lease.owner.clone());
        refund.lease_until = Some(Millis::now().plus(lease.duration));
        refund.lease_epoch = 1;
    }
    bind_refund(sqlx::query(&query), &refund)?
        .bind(refund.lease_owner.as_deref())
        .bind(refund.lease_until.map(|at| at.0))
        .bind(u64_to_i64(refund.lease_epoch, "lease_epoch")?)
        .execute(&mut *connection)
        .await
        .map_err(|error| {
            unique_violation_as_exists(error, "refund", refund.out_refund_no.as_str())
        })?;
    Ok(InsertOutcome::Inserted(refund))
}

async fn update_refund(
    connection: &mut SqliteConnection,
    refund: RefundRecord,
) -> Result<RefundRecord, StoreError> {
    let text = update_refund_sql();
    let row = Sqlite::bind_refund_update(sqlx::query(&text), &refund)?
        .fetch_optional(&mut *connection)
        .await?;
    match row {
        Some(row) => refund_from_row(&row),
        None => Err(Sqlite::refused(
            connection,
            "refund",
            &refund.id,
            refund.version,
            refund.lease_epoch,
        )
        .await),
    }
}

/// [`LeaseTerms`] owned, to move into the writer.
struct OwnedTerms {
    owner: String,
    duration: Duration,
}

impl OwnedTerms {
    fn of(terms: LeaseTerms<'_>) -> OwnedTerms {
        OwnedTerms {
            owner: terms.owner.to_owned(),
            duration: terms.duration,
        }
    }
}

/// `payment` as inserted: leased under `lease` from now (epoch 1), or with no lease.
fn leased(mut payment: PaymentRecord, lease: Option<&OwnedTerms>) -> PaymentRecord {
    payment.lease_owner = lease.map(|terms| terms.owner.clone());
    payment.lease_until = lease.map(|terms| Millis::now().plus(terms.duration));
    payment.lease_epoch = u64::from(lease.is_some());
    payment
}

/// Claims due rows in the writer's transaction (the single writer is what makes it
/// exclusive on SQLite). The lease runs on this process's clock; the claimer's own lapsed
/// leases wait one more lease duration, as on PostgreSQL.
async fn claim_due(
    connection: &mut SqliteConnection,
    terms: OwnedTerms,
    due_before: Millis,
    limit: u32,
    take_over: bool,
) -> Result<(Vec<Leased<PaymentRecord>>, Vec<Leased<RefundRecord>>), StoreError> {
    let now = Millis::now();
    let until = now.plus(terms.duration);
    let claim = |table: &str, due: &str, columns: &str| {
        format!(
            "UPDATE {table} SET lease_owner = ?, lease_until = ?, lease_epoch = lease_epoch + 1 \
             WHERE id IN (SELECT id FROM {table} \
                 WHERE ({due}) AND (next_action_at IS NULL OR next_action_at <= ?) \
                 AND (? OR lease_until IS NULL OR (lease_until <= ? \
                     AND (lease_owner <> ? OR lease_until <= ?))) \
                 ORDER BY next_action_at NULLS FIRST, id LIMIT ?) \
             RETURNING {columns}"
        )
    };
    let payments_due = format!("state NOT IN {SETTLED_STATES_SQL} OR close_state = 'pending'");
    let refunds_due = format!("state IN {UNFINISHED_REFUND_STATES_SQL}");
    let mut rows = Vec::with_capacity(2);
    for query in [
        claim("payments", &payments_due, PAYMENT_COLUMNS),
        claim("refunds", &refunds_due, REFUND_COLUMNS),
    ] {
        rows.push(
            sqlx::query(&query)
                .bind(&terms.owner)
                .bind(until.0)
                .bind(due_before.0)
                .bind(take_over)
                .bind(now.0)
                .bind(&terms.owner)
                .bind(now.0 - i64::try_from(terms.duration.as_millis()).unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(&mut *connection)
                .await?,
        );
    }
    claimed(rows, |_| Ok(terms.duration))
}

async fn renew_leases(
    connection: &mut SqliteConnection,
    terms: OwnedTerms,
    held: HeldLeases,
) -> Result<Renewal, StoreError> {
    let until = Millis::now().plus(terms.duration);
    let mut renewal = Renewal::default();
    for (table, rows, renewed) in [
        ("payments", &held.payments, &mut renewal.payments),
        ("refunds", &held.refunds, &mut renewal.refunds),
    ] {
        for (id, epoch) in rows {
            let row = sqlx::query(&format!(
                "UPDATE {table} SET lease_until = ? \
                 WHERE id = ? AND lease_epoch = ? AND lease_owner = ? RETURNING version"
            ))
            .bind(until.0)
            .bind(id)
            .bind(u64_to_i64(*epoch, "lease_epoch")?)
            .bind(&terms.owner)
            .fetch_optional(&mut *connection)
            .await?;
            if let Some(row) = row {
                renewed.push(Renewed {
                    id: id.clone(),
                    version: i64_to_u64(row.try_get("version")?, "version")?,
                    remaining: terms.duration,
                });
            }
        }
    }
    Ok(renewal)
}

async fn release_leases(
    connection: &mut SqliteConnection,
    owner: String,
    held: HeldLeases,
) -> Result<u64, StoreError> {
    let mut released = 0;
    for (table, rows) in [("payments", &held.payments), ("refunds", &held.refunds)] {
        for (id, epoch) in rows {
            released += sqlx::query(&format!(
                "UPDATE {table} SET lease_owner = NULL, lease_until = NULL \
                 WHERE id = ? AND lease_epoch = ? AND lease_owner = ?"
            ))
            .bind(id)
            .bind(u64_to_i64(*epoch, "lease_epoch")?)
            .bind(&owner)
            .execute(&mut *connection)
            .await?
            .rows_affected();
        }
    }
    Ok(released)
}

impl Dialect for Sqlite {
    const CLOCK: Option<&'static str> = None;

    const ROW_LOCK: &'static str = "";

    /// As written: SQLite takes `?` placeholders.
    fn sql(text: &str) -> String {
        text.to_owned()
    }

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// Claims a day's run (binds: day, mch_id, owner, duration in ms, now): free, lapsed or
/// already the owner's.
fn claim_books_run_sql() -> String {
    "INSERT INTO books_runs (business_day, mch_id, owner, claimed_until) VALUES (?1, ?2, ?3, ?5 + ?4) \
     ON CONFLICT (business_day, mch_id) DO UPDATE SET owner = excluded.owner, \
     claimed_until = excluded.claimed_until WHERE books_runs.claimed_until <= ?5 OR books_runs.owner = excluded.owner"
        .to_owned()
}
