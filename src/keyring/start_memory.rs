//! The start-time memory of the plugin and the component with no key cache (the defaults).
//!
//! A start of mysqld reads the InnoDB master key once per encrypted tablespace while InnoDB
//! validates its tablespace files, all before "ready for connections": without a cache, 200
//! tables were 200 KMIP round trips for one key. The start-time memory answers the repeats of
//! those reads from memory, and only while the server is starting, so that the documented
//! cache-off semantics (every read asks the KMIP server) hold from the moment clients can
//! reach the server.
//!
//! Its rules:
//! - Only InnoDB master keys (`INNODBKey-<server uuid>-<n>`) and the binary log's keys
//!   (`MySQLReplicationKey_<server uuid>…`), of the empty owner, are kept, and only their
//!   material: that a key does not exist is never remembered, nor an error. They are the
//!   reads a start repeats (InnoDB once per encrypted tablespace, the binary log some of its
//!   keys twice); every other key keeps the cache-off rule at all times.
//! - It ends, for every key at once, at the first of: the end-of-start signal (the product
//!   says what it observes, see `products::mysqld_start`), [`START_WINDOW`] after the
//!   configuration was put in force, the first write of any key through this library (a
//!   master-key rotation starts with one), a change of configuration or cache settings, a
//!   refusal of the key-state guard (that key), and unload. A write ends it before its
//!   request is sent, so no read after the write is answered from before it; a read in flight
//!   when it ends is not kept.
//! - Ended, it never holds a key again: the material is wiped (`KeyCache::shutdown`). The
//!   window is looked at by each read it would answer, the signal by such a read at most every
//!   [`LOOK_EVERY`]; a key no read comes for after the start is wiped by the cache's own thread
//!   [`START_WINDOW`] after it was read.
//! - Concurrent reads of a key that is not held yet make one KMIP read between them (InnoDB
//!   validates tablespaces on several threads).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::FetchedKey;
use super::cache::{Cached, KeyCache, Lookup};
use super::naming::{is_binlog_key, is_innodb_master_key};

/// The longest a start-time memory lives, whatever the end-of-start signal says: it bounds how
/// late a key revoked or destroyed on the KMIP server by another client can be seen when the
/// signal cannot be observed.
pub const START_WINDOW: Duration = Duration::from_secs(60);

/// How often a read looks at the end-of-start signal, at most: looking may cost a few
/// milliseconds (see `products::mysqld_start`), and a start reads its master key hundreds of
/// times a second.
pub const LOOK_EVERY: Duration = Duration::from_millis(50);

/// Why a start-time memory ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The product's end-of-start signal.
    Started,
    /// [`START_WINDOW`] passed.
    Window,
    /// A key was written through this library.
    Write,
    /// The configuration or the cache settings changed.
    Replaced,
    /// Unload or shutdown.
    Unload,
}

impl Ended {
    fn why(self) -> &'static str {
        match self {
            Ended::Started => "the server has started",
            Ended::Window => "its time window passed",
            Ended::Write => "a key was written",
            Ended::Replaced => "the configuration or the cache settings changed",
            Ended::Unload => "unload",
        }
    }
}

struct State {
    ended: Option<Ended>,
    /// Made at the first master key read, so that a library that reads none starts no thread;
    /// its thread wipes a key that outlives the window with no read to end the memory.
    keys: Option<Arc<KeyCache>>,
    last_look: Option<Instant>,
    /// Reads answered from memory.
    served: u64,
    /// Reads that asked the KMIP server while the memory was open.
    asked: u64,
}

/// The end-of-start signal: true once the server has started.
pub type StartedSignal = Box<dyn Fn() -> bool + Send + Sync>;

pub struct StartMemory {
    /// Who logs (the library's name).
    product: &'static str,
    window: Duration,
    until: Instant,
    started: StartedSignal,
    look_every: Duration,
    state: Mutex<State>,
}

