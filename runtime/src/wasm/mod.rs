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
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use wasmtime::{
    Config, Engine, InstancePre, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, Trap,
};

pub use abi::{
    HostState, JobContext, LogLine, OutputKind, StagedOutput, Status,
    decode_ipc as decode_ipc_public, encode_ipc,
};
pub use validate::{MAX_MODULE_BYTES, validate};

use crate::{Error, Result};

/// Milliseconds between epoch ticks.
const EPOCH_TICK_MS: u64 = 10;

/// Per-job limits.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

/// The process-wide engine, linker and compiled-module cache.
pub struct Host {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Mutex<HashMap<String, InstancePre<HostState>>>,
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
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .epoch_interruption(true)
            .wasm_multi_memory(false)
            .wasm_memory64(false)
            .max_wasm_stack(512 << 10);
        let engine = Engine::new(&config).map_err(|e| Error::Internal(format!("engine: {e}")))?;
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
        })
    }

    /// Compiles (or takes from the cache) a validated module.
    pub fn prepare(&self, sha256: &str, bytes: &[u8]) -> Result<InstancePre<HostState>> {
        if let Some(pre) = self
            .cache
            .lock()
            .map_err(|_| Error::Internal("module cache poisoned".into()))?
            .get(sha256)
        {
            return Ok(pre.clone());
        }
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
        let state = HostState::new(job, limits.clone(), store_limits);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.store_limits);
        let ticks = limits.deadline_ms.div_ceil(EPOCH_TICK_MS).max(1);
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
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
                    .unwrap_or("the module gave no reason")
                    .to_string();
                return Err(Error::Guest(format!("module returned {code}: {reason}")));
            }
            Ok(())
        })();
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.into_data();
        let stats = RunStats {
            fuel_used,
            queries: state.queries,
            logs: state.logs.clone(),
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
