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