impl StartMemory {
    /// A memory open for `window` from now, or until `started` says the server has started.
    pub fn new(product: &'static str, window: Duration, started: StartedSignal) -> Self {
        StartMemory {
            product,
            window,
            until: Instant::now() + window,
            started,
            look_every: LOOK_EVERY,
            state: Mutex::new(State {
                ended: None,
                keys: None,
                last_look: None,
                served: 0,
                asked: 0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Counters and a flag, each set whole: a panic leaves nothing torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The keys, while the memory may still answer (after looking at the window and the
    /// signal).
    fn open(&self) -> Option<Arc<KeyCache>> {
        let now = Instant::now();
        let mut state = self.state();
        if state.ended.is_some() {
            return None;
        }
        let ended = if now >= self.until {
            Some(Ended::Window)
        } else if state
            .last_look
            .is_none_or(|at| now.saturating_duration_since(at) >= self.look_every)
        {
            state.last_look = Some(now);
            (self.started)().then_some(Ended::Started)
        } else {
            None
        };
        if let Some(why) = ended {
            drop(state);
            self.end(why);
            return None;
        }
        if state.keys.is_none() {
            match KeyCache::new(Some(self.window.max(Duration::from_millis(1)))) {
                Ok(keys) => state.keys = Some(Arc::new(keys)),
                Err(e) => {
                    drop(state);
                    tracing::info!(
                        "{}: no start-time memory of the InnoDB and binary log keys: {e}",
                        self.product
                    );
                    self.end(Ended::Unload);
                    return None;
                }
            }
        }
        state.keys.clone()
    }

    /// The pair's key: from memory while the start lasts and the key is an InnoDB master key or
    /// a binary log key, else from `read` (the KMIP server). What `read` finds is kept while the memory is
    /// open; absence and errors are not. A read of the same key in flight is waited for, at
    /// most `wait`.
    pub fn read_through<E>(
        &self,
        key_id: &str,
        owner: &str,
        wait: Duration,
        read: impl FnOnce() -> Result<Option<FetchedKey>, E>,
    ) -> Result<Option<FetchedKey>, E> {
        if !is_innodb_master_key(key_id, owner) && !is_binlog_key(key_id, owner) {
            return read();
        }
        let Some(keys) = self.open() else {
            return read();
        };
        let loading = match keys.lookup(key_id, owner, wait) {
            Lookup::Known(Cached::Present(key)) => {
                self.state().served += 1;
                return Ok(Some(key));
            }
            Lookup::Known(Cached::Absent) => return read(),
            Lookup::Load(loading) => loading,
        };
        self.state().asked += 1;
        let fetched = read()?;
        // Kept only while open: `end` closes the keys, and a closed cache keeps nothing.
        if let Some(key) = &fetched {
            loading.finish(Some(key));
        }
        Ok(fetched)
    }

    /// A write of any key is about to be sent: the start is over for the memory.
    pub fn before_write(&self) {
        self.end(Ended::Write);
    }

    /// Drops one key (the key-state guard refused it); the others stay.
    pub fn forget(&self, key_id: &str, owner: &str) {
        let keys = self.state().keys.clone();
        if let Some(keys) = keys {
            keys.forget(key_id, owner);
        }
    }

    /// Ends the memory (once) and wipes every key it holds.
    pub fn end(&self, why: Ended) {
        let (served, asked, keys) = {
            let mut state = self.state();
            if state.ended.is_some() {
                return;
            }
            state.ended = Some(why);
            (state.served, state.asked, state.keys.take())
        };
        if let Some(keys) = keys {
            keys.shutdown();
        }
        tracing::info!(
            "{}: the start-time memory of the InnoDB and binary log keys ended ({}): {served} reads answered from it, {asked} from the KMIP server",
            self.product,
            why.why()
        );
    }

    /// Why it ended, if it did.
    pub fn ended(&self) -> Option<Ended> {
        self.state().ended
    }

    /// Reads answered from memory so far.
    pub fn served(&self) -> u64 {
        self.state().served
    }

    /// Keys held now.
    pub fn held(&self) -> usize {
        self.state().keys.as_ref().map_or(0, |k| k.len())
    }
}

impl Drop for StartMemory {
    fn drop(&mut self) {
        self.end(Ended::Unload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::KeyType;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use zeroize::Zeroizing;

    const MASTER: &str = "INNODBKey-9b2a5f3c-1d2e-11ef-8a3b-0242ac120002-1";
    const OTHER_MASTER: &str = "INNODBKey-9b2a5f3c-1d2e-11ef-8a3b-0242ac120002-2";

    fn key(byte: u8) -> FetchedKey {
        FetchedKey {
            key_type: KeyType::Aes,
            material: Zeroizing::new(vec![byte; 32]),
        }
    }

    /// A memory whose end-of-start signal the test sets.
    fn memory(window: Duration) -> (StartMemory, Arc<AtomicBool>) {
        let started = Arc::new(AtomicBool::new(false));
        let signal = started.clone();
        let mut m = StartMemory::new(
            "test",
            window,
            Box::new(move || signal.load(Ordering::SeqCst)),
        );
        m.look_every = Duration::ZERO;
        (m, started)
    }

    /// Reads the pair through `m` from a server that holds `server` (None: no such key),
    /// counting the server's reads in `asked`.
    fn read(
        m: &StartMemory,
        key_id: &str,
        owner: &str,
        server: Option<u8>,
        asked: &AtomicUsize,
    ) -> Option<u8> {
        m.read_through::<()>(key_id, owner, Duration::from_secs(60), || {
            asked.fetch_add(1, Ordering::SeqCst);
            Ok(server.map(key))
        })
        .unwrap()
        .map(|k| k.material[0])
    }

    #[test]
    fn a_start_asks_the_server_once_for_a_key_read_many_times() {
        let (m, _) = memory(START_WINDOW);
        let asked = AtomicUsize::new(0);
        for _ in 0..200 {
            assert_eq!(read(&m, MASTER, "", Some(7), &asked), Some(7));
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        assert_eq!(m.served(), 199);
        assert_eq!(m.held(), 1);
    }

    #[test]
    fn other_keys_absence_and_errors_are_never_kept() {
        let (m, _) = memory(START_WINDOW);
        let asked = AtomicUsize::new(0);
        read(&m, MASTER, "u@h", Some(1), &asked);
        read(&m, MASTER, "u@h", Some(1), &asked);
        assert_eq!(
            asked.load(Ordering::SeqCst),
            2,
            "a user's key is always asked"
        );
        read(&m, "percona_binlog_u_1", "", Some(1), &asked);
        read(&m, "percona_binlog_u_1", "", Some(1), &asked);
        assert_eq!(
            asked.load(Ordering::SeqCst),
            4,
            "other keys are always asked"
        );
        assert!(
            m.state().keys.is_none(),
            "no thread until a master key is read"
        );
        read(&m, OTHER_MASTER, "", None, &asked);
        read(&m, OTHER_MASTER, "", None, &asked);
        assert_eq!(asked.load(Ordering::SeqCst), 6, "absence is always asked");
        let failed = m.read_through(MASTER, "", Duration::from_secs(60), || Err("down"));
        assert_eq!(failed.unwrap_err(), "down");
        assert_eq!(read(&m, MASTER, "", Some(3), &asked), Some(3));
        assert_eq!(asked.load(Ordering::SeqCst), 7, "an error is not an answer");
        assert_eq!(m.held(), 1);
    }

    #[test]
    fn the_end_of_start_signal_ends_it_and_wipes_the_keys() {
        let (m, started) = memory(START_WINDOW);
        let asked = AtomicUsize::new(0);
        read(&m, MASTER, "", Some(1), &asked);
        assert_eq!(read(&m, MASTER, "", Some(1), &asked), Some(1));
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        started.store(true, Ordering::SeqCst);
        assert_eq!(m.ended(), None, "the signal is looked at by reads");
        assert_eq!(read(&m, MASTER, "", Some(2), &asked), Some(2));
        assert_eq!(m.ended(), Some(Ended::Started));
        assert_eq!(m.held(), 0);
        // The server's answer now, not the one remembered.
        assert_eq!(read(&m, MASTER, "", Some(3), &asked), Some(3));
        assert_eq!(asked.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_signal_is_looked_at_no_more_often_than_told() {
        let looks = Arc::new(AtomicUsize::new(0));
        let counted = looks.clone();
        let m = StartMemory::new(
            "test",
            START_WINDOW,
            Box::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                false
            }),
        );
        let asked = AtomicUsize::new(0);
        let t0 = Instant::now();
        for _ in 0..100 {
            read(&m, MASTER, "", Some(1), &asked);
        }
        let elapsed = t0.elapsed();
        let most = 1 + (elapsed.as_millis() / LOOK_EVERY.as_millis()) as usize;
        let n = looks.load(Ordering::SeqCst);
        assert!((1..=most).contains(&n), "{n} looks in {elapsed:?}");
        assert_eq!(asked.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_window_bounds_it_without_a_signal() {
        let (m, _) = memory(Duration::ZERO);
        let asked = AtomicUsize::new(0);
        read(&m, MASTER, "", Some(1), &asked);
        read(&m, MASTER, "", Some(1), &asked);
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        assert_eq!(m.ended(), Some(Ended::Window));
    }

    #[test]
    fn a_write_ends_it_before_it_is_sent_and_a_removed_key_is_never_served() {
        let (m, _) = memory(START_WINDOW);
        let asked = AtomicUsize::new(0);
        assert_eq!(read(&m, MASTER, "", Some(1), &asked), Some(1));
        // A rotation or a remove of the key: before its request goes out.
        m.before_write();
        assert_eq!(m.ended(), Some(Ended::Write));
        assert_eq!(m.held(), 0);
        // Removed on the server: absent, not the remembered key.
        assert_eq!(read(&m, MASTER, "", None, &asked), None);
        // Rotated on the server: the new key.
        assert_eq!(read(&m, MASTER, "", Some(9), &asked), Some(9));
    }

    #[test]
    fn a_read_in_flight_when_it_ends_is_not_kept() {
        let (m, _) = memory(START_WINDOW);
        let asked = AtomicUsize::new(0);
        let got = m
            .read_through::<()>(MASTER, "", Duration::from_secs(60), || {
                // A write ends the memory while this read is on the network.
                m.before_write();
                Ok(Some(key(1)))
            })
            .unwrap();
        assert_eq!(got.map(|k| k.material[0]), Some(1));
        assert_eq!(m.held(), 0);
        assert_eq!(read(&m, MASTER, "", Some(2), &asked), Some(2));
    }

    #[test]
    fn a_key_refused_by_the_guard_is_dropped_and_asked_again() {
        let (m, _) = memory(START_WINDOW);
        let asked = AtomicUsize::new(0);
        read(&m, MASTER, "", Some(1), &asked);
        read(&m, OTHER_MASTER, "", Some(2), &asked);
        m.forget(MASTER, "");
        assert_eq!(read(&m, MASTER, "", Some(3), &asked), Some(3));
        assert_eq!(
            read(&m, OTHER_MASTER, "", Some(4), &asked),
            Some(2),
            "b is still held"
        );
        assert_eq!(asked.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn concurrent_reads_of_a_key_make_one_server_read() {
        let (m, _) = memory(START_WINDOW);
        let asked = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        assert_eq!(read(&m, MASTER, "", Some(5), &asked), Some(5));
                    }
                });
            }
        });
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        assert_eq!(m.served(), 199);
    }

    #[test]
    fn ended_once_it_stays_ended() {
        let (m, _) = memory(START_WINDOW);
        m.end(Ended::Replaced);
        m.end(Ended::Write);
        assert_eq!(m.ended(), Some(Ended::Replaced));
        let asked = AtomicUsize::new(0);
        read(&m, MASTER, "", Some(1), &asked);
        read(&m, MASTER, "", Some(1), &asked);
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        assert_eq!(m.held(), 0);
    }
}
