//! Bad input at ingest: a clear, typed error, and the data directory as it was.

use std::collections::BTreeMap;
use std::path::Path;

use sandbox_cli::demo::RESIDENTS_POLICY;
use sandbox_policies::PolicyError;
use sandbox_runtime::{Error, catalog};
use sandbox_tests::{PROVIDER, empty_domain};

/// Every file under the data directory with its size and content hash, and the
/// metadata tables' row counts.
pub(crate) fn snapshot(domain: &sandbox_runtime::Domain) -> (BTreeMap<String, String>, Vec<i64>) {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel.starts_with("sandbox.db") {
                continue; // SQLite's own files change on read; compared through rows below
            }
            if p.is_dir() {
                out.insert(rel, "dir".into());
                walk(&p, root, out);
            } else {
                out.insert(
                    rel,
                    sandbox_runtime::sha256_hex(&std::fs::read(&p).unwrap()),
                );
            }
        }
    }
    let mut files = BTreeMap::new();
    let root = domain.layout().root();
    walk(root, root, &mut files);
    let conn = sandbox_tests::raw(domain);
    let counts = ["datasets", "dataset_versions", "audit_events"]
        .iter()
        .map(|t| {
            conn.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
                .unwrap()
        })
        .collect();
    (files, counts)
}

const GOOD_CSV: &str = "citizen_id,phone,district,age,income\n\
    11010519491231002X,13812345678,heping,76,52000\n\
    120101199001010011,13912345678,hexi,36,61000\n";

#[test]
fn malformed_csv_gives_a_clear_error_and_changes_nothing() {
    let (dir, domain) = empty_domain();
    let before = snapshot(&domain);
    let cases = [
        // A row with too many fields.
        "citizen_id,phone,district,age,income\n1,2,heping,30,100\n1,2,heping,30,100,extra\n",
        // A header and no rows.
        "citizen_id,phone,district,age,income\n",
        // Not CSV at all.
        "\u{0}\u{1}\u{2}garbage",
    ];
    for (i, text) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.csv"));
        std::fs::write(&path, text).unwrap();
        match catalog::add(&domain, PROVIDER, &path, RESIDENTS_POLICY) {
            Err(Error::Input { path: p, message }) => {
                assert!(p.ends_with(&format!("bad{i}.csv")), "{p}");
                assert!(!message.is_empty());
            }
            Err(Error::Policy(_)) => {} // garbage headers fail the policy check: also typed
            other => panic!("case {i}: {other:?}"),
        }
        assert_eq!(snapshot(&domain), before, "case {i} left something behind");
    }
    let parquet = dir.path().join("bad.parquet");
    std::fs::write(&parquet, b"PAR1 this is not parquet").unwrap();
    assert!(matches!(
        catalog::add(&domain, PROVIDER, &parquet, RESIDENTS_POLICY),
        Err(Error::Input { .. })
    ));
    assert_eq!(snapshot(&domain), before);
}

#[test]
fn bad_policies_give_typed_errors_and_change_nothing() {
    let (dir, domain) = empty_domain();
    let csv = dir.path().join("residents.csv");
    std::fs::write(&csv, GOOD_CSV).unwrap();
    let before = snapshot(&domain);
    let unknown = RESIDENTS_POLICY.replace("name = \"phone\"", "name = \"mobile\"");
    match catalog::add(&domain, PROVIDER, &csv, &unknown) {
        Err(Error::Policy(PolicyError::UnknownColumn { column })) => assert_eq!(column, "mobile"),
        other => panic!("{other:?}"),
    }
    let no_bounds = RESIDENTS_POLICY.replace("bounds = [0, 500000]\n", "");
    match catalog::add(&domain, PROVIDER, &csv, &no_bounds) {
        Err(Error::Policy(PolicyError::MissingBounds { column })) => assert_eq!(column, "income"),
        other => panic!("{other:?}"),
    }
    let above = RESIDENTS_POLICY.replace(
        "level = 4\naccess = \"none\"",
        "level = 4\naccess = \"group\"",
    );
    assert!(matches!(
        catalog::add(&domain, PROVIDER, &csv, &above),
        Err(Error::Policy(PolicyError::AccessAboveCeiling { .. }))
    ));
    assert!(matches!(
        catalog::add(&domain, PROVIDER, &csv, "this is [not toml"),
        Err(Error::Policy(PolicyError::Parse { .. }))
    ));
    assert_eq!(snapshot(&domain), before);
    // A developer cannot register data.
    assert!(matches!(
        catalog::add(&domain, sandbox_tests::DEVELOPER, &csv, RESIDENTS_POLICY),
        Err(Error::Forbidden(_))
    ));
    // And the good file with the good policy goes in.
    let v = catalog::add(&domain, PROVIDER, &csv, RESIDENTS_POLICY).unwrap();
    assert_eq!(v.row_count, 2);
    assert_eq!(v.max_unit_rows, 1);
    assert!(v.data_files()[0].as_path().exists());
}

