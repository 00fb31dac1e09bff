"""Restore throughput: rdbkit's pipelined RESTORE vs ``redis-cli --pipe``.

    python bench/restore_compare.py                 # 200,000 keys (the bench dataset, ~155 MB RDB)
    python bench/restore_compare.py --keys 20000    # quick

The data is bench/dataset.py's mix (strings, small and big collections,
streams; 10 % with an expiry, 5 % in db 1) written by Debian's redis-server
7.0 and SAVEd (RDB 10, cached in bench/data/). Each run restores it into a
FRESH redis-server 7.0 (empty, started for that run) and is checked
afterwards (DBSIZE of dbs 0 and 1 = the key count):

* rdbkit raw path, ``restore_entries(raw_entries(file, target_version=10))``
  (what ``restore_snapshot`` does for a fetched shard the target reads
  as-is): DUMP payloads cut straight from the RDB bytes (C decoder with
  values=False for the offsets), no value decoding or re-encoding;
* rdbkit decode path, ``restore_entries(Decoder(file), ...)``: full decode
  and ``dump_payload`` per key (what ``raw=False`` / a foreign target gets);
  both with ``connections`` 1 and 4, timed end to end (reading the RDB,
  building every payload, sending, all replies read);
* ``redis-cli -p PORT --pipe < restore.resp``: the RESP file holds exactly the
  commands rdbkit sends (``restore_command``: RESTORE key ttl payload ABSTTL,
  SELECT between dbs), generated beforehand; only the replay is timed. The
  generation time is printed for both ways of building it (raw cut and
  decode + ``dump_payload``), so "redis-cli end to end" (generate + replay)
  can be compared as well.

Single runs by default (``--repeat`` for best-of-N): the machine is shared,
so figures are noisy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dataset as bench_dataset  # noqa: E402

from rdbkit.backup.connection import Connection, command  # noqa: E402
from rdbkit.codec import Decoder  # noqa: E402
from rdbkit.restore.raw import raw_entries  # noqa: E402
from rdbkit.restore.restore import restore_command, restore_entries  # noqa: E402
from rdbkit.urls import RedisUrl  # noqa: E402

REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def fresh_server(work: Path):
    work.mkdir(parents=True, exist_ok=True)
    return bench_dataset.start_server(bench_dataset.DEBIAN_REDIS_SERVER, work)


def stop(proc) -> None:
    proc.terminate()
    proc.wait(timeout=120)


def total_keys(port: int) -> int:
    with Connection("127.0.0.1", port, timeout=600) as conn:
        n = 0
        for db in range(16):
            conn.call("SELECT", db)
            n += conn.call("DBSIZE")
        return n


def write_resp(rdb: Path, dest: Path, version: int, raw: bool = False) -> tuple[int, float]:
    """The RESTORE commands for every entry of ``rdb`` as one RESP file; (commands, seconds).
    ``raw``: payloads cut from the file (raw_entries), else decode + dump_payload."""
    t0 = time.perf_counter()
    n = 0
    db = 0
    now_ms = int(time.time() * 1000)
    source = raw_entries(rdb, target_version=version) if raw else Decoder(str(rdb))
    with open(dest, "wb") as out:
        buf: list[bytes] = []
        size = 0
        for entry in source:
            if entry.db != db:
                buf.append(command("SELECT", entry.db))
                db = entry.db
            cmd = restore_command(entry, version, lru="idle", now_ms=now_ms)
            buf.append(cmd)
            size += len(cmd)
            n += 1
            if size > 8 << 20:
                out.write(b"".join(buf))
                buf, size = [], 0
        out.write(b"".join(buf))
    return n, time.perf_counter() - t0


def run_cli(resp: Path, work: Path, keys: int) -> float:
    proc, port = fresh_server(work)
    try:
        with open(resp, "rb") as stdin:
            t0 = time.perf_counter()
            result = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), "--pipe"],
                                    stdin=stdin, capture_output=True, text=True)
            seconds = time.perf_counter() - t0
        if result.returncode != 0 or "errors: 0," not in result.stdout:
            raise RuntimeError(
                f"redis-cli --pipe failed: {result.stdout[-1000:]}{result.stderr[-1000:]}")
        got = total_keys(port)
        if got != keys:
            raise RuntimeError(f"redis-cli --pipe left {got} keys, expected {keys}")
        return seconds
    finally:
        stop(proc)


def run_rdbkit(rdb: Path, work: Path, keys: int, connections: int, batch: int,
               raw: bool) -> float:
    proc, port = fresh_server(work)
    try:
        t0 = time.perf_counter()
        source = raw_entries(rdb, target_version=10) if raw else Decoder(str(rdb))
        report = restore_entries(source, RedisUrl("127.0.0.1", port),
                                 connections=connections, batch=batch, timeout=600)
        seconds = time.perf_counter() - t0
        if report.keys_written != keys or total_keys(port) != keys:
            raise RuntimeError(f"rdbkit wrote {report.keys_written} keys, expected {keys}")
        return seconds
    finally:
        stop(proc)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=1, help="best of N runs per row")
    args = ap.parse_args(argv)

    ds = bench_dataset.dataset("redis7", args.keys, args.seed)
    print(f"dataset: {ds.path.name}: {ds.keys} keys, {ds.elements} elements, "
          f"{ds.size / 1e6:.1f} MB RDB 10; target: fresh redis-server 7.0 per run; "
          f"{os.cpu_count()} CPUs (shared, noisy)")
    tmp = Path(tempfile.mkdtemp(prefix="restore-bench-"))
    try:
        resp = tmp / "restore.resp"
        n, gen_decode_s = write_resp(ds.path, resp, 10)
        assert n == ds.keys, (n, ds.keys)
        n, gen_s = write_resp(ds.path, resp, 10, raw=True)
        assert n == ds.keys, (n, ds.keys)
        print(f"RESP file of RESTORE commands: {resp.stat().st_size / 1e6:.1f} MB, generated in "
              f"{gen_s:.2f} s with raw payloads (cut from the RDB), "
              f"{gen_decode_s:.2f} s with decode + dump_payload")

        def best(fn) -> float:
            return min(fn() for _ in range(args.repeat))

        rows = []
        cli_s = best(lambda: run_cli(resp, tmp / "cli", ds.keys))
        rows.append(("redis-cli --pipe (replay only)", "1", cli_s))
        rows.append(("redis-cli --pipe (raw generate + replay)", "1", cli_s + gen_s))
        rows.append(("redis-cli --pipe (decode generate + replay)", "1", cli_s + gen_decode_s))
        for raw, label in ((True, "rdbkit raw path (cut payloads + send)"),
                           (False, "rdbkit decode path (decode+encode+send)")):
            for conns in (1, 4):
                work = tmp / f"rdbkit{conns}{'raw' if raw else ''}"
                s = best(lambda w=work, c=conns, r=raw: run_rdbkit(ds.path, w, ds.keys, c, args.batch, r))
                rows.append((label, str(conns), s))
        print()
        print(f"{'tool':<44} {'conns':>5} {'seconds':>8} {'keys/s':>10} {'vs replay':>10} "
              f"{'vs raw gen+replay':>18}")
        for name, conns, s in rows:
            print(f"{name:<44} {conns:>5} {s:>8.2f} {ds.keys / s:>10,.0f} "
                  f"{cli_s / s:>9.2f}x {(cli_s + gen_s) / s:>17.2f}x")
        print("\nratios > 1: faster than redis-cli. Single runs on a shared 2-CPU machine: noisy.")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
