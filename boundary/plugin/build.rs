//! Link settings for the plugin library.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // mysqld loads plugins with dlopen(RTLD_NOW): a symbol that does not resolve must fail the
    // build, not the server's startup.
    println!("cargo:rustc-cdylib-link-arg=-Wl,--no-undefined");
}
