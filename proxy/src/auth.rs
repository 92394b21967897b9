//! Terminal tokens and the [`AuthenticatedTerminal`] extractor.
//!
//! Each cashier terminal holds a bearer token: `pct_` followed by 32 random bytes in
//! unpadded base64url (47 characters in all). The prefix makes a leaked token recognisable
//! to secret scanners and people alike. The proxy stores only the token's SHA-256, so a copy
//! of the database does not let anyone take payments; the token itself is shown once, by
//! `paycode-proxy terminal add NAME`.

use std::fmt;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use paycode_api::Role;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::store::{Store, StoreError, TerminalRecord};

/// The prefix of every terminal token.
pub const TOKEN_PREFIX: &str = "pct_";

/// How many random bytes a token carries.
const TOKEN_RANDOM_BYTES: usize = 32;

/// The length of the base64url text of [`TOKEN_RANDOM_BYTES`] bytes, without padding.
const TOKEN_BODY_LENGTH: usize = 43;

/// The longest terminal name accepted.
pub const MAX_TERMINAL_NAME_CHARS: usize = 64;

/// A terminal's bearer token. `Debug` hides it; [`TerminalToken::expose`] is for the one
/// place that shows it, the `terminal add` command.
#[derive(Clone, PartialEq, Eq)]
pub struct TerminalToken(String);

impl TerminalToken {
    /// A new token from the operating system's random number generator.
    pub fn generate() -> TerminalToken {
        let mut bytes = [0u8; TOKEN_RANDOM_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        TerminalToken(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Reads a token as presented by a terminal, or `None` if it is not shaped like one
    /// (wrong prefix, length or alphabet), which spares a database lookup.
    pub fn parse(text: &str) -> Option<TerminalToken> {
        let body = text.strip_prefix(TOKEN_PREFIX)?;
        let well_formed = body.len() == TOKEN_BODY_LENGTH
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| TerminalToken(text.to_owned()))
    }

    /// The SHA-256 of the token in lower-case hex: what the store keeps and looks up.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// The token itself. Show it once to the operator; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TerminalToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TerminalToken(***)")
    }
}

/// Why a terminal name is not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a terminal name has 1 to 64 letters, digits, '-', '_' or '.', like counter-1 (got {0:?})")]
pub struct InvalidTerminalName(pub String);

/// Checks a terminal name: 1–64 letters (any script), digits, `-`, `_` or `.`.
pub fn check_terminal_name(name: &str) -> Result<&str, InvalidTerminalName> {
    let length = name.chars().count();
    let allowed = name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if (1..=MAX_TERMINAL_NAME_CHARS).contains(&length) && allowed {
        Ok(name)
    } else {
        Err(InvalidTerminalName(name.to_owned()))
    }
}

/// Why a terminal could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddTerminalError {
    /// The name is not acceptable.
    #[error(transparent)]
    InvalidName(#[from] InvalidTerminalName),
    /// The store refused (the name is taken) or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Terminal management on top of the store: adding (with a fresh token), authenticating,
/// listing and revoking. Used by the CLI and by [`AuthenticatedTerminal`].
#[derive(Clone)]
pub struct Terminals {
    store: Arc<dyn Store>,
}

impl Terminals {
    /// Terminal management backed by `store`.
    pub fn new(store: Arc<dyn Store>) -> Terminals {
        Terminals { store }
    }

    /// Adds a terminal to the store with id `store_id` and returns it with its token, which
    /// exists nowhere else afterwards.
    pub async fn add_to(
        &self,
        name: &str,
        store_id: &str,
    ) -> Result<(TerminalRecord, TerminalToken), AddTerminalError> {
        let name = check_terminal_name(name)?;
        let token = TerminalToken::generate();
        let terminal = self
            .store
            .add_terminal(name, &token.hash(), store_id)
            .await?;
        Ok((terminal, token))
    }

    /// Adds a terminal like [`Terminals::add_to`] with the role `role`. (Added as a cashier
    /// first: if giving the role fails, the terminal can do less, never more.)
    pub async fn add_with_role(
        &self,
        name: &str,
        store_id: &str,
        role: Role,
    ) -> Result<(TerminalRecord, TerminalToken), AddTerminalError> {
        let (mut terminal, token) = self.add_to(name, store_id).await?;
        if role != terminal.role {
            terminal = self.store.set_terminal_role(&terminal.name, role).await?;
        }
        Ok((terminal, token))
    }

    /// Adds a terminal to the default store (see [`Terminals::add_to`]).
    pub async fn add(
        &self,
        name: &str,
    ) -> Result<(TerminalRecord, TerminalToken), AddTerminalError> {
        self.add_to(name, crate::stores::DEFAULT_STORE).await
    }

    /// The active (not revoked) terminal holding `token`, if any.
    pub async fn authenticate(
        &self,
        token: &TerminalToken,
    ) -> Result<Option<TerminalRecord>, StoreError> {
        let terminal = self.store.terminal_by_token_hash(&token.hash()).await?;
        Ok(terminal.filter(|terminal| terminal.revoked_at.is_none()))
    }

    /// Every terminal, revoked ones included.
    pub async fn list(&self) -> Result<Vec<TerminalRecord>, StoreError> {
        self.store.list_terminals().await
    }

    /// Revokes the terminal called `name`; its token stops working at once.
    pub async fn revoke(&self, name: &str) -> Result<TerminalRecord, StoreError> {
        self.store.revoke_terminal(name).await
    }
}

impl fmt::Debug for Terminals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Terminals").finish_non_exhaustive()
    }
}

