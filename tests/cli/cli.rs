//! The keyring-okv admin tool against the local PyKMIP server, and `check` on broken
//! configuration directories: each fault names its fix.

#[path = "../common/mod.rs"]
mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use common::fixtures::pki;
use common::pykmip::{lab, unique};

fn cli(conf_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyring-okv"))
        .arg("--conf-dir")
        .arg(conf_dir)
        .args(args)
        .output()
        .expect("run keyring-okv")
}

fn cli_stdin(conf_dir: &Path, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyring-okv"))
        .arg("--conf-dir")
        .arg(conf_dir)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run keyring-okv");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().expect("keyring-okv ends")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A copy of the lab's conf dir to break.
fn conf_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg("-T")
        .arg(&lab().conf_dir)
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Writes `product`'s sealed key cache file in `dir` as the libraries write it: bound to the
/// identity and servers of `conf_dir`, under the key that conf dir's `ssl/key.pem` gives (or
/// under `key`).
fn seal_into(
    conf_dir: &Path,
    dir: &Path,
    product: &okv_core::sealed::Product,
    key: Option<[u8; 32]>,
    written: u64,
    entries: &okv_core::sealed::Entries,
) -> std::path::PathBuf {
    use okv_core::sealed::{self, Binding, file};
    let conf = okv_core::config::load_conf_dir(conf_dir).expect("the conf dir loads");
    let binding = Binding {
        product: product.name.to_string(),
        identity: conf.identity.subject.clone(),
        servers: conf.servers.iter().map(ToString::to_string).collect(),
    };
    let key = match key {
        Some(k) => zeroize::Zeroizing::new(k),
        None => conf.seal_root.key_for(product.name.as_bytes()),
    };
    let bytes = file::seal(&key, &binding, written, entries, &Default::default()).unwrap();
    let path = sealed::path_in(dir, product);
    file::write_atomically(&path, &bytes).unwrap();
    path
}

#[test]
fn check_passes_on_the_lab_conf_dir() {
    let out = cli(&lab().conf_dir, &["check"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    for expected in [
        "okvclient.ora",
        "TLS",
        "KMIP DiscoverVersions",
        "1.1",
        "KMIP Query",
        "PyKMIP",
        "all checks passed",
    ] {
        assert!(t.contains(expected), "missing {expected:?} in:\n{t}");
    }
    let out = cli(&lab().conf_dir, &["--json", "check"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["reachable_servers"], 1);
}

#[test]
fn check_names_the_fix_for_each_fault() {
    // Missing client key.
    let dir = conf_copy();
    std::fs::remove_file(dir.path().join("ssl/key.pem")).unwrap();
    let out = cli(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("key.pem"), "{}", text(&out));

    // Missing okvclient.ora.
    let dir = conf_copy();
    std::fs::remove_file(dir.path().join("okvclient.ora")).unwrap();
    let out = cli(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("okvclient.ora"), "{}", text(&out));

    // Nothing listens on SERVER.
    let dir = conf_copy();
    std::fs::write(
        dir.path().join("okvclient.ora"),
        format!("SERVER=127.0.0.1:{}\n", dead_port()),
    )
    .unwrap();
    let out = cli(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("refused") || text(&out).contains("Connection refused"),
        "{}",
        text(&out)
    );

    // A dead SERVER and a live STANDBY_SERVER: the standby passes, the dead one is reported.
    let dir = conf_copy();
    std::fs::write(
        dir.path().join("okvclient.ora"),
        format!(
            "SERVER=127.0.0.1:{}\nSTANDBY_SERVER=127.0.0.1:{}\n",
            dead_port(),
            lab().port
        ),
    )
    .unwrap();
    let out = cli(dir.path(), &["--json", "check"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reachable_servers"], 1, "{v}");

    // CA.pem of another CA: the server certificate is not trusted.
    let dir = conf_copy();
    std::fs::copy(&pki().other_ca_cert, dir.path().join("ssl/CA.pem")).unwrap();
    let out = cli(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("CA.pem"), "{}", text(&out));
}

#[test]
fn key_commands_round_trip_through_pykmip() {
    let conf = &lab().conf_dir;
    let id = unique("cli");
    let out = cli(
        conf,
        &["generate", &id, "AES", "32", "--owner", "dba@localhost"],
    );
    assert!(out.status.success(), "{}", text(&out));

    let out = cli(conf, &["fetch", &id, "--owner", "dba@localhost"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("AES") && shown.contains("32 bytes"),
        "{shown}"
    );
    assert!(
        !shown.contains("material"),
        "material is shown only on request: {shown}"
    );

    let out = cli(
        conf,
        &[
            "--json",
            "fetch",
            &id,
            "--owner",
            "dba@localhost",
            "--show-material",
            "hex",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["material"].as_str().unwrap().len(), 64, "{v}");

    let out = cli(conf, &["--json", "list"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key_id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not listed: {v}"));
    assert_eq!(row["owner"], "dba@localhost");
    assert_eq!(row["type"], "AES");
    assert_eq!(row["length"], 32);
    assert_eq!(row["state"], "Active");
    assert!(!row["unique_id"].as_str().unwrap().is_empty());

    let out = cli(
        conf,
        &["generate", &id, "AES", "32", "--owner", "dba@localhost"],
    );
    assert_eq!(out.status.code(), Some(5), "duplicate: {}", text(&out));
    let out = cli(conf, &["generate", &unique("cli-rsa"), "RSA", "128"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("not supported"));

    let out = cli(conf, &["remove", &id, "--owner", "dba@localhost"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        cli(conf, &["fetch", &id, "--owner", "dba@localhost"])
            .status
            .code(),
        Some(4)
    );
    assert_eq!(
        cli(conf, &["remove", &id, "--owner", "dba@localhost"])
            .status
            .code(),
        Some(4)
    );

    let secret = unique("cli-secret");
    let out = cli_stdin(conf, &["store", &secret, "SECRET"], b"00ff10\n");
    assert!(out.status.success(), "{}", text(&out));
    let out = cli(
        conf,
        &["--json", "fetch", &secret, "--show-material", "base64"],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["material"], "AP8Q");
    assert_eq!(v["type"], "SECRET");
    assert!(cli(conf, &["remove", &secret]).status.success());
}

#[test]
fn store_reads_material_from_stdin_or_a_file_never_argv() {
    let conf = &lab().conf_dir;
    let material: Vec<u8> = (0u8..32).map(|b| b.wrapping_mul(37) ^ 0x0a).collect();
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("key.bin");
    std::fs::write(&raw, &material).unwrap();
    let b64 = dir.path().join("key.b64");
    std::fs::write(&b64, "  AP8Q\n").unwrap();
    let (aes, secret) = (unique("cli-raw"), unique("cli-b64"));
    let out = cli(
        conf,
        &[
            "store",
            &aes,
            "AES",
            "--input",
            raw.to_str().unwrap(),
            "--format",
            "raw",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = cli(
        conf,
        &[
            "store",
            &secret,
            "SECRET",
            "--input",
            b64.to_str().unwrap(),
            "--format",
            "base64",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    for (id, expect) in [(&aes, material.clone()), (&secret, vec![0, 0xff, 0x10])] {
        let out = cli(conf, &["--json", "fetch", id, "--show-material", "hex"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let hex: String = expect.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(v["material"], hex);
        assert!(cli(conf, &["remove", id]).status.success());
    }
    // Material on the command line is refused before anything is stored.
    let id = unique("cli-argv");
    let out = cli(conf, &["store", &id, "SECRET", "--hex", "00ff10"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("standard input"), "{}", text(&out));
    assert_eq!(cli(conf, &["fetch", &id]).status.code(), Some(4));
    // Bad or missing material.
    for (input, format) in [
        (&b"zz"[..], "hex"),
        (b"", "hex"),
        (b"!!", "base64"),
        (b"", "raw"),
    ] {
        let out = cli_stdin(conf, &["store", &id, "SECRET", "--format", format], input);
        assert_eq!(out.status.code(), Some(1), "{format}: {}", text(&out));
    }
}

#[test]
fn usage_errors_exit_one() {
    let out = cli_stdin(&lab().conf_dir, &["store", "k", "SECRET"], b"zz");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_keyring-okv"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// A configuration directory or a key id that is not UTF-8 is refused with a clear message,
/// never a panic and never a lossy copy naming something else: the servers' variables refuse
/// such a path, so `check` must not pass on it.
#[test]
fn paths_and_ids_that_are_not_utf8_are_refused_clearly() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let conf = common::fixtures::make_conf_dir(&pki().layout());
    let odd = conf.tmp.path().join(OsStr::from_bytes(b"conf-\xff"));
    std::fs::rename(&conf.dir, &odd).unwrap();
    for args in [&["check"][..], &["list"], &["mariadb", "list"]] {
        let out = cli(&odd, args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(
            said.contains("--conf-dir must be a UTF-8 path"),
            "{args:?}: {said}"
        );
        assert!(!said.contains("panicked"), "{said}");
    }

    let out = Command::new(env!("CARGO_BIN_EXE_keyring-okv"))
        .arg("--conf-dir")
        .arg(conf.tmp.path().join("absent"))
        .arg("fetch")
        .arg(OsStr::from_bytes(b"key-\xff"))
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("UTF-8"), "{said}");
    assert!(!said.contains("panicked"), "{said}");
}

/// Sealed key cache files, written as the libraries write them, in a copy of the lab's conf
/// dir (no KMIP server is asked).
mod sealed_cache {
    use super::*;

    /// keyring-okv with the sealed files looked for in the configuration directory itself.
    fn cli(conf_dir: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_keyring-okv"))
            .arg("--conf-dir")
            .arg(conf_dir)
            .env("KEYRING_OKV_SEALED_CACHE_DIR", conf_dir)
            .args(args)
            .output()
            .expect("run keyring-okv")
    }

    use okv_core::keyring::KeyType;
    use okv_core::sealed::{self, Entries, Entry, Product};
    use zeroize::Zeroizing;

    const AES_KEY: [u8; 32] = [
        0x5a, 0xc3, 0x17, 0x9e, 0x42, 0xd8, 0x6b, 0xf1, 0x0c, 0x77, 0xa4, 0x39, 0xe2, 0x1d, 0x8f,
        0x55, 0xb6, 0x2a, 0xc9, 0x63, 0x0e, 0xf4, 0x81, 0x3d, 0x9a, 0x26, 0xd5, 0x70, 0x4b, 0xe8,
        0x13, 0xac,
    ];
    const SECRET: &[u8] = b"sealed-cache-secret-\x01\x02\x03";

    fn entries() -> Entries {
        let mut e = Entries::new();
        e.insert(
            ("INNODBKey-sealed-1".into(), String::new()),
            Entry {
                key_type: KeyType::Aes,
                material: Zeroizing::new(AES_KEY.to_vec()),
                uid: "4711".into(),
                server: "127.0.0.1:5696".into(),
                kept_at: sealed::now_unix() - 7200,
                confirmed_at: sealed::now_unix() - 300,
            },
        );
        e.insert(
            ("app_secret".into(), "app@%".into()),
            Entry {
                key_type: KeyType::Secret,
                material: Zeroizing::new(SECRET.to_vec()),
                uid: "4712".into(),
                server: "127.0.0.1:5696".into(),
                kept_at: sealed::now_unix() - 60,
                confirmed_at: sealed::now_unix() - 60,
            },
        );
        e
    }

    /// Writes `product`'s file in `dir` under the key of that conf dir, or under `key`.
    fn write(dir: &Path, product: &Product, key: Option<[u8; 32]>) -> std::path::PathBuf {
        seal_into(dir, dir, product, key, sealed::now_unix() - 120, &entries())
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn assert_no_material(out: &Output) {
        let all = [&out.stdout[..], &out.stderr[..]].concat();
        let shown = String::from_utf8_lossy(&all).to_lowercase();
        for material in [&AES_KEY[..], SECRET] {
            assert!(
                !all.windows(material.len()).any(|w| w == material),
                "raw key bytes in the output"
            );
            // Any 8 consecutive bytes in hex would be a leak too.
            for w in material.windows(8) {
                assert!(!shown.contains(&hex(w)), "key bytes in hex in:\n{shown}");
            }
        }
        assert!(!shown.contains("material"), "{shown}");
    }

    #[test]
    fn show_lists_the_keys_without_their_material() {
        let dir = conf_copy();
        let path = write(dir.path(), &sealed::PLUGIN, None);
        let out = cli(dir.path(), &["sealed-cache", "show"]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{t}");
        assert_no_material(&out);
        for expected in [
            path.display().to_string().as_str(),
            "mode 0600",
            "keyring_okv",
            "INNODBKey-sealed-1",
            "app_secret",
            "app@%",
            "AES",
            "SECRET",
            " 256 ",
            &format!(" {} ", SECRET.len() * 8),
            "4711",
            "127.0.0.1:5696",
            "5 min ago",
            "matches this configuration directory",
            "component_keyring_okv",
            "kmip_key_management",
            "no file",
        ] {
            assert!(t.contains(expected), "missing {expected:?} in:\n{t}");
        }

        let out = cli(
            dir.path(),
            &["--json", "sealed-cache", "show", "--product", "plugin"],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_no_material(&out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["ok"], true);
        let files = v["files"].as_array().unwrap();
        assert_eq!(files.len(), 1, "{v}");
        assert_eq!(files[0]["header"]["product"], "keyring_okv");
        assert_eq!(files[0]["matches_configuration"], true);
        let keys = files[0]["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2, "{v}");
        assert_eq!(keys[0]["key_id"], "INNODBKey-sealed-1");
        assert_eq!(keys[0]["length_bits"], 256);
        assert_eq!(keys[0]["unique_id"], "4711");
    }

    /// Run by root (or a DBA) on the server's file, which belongs to the server's account: the
    /// file is shown with its owner, not refused for not being root's.
    #[test]
    fn show_reads_a_file_of_the_server_account_and_names_its_owner() {
        let dir = conf_copy();
        let path = write(dir.path(), &sealed::PLUGIN, None);
        std::os::unix::fs::chown(&path, Some(4242), Some(4242)).unwrap();
        let out = cli(dir.path(), &["sealed-cache", "show", "--product", "plugin"]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{t}");
        assert!(t.contains("uid 4242"), "{t}");
        assert!(t.contains("INNODBKey-sealed-1"), "{t}");
        assert!(!t.contains("chown"), "{t}");
        assert_no_material(&out);
    }

    #[test]
    fn a_file_sealed_under_another_key_is_an_error() {
        let dir = conf_copy();
        write(dir.path(), &sealed::COMPONENT, Some([9u8; 32]));
        let out = cli(dir.path(), &["sealed-cache", "show"]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(6), "{t}");
        assert!(
            t.contains("does not open with this configuration directory's ssl/key.pem"),
            "{t}"
        );
        // The header is readable without the key; no key line is.
        assert!(t.contains("component_keyring_okv.sealed"), "{t}");
        assert!(!t.contains("INNODBKey-sealed-1"), "{t}");
        assert_no_material(&out);

        let out = cli(dir.path(), &["--json", "sealed-cache", "show"]);
        assert_eq!(out.status.code(), Some(6), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["ok"], false);
        assert!(
            v["files"][1]["error"]
                .as_str()
                .unwrap()
                .contains("ssl/key.pem")
        );
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = conf_copy();
        let path = write(dir.path(), &sealed::MARIADB, None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = cli(
            dir.path(),
            &["sealed-cache", "show", "--product", "mariadb"],
        );
        let t = text(&out);
        assert_eq!(out.status.code(), Some(6), "{t}");
        assert!(t.contains("mode 0644"), "{t}");
        assert!(t.contains("refused") && t.contains("644"), "{t}");
        assert!(t.contains("chmod 600"), "{t}");
        assert!(!t.contains("INNODBKey-sealed-1"), "{t}");
        assert_no_material(&out);
    }

    #[test]
    fn remove_deletes_the_files() {
        let dir = conf_copy();
        let plugin = write(dir.path(), &sealed::PLUGIN, None);
        let component = write(dir.path(), &sealed::COMPONENT, None);
        let out = cli(
            dir.path(),
            &["sealed-cache", "remove", "--product", "plugin"],
        );
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{t}");
        assert!(t.contains(&format!("removed {}", plugin.display())), "{t}");
        assert!(!plugin.exists());
        assert!(component.exists());

        let out = cli(dir.path(), &["sealed-cache", "remove"]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{t}");
        assert!(
            t.contains(&format!("removed {}", component.display())),
            "{t}"
        );
        assert!(
            t.contains("no ") && t.contains("kmip_key_management.sealed"),
            "{t}"
        );
        assert!(!component.exists());
        // The rest of the directory is untouched.
        assert!(dir.path().join("ssl/key.pem").is_file());
        assert!(dir.path().join("okvclient.ora").is_file());

        let out = cli(dir.path(), &["sealed-cache", "show"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_eq!(text(&out).matches("no file").count(), 3, "{}", text(&out));
    }
}

/// `keyring-okv verify` against a PyKMIP server of its own: every fault a DBA can meet gives its
/// own exit code and a line naming the key and what to do, never key material.
mod verify {
    use super::*;

    use common::pykmip::{Named, repo_root};
    use okv_core::keyring::KeyType;
    use okv_core::sealed::{self, Entries, Entry};
    use zeroize::Zeroizing;

    /// Stops the PyKMIP instance at the end, whatever happened.
    struct Kmip(Named);

    impl Drop for Kmip {
        fn drop(&mut self) {
            let _ = Command::new("bash")
                .arg(repo_root().join("scripts/pykmip.sh"))
                .arg("stop")
                .env("KEYRING_OKV_PYKMIP_NAME", &self.0.name)
                .env("KEYRING_OKV_PYKMIP_PKI", self.0.profile)
                .output();
        }
    }

    const MATERIAL: &str = "8f3a61c0d27e94b5a1c6e0f7382d9b4e5a6c7d8e9f0a1b2c3d4e5f60718293a4";

    fn json(out: &Output) -> serde_json::Value {
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("verify --json: {e}: {}", text(out)))
    }

    fn failed_checks(v: &serde_json::Value) -> Vec<String> {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["ok"] == false)
            .map(|c| format!("{}: {}", c["check"], c["detail"]))
            .collect()
    }

    fn uid_of(conf: &Path, key_id: &str) -> String {
        let v = json(&cli(conf, &["--json", "list"]));
        v.as_array()
            .unwrap()
            .iter()
            .find(|r| r["key_id"] == key_id)
            .unwrap_or_else(|| panic!("{key_id} not listed: {v}"))["unique_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A plugin sealed file in `dir` holding `key_id` as object `uid` with `material`.
    fn write_sealed(conf_dir: &Path, dir: &Path, key_id: &str, uid: &str, material: Vec<u8>) {
        let conf = okv_core::config::load_conf_dir(conf_dir).expect("the conf dir loads");
        let mut entries = Entries::new();
        entries.insert(
            (key_id.to_string(), String::new()),
            Entry {
                key_type: KeyType::Aes,
                material: Zeroizing::new(material),
                uid: uid.to_string(),
                server: conf.servers[0].to_string(),
                kept_at: sealed::now_unix() - 60,
                confirmed_at: sealed::now_unix() - 60,
            },
        );
        seal_into(
            conf_dir,
            dir,
            &sealed::PLUGIN,
            None,
            sealed::now_unix(),
            &entries,
        );
    }

    #[test]
    fn verify_passes_on_keys_in_force_and_names_each_fault() {
        let kmip = Kmip(Named::start("cli_verify", "p256"));
        let conf = kmip.0.conf_dir();
        let conf = conf.as_path();
        let verify = |args: &[&str]| {
            let mut all = vec!["--json", "verify"];
            all.extend_from_slice(args);
            let out = cli(conf, &all);
            let said = text(&out);
            assert!(!said.contains(MATERIAL), "material shown: {said}");
            assert!(!said.contains("panicked"), "{said}");
            (out.status.code(), json(&out))
        };

        // MariaDB cannot start without key 1.
        let (code, v) = verify(&["--mariadb"]);
        assert_eq!(code, Some(4), "{v}");
        assert!(failed_checks(&v).iter().any(|f| f.contains("key 1")), "{v}");

        assert!(
            cli(conf, &["generate", "INNODBKey-verify-1", "AES", "32"])
                .status
                .success()
        );
        let out = cli_stdin(
            conf,
            &["store", "INNODBKey-verify-3", "AES"],
            MATERIAL.as_bytes(),
        );
        assert!(out.status.success(), "{}", text(&out));
        let out = cli(conf, &["mariadb", "create-key", "1"]);
        assert!(out.status.success(), "{}", text(&out));

        let (code, v) = verify(&["--mariadb", "--key", "INNODBKey-verify-1"]);
        assert_eq!(code, Some(0), "{:?}", failed_checks(&v));
        assert_eq!(v["ok"], true);
        assert_eq!(v["keys"], 3, "two MySQL keys and one MariaDB version: {v}");
        let plain = cli(conf, &["verify", "--mariadb"]);
        assert!(plain.status.success(), "{}", text(&plain));
        assert!(
            text(&plain).contains("verified: 3 key(s) in force"),
            "{}",
            text(&plain)
        );

        // A key an error log names that the server does not have.
        let (code, v) = verify(&["--key", "INNODBKey-verify-2"]);
        assert_eq!(code, Some(4), "{v}");
        assert!(
            failed_checks(&v)
                .iter()
                .any(|f| f.contains("INNODBKey-verify-2") && f.contains("no Active object")),
            "{v}"
        );

        // The running server's sealed copy: the server's object and bytes pass; other bytes
        // under the same object, or another object under the name, fail with 7.
        let uid = uid_of(conf, "INNODBKey-verify-3");
        let sealed_dir = tempfile::tempdir().unwrap();
        let bytes = |hex: &str| -> Vec<u8> {
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect()
        };
        let dir = sealed_dir.path().to_str().unwrap();
        write_sealed(
            conf,
            sealed_dir.path(),
            "INNODBKey-verify-3",
            &uid,
            bytes(MATERIAL),
        );
        let (code, v) = verify(&["--sealed-dir", dir]);
        assert_eq!(code, Some(0), "{:?}", failed_checks(&v));
        let mut other = bytes(MATERIAL);
        other[0] ^= 1;
        write_sealed(conf, sealed_dir.path(), "INNODBKey-verify-3", &uid, other);
        let (code, v) = verify(&["--sealed-dir", dir]);
        assert_eq!(code, Some(7), "{v}");
        assert!(
            failed_checks(&v).iter().any(|f| f.contains("differs")),
            "{v}"
        );
        let uid_1 = uid_of(conf, "INNODBKey-verify-1");
        write_sealed(
            conf,
            sealed_dir.path(),
            "INNODBKey-verify-3",
            &uid_1,
            bytes(MATERIAL),
        );
        let (code, v) = verify(&["--sealed-dir", dir]);
        assert_eq!(code, Some(7), "{v}");
        assert!(
            failed_checks(&v)
                .iter()
                .any(|f| f.contains(&uid_1) && f.contains("sealed-cache remove")),
            "{v}"
        );

        // Revoked behind the databases' backs: MariaDB's latest version, then an InnoDB key.
        let versions = json(&cli(conf, &["--json", "mariadb", "list"]));
        let mariadb_uid = versions[0]["uid"].as_str().unwrap().to_string();
        kmip.0.script(&["tool", "revoke", &mariadb_uid]);
        let (code, v) = verify(&["--mariadb"]);
        assert_eq!(code, Some(7), "{v}");
        assert!(
            failed_checks(&v)
                .iter()
                .any(|f| f.contains("latest version 1 is Deactivated")),
            "{v}"
        );
        kmip.0.script(&["tool", "revoke", &uid_1]);
        let (code, v) = verify(&["--key", "INNODBKey-verify-1"]);
        assert_eq!(code, Some(4), "{v}");

        // No server answers: 3, and no key is called revoked.
        kmip.0.script(&["stop"]);
        let (code, v) = verify(&["--key", "INNODBKey-verify-3"]);
        assert_eq!(code, Some(3), "{v}");
        assert!(
            !failed_checks(&v).iter().any(|f| f.contains("revoked")),
            "{v}"
        );
    }

    #[test]
    fn verify_on_a_broken_configuration_exits_two() {
        let dir = tempfile::tempdir().unwrap();
        let out = cli(dir.path(), &["--json", "verify"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let v = json(&out);
        assert_eq!(v["ok"], false);
        assert_eq!(v["exit_code"], 2);
    }
}
