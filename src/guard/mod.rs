//! The key-state guard: a key revoked on the KMIP server reaches the database within one poll,
//! an outage reaches none.
//!
//! Each product tells its [`Guard`] of every key it serves ([`Guard::watch`]); a thread
//! ([`Poller`]) asks the server that named each key for its State every
//! `key_state_poll_seconds`, many keys to a message ([`poll::ask`]). Only an answer about the
//! object counts ([`verdict`]): Deactivated, Compromised, Destroyed, not found, or its name now
//! held by another object is a revocation; no answer, a timeout, a refused connection, a TLS
//! failure or an error not about the object is an outage, counted and logged once.
//!
//! A revocation is logged once per key as one ERROR line with the statement to run next; with
//! `key_state_action = refuse` the key is also dropped from the product's caches (the callback
//! given to [`Guard::new`]) and never served again by this process ([`Guard::refuses`]).

pub mod for_keyring;
pub mod poll;
mod poller;
mod settings;
pub mod verdict;
mod watched;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::connector::KmipClient;
pub use poller::Poller;
pub use settings::{Action, DEFAULT_POLL_SECONDS, Settings};
pub use verdict::{Revocation, Verdict};
pub use watched::{WatchedKey, mariadb_next_step, mysql_next_step};

/// (server, uid): an identifier means something only at the server that gave it.
type Id = (String, String);

fn id(server: &str, uid: &str) -> Id {
    (server.to_string(), uid.to_string())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a product shows of its guard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub keys_watched: usize,
    /// Keys found revoked while in use (each counted once).
    pub revoked_in_use: usize,
    /// When the last poll ended, seconds since 1970; None before the first.
    pub last_poll: Option<u64>,
    /// `off`, `none yet`, `ok`, `revoked: <keys>` or `outage: <why>`.
    pub last_result: String,
    pub polls: u64,
    /// Polls in which at least one key could not be asked.
    pub outages: u64,
}

#[derive(Default)]
struct PollState {
    last_poll: Option<u64>,
    last_result: Option<String>,
    polls: u64,
    outages: u64,
    /// An outage was logged and has not ended yet.
    in_outage: bool,
}

type OnAction = Box<dyn Fn(&WatchedKey) + Send + Sync>;

pub struct Guard {
    /// How the product names itself in log lines.
    product: &'static str,
    settings: Settings,
    keys: Mutex<BTreeMap<Id, WatchedKey>>,
    revoked: Mutex<BTreeMap<Id, (WatchedKey, Revocation)>>,
    refused: Mutex<HashSet<Id>>,
    state: Mutex<PollState>,
    on_action: OnAction,
}

