//! The plugin's status variables (`SHOW GLOBAL STATUS LIKE 'keyring_okv%'`,
//! performance_schema.global_status): the core's health counters, read from memory. Each is a
//! SHOW_FUNC, so the server asks for the value when it is shown; answering takes a copy of the
//! counters and never waits on a KMIP call.

use std::ffi::{c_char, c_int, c_void};

use okv_core::health::Snapshot;
use okv_ffi::guard;

/// enum enum_mysql_show_type (include/mysql/status_var.h).
const SHOW_LONGLONG: c_int = 4;
const SHOW_CHAR: c_int = 5;
const SHOW_FUNC: c_int = 8;
/// enum enum_mysql_show_scope: plugins may only declare global variables.
const SHOW_SCOPE_GLOBAL: c_int = 1;
/// SHOW_VAR_FUNC_BUFF_SIZE: the buffer the server hands a SHOW_FUNC.
const FUNC_BUFFER: usize = 1024;

/// struct SHOW_VAR (st_mysql_show_var).
#[repr(C)]
pub struct ShowVar {
    name: *const c_char,
    value: *mut c_char,
    show_type: c_int,
    scope: c_int,
}

type ShowFunc =
    unsafe extern "C" fn(thd: *mut c_void, var: *mut ShowVar, buf: *mut c_char) -> c_int;

enum Value {
    Int(u64),
    Text(String),
}

/// Fills the server's variable with `value`, the text cut to the buffer.
///
/// # Safety
/// `var` is the server's SHOW_VAR for this call and `buf` its SHOW_VAR_FUNC_BUFF_SIZE buffer,
/// suitably aligned for a longlong (the server's buffer is a `long long` array).
unsafe fn fill(var: *mut ShowVar, buf: *mut c_char, value: Value) {
    if var.is_null() || buf.is_null() {
        return;
    }
    // SAFETY: per the contract.
    unsafe {
        match value {
            Value::Int(n) => {
                buf.cast::<i64>()
                    .write_unaligned(i64::try_from(n).unwrap_or(i64::MAX));
                (*var).show_type = SHOW_LONGLONG;
            }
            Value::Text(text) => {
                let mut end = text.len().min(FUNC_BUFFER - 1);
                // Never cut inside a UTF-8 sequence.
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), end);
                *buf.add(end) = 0;
                (*var).show_type = SHOW_CHAR;
            }
        }
        (*var).value = buf;
    }
}

macro_rules! status_fn {
    ($name:ident, |$s:ident| $value:expr) => {
        unsafe extern "C" fn $name(
            _thd: *mut c_void,
            var: *mut ShowVar,
            buf: *mut c_char,
        ) -> c_int {
            // SAFETY: as in fill. An empty string first: the server calls a SHOW_FUNC again for
            // as long as the variable's type stays SHOW_FUNC, so even a failed call must
            // change it.
            unsafe { fill(var, buf, Value::Text(String::new())) };
            guard(stringify!($name), 0, || {
                let $s: Snapshot = okv_core::products::mysql_plugin::health();
                // SAFETY: called by the server with its SHOW_VAR and buffer.
                unsafe { fill(var, buf, $value) };
                0
            })
        }
    };
}

fn on_off(b: bool) -> Value {
    Value::Text(if b { "ON" } else { "OFF" }.to_string())
}

