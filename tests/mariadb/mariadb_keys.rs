//! The MariaDB key store of the core against PyKMIP, without a server: answers from memory
//! while the KMIP server hangs, new versions made by another server found by the refresh,
//! versions that only grow, and key bytes of the sizes MariaDB accepts.

#[path = "../common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Duration;

use common::pykmip::{lab, unique};
use common::tcp_proxy::TcpProxy;
use okv_core::config;
use okv_core::connector::KmipClient;
use okv_core::products::mariadb::{KeyStore, KeyStoreError, Settings};

/// A store on `conf`, as one MariaDB server would hold it.
fn store(conf: &Path, namespace: &str) -> KeyStore {
    let conf = config::load_conf_dir(conf).expect("conf dir");
    let client = KmipClient::from_conf_dir(&conf).expect("client");
    let settings = Settings {
        namespace: namespace.to_string(),
        ..Settings::default()
    };
    KeyStore::new(client, settings).expect("store")
}

/// A copy of the lab configuration that reaches PyKMIP through `proxy`. The timeouts are short,
/// so a hung server costs the test seconds, yet not so short that a PyKMIP busy with the other
/// tests of this file (they run in parallel on a shared machine) looks hung.
fn conf_via(proxy: &TcpProxy, dir: &Path) {
    common::mariadb::conf_through(
        &lab().conf_dir,
        dir,
        proxy.addr,
        "KEYRING_OKV_CONNECT_TIMEOUT=3\nKEYRING_OKV_REQUEST_TIMEOUT=3\n",
    );
}

#[test]
fn keys_that_worked_stay_answered_from_memory_while_the_server_hangs() {
    let namespace = unique("mdb-store");
    let admin = store(&lab().conf_dir, &namespace);
    admin.create_first(1).unwrap();
    admin.create_first(5).unwrap();
    admin.rotate(Some(5)).unwrap();

    let proxy = TcpProxy::start(([127, 0, 0, 1], lab().port).into());
    let staging = tempfile::tempdir().unwrap();
    let conf = staging.path().join("conf");
    conf_via(&proxy, &conf);
    let node = store(&conf, &namespace);
    assert_eq!(node.require(1).unwrap(), 1);
    assert_eq!(node.latest_version(5), Some(2));
    let key5 = node
        .with_key(5, 2, <[u8]>::to_vec)
        .expect("key 5 version 2");
    assert_eq!(key5.len(), 32);
    let requests = node.client().health().snapshot().requests;

    proxy.set_hang(true);
    for _ in 0..1000 {
        assert_eq!(node.latest_version(1), Some(1));
        assert_eq!(node.latest_version(5), Some(2));
    }
    assert_eq!(node.with_key(5, 2, <[u8]>::to_vec), Some(key5.clone()));
    assert_eq!(
        node.client().health().snapshot().requests,
        requests,
        "answers from memory must not reach the KMIP server"
    );
    // The refresh fails, and changes nothing.
    node.refresh();
    let stats = node.stats();
    assert_eq!(stats.refresh_errors, 1);
    assert_eq!(node.latest_version(5), Some(2));
    // A version never read fails within the deadlines, as "not found".
    assert_eq!(node.with_key(5, 1, <[u8]>::to_vec), None);
    // So does a key id never seen, and it stays unknown for a while without asking again.
    assert_eq!(node.latest_version(77), None);
    let after = node.client().health().snapshot().requests;
    assert_eq!(node.latest_version(77), None);
    assert_eq!(node.client().health().snapshot().requests, after);

    // Another server rotates key 5; once the KMIP server answers again, the refresh finds it.
    admin.rotate(Some(5)).unwrap();
    proxy.set_hang(false);
    // The client holds back new connections for up to 2 s after a failed round.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while node.latest_version(5) != Some(3) && std::time::Instant::now() < deadline {
        node.refresh();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(node.latest_version(5), Some(3));
    assert_eq!(node.with_key(5, 1, |k| k.len()), Some(32));
    assert_ne!(node.with_key(5, 3, <[u8]>::to_vec), Some(key5));
}

