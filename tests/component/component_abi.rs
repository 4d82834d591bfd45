//! component_keyring_okv.so through its C interface, loaded by a small C host the way MySQL's
//! dynamic loader loads it, against PyKMIP: the service contracts (buffer sizes, NULL owner,
//! remove of an absent key, status rows, Disabled without configuration) and keyring_aes
//! checked against OpenSSL's output for the same key, IV and data.

#[path = "../common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::component::{component_library, host_program};
use common::pykmip::{lab, tool, unique};

/// A component directory whose component_keyring_okv.cnf says `cnf` (None: no file).
fn component_dir(cnf: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    if let Some(text) = cnf {
        std::fs::write(dir.path().join("component_keyring_okv.cnf"), text).unwrap();
    }
    dir
}

fn good_cnf() -> String {
    format!(
        "{{\"kmip_configuration_directory\": \"{}\"}}",
        lab().conf_dir.display()
    )
}

fn run(dir: &Path, commands: &[&str]) -> Output {
    Command::new(host_program())
        .arg(component_library())
        .arg(dir)
        .arg("-")
        .args(commands)
        .output()
        .expect("run component_host")
}

fn results(out: &Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "component_host failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT ").map(str::to_string))
        .collect()
}

fn logs(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("LOG ").map(str::to_string))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[test]
fn loads_like_mysqld_and_keeps_every_service_contract() {
    let dir = component_dir(Some(&good_cnf()));
    let id = unique("abi");
    // A NULL owner is the empty owner; the backend id is the KMIP object's identifier.
    let first = results(&run(
        dir.path(),
        &[
            "initialized",
            "load",
            "initialized",
            "store",
            &id,
            "-",
            "SECRET",
            "0102030405",
            "backend",
            &id,
            "",
        ],
    ));
    assert_eq!(first[0], "component component_keyring_okv");
    assert_eq!(first[1], "requires registry");
    assert!(
        first.contains(&"metadata mysql.license=GPL".to_string()),
        "{first:#?}"
    );
    let after_init: Vec<&str> = first
        .iter()
        .skip_while(|l| !l.starts_with("init "))
        .map(String::as_str)
        .collect();
    let uid = tool(&["find", &format!("mysql-keyring::{id}")])[0]["uid"]
        .as_str()
        .expect("the object is on the KMIP server")
        .to_string();
    assert_eq!(
        after_init[..6],
        [
            "init 0",
            "initialized 0",
            "load 0",
            "initialized 1",
            "store 0",
            &*format!("backend 0 {uid}")
        ]
    );

    let out = run(
        dir.path(),
        &[
            "load",
            "fetch",
            &id,
            "",
            "fetch_exact",
            &id,
            "-",
            "fetch",
            &id,
            "someone@host",
            "keys",
            "remove",
            &id,
            "-",
            "fetch",
            &id,
            "-",
            // Removing an absent key succeeds; refused types and lengths fail.
            "remove",
            &id,
            "-",
            "generate",
            &id,
            "u@h",
            "RSA",
            "128",
            "generate",
            &id,
            "u@h",
            "AES",
            "20",
            "generate",
            &id,
            "u@h",
            "AES",
            "24",
            "fetch",
            &id,
            "u@h",
            "remove",
            &id,
            "u@h",
            // An empty key id is absent.
            "fetch",
            "",
            "-",
            "status",
        ],
    );
    let r = results(&out);
    let calls: Vec<&str> = r
        .iter()
        .skip_while(|l| !l.starts_with("load "))
        .filter(|l| !l.starts_with("key ") && !l.starts_with("row "))
        .map(String::as_str)
        .collect();
    assert_eq!(
        calls[..14],
        [
            "load 0",
            "fetch SECRET 5 0102030405",
            "fetch SECRET 5 0102030405",
            "fetch absent",
            "keys_init 0",
            "remove 0",
            "fetch absent",
            "remove 0",
            "generate 1",
            "generate 1",
            "generate 0",
            calls[11],
            "remove 0",
            "fetch absent",
        ],
        "{r:#?}"
    );
    assert!(
        calls[11].starts_with("fetch AES 24 ") && calls[11].len() == 13 + 48,
        "{}",
        calls[11]
    );
    assert!(
        r.contains(&format!("key {id}|")),
        "the listing has the key with its empty owner: {r:#?}"
    );
    let rows: Vec<&str> = r.iter().filter_map(|l| l.strip_prefix("row ")).collect();
    assert_eq!(rows[0], "Component_name=component_keyring_okv");
    assert_eq!(rows[5], "Component_status=Active");
    assert!(rows.contains(&&*format!("Servers=127.0.0.1:{}", lab().port)));
    assert!(r.contains(&"deinit 0".to_string()));
    assert!(
        r.contains(&"released 1".to_string()),
        "the log service is released"
    );
    // Refusals are logged through mysql_simple_error_log (ER_LOG_PRINTF_MSG, one string).
    let l = logs(&out);
    assert!(
        l.iter()
            .any(|line| line.starts_with("2 11071 component_keyring_okv ")
                && line.contains("key type 'RSA' is not supported")),
        "{l:#?}"
    );
}

