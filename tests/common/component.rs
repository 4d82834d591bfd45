//! The keyring component in the real mysqld 9.7: the library installed into the chroot's plugin
//! directory as component_keyring_okv.so, instances whose data-directory manifest loads it, and
//! the component's configuration file beside it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::mysql::{self, Instance};

/// target/<profile>/libcomponent_keyring_okv.so, built from the current sources.
pub fn component_library() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        super::libs::build_library("component_keyring_okv", "libcomponent_keyring_okv.so")
    })
    .clone()
}

/// tests/c/component_host.c (which loads the component as mysqld does), compiled once per test
/// binary.
pub fn host_program() -> &'static Path {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out =
            std::env::temp_dir().join(format!("keyring_okv_component_host_{}", std::process::id()));
        let status = Command::new("cc")
            .args(["-Wall", "-Wextra", "-Werror", "-I"])
            .arg(root.join("include"))
            .arg("-o")
            .arg(&out)
            .arg(root.join("tests/c/component_host.c"))
            .arg("-ldl")
            .status()
            .expect("run cc");
        assert!(
            status.success(),
            "compiling tests/c/component_host.c failed"
        );
        out
    })
}

/// The chroot's plugin directory (host path) with our component and the global configuration
/// files of both keyring components, which send each instance to its own data directory.
pub fn plugin_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        mysql::root();
        let dir = PathBuf::from(
            mysql::script(&["plugin-dir"])
                .expect("plugin-dir")
                .trim()
                .to_string(),
        );
        // Copy then rename: a running mysqld keeps its mapping of an older copy.
        let tmp = dir.join(".component_keyring_okv.so.new");
        std::fs::copy(component_library(), &tmp).expect("copy the component into the chroot");
        std::fs::rename(&tmp, dir.join("component_keyring_okv.so")).expect("install component");
        for name in ["component_keyring_okv.cnf", "component_keyring_file.cnf"] {
            std::fs::write(dir.join(name), "{\"read_local_config\": true}\n").unwrap();
        }
        dir
    })
}

/// Host path of an instance's directory (`/srv/mysql/<name>` inside the chroot).
pub fn instance_dir(name: &str) -> PathBuf {
    PathBuf::from(mysql::script(&["path", name]).expect("path").trim())
}

/// Host path of an instance's data directory.
pub fn data_dir(name: &str) -> PathBuf {
    instance_dir(name).join("data")
}

/// Chroot path of an instance's data directory.
pub fn data_dir_in_chroot(name: &str) -> String {
    format!("/srv/mysql/{name}/data")
}

pub const MANIFEST_OKV: &str = "{\"components\": \"file://component_keyring_okv\"}\n";
pub const MANIFEST_FILE: &str = "{\"components\": \"file://component_keyring_file\"}\n";

/// Writes the instance's manifest (None removes it) and, if given, its component configuration.
pub fn configure(name: &str, manifest: Option<&str>, cnf: Option<&str>) {
    plugin_dir();
    let data = data_dir(name);
    match manifest {
        Some(text) => std::fs::write(data.join("mysqld.my"), text).unwrap(),
        None => {
            let _ = std::fs::remove_file(data.join("mysqld.my"));
        }
    }
    if let Some(text) = cnf {
        std::fs::write(data.join("component_keyring_okv.cnf"), text).unwrap();
    }
}

/// A fresh, initialised instance that loads the component from its manifest with `cnf`.
/// mysqld --initialize needs an empty data directory, so the instance is first started
/// without a keyring, then configured and restarted.
pub fn fresh(name: &str, cnf: &str) -> Instance {
    plugin_dir();
    let db = Instance::fresh(name, &[]);
    configure(name, Some(MANIFEST_OKV), Some(cnf));
    db.restart(&[]);
    db
}

/// The configuration pointing at a KMIP configuration directory, with extra JSON members.
pub fn cnf(dir: &str, extra: &str) -> String {
    if extra.is_empty() {
        format!("{{\"kmip_configuration_directory\": \"{dir}\"}}\n")
    } else {
        format!("{{\"kmip_configuration_directory\": \"{dir}\", {extra}}}\n")
    }
}

/// Copies a KMIP configuration directory into the chroot at /srv/<name>, optionally with
/// another okvclient.ora, and returns the path mysqld sees.
pub fn conf_dir_in_chroot(src: &Path, name: &str, okvclient_ora: Option<String>) -> String {
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
    if let Some(text) = okvclient_ora {
        std::fs::write(copy.join("okvclient.ora"), text).unwrap();
    }
    let _ = std::fs::remove_dir_all(mysql::root().join(dest.trim_start_matches('/')));
    mysql::copy_in(&copy, &dest);
    dest
}

/// The keyring_component_status rows as (key, value).
pub fn status(db: &Instance) -> Vec<(String, String)> {
    db.must_sql("SELECT STATUS_KEY, STATUS_VALUE FROM performance_schema.keyring_component_status")
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// One status row's value.
pub fn status_value(db: &Instance, key: &str) -> String {
    status(db)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no status row {key}: {:?}", status(db)))
}

/// The component's lines of the error log.
pub fn component_log(db: &Instance) -> Vec<String> {
    db.log()
        .lines()
        .filter(|l| l.contains("component_keyring_okv"))
        .map(str::to_string)
        .collect()
}

/// keyring_udf reports a keyring failure either as an SQL error or as NULL.
pub fn refused(result: &Result<String, String>) -> bool {
    match result {
        Err(_) => true,
        Ok(value) => value == "NULL",
    }
}
