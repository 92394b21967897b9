//! Manager approvals (docs/approvals.md): managers and their PINs, approval tokens, and the
//! check every manager action goes through.
//!
//! - [`pin`]: what a PIN may be and its argon2id hash.
//! - [`token`]: the `pca_` approval tokens, stored hashed.
//! - [`limiter`]: the per-terminal limit on PIN checks.
//! - [`Approvals`]: managing managers (the CLI), issuing an approval for a manager's PIN
//!   (`POST /api/v1/approvals`) and [`Approvals::require`], which a route calls before a
//!   manager action: the terminal's role, then the `Paycode-Approval` token, used up and
//!   audited in one transaction.
//!
//! Failed PIN checks are counted in the database on its clock, so a lockout holds across
//! every proxy on one database; the per-terminal limit is counted in each proxy.

pub mod limiter;
pub mod pin;
pub mod token;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use paycode_api::{
    APPROVAL_HEADER, Approval, ApprovalAction, ApprovalRequest, ApprovalUses, ErrorCode, Role,
};

use crate::auth::AuthenticatedTerminal;
use crate::config::ApprovalsConfig;
use crate::error::ApiError;
use crate::store::{
    ApprovalUse, ApprovedAction, LockoutPolicy, ManagerRecord, Millis, NewApproval, PinCheck,
    Store, StoreError,
};
use limiter::CheckLimiter;
use pin::{InvalidPin, Pin, PinHashError};
use token::ApprovalToken;

/// How long a one-use approval (`approvals.window` = 0) waits to be used.
pub const ONCE_TTL: Duration = Duration::from_secs(120);

/// The longest manager name.
pub const MAX_MANAGER_NAME_CHARS: usize = 64;

/// The longest reason an approval or a settlement may carry.
pub const MAX_REASON_CHARS: usize = 200;

