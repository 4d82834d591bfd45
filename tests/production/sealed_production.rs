//! The sealed key cache on a production-shaped host (issue 25, "Done when"): each server runs
//! as the `mysql` account with `/etc` read-only (tests/common/service.rs), its configuration
//! directory under `/etc/mysql/` (root:mysql, 750/640), the cache in its default directory
//! `/var/lib/mysql-keyring` (or one of the test's own where two tests share a root).
//!
//! - For the plugin and the component in mysqld 9.7 and for MariaDB 10.11 and 11.8: the client
//!   key pair is renewed in place while the server runs; once the server has made a new KMIP
//!   connection, its file opens under the new identity; then the KMIP server refuses
//!   connections and the server restarts from the file, and the encrypted rows read back. The
//!   file belongs to mysql (0600) and nothing was written under `/etc`.
//! - MariaDB 10.11: `mariadb-backup --backup` (as root, with the plugin and the server's
//!   settings) while mariadbd rotates a key, then `--prepare`: the server's file holds the new
//!   version and still belongs to mysql; the backup, restored into a fresh data directory,
//!   starts while the KMIP server refuses, and its encrypted table reads back.
//!
//! One PyKMIP (the lab's) serves every test, each through a relay of its own that refuses
//! connections on demand; the tests run side by side (own instances, directories and files).

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::mariadb::{Target, create_keys, encryption_args, plugin_args, versions_on_server};
use common::pykmip::{lab, unique};
use common::service::{
    ConfDir, KEYRING_DIR, Server, Service, keyring_dir, mode_owner, owned_by, wait_for, walk,
};
use common::tcp_proxy::TcpProxy;
use okv_core::config::load_conf_dir;
use okv_core::sealed::{self, file};

const KEYRING_OKV: &str = env!("CARGO_BIN_EXE_keyring-okv");
const ROWS: u32 = 300;
/// How long a server may take to re-seal after the renewal, or to answer a status change, on a
/// loaded machine.
const WITHIN: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Product {
    Plugin,
    Component,
    Mariadb(Target),
}

impl Product {
    fn server(self) -> Server {
        match self {
            Product::Plugin | Product::Component => Server::Mysql,
            Product::Mariadb(target) => Server::Mariadb(target),
        }
    }

    fn sealed(self) -> sealed::Product {
        match self {
            Product::Plugin => sealed::PLUGIN,
            Product::Component => sealed::COMPONENT,
            Product::Mariadb(_) => sealed::MARIADB,
        }
    }

    fn file_name(self) -> String {
        format!("{}.sealed", self.sealed().name)
    }

    /// A status value of the sealed key cache, by its name without the product's prefix
    /// (`file`, `serving`, `keys`).
    fn status(self, db: &Service, name: &str) -> String {
        match self {
            Product::Plugin => {
                let row = db.must_sql(&format!(
                    "SHOW GLOBAL STATUS LIKE 'Keyring_okv_sealed_cache_{name}'"
                ));
                row.split_once('\t')
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_else(|| panic!("no Keyring_okv_sealed_cache_{name}: {row:?}"))
            }
            Product::Component => {
                let key = format!("Sealed_cache_{name}");
                let v = db.must_sql(&format!(
                    "SELECT STATUS_VALUE FROM performance_schema.keyring_component_status WHERE STATUS_KEY='{key}'"
                ));
                assert!(!v.is_empty(), "no status row {key}");
                v
            }
            Product::Mariadb(_) => {
                let var = format!("KMIP_KEY_MANAGEMENT_SEALED_CACHE_{}", name.to_uppercase());
                let v = db.must_sql(&format!(
                    "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='{var}'"
                ));
                assert!(!v.is_empty(), "no status variable {var}");
                v
            }
        }
    }

    fn serving(self, db: &Service) -> bool {
        let v = self.status(db, "serving");
        matches!(v.as_str(), "ON" | "Yes")
    }

