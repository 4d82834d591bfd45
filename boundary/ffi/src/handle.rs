//! Opaque handles: Rust objects lent to the server as `void*` (the plugin's key iterator, the
//! component's keyring readers and key iterators).
//!
//! Ownership rule, the same for every handle type: [`lend`] moves the object to the server,
//! which holds the only pointer to it; [`borrow`] and [`borrow_mut`] look at it during a call
//! the server makes with that pointer (the server never makes two at once with one handle);
//! [`take_back`] is called once, by the function the server calls to release the handle (its
//! deinit), and drops the object there. A NULL handle is never lent, so NULL always means "no
//! object" and every function here answers it with `None`.

use std::ffi::c_void;

/// Moves `object` to the server as an opaque handle.
pub fn lend<T>(object: T) -> *mut c_void {
    Box::into_raw(Box::new(object)).cast()
}

/// The object behind `handle`.
///
/// # Safety
/// `handle` is NULL or was made by [`lend`] with the same `T` and not yet given to
/// [`take_back`]; no other reference to the object lives during `'a`.
pub unsafe fn borrow<'a, T>(handle: *const c_void) -> Option<&'a T> {
    // SAFETY: per the contract.
    (!handle.is_null()).then(|| unsafe { &*handle.cast::<T>() })
}

/// The object behind `handle`, to change it.
///
/// # Safety
/// As [`borrow`].
pub unsafe fn borrow_mut<'a, T>(handle: *mut c_void) -> Option<&'a mut T> {
    // SAFETY: per the contract.
    (!handle.is_null()).then(|| unsafe { &mut *handle.cast::<T>() })
}

/// Takes the object back from the server (its release call) and returns it, to be dropped.
///
/// # Safety
/// `handle` is NULL or was made by [`lend`] with the same `T`, and is not used again.
pub unsafe fn take_back<T>(handle: *mut c_void) -> Option<Box<T>> {
    // SAFETY: per the contract: made by Box::into_raw, released once.
    (!handle.is_null()).then(|| unsafe { Box::from_raw(handle.cast::<T>()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lent_object_is_borrowed_and_taken_back_once() {
        let h = lend(vec![1u8, 2, 3]);
        // SAFETY: made by lend with Vec<u8>, taken back below.
        unsafe {
            borrow_mut::<Vec<u8>>(h).unwrap().push(4);
            assert_eq!(borrow::<Vec<u8>>(h).unwrap(), &[1, 2, 3, 4]);
            assert_eq!(*take_back::<Vec<u8>>(h).unwrap(), vec![1, 2, 3, 4]);
            assert!(borrow::<Vec<u8>>(std::ptr::null()).is_none());
            assert!(take_back::<Vec<u8>>(std::ptr::null_mut()).is_none());
        }
    }
}
