//! The opt-in key cache of the component (`cache_keys`) and of the plugin
//! (`keyring_okv_cache_keys`): what the KMIP server said about a key, served from memory for at
//! most the TTL (`cache_ttl_seconds`, `keyring_okv_cache_ttl_seconds`): its material, or that it
//! does not exist. InnoDB reads its master key at least twice per encrypted CREATE TABLE and
//! once per tablespace open, each a KMIP round trip without a cache.
//!
//! mysqld holds its keyring read lock for the whole of every read, and its lock lets readers in
//! while a writer waits: a read that goes to the KMIP server holds off every store, generate and
//! remove for as long as any other read is in flight. Remembering absence as well as presence,
//! and recording what a write made, keeps reads of a hot key off the network, so that the lock
//! is free between reads and writes get their turn.
//!
//! One read per key at a time goes to the server: concurrent reads of a key that is not
//! cached wait for its answer (they would otherwise queue for the one KMIP connection, each
//! holding mysqld's lock for every round trip ahead of it).
//!
//! Cannot go back in time, as the keyring's name memory: every write of a key (and every
//! forget) bumps an epoch, and what a read learned is kept only if no write happened since the
//! read started, so a read racing a remove or a store never puts the old answer back.
//!
//! Material lives in `Zeroizing` buffers: it is wiped when an entry expires (by the cache's own
//! thread at the deadline, not at the next lookup), is replaced or forgotten, and when the
//! cache is shut down or dropped (reload, a setting changed, unload), which also joins that
//! thread.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::{FetchedKey, KeyType};

/// What the KMIP server said about a key.
enum Known {
    Present {
        key_type: KeyType,
        material: Zeroizing<Vec<u8>>,
    },
    /// Its Locate found no usable object: never learned from an error.
    Absent,
}

struct Entry {
    known: Known,
    /// None: until cleared.
    expires: Option<Instant>,
}

/// A cached answer.
#[derive(Debug)]
pub enum Cached {
    Present(FetchedKey),
    Absent,
}

/// When a read started, in writes: taken before asking the server (see [`KeyCache::ticket`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket(u64);

#[derive(Default)]
struct State {
    /// (key id, owner) -> what is known. The owner is "" for the server's own keys.
    entries: HashMap<(String, String), Entry>,
    /// Bumped by every write and forget.
    epoch: u64,
    /// Shut down: nothing is inserted any more and the reaper ends.
    closed: bool,
    /// When the reaper wakes next (None: when told), so that an insert wakes it only when the
    /// new entry expires sooner.
    reaper_wakes: Option<Instant>,
    /// Expired entries wiped by the reaper so far.
    reaped: u64,
    /// Keys being read from the server, and by how many readers (more than one only when a
    /// read outlived the wait of the others).
    loading: HashMap<(String, String), usize>,
    /// Readers waiting for another's read.
    waiting: usize,
}

