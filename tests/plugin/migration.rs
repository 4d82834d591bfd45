//! The migration paths of the manual's guide "From Oracle's keyring_okv" (docs/migration.md),
//! with the real mysqld 9.7 and MySQL's own offline keyring migration. Oracle's plugin is not
//! available here: this project's plugin on one PyKMIP server stands in for it.
//!
//! Two steps into the plugin: keys leave a keyring plugin named keyring_okv for
//! component_keyring_file (`--keyring-migration-to-component`), then go from
//! component_keyring_file into this project's keyring_okv.so on another KMIP server
//! (`--keyring-migration-from-component`), and the server starts on that; both plugins are
//! named keyring_okv, so mysqld cannot load the two at once.
//!
//! One step into the component: `--keyring-migration-to-component` straight into
//! component_keyring_okv on another KMIP server, whose name differs from the plugin's.

#[path = "../common/mod.rs"]
mod common;

use std::process::Command;

use common::component;
use common::mysql::{self, Instance};
use common::pykmip::{lab, remove_udf_leftovers, repo_root};

const NAME: &str = "docs-migrate";
const PYKMIP: &str = "docs_migration";

/// A PyKMIP instance of its own (the "new" key server), emptied first.
struct NewKmip {
    conf_dir: std::path::PathBuf,
    name: &'static str,
}

fn pykmip(name: &str, args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/pykmip.sh"))
        .args(args)
        .env("KEYRING_OKV_PYKMIP_NAME", name)
        .output()
        .expect("run scripts/pykmip.sh");
    assert!(
        out.status.success(),
        "pykmip.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl NewKmip {
    fn start(name: &'static str) -> NewKmip {
        lab();
        pykmip(name, &["reset"]);
        pykmip(name, &["start"]);
        NewKmip {
            conf_dir: pykmip(name, &["confdir"]).trim().into(),
            name,
        }
    }
}

impl Drop for NewKmip {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("scripts/pykmip.sh"))
            .arg("stop")
            .env("KEYRING_OKV_PYKMIP_NAME", self.name)
            .output();
    }
}

/// A plugin directory of the migration's own (host path, and the path mysqld sees): the two
/// keyrings' libraries and the destination component's global configuration file (`cnf`:
/// file name, content). In an offline migration a keyring component could not read its
/// configuration through `read_local_config` (the shared plugin directory's global file says
/// so for the other tests).
fn migration_plugin_dir(name: &str, component: &str, cnf: (&str, &str)) -> String {
    let inner = format!("/srv/mysql/{name}/migration-plugins");
    let dir = mysql::root().join(inner.trim_start_matches('/'));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let shared = component::plugin_dir();
    for lib in ["keyring_okv.so", component] {
        std::fs::copy(shared.join(lib), dir.join(lib)).unwrap();
    }
    std::fs::write(dir.join(cnf.0), cnf.1).unwrap();
    inner
}

/// The plugin directory of the two-step path: component_keyring_file writes the key file.
fn file_keyring_plugin_dir() -> String {
    migration_plugin_dir(
        NAME,
        "component_keyring_file.so",
        (
            "component_keyring_file.cnf",
            &format!("{{\"path\": \"/srv/mysql/{NAME}/keys-migrated\", \"read_only\": false}}\n"),
        ),
    )
}

/// Runs mysqld's offline keyring migration for the (stopped) instance `name` with the plugin
/// directory `plugins`: mysqld copies the keys and exits.
fn offline_migration(name: &str, plugins: &str, args: &[&str]) {
    let out = Command::new("chroot")
        .arg(mysql::root())
        .arg("/usr/sbin/mysqld")
        // Not the instance's my.cnf: a migration refuses options of plugins it does not load
        // (mysqlx=OFF).
        .arg("--no-defaults")
        .arg("--user=root")
        .arg(format!("--datadir=/srv/mysql/{name}/data"))
        .arg(format!("--log-error=/srv/mysql/{name}/migration.log"))
        .arg(format!("--secure-file-priv=/srv/mysql/{name}/files"))
        .arg(format!("--plugin-dir={plugins}"))
        .args(args)
        .output()
        .expect("run mysqld --keyring-migration-*");
    let log = std::fs::read_to_string(component::instance_dir(name).join("migration.log"))
        .unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    assert!(
        out.status.success(),
        "mysqld {args:?} failed:\n{}{}\nerror log (last lines, newest first):\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        tail.join("\n")
    );
}

