//! The structure that holds the guarantee, checked: which crate of the workspace may depend
//! on which (in the spirit of DataFusion's `dev/depcheck`), and no import cycle between
//! the top-level modules of any crate. ARCHITECTURE.md's code map gives the reasons; a
//! change that needs a new edge changes both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Our crates and the crates of ours each may depend on (normal and build dependencies).
const OURS: &[(&str, &[&str])] = &[
    ("sandbox-policies", &[]),
    ("sandbox-synth", &[]),
    ("sandbox-sdk-macros", &[]),
    ("sandbox-sdk", &["sandbox-sdk-macros"]),
    ("sandbox-core", &["sandbox-policies"]),
    ("sandbox-i18n", &["sandbox-core", "sandbox-policies"]),
    ("sandbox-store", &["sandbox-core", "sandbox-policies"]),
    ("sandbox-host", &["sandbox-core"]),
    (
        "sandbox-mediator",
        &["sandbox-core", "sandbox-store", "sandbox-policies"],
    ),
    (
        "sandbox-cluster",
        &["sandbox-core", "sandbox-store", "sandbox-mediator"],
    ),
    (
        "sandbox-runtime",
        &[
            "sandbox-core",
            "sandbox-i18n",
            "sandbox-store",
            "sandbox-host",
            "sandbox-mediator",
            "sandbox-policies",
        ],
    ),
    (
        "sandbox-server",
        &["sandbox-core", "sandbox-i18n", "sandbox-runtime"],
    ),
    (
        "sandbox-cli",
        &[
            "sandbox-core",
            "sandbox-i18n",
            "sandbox-policies",
            "sandbox-runtime",
            "sandbox-server",
            "sandbox-cluster",
            "sandbox-synth",
        ],
    ),
];

/// Packages that exercise everything and are allowed any edge.
const HARNESSES: &[&str] = &["sandbox-tests", "sandbox-benches", "sandbox-fuzz"];

/// Third-party crates that only one crate of ours may depend on, and which.
const CONFINED: &[(&str, &str)] = &[
    // The mediator is the only crate that opens a protected dataset's files and plans
    // or answers a query over them.
    ("datafusion", "sandbox-mediator"),
    ("parquet", "sandbox-mediator"),
    ("opendp", "sandbox-mediator"),
    // Plans travel between a cluster's nodes only as the mediator encodes them.
    ("datafusion-proto", "sandbox-mediator"),
    // The cluster's nodes are started by one crate (which opens no dataset itself).
    ("ballista-scheduler", "sandbox-cluster"),
    ("ballista-executor", "sandbox-cluster"),
    // The WASM host is the only crate that runs or parses a module.
    ("wasmtime", "sandbox-host"),
    ("wasmparser", "sandbox-host"),
    // Every SQL statement is the store's.
    ("rusqlite", "sandbox-store"),
    ("tokio-postgres", "sandbox-store"),
    // The HTTP edge.
    ("axum", "sandbox-server"),
    ("tower", "sandbox-server"),
    ("tower-http", "sandbox-server"),
    ("hyper", "sandbox-server"),
    ("maud", "sandbox-server"),
    ("prometheus-client", "sandbox-server"),
    // Every sentence a person reads is the catalogue's.
    ("fluent-bundle", "sandbox-i18n"),
    ("chrono-tz", "sandbox-i18n"),
    // The command line.
    ("clap", "sandbox-cli"),
    ("ureq", "sandbox-cli"),
    ("tracing-subscriber", "sandbox-cli"),
];

struct Package {
    name: String,
    dir: PathBuf,
    /// Normal and build dependencies, by package name.
    deps: BTreeSet<String>,
}

fn workspace() -> Vec<Package> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| Package {
            name: p["name"].as_str().unwrap().to_string(),
            dir: Path::new(p["manifest_path"].as_str().unwrap())
                .parent()
                .unwrap()
                .to_path_buf(),
            deps: p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].as_str() != Some("dev"))
                .map(|d| d["name"].as_str().unwrap().to_string())
                .collect(),
        })
        .collect()
}

