//! Status variables (`SHOW GLOBAL STATUS LIKE 'kmip_key_management%'`): one SHOW_FUNC that
//! lays out an array of values in the buffer the server hands it, so every read is a fresh
//! copy of the core's counters and nothing is shared between concurrent readers.

use std::ffi::{c_char, c_int, c_void};

use super::abi::{SHOW_ARRAY, SHOW_CHAR, SHOW_FUNC_BUFFER, SHOW_ULONGLONG, StMysqlShowVar};
use okv_core::products::mariadb::host;
use okv_ffi::guard;

const NUMBERS: [&std::ffi::CStr; 19] = [
    c"requests",
    c"errors",
    c"connections",
    c"failovers",
    c"latency_last_us",
    c"latency_max_us",
    c"latest_version_requests",
    c"key_requests",
    c"key_cache_hits",
    c"key_fetches",
    c"key_failures",
    c"refreshes",
    c"refresh_errors",
    c"rotations",
    c"keys_cached",
    c"client_cert_expires_unix",
    c"sealed_cache_keys",
    c"sealed_cache_age_seconds",
    c"sealed_cache_dropped_keys",
];
const TEXTS: [&std::ffi::CStr; 9] = [
    c"server_in_use",
    c"last_error",
    c"last_error_time",
    c"listing_method",
    c"client_cert_expires",
    c"fips_mode",
    c"fips_module",
    c"sealed_cache_serving",
    c"sealed_cache_file",
];
const ENTRIES: usize = NUMBERS.len() + TEXTS.len() + 1;
/// Room for each text value, NUL included (the last error is cut to fit the server's buffer).
const TEXT_ROOM: [usize; 9] = [256, 580, 24, 216, 24, 8, 64, 4, 16];
const TEXT_ROOM_TOTAL: usize = {
    let mut total = 0;
    let mut i = 0;
    while i < TEXT_ROOM.len() {
        total += TEXT_ROOM[i];
        i += 1;
    }
    total
};

const _: () = assert!(
    ENTRIES * std::mem::size_of::<StMysqlShowVar>() + NUMBERS.len() * 8 + TEXT_ROOM_TOTAL
        <= SHOW_FUNC_BUFFER
);

pub unsafe extern "C" fn show_status(
    _thd: *mut c_void,
    var: *mut StMysqlShowVar,
    buffer: *mut c_void,
    _status_var: *mut c_void,
    _scope: c_int,
) -> c_int {
    guard("status variables", 1, || {
        if var.is_null() || buffer.is_null() {
            return 1;
        }
        let (health, store) = host::status();
        let sealed = host::sealed_status().unwrap_or_default();
        let numbers: [u64; NUMBERS.len()] = [
            health.requests,
            health.errors,
            health.connections,
            health.failovers,
            health.latency_last_us,
            health.latency_max_us,
            store.latest_requests,
            store.key_requests,
            store.key_cache_hits,
            store.key_fetches,
            store.key_failures,
            store.refreshes,
            store.refresh_errors,
            store.rotations,
            store.keys_cached,
            health.client_cert_expires_unix,
            sealed.keys as u64,
            sealed.oldest_confirmation_age,
            sealed.dropped,
        ];
        let fips = okv_core::config::fips::mode();
        let texts = [
            health.server_in_use.clone(),
            health.last_error.clone(),
            health.last_error_time(),
            health.listing_method.clone(),
            health.client_cert_expires.clone(),
            fips.on_off().to_string(),
            fips.module,
            if sealed.serving { "ON" } else { "OFF" }.to_string(),
            match host::sealed_status() {
                Some(s) => s.file.code(),
                None => "off",
            }
            .to_string(),
        ];
        // SAFETY: the server's buffer is SHOW_FUNC_BUFFER bytes, aligned for pointers, and
        // lives until the array is printed; the layout fits (checked at compile time above).
        unsafe {
            let base = buffer.cast::<u8>();
            let entries = base.cast::<StMysqlShowVar>();
            let mut data = base.add(ENTRIES * std::mem::size_of::<StMysqlShowVar>());
            let mut i = 0;
            for (name, value) in NUMBERS.iter().zip(numbers) {
                data.cast::<u64>().write_unaligned(value);
                entries.add(i).write(StMysqlShowVar {
                    name: name.as_ptr(),
                    value: data.cast(),
                    show_type: SHOW_ULONGLONG,
                });
                data = data.add(8);
                i += 1;
            }
            for ((name, text), room) in TEXTS.iter().zip(&texts).zip(TEXT_ROOM) {
                okv_ffi::copy_c_string(text, data.cast::<c_char>(), room);
                entries.add(i).write(StMysqlShowVar {
                    name: name.as_ptr(),
                    value: data.cast(),
                    show_type: SHOW_CHAR,
                });
                data = data.add(room);
                i += 1;
            }
            entries.add(i).write(StMysqlShowVar {
                name: std::ptr::null(),
                value: std::ptr::null_mut(),
                show_type: 0,
            });
            (*var).show_type = SHOW_ARRAY;
            (*var).value = entries.cast();
        }
        0
    })
}

