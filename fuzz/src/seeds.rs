//! The seed corpora: the goldens' queries, the example policies and scenarios, valid
//! files and bodies, scripts that reach every import. `cargo run -p sandbox-fuzz --bin
//! fuzz-seeds` writes them where `cargo fuzz` looks (`fuzz/libfuzzer/corpus/TARGET`); the
//! replay test runs them and mutates them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::world;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Panics of a dependency on a caller's bytes that were contained (answered as errors) in
/// this process.
pub static CONTAINED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Writes the seeds of `target` into `dir` (created if missing), as `seed-NNNN`; returns
/// how many.
pub fn write(target: &str, dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let seeds = seeds(target);
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:04}")), seed)?;
    }
    Ok(seeds.len())
}

/// The libFuzzer binaries' start: with `SANDBOX_FUZZ_SEEDS` naming a folder, the target's
/// seeds are written there first (libFuzzer reads its corpus folders after this), so that
/// a run needs no other build to seed its corpus.
///
/// libFuzzer's panic hook ends the process on every panic, caught or not. A dependency's
/// panic on a caller's bytes inside `sandbox_mediator::contain::contained` is answered as
/// a typed error, which is what the oracle asks: such panics are counted and let through
/// (the answer is then judged like any other); every other panic is a finding as before.
pub fn on_start(target: &str) {
    let finding = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if sandbox_mediator::contain::active() {
            CONTAINED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Each place once, for the run's log.
            static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
            let place = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let mut seen = SEEN
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !seen.contains(&place) {
                eprintln!("contained panic (answered as an input error): {info}");
                seen.push(place);
            }
        } else {
            finding(info);
        }
    }));
    if let Some(dir) = std::env::var_os("SANDBOX_FUZZ_SEEDS") {
        let dir = PathBuf::from(dir);
        match write(target, &dir) {
            Ok(n) => eprintln!("{target}: {n} seeds in {}", dir.display()),
            Err(e) => panic!("writing the seeds of {target} into {}: {e}", dir.display()),
        }
    }
}

/// The seeds of `target`.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "sql" => sql().into_iter().map(String::into_bytes).collect(),
        "sql_structured" | "sql_structured_plan" => (0u64..64)
            .map(|s| {
                (0..256u64)
                    .map(|i| (i.wrapping_mul(2654435761).wrapping_add(s * 977) >> 7) as u8)
                    .collect()
            })
            .collect(),
        "config" => config(),
        "ingest" | "ingest_inspect" => ingest(),
        "abi" => abi(),
        "api" => api(),
        _ => Vec::new(),
    }
}

/// The queries of the goldens (over their own tables, and renamed onto `people`), and a
/// few of the fixture's own.
pub fn sql() -> Vec<String> {
    let mut out = Vec::new();
    let dir = repo().join("tests/golden");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for block in text.split("\nquery\n").skip(1) {
            let Some((sql, _)) = block.split_once("\n----") else {
                continue;
            };
            let sql = sql.trim().to_string();
            let renamed = [
                ("residents", "people"),
                ("citizen_id", "id"),
                ("pums_dup", "people_t"),
                ("pums_null", "people"),
                ("pums", "people"),
                ("pid", "id"),
                ("educ", "district"),
                ("race", "district"),
                ("married", "district"),
                ("sex", "district"),
            ]
            .iter()
            .fold(sql.clone(), |s, (from, to)| s.replace(from, to));
            out.push(sql);
            out.push(renamed);
        }
    }
    out.extend(
        [
            "SELECT district, COUNT(*) FROM people GROUP BY district",
            "SELECT district, AVG(income), SUM(age) FROM people_t GROUP BY district",
            "SELECT COUNT(DISTINCT id) FROM people WHERE born < DATE '1980-01-01'",
            "SELECT district, MEDIAN(income) FROM people WHERE name LIKE 'CANARY%' GROUP BY district",
            "SELECT SUM(income) / COUNT(*) FROM people_t WHERE age BETWEEN 30 AND 60",
            "SELECT VAR_POP(age), STDDEV(income) FROM people",
            "SELECT district, COUNT(*) FROM people_t WHERE name <> 'x' GROUP BY district",
        ]
        .map(String::from),
    );
    out
}

