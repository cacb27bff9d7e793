#!/usr/bin/env bash
# Makes sure a toolchain that can build WebAssembly guests (wasm32-unknown-unknown) is
# present, installing Debian's Rust if needed. Idempotent.
#
# Prints the chosen toolchain on stdout, as one word:
#   stable  - a rustup toolchain with the wasm32-unknown-unknown target installed;
#   debian  - Debian's rustc-web (>= 1.90) with rust-web-src and wasm-ld-22, building std
#             with -Zbuild-std (see shared/wasm-guests.md).
# Messages go to stderr. Exits non-zero if no toolchain can be had.
set -euo pipefail

say() { echo "guest-toolchain: $*" >&2; }

min_minor=90

have_stable() {
    command -v rustup >/dev/null 2>&1 &&
        rustup target list --installed 2>/dev/null | grep -qx 'wasm32-unknown-unknown'
}

# Minor version of a "rustc 1.NN.x ..." / "cargo 1.NN.x ..." line, or 0.
minor_of() {
    local v
    v=$("$1" --version 2>/dev/null | awk '{print $2}') || true
    if [[ "$v" =~ ^1\.([0-9]+)\. ]]; then echo "${BASH_REMATCH[1]}"; else echo 0; fi
}

have_debian() {
    [[ -x /usr/bin/rustc && -x /usr/bin/cargo ]] || return 1
    dpkg-query -W -f='${Status}' rustc-web 2>/dev/null | grep -q 'install ok installed' || return 1
    (( $(minor_of /usr/bin/rustc) >= min_minor )) || return 1
    (( $(minor_of /usr/bin/cargo) >= min_minor )) || return 1
    command -v wasm-ld-22 >/dev/null 2>&1 || return 1
    # -Zbuild-std needs the standard library's source (rust-web-src) in the sysroot.
    local sysroot
    sysroot=$(/usr/bin/rustc --print sysroot 2>/dev/null) || return 1
    [[ -f "$sysroot/lib/rustlib/src/rust/library/Cargo.lock" ]] || return 1
}

describe_debian() {
    say "using Debian's $(/usr/bin/rustc --version) with -Zbuild-std and wasm-ld-22"
    echo debian
}

if have_stable; then
    say "using the rustup toolchain $(rustc --version 2>/dev/null || echo '?') (wasm32-unknown-unknown installed)"
    echo stable
    exit 0
fi

if have_debian; then
    describe_debian
    exit 0
fi

say "no WebAssembly toolchain found; installing rustc-web cargo-web rust-web-src lld-22 with apt"
# shellcheck source=apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
if ! apt_install rustc-web cargo-web rust-web-src lld-22; then
    say "Install a Rust toolchain with the wasm32-unknown-unknown target"
    say "(rustup target add wasm32-unknown-unknown), or Debian's rustc-web, cargo-web,"
    say "rust-web-src and lld-22 packages."
    exit 1
fi

if have_debian; then
    describe_debian
    exit 0
fi
say "error: the packages were installed but the toolchain is still unusable:"
say "  /usr/bin/rustc: $(/usr/bin/rustc --version 2>&1 || true) (need >= 1.$min_minor, from rustc-web)"
say "  wasm-ld-22: $(command -v wasm-ld-22 || echo missing)"
say "  std source: $(/usr/bin/rustc --print sysroot 2>/dev/null || echo '?')/lib/rustlib/src/rust/library"
exit 1
