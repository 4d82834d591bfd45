//! Object states and duplicate names against the real PyKMIP server. Its own test binary:
//! two Active objects under one name make every listing on that server fail (as they should),
//! so nothing else may list while the duplicate exists, and it is cleaned up even on failure.

#[path = "../common/mod.rs"]
mod common;

use common::pykmip::{lab, unique};
use okv_core::config::load_conf_dir;
use okv_core::connector::{KmipClient, Retry};
use okv_core::keyring::{Keyring, KeyringError, object_name};
use okv_core::kmip::ops;

fn keyring() -> Keyring {
    let conf = load_conf_dir(&lab().conf_dir).expect("the lab conf dir loads");
    Keyring::new(KmipClient::from_conf_dir(&conf).expect("client"))
}

/// Another client's object under `name`: Create, then Activate (and Revoke) as asked.
fn made_elsewhere(client: &KmipClient, name: &str, activate: bool, revoke: bool) -> String {
    let uid = client
        .request(&ops::create_aes(256, name), Retry::Never, ops::parse_create)
        .unwrap();
    if activate {
        client
            .request(&ops::activate(&uid), Retry::Never, |_| Ok(()))
            .unwrap();
    }
    if revoke {
        client
            .request(
                &ops::revoke(&uid, ops::DEFAULT_REVOCATION_REASON),
                Retry::Never,
                |_| Ok(()),
            )
            .unwrap();
    }
    uid
}

/// Revokes and destroys the objects when dropped, whatever happened.
struct Cleanup<'a>(&'a KmipClient, Vec<String>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for uid in &self.1 {
            let _ = self.0.request(
                &ops::revoke(uid, ops::DEFAULT_REVOCATION_REASON),
                Retry::Never,
                |_| Ok(()),
            );
            let _ = self.0.request(&ops::destroy(uid), Retry::Never, |_| Ok(()));
        }
    }
}

#[test]
fn pre_active_and_revoked_objects_are_not_keys_and_duplicates_are_reported() {
    let k = keyring();
    let client = k.client();

    // A Pre-Active and a revoked object under the key's name: the key does not exist.
    let id = unique("states");
    let name = object_name(&id, "");
    let pre_active = made_elsewhere(client, &name, false, false);
    let revoked = made_elsewhere(client, &name, true, true);
    let _cleanup = Cleanup(client, vec![pre_active.clone(), revoked.clone()]);
    assert!(k.fetch(&id, "").unwrap().is_none());
    assert!(!k.list(false).unwrap().iter().any(|e| e.key_id == id));
    // A fresh Pre-Active object may be another client's creation in progress: a generate
    // settles on it (see src/keyring/race.rs) and, as it is never activated, fails naming it.
    let err = k.generate(&id, "", "AES", 32).unwrap_err();
    assert!(matches!(err, KeyringError::Race { .. }), "{err}");
    assert!(err.to_string().contains(&pre_active), "{err}");
    // Once it is gone (or two minutes old), the key is made.
    client
        .request(&ops::destroy(&pre_active), Retry::Never, |_| Ok(()))
        .unwrap();
    k.generate(&id, "", "AES", 32).unwrap();
    let uid = k.known_uid(&id, "").unwrap();
    assert!(uid != pre_active && uid != revoked);
    assert_eq!(k.fetch(&id, "").unwrap().unwrap().material.len(), 32);
    assert_eq!(
        k.list(false)
            .unwrap()
            .iter()
            .filter(|e| e.key_id == id)
            .count(),
        1
    );
    // Remove retires the key and the leftovers under its name.
    k.remove(&id, "").unwrap();
    assert!(k.fetch(&id, "").unwrap().is_none());
    for uid in [&pre_active, &revoked] {
        let gone = client.request(&ops::get(uid), Retry::Idempotent, ops::parse_get);
        assert!(gone.is_err_and(|e| e.is_item_not_found()), "{uid}");
    }

    // Two Active objects under one name: reported with both, never chosen.
    let id = unique("dup");
    let name = object_name(&id, "");
    let first = made_elsewhere(client, &name, true, false);
    let second = made_elsewhere(client, &name, true, false);
    let _cleanup = Cleanup(client, vec![first.clone(), second.clone()]);
    let err = keyring().fetch(&id, "").unwrap_err();
    assert!(matches!(err, KeyringError::Duplicate { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&first) && text.contains(&second), "{text}");
    assert!(matches!(k.list(false), Err(KeyringError::Duplicate { .. })));
    assert!(matches!(
        k.remove(&id, ""),
        Err(KeyringError::Duplicate { .. })
    ));
}
