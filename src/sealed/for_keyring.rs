//! The sealed key cache in front of a [`Keyring`] (the MySQL plugin and component): what a
//! fetch learns is kept, what a remove ends is forgotten, and a fetch that reaches no KMIP
//! server is answered from the cache.

use std::sync::{Arc, Weak};

use super::{Answer, Batched, Keeper, KnownObject, SealedCache, SealedError, Served};
use crate::keyring::cache::KeyCache;
use crate::keyring::{FetchedKey, Keyring, KeyringError};

/// Why a fetch failed when the sealed cache was asked to stand in.
#[derive(Debug, thiserror::Error)]
pub enum SealedFetchError {
    #[error(transparent)]
    Keyring(KeyringError),
    #[error(transparent)]
    Sealed(SealedError),
}

/// What the confirming thread does before its first confirmation.
type FirstStep = Box<dyn FnOnce(&SealedCache) + Send>;

/// A sealed cache and the thread that confirms it, for one keyring.
pub struct KeyringSeal {
    keeper: Keeper,
}

/// Fills `key_cache` (`cache_keys`) at start with the keys `sealed` holds, read from the KMIP
/// server in one message ([`Keyring::read_known`]) instead of one request per key as mysqld
/// asks for them; each key read counts as a confirmation too. Returns how many.
pub fn fill(sealed: &SealedCache, keyring: &Keyring, key_cache: &KeyCache) -> usize {
    let known = sealed.known_objects();
    if known.is_empty() {
        return 0;
    }
    let ticket = key_cache.ticket();
    match keyring.client().one_call(|| keyring.read_known(&known)) {
        Ok(read) => {
            for (key_id, owner, key) in &read {
                key_cache.remember(key_id, owner, Some(key), ticket);
                if let Some((uid, server)) = keyring.known(key_id, owner) {
                    sealed.keep(key_id, owner, key, &uid, &server);
                }
            }
            read.len()
        }
        Err(e) => {
            tracing::debug!("the key cache was not filled at start: {e}");
            0
        }
    }
}

/// What the KMIP server says now of the cached keys whose objects it still holds as they were,
/// read in one message per [`crate::keyring::READ_KNOWN_MAX`] keys ([`Keyring::read_known`]: each
/// object's Name, State and key, checked as a fetch checks them). A key left out (gone, not
/// Active, renamed, on another server, or the message failed) is asked on its own by [`ask`].
fn ask_many(keyring: &Weak<Keyring>, keys: &[KnownObject]) -> Batched {
    let mut answers = Batched::new();
    let Some(keyring) = keyring.upgrade() else {
        return answers;
    };
    keyring.client().reread_identity();
    for chunk in keys.chunks(crate::keyring::READ_KNOWN_MAX) {
        let read = match keyring.client().one_call(|| keyring.read_known(chunk)) {
            Ok(read) => read,
            Err(e) => {
                tracing::debug!("the sealed key cache's keys were not read together: {e}");
                break;
            }
        };
        for (key_id, owner, key) in read {
            let Some((uid, server)) = keyring.known(&key_id, &owner) else {
                continue;
            };
            answers.insert((key_id, owner), Answer::Key { key, uid, server });
        }
    }
    answers
}

/// What the KMIP server says of one key now, for a confirmation.
fn ask(keyring: &Weak<Keyring>, key_id: &str, owner: &str) -> Answer {
    let Some(keyring) = keyring.upgrade() else {
        return Answer::Failed("the keyring is being replaced".into());
    };
    // A renewed client identity seals the file again even while no new connection is made.
    keyring.client().reread_identity();
    match keyring.client().one_call(|| keyring.fetch(key_id, owner)) {
        Ok(Some(key)) => match keyring.known(key_id, owner) {
            Some((uid, server)) => Answer::Key { key, uid, server },
            None => Answer::Failed("the server's answer named no object".into()),
        },
        Ok(None) => Answer::Gone,
        // Two objects under the name, or an object that is not the key it should be: gone as a
        // key of this cache (the safe side), like a key the server no longer has.
        Err(e) if e.is_definitely_gone() => Answer::Gone,
        Err(e) if e.is_unreachable() => Answer::Unreachable(e.to_string()),
        Err(e) => Answer::Failed(e.to_string()),
    }
}

