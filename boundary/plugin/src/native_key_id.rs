//! `performance_schema.keyring_keys.BACKEND_KEY_ID`: the optional component service
//! `mysql_keyring_native_key_id`, registered by this plugin in the server's component registry
//! (reached through the `plugin_registry_service` plugin service). P_S acquires it for each
//! query of the table and asks it for each key the iterator listed; the answer (the KMIP unique
//! identifier) comes from the keyring's memory, never from a KMIP call.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::time::{Duration, Instant};

use okv_ffi::{copy_whole_c_string, guard, str_arg};

/// The name under which the service is registered: `<service>.<implementation>`.
const IMPLEMENTATION: &CStr = c"mysql_keyring_native_key_id.keyring_okv";

/// include/mysql/service_plugin_registry.h (plugin service, version 0x0100).
#[repr(C)]
pub struct PluginRegistryService {
    acquire: unsafe extern "C" fn() -> *const Registry,
    release: unsafe extern "C" fn(*const Registry) -> c_int,
}

use okv_ffi::registry::{NativeKeyId, Registry, RegistryRegistration};

static SERVICE: NativeKeyId = NativeKeyId { get_backend_key_id };

#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static mut plugin_registry_service: *const PluginRegistryService =
    std::ptr::without_provenance(super::abi::SERVICE_VERSION_0100);

/// Writes the key's KMIP unique identifier, NUL-terminated, into the `max_key_len`-byte buffer
/// (an empty string and failure when the keyring has not seen the key, the identifier does not
/// fit, or the id or owner is not UTF-8: P_S does not clear the buffer between rows, so it is
/// always written).
unsafe extern "C" fn get_backend_key_id(
    key_id: *const c_char,
    user_id: *const c_char,
    backend_key_id: *mut c_char,
    max_key_len: usize,
) -> c_int {
    guard("get_backend_key_id", 1, || {
        if backend_key_id.is_null() || max_key_len == 0 {
            return 1;
        }
        // SAFETY: the server passes a buffer of at least max_key_len >= 1 bytes.
        unsafe { *backend_key_id = 0 };
        if key_id.is_null() {
            return 1;
        }
        // SAFETY: the server passes NUL-terminated strings (or NULL for the owner). An id that
        // is not UTF-8 is no key of ours: a lossy conversion could name another key.
        let (Ok(id), Ok(owner)) = (unsafe { str_arg(key_id) }, unsafe { str_arg(user_id) }) else {
            return 1;
        };
        let Some(uid) = okv_core::products::mysql_plugin::backend_key_id(id, owner) else {
            return 1;
        };
        // SAFETY: the buffer holds max_key_len bytes.
        c_int::from(!unsafe { copy_whole_c_string(&uid, backend_key_id, max_key_len) })
    })
}

/// The registry, when the server filled in the plugin service (inside mysqld; a host that
/// loads the library without it leaves the version number there).
fn with_registration<T>(f: impl FnOnce(&RegistryRegistration) -> T) -> Option<T> {
    // SAFETY: after init the pointer is the server's service table, or still the version.
    unsafe {
        let service = (&raw const plugin_registry_service).read();
        if service.is_null() || service.addr() == super::abi::SERVICE_VERSION_0100 {
            return None;
        }
        let registry = ((*service).acquire)();
        if registry.is_null() {
            return None;
        }
        let mut handle: *mut c_void = std::ptr::null_mut();
        let outcome = if ((*registry).acquire)(c"registry_registration".as_ptr(), &mut handle) == 0
            && !handle.is_null()
        {
            let result = f(&*handle.cast::<RegistryRegistration>());
            ((*registry).release)(handle);
            Some(result)
        } else {
            None
        };
        ((*service).release)(registry);
        outcome
    }
}

/// Plugin init: offers BACKEND_KEY_ID to performance_schema.
pub fn register() {
    let registered = with_registration(|reg| {
        // SAFETY: the server's registry_registration service; the service table is static.
        unsafe {
            (reg.register_service)(
                IMPLEMENTATION.as_ptr(),
                (&raw const SERVICE).cast_mut().cast(),
            ) == 0
        }
    });
    match registered {
        Some(true) => tracing::debug!("registered mysql_keyring_native_key_id"),
        Some(false) => tracing::warn!(
            "keyring_okv: could not register the mysql_keyring_native_key_id service; performance_schema.keyring_keys shows no BACKEND_KEY_ID"
        ),
        None => {}
    }
}

/// How long deinit retries the unregistration while a query of P_S holds the service.
const UNREGISTER_WAIT: Duration = Duration::from_secs(5);

/// Plugin deinit: withdraws the service before the library goes away.
pub fn unregister() {
    let started = Instant::now();
    loop {
        // Unregistering fails only while a reference is held (a P_S query running now).
        let done = with_registration(|reg| {
            // SAFETY: the server's registry_registration service.
            unsafe { (reg.unregister)(IMPLEMENTATION.as_ptr()) == 0 }
        });
        match done {
            None | Some(true) => return,
            Some(false) if started.elapsed() >= UNREGISTER_WAIT => {
                tracing::error!(
                    "keyring_okv: could not withdraw the mysql_keyring_native_key_id service at unload"
                );
                return;
            }
            // No event to wait on: the registry gives none.
            Some(false) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
