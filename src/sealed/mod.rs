//! The sealed key cache (opt-in): the keys this server has fetched or made, kept in one
//! encrypted file so that a restart while no KMIP server answers can still open the data.
//!
//! Rules (documented in the security notes):
//! - The file is AES-256-GCM under a key derived from ssl/key.pem (`file.rs`), bound to the
//!   product, the client identity and the server list; mode 0600, this account's, refused
//!   otherwise.
//! - Keys are served from it only when no KMIP server answers at all (`is_unreachable`): a
//!   server that answers and refuses (a revoked certificate, a key not found) is obeyed.
//! - Served keys are read-only: writes go to the KMIP server or fail.
//! - Each key carries when a KMIP server last said it is the key; past the maximum age it is
//!   not served.
//! - While a server answers, every cached key is confirmed again (`confirm`): a key revoked,
//!   destroyed or renamed on the KMIP server is dropped at once, and the log says which.
//! - Confirmations and writes that raced are ordered by an epoch, so an older answer never
//!   undoes a newer keep or forget.

mod error;
pub mod file;
pub mod for_keyring;
mod keeper;

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

pub use error::SealedError;
pub use file::{Absent, Binding, Entries, Entry};

/// A key a KMIP server answered for this recently (a fetch, or the key cache's fill at start)
/// is not asked again by a confirmation: the answer is that fresh already.
const JUST_CONFIRMED_SECS: u64 = 2;

/// Keys remembered as absent, at most (mysqld asks for a few at start; keyring_udf misses are
/// not worth a growing file).
const MAX_ABSENT: usize = 1024;

/// What the cache answers for a key while no KMIP server does.
pub enum Served {
    Key(FetchedKey),
    /// The KMIP server said there is no such key, and no later answer said otherwise.
    Absent,
}
pub use keeper::Keeper;

use crate::config::ConfDir;
use crate::keyring::FetchedKey;

/// Which library keeps the cache: its file name and log prefix, and the setting that turns it
/// on (named in messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Product {
    pub name: &'static str,
    pub setting: &'static str,
}

pub const PLUGIN: Product = Product {
    name: "keyring_okv",
    setting: "keyring_okv_sealed_cache_max_age_hours",
};
pub const COMPONENT: Product = Product {
    name: "component_keyring_okv",
    setting: "sealed_cache_max_age_hours",
};
pub const MARIADB: Product = Product {
    name: "kmip_key_management",
    setting: "kmip_key_management_sealed_cache_max_age_hours",
};

/// The file of `product` in the configuration directory `dir`.
pub fn path_in(dir: &Path, product: &Product) -> PathBuf {
    dir.join(format!("{}.sealed", product.name))
}

/// What a KMIP server said of a cached key when it was confirmed.
pub enum Answer {
    /// The key under that name now: its bytes and object.
    Key { key: FetchedKey, uid: String },
    /// No usable key of that name (removed, revoked, destroyed).
    Gone,
    /// No server answered.
    Unreachable(String),
    /// The server answered with an error; the key stays, unconfirmed.
    Failed(String),
}

/// What the status variables show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub keys: usize,
    /// Keys are being answered from the file because no KMIP server answers.
    pub serving: bool,
    /// Seconds since the least recently confirmed key was confirmed (0 without keys).
    pub oldest_confirmation_age: u64,
    /// Keys dropped because the KMIP server no longer has them.
    pub dropped: u64,
    /// When the last complete confirmation finished, Unix seconds (0 = not yet).
    pub last_confirmed: u64,
}

#[derive(Default)]
struct State {
    entries: Entries,
    absent: Absent,
    /// Bumped by every keep and forget, so that a confirmation that started before one does
    /// not apply its older answer to that key.
    epoch: u64,
    /// Which epoch last changed each key.
    changed_at: std::collections::HashMap<(String, String), u64>,
    /// Confirmation times updated in memory and not yet written.
    dirty: bool,
    /// Since when keys are answered from the file (Unix seconds).
    serving_since: Option<u64>,
    too_old_logged: bool,
    write_error_logged: bool,
    dropped: u64,
    last_confirmed: u64,
    closed: bool,
    /// The keeper is asked to confirm now (a server answered while serving).
    wake: bool,
}

pub struct SealedCache {
    path: PathBuf,
    key: Zeroizing<[u8; 32]>,
    binding: Binding,
    max_age: Duration,
    product: Product,
    /// Keep keys with an owner (keyring_udf's, a user's): only when asked.
    user_keys: bool,
    state: Mutex<State>,
    changed: Condvar,
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// "2 h 5 min", "40 s".
pub fn age_text(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} days {} h", s / 86_400, s % 86_400 / 3600),
    }
}

