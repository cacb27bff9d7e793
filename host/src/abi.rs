//! The `sandbox` import namespace: the host side of the ABI documented in `sandbox-sdk`.
//!
//! Every function reads guest memory only through [`guest_bytes`], which checks the
//! pointer and length against the memory's current size; none of them panics on guest
//! input.

use std::io::Cursor;
use std::sync::Arc;

use serde_json::json;
use wasmtime::{Caller, Extern, Linker, StoreLimits};

use sandbox_core::Error;
use sandbox_core::job::{JobLimits, LogLine, OutputKind, StagedOutput};
use sandbox_core::port::{Asker, QueryPort};
use sandbox_core::refusal::Rule;

use super::Progress;

/// Status codes returned to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// Bad pointer, length, UTF-8 or name.
    InvalidArgument = 1,
    /// The mediator refused the query.
    Refused = 2,
    /// The privacy budget cannot pay.
    Budget = 3,
    /// A job limit was reached.
    Limit = 4,
    /// Host-side failure.
    Internal = 5,
    /// `response_read` without a pending response.
    NoResponse = 6,
}

/// What the host functions need to act for the job: who it is, and its one way to data.
#[derive(Clone)]
pub struct JobContext {
    /// The query port that answers the job's queries (the mediator).
    pub port: Arc<dyn QueryPort>,
    /// The data directory of the job's domain: the key the registry of running jobs is
    /// kept under (one process may serve several domains). Never opened here.
    pub domain: std::path::PathBuf,
    /// Scenario paying.
    pub scenario_id: i64,
    /// Job id.
    pub job_id: String,
    /// Submitter.
    pub actor: String,
    /// Parameters, JSON.
    pub params_json: String,
}

/// Per-job host state, owned by the Store.
pub struct HostState {
    pub(crate) store_limits: StoreLimits,
    limits: JobLimits,
    job: JobContext,
    response: Option<Vec<u8>>,
    pub(crate) outputs: Vec<StagedOutput>,
    output_bytes: usize,
    log_bytes: usize,
    pub(crate) queries: u32,
    /// A limit breach or host failure that ends the job; set before trapping.
    pub(crate) fatal: Option<Error>,
    /// What the job has done so far, for status reports while it runs.
    pub(crate) progress: Arc<Progress>,
}

impl HostState {
    pub(crate) fn new(
        job: JobContext,
        limits: JobLimits,
        store_limits: StoreLimits,
        progress: Arc<Progress>,
    ) -> Self {
        HostState {
            store_limits,
            limits,
            job,
            response: None,
            outputs: Vec::new(),
            output_bytes: 0,
            log_bytes: 0,
            queries: 0,
            fatal: None,
            progress,
        }
    }

    /// The text of the last error-level log line.
    pub fn last_error_log(&self) -> Option<String> {
        self.progress.last_error()
    }

    fn error_response(
        &mut self,
        status: Status,
        kind: &str,
        rule: Option<&str>,
        message: &str,
    ) -> i32 {
        let body = json!({"kind": kind, "rule": rule, "message": message});
        self.response = Some(body.to_string().into_bytes());
        status as i32
    }
}

/// Ends the job: records the fatal error and returns the trap that unwinds the guest.
fn fatal(state: &mut HostState, limit: &'static str, message: String) -> wasmtime::Error {
    state.fatal = Some(Error::Limit { limit, message });
    wasmtime::Error::msg(format!("job limit `{limit}` reached"))
}

/// Copies `len` bytes at `ptr` out of the guest's memory, or `None` if out of bounds.
fn guest_bytes(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let memory = match caller.get_export("memory") {
        Some(Extern::Memory(m)) => m,
        _ => return None,
    };
    let start = u32::try_from(ptr).ok()? as usize;
    let len = u32::try_from(len).ok()? as usize;
    let end = start.checked_add(len)?;
    memory.data(&*caller).get(start..end).map(<[u8]>::to_vec)
}

