//! What a job is allowed, what interrupts it, and what it reports and emits: the
//! vocabulary the WASM host, the store and the runtime share.

use serde::{Deserialize, Serialize};

use crate::Error;

/// Per-job limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobLimits {
    /// Fuel (roughly, WASM instructions).
    pub fuel: u64,
    /// Wall-clock deadline.
    pub deadline_ms: u64,
    /// Linear memory, bytes.
    pub memory_bytes: usize,
    /// Table elements.
    pub table_elements: usize,
    /// Queries per job.
    pub max_queries: u32,
    /// Outputs per job.
    pub max_outputs: u32,
    /// Bytes of one output.
    pub max_output_bytes: usize,
    /// Bytes of all outputs.
    pub max_total_output_bytes: usize,
    /// Bytes of log text.
    pub max_log_bytes: usize,
}

impl Default for JobLimits {
    fn default() -> Self {
        JobLimits {
            fuel: 20_000_000_000,
            deadline_ms: 60_000,
            memory_bytes: 256 << 20,
            table_elements: 100_000,
            max_queries: 100,
            max_outputs: 20,
            max_output_bytes: 4 << 20,
            max_total_output_bytes: 16 << 20,
            max_log_bytes: 256 << 10,
        }
    }
}

impl JobLimits {
    /// The limits a scenario grants: the host's defaults, replaced where the scenario
    /// says otherwise.
    pub fn granted(spec: &sandbox_policies::LimitsSpec) -> JobLimits {
        let d = JobLimits::default();
        JobLimits {
            fuel: spec.fuel.unwrap_or(d.fuel),
            deadline_ms: spec.deadline_ms.unwrap_or(d.deadline_ms),
            memory_bytes: spec
                .memory_mib
                .map_or(d.memory_bytes, |m| (m as usize).saturating_mul(1 << 20)),
            table_elements: d.table_elements,
            max_queries: spec.max_queries.unwrap_or(d.max_queries),
            max_outputs: spec.max_outputs.unwrap_or(d.max_outputs),
            max_output_bytes: spec
                .max_output_bytes
                .map_or(d.max_output_bytes, |b| b as usize),
            max_total_output_bytes: d
                .max_total_output_bytes
                .max(spec.max_output_bytes.unwrap_or(0) as usize),
            max_log_bytes: spec.max_log_bytes.map_or(d.max_log_bytes, |b| b as usize),
        }
    }

    /// Each limit at most what `cap` allows: what a job asked for, within its grant.
    pub fn within(&self, cap: &JobLimits) -> JobLimits {
        JobLimits {
            fuel: self.fuel.min(cap.fuel),
            deadline_ms: self.deadline_ms.min(cap.deadline_ms),
            memory_bytes: self.memory_bytes.min(cap.memory_bytes),
            table_elements: self.table_elements.min(cap.table_elements),
            max_queries: self.max_queries.min(cap.max_queries),
            max_outputs: self.max_outputs.min(cap.max_outputs),
            max_output_bytes: self.max_output_bytes.min(cap.max_output_bytes),
            max_total_output_bytes: self.max_total_output_bytes.min(cap.max_total_output_bytes),
            max_log_bytes: self.max_log_bytes.min(cap.max_log_bytes),
        }
    }
}

/// The limits a submission asks for: each one it names, within what the scenario grants;
/// each one it leaves out, the grant itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitRequest {
    /// Fuel (roughly, WASM instructions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Wall-clock deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Linear memory, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<usize>,
    /// Table elements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_elements: Option<usize>,
    /// Queries per job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queries: Option<u32>,
    /// Outputs per job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_outputs: Option<u32>,
    /// Bytes of one output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<usize>,
    /// Bytes of all outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total_output_bytes: Option<usize>,
    /// Bytes of log text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_log_bytes: Option<usize>,
}

/// The limits as a submission writes them, through the API or the command line (memory
/// in MiB): each at most what the scenario grants; each left out, the grant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmittedLimits {
    /// Fuel.
    pub fuel: Option<u64>,
    /// Wall-clock deadline in milliseconds.
    pub deadline_ms: Option<u64>,
    /// Memory in MiB.
    pub memory_mib: Option<usize>,
    /// Table elements.
    pub table_elements: Option<usize>,
    /// Queries the job may make.
    pub max_queries: Option<u32>,
    /// Outputs the job may stage.
    pub max_outputs: Option<u32>,
    /// Bytes of one output.
    pub max_output_bytes: Option<usize>,
    /// Bytes of all outputs.
    pub max_total_output_bytes: Option<usize>,
    /// Bytes of log text.
    pub max_log_bytes: Option<usize>,
}

impl SubmittedLimits {
    /// The request the runtime takes.
    pub fn request(self) -> LimitRequest {
        LimitRequest {
            fuel: self.fuel,
            deadline_ms: self.deadline_ms,
            memory_bytes: self.memory_mib.map(|m| m.saturating_mul(1 << 20)),
            table_elements: self.table_elements,
            max_queries: self.max_queries,
            max_outputs: self.max_outputs,
            max_output_bytes: self.max_output_bytes,
            max_total_output_bytes: self.max_total_output_bytes,
            max_log_bytes: self.max_log_bytes,
        }
    }
}

