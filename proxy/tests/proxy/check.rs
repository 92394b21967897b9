//! `paycode-proxy check` against the simulator: what it reports for a good configuration,
//! and that a wrong key or a missing certificate fails with the setting to fix.

use paycode_proxy::cli::check::{self, CheckError};
use wxpay::ApiKey;
use wxpay::sim::DEMO_API_KEY;

use crate::helpers::with_simulator;

#[tokio::test]
async fn a_good_configuration_reports_each_check() {
    let root = tempfile::tempdir().unwrap();
    let (sim, config) = with_simulator(root.path()).await;
    let mut out = Vec::new();

    check::run(&config, &mut out).await.unwrap();

    let report = String::from_utf8(out).unwrap();
    assert!(report.contains("ok    database"), "{report}");
    assert!(
        report.contains("client certificate CN=10000100"),
        "{report}"
    );
    assert!(report.contains("days)"), "{report}");
    assert!(
        report.contains("answered a signed query for merchant 10000100"),
        "{report}"
    );
    assert!(!report.contains(DEMO_API_KEY), "{report}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_wrong_key_or_a_missing_certificate_fails_naming_the_setting() {
    let root = tempfile::tempdir().unwrap();
    let (sim, mut config) = with_simulator(root.path()).await;
    config.wechat.api_key = ApiKey::new("00000000000000000000000000000000");

    let wrong_key = check::run(&config, &mut Vec::new()).await.unwrap_err();

    assert!(matches!(wrong_key, CheckError::Wechat(_)), "{wrong_key:?}");
    assert!(
        wrong_key.to_string().contains("wechat.api_key"),
        "{wrong_key}"
    );
    config.wechat.cert_pem = None;
    config.wechat.key_pem = None;
    let no_certificate = check::run(&config, &mut Vec::new()).await.unwrap_err();
    assert!(
        matches!(no_certificate, CheckError::Certificate(_)),
        "{no_certificate:?}"
    );
    assert!(no_certificate.to_string().contains("wechat.cert_p12"));
    sim.shutdown().await;
}