fn guest_write(caller: &mut Caller<'_, HostState>, ptr: i32, bytes: &[u8]) -> bool {
    let memory = match caller.get_export("memory") {
        Some(Extern::Memory(m)) => m,
        _ => return false,
    };
    let Ok(start) = u32::try_from(ptr) else {
        return false;
    };
    let start = start as usize;
    let Some(end) = start.checked_add(bytes.len()) else {
        return false;
    };
    match memory.data_mut(&mut *caller).get_mut(start..end) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

fn invalid(caller: &mut Caller<'_, HostState>, message: &str) -> i32 {
    caller
        .data_mut()
        .error_response(Status::InvalidArgument, "invalid", None, message)
}

fn valid_output_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
}

/// The `query` and `query_with` imports: one SQL query through the mediator, at the
/// scenario's ε per query or at `epsilon` (which the mediator caps at that).
fn query(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    len: i32,
    epsilon: Option<f64>,
) -> wasmtime::Result<i32> {
    let Some(bytes) = guest_bytes(caller, ptr, len) else {
        return Ok(invalid(caller, "query: pointer or length out of bounds"));
    };
    let Ok(sql) = String::from_utf8(bytes) else {
        return Ok(invalid(caller, "query: SQL is not UTF-8"));
    };
    let state = caller.data_mut();
    if state.queries >= state.limits.max_queries {
        let max = state.limits.max_queries;
        return Err(fatal(state, "queries", format!("more than {max} queries")));
    }
    state.queries += 1;
    state.progress.query();
    let job = state.job.clone();
    let asker = Asker {
        scenario_id: job.scenario_id,
        job_id: job.job_id.clone(),
        actor: job.actor.clone(),
    };
    let result = job.port.query(&asker, &sql, epsilon);
    let state = caller.data_mut();
    Ok(match result {
        Ok(bytes) => {
            state.response = Some(bytes);
            Status::Ok as i32
        }
        // The budget's refusal keeps its own status: a module may stop asking.
        Err(Error::Refused(r)) if r.rule == Rule::BudgetExhausted => {
            state.error_response(Status::Budget, "budget", Some(r.rule.as_str()), &r.message)
        }
        Err(Error::Refused(r)) => state.error_response(
            Status::Refused,
            "refused",
            Some(r.rule.as_str()),
            &r.to_string(),
        ),
        Err(e) => {
            tracing::warn!(job = %job.job_id, error = %e, "query failed inside the host");
            // The detail stays in the domain: an engine message could quote data.
            state.error_response(
                Status::Internal,
                "internal",
                None,
                "the query failed inside the host",
            )
        }
    })
}

/// Defines the `sandbox` namespace.
pub(crate) fn define(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "sandbox",
        "response_len",
        |caller: Caller<'_, HostState>| -> i32 {
            caller
                .data()
                .response
                .as_ref()
                .map_or(0, |r| i32::try_from(r.len()).unwrap_or(i32::MAX))
        },
    )?;

    linker.func_wrap(
        "sandbox",
        "response_read",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> i32 {
            let Some(response) = caller.data_mut().response.take() else {
                return Status::NoResponse as i32;
            };
            if i64::from(len) != response.len() as i64 {
                caller.data_mut().response = Some(response);
                return Status::InvalidArgument as i32;
            }
            if guest_write(&mut caller, ptr, &response) {
                Status::Ok as i32
            } else {
                caller.data_mut().response = Some(response);
                Status::InvalidArgument as i32
            }
        },
    )?;

    linker.func_wrap(
        "sandbox",
        "params",
        |mut caller: Caller<'_, HostState>| -> i32 {
            let params = caller.data().job.params_json.clone().into_bytes();
            caller.data_mut().response = Some(params);
            Status::Ok as i32
        },
    )?;

    linker.func_wrap(
        "sandbox",
        "query",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            query(&mut caller, ptr, len, None)
        },
    )?;

    linker.func_wrap(
        "sandbox",
        "query_with",
        |mut caller: Caller<'_, HostState>,
         ptr: i32,
         len: i32,
         epsilon: f64|
         -> wasmtime::Result<i32> {
            if !(epsilon.is_finite() && epsilon > 0.0) {
                return Ok(invalid(
                    &mut caller,
                    "query_with: ε must be a positive finite number",
                ));
            }
            query(&mut caller, ptr, len, Some(epsilon))
        },
    )?;

    linker.func_wrap("sandbox", "emit", emit)?;
    linker.func_wrap("sandbox", "log", log)?;
    Ok(())
}

