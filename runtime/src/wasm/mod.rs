//! The WASM host: one Engine and Linker for the process, one Store per job.
//!
//! **Architecture invariant:** a module has no I/O. Its imports are the `sandbox`
//! namespace only (checked at submission by [`validate`], and again by the Linker, which
//! defines nothing else); there is no WASI, no clock, no randomness. Every guest pointer
//! and length is checked before use, and a guest can make a host call fail, never panic.
//!
//! Limits per job: fuel (CPU), an epoch deadline (wall clock), linear memory and tables
//! (`StoreLimits`), number of queries, number and bytes of outputs, log volume. A breach
//! ends the job with [`crate::Error::Limit`] naming the limit; nothing of it is staged.

mod abi;
mod validate;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, Store, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline,
};

pub use abi::{
    CleanPng, HostState, JobContext, LogLine, OutputKind, StagedOutput, Status, check_svg,
    decode_ipc as decode_ipc_public, encode_ipc, reencode_png,
};
pub use validate::{ALLOWED_IMPORTS, MAX_MODULE_BYTES, validate};

use crate::{Error, Result};

/// Milliseconds between epoch ticks.
const EPOCH_TICK_MS: u64 = 10;

/// Per-job limits.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
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

/// Instances the pooling allocator keeps ready: more jobs than this at once fall back to
/// waiting for a slot (the job queue runs far fewer).
const POOL_INSTANCES: u32 = 64;

/// Largest linear memory a job may have (the pool's slot size).
const POOL_MEMORY_BYTES: usize = 1 << 30;

/// A job running in this process.
struct Running {
    /// The data directory of its domain (one process may serve several).
    domain: std::path::PathBuf,
    scenario_id: i64,
    actor: String,
    /// Why the job is to be interrupted (an [`Interrupt`] as `u8`), 0 while it may run.
    interrupt: Arc<AtomicU8>,
}

