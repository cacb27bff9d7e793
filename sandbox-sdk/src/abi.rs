//! Constants of the host ABI (version 1), as described in the [crate documentation](crate).
//!
//! Modules written with this SDK do not need them; they document the wire format and let
//! tools and tests refer to the same values.

/// The WebAssembly module namespace of every host import.
pub const IMPORT_MODULE: &str = "sandbox";
/// The version of the ABI this SDK implements.
pub const VERSION: u32 = 1;

/// Status: success.
pub const STATUS_OK: i32 = 0;
/// Status: bad pointer, length, UTF-8 or name.
pub const STATUS_INVALID_ARGUMENT: i32 = 1;
/// Status: the mediator refused the query by policy.
pub const STATUS_REFUSED: i32 = 2;
/// Status: the privacy budget is exhausted.
pub const STATUS_BUDGET: i32 = 3;
/// Status: a job limit was reached (queries, outputs, bytes, log volume).
pub const STATUS_LIMIT: i32 = 4;
/// Status: host-side failure. Unknown status values are treated the same way.
pub const STATUS_INTERNAL: i32 = 5;
/// Status: `response_read` was called without a pending response.
pub const STATUS_NO_RESPONSE: i32 = 6;

/// `emit` kind: a table, as an Arrow IPC stream.
pub const KIND_TABLE: i32 = 1;
/// `emit` kind: text, as UTF-8 Markdown.
pub const KIND_TEXT: i32 = 2;
/// `emit` kind: a chart, as a UTF-8 SVG document (elements `svg`, `g`, `rect`, `line`,
/// `text`, `tspan`, `title`, `desc`, `path`, `polyline`, `polygon`, `circle` only; no
/// scripts, event attributes, links or external references).
pub const KIND_CHART: i32 = 3;
/// `emit` kind: a chart as a PNG image (not animated, at most 4096 pixels on a side). The
/// host decodes it and stages a fresh encoding of its pixels only: text and other
/// ancillary chunks are dropped.
pub const KIND_PNG: i32 = 4;

/// Maximum length of an output name, in characters (all from `[a-z0-9_-]`).
pub const MAX_OUTPUT_NAME_LEN: usize = 64;

/// Schema metadata key: the ε charged for the query (decimal string).
pub const META_EPSILON: &str = "sandbox.epsilon";
/// Schema metadata key: the δ charged for the query (decimal string).
pub const META_DELTA: &str = "sandbox.delta";
/// Schema metadata key: the noise mechanism (e.g. `laplace`).
pub const META_MECHANISM: &str = "sandbox.mechanism";
/// Schema metadata key: the host's identifier of the query.
pub const META_QUERY_ID: &str = "sandbox.query_id";
/// Field metadata key: the scale of the noise added to that column (decimal string).
pub const META_NOISE_SCALE: &str = "sandbox.noise_scale";
/// Field metadata key: the half-width of the column's 95 % interval (the widest of its
/// cells for an average or a variance; decimal string).
pub const META_CI95: &str = "sandbox.ci95";
/// Field metadata key: the unit the column's values are best rounded to, as the
/// datasets' policies ask (a power of ten, decimal string).
pub const META_ROUNDING: &str = "sandbox.rounding";
/// Field metadata key: how many of the column's cells were withheld (NULL) because their
/// noisy count was too small for the value to mean anything.
pub const META_WITHHELD: &str = "sandbox.withheld";
