//! What every library of keyring_okv uses at its C boundary (the MySQL plugin, the MySQL
//! component, the MariaDB plugin): the panic guard, C string arguments and bounded writes,
//! opaque handles ([`handle`]), the component registry ([`registry`]), the system-variable ABI
//! ([`sysvar`]) and the logging set-up ([`logging`]). Each module documents the ownership rule
//! of the pointers it deals in.

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

pub mod handle;
pub mod logging;
pub mod registry;
pub mod sysvar;

/// Runs `body`; a panic becomes `on_panic` and one error-log line, never an unwind into mysqld.
pub fn guard<R>(what: &str, on_panic: R, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(_) => {
            tracing::error!(
                "keyring_okv: internal error in {what}; the call failed (please report this as a bug)"
            );
            on_panic
        }
    }
}

/// A borrowed C string as UTF-8. NULL reads as "" (mysqld passes NULL for server keys' owner).
///
/// # Safety
/// `ptr` is NULL or points at a NUL-terminated string valid for the call.
pub unsafe fn str_arg<'a>(ptr: *const c_char) -> Result<&'a str, &'static str> {
    if ptr.is_null() {
        return Ok("");
    }
    // SAFETY: non-NULL and NUL-terminated per the contract above.
    let c = unsafe { CStr::from_ptr(ptr) };
    c.to_str().map_err(|_| "it is not valid UTF-8")
}

/// Copies `text` into a caller buffer of `capacity` bytes, NUL-terminated, cutting it at a
/// character boundary if it does not fit.
///
/// # Safety
/// `dest` is valid for writes of `capacity` bytes, and `capacity` >= 1.
pub unsafe fn copy_c_string(text: &str, dest: *mut c_char, capacity: usize) {
    let mut len = text.len().min(capacity - 1);
    while !text.is_char_boundary(len) {
        len -= 1;
    }
    // SAFETY: len + 1 <= capacity bytes are written inside `dest`.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), dest.cast::<u8>(), len);
        *dest.add(len) = 0;
    }
}
