//! kmip_key_management in real MariaDB 10.11 and 11.8 when things go wrong: the KMIP server hung and
//! stopped while writes go on, a restart with the KMIP server down, bad configurations. Each
//! must end in one clear error-log line, never in a crash or a stalled server.

#[path = "../common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use common::mariadb::{Instance, Target, create_keys, encryption_args, plugin_args};
use common::pykmip::{lab, unique};
use common::tcp_proxy::TcpProxy;

const KEYRING_OKV: &str = env!("CARGO_BIN_EXE_keyring-okv");

fn pykmip(name: &str, args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pykmip.sh"))
        .args(args)
        .env("KEYRING_OKV_PYKMIP_NAME", name)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pykmip.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pykmip_port(name: &str) -> SocketAddr {
    let port = pykmip(name, &["port"]).trim().parse::<u16>().unwrap();
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A copy of `src` whose okvclient.ora names `server`, with short deadlines.
fn conf_copy(src: &Path, server: SocketAddr, dest: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dest)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(
        dest.join("okvclient.ora"),
        format!("SERVER={server}\nKEYRING_OKV_CONNECT_TIMEOUT=2\nKEYRING_OKV_REQUEST_TIMEOUT=2\n"),
    )
    .unwrap();
}

/// Writes to tables of both keys, a new table and a flush of every dirty page; each must
/// finish while the KMIP server is unusable.
fn writes(db: &Instance, round: u32) {
    db.must_sql(&format!(
        "SET SESSION max_recursive_iterations = 100000;
         INSERT INTO d.t1 WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM s WHERE n<1000) SELECT {round}*10000+n, REPEAT('w', 150) FROM s;
         UPDATE d.t5 SET v = CONCAT('round-{round}-', id);
         CREATE TABLE d.n{round} (a INT) ENCRYPTION_KEY_ID=5;
         INSERT INTO d.n{round} VALUES ({round});
         FLUSH TABLES;
         SET GLOBAL innodb_max_dirty_pages_pct = 0;"
    ));
    assert!(
        db.wait_for(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='INNODB_BUFFER_POOL_PAGES_DIRTY'",
            "0",
            120
        ),
        "dirty pages were not written"
    );
}

/// The PyKMIP instance of each target's outage test (they run at the same time).
fn outage_pykmip(target: Target) -> &'static str {
    match target {
        Target::Host => "mdbout_host",
        Target::Chroot => "mdbout_chroot",
    }
}

#[test]
fn kmip_server_hung_then_stopped_10_11() {
    kmip_server_hung_then_stopped(Target::Host);
}

#[test]
fn kmip_server_hung_then_stopped_11_8() {
    kmip_server_hung_then_stopped(Target::Chroot);
}

#[test]
fn bad_configurations_10_11() {
    bad_configurations_fail_the_start_with_one_clear_line(Target::Host);
}

#[test]
fn bad_configurations_11_8() {
    bad_configurations_fail_the_start_with_one_clear_line(Target::Chroot);
}

