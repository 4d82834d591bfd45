//! Moving to the component and away from it, with the real mysqld 9.7:
//! - from keyring_okv.so to component_keyring_okv without migrating a key (both use the same
//!   KMIP object names);
//! - mysql_migrate_keyring from component_keyring_file to ours and from ours back to
//!   component_keyring_file, each followed by a server start that reads the encrypted table.

#[path = "../common/mod.rs"]
mod common;

use std::process::Command;

use common::component::{self, cnf, component_log, status_value};
use common::mysql::{self, Instance};
use common::pykmip::{lab, remove_udf_leftovers, repo_root};

fn assert_active_as(db: &Instance, implementation: &str) {
    assert_eq!(
        status_value(db, "Implementation_name"),
        implementation,
        "{:?}",
        component::status(db)
    );
    assert_eq!(
        status_value(db, "Component_status"),
        "Active",
        "{:?}\n{:#?}",
        component::status(db),
        component_log(db)
    );
}

/// Every encrypted binary log reads back (its file password is decrypted with a keyring key).
fn binlogs_read_back(db: &Instance) -> usize {
    let logs = db.must_sql("SHOW BINARY LOGS");
    let encrypted: Vec<&str> = logs
        .lines()
        .filter(|l| l.ends_with("Yes"))
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    for file in &encrypted {
        db.must_sql(&format!("SHOW BINLOG EVENTS IN '{file}' LIMIT 2"));
    }
    encrypted.len()
}

#[test]
fn plugin_to_component_without_migration() {
    let dir = component::conf_dir_in_chroot(&lab().conf_dir, "comp-switch", None);
    remove_udf_leftovers(&["SwitchKey", "BackKey"]);
    let plugin_args = [
        "--early-plugin-load=keyring_okv.so".to_string(),
        format!("--loose-keyring_okv_conf_dir={dir}"),
    ];
    component::plugin_dir();
    let db = Instance::fresh(
        "comp-switch",
        &plugin_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(
        db.must_sql(
            "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME='keyring_okv'"
        ),
        "ACTIVE"
    );
    db.udf();
    assert_eq!(
        db.must_sql("SELECT keyring_key_store('SwitchKey', 'SECRET', 'made by the plugin')"),
        "1"
    );
    db.must_sql("CREATE DATABASE IF NOT EXISTS e2e");
    db.must_sql("CREATE TABLE e2e.t (a INT) ENCRYPTION='Y'");
    db.must_sql("INSERT INTO e2e.t VALUES (42)");
    db.must_sql("ALTER INSTANCE ROTATE INNODB MASTER KEY");
    db.must_sql("SET PERSIST binlog_encryption = ON");
    db.must_sql("ALTER INSTANCE ROTATE BINLOG MASTER KEY");
    db.must_sql("INSERT INTO e2e.t VALUES (43)");
    db.must_sql("FLUSH BINARY LOGS");
    assert!(binlogs_read_back(&db) >= 2);

    // Same configuration directory, now through the component from the manifest; the plugin
    // is no longer loaded (the stored mysqld arguments are replaced).
    mysql::script(&["stop", "comp-switch"]).unwrap();
    component::configure(
        "comp-switch",
        Some(component::MANIFEST_OKV),
        Some(&cnf(&dir, "")),
    );
    db.restart(&["--server-id=1"]);
    assert_active_as(&db, "component_keyring_okv");
    assert_eq!(
        db.must_sql(
            "SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME='keyring_okv'"
        ),
        "0"
    );
    assert_eq!(db.must_sql("SELECT a FROM e2e.t ORDER BY a"), "42\n43");
    assert_eq!(
        db.must_sql("SELECT keyring_key_fetch('SwitchKey')"),
        "made by the plugin"
    );
    assert!(binlogs_read_back(&db) >= 2);
    let keys = db.must_sql("SELECT KEY_ID, KEY_OWNER FROM performance_schema.keyring_keys");
    assert!(
        keys.lines().any(|l| l == "SwitchKey\troot@localhost"),
        "{keys}"
    );
    assert!(
        keys.lines()
            .any(|l| l.starts_with("INNODBKey-") && l.ends_with("-2\t")),
        "{keys}"
    );
    // Keys made through the component are found by the plugin too (the reverse switch).
    assert_eq!(
        db.must_sql("SELECT keyring_key_store('BackKey', 'SECRET', 'made by the component')"),
        "1"
    );
    mysql::script(&["stop", "comp-switch"]).unwrap();
    component::configure("comp-switch", None, None);
    db.restart(&plugin_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        db.must_sql("SELECT keyring_key_fetch('BackKey')"),
        "made by the component"
    );
    assert_eq!(db.must_sql("SELECT a FROM e2e.t ORDER BY a"), "42\n43");
    db.must_sql("SELECT keyring_key_remove('BackKey')");
    db.must_sql("SELECT keyring_key_remove('SwitchKey')");
}

/// A PyKMIP instance of its own, emptied, so that the migration copies only this test's keys.
struct OwnKmip {
    conf_dir: std::path::PathBuf,
}

fn pykmip(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/pykmip.sh"))
        .args(args)
        .env("KEYRING_OKV_PYKMIP_NAME", "component")
        .output()
        .expect("run scripts/pykmip.sh");
    assert!(
        out.status.success(),
        "pykmip.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl OwnKmip {
    fn start() -> OwnKmip {
        lab();
        pykmip(&["reset"]);
        pykmip(&["start"]);
        let env = pykmip(&["env"]);
        let conf_dir = env
            .lines()
            .find_map(|l| l.strip_prefix("KEYRING_OKV_PYKMIP_COMPONENT_CONFDIR="))
            .expect("confdir in env")
            .trim_matches('\'')
            .into();
        OwnKmip { conf_dir }
    }
}

impl Drop for OwnKmip {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("scripts/pykmip.sh"))
            .arg("stop")
            .env("KEYRING_OKV_PYKMIP_NAME", "component")
            .output();
    }
}

