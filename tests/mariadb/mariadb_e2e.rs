//! End to end: the same kmip_key_management.so in a real MariaDB 10.11 (Debian 12, on the host)
//! and 11.8 (Debian trixie, in a chroot), against a real PyKMIP server: every encryption option,
//! tables with ENCRYPTION_KEY_ID 1 and 5, restarts, rotation and background re-encryption,
//! mariadb-backup.

#[path = "../common/mod.rs"]
mod common;

use common::mariadb::{
    self, Instance, Target, create_keys, encryption_args, plugin_args, versions_on_server,
};
use common::pykmip::{lab, unique};

const KEYRING_OKV: &str = env!("CARGO_BIN_EXE_keyring-okv");

const ROWS: u32 = 2000;

fn fill(db: &Instance) {
    db.must_sql(&format!(
        "SET SESSION max_recursive_iterations = 100000;
         CREATE DATABASE d;
         CREATE TABLE d.t1 (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB ENCRYPTION_KEY_ID=1;
         CREATE TABLE d.t5 (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB ENCRYPTION_KEY_ID=5;
         CREATE TABLE d.a (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=Aria;
         INSERT INTO d.t1 WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM s WHERE n<{ROWS}) SELECT n, CONCAT('one-', n) FROM s;
         INSERT INTO d.t5 SELECT id, CONCAT('five-', id) FROM d.t1;
         INSERT INTO d.a SELECT id, CONCAT('aria-', id) FROM d.t1;"
    ));
}

fn check_contents(db: &Instance) {
    assert_eq!(
        db.must_sql("SELECT COUNT(*), MAX(v) FROM d.t1 WHERE v LIKE 'one-%'"),
        format!("{ROWS}\tone-999")
    );
    assert_eq!(db.must_sql("SELECT v FROM d.t5 WHERE id=1234"), "five-1234");
    assert_eq!(
        db.must_sql("SELECT COUNT(*) FROM d.a WHERE v LIKE 'aria-%'"),
        ROWS.to_string()
    );
    // The binary log is encrypted with key 1; the server reads it back.
    assert!(db.must_sql("SHOW BINLOG EVENTS").contains("d.t5"));
    // A sort large enough for a temporary file (encrypt_tmp_files).
    assert_eq!(
        db.must_sql(
            "SELECT COUNT(DISTINCT v) FROM (SELECT a.v FROM d.t1 a JOIN d.t5 b ON a.id <= b.id AND b.id < a.id + 30 ORDER BY a.v DESC) x"
        ),
        ROWS.to_string()
    );
}

fn key_of(db: &Instance, table: &str) -> String {
    db.must_sql(&format!(
        "SELECT CONCAT(CURRENT_KEY_ID, ':', MIN_KEY_VERSION, ':', CURRENT_KEY_VERSION) FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME='{table}'"
    ))
}

fn full_cycle(target: Target) {
    let namespace = unique("mdb-e2e");
    create_keys(KEYRING_OKV, &lab().conf_dir, &namespace, &[1, 5]);
    let db = Instance::new(target, &format!("e2e-{target:?}").to_lowercase());
    let conf = db.conf(&lab().conf_dir);
    let mut args = plugin_args(&conf, &namespace);
    args.extend(encryption_args());
    // No background look-ups during the test: KMIP traffic then comes only from the server's
    // own key calls.
    args.push("--kmip-key-management-cache-version-timeout=3600000".into());
    db.must_start(&args);

    assert!(
        db.must_sql("SELECT VERSION()").starts_with(target.series()),
        "wrong server for {target:?}"
    );
    assert_eq!(
        db.must_sql(
            "SELECT PLUGIN_STATUS, LOAD_OPTION FROM information_schema.PLUGINS WHERE PLUGIN_NAME='kmip_key_management'"
        ),
        "ACTIVE\tFORCE"
    );
    let fips = db.must_sql(
        "SELECT GROUP_CONCAT(VARIABLE_VALUE ORDER BY VARIABLE_NAME SEPARATOR '|') FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME LIKE 'KMIP_KEY_MANAGEMENT_FIPS%'",
    );
    if cfg!(feature = "fips") {
        assert!(fips.starts_with("ON|AWS-LC FIPS "), "{fips}");
    } else {
        assert_eq!(fips, "OFF|", "mode and module");
    }
    fill(&db);
    assert_eq!(key_of(&db, "d/t1"), "1:1:1");
    assert_eq!(key_of(&db, "d/t5"), "5:1:1");

    // Page writes ask for the latest version every time; none of them reaches the KMIP server.
    let kmip_before = db.status("requests");
    let latest_before = db.status("latest_version_requests");
    db.must_sql(
        "UPDATE d.t5 SET v = CONCAT('five-', id); UPDATE d.t1 SET v = CONCAT('one-', id);
         SET GLOBAL innodb_max_dirty_pages_pct = 0;",
    );
    assert!(
        db.wait_for(
            &format!(
                "SELECT VARIABLE_VALUE > {latest_before} + 20 FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='KMIP_KEY_MANAGEMENT_LATEST_VERSION_REQUESTS'"
            ),
            "1",
            60
        ),
        "no encrypted page writes seen"
    );
    assert_eq!(
        db.status("requests"),
        kmip_before,
        "get_latest_key_version went to the KMIP server"
    );

    // Restart and read back.
    db.restart().expect("restart");
    check_contents(&db);
    assert!(db.status("key_fetches") >= 2);

    // Rotation: two new versions of key 5, then re-encryption by the background threads
    // (rotate_key_age 1: pages older than latest - 1 are rewritten).
    db.must_sql("SET GLOBAL kmip_key_management_rotate_key = 5");
    db.must_sql("SET GLOBAL kmip_key_management_rotate_key = 5");
    assert_eq!(db.must_sql("SELECT @@kmip_key_management_rotate_key"), "0");
    assert!(
        db.wait_for(
            "SELECT CONCAT(MIN_KEY_VERSION, ':', CURRENT_KEY_VERSION) FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME='d/t5'",
            "3:3",
            120
        ),
        "d/t5 was not re-encrypted with version 3: {}",
        key_of(&db, "d/t5")
    );
    // -1 rotates every key in use: key 1 -> 2, key 5 -> 4.
    db.must_sql("SET GLOBAL kmip_key_management_rotate_key = -1");
    assert_eq!(db.status("rotations"), 4);
    let mut versions = versions_on_server(KEYRING_OKV, &lab().conf_dir, &namespace);
    versions.sort_unstable();
    assert_eq!(
        versions,
        vec![(1, 1), (1, 2), (5, 1), (5, 2), (5, 3), (5, 4)]
    );
    // A key id that does not exist is refused with the reason, and nothing is made.
    let err = db
        .sql("SET GLOBAL kmip_key_management_rotate_key = 4242")
        .expect_err("rotating a missing key must fail");
    assert!(err.contains("key 4242 does not exist"), "{err}");
    assert_eq!(
        versions_on_server(KEYRING_OKV, &lab().conf_dir, &namespace).len(),
        6
    );
    // A table with a key id that does not exist is refused; the server goes on.
    let err = db
        .sql("CREATE TABLE d.t9 (a INT) ENCRYPTION_KEY_ID=4242")
        .expect_err("a missing key id must be refused");
    assert!(
        err.contains("1005") || err.contains("ENCRYPTION_KEY_ID"),
        "{err}"
    );

    db.restart().expect("restart after rotation");
    check_contents(&db);
    assert!(key_of(&db, "d/t5").starts_with("5:"));

    // mariadb-backup loads the plugin with the server's settings, for --backup and --prepare.
    let backup = format!("{}/backup", db.inner());
    let socket = format!("--socket={}/mariadbd.sock", db.inner());
    let out = db.run(&[
        "mariadb-backup",
        "--backup",
        "--user=root",
        &socket,
        &format!("--target-dir={backup}"),
    ]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mariadb-backup --backup:\n{text}");
    assert!(text.contains("completed OK"), "{text}");
    let out = db.run(&[
        "mariadb-backup",
        "--prepare",
        &format!("--target-dir={backup}"),
    ]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mariadb-backup --prepare:\n{text}");
    assert!(text.contains("completed OK"), "{text}");

    assert_eq!(db.plugin_errors(), Vec::<String>::new());

    // The prepared backup restores into a new datadir and opens with the same keys.
    let restored = Instance::new(target, &format!("e2e-restore-{target:?}").to_lowercase());
    std::fs::create_dir_all(restored.path()).unwrap();
    // Already initialised: the start must not run mariadb-install-db over the copy.
    std::fs::write(restored.path().join(".initialized"), "").unwrap();
    let out = restored.run(&[
        "mariadb-backup",
        "--copy-back",
        &format!("--target-dir={backup}"),
        &format!("--datadir={}/data", restored.inner()),
    ]);
    assert!(
        out.status.success(),
        "mariadb-backup --copy-back:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    restored.must_start(&args);
    assert_eq!(
        restored.must_sql("SELECT COUNT(*), MAX(v) FROM d.t1 WHERE v LIKE 'one-%'"),
        format!("{ROWS}\tone-999")
    );
    assert_eq!(
        restored.must_sql("SELECT v FROM d.t5 WHERE id=1234"),
        "five-1234"
    );
    assert_eq!(
        restored.must_sql("SELECT COUNT(*) FROM d.a"),
        ROWS.to_string()
    );
    assert_eq!(restored.plugin_errors(), Vec::<String>::new());
    let _ = mariadb::script(target, &["reset", &restored.name]);
    let _ = mariadb::script(target, &["reset", &db.name]);
}

#[test]
fn mariadb_10_11_host() {
    full_cycle(Target::Host);
}

#[test]
fn mariadb_11_8_chroot() {
    full_cycle(Target::Chroot);
}
