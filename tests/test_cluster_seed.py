"""Seeding a new N-shard Redis Cluster (fresh redis-server 7.0 processes) from a snapshot."""

from __future__ import annotations

import contextlib
import subprocess

import pytest
import redis

from rdbkit.backup.cluster import key_slot
from rdbkit.catalog import Catalog
from rdbkit.errors import AccountMismatchError, RestoreError
from rdbkit.restore.cluster_seed import seed_cluster, slot_ranges
from rdbkit.storage import LocalStore


def test_slot_ranges_cover_every_slot_once():
    for n in (1, 2, 3, 4, 7, 16384):
        ranges = slot_ranges(n)
        assert ranges[0][0] == 0 and ranges[-1][1] == 16383
        assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:]))
    with pytest.raises(RestoreError):
        slot_ranges(0)


@pytest.fixture
def db0_snapshot(redis7, tmp_path):
    """A redis 7.0 dump of mixed types, all in db 0, imported into a local catalog."""
    redis7.reset()
    with contextlib.closing(redis7.client()) as c:
        pipe = c.pipeline(transaction=False)
        for i in range(3000):
            pipe.set(f"s:{i}", f"value-{i}")
            if i % 10 == 0:
                pipe.rpush(f"l:{i}", *range(5))
                pipe.hset(f"{{tag}}:h:{i}", mapping={"a": i, "b": "x"})
                pipe.zadd(f"z:{i}", {"m1": 1.5, "m2": i})
                pipe.pexpire(f"s:{i}", 3_600_000)
        pipe.execute()
        expected = {k: c.dump(k) for k in c.scan_iter(count=1000)}
    catalog = Catalog(LocalStore(tmp_path / "store"), account="t")
    catalog.import_file(redis7.save(), "snap")
    return catalog, expected


@pytest.mark.parametrize("shards", [3, 4])
def test_seeded_cluster_holds_every_key_on_its_owner(db0_snapshot, tmp_path, shards):
    catalog, expected = db0_snapshot
    seeded = seed_cluster(catalog, "snap", tmp_path / "cluster", shards, binary="/usr/bin/redis-server")
    try:
        assert sum(n.keys for n in seeded.nodes) == len(expected)
        for node in seeded.nodes:
            start, end = node.slots
            with contextlib.closing(redis.Redis(port=node.port, socket_timeout=30)) as c:
                keys = list(c.scan_iter(count=1000))
                assert len(keys) == node.keys == c.dbsize()
                assert all(start <= key_slot(k) <= end for k in keys)
                info = c.execute_command("CLUSTER", "INFO").decode()
                assert "cluster_state:ok" in info and f"cluster_known_nodes:{shards}" in info
        cluster = redis.RedisCluster(host="127.0.0.1", port=seeded.nodes[0].port, socket_timeout=30)
        with contextlib.closing(cluster):
            for key, dump in expected.items():
                assert cluster.dump(key) == dump, key
            assert 0 < cluster.pttl("s:0") <= 3_600_000
        # redis-cli -c follows MOVED to the owner
        out = subprocess.run(["redis-cli", "-c", "-p", str(seeded.nodes[0].port), "GET", "s:2999"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
        assert out == "value-2999"
    finally:
        seeded.stop()
    assert all(n.process.poll() is not None for n in seeded.nodes)


def test_multi_db_snapshot_is_refused_and_nothing_starts(redis7, tmp_path):
    redis7.reset()
    with contextlib.closing(redis7.client(db=3)) as c:
        c.set("elsewhere", "1")
    catalog = Catalog(LocalStore(tmp_path / "store"), account="t")
    catalog.import_file(redis7.save(), "multi")
    with pytest.raises(RestoreError, match="db 3"):
        seed_cluster(catalog, "multi", tmp_path / "c", 3, binary="/usr/bin/redis-server")
    assert not list((tmp_path / "c").glob("*/dump.rdb"))


def test_other_account_cannot_seed(db0_snapshot, tmp_path):
    catalog, _ = db0_snapshot
    with pytest.raises(AccountMismatchError):
        seed_cluster(catalog, "snap", tmp_path / "c", 2, binary="/usr/bin/redis-server",
                     account="someone-else")
    assert not list((tmp_path / "c").glob("*/dump.rdb"))
