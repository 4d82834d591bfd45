//! MariaDB's key store against the in-process KMIP server (no PyKMIP), counting the messages it
//! answers: the search for the latest version of a key id costs O(log versions) requests for a
//! key never seen and one for a refresh that finds nothing new, and gives the answer of a
//! one-by-one walk when the top version is being made, was destroyed, or the names have a
//! hole; use_cache_on_error serves an expired version unless the server definitely says it is
//! gone, and only such an answer forgets a version (in memory and in the sealed key cache).

#[path = "../common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::fault_server::{FaultServer, serve_refusing};
use common::fixtures::{Layout, make_conf_dir, pki};
use common::kmip_quirks::{Object, Quirks, QuirkyKmip, serve_own_pki};
use okv_core::config::{Host, ServerAddr, load_conf_dir};
use okv_core::connector::KmipClient;
use okv_core::kmip::tags::{operation, result_reason, state};
use okv_core::products::mariadb::{KeyStore, Settings};
use okv_core::sealed::{self, Answer, SealedCache};

fn store(server: &FaultServer) -> KeyStore {
    store_with(server, Settings::default())
}

fn store_with(server: &FaultServer, settings: Settings) -> KeyStore {
    let conf_dir = make_conf_dir(&Layout {
        ora: Some(format!("SERVER=127.0.0.1:{}\n", server.port())),
        ..pki().layout()
    });
    let conf = load_conf_dir(&conf_dir.dir).expect("conf dir");
    let addr = ServerAddr {
        host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        port: server.port(),
    };
    let client = KmipClient::new(vec![addr], conf.tls, conf.options.clone()).expect("client");
    KeyStore::new(client, settings).expect("store")
}

fn version(kmip: &QuirkyKmip, key_id: u32, version: u32, state: u32) {
    let mut object = Object::aes(
        &kmip.fresh_uid(),
        &format!("mariadb/{key_id}/{version}"),
        vec![u8::try_from(version % 251).unwrap(); 32],
        1_700_000_000,
    );
    object.state = state;
    kmip.plant(object);
}

fn versions(kmip: &QuirkyKmip, key_id: u32, count: u32) {
    for v in 1..=count {
        version(kmip, key_id, v, state::ACTIVE);
    }
}

/// The answer of `call` and the messages the server answered meanwhile.
fn counted<T>(kmip: &QuirkyKmip, call: impl FnOnce() -> T) -> (T, usize) {
    let before = kmip.messages.load(Ordering::SeqCst);
    let out = call();
    (out, kmip.messages.load(Ordering::SeqCst) - before)
}

fn log2_ceil(n: u32) -> usize {
    (u32::BITS - (n - 1).leading_zeros()) as usize
}

#[test]
fn the_latest_of_200_versions_costs_a_few_requests_per_doubling() {
    let (kmip, server) = serve_own_pki("u", Quirks::default());
    versions(&kmip, 1, 200);
    let store = store(&server);

    let (latest, requests) = counted(&kmip, || store.latest_version(1));
    assert_eq!(latest, Some(200));
    // Two Locates per doubling, then the version's objects and its Get.
    let bound = 2 * log2_ceil(200) + 4;
    eprintln!("latest of 200 versions: {requests} requests (bound {bound})");
    assert!(requests <= bound, "{requests} requests > {bound}");
    assert_eq!(store.with_key(1, 200, <[u8]>::to_vec), Some(vec![200; 32]));

    // Nothing new: one Locate.
    let (found, requests) = counted(&kmip, || store.load(1));
    assert_eq!(found.unwrap(), Some(200));
    assert_eq!(requests, 1, "a refresh that finds nothing new");

    // A new version made elsewhere: found, read, published.
    version(&kmip, 1, 201, state::ACTIVE);
    let (found, requests) = counted(&kmip, || store.load(1));
    assert_eq!(found.unwrap(), Some(201));
    // The Locates of 201 and 202 in one message, then 201's states and its Get in one.
    assert_eq!(requests, 2, "one new version");

    // A key id with no version at all: one Locate.
    let (latest, requests) = counted(&kmip, || store.latest_version(9));
    assert_eq!(latest, None);
    assert_eq!(requests, 1);

    // A key with one version, the usual case: two round trips.
    versions(&kmip, 2, 1);
    let (latest, requests) = counted(&kmip, || store.latest_version(2));
    assert_eq!(latest, Some(1));
    assert_eq!(
        requests, 2,
        "the Locates of 2/1 and 2/2 in one message, the states of 2/1 and its Get in one"
    );
}

