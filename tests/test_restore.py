"""Restore into running nodes: pipelined RESTORE from a catalog snapshot (rdbkit.restore).

Sources are the session servers (``redis7``, ``valkey9``) filled with the full
dataset and SAVEd; the file is imported into a LocalStore catalog; targets
are FRESH servers started per test (``running_server``), so every check sees
exactly what the restore wrote. The target's view, read through the server
itself, must equal the source's key by key (PEXPIRETIME is exact on both, so
no expiry tolerance), plus field TTLs (Valkey) and function libraries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from rdbbuild import E

from datasets import field_expires_view, function_codes, server_view, write_dataset
from servers import redis6_binary, redis7_binary, running_server, valkey9_binary
from rdbkit.backup.connection import Connection
from rdbkit.catalog import Catalog
from rdbkit.catalog.catalog import Capture, ShardInput
from rdbkit.catalog.manifest import SourceInfo
from rdbkit.codec import RdbWriter
from rdbkit.codec.model import Stream
from rdbkit.errors import AccountMismatchError, DecodeError, RestoreError, SnapshotChecksumError
from rdbkit.restore import BusyKeyError, RestoreReport, restore_entries, restore_snapshot
from rdbkit.storage import LocalStore
from rdbkit.urls import RedisUrl

ACCOUNT = "t"


@dataclass
class Source:
    name: str
    path: Path
    view: dict
    field_expires: dict
    functions: list[bytes]
    dataset: object
    store_root: Path

    def catalog(self) -> Catalog:
        return Catalog(LocalStore(self.store_root), account=ACCOUNT)


def _make_source(server, tmp_path_factory, more=None, label: str = "store") -> Source:
    """The mixed dataset (plus what ``more(server)`` writes) SAVEd and imported as "s"."""
    dataset = write_dataset(server)
    if more is not None:
        more(server)
    path = server.save()
    root = tmp_path_factory.mktemp(f"{label}-{server.name}")
    Catalog(LocalStore(root), account=ACCOUNT).import_file(path, "s")
    return Source(
        name=server.name,
        path=path,
        view=server_view(server),
        field_expires=field_expires_view(server, dataset.field_expires),
        functions=function_codes(server),
        dataset=dataset,
        store_root=root,
    )


@pytest.fixture(scope="module")
def redis7_source(redis7, tmp_path_factory) -> Source:
    return _make_source(redis7, tmp_path_factory)


@pytest.fixture(scope="module")
def valkey9_source(valkey9, tmp_path_factory) -> Source:
    return _make_source(valkey9, tmp_path_factory)


@contextlib.contextmanager
def fresh(kind: str = "redis7", **config):
    binary = {"redis7": redis7_binary, "valkey9": valkey9_binary, "redis6": redis6_binary}[kind]()
    settings = {k.replace("_", "-"): v for k, v in config.items()}
    with running_server(f"target-{kind}", binary, settings) as srv:
        yield srv


def url(server, db: int = 0) -> RedisUrl:
    return RedisUrl("127.0.0.1", server.port, db=db)


def dbsizes(server) -> dict[int, int]:
    out = {}
    with Connection("127.0.0.1", server.port) as conn:
        for db in range(16):
            conn.call("SELECT", db)
            n = conn.call("DBSIZE")
            if n:
                out[db] = n
    return out


def _no_active_time(view: dict) -> dict:
    """Redis 7.0 has no consumer active-time (Valkey 9 has): compare without it."""
    out = {}
    for k, (kind, value, exp) in view.items():
        if isinstance(value, Stream):
            groups = tuple(
                dataclasses.replace(g, consumers=tuple(
                    dataclasses.replace(c, active_time_ms=None) for c in g.consumers))
                for g in value.groups
            )
            value = dataclasses.replace(value, groups=groups)
        out[k] = (kind, value, exp)
    return out


def assert_same_view(expected: dict, actual: dict) -> None:
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    assert not missing and not extra, f"missing {missing[:10]}, extra {extra[:10]}"
    bad = [k for k in sorted(expected) if expected[k] != actual[k]]
    assert not bad, (f"{len(bad)} keys differ, first {bad[0]}: "
                     f"{expected[bad[0]]!r:.300} != {actual[bad[0]]!r:.300}")


def expected_dbs(view: dict) -> dict[int, int]:
    out: dict[int, int] = {}
    for db, _ in view:
        out[db] = out.get(db, 0) + 1
    return out


# ---- round trips ----------------------------------------------------------------


@pytest.mark.parametrize("connections", [1, 4])
def test_redis7_snapshot_into_fresh_redis7(redis7_source, connections):
    with fresh("redis7") as target:
        report = restore_snapshot(redis7_source.catalog(), "s", url(target),
                                  connections=connections, batch=7)
        assert isinstance(report, RestoreReport)
        assert report.payload_version == 10
        assert report.keys_written == len(redis7_source.view)
        assert report.dbs == expected_dbs(redis7_source.view)
        assert report.keys_skipped == 0 and report.errors == []
        assert report.functions == len(redis7_source.functions) == 2
        assert_same_view(redis7_source.view, server_view(target))
        assert function_codes(target) == redis7_source.functions


def test_idle_time_carried_over(redis7_source):
    # the source is LRU (allkeys-lru): its RDB has IDLE; the restored key keeps it
    with fresh("redis7", maxmemory_policy="allkeys-lru") as target:
        restore_snapshot(redis7_source.catalog(), "s", url(target))
        with Connection("127.0.0.1", target.port, db=15) as conn:
            idle = conn.call("OBJECT", "IDLETIME", b"lru:restored")
        assert idle >= 5000


def test_valkey9_snapshot_into_fresh_valkey9(valkey9_source):
    with fresh("valkey9", maxmemory_policy="allkeys-lfu", lfu_decay_time="0") as target:
        report = restore_snapshot(valkey9_source.catalog(), "s", url(target))
        assert report.payload_version == 80
        assert report.keys_written == len(valkey9_source.view) and report.unsupported == []
        assert_same_view(valkey9_source.view, server_view(target))
        fields = field_expires_view(target, valkey9_source.dataset.field_expires)
        assert fields == valkey9_source.field_expires
        assert function_codes(target) == valkey9_source.functions
        with Connection("127.0.0.1", target.port, db=15) as conn:
            assert conn.call("OBJECT", "FREQ", b"lru:restored") == 200  # FREQ sent to an LFU target


def test_valkey9_snapshot_into_redis7_transcodes(valkey9_source):
    """VALKEY080 → RDB 10 payloads. Hash field TTLs have no RDB 10 form: refused by default;
    with unsupported="drop" the hashes are restored without them and listed."""
    with fresh("redis7") as target:
        with pytest.raises(RestoreError, match="field TTL") as info:
            restore_snapshot(valkey9_source.catalog(), "s", url(target), connections=1)
        assert info.value.key in (b"hfe:some", b"hfe:all") and info.value.db == 15
        assert sum(info.value.written.values()) == sum(dbsizes(target).values())
    with fresh("redis7") as target:
        report = restore_snapshot(valkey9_source.catalog(), "s", url(target), unsupported="drop")
        assert report.payload_version == 10
        dropped = sorted((db, key) for db, key, _ in report.unsupported)
        assert dropped == [(15, b"hfe:all"), (15, b"hfe:some")]
        assert report.keys_written == len(valkey9_source.view) and report.keys_skipped == 0
        assert_same_view(_no_active_time(valkey9_source.view), _no_active_time(server_view(target)))
        assert function_codes(target) == valkey9_source.functions


def test_redis7_snapshot_into_redis6(redis7_source):
    """RDB 9 payloads (Redis 6.2 has no functions: refused by default, dropped on request)."""
    with fresh("redis6") as target:
        with pytest.raises(RestoreError, match="no FUNCTION"):
            restore_snapshot(redis7_source.catalog(), "s", url(target))
        assert dbsizes(target) == {}
        report = restore_snapshot(redis7_source.catalog(), "s", url(target), unsupported="drop")
        assert report.payload_version == 9 and report.functions == 0
        assert any("functions dropped" in e for e in report.errors)
        assert report.keys_written == len(redis7_source.view)
        view = server_view(target)
        assert set(view) == set(redis7_source.view)
        for key, (kind, value, expire) in redis7_source.view.items():
            got_kind, got_value, got_expire = view[key]
            assert got_kind == kind, key
            if kind == "stream":  # 6.2 keeps no entries_read / first id / max deleted id
                assert got_value.entries == value.entries and got_value.last_id == value.last_id
            else:
                assert got_value == value, key
            assert (got_expire is None) == (expire is None), key
            if expire is not None:
                assert abs(got_expire - expire) <= 1000, key  # 6.2: now + PTTL


@pytest.mark.parametrize("kind", ["redis7", "valkey9"])
def test_sanitize_dump_payload_yes(kind, redis7_source, valkey9_source):
    """Deep payload validation on the target accepts every payload rdbkit builds.

    Redis 7.0: CONFIG SET. Valkey 9.1.2 accepts the setting only in its config
    file (CONFIG GET/SET do not know the name), so that target starts with it."""
    source = redis7_source if kind == "redis7" else valkey9_source
    config = {} if kind == "redis7" else {"sanitize_dump_payload": "yes"}
    with fresh(kind, **config) as target:
        if kind == "redis7":
            target.config_set("sanitize-dump-payload", "yes")
        report = restore_snapshot(source.catalog(), "s", url(target), unsupported="drop")
        assert report.keys_written == len(source.view)
        assert_same_view(source.view, server_view(target))


# ---- refusals -------------------------------------------------------------------


def test_existing_key_without_replace_refuses_then_replace_overwrites(redis7_source):
    with fresh("redis7") as target:
        with Connection("127.0.0.1", target.port, db=1) as conn:
            conn.call("SET", b"hash:small", b"mine")
        with pytest.raises(BusyKeyError) as info:
            restore_snapshot(redis7_source.catalog(), "s", url(target), connections=4, batch=16)
        err = info.value
        assert isinstance(err, RestoreError)
        assert (err.db, err.key) == (1, b"hash:small")
        with Connection("127.0.0.1", target.port, db=1) as conn:
            assert conn.call("GET", b"hash:small") == b"mine"  # not overwritten
        actual = dbsizes(target)
        actual[1] -= 1  # the key that was there before
        assert err.written == {db: n for db, n in actual.items() if n}  # exact
        assert err.report.keys_written == sum(err.written.values())

        report = restore_snapshot(redis7_source.catalog(), "s", url(target), replace=True)
        assert report.keys_written == len(redis7_source.view)
        assert_same_view(redis7_source.view, server_view(target))


def test_flush_clears_the_target_first(redis7_source):
    with fresh("redis7") as target:
        with Connection("127.0.0.1", target.port, db=3) as conn:
            conn.call("SET", b"stale", b"x")
            conn.call("SET", b"str:short", b"y")
        report = restore_snapshot(redis7_source.catalog(), "s", url(target), flush=True)
        assert report.flushed
        assert_same_view(redis7_source.view, server_view(target))


def test_existing_function_library_refuses_before_any_key(redis7_source):
    with fresh("redis7") as target:
        with Connection("127.0.0.1", target.port) as conn:
            conn.call("FUNCTION", "LOAD", redis7_source.functions[0])
        with pytest.raises(RestoreError, match="already exists") as info:
            restore_snapshot(redis7_source.catalog(), "s", url(target))
        assert info.value.written == {} and dbsizes(target) == {}


def test_account_mismatch_leaves_target_untouched(redis7_source):
    with fresh("redis7") as target:
        with Connection("127.0.0.1", target.port) as conn:
            conn.call("SET", b"keep", b"me")
        for verify_first in (True, False):
            with pytest.raises(AccountMismatchError):
                restore_snapshot(redis7_source.catalog(), "s", url(target), account="other",
                                 flush=True, verify_first=verify_first)
        assert dbsizes(target) == {0: 1}


def test_corrupt_shard_refused_before_writing(redis7_source, tmp_path):
    root = tmp_path / "store"
    catalog = Catalog(LocalStore(root), account=ACCOUNT)
    catalog.import_file(redis7_source.path, "c")
    (obj,) = (root / "data" / "c").rglob("shard-*")
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0x40
    obj.write_bytes(bytes(data))
    with fresh("redis7") as target:
        with pytest.raises(SnapshotChecksumError):
            restore_snapshot(catalog, "c", url(target), flush=True)
        assert dbsizes(target) == {}


def test_corrupt_shard_streamed_reports_what_was_written(redis7_source, tmp_path):
    """verify_first=False: the mismatch shows only at EOF (or as a decode error earlier)."""
    root = tmp_path / "store"
    catalog = Catalog(LocalStore(root), account=ACCOUNT)
    catalog.import_file(redis7_source.path, "c")
    (obj,) = (root / "data" / "c").rglob("shard-*")
    data = bytearray(obj.read_bytes())
    data[-3] ^= 0x01  # inside the CRC64: every key decodes, the checksum does not match
    obj.write_bytes(bytes(data))
    with fresh("redis7") as target:
        with pytest.raises(RestoreError) as info:
            restore_snapshot(catalog, "c", url(target), verify_first=False)
        assert isinstance(info.value.__cause__, (SnapshotChecksumError, DecodeError))
        # the trade-off of streaming: keys sent before the damage showed stay (batches still
        # queued are dropped); `written` says exactly which
        assert info.value.written == dbsizes(target)


def test_multi_db_snapshot_into_cluster_node_refused(redis7_source):
    with fresh("redis7", cluster_enabled="yes") as target:
        with pytest.raises(RestoreError, match="cluster"):
            restore_snapshot(redis7_source.catalog(), "s", url(target))
        with Connection("127.0.0.1", target.port) as conn:
            assert conn.call("DBSIZE") == 0  # cluster mode: db 0 only


# ---- restore_entries directly -------------------------------------------------------


def test_expired_keys_skipped_and_counted():
    with fresh("redis7") as target:
        entries = [
            E(b"gone", "string", b"x", expire_ms=1000),
            E(b"stays", "string", b"y", expire_ms=4_102_444_800_000),
            E(b"list", "list", [b"a", b"b"], db=2),
            E(b"z", "zset", {b"m": 1.5}, db=2, idle=100),
        ]
        seen = []
        report = restore_entries(entries, url(target), connections=2, batch=1,
                                 progress=lambda r: seen.append(r.keys_written))
        assert (report.keys_written, report.keys_skipped, report.expired) == (3, 1, 1)
        assert seen and seen[-1] == 3 and seen == sorted(seen)
        assert report.dbs == {0: 1, 2: 2}
        with Connection("127.0.0.1", target.port) as conn:
            assert conn.call("PEXPIRETIME", b"stays") == 4_102_444_800_000
            assert conn.call("EXISTS", b"gone") == 0
            conn.call("SELECT", 2)
            assert conn.call("LRANGE", b"list", 0, -1) == [b"a", b"b"]
            assert conn.call("OBJECT", "IDLETIME", b"z") >= 100


def test_multi_shard_snapshot_restores_every_shard(tmp_path):
    def rdb(prefix: bytes) -> bytes:
        out = io.BytesIO()
        with RdbWriter(out, version=10) as w:
            w.begin()
            for i in range(300):
                w.write(E(prefix + b":%d" % i, "string", b"v%d" % i))
        return out.getvalue()

    catalog = Catalog(LocalStore(tmp_path / "store"), account=ACCOUNT)
    catalog.create("two", Capture(SourceInfo(url="redis+cluster://x:1", engine="redis"),
                                  [ShardInput(rdb(b"a")), ShardInput(rdb(b"b"))]))
    with fresh("redis7") as target:
        report = restore_snapshot(catalog, "two", url(target), connections=3, batch=50)
        assert report.keys_written == 600 and dbsizes(target) == {0: 600}
