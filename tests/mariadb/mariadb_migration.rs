//! The manual's guide "From MariaDB's file_key_management or hashicorp_key_management"
//! (docs/migration.md), with the real MariaDB 10.11. In place: data encrypted under
//! file_key_management's key 1 cannot be read under a key 1 kmip_key_management made, so the
//! table is decrypted under the old plugin, the server switches plugins, and the table is
//! encrypted again under the new one. By import: `keyring-okv mariadb import` registers the key
//! file's keys as version 1 of their ids, and the same datadir opens under kmip_key_management.

#[path = "../common/mod.rs"]
mod common;

use common::mariadb::{Instance, Target, admin, plugin_args, versions_on_server};
use common::pykmip::{lab, unique};

const KEYRING_OKV: &str = env!("CARGO_BIN_EXE_keyring-okv");

fn scheme_and_key(db: &Instance) -> String {
    db.must_sql(
        "SELECT CONCAT(ENCRYPTION_SCHEME, ' ', CURRENT_KEY_ID) FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME='d/t'",
    )
}

#[test]
fn from_file_key_management_by_decrypting_first() {
    let db = Instance::new(Target::Host, "docs-mariadb-migrate");
    let conf = db.conf(&lab().conf_dir);
    let namespace = unique("docsmig");
    // The old plugin's key file, in the instance directory.
    std::fs::write(
        db.path().join("keys.txt"),
        "1;a7addd9adea9978fda19f21e6be987880e68ac92632ca052e5bb42b1a506939a\n",
    )
    .unwrap();
    let file_plugin = vec![
        "--plugin-load-add=file_key_management".to_string(),
        format!("--file-key-management-filename={}/keys.txt", db.inner()),
    ];
    db.must_start(&file_plugin);
    db.must_sql(
        "CREATE DATABASE d;
         CREATE TABLE d.t (a INT) ENGINE=InnoDB ENCRYPTED=YES ENCRYPTION_KEY_ID=1;
         INSERT INTO d.t VALUES (42)",
    );
    assert_eq!(scheme_and_key(&db), "1 1");

    // Key 1 of the new plugin is another key: the table encrypted under the old one is not
    // readable there.
    let out = admin(
        KEYRING_OKV,
        &lab().conf_dir,
        &["create-key", "1", "--namespace", &namespace],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kmip_plugin = plugin_args(&conf, &namespace);
    db.must_start(&kmip_plugin);
    assert!(
        db.sql("SELECT a FROM d.t").is_err(),
        "a table encrypted under file_key_management was read under kmip_key_management"
    );

    // The guide: decrypt under the old plugin, switch, encrypt under the new one.
    db.must_start(&file_plugin);
    assert_eq!(db.must_sql("SELECT a FROM d.t"), "42");
    db.must_sql("ALTER TABLE d.t ENCRYPTED=NO");
    let scheme = db.must_sql(
        "SELECT ENCRYPTION_SCHEME FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME='d/t'",
    );
    assert!(
        scheme == "0" || scheme.is_empty(),
        "still encrypted: {scheme}"
    );
    db.must_start(&kmip_plugin);
    assert_eq!(db.must_sql("SELECT a FROM d.t"), "42");
    db.must_sql("ALTER TABLE d.t ENCRYPTED=YES ENCRYPTION_KEY_ID=1");
    db.restart().expect("restart on kmip_key_management");
    assert_eq!(db.must_sql("SELECT a FROM d.t"), "42");
    assert_eq!(scheme_and_key(&db), "1 1");
    assert!(db.status("key_fetches") > 0 || db.status("requests") > 0);
}

const KEY1: &str = "a7addd9adea9978fda19f21e6be987880e68ac92632ca052e5bb42b1a506939a";
const KEY5: &str = "F5502320F8429037B8DAEF761B189D12";

fn import(conf: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = admin(KEYRING_OKV, conf, &[&["import"], args].concat());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for key in [KEY1, KEY5] {
        assert!(
            !all.to_lowercase().contains(&key[..16].to_lowercase()),
            "key bytes printed: {all}"
        );
    }
    out
}

/// The third way of the guide: the key file's keys registered as version 1 of their key ids,
/// so that the tables encrypted under file_key_management read back under kmip_key_management
/// with no re-encryption; then a rotation.
fn import_and_switch(instance: &str, filekey: Option<&str>) {
    let db = Instance::new(Target::Host, instance);
    let conf = db.conf(&lab().conf_dir);
    let namespace = unique("migr");
    let plain = format!("# file_key_management keys\n1;{KEY1}\n\n5;{KEY5}\n");
    let dir = db.path();
    let mut file_plugin = vec!["--plugin-load-add=file_key_management".to_string()];
    let key_file = match filekey {
        None => {
            std::fs::write(dir.join("keys.txt"), &plain).unwrap();
            dir.join("keys.txt")
        }
        Some(secret) => {
            std::fs::write(dir.join("keys.txt"), &plain).unwrap();
            std::fs::write(dir.join("filekey"), format!("{secret}\n")).unwrap();
            let out = std::process::Command::new("openssl")
                .args(["enc", "-aes-256-cbc", "-md", "sha1", "-k", secret, "-in"])
                .arg(dir.join("keys.txt"))
                .arg("-out")
                .arg(dir.join("keys.enc"))
                .output()
                .expect("run openssl");
            assert!(out.status.success(), "{out:?}");
            std::fs::remove_file(dir.join("keys.txt")).unwrap();
            file_plugin.push(format!(
                "--file-key-management-filekey=FILE:{}/filekey",
                db.inner()
            ));
            dir.join("keys.enc")
        }
    };
    let name = key_file.file_name().unwrap().to_str().unwrap().to_string();
    file_plugin.push(format!(
        "--file-key-management-filename={}/{name}",
        db.inner()
    ));
    db.must_start(&file_plugin);
    db.must_sql(
        "CREATE DATABASE d;
         CREATE TABLE d.t (a INT) ENGINE=InnoDB ENCRYPTED=YES ENCRYPTION_KEY_ID=1;
         CREATE TABLE d.t5 (a INT) ENGINE=InnoDB ENCRYPTED=YES ENCRYPTION_KEY_ID=5;
         INSERT INTO d.t VALUES (42); INSERT INTO d.t5 VALUES (5)",
    );
    assert_eq!(scheme_and_key(&db), "1 1");
    db.stop();

    // Import: each key once; the same file again is a no-op.
    let conf_dir = lab().conf_dir.clone();
    let key_file = key_file.to_str().unwrap();
    let mut args = vec![key_file, "--namespace", &namespace];
    let filekey_arg = format!("FILE:{}", dir.join("filekey").display());
    if filekey.is_some() {
        args.extend(["--filekey", &filekey_arg]);
        // Without the filekey the file does not decrypt, and nothing is registered.
        let out = import(&conf_dir, &[key_file, "--namespace", &namespace]);
        assert_eq!(out.status.code(), Some(5), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("does not decrypt"),
            "{out:?}"
        );
        assert!(versions_on_server(KEYRING_OKV, &conf_dir, &namespace).is_empty());
    }
    for again in [false, true] {
        let out = import(&conf_dir, &args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        let said = if again {
            "holds the file's key already"
        } else {
            "imported key 5 as version 1"
        };
        assert!(stdout.contains(said), "{stdout}");
    }
    assert_eq!(
        versions_on_server(KEYRING_OKV, &conf_dir, &namespace),
        [(1, 1), (5, 1)]
    );

    // The same datadir on kmip_key_management reads the rows as they are.
    let kmip_plugin = plugin_args(&conf, &namespace);
    db.must_start(&kmip_plugin);
    assert_eq!(db.must_sql("SELECT a FROM d.t"), "42");
    assert_eq!(db.must_sql("SELECT a FROM d.t5"), "5");
    assert!(db.status("key_fetches") > 0);

    // Rotation then works: key 5 gets version 2, and the table rebuilt is encrypted under it.
    db.must_sql("SET GLOBAL kmip_key_management_rotate_key = 5");
    db.must_sql("ALTER TABLE d.t5 FORCE");
    let versions = "SELECT CONCAT(MIN_KEY_VERSION, ':', CURRENT_KEY_VERSION) FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME='d/t5'";
    assert!(
        db.wait_for(versions, "2:2", 30),
        "d/t5 is not encrypted with version 2: {}",
        db.must_sql(versions)
    );
    db.must_sql("INSERT INTO d.t5 VALUES (6)");
    db.restart().expect("restart on kmip_key_management");
    assert_eq!(db.must_sql("SELECT SUM(a) FROM d.t5"), "11");
    assert_eq!(db.must_sql("SELECT a FROM d.t"), "42");
    db.stop();

    // Key 5 now has a version the file does not hold: the import is refused, naming it.
    let out = import(&conf_dir, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(
        stderr.contains("key ids 5 of the key file already have versions"),
        "{stderr}"
    );
    assert_eq!(
        versions_on_server(KEYRING_OKV, &conf_dir, &namespace),
        [(1, 1), (5, 1), (5, 2)]
    );
}

#[test]
fn from_file_key_management_by_importing_the_key_file() {
    import_and_switch("migr-import", None);
}

#[test]
fn from_file_key_management_by_importing_an_encrypted_key_file() {
    import_and_switch("migr-import-enc", Some("s3cret filekey"));
}
