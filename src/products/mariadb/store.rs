//! The key store MariaDB's encryption calls are answered from: the latest version of each key
//! id and the bytes of every version used, in memory.
//!
//! InnoDB asks for the latest version on every encrypted page write and aborts the server on
//! several error answers, so: the latest version of a key id that worked once is answered from
//! memory and never becomes "unknown" again; a version is published as latest only after its
//! bytes are in memory (and those bytes are never expired); new versions are found by the
//! background refresh (`refresh.rs`), not by the callers.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{
    Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::error::KeyStoreError;
use super::naming::{object_name, valid_namespace};
use super::remote;
use crate::connector::KmipClient;
use crate::keyring::{FetchedKey, KeyType};
use crate::sealed::{Answer, Batched, KnownObject, SealedCache};

/// How long a key id that could not be found is answered "unknown" from memory before the
/// server is asked again, so that a burst of statements naming a missing id does not wait on
/// the KMIP server once per statement.
const UNKNOWN_HOLD: Duration = Duration::from_secs(5);
/// How many key ids one rotation of every key rotates at a time.
const ROTATE_AT_ONCE: usize = 8;

/// Settings taken from the server's variables at start.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Prefix of the object names.
    pub namespace: String,
    /// How long fetched key bytes of versions other than the latest are served before they are
    /// read again (zero: for ever). Key bytes never change, so this is only about noticing a
    /// key that was destroyed on the KMIP server.
    pub cache_timeout: Duration,
    /// How often the background refresh looks for new versions.
    pub version_refresh: Duration,
    /// Serve an expired cached key when reading it again fails for any reason but a definite
    /// answer that the version is gone (`KeyStoreError::is_definitely_gone`).
    pub use_cache_on_error: bool,
    /// `kmip_key_management_sealed_cache_max_age_hours`: 0 = no sealed key cache.
    pub sealed_cache_max_age_hours: u64,
    /// `kmip_key_management_sealed_cache_dir`: where the sealed file is kept.
    pub sealed_cache_dir: std::path::PathBuf,
    /// `kmip_key_management_key_state_poll_seconds` and `..._key_state_action`.
    pub key_state: crate::guard::Settings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            namespace: "mariadb".to_string(),
            cache_timeout: Duration::from_secs(24 * 3600),
            version_refresh: Duration::from_secs(60),
            use_cache_on_error: true,
            sealed_cache_max_age_hours: 0,
            sealed_cache_dir: crate::sealed::DEFAULT_DIR.into(),
            key_state: crate::guard::Settings::default(),
        }
    }
}

/// The settings that may change while the server runs (SET GLOBAL).
struct Tunables {
    cache_timeout_ms: AtomicU64,
    version_refresh_ms: AtomicU64,
    use_cache_on_error: AtomicBool,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

struct Cached {
    material: Zeroizing<Vec<u8>>,
    fetched: Instant,
}

#[derive(Default)]
struct Counters {
    latest_requests: AtomicU64,
    key_requests: AtomicU64,
    key_cache_hits: AtomicU64,
    key_fetches: AtomicU64,
    key_failures: AtomicU64,
    refreshes: AtomicU64,
    refresh_errors: AtomicU64,
    rotations: AtomicU64,
}

/// A copy of the store's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// get_latest_key_version calls.
    pub latest_requests: u64,
    /// get_key calls.
    pub key_requests: u64,
    /// get_key calls answered from memory.
    pub key_cache_hits: u64,
    /// Key versions read from the KMIP server.
    pub key_fetches: u64,
    /// get_key calls answered "not found".
    pub key_failures: u64,
    /// Background refresh rounds started.
    pub refreshes: u64,
    /// Background refresh rounds that failed for some key.
    pub refresh_errors: u64,
    /// New versions made by rotation.
    pub rotations: u64,
    /// Key ids with a known latest version.
    pub key_ids: u64,
    /// Key versions held in memory.
    pub keys_cached: u64,
}

