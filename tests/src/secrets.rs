//! Secret hygiene: a [`SecretScanner`] looks through HTTP response bodies and log lines for
//! what must never leave the proxy (docs/design.md, "Invariants": only `proxy` holds secrets): the API key,
//! certificate material, terminal tokens and full payment codes.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

/// One hit: where it was found, which secret, and the line (with the secret masked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leak {
    /// Where the text came from (`proxy log`, `GET /api/v1/payments/…`, …).
    pub source: String,
    /// Which kind of secret (`api key`, `certificate`, `terminal token`, `payment code`).
    pub what: &'static str,
    /// The offending line, with the secret itself replaced by `<…>`.
    pub line: String,
}

/// The secrets to look for. Payment codes and terminal tokens can be added while a soak runs.
#[derive(Debug, Default)]
pub struct SecretScanner {
    fixed: Vec<(&'static str, String)>,
    tokens: Mutex<HashSet<String>>,
    codes: Mutex<HashSet<String>>,
    leaks: Mutex<Vec<Leak>>,
    scanned_texts: Mutex<(u64, u64)>,
}

/// Markers of PEM certificate or key material, searched for in every text.
const PEM_MARKERS: [&str; 3] = ["-----BEGIN", "PRIVATE KEY", "BEGIN CERTIFICATE"];

impl SecretScanner {
    /// A scanner for `api_key` and every certificate and key file in `cert_dir` (each base64
    /// line of their PEM bodies is a needle).
    pub fn new(api_key: &str, cert_dir: Option<&Path>) -> SecretScanner {
        let mut fixed = vec![("api key", api_key.to_owned())];
        for marker in PEM_MARKERS {
            fixed.push(("certificate", marker.to_owned()));
        }
        if let Some(dir) = cert_dir {
            for name in ["apiclient_key.pem", "apiclient_cert.pem"] {
                if let Ok(pem) = std::fs::read_to_string(dir.join(name)) {
                    for line in pem.lines() {
                        // A 64-character base64 line is specific enough not to match by chance.
                        if line.len() >= 40 && !line.starts_with("-----") {
                            fixed.push(("certificate", line.to_owned()));
                        }
                    }
                }
            }
        }
        SecretScanner {
            fixed,
            ..SecretScanner::default()
        }
    }

    /// Adds a terminal token (`pct_…`) to look for.
    pub fn add_token(&self, token: &str) {
        lock(&self.tokens).insert(token.to_owned());
    }

    /// Adds a full payment code to look for.
    pub fn add_code(&self, code: &str) {
        lock(&self.codes).insert(code.to_owned());
    }

    /// How many texts and bytes were scanned.
    pub fn scanned(&self) -> (u64, u64) {
        *lock(&self.scanned_texts)
    }

    /// Scans `text` from `source`, records every hit and returns how many there were.
    pub fn scan(&self, source: &str, text: &str) -> usize {
        {
            let mut scanned = lock(&self.scanned_texts);
            scanned.0 += 1;
            scanned.1 += text.len() as u64;
        }
        let tokens = lock(&self.tokens).clone();
        let codes = lock(&self.codes).clone();
        let mut found = Vec::new();
        for line in text.lines() {
            for (what, needle) in &self.fixed {
                if line.contains(needle.as_str()) {
                    found.push(leak(source, what, line, needle));
                }
            }
            for token in &tokens {
                if line.contains(token.as_str()) {
                    found.push(leak(source, "terminal token", line, token));
                }
            }
            // Any run of exactly 18 digits that is a code the soak used.
            for run in digit_runs(line) {
                if run.len() == 18 && codes.contains(run) {
                    found.push(leak(source, "payment code", line, run));
                }
            }
        }
        let hits = found.len();
        lock(&self.leaks).extend(found);
        hits
    }

    /// Every hit so far.
    pub fn leaks(&self) -> Vec<Leak> {
        lock(&self.leaks).clone()
    }
}

fn leak(source: &str, what: &'static str, line: &str, needle: &str) -> Leak {
    let mut line = line.replace(needle, "<…>");
    if line.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|&i| line.is_char_boundary(i))
            .unwrap_or(0);
        line.truncate(cut);
        line.push('…');
    }
    Leak {
        source: source.to_owned(),
        what,
        line,
    }
}

/// The maximal runs of ASCII digits in `text`.
fn digit_runs(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|run| !run.is_empty())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|error| error.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_kind_of_secret_and_masks_it() {
        let scanner = SecretScanner::new("192006250b4c09247ec02edce69f6a2d", None);
        scanner.add_token("pct_abcdef");
        scanner.add_code("134567890123456789");
        assert_eq!(scanner.scan("log", "auth_code=1345…6789 ok"), 0);
        assert_eq!(scanner.scan("log", "a 1134567890123456789 longer run"), 0);
        assert_eq!(
            scanner.scan("log", "key=192006250b4c09247ec02edce69f6a2d"),
            1
        );
        assert_eq!(scanner.scan("body", "{\"t\":\"pct_abcdef\"}"), 1);
        assert_eq!(scanner.scan("body", "code 134567890123456789."), 1);
        assert_eq!(scanner.scan("log", "-----BEGIN PRIVATE KEY-----"), 2);
        let leaks = scanner.leaks();
        assert_eq!(leaks.len(), 5);
        assert!(leaks.iter().all(|leak| !leak.line.contains("pct_abcdef")));
    }
}
