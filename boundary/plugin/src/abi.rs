//! C layouts of the MySQL plugin ABI (include/mysql/plugin.h, plugin_keyring.h and the plugin
//! services), identical for MySQL 8.0, 8.4 and 9.x. `include/keyring_okv.h` declares the same
//! structs; tests/plugin/abi.rs checks sizes and offsets against it.

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};

pub const MYSQL_PLUGIN_INTERFACE_VERSION: c_int = 0x010B;
pub const MYSQL_KEYRING_PLUGIN: c_int = 10;
pub const MYSQL_KEYRING_INTERFACE_VERSION: c_int = 0x0101;
pub const PLUGIN_LICENSE_GPL: c_int = 1;
pub const PLUGIN_OPT_ALLOW_EARLY: c_ulong = 4;

pub const PLUGIN_VAR_BOOL: c_int = 0x0001;
pub const PLUGIN_VAR_LONG: c_int = 0x0003;
pub const PLUGIN_VAR_STR: c_int = 0x0005;
pub const PLUGIN_VAR_UNSIGNED: c_int = 0x0080;
/// Set at startup only (SET GLOBAL refused).
pub const PLUGIN_VAR_READONLY: c_int = 0x0200;
pub const PLUGIN_VAR_RQCMDARG: c_int = 0x0000;
pub const PLUGIN_VAR_NODEFAULT: c_int = 0x4000;

/// Service version numbers a plugin exports in its service pointers before the server links
/// them (include/service_versions.h).
pub const SERVICE_VERSION_0100: usize = 0x0100;

pub const MY_WME: c_int = 16;
pub const PSI_NOT_INSTRUMENTED: c_uint = 0;

pub type PluginHandle = *mut c_void;
pub type PluginFn = unsafe extern "C" fn(PluginHandle) -> c_int;

#[repr(C)]
pub struct StMysqlPlugin {
    pub plugin_type: c_int,
    pub info: *mut c_void,
    pub name: *const c_char,
    pub author: *const c_char,
    pub descr: *const c_char,
    pub license: c_int,
    pub init: Option<PluginFn>,
    pub check_uninstall: Option<PluginFn>,
    pub deinit: Option<PluginFn>,
    pub version: c_uint,
    pub status_vars: *mut c_void,
    pub system_vars: *mut *mut c_void,
    pub reserved1: *mut c_void,
    pub flags: c_ulong,
}

#[repr(C)]
pub struct StMysqlKeyring {
    pub interface_version: c_int,
    pub mysql_key_store: unsafe extern "C" fn(
        key_id: *const c_char,
        key_type: *const c_char,
        user_id: *const c_char,
        key: *const c_void,
        key_len: usize,
    ) -> bool,
    pub mysql_key_fetch: unsafe extern "C" fn(
        key_id: *const c_char,
        key_type: *mut *mut c_char,
        user_id: *const c_char,
        key: *mut *mut c_void,
        key_len: *mut usize,
    ) -> bool,
    pub mysql_key_remove:
        unsafe extern "C" fn(key_id: *const c_char, user_id: *const c_char) -> bool,
    pub mysql_key_generate: unsafe extern "C" fn(
        key_id: *const c_char,
        key_type: *const c_char,
        user_id: *const c_char,
        key_len: usize,
    ) -> bool,
    pub mysql_key_iterator_init: unsafe extern "C" fn(iterator: *mut *mut c_void),
    pub mysql_key_iterator_deinit: unsafe extern "C" fn(iterator: *mut c_void),
    pub mysql_key_iterator_get_key: unsafe extern "C" fn(
        iterator: *mut c_void,
        key_id: *mut c_char,
        user_id: *mut c_char,
    ) -> bool,
}

pub use okv_ffi::sysvar::{StMysqlValue, SysVarBool, SysVarStr, SysVarUlong};

/// `my_plugin_log_service`.
#[repr(C)]
pub struct MyPluginLogService {
    pub my_plugin_log_message: unsafe extern "C" fn(
        plugin: *mut PluginHandle,
        level: c_int,
        format: *const c_char,
        ...
    ) -> c_int,
}

/// `mysql_malloc_service`.
#[repr(C)]
pub struct MysqlMallocService {
    pub mysql_malloc: unsafe extern "C" fn(key: c_uint, size: usize, flags: c_int) -> *mut c_void,
    pub mysql_realloc: unsafe extern "C" fn(
        key: c_uint,
        ptr: *mut c_void,
        size: usize,
        flags: c_int,
    ) -> *mut c_void,
    pub mysql_claim: unsafe extern "C" fn(ptr: *const c_void),
    pub mysql_free: unsafe extern "C" fn(ptr: *mut c_void),
    pub my_memdup: unsafe extern "C" fn(
        key: c_uint,
        from: *const c_void,
        len: usize,
        flags: c_int,
    ) -> *mut c_void,
    pub my_strdup:
        unsafe extern "C" fn(key: c_uint, from: *const c_char, flags: c_int) -> *mut c_char,
    pub my_strndup: unsafe extern "C" fn(
        key: c_uint,
        from: *const c_char,
        len: usize,
        flags: c_int,
    ) -> *mut c_char,
}
