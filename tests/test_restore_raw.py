"""Raw restore: DUMP payloads cut straight from the RDB (rdbkit.restore.raw).

Sources are the session servers filled with the full dataset plus keys that
the RDB stores int-encoded and LZF-compressed, SAVEd and imported into a
LocalStore catalog; targets are FRESH servers (``running_server``). Each
check compares the target's view with the source's key by key and asserts
which path (raw cut / decode+encode) was taken.
"""

from __future__ import annotations

import io
import struct

import pytest
import rdbbuild as B
from datasets import field_expires_view, function_codes, server_view
from test_restore import (
    Source,
    _make_source,
    _no_active_time,
    assert_same_view,
    dbsizes,
    expected_dbs,
    fresh,
    url,
)

import rdbkit.restore.restore as restore_mod
from rdbkit.backup.connection import Connection, command
from rdbkit.catalog import Catalog
from rdbkit.codec import Decoder, crc64, parse_dump_payload
from rdbkit.errors import DecodeError, RestoreError, SnapshotChecksumError
from rdbkit.restore import restore_command, restore_entries, restore_snapshot
from rdbkit.restore.raw import (
    DecodedEntry,
    RawEntries,
    RawEntry,
    raw_allowed,
    raw_entries,
    read_magic,
)
from rdbkit.storage import LocalStore

ACCOUNT = "t"

#: Keys the RDB holds int-encoded (0xC0/0xC1/0xC2) or LZF-compressed (rdbcompression yes).
ODD_KEYS = [b"7", b"-100", b"12345", b"-2147483648", b"2147483647",
            b"k" * 100 + b"1", b"abcdefghij" * 8, b"x" * 5000]


def _odd_keys(server) -> None:
    with Connection("127.0.0.1", server.port) as conn:
        for i, key in enumerate(ODD_KEYS):
            conn.call("SET", key, b"v%d" % i)
        conn.call("PEXPIREAT", ODD_KEYS[5], 4_102_444_800_000)
        conn.call("HSET", b"99", b"f", b"v")
        conn.call("RPUSH", b"q" * 64, b"a", b"b")


def _make_raw_source(server, tmp_path_factory) -> Source:
    return _make_source(server, tmp_path_factory, _odd_keys, label="raw-store")


@pytest.fixture(scope="module")
def redis7_raw(redis7, tmp_path_factory) -> Source:
    return _make_raw_source(redis7, tmp_path_factory)


@pytest.fixture(scope="module")
def valkey9_raw(valkey9, tmp_path_factory) -> Source:
    return _make_raw_source(valkey9, tmp_path_factory)


@pytest.fixture(scope="module")
def redis6_raw(redis6, tmp_path_factory) -> Source:
    return _make_raw_source(redis6, tmp_path_factory)


@pytest.fixture
def readers(monkeypatch) -> list[RawEntries]:
    """Every RawEntries restore_snapshot opens (to see which path it took)."""
    seen: list[RawEntries] = []

    class Spy(RawEntries):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self)

    monkeypatch.setattr(restore_mod, "RawEntries", Spy)
    return seen


# ---- the cutter against the full decoder ------------------------------------------


@pytest.mark.parametrize("kind", ["redis7", "valkey9", "redis6"])
def test_payloads_match_the_decoded_values(kind, request):
    source = request.getfixturevalue(f"{kind}_raw")
    full = {(e.db, e.key): e for e in Decoder(str(source.path))}
    reader = raw_entries(source.path)
    got = list(reader)
    assert reader.raw and reader.cut == len(got) == len(full) and reader.decoded == 0
    for r in got:
        assert isinstance(r, RawEntry)
        e = full[(r.db, r.key)]
        dump = parse_dump_payload(r.payload)  # checks the CRC64 too
        assert dump.version == reader.version  # the SOURCE's version
        assert (dump.type, dump.value, dump.field_expires) == (e.type, e.value, e.field_expires)
        assert (r.type, r.expire_ms, r.idle, r.freq) == (e.type, e.expire_ms, e.idle, e.freq)
        body = r.payload[:-8]
        assert struct.unpack("<Q", r.payload[-8:])[0] == crc64(body)
    keys = {k for _, k in full}
    assert set(ODD_KEYS) <= keys


def test_odd_keys_are_int_and_lzf_encoded_in_the_file(redis7_raw):
    data = redis7_raw.path.read_bytes()
    for key, prefix in ((b"12345", b"\xc1"), (b"-2147483648", b"\xc2"), (b"7", b"\xc0")):
        assert B.int_string(int(key)) in data and B.int_string(int(key))[:1] == prefix
    assert b"k" * 100 not in data and b"x" * 5000 not in data  # LZF-compressed keys


