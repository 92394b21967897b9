//! HTTPS on the shop network: `tls init|renew` output (files, modes, validity, names), the
//! API and a long-poll over HTTPS trusting only the generated CA, the plain-HTTP CA page,
//! and what `check` says about good, mismatched, expired and misnamed certificates.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use paycode_proxy::cli::check::{self, CheckError};
use paycode_proxy::cli::tls::{self as tls_cli, IssueArgs, TlsCommand};
use paycode_proxy::config::{Config, TlsConfig};
use paycode_proxy::private_file::mode;
use paycode_proxy::tls::inspect::CertificateInfo;
use paycode_proxy::tls::pki::TlsFiles;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app_with, with_simulator};

fn init(dir: &Path, hosts: &[&str], ips: &[&str]) -> TlsFiles {
    let args = IssueArgs {
        hosts: hosts.iter().map(|host| (*host).to_owned()).collect(),
        ips: ips.iter().map(|ip| ip.parse::<IpAddr>().unwrap()).collect(),
        dir: dir.to_owned(),
        days: 825,
    };
    tls_cli::run(TlsCommand::Init(args), &mut Vec::new())
        .unwrap()
        .files
}

fn tls_config(files: &TlsFiles) -> TlsConfig {
    TlsConfig {
        cert_pem: files.server_pem.clone(),
        key_pem: files.server_key_pem.clone(),
        ca_pem: Some(files.ca_pem.clone()),
        ca_listen: None,
    }
}

/// A client that trusts the generated CA and nothing else.
fn client_trusting(files: &TlsFiles) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&files.ca_pem).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .unwrap()
}

