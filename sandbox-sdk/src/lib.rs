//! Guest SDK for Sandbox analysis modules.
//!
//! An analysis module is a Rust crate compiled to WebAssembly (`wasm32-unknown-unknown`,
//! crate type `cdylib`). It runs inside the Sandbox host with no I/O of its own: the only
//! way to reach data is to ask the host to run a query, and the only way to produce
//! something is to stage an output that the host reviews before release.
//!
//! ```no_run
//! use sandbox_sdk::prelude::*;
//!
//! #[derive(serde::Deserialize, Default)]
//! struct Params {
//!     min_age: Option<i64>,
//! }
//!
//! #[sandbox_sdk::analysis]
//! fn run(ctx: &mut Context) -> Result<()> {
//!     let p: Params = ctx.params()?;
//!     let sql = match p.min_age {
//!         Some(age) => format!("SELECT district, COUNT(*) AS n FROM residents WHERE age >= {age} GROUP BY district"),
//!         None => "SELECT district, COUNT(*) AS n FROM residents GROUP BY district".to_string(),
//!     };
//!     let t = ctx.query(&sql)?;
//!     ctx.log_info(&format!("{} rows, epsilon {}", t.num_rows(), t.epsilon()));
//!     ctx.emit_table("by_district", &t)?;
//!     ctx.emit_text("summary", "# Summary\n...")?;
//!     Ok(())
//! }
//! ```
//!
//! Users never write `unsafe`: the raw host imports live in one private module, and
//! [`macro@analysis`] generates the exported entry point. Build guests with the workspace's
//! `scripts/build-guests.sh` (see `examples/modules` for a guest workspace).
//!
//! On targets other than `wasm32` the host imports are replaced by a native stand-in whose
//! calls all fail with [`Error::Internal`] ("not running inside the Sandbox host"), so that
//! a module's pure code (and this crate) can be compiled and unit-tested natively.
//!
//! # Host ABI, version 1
//!
//! This section is the normative description of the interface between the host and a
//! guest. A guest written in another language (C, AssemblyScript, ...) can implement it
//! directly; the constants are also available in [`abi`].
//!
//! ## Module shape
//!
//! - A core WebAssembly module (not a component). No WASI: a guest that imports anything
//!   else fails to instantiate.
//! - **Imports** come only from the module namespace `"sandbox"` (listed below).
//! - **Exports**: `memory` (the guest's linear memory) and `run: () -> i32`.
//!   `run` returns `0` for success; any other value means the module failed.
//! - All pointers and lengths are `i32` values holding `u32` byte offsets/lengths into the
//!   guest's exported `memory`. Text is always UTF-8.
//!
//! ## Status codes
//!
//! Every import returns an `i32` status:
//!
//! | value | name               | meaning |
//! |------:|--------------------|---------|
//! | 0     | `OK`               | success |
//! | 1     | `INVALID_ARGUMENT` | bad pointer, length, UTF-8 or name |
//! | 2     | `REFUSED`          | the mediator refused the query by policy |
//! | 3     | `BUDGET`           | the privacy budget is exhausted |
//! | 4     | `LIMIT`            | a job limit was reached (queries, outputs, bytes, log volume) |
//! | 5     | `INTERNAL`         | host-side failure |
//! | 6     | `NO_RESPONSE`      | `response_read` without a pending response |
//!
//! Any other value must be treated as `INTERNAL`.
//!
//! ## The pending response
//!
//! The host keeps **one** pending response buffer per job. Calls that produce data
//! (`query`, `params`) replace it with their result, and **every call that fails** replaces
//! it with a UTF-8 JSON error object:
//!
//! ```json
//! {"kind": "refused", "rule": "min_group_size", "message": "groups must have at least 10 rows"}
//! ```
//!
//! `kind` is one of `"refused"`, `"budget"`, `"limit"`, `"invalid"`, `"internal"`; `rule`
//! (the policy rule that refused, if any) is optional; `message` is human-readable text.
//! The guest reads a response with the two calls below, immediately after the call that
//! produced it.
//!
//! ## Imports (namespace `"sandbox"`)
//!
//! - `response_len() -> i32`: the length in bytes of the pending response, `0` if none.
//! - `response_read(ptr: i32, len: i32) -> i32`: copy the pending response into guest
//!   memory at `ptr`. `len` must equal `response_len()` exactly, otherwise
//!   `INVALID_ARGUMENT`. With no pending response: `NO_RESPONSE`. On success the pending
//!   response is cleared.
//! - `query(sql_ptr: i32, sql_len: i32) -> i32`: run one SQL query (UTF-8 text). On `OK`
//!   the response is an Arrow IPC **stream** (a schema message followed by record batches,
//!   uncompressed). Schema-level metadata (all values are strings):
//!   - `sandbox.epsilon`: the ε charged for this query, a decimal number;
//!   - `sandbox.delta`: the δ charged, a decimal number;
//!   - `sandbox.mechanism`: the noise mechanism, e.g. `laplace`;
//!   - `sandbox.query_id`: the host's identifier of this query.
//!
//!   Field-level metadata on noisy columns (decimal strings): `sandbox.noise_scale` (a
//!   statistic released as is), `sandbox.ci95` (half-width of a 95 % interval),
//!   `sandbox.rounding` (the unit the policy has values rounded to; the SDK's
//!   `Context::query` applies it, `Context::query_unrounded` does not) and
//!   `sandbox.withheld` (cells left NULL: an average, variance or quantile whose noisy
//!   count was too small to mean anything). On failure the response is the JSON error
//!   object.
//! - `query_with(sql_ptr: i32, sql_len: i32, epsilon: f64) -> i32`: as `query`, spending
//!   `epsilon` (positive and finite, at most the scenario's ε per query) instead of the
//!   scenario's ε per query.
//! - `params() -> i32`: on `OK` the response is the UTF-8 JSON object of the job's
//!   parameters (`{}` when the job has none).
//! - `emit(kind: i32, name_ptr: i32, name_len: i32, data_ptr: i32, data_len: i32) -> i32`:
//!   stage a candidate output. `kind` 1 = table (data is an Arrow IPC stream), `kind` 2 =
//!   text (data is UTF-8 Markdown), `kind` 3 = chart (data is a UTF-8 SVG document in the
//!   restricted vocabulary of [`abi::KIND_CHART`]), `kind` 4 = chart as a PNG image (see
//!   [`abi::KIND_PNG`]: the host stages a re-encoding of its pixels only). The name is 1 to
//!   64 characters from `[a-z0-9_-]` and unique within the job. Success leaves the pending response alone; failure sets the
//!   JSON error object.
//! - `log(level: i32, ptr: i32, len: i32) -> i32`: a UTF-8 log line. Levels: 0 trace,
//!   1 debug, 2 info, 3 warn, 4 error.
//!
//! ## Failure reporting
//!
//! Before `run` returns non-zero, the guest logs the reason at level 4 (error), which the
//! host records as the failure reason. A guest that traps (a Rust
//! panic with `panic = "abort"` traps as `unreachable`) should log the panic message and
//! location at level 4 first: this SDK installs a panic hook that does so.
//!
//! # Building
//!
//! The release profile of a guest workspace should use `opt-level = "s"`, `lto = true`,
//! `panic = "abort"`, `strip = true`, `codegen-units = 1`. This crate's dependencies are
//! chosen so that the module imports nothing besides `"sandbox"`: Arrow is used without
//! compression codecs, and no crate pulls a runtime randomness source on `wasm32`.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod abi;
mod chart;
mod context;
mod error;
mod table;

