"""SAVE, BGSAVE, load at start, and DUMP/RESTORE against real redis-server 7.0."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
import redis

from datasets import server_view, write_dataset
from nodes import node, running_node  # noqa: F401  (fixture)
from rdbkit.codec import Decoder
from servers import redis7_binary, running_server


def _entries(path: Path) -> dict:
    with Decoder(str(path)) as dec:
        return {(e.db, e.key): (e.type, e.value, e.expire_ms, e.field_expires) for e in dec}


@pytest.fixture
def workdir():
    path = Path(tempfile.mkdtemp(prefix="rdbkit-node-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_save_is_loaded_by_redis7_with_same_keys_and_ttls(workdir):
    expire_at = int(time.time() * 1000) + 3_600_000
    with running_node(workdir) as n:
        with contextlib.closing(n.client()) as c:
            c.set("plain", "value")
            c.set("int", 12345)
            c.set("long", "x" * 5000)  # LZF-compressed in the file
            c.set(b"bin\x00\xff", bytes(range(256)))
            c.set("ttl", "soon", pxat=expire_at)
            c.execute_command("SELECT", 3)
            c.set("in-db3", "three")
            assert c.save() is True
            assert c.info("persistence")["rdb_changes_since_last_save"] == 0
    assert _entries(workdir / "dump.rdb")[(0, b"ttl")][2] == expire_at
    with running_server("redis7-load", redis7_binary(), {"dir": str(workdir)}) as srv:
        c0, c3 = srv.client(), srv.client(db=3)
        assert c0.get("plain") == b"value" and c0.get("int") == b"12345"
        assert c0.get("long") == b"x" * 5000 and c0.get(b"bin\x00\xff") == bytes(range(256))
        assert c0.pexpiretime("ttl") == expire_at and c3.get("in-db3") == b"three"
        assert c0.dbsize() == 5


def test_node_restarts_from_its_own_dump(workdir):
    with running_node(workdir) as n:
        with contextlib.closing(n.client()) as c:
            c.mset({f"k{i}": i for i in range(1000)})
            c.set("ttl", "v", ex=1000)
            c.set("gone", "v", px=1)
            c.execute_command("SELECT", 15)
            c.set("last-db", "x")
            c.save()
    with running_node(workdir) as n:
        with contextlib.closing(n.client()) as c:
            assert c.dbsize() == 1001 and c.get("k999") == b"999"
            assert 990 < c.ttl("ttl") <= 1000
            c.execute_command("SELECT", 15)
            assert c.get("last-db") == b"x"


def test_every_type_from_redis7_survives_node_save_and_dump(workdir, redis7):
    """Types the node cannot operate on yet are kept as loaded and written back unchanged."""
    redis7.reset()
    write_dataset(redis7)
    expected = server_view(redis7)
    shutil.copyfile(redis7.save(), workdir / "dump.rdb")
    original = _entries(workdir / "dump.rdb")
    with running_node(workdir) as n:
        with contextlib.closing(n.client()) as c:
            assert sum(v["keys"] for v in c.info("keyspace").values()) == len(original)
            (db, some_list), = [k for k, v in original.items() if v[0] == "list"][:1]
            c.execute_command("SELECT", db)
            assert c.type(some_list) == b"list"
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                c.get(some_list)
            payload = c.dump(some_list)
            c.execute_command("SELECT", 0)
            c.save()
    saved = _entries(workdir / "dump.rdb")
    assert saved == original
    # The node's file loads in redis 7.0 and holds the very same data.
    redis7.reset()
    with running_server("redis7-reload", redis7_binary(), {"dir": str(workdir)}) as srv:
        assert server_view(srv) == expected
        c = srv.client()
        c.config_set("sanitize-dump-payload", "yes")
        c.restore("from-node", 0, payload)
        assert c.lrange("from-node", 0, -1) == srv.client(db=db).lrange(some_list, 0, -1)


def _digest(client, key: bytes) -> bytes:
    return client.execute_command("DEBUG", "DIGEST-VALUE", key)


def test_dump_restore_both_ways_with_redis7(node, redis7):  # noqa: F811
    node.reset()
    redis7.reset()
    redis7.config_set("sanitize-dump-payload", "yes")
    write_dataset(redis7)
    ours, theirs = node.client(), redis7.client()
    try:
        keys = [k for k in theirs.scan_iter(count=1000)]
        assert keys
        for key in keys:
            payload = theirs.dump(key)
            ours.restore(key, 0, payload, replace=True)
            back = ours.dump(key)
            theirs.restore(key + b":back", 0, back)
            theirs.persist(key)  # the digest covers "has a TTL" too
            assert _digest(theirs, key + b":back") == _digest(theirs, key), key
        # Strings written by the node restore into redis with sanitize-dump-payload on.
        ours.set("s", "hello" * 100)
        ours.set("n", 42)
        for key in (b"s", b"n"):
            theirs.restore(key, 0, ours.dump(key), replace=True)
            assert theirs.get(key) == ours.get(key)
    finally:
        ours.close()
        theirs.close()


def test_bgsave_forks_and_reports(workdir):
    with running_node(workdir) as n:
        with contextlib.closing(n.client()) as c:
            c.mset({f"k{i}": "v" * 100 for i in range(20000)})
            assert c.info("persistence")["rdb_changes_since_last_save"] == 20000
            before = c.lastsave()
            time.sleep(1.1)
            assert c.bgsave() is True
            deadline = time.monotonic() + 30
            while c.info("persistence")["rdb_bgsave_in_progress"] and time.monotonic() < deadline:
                time.sleep(0.05)
            info = c.info("persistence")
            assert info["rdb_bgsave_in_progress"] == 0 and info["rdb_last_bgsave_status"] == "ok"
            assert info["rdb_changes_since_last_save"] == 0
            assert c.lastsave() > before
    entries = _entries(workdir / "dump.rdb")
    assert len(entries) == 20000 and entries[(0, b"k7")][1] == b"v" * 100
    assert not list(workdir.glob("temp-*.rdb"))


def test_sigkill_during_bgsave_leaves_a_whole_dump(workdir):
    with running_node(workdir) as n:
        with contextlib.closing(n.client()) as c:
            c.mset({f"old{i}": "x" * 200 for i in range(50000)})
            c.save()
            old = (workdir / "dump.rdb").read_bytes()
            c.mset({f"new{i}": "y" * 200 for i in range(50000)})
            c.bgsave()
        os.kill(n.process.pid, signal.SIGKILL)
        n.process.wait(10)
    time.sleep(2)  # an orphaned child may still finish and rename its complete file
    data = (workdir / "dump.rdb").read_bytes()
    entries = _entries(workdir / "dump.rdb")  # decodes to the end: EOF and checksum intact
    assert data == old or len(entries) == 100000


def test_failed_save_keeps_the_previous_dump(workdir):
    with running_node(workdir) as n:
        with contextlib.closing(n.client()) as c:
            c.set("a", "1")
            c.save()
            old = (workdir / "dump.rdb").read_bytes()
            c.set("b", "2")
            blocker = workdir / "blocked.rdb"
            blocker.mkdir()
            (blocker / "x").write_text("a non-empty directory cannot be replaced by a file")
            c.config_set("dbfilename", "blocked.rdb")
            with pytest.raises(redis.ResponseError):
                c.save()
            c.config_set("dbfilename", "dump.rdb")
            assert (workdir / "dump.rdb").read_bytes() == old
            assert not list(workdir.glob("temp-*.rdb"))


def test_shutdown_save_and_sigterm(workdir):
    with running_node(workdir, "--save", "3600 1") as n:
        with contextlib.closing(n.client()) as c:
            c.set("kept", "by sigterm")
        n.process.send_signal(signal.SIGTERM)
        assert n.process.wait(15) == 0
    assert _entries(workdir / "dump.rdb")[(0, b"kept")][1] == b"by sigterm"
    with running_node(workdir) as n:
        with contextlib.closing(n.client()) as c:
            c.set("more", "x")
            with contextlib.suppress(redis.ConnectionError):
                c.shutdown(save=True)
        assert n.process.wait(15) == 0
    assert set(_entries(workdir / "dump.rdb")) == {(0, b"kept"), (0, b"more")}


def test_refuses_dump_with_more_databases(workdir):
    with running_node(workdir) as n:
        with contextlib.closing(n.client()) as c:
            c.execute_command("SELECT", 9)
            c.set("a", "1")
            c.save()
    with pytest.raises(RuntimeError, match="databases"):
        with running_node(workdir, "--databases", "4"):
            pass
