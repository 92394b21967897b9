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
use paycode_api::{PaymentState, Role};
use sqlx::migrate::Migrate;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, PgConnection, Postgres, Row};

use super::books;
use super::records::{
    ApprovalUse, ApprovedAction, LockoutPolicy, ManagerRecord, MerchantIds, Millis, NewApproval,
    PaymentEvent, PaymentRecord, PinCheck, RefundRecord, StoreRecord, TerminalRecord,
};
use super::rows::{
    DayColumn, LEASE_COLUMNS, MANAGER_COLUMNS, PAYMENT_COLUMNS, PAYMENT_IMMUTABLE_COLUMNS,
    PAYMENT_MUTABLE_COLUMNS, REFUND_COLUMNS, SETTLED_STATES_SQL, STORE_COLUMNS, TERMINAL_COLUMNS,
    UNFINISHED_REFUND_STATES_SQL, bind_immutable, bind_mutable, bind_refund, check_refund_cap,
    claimed, column_count, existing_or_conflict, i64_to_u64, manager_from_row, payment_difference,
    payment_from_row, refund_difference, refund_from_row, store_from_row, terminal_from_row,
    u64_to_i64, unique_violation_as_exists,
};
use super::shared::{Dialect, update_refund_sql};
use super::{
    ClaimRequest, HeldLeases, InsertOutcome, LeaseTerms, Leased, Renewal, Renewed, Store,
    StoreError,
};
use crate::books::records::{BooksDay, BooksMismatch, MismatchStatus};
use crate::config::StoreConfig;

/// The migrations in `proxy/migrations/postgres`, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The database's clock now, in epoch milliseconds: every lease time is taken from it, so
/// instances whose clocks disagree still agree on who holds what. `clock_timestamp()` (not
/// `now()`, the transaction's start) so that a claim that waited for a lock does not date
/// its lease from before the wait.
const NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

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

impl DayColumn for PgRow {
    /// A DATE.
    fn day_column(&self, column: &'static str) -> Result<NaiveDate, StoreError> {
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
        insert_payment(&mut connection, payment, None).await
    }

    async fn insert_leased_payment(
        &self,
        payment: &PaymentRecord,
        terms: LeaseTerms<'_>,
    ) -> Result<InsertOutcome<PaymentRecord>, StoreError> {
        let mut connection = self.pool.acquire().await?;
        insert_payment(&mut connection, payment, Some(terms)).await
    }

