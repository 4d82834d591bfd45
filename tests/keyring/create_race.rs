//! Create races between processes (issue 16): several clients making the same name at the same
//! moment settle on one Active object, and every one of them uses that object's bytes.
//!
//! - `keyring-okv mariadb rotate` and `create-key` run as concurrent processes against PyKMIP,
//!   checked with PyKMIP's own client (scripts/pykmip_tool.py);
//! - the MySQL keyring's generate from several threads, each with its own client (connection);
//! - the tie: two objects made in the same second on a server whose UUID-like identifiers are
//!   not in creation order (the in-process quirky server with a frozen clock);
//! - a server that keeps names unique (the quirky server): no wait, and concurrent generates
//!   still end with one object;
//! - PyKMIP made to keep names unique (`KEYRING_OKV_PYKMIP_UNIQUE_NAMES=1`): the probe learns it
//!   from a real server, a generate makes no request for the wait, racing generates end with one
//!   object;
//! - two real MariaDB 10.11 servers sharing a namespace rotating key 1 at the same moment, each
//!   reading its own tables back after a restart.

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::fault_server::FaultServer;
use common::kmip_quirks::{Object, Quirks, QuirkyKmip, Tamper};
use common::pykmip::{Named, lab, tool, unique};
use okv_core::config::{Host, ServerAddr, load_conf_dir};
use okv_core::connector::KmipClient;
use okv_core::keyring::{Keyring, KeyringError, object_name, unique_names};
use okv_core::kmip::tags::{operation, state};
use okv_core::products::mariadb::{KeyStore, Settings};

const KEYRING_OKV: &str = env!("CARGO_BIN_EXE_keyring-okv");

/// Runs `keyring-okv mariadb <args>` in `n` processes started together; (exit code, stdout,
/// stderr) of each.
fn concurrently(n: usize, args: &[&str]) -> Vec<(i32, String, String)> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(KEYRING_OKV)
                .arg("--conf-dir")
                .arg(&lab().conf_dir)
                .arg("mariadb")
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run keyring-okv")
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("keyring-okv ran");
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect()
}