/// Why an approval was not given, or a manager action not allowed.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// A field of the request is malformed.
    #[error("{message}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The terminal's role may not ask for the action.
    #[error(
        "{action} needs a manager or owner terminal; this terminal is a {role} (rule: {action} is for manager and owner terminals only)"
    )]
    RoleRequired {
        /// The action.
        action: ApprovalAction,
        /// The terminal's role.
        role: Role,
    },
    /// The request carries no usable approval.
    #[error(
        "{action} needs a manager's approval (rule: {rule}); {why}: ask a manager to enter their PIN and send the approval as the Paycode-Approval header"
    )]
    ApprovalRequired {
        /// The action.
        action: ApprovalAction,
        /// The rule that asks for it.
        rule: String,
        /// What was wrong with what was sent.
        why: &'static str,
    },
    /// No manager has this name.
    #[error("there is no manager called {0}")]
    UnknownManager(String),
    /// The PIN does not match.
    #[error("wrong PIN for manager {manager}; {remaining} more wrong PINs lock it")]
    PinIncorrect {
        /// The manager.
        manager: String,
        /// Failures left before the lockout.
        remaining: u32,
    },
    /// The manager's PIN is locked.
    #[error(
        "manager {manager}'s PIN is locked after repeated wrong PINs; try again in {retry_after_secs} s"
    )]
    Locked {
        /// The manager.
        manager: String,
        /// Seconds until the lockout ends.
        retry_after_secs: u64,
    },
    /// The terminal made too many PIN checks this minute.
    #[error("too many PIN attempts from this terminal; wait {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the terminal may check again.
        retry_after_secs: u64,
    },
    /// The manager approves for another store.
    #[error("manager {manager} approves for another store only")]
    WrongStore {
        /// The manager.
        manager: String,
    },
    /// Hashing or checking the PIN could not run.
    #[error("the PIN check failed to run")]
    Hashing(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PinHashError> for ApprovalError {
    fn from(error: PinHashError) -> ApprovalError {
        ApprovalError::Hashing(Box::new(error))
    }
}

impl From<ApprovalError> for ApiError {
    fn from(error: ApprovalError) -> ApiError {
        let message = error.to_string();
        let forbidden = |code: ErrorCode, field: Option<&str>| ApiError::Forbidden {
            code,
            message: message.clone(),
            field: field.map(str::to_owned),
        };
        match error {
            ApprovalError::InvalidField { field, message } => {
                ApiError::invalid_field(field, message)
            }
            ApprovalError::RoleRequired { .. } => forbidden(ErrorCode::RoleRequired, None),
            ApprovalError::ApprovalRequired { .. } => forbidden(ErrorCode::ApprovalRequired, None),
            ApprovalError::UnknownManager(_) => forbidden(ErrorCode::PinIncorrect, Some("manager")),
            ApprovalError::PinIncorrect { .. } => forbidden(ErrorCode::PinIncorrect, Some("pin")),
            ApprovalError::WrongStore { .. } => {
                forbidden(ErrorCode::ManagerWrongStore, Some("manager"))
            }
            ApprovalError::Locked {
                retry_after_secs, ..
            } => ApiError::Locked {
                message,
                retry_after_secs,
            },
            ApprovalError::RateLimited { retry_after_secs } => ApiError::TooManyRequests {
                message,
                retry_after_secs,
            },
            ApprovalError::Hashing(source) => ApiError::Internal(source),
            ApprovalError::Store(error) => error.into(),
        }
    }
}

/// Why a manager could not be added or changed (the CLI).
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// The name is not acceptable.
    #[error(
        "a manager name has 1 to 64 characters without spaces or control characters (got {0:?})"
    )]
    InvalidName(String),
    /// The PIN is not acceptable.
    #[error(transparent)]
    InvalidPin(#[from] InvalidPin),
    /// Hashing failed.
    #[error(transparent)]
    Hashing(#[from] PinHashError),
    /// The store refused (the name is taken, the store or manager does not exist) or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a manager name: 1–64 characters, none of them whitespace or control characters.
pub fn check_manager_name(name: &str) -> Result<&str, ManagerError> {
    let length = name.chars().count();
    let allowed = name.chars().all(|c| !c.is_whitespace() && !c.is_control());
    if (1..=MAX_MANAGER_NAME_CHARS).contains(&length) && allowed {
        Ok(name)
    } else {
        Err(ManagerError::InvalidName(name.to_owned()))
    }
}

/// Managers, approvals and the rules of manager actions, over the store.
#[derive(Clone)]
pub struct Approvals {
    store: Arc<dyn Store>,
    config: ApprovalsConfig,
    limiter: Arc<CheckLimiter>,
}

impl Approvals {
    /// Approvals over `store` with the `[approvals]` settings.
    pub fn new(store: Arc<dyn Store>, config: &ApprovalsConfig) -> Approvals {
        Approvals {
            store,
            config: config.clone(),
            limiter: Arc::new(CheckLimiter::new(config.failed_checks_per_minute)),
        }
    }

    /// Adds a manager called `name` for the store `store_id` (`None`: every store) with
    /// `pin`.
    pub async fn add_manager(
        &self,
        name: &str,
        store_id: Option<&str>,
        pin: &Pin,
    ) -> Result<ManagerRecord, ManagerError> {
        let name = check_manager_name(name)?;
        let manager = ManagerRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            store_id: store_id.map(str::to_owned),
            pin_hash: hash_off_executor(pin.clone()).await?,
            failed_attempts: 0,
            locked_until: None,
            created_at: Millis::now(),
            removed_at: None,
        };
        Ok(self.store.add_manager(&manager).await?)
    }

    /// Gives the manager called `name` a new PIN, clearing failures and a lockout.
    pub async fn set_pin(&self, name: &str, pin: &Pin) -> Result<ManagerRecord, ManagerError> {
        let hash = hash_off_executor(pin.clone()).await?;
        Ok(self.store.set_manager_pin(name, &hash).await?)
    }

    /// Every manager, removed ones included.
    pub async fn list(&self) -> Result<Vec<ManagerRecord>, StoreError> {
        self.store.list_managers().await
    }

    /// Removes the manager called `name`; their approvals stop working at once.
    pub async fn remove(&self, name: &str) -> Result<ManagerRecord, StoreError> {
        self.store.remove_manager(name).await
    }

    /// Checks the manager's PIN for `terminal` and, when it is right, issues an approval
    /// of `request.action` bound to that terminal. Refuses a cashier terminal asking for a
    /// back-office action before any PIN is checked.
    pub async fn approve(
        &self,
        terminal: &AuthenticatedTerminal,
        request: ApprovalRequest,
    ) -> Result<Approval, ApprovalError> {
        check_manager_name(&request.manager).map_err(|error| ApprovalError::InvalidField {
            field: "manager",
            message: error.to_string(),
        })?;
        let pin = Pin::parse(&request.pin).map_err(|error| ApprovalError::InvalidField {
            field: "pin",
            message: error.to_string(),
        })?;
        let reason = check_reason(request.reason, "reason")?;
        require_role(terminal, request.action)?;
        self.limiter
            .admit(&terminal.id, Instant::now())
            .map_err(|retry_after_secs| ApprovalError::RateLimited { retry_after_secs })?;
        let Some(manager) = self.store.manager_by_name(&request.manager).await? else {
            self.limiter.failed(&terminal.id, Instant::now());
            return Err(ApprovalError::UnknownManager(request.manager));
        };
        // A locked PIN is refused without hashing anything.
        let now = self.store.clock().await?;
        if let Some(until) = manager.locked_until.filter(|until| *until > now) {
            return Err(locked(&manager.name, until, now));
        }
        let hash = manager.pin_hash.clone();
        let accepted = tokio::task::spawn_blocking(move || pin.verify(&hash))
            .await
            .map_err(|error| ApprovalError::Hashing(Box::new(error)))?;
        let policy = LockoutPolicy {
            max_failures: self.config.max_failures,
            lockout: self.config.lockout,
        };
        match self
            .store
            .record_pin_check(&manager.id, accepted, policy)
            .await?
        {
            PinCheck::Accepted => {}
            PinCheck::Incorrect { remaining } => {
                self.limiter.failed(&terminal.id, Instant::now());
                tracing::warn!(manager = %manager.name, terminal = %terminal.name, remaining, "wrong manager PIN");
                return Err(ApprovalError::PinIncorrect {
                    manager: manager.name,
                    remaining,
                });
            }
            PinCheck::Locked { until, now } => {
                self.limiter.failed(&terminal.id, Instant::now());
                tracing::warn!(manager = %manager.name, terminal = %terminal.name, "manager PIN locked");
                return Err(locked(&manager.name, until, now));
            }
        }
        if manager
            .store_id
            .as_ref()
            .is_some_and(|store| *store != terminal.store_id)
        {
            return Err(ApprovalError::WrongStore {
                manager: manager.name,
            });
        }
        let token = ApprovalToken::generate();
        let once = self.config.window.is_zero();
        let expires_at = self
            .store
            .insert_approval(&NewApproval {
                token_hash: token.hash(),
                terminal_id: terminal.id.clone(),
                manager_id: manager.id.clone(),
                action: request.action,
                reason,
                once,
                ttl: if once { ONCE_TTL } else { self.config.window },
            })
            .await?;
        tracing::info!(manager = %manager.name, terminal = %terminal.name, action = %request.action, "approval issued");
        Ok(Approval {
            approval: token.expose().to_owned(),
            manager: manager.name,
            action: request.action,
            expires_at: expires_at.to_rfc3339(),
            uses: if once {
                ApprovalUses::Once
            } else {
                ApprovalUses::Window
            },
        })
    }

    /// Whether a refund of `amount_fen` needs an approval (`approvals.refund_above_fen`).
    pub fn refund_needs_approval(&self, amount: paycode_api::Fen) -> bool {
        amount > self.config.refund_above_fen
    }

    /// The rule behind a refund's approval, for messages.
    fn rule(&self, action: ApprovalAction) -> String {
        match action {
            ApprovalAction::Refund if self.config.refund_above_fen == paycode_api::Fen::ZERO => {
                "every refund is approved by a manager".to_owned()
            }
            ApprovalAction::Refund => format!(
                "a refund above {} fen is approved by a manager",
                self.config.refund_above_fen.0
            ),
            other => format!("{other} is approved by a manager"),
        }
    }

    /// The approval in the `Paycode-Approval` header, refused with `APPROVAL_REQUIRED` when
    /// none was sent or it is malformed. [`Approvals::require`] starts with it; a route that
    /// must look something up before it can call `require` calls this first, so a request
    /// without an approval is told so before anything else.
    pub fn presented(
        &self,
        headers: &HeaderMap,
        action: ApprovalAction,
    ) -> Result<ApprovalToken, ApprovalError> {
        let header = headers
            .get(APPROVAL_HEADER)
            .ok_or(self.required(action, "none was sent"))?;
        header
            .to_str()
            .ok()
            .and_then(|text| ApprovalToken::parse(text.trim()))
            .ok_or(self.required(action, "the approval sent is malformed"))
    }

    fn required(&self, action: ApprovalAction, why: &'static str) -> ApprovalError {
        ApprovalError::ApprovalRequired {
            action,
            rule: self.rule(action),
            why,
        }
    }

    /// Lets `terminal` perform `action` on `target` (a payment id, a day) of the store
    /// `target_store`: checks the terminal's role, then uses up the approval in the
    /// `Paycode-Approval` header, writing the audit row (with `reason` when the request
    /// gives one, else the approval's) in the same transaction. Returns the audit row (it
    /// names the manager).
    pub async fn require(
        &self,
        terminal: &AuthenticatedTerminal,
        headers: &HeaderMap,
        action: ApprovalAction,
        (target, target_store): (&str, &str),
        reason: Option<&str>,
    ) -> Result<ApprovedAction, ApprovalError> {
        require_role(terminal, action)?;
        let token = self.presented(headers, action)?;
        let used = self
            .store
            .use_approval(ApprovalUse {
                token_hash: &token.hash(),
                terminal_id: &terminal.id,
                action,
                target,
                store_id: target_store,
                reason,
            })
            .await?;
        let (approved, _) = used.ok_or(self.required(
            action,
            "the approval sent is unknown, used, expired, for another action or terminal, or its manager does not approve for this store",
        ))?;
        tracing::info!(manager = %approved.manager_name, terminal = %terminal.name, %action, target, "approved action");
        Ok(approved)
    }
}

impl fmt::Debug for Approvals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Approvals")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Refuses a back-office action to a cashier terminal.
pub fn require_role(
    terminal: &AuthenticatedTerminal,
    action: ApprovalAction,
) -> Result<(), ApprovalError> {
    if action.needs_back_office() && !terminal.role.is_back_office() {
        return Err(ApprovalError::RoleRequired {
            action,
            role: terminal.role,
        });
    }
    Ok(())
}

/// A free-text reason: at most [`MAX_REASON_CHARS`] characters without control characters;
/// empty counts as none.
pub fn check_reason(
    reason: Option<String>,
    field: &'static str,
) -> Result<Option<String>, ApprovalError> {
    let reason = reason.filter(|reason| !reason.trim().is_empty());
    if let Some(text) = &reason {
        if text.chars().count() > MAX_REASON_CHARS || text.chars().any(char::is_control) {
            return Err(ApprovalError::InvalidField {
                field,
                message: format!(
                    "must be at most {MAX_REASON_CHARS} characters without control characters"
                ),
            });
        }
    }
    Ok(reason)
}

fn locked(manager: &str, until: Millis, now: Millis) -> ApprovalError {
    let left_ms = u64::try_from(until.0.saturating_sub(now.0)).unwrap_or(0);
    ApprovalError::Locked {
        manager: manager.to_owned(),
        retry_after_secs: left_ms.div_ceil(1000).max(1),
    }
}

/// Hashes `pin` on the blocking pool: argon2 takes tens of milliseconds of CPU.
async fn hash_off_executor(pin: Pin) -> Result<String, PinHashError> {
    match tokio::task::spawn_blocking(move || pin.hash()).await {
        Ok(result) => result,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}
