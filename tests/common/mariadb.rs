//! Real MariaDB servers (scripts/mariadb-real.sh) running kmip_key_management.so: 10.11 from
//! the machine's Debian 12 packages and 11.8 from Debian trixie in a chroot, the same library
//! in both.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// MariaDB 10.11 on the host.
    Host,
    /// MariaDB 11.8 in the trixie chroot.
    Chroot,
}

impl Target {
    fn env(self) -> &'static str {
        match self {
            Target::Host => "host",
            Target::Chroot => "chroot",
        }
    }

    /// The major.minor the target must run.
    pub fn series(self) -> &'static str {
        match self {
            Target::Host => "10.11.",
            Target::Chroot => "11.8.",
        }
    }
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// target/<profile>/libkmip_key_management.so, built from the current sources.
pub fn plugin_library() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        super::libs::build_library("kmip_key_management", "libkmip_key_management.so")
    })
    .clone()
}

pub fn script(target: Target, args: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo_root().join("scripts/mariadb-real.sh"))
        .args(args)
        .env("KEYRING_OKV_MARIADB_TARGET", target.env())
        .env("KEYRING_OKV_MARIADB_PLUGIN", plugin_library())
        .output()
        .expect("run scripts/mariadb-real.sh")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn must(target: Target, args: &[&str]) -> String {
    let out = script(target, args);
    assert!(
        out.status.success(),
        "scripts/mariadb-real.sh {args:?} ({target:?}) failed:\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Installs the target once per test binary.
pub fn installed(target: Target) {
    static HOST: OnceLock<()> = OnceLock::new();
    static CHROOT: OnceLock<()> = OnceLock::new();
    let once = match target {
        Target::Host => &HOST,
        Target::Chroot => &CHROOT,
    };
    once.get_or_init(|| {
        must(target, &["install"]);
        let version = must(target, &["version"]);
        assert!(
            version.contains(&format!("Ver {}", target.series())),
            "{target:?} runs {version}"
        );
    });
}

pub struct Instance {
    pub target: Target,
    pub name: String,
}

impl Instance {
    /// A new, empty instance (not started).
    pub fn new(target: Target, name: &str) -> Instance {
        installed(target);
        let _ = script(target, &["reset", name]);
        Instance {
            target,
            name: name.to_string(),
        }
    }

    /// Copies a conf dir into the instance; returns its path as mariadbd sees it.
    pub fn conf(&self, src: &Path) -> String {
        must(
            self.target,
            &["conf", &self.name, src.to_str().expect("UTF-8 path")],
        )
        .trim()
        .to_string()
    }

    /// Starts with `args` (stored for later restarts); Err(script output) if it did not start.
    pub fn start(&self, args: &[String]) -> Result<(), String> {
        let mut all = vec!["restart".to_string(), self.name.clone()];
        all.extend_from_slice(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = script(self.target, &all);
        if out.status.success() {
            Ok(())
        } else {
            Err(text(&out))
        }
    }

    pub fn must_start(&self, args: &[String]) {
        if let Err(e) = self.start(args) {
            panic!(
                "{:?} instance {} did not start:\n{e}",
                self.target, self.name
            );
        }
    }

    /// Restarts with the stored arguments.
    pub fn restart(&self) -> Result<(), String> {
        self.start(&[])
    }

    pub fn stop(&self) {
        must(self.target, &["stop", &self.name]);
    }

    pub fn sql(&self, query: &str) -> Result<String, String> {
        let out = script(self.target, &["sql", &self.name, query]);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        } else {
            Err(text(&out))
        }
    }

    pub fn must_sql(&self, query: &str) -> String {
        self.sql(query).unwrap_or_else(|e| {
            panic!(
                "SQL failed on {}: {query}\n{e}\nerror log:\n{}",
                self.name,
                self.log_tail(40)
            )
        })
    }

    /// A status variable of the plugin (without the prefix), as a number.
    pub fn status(&self, name: &str) -> u64 {
        let v = self.must_sql(&format!(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='KMIP_KEY_MANAGEMENT_{}'",
            name.to_uppercase()
        ));
        v.parse()
            .unwrap_or_else(|_| panic!("status {name} is not a number: {v:?}"))
    }

    /// Runs a program of the target (paths as mariadbd sees them).
    pub fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["run", self.name.as_str()];
        all.extend_from_slice(args);
        script(self.target, &all)
    }

    /// The instance directory as mariadbd sees it.
    pub fn inner(&self) -> String {
        must(self.target, &["inner", &self.name]).trim().to_string()
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(must(self.target, &["path", &self.name]).trim())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("error.log")).unwrap_or_default()
    }

    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The error log from the last start on.
    pub fn last_start_log(&self) -> String {
        let log = self.log();
        match log.rfind("\n=== ") {
            Some(i) => log[i + 1..].to_string(),
            None => log,
        }
    }

    /// The plugin's own error lines since the last start.
    pub fn plugin_errors(&self) -> Vec<String> {
        self.last_start_log()
            .lines()
            .filter(|l| l.contains("[ERROR] kmip_key_management:"))
            .map(str::to_string)
            .collect()
    }

    /// Waits (polling, at most `secs` seconds) until `query` returns `want`.
    pub fn wait_for(&self, query: &str, want: &str, secs: u64) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if self.sql(query).as_deref() == Ok(want) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = script(self.target, &["stop", &self.name]);
    }
}

