//! The component registry as MySQL lays it out (include/mysql/components/services/registry.h),
//! for the component (handed the registry by the loader) and the plugin (which reaches it
//! through `plugin_registry_service` to register `mysql_keyring_native_key_id`), and that
//! service's own table.
//!
//! Ownership rule of a service handle: `acquire` and `acquire_related` give a reference that
//! the caller holds until it gives it back with `release`, exactly once; a handle is never used
//! after its release. A service registered with `register_service` points at a `static` table
//! of this library, so it must be unregistered before the library is unloaded.

use std::ffi::{c_char, c_int, c_void};

/// `mysql_service_status_t`: 0 is success.
pub type Status = c_int;

/// `my_h_service`: a reference to a service's function table.
pub type Handle = *mut c_void;

/// `registry` (version 1).
#[repr(C)]
pub struct Registry {
    pub acquire: unsafe extern "C" fn(name: *const c_char, out: *mut Handle) -> Status,
    pub acquire_related:
        unsafe extern "C" fn(name: *const c_char, related: Handle, out: *mut Handle) -> Status,
    pub release: unsafe extern "C" fn(service: Handle) -> Status,
}

/// `registry_registration` (version 1).
#[repr(C)]
pub struct RegistryRegistration {
    pub register_service: unsafe extern "C" fn(name: *const c_char, service: Handle) -> Status,
    pub unregister: unsafe extern "C" fn(name: *const c_char) -> Status,
    pub set_default: unsafe extern "C" fn(name: *const c_char) -> Status,
}

/// `mysql_keyring_native_key_id` (include/mysql/components/services/mysql_keyring_native_key_id.h):
/// performance_schema.keyring_keys.BACKEND_KEY_ID.
#[repr(C)]
pub struct NativeKeyId {
    pub get_backend_key_id: unsafe extern "C" fn(
        key_id: *const c_char,
        user_id: *const c_char,
        backend_key_id: *mut c_char,
        max_key_len: usize,
    ) -> Status,
}
