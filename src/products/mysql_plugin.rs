//! The state of keyring_okv.so (the MySQL keyring plugin), with no C types: which configuration
//! is in force, the keyring built from it and the opt-in key cache in front of it.
//! boundary/plugin converts pointers and calls these functions.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use crate::config::{self, ConfigError};
use crate::connector::{ClientError, KmipClient};
use crate::guard::{self, for_keyring::KeyringGuard};
use crate::health::{Health, Snapshot};
use crate::keyring::cache::KeyCache;
use crate::keyring::key_locks::KeyLocks;
use crate::keyring::start_memory::{Ended, StartMemory};
use crate::keyring::{FetchedKey, KeyEntry, KeyType, Keyring, KeyringError};
use crate::sealed::for_keyring::{KeyringSeal, SealedFetchError, WriteError};
use crate::sealed::{self, SealedCache, SealedError};

/// The warning the MySQL manual documents for a server started without a configuration.
pub const NOT_CONFIGURED_WARNING: &str = "For keyring_okv to be initialized, please point the keyring_okv_conf_dir variable to a directory containing Oracle Key Vault configuration file and ssl materials";

/// The id mysqld's keyring proxy fetches to ask whether the keyring works.
pub const HEALTH_PROBE_KEY_ID: &str = "dummy_daemon_proxy_keyring_id";

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("keyring_okv is not configured: {0}")]
    NotConfigured(String),
    #[error("keyring_okv_conf_dir cannot be set to an empty value")]
    EmptyDir,
    #[error("keyring_okv_conf_dir: {0}")]
    Config(#[from] ConfigError),
    #[error("keyring_okv_conf_dir={dir}: {source}; the previous configuration stays in force")]
    Unreachable { dir: String, source: ClientError },
    #[error("keyring_okv: cannot start its I/O thread: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(
        "keyring_okv is being uninstalled or the server is shutting down; keyring calls are refused"
    )]
    ShuttingDown,
    #[error("keyring_okv: {0}")]
    Sealed(#[from] SealedError),
    #[error("keyring_okv: {0}")]
    ReadOnly(String),
}

impl From<SealedFetchError> for PluginError {
    fn from(e: SealedFetchError) -> Self {
        match e {
            SealedFetchError::Keyring(e) => PluginError::Keyring(e),
            SealedFetchError::Sealed(e) => PluginError::Sealed(e),
        }
    }
}

impl From<WriteError> for PluginError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Keyring(e) => PluginError::Keyring(e),
            WriteError::ReadOnly(m) => PluginError::ReadOnly(m),
        }
    }
}

/// A configuration loaded and checked, not yet in force.
pub struct Prepared {
    dir: String,
    keyring: Keyring,
    /// The sealed key cache of this configuration, when `keyring_okv_sealed_cache_max_age_hours`
    /// turns it on and its file is acceptable.
    sealed: Option<SealedCache>,
    /// Prepared by plugin init (a start of mysqld, or INSTALL PLUGIN), not by SET GLOBAL.
    at_start: bool,
}

impl Prepared {
    pub fn dir(&self) -> &str {
        &self.dir
    }
}

static ACTIVE: RwLock<Option<Arc<Keyring>>> = RwLock::new(None);

/// The plugin's counters; they outlive changes of configuration.
static HEALTH: LazyLock<Arc<Health>> = LazyLock::new(|| Arc::new(Health::new()));

/// The plugin's health counters, read without any network I/O.
pub fn health() -> Snapshot {
    HEALTH.snapshot()
}

/// Why no configuration is in force, for the message of every refused call.
static PROBLEM: RwLock<Option<String>> = RwLock::new(None);

/// Records why startup left the keyring unconfigured.
pub fn set_problem(problem: String) {
    *PROBLEM.write().unwrap_or_else(PoisonError::into_inner) = Some(problem);
}