struct Shared {
    ttl: Option<Duration>,
    state: Mutex<State>,
    /// Wakes the reaper: an entry that expires sooner than it would wake, or shutdown.
    wake: Condvar,
    /// Signalled after every pass of the reaper that wiped something.
    reaped: Condvar,
    /// Signalled when a read from the server ends, and when a reader starts waiting for one.
    loaded: Condvar,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // An entry is inserted whole or not at all: a panic elsewhere leaves nothing torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The reaper: sleeps until the earliest expiry and wipes what expired, until shutdown.
    fn reap(&self) {
        let mut state = self.state();
        loop {
            if state.closed {
                return;
            }
            let now = Instant::now();
            let before = state.entries.len();
            // Dropping an entry wipes its material.
            state
                .entries
                .retain(|_, e| e.expires.is_none_or(|at| at > now));
            let wiped = before - state.entries.len();
            if wiped > 0 {
                state.reaped += wiped as u64;
                self.reaped.notify_all();
            }
            let next = state.entries.values().filter_map(|e| e.expires).min();
            state.reaper_wakes = next;
            state = match next {
                None => self
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(at) => {
                    self.wake
                        .wait_timeout(state, at.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

/// A copy of what is known of `id`, if anything and not expired.
fn known(state: &mut State, id: &(String, String), now: Instant) -> Option<Cached> {
    let entry = state.entries.get(id)?;
    if entry.expires.is_some_and(|at| now >= at) {
        // Expired a moment ago and the reaper has not run yet.
        state.entries.remove(id);
        return None;
    }
    Some(match &entry.known {
        Known::Present { key_type, material } => Cached::Present(FetchedKey {
            key_type: *key_type,
            material: Zeroizing::new(material.to_vec()),
        }),
        Known::Absent => Cached::Absent,
    })
}

/// The outcome of [`KeyCache::lookup`].
pub enum Lookup<'a> {
    Known(Cached),
    /// Not known: read it from the server and report the answer with [`Loading::finish`];
    /// dropping it unfinished (the read failed) lets the next waiting reader try.
    Load(Loading<'a>),
}

pub struct Loading<'a> {
    cache: &'a KeyCache,
    ticket: Ticket,
    id: (String, String),
}

impl Loading<'_> {
    /// Keeps the answer (the key, or None: the server has no usable object for it) unless a
    /// write happened since the read started.
    pub fn finish(self, key: Option<&FetchedKey>) {
        self.cache
            .remember(&self.id.0, &self.id.1, key, self.ticket);
    }
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        let mut state = self.cache.shared.state();
        if let Some(n) = state.loading.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                state.loading.remove(&self.id);
            }
        }
        self.cache.shared.loaded.notify_all();
    }
}

pub struct KeyCache {
    shared: Arc<Shared>,
    /// The reaper thread, when entries expire; joined by `shutdown` (and drop).
    reaper: Mutex<Option<JoinHandle<()>>>,
}

impl KeyCache {
    /// A cache whose entries live `ttl` (None: until cleared). With a TTL, starts the thread
    /// that wipes entries when they expire.
    pub fn new(ttl: Option<Duration>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            ttl,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            reaped: Condvar::new(),
            loaded: Condvar::new(),
        });
        let reaper = match ttl {
            None => None,
            Some(_) => {
                let shared = shared.clone();
                Some(
                    std::thread::Builder::new()
                        .name("keyring_okv-cache".into())
                        .spawn(move || shared.reap())?,
                )
            }
        };
        Ok(KeyCache {
            shared,
            reaper: Mutex::new(reaper),
        })
    }

    /// What is known of the pair, if anything and not expired.
    pub fn get(&self, key_id: &str, owner: &str) -> Option<Cached> {
        self.get_at(key_id, owner, Instant::now())
    }

    fn get_at(&self, key_id: &str, owner: &str, now: Instant) -> Option<Cached> {
        let id = (key_id.to_string(), owner.to_string());
        known(&mut self.shared.state(), &id, now)
    }

    /// What is known of the pair; otherwise the right to read it from the server, once any
    /// read of it already in flight has ended (waiting at most `wait` for it).
    pub fn lookup(&self, key_id: &str, owner: &str, wait: Duration) -> Lookup<'_> {
        let id = (key_id.to_string(), owner.to_string());
        let deadline = Instant::now() + wait;
        let mut state = self.shared.state();
        loop {
            let now = Instant::now();
            if let Some(known) = known(&mut state, &id, now) {
                return Lookup::Known(known);
            }
            if !state.loading.contains_key(&id) || now >= deadline {
                *state.loading.entry(id.clone()).or_default() += 1;
                return Lookup::Load(Loading {
                    cache: self,
                    ticket: Ticket(state.epoch),
                    id,
                });
            }
            state.waiting += 1;
            self.shared.loaded.notify_all();
            state = self
                .shared
                .loaded
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.waiting -= 1;
        }
    }

    /// The pair's key from memory, or else from `read` (the KMIP server), whose answer is kept:
    /// the key, or that there is none. An error is not kept. A read of the same key in flight is
    /// waited for, at most `wait`.
    pub fn read_through<E>(
        &self,
        key_id: &str,
        owner: &str,
        wait: Duration,
        read: impl FnOnce() -> Result<Option<FetchedKey>, E>,
    ) -> Result<Option<FetchedKey>, E> {
        let loading = match self.lookup(key_id, owner, wait) {
            Lookup::Known(Cached::Present(key)) => return Ok(Some(key)),
            Lookup::Known(Cached::Absent) => return Ok(None),
            Lookup::Load(loading) => loading,
        };
        let fetched = read()?;
        loading.finish(fetched.as_ref());
        Ok(fetched)
    }

    /// Taken before a read asks the server; see [`KeyCache::remember`].
    pub fn ticket(&self) -> Ticket {
        Ticket(self.shared.state().epoch)
    }

    /// Keeps what a read started at `ticket` learned (the key, or None: the server has no
    /// usable object for it), unless a write or forget happened since.
    pub fn remember(&self, key_id: &str, owner: &str, key: Option<&FetchedKey>, ticket: Ticket) {
        self.remember_at(key_id, owner, key, ticket, Instant::now());
    }

    fn remember_at(
        &self,
        key_id: &str,
        owner: &str,
        key: Option<&FetchedKey>,
        ticket: Ticket,
        now: Instant,
    ) {
        let mut state = self.shared.state();
        if state.epoch == ticket.0 {
            self.insert(&mut state, key_id, owner, key, now);
        }
    }

    /// Records what a write made the key: its material after a store, None after a remove.
    /// Newer than any read in flight, which is then not kept.
    pub fn wrote(&self, key_id: &str, owner: &str, key: Option<&FetchedKey>) {
        self.wrote_at(key_id, owner, key, Instant::now());
    }

    fn wrote_at(&self, key_id: &str, owner: &str, key: Option<&FetchedKey>, now: Instant) {
        let mut state = self.shared.state();
        state.epoch += 1;
        self.insert(&mut state, key_id, owner, key, now);
    }

    fn insert(
        &self,
        state: &mut State,
        key_id: &str,
        owner: &str,
        key: Option<&FetchedKey>,
        now: Instant,
    ) {
        if state.closed {
            return;
        }
        let known = match key {
            Some(key) => Known::Present {
                key_type: key.key_type,
                material: Zeroizing::new(key.material.to_vec()),
            },
            None => Known::Absent,
        };
        let expires = self.shared.ttl.map(|ttl| now + ttl);
        state.entries.insert(
            (key_id.to_string(), owner.to_string()),
            Entry { known, expires },
        );
        if let Some(at) = expires {
            if state.reaper_wakes.is_none_or(|wakes| at < wakes) {
                state.reaper_wakes = Some(at);
                self.shared.wake.notify_all();
            }
        }
    }

    /// Forgets one key (a write of it starts, or ended in an unknown state); a read in flight
    /// is then not kept.
    pub fn forget(&self, key_id: &str, owner: &str) {
        let mut state = self.shared.state();
        state.epoch += 1;
        state
            .entries
            .remove(&(key_id.to_string(), owner.to_string()));
    }

    /// Wipes every entry.
    pub fn clear(&self) {
        let mut state = self.shared.state();
        state.epoch += 1;
        state.entries.clear();
    }

    /// Wipes every entry, refuses new ones and joins the reaper (reload, unload).
    pub fn shutdown(&self) {
        {
            let mut state = self.shared.state();
            state.closed = true;
            state.epoch += 1;
            state.entries.clear();
        }
        self.shared.wake.notify_all();
        let reaper = self
            .reaper
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(reaper) = reaper {
            // The reaper does nothing that can panic; a panic would only end it early.
            let _ = reaper.join();
        }
    }

    /// Keys whose material is held.
    pub fn len(&self) -> usize {
        self.shared
            .state()
            .entries
            .values()
            .filter(|e| matches!(e.known, Known::Present { .. }))
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys remembered as absent.
    pub fn absent(&self) -> usize {
        self.shared
            .state()
            .entries
            .values()
            .filter(|e| matches!(e.known, Known::Absent))
            .count()
    }
}