impl KeyringSeal {
    /// Starts confirming `cache` against `keyring`, and sealing it again under each renewed
    /// client identity.
    ///
    /// At a server's start (`replaces` None), with `fill_into`, first fills that key cache (see
    /// [`fill`]), so the thread's first confirmation does not ask again for what the fill just
    /// read. A cache put in force by `SET GLOBAL` or a keyring reload `replaces` another on the
    /// same file: it writes nothing until its thread has stopped the old one (`replaces`), and
    /// neither that stop nor any KMIP request happens here, under the server's lock.
    pub fn start(
        cache: SealedCache,
        keyring: &Arc<Keyring>,
        fill_into: Option<&KeyCache>,
        replaces: Option<Box<dyn FnOnce() + Send>>,
    ) -> std::io::Result<KeyringSeal> {
        let (cache, first): (_, FirstStep) = match replaces {
            Some(stop_old) => (
                Arc::new(cache.waiting_to_write()),
                Box::new(move |cache: &SealedCache| {
                    stop_old();
                    cache.start_writing();
                }),
            ),
            None => {
                if let Some(key_cache) = fill_into {
                    fill(&cache, keyring, key_cache);
                }
                (Arc::new(cache), Box::new(|_: &SealedCache| {}))
            }
        };
        cache.follow_identity_of(keyring.client());
        let mine = cache.clone();
        let weak = Arc::downgrade(keyring);
        let weak_many = weak.clone();
        let keeper = Keeper::start_after(
            cache,
            move || first(&mine),
            move |keys| ask_many(&weak_many, keys),
            move |id, owner| ask(&weak, id, owner),
        )?;
        Ok(KeyringSeal { keeper })
    }

    pub fn cache(&self) -> &SealedCache {
        self.keeper.cache()
    }

    /// Records what a fetch from the server said.
    pub fn learned(
        &self,
        keyring: &Keyring,
        key_id: &str,
        owner: &str,
        result: &Result<Option<FetchedKey>, KeyringError>,
    ) {
        match result {
            Ok(Some(key)) => {
                if let Some((uid, server)) = keyring.known(key_id, owner) {
                    self.cache().keep(key_id, owner, key, &uid, &server);
                }
            }
            Ok(None) => self.cache().forget(key_id, owner),
            Err(_) => {}
        }
    }

    /// Keeps a key this server has just stored at once, not at its next fetch: mysqld may not
    /// read it again before it restarts (the binary log's master key sequence number is stored
    /// when that key is made or rotated and read back only at the next start, which may be
    /// during an outage).
    pub fn stored(&self, keyring: &Keyring, key_id: &str, owner: &str, key_type: &str, key: &[u8]) {
        let Ok(key_type) = crate::keyring::KeyType::parse(key_type) else {
            return;
        };
        let stored = Ok(Some(FetchedKey {
            key_type,
            material: zeroize::Zeroizing::new(key.to_vec()),
        }));
        self.learned(keyring, key_id, owner, &stored);
    }

    /// The outcome of a fetch, with the cache standing in when no server answered.
    pub fn stand_in(
        &self,
        key_id: &str,
        owner: &str,
        result: Result<Option<FetchedKey>, KeyringError>,
    ) -> Result<Option<FetchedKey>, SealedFetchError> {
        match result {
            Err(e) if e.is_unreachable() => match self.cache().serve(key_id, owner, &e) {
                Ok(Some(Served::Key(key))) => Ok(Some(key)),
                Ok(Some(Served::Absent)) => Ok(None),
                Ok(None) => Err(SealedFetchError::Keyring(e)),
                Err(sealed) => Err(SealedFetchError::Sealed(sealed)),
            },
            other => other.map_err(SealedFetchError::Keyring),
        }
    }

    /// After a write: a key removed (or found absent) is forgotten; a store or generate is
    /// kept by the next fetch. A write that reached no server while keys are served from the
    /// cache says so.
    pub fn wrote<T>(
        &self,
        key_id: &str,
        owner: &str,
        removed: bool,
        result: Result<T, KeyringError>,
    ) -> Result<T, WriteError> {
        match result {
            Ok(v) => {
                if removed {
                    self.cache().forget(key_id, owner);
                }
                Ok(v)
            }
            Err(KeyringError::NotFound {
                key_id: k,
                owner: o,
            }) if removed => {
                self.cache().forget(key_id, owner);
                Err(WriteError::Keyring(KeyringError::NotFound {
                    key_id: k,
                    owner: o,
                }))
            }
            Err(e) if e.is_unreachable() && self.cache().is_serving() => {
                Err(WriteError::ReadOnly(self.cache().write_refused(&e)))
            }
            Err(e) => Err(WriteError::Keyring(e)),
        }
    }

    /// Closes the cache and joins its thread by `deadline` (after the KMIP client is closed).
    pub fn stop(&self, deadline: std::time::Instant) -> bool {
        self.keeper.stop(deadline)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Keyring(KeyringError),
    #[error("{0}")]
    ReadOnly(String),
}
