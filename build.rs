//! The build string of the core. No network and no MySQL sources are needed.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    // Shown in the error log at startup and by `keyring-okv --version`.
    println!("cargo:rustc-env=KEYRING_OKV_BUILD={version} ({target}, {profile})");
}
