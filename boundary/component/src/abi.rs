//! The C layouts of the MySQL component infrastructure and of the services we provide or use,
//! as in MySQL 8.4/9.x `include/mysql/components/` (dynamic_loader.h, registry.h, the keyring
//! service headers, mysql_simple_error_log.h). These headers have not changed since 8.0.24;
//! tests/c/component_layout.c checks every size and offset below against the 9.7.4 headers.
//!
//! Every service method returns `mysql_service_status_t` (int): 0 = success (C++ false), except
//! the predicates `is_valid`/`is_initialized`, where non-zero means true.

use std::ffi::{c_char, c_int, c_ulong, c_void};

/// `mysql_service_status_t`, `my_h_service` (any opaque handle: services, readers,
/// iterators), the registry and `mysql_keyring_native_key_id`: shared with the plugin.
pub use okv_ffi::registry::{Handle, NativeKeyId, Registry, Status};

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

#[cfg(test)]
mod layout {
    //! Every size and offset above against the C headers: tests/c/component_layout.cc is
    //! compiled with the MySQL 9.7 headers (scripts/mysql-headers.sh) and its output compared
    //! line by line.
    use super::*;
    use std::mem::{offset_of, size_of};
    use std::path::Path;
    use std::process::Command;

    fn rust_lines() -> Vec<String> {
        let mut v = Vec::new();
        macro_rules! size {
            ($name:literal, $t:ty) => {
                v.push(format!("size {} {}", $name, size_of::<$t>()))
            };
        }
        macro_rules! at {
            ($name:literal, $t:ty, $($m:ident),+) => {
                $(v.push(format!("offset {}.{} {}", $name, stringify!($m), offset_of!($t, $m)));)+
            };
        }
        size!("mysql_service_status_t", Status);
        size!("mysql_service_ref_t", ServiceRef);
        at!("mysql_service_ref_t", ServiceRef, name, implementation);
        size!("mysql_service_placeholder_ref_t", PlaceholderRef);
        at!(
            "mysql_service_placeholder_ref_t",
            PlaceholderRef,
            name,
            implementation
        );
        size!("mysql_metadata_ref_t", MetadataRef);
        at!("mysql_metadata_ref_t", MetadataRef, key, value);
        size!("mysql_component_t", Component);
        at!(
            "mysql_component_t",
            Component,
            name,
            provides,
            requires_service,
            metadata,
            init,
            deinit
        );
        size!("registry", Registry);
        at!("registry", Registry, acquire, acquire_related, release);
        size!("mysql_simple_error_log", SimpleErrorLog);
        at!("mysql_simple_error_log", SimpleErrorLog, emit);
        size!("keyring_reader_with_status", KeyringReaderWithStatus);
        at!(
            "keyring_reader_with_status",
            KeyringReaderWithStatus,
            init,
            deinit,
            fetch_length,
            fetch
        );
        size!("keyring_writer", KeyringWriter);
        at!("keyring_writer", KeyringWriter, store, remove);
        size!("keyring_generator", KeyringGenerator);
        at!("keyring_generator", KeyringGenerator, generate);
        for name in [
            "keyring_keys_metadata_iterator",
            "keyring_component_metadata_query",
        ] {
            v.push(format!("size {name} {}", size_of::<MetadataIterator>()));
            for (m, off) in [
                ("init", offset_of!(MetadataIterator, init)),
                ("deinit", offset_of!(MetadataIterator, deinit)),
                ("is_valid", offset_of!(MetadataIterator, is_valid)),
                ("next", offset_of!(MetadataIterator, next)),
                ("get_length", offset_of!(MetadataIterator, get_length)),
                ("get", offset_of!(MetadataIterator, get)),
            ] {
                v.push(format!("offset {name}.{m} {off}"));
            }
        }
        size!("keyring_component_status", KeyringComponentStatus);
        at!(
            "keyring_component_status",
            KeyringComponentStatus,
            is_initialized
        );
        size!("keyring_load", KeyringLoad);
        at!("keyring_load", KeyringLoad, load);
        size!("keyring_aes", KeyringAes);
        at!("keyring_aes", KeyringAes, get_size, encrypt, decrypt);
        size!("mysql_keyring_native_key_id", NativeKeyId);
        at!(
            "mysql_keyring_native_key_id",
            NativeKeyId,
            get_backend_key_id
        );
        v
    }

    fn headers() -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let out = Command::new("bash")
            .arg(root.join("scripts/mysql-headers.sh"))
            .output()
            .expect("run scripts/mysql-headers.sh");
        assert!(
            out.status.success(),
            "scripts/mysql-headers.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn every_struct_matches_the_mysql_headers() {
        let include = headers();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = tempfile_dir();
        let exe = dir.join("component_layout");
        let status = Command::new("c++")
            .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(&include)
            .arg("-o")
            .arg(&exe)
            .arg(root.join("tests/c/component_layout.cc"))
            .status()
            .expect("run c++");
        assert!(
            status.success(),
            "compiling tests/c/component_layout.cc failed"
        );
        let out = Command::new(&exe).output().expect("run component_layout");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(out.status.success());
        let c_lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(c_lines, rust_lines());
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "component_keyring_okv_layout_{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