/// Loads and validates `dir` completely and builds a keyring for it. With `require_reachable`,
/// also connects to its servers and fails when none answers (SET GLOBAL); at startup the
/// configuration is kept even while the servers are down, so the keyring works once they are up.
pub fn prepare(dir: &str, require_reachable: bool) -> Result<Prepared, PluginError> {
    if dir.is_empty() {
        return Err(PluginError::EmptyDir);
    }
    let conf = config::load_conf_dir(std::path::Path::new(dir))?;
    for warning in &conf.warnings {
        tracing::warn!("{warning}");
    }
    // Counters of its own until it is put in force: a configuration that SET GLOBAL then
    // refuses must not show in the status of the one in force.
    let client = KmipClient::from_conf_dir_with_health(&conf, Arc::new(Health::new()))
        .map_err(PluginError::Runtime)?;
    match client.connect() {
        Ok(connected) => tracing::info!(
            "keyring_okv: configuration {dir} loaded, connected to KMIP server {}",
            connected.server
        ),
        Err(source) if require_reachable => {
            return Err(PluginError::Unreachable {
                dir: dir.to_string(),
                source,
            });
        }
        Err(e) => tracing::error!(
            "keyring_okv: using configuration {dir}, but {e}; keyring calls fail until a server answers"
        ),
    }
    let sealed = match (SEALED_HOURS.load(Ordering::SeqCst), sealed_dir()) {
        (0, _) => None,
        (_, None) => {
            tracing::error!(
                "keyring_okv: keyring_okv_sealed_cache_dir must be a UTF-8 path; the sealed key cache is off"
            );
            None
        }
        (hours, Some(sealed_dir)) => Some(
            SealedCache::open(
                &conf,
                sealed::PLUGIN,
                hours,
                Path::new(&sealed_dir),
                sealed::Access::of_this_process(),
            )
            .with_user_keys(SEALED_USER_KEYS.load(Ordering::SeqCst)),
        ),
    };
    Ok(Prepared {
        dir: dir.to_string(),
        keyring: Keyring::new(client),
        sealed,
        at_start: !require_reachable,
    })
}

/// Puts a prepared configuration in force; the previous keyring is released when its last
/// in-flight call finishes.
pub fn install(prepared: Prepared) {
    let client = prepared.keyring.client();
    HEALTH.set_configuration(Some(client.server_count()));
    client.report_to(HEALTH.clone());
    // The connection made while preparing counts from now on.
    if let Some(connected) = client.in_use() {
        HEALTH.connected(&connected.server.to_string(), connected.index);
    }
    let active = Arc::new(prepared.keyring);
    *PROBLEM.write().unwrap_or_else(PoisonError::into_inner) = None;
    let old = ACTIVE
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .replace(active.clone());
    // What the old configuration's servers said is not what the new ones say.
    renew_cache(Some(&active));
    end_start(Ended::Replaced);
    // With the key cache off, a start still asks the KMIP server for each master key once
    // (see `start_memory`); the key cache, when on, already does.
    if prepared.at_start && !CACHE_KEYS.load(Ordering::SeqCst) {
        *START.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(StartInForce {
            keyring: Arc::downgrade(&active),
            memory: crate::products::mysqld_start::start_memory("keyring_okv"),
        }));
    }
    // At a start, the keys of the sealed cache fill the key cache in one message before
    // mysqld asks for them one by one. A configuration put in force by SET GLOBAL (under the
    // server's global variable lock) makes no KMIP request here, and the cache it replaces is
    // stopped by the new cache's thread, not here.
    let key_cache = cache_for(&active);
    let old_seal = SEAL.write().unwrap_or_else(PoisonError::into_inner).take();
    let replaces =
        old_seal.map(|old| -> Box<dyn FnOnce() + Send> { Box::new(move || stop_seal(&old)) });
    let seal = prepared.sealed.and_then(|cache| {
        KeyringSeal::start(cache, &active, key_cache.as_ref().map(|c| &c.cache), replaces)
            .map_err(|e| {
                tracing::error!(
                    "keyring_okv: cannot start the thread that confirms the sealed key cache ({e}); the sealed key cache is off"
                )
            })
            .ok()
    });
    *SEAL.write().unwrap_or_else(PoisonError::into_inner) = seal.map(|seal| {
        Arc::new(SealInForce {
            keyring: Arc::downgrade(&active),
            seal,
        })
    });
    GUARD.start(&active, Arc::new(drop_cached));
    drop(old);
}