/// `emit(kind, name_ptr, name_len, data_ptr, data_len)`: stages an output after checking
/// its name, its kind's format and the output limits.
fn emit(
    mut caller: Caller<'_, HostState>,
    kind: i32,
    name_ptr: i32,
    name_len: i32,
    data_ptr: i32,
    data_len: i32,
) -> wasmtime::Result<i32> {
    let kind = match kind {
        1 => OutputKind::Table,
        2 => OutputKind::Text,
        3 => OutputKind::Chart,
        4 => OutputKind::Png,
        _ => return Ok(invalid(&mut caller, "emit: unknown output kind")),
    };
    let Some(name) = guest_bytes(&mut caller, name_ptr, name_len) else {
        return Ok(invalid(
            &mut caller,
            "emit: name pointer or length out of bounds",
        ));
    };
    let Ok(name) = String::from_utf8(name) else {
        return Ok(invalid(&mut caller, "emit: name is not UTF-8"));
    };
    if !valid_output_name(&name) {
        return Ok(invalid(
            &mut caller,
            "emit: name must be 1-64 characters of [a-z0-9_-]",
        ));
    }
    {
        let state = caller.data_mut();
        let max_one = state.limits.max_output_bytes;
        if u32::try_from(data_len).is_ok_and(|l| l as usize > max_one) {
            return Err(fatal(
                state,
                "output_bytes",
                format!("output `{name}` is larger than {max_one} bytes"),
            ));
        }
        if state.outputs.len() as u32 >= state.limits.max_outputs {
            let max = state.limits.max_outputs;
            return Err(fatal(state, "outputs", format!("more than {max} outputs")));
        }
        if state.outputs.iter().any(|o| o.name == name) {
            return Ok(state.error_response(
                Status::InvalidArgument,
                "invalid",
                None,
                "emit: an output of that name exists",
            ));
        }
    }
    let Some(data) = guest_bytes(&mut caller, data_ptr, data_len) else {
        return Ok(invalid(
            &mut caller,
            "emit: data pointer or length out of bounds",
        ));
    };
    let data = match checked_output(kind, data) {
        Ok(data) => data,
        Err(message) => return Ok(invalid(&mut caller, &format!("emit: {message}"))),
    };
    let state = caller.data_mut();
    let total = state.output_bytes + data.len();
    if total > state.limits.max_total_output_bytes {
        let max = state.limits.max_total_output_bytes;
        return Err(fatal(
            state,
            "output_bytes",
            format!("outputs total more than {max} bytes"),
        ));
    }
    state.output_bytes = total;
    state.progress.output(data.len());
    state.outputs.push(StagedOutput {
        name,
        kind,
        bytes: data,
    });
    Ok(Status::Ok as i32)
}

/// Checks an output's bytes against its kind; a PNG chart comes back re-encoded.
fn checked_output(kind: OutputKind, data: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
    match kind {
        OutputKind::Table => decode_ipc(&data)
            .map(|_| data)
            .map_err(|e| format!("not an Arrow IPC stream: {e}")),
        OutputKind::Text => match std::str::from_utf8(&data) {
            Ok(_) => Ok(data),
            Err(_) => Err("text is not UTF-8".into()),
        },
        OutputKind::Chart => check_svg(&data)
            .map(|_| data)
            .map_err(|e| format!("chart: {e}")),
        OutputKind::Png => reencode_png(&data)
            .map(|clean| clean.bytes)
            .map_err(|e| format!("PNG chart: {e}")),
    }
}

