//! The plugin's sealed key cache (`keyring_okv_sealed_cache_max_age_hours`) in a real mysqld
//! 9.7, against a PyKMIP server of its own that is stopped and started again (same database)
//! behind a relay on a fixed port: while the server is down nothing listens on that port
//! (connection refused), as when a KMIP server is down.
//!
//! - With the cache on, mysqld restarts while no KMIP server answers, opens its encrypted table
//!   and binary log, refuses key writes, and takes writes again once the server is back.
//! - With it off, no file is written and an outage start fails as before.
//! - The file holds no key bytes in the clear; a file others can read is refused.
//! - A key destroyed on the KMIP server is dropped from the cache and not served after.
//! - Past the maximum age a key is not served (with the cache itself, no clock change).

#[path = "../common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::mysql::{self, Instance};
use common::pykmip::Named;
use common::tcp_proxy::TcpProxy;

const READ_ONLY_SERVING: &str = "answering keys read-only from the sealed key cache";
const READ_ONLY_WRITE: &str = "keys are being served read-only from the sealed key cache";
const DROPPED: &str = "dropped from the sealed key cache";

/// Polls `f` until it gives a value; panics with `what` after `timeout`.
fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A named PyKMIP server behind a relay whose port stays the same across the server's
/// restarts (a named server restarts on a new port); the conf dir given to mysqld names the
/// relay.
struct Kmip {
    named: Named,
    proxy: TcpProxy,
    addr: SocketAddr,
}

impl Kmip {
    fn start(name: &str) -> Kmip {
        let named = Named::start(name, "p256");
        let proxy = TcpProxy::start(Self::upstream(&named));
        let addr = proxy.addr;
        Kmip { named, proxy, addr }
    }

    fn upstream(named: &Named) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], named.port()))
    }

    /// The relay's port refuses connections (and keeps its port), and the PyKMIP server stops
    /// (SIGINT).
    fn down(&mut self) {
        self.proxy.set_refuse(true);
        match TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            other => panic!("the relay's port does not refuse connections: {other:?}"),
        }
        self.named.script(&["stop"]);
    }

    /// Starts the PyKMIP server again on its database, and the relay listens again.
    fn up(&mut self) {
        self.named.script(&["start"]);
        self.proxy.set_upstream(Self::upstream(&self.named));
        self.proxy.set_refuse(false);
    }

    /// scripts/pykmip_tool.py against this server.
    fn tool(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["tool"];
        all.extend_from_slice(args);
        let out = self.named.script(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("pykmip_tool {args:?}: {e}: {out}"))
    }

    /// The PyKMIP lab's conf dir of this server, pointed at the relay, copied into the chroot
    /// at /srv/<name>; the path mysqld sees.
    fn conf_dir_in_chroot(&self, name: &str) -> String {
        let dest = format!("/srv/{name}");
        let staging = tempfile::tempdir().unwrap();
        let copy = staging.path().join("conf");
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(self.named.conf_dir())
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success());
        let ora = copy.join("okvclient.ora");
        let text = std::fs::read_to_string(&ora).unwrap();
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("SERVER=") {
                    format!("SERVER={}\n", self.addr)
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&ora, text).unwrap();
        remove_from_chroot(&dest);
        mysql::copy_in(&copy, &dest);
        dest
    }
}

fn host_path(chroot_path: &str) -> PathBuf {
    mysql::root().join(chroot_path.trim_start_matches('/'))
}

fn remove_from_chroot(chroot_path: &str) {
    let _ = std::fs::remove_dir_all(host_path(chroot_path));
}

/// The sealed file of a conf dir in the chroot, as a host path.
fn sealed_file(conf_dir: &str) -> PathBuf {
    host_path(conf_dir).join("keyring_okv.sealed")
}

