//! kmip_key_management.so loaded as mariadbd loads it (dlopen RTLD_NOW, the `_maria_*`
//! symbols), by a C host that spells out MariaDB's plugin layouts on its own: the descriptor,
//! the variables, the status array, and the key calls' contract (length query with an
//! uninitialised length, short buffers, missing versions) against PyKMIP.

#[path = "../common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::mariadb::{admin, plugin_library};
use common::pykmip::{lab, unique};

fn host_program() -> &'static PathBuf {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        let out = std::env::temp_dir().join(format!("kmip_mariadb_host_{}", std::process::id()));
        let status = Command::new("cc")
            .args(["-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&out)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/c/mariadb_host.c"
            ))
            .arg("-ldl")
            .status()
            .expect("run cc");
        assert!(status.success(), "compiling tests/c/mariadb_host.c failed");
        out
    })
}

fn results(args: &[&str]) -> Vec<String> {
    let out = Command::new(host_program())
        .arg(plugin_library())
        .args(args)
        .output()
        .expect("run mariadb_host");
    assert!(
        out.status.success(),
        "host failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT ").map(str::to_string))
        .collect()
}

fn has(results: &[String], line: &str) {
    assert!(
        results.iter().any(|r| r == line),
        "no '{line}' in {results:#?}"
    );
}

#[test]
fn descriptor_and_variables() {
    let r = results(&["layout"]);
    for line in [
        "interface_version 0x010f",
        "sizeof_st_plugin 104 104",
        "type 9",
        "name kmip_key_management",
        "license 1",
        "maturity 4",
        "version_info 1.0",
        "terminator yes",
        "encryption_interface 0x0300",
        "crypt_functions_null yes",
        // STR|READONLY, LONG|UNSIGNED, BOOL, INT: no ENUM/SET (TYPELIB differs by release).
        "sysvar conf_dir 0x205",
        "sysvar key_namespace 0x205",
        "sysvar cache_timeout 0x83",
        "sysvar cache_version_timeout 0x83",
        "sysvar use_cache_on_error 0x1",
        "sysvar rotate_key 0x2",
        "rotate_key_range -1 2147483647",
        "before_init_latest 4294967295",
        "before_init_get_key 4294967295",
    ] {
        has(&r, line);
    }
}

#[test]
fn key_calls_keep_the_servers_contract() {
    let namespace = unique("mdb-abi");
    let out = admin(
        env!("CARGO_BIN_EXE_keyring-okv"),
        &lab().conf_dir,
        &["create-key", "1", "--namespace", &namespace],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = lab().conf_dir.to_str().unwrap().to_string();
    let r = results(&["run", &conf, &namespace]);
    for line in [
        "init 0",
        "latest_1 1",
        // Key 7 does not exist: "no such key", never a crash or a wait beyond the deadlines.
        "latest_7 4294967295",
        "length_query 0 32",
        "small_buffer 100 32",
        "full_buffer 0 32 rest-untouched",
        "missing_version 4294967295",
        "version_zero 4294967295",
        "null_length 4294967295",
        "status_rc 0 type 7",
        // Init: Locates of 1/1, 1/2, 2/1 and 2/2 in one message, Get Attributes (only an Active
        // object is a version) and Get of what 1/1 found in one message; then Locates of 7/1
        // and 7/2 in one message; Locate 1/101.
        "status requests 4",
        "status key_failures 2",
        "status errors 0",
        "status key_fetches 1",
        "status last_error ''",
        "deinit 0",
    ] {
        has(&r, line);
    }
    assert!(
        r.iter()
            .any(|l| l.starts_with("status server_in_use '127.0.0.1:")),
        "{r:#?}"
    );
}

#[test]
fn init_fails_cleanly_without_key_1() {
    let conf = lab().conf_dir.to_str().unwrap().to_string();
    let r = results(&["run", &conf, &unique("mdb-abi-empty")]);
    has(&r, "init 1");
}

/// UNINSTALL PLUGIN then INSTALL PLUGIN, this many times in one host process.
const REINIT_ROUNDS: usize = 50;

/// Deinit returns only once every thread the plugin started (the key version refresh, the I/O
/// thread, host name lookups) has left the process, however loaded the machine: each round
/// connects, loads key 1 and starts the refresh, while busy threads keep every core taken
/// twice over.
#[test]
fn deinit_leaves_no_thread_of_ours_behind_on_a_loaded_machine() {
    let (_kmip, _server, conf) = common::kmip_quirks::serve_in_process("sd-mdb-", "localhost");
    let namespace = unique("sd-mdb-abi");
    let out = admin(
        env!("CARGO_BIN_EXE_keyring-okv"),
        &conf.dir,
        &["create-key", "1", "--namespace", &namespace],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rounds = REINIT_ROUNDS.to_string();
    let load = common::cpu_load::CpuLoad::start();
    let started = std::time::Instant::now();
    let r = results(&["run", conf.dir.to_str().unwrap(), &namespace, &rounds]);
    let took = started.elapsed();
    let busy = load.threads();
    drop(load);
    has(&r, "init 0");
    has(&r, "threads-after-deinit 1");
    let reinits: Vec<&String> = r.iter().filter(|l| l.starts_with("reinit ")).collect();
    assert_eq!(reinits.len(), REINIT_ROUNDS, "{r:#?}");
    let left_behind: Vec<(usize, &String)> = reinits
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, l)| *l != "reinit init 0 latest_1 1 deinit 0 threads-after-deinit 1")
        .collect();
    assert!(
        left_behind.is_empty(),
        "rounds that failed or whose deinit left a thread running ({busy} busy threads): {left_behind:?}"
    );
    eprintln!("{REINIT_ROUNDS} rounds with {busy} busy threads in {took:?}");
}
