#!/usr/bin/env bash
# Makes sure the OpenSSL 3 command line is installed: the national cryptography suite's
# SM2 signatures and SM3 hashes are cross-checked against it (tests/all/atrest.rs).
set -euo pipefail

say() { echo "openssl: $*" >&2; }

if ! command -v openssl >/dev/null 2>&1; then
    say "installing it with apt"
    # shellcheck source=apt.sh
    source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
    apt_install openssl
fi
say "$(openssl version)"