#[test]
fn a_version_being_made_or_destroyed_is_not_the_latest() {
    let (kmip, server) = serve_own_pki("u", Quirks::default());
    // Another client is making version 51 right now: still Pre-Active.
    versions(&kmip, 1, 50);
    version(&kmip, 1, 51, state::PRE_ACTIVE);
    // Version 31 of key 2 was destroyed; the server keeps the object.
    versions(&kmip, 2, 30);
    version(&kmip, 2, 31, state::DESTROYED);
    // Key 3's only version is being made.
    version(&kmip, 3, 1, state::PRE_ACTIVE);
    let store = store(&server);

    let (latest, requests) = counted(&kmip, || store.latest_version(1));
    assert_eq!(latest, Some(50));
    assert!(requests <= 2 * log2_ceil(51) + 6, "{requests}");
    assert_eq!(store.latest_version(2), Some(30));
    assert_eq!(store.latest_version(3), None);
}

#[test]
fn a_hole_below_the_top_falls_back_to_the_walk() {
    let (kmip, server) = serve_own_pki("u", Quirks::default());
    // Versions 1..=8 usable, 9 and 10 left Pre-Active by failed creations: the walk stops at
    // the first version without an Active object.
    versions(&kmip, 1, 8);
    version(&kmip, 1, 9, state::PRE_ACTIVE);
    version(&kmip, 1, 10, state::PRE_ACTIVE);
    let store = store(&server);
    assert_eq!(store.latest_version(1), Some(8));
    assert_eq!(store.with_key(1, 8, <[u8]>::to_vec), Some(vec![8; 32]));
}

#[test]
fn two_active_objects_under_the_latest_name_are_an_error() {
    let (kmip, server) = serve_own_pki("u", Quirks::default());
    versions(&kmip, 1, 6);
    version(&kmip, 1, 6, state::ACTIVE);
    let err = store(&server).load(1).unwrap_err().to_string();
    assert!(
        err.contains("2 Active KMIP objects carry the name mariadb/1/6"),
        "{err}"
    );
}

/// Waits until a version read now has expired from memory (the cache timeout is 1 ms).
fn expire() {
    let now = Instant::now();
    while now.elapsed() < Duration::from_millis(2) {
        std::thread::yield_now();
    }
}

#[test]
fn use_cache_on_error_never_serves_a_version_destroyed_on_purpose() {
    let (kmip, server) = serve_own_pki("u", Quirks::default());
    versions(&kmip, 1, 4);
    let store = store_with(
        &server,
        Settings {
            cache_timeout: Duration::from_millis(1),
            use_cache_on_error: true,
            ..Settings::default()
        },
    );
    assert_eq!(store.latest_version(1), Some(4));
    for v in 1..=3 {
        assert_eq!(
            store.with_key(1, v, <[u8]>::to_vec),
            Some(vec![v as u8; 32])
        );
    }
    let uid = |v: u32| kmip.named(&format!("mariadb/1/{v}"))[0].uid.clone();

    // The server cannot be reached: the expired copies stand in.
    expire();
    kmip.set(Quirks {
        down: true,
        ..Quirks::default()
    });
    assert_eq!(store.with_key(1, 1, <[u8]>::to_vec), Some(vec![1; 32]));
    kmip.set(Quirks::default());

    // Version 1 destroyed and forgotten, version 2 destroyed and kept, version 3 revoked:
    // the server's answer evicts each, and nothing brings it back while the server is down.
    let (v1, v2, v3) = (uid(1), uid(2), uid(3));
    kmip.remove(&v1);
    kmip.edit(&v2, |o| {
        o.state = state::DESTROYED;
        o.material.clear();
    });
    kmip.edit(&v3, |o| o.state = state::DEACTIVATED);
    expire();
    for v in 1..=3 {
        assert_eq!(store.with_key(1, v, <[u8]>::to_vec), None, "version {v}");
    }
    kmip.set(Quirks {
        down: true,
        ..Quirks::default()
    });
    for v in 1..=3 {
        assert_eq!(store.with_key(1, v, <[u8]>::to_vec), None, "version {v}");
    }
    // The latest version never expires.
    assert_eq!(store.with_key(1, 4, <[u8]>::to_vec), Some(vec![4; 32]));
}

