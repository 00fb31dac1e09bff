"""Restore into running Redis Clusters (redis-server 7.0): keys routed to their slot's primary.

The source is the session ``redis7`` filled with a db-0 dataset (mixed types,
TTLs, hash tags, one function library), SAVEd and imported into a catalog.
Every check reads each primary with SCAN and DUMP/PEXPIRETIME: every key
exactly once, on the primary owning its slot, value and expiry equal to the
source's. Clusters are shared (session/module scope); each test starts by
flushing keys and functions on every primary.
"""

from __future__ import annotations

import contextlib
import io
import time

import pytest
from clusters import (  # noqa: F401  (cluster3, cluster3r: fixtures)
    CLUSTER_CONFIG,
    ClusterHandle,
    _wait_ok,
    cluster3,
    cluster3r,
    running_cluster,
)
from rdbbuild import E
from servers import free_port, redis7_binary, running_server

from rdbkit.backup.cluster import discover, key_slot
from rdbkit.backup.connection import Connection
from rdbkit.catalog import Catalog
from rdbkit.catalog.catalog import Capture, ShardInput
from rdbkit.catalog.manifest import SourceInfo
from rdbkit.codec import RdbWriter
from rdbkit.errors import RestoreError
from rdbkit.restore import BusyKeyError, RestoreReport
from rdbkit.restore.cluster import (
    MAX_REDIRECTS,
    restore_cluster_entries,
    restore_cluster_snapshot,
)
from rdbkit.restore.cluster_seed import split_snapshot
from rdbkit.storage import LocalStore

LIBRARY = b"#!lua name=rdbkitlib\nredis.register_function('one', function() return 1 end)"
FAR = 4_102_444_800_000  # 2100-01-01, in ms