/// Why a running job is interrupted. The epoch callback turns it into the job's error
/// within a tick.
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
    fn from_u8(v: u8) -> Option<Interrupt> {
        match v {
            1 => Some(Interrupt::Stop),
            2 => Some(Interrupt::Cancel),
            3 => Some(Interrupt::Suspended),
            _ => None,
        }
    }

    fn error(self) -> Error {
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

/// What a running job has done so far, updated by the host functions and, for fuel, by
/// the epoch callback every tick.
#[derive(Debug, Default)]
pub struct Progress {
    queries: AtomicU32,
    outputs: AtomicU32,
    output_bytes: AtomicU64,
    fuel_used: AtomicU64,
    logs: Mutex<Vec<LogLine>>,
}

impl Progress {
    pub(crate) fn query(&self) {
        self.queries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn output(&self, bytes: usize) {
        self.outputs.fetch_add(1, Ordering::Relaxed);
        self.output_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The job's log lines are kept here only: read live by status reports, taken when
    /// the job ends.
    pub(crate) fn log(&self, line: LogLine) {
        if let Ok(mut logs) = self.logs.lock() {
            logs.push(line);
        }
    }

    fn last_error(&self) -> Option<String> {
        self.logs
            .lock()
            .ok()?
            .iter()
            .rev()
            .find(|l| l.level >= 4)
            .map(|l| l.text.clone())
    }

    fn take_logs(&self) -> Vec<LogLine> {
        self.logs
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

/// A running job's progress as reported: how much of each limit it has used.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
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

/// A job's place in the registry: its progress and limits, for reports.
struct Tracked {
    progress: Arc<Progress>,
    started: Instant,
    limits: JobLimits,
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

/// The process-wide engine, linker and compiled-module cache.
pub struct Host {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Mutex<HashMap<String, InstancePre<HostState>>>,
    running: Mutex<HashMap<String, (Running, Tracked)>>,
    /// Interruptions of single jobs asked for before the job was registered (a cancel
    /// between the job's claim and its start): applied when it registers.
    pending: Mutex<HashMap<String, Interrupt>>,
    pooling: bool,
}

/// Which running jobs an emergency stop interrupts.
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

/// Removes a job from the running registry when its run ends, however it ends.
struct Registered<'a> {
    host: &'a Host,
    job_id: String,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.host.running.lock() {
            running.remove(&self.job_id);
        }
    }
}

static SHARED: OnceLock<Arc<Host>> = OnceLock::new();

impl Host {
    /// The process's one host: one Engine, one Linker, one module cache.
    pub fn shared() -> Result<Arc<Host>> {
        if let Some(h) = SHARED.get() {
            return Ok(h.clone());
        }
        let host = Arc::new(Host::new()?);
        Ok(SHARED.get_or_init(|| host).clone())
    }

    /// Builds the engine (fuel and epoch interruption on; threads, GC and other proposals
    /// a module does not need off) and the linker with the `sandbox` imports.
    pub fn new() -> Result<Host> {
        let config = |pooling: bool| {
            let mut config = Config::new();
            config
                .consume_fuel(true)
                .epoch_interruption(true)
                .wasm_multi_memory(false)
                .wasm_memory64(false)
                .max_wasm_stack(512 << 10);
            if pooling {
                // Instances, memories and tables come from pre-reserved slots: a job start
                // is a slot reset, not an mmap.
                let mut pool = PoolingAllocationConfig::default();
                pool.total_core_instances(POOL_INSTANCES)
                    .total_memories(POOL_INSTANCES)
                    .total_tables(POOL_INSTANCES * 4)
                    .max_memories_per_module(1)
                    .max_tables_per_module(4)
                    .max_memory_size(POOL_MEMORY_BYTES)
                    .table_elements(JobLimits::default().table_elements);
                config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
            }
            config
        };
        // The pool reserves address space up front; where the machine refuses that (a
        // low `ulimit -v`), instances are allocated on demand instead.
        let (engine, pooling) = match Engine::new(&config(true)) {
            Ok(engine) => (engine, true),
            Err(e) => {
                tracing::warn!(error = %e, "pooling allocator unavailable; allocating on demand");
                (
                    Engine::new(&config(false))
                        .map_err(|e| Error::Internal(format!("engine: {e}")))?,
                    false,
                )
            }
        };
        let mut linker = Linker::new(&engine);
        abi::define(&mut linker).map_err(|e| Error::Internal(format!("linker: {e}")))?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("sandbox-epoch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(EPOCH_TICK_MS));
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(Host {
            engine,
            linker,
            cache: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            pooling,
        })
    }

    /// Whether instances come from the pooling allocator.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// Interrupts, as an emergency stop, the running jobs of the domain at `domain` that
    /// `target` names. See [`Host::interrupt`].
    pub fn stop(&self, domain: &std::path::Path, target: &StopTarget) -> Vec<String> {
        self.interrupt(domain, target, Interrupt::Stop)
    }

    /// Interrupts the running jobs of the domain at `domain` that `target` names (within
    /// a tick, 10 ms, of guest execution; a host call in progress finishes first), each
    /// failing with the error `why` gives. Returns their ids.
    pub fn interrupt(
        &self,
        domain: &std::path::Path,
        target: &StopTarget,
        why: Interrupt,
    ) -> Vec<String> {
        let Ok(running) = self.running.lock() else {
            return Vec::new();
        };
        let mut stopped = Vec::new();
        for (id, (job, _)) in running.iter().filter(|(_, (j, _))| j.domain == domain) {
            let hit = match target {
                StopTarget::Job(j) => j == id,
                StopTarget::Scenario(s) => *s == job.scenario_id,
                StopTarget::Developer(d) => *d == job.actor,
                StopTarget::Domain => true,
            };
            // The first reason given is the one the job ends with.
            if hit {
                let _ = job.interrupt.compare_exchange(
                    0,
                    why as u8,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
                stopped.push(id.clone());
            }
        }
        if stopped.is_empty()
            && let StopTarget::Job(id) = target
            && let Ok(mut pending) = self.pending.lock()
        {
            pending.insert(id.clone(), why);
        }
        stopped.sort();
        stopped
    }

    /// Forgets an interruption asked for a job that never registered (it ended before
    /// it started).
    pub fn forget(&self, job_id: &str) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(job_id);
        }
    }

    /// Ids of the jobs of the domain at `domain` running in this process.
    pub fn running(&self, domain: &std::path::Path) -> Vec<String> {
        let mut ids: Vec<String> = self
            .running
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|(_, (j, _))| j.domain == domain)
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// The progress of a job of the domain at `domain` running in this process.
    pub fn progress(&self, domain: &std::path::Path, job_id: &str) -> Option<ProgressReport> {
        let running = self.running.lock().ok()?;
        let (job, t) = running.get(job_id)?;
        if job.domain != domain {
            return None;
        }
        let p = &t.progress;
        Some(ProgressReport {
            elapsed_ms: t.started.elapsed().as_millis() as u64,
            deadline_ms: t.limits.deadline_ms,
            fuel_used: p.fuel_used.load(Ordering::Relaxed),
            fuel_limit: t.limits.fuel,
            queries: p.queries.load(Ordering::Relaxed),
            max_queries: t.limits.max_queries,
            outputs: p.outputs.load(Ordering::Relaxed),
            output_bytes: p.output_bytes.load(Ordering::Relaxed),
            log_lines: p.logs.lock().map(|l| l.len()).unwrap_or(0),
        })
    }

    /// The log lines so far of a job of the domain at `domain` running in this process.
    pub fn logs(&self, domain: &std::path::Path, job_id: &str) -> Option<Vec<LogLine>> {
        let running = self.running.lock().ok()?;
        let (job, t) = running.get(job_id)?;
        if job.domain != domain {
            return None;
        }
        t.progress.logs.lock().ok().map(|l| l.clone())
    }

    /// Compiles (or takes from the cache) a validated module.
    pub fn prepare(&self, sha256: &str, bytes: &[u8]) -> Result<InstancePre<HostState>> {
        self.prepare_with(sha256, || Ok(bytes.to_vec()))
    }

    /// The compiled module named by `sha256`: from the cache, or compiled from the bytes
    /// `load` gives (read only when the cache does not hold it).
    pub fn prepare_with(
        &self,
        sha256: &str,
        load: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<InstancePre<HostState>> {
        if let Some(pre) = self
            .cache
            .lock()
            .map_err(|_| Error::Internal("module cache poisoned".into()))?
            .get(sha256)
        {
            return Ok(pre.clone());
        }
        let bytes = &load()?;
        validate(bytes)?;
        let module = Module::new(&self.engine, bytes)
            .map_err(|e| Error::Guest(format!("module does not compile: {e}")))?;
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| Error::Guest(format!("module does not link: {e}")))?;
        self.cache
            .lock()
            .map_err(|_| Error::Internal("module cache poisoned".into()))?
            .insert(sha256.to_string(), pre.clone());
        Ok(pre)
    }

    /// Runs a module's `run` export under the limits. On success, returns what the job
    /// emitted and logged; on any failure, the typed error and nothing else.
    pub fn run(
        &self,
        pre: &InstancePre<HostState>,
        job: JobContext,
        limits: &JobLimits,
    ) -> (Result<RunOutcome>, RunStats) {
        let store_limits: StoreLimits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .table_elements(limits.table_elements)
            .instances(1)
            .tables(4)
            .memories(1)
            .trap_on_grow_failure(false)
            .build();
        let early = self
            .pending
            .lock()
            .ok()
            .and_then(|mut p| p.remove(&job.job_id));
        let interrupt = Arc::new(AtomicU8::new(early.map_or(0, |w| w as u8)));
        let progress = Arc::new(Progress::default());
        let _registered = match self.running.lock() {
            Ok(mut running) => {
                running.insert(
                    job.job_id.clone(),
                    (
                        Running {
                            domain: job.domain.layout().root().to_path_buf(),
                            scenario_id: job.scenario_id,
                            actor: job.actor.clone(),
                            interrupt: interrupt.clone(),
                        },
                        Tracked {
                            progress: progress.clone(),
                            started: Instant::now(),
                            limits: limits.clone(),
                        },
                    ),
                );
                Registered {
                    host: self,
                    job_id: job.job_id.clone(),
                }
            }
            Err(_) => {
                return (
                    Err(Error::Internal("job registry poisoned".into())),
                    RunStats::default(),
                );
            }
        };
        let state = HostState::new(job, limits.clone(), store_limits, progress.clone());
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.store_limits);
        // Every epoch tick, the guest is checked against the wall-clock deadline and for
        // an interruption (emergency stop, cancel, suspension), and its fuel is reported.
        let deadline = Instant::now() + Duration::from_millis(limits.deadline_ms);
        let fuel_limit = limits.fuel;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            if let Ok(left) = ctx.get_fuel() {
                progress
                    .fuel_used
                    .store(fuel_limit.saturating_sub(left), Ordering::Relaxed);
            }
            if let Some(why) = Interrupt::from_u8(interrupt.load(Ordering::SeqCst)) {
                ctx.data_mut().fatal = Some(why.error());
                return Ok(UpdateDeadline::Interrupt);
            }
            if Instant::now() >= deadline {
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(UpdateDeadline::Continue(1))
        });
        if let Err(e) = store.set_fuel(limits.fuel) {
            return (
                Err(Error::Internal(format!("fuel: {e}"))),
                RunStats::default(),
            );
        }
        let result = (|| -> Result<()> {
            let instance = pre
                .instantiate(&mut store)
                .map_err(|e| map_trap(e, store.data_mut()))?;
            let run = instance
                .get_typed_func::<(), i32>(&mut store, "run")
                .map_err(|e| Error::Guest(format!("export `run`: {e}")))?;
            let code = run
                .call(&mut store, ())
                .map_err(|e| map_trap(e, store.data_mut()))?;
            if code != 0 {
                let reason = store
                    .data()
                    .last_error_log()
                    .unwrap_or_else(|| "the module gave no reason".into());
                return Err(Error::Guest(format!("module returned {code}: {reason}")));
            }
            Ok(())
        })();
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.into_data();
        let stats = RunStats {
            fuel_used,
            queries: state.queries,
            logs: state.progress.take_logs(),
            emitted: state
                .outputs
                .iter()
                .map(|o| Emitted {
                    name: o.name.clone(),
                    kind: o.kind,
                    bytes: o.bytes.len(),
                })
                .collect(),
        };
        match result {
            Ok(()) => (
                Ok(RunOutcome {
                    outputs: state.outputs,
                }),
                stats,
            ),
            Err(e) => (Err(e), stats),
        }
    }
}

/// What a successful run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// Outputs, in the order emitted.
    pub outputs: Vec<StagedOutput>,
}

/// What a run used, successful or not.
#[derive(Debug, Default, Clone)]
pub struct RunStats {
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Queries made.
    pub queries: u32,
    /// Log lines.
    pub logs: Vec<LogLine>,
    /// What the module emitted (staged only if the job succeeds).
    pub emitted: Vec<Emitted>,
}

/// An output a module emitted, as recorded in the job's audit event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Emitted {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: OutputKind,
    /// Size in bytes.
    pub bytes: usize,
}

fn map_trap(e: wasmtime::Error, state: &mut HostState) -> Error {
    if let Some(fatal) = state.fatal.take() {
        return fatal;
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Error::Limit {
            limit: "fuel",
            message: "the module used all its fuel".into(),
        },
        Some(Trap::Interrupt) => Error::Limit {
            limit: "deadline",
            message: "the module ran past its wall-clock deadline".into(),
        },
        Some(Trap::StackOverflow) => Error::Limit {
            limit: "stack",
            message: "the module overflowed its stack".into(),
        },
        Some(Trap::UnreachableCodeReached) => {
            let reason = state
                .last_error_log()
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            Error::Guest(format!("module panicked or aborted{reason}"))
        }
        Some(trap) => Error::Guest(format!("module trapped: {trap}")),
        None => Error::Guest(format!("module failed: {e}")),
    }
}