/// A store of the refusing server with the sealed key cache on, its configuration directory
/// (which holds the cache's file) kept for as long as the store.
fn sealed_store(
    server: &FaultServer,
    settings: Settings,
) -> (KeyStore, Arc<SealedCache>, common::fixtures::TestConfDir) {
    let conf_dir = make_conf_dir(&Layout {
        ora: Some(format!("SERVER=127.0.0.1:{}\n", server.port())),
        ..pki().layout()
    });
    let (store, sealed) = sealed_store_in(&conf_dir, settings);
    (store, sealed, conf_dir)
}

/// As `sealed_store`, in a configuration directory made before (its sealed file as left).
fn sealed_store_in(
    conf_dir: &common::fixtures::TestConfDir,
    settings: Settings,
) -> (KeyStore, Arc<SealedCache>) {
    let conf = load_conf_dir(&conf_dir.dir).expect("conf dir");
    let client = KmipClient::from_conf_dir(&conf).expect("client");
    let store = KeyStore::new(client, settings).expect("store");
    let sealed = Arc::new(SealedCache::open(
        &conf,
        sealed::MARIADB,
        24,
        &conf_dir.dir,
        sealed::Access::Writer,
    ));
    store.set_sealed(sealed.clone());
    (store, sealed)
}

fn sealed_holds(sealed: &SealedCache, name: &str) -> bool {
    sealed
        .names()
        .iter()
        .any(|(n, owner)| n == name && owner.is_empty())
}

#[test]
fn only_a_definite_answer_that_a_version_is_gone_forgets_it() {
    let (kmip, server, refuse) = serve_refusing("u");
    versions(&kmip, 1, 4);
    let (store, sealed, _conf) = sealed_store(
        &server,
        Settings {
            cache_timeout: Duration::from_millis(1),
            use_cache_on_error: true,
            ..Settings::default()
        },
    );
    assert_eq!(store.latest_version(1), Some(4));
    for v in 1..=3 {
        assert_eq!(
            store.with_key(1, v, <[u8]>::to_vec),
            Some(vec![v as u8; 32])
        );
        assert!(sealed_holds(&sealed, &format!("mariadb/1/{v}")), "{v}");
    }

    // A General Failure of the Get (a KMS fail-over) and Permission Denied of the Locate (a
    // policy change) say nothing about the versions: the copies in memory are served, and
    // nothing is forgotten, in memory or in the sealed key cache.
    for (operation, reason) in [
        (operation::GET, result_reason::GENERAL_FAILURE),
        (operation::LOCATE, result_reason::PERMISSION_DENIED),
    ] {
        *refuse.lock().unwrap() = Some((operation, reason));
        for v in 1..=3 {
            expire();
            assert_eq!(
                store.with_key(1, v, <[u8]>::to_vec),
                Some(vec![v as u8; 32]),
                "version {v}, reason {reason:#x}"
            );
            assert!(sealed_holds(&sealed, &format!("mariadb/1/{v}")));
            assert!(matches!(
                store.confirm_sealed(&format!("mariadb/1/{v}")),
                Answer::Failed(_)
            ));
        }
    }
    // With use_cache_on_error off, the expired copy in memory does not stand in, but the
    // sealed one does, as when no server answers.
    store.set_use_cache_on_error(false);
    expire();
    assert_eq!(store.with_key(1, 2, <[u8]>::to_vec), Some(vec![2; 32]));
    // But not when the server refuses this client (it closes every new connection right after
    // the TLS handshake, as a proxy does with a revoked certificate): the sealed cache obeys
    // a revocation. Nothing is forgotten either.
    *refuse.lock().unwrap() = None;
    kmip.set(Quirks {
        down: true,
        ..Quirks::default()
    });
    expire();
    assert_eq!(store.with_key(1, 2, <[u8]>::to_vec), None);
    assert!(sealed_holds(&sealed, "mariadb/1/2"));
    kmip.set(Quirks::default());
    store.set_use_cache_on_error(true);

    // Item Not Found from the Get (destroyed between the Locate and the Get) and a version
    // that is no longer Active are definite: each is forgotten everywhere.
    *refuse.lock().unwrap() = Some((operation::GET, result_reason::ITEM_NOT_FOUND));
    assert!(matches!(store.confirm_sealed("mariadb/1/1"), Answer::Gone));
    expire();
    assert_eq!(store.with_key(1, 1, <[u8]>::to_vec), None);
    assert!(!sealed_holds(&sealed, "mariadb/1/1"));
    *refuse.lock().unwrap() = None;
    let v2 = kmip.named("mariadb/1/2")[0].uid.clone();
    kmip.edit(&v2, |o| o.state = state::DEACTIVATED);
    assert!(matches!(store.confirm_sealed("mariadb/1/2"), Answer::Gone));
    expire();
    assert_eq!(store.with_key(1, 2, <[u8]>::to_vec), None);
    assert!(!sealed_holds(&sealed, "mariadb/1/2"));
    // Nothing brings them back while the server fails.
    *refuse.lock().unwrap() = Some((operation::GET, result_reason::GENERAL_FAILURE));
    for v in 1..=2 {
        assert_eq!(store.with_key(1, v, <[u8]>::to_vec), None, "version {v}");
    }
    assert_eq!(store.with_key(1, 3, <[u8]>::to_vec), Some(vec![3; 32]));
}

