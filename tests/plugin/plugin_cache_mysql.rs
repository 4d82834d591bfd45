//! The plugin's opt-in key cache (`keyring_okv_cache_keys`) in a real mysqld 9.7 with PyKMIP:
//! with it on, repeated reads of a key make no KMIP request (`Keyring_okv_requests` does not
//! grow), this server's own remove and store are seen at once, and with it off every read goes
//! to the KMIP server as before.

#[path = "../common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::process::Command;

use common::mysql::{self, Instance};
use common::pykmip::{lab, remove_udf_leftovers};

/// Copies the PyKMIP lab's conf dir into the chroot at /srv/<name>; the path mysqld sees.
fn conf_dir_in_chroot(name: &str) -> String {
    let dest = format!("/srv/{name}");
    let staging = tempfile::tempdir().unwrap();
    let copy = staging.path().join("conf");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&lab().conf_dir)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let _ = std::fs::remove_dir_all(mysql::root().join(dest.trim_start_matches('/')));
    mysql::copy_in(&copy, &dest);
    dest
}

/// SHOW GLOBAL STATUS LIKE 'keyring_okv%', by lower-case name without the prefix.
fn status(db: &Instance) -> HashMap<String, String> {
    db.must_sql("SHOW GLOBAL STATUS LIKE 'keyring_okv%'")
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('\t').unwrap_or((l, ""));
            let k = k.to_ascii_lowercase();
            Some((k.strip_prefix("keyring_okv_")?.to_string(), v.to_string()))
        })
        .collect()
}

fn stat(db: &Instance, name: &str) -> u64 {
    status(db)
        .remove(name)
        .unwrap_or_else(|| panic!("no status variable keyring_okv_{name}"))
        .parse()
        .unwrap_or_else(|e| panic!("keyring_okv_{name}: {e}"))
}

fn requests(db: &Instance) -> u64 {
    stat(db, "requests")
}

fn fetch_hex(db: &Instance, key: &str) -> String {
    db.must_sql(&format!("SELECT HEX(keyring_key_fetch('{key}'))"))
}

#[test]
fn cached_keys_are_read_without_kmip_requests_and_own_writes_are_seen_at_once() {
    let key = format!("fa_cache_{}", std::process::id());
    let secret = format!("{key}_s");
    remove_udf_leftovers(&[&key, &secret]);
    let dir = conf_dir_in_chroot("okv-fa-cache");
    let db = Instance::fresh(
        "fa_cache",
        &[
            "--early-plugin-load=keyring_okv.so",
            &format!("--loose-keyring_okv_conf_dir={dir}"),
            "--loose-keyring_okv_cache_keys=ON",
        ],
    );
    db.udf();
    assert_eq!(db.must_sql("SELECT @@keyring_okv_cache_keys"), "1");
    assert_eq!(db.must_sql("SELECT @@keyring_okv_cache_ttl_seconds"), "300");

    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_generate('{key}', 'AES', 32)")),
        "1"
    );
    // The server made the material: the first read asks it, later ones do not.
    let first = fetch_hex(&db, &key);
    assert_eq!(first.len(), 64, "{first}");
    let before = requests(&db);
    for _ in 0..5 {
        assert_eq!(fetch_hex(&db, &key), first);
        assert_eq!(
            db.must_sql(&format!("SELECT keyring_key_length_fetch('{key}')")),
            "32"
        );
    }
    assert_eq!(requests(&db), before, "reads served from memory");
    assert!(stat(&db, "cached_keys") >= 1);

    // This server's remove is seen at once, and the absence is served from memory too.
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_remove('{key}')")),
        "1"
    );
    let before = requests(&db);
    for _ in 0..3 {
        assert_eq!(
            db.must_sql(&format!("SELECT keyring_key_fetch('{key}') IS NULL")),
            "1"
        );
    }
    assert_eq!(requests(&db), before);
    assert!(stat(&db, "cached_absent_keys") >= 1);

    // A store: what was stored is read back at once, without asking the server.
    assert_eq!(
        db.must_sql(&format!(
            "SELECT keyring_key_store('{secret}', 'SECRET', 'hello cache')"
        )),
        "1"
    );
    let before = requests(&db);
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_fetch('{secret}')")),
        "hello cache"
    );
    assert_eq!(requests(&db), before);

    // Off: the cache is emptied and every read goes to the KMIP server, as without it.
    db.must_sql("SET GLOBAL keyring_okv_cache_keys = OFF");
    assert_eq!(stat(&db, "cached_keys"), 0);
    assert_eq!(stat(&db, "cached_absent_keys"), 0);
    let before = requests(&db);
    for _ in 0..3 {
        assert_eq!(
            db.must_sql(&format!("SELECT keyring_key_fetch('{secret}')")),
            "hello cache"
        );
    }
    assert!(requests(&db) >= before + 3, "every read asked the server");

    // On again, with keys kept until the cache is renewed.
    db.must_sql("SET GLOBAL keyring_okv_cache_ttl_seconds = 0");
    db.must_sql("SET GLOBAL keyring_okv_cache_keys = ON");
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_fetch('{secret}')")),
        "hello cache"
    );
    let before = requests(&db);
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_fetch('{secret}')")),
        "hello cache"
    );
    assert_eq!(requests(&db), before);
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_remove('{secret}')")),
        "1"
    );
    let errors: Vec<String> = db
        .plugin_log()
        .into_iter()
        .filter(|l| l.contains("[ERROR]") || l.contains("panicked"))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
