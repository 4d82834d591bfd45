//! Link settings for the MariaDB plugin library.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // mariadbd loads plugins with dlopen(RTLD_NOW): a symbol that does not resolve must fail the
    // build, not the server's startup. The library links no server symbol at all, so that one
    // binary loads into every MariaDB release with the same plugin ABI.
    println!("cargo:rustc-cdylib-link-arg=-Wl,--no-undefined");
}
