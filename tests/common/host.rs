//! Finds the built plugin library and the C host program that loads it like mysqld does.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// target/<profile>/libkeyring_okv.so, next to this test binary's deps/ directory, built from
/// the current sources (the plugin is its own package; `cargo test` of the core does not build it).
pub fn plugin_library() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| super::libs::build_library("keyring_okv", "libkeyring_okv.so"))
        .clone()
}

/// Compiles tests/c/plugin_host.c once per test binary.
pub fn host_program() -> &'static Path {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out =
            std::env::temp_dir().join(format!("keyring_okv_plugin_host_{}", std::process::id()));
        let status = Command::new("cc")
            .args(["-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&out)
            .arg(root.join("tests/c/plugin_host.c"))
            .arg("-ldl")
            .status()
            .expect("run cc");
        assert!(status.success(), "compiling tests/c/plugin_host.c failed");
        out
    })
}

/// Runs the host: `run CONF_DIR COMMAND...`.
pub fn run_host(conf_dir: &str, commands: &[&str]) -> Output {
    Command::new(host_program())
        .arg(plugin_library())
        .arg("run")
        .arg(conf_dir)
        .args(commands)
        .output()
        .expect("run plugin_host")
}

/// The `RESULT ...` lines of a host run, without the prefix.
pub fn results(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT ").map(str::to_string))
        .collect()
}

/// The warning and error lines (`level message`) of a host run; information lines (level 2,
/// shown by mysqld only at log_error_verbosity=3) are left out.
pub fn log_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("LOG ").map(str::to_string))
        .filter(|l| !l.starts_with("2 "))
        .collect()
}
