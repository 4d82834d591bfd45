//! The key-state guard of keyring_okv.so in a real mysqld 9.7 against a PyKMIP server of its
//! own: the InnoDB master key revoked on the KMIP server behind mysqld's back (PyKMIP's own
//! client) is reported within a few polls as one error-log line naming the statement to run,
//! the status variables show it, and the encrypted table still reads.

#[path = "../common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::mysql::{self, Instance};
use common::pykmip::Named;

/// Stops the PyKMIP instance at the end, whatever happened.
struct Kmip(Named);

impl Drop for Kmip {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(common::pykmip::repo_root().join("scripts/pykmip.sh"))
            .arg("stop")
            .env("KEYRING_OKV_PYKMIP_NAME", &self.0.name)
            .env("KEYRING_OKV_PYKMIP_PKI", self.0.profile)
            .output();
    }
}

impl Kmip {
    fn tool(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["tool"];
        all.extend_from_slice(args);
        let out = self.0.script(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("pykmip_tool {args:?}: {e}: {out}"))
    }
}

fn key_state(db: &Instance) -> HashMap<String, String> {
    db.must_sql("SHOW GLOBAL STATUS LIKE 'keyring_okv_key_state%'")
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('\t')?;
            Some((
                k.to_ascii_lowercase()
                    .strip_prefix("keyring_okv_key_state_")?
                    .to_string(),
                v.to_string(),
            ))
        })
        .collect()
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(200));
    }
}

#[test]
fn a_revoked_innodb_master_key_is_reported_and_shown() {
    revoked_master_key("plain", false, false);
}

/// With the key cache on, the revoked key is still served from it (warn drops nothing), so
/// InnoDB's rotation, which reads the current master key first, works.
#[test]
fn with_the_key_cache_the_revoked_master_key_can_be_rotated_away() {
    revoked_master_key("cache", true, false);
}

/// With refuse, the key is dropped from the key cache too and no longer served: the same
/// rotation fails.
#[test]
fn with_refuse_the_revoked_master_key_is_no_longer_served() {
    revoked_master_key("refuse", true, true);
}

fn revoked_master_key(what: &str, cache: bool, refuse: bool) {
    let kmip = Kmip(Named::start(&format!("guard_key_state_{what}"), "p256"));
    let dir = format!("/srv/guard-key-state-{what}");
    let _ = std::fs::remove_dir_all(mysql::root().join(dir.trim_start_matches('/')));
    mysql::copy_in(&kmip.0.conf_dir(), &dir);
    let conf = format!("--keyring_okv_conf_dir={dir}");
    let mut args = vec![
        "--early-plugin-load=keyring_okv.so",
        &conf,
        "--keyring_okv_key_state_poll_seconds=1",
    ];
    if cache {
        args.push("--keyring_okv_cache_keys=ON");
    }
    if refuse {
        args.push("--keyring_okv_key_state_action=refuse");
    }
    let db = Instance::fresh(&format!("guard-key-state-{what}"), &args);
    assert_eq!(
        db.must_sql("SELECT @@keyring_okv_key_state_poll_seconds, @@keyring_okv_key_state_action"),
        format!("1\t{}", if refuse { "refuse" } else { "warn" })
    );
    db.must_sql(
        "CREATE DATABASE guard; \
         CREATE TABLE guard.t (id INT PRIMARY KEY) ENCRYPTION='Y'; \
         INSERT INTO guard.t VALUES (1), (2)",
    );
    let watched: u64 = key_state(&db)["keys_watched"].parse().unwrap();
    assert!(watched >= 1, "{:?}", key_state(&db));
    let objects = kmip.tool(&["list"]);
    let master = objects
        .as_array()
        .expect("list prints a list")
        .iter()
        .find(|o| o["names"].to_string().contains("INNODBKey") && o["state"] == "ACTIVE")
        .unwrap_or_else(|| panic!("no InnoDB master key on the server: {objects}"));
    let uid = master["uid"].as_str().unwrap().to_string();
    let from = db.log().len();

    kmip.tool(&["revoke", &uid]);
    let status = wait_for(
        "the revocation in the status",
        Duration::from_secs(60),
        || {
            let s = key_state(&db);
            (s["revoked_keys"] == "1").then_some(s)
        },
    );
    assert!(
        status["last_result"].starts_with("revoked: INNODBKey-"),
        "{status:?}"
    );
    let log = db.log();
    let lines: Vec<&str> = log[from..]
        .lines()
        .filter(|l| l.contains("on the KMIP server and still in use"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("[ERROR]"), "{}", lines[0]);
    assert!(
        lines[0].contains(&format!("KMIP object {uid} ")),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("is Deactivated"), "{}", lines[0]);
    assert!(
        lines[0].contains("run ALTER INSTANCE ROTATE INNODB MASTER KEY"),
        "{}",
        lines[0]
    );

    // InnoDB holds the key: the data still reads. (ALTER INSTANCE ROTATE INNODB MASTER KEY
    // reads the current master key first, which the keyring no longer serves once it is not
    // Active: see docs/security.md, "The key-state guard".)
    assert_eq!(db.must_sql("SELECT id FROM guard.t ORDER BY id"), "1\n2");
    if refuse {
        assert!(
            lines[0].contains("it is no longer served by this process"),
            "{}",
            lines[0]
        );
        assert_eq!(
            db.must_sql("SHOW GLOBAL STATUS LIKE 'Keyring_okv_cached_keys'"),
            "Keyring_okv_cached_keys\t0"
        );
    }
    if cache && !refuse {
        db.must_sql("ALTER INSTANCE ROTATE INNODB MASTER KEY");
        assert_eq!(db.must_sql("SELECT id FROM guard.t ORDER BY id"), "1\n2");
    } else {
        let err = db
            .sql("ALTER INSTANCE ROTATE INNODB MASTER KEY")
            .expect_err("the revoked master key is not served");
        assert!(err.contains("3185"), "{err}");
    }
    // One line per key, however many polls: wait for two more polls.
    let last: u64 = key_state(&db)["last_poll_unix"].parse().unwrap();
    wait_for("two more polls", Duration::from_secs(60), || {
        let now: u64 = key_state(&db)["last_poll_unix"].parse().unwrap();
        (now >= last + 2).then_some(())
    });
    let log = db.log();
    assert_eq!(
        log[from..]
            .lines()
            .filter(|l| l.contains("on the KMIP server and still in use"))
            .count(),
        1
    );
}
