//! One deadline per call, in every product: a call of the MySQL plugin, of the keyring
//! component, and a key request of the MariaDB plugin ends within the connect timeout + the
//! request timeout, however many KMIP requests it makes, against a server that answers each
//! request slowly (just within the request timeout) or not at all. In-process servers on
//! 127.0.0.1 with a PKI of the test's own (no PyKMIP). Nothing here shuts the products down:
//! that stops the I/O runtime all the tests of this binary share.

#[path = "../common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::fault_server::{Fault, FaultServer, Reply};
use common::fixtures::{Layout, TestConfDir, make_conf_dir, pki, rustls_server_config};
use common::kmip_quirks::{Object, Placeholder, Quirks, QuirkyKmip};
use okv_core::config::{Host, Options, ServerAddr, load_conf_dir};
use okv_core::connector::KmipClient;
use okv_core::keyring::object_name;
use okv_core::products::mariadb::{KeyStore, Settings};

const CONNECT: Duration = Duration::from_secs(1);
const REQUEST: Duration = Duration::from_secs(4);
/// Each answer of the slow server comes this long after its request: within the request
/// timeout, so every single request succeeds; two of them do not fit in one call's budget.
const SLOW: Duration = Duration::from_millis(3500);

fn budget() -> Duration {
    CONNECT + REQUEST
}

fn tls() -> Arc<rustls::ServerConfig> {
    let pki = pki();
    rustls_server_config(&pki.server_cert, &pki.server_key, &pki.ca_cert)
}

/// The server of these tests takes no ID Placeholder after a Locate (as PyKMIP), so a cold
/// fetch is two requests: one slow answer alone would fit in the budget.
fn quirks() -> Quirks {
    Quirks {
        placeholder: Placeholder::NotByLocate,
        ..Quirks::default()
    }
}

fn quirky() -> (Arc<QuirkyKmip>, FaultServer) {
    common::kmip_quirks::serve_own_pki("u", quirks())
}

fn hung() -> FaultServer {
    FaultServer::start(Fault::AfterHandshake {
        tls: tls(),
        reply: Reply::Never,
    })
}

fn slow(kmip: &QuirkyKmip) {
    kmip.set(Quirks {
        slow: Some(SLOW),
        ..quirks()
    });
}

fn conf_dir(port: u16) -> TestConfDir {
    make_conf_dir(&Layout {
        ora: Some(format!(
            "SERVER=127.0.0.1:{port}\nKEYRING_OKV_CONNECT_TIMEOUT={}\nKEYRING_OKV_REQUEST_TIMEOUT={}\n",
            CONNECT.as_secs(),
            REQUEST.as_secs()
        )),
        ..pki().layout()
    })
}

fn client(port: u16) -> KmipClient {
    let conf = load_conf_dir(&conf_dir(port).dir).expect("conf dir");
    let options = Options {
        connect_timeout: CONNECT,
        request_timeout: REQUEST,
        ..conf.options.clone()
    };
    let server = ServerAddr {
        host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        port,
    };
    KmipClient::new(vec![server], conf.tls, options).expect("client")
}

fn aes(kmip: &QuirkyKmip, name: &str, byte: u8) {
    kmip.plant(Object::aes(
        &kmip.fresh_uid(),
        name,
        vec![byte; 32],
        1_700_000_000,
    ));
}

/// How many messages `call` sends to a server that answers at once.
fn messages(kmip: &QuirkyKmip, call: impl FnOnce()) -> usize {
    let before = kmip.messages.load(Ordering::SeqCst);
    call();
    kmip.messages.load(Ordering::SeqCst) - before
}

/// Runs `call`, which must fail, and returns how long it took.
fn failing<T, E: std::fmt::Display>(what: &str, call: impl FnOnce() -> Result<T, E>) -> Duration {
    let started = Instant::now();
    let outcome = call();
    let took = started.elapsed();
    match outcome {
        Ok(_) => panic!("{what}: succeeded after {took:?}; it should have run out of time"),
        Err(e) => eprintln!("{what}: failed after {took:?}: {e}"),
    }
    took
}

/// The bound a call must keep: its one budget, plus slack for a loaded machine that is still
/// well short of two slow answers (which the call would need to succeed).
fn assert_within_budget(what: &str, took: Duration, requests: usize) {
    assert!(
        requests >= 2,
        "{what}: the call makes only {requests} request(s); the test needs several"
    );
    let without_deadline = SLOW * u32::try_from(requests).unwrap();
    let bound = budget() + Duration::from_millis(1500);
    assert!(bound < without_deadline);
    assert!(
        took < bound,
        "{what}: took {took:?}; one deadline is {:?}, and {requests} answers {SLOW:?} apart would take {without_deadline:?}",
        budget()
    );
}

