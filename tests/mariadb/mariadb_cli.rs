//! `keyring-okv mariadb`: create-key, rotate and list against PyKMIP, with their exit codes.

#[path = "../common/mod.rs"]
mod common;

use common::mariadb::admin;
use common::pykmip::{lab, unique};

const KEYRING_OKV: &str = env!("CARGO_BIN_EXE_keyring-okv");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = admin(KEYRING_OKV, &lab().conf_dir, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn create_rotate_and_list() {
    let ns = unique("mdb-cli");
    let (code, out, err) = run(&["create-key", "1", "--namespace", &ns]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("created key 1 version 1 ({ns}/1/1)"));

    // A second create-key is refused: versions are made by rotation only.
    let (code, _, err) = run(&["create-key", "1", "--namespace", &ns]);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("key 1 already exists (latest version 1)"),
        "{err}"
    );

    let (code, out, err) = run(&["rotate", "1", "--namespace", &ns]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("created key 1 version 2 ({ns}/1/2)"));

    // Rotating a key that does not exist makes nothing.
    let (code, _, err) = run(&["rotate", "9", "--namespace", &ns]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("key 9 does not exist"), "{err}");

    let (code, out, err) = run(&["list", "--namespace", &ns]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].contains("Active") && rows[0].contains("256"),
        "{out}"
    );

    // Another namespace sees none of them.
    let (code, out, _) = run(&["list", "--namespace", &unique("mdb-cli-other")]);
    assert_eq!(code, 0);
    assert!(out.starts_with("no keys in namespace"), "{out}");

    // A namespace that cannot be split back from the names is refused.
    let (code, _, err) = run(&["list", "--namespace", "a/b"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("key_namespace 'a/b' is invalid"), "{err}");
}