/// The key-state guard's variables (`kmip_key_management_key_state_*`), laid out by
/// `show_key_state`: the array above fills the server's buffer.
const KEY_STATE_NUMBERS: [&std::ffi::CStr; 4] = [
    c"keys_watched",
    c"revoked_keys",
    c"last_poll_unix",
    c"outages",
];
const KEY_STATE_TEXTS: [&std::ffi::CStr; 1] = [c"last_result"];
const KEY_STATE_ENTRIES: usize = KEY_STATE_NUMBERS.len() + KEY_STATE_TEXTS.len() + 1;
/// Room for the last poll's result, NUL included.
const KEY_STATE_TEXT_ROOM: usize = 1024;

const _: () = assert!(
    KEY_STATE_ENTRIES * std::mem::size_of::<StMysqlShowVar>()
        + KEY_STATE_NUMBERS.len() * 8
        + KEY_STATE_TEXT_ROOM
        <= SHOW_FUNC_BUFFER
);

pub unsafe extern "C" fn show_key_state(
    _thd: *mut c_void,
    var: *mut StMysqlShowVar,
    buffer: *mut c_void,
    _status_var: *mut c_void,
    _scope: c_int,
) -> c_int {
    guard("status variables", 1, || {
        if var.is_null() || buffer.is_null() {
            return 1;
        }
        let status = host::key_state_status();
        let numbers: [u64; KEY_STATE_NUMBERS.len()] = [
            status.keys_watched as u64,
            status.revoked_in_use as u64,
            status.last_poll.unwrap_or(0),
            status.outages,
        ];
        // SAFETY: as in show_status; the layout fits (checked at compile time above).
        unsafe {
            let base = buffer.cast::<u8>();
            let entries = base.cast::<StMysqlShowVar>();
            let mut data = base.add(KEY_STATE_ENTRIES * std::mem::size_of::<StMysqlShowVar>());
            let mut i = 0;
            for (name, value) in KEY_STATE_NUMBERS.iter().zip(numbers) {
                data.cast::<u64>().write_unaligned(value);
                entries.add(i).write(StMysqlShowVar {
                    name: name.as_ptr(),
                    value: data.cast(),
                    show_type: SHOW_ULONGLONG,
                });
                data = data.add(8);
                i += 1;
            }
            okv_ffi::copy_c_string(
                &status.last_result,
                data.cast::<c_char>(),
                KEY_STATE_TEXT_ROOM,
            );
            entries.add(i).write(StMysqlShowVar {
                name: KEY_STATE_TEXTS[0].as_ptr(),
                value: data.cast(),
                show_type: SHOW_CHAR,
            });
            i += 1;
            entries.add(i).write(StMysqlShowVar {
                name: std::ptr::null(),
                value: std::ptr::null_mut(),
                show_type: 0,
            });
            (*var).show_type = SHOW_ARRAY;
            (*var).value = entries.cast();
        }
        0
    })
}
