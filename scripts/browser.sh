#!/usr/bin/env bash
# Makes sure Debian's Chromium and ChromeDriver are installed, for the console's browser
# test (tests/all/console.rs). Idempotent; prints where they are.
set -euo pipefail

say() { echo "browser: $*" >&2; }

have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }

if ! have; then
    say "installing chromium and chromium-driver with apt"
    # shellcheck source=apt.sh
    source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
    if ! apt_install chromium chromium-driver; then
        say "install Chromium and a matching ChromeDriver, or run the tests with SANDBOX_SKIP_BROWSER=1"
        exit 1
    fi
fi
have || { say "error: chromium or chromedriver still missing"; exit 1; }
# Chinese pages are measured (and screenshotted) with a Chinese font, as a reader sees them.
if ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
    say "installing fonts-noto-cjk with apt"
    # shellcheck source=apt.sh
    source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
    apt_install fonts-noto-cjk || say "warning: no CJK font; Chinese pages show boxes"
fi
say "$(chromium --version 2>/dev/null || echo chromium), $(chromedriver --version 2>/dev/null | head -1)"