pub struct KeyStore {
    client: KmipClient,
    namespace: String,
    tunables: Tunables,
    latest: RwLock<HashMap<u32, u32>>,
    keys: RwLock<HashMap<(u32, u32), Cached>>,
    unknown: Mutex<HashMap<u32, Instant>>,
    reported_missing: Mutex<HashSet<u32>>,
    /// Versions whose expired copy is served because reading them again failed, so that the
    /// log says so once per version, not on every page read.
    served_stale: Mutex<HashSet<(u32, u32)>>,
    /// Serialises rotations in this process; rotations by other processes at the same moment
    /// settle on one object per version in `remote::create_version`.
    writes: Mutex<()>,
    refresh_failing: AtomicBool,
    counters: Counters,
    /// The sealed key cache, when on: every version read from the server is kept in it, and it
    /// answers for versions the server cannot be asked about.
    sealed: OnceLock<Arc<SealedCache>>,
    /// The key-state guard, when on: told of every version read from the server.
    guard: OnceLock<Arc<crate::guard::Guard>>,
    /// Versions found revoked with `key_state_action = refuse`: never served again.
    refused: Mutex<HashSet<(u32, u32)>>,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl KeyStore {
    pub fn new(client: KmipClient, settings: Settings) -> Result<Self, KeyStoreError> {
        if !valid_namespace(&settings.namespace) {
            return Err(KeyStoreError::Namespace(settings.namespace));
        }
        let store = KeyStore {
            client,
            namespace: settings.namespace.clone(),
            tunables: Tunables {
                cache_timeout_ms: AtomicU64::new(0),
                version_refresh_ms: AtomicU64::new(0),
                use_cache_on_error: AtomicBool::new(true),
            },
            latest: RwLock::new(HashMap::new()),
            keys: RwLock::new(HashMap::new()),
            unknown: Mutex::new(HashMap::new()),
            reported_missing: Mutex::new(HashSet::new()),
            served_stale: Mutex::new(HashSet::new()),
            writes: Mutex::new(()),
            refresh_failing: AtomicBool::new(false),
            counters: Counters::default(),
            sealed: OnceLock::new(),
            guard: OnceLock::new(),
            refused: Mutex::new(HashSet::new()),
        };
        store.set_cache_timeout(settings.cache_timeout);
        store.set_version_refresh(settings.version_refresh);
        store.set_use_cache_on_error(settings.use_cache_on_error);
        Ok(store)
    }

    /// Puts the sealed key cache in front of the KMIP server (once, before use).
    pub fn set_sealed(&self, sealed: Arc<SealedCache>) {
        let _ = self.sealed.set(sealed);
    }

    pub fn sealed(&self) -> Option<&Arc<SealedCache>> {
        self.sealed.get()
    }

    /// Tells `guard` of every version read from the KMIP server from now on (once, before use).
    pub fn set_guard(&self, guard: Arc<crate::guard::Guard>) {
        let _ = self.guard.set(guard);
    }

    /// A version found revoked on the KMIP server with `key_state_action = refuse`: dropped
    /// from memory and the sealed key cache, and never served again by this process.
    pub fn refuse(&self, key_id: u32, version: u32) {
        lock(&self.refused).insert((key_id, version));
        write(&self.keys).remove(&(key_id, version));
        if let Some(sealed) = self.sealed() {
            sealed.forget(&object_name(&self.namespace, key_id, version), "");
        }
    }

    /// Loads every version the sealed key cache holds for this namespace into memory and
    /// publishes the highest of each key id (a start while no KMIP server answers: `cause`).
    /// Versions past the maximum age are not loaded. Returns how many were.
    pub fn load_sealed(&self, cause: &dyn std::fmt::Display) -> usize {
        let Some(sealed) = self.sealed() else {
            return 0;
        };
        let mut loaded = 0;
        let mut versions: Vec<(u32, u32, String)> = sealed
            .names()
            .into_iter()
            .filter(|(_, owner)| owner.is_empty())
            .filter_map(|(name, _)| {
                super::naming::parse_object_name(&self.namespace, &name)
                    .map(|(id, v)| (id, v, name))
            })
            .collect();
        versions.sort_unstable();
        for (key_id, version, name) in versions {
            if let Ok(Some(crate::sealed::Served::Key(key))) = sealed.serve(&name, "", cause) {
                self.remember(key_id, version, key.material);
                self.publish(key_id, version);
                loaded += 1;
            }
        }
        loaded
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn client(&self) -> &KmipClient {
        &self.client
    }

    pub fn set_cache_timeout(&self, d: Duration) {
        self.tunables
            .cache_timeout_ms
            .store(millis(d), Ordering::Relaxed);
    }

    pub fn set_version_refresh(&self, d: Duration) {
        // Never spin: at least one second between rounds.
        let ms = millis(d).max(1000);
        self.tunables
            .version_refresh_ms
            .store(ms, Ordering::Relaxed);
    }

    pub fn set_use_cache_on_error(&self, on: bool) {
        self.tunables
            .use_cache_on_error
            .store(on, Ordering::Relaxed);
    }

    pub fn version_refresh(&self) -> Duration {
        Duration::from_millis(self.tunables.version_refresh_ms.load(Ordering::Relaxed))
    }

    fn cache_timeout(&self) -> Option<Duration> {
        match self.tunables.cache_timeout_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// The latest known version of `key_id`, from memory.
    pub fn known_latest(&self, key_id: u32) -> Option<u32> {
        read(&self.latest).get(&key_id).copied()
    }

    /// Key ids with a known latest version, ascending.
    pub fn known_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = read(&self.latest).keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Makes `version` the latest of `key_id` unless a higher one is known. Its bytes must be in
    /// memory already.
    fn publish(&self, key_id: u32, version: u32) {
        let mut latest = write(&self.latest);
        let entry = latest.entry(key_id).or_insert(version);
        if *entry < version {
            *entry = version;
        }
        drop(latest);
        lock(&self.unknown).remove(&key_id);
    }

    fn remember(&self, key_id: u32, version: u32, material: Zeroizing<Vec<u8>>) {
        write(&self.keys).insert(
            (key_id, version),
            Cached {
                material,
                fetched: Instant::now(),
            },
        );
    }

    /// Reads the bytes of one version from the KMIP server into memory (`material`: already
    /// read with its description, and checked).
    fn fetch(
        &self,
        key_id: u32,
        version: u32,
        located: Option<remote::Located>,
        material: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<(), KeyStoreError> {
        let name = object_name(&self.namespace, key_id, version);
        let (uid, server) = match located {
            Some(located) => located,
            None => remote::find_version(&self.client, &self.namespace, key_id, version)?.ok_or(
                KeyStoreError::Missing {
                    key_id,
                    name: name.clone(),
                },
            )?,
        };
        let material = match material {
            Some(material) => material,
            None => remote::fetch_material(&self.client, &uid, &server, &name)?,
        };
        bump(&self.counters.key_fetches);
        if let Some(guard) = self.guard.get() {
            guard.watch(crate::guard::WatchedKey {
                uid: uid.clone(),
                server: server.to_string(),
                name: name.clone(),
                key: format!("key {key_id} version {version}"),
                next_step: crate::guard::mariadb_next_step(key_id),
            });
        }
        if let Some(sealed) = self.sealed() {
            let key = FetchedKey {
                key_type: KeyType::Aes,
                material: material.clone(),
            };
            sealed.keep(&name, "", &key, &uid, &server);
        }
        self.remember(key_id, version, material);
        Ok(())
    }

    /// Looks on the KMIP server for versions of `key_id` above the latest known one and
    /// publishes the highest found (after reading its bytes). Returns the latest version, or
    /// None when the key has no version at all.
    pub fn load(&self, key_id: u32) -> Result<Option<u32>, KeyStoreError> {
        self.client.one_call(|| self.load_in(key_id))
    }

    /// As `load` for several key ids, whose first look-ups share one message (keys 1 and 2 at
    /// start). A key id found to have no version is answered "unknown" from memory for a few
    /// seconds, as after a failed look-up, so the server's first question about it does not
    /// ask the KMIP server again.
    pub fn load_many(&self, key_ids: &[u32]) -> Result<Vec<Option<u32>>, KeyStoreError> {
        self.client.one_call(|| {
            let keys: Vec<(u32, u32)> = key_ids
                .iter()
                .map(|&id| (id, self.known_latest(id).unwrap_or(0)))
                .collect();
            let firsts = remote::first_steps(&self.client, &self.namespace, &keys)?;
            let mut out = Vec::with_capacity(keys.len());
            for (&(key_id, known), first) in keys.iter().zip(firsts) {
                let latest = self.load_with(key_id, known, first)?;
                if latest.is_none() {
                    lock(&self.unknown).insert(key_id, Instant::now());
                }
                out.push(latest);
            }
            Ok(out)
        })
    }

    fn load_in(&self, key_id: u32) -> Result<Option<u32>, KeyStoreError> {
        let known = self.known_latest(key_id).unwrap_or(0);
        let first = remote::first_steps(&self.client, &self.namespace, &[(key_id, known)])?
            .pop()
            .unwrap_or_default();
        self.load_with(key_id, known, first)
    }

    fn load_with(
        &self,
        key_id: u32,
        known: u32,
        first: remote::FirstStep,
    ) -> Result<Option<u32>, KeyStoreError> {
        match remote::probe_latest(&self.client, &self.namespace, key_id, known, first)? {
            Some((version, located, material)) => {
                self.fetch(key_id, version, Some(located), material)?;
                self.publish(key_id, version);
                Ok(Some(version))
            }
            None => Ok((known > 0).then_some(known)),
        }
    }

    /// As `load`, for a key that must exist (key 1 at start).
    pub fn require(&self, key_id: u32) -> Result<u32, KeyStoreError> {
        self.load(key_id)?.ok_or_else(|| KeyStoreError::Missing {
            key_id,
            name: object_name(&self.namespace, key_id, 1),
        })
    }

    /// get_latest_key_version. A key id that worked once is answered from memory, always. A key
    /// id never seen (a table created with a new ENCRYPTION_KEY_ID, or opened for the first
    /// time) is looked up once on the KMIP server, within the client's deadlines; that happens
    /// when a table is created or opened, not on page writes, which only ever name ids that
    /// already worked. A failed look-up is remembered for a few seconds.
    pub fn latest_version(&self, key_id: u32) -> Option<u32> {
        bump(&self.counters.latest_requests);
        if let Some(v) = read(&self.latest).get(&key_id) {
            return Some(*v);
        }
        {
            let mut unknown = lock(&self.unknown);
            if let Some(at) = unknown.get(&key_id) {
                if at.elapsed() < UNKNOWN_HOLD {
                    return None;
                }
                unknown.remove(&key_id);
            }
        }
        match self.load(key_id) {
            Ok(Some(v)) => {
                tracing::info!(
                    "key {key_id} found on the KMIP server: latest version {v} ({})",
                    object_name(&self.namespace, key_id, v)
                );
                Some(v)
            }
            result => {
                match result {
                    Err(e) => tracing::warn!("key {key_id} is not available: {e}"),
                    // Said once per key id: the server asks for key 2 (temporary data) on
                    // every start and falls back to key 1, which is normal.
                    _ if lock(&self.reported_missing).insert(key_id) => tracing::info!(
                        "{}",
                        KeyStoreError::Missing {
                            key_id,
                            name: object_name(&self.namespace, key_id, 1)
                        }
                    ),
                    _ => {}
                }
                lock(&self.unknown).insert(key_id, Instant::now());
                // A concurrent load or rotation may have published it meanwhile.
                self.known_latest(key_id)
            }
        }
    }

    /// get_key: runs `use_key` on the bytes of (key_id, version), from memory, reading a
    /// version not in memory from the KMIP server. None on any failure.
    pub fn with_key<R>(
        &self,
        key_id: u32,
        version: u32,
        use_key: impl FnOnce(&[u8]) -> R,
    ) -> Option<R> {
        bump(&self.counters.key_requests);
        if version == 0 || version == u32::MAX || lock(&self.refused).contains(&(key_id, version)) {
            bump(&self.counters.key_failures);
            return None;
        }
        let stale = {
            let keys = read(&self.keys);
            match keys.get(&(key_id, version)) {
                Some(cached) => {
                    if self.is_fresh(key_id, version, cached) {
                        bump(&self.counters.key_cache_hits);
                        return Some(use_key(&cached.material));
                    }
                    true
                }
                None => false,
            }
        };
        match self
            .client
            .one_call(|| self.fetch(key_id, version, None, None))
        {
            Ok(()) => {
                if lock(&self.served_stale).remove(&(key_id, version)) {
                    tracing::info!(
                        "key {key_id} version {version}: read from the KMIP server again"
                    );
                }
            }
            Err(e) if e.is_definitely_gone() => {
                // The server said the version is gone: every copy goes, the sealed one too.
                if let Some(sealed) = self.sealed() {
                    sealed.forget(&object_name(&self.namespace, key_id, version), "");
                }
                lock(&self.served_stale).remove(&(key_id, version));
                if stale {
                    write(&self.keys).remove(&(key_id, version));
                }
                tracing::error!("key {key_id} version {version} is not available: {e}");
                bump(&self.counters.key_failures);
                return None;
            }
            Err(e) => {
                // Any other failure (no server answers, a General Failure during a fail-over,
                // Permission Denied during a policy change) says nothing about the version:
                // the copy in memory stays, and the sealed one stands in when there is none
                // (unless the server refused this client: `sealed_may_stand_in`).
                let use_memory = stale && self.tunables.use_cache_on_error.load(Ordering::Relaxed);
                if use_memory {
                    if lock(&self.served_stale).insert((key_id, version)) {
                        tracing::warn!(
                            "key {key_id} version {version}: reading it again failed ({e}); serving the cached copy (use_cache_on_error) until the KMIP server answers for it"
                        );
                    }
                } else if !(e.sealed_may_stand_in() && self.serve_sealed(key_id, version, &e)) {
                    tracing::error!("key {key_id} version {version} is not available: {e}");
                    bump(&self.counters.key_failures);
                    return None;
                }
            }
        }
        let keys = read(&self.keys);
        match keys.get(&(key_id, version)) {
            Some(cached) => Some(use_key(&cached.material)),
            None => {
                bump(&self.counters.key_failures);
                None
            }
        }
    }

    /// What the KMIP server says now of the version named `name` (the sealed key cache's
    /// confirmation). A version of another namespace is not asked about: it is left as it is,
    /// never reported gone.
    pub fn confirm_sealed(&self, name: &str) -> Answer {
        let Some((key_id, version)) = super::naming::parse_object_name(&self.namespace, name)
        else {
            // Another namespace's version (kmip_key_management_key_namespace was changed):
            // not this configuration's to confirm, nor revoked, nor served.
            return Answer::NotMine(match super::naming::namespace_of(name) {
                Some(other) => format!(
                    "key versions of the namespace '{other}', not of the namespace '{}' in force; kmip_key_management_key_namespace was changed",
                    self.namespace
                ),
                None => format!(
                    "'{name}' is not of the namespace '{}' in force; kmip_key_management_key_namespace was changed",
                    self.namespace
                ),
            });
        };
        let asked: Result<_, KeyStoreError> =
            self.client.one_call(|| {
                match remote::find_version(&self.client, &self.namespace, key_id, version)? {
                    None => Ok(None),
                    Some((uid, server)) => {
                        let material = remote::fetch_material(&self.client, &uid, &server, name)?;
                        Ok(Some((material, uid, server)))
                    }
                }
            });
        match asked {
            Ok(Some((material, uid, server))) => Answer::Key {
                key: FetchedKey {
                    key_type: KeyType::Aes,
                    material,
                },
                uid,
                server: server.to_string(),
            },
            Ok(None) => Answer::Gone,
            Err(e) if e.is_definitely_gone() => Answer::Gone,
            Err(e) if e.is_unreachable() => Answer::Unreachable(e.to_string()),
            Err(e) => Answer::Failed(e.to_string()),
        }
    }

    /// What the KMIP server says now of the sealed key cache's versions (`known`, as
    /// [`SealedCache::known_objects`] lists them), read together: the objects of this
    /// namespace's versions on the server the connection uses now, at most
    /// [`READ_KNOWN_MAX`](crate::keyring::READ_KNOWN_MAX) per message (`remote::read_versions`).
    /// Only versions whose object is still their Active AES key are answered; the others
    /// (renamed, gone, not Active, on another server, another namespace's, or the message
    /// failed) are left to [`confirm_sealed`](Self::confirm_sealed), whose answer is then the
    /// one a confirmation of that version alone gives.
    pub fn confirm_sealed_many(&self, known: &[KnownObject]) -> Batched {
        let mut answers = Batched::new();
        // An identifier means nothing on another server.
        let Some(server) = self.client.in_use().map(|c| c.server.to_string()) else {
            return answers;
        };
        let mine: Vec<&KnownObject> = known
            .iter()
            .filter(|(name, owner, _, at)| {
                owner.is_empty()
                    && *at == server
                    && super::naming::parse_object_name(&self.namespace, name).is_some()
            })
            .collect();
        for chunk in mine.chunks(crate::keyring::READ_KNOWN_MAX) {
            let versions: Vec<(&str, &str)> = chunk
                .iter()
                .map(|(name, _, uid, _)| (name.as_str(), uid.as_str()))
                .collect();
            let read = self.client.one_call(|| {
                remote::read_versions(&self.client, &server, &self.namespace, &versions)
            });
            let read = match read {
                Ok(read) => read,
                Err(e) => {
                    tracing::debug!("the sealed key cache's versions were not read together: {e}");
                    break;
                }
            };
            for ((name, owner, uid, _), key) in chunk.iter().zip(read) {
                if let Some(key) = key {
                    let answer = Answer::Key {
                        key,
                        uid: uid.clone(),
                        server: server.clone(),
                    };
                    answers.insert((name.clone(), owner.clone()), answer);
                }
            }
        }
        answers
    }

    /// Puts the sealed copy of (key_id, version) in memory when no KMIP server answers; false
    /// when there is none (or it is too old).
    fn serve_sealed(&self, key_id: u32, version: u32, cause: &KeyStoreError) -> bool {
        let Some(sealed) = self.sealed() else {
            return false;
        };
        let name = object_name(&self.namespace, key_id, version);
        match sealed.serve(&name, "", cause) {
            Ok(Some(crate::sealed::Served::Key(key))) => {
                self.remember(key_id, version, key.material);
                true
            }
            _ => false,
        }
    }

    /// The latest version's bytes never expire: InnoDB aborts when it cannot get the key it
    /// encrypts with.
    fn is_fresh(&self, key_id: u32, version: u32, cached: &Cached) -> bool {
        match self.cache_timeout() {
            None => true,
            Some(timeout) => {
                cached.fetched.elapsed() < timeout || self.known_latest(key_id) == Some(version)
            }
        }
    }

    /// One background round: look for new versions of every known key id.
    pub fn refresh(&self) {
        bump(&self.counters.refreshes);
        let mut failed = None;
        for key_id in self.known_ids() {
            let before = self.known_latest(key_id);
            match self.load(key_id) {
                Ok(now) if now != before => {
                    if let Some(v) = now {
                        tracing::info!("key {key_id}: new latest version {v}");
                    }
                }
                Ok(_) => {}
                Err(e) => failed = Some(e),
            }
        }
        match failed {
            // Shutdown cut the round short: nothing to tell the DBA.
            Some(_) if self.client.is_closed() => {}
            Some(e) => {
                bump(&self.counters.refresh_errors);
                if !self.refresh_failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "looking for new key versions failed: {e}; the versions in memory stay in use and the refresh goes on"
                    );
                }
            }
            None => {
                if self.refresh_failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("looking for new key versions works again");
                }
            }
        }
    }

    /// Makes a new version of `key_id` (or of every known key id) on the KMIP server and
    /// publishes it. Returns the (key id, version) pairs made.
    pub fn rotate(&self, key_id: Option<u32>) -> Result<Vec<(u32, u32)>, KeyStoreError> {
        let _writing = lock(&self.writes);
        let ids = match key_id {
            Some(id) => vec![id],
            None => self.known_ids(),
        };
        let mut made = Vec::new();
        // One deadline per key id: rotating every key of a busy server is one call per key.
        // Key ids are rotated several at a time, so that their create race waits (`race`)
        // overlap instead of adding up; each id's versions stay ordered (one thread per id).
        for group in ids.chunks(ROTATE_AT_ONCE) {
            let outcomes: Vec<Result<(u32, u32), KeyStoreError>> = std::thread::scope(|scope| {
                let threads: Vec<_> = group
                    .iter()
                    .map(|&id| scope.spawn(move || self.client.one_call(|| self.rotate_one(id))))
                    .collect();
                threads
                    .into_iter()
                    .zip(group)
                    .map(|(thread, &id)| {
                        thread.join().unwrap_or_else(|_| {
                            Err(KeyStoreError::Race {
                                name: format!("{}/{id}", self.namespace),
                                why: "the rotation of this key failed unexpectedly; try again"
                                    .into(),
                            })
                        })
                    })
                    .collect()
            });
            for outcome in outcomes {
                match outcome {
                    Ok(m) => made.push(m),
                    Err(e) if e.is_unreachable() => {
                        match self.sealed().filter(|s| s.is_serving()) {
                            Some(s) => return Err(KeyStoreError::ReadOnly(s.write_refused(&e))),
                            None => return Err(e),
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(made)
    }

    fn rotate_one(&self, id: u32) -> Result<(u32, u32), KeyStoreError> {
        // Another server may have rotated meanwhile: build on the newest version there.
        // A key id with no version is refused, so that a mistyped id does not make a key.
        let current = self.load_in(id)?.ok_or_else(|| KeyStoreError::Missing {
            key_id: id,
            name: object_name(&self.namespace, id, 1),
        })?;
        self.add_version(id, current)
    }

    /// Makes version 1 of a key that has none (the admin tool's create-key).
    pub fn create_first(&self, key_id: u32) -> Result<(u32, u32), KeyStoreError> {
        let _writing = lock(&self.writes);
        self.client.one_call(|| {
            if let Some(version) = self.load_in(key_id)? {
                return Err(KeyStoreError::Exists { key_id, version });
            }
            self.add_version(key_id, 0)
        })
    }

    /// Registers the keys of a file_key_management key file as version 1 of their key ids
    /// (`keyring-okv mariadb import`). A key id that has a version already is refused, and
    /// with it the whole import, unless its only version holds exactly the file's bytes (an
    /// import run again after a failure part way): that one is skipped. Returns each key id
    /// with whether it was imported now (false: it was there already).
    pub fn import(&self, keys: &[(u32, &[u8])]) -> Result<Vec<(u32, bool)>, KeyStoreError> {
        let _writing = lock(&self.writes);
        let mut done = Vec::new();
        let mut refused = Vec::new();
        for &(key_id, material) in keys {
            let there = self
                .client
                .one_call(|| self.imported_already(key_id, material))?;
            match there {
                Some(true) => done.push((key_id, false)),
                Some(false) => refused.push(key_id),
                None => {}
            }
        }
        if !refused.is_empty() {
            let ids: Vec<String> = refused.iter().map(u32::to_string).collect();
            return Err(KeyStoreError::ImportRefused {
                namespace: self.namespace.clone(),
                ids: ids.join(", "),
            });
        }
        for &(key_id, material) in keys {
            if done.iter().any(|(id, _)| *id == key_id) {
                continue;
            }
            let registered: Result<remote::Located, KeyStoreError> = self.client.one_call(|| {
                let located =
                    remote::register_version(&self.client, &self.namespace, key_id, 1, material)?;
                self.check_imported(key_id, &located, material)?;
                Ok(located)
            });
            match registered {
                Ok(_) => {
                    tracing::info!(
                        "key {key_id}: imported as version 1 ({})",
                        object_name(&self.namespace, key_id, 1)
                    );
                    done.push((key_id, true));
                }
                // Another import of the same key finished first: nothing left to do.
                Err(KeyStoreError::Taken { .. })
                    if self
                        .client
                        .one_call(|| self.imported_already(key_id, material))
                        .is_ok_and(|there| there == Some(true)) =>
                {
                    done.push((key_id, false));
                }
                Err(e) if done.iter().any(|(_, now)| *now) => {
                    let ids: Vec<String> = done.iter().map(|(id, _)| id.to_string()).collect();
                    return Err(KeyStoreError::ImportPartial {
                        done: ids.join(", "),
                        key_id,
                        why: e.to_string(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        done.sort_unstable();
        Ok(done)
    }

    /// None when `key_id` has no version; Some(true) when its only version is 1 and holds
    /// `material`; Some(false) otherwise.
    fn imported_already(
        &self,
        key_id: u32,
        material: &[u8],
    ) -> Result<Option<bool>, KeyStoreError> {
        let first = remote::find_version(&self.client, &self.namespace, key_id, 1)?;
        let latest = self.load_in(key_id)?;
        match (first, latest) {
            // Any other object under the name (not Active) is refused by the Register's look.
            (None, None) => Ok(None),
            (Some(located), Some(1)) => {
                let held = remote::fetch_material(
                    &self.client,
                    &located.0,
                    &located.1,
                    &object_name(&self.namespace, key_id, 1),
                )?;
                Ok(Some(held.as_slice() == material))
            }
            _ => Ok(Some(false)),
        }
    }

    /// Reads the registered version back: the KMIP server must give the file's bytes.
    fn check_imported(
        &self,
        key_id: u32,
        located: &remote::Located,
        material: &[u8],
    ) -> Result<(), KeyStoreError> {
        let name = object_name(&self.namespace, key_id, 1);
        let held = remote::fetch_material(&self.client, &located.0, &located.1, &name)?;
        if held.as_slice() != material {
            return Err(KeyStoreError::Unusable {
                uid: located.0.clone(),
                name,
                why: "the KMIP server gives other bytes than were registered".into(),
            });
        }
        self.remember(key_id, 1, held);
        self.publish(key_id, 1);
        Ok(())
    }

    fn add_version(&self, key_id: u32, current: u32) -> Result<(u32, u32), KeyStoreError> {
        let next = current
            .checked_add(1)
            .filter(|v| *v < u32::MAX)
            .ok_or(KeyStoreError::VersionsExhausted { key_id })?;
        // Another client may make the same version at the same moment: `create_version` returns
        // the one object every client settles on, and only its bytes are published.
        let located = remote::create_version(&self.client, &self.namespace, key_id, next)?;
        self.fetch(key_id, next, Some(located), None)?;
        self.publish(key_id, next);
        bump(&self.counters.rotations);
        tracing::info!(
            "key {key_id}: new version {next} ({})",
            object_name(&self.namespace, key_id, next)
        );
        Ok((key_id, next))
    }

    pub fn stats(&self) -> StoreStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StoreStats {
            latest_requests: get(&c.latest_requests),
            key_requests: get(&c.key_requests),
            key_cache_hits: get(&c.key_cache_hits),
            key_fetches: get(&c.key_fetches),
            key_failures: get(&c.key_failures),
            refreshes: get(&c.refreshes),
            refresh_errors: get(&c.refresh_errors),
            rotations: get(&c.rotations),
            key_ids: read(&self.latest).len() as u64,
            keys_cached: read(&self.keys).len() as u64,
        }
    }
}