#[test]
fn out_of_a_keyring_okv_plugin_through_a_file_keyring_into_ours() {
    let new = NewKmip::start(PYKMIP);
    let old_dir = component::conf_dir_in_chroot(&lab().conf_dir, "docs-migrate-old", None);
    let new_dir = component::conf_dir_in_chroot(&new.conf_dir, "docs-migrate-new", None);
    remove_udf_leftovers(&["DocsMigratedKey"]);
    // The component and the global component_keyring_file.cnf that defers to the data directory.
    component::plugin_dir();

    // The old keyring: a plugin named keyring_okv on the old KMIP server.
    let old_plugin = format!("--loose-keyring_okv_conf_dir={old_dir}");
    let db = Instance::fresh(NAME, &["--early-plugin-load=keyring_okv.so", &old_plugin]);
    db.udf();
    assert_eq!(
        db.must_sql("SELECT keyring_key_store('DocsMigratedKey', 'SECRET', 'travels')"),
        "1"
    );
    db.must_sql("CREATE DATABASE IF NOT EXISTS e2e");
    db.must_sql("CREATE TABLE e2e.t (a INT) ENCRYPTION='Y'");
    db.must_sql("INSERT INTO e2e.t VALUES (42)");
    mysql::script(&["stop", NAME]).unwrap();

    // Step 1: out of the plugin into component_keyring_file (a file in the instance directory).
    let keys = component::instance_dir(NAME).join("keys-migrated");
    let _ = std::fs::remove_file(&keys);
    offline_migration(
        NAME,
        &file_keyring_plugin_dir(),
        &[
            "--keyring-migration-source=keyring_okv.so",
            &old_plugin,
            "--keyring-migration-to-component",
            "--keyring-migration-destination=component_keyring_file.so",
        ],
    );
    let text = std::fs::read_to_string(&keys).expect("the file keyring was written");
    assert!(text.contains("\"data_id\":\"DocsMigratedKey\""), "{text}");
    assert!(text.contains("\"data_id\":\"INNODBKey-"), "{text}");

    // Step 3: from component_keyring_file into this project's plugin on the new KMIP server.
    let new_plugin = format!("--loose-keyring_okv_conf_dir={new_dir}");
    offline_migration(
        NAME,
        &file_keyring_plugin_dir(),
        &[
            "--keyring-migration-from-component",
            "--keyring-migration-source=component_keyring_file.so",
            "--keyring-migration-destination=keyring_okv.so",
            &new_plugin,
        ],
    );

    // Step 4: the server on the new KMIP server only reads the table and the key.
    db.restart(&["--early-plugin-load=keyring_okv.so", &new_plugin]);
    assert_eq!(
        db.must_sql(
            "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME='keyring_okv'"
        ),
        "ACTIVE"
    );
    assert_eq!(db.must_sql("SELECT a FROM e2e.t"), "42");
    assert_eq!(
        db.must_sql("SELECT keyring_key_fetch('DocsMigratedKey')"),
        "travels"
    );
    let listed = db.must_sql("SELECT KEY_ID FROM performance_schema.keyring_keys");
    assert!(listed.lines().any(|l| l == "DocsMigratedKey"), "{listed}");
    db.must_sql("ALTER INSTANCE ROTATE INNODB MASTER KEY");
    db.must_sql("INSERT INTO e2e.t VALUES (43)");

    // The old server still holds its copy: the guide keeps it until the new one has served.
    mysql::script(&["stop", NAME]).unwrap();
    let _ = std::fs::remove_file(&keys);
    remove_udf_leftovers(&["DocsMigratedKey"]);
    drop(new);
}