def test_buffer_input_and_target_rule(redis7_raw):
    data = redis7_raw.path.read_bytes()
    assert read_magic(data[:9]) == ("REDIS", 10)
    assert [r.payload for r in raw_entries(data)] == [r.payload for r in
                                                      raw_entries(redis7_raw.path)]
    assert raw_allowed("REDIS", 10, 10) and raw_allowed("REDIS", 9, 10)
    assert not raw_allowed("REDIS", 10, 9) and not raw_allowed("REDIS", 11, 80)
    assert raw_allowed("VALKEY", 80, 80) and not raw_allowed("VALKEY", 80, 11)
    slow = raw_entries(data, target_version=9)  # not reachable as-is: the full decoder's
    entries = list(slow)
    assert not slow.raw and slow.decoded == len(entries) and entries[0].value is not None


# ---- restore_snapshot round trips ------------------------------------------------------


@pytest.mark.parametrize("connections", [1, 4])
def test_redis7_into_fresh_redis7_raw(redis7_raw, readers, connections):
    with fresh("redis7") as target:
        report = restore_snapshot(redis7_raw.catalog(), "s", url(target),
                                  connections=connections, batch=7)
        assert [(r.raw, r.cut, r.decoded) for r in readers] == [(True, len(redis7_raw.view), 0)]
        assert report.keys_written == len(redis7_raw.view) and report.errors == []
        assert report.dbs == expected_dbs(redis7_raw.view)
        assert report.functions == 2
        assert_same_view(redis7_raw.view, server_view(target))
        assert function_codes(target) == redis7_raw.functions


def test_raw_and_decoded_paths_give_the_same_target(redis7_raw, readers):
    with fresh("redis7") as a, fresh("redis7") as b:
        restore_snapshot(redis7_raw.catalog(), "s", url(a))
        restore_snapshot(redis7_raw.catalog(), "s", url(b), raw=False)
        assert len(readers) == 1 and readers[0].raw  # raw=False opens no RawEntries
        assert server_view(a) == server_view(b)


def test_idle_time_kept_on_the_raw_path(redis7_raw, readers):
    with fresh("redis7", maxmemory_policy="allkeys-lru") as target:
        restore_snapshot(redis7_raw.catalog(), "s", url(target))
        assert readers[0].raw
        with Connection("127.0.0.1", target.port, db=15) as conn:
            assert conn.call("OBJECT", "IDLETIME", b"lru:restored") >= 5000
        with Connection("127.0.0.1", target.port) as conn:
            assert conn.call("PEXPIRETIME", ODD_KEYS[5]) == 4_102_444_800_000


def test_valkey9_into_fresh_valkey9_raw(valkey9_raw, readers):
    with fresh("valkey9", maxmemory_policy="allkeys-lfu", lfu_decay_time="0") as target:
        report = restore_snapshot(valkey9_raw.catalog(), "s", url(target))
        assert readers[0].raw and readers[0].version == 80 and readers[0].magic == "VALKEY"
        assert readers[0].cut == report.keys_written == len(valkey9_raw.view)
        assert_same_view(valkey9_raw.view, server_view(target))
        fields = field_expires_view(target, valkey9_raw.dataset.field_expires)
        assert fields == valkey9_raw.field_expires
        with Connection("127.0.0.1", target.port, db=15) as conn:
            assert conn.call("OBJECT", "FREQ", b"lru:restored") == 200


def test_redis6_rdb9_into_redis7_raw(redis6_raw, readers):
    """An older payload version (9) is accepted as-is by a newer target (10)."""
    with fresh("redis7") as target:
        report = restore_snapshot(redis6_raw.catalog(), "s", url(target))
        assert readers[0].raw and readers[0].version == 9 and readers[0].decoded == 0
        assert report.keys_written == len(redis6_raw.view)
        view = server_view(target)
        assert set(view) == set(redis6_raw.view)
        for key, (kind, value, expire) in redis6_raw.view.items():
            got_kind, got_value, got_expire = view[key]
            assert got_kind == kind, key
            if kind == "stream":  # 7.0 derives entries_added / first id / max deleted id
                assert (got_value.entries, got_value.last_id, got_value.length) == (
                    value.entries, value.last_id, value.length), key
                assert [(g.name, g.last_id, g.pending) for g in got_value.groups] == [
                    (g.name, g.last_id, g.pending) for g in value.groups], key
            else:
                assert got_value == value, key
            assert (got_expire is None) == (expire is None), key
            if expire is not None:
                assert abs(got_expire - expire) <= 1000, key  # the 6.2 source: now + PTTL