/// The library exports exactly the loader's entry point.
#[test]
fn exports_only_list_components() {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(component_library())
        .output()
        .expect("run nm");
    assert!(out.status.success());
    let symbols: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .filter(|s| !s.starts_with("_fini") && !s.starts_with("_init"))
        .collect();
    assert_eq!(symbols, ["list_components"]);
}

#[test]
fn without_configuration_the_component_is_disabled_and_calls_fail() {
    let dir = component_dir(None);
    let out = run(
        dir.path(),
        &[
            "load",
            "initialized",
            "fetch",
            "k",
            "-",
            "store",
            "k",
            "-",
            "SECRET",
            "01",
            "status",
        ],
    );
    let r = results(&out);
    assert!(r.contains(&"load 1".to_string()), "{r:#?}");
    assert!(r.contains(&"initialized 0".to_string()));
    assert!(r.contains(&"fetch error".to_string()));
    assert!(r.contains(&"store 1".to_string()));
    assert!(r.contains(&"row Component_status=Disabled".to_string()));
    assert!(
        r.iter().any(|l| l.starts_with("row Last_load_error=")
            && l.contains("configuration file is missing")),
        "{r:#?}"
    );
    let l = logs(&out);
    assert!(
        l.iter().any(|line| line.starts_with("1 11071 ")
            && line.contains("component_keyring_okv.cnf: the configuration file is missing")
            && line.contains("stays Disabled")),
        "{l:#?}"
    );
}