status_fn!(config_loaded, |s| on_off(s.config_loaded));
status_fn!(servers_configured, |s| Value::Int(
    s.servers_configured as u64
));
status_fn!(server_in_use, |s| Value::Text(s.server_in_use));
status_fn!(server_index, |s| Value::Text(
    s.server_index.map(|i| i.to_string()).unwrap_or_default()
));
status_fn!(connections, |s| Value::Int(s.connections));
status_fn!(failovers, |s| Value::Int(s.failovers));
status_fn!(failbacks, |s| Value::Int(s.failbacks));
status_fn!(requests, |s| Value::Int(s.requests));
status_fn!(errors, |s| Value::Int(s.errors));
status_fn!(last_error, |s| Value::Text(s.last_error));
status_fn!(last_error_time, |s| Value::Text(s.last_error_time()));
status_fn!(latency_last, |s| Value::Int(s.latency_last_us));
status_fn!(latency_max, |s| Value::Int(s.latency_max_us));
status_fn!(listing_method, |s| Value::Text(s.listing_method));
status_fn!(client_cert_expires, |s| Value::Text(s.client_cert_expires));
status_fn!(client_cert_expires_unix, |s| Value::Int(
    s.client_cert_expires_unix
));
status_fn!(fips_mode, |_s| Value::Text(
    okv_core::config::fips::mode().on_off().to_string()
));
status_fn!(fips_module, |_s| Value::Text(
    okv_core::config::fips::mode().module
));
status_fn!(calls_in_flight, |_s| Value::Int(
    okv_core::products::mysql_plugin::calls_in_flight() as u64
));
status_fn!(cached_keys, |_s| Value::Int(
    okv_core::products::mysql_plugin::cached_keys().0 as u64
));
status_fn!(cached_absent_keys, |_s| Value::Int(
    okv_core::products::mysql_plugin::cached_keys().1 as u64
));
status_fn!(sealed_cache_keys, |_s| Value::Int(
    okv_core::products::mysql_plugin::sealed_status().map_or(0, |t| t.keys as u64)
));
status_fn!(sealed_cache_serving, |_s| on_off(
    okv_core::products::mysql_plugin::sealed_status().is_some_and(|t| t.serving)
));
status_fn!(sealed_cache_age_seconds, |_s| Value::Int(
    okv_core::products::mysql_plugin::sealed_status().map_or(0, |t| t.oldest_confirmation_age)
));
status_fn!(sealed_cache_file, |_s| Value::Text(
    okv_core::products::mysql_plugin::sealed_status()
        .map_or("off", |t| t.file.code())
        .to_string()
));
status_fn!(sealed_cache_dropped_keys, |_s| Value::Int(
    okv_core::products::mysql_plugin::sealed_status().map_or(0, |t| t.dropped)
));
status_fn!(key_state_keys_watched, |_s| Value::Int(
    okv_core::products::mysql_plugin::key_state_status().keys_watched as u64
));
status_fn!(key_state_revoked_keys, |_s| Value::Int(
    okv_core::products::mysql_plugin::key_state_status().revoked_in_use as u64
));
status_fn!(key_state_last_poll_unix, |_s| Value::Int(
    okv_core::products::mysql_plugin::key_state_status()
        .last_poll
        .unwrap_or(0)
));
status_fn!(key_state_last_result, |_s| Value::Text(
    okv_core::products::mysql_plugin::key_state_status().last_result
));
status_fn!(key_state_outages, |_s| Value::Int(
    okv_core::products::mysql_plugin::key_state_status().outages
));

const fn func(name: &'static std::ffi::CStr, f: ShowFunc) -> ShowVar {
    ShowVar {
        name: name.as_ptr(),
        value: f as *mut c_char,
        show_type: SHOW_FUNC,
        scope: SHOW_SCOPE_GLOBAL,
    }
}

/// Every variable, in the order of the README; the all-zero entry ends the array.
pub static mut STATUS_VARS: [ShowVar; 32] = [
    func(c"Keyring_okv_config_loaded", config_loaded),
    func(c"Keyring_okv_servers_configured", servers_configured),
    func(c"Keyring_okv_server_in_use", server_in_use),
    func(c"Keyring_okv_server_index", server_index),
    func(c"Keyring_okv_connections", connections),
    func(c"Keyring_okv_failovers", failovers),
    func(c"Keyring_okv_failbacks", failbacks),
    func(c"Keyring_okv_requests", requests),
    func(c"Keyring_okv_errors", errors),
    func(c"Keyring_okv_last_error", last_error),
    func(c"Keyring_okv_last_error_time", last_error_time),
    func(c"Keyring_okv_request_latency_last_us", latency_last),
    func(c"Keyring_okv_request_latency_max_us", latency_max),
    func(c"Keyring_okv_calls_in_flight", calls_in_flight),
    func(c"Keyring_okv_listing_method", listing_method),
    func(c"Keyring_okv_client_cert_expires", client_cert_expires),
    func(
        c"Keyring_okv_client_cert_expires_unix",
        client_cert_expires_unix,
    ),
    func(c"Keyring_okv_fips_mode", fips_mode),
    func(c"Keyring_okv_fips_module", fips_module),
    func(c"Keyring_okv_cached_keys", cached_keys),
    func(c"Keyring_okv_cached_absent_keys", cached_absent_keys),
    func(c"Keyring_okv_sealed_cache_keys", sealed_cache_keys),
    func(c"Keyring_okv_sealed_cache_serving", sealed_cache_serving),
    func(
        c"Keyring_okv_sealed_cache_age_seconds",
        sealed_cache_age_seconds,
    ),
    func(
        c"Keyring_okv_sealed_cache_dropped_keys",
        sealed_cache_dropped_keys,
    ),
    func(c"Keyring_okv_sealed_cache_file", sealed_cache_file),
    func(
        c"Keyring_okv_key_state_keys_watched",
        key_state_keys_watched,
    ),
    func(
        c"Keyring_okv_key_state_revoked_keys",
        key_state_revoked_keys,
    ),
    func(
        c"Keyring_okv_key_state_last_poll_unix",
        key_state_last_poll_unix,
    ),
    func(c"Keyring_okv_key_state_last_result", key_state_last_result),
    func(c"Keyring_okv_key_state_outages", key_state_outages),
    ShowVar {
        name: std::ptr::null(),
        value: std::ptr::null_mut(),
        show_type: 0,
        scope: 0,
    },
];