fn kmip_server_hung_then_stopped(target: Target) {
    let pykmip_name = outage_pykmip(target);
    pykmip(pykmip_name, &["setup"]);
    pykmip(pykmip_name, &["start"]);
    let proxy = TcpProxy::start(pykmip_port(pykmip_name));
    let staging = tempfile::tempdir().unwrap();
    let conf = staging.path().join("conf");
    conf_copy(&lab().conf_dir, proxy.addr, &conf);
    let namespace = unique("mdb-outage");
    create_keys(KEYRING_OKV, &conf, &namespace, &[1, 5]);

    let db = Instance::new(target, "outage");
    let inner_conf = db.conf(&conf);
    let mut args = plugin_args(&inner_conf, &namespace);
    args.extend(encryption_args());
    // Look for new versions every second, so that the refresh meets the outage.
    args.push("--kmip-key-management-cache-version-timeout=1000".into());
    db.must_start(&args);
    db.must_sql(
        "CREATE DATABASE d;
         CREATE TABLE d.t1 (id INT PRIMARY KEY, v VARCHAR(200)) ENCRYPTION_KEY_ID=1;
         CREATE TABLE d.t5 (id INT PRIMARY KEY, v VARCHAR(200)) ENCRYPTION_KEY_ID=5;
         INSERT INTO d.t5 VALUES (1, 'a'), (2, 'b');",
    );
    writes(&db, 1);
    assert_eq!(db.status("refresh_errors"), 0);

    // Hung: connections are accepted, nothing is answered.
    proxy.set_hang(true);
    writes(&db, 2);
    assert!(
        db.wait_for(
            "SELECT VARIABLE_VALUE > 0 FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='KMIP_KEY_MANAGEMENT_REFRESH_ERRORS'",
            "1",
            60
        ),
        "the refresh never met the hung server"
    );
    writes(&db, 3);
    assert!(db.status("errors") > 0);
    assert_ne!(
        db.must_sql("SELECT @@version, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='KMIP_KEY_MANAGEMENT_LAST_ERROR'"),
        ""
    );

    // Stopped: connections are refused.
    pykmip(pykmip_name, &["stop"]);
    proxy.set_hang(false);
    let errors = db.status("refresh_errors");
    assert!(
        db.wait_for(
            &format!(
                "SELECT VARIABLE_VALUE > {errors} FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='KMIP_KEY_MANAGEMENT_REFRESH_ERRORS'"
            ),
            "1",
            60
        ),
        "the refresh never met the stopped server"
    );
    writes(&db, 4);
    assert_eq!(db.must_sql("SELECT COUNT(*) FROM d.t1"), "4000");
    assert_eq!(db.plugin_errors(), Vec::<String>::new());

    // A restart while the KMIP server is down is refused, with one clear line.
    let refused = db.restart();
    assert!(refused.is_err(), "mariadbd started without its keys");
    let log = db.last_start_log();
    let errors = db.plugin_errors();
    assert_eq!(errors.len(), 1, "{errors:#?}\n{log}");
    assert!(
        errors[0].contains("cannot start: ")
            && errors[0].contains("okvclient.ora: no KMIP server could be reached"),
        "{}",
        errors[0]
    );
    assert!(!log.contains("got signal"), "{log}");

    // The KMIP server is back: the server starts and reads everything.
    pykmip(pykmip_name, &["start"]);
    proxy.set_upstream(pykmip_port(pykmip_name));
    db.restart().expect("start with the KMIP server back");
    assert_eq!(db.must_sql("SELECT COUNT(*) FROM d.t1"), "4000");
    assert_eq!(db.must_sql("SELECT v FROM d.t5 WHERE id=2"), "round-4-2");
    assert_eq!(db.must_sql("SELECT a FROM d.n3"), "3");
    assert_eq!(db.plugin_errors(), Vec::<String>::new());
    pykmip(pykmip_name, &["stop"]);
    let _ = common::mariadb::script(target, &["reset", &db.name]);
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bad_configurations_fail_the_start_with_one_clear_line(target: Target) {
    let lab = lab();
    let namespace = unique("mdb-badconf");
    create_keys(KEYRING_OKV, &lab.conf_dir, &namespace, &[1]);
    let staging = tempfile::tempdir().unwrap();

    // Another CA than the one that signed the KMIP server's certificate.
    let wrong_ca = staging.path().join("wrong-ca");
    Command::new("cp")
        .arg("-a")
        .arg(&lab.conf_dir)
        .arg(&wrong_ca)
        .status()
        .unwrap();
    openssl(
        &wrong_ca.join("ssl"),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "/dev/null",
            "-subj",
            "/CN=Another CA",
            "-days",
            "2",
            "-out",
            "CA.pem",
        ],
    );
    // An encrypted client key with the wrong password.txt.
    let wrong_pw = staging.path().join("wrong-password");
    Command::new("cp")
        .arg("-a")
        .arg(&lab.conf_dir)
        .arg(&wrong_pw)
        .status()
        .unwrap();
    openssl(
        &wrong_pw.join("ssl"),
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-in",
            "key.pem",
            "-out",
            "key.enc.pem",
            "-passout",
            "pass:the right one",
        ],
    );
    std::fs::rename(
        wrong_pw.join("ssl/key.enc.pem"),
        wrong_pw.join("ssl/key.pem"),
    )
    .unwrap();
    std::fs::write(wrong_pw.join("ssl/password.txt"), "not the password\n").unwrap();

    let db = Instance::new(target, "badconf");
    let good = db.conf(&lab.conf_dir);
    let inner = db.inner();
    for (name, dir) in [("wrong-ca", &wrong_ca), ("wrong-password", &wrong_pw)] {
        let status = Command::new("cp")
            .arg("-a")
            .arg(dir)
            .arg(db.path().join(name))
            .status()
            .unwrap();
        assert!(status.success());
    }
    let mut args = plugin_args(&good, &namespace);
    args.extend(encryption_args());
    db.must_start(&args);
    db.must_sql("CREATE DATABASE d; CREATE TABLE d.t (a INT) ENCRYPTION_KEY_ID=1; INSERT INTO d.t VALUES (7)");

    let cases: [(&str, String, String, &[&str]); 5] = [
        (
            "no conf dir",
            format!("{inner}/missing"),
            namespace.clone(),
            &[
                &format!("{inner}/missing"),
                "does not exist",
                "or fix kmip_key_management_conf_dir",
            ],
        ),
        (
            "empty conf_dir",
            String::new(),
            namespace.clone(),
            &["kmip_key_management_conf_dir is not set"],
        ),
        (
            "wrong CA",
            format!("{inner}/wrong-ca"),
            namespace.clone(),
            &["could be reached", "certificate"],
        ),
        (
            "wrong password.txt",
            format!("{inner}/wrong-password"),
            namespace.clone(),
            &["password.txt"],
        ),
        (
            "key 1 missing",
            good.clone(),
            unique("mdb-empty"),
            &["key 1 does not exist", "create-key 1"],
        ),
    ];
    for (case, conf_dir, ns, wanted) in cases {
        let mut args = plugin_args(&conf_dir, &ns);
        args.extend(encryption_args());
        let started = db.start(&args);
        assert!(started.is_err(), "{case}: mariadbd started");
        let log = db.last_start_log();
        let errors = db.plugin_errors();
        assert_eq!(errors.len(), 1, "{case}: {errors:#?}\n{log}");
        for w in wanted {
            assert!(errors[0].contains(w), "{case}: no '{w}' in {}", errors[0]);
        }
        assert!(
            log.contains("Plugin 'kmip_key_management' init function returned error"),
            "{case}: {log}"
        );
        assert!(!log.contains("got signal"), "{case}: {log}");
    }

    db.start(&args)
        .expect("start with the good configuration again");
    assert_eq!(db.must_sql("SELECT a FROM d.t"), "7");
    let _ = common::mariadb::script(target, &["reset", &db.name]);
}
