//! The start-time memory in a real mysqld 9.7 with PyKMIP, at the defaults (no key cache): a
//! restart with many encrypted tables asks the KMIP server for the InnoDB master key once, not
//! once per tablespace, and once the server is ready every read asks the KMIP server again, as
//! the key cache's absence is documented to mean. Both the plugin and the component.

#[path = "../common/mod.rs"]
mod common;

use common::component;
use common::mysql::Instance;
use common::pykmip::lab;

/// Encrypted tables made before the restart.
const TABLES: usize = 60;

fn make_tables(db: &Instance) {
    let sql: String = (0..TABLES)
        .map(|i| {
            format!("CREATE TABLE t{i} (a INT) ENCRYPTION='Y'; INSERT INTO t{i} VALUES ({i});")
        })
        .collect();
    db.must_sql(&format!("CREATE DATABASE sm; USE sm; {sql}"));
}

/// What the memory's closing line says: (why it ended, reads answered from it, reads that
/// asked the KMIP server), from the last start.
fn ended_line(lines: &[String]) -> (String, u64, u64) {
    let line = lines
        .iter()
        .rev()
        .find(|l| l.contains("start-time memory of the InnoDB and binary log keys ended"))
        .unwrap_or_else(|| panic!("no closing line of the start-time memory in {lines:#?}"));
    let after = line.split("ended (").nth(1).unwrap();
    let (why, rest) = after.split_once("): ").unwrap();
    let numbers: Vec<u64> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    (why.to_string(), numbers[0], numbers[1])
}

/// The checks after a restart that made `start_requests`: the reads of a `CREATE TABLE` once
/// the server is ready ask the KMIP server (`requests_now`), and the memory's closing line
/// (`lines`, read after that) says the start ended it, having answered the tablespaces' reads.
fn check_restart(
    db: &Instance,
    start_requests: u64,
    requests_now: impl Fn() -> u64,
    lines: impl Fn() -> Vec<String>,
) {
    // Before the memory: one request per tablespace InnoDB validated, TABLES and more.
    assert!(
        start_requests <= 10,
        "the restart made {start_requests} KMIP requests for {TABLES} encrypted tables"
    );
    // Ready: a CREATE TABLE reads the master key at least twice, each from the KMIP server.
    let before = requests_now();
    db.must_sql("CREATE TABLE sm.after_start (a INT) ENCRYPTION='Y'");
    let after = requests_now();
    assert!(
        after >= before + 2,
        "reads after the start were answered from memory ({before} -> {after} requests)"
    );
    assert_eq!(db.must_sql("SELECT a FROM sm.t7"), "7");
    let lines = lines();
    let (why, served, asked) = ended_line(&lines);
    assert_eq!(why, "the server has started", "{lines:#?}");
    assert!(
        served + 1 >= TABLES as u64,
        "only {served} reads were answered from memory ({asked} asked the server)"
    );
}

#[test]
fn plugin_restart_with_many_encrypted_tables_asks_for_the_master_key_once() {
    let dir = component::conf_dir_in_chroot(&lab().conf_dir, "okv-start-memory-p", None);
    let args = [
        "--early-plugin-load=keyring_okv.so".to_string(),
        format!("--loose-keyring_okv_conf_dir={dir}"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let db = Instance::fresh("start_memory_p", &args);
    assert_eq!(db.must_sql("SELECT @@keyring_okv_cache_keys"), "0");
    make_tables(&db);
    db.restart(&args);
    let requests = || {
        db.must_sql(
            "SELECT VARIABLE_VALUE FROM performance_schema.global_status WHERE VARIABLE_NAME='Keyring_okv_requests'",
        )
        .parse::<u64>()
        .unwrap()
    };
    let start_requests = requests();
    check_restart(&db, start_requests, requests, || db.plugin_log());
}

#[test]
fn component_restart_with_many_encrypted_tables_asks_for_the_master_key_once() {
    let dir = component::conf_dir_in_chroot(&lab().conf_dir, "okv-start-memory-c", None);
    let db = component::fresh("start_memory_c", &component::cnf(&dir, ""));
    assert_eq!(component::status_value(&db, "Cache_keys"), "No");
    make_tables(&db);
    db.restart(&[]);
    let requests = || {
        component::status_value(&db, "Requests")
            .parse::<u64>()
            .unwrap()
    };
    let start_requests = requests();
    check_restart(&db, start_requests, requests, || {
        component::component_log(&db)
    });
}
