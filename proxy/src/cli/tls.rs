//! `paycode-proxy tls init|renew`: the shop's local CA and the proxy's server certificate
//! (docs/tablets.md), and the TLS part of `paycode-proxy check`.
//!
//! `init` makes the CA on its first run and a server certificate for the names tablets use;
//! running it again, or `renew`, issues a new server certificate from the same CA, so
//! tablets that trust the CA need nothing new.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::tls::ca_page::{CA_CRT_PATH, TRUST_STEPS};
use crate::tls::inspect::{CertificateInfo, server_config};
use crate::tls::pki::{self, Issued, PkiError, SERVER_CERT_MAX_DAYS, ServerNames, TlsFiles};

/// A certificate this close to expiry is reported as a warning by `check`.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// The `tls` subcommands.
#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Make the local CA (first run only) and a server certificate for the proxy's names,
    /// and print how to trust the CA on tablets.
    Init(IssueArgs),
    /// Issue a new server certificate from the existing CA (the names of the current one
    /// unless --host/--ip are given).
    Renew(IssueArgs),
}

/// Options of `tls init` and `tls renew`.
#[derive(Clone, Debug, Args)]
pub struct IssueArgs {
    /// A host name tablets use to reach the proxy, e.g. `paycode.local` (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// An IP address tablets use to reach the proxy, e.g. `192.168.1.10` (repeatable).
    #[arg(long = "ip")]
    pub ips: Vec<IpAddr>,
    /// Where the CA and certificate files are kept.
    #[arg(long, default_value = "data/tls")]
    pub dir: PathBuf,
    /// How many days the server certificate is valid: at most 825 (Apple's limit).
    #[arg(long, default_value_t = SERVER_CERT_MAX_DAYS)]
    pub days: u32,
}

/// Why a `tls` command failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsCommandError {
    /// The certificates could not be made.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// `renew` found no certificate to take the names from.
    #[error(
        "{0} is missing or unreadable; run `paycode-proxy tls init --host NAME --ip ADDRESS` first"
    )]
    NothingToRenew(PathBuf),
    /// The output could not be written.
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
}

/// Runs `command`, writing what it did and what to do next to `out`.
pub fn run(command: TlsCommand, out: &mut impl Write) -> Result<Issued, TlsCommandError> {
    let (args, renew) = match command {
        TlsCommand::Init(args) => (args, false),
        TlsCommand::Renew(args) => (args, true),
    };
    let mut names = ServerNames {
        hosts: args.hosts.clone(),
        ips: args.ips.clone(),
    };
    if renew && names.hosts.is_empty() && names.ips.is_empty() {
        let current = TlsFiles::in_dir(&args.dir).server_pem;
        let info = std::fs::read(&current)
            .ok()
            .and_then(|pem| CertificateInfo::from_pem(&pem).ok())
            .ok_or_else(|| TlsCommandError::NothingToRenew(current.clone()))?;
        names = ServerNames {
            hosts: info.hosts,
            ips: info.ips,
        };
    }
    // The till on the proxy's own machine opens https://127.0.0.1 or https://localhost once
    // `listen` serves HTTPS only, so those names are always in the certificate.
    if !names.hosts.iter().any(|host| host == "localhost") {
        names.hosts.push("localhost".to_owned());
    }
    let loopback = IpAddr::from([127, 0, 0, 1]);
    if !names.ips.contains(&loopback) {
        names.ips.push(loopback);
    }
    let issued = pki::issue(&args.dir, &names, args.days)?;
    report(&issued, &names, out)?;
    Ok(issued)
}