def test_redis7_into_redis6_falls_back(redis7_raw, readers):
    with fresh("redis6") as target:
        report = restore_snapshot(redis7_raw.catalog(), "s", url(target), unsupported="drop")
        assert [(r.raw, r.cut) for r in readers] == [(False, 0)]
        assert readers[0].decoded == len(redis7_raw.view)
        assert report.payload_version == 9 and report.functions == 0
        assert report.keys_written == len(redis7_raw.view)
        assert set(server_view(target)) == set(redis7_raw.view)


def test_redis7_into_valkey9_is_not_raw(redis7_raw, readers):
    """Different family (REDIS file, VALKEY target): decode + encode."""
    with fresh("valkey9") as target:
        report = restore_snapshot(redis7_raw.catalog(), "s", url(target))
        assert not readers[0].raw and report.payload_version == 80
        assert_same_view(_no_active_time(redis7_raw.view), _no_active_time(server_view(target)))


@pytest.mark.parametrize("kind", ["redis7", "valkey9"])
def test_sanitize_dump_payload_yes_accepts_raw_payloads(kind, request, readers):
    source = request.getfixturevalue(f"{kind}_raw")
    config = {} if kind == "redis7" else {"sanitize_dump_payload": "yes"}
    with fresh(kind, **config) as target:
        if kind == "redis7":
            target.config_set("sanitize-dump-payload", "yes")
        report = restore_snapshot(source.catalog(), "s", url(target))
        assert readers[0].raw and report.keys_written == len(source.view)
        assert_same_view(source.view, server_view(target))


def test_sanitize_dump_payload_yes_accepts_rdb9_payloads(redis6_raw, readers):
    with fresh("redis7") as target:
        target.config_set("sanitize-dump-payload", "yes")
        report = restore_snapshot(redis6_raw.catalog(), "s", url(target))
        assert readers[0].raw and report.keys_written == len(redis6_raw.view)


def test_corrupt_shard_refused_before_writing_raw(redis7_raw, tmp_path, readers):
    root = tmp_path / "store"
    catalog = Catalog(LocalStore(root), account=ACCOUNT)
    catalog.import_file(redis7_raw.path, "c")
    (obj,) = (root / "data" / "c").rglob("shard-*")
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0x40
    obj.write_bytes(bytes(data))
    with fresh("redis7") as target:
        with pytest.raises(SnapshotChecksumError):
            restore_snapshot(catalog, "c", url(target), flush=True, raw=True)
        assert dbsizes(target) == {} and readers == []


def test_raw_true_needs_verify_first(redis7_raw):
    with fresh("redis7") as target:
        with pytest.raises(ValueError, match="verify_first"):
            restore_snapshot(redis7_raw.catalog(), "s", url(target), raw=True,
                             verify_first=False, flush=True)
        assert dbsizes(target) == {}


def test_raw_entries_into_restore_entries_directly(redis7_raw):
    with fresh("redis7") as target:
        report = restore_entries(raw_entries(redis7_raw.path), url(target), connections=2)
        assert report.keys_written == len(redis7_raw.view)
        assert_same_view(redis7_raw.view, server_view(target))
        with pytest.raises(RestoreError, match="raw=False") as info:
            restore_entries(raw_entries(redis7_raw.path), url(target), raw=False, replace=True)
        assert isinstance(info.value.__cause__, ValueError)


# ---- RESP: the formatted command is what command() gives ----------------------------


@pytest.mark.parametrize("expire,idle,freq,lru,absttl,replace", [
    (None, None, None, "idle", True, False),
    (4_102_444_800_000, 17, None, "idle", True, True),
    (4_102_444_800_000, None, 200, "freq", False, False),
    (None, 5, 3, None, True, True),
])
def test_restore_command_bytes(expire, idle, freq, lru, absttl, replace):
    payload = b"\x00\x03abc\x0a\x00" + struct.pack("<Q", crc64(b"\x00\x03abc\x0a\x00"))
    entry = RawEntry(0, b"some key", "string", expire, idle, freq, payload)
    now = 4_102_444_000_000
    args = [b"RESTORE", entry.key]
    if expire is None:
        args += [b"0", payload]
    elif absttl:
        args += [expire, payload, b"ABSTTL"]
    else:
        args += [expire - now, payload]
    if lru == "idle" and idle is not None:
        args += [b"IDLETIME", idle]
    elif lru == "freq" and freq is not None:
        args += [b"FREQ", freq]
    if replace:
        args.append(b"REPLACE")
    plan = restore_mod._Plan(10, replace, lru, absttl, "error", False)
    assert plan.restore_command(entry, now) == command(*args)
    assert restore_command(entry, 10, replace=replace, lru=lru, absttl=absttl,
                           now_ms=now) == command(*args)


