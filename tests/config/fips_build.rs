//! What the FIPS 140-3 build (feature `fips`) does differently from the default build, asserted
//! in both: `cargo test` runs these in the default build, `bash scripts/fips.sh test` in the
//! FIPS build (with the plugin's end-to-end test in a real mysqld, tests/plugin/e2e_mysql.rs).

#[path = "../common/mod.rs"]
mod common;

use std::process::Command;

use common::fixtures::{KEY_PASSWORD, make_conf_dir, pki};
use common::pykmip::lab;
use okv_core::config::{ConfigError, fips, load_conf_dir};

const KEYRING_OKV: &str = env!("CARGO_BIN_EXE_keyring-okv");

/// The encryptions of key.pem the FIPS module decrypts: PBES2 with PBKDF2 and AES-CBC.
fn fips_decryptable(case_name: &str) -> bool {
    ["pkcs8 -v2 aes256", "ec pkcs8 -v2 aes128"].contains(&case_name)
}

#[test]
fn the_build_reports_its_mode() {
    let mode = fips::mode();
    assert_eq!(mode.on, cfg!(feature = "fips"));
    assert_eq!(fips::BUILD, cfg!(feature = "fips"));
    if cfg!(feature = "fips") {
        assert_eq!(mode.on_off(), "ON");
        assert!(mode.module.starts_with("AWS-LC FIPS "), "{}", mode.module);
    } else {
        assert_eq!(mode.on_off(), "OFF");
        assert_eq!(mode.module, "");
    }
}

#[test]
fn every_key_encryption_is_read_or_refused_with_one_line() {
    let pki = pki();
    let mut refused = 0;
    for case in &pki.key_cases {
        let mut layout = pki.layout();
        layout.key = Some(case.key.clone());
        layout.cert = Some(case.cert.clone());
        if case.encrypted {
            layout.password = Some(format!("{KEY_PASSWORD}\n"));
        }
        let conf = make_conf_dir(&layout);
        let result = load_conf_dir(&conf.dir);
        if !cfg!(feature = "fips") || !case.encrypted || fips_decryptable(case.name) {
            let loaded = result.unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(loaded.identity.key_format, case.format, "{}", case.name);
            continue;
        }
        refused += 1;
        let e = result.expect_err(case.name);
        assert!(
            matches!(e, ConfigError::NotFipsApproved { .. }),
            "{}: {e:?}",
            case.name
        );
        let line = e.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with(&conf.ssl("key.pem").display().to_string()),
            "{line}"
        );
        assert!(line.contains("is not FIPS 140-3 approved"), "{line}");
        assert!(
            line.contains("openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmac-sha256"),
            "{line}"
        );
    }
    if cfg!(feature = "fips") {
        // Legacy PEM (DES-EDE3 and AES, RSA and EC) and PBES2 with DES-EDE3.
        assert!(refused >= 7, "{refused}");
    }
}

#[test]
fn a_wrong_password_is_still_a_wrong_password() {
    let pki = pki();
    for case in pki.key_cases.iter().filter(|c| fips_decryptable(c.name)) {
        let mut layout = pki.layout();
        layout.key = Some(case.key.clone());
        layout.cert = Some(case.cert.clone());
        layout.password = Some("not the password\n".into());
        let conf = make_conf_dir(&layout);
        let e = load_conf_dir(&conf.dir).expect_err(case.name);
        assert!(
            matches!(e, ConfigError::WrongPassword { .. }),
            "{}: {e:?}",
            case.name
        );
    }
}

#[test]
fn check_prints_the_mode_and_talks_to_pykmip() {
    let out = Command::new(KEYRING_OKV)
        .arg("--conf-dir")
        .arg(&lab().conf_dir)
        .arg("check")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    let line = report
        .lines()
        .find(|l| l.contains("] fips: "))
        .unwrap_or_else(|| panic!("no fips line:\n{report}"));
    if cfg!(feature = "fips") {
        assert!(line.starts_with("[ OK ] fips: on (AWS-LC FIPS "), "{line}");
        assert!(line.contains("rustls in FIPS mode"), "{line}");
    } else {
        assert!(line.starts_with("[ OK ] fips: off ("), "{line}");
    }
    assert!(report.contains("KMIP Query: PyKMIP"), "{report}");
}