/// The plugin's options for a conf dir (as mariadbd sees it) and namespace, FORCE-loaded.
pub fn plugin_args(conf_dir: &str, namespace: &str) -> Vec<String> {
    vec![
        "--plugin-load-add=kmip_key_management".into(),
        "--kmip-key-management=FORCE".into(),
        format!("--kmip-key-management-conf-dir={conf_dir}"),
        format!("--kmip-key-management-key-namespace={namespace}"),
    ]
}

/// Every encryption option the issue names, with background re-encryption on.
pub fn encryption_args() -> Vec<String> {
    [
        "--innodb-encrypt-tables=ON",
        "--innodb-encrypt-log=ON",
        "--innodb-encryption-threads=2",
        "--innodb-encryption-rotate-key-age=1",
        "--encrypt-binlog=ON",
        "--encrypt-tmp-files=ON",
        "--encrypt-tmp-disk-tables=ON",
        "--aria-encrypt-tables=ON",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// `keyring-okv --conf-dir DIR mariadb ARGS...` (the admin tool of this package).
pub fn admin(keyring_okv: &str, conf_dir: &Path, args: &[&str]) -> Output {
    Command::new(keyring_okv)
        .arg("--conf-dir")
        .arg(conf_dir)
        .arg("mariadb")
        .args(args)
        .output()
        .expect("run keyring-okv")
}

/// Makes version 1 of each key id in `namespace` with the admin tool (`keyring_okv`, the
/// test's `CARGO_BIN_EXE_keyring-okv`) through the configuration directory `conf`.
pub fn create_keys(keyring_okv: &str, conf: &Path, namespace: &str, ids: &[u32]) {
    for id in ids {
        let out = admin(
            keyring_okv,
            conf,
            &["create-key", &id.to_string(), "--namespace", namespace],
        );
        assert!(
            out.status.success(),
            "create-key {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// (key id, version) of every version of `namespace` on the KMIP server, sorted.
pub fn versions_on_server(keyring_okv: &str, conf: &Path, namespace: &str) -> Vec<(u64, u64)> {
    let out = Command::new(keyring_okv)
        .arg("--conf-dir")
        .arg(conf)
        .args(["--json", "mariadb", "list", "--namespace", namespace])
        .output()
        .expect("run keyring-okv");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut versions: Vec<(u64, u64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key_id"].as_u64().unwrap(),
                r["version"].as_u64().unwrap(),
            )
        })
        .collect();
    versions.sort_unstable();
    versions
}

/// A copy of the configuration directory `src` in `dir` whose okvclient.ora names only
/// `server` (a proxy in front of the real one), followed by `extra` lines.
pub fn conf_through(src: &Path, dir: &Path, server: std::net::SocketAddr, extra: &str) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dir)
        .status()
        .expect("run cp");
    assert!(status.success());
    std::fs::write(
        dir.join("okvclient.ora"),
        format!("SERVER={server}\n{extra}"),
    )
    .unwrap();
}
