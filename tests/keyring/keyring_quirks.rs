//! The keyring against a KMIP server that behaves like the awkward production ones (see
//! common/kmip_quirks.rs): destroyed objects kept and listed, Locate capped, filters ignored,
//! newer result reasons, duplicate names, tampered Get answers, a standby with other
//! identifiers, lost answers.

#[path = "../common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::fault_server::FaultServer;
use common::kmip_quirks::{Object, Quirks, QuirkyKmip, Tamper};
use common::pykmip::lab;
use okv_core::config::{Host, Options, ServerAddr, load_conf_dir};
use okv_core::connector::{ClientError, KmipClient, Retry};
use okv_core::keyring::{Keyring, KeyringError, object_name};
use okv_core::kmip::ops;
use okv_core::kmip::tags::{object_type, operation, state};

struct Server {
    kmip: Arc<QuirkyKmip>,
    fault: FaultServer,
}

fn server(uid_prefix: &str, quirks: Quirks) -> Server {
    let (kmip, fault) = common::kmip_quirks::serve(uid_prefix, quirks);
    Server { kmip, fault }
}

fn addr(s: &Server) -> ServerAddr {
    ServerAddr {
        host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        port: s.fault.port(),
    }
}

fn keyring(servers: &[&Server]) -> Keyring {
    let conf = load_conf_dir(&lab().conf_dir).expect("lab conf dir");
    let options = Options {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        ..conf.options.clone()
    };
    let client = KmipClient::new(servers.iter().map(|s| addr(s)).collect(), conf.tls, options)
        .expect("client");
    Keyring::new(client)
}

fn all_quirks() -> Quirks {
    Quirks {
        keep_destroyed: true,
        ignore_state_filter: true,
        newer_reasons: true,
        ..Quirks::default()
    }
}

fn key(byte: u8) -> Vec<u8> {
    vec![byte; 32]
}

#[test]
fn destroyed_objects_kept_and_listed_are_never_the_key() {
    let s = server("u", all_quirks());
    let k = keyring(&[&s]);
    // Binlog master key rotation: the same ids removed and stored again, many times.
    for round in 1..=5u8 {
        for id in ["binlog-1", "binlog-2"] {
            if round > 1 {
                k.remove(id, "").unwrap();
                assert!(k.fetch(id, "").unwrap().is_none(), "{id} round {round}");
            }
            k.store(id, "", "AES", &key(round)).unwrap();
            assert_eq!(
                &k.fetch(id, "").unwrap().unwrap().material[..],
                &key(round)[..]
            );
        }
    }
    let name = object_name("binlog-1", "");
    assert_eq!(
        s.kmip.named(&name).len(),
        5,
        "the server kept every destroyed object"
    );
    let listed = k.list(true).unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    // A fresh process (no memory) finds the live one among the destroyed.
    let fresh = keyring(&[&s]);
    assert_eq!(
        &fresh.fetch("binlog-2", "").unwrap().unwrap().material[..],
        &key(5)[..]
    );
    assert!(matches!(
        fresh.store("binlog-2", "", "AES", &key(9)),
        Err(KeyringError::AlreadyExists { .. })
    ));
}

#[test]
fn pre_active_deactivated_and_compromised_objects_are_not_keys() {
    let s = server("u", all_quirks());
    // 0x09: a state value no KMIP 1.1 client knows.
    for (i, st) in [
        state::PRE_ACTIVE,
        state::DEACTIVATED,
        state::COMPROMISED,
        0x09,
    ]
    .into_iter()
    .enumerate()
    {
        let mut o = Object::aes(
            &format!("x{i}"),
            &object_name("k", "o"),
            key(1),
            1_700_000_000,
        );
        o.state = st;
        s.kmip.plant(o);
    }
    let k = keyring(&[&s]);
    assert!(k.fetch("k", "o").unwrap().is_none());
    assert!(k.list(false).unwrap().is_empty());
    assert!(matches!(
        k.remove("k", "o"),
        Err(KeyringError::NotFound { .. })
    ));
    k.store("k", "o", "AES", &key(2)).unwrap();
    assert_eq!(
        &k.fetch("k", "o").unwrap().unwrap().material[..],
        &key(2)[..]
    );
    assert_eq!(k.list(false).unwrap().len(), 1);
}