/// OpenSSL's `enc` with the key MySQL derives (SHA-256 of the stored key) and the same IV.
fn openssl(
    mode: &str,
    key: &[u8],
    iv: &[u8],
    padding: bool,
    data: &[u8],
    decrypt: bool,
) -> Vec<u8> {
    let derived = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::write(&input, data).unwrap();
    // OpenSSL calls CFB with 128-bit feedback plain "cfb".
    let cipher = if mode == "cfb128" { "cfb" } else { mode };
    let mut cmd = Command::new("openssl");
    cmd.args([
        "enc",
        &format!("-aes-256-{cipher}"),
        "-K",
        &hex(derived.as_ref()),
        "-iv",
        &hex(iv),
    ]);
    if decrypt {
        cmd.arg("-d");
    }
    if !padding {
        cmd.arg("-nopad");
    }
    let out = cmd.arg("-in").arg(&input).output().expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn keyring_aes_matches_openssl() {
    let dir = component_dir(Some(&good_cnf()));
    let id = unique("aes");
    let key: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let iv: Vec<u8> = (0..16u8).map(|i| 0xA0 ^ i).collect();
    let data: Vec<u8> = b"keyring_aes of component_keyring_okv: 45 bytes".to_vec();
    let aligned: Vec<u8> = data[..32].to_vec();
    let cases: Vec<(&str, bool, &[u8])> = vec![
        ("cbc", true, &data),
        ("cbc", false, &aligned),
        ("cfb1", false, &data),
        ("cfb8", false, &data),
        ("cfb128", false, &data),
        ("ofb", false, &data),
    ];
    let mut args: Vec<String> = vec![
        "load".into(),
        "store".into(),
        id.clone(),
        "owner@host".into(),
        "AES".into(),
        hex(&key),
    ];
    for (mode, padding, input) in &cases {
        args.extend([
            "encrypt".into(),
            id.clone(),
            "owner@host".into(),
            mode.to_string(),
            "256".into(),
            u8::from(*padding).to_string(),
            hex(&iv),
            hex(input),
        ]);
        args.extend([
            "size".into(),
            input.len().to_string(),
            mode.to_string(),
            "256".into(),
        ]);
    }
    // Refusals: an unsupported mode or block size, a SECRET key, an absent key.
    let secret = format!("{id}_secret");
    args.extend(
        [
            "encrypt",
            &id,
            "owner@host",
            "ecb",
            "256",
            "1",
            "00",
            "00",
            "encrypt",
            &id,
            "owner@host",
            "cbc",
            "128",
            "1",
            "00",
            "00",
            "store",
            &secret,
            "owner@host",
            "SECRET",
            "00112233",
            "encrypt",
            &secret,
            "owner@host",
            "cbc",
            "256",
            "1",
            "00",
            "00",
            "encrypt",
            "absent-key",
            "owner@host",
            "cbc",
            "256",
            "1",
            "00",
            "00",
            "remove",
            &secret,
            "owner@host",
            "remove",
            &id,
            "owner@host",
        ]
        .map(String::from),
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(dir.path(), &refs);
    let r = results(&out);
    let encrypted: Vec<&str> = r
        .iter()
        .filter_map(|l| l.strip_prefix("encrypt "))
        .collect();
    let sizes: Vec<&str> = r.iter().filter_map(|l| l.strip_prefix("size ")).collect();
    assert_eq!(encrypted.len(), cases.len() + 4, "{r:#?}");
    let mut decrypt_args = vec![
        "load".to_string(),
        "store".into(),
        format!("{id}_2"),
        "-".into(),
        "AES".into(),
        hex(&key),
    ];
    for (i, (mode, padding, input)) in cases.iter().enumerate() {
        let expected = openssl(mode, &key, &iv, *padding, input, false);
        assert_eq!(
            encrypted[i],
            format!("0 {}", hex(&expected)),
            "{mode} padding={padding}"
        );
        let size = if *mode == "cbc" {
            input.len() / 16 * 16 + 16
        } else {
            input.len()
        };
        assert_eq!(sizes[i], format!("0 {size}"), "{mode}");
        // OpenSSL decrypts ours, and we decrypt OpenSSL's.
        assert_eq!(&openssl(mode, &key, &iv, *padding, &expected, true), input);
        decrypt_args.extend([
            "decrypt".into(),
            format!("{id}_2"),
            "-".into(),
            mode.to_string(),
            "256".into(),
            u8::from(*padding).to_string(),
            hex(&iv),
            hex(&expected),
        ]);
    }
    for refused in &encrypted[cases.len()..] {
        assert_eq!(*refused, "1 ", "{r:#?}");
    }
    decrypt_args.extend(["remove".into(), format!("{id}_2"), "-".into()]);
    let refs: Vec<&str> = decrypt_args.iter().map(String::as_str).collect();
    let r = results(&run(dir.path(), &refs));
    let decrypted: Vec<&str> = r
        .iter()
        .filter_map(|l| l.strip_prefix("decrypt "))
        .collect();
    for (i, (mode, _, input)) in cases.iter().enumerate() {
        assert_eq!(decrypted[i], format!("0 {}", hex(input)), "{mode}");
    }
}

/// UNINSTALL COMPONENT then INSTALL COMPONENT, this many times in one host process.
const REINIT_ROUNDS: usize = 50;

/// Deinit returns only once every thread the component started has left the process (the
/// loader unmaps the library right after), however loaded the machine: each round has a live
/// KMIP connection and a host name lookup behind it, while busy threads keep every core taken
/// twice over.
#[test]
fn deinit_leaves_no_thread_of_ours_behind_on_a_loaded_machine() {
    let (_kmip, _server, conf) =
        common::kmip_quirks::serve_in_process("sd-component-", "localhost");
    let dir = component_dir(Some(&format!(
        "{{\"kmip_configuration_directory\": \"{}\"}}",
        conf.dir.display()
    )));
    let mut commands = vec!["load", "fetch", "sd_absent", "-"];
    for _ in 0..REINIT_ROUNDS {
        commands.extend(["reinit", "fetch", "sd_absent", "-"]);
    }
    let load = common::cpu_load::CpuLoad::start();
    let started = std::time::Instant::now();
    let out = run(dir.path(), &commands);
    let took = started.elapsed();
    let busy = load.threads();
    drop(load);
    let r = results(&out);
    let rounds: Vec<&String> = r.iter().filter(|l| l.starts_with("reinit ")).collect();
    assert_eq!(rounds.len(), REINIT_ROUNDS, "{r:#?}");
    let left_behind: Vec<(usize, &String)> = rounds
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, l)| *l != "reinit deinit 0 threads-after-deinit 1 init 0 load 0")
        .collect();
    assert!(
        left_behind.is_empty(),
        "rounds whose deinit left a thread running ({busy} busy threads): {left_behind:?}"
    );
    let answered = r.iter().filter(|l| *l == "fetch absent").count();
    assert_eq!(
        answered,
        REINIT_ROUNDS + 1,
        "every round reached the KMIP server: {r:#?}"
    );
    assert!(r.contains(&"threads-after-deinit 1".to_string()), "{r:#?}");
    eprintln!("{REINIT_ROUNDS} rounds with {busy} busy threads in {took:?}");
}

