//! The WASM host: one Engine and Linker for the process, one Store per job.
//!
//! **Architecture invariant:** a module has no I/O. Its imports are the `sandbox`
//! namespace only (checked at submission by [`validate`], and again by the Linker, which
//! defines nothing else); there is no WASI, no clock, no randomness. Every guest pointer
//! and length is checked before use, and a guest can make a host call fail, never panic.
//! The host holds nothing of the domain: a job's only way to data is the
//! [`sandbox_core::port::QueryPort`] in its [`JobContext`], and this crate depends neither
//! on the store nor on the domain store's readers (the dependency test keeps it so).
//!
//! Limits per job: fuel (CPU), an epoch deadline (wall clock), linear memory and tables
//! (`StoreLimits`), number of queries, number and bytes of outputs, log volume. A breach
//! ends the job with [`sandbox_core::Error::Limit`] naming the limit; nothing of it is
//! staged.

#![forbid(unsafe_code)]

mod abi;
mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, Store, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline,
};

pub use abi::{CleanPng, HostState, JobContext, Status, check_svg, decode_ipc, reencode_png};
pub use sandbox_core::job::{
    Interrupt, JobLimits, LogLine, OutputKind, ProgressReport, StagedOutput, StopTarget,
};
pub use validate::{ALLOWED_IMPORTS, MAX_MODULE_BYTES, validate};

use sandbox_core::{Error, Result};

/// Milliseconds between epoch ticks.
const EPOCH_TICK_MS: u64 = 10;

/// Instances the pooling allocator keeps ready: more jobs than this at once fall back to
/// waiting for a slot (the job queue runs far fewer).
const POOL_INSTANCES: u32 = 64;

/// Largest linear memory a job may have (the pool's slot size).
const POOL_MEMORY_BYTES: usize = 1 << 30;

/// A job running in this process.
struct Running {
    /// The data directory of its domain (one process may serve several).
    domain: PathBuf,
    scenario_id: i64,
    actor: String,
    /// Why the job is to be interrupted (an [`Interrupt`] as `u8`), 0 while it may run.
    interrupt: Arc<AtomicU8>,
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

/// A job's place in the registry: its progress and limits, for reports.
struct Tracked {
    progress: Arc<Progress>,
    started: Instant,
    limits: JobLimits,
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

/// Removes a job from the running registry when its run ends, however it ends.
struct Registered<'a> {
    host: &'a Host,
    job_id: String,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.host.registry().remove(&self.job_id);
    }
}

static SHARED: OnceLock<Arc<Host>> = OnceLock::new();

/// Where compiled modules are kept across processes: `SANDBOX_COMPILED_CACHE` (a folder,
/// or `off`), else the user's cache folder (`$XDG_CACHE_HOME/sandbox/compiled`, else
/// `~/.cache/sandbox/compiled`), as wasmtime's own command does. The folder holds machine
/// code the host runs: it must be writable by the account that runs Sandbox only, as its
/// data directory is.
pub fn compiled_dir() -> Option<PathBuf> {
    match std::env::var_os("SANDBOX_COMPILED_CACHE") {
        Some(v) if v == "off" => return None,
        Some(v) if !v.is_empty() => return Some(PathBuf::from(v)),
        _ => {}
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("sandbox").join("compiled"))
}

/// wasmtime's cache of compiled modules in `dir` (created, absolute).
fn compiled_cache(dir: &Path) -> Result<wasmtime::Cache> {
    std::fs::create_dir_all(dir)?;
    let dir = std::path::absolute(dir)?;
    let mut config = wasmtime::CacheConfig::new();
    config.with_directory(dir);
    wasmtime::Cache::new(config).map_err(|e| Error::Internal(format!("compiled cache: {e}")))
}

impl Host {
    /// The process's one host: one Engine, one Linker, one module cache, and compiled
    /// modules kept across processes in [`compiled_dir`] (when there is one).
    pub fn shared() -> Result<Arc<Host>> {
        if let Some(h) = SHARED.get() {
            return Ok(h.clone());
        }
        let host = Arc::new(Host::build(compiled_dir().as_deref())?);
        Ok(SHARED.get_or_init(|| host).clone())
    }

