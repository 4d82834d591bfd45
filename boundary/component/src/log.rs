//! The error log. We log through `mysql_simple_error_log` (one member, `emit`, the same in 8.0.37+,
//! 8.4 and 9.x), acquired at run time: `log_builtins` changed its member order between 8.4 and
//! 9.x, and neither service exists in every host (mysql_migrate_keyring registers no
//! `mysql_simple_error_log`), so without it the lines go to stderr.

use std::ffi::{CString, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

use okv_core::logging::Severity;

use crate::REGISTRY;
use crate::abi::{
    ER_LOG_PRINTF_MSG, Handle, LOG_ERROR, LOG_INFORMATION, LOG_WARNING, Registry, SimpleErrorLog,
};

/// The acquired service handle (a pointer to the service's function table), or NULL.
static SIMPLE_LOG: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

fn registry() -> Option<&'static Registry> {
    let p = REGISTRY.load(Ordering::Acquire);
    // SAFETY: the loader wrote the registry service's address before init; it stays valid
    // while we are loaded.
    (!p.is_null()).then(|| unsafe { &*p.cast::<Registry>() })
}

/// Acquires the log service (if the host has it) and routes the core's tracing events to it.
pub fn init() {
    if let Some(registry) = registry() {
        let mut handle: Handle = std::ptr::null_mut();
        // SAFETY: a valid NUL-terminated name and an out pointer to a local.
        let failed = unsafe { (registry.acquire)(c"mysql_simple_error_log".as_ptr(), &mut handle) };
        if failed == 0 && !handle.is_null() {
            SIMPLE_LOG.store(handle, Ordering::Release);
        }
    }
    okv_ffi::logging::install(log_line);
}

/// Releases the log service (component deinit); later lines go to stderr.
pub fn deinit() {
    let handle = SIMPLE_LOG.swap(std::ptr::null_mut(), Ordering::AcqRel);
    if let (Some(registry), false) = (registry(), handle.is_null()) {
        // SAFETY: handle came from this registry's acquire.
        unsafe {
            (registry.release)(handle);
        }
    }
}

/// The tracing sink: one error-log line per event.
fn log_line(severity: Severity, message: &str) {
    let handle = SIMPLE_LOG.load(Ordering::Acquire);
    if handle.is_null() {
        eprintln!("component_keyring_okv: {message}");
        return;
    }
    // The server shows the subsystem cut to 12 characters: name the component in the text.
    let message = if message.starts_with("component_keyring_okv") {
        message.replace('\0', " ")
    } else {
        format!("component_keyring_okv: {}", message.replace('\0', " "))
    };
    let Ok(text) = CString::new(message) else {
        return;
    };
    let level = match severity {
        Severity::Error => LOG_ERROR,
        Severity::Warning => LOG_WARNING,
        Severity::Information => LOG_INFORMATION,
    };
    // SAFETY: handle is the acquired service table; ER_LOG_PRINTF_MSG's text is "%s", given
    // exactly one string argument, so no part of the message is read as a format.
    unsafe {
        let service = &*handle.cast::<SimpleErrorLog>();
        (service.emit)(
            c"component_keyring_okv".as_ptr(),
            c"component_keyring_okv".as_ptr(),
            0,
            level,
            ER_LOG_PRINTF_MSG,
            text.as_ptr(),
        );
    }
}
