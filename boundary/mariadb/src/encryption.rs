//! The two key calls of the encryption interface. InnoDB aborts the server on several error
//! answers, so both answer from the core's in-memory store and turn every failure, and any
//! panic, into exactly ENCRYPTION_KEY_VERSION_INVALID.

use std::ffi::c_uint;

use super::abi::{ENCRYPTION_KEY_BUFFER_TOO_SMALL, ENCRYPTION_KEY_VERSION_INVALID};
use okv_core::products::mariadb::host;
use okv_ffi::guard;

pub unsafe extern "C" fn get_latest_key_version(key_id: c_uint) -> c_uint {
    guard(
        "get_latest_key_version",
        ENCRYPTION_KEY_VERSION_INVALID,
        || host::latest_version(key_id).unwrap_or(ENCRYPTION_KEY_VERSION_INVALID),
    )
}

/// `key` NULL asks for the length only; then `*key_length` is not read (the server's
/// encryption_key_version_exists() passes it uninitialised).
pub unsafe extern "C" fn get_key(
    key_id: c_uint,
    version: c_uint,
    key: *mut u8,
    key_length: *mut c_uint,
) -> c_uint {
    guard("get_key", ENCRYPTION_KEY_VERSION_INVALID, || {
        if key_length.is_null() {
            return ENCRYPTION_KEY_VERSION_INVALID;
        }
        host::with_key(key_id, version, |bytes| {
            // The store holds 16, 24 or 32 bytes only.
            let len = bytes.len() as c_uint;
            // SAFETY: key_length is non-NULL and points at the caller's unsigned int.
            unsafe {
                if key.is_null() {
                    *key_length = len;
                    return 0;
                }
                let capacity = *key_length;
                *key_length = len;
                if capacity < len {
                    return ENCRYPTION_KEY_BUFFER_TOO_SMALL;
                }
                // SAFETY: the caller's buffer holds `capacity` >= len bytes.
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), key, bytes.len());
            }
            0
        })
        .unwrap_or(ENCRYPTION_KEY_VERSION_INVALID)
    })
}
