//! The local PyKMIP server of scripts/pykmip.sh: started once per test binary (idempotent),
//! plus PyKMIP's own client (scripts/pykmip_tool.py) to see what we wrote.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub struct Lab {
    pub port: u16,
    pub conf_dir: PathBuf,
    pub certs: PathBuf,
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn script(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/pykmip.sh"))
        .args(args)
        .output()
        .expect("run scripts/pykmip.sh");
    assert!(
        out.status.success(),
        "scripts/pykmip.sh {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The running PyKMIP server (set up and started on first use).
pub fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        script(&["setup"]);
        script(&["start"]);
        let env = script(&["env"]);
        // A named instance (KEYRING_OKV_PYKMIP_NAME, as scripts/pykmip.sh takes it) prints its
        // variables under its own prefix.
        let prefix = match std::env::var("KEYRING_OKV_PYKMIP_NAME") {
            Ok(name) if !name.is_empty() && name != "main" => {
                format!("KEYRING_OKV_PYKMIP_{}", name.to_uppercase())
            }
            _ => "KEYRING_OKV_PYKMIP".to_string(),
        };
        let get = |key: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
                .unwrap_or_else(|| panic!("{key} missing from `scripts/pykmip.sh env`: {env}"))
        };
        Lab {
            port: get(&format!("{prefix}_PORT")).parse().expect("port"),
            conf_dir: PathBuf::from(get(&format!("{prefix}_CONFDIR"))),
            certs: PathBuf::from(get("KEYRING_OKV_PYKMIP_CERTS")),
        }
    })
}

/// Runs scripts/pykmip_tool.py with the lab's virtualenv and returns its JSON output.
pub fn tool(args: &[&str]) -> serde_json::Value {
    let lab = lab();
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/pykmip.sh"))
        .arg("tool")
        .args(args)
        .env("KEYRING_OKV_PYKMIP_PORT", lab.port.to_string())
        .output()
        .expect("run pykmip_tool.py");
    assert!(
        out.status.success(),
        "pykmip_tool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("pykmip_tool prints JSON")
}

/// A prefix that keeps key ids of different test runs and tests apart on the shared server.
pub fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{name}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Destroys every object on the lab server with this KMIP Name. For tests whose key names are
/// fixed: a failed earlier run against the same (reused) lab database may have left the key
/// behind, and this run's generate or store of it would then fail with "already exists".
pub fn remove_leftovers(kmip_name: &str) {
    let found = tool(&["find", kmip_name]);
    for object in found.as_array().expect("find prints a list") {
        let uid = object["uid"].as_str().expect("uid");
        tool(&["destroy", uid]);
    }
}

/// remove_leftovers for keys made through SQL by root@localhost (keyring_udf), by key id.
pub fn remove_udf_leftovers(key_ids: &[&str]) {
    for id in key_ids {
        remove_leftovers(&format!("mysql-keyring:root@localhost:{id}"));
    }
}

/// A PyKMIP instance of its own (`KEYRING_OKV_PYKMIP_NAME`) whose PKI is `profile`
/// (`KEYRING_OKV_PYKMIP_PKI`: p256, p384, p521 or rsapss3072); started with an empty database,
/// stopped when dropped.
pub struct Named {
    pub name: String,
    pub profile: &'static str,
    /// Started with `KEYRING_OKV_PYKMIP_UNIQUE_NAMES=1`: refuses a second object under a Name.
    pub unique_names: bool,
}

impl Named {
    pub fn start(name: &str, profile: &'static str) -> Named {
        Self::start_as(name, profile, false)
    }

    /// An instance that refuses a Create or Register under a Name in use, as key managers that
    /// keep names unique do (`scripts/pykmip_serve.py`).
    #[allow(dead_code)]
    pub fn start_keeping_names_unique(name: &str) -> Named {
        Self::start_as(name, "p256", true)
    }

    fn start_as(name: &str, profile: &'static str, unique_names: bool) -> Named {
        lab();
        let named = Named {
            name: name.to_string(),
            profile,
            unique_names,
        };
        named.script(&["reset"]);
        named.script(&["start"]);
        named
    }

    /// `scripts/pykmip.sh ARGS` for this instance; its standard output, trimmed.
    pub fn script(&self, args: &[&str]) -> String {
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/pykmip.sh"))
            .args(args)
            .env("KEYRING_OKV_PYKMIP_NAME", &self.name)
            .env("KEYRING_OKV_PYKMIP_PKI", self.profile)
            .env(
                "KEYRING_OKV_PYKMIP_UNIQUE_NAMES",
                if self.unique_names { "1" } else { "0" },
            )
            .output()
            .expect("run scripts/pykmip.sh");
        assert!(
            out.status.success(),
            "pykmip.sh {args:?} ({} {}): {}",
            self.name,
            self.profile,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn conf_dir(&self) -> PathBuf {
        PathBuf::from(self.script(&["confdir"]))
    }

    pub fn port(&self) -> u16 {
        self.script(&["port"]).parse().expect("port")
    }

    /// The directory of the instance's CA, server and client certificates and keys.
    pub fn certs(&self) -> PathBuf {
        let env = self.script(&["env"]);
        env.lines()
            .find_map(|l| l.strip_prefix("KEYRING_OKV_PYKMIP_CERTS="))
            .expect("KEYRING_OKV_PYKMIP_CERTS in env")
            .trim_matches('\'')
            .into()
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("scripts/pykmip.sh"))
            .arg("stop")
            .env("KEYRING_OKV_PYKMIP_NAME", &self.name)
            .env("KEYRING_OKV_PYKMIP_PKI", self.profile)
            .output();
    }
}
