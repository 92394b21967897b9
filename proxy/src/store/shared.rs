//! The queries both store implementations run alike: [`Dialect`] holds each of them once,
//! generic over the database, and [`SqliteStore`](super::SqliteStore) and
//! [`PostgresStore`](super::PostgresStore) call them with their own pool or transaction.
//!
//! What stays in `sqlite.rs` and `postgres.rs` is what really differs: how a transaction
//! begins (`BEGIN IMMEDIATE` on SQLite, row locks on PostgreSQL), whose clock a lease or an
//! approval is timed on, the payment and refund writes, and the lease operations. The SQL
//! here is written with `?` placeholders, which [`Dialect::sql`] spells as each database
//! takes them.

use chrono::NaiveDate;
use paycode_api::{PaymentState, Role};
use sqlx::query::Query;
use sqlx::{Database, Encode, Executor, IntoArguments, Pool, Transaction, Type};

use super::StoreError;
use super::books;
use super::records::{
    ApprovalUse, ApprovedAction, LockoutPolicy, ManagerRecord, MerchantIds, Millis, PaymentEvent,
    PaymentRecord, PinCheck, RefundRecord, StoreRecord, TerminalRecord, pin_transition,
    refund_state_name,
};
use super::rows::{
    APPROVED_ACTION_COLUMNS, Columns, EVENT_COLUMNS, MANAGER_COLUMNS, PAYMENT_COLUMNS,
    REFUND_COLUMNS, SETTLED_STATES_SQL, STORE_COLUMNS, TERMINAL_COLUMNS,
    UNFINISHED_REFUND_STATES_SQL, approved_action_from_row, column_count, event_from_row,
    i64_to_u64, manager_from_row, parse_payment_state, payment_from_row, refund_from_row,
    store_from_row, terminal_from_row, u64_to_i64, unique_violation_as_exists,
};
use crate::books::records::{BooksDay, BooksMismatch, DayStatus, MismatchStatus};

/// One `?` per column of `columns`, a list like [`TERMINAL_COLUMNS`].
pub(super) fn question_marks(columns: &str) -> String {
    vec!["?"; column_count(columns)].join(", ")
}

