//! End to end: the real mysqld 9.7 loads component_keyring_okv from its manifest and keeps its
//! InnoDB, binary log and keyring_udf keys in a real PyKMIP server; status rows, RELOAD, bad
//! configurations and a KMIP server that is down at startup.

#[path = "../common/mod.rs"]
mod common;

use std::io::Write;

use common::component::{self, cnf, component_log, refused, status_value};
use common::mysql::Instance;
use common::pykmip::{lab, remove_udf_leftovers, tool};
use common::tcp_proxy::TcpProxy;

fn assert_active(db: &Instance) {
    assert_eq!(
        status_value(db, "Component_status"),
        "Active",
        "status: {:?}\nlog: {:#?}",
        component::status(db),
        component_log(db)
    );
}

fn assert_no_component_errors(db: &Instance) {
    let errors: Vec<String> = component_log(db)
        .into_iter()
        .filter(|l| l.contains("[ERROR]"))
        .collect();
    assert!(errors.is_empty(), "component errors: {errors:#?}");
}

/// keyring_udf generate/fetch/store/remove, with the KMIP object checked by PyKMIP's client.
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
    let on_server = tool(&["find", &name]);
    assert_eq!(on_server.as_array().unwrap().len(), 1, "{on_server}");
    assert_eq!(on_server[0]["state"], "ACTIVE");
    let uid = on_server[0]["uid"].as_str().unwrap().to_string();
    let server_hex = tool(&["get", &uid])["value_hex"]
        .as_str()
        .unwrap()
        .to_uppercase();
    assert_eq!(
        db.must_sql(&format!("SELECT HEX(keyring_key_fetch('{key}'))")),
        server_hex
    );
    let duplicate = db.sql(&format!("SELECT keyring_key_generate('{key}', 'AES', 16)"));
    assert!(refused(&duplicate), "{duplicate:?}");
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
    let rsa = db.sql(&format!(
        "SELECT keyring_key_generate('{key}_rsa', 'RSA', 128)"
    ));
    assert!(refused(&rsa), "{rsa:?}");
    // performance_schema lists the key with its owner and its KMIP identifier.
    let listed = db.must_sql(&format!(
        "SELECT KEY_OWNER, BACKEND_KEY_ID FROM performance_schema.keyring_keys WHERE KEY_ID='{key}'"
    ));
    assert_eq!(listed, format!("root@localhost\t{uid}"));
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