    /// Starts a fresh instance with the cache on in its default directory (`dir` None) or in
    /// `dir`.
    fn start(self, db: &Service, conf: &ConfDir, dir: Option<&str>) {
        match self {
            Product::Plugin => {
                let plugins =
                    own_plugin_dir(db, &[(common::host::plugin_library(), "keyring_okv.so")]);
                let mut args = vec![
                    format!("--plugin-dir={plugins}"),
                    "--early-plugin-load=keyring_okv.so".to_string(),
                    format!("--keyring_okv_conf_dir={}", conf.inner),
                    "--keyring_okv_sealed_cache_max_age_hours=24".to_string(),
                ];
                if let Some(dir) = dir {
                    args.push(format!("--keyring_okv_sealed_cache_dir={dir}"));
                }
                db.must_start(&args);
                assert_eq!(
                    db.must_sql("SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME='keyring_okv'"),
                    "ACTIVE",
                    "{}",
                    db.log_tail(30)
                );
                assert_eq!(
                    db.must_sql("SELECT @@keyring_okv_sealed_cache_dir"),
                    dir.unwrap_or(KEYRING_DIR)
                );
            }
            Product::Component => {
                use common::component;
                let plugins = own_plugin_dir(
                    db,
                    &[(component::component_library(), "component_keyring_okv.so")],
                );
                // The component reads its configuration from the data directory.
                std::fs::write(
                    db.server
                        .host_path(&plugins)
                        .join("component_keyring_okv.cnf"),
                    "{\"read_local_config\": true}\n",
                )
                .unwrap();
                // --initialize needs an empty data directory: the manifest comes after.
                db.must_start(&[format!("--plugin-dir={plugins}")]);
                let extra = match dir {
                    Some(dir) => {
                        format!(
                            "\"sealed_cache_max_age_hours\": 24, \"sealed_cache_dir\": \"{dir}\""
                        )
                    }
                    None => "\"sealed_cache_max_age_hours\": 24".to_string(),
                };
                component::configure(
                    &db.name,
                    Some(component::MANIFEST_OKV),
                    Some(&component::cnf(&conf.inner, &extra)),
                );
                db.restart()
                    .unwrap_or_else(|e| panic!("{e}\n{}", db.log_tail(30)));
                assert_eq!(self.status(db, "max_age_hours"), "24");
                let status = db.must_sql(
                    "SELECT STATUS_VALUE FROM performance_schema.keyring_component_status WHERE STATUS_KEY='Component_status'",
                );
                assert_eq!(status, "Active", "{}", db.log_tail(30));
            }
            Product::Mariadb(_) => {
                let namespace = unique("prod");
                create_keys(KEYRING_OKV, &lab().conf_dir, &namespace, &[1]);
                let mut args = plugin_args(&conf.inner, &namespace);
                args.extend(encryption_args());
                args.push("--kmip-key-management-sealed-cache-max-age-hours=24".into());
                if let Some(dir) = dir {
                    args.push(format!("--kmip-key-management-sealed-cache-dir={dir}"));
                }
                db.must_start(&args);
                assert_eq!(
                    db.must_sql("SELECT @@kmip_key_management_sealed_cache_dir"),
                    dir.unwrap_or(KEYRING_DIR)
                );
            }
        }
    }

    fn write_rows(self, db: &Service) {
        let options = match self {
            Product::Mariadb(_) => "ENGINE=InnoDB ENCRYPTED=YES",
            _ => "ENCRYPTION='Y'",
        };
        // ROWS stays below both servers' default recursion limits (1000).
        db.must_sql(&format!(
            "CREATE DATABASE d;
             CREATE TABLE d.e (id INT PRIMARY KEY, v VARCHAR(100)) {options};
             INSERT INTO d.e WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM s WHERE n<{ROWS}) SELECT n, CONCAT('row-', n) FROM s;"
        ));
        check_rows(db);
    }

    /// A key operation that makes the server open a new KMIP connection (the old ones were
    /// cut): the renewed identity is picked up there.
    fn key_operation(self, db: &Service) {
        match self {
            Product::Plugin | Product::Component => {
                db.must_sql("ALTER INSTANCE ROTATE INNODB MASTER KEY");
            }
            Product::Mariadb(_) => {
                db.must_sql("SET GLOBAL kmip_key_management_rotate_key = 1");
            }
        }
    }
}