#[test]
fn two_usable_objects_under_one_name_are_reported_never_chosen() {
    let s = server("u", Quirks::default());
    let name = object_name("dup", "alice@%");
    s.kmip
        .plant(Object::aes("first", &name, key(1), 1_700_000_000));
    s.kmip
        .plant(Object::aes("second", &name, key(2), 1_700_000_001));
    let k = keyring(&[&s]);
    let err = k.fetch("dup", "alice@%").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, KeyringError::Duplicate { .. }), "{text}");
    assert!(text.contains("first") && text.contains("second"), "{text}");
    assert!(
        text.contains("destroy the other"),
        "says what to do: {text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(matches!(k.list(false), Err(KeyringError::Duplicate { .. })));
    assert!(matches!(
        k.generate("dup", "alice@%", "AES", 32),
        Err(KeyringError::Duplicate { .. })
    ));
    assert!(matches!(
        k.remove("dup", "alice@%"),
        Err(KeyringError::Duplicate { .. })
    ));
    assert_eq!(s.kmip.named(&name).len(), 2, "nothing was destroyed");
    assert!(k.known_uid("dup", "alice@%").is_none());
}

#[test]
fn every_get_answer_is_checked_before_mysqld_sees_it() {
    let cases = [
        (Tamper::Length(15), "15 bytes"),
        (Tamper::Length(0), "0 bytes"),
        (Tamper::StatedBits(128), "Cryptographic Length"),
        (Tamper::Algorithm(0x01), "DES"),
        (Tamper::OtherUid, "instead"),
        (Tamper::ObjectType(0x09), "0x00000009"),
    ];
    for (tamper, said) in cases {
        let s = server("u", Quirks::default());
        let k = keyring(&[&s]);
        k.store("checked", "", "AES", &key(0xAB)).unwrap();
        s.kmip.set(Quirks {
            tamper: Some(tamper),
            ..Quirks::default()
        });
        let err = k.fetch("checked", "").unwrap_err();
        let text = err.to_string();
        assert!(text.contains(said), "{tamper:?}: {text}");
        assert!(text.contains("u1"), "names the object: {text}");
        assert!(
            !text.to_lowercase().contains("abab"),
            "no key material: {text}"
        );
    }
    // Secrets: 1..=16384 bytes.
    let s = server("u", Quirks::default());
    let k = keyring(&[&s]);
    k.store("secret", "", "SECRET", b"pw").unwrap();
    s.kmip.set(Quirks {
        tamper: Some(Tamper::Length(0)),
        ..Quirks::default()
    });
    assert!(matches!(
        k.fetch("secret", "").unwrap_err(),
        KeyringError::BadKey { .. }
    ));
}

#[test]
fn another_client_removing_a_key_leaves_nothing_stale_behind() {
    let s = server("u", all_quirks());
    let a = keyring(&[&s]);
    let b = keyring(&[&s]);
    a.store("shared", "", "AES", &key(1)).unwrap();
    assert!(a.fetch("shared", "").unwrap().is_some());
    let first = a.known_uid("shared", "").unwrap();
    b.remove("shared", "").unwrap();
    // A remembers the destroyed object; it must neither hand it out nor call the key present.
    assert!(a.fetch("shared", "").unwrap().is_none());
    b.store("shared", "", "AES", &key(2)).unwrap();
    b.remove("shared", "").unwrap();
    a.store("shared", "", "AES", &key(3)).unwrap();
    b.remove("shared", "").unwrap();
    b.store("shared", "", "AES", &key(4)).unwrap();
    // A remembered its own object, which B destroyed: it finds B's.
    assert_eq!(
        &a.fetch("shared", "").unwrap().unwrap().material[..],
        &key(4)[..]
    );
    assert_ne!(a.known_uid("shared", "").unwrap(), first);
}

