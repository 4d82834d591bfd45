//! End to end: a real mysqld 9.7 loads keyring_okv.so with early-plugin-load and keeps its
//! InnoDB, binary log and keyring_udf keys in a real PyKMIP server.

#[path = "../common/mod.rs"]
mod common;

use common::mysql::{self, Instance};
use common::pykmip::{lab, remove_udf_leftovers, tool};
use common::tcp_proxy::TcpProxy;

/// Copies the PyKMIP lab's conf dir into the chroot at /srv/<name>, optionally with another
/// okvclient.ora, and returns the path mysqld sees.
fn conf_dir_in_chroot(name: &str, okvclient_ora: Option<String>) -> String {
    let dest = format!("/srv/{name}");
    let staging = tempfile::tempdir().unwrap();
    let copy = staging.path().join("conf");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&lab().conf_dir)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    if let Some(text) = okvclient_ora {
        std::fs::write(copy.join("okvclient.ora"), text).unwrap();
    }
    let _ = std::fs::remove_dir_all(mysql::root().join(dest.trim_start_matches('/')));
    mysql::copy_in(&copy, &dest);
    dest
}

fn plugin_args(conf_dir: &str) -> Vec<String> {
    vec![
        "--early-plugin-load=keyring_okv.so".to_string(),
        format!("--loose-keyring_okv_conf_dir={conf_dir}"),
    ]
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// keyring_udf reports a keyring failure either as an SQL error or as NULL.
fn refused(result: &Result<String, String>) -> bool {
    match result {
        Err(_) => true,
        Ok(value) => value == "NULL",
    }
}

fn assert_plugin_active(db: &Instance) {
    let status = db.must_sql(
        "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME='keyring_okv'",
    );
    assert_eq!(status, "ACTIVE", "plugin log: {:?}", db.plugin_log());
}

fn assert_no_plugin_errors(db: &Instance) {
    let errors: Vec<String> = db
        .plugin_log()
        .into_iter()
        .filter(|l| l.contains("[ERROR]"))
        .collect();
    assert!(
        errors.is_empty(),
        "plugin errors in the error log: {errors:#?}"
    );
}

/// The spec's SQL and the other keyring_udf functions, checked on the KMIP server too.
fn keyring_udf_round(db: &Instance, key: &str) {
    let name = format!("mysql-keyring:root@localhost:{key}");
    let secret = format!("{key}_secret");
    remove_udf_leftovers(&[key, &secret]);
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_generate('{key}', 'AES', 32)")),
        "1"
    );
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_type_fetch('{key}')")),
        "AES"
    );
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_length_fetch('{key}')")),
        "32"
    );
    assert_eq!(
        db.must_sql(&format!("SELECT LENGTH(keyring_key_fetch('{key}'))")),
        "32"
    );
    let on_server = tool(&["find", &name]);
    assert_eq!(on_server.as_array().unwrap().len(), 1, "{on_server}");
    assert_eq!(on_server[0]["state"], "ACTIVE");
    let server_hex = tool(&["get", on_server[0]["uid"].as_str().unwrap()])["value_hex"]
        .as_str()
        .unwrap()
        .to_uppercase();
    assert_eq!(
        db.must_sql(&format!("SELECT HEX(keyring_key_fetch('{key}'))")),
        server_hex
    );
    // A duplicate generate fails and leaves the key.
    let duplicate = db.sql(&format!("SELECT keyring_key_generate('{key}', 'AES', 16)"));
    assert!(refused(&duplicate), "{duplicate:?}");
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_length_fetch('{key}')")),
        "32"
    );
    // SECRET store and fetch.
    assert_eq!(
        db.must_sql(&format!(
            "SELECT keyring_key_store('{secret}', 'SECRET', 'hello world')"
        )),
        "1"
    );
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_fetch('{secret}')")),
        "hello world"
    );
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_type_fetch('{secret}')")),
        "SECRET"
    );
    // Unsupported types are refused.
    let rsa = db.sql(&format!(
        "SELECT keyring_key_generate('{key}_rsa', 'RSA', 128)"
    ));
    assert!(refused(&rsa), "{rsa:?}");
    // Remove, then fetch is NULL and the object is destroyed on the server.
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_remove('{key}')")),
        "1"
    );
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_fetch('{key}') IS NULL")),
        "1"
    );
    assert_eq!(tool(&["find", &name]).as_array().unwrap().len(), 0);
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_remove('{secret}')")),
        "1"
    );
}

fn encrypted_table_survives_restart(db: &Instance, args: &[&str]) {
    db.must_sql("CREATE DATABASE IF NOT EXISTS e2e");
    db.must_sql("CREATE TABLE e2e.t (a INT) ENCRYPTION='Y'");
    db.must_sql("INSERT INTO e2e.t VALUES (42)");
    db.restart(args);
    assert_plugin_active(db);
    assert_eq!(db.must_sql("SELECT a FROM e2e.t"), "42");
}