impl LimitRequest {
    /// What a job gets under `grant`: each limit asked for, at most the grant's; each one
    /// not asked for, the grant's.
    pub fn within(&self, grant: &JobLimits) -> JobLimits {
        JobLimits {
            fuel: self.fuel.map_or(grant.fuel, |v| v.min(grant.fuel)),
            deadline_ms: self
                .deadline_ms
                .map_or(grant.deadline_ms, |v| v.min(grant.deadline_ms)),
            memory_bytes: self
                .memory_bytes
                .map_or(grant.memory_bytes, |v| v.min(grant.memory_bytes)),
            table_elements: self
                .table_elements
                .map_or(grant.table_elements, |v| v.min(grant.table_elements)),
            max_queries: self
                .max_queries
                .map_or(grant.max_queries, |v| v.min(grant.max_queries)),
            max_outputs: self
                .max_outputs
                .map_or(grant.max_outputs, |v| v.min(grant.max_outputs)),
            max_output_bytes: self
                .max_output_bytes
                .map_or(grant.max_output_bytes, |v| v.min(grant.max_output_bytes)),
            max_total_output_bytes: self
                .max_total_output_bytes
                .map_or(grant.max_total_output_bytes, |v| {
                    v.min(grant.max_total_output_bytes)
                }),
            max_log_bytes: self
                .max_log_bytes
                .map_or(grant.max_log_bytes, |v| v.min(grant.max_log_bytes)),
        }
    }
}

impl From<JobLimits> for LimitRequest {
    fn from(l: JobLimits) -> LimitRequest {
        LimitRequest {
            fuel: Some(l.fuel),
            deadline_ms: Some(l.deadline_ms),
            memory_bytes: Some(l.memory_bytes),
            table_elements: Some(l.table_elements),
            max_queries: Some(l.max_queries),
            max_outputs: Some(l.max_outputs),
            max_output_bytes: Some(l.max_output_bytes),
            max_total_output_bytes: Some(l.max_total_output_bytes),
            max_log_bytes: Some(l.max_log_bytes),
        }
    }
}

/// Why a running job is interrupted. The host turns it into the job's error within a
/// tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Interrupt {
    /// An emergency stop (QQHR Art. 20).
    Stop = 1,
    /// The submitter or an operator cancelled the job.
    Cancel = 2,
    /// The developer or the scenario was suspended or revoked.
    Suspended = 3,
}

impl Interrupt {
    /// The interruption a stored code stands for (0: none).
    pub fn from_u8(v: u8) -> Option<Interrupt> {
        match v {
            1 => Some(Interrupt::Stop),
            2 => Some(Interrupt::Cancel),
            3 => Some(Interrupt::Suspended),
            _ => None,
        }
    }

    /// The error an interrupted job ends with.
    pub fn error(self) -> Error {
        match self {
            Interrupt::Stop => {
                Error::Stopped("the job was interrupted by an emergency stop".into())
            }
            Interrupt::Cancel => Error::Cancelled("the job was cancelled".into()),
            Interrupt::Suspended => Error::Stopped(
                "the job was interrupted: its developer or scenario was suspended or revoked"
                    .into(),
            ),
        }
    }
}

/// Which running jobs an interruption reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopTarget {
    /// One job.
    Job(String),
    /// Every job of a scenario.
    Scenario(i64),
    /// Every job a developer submitted.
    Developer(String),
    /// Every job.
    Domain,
}

/// One log line of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogLine {
    /// 0 trace .. 4 error.
    pub level: i32,
    /// Text.
    pub text: String,
}

/// A running job's progress as reported: how much of each limit it has used.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ProgressReport {
    /// Milliseconds since the job started.
    pub elapsed_ms: u64,
    /// Its wall-clock deadline.
    pub deadline_ms: u64,
    /// Fuel used (updated every 10 ms).
    pub fuel_used: u64,
    /// Fuel granted.
    pub fuel_limit: u64,
    /// Queries answered or refused so far.
    pub queries: u32,
    /// Queries allowed.
    pub max_queries: u32,
    /// Outputs emitted so far (staged only when the job succeeds).
    pub outputs: u32,
    /// Their bytes.
    pub output_bytes: u64,
    /// Log lines so far.
    pub log_lines: usize,
}

/// Kind of an emitted output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// Arrow IPC stream.
    Table,
    /// Markdown text.
    Text,
    /// SVG chart.
    Chart,
    /// PNG chart (re-encoded by the host: pixels only, no metadata chunks).
    Png,
}

impl OutputKind {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputKind::Table => "table",
            OutputKind::Text => "text",
            OutputKind::Chart | OutputKind::Png => "chart",
        }
    }

    /// File extension of a staged output of this kind.
    pub fn extension(self) -> &'static str {
        match self {
            OutputKind::Table => "arrow",
            OutputKind::Text => "md",
            OutputKind::Chart => "svg",
            OutputKind::Png => "png",
        }
    }
}

/// An output the module emitted, held in memory until the job succeeds.
#[derive(Debug, Clone)]
pub struct StagedOutput {
    /// Name, unique in the job.
    pub name: String,
    /// Kind.
    pub kind: OutputKind,
    /// Content.
    pub bytes: Vec<u8>,
}
