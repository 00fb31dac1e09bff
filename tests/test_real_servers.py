"""Proof against real servers: what they write, rdbkit reads back exactly.

For each server (Redis 7.0 → ``REDIS0010``, Valkey 9.1 → ``VALKEY080``,
Redis 6.2 → ``REDIS0009``) the full dataset of ``tests/datasets.py`` is
written and SAVEd, then the file is decoded by both twins and every key is
compared with what the server itself returns for it.
"""

from __future__ import annotations

import dataclasses
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from servers import valkey9_binary
from datasets import (
    Dataset,
    field_expires_view,
    function_codes,
    server_view,
    write_dataset,
)

SERVER_NAMES = ("redis7", "valkey9", "redis6")
HEADERS = {"redis7": ("REDIS", 10), "valkey9": ("VALKEY", 80), "redis6": ("REDIS", 9)}
#: ms: PEXPIRETIME (7.0+) is exact; Redis 6.2 gives only PTTL, read after the SAVE.
EXPIRE_TOLERANCE_MS = {"redis7": 0, "valkey9": 0, "redis6": 1000}
REDIS_CHECK_RDB = Path("/usr/bin/redis-check-rdb")  # Debian's redis-tools
#: seconds the IDLE of a key restored with IDLETIME may grow before SAVE writes it.
IDLE_SLACK_S = 120


@dataclass
class Snapshot:
    """One server's dataset, its SAVEd file and the server's own view of it."""

    name: str
    server: object
    path: Path
    dataset: Dataset
    view: dict
    field_expires: dict
    functions: list[bytes]
    decoded: dict = field(default_factory=dict)  # codec module name -> (decoder, entries)

    def decode(self, codec):
        """Decode the file once per implementation (pull mode, values on)."""
        if codec.__name__ not in self.decoded:
            decoder = codec.Decoder(str(self.path))
            entries = list(decoder)
            self.decoded[codec.__name__] = (decoder, entries)
        return self.decoded[codec.__name__]


@pytest.fixture(scope="module", params=SERVER_NAMES)
def snapshot(request) -> Snapshot:
    server = request.getfixturevalue(request.param)
    dataset = write_dataset(server)
    path = server.save()
    # Read LRU/LFU-sensitive data only after SAVE: reading values touches keys.
    view = server_view(server)
    return Snapshot(
        name=request.param,
        server=server,
        path=path,
        dataset=dataset,
        view=view,
        field_expires=field_expires_view(server, dataset.field_expires),
        functions=function_codes(server),
    )


def _short(value, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def _diff(expected, got, path: str = "value") -> str:
    """Where two values first differ, e.g. ``value.groups[0].entries_read: -1 != 18446744073709551615``."""
    if dataclasses.is_dataclass(expected) and type(expected) is type(got):
        for f in dataclasses.fields(expected):
            a, b = getattr(expected, f.name), getattr(got, f.name)
            if a != b:
                return _diff(a, b, f"{path}.{f.name}")
    elif isinstance(expected, tuple) and isinstance(got, tuple) and type(expected) is type(got):
        for i, (a, b) in enumerate(zip(expected, got)):
            if a != b:
                return _diff(a, b, f"{path}[{i}]")
        if len(expected) != len(got):
            return f"{path}: length {len(expected)} != {len(got)}"
    elif isinstance(expected, dict) and isinstance(got, dict):
        for k in expected.keys() | got.keys():
            if expected.get(k, "<missing>") != got.get(k, "<missing>"):
                return _diff(expected.get(k, "<missing>"), got.get(k, "<missing>"), f"{path}[{k!r}]")
    elif isinstance(expected, (set, list)) and isinstance(got, (set, list)) and type(expected) is type(got):
        if isinstance(expected, set):
            return (f"{path}: missing {_short(sorted(expected - got)[:5])}, "
                    f"extra {_short(sorted(got - expected)[:5])}")
        for i, (a, b) in enumerate(zip(expected, got)):
            if a != b:
                return _diff(a, b, f"{path}[{i}]")
        return f"{path}: length {len(expected)} != {len(got)}"
    return f"{path}: expected {_short(expected)}, got {_short(got)}"


def _by_key(entries) -> dict:
    result = {}
    for entry in entries:
        assert (entry.db, entry.key) not in result, f"duplicate entry {entry!r}"
        result[(entry.db, entry.key)] = entry
    return result


def test_header_and_checksum(snapshot, codec):
    decoder, entries = snapshot.decode(codec)
    magic, version = HEADERS[snapshot.name]
    assert (decoder.magic, decoder.version) == (magic, version)
    assert decoder.done
    assert decoder.checksum_status == "ok"
    assert decoder.checksum != 0
    assert entries, "no entries decoded"
    ver_key = b"valkey-ver" if magic == "VALKEY" else b"redis-ver"
    assert decoder.aux[ver_key] == snapshot.server.version.encode()
    assert b"ctime" in decoder.aux and b"used-mem" in decoder.aux


def test_resize_hints_match_key_counts(snapshot, codec):
    decoder, entries = snapshot.decode(codec)
    counts: dict[int, list[int]] = {}
    for entry in entries:
        db = counts.setdefault(entry.db, [0, 0])
        db[0] += 1
        db[1] += entry.expire_ms is not None
    assert decoder.resize_hints == {db: tuple(c) for db, c in counts.items()}


def test_every_key_equals_the_servers_view(snapshot, codec):
    _, entries = snapshot.decode(codec)
    decoded = _by_key(entries)
    view = snapshot.view
    assert set(decoded) == set(view), (
        f"keys only in the file: {sorted(set(decoded) - set(view))[:10]}; "
        f"only on the server: {sorted(set(view) - set(decoded))[:10]}"
    )
    tolerance = EXPIRE_TOLERANCE_MS[snapshot.name]
    problems = []
    for db_key, (kind, value, expire_ms) in sorted(view.items()):
        entry = decoded[db_key]
        where = f"db={db_key[0]} key={db_key[1]!r} ({entry.encoding})"
        if entry.type != kind:
            problems.append(f"{where}: type {entry.type!r}, server says {kind!r}")
            continue
        if entry.value != value:
            problems.append(f"{where}: {_diff(value, entry.value)}")
        if (entry.expire_ms is None) != (expire_ms is None) or (
            expire_ms is not None and abs(entry.expire_ms - expire_ms) > tolerance
        ):
            problems.append(f"{where}: expire_ms {entry.expire_ms}, server says {expire_ms}")
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems[:20])


