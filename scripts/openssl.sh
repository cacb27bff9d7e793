#!/usr/bin/env bash
# Makes sure OpenSSL 3 is installed: its development files, since the metadata database's
# SQLCipher is built against the system's libcrypto (rusqlite's `bundled-sqlcipher`), and
# its command line, against which the national cryptography suite's SM2 signatures and SM3
# hashes are cross-checked (tests/all/atrest.rs).
set -euo pipefail

say() { echo "openssl: $*" >&2; }

missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[[ -f /usr/include/openssl/evp.h ]] || missing+=(libssl-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if ((${#missing[@]})); then
    say "installing ${missing[*]} with apt"
    # shellcheck source=apt.sh
    source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
    apt_install "${missing[@]}"
fi
say "$(openssl version)"
