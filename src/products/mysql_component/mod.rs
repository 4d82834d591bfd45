//! The state of component_keyring_okv (the MySQL 8.4/9.x keyring component), with no C types:
//! the configuration in force, the keyring and key cache built from it, the health counters and
//! the rows of performance_schema.keyring_component_status. The component package converts C
//! arguments and calls these functions.
//!
//! Component semantics on top of the shared keyring: a NULL owner is the empty owner (the
//! caller passes ""), removing an absent key succeeds, an empty key id reads as absent.

pub mod aes;
pub mod settings;

use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::time::SystemTime;

use crate::config::{self, ConfigError, OkvClientOra};
use crate::connector::{ClientError, KmipClient};
use crate::health::{Health, utc_timestamp};
use crate::keyring::key_locks::{KeyGuard, KeyLocks};
use crate::keyring::start_memory::{Ended, StartMemory};
use crate::keyring::{FetchedKey, KeyType, Keyring, KeyringError};

pub use crate::keyring::cache::{self, Cached, KeyCache, Lookup};
use crate::sealed::for_keyring::{KeyringSeal, SealedFetchError, WriteError};
use crate::sealed::{self, SealedCache, SealedError};
pub use aes::{AesError, Mode};
pub use settings::{Settings, SettingsError};

/// The component's name, and the implementation name of every service it registers.
pub const COMPONENT_NAME: &str = "component_keyring_okv";
pub const AUTHOR: &str = "keyring_okv contributors";
pub const LICENSE: &str = "GPL";
/// The version shown in the status rows.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error("component_keyring_okv is not active: {0}")]
    NotActive(String),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(
        "{}: kmip_configuration_directory '{}' does not exist or is not a directory; create it with ssl/ (CA.pem, cert.pem, key.pem) and okvclient.ora, or fix the path",
        file.display(), dir.display()
    )]
    DirMissing {
        file: std::path::PathBuf,
        dir: std::path::PathBuf,
    },
    #[error("{}: {source}", file.display())]
    Config {
        file: std::path::PathBuf,
        source: ConfigError,
    },
    #[error(
        "{}: {source}; the new configuration was refused and the previous one stays in force",
        file.display()
    )]
    Unreachable {
        file: std::path::PathBuf,
        source: ClientError,
    },
    #[error("component_keyring_okv: cannot start its I/O thread: {0}")]
    Runtime(std::io::Error),
    #[error("component_keyring_okv: cannot start the thread that wipes expired cached keys: {0}")]
    CacheThread(std::io::Error),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    Aes(#[from] AesError),
    #[error("keyring_aes: key '{0}' is not an AES key")]
    NotAes(String),
    #[error("keyring_aes: key '{0}' does not exist")]
    NoSuchKey(String),
    #[error("component_keyring_okv: {0}")]
    Sealed(SealedError),
    #[error("component_keyring_okv: {0}")]
    ReadOnly(String),
}

impl From<SealedFetchError> for ComponentError {
    fn from(e: SealedFetchError) -> Self {
        match e {
            SealedFetchError::Keyring(e) => ComponentError::Keyring(e),
            SealedFetchError::Sealed(e) => ComponentError::Sealed(e),
        }
    }
}

impl From<WriteError> for ComponentError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Keyring(e) => ComponentError::Keyring(e),
            WriteError::ReadOnly(m) => ComponentError::ReadOnly(m),
        }
    }
}

impl ComponentError {
    /// A refusal caused by the request itself rather than the keyring's health.
    pub fn is_caller_error(&self) -> bool {
        match self {
            ComponentError::Keyring(e) => e.is_caller_error(),
            ComponentError::Aes(_) | ComponentError::NotAes(_) | ComponentError::NoSuchKey(_) => {
                true
            }
            _ => false,
        }
    }
}

