//! The guard of a MySQL product (the keyring plugin and the component): one [`Guard`] and its
//! polling thread per keyring in force, fed with the (key id, owner) pairs the product serves.

use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Instant;

use super::{Guard, Poller, Settings, Status, WatchedKey, mysql_next_step};
use crate::keyring::{Keyring, object_name, parse_object_name};

struct InForce {
    keyring: Weak<Keyring>,
    guard: Arc<Guard>,
    poller: Poller,
}

/// Drops a (key id, owner) from every cache of the product (`key_state_action = refuse`).
pub type DropCached = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// The guard slot of one product.
pub struct KeyringGuard {
    product: &'static str,
    settings: RwLock<Settings>,
    in_force: RwLock<Option<Arc<InForce>>>,
    /// Guards replaced while the guard is turned off (a reload with `key_state_poll_seconds`
    /// 0): told to stop, and joined at unload, so that a reload never waits on a poll.
    retired: Mutex<Vec<Arc<InForce>>>,
}

impl KeyringGuard {
    pub const fn new(product: &'static str) -> Self {
        KeyringGuard {
            product,
            settings: RwLock::new(Settings {
                poll: std::time::Duration::from_secs(super::DEFAULT_POLL_SECONDS),
                action: super::Action::Warn,
            }),
            in_force: RwLock::new(None),
            retired: Mutex::new(Vec::new()),
        }
    }

    /// The settings of the next [`start`](Self::start).
    pub fn set_settings(&self, settings: Settings) {
        *self
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner) = settings;
    }

    pub fn settings(&self) -> Settings {
        *self.settings.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts watching the keys `keyring` serves (a configuration put in force); the guard of
    /// the one before is stopped by the new thread, not under the caller's lock.
    pub fn start(&self, keyring: &Arc<Keyring>, drop_cached: DropCached) {
        let settings = self.settings();
        let old = self
            .in_force
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if !settings.is_on() {
            if let Some(old) = old {
                old.poller.request_stop();
                self.retired
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(old);
            }
            return;
        }
        let guard = Arc::new(Guard::new(self.product, settings, move |k: &WatchedKey| {
            if let Some((key_id, owner)) = parse_object_name(&k.name) {
                drop_cached(&key_id, &owner);
            }
        }));
        let weak = Arc::downgrade(keyring);
        let (mine, product) = (guard.clone(), self.product);
        let poller = Poller::start_after(
            settings.poll,
            move || {
                if let Some(old) = old {
                    stop(product, &old);
                }
            },
            move || {
                if let Some(keyring) = weak.upgrade() {
                    let client = keyring.client();
                    mine.poll(client, Instant::now() + client.call_budget());
                }
            },
        );
        match poller {
            Ok(poller) => {
                *self
                    .in_force
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(InForce {
                    keyring: Arc::downgrade(keyring),
                    guard,
                    poller,
                }));
            }
            Err(e) => tracing::error!(
                "{}: cannot start the thread that polls the state of the keys in use ({e}); revoked keys are noticed at the next restart only",
                self.product
            ),
        }
    }

    /// Stops the guard and joins its thread (unload; the caller closed the KMIP client first,
    /// so a poll in flight ends at once).
    pub fn stop(&self) {
        let old = self
            .in_force
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(old) = old {
            stop(self.product, &old);
        }
        let retired: Vec<_> = self
            .retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for old in retired {
            stop(self.product, &old);
        }
    }

    fn for_keyring(&self, keyring: &Arc<Keyring>) -> Option<Arc<InForce>> {
        self.in_force
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .filter(|g| Weak::ptr_eq(&g.keyring, &Arc::downgrade(keyring)))
    }

    /// A key of `keyring` is about to be served: watched from now on, or false when it was
    /// found revoked with `key_state_action = refuse` and must not be served.
    pub fn serve(&self, keyring: &Arc<Keyring>, key_id: &str, owner: &str) -> bool {
        let Some(g) = self.for_keyring(keyring) else {
            return true;
        };
        // The object the keyring knows the pair by; a key served from the sealed cache
        // while no server answers may have none yet.
        let Some((uid, server)) = keyring.known(key_id, owner) else {
            return true;
        };
        if g.guard.refuses_any() && g.guard.refuses(&server, &uid) {
            return false;
        }
        g.guard.watch(WatchedKey {
            uid,
            server,
            name: object_name(key_id, owner),
            key: if owner.is_empty() {
                key_id.to_string()
            } else {
                format!("{key_id} of {owner}")
            },
            next_step: mysql_next_step(key_id),
        });
        true
    }

    /// A key was removed by this process.
    pub fn removed(&self, keyring: &Arc<Keyring>, key_id: &str, owner: &str) {
        if let Some(g) = self.for_keyring(keyring) {
            g.guard.unwatch(&object_name(key_id, owner));
        }
    }

    /// The guard's figures; `off` when `key_state_poll_seconds` is 0 or no configuration is
    /// in force.
    pub fn status(&self) -> Status {
        match &*self.in_force.read().unwrap_or_else(PoisonError::into_inner) {
            Some(g) => g.guard.status(),
            None => Status {
                last_result: "off".into(),
                ..Status::default()
            },
        }
    }
}

fn stop(product: &str, old: &InForce) {
    let wait = crate::connector::runtime::THREAD_WAIT;
    if !old.poller.stop(Instant::now() + wait) {
        tracing::error!(
            "{product}: the key state guard's thread was still running {} s after it was asked to stop",
            wait.as_secs()
        );
    }
}