const ONE_STEP: &str = "migr-onestep";
const ONE_STEP_PYKMIP: &str = "migr_onestep";

/// The one-step path of the guide: `--keyring-migration-to-component` straight from a keyring
/// plugin named keyring_okv (the stand-in for Oracle's, on one KMIP server) into this project's
/// component_keyring_okv on another KMIP server, with no key file in between (the plugin and the
/// component have different names, so mysqld loads both); then the server starts with the
/// component alone.
#[test]
fn out_of_a_keyring_okv_plugin_into_our_component_in_one_step() {
    let new = NewKmip::start(ONE_STEP_PYKMIP);
    let old_dir = component::conf_dir_in_chroot(&lab().conf_dir, "migr-onestep-old", None);
    let new_dir = component::conf_dir_in_chroot(&new.conf_dir, "migr-onestep-new", None);
    remove_udf_leftovers(&["MigrOneStepKey"]);
    component::plugin_dir();

    let old_plugin = format!("--loose-keyring_okv_conf_dir={old_dir}");
    let db = Instance::fresh(
        ONE_STEP,
        &["--early-plugin-load=keyring_okv.so", &old_plugin],
    );
    db.udf();
    assert_eq!(
        db.must_sql("SELECT keyring_key_store('MigrOneStepKey', 'SECRET', 'one step')"),
        "1"
    );
    db.must_sql("CREATE DATABASE IF NOT EXISTS e2e");
    db.must_sql("CREATE TABLE e2e.t (a INT) ENCRYPTION='Y'");
    db.must_sql("INSERT INTO e2e.t VALUES (42)");
    mysql::script(&["stop", ONE_STEP]).unwrap();

    let plugins = migration_plugin_dir(
        ONE_STEP,
        "component_keyring_okv.so",
        ("component_keyring_okv.cnf", &component::cnf(&new_dir, "")),
    );
    offline_migration(
        ONE_STEP,
        &plugins,
        &[
            "--keyring-migration-source=keyring_okv.so",
            &old_plugin,
            "--keyring-migration-to-component",
            "--keyring-migration-destination=component_keyring_okv.so",
        ],
    );

    // The keys are on the new KMIP server, named as both of this project's libraries name them.
    let out = Command::new(env!("CARGO_BIN_EXE_keyring-okv"))
        .arg("--conf-dir")
        .arg(&new.conf_dir)
        .arg("list")
        .output()
        .expect("run keyring-okv list");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        listed.contains("MigrOneStepKey") && listed.contains("INNODBKey-"),
        "{listed}"
    );

    // The component alone, on the new KMIP server, reads the table and the key.
    component::configure(
        ONE_STEP,
        Some(component::MANIFEST_OKV),
        Some(&component::cnf(&new_dir, "")),
    );
    // New arguments replace the stored ones, which load the plugin.
    db.restart(&["--server-id=1"]);
    assert_eq!(component::status_value(&db, "Component_status"), "Active");
    assert_eq!(db.must_sql("SELECT a FROM e2e.t"), "42");
    assert_eq!(
        db.must_sql("SELECT keyring_key_fetch('MigrOneStepKey')"),
        "one step"
    );
    db.must_sql("ALTER INSTANCE ROTATE INNODB MASTER KEY");
    db.must_sql("INSERT INTO e2e.t VALUES (43)");
    db.restart(&[]);
    assert_eq!(db.must_sql("SELECT SUM(a) FROM e2e.t"), "85");

    mysql::script(&["stop", ONE_STEP]).unwrap();
    remove_udf_leftovers(&["MigrOneStepKey"]);
    drop(new);
}
