#!/usr/bin/env bash
# Runs the fuzz targets under libFuzzer: `scripts/fuzz.sh [RUNS] [TARGET...]` (default
# 10000000 executions of every target, one after the other). Builds with cargo fuzz (its
# own target folder); each binary writes its seeds into fuzz/libfuzzer/corpus/TARGET as it
# starts (SANDBOX_FUZZ_SEEDS), then runs; each run's log is kept in target/fuzz-logs. A
# crash lands in fuzz/libfuzzer/artifacts/TARGET: fix it and keep the input in
# fuzz/regressions/TARGET. ASSURANCE.md has the figures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-10000000}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(config abi sql sql_structured api ingest)
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
flags=(--fuzz-dir fuzz/libfuzzer -O --sanitizer none --codegen-units 16)
# Coverage only on the crates that decide what an input does (see the wrapper); the cfg
# makes cargo rebuild when a build without the wrapper is in the target folder.
export RUSTC_WRAPPER="$PWD/fuzz/libfuzzer/rustc-coverage"
export RUSTFLAGS="--cfg sandbox_coverage_filtered"
# The targets that write (SQLite, the domain store) keep their data directories on tmpfs,
# where a commit does not wait for the disk.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ]; then
    export TMPDIR=/dev/shm
fi
cargo fuzz build "${flags[@]}"
mkdir -p target/fuzz-logs
for t in "${targets[@]}"; do
    extra=()
    case "$t" in
        sql) extra=(-dict=fuzz/libfuzzer/sql.dict -max_len=4096) ;;
        sql_structured | abi) extra=(-max_len=4096) ;;
        config) extra=(-max_len=8192) ;;
        *) extra=(-max_len=65536) ;;
    esac
    echo "fuzz: $t, $runs executions"
    set +e
    SANDBOX_FUZZ_SEEDS="fuzz/libfuzzer/corpus/$t" \
        cargo fuzz run "${flags[@]}" "$t" -- -runs="$runs" -timeout=60 -rss_limit_mb=8192 \
        -print_final_stats=1 "${extra[@]}" >"target/fuzz-logs/$t.log" 2>&1
    rc=$?
    set -e
    grep -E '^Done|^stat::number_of_executed_units|^stat::peak_rss|ERROR|panicked' "target/fuzz-logs/$t.log" || true
    if [ $rc -ne 0 ]; then
        echo "fuzz: $t failed; see target/fuzz-logs/$t.log" >&2
        exit 1
    fi
done
