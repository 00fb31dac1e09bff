"""Validate rdbkit.backup.estimate's copy-on-write model against a real fork.

For each write-load level: start a load process doing random SETs (64-byte
values) over an existing DEBUG POPULATE dataset, call ``estimate()`` (which
samples the write rate for 1 s), then BGSAVE, wait for it and read the
``rdb_last_cow_size`` the server measured. Prints estimate vs measured.

Columns: ``rate`` target writes/s; ``meas/s`` the write rate estimate()
measured; ``T est``/``T real`` save time the model assumed / the wall-clock
time of the BGSAVE; ``model`` the model COW (MB); ``model@T`` the same model
with the real save time plugged in (separates the throughput guess from the
pages model); ``cow`` the server's rdb_last_cow_size (MB); ``err`` and
``err@T`` relative errors (model − cow) / cow.

    .venv/bin/python bench/cow_validate.py [--keys 1500000] [--rates 0,5000,20000]

The server is Debian's redis-server 7.0 on a free port in a temp dir; the first
BGSAVE (without load) warms it up and is not reported, and the model is run
with ``rdb_last_cow_size`` removed from INFO so the table shows the model
alone (estimate() blends it in with max()).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from servers import redis7_binary, running_server  # noqa: E402

from rdbkit.backup.connection import Connection  # noqa: E402
from rdbkit.backup.estimate import estimate_from, measure_write_rate  # noqa: E402
from rdbkit.backup.info import parse_info  # noqa: E402

LOAD = r"""
import random, sys, time, redis
port, rate, keys = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
c = redis.Redis(port=port)
value = b"v" * 64
tick = 0.01
per_tick = rate * tick
owed = 0.0
next_t = time.monotonic()
while True:
    owed += per_tick
    n = int(owed)
    owed -= n
    if n:
        p = c.pipeline(transaction=False)
        for _ in range(n):
            p.set(b"key:%d" % random.randrange(keys), value)
        p.execute()
    next_t += tick
    d = next_t - time.monotonic()
    if d > 0:
        time.sleep(d)
"""


def info(conn: Connection) -> dict[str, str]:
    return parse_info(conn.call("INFO", "all"))


def bgsave(conn: Connection) -> float:
    while info(conn).get("rdb_bgsave_in_progress") == "1":
        time.sleep(0.05)
    t0 = time.monotonic()
    conn.call("BGSAVE")
    time.sleep(0.02)
    while info(conn).get("rdb_bgsave_in_progress") == "1":
        time.sleep(0.02)
    return time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_500_000)
    parser.add_argument("--value-size", type=int, default=64)
    parser.add_argument("--rates", default="0,2000,10000,30000")
    parser.add_argument("--throughput", type=float, default=None, help="save bytes/s for the model")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    extra = {"enable-debug-command": "yes", "rdbcompression": "yes"}
    with running_server("cow", redis7_binary(), extra) as server, Connection("127.0.0.1", server.port, timeout=300) as conn:
        conn.call("DEBUG", "POPULATE", args.keys, "key", args.value_size)
        base = info(conn)
        print(f"# redis {base['redis_version']}, {args.keys} keys, used_memory "
              f"{int(base['used_memory']) / 2**20:.0f} MB, {base.get('mem_allocator')}, value {args.value_size} B")
        warm = bgsave(conn)
        print(f"# warm-up BGSAVE without load: {warm:.2f} s, cow {int(info(conn)['rdb_last_cow_size']) / 2**20:.1f} MB")
        head = f"{'rate':>7} {'meas/s':>7} {'T est':>6} {'T real':>6} {'model':>7} {'model@T':>8} {'cow':>7} {'err':>7} {'err@T':>7}  method"
        print(head)
        for rate in rates:
            load = None
            if rate > 0:
                load = subprocess.Popen([sys.executable, "-c", LOAD, str(server.port), str(rate), str(args.keys)])
                time.sleep(1.5)
            try:
                measured_rate, now, _ = measure_write_rate(conn, 1.0)
                model_info = {k: v for k, v in now.items() if k not in ("rdb_last_cow_size", "current_cow_size")}
                model_info["rdb_last_bgsave_time_sec"] = "-1"  # the model's own throughput, not the last save's
                est = estimate_from(model_info, measured_rate, save_throughput_bytes_s=args.throughput)
                real_t = bgsave(conn)
                cow = int(info(conn)["rdb_last_cow_size"])
                used = int(now["used_memory"])
                at_t = estimate_from(model_info, measured_rate,
                                     save_throughput_bytes_s=int(now.get("used_memory_dataset") or used) / real_t)
            finally:
                if load is not None:
                    load.kill()
                    load.wait()
            mb = 2**20
            err = (est.inputs["model_cow_bytes"] - cow) / cow if cow else float("nan")
            err_t = (at_t.inputs["model_cow_bytes"] - cow) / cow if cow else float("nan")
            print(f"{rate:>7.0f} {measured_rate:>7.0f} {est.inputs['save_time_s']:>6.2f} {real_t:>6.2f} "
                  f"{est.inputs['model_cow_bytes'] / mb:>7.1f} {at_t.inputs['model_cow_bytes'] / mb:>8.1f} "
                  f"{cow / mb:>7.1f} {err:>+7.0%} {err_t:>+7.0%}  {est.method}")


if __name__ == "__main__":
    main()
