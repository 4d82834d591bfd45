//! keyring_okv.so, the MySQL keyring plugin. mysqld (8.0, 8.4, 9.x) loads it with
//! `early-plugin-load=keyring_okv.so`, reads the plugin descriptor, the keyring function table,
//! the `keyring_okv_conf_dir` variable and the service pointers exported here, and calls the
//! keyring functions from its own threads. Each export turns C arguments into a call of the
//! core's safe `plugin` module.

mod abi;
mod keyring_api;
mod native_key_id;
mod services;
mod status;
mod sysvar;

use std::ffi::{c_char, c_int, c_ulong, c_void};

use abi::*;
use okv_ffi::guard;

/// The descriptor version shown in information_schema.PLUGINS (1.0).
const PLUGIN_VERSION: u32 = 0x0100;

#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static _mysql_plugin_interface_version_: c_int = MYSQL_PLUGIN_INTERFACE_VERSION;

#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static _mysql_sizeof_struct_st_plugin_: c_int = std::mem::size_of::<StMysqlPlugin>() as c_int;

static mut KEYRING_DESCRIPTOR: StMysqlKeyring = StMysqlKeyring {
    interface_version: MYSQL_KEYRING_INTERFACE_VERSION,
    mysql_key_store: keyring_api::mysql_key_store,
    mysql_key_fetch: keyring_api::mysql_key_fetch,
    mysql_key_remove: keyring_api::mysql_key_remove,
    mysql_key_generate: keyring_api::mysql_key_generate,
    mysql_key_iterator_init: keyring_api::mysql_key_iterator_init,
    mysql_key_iterator_deinit: keyring_api::mysql_key_iterator_deinit,
    mysql_key_iterator_get_key: keyring_api::mysql_key_iterator_get_key,
};

/// Storage of the variable's `char*`.
static mut CONF_DIR_VALUE: *mut c_char = std::ptr::null_mut();

// The server rewrites the name field while the plugin is installed: writable memory.
static mut CONF_DIR_SYSVAR: SysVarStr = SysVarStr {
    flags: PLUGIN_VAR_STR | PLUGIN_VAR_RQCMDARG | PLUGIN_VAR_NODEFAULT,
    name: c"conf_dir".as_ptr(),
    comment: c"The directory with okvclient.ora and ssl/ (CA.pem, cert.pem, key.pem, optional password.txt) of the KMIP back end".as_ptr(),
    check: Some(sysvar::check_conf_dir),
    update: Some(sysvar::update_conf_dir),
    value: &raw mut CONF_DIR_VALUE,
    def_val: c"".as_ptr(),
};

/// Storage of `keyring_okv_cache_keys` (a one-byte bool).
static mut CACHE_KEYS_VALUE: c_char = 0;

static mut CACHE_KEYS_SYSVAR: SysVarBool = SysVarBool {
    flags: PLUGIN_VAR_BOOL | PLUGIN_VAR_RQCMDARG,
    name: c"cache_keys".as_ptr(),
    comment: c"Serve keys, and the absence of keys, from memory for keyring_okv_cache_ttl_seconds after the KMIP server or a write of this server said so".as_ptr(),
    check: None,
    update: Some(sysvar::update_cache_keys),
    value: &raw mut CACHE_KEYS_VALUE,
    def_val: 0,
};

/// Storage of `keyring_okv_cache_ttl_seconds`.
static mut CACHE_TTL_VALUE: c_ulong =
    okv_core::products::mysql_plugin::DEFAULT_CACHE_TTL_SECONDS as c_ulong;

static mut CACHE_TTL_SYSVAR: SysVarUlong = SysVarUlong {
    flags: PLUGIN_VAR_LONG | PLUGIN_VAR_UNSIGNED | PLUGIN_VAR_RQCMDARG,
    name: c"cache_ttl_seconds".as_ptr(),
    comment: c"Seconds a cached key is served from memory (0: until the cache is turned off, keyring_okv_conf_dir is set or the server restarts); setting it empties the cache".as_ptr(),
    check: None,
    update: Some(sysvar::update_cache_ttl),
    value: &raw mut CACHE_TTL_VALUE,
    def_val: okv_core::products::mysql_plugin::DEFAULT_CACHE_TTL_SECONDS as c_ulong,
    min_val: 0,
    max_val: 365 * 24 * 3600,
    blk_sz: 0,
};

/// Storage of `keyring_okv_sealed_cache_max_age_hours`.
static mut SEALED_HOURS_VALUE: c_ulong = 0;

