//! The server services we use: the error log and the server's allocator. mysqld overwrites the
//! exported pointers with its service tables when it loads the library; outside mysqld they
//! hold version numbers, so they are only called after the server ran our init.

use std::ffi::{CString, c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use super::abi::{
    MY_WME, MyPluginLogService, MysqlMallocService, PSI_NOT_INSTRUMENTED, PluginHandle,
    SERVICE_VERSION_0100,
};
use okv_core::logging::Severity;

#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static mut my_plugin_log_service: *const MyPluginLogService =
    std::ptr::without_provenance(SERVICE_VERSION_0100);

#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static mut mysql_malloc_service: *const MysqlMallocService =
    std::ptr::without_provenance(SERVICE_VERSION_0100);

/// Set by plugin init: from then on the service pointers are the server's tables.
static LINKED: AtomicBool = AtomicBool::new(false);
/// The handle init received; the log service wants the address of a variable holding it.
static HANDLE: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

pub fn mark_linked(handle: PluginHandle) {
    HANDLE.store(handle, Ordering::Release);
    LINKED.store(true, Ordering::Release);
}

pub fn mark_unlinked() {
    LINKED.store(false, Ordering::Release);
}

fn linked() -> bool {
    LINKED.load(Ordering::Acquire)
}

/// The tracing sink inside mysqld.
pub fn log_line(severity: Severity, message: &str) {
    if !linked() {
        eprintln!("keyring_okv: {message}");
        return;
    }
    let Ok(text) = CString::new(message.replace('\0', " ")) else {
        return;
    };
    let mut handle = HANDLE.load(Ordering::Acquire);
    // SAFETY: after init the pointer is the server's log service table; the format is a
    // constant "%s", so no part of the message is read as a format.
    unsafe {
        let service = (&raw const my_plugin_log_service).read();
        ((*service).my_plugin_log_message)(
            &mut handle,
            severity as c_int,
            c"%s".as_ptr(),
            text.as_ptr(),
        );
    }
}

/// A copy of `bytes` in memory from the server's allocator, which the caller frees with
/// my_free. NULL on failure.
pub fn server_copy(bytes: &[u8]) -> *mut c_void {
    if !linked() {
        return std::ptr::null_mut();
    }
    // SAFETY: after init the pointer is the server's malloc service; the destination has
    // bytes.len() bytes.
    unsafe {
        let service = (&raw const mysql_malloc_service).read();
        let p = ((*service).mysql_malloc)(PSI_NOT_INSTRUMENTED, bytes.len().max(1), MY_WME);
        if !p.is_null() {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.cast::<u8>(), bytes.len());
        }
        p
    }
}

/// A NUL-terminated copy of `text` from the server's allocator. NULL on failure.
pub fn server_strdup(text: &str) -> *mut c_char {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(0);
    server_copy(&bytes).cast()
}

/// Wipes and frees a buffer obtained from `server_copy`.
pub fn server_free(p: *mut c_void, len: usize) {
    if p.is_null() || !linked() {
        return;
    }
    // SAFETY: p came from server_copy with at least len bytes.
    unsafe {
        std::ptr::write_bytes(p.cast::<u8>(), 0, len);
        let service = (&raw const mysql_malloc_service).read();
        ((*service).mysql_free)(p);
    }
}
