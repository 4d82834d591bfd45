//! Link settings for the component library.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // mysqld's component loader uses dlopen(RTLD_NOW): a symbol that does not resolve must fail
    // the build, not the server's startup.
    println!("cargo:rustc-cdylib-link-arg=-Wl,--no-undefined");
}
