//! The service implementations: C arguments in, a call of `okv_core::products::mysql_component`, the service's
//! return convention out. Every function is wrapped in the panic guard.
//!
//! Buffer rules (the server's callers differ from the headers' text, see the README):
//! - reader `fetch`: the type buffer may be exactly the type's length (InnoDB's helper passes
//!   that); a NUL is written only when there is room for it.
//! - keys iterator: lengths without the NUL; `get` needs room for the NUL.
//! - metadata query: lengths include the NUL; `get` needs room for it.

use std::ffi::{c_char, c_int};

use okv_core::keyring::FetchedKey;
use okv_core::products::mysql_component::{self as component, ComponentError, Mode};
use okv_ffi::{copy_c_string, copy_whole_c_string, guard, handle, str_arg};

use crate::abi::*;

/// Logs a failed call: the caller's mistakes as warnings, the keyring's failures as errors.
fn report(what: &str, e: &ComponentError) {
    if e.is_caller_error() {
        tracing::warn!("component_keyring_okv: {what}: {e}");
    } else {
        tracing::error!("component_keyring_okv: {what}: {e}");
    }
}

/// A C string argument; NULL reads as "" (the server's own keys have a NULL owner).
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn text<'a>(what: &str, p: *const c_char) -> Option<&'a str> {
    // SAFETY: per the contract.
    match unsafe { str_arg(p) } {
        Ok(s) => Some(s),
        Err(why) => {
            tracing::warn!("component_keyring_okv: {what}: the argument is refused: {why}");
            None
        }
    }
}

fn status(ok: bool) -> Status {
    if ok { OK } else { FAIL }
}

// ---------------------------------------------------------------- keyring_reader_with_status

struct Reader {
    key: FetchedKey,
}

unsafe extern "C" fn reader_init(
    data_id: *const c_char,
    auth_id: *const c_char,
    out: *mut Handle,
) -> Status {
    guard("keyring_reader_with_status.init", FAIL, || {
        if out.is_null() {
            return FAIL;
        }
        // SAFETY: out is the caller's handle variable.
        unsafe { *out = std::ptr::null_mut() };
        // SAFETY: NULL or NUL-terminated strings from the server.
        let (Some(id), Some(owner)) = (unsafe { text("fetch", data_id) }, unsafe {
            text("fetch", auth_id)
        }) else {
            return FAIL;
        };
        match component::fetch(id, owner) {
            Ok(None) => OK,
            Ok(Some(key)) => {
                // SAFETY: as above.
                unsafe { *out = handle::lend(Reader { key }) };
                OK
            }
            Err(e) => {
                report(&format!("fetch of key '{id}'"), &e);
                FAIL
            }
        }
    })
}

unsafe extern "C" fn reader_deinit(reader: Handle) -> Status {
    guard("keyring_reader_with_status.deinit", FAIL, || {
        // SAFETY: lent by reader_init, released once here; the key is wiped on drop.
        drop(unsafe { handle::take_back::<Reader>(reader) });
        OK
    })
}

unsafe extern "C" fn reader_fetch_length(
    reader: Handle,
    data_size: *mut usize,
    type_size: *mut usize,
) -> Status {
    guard("keyring_reader_with_status.fetch_length", FAIL, || {
        // SAFETY: a live reader of ours.
        let Some(r) = (unsafe { handle::borrow::<Reader>(reader) }) else {
            return FAIL;
        };
        if data_size.is_null() || type_size.is_null() {
            return FAIL;
        }
        // SAFETY: the caller's out variables.
        unsafe {
            *data_size = r.key.material.len();
            *type_size = r.key.key_type.name().len();
        }
        OK
    })
}

