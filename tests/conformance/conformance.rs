//! Issue 16's conformance suite: the same scenarios against every product's key path (the MySQL
//! plugin, the MySQL component, MariaDB's kmip_key_management, each loaded by its C host as its
//! server loads it, and the admin tool `keyring-okv`; see tests/common/products.rs). One test
//! per scenario and product, so that a failure names both.
//!
//! The KMIP servers are in-process quirky servers (tests/common/kmip_quirks.rs) with the test
//! PKI, on 127.0.0.1 with ports chosen by the system: no PyKMIP is needed.

#[path = "../common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::fault_server::{Fault, FaultServer};
use common::fixtures::{Layout, TestConfDir, make_conf_dir, pki, rustls_server_config};
use common::kmip_quirks::{Object, Quirks, QuirkyKmip};
use common::products::{
    Finished, KEY_ID, MARIADB_INIT_KEY, NAMESPACE, Outcome, Product, Session, Step, hex,
};
use common::tcp_proxy::TcpProxy;
use okv_core::kmip::tags::state;

/// The scenario key's bytes, and another key's (which must never be served in its place).
const OURS: [u8; 32] = [0x11; 32];
const THEIRS: [u8; 32] = [0xdd; 32];
const INITIAL_DATE: i64 = 1_700_000_000;

struct Kmip {
    kmip: Arc<QuirkyKmip>,
    fault: FaultServer,
}

/// A server for `product`: for MariaDB with the key 1 its init requires.
fn kmip(product: Product, uid_prefix: &str, quirks: Quirks) -> Kmip {
    let pki = pki();
    let kmip = Arc::new(QuirkyKmip::new(uid_prefix));
    kmip.set(quirks);
    if product == Product::MariaDb {
        kmip.plant(aes("init", MARIADB_INIT_KEY, &[0x33; 32]));
    }
    let fault = FaultServer::start(Fault::Kmip {
        tls: rustls_server_config(&pki.server_cert, &pki.server_key, &pki.ca_cert),
        server: kmip.clone(),
    });
    Kmip { kmip, fault }
}

/// A configuration directory naming `servers` (the first as SERVER, the rest as standbys).
fn conf(servers: &[SocketAddr], timeout_secs: u64) -> TestConfDir {
    let mut ora = format!("SERVER={}\n", servers[0]);
    for standby in &servers[1..] {
        ora.push_str(&format!("STANDBY_SERVER={standby}\n"));
    }
    ora.push_str(&format!(
        "KEYRING_OKV_CONNECT_TIMEOUT={timeout_secs}\nKEYRING_OKV_REQUEST_TIMEOUT={timeout_secs}\n"
    ));
    make_conf_dir(&Layout {
        ora: Some(ora),
        ..pki().layout()
    })
}

fn aes(uid: &str, name: &str, bytes: &[u8]) -> Object {
    Object::aes(uid, name, bytes.to_vec(), INITIAL_DATE)
}

/// Runs `steps` with nothing to do at pauses.
fn run(product: Product, conf: &TestConfDir, component_extra: &str, steps: &[Step]) -> Finished {
    Session::start(product, &conf.dir, component_extra, steps).finish()
}

/// The component without its cache, so that every read goes to the KMIP server.
const NO_CACHE: &str = "\"cache_keys\": false";