/// `log(level, ptr, len)`: a log line for the developer, within the log limit.
fn log(mut caller: Caller<'_, HostState>, level: i32, ptr: i32, len: i32) -> wasmtime::Result<i32> {
    if !(0..=4).contains(&level) {
        return Ok(invalid(&mut caller, "log: level must be 0..=4"));
    }
    let Some(bytes) = guest_bytes(&mut caller, ptr, len) else {
        return Ok(invalid(&mut caller, "log: pointer or length out of bounds"));
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let state = caller.data_mut();
    state.log_bytes += text.len();
    if state.log_bytes > state.limits.max_log_bytes {
        let max = state.limits.max_log_bytes;
        return Err(fatal(
            state,
            "log_bytes",
            format!("more than {max} bytes of log"),
        ));
    }
    state.progress.log(LogLine { level, text });
    Ok(Status::Ok as i32)
}

/// Elements a chart may use.
const SVG_ELEMENTS: &[&str] = &[
    "svg", "g", "rect", "line", "text", "tspan", "title", "desc", "path", "polyline", "polygon",
    "circle",
];

/// Largest side of a PNG chart, in pixels.
pub const MAX_PNG_SIDE: u32 = 4096;

/// A PNG chart as the host re-encoded it.
#[derive(Debug, Clone)]
pub struct CleanPng {
    /// The new file: the decoded pixels only.
    pub bytes: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Decodes a PNG chart and encodes its pixels again into a fresh file, so that nothing
/// but the picture leaves: text, EXIF and other ancillary chunks, trailing bytes and extra
/// animation frames are dropped. Refused: not a PNG, animated, larger than
/// [`MAX_PNG_SIDE`] on a side.
pub fn reencode_png(bytes: &[u8]) -> std::result::Result<CleanPng, String> {
    let mut decoder = png::Decoder::new_with_limits(
        std::io::Cursor::new(bytes),
        png::Limits { bytes: 256 << 20 },
    );
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("not a PNG image: {e}"))?;
    let (width, height, animated) = {
        let info = reader.info();
        (info.width, info.height, info.animation_control.is_some())
    };
    if animated {
        return Err("animated PNG images are not allowed".into());
    }
    if width == 0 || height == 0 || width > MAX_PNG_SIDE || height > MAX_PNG_SIDE {
        return Err(format!(
            "{width}×{height} pixels; at most {MAX_PNG_SIDE} on a side"
        ));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| "image too large".to_string())?;
    let mut pixels = vec![0; size];
    let frame = reader
        .next_frame(&mut pixels)
        .map_err(|e| format!("not a PNG image: {e}"))?;
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(frame.color_type);
        encoder.set_depth(frame.bit_depth);
        let mut writer = encoder
            .write_header()
            .map_err(|e| format!("re-encoding: {e}"))?;
        writer
            .write_image_data(&pixels[..frame.buffer_size()])
            .map_err(|e| format!("re-encoding: {e}"))?;
        writer.finish().map_err(|e| format!("re-encoding: {e}"))?;
    }
    Ok(CleanPng {
        bytes: out,
        width,
        height,
    })
}

