//! kmip_key_management.so: a MariaDB encryption plugin (type 9, interface 0x0300) whose keys
//! live in a KMIP server. mariadbd (10.11 to 11.8, one binary) loads it with
//! `plugin_load_add=kmip_key_management` and `kmip_key_management=FORCE`, reads the descriptor
//! and variables exported here, and calls `get_latest_key_version` and `get_key` from its
//! threads; the server encrypts with its own AES-CBC. Everything else is the core's safe
//! `products::mariadb` layer.

mod abi;
mod encryption;
mod log;
mod status;
mod sysvar;

use std::ffi::{c_char, c_int, c_ulong, c_void};
use std::time::Duration;

use abi::*;
use okv_core::products::mariadb::{Settings, host};
use okv_ffi::guard;

/// The descriptor version shown in information_schema.PLUGINS (1.0).
const PLUGIN_VERSION: u32 = 0x0100;

#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static _maria_plugin_interface_version_: c_int = MARIA_PLUGIN_INTERFACE_VERSION;

#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static _maria_sizeof_struct_st_plugin_: c_int = std::mem::size_of::<StMariaPlugin>() as c_int;

static mut ENCRYPTION: StMariadbEncryption = StMariadbEncryption {
    interface_version: MARIADB_ENCRYPTION_INTERFACE_VERSION,
    get_latest_key_version: Some(encryption::get_latest_key_version),
    get_key: Some(encryption::get_key),
    crypt_ctx_size: std::ptr::null(),
    crypt_ctx_init: std::ptr::null(),
    crypt_ctx_update: std::ptr::null(),
    crypt_ctx_finish: std::ptr::null(),
    encrypted_length: std::ptr::null(),
};

// Storage of the variables: the server writes the values here (and rewrites the descriptors'
// name fields), so all of it is writable memory.
static mut CONF_DIR: *mut c_char = std::ptr::null_mut();
static mut KEY_NAMESPACE: *mut c_char = std::ptr::null_mut();
static mut CACHE_TIMEOUT_MS: c_ulong = 0;
static mut CACHE_VERSION_TIMEOUT_MS: c_ulong = 0;
static mut USE_CACHE_ON_ERROR: c_char = 1;
static mut ROTATE_KEY: c_int = 0;
static mut SEALED_HOURS: c_ulong = 0;
static mut SEALED_DIR: *mut c_char = std::ptr::null_mut();
static mut KEY_STATE_POLL_SECONDS: c_ulong = okv_core::guard::DEFAULT_POLL_SECONDS as c_ulong;
static mut KEY_STATE_ACTION: *mut c_char = std::ptr::null_mut();

const DEFAULT_CACHE_TIMEOUT_MS: c_ulong = 24 * 3600 * 1000;
const DEFAULT_CACHE_VERSION_TIMEOUT_MS: c_ulong = 60_000;

static mut CONF_DIR_VAR: SysVarStr = SysVarStr {
    flags: PLUGIN_VAR_STR | PLUGIN_VAR_READONLY | PLUGIN_VAR_RQCMDARG,
    name: c"conf_dir".as_ptr(),
    comment: c"Directory with okvclient.ora (SERVER, STANDBY_SERVER) and ssl/ (CA.pem, cert.pem, key.pem, optional password.txt), laid out as for keyring_okv".as_ptr(),
    check: None,
    update: None,
    value: &raw mut CONF_DIR,
    def_val: c"".as_ptr(),
};

static mut KEY_NAMESPACE_VAR: SysVarStr = SysVarStr {
    flags: PLUGIN_VAR_STR | PLUGIN_VAR_READONLY | PLUGIN_VAR_RQCMDARG,
    name: c"key_namespace".as_ptr(),
    comment: c"Prefix of the KMIP object names: <namespace>/<key id>/<version>. The same on every server that opens the same data".as_ptr(),
    check: None,
    update: None,
    value: &raw mut KEY_NAMESPACE,
    def_val: c"mariadb".as_ptr(),
};

static mut CACHE_TIMEOUT_VAR: SysVarUlong = SysVarUlong {
    flags: PLUGIN_VAR_LONG | PLUGIN_VAR_UNSIGNED | PLUGIN_VAR_RQCMDARG,
    name: c"cache_timeout".as_ptr(),
    comment: c"Milliseconds a key version other than the latest is served from memory before it is read again from the KMIP server (0: for ever). The latest versions never expire".as_ptr(),
    check: None,
    update: Some(sysvar::update_cache_timeout),
    value: &raw mut CACHE_TIMEOUT_MS,
    def_val: DEFAULT_CACHE_TIMEOUT_MS,
    min_val: 0,
    max_val: c_ulong::MAX,
    blk_sz: 0,
};