#[test]
fn manifest_loaded_component_serves_innodb_binlog_and_keyring_udf() {
    let dir = component::conf_dir_in_chroot(&lab().conf_dir, "comp-main", None);
    let db = component::fresh("comp-main", &cnf(&dir, ""));
    assert_active(&db);
    let rows = component::status(&db);
    let keys: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        &keys[..6],
        [
            "Component_name",
            "Author",
            "License",
            "Implementation_name",
            "Version",
            "Component_status"
        ]
    );
    assert_eq!(rows[0].1, "component_keyring_okv");
    assert_eq!(rows[3].1, "component_keyring_okv");
    assert_eq!(
        status_value(&db, "Config_file"),
        "/srv/mysql/comp-main/data/component_keyring_okv.cnf"
    );
    assert_eq!(status_value(&db, "Kmip_configuration_directory"), dir);
    assert_eq!(
        status_value(&db, "Servers"),
        format!("127.0.0.1:{}", lab().port)
    );
    assert_eq!(status_value(&db, "Cache_keys"), "No");
    assert!(
        component_log(&db)
            .iter()
            .any(|l| l.contains("connected to KMIP server")),
        "{:#?}",
        component_log(&db)
    );

    db.udf();
    keyring_udf_round(&db, "CompKey");

    // An encrypted table and a master key rotation across restarts.
    db.must_sql("CREATE DATABASE IF NOT EXISTS e2e");
    db.must_sql("CREATE TABLE e2e.t (a INT) ENCRYPTION='Y'");
    db.must_sql("INSERT INTO e2e.t VALUES (42)");
    db.restart(&[]);
    assert_active(&db);
    assert_eq!(db.must_sql("SELECT a FROM e2e.t"), "42");
    db.must_sql("ALTER INSTANCE ROTATE INNODB MASTER KEY");
    db.restart(&[]);
    assert_eq!(db.must_sql("SELECT a FROM e2e.t"), "42");

    // Binary log encryption, three rotations and a restart.
    db.must_sql("SET PERSIST binlog_encryption = ON");
    for _ in 0..3 {
        db.must_sql("ALTER INSTANCE ROTATE BINLOG MASTER KEY");
    }
    db.must_sql("INSERT INTO e2e.t VALUES (43)");
    db.restart(&[]);
    assert_eq!(db.must_sql("SELECT @@binlog_encryption"), "1");
    db.must_sql("FLUSH BINARY LOGS");
    let logs = db.must_sql("SHOW BINARY LOGS");
    assert!(
        logs.lines().last().is_some_and(|l| l.ends_with("Yes")),
        "{logs}"
    );
    // Every encrypted binary log still reads (its file key comes from the keyring).
    for log in logs.lines().filter(|l| l.ends_with("Yes")) {
        let file = log.split('\t').next().unwrap();
        db.must_sql(&format!("SHOW BINLOG EVENTS IN '{file}' LIMIT 1"));
    }

    let keys = db.must_sql("SELECT KEY_ID, KEY_OWNER FROM performance_schema.keyring_keys");
    assert!(
        keys.lines()
            .any(|l| l.starts_with("INNODBKey-") && l.ends_with("-2\t")),
        "{keys}"
    );
    assert!(
        keys.lines().any(|l| l.starts_with("MySQLReplicationKey_")),
        "{keys}"
    );
    // The status says how that listing was made complete (PyKMIP offers KMIP 1.4).
    let method = status_value(&db, "Listing_method");
    assert!(
        ["single Locate answer", "Offset Items paging (KMIP 1.4)"].contains(&method.as_str()),
        "{method}"
    );
    let requests: u64 = status_value(&db, "Requests").parse().unwrap();
    assert!(requests > 0);
    assert_ne!(status_value(&db, "Server_in_use"), "<NONE>");
    // One server, never left: index 0, no failover or failback.
    assert_eq!(status_value(&db, "Server_index"), "0");
    assert_eq!(status_value(&db, "Failovers"), "0");
    assert_eq!(status_value(&db, "Failbacks"), "0");
    if cfg!(feature = "fips") {
        assert_eq!(status_value(&db, "Fips_mode"), "ON");
        assert!(status_value(&db, "Fips_module").starts_with("AWS-LC FIPS "));
    } else {
        assert_eq!(status_value(&db, "Fips_mode"), "OFF");
        assert_eq!(status_value(&db, "Fips_module"), "<NONE>");
    }
    assert_no_component_errors(&db);
}

