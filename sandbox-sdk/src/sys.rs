//! Raw host imports (WebAssembly only).
//!
//! This is the only module of the SDK that uses `unsafe`, and the reason is narrow: calling
//! a foreign (host) function is `unsafe` in Rust, and the host reads from or writes to the
//! guest's linear memory at the addresses we pass. Every wrapper below derives the address
//! and length from a live Rust slice it borrows for the duration of the call, so the host
//! only ever touches memory that the slice owns; `response_read` receives a `&mut [u8]`
//! whose length is passed alongside, and the host writes at most that many bytes
//! (ABI: it fails with `INVALID_ARGUMENT` unless `len` equals the pending response's
//! length). The host keeps no pointer after a call returns.
//!
//! Pointers are passed as `i32`: on `wasm32` a pointer and a `usize` are 32 bits wide, so
//! the casts below are lossless bit reinterpretations of `u32` offsets.

#![allow(unsafe_code)]

mod ffi {
    #[link(wasm_import_module = "sandbox")]
    unsafe extern "C" {
        pub(super) fn response_len() -> i32;
        pub(super) fn response_read(ptr: i32, len: i32) -> i32;
        pub(super) fn query(sql_ptr: i32, sql_len: i32) -> i32;
        pub(super) fn query_with(sql_ptr: i32, sql_len: i32, epsilon: f64) -> i32;
        pub(super) fn params() -> i32;
        pub(super) fn emit(
            kind: i32,
            name_ptr: i32,
            name_len: i32,
            data_ptr: i32,
            data_len: i32,
        ) -> i32;
        pub(super) fn log(level: i32, ptr: i32, len: i32) -> i32;
    }
}

/// `(ptr, len)` of a byte slice, as the ABI's `i32` pair.
fn raw(bytes: &[u8]) -> (i32, i32) {
    (bytes.as_ptr() as usize as i32, bytes.len() as i32)
}

/// Length of the pending response, 0 if none.
pub(crate) fn response_len() -> usize {
    // SAFETY: no arguments; the host only reports a length.
    let len = unsafe { ffi::response_len() };
    len as u32 as usize
}

/// Copies the pending response into `buf`, whose length must equal `response_len()`.
pub(crate) fn response_read(buf: &mut [u8]) -> i32 {
    let (ptr, len) = (buf.as_mut_ptr() as usize as i32, buf.len() as i32);
    // SAFETY: `buf` is exclusively borrowed for the call and `len` is its exact length;
    // the host writes at most `len` bytes starting at `ptr`.
    unsafe { ffi::response_read(ptr, len) }
}

/// Runs one SQL query; on success the response is an Arrow IPC stream.
pub(crate) fn query(sql: &str) -> i32 {
    let (ptr, len) = raw(sql.as_bytes());
    // SAFETY: the host reads `len` bytes at `ptr`, all inside the borrowed `sql`.
    unsafe { ffi::query(ptr, len) }
}

/// Runs one SQL query at the given ε.
pub(crate) fn query_with(sql: &str, epsilon: f64) -> i32 {
    let (ptr, len) = raw(sql.as_bytes());
    // SAFETY: the host reads `len` bytes at `ptr`, all inside the borrowed `sql`.
    unsafe { ffi::query_with(ptr, len, epsilon) }
}

/// Requests the job's parameters; on success the response is JSON.
pub(crate) fn params() -> i32 {
    // SAFETY: no arguments; the result goes to the pending response.
    unsafe { ffi::params() }
}

/// Stages an output of the given kind.
pub(crate) fn emit(kind: i32, name: &str, data: &[u8]) -> i32 {
    let (name_ptr, name_len) = raw(name.as_bytes());
    let (data_ptr, data_len) = raw(data);
    // SAFETY: the host reads inside the borrowed `name` and `data` only.
    unsafe { ffi::emit(kind, name_ptr, name_len, data_ptr, data_len) }
}

/// Writes one log line.
pub(crate) fn log(level: i32, message: &str) -> i32 {
    let (ptr, len) = raw(message.as_bytes());
    // SAFETY: the host reads `len` bytes at `ptr`, all inside the borrowed `message`.
    unsafe { ffi::log(level, ptr, len) }
}