/// `keyring_okv_sealed_cache_max_age_hours` (0: no sealed key cache); read at plugin init.
static SEALED_HOURS: AtomicU64 = AtomicU64::new(0);

/// `keyring_okv_sealed_cache_user_keys`: keep keys with an owner (keyring_udf) too.
static SEALED_USER_KEYS: AtomicBool = AtomicBool::new(false);

/// `keyring_okv_sealed_cache_dir`; None when its value is not UTF-8.
static SEALED_DIR: RwLock<Option<String>> = RwLock::new(None);

fn sealed_dir() -> Option<String> {
    SEALED_DIR
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Sets `keyring_okv_sealed_cache_max_age_hours`, `keyring_okv_sealed_cache_user_keys` and
/// `keyring_okv_sealed_cache_dir` (plugin init, before the configuration is prepared).
pub fn set_sealed_cache(hours: u64, user_keys: bool, dir: Option<String>) {
    SEALED_HOURS.store(hours, Ordering::SeqCst);
    SEALED_USER_KEYS.store(user_keys, Ordering::SeqCst);
    *SEALED_DIR.write().unwrap_or_else(PoisonError::into_inner) = dir;
}

/// The sealed key cache in force and the keyring it belongs to.
struct SealInForce {
    keyring: Weak<Keyring>,
    seal: KeyringSeal,
}

static SEAL: RwLock<Option<Arc<SealInForce>>> = RwLock::new(None);

/// Closes a sealed key cache (its pending times written) and joins its thread.
fn stop_seal(old: &SealInForce) {
    let wait = crate::connector::runtime::THREAD_WAIT;
    if !old.seal.stop(Instant::now() + wait) {
        tracing::error!(
            "keyring_okv: the sealed key cache's thread was still running {} s after it was asked to stop",
            wait.as_secs()
        );
    }
}

/// Closes the sealed key cache in force and joins its thread (unload).
fn replace_seal(new: Option<Arc<SealInForce>>) {
    let old = std::mem::replace(
        &mut *SEAL.write().unwrap_or_else(PoisonError::into_inner),
        new,
    );
    if let Some(old) = old {
        stop_seal(&old);
    }
}

/// The sealed key cache to use with `keyring`, if one is in force for it.
fn seal_for(keyring: &Arc<Keyring>) -> Option<Arc<SealInForce>> {
    SEAL.read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .filter(|s| Weak::ptr_eq(&s.keyring, &Arc::downgrade(keyring)))
}

/// The sealed key cache's figures, when it is on.
pub fn sealed_status() -> Option<sealed::Status> {
    SEAL.read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(|s| s.seal.cache().status())
}

/// `keyring_okv_cache_keys`.
static CACHE_KEYS: AtomicBool = AtomicBool::new(false);
/// `keyring_okv_cache_ttl_seconds` (0: until the cache is renewed).
static CACHE_TTL_SECONDS: AtomicU64 = AtomicU64::new(DEFAULT_CACHE_TTL_SECONDS);
/// Default `keyring_okv_cache_ttl_seconds`, the component's default `cache_ttl_seconds`.
pub const DEFAULT_CACHE_TTL_SECONDS: u64 =
    crate::products::mysql_component::settings::DEFAULT_CACHE_TTL.as_secs();

/// The key cache in force, and the keyring whose answers it holds: a call uses it only with
/// that keyring, so a configuration replaced never mixes its answers with the new one's.
struct CacheInForce {
    keyring: Weak<Keyring>,
    cache: KeyCache,
}

static CACHE: RwLock<Option<Arc<CacheInForce>>> = RwLock::new(None);

/// The start-time memory in force (key cache off, from plugin init until the server has
/// started), and the keyring whose answers it holds.
struct StartInForce {
    keyring: Weak<Keyring>,
    memory: StartMemory,
}

static START: RwLock<Option<Arc<StartInForce>>> = RwLock::new(None);

/// Ends the start-time memory in force, if any, and wipes its keys.
fn end_start(why: Ended) {
    let old = START.write().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(old) = old {
        old.memory.end(why);
    }
}

/// The start-time memory to use with `keyring`, if one is in force for it.
fn start_for(keyring: &Arc<Keyring>) -> Option<Arc<StartInForce>> {
    START
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .filter(|s| Weak::ptr_eq(&s.keyring, &Arc::downgrade(keyring)))
}

/// Serialises each write of a key with its cache update, so that the cache records the writes
/// of a key in the order the KMIP server saw them (the keyring serialises only the KMIP side).
/// Writes of different keys do not wait for each other.
static WRITES: LazyLock<KeyLocks<(String, String)>> = LazyLock::new(KeyLocks::new);

/// Sets `keyring_okv_cache_keys` and `keyring_okv_cache_ttl_seconds` (plugin init, SET GLOBAL):
/// the cache starts empty, or is wiped and its thread ended when turned off.
pub fn set_cache(on: bool, ttl_seconds: u64) {
    CACHE_KEYS.store(on, Ordering::SeqCst);
    CACHE_TTL_SECONDS.store(ttl_seconds, Ordering::SeqCst);
    end_start(Ended::Replaced);
    let keyring = ACTIVE
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    renew_cache(keyring.as_ref());
}

/// Puts an empty cache for `keyring` in force, per the settings, and wipes the one before.
fn renew_cache(keyring: Option<&Arc<Keyring>>) {
    let ttl = match CACHE_TTL_SECONDS.load(Ordering::SeqCst) {
        0 => None,
        seconds => Some(Duration::from_secs(seconds)),
    };
    let new = match keyring {
        Some(keyring) if CACHE_KEYS.load(Ordering::SeqCst) => match KeyCache::new(ttl) {
            Ok(cache) => Some(Arc::new(CacheInForce {
                keyring: Arc::downgrade(keyring),
                cache,
            })),
            Err(e) => {
                tracing::error!(
                    "keyring_okv: cannot start the thread that wipes expired cached keys ({e}); keys are not cached"
                );
                None
            }
        },
        _ => None,
    };
    let old = std::mem::replace(
        &mut *CACHE.write().unwrap_or_else(PoisonError::into_inner),
        new,
    );
    if let Some(old) = old {
        old.cache.shutdown();
    }
}

/// The cache to use with `keyring`, if one is in force for it.
fn cache_for(keyring: &Arc<Keyring>) -> Option<Arc<CacheInForce>> {
    CACHE
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .filter(|c| Weak::ptr_eq(&c.keyring, &Arc::downgrade(keyring)))
}

/// Keys whose material is cached, and keys cached as absent.
pub fn cached_keys() -> (usize, usize) {
    CACHE
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map_or((0, 0), |c| (c.cache.len(), c.cache.absent()))
}

/// How long plugin deinit waits for keyring calls in flight. They were told to give up, so they
/// return as soon as their thread runs again; this only bounds a caller stuck elsewhere.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(5);

/// Set by deinit: every keyring call is refused from then on, until the next init.
static CLOSING: AtomicBool = AtomicBool::new(false);
static IN_FLIGHT: Mutex<usize> = Mutex::new(0);
static IN_FLIGHT_DONE: Condvar = Condvar::new();

/// One keyring call in flight; deinit waits for it.
struct InFlight;

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut n = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
        *n = n.saturating_sub(1);
        if *n == 0 {
            IN_FLIGHT_DONE.notify_all();
        }
    }
}

