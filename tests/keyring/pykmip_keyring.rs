//! The keyring layer against a real PyKMIP 0.11 server over mutual TLS.

#[path = "../common/mod.rs"]
mod common;

use std::sync::{Arc, Barrier};

use common::pykmip::{lab, tool, unique};
use okv_core::config::load_conf_dir;
use okv_core::connector::KmipClient;
use okv_core::keyring::{KeyType, Keyring, KeyringError, object_name};

fn keyring() -> Keyring {
    let conf = load_conf_dir(&lab().conf_dir).expect("the lab conf dir loads");
    Keyring::new(KmipClient::from_conf_dir(&conf).expect("client"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn generate_every_type_and_length_then_fetch() {
    let k = keyring();
    for (kind, len) in [
        ("AES", 16),
        ("AES", 24),
        ("AES", 32),
        ("SECRET", 1),
        ("SECRET", 700),
    ] {
        let id = unique(&format!("gen-{kind}-{len}"));
        k.generate(&id, "", kind, len).unwrap();
        let key = k.fetch(&id, "").unwrap().expect("generated key is there");
        assert_eq!(key.key_type.name(), kind);
        assert_eq!(key.material.len(), len);
        assert!(
            key.material.iter().any(|&b| b != 0),
            "{kind}/{len} looks random"
        );
    }
}

#[test]
fn store_and_fetch_exact_bytes() {
    let k = keyring();
    let aes: Vec<u8> = (0u8..16).collect();
    let secret = b"pass\0word with a NUL and \xff bytes".to_vec();
    let big = vec![0x5au8; 16384];
    for (kind, bytes) in [("AES", &aes), ("SECRET", &secret), ("SECRET", &big)] {
        let id = unique("store");
        k.store(&id, "alice@%", kind, bytes).unwrap();
        let key = k.fetch(&id, "alice@%").unwrap().expect("stored key");
        assert_eq!(key.key_type.name(), kind);
        assert_eq!(&key.material[..], &bytes[..]);
        // Another owner does not see it.
        assert!(k.fetch(&id, "bob@%").unwrap().is_none());
    }
}

#[test]
fn refuses_unsupported_types_and_lengths() {
    let k = keyring();
    let id = unique("bad");
    for (kind, len) in [
        ("RSA", 128),
        ("DSA", 128),
        ("aes", 32),
        ("AES", 15),
        ("AES", 64),
        ("SECRET", 0),
        ("SECRET", 16385),
    ] {
        let err = k.generate(&id, "", kind, len).unwrap_err();
        assert!(
            matches!(
                err,
                KeyringError::UnsupportedType(_) | KeyringError::InvalidLength { .. }
            ),
            "{kind}/{len}: {err}"
        );
    }
    assert!(matches!(
        k.store(&id, "", "AES", &[1; 20]),
        Err(KeyringError::InvalidLength { .. })
    ));
    assert!(matches!(
        k.generate("", "", "AES", 32),
        Err(KeyringError::InvalidKeyId(_))
    ));
    assert!(matches!(
        k.generate(&"x".repeat(1025), "", "AES", 32),
        Err(KeyringError::InvalidKeyId(_))
    ));
    assert!(k.fetch(&id, "").unwrap().is_none(), "nothing was made");
}

#[test]
fn duplicate_generate_or_store_fails_and_keeps_the_key() {
    let k = keyring();
    let id = unique("dup");
    k.store(&id, "u@h", "SECRET", b"first").unwrap();
    assert!(matches!(
        k.store(&id, "u@h", "SECRET", b"second"),
        Err(KeyringError::AlreadyExists { .. })
    ));
    assert!(matches!(
        k.generate(&id, "u@h", "AES", 32),
        Err(KeyringError::AlreadyExists { .. })
    ));
    assert_eq!(
        &k.fetch(&id, "u@h").unwrap().unwrap().material[..],
        b"first"
    );
    // A fresh keyring (no cached identifiers) also sees the existing key.
    let fresh = keyring();
    assert!(matches!(
        fresh.generate(&id, "u@h", "AES", 32),
        Err(KeyringError::AlreadyExists { .. })
    ));
}

#[test]
fn remove_destroys_and_absent_remove_is_not_found() {
    let k = keyring();
    let id = unique("rm");
    k.generate(&id, "", "AES", 32).unwrap();
    let name = object_name(&id, "");
    let before = tool(&["find", &name]);
    assert_eq!(before.as_array().unwrap().len(), 1, "{before}");
    k.remove(&id, "").unwrap();
    assert!(k.fetch(&id, "").unwrap().is_none());
    let after = tool(&["find", &name]);
    assert_eq!(
        after.as_array().unwrap().len(),
        0,
        "destroyed on the server: {after}"
    );
    assert!(matches!(
        k.remove(&id, ""),
        Err(KeyringError::NotFound { .. })
    ));
    // The same name can be used again.
    k.generate(&id, "", "AES", 16).unwrap();
    assert_eq!(k.fetch(&id, "").unwrap().unwrap().material.len(), 16);
}

#[test]
fn list_round_trips_awkward_ids_and_owners() {
    let k = keyring();
    let base = unique("list");
    // The longest id and owner mysqld can list back (256- and 96-byte buffers); one more byte
    // is refused.
    let long_id = format!("{base}-{}", "L".repeat(255 - base.len() - 1));
    assert_eq!(long_id.len(), 255);
    let long_owner = "o".repeat(95);
    for (id, owner) in [(format!("{long_id}L"), ""), (long_id.clone(), "o@h")] {
        let owner = if owner.is_empty() {
            String::new()
        } else {
            format!("{long_owner}x")
        };
        assert!(matches!(
            k.store(&id, &owner, "SECRET", b"v"),
            Err(KeyringError::InvalidKeyId(_) | KeyringError::InvalidOwner(_))
        ));
    }
    let pairs = [
        (format!("{base} with spaces"), String::new()),
        (format!("{base}@at:colon:"), "root@localhost".to_string()),
        (
            format!("{base}-ünïcödé-鍵"),
            "user:with:colons@::1".to_string(),
        ),
        (format!("{base}%25"), "100%@host%".to_string()),
        (long_id, long_owner.clone()),
    ];
    for (id, owner) in &pairs {
        k.store(id, owner, "SECRET", b"v").unwrap();
    }
    let listed = keyring().list(true).unwrap();
    for (id, owner) in &pairs {
        let entry = listed
            .iter()
            .find(|e| &e.key_id == id && &e.owner == owner)
            .unwrap_or_else(|| panic!("({id:?}, {owner:?}) not listed"));
        assert_eq!(entry.key_type, Some(KeyType::Secret));
        assert_eq!(entry.state, Some(2), "Active");
    }
    for (id, owner) in &pairs {
        k.remove(id, owner).unwrap();
    }
    let listed = k.list(false).unwrap();
    assert!(!listed.iter().any(|e| e.key_id.starts_with(&base)));
}

#[test]
fn pykmip_client_sees_the_documented_name_and_an_active_key() {
    let k = keyring();
    let id = unique("visible");
    k.generate(&id, "app@10.0.0.%", "AES", 32).unwrap();
    let name = format!("mysql-keyring:app@10.0.0.%25:{id}");
    assert_eq!(object_name(&id, "app@10.0.0.%"), name);
    let found = tool(&["find", &name]);
    let objects = found.as_array().unwrap();
    assert_eq!(objects.len(), 1, "{found}");
    let object = &objects[0];
    assert_eq!(object["state"], "ACTIVE", "{object}");
    assert_eq!(object["length"], 256, "{object}");
    let material = tool(&["get", object["uid"].as_str().unwrap()]);
    let ours = k.fetch(&id, "app@10.0.0.%").unwrap().unwrap();
    assert_eq!(material["value_hex"], hex(&ours.material));
}

#[test]
fn concurrent_generates_of_one_key_make_exactly_one_object() {
    let k = Arc::new(keyring());
    let id = unique("race");
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (k, id, barrier) = (k.clone(), id.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                k.generate(&id, "", "AES", 32)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, KeyringError::AlreadyExists { .. }))
    );
    let found = tool(&["find", &object_name(&id, "")]);
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
}

#[test]
fn sixteen_threads_fetch_correct_bytes_two_hundred_times_each() {
    let k = Arc::new(keyring());
    let ids: Vec<(String, Vec<u8>)> = (0..4u8)
        .map(|i| (unique("hot"), vec![i.wrapping_mul(37).wrapping_add(1); 32]))
        .collect();
    for (id, bytes) in &ids {
        k.store(id, "", "AES", bytes).unwrap();
    }
    let ids = Arc::new(ids);
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let (k, ids) = (k.clone(), ids.clone());
            std::thread::spawn(move || {
                for i in 0..200 {
                    let (id, bytes) = &ids[(t + i) % ids.len()];
                    let key = k.fetch(id, "").unwrap().unwrap();
                    assert_eq!(&key.material[..], &bytes[..]);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn fetch_recovers_when_the_remembered_object_is_gone() {
    let k = keyring();
    let id = unique("stale-uid");
    k.store(&id, "", "SECRET", b"one").unwrap();
    assert_eq!(&k.fetch(&id, "").unwrap().unwrap().material[..], b"one");
    // Another keyring instance replaces the key behind this one's back.
    let other = keyring();
    other.remove(&id, "").unwrap();
    other.store(&id, "", "SECRET", b"two").unwrap();
    assert_eq!(&k.fetch(&id, "").unwrap().unwrap().material[..], b"two");
}

#[test]
fn a_key_not_in_memory_is_the_one_named_even_where_the_placeholder_names_another() {
    // PyKMIP 0.11 does not set the ID Placeholder from Locate: after another client's store
    // it names that client's object. The fetch must see that and read the key it located.
    let writer = keyring();
    let (a, b) = (unique("placeholder-a"), unique("placeholder-b"));
    writer.store(&a, "", "AES", &[0xA1; 32]).unwrap();
    writer.store(&b, "", "AES", &[0xB2; 32]).unwrap();
    let reader = keyring();
    reader.client().connect().unwrap();
    let requests = || reader.client().health().snapshot().requests;
    let before = requests();
    assert_eq!(
        &reader.fetch(&a, "").unwrap().expect("stored").material[..],
        &[0xA1; 32]
    );
    assert_eq!(
        requests() - before,
        2,
        "Locate (and the placeholder items), then the read"
    );
    let before = requests();
    assert_eq!(
        &reader.fetch(&b, "").unwrap().expect("stored").material[..],
        &[0xB2; 32]
    );
    assert_eq!(requests() - before, 2);
    writer.remove(&a, "").unwrap();
    writer.remove(&b, "").unwrap();
}

/// Keys known from an earlier run (the sealed key cache's identifiers and server) are read in
/// one message, each answer checked: an identifier that now names another key's object, or a
/// destroyed one, or one of another server, is left out, never served under the wrong name.
#[test]
fn keys_known_from_an_earlier_run_are_read_in_one_message_and_checked() {
    let first = keyring();
    let owner = "";
    let ids: Vec<String> = (0..3).map(|i| unique(&format!("known{i}"))).collect();
    let mut bytes = Vec::new();
    let mut uids = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let material = [i as u8 + 7; 32];
        first.store(id, owner, "AES", &material).unwrap();
        assert_eq!(
            &first.fetch(id, owner).unwrap().unwrap().material[..],
            &material
        );
        bytes.push(material);
        uids.push(first.known_uid(id, owner).unwrap());
    }
    let server = first.known(&ids[0], owner).unwrap().1;
    // The third key is removed: its identifier names a destroyed object now.
    first.remove(&ids[2], owner).unwrap();
    let wrong = unique("known-wrong");

    let second = keyring();
    // Connected, as at a start that reached its server.
    second.client().connect().unwrap();
    let before = second.client().health().snapshot().requests;
    let asked = vec![
        (
            ids[0].clone(),
            owner.to_string(),
            uids[0].clone(),
            server.clone(),
        ),
        (
            ids[1].clone(),
            owner.to_string(),
            uids[1].clone(),
            server.clone(),
        ),
        (
            ids[2].clone(),
            owner.to_string(),
            uids[2].clone(),
            server.clone(),
        ),
        // The first key's object under another name: not that name's key.
        (
            wrong.clone(),
            owner.to_string(),
            uids[0].clone(),
            server.clone(),
        ),
        // An identifier of another server is not even asked.
        (
            ids[1].clone(),
            "x".to_string(),
            uids[1].clone(),
            "192.0.2.1:5696".to_string(),
        ),
    ];
    let read = second.read_known(&asked).unwrap();
    assert_eq!(second.client().health().snapshot().requests - before, 1);
    let got: Vec<(&str, &[u8])> = read
        .iter()
        .map(|(id, _, key)| (id.as_str(), &key.material[..]))
        .collect();
    assert_eq!(
        got,
        vec![
            (ids[0].as_str(), &bytes[0][..]),
            (ids[1].as_str(), &bytes[1][..])
        ]
    );
    // Read keys are remembered: a fetch is one round trip, and the same bytes.
    assert_eq!(second.known_uid(&ids[0], owner), Some(uids[0].clone()));
    assert_eq!(second.known_uid(&wrong, owner), None);
    assert_eq!(
        &second.fetch(&ids[1], owner).unwrap().unwrap().material[..],
        &bytes[1][..]
    );
    for id in &ids[..2] {
        first.remove(id, owner).unwrap();
    }
}