#[test]
fn versions_only_grow_and_missing_keys_are_refused() {
    let namespace = unique("mdb-store2");
    let a = store(&lab().conf_dir, &namespace);
    let b = store(&lab().conf_dir, &namespace);
    assert!(matches!(a.require(1), Err(KeyStoreError::Missing { .. })));
    assert!(matches!(
        a.rotate(Some(1)),
        Err(KeyStoreError::Missing { key_id: 1, .. })
    ));
    assert_eq!(a.create_first(1).unwrap(), (1, 1));
    assert!(matches!(
        b.create_first(1),
        Err(KeyStoreError::Exists {
            key_id: 1,
            version: 1
        })
    ));
    // b builds on what a made, and a learns of b's version by looking again.
    assert_eq!(b.rotate(Some(1)).unwrap(), vec![(1, 2)]);
    assert_eq!(a.rotate(None).unwrap(), vec![(1, 3)]);
    assert_eq!(b.load(1).unwrap(), Some(3));
    // Every version stays readable, and they differ.
    let keys: Vec<Vec<u8>> = (1..=3)
        .map(|v| b.with_key(1, v, <[u8]>::to_vec).expect("version readable"))
        .collect();
    assert!(keys.iter().all(|k| k.len() == 32));
    assert!(keys[0] != keys[1] && keys[1] != keys[2]);
    assert_eq!(a.stats().rotations, 2);
    assert_eq!(b.stats().rotations, 1);
}

#[test]
fn expired_versions_follow_use_cache_on_error_and_the_latest_never_expires() {
    let namespace = unique("mdb-store3");
    let admin = store(&lab().conf_dir, &namespace);
    admin.create_first(1).unwrap();
    admin.rotate(Some(1)).unwrap();

    let proxy = TcpProxy::start(([127, 0, 0, 1], lab().port).into());
    let staging = tempfile::tempdir().unwrap();
    let conf = staging.path().join("conf");
    conf_via(&proxy, &conf);
    let node = store(&conf, &namespace);
    assert_eq!(node.require(1).unwrap(), 2);
    let old = node.with_key(1, 1, <[u8]>::to_vec).expect("version 1");
    let latest = node.with_key(1, 2, <[u8]>::to_vec).expect("version 2");

    // Every cached copy is now expired; the KMIP server does not answer.
    node.set_cache_timeout(Duration::from_millis(1));
    // Let the 1 ms lifetime pass (a clock condition, not a wait for another thread).
    std::thread::sleep(Duration::from_millis(5));
    proxy.set_hang(true);
    // use_cache_on_error (the default): the expired copy is served.
    assert_eq!(node.with_key(1, 1, <[u8]>::to_vec), Some(old));
    // The latest version never expires: page writes never wait on the network.
    let requests = node.client().health().snapshot().requests;
    assert_eq!(node.with_key(1, 2, <[u8]>::to_vec), Some(latest.clone()));
    assert_eq!(node.client().health().snapshot().requests, requests);
    // Without use_cache_on_error, an expired version that cannot be read again is "not found".
    node.set_use_cache_on_error(false);
    assert_eq!(node.with_key(1, 1, <[u8]>::to_vec), None);
    assert_eq!(node.with_key(1, 2, <[u8]>::to_vec), Some(latest));
    assert_eq!(node.latest_version(1), Some(2));
}

/// Rotating every key id (`kmip_key_management_rotate_key = -1`) rotates them several at a time:
/// each id gets exactly one new version, readable by another server, and the list names each.
#[test]
fn rotating_every_key_makes_one_version_of_each() {
    let namespace = unique("mdb-rotate-all");
    let a = store(&lab().conf_dir, &namespace);
    let ids: Vec<u32> = (1..=10).collect();
    for &id in &ids {
        assert_eq!(a.create_first(id).unwrap(), (id, 1));
    }
    let mut made = a.rotate(None).unwrap();
    made.sort_unstable();
    assert_eq!(made, ids.iter().map(|&id| (id, 2)).collect::<Vec<_>>());
    let b = store(&lab().conf_dir, &namespace);
    for &id in &ids {
        assert_eq!(b.load(id).unwrap(), Some(2), "key {id}");
        assert_ne!(
            b.with_key(id, 2, <[u8]>::to_vec),
            b.with_key(id, 1, <[u8]>::to_vec)
        );
    }
}
