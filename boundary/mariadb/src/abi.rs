//! C layouts of the MariaDB plugin ABI (include/mysql/plugin.h and plugin_encryption.h), the
//! same in MariaDB 10.11 and 11.8. Only layouts that did not change between those releases are
//! used: no server services, no ENUM/SET variables (TYPELIB grew in 11.x), no
//! INFORMATION_SCHEMA table (bound to one server release).

use std::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void};

/// MARIA_PLUGIN_INTERFACE_VERSION of 10.11 and 11.8; the loader accepts any 0x01xx.
pub const MARIA_PLUGIN_INTERFACE_VERSION: c_int = 0x010f;
pub const MARIADB_ENCRYPTION_PLUGIN: c_int = 9;
pub const MARIADB_ENCRYPTION_INTERFACE_VERSION: c_int = 0x0300;
pub const PLUGIN_LICENSE_GPL: c_int = 1;
pub const MARIADB_PLUGIN_MATURITY_GAMMA: c_uint = 4;

pub const ENCRYPTION_KEY_VERSION_INVALID: c_uint = !0;
pub const ENCRYPTION_KEY_BUFFER_TOO_SMALL: c_uint = 100;

pub const PLUGIN_VAR_BOOL: c_int = 0x0001;
pub const PLUGIN_VAR_INT: c_int = 0x0002;
pub const PLUGIN_VAR_LONG: c_int = 0x0003;
pub const PLUGIN_VAR_STR: c_int = 0x0005;
pub const PLUGIN_VAR_UNSIGNED: c_int = 0x0080;
pub const PLUGIN_VAR_READONLY: c_int = 0x0200;
pub const PLUGIN_VAR_RQCMDARG: c_int = 0x0000;

pub const SHOW_ULONGLONG: c_int = 4;
pub const SHOW_CHAR: c_int = 5;
pub const SHOW_ARRAY: c_int = 7;
pub const SHOW_FUNC: c_int = 8;
/// SHOW_VAR_FUNC_BUFF_SIZE: the buffer a SHOW_FUNC callback may fill.
pub const SHOW_FUNC_BUFFER: usize = 256 * std::mem::size_of::<*const c_void>();

pub type PluginFn = unsafe extern "C" fn(*mut c_void) -> c_int;

/// `struct st_maria_plugin` (104 bytes on x86_64).
#[repr(C)]
pub struct StMariaPlugin {
    pub plugin_type: c_int,
    pub info: *mut c_void,
    pub name: *const c_char,
    pub author: *const c_char,
    pub descr: *const c_char,
    pub license: c_int,
    pub init: Option<PluginFn>,
    pub deinit: Option<PluginFn>,
    pub version: c_uint,
    pub status_vars: *mut StMysqlShowVar,
    pub system_vars: *mut *mut c_void,
    pub version_info: *const c_char,
    pub maturity: c_uint,
}

pub type GetLatestKeyVersionFn = unsafe extern "C" fn(key_id: c_uint) -> c_uint;
pub type GetKeyFn = unsafe extern "C" fn(
    key_id: c_uint,
    version: c_uint,
    key: *mut u8,
    key_length: *mut c_uint,
) -> c_uint;

/// `struct st_mariadb_encryption`; the five crypt_ctx/encrypted_length members stay NULL, so
/// the server encrypts with its own AES-CBC.
#[repr(C)]
pub struct StMariadbEncryption {
    pub interface_version: c_int,
    pub get_latest_key_version: Option<GetLatestKeyVersionFn>,
    pub get_key: Option<GetKeyFn>,
    pub crypt_ctx_size: *const c_void,
    pub crypt_ctx_init: *const c_void,
    pub crypt_ctx_update: *const c_void,
    pub crypt_ctx_finish: *const c_void,
    pub encrypted_length: *const c_void,
}

/// `struct st_mysql_show_var`.
#[repr(C)]
pub struct StMysqlShowVar {
    pub name: *const c_char,
    pub value: *mut c_void,
    pub show_type: c_int,
}

/// MariaDB's SHOW_FUNC callback.
pub type ShowFn = unsafe extern "C" fn(
    thd: *mut c_void,
    var: *mut StMysqlShowVar,
    buffer: *mut c_void,
    status_var: *mut c_void,
    scope: c_int,
) -> c_int;

pub use okv_ffi::sysvar::{CheckFn, StMysqlValue, SysVarBool, SysVarStr, SysVarUlong, UpdateFn};

/// MYSQL_SYSVAR_INT.
#[repr(C)]
pub struct SysVarInt {
    pub flags: c_int,
    pub name: *const c_char,
    pub comment: *const c_char,
    pub check: Option<CheckFn>,
    pub update: Option<UpdateFn>,
    pub value: *mut c_int,
    pub def_val: c_int,
    pub min_val: c_int,
    pub max_val: c_int,
    pub blk_sz: c_int,
}

/// `my_printf_error(uint error, const char *format, myf flags, ...)`, exported by mariadbd: sets
/// the client's error for the statement in progress (SET GLOBAL).
pub type MyPrintfErrorFn = unsafe extern "C" fn(c_uint, *const c_char, c_ulong, ...);
/// ER_UNKNOWN_ERROR.
pub const ER_UNKNOWN_ERROR: c_uint = 1105;

const _: () = assert!(std::mem::size_of::<StMariaPlugin>() == 104);
const _: () = assert!(std::mem::size_of::<StMariadbEncryption>() == 64);
const _: () = assert!(std::mem::size_of::<StMysqlShowVar>() == 24);
const _: () = assert!(std::mem::size_of::<c_long>() == 8);
