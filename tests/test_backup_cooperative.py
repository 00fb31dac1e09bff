"""Cooperative (forkless) capture against real servers.

Each server gets the full dataset of ``tests/datasets.py``; the capture goes
through the catalog into a LocalStore, is fetched back as a plain RDB, and
then (1) decodes to exactly what the server returns key by key, (2) passes
the server family's check-rdb, (3) loads into a fresh server that then holds
the same data. The source must never fork.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import threading
import time
from pathlib import Path

import pytest

from test_real_servers import _diff
from datasets import field_expires_view, function_codes, server_view, write_dataset
from servers import redis6_binary, redis7_binary, running_server, valkey9_binary

from rdbkit import _codec, _pycodec
from rdbkit.backup.connection import Connection
from rdbkit.backup.cooperative import CONSISTENCY, CooperativeDump, capture_cooperative
from rdbkit.backup.info import server_facts
from rdbkit.catalog import Catalog
from rdbkit.errors import EncodeError
from rdbkit.storage import LocalStore
from rdbkit.urls import RedisUrl

REDIS_CHECK_RDB = Path("/usr/bin/redis-check-rdb")
#: ms: PEXPIRETIME (7.0+/valkey) is exact; redis 6.2 capture uses PTTL and the view too.
EXPIRE_TOLERANCE_MS = {"redis7": 0, "valkey9": 0, "redis6": 1000}
HEADERS = {"redis7": ("REDIS", 10), "valkey9": ("VALKEY", 80), "redis6": ("REDIS", 9)}
BINARIES = {"redis7": redis7_binary, "valkey9": valkey9_binary, "redis6": redis6_binary}


def url_of(server) -> RedisUrl:
    return RedisUrl("127.0.0.1", server.port)


def forks(server) -> tuple[int, int]:
    with contextlib.closing(server.client()) as c:
        info = c.info("all")
    return int(info["total_forks"]), int(info["rdb_bgsave_in_progress"])


class ForkWatch:
    """Polls INFO while a capture runs: total_forks must not move, no BGSAVE may run."""

    def __init__(self, server):
        self.server = server
        self.start = forks(server)[0]
        self.saw_bgsave = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            if forks(self.server)[1]:
                self.saw_bgsave = True
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def check(self):
        assert not self.saw_bgsave, "a BGSAVE ran during the capture"
        assert forks(self.server)[0] == self.start, "the source forked during the capture"


def snapshot(tmp_path: Path, capture, name: str = "x") -> tuple[Path, object]:
    catalog = Catalog(LocalStore(str(tmp_path / "store")), account="t")
    manifest = catalog.create(name, capture)
    [path] = catalog.fetch(name, tmp_path / "out")
    return path, manifest


def decode(codec, path: Path):
    decoder = codec.Decoder(str(path))
    entries = list(decoder)
    return decoder, entries


def by_key(entries) -> dict:
    out = {}
    for e in entries:
        assert (e.db, e.key) not in out, f"duplicate entry {e!r}"
        out[(e.db, e.key)] = e
    return out


def core(view: dict) -> dict:
    """``view`` with stream metadata that depends on the RDB version cut away.

    Across versions a stream keeps its entries, length, last ID, groups with
    their last IDs, pending entries and consumers; the derived counters
    (first_id, max_deleted_id, entries_added, entries_read: stored since RDB
    10) and consumer active_time (since RDB 11) are absent in older files and
    recomputed or unknown after loading them.
    """
    out = {}
    for db_key, (kind, value, expire_ms) in view.items():
        if kind == "stream":
            value = (
                value.entries, value.length, value.last_id,
                tuple((g.name, g.last_id, g.pending, tuple((c.name, c.pending) for c in g.consumers))
                      for g in value.groups),
            )
        out[db_key] = (kind, value, expire_ms)
    return out


def core_entries(decoded: dict) -> dict:
    return core({k: (e.type, e.value, e.expire_ms) for k, e in decoded.items()})


def compare(view: dict, decoded: dict, tolerance: int, *, field_expires: dict | None = None) -> None:
    assert set(decoded) == set(view), (
        f"only in the file: {sorted(set(decoded) - set(view))[:10]}; "
        f"only on the server: {sorted(set(view) - set(decoded))[:10]}"
    )
    problems = []
    for db_key, (kind, value, expire_ms) in sorted(view.items()):
        e = decoded[db_key]
        where = f"db={db_key[0]} key={db_key[1]!r} ({e.encoding})"
        if e.type != kind:
            problems.append(f"{where}: type {e.type}, server says {kind}")
        elif e.value != value:
            problems.append(f"{where}: {_diff(value, e.value)}")
        if (e.expire_ms is None) != (expire_ms is None) or (
            expire_ms is not None and abs(e.expire_ms - expire_ms) > tolerance
        ):
            problems.append(f"{where}: expire_ms {e.expire_ms}, server says {expire_ms}")
        if field_expires is not None and e.field_expires != field_expires.get(db_key):
            problems.append(f"{where}: field_expires {e.field_expires} != {field_expires.get(db_key)}")
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems[:20])


def check_rdb(path: Path, magic: str, tmp_path: Path) -> None:
    if magic == "VALKEY":  # Debian's redis-check-rdb does not know the VALKEY magic
        checker = tmp_path / "valkey-check-rdb"
        if not checker.exists():
            checker.symlink_to(valkey9_binary())
    else:
        checker = REDIS_CHECK_RDB
        assert checker.is_file(), f"{checker} is missing (bash tasks.sh setup)"
    result = subprocess.run([str(checker), str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "RDB looks OK" in result.stdout, result.stdout + result.stderr


@contextlib.contextmanager
def seeded(name: str, path: Path, tmp_path: Path):
    """A fresh server of kind ``name`` that loaded ``path`` as its dump at start."""
    seed_dir = tmp_path / f"seed-{name}"
    seed_dir.mkdir()
    os.link(path, seed_dir / "seed.rdb")
    with running_server(f"seed-{name}", BINARIES[name](),
                        {"dir": str(seed_dir), "dbfilename": "seed.rdb"}) as fresh:
        with contextlib.closing(fresh.client()) as c:
            info = c.info("persistence")
            assert info["loading"] == 0
        yield fresh


# -- the full dataset, per server -------------------------------------------------


@pytest.fixture(scope="module", params=["redis7", "valkey9", "redis6"])
def captured(request, tmp_path_factory):
    name = request.param
    server = request.getfixturevalue(name)
    dataset = write_dataset(server)
    view = server_view(server)
    tmp = tmp_path_factory.mktemp(f"coop-{name}")
    capture = capture_cooperative(url_of(server), batch=64)
    with ForkWatch(server) as watch:
        path, manifest = snapshot(tmp, capture)
    watch.check()
    return {
        "name": name, "server": server, "dataset": dataset, "view": view, "path": path,
        "manifest": manifest, "capture": capture, "tmp": tmp,
        "field_expires": field_expires_view(server, dataset.field_expires),
        "functions": function_codes(server),
    }


@pytest.mark.parametrize("codec", [_codec, _pycodec], ids=["c", "python"])
def test_capture_equals_the_servers_view(captured, codec):
    decoder, entries = decode(codec, captured["path"])
    assert (decoder.magic, decoder.version) == HEADERS[captured["name"]]
    assert decoder.checksum_status == "ok"
    compare(captured["view"], by_key(entries), EXPIRE_TOLERANCE_MS[captured["name"]],
            field_expires=captured["field_expires"])
    assert sorted(decoder.functions) == captured["functions"]
    assert decoder.aux[b"rdbkit-capture"] == b"cooperative"


def test_manifest_and_stats(captured):
    manifest, capture = captured["manifest"], captured["capture"]
    dump = capture.shards[0].data
    assert isinstance(dump, CooperativeDump)
    assert manifest.consistency == CONSISTENCY == capture.consistency
    assert "fuzzy" in manifest.consistency and "no fork" in manifest.consistency
    assert manifest.source.engine == ("valkey" if captured["name"] == "valkey9" else "redis")
    assert manifest.source.engine_version == captured["server"].version
    stats = dump.stats
    assert stats.keys == len(captured["view"]) == manifest.keys
    assert stats.bytes == captured["path"].stat().st_size
    assert stats.skipped_deleted == 0 and stats.duplicates == 0
    assert stats.raw == stats.keys and stats.transcoded == 0
    assert stats.dbs == sorted({db for db, _ in captured["view"]})
    assert sum(stats.by_type.values()) == stats.keys
    assert stats.by_type == manifest.shards[0].keys_by_type
    assert stats.batches >= stats.keys // 64
    assert 0 < stats.latency_p50_ms <= stats.latency_p99_ms <= stats.latency_max_ms


def test_check_rdb_accepts_the_capture(captured):
    check_rdb(captured["path"], HEADERS[captured["name"]][0], captured["tmp"])


def test_a_fresh_server_loads_the_capture(captured):
    name = captured["name"]
    with seeded(name, captured["path"], captured["tmp"]) as fresh:
        after = server_view(fresh)
        tolerance = EXPIRE_TOLERANCE_MS[name] + (1000 if name == "redis6" else 0)
        assert set(after) == set(captured["view"])
        for db_key, (kind, value, expire_ms) in captured["view"].items():
            k2, v2, e2 = after[db_key]
            assert (k2, v2) == (kind, value), db_key
            assert (e2 is None) == (expire_ms is None) and (e2 is None or abs(e2 - expire_ms) <= tolerance), db_key
        if name == "valkey9":
            assert field_expires_view(fresh, captured["dataset"].field_expires) == captured["field_expires"]
        assert function_codes(fresh) == captured["functions"]


# -- transcoding ------------------------------------------------------------------


def test_valkey_to_redis10_refuses_field_ttls(valkey9, tmp_path):
    write_dataset(valkey9)
    dump = capture_cooperative(url_of(valkey9), target_version=10).shards[0].data
    with pytest.raises(EncodeError, match="hash field TTLs"):
        for _ in dump:
            pass


def test_valkey_transcoded_to_redis10_loads_into_redis7(valkey9, tmp_path):
    dataset = write_dataset(valkey9)
    view = server_view(valkey9)
    capture = capture_cooperative(url_of(valkey9), target_version=10, drop_unsupported=True)
    with ForkWatch(valkey9) as watch:
        path, manifest = snapshot(tmp_path, capture)
    watch.check()
    stats = capture.shards[0].data.stats
    assert stats.transcoded == stats.keys == len(view) and stats.raw == 0
    assert {(k, f) for k, f in stats.dropped} == {(k, "hash field TTLs") for _, k in dataset.field_expires}
    decoder, entries = decode(_codec, path)
    assert (decoder.magic, decoder.version) == ("REDIS", 10)
    assert core_entries(by_key(entries)) == core(view)  # the field TTLs are gone
    assert all(e.field_expires is None for e in entries)
    check_rdb(path, "REDIS", tmp_path)
    with seeded("redis7", path, tmp_path) as fresh:
        after = server_view(fresh)
    assert core(after) == core(view)


def test_redis7_transcoded_down_to_rdb9_loads_into_redis6(redis7, tmp_path):
    write_dataset(redis7)
    view = server_view(redis7)
    capture = capture_cooperative(url_of(redis7), target_version=9, drop_unsupported=True)
    path, _ = snapshot(tmp_path, capture)
    stats = capture.shards[0].data.stats
    assert stats.transcoded == stats.keys == len(view)
    assert all(key is None for key, _ in stats.dropped)  # only the function libraries
    decoder, entries = decode(_codec, path)
    assert (decoder.magic, decoder.version) == ("REDIS", 9) and decoder.functions == []
    assert core_entries(by_key(entries)) == core(view)
    check_rdb(path, "REDIS", tmp_path)
    with seeded("redis6", path, tmp_path) as fresh:
        after = server_view(fresh)
    strip = lambda v: {k: x[:2] for k, x in core(v).items()}  # redis 6 view: PTTL-based expiry
    assert strip(after) == strip(view)


def test_redis6_upgraded_to_rdb10_is_the_raw_path_and_loads_into_redis7(redis6, tmp_path):
    write_dataset(redis6)
    view = server_view(redis6)
    capture = capture_cooperative(url_of(redis6), target_version=10)
    path, _ = snapshot(tmp_path, capture)
    stats = capture.shards[0].data.stats
    assert stats.raw == stats.keys == len(view)
    decoder, entries = decode(_codec, path)
    assert (decoder.magic, decoder.version) == ("REDIS", 10)
    compare(view, by_key(entries), 1000)
    with seeded("redis7", path, tmp_path) as fresh:
        after = server_view(fresh)
    strip = lambda v: {k: x[:2] for k, x in core(v).items()}
    assert strip(after) == strip(view)


# -- under load, deletions, big values, limits ---------------------------------------


def _fill(server, n: int, db: int = 0) -> list[bytes]:
    keys = [b"k:%d" % i for i in range(n)]
    with contextlib.closing(server.client(db=db)) as c:
        c.flushall()
        p = c.pipeline(transaction=False)
        for i, k in enumerate(keys):
            p.set(k, b"v%d" % i)
        p.execute()
    return keys


def test_concurrent_writes_and_deletes(redis7, tmp_path):
    keys = _fill(redis7, 4000)
    deleted: set[bytes] = set()
    stop = threading.Event()

    def churn():
        rng = random.Random(7)
        with contextlib.closing(redis7.client()) as c:
            i = 0
            while not stop.is_set():
                p = c.pipeline(transaction=False)
                for _ in range(20):
                    victim = rng.choice(keys)
                    p.delete(victim)
                    deleted.add(victim)
                    p.set(b"new:%d" % i, b"x" * rng.randrange(1, 200))
                    p.set(rng.choice(keys), b"rewritten")
                    i += 1
                p.execute()
                time.sleep(0.002)

    capture = capture_cooperative(url_of(redis7), batch=25, max_ops_per_s=4000)
    worker = threading.Thread(target=churn, daemon=True)
    with ForkWatch(redis7) as watch:
        worker.start()
        try:
            path, _ = snapshot(tmp_path, capture)
        finally:
            stop.set()
            worker.join()
    watch.check()
    stats = capture.shards[0].data.stats
    decoder, entries = decode(_codec, path)
    decoded = by_key(entries)  # no duplicates even while the keyspace changes
    assert decoder.checksum_status == "ok" and len(decoded) == stats.keys
    original_deleted = deleted & set(keys)
    # every deleted key was either captured before its deletion or skipped/absent
    absent = {k for k in original_deleted if (0, k) not in decoded}
    assert stats.skipped_deleted > 0 or absent
    assert stats.rate_sleeps_s > 0
    check_rdb(path, "REDIS", tmp_path)
    with seeded("redis7", path, tmp_path) as fresh, contextlib.closing(fresh.client()) as c:
        assert c.dbsize() == len(decoded)


class DeletingConnection(Connection):
    """A real connection that, before its first DUMP pipeline, deletes half of that
    pipeline's keys from a second connection: keys SCAN saw, gone before DUMP."""

    victims: list[bytes] = []

    def pipeline(self, commands):
        commands = list(commands)
        if not DeletingConnection.victims:
            dump_keys = [c.split(b"\r\n")[-2] for c in commands if b"\r\nDUMP\r\n" in c]
            DeletingConnection.victims = dump_keys[::2]
            with Connection(self.host, self.port) as other:
                other.call("DEL", *DeletingConnection.victims)
        return super().pipeline(commands)