def test_forced_encodings_appear(snapshot, codec):
    _, entries = snapshot.decode(codec)
    decoded = _by_key(entries)
    got = {db_key: decoded[db_key].encoding for db_key in snapshot.dataset.encodings}
    assert got == snapshot.dataset.encodings


def test_lru_idle_or_lfu_freq(snapshot, codec):
    _, entries = snapshot.decode(codec)
    ds = snapshot.dataset
    other = "freq" if ds.lru_field == "idle" else "idle"
    assert all(getattr(e, ds.lru_field) is not None for e in entries), ds.lru_field
    assert all(getattr(e, other) is None for e in entries), other
    decoded = _by_key(entries)
    for db_key, idle in ds.idle.items():
        assert idle <= decoded[db_key].idle <= idle + IDLE_SLACK_S
    for db_key, freq in ds.freq.items():
        assert decoded[db_key].freq == freq
    assert 0 <= min(getattr(e, ds.lru_field) for e in entries)
    if ds.lru_field == "freq":
        assert max(e.freq for e in entries) <= 255


def test_hash_field_expiry(snapshot, codec):
    _, entries = snapshot.decode(codec)
    decoded = _by_key(entries)
    assert snapshot.field_expires == snapshot.dataset.field_expires  # the server agrees
    for db_key, entry in decoded.items():
        expected = snapshot.field_expires.get(db_key)
        assert entry.field_expires == expected, db_key
    if snapshot.name == "valkey9":
        assert snapshot.field_expires, "valkey 9 must have written hashes with field TTLs"


def test_functions(snapshot, codec):
    decoder, _ = snapshot.decode(codec)
    assert sorted(decoder.functions) == snapshot.functions
    assert sorted(decoder.functions) == sorted(snapshot.dataset.functions)
    if snapshot.name != "redis6":
        assert len(decoder.functions) == 2


def test_values_false_walks_the_same_entries(snapshot, codec):
    _, entries = snapshot.decode(codec)
    with codec.Decoder(str(snapshot.path), values=False) as decoder:
        lean = list(decoder)
    assert decoder.checksum_status == "ok"
    assert [e.value for e in lean] == [None] * len(lean)
    strip = lambda e: (e.db, e.key, e.type, e.encoding, e.expire_ms, e.offset, e.size)
    assert [strip(e) for e in lean] == [strip(e) for e in entries]


def test_push_mode_in_odd_chunks_gives_the_same_entries(snapshot, codec):
    _, entries = snapshot.decode(codec)
    data = snapshot.path.read_bytes()
    decoder = codec.Decoder()
    pushed = []
    for start in range(0, len(data), 4093):
        decoder.feed(data[start:start + 4093])
        pushed.extend(decoder)
    decoder.close()
    assert decoder.tell() == len(data)
    assert [e.astuple() for e in pushed] == [e.astuple() for e in entries]


def test_check_rdb_accepts_the_file(snapshot, tmp_path):
    """Harness sanity: the server's own check-rdb accepts the file.

    Redis and Valkey servers become their check-rdb tool when started under
    that name; Debian's redis-check-rdb 7.0 does not know the VALKEY magic, so
    the Valkey file is checked by valkey-server itself as valkey-check-rdb.
    """
    if snapshot.name == "valkey9":
        checker = tmp_path / "valkey-check-rdb"
        checker.symlink_to(valkey9_binary())
    else:
        checker = REDIS_CHECK_RDB
        if not checker.is_file():
            pytest.fail(f"{checker} is missing: install Debian's redis-tools (bash tasks.sh setup)")
    result = subprocess.run(
        [str(checker), str(snapshot.path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RDB looks OK" in result.stdout, result.stdout