fn report(issued: &Issued, names: &ServerNames, out: &mut impl Write) -> std::io::Result<()> {
    let files = &issued.files;
    if issued.new_ca {
        writeln!(
            out,
            "Created the local CA {} (its key {} is readable by you only; keep it off the tablets).",
            files.ca_pem.display(),
            files.ca_key_pem.display()
        )?;
    } else {
        writeln!(
            out,
            "Kept the local CA {}: tablets that trust it need nothing new.",
            files.ca_pem.display()
        )?;
    }
    let all_names: Vec<String> = names
        .hosts
        .iter()
        .cloned()
        .chain(names.ips.iter().map(IpAddr::to_string))
        .collect();
    writeln!(
        out,
        "Issued the server certificate {} for {}, valid until {} ({} days); key {} (mode 0600).",
        files.server_pem.display(),
        all_names.join(", "),
        issued.not_after.date(),
        (issued.not_after - issued.not_before).whole_days(),
        files.server_key_pem.display()
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "In paycode.toml, set `listen` in the [server] section to the address tablets reach \
         (e.g. listen = \"0.0.0.0:3443\"; it then serves HTTPS only), and add this section \
         (restart `paycode-proxy serve` after a renewal):"
    )?;
    writeln!(out)?;
    writeln!(out, "    [server.tls]")?;
    writeln!(out, "    cert_pem = \"{}\"", toml_path(&files.server_pem))?;
    writeln!(
        out,
        "    key_pem = \"{}\"",
        toml_path(&files.server_key_pem)
    )?;
    writeln!(out, "    ca_pem = \"{}\"", toml_path(&files.ca_pem))?;
    writeln!(out, "    ca_listen = \"0.0.0.0:3080\"")?;
    writeln!(out)?;
    let first = all_names.first().map_or("PROXY", String::as_str);
    writeln!(
        out,
        "Trust the CA once on each tablet: open http://{first}:3080/ there (a page that offers only \
         the CA certificate, {CA_CRT_PATH}), or copy {} to the device, then:",
        files.ca_pem.display()
    )?;
    for (platform, steps) in TRUST_STEPS {
        writeln!(out, "  - {platform}: {steps}.")?;
    }
    writeln!(
        out,
        "Then pair each tablet with `paycode-proxy terminal add NAME` (or `terminal pair NAME`)."
    )
}

fn toml_path(path: &Path) -> String {
    path.display().to_string().replace('\\', "\\\\")
}

/// What `check` found wrong with the serving certificate.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsCheckError(pub String);

/// The TLS part of `paycode-proxy check`: with `[server.tls]`, the certificate and key load
/// and match, the certificate has not expired, and its names cover the host tablets use
/// (`server.public_url`'s, else `server.listen`'s address unless it is unspecified); one
/// line with the names and days to expiry. Without it, a warning when `listen` is not
/// loopback.
pub fn check(
    config: &Config,
    now: DateTime<Utc>,
    out: &mut impl Write,
) -> Result<(), TlsCheckError> {
    let fail = |message: String| TlsCheckError(message);
    let server = &config.server;
    let Some(tls) = &server.tls else {
        let line = match crate::state::plain_http_warning(config) {
            Some(warning) => format!("warn  {warning}"),
            None => format!("ok    plain HTTP on {} (this machine only)", server.listen),
        };
        return writeln!(out, "{line}").map_err(|error| fail(error.to_string()));
    };
    server_config(&tls.cert_pem, &tls.key_pem)
        .map_err(|error| fail(crate::error::chain(&error)))?;
    let pem = std::fs::read(&tls.cert_pem)
        .map_err(|error| fail(format!("cannot read {}: {error}", tls.cert_pem.display())))?;
    let info = CertificateInfo::from_pem(&pem)
        .map_err(|error| fail(format!("{}: {error}", tls.cert_pem.display())))?;
    let days = info.days_until_expiry(now);
    if info.not_after < now {
        return Err(fail(format!(
            "the certificate for {} expired on {}; run `paycode-proxy tls renew` and restart",
            info.names(),
            info.not_after.format("%Y-%m-%d")
        )));
    }
    if info.not_before > now {
        return Err(fail(format!(
            "the certificate for {} is not valid before {}; check this machine's clock",
            info.names(),
            info.not_before.format("%Y-%m-%d %H:%M")
        )));
    }
    let host = match &server.public_url {
        Some(url) => url.host_str().map(str::to_owned),
        None => (!server.listen.ip().is_unspecified()).then(|| server.listen.ip().to_string()),
    };
    if let Some(host) = &host {
        if !info.covers(host) {
            return Err(fail(format!(
                "the certificate names {} but tablets reach the proxy as {host}; run \
                 `paycode-proxy tls init --host/--ip` with {host} (the CA is kept)",
                info.names()
            )));
        }
    }
    let lifetime = (info.not_after - info.not_before).num_days();
    let status = if days < EXPIRY_WARNING_DAYS || lifetime > i64::from(SERVER_CERT_MAX_DAYS) {
        "warn "
    } else {
        "ok   "
    };
    let apple = if lifetime > i64::from(SERVER_CERT_MAX_DAYS) {
        format!("; valid for {lifetime} days, over the 825 Apple devices accept")
    } else {
        String::new()
    };
    writeln!(
        out,
        "{status} TLS certificate for {}, expires {} ({days} days){apple}",
        info.names(),
        info.not_after.format("%Y-%m-%d"),
    )
    .map_err(|error| fail(error.to_string()))
}
