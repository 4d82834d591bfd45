//! The exported ABI, checked from C against include/keyring_okv.h, with the library loaded by
//! dlopen(RTLD_NOW) outside mysqld, as mysqld and keyring migration tools load it.

#[path = "../common/mod.rs"]
mod common;

use common::host;

use std::collections::HashMap;
use std::process::Command;

fn layout() -> HashMap<String, String> {
    let out = Command::new(host::host_program())
        .arg(host::plugin_library())
        .arg("layout")
        .output()
        .expect("run host");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "host failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn struct_sizes_and_offsets_match_the_header() {
    let l = layout();
    let expect = [
        ("exported_sizeof_st_plugin", "112"),
        ("sizeof st_mysql_plugin", "112"),
        ("sizeof st_mysql_keyring", "64"),
        ("sizeof sysvar_str", "56"),
        ("offsetof st_mysql_plugin.info", "8"),
        ("offsetof st_mysql_plugin.license", "40"),
        ("offsetof st_mysql_plugin.init", "48"),
        ("offsetof st_mysql_plugin.version", "72"),
        ("offsetof st_mysql_plugin.system_vars", "88"),
        ("offsetof st_mysql_plugin.flags", "104"),
        ("offsetof st_mysql_keyring.mysql_key_iterator_get_key", "56"),
        ("offsetof keyring_okv_sysvar_str.value", "40"),
        ("offsetof keyring_okv_sysvar_str.def_val", "48"),
    ];
    for (k, v) in expect {
        assert_eq!(l.get(k).map(String::as_str), Some(v), "{k}");
    }
    // The size we export is the size the header's struct has.
    assert_eq!(l["exported_sizeof_st_plugin"], l["sizeof st_mysql_plugin"]);
}

#[test]
fn descriptor_declares_an_early_loadable_keyring_plugin() {
    let l = layout();
    assert_eq!(l["interface_version"], (0x010B).to_string());
    assert_eq!(l["plugin_type"], "10");
    assert_eq!(l["plugin_name"], "keyring_okv");
    assert_eq!(l["keyring_interface"], (0x0101).to_string());
    assert_eq!(l["plugin_flags"], "4", "PLUGIN_OPT_ALLOW_EARLY");
    assert_eq!(l["terminator_info_null"], "1");
    assert_eq!(l["sysvar_name"], "conf_dir");
    assert_eq!(
        l["sysvar_flags"],
        (0x0005 | 0x4000).to_string(),
        "STR | NODEFAULT"
    );
    assert_eq!(l["sysvar_default"], "''");
    assert_eq!(l["sysvar_cache_name"], "cache_keys");
    assert_eq!(l["sysvar_cache_flags"], "1", "BOOL");
    assert_eq!(l["sysvar_cache_default"], "0", "OFF");
    assert_eq!(l["sysvar_cache_value"], "0");
    assert_eq!(l["sysvar_ttl_name"], "cache_ttl_seconds");
    assert_eq!(
        l["sysvar_ttl_flags"],
        (0x0003 | 0x0080).to_string(),
        "LONG | UNSIGNED"
    );
    assert_eq!(l["sysvar_ttl_default"], "300");
    assert_eq!(l["sysvar_ttl_range"], "0-31536000");
    assert_eq!(l["sysvar_ttl_value"], "300");
    assert_eq!(l["sysvar_sealed_hours_name"], "sealed_cache_max_age_hours");
    assert_eq!(
        l["sysvar_sealed_hours_flags"],
        (0x0003 | 0x0080 | 0x0200).to_string(),
        "LONG | UNSIGNED | READONLY"
    );
    assert_eq!(l["sysvar_sealed_hours_default"], "0", "off");
    assert_eq!(l["sysvar_sealed_hours_range"], "0-8760");
    assert_eq!(l["sysvar_sealed_user_name"], "sealed_cache_user_keys");
    assert_eq!(
        l["sysvar_sealed_user_flags"],
        (0x0001 | 0x0200).to_string(),
        "BOOL | READONLY"
    );
    assert_eq!(l["sysvar_sealed_user_default"], "0", "OFF");
    assert_eq!(l["sysvar_sealed_dir_name"], "sealed_cache_dir");
    assert_eq!(
        l["sysvar_sealed_dir_flags"],
        (0x0005 | 0x0200).to_string(),
        "STR | READONLY"
    );
    assert_eq!(
        l["sysvar_sealed_dir_default"],
        format!("'{}'", okv_core::sealed::DEFAULT_DIR)
    );
    assert_eq!(l["sysvar_key_state_poll_name"], "key_state_poll_seconds");
    assert_eq!(
        l["sysvar_key_state_poll_flags"],
        (0x0003 | 0x0080 | 0x0200).to_string(),
        "LONG | UNSIGNED | READONLY"
    );
    assert_eq!(l["sysvar_key_state_poll_default"], "300");
    assert_eq!(l["sysvar_key_state_poll_range"], "0-604800");
    assert_eq!(l["sysvar_key_state_action_name"], "key_state_action");
    assert_eq!(
        l["sysvar_key_state_action_flags"],
        (0x0005 | 0x0200).to_string(),
        "STR | READONLY"
    );
    assert_eq!(l["sysvar_key_state_action_default"], "'warn'");
    assert_eq!(l["sysvar_terminated"], "1");
    assert_eq!(l["log_service_before_link"], "256");
    assert_eq!(l["malloc_service_before_link"], "256");
    assert_eq!(l["null_get_key"], "1");
}

