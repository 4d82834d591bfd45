//! The C layouts of the MySQL component infrastructure and of the services we provide or use,
//! as in MySQL 8.4/9.x `include/mysql/components/` (dynamic_loader.h, registry.h, the keyring
//! service headers, mysql_simple_error_log.h). These headers have not changed since 8.0.24;
//! tests/c/component_layout.c checks every size and offset below against the 9.7.4 headers.
//!
//! Every service method returns `mysql_service_status_t` (int): 0 = success (C++ false), except
//! the predicates `is_valid`/`is_initialized`, where non-zero means true.

use std::ffi::{c_char, c_int, c_ulong, c_void};

pub type Status = c_int;
/// Any opaque handle (`my_h_service`, reader objects, iterators).
pub type Handle = *mut c_void;

pub const OK: Status = 0;
pub const FAIL: Status = 1;

#[repr(C)]
pub struct ServiceRef {
    pub name: *const c_char,
    pub implementation: *const c_void,
}

#[repr(C)]
pub struct PlaceholderRef {
    pub name: *const c_char,
    pub implementation: *mut *mut c_void,
}

#[repr(C)]
pub struct MetadataRef {
    pub key: *const c_char,
    pub value: *const c_char,
}

#[repr(C)]
pub struct Component {
    pub name: *const c_char,
    pub provides: *const ServiceRef,
    pub requires_service: *const PlaceholderRef,
    pub metadata: *const MetadataRef,
    pub init: Option<unsafe extern "C" fn() -> Status>,
    pub deinit: Option<unsafe extern "C" fn() -> Status>,
}

#[repr(C)]
pub struct Registry {
    pub acquire: unsafe extern "C" fn(name: *const c_char, out: *mut Handle) -> Status,
    pub acquire_related:
        unsafe extern "C" fn(name: *const c_char, related: Handle, out: *mut Handle) -> Status,
    pub release: unsafe extern "C" fn(service: Handle) -> Status,
}

#[repr(C)]
pub struct SimpleErrorLog {
    pub emit: unsafe extern "C" fn(
        component: *const c_char,
        file: *const c_char,
        line: c_ulong,
        severity: c_int,
        error_id: c_int,
        ...
    ) -> Status,
}

#[repr(C)]
pub struct KeyringReaderWithStatus {
    pub init: unsafe extern "C" fn(*const c_char, *const c_char, *mut Handle) -> Status,
    pub deinit: unsafe extern "C" fn(Handle) -> Status,
    pub fetch_length: unsafe extern "C" fn(Handle, *mut usize, *mut usize) -> Status,
    pub fetch: unsafe extern "C" fn(
        Handle,
        *mut u8,
        usize,
        *mut usize,
        *mut c_char,
        usize,
        *mut usize,
    ) -> Status,
}

#[repr(C)]
pub struct KeyringWriter {
    pub store: unsafe extern "C" fn(
        *const c_char,
        *const c_char,
        *const u8,
        usize,
        *const c_char,
    ) -> Status,
    pub remove: unsafe extern "C" fn(*const c_char, *const c_char) -> Status,
}

#[repr(C)]
pub struct KeyringGenerator {
    pub generate:
        unsafe extern "C" fn(*const c_char, *const c_char, *const c_char, usize) -> Status,
}

/// keyring_keys_metadata_iterator and keyring_component_metadata_query share this shape.
#[repr(C)]
pub struct MetadataIterator {
    pub init: unsafe extern "C" fn(*mut Handle) -> Status,
    pub deinit: unsafe extern "C" fn(Handle) -> Status,
    pub is_valid: unsafe extern "C" fn(Handle) -> Status,
    pub next: unsafe extern "C" fn(Handle) -> Status,
    pub get_length: unsafe extern "C" fn(Handle, *mut usize, *mut usize) -> Status,
    pub get: unsafe extern "C" fn(Handle, *mut c_char, usize, *mut c_char, usize) -> Status,
}

#[repr(C)]
pub struct KeyringComponentStatus {
    pub is_initialized: unsafe extern "C" fn() -> Status,
}

#[repr(C)]
pub struct KeyringLoad {
    pub load: unsafe extern "C" fn(*const c_char, *const c_char) -> Status,
}

pub type AesOp = unsafe extern "C" fn(
    data_id: *const c_char,
    auth_id: *const c_char,
    mode: *const c_char,
    block_size: usize,
    iv: *const u8,
    padding: c_int,
    data: *const u8,
    data_len: usize,
    out: *mut u8,
    out_len: usize,
    out_written: *mut usize,
) -> Status;

#[repr(C)]
pub struct KeyringAes {
    pub get_size: unsafe extern "C" fn(usize, *const c_char, usize, *mut usize) -> Status,
    pub encrypt: AesOp,
    pub decrypt: AesOp,
}

#[repr(C)]
pub struct NativeKeyId {
    pub get_backend_key_id:
        unsafe extern "C" fn(*const c_char, *const c_char, *mut c_char, usize) -> Status,
}

/// Severity numbers of mysql_simple_error_log (my_loglevel.h).
pub const LOG_ERROR: c_int = 1;
pub const LOG_WARNING: c_int = 2;
pub const LOG_INFORMATION: c_int = 3;

/// ER_LOG_PRINTF_MSG, whose message is "%s" (share/messages_to_error_log.txt).
pub const ER_LOG_PRINTF_MSG: c_int = 11071;

// The layout test (tests/c/component_layout.c) checks these against the C headers.
const _: () = {
    assert!(std::mem::size_of::<ServiceRef>() == 16);
    assert!(std::mem::size_of::<PlaceholderRef>() == 16);
    assert!(std::mem::size_of::<MetadataRef>() == 16);
    assert!(std::mem::size_of::<Component>() == 48);
    assert!(std::mem::size_of::<Registry>() == 24);
    assert!(std::mem::size_of::<KeyringReaderWithStatus>() == 32);
    assert!(std::mem::size_of::<KeyringWriter>() == 16);
    assert!(std::mem::size_of::<MetadataIterator>() == 48);
    assert!(std::mem::size_of::<KeyringAes>() == 24);
};