/// Everything the server keeps in the keyring: keyring_udf keys, an encrypted table across
/// restarts, InnoDB and binary log master key rotation, and the keys listed by
/// performance_schema with their owners.
fn full_round(db: &Instance, args: &[&str], udf_key: &str) {
    assert_plugin_active(db);
    db.udf();

    keyring_udf_round(db, udf_key);

    encrypted_table_survives_restart(db, args);
    db.must_sql("ALTER INSTANCE ROTATE INNODB MASTER KEY");
    db.restart(args);
    assert_eq!(db.must_sql("SELECT a FROM e2e.t"), "42");

    db.must_sql("SET PERSIST binlog_encryption = ON");
    db.must_sql("FLUSH BINARY LOGS");
    db.must_sql("ALTER INSTANCE ROTATE BINLOG MASTER KEY");
    db.restart(args);
    assert_eq!(db.must_sql("SELECT @@binlog_encryption"), "1");
    db.must_sql("FLUSH BINARY LOGS");
    let logs = db.must_sql("SHOW BINARY LOGS");
    assert!(
        logs.lines().last().is_some_and(|l| l.ends_with("Yes")),
        "{logs}"
    );

    // Kept on the server after the test; one name per round, as rounds share the server.
    let kept = format!("{udf_key}Kept");
    remove_udf_leftovers(&[&kept]);
    db.must_sql(&format!(
        "SELECT keyring_key_store('{kept}', 'SECRET', 'x')"
    ));
    let keys = db.must_sql("SELECT KEY_ID, KEY_OWNER FROM performance_schema.keyring_keys");
    assert!(
        keys.lines()
            .any(|l| l.starts_with("INNODBKey-") && l.ends_with('\t')),
        "{keys}"
    );
    assert!(
        keys.lines().any(|l| l.starts_with("MySQLReplicationKey_")),
        "{keys}"
    );
    assert!(
        keys.lines().any(|l| l == format!("{kept}\troot@localhost")),
        "{keys}"
    );
    // The InnoDB master key is on the KMIP server under its documented name.
    let innodb = keys
        .lines()
        .find(|l| l.starts_with("INNODBKey-"))
        .unwrap()
        .trim_end();
    let found = tool(&["find", &format!("mysql-keyring::{innodb}")]);
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");

    assert_no_plugin_errors(db);
}

#[test]
fn innodb_binlog_udf_and_performance_schema_through_keyring_okv() {
    let dir = conf_dir_in_chroot("okv-main", None);
    let args = plugin_args(&dir);
    let args = as_strs(&args);
    let db = Instance::fresh("e2e-main", &args);
    // The FIPS build (bash scripts/fips.sh test) says so; the default build says OFF.
    let fips = db.must_sql(
        "SELECT VARIABLE_VALUE FROM performance_schema.global_status WHERE VARIABLE_NAME='Keyring_okv_fips_mode'",
    );
    let module = db.must_sql(
        "SELECT VARIABLE_VALUE FROM performance_schema.global_status WHERE VARIABLE_NAME='Keyring_okv_fips_module'",
    );
    if cfg!(feature = "fips") {
        assert_eq!(fips, "ON");
        assert!(module.starts_with("AWS-LC FIPS "), "{module}");
    } else {
        assert_eq!(fips, "OFF");
        assert_eq!(module, "");
    }
    full_round(&db, &args, "MyKey");
}

#[test]
fn dead_server_with_a_live_standby_keeps_everything_working() {
    // A port that refuses connections and stays reserved for the whole test.
    let dead = TcpProxy::start(([127, 0, 0, 1], lab().port).into());
    dead.set_refuse(true);
    let dead_port = dead.addr.port();
    let ora = format!(
        "SERVER=127.0.0.1:{dead_port}\nSTANDBY_SERVER=127.0.0.1:{}\n",
        lab().port
    );
    let dir = conf_dir_in_chroot("okv-failover", Some(ora));
    let args = plugin_args(&dir);
    let args = as_strs(&args);
    let db = Instance::fresh("e2e-failover", &args);
    full_round(&db, &args, "FailoverKey");
    assert!(
        db.plugin_log()
            .iter()
            .any(|l| l.contains("[Warning]") && l.contains("STANDBY_SERVER")),
        "the failover is reported: {:#?}",
        db.plugin_log()
    );
}

#[test]
fn empty_conf_dir_warns_then_set_global_makes_the_keyring_work() {
    let db = Instance::fresh("e2e-empty", &["--early-plugin-load=keyring_okv.so"]);
    assert_plugin_active(&db);
    let log = db.plugin_log();
    assert!(
        log.iter().any(|l| l.contains("[Warning]") && l.contains("Plugin keyring_okv reported: 'For keyring_okv to be initialized, please point the keyring_okv_conf_dir variable to a directory containing Oracle Key Vault configuration file and ssl materials'")),
        "{log:#?}"
    );
    db.udf();
    let early = db.sql("SELECT keyring_key_generate('EarlyKey', 'AES', 32)");
    assert!(refused(&early), "{early:?}");
    assert!(
        db.sql("CREATE TABLE test.enc (a INT) ENCRYPTION='Y'")
            .is_err()
    );

    let bad = db.sql("SET GLOBAL keyring_okv_conf_dir = '/srv/no-such-dir'");
    assert!(bad.is_err(), "a missing directory is refused");
    assert_eq!(db.must_sql("SELECT @@keyring_okv_conf_dir"), "");
    assert!(
        db.plugin_log()
            .iter()
            .any(|l| l.contains("/srv/no-such-dir"))
    );

    let dir = conf_dir_in_chroot("okv-late", None);
    db.must_sql(&format!("SET GLOBAL keyring_okv_conf_dir = '{dir}'"));
    assert_eq!(db.must_sql("SELECT @@keyring_okv_conf_dir"), dir);
    keyring_udf_round(&db, "LateKey");
    db.must_sql("CREATE DATABASE IF NOT EXISTS e2e");
    db.must_sql("CREATE TABLE e2e.late (a INT) ENCRYPTION='Y'");
    db.must_sql("INSERT INTO e2e.late VALUES (7)");
    assert_eq!(db.must_sql("SELECT a FROM e2e.late"), "7");
}
