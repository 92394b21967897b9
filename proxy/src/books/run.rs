//! One reconciliation run: a business day of one merchant account, end to end
//! (docs/books.md §5). [`Books::reconcile_day`] downloads the day's `ALL` bill (gzip), reads
//! the store's side of the bill's window, takes the previous day's carry-over, reconciles,
//! acts on what it found, and stores the day with its mismatches.
//!
//! **Acting on evidence** (docs/books.md §4), before the day is stored:
//! - a mark ("money was taken and returned", a `REVOKED` row for a payment the store has as
//!   not paid) is written onto the record (`money_returned`) with an audit event;
//! - a payment the bill shows paid that the store has as not paid, and every payment of the
//!   account that needs attention, is re-queried through
//!   [`Engine::verify_payment`](crate::engine::Engine::verify_payment), which settles the
//!   record from WeChat's verified reply only.
//!
//! When that changed a record, the day is reconciled again from the fresh store, and a
//! mismatch the first pass found that the second no longer finds is stored as
//! `resolved_by_query`. The command line (`paycode-proxy reconcile`), the daily run in
//! `serve` ([`super::daily`]) and the back office call the same function.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use paycode_api::PaymentState;
use paycode_api::books::{DayReport, MismatchClass};
use wxpay::client::CallOptions;
use wxpay::messages::{BillType, DownloadBillRequest};

use super::reconcile::{
    AccountScope, BillInput, ReconcileInput, Rules, StorePayment, StoreRefund, reconcile,
};
use super::records::{BooksDay, BooksMismatch, DayStatus, MismatchStatus};
use crate::config::Account;
use crate::engine::verify::{Actor, Verdict, VerifyOutcome};
use crate::engine::{Engine, EngineError};
use crate::store::{Millis, PaymentRecord, RefundRecord, Store, StoreError};
use crate::wechat::AccountClients;

/// What WeChat's `return_msg` says while a day's bill is being made (error code 20002,
/// docs/wechat-pay.md §3.7).
const BILL_CREATING: &str = "Bill Creating";
/// What WeChat's `return_msg` says for a day without a bill.
const NO_BILL_EXIST: &str = "No Bill Exist";

