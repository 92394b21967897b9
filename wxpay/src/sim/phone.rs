//! The customer's phone at `/_sim/phone`: a fresh payment code as a Code 128 barcode, a QR
//! code and digits grouped 4-4-4-4-2, refreshed every minute like WeChat's 付款码 page, a
//! picker for the next code's behaviour, and the open password prompts with "enter
//! password" / "cancel" buttons that call the control API.
//!
//! Plain server-rendered HTML with a little inline JavaScript, so any browser (including
//! the phone of a person standing at the counter) can use it.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::Query;
use axum::response::Html;
use axum::routing::get;
use serde::Deserialize;

use super::SimState;
use super::behaviour::{Behaviour, auth_code_for};

/// The phone routes (merged into the main router by `handlers::router`).
pub(crate) fn router() -> Router<Arc<SimState>> {
    Router::new().route("/_sim/phone", get(phone_show))
}

/// `?behaviour=<key>` picks the behaviour of the code shown.
#[derive(Debug, Deserialize)]
struct PhoneQuery {
    behaviour: Option<String>,
}

async fn phone_show(Query(query): Query<PhoneQuery>) -> Html<String> {
    let behaviour = query
        .behaviour
        .as_deref()
        .and_then(Behaviour::from_key)
        .unwrap_or(Behaviour::PasswordFree);
    Html(render(behaviour, &auth_code_for(behaviour)))
}

