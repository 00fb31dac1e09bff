"""Sync capture vs a real replica's full sync, on the same redis-server 7.0 primary.

    python bench/sync_compare.py                        # 2,000,000 keys x 250 B (~500 MB in memory)
    python bench/sync_compare.py --keys 200000          # a quick run
    python bench/sync_compare.py --rdbcompression no    # RDB as big as the data
    python bench/sync_compare.py --diskless no          # "$<len>" framing (BGSAVE to disk first)

One primary (Debian's redis-server 7.0, ``enable-debug-command yes``) is
filled with ``DEBUG POPULATE <keys> key <size>``. Then, in turn:

* rdbkit: ``Catalog(LocalStore(tmp)).create(name, capture_sync(url))`` -- the
  node's RDB over a replication link, validated by the streaming decoder,
  hashed and written (fsync'ed) into a local store; timed from the call
  until the manifest is written. MB/s is RDB bytes over those seconds.
* redis: a second redis-server started with ``replicaof`` the primary,
  timed from its start until ``INFO replication`` shows
  ``master_link_status:up`` and ``master_sync_in_progress:0`` (the replica
  received and loaded the whole RDB).

Both runs ``--repeat`` times (best taken). The servers come from
tests/servers.py and tests/replicas.py (the test fixtures' own launchers).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from replicas import wait_synced
from servers import redis7_binary, running_server

from rdbkit.backup.replica import capture_sync
from rdbkit.catalog import Catalog
from rdbkit.storage import LocalStore
from rdbkit.urls import RedisUrl

MB = 1e6


def rdbkit_once(port: int) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory(prefix="rdbkit-bench-sync-") as tmp:
        catalog = Catalog(LocalStore(Path(tmp) / "store"), account="bench")
        started = time.perf_counter()
        manifest = catalog.create("bench", capture_sync(RedisUrl("127.0.0.1", port)))
        seconds = time.perf_counter() - started
    return seconds, manifest.rdb_size, manifest.keys


def replica_once(port: int, diskless: str) -> tuple[float, int]:
    started = time.perf_counter()
    config = {"replicaof": f"127.0.0.1 {port}", "repl-diskless-load": "disabled",
              "repl-diskless-sync": diskless}
    with running_server("bench-replica", redis7_binary(), config) as replica:
        wait_synced(replica)
        seconds = time.perf_counter() - started
        with contextlib.closing(replica.client()) as client:
            keys = client.dbsize()
    return seconds, keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=2_000_000)
    parser.add_argument("--size", type=int, default=250, help="value size (DEBUG POPULATE)")
    parser.add_argument("--rdbcompression", choices=("yes", "no"), default="yes")
    parser.add_argument("--diskless", choices=("yes", "no"), default="yes",
                        help="repl-diskless-sync on the primary (yes: $EOF framing)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    config = {"enable-debug-command": "yes", "rdbcompression": args.rdbcompression,
              "repl-diskless-sync": args.diskless, "repl-diskless-sync-delay": "0"}
    with running_server("bench-primary", redis7_binary(), config) as primary:
        with contextlib.closing(primary.client(socket_timeout=600)) as client:
            client.execute_command("DEBUG", "POPULATE", args.keys, "key", args.size)
            used = int(client.info("memory")["used_memory"])
        print(f"primary: redis-server {primary.version}, {args.keys:,} keys x {args.size} B, "
              f"used_memory {used / MB:.0f} MB, rdbcompression {args.rdbcompression}, "
              f"diskless {args.diskless}", flush=True)
        ours, theirs = [], []
        for _ in range(args.repeat):
            seconds, rdb_size, keys = rdbkit_once(primary.port)
            assert keys == args.keys, (keys, args.keys)
            ours.append(seconds)
            print(f"  rdbkit sync capture: {seconds:.2f} s, RDB {rdb_size / MB:.0f} MB, "
                  f"{rdb_size / MB / seconds:.0f} MB/s", flush=True)
            seconds, keys = replica_once(primary.port, args.diskless)
            assert keys == args.keys, (keys, args.keys)
            theirs.append(seconds)
            print(f"  redis-server replica full sync: {seconds:.2f} s", flush=True)
    best, ref = min(ours), min(theirs)
    figures = {
        "keys": args.keys, "value_size": args.size, "used_memory": used, "rdb_size": rdb_size,
        "rdbcompression": args.rdbcompression, "diskless": args.diskless,
        "rdbkit_s": best, "rdbkit_mb_s": rdb_size / MB / best,
        "rdbkit_used_memory_mb_s": used / MB / best,
        "replica_s": ref, "ratio_replica_over_rdbkit": ref / best,
    }
    print(f"best: rdbkit {best:.2f} s ({rdb_size / MB / best:.0f} MB/s of RDB, "
          f"{used / MB / best:.0f} MB/s of used_memory); replica {ref:.2f} s; "
          f"rdbkit is {ref / best:.2f}x the replica's speed")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
