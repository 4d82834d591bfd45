//! The key-state guard in each product's core (the entry points the C boundaries call), against
//! an in-process KMIP server: a key revoked behind the product's back is found within a few
//! polls, counted in the status, and with `refuse` no longer served (from the key cache either);
//! with `warn` it is still served; a server that goes away is an outage, never a revocation;
//! unload joins the guard's thread. The products share the I/O runtime, so they run one after
//! the other in one test.

#[path = "../common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::fault_server::CutProxy;
use common::fixtures::{Layout, make_conf_dir, pki};
use common::kmip_quirks::{Object, serve_in_process};
use okv_core::guard::{Action, Settings, Status};
use okv_core::keyring::object_name;
use okv_core::kmip::tags::state;
use okv_core::products::{mariadb, mysql_component, mysql_plugin};

const INNODB: &str = "INNODBKey-00000000-0000-0000-0000-000000000000-1";

fn wait_for(what: &str, status: impl Fn() -> Status, done: impl Fn(&Status) -> bool) -> Status {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status();
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: {s:?}");
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// Threads of this process named like the guard's (the kernel keeps 15 bytes of a name).
fn guard_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim_end() == "keyring_okv-gua")
                })
                .count()
        })
        .unwrap_or(0)
}

fn plugin() {
    let (kmip, _server, conf) = serve_in_process("ks-plugin-", "127.0.0.1");
    let uid = kmip.fresh_uid();
    kmip.plant(Object::aes(
        &uid,
        &object_name(INNODB, ""),
        vec![1; 32],
        1_700_000_000,
    ));
    mysql_plugin::start();
    mysql_plugin::set_key_state_guard(1, Some("refuse"));
    mysql_plugin::set_cache(true, 300);
    mysql_plugin::install(
        mysql_plugin::prepare(conf.dir.to_str().unwrap(), true).expect("configuration"),
    );
    assert!(mysql_plugin::fetch(INNODB, "").expect("fetch").is_some());
    assert_eq!(mysql_plugin::key_state_status().keys_watched, 1);
    assert_eq!(mysql_plugin::cached_keys().0, 1);
    wait_for("a first poll", mysql_plugin::key_state_status, |s| {
        s.last_result == "ok"
    });
    kmip.edit(&uid, |o| o.state = state::COMPROMISED);
    let s = wait_for("the revocation", mysql_plugin::key_state_status, |s| {
        s.revoked_in_use == 1
    });
    assert_eq!(s.outages, 0, "{s:?}");
    assert_eq!(
        mysql_plugin::cached_keys().0,
        0,
        "refuse empties the key cache"
    );
    assert!(mysql_plugin::fetch(INNODB, "").expect("fetch").is_none());
    assert_eq!(guard_threads(), 1);
    mysql_plugin::shutdown();
    assert_eq!(guard_threads(), 0, "unload joins the guard's thread");
    mysql_plugin::set_cache(false, 300);
}

fn component() {
    let (kmip, server, _conf) = serve_in_process("ks-component-", "127.0.0.1");
    // Through a proxy that can cut every connection: the KMIP connection is kept open, so a
    // server that stops accepting would still answer on it.
    let proxy = CutProxy::start(server.addr);
    let conf = make_conf_dir(&Layout {
        ora: Some(format!("SERVER=127.0.0.1:{}\n", proxy.port())),
        ..pki().layout()
    });
    let uid = kmip.fresh_uid();
    kmip.plant(Object::aes(
        &uid,
        &object_name(INNODB, ""),
        vec![2; 32],
        1_700_000_000,
    ));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("component_keyring_okv.cnf"),
        format!(
            "{{\"kmip_configuration_directory\": \"{}\", \"cache_keys\": true, \"key_state_poll_seconds\": 1, \"key_state_action\": \"warn\"}}",
            conf.dir.display()
        ),
    )
    .unwrap();
    mysql_component::load(dir.path().to_str().unwrap(), None).expect("configuration");
    assert!(mysql_component::fetch(INNODB, "").expect("fetch").is_some());
    kmip.edit(&uid, |o| o.state = state::DEACTIVATED);
    wait_for("the revocation", mysql_component::key_state_status, |s| {
        s.revoked_in_use == 1
    });
    // warn: the key is still served (from the key cache), and the rows show it.
    assert!(mysql_component::fetch(INNODB, "").expect("fetch").is_some());
    let rows = mysql_component::status_rows();
    let row = |name: &str| {
        rows.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no row {name}: {rows:?}"))
    };
    assert_eq!(row("Key_state_revoked_keys"), "1");
    assert_eq!(row("Key_state_keys_watched"), "1");
    // The server goes away: outages are counted, nothing else changes.
    proxy.cut();
    let s = wait_for("an outage", mysql_component::key_state_status, |s| {
        s.outages >= 2
    });
    assert_eq!(s.revoked_in_use, 1, "{s:?}");
    assert!(s.last_result.starts_with("outage: "), "{s:?}");
    // A reload that turns the guard off: it shows off at once; the old thread is joined at
    // unload (the reload does not wait for it).
    proxy.restore();
    std::fs::write(
        dir.path().join("component_keyring_okv.cnf"),
        format!(
            "{{\"kmip_configuration_directory\": \"{}\", \"key_state_poll_seconds\": 0}}",
            conf.dir.display()
        ),
    )
    .unwrap();
    mysql_component::load(dir.path().to_str().unwrap(), None).expect("reload");
    assert_eq!(mysql_component::key_state_status().last_result, "off");
    mysql_component::shutdown();
    assert_eq!(guard_threads(), 0, "unload joins the guard's thread");
}