unsafe extern "C" fn reader_fetch(
    reader: Handle,
    data: *mut u8,
    data_len: usize,
    data_size: *mut usize,
    data_type: *mut c_char,
    type_len: usize,
    type_size: *mut usize,
) -> Status {
    guard("keyring_reader_with_status.fetch", FAIL, || {
        // SAFETY: a live reader of ours.
        let Some(r) = (unsafe { handle::borrow::<Reader>(reader) }) else {
            return FAIL;
        };
        if data.is_null() || data_size.is_null() || data_type.is_null() || type_size.is_null() {
            return FAIL;
        }
        // SAFETY: the buffers hold data_len / type_len bytes.
        unsafe {
            let material = &r.key.material;
            let name = r.key.key_type.name().as_bytes();
            if data_len < material.len() || type_len < name.len() {
                return FAIL;
            }
            std::ptr::copy_nonoverlapping(material.as_ptr(), data, material.len());
            std::ptr::copy_nonoverlapping(name.as_ptr(), data_type.cast::<u8>(), name.len());
            if type_len > name.len() {
                *data_type.add(name.len()) = 0;
            }
            *data_size = material.len();
            *type_size = name.len();
        }
        OK
    })
}

pub static READER: KeyringReaderWithStatus = KeyringReaderWithStatus {
    init: reader_init,
    deinit: reader_deinit,
    fetch_length: reader_fetch_length,
    fetch: reader_fetch,
};

// ---------------------------------------------------------------- keyring_writer, generator

unsafe extern "C" fn writer_store(
    data_id: *const c_char,
    auth_id: *const c_char,
    data: *const u8,
    data_size: usize,
    data_type: *const c_char,
) -> Status {
    guard("keyring_writer.store", FAIL, || {
        if data_id.is_null() || data_type.is_null() || (data.is_null() && data_size > 0) {
            return FAIL;
        }
        // SAFETY: NUL-terminated strings (or NULL owner) from the caller.
        let (Some(id), Some(owner), Some(kind)) = (
            unsafe { text("store", data_id) },
            unsafe { text("store", auth_id) },
            unsafe { text("store", data_type) },
        ) else {
            return FAIL;
        };
        let bytes = if data_size == 0 {
            &[][..]
        } else {
            // SAFETY: data holds data_size bytes.
            unsafe { std::slice::from_raw_parts(data, data_size) }
        };
        match component::store(id, owner, kind, bytes) {
            Ok(()) => OK,
            Err(e) => {
                report(&format!("store of key '{id}'"), &e);
                FAIL
            }
        }
    })
}

unsafe extern "C" fn writer_remove(data_id: *const c_char, auth_id: *const c_char) -> Status {
    guard("keyring_writer.remove", FAIL, || {
        if data_id.is_null() {
            return FAIL;
        }
        // SAFETY: NUL-terminated strings (or NULL owner) from the caller.
        let (Some(id), Some(owner)) = (unsafe { text("remove", data_id) }, unsafe {
            text("remove", auth_id)
        }) else {
            return FAIL;
        };
        match component::remove(id, owner) {
            Ok(()) => OK,
            Err(e) => {
                report(&format!("remove of key '{id}'"), &e);
                FAIL
            }
        }
    })
}

pub static WRITER: KeyringWriter = KeyringWriter {
    store: writer_store,
    remove: writer_remove,
};

unsafe extern "C" fn generator_generate(
    data_id: *const c_char,
    auth_id: *const c_char,
    data_type: *const c_char,
    data_size: usize,
) -> Status {
    guard("keyring_generator.generate", FAIL, || {
        if data_id.is_null() || data_type.is_null() {
            return FAIL;
        }
        // SAFETY: NUL-terminated strings (or NULL owner) from the caller.
        let (Some(id), Some(owner), Some(kind)) = (
            unsafe { text("generate", data_id) },
            unsafe { text("generate", auth_id) },
            unsafe { text("generate", data_type) },
        ) else {
            return FAIL;
        };
        match component::generate(id, owner, kind, data_size) {
            Ok(()) => OK,
            Err(e) => {
                report(&format!("generate of key '{id}'"), &e);
                FAIL
            }
        }
    })
}

pub static GENERATOR: KeyringGenerator = KeyringGenerator {
    generate: generator_generate,
};

// ---------------------------------------------------------------- iterators

/// A snapshot of (first, second) string pairs and a position.
struct Pairs {
    items: Vec<(String, String)>,
    pos: usize,
}

impl Pairs {
    fn current(&self) -> Option<&(String, String)> {
        self.items.get(self.pos)
    }
}

