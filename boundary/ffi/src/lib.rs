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
/// character boundary if it does not fit. A buffer of 0 bytes is left untouched.
///
/// # Safety
/// `dest` is valid for writes of `capacity` bytes.
pub unsafe fn copy_c_string(text: &str, dest: *mut c_char, capacity: usize) {
    // Not even the NUL fits: `capacity - 1` would wrap and the copy run past the buffer.
    let Some(room) = capacity.checked_sub(1) else {
        return;
    };
    let mut len = text.len().min(room);
    while !text.is_char_boundary(len) {
        len -= 1;
    }
    // SAFETY: len + 1 <= capacity bytes are written inside `dest`.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), dest.cast::<u8>(), len);
        *dest.add(len) = 0;
    }
}

/// Copies the whole of `text`, NUL-terminated, into a caller buffer of `capacity` bytes, or an
/// empty string when it does not fit or holds a NUL (an identifier cut short would name another
/// object). Returns whether `text` was written. A buffer of 0 bytes is left untouched.
///
/// # Safety
/// `dest` is valid for writes of `capacity` bytes.
pub unsafe fn copy_whole_c_string(text: &str, dest: *mut c_char, capacity: usize) -> bool {
    let whole = text.len() < capacity && !text.contains('\0');
    // SAFETY: per the contract above; copy_c_string writes at most `capacity` bytes.
    unsafe { copy_c_string(if whole { text } else { "" }, dest, capacity) };
    whole
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `copy` into a 16-byte buffer filled with 0x7f, offering it `capacity` bytes.
    fn into_buffer(capacity: usize, copy: impl FnOnce(*mut c_char, usize)) -> [u8; 16] {
        let mut buffer = [0x7fu8; 16];
        assert!(capacity <= buffer.len());
        copy(buffer.as_mut_ptr().cast::<c_char>(), capacity);
        buffer
    }

    #[test]
    fn arguments_that_are_not_utf8_are_refused_not_converted() {
        assert_eq!(
            unsafe { str_arg(c"INNODBKey-1".as_ptr()) },
            Ok("INNODBKey-1")
        );
        assert_eq!(unsafe { str_arg(std::ptr::null()) }, Ok(""));
        assert_eq!(
            unsafe { str_arg(c"key-\xff".as_ptr()) },
            Err("it is not valid UTF-8")
        );
    }

    #[test]
    fn a_zero_length_buffer_is_left_untouched() {
        let buffer = into_buffer(0, |dest, capacity| unsafe {
            copy_c_string("abc", dest, capacity);
        });
        assert_eq!(buffer, [0x7f; 16]);
        let buffer = into_buffer(0, |dest, capacity| unsafe {
            assert!(!copy_whole_c_string("abc", dest, capacity));
        });
        assert_eq!(buffer, [0x7f; 16]);
    }

    #[test]
    fn text_is_cut_at_a_character_boundary_and_terminated() {
        let buffer = into_buffer(1, |dest, capacity| unsafe {
            copy_c_string("abc", dest, capacity);
        });
        assert_eq!(buffer[..2], [0, 0x7f]);
        // "é" is two bytes: with room for two bytes and the NUL, "aéb" is cut to "a".
        let buffer = into_buffer(3, |dest, capacity| unsafe {
            copy_c_string("aéb", dest, capacity);
        });
        assert_eq!(buffer[..3], [b'a', 0, 0x7f]);
        let buffer = into_buffer(4, |dest, capacity| unsafe {
            copy_c_string("abc", dest, capacity);
        });
        assert_eq!(buffer[..5], [b'a', b'b', b'c', 0, 0x7f]);
    }

    #[test]
    fn a_whole_copy_is_all_or_an_empty_string() {
        let buffer = into_buffer(4, |dest, capacity| unsafe {
            assert!(copy_whole_c_string("abc", dest, capacity));
        });
        assert_eq!(buffer[..5], [b'a', b'b', b'c', 0, 0x7f]);
        let buffer = into_buffer(3, |dest, capacity| unsafe {
            assert!(!copy_whole_c_string("abc", dest, capacity));
        });
        assert_eq!(buffer[..2], [0, 0x7f]);
        let buffer = into_buffer(8, |dest, capacity| unsafe {
            assert!(!copy_whole_c_string("a\0b", dest, capacity));
        });
        assert_eq!(buffer[..2], [0, 0x7f]);
    }
}