/// The whole page for one code.
fn render(behaviour: Behaviour, code: &str) -> String {
    let barcode = code128c_svg(code).unwrap_or_default();
    let qr = qrcode::QrCode::new(code.as_bytes())
        .map(|qr| {
            qr.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(180, 180)
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default();
    let mut options = String::new();
    for candidate in Behaviour::ALL {
        let selected = if candidate.key() == behaviour.key() {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            options,
            r#"<option value="{}"{selected}>{}</option>"#,
            candidate.key(),
            candidate.label()
        );
    }
    PAGE.replace("{{BARCODE}}", &barcode)
        .replace("{{QR}}", &qr)
        .replace("{{DIGITS}}", &group_digits(code))
        .replace("{{CODE}}", code)
        .replace("{{OPTIONS}}", &options)
        .replace("{{BEHAVIOUR}}", behaviour.key())
}

/// `134567890123456789` → `1345 6789 0123 4567 89`, as the WeChat app prints it.
fn group_digits(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Bar/space widths of Code 128 symbols 0–105 (each six elements, eleven modules).
const PATTERNS: [&str; 106] = [
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212",
    "221213", "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221",
    "223211", "221132", "221231", "213212", "223112", "312131", "311222", "321122", "321221",
    "312212", "322112", "322211", "212123", "212321", "232121", "111323", "131123", "131321",
    "112313", "132113", "132311", "211313", "231113", "231311", "112133", "112331", "132131",
    "113123", "113321", "133121", "313121", "211331", "231131", "213113", "213311", "213131",
    "311123", "311321", "331121", "312113", "312311", "332111", "314111", "221411", "431111",
    "111224", "111422", "121124", "121421", "141122", "141221", "112214", "112412", "122114",
    "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111", "111242",
    "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311",
    "113141", "114131", "311141", "411131", "211412", "211214", "211232",
];

/// The stop symbol: seven elements, thirteen modules (including the final 2-module bar).
const STOP: &str = "2331112";

/// Start symbol for code set C (pairs of digits).
const START_C: usize = 105;

/// The Code 128 symbol values for `digits` in code set C: start C, one value per digit
/// pair, the checksum (start + Σ position × value, mod 103) — stop not included.
/// `None` unless `digits` is a non-empty, even-length run of ASCII digits.
pub(crate) fn code128c_values(digits: &str) -> Option<Vec<usize>> {
    let bytes = digits.as_bytes();
    if bytes.is_empty() || bytes.len() % 2 != 0 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut values = vec![START_C];
    for pair in bytes.chunks(2) {
        values.push(usize::from(pair[0] - b'0') * 10 + usize::from(pair[1] - b'0'));
    }
    let checksum = values
        .iter()
        .enumerate()
        .map(|(position, value)| position.max(1) * value)
        .sum::<usize>()
        % 103;
    values.push(checksum);
    Some(values)
}

/// The module pattern (`true` = bar) of a Code 128 C barcode, without quiet zones.
pub(crate) fn code128c_modules(digits: &str) -> Option<Vec<bool>> {
    let values = code128c_values(digits)?;
    let mut modules = Vec::new();
    let widths = values
        .iter()
        .map(|value| PATTERNS[*value])
        .chain(std::iter::once(STOP));
    for pattern in widths {
        for (index, width) in pattern.bytes().enumerate() {
            let bar = index % 2 == 0;
            modules.extend(std::iter::repeat_n(bar, usize::from(width - b'0')));
        }
    }
    Some(modules)
}

/// An SVG Code 128 C barcode for an even number of digits, with 10-module quiet zones.
pub(crate) fn code128c_svg(digits: &str) -> Option<String> {
    const MODULE: usize = 2;
    const HEIGHT: usize = 90;
    const QUIET: usize = 10;
    let modules = code128c_modules(digits)?;
    let width = (modules.len() + 2 * QUIET) * MODULE;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" viewBox="0 0 {width} {HEIGHT}" shape-rendering="crispEdges"><rect width="100%" height="100%" fill="#fff"/>"##
    );
    // Merge runs of bar modules into single rectangles.
    let mut index = 0;
    while index < modules.len() {
        if modules[index] {
            let start = index;
            while index < modules.len() && modules[index] {
                index += 1;
            }
            let _ = write!(
                svg,
                r##"<rect x="{}" y="0" width="{}" height="{HEIGHT}" fill="#000"/>"##,
                (QUIET + start) * MODULE,
                (index - start) * MODULE
            );
        } else {
            index += 1;
        }
    }
    svg.push_str("</svg>");
    Some(svg)
}

const PAGE: &str = r#"<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>付款码 · Payment code (simulator)</title>
<style>
body { margin: 0; font-family: -apple-system, "PingFang SC", "Microsoft YaHei", sans-serif; background: #3a9a5b; color: #222; }
.card { max-width: 420px; margin: 16px auto; background: #fff; border-radius: 10px; padding: 16px; }
h1 { font-size: 18px; margin: 0 0 4px; color: #3a9a5b; }
.sub { color: #888; font-size: 12px; }
.barcode svg { width: 100%; height: auto; }
.digits { text-align: center; font-size: 20px; letter-spacing: 2px; font-family: monospace; margin: 6px 0 10px; }
.qr { text-align: center; }
select, button { font-size: 15px; padding: 6px 10px; margin: 4px 0; }
.prompt { border-top: 1px solid #eee; padding: 8px 0; }
.confirm { background: #3a9a5b; color: #fff; border: 0; border-radius: 4px; }
.cancel { background: #eee; border: 0; border-radius: 4px; }
</style>
</head>
<body>
<div class="card">
  <h1>向商家付款 <span class="sub">Pay the merchant</span></h1>
  <div class="sub">每分钟自动更新 · refreshes every minute (<span id="left">60</span> s)</div>
  <div class="barcode">{{BARCODE}}</div>
  <div class="digits" id="digits">{{DIGITS}}</div>
  <div class="qr">{{QR}}</div>
  <label>下一个付款码的行为 · Behaviour of the next code<br>
    <select id="behaviour" onchange="location.search='?behaviour='+this.value">{{OPTIONS}}</select>
  </label>
  <button onclick="location.reload()">刷新 · New code</button>
  <button onclick="navigator.clipboard &amp;&amp; navigator.clipboard.writeText('{{CODE}}')">复制 · Copy</button>
</div>
<div class="card">
  <h1>待输入密码 <span class="sub">Waiting for the password</span></h1>
  <div id="prompts" class="sub">—</div>
</div>
<script>
var left = 60;
setInterval(function () {
  left -= 1;
  document.getElementById('left').textContent = left;
  if (left <= 0) { location.search = '?behaviour={{BEHAVIOUR}}'; }
}, 1000);
function yuan(fen) { return '¥' + (fen / 100).toFixed(2); }
function act(no, mch, what) {
  fetch('/_sim/orders/' + encodeURIComponent(no) + '/' + what + '?mch_id=' + encodeURIComponent(mch), { method: 'POST' })
    .then(refresh);
}
function refresh() {
  fetch('/_sim/pending').then(function (r) { return r.json(); }).then(function (list) {
    var box = document.getElementById('prompts');
    box.textContent = '';
    if (list.length === 0) { box.textContent = '无 · none'; return; }
    list.forEach(function (p) {
      var div = document.createElement('div');
      div.className = 'prompt';
      var text = document.createElement('div');
      text.textContent = p.body + ' ' + yuan(p.total_fee) + ' (' + p.out_trade_no + ')';
      var ok = document.createElement('button');
      ok.className = 'confirm';
      ok.textContent = '输入密码 · Enter password';
      ok.onclick = function () { act(p.out_trade_no, p.mch_id, 'confirm'); };
      var no = document.createElement('button');
      no.className = 'cancel';
      no.textContent = '取消 · Cancel';
      no.onclick = function () { act(p.out_trade_no, p.mch_id, 'cancel'); };
      div.appendChild(text); div.appendChild(ok); div.appendChild(document.createTextNode(' ')); div.appendChild(no);
      box.appendChild(div);
    });
  }).catch(function () {});
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_is_eleven_modules_and_unique() {
        for (value, pattern) in PATTERNS.iter().enumerate() {
            let modules: u32 = pattern.bytes().map(|b| u32::from(b - b'0')).sum();
            assert_eq!(modules, 11, "symbol {value}");
        }
        let mut sorted = PATTERNS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), PATTERNS.len());
        assert_eq!(STOP.bytes().map(|b| u32::from(b - b'0')).sum::<u32>(), 13);
    }

    #[test]
    fn checksum_follows_the_standard() {
        // Start C (105) + 1×12 + 2×34 = 185; 185 mod 103 = 82.
        assert_eq!(code128c_values("1234"), Some(vec![105, 12, 34, 82]));
        assert_eq!(code128c_values("123"), None);
        assert_eq!(code128c_values("12a4"), None);
    }

    #[test]
    fn an_eighteen_digit_code_has_the_expected_width() {
        // Start + 9 pairs + checksum = 11 symbols of 11 modules, plus the 13-module stop.
        let modules = code128c_modules("134567890123456789").expect("digits");
        assert_eq!(modules.len(), 11 * 11 + 13);
        // Start C begins with a 2-module bar; every symbol starts with a bar.
        assert!(modules[0] && modules[1] && !modules[2]);
        assert!(modules[modules.len() - 1]);
        assert!(code128c_svg("134567890123456789").is_some_and(|svg| svg.starts_with("<svg")));
    }

    #[test]
    fn digits_group_four_by_four() {
        assert_eq!(group_digits("134567890123456789"), "1345 6789 0123 4567 89");
    }
}
