//! The component's sealed key cache in the real mysqld 9.7: with `sealed_cache_max_age_hours`,
//! a restart while no KMIP server answers starts, reads its encrypted tables and binary logs,
//! refuses rotations, and works normally again once a server answers, without a restart; with
//! the setting off, a restart during the outage behaves as before.
//!
//! The KMIP server is a PyKMIP of the test's own behind a relay the test cuts ("down": every
//! connection closed at once) and restores.

#[path = "../common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::component::{self, cnf, component_log, status_value};
use common::fault_server::CutProxy;
use common::mysql::{self, Instance};
use common::pykmip::Named;

const NAME: &str = "comp-sealed";

/// Waits (at most `secs`) until the status row has the wanted value.
fn wait_row(db: &Instance, key: &str, want: impl Fn(&str) -> bool, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let now = status_value(db, key);
        if want(&now) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{key} is still {now} after {secs} s; log: {:#?}",
            component_log(db)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Reads every encrypted binary log (its file key comes from the keyring).
fn read_encrypted_binlogs(db: &Instance) -> usize {
    let logs = db.must_sql("SHOW BINARY LOGS");
    let mut read = 0;
    for log in logs.lines().filter(|l| l.ends_with("Yes")) {
        let file = log.split('\t').next().unwrap();
        db.must_sql(&format!("SHOW BINLOG EVENTS IN '{file}' LIMIT 3"));
        read += 1;
    }
    read
}

#[test]
fn restart_during_a_kmip_outage_runs_on_the_sealed_cache_read_only() {
    let kmip = Named::start("cs_sealed", "p256");
    let proxy = CutProxy::start(SocketAddr::from(([127, 0, 0, 1], kmip.port())));
    let ora = format!("SERVER=127.0.0.1:{}\n", proxy.port());
    let dir = component::conf_dir_in_chroot(&kmip.conf_dir(), NAME, Some(ora));
    let sealed_cnf = cnf(
        &dir,
        &format!(
            "\"sealed_cache_max_age_hours\": 24, \"sealed_cache_user_keys\": true, \"sealed_cache_dir\": \"{dir}\""
        ),
    );
    let db = component::fresh(NAME, &sealed_cnf);
    assert_eq!(status_value(&db, "Component_status"), "Active");
    assert_eq!(status_value(&db, "Sealed_cache_max_age_hours"), "24");

    // InnoDB and binary log keys, and a keyring_udf key whose bytes we know.
    db.must_sql("SET PERSIST binlog_encryption = ON");
    db.must_sql("CREATE DATABASE IF NOT EXISTS sealed");
    db.must_sql("CREATE TABLE sealed.t (a INT PRIMARY KEY) ENCRYPTION='Y'");
    db.must_sql("INSERT INTO sealed.t VALUES (1), (2), (3)");
    db.must_sql("FLUSH BINARY LOGS");
    db.must_sql("INSERT INTO sealed.t VALUES (4)");
    db.udf();
    db.must_sql("SELECT keyring_key_generate('SealedUdfKey', 'AES', 32)");
    let udf_hex = db.must_sql("SELECT HEX(keyring_key_fetch('SealedUdfKey'))");
    assert_eq!(udf_hex.len(), 64, "{udf_hex}");
    // Restarted once while the server answers: every key InnoDB and the binary log need at
    // start is fetched, so kept.
    db.restart(&[]);
    let kept: usize = wait_row(
        &db,
        "Sealed_cache_keys",
        |v| v.parse::<usize>().unwrap() >= 2,
        60,
    )
    .parse()
    .unwrap();
    assert_eq!(status_value(&db, "Sealed_cache_serving"), "No");

    let file = mysql::root()
        .join(dir.trim_start_matches('/'))
        .join("component_keyring_okv.sealed");
    let meta = std::fs::metadata(&file).expect("the sealed key cache file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let bytes = std::fs::read(&file).unwrap();
    let udf_bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&udf_hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert!(!contains(&bytes, &udf_bytes), "key bytes in the file");
    assert!(!contains(&bytes, udf_hex.as_bytes()), "key hex in the file");
    assert!(!contains(&bytes, udf_hex.to_lowercase().as_bytes()));

    // The outage: mysqld restarts and runs on the sealed cache.
    proxy.cut();
    db.restart(&[]);
    assert_eq!(status_value(&db, "Component_status"), "Active");
    assert_eq!(
        db.must_sql("SELECT GROUP_CONCAT(a ORDER BY a) FROM sealed.t"),
        "1,2,3,4"
    );
    assert!(read_encrypted_binlogs(&db) >= 1);
    assert_eq!(status_value(&db, "Sealed_cache_serving"), "Yes");
    let log = component_log(&db);
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("answering keys read-only from the sealed key cache"))
            .count(),
        1,
        "{log:#?}"
    );
    // Rotations are refused, with a line that says why.
    let rotate = db.sql("ALTER INSTANCE ROTATE INNODB MASTER KEY");
    assert!(rotate.is_err(), "rotation during the outage: {rotate:?}");
    assert!(
        component_log(&db)
            .iter()
            .any(|l| l.contains("keys are being served read-only from the sealed key cache")),
        "{:#?}",
        component_log(&db)
    );
    assert!(db.sql("ALTER INSTANCE ROTATE BINLOG MASTER KEY").is_err());

    // The server comes back: the cache is confirmed, the keyring is the server again, and a
    // rotation works without a restart.
    proxy.restore();
    wait_row(&db, "Sealed_cache_serving", |v| v == "No", 90);
    assert!(
        component_log(&db)
            .iter()
            .any(|l| l.contains("a KMIP server answers again")),
        "{:#?}",
        component_log(&db)
    );
    db.must_sql("ALTER INSTANCE ROTATE INNODB MASTER KEY");
    db.must_sql("ALTER INSTANCE ROTATE BINLOG MASTER KEY");
    db.must_sql("INSERT INTO sealed.t VALUES (5)");
    let now: usize = status_value(&db, "Sealed_cache_keys").parse().unwrap();
    assert!(now >= kept, "{now} < {kept}");

    // With the key cache on too, the sealed keys fill it at start in one message: mysqld's
    // start then reads them from memory (only names it asks for that are not keys, such as
    // the binary log's recovery keys, are looked up on the server).
    let both = cnf(
        &dir,
        &format!(
            "\"sealed_cache_max_age_hours\": 24, \"sealed_cache_user_keys\": true, \"cache_keys\": true, \"sealed_cache_dir\": \"{dir}\""
        ),
    );
    component::configure(NAME, Some(component::MANIFEST_OKV), Some(&both));
    db.restart(&[]);
    let sealed_keys: usize = status_value(&db, "Sealed_cache_keys").parse().unwrap();
    let cached: usize = status_value(&db, "Cached_keys").parse().unwrap();
    assert!(
        cached >= sealed_keys.min(2),
        "{cached} keys cached at start, {sealed_keys} in the sealed cache"
    );
    let requests: u64 = status_value(&db, "Requests").parse().unwrap();
    assert!(
        requests <= sealed_keys as u64 + 6,
        "{requests} requests at start for {sealed_keys} sealed keys"
    );
    eprintln!(
        "start with cache_keys and the sealed cache: {requests} requests, {cached} keys cached, {sealed_keys} sealed"
    );
    assert_eq!(
        db.must_sql("SELECT GROUP_CONCAT(a ORDER BY a) FROM sealed.t"),
        "1,2,3,4,5"
    );
    component::configure(NAME, Some(component::MANIFEST_OKV), Some(&sealed_cnf));
    db.restart(&[]);

    // A key removed through the keyring leaves the sealed cache at once.
    db.must_sql("SELECT keyring_key_remove('SealedUdfKey')");

    // With the setting off the cache is not used: the same outage is what it was before.
    component::configure(NAME, Some(component::MANIFEST_OKV), Some(&cnf(&dir, "")));
    db.restart(&[]);
    assert_eq!(status_value(&db, "Sealed_cache_max_age_hours"), "0");
    proxy.cut();
    let restarted = mysql::script(&["restart", NAME]);
    let table = if restarted.is_ok() {
        db.sql("SELECT COUNT(*) FROM sealed.t")
    } else {
        Err("mysqld did not start".to_string())
    };
    assert!(
        table.is_err(),
        "without the sealed cache the encrypted table opened during the outage: {table:?}"
    );
    proxy.restore();

    // Wrong permissions: the file is refused, and nothing is served from it.
    component::configure(NAME, Some(component::MANIFEST_OKV), Some(&sealed_cnf));
    let _ = mysql::script(&["restart", NAME]);
    // Changed while mysqld is down: a running one writes the file anew (mode 0600) when it
    // stops.
    mysql::script(&["stop", NAME]).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    proxy.cut();
    let restarted = mysql::script(&["start", NAME]);
    if restarted.is_ok() {
        assert!(db.sql("SELECT COUNT(*) FROM sealed.t").is_err());
    }
    let log = db.log();
    assert!(
        log.lines()
            .any(|l| l.contains("component_keyring_okv.sealed") && l.contains("refused")),
        "{}",
        db.log_tail(30)
    );
    proxy.restore();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let _ = mysql::script(&["stop", NAME]);
}