fn new_pairs(out: *mut Handle, items: Vec<(String, String)>) -> Status {
    // SAFETY: out was checked non-NULL by the caller of this helper.
    unsafe { *out = handle::lend(Pairs { items, pos: 0 }) };
    OK
}

/// # Safety
/// `it` is NULL or made by `new_pairs` and not yet freed.
unsafe fn pairs<'a>(it: Handle) -> Option<&'a mut Pairs> {
    // SAFETY: per the contract.
    unsafe { handle::borrow_mut::<Pairs>(it) }
}

unsafe extern "C" fn pairs_deinit(it: Handle) -> Status {
    guard("iterator deinit", FAIL, || {
        // SAFETY: lent by new_pairs, released once here.
        drop(unsafe { handle::take_back::<Pairs>(it) });
        OK
    })
}

unsafe extern "C" fn pairs_is_valid(it: Handle) -> Status {
    // SAFETY: a handle of ours.
    guard("iterator is_valid", 0, || {
        c_int::from(unsafe { pairs(it) }.is_some_and(|p| p.current().is_some()))
    })
}

unsafe extern "C" fn pairs_next(it: Handle) -> Status {
    guard("iterator next", FAIL, || {
        // SAFETY: a handle of ours.
        let Some(p) = (unsafe { pairs(it) }) else {
            return FAIL;
        };
        if p.pos < p.items.len() {
            p.pos += 1;
        }
        status(p.current().is_some())
    })
}

/// Copies the current pair into the caller's buffers, each needing room for the NUL.
unsafe fn pairs_copy(
    it: Handle,
    first: *mut c_char,
    first_len: usize,
    second: *mut c_char,
    second_len: usize,
) -> Status {
    // SAFETY: a handle of ours.
    let Some((a, b)) = (unsafe { pairs(it) }).and_then(|p| p.current()) else {
        return FAIL;
    };
    if first.is_null() || second.is_null() || a.len() >= first_len || b.len() >= second_len {
        return FAIL;
    }
    // SAFETY: each buffer has more bytes than the text; copy_c_string writes text + NUL.
    unsafe {
        copy_c_string(a, first, first_len);
        copy_c_string(b, second, second_len);
    }
    OK
}

unsafe extern "C" fn keys_init(out: *mut Handle) -> Status {
    guard("keyring_keys_metadata_iterator.init", FAIL, || {
        if out.is_null() {
            return FAIL;
        }
        match component::list() {
            Ok(keys) => new_pairs(out, keys),
            Err(e) => {
                // SAFETY: the caller's handle variable.
                unsafe { *out = std::ptr::null_mut() };
                report("listing keys", &e);
                FAIL
            }
        }
    })
}

/// The lengths of the current pair plus `extra` each (the two services disagree on whether
/// the NUL counts).
///
/// # Safety
/// `it` is a handle of ours or NULL; the out pointers are NULL or the caller's variables.
unsafe fn pairs_get_length(
    it: Handle,
    a_len: *mut usize,
    b_len: *mut usize,
    extra: usize,
) -> Status {
    // SAFETY: a handle of ours.
    let Some((a, b)) = (unsafe { pairs(it) }).and_then(|p| p.current()) else {
        return FAIL;
    };
    if a_len.is_null() || b_len.is_null() {
        return FAIL;
    }
    // SAFETY: the caller's out variables.
    unsafe {
        *a_len = a.len() + extra;
        *b_len = b.len() + extra;
    }
    OK
}

/// Lengths without the NUL.
unsafe extern "C" fn keys_get_length(
    it: Handle,
    id_len: *mut usize,
    owner_len: *mut usize,
) -> Status {
    // SAFETY: per the service contract.
    guard(
        "keyring_keys_metadata_iterator.get_length",
        FAIL,
        || unsafe { pairs_get_length(it, id_len, owner_len, 0) },
    )
}

unsafe extern "C" fn keys_get(
    it: Handle,
    id: *mut c_char,
    id_len: usize,
    owner: *mut c_char,
    owner_len: usize,
) -> Status {
    // SAFETY: caller buffers of the given sizes.
    guard("keyring_keys_metadata_iterator.get", FAIL, || unsafe {
        pairs_copy(it, id, id_len, owner, owner_len)
    })
}

