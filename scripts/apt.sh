# Sourced by the set-up scripts: `apt_install PACKAGE...` installs Debian packages with
# apt-get, as root or through a password-less sudo, quietly, output to stderr. Returns
# non-zero, having said why, when apt-get or root is not available or the install fails.
# The caller defines `say` (its own prefix for messages).

apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        say "error: apt-get is not available to install $*"
        return 1
    fi
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo)
        else
            say "error: installing packages needs root, and sudo is not available without a password."
            say "Run: apt-get install $* (as root)"
            return 1
        fi
    fi
    {
        "${sudo[@]}" apt-get update -qq &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
    } >&2 || {
        say "error: apt-get could not install $*"
        return 1
    }
}
