#!/usr/bin/env bash
# rdbkit's single entry script.
#
#   bash ./tasks.sh setup    install what is missing (apt, .venv, the package)
#   bash ./tasks.sh test     setup, then the whole test suite (both codec twins)
#   bash ./tasks.sh demo     setup, then a real redis-server -> SAVE -> rdbkit inspect/verify/convert
#   bash ./tasks.sh asan     the test suite against an AddressSanitizer build (scripts/asan.sh)
#   bash ./tasks.sh fuzz     the C decoder's fuzz target (fuzz/run.sh)
#   bash ./tasks.sh bench    benchmarks against redis-check-rdb, rdb-py, rdbtools (bench/run.sh)
#
# Meant for a fresh Debian (bookworm/trixie) as root; also runs unprivileged
# when the Debian packages are already there. Output is quiet unless
# something fails, then the failing command's output is shown.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

VENV="${RDBKIT_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
APT_PACKAGES=(python3-venv python3-dev gcc libc6-dev redis-server redis-tools)
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'tasks.sh: %s\n' "$*" >&2; exit 1; }

# Run a command with its output captured; show it only if the command fails.
quiet() {
    local log status
    log="$(mktemp)"
    if "$@" >"$log" 2>&1; then
        rm -f "$log"
    else
        status=$?
        cat "$log" >&2
        rm -f "$log"
        printf 'tasks.sh: failed (exit %s): %s\n' "$status" "$*" >&2
        return "$status"
    fi
}

missing_apt_packages() {
    local pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep 'install ok installed' >/dev/null; then
            printf '%s\n' "$pkg"
        fi
    done
}

# Debian's redis-server package starts a system-wide server on 6379 when it
# can. Tests start their own servers on free ports and need nothing of it, so
# right after installing the package we make sure it is stopped and will not
# start at boot: with systemd through systemctl, without it (containers)
# through the init script, or by the pid the package's server writes.
# A redis-server the user already had is left alone.
stop_system_redis() {
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now redis-server.service >/dev/null 2>&1 || true
        return
    fi
    if [ -x /etc/init.d/redis-server ]; then
        /etc/init.d/redis-server stop >/dev/null 2>&1 || true
        command -v update-rc.d >/dev/null 2>&1 && update-rc.d redis-server disable >/dev/null 2>&1 || true
    fi
    if [ -s /run/redis/redis-server.pid ]; then
        local pid
        pid="$(cat /run/redis/redis-server.pid)"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
            && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/bin/redis-check-rdb ]; then
            kill "$pid" 2>/dev/null || true  # redis-server is a link to redis-check-rdb
        fi
    fi
}

install_apt_packages() {
    local missing
    missing="$(missing_apt_packages)"
    [ -z "$missing" ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing Debian packages (run as root to install them): $(echo $missing)"
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script expects Debian"
    say "apt-get install $(echo $missing)"
    # Keep the package's own server from starting while it is installed
    # (policy-rc.d 101 = "action forbidden"); remove the guard afterwards
    # only if we created it.
    local guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        guard=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$guard"
        chmod 755 "$guard"
    fi
    local status=0
    # shellcheck disable=SC2086  # one word per package
    { quiet apt-get update -q && quiet apt-get install -y -q --no-install-recommends $missing; } || status=$?
    [ -n "$guard" ] && rm -f "$guard"
    [ "$status" -eq 0 ] || die "apt-get failed"
    stop_system_redis
}

base_python() {
    # The Debian interpreter that python3-venv belongs to; RDBKIT_PYTHON overrides.
    if [ -n "${RDBKIT_PYTHON:-}" ]; then
        echo "$RDBKIT_PYTHON"
    elif [ -x /usr/bin/python3 ]; then
        echo /usr/bin/python3
    else
        command -v python3 || die "python3 not found"
    fi
}

create_venv() {
    if [ -x "$PY" ] && "$PY" -c 'import sys' >/dev/null 2>&1; then
        return 0
    fi
    say "creating $VENV"
    rm -rf "$VENV"
    quiet "$(base_python)" -m venv "$VENV"
}

# pip install -e only when the inputs changed since the last successful
# install (pyproject.toml, setup.py, ext/ sources), or the extension is gone.
install_package() {
    local stamp="$VENV/.rdbkit-install-stamp" current
    local sources
    # ext/_codec.c is Cython's output, not an input: leave it out.
    sources="$(find ext -maxdepth 1 -type f \( -name '*.pyx' -o -name '*.pxi' -o -name '*.pxd' \
        -o -name '*.c' -o -name '*.h' \) ! -name '_codec.c' 2>/dev/null | sort)"
    # shellcheck disable=SC2086  # one word per file
    current="$(cat pyproject.toml setup.py $sources | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$current" ] \
        && "$PY" -c 'import rdbkit._codec' >/dev/null 2>&1; then
        return 0
    fi
    say "pip install -e .[test] (builds the C extension)"
    quiet "$PY" -m pip install -q -e ".[test]"
    "$PY" -c 'import rdbkit._codec' || die "the C extension rdbkit._codec did not build"
    echo "$current" >"$stamp"
}

cmd_setup() {
    install_apt_packages
    create_venv
    install_package
}

cmd_test() {
    cmd_setup
    say "pytest"
    local status=0
    "$PY" -m pytest tests "$@" || status=$?
    if [ "$status" -eq 5 ]; then
        die "pytest collected no tests"
    fi
    return "$status"
}

cmd_demo() {
    cmd_setup
    "$PY" scripts/demo.py "$@"
}

usage() {
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
    local cmd="${1:-}"
    [ $# -gt 0 ] && shift
    case "$cmd" in
        setup) cmd_setup "$@" ;;
        test) cmd_test "$@" ;;
        demo) cmd_demo "$@" ;;
        asan) exec bash scripts/asan.sh "$@" ;;
        fuzz) exec bash fuzz/run.sh "$@" ;;
        bench) exec bash bench/run.sh "$@" ;;
        -h | --help | help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
