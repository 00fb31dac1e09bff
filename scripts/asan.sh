#!/usr/bin/env bash
# Runs the codec test suite against an AddressSanitizer build of rdbkit._codec.
#
#   bash scripts/asan.sh                  # tests/ -k "not python": the whole suite but the
#                                         # pure-Python twin's variants ([python] / [python-...])
#   bash scripts/asan.sh tests/ -x        # any pytest arguments instead
#
# Builds the extension in place with RDBKIT_ASAN=1 (gcc, -fsanitize=address),
# runs pytest with libasan preloaded (CPython itself is not instrumented, so the
# runtime must come first), then rebuilds the normal extension, also when the
# tests fail or the run is interrupted.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${RDBKIT_VENV:-$ROOT/.venv}
PY="$VENV/bin/python"
bash tasks.sh setup   # apt packages, .venv, the package (normal build)
if ! "$PY" -c "import Cython, setuptools" 2>/dev/null; then
    "$PY" -m pip install -q "Cython>=3.0" setuptools wheel
fi

build() {  # build the extension in place; show the compiler's output only on failure
    local log
    log="$(mktemp)"
    find rdbkit -maxdepth 1 -name '_codec*.so' -delete
    if ! "$@" "$PY" setup.py -q build_ext --inplace --force >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

rebuild_normal() {
    echo "== rebuilding the normal extension"
    build env
}
trap rebuild_normal EXIT

echo "== building rdbkit._codec with AddressSanitizer"
build env RDBKIT_ASAN=1
# grep reads all of ldd's output: with -q it could exit first, and pipefail would
# then count ldd's SIGPIPE as "not linked".
if ! ldd rdbkit/_codec*.so | grep libasan >/dev/null; then
    echo "scripts/asan.sh: the extension is not linked with libasan" >&2
    exit 1
fi

LIBASAN="$(gcc -print-file-name=libasan.so)"
if [ ! -e "$LIBASAN" ]; then
    echo "scripts/asan.sh: gcc has no libasan ($LIBASAN)" >&2
    exit 1
fi

if [ "$#" -eq 0 ]; then
    set -- tests/ -k "not python" -q
fi
echo "== pytest $* (LD_PRELOAD=$LIBASAN)"
# detect_leaks=0: CPython leaks by design at exit. The preload reaches the
# servers the fixtures start too; their allocators ignore it.
LD_PRELOAD="$LIBASAN" ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=0" \
    "$PY" -m pytest -p no:cacheprovider "$@"