/// The DBA changes kmip_key_management_key_namespace: the versions the sealed key cache holds
/// for the old namespace are neither confirmed, nor dropped as if revoked, nor served for the
/// new one, and the reason given names both namespaces.
#[test]
fn a_namespace_change_leaves_the_other_namespace_in_the_sealed_cache_and_says_so() {
    let (kmip, server, _refuse) = serve_refusing("u");
    versions(&kmip, 1, 2);
    let conf_dir = make_conf_dir(&Layout {
        ora: Some(format!("SERVER=127.0.0.1:{}\n", server.port())),
        ..pki().layout()
    });
    {
        let (store, sealed) = sealed_store_in(&conf_dir, Settings::default());
        assert_eq!(store.latest_version(1), Some(2));
        assert_eq!(store.with_key(1, 1, <[u8]>::to_vec), Some(vec![1; 32]));
        sealed.close();
    }
    // The same key ids exist under the new namespace too: only the names differ.
    for v in 1..=2 {
        let mut object = Object::aes(
            &kmip.fresh_uid(),
            &format!("renamed/1/{v}"),
            vec![0x40 + v as u8; 32],
            1_700_000_000,
        );
        object.state = state::ACTIVE;
        kmip.plant(object);
    }
    let (store, sealed) = sealed_store_in(
        &conf_dir,
        Settings {
            namespace: "renamed".to_string(),
            ..Settings::default()
        },
    );
    match store.confirm_sealed("mariadb/1/1") {
        Answer::NotMine(why) => assert!(
            why.contains("namespace 'mariadb'") && why.contains("namespace 'renamed'"),
            "{why}"
        ),
        _ => panic!("a version of another namespace is left as it is"),
    }
    sealed
        .confirm_now_for_tests(|name, _| store.confirm_sealed(name))
        .expect("a server answers");
    assert_eq!(sealed.status().dropped, 0, "nothing reported revoked");
    assert!(sealed_holds(&sealed, "mariadb/1/1") && sealed_holds(&sealed, "mariadb/1/2"));
    // Not served for the new namespace: its own versions come from the server, and a start
    // from the cache loads none of the old namespace's.
    assert_eq!(store.with_key(1, 1, <[u8]>::to_vec), Some(vec![0x41; 32]));
    assert_eq!(
        store.load_sealed(&"a test"),
        1,
        "only renamed/1/1, kept just now"
    );
}

/// A confirmation of the sealed key cache as the plugin's thread makes it: the versions read
/// together first, then each left out on its own.
fn confirm_batched(store: &KeyStore, sealed: &SealedCache) -> Result<(), String> {
    sealed.confirm_batched_now_for_tests(
        |known| store.confirm_sealed_many(known),
        |name, _| store.confirm_sealed(name),
    )
}

