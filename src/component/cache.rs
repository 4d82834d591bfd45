//! The component's key cache (`cache_keys`): keys fetched from the KMIP server, served from
//! memory for at most `cache_ttl_seconds`. InnoDB reads its master key at least twice per
//! encrypted CREATE TABLE and once per tablespace open, each a KMIP round trip without a cache.
//!
//! Material lives in `Zeroizing` buffers: it is wiped when an entry expires, is replaced or
//! removed, and when the cache is cleared or dropped (reload, unload).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::keyring::{FetchedKey, KeyType};

struct Entry {
    key_type: KeyType,
    material: Zeroizing<Vec<u8>>,
    stored: Instant,
}

/// (key id, owner) -> key. The owner is "" for the server's own keys.
pub struct KeyCache {
    ttl: Option<Duration>,
    entries: Mutex<HashMap<(String, String), Entry>>,
}

impl KeyCache {
    /// A cache whose entries live `ttl` (None: until cleared).
    pub fn new(ttl: Option<Duration>) -> Self {
        KeyCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<(String, String), Entry>> {
        // An entry is inserted whole or not at all: a panic elsewhere leaves nothing torn.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the cached key, if present and not expired (an expired one is wiped now).
    pub fn get(&self, key_id: &str, owner: &str) -> Option<FetchedKey> {
        self.get_at(key_id, owner, Instant::now())
    }

    fn get_at(&self, key_id: &str, owner: &str, now: Instant) -> Option<FetchedKey> {
        let mut entries = self.entries();
        let id = (key_id.to_string(), owner.to_string());
        let entry = entries.get(&id)?;
        if self
            .ttl
            .is_some_and(|ttl| now.saturating_duration_since(entry.stored) >= ttl)
        {
            entries.remove(&id);
            return None;
        }
        Some(FetchedKey {
            key_type: entry.key_type,
            material: Zeroizing::new(entry.material.to_vec()),
        })
    }

    pub fn put(&self, key_id: &str, owner: &str, key: &FetchedKey) {
        self.put_at(key_id, owner, key, Instant::now());
    }

    fn put_at(&self, key_id: &str, owner: &str, key: &FetchedKey, now: Instant) {
        let entry = Entry {
            key_type: key.key_type,
            material: Zeroizing::new(key.material.to_vec()),
            stored: now,
        };
        self.entries()
            .insert((key_id.to_string(), owner.to_string()), entry);
    }

    /// Forgets one key (it was stored, generated or removed through us).
    pub fn forget(&self, key_id: &str, owner: &str) {
        self.entries()
            .remove(&(key_id.to_string(), owner.to_string()));
    }

    /// Wipes every entry.
    pub fn clear(&self) {
        self.entries().clear();
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = KeyCache::new(Some(Duration::from_secs(10)));
        let t0 = Instant::now();
        cache.put_at("k", "", &key(1), t0);
        let hit = cache.get_at("k", "", t0 + Duration::from_secs(9)).unwrap();
        assert_eq!(&hit.material[..], &[1u8; 32][..]);
        assert!(
            cache
                .get_at("k", "", t0 + Duration::from_secs(10))
                .is_none()
        );
        assert!(cache.is_empty(), "the expired entry is dropped (and wiped)");
    }

    #[test]
    fn owners_are_separate_and_no_ttl_means_until_cleared() {
        let cache = KeyCache::new(None);
        let t0 = Instant::now();
        cache.put_at("k", "", &key(1), t0);
        cache.put_at("k", "u@h", &key(2), t0);
        let far = t0 + Duration::from_secs(86_400 * 365);
        assert_eq!(cache.get_at("k", "u@h", far).unwrap().material[0], 2);
        assert_eq!(cache.get_at("k", "", far).unwrap().material[0], 1);
        cache.forget("k", "");
        assert!(cache.get_at("k", "", far).is_none());
        cache.clear();
        assert!(cache.is_empty());
    }
}
