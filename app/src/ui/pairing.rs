//! Pairing by QR code, the browser part: a tablet opens the QR code's address
//! (`https://…/#pair=pcp_…`) with its own camera app, or the app's camera reader decodes
//! it; either way the one-time code is exchanged for the terminal's token
//! (`POST /api/v1/pairing`) and the app goes to the amount screen.

use leptos::prelude::*;

use crate::model::pairing::code_from_link;
use crate::ui::context::{Ctx, Pairing};
use crate::ui::{api, browser};

/// Takes a pairing code out of the address bar: if the page was opened with `#pair=…`, the
/// fragment is removed at once (so a reload, a bookmark or a screenshot does not carry the
/// code) and the code is returned.
pub fn take_code_from_address() -> Option<String> {
    let location = browser::window().location();
    let hash = location.hash().ok()?;
    let code = code_from_link(&hash)?.to_owned();
    let clean = format!(
        "{}{}",
        location.pathname().unwrap_or_else(|_| "/".to_owned()),
        location.search().unwrap_or_default()
    );
    if let Ok(history) = browser::window().history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&clean));
    }
    Some(code)
}

/// Exchanges `code` for a token; on success the app is paired (amount screen), otherwise
/// the pairing screen says the code was refused. Answers whether it paired.
pub async fn exchange(ctx: Ctx, code: &str) -> bool {
    let result = api::pair(code).await;
    ctx.note(&result);
    match result {
        Ok(paired) => {
            ctx.paired(paired.token, paired.terminal);
            true
        }
        Err(_) => {
            ctx.pairing.set(Pairing::CodeRefused);
            false
        }
    }
}

/// For the camera reader ("扫码配对"): `text` is what a scanned QR code decoded to. When it
/// is a pairing address, the code is exchanged in the background and `true` is returned;
/// anything else (a payment code, another URL) is left alone and `false` returned.
pub fn pair_from_scanned(ctx: Ctx, text: &str) -> bool {
    let Some(code) = code_from_link(text.trim()).map(str::to_owned) else {
        return false;
    };
    leptos::task::spawn_local(async move {
        exchange(ctx, &code).await;
    });
    true
}
