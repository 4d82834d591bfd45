//! Operations in a real mysqld 9.7 with PyKMIP: the status variables through a failover and a
//! failback (a cuttable TCP proxy in front of PyKMIP is SERVER, PyKMIP itself the standby, so
//! both serve the same objects), 16 sessions calling the keyring while the KMIP server is
//! stopped with SIGSTOP, UNINSTALL PLUGIN while a call waits on it, and a SET GLOBAL whose later
//! part fails. Bounds are ratios of the configured timeouts.

#[path = "../common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::fault_server::CutProxy;
use common::mysql::{self, Instance};
use common::pykmip::{lab, repo_root, tool, unique};

/// Copies `conf` into the chroot at /srv/<name> with `okvclient_ora` and returns the path
/// mysqld sees.
fn conf_dir_in_chroot(name: &str, conf: &Path, okvclient_ora: &str) -> String {
    let dest = format!("/srv/{name}");
    let staging = tempfile::tempdir().unwrap();
    let copy = staging.path().join("conf");
    let status = Command::new("cp")
        .arg("-a")
        .arg(conf)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(copy.join("okvclient.ora"), okvclient_ora).unwrap();
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

fn fresh(name: &str, args: &[String]) -> Instance {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Instance::fresh(name, &args)
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

fn stat(db: &Instance, name: &str) -> String {
    status(db)
        .remove(name)
        .unwrap_or_else(|| panic!("no status variable keyring_okv_{name}"))
}

fn assert_no_internal_errors(db: &Instance) {
    let bad: Vec<String> = db
        .plugin_log()
        .into_iter()
        .filter(|l| l.contains("panicked") || l.contains("internal error"))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn status_variables_follow_a_failover_and_a_failback() {
    let proxy = CutProxy::start(SocketAddr::from((Ipv4Addr::LOCALHOST, lab().port)));
    let ora = format!(
        "SERVER=127.0.0.1:{}\nSTANDBY_SERVER=127.0.0.1:{}\nKEYRING_OKV_FAILBACK_INTERVAL=1\n",
        proxy.port(),
        lab().port
    );
    let dir = conf_dir_in_chroot("okv-ops-status", &lab().conf_dir, &ora);
    let db = fresh("ops-status", &plugin_args(&dir));
    db.udf();
    let via_proxy = format!("127.0.0.1:{}", proxy.port());
    let standby = format!("127.0.0.1:{}", lab().port);

    let s = status(&db);
    assert_eq!(s["config_loaded"], "ON");
    assert_eq!(s["servers_configured"], "2");
    assert_eq!(
        (s["server_in_use"].as_str(), s["server_index"].as_str()),
        (via_proxy.as_str(), "0")
    );
    assert_eq!((s["failovers"].as_str(), s["errors"].as_str()), ("0", "0"));
    // performance_schema shows the same rows.
    assert_eq!(
        db.must_sql("SELECT VARIABLE_VALUE FROM performance_schema.global_status WHERE VARIABLE_NAME='Keyring_okv_server_in_use'"),
        via_proxy
    );

    let key = unique("OpsStatus");
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_generate('{key}','AES',32)")),
        "1"
    );
    // BACKEND_KEY_ID is the key's KMIP unique identifier, as PyKMIP's own client finds it.
    let backend_id = db.must_sql(&format!(
        "SELECT BACKEND_KEY_ID FROM performance_schema.keyring_keys WHERE KEY_ID='{key}'"
    ));
    let on_server = tool(&["find", &format!("mysql-keyring:root@localhost:{key}")]);
    assert_eq!(on_server.as_array().map(Vec::len), Some(1), "{on_server}");
    assert_eq!(backend_id, on_server[0]["uid"].as_str().unwrap());

    let s = status(&db);
    assert!(s["requests"].parse::<u64>().unwrap() > 0, "{s:?}");
    // The listing behind performance_schema.keyring_keys says how it was made complete
    // (PyKMIP offers KMIP 1.4).
    assert!(
        ["single Locate answer", "Offset Items paging (KMIP 1.4)"]
            .contains(&s["listing_method"].as_str()),
        "{s:?}"
    );
    assert!(s["request_latency_max_us"].parse::<u64>().unwrap() > 0);

    // SERVER goes away: the next call fails over to the standby.
    proxy.cut();
    let fetch = format!("SELECT LENGTH(keyring_key_fetch('{key}'))");
    assert_eq!(db.must_sql(&fetch), "32");
    let s = status(&db);
    assert_eq!(
        (s["server_in_use"].as_str(), s["server_index"].as_str()),
        (standby.as_str(), "1"),
        "{s:?}"
    );
    assert_eq!(s["failovers"], "1");

    // SERVER is back: within the failback interval, a call between requests moves back to it.
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(60);
    while stat(&db, "server_index") != "0" {
        assert!(Instant::now() < deadline, "no failback: {:?}", status(&db));
        assert_eq!(db.must_sql(&fetch), "32");
    }
    let s = status(&db);
    assert_eq!(s["server_in_use"], via_proxy);
    assert_eq!(
        (s["failovers"].as_str(), s["failbacks"].as_str()),
        ("1", "1")
    );
    assert_eq!(db.must_sql(&fetch), "32");
    let failback_lines: Vec<String> = db
        .plugin_log()
        .into_iter()
        .filter(|l| l.contains("failing back from STANDBY_SERVER"))
        .collect();
    assert_eq!(failback_lines.len(), 1, "{:#?}", db.plugin_log());
    assert_no_internal_errors(&db);
}

/// A PyKMIP instance of its own, which these tests stop with SIGSTOP (the shared one keeps
/// serving the other tests). One test at a time uses it.
struct OwnPykmip {
    port: u16,
    conf_dir: PathBuf,
    pgid: String,
}

static OWN_PYKMIP: Mutex<()> = Mutex::new(());

fn own_pykmip() -> OwnPykmip {
    lab();
    let run = |args: &[&str]| {
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/pykmip.sh"))
            .args(args)
            .env("KEYRING_OKV_PYKMIP_NAME", "ops")
            .output()
            .expect("scripts/pykmip.sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["start"]);
    let env = run(&["env"]);
    let get = |key: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
            .unwrap_or_else(|| panic!("{key} missing: {env}"))
    };
    let conf_dir = PathBuf::from(get("KEYRING_OKV_PYKMIP_OPS_CONFDIR"));
    let pgid = std::fs::read_to_string(conf_dir.parent().unwrap().join("pid"))
        .expect("pid file")
        .trim()
        .to_string();
    OwnPykmip {
        port: get("KEYRING_OKV_PYKMIP_OPS_PORT").parse().unwrap(),
        conf_dir,
        pgid,
    }
}

/// SIGSTOP on the server's process group until dropped: it accepts TCP (the kernel does) and
/// never answers.
struct Stopped<'a>(&'a OwnPykmip);

impl<'a> Stopped<'a> {
    fn new(server: &'a OwnPykmip) -> Self {
        signal("-STOP", &server.pgid);
        Stopped(server)
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        signal("-CONT", &self.0.pgid);
    }
}

fn signal(sig: &str, pgid: &str) {
    let status = Command::new("kill")
        .args([sig, "--", &format!("-{pgid}")])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} -{pgid}");
}

/// keyring_udf reports a keyring failure either as an SQL error or as NULL.
fn failed(result: &Result<String, String>) -> bool {
    match result {
        Err(_) => true,
        Ok(v) => v == "NULL",
    }
}

#[test]
fn sixteen_sessions_on_a_stopped_kmip_server_each_return_within_one_deadline() {
    let _one = OWN_PYKMIP.lock().unwrap_or_else(|e| e.into_inner());
    let server = own_pykmip();
    let (connect, request) = (2.0, 2.0);
    let ora = format!(
        "SERVER=127.0.0.1:{}\nKEYRING_OKV_CONNECT_TIMEOUT={connect}\nKEYRING_OKV_REQUEST_TIMEOUT={request}\n",
        server.port
    );
    let dir = conf_dir_in_chroot("okv-ops-stop", &server.conf_dir, &ora);
    let db = fresh("ops-stop", &plugin_args(&dir));
    db.udf();
    let key = unique("OpsStop");
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_generate('{key}','AES',32)")),
        "1"
    );
    let budget = connect + request;
    // Baseline of the same run: 16 concurrent clients (each a process in the chroot) with a
    // query that does not touch the keyring.
    let baseline = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..16)
            .map(|_| {
                let db = &db;
                scope.spawn(move || {
                    let started = Instant::now();
                    db.must_sql("SELECT 1");
                    started.elapsed()
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).max().unwrap()
    });

    let stopped = Stopped::new(&server);
    let fetch = format!("SELECT LENGTH(keyring_key_fetch('{key}'))");
    let (times, in_flight_seen, other_query) = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..16)
            .map(|_| {
                let (db, fetch) = (&db, &fetch);
                scope.spawn(move || {
                    let started = Instant::now();
                    let outcome = db.sql(fetch);
                    (started.elapsed(), outcome)
                })
            })
            .collect();
        // While they wait: the status variables answer from memory and see them, and mysqld
        // answers other queries.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = 0u64;
        while seen == 0 && calls.iter().any(|c| !c.is_finished()) {
            assert!(Instant::now() < deadline);
            seen = stat(&db, "calls_in_flight").parse().unwrap();
        }
        let other = db.must_sql("SELECT 6*7");
        let times: Vec<_> = calls.into_iter().map(|c| c.join().unwrap()).collect();
        (times, seen, other)
    });
    drop(stopped);

    let slowest = times.iter().map(|(d, _)| *d).max().unwrap();
    println!(
        "mysqld, PyKMIP stopped: slowest of 16 keyring calls {:.2} s (deadline {budget} s = connect + request timeout; {:.2} x); 16 clients running SELECT 1: {:.2} s",
        slowest.as_secs_f64(),
        slowest.as_secs_f64() / budget,
        baseline.as_secs_f64()
    );
    for (elapsed, outcome) in &times {
        assert!(failed(outcome), "{outcome:?}");
        // Never a multiple of the deadline; the clients' own start is the baseline.
        assert!(
            elapsed.as_secs_f64() <= budget * 1.15 + baseline.as_secs_f64(),
            "a call took {elapsed:?}"
        );
    }
    assert!(in_flight_seen >= 1);
    assert_eq!(other_query, "42");
    assert!(stat(&db, "last_error").contains(&format!("127.0.0.1:{}", server.port)));
    assert_no_internal_errors(&db);
}