/// A configuration in force.
struct Active {
    settings: Settings,
    servers: Vec<String>,
    keyring: Arc<Keyring>,
    cache: Option<KeyCache>,
    /// The sealed key cache, with `sealed_cache_max_age_hours`.
    seal: Option<KeyringSeal>,
    /// The start-time memory: the first load of the process with `cache_keys` false, until
    /// the server has started (see `start_memory`).
    start: Option<StartMemory>,
    /// Serialises each write of a key with its cache update, so that the cache records the
    /// writes of a key in the order the KMIP server saw them (the keyring serialises only the
    /// KMIP side). Writes of different keys do not wait for each other.
    writes: KeyLocks<(String, String)>,
}

static ACTIVE: RwLock<Option<Arc<Active>>> = RwLock::new(None);

/// The component's counters; they outlive reloads.
static HEALTH: LazyLock<Arc<Health>> = LazyLock::new(|| Arc::new(Health::new()));

/// The outcome of the last load: None before any, else the error text (empty = success) and when.
static LAST_LOAD: RwLock<Option<(String, SystemTime)>> = RwLock::new(None);

fn active() -> Option<Arc<Active>> {
    ACTIVE
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

fn current() -> Result<Arc<Active>, ComponentError> {
    active().ok_or_else(|| {
        let why = match &*LAST_LOAD.read().unwrap_or_else(PoisonError::into_inner) {
            Some((error, _)) if !error.is_empty() => {
                format!("{error}; fix it and run ALTER INSTANCE RELOAD KEYRING")
            }
            _ => format!(
                "no configuration was loaded; write {} and run ALTER INSTANCE RELOAD KEYRING",
                settings::FILE_NAME
            ),
        };
        ComponentError::NotActive(why)
    })
}

/// Whether a configuration is in force (keyring_component_status.is_initialized).
pub fn is_active() -> bool {
    active().is_some()
}

/// keyring_load: reads the configuration (see [`settings::load`]), the KMIP configuration
/// directory and connects. A first load keeps a valid configuration even while no KMIP server
/// answers (calls fail until one does); a reload of a running keyring needs a server that
/// answers. On any failure the configuration in force, if any, keeps serving.
pub fn load(component_dir: &str, instance_dir: Option<&str>) -> Result<(), ComponentError> {
    // The server serialises loads behind its keyring lock; other hosts may not.
    static LOADING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _loading = LOADING.lock().unwrap_or_else(PoisonError::into_inner);
    let outcome = prepare_and_install(component_dir, instance_dir);
    let text = match &outcome {
        Ok(()) => String::new(),
        Err(e) => e.to_string(),
    };
    *LAST_LOAD.write().unwrap_or_else(PoisonError::into_inner) = Some((text, SystemTime::now()));
    outcome
}

fn prepare_and_install(
    component_dir: &str,
    instance_dir: Option<&str>,
) -> Result<(), ComponentError> {
    let reload = is_active();
    let settings = settings::load(component_dir, instance_dir)?;
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    let file = settings.file.clone();
    let dir = settings.kmip_configuration_directory.clone();
    if !dir.is_dir() {
        return Err(ComponentError::DirMissing { file, dir });
    }
    let config_error = |source| ComponentError::Config {
        file: file.clone(),
        source,
    };
    let mut ora = match &settings.servers {
        None => config::read_okvclient_ora(&dir).map_err(config_error)?,
        Some(servers) => {
            // okvclient.ora may still give the timeouts; its servers are replaced.
            let base = if dir.join("okvclient.ora").exists() {
                config::read_okvclient_ora(&dir)
                    .map_err(config_error)?
                    .options
            } else {
                config::Options::default()
            };
            OkvClientOra {
                server: servers[0].clone(),
                standby: servers[1..].to_vec(),
                options: base,
            }
        }
    };
    settings.apply_options(&mut ora.options)?;
    let conf = config::load_conf_dir_with(&dir, ora).map_err(config_error)?;
    for warning in &conf.warnings {
        tracing::warn!("{warning}");
    }
    let servers: Vec<String> = conf.servers.iter().map(ToString::to_string).collect();
    let cache = if settings.cache_keys {
        Some(KeyCache::new(settings.cache_ttl).map_err(ComponentError::CacheThread)?)
    } else {
        None
    };
    let client = KmipClient::from_conf_dir_with_health(&conf, HEALTH.clone())
        .map_err(ComponentError::Runtime)?;
    let previous_servers = active().map(|a| a.servers.len());
    HEALTH.set_configuration(Some(conf.servers.len()));
    match client.connect() {
        Ok(connected) => tracing::info!(
            "component_keyring_okv: configuration {} loaded, connected to KMIP server {}",
            file.display(),
            connected.server
        ),
        Err(source) if reload => {
            HEALTH.set_configuration(previous_servers);
            HEALTH.error(&source.to_string());
            return Err(ComponentError::Unreachable { file, source });
        }
        Err(e) => {
            HEALTH.error(&e.to_string());
            tracing::error!(
                "component_keyring_okv: using configuration {}, but {e}; keyring calls fail until a KMIP server answers",
                file.display()
            );
        }
    }
    let keyring = Arc::new(Keyring::new(client));
    // A reload's sealed cache stops the one it replaces from its own thread, once the new
    // configuration is in force (the old one arrives through `retire`), and reads no keys here.
    let (retire, retired) = std::sync::mpsc::channel::<Arc<Active>>();
    let seal = match settings.sealed_cache_max_age_hours {
        0 => None,
        hours => {
            let sealed = SealedCache::open(
                &conf,
                sealed::COMPONENT,
                hours,
                &settings.sealed_cache_dir,
                sealed::Access::of_this_process(),
            )
            .with_user_keys(settings.sealed_cache_user_keys);
            let replaces = reload.then(|| -> Box<dyn FnOnce() + Send> {
                Box::new(move || {
                    if let Ok(old) = retired.recv() {
                        stop_seal(&old);
                    }
                })
            });
            // At a start with the key cache on, the sealed keys fill it in one message before
            // mysqld asks for them one by one.
            match KeyringSeal::start(sealed, &keyring, cache.as_ref(), replaces) {
                Ok(seal) => Some(seal),
                Err(e) => {
                    tracing::error!(
                        "component_keyring_okv: cannot start the thread that confirms the sealed key cache ({e}); the sealed key cache is off"
                    );
                    None
                }
            }
        }
    };
    GUARD.set_settings(settings.key_state);
    GUARD.start(&keyring, Arc::new(drop_cached));
    // A reload is a statement, so the server has started; the key cache, when on, already
    // asks once per key.
    let start = if reload || settings.cache_keys {
        None
    } else {
        Some(crate::products::mysqld_start::start_memory(COMPONENT_NAME))
    };
    let new = Arc::new(Active {
        settings,
        servers,
        keyring,
        cache,
        seal,
        start,
        writes: KeyLocks::new(),
    });
    let old = ACTIVE
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .replace(new);
    if let Some(old) = old {
        // Wipe the old cache and join its thread now; the rest goes with the last in-flight
        // call.
        if let Some(cache) = &old.cache {
            cache.shutdown();
        }
        if let Some(start) = &old.start {
            start.end(Ended::Replaced);
        }
        // The new sealed cache's thread stops the old one; without a new one, nobody waits.
        if let Err(std::sync::mpsc::SendError(old)) = retire.send(old) {
            stop_seal(&old);
        }
    }
    Ok(())
}

/// Releases everything (component deinit): the cache is wiped, connections closed, the I/O
/// thread stopped. The KMIP client is closed before any wait, so that a call in flight to a
/// hung KMIP server ends at once instead of holding UNINSTALL COMPONENT or shutdown.
pub fn shutdown() {
    let old = ACTIVE
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(old) = &old {
        old.keyring.client().close();
    }
    if let Some(cache) = old.as_ref().and_then(|a| a.cache.as_ref()) {
        cache.shutdown();
    }
    if let Some(start) = old.as_ref().and_then(|a| a.start.as_ref()) {
        start.end(Ended::Unload);
    }
    if let Some(old) = &old {
        stop_seal(old);
    }
    GUARD.stop();
    drop(old);
    HEALTH.set_configuration(None);
    crate::connector::runtime::shutdown();
}

/// Closes the sealed key cache of `active` and joins its thread.
fn stop_seal(active: &Active) {
    if let Some(seal) = &active.seal {
        let wait = crate::connector::runtime::THREAD_WAIT;
        if !seal.stop(std::time::Instant::now() + wait) {
            tracing::error!(
                "component_keyring_okv: the sealed key cache's thread was still running {} s after it was asked to stop",
                wait.as_secs()
            );
        }
    }
}

/// The key of the pair, None when absent. An empty key id is absent, as in keyring_file.
///
/// mysqld holds its keyring read lock across this call and lets new readers in while a writer
/// waits for it: reads that each went to the KMIP server kept that lock held without a break
/// (each queued for the connection behind the others), so a store waited minutes under a
/// steady read load. With the cache on, a read is answered from memory, presence and absence
/// alike, and the network is asked once per key per TTL or write.
pub fn fetch(key_id: &str, owner: &str) -> Result<Option<FetchedKey>, ComponentError> {
    let active = current()?;
    if key_id.is_empty() {
        return Ok(None);
    }
    // The wait for a read of the same key in flight counts against the call's one deadline.
    let client = active.keyring.client();
    let result = client.one_call(|| fetch_in(&active, key_id, owner));
    let served = match &active.seal {
        // No KMIP server answered: the sealed key cache stands in, read-only.
        Some(seal) => seal.stand_in(key_id, owner, result)?,
        None => result?,
    };
    if served.is_some() && !GUARD.serve(&active.keyring, key_id, owner) {
        // Revoked on the KMIP server, and "key_state_action": "refuse".
        drop_cached(key_id, owner);
        return Ok(None);
    }
    Ok(served)
}

fn fetch_in(
    active: &Active,
    key_id: &str,
    owner: &str,
) -> Result<Option<FetchedKey>, KeyringError> {
    let read = || {
        let result = active.keyring.fetch(key_id, owner);
        if let Some(seal) = &active.seal {
            seal.learned(&active.keyring, key_id, owner, &result);
        }
        result
    };
    let budget = active.keyring.client().call_budget();
    let Some(cache) = &active.cache else {
        return match &active.start {
            // Repeats of a start's reads of its InnoDB master key, answered from memory.
            Some(start) => start.read_through(key_id, owner, budget, read),
            None => read(),
        };
    };
    // A read of the same key in flight is waited for (at most one request's budget): the
    // reads behind it would each hold mysqld's lock for every round trip queued ahead of them.
    // An error is not remembered: only a Locate that found nothing says the key is absent.
    cache.read_through(key_id, owner, budget, read)
}

/// A write's outcome, with the sealed key cache (if on) told of it.
fn sealed_write(
    active: &Active,
    key_id: &str,
    owner: &str,
    removed: bool,
    outcome: Result<(), KeyringError>,
) -> Result<(), ComponentError> {
    match &active.seal {
        Some(seal) => Ok(seal.wrote(key_id, owner, removed, outcome)?),
        None => Ok(outcome?),
    }
}

/// Holds the key for one write; the start-time memory ends first, before the write's request
/// is sent, so that no read after a write is answered from before it.
fn writing<'a>(active: &'a Active, key_id: &str, owner: &str) -> KeyGuard<'a, (String, String)> {
    if let Some(start) = &active.start {
        start.before_write();
    }
    active.writes.lock((key_id.to_string(), owner.to_string()))
}