fn binding_text(b: &Binding) -> String {
    format!(
        "client '{}' and servers {}",
        b.identity,
        if b.servers.is_empty() {
            "(none)".to_string()
        } else {
            b.servers.join(",")
        }
    )
}

impl SealedCache {
    /// The cache of `product` for the configuration `conf`, with what its file holds. A file
    /// with wrong permissions is refused (Err: run without a sealed cache); one that does not
    /// open for this configuration is logged and replaced at the next write.
    pub fn open(
        conf: &ConfDir,
        product: Product,
        max_age_hours: u64,
    ) -> Result<SealedCache, SealedError> {
        let binding = Binding {
            product: product.name.to_string(),
            identity: conf.identity.subject.clone(),
            servers: conf.servers.iter().map(ToString::to_string).collect(),
        };
        let key = conf.seal_root.key_for(product.name.as_bytes());
        Self::open_at(
            path_in(&conf.dir, &product),
            key,
            binding,
            product,
            max_age_hours,
        )
    }

    /// As [`open`](Self::open), with everything given (tests, the admin tool).
    pub fn open_at(
        path: PathBuf,
        key: Zeroizing<[u8; 32]>,
        binding: Binding,
        product: Product,
        max_age_hours: u64,
    ) -> Result<SealedCache, SealedError> {
        let mut state = State::default();
        if let Some(bytes) = file::read(&path)? {
            match file::open(&path, &key, &bytes) {
                Ok(c) if c.binding == binding => {
                    state.entries = c.entries;
                    state.absent = c.absent;
                }
                Ok(c) => tracing::warn!(
                    "{}: {}",
                    product.name,
                    SealedError::OtherConfiguration {
                        path: path.clone(),
                        was: binding_text(&c.binding),
                        now: binding_text(&binding),
                    }
                ),
                Err(e) => tracing::warn!("{}: {e}", product.name),
            }
        }
        Ok(SealedCache {
            path,
            key,
            binding,
            max_age: Duration::from_secs(max_age_hours.saturating_mul(3600)),
            product,
            user_keys: false,
            state: Mutex::new(state),
            changed: Condvar::new(),
        })
    }

