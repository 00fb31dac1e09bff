"""``rdbkit.compat.rdbtools`` makes the very calls real rdbtools 0.1.15 makes.

The same recording callback runs under PyPI's rdbtools and under our adapter
on the same RDB <= 9 files (``../shared/fixtures`` and a file Redis 6.2
writes); the call sequences must be identical. Then the adapter reads files
rdbtools refuses (RDB 10 from Redis 7, VALKEY080) and its calls rebuild what
the server holds.
"""

from __future__ import annotations

import datetime

import pytest
from datasets import server_view, write_dataset
from rdbtools.parser import RdbCallback as ToolsCallback
from rdbtools.parser import RdbParser as ToolsParser

from rdbkit.compat.rdbtools import RdbCallback, RdbParser
from rdbkit.errors import ChecksumError, DecodeError

EVENTS = [name for name in dir(ToolsCallback)
          if not name.startswith("_") and name not in ("encode_key", "encode_value")]


def recorder(base, record_modules: bool = False, stop_at_aux: bytes | None = None):
    """A callback of class ``base`` that logs every call (args as passed, keywords sorted)."""

    class Recorder(base):
        def __init__(self) -> None:
            super().__init__(None)
            self.calls: list = []

    def make(name):
        def method(self, *args, **kwargs):
            self.calls.append((name, args, tuple(sorted(kwargs.items()))))
            if name == "start_module":
                return record_modules
            if name == "aux_field" and stop_at_aux is not None:
                return args[0] == stop_at_aux
            return None
        return method

    for name in EVENTS:
        setattr(Recorder, name, make(name))
    return Recorder()


def comparable(calls) -> list[str]:
    # repr, so NaN scores compare equal to each other
    return [repr(call) for call in calls]


def both(path, filters=None, **kwargs):
    theirs, ours = recorder(ToolsCallback, **kwargs), recorder(RdbCallback, **kwargs)
    ToolsParser(theirs, filters).parse(str(path))
    RdbParser(ours, filters).parse(str(path))
    return theirs.calls, ours.calls


def rdb_version(path) -> int | None:
    head = path.read_bytes()[:9]
    if head[:5] != b"REDIS" or not head[5:].isdigit():
        return None
    return int(head[5:])


def old_fixtures(root):
    return [p for p in sorted(root.glob("*/*.rdb"))
            if (rdb_version(p) or 99) <= 9 and p.name != "invalid_chksum_v8.rdb"]


def test_same_calls_on_every_old_fixture(shared_fixtures):
    files = old_fixtures(shared_fixtures)
    assert len(files) >= 50
    mismatched = []
    for path in files:
        theirs, ours = both(path)
        if comparable(theirs) != comparable(ours):
            mismatched.append(path.name)
    assert not mismatched


@pytest.mark.parametrize("name", ["redis_40_with_module.rdb", "redis_60_with_module_aux.rdb"])
def test_module_buffers_when_asked(shared_fixtures, name):
    theirs, ours = both(shared_fixtures / "sripathikrishnan__redis-rdb-tools" / name,
                        record_modules=True)
    assert any(c[0] == "end_module" and dict(c[2])["buffer"] for c in theirs)
    assert comparable(theirs) == comparable(ours)


FILTERS = [
    {"dbs": [0]},
    {"dbs": 2},
    {"keys": "k.*"},
    {"not_keys": "k1.*"},
    {"types": ["hash", "sortedset"]},
    {"types": ["string"], "keys": "[a-z]", "dbs": [0, 1, 2]},
]


@pytest.mark.parametrize("filters", FILTERS, ids=repr)
@pytest.mark.parametrize("name", ["parser_filters.rdb", "multiple_databases.rdb", "integer_keys.rdb"])
def test_filters_select_the_same_keys(shared_fixtures, filters, name):
    theirs, ours = both(shared_fixtures / "sripathikrishnan__redis-rdb-tools" / name, filters)
    assert comparable(theirs) == comparable(ours)


def test_aux_field_returning_true_stops_both(shared_fixtures):
    path = shared_fixtures / "sripathikrishnan__redis-rdb-tools" / "redis_50_with_streams.rdb"
    theirs, ours = both(path, stop_at_aux=b"ctime")
    assert theirs[-1][0] == "aux_field" and comparable(theirs) == comparable(ours)


def test_real_redis6_file_same_calls(redis6):
    write_dataset(redis6)
    path = redis6.save()
    assert rdb_version(path) == 9
    theirs, ours = both(path)
    assert len(theirs) > 1000
    assert comparable(theirs) == comparable(ours)