pub fn store(key_id: &str, owner: &str, key_type: &str, key: &[u8]) -> Result<(), ComponentError> {
    let active = current()?;
    // Waiting behind another write counts against the call's one deadline.
    active
        .keyring
        .client()
        .one_call(|| store_in(&active, key_id, owner, key_type, key))
}

fn store_in(
    active: &Active,
    key_id: &str,
    owner: &str,
    key_type: &str,
    key: &[u8],
) -> Result<(), ComponentError> {
    let _writing = writing(active, key_id, owner);
    // Before the write: a read in flight must not put back what the write replaces.
    if let Some(cache) = &active.cache {
        cache.forget(key_id, owner);
    }
    let outcome = active.keyring.store(key_id, owner, key_type, key);
    if let (Some(seal), Ok(())) = (&active.seal, &outcome) {
        seal.stored(&active.keyring, key_id, owner, key_type, key);
    }
    if let Some(cache) = &active.cache {
        match (&outcome, KeyType::parse(key_type)) {
            // What the server now holds is known: readers need not ask it.
            (Ok(()), Ok(key_type)) => {
                let stored = FetchedKey {
                    key_type,
                    material: zeroize::Zeroizing::new(key.to_vec()),
                };
                cache.wrote(key_id, owner, Some(&stored));
            }
            _ => cache.forget(key_id, owner),
        }
    }
    sealed_write(active, key_id, owner, false, outcome)
}

