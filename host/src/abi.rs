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

/// Decodes an Arrow IPC stream into its batches.
pub fn decode_ipc(bytes: &[u8]) -> sandbox_core::Result<Vec<arrow::array::RecordBatch>> {
    let engine = |e: arrow::error::ArrowError| Error::Engine(e.to_string());
    let reader =
        arrow::ipc::reader::StreamReader::try_new(Cursor::new(bytes), None).map_err(engine)?;
    let mut out = Vec::new();
    for b in reader {
        out.push(b.map_err(engine)?);
    }
    Ok(out)
}