static mut SEALED_HOURS_SYSVAR: SysVarUlong = SysVarUlong {
    flags: PLUGIN_VAR_LONG | PLUGIN_VAR_UNSIGNED | PLUGIN_VAR_RQCMDARG | PLUGIN_VAR_READONLY,
    name: c"sealed_cache_max_age_hours".as_ptr(),
    comment: c"Keep the keys this server uses in an encrypted file in the configuration directory, and serve them read-only when no KMIP server answers, for at most this many hours since a KMIP server last confirmed them (0: off)".as_ptr(),
    check: None,
    update: None,
    value: &raw mut SEALED_HOURS_VALUE,
    def_val: 0,
    min_val: 0,
    max_val: 24 * 365,
    blk_sz: 0,
};

/// Storage of `keyring_okv_sealed_cache_user_keys` (a one-byte bool).
static mut SEALED_USER_KEYS_VALUE: c_char = 0;

static mut SEALED_USER_KEYS_SYSVAR: SysVarBool = SysVarBool {
    flags: PLUGIN_VAR_BOOL | PLUGIN_VAR_RQCMDARG | PLUGIN_VAR_READONLY,
    name: c"sealed_cache_user_keys".as_ptr(),
    comment: c"With keyring_okv_sealed_cache_max_age_hours, also keep keys that belong to a user (keyring_udf) in the sealed key cache; by default only the server's own keys (InnoDB, binary log) are kept".as_ptr(),
    check: None,
    update: None,
    value: &raw mut SEALED_USER_KEYS_VALUE,
    def_val: 0,
};

/// Storage of `keyring_okv_sealed_cache_dir`'s `char*`.
static mut SEALED_DIR_VALUE: *mut c_char = std::ptr::null_mut();

static mut SEALED_DIR_SYSVAR: SysVarStr = SysVarStr {
    flags: PLUGIN_VAR_STR | PLUGIN_VAR_RQCMDARG | PLUGIN_VAR_READONLY,
    name: c"sealed_cache_dir".as_ptr(),
    comment: c"The directory of the sealed key cache's file (keyring_okv.sealed), which the server's account must be able to write: not /etc under a service unit or AppArmor profile that makes it read-only".as_ptr(),
    check: None,
    update: None,
    value: &raw mut SEALED_DIR_VALUE,
    def_val: c"/var/lib/mysql-keyring".as_ptr(),
};

/// Storage of `keyring_okv_key_state_poll_seconds`.
static mut KEY_STATE_POLL_VALUE: c_ulong = okv_core::guard::DEFAULT_POLL_SECONDS as c_ulong;

static mut KEY_STATE_POLL_SYSVAR: SysVarUlong = SysVarUlong {
    flags: PLUGIN_VAR_LONG | PLUGIN_VAR_UNSIGNED | PLUGIN_VAR_RQCMDARG | PLUGIN_VAR_READONLY,
    name: c"key_state_poll_seconds".as_ptr(),
    comment: c"Seconds between two polls of the KMIP server for the state of every key this server uses; a key revoked, destroyed or replaced there is acted on as keyring_okv_key_state_action says (0: off)".as_ptr(),
    check: None,
    update: None,
    value: &raw mut KEY_STATE_POLL_VALUE,
    def_val: okv_core::guard::DEFAULT_POLL_SECONDS as c_ulong,
    min_val: 0,
    max_val: 7 * 24 * 3600,
    blk_sz: 0,
};

/// Storage of `keyring_okv_key_state_action`'s `char*`.
static mut KEY_STATE_ACTION_VALUE: *mut c_char = std::ptr::null_mut();

static mut KEY_STATE_ACTION_SYSVAR: SysVarStr = SysVarStr {
    flags: PLUGIN_VAR_STR | PLUGIN_VAR_RQCMDARG | PLUGIN_VAR_READONLY,
    name: c"key_state_action".as_ptr(),
    comment: c"What a key in use found revoked on the KMIP server does: warn (an error-log line with the statement to run next) or refuse (also dropped from every cache and never served again by this server)".as_ptr(),
    check: None,
    update: None,
    value: &raw mut KEY_STATE_ACTION_VALUE,
    def_val: c"warn".as_ptr(),
};

static mut SYSTEM_VARS: [*mut c_void; 9] = [
    (&raw mut CONF_DIR_SYSVAR).cast(),
    (&raw mut CACHE_KEYS_SYSVAR).cast(),
    (&raw mut CACHE_TTL_SYSVAR).cast(),
    (&raw mut SEALED_HOURS_SYSVAR).cast(),
    (&raw mut SEALED_USER_KEYS_SYSVAR).cast(),
    (&raw mut SEALED_DIR_SYSVAR).cast(),
    (&raw mut KEY_STATE_POLL_SYSVAR).cast(),
    (&raw mut KEY_STATE_ACTION_SYSVAR).cast(),
    std::ptr::null_mut(),
];