    async fn get_payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        Postgres::get_payment(&self.pool, id).await
    }

    async fn get_payment_by_attempt(
        &self,
        attempt_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        Postgres::get_payment_by_attempt(&self.pool, attempt_id).await
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
        Postgres::unsettled_payments(&self.pool).await
    }

    async fn payments_to_close(&self) -> Result<Vec<PaymentRecord>, StoreError> {
        Postgres::payments_to_close(&self.pool).await
    }

    async fn count_payments_by_state(&self) -> Result<Vec<(PaymentState, u64)>, StoreError> {
        Postgres::count_payments_by_state(&self.pool).await
    }

    async fn payment_events(&self, payment_id: &str) -> Result<Vec<PaymentEvent>, StoreError> {
        Postgres::payment_events(&self.pool, payment_id).await
    }

    async fn insert_refund(
        &self,
        refund: &RefundRecord,
    ) -> Result<InsertOutcome<RefundRecord>, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let outcome = insert_refund(&mut transaction, refund, None).await?;
        transaction.commit().await?;
        Ok(outcome)
    }

    async fn insert_leased_refund(
        &self,
        refund: &RefundRecord,
        terms: LeaseTerms<'_>,
    ) -> Result<InsertOutcome<RefundRecord>, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let outcome = insert_refund(&mut transaction, refund, Some(terms)).await?;
        transaction.commit().await?;
        Ok(outcome)
    }

    async fn update_refund(&self, refund: &RefundRecord) -> Result<RefundRecord, StoreError> {
        let text = Postgres::sql(&update_refund_sql());
        let row = Postgres::bind_refund_update(sqlx::query(&text), refund)?
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => refund_from_row(&row),
            None => {
                let mut connection = self.pool.acquire().await?;
                Err(Postgres::refused(
                    &mut connection,
                    "refund",
                    &refund.id,
                    refund.version,
                    refund.lease_epoch,
                )
                .await)
            }
        }
    }

    async fn get_refund(&self, id: &str) -> Result<Option<RefundRecord>, StoreError> {
        Postgres::get_refund(&self.pool, id).await
    }

    async fn refunds_for_payment(&self, payment_id: &str) -> Result<Vec<RefundRecord>, StoreError> {
        Postgres::refunds_for_payment(&self.pool, payment_id).await
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
        Postgres::unfinished_refunds(&self.pool).await
    }

    async fn clock(&self) -> Result<Millis, StoreError> {
        let now: i64 = sqlx::query(&format!("SELECT {NOW_MS} AS now"))
            .fetch_one(&self.pool)
            .await?
            .try_get("now")?;
        Ok(Millis(now))
    }

    async fn claim_due(
        &self,
        request: ClaimRequest<'_>,
    ) -> Result<(Vec<Leased<PaymentRecord>>, Vec<Leased<RefundRecord>>), StoreError> {
        // `FOR UPDATE SKIP LOCKED`: a row another claimer has locked is skipped, not waited
        // for; a row it claimed and committed meanwhile is re-checked against the lease
        // condition once locked (READ COMMITTED), and no longer matches. The claimer's own
        // lapsed leases wait one more lease duration: a late renewal still extends them,
        // rather than a claim bumping the epoch under the claimer's own steps.
        let claim = |table: &str, due: &str, columns: &str| {
            format!(
                "WITH due AS (\
                     SELECT id AS claimed_id FROM {table} \
                     WHERE ({due}) AND (next_action_at IS NULL OR next_action_at <= $1) \
                     AND ($2 OR lease_until IS NULL OR (lease_until <= {NOW_MS} \
                         AND (lease_owner <> $4 OR lease_until <= {NOW_MS} - $5))) \
                     ORDER BY next_action_at NULLS FIRST, id LIMIT $3 \
                     FOR UPDATE SKIP LOCKED) \
                 UPDATE {table} SET lease_owner = $4, lease_until = {NOW_MS} + $5, \
                     lease_epoch = lease_epoch + 1 \
                 FROM due WHERE {table}.id = due.claimed_id \
                 RETURNING {columns}, lease_until - {NOW_MS} AS remaining_ms"
            )
        };
        let payments_due = format!("state NOT IN {SETTLED_STATES_SQL} OR close_state = 'pending'");
        let refunds_due = format!("state IN {UNFINISHED_REFUND_STATES_SQL}");
        let duration = duration_ms(request.terms.duration)?;
        let mut leased = Vec::with_capacity(2);
        for query in [
            claim("payments", &payments_due, PAYMENT_COLUMNS),
            claim("refunds", &refunds_due, REFUND_COLUMNS),
        ] {
            leased.push(
                sqlx::query(&query)
                    .bind(request.due_before.0)
                    .bind(request.take_over)
                    .bind(i64::from(request.limit))
                    .bind(request.terms.owner)
                    .bind(duration)
                    .fetch_all(&self.pool)
                    .await?,
            );
        }
        claimed(leased, remaining)
    }

    async fn renew_leases(
        &self,
        terms: LeaseTerms<'_>,
        held: &HeldLeases,
    ) -> Result<Renewal, StoreError> {
        let duration = duration_ms(terms.duration)?;
        let mut renewed = Vec::with_capacity(2);
        for (table, rows) in [("payments", &held.payments), ("refunds", &held.refunds)] {
            if rows.is_empty() {
                renewed.push(Vec::new());
                continue;
            }
            let (ids, epochs) = id_epoch_arrays(rows)?;
            let answer = sqlx::query(&format!(
                "UPDATE {table} SET lease_until = {NOW_MS} + $2 \
                 FROM UNNEST($3::TEXT[], $4::BIGINT[]) AS held (held_id, held_epoch) \
                 WHERE {table}.id = held.held_id AND {table}.lease_epoch = held.held_epoch \
                 AND {table}.lease_owner = $1 \
                 RETURNING id, version, lease_until - {NOW_MS} AS remaining_ms"
            ))
            .bind(terms.owner)
            .bind(duration)
            .bind(ids)
            .bind(epochs)
            .fetch_all(&self.pool)
            .await?;
            renewed.push(
                answer
                    .iter()
                    .map(|row| {
                        Ok(Renewed {
                            id: row.try_get("id")?,
                            version: i64_to_u64(row.try_get("version")?, "version")?,
                            remaining: remaining(row)?,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?,
            );
        }
        let refunds = renewed.pop().unwrap_or_default();
        let payments = renewed.pop().unwrap_or_default();
        Ok(Renewal { payments, refunds })
    }

    async fn release_leases(&self, owner: &str, held: &HeldLeases) -> Result<u64, StoreError> {
        let mut released = 0;
        for (table, rows) in [("payments", &held.payments), ("refunds", &held.refunds)] {
            if rows.is_empty() {
                continue;
            }
            let (ids, epochs) = id_epoch_arrays(rows)?;
            released += sqlx::query(&format!(
                "UPDATE {table} SET lease_owner = NULL, lease_until = NULL \
                 FROM UNNEST($2::TEXT[], $3::BIGINT[]) AS held (held_id, held_epoch) \
                 WHERE {table}.id = held.held_id AND {table}.lease_epoch = held.held_epoch \
                 AND {table}.lease_owner = $1"
            ))
            .bind(owner)
            .bind(ids)
            .bind(epochs)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(released)
    }

    async fn add_terminal(
        &self,
        name: &str,
        token_hash: &str,
        store_id: &str,
    ) -> Result<TerminalRecord, StoreError> {
        Postgres::add_terminal(&self.pool, name, token_hash, store_id).await
    }

    async fn terminal_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<TerminalRecord>, StoreError> {
        Postgres::terminal_by_token_hash(&self.pool, token_hash).await
    }

    async fn list_terminals(&self) -> Result<Vec<TerminalRecord>, StoreError> {
        Postgres::listed(&self.pool, "terminals", TERMINAL_COLUMNS, terminal_from_row).await
    }

    async fn add_pairing_code(
        &self,
        terminal_name: &str,
        code_hash: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<TerminalRecord, StoreError> {
        Postgres::add_pairing_code(
            self.pool.begin().await?,
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
        Postgres::revoke_terminal(&self.pool, name).await
    }

    async fn add_store(&self, store: &StoreRecord) -> Result<StoreRecord, StoreError> {
        Postgres::add_store(&self.pool, store).await
    }

    async fn get_store(&self, id: &str) -> Result<Option<StoreRecord>, StoreError> {
        Postgres::get_store(&self.pool, id).await
    }

    async fn list_stores(&self) -> Result<Vec<StoreRecord>, StoreError> {
        Postgres::listed(&self.pool, "stores", STORE_COLUMNS, store_from_row).await
    }

    async fn disable_store(&self, name: &str) -> Result<StoreRecord, StoreError> {
        Postgres::disable_store(&self.pool, name).await
    }

    async fn adopt_unbound_rows(
        &self,
        store: &StoreRecord,
        merchant: &MerchantIds,
    ) -> Result<u64, StoreError> {
        // One transaction: proxies starting together may both adopt; the second finds the
        // rows filled in (its updates wait for the first's row locks, then match nothing).
        Postgres::adopt_unbound_rows(self.pool.begin().await?, store, merchant).await
    }

    // ---- Manager approvals (migration 0011, docs/approvals.md) ----

    async fn set_terminal_role(
        &self,
        name: &str,
        role: Role,
    ) -> Result<TerminalRecord, StoreError> {
        Postgres::set_terminal_role(&self.pool, name, role).await
    }

    async fn add_manager(&self, manager: &ManagerRecord) -> Result<ManagerRecord, StoreError> {
        Postgres::add_manager(&self.pool, manager).await
    }

    async fn manager_by_name(&self, name: &str) -> Result<Option<ManagerRecord>, StoreError> {
        Postgres::manager_by_name(&self.pool, name).await
    }

    async fn list_managers(&self) -> Result<Vec<ManagerRecord>, StoreError> {
        Postgres::listed(&self.pool, "managers", MANAGER_COLUMNS, manager_from_row).await
    }

    async fn set_manager_pin(
        &self,
        name: &str,
        pin_hash: &str,
    ) -> Result<ManagerRecord, StoreError> {
        Postgres::set_manager_pin(&self.pool, name, pin_hash).await
    }

    async fn remove_manager(&self, name: &str) -> Result<ManagerRecord, StoreError> {
        let text = format!(
            "UPDATE managers SET removed_at = {NOW_MS} WHERE name = $1 AND removed_at IS NULL \
             RETURNING {MANAGER_COLUMNS}"
        );
        let query = sqlx::query(&text).bind(name);
        Postgres::found(&self.pool, query, "manager", name, manager_from_row).await
    }

    async fn record_pin_check(
        &self,
        manager_id: &str,
        accepted: bool,
        policy: LockoutPolicy,
    ) -> Result<PinCheck, StoreError> {
        // The row lock orders checks of one manager from every proxy; the clock is the
        // database's, so a lockout ends at the same moment for all of them.
        Postgres::record_pin_check(self.pool.begin().await?, manager_id, accepted, policy).await
    }

    async fn insert_approval(&self, approval: &NewApproval) -> Result<Millis, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO approvals (token_hash, terminal_id, manager_id, action, reason, once, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, {NOW_MS}, {NOW_MS} + $7) \
             RETURNING expires_at"
        ))
        .bind(&approval.token_hash)
        .bind(&approval.terminal_id)
        .bind(&approval.manager_id)
        .bind(approval.action.as_str())
        .bind(&approval.reason)
        .bind(approval.once)
        .bind(duration_ms(approval.ttl)?)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| unique_violation_as_exists(error, "approval", "token"))?;
        Ok(Millis(row.try_get("expires_at")?))
    }

    async fn use_approval(
        &self,
        use_: ApprovalUse<'_>,
    ) -> Result<Option<(ApprovedAction, Option<String>)>, StoreError> {
        let mut transaction = self.pool.begin().await?;
        // A conditional update: of two uses racing, the second waits for the first's row
        // lock, then finds `used_at` set and changes nothing.
        let row = sqlx::query(&format!(
            "UPDATE approvals SET used_at = COALESCE(used_at, {NOW_MS}) \
             WHERE token_hash = $1 AND terminal_id = $2 AND action = $3 \
             AND expires_at > {NOW_MS} AND (NOT once OR used_at IS NULL) \
             AND manager_id IN (SELECT id FROM managers WHERE removed_at IS NULL \
                 AND (store_id IS NULL OR store_id = $4)) \
             RETURNING manager_id, reason, {NOW_MS} AS now"
        ))
        .bind(use_.token_hash)
        .bind(use_.terminal_id)
        .bind(use_.action.as_str())
        .bind(use_.store_id)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(row) = row else {
            transaction.commit().await?;
            return Ok(None);
        };
        Postgres::record_approved_action(
            transaction,
            use_,
            row.try_get("manager_id")?,
            Millis(row.try_get("now")?),
            row.try_get("reason")?,
        )
        .await
        .map(Some)
    }

    async fn approved_actions(&self, since: Millis) -> Result<Vec<ApprovedAction>, StoreError> {
        Postgres::approved_actions(&self.pool, since).await
    }

    // ---- The owner's books (migration 0012): kept together at the end. ----

    async fn save_books_day(
        &self,
        day: &BooksDay,
        found: &[BooksMismatch],
    ) -> Result<Vec<BooksMismatch>, StoreError> {
        Postgres::save_books_day(self.pool.begin().await?, day, found).await
    }

    async fn books_day(
        &self,
        day: NaiveDate,
        mch_id: &str,
    ) -> Result<Option<BooksDay>, StoreError> {
        Postgres::books_day(&self.pool, day, mch_id).await
    }

    async fn books_days(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<BooksDay>, StoreError> {
        Postgres::books_days(&self.pool, from, to).await
    }

    async fn books_mismatches(
        &self,
        day: NaiveDate,
        mch_id: &str,
    ) -> Result<Vec<BooksMismatch>, StoreError> {
        Postgres::books_mismatches(&self.pool, day, mch_id).await
    }

    async fn books_mismatch(&self, id: &str) -> Result<Option<BooksMismatch>, StoreError> {
        Postgres::books_mismatch(&self.pool, id).await
    }

    async fn settle_books_mismatch(
        &self,
        id: &str,
        status: MismatchStatus,
        note: Option<&str>,
        by: &str,
        at: Millis,
    ) -> Result<BooksMismatch, StoreError> {
        Postgres::settle_books_mismatch(&self.pool, status, note, by, at, id).await
    }

    async fn count_open_books_mismatches(&self) -> Result<Vec<(String, u64)>, StoreError> {
        Postgres::count_open_books_mismatches(&self.pool).await
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
        Postgres::release_books_run(&self.pool, day, mch_id, owner).await
    }

    async fn books_payments(
        &self,
        mch_id: &str,
        from: Millis,
        to: Millis,
        out_trade_nos: &[String],
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        Postgres::books_payments(&self.pool, mch_id, from, to, out_trade_nos).await
    }

    async fn books_refunds(
        &self,
        mch_id: &str,
        from: Millis,
        to: Millis,
        out_refund_nos: &[String],
    ) -> Result<Vec<RefundRecord>, StoreError> {
        Postgres::books_refunds(&self.pool, mch_id, from, to, out_refund_nos).await
    }
}

// The write operations. A payment's insert and update are single statements (each its own
// transaction); a refund's insert is a transaction that an error rolls back (it is dropped
// uncommitted), so a refusal leaves nothing behind.

async fn insert_payment(
    connection: &mut PgConnection,
    payment: &PaymentRecord,
    lease: Option<LeaseTerms<'_>>,
) -> Result<InsertOutcome<PaymentRecord>, StoreError> {
    // One statement, so one implicit transaction and one round trip: the payment and its
    // creation event, or (a row with the same attempt, order number or id exists) neither.
    let written = column_count(PAYMENT_IMMUTABLE_COLUMNS) + column_count(PAYMENT_MUTABLE_COLUMNS);
    let query = format!(
        "WITH inserted AS (\
             INSERT INTO payments \
                 ({PAYMENT_IMMUTABLE_COLUMNS}, {PAYMENT_MUTABLE_COLUMNS}, {LEASE_COLUMNS}) \
             VALUES ({}, {}) ON CONFLICT DO NOTHING \
             RETURNING id, state, created_at, lease_until, lease_owner, lease_epoch), \
         recorded AS (\
             INSERT INTO payment_events \
                 (payment_id, at, from_state, to_state, detail, lease_owner, lease_epoch) \
             SELECT id, created_at, NULL, state, 'created', lease_owner, lease_epoch \
             FROM inserted) \
         SELECT lease_until FROM inserted",
        placeholders(1, written),
        lease_values(written + 1),
    );
    let insert = bind_immutable(sqlx::query(&query), payment, payment.business_day)?;
    let inserted = bind_lease(
        bind_mutable(insert, payment, payment.version, payment.updated_at)?,
        lease,
    )?
    .fetch_optional(&mut *connection)
    .await?;
    if let Some(row) = inserted {
        return Ok(InsertOutcome::Inserted(leased_copy(
            payment,
            lease,
            row.try_get::<Option<i64>, _>("lease_until")?,
        )));
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
    // the expected version and epoch and reads the state being replaced: a concurrent writer
    // of that version waits there and, once this commits, finds no row at its version; a
    // writer whose lease was claimed since finds none at its epoch. The update repeats both
    // conditions, and the event is written from the update's result: with the change, or not
    // at all.
    let mutable = column_count(PAYMENT_MUTABLE_COLUMNS);
    let query = format!(
        "WITH current AS (\
             SELECT id AS locked_id, state AS from_state FROM payments \
             WHERE id = ${id} AND version = ${version} AND lease_epoch = ${epoch} \
             FOR NO KEY UPDATE), \
         changed AS (\
             UPDATE payments SET ({PAYMENT_MUTABLE_COLUMNS}) = ({values}) \
             FROM current \
             WHERE payments.id = current.locked_id AND payments.version = ${version} \
             AND payments.lease_epoch = ${epoch} \
             RETURNING {PAYMENT_COLUMNS}), \
         recorded AS (\
             INSERT INTO payment_events \
                 (payment_id, at, from_state, to_state, detail, lease_owner, lease_epoch) \
             SELECT changed.id, ${now}, current.from_state, ${to_state}, ${detail}, \
                 ${owner}::TEXT, ${epoch}::BIGINT \
             FROM changed, current) \
         SELECT {PAYMENT_COLUMNS} FROM changed",
        values = placeholders(1, mutable),
        id = mutable + 1,
        version = mutable + 2,
        now = mutable + 3,
        to_state = mutable + 4,
        detail = mutable + 5,
        epoch = mutable + 6,
        owner = mutable + 7,
    );
    let row = bind_mutable(sqlx::query(&query), payment, payment.version + 1, now)?
        .bind(&payment.id)
        .bind(expected_version)
        .bind(now.0)
        .bind(payment.state.as_str())
        .bind(detail)
        .bind(u64_to_i64(payment.lease_epoch, "lease_epoch")?)
        .bind(payment.lease_owner.as_deref())
        .fetch_optional(&mut *connection)
        .await?;
    match row {
        // The row as stored, immutable fields included, rather than the caller's copy.
        Some(row) => payment_from_row(&row),
        None => Err(Postgres::refused(
            connection,
            "payment",
            &payment.id,
            payment.version,
            payment.lease_epoch,
        )
        .await),
    }
}

async fn insert_refund(
    connection: &mut PgConnection,
    refund: &RefundRecord,
    lease: Option<LeaseTerms<'_>>,
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
    let written = column_count(REFUND_COLUMNS) - column_count(LEASE_COLUMNS);
    let query = format!(
        "INSERT INTO refunds ({REFUND_COLUMNS}) VALUES ({}, {}) ON CONFLICT DO NOTHING \
         RETURNING lease_until",
        placeholders(1, written),
        lease_values(written + 1),
    );
    let inserted = bind_lease(bind_refund(sqlx::query(&query), refund)?, lease)?
        .fetch_optional(&mut *connection)
        .await?;
    if let Some(row) = inserted {
        let lease_until: Option<i64> = row.try_get("lease_until")?;
        let mut stored = refund.clone();
        stored.lease_owner = lease.map(|terms| terms.owner.to_owned());
        stored.lease_until = lease_until.map(Millis);
        stored.lease_epoch = u64::from(lease.is_some());
        return Ok(InsertOutcome::Inserted(stored));
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

/// The VALUES of the [`LEASE_COLUMNS`] of an insert, from parameter `first` on: the owner,
/// a duration in milliseconds added to the database's clock (NULL: no lease), the epoch.
fn lease_values(first: usize) -> String {
    format!(
        "${first}, {NOW_MS} + ${}::BIGINT, ${}",
        first + 1,
        first + 2
    )
}

/// Binds the [`lease_values`]: `lease`'s owner and duration with epoch 1, or no lease
/// (epoch 0).
fn bind_lease<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    lease: Option<LeaseTerms<'q>>,
) -> Result<sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>, StoreError> {
    let duration = lease.map(|terms| duration_ms(terms.duration)).transpose()?;
    Ok(query
        .bind(lease.map(|terms| terms.owner))
        .bind(duration)
        .bind(i64::from(lease.is_some())))
}

/// `payment` as inserted under `lease` with the database's `lease_until`.
fn leased_copy(
    payment: &PaymentRecord,
    lease: Option<LeaseTerms<'_>>,
    lease_until: Option<i64>,
) -> PaymentRecord {
    let mut stored = payment.clone();
    stored.lease_owner = lease.map(|terms| terms.owner.to_owned());
    stored.lease_until = lease_until.map(Millis);
    stored.lease_epoch = u64::from(lease.is_some());
    stored
}

/// A lease's duration in whole milliseconds, as the database adds it to its clock.
fn duration_ms(duration: Duration) -> Result<i64, StoreError> {
    i64::try_from(duration.as_millis()).map_err(|_| StoreError::OutOfRange {
        field: "lease duration",
    })
}

/// The `remaining_ms` column of a claim or renewal, as a duration (zero if already past).
fn remaining(row: &PgRow) -> Result<Duration, StoreError> {
    let remaining: i64 = row.try_get("remaining_ms")?;
    Ok(Duration::from_millis(u64::try_from(remaining).unwrap_or(0)))
}

/// The ids and epochs of held leases as two parallel arrays, for `UNNEST`.
fn id_epoch_arrays(rows: &[(String, u64)]) -> Result<(Vec<String>, Vec<i64>), StoreError> {
    let ids = rows.iter().map(|(id, _)| id.clone()).collect();
    let epochs = rows
        .iter()
        .map(|(_, epoch)| u64_to_i64(*epoch, "lease_epoch"))
        .collect::<Result<_, _>>()?;
    Ok((ids, epochs))
}

impl Dialect for Postgres {
    const CLOCK: Option<&'static str> = Some(NOW_MS);

    const ROW_LOCK: &'static str = " FOR UPDATE";

    /// With its `?` placeholders numbered `$1`, `$2`, … ([`books::numbered`]).
    fn sql(text: &str) -> String {
        books::numbered(text)
    }

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// Claims a day's run on the database's clock (binds: day, mch_id, owner, duration in ms):
/// free, lapsed or already the owner's.
fn claim_books_run_sql() -> String {
    format!(
        "INSERT INTO books_runs (business_day, mch_id, owner, claimed_until) \
         VALUES ($1, $2, $3, {NOW_MS} + $4) \
         ON CONFLICT (business_day, mch_id) DO UPDATE SET owner = excluded.owner, \
         claimed_until = excluded.claimed_until \
         WHERE books_runs.claimed_until <= {NOW_MS} OR books_runs.owner = excluded.owner"
    )
}

#[cfg(test)]
mod tests {
    use paycode_api::payments::RefundState;

    use super::*;
    use crate::store::records::{Action, CloseState, refund_state_name};

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
