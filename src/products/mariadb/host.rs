//! The state of kmip_key_management inside one mariadbd (or mariadb-backup) process: the key
//! store in force, its refresh thread and the health counters. The FFI package calls only
//! these functions.

use std::path::Path;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::error::KeyStoreError;
use super::key_state::StoreGuard;
use super::refresh::Refresher;
use super::store::{KeyStore, Settings, StoreStats};
use crate::config::{self, ConfigError};
use crate::connector::{ClientError, KmipClient};
use crate::health::{Health, Snapshot};
use crate::sealed::{self, Keeper, SealedCache};

/// The plugin's name, the prefix of its variables and of its log lines.
pub const PLUGIN_NAME: &str = "kmip_key_management";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "kmip_key_management_conf_dir is not set; set it to the directory holding okvclient.ora and ssl/ (as for keyring_okv)"
    )]
    NoConfDir,
    #[error("the configuration in kmip_key_management_conf_dir={dir} is invalid: {problem}")]
    Config { dir: String, problem: String },
    #[error("cannot start the KMIP client: {0}")]
    Runtime(std::io::Error),
    #[error(
        "{dir}/okvclient.ora: {source}; check the servers, or run `keyring-okv --conf-dir {dir} check`"
    )]
    Unreachable { dir: String, source: ClientError },
    /// `sealed`: "the sealed key cache <path> cannot stand in: <why>".
    #[error("{dir}/okvclient.ora: {source}; and {sealed}")]
    NoSealedKeys {
        dir: String,
        source: Box<ClientError>,
        sealed: String,
    },
    #[error("{0}")]
    Keys(#[from] KeyStoreError),
}

/// The configuration errors are shared with the MySQL plugin and name its variable; here the
/// DBA sets ours.
fn for_mariadb(e: &ConfigError) -> String {
    e.to_string()
        .replace("keyring_okv_conf_dir", "kmip_key_management_conf_dir")
}

struct Active {
    store: Arc<KeyStore>,
    refresher: Refresher,
    /// Confirms the sealed key cache, when it is on.
    keeper: Option<Keeper>,
    /// Polls the state of the key versions in use, when `key_state_poll_seconds` is not 0.
    key_state: Option<StoreGuard>,
}

static ACTIVE: RwLock<Option<Active>> = RwLock::new(None);
static HEALTH: LazyLock<Arc<Health>> = LazyLock::new(|| Arc::new(Health::new()));

/// Loads the conf dir, connects, loads key 1 (required) and key 2 (if present) and starts the
/// refresh thread. Any failure is one error naming the file or server and the fix.
pub fn start(conf_dir: &str, settings: Settings) -> Result<(), StartError> {
    if conf_dir.is_empty() {
        return Err(StartError::NoConfDir);
    }
    let conf = config::load_conf_dir(Path::new(conf_dir)).map_err(|e| StartError::Config {
        dir: conf_dir.to_string(),
        problem: for_mariadb(&e),
    })?;
    for warning in &conf.warnings {
        tracing::warn!("{}: {}", warning.path.display(), warning.message);
    }
    let client = KmipClient::from_conf_dir_with_health(&conf, HEALTH.clone())
        .map_err(StartError::Runtime)?;
    HEALTH.set_configuration(Some(conf.servers.len()));
    let sealed = match settings.sealed_cache_max_age_hours {
        0 => None,
        hours => Some(Arc::new(SealedCache::open(
            &conf,
            sealed::MARIADB,
            hours,
            &settings.sealed_cache_dir,
            sealed::Access::of_this_process(),
        ))),
    };
    let connected = client.connect();
    let key_state_settings = settings.key_state;
    let store = Arc::new(KeyStore::new(client, settings)?);
    // Before keys 1 and 2 are read, so that they are watched too.
    let key_state = StoreGuard::start(&store, key_state_settings).map_err(StartError::Runtime)?;
    if let Some(sealed) = &sealed {
        store.set_sealed(sealed.clone());
    }
    let (server, v1, v2) = match connected {
        Ok(connected) => {
            // Keys 1 and 2 are looked up together.
            let found = store.load_many(&[1, 2])?;
            let v1 = found[0].ok_or_else(|| KeyStoreError::Missing {
                key_id: 1,
                name: super::naming::object_name(store.namespace(), 1, 1),
            })?;
            (connected.server.to_string(), v1, found[1])
        }
        // No KMIP server answers: the sealed key cache's versions, read-only.
        Err(source) if source.is_unreachable() && sealed.is_some() => {
            let loaded = store.load_sealed(&source);
            let Some(v1) = store.known_latest(1) else {
                let cache = sealed.as_ref().expect("checked above");
                let status = cache.status();
                let why = match status.file.problem() {
                        Some(why) => why.to_string(),
                        None if status.file == sealed::FileState::Absent => {
                            "it has not been written yet (nothing was read while a KMIP server answered)".to_string()
                        }
                        None => format!(
                            "it holds no version of key 1 in the namespace '{}' (or only versions older than kmip_key_management_sealed_cache_max_age_hours allows)",
                            store.namespace()
                        ),
                };
                return Err(StartError::NoSealedKeys {
                    dir: conf_dir.to_string(),
                    source: Box::new(source),
                    sealed: format!(
                        "the sealed key cache {} cannot stand in: {why}",
                        cache.path().display()
                    ),
                });
            };
            tracing::warn!(
                "started from the sealed key cache with {loaded} key versions, read-only: rotation is refused until a KMIP server answers"
            );
            (
                "(none: sealed key cache)".to_string(),
                v1,
                store.known_latest(2),
            )
        }
        Err(source) => {
            return Err(StartError::Unreachable {
                dir: conf_dir.to_string(),
                source,
            });
        }
    };
    let refresher = Refresher::start(store.clone()).map_err(StartError::Runtime)?;
    let keeper = match sealed {
        None => None,
        Some(sealed) => {
            let weak = Arc::downgrade(&store);
            let weak_many = weak.clone();
            // The versions are read together first, one message per hundred; only those the
            // batch leaves out cost a look-up and a read of their own.
            let batch = move |known: &[sealed::KnownObject]| match weak_many.upgrade() {
                Some(store) => {
                    // A renewed client identity seals the file again even while no new
                    // connection is made.
                    store.client().reread_identity();
                    store.confirm_sealed_many(known)
                }
                None => sealed::Batched::new(),
            };
            let ask = move |name: &str, _owner: &str| match weak.upgrade() {
                Some(store) => {
                    store.client().reread_identity();
                    store.confirm_sealed(name)
                }
                None => sealed::Answer::Failed("the plugin is stopping".into()),
            };
            sealed.follow_identity_of(store.client());
            let keeper = Keeper::start_after(sealed, || {}, batch, ask);
            Some(keeper.map_err(StartError::Runtime)?)
        }
    };
    tracing::info!(
        "kmip_key_management {} ready: KMIP server {server}, namespace '{}', key 1 version {v1}{}",
        crate::BUILD,
        store.namespace(),
        match v2 {
            Some(v) => format!(", key 2 version {v}"),
            None => ", no key 2 (temporary data uses key 1)".to_string(),
        }
    );
    let old = ACTIVE
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .replace(Active {
            store,
            refresher,
            keeper,
            key_state,
        });
    drop(old);
    Ok(())
}