/// Checks that a chart is an SVG document in the restricted vocabulary: parsed as XML
/// (no DTD), `svg` root in the SVG namespace, allowed elements only, no event attributes,
/// links, styles or external references. Returns the chart's text (for the checks).
pub fn check_svg(bytes: &[u8]) -> std::result::Result<String, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("not well-formed XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "svg"
        || root.tag_name().namespace() != Some("http://www.w3.org/2000/svg")
    {
        return Err("the root element must be <svg> in the SVG namespace".into());
    }
    let mut words = String::new();
    for node in doc.descendants() {
        if node.is_text() {
            words.push_str(node.text().unwrap_or_default());
            words.push('\n');
            continue;
        }
        if node.is_pi() {
            return Err("processing instructions are not allowed".into());
        }
        if !node.is_element() {
            continue;
        }
        let name = node.tag_name().name();
        if !SVG_ELEMENTS.contains(&name)
            || node
                .tag_name()
                .namespace()
                .is_some_and(|ns| ns != "http://www.w3.org/2000/svg")
        {
            return Err(format!("element <{name}> is not allowed in a chart"));
        }
        for a in node.attributes() {
            let an = a.name().to_ascii_lowercase();
            let value = a.value().to_ascii_lowercase();
            if an.starts_with("on")
                || an == "href"
                || an == "style"
                || a.namespace().is_some()
                || value.contains("url(")
                || value.contains("javascript:")
            {
                return Err(format!(
                    "attribute `{}` is not allowed in a chart",
                    a.name()
                ));
            }
        }
    }
    Ok(words)
}

/// Decodes an Arrow IPC stream into its batches. The bytes may come from a guest (an
/// emitted table, and everything that reads it later: the disclosure checks, the review
/// view, the release): [`check_ipc`] reads the framing and the schema first, because
/// Arrow's reader trusts them (it allocates the lengths a message claims, and panics on
/// types and buffers it does not expect).
pub fn decode_ipc(bytes: &[u8]) -> sandbox_core::Result<Vec<arrow::array::RecordBatch>> {
    check_ipc(bytes).map_err(|e| Error::Engine(format!("not an Arrow IPC stream: {e}")))?;
    let engine = |e: arrow::error::ArrowError| Error::Engine(e.to_string());
    let reader =
        arrow::ipc::reader::StreamReader::try_new(Cursor::new(bytes), None).map_err(engine)?;
    let mut out = Vec::new();
    for b in reader {
        out.push(b.map_err(engine)?);
    }
    Ok(out)
}

/// Checks an IPC stream's framing and metadata before Arrow's reader sees it: every
/// message and body lies within the bytes; only a schema and record batches, no
/// dictionaries, no compression; the schema little-endian and flat, of the types a table
/// of results has (null, integers, floats, decimals, text, binary, booleans, dates,
/// timestamps), each with parameters Arrow knows; every buffer of a batch within its
/// body, and every length and count non-negative.
fn check_ipc(bytes: &[u8]) -> std::result::Result<(), String> {
    use arrow::ipc::{MessageHeader, root_as_message};
    let word = |at: usize| -> std::result::Result<u32, String> {
        bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| "the stream ends inside a message's length".to_string())
    };
    let mut at = 0usize;
    let mut schema: Option<Vec<Column>> = None;
    while at < bytes.len() {
        let mut len = word(at)?;
        at += 4;
        if len == u32::MAX {
            len = word(at)?;
            at += 4;
        }
        if len == 0 {
            break;
        }
        let meta = at
            .checked_add(len as usize)
            .and_then(|end| bytes.get(at..end))
            .ok_or("a message is longer than the stream")?;
        at += meta.len();
        let message =
            root_as_message(meta).map_err(|e| format!("a message does not parse: {e}"))?;
        let body = usize::try_from(message.bodyLength())
            .ok()
            .filter(|b| at.checked_add(*b).is_some_and(|end| end <= bytes.len()))
            .ok_or("a message's body is longer than the stream")?;
        match (message.header_type(), &schema) {
            (MessageHeader::Schema, None) => {
                let s = message
                    .header_as_schema()
                    .ok_or("a schema message without a schema")?;
                schema = Some(check_schema(&s)?);
            }
            (MessageHeader::RecordBatch, Some(columns)) => {
                let b = message
                    .header_as_record_batch()
                    .ok_or("a batch message without a batch")?;
                check_batch(&b, body, columns, bytes.len())?;
            }
            (MessageHeader::Schema, Some(_)) => return Err("a second schema".into()),
            (MessageHeader::RecordBatch, None) => {
                return Err("a batch before the schema".into());
            }
            _ => return Err("only a schema and record batches are allowed".into()),
        }
        at += body;
    }
    Ok(())
}