#[tokio::test]
async fn tls_init_writes_a_ca_and_a_server_certificate_and_renew_keeps_the_ca() {
    // Arrange
    let directory = tempfile::tempdir().unwrap();
    let dir = directory.path().join("tls");
    let args = IssueArgs {
        hosts: vec!["paycode.local".to_owned()],
        ips: vec!["192.168.1.10".parse().unwrap()],
        dir: dir.clone(),
        days: 825,
    };

    // Act
    let mut out = Vec::new();
    let issued = tls_cli::run(TlsCommand::Init(args.clone()), &mut out).unwrap();
    let first_ca = std::fs::read(&issued.files.ca_pem).unwrap();
    let first_server = std::fs::read(&issued.files.server_pem).unwrap();
    let mut renew_out = Vec::new();
    let renew = IssueArgs {
        hosts: vec![],
        ips: vec![],
        ..args.clone()
    };
    let renewed = tls_cli::run(TlsCommand::Renew(renew), &mut renew_out).unwrap();
    let too_long = tls_cli::run(
        TlsCommand::Init(IssueArgs { days: 826, ..args }),
        &mut Vec::new(),
    );

    // Assert: the files and their modes.
    let files = &issued.files;
    assert!(issued.new_ca);
    for (path, expected) in [
        (&files.ca_key_pem, 0o600),
        (&files.server_key_pem, 0o600),
        (&files.ca_pem, 0o644),
    ] {
        if cfg!(unix) {
            let actual = mode(path).unwrap().unwrap();
            assert_eq!(
                actual & 0o077 == 0,
                expected == 0o600,
                "{path:?}: {actual:o}"
            );
        }
    }
    // The server certificate: its names, at most 825 days, and the CA after it.
    let info = CertificateInfo::from_pem(&first_server).unwrap();
    // The names asked for, and the loopback names the till on the proxy's own machine uses.
    assert_eq!(info.hosts, ["paycode.local", "localhost"]);
    assert_eq!(
        info.ips,
        [
            "192.168.1.10".parse::<IpAddr>().unwrap(),
            [127, 0, 0, 1].into()
        ]
    );
    let lifetime = info.not_after - info.not_before;
    assert!(lifetime <= chrono::Duration::days(825), "{lifetime:?}");
    assert!(lifetime >= chrono::Duration::days(824), "{lifetime:?}");
    assert!(info.not_before <= Utc::now());
    assert_eq!(
        String::from_utf8_lossy(&first_server)
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
    // The report: the files, the config to paste and how to trust the CA everywhere.
    let report = String::from_utf8(out).unwrap();
    for expected in [
        "Created the local CA",
        "[server.tls]",
        "server-key.pem",
        "http://paycode.local:3080/",
        "Encryption & credentials",
        "Certificate Trust Settings",
        "Trusted Root Certification Authorities",
        "Always Trust",
    ] {
        assert!(report.contains(expected), "{expected}: {report}");
    }
    assert!(!report.contains("PRIVATE KEY"), "{report}");
    // Renewal: the same CA, a new certificate with the same names.
    assert!(!renewed.new_ca);
    assert_eq!(std::fs::read(&files.ca_pem).unwrap(), first_ca);
    let renewed_server = std::fs::read(&files.server_pem).unwrap();
    assert_ne!(renewed_server, first_server);
    let renewed_info = CertificateInfo::from_pem(&renewed_server).unwrap();
    assert_eq!(renewed_info.hosts, info.hosts);
    assert_eq!(renewed_info.ips, info.ips);
    assert!(
        String::from_utf8(renew_out)
            .unwrap()
            .contains("Kept the local CA")
    );
    assert!(too_long.is_err());
}

#[tokio::test]
async fn the_api_and_a_long_poll_work_over_https_and_a_renewed_certificate_is_still_trusted() {
    // Arrange: certificates for 127.0.0.1, a proxy serving them, a client trusting the CA.
    let certs = tempfile::tempdir().unwrap();
    let files = init(certs.path(), &["localhost"], &["127.0.0.1"]);
    let tls = tls_config(&files);
    let app = spawn_app_with(
        |_| {},
        |config| {
            config.server.tls = Some(tls);
            config.payments.first_query_after_userpaying = Duration::from_millis(50);
            config.payments.query_interval = Duration::from_millis(50);
        },
    )
    .await;
    assert!(
        app.address.starts_with("https://127.0.0.1:"),
        "{}",
        app.address
    );
    let client = client_trusting(&files);
    let token = app.terminal_token("counter-1").await;
    let sim = app.sim.as_ref().unwrap();

    // Act: the terminal, then a payment that waits for the customer's password, and a
    // long-poll that the confirmation answers.
    let terminal = client
        .get(format!("{}/api/v1/terminal", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let created: serde_json::Value = client
        .post(format!("{}/api/v1/payments", app.address))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(
            json!({
                "attempt_id": "00000000-0000-4000-8000-000000000001",
                "amount_fen": 1234,
                "auth_code": wxpay::sim::auth_code_for(wxpay::sim::Behaviour::PasswordWaits),
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|text| serde_json::from_str(&text).unwrap())
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let out_trade_no = created["out_trade_no"].as_str().unwrap().to_owned();
    // Wait until WeChat shows the password prompt, then poll past the current version.
    let mut version = created["version"].as_i64().unwrap();
    let mut state = created["state"].as_str().unwrap().to_owned();
    let mut confirmed = false;
    for _ in 0..20 {
        if matches!(
            state.as_str(),
            "paid" | "failed" | "cancelled" | "needs_attention"
        ) {
            break;
        }
        let long_poll = client
            .get(format!(
                "{}/api/v1/payments/{id}?wait=10&after_version={version}",
                app.address
            ))
            .bearer_auth(&token)
            .send();
        if state == "waiting_for_customer" && !confirmed {
            sim.confirm_password(&out_trade_no).unwrap();
            confirmed = true;
        }
        let payment: serde_json::Value =
            serde_json::from_str(&long_poll.await.unwrap().text().await.unwrap()).unwrap();
        version = payment["version"].as_i64().unwrap();
        state = payment["state"].as_str().unwrap().to_owned();
    }
    let plain = reqwest::Client::new()
        .get(format!("{}/healthz", app.address))
        .send()
        .await;

    // Assert
    assert_eq!(terminal.status(), StatusCode::OK);
    assert!(confirmed);
    assert_eq!(state, "paid");
    // A client without the CA refuses the certificate.
    assert!(plain.is_err());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_plain_http_ca_page_offers_the_ca_and_nothing_else() {
    // Arrange
    let certs = tempfile::tempdir().unwrap();
    let files = init(certs.path(), &["paycode.local"], &["127.0.0.1"]);
    let ca_port = paycode_tests_free_port();
    let mut tls = tls_config(&files);
    tls.ca_listen = Some(format!("127.0.0.1:{ca_port}").parse().unwrap());
    let app = spawn_app_with(|_| {}, |config| config.server.tls = Some(tls)).await;
    let base = format!("http://127.0.0.1:{ca_port}");
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{base}{path}")).send();

    // Act
    let page = get("/").await.unwrap();
    let crt = get("/paycode-ca.crt").await.unwrap();
    let pem = get("/paycode-ca.pem").await.unwrap();
    let others = [
        get("/api/v1/terminal").await.unwrap().status(),
        get("/healthz").await.unwrap().status(),
        get("/index.html").await.unwrap().status(),
        get("/ca-key.pem").await.unwrap().status(),
    ];

    // Assert
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("/paycode-ca.crt"), "{page}");
    assert!(page.contains("https://paycode.local:"), "{page}");
    assert_eq!(crt.status(), StatusCode::OK);
    assert_eq!(crt.headers()["content-type"], "application/x-x509-ca-cert");
    let ca_pem = std::fs::read(&files.ca_pem).unwrap();
    let ca_der = paycode_proxy::tls::inspect::first_certificate(&ca_pem).unwrap();
    assert_eq!(crt.bytes().await.unwrap().as_ref(), ca_der.as_ref());
    assert_eq!(pem.text().await.unwrap().as_bytes(), ca_pem.as_slice());
    assert_eq!(others, [StatusCode::NOT_FOUND; 4]);
    app.stop().await.unwrap();
}

fn paycode_tests_free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn check_tls(config: &Config) -> Result<String, String> {
    let mut out = Vec::new();
    tls_cli::check(config, Utc::now(), &mut out)
        .map(|()| String::from_utf8(out).unwrap())
        .map_err(|error| error.to_string())
}

#[tokio::test]
async fn check_reports_the_certificate_and_refuses_a_mismatched_expired_or_misnamed_one() {
    // Arrange
    let root = tempfile::tempdir().unwrap();
    let (sim, mut config) = with_simulator(root.path()).await;
    let good = init(
        &root.path().join("good"),
        &["paycode.local"],
        &["127.0.0.1"],
    );
    let other = init(
        &root.path().join("other"),
        &["paycode.local"],
        &["127.0.0.1"],
    );
    let misnamed = init(
        &root.path().join("misnamed"),
        &["till.local"],
        &["10.0.0.5"],
    );
    let expired_dir = root.path().join("expired");
    std::fs::create_dir_all(&expired_dir).unwrap();
    let expired_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let expired_cert = params.self_signed(&expired_key).unwrap();
    std::fs::write(expired_dir.join("server.pem"), expired_cert.pem()).unwrap();
    std::fs::write(
        expired_dir.join("server-key.pem"),
        expired_key.serialize_pem(),
    )
    .unwrap();

    // Act
    config.server.tls = Some(tls_config(&good));
    let report = crate::helpers::check_report(&config).await;
    config.server.tls = Some(TlsConfig {
        key_pem: other.server_key_pem.clone(),
        ..tls_config(&good)
    });
    let mismatched = check::run(&config, &mut Vec::new()).await.unwrap_err();
    config.server.tls = Some(TlsConfig {
        cert_pem: expired_dir.join("server.pem"),
        key_pem: expired_dir.join("server-key.pem"),
        ca_pem: None,
        ca_listen: None,
    });
    let expired = check_tls(&config).unwrap_err();
    config.server.tls = Some(tls_config(&misnamed));
    config.server.public_url = Some("https://paycode.local:3443".parse().unwrap());
    let wrong_names = check_tls(&config).unwrap_err();
    config.server.public_url = Some("https://till.local:3443".parse().unwrap());
    let right_names = check_tls(&config).unwrap();
    config.server.tls = None;
    config.server.public_url = None;
    config.server.listen = "0.0.0.0:3000".parse().unwrap();
    let plain = check_tls(&config).unwrap();

    // Assert
    assert!(
        report.contains("ok    TLS certificate for paycode.local, localhost, 127.0.0.1, expires"),
        "{report}"
    );
    assert!(report.contains("(824 days)"), "{report}");
    assert!(matches!(mismatched, CheckError::Tls(_)), "{mismatched:?}");
    assert!(mismatched.to_string().contains("key_pem"), "{mismatched}");
    assert!(expired.contains("expired on 2021-01-01"), "{expired}");
    assert!(
        wrong_names.contains(
            "names till.local, localhost, 10.0.0.5, 127.0.0.1 but tablets reach the proxy as \
             paycode.local"
        ),
        "{wrong_names}"
    );
    assert!(
        right_names.starts_with("ok    TLS certificate for till.local"),
        "{right_names}"
    );
    assert!(
        plain.starts_with("warn  plain HTTP on 0.0.0.0:3000"),
        "{plain}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn demo_with_tls_serves_https_and_keeps_every_secret_file_owner_only() {
    // Arrange
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let args = paycode_proxy::cli::demo::DemoArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        sim_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.clone(),
        app_dir: root.path().join("dist"),
        time_scale: 1.0,
        tls: true,
    };

    // Act
    let demo = paycode_proxy::cli::demo::Demo::start(&args).await.unwrap();
    let banner = demo.banner();
    let port = demo.application.port();
    let sim = demo.sim;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(demo.application.run_until(async move {
        let _ = stopped.await;
    }));
    let client = client_trusting(&TlsFiles::in_dir(&data.join("tls")));
    // The loopback-only demo pairing sees the peer address through the TLS listener.
    let pairing = client
        .get(format!("https://127.0.0.1:{port}/api/v1/demo/pairing"))
        .send()
        .await
        .unwrap();

    // Assert
    assert!(
        banner.starts_with(&format!("Paycode demo ready: https://127.0.0.1:{port}\n")),
        "{banner}"
    );
    assert_eq!(pairing.status(), StatusCode::OK);
    if cfg!(unix) {
        for private in [
            "paycode.sqlite",
            "paycode.sqlite-wal",
            "paycode.sqlite-shm",
            "demo-terminal.token",
            "tls/ca-key.pem",
            "tls/server-key.pem",
            "sim-certs/apiclient_key.pem",
            "sim-certs/apiclient_cert.p12",
        ] {
            let path = data.join(private);
            assert_eq!(mode(&path).unwrap(), Some(0o600), "{private}");
        }
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    sim.shutdown().await;
}
