//! The TLS profiles real key managers hand out, each against its own PyKMIP instance with its
//! own PKI (`KEYRING_OKV_PYKMIP_PKI`): EC P-521 (the default of HashiCorp Vault's KMIP engine),
//! EC P-384, and an RSA-3072 chain whose certificates are signed with RSASSA-PSS (appliances).
//! Each is used from the core and the admin tool, from the plugin in a real mysqld 9.7, from
//! the component as mysqld loads it, and from the MariaDB plugin in a real mariadbd 10.11.

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::mariadb::{self, Target};
use common::mysql::{self, Instance};
use common::pykmip::{Named, unique};
use okv_core::config::load_conf_dir;
use okv_core::connector::KmipClient;
use okv_core::keyring::Keyring;

const KEYRING_OKV: &str = env!("CARGO_BIN_EXE_keyring-okv");

/// (profile, what `keyring-okv check` says of the client key).
const PROFILES: [(&str, &str); 3] = [
    ("p521", "EC key"),
    ("p384", "EC key"),
    ("rsapss3072", "RSA key"),
];

/// A PyKMIP instance of its own with the profile's PKI.
struct Kmip {
    _named: Named,
    conf_dir: PathBuf,
}

impl Kmip {
    /// `user` keeps the instances of tests that run at the same time apart.
    fn start(profile: &'static str, user: &str) -> Kmip {
        let named = Named::start(&format!("tls{profile}{user}"), profile);
        let conf_dir = named.conf_dir();
        Kmip {
            _named: named,
            conf_dir,
        }
    }

    fn keyring(&self) -> Keyring {
        let conf = load_conf_dir(&self.conf_dir).expect("the profile's conf dir loads");
        Keyring::new(KmipClient::from_conf_dir(&conf).expect("client"))
    }
}

fn cert_text(path: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_profile_works_from_the_core_and_the_admin_tool() {
    for (profile, key_kind) in PROFILES {
        let kmip = Kmip::start(profile, "core");
        // The PKI is what the profile says.
        let client = cert_text(&kmip.conf_dir.join("ssl/cert.pem"));
        match profile {
            "p521" => assert!(client.contains("secp521r1"), "{client}"),
            "p384" => assert!(client.contains("secp384r1"), "{client}"),
            _ => {
                assert!(client.contains("rsassaPss"), "{client}");
                assert!(client.contains("(3072 bit)"), "{client}");
            }
        }
        let out = Command::new(KEYRING_OKV)
            .arg("--conf-dir")
            .arg(&kmip.conf_dir)
            .arg("check")
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{profile}:\n{report}");
        assert!(report.contains(key_kind), "{profile}:\n{report}");

        let k = kmip.keyring();
        let id = unique(&format!("tls-{profile}"));
        k.generate(&id, "", "AES", 32).unwrap();
        assert_eq!(k.fetch(&id, "").unwrap().unwrap().material.len(), 32);
        assert!(k.list(false).unwrap().iter().any(|e| e.key_id == id));
        k.remove(&id, "").unwrap();
    }
}

#[test]
fn every_profile_works_from_the_plugin_in_mysqld() {
    for (profile, _) in PROFILES {
        let kmip = Kmip::start(profile, "plugin");
        let name = format!("tls-{profile}");
        let conf = common::component::conf_dir_in_chroot(&kmip.conf_dir, &name, None);
        let db = Instance::fresh(
            &name,
            &[
                "--early-plugin-load=keyring_okv.so",
                &format!("--loose-keyring_okv_conf_dir={conf}"),
            ],
        );
        db.udf();
        let key = unique("TlsUdf");
        assert_eq!(
            db.must_sql(&format!("SELECT keyring_key_generate('{key}', 'AES', 32)")),
            "1",
            "{profile}"
        );
        assert_eq!(
            db.must_sql(&format!("SELECT LENGTH(keyring_key_fetch('{key}'))")),
            "32"
        );
        db.must_sql("CREATE DATABASE IF NOT EXISTS tls");
        db.must_sql("CREATE TABLE tls.t (a INT) ENCRYPTION='Y'");
        db.must_sql("INSERT INTO tls.t VALUES (521)");
        db.restart(&[
            "--early-plugin-load=keyring_okv.so",
            &format!("--loose-keyring_okv_conf_dir={conf}"),
        ]);
        assert_eq!(db.must_sql("SELECT a FROM tls.t"), "521", "{profile}");
        db.must_sql(&format!("SELECT keyring_key_remove('{key}')"));
        mysql::script(&["stop", &name]).unwrap();
    }
}

#[test]
fn every_profile_works_from_the_component() {
    let host = common::component::host_program();
    for (profile, _) in PROFILES {
        let kmip = Kmip::start(profile, "component");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("component_keyring_okv.cnf"),
            format!(
                "{{\"kmip_configuration_directory\": \"{}\"}}",
                kmip.conf_dir.display()
            ),
        )
        .unwrap();
        let id = unique(&format!("tls-comp-{profile}"));
        let out = Command::new(host)
            .arg(common::component::component_library())
            .arg(dir.path())
            .arg("-")
            .args(["load", "generate", &id, "-", "AES", "32", "fetch", &id, "-"])
            .args(["remove", &id, "-"])
            .output()
            .expect("run component_host");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{profile}:\n{text}");
        let results: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("RESULT "))
            .collect();
        assert!(results.contains(&"load 0"), "{profile}: {results:?}");
        assert!(
            results
                .iter()
                .any(|r| r.starts_with("generate") && r.ends_with(" 0")),
            "{profile}: {results:?}"
        );
        assert!(
            results
                .iter()
                .any(|r| r.starts_with("fetch") && r.contains("AES")),
            "{profile}: {results:?}"
        );
    }
}

#[test]
fn every_profile_works_from_the_mariadb_plugin() {
    for (profile, _) in PROFILES {
        let kmip = Kmip::start(profile, "mariadb");
        let namespace = unique(&format!("tls-{profile}"));
        let out = mariadb::admin(
            KEYRING_OKV,
            &kmip.conf_dir,
            &["create-key", "1", "--namespace", &namespace],
        );
        assert!(
            out.status.success(),
            "{profile}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let db = mariadb::Instance::new(Target::Host, &format!("tls-{profile}"));
        let conf = db.conf(&kmip.conf_dir);
        let mut args = mariadb::plugin_args(&conf, &namespace);
        args.push("--innodb-encrypt-tables=ON".into());
        db.must_start(&args);
        db.must_sql("CREATE DATABASE d; CREATE TABLE d.t (a INT) ENGINE=InnoDB ENCRYPTED=YES");
        db.must_sql("INSERT INTO d.t VALUES (384)");
        db.restart().unwrap();
        assert_eq!(db.must_sql("SELECT a FROM d.t"), "384", "{profile}");
    }
}