pub static KEYS_ITERATOR: MetadataIterator = MetadataIterator {
    init: keys_init,
    deinit: pairs_deinit,
    is_valid: pairs_is_valid,
    next: pairs_next,
    get_length: keys_get_length,
    get: keys_get,
};

unsafe extern "C" fn metadata_init(out: *mut Handle) -> Status {
    guard("keyring_component_metadata_query.init", FAIL, || {
        if out.is_null() {
            return FAIL;
        }
        new_pairs(out, component::status_rows())
    })
}

/// Lengths including the NUL.
unsafe extern "C" fn metadata_get_length(
    it: Handle,
    key_len: *mut usize,
    value_len: *mut usize,
) -> Status {
    // SAFETY: per the service contract.
    guard(
        "keyring_component_metadata_query.get_length",
        FAIL,
        || unsafe { pairs_get_length(it, key_len, value_len, 1) },
    )
}

unsafe extern "C" fn metadata_get(
    it: Handle,
    key: *mut c_char,
    key_len: usize,
    value: *mut c_char,
    value_len: usize,
) -> Status {
    // SAFETY: caller buffers of the given sizes.
    guard("keyring_component_metadata_query.get", FAIL, || unsafe {
        pairs_copy(it, key, key_len, value, value_len)
    })
}

pub static METADATA_QUERY: MetadataIterator = MetadataIterator {
    init: metadata_init,
    deinit: pairs_deinit,
    is_valid: pairs_is_valid,
    next: pairs_next,
    get_length: metadata_get_length,
    get: metadata_get,
};

unsafe extern "C" fn status_is_initialized() -> Status {
    guard("keyring_component_status.is_initialized", 0, || {
        c_int::from(component::is_active())
    })
}

pub static STATUS: KeyringComponentStatus = KeyringComponentStatus {
    is_initialized: status_is_initialized,
};

// ---------------------------------------------------------------- keyring_load

unsafe extern "C" fn load(component_path: *const c_char, instance_path: *const c_char) -> Status {
    guard("keyring_load.load", FAIL, || {
        if component_path.is_null() {
            return FAIL;
        }
        // SAFETY: NUL-terminated paths from the server; instance_path may be NULL (migration).
        // A path that is not UTF-8 is refused, as the plugins refuse theirs: a lossy copy would
        // name another directory.
        let (Ok(dir), Ok(instance)) = (unsafe { str_arg(component_path) }, unsafe {
            str_arg(instance_path)
        }) else {
            tracing::error!(
                "component_keyring_okv: the plugin directory or the data directory must be a UTF-8 path; the keyring stays as it is"
            );
            return FAIL;
        };
        let instance = (!instance_path.is_null()).then_some(instance);
        let was_active = component::is_active();
        match component::load(dir, instance) {
            Ok(()) => OK,
            Err(e) => {
                if was_active {
                    tracing::error!(
                        "component_keyring_okv: {e}; ALTER INSTANCE RELOAD KEYRING was refused and the previous configuration stays in force"
                    );
                } else {
                    tracing::error!(
                        "component_keyring_okv: {e}; the keyring stays Disabled until ALTER INSTANCE RELOAD KEYRING loads a good configuration"
                    );
                }
                FAIL
            }
        }
    })
}

pub static LOAD: KeyringLoad = KeyringLoad { load };

// ---------------------------------------------------------------- keyring_aes

unsafe extern "C" fn aes_get_size(
    input_len: usize,
    mode: *const c_char,
    block_size: usize,
    out_size: *mut usize,
) -> Status {
    guard("keyring_aes.get_size", FAIL, || {
        if out_size.is_null() {
            return FAIL;
        }
        // SAFETY: NUL-terminated mode name.
        let Some(mode) = (unsafe { text("keyring_aes", mode) }) else {
            return FAIL;
        };
        match Mode::parse(mode, block_size) {
            Ok(m) => {
                // SAFETY: the caller's out variable.
                unsafe { *out_size = m.output_size(input_len) };
                OK
            }
            Err(e) => {
                report("keyring_aes", &e.into());
                FAIL
            }
        }
    })
}

