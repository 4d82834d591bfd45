//! A real mysqld 9.7 (scripts/mysql-real.sh, a Debian sid chroot) running our plugin.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn script(args: &[&str]) -> Result<String, String> {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/mysql-real.sh"))
        .args(args)
        .output()
        .expect("run scripts/mysql-real.sh");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

fn must(args: &[&str]) -> String {
    script(args).unwrap_or_else(|e| panic!("scripts/mysql-real.sh {args:?} failed:\n{e}"))
}

/// Host path of the chroot; installs it (and our plugin into it) on first use.
pub fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        must(&["install"]);
        let root = PathBuf::from(must(&["root"]).trim());
        // Copy then rename, so a mysqld that still maps an older copy is not disturbed.
        let plugin_dir = PathBuf::from(must(&["plugin-dir"]).trim());
        let lib = super::host::plugin_library();
        let tmp = plugin_dir.join(".keyring_okv.so.new");
        std::fs::copy(&lib, &tmp).expect("copy the plugin into the chroot");
        std::fs::rename(&tmp, plugin_dir.join("keyring_okv.so")).expect("install the plugin");
        root
    })
}

/// Copies a directory tree into the chroot at `dest` (a path inside the chroot), keeping modes.
pub fn copy_in(src: &Path, dest: &str) {
    root();
    let status = Command::new("cp")
        .arg("-a")
        .arg("-T")
        .arg(src)
        .arg(root().join(dest.trim_start_matches('/')))
        .status()
        .expect("cp");
    assert!(
        status.success(),
        "copying {} into the chroot failed",
        src.display()
    );
}

pub struct Instance {
    pub name: String,
}

impl Instance {
    /// A fresh instance (wiped if it existed) started with `args`.
    pub fn fresh(name: &str, args: &[&str]) -> Instance {
        root();
        let _ = script(&["reset", name]);
        let mut start = vec!["start", name];
        start.extend_from_slice(args);
        must(&start);
        Instance {
            name: name.to_string(),
        }
    }

    pub fn restart(&self, args: &[&str]) {
        let mut restart = vec!["restart", self.name.as_str()];
        restart.extend_from_slice(args);
        must(&restart);
    }

    /// Runs SQL; Ok(stdout) or Err(client output).
    pub fn sql(&self, query: &str) -> Result<String, String> {
        script(&["sql", &self.name, query]).map(|s| s.trim_end().to_string())
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

    pub fn udf(&self) {
        must(&["udf", &self.name]);
    }

    pub fn log(&self) -> String {
        let path = must(&["log", &self.name]);
        std::fs::read_to_string(path.trim()).unwrap_or_default()
    }

    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The plugin's own lines of the error log.
    pub fn plugin_log(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("keyring_okv"))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = script(&["stop", &self.name]);
    }
}
