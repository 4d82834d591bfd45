//! The system-variable ABI that MySQL and MariaDB share: the `MYSQL_SYSVAR_STR`, `_BOOL` and
//! `_ULONG` definitions, their check and update callbacks, and `st_mysql_value`, through which a check callback reads the
//! value of `SET GLOBAL`. Layouts only; both servers lay them out identically.

use std::ffi::{c_char, c_int, c_ulong, c_void};

/// `st_mysql_value`: how a check callback reads the value of SET GLOBAL.
#[repr(C)]
pub struct StMysqlValue {
    pub value_type: unsafe extern "C" fn(*mut StMysqlValue) -> c_int,
    pub val_str: unsafe extern "C" fn(
        *mut StMysqlValue,
        buffer: *mut c_char,
        length: *mut c_int,
    ) -> *const c_char,
    pub val_real: unsafe extern "C" fn(*mut StMysqlValue, *mut f64) -> c_int,
    pub val_int: unsafe extern "C" fn(*mut StMysqlValue, *mut i64) -> c_int,
    pub is_unsigned: unsafe extern "C" fn(*mut StMysqlValue) -> c_int,
}

pub type CheckFn = unsafe extern "C" fn(
    thd: *mut c_void,
    var: *mut c_void,
    save: *mut c_void,
    value: *mut StMysqlValue,
) -> c_int;
pub type UpdateFn = unsafe extern "C" fn(
    thd: *mut c_void,
    var: *mut c_void,
    var_ptr: *mut c_void,
    save: *const c_void,
);

/// What MYSQL_SYSVAR_STR expands to (the same in MySQL and MariaDB).
#[repr(C)]
pub struct SysVarStr {
    pub flags: c_int,
    pub name: *const c_char,
    pub comment: *const c_char,
    pub check: Option<CheckFn>,
    pub update: Option<UpdateFn>,
    pub value: *mut *mut c_char,
    pub def_val: *const c_char,
}

/// The string a `SET GLOBAL` gives, read through the check callback's `st_mysql_value`: at most
/// `max` bytes (longer values are cut there), `None` for NULL.
///
/// # Safety
/// `value` is the server's `st_mysql_value` for the current check call.
pub unsafe fn read_str(value: *mut StMysqlValue, max: usize) -> Option<Vec<u8>> {
    if value.is_null() {
        return None;
    }
    let mut buffer = vec![0 as c_char; max + 1];
    let mut length = c_int::try_from(buffer.len()).unwrap_or(c_int::MAX);
    // SAFETY: per the contract; val_str reads into our buffer, or returns its own pointer to
    // `length` bytes that live for the call.
    unsafe {
        let s = ((*value).val_str)(value, buffer.as_mut_ptr(), &mut length);
        if s.is_null() {
            return None;
        }
        let len = usize::try_from(length).unwrap_or(0);
        Some(std::slice::from_raw_parts(s.cast::<u8>(), len).to_vec())
    }
}

/// The integer a `SET GLOBAL` gives, read through the check callback's `st_mysql_value`;
/// `None` for NULL or a value that is not a number.
///
/// # Safety
/// `value` is the server's `st_mysql_value` for the current check call.
pub unsafe fn read_int(value: *mut StMysqlValue) -> Option<i64> {
    if value.is_null() {
        return None;
    }
    let mut n = 0i64;
    // SAFETY: per the contract; val_int writes one i64.
    (unsafe { ((*value).val_int)(value, &mut n) } == 0).then_some(n)
}

/// What MYSQL_SYSVAR_BOOL expands to (a one-byte bool in MySQL, my_bool, a char, in MariaDB).
#[repr(C)]
pub struct SysVarBool {
    pub flags: c_int,
    pub name: *const c_char,
    pub comment: *const c_char,
    pub check: Option<CheckFn>,
    pub update: Option<UpdateFn>,
    pub value: *mut c_char,
    pub def_val: c_char,
}

/// What MYSQL_SYSVAR_ULONG expands to.
#[repr(C)]
pub struct SysVarUlong {
    pub flags: c_int,
    pub name: *const c_char,
    pub comment: *const c_char,
    pub check: Option<CheckFn>,
    pub update: Option<UpdateFn>,
    pub value: *mut c_ulong,
    pub def_val: c_ulong,
    pub min_val: c_ulong,
    pub max_val: c_ulong,
    pub blk_sz: c_ulong,
}