#[test]
fn exports_only_the_plugin_symbols() {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(host::plugin_library())
        .output()
        .expect("run nm");
    assert!(out.status.success());
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "_mysql_plugin_declarations_",
            "_mysql_plugin_interface_version_",
            "_mysql_sizeof_struct_st_plugin_",
            "my_plugin_log_service",
            "mysql_malloc_service",
            "plugin_registry_service",
        ]
    );
}

#[test]
fn unconfigured_plugin_warns_as_documented_and_fails_cleanly() {
    let out = host::run_host(
        "",
        &[
            "probe", "fetch", "k", "-", "generate", "k", "-", "AES", "32", "list", "nullargs",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let logs = host::log_lines(&out);
    assert_eq!(
        logs[0],
        "1 For keyring_okv to be initialized, please point the keyring_okv_conf_dir variable to a directory containing Oracle Key Vault configuration file and ssl materials"
    );
    assert_eq!(
        host::results(&out),
        [
            "init 0",
            "probe not-functional",
            "fetch k error",
            "generate k error",
            "list error",
            "nullargs 5",
            "deinit 0",
            "threads-after-deinit 1"
        ]
    );
    // Every failure is one error-level line; the health probe is answered silently.
    assert!(
        logs[1..].iter().all(|l| l.starts_with("0 keyring_okv")),
        "{logs:?}"
    );
}

#[test]
fn broken_conf_dir_at_startup_is_one_error_and_set_global_keeps_the_old_value() {
    let missing = std::env::temp_dir().join("keyring_okv_no_such_dir");
    let missing = missing.to_str().unwrap();
    let out = host::run_host(missing, &["probe", "setdir", "", "setdir", missing]);
    let results = host::results(&out);
    assert_eq!(results[0], "init 0");
    assert_eq!(results[1], "probe not-functional");
    assert_eq!(results[2], format!("setdir refused value={missing}"));
    assert_eq!(results[3], format!("setdir refused value={missing}"));
    let logs = host::log_lines(&out);
    assert!(
        logs[0].starts_with("0 ") && logs[0].contains(missing),
        "{logs:?}"
    );
}

#[test]
fn the_plugin_serves_keys_from_pykmip_through_its_c_interface() {
    let conf = common::pykmip::lab().conf_dir.to_str().unwrap().to_string();
    let id = common::pykmip::unique("ffi");
    let secret = format!("{id}-secret");
    let out = host::run_host(
        &conf,
        &[
            "probe", "threads", "generate", &id, "-", "AES", "32", "fetch", &id, "-", "generate",
            &id, "-", "AES", "32", "store", &secret, "u@h", "SECRET", "00ff10", "fetch", &secret,
            "u@h", "fetch", &secret, "-", "generate", &id, "-", "RSA", "128", "list", "remove",
            &id, "-", "fetch", &id, "-", "remove", &id, "-", "remove", &secret, "u@h", "setdir",
            &conf, "probe", "threads",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}");
    let results = host::results(&out);
    let expect_prefix = ["init 0".to_string(), "probe active".to_string()];
    assert_eq!(results[..2], expect_prefix, "{stdout}");
    let threads: usize = results[2]
        .strip_prefix("threads ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        threads <= 3,
        "the host thread plus at most two of ours: {threads}"
    );
    assert_eq!(results[3], format!("generate {id} ok"));
    let fetched: Vec<&str> = results[4].split(' ').collect();
    assert_eq!(
        &fetched[..4],
        ["fetch", id.as_str(), "AES", "32"],
        "{stdout}"
    );
    assert_eq!(fetched[4].len(), 64);
    assert_eq!(results[5], format!("generate {id} error"), "duplicate");
    assert_eq!(results[6], format!("store {secret} ok"));
    assert_eq!(results[7], format!("fetch {secret} SECRET 3 00ff10"));
    assert_eq!(
        results[8],
        format!("fetch {secret} absent"),
        "another owner"
    );
    assert_eq!(results[9], format!("generate {id} error"), "RSA refused");
    let listed = results[10]
        .strip_prefix("list ")
        .unwrap()
        .parse::<usize>()
        .unwrap();
    assert!(listed >= 2);
    assert!(
        stdout.contains(&format!("KEY {id}\t\n")),
        "server key with the empty owner: {stdout}"
    );
    assert!(stdout.contains(&format!("KEY {secret}\tu@h\n")), "{stdout}");
    assert_eq!(results[11], format!("remove {id} ok"));
    assert_eq!(results[12], format!("fetch {id} absent"));
    assert_eq!(results[13], format!("remove {id} error"), "absent key");
    assert_eq!(results[14], format!("remove {secret} ok"));
    assert_eq!(results[15], format!("setdir ok value={conf}"));
    assert_eq!(results[16], "probe active");
    let threads_after: usize = results[17]
        .strip_prefix("threads ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(threads_after <= 3, "{threads_after}");
    assert_eq!(results[18], "deinit 0");
    assert_eq!(
        results[19], "threads-after-deinit 1",
        "deinit joined our threads"
    );
    // Refusals are warnings, and no key material reaches the log.
    let logs = host::log_lines(&out);
    assert!(
        logs.iter()
            .filter(|l| l.contains("refused"))
            .all(|l| l.starts_with("1 ")),
        "{logs:#?}"
    );
    let material = fetched[4];
    assert!(
        !stdout
            .lines()
            .filter(|l| l.starts_with("LOG"))
            .any(|l| l.contains(material))
    );
}

#[test]
fn get_key_stays_inside_the_buffers_every_caller_passes() {
    use okv_core::config::load_conf_dir;
    use okv_core::connector::{KmipClient, Retry};
    use okv_core::keyring::{Keyring, object_name};
    use okv_core::kmip::ops;

    let lab = common::pykmip::lab();
    let conf = load_conf_dir(&lab.conf_dir).unwrap();
    let keyring = Keyring::new(KmipClient::from_conf_dir(&conf).unwrap());
    let base = common::pykmip::unique("fit");
    // Exactly the longest id and owner that fit: 255 and 95 bytes plus the NUL.
    let fits = format!("{base}{}", "F".repeat(255 - base.len()));
    let owner = "o".repeat(95);
    keyring.store(&fits, &owner, "SECRET", b"v").unwrap();
    // Another client writes an id no mysqld buffer can take whole.
    let too_long = format!("{base}{}", "T".repeat(300 - base.len()));
    let client = keyring.client();
    let mut register = ops::register_secret(b"v", &object_name(&too_long, ""));
    let uid = client
        .request(&register, Retry::Never, ops::parse_register)
        .unwrap();
    register.zeroize();
    client
        .request(&ops::activate(&uid), Retry::Never, |_| Ok(()))
        .unwrap();

    let out = host::run_host(lab.conf_dir.to_str().unwrap(), &["guardlist"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let line = host::results(&out)
        .into_iter()
        .find(|l| l.starts_with("guardlist "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.last(), Some(&"guards-ok"), "{stdout}");
    let counts: Vec<i64> = fields[1..7].iter().map(|n| n.parse().unwrap()).collect();
    assert!(
        counts[..3].iter().all(|&c| c >= 1),
        "listed each time: {line}"
    );
    assert!(
        counts[3..].iter().all(|&c| c >= 1),
        "the 255-byte id with the 95-byte owner is listed whole each time: {line}"
    );
    let logs = host::log_lines(&out);
    assert!(
        logs.iter()
            .any(|l| l.contains("is not listed") && l.contains(&uid)),
        "the skipped key is named: {logs:#?}"
    );
    keyring.remove(&fits, &owner).unwrap();
    keyring.remove(&too_long, "").unwrap();
}

/// UNINSTALL PLUGIN then INSTALL PLUGIN, this many times in one host process.
const REINIT_ROUNDS: usize = 50;

/// Deinit returns only once every thread the plugin started has left the process (mysqld
/// unmaps the library right after), however loaded the machine: each round has a live KMIP
/// connection and a host name lookup behind it, while busy threads keep every core taken
/// twice over.
#[test]
fn deinit_leaves_no_thread_of_ours_behind_on_a_loaded_machine() {
    let (_kmip, _server, conf) = common::kmip_quirks::serve_in_process("sd-abi-", "localhost");
    let mut commands = vec!["probe"];
    for _ in 0..REINIT_ROUNDS {
        commands.extend(["reinit", "probe"]);
    }
    let load = common::cpu_load::CpuLoad::start();
    let started = std::time::Instant::now();
    let out = host::run_host(conf.dir.to_str().unwrap(), &commands);
    let took = started.elapsed();
    let busy = load.threads();
    drop(load);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}");
    let results = host::results(&out);
    let rounds: Vec<&String> = results
        .iter()
        .filter(|r| r.starts_with("reinit "))
        .collect();
    assert_eq!(rounds.len(), REINIT_ROUNDS, "{stdout}");
    let left_behind: Vec<(usize, &String)> = rounds
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, r)| *r != "reinit deinit 0 threads-after-deinit 1 init 0")
        .collect();
    assert!(
        left_behind.is_empty(),
        "rounds whose deinit left a thread running ({busy} busy threads): {left_behind:?}"
    );
    let probes = results.iter().filter(|r| *r == "probe active").count();
    assert_eq!(
        probes,
        REINIT_ROUNDS + 1,
        "every round had a live keyring: {stdout}"
    );
    assert_eq!(
        results.last().map(String::as_str),
        Some("threads-after-deinit 1")
    );
    eprintln!("{REINIT_ROUNDS} rounds with {busy} busy threads in {took:?}");
}