/// Every forbidden edge of `packages`, as text.
fn forbidden_edges(packages: &[Package]) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = OURS.iter().copied().collect();
    let ours: BTreeSet<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    let mut wrong = Vec::new();
    for p in packages {
        if HARNESSES.contains(&p.name.as_str()) {
            continue;
        }
        let Some(may) = allowed.get(p.name.as_str()) else {
            wrong.push(format!(
                "{}: a crate the layering does not know (add it to OURS and to ARCHITECTURE.md)",
                p.name
            ));
            continue;
        };
        for d in &p.deps {
            if ours.contains(d.as_str()) && !may.contains(&d.as_str()) {
                wrong.push(format!("{} -> {d}: not an allowed edge", p.name));
            }
            if let Some((_, owner)) = CONFINED
                .iter()
                .find(|(c, _)| *c == d.as_str() || (*c == "wasmtime" && d.starts_with("wasmtime-")))
                && p.name != *owner
            {
                wrong.push(format!("{} -> {d}: only {owner} may depend on it", p.name));
            }
        }
    }
    wrong
}

#[test]
fn every_dependency_edge_is_one_the_layering_allows() {
    let packages = workspace();
    for (name, _) in OURS {
        assert!(
            packages.iter().any(|p| p.name == *name),
            "{name} is not in the workspace"
        );
    }
    let wrong = forbidden_edges(&packages);
    assert!(wrong.is_empty(), "forbidden edges:\n{}", wrong.join("\n"));

    // As the issue of the split states it: one crate of ours on DataFusion and Parquet,
    // one on wasmtime, and the one on axum on none of the engines.
    let users = |dep: &str| -> Vec<&str> {
        packages
            .iter()
            .filter(|p| !HARNESSES.contains(&p.name.as_str()) && p.deps.contains(dep))
            .map(|p| p.name.as_str())
            .collect()
    };
    assert_eq!(users("datafusion"), ["sandbox-mediator"]);
    assert_eq!(users("parquet"), ["sandbox-mediator"]);
    assert_eq!(users("wasmtime"), ["sandbox-host"]);
    for p in users("axum") {
        let deps = &packages.iter().find(|q| q.name == p).unwrap().deps;
        for engine in ["rusqlite", "datafusion", "parquet", "wasmtime"] {
            assert!(
                !deps.contains(engine),
                "{p} depends on axum and on {engine}"
            );
        }
    }
}

#[test]
fn the_dependency_check_finds_a_forbidden_edge() {
    // The check itself, against edges that must not exist.
    let package = |name: &str, deps: &[&str]| Package {
        name: name.into(),
        dir: PathBuf::new(),
        deps: deps.iter().map(|d| d.to_string()).collect(),
    };
    let mut packages: Vec<Package> = OURS.iter().map(|(n, d)| package(n, d)).collect();
    assert!(forbidden_edges(&packages).is_empty());
    for (name, dep, why) in [
        ("sandbox-host", "sandbox-store", "not an allowed edge"),
        ("sandbox-host", "parquet", "only sandbox-mediator"),
        ("sandbox-host", "sandbox-mediator", "not an allowed edge"),
        ("sandbox-server", "rusqlite", "only sandbox-store"),
        ("sandbox-server", "sandbox-store", "not an allowed edge"),
        ("sandbox-runtime", "datafusion", "only sandbox-mediator"),
        ("sandbox-runtime", "wasmtime-wasi", "only sandbox-host"),
        ("sandbox-runtime", "axum", "only sandbox-server"),
        ("sandbox-store", "sandbox-mediator", "not an allowed edge"),
        ("sandbox-core", "sandbox-store", "not an allowed edge"),
        ("sandbox-mediator", "sandbox-synth", "not an allowed edge"),
        ("sandbox-cluster", "datafusion", "only sandbox-mediator"),
        (
            "sandbox-server",
            "ballista-executor",
            "only sandbox-cluster",
        ),
        ("sandbox-cluster", "sandbox-runtime", "not an allowed edge"),
    ] {
        let p = packages.iter_mut().find(|p| p.name == name).unwrap();
        p.deps.insert(dep.into());
        let wrong = forbidden_edges(&packages);
        assert!(
            wrong.len() == 1 && wrong[0].contains(why),
            "{name} -> {dep}: {wrong:?}"
        );
        let p = packages.iter_mut().find(|p| p.name == name).unwrap();
        p.deps.remove(dep);
    }
    packages.push(package("sandbox-extra", &[]));
    assert!(forbidden_edges(&packages)[0].contains("does not know"));
}