@pytest.fixture(scope="module")
def cluster2():
    """Two primaries: ``redis-cli --cluster create`` wants three, so slots and MEET by hand."""
    with contextlib.ExitStack() as stack:
        nodes = []
        for i in range(2):
            bus = free_port()
            config = {**CLUSTER_CONFIG, "cluster-port": str(bus)}
            server = running_server(f"cluster2-{i}", redis7_binary(), config)
            nodes.append((stack.enter_context(server), bus))
        for i, (node, _) in enumerate(nodes):
            with Connection("127.0.0.1", node.port) as conn:
                conn.call("CLUSTER", "ADDSLOTSRANGE", 8192 * i, 8192 * i + 8191)
                conn.call("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        with Connection("127.0.0.1", nodes[0][0].port) as conn:
            conn.call("CLUSTER", "MEET", "127.0.0.1", nodes[1][0].port, nodes[1][1])
        handles = [n for n, _ in nodes]
        _wait_ok(handles, 0)
        yield ClusterHandle(handles, 0)


@pytest.fixture(scope="module")
def cluster4():
    with running_cluster(4, 0) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def source(redis7, tmp_path_factory):
    """(catalog with snapshot "s" and the 2-shard "two", {key: (dump, pexpiretime)})."""
    redis7.reset()
    with contextlib.closing(redis7.client()) as c:
        pipe = c.pipeline(transaction=False)
        for i in range(3000):
            pipe.set(f"s:{i}", f"value-{i}")
            if i % 7 == 0:
                pipe.pexpire(f"s:{i}", 3_600_000 + i)
            if i % 10 == 0:
                pipe.rpush(f"l:{i}", *range(i % 50 + 1))
                pipe.hset(f"{{tag}}:h:{i}", mapping={"a": i, "b": "x"})
                pipe.zadd(f"{{user{i % 13}}}:z:{i}", {"m1": 1.5, "m2": i})
                pipe.sadd(f"set:{i}", *range(i % 20 + 1))
                pipe.xadd(f"stream:{i}", {"f": i})
                pipe.pexpireat(f"{{tag}}:h:{i}", FAR - i)
        pipe.execute()
        c.function_load(LIBRARY)
        expected = _view(c, list(c.scan_iter(count=1000)))
    catalog = Catalog(LocalStore(tmp_path_factory.mktemp("cluster-restore-store")), account="t")
    catalog.import_file(redis7.save(), "s")
    # a 2-shard cluster snapshot: the same keys split by slot range into two RDBs
    dirs = [tmp_path_factory.mktemp(f"half{i}") for i in range(2)]
    counts = split_snapshot(catalog, "s", dirs)
    assert all(counts) and sum(counts) == len(expected)
    catalog.create("two", Capture(SourceInfo(url="redis+cluster://x:1", engine="redis"),
                                  [ShardInput((d / "dump.rdb").read_bytes()) for d in dirs]))
    redis7.reset()
    return catalog, expected


def _view(client, keys) -> dict:
    pipe = client.pipeline(transaction=False)
    for k in keys:
        pipe.dump(k)
        pipe.execute_command("PEXPIRETIME", k)
    out = pipe.execute()
    return {k: (out[2 * i], out[2 * i + 1]) for i, k in enumerate(keys)}


def primaries(cluster):
    """[(port, slot ranges)] of the cluster's primaries as the seed sees them now."""
    with Connection("127.0.0.1", cluster.seed.port) as conn:
        topology = discover(conn)
    return [(s.primary.port, s.slots) for s in topology.shards]


def reset(cluster) -> None:
    for port, _ in primaries(cluster):
        with Connection("127.0.0.1", port) as conn:
            conn.call("FLUSHALL")
            conn.call("FUNCTION", "FLUSH")


def cluster_view(cluster) -> tuple[dict, dict]:
    """({key: (dump, pexpiretime)} over all primaries, {port: keys}); asserts placement."""
    view: dict = {}
    counts = {}
    for port, ranges in primaries(cluster):
        with Connection("127.0.0.1", port) as conn:
            keys, cursor = [], b"0"
            while True:
                cursor, batch = conn.call("SCAN", cursor, "COUNT", 1000)
                keys += batch
                if cursor == b"0":
                    break
            assert len(set(keys)) == len(keys) == conn.call("DBSIZE")
            bad = [k for k in keys if not any(a <= key_slot(k) <= b for a, b in ranges)]
            assert not bad, f"{len(bad)} keys on :{port} outside its slots, e.g. {bad[0]!r}"
            replies = conn.pipeline([c for k in keys for c in (("DUMP", k), ("PEXPIRETIME", k))])
            for i, k in enumerate(keys):
                assert k not in view, f"{k!r} on two primaries"
                view[k] = (replies[2 * i], replies[2 * i + 1])
            counts[port] = len(keys)
    return view, counts


def assert_restored(cluster, expected: dict, report: RestoreReport) -> None:
    view, counts = cluster_view(cluster)
    missing = set(expected) - set(view)
    extra = set(view) - set(expected)
    assert not missing and not extra, (sorted(missing)[:5], sorted(extra)[:5])
    bad = [k for k in expected if expected[k] != view[k]]
    assert not bad, f"{len(bad)} keys differ, e.g. {bad[0]!r}"
    assert report.dbs == {0: len(expected)} and report.keys_written == len(expected)
    assert {int(a.rsplit(":", 1)[1]): n for a, n in report.nodes.items()} == counts
    for port, _ in primaries(cluster):
        with Connection("127.0.0.1", port) as conn:
            libs = conn.call("FUNCTION", "LIST")
            assert len(libs) == 1, port  # functions are per node: every primary has them


def slot_keys(slot: int, n: int, prefix: bytes = b"k") -> list[bytes]:
    """``n`` keys hashing to ``slot`` (one hash tag found by search)."""
    i = 0
    while key_slot(b"%d" % i) != slot:
        i += 1
    return [b"%s:{%d}:%d" % (prefix, i, j) for j in range(n)]


def wait_owner(cluster, slot: int, port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        owners = set()
        for node in cluster.nodes:
            with Connection("127.0.0.1", node.port) as conn:
                for start, end, primary, *_ in conn.call("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        owners.add(primary[1])
        if owners == {port}:
            return
        time.sleep(0.05)
    raise AssertionError(f"slot {slot} did not move to :{port}: {owners}")


def node_id(port: int) -> str:
    with Connection("127.0.0.1", port) as conn:
        return conn.call("CLUSTER", "MYID").decode()


# ---- round trips --------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["cluster3", "cluster2", "cluster4", "cluster3r"])
def test_snapshot_into_cluster(request, fixture, source):
    cluster = request.getfixturevalue(fixture)
    catalog, expected = source
    reset(cluster)
    seen = []
    report = restore_cluster_snapshot(catalog, "s", cluster.url, batch=64,
                                      progress=lambda r: seen.append(r.keys_written))
    assert report.payload_version == 10 and report.functions == 1 and not report.flushed
    assert report.keys_skipped == 0 and report.errors == [] and report.moved == 0
    assert len(report.nodes) == len(primaries(cluster))
    assert seen and seen == sorted(seen) and seen[-1] == len(expected)
    assert_restored(cluster, expected, report)


@pytest.mark.parametrize("fixture", ["cluster3", "cluster4"])
def test_two_shard_snapshot_resharded(request, fixture, source):
    cluster = request.getfixturevalue(fixture)
    catalog, expected = source
    with contextlib.closing(cluster.client()) as c:
        c.set("{stale}", "x")  # flush=True: gone before the keys arrive
    report = restore_cluster_snapshot(catalog, "two", cluster.url, flush=True,
                                      connections_per_node=2, batch=100, verify_first=False)
    assert report.flushed
    assert_restored(cluster, expected, report)


# ---- refusals -------------------------------------------------------------------------


def test_existing_key_without_replace_then_replace(cluster3, source):
    catalog, expected = source
    reset(cluster3)
    with contextlib.closing(cluster3.client()) as c:
        c.set("s:2999", "mine")
    with pytest.raises(BusyKeyError) as info:
        restore_cluster_snapshot(catalog, "s", cluster3.url, batch=32)
    err = info.value
    assert (err.db, err.key) == (0, b"s:2999")
    with contextlib.closing(cluster3.client()) as c:
        assert c.get("s:2999") == b"mine"  # not overwritten
    _, counts = cluster_view(cluster3)
    assert err.written == {0: sum(counts.values()) - 1}  # exact
    assert sum(err.report.nodes.values()) == err.report.keys_written == err.written[0]
    report = restore_cluster_snapshot(catalog, "s", cluster3.url, replace=True)
    assert_restored(cluster3, expected, report)


def test_multi_db_refused_and_cluster_untouched(cluster3, source, tmp_path):
    catalog, _ = source
    reset(cluster3)
    with contextlib.closing(cluster3.client()) as c:
        c.set("keep", "me")
    out = io.BytesIO()
    with RdbWriter(out, version=10) as w:
        w.begin()
        w.write(E(b"a", "string", b"1"))
        w.write(E(b"b", "string", b"2", db=3))
    catalog.create("multi", Capture(SourceInfo(url="redis://x:1", engine="redis"),
                                    [ShardInput(out.getvalue())]))
    with pytest.raises(RestoreError, match=r"dbs \[0, 3\]"):
        restore_cluster_snapshot(catalog, "multi", cluster3.url, flush=True)
    # entries: refused at the first one outside db 0 (nothing written when it is the first)
    with pytest.raises(RestoreError, match="db 2") as info:
        restore_cluster_entries([E(b"x", "string", b"1", db=2)], cluster3.url, flush=True)
    assert info.value.written == {}
    _, counts = cluster_view(cluster3)
    assert sum(counts.values()) == 1  # untouched: "keep" only
    entries = [E(b"e:%d" % i, "string", b"v") for i in range(500)]
    entries.append(E(b"late", "string", b"x", db=1))
    with pytest.raises(RestoreError, match="db 1") as info:
        restore_cluster_entries(entries, cluster3.url, batch=64)
    # like restore_entries: batches not yet full when the refusal comes are not sent
    _, counts = cluster_view(cluster3)
    assert 0 < info.value.written[0] <= 500
    assert info.value.written == {0: sum(counts.values()) - 1}  # exact ("keep" was there)


def test_standalone_target_refused(redis7):
    with pytest.raises(RestoreError, match="not a cluster"):
        restore_cluster_entries([E(b"a", "string", b"1")],
                                f"redis+cluster://127.0.0.1:{redis7.port}")


# ---- redirections ---------------------------------------------------------------------


def test_moved_and_ask_followed(cluster2):
    """A stale slot map (slot moved after discovery) → MOVED; a slot migrating → ASK."""
    reset(cluster2)
    with Connection("127.0.0.1", cluster2.seed.port) as conn:
        stale = discover(conn)
    (a_port, a_slots), (b_port, _) = primaries(cluster2)
    a_id, b_id = node_id(a_port), node_id(b_port)
    moved, migrating, looping = a_slots[0][0], a_slots[0][0] + 1, a_slots[0][0] + 2
    # MOVED: slot `moved` (empty) now belongs to B everywhere; the restore still routes to A
    for port in (b_port, a_port):
        with Connection("127.0.0.1", port) as conn:
            conn.call("CLUSTER", "SETSLOT", moved, "NODE", b_id)
    wait_owner(cluster2, moved, b_port)
    # ASK: slot `migrating` is on its way from A to B
    with Connection("127.0.0.1", b_port) as conn:
        conn.call("CLUSTER", "SETSLOT", migrating, "IMPORTING", a_id)
    with Connection("127.0.0.1", a_port) as conn:
        conn.call("CLUSTER", "SETSLOT", migrating, "MIGRATING", b_id)
    entries = [E(k, "string", k, expire_ms=FAR) for k in slot_keys(moved, 300, b"m")]
    entries += [E(k, "string", k) for k in slot_keys(migrating, 50, b"a")]
    entries += [E(b"other:%d" % i, "hash", {b"f": b"%d" % i}) for i in range(500)]
    try:
        report = restore_cluster_entries(entries, cluster2.url, batch=40, _topology=stale)
        assert report.keys_written == len(entries) == sum(report.nodes.values())
        assert report.moved >= 1 and report.refreshes >= 1
        in_migrating = sum(key_slot(e.key) == migrating for e in entries)
        assert report.asked == in_migrating >= 50
        with Connection("127.0.0.1", b_port) as conn:
            assert conn.call("CLUSTER", "COUNTKEYSINSLOT", moved) == sum(
                key_slot(e.key) == moved for e in entries)
            assert conn.call("CLUSTER", "COUNTKEYSINSLOT", migrating) == in_migrating
            assert conn.call("PEXPIRETIME", entries[0].key) == FAR
        with Connection("127.0.0.1", a_port) as conn:
            assert conn.call("CLUSTER", "COUNTKEYSINSLOT", migrating) == 0
    finally:
        for port in (b_port, a_port):  # finish the migration
            with Connection("127.0.0.1", port) as conn:
                conn.call("CLUSTER", "SETSLOT", migrating, "NODE", b_id)
    wait_owner(cluster2, migrating, b_port)
    view, _ = cluster_view(cluster2)  # every key on the primary owning its slot now
    assert len(view) == len(entries)

    # A migrating to B, B not importing: A says ASK B, B says MOVED A, ... → bounded
    with Connection("127.0.0.1", a_port) as conn:
        conn.call("CLUSTER", "SETSLOT", looping, "MIGRATING", b_id)
    try:
        (key,) = slot_keys(looping, 1, b"loop")
        with pytest.raises(RestoreError, match="redirected") as info:
            restore_cluster_entries([E(key, "string", b"1")], cluster2.url)
        assert info.value.key == key and info.value.written == {}
        assert f"{MAX_REDIRECTS + 1} times" in str(info.value)
    finally:
        with Connection("127.0.0.1", a_port) as conn:
            conn.call("CLUSTER", "SETSLOT", looping, "STABLE")
    view, _ = cluster_view(cluster2)
    assert key not in view and len(view) == len(entries)


# ---- a live cluster's backup, restored into other shard counts ---------------------------


@pytest.fixture(scope="module")
def cluster3_backup(cluster3, source):
    """The source keys restored into the 3-primary cluster, then backed up from it (3 shards)."""
    from rdbkit.backup.capture import backup

    catalog, expected = source
    reset(cluster3)
    restore_cluster_snapshot(catalog, "s", cluster3.url)
    manifest, decision = backup(catalog, cluster3.url, "from-cluster3", method="sync")
    assert decision.method == "sync" and len(manifest.shards) == 3
    assert manifest.keys == len(expected)
    return catalog, expected


@pytest.mark.parametrize("fixture", ["cluster2", "cluster4"])
def test_three_shard_backup_restored_into_other_shard_counts(request, fixture, cluster3_backup):
    cluster = request.getfixturevalue(fixture)
    catalog, expected = cluster3_backup
    reset(cluster)
    report = restore_cluster_snapshot(catalog, "from-cluster3", cluster.url)
    assert_restored(cluster, expected, report)
