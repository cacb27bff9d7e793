//! The host ABI: a guest that calls the `sandbox` imports with arguments the fuzzer
//! chooses, over a memory the fuzzer writes and grows. The guest is one fixed module, an
//! interpreter compiled once: its first query (empty SQL) is answered with the fuzzer's
//! script, which it then runs, one import call per step. The query port is a stand-in
//! whose answers the guest's SQL chooses (an Arrow table, a refusal, the budget's refusal,
//! a failure, raw bytes), so that every path of the host functions is reached.
//!
//! The host never panics; a job ends as a success or with a guest or limit error; what it
//! staged keeps the limits and the formats of its kinds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use sandbox_core::port::{Asker, QueryPort};
use sandbox_core::refusal::{Refusal, Rule};
use sandbox_runtime::Error;
use sandbox_runtime::wasm::{Host, JobContext, JobLimits, OutputKind, decode_ipc};

/// The interpreter. Its script starts at 0x10000; a step is an opcode byte and its
/// arguments, each an argument byte: below 0x80 itself, 0x80..0xC0 an address in the
/// first four pages, 0xFC -1, 0xFD `i32::MIN`, 0xFE `i32::MAX`, else four raw bytes.
pub const INTERPRETER: &str = r#"(module
  (import "sandbox" "response_len" (func $response_len (result i32)))
  (import "sandbox" "response_read" (func $response_read (param i32 i32) (result i32)))
  (import "sandbox" "query" (func $query (param i32 i32) (result i32)))
  (import "sandbox" "query_with" (func $query_with (param i32 i32 f64) (result i32)))
  (import "sandbox" "params" (func $params (result i32)))
  (import "sandbox" "emit" (func $emit (param i32 i32 i32 i32 i32) (result i32)))
  (import "sandbox" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $pc (mut i32) (i32.const 0))
  (global $end (mut i32) (i32.const 0))
  (func $byte (result i32)
    (if (result i32) (i32.ge_u (global.get $pc) (global.get $end))
      (then (i32.const 0))
      (else
        (i32.load8_u (global.get $pc))
        (global.set $pc (i32.add (global.get $pc) (i32.const 1))))))
  (func $word (result i32)
    (i32.or
      (i32.or (call $byte) (i32.shl (call $byte) (i32.const 8)))
      (i32.or (i32.shl (call $byte) (i32.const 16)) (i32.shl (call $byte) (i32.const 24)))))
  (func $arg (result i32) (local $b i32)
    (local.set $b (call $byte))
    (if (result i32) (i32.lt_u (local.get $b) (i32.const 0x80))
      (then (local.get $b))
      (else (if (result i32) (i32.lt_u (local.get $b) (i32.const 0xC0))
        (then (i32.add
          (i32.shl (i32.sub (local.get $b) (i32.const 0x80)) (i32.const 12))
          (i32.shl (call $byte) (i32.const 4))))
        (else (if (result i32) (i32.eq (local.get $b) (i32.const 0xFC))
          (then (i32.const -1))
          (else (if (result i32) (i32.eq (local.get $b) (i32.const 0xFD))
            (then (i32.const 0x80000000))
            (else (if (result i32) (i32.eq (local.get $b) (i32.const 0xFE))
              (then (i32.const 0x7FFFFFFF))
              (else (call $word))))))))))))
  (func (export "run") (result i32) (local $op i32) (local $n i32) (local $p i32)
    (drop (call $query (i32.const 0) (i32.const 0)))
    (local.set $n (call $response_len))
    (if (i32.gt_u (local.get $n) (i32.const 0x10000)) (then (return (i32.const 1))))
    (drop (call $response_read (i32.const 0x10000) (local.get $n)))
    (global.set $pc (i32.const 0x10000))
    (global.set $end (i32.add (i32.const 0x10000) (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (global.get $pc) (global.get $end)))
        (local.set $op (i32.rem_u (call $byte) (i32.const 10)))
        (if (i32.eq (local.get $op) (i32.const 0)) (then (drop (call $response_len))))
        (if (i32.eq (local.get $op) (i32.const 1))
          (then (drop (call $response_read (call $arg) (call $arg)))))
        (if (i32.eq (local.get $op) (i32.const 2))
          (then (drop (call $query (call $arg) (call $arg)))))
        (if (i32.eq (local.get $op) (i32.const 3))
          (then (drop (call $query_with (call $arg) (call $arg)
            (f64.reinterpret_i64 (i64.or
              (i64.extend_i32_u (call $word))
              (i64.shl (i64.extend_i32_u (call $word)) (i64.const 32))))))))
        (if (i32.eq (local.get $op) (i32.const 4)) (then (drop (call $params))))
        (if (i32.eq (local.get $op) (i32.const 5))
          (then (drop (call $emit (call $arg) (call $arg) (call $arg) (call $arg) (call $arg)))))
        (if (i32.eq (local.get $op) (i32.const 6))
          (then (drop (call $log (call $arg) (call $arg) (call $arg)))))
        (if (i32.eq (local.get $op) (i32.const 7))
          (then (drop (call $response_read (call $arg) (call $response_len)))))
        (if (i32.eq (local.get $op) (i32.const 8)) (then (drop (memory.grow (call $arg)))))
        (if (i32.eq (local.get $op) (i32.const 9))
          (then
            (local.set $p (call $arg))
            (local.set $n (call $byte))
            (block $copied
              (loop $copy
                (br_if $copied (i32.eqz (local.get $n)))
                (i32.store8 (local.get $p) (call $byte))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                (br $copy)))))
        (br $next)))
    (i32.const 0))
)"#;