def test_keys_deleted_between_scan_and_dump_are_skipped(redis7, tmp_path):
    keys = _fill(redis7, 300)
    DeletingConnection.victims = []
    with Connection("127.0.0.1", redis7.port) as conn:
        version = server_facts(conn).rdb_version
    dump = CooperativeDump(lambda: DeletingConnection("127.0.0.1", redis7.port),
                           source_rdb_version=version, batch=50)
    data = b"".join(bytes(c) for c in dump)
    victims = set(DeletingConnection.victims)
    assert victims and dump.stats.skipped_deleted == len(victims)
    path = tmp_path / "d.rdb"
    path.write_bytes(data)
    _, entries = decode(_codec, path)
    assert {e.key for e in entries} == set(keys) - victims
    assert dump.stats.keys == len(keys) - len(victims)


def test_big_values_and_many_dbs(redis7, tmp_path):
    rng = random.Random(3)
    big = rng.randbytes(3 << 20)  # incompressible: the DUMP value is > 3 MB (memoryview path)
    with contextlib.closing(redis7.client()) as c:
        c.flushall()
    for db in (0, 5, 15):
        with contextlib.closing(redis7.client(db=db)) as c:
            c.set(b"big", big, px=3_600_000)
            c.rpush(b"list", *[rng.randbytes(100) for _ in range(2000)])
            c.set(b"small", b"s")
    view = server_view(redis7)
    capture = capture_cooperative(url_of(redis7))
    path, _ = snapshot(tmp_path, capture)
    for codec in (_codec, _pycodec):
        _, entries = decode(codec, path)
        compare(view, by_key(entries), 0)
    assert capture.shards[0].data.stats.dbs == [0, 5, 15]
    check_rdb(path, "REDIS", tmp_path)


