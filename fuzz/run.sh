#!/usr/bin/env bash
# Fuzz the C decoder (rdbkit._codec) with atheris/libFuzzer under AddressSanitizer.
#
#   bash fuzz/run.sh                    # 1,000,000 executions
#   bash fuzz/run.sh -runs=50000        # any libFuzzer flags pass through
#   bash fuzz/run.sh -max_total_time=600
#   RDBKIT_FUZZ_DIFFERENTIAL=1 bash fuzz/run.sh   # also: one-piece == split feeds
#
# The extension is built with clang (-fsanitize=address,fuzzer-no-link) in a
# scratch copy under fuzz/build/ so the working tree's own build is untouched.
# The seed corpus is made at run time (fuzz/seeds.py); new inputs accumulate in
# fuzz/corpus/ and crashing inputs land in fuzz/build/artifacts/ (all ignored by git).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${RDBKIT_VENV:-$ROOT/.venv}
PY="$VENV/bin/python"

bash tasks.sh setup   # apt packages, .venv, the package
if ! command -v clang >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -q && apt-get install -y -q clang
    else
        echo "fuzz/run.sh: clang is needed (apt-get install clang)" >&2
        exit 1
    fi
fi
if ! "$PY" -c "import atheris, Cython, setuptools" 2>/dev/null; then
    "$PY" -m pip install -q "atheris>=2.3" "Cython>=3.0" setuptools wheel
fi

BUILD="$ROOT/fuzz/build"
TREE="$BUILD/tree"
SEEDS="$BUILD/seeds"
ARTIFACTS="$BUILD/artifacts"
CORPUS="$ROOT/fuzz/corpus"

echo "== building rdbkit._codec with clang, ASan and libFuzzer coverage in $TREE"
rm -rf "$TREE" "$SEEDS"
mkdir -p "$TREE" "$ARTIFACTS" "$CORPUS"
cp -a rdbkit ext setup.py "$TREE"/
find "$TREE" \( -name '*.so' -o -name '__pycache__' \) -prune -exec rm -rf {} +
rm -f "$TREE/ext/_codec.c"
(
    cd "$TREE"
    CC=clang LDSHARED="clang -shared" CFLAGS="-fsanitize=fuzzer-no-link" \
        LDFLAGS="-fsanitize=fuzzer-no-link" RDBKIT_ASAN=1 \
        "$PY" setup.py -q build_ext --inplace >"$BUILD/build.log" 2>&1
) || { tail -40 "$BUILD/build.log"; exit 1; }

echo "== seed corpus"
"$PY" fuzz/seeds.py "$SEEDS"

args=("$@")
has_runs=0
for a in "${args[@]+"${args[@]}"}"; do
    case "$a" in -runs=*|-max_total_time=*) has_runs=1 ;; esac
done
[ "$has_runs" = 1 ] || args+=("-runs=1000000")

ASAN_RT="$("$PY" -c 'import atheris, os; print(os.path.join(atheris.path(), "asan_with_fuzzer.so"))')"
echo "== fuzzing (${args[*]}); crashes go to $ARTIFACTS/"
# detect_leaks=0: CPython does not free everything at exit. -malloc_limit_mb
# turns an allocation the input merely claims into a reported crash.
set +e
env LD_PRELOAD="$ASAN_RT" ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:symbolize=1" \
    PYTHONPATH="$TREE" "$PY" fuzz/fuzz_decoder.py "$CORPUS" "$SEEDS" \
    -artifact_prefix="$ARTIFACTS/" -timeout=20 -malloc_limit_mb=1024 -rss_limit_mb=4096 \
    -print_final_stats=1 "${args[@]}" 2>&1 | tee "$BUILD/fuzz.log"
rc=${PIPESTATUS[0]}
set -e
echo "== libFuzzer exit status $rc; log in $BUILD/fuzz.log"
ls "$ARTIFACTS" 2>/dev/null | sed "s|^|   artifact: $ARTIFACTS/|" || true
exit "$rc"