#[test]
fn bad_configurations_never_stop_mysqld_and_reload_keeps_the_good_one() {
    let dir = component::conf_dir_in_chroot(&lab().conf_dir, "comp-reload", None);
    remove_udf_leftovers(&["ReloadKey"]);
    let name = "comp-reload";
    // Invalid JSON at startup: mysqld runs, the component is Disabled, the log says where.
    let db = component::fresh(
        name,
        "{\n  \"kmip_configuration_directory\": \"/x\"\n  \"cache_keys\": true\n}\n",
    );
    assert_eq!(status_value(&db, "Component_status"), "Disabled");
    let file = "/srv/mysql/comp-reload/data/component_keyring_okv.cnf";
    assert!(
        component_log(&db)
            .iter()
            .any(|l| l.contains("[ERROR]") && l.contains(&format!("{file}:3:3: invalid JSON"))),
        "{:#?}",
        component_log(&db)
    );
    assert!(status_value(&db, "Last_load_error").contains("invalid JSON"));
    db.udf();
    let early = db.sql("SELECT keyring_key_generate('ReloadKey', 'AES', 32)");
    assert!(refused(&early), "{early:?}");

    // Wrong type, missing directory, missing file: each refused with the file named.
    for (text, expect) in [
        (
            "{\"kmip_configuration_directory\": \"/srv/comp-reload\", \"cache_keys\": \"yes\"}",
            "\"cache_keys\" must be true or false",
        ),
        (
            "{\"kmip_configuration_directory\": \"/srv/no-such-dir\"}",
            "'/srv/no-such-dir' does not exist",
        ),
    ] {
        component::configure(name, Some(component::MANIFEST_OKV), Some(text));
        assert!(db.sql("ALTER INSTANCE RELOAD KEYRING").is_err());
        assert_eq!(status_value(&db, "Component_status"), "Disabled");
        assert!(
            component_log(&db).iter().any(|l| l.contains(expect)),
            "{expect}: {:#?}",
            component_log(&db)
        );
    }
    // An unreadable key in the KMIP configuration directory names that file.
    let bad_key_dir = component::conf_dir_in_chroot(&lab().conf_dir, "comp-reload-badkey", None);
    std::fs::write(
        common::mysql::root()
            .join(bad_key_dir.trim_start_matches('/'))
            .join("ssl/key.pem"),
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    component::configure(name, None, Some(&cnf(&bad_key_dir, "")));
    assert!(db.sql("ALTER INSTANCE RELOAD KEYRING").is_err());
    assert!(
        component_log(&db)
            .iter()
            .any(|l| l.contains("[ERROR]") && l.contains(&format!("{bad_key_dir}/ssl/key.pem"))),
        "{:#?}",
        component_log(&db)
    );
    std::fs::remove_file(component::data_dir(name).join("component_keyring_okv.cnf")).unwrap();
    assert!(db.sql("ALTER INSTANCE RELOAD KEYRING").is_err());
    assert!(
        component_log(&db)
            .iter()
            .any(|l| l.contains(&format!("{file}: the configuration file is missing"))),
        "{:#?}",
        component_log(&db)
    );

    // A good configuration (with an unknown key, which is named in a warning) is taken.
    component::configure(name, None, Some(&cnf(&dir, "\"cache_key\": true")));
    db.must_sql("ALTER INSTANCE RELOAD KEYRING");
    assert_eq!(status_value(&db, "Component_status"), "Active");
    assert!(
        component_log(&db)
            .iter()
            .any(|l| l.contains("[Warning]") && l.contains("unknown key \"cache_key\"")),
        "{:#?}",
        component_log(&db)
    );
    assert_eq!(
        db.must_sql("SELECT keyring_key_store('ReloadKey', 'SECRET', 'kept')"),
        "1"
    );

    // A broken new configuration is refused and the old one keeps serving.
    component::configure(name, None, Some("{\"kmip_configuration_directory\": 7}"));
    assert!(db.sql("ALTER INSTANCE RELOAD KEYRING").is_err());
    assert_eq!(status_value(&db, "Component_status"), "Active");
    assert!(
        component_log(&db)
            .iter()
            .any(|l| l.contains("the previous configuration stays in force")),
        "{:#?}",
        component_log(&db)
    );
    assert_eq!(db.must_sql("SELECT keyring_key_fetch('ReloadKey')"), "kept");
    // A configuration naming a server that does not answer is refused too while one works.
    let dead = TcpProxy::start(([127, 0, 0, 1], lab().port).into());
    dead.set_refuse(true);
    let dead_port = dead.addr.port();
    component::configure(
        name,
        None,
        Some(&cnf(
            &dir,
            &format!("\"server\": \"127.0.0.1:{dead_port}\", \"connect_timeout\": 2"),
        )),
    );
    assert!(db.sql("ALTER INSTANCE RELOAD KEYRING").is_err());
    assert_eq!(db.must_sql("SELECT keyring_key_fetch('ReloadKey')"), "kept");
    assert_eq!(
        status_value(&db, "Servers"),
        format!("127.0.0.1:{}", lab().port)
    );
    assert_eq!(db.must_sql("SELECT keyring_key_remove('ReloadKey')"), "1");
}

#[test]
fn kmip_server_down_at_startup_then_up_without_reload() {
    let dir = component::conf_dir_in_chroot(&lab().conf_dir, "comp-down", None);
    remove_udf_leftovers(&["DownKey"]);
    // A relay to the lab server whose port refuses connections (and stays reserved) until
    // the server "comes up".
    let relay = TcpProxy::start(([127, 0, 0, 1], lab().port).into());
    relay.set_refuse(true);
    let port = relay.addr.port();
    let db = component::fresh(
        "comp-down",
        &cnf(
            &dir,
            &format!("\"server\": \"127.0.0.1:{port}\", \"connect_timeout\": 2"),
        ),
    );
    // The configuration is loaded, the status rows show why calls fail.
    assert_active(&db);
    assert_eq!(status_value(&db, "Servers"), format!("127.0.0.1:{port}"));
    assert_eq!(status_value(&db, "Server_in_use"), "<NONE>");
    assert_ne!(status_value(&db, "Last_error"), "<NONE>");
    assert_ne!(status_value(&db, "Last_error_time"), "<NONE>");
    assert!(
        component_log(&db).iter().any(|l| l.contains("[ERROR]")
            && l.contains("keyring calls fail until a KMIP server answers")),
        "{:#?}",
        component_log(&db)
    );
    db.udf();
    let down = db.sql("SELECT keyring_key_store('DownKey', 'SECRET', 'x')");
    assert!(refused(&down), "{down:?}");

    // The server comes up; calls succeed without a reload. The connector holds a failed round
    // for a short while, so ask until it answers (bounded).
    relay.set_refuse(false);
    let mut stored = false;
    for _ in 0..40 {
        if db
            .sql("SELECT keyring_key_store('DownKey', 'SECRET', 'x')")
            .is_ok_and(|v| v == "1")
        {
            stored = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(
        stored,
        "the keyring never recovered: {:#?}",
        component_log(&db)
    );
    assert_eq!(db.must_sql("SELECT keyring_key_fetch('DownKey')"), "x");
    assert_eq!(
        status_value(&db, "Server_in_use"),
        format!("127.0.0.1:{port}")
    );
    assert_eq!(db.must_sql("SELECT keyring_key_remove('DownKey')"), "1");
}

#[test]
fn cache_keys_serves_from_memory_until_reload() {
    let dir = component::conf_dir_in_chroot(&lab().conf_dir, "comp-cache", None);
    remove_udf_leftovers(&["CachedKey"]);
    let db = component::fresh(
        "comp-cache",
        &cnf(&dir, "\"cache_keys\": true, \"cache_ttl_seconds\": 0"),
    );
    assert_active(&db);
    assert_eq!(status_value(&db, "Cache_keys"), "Yes");
    assert_eq!(status_value(&db, "Cache_ttl_seconds"), "0");
    db.udf();
    assert_eq!(
        db.must_sql("SELECT keyring_key_store('CachedKey', 'SECRET', 'cached')"),
        "1"
    );
    let before: u64 = status_value(&db, "Requests").parse().unwrap();
    for _ in 0..5 {
        assert_eq!(
            db.must_sql("SELECT keyring_key_fetch('CachedKey')"),
            "cached"
        );
    }
    let after: u64 = status_value(&db, "Requests").parse().unwrap();
    assert!(
        after - before <= 2,
        "5 fetches took {} KMIP requests",
        after - before
    );
    assert_eq!(status_value(&db, "Cached_keys"), "1");

    // Destroyed on the KMIP server: still served from memory until the cache is dropped.
    let found = tool(&["find", "mysql-keyring:root@localhost:CachedKey"]);
    let uid = found[0]["uid"].as_str().unwrap().to_string();
    tool(&["destroy", &uid]);
    assert_eq!(
        db.must_sql("SELECT keyring_key_fetch('CachedKey')"),
        "cached"
    );
    db.must_sql("ALTER INSTANCE RELOAD KEYRING");
    assert_eq!(status_value(&db, "Cached_keys"), "0");
    assert_eq!(
        db.must_sql("SELECT keyring_key_fetch('CachedKey') IS NULL"),
        "1"
    );
}

/// Four sessions read a keyring_udf key in a loop while a fifth removes it, stores a new value
/// and fetches it back. mysqld holds its keyring read lock for the whole of each read and
/// lets new readers in while a writer waits, so reads that go to the KMIP server (the
/// key absent, nothing remembered) kept the lock held and each write round waited minutes.
/// With the cache on, reads are answered from memory (presence and absence) and every round
/// ends promptly while the readers keep going.
#[test]
fn writes_finish_while_four_sessions_keep_reading_the_key() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    // The reported rounds took more than two minutes; one round is three statements.
    const ROUND_BOUND: Duration = Duration::from_secs(60);
    const READERS: usize = 4;
    let kmip = common::pykmip::Named::start("ca_starve", "p256");
    let dir = component::conf_dir_in_chroot(&kmip.conf_dir(), "ca_starve", None);
    let db = component::fresh(
        "ca_starve",
        &cnf(&dir, "\"cache_keys\": true, \"cache_ttl_seconds\": 300"),
    );
    assert_active(&db);
    db.udf();
    assert_eq!(
        db.must_sql("SELECT keyring_key_store('HotKey', 'SECRET', 'v0')"),
        "1"
    );
    let round = |value: &str| -> Result<(), String> {
        let removed = db.sql("SELECT keyring_key_remove('HotKey')")?;
        let stored = db.sql(&format!(
            "SELECT keyring_key_store('HotKey', 'SECRET', '{value}')"
        ))?;
        let fetched = db.sql("SELECT keyring_key_fetch('HotKey')")?;
        if (removed.as_str(), stored.as_str(), fetched.as_str()) == ("1", "1", value) {
            Ok(())
        } else {
            Err(format!(
                "remove {removed:?}, store {stored:?}, fetch {fetched:?} (expected {value:?})"
            ))
        }
    };
    let started = Instant::now();
    round("alone").unwrap();
    let alone = started.elapsed();
    eprintln!("a write round without readers: {alone:?}");
    let stop = AtomicBool::new(false);
    let selects = || -> u64 {
        let row = db.must_sql("SHOW GLOBAL STATUS LIKE 'Com_select'");
        row.split('\t')
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let (done, rounds) = mpsc::channel::<(usize, Duration, Result<(), String>)>();
    let mut times = Vec::new();
    let mut failure = None;
    let mut read_during_rounds = 0;
    std::thread::scope(|s| {
        // Each reader is one session reading in a loop, as a client's loop would.
        for _ in 0..READERS {
            s.spawn(|| {
                let mut client = std::process::Command::new("bash")
                    .arg(common::pykmip::repo_root().join("scripts/mysql-real.sh"))
                    .args(["sql", &db.name, "-"])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .expect("start a mysql client");
                let mut stdin = client.stdin.take().unwrap();
                let reads = "SELECT keyring_key_fetch('HotKey') IS NULL;\n".repeat(20);
                while !stop.load(Ordering::SeqCst) {
                    if stdin.write_all(reads.as_bytes()).is_err() {
                        break;
                    }
                }
                drop(stdin);
                let status = client.wait().expect("wait for the mysql client");
                assert!(status.success(), "a reader failed: {status}");
            });
        }
        let writer = s.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let value = format!("v{n}");
                let started = Instant::now();
                let outcome = round(&value);
                if done.send((n, started.elapsed(), outcome)).is_err() {
                    return;
                }
            }
        });
        let start_selects = selects();
        loop {
            match rounds.recv_timeout(ROUND_BOUND) {
                Ok((_, took, Ok(()))) => times.push(took),
                Ok((n, _, Err(e))) => {
                    failure = Some(format!("round {n}: {e}"));
                    break;
                }
                Err(_) => {
                    failure = Some(format!(
                        "a write round did not finish within {} s while {READERS} sessions read the key ({} rounds done before it: {times:?})",
                        ROUND_BOUND.as_secs(),
                        times.len()
                    ));
                    break;
                }
            }
            // Enough rounds that the readers are seen reading while the writer works.
            read_during_rounds = selects() - start_selects;
            if (times.len() >= 3 && read_during_rounds >= 1000) || times.len() >= 200 {
                break;
            }
        }
        stop.store(true, Ordering::SeqCst);
        drop(rounds);
        let _ = writer.join();
    });
    eprintln!(
        "write rounds with {READERS} readers: {times:?} ({read_during_rounds} statements meanwhile)"
    );
    if let Some(failure) = failure {
        panic!("{failure}\nlog: {:#?}", component_log(&db));
    }
    assert!(
        read_during_rounds >= 1000,
        "the readers ran only {read_during_rounds} statements while {} write rounds ran",
        times.len()
    );
    assert_no_component_errors(&db);
    assert_eq!(db.must_sql("SELECT keyring_key_remove('HotKey')"), "1");
}
