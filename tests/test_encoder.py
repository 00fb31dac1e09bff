"""The encoder (issue 4): what rdbkit writes, real servers load, and the decoder reads back.

Real servers: each server's own dataset (``tests/datasets.py``) is SAVEd,
decoded, re-encoded for every target version that server can load, and a
fresh server started on that file must hold exactly the same data
(``datasets.server_view``). RESTORE takes every payload ``dump_payload``
builds (with ``sanitize-dump-payload yes``), and DUMP payloads from the server
parse back to the server's own values. Hypothesis checks
decode(encode(x, v)) == x for every target version.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import math
import random
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdbbuild import E
from datasets import field_expires_view, function_codes, server_view, write_dataset, _raw_client, _value
from servers import SERVERS, running_server
from rdbkit.codec.model import (
    DumpValue,
    ModuleValue,
    Stream,
    StreamConsumer,
    StreamEntry,
    StreamGroup,
    StreamID,
    StreamPending,
)
from rdbkit.errors import EncodeError, TruncatedError

REDIS_CHECK_RDB = Path("/usr/bin/redis-check-rdb")
ALL_VERSIONS = (6, 7, 8, 9, 10, 11, 12, 80)
#: server -> the target versions it must load (docs/codec.md, issue 4)
LOAD_TARGETS = {"redis7": (6, 7, 8, 9, 10), "valkey9": (11, 80), "redis6": (9,)}
EXPIRE_TOLERANCE_MS = {"redis7": 0, "valkey9": 0, "redis6": 1000}


ENCODER_API = ("Encoder", "RdbWriter", "dump_payload", "parse_dump_payload", "lzf_compress")
ENCODER_IMPLS = ["c", "python"]
_MODULES = {"python": "rdbkit._pycodec", "c": "rdbkit._codec"}


@pytest.fixture(params=ENCODER_IMPLS, ids=lambda p: p)
def enc(request):
    """The codec module whose encoder is under test (a missing part of its API fails here)."""
    module = importlib.import_module(_MODULES[request.param])
    missing = [name for name in ENCODER_API if not hasattr(module, name)]
    assert not missing, f"{module.__name__} lacks {missing}"
    return module




def encode_file(codec, entries, version, *, functions=(), aux=None, **kwargs) -> tuple[bytes, list]:
    encoder = codec.Encoder(version, **kwargs)
    parts = [encoder.begin(aux=aux, functions=functions)]
    parts += [encoder.write(e) for e in entries]
    parts.append(encoder.finish())
    return b"".join(parts), encoder.dropped


def decode_file(data: bytes):
    from rdbkit import _pycodec

    decoder = _pycodec.Decoder(io.BytesIO(data))
    entries = list(decoder)
    assert decoder.checksum_status == "ok"
    return decoder, entries


# --------------------------------------------------------------------------- helpers for views


def _stream_pre10(s: Stream) -> Stream:
    """What survives an RDB 9 (stream layout 1): no first/max-deleted/added/entries_read/active."""
    groups = tuple(
        dataclasses.replace(
            g,
            entries_read=None,
            consumers=tuple(dataclasses.replace(c, active_time_ms=None) for c in g.consumers),
        )
        for g in s.groups
    )
    return dataclasses.replace(s, first_id=None, max_deleted_id=None, entries_added=None, groups=groups)


def _comparable(kind, value, lossy_stream: bool):
    if kind == "stream" and lossy_stream:
        return _stream_pre10(value)
    return value


def compare_views(expected: dict, got: dict, tolerance: int, lossy_stream: bool) -> list[str]:
    problems = []
    if set(expected) != set(got):
        problems.append(
            f"keys only expected: {sorted(set(expected) - set(got))[:10]}; "
            f"only on the server: {sorted(set(got) - set(expected))[:10]}"
        )
    for db_key in sorted(set(expected) & set(got)):
        kind, value, exp = expected[db_key]
        gkind, gvalue, gexp = got[db_key]
        if kind != gkind:
            problems.append(f"{db_key}: type {gkind}, expected {kind}")
            continue
        if _comparable(kind, value, lossy_stream) != _comparable(kind, gvalue, lossy_stream):
            problems.append(f"{db_key}: value differs: {str(gvalue)[:300]} != {str(value)[:300]}")
        if (exp is None) != (gexp is None) or (exp is not None and abs(exp - gexp) > tolerance):
            problems.append(f"{db_key}: expiry {gexp}, expected {exp}")
    return problems


#: (type, rdb encoding) -> OBJECT ENCODING the server reports, per server naming
def expected_object_encoding(server: str, kind: str, rdb_encoding: str) -> str | None:
    packed = "ziplist" if server == "redis6" else "listpack"
    if kind == "list":
        return None if server == "valkey9" else "quicklist"  # Valkey converts small lists
    if kind == "set":
        return {"intset": "intset", "listpack": "listpack", "hashtable": "hashtable"}[rdb_encoding]
    if kind == "zset":
        return "skiplist" if rdb_encoding == "skiplist" else packed
    if kind == "hash":
        return "hashtable" if rdb_encoding == "hashtable" else packed
    return None


# --------------------------------------------------------------------------- real-server sources


@dataclasses.dataclass
class Source:
    name: str
    server: object
    entries: list
    functions: list
    view: dict
    field_expires: dict
    hfe_keys: list


_SOURCES: dict[str, Source] = {}


def source(request, name: str) -> Source:
    """The server's dataset, SAVEd and decoded, with the server's view (once per session)."""
    if name not in _SOURCES:
        server = request.getfixturevalue(name)
        dataset = write_dataset(server)
        path = server.save()
        view = server_view(server)
        from rdbkit import _pycodec

        decoder = _pycodec.Decoder(str(path))
        entries = list(decoder)
        _SOURCES[name] = Source(
            name, server, entries, list(decoder.functions), view,
            field_expires_view(server, dataset.field_expires), list(dataset.field_expires),
        )
    return _SOURCES[name]


@contextlib.contextmanager
def server_on_file(name: str, data: bytes):
    """A fresh server of kind ``name`` that loaded ``data`` as its dump.rdb at start."""
    finder, _, extra = SERVERS[name]
    with tempfile.TemporaryDirectory(prefix=f"rdbkit-enc-{name}-") as tmp:
        (Path(tmp) / "dump.rdb").write_bytes(data)
        with running_server(f"{name}-load", finder(), {**extra, "dir": tmp}) as handle:
            yield handle


def _expected_drops(src: Source, version: int) -> set:
    drops = set()
    level = 11 if version == 80 else version
    for e in src.entries:
        if e.type == "stream" and level < 9:
            drops.add((e.key, "stream"))
        if e.field_expires and version not in (12, 80):
            drops.add((e.key, "hash field TTLs"))
    return drops


LOAD_CASES = [(name, v) for name, versions in LOAD_TARGETS.items() for v in versions]


@pytest.mark.parametrize("server_name,version", LOAD_CASES, ids=[f"{n}-v{v}" for n, v in LOAD_CASES])
def test_real_server_loads_what_we_wrote(request, enc, server_name, version):
    src = source(request, server_name)
    data, dropped = encode_file(
        enc, src.entries, version, functions=src.functions, drop_unsupported=True,
        aux={b"rdbkit": b"test"},
    )
    # Exactly the features the version lacks were dropped, each one named.
    got_drops = {(k, f) for k, f in dropped if k is not None}
    assert got_drops == _expected_drops(src, version)
    if version < 10 and version != 80 and src.functions:
        assert len([d for d in dropped if d[0] is None]) == len(src.functions)
    _, ours = decode_file(data)
    dropped_keys = {k for k, f in got_drops if f != "hash field TTLs"}
    expected = {k: v for k, v in src.view.items() if k[1] not in dropped_keys}
    if REDIS_CHECK_RDB.is_file() and server_name == "redis7":
        path = Path(tempfile.mkdtemp()) / "ours.rdb"
        path.write_bytes(data)
        result = subprocess.run([str(REDIS_CHECK_RDB), str(path)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "RDB looks OK" in result.stdout, result.stdout + result.stderr
    lossy = (11 if version == 80 else version) < 10 and src.server.version_tuple >= (7,)
    with server_on_file(server_name, data) as loaded:
        got = server_view(loaded)
        problems = compare_views(expected, got, EXPIRE_TOLERANCE_MS[server_name], lossy)
        assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems[:20])
        # OBJECT ENCODING agrees with the compact encoding we chose.
        mismatched = []
        for e in ours:
            want = expected_object_encoding(server_name, e.type, e.encoding)
            if want is None:
                continue
            with contextlib.closing(loaded.client(db=e.db)) as c:
                have = c.object("encoding", e.key).decode()
            if have != want:
                mismatched.append(f"{e.key!r}: we wrote {e.encoding}, server holds {have}, expected {want}")
        assert not mismatched, "\n".join(mismatched)
        if (11 if version == 80 else version) >= 10:
            assert function_codes(loaded) == sorted(src.functions)
        if src.hfe_keys:
            fe = field_expires_view(loaded, src.hfe_keys)
            if version == 80:
                assert fe == src.field_expires
            else:
                assert all(v == {} for v in fe.values()), fe


# --------------------------------------------------------------------------- DUMP / RESTORE

RESTORE_CASES = [("redis7", v) for v in (6, 7, 8, 9, 10)] + [("valkey9", 11), ("valkey9", 80)]


@pytest.mark.parametrize("server_name,version", RESTORE_CASES, ids=[f"{n}-v{v}" for n, v in RESTORE_CASES])
def test_restore_accepts_our_payloads(request, enc, server_name, version):
    src = source(request, server_name)
    with contextlib.ExitStack() as stack:
        if server_name == "valkey9":
            # valkey 9.1.2 reads sanitize-dump-payload from its config file but does
            # not expose it to CONFIG GET/SET: start a server configured with it.
            finder, _, extra = SERVERS[server_name]
            server = stack.enter_context(
                running_server("valkey9-sanitize", finder(), {**extra, "sanitize-dump-payload": "yes"})
            )
        else:
            server = src.server
            server.config_set("sanitize-dump-payload", "yes")
        _restore_all(enc, src, server, version)


def _restore_all(enc, src, server, version):
    level = 11 if version == 80 else version
    lossy = level < 10
    refused = []
    with contextlib.closing(server.client()) as c:
        sanitized_before = int(c.info("stats").get("dump_payload_sanitizations", 0))
    restored = 0
    try:
        for e in src.entries:
            if e.type == "stream" and level < 9:
                with pytest.raises(EncodeError):
                    enc.dump_payload(e.type, e.value, version)
                continue
            fe = e.field_expires if version in (12, 80) else None
            payload = enc.dump_payload(e.type, e.value, version, field_expires=fe)
            parsed = enc.parse_dump_payload(payload)
            assert parsed.value == e.value or e.type == "stream"
            target = b"restored:" + e.key
            with contextlib.closing(_raw_client(server, e.db)) as c:
                try:
                    c.restore(target, 0, payload, replace=True)
                except Exception as exc:  # noqa: BLE001 - collect every refusal, then fail
                    refused.append(f"{e.key!r} ({e.type}): {exc}")
                    continue
                restored += 1
                got = _value(c, target, e.type, server.version_tuple)
                want = src.view[(e.db, e.key)][1]
                if _comparable(e.type, got, lossy and e.type == "stream") != _comparable(e.type, want, lossy):
                    if not (lossy and e.type == "stream"):
                        refused.append(f"{e.key!r}: restored value differs")
                    elif [x.id for x in got.entries] != [x.id for x in want.entries]:
                        refused.append(f"{e.key!r}: restored stream entries differ")
                c.delete(target)
    finally:
        pass
    assert not refused, "\n".join(refused[:20])
    with contextlib.closing(server.client()) as c:
        sanitized = int(c.info("stats")["dump_payload_sanitizations"]) - sanitized_before
    # the server deep-sanitized the payloads holding compact containers
    assert restored and sanitized > 0


@pytest.mark.parametrize("server_name", ["redis7", "valkey9", "redis6"])
def test_server_dump_payloads_parse_back(request, enc, server_name):
    src = source(request, server_name)
    versions = {"redis7": 10, "valkey9": 80, "redis6": 9}
    for (db, key), (kind, value, _exp) in sorted(src.view.items()):
        with contextlib.closing(src.server.client(db=db)) as c:
            payload = c.dump(key)
        parsed = enc.parse_dump_payload(payload)
        assert isinstance(parsed, DumpValue)
        assert parsed.version == versions[server_name]
        assert parsed.type == kind, key
        assert parsed.value == value, key
        fe = src.field_expires.get((db, key)) or None
        assert parsed.field_expires == fe, key


# --------------------------------------------------------------------------- downgrade


def test_downgrade_field_ttls_need_12_or_valkey(request, enc):
    src = source(request, "valkey9")
    hfe = [e for e in src.entries if e.field_expires]
    assert hfe
    for version in (6, 7, 8, 9, 10, 11):
        encoder = enc.Encoder(version)
        encoder.begin()
        with pytest.raises(EncodeError) as info:
            encoder.write(hfe[0])
        assert repr(hfe[0].key) in str(info.value) and "hash field TTL" in str(info.value)
        data, dropped = encode_file(enc, src.entries, version, functions=src.functions, drop_unsupported=True)
        assert {(k, f) for k, f in dropped if f == "hash field TTLs"} == {(e.key, "hash field TTLs") for e in hfe}
        _, back = decode_file(data)
        by_key = {(e.db, e.key): e for e in back}
        for e in src.entries:
            if (e.db, e.key) not in by_key:
                assert (e.key, "stream") in dropped
                continue
            got = by_key[(e.db, e.key)]
            assert got.field_expires is None
            if e.type != "stream":
                assert got.value == e.value, e.key


def test_downgrade_functions_and_streams(request, enc):
    src = source(request, "redis7")
    assert src.functions
    for version in (6, 7, 8, 9):
        with pytest.raises(EncodeError) as info:
            enc.Encoder(version).begin(functions=src.functions)
        assert "function" in str(info.value)
    streams = [e for e in src.entries if e.type == "stream"]
    for version in (6, 7, 8):
        encoder = enc.Encoder(version)
        encoder.begin()
        with pytest.raises(EncodeError) as info:
            encoder.write(streams[0])
        assert repr(streams[0].key) in str(info.value) and "stream" in str(info.value)


def test_same_version_reencode_decodes_identically(request, enc):
    for name, version in (("redis7", 10), ("valkey9", 80), ("redis6", 9)):
        src = source(request, name)
        data, dropped = encode_file(enc, src.entries, version, functions=src.functions)
        assert dropped == []
        decoder, back = decode_file(data)
        assert decoder.functions == src.functions
        strip = lambda e: (e.db, e.key, e.type, e.value, e.expire_ms, e.idle, e.freq, e.field_expires)
        assert [strip(e) for e in back] == [strip(e) for e in src.entries]


# --------------------------------------------------------------------------- encodings at thresholds


def _members(n: int, kind: str, size: int = 8) -> list[bytes]:
    if kind == "int":
        return [b"%d" % (i * 7 - 300) for i in range(n)]
    return [(b"m%d-" % i).ljust(size, b"x") for i in range(n)]


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_encoding_choice_at_thresholds(enc, version):
    level = 11 if version == 80 else version
    packed = "listpack" if level >= 10 else "ziplist"
    cases = [
        (E(b"s512", "set", set(_members(512, "int"))), "intset"),
        (E(b"s513", "set", set(_members(513, "int"))), "hashtable"),
        (E(b"s128", "set", set(_members(128, "str"))), "listpack" if level >= 11 else "hashtable"),
        (E(b"s129", "set", set(_members(129, "str"))), "hashtable"),
        (E(b"s64", "set", set(_members(3, "str", 64))), "listpack" if level >= 11 else "hashtable"),
        (E(b"s65", "set", set(_members(3, "str", 65))), "hashtable"),
        (E(b"z128", "zset", {m: 1.5 for m in _members(128, "str")}), packed),
        (E(b"z129", "zset", {m: 1.5 for m in _members(129, "str")}), "skiplist"),
        (E(b"z65", "zset", {m: 1.5 for m in _members(2, "str", 65)}), "skiplist"),
        (E(b"h512", "hash", {m: b"v" for m in _members(512, "str")}), packed),
        (E(b"h513", "hash", {m: b"v" for m in _members(513, "str")}), "hashtable"),
        (E(b"h65", "hash", {b"f": b"v" * 65}), "hashtable"),
        (E(b"l512", "list", _members(512, "str")), "ziplist" if level == 6 else packed and ("quicklist2" if level >= 10 else "quicklist")),
        (E(b"l513", "list", _members(513, "str")), "linkedlist" if level == 6 else ("quicklist2" if level >= 10 else "quicklist")),
    ]
    data, _ = encode_file(enc, [c[0] for c in cases], version)
    _, back = decode_file(data)
    got = {e.key: e.encoding for e in back}
    assert got == {c[0].key: c[1] for c in cases}
    for e, (case, _) in zip(back, cases):
        assert e.value == case.value
    # plain=True: only types 0-5 (and 1 for lists)
    data, _ = encode_file(enc, [c[0] for c in cases], version, plain=True)
    _, back = decode_file(data)
    assert {e.encoding for e in back} <= {"hashtable", "skiplist", "linkedlist"}


def test_quicklist_nodes_split_at_8k(enc):
    items = [bytes([65 + i % 26]) * 100 for i in range(300)] + [b"B" * 20000, b"tail"]
    for version in (7, 10):
        data = enc.dump_payload("list", items, version, compress=False)
        t = data[0]
        assert t == (18 if version >= 10 else 14)
        assert enc.parse_dump_payload(data).value == items


# --------------------------------------------------------------------------- validation


def test_validation_names_the_key(enc):
    encoder = enc.Encoder(10, max_string_len=1000)
    encoder.begin()
    bad = [
        E(b"k:wrongtype", "hash", [b"a"]),
        E(b"k:nan", "zset", {b"m": float("nan")}),
        E(b"k:str", "string", "text"),
        E(b"k:empty", "set", set()),
        E(b"L" * 1001, "string", b"v"),
        E(b"k:longvalue", "string", b"v" * 1001),
    ]
    for entry in bad:
        with pytest.raises(EncodeError) as info:
            encoder.write(entry)
        assert repr(entry.key[:20])[:-1] in str(info.value), str(info.value)
    # the encoder is still usable and nothing of the bad entries was emitted
    data = encoder.write(E(b"ok", "string", b"v")) + encoder.finish()
    assert b"wrongtype" not in data and b"k:nan" not in data
    with pytest.raises(RuntimeError):
        encoder.write(E(b"late", "string", b"v"))
    with pytest.raises(RuntimeError):
        enc.Encoder(10).write(E(b"early", "string", b"v"))
    with pytest.raises(ValueError):
        enc.Encoder(13)
    with pytest.raises(ValueError):
        enc.Encoder(80, magic="REDIS")


def test_writer_never_writes_eof_after_an_error(enc):
    out = io.BytesIO()
    with pytest.raises(EncodeError):
        with enc.RdbWriter(out, version=10) as writer:
            writer.begin()
            writer.write(E(b"good", "string", b"v"))
            writer.write(E(b"bad", "zset", {b"m": float("nan")}))
    from rdbkit import _pycodec

    with pytest.raises(TruncatedError):
        list(_pycodec.Decoder(io.BytesIO(out.getvalue())))
    out = io.BytesIO()
    with pytest.raises(KeyError):
        with enc.RdbWriter(out, version=10) as writer:
            writer.begin()
            writer.write(E(b"good", "string", b"v"))
            raise KeyError("caller failed")
    with pytest.raises(TruncatedError):
        list(_pycodec.Decoder(io.BytesIO(out.getvalue())))
    chunks = []
    with enc.RdbWriter(chunks.append, version=80) as writer:
        writer.begin(aux={"valkey-ver": "9.1.2"})
        writer.write(E(b"good", "string", b"v", db=3, expire_ms=4_102_444_800_000))
    decoder, back = decode_file(b"".join(chunks))
    assert decoder.magic == "VALKEY" and decoder.version == 80
    assert [(e.db, e.key, e.value, e.expire_ms) for e in back] == [(3, b"good", b"v", 4_102_444_800_000)]


def test_lzf_compress(enc):
    from rdbkit import _pycodec

    rng = random.Random(5)
    for data in [b"abcdefghij" * 30, b"a" * 100000, rng.randbytes(5000), bytes(range(256)) * 40,
                 b"x" * 21, b"", b"ab" * 3000 + rng.randbytes(100)]:
        packed = enc.lzf_compress(data)
        if packed is None:
            continue
        assert len(packed) <= len(data) - 4
        assert _pycodec.lzf_decompress(packed, len(data)) == data
    assert enc.lzf_compress(rng.randbytes(5000)) is None


def test_parse_dump_payload_rejects_bad_input(enc):
    from rdbkit.errors import ChecksumError, DecodeError, UnsupportedVersionError

    good = enc.dump_payload("string", b"hello", 10)
    assert enc.parse_dump_payload(good) == DumpValue("string", b"hello", 10, None, "string")
    with pytest.raises(DecodeError):
        enc.parse_dump_payload(good[:9])
    with pytest.raises(ChecksumError):
        enc.parse_dump_payload(good[:-1] + bytes([good[-1] ^ 1]))
    from rdbkit._pycodec import crc64

    body = good[:-10] + (13).to_bytes(2, "little")
    with pytest.raises(UnsupportedVersionError):
        enc.parse_dump_payload(body + crc64(body).to_bytes(8, "little"))
    body = good[:-10] + b"junk" + (10).to_bytes(2, "little")
    with pytest.raises(DecodeError):
        enc.parse_dump_payload(body + crc64(body).to_bytes(8, "little"))


# --------------------------------------------------------------------------- hypothesis

INTISH = [b"", b"0", b"12", b"-0", b"007", b"+5", b"-1", b" 1", b"1.5", b"127", b"128", b"-128",
          b"-129", b"4095", b"4096", b"-4096", b"-4097", b"32767", b"32768", b"8388607", b"8388608",
          b"2147483647", b"2147483648", b"-2147483648", b"-2147483649", b"9223372036854775807",
          b"9223372036854775808", b"-9223372036854775808", b"-9223372036854775809", b"12345678901"]

small_bytes = st.one_of(
    st.sampled_from(INTISH),
    st.binary(max_size=70),
    st.binary(min_size=63, max_size=66),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: b"%d" % i),
)
huge_bytes = st.one_of(
    st.tuples(st.binary(min_size=1, max_size=30), st.integers(1, 3000)).map(lambda t: t[0] * t[1]),
    st.integers(0, 2**32).map(lambda seed: random.Random(seed).randbytes(20000)),
)
any_bytes = st.one_of(small_bytes, small_bytes, huge_bytes)
SIZES = [1, 2, 3, 127, 128, 129, 511, 512, 513]
scores = st.one_of(
    st.floats(allow_nan=False),
    st.integers(-(2**53), 2**53).map(float),
    st.sampled_from([0.0, -0.0, math.inf, -math.inf, 1e300, 5e-324, 0.1]),
)


@st.composite
def collection(draw, kind):
    n = draw(st.sampled_from(SIZES))
    style = draw(st.sampled_from(["int", "short", "64", "65", "mixed"]))
    seed = draw(st.integers(0, 2**32))
    rng = random.Random(seed)
    special = draw(st.lists(any_bytes, max_size=3))

    def one(i):
        if style == "int":
            return b"%d" % rng.randint(-(2**63), 2**63 - 1)
        if style == "short":
            return b"e%d" % i
        if style in ("64", "65"):
            return (b"%d:" % i).ljust(int(style), b"z")
        return rng.choice([b"%d" % rng.randint(-5000, 5000), rng.randbytes(rng.randint(0, 80)), b"f%d" % i])

    items = [one(i) for i in range(n)] + special
    if kind == "list":
        return items
    if kind == "set":
        return set(items)
    if kind == "hash":
        return {f: rng.choice(items) for f in items}
    return {m: draw(scores) if i < 3 else rng.choice([rng.random() * 1000, float(rng.randint(-99, 99))])
            for i, m in enumerate(items)}


@st.composite
def stream_value(draw):
    n = draw(st.integers(0, 250))
    rng = random.Random(draw(st.integers(0, 2**32)))
    ms, seq = draw(st.integers(0, 2**48)), draw(st.integers(0, 2**64 - 1000))
    entries = []
    for i in range(n):
        if rng.random() < 0.5:
            ms, seq = ms + rng.randint(1, 10**6), rng.randint(0, 3)
        else:
            seq += 1
        if rng.random() < 0.6:
            fields = ((b"temp", b"%d" % rng.randint(-9999, 9999)), (b"note", rng.randbytes(rng.randint(0, 30))))
        else:
            fields = tuple((b"f%d" % rng.randint(0, 5), draw(small_bytes) if i < 2 else b"v") for _ in range(rng.randint(1, 4)))
        entries.append(StreamEntry(StreamID(ms, seq), fields))
    last = entries[-1].id if entries else StreamID(ms, seq)
    groups = []
    for g in range(draw(st.integers(0, 3))):
        consumers = [b"c%d" % i for i in range(rng.randint(0, 3))]
        owned: dict = {c: [] for c in consumers}
        pending = []
        if consumers:
            for e in rng.sample(entries, min(len(entries), rng.randint(0, 5))):
                owner = rng.choice(consumers)
                owned[owner].append(e.id)
                pending.append(StreamPending(e.id, rng.randint(0, 2**40), rng.randint(1, 9), owner))
        pending.sort(key=lambda p: p.id)
        groups.append(StreamGroup(
            b"g%d" % g, last, rng.choice([-1, 0, len(entries)]), tuple(pending),
            tuple(StreamConsumer(c, rng.randint(0, 2**40), rng.randint(0, 2**40), tuple(sorted(owned[c])))
                  for c in consumers),
        ))
    return Stream(tuple(entries), len(entries), last,
                  entries[0].id if entries else StreamID(0, 0), StreamID(0, 0), len(entries) + 3, tuple(groups))


def _module_value(n: int) -> ModuleValue:
    module_id = (0x123456789ABC << 10 | 3) & ((1 << 64) - 1)
    from rdbkit.codec.model import module_name

    name, encver = module_name(module_id)
    raw = b"\x02\x81" + n.to_bytes(8, "big") + b"\x05\x03abc\x00"
    return ModuleValue(module_id, name, encver, raw, ((2, n), (5, b"abc")))


@st.composite
def entry(draw):
    kind = draw(st.sampled_from(["string", "list", "set", "zset", "hash", "hash-ttl", "stream", "module"]))
    key = draw(small_bytes)
    db = draw(st.sampled_from([0, 1, 15, 63, 64, 300]))
    expire = draw(st.one_of(st.none(), st.integers(0, 2**48), st.integers(-(2**63), 2**63 - 1)))
    idle = draw(st.one_of(st.none(), st.integers(0, 2**40)))
    freq = draw(st.one_of(st.none(), st.integers(0, 255)))
    fe = None
    if kind == "string":
        value = draw(any_bytes)
    elif kind in ("list", "set", "zset", "hash"):
        value = draw(collection(kind))
    elif kind == "hash-ttl":
        kind = "hash"
        value = draw(collection("hash"))
        rng = random.Random(draw(st.integers(0, 2**32)))
        fe = {f: rng.randint(1, 2**48 - 1) for f in value if rng.random() < 0.5} or {next(iter(value)): 2**48 - 1}
    elif kind == "stream":
        value = draw(stream_value())
    else:
        value = _module_value(draw(st.integers(0, 2**64 - 1)))
    return E(key, kind, value, db, expire, idle, freq, fe)


def _why_unsupported(e: E, version: int) -> str | None:
    level = 11 if version == 80 else version
    if e.field_expires and version not in (12, 80):
        return "hash field TTL"
    if e.type == "stream" and level < 9:
        return "stream"
    if e.type == "module" and level < 8:
        return "module"
    return None


def _expected_value(e: E, version: int):
    level = 11 if version == 80 else version
    if e.type == "stream":
        if level < 10:
            return _stream_pre10(e.value)
        if level < 11:
            return dataclasses.replace(e.value, groups=tuple(
                dataclasses.replace(g, consumers=tuple(dataclasses.replace(c, active_time_ms=None) for c in g.consumers))
                for g in e.value.groups))
    return e.value


@pytest.mark.parametrize("version", ALL_VERSIONS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(e=entry(), plain=st.booleans(), compress=st.booleans())
def test_roundtrip_property(enc, version, e, plain, compress):
    encoder = enc.Encoder(version, plain=plain, compress=compress)
    head = encoder.begin()
    why = _why_unsupported(e, version)
    if why is not None:
        with pytest.raises(EncodeError) as info:
            encoder.write(e)
        assert repr(e.key) in str(info.value) and why in str(info.value)
        return
    data = head + encoder.write(e) + encoder.finish()
    _, back = decode_file(data)
    assert len(back) == 1
    got = back[0]
    level = 11 if version == 80 else version
    assert (got.db, got.key, got.type) == (e.db, e.key, e.type)
    assert got.value == _expected_value(e, version)
    assert got.expire_ms == e.expire_ms
    assert (got.idle, got.freq) == ((e.idle, e.freq) if level >= 9 else (None, None))
    assert got.field_expires == (e.field_expires or None)
    if plain:
        assert got.encoding in ("string", "linkedlist", "hashtable", "skiplist", "stream", "module")
    # the DUMP payload of the same value parses back to the same value
    payload = enc.dump_payload(e.type, e.value, version, field_expires=e.field_expires, plain=plain)
    parsed = enc.parse_dump_payload(payload)
    assert (parsed.type, parsed.value, parsed.version) == (e.type, _expected_value(e, version), version)
    assert parsed.field_expires == (e.field_expires or None)


def test_function_between_entries_round_trips(enc, codec):
    """Libraries written after keys (as some writers do) decode back in order."""
    lib1 = b"#!lua name=first\nredis.register_function('f1', function() return 1 end)"
    lib2 = b"#!lua name=second\nredis.register_function('f2', function() return 2 end)"
    out = io.BytesIO()
    with enc.RdbWriter(out, version=10) as writer:
        writer.begin(functions=[lib1])
        writer.write(E(b"k", "string", b"v"))
        writer.function(lib2)
    dec = codec.Decoder(io.BytesIO(out.getvalue()))
    assert [e.key for e in dec] == [b"k"]
    assert dec.functions == [lib1, lib2]
    assert dec.checksum_status == "ok"


def test_function_below_rdb_10_is_refused_or_dropped(enc):
    lib = b"#!lua name=old\nredis.register_function('f', function() return 1 end)"
    strict = enc.Encoder(9)
    strict.begin()
    with pytest.raises(EncodeError, match="function library 'old'"):
        strict.function(lib)
    lenient = enc.Encoder(9, drop_unsupported=True)
    lenient.begin()
    assert lenient.function(lib) == b""
    assert lenient.dropped == [(None, "function library 'old'")]


def test_consumer_pending_ids_must_be_in_the_group_pel(enc):
    """A consumer listing an ID its group's PEL lacks is refused: servers reject such files."""
    sid = StreamID(5, 0)
    entry = StreamEntry(sid, ((b"f", b"v"),))

    def stream(consumer_pending: tuple) -> Stream:
        group = StreamGroup(b"g", sid, 1, (StreamPending(sid, 1000, 1, b"c"),),
                            (StreamConsumer(b"c", 1000, None, consumer_pending),))
        return Stream((entry,), 1, sid, sid, StreamID(0, 0), 1, (group,))

    good = enc.Encoder(10)
    good.begin()
    assert good.write(E(b"s", "stream", stream((sid,))))
    bad = enc.Encoder(10)
    bad.begin()
    with pytest.raises(EncodeError, match=r"key b's'.*consumer b'c' has pending ID 9-9"):
        bad.write(E(b"s", "stream", stream((sid, StreamID(9, 9)))))