impl Guard {
    /// A guard with `settings`; `on_action` carries out `settings.action` for a revoked key
    /// (`Refuse`: drop it from the product's caches; `Rotate`: make a new version), once per
    /// key, from the polling thread; never called with `Warn`.
    pub fn new(
        product: &'static str,
        settings: Settings,
        on_action: impl Fn(&WatchedKey) + Send + Sync + 'static,
    ) -> Guard {
        Guard {
            product,
            settings,
            keys: Mutex::default(),
            revoked: Mutex::default(),
            refused: Mutex::default(),
            state: Mutex::default(),
            on_action: Box::new(on_action),
        }
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// A key was served. A key served under a name watched with another object replaces it:
    /// the name moved on (a rotation, a key replaced), the old object is no longer served.
    pub fn watch(&self, key: WatchedKey) {
        if !self.settings.is_on() {
            return;
        }
        let mut keys = lock(&self.keys);
        let this = id(&key.server, &key.uid);
        if keys.contains_key(&this) {
            return;
        }
        keys.retain(|(server, uid), k| {
            !(k.name == key.name && (server != &key.server || uid != &key.uid))
        });
        keys.insert(this, key);
    }

    /// A key was removed by this process: it is no longer in use.
    pub fn unwatch(&self, name: &str) {
        lock(&self.keys).retain(|_, k| k.name != name);
    }

    /// Whether this process must not serve object `uid` of `server` (found revoked with
    /// `key_state_action = refuse`).
    pub fn refuses(&self, server: &str, uid: &str) -> bool {
        lock(&self.refused).contains(&id(server, uid))
    }

    /// Whether any key is refused: the product's fast path skips the look-up when none is.
    pub fn refuses_any(&self) -> bool {
        !lock(&self.refused).is_empty()
    }

    pub fn watched(&self) -> Vec<WatchedKey> {
        lock(&self.keys).values().cloned().collect()
    }

    pub fn status(&self) -> Status {
        let state = lock(&self.state);
        let last_result = if !self.settings.is_on() {
            "off".to_string()
        } else {
            state
                .last_result
                .clone()
                .unwrap_or_else(|| "none yet".to_string())
        };
        Status {
            keys_watched: lock(&self.keys).len(),
            revoked_in_use: lock(&self.revoked).len(),
            last_poll: state.last_poll,
            last_result,
            polls: state.polls,
            outages: state.outages,
        }
    }

    /// One poll of every key in use with `client`, under one deadline.
    pub fn poll(&self, client: &KmipClient, deadline: Instant) {
        // Revoked keys are asked about again: the status shows them in every poll's result
        // while they are in use, and an outage is counted for them too.
        let keys: Vec<WatchedKey> = lock(&self.keys).values().cloned().collect();
        let verdicts = if keys.is_empty() {
            Vec::new()
        } else {
            poll::ask(client, &keys, deadline)
        };
        self.record(&keys, &verdicts);
    }

    /// Acts on the verdicts of one poll and records its result.
    pub fn record(&self, keys: &[WatchedKey], verdicts: &[Verdict]) {
        let mut revoked_now = Vec::new();
        let mut outage: Option<(usize, String)> = None;
        for (key, verdict) in keys.iter().zip(verdicts) {
            match verdict {
                Verdict::InForce => {}
                Verdict::Revoked(why) => {
                    self.revoked_key(key, why);
                    revoked_now.push(key.key.clone());
                }
                Verdict::Unknown(why) => {
                    let entry = outage.get_or_insert_with(|| (0, why.clone()));
                    entry.0 += 1;
                }
            }
        }
        let mut state = lock(&self.state);
        state.polls += 1;
        state.last_poll = Some(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        );
        let result = match (&outage, revoked_now.is_empty()) {
            (Some((n, why)), _) => {
                state.outages += 1;
                if !state.in_outage {
                    state.in_outage = true;
                    tracing::warn!(
                        "{}: key state poll: {n} of {} key(s) in use could not be asked about ({why}); nothing is done about them until a server answers",
                        self.product,
                        keys.len()
                    );
                }
                format!("outage: {why}")
            }
            (None, _) => {
                if state.in_outage {
                    state.in_outage = false;
                    tracing::info!(
                        "{}: key state poll: every key in use was asked about again",
                        self.product
                    );
                }
                if revoked_now.is_empty() {
                    "ok".to_string()
                } else {
                    format!("revoked: {}", revoked_now.join(", "))
                }
            }
        };
        // A revocation outranks an outage of other keys in the result shown.
        state.last_result = Some(if revoked_now.is_empty() || outage.is_none() {
            result
        } else {
            format!("revoked: {}; {result}", revoked_now.join(", "))
        });
    }

    fn revoked_key(&self, key: &WatchedKey, why: &Revocation) {
        let this = id(&key.server, &key.uid);
        // Only the polling thread gets here, so nothing comes between this look and the insert.
        if lock(&self.revoked).contains_key(&this) {
            return;
        }
        let action = self.settings.action;
        tracing::error!(
            "{}: key '{}' (KMIP object {} of server {}) is {} on the KMIP server and still in use; run {}{}",
            self.product,
            key.key,
            key.uid,
            key.server,
            why.describe(),
            key.next_step,
            match action {
                Action::Warn => "",
                Action::Refuse =>
                    "; key_state_action=refuse: it is no longer served by this process",
                Action::Rotate => "; key_state_action=rotate: a new version is made",
            }
        );
        if action == Action::Refuse {
            lock(&self.refused).insert(this.clone());
        }
        if action != Action::Warn {
            (self.on_action)(key);
        }
        // Counted once the action is done: whoever sees the count sees its effect.
        lock(&self.revoked).insert(this, (key.clone(), why.clone()));
    }
}