/// A plugin directory of the instance's own with `libs` (built library, name there), as mysqld
/// sees it: the chroot's own plugin directory is shared by every checkout on the machine, and
/// another one's test may put its older build there at any time.
fn own_plugin_dir(db: &Service, libs: &[(PathBuf, &str)]) -> String {
    let inner = format!("{}/plugin", db.inner());
    let dir = db.server.host_path(&inner);
    std::fs::create_dir_all(&dir).unwrap();
    for (lib, name) in libs {
        let staged = dir.join(format!(".{name}.new"));
        std::fs::copy(lib, &staged).unwrap();
        std::fs::rename(&staged, dir.join(name)).unwrap();
    }
    inner
}

fn check_rows(db: &Service) {
    assert_eq!(
        db.must_sql("SELECT COUNT(*), MAX(id), SUM(v LIKE 'row-%') FROM d.e"),
        format!("{ROWS}\t{ROWS}\t{ROWS}")
    );
}

/// The sealed file opened with the key the configuration directory's client identity gives, as
/// the libraries open it.
fn open_sealed(conf: &Path, path: &Path, product: Product) -> Result<file::Contents, String> {
    let conf = load_conf_dir(conf).map_err(|e| e.to_string())?;
    let key = conf.seal_root.key_for(product.sealed().name.as_bytes());
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file::open(path, &key, &bytes).map_err(|e| e.to_string())
}

/// Removes what an earlier run left of this product's file (and the lock or temporary files
/// beside it) in `dir`.
fn remove_leftovers(dir: &Path, product: Product) {
    let name = product.file_name();
    for path in walk(dir) {
        let f = path.file_name().unwrap().to_string_lossy().to_string();
        if f.starts_with(&name) || f.starts_with(&format!(".{name}")) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The lines of a log about the sealed key cache (printed: what the servers said, for CI).
fn sealed_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("sealed")).collect()
}

/// The sealed key cache's complaints in a log: a refused, unreadable or unwritable file.
fn sealed_errors(log: &str) -> Vec<&str> {
    sealed_lines(log)
        .into_iter()
        .filter(|l| l.contains("ERROR") || l.contains("refused") || l.contains("cannot"))
        .collect()
}

/// Lines of `log` from the plugin or the server that say a write met a read-only file system.
fn read_only_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("Read-only file system") || l.contains("os error 30"))
        .map(str::to_string)
        .collect()
}

#[test]
fn renewed_identity_then_outage_restart_plugin_mysql_9_7() {
    renewal_then_outage(Product::Plugin, "prod-plugin");
}

#[test]
fn renewed_identity_then_outage_restart_component_mysql_9_7() {
    renewal_then_outage(Product::Component, "prod-component");
}

#[test]
fn renewed_identity_then_outage_restart_mariadb_10_11_host() {
    renewal_then_outage(Product::Mariadb(Target::Host), "prod-renewal");
}

#[test]
fn renewed_identity_then_outage_restart_mariadb_11_8_chroot() {
    renewal_then_outage(Product::Mariadb(Target::Chroot), "prod-renewal");
}