/// Stops the refresh thread and releases the keys and the connection. The KMIP client is
/// closed first: a refresh round waiting on a hung KMIP server then ends at once instead of
/// holding mariadbd's shutdown for the request timeout.
pub fn stop() {
    let old = ACTIVE
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(active) = old {
        active.store.client().close();
        let wait = crate::connector::runtime::THREAD_WAIT;
        if !active.refresher.stop(Instant::now() + wait) {
            tracing::error!(
                "the key version refresh thread was still running {} s after shutdown asked it to stop",
                wait.as_secs()
            );
        }
        if let Some(keeper) = &active.keeper
            && !keeper.stop(Instant::now() + wait)
        {
            tracing::error!(
                "the sealed key cache's thread was still running {} s after shutdown asked it to stop",
                wait.as_secs()
            );
        }
        if let Some(guard) = &active.key_state
            && !guard.stop(Instant::now() + wait)
        {
            tracing::error!(
                "the key state guard's thread was still running {} s after shutdown asked it to stop",
                wait.as_secs()
            );
        }
        drop(active.store);
    }
    HEALTH.set_configuration(None);
    crate::connector::runtime::shutdown();
}

fn with_store<R>(f: impl FnOnce(&KeyStore) -> R) -> Option<R> {
    let active = ACTIVE.read().unwrap_or_else(PoisonError::into_inner);
    active.as_ref().map(|a| f(&a.store))
}

pub fn latest_version(key_id: u32) -> Option<u32> {
    with_store(|s| s.latest_version(key_id)).flatten()
}

pub fn with_key<R>(key_id: u32, version: u32, use_key: impl FnOnce(&[u8]) -> R) -> Option<R> {
    with_store(|s| s.with_key(key_id, version, use_key)).flatten()
}

/// SET GLOBAL kmip_key_management_rotate_key: `-1` rotates every key id in use, a key id
/// rotates that key; 0 does nothing.
pub fn rotate(request: i64) -> Result<Vec<(u32, u32)>, String> {
    let key_id = match request {
        0 => return Ok(Vec::new()),
        -1 => None,
        id => Some(u32::try_from(id).map_err(|_| {
            format!("kmip_key_management_rotate_key: {id} is not a key id (1 to 4294967295) or -1")
        })?),
    };
    let Some(store) = ACTIVE
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(|a| a.store.clone())
    else {
        return Err("kmip_key_management is not running".to_string());
    };
    store.rotate(key_id).map_err(|e| e.to_string())
}

pub fn set_cache_timeout(d: Duration) {
    with_store(|s| s.set_cache_timeout(d));
}

pub fn set_version_refresh(d: Duration) {
    with_store(|s| s.set_version_refresh(d));
}

pub fn set_use_cache_on_error(on: bool) {
    with_store(|s| s.set_use_cache_on_error(on));
}

/// The sealed key cache's figures, when it is on.
pub fn sealed_status() -> Option<sealed::Status> {
    with_store(|s| s.sealed().map(|c| c.status())).flatten()
}

/// The key-state guard's figures (`off` when it is).
pub fn key_state_status() -> crate::guard::Status {
    let active = ACTIVE.read().unwrap_or_else(PoisonError::into_inner);
    match active.as_ref().and_then(|a| a.key_state.as_ref()) {
        Some(guard) => guard.status(),
        None => crate::guard::Status {
            last_result: "off".into(),
            ..crate::guard::Status::default()
        },
    }
}

/// Health counters of the KMIP client and the store's counters, for status variables.
pub fn status() -> (Snapshot, StoreStats) {
    (
        HEALTH.snapshot(),
        with_store(KeyStore::stats).unwrap_or_default(),
    )
}
