//! The variables' callbacks. The server validates numbers and booleans with its own check
//! functions; the update callbacks store the value and pass it on to the running key store.
//! `rotate_key` does its work in `check`, so that a failed rotation fails the SET statement.

use std::ffi::{CStr, c_char, c_int, c_ulong, c_void};
use std::sync::OnceLock;
use std::time::Duration;

use super::abi::{ER_UNKNOWN_ERROR, MyPrintfErrorFn, StMysqlValue};
use okv_core::products::mariadb::host;
use okv_ffi::guard;

/// The value of a string variable: empty for NULL, None when it is not UTF-8 (refused, never
/// read as unset or converted lossily).
///
/// # Safety
/// `value` points at the variable's `char*`, which is NULL or a NUL-terminated string.
pub unsafe fn read_str(value: *const *mut c_char) -> Option<String> {
    // SAFETY: per the contract above.
    unsafe {
        let p = *value;
        if p.is_null() {
            return Some(String::new());
        }
        CStr::from_ptr(p).to_str().ok().map(str::to_string)
    }
}

/// mariadbd's my_printf_error, found at run time (mariadb-backup may not export it), so that
/// the library still links no server symbol.
fn my_printf_error() -> Option<MyPrintfErrorFn> {
    static FOUND: OnceLock<usize> = OnceLock::new();
    let address = *FOUND.get_or_init(|| {
        // SAFETY: dlsym with a constant NUL-terminated name.
        unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"my_printf_error".as_ptr()) as usize }
    });
    // SAFETY: the exported function has this signature in every release with this ABI.
    (address != 0).then(|| unsafe { std::mem::transmute::<usize, MyPrintfErrorFn>(address) })
}

/// Tells the client why a SET failed (besides the error-log line).
fn client_error(message: &str) {
    let Some(print) = my_printf_error() else {
        return;
    };
    let Ok(text) = std::ffi::CString::new(format!("kmip_key_management: {message}")) else {
        return;
    };
    // SAFETY: constant "%s" format with one string argument.
    unsafe { print(ER_UNKNOWN_ERROR, c"%s".as_ptr(), 0, text.as_ptr()) };
}

pub unsafe extern "C" fn check_rotate_key(
    _thd: *mut c_void,
    _var: *mut c_void,
    save: *mut c_void,
    value: *mut StMysqlValue,
) -> c_int {
    guard("kmip_key_management_rotate_key", 1, || {
        if save.is_null() || value.is_null() {
            return 1;
        }
        // SAFETY: value is the server's st_mysql_value for this statement.
        let Some(requested) = (unsafe { okv_ffi::sysvar::read_int(value) }) else {
            return 1;
        };
        match host::rotate(requested) {
            Ok(made) => {
                // SAFETY: save holds one int for an INT variable.
                unsafe { *save.cast::<c_int>() = 0 };
                if made.is_empty() && requested != 0 {
                    tracing::warn!("kmip_key_management_rotate_key={requested}: no key to rotate");
                }
                0
            }
            Err(e) => {
                tracing::error!(
                    "SET GLOBAL kmip_key_management_rotate_key={requested} failed: {e}"
                );
                client_error(&e);
                1
            }
        }
    })
}

/// Stores the 0 that check left in `save`: the variable is a trigger, not a setting.
pub unsafe extern "C" fn update_rotate_key(
    _thd: *mut c_void,
    _var: *mut c_void,
    var_ptr: *mut c_void,
    save: *const c_void,
) {
    guard("kmip_key_management_rotate_key", (), || {
        if !var_ptr.is_null() && !save.is_null() {
            // SAFETY: both point at an int of this INT variable.
            unsafe { *var_ptr.cast::<c_int>() = *save.cast::<c_int>() };
        }
    })
}

/// Reads an unsigned long from `save`, stores it in the variable and returns it.
unsafe fn store_ulong(var_ptr: *mut c_void, save: *const c_void) -> Option<c_ulong> {
    if var_ptr.is_null() || save.is_null() {
        return None;
    }
    // SAFETY: both point at an unsigned long of a ULONG variable.
    unsafe {
        let v = *save.cast::<c_ulong>();
        *var_ptr.cast::<c_ulong>() = v;
        Some(v)
    }
}

pub unsafe extern "C" fn update_cache_timeout(
    _thd: *mut c_void,
    _var: *mut c_void,
    var_ptr: *mut c_void,
    save: *const c_void,
) {
    guard("kmip_key_management_cache_timeout", (), || {
        // SAFETY: the server passes this variable's storage and the checked value.
        if let Some(ms) = unsafe { store_ulong(var_ptr, save) } {
            host::set_cache_timeout(Duration::from_millis(ms));
        }
    })
}

pub unsafe extern "C" fn update_cache_version_timeout(
    _thd: *mut c_void,
    _var: *mut c_void,
    var_ptr: *mut c_void,
    save: *const c_void,
) {
    guard("kmip_key_management_cache_version_timeout", (), || {
        // SAFETY: the server passes this variable's storage and the checked value.
        if let Some(ms) = unsafe { store_ulong(var_ptr, save) } {
            host::set_version_refresh(Duration::from_millis(ms));
        }
    })
}

pub unsafe extern "C" fn update_use_cache_on_error(
    _thd: *mut c_void,
    _var: *mut c_void,
    var_ptr: *mut c_void,
    save: *const c_void,
) {
    guard("kmip_key_management_use_cache_on_error", (), || {
        if var_ptr.is_null() || save.is_null() {
            return;
        }
        // SAFETY: the variable is a my_bool; the server's check stored at least one byte.
        let on = unsafe {
            let on = *save.cast::<c_char>() != 0;
            *var_ptr.cast::<c_char>() = c_char::from(on);
            on
        };
        host::set_use_cache_on_error(on);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_is_not_utf8_is_refused_not_read_as_unset() {
        let read = |bytes: &CStr| unsafe { read_str(&bytes.as_ptr().cast_mut()) };
        assert_eq!(read(c"/etc/mysql/kmip").as_deref(), Some("/etc/mysql/kmip"));
        assert_eq!(read(c"/etc/mysql/\xffkmip"), None);
        assert_eq!(
            unsafe { read_str(&std::ptr::null_mut()) }.as_deref(),
            Some("")
        );
    }
}
