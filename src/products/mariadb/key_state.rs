//! The key-state guard of kmip_key_management: the key versions read from the KMIP server are
//! watched (see `crate::guard`), and one found revoked there is reported with the rotation to
//! run, or with `kmip_key_management_key_state_action = refuse` dropped and never served again.

use std::sync::{Arc, Weak};
use std::time::Instant;

use super::host::PLUGIN_NAME;
use super::naming::parse_object_name;
use super::store::KeyStore;
use crate::guard::{Action, Guard, Poller, Settings, Status};

pub struct StoreGuard {
    guard: Arc<Guard>,
    poller: Poller,
}

impl StoreGuard {
    /// Watches the versions `store` reads from now on; None when the guard is off.
    pub fn start(store: &Arc<KeyStore>, settings: Settings) -> std::io::Result<Option<Self>> {
        if !settings.is_on() {
            return Ok(None);
        }
        let weak: Weak<KeyStore> = Arc::downgrade(store);
        let refuse_in = weak.clone();
        let action = settings.action;
        let guard = Arc::new(Guard::new(PLUGIN_NAME, settings, move |key| {
            if let Some(store) = refuse_in.upgrade()
                && let Some((key_id, version)) = parse_object_name(store.namespace(), &key.name)
            {
                match action {
                    // InnoDB asks for the latest version on every page write: a refused latest
                    // version is replaced first, so that writes go on with the new one.
                    Action::Refuse => {
                        rotate(&store, key_id, version, action);
                        store.refuse(key_id, version);
                    }
                    Action::Rotate => rotate(&store, key_id, version, action),
                    Action::Warn => {}
                }
            }
        }));
        store.set_guard(guard.clone());
        let mine = guard.clone();
        let poller = Poller::start(settings.poll, move || {
            if let Some(store) = weak.upgrade() {
                let client = store.client();
                mine.poll(client, Instant::now() + client.call_budget());
            }
        })?;
        Ok(Some(StoreGuard { guard, poller }))
    }

    pub fn status(&self) -> Status {
        self.guard.status()
    }

    /// Stops the polls and joins the thread by `deadline` (the caller closed the client).
    pub fn stop(&self, deadline: Instant) -> bool {
        self.poller.stop(deadline)
    }
}

/// A new version of `key_id` when the revoked `version` is its latest: InnoDB's encryption
/// threads then re-encrypt the pages of older versions. A revoked older version needs none:
/// its pages are already due for re-encryption.
fn rotate(store: &KeyStore, key_id: u32, version: u32, action: Action) {
    let action = action.name();
    if store.known_latest(key_id) != Some(version) {
        tracing::info!(
            "key {key_id} version {version} is not the latest version of key {key_id}; no new version is made"
        );
        return;
    }
    match store.rotate(Some(key_id)) {
        Ok(made) => {
            for (id, v) in made {
                tracing::warn!(
                    "key {id}: version {v} made because version {version} was revoked on the KMIP server (key_state_action={action}); with innodb_encryption_threads > 0 InnoDB re-encrypts the pages"
                );
            }
        }
        Err(e) => tracing::error!(
            "key {key_id}: the new version key_state_action={action} asked for was not made: {e}; run SET GLOBAL kmip_key_management_rotate_key = {key_id}"
        ),
    }
}