    /// Keeps keys that have an owner too (keyring_udf keys, of a user); by default only the
    /// server's own keys (InnoDB, binary log: no owner) are kept.
    pub fn with_user_keys(mut self, on: bool) -> Self {
        self.user_keys = on;
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The names of the cached keys.
    pub fn names(&self) -> Vec<(String, String)> {
        self.state().entries.keys().cloned().collect()
    }

    /// (key id, owner, KMIP unique identifier, server) of every cached key.
    pub fn known_objects(&self) -> Vec<(String, String, String, String)> {
        self.state()
            .entries
            .iter()
            .map(|((id, owner), e)| (id.clone(), owner.clone(), e.uid.clone(), e.server.clone()))
            .collect()
    }

    /// Records a key a KMIP server has just given or made; the file is written when something
    /// changed (a key seen again only has its confirmation time renewed).
    pub fn keep(&self, key_id: &str, owner: &str, key: &FetchedKey, uid: &str, server: &str) {
        if !owner.is_empty() && !self.user_keys {
            return;
        }
        let now = now_unix();
        let id = (key_id.to_string(), owner.to_string());
        let mut state = self.state();
        if state.closed {
            return;
        }
        if state.serving_since.is_some() {
            state.wake = true;
            self.changed.notify_all();
        }
        if let Some(e) = state.entries.get_mut(&id)
            && e.uid == uid
            && e.key_type == key.key_type
            && e.material[..] == key.material[..]
        {
            e.confirmed_at = e.confirmed_at.max(now);
            state.dirty = true;
            return;
        }
        state.epoch += 1;
        let epoch = state.epoch;
        state.changed_at.insert(id.clone(), epoch);
        state.absent.remove(&id);
        state.entries.insert(
            id,
            Entry {
                key_type: key.key_type,
                material: key.material.clone(),
                uid: uid.to_string(),
                server: server.to_string(),
                kept_at: now,
                confirmed_at: now,
            },
        );
        self.write(&mut state);
    }

    /// Drops a key that was removed, or that a KMIP server said is gone, and remembers that it
    /// is absent.
    pub fn forget(&self, key_id: &str, owner: &str) {
        let id = (key_id.to_string(), owner.to_string());
        let now = now_unix();
        let mut state = self.state();
        state.epoch += 1;
        let epoch = state.epoch;
        state.changed_at.insert(id.clone(), epoch);
        let mut changed = state.entries.remove(&id).is_some();
        let remember = owner.is_empty() || self.user_keys;
        if remember {
            let room = state.absent.len() < MAX_ABSENT;
            match state.absent.get_mut(&id) {
                Some(at) => {
                    *at = now;
                    state.dirty = true;
                }
                None if room => {
                    state.absent.insert(id, now);
                    changed = true;
                }
                None => {}
            }
        }
        if changed && !state.closed {
            self.write(&mut state);
        }
    }

    /// Writes the file from `state`; one log line for the first failure of a row.
    fn write(&self, state: &mut State) {
        let result = file::seal(
            &self.key,
            &self.binding,
            now_unix(),
            &state.entries,
            &state.absent,
        )
        .and_then(|bytes| file::write_atomically(&self.path, &bytes));
        match result {
            Ok(()) => {
                state.dirty = false;
                if std::mem::take(&mut state.write_error_logged) {
                    tracing::info!(
                        "{}: the sealed key cache {} is written again",
                        self.product.name,
                        self.path.display()
                    );
                }
            }
            Err(e) => {
                if !std::mem::replace(&mut state.write_error_logged, true) {
                    tracing::error!("{}: {e}", self.product.name);
                }
            }
        }
    }

    /// The key, answered from the file because no KMIP server answers (`cause`). None when it
    /// is not cached; an error past the maximum age.
    pub fn serve(
        &self,
        key_id: &str,
        owner: &str,
        cause: &dyn std::fmt::Display,
    ) -> Result<Option<Served>, SealedError> {
        let now = now_unix();
        let mut state = self.state();
        if state.closed {
            return Ok(None);
        }
        let id = (key_id.to_string(), owner.to_string());
        let (confirmed_at, key) = match (state.entries.get(&id), state.absent.get(&id)) {
            (Some(e), _) => (
                e.confirmed_at,
                Served::Key(FetchedKey {
                    key_type: e.key_type,
                    material: e.material.clone(),
                }),
            ),
            (None, Some(at)) => (*at, Served::Absent),
            (None, None) => return Ok(None),
        };
        let age = now.saturating_sub(confirmed_at);
        if age > self.max_age.as_secs() {
            let err = SealedError::TooOld {
                path: self.path.clone(),
                key_id: key_id.to_string(),
                age: age_text(age),
                setting: self.product.setting,
                hours: self.max_age.as_secs() / 3600,
            };
            if !std::mem::replace(&mut state.too_old_logged, true) {
                tracing::error!("{}: {err}", self.product.name);
            }
            return Err(err);
        }
        if state.serving_since.is_none() {
            state.serving_since = Some(now);
            let oldest = state
                .entries
                .values()
                .map(|e| now.saturating_sub(e.confirmed_at))
                .max()
                .unwrap_or(0);
            tracing::warn!(
                "{}: no KMIP server answers ({cause}); answering keys read-only from the sealed key cache {} ({} keys, confirmed by a KMIP server at most {} ago; limit {}={} hours). Generating, storing, removing and rotating keys are refused until a KMIP server answers",
                self.product.name,
                self.path.display(),
                state.entries.len(),
                age_text(oldest),
                self.product.setting,
                self.max_age.as_secs() / 3600,
            );
        }
        Ok(Some(key))
    }

    /// Whether keys are being answered from the file.
    pub fn is_serving(&self) -> bool {
        self.state().serving_since.is_some()
    }

    /// The message of a write refused while the keys are served from the file: `error` is the
    /// write's own failure to reach a server.
    pub fn write_refused(&self, error: &dyn std::fmt::Display) -> String {
        format!(
            "keys are being served read-only from the sealed key cache {} because no KMIP server answers; generating, storing, removing and rotating keys need a KMIP server: {error}",
            self.path.display()
        )
    }

    /// Asks the KMIP server about every cached key (`ask`), drops those it no longer has, and
    /// renews the others. Returns the failure when no server answered.
    pub fn confirm(&self, mut ask: impl FnMut(&str, &str) -> Answer) -> Result<(), String> {
        let started = now_unix();
        let stale = |t: u64| started.saturating_sub(t) >= JUST_CONFIRMED_SECS;
        let (start_epoch, snapshot, absent): (u64, Vec<_>, Vec<_>) = {
            let state = self.state();
            let list = state
                .entries
                .iter()
                .filter(|(_, e)| stale(e.confirmed_at))
                .map(|(id, e)| (id.clone(), e.uid.clone(), e.material.clone(), e.key_type))
                .collect();
            let absent = state
                .absent
                .iter()
                .filter(|(_, t)| stale(**t))
                .map(|(id, _)| id.clone())
                .collect();
            (state.epoch, list, absent)
        };
        let mut outcomes = Vec::with_capacity(snapshot.len());
        let mut unreachable = None;
        let mut failed = 0usize;
        for (id, uid, material, key_type) in &snapshot {
            match ask(&id.0, &id.1) {
                Answer::Key { key, uid: now_uid } => {
                    let same = &now_uid == uid
                        && key.key_type == *key_type
                        && key.material[..] == material[..];
                    outcomes.push((id.clone(), uid.clone(), same, now_uid));
                }
                Answer::Gone => outcomes.push((id.clone(), uid.clone(), false, String::new())),
                Answer::Unreachable(why) => {
                    unreachable = Some(why);
                    break;
                }
                Answer::Failed(why) => {
                    failed += 1;
                    tracing::warn!(
                        "{}: key '{}' of the sealed key cache could not be confirmed: {why}",
                        self.product.name,
                        id.0
                    );
                }
            }
        }
        // Keys remembered as absent: still absent (renewed), or there now (forgotten: the next
        // read keeps it).
        let mut absent_outcomes = Vec::new();
        if unreachable.is_none() {
            for id in absent {
                match ask(&id.0, &id.1) {
                    Answer::Gone => absent_outcomes.push((id, true)),
                    Answer::Key { .. } => absent_outcomes.push((id, false)),
                    Answer::Unreachable(why) => {
                        unreachable = Some(why);
                        break;
                    }
                    Answer::Failed(_) => failed += 1,
                }
            }
        }
        let mut state = self.state();
        if state.closed {
            return Ok(());
        }
        let mut changed = false;
        for (id, still_absent) in absent_outcomes {
            if state.changed_at.get(&id).is_some_and(|&e| e > start_epoch) {
                continue;
            }
            if still_absent {
                if let Some(at) = state.absent.get_mut(&id) {
                    *at = (*at).max(started);
                    state.dirty = true;
                }
            } else if state.absent.remove(&id).is_some() {
                changed = true;
            }
        }
        for (id, uid, same, now_uid) in outcomes {
            // A keep or forget since the confirmation started knows better.
            if state.changed_at.get(&id).is_some_and(|&e| e > start_epoch) {
                continue;
            }
            let Some(e) = state.entries.get_mut(&id) else {
                continue;
            };
            if e.uid != uid {
                continue;
            }
            if same {
                e.confirmed_at = e.confirmed_at.max(started);
                state.dirty = true;
            } else {
                state.entries.remove(&id);
                state.dropped += 1;
                changed = true;
                let why = if now_uid.is_empty() {
                    "the KMIP server no longer has it as an active key (revoked, destroyed or removed)"
                        .to_string()
                } else {
                    format!("its name now belongs to KMIP object {now_uid}")
                };
                tracing::warn!(
                    "{}: key '{}'{} (KMIP object {uid}) dropped from the sealed key cache: {why}",
                    self.product.name,
                    id.0,
                    if id.1.is_empty() {
                        String::new()
                    } else {
                        format!(" of owner '{}'", id.1)
                    },
                );
            }
        }
        if changed || state.dirty {
            self.write(&mut state);
        }
        if let Some(why) = unreachable {
            return Err(why);
        }
        if failed == 0 {
            state.last_confirmed = started;
        }
        if state.serving_since.take().is_some() {
            tracing::info!(
                "{}: a KMIP server answers again; keys come from it again, and the sealed key cache is confirmed ({} keys, {} dropped so far)",
                self.product.name,
                state.entries.len(),
                state.dropped
            );
        }
        Ok(())
    }

    pub fn status(&self) -> Status {
        let now = now_unix();
        let state = self.state();
        Status {
            keys: state.entries.len(),
            serving: state.serving_since.is_some(),
            oldest_confirmation_age: state
                .entries
                .values()
                .map(|e| now.saturating_sub(e.confirmed_at))
                .max()
                .unwrap_or(0),
            dropped: state.dropped,
            last_confirmed: state.last_confirmed,
        }
    }

    /// Writes what is pending and refuses everything after (unload, a new configuration).
    pub fn close(&self) {
        let mut state = self.state();
        if state.dirty {
            self.write(&mut state);
        }
        state.closed = true;
        state.entries.clear();
        self.changed.notify_all();
    }

    /// Waits until `timeout` passes, the cache is closed, or a confirmation is wanted now.
    /// True when closed.
    fn wait(&self, timeout: Duration) -> bool {
        let state = self.state();
        let (mut state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |s| !s.closed && !s.wake)
            .unwrap_or_else(PoisonError::into_inner);
        state.wake = false;
        state.closed
    }
}

impl std::fmt::Debug for SealedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedCache")
            .field("path", &self.path)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}