static mut CACHE_VERSION_TIMEOUT_VAR: SysVarUlong = SysVarUlong {
    flags: PLUGIN_VAR_LONG | PLUGIN_VAR_UNSIGNED | PLUGIN_VAR_RQCMDARG,
    name: c"cache_version_timeout".as_ptr(),
    comment: c"Milliseconds between background checks of the KMIP server for new key versions (made by rotation elsewhere)".as_ptr(),
    check: None,
    update: Some(sysvar::update_cache_version_timeout),
    value: &raw mut CACHE_VERSION_TIMEOUT_MS,
    def_val: DEFAULT_CACHE_VERSION_TIMEOUT_MS,
    min_val: 1000,
    max_val: 365 * 24 * 3600 * 1000,
    blk_sz: 0,
};

static mut USE_CACHE_ON_ERROR_VAR: SysVarBool = SysVarBool {
    flags: PLUGIN_VAR_BOOL | PLUGIN_VAR_RQCMDARG,
    name: c"use_cache_on_error".as_ptr(),
    comment: c"When reading an expired key version again fails, keep serving the cached copy"
        .as_ptr(),
    check: None,
    update: Some(sysvar::update_use_cache_on_error),
    value: &raw mut USE_CACHE_ON_ERROR,
    def_val: 1,
};

static mut ROTATE_KEY_VAR: SysVarInt = SysVarInt {
    flags: PLUGIN_VAR_INT | PLUGIN_VAR_RQCMDARG,
    name: c"rotate_key".as_ptr(),
    comment: c"Set to a key id to make a new version of that key on the KMIP server, or to -1 to rotate every key in use".as_ptr(),
    check: Some(sysvar::check_rotate_key),
    update: Some(sysvar::update_rotate_key),
    value: &raw mut ROTATE_KEY,
    def_val: 0,
    min_val: -1,
    max_val: c_int::MAX,
    blk_sz: 0,
};

static mut SEALED_HOURS_VAR: SysVarUlong = SysVarUlong {
    flags: PLUGIN_VAR_LONG | PLUGIN_VAR_UNSIGNED | PLUGIN_VAR_READONLY | PLUGIN_VAR_RQCMDARG,
    name: c"sealed_cache_max_age_hours".as_ptr(),
    comment: c"Keep the key versions this server uses in an encrypted file in the configuration directory, and start from it read-only when no KMIP server answers, for at most this many hours since a KMIP server last confirmed them (0: off)".as_ptr(),
    check: None,
    update: None,
    value: &raw mut SEALED_HOURS,
    def_val: 0,
    min_val: 0,
    max_val: 24 * 365,
    blk_sz: 0,
};

static mut SEALED_DIR_VAR: SysVarStr = SysVarStr {
    flags: PLUGIN_VAR_STR | PLUGIN_VAR_READONLY | PLUGIN_VAR_RQCMDARG,
    name: c"sealed_cache_dir".as_ptr(),
    comment: c"The directory of the sealed key cache's file (kmip_key_management.sealed), which mariadbd's account must be able to write: not /etc, which mariadb.service makes read-only".as_ptr(),
    check: None,
    update: None,
    value: &raw mut SEALED_DIR,
    def_val: c"/var/lib/mysql-keyring".as_ptr(),
};

static mut KEY_STATE_POLL_VAR: SysVarUlong = SysVarUlong {
    flags: PLUGIN_VAR_LONG | PLUGIN_VAR_UNSIGNED | PLUGIN_VAR_READONLY | PLUGIN_VAR_RQCMDARG,
    name: c"key_state_poll_seconds".as_ptr(),
    comment: c"Seconds between two polls of the KMIP server for the state of every key version this server uses; a version revoked, destroyed or replaced there is acted on as kmip_key_management_key_state_action says (0: off)".as_ptr(),
    check: None,
    update: None,
    value: &raw mut KEY_STATE_POLL_SECONDS,
    def_val: okv_core::guard::DEFAULT_POLL_SECONDS as c_ulong,
    min_val: 0,
    max_val: 7 * 24 * 3600,
    blk_sz: 0,
};

static mut KEY_STATE_ACTION_VAR: SysVarStr = SysVarStr {
    flags: PLUGIN_VAR_STR | PLUGIN_VAR_READONLY | PLUGIN_VAR_RQCMDARG,
    name: c"key_state_action".as_ptr(),
    comment: c"What a key version in use found revoked on the KMIP server does: warn (an error-log line with the rotation to run), rotate (also a new version of that key id at once) or refuse (also dropped from memory and the sealed key cache, and never served again by this server)".as_ptr(),
    check: None,
    update: None,
    value: &raw mut KEY_STATE_ACTION,
    def_val: c"warn".as_ptr(),
};

static mut SYSTEM_VARS: [*mut c_void; 11] = [
    (&raw mut CONF_DIR_VAR).cast(),
    (&raw mut KEY_NAMESPACE_VAR).cast(),
    (&raw mut CACHE_TIMEOUT_VAR).cast(),
    (&raw mut CACHE_VERSION_TIMEOUT_VAR).cast(),
    (&raw mut USE_CACHE_ON_ERROR_VAR).cast(),
    (&raw mut ROTATE_KEY_VAR).cast(),
    (&raw mut SEALED_HOURS_VAR).cast(),
    (&raw mut SEALED_DIR_VAR).cast(),
    (&raw mut KEY_STATE_POLL_VAR).cast(),
    (&raw mut KEY_STATE_ACTION_VAR).cast(),
    std::ptr::null_mut(),
];