pub fn generate(
    key_id: &str,
    owner: &str,
    key_type: &str,
    len: usize,
) -> Result<(), ComponentError> {
    let active = current()?;
    active
        .keyring
        .client()
        .one_call(|| generate_in(&active, key_id, owner, key_type, len))
}

fn generate_in(
    active: &Active,
    key_id: &str,
    owner: &str,
    key_type: &str,
    len: usize,
) -> Result<(), ComponentError> {
    let _writing = writing(active, key_id, owner);
    if let Some(cache) = &active.cache {
        cache.forget(key_id, owner);
    }
    let outcome = active.keyring.generate(key_id, owner, key_type, len);
    // The server made the material: the next read fetches it.
    if let Some(cache) = &active.cache {
        cache.forget(key_id, owner);
    }
    sealed_write(active, key_id, owner, false, outcome)
}

/// Removes the pair's key; a key that does not exist counts as removed (the component contract).
pub fn remove(key_id: &str, owner: &str) -> Result<(), ComponentError> {
    let active = current()?;
    active
        .keyring
        .client()
        .one_call(|| remove_in(&active, key_id, owner))
}

fn remove_in(active: &Active, key_id: &str, owner: &str) -> Result<(), ComponentError> {
    let _writing = writing(active, key_id, owner);
    if let Some(cache) = &active.cache {
        cache.forget(key_id, owner);
    }
    let outcome = match active.keyring.remove(key_id, owner) {
        Ok(()) => {
            GUARD.removed(&active.keyring, key_id, owner);
            Ok(())
        }
        Err(KeyringError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    };
    if let Some(cache) = &active.cache {
        match outcome {
            // Destroyed, or its Locate found nothing: definite.
            Ok(()) => cache.wrote(key_id, owner, None),
            Err(_) => cache.forget(key_id, owner),
        }
    }
    sealed_write(active, key_id, owner, true, outcome)
}

/// (key id, owner) of every key of ours on the KMIP server. A listing has its own overall
/// deadline (`LIST_DEADLINE`), as the plugin's: it may take many requests, each still bounded
/// by the per-call budget.
pub fn list() -> Result<Vec<(String, String)>, ComponentError> {
    let active = current()?;
    let deadline = std::time::Instant::now() + crate::keyring::LIST_DEADLINE;
    Ok(
        crate::connector::with_deadline(deadline, || active.keyring.list(false))?
            .into_iter()
            .map(|e| (e.key_id, e.owner))
            .collect(),
    )
}

/// The KMIP unique identifier of the pair's object, if already known (never asks the server).
pub fn backend_key_id(key_id: &str, owner: &str) -> Option<String> {
    active()?.keyring.known_uid(key_id, owner)
}

/// keyring_aes encrypt/decrypt with the stored AES key of the pair.
pub fn aes_apply(
    key_id: &str,
    owner: &str,
    mode: Mode,
    iv: &[u8; 16],
    padding: bool,
    data: &[u8],
    encrypting: bool,
) -> Result<zeroize::Zeroizing<Vec<u8>>, ComponentError> {
    let key = fetch(key_id, owner)?.ok_or_else(|| ComponentError::NoSuchKey(key_id.to_string()))?;
    if key.key_type != KeyType::Aes {
        return Err(ComponentError::NotAes(key_id.to_string()));
    }
    Ok(if encrypting {
        zeroize::Zeroizing::new(aes::encrypt(&key.material, mode, iv, padding, data)?)
    } else {
        aes::decrypt(&key.material, mode, iv, padding, data)?
    })
}

/// The rows of performance_schema.keyring_component_status, in order.
pub fn status_rows() -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = vec![
        ("Component_name".into(), COMPONENT_NAME.into()),
        ("Author".into(), AUTHOR.into()),
        ("License".into(), LICENSE.into()),
        ("Implementation_name".into(), COMPONENT_NAME.into()),
        ("Version".into(), VERSION.into()),
    ];
    let active = active();
    rows.push((
        "Component_status".into(),
        if active.is_some() {
            "Active"
        } else {
            "Disabled"
        }
        .into(),
    ));
    let na = || "<NOT APPLICABLE>".to_string();
    match &active {
        Some(a) => {
            let s = &a.settings;
            rows.push(("Config_file".into(), s.file.display().to_string()));
            rows.push((
                "Kmip_configuration_directory".into(),
                s.kmip_configuration_directory.display().to_string(),
            ));
            rows.push(("Servers".into(), a.servers.join(",")));
            rows.push((
                "Servers_from".into(),
                if s.servers.is_some() {
                    s.file.display().to_string()
                } else {
                    s.kmip_configuration_directory
                        .join("okvclient.ora")
                        .display()
                        .to_string()
                },
            ));
            rows.push((
                "Cache_keys".into(),
                if s.cache_keys { "Yes" } else { "No" }.into(),
            ));
            rows.push((
                "Cache_ttl_seconds".into(),
                if s.cache_keys {
                    s.cache_ttl.map_or(0, |t| t.as_secs()).to_string()
                } else {
                    na()
                },
            ));
            rows.push((
                "Cached_keys".into(),
                a.cache.as_ref().map_or(0, KeyCache::len).to_string(),
            ));
            rows.push((
                "Cached_absent_keys".into(),
                a.cache.as_ref().map_or(0, KeyCache::absent).to_string(),
            ));
            let sealed = a.seal.as_ref().map(|s| s.cache().status());
            rows.push((
                "Sealed_cache_max_age_hours".into(),
                s.sealed_cache_max_age_hours.to_string(),
            ));
            rows.push((
                "Sealed_cache_keys".into(),
                sealed.as_ref().map_or(0, |t| t.keys).to_string(),
            ));
            rows.push((
                "Sealed_cache_serving".into(),
                if sealed.as_ref().is_some_and(|t| t.serving) {
                    "Yes"
                } else {
                    "No"
                }
                .into(),
            ));
            rows.push((
                "Sealed_cache_age_seconds".into(),
                sealed
                    .as_ref()
                    .map_or(0, |t| t.oldest_confirmation_age)
                    .to_string(),
            ));
            rows.push((
                "Sealed_cache_dropped_keys".into(),
                sealed.as_ref().map_or(0, |t| t.dropped).to_string(),
            ));
            rows.push((
                "Sealed_cache_file".into(),
                sealed.as_ref().map_or("off", |t| t.file.code()).to_string(),
            ));
        }
        None => {
            for key in [
                "Config_file",
                "Kmip_configuration_directory",
                "Servers",
                "Servers_from",
                "Cache_keys",
                "Cache_ttl_seconds",
                "Cached_keys",
                "Cached_absent_keys",
                "Sealed_cache_max_age_hours",
                "Sealed_cache_keys",
                "Sealed_cache_serving",
                "Sealed_cache_age_seconds",
                "Sealed_cache_dropped_keys",
                "Sealed_cache_file",
            ] {
                rows.push((key.into(), na()));
            }
        }
    }
    let guard = GUARD.status();
    rows.push((
        "Key_state_keys_watched".into(),
        guard.keys_watched.to_string(),
    ));
    rows.push((
        "Key_state_revoked_keys".into(),
        guard.revoked_in_use.to_string(),
    ));
    rows.push((
        "Key_state_last_poll".into(),
        guard
            .last_poll
            .map_or_else(|| "<NONE>".into(), utc_timestamp),
    ));
    rows.push(("Key_state_last_result".into(), guard.last_result));
    rows.push(("Key_state_outages".into(), guard.outages.to_string()));
    let h = HEALTH.snapshot();
    // The status table shows "<NONE>" for a value that is not there.
    let or_none = |text: &str| {
        if text.is_empty() {
            "<NONE>".to_string()
        } else {
            text.to_string()
        }
    };
    rows.push(("Server_in_use".into(), or_none(&h.server_in_use)));
    rows.push((
        "Server_index".into(),
        h.server_index
            .map_or_else(|| "<NONE>".into(), |i| i.to_string()),
    ));
    rows.push(("Requests".into(), h.requests.to_string()));
    rows.push(("Errors".into(), h.errors.to_string()));
    rows.push(("Connections".into(), h.connections.to_string()));
    rows.push(("Failovers".into(), h.failovers.to_string()));
    rows.push(("Failbacks".into(), h.failbacks.to_string()));
    rows.push(("Latency_last_us".into(), h.latency_last_us.to_string()));
    rows.push(("Latency_max_us".into(), h.latency_max_us.to_string()));
    rows.push((
        "Client_cert_expires".into(),
        or_none(&h.client_cert_expires),
    ));
    rows.push(("Listing_method".into(), or_none(&h.listing_method)));
    let fips = crate::config::fips::mode();
    rows.push(("Fips_mode".into(), fips.on_off().into()));
    rows.push(("Fips_module".into(), or_none(&fips.module)));
    rows.push(("Last_error".into(), or_none(&h.last_error)));
    rows.push((
        "Last_error_time".into(),
        if h.last_error_unix == 0 {
            "<NONE>".into()
        } else {
            h.last_error_time()
        },
    ));
    let (load_error, load_time) = match &*LAST_LOAD.read().unwrap_or_else(PoisonError::into_inner) {
        None => ("<NONE>".to_string(), "<NONE>".to_string()),
        Some((error, at)) => (
            if error.is_empty() {
                "<NONE>".to_string()
            } else {
                error.clone()
            },
            utc_timestamp(
                at.duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            ),
        ),
    };
    rows.push(("Last_load_error".into(), load_error));
    rows.push(("Last_load_time".into(), load_time));
    // The status table's value column holds 1024 characters.
    for (_, value) in &mut rows {
        if value.len() > 1000 {
            let mut cut = 1000;
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            value.truncate(cut);
            value.push_str("...");
        }
    }
    rows
}

/// The key-state guard (`key_state_poll_seconds`, `key_state_action`).
static GUARD: crate::guard::for_keyring::KeyringGuard =
    crate::guard::for_keyring::KeyringGuard::new("component_keyring_okv");

/// The key-state guard's figures.
pub fn key_state_status() -> crate::guard::Status {
    GUARD.status()
}

/// Drops a key from the key cache and the sealed key cache in force: found revoked on the KMIP
/// server with `"key_state_action": "refuse"`.
fn drop_cached(key_id: &str, owner: &str) {
    if let Some(active) = active() {
        if let Some(cache) = &active.cache {
            cache.forget(key_id, owner);
        }
        if let Some(start) = &active.start {
            start.forget(key_id, owner);
        }
        if let Some(seal) = &active.seal {
            seal.cache().forget(key_id, owner);
        }
    }
}