fn enter() -> Result<InFlight, PluginError> {
    let mut n = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
    // Checked under the lock deinit takes to count, so no call slips in after the count.
    if CLOSING.load(Ordering::SeqCst) {
        return Err(PluginError::ShuttingDown);
    }
    *n += 1;
    Ok(InFlight)
}

/// Keyring calls in flight now.
pub fn calls_in_flight() -> usize {
    *IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Plugin init: keyring calls are accepted again (after an earlier UNINSTALL PLUGIN).
pub fn start() {
    CLOSING.store(false, Ordering::SeqCst);
}

/// Releases the keyring, its connection and the I/O thread (plugin deinit): refuses new calls,
/// tells the calls in flight to give up, waits for them (at most `IN_FLIGHT_WAIT`), then stops
/// the I/O thread, so that nothing of ours runs once the server unloads the library.
pub fn shutdown() {
    {
        let _count = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
        CLOSING.store(true, Ordering::SeqCst);
    }
    let old = ACTIVE
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(keyring) = &old {
        keyring.client().close();
    }
    renew_cache(None);
    end_start(Ended::Unload);
    replace_seal(None);
    GUARD.stop();
    drop(
        PARKED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(),
    );
    let started = Instant::now();
    let mut n = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
    while *n > 0 && started.elapsed() < IN_FLIGHT_WAIT {
        let left = IN_FLIGHT_WAIT.saturating_sub(started.elapsed());
        n = IN_FLIGHT_DONE
            .wait_timeout(n, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    let stuck = *n;
    drop(n);
    if stuck > 0 {
        tracing::warn!(
            "keyring_okv: {stuck} keyring call(s) still running after {} s at unload",
            IN_FLIGHT_WAIT.as_secs()
        );
    }
    drop(old);
    HEALTH.set_configuration(None);
    crate::connector::runtime::shutdown();
}

/// How long a configuration that SET GLOBAL's check prepared waits for the update of the same
/// statement. When another part of the statement fails, mysqld never calls the update; the
/// configuration, its TLS session and its private key are then released after this time, at
/// the next SET GLOBAL keyring_okv_conf_dir, or at unload, whichever comes first.
pub const PARK_LIMIT: Duration = Duration::from_secs(10);

struct Parked {
    at: Instant,
    prepared: Prepared,
}

static PARKED: LazyLock<Mutex<HashMap<u64, Parked>>> = LazyLock::new(|| Mutex::new(HashMap::new()));
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

fn release_expired(parked: &mut HashMap<u64, Parked>) {
    parked.retain(|_, p| p.at.elapsed() < PARK_LIMIT);
}

/// Keeps a checked configuration for the update of the same statement; returns its token
/// (never 0).
pub fn park(prepared: Prepared) -> u64 {
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    let mut parked = PARKED.lock().unwrap_or_else(PoisonError::into_inner);
    release_expired(&mut parked);
    parked.insert(
        token,
        Parked {
            at: Instant::now(),
            prepared,
        },
    );
    drop(parked);
    // Nothing else may come by to release it: a timer on the I/O thread does.
    if let Ok(runtime) = crate::connector::runtime::handle() {
        runtime.spawn(async {
            tokio::time::sleep(PARK_LIMIT).await;
            let expired: Vec<Parked> = {
                let mut parked = PARKED.lock().unwrap_or_else(PoisonError::into_inner);
                let keys: Vec<u64> = parked
                    .iter()
                    .filter(|(_, p)| p.at.elapsed() >= PARK_LIMIT)
                    .map(|(k, _)| *k)
                    .collect();
                keys.iter().filter_map(|k| parked.remove(k)).collect()
            };
            if !expired.is_empty() {
                tracing::debug!(
                    "released {} configuration(s) whose SET GLOBAL statement failed",
                    expired.len()
                );
            }
            // Dropped outside the lock: closing a TLS session may take a moment.
            drop(expired);
        });
    }
    token
}

/// The configuration parked under `token`, if it is still there.
pub fn unpark(token: u64) -> Option<Prepared> {
    PARKED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&token)
        .map(|p| p.prepared)
}

/// Configurations checked but not (yet) put in force.
pub fn parked_count() -> usize {
    PARKED.lock().unwrap_or_else(PoisonError::into_inner).len()
}

fn current() -> Result<(InFlight, Arc<Keyring>), PluginError> {
    let in_flight = enter()?;
    let keyring = current_keyring()?;
    Ok((in_flight, keyring))
}

/// One keyring call, one deadline: the KMIP requests it makes share the connect timeout + the
/// request timeout.
fn within_deadline<T>(keyring: &Keyring, f: impl FnOnce() -> T) -> T {
    keyring.client().one_call(f)
}

fn current_keyring() -> Result<Arc<Keyring>, PluginError> {
    ACTIVE
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .ok_or_else(|| {
            let problem = PROBLEM.read().unwrap_or_else(PoisonError::into_inner).clone();
            PluginError::NotConfigured(problem.unwrap_or_else(|| {
                "keyring_okv_conf_dir is empty; set it to a directory with okvclient.ora and ssl/".to_string()
            }))
        })
}

/// The KMIP unique identifier of a key the keyring has seen (listed, fetched or made), from
/// memory: never a KMIP call, never a wait on one.
pub fn backend_key_id(key_id: &str, owner: &str) -> Option<String> {
    let keyring = ACTIVE
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()?;
    keyring.known_uid(key_id, owner)
}

/// What a write makes known of the key, for the cache.
enum Known {
    /// The key now holds this material (a store), or none (a remove, or none to remove).
    Now(Option<FetchedKey>),
    /// Not known (the server made the material, or the write failed): asked of the server next.
    Unknown,
}

/// A write with the cache kept in step. The key is forgotten before the write, so that a read
/// in flight does not put back what it replaces; after it, what it made known is recorded in
/// the cache of the write's keyring, and the key is forgotten in a cache put in force meanwhile
/// (its reads may have started before the write ended).
fn write_through<T>(
    keyring: &Arc<Keyring>,
    key_id: &str,
    owner: &str,
    write: impl FnOnce() -> Result<T, KeyringError>,
    known: impl FnOnce(&Result<T, KeyringError>) -> Known,
) -> Result<T, KeyringError> {
    // Before the request is sent: no read after a write is answered from before it.
    end_start(Ended::Write);
    let _writing = WRITES.lock((key_id.to_string(), owner.to_string()));
    let before = cache_for(keyring);
    if let Some(c) = &before {
        c.cache.forget(key_id, owner);
    }
    let outcome = write();
    if let Some(c) = &before {
        match known(&outcome) {
            Known::Now(key) => c.cache.wrote(key_id, owner, key.as_ref()),
            Known::Unknown => c.cache.forget(key_id, owner),
        }
    }
    let now = CACHE.read().unwrap_or_else(PoisonError::into_inner).clone();
    if let Some(now) = now.filter(|n| before.as_ref().is_none_or(|b| !Arc::ptr_eq(n, b))) {
        now.cache.forget(key_id, owner);
    }
    outcome
}

pub fn store(key_id: &str, owner: &str, key_type: &str, key: &[u8]) -> Result<(), PluginError> {
    let (_call, keyring) = current()?;
    let outcome = within_deadline(&keyring, || {
        write_through(
            &keyring,
            key_id,
            owner,
            || {
                let stored = keyring.store(key_id, owner, key_type, key);
                if let (Ok(()), Some(s)) = (&stored, seal_for(&keyring)) {
                    s.seal.stored(&keyring, key_id, owner, key_type, key);
                }
                stored
            },
            |outcome| match (outcome, KeyType::parse(key_type)) {
                // What the server now holds is known: readers need not ask it.
                (Ok(()), Ok(key_type)) => Known::Now(Some(FetchedKey {
                    key_type,
                    material: zeroize::Zeroizing::new(key.to_vec()),
                })),
                _ => Known::Unknown,
            },
        )
    });
    sealed_write(&keyring, key_id, owner, false, outcome)
}

/// A write's outcome, with the sealed key cache (if on) told of it.
fn sealed_write<T>(
    keyring: &Arc<Keyring>,
    key_id: &str,
    owner: &str,
    removed: bool,
    outcome: Result<T, KeyringError>,
) -> Result<T, PluginError> {
    match seal_for(keyring) {
        Some(s) => Ok(s.seal.wrote(key_id, owner, removed, outcome)?),
        None => Ok(outcome?),
    }
}

pub fn generate(key_id: &str, owner: &str, key_type: &str, len: usize) -> Result<(), PluginError> {
    let (_call, keyring) = current()?;
    let outcome = within_deadline(&keyring, || {
        write_through(
            &keyring,
            key_id,
            owner,
            || keyring.generate(key_id, owner, key_type, len),
            |_| Known::Unknown,
        )
    });
    sealed_write(&keyring, key_id, owner, false, outcome)
}

/// With `keyring_okv_cache_keys` ON, a key (or its absence) is answered from memory for
/// `keyring_okv_cache_ttl_seconds` after the KMIP server said it, and after this plugin wrote
/// it; an error is not remembered. With the sealed key cache on, what the server says is kept
/// in it, and it answers when no KMIP server does.
pub fn fetch(key_id: &str, owner: &str) -> Result<Option<FetchedKey>, PluginError> {
    let (_call, keyring) = current()?;
    let seal = seal_for(&keyring);
    let read = || {
        let result = within_deadline(&keyring, || keyring.fetch(key_id, owner));
        if let Some(s) = &seal {
            s.seal.learned(&keyring, key_id, owner, &result);
        }
        result
    };
    let result = match cache_for(&keyring) {
        None => match start_for(&keyring) {
            None => read(),
            Some(s) => {
                let budget = keyring.client().call_budget();
                s.memory.read_through(key_id, owner, budget, read)
            }
        },
        // A read of the same key in flight is waited for, at most one call's budget.
        Some(c) => {
            let budget = keyring.client().call_budget();
            c.cache.read_through(key_id, owner, budget, read)
        }
    };
    let served = match &seal {
        Some(s) => s.seal.stand_in(key_id, owner, result)?,
        None => result?,
    };
    if served.is_some() && !GUARD.serve(&keyring, key_id, owner) {
        // Revoked on the KMIP server, and key_state_action=refuse.
        drop_cached(key_id, owner);
        return Ok(None);
    }
    Ok(served)
}

pub fn remove(key_id: &str, owner: &str) -> Result<(), PluginError> {
    let (_call, keyring) = current()?;
    let outcome = within_deadline(&keyring, || {
        write_through(
            &keyring,
            key_id,
            owner,
            || {
                let removed = keyring.remove(key_id, owner);
                if removed.is_ok() {
                    GUARD.removed(&keyring, key_id, owner);
                }
                removed
            },
            |outcome| match outcome {
                // Destroyed, or its look-up found no key: definite.
                Ok(()) | Err(KeyringError::NotFound { .. }) => Known::Now(None),
                Err(_) => Known::Unknown,
            },
        )
    });
    sealed_write(&keyring, key_id, owner, true, outcome)
}

/// A listing has its own overall deadline (`LIST_DEADLINE`): it may take many requests, each
/// still bounded by the per-call deadline.
pub fn list() -> Result<Vec<KeyEntry>, PluginError> {
    let (_call, keyring) = current()?;
    let deadline = Instant::now() + crate::keyring::LIST_DEADLINE;
    Ok(crate::connector::with_deadline(deadline, || {
        keyring.list(false)
    })?)
}

/// The key-state guard (`keyring_okv_key_state_poll_seconds`, `keyring_okv_key_state_action`).
static GUARD: KeyringGuard = KeyringGuard::new("keyring_okv");

/// Sets `keyring_okv_key_state_poll_seconds` (0: off) and `keyring_okv_key_state_action`
/// (plugin init, before the configuration is prepared). An action that is not `warn` or
/// `refuse` is logged and `warn` is used.
pub fn set_key_state_guard(poll_seconds: u64, action: Option<&str>) {
    let action = match action
        .filter(|a| !a.trim().is_empty())
        .map(|a| (a, guard::Action::parse(a)))
    {
        None => guard::Action::Warn,
        Some((_, Some(action))) if action != guard::Action::Rotate => action,
        Some((text, _)) => {
            tracing::error!(
                "keyring_okv: keyring_okv_key_state_action is '{text}', not warn or refuse; warn is used"
            );
            guard::Action::Warn
        }
    };
    GUARD.set_settings(guard::Settings {
        poll: Duration::from_secs(poll_seconds),
        action,
    });
}

/// The key-state guard's figures.
pub fn key_state_status() -> guard::Status {
    GUARD.status()
}

/// Drops a key from the key cache and the sealed key cache in force: found revoked on the KMIP
/// server with `keyring_okv_key_state_action = refuse`.
fn drop_cached(key_id: &str, owner: &str) {
    let cache = CACHE.read().unwrap_or_else(PoisonError::into_inner).clone();
    if let Some(c) = cache {
        c.cache.forget(key_id, owner);
    }
    let start = START.read().unwrap_or_else(PoisonError::into_inner).clone();
    if let Some(s) = start {
        s.memory.forget(key_id, owner);
    }
    let seal = SEAL.read().unwrap_or_else(PoisonError::into_inner).clone();
    if let Some(s) = seal {
        s.seal.cache().forget(key_id, owner);
    }
}
