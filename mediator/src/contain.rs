//! Containment of a dependency's panic on untrusted bytes. The decoders a provider's
//! upload goes through (Parquet's, CSV's) are other projects' code, and Parquet's panics on
//! some malformed files (the ingest fuzzer found a division by zero in its dictionary
//! reader). Such a panic must not end the server or the command: [`contained`] runs the
//! decoding, and a panic inside it becomes an error the caller turns into the typed input
//! error any other bad file gets. The unwinding leaves nothing behind: the decoders are safe
//! Rust, and whatever they held is dropped.
//!
//! Only decoding of a caller's bytes is contained. A panic in our own code, or in a
//! dependency reading what we wrote, is a bug and still ends the process.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f`; a panic inside it is returned as its message.
pub fn contained<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    DEPTH.with(|d| d.set(d.get().saturating_add(1)));
    let out = panic::catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    out.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string())
    })
}

/// Whether this thread is inside [`contained`]: a panic hook that ends the process on
/// any panic (a fuzzer's) lets these through, since they are answered as errors.
pub fn active() -> bool {
    DEPTH.with(|d| d.get() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_is_an_error_and_the_depth_comes_back() {
        assert!(!active());
        assert_eq!(contained(|| 7), Ok(7));
        let e = contained(|| {
            assert!(active());
            let zero = std::hint::black_box(0usize);
            10 / zero
        });
        assert_eq!(e, Err("attempt to divide by zero".to_string()));
        assert!(!active());
    }
}