fn config() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (prefix, folder) in [(0u8, "examples/policies"), (1u8, "examples/scenarios")] {
        let mut files: Vec<_> = std::fs::read_dir(repo().join(folder))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for f in files {
            if let Ok(text) = std::fs::read(&f) {
                out.push([vec![prefix], text].concat());
            }
        }
    }
    out.push(
        [
            vec![0],
            world::people_policy("people", "threshold").into_bytes(),
        ]
        .concat(),
    );
    out
}

/// `people` as Parquet, written by arrow's own writer.
pub fn people_parquet() -> Vec<u8> {
    let csv = world::people_csv();
    let format = arrow::csv::reader::Format::default().with_header(true);
    let (schema, _) = format
        .infer_schema(std::io::Cursor::new(csv.as_bytes()), None)
        .expect("the fixture's CSV");
    let schema = Arc::new(schema);
    let reader = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_format(format)
        .build(std::io::Cursor::new(csv.into_bytes()))
        .expect("a reader");
    let mut out = Vec::new();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(100))
        .build();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut out, schema, Some(props)).expect("a writer");
    for batch in reader {
        writer.write(&batch.expect("a batch")).expect("write");
    }
    writer.close().expect("close");
    out
}

fn ingest() -> Vec<Vec<u8>> {
    let csv = world::people_csv();
    let short: String = csv.lines().take(12).map(|l| format!("{l}\n")).collect();
    vec![
        [vec![0], csv.clone().into_bytes()].concat(),
        [vec![0], short.into_bytes()].concat(),
        [vec![0], b"\xEF\xBB\xBF".to_vec(), csv.into_bytes()].concat(),
        [vec![1], people_parquet()].concat(),
    ]
}

/// Script steps for [`crate::abi::INTERPRETER`].
fn abi() -> Vec<Vec<u8>> {
    // Writes `bytes` at `addr` (an address byte pair: 0x80 + page*16 + ..): opcode 9.
    let write = |addr: [u8; 2], bytes: &[u8]| {
        let mut s = vec![9, addr[0], addr[1], bytes.len() as u8];
        s.extend_from_slice(bytes);
        s
    };
    let at = [0x81, 0x00]; // 0x1000
    let name = [0x82, 0x00]; // 0x2000
    let buf = [0x84, 0x00]; // 0x4000
    vec![
        // query "a..." → read the answer → emit it as a table.
        [
            write(at, b"a table"),
            vec![2, at[0], at[1], 7],
            vec![7, buf[0], buf[1]],
            write(name, b"t1"),
            vec![5, 1, name[0], name[1], 2, buf[0], buf[1], 0xFF],
            (table_len() as u32).to_le_bytes().to_vec(),
        ]
        .concat(),
        // query "f..." (the table, one byte changed) → read the answer → emit it.
        [
            write(at, b"f\x10\x00\x41"),
            vec![2, at[0], at[1], 4],
            vec![7, buf[0], buf[1]],
            write(name, b"t2"),
            vec![5, 1, name[0], name[1], 2, buf[0], buf[1], 0xFF],
            (table_len() as u32).to_le_bytes().to_vec(),
        ]
        .concat(),
        // a log line and a text output.
        [
            write(at, b"hello from the guest"),
            vec![6, 2, at[0], at[1], 20],
            write(name, b"note"),
            vec![5, 2, name[0], name[1], 4, at[0], at[1], 20],
        ]
        .concat(),
        // refusal, budget, failure, raw bytes; params; query_with a NaN; memory.grow.
        [
            write(at, b"bcde"),
            vec![2, at[0], at[1], 1, 0, 7, 0xFC],
            vec![2, 0xFF, 0x01, 0x10, 0, 0, 3, 0, 7, 0xFC],
            vec![3, at[0], at[1], 1, 0, 0, 0, 0, 0, 0, 0xF8, 0x7F],
            vec![4, 0, 1, 0xFC, 0xFC],
            vec![8, 3, 8, 0xFE, 0],
        ]
        .concat(),
        // emit every kind, names out of bounds.
        [
            vec![5, 3, 0xFE, 4, 0, 0],
            vec![5, 4, 0, 0xFD, 0, 0],
            vec![5, 0xFC, 0, 0, 0, 0],
            vec![1, 0xFE, 0xFE],
        ]
        .concat(),
    ]
}