fn renewal_then_outage(product: Product, instance: &str) {
    let started = Instant::now();
    let server = product.server();
    let account = server.account();
    let etc = server.host_path("/etc");
    let etc_of_mysql = owned_by(&etc, account.uid);
    let proxy = TcpProxy::start(([127, 0, 0, 1], lab().port).into());
    let conf = ConfDir::under_etc(server, instance, &lab().conf_dir, proxy.addr);
    // The default directory, as the package makes it (two products of one root keep two
    // files there).
    let dir = keyring_dir(server, KEYRING_DIR);
    remove_leftovers(&dir, product);
    let file = dir.join(product.file_name());

    let db = Service::new(server, instance);
    product.start(&db, &conf, None);
    db.assert_runs_as_service();
    product.write_rows(&db);
    let context = || format!("{product:?} log:\n{}", db.log_tail(40));
    wait_for("the sealed file to be ok", WITHIN, context, || {
        (product.status(&db, "file") == "ok").then_some(())
    });
    assert_eq!(
        mode_owner(&file),
        (0o600, account.uid),
        "{}",
        file.display()
    );
    open_sealed(&conf.host, &file, product).expect("the file opens under the first identity");

    // The renewal: a new key pair for the same subject from the same CA, in place.
    conf.renew_client_identity(&lab().certs);
    let conf_tree = conf.tree();
    assert!(
        open_sealed(&conf.host, &file, product).is_err(),
        "the file already opens under the renewed identity: the renewal changed nothing"
    );
    // The server's open KMIP connections are cut; its next key operation connects anew, with
    // the renewed identity.
    proxy.set_refuse(true);
    proxy.set_refuse(false);
    product.key_operation(&db);
    wait_for(
        "the sealed file to be re-sealed under the renewed identity",
        WITHIN,
        context,
        || {
            (product.status(&db, "file") == "ok" && open_sealed(&conf.host, &file, product).is_ok())
                .then_some(())
        },
    );
    assert_eq!(
        mode_owner(&file),
        (0o600, account.uid),
        "{}",
        file.display()
    );

    // The KMIP server is down: the restart starts from the sealed file.
    proxy.set_refuse(true);
    let from = db.log().len();
    if let Err(e) = db.restart() {
        panic!(
            "{product:?} did not start from the sealed key cache after the renewal:\n{e}\n{}",
            db.log().get(from..).unwrap_or_default()
        );
    }
    db.assert_runs_as_service();
    check_rows(&db);
    assert!(product.serving(&db), "{}", db.log_tail(30));

    // The file is the service's, and nothing was written under /etc.
    assert_eq!(
        mode_owner(&file),
        (0o600, account.uid),
        "{}",
        file.display()
    );
    assert_eq!(
        conf.tree(),
        conf_tree,
        "the configuration directory changed"
    );
    assert_eq!(
        owned_by(&etc, account.uid),
        etc_of_mysql,
        "files of mysql appeared under /etc"
    );
    let log = db.log();
    assert_eq!(read_only_lines(&log), Vec::<String>::new());

    for line in sealed_lines(&log) {
        eprintln!("{product:?}: {line}");
    }
    drop(db);
    let _ = server.script(&["reset", instance]);
    remove_leftovers(&dir, product);
    eprintln!(
        "{product:?}: renewal then outage in {:?}",
        started.elapsed()
    );
}