#[test]
fn a_standby_with_other_identifiers_is_asked_by_name() {
    let name = object_name("innodb", "");
    let primary = server("p", Quirks::default());
    let standby = server("s", Quirks::default());
    primary
        .kmip
        .plant(Object::aes("7", &name, key(1), 1_700_000_000));
    // On the standby, "7" is another key; ours is "9".
    standby.kmip.plant(Object::aes(
        "7",
        &object_name("other", ""),
        key(2),
        1_700_000_000,
    ));
    standby
        .kmip
        .plant(Object::aes("9", &name, key(1), 1_700_000_000));
    let k = keyring(&[&primary, &standby]);
    assert_eq!(
        &k.fetch("innodb", "").unwrap().unwrap().material[..],
        &key(1)[..]
    );
    assert_eq!(k.known_uid("innodb", "").as_deref(), Some("7"));
    primary.kmip.set(Quirks {
        down: true,
        ..Quirks::default()
    });
    assert_eq!(
        &k.fetch("innodb", "").unwrap().unwrap().material[..],
        &key(1)[..]
    );
    assert_eq!(k.known_uid("innodb", "").as_deref(), Some("9"));
    assert!(k.fetch("other", "").unwrap().is_some());
}

#[test]
fn a_lost_create_answer_is_looked_up_on_the_server_that_got_it() {
    let s = server("u", Quirks::default());
    let k = keyring(&[&s]);
    s.kmip.set(Quirks {
        swallow_once: Some(operation::CREATE),
        ..Quirks::default()
    });
    k.generate("lost", "", "AES", 32).unwrap();
    let made = s.kmip.named(&object_name("lost", ""));
    assert_eq!(made.len(), 1, "made once, not repeated: {made:?}");
    assert_eq!(made[0].state, state::ACTIVE);
    assert!(k.fetch("lost", "").unwrap().is_some());
}

#[test]
fn a_lost_create_answer_is_not_repeated_on_a_standby() {
    let primary = server("p", Quirks::default());
    let standby = server("s", Quirks::default());
    let k = keyring(&[&primary, &standby]);
    primary.kmip.set(Quirks {
        swallow_once: Some(operation::CREATE),
        down_after_swallow: true,
        ..Quirks::default()
    });
    let err = k.generate("lost", "", "AES", 32).unwrap_err();
    assert!(matches!(err, KeyringError::OutcomeUnknown { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("{}", addr(&primary))),
        "{err}"
    );
    assert_eq!(primary.kmip.named(&object_name("lost", "")).len(), 1);
    assert!(standby.kmip.named(&object_name("lost", "")).is_empty());
}

fn plant_many(s: &Server, count: usize, per_second: usize) {
    plant_many_from(s, 0, count, per_second);
}

fn plant_many_from(s: &Server, from: usize, to: usize, per_second: usize) {
    for i in from..to {
        let date = 1_700_000_000 + i64::try_from(i / per_second).unwrap();
        let mut o = Object::aes(
            &format!("m{i}"),
            &object_name(&format!("key-{i}"), "o"),
            key(1),
            date,
        );
        if i % 10 == 0 {
            o.state = state::DESTROYED;
        }
        s.kmip.plant(o);
    }
}

#[test]
fn a_capped_locate_does_not_make_a_partial_listing() {
    for cap in [100, 1000] {
        let s = server(
            "u",
            Quirks {
                locate_cap: Some(cap),
                keep_destroyed: true,
                ignore_state_filter: true,
                ..Quirks::default()
            },
        );
        plant_many(&s, 2500, 7);
        let k = keyring(&[&s]);
        let listed = k.list(false).unwrap();
        assert_eq!(listed.len(), 2250, "cap {cap}");
        let mut ids: Vec<&str> = listed.iter().map(|e| e.key_id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 2250);
    }
}

#[test]
fn a_capped_locate_that_cannot_be_split_fails_clearly() {
    let s = server(
        "u",
        Quirks {
            locate_cap: Some(100),
            ..Quirks::default()
        },
    );
    // 150 objects a second: a second's worth cannot be told apart by Initial Date.
    plant_many(&s, 300, 150);
    let err = keyring(&[&s]).list(false).unwrap_err();
    assert!(matches!(err, KeyringError::ListIncomplete(_)), "{err}");
    assert!(err.to_string().contains("at most 100"), "{err}");
}

#[test]
fn listing_fetches_attributes_for_many_objects_per_request() {
    let s = server("u", Quirks::default());
    plant_many(&s, 2000, 50);
    let k = keyring(&[&s]);
    let before = s.kmip.messages.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(k.list(false).unwrap().len(), 1800);
    let messages = s.kmip.messages.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert!(messages < 30, "{messages} requests for 2000 objects");
}

#[test]
fn a_server_that_stops_a_batch_at_the_first_error_is_asked_again() {
    let s = server(
        "u",
        Quirks {
            stop_batch_on_error: true,
            ghosts: vec!["ghost-1".into(), "ghost-2".into()],
            newer_reasons: true,
            ..Quirks::default()
        },
    );
    plant_many(&s, 600, 50);
    let k = keyring(&[&s]);
    assert_eq!(k.list(false).unwrap().len(), 540);
}

#[test]
fn one_deadline_bounds_a_listing() {
    let s = server("u", Quirks::default());
    plant_many(&s, 100, 10);
    let err = keyring(&[&s]).list_within(Duration::ZERO).unwrap_err();
    assert!(matches!(err, KeyringError::ListIncomplete(_)), "{err}");
    assert!(err.to_string().contains("within 0 s"), "{err}");
}

#[test]
fn secret_data_and_symmetric_keys_are_both_listed() {
    let s = server("u", all_quirks());
    let k = keyring(&[&s]);
    k.store("a", "", "AES", &key(1)).unwrap();
    k.store("s", "bob@%", "SECRET", b"pw").unwrap();
    let mut listed = k.list(true).unwrap();
    listed.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].owner, "bob@%");
    assert_eq!(
        s.kmip
            .objects()
            .iter()
            .filter(|o| o.object_type == object_type::SECRET_DATA)
            .count(),
        1
    );
}

