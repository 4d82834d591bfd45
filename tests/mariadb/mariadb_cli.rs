//! `keyring-okv mariadb`: create-key, rotate, list and import against PyKMIP, with their exit codes.

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

const KEY1: &str = "a7addd9adea9978fda19f21e6be987880e68ac92632ca052e5bb42b1a506939a";
const KEY2: &str = "770A8A65DA156D24EE2A093277530142770A8A65DA156D24";

/// (key id, version, state) of every object of the namespace.
fn listed(ns: &str) -> Vec<(u64, u64, String)> {
    let out = std::process::Command::new(KEYRING_OKV)
        .arg("--conf-dir")
        .arg(&lab().conf_dir)
        .args(["--json", "mariadb", "list", "--namespace", ns])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key_id"].as_u64().unwrap(),
                r["version"].as_u64().unwrap(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn import_refuses_taken_ids_and_settles_races() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, format!("1;{KEY1}\n# two\n2;{KEY2}\n")).unwrap();
    let keys = keys.to_str().unwrap();

    // Key id 2 has a key of its own: nothing is imported, and the message names it.
    let ns = unique("mdb-import");
    assert_eq!(run(&["create-key", "2", "--namespace", &ns]).0, 0);
    let (code, out, err) = run(&["import", keys, "--namespace", &ns]);
    assert_eq!(code, 5, "{out}{err}");
    assert!(
        err.contains("key ids 2 of the key file already have versions"),
        "{err}"
    );
    assert_eq!(listed(&ns), [(2, 1, "Active".to_string())]);

    // Several imports at once: all succeed, with one object per key id holding the file's key.
    let ns = unique("mdb-import-race");
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let (keys, ns) = (keys.to_string(), ns.clone());
            std::thread::spawn(move || run(&["import", &keys, "--namespace", &ns]))
        })
        .collect();
    for r in runs {
        let (code, out, err) = r.join().unwrap();
        assert_eq!(code, 0, "{out}{err}");
        for key in [KEY1, KEY2] {
            assert!(!format!("{out}{err}").contains(&key[..16]), "{out}{err}");
        }
    }
    let active: Vec<_> = listed(&ns)
        .into_iter()
        .filter(|(_, _, state)| state == "Active")
        .map(|(id, v, _)| (id, v))
        .collect();
    assert_eq!(active, [(1, 1), (2, 1)]);
    let (code, out, err) = run(&["import", keys, "--namespace", &ns]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.matches("holds the file's key already").count(),
        2,
        "{out}"
    );

    // A line MariaDB would refuse is refused with MariaDB's words, and no key is quoted.
    std::fs::write(dir.path().join("bad.txt"), format!("1;{KEY1}\n2:{KEY2}\n")).unwrap();
    let bad = dir.path().join("bad.txt");
    let (code, _, err) = run(&["import", bad.to_str().unwrap(), "--namespace", &ns]);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("Syntax error at") && err.contains("line 2, column 2"),
        "{err}"
    );
    assert!(!err.contains(&KEY2[..16]), "{err}");
}