/// What a column's buffers hold, for [`check_batch`].
#[derive(Debug, Clone, Copy)]
enum Column {
    /// No buffers.
    Null,
    /// Validity and values of this many bits each.
    Fixed(u64),
    /// Validity, offsets of this many bits each, and the data.
    Variable(u64),
}

fn check_schema(s: &arrow::ipc::Schema<'_>) -> std::result::Result<Vec<Column>, String> {
    use arrow::ipc::{DateUnit, Endianness, Precision, TimeUnit, Type};
    if s.endianness() != Endianness::Little {
        return Err("a big-endian schema".into());
    }
    let fields = s.fields().ok_or("a schema without fields")?;
    let mut columns = Vec::new();
    for f in fields {
        if f.dictionary().is_some() {
            return Err("dictionary-encoded columns are not allowed".into());
        }
        if f.children().is_some_and(|c| !c.is_empty()) {
            return Err("nested columns are not allowed".into());
        }
        let column = match f.type_type() {
            Type::Null => f.type_as_null().map(|_| Column::Null),
            Type::Bool => f.type_as_bool().map(|_| Column::Fixed(1)),
            Type::Utf8 => f.type_as_utf_8().map(|_| Column::Variable(32)),
            Type::LargeUtf8 => f.type_as_large_utf_8().map(|_| Column::Variable(64)),
            Type::Binary => f.type_as_binary().map(|_| Column::Variable(32)),
            Type::LargeBinary => f.type_as_large_binary().map(|_| Column::Variable(64)),
            Type::Int => f
                .type_as_int()
                .filter(|i| matches!(i.bitWidth(), 8 | 16 | 32 | 64))
                .map(|i| Column::Fixed(i.bitWidth() as u64)),
            Type::FloatingPoint => f
                .type_as_floating_point()
                .and_then(|p| match p.precision() {
                    Precision::HALF => Some(Column::Fixed(16)),
                    Precision::SINGLE => Some(Column::Fixed(32)),
                    Precision::DOUBLE => Some(Column::Fixed(64)),
                    _ => None,
                }),
            Type::Decimal => f.type_as_decimal().and_then(|d| {
                let most = match d.bitWidth() {
                    32 => 9,
                    64 => 18,
                    128 => 38,
                    256 => 76,
                    _ => 0,
                };
                ((1..=most).contains(&d.precision()) && d.scale().abs() <= d.precision())
                    .then(|| Column::Fixed(d.bitWidth() as u64))
            }),
            Type::Date => f.type_as_date().and_then(|d| match d.unit() {
                DateUnit::DAY => Some(Column::Fixed(32)),
                DateUnit::MILLISECOND => Some(Column::Fixed(64)),
                _ => None,
            }),
            Type::Timestamp => f
                .type_as_timestamp()
                .filter(|t| {
                    matches!(
                        t.unit(),
                        TimeUnit::SECOND
                            | TimeUnit::MILLISECOND
                            | TimeUnit::MICROSECOND
                            | TimeUnit::NANOSECOND
                    )
                })
                .map(|_| Column::Fixed(64)),
            _ => None,
        };
        let Some(column) = column else {
            return Err(format!(
                "column `{}`: a type a table of results does not have",
                f.name().unwrap_or_default()
            ));
        };
        columns.push(column);
    }
    Ok(columns)
}

