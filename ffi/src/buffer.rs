//! Borrowed inputs (`RapidmqStr`) and Rust-owned outputs (`RapidmqBytes`, `RapidmqSlice`).

use std::os::raw::c_char;

use zeroize::{Zeroize, Zeroizing};

/// A borrowed UTF-8 string or byte string passed *into* the library: pointer and length, not
/// NUL-terminated. Valid for the duration of the call only; `ptr` may be NULL when `len` is 0.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqStr {
    /// First byte (NULL allowed when `len` is 0).
    pub ptr: *const c_char,
    /// Length in bytes.
    pub len: usize,
}

impl RapidmqStr {
    /// The bytes. Safety: `ptr` points at `len` readable bytes (or `len` is 0).
    pub(crate) unsafe fn bytes<'a>(&self) -> &'a [u8] {
        if self.ptr.is_null() || self.len == 0 {
            &[]
        } else {
            unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
        }
    }

    /// The string, or an `INVALID_ARGUMENT` error naming `what` when it is not UTF-8.
    pub(crate) unsafe fn read_string(&self, what: &str) -> Result<String, crate::error::FfiError> {
        let bytes = unsafe { self.bytes() };
        String::from_utf8(bytes.to_vec())
            .map_err(|_| crate::error::FfiError::invalid(format!("{what} is not valid UTF-8")))
    }

    /// [`read_string`](Self::read_string) for a secret (token, password, private key): the copy
    /// is wiped when dropped, also when it is not UTF-8 or an error drops it before it reaches
    /// the core. Move it out with `std::mem::take` to hand it over.
    pub(crate) unsafe fn read_secret(
        &self,
        what: &str,
    ) -> Result<Zeroizing<String>, crate::error::FfiError> {
        let bytes = unsafe { self.bytes() };
        match String::from_utf8(bytes.to_vec()) {
            Ok(s) => Ok(Zeroizing::new(s)),
            Err(e) => {
                e.into_bytes().zeroize();
                Err(crate::error::FfiError::invalid(format!(
                    "{what} is not valid UTF-8"
                )))
            }
        }
    }
}

/// A byte buffer owned by the library and handed to the caller, who releases it with
/// `rapidmq_bytes_free` (exactly once). `ptr` is NULL when `len` is 0.
#[repr(C)]
pub struct RapidmqBytes {
    /// First byte.
    pub ptr: *mut u8,
    /// Length in bytes.
    pub len: usize,
}

impl RapidmqBytes {
    /// An empty buffer (nothing to free).
    pub const EMPTY: RapidmqBytes = RapidmqBytes {
        ptr: std::ptr::null_mut(),
        len: 0,
    };

    pub(crate) fn from_vec(bytes: Vec<u8>) -> RapidmqBytes {
        if bytes.is_empty() {
            return RapidmqBytes::EMPTY;
        }
        let boxed = bytes.into_boxed_slice();
        let len = boxed.len();
        RapidmqBytes {
            ptr: Box::into_raw(boxed).cast::<u8>(),
            len,
        }
    }
}

/// A view of bytes inside a result object; valid until that object is freed. `ptr` may be NULL
/// when `len` is 0.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqSlice {
    /// First byte.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl RapidmqSlice {
    pub(crate) const EMPTY: RapidmqSlice = RapidmqSlice {
        ptr: std::ptr::null(),
        len: 0,
    };

    /// A view of `bytes`, which the caller keeps alive (in an arena) as long as the view.
    pub(crate) fn of(bytes: &[u8]) -> RapidmqSlice {
        if bytes.is_empty() {
            return RapidmqSlice::EMPTY;
        }
        RapidmqSlice {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }
}

/// Releases a buffer the library returned. NULL/empty buffers are ignored.
///
/// # Safety
/// `bytes` must come from this library and not have been freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_bytes_free(bytes: RapidmqBytes) {
    let _ = std::panic::catch_unwind(|| {
        if !bytes.ptr.is_null() && bytes.len > 0 {
            let slice = std::ptr::slice_from_raw_parts_mut(bytes.ptr, bytes.len);
            drop(unsafe { Box::from_raw(slice) });
        }
    });
}
