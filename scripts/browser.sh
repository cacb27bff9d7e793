#!/usr/bin/env bash
# Makes sure Debian's Chromium and ChromeDriver are installed, for the console's browser
# test (tests/all/console.rs). Idempotent; prints where they are.
set -euo pipefail

say() { echo "browser: $*" >&2; }

have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }

if ! have; then
    say "installing chromium and chromium-driver with apt"
    if ! command -v apt-get >/dev/null 2>&1; then
        say "error: apt-get is not available; install Chromium and a matching ChromeDriver,"
        say "or run the tests with SANDBOX_SKIP_BROWSER=1"
        exit 1
    fi
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo)
        else
            say "error: installing packages needs root. Run: apt-get install chromium chromium-driver"
            say "(as root), or run the tests with SANDBOX_SKIP_BROWSER=1"
            exit 1
        fi
    fi
    {
        "${sudo[@]}" apt-get update -qq &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                chromium chromium-driver
    } >&2 || {
        say "error: apt-get could not install chromium chromium-driver"
        exit 1
    }
fi
have || { say "error: chromium or chromedriver still missing"; exit 1; }
say "$(chromium --version 2>/dev/null || echo chromium), $(chromedriver --version 2>/dev/null | head -1)"
