"""The catalog over every store (local, moto, SeaweedFS): the manifest as commit point,
unique names under a real race, copy/export/fetch/delete/prune/retire, accounts,
damaged input and damaged shards, several shards, lz4, and a multipart-sized snapshot.

Every test here runs once per store kind (see ``tests/stores.py``).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import threading
from datetime import timedelta

import pytest
from stores import (  # noqa: F401  (fixtures: store, make_store, clock, the S3 servers)
    ACCOUNT,
    OTHER,
    MiB,
    aws_env,
    clock_fixture,
    keys_under,
    make_store_fixture,
    moto_s3,
    random_rdb,
    rdb_bytes,
    reopen,
    seaweedfs_s3,
    store_fixture,
)

from rdbkit.catalog import SCHEMA_VERSION, Capture, Catalog, ShardInput, SourceInfo
from rdbkit.errors import (
    AccountMismatchError,
    CatalogError,
    DecodeError,
    ObjectExistsError,
    SnapshotChecksumError,
    SnapshotExistsError,
    SnapshotNotFoundError,
    TruncatedError,
)
from rdbkit.storage import Store

SRC = "redis://cache-1.example:6379/0"
DATA = rdb_bytes(20)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def capture(data: bytes = DATA, *, url: str = SRC) -> Capture:
    return Capture(
        source=SourceInfo(url=url, engine="redis", engine_version="7.2.4"),
        shards=[ShardInput(data)],
    )


def read_all(stream) -> bytes:
    with stream as fh:
        return fh.read()


def events(catalog: Catalog, action: str | None = None) -> list:
    return [e for e in catalog.events.read() if action is None or e.action == action]


def flip_byte(store: Store, key: str, at: int | None = None) -> None:
    """Overwrite the stored object with one byte changed (a damaged shard)."""
    raw = bytearray(read_all(store.get(key)))
    raw[len(raw) // 2 if at is None else at] ^= 0x01
    store.put(key, bytes(raw))


@pytest.fixture
def cat(store, clock) -> Catalog:
    return Catalog(store, account=ACCOUNT, clock=clock)


# -- the manifest and the basic operations -------------------------------------


def test_create_writes_shards_then_a_complete_manifest(cat, store, clock, tmp_path):
    m = cat.create("snap-1", capture())
    assert (m.name, m.kind, m.created_at, m.owner_account) == (
        "snap-1",
        "manual",
        clock.now,
        ACCOUNT,
    )
    assert m.expires_at is None and m.compression is None and m.schema_version == SCHEMA_VERSION
    assert m.source.url == SRC and m.source.engine == "redis"
    (shard,) = m.shards
    assert shard.key.startswith("data/snap-1/") and shard.key.endswith("/shard-0000.rdb")
    assert (shard.rdb_version, shard.rdb_size, shard.rdb_sha256) == (10, len(DATA), sha(DATA))
    assert (shard.stored_size, shard.stored_sha256) == (len(DATA), sha(DATA))
    assert shard.keys == 20 and shard.keys_by_type == {"string": 20} and shard.dbs == (0,)
    assert m.rdb_version == 10 and m.keys == 20

    # The stored manifest is versioned JSON holding everything the issue lists.
    stored = json.loads(read_all(store.get("snapshots/snap-1.json")))
    assert stored["schema_version"] == SCHEMA_VERSION == 1
    for field in (
        "name",
        "source",
        "kind",
        "created_at",
        "rdb_version",
        "shards",
        "compression",
        "owner_account",
        "expires_at",
    ):
        assert field in stored, field
    assert stored["created_at"] == "2030-01-15T12:00:00.000000Z"
    s0 = stored["shards"][0]
    assert (s0["key"], s0["rdb_size"], s0["keys"], s0["rdb_sha256"]) == (
        shard.key,
        len(DATA),
        20,
        sha(DATA),
    )

    assert cat.describe("snap-1") == m
    assert [x.name for x in cat.list()] == ["snap-1"]
    assert keys_under(store, "data/") == [shard.key]
    assert read_all(cat.open_shard("snap-1")) == DATA
    (path,) = cat.fetch("snap-1", tmp_path / "out")
    assert path.name == "snap-1.rdb" and path.read_bytes() == DATA
    (ev,) = events(cat, "create")
    assert (ev.name, ev.kind, ev.source, ev.account, ev.at) == (
        "snap-1",
        "manual",
        SRC,
        ACCOUNT,
        clock.now,
    )


def test_list_filters_and_orders_oldest_first(cat, clock):
    cat.create("b-first", capture(url="redis://a:6379"))
    clock.advance(minutes=1)
    cat.create("a-second", capture(url="redis://b:6379"))
    cat.set_policy("redis://a:6379", retention_days=3)
    clock.advance(minutes=1)
    cat.create("auto", capture(url="redis://a:6379"), kind="automatic")
    assert [m.name for m in cat.list()] == ["b-first", "a-second", "auto"]
    assert [m.name for m in cat.list(source="redis://a:6379")] == ["b-first", "auto"]
    assert [m.name for m in cat.list(kind="automatic")] == ["auto"]
    with pytest.raises(SnapshotNotFoundError, match="nope"):
        cat.describe("nope")


def test_name_taken_fails_clearly_and_writes_nothing(cat, store):
    first = cat.create("dup", capture())
    with pytest.raises(SnapshotExistsError, match="'dup'"):
        cat.create("dup", capture(rdb_bytes(3, seed="other")))
    assert keys_under(store, "data/") == [first.shards[0].key]
    assert cat.describe("dup") == first


def test_invalid_names_are_refused(cat, store):
    for bad in ["", "../x", "a/b", "-x", ".hidden", "x.json", "a b"]:
        with pytest.raises(CatalogError, match="invalid snapshot name"):
            cat.create(bad, capture())
    assert keys_under(store, "data/") == [] and keys_under(store, "snapshots/") == []


def test_newer_manifest_schema_is_refused(cat, store):
    cat.create("snap", capture())
    raw = json.loads(read_all(store.get("snapshots/snap.json")))
    raw["schema_version"] = SCHEMA_VERSION + 1
    store.put("snapshots/snap.json", json.dumps(raw).encode())
    with pytest.raises(CatalogError, match="schema_version 2"):
        cat.describe("snap")


# -- a real race for one name ---------------------------------------------------


def gated(data: bytes, barrier) -> object:
    """A shard stream that starts only when both writers are past the name check."""
    barrier.wait(timeout=60)
    yield data


def test_two_threads_racing_for_one_name_exactly_one_wins(store, clock):
    barrier = threading.Barrier(2)
    results: dict[int, object] = {}
    datas = [rdb_bytes(5, seed="t0"), rdb_bytes(7, seed="t1")]

    def writer(i: int) -> None:
        cat = Catalog(store, account=ACCOUNT, clock=clock)
        cap = Capture(SourceInfo(SRC), [ShardInput(gated(datas[i], barrier))])
        try:
            results[i] = cat.create("contested", cap)
        except Exception as exc:  # noqa: BLE001 - the test sorts them out
            results[i] = exc

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    _check_one_winner(store, [results[0], results[1]], datas)


def _race_child(store: Store, data: bytes, barrier, queue, clock) -> None:
    cat = Catalog(reopen(store), account=ACCOUNT, clock=clock)
    try:
        m = cat.create("contested", Capture(SourceInfo(SRC), [ShardInput(gated(data, barrier))]))
        queue.put(("won", m.shards[0].key))
    except SnapshotExistsError as exc:
        queue.put(("lost", str(exc)))
    except BaseException as exc:  # noqa: BLE001
        queue.put(("error", repr(exc)))


def test_two_processes_racing_for_one_name_exactly_one_wins(store, clock):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    queue = ctx.Queue()
    datas = [rdb_bytes(5, seed="p0"), rdb_bytes(7, seed="p1")]
    procs = [
        ctx.Process(target=_race_child, args=(store, datas[i], barrier, queue, clock))
        for i in range(2)
    ]
    for p in procs:
        p.start()
    outcomes = [queue.get(timeout=90) for _ in procs]
    for p in procs:
        p.join(30)
    assert sorted(o[0] for o in outcomes) == ["lost", "won"], outcomes
    (won_key,) = [o[1] for o in outcomes if o[0] == "won"]
    (lost_msg,) = [o[1] for o in outcomes if o[0] == "lost"]
    assert "contested" in lost_msg
    cat = Catalog(store, account=ACCOUNT, clock=clock)
    assert cat.describe("contested").shards[0].key == won_key
    assert keys_under(store, "data/") == [won_key]  # the loser's shards are gone
    assert read_all(cat.open_shard("contested")) in datas


def _check_one_winner(store: Store, outcomes: list, datas: list[bytes]) -> None:
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    lost = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert isinstance(lost[0], SnapshotExistsError), repr(lost[0])
    assert "contested" in str(lost[0])
    cat = Catalog(store, account=ACCOUNT)
    assert cat.describe("contested") == won[0]
    assert keys_under(store, "data/") == [won[0].shards[0].key]  # the loser's shards are gone
    assert read_all(cat.open_shard("contested")) == datas[outcomes.index(won[0])]
    assert [e.name for e in events(cat, "create")] == ["contested"]


# -- copy, export, delete, prune --------------------------------------------------


def test_copy_of_an_automatic_snapshot_is_kept_until_deleted(cat, store, clock, make_store):
    cat.set_policy(SRC, retention_days=1)
    auto = cat.create("auto-1", capture(), kind="automatic")
    assert auto.expires_at == clock.now + timedelta(days=1)
    clock.advance(minutes=5)
    copied = cat.copy("auto-1", "kept")
    assert (copied.kind, copied.expires_at, copied.copied_from) == ("copy", None, "auto-1")
    assert copied.created_at == clock.now and copied.owner_account == ACCOUNT
    assert read_all(cat.open_shard("kept")) == DATA
    assert copied.shards[0].key.startswith("data/kept/")

    # Into another store of the same account.
    other_store = make_store(ACCOUNT)
    target = Catalog(other_store, account=ACCOUNT, clock=clock)
    remote = cat.copy("auto-1", "remote", target=target)
    assert remote.kind == "copy" and remote.expires_at is None
    assert read_all(target.open_shard("remote")) == DATA
    assert keys_under(other_store, "data/") == [remote.shards[0].key]

    clock.advance(days=2)
    assert [m.name for m in cat.prune()] == ["auto-1"]
    assert [m.name for m in cat.list()] == ["kept"]
    assert keys_under(store, "data/") == [copied.shards[0].key]
    assert [e.name for e in events(cat, "copy")] == ["auto-1", "auto-1"]
    with pytest.raises(SnapshotExistsError):
        cat.copy("kept", "kept")


def test_export_writes_the_plain_rdb_to_another_store(cat, make_store):
    cat.create("snap", capture())
    dest = make_store(ACCOUNT)
    (info,) = cat.export("snap", dest)
    assert info.key == "snap.rdb" and info.size == len(DATA)
    assert read_all(dest.get("snap.rdb")) == DATA
    (info2,) = cat.export("snap", dest, "exports/today.rdb")
    assert read_all(dest.get(info2.key)) == DATA
    with pytest.raises(ObjectExistsError):  # never overwrites
        cat.export("snap", dest)
    assert keys_under(dest, "") == ["exports/today.rdb", "snap.rdb"]
    assert len(events(cat, "export")) == 2


def test_delete_removes_manifest_and_shards_and_is_logged(cat, store):
    keep = cat.create("keep", capture())
    cat.create("gone", capture(rdb_bytes(4, seed="g")))
    deleted = cat.delete("gone")
    assert deleted.name == "gone"
    assert not cat.exists("gone") and [m.name for m in cat.list()] == ["keep"]
    assert keys_under(store, "data/") == [keep.shards[0].key]
    with pytest.raises(SnapshotNotFoundError):
        cat.delete("gone")
    with pytest.raises(SnapshotNotFoundError):
        cat.fetch("gone", "/nonexistent-never-written")
    (ev,) = events(cat, "delete")
    assert (ev.name, ev.kind, ev.source) == ("gone", "manual", SRC)


def test_prune_deletes_at_expiry_not_a_microsecond_before(cat, store, clock):
    cat.set_policy(SRC, retention_days=2)
    auto = cat.create("auto", capture(), kind="automatic")
    manual = cat.create("manual", capture())
    assert auto.expires_at == clock.now + timedelta(days=2)
    clock.set(auto.expires_at - timedelta(microseconds=1))
    assert cat.prune() == [] and cat.exists("auto")
    clock.set(auto.expires_at)
    assert [m.name for m in cat.prune(dry_run=True)] == ["auto"] and cat.exists("auto")
    assert [m.name for m in cat.prune()] == ["auto"]
    assert not cat.exists("auto") and cat.exists("manual")
    assert keys_under(store, "data/") == [manual.shards[0].key]
    (ev,) = events(cat, "prune")
    assert (ev.name, ev.kind, ev.at) == ("auto", "automatic", auto.expires_at)


# -- accounts -----------------------------------------------------------------------


def test_another_account_is_refused_and_every_refusal_logged(
    cat, store, clock, make_store, tmp_path
):
    m = cat.create("snap", capture())
    rdb_file = tmp_path / "in.rdb"
    rdb_file.write_bytes(DATA)
    theirs = Catalog(store, account=OTHER, clock=clock)
    assert theirs.describe("snap") == m and [x.name for x in theirs.list()] == ["snap"]
    other_store = make_store(OTHER)
    other_cat = Catalog(other_store, account=OTHER, clock=clock)

    attempts = {
        "create": lambda: theirs.create("theirs", capture()),
        "import": lambda: theirs.import_file(rdb_file, "imported"),
        "delete": lambda: theirs.delete("snap"),
        "prune": lambda: theirs.prune(),
        "policy": lambda: theirs.set_policy(SRC, retention_days=3),
        "retire": lambda: theirs.retire(SRC),
        "fetch by them": lambda: theirs.fetch("snap", tmp_path / "theirs"),
        "fetch for them": lambda: cat.fetch("snap", tmp_path / "for-them", account=OTHER),
        "open for them": lambda: cat.open_shard("snap", account=OTHER),
        "copy to them": lambda: cat.copy("snap", "moved", target=other_cat),
        "export to them": lambda: cat.export("snap", other_store),
    }
    for what, attempt in attempts.items():
        with pytest.raises(AccountMismatchError) as info:
            attempt()
        err = info.value
        assert (err.owner, err.other) == (ACCOUNT, OTHER), what
        assert ACCOUNT in str(err) and OTHER in str(err), what

    # Nothing changed anywhere, nothing reached the other account.
    assert [x.name for x in cat.list()] == ["snap"]
    assert keys_under(store, "data/") == [m.shards[0].key]
    assert keys_under(other_store, "") == []
    assert not any(
        (tmp_path / d).exists() and any((tmp_path / d).iterdir()) for d in ("theirs", "for-them")
    )
    assert cat.policy(SRC).retention_days == 1 and not cat.policy(SRC).retired
    refusals = events(cat, "refuse")
    assert len(refusals) == len(attempts)
    for ev in refusals:
        assert (ev.detail["owner"], ev.detail["other"]) == (ACCOUNT, OTHER)
    assert {ev.account for ev in refusals} == {ACCOUNT, OTHER}


def test_store_owner_is_its_first_writer(store, clock):
    first = Catalog(store, account=OTHER, clock=clock)
    assert first.owner() is None
    first.create("x", capture())
    assert first.owner() == OTHER
    late = Catalog(store, account=ACCOUNT, clock=clock)
    assert late.owner() == OTHER
    with pytest.raises(AccountMismatchError) as info:
        late.create("y", capture())
    assert (info.value.owner, info.value.other) == (OTHER, ACCOUNT)
    assert not late.exists("y") and len(keys_under(store, "data/")) == 1


# -- bad input ---------------------------------------------------------------------


def _broken_inputs() -> dict[str, bytes]:
    flipped = bytearray(DATA)
    flipped[len(DATA) // 2] ^= 0xFF
    crc = bytearray(DATA)
    crc[-1] ^= 0x01
    return {
        "truncated": DATA[: len(DATA) - 20],
        "header-only": DATA[:9],
        "corrupted": bytes(flipped),
        "bad-crc": bytes(crc),
        "not-rdb": b"hello, this is not an RDB file at all",
    }


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_bad_rdb_fails_with_the_decoders_error_and_leaves_nothing(
    store, clock, tmp_path, compression
):
    cat = Catalog(store, account=ACCOUNT, clock=clock, compression=compression)
    for label, data in _broken_inputs().items():
        path = tmp_path / f"{label}.rdb"
        path.write_bytes(data)
        with pytest.raises(DecodeError) as info:
            cat.import_file(path, label)
        assert isinstance(info.value.offset, int) and 0 <= info.value.offset <= len(data), label
        if label in ("truncated", "header-only"):
            assert isinstance(info.value, TruncatedError), label
        assert not cat.exists(label)
    assert keys_under(store, "data/") == []
    assert keys_under(store, "snapshots/") == []
    assert cat.list() == [] and events(cat, "create") == []


def test_import_file_names_and_records_the_file(cat, tmp_path, clock):
    path = tmp_path / "my dump.rdb"
    path.write_bytes(DATA)
    m = cat.import_file(path)
    assert m.name == "my-dump-20300115-120000"
    assert m.source.url == path.resolve().as_uri() and m.source.engine == "file"
    assert read_all(cat.open_shard(m.name)) == DATA
    m2 = cat.import_file(f"file://{path}", "named", source_url="redis://seeded:6379")
    assert m2.source.url == "redis://seeded:6379"
    with pytest.raises(FileNotFoundError):
        cat.import_file(tmp_path / "missing.rdb", "missing")


DAMAGES = ["flip", "truncate", "extend", "missing"]


def damage_object(store: Store, key: str, damage: str) -> None:
    raw = read_all(store.get(key))
    if damage == "flip":
        flip_byte(store, key)
    elif damage == "truncate":
        store.put(key, raw[:-1])
    elif damage == "extend":
        store.put(key, raw + b"\x00")
    else:
        store.delete(key)


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_damaged_shard_fails_fetch_export_copy_and_writes_nothing(
    store, clock, tmp_path, make_store, compression
):
    cat = Catalog(store, account=ACCOUNT, clock=clock, compression=compression)
    dest = make_store(ACCOUNT)
    for damage in DAMAGES:
        name = f"snap-{damage}"
        m = cat.create(name, capture())
        damage_object(store, m.shards[0].key, damage)
        target = tmp_path / f"restore-{damage}"
        target.mkdir()
        with pytest.raises(SnapshotChecksumError, match=name):
            cat.fetch(name, target)
        assert list(target.iterdir()) == [], damage  # not even a temporary file
        with pytest.raises(SnapshotChecksumError, match=name):
            read_all(cat.open_shard(name))
        with pytest.raises(SnapshotChecksumError, match=name):
            cat.export(name, dest)
        assert keys_under(dest, "") == [], damage
        with pytest.raises(SnapshotChecksumError, match=name):
            cat.copy(name, f"{name}-copy")
        assert not cat.exists(f"{name}-copy")
        assert [k for k in keys_under(store, "data/") if "-copy/" in k] == [], damage


# -- several shards -----------------------------------------------------------------


def cluster_capture(datas: list[bytes]) -> Capture:
    halves = [((0, 8191),), ((8192, 16383),)]
    return Capture(
        source=SourceInfo(
            url="redis://cluster.example:7000",
            engine="redis",
            cluster=True,
            shards=tuple(
                {"node": f"10.0.0.{i}:7000", "slots": [list(r) for r in halves[i]]}
                for i in range(2)
            ),
        ),
        shards=[
            ShardInput(d, slots=halves[i], node=f"10.0.0.{i}:7000") for i, d in enumerate(datas)
        ],
    )


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_multi_shard_round_trip(store, clock, tmp_path, make_store, compression):
    cat = Catalog(store, account=ACCOUNT, clock=clock, compression=compression)
    datas = [rdb_bytes(11, seed="left"), rdb_bytes(13, seed="right")]
    m = cat.create("cluster", cluster_capture(datas))
    back = cat.describe("cluster")
    assert back == m and back.source.cluster is True
    assert [s.slots for s in back.shards] == [((0, 8191),), ((8192, 16383),)]
    assert [s.node for s in back.shards] == ["10.0.0.0:7000", "10.0.0.1:7000"]
    assert [s.keys for s in back.shards] == [11, 13] and back.keys == 24
    assert [s.rdb_sha256 for s in back.shards] == [sha(d) for d in datas]
    assert len({s.key for s in back.shards}) == 2
    assert sorted(keys_under(store, "data/")) == sorted(s.key for s in back.shards)
    paths = cat.fetch("cluster", tmp_path / "out")
    assert [p.name for p in paths] == ["cluster-shard-0000.rdb", "cluster-shard-0001.rdb"]
    assert [p.read_bytes() for p in paths] == datas
    dest = make_store(ACCOUNT)
    infos = cat.export("cluster", dest, "c.rdb")
    assert [i.key for i in infos] == ["c-shard-0000.rdb", "c-shard-0001.rdb"]
    assert [read_all(dest.get(i.key)) for i in infos] == datas
    copied = cat.copy("cluster", "cluster-copy")
    assert [s.slots for s in copied.shards] == [s.slots for s in back.shards]


def test_one_bad_shard_fails_the_whole_snapshot(cat, store, tmp_path, make_store):
    good = rdb_bytes(11, seed="left")
    with pytest.raises(TruncatedError):
        cat.create("cluster", cluster_capture([good, rdb_bytes(13, seed="right")[:-30]]))
    assert not cat.exists("cluster")
    assert keys_under(store, "data/") == [] and keys_under(store, "snapshots/") == []

    # A damaged second shard of a stored snapshot: fetch writes neither file.
    m = cat.create("cluster", cluster_capture([good, rdb_bytes(13, seed="right")]))
    flip_byte(store, m.shards[1].key)
    out = tmp_path / "out"
    with pytest.raises(SnapshotChecksumError, match="shard 1"):
        cat.fetch("cluster", out)
    assert list(out.iterdir()) == []
    dest = make_store(ACCOUNT)
    with pytest.raises(SnapshotChecksumError):
        cat.export("cluster", dest)
    assert keys_under(dest, "") == []


# -- lz4 ---------------------------------------------------------------------------


def test_lz4_snapshot_is_smaller_and_reads_back_identical(store, clock, tmp_path, make_store):
    data = rdb_bytes(300, value_size=200)
    cat = Catalog(store, account=ACCOUNT, clock=clock, compression="lz4")
    m = cat.create("small", capture(data))
    (shard,) = m.shards
    assert (
        m.compression == "lz4"
        and json.loads(read_all(store.get("snapshots/small.json")))["compression"] == "lz4"
    )
    assert shard.key.endswith(".rdb.lz4")
    assert shard.stored_size < shard.rdb_size == len(data)
    assert store.head(shard.key).size == shard.stored_size
    assert read_all(store.get(shard.key))[:4] == b"\x04\x22\x4d\x18"  # an lz4 frame
    (path,) = cat.fetch("small", tmp_path)
    assert path.read_bytes() == data
    dest = make_store(ACCOUNT)
    cat.export("small", dest)
    assert read_all(dest.get("small.rdb")) == data  # plain RDB, not lz4
    plain = Catalog(store, account=ACCOUNT, clock=clock)  # reads follow the manifest
    assert read_all(plain.open_shard("small")) == data
    copied = plain.copy("small", "uncompressed")
    assert copied.compression is None and read_all(plain.open_shard("uncompressed")) == data


# -- a snapshot big enough for multipart uploads -------------------------------------


def test_multipart_sized_snapshot_round_trip_and_failure(make_store, clock, tmp_path):
    store = make_store(ACCOUNT)
    cat = Catalog(store, account=ACCOUNT, clock=clock)
    data = random_rdb(12 * MiB)
    assert len(data) > 12 * MiB
    src = tmp_path / "big.rdb"
    src.write_bytes(data)
    m = cat.import_file(src, "big")
    assert m.rdb_size == len(data) and m.shards[0].rdb_sha256 == sha(data) and m.keys == 12
    (path,) = cat.fetch("big", tmp_path / "out")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()

    src.write_bytes(data[: 11 * MiB])  # truncated after two 5 MiB parts went up
    with pytest.raises(TruncatedError):
        cat.import_file(src, "big-truncated")
    assert keys_under(store, "data/") == [m.shards[0].key]
    assert not cat.exists("big-truncated")
    if make_store.kind != "local":
        uploads = make_store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
        assert uploads == []


# -- retire ------------------------------------------------------------------------


def test_retire_keeps_a_final_snapshot_and_deletes_automatic_ones(cat, store, clock):
    cat.set_policy(SRC, retention_days=7)
    autos = [cat.create(f"auto-{i}", capture(), kind="automatic") for i in range(2)]
    manual = cat.create("manual", capture())
    clock.advance(hours=1)
    final, deleted = cat.retire(SRC, final_snapshot="last", capture=lambda url: capture(url=url))
    assert final is not None and (final.kind, final.expires_at, final.name) == (
        "final",
        None,
        "last",
    )
    assert sorted(m.name for m in deleted) == ["auto-0", "auto-1"]
    assert [m.name for m in cat.list()] == ["manual", "last"]
    assert sorted(keys_under(store, "data/")) == sorted([manual.shards[0].key, final.shards[0].key])
    assert not any(cat.exists(a.name) for a in autos)
    assert cat.policy(SRC).retired
    with pytest.raises(CatalogError, match="retired"):
        cat.create("more", capture())
    with pytest.raises(CatalogError, match="retired"):
        cat.create("more-auto", capture(), kind="automatic")
    with pytest.raises(CatalogError, match="retired"):
        cat.retire(SRC)
    clock.advance(days=400)
    assert cat.prune() == [] and cat.exists("last")
    assert read_all(cat.open_shard("last")) == DATA
    assert [e.action for e in events(cat) if e.action in ("retire", "delete")] == [
        "delete",
        "delete",
        "retire",
    ]


def test_retire_whose_final_snapshot_fails_changes_nothing(cat, store, clock):
    cat.set_policy(SRC, retention_days=7)
    auto = cat.create("auto", capture(), kind="automatic")
    before = sorted(keys_under(store, ""))
    failures = {
        "bad-rdb": (lambda url: capture(DATA[:-5], url=url), "final", TruncatedError),
        "capture-raises": (_unreachable, "final", OSError),
        "name-taken": (lambda url: capture(url=url), "auto", SnapshotExistsError),
    }
    for failure, (capture_fn, name, expected) in failures.items():
        with pytest.raises(expected):
            cat.retire(SRC, final_snapshot=name, capture=capture_fn)
        assert not cat.policy(SRC).retired and cat.policy(SRC).retention_days == 7, failure
        assert cat.describe("auto") == auto and not cat.exists("final"), failure
        assert sorted(keys_under(store, "")) == before, (
            failure
        )  # no shard, manifest, policy or event
    cat.create("still-allowed", capture())


def _unreachable(url: str) -> Capture:
    raise OSError(f"{url} is unreachable")


# -- gc (needs Store.list_pending / abort_pending, being added concurrently) -----------

needs_pending = pytest.mark.skipif(
    not callable(getattr(Store, "list_pending", None)),
    reason="Store.list_pending/abort_pending not merged yet (gc test runs once they are)",
)


@needs_pending
def test_gc_removes_only_old_unreferenced_leftovers(make_store, clock):
    from datetime import datetime, timezone

    store = make_store(ACCOUNT)
    clock.set(datetime.now(timezone.utc))
    cat = Catalog(store, account=ACCOUNT, clock=clock)
    kept = cat.create("kept", capture())
    orphan = "data/crashed/0123456789abcdef/shard-0000.rdb"
    store.put(orphan, DATA)
    upload_id = None
    if make_store.kind != "local":
        client = make_store.client
        upload_id = client.create_multipart_upload(
            Bucket=store.bucket, Key="snaps/data/x/y/shard-0000.rdb"
        )["UploadId"]

    young = cat.gc()  # everything is younger than 24 h
    assert young.orphan_objects == []
    if make_store.kind != "moto":  # moto reports every upload as initiated in 2010
        assert young.pending_uploads == []

    clock.advance(days=2)
    dry = cat.gc()
    assert [i.key for i in dry.orphan_objects] == [orphan] and not dry.applied
    if upload_id is not None:
        assert len(dry.pending_uploads) == 1
    assert store.exists(orphan)

    with pytest.raises(AccountMismatchError):
        Catalog(store, account=OTHER, clock=clock).gc(apply=True)
    assert store.exists(orphan)

    done = cat.gc(apply=True)
    assert done.applied and [i.key for i in done.orphan_objects] == [orphan]
    assert keys_under(store, "data/") == [kept.shards[0].key]
    assert read_all(cat.open_shard("kept")) == DATA
    if upload_id is not None:
        assert client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
    (ev,) = events(cat, "gc")
    assert ev.detail["deleted_objects"] == [orphan]
    assert cat.gc(apply=True).orphan_objects == []


def test_fetch_target_keeps_its_other_files(cat, tmp_path):
    cat.create("snap", capture())
    target = tmp_path / "target"
    target.mkdir()
    (target / "unrelated.txt").write_text("x")
    cat.fetch("snap", target)
    assert sorted(os.listdir(target)) == ["snap.rdb", "unrelated.txt"]