def test_escaping_matches_rdbtools():
    samples = [b"plain", b"tab\there", b"\xff\xfe bin", "ünïcode".encode(), 12345]
    for escape in ("raw", "print", "utf8", "base64"):
        theirs, ours = ToolsCallback(escape), RdbCallback(escape)
        for sample in samples:
            assert ours.encode_key(sample) == theirs.encode_key(sample), (escape, sample)
            assert ours.encode_value(sample) == theirs.encode_value(sample), (escape, sample)


def test_a_bad_checksum_is_a_typed_error(shared_fixtures):
    path = shared_fixtures / "redis__librdb" / "invalid_chksum_v8.rdb"
    theirs = recorder(ToolsCallback)
    ToolsParser(theirs).parse(str(path))  # rdbtools never looks at the checksum
    with pytest.raises(ChecksumError):
        RdbParser(recorder(RdbCallback)).parse(str(path))


# --- files rdbtools refuses ----------------------------------------------------------------


class Rebuild(RdbCallback):
    """Rebuilds {(db, key): (type, value, expiry)} from rdbtools-style calls."""

    def __init__(self) -> None:
        super().__init__(None)
        self.db = 0
        self.keys: dict = {}

    @staticmethod
    def _b(x):
        return x if isinstance(x, bytes) else str(x).encode()

    def start_database(self, db_number):
        self.db = db_number

    def set(self, key, value, expiry, info):
        self.keys[(self.db, self._b(key))] = ("string", self._b(value), expiry)

    def _start(self, kind, key, expiry, empty):
        self.cur = (self.db, self._b(key))
        self.keys[self.cur] = (kind, empty, expiry)

    def start_list(self, key, expiry, info):
        self._start("list", key, expiry, [])

    def rpush(self, key, value):
        self.keys[self.cur][1].append(self._b(value))

    def start_set(self, key, cardinality, expiry, info):
        self._start("set", key, expiry, set())

    def sadd(self, key, member):
        self.keys[self.cur][1].add(self._b(member))

    def start_hash(self, key, length, expiry, info):
        self._start("hash", key, expiry, {})

    def hset(self, key, field, value):
        self.keys[self.cur][1][self._b(field)] = self._b(value)

    def start_sorted_set(self, key, length, expiry, info):
        self._start("zset", key, expiry, {})

    def zadd(self, key, score, member):
        self.keys[self.cur][1][self._b(member)] = float(score)

    def start_stream(self, key, listpacks_count, expiry, info):
        self._start("stream", key, expiry, [])

    def stream_listpack(self, key, entry_id, data):
        assert len(entry_id) == 16 and data[-1] == 0xFF  # a raw listpack ends with 0xFF
        self.keys[self.cur][1].append(entry_id)

    def end_stream(self, key, items, last_entry_id, cgroups):
        kind, _nodes, expiry = self.keys[self.cur]
        self.keys[self.cur] = (kind, (items, last_entry_id, [g["name"] for g in cgroups]), expiry)


@pytest.mark.parametrize("server_name", ["redis7", "valkey9"])
def test_reads_files_rdbtools_refuses(request, server_name):
    server = request.getfixturevalue(server_name)
    write_dataset(server)
    path = server.save()
    with pytest.raises(Exception, match="Invalid (File Format|RDB version)"):
        ToolsParser(ToolsCallback(None)).parse(str(path))
    rebuilt = Rebuild()
    RdbParser(rebuilt).parse(str(path))
    view = server_view(server)
    assert set(rebuilt.keys) == set(view)
    for k, (kind, value, expire_ms) in view.items():
        got_kind, got_value, got_expiry = rebuilt.keys[k]
        assert got_kind == kind, k
        if kind == "stream":
            assert got_value[0] == value.length and got_value[1] == str(value.last_id)
            assert [bytes(g) if isinstance(g, bytes) else str(g).encode() for g in got_value[2]] \
                == [g.name for g in value.groups]
        else:
            assert got_value == value, k
        if expire_ms is None:
            assert got_expiry is None
        else:
            assert got_expiry == datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=expire_ms)


def test_corrupt_file_raises_decode_error(tmp_path, shared_fixtures):
    data = (shared_fixtures / "sripathikrishnan__redis-rdb-tools" / "dictionary.rdb").read_bytes()
    cut = tmp_path / "cut.rdb"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError, match="at byte"):
        RdbParser(recorder(RdbCallback)).parse(str(cut))