fn table_len() -> usize {
    crate::abi::table().len()
}

/// A small valid module, base64.
fn module_base64() -> String {
    let bytes = wat::parse_str(
        r#"(module
  (import "sandbox" "emit" (func $emit (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "note")
  (data (i32.const 16) "hello")
  (func (export "run") (result i32)
    (call $emit (i32.const 2) (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 5))))"#,
    )
    .expect("the module compiles");
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
}

fn api() -> Vec<Vec<u8>> {
    let today = chrono::Utc::now().date_naive();
    let spec = format!(
        "name = \"seeded\"\npurpose = \"A scenario a seed applies for\"\nvalid_from = \"{today}\"\nvalid_until = \"{}\"\nresponse_plan = \"the operator's duty officer is called; the scenario's jobs are stopped; the developer notifies the data bureau within the hour\"\n[budget]\nepsilon = 1.0\nepsilon_per_query = 0.5\n[[dataset]]\nname = \"people\"\ncolumns = [\"district\"]\n[agreement]\nrights_and_obligations = \"the developer uses the data for the stated purpose only and keeps the products' scope\"\nsecurity_requirements = \"no attempt to re-identify anyone; credentials kept by the named developer only\"\nlegal_basis = \"the data bureau's authorization of the public data operation\"\nbreach = \"suspension of the scenario, revocation of the authorization and liability under the agreement\"\n",
        today + chrono::Days::new(2)
    );
    let module = module_base64();
    let bodies: Vec<(u8, u8, serde_json::Value)> = vec![
        (
            0,
            0,
            serde_json::json!({"name": "dev-new", "role": "developer"}),
        ),
        (1, 0, serde_json::json!({})),
        (2, 0, serde_json::json!({"reason": "leaked"})),
        (
            3,
            0,
            serde_json::json!({"until": "2030-01-01", "reason": "trained"}),
        ),
        (4, 0, serde_json::json!({"reason": "on leave"})),
        (5, 0, serde_json::json!({"reason": "left"})),
        (
            6,
            1,
            serde_json::json!({"policy": world::people_policy("seeded", "dp"), "csv": world::people_csv(), "file_name": "seeded.csv"}),
        ),
        (7, 2, serde_json::json!({"spec": spec})),
        (8, 0, serde_json::json!({"reason": "fine"})),
        (9, 0, serde_json::json!({"reason": "no"})),
        (10, 0, serde_json::json!({"reason": "probing"})),
        (11, 0, serde_json::json!({"reason": "cleared"})),
        (12, 0, serde_json::json!({"reason": "ended"})),
        (
            13,
            0,
            serde_json::json!({"max_refusals": 0, "idle_days": 90}),
        ),
        (14, 2, serde_json::json!({"module": module})),
        (
            15,
            2,
            serde_json::json!({"scenario": "victim", "module": module, "params": {"k": 1}, "limits": {"fuel": 1000000}}),
        ),
        (16, 2, serde_json::json!({"reason": "not needed"})),
        (17, 0, serde_json::json!({"reason": "fine"})),
        (18, 3, serde_json::json!({"reason": "no"})),
        (19, 0, serde_json::json!({"reason": "round the numbers"})),
        (
            20,
            3,
            serde_json::json!({"scope": "developer", "target": "victim-b", "reason": "incident"}),
        ),
        (21, 3, serde_json::json!({"reason": "over"})),
        (22, 2, serde_json::json!({"language": "zh-CN"})),
        (
            23,
            0,
            serde_json::json!({"default_language": "en", "time_zone": "Asia/Shanghai"}),
        ),
        (
            24,
            2,
            serde_json::json!({"body": "Resubmitted with rounding."}),
        ),
        (
            25,
            0,
            serde_json::json!({"decision": "request_changes", "reason": "round"}),
        ),
        (
            26,
            1,
            serde_json::json!({"reason": "registered by mistake"}),
        ),
    ];
    bodies
        .into_iter()
        .map(|(endpoint, caller, body)| {
            [vec![endpoint, caller], body.to_string().into_bytes()].concat()
        })
        .collect()
}