def test_dbs_option_limits_the_capture(redis7, tmp_path):
    with contextlib.closing(redis7.client()) as c:
        c.flushall()
    for db in (0, 2):
        with contextlib.closing(redis7.client(db=db)) as c:
            c.set(b"a", b"%d" % db)
    dump = capture_cooperative(url_of(redis7), dbs=[2]).shards[0].data
    path = tmp_path / "d.rdb"
    path.write_bytes(b"".join(bytes(c) for c in dump))
    _, entries = decode(_codec, path)
    assert [(e.db, e.key, e.value) for e in entries] == [(2, b"a", b"2")]


def test_rate_limit_paces_keys(redis7):
    _fill(redis7, 600)
    seen = []
    dump = capture_cooperative(url_of(redis7), batch=100, max_ops_per_s=1000,
                               progress=seen.append).shards[0].data
    t0 = time.monotonic()
    for _ in dump:
        pass
    elapsed = time.monotonic() - t0
    # 600 keys at 1000/s: the first batch goes at once, the other 500 keys take ≥ 0.5 s
    assert elapsed >= 0.45 and dump.stats.rate_sleeps_s >= 0.4
    assert seen == sorted(seen) and seen[-1] == 600


def test_latency_budget_shrinks_the_batch(redis7):
    _fill(redis7, 400)
    dump = capture_cooperative(url_of(redis7), batch=128, latency_budget_ms=0.001).shards[0].data
    for _ in dump:
        pass
    s = dump.stats
    assert s.keys == 400
    assert s.batch_shrinks >= 7 and s.batch_min == 1 and s.budget_sleeps_s > 0
    assert s.sleeps_s == pytest.approx(s.rate_sleeps_s + s.budget_sleeps_s)


def test_empty_server_gives_a_valid_empty_rdb(redis7, tmp_path):
    with contextlib.closing(redis7.client()) as c:
        c.flushall()
        c.execute_command("FUNCTION", "FLUSH")
    dump = capture_cooperative(url_of(redis7)).shards[0].data
    path = tmp_path / "e.rdb"
    path.write_bytes(b"".join(bytes(c) for c in dump))
    decoder, entries = decode(_codec, path)
    assert entries == [] and decoder.done and dump.stats.keys == 0
    check_rdb(path, "REDIS", tmp_path)


def test_bad_arguments():
    with pytest.raises(ValueError):
        CooperativeDump(lambda: None, source_rdb_version=10, batch=0)
    with pytest.raises(ValueError):
        CooperativeDump(lambda: None, source_rdb_version=10, max_ops_per_s=0)
    with pytest.raises(ValueError):
        CooperativeDump(lambda: None, source_rdb_version=13)  # no encoder for RDB 13
    dump = CooperativeDump(lambda: None, source_rdb_version=10)
    assert dump.target_version == 10
