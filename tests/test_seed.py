"""Seeding a new node: the verified RDB placed where it loads at start (rdbkit.restore.seed).

A redis7 snapshot is seeded as-is; a valkey9 snapshot (VALKEY080, which Redis
7.0 cannot read) is re-encoded to RDB 10 on the way. A fresh redis-server 7.0
then starts on the seeded directory and must hold what the source held (read
through the server), and Debian's redis-check-rdb must accept the file.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
from pathlib import Path

import pytest
from rdbbuild import E

from datasets import function_codes, server_view, write_dataset
from servers import free_port, redis7_binary, running_server
from rdbkit.backup.connection import Connection
from rdbkit.catalog import Catalog
from rdbkit.catalog.catalog import Capture, ShardInput
from rdbkit.catalog.manifest import SourceInfo
from rdbkit.codec import Decoder, RdbWriter
from rdbkit.codec.model import Stream
from rdbkit.errors import AccountMismatchError, RestoreError, SnapshotChecksumError
from rdbkit.restore import seed, start_seeded_server
from rdbkit.storage import LocalStore

ACCOUNT = "t"
REDIS_CHECK_RDB = Path("/usr/bin/redis-check-rdb")


def _snapshot(server, tmp_path_factory):
    write_dataset(server)
    path = server.save()
    root = tmp_path_factory.mktemp(f"seed-store-{server.name}")
    Catalog(LocalStore(root), account=ACCOUNT).import_file(path, "s")
    return root, server_view(server), function_codes(server), path


@pytest.fixture(scope="module")
def redis7_snap(redis7, tmp_path_factory):
    return _snapshot(redis7, tmp_path_factory)


@pytest.fixture(scope="module")
def valkey9_snap(valkey9, tmp_path_factory):
    return _snapshot(valkey9, tmp_path_factory)


def _no_active_time(view: dict) -> dict:
    out = {}
    for k, (kind, value, exp) in view.items():
        if isinstance(value, Stream):
            value = dataclasses.replace(value, groups=tuple(
                dataclasses.replace(g, consumers=tuple(
                    dataclasses.replace(c, active_time_ms=None) for c in g.consumers))
                for g in value.groups))
        out[k] = (kind, value, exp)
    return out


def _check_rdb(path: Path) -> None:
    result = subprocess.run([str(REDIS_CHECK_RDB), str(path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "RDB looks OK" in result.stdout, result.stdout[-2000:]


def test_seed_redis7_snapshot(redis7_snap, tmp_path):
    root, view, functions, original = redis7_snap
    directory = tmp_path / "node"
    path = seed(Catalog(LocalStore(root), account=ACCOUNT), "s", directory)
    assert path == directory / "dump.rdb"
    assert path.read_bytes() == original.read_bytes()  # verified, decompressed, unchanged
    assert [p.name for p in directory.iterdir()] == ["dump.rdb"]  # no temp files left
    _check_rdb(path)
    with running_server("seeded7", redis7_binary(), {"dir": str(directory)}) as node:
        assert server_view(node) == view
        assert function_codes(node) == functions


def test_seed_valkey9_snapshot_reencoded_for_redis7(valkey9_snap, tmp_path):
    root, view, functions, _ = valkey9_snap
    catalog = Catalog(LocalStore(root), account=ACCOUNT)
    with pytest.raises(RestoreError, match="field TTL"):
        seed(catalog, "s", tmp_path / "refused", target_version=10)
    assert not (tmp_path / "refused" / "dump.rdb").exists()
    directory = tmp_path / "node"
    path = seed(catalog, "s", directory, target_version=10, dbfilename="seed.rdb",
                unsupported="drop")
    assert path.read_bytes()[:9] == b"REDIS0010"
    decoder = Decoder(str(path))
    assert sum(1 for _ in decoder) == len(view) and decoder.checksum_status == "ok"
    _check_rdb(path)
    with running_server("seeded7", redis7_binary(),
                        {"dir": str(directory), "dbfilename": "seed.rdb"}) as node:
        # hash field TTLs have no RDB 10 form: the hashes arrive without them
        assert _no_active_time(server_view(node)) == _no_active_time(view)
        assert function_codes(node) == functions


def test_start_seeded_server_helper(redis7_snap, tmp_path):
    root, view, _, _ = redis7_snap
    directory = tmp_path / "node"
    seed(Catalog(LocalStore(root), account=ACCOUNT), "s", directory)
    port = free_port()
    process = start_seeded_server(redis7_binary(), directory, port)
    try:
        with Connection("127.0.0.1", port) as conn:
            total = 0
            for db in range(16):
                conn.call("SELECT", db)
                total += conn.call("DBSIZE")
        assert total == len(view)
    finally:
        process.terminate()
        process.wait(30)


def _rdb(prefix: bytes) -> bytes:
    out = io.BytesIO()
    with RdbWriter(out, version=10) as w:
        w.begin()
        for i in range(50):
            w.write(E(prefix + b":%d" % i, "string", b"v%d" % i))
    return out.getvalue()


def test_a_cluster_snapshot_seeds_as_a_whole(tmp_path):
    catalog = Catalog(LocalStore(tmp_path / "store"), account=ACCOUNT)
    shards = [_rdb(b"a"), _rdb(b"b")]
    catalog.create("two", Capture(SourceInfo(url="redis+cluster://x:1", engine="redis"),
                                  [ShardInput(s) for s in shards]))
    path = seed(catalog, "two", tmp_path / "n")
    keys = sorted(e.key for e in Decoder(str(path)))
    assert keys == sorted(e.key for s in shards for e in Decoder(io.BytesIO(s)))
    assert sorted(p.name for p in (tmp_path / "n").iterdir()) == ["dump.rdb"]


def test_seed_refuses_other_account_and_corruption(tmp_path):
    catalog = Catalog(LocalStore(tmp_path / "store"), account=ACCOUNT)
    catalog.create("one", Capture(SourceInfo(url="redis://x:1", engine="redis"),
                                  [ShardInput(_rdb(b"k"))]))
    directory = tmp_path / "n"
    directory.mkdir()
    (directory / "dump.rdb").write_bytes(b"previous")
    with pytest.raises(AccountMismatchError):
        seed(catalog, "one", directory, account="other")
    (obj,) = (tmp_path / "store" / "data" / "one").rglob("shard-*")
    data = bytearray(obj.read_bytes())
    data[40] ^= 1
    obj.write_bytes(bytes(data))
    with pytest.raises(SnapshotChecksumError):
        seed(catalog, "one", directory)
    # an existing file is untouched and nothing else is left behind
    assert (directory / "dump.rdb").read_bytes() == b"previous"
    assert [p.name for p in directory.iterdir()] == ["dump.rdb"]
