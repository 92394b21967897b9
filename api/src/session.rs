//! Who the caller is: the terminal behind a bearer token, pairing by QR code, and demo-mode
//! pairing.

use serde::{Deserialize, Serialize};

/// `GET /api/v1/terminal`: the terminal the bearer token belongs to. The app calls it to
/// check a token entered in its settings before saving it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalInfo {
    /// The proxy's id for the terminal; payments carry it as `terminal_id`.
    pub id: String,
    /// The name the operator gave it (`counter-1`).
    pub name: String,
    /// The store the terminal belongs to: it sees and takes only that store's payments.
    pub store: StoreInfo,
    /// What the terminal may ask for: `cashier` (a till), `manager` (back office of its
    /// store) or `owner` (every store). Absent from older proxies, read as `cashier`.
    #[serde(default)]
    pub role: crate::Role,
}

/// A store, as a terminal sees it: shown next to the terminal's name and on receipts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreInfo {
    /// The proxy's id for the store; payments carry it as `store_id`.
    pub id: String,
    /// The name the operator gave it (`shop-east`).
    pub name: String,
}

/// `GET /api/v1/demo/pairing`: in demo mode only, and only to a browser on the same machine
/// (loopback), the demo terminal's token, so that the app works without a pairing step.
/// Everywhere else the endpoint answers 404 `NOT_FOUND`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoPairing {
    /// The bearer token to send as `Authorization: Bearer <token>`.
    pub token: String,
    /// The terminal it belongs to.
    pub terminal: TerminalInfo,
}

/// `POST /api/v1/pairing`: a tablet exchanges the one-time code from a pairing QR code
/// (`paycode-proxy terminal add|pair NAME`) for the terminal's token.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairingRequest {
    /// The pairing code: `pcp_` and 22 base64url characters (128 random bits). It works
    /// once, for a few minutes (`pairing.code_ttl`, default 5 minutes).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 26, max_length = 26, pattern = "^pcp_[A-Za-z0-9_-]{22}$")
    )]
    pub code: String,
}

/// The answer to a [`PairingRequest`]: a newly minted token for the terminal. The
/// terminal's previous token stops working at the same moment, so only the tablet that
/// paired holds a working token.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paired {
    /// The bearer token to send as `Authorization: Bearer <token>`.
    pub token: String,
    /// The terminal it belongs to.
    pub terminal: TerminalInfo,
}
