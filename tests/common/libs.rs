//! Builds a library package of the workspace the way this test binary was built (same profile,
//! same `fips` feature), so `cargo test --release --features fips` tests the FIPS libraries.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `package`'s library and returns target/<profile>/`file`.
pub fn build_library(package: &str, file: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf();
    // The directory of the dev profile is "debug"; the others are named after their profile.
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "-p", package, "--lib", "--quiet", "--profile"])
        .arg(&profile)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if cfg!(feature = "fips") {
        cargo.args(["--features", &format!("{package}/fips")]);
    }
    let status = cargo
        .status()
        .unwrap_or_else(|e| panic!("run cargo build -p {package}: {e}"));
    assert!(status.success(), "cargo build -p {package} failed");
    let lib = profile_dir.join(file);
    assert!(lib.exists(), "{} is missing", lib.display());
    lib
}
