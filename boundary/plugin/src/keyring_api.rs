//! The seven functions of `st_mysql_keyring`. Return convention: false = success, true = error.
//! Outputs are written only on success; every failure is one error-log line.

use std::ffi::{CString, c_char, c_void};

use super::services::{server_copy, server_free, server_strdup};
use okv_core::keyring::{MAX_LISTED_KEY_ID_LEN, MAX_LISTED_OWNER_LEN};
use okv_core::products::mysql_plugin::{self as plugin, HEALTH_PROBE_KEY_ID, PluginError};
use okv_ffi::{copy_c_string, guard, str_arg};

/// The smallest key id buffer any caller hands get_key: performance_schema's 256 bytes (the
/// keyring proxy passes 1025, keyring migration 16384).
const ID_BUFFER: usize = MAX_LISTED_KEY_ID_LEN + 1;
/// The smallest owner buffer: keyring migration's USERNAME_LENGTH (96) bytes
/// (performance_schema passes 256, the keyring proxy 1025).
const OWNER_BUFFER: usize = MAX_LISTED_OWNER_LEN + 1;

/// One log line per failed call: a warning when the caller asked for something the keyring
/// refuses, an error when the keyring could not do its job.
fn report(what: &str, key_id: &str, err: &PluginError) {
    match err {
        PluginError::Keyring(e) if e.is_caller_error() => {
            tracing::warn!("keyring_okv: {what} of key '{key_id}' refused: {err}")
        }
        _ => tracing::error!("keyring_okv: {what} of key '{key_id}' failed: {err}"),
    }
}

fn args<'a>(
    what: &str,
    key_id: *const c_char,
    user_id: *const c_char,
) -> Option<(&'a str, &'a str)> {
    // SAFETY: mysqld passes NUL-terminated strings or NULL.
    let parsed = unsafe { (str_arg(key_id), str_arg(user_id)) };
    match parsed {
        (Ok(k), Ok(u)) => Some((k, u)),
        (Err(why), _) => {
            tracing::error!("keyring_okv: {what} failed: the key id {why}");
            None
        }
        (_, Err(why)) => {
            tracing::error!("keyring_okv: {what} failed: the key owner {why}");
            None
        }
    }
}

/// The arguments of store and generate: key id, owner and key type.
fn typed_args<'a>(
    what: &str,
    key_id: *const c_char,
    key_type: *const c_char,
    user_id: *const c_char,
) -> Option<(&'a str, &'a str, &'a str)> {
    let (id, owner) = args(what, key_id, user_id)?;
    // SAFETY: mysqld passes a NUL-terminated string or NULL.
    match unsafe { str_arg(key_type) } {
        Ok(kind) => Some((id, owner, kind)),
        Err(why) => {
            tracing::error!("keyring_okv: {what} of key '{id}' failed: the key type {why}");
            None
        }
    }
}

/// Logs a failed call and answers mysqld: false = success, true = error.
fn answer(what: &str, key_id: &str, result: Result<(), PluginError>) -> bool {
    match result {
        Ok(()) => false,
        Err(e) => {
            report(what, key_id, &e);
            true
        }
    }
}

pub unsafe extern "C" fn mysql_key_store(
    key_id: *const c_char,
    key_type: *const c_char,
    user_id: *const c_char,
    key: *const c_void,
    key_len: usize,
) -> bool {
    guard("mysql_key_store", true, || {
        let Some((id, owner, kind)) = typed_args("store", key_id, key_type, user_id) else {
            return true;
        };
        let material: &[u8] = if key.is_null() || key_len == 0 {
            &[]
        } else {
            // SAFETY: mysqld passes key_len readable bytes at key.
            unsafe { std::slice::from_raw_parts(key.cast::<u8>(), key_len) }
        };
        answer("store", id, plugin::store(id, owner, kind, material))
    })
}

pub unsafe extern "C" fn mysql_key_generate(
    key_id: *const c_char,
    key_type: *const c_char,
    user_id: *const c_char,
    key_len: usize,
) -> bool {
    guard("mysql_key_generate", true, || {
        let Some((id, owner, kind)) = typed_args("generate", key_id, key_type, user_id) else {
            return true;
        };
        answer("generate", id, plugin::generate(id, owner, kind, key_len))
    })
}