/// SHOW GLOBAL STATUS LIKE 'keyring_okv_sealed%', by lower-case name without the prefix.
fn sealed_status(db: &Instance) -> HashMap<String, String> {
    db.must_sql("SHOW GLOBAL STATUS LIKE 'keyring_okv_sealed%'")
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('\t')?;
            let k = k.to_ascii_lowercase();
            Some((
                k.strip_prefix("keyring_okv_sealed_cache_")?.to_string(),
                v.to_string(),
            ))
        })
        .collect()
}

fn sealed_stat(db: &Instance, name: &str) -> String {
    sealed_status(db)
        .remove(name)
        .unwrap_or_else(|| panic!("no status variable keyring_okv_sealed_cache_{name}"))
}

fn sealed_count(db: &Instance, name: &str) -> u64 {
    let v = sealed_stat(db, name);
    v.parse()
        .unwrap_or_else(|e| panic!("keyring_okv_sealed_cache_{name}={v}: {e}"))
}

/// The error log written since `from` (a length of it taken before).
fn log_since(db: &Instance, from: usize) -> String {
    db.log().get(from..).unwrap_or_default().to_string()
}

fn lines_with(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Restarts mysqld with `args`; the script's output when it did not come up.
fn try_restart(db: &Instance, args: &[String]) -> Result<String, String> {
    let mut all = vec!["restart", db.name.as_str()];
    all.extend(args.iter().map(String::as_str));
    mysql::script(&all)
}

fn plugin_args(conf_dir: &str, sealed_hours: Option<u64>, binlog: bool) -> Vec<String> {
    let mut args = vec![
        "--early-plugin-load=keyring_okv.so".to_string(),
        format!("--keyring_okv_conf_dir={conf_dir}"),
    ];
    if let Some(h) = sealed_hours {
        args.push(format!("--keyring_okv_sealed_cache_max_age_hours={h}"));
        // The sealed file beside the configuration, where these tests look for it.
        args.push(format!("--keyring_okv_sealed_cache_dir={conf_dir}"));
    }
    if binlog {
        args.push("--binlog-encryption=ON".to_string());
    }
    args
}

fn fresh(name: &str, args: &[String]) -> Instance {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Instance::fresh(name, &args)
}

const ROWS: &str = "1\tone\n2\ttwo\n3\tthree";

/// An encrypted InnoDB table with rows, and the binary log holding them rotated (closed).
/// Returns that binary log's name.
fn encrypted_data(db: &Instance, binlog_encryption: bool) -> String {
    db.must_sql(
        "CREATE DATABASE sealed; \
         CREATE TABLE sealed.t (id INT PRIMARY KEY, v VARCHAR(20)) ENCRYPTION='Y'; \
         INSERT INTO sealed.t VALUES (1, 'one'), (2, 'two'), (3, 'three')",
    );
    let binlog = db.must_sql("SHOW BINARY LOG STATUS");
    let binlog = binlog.split('\t').next().unwrap().to_string();
    db.must_sql("FLUSH BINARY LOGS");
    let logs = db.must_sql("SHOW BINARY LOGS");
    let line = logs
        .lines()
        .find(|l| l.starts_with(&format!("{binlog}\t")))
        .unwrap_or_else(|| panic!("{binlog} not in SHOW BINARY LOGS: {logs}"));
    let encrypted = if binlog_encryption { "Yes" } else { "No" };
    assert!(line.ends_with(&format!("\t{encrypted}")), "{line}");
    binlog
}

fn select_rows(db: &Instance) -> Result<String, String> {
    db.sql("SELECT id, v FROM sealed.t ORDER BY id")
}

#[test]
fn with_kmip_down_mysqld_starts_from_the_sealed_cache_read_only_until_kmip_is_back() {
    outage("outage", false);
}

/// As above with `--binlog-encryption=ON`: the encrypted binary log is read during the outage.
/// Its key recovery at start asks for MySQLReplicationKey_<uuid>_old and _new, which do not
/// exist: the sealed cache answers "absent", as the KMIP server did.
#[test]
fn with_kmip_down_mysqld_starts_with_binlog_encryption_from_the_sealed_cache() {
    outage("outage-binlog", true);
}

/// Scenarios 1, 3 and 4: start from the sealed cache while the KMIP server is down (read-only
/// until it is back); no key bytes in the file; a file others can read is refused.
fn outage(what: &str, binlog_encryption: bool) {
    let name = format!("sealed-plugin-{what}");
    let mut kmip = Kmip::start(&format!("sealed_plugin_{}", what.replace('-', "_")));
    let dir = kmip.conf_dir_in_chroot(&name);
    let args = plugin_args(&dir, Some(24), binlog_encryption);
    let db = fresh(&name, &args);
    assert_eq!(
        db.must_sql("SELECT @@keyring_okv_sealed_cache_max_age_hours"),
        "24"
    );
    let binlog = encrypted_data(&db, binlog_encryption);
    assert!(sealed_count(&db, "keys") >= 1, "{:?}", sealed_status(&db));
    assert_eq!(sealed_stat(&db, "serving"), "OFF");
    let file = sealed_file(&dir);
    let mode = std::fs::metadata(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", file.display());

    // The file holds no key bytes: none of the server's keys, raw or in hex.
    let sealed = std::fs::read(&file).unwrap();
    let objects = kmip.tool(&["list"]);
    let objects = objects.as_array().expect("list prints a list");
    assert!(
        objects
            .iter()
            .any(|o| o["names"].to_string().contains("INNODBKey")),
        "mysqld's master key is not on the server: {objects:?}"
    );
    let text = String::from_utf8_lossy(&sealed).to_ascii_lowercase();
    let mut checked = 0;
    for object in objects {
        if object["state"] != "ACTIVE" {
            continue;
        }
        let got = kmip.tool(&["get", object["uid"].as_str().unwrap()]);
        let Some(hex) = got["value_hex"].as_str() else {
            continue;
        };
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert!(
            !sealed.windows(bytes.len()).any(|w| w == bytes),
            "the bytes of {} are in the sealed file",
            object["uid"]
        );
        assert!(
            !text.contains(&hex.to_ascii_lowercase()),
            "the hex of {} is in the sealed file",
            object["uid"]
        );
        checked += 1;
    }
    assert!(checked >= 1, "no key checked: {objects:?}");

    // No KMIP server: mysqld starts, and its data and binary log open from the sealed cache.
    kmip.down();
    let from = db.log().len();
    try_restart(&db, &args).unwrap_or_else(|e| {
        panic!(
            "mysqld did not start with the KMIP server down: {e}\n{}",
            log_since(&db, from)
        )
    });
    assert_eq!(select_rows(&db).unwrap(), ROWS);
    let events = db.must_sql(&format!("SHOW BINLOG EVENTS IN '{binlog}'"));
    assert!(
        events.contains("CREATE TABLE sealed.t"),
        "the binary log did not read: {events}"
    );
    assert_eq!(sealed_stat(&db, "serving"), "ON");
    let log = log_since(&db, from);
    let serving = lines_with(&log, READ_ONLY_SERVING);
    assert_eq!(serving.len(), 1, "{serving:#?}\n{log}");

    // Writes are refused, and the log says why.
    let rotate = db.sql("ALTER INSTANCE ROTATE INNODB MASTER KEY");
    assert!(rotate.is_err(), "rotation succeeded while read-only");
    let refused = wait_for("the read-only line", Duration::from_secs(30), || {
        Some(lines_with(&log_since(&db, from), READ_ONLY_WRITE)).filter(|l| !l.is_empty())
    });
    assert!(
        refused[0].contains(&file_in_chroot(&dir)),
        "the line names the file: {refused:?}"
    );

    // The KMIP server is back: the cache's thread notices, and writes work again.
    kmip.up();
    wait_for(
        "Keyring_okv_sealed_cache_serving=OFF",
        Duration::from_secs(90),
        || (sealed_stat(&db, "serving") == "OFF").then_some(()),
    );
    db.must_sql("ALTER INSTANCE ROTATE INNODB MASTER KEY");
    assert_eq!(select_rows(&db).unwrap(), ROWS);

    if binlog_encryption {
        // Without the sealed cache, mysqld with binlog encryption does not start at all.
        drop(db);
        remove_from_chroot(&dir);
        return;
    }

    // A file others can read is refused, and no key is served from it. (Changed while mysqld
    // is stopped: a running one writes the file anew, 0600, when it stops.)
    mysql::script(&["stop", &db.name]).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    kmip.down();
    let from = db.log().len();
    let restarted = mysql::script(&["start", &db.name]);
    let log = log_since(&db, from);
    let refused = lines_with(
        &log,
        &format!("sealed key cache {}: refused", file_in_chroot(&dir)),
    );
    assert_eq!(refused.len(), 1, "{log}");
    // mysqld starts (without binlog encryption), with the sealed cache off.
    restarted.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert_eq!(sealed_stat(&db, "serving"), "OFF");
    assert_eq!(sealed_count(&db, "keys"), 0);
    let rows = select_rows(&db);
    assert!(rows.is_err(), "the encrypted table was read: {rows:?}");
    assert!(lines_with(&log, READ_ONLY_SERVING).is_empty(), "{log}");

    drop(db);
    remove_from_chroot(&dir);
}

fn file_in_chroot(conf_dir: &str) -> String {
    format!("{conf_dir}/keyring_okv.sealed")
}

#[test]
fn with_the_cache_off_no_file_is_written_and_an_outage_start_fails_as_before() {
    let name = "sealed-plugin-off";
    let mut kmip = Kmip::start("sealed_plugin_off");
    let dir = kmip.conf_dir_in_chroot(name);
    let args = plugin_args(&dir, None, true);
    let db = fresh(name, &args);
    assert_eq!(
        db.must_sql("SELECT @@keyring_okv_sealed_cache_max_age_hours"),
        "0"
    );
    encrypted_data(&db, true);
    assert_eq!(sealed_count(&db, "keys"), 0);
    assert!(!sealed_file(&dir).exists());

    kmip.down();
    let from = db.log().len();
    let restarted = try_restart(&db, &args);
    let log = log_since(&db, from);
    assert!(!sealed_file(&dir).exists());
    assert!(lines_with(&log, READ_ONLY_SERVING).is_empty(), "{log}");
    // As before the sealed cache: mysqld cannot recover the binary log's master key, and
    // aborts.
    assert!(restarted.is_err(), "mysqld started without any key: {log}");
    // (Which binary log key it fails on first varies from start to start.)
    assert_eq!(
        lines_with(&log, "[ERROR] [MY-010119] [Server] Aborting").len(),
        1,
        "{log}"
    );
    assert!(
        lines_with(&log, "keyring_okv: fetch of key 'MySQLReplicationKey_")
            .iter()
            .any(|l| l.contains("no KMIP server could be reached")),
        "{log}"
    );

    drop(db);
    remove_from_chroot(&dir);
}

#[test]
fn a_key_destroyed_on_the_kmip_server_is_dropped_and_not_served_during_an_outage() {
    let name = "sealed-plugin-revoke";
    let mut kmip = Kmip::start("sealed_plugin_revoke");
    let dir = kmip.conf_dir_in_chroot(name);
    let mut args = plugin_args(&dir, Some(24), false);
    // keyring_udf keys belong to a user: kept only when asked.
    args.push("--keyring_okv_sealed_cache_user_keys=ON".to_string());
    let db = fresh(name, &args);
    db.udf();
    let key = "sealed_revoked";
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_generate('{key}', 'AES', 32)")),
        "1"
    );
    let bytes = db.must_sql(&format!("SELECT HEX(keyring_key_fetch('{key}'))"));
    assert_eq!(bytes.len(), 64, "{bytes}");
    assert!(sealed_count(&db, "keys") >= 1);
    // A key this server stores is kept at once, without being fetched (mysqld stores the
    // binary log's master key sequence number and reads it back only at its next start).
    let stored = "sealed_stored";
    assert_eq!(
        db.must_sql(&format!(
            "SELECT keyring_key_store('{stored}', 'SECRET', 'kept when stored')"
        )),
        "1"
    );
    assert_eq!(sealed_count(&db, "keys"), 2, "{:?}", sealed_status(&db));

    // Revoked and destroyed behind mysqld's back.
    let found = kmip.tool(&["find", &format!("mysql-keyring:root@localhost:{key}")]);
    let found = found.as_array().expect("find prints a list");
    assert_eq!(found.len(), 1, "{found:?}");
    kmip.tool(&["destroy", found[0]["uid"].as_str().unwrap()]);

    // The confirmation at start drops it.
    let from = db.log().len();
    db.restart(&args.iter().map(String::as_str).collect::<Vec<_>>());
    wait_for(
        "Keyring_okv_sealed_cache_dropped_keys >= 1",
        Duration::from_secs(60),
        || (sealed_count(&db, "dropped_keys") >= 1).then_some(()),
    );
    let log = log_since(&db, from);
    let dropped = lines_with(&log, DROPPED);
    assert!(
        dropped.iter().any(|l| l.contains(key)),
        "no line says '{key}' was dropped: {log}"
    );

    // No KMIP server: the dropped key is not served.
    kmip.down();
    db.restart(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let fetched = db.sql(&format!("SELECT HEX(keyring_key_fetch('{key}'))"));
    match &fetched {
        Ok(v) => assert_eq!(v, "NULL", "the dropped key was served"),
        Err(e) => assert!(!e.contains(&bytes), "{e}"),
    }
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_fetch('{stored}')")),
        "kept when stored"
    );
    assert_eq!(sealed_stat(&db, "serving"), "ON");

    drop(db);
    remove_from_chroot(&dir);
}

/// Past `keyring_okv_sealed_cache_max_age_hours` a key is not served, and the error names the
/// setting; a key confirmed within it is.
#[test]
fn a_key_confirmed_longer_ago_than_the_maximum_age_is_not_served() {
    use okv_core::keyring::KeyType;
    use okv_core::sealed::{self, Binding, Entries, Entry, SealedCache, SealedError, file};
    use zeroize::Zeroizing;

    let dir = tempfile::tempdir().unwrap();
    let path = sealed::path_in(dir.path(), &sealed::PLUGIN);
    let key = Zeroizing::new([7u8; 32]);
    let binding = Binding {
        product: sealed::PLUGIN.name.to_string(),
        identity: "CN=keyring-okv-test".to_string(),
        servers: vec!["127.0.0.1:5696".to_string()],
    };
    let now = sealed::now_unix();
    let entry = |confirmed_at: u64, byte: u8| Entry {
        key_type: KeyType::Aes,
        material: Zeroizing::new(vec![byte; 32]),
        uid: format!("uid-{byte}"),
        server: "127.0.0.1:5696".to_string(),
        kept_at: confirmed_at,
        confirmed_at,
    };
    let mut entries = Entries::new();
    entries.insert(("old".into(), String::new()), entry(now - 2 * 3600, 1));
    entries.insert(("recent".into(), String::new()), entry(now - 60, 2));
    let bytes = file::seal(&key, &binding, now, &entries, &Default::default()).unwrap();
    file::write_atomically(&path, &bytes).unwrap();

    let cache = SealedCache::open_at(path, key, binding, sealed::PLUGIN, 1);
    let Some(sealed::Served::Key(recent)) = cache.serve("recent", "", &"no server").unwrap() else {
        panic!("the recent key is not served");
    };
    assert_eq!(&recent.material[..], &[2u8; 32][..]);
    match cache.serve("old", "", &"no server") {
        Err(e @ SealedError::TooOld { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("keyring_okv_sealed_cache_max_age_hours=1"),
                "{text}"
            );
        }
        other => panic!("the old key: {:?}", other.map(|k| k.is_some())),
    }
}
