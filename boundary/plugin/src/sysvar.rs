//! `keyring_okv_conf_dir`: a global, dynamic string variable. SET GLOBAL validates the new
//! directory completely and connects to its servers in `check` (outside the server's global
//! variable lock); `update` only swaps. A failed check leaves the variable and the keyring as
//! they were, as the manual promises.
//!
//! `keyring_okv_cache_keys` and `keyring_okv_cache_ttl_seconds`: global and dynamic; the
//! server's own checks, then `update` stores the value and puts an empty cache in force.

use std::ffi::{CStr, CString, c_char, c_int, c_ulong, c_void};
use std::sync::{Mutex, PoisonError};

use super::abi::StMysqlValue;
use okv_core::products::mysql_plugin as plugin;
use okv_ffi::guard;

/// The plugin-owned copy of the current value; the variable's `char*` points into it.
static OWNED_VALUE: Mutex<Option<CString>> = Mutex::new(None);

/// Longest path accepted (PATH_MAX).
const MAX_PATH: usize = 4096;

pub unsafe extern "C" fn check_conf_dir(
    _thd: *mut c_void,
    _var: *mut c_void,
    save: *mut c_void,
    value: *mut StMysqlValue,
) -> c_int {
    guard("keyring_okv_conf_dir check", 1, || {
        if save.is_null() || value.is_null() {
            return 1;
        }
        // SAFETY: save points at storage for one pointer (the server allocates at least 8 bytes).
        unsafe { *save.cast::<u64>() = 0 };
        // SAFETY: value is the server's st_mysql_value for this check.
        let text = unsafe { okv_ffi::sysvar::read_str(value, MAX_PATH) };
        let Some(text) = text else {
            tracing::error!(
                "keyring_okv_conf_dir cannot be NULL; the previous configuration stays in force"
            );
            return 1;
        };
        let Ok(dir) = String::from_utf8(text) else {
            tracing::error!(
                "keyring_okv_conf_dir must be a UTF-8 path; the previous configuration stays in force"
            );
            return 1;
        };
        match plugin::prepare(&dir, true) {
            Ok(prepared) => {
                // The configuration stays with the core, not in `save`: when another part of
                // the statement fails, mysqld never calls update, and the core releases it.
                let token = plugin::park(prepared);
                // SAFETY: as above; update reads the token back.
                unsafe { *save.cast::<u64>() = token };
                0
            }
            Err(e) => {
                tracing::error!("SET GLOBAL keyring_okv_conf_dir='{dir}' refused: {e}");
                1
            }
        }
    })
}

pub unsafe extern "C" fn update_conf_dir(
    _thd: *mut c_void,
    _var: *mut c_void,
    var_ptr: *mut c_void,
    save: *const c_void,
) {
    guard("keyring_okv_conf_dir update", (), || {
        if save.is_null() || var_ptr.is_null() {
            return;
        }
        // SAFETY: check stored a token (or 0) in save; NODEFAULT guarantees save is ours.
        let token = unsafe { *save.cast::<u64>() };
        if token == 0 {
            return;
        }
        let Some(prepared) = plugin::unpark(token) else {
            tracing::error!(
                "SET GLOBAL keyring_okv_conf_dir: the checked configuration was released because the statement took longer than {} s to complete; the previous configuration stays in force; run the SET again",
                plugin::PARK_LIMIT.as_secs()
            );
            return;
        };
        let Ok(value) = CString::new(prepared.dir()) else {
            return;
        };
        let mut owned = OWNED_VALUE.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: var_ptr is the variable's `char*` storage; the new string lives in OWNED_VALUE
        // until it is replaced again, and the server reads it under the lock it holds now.
        unsafe { *var_ptr.cast::<*const c_char>() = value.as_ptr() };
        *owned = Some(value);
        drop(owned);
        tracing::info!(
            "keyring_okv: keyring_okv_conf_dir is now {}",
            prepared.dir()
        );
        plugin::install(prepared);
    })
}

/// The variable's value as the server set it from my.cnf or the command line; None when it is
/// not UTF-8 (refused as SET GLOBAL refuses it: a lossy copy would name another directory).
///
/// # Safety
/// `value` is the variable's storage.
pub unsafe fn read_value(value: *const *mut c_char) -> Option<String> {
    // SAFETY: per the contract, and the server keeps the string alive while we run init.
    unsafe {
        let p = *value;
        if p.is_null() {
            return Some(String::new());
        }
        CStr::from_ptr(p).to_str().ok().map(str::to_string)
    }
}

/// The cache settings in the variables' storage, into force.
///
/// # Safety
/// Called by the server from an update callback, under its lock of the global variables.
unsafe fn apply_cache_settings() {
    // SAFETY: the server writes these only in update callbacks, under the same lock.
    let (on, ttl) = unsafe { (super::CACHE_KEYS_VALUE != 0, super::CACHE_TTL_VALUE) };
    plugin::set_cache(on, ttl);
    tracing::info!(
        "keyring_okv: key cache {}",
        if on {
            format!("on, keys kept {ttl} s (0: until the cache is turned off)")
        } else {
            "off".to_string()
        }
    );
}

pub unsafe extern "C" fn update_cache_keys(
    _thd: *mut c_void,
    _var: *mut c_void,
    var_ptr: *mut c_void,
    save: *const c_void,
) {
    guard("keyring_okv_cache_keys update", (), || {
        if var_ptr.is_null() || save.is_null() {
            return;
        }
        // SAFETY: the variable is a one-byte bool; the server's check stored one in save.
        unsafe {
            *var_ptr.cast::<c_char>() = c_char::from(*save.cast::<c_char>() != 0);
            apply_cache_settings();
        }
    })
}

pub unsafe extern "C" fn update_cache_ttl(
    _thd: *mut c_void,
    _var: *mut c_void,
    var_ptr: *mut c_void,
    save: *const c_void,
) {
    guard("keyring_okv_cache_ttl_seconds update", (), || {
        if var_ptr.is_null() || save.is_null() {
            return;
        }
        // SAFETY: both point at the variable's unsigned long, checked by the server.
        unsafe {
            *var_ptr.cast::<c_ulong>() = *save.cast::<c_ulong>();
            apply_cache_settings();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_is_not_utf8_is_refused_not_guessed() {
        let read = |bytes: &CStr| unsafe { read_value(&bytes.as_ptr().cast_mut()) };
        assert_eq!(read(c"/etc/mysql/okv").as_deref(), Some("/etc/mysql/okv"));
        assert_eq!(read(c"/etc/mysql/\xffokv"), None);
        assert_eq!(
            unsafe { read_value(&std::ptr::null_mut()) }.as_deref(),
            Some("")
        );
    }
}
