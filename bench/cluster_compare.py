"""Cluster backup and restore throughput against a single node, same data, one run.

    .venv/bin/python bench/cluster_compare.py [--keys 300000] [--value 100] [--method sync]

Starts one redis-server 7.0 and a 3-primary cluster (tests/clusters.py),
writes the same keys into both (``DEBUG POPULATE`` on the single node; the
cluster gets them by slot through redis-py's cluster pipeline), then times:

- backup: ``rdbkit.backup.capture.backup`` of each into a local store
  (``--method``, default sync: shards stream in parallel);
- restore: the single-node snapshot into a fresh single node, and the
  cluster snapshot into a fresh 3-primary cluster (keys routed by slot).

Prints keys/s for each and the cluster/single ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from clusters import running_cluster  # noqa: E402
from servers import redis7_binary, running_server  # noqa: E402

from rdbkit.backup.capture import backup  # noqa: E402
from rdbkit.backup.connection import Connection  # noqa: E402
from rdbkit.catalog import Catalog  # noqa: E402
from rdbkit.restore.cluster import restore_cluster_snapshot  # noqa: E402
from rdbkit.restore.restore import restore_snapshot  # noqa: E402
from rdbkit.storage import LocalStore  # noqa: E402


def fill_cluster(cluster, keys: int, value: int) -> None:
    client = cluster.client()
    with contextlib.closing(client):
        payload = b"v" * value
        for start in range(0, keys, 10_000):
            pipe = client.pipeline(transaction=False)
            for i in range(start, min(keys, start + 10_000)):
                pipe.set(b"key:%d" % i, payload)
            pipe.execute()


def timed(fn):
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=300_000)
    parser.add_argument("--value", type=int, default=100)
    parser.add_argument("--method", default="sync", choices=["sync", "cooperative", "auto"])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rdbkit-cluster-bench-") as work:
        catalog = Catalog(LocalStore(Path(work) / "store"), account="bench")
        binary = redis7_binary()
        with running_server("single", binary, {"enable-debug-command": "local"}) as single, \
                running_cluster(3, 0) as cluster:
            with Connection("127.0.0.1", single.port, timeout=600) as conn:
                conn.call("DEBUG", "POPULATE", args.keys, "key", args.value)
            fill_cluster(cluster, args.keys, args.value)
            m1, t1 = timed(lambda: backup(catalog, f"redis://127.0.0.1:{single.port}/0",
                                          "single", method=args.method)[0])
            m3, t3 = timed(lambda: backup(catalog, cluster.url, "cluster",
                                          method=args.method)[0])
            rows.append(("backup", "single node", m1.keys, t1))
            rows.append(("backup", "3-primary cluster", m3.keys, t3))
        with running_server("target", binary) as target, running_cluster(3, 0) as target_cluster:
            r1, t1 = timed(lambda: restore_snapshot(
                catalog, "single", f"redis://127.0.0.1:{target.port}/0"))
            r3, t3 = timed(lambda: restore_cluster_snapshot(catalog, "cluster",
                                                            target_cluster.url))
            rows.append(("restore", "single node", r1.keys_written, t1))
            rows.append(("restore", "3-primary cluster", r3.keys_written, t3))
    print(f"\n{args.keys:,} keys x {args.value} B, backup method {args.method}, "
          "redis-server 7.0, local-directory store, one run\n")
    print("| operation | target | keys | seconds | keys/s | cluster / single |")
    print("|---|---|---:|---:|---:|---:|")
    for i, (op, target, keys, secs) in enumerate(rows):
        ratio = ""
        if i % 2 == 1:
            base = rows[i - 1]
            ratio = f"{(keys / secs) / (base[2] / base[3]):.2f}x"
        print(f"| {op} | {target} | {keys:,} | {secs:.2f} | {keys / secs:,.0f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