#[test]
fn a_locate_answer_over_the_response_cap_is_split() {
    // 25,000 UUID identifiers make a 1.2 MB Locate answer, over the client's 1 MiB cap, from a
    // server that ignores Maximum Items.
    let s = server(
        "u",
        Quirks {
            locate_cap: Some(usize::MAX),
            ..Quirks::default()
        },
    );
    let count = 25_000;
    for i in 0..count {
        let uid = format!("{i:08x}-0000-4000-8000-{:012x}", i * 7919);
        let date = 1_700_000_000 + i64::try_from(i / 100).unwrap();
        s.kmip.plant(Object::aes(
            &uid,
            &object_name(&format!("k{i}"), ""),
            key(1),
            date,
        ));
    }
    let listed = keyring(&[&s]).list(false).unwrap();
    assert_eq!(listed.len(), count);
}

#[test]
fn a_later_listing_on_the_same_connection_skips_the_cap_probe() {
    let s = server("u", Quirks::default());
    plant_many(&s, 2000, 50);
    let k = keyring(&[&s]);
    let listed = k.list(false).unwrap();
    let cost = k.last_listing().unwrap();
    // Symmetric keys: the answer, then its two halves (the probe); secret data: one.
    assert_eq!(cost.locates, 4, "{cost:?}");
    // An answer as large as the largest whole one may be capped (a server capping at 2000 that
    // held 2000 objects, and holds more now): it is probed again.
    assert_eq!(k.list(false).unwrap(), listed);
    assert_eq!(k.last_listing().unwrap().locates, 4);
    // A smaller one is whole.
    s.kmip.remove("m1");
    let first = k.list(false).unwrap();
    assert_eq!(first.len() + 1, listed.len());
    assert_eq!(k.last_listing().unwrap().locates, 2);

    // A new connection may reach a reconfigured server: what was learned is checked again.
    s.kmip.set(Quirks {
        down: true,
        ..Quirks::default()
    });
    assert!(k.list(false).is_err());
    s.kmip.set(Quirks::default());
    assert_eq!(k.list(false).unwrap(), first);
    assert_eq!(k.last_listing().unwrap().locates, 4);
}

#[test]
fn a_learned_cap_still_splits_later_listings() {
    let s = server(
        "u",
        Quirks {
            locate_cap: Some(100),
            keep_destroyed: true,
            ..Quirks::default()
        },
    );
    plant_many(&s, 1200, 7);
    let k = keyring(&[&s]);
    let first = k.list(false).unwrap();
    assert_eq!(first.len(), 1080);
    let first_cost = k.last_listing().unwrap();
    // Objects made meanwhile are found: the learned cap makes every full answer split.
    plant_many_from(&s, 1200, 1500, 7);
    let second = k.list(false).unwrap();
    assert_eq!(second.len(), 1350);
    let second_cost = k.last_listing().unwrap();
    assert!(
        second_cost.locates >= first_cost.locates,
        "{first_cost:?} then {second_cost:?}"
    );
}