/// The limits of a fuzzed job: small, so that every limit is reached.
pub fn limits() -> JobLimits {
    JobLimits {
        fuel: 20_000_000,
        deadline_ms: 5_000,
        memory_bytes: 4 << 20,
        max_queries: 20,
        max_outputs: 5,
        max_output_bytes: 64 << 10,
        max_total_output_bytes: 128 << 10,
        max_log_bytes: 16 << 10,
        ..JobLimits::default()
    }
}

/// The stand-in query port: the empty query gets the script once; any other query gets
/// what its first character asks for: `a` a table, `b` a refusal, `c` the budget's
/// refusal, `d` a failure, `e` a megabyte, `f` the table with the bytes that follow
/// written over it (each three: a little-endian offset, a byte), else its own text.
struct Port {
    script: Mutex<Option<Vec<u8>>>,
}

impl QueryPort for Port {
    fn query(&self, _: &Asker, sql: &str, _: Option<f64>) -> sandbox_runtime::Result<Vec<u8>> {
        if sql.is_empty()
            && let Some(script) = self.script.lock().ok().and_then(|mut s| s.take())
        {
            return Ok(script);
        }
        match sql.as_bytes().first() {
            Some(b'a') => Ok(table().to_vec()),
            Some(b'b') => Err(Error::Refused(Refusal::new(
                Rule::ColumnAccess,
                "a refusal",
            ))),
            Some(b'c') => Err(Error::Refused(Refusal::new(
                Rule::BudgetExhausted,
                "the budget",
            ))),
            Some(b'd') => Err(Error::Internal("a failure".into())),
            Some(b'e') => Ok(vec![0x5a; 1 << 20]),
            Some(b'f') => {
                let mut t = table().to_vec();
                for p in sql.as_bytes()[1..].chunks_exact(3) {
                    let at = usize::from(u16::from_le_bytes([p[0], p[1]])) % t.len();
                    t[at] = p[2];
                }
                Ok(t)
            }
            _ => Ok(sql.as_bytes().to_vec()),
        }
    }
}

/// An answer as the mediator sends one: an Arrow IPC stream of one small table.
pub fn table() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let batch = arrow::array::RecordBatch::try_from_iter([
            (
                "district",
                Arc::new(arrow::array::StringArray::from(vec!["hexi", "hedong"]))
                    as arrow::array::ArrayRef,
            ),
            (
                "n",
                Arc::new(arrow::array::Float64Array::from(vec![12.5, 40.0])) as _,
            ),
        ])
        .expect("a batch");
        let mut out = Vec::new();
        let mut writer =
            arrow::ipc::writer::StreamWriter::try_new(&mut out, &batch.schema()).expect("writer");
        writer.write(&batch).expect("write");
        writer.finish().expect("finish");
        drop(writer);
        out
    })
}

struct Abi {
    host: Host,
    pre: wasmtime::InstancePre<sandbox_host::HostState>,
}

fn abi() -> &'static Abi {
    static ABI: OnceLock<Abi> = OnceLock::new();
    ABI.get_or_init(|| {
        let host = Host::new().expect("a host");
        let bytes = wat::parse_str(INTERPRETER).expect("the interpreter compiles");
        let pre = host
            .prepare("fuzz-interpreter", &bytes)
            .expect("the interpreter validates");
        Abi { host, pre }
    })
}

/// The target: the input is the script.
pub fn run(data: &[u8]) {
    static JOBS: AtomicU64 = AtomicU64::new(0);
    let a = abi();
    let script = data[..data.len().min(0x10000)].to_vec();
    let limits = limits();
    let job = JobContext {
        port: Arc::new(Port {
            script: Mutex::new(Some(script)),
        }),
        domain: std::path::PathBuf::from("/nonexistent/fuzz"),
        scenario_id: 1,
        job_id: format!("job-fuzz-{}", JOBS.fetch_add(1, Ordering::Relaxed)),
        actor: "dev-fuzz".into(),
        params_json: r#"{"district":"hexi","n":3}"#.into(),
    };
    let (outcome, stats) = a.host.run(&a.pre, job, &limits);
    let logged: usize = stats.logs.iter().map(|l| l.text.len()).sum();
    assert!(logged <= limits.max_log_bytes, "{logged} bytes of log kept");
    match outcome {
        Ok(outcome) => {
            assert!(outcome.outputs.len() <= limits.max_outputs as usize);
            let total: usize = outcome.outputs.iter().map(|o| o.bytes.len()).sum();
            assert!(
                total <= limits.max_total_output_bytes,
                "{total} bytes staged"
            );
            for o in &outcome.outputs {
                assert!(o.bytes.len() <= limits.max_output_bytes);
                assert!(
                    !o.name.is_empty()
                        && o.name.len() <= 64
                        && o.name
                            .bytes()
                            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')),
                    "output name {:?}",
                    o.name
                );
                match o.kind {
                    OutputKind::Table => assert!(decode_ipc(&o.bytes).is_ok()),
                    OutputKind::Text => assert!(std::str::from_utf8(&o.bytes).is_ok()),
                    _ => {}
                }
            }
        }
        Err(Error::Guest(_) | Error::Limit { .. }) => {}
        Err(e) => panic!("a job ended with {e:?}"),
    }
}