/// mariadb-backup as root with the plugin, while mariadbd rotates a key; then a restore that
/// starts during an outage. The file is in a directory of this test's own (the other MariaDB
/// 10.11 test uses the default one on the same host).
#[test]
fn backup_during_rotation_then_restore_during_outage_mariadb_10_11_host() {
    let started = Instant::now();
    let product = Product::Mariadb(Target::Host);
    let server = product.server();
    let account = server.account();
    let proxy = TcpProxy::start(([127, 0, 0, 1], lab().port).into());
    let conf = ConfDir::under_etc(server, "prod-backup", &lab().conf_dir, proxy.addr);
    let db = Service::new(server, "prod-backup");
    // Beside the instance directory, which the lab script hands to mysql at each start: a
    // root-owned file here must stay visible.
    let dir_inner = format!("{}.keyring", db.inner());
    let dir = keyring_dir(server, &dir_inner);
    remove_leftovers(&dir, product);
    let file = dir.join(product.file_name());

    let namespace = unique("prodbackup");
    create_keys(KEYRING_OKV, &lab().conf_dir, &namespace, &[1]);
    let mut args = plugin_args(&conf.inner, &namespace);
    args.extend(encryption_args());
    args.push("--kmip-key-management-sealed-cache-max-age-hours=24".into());
    args.push(format!(
        "--kmip-key-management-sealed-cache-dir={dir_inner}"
    ));
    db.must_start(&args);
    db.assert_runs_as_service();
    product.write_rows(&db);
    let context = || format!("log:\n{}", db.log_tail(40));
    wait_for("the sealed file to be ok", WITHIN, context, || {
        (product.status(&db, "file") == "ok").then_some(())
    });
    let kept: u64 = product.status(&db, "keys").parse().unwrap();

    // --backup, as root: once it has loaded the plugin and waits for the held backup stage,
    // mariadbd rotates key 1.
    let work = tempfile::tempdir().unwrap();
    let mut held = hold_backup_stage(&db);
    let backup = work.path().join("backup");
    let backup_log = work.path().join("backup.log");
    let mut child = Command::new("mariadb-backup")
        .arg("--backup")
        .arg("--user=root")
        .arg(format!("--socket={}/mariadbd.sock", db.inner()))
        .arg(format!("--target-dir={}", backup.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&backup_log).unwrap()))
        .stderr(Stdio::from(
            std::fs::File::options()
                .append(true)
                .open(&backup_log)
                .unwrap(),
        ))
        .spawn()
        .expect("run mariadb-backup");
    let maps = format!("/proc/{}/maps", child.id());
    let backup_text = || std::fs::read_to_string(&backup_log).unwrap_or_default();
    wait_for(
        "mariadb-backup to load kmip_key_management",
        WITHIN,
        backup_text,
        || {
            let loaded =
                std::fs::read_to_string(&maps).is_ok_and(|m| m.contains("kmip_key_management"));
            assert!(
                loaded || child.try_wait().unwrap().is_none(),
                "mariadb-backup ended before it loaded the plugin:\n{}",
                backup_text()
            );
            loaded.then_some(())
        },
    );
    wait_for(
        "mariadb-backup to wait for the held backup stage",
        WITHIN,
        backup_text,
        || {
            let waiting = db.must_sql(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'BACKUP STAGE%'",
            );
            (waiting != "0").then_some(())
        },
    );
    product.key_operation(&db);
    let rotated_while_running = child.try_wait().unwrap().is_none();
    release_backup_stage(&mut held);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "mariadb-backup --backup:\n{}",
        backup_text()
    );
    assert!(backup_text().contains("completed OK"), "{}", backup_text());
    for line in sealed_lines(&backup_text()) {
        eprintln!("mariadb-backup --backup: {line}");
    }
    // The backup tool, run as root, reads the server's file (mysql's) without complaint.
    let backup_output = backup_text();
    let complaints = sealed_errors(&backup_output);
    assert!(
        complaints.is_empty(),
        "mariadb-backup --backup: {complaints:?}"
    );
    assert!(
        rotated_while_running,
        "mariadb-backup ended before the rotation did:\n{}",
        backup_text()
    );
    let out = Command::new("mariadb-backup")
        .arg("--prepare")
        .arg(format!("--target-dir={}", backup.display()))
        .output()
        .unwrap();
    let text = common::service::text(&out);
    assert!(out.status.success(), "mariadb-backup --prepare:\n{text}");
    assert!(text.contains("completed OK"), "{text}");
    for line in sealed_lines(&text) {
        eprintln!("mariadb-backup --prepare: {line}");
    }
    let complaints = sealed_errors(&text);
    assert!(
        complaints.is_empty(),
        "mariadb-backup --prepare: {complaints:?}"
    );

    // The server's file holds the new version, and everything in its directory is mysql's.
    assert_eq!(
        versions_on_server(KEYRING_OKV, &lab().conf_dir, &namespace),
        vec![(1, 1), (1, 2)]
    );
    assert_eq!(
        mode_owner(&file),
        (0o600, account.uid),
        "{}",
        file.display()
    );
    assert_eq!(
        owned_by(&dir, account.uid),
        walk(&dir),
        "files of another account in {dir_inner}"
    );
    let contents = open_sealed(&conf.host, &file, product).expect("open the server's file");
    let newest = format!("{namespace}/1/2");
    assert!(
        contents.entries.keys().any(|(name, _)| *name == newest),
        "{newest} is not in the file: {:?}",
        contents.entries.keys().collect::<Vec<_>>()
    );
    // The admin tool, as root, shows the server's file (it reads another account's file).
    let show = Command::new(KEYRING_OKV)
        .arg("--conf-dir")
        .arg(&conf.host)
        .args(["sealed-cache", "show", "--product", "mariadb", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let shown = common::service::text(&show);
    assert!(show.status.success(), "sealed-cache show:\n{shown}");
    assert!(shown.contains(&newest), "sealed-cache show:\n{shown}");
    wait_for("the sealed file to be ok", WITHIN, context, || {
        (product.status(&db, "file") == "ok").then_some(())
    });
    let now: u64 = product.status(&db, "keys").parse().unwrap();
    assert!(
        now > kept,
        "{now} key versions in the file, {kept} before the rotation"
    );

    // The restore: the prepared backup copied back into a fresh data directory of mysql's,
    // started while the KMIP server refuses.
    db.stop();
    let data: PathBuf = db.path().join("data");
    std::fs::remove_dir_all(&data).unwrap();
    let out = Command::new("mariadb-backup")
        .arg("--copy-back")
        .arg(format!("--target-dir={}", backup.display()))
        .arg(format!("--datadir={}/data", db.inner()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mariadb-backup --copy-back:\n{}",
        common::service::text(&out)
    );
    let chown = Command::new("chown")
        .args(["-R", "mysql:mysql"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(chown.success());
    proxy.set_refuse(true);
    if let Err(e) = db.restart() {
        panic!(
            "the restored backup did not start from the sealed key cache:\n{e}\n{}",
            db.log_tail(40)
        );
    }
    db.assert_runs_as_service();
    check_rows(&db);
    assert!(product.serving(&db), "{}", db.log_tail(30));
    assert_eq!(
        mode_owner(&file),
        (0o600, account.uid),
        "{}",
        file.display()
    );
    let log = db.log();
    assert_eq!(read_only_lines(&log), Vec::<String>::new());
    for line in sealed_lines(&log) {
        eprintln!("mariadbd: {line}");
    }

    drop(db);
    let _ = server.script(&["reset", "prod-backup"]);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("backup and restore in {:?}", started.elapsed());
}

/// A session of the server's that holds `BACKUP STAGE START`: mariadb-backup's own waits
/// for it, so a backup started now stays running, with the plugin loaded, until
/// [`release_backup_stage`].
fn hold_backup_stage(db: &Service) -> std::process::Child {
    use std::io::Write;
    let mut session = Command::new("mariadb")
        .arg(format!("--defaults-file={}/my.cnf", db.inner()))
        .arg("--batch")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run mariadb");
    session
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"BACKUP STAGE START;\nDO GET_LOCK('keyring_okv_backup_held', 0);\n")
        .unwrap();
    wait_for(
        "the session to hold BACKUP STAGE START",
        WITHIN,
        || db.log_tail(20),
        || {
            (db.must_sql("SELECT IS_USED_LOCK('keyring_okv_backup_held') IS NOT NULL") == "1")
                .then_some(())
        },
    );
    session
}

fn release_backup_stage(session: &mut std::process::Child) {
    use std::io::Write;
    let mut stdin = session.stdin.take().unwrap();
    stdin.write_all(b"BACKUP STAGE END;\n").unwrap();
    drop(stdin);
    assert!(session.wait().unwrap().success());
}
