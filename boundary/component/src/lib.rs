//! component_keyring_okv.so, the MySQL 8.4/9.x keyring component. mysqld loads it from its
//! manifest (`mysqld.my`: `{"components": "file://component_keyring_okv"}`), the
//! `mysql_migrate_keyring` tool and the server's migration mode load it by name. It provides the
//! eight keyring services plus `mysql_keyring_native_key_id` under the implementation name
//! `component_keyring_okv`; each export turns C arguments into a call of the core's safe
//! `component` module.
//!
//! `init` never fails (a failed init aborts mysqld): the configuration is read and the KMIP
//! server contacted in `keyring_load`, which the server calls right after loading us and on
//! `ALTER INSTANCE RELOAD KEYRING`.

mod abi;
mod log;
mod services;

use std::ffi::c_void;
use std::sync::atomic::AtomicPtr;

use abi::*;
use okv_ffi::guard;

/// A static holding raw pointers to other statics; the loader only reads it.
#[repr(transparent)]
struct Shared<T>(T);
// SAFETY: the pointers refer to immutable statics or to the registry placeholder, which the
// loader writes before init while no other thread runs our code.
unsafe impl<T> Sync for Shared<T> {}

/// The `registry` service, filled in by the loader before `init` (both in mysqld and in
/// mysql_migrate_keyring). It is the only service we require: logging is acquired at run time,
/// so that the component also loads where the server's services are absent.
pub(crate) static REGISTRY: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

macro_rules! service {
    ($name:literal, $imp:expr) => {
        ServiceRef {
            name: concat!($name, ".component_keyring_okv\0").as_ptr().cast(),
            implementation: (&raw const $imp).cast(),
        }
    };
}

static PROVIDES: Shared<[ServiceRef; 10]> = Shared([
    service!("keyring_reader_with_status", services::READER),
    service!("keyring_writer", services::WRITER),
    service!("keyring_generator", services::GENERATOR),
    service!("keyring_keys_metadata_iterator", services::KEYS_ITERATOR),
    service!("keyring_component_status", services::STATUS),
    service!("keyring_component_metadata_query", services::METADATA_QUERY),
    service!("keyring_load", services::LOAD),
    service!("keyring_aes", services::AES),
    service!("mysql_keyring_native_key_id", services::NATIVE_KEY_ID),
    ServiceRef {
        name: std::ptr::null(),
        implementation: std::ptr::null(),
    },
]);

static REQUIRES: Shared<[PlaceholderRef; 2]> = Shared([
    PlaceholderRef {
        name: c"registry".as_ptr(),
        implementation: REGISTRY.as_ptr(),
    },
    PlaceholderRef {
        name: std::ptr::null(),
        implementation: std::ptr::null_mut(),
    },
]);

static METADATA: Shared<[MetadataRef; 4]> = Shared([
    MetadataRef {
        key: c"mysql.author".as_ptr(),
        value: c"keyring_okv contributors".as_ptr(),
    },
    MetadataRef {
        key: c"mysql.license".as_ptr(),
        value: c"GPL".as_ptr(),
    },
    MetadataRef {
        key: c"component_keyring_okv_service".as_ptr(),
        value: c"1".as_ptr(),
    },
    MetadataRef {
        key: std::ptr::null(),
        value: std::ptr::null(),
    },
]);

static COMPONENT: Shared<Component> = Shared(Component {
    name: c"component_keyring_okv".as_ptr(),
    provides: PROVIDES.0.as_ptr(),
    requires_service: REQUIRES.0.as_ptr(),
    metadata: METADATA.0.as_ptr(),
    init: Some(component_init),
    deinit: Some(component_deinit),
});

/// The loader's entry point: the one component of this library. The data stays at a fixed
/// address for the life of the library, as the loader expects.
#[unsafe(no_mangle)]
pub extern "C" fn list_components() -> *const Component {
    &COMPONENT.0
}

/// Never fails: configuration and network problems are handled by keyring_load.
unsafe extern "C" fn component_init() -> Status {
    guard("component init", OK, || {
        log::init();
        tracing::info!("component_keyring_okv {} loaded", okv_core::BUILD);
        OK
    })
}

/// Wipes cached keys, closes connections, stops the I/O thread and releases the log service.
unsafe extern "C" fn component_deinit() -> Status {
    guard("component deinit", OK, || {
        okv_core::products::mysql_component::shutdown();
        log::deinit();
        OK
    })
}
