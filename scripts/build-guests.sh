#!/usr/bin/env bash
# Builds every guest module in examples/modules (a separate cargo workspace) to
# WebAssembly, release profile, and prints the paths of the .wasm files.
# Works from any directory. Uses scripts/guest-toolchain.sh to pick (or install) the
# toolchain. With CI=true and a committed Cargo.lock the build is --locked.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
guests="$root/examples/modules"
target=wasm32-unknown-unknown

toolchain=$(bash "$here/guest-toolchain.sh")

locked=()
if [[ "${CI:-}" == "true" && -f "$guests/Cargo.lock" ]]; then
    locked=(--locked)
fi

cd "$guests"
# Guests keep their own target dir, whatever CARGO_TARGET_DIR the caller has set: the
# host build must never mix with them, and the tests look for the modules here.
export CARGO_TARGET_DIR="$guests/target"
# A fixed seed for const-random (ahash inside Arrow), so that clean builds give the same
# bytes and so the same module sha256 in product manifests.
export CONST_RANDOM_SEED="${CONST_RANDOM_SEED:-sandbox-guests}"
start=$SECONDS
case "$toolchain" in
    debian)
        # The rustup proxies come first in PATH: name Debian's tools explicitly.
        # .cargo/config.toml supplies the target, -Zbuild-std and the wasm-ld-22 linker.
        RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
            /usr/bin/cargo build --release "${locked[@]}"
        ;;
    stable)
        # The target's std is installed: no build-std (stable cargo ignores the [unstable]
        # table without RUSTC_BOOTSTRAP), and rustup's bundled rust-lld as the linker.
        env -u RUSTC -u RUSTDOC -u RUSTC_BOOTSTRAP \
            cargo build --release "${locked[@]}" --target "$target" \
            --config "target.$target.linker=\"rust-lld\""
        ;;
    *)
        echo "build-guests: unexpected toolchain '$toolchain'" >&2
        exit 1
        ;;
esac
echo "build-guests: built in $((SECONDS - start)) s" >&2

shopt -s nullglob
wasm=("$guests/target/$target/release/"*.wasm)
if [[ ${#wasm[@]} -eq 0 ]]; then
    echo "build-guests: no .wasm files in $guests/target/$target/release" >&2
    exit 1
fi
for f in "${wasm[@]}"; do
    echo "${f#"$root"/}"
done
