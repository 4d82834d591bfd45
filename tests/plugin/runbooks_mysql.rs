//! The runbooks of docs/runbooks.md, run in the real mysqld 9.7 with keyring_okv.so against
//! PyKMIP: a clone of an instance with encrypted tables, a logical dump loaded into another
//! server, a replica that shares the KMIP server with its source, and a KMIP server restored
//! from its own backup. Each test is the runbook's steps, in the order the page gives them.

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::mysql::{self, Instance};
use common::pykmip::{Named, lab};
use common::tcp_proxy::TcpProxy;

/// The plugin directory the instances here use, inside the chroot: our build and the clone
/// plugin. The chroot's own plugin directory is shared by every checkout on the machine.
const PLUGINS: &str = "/srv/runbooks-plugins";
const ROWS: u32 = 500;

fn plugin_dir() -> &'static str {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let root = mysql::root();
        let dir = root.join(PLUGINS.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap();
        let chroot_plugins = PathBuf::from(
            mysql::script(&["plugin-dir"])
                .expect("plugin-dir")
                .trim()
                .to_string(),
        );
        for (from, name) in [
            (common::host::plugin_library(), "keyring_okv.so"),
            (chroot_plugins.join("mysql_clone.so"), "mysql_clone.so"),
        ] {
            let staged = dir.join(format!(".{name}.new"));
            std::fs::copy(&from, &staged)
                .unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
            std::fs::rename(&staged, dir.join(name)).unwrap();
        }
    });
    PLUGINS
}

/// The lab's conf dir (or `src`) copied into the chroot at /srv/<name>, naming `server`.
fn conf_dir(src: &Path, name: &str, server: Option<std::net::SocketAddr>) -> String {
    let dest = format!("/srv/{name}");
    let staging = tempfile::tempdir().unwrap();
    let copy = staging.path().join("conf");
    let status = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    if let Some(server) = server {
        std::fs::write(copy.join("okvclient.ora"), format!("SERVER={server}\n")).unwrap();
    }
    let _ = std::fs::remove_dir_all(mysql::root().join(dest.trim_start_matches('/')));
    mysql::copy_in(&copy, &dest);
    dest
}

fn args(conf: &str, extra: &[&str]) -> Vec<String> {
    let mut all = vec![
        format!("--plugin-dir={}", plugin_dir()),
        "--early-plugin-load=keyring_okv.so".to_string(),
        format!("--keyring_okv_conf_dir={conf}"),
    ];
    all.extend(extra.iter().map(|s| s.to_string()));
    all
}

fn start(name: &str, args: &[String]) -> Instance {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Instance::fresh(name, &args)
}

fn port(db: &Instance) -> u16 {
    let path = mysql::script(&["path", &db.name]).expect("path");
    std::fs::read_to_string(Path::new(path.trim()).join("port"))
        .expect("the instance's port file")
        .trim()
        .parse()
        .expect("a port")
}

fn write_rows(db: &Instance, from: u32, to: u32) {
    db.must_sql(&format!(
        "CREATE DATABASE IF NOT EXISTS d;
         CREATE TABLE IF NOT EXISTS d.e (id INT PRIMARY KEY, v VARCHAR(100)) ENCRYPTION='Y';
         INSERT INTO d.e WITH RECURSIVE s(n) AS (SELECT {from} UNION ALL SELECT n+1 FROM s WHERE n<{to}) SELECT n, CONCAT('row-', n) FROM s;"
    ));
}

fn rows(db: &Instance) -> Result<String, String> {
    db.sql("SELECT COUNT(*), MAX(id), SUM(v = CONCAT('row-', id)) FROM d.e")
}

fn expect_rows(n: u32) -> String {
    format!("{n}\t{n}\t{n}")
}

/// The keys performance_schema.keyring_keys lists: every key the configuration's identity
/// sees on the KMIP server, those of other servers that share it included.
fn listed_keys(db: &Instance) -> Vec<String> {
    db.must_sql("SELECT KEY_ID FROM performance_schema.keyring_keys ORDER BY KEY_ID")
        .lines()
        .map(str::to_string)
        .collect()
}

/// This server's own InnoDB and binlog keys: those named with its server UUID.
fn server_keys(db: &Instance) -> Vec<String> {
    let uuid = uuid(db);
    listed_keys(db)
        .into_iter()
        .filter(|k| k.contains(&uuid))
        .collect()
}