fn mariadb_plugin() {
    let (kmip, _server, conf) = serve_in_process("ks-mariadb-", "127.0.0.1");
    let namespace = "ks";
    let uid = kmip.fresh_uid();
    kmip.plant(Object::aes(
        &uid,
        &mariadb::object_name(namespace, 1, 1),
        vec![3; 32],
        1_700_000_000,
    ));
    mariadb::host::start(
        conf.dir.to_str().unwrap(),
        mariadb::Settings {
            namespace: namespace.into(),
            key_state: Settings {
                poll: Duration::from_secs(1),
                action: Action::Refuse,
            },
            ..mariadb::Settings::default()
        },
    )
    .expect("start");
    assert_eq!(mariadb::host::with_key(1, 1, <[u8]>::len), Some(32));
    assert_eq!(mariadb::host::key_state_status().keys_watched, 1);
    kmip.edit(&uid, |o| o.state = state::DEACTIVATED);
    wait_for("the revocation", mariadb::host::key_state_status, |s| {
        s.revoked_in_use == 1
    });
    // The action follows the count, on the guard's thread.
    let deadline = Instant::now() + Duration::from_secs(60);
    while mariadb::host::with_key(1, 1, <[u8]>::len).is_some() {
        assert!(Instant::now() < deadline, "version 1 is still served");
        std::thread::park_timeout(Duration::from_millis(50));
    }
    // The refused version was the latest: a new one was made first, for the page writes.
    assert_eq!(mariadb::host::latest_version(1), Some(2));
    assert_eq!(mariadb::host::with_key(1, 2, <[u8]>::len), Some(32));
    mariadb::host::stop();
    assert_eq!(guard_threads(), 0, "unload joins the guard's thread");
}

/// `rotate`: a new version of the key id is made at once; the revoked one is still served
/// (InnoDB needs it until its pages are re-encrypted).
fn mariadb_rotate() {
    let (kmip, _server, conf) = serve_in_process("ks-rotate-", "127.0.0.1");
    let namespace = "ks-rotate";
    let uid = kmip.fresh_uid();
    kmip.plant(Object::aes(
        &uid,
        &mariadb::object_name(namespace, 1, 1),
        vec![4; 32],
        1_700_000_000,
    ));
    mariadb::host::start(
        conf.dir.to_str().unwrap(),
        mariadb::Settings {
            namespace: namespace.into(),
            key_state: Settings {
                poll: Duration::from_secs(1),
                action: Action::Rotate,
            },
            ..mariadb::Settings::default()
        },
    )
    .expect("start");
    assert_eq!(mariadb::host::latest_version(1), Some(1));
    kmip.edit(&uid, |o| o.state = state::COMPROMISED);
    wait_for("the revocation", mariadb::host::key_state_status, |s| {
        s.revoked_in_use == 1
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while mariadb::host::latest_version(1) != Some(2) {
        assert!(Instant::now() < deadline, "no version 2 was made");
        std::thread::park_timeout(Duration::from_millis(50));
    }
    assert_eq!(kmip.named(&mariadb::object_name(namespace, 1, 2)).len(), 1);
    assert_eq!(mariadb::host::with_key(1, 1, <[u8]>::len), Some(32));
    mariadb::host::stop();
    assert_eq!(guard_threads(), 0, "unload joins the guard's thread");
}

#[test]
fn each_product_acts_on_a_revoked_key_and_not_on_an_outage() {
    plugin();
    component();
    mariadb_plugin();
    mariadb_rotate();
}
