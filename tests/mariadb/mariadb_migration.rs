//! The manual's guide "From MariaDB's file_key_management or hashicorp_key_management"
//! (docs/migration.md), in place, with the real MariaDB 10.11: data encrypted under
//! file_key_management's key 1 cannot be read under kmip_key_management's key 1 (the plugin
//! makes its keys on the KMIP server and cannot import key bytes), so the table is decrypted
//! under the old plugin, the server switches plugins, and the table is encrypted again under
//! the new one.

#[path = "../common/mod.rs"]
mod common;

use common::mariadb::{Instance, Target, admin, plugin_args};
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
