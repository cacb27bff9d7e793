#!/usr/bin/env bash
# Property-based checks of the HTTP API against its own OpenAPI document: runs the demo into
# a temporary data directory, serves it on loopback, and runs schemathesis (installed from
# PyPI if missing) as an operator and as a developer. Fails on server errors, undocumented
# status codes or content types, and answers that break the document's schemas.
# Not part of ./dev test (it needs PyPI); run it by hand after changing the API.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v schemathesis >/dev/null 2>&1 || python3 -m pip install --quiet schemathesis
bash scripts/build-guests.sh >/dev/null
cargo build --quiet -p sandbox-cli --bin sandbox
sandbox=target/debug/sandbox
data=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$data"' EXIT
"$sandbox" demo --keep "$data/d" >/dev/null
export SANDBOX_DATA_DIR="$data/d"
token() { "$sandbox" --as ops-li --json token issue "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }
ops=$(token ops-li)
dev=$(token dev-zhao)
port=$((20000 + RANDOM % 20000))
"$sandbox" serve --listen "127.0.0.1:$port" --anonymous-refusals-per-minute 1000000 2>"$data/serve.log" &
server=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
spec="http://127.0.0.1:$port/api/v1/openapi.json"
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
# Revoking the caller's own token or suspending principals would end the run early.
skip='tokens/.*/revoke|principals/.*/(suspend|revoke)'
status=0
# schemathesis keeps its cache in the working directory: not in the repository.
cd "$data"
for t in "$ops" "$dev"; do
    schemathesis run "$spec" -H "Authorization: Bearer $t" --checks "$checks" \
        --max-examples "${EXAMPLES:-50}" --exclude-path-regex "$skip" || status=1
done
if grep -q "panicked" "$data/serve.log"; then
    echo "api-fuzz: the server panicked:" >&2
    grep -A3 "panicked" "$data/serve.log" >&2
    status=1
fi
exit $status