#[test]
fn a_request_about_an_object_of_one_server_is_never_sent_to_another() {
    let primary = server("p", Quirks::default());
    let standby = server("s", Quirks::default());
    primary.kmip.plant(Object::aes(
        "7",
        &object_name("ours", ""),
        key(1),
        1_700_000_000,
    ));
    // On the standby, "7" is another key.
    standby.kmip.plant(Object::aes(
        "7",
        &object_name("other", ""),
        key(2),
        1_700_000_000,
    ));
    let k = keyring(&[&primary, &standby]);
    let on = k.client().connect().unwrap().server.to_string();
    primary.kmip.set(Quirks {
        down: true,
        ..Quirks::default()
    });
    // The connection fails over between finding "7" on the primary and acting on it.
    let before = standby.kmip.messages.load(Ordering::SeqCst);
    let err = k
        .client()
        .request_on(
            &on,
            &ops::get_attributes("7", &["State"]),
            Retry::Idempotent,
            |_| Ok(()),
        )
        .unwrap_err();
    assert!(matches!(err, ClientError::Moved { .. }), "{err}");
    let err = k
        .client()
        .request_on(&on, &ops::destroy("7"), Retry::Never, |_| Ok(()))
        .unwrap_err();
    assert!(matches!(err, ClientError::Moved { .. }), "{err}");
    assert!(err.to_string().contains("was not sent"), "{err}");
    assert_eq!(standby.kmip.messages.load(Ordering::SeqCst), before);
    assert_eq!(
        standby.kmip.named(&object_name("other", ""))[0].state,
        state::ACTIVE
    );
    // Unpinned requests go wherever the connection is.
    assert!(k.fetch("other", "").unwrap().is_some());
}

fn messages(s: &Server) -> usize {
    s.kmip.messages.load(Ordering::SeqCst)
}

fn placeholder_items(s: &Server) -> usize {
    s.kmip.placeholder_items.load(Ordering::SeqCst)
}

#[test]
fn a_key_not_in_memory_costs_one_round_trip_where_the_server_takes_the_placeholder() {
    let s = server("u", Quirks::default());
    keyring(&[&s]).store("hot", "", "AES", &key(5)).unwrap();
    let fresh = keyring(&[&s]);
    fresh.client().connect().unwrap();
    let before = messages(&s);
    assert_eq!(
        &fresh.fetch("hot", "").unwrap().unwrap().material[..],
        &key(5)[..]
    );
    assert_eq!(
        messages(&s) - before,
        1,
        "Locate, Get Attributes and Get in one"
    );
    assert_eq!(placeholder_items(&s), 2);
    // The one object under a name that is not Active is not the key, and says so in one.
    let mut old = Object::aes("d1", &object_name("old", ""), key(6), 1_700_000_000);
    old.state = state::DEACTIVATED;
    s.kmip.plant(old);
    let before = messages(&s);
    assert!(fresh.fetch("old", "").unwrap().is_none());
    assert_eq!(messages(&s) - before, 1);
    // Absent: one Locate.
    let before = messages(&s);
    assert!(fresh.fetch("never", "").unwrap().is_none());
    assert_eq!(messages(&s) - before, 1);
    // An Active object beside the Deactivated one is the key (every object described).
    s.kmip.plant(Object::aes(
        "a1",
        &object_name("old", ""),
        key(7),
        1_700_000_001,
    ));
    assert_eq!(
        &fresh.fetch("old", "").unwrap().unwrap().material[..],
        &key(7)[..]
    );
    // The answer through the placeholder is checked as any other.
    for (tamper, said) in [
        (Tamper::Length(15), "15 bytes"),
        (Tamper::StatedBits(128), "Cryptographic Length"),
        (Tamper::Algorithm(0x01), "DES"),
        (Tamper::OtherUid, "instead"),
    ] {
        s.kmip.set(Quirks {
            tamper: Some(tamper),
            ..Quirks::default()
        });
        let err = keyring(&[&s]).fetch("hot", "").unwrap_err();
        assert!(
            matches!(err, KeyringError::BadKey { .. }),
            "{tamper:?}: {err}"
        );
        assert!(err.to_string().contains(said), "{tamper:?}: {err}");
    }
}