// The one module allowed to use `unsafe`: it declares the host imports and passes
// pointers into the guest's own memory to them. Everything else goes through its safe
// wrappers. On native targets a safe stand-in takes its place.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod sys;
#[cfg(not(target_arch = "wasm32"))]
#[path = "sys_native.rs"]
mod sys;

pub use chart::Chart;
pub use context::{Context, Level};
pub use error::{Error, Result};
pub use sandbox_sdk_macros::analysis;
pub use table::{StrValue, Table, TableBuilder};

/// The Arrow crates this SDK is built on, re-exported so that modules use the same
/// versions without declaring them.
pub mod arrow {
    pub use arrow_array as array;
    pub use arrow_buffer as buffer;
    pub use arrow_ipc as ipc;
    pub use arrow_schema as schema;
}

/// The names most modules need: `use sandbox_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{Chart, Context, Error, Level, Result, Table, TableBuilder, analysis};
}

/// Support code for the `#[analysis]` macro. Not a stable API.
#[doc(hidden)]
pub mod __private {
    use std::fmt::Display;

    use crate::{Context, Level, sys};

    /// The body of the generated `run` export: installs the panic hook, runs the analysis
    /// and turns its result into the ABI's return code.
    pub fn run_analysis<E: Display>(f: impl FnOnce(&mut Context) -> Result<(), E>) -> i32 {
        install_panic_hook();
        let mut ctx = Context::new();
        match f(&mut ctx) {
            Ok(()) => 0,
            Err(err) => {
                // `{:#}` so that error types with a cause chain (anyhow) print all of it.
                ctx.log(Level::Error, &format!("{err:#}"));
                1
            }
        }
    }

    /// Logs a panic's message and location at error level, before `panic = "abort"` traps.
    fn install_panic_hook() {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("Box<dyn Any>");
            let text = match info.location() {
                Some(loc) => format!(
                    "panicked at {}:{}:{}: {message}",
                    loc.file(),
                    loc.line(),
                    loc.column()
                ),
                None => format!("panicked: {message}"),
            };
            // Nothing useful can be done if logging fails while panicking.
            let _ = sys::log(Level::Error as i32, &text);
        }));
    }
}