/// A read after a failover gives the key or an error; never another key's bytes, never "no
/// such key" from a product that can say "error" (the key exists on both servers). MariaDB's
/// key calls cannot: any failure is "key not found" (docs/mariadb.md), retried after 5 s.
fn right_key_or_error(done: &Finished, step: usize, what: &str) {
    let product = done.product;
    match &done.outcomes[step] {
        Outcome::Key(bytes) => assert_eq!(
            bytes,
            &hex(&OURS),
            "{product:?} {what}: another key's bytes (the other key is {}):\n{}",
            hex(&THEIRS),
            done.log
        ),
        Outcome::Failed(_) => {}
        Outcome::Absent if product == Product::MariaDb => {}
        other => panic!("{product:?} {what}: {other:?}\n{}", done.log),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. The server that answered Locate dies before the Get.

/// The primary finds the key (uid "1") and dies with the Get unanswered. On the standby "1" is
/// another key and ours is "2": a Get of "1" sent there would be answered, with the wrong bytes.
/// The loss is armed once the product is loaded, so that it hits the key's read, not the load.
fn failover_between_locate_and_get(product: Product) {
    let primary = kmip(product, "p", Quirks::default());
    let standby = kmip(product, "s", Quirks::default());
    primary.kmip.plant(aes("1", &product.object_name(1), &OURS));
    standby.kmip.plant(aes("1", &product.other_name(), &THEIRS));
    standby.kmip.plant(aes("2", &product.object_name(1), &OURS));
    let conf = conf(&[primary.fault.addr, standby.fault.addr], 10);
    let mut session = Session::start(product, &conf.dir, NO_CACHE, &[Step::Pause, Step::Fetch]);
    session.paused();
    let gets_before = primary.kmip.gets.load(Ordering::SeqCst);
    primary.kmip.set(Quirks {
        swallow_get_once: true,
        down_after_swallow: true,
        ..Quirks::default()
    });
    session.resume();
    let done = session.finish();
    eprintln!("{product:?}: {:?}\n{}", done.outcomes, done.log);
    assert!(
        primary.kmip.gets.load(Ordering::SeqCst) > gets_before,
        "{product:?}: the primary never saw the Get it was to lose: {done:?}"
    );
    assert!(
        primary.kmip.quirks.lock().unwrap().down,
        "{product:?}: the primary answered the Get: {done:?}"
    );
    assert!(
        !standby.kmip.asked_about("1"),
        "{product:?}: the standby was asked about the primary's \"1\": {:?}",
        standby.kmip.requested.lock().unwrap()
    );
    right_key_or_error(&done, 0, "fetch");
}

#[test]
fn failover_between_locate_and_get_plugin() {
    failover_between_locate_and_get(Product::Plugin);
}

#[test]
fn failover_between_locate_and_get_component() {
    failover_between_locate_and_get(Product::Component);
}

#[test]
fn failover_between_locate_and_get_mariadb() {
    failover_between_locate_and_get(Product::MariaDb);
}

#[test]
fn failover_between_locate_and_get_cli() {
    failover_between_locate_and_get(Product::Cli);
}

/// The same loss while MariaDB's init reads key 1 (mariadbd's start): the start may fail
/// (with kmip_key_management=FORCE mariadbd then refuses to start), or key 1 is read from the
/// standby by name; never the standby's "1".
#[test]
fn failover_between_locate_and_get_mariadb_at_init() {
    let primary = kmip(Product::Cli, "p", Quirks::default());
    let standby = kmip(Product::Cli, "s", Quirks::default());
    primary.kmip.plant(aes("1", MARIADB_INIT_KEY, &OURS));
    standby
        .kmip
        .plant(aes("1", &Product::MariaDb.other_name(), &THEIRS));
    standby.kmip.plant(aes("2", MARIADB_INIT_KEY, &OURS));
    primary.kmip.set(Quirks {
        swallow_get_once: true,
        down_after_swallow: true,
        ..Quirks::default()
    });
    let conf = conf(&[primary.fault.addr, standby.fault.addr], 10);
    let out = std::process::Command::new(common::products::mariadb_host_program())
        .arg(common::mariadb::plugin_library())
        .arg("script")
        .arg(&conf.dir)
        .arg(NAMESPACE)
        .args(["fetch", "1"])
        .output()
        .expect("run mariadb_host");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{log}");
    assert!(out.status.success(), "{stdout}\n{log}");
    assert!(
        primary.kmip.quirks.lock().unwrap().down,
        "the primary answered the Get"
    );
    assert!(
        !standby.kmip.asked_about("1"),
        "the standby was asked about the primary's \"1\": {:?}",
        standby.kmip.requested.lock().unwrap()
    );
    let started = stdout.lines().any(|l| l == "RESULT init 0");
    if started {
        assert!(
            stdout
                .lines()
                .any(|l| l == format!("RESULT fetch 1 1 {}", hex(&OURS))),
            "key 1 after the failover:\n{stdout}"
        );
    } else {
        assert!(
            log.contains("[ERROR] kmip_key_management:"),
            "a failed start without an error line:\n{log}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. A standby whose identifiers name other keys.

/// The key is "1" on the primary and "2" on the standby, and each server has another key under
/// the other identifier. The key is read from the primary, the primary goes down, the key is
/// read (from the standby), then the standby goes down and the primary comes back, and the key
/// is read again: whatever identifier the product learnt on one server must not be used on
/// the other.
fn standby_with_overlapping_identifiers(product: Product) {
    let primary = kmip(product, "p", Quirks::default());
    let standby = kmip(product, "s", Quirks::default());
    primary.kmip.plant(aes("1", &product.object_name(1), &OURS));
    primary.kmip.plant(aes("2", &product.other_name(), &THEIRS));
    standby.kmip.plant(aes("1", &product.other_name(), &THEIRS));
    standby.kmip.plant(aes("2", &product.object_name(1), &OURS));
    let conf = conf(&[primary.fault.addr, standby.fault.addr], 10);
    let mut session = Session::start(
        product,
        &conf.dir,
        NO_CACHE,
        &[
            Step::Fetch,
            Step::Pause,
            Step::Fetch,
            Step::Pause,
            Step::Fetch,
        ],
    );
    let down = Quirks {
        down: true,
        ..Quirks::default()
    };
    session.paused();
    primary.kmip.set(down.clone());
    session.resume();
    session.paused();
    let from_standby = standby.kmip.gets.load(Ordering::SeqCst);
    standby.kmip.set(down);
    primary.kmip.set(Quirks::default());
    session.resume();
    let done = session.finish();
    eprintln!("{product:?}: {:?}", done.outcomes);
    // MariaDB serves the key it read from memory (docs/mariadb.md); the others read it again,
    // each time from the server that is up.
    if product != Product::MariaDb {
        assert!(from_standby >= 1, "{product:?} never read from the standby");
        assert!(
            primary.kmip.gets.load(Ordering::SeqCst) >= 2,
            "{product:?} never read from the primary again"
        );
    }
    assert_eq!(
        done.outcomes[0],
        Outcome::Key(hex(&OURS)),
        "{product:?}: the read from the primary: {done:?}"
    );
    right_key_or_error(&done, 1, "fetch after the failover");
    right_key_or_error(&done, 2, "fetch after the way back to the primary");
    for (server, theirs) in [(&standby, "1"), (&primary, "2")] {
        assert!(
            !server.kmip.asked_about(theirs),
            "{product:?}: a server was asked about {theirs:?}, the other's identifier of the key: {:?}",
            server.kmip.requested.lock().unwrap()
        );
    }
}

#[test]
fn standby_with_overlapping_identifiers_plugin() {
    standby_with_overlapping_identifiers(Product::Plugin);
}

#[test]
fn standby_with_overlapping_identifiers_component() {
    standby_with_overlapping_identifiers(Product::Component);
}

#[test]
fn standby_with_overlapping_identifiers_mariadb() {
    standby_with_overlapping_identifiers(Product::MariaDb);
}

#[test]
fn standby_with_overlapping_identifiers_cli() {
    standby_with_overlapping_identifiers(Product::Cli);
}

// ---------------------------------------------------------------------------------------------
// 3. Two usable objects under the key's name.

/// The documented rule (docs/keys.md, "Which object is the key"): two Active objects under one
/// name are an error naming both identifiers, in every product; never one of them. MariaDB's
/// key calls have no error but "no such key" (docs/mariadb.md: any failure is exactly "key not
/// found"), so there the fetch finds no key and the error log names both.
fn duplicate_names(product: Product) {
    let server = kmip(product, "u", Quirks::default());
    server.kmip.plant(aes("71", &product.object_name(1), &OURS));
    server
        .kmip
        .plant(aes("72", &product.object_name(1), &THEIRS));
    let conf = conf(&[server.fault.addr], 10);
    let done = run(product, &conf, NO_CACHE, &[Step::Fetch, Step::Generate]);
    eprintln!("{product:?}: {:?}\n{}", done.outcomes, done.log);
    let refused = matches!(
        (&done.outcomes[0], product),
        (Outcome::Failed(_), _) | (Outcome::Absent, Product::MariaDb)
    );
    assert!(
        refused,
        "{product:?} picked one of two Active objects: {done:?}"
    );
    assert!(
        done.log.contains("71") && done.log.contains("72"),
        "{product:?}: the error does not name both objects:\n{}",
        done.log
    );
    // A generate (MariaDB: a rotation) next to the two is refused as well, and makes nothing.
    assert!(
        matches!(done.outcomes[1], Outcome::Failed(_)),
        "{product:?}: generate next to two Active objects: {done:?}"
    );
    assert_eq!(
        server.kmip.objects().len(),
        2 + usize::from(product == Product::MariaDb),
        "{product:?}: {:?}",
        server.kmip.objects()
    );
}

#[test]
fn duplicate_names_plugin() {
    duplicate_names(Product::Plugin);
}

#[test]
fn duplicate_names_component() {
    duplicate_names(Product::Component);
}

#[test]
fn duplicate_names_mariadb() {
    duplicate_names(Product::MariaDb);
}

#[test]
fn duplicate_names_cli() {
    duplicate_names(Product::Cli);
}

// ---------------------------------------------------------------------------------------------
// 4. The key removed on the KMIP server while a product has it.

/// The product reads the key, then another client removes it (the admin tool's remove, which
/// revokes and destroys; MariaDB's versions, which no tool removes, are taken off the server
/// directly), then the product reads it again.
fn racing_remove(product: Product, component_extra: &str) -> Outcome {
    racing_remove_then(product, component_extra, None)
}

/// `keyring-okv ARGS` on `conf`, with `input` on stdin; must succeed.
fn admin(conf: &TestConfDir, args: &[&str], input: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyring-okv"))
        .arg("--conf-dir")
        .arg(&conf.dir)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run keyring-okv");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "keyring-okv {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The racing remove, then (if `replacement`) the key stored again with other bytes under
/// the same name, as binary log key rotation does: the product must not go on using the
/// identifier it learnt for the old object.
fn racing_remove_then(
    product: Product,
    component_extra: &str,
    replacement: Option<&[u8]>,
) -> Outcome {
    // As production key managers do: destroyed objects kept and still found by name.
    let server = kmip(
        product,
        "u",
        Quirks {
            keep_destroyed: true,
            ignore_state_filter: true,
            newer_reasons: true,
            ..Quirks::default()
        },
    );
    server.kmip.plant(aes("1", &product.object_name(1), &OURS));
    let conf = conf(&[server.fault.addr], 10);
    let mut session = Session::start(
        product,
        &conf.dir,
        component_extra,
        &[Step::Fetch, Step::Pause, Step::Fetch],
    );
    session.paused();
    if product == Product::MariaDb {
        server.kmip.remove("1");
    } else {
        admin(&conf, &["remove", KEY_ID], "");
    }
    assert!(
        server
            .kmip
            .named(&product.object_name(1))
            .iter()
            .all(|o| o.state != state::ACTIVE),
        "the remove left an Active object"
    );
    if let Some(bytes) = replacement {
        admin(&conf, &["store", KEY_ID, "AES"], &hex(bytes));
    }
    session.resume();
    let done = session.finish();
    eprintln!("{product:?}: {:?}", done.outcomes);
    assert_eq!(
        done.outcomes[0],
        Outcome::Key(hex(&OURS)),
        "{product:?}: the read before the remove: {done:?}"
    );
    done.outcomes[1].clone()
}

#[test]
fn racing_remove_plugin() {
    // The plugin keeps no key material between calls.
    assert_eq!(racing_remove(Product::Plugin, NO_CACHE), Outcome::Absent);
}

#[test]
fn racing_remove_component() {
    // cache_keys off: never served from memory.
    assert_eq!(racing_remove(Product::Component, NO_CACHE), Outcome::Absent);
}

#[test]
fn racing_remove_component_with_its_cache() {
    // docs/component.md: with cache_keys a key destroyed on the KMIP server is still served for
    // up to cache_ttl_seconds; the same bytes, never others.
    assert_eq!(
        racing_remove(
            Product::Component,
            "\"cache_keys\": true, \"cache_ttl_seconds\": 3600"
        ),
        Outcome::Key(hex(&OURS))
    );
}

/// The MySQL products and the admin tool with the key stored again after the remove (MariaDB's
/// versions are never replaced: a new key is a new version).
fn racing_replace(product: Product) {
    let new = [0x5a; 32];
    assert_eq!(
        racing_remove_then(product, NO_CACHE, Some(&new)),
        Outcome::Key(hex(&new)),
        "{product:?} after the key was removed and stored again"
    );
}

#[test]
fn racing_replace_plugin() {
    racing_replace(Product::Plugin);
}

#[test]
fn racing_replace_component() {
    racing_replace(Product::Component);
}

#[test]
fn racing_replace_cli() {
    racing_replace(Product::Cli);
}

#[test]
fn racing_remove_mariadb() {
    // docs/mariadb.md: the latest versions' bytes never expire (page writes must never need the
    // network, and versions must never be destroyed), so the removed version is still served;
    // what must never happen is other bytes.
    let outcome = racing_remove(Product::MariaDb, NO_CACHE);
    assert!(
        matches!(&outcome, Outcome::Key(k) if *k == hex(&OURS)),
        "{outcome:?}"
    );
}

#[test]
fn racing_remove_cli() {
    assert_eq!(racing_remove(Product::Cli, NO_CACHE), Outcome::Absent);
}

// ---------------------------------------------------------------------------------------------
// 5. Unload with the KMIP server hung.

/// The request timeouts: long, so that an unload that waits for them cannot pass for one that
/// does not.
const HUNG_TIMEOUT: Duration = Duration::from_secs(60);

/// The product reads the key through a relay, the relay stops passing bytes (connections stay
/// open), then the product is unloaded: the host must end well before the timeouts.
fn unload_with_a_hung_server(product: Product) {
    let server = kmip(product, "u", Quirks::default());
    server.kmip.plant(aes("1", &product.object_name(1), &OURS));
    let proxy = TcpProxy::start(server.fault.addr);
    let conf = conf(&[proxy.addr], HUNG_TIMEOUT.as_secs());
    let mut session = Session::start(product, &conf.dir, NO_CACHE, &[Step::Fetch, Step::Pause]);
    session.paused();
    proxy.set_hang(true);
    let let_go = session.resume();
    let done = session.finish();
    let took = done.ended.duration_since(let_go);
    eprintln!("{product:?}: unloaded {took:?} after the server hung");
    assert_eq!(
        done.outcomes[0],
        Outcome::Key(hex(&OURS)),
        "{product:?}: {done:?}"
    );
    assert!(
        took < HUNG_TIMEOUT / 3,
        "{product:?}: unloading took {took:?} ({HUNG_TIMEOUT:?} timeouts)"
    );
}

#[test]
fn unload_with_a_hung_server_plugin() {
    unload_with_a_hung_server(Product::Plugin);
}

#[test]
fn unload_with_a_hung_server_component() {
    unload_with_a_hung_server(Product::Component);
}

#[test]
fn unload_with_a_hung_server_mariadb() {
    unload_with_a_hung_server(Product::MariaDb);
}

/// MariaDB's background thread looks for new versions every second: the unload comes while
/// one of its requests is stuck in the hung relay.
#[test]
fn unload_with_a_hung_server_mariadb_refreshing() {
    let product = Product::MariaDb;
    let server = kmip(product, "u", Quirks::default());
    server.kmip.plant(aes("1", &product.object_name(1), &OURS));
    let proxy = TcpProxy::start(server.fault.addr);
    let conf = conf(&[proxy.addr], HUNG_TIMEOUT.as_secs());
    let mut session =
        Session::start_mariadb_refreshing(&conf.dir, 1000, &[Step::Fetch, Step::Pause]);
    session.paused();
    proxy.set_hang(true);
    let deadline = std::time::Instant::now() + HUNG_TIMEOUT / 3;
    while proxy.held() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no background request reached the hung relay"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let let_go = session.resume();
    let done = session.finish();
    let took = done.ended.duration_since(let_go);
    eprintln!("{product:?}: unloaded {took:?} with a refresh stuck in the hung server");
    assert_eq!(done.outcomes[0], Outcome::Key(hex(&OURS)), "{done:?}");
    assert!(
        took < HUNG_TIMEOUT / 3,
        "{product:?}: unloading took {took:?} ({HUNG_TIMEOUT:?} timeouts)"
    );
}

// The admin tool has no unload: each command is a process that ends with its call.

// ---------------------------------------------------------------------------------------------
// 6. Two processes create the key at the same moment.

/// With Activates held: waits until two objects carry `name`, or one does and the other
/// process polls its state instead of making its own (more requests than the first's maker
/// sends between its Create and its held Activate), then lets the Activates go. Whether both
/// made an object.
fn release_when_decided(server: &Kmip, name: &str) -> bool {
    let made = |n: usize| {
        let name = name.to_string();
        move |objects: &[Object]| objects.iter().filter(|o| o.names.contains(&name)).count() >= n
    };
    let within = Duration::from_secs(60);
    assert!(
        server.kmip.wait_until(within, made(1)),
        "no process made {name}"
    );
    let after_first = server.kmip.messages.load(Ordering::SeqCst);
    let both = made(2);
    let kmip = server.kmip.clone();
    server.kmip.wait_until(within, move |objects| {
        both(objects) || kmip.messages.load(Ordering::SeqCst) >= after_first + 12
    });
    let both = made(2)(&server.kmip.objects());
    server.kmip.tick(1);
    both
}

/// Two processes, both loaded, create the key at once. The server holds the Creates until both
/// have sent one (so each looked for the key before either made it: the race is real, not two
/// creations one after the other) and the Activates until both objects exist
/// (`release_when_decided`), so that neither settles before the other's object is there. Then
/// each reads the key. The MySQL products and the
/// admin tool (docs/keys.md): one Active object under the name, one process succeeds and the
/// other fails with "already exists", both read the object's bytes. MariaDB (docs/mariadb.md):
/// rotations never make two Active objects for one version nor a hole, both succeed, and each
/// reads the bytes of the one Active object of the version it took.
///
/// `tie`: the clock stands still and identifiers do not sort in creation order, so that the
/// two objects carry the same Initial Date and the tie must be broken the same way by both.
fn concurrent_creation(product: Product, tie: bool) {
    let server = kmip(
        product,
        "u",
        Quirks {
            hold_creates: 2,
            hold_activate: true,
            frozen_clock: tie,
            descending_uids: tie,
            ..Quirks::default()
        },
    );
    if product == Product::MariaDb {
        server.kmip.plant(aes("0", &product.object_name(1), &OURS));
    }
    let created = product.object_name(2);
    let conf = conf(&[server.fault.addr], 30);
    let steps = [Step::Pause, Step::Generate, Step::Pause, Step::Fetch];
    let mut sessions: Vec<Session> = (0..2)
        .map(|_| Session::start(product, &conf.dir, NO_CACHE, &steps))
        .collect();
    for s in &mut sessions {
        s.paused();
    }
    // Both go at once; the admin tool's sessions run their steps in `paused`, so on threads.
    let both = std::thread::scope(|scope| {
        let runs: Vec<_> = sessions
            .iter_mut()
            .map(|s| {
                s.resume();
                scope.spawn(move || s.paused())
            })
            .collect();
        let both = release_when_decided(&server, &created);
        for r in runs {
            r.join().unwrap();
        }
        both
    });
    eprintln!("{product:?}: both processes made an object: {both}");
    for s in &mut sessions {
        s.resume();
    }
    let done: Vec<Finished> = sessions.into_iter().map(Session::finish).collect();
    for d in &done {
        eprintln!("{product:?}: {:?}", d.outcomes);
        assert_eq!(d.outcomes.len(), 2, "{product:?}: {d:?}");
    }
    let succeeded = done
        .iter()
        .filter(|d| d.outcomes[0] == Outcome::Made)
        .count();
    if product == Product::MariaDb {
        let mut versions = Vec::new();
        for version in 2.. {
            let objects = server.kmip.named(&product.object_name(version));
            if objects.is_empty() {
                break;
            }
            let active: Vec<&Object> = objects
                .iter()
                .filter(|o| o.state == state::ACTIVE)
                .collect();
            assert_eq!(
                active.len(),
                1,
                "{product:?}: Active objects of version {version}: {objects:?}\n{done:?}"
            );
            versions.push(hex(&active[0].material));
        }
        assert!(
            (1..=2).contains(&versions.len()),
            "{product:?}: {} versions made by two rotations",
            versions.len()
        );
        assert_eq!(succeeded, 2, "{product:?}: {done:?}");
        for d in &done {
            assert!(
                matches!(&d.outcomes[1], Outcome::Key(k) if versions.contains(k)),
                "{product:?}: a process reads bytes that are no version it made: {d:?}"
            );
        }
        if versions.len() == 1 {
            assert_eq!(done[0].outcomes[1], done[1].outcomes[1]);
        }
        return;
    }
    let objects = server.kmip.named(&created);
    let active: Vec<&Object> = objects
        .iter()
        .filter(|o| o.state == state::ACTIVE)
        .collect();
    assert_eq!(
        active.len(),
        1,
        "{product:?}: Active objects under {created}: {objects:?}\n{done:?}"
    );
    let winner = Outcome::Key(hex(&active[0].material));
    for d in &done {
        assert_eq!(
            d.outcomes[1], winner,
            "{product:?}: a process reads other bytes than the Active object's: {d:?}"
        );
    }
    assert_eq!(succeeded, 1, "{product:?}: {done:?}");
    let loser = done
        .iter()
        .find(|d| d.outcomes[0] != Outcome::Made)
        .unwrap();
    assert!(
        loser.log.contains("already exists"),
        "{product:?}: the loser's error:\n{}",
        loser.log
    );
}

#[test]
fn concurrent_creation_plugin() {
    concurrent_creation(Product::Plugin, false);
}

#[test]
fn concurrent_creation_in_one_second_plugin() {
    concurrent_creation(Product::Plugin, true);
}

#[test]
fn concurrent_creation_component() {
    concurrent_creation(Product::Component, false);
}

#[test]
fn concurrent_creation_in_one_second_component() {
    concurrent_creation(Product::Component, true);
}

#[test]
fn concurrent_creation_mariadb() {
    concurrent_creation(Product::MariaDb, false);
}

#[test]
fn concurrent_creation_in_one_second_mariadb() {
    concurrent_creation(Product::MariaDb, true);
}

#[test]
fn concurrent_creation_cli() {
    concurrent_creation(Product::Cli, false);
}

#[test]
fn concurrent_creation_in_one_second_cli() {
    concurrent_creation(Product::Cli, true);
}

/// The admin tool's MariaDB commands (as tests/keyring/create_race.rs runs them against PyKMIP), here
/// with the Activates held: two `mariadb create-key` at once make one version 1, then two
/// `mariadb rotate` at once make one Active object per version and no hole.
#[test]
fn concurrent_creation_cli_mariadb() {
    let server = kmip(
        Product::Cli,
        "u",
        Quirks {
            hold_creates: 2,
            hold_activate: true,
            ..Quirks::default()
        },
    );
    let conf = conf(&[server.fault.addr], 30);
    let both = |command: &str, name: &str| -> Vec<(i32, String)> {
        let children: Vec<_> = (0..2)
            .map(|_| {
                std::process::Command::new(env!("CARGO_BIN_EXE_keyring-okv"))
                    .arg("--conf-dir")
                    .arg(&conf.dir)
                    .args(["mariadb", command, "3", "--namespace", NAMESPACE])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("run keyring-okv")
            })
            .collect();
        let made_two = release_when_decided(&server, name);
        eprintln!("mariadb {command}: both processes made an object: {made_two}");
        children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().unwrap();
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                (out.status.code().unwrap_or(-1), text)
            })
            .collect()
    };
    let active = |name: &str| -> usize {
        server
            .kmip
            .named(name)
            .iter()
            .filter(|o| o.state == state::ACTIVE)
            .count()
    };
    let first = format!("{NAMESPACE}/3/1");
    let runs = both("create-key", &first);
    for (code, text) in &runs {
        match code {
            0 => assert!(text.contains("version 1"), "{text}"),
            5 => assert!(text.contains("already exists (latest version 1)"), "{text}"),
            _ => panic!("exit {code}: {text}"),
        }
    }
    assert_eq!(active(&first), 1, "{:?}", server.kmip.named(&first));
    server.kmip.set(Quirks {
        hold_creates: 2,
        hold_activate: true,
        ..Quirks::default()
    });
    let second = format!("{NAMESPACE}/3/2");
    let runs = both("rotate", &second);
    let mut latest = 1;
    while !server
        .kmip
        .named(&format!("{NAMESPACE}/3/{}", latest + 1))
        .is_empty()
    {
        latest += 1;
        let name = format!("{NAMESPACE}/3/{latest}");
        assert_eq!(active(&name), 1, "{:?}", server.kmip.named(&name));
    }
    assert!((2..=3).contains(&latest), "{latest}");
    for (code, text) in &runs {
        assert_eq!(*code, 0, "{text}");
        assert!(
            (2..=latest).any(|v| text.contains(&format!("version {v}"))),
            "{text}"
        );
    }
}