#[test]
fn mariadb_key_requests_end_within_one_deadline() {
    let (kmip, server) = quirky();
    for key_id in [3, 4, 5] {
        for version in 1..=3 {
            aes(&kmip, &format!("mariadb/{key_id}/{version}"), version as u8);
        }
    }
    let store = KeyStore::new(client(server.port()), Settings::default()).expect("store");

    // What each call costs when the server answers at once.
    let latest = messages(&kmip, || assert_eq!(store.latest_version(3), Some(3)));
    let get_key = messages(&kmip, || {
        assert_eq!(store.with_key(3, 1, |k| k.to_vec()), Some(vec![1; 32]));
    });

    slow(&kmip);
    let started = Instant::now();
    assert_eq!(
        store.latest_version(4),
        None,
        "the look-up should run out of time"
    );
    assert_within_budget(
        "get_latest_key_version of a new key id",
        started.elapsed(),
        latest,
    );
    let started = Instant::now();
    assert_eq!(store.with_key(5, 1, |k| k.to_vec()), None);
    assert_within_budget(
        "get_key of a version not in memory",
        started.elapsed(),
        get_key,
    );
}

#[test]
fn mariadb_key_requests_to_a_hung_server_end_within_one_deadline() {
    // Two attempts of a request (the first and its repeat on a new connection) would take
    // twice the request timeout.
    let bound = budget() + Duration::from_millis(1500);
    assert!(bound < REQUEST * 2);
    // A client each: after a request hangs, the same client fails fast for a moment.
    let server = hung();
    let store = KeyStore::new(client(server.port()), Settings::default()).expect("store");
    let started = Instant::now();
    assert_eq!(store.latest_version(7), None);
    let took = started.elapsed();
    assert!(took < bound, "get_latest_key_version took {took:?}");
    let store = KeyStore::new(client(server.port()), Settings::default()).expect("store");
    let took = failing("rotation on a hung server", || store.rotate(Some(7)));
    assert!(took < bound, "rotation took {took:?}");
}

#[test]
fn component_calls_end_within_one_deadline() {
    use okv_core::products::mysql_component as component;
    let (kmip, server) = quirky();
    let owner = "app@localhost";
    for (key, byte) in [("measured", 1), ("timed", 2), ("timed_cached", 3)] {
        aes(&kmip, &object_name(key, owner), byte);
    }
    let conf = conf_dir(server.port());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("component_keyring_okv.cnf"),
        format!(
            "{{\"kmip_configuration_directory\": \"{}\", \"connect_timeout\": {}, \"request_timeout\": {}}}",
            conf.dir.display(),
            CONNECT.as_secs(),
            REQUEST.as_secs()
        ),
    )
    .unwrap();
    component::load(dir.path().to_str().unwrap(), None).expect("load");

    let fetch = messages(&kmip, || {
        let key = component::fetch("measured", owner)
            .unwrap()
            .expect("present");
        assert_eq!(*key.material, vec![1; 32]);
    });
    slow(&kmip);
    let took = failing("component fetch", || component::fetch("timed", owner));
    assert_within_budget("component fetch", took, fetch);

    // With the cache on, a read goes through the cache's loading step first.
    std::fs::write(
        dir.path().join("component_keyring_okv.cnf"),
        format!(
            "{{\"kmip_configuration_directory\": \"{}\", \"connect_timeout\": {}, \"request_timeout\": {}, \"cache_keys\": true}}",
            conf.dir.display(),
            CONNECT.as_secs(),
            REQUEST.as_secs()
        ),
    )
    .unwrap();
    kmip.set(quirks());
    component::load(dir.path().to_str().unwrap(), None).expect("load with the cache");
    slow(&kmip);
    let took = failing("component fetch with the cache", || {
        component::fetch("timed_cached", owner)
    });
    assert_within_budget("component fetch with the cache", took, fetch);
}

#[test]
fn plugin_calls_end_within_one_deadline() {
    use okv_core::products::mysql_plugin as plugin;
    let (kmip, server) = quirky();
    let owner = "app@localhost";
    for (key, byte) in [("measured", 1), ("timed", 2)] {
        aes(&kmip, &object_name(key, owner), byte);
    }
    let conf = conf_dir(server.port());
    plugin::start();
    plugin::install(plugin::prepare(conf.dir.to_str().unwrap(), true).expect("prepare"));
    let fetch = messages(&kmip, || {
        let key = plugin::fetch("measured", owner).unwrap().expect("present");
        assert_eq!(*key.material, vec![1; 32]);
    });
    slow(&kmip);
    let took = failing("plugin fetch", || plugin::fetch("timed", owner));
    assert_within_budget("plugin fetch", took, fetch);
}