fn check_batch(
    b: &arrow::ipc::RecordBatch<'_>,
    body: usize,
    columns: &[Column],
    stream: usize,
) -> std::result::Result<(), String> {
    if b.compression().is_some() {
        return Err("compressed batches are not allowed".into());
    }
    if b.variadicBufferCounts().is_some_and(|v| !v.is_empty()) {
        return Err("variadic buffers are not allowed".into());
    }
    // Every column of a flat batch has its rows; a column of nulls only has no buffer,
    // so the row count is bounded by the stream's size.
    let rows = u64::try_from(b.length())
        .ok()
        .filter(|r| *r <= 8 * stream as u64)
        .ok_or("a row count out of range")?;
    let nodes = b.nodes().ok_or("a batch without field nodes")?;
    let buffers = b.buffers().ok_or("a batch without buffers")?;
    let mut sizes = Vec::with_capacity(buffers.len());
    for buf in buffers {
        let size = u64::try_from(buf.offset())
            .ok()
            .zip(u64::try_from(buf.length()).ok())
            .filter(|(o, l)| o % 8 == 0 && o.checked_add(*l).is_some_and(|end| end <= body as u64))
            .map(|(_, l)| l)
            .ok_or("a buffer lies outside its batch or is not aligned")?;
        sizes.push(size);
    }
    if nodes.len() != columns.len() {
        return Err("a batch's columns differ from the schema's".into());
    }
    let mut sizes = sizes.into_iter();
    let mut next = || sizes.next().ok_or("fewer buffers than the columns need");
    for (node, column) in nodes.iter().zip(columns) {
        let (len, nulls) = (node.length(), node.null_count());
        if u64::try_from(len).ok() != Some(rows) || nulls < 0 || nulls > len {
            return Err("a column's length or null count is out of range".into());
        }
        let bits = |n: u64| n.div_ceil(8);
        let rows_plus_one = rows + 1;
        let enough = match *column {
            Column::Null => true,
            Column::Fixed(width) => {
                let validity = next()?;
                let values = next()?;
                (nulls == 0 || validity >= bits(rows))
                    && values >= bits(rows * width)
                    && (width < 8 || values % (width / 8) == 0)
            }
            Column::Variable(width) => {
                let validity = next()?;
                let offsets = next()?;
                next()?;
                (nulls == 0 || validity >= bits(rows))
                    && offsets >= bits(rows_plus_one * width)
                    && offsets % (width / 8) == 0
            }
        };
        if !enough {
            return Err("a column's buffers do not fit its rows".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};

    use super::decode_ipc;

    fn stream() -> Vec<u8> {
        let batch = RecordBatch::try_from_iter([
            (
                "k",
                Arc::new(StringArray::from(vec![Some("hexi"), None])) as ArrayRef,
            ),
            ("n", Arc::new(Int64Array::from(vec![3, 40])) as _),
            (
                "x",
                Arc::new(Float64Array::from(vec![Some(12.5), None])) as _,
            ),
        ])
        .unwrap();
        let mut out = Vec::new();
        let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut out, &batch.schema()).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        drop(w);
        out
    }

    /// Every stream one byte away from a valid one decodes or is refused: Arrow's reader
    /// alone panics on some (a buffer outside its body, an unknown type's parameters) and
    /// allocates what others claim (a body of 2^63 bytes), which ends the process.
    #[test]
    fn a_guest_table_one_byte_off_is_decoded_or_refused_never_a_panic() {
        let valid = stream();
        assert_eq!(decode_ipc(&valid).unwrap()[0].num_rows(), 2);
        let mut refused = 0;
        for at in 0..valid.len() {
            for value in [0x00, 0x01, 0x7F, 0x80, 0xFF, valid[at] ^ 0x40] {
                let mut bytes = valid.clone();
                bytes[at] = value;
                let decoded = std::panic::catch_unwind(|| decode_ipc(&bytes));
                match decoded {
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => refused += 1,
                    Err(_) => panic!("byte {at} set to {value:#04x}: the decoder panicked"),
                }
            }
        }
        assert!(refused > 0);
        // Truncated anywhere: refused or fewer batches, never a panic.
        for end in 0..valid.len() {
            assert!(
                std::panic::catch_unwind(|| decode_ipc(&valid[..end])).is_ok(),
                "cut at {end}"
            );
        }
    }
}