/// Why a run failed. A run that waits for the bill is not a failure
/// ([`RunOutcome::WaitingForBill`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No configured account has this name or `mch_id`.
    #[error("no configured account is called {name} or has that mch_id (configured: {configured})")]
    UnknownAccount {
        /// What was asked for.
        name: String,
        /// The configured accounts, `name (mch_id)`, comma-separated.
        configured: String,
    },
    /// The bill could not be downloaded or read.
    #[error("cannot download the bill of {day} for mch_id {mch_id}")]
    Download {
        /// The day.
        day: NaiveDate,
        /// The account.
        mch_id: String,
        /// Why.
        source: wxpay::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A verification failed in the store.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What a run of one day and account came to.
#[derive(Clone, Debug)]
pub enum RunOutcome {
    /// WeChat is still making the bill; the day is stored as waiting, to be tried again.
    WaitingForBill {
        /// WeChat's words.
        detail: String,
    },
    /// The day is reconciled and stored.
    Reconciled(Box<DayRun>),
}

/// A reconciled day: the stored report and mismatches, and what the run did.
#[derive(Clone, Debug)]
pub struct DayRun {
    /// The day as stored.
    pub day: BooksDay,
    /// The final report (also in `day.report`).
    pub report: DayReport,
    /// Every stored mismatch of the day and account, with its id and status.
    pub mismatches: Vec<BooksMismatch>,
    /// The payments re-queried, and what each query found.
    pub verified: Vec<VerifyOutcome>,
    /// The orders marked "money was taken and returned" by this run.
    pub marked: Vec<String>,
}

/// The reconciliation service: the store, WeChat's clients, the engine (for verified
/// queries) and the matching rules.
#[derive(Clone)]
pub struct Books {
    store: Arc<dyn Store>,
    accounts: Arc<AccountClients>,
    engine: Engine,
    rules: Rules,
}

impl std::fmt::Debug for Books {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Books")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl Books {
    /// The service over `store`, calling WeChat through `accounts` and verifying through
    /// `engine`, with `rules` (the shop's days and the carry-over edge).
    pub fn new(
        store: Arc<dyn Store>,
        accounts: Arc<AccountClients>,
        engine: Engine,
        rules: Rules,
    ) -> Books {
        Books {
            store,
            accounts,
            engine,
            rules,
        }
    }

    /// The matching rules.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The store the days are kept in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The configured accounts, or the one called `name` (or with that `mch_id`).
    ///
    /// # Errors
    /// [`RunError::UnknownAccount`] when `name` matches none.
    pub fn accounts(&self, name: Option<&str>) -> Result<Vec<Account>, RunError> {
        let all = self.accounts.accounts();
        match name {
            None => Ok(all),
            Some(name) => {
                let one: Vec<Account> = all
                    .into_iter()
                    .filter(|account| account.name == name || account.mch_id == name)
                    .collect();
                if one.is_empty() {
                    Err(RunError::UnknownAccount {
                        name: name.to_owned(),
                        configured: self
                            .accounts
                            .accounts()
                            .iter()
                            .map(|account| format!("{} ({})", account.name, account.mch_id))
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                } else {
                    Ok(one)
                }
            }
        }
    }

    /// Reconciles `day` for `account` and stores the result, recording `run_by` as who ran
    /// it (the rules are in this module's documentation). A re-run replaces the day and
    /// keeps the statuses its mismatches were given.
    ///
    /// # Errors
    /// [`RunError::Download`] when WeChat fails otherwise than "bill not ready" or "no bill"
    /// (the day is stored as failed, unless it was reconciled before), and store errors.
    pub async fn reconcile_day(
        &self,
        day: NaiveDate,
        account: &Account,
        run_by: &str,
    ) -> Result<RunOutcome, RunError> {
        let mch_id = account.mch_id.clone();
        let attempt = |status, detail: String| BooksDay {
            day,
            mch_id: mch_id.clone(),
            status,
            report: None,
            detail: Some(detail),
            run_at: Millis::now(),
            run_by: run_by.to_owned(),
        };
        let bill = match self.download(day, account).await {
            Ok(bill) => bill,
            Err(wxpay::Error::Protocol { return_msg }) if return_msg.contains(NO_BILL_EXIST) => {
                BillInput::NoBill
            }
            Err(wxpay::Error::Protocol { return_msg }) if return_msg.contains(BILL_CREATING) => {
                self.store
                    .save_books_day(&attempt(DayStatus::WaitingForBill, return_msg.clone()), &[])
                    .await?;
                return Ok(RunOutcome::WaitingForBill { detail: return_msg });
            }
            Err(error) => {
                self.store
                    .save_books_day(&attempt(DayStatus::Failed, error.to_string()), &[])
                    .await?;
                return Err(RunError::Download {
                    day,
                    mch_id,
                    source: error,
                });
            }
        };
        let actor = Actor::Reconciliation {
            day,
            mch_id: mch_id.clone(),
        };
        let scope = self.scope(account).await?;
        let carried_in = match day.checked_sub_days(Days::new(1)) {
            Some(previous) => self
                .store
                .books_day(previous, &mch_id)
                .await?
                .and_then(|stored| stored.report)
                .map(|report| report.carried_to_next_day)
                .unwrap_or_default(),
            None => Default::default(),
        };
        let mut input = ReconcileInput {
            day,
            scope,
            bill,
            payments: Vec::new(),
            refunds: Vec::new(),
            carried_in,
        };
        let (payments, refunds) = self.store_side(&input).await?;
        (input.payments, input.refunds) = (to_store_payments(&payments), refunds);
        let first = reconcile(&input, &self.rules);

        // Act on what the bill proves, then on what a verified query shows.
        let marked = self.write_marks(&first, &payments, &actor).await?;
        let mut to_verify: BTreeSet<String> = first
            .mismatches
            .iter()
            .filter(|mismatch| {
                mismatch.class == MismatchClass::PaidAtWechatNotHere
                    && mismatch.store_state.is_some()
            })
            .filter_map(|mismatch| {
                payments
                    .iter()
                    .find(|payment| payment.out_trade_no.as_str() == mismatch.out_trade_no)
                    .map(|payment| payment.id.clone())
            })
            .collect();
        to_verify.extend(
            self.store
                .unsettled_payments()
                .await?
                .into_iter()
                .filter(|payment| {
                    payment.state == PaymentState::NeedsAttention
                        && payment.merchant.mch_id == mch_id
                })
                .map(|payment| payment.id),
        );
        let mut verified = Vec::new();
        for payment_id in &to_verify {
            verified.push(self.engine.verify_payment(payment_id, &actor).await?);
        }
        let changed = !marked.is_empty()
            || verified
                .iter()
                .any(|outcome| outcome.verdict == Verdict::Changed);
        let report = if changed {
            let (payments, refunds) = self.store_side(&input).await?;
            (input.payments, input.refunds) = (to_store_payments(&payments), refunds);
            reconcile(&input, &self.rules)
        } else {
            first.clone()
        };

        // Store: the final report's mismatches, and those a verified query resolved.
        let now = Millis::now();
        let mut found: Vec<BooksMismatch> = report
            .mismatches
            .iter()
            .map(|mismatch| BooksMismatch::open(day, &mch_id, mismatch.clone(), now))
            .collect();
        for mismatch in &first.mismatches {
            if report.mismatches.contains(mismatch) {
                continue;
            }
            let by_query = verified
                .iter()
                .find(|outcome| outcome.payment.out_trade_no.as_str() == mismatch.out_trade_no);
            let mut resolved = BooksMismatch::open(day, &mch_id, mismatch.clone(), now);
            if found.iter().any(|kept| kept.id == resolved.id) {
                continue;
            }
            resolved.in_latest_run = false;
            resolved.settled_by = Some(actor.to_string());
            resolved.settled_at = Some(now);
            if let Some(outcome) = by_query {
                resolved.status = MismatchStatus::ResolvedByQuery;
                resolved.note = Some(format!(
                    "orderquery: {:?}; the payment is {}",
                    outcome.wechat, outcome.payment.state
                ));
            } else {
                resolved.status = MismatchStatus::Cleared;
                resolved.note =
                    Some("not found again after the run's verified queries and marks".to_owned());
            }
            found.push(resolved);
        }
        let stored_day = BooksDay {
            day,
            mch_id: mch_id.clone(),
            status: DayStatus::Reconciled,
            report: Some(report.clone()),
            detail: None,
            run_at: now,
            run_by: run_by.to_owned(),
        };
        let mismatches = self.store.save_books_day(&stored_day, &found).await?;
        tracing::info!(
            %day,
            %mch_id,
            mismatches = report.mismatches.len(),
            verified = verified.len(),
            marked = marked.len(),
            "books: day reconciled"
        );
        Ok(RunOutcome::Reconciled(Box::new(DayRun {
            day: stored_day,
            report,
            mismatches,
            verified,
            marked,
        })))
    }

    /// Downloads the day's `ALL` bill of `account` (all its sub-merchants' rows, for a
    /// provider).
    async fn download(&self, day: NaiveDate, account: &Account) -> Result<BillInput, wxpay::Error> {
        let client = self
            .accounts
            .iter()
            .find(|client| client.account.mch_id == account.mch_id)
            .map(|client| client.client_for(None, None))
            .ok_or_else(|| {
                wxpay::Error::NotSent(wxpay::error::NotSent::Build(format!(
                    "no configured account has mch_id {}",
                    account.mch_id
                )))
            })?;
        let request = DownloadBillRequest {
            bill_date: day,
            bill_type: BillType::All,
        };
        let bill = client
            .download_bill(&request, CallOptions::default())
            .await?;
        Ok(BillInput::Bill(bill))
    }

    /// Which bill rows are this deployment's: the account, and in provider mode the
    /// sub-merchants of its stores.
    async fn scope(&self, account: &Account) -> Result<AccountScope, StoreError> {
        let sub_mch_ids = if account.provider {
            self.store
                .list_stores()
                .await?
                .into_iter()
                .filter(|store| store.account == account.name)
                .filter_map(|store| store.sub_mch_id)
                .collect()
        } else {
            BTreeSet::new()
        };
        Ok(AccountScope {
            mch_id: account.mch_id.clone(),
            sub_mch_ids,
        })
    }

    /// The store's payments and refunds the day's bill may list: created, or paid by
    /// WeChat's time (else settled), from the start of the day before to the end of the day,
    /// plus any the bill names.
    async fn store_side(
        &self,
        input: &ReconcileInput,
    ) -> Result<(Vec<PaymentRecord>, Vec<StoreRefund>), StoreError> {
        let days = self.rules.days;
        let from = days.start_of(input.day.pred_opt().unwrap_or(input.day));
        let to = days.end_of(input.day);
        let (mut orders, mut refund_nos) = (Vec::new(), Vec::new());
        if let BillInput::Bill(bill) = &input.bill {
            for row in &bill.rows {
                orders.push(row.out_trade_no.clone());
                if !row.out_refund_no.is_empty() {
                    refund_nos.push(row.out_refund_no.clone());
                }
            }
        }
        for carried in &input.carried_in.payments {
            orders.push(carried.out_trade_no.clone());
        }
        for carried in &input.carried_in.refunds {
            refund_nos.push(carried.out_refund_no.clone());
        }
        orders.sort();
        orders.dedup();
        refund_nos.sort();
        refund_nos.dedup();
        let mch_id = &input.scope.mch_id;
        let payments = self.store.books_payments(mch_id, from, to, &orders).await?;
        let refunds = self
            .store
            .books_refunds(mch_id, from, to, &refund_nos)
            .await?;
        let mut orders_by_id: BTreeMap<String, String> = payments
            .iter()
            .map(|payment| (payment.id.clone(), payment.out_trade_no.as_str().to_owned()))
            .collect();
        let mut store_refunds = Vec::with_capacity(refunds.len());
        for refund in refunds {
            let out_trade_no = match orders_by_id.get(&refund.payment_id) {
                Some(order) => order.clone(),
                None => {
                    let payment = self.store.existing_payment(&refund.payment_id).await?;
                    let order = payment.out_trade_no.as_str().to_owned();
                    orders_by_id.insert(payment.id, order.clone());
                    order
                }
            };
            store_refunds.push(to_store_refund(&refund, out_trade_no));
        }
        Ok((payments, store_refunds))
    }

    /// Writes each of the report's marks the record does not say yet; returns the orders
    /// marked.
    async fn write_marks(
        &self,
        report: &DayReport,
        payments: &[PaymentRecord],
        actor: &Actor,
    ) -> Result<Vec<String>, StoreError> {
        let mut marked = Vec::new();
        for mark in report.marks.iter().filter(|mark| !mark.already_recorded) {
            let Some(payment) = payments
                .iter()
                .find(|payment| payment.out_trade_no.as_str() == mark.out_trade_no)
            else {
                continue;
            };
            let detail = format!(
                "the bill of {} lists the order REVOKED: {} (marked by {actor})",
                report.day, mark.fact
            );
            let mut record = payment.clone();
            loop {
                if record.money_returned || record.state == PaymentState::Paid {
                    break;
                }
                let mut next = record.clone();
                next.money_returned = true;
                match self.store.update_payment(&next, &detail).await {
                    Ok(_) => {
                        marked.push(mark.out_trade_no.clone());
                        break;
                    }
                    Err(StoreError::StaleVersion { .. } | StoreError::LeaseLost { .. }) => {
                        record = self.store.existing_payment(&payment.id).await?;
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(marked)
    }
}

fn to_store_payments(payments: &[PaymentRecord]) -> Vec<StorePayment> {
    payments
        .iter()
        .map(|payment| StorePayment {
            out_trade_no: payment.out_trade_no.as_str().to_owned(),
            amount: payment.amount_fen,
            state: payment.state,
            created_at: payment.created_at,
            paid_at: (payment.state == PaymentState::Paid)
                .then(|| payment.wechat_paid_at.or(payment.settled_at))
                .flatten(),
            money_returned: payment.money_returned,
        })
        .collect()
}

fn to_store_refund(refund: &RefundRecord, out_trade_no: String) -> StoreRefund {
    StoreRefund {
        out_refund_no: refund.out_refund_no.as_str().to_owned(),
        out_trade_no,
        amount: refund.amount_fen,
        state: refund.state,
        accepted_at: refund.wechat_refunded_at.or(refund.applied_at),
        created_at: refund.created_at,
    }
}