    /// Builds the engine (fuel and epoch interruption on; threads, GC and other proposals
    /// a module does not need off) and the linker with the `sandbox` imports, compiling
    /// in memory only.
    pub fn new() -> Result<Host> {
        Host::build(None)
    }

    /// As [`Host::new`], keeping compiled modules in the folder `compiled` across processes
    /// (wasmtime's cache, keyed by the module's bytes, the engine's configuration and
    /// wasmtime's version): a module compiled once is not compiled again by the next
    /// process. A cache that cannot be set up is logged and left out.
    pub fn with_cache(compiled: &Path) -> Result<Host> {
        Host::build(Some(compiled))
    }

    fn build(compiled: Option<&Path>) -> Result<Host> {
        let cache = compiled.and_then(|dir| match compiled_cache(dir) {
            Ok(cache) => Some(cache),
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "no cache of compiled modules");
                None
            }
        });
        let config = |pooling: bool| {
            let mut config = Config::new();
            config.cache(cache.clone());
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

    /// The registry of running jobs. A poisoned lock is taken over rather than given up:
    /// the registry only gains and loses whole entries, so it stays true, and an
    /// interruption must reach the jobs it names whatever panicked before (fail closed).
    fn registry(&self) -> MutexGuard<'_, HashMap<String, (Running, Tracked)>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn covers(job_id: &str, job: &Running, domain: &Path, target: &StopTarget) -> bool {
        job.domain == domain
            && match target {
                StopTarget::Job(j) => j == job_id,
                StopTarget::Scenario(s) => *s == job.scenario_id,
                StopTarget::Developer(d) => *d == job.actor,
                StopTarget::Domain => true,
            }
    }

    /// The running jobs of the domain at `domain` that `target` covers, untouched.
    pub fn covered(&self, domain: &Path, target: &StopTarget) -> Vec<String> {
        let mut ids: Vec<String> = self
            .registry()
            .iter()
            .filter(|(id, (job, _))| Self::covers(id, job, domain, target))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Interrupts the running jobs of the domain at `domain` that `target` names (within
    /// a tick, 10 ms, of guest execution; a host call in progress finishes first), each
    /// failing with the error `why` gives (the first reason given is the one a job ends
    /// with). A single job not running yet is interrupted when it registers. Returns the
    /// ids interrupted.
    pub fn interrupt(&self, domain: &Path, target: &StopTarget, why: Interrupt) -> Vec<String> {
        let running = self.registry();
        let mut stopped = Vec::new();
        for (id, (job, _)) in running.iter() {
            if Self::covers(id, job, domain, target) {
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
        {
            self.pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(id.clone(), why);
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
    pub fn running(&self, domain: &Path) -> Vec<String> {
        self.covered(domain, &StopTarget::Domain)
    }

    /// The progress of a job of the domain at `domain` running in this process.
    pub fn progress(&self, domain: &Path, job_id: &str) -> Option<ProgressReport> {
        let running = self.registry();
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
    pub fn logs(&self, domain: &Path, job_id: &str) -> Option<Vec<LogLine>> {
        let running = self.registry();
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
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&job.job_id);
        let interrupt = Arc::new(AtomicU8::new(early.map_or(0, |w| w as u8)));
        let progress = Arc::new(Progress::default());
        let _registered = {
            self.registry().insert(
                job.job_id.clone(),
                (
                    Running {
                        domain: job.domain.clone(),
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

impl sandbox_core::port::Interrupter for Host {
    fn covered(&self, domain: &Path, target: &StopTarget) -> Result<Vec<String>> {
        Ok(Host::covered(self, domain, target))
    }

    fn interrupt(&self, domain: &Path, target: &StopTarget, why: Interrupt) -> Result<Vec<String>> {
        Ok(Host::interrupt(self, domain, target, why))
    }
}