#[test]
fn a_server_that_does_not_take_the_placeholder_from_locate_is_read_by_identifier() {
    // As PyKMIP 0.11: the placeholder is the object made last, even in a later message.
    let s = server(
        "u",
        Quirks {
            placeholder: common::kmip_quirks::Placeholder::NotByLocate,
            ..Quirks::default()
        },
    );
    let writer = keyring(&[&s]);
    writer.store("first", "", "AES", &key(1)).unwrap();
    writer.store("second", "", "AES", &key(2)).unwrap();
    let fresh = keyring(&[&s]);
    fresh.client().connect().unwrap();
    let before = messages(&s);
    assert_eq!(
        &fresh.fetch("first", "").unwrap().unwrap().material[..],
        &key(1)[..],
        "never the object the placeholder names"
    );
    assert_eq!(messages(&s) - before, 2);
    // Remembered for the connection: not asked again.
    let (before, tried) = (messages(&s), placeholder_items(&s));
    assert_eq!(
        &fresh.fetch("second", "").unwrap().unwrap().material[..],
        &key(2)[..]
    );
    assert_eq!(messages(&s) - before, 2);
    assert_eq!(placeholder_items(&s), tried);
    // A new connection tries again: the answer to a Locate is lost, the client reconnects.
    writer.store("third", "", "AES", &key(3)).unwrap();
    s.kmip.set(Quirks {
        placeholder: common::kmip_quirks::Placeholder::NotByLocate,
        swallow_once: Some(operation::LOCATE),
        ..Quirks::default()
    });
    let connections = fresh.client().health().connections();
    fresh.fetch("third", "").unwrap().unwrap();
    assert_eq!(fresh.client().health().connections(), connections + 1);
    assert_eq!(placeholder_items(&s), tried);
    let fresh_again = |id: &str| {
        // Forgotten uids make the next fetch cold, on the same keyring and connection.
        writer.remove(id, "").unwrap();
        writer.store(id, "", "AES", &key(4)).unwrap();
        fresh.fetch(id, "").unwrap().unwrap()
    };
    assert_eq!(&fresh_again("first").material[..], &key(4)[..]);
    assert_eq!(placeholder_items(&s), tried + 2);
}

#[test]
fn a_server_that_refuses_the_placeholder_message_is_asked_without_it() {
    let s = server(
        "u",
        Quirks {
            placeholder: common::kmip_quirks::Placeholder::Refused,
            ..Quirks::default()
        },
    );
    let writer = keyring(&[&s]);
    writer.store("a", "", "AES", &key(1)).unwrap();
    writer.store("b", "", "SECRET", b"pw").unwrap();
    let fresh = keyring(&[&s]);
    fresh.client().connect().unwrap();
    let before = messages(&s);
    assert_eq!(
        &fresh.fetch("a", "").unwrap().unwrap().material[..],
        &key(1)[..]
    );
    assert_eq!(messages(&s) - before, 3, "refused, Locate, then the read");
    let (before, tried) = (messages(&s), placeholder_items(&s));
    assert_eq!(&fresh.fetch("b", "").unwrap().unwrap().material[..], b"pw");
    assert_eq!(messages(&s) - before, 2);
    assert_eq!(placeholder_items(&s), tried);
    assert!(fresh.fetch("c", "").unwrap().is_none());
}

/// A remove asks for the key's objects (a Locate and their attributes) and revokes and destroys
/// the key's object in one message: three messages, and nothing left under the name, also on a
/// server that would stop a batch at its first error.
#[test]
fn a_remove_revokes_and_destroys_in_one_message() {
    let s = server(
        "r",
        Quirks {
            stop_batch_on_error: true,
            ..Quirks::default()
        },
    );
    let k = keyring(&[&s]);
    k.store("removed", "", "AES", &key(3)).expect("store");
    let before = s.kmip.messages.load(Ordering::SeqCst);
    k.remove("removed", "").expect("remove");
    let messages = s.kmip.messages.load(Ordering::SeqCst) - before;
    assert_eq!(messages, 3, "a remove took {messages} messages");
    assert!(s.kmip.named(&object_name("removed", "")).is_empty());
    assert!(k.fetch("removed", "").unwrap().is_none());
}