static mut STATUS_VARS: [StMysqlShowVar; 3] = [
    StMysqlShowVar {
        name: c"kmip_key_management".as_ptr(),
        value: status::show_status as ShowFn as *mut c_void,
        show_type: SHOW_FUNC,
    },
    // A second array: the first one fills the server's buffer.
    StMysqlShowVar {
        name: c"kmip_key_management_key_state".as_ptr(),
        value: status::show_key_state as ShowFn as *mut c_void,
        show_type: SHOW_FUNC,
    },
    StMysqlShowVar {
        name: std::ptr::null(),
        value: std::ptr::null_mut(),
        show_type: 0,
    },
];

#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static mut _maria_plugin_declarations_: [StMariaPlugin; 2] = [
    StMariaPlugin {
        plugin_type: MARIADB_ENCRYPTION_PLUGIN,
        info: (&raw mut ENCRYPTION).cast(),
        name: c"kmip_key_management".as_ptr(),
        author: c"keyring_okv contributors".as_ptr(),
        descr: c"Key management plugin that keeps versioned AES keys in a KMIP 1.1 server over mutual TLS".as_ptr(),
        license: PLUGIN_LICENSE_GPL,
        init: Some(plugin_init),
        deinit: Some(plugin_deinit),
        version: PLUGIN_VERSION,
        status_vars: (&raw mut STATUS_VARS).cast(),
        system_vars: (&raw mut SYSTEM_VARS).cast(),
        version_info: c"1.0".as_ptr(),
        maturity: MARIADB_PLUGIN_MATURITY_GAMMA,
    },
    StMariaPlugin {
        plugin_type: 0,
        info: std::ptr::null_mut(),
        name: std::ptr::null(),
        author: std::ptr::null(),
        descr: std::ptr::null(),
        license: 0,
        init: None,
        deinit: None,
        version: 0,
        status_vars: std::ptr::null_mut(),
        system_vars: std::ptr::null_mut(),
        version_info: std::ptr::null(),
        maturity: 0,
    },
];

/// Connects and loads key 1 (and 2 if present); any failure is one error-log line and a
/// non-zero return, so that `kmip_key_management=FORCE` refuses to start without keys.
unsafe extern "C" fn plugin_init(_handle: *mut c_void) -> c_int {
    guard("plugin init", 1, || {
        log::install();
        // SAFETY: the server set the variables' storage before calling init.
        let (conf_dir, namespace, sealed_dir, settings) = unsafe {
            (
                sysvar::read_str(&raw const CONF_DIR),
                sysvar::read_str(&raw const KEY_NAMESPACE),
                sysvar::read_str(&raw const SEALED_DIR),
                (
                    (&raw const CACHE_TIMEOUT_MS).read(),
                    (&raw const CACHE_VERSION_TIMEOUT_MS).read(),
                    (&raw const USE_CACHE_ON_ERROR).read(),
                    (&raw const SEALED_HOURS).read(),
                ),
            )
        };
        let (Some(conf_dir), Some(namespace), Some(sealed_dir)) = (conf_dir, namespace, sealed_dir)
        else {
            tracing::error!(
                "cannot start: kmip_key_management_conf_dir, kmip_key_management_key_namespace and kmip_key_management_sealed_cache_dir must be UTF-8; fix them in my.cnf"
            );
            return 1;
        };
        // SAFETY: as above.
        let (poll, action) = unsafe {
            (
                (&raw const KEY_STATE_POLL_SECONDS).read(),
                sysvar::read_str(&raw const KEY_STATE_ACTION),
            )
        };
        let action = match action.as_deref().map(str::trim) {
            None | Some("") => okv_core::guard::Action::Warn,
            Some(text) => match okv_core::guard::Action::parse(text) {
                Some(action) => action,
                None => {
                    tracing::error!(
                        "cannot start: kmip_key_management_key_state_action is '{text}', not warn, refuse or rotate; fix it in my.cnf"
                    );
                    return 1;
                }
            },
        };
        let settings = Settings {
            key_state: okv_core::guard::Settings {
                poll: Duration::from_secs(poll),
                action,
            },
            namespace,
            cache_timeout: Duration::from_millis(settings.0),
            version_refresh: Duration::from_millis(settings.1),
            use_cache_on_error: settings.2 != 0,
            sealed_cache_max_age_hours: settings.3,
            sealed_cache_dir: if sealed_dir.is_empty() {
                okv_core::sealed::DEFAULT_DIR.into()
            } else {
                sealed_dir.into()
            },
        };
        match host::start(&conf_dir, settings) {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!("cannot start: {e}");
                host::stop();
                1
            }
        }
    })
}

unsafe extern "C" fn plugin_deinit(_handle: *mut c_void) -> c_int {
    guard("plugin deinit", 0, || {
        host::stop();
        0
    })
}
