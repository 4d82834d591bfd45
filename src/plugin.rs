//! The plugin's state, with no C types: which configuration is in force and the keyring built
//! from it. The FFI layer converts pointers and calls these functions.

use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use crate::config::{self, ConfigError};
use crate::connector::{ClientError, KmipClient};
use crate::health::{Health, Snapshot};
use crate::keyring::{FetchedKey, KeyEntry, Keyring, KeyringError};

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
}

/// A configuration loaded and checked, not yet in force.
pub struct Prepared {
    dir: String,
    keyring: Keyring,
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
    let client = KmipClient::from_conf_dir_with_health(&conf, HEALTH.clone())
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
    Ok(Prepared {
        dir: dir.to_string(),
        keyring: Keyring::new(client),
    })
}

/// Puts a prepared configuration in force; the previous keyring is released when its last
/// in-flight call finishes.
pub fn install(prepared: Prepared) {
    HEALTH.set_configuration(Some(prepared.keyring.client().server_count()));
    let active = Arc::new(prepared.keyring);
    *PROBLEM.write().unwrap_or_else(PoisonError::into_inner) = None;
    let old = ACTIVE
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .replace(active);
    drop(old);
}

/// How long plugin deinit waits for the I/O thread.
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Releases the keyring, its connection and the I/O thread (plugin deinit).
pub fn shutdown() {
    let old = ACTIVE
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    drop(old);
    HEALTH.set_configuration(None);
    crate::connector::runtime::shutdown(SHUTDOWN_WAIT);
}

fn current() -> Result<Arc<Keyring>, PluginError> {
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

pub fn store(key_id: &str, owner: &str, key_type: &str, key: &[u8]) -> Result<(), PluginError> {
    Ok(current()?.store(key_id, owner, key_type, key)?)
}

pub fn generate(key_id: &str, owner: &str, key_type: &str, len: usize) -> Result<(), PluginError> {
    Ok(current()?.generate(key_id, owner, key_type, len)?)
}

pub fn fetch(key_id: &str, owner: &str) -> Result<Option<FetchedKey>, PluginError> {
    Ok(current()?.fetch(key_id, owner)?)
}

pub fn remove(key_id: &str, owner: &str) -> Result<(), PluginError> {
    Ok(current()?.remove(key_id, owner)?)
}

pub fn list() -> Result<Vec<KeyEntry>, PluginError> {
    Ok(current()?.list(false)?)
}
