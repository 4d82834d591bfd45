//! The sealed key cache in a real MariaDB (10.11 and 11.8): with
//! kmip_key_management_sealed_cache_max_age_hours set, mariadbd starts while no KMIP server
//! answers, opens its encrypted tables and binary log from the cached key versions, refuses
//! rotation as read-only, and goes back to the KMIP server by itself once it answers. Without
//! the setting such a start fails as before; the file holds no key bytes in the clear, a file
//! others may read is refused, and so are keys confirmed longer ago than the maximum age.

#[path = "../common/mod.rs"]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::mariadb::{
    Instance, Target, create_keys, encryption_args, plugin_args, versions_on_server,
};
use common::pykmip::{lab, tool, unique};
use common::tcp_proxy::TcpProxy;
use okv_core::config::load_conf_dir;
use okv_core::sealed::{self, file};

const KEYRING_OKV: &str = env!("CARGO_BIN_EXE_keyring-okv");
const SEALED_FILE: &str = "kmip_key_management.sealed";
const ROWS: u32 = 500;
/// How long the plugin may take to notice that the KMIP server answers again (it asks every
/// 10 s while none answers), with room for a loaded machine.
const BACK_WITHIN_SECS: u64 = 180;

#[test]
fn sealed_key_cache_10_11_host() {
    scenario(Target::Host, "sealed_host");
}

#[test]
fn sealed_key_cache_11_8_chroot() {
    scenario(Target::Chroot, "sealed_chroot");
}