pub unsafe extern "C" fn mysql_key_fetch(
    key_id: *const c_char,
    key_type: *mut *mut c_char,
    user_id: *const c_char,
    key: *mut *mut c_void,
    key_len: *mut usize,
) -> bool {
    guard("mysql_key_fetch", true, || {
        if key.is_null() || key_type.is_null() || key_len.is_null() {
            tracing::error!("keyring_okv: fetch called without output pointers");
            return true;
        }
        let Some((id, owner)) = args("fetch", key_id, user_id) else {
            return true;
        };
        let fetched = match plugin::fetch(id, owner) {
            Ok(f) => f,
            Err(PluginError::NotConfigured(_)) if id == HEALTH_PROBE_KEY_ID => {
                // mysqld asks whether the keyring works; "no" is the answer, not a failure.
                return true;
            }
            Err(e) => {
                report("fetch", id, &e);
                return true;
            }
        };
        let Some(fetched) = fetched else {
            // SAFETY: checked non-NULL above.
            unsafe { *key = std::ptr::null_mut() };
            return false;
        };
        let data = server_copy(&fetched.material);
        let type_name = server_strdup(fetched.key_type.name());
        if data.is_null() || type_name.is_null() {
            server_free(data, fetched.material.len());
            server_free(type_name.cast(), fetched.key_type.name().len());
            tracing::error!("keyring_okv: fetch of key '{id}' failed: out of memory");
            return true;
        }
        // SAFETY: checked non-NULL above; the buffers are the server's to free with my_free.
        unsafe {
            *key = data;
            *key_type = type_name;
            *key_len = fetched.material.len();
        }
        false
    })
}

pub unsafe extern "C" fn mysql_key_remove(key_id: *const c_char, user_id: *const c_char) -> bool {
    guard("mysql_key_remove", true, || {
        let Some((id, owner)) = args("remove", key_id, user_id) else {
            return true;
        };
        answer("remove", id, plugin::remove(id, owner))
    })
}

/// A snapshot of the key list, walked by get_key.
struct KeyIterator {
    entries: Vec<(CString, CString)>,
    next: usize,
}

pub unsafe extern "C" fn mysql_key_iterator_init(iterator: *mut *mut c_void) {
    guard("mysql_key_iterator_init", (), || {
        if iterator.is_null() {
            return;
        }
        // SAFETY: checked non-NULL.
        unsafe { *iterator = std::ptr::null_mut() };
        let entries = match plugin::list() {
            Ok(list) => list,
            Err(e) => {
                tracing::error!("keyring_okv: listing the keys failed: {e}");
                return;
            }
        };
        let entries = entries
            .into_iter()
            .filter_map(|e| {
                if e.key_id.len() >= ID_BUFFER || e.owner.len() >= OWNER_BUFFER {
                    // Written by another client: mysqld's buffers cannot take it whole, and a
                    // cut id would name another key.
                    tracing::warn!(
                        "keyring_okv: key '{}' of owner '{}' (KMIP object {}) is not listed: mysqld takes ids of at most {} and owners of at most {} bytes",
                        e.key_id,
                        e.owner,
                        e.uid,
                        ID_BUFFER - 1,
                        OWNER_BUFFER - 1
                    );
                    return None;
                }
                Some((CString::new(e.key_id).ok()?, CString::new(e.owner).ok()?))
            })
            .collect();
        // SAFETY: checked non-NULL; ownership passes to the caller until deinit.
        unsafe { *iterator = okv_ffi::handle::lend(KeyIterator { entries, next: 0 }) };
    })
}

pub unsafe extern "C" fn mysql_key_iterator_deinit(iterator: *mut c_void) {
    guard("mysql_key_iterator_deinit", (), || {
        // SAFETY: lent by iterator_init, released once here.
        drop(unsafe { okv_ffi::handle::take_back::<KeyIterator>(iterator) });
    })
}

pub unsafe extern "C" fn mysql_key_iterator_get_key(
    iterator: *mut c_void,
    key_id: *mut c_char,
    user_id: *mut c_char,
) -> bool {
    guard("mysql_key_iterator_get_key", true, || {
        // SAFETY: lent by iterator_init and not yet released.
        let Some(it) = (unsafe { okv_ffi::handle::borrow_mut::<KeyIterator>(iterator) }) else {
            return true;
        };
        if key_id.is_null() || user_id.is_null() {
            return true;
        }
        let Some((id, owner)) = it.entries.get(it.next) else {
            return true;
        };
        it.next += 1;
        // SAFETY: every caller passes at least ID_BUFFER bytes for the id and OWNER_BUFFER
        // for the owner; iterator_init kept only entries that fit whole.
        unsafe {
            copy_c_string(id.to_str().unwrap_or_default(), key_id, ID_BUFFER);
            copy_c_string(owner.to_str().unwrap_or_default(), user_id, OWNER_BUFFER);
        }
        false
    })
}