/// The objects PyKMIP holds under `name`: (uid, state).
fn on_server(name: &str) -> Vec<(String, String)> {
    tool(&["find", name])
        .as_array()
        .expect("find prints a list")
        .iter()
        .map(|o| {
            (
                o["uid"].as_str().unwrap().to_string(),
                o["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The version a `created key K version V (...)` line reports.
fn reported_version(out: &str) -> u32 {
    let rest = out
        .trim()
        .split(" version ")
        .nth(1)
        .unwrap_or_else(|| panic!("no version in {out:?}"));
    rest.split(' ').next().unwrap().parse().expect("version")
}

/// Versions 1..=N of key 1 each have exactly one object, Active, and N+1 none; returns N.
fn check_versions(ns: &str) -> u32 {
    let mut version = 1;
    loop {
        let found = on_server(&format!("{ns}/1/{version}"));
        if found.is_empty() {
            let later = on_server(&format!("{ns}/1/{}", version + 1));
            assert!(later.is_empty(), "a hole at version {version}: {later:?}");
            return version - 1;
        }
        assert_eq!(
            found.len(),
            1,
            "{ns}/1/{version} has several objects: {found:?}"
        );
        assert_eq!(found[0].1, "ACTIVE", "{ns}/1/{version}: {found:?}");
        version += 1;
    }
}

#[test]
fn concurrent_rotations_leave_one_active_object_per_version_and_no_holes() {
    let ns = unique("race-rot");
    let made = concurrently(1, &["create-key", "1", "--namespace", &ns]);
    assert_eq!(made[0].0, 0, "{}", made[0].2);
    for round in 1..=6 {
        let runs = concurrently(3, &["rotate", "1", "--namespace", &ns]);
        let latest = check_versions(&ns);
        let reported: Vec<String> = runs.iter().map(|r| r.1.trim().to_string()).collect();
        eprintln!("round {round}: latest {latest}; {reported:?}");
        for (code, out, err) in &runs {
            assert_eq!(code, &0, "round {round}: {err}");
            let v = reported_version(out);
            assert!(
                (2..=latest).contains(&v),
                "round {round}: reported version {v}, latest {latest}: {out}"
            );
        }
    }
}

#[test]
fn concurrent_first_creations_make_one_version_1() {
    let ns = unique("race-create");
    let runs = concurrently(3, &["create-key", "1", "--namespace", &ns]);
    for (code, out, err) in &runs {
        // Each either made version 1 or found it made (by a process that finished first).
        match code {
            0 => assert_eq!(reported_version(out), 1, "{out}"),
            5 => assert!(
                err.contains("key 1 already exists (latest version 1)"),
                "{err}"
            ),
            _ => panic!("exit {code}: {err}"),
        }
    }
    assert_eq!(check_versions(&ns), 1);
}

/// Several KeyStores (one connection each, as several MariaDB servers) rotating key 1 at the
/// same moment: each publishes, as the version it made, the bytes PyKMIP holds under it.
#[test]
fn concurrent_rotations_publish_the_winners_bytes() {
    let ns = unique("race-store");
    let conf = load_conf_dir(&lab().conf_dir).expect("lab conf dir");
    let store = || {
        KeyStore::new(
            KmipClient::from_conf_dir(&conf).expect("client"),
            Settings {
                namespace: ns.clone(),
                ..Settings::default()
            },
        )
        .expect("store")
    };
    store().create_first(1).expect("create-key");
    let stores: Vec<KeyStore> = (0..3).map(|_| store()).collect();
    for s in &stores {
        assert_eq!(s.load(1).unwrap(), Some(1));
    }
    for _round in 0..3 {
        let barrier = Barrier::new(stores.len());
        let made: Vec<(u32, u32)> = std::thread::scope(|scope| {
            let handles: Vec<_> = stores
                .iter()
                .map(|s| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        s.rotate(Some(1)).expect("rotate")[0]
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let latest = check_versions(&ns);
        for (s, (_, version)) in stores.iter().zip(made) {
            let found = on_server(&format!("{ns}/1/{version}"));
            let winner = tool(&["get", &found[0].0]);
            let bytes = s.with_key(1, version, hex).expect("its key");
            assert_eq!(
                Some(bytes.as_str()),
                winner["value_hex"].as_str(),
                "version {version}"
            );
            assert!(version <= latest);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A generate of `id` by every keyring, released together; the outcome of each.
fn generate_together(keyrings: &[Keyring], id: &str) -> Vec<Result<(), KeyringError>> {
    let barrier = Barrier::new(keyrings.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = keyrings
            .iter()
            .map(|k| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    k.generate(id, "", "AES", 32)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn concurrent_generates_of_one_key_make_one_object() {
    let conf = load_conf_dir(&lab().conf_dir).expect("lab conf dir");
    let id = unique("race-gen");
    let keyrings: Vec<Keyring> = (0..4)
        .map(|_| Keyring::new(KmipClient::from_conf_dir(&conf).expect("client")))
        .collect();
    let outcomes = generate_together(&keyrings, &id);
    let made = outcomes.iter().filter(|o| o.is_ok()).count();
    for o in &outcomes {
        if let Err(e) = o {
            assert!(matches!(e, KeyringError::AlreadyExists { .. }), "{e}");
        }
    }
    assert_eq!(made, 1, "{outcomes:?}");
    let found = on_server(&object_name(&id, ""));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, "ACTIVE");
    let value = tool(&["get", &found[0].0]);
    for k in &keyrings {
        let key = k.fetch(&id, "").unwrap().expect("the key");
        assert_eq!(
            Some(hex(&key.material).as_str()),
            value["value_hex"].as_str()
        );
    }
    keyrings[0].remove(&id, "").expect("remove");
}

/// Stores of one key with different material from several connections at once: one succeeds,
/// and every connection then reads that one's material.
#[test]
fn concurrent_stores_of_one_key_keep_one_material() {
    let conf = load_conf_dir(&lab().conf_dir).expect("lab conf dir");
    let id = unique("race-store-sec");
    let keyrings: Vec<Keyring> = (0..3)
        .map(|_| Keyring::new(KmipClient::from_conf_dir(&conf).expect("client")))
        .collect();
    let barrier = Barrier::new(keyrings.len());
    let outcomes: Vec<Result<(), KeyringError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = keyrings
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let barrier = &barrier;
                let id = &id;
                scope.spawn(move || {
                    barrier.wait();
                    k.store(id, "", "SECRET", &[b'a' + i as u8; 24])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<usize> = (0..outcomes.len())
        .filter(|i| outcomes[*i].is_ok())
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    for o in outcomes.iter().filter(|o| o.is_err()) {
        assert!(
            matches!(o, Err(KeyringError::AlreadyExists { .. })),
            "{o:?}"
        );
    }
    let found = on_server(&object_name(&id, ""));
    assert_eq!(found.len(), 1, "{found:?}");
    for k in &keyrings {
        let key = k.fetch(&id, "").unwrap().expect("the key");
        assert_eq!(&key.material[..], &[b'a' + winners[0] as u8; 24]);
    }
    keyrings[0].remove(&id, "").expect("remove");
}

fn quirky(quirks: Quirks) -> (Arc<QuirkyKmip>, FaultServer) {
    common::kmip_quirks::serve("u", quirks)
}

fn quirky_keyring(fault: &FaultServer) -> Keyring {
    let conf = load_conf_dir(&lab().conf_dir).expect("lab conf dir");
    let server = ServerAddr {
        host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        port: fault.port(),
    };
    Keyring::new(KmipClient::new(vec![server], conf.tls, conf.options.clone()).expect("client"))
}

/// The tie: A makes X; B makes Y in the same second (the clock stands still) and Y's UUID sorts
/// before X's. A must not have settled on X before Y existed: both settle on Y, A destroys X.
/// (Activates are slow here, so that a client that settled on X before Y existed would have
/// X still Pre-Active when B checks whether the key exists, and both would end up Active.)
#[test]
fn a_tie_in_the_same_second_settles_on_one_object_for_both() {
    let (kmip, fault) = quirky(Quirks {
        descending_uids: true,
        frozen_clock: true,
        hold_activate: true,
        ..Quirks::default()
    });
    let a = quirky_keyring(&fault);
    let b = quirky_keyring(&fault);
    let name = object_name("tie", "");
    let named = |n: usize| {
        move |objects: &[Object]| {
            objects
                .iter()
                .filter(|o| o.names.iter().any(|x| x == "mysql-keyring::tie"))
                .count()
                >= n
        }
    };
    let within = Duration::from_secs(60);
    std::thread::scope(|scope| {
        let first = scope.spawn(|| a.generate("tie", "", "AES", 32));
        assert!(kmip.wait_until(within, named(1)), "A made nothing");
        let x = kmip.named(&name)[0].clone();
        let second = scope.spawn(|| b.generate("tie", "", "AES", 32));
        assert!(kmip.wait_until(within, named(2)), "B made nothing");
        let y = kmip
            .named(&name)
            .into_iter()
            .find(|o| o.uid != x.uid)
            .unwrap();
        assert_eq!(x.initial_date, y.initial_date);
        assert!(y.uid < x.uid, "{} {}", y.uid, x.uid);
        // Neither may have activated anything yet.
        assert!(
            kmip.named(&name)
                .iter()
                .all(|o| o.state == state::PRE_ACTIVE)
        );
        kmip.tick(1);
        let first = first.join().unwrap();
        let second = second.join().unwrap();
        assert!(
            matches!(first, Err(KeyringError::AlreadyExists { .. })),
            "{first:?}"
        );
        second.expect("B's object wins");
        let left = kmip.named(&name);
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0].uid, y.uid);
        assert_eq!(left[0].state, state::ACTIVE);
        for k in [&a, &b] {
            let key = k.fetch("tie", "").unwrap().expect("the key");
            assert_eq!(&key.material[..], &y.material[..]);
        }
    });
}

fn probes_left(kmip: &QuirkyKmip) -> Vec<Object> {
    kmip.objects()
        .into_iter()
        .filter(|o| {
            o.names
                .iter()
                .any(|n| n.starts_with(unique_names::PROBE_PREFIX))
        })
        .collect()
}

/// A server that refuses a second object under a name in use needs no wait: with its clock
/// standing still (the wait of the race rule would never end), generates, stores and MariaDB's
/// first versions are made at once, and the probe that learned it leaves nothing behind. On a
/// server that does not refuse (the quirky server's default), the probe's objects are gone too.
#[test]
fn a_server_that_keeps_names_unique_needs_no_wait() {
    let (kmip, fault) = quirky(Quirks {
        unique_names: true,
        frozen_clock: true,
        ..Quirks::default()
    });
    let k = quirky_keyring(&fault);
    k.generate("unique-g", "", "AES", 32).expect("generate");
    k.store("unique-s", "", "AES", &[5; 32]).expect("store");
    assert_eq!(
        &k.fetch("unique-s", "").unwrap().unwrap().material[..],
        &[5; 32]
    );
    assert!(matches!(
        k.generate("unique-g", "", "AES", 32),
        Err(KeyringError::AlreadyExists { .. })
    ));
    for name in [object_name("unique-g", ""), object_name("unique-s", "")] {
        let objects = kmip.named(&name);
        assert_eq!(objects.len(), 1, "{objects:?}");
        assert_eq!(objects[0].state, state::ACTIVE);
    }
    let conf = load_conf_dir(&lab().conf_dir).expect("lab conf dir");
    let server = ServerAddr {
        host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        port: fault.port(),
    };
    let client = KmipClient::new(vec![server], conf.tls, conf.options.clone()).expect("client");
    let store = KeyStore::new(client, Settings::default()).expect("store");
    store.create_first(1).expect("MariaDB key 1, version 1");
    assert_eq!(kmip.named("mariadb/1/1")[0].state, state::ACTIVE);
    let left = probes_left(&kmip);
    assert!(left.is_empty(), "{left:?}");

    // A server that takes a second name: the probe says so and cleans up; the wait is kept
    // (here the clock moves one second per object made, so it ends at once).
    let (kmip, fault) = quirky(Quirks::default());
    let k = quirky_keyring(&fault);
    k.generate("shared-g", "", "AES", 32).expect("generate");
    assert_eq!(kmip.named(&object_name("shared-g", "")).len(), 1);
    let left = probes_left(&kmip);
    assert!(left.is_empty(), "{left:?}");
}

/// On a server that keeps names unique, generates of one key by several clients at the same
/// moment (their Creates held until all have arrived) end with one Active object, which every
/// client reads; the others fail.
#[test]
fn concurrent_generates_on_a_server_that_keeps_names_unique_make_one_object() {
    let clients = 4;
    let (kmip, fault) = quirky(Quirks {
        unique_names: true,
        ..Quirks::default()
    });
    let keyrings: Vec<Keyring> = (0..clients).map(|_| quirky_keyring(&fault)).collect();
    // Learned first, so that the probes' Creates are not the ones held.
    for (i, k) in keyrings.iter().enumerate() {
        k.generate(&format!("warm-{i}"), "", "AES", 32)
            .expect("generate");
    }
    kmip.set(Quirks {
        unique_names: true,
        hold_creates: clients,
        ..Quirks::default()
    });
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let threads: Vec<_> = keyrings
            .iter()
            .map(|k| scope.spawn(|| k.generate("together", "", "AES", 32)))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    let objects = kmip.named(&object_name("together", ""));
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(objects[0].state, state::ACTIVE);
    for k in &keyrings {
        let key = k.fetch("together", "").unwrap().expect("the key");
        assert_eq!(&key.material[..], &objects[0].material[..]);
    }
}

/// The same on a real server: PyKMIP started so that it refuses a second object under a Name in
/// use. The probe learns it (once per server and client), a generate then makes only the
/// requests that make the key (no look at the server's clock, no Locate), and generates
/// of one key by several clients at once end with one Active object whose bytes all of them read.
#[test]
fn pykmip_keeping_names_unique_needs_no_wait_and_racing_generates_make_one_object() {
    let kmip = Named::start_keeping_names_unique("race_unique");
    let conf = load_conf_dir(&kmip.conf_dir()).expect("the instance's conf dir");
    let keyrings: Vec<Keyring> = (0..4)
        .map(|_| Keyring::new(KmipClient::from_conf_dir(&conf).expect("client")))
        .collect();
    for (i, k) in keyrings.iter().enumerate() {
        k.generate(&format!("warm-{i}"), "", "AES", 32)
            .expect("generate");
    }
    let requests = |k: &Keyring| k.client().health().snapshot().requests;
    let before = requests(&keyrings[0]);
    keyrings[0]
        .generate("counted", "", "AES", 32)
        .expect("generate");
    let made = requests(&keyrings[0]) - before;
    assert!(
        made <= MADE_WITHOUT_WAIT,
        "a generate made {made} requests on a server that keeps names unique"
    );
    // The probe's refused Creates are the answers it asks for, not failures a DBA should see.
    let errors = keyrings[0].client().health().snapshot();
    assert_eq!(errors.errors, 0, "{}", errors.last_error);

    let outcomes = generate_together(&keyrings, "together");
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    for e in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert!(matches!(e, KeyringError::AlreadyExists { .. }), "{e}");
    }
    // A generate of a key that exists is refused by the server and said as "already exists".
    assert!(matches!(
        keyrings[0].generate("counted", "", "AES", 32),
        Err(KeyringError::AlreadyExists { .. })
    ));
    let found = kmip.script(&["tool", "find", &object_name("together", "")]);
    let found: serde_json::Value = serde_json::from_str(&found).expect("find prints JSON");
    let found = found.as_array().expect("a list");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["state"], "ACTIVE");
    let first = keyrings[0].fetch("together", "").unwrap().expect("the key");
    for k in &keyrings[1..] {
        let key = k.fetch("together", "").unwrap().expect("the key");
        assert_eq!(&key.material[..], &first.material[..]);
    }
}

/// A generate where no wait is needed, once the keyring's last write went to this server: the
/// Create and the Activate, as the server's own Create+Activate (the Create is refused if an
/// object carries the name).
const MADE_WITHOUT_WAIT: u64 = 2;

/// A Pre-Active leftover of a failed creation (two minutes old) does not block a generate.
#[test]
fn an_old_pre_active_leftover_does_not_block_a_generate() {
    let (kmip, fault) = quirky(Quirks::default());
    let name = object_name("left", "");
    let now = *kmip.clock.lock().unwrap();
    let mut leftover = Object::aes("0", &name, vec![9; 32], now - 1000);
    leftover.state = state::PRE_ACTIVE;
    kmip.plant(leftover);
    let k = quirky_keyring(&fault);
    k.generate("left", "", "AES", 32).expect("generate");
    let active: BTreeMap<String, u32> = kmip
        .named(&name)
        .into_iter()
        .map(|o| (o.uid, o.state))
        .collect();
    assert_eq!(active.values().filter(|s| **s == state::ACTIVE).count(), 1);
    assert_ne!(
        &k.fetch("left", "").unwrap().unwrap().material[..],
        &[9; 32]
    );
}

/// An Activate carried out whose answer is lost, and the state checks after it failing: the
/// object may be Active, so the clean-up revokes it before destroying it (a Destroy alone is
/// refused for an Active object and would leave an Active orphan under the key's name).
#[test]
fn a_lost_activate_answer_leaves_no_active_orphan() {
    let lost_activate = || Quirks {
        swallow_once: Some(operation::ACTIVATE),
        fail_state_checks: 2,
        ..Quirks::default()
    };
    let (kmip, fault) = quirky(lost_activate());
    let k = quirky_keyring(&fault);
    let err = k.generate("orphan", "", "AES", 32).unwrap_err();
    assert!(matches!(err, KeyringError::Backend { .. }), "{err}");
    let left = kmip.named(&object_name("orphan", ""));
    assert!(left.is_empty(), "{left:?}");

    // The same for a MariaDB version.
    kmip.set(lost_activate());
    let conf = load_conf_dir(&lab().conf_dir).expect("lab conf dir");
    let server = ServerAddr {
        host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        port: fault.port(),
    };
    let client = KmipClient::new(vec![server], conf.tls, conf.options.clone()).expect("client");
    let store = KeyStore::new(client, Settings::default()).expect("store");
    assert!(store.create_first(1).is_err());
    let left = kmip.named("mariadb/1/1");
    assert!(left.is_empty(), "{left:?}");

    // Once the state can be read and says Active, the Activate did its work: the object is
    // kept and used (another client may already have read it), never destroyed.
    kmip.set(Quirks {
        swallow_once: Some(operation::ACTIVATE),
        fail_state_checks: 1,
        ..Quirks::default()
    });
    k.generate("kept", "", "AES", 32)
        .expect("activated after all");
    let kept = kmip.named(&object_name("kept", ""));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].state, state::ACTIVE);
}

/// MariaDB's reads check every Get answer as the MySQL keyring does, only Active objects are
/// versions, and two Active objects under one version's name are an error naming both.
#[test]
fn mariadb_reads_are_checked_and_only_active_objects_are_versions() {
    let (kmip, fault) = quirky(Quirks::default());
    let conf = load_conf_dir(&lab().conf_dir).expect("lab conf dir");
    let server = ServerAddr {
        host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        port: fault.port(),
    };
    let store = || {
        let client = KmipClient::new(vec![server.clone()], conf.tls.clone(), conf.options.clone())
            .expect("client");
        KeyStore::new(client, Settings::default()).expect("store")
    };
    kmip.plant(Object::aes("10", "mariadb/1/1", vec![5; 32], 1_600_000_000));
    for (tamper, why) in [
        (Tamper::OtherUid, "instead"),
        (Tamper::StatedBits(128), "Cryptographic Length"),
        (Tamper::Length(20), "20 bytes"),
        (Tamper::Algorithm(2), "not AES"),
    ] {
        kmip.set(Quirks {
            tamper: Some(tamper),
            ..Quirks::default()
        });
        let err = store().load(1).unwrap_err().to_string();
        assert!(err.contains(why), "{tamper:?}: {err}");
    }
    kmip.set(Quirks::default());
    assert_eq!(store().load(1).unwrap(), Some(1));

    // A Pre-Active or revoked object is not a version.
    let mut pre = Object::aes("11", "mariadb/2/1", vec![6; 32], 1_600_000_000);
    pre.state = state::PRE_ACTIVE;
    kmip.plant(pre);
    let mut revoked = Object::aes("12", "mariadb/2/1", vec![7; 32], 1_600_000_000);
    revoked.state = state::DEACTIVATED;
    kmip.plant(revoked);
    assert_eq!(store().load(2).unwrap(), None);

    // Two Active objects: an error naming both, never a coin toss.
    kmip.plant(Object::aes("13", "mariadb/1/2", vec![8; 32], 1_600_000_000));
    kmip.plant(Object::aes("14", "mariadb/1/2", vec![9; 32], 1_600_000_000));
    let err = store().load(1).unwrap_err().to_string();
    assert!(err.contains("13 and 14"), "{err}");
}

/// Two MariaDB 10.11 servers sharing one namespace run `SET GLOBAL
/// kmip_key_management_rotate_key=1` at the same moment, three times, writing between rounds;
/// after a restart each reads back its own tables (pages, redo log and binary log written with
/// the versions it published), and the KMIP server holds one Active object per version.
#[test]
fn two_mariadb_servers_rotating_at_once_read_their_data_back() {
    use common::mariadb::{Instance, Target, encryption_args, plugin_args};
    let ns = unique("race-mdbd");
    let made = concurrently(1, &["create-key", "1", "--namespace", &ns]);
    assert_eq!(made[0].0, 0, "{}", made[0].2);
    let dbs: Vec<Instance> = ["race-a", "race-b"]
        .iter()
        .map(|name| Instance::new(Target::Host, name))
        .collect();
    for db in &dbs {
        let conf = db.conf(&lab().conf_dir);
        let mut args = plugin_args(&conf, &ns);
        args.extend(encryption_args());
        db.must_start(&args);
        db.must_sql(
            "CREATE DATABASE d;
             CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB ENCRYPTION_KEY_ID=1;
             INSERT INTO d.t VALUES (0, 'before');",
        );
    }
    for round in 1..=3 {
        let barrier = Barrier::new(dbs.len());
        std::thread::scope(|scope| {
            for db in &dbs {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    db.must_sql("SET GLOBAL kmip_key_management_rotate_key = 1");
                });
            }
        });
        for db in &dbs {
            db.must_sql(&format!(
                "INSERT INTO d.t VALUES ({round}, CONCAT('round-', {round}, '-{}'));
                 SET GLOBAL innodb_max_dirty_pages_pct = 0;",
                db.name
            ));
        }
    }
    for db in &dbs {
        db.restart().expect("restart");
        assert_eq!(
            db.must_sql("SELECT GROUP_CONCAT(v ORDER BY id) FROM d.t"),
            format!("before,round-1-{0},round-2-{0},round-3-{0}", db.name)
        );
        assert!(db.must_sql("SHOW BINLOG EVENTS").contains("d.t"));
        assert_eq!(db.plugin_errors(), Vec::<String>::new());
    }
    let latest = check_versions(&ns);
    // Each round adds one version (both settled on it) or two (one finished before the other
    // looked).
    assert!((4..=7).contains(&latest), "{latest} versions");
    for db in &dbs {
        let _ = common::mariadb::script(Target::Host, &["reset", &db.name]);
    }
}