fn status_text(db: &Instance, name: &str) -> String {
    db.must_sql(&format!(
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='KMIP_KEY_MANAGEMENT_{}'",
        name.to_uppercase()
    ))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn check_rows(db: &Instance) {
    assert_eq!(
        db.must_sql("SELECT COUNT(*), MAX(id), SUM(v LIKE 'row-%') FROM d.t"),
        format!("{ROWS}\t{ROWS}\t{ROWS}")
    );
    assert_eq!(db.must_sql("SELECT v FROM d.e WHERE id=7"), "row-7");
    // The binary log is encrypted (with key 1); reading it needs the key.
    let events = db.must_sql("SHOW BINLOG EVENTS");
    assert!(
        events.contains("d.t") || events.contains("CREATE TABLE d.t"),
        "{events}"
    );
}

fn scenario(target: Target, instance: &str) {
    let started = std::time::Instant::now();
    let proxy = TcpProxy::start(([127, 0, 0, 1], lab().port).into());
    let staging = tempfile::tempdir().unwrap();
    let conf = staging.path().join("conf");
    common::mariadb::conf_through(&lab().conf_dir, &conf, proxy.addr, "");
    let namespace = unique("sealed");
    create_keys(KEYRING_OKV, &lab().conf_dir, &namespace, &[1, 2]);

    let db = Instance::new(target, instance);
    let inner_conf = db.conf(&conf);
    let sealed = db.path().join("conf").join(SEALED_FILE);
    let mut plain = plugin_args(&inner_conf, &namespace);
    plain.extend(encryption_args());
    let mut with_cache = plain.clone();
    with_cache.push("--kmip-key-management-sealed-cache-max-age-hours=24".into());
    // The sealed file beside the configuration, where this test looks for it.
    with_cache.push(format!(
        "--kmip-key-management-sealed-cache-dir={inner_conf}"
    ));

    // 1. A KMIP server answers: the versions read are kept in the sealed file.
    db.must_start(&with_cache);
    assert_eq!(
        db.must_sql("SELECT @@kmip_key_management_sealed_cache_max_age_hours"),
        "24"
    );
    db.must_sql(&format!(
        "SET SESSION max_recursive_iterations = 100000;
         CREATE DATABASE d;
         CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB;
         CREATE TABLE d.e (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB ENCRYPTED=YES;
         INSERT INTO d.t WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM s WHERE n<{ROWS}) SELECT n, CONCAT('row-', n) FROM s;
         INSERT INTO d.e SELECT * FROM d.t;
         FLUSH BINARY LOGS;"
    ));
    assert!(
        db.status("sealed_cache_keys") >= 1,
        "no key in the sealed cache"
    );
    assert_eq!(status_text(&db, "sealed_cache_serving"), "OFF");
    assert_eq!(mode(&sealed), 0o600, "{}", sealed.display());
    assert_eq!(db.plugin_errors(), Vec::<String>::new());

    // 2. No KMIP server answers (connection refused): the restart opens everything from the
    // sealed file, read-only.
    proxy.set_refuse(true);
    if let Err(e) = db.restart() {
        panic!(
            "no start from the sealed key cache:\n{e}\n{}",
            db.log_tail(40)
        );
    }
    check_rows(&db);
    assert_eq!(status_text(&db, "sealed_cache_serving"), "ON");
    assert!(db.status("sealed_cache_keys") >= 1);
    let log = db.last_start_log();
    assert!(
        log.contains("answering keys read-only from the sealed key cache"),
        "{log}"
    );
    assert!(log.contains("started from the sealed key cache"), "{log}");
    assert!(
        !log.contains("kmip_key_management: kmip_key_management:"),
        "the plugin's name twice: {log}"
    );
    let err = db
        .sql("SET GLOBAL kmip_key_management_rotate_key=1")
        .expect_err("rotation must be refused while the keys come from the sealed cache");
    assert!(err.contains("read-only"), "{err}");
    assert!(
        db.last_start_log()
            .contains("served read-only from the sealed key cache"),
        "{}",
        db.log_tail(20)
    );
    assert_eq!(
        versions_on_server(KEYRING_OKV, &lab().conf_dir, &namespace),
        vec![(1, 1), (2, 1)]
    );

    // 3. The KMIP server answers again: the plugin notices by itself, and rotation works
    // without a restart.
    proxy.set_refuse(false);
    let back = std::time::Instant::now();
    assert!(
        db.wait_for(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='KMIP_KEY_MANAGEMENT_SEALED_CACHE_SERVING'",
            "OFF",
            BACK_WITHIN_SECS
        ),
        "still serving from the sealed key cache {BACK_WITHIN_SECS} s after the KMIP server came back\n{}",
        db.log_tail(30)
    );
    eprintln!(
        "{target:?}: back from the sealed key cache {:?} after the KMIP server answered again",
        back.elapsed()
    );
    assert!(
        db.last_start_log().contains("a KMIP server answers again"),
        "{}",
        db.log_tail(30)
    );
    db.must_sql("SET GLOBAL kmip_key_management_rotate_key=1");
    assert_eq!(db.status("rotations"), 1);
    assert_eq!(
        versions_on_server(KEYRING_OKV, &lab().conf_dir, &namespace),
        vec![(1, 1), (1, 2), (2, 1)]
    );
    check_rows(&db);
    assert!(db.status("sealed_cache_keys") >= 2);
    assert_eq!(db.status("sealed_cache_dropped_keys"), 0);

    // 5. The file holds no key bytes in the clear (nor their hex).
    let found = tool(&["find", &format!("{namespace}/1/1")]);
    let uid = found[0]["uid"].as_str().expect("key 1 version 1 on PyKMIP");
    let got = tool(&["get", uid]);
    let hex = got["value_hex"].as_str().expect("key bytes").to_string();
    let key = unhex(&hex);
    assert_eq!(key.len(), 32);
    let file = std::fs::read(&sealed).unwrap();
    assert!(!contains(&file, &key), "the key bytes are in {SEALED_FILE}");
    assert!(
        !contains(&file, hex.as_bytes()),
        "the key's hex is in {SEALED_FILE}"
    );
    assert!(!contains(&file, hex.to_uppercase().as_bytes()));

    // 4. Without the sealed cache (the default), a start while no KMIP server answers fails as
    // before.
    proxy.set_refuse(true);
    let out = db
        .start(&plain)
        .expect_err("mariadbd started without a KMIP server and without the sealed cache");
    let log = db.last_start_log();
    assert!(
        log.contains("kmip_key_management: cannot start:"),
        "{out}\n{log}"
    );
    assert!(log.contains("okvclient.ora"), "{log}");
    assert!(!log.contains("sealed key cache"), "{log}");

    // 6. A sealed file others may read is refused: no start from it.
    std::fs::set_permissions(&sealed, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = db
        .start(&with_cache)
        .expect_err("mariadbd started from a sealed file with mode 0644");
    let log = db.last_start_log();
    let refused = log
        .lines()
        .find(|l| l.contains(SEALED_FILE) && l.contains("refused"))
        .unwrap_or_else(|| panic!("no line refusing the sealed file:\n{out}\n{log}"));
    assert!(refused.contains("[ERROR]"), "{refused}");
    assert!(
        log.contains("kmip_key_management: cannot start:"),
        "{out}\n{log}"
    );
    assert!(!log.contains("started from the sealed key cache"), "{log}");

    // 7. Past the maximum age: every version was last confirmed two hours ago (the file sealed
    // again with the configuration directory's key, as the plugin would have written it), the
    // limit is one hour: the start is refused, with one line naming the setting.
    std::fs::set_permissions(&sealed, std::fs::Permissions::from_mode(0o600)).unwrap();
    let seal_key = load_conf_dir(&conf)
        .expect("conf dir")
        .seal_root
        .key_for(sealed::MARIADB.name.as_bytes());
    let bytes = std::fs::read(&sealed).unwrap();
    let mut contents = file::open(&sealed, &seal_key, &bytes).expect("open the sealed file");
    let two_hours_ago = sealed::now_unix() - 2 * 3600;
    assert!(!contents.entries.is_empty());
    for entry in contents.entries.values_mut() {
        entry.confirmed_at = two_hours_ago;
    }
    let resealed = file::seal(
        &seal_key,
        &contents.binding,
        two_hours_ago,
        &contents.entries,
        &contents.absent,
    )
    .unwrap();
    file::write_atomically(&sealed, &resealed).unwrap();
    let mut one_hour = plain.clone();
    one_hour.push("--kmip-key-management-sealed-cache-max-age-hours=1".into());
    one_hour.push(format!(
        "--kmip-key-management-sealed-cache-dir={inner_conf}"
    ));
    let out = db
        .start(&one_hour)
        .expect_err("mariadbd started from keys confirmed longer ago than the maximum age");
    let log = db.last_start_log();
    let too_old: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("longer than kmip_key_management_sealed_cache_max_age_hours=1"))
        .collect();
    assert_eq!(too_old.len(), 1, "{out}\n{log}");
    assert!(too_old[0].contains("[ERROR]"), "{}", too_old[0]);
    assert!(!log.contains("started from the sealed key cache"), "{log}");

    drop(proxy);
    let _ = common::mariadb::script(target, &["reset", &db.name]);
    eprintln!(
        "{target:?}: sealed key cache scenario in {:?}",
        started.elapsed()
    );
}