fn uuid(db: &Instance) -> String {
    db.must_sql("SELECT @@server_uuid")
}

fn poll<T>(
    what: &str,
    timeout: Duration,
    context: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runbook "Cloning an instance": CLONE INSTANCE copies encrypted tablespaces to a recipient
/// that has its own keyring; the recipient's tablespace keys are wrapped by its own master key,
/// made on the KMIP server under its own server UUID, and the donor's keys are untouched.
#[test]
fn clone_instance_copies_encrypted_tables_to_a_recipient_with_its_own_master_key() {
    let donor_conf = conf_dir(&lab().conf_dir, "rb-clone-donor", None);
    let recipient_conf = conf_dir(&lab().conf_dir, "rb-clone-recipient", None);
    let clone = "--plugin-load-add=mysql_clone.so";
    let donor = start("rb-clone-donor", &args(&donor_conf, &[clone]));
    write_rows(&donor, 1, ROWS);
    donor.must_sql("ALTER INSTANCE ROTATE INNODB MASTER KEY");
    donor.must_sql(
        "CREATE USER 'cloner'@'127.0.0.1' IDENTIFIED BY 'Clone-pw-1';
         GRANT BACKUP_ADMIN ON *.* TO 'cloner'@'127.0.0.1';",
    );
    let donor_keys = server_keys(&donor);
    let donor_uuid = uuid(&donor);
    assert!(
        donor_keys
            .iter()
            .any(|k| k.starts_with(&format!("INNODBKey-{donor_uuid}-"))),
        "{donor_keys:?}"
    );

    let recipient_args = args(&recipient_conf, &[clone]);
    let recipient = start("rb-clone-recipient", &recipient_args);
    let recipient_uuid = uuid(&recipient);
    let donor_port = port(&donor);
    let cloned = recipient.sql(&format!(
        "SET GLOBAL clone_valid_donor_list = '127.0.0.1:{donor_port}';
         CLONE INSTANCE FROM 'cloner'@'127.0.0.1':{donor_port} IDENTIFIED BY 'Clone-pw-1';"
    ));
    // Without a supervisor (mysqld_safe, systemd) the recipient cannot restart itself: MySQL
    // says so with error 3707 once the clone is complete, and it is started by hand.
    if let Err(e) = &cloned {
        assert!(
            e.contains("3707"),
            "CLONE INSTANCE failed: {e}\n{}",
            recipient.log_tail(30)
        );
    }
    let restart: Vec<&str> = recipient_args.iter().map(String::as_str).collect();
    recipient.restart(&restart);
    assert_eq!(
        rows(&recipient).unwrap_or_else(|e| panic!("{e}\n{}", recipient.log_tail(30))),
        expect_rows(ROWS)
    );
    // The recipient keeps its own server UUID and the master key made under it.
    assert_eq!(uuid(&recipient), recipient_uuid);
    let keys = server_keys(&recipient);
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("INNODBKey-{recipient_uuid}-"))),
        "the recipient uses no master key of its own: {keys:?}"
    );
    // A second start reads the cloned tables again with that key from the KMIP server.
    recipient.restart(&restart);
    assert_eq!(rows(&recipient).unwrap(), expect_rows(ROWS));
    write_rows(&recipient, ROWS + 1, ROWS + 10);
    // The donor is untouched: its keys and rows.
    assert_eq!(server_keys(&donor), donor_keys);
    assert_eq!(rows(&donor).unwrap(), expect_rows(ROWS));
}

