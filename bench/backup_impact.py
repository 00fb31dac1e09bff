"""What a backup does to the node it reads: redis-benchmark latency and throughput
while idle, during rdbkit's cooperative (forkless) backup, and during a BGSAVE.

    .venv/bin/python bench/backup_impact.py [--keys 1000000] [--value 100]
        [--batch 500] [--budget-ms 2] [--max-ops N] [--clients 10] [--json out.json]

One redis-server 7.0 on a free port, filled with ``DEBUG POPULATE``. Each
phase runs ``redis-benchmark -t set,get -r KEYS`` (random keys over the
dataset, so writes touch pages a fork would have to copy) sized to last
about as long as the backup it overlaps:

- idle: no backup;
- cooperative: ``rdbkit`` cooperative capture into a local store (with
  ``--budget-ms`` as its latency budget), benchmark running alongside;
- bgsave: ``BGSAVE`` with the benchmark alongside; copy-on-write is the
  server's own ``rdb_last_cow_size``.

Targets (issue 6): cooperative p99 <= 1.2x idle p99 and ~0 copy-on-write
(no fork: ``total_forks`` does not move). Note the machine: redis-server,
redis-benchmark and rdbkit share its cores, so part of any slowdown is CPU
contention on the client side, not the server.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from servers import redis7_binary, running_server  # noqa: E402

from rdbkit.backup.connection import Connection  # noqa: E402
from rdbkit.backup.info import parse_info  # noqa: E402


def info(port: int) -> dict[str, str]:
    with Connection("127.0.0.1", port, timeout=60) as conn:
        return parse_info(conn.call("INFO", "all"))


def benchmark(port: int, requests: int, clients: int, keys: int) -> dict[str, float]:
    """redis-benchmark SET+GET; returns rps and p99 (ms) averaged over the two tests."""
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", "set,get", "-n", str(requests),
         "-c", str(clients), "-r", str(keys), "-d", "100", "--csv", "-q"],
        capture_output=True, text=True, check=True, timeout=900,
    ).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    return {
        "rps": sum(float(r["rps"]) for r in rows) / len(rows),
        "p50_ms": sum(float(r["p50_latency_ms"]) for r in rows) / len(rows),
        "p99_ms": sum(float(r["p99_latency_ms"]) for r in rows) / len(rows),
        "max_ms": max(float(r["max_latency_ms"]) for r in rows),
    }


def alongside(port: int, work, seconds: float, rps: float, clients: int, keys: int):
    """Run ``work()`` in a thread with a benchmark sized to ``seconds``; return both results."""
    result: dict = {}

    def run() -> None:
        started = time.monotonic()
        result["value"] = work()
        result["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run)
    thread.start()
    bench = benchmark(port, max(1000, int(rps * seconds * 0.8)), clients, keys)
    thread.join()
    return bench, result


def cooperative_backup(port: int, directory: Path, budget_ms: float | None, name: str,
                       batch: int, max_ops: float | None, nice: int):
    """``rdbkit backup --method cooperative`` in its own process, at ``nice`` priority."""
    command = [str(Path(sys.executable).parent / "rdbkit"), "backup",
               f"redis://127.0.0.1:{port}/0", str(directory), "--account", "bench",
               "--name", name, "--method", "cooperative", "--json"]
    if budget_ms:
        command += ["--latency-budget-ms", str(budget_ms)]
    if max_ops:
        command += ["--max-ops", str(max_ops)]
    command += ["--batch", str(batch)]
    if nice:
        command = ["nice", "-n", str(nice), *command]
    out = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout)


def bgsave(port: int) -> float:
    """BGSAVE and wait for it; the copy-on-write bytes the server measured."""
    with Connection("127.0.0.1", port, timeout=300) as conn:
        conn.call("BGSAVE")
    while info(port)["rdb_bgsave_in_progress"] != "0":
        time.sleep(0.05)
    done = info(port)
    if done["rdb_last_bgsave_status"] != "ok":
        raise RuntimeError("BGSAVE failed")
    return float(done["rdb_last_cow_size"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--value", type=int, default=100)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--budget-ms", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=500, help="cooperative SCAN/DUMP batch")
    parser.add_argument("--max-ops", type=float, default=None, help="cooperative keys/s cap")
    parser.add_argument("--nice", type=int, default=0,
                        help="run the cooperative backup (a separate rdbkit process) at this "
                        "nice level, as a backup agent would be")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    config = {"enable-debug-command": "local"}
    rows = []
    with running_server("impact", redis7_binary(), config) as server, \
            tempfile.TemporaryDirectory(prefix="rdbkit-impact-") as work:
        port = server.port
        with Connection("127.0.0.1", port, timeout=600) as conn:
            conn.call("DEBUG", "POPULATE", args.keys, "key", args.value)
            used = int(parse_info(conn.call("INFO", "memory"))["used_memory"])
        print(f"dataset: {args.keys:,} keys x {args.value} B, used_memory {used / 1e6:,.0f} MB, "
              f"redis-benchmark -t set,get -c {args.clients} -r {args.keys}", flush=True)

        # Time each backup once without load, to size the benchmark runs.
        t0 = time.monotonic()
        cooperative_backup(port, Path(work) / "warm", args.budget_ms, "warm", args.batch,
                           args.max_ops, args.nice)
        coop_s = time.monotonic() - t0
        t0 = time.monotonic()
        bgsave(port)
        save_s = time.monotonic() - t0
        print(f"unloaded: cooperative {coop_s:.1f} s, BGSAVE {save_s:.1f} s", flush=True)

        idle = benchmark(port, 200_000, args.clients, args.keys)
        rows.append({"phase": "idle", **idle, "seconds": None, "cow_mb": 0.0, "forks": 0})
        print("idle", idle, flush=True)

        forks0 = int(info(port)["total_forks"])
        bench, res = alongside(port, lambda: cooperative_backup(
            port, Path(work) / "coop", args.budget_ms, "coop", args.batch, args.max_ops,
            args.nice),
            coop_s, idle["rps"],
            args.clients, args.keys)
        forks = int(info(port)["total_forks"]) - forks0
        label = f"rdbkit cooperative (batch {args.batch}, budget {args.budget_ms} ms" + (
            f", {args.max_ops:,.0f} keys/s cap" if args.max_ops else "") + (
            f", nice {args.nice})" if args.nice else ")")
        rows.append({"phase": label, **bench,
                     "seconds": res["seconds"], "cow_mb": 0.0, "forks": forks})
        print("cooperative", bench, res["seconds"], f"forks {forks}", flush=True)

        forks0 = int(info(port)["total_forks"])
        bench, res = alongside(port, lambda: bgsave(port), save_s, idle["rps"],
                               args.clients, args.keys)
        forks = int(info(port)["total_forks"]) - forks0
        rows.append({"phase": "BGSAVE (fork)", **bench, "seconds": res["seconds"],
                     "cow_mb": res["value"] / 1e6, "forks": forks})
        print("bgsave", bench, res["seconds"], flush=True)

    base = rows[0]
    print("\n| phase | backup s | ops/s | vs idle | p50 ms | p99 ms | p99 vs idle | max ms "
          "| copy-on-write MB | forks |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        secs = f"{r['seconds']:.1f}" if r["seconds"] else ""
        print(f"| {r['phase']} | {secs} | {r['rps']:,.0f} | {r['rps'] / base['rps']:.2f}x | "
              f"{r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['p99_ms'] / base['p99_ms']:.2f}x | "
              f"{r['max_ms']:.1f} | {r['cow_mb']:.1f} | {r['forks']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