# ---- files built byte by byte: prefixes, per-entry fallback, hostile offsets ----------


def _cut(data: bytes) -> list:
    return list(raw_entries(data))


def test_prefix_opcodes_and_key_encodings_built_by_hand():
    value = B.string(b"hello")
    body = (
        b"\xfc" + struct.pack("<q", 4_102_444_800_000) + b"\xf8" + B.length(300)
        + bytes([0]) + B.int_string(-5) + value
        + b"\xfd" + struct.pack("<i", 2_000_000_000) + b"\xf9\xc8"
        + bytes([0]) + B.lzf_string(b"k" * 40) + value
        + bytes([0]) + B.string(b"m" * 70) + value  # 14-bit key length
        + b"\xfe\x03" + bytes([0]) + b"\x80" + struct.pack(">I", 3) + b"abc" + value
    )
    got = _cut(B.rdb(body, version=10))
    assert [(r.db, r.key) for r in got] == [(0, b"-5"), (0, b"k" * 40), (0, b"m" * 70),
                                             (3, b"abc")]
    assert (got[0].expire_ms, got[0].idle) == (4_102_444_800_000, 300)
    assert (got[1].expire_ms, got[1].freq) == (2_000_000_000_000, 200)
    for r in got:
        assert r.payload == b"\x00" + value + b"\x0a\x00" + struct.pack(
            "<Q", crc64(b"\x00" + value + b"\x0a\x00"))


def test_key_meta_and_aux_inside_an_entry_fall_back_per_entry():
    meta = b"\xf3" + B.length(1) + b"ABCD" + b"\x02" + B.length(5) + b"\x00"
    aux = b"\xfa" + B.string(b"mvcc-tstamp") + B.string(b"123")
    body = (
        B.kv(0, b"plain", B.string(b"1"))
        + meta + B.kv(0, b"meta", B.string(b"2"))
        + b"\xfc" + struct.pack("<q", 4_102_444_800_000) + aux + B.kv(0, b"aux", B.string(b"3"))
        + B.kv(0, b"after", B.string(b"4"))
    )
    reader = raw_entries(B.rdb(body, version=13))
    got = list(reader)
    assert [type(r) for r in got] == [RawEntry, DecodedEntry, DecodedEntry, RawEntry]
    assert [r.key for r in got] == [b"plain", b"meta", b"aux", b"after"]
    assert got[1].value == b"2" and got[2].value == b"3"
    assert got[2].expire_ms == 4_102_444_800_000
    assert (reader.cut, reader.decoded) == (2, 2)


class _Forged:
    def __init__(self, entry, **changes):
        for name in ("db", "key", "type", "expire_ms", "idle", "freq", "offset", "size"):
            setattr(self, name, changes.get(name, getattr(entry, name)))


class _ForgedDecoder(list):
    def close(self) -> None:
        pass


def _forge(data: bytes, **changes) -> RawEntries:
    """A reader whose decoder reports the (single) entry with ``changes`` applied."""
    reader = raw_entries(data)
    (entry,) = list(Decoder(io.BytesIO(data), values=False))
    reader.decoder = _ForgedDecoder([_Forged(entry, **changes)])  # type: ignore[assignment]
    return reader


@pytest.mark.parametrize("changes,match", [
    ({"size": 3}, "past the entry"),             # key length beyond the entry's end
    ({"offset": 10, "size": 8}, "type byte|key"),  # not at the entry's first byte
    ({"size": 10**9}, "outside the file"),
    ({"key": b"other"}, "key bytes"),
    ({"key": b"other key"}, "key length"),
    ({"type": "hash"}, "type byte"),
])
def test_inconsistent_decoder_offsets_are_decode_errors(changes, match):
    data = B.rdb(B.kv(0, b"key:1", B.string(b"value")), version=10)
    with pytest.raises(DecodeError, match=match) as info:
        list(_forge(data, **changes))
    assert 9 <= info.value.offset < len(data)


@pytest.mark.parametrize("key", [B.lzf_string(b"k" * 40), B.int_string(70000),
                                 b"\x80" + struct.pack(">I", 3) + b"abc"])
def test_truncated_encoded_keys_are_decode_errors(key):
    body = bytes([0]) + key + B.string(b"v")
    data = B.rdb(body, version=10)
    for size in range(1, len(body) - 2):
        with pytest.raises(DecodeError, match="raw payload") as info:
            list(_forge(data, size=size))
        assert 9 <= info.value.offset <= 9 + size