/// Runbook "A logical dump": mysqldump writes plaintext rows and the ENCRYPTION clause; the
/// server that loads the dump encrypts them with its own keyring.
#[test]
fn mysqldump_of_encrypted_tables_loads_into_another_server_with_its_own_keyring() {
    let source_conf = conf_dir(&lab().conf_dir, "rb-dump-source", None);
    let target_conf = conf_dir(&lab().conf_dir, "rb-dump-target", None);
    let source = start("rb-dump-source", &args(&source_conf, &[]));
    write_rows(&source, 1, ROWS);
    let root = mysql::root();
    let source_path = mysql::script(&["path", &source.name]).unwrap();
    let socket = Path::new(source_path.trim()).join("mysqld.sock");
    let socket_inner = format!("/{}", socket.strip_prefix(root).unwrap().display());
    let dump = Command::new("chroot")
        .arg(root)
        .args([
            "mysqldump",
            "--user=root",
            &format!("--socket={socket_inner}"),
            "--single-transaction",
            "--databases",
            "d",
        ])
        .output()
        .expect("run mysqldump");
    assert!(
        dump.status.success(),
        "mysqldump: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let text = String::from_utf8(dump.stdout).unwrap();
    assert!(text.contains("ENCRYPTION='Y'"), "the dump keeps the clause");
    assert!(text.contains("'row-1'"), "the dump holds plaintext rows");
    let target = start("rb-dump-target", &args(&target_conf, &[]));
    let target_path = mysql::script(&["path", &target.name]).unwrap();
    let target_socket = Path::new(target_path.trim()).join("mysqld.sock");
    let mut load = Command::new("chroot")
        .arg(root)
        .args([
            "mysql",
            "--user=root",
            &format!(
                "--socket=/{}",
                target_socket.strip_prefix(root).unwrap().display()
            ),
        ])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run mysql");
    {
        use std::io::Write;
        load.stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let loaded = load.wait_with_output().unwrap();
    assert!(
        loaded.status.success(),
        "loading the dump: {}\n{}",
        String::from_utf8_lossy(&loaded.stderr),
        target.log_tail(20)
    );
    assert_eq!(rows(&target).unwrap(), expect_rows(ROWS));
    assert_eq!(
        target.must_sql(
            "SELECT CREATE_OPTIONS FROM information_schema.TABLES WHERE TABLE_SCHEMA='d' AND TABLE_NAME='e'"
        ),
        "ENCRYPTION='Y'"
    );
    let target_uuid = uuid(&target);
    assert!(
        server_keys(&target)
            .iter()
            .any(|k| k.starts_with(&format!("INNODBKey-{target_uuid}-"))),
        "{:?}",
        server_keys(&target)
    );
}

/// Runbook "Replicas": a source and a replica share one KMIP server (one namespace); each makes
/// and uses its own InnoDB and binlog master keys, named with its own server UUID, so nothing
/// collides; encrypted rows and an encrypted binary log replicate through rotations of both keys.
#[test]
fn a_replica_and_its_source_share_the_kmip_server_with_keys_of_their_own() {
    let source_conf = conf_dir(&lab().conf_dir, "rb-repl-source", None);
    let replica_conf = conf_dir(&lab().conf_dir, "rb-repl-replica", None);
    let source = start(
        "rb-repl-source",
        &args(&source_conf, &["--server-id=71", "--binlog-encryption=ON"]),
    );
    source.must_sql(
        "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'Repl-pw-1';
         GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';",
    );
    let replica = start(
        "rb-repl-replica",
        &args(&replica_conf, &["--server-id=72", "--binlog-encryption=ON"]),
    );
    replica.must_sql(&format!(
        "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT={}, SOURCE_USER='repl', SOURCE_PASSWORD='Repl-pw-1', SOURCE_SSL=1;
         START REPLICA;",
        port(&source)
    ));
    let context = || {
        format!(
            "replica status: {:?}\nreplica log:\n{}",
            replica.sql("SHOW REPLICA STATUS\\G"),
            replica.log_tail(20)
        )
    };
    write_rows(&source, 1, ROWS);
    poll(
        "the rows on the replica",
        Duration::from_secs(120),
        context,
        || (rows(&replica).ok()? == expect_rows(ROWS)).then_some(()),
    );
    source.must_sql(
        "ALTER INSTANCE ROTATE BINLOG MASTER KEY; ALTER INSTANCE ROTATE INNODB MASTER KEY",
    );
    replica.must_sql(
        "ALTER INSTANCE ROTATE BINLOG MASTER KEY; ALTER INSTANCE ROTATE INNODB MASTER KEY",
    );
    write_rows(&source, ROWS + 1, 2 * ROWS);
    poll(
        "the rows after the rotations",
        Duration::from_secs(120),
        context,
        || (rows(&replica).ok()? == expect_rows(2 * ROWS)).then_some(()),
    );

    let (source_uuid, replica_uuid) = (uuid(&source), uuid(&replica));
    assert_ne!(source_uuid, replica_uuid);
    for (db, own, other) in [
        (&source, &source_uuid, &replica_uuid),
        (&replica, &replica_uuid, &source_uuid),
    ] {
        let keys = server_keys(db);
        assert!(
            keys.iter()
                .any(|k| k.starts_with(&format!("INNODBKey-{own}-"))),
            "{keys:?}"
        );
        assert!(
            keys.iter()
                .any(|k| k.starts_with(&format!("MySQLReplicationKey_{own}_"))),
            "{keys:?}"
        );
        // One identity, one namespace: each lists the other's keys too, and never uses them.
        assert!(
            listed_keys(db)
                .iter()
                .any(|k| k.starts_with(&format!("INNODBKey-{other}-"))),
            "{:?}",
            listed_keys(db)
        );
    }
    // Both binary logs (and the replica's relay log) are encrypted.
    for db in [&source, &replica] {
        assert_eq!(
            db.must_sql("SELECT COUNT(*) FROM performance_schema.global_variables WHERE VARIABLE_NAME='binlog_encryption' AND VARIABLE_VALUE='ON'"),
            "1"
        );
    }
    replica.must_sql("STOP REPLICA");
}

/// Runbook "The KMIP server lost and restored from its backup": a backup taken before an
/// InnoDB master key rotation does not hold the new master key, and the encrypted tables
/// cannot be opened with it (the plugin names the key it cannot find); the backup taken after
/// the rotation brings everything back. Hence: back the KMIP server up after every rotation.
#[test]
fn a_kmip_server_restored_from_a_backup_older_than_the_last_rotation_lacks_the_master_key() {
    let kmip = Named::start("rbrestore", "p256");
    let relay = TcpProxy::start(([127, 0, 0, 1], kmip.port()).into());
    let conf = conf_dir(&kmip.conf_dir(), "rb-restore", Some(relay.addr));
    let db_args = args(&conf, &[]);
    let db = start("rb-restore", &db_args);
    write_rows(&db, 1, ROWS);
    let database = kmip.conf_dir().parent().unwrap().join("pykmip.db");
    let backups = tempfile::tempdir().unwrap();
    let before = backups.path().join("before-rotation.db");
    let after = backups.path().join("after-rotation.db");
    backup(&database, &before);
    db.must_sql("ALTER INSTANCE ROTATE INNODB MASTER KEY");
    let uuid = uuid(&db);
    let newest = server_keys(&db)
        .into_iter()
        .filter(|k| k.starts_with(&format!("INNODBKey-{uuid}-")))
        .max_by_key(|k| k.rsplit('-').next().unwrap().parse::<u64>().unwrap())
        .expect("a master key");
    backup(&database, &after);

    // The KMIP server is lost; it is restored from the older backup (on another port, as a
    // rebuilt host may be), and mysqld restarts.
    let restart: Vec<&str> = db_args.iter().map(String::as_str).collect();
    let restore = |from: &Path| {
        kmip.script(&["stop"]);
        std::fs::copy(from, &database).unwrap();
        kmip.script(&["start"]);
        relay.set_upstream(([127, 0, 0, 1], kmip.port()).into());
        mysql::script(&["stop", &db.name]).unwrap();
        let from_log = db.log().len();
        // mysqld may refuse to start or start without the tablespace: both are what the
        // runbook describes; the rows must not be readable, and the log must name the key.
        let started = mysql::script(&{
            let mut a = vec!["start", db.name.as_str()];
            a.extend_from_slice(&restart);
            a
        });
        (
            started,
            db.log().get(from_log..).unwrap_or_default().to_string(),
        )
    };
    let (started, log) = restore(&before);
    if started.is_ok() {
        assert!(
            rows(&db).is_err(),
            "rows read without the newest master key"
        );
    }
    let missing: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("keyring_okv")
                && l.contains("[ERROR]")
                && l.contains(&format!(
                    "InnoDB master key '{newest}' is not on KMIP server"
                ))
                && l.contains("restore a backup made after it")
        })
        .collect();
    assert_eq!(
        missing.len(),
        1,
        "one line names the missing key {newest}:\n{log}"
    );

    let (started, log) = restore(&after);
    started.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert_eq!(rows(&db).unwrap(), expect_rows(ROWS));
}

/// An online copy of PyKMIP's SQLite database (the server keeps running).
fn backup(database: &Path, to: &Path) {
    let python = lab().conf_dir.parent().unwrap().join("venv/bin/python");
    let status = Command::new(python)
        .args([
            "-c",
            "import sqlite3, sys; s = sqlite3.connect(sys.argv[1]); d = sqlite3.connect(sys.argv[2]); s.backup(d); d.close(); s.close()",
        ])
        .arg(database)
        .arg(to)
        .status()
        .expect("run python");
    assert!(status.success(), "backup of {}", database.display());
}