/// A database both stores run the shared queries on (implemented for `sqlx::Sqlite` in
/// `sqlite.rs` and `sqlx::Postgres` in `postgres.rs`). The bounds are the value types the
/// queries bind and the row access they read with ([`Columns`]).
pub(super) trait Dialect: Database
where
    Self::Row: Columns,
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    for<'q> Self::Arguments<'q>: IntoArguments<'q, Self>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> Option<&'q str>: Encode<'q, Self> + Type<Self>,
    for<'q> String: Encode<'q, Self> + Type<Self>,
    for<'q> Option<String>: Encode<'q, Self> + Type<Self>,
    for<'q> i64: Encode<'q, Self> + Type<Self>,
    for<'q> Option<i64>: Encode<'q, Self> + Type<Self>,
    for<'q> bool: Encode<'q, Self> + Type<Self>,
{
    /// `text`, written with `?` placeholders, as this database takes it.
    fn sql(text: &str) -> String;

    /// How many rows a write changed (sqlx has no trait for it).
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// What a `SELECT` adds to hold the rows it reads until its transaction ends: nothing on
    /// SQLite, whose write transactions (`BEGIN IMMEDIATE`) hold the database's write lock
    /// from their start; ` FOR UPDATE` on PostgreSQL.
    const ROW_LOCK: &'static str;

    /// The SQL of the database's clock in epoch milliseconds, where a lockout is timed on it
    /// (PostgreSQL: the proxies sharing it then agree), or `None`: on the process's clock
    /// (SQLite, one proxy).
    const CLOCK: Option<&'static str>;

    /// The record `read` from the row `query` returns, if any.
    async fn one<'q, T>(
        pool: &Pool<Self>,
        query: Query<'q, Self, Self::Arguments<'q>>,
        read: impl Fn(&Self::Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        query
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(read)
            .transpose()
    }

    /// The records `read` from the rows `query` returns, in its order.
    async fn all<'q, T>(
        pool: &Pool<Self>,
        query: Query<'q, Self, Self::Arguments<'q>>,
        read: impl Fn(&Self::Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        query.fetch_all(pool).await?.iter().map(read).collect()
    }

    /// The record `read` from the row `query` returns, or [`StoreError::NotFound`] for
    /// `entity` `key` when it returns none.
    async fn found<'q, T>(
        pool: &Pool<Self>,
        query: Query<'q, Self, Self::Arguments<'q>>,
        entity: &'static str,
        key: &str,
        read: impl Fn(&Self::Row) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        read(&required(query.fetch_optional(pool).await?, entity, key)?)
    }

    /// Every row of `table` (its `columns`), oldest first, then by name.
    async fn listed<T>(
        pool: &Pool<Self>,
        table: &str,
        columns: &str,
        read: impl Fn(&Self::Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let text = format!("SELECT {columns} FROM {table} ORDER BY created_at, name");
        Self::all(pool, sqlx::query(&text), read).await
    }

    /// Sets the time `column` of the row named `name` to now unless it is set already (a
    /// revocation or a disabling keeps its first time), and reads the row back. `table` is the
    /// table, its columns and the entity a [`StoreError::NotFound`] names.
    async fn stamped<T>(
        pool: &Pool<Self>,
        (table, columns, entity): (&str, &str, &'static str),
        column: &str,
        name: &str,
        read: impl Fn(&Self::Row) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let text = Self::sql(&format!(
            "UPDATE {table} SET {column} = COALESCE({column}, ?) WHERE name = ? \
             RETURNING {columns}"
        ));
        let query = sqlx::query(&text).bind(Millis::now().0).bind(name);
        Self::found(pool, query, entity, name, read).await
    }

    // ---- Payments and refunds: the reads ----

    async fn get_payment(pool: &Pool<Self>, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        let text = Self::sql(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ?"
        ));
        Self::one(pool, sqlx::query(&text).bind(id), payment_from_row).await
    }

    async fn get_payment_by_attempt(
        pool: &Pool<Self>,
        attempt_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let text = Self::sql(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE attempt_id = ?"
        ));
        Self::one(pool, sqlx::query(&text).bind(attempt_id), payment_from_row).await
    }

    async fn unsettled_payments(pool: &Pool<Self>) -> Result<Vec<PaymentRecord>, StoreError> {
        let text = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE state NOT IN {SETTLED_STATES_SQL} \
             ORDER BY created_at, id"
        );
        Self::all(pool, sqlx::query(&text), payment_from_row).await
    }

    async fn payments_to_close(pool: &Pool<Self>) -> Result<Vec<PaymentRecord>, StoreError> {
        let text = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE close_state = 'pending' \
             ORDER BY created_at, id"
        );
        Self::all(pool, sqlx::query(&text), payment_from_row).await
    }

    async fn count_payments_by_state(
        pool: &Pool<Self>,
    ) -> Result<Vec<(PaymentState, u64)>, StoreError> {
        let query = sqlx::query("SELECT state, COUNT(*) AS count FROM payments GROUP BY state");
        Self::all(pool, query, |row| {
            Ok((
                parse_payment_state(&row.text("state")?)?,
                i64_to_u64(row.integer("count")?, "COUNT(*)")?,
            ))
        })
        .await
    }

    async fn payment_events(
        pool: &Pool<Self>,
        payment_id: &str,
    ) -> Result<Vec<PaymentEvent>, StoreError> {
        let text = Self::sql(&format!(
            "SELECT {EVENT_COLUMNS} FROM payment_events WHERE payment_id = ? ORDER BY id"
        ));
        Self::all(pool, sqlx::query(&text).bind(payment_id), event_from_row).await
    }

    async fn get_refund(pool: &Pool<Self>, id: &str) -> Result<Option<RefundRecord>, StoreError> {
        let text = Self::sql(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE id = ?"
        ));
        Self::one(pool, sqlx::query(&text).bind(id), refund_from_row).await
    }

    async fn refunds_for_payment(
        pool: &Pool<Self>,
        payment_id: &str,
    ) -> Result<Vec<RefundRecord>, StoreError> {
        let text = Self::sql(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = ? ORDER BY created_at, id"
        ));
        Self::all(pool, sqlx::query(&text).bind(payment_id), refund_from_row).await
    }

    async fn unfinished_refunds(pool: &Pool<Self>) -> Result<Vec<RefundRecord>, StoreError> {
        let text = format!(
            "SELECT {REFUND_COLUMNS} FROM refunds \
             WHERE state IN {UNFINISHED_REFUND_STATES_SQL} ORDER BY created_at, id"
        );
        Self::all(pool, sqlx::query(&text), refund_from_row).await
    }

    /// Binds [`update_refund_sql`]: `refund`'s changing columns at the next version, updated
    /// now, where the stored row is still at `refund`'s version and lease epoch.
    fn bind_refund_update<'q>(
        query: Query<'q, Self, Self::Arguments<'q>>,
        refund: &'q RefundRecord,
    ) -> Result<Query<'q, Self, Self::Arguments<'q>>, StoreError> {
        let expected_version = u64_to_i64(refund.version, "version")?;
        Ok(query
            .bind(refund_state_name(refund.state))
            .bind(expected_version + 1)
            .bind(&refund.wechat_refund_id)
            .bind(&refund.failure_code)
            .bind(&refund.failure_message)
            .bind(i64::from(refund.attempts))
            .bind(refund.next_action_at.map(|at| at.0))
            .bind(Millis::now().0)
            .bind(refund.applied_at.map(|at| at.0))
            .bind(refund.wechat_refunded_at.map(|at| at.0))
            .bind(&refund.id)
            .bind(expected_version)
            .bind(u64_to_i64(refund.lease_epoch, "lease_epoch")?))
    }

    /// Why a fenced, versioned write to `entity` (`payment` or `refund`) matched no row: the
    /// row was claimed since `epoch`, moved past `expected`, or does not exist.
    async fn refused(
        connection: &mut Self::Connection,
        entity: &'static str,
        id: &str,
        expected: u64,
        epoch: u64,
    ) -> StoreError {
        let query = match entity {
            "payment" => "SELECT lease_epoch FROM payments WHERE id = ?",
            _ => "SELECT lease_epoch FROM refunds WHERE id = ?",
        };
        match sqlx::query(&Self::sql(query))
            .bind(id)
            .fetch_optional(&mut *connection)
            .await
        {
            Ok(Some(row)) => match row.integer("lease_epoch") {
                Ok(stored) => super::refusal(entity, id, expected, epoch, stored),
                Err(error) => error,
            },
            Ok(None) => StoreError::NotFound {
                entity,
                key: id.to_owned(),
            },
            Err(error) => StoreError::Database(error),
        }
    }

    // ---- Terminals and stores ----

    async fn add_terminal(
        pool: &Pool<Self>,
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
            role: Role::Cashier,
        };
        sqlx::query(&Self::sql(&format!(
            "INSERT INTO terminals ({TERMINAL_COLUMNS}) VALUES ({})",
            question_marks(TERMINAL_COLUMNS)
        )))
        .bind(&terminal.id)
        .bind(&terminal.name)
        .bind(&terminal.token_hash)
        .bind(terminal.created_at.0)
        .bind(terminal.revoked_at.map(|at| at.0))
        .bind(&terminal.store_id)
        .bind(terminal.role.as_str())
        .execute(pool)
        .await
        .map_err(|error| unique_violation_as_exists(error, "terminal", name))?;
        Ok(terminal)
    }

    async fn terminal_by_token_hash(
        pool: &Pool<Self>,
        token_hash: &str,
    ) -> Result<Option<TerminalRecord>, StoreError> {
        let text = Self::sql(&format!(
            "SELECT {TERMINAL_COLUMNS} FROM terminals WHERE token_hash = ?"
        ));
        Self::one(pool, sqlx::query(&text).bind(token_hash), terminal_from_row).await
    }

    async fn revoke_terminal(pool: &Pool<Self>, name: &str) -> Result<TerminalRecord, StoreError> {
        let table = ("terminals", TERMINAL_COLUMNS, "terminal");
        Self::stamped(pool, table, "revoked_at", name, terminal_from_row).await
    }

    /// Issues a pairing code for the active terminal `terminal_name`, replacing its earlier
    /// codes and dropping expired ones, in `transaction` (begun by the caller, committed
    /// here). The terminal's row is held ([`Dialect::ROW_LOCK`]), so that of two codes issued
    /// for it at once the later one wins.
    async fn add_pairing_code(
        mut transaction: Transaction<'_, Self>,
        terminal_name: &str,
        code_hash: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<TerminalRecord, StoreError> {
        let row = sqlx::query(&Self::sql(&format!(
            "SELECT {TERMINAL_COLUMNS} FROM terminals WHERE name = ? AND revoked_at IS NULL{}",
            Self::ROW_LOCK
        )))
        .bind(terminal_name)
        .fetch_optional(&mut *transaction)
        .await?;
        let terminal = terminal_from_row(&required(row, "terminal", terminal_name)?)?;
        sqlx::query(&Self::sql(
            "DELETE FROM pairing_codes WHERE terminal_id = ? OR expires_at <= ?",
        ))
        .bind(&terminal.id)
        .bind(now.0)
        .execute(&mut *transaction)
        .await?;
        sqlx::query(&Self::sql(
            "INSERT INTO pairing_codes (code_hash, terminal_id, created_at, expires_at) \
             VALUES (?, ?, ?, ?)",
        ))
        .bind(code_hash)
        .bind(&terminal.id)
        .bind(now.0)
        .bind(expires_at.0)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(terminal)
    }

    async fn set_terminal_role(
        pool: &Pool<Self>,
        name: &str,
        role: Role,
    ) -> Result<TerminalRecord, StoreError> {
        let text = Self::sql(&format!(
            "UPDATE terminals SET role = ? WHERE name = ? RETURNING {TERMINAL_COLUMNS}"
        ));
        let query = sqlx::query(&text).bind(role.as_str()).bind(name);
        Self::found(pool, query, "terminal", name, terminal_from_row).await
    }

    async fn add_store(pool: &Pool<Self>, store: &StoreRecord) -> Result<StoreRecord, StoreError> {
        sqlx::query(&Self::sql(&format!(
            "INSERT INTO stores ({STORE_COLUMNS}) VALUES ({})",
            question_marks(STORE_COLUMNS)
        )))
        .bind(&store.id)
        .bind(&store.name)
        .bind(&store.account)
        .bind(&store.sub_mch_id)
        .bind(&store.sub_appid)
        .bind(&store.address)
        .bind(store.created_at.0)
        .bind(store.disabled_at.map(|at| at.0))
        .execute(pool)
        .await
        .map_err(|error| unique_violation_as_exists(error, "store", &store.name))?;
        Ok(store.clone())
    }

    async fn get_store(pool: &Pool<Self>, id: &str) -> Result<Option<StoreRecord>, StoreError> {
        let text = Self::sql(&format!("SELECT {STORE_COLUMNS} FROM stores WHERE id = ?"));
        Self::one(pool, sqlx::query(&text).bind(id), store_from_row).await
    }

    async fn disable_store(pool: &Pool<Self>, name: &str) -> Result<StoreRecord, StoreError> {
        let table = ("stores", STORE_COLUMNS, "store");
        Self::stamped(pool, table, "disabled_at", name, store_from_row).await
    }

    /// Fills in `store`'s sub-merchant and the merchant fields of its payments and refunds
    /// written before stores existed, in `transaction` (begun by the caller, committed here).
    async fn adopt_unbound_rows(
        mut transaction: Transaction<'_, Self>,
        store: &StoreRecord,
        merchant: &MerchantIds,
    ) -> Result<u64, StoreError> {
        sqlx::query(&Self::sql(
            "UPDATE stores SET sub_mch_id = ?, sub_appid = ? \
             WHERE id = ? AND sub_mch_id IS NULL AND sub_appid IS NULL",
        ))
        .bind(&merchant.sub_mch_id)
        .bind(&merchant.sub_appid)
        .bind(&store.id)
        .execute(&mut *transaction)
        .await?;
        let mut adopted = 0;
        for table in ["payments", "refunds"] {
            let result = sqlx::query(&Self::sql(&format!(
                "UPDATE {table} SET appid = ?, mch_id = ?, sub_appid = ?, sub_mch_id = ? \
                 WHERE store_id = ? AND mch_id IS NULL"
            )))
            .bind(&merchant.appid)
            .bind(&merchant.mch_id)
            .bind(&merchant.sub_appid)
            .bind(&merchant.sub_mch_id)
            .bind(&store.id)
            .execute(&mut *transaction)
            .await?;
            adopted += Self::rows_affected(&result);
        }
        transaction.commit().await?;
        Ok(adopted)
    }

    // ---- Manager approvals (migration 0011, docs/approvals.md) ----

    async fn add_manager(
        pool: &Pool<Self>,
        manager: &ManagerRecord,
    ) -> Result<ManagerRecord, StoreError> {
        if let Some(store_id) = &manager.store_id {
            if Self::get_store(pool, store_id).await?.is_none() {
                return Err(StoreError::NotFound {
                    entity: "store",
                    key: store_id.clone(),
                });
            }
        }
        sqlx::query(&Self::sql(&format!(
            "INSERT INTO managers ({MANAGER_COLUMNS}) VALUES ({})",
            question_marks(MANAGER_COLUMNS)
        )))
        .bind(&manager.id)
        .bind(&manager.name)
        .bind(&manager.store_id)
        .bind(&manager.pin_hash)
        .bind(i64::from(manager.failed_attempts))
        .bind(manager.locked_until.map(|at| at.0))
        .bind(manager.created_at.0)
        .bind(manager.removed_at.map(|at| at.0))
        .execute(pool)
        .await
        .map_err(|error| unique_violation_as_exists(error, "manager", &manager.name))?;
        Ok(manager.clone())
    }

    async fn manager_by_name(
        pool: &Pool<Self>,
        name: &str,
    ) -> Result<Option<ManagerRecord>, StoreError> {
        let text = Self::sql(&format!(
            "SELECT {MANAGER_COLUMNS} FROM managers WHERE name = ? AND removed_at IS NULL"
        ));
        Self::one(pool, sqlx::query(&text).bind(name), manager_from_row).await
    }

    async fn set_manager_pin(
        pool: &Pool<Self>,
        name: &str,
        pin_hash: &str,
    ) -> Result<ManagerRecord, StoreError> {
        let text = Self::sql(&format!(
            "UPDATE managers SET pin_hash = ?, failed_attempts = 0, locked_until = NULL \
             WHERE name = ? AND removed_at IS NULL RETURNING {MANAGER_COLUMNS}"
        ));
        let query = sqlx::query(&text).bind(pin_hash).bind(name);
        Self::found(pool, query, "manager", name, manager_from_row).await
    }

    /// Counts a PIN check of manager `manager_id` (accepted or not) under `policy`, in
    /// `transaction` (begun by the caller, committed here), the manager's row held
    /// ([`Dialect::ROW_LOCK`]) and the time taken from [`Dialect::CLOCK`].
    async fn record_pin_check(
        mut transaction: Transaction<'_, Self>,
        manager_id: &str,
        accepted: bool,
        policy: LockoutPolicy,
    ) -> Result<PinCheck, StoreError> {
        let clock = Self::CLOCK.map(|now| format!(", {now} AS now"));
        let row = sqlx::query(&Self::sql(&format!(
            "SELECT {MANAGER_COLUMNS}{} FROM managers WHERE id = ? AND removed_at IS NULL{}",
            clock.unwrap_or_default(),
            Self::ROW_LOCK
        )))
        .bind(manager_id)
        .fetch_optional(&mut *transaction)
        .await?;
        let row = required(row, "manager", manager_id)?;
        let manager = manager_from_row(&row)?;
        let now = match Self::CLOCK {
            Some(_) => Millis(row.integer("now")?),
            None => Millis::now(),
        };
        let (failed, locked_until, check) = pin_transition(
            manager.failed_attempts,
            manager.locked_until,
            now,
            accepted,
            policy,
        );
        sqlx::query(&Self::sql(
            "UPDATE managers SET failed_attempts = ?, locked_until = ? WHERE id = ?",
        ))
        .bind(i64::from(failed))
        .bind(locked_until.map(|at| at.0))
        .bind(manager_id)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(check)
    }

    /// The rest of using an approval, once the caller has marked it used in `transaction`
    /// (which returned `manager_id` and the stored `reason`) at `at`: the action is audited,
    /// with the manager's name, and `transaction` committed. Returns the action and the
    /// manager's store (`None`: every store).
    async fn record_approved_action(
        mut transaction: Transaction<'_, Self>,
        use_: ApprovalUse<'_>,
        manager_id: String,
        at: Millis,
        reason: Option<String>,
    ) -> Result<(ApprovedAction, Option<String>), StoreError> {
        let manager = sqlx::query(&Self::sql(&format!(
            "SELECT {MANAGER_COLUMNS} FROM managers WHERE id = ?"
        )))
        .bind(&manager_id)
        .fetch_one(&mut *transaction)
        .await?;
        let manager = manager_from_row(&manager)?;
        let action = ApprovedAction {
            at,
            manager_id,
            manager_name: manager.name,
            terminal_id: use_.terminal_id.to_owned(),
            action: use_.action,
            target: use_.target.to_owned(),
            reason: use_.reason.map(str::to_owned).or(reason),
        };
        sqlx::query(&Self::sql(&format!(
            "INSERT INTO approved_actions ({APPROVED_ACTION_COLUMNS}) VALUES ({})",
            question_marks(APPROVED_ACTION_COLUMNS)
        )))
        .bind(action.at.0)
        .bind(&action.manager_id)
        .bind(&action.manager_name)
        .bind(&action.terminal_id)
        .bind(action.action.as_str())
        .bind(&action.target)
        .bind(&action.reason)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok((action, manager.store_id))
    }

    async fn approved_actions(
        pool: &Pool<Self>,
        since: Millis,
    ) -> Result<Vec<ApprovedAction>, StoreError> {
        let text = Self::sql(&format!(
            "SELECT {APPROVED_ACTION_COLUMNS} FROM approved_actions WHERE at >= ? ORDER BY id"
        ));
        Self::all(
            pool,
            sqlx::query(&text).bind(since.0),
            approved_action_from_row,
        )
        .await
    }

    // ---- The owner's books (migration 0012) ----

    /// Saves a day and, for a reconciled one, the mismatches `found`, in `transaction` (begun
    /// by the caller, committed here); returns the day's stored mismatches.
    async fn save_books_day(
        mut transaction: Transaction<'_, Self>,
        day: &BooksDay,
        found: &[BooksMismatch],
    ) -> Result<Vec<BooksMismatch>, StoreError> {
        let day_text = books::day_text(day.day);
        sqlx::query(&Self::sql(books::UPSERT_DAY))
            .bind(&day_text)
            .bind(&day.mch_id)
            .bind(day.status.as_str())
            .bind(day.report.as_ref().map(books::to_json))
            .bind(&day.detail)
            .bind(day.run_at.0)
            .bind(&day.run_by)
            .execute(&mut *transaction)
            .await?;
        if day.status == DayStatus::Reconciled {
            sqlx::query(&Self::sql(books::UNLIST_MISMATCHES))
                .bind(false)
                .bind(&day.run_by)
                .bind(day.run_at.0)
                .bind(&day_text)
                .bind(&day.mch_id)
                .execute(&mut *transaction)
                .await?;
            for mismatch in found {
                sqlx::query(&Self::sql(books::UPSERT_MISMATCH))
                    .bind(&mismatch.id)
                    .bind(books::day_text(mismatch.day))
                    .bind(&mismatch.mch_id)
                    .bind(books::to_json(&mismatch.mismatch))
                    .bind(mismatch.status.as_str())
                    .bind(mismatch.in_latest_run)
                    .bind(&mismatch.note)
                    .bind(&mismatch.settled_by)
                    .bind(mismatch.settled_at.map(|at| at.0))
                    .bind(mismatch.first_seen_at.0)
                    .bind(mismatch.last_seen_at.0)
                    .execute(&mut *transaction)
                    .await?;
            }
        }
        let rows = sqlx::query(&Self::sql(&day_mismatches_sql()))
            .bind(&day_text)
            .bind(&day.mch_id)
            .fetch_all(&mut *transaction)
            .await?;
        transaction.commit().await?;
        rows.iter().map(books::mismatch_from_row).collect()
    }

    async fn books_day(
        pool: &Pool<Self>,
        day: NaiveDate,
        mch_id: &str,
    ) -> Result<Option<BooksDay>, StoreError> {
        let text = Self::sql(&format!(
            "SELECT {} FROM books_days WHERE business_day = ? AND mch_id = ?",
            books::DAY_COLUMNS
        ));
        let query = sqlx::query(&text).bind(books::day_text(day)).bind(mch_id);
        Self::one(pool, query, books::day_from_row).await
    }

    async fn books_days(
        pool: &Pool<Self>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<BooksDay>, StoreError> {
        let text = Self::sql(&format!(
            "SELECT {} FROM books_days WHERE business_day >= ? AND business_day <= ? \
             ORDER BY business_day, mch_id",
            books::DAY_COLUMNS
        ));
        let query = sqlx::query(&text)
            .bind(books::day_text(from))
            .bind(books::day_text(to));
        Self::all(pool, query, books::day_from_row).await
    }

    async fn books_mismatches(
        pool: &Pool<Self>,
        day: NaiveDate,
        mch_id: &str,
    ) -> Result<Vec<BooksMismatch>, StoreError> {
        let text = Self::sql(&day_mismatches_sql());
        let query = sqlx::query(&text).bind(books::day_text(day)).bind(mch_id);
        Self::all(pool, query, books::mismatch_from_row).await
    }

    async fn books_mismatch(
        pool: &Pool<Self>,
        id: &str,
    ) -> Result<Option<BooksMismatch>, StoreError> {
        let text = Self::sql(&format!(
            "SELECT {} FROM books_mismatches WHERE id = ?",
            books::MISMATCH_COLUMNS
        ));
        Self::one(pool, sqlx::query(&text).bind(id), books::mismatch_from_row).await
    }

    /// Settles mismatch `id` (the arguments in the order [`books::SETTLE_MISMATCH`] binds
    /// them), and reads it back.
    async fn settle_books_mismatch(
        pool: &Pool<Self>,
        status: MismatchStatus,
        note: Option<&str>,
        by: &str,
        at: Millis,
        id: &str,
    ) -> Result<BooksMismatch, StoreError> {
        let text = Self::sql(&format!(
            "{} RETURNING {}",
            books::SETTLE_MISMATCH,
            books::MISMATCH_COLUMNS
        ));
        let query = sqlx::query(&text)
            .bind(status.as_str())
            .bind(note)
            .bind(by)
            .bind(at.0)
            .bind(id);
        Self::found(pool, query, "mismatch", id, books::mismatch_from_row).await
    }

    async fn count_open_books_mismatches(
        pool: &Pool<Self>,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        Self::all(pool, sqlx::query(books::COUNT_OPEN), |row| {
            Ok((
                row.text("mch_id")?,
                i64_to_u64(row.integer("open_count")?, "open_count")?,
            ))
        })
        .await
    }

    async fn release_books_run(
        pool: &Pool<Self>,
        day: NaiveDate,
        mch_id: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(&Self::sql(books::RELEASE_RUN))
            .bind(books::day_text(day))
            .bind(mch_id)
            .bind(owner)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// The rows of `window` (`payments` or `refunds`) of `mch_id` created, or settled, in
    /// `[from, to)`, or whose number is among `numbers`, oldest first.
    async fn books_rows(
        pool: &Pool<Self>,
        window: BooksWindow,
        mch_id: &str,
        from: Millis,
        to: Millis,
        numbers: &[String],
    ) -> Result<Vec<Self::Row>, StoreError> {
        let (columns, table, settled, number) = match window {
            BooksWindow::Payments => (
                PAYMENT_COLUMNS,
                "payments",
                "COALESCE(wechat_paid_at, settled_at)",
                "out_trade_no",
            ),
            BooksWindow::Refunds => (
                REFUND_COLUMNS,
                "refunds",
                "COALESCE(wechat_refunded_at, applied_at)",
                "out_refund_no",
            ),
        };
        let named = if numbers.is_empty() {
            String::new()
        } else {
            format!(" OR {number} IN ({})", vec!["?"; numbers.len()].join(", "))
        };
        let text = Self::sql(&format!(
            "SELECT {columns} FROM {table} WHERE mch_id = ? AND \
             ((created_at >= ? AND created_at < ?) OR ({settled} >= ? AND {settled} < ?){named}) \
             ORDER BY created_at, id"
        ));
        let mut query = sqlx::query(&text)
            .bind(mch_id)
            .bind(from.0)
            .bind(to.0)
            .bind(from.0)
            .bind(to.0);
        for number in numbers {
            query = query.bind(number);
        }
        Ok(query.fetch_all(pool).await?)
    }

    async fn books_payments(
        pool: &Pool<Self>,
        mch_id: &str,
        from: Millis,
        to: Millis,
        out_trade_nos: &[String],
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        let rows =
            Self::books_rows(pool, BooksWindow::Payments, mch_id, from, to, out_trade_nos).await?;
        rows.iter().map(payment_from_row).collect()
    }

    async fn books_refunds(
        pool: &Pool<Self>,
        mch_id: &str,
        from: Millis,
        to: Millis,
        out_refund_nos: &[String],
    ) -> Result<Vec<RefundRecord>, StoreError> {
        let rows =
            Self::books_rows(pool, BooksWindow::Refunds, mch_id, from, to, out_refund_nos).await?;
        rows.iter().map(refund_from_row).collect()
    }
}

/// Which records [`Dialect::books_rows`] reads.
pub(super) enum BooksWindow {
    /// Payments, settled at WeChat's payment time (else the store's).
    Payments,
    /// Refunds, settled at WeChat's refund time (else when applied).
    Refunds,
}

/// The stored mismatches of one day and account (binds: day, mch_id), by id.
fn day_mismatches_sql() -> String {
    format!(
        "SELECT {} FROM books_mismatches WHERE business_day = ? AND mch_id = ? ORDER BY id",
        books::MISMATCH_COLUMNS
    )
}

/// A refund's update: its changing columns, where it is still at the expected version and
/// lease epoch, returning the stored row; bound by [`Dialect::bind_refund_update`].
pub(super) fn update_refund_sql() -> String {
    format!(
        "UPDATE refunds SET state = ?, version = ?, wechat_refund_id = ?, failure_code = ?, \
         failure_message = ?, attempts = ?, next_action_at = ?, updated_at = ?, applied_at = ?, \
         wechat_refunded_at = ? WHERE id = ? AND version = ? AND lease_epoch = ? \
         RETURNING {REFUND_COLUMNS}"
    )
}

/// The row a lookup or change of `entity` `key` found, or [`StoreError::NotFound`].
pub(super) fn required<R>(
    row: Option<R>,
    entity: &'static str,
    key: &str,
) -> Result<R, StoreError> {
    row.ok_or_else(|| StoreError::NotFound {
        entity,
        key: key.to_owned(),
    })
}