/// Runs mysql_migrate_keyring inside the chroot; both configurations are read from the
/// instance's data directory (the global files say read_local_config).
fn migrate(name: &str, source: &str, destination: &str) {
    let data = component::data_dir_in_chroot(name);
    let out = Command::new("chroot")
        .arg(mysql::root())
        .args([
            "/usr/bin/mysql_migrate_keyring",
            "--component-dir=/usr/lib/mysql/plugin",
            &format!("--source-keyring={source}"),
            &format!("--source-keyring-configuration-dir={data}"),
            &format!("--destination-keyring={destination}"),
            &format!("--destination-keyring-configuration-dir={data}"),
        ])
        .output()
        .expect("run mysql_migrate_keyring");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "mysql_migrate_keyring {source} -> {destination} failed:\n{text}"
    );
}

fn keyring_file_cnf(name: &str, file: &str) {
    std::fs::write(
        component::data_dir(name).join("component_keyring_file.cnf"),
        format!("{{\"path\": \"/srv/mysql/{name}/{file}\", \"read_only\": false}}\n"),
    )
    .unwrap();
}

#[test]
fn mysql_migrate_keyring_from_keyring_file_and_back() {
    let kmip = OwnKmip::start();
    let name = "comp-migrate";
    let dir = component::conf_dir_in_chroot(&kmip.conf_dir, name, None);
    component::plugin_dir();
    let db = Instance::fresh(name, &[]);
    let _ = std::fs::remove_file(component::instance_dir(name).join("keys-1"));
    let _ = std::fs::remove_file(component::instance_dir(name).join("keys-2"));

    // 1. component_keyring_file holds the keys.
    keyring_file_cnf(name, "keys-1");
    component::configure(name, Some(component::MANIFEST_FILE), Some(&cnf(&dir, "")));
    db.restart(&[]);
    assert_active_as(&db, "component_keyring_file");
    db.udf();
    db.must_sql("SELECT keyring_key_store('MigratedKey', 'SECRET', 'travels')");
    db.must_sql("CREATE DATABASE IF NOT EXISTS e2e");
    db.must_sql("CREATE TABLE e2e.t (a INT) ENCRYPTION='Y'");
    db.must_sql("INSERT INTO e2e.t VALUES (42)");

    // 2. keyring_file -> component_keyring_okv, then the server runs on ours.
    mysql::script(&["stop", name]).unwrap();
    migrate(name, "component_keyring_file", "component_keyring_okv");
    component::configure(name, Some(component::MANIFEST_OKV), None);
    db.restart(&[]);
    assert_active_as(&db, "component_keyring_okv");
    assert_eq!(db.must_sql("SELECT a FROM e2e.t"), "42");
    assert_eq!(
        db.must_sql("SELECT keyring_key_fetch('MigratedKey')"),
        "travels"
    );
    // A master key that only ours has.
    db.must_sql("ALTER INSTANCE ROTATE INNODB MASTER KEY");
    db.must_sql("INSERT INTO e2e.t VALUES (43)");

    // 3. component_keyring_okv -> a new keyring_file file, then the server runs on that.
    mysql::script(&["stop", name]).unwrap();
    keyring_file_cnf(name, "keys-2");
    migrate(name, "component_keyring_okv", "component_keyring_file");
    component::configure(name, Some(component::MANIFEST_FILE), None);
    db.restart(&[]);
    assert_active_as(&db, "component_keyring_file");
    assert_eq!(db.must_sql("SELECT a FROM e2e.t ORDER BY a"), "42\n43");
    assert_eq!(
        db.must_sql("SELECT keyring_key_fetch('MigratedKey')"),
        "travels"
    );
    let keys = std::fs::read_to_string(component::instance_dir(name).join("keys-2")).unwrap();
    assert!(keys.contains("\"data_id\":\"MigratedKey\""), "{keys}");
    let innodb_keys = keys.matches("\"data_id\":\"INNODBKey-").count();
    assert_eq!(innodb_keys, 2, "{keys}");
    drop(db);
    drop(kmip);
}