#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static mut _mysql_plugin_declarations_: [StMysqlPlugin; 2] = [
    StMysqlPlugin {
        plugin_type: MYSQL_KEYRING_PLUGIN,
        info: (&raw mut KEYRING_DESCRIPTOR).cast(),
        name: c"keyring_okv".as_ptr(),
        author: c"keyring_okv contributors".as_ptr(),
        descr:
            c"Keyring that keeps keys in a KMIP 1.1 key manager over mutual TLS (open keyring_okv)"
                .as_ptr(),
        license: PLUGIN_LICENSE_GPL,
        init: Some(plugin_init),
        check_uninstall: None,
        deinit: Some(plugin_deinit),
        version: PLUGIN_VERSION,
        status_vars: (&raw mut status::STATUS_VARS).cast(),
        system_vars: (&raw mut SYSTEM_VARS).cast(),
        reserved1: std::ptr::null_mut(),
        flags: PLUGIN_OPT_ALLOW_EARLY,
    },
    StMysqlPlugin {
        plugin_type: 0,
        info: std::ptr::null_mut(),
        name: std::ptr::null(),
        author: std::ptr::null(),
        descr: std::ptr::null(),
        license: 0,
        init: None,
        check_uninstall: None,
        deinit: None,
        version: 0,
        status_vars: std::ptr::null_mut(),
        system_vars: std::ptr::null_mut(),
        reserved1: std::ptr::null_mut(),
        flags: 0,
    },
];

fn install_logging() {
    okv_ffi::logging::install(services::log_line);
}

/// Returns 0 even when the configuration is missing or broken: mysqld must start, and
/// SET GLOBAL keyring_okv_conf_dir can fix the configuration later. Keyring calls fail cleanly
/// until then.
unsafe extern "C" fn plugin_init(handle: PluginHandle) -> c_int {
    guard("plugin init", 0, || {
        services::mark_linked(handle);
        install_logging();
        okv_core::products::mysql_plugin::start();
        native_key_id::register();
        tracing::info!("keyring_okv {} starting", okv_core::BUILD);
        // SAFETY: the server set the variables' storage before calling init.
        let (cache_keys, cache_ttl) = unsafe { (CACHE_KEYS_VALUE != 0, CACHE_TTL_VALUE) };
        okv_core::products::mysql_plugin::set_cache(cache_keys, cache_ttl);
        // SAFETY: the server set the variable's storage before calling init.
        let (hours, user_keys) = unsafe { (SEALED_HOURS_VALUE, SEALED_USER_KEYS_VALUE != 0) };
        // SAFETY: as above; a value that is not UTF-8 turns the sealed cache off (logged).
        let sealed_dir = match unsafe { sysvar::read_value(&raw const SEALED_DIR_VALUE) } {
            Some(d) if d.is_empty() => Some(okv_core::sealed::DEFAULT_DIR.to_string()),
            other => other,
        };
        okv_core::products::mysql_plugin::set_sealed_cache(hours, user_keys, sealed_dir);
        // SAFETY: the server set the variables' storage before calling init.
        let (poll, action) = unsafe {
            (
                KEY_STATE_POLL_VALUE,
                sysvar::read_value(&raw const KEY_STATE_ACTION_VALUE),
            )
        };
        okv_core::products::mysql_plugin::set_key_state_guard(poll, action.as_deref());
        // SAFETY: the server set the variable's storage before calling init.
        let Some(dir) = (unsafe { sysvar::read_value(&raw const CONF_DIR_VALUE) }) else {
            tracing::error!(
                "keyring_okv_conf_dir must be a UTF-8 path; keyring calls fail until SET GLOBAL keyring_okv_conf_dir names a valid directory"
            );
            okv_core::products::mysql_plugin::set_problem(
                "keyring_okv_conf_dir must be a UTF-8 path".to_string(),
            );
            return 0;
        };
        if dir.is_empty() {
            tracing::warn!(
                "{}",
                okv_core::products::mysql_plugin::NOT_CONFIGURED_WARNING
            );
            return 0;
        }
        match okv_core::products::mysql_plugin::prepare(&dir, false) {
            Ok(prepared) => okv_core::products::mysql_plugin::install(prepared),
            Err(e) => {
                tracing::error!(
                    "{e}; keyring calls fail until keyring_okv_conf_dir names a valid directory"
                );
                okv_core::products::mysql_plugin::set_problem(format!(
                    "the configuration in {dir} could not be loaded at startup ({e}); fix it, then SET GLOBAL keyring_okv_conf_dir='{dir}'"
                ));
            }
        }
        0
    })
}

unsafe extern "C" fn plugin_deinit(_handle: PluginHandle) -> c_int {
    guard("plugin deinit", 0, || {
        native_key_id::unregister();
        okv_core::products::mysql_plugin::shutdown();
        services::mark_unlinked();
        0
    })
}