#[allow(clippy::too_many_arguments)]
unsafe fn aes_apply(
    encrypting: bool,
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
) -> Status {
    if data_id.is_null() || mode.is_null() || iv.is_null() || out.is_null() || out_written.is_null()
    {
        return FAIL;
    }
    if data.is_null() && data_len > 0 {
        return FAIL;
    }
    // SAFETY: NUL-terminated strings from the caller.
    let (Some(id), Some(owner), Some(mode)) = (
        unsafe { text("keyring_aes", data_id) },
        unsafe { text("keyring_aes", auth_id) },
        unsafe { text("keyring_aes", mode) },
    ) else {
        return FAIL;
    };
    let what = if encrypting { "encrypt" } else { "decrypt" };
    let mode = match Mode::parse(mode, block_size) {
        Ok(m) => m,
        Err(e) => {
            report(&format!("keyring_aes {what}"), &e.into());
            return FAIL;
        }
    };
    let needed = if encrypting {
        mode.output_size(data_len)
    } else {
        data_len
    };
    if out_len < needed {
        tracing::warn!(
            "component_keyring_okv: keyring_aes {what}: the output buffer has {out_len} bytes, {needed} are needed"
        );
        return FAIL;
    }
    let mut iv_bytes = [0u8; 16];
    // SAFETY: every mode MySQL accepts takes a 16-byte IV; data holds data_len bytes.
    let input = unsafe {
        std::ptr::copy_nonoverlapping(iv, iv_bytes.as_mut_ptr(), 16);
        if data_len == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(data, data_len)
        }
    };
    match component::aes_apply(id, owner, mode, &iv_bytes, padding != 0, input, encrypting) {
        Ok(result) if result.len() <= out_len => {
            // SAFETY: out holds out_len >= result.len() bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(result.as_ptr(), out, result.len());
                *out_written = result.len();
            }
            OK
        }
        Ok(_) => FAIL,
        Err(e) => {
            report(&format!("keyring_aes {what} with key '{id}'"), &e);
            FAIL
        }
    }
}

unsafe extern "C" fn aes_encrypt(
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
) -> Status {
    // SAFETY: the service's arguments, passed on.
    guard("keyring_aes.encrypt", FAIL, || unsafe {
        aes_apply(
            true,
            data_id,
            auth_id,
            mode,
            block_size,
            iv,
            padding,
            data,
            data_len,
            out,
            out_len,
            out_written,
        )
    })
}

unsafe extern "C" fn aes_decrypt(
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
) -> Status {
    // SAFETY: the service's arguments, passed on.
    guard("keyring_aes.decrypt", FAIL, || unsafe {
        aes_apply(
            false,
            data_id,
            auth_id,
            mode,
            block_size,
            iv,
            padding,
            data,
            data_len,
            out,
            out_len,
            out_written,
        )
    })
}

pub static AES: KeyringAes = KeyringAes {
    get_size: aes_get_size,
    encrypt: aes_encrypt,
    decrypt: aes_decrypt,
};

// ---------------------------------------------------------------- mysql_keyring_native_key_id

/// The KMIP unique identifier of a key (performance_schema.keyring_keys.BACKEND_KEY_ID), from
/// memory only; "" when not known. At most `max_len` bytes are written, NUL included: an
/// identifier that does not fit is "" and a failure, never cut short (as the plugin's).
unsafe extern "C" fn backend_key_id(
    key_id: *const c_char,
    user_id: *const c_char,
    out: *mut c_char,
    max_len: usize,
) -> Status {
    guard(
        "mysql_keyring_native_key_id.get_backend_key_id",
        FAIL,
        || {
            if out.is_null() || max_len == 0 {
                return FAIL;
            }
            // SAFETY: NUL-terminated strings from the caller.
            let (Some(id), Some(owner)) = (unsafe { text("backend key id", key_id) }, unsafe {
                text("backend key id", user_id)
            }) else {
                return FAIL;
            };
            let uid = component::backend_key_id(id, owner).unwrap_or_default();
            // SAFETY: out holds max_len >= 1 bytes.
            status(unsafe { copy_whole_c_string(&uid, out, max_len) })
        },
    )
}

pub static NATIVE_KEY_ID: NativeKeyId = NativeKeyId {
    get_backend_key_id: backend_key_id,
};