#[test]
fn uninstall_plugin_while_a_call_waits_on_a_hung_server() {
    let _one = OWN_PYKMIP.lock().unwrap_or_else(|e| e.into_inner());
    let server = own_pykmip();
    let ora = format!(
        "SERVER=127.0.0.1:{}\nKEYRING_OKV_CONNECT_TIMEOUT=5\nKEYRING_OKV_REQUEST_TIMEOUT=5\n",
        server.port
    );
    let dir = conf_dir_in_chroot("okv-ops-uninstall", &server.conf_dir, &ora);
    let db = Instance::fresh("ops-uninstall", &[]);
    db.must_sql("INSTALL PLUGIN keyring_okv SONAME 'keyring_okv.so'");
    db.must_sql(&format!("SET GLOBAL keyring_okv_conf_dir = '{dir}'"));
    db.udf();
    let key = unique("OpsUninstall");
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_generate('{key}','AES',32)")),
        "1"
    );

    let stopped = Stopped::new(&server);
    let fetch = format!("SELECT LENGTH(keyring_key_fetch('{key}'))");
    let (call, uninstall) = std::thread::scope(|scope| {
        let call = scope.spawn(|| {
            let started = Instant::now();
            (db.sql(&fetch), started.elapsed())
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while stat(&db, "calls_in_flight") == "0" {
            assert!(Instant::now() < deadline && !call.is_finished());
        }
        let uninstall = db.sql("UNINSTALL PLUGIN keyring_okv");
        (call.join().unwrap(), uninstall)
    });
    drop(stopped);

    assert!(uninstall.is_ok(), "{uninstall:?}");
    let (outcome, elapsed) = call;
    assert!(failed(&outcome), "{outcome:?}");
    assert!(elapsed.as_secs_f64() <= 10.0 * 1.3, "{elapsed:?}");
    // The server lives on, the plugin is gone, and keyring calls fail cleanly.
    assert_eq!(db.must_sql("SELECT 6*7"), "42");
    assert_eq!(
        db.must_sql(
            "SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME='keyring_okv'"
        ),
        "0"
    );
    assert!(failed(&db.sql(&fetch)));
    assert_no_internal_errors(&db);
    // And it can come back.
    db.must_sql("INSTALL PLUGIN keyring_okv SONAME 'keyring_okv.so'");
    db.must_sql(&format!("SET GLOBAL keyring_okv_conf_dir = '{dir}'"));
    assert_eq!(db.must_sql(&fetch), "32");
}

#[test]
fn a_set_global_whose_later_part_fails_releases_the_checked_configuration() {
    let proxy = CutProxy::start(SocketAddr::from((Ipv4Addr::LOCALHOST, lab().port)));
    let first = conf_dir_in_chroot(
        "okv-ops-set-a",
        &lab().conf_dir,
        &format!("SERVER=127.0.0.1:{}\n", lab().port),
    );
    let second = conf_dir_in_chroot(
        "okv-ops-set-b",
        &lab().conf_dir,
        &format!("SERVER=127.0.0.1:{}\n", proxy.port()),
    );
    let db = fresh("ops-set", &plugin_args(&first));

    // The check of the first part connects (through the proxy); the second part is refused,
    // so mysqld never calls the update of the first.
    let failed_set = db.sql(&format!(
        "SET GLOBAL keyring_okv_conf_dir = '{second}', GLOBAL keyring_okv_conf_dir = ''"
    ));
    assert!(failed_set.is_err(), "{failed_set:?}");
    assert_eq!(db.must_sql("SELECT @@keyring_okv_conf_dir"), first);
    assert_eq!(
        stat(&db, "server_in_use"),
        format!("127.0.0.1:{}", lab().port)
    );
    // The prepared configuration (its TLS session, its key) is released: its connection
    // closes within the documented bound (10 s).
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.open_connections() > 0 {
        assert!(
            Instant::now() < deadline,
            "the checked configuration leaked"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A plain SET of the same directory still works.
    db.must_sql(&format!("SET GLOBAL keyring_okv_conf_dir = '{second}'"));
    assert_eq!(db.must_sql("SELECT @@keyring_okv_conf_dir"), second);
    assert_eq!(
        stat(&db, "server_in_use"),
        format!("127.0.0.1:{}", proxy.port())
    );
    assert_no_internal_errors(&db);
}

/// The measurement: `SET GLOBAL keyring_okv_conf_dir` with default timeouts (20 s) to a
/// list whose SERVER and first 63 standbys are black-holed (they accept TCP and never answer
/// TLS) and whose last standby is PyKMIP, then the first key. Bound: a fraction of the timeout
/// (a linear stagger needed half of it, 10 s).
#[test]
fn sixty_four_black_holed_servers_before_the_live_one_in_mysqld() {
    let holes: Vec<std::net::TcpListener> = (0..64)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut ora = String::new();
    for (i, hole) in holes.iter().enumerate() {
        let key = if i == 0 { "SERVER" } else { "STANDBY_SERVER" };
        ora.push_str(&format!(
            "{key}=127.0.0.1:{}\n",
            hole.local_addr().unwrap().port()
        ));
    }
    ora.push_str(&format!("STANDBY_SERVER=127.0.0.1:{}\n", lab().port));
    let dir = conf_dir_in_chroot("okv-ops-holes", &lab().conf_dir, &ora);
    let db = Instance::fresh("ops-holes", &["--early-plugin-load=keyring_okv.so"]);
    db.udf();
    let key = unique("OpsHoles");
    let started = Instant::now();
    db.must_sql(&format!("SET GLOBAL keyring_okv_conf_dir = '{dir}'"));
    let connected = started.elapsed();
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_generate('{key}','AES',32)")),
        "1"
    );
    let first_key = started.elapsed();
    // Baseline of the same run: the same two statements once connected.
    let base_start = Instant::now();
    db.must_sql("SELECT 1");
    assert_eq!(
        db.must_sql(&format!("SELECT keyring_key_generate('{key}-2','AES',32)")),
        "1"
    );
    let baseline = base_start.elapsed();
    println!(
        "mysqld, 64 black-holed servers, 20 s timeout: SET GLOBAL {:.2} s, first key {:.2} s ({:.2} x timeout); the same two statements once connected {:.2} s",
        connected.as_secs_f64(),
        first_key.as_secs_f64(),
        first_key.as_secs_f64() / 20.0,
        baseline.as_secs_f64()
    );
    let s = status(&db);
    assert_eq!(
        (s["server_index"].as_str(), s["servers_configured"].as_str()),
        ("64", "65")
    );
    assert!(
        first_key.as_secs_f64() < 20.0 * 0.15 + baseline.as_secs_f64(),
        "{first_key:?}"
    );
}
