//! Build settings for the plugin library. No network and no MySQL sources are needed.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // mysqld loads plugins with dlopen(RTLD_NOW): a symbol that does not resolve must fail the
    // build, not the server's startup.
    println!("cargo:rustc-cdylib-link-arg=-Wl,--no-undefined");
    let target = std::env::var("TARGET").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    // Shown in the error log at startup and by `keyring-okv --version`.
    println!("cargo:rustc-env=KEYRING_OKV_BUILD={version} ({target}, {profile})");
}