// ---------------------------------------------------------------------------------------
// Module cycles: within a crate, the graph of its top-level modules by their `crate::`
// paths has no cycle.

/// Source text without comments, string and character literals.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'r'
            && (b.get(i + 1) == Some(&b'#') || b.get(i + 1) == Some(&b'"'))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            j += 1;
            while j < b.len() && !b[j..].starts_with(&close) {
                j += 1;
            }
            i = j + close.len();
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && (b.get(i + 2) == Some(&b'\'') || (b.get(i + 1) == Some(&b'\\')))
        {
            // A character literal ('x', '\n', '\''), not a lifetime.
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            let c = text[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The first segments of every `crate::` path in `code` (`crate::a::b`, and each item of
/// `crate::{a, b::c}`).
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let after = rest.trim_start();
        if let Some(group) = after.strip_prefix('{') {
            // The top level of the brace group.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            found.insert(ident(item.trim()));
        } else {
            found.insert(ident(after));
        }
    }
    found.remove("");
    found
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, into);
        } else if p.extension().is_some_and(|x| x == "rs") {
            into.push(p);
        }
    }
}

/// The top-level modules of the crate in `src` and, for each, the others its files name.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeMap::new();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            if p.join("mod.rs").exists() || src.join(format!("{name}.rs")).exists() {
                modules.entry(name).or_insert_with(Vec::new).push(p);
            }
        } else if p.extension().is_some_and(|x| x == "rs") && name != "lib" && name != "main" {
            modules.entry(name).or_insert_with(Vec::new).push(p);
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .into_iter()
        .map(|(name, paths)| {
            let mut files = Vec::new();
            for p in paths {
                if p.is_dir() {
                    rust_files(&p, &mut files);
                } else {
                    files.push(p);
                }
            }
            let mut uses = BTreeSet::new();
            for f in files {
                let code = code_only(&std::fs::read_to_string(&f).unwrap());
                uses.extend(
                    crate_paths(&code)
                        .into_iter()
                        .filter(|m| names.contains(m) && *m != name),
                );
            }
            (name, uses)
        })
        .collect()
}

/// A cycle of `graph`, if it has one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut c = path[at..].to_vec();
            c.push(node.to_string());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(graph, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(graph, node, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_crate_has_a_cycle_between_its_top_level_modules() {
    let packages = workspace();
    let mut checked = 0;
    for p in &packages {
        let src = p.dir.join("src");
        if !src.is_dir() || !OURS.iter().any(|(n, _)| *n == p.name) {
            continue;
        }
        let graph = module_graph(&src);
        if let Some(c) = cycle(&graph) {
            panic!("{}: module cycle {}", p.name, c.join(" -> "));
        }
        checked += 1;
    }
    assert!(checked >= 7, "{checked} crates checked");
}

#[test]
fn the_cycle_check_finds_paths_in_use_groups_and_ignores_comments_and_strings() {
    let code = code_only(
        r##"
        use crate::{a, b::{c, d}, e as f};
        use crate::g::h;
        // crate::commented
        /* crate::blocked /* nested */ crate::still */
        let s = "crate::quoted";
        let r = r#"crate::raw"#;
        let q = '"'; crate::after_char::x();
        fn k<'a>(x: &'a str) { crate::after_lifetime::y(x) }
        let m = $crate::macro_path;
        "##,
    );
    assert_eq!(
        crate_paths(&code).into_iter().collect::<Vec<_>>(),
        ["a", "after_char", "after_lifetime", "b", "e", "g"]
    );
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    assert_eq!(
        cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])).unwrap(),
        ["a", "b", "c", "a"]
    );
}
