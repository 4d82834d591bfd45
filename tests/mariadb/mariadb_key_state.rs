//! The key-state guard of kmip_key_management.so in a real MariaDB 10.11 (host) and 11.8
//! (chroot) against PyKMIP, with `kmip_key_management_key_state_action=rotate`: version 1 of
//! key 1, used by an encrypted table, is revoked behind the server's back (PyKMIP's own client);
//! within a few polls the error log names it and the rotation, the status variables (a second
//! status array) show it, a version 2 exists, and InnoDB's encryption threads move the table's
//! pages to it.

#[path = "../common/mod.rs"]
mod common;

use common::mariadb::{
    Instance, Target, create_keys, encryption_args, plugin_args, versions_on_server,
};
use common::pykmip::{lab, tool, unique};

const KEYRING_OKV: &str = env!("CARGO_BIN_EXE_keyring-okv");

fn rotate_on_revocation(target: Target) {
    let namespace = unique("mdb-guard");
    create_keys(KEYRING_OKV, &lab().conf_dir, &namespace, &[1]);
    let db = Instance::new(
        target,
        &format!("guard-key-state-{target:?}").to_lowercase(),
    );
    let conf = db.conf(&lab().conf_dir);
    let mut args = plugin_args(&conf, &namespace);
    args.extend(encryption_args());
    args.push("--kmip-key-management-key-state-poll-seconds=1".into());
    args.push("--kmip-key-management-key-state-action=rotate".into());
    db.must_start(&args);
    db.must_sql(
        "CREATE DATABASE g;
         CREATE TABLE g.t (id INT PRIMARY KEY, v VARCHAR(50)) ENGINE=InnoDB ENCRYPTION_KEY_ID=1;
         INSERT INTO g.t VALUES (1, 'one'), (2, 'two');",
    );
    assert!(db.status("key_state_keys_watched") >= 1);
    assert_eq!(db.status("key_state_revoked_keys"), 0);

    let name = format!("{namespace}/1/1");
    let found = tool(&["find", &name]);
    let uid = found
        .as_array()
        .and_then(|a| a.first())
        .and_then(|o| o["uid"].as_str())
        .unwrap_or_else(|| panic!("{name} not on the server: {found}"))
        .to_string();
    tool(&["revoke", &uid]);

    assert!(
        db.wait_for(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='KMIP_KEY_MANAGEMENT_KEY_STATE_REVOKED_KEYS'",
            "1",
            60
        ),
        "the revocation was not seen:\n{}",
        db.log_tail(30)
    );
    let log = db.last_start_log();
    let line = log
        .lines()
        .find(|l| l.contains("on the KMIP server and still in use"))
        .unwrap_or_else(|| panic!("no line:\n{log}"));
    assert!(line.contains("[ERROR] kmip_key_management:"), "{line}");
    assert!(line.contains("key 1 version 1"), "{line}");
    assert!(line.contains(&format!("KMIP object {uid} ")), "{line}");
    assert!(
        line.contains("run SET GLOBAL kmip_key_management_rotate_key = 1; key_state_action=rotate"),
        "{line}"
    );
    assert!(
        db.wait_for(
            "SELECT CURRENT_KEY_VERSION FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME='g/t'",
            "2",
            120
        ),
        "the table's pages did not move to version 2:\n{}",
        db.log_tail(30)
    );
    assert!(
        versions_on_server(KEYRING_OKV, &lab().conf_dir, &namespace).contains(&(1, 2)),
        "no version 2 on the server"
    );
    assert_eq!(db.must_sql("SELECT v FROM g.t WHERE id = 2"), "two");
}

#[test]
fn mariadb_10_11_host() {
    rotate_on_revocation(Target::Host);
}

#[test]
fn mariadb_11_8_chroot() {
    rotate_on_revocation(Target::Chroot);
}