impl Drop for KeyCache {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> FetchedKey {
        FetchedKey {
            key_type: KeyType::Aes,
            material: Zeroizing::new(vec![byte; 32]),
        }
    }

    fn material(cached: Option<Cached>) -> Option<u8> {
        match cached {
            Some(Cached::Present(k)) => Some(k.material[0]),
            _ => None,
        }
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = KeyCache::new(Some(Duration::from_secs(10))).unwrap();
        let t0 = Instant::now();
        cache.remember_at("k", "", Some(&key(1)), cache.ticket(), t0);
        let hit = cache.get_at("k", "", t0 + Duration::from_secs(9));
        assert_eq!(material(hit), Some(1));
        assert!(
            cache
                .get_at("k", "", t0 + Duration::from_secs(10))
                .is_none()
        );
        assert!(cache.is_empty(), "the expired entry is dropped (and wiped)");
    }

    #[test]
    fn owners_are_separate_and_no_ttl_means_until_cleared() {
        let cache = KeyCache::new(None).unwrap();
        let t0 = Instant::now();
        cache.remember_at("k", "", Some(&key(1)), cache.ticket(), t0);
        cache.remember_at("k", "u@h", Some(&key(2)), cache.ticket(), t0);
        let far = t0 + Duration::from_secs(86_400 * 365);
        assert_eq!(material(cache.get_at("k", "u@h", far)), Some(2));
        assert_eq!(material(cache.get_at("k", "", far)), Some(1));
        cache.forget("k", "");
        assert!(cache.get_at("k", "", far).is_none());
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn a_read_older_than_a_write_is_not_kept() {
        let cache = KeyCache::new(None).unwrap();
        // A fetch starts, a remove happens meanwhile, the fetch ends with the old key.
        let read = cache.ticket();
        cache.forget("k", "");
        cache.wrote("k", "", None);
        cache.remember("k", "", Some(&key(1)), read);
        assert!(matches!(cache.get("k", ""), Some(Cached::Absent)));
        // A fetch that saw no key, older than a store: the store wins.
        let read = cache.ticket();
        cache.forget("k", "");
        cache.wrote("k", "", Some(&key(2)));
        cache.remember("k", "", None, read);
        assert_eq!(material(cache.get("k", "")), Some(2));
        // A write that failed leaves nothing for an older read to fill in.
        let read = cache.ticket();
        cache.forget("k", "");
        cache.remember("k", "", Some(&key(3)), read);
        assert!(cache.get("k", "").is_none());
        // A read that started after the last write is kept.
        let read = cache.ticket();
        cache.remember("k", "", Some(&key(4)), read);
        assert_eq!(material(cache.get("k", "")), Some(4));
    }

    #[test]
    fn absence_is_remembered_and_expires_like_presence() {
        let cache = KeyCache::new(Some(Duration::from_secs(10))).unwrap();
        let t0 = Instant::now();
        cache.remember_at("gone", "", None, cache.ticket(), t0);
        assert!(matches!(
            cache.get_at("gone", "", t0 + Duration::from_secs(9)),
            Some(Cached::Absent)
        ));
        assert_eq!((cache.len(), cache.absent()), (0, 1));
        assert!(
            cache
                .get_at("gone", "", t0 + Duration::from_secs(10))
                .is_none()
        );
        assert_eq!(cache.absent(), 0);
    }

    #[test]
    fn an_expired_entry_is_wiped_at_its_deadline_without_a_lookup() {
        let cache = KeyCache::new(Some(Duration::from_millis(1))).unwrap();
        cache.remember("k", "", Some(&key(1)), cache.ticket());
        cache.remember("gone", "", None, cache.ticket());
        let shared = &cache.shared;
        let state = shared.state();
        // Waits on the reaper's own signal; the bound only keeps a broken reaper from hanging.
        let (state, timeout) = shared
            .reaped
            .wait_timeout_while(state, Duration::from_secs(60), |s| !s.entries.is_empty())
            .unwrap();
        assert!(!timeout.timed_out(), "the reaper did not wipe the entries");
        assert_eq!(state.reaped, 2);
    }

    /// Waits (on the cache's own signal) until `n` readers wait for another's read.
    fn until_waiting(cache: &KeyCache, n: usize) {
        let state = cache.shared.state();
        let (_state, timeout) = cache
            .shared
            .loaded
            .wait_timeout_while(state, Duration::from_secs(60), |s| s.waiting < n)
            .unwrap();
        assert!(!timeout.timed_out(), "no reader waited");
    }

    #[test]
    fn concurrent_reads_of_a_key_wait_for_the_one_in_flight() {
        let cache = KeyCache::new(None).unwrap();
        let Lookup::Load(first) = cache.lookup("k", "", Duration::from_secs(60)) else {
            panic!("nothing is cached yet");
        };
        std::thread::scope(|s| {
            let follower = s.spawn(|| match cache.lookup("k", "", Duration::from_secs(60)) {
                Lookup::Known(known) => material(Some(known)),
                Lookup::Load(_) => None,
            });
            until_waiting(&cache, 1);
            first.finish(Some(&key(7)));
            assert_eq!(follower.join().unwrap(), Some(7));
        });
        // Another key is not held up.
        assert!(matches!(
            cache.lookup("other", "", Duration::ZERO),
            Lookup::Load(_)
        ));
    }

    #[test]
    fn a_failed_read_lets_a_waiting_reader_try_and_absence_is_not_recorded() {
        let cache = KeyCache::new(None).unwrap();
        let Lookup::Load(first) = cache.lookup("k", "", Duration::from_secs(60)) else {
            panic!("nothing is cached yet");
        };
        std::thread::scope(|s| {
            let follower = s.spawn(|| {
                matches!(
                    cache.lookup("k", "", Duration::from_secs(60)),
                    Lookup::Load(_)
                )
            });
            until_waiting(&cache, 1);
            // The read failed: nothing is known, the waiting reader reads for itself.
            drop(first);
            assert!(follower.join().unwrap());
        });
        assert!(cache.get("k", "").is_none());
        assert!(cache.shared.state().loading.is_empty());
    }

    #[test]
    fn a_reader_waits_no_longer_than_told() {
        let cache = KeyCache::new(None).unwrap();
        let Lookup::Load(_first) = cache.lookup("k", "", Duration::from_secs(60)) else {
            panic!("nothing is cached yet");
        };
        assert!(matches!(
            cache.lookup("k", "", Duration::ZERO),
            Lookup::Load(_)
        ));
    }

    #[test]
    fn shutdown_joins_the_reaper_and_refuses_new_entries() {
        let cache = KeyCache::new(Some(Duration::from_secs(300))).unwrap();
        cache.remember("k", "", Some(&key(1)), cache.ticket());
        let weak = Arc::downgrade(&cache.shared);
        cache.shutdown();
        assert_eq!(Arc::strong_count(&cache.shared), 1, "the reaper has ended");
        assert!(cache.is_empty());
        cache.remember("k", "", Some(&key(1)), cache.ticket());
        cache.wrote("k", "", Some(&key(1)));
        assert!(cache.get("k", "").is_none());
        drop(cache);
        assert!(weak.upgrade().is_none());
    }
}