#[test]
fn rows_without_a_privacy_unit_are_refused_or_dropped_as_the_policy_says() {
    let (_dir, domain) = empty_domain();
    let data = sandbox_tests::pums_dir().join("PUMS_null.csv");
    let drop_policy = std::fs::read_to_string(
        sandbox_tests::repo_root().join("examples/policies/pums_null.toml"),
    )
    .unwrap();
    // By default a file with an empty unit is refused, naming the row, and nothing changes.
    let refuse_policy = drop_policy.replace("missing_unit = \"drop\"\n", "");
    let before = snapshot(&domain);
    match catalog::add(&domain, PROVIDER, &data, &refuse_policy) {
        Err(Error::Input { message, .. }) => {
            assert!(
                message.contains("privacy unit column `pid` is empty"),
                "{message}"
            );
            assert!(message.contains("missing_unit"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(&domain), before);
    // With `missing_unit = "drop"`: the 88 rows without a pid are left out and counted.
    let v = catalog::add(&domain, PROVIDER, &data, &drop_policy).unwrap();
    assert_eq!(v.rows_dropped, 88);
    assert_eq!(v.row_count, 1948 - 88);
    let conn = sandbox_tests::raw(&domain);
    let detail = sandbox_tests::event_details(&conn, "dataset.registered");
    assert_eq!(detail["rows_dropped_without_unit"], 88);
    // Row privacy has no unit column to be missing.
    let bad = RESIDENTS_POLICY.replace(
        "privacy_unit = \"citizen_id\"",
        "row_privacy = true\nmissing_unit = \"drop\"",
    );
    match catalog::add(&domain, PROVIDER, &data, &bad) {
        Err(Error::Policy(PolicyError::Invalid { field, .. })) => {
            assert_eq!(field, "dataset.missing_unit")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ingest_records_which_columns_need_no_clamp_and_the_rest_are_clamped() {
    let (dir, domain) = empty_domain();
    let mut csv = String::from("citizen_id,phone,district,age,income\n");
    for i in 0..1000 {
        csv.push_str(&format!("P{i:06},13800000000,hexi,40,400000\n"));
    }
    // One income far above the policy's bound of 500,000.
    csv.push_str("P999999,13800000000,hexi,40,1000000000000\n");
    let path = dir.path().join("r.csv");
    std::fs::write(&path, csv).unwrap();
    let v = catalog::add(&domain, PROVIDER, &path, RESIDENTS_POLICY).unwrap();
    assert_eq!(v.within_bounds, vec!["age".to_string()]);
    let s = sandbox_runtime::scenarios::apply(
        &domain,
        sandbox_tests::DEVELOPER,
        &sandbox_tests::scenario_text("clamp", 10.0, 1.0),
    )
    .unwrap();
    let s = sandbox_tests::approve(&domain, &s.id.to_string()).unwrap();
    let a = sandbox_tests::ask_in(&domain, s.id, "SELECT SUM(income), SUM(age) FROM residents")
        .unwrap();
    let sum = |i: usize| {
        arrow::compute::cast(a.batch.column(i), &arrow::datatypes::DataType::Float64)
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap()
            .value(0)
    };
    // Clamped: 1,000 × 400,000 + 500,000, with Laplace noise of scale 500,000.
    assert!((sum(0) - 400_500_000.0).abs() < 10_000_000.0, "{}", sum(0));
    // Not clamped (all within bounds): 1,001 × 40, noise of scale 120.
    assert!((sum(1) - 40_040.0).abs() < 3_000.0, "{}", sum(1));
}

#[test]
fn rows_beyond_the_bound_are_stored_after_the_kept_rows_in_their_own_row_groups() {
    let f = sandbox_tests::pums_fixture();
    let v = catalog::get(&f.domain, sandbox_tests::OPERATOR, "pums_dup").unwrap();
    // PUMS_dup: 1,948 rows of 1,000 persons; two kept per person.
    assert_eq!(v.bounded_rows, Some(1582));
    let reader =
        sandbox_mediator::ingest::stored_reader(f.domain.mediator().dataset_keys(), &v, 0).unwrap();
    let meta = reader.metadata();
    let rank = meta
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.name() == catalog::RANK_COLUMN)
        .unwrap();
    let mut ranges = Vec::new();
    for g in meta.row_groups() {
        match g.column(rank).statistics() {
            Some(parquet::file::statistics::Statistics::Int64(s)) => {
                ranges.push((*s.min_opt().unwrap(), *s.max_opt().unwrap(), g.num_rows()))
            }
            other => panic!("{other:?}"),
        }
    }
    // Every row group holds kept rows only (rank ≤ 2) or the rest only (rank > 2).
    assert!(
        ranges.iter().all(|(lo, hi, _)| *hi <= 2 || *lo > 2),
        "{ranges:?}"
    );
    let kept: i64 = ranges.iter().filter(|r| r.1 <= 2).map(|r| r.2).sum();
    assert_eq!(kept, 1582);
}

/// A Parquet file can hold dates the engine's calendar cannot (chrono's years -262143 to
/// 262142); a query reading one would fail for that row alone. Refused at ingest, naming
/// the row and the column, and nothing is left behind.
#[test]
fn dates_outside_the_calendar_are_refused_at_ingest() {
    use std::sync::Arc;
    let (dir, domain) = empty_domain();
    let before = snapshot(&domain);
    let policy = format!(
        "{RESIDENTS_POLICY}\n[[column]]\nname = \"born\"\nlevel = 3\naccess = \"none\"\ndescription = \"Date of birth\"\n"
    );
    let write = |name: &str, born: Vec<i32>| {
        let n = born.len();
        let text = |v: &str| {
            Arc::new(arrow::array::StringArray::from(vec![v; n])) as arrow::array::ArrayRef
        };
        let ids: Vec<String> = (0..n)
            .map(|i| sandbox_synth::resident_id("120101", 1980, 1, 1, i as u32))
            .collect();
        let batch = arrow::array::RecordBatch::try_from_iter([
            (
                "citizen_id",
                Arc::new(arrow::array::StringArray::from(ids)) as _,
            ),
            ("phone", text("13800000000")),
            ("district", text("heping")),
            (
                "age",
                Arc::new(arrow::array::Int64Array::from(vec![40; n])) as _,
            ),
            (
                "income",
                Arc::new(arrow::array::Int64Array::from(vec![1000; n])) as _,
            ),
            ("born", Arc::new(arrow::array::Date32Array::from(born)) as _),
        ])
        .unwrap();
        let path = dir.path().join(name);
        let file = std::fs::File::create(&path).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        path
    };
    for (name, bad) in [("late.parquet", i32::MAX), ("early.parquet", i32::MIN)] {
        let path = write(name, vec![3650, bad, 7300]);
        match catalog::add(&domain, PROVIDER, &path, &policy) {
            Err(Error::Input { message, .. }) => {
                assert!(message.contains("row 2, column `born`"), "{message}");
                assert!(message.contains("outside the years"), "{message}");
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(snapshot(&domain), before, "{name} left something behind");
    }
    // Dates within the calendar are fine.
    let path = write("fine.parquet", vec![3650, -700_000, 7300]);
    catalog::add(&domain, PROVIDER, &path, &policy).unwrap();
}

/// A source with NULLs, values outside bounds and categories, and units over the row
/// bound: ingest reports what it found (in the version's record and its audit event),
/// and keeps, drops or refuses out-of-range values as the policy says.
#[test]
fn ingest_reports_what_it_found_and_applies_the_policys_out_of_range_rule() {
    let (dir, domain) = empty_domain();
    let csv = dir.path().join("residents.csv");
    std::fs::write(
        &csv,
        "citizen_id,phone,district,age,income\n\
         110101199001011234,13800000001,heping,30,50000\n\
         110101199001011234,13800000001,heping,31,51000\n\
         110101199001012345,13800000002,hexi,,40000\n\
         110101199001013456,13800000003,atlantis,40,45000\n\
         110101199001014567,13800000004,nankai,150,45000\n\
         110101199001015678,13800000005,hebei,-2,45000\n",
    )
    .unwrap();
    let keep = RESIDENTS_POLICY.to_string();
    let v = catalog::add(&domain, PROVIDER, &csv, &keep).unwrap();
    let r = v.report.clone().unwrap();
    assert_eq!((r.rows_read, r.rows_stored), (6, 6));
    assert_eq!(r.out_of_range, "keep");
    assert_eq!(r.units, Some(5));
    assert_eq!((r.units_over_max_rows, r.rows_over_max_rows), (1, 1));
    let column = |name: &str| r.columns.iter().find(|c| c.name == name).unwrap().clone();
    let age = column("age");
    assert_eq!((age.nulls, age.below_bounds, age.above_bounds), (1, 1, 1));
    assert_eq!(column("district").outside_categories, 1);
    assert!(
        r.columns.iter().all(|c| c.name != "income"),
        "nothing to report"
    );
    // The audit event carries the report too.
    let conn = sandbox_tests::raw(&domain);
    let detail = sandbox_tests::event_details(&conn, "dataset.registered");
    assert_eq!(
        detail["report"]["columns"][0]["name"], "district",
        "{detail}"
    );
    // `drop`: the three rows out of range are left out and counted.
    let drop = keep.replace("mode = \"dp\"", "mode = \"dp\"\nout_of_range = \"drop\"");
    let v = catalog::add(&domain, PROVIDER, &csv, &drop).unwrap();
    let r = v.report.unwrap();
    assert_eq!(
        (r.rows_read, r.rows_stored, r.rows_dropped_out_of_range),
        (6, 3, 3)
    );
    assert_eq!(v.row_count, 3);
    // `refuse`: the first such row is named, with its column and value; nothing changes.
    let refuse = keep.replace("mode = \"dp\"", "mode = \"dp\"\nout_of_range = \"refuse\"");
    let before = snapshot(&domain);
    match catalog::add(&domain, PROVIDER, &csv, &refuse) {
        Err(Error::Input { message, .. }) => assert!(
            message.starts_with(
                "row 4, column `district`: `atlantis` is not one of the declared categories"
            ),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(&domain), before);
    // A value that is not a number in a column with bounds is named with its row.
    std::fs::write(
        &csv,
        "citizen_id,phone,district,age,income\n\
         110101199001011234,13800000001,heping,30,50000\n\
         110101199001012345,13800000002,hexi,abc,40000\n",
    )
    .unwrap();
    match catalog::add(&domain, PROVIDER, &csv, &keep) {
        Err(Error::Input { message, .. }) => assert_eq!(
            message,
            "row 2, column `age`: `abc` is not a number (the policy gives the column bounds)"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(&domain), before);
}

/// A dataset registered by mistake is retired: kept and recorded, refused for new
/// scenarios (at application and at approval); only its provider or an operator retires
/// it, with a reason.
#[test]
fn a_retired_dataset_is_kept_recorded_and_refused_for_new_scenarios() {
    use sandbox_runtime::scenarios;
    use sandbox_tests::{DEVELOPER, OPERATOR};
    let f = sandbox_tests::Fixture::new();
    let pending = scenarios::apply(
        &f.domain,
        DEVELOPER,
        &sandbox_tests::scenario_text("pending-one", 1.0, 1.0),
    )
    .unwrap();
    for who in [DEVELOPER, sandbox_tests::SUPERVISOR] {
        assert!(matches!(
            catalog::retire(&f.domain, who, "residents", "mistake"),
            Err(Error::Forbidden(_))
        ));
    }
    sandbox_runtime::identity::add(
        &f.domain,
        Some(OPERATOR),
        "psb-li",
        sandbox_core::Role::Provider,
    )
    .unwrap();
    assert!(matches!(
        catalog::retire(&f.domain, "psb-li", "residents", "not mine"),
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        catalog::retire(&f.domain, PROVIDER, "residents", "  "),
        Err(Error::Invalid(_))
    ));
    let v = catalog::retire(
        &f.domain,
        PROVIDER,
        "residents",
        "registered the test extract",
    )
    .unwrap();
    let retired = v.retired.unwrap();
    assert_eq!(retired.by, PROVIDER);
    assert!(matches!(
        catalog::retire(&f.domain, OPERATOR, "residents", "again"),
        Err(Error::Conflict(_))
    ));
    // Kept: still in the catalog, and the approved scenario over it goes on.
    assert_eq!(catalog::list(&f.domain, DEVELOPER).unwrap().len(), 1);
    f.ask("SELECT COUNT(*) FROM residents").unwrap();
    // Refused for new scenarios: a new application, and the approval of a pending one.
    match scenarios::apply(
        &f.domain,
        DEVELOPER,
        &sandbox_tests::scenario_text("after-retire", 1.0, 1.0),
    ) {
        Err(Error::Invalid(m)) => assert!(m.contains("retired"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        sandbox_tests::approve(&f.domain, &pending.id.to_string()),
        Err(Error::Invalid(_))
    ));
    let conn = sandbox_tests::raw(&f.domain);
    assert_eq!(
        sandbox_tests::count(
            &conn,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'dataset.retired'"
        ),
        1
    );
}

/// An upload through the API is registered from memory (no copy of it is written to the
/// disk): the same version as the same bytes registered from a file (rows, report, source
/// name), only the version's own files new under the data directory, bad bytes refused
/// with the upload's own name and nothing left; a Parquet source reads from memory too.
#[test]
fn an_upload_registers_from_memory_as_its_file_does() {
    let tmp = tempfile::tempdir().unwrap();
    let (_d1, from_file) = empty_domain();
    let (_d2, uploaded) = empty_domain();
    let csv = sandbox_synth::residents_csv(500, 2026);
    let path = tmp.path().join("residents.csv");
    std::fs::write(&path, &csv).unwrap();
    let a = catalog::add(&from_file, PROVIDER, &path, RESIDENTS_POLICY).unwrap();
    let before = snapshot(&uploaded);
    let b = catalog::add_csv(
        &uploaded,
        PROVIDER,
        "residents.csv",
        csv.as_bytes(),
        RESIDENTS_POLICY,
    )
    .unwrap();
    assert_eq!(
        (a.row_count, &a.report, &a.source_name),
        (b.row_count, &b.report, &b.source_name)
    );
    assert_eq!(b.source_name, "residents.csv");
    // Only the version's own folder and its files are new.
    let after = snapshot(&uploaded);
    for name in after.0.keys().filter(|k| !before.0.contains_key(*k)) {
        assert!(name.starts_with("domain/residents"), "{name}");
    }

    // Bad bytes: a typed error naming the upload, and the domain as it was.
    let before = snapshot(&uploaded);
    match catalog::add_csv(
        &uploaded,
        PROVIDER,
        "broken.csv",
        b"citizen_id,district\n\"unterminated",
        RESIDENTS_POLICY,
    ) {
        Err(Error::Input { path, .. }) => assert_eq!(path, "broken.csv"),
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(&uploaded), before);

    // A Parquet source in memory reads as its file does.
    let (_d3, parquet_domain) = empty_domain();
    let pq = {
        let format = arrow::csv::reader::Format::default().with_header(true);
        let (schema, _) = format
            .infer_schema(std::io::Cursor::new(csv.as_bytes()), None)
            .unwrap();
        let schema = std::sync::Arc::new(schema);
        let reader = arrow::csv::ReaderBuilder::new(schema.clone())
            .with_format(format)
            .build(std::io::Cursor::new(csv.as_bytes()))
            .unwrap();
        let mut out = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).unwrap();
        for batch in reader {
            w.write(&batch.unwrap()).unwrap();
        }
        w.close().unwrap();
        out
    };
    let via_memory = sandbox_mediator::ingest::add_source(
        parquet_domain.mediator(),
        PROVIDER,
        &sandbox_mediator::ingest::Source::memory("residents.parquet", pq),
        RESIDENTS_POLICY,
        None,
    )
    .unwrap();
    assert_eq!(via_memory.row_count, a.row_count);
}