/// The sealed key cache's confirmation of 150 versions reads them in two messages (Get
/// Attributes Name+State and Get of a hundred versions each) instead of a look-up and a read
/// per version; a version revoked, destroyed or renamed on the server since is left out of the
/// batch and found gone by its own look-up, as before, and a version of another namespace is
/// still neither asked about nor dropped.
#[test]
fn the_sealed_confirmation_of_150_versions_costs_two_messages() {
    const VERSIONS: u32 = 150;
    let (kmip, server, _refuse) = serve_refusing("u");
    versions(&kmip, 1, VERSIONS);
    let (store, sealed, _conf) = sealed_store(&server, Settings::default());
    assert_eq!(store.latest_version(1), Some(VERSIONS));
    for v in 1..=VERSIONS {
        assert_eq!(store.with_key(1, v, |k| k[0]), Some(v as u8), "version {v}");
    }
    assert_eq!(sealed.names().len(), VERSIONS as usize);
    // A version kept under the namespace in force before.
    let other = kmip.named("mariadb/1/1")[0].uid.clone();
    let key = okv_core::keyring::FetchedKey {
        key_type: okv_core::keyring::KeyType::Aes,
        material: zeroize::Zeroizing::new(vec![7; 32]),
    };
    let at = store
        .client()
        .in_use()
        .expect("connected")
        .server
        .to_string();
    sealed.keep("older/1/1", "", &key, &other, &at);

    let (alone, one_by_one) = counted(&kmip, || {
        sealed.confirm_now_for_tests(|name, _| store.confirm_sealed(name))
    });
    alone.expect("a server answers");
    let (batched, together) = counted(&kmip, || confirm_batched(&store, &sealed));
    batched.expect("a server answers");
    eprintln!(
        "confirming {VERSIONS} versions: {one_by_one} messages one by one, {together} read together"
    );
    assert_eq!(together, VERSIONS.div_ceil(100) as usize);
    assert!(one_by_one >= 2 * VERSIONS as usize, "{one_by_one}");
    assert_eq!(sealed.status().dropped, 0);
    assert!(sealed_holds(&sealed, "older/1/1"), "another namespace's");

    // Revoked, destroyed and forgotten, destroyed and kept, renamed: each looked up on its own
    // and dropped; the others confirmed by the batch alone.
    let uid = |v: u32| kmip.named(&format!("mariadb/1/{v}"))[0].uid.clone();
    let (revoked, removed, destroyed, renamed) = (uid(3), uid(50), uid(120), uid(149));
    kmip.edit(&revoked, |o| o.state = state::DEACTIVATED);
    kmip.remove(&removed);
    kmip.edit(&destroyed, |o| {
        o.state = state::DESTROYED;
        o.material.clear();
    });
    kmip.edit(&renamed, |o| o.names = vec!["elsewhere/1/149".to_string()]);
    let (batched, messages) = counted(&kmip, || confirm_batched(&store, &sealed));
    batched.expect("a server answers");
    eprintln!("confirming {VERSIONS} versions, 4 of them gone: {messages} messages");
    assert!(
        messages > together && messages <= together + 4 * 3,
        "{messages}: the batches, then a look-up of each version left out"
    );
    assert_eq!(sealed.status().dropped, 4);
    for v in [3, 50, 120, 149] {
        assert!(!sealed_holds(&sealed, &format!("mariadb/1/{v}")), "{v}");
    }
    assert_eq!(sealed.names().len(), VERSIONS as usize - 4 + 1);
    assert!(sealed_holds(&sealed, "older/1/1"));
    assert_eq!(store.load_sealed(&"a test"), VERSIONS as usize - 4);
}

/// A batch the server fails (General Failure of every item) answers nothing: each version is
/// asked on its own, as before the batch, and a failure drops nothing; once the server answers
/// again, a version revoked meanwhile is left out of the batch and dropped by its own look-up.
#[test]
fn a_failed_batch_of_versions_falls_back_to_each_version_alone() {
    let (kmip, server, refuse) = serve_refusing("u");
    versions(&kmip, 1, 5);
    let (store, sealed, _conf) = sealed_store(&server, Settings::default());
    assert_eq!(store.latest_version(1), Some(5));
    for v in 1..=5 {
        assert_eq!(store.with_key(1, v, |k| k[0]), Some(v as u8), "version {v}");
    }
    let revoked = kmip.named("mariadb/1/2")[0].uid.clone();
    kmip.edit(&revoked, |o| o.state = state::DEACTIVATED);

    // Messages that start with a Get Attributes fail: the batch, and each version's
    // description of what its Locate found.
    *refuse.lock().unwrap() = Some((operation::GET_ATTRIBUTES, result_reason::GENERAL_FAILURE));
    let known = sealed.known_objects();
    // (The refused messages are answered in front of the counting server.)
    assert!(
        store.confirm_sealed_many(&known).is_empty(),
        "nothing answered by a failed batch"
    );
    let (batched, messages) = counted(&kmip, || confirm_batched(&store, &sealed));
    batched.expect("a server answers");
    assert_eq!(messages, 5, "each version's Locate, after the batch");
    assert_eq!(sealed.status().dropped, 0, "a General Failure says nothing");
    assert_eq!(sealed.names().len(), 5);

    *refuse.lock().unwrap() = None;
    let (batched, messages) = counted(&kmip, || confirm_batched(&store, &sealed));
    batched.expect("a server answers");
    assert!(
        messages > 1,
        "{messages}: the batch, then the revoked version alone"
    );
    assert_eq!(sealed.status().dropped, 1);
    assert!(!sealed_holds(&sealed, "mariadb/1/2"));
    assert_eq!(sealed.names().len(), 4);
}