/// BACKEND_KEY_ID is the whole KMIP unique identifier or empty, as the plugin's: an identifier
/// longer than the server's 64-byte buffer is never shown cut short (a cut identifier could
/// name another object). Against the in-process KMIP server, whose identifiers are made long.
#[test]
fn backend_key_id_is_whole_or_empty() {
    use common::fixtures::{Layout, make_conf_dir, pki};
    use common::kmip_quirks::{Object, Quirks, serve_own_pki};

    let long = "u".repeat(70);
    let mut answers = Vec::new();
    for prefix in ["u", long.as_str()] {
        let (kmip, server) = serve_own_pki(prefix, Quirks::default());
        let uid = kmip.fresh_uid();
        kmip.plant(Object::aes(
            &uid,
            "mysql-keyring::backend_id",
            vec![1; 32],
            1_700_000_000,
        ));
        let conf = make_conf_dir(&Layout {
            ora: Some(format!("SERVER=127.0.0.1:{}\n", server.port())),
            ..pki().layout()
        });
        let dir = component_dir(Some(&format!(
            "{{\"kmip_configuration_directory\": \"{}\"}}",
            conf.dir.display()
        )));
        let out = results(&run(
            dir.path(),
            &[
                "load",
                "fetch",
                "backend_id",
                "-",
                "backend",
                "backend_id",
                "-",
            ],
        ));
        let backend = out
            .iter()
            .find(|l| l.starts_with("backend "))
            .cloned()
            .unwrap_or_else(|| panic!("no backend result: {out:#?}"));
        answers.push((uid, backend));
    }
    let (short_uid, short) = &answers[0];
    assert_eq!(*short, format!("backend 0 {short_uid}"));
    let (long_uid, long) = &answers[1];
    assert!(long_uid.len() > 63);
    assert_eq!(long.trim_end(), "backend 1", "{long_uid}");
}

/// A plugin directory that is not UTF-8 is refused with one clear line, as the plugins refuse
/// theirs (never a lossy copy naming another directory, never a panic).
#[test]
fn a_component_directory_that_is_not_utf8_is_refused_clearly() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join(OsStr::from_bytes(b"plugin-\xff"));
    std::fs::create_dir(&odd).unwrap();
    let out = run(&odd, &["load", "initialized"]);
    let answers = results(&out);
    let after_init: Vec<&str> = answers
        .iter()
        .skip_while(|l| !l.starts_with("init "))
        .map(String::as_str)
        .collect();
    assert_eq!(after_init[..3], ["init 0", "load 1", "initialized 0"]);
    let said = logs(&out).join("\n");
    assert!(said.contains("must be a UTF-8 path"), "{said}");
    assert!(!said.contains("internal error"), "{said}");
}