/// The terminal that sent the request, from its `Authorization: Bearer pct_…` header.
///
/// Extracting it reads the store and changes nothing. A missing, malformed, unknown or
/// revoked token is rejected with 401 `UNAUTHORIZED`; a store failure with 5xx, because it
/// says nothing about the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatedTerminal {
    /// The terminal's id, recorded on its payments.
    pub id: String,
    /// The terminal's name.
    pub name: String,
    /// The terminal's store: the only one whose payments it sees (but for an `owner`).
    pub store_id: String,
    /// What it may ask for.
    pub role: Role,
}

impl From<TerminalRecord> for AuthenticatedTerminal {
    fn from(terminal: TerminalRecord) -> AuthenticatedTerminal {
        AuthenticatedTerminal {
            id: terminal.id,
            name: terminal.name,
            store_id: terminal.store_id,
            role: terminal.role,
        }
    }
}

impl<S> FromRequestParts<S> for AuthenticatedTerminal
where
    Terminals: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).ok_or(ApiError::Unauthorized)?;
        let terminal = Terminals::from_ref(state)
            .authenticate(&token)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(terminal.into())
    }
}

/// The well-formed terminal token in the `Authorization` header, if there is one.
fn bearer_token(parts: &Parts) -> Option<TerminalToken> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    TerminalToken::parse(credentials.trim())
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use http_body_util::BodyExt;
    use paycode_api::ErrorBody;
    use tower::ServiceExt;

    use super::*;
    use crate::test_support::test_state;

    async fn whoami(terminal: AuthenticatedTerminal) -> String {
        format!("{} {}", terminal.id, terminal.name)
    }

    async fn call(router: &Router, authorization: Option<&str>) -> (StatusCode, String) {
        let mut request = Request::get("/whoami");
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        let response = router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[test]
    fn tokens_have_the_prefix_and_parse_back() {
        let token = TerminalToken::generate();
        assert!(token.expose().starts_with("pct_"));
        assert_eq!(token.expose().len(), 47);
        assert_eq!(TerminalToken::parse(token.expose()), Some(token.clone()));
        assert_eq!(token.hash().len(), 64);
        assert_ne!(TerminalToken::generate(), token);
        assert_eq!(format!("{token:?}"), "TerminalToken(***)");
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let good = TerminalToken::generate().expose().to_owned();
        for bad in [
            String::new(),
            good.replacen("pct_", "pk_", 1),
            good[..good.len() - 1].to_owned(),
            format!("{good}A"),
            good.replace(|c: char| c.is_ascii_digit(), "+"),
        ] {
            if bad != good {
                assert_eq!(TerminalToken::parse(&bad), None, "{bad}");
            }
        }
    }

    #[test]
    fn terminal_names_are_checked() {
        for good in ["counter-1", "收银台2", "a", "front_desk.east"] {
            assert!(check_terminal_name(good).is_ok(), "{good}");
        }
        for bad in ["", "has space", "a/b", &"x".repeat(65)] {
            assert!(check_terminal_name(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_extractor_accepts_active_tokens_only() {
        // Arrange
        let (state, _directory) = test_state().await;
        let (terminal, token) = state.terminals.add("counter-1").await.unwrap();
        let (_, revoked_token) = state.terminals.add("counter-2").await.unwrap();
        state.terminals.revoke("counter-2").await.unwrap();
        let router = Router::new()
            .route("/whoami", get(whoami))
            .with_state(state.clone());
        let unknown = TerminalToken::generate();

        // Act & Assert: the right token is accepted, with any case of the scheme.
        for scheme in ["Bearer", "bearer"] {
            let (status, body) = call(&router, Some(&format!("{scheme} {}", token.expose()))).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, format!("{} counter-1", terminal.id));
        }
        // Everything else is a 401 with the same body.
        for authorization in [
            None,
            Some("Bearer".to_owned()),
            Some("Bearer pct_short".to_owned()),
            Some(format!("Basic {}", token.expose())),
            Some(token.expose().to_owned()),
            Some(format!("Bearer {}", unknown.expose())),
            Some(format!("Bearer {}", revoked_token.expose())),
        ] {
            let (status, body) = call(&router, authorization.as_deref()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?}");
            let body: ErrorBody = serde_json::from_str(&body).unwrap();
            assert_eq!(body.code, "UNAUTHORIZED");
            assert!(!body.message.contains("pct_"), "{}", body.message);
        }
    }

    #[tokio::test]
    async fn the_store_keeps_only_the_hash() {
        let (state, _directory) = test_state().await;
        let (terminal, token) = state.terminals.add("counter-1").await.unwrap();
        assert_eq!(terminal.token_hash, token.hash());
        assert_ne!(terminal.token_hash, token.expose());
        let listed = state.terminals.list().await.unwrap();
        assert_eq!(listed, vec![terminal]);
    }

    #[tokio::test]
    async fn adding_checks_the_name_and_refuses_duplicates() {
        let (state, _directory) = test_state().await;
        state.terminals.add("counter-1").await.unwrap();
        assert!(matches!(
            state.terminals.add("counter-1").await,
            Err(AddTerminalError::Store(StoreError::AlreadyExists { .. }))
        ));
        assert!(matches!(
            state.terminals.add("bad name").await,
            Err(AddTerminalError::InvalidName(_))
        ));
    }
}
