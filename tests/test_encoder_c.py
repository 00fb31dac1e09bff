"""The C encoder (``rdbkit._codec``): round trips through both decoders, parity
with the pure-Python encoder, and real servers loading what it wrote.

- Hypothesis: for every target version (REDIS 6-12, VALKEY 80) and random
  entries of every type (empty/binary/integer-looking strings, containers of
  boundary sizes around each encoding threshold), the C encoder's file
  decodes, with the C and with the pure-Python decoder, to exactly the input
  (stream metadata a version lacks is derived or dropped as docs/codec.md
  says) and with the encoding the spec table in docs/codec.md prescribes.
- C vs Python encoder: the same entries decode identically, quicklist nodes
  split alike.
- Real servers (``redis7``, ``valkey9``, ``redis6`` fixtures): our file is put
  in the server's dir, loaded with DEBUG RELOAD NOSAVE and read back with
  ``datasets.server_view``; the server's previous data is restored afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import math
import random
import re
import shutil
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdbbuild import E
from datasets import server_view
from rdbkit import _codec as C
from rdbkit import _pycodec as P
from rdbkit.codec.model import (
    MODULE_ID_CHARSET,
    ModuleValue,
    Stream,
    StreamConsumer,
    StreamEntry,
    StreamGroup,
    StreamID,
    StreamPending,
)
from rdbkit.errors import EncodeError, TruncatedError

VERSIONS = (6, 7, 8, 9, 10, 11, 12, 80)


PYENC = importlib.import_module("rdbkit._pyencoder")




def encode(entries, version, codec=C, **kwargs) -> tuple[bytes, list]:
    enc = codec.Encoder(version, **kwargs)
    parts = [enc.begin(aux={b"rdbkit-test": b"1"})]
    parts += [enc.write(e) for e in entries]
    parts.append(enc.finish())
    return b"".join(parts), enc.dropped


def decode_both(data: bytes) -> list:
    """Entries from the C decoder, checked equal to the Python decoder's."""
    c_entries = list(C.Decoder(io.BytesIO(data)))
    p_entries = list(P.Decoder(io.BytesIO(data)))
    assert [e.astuple() for e in c_entries] == [e.astuple() for e in p_entries]
    return c_entries


# --------------------------------------------------------------------------- expectations


def _canon_int(b: bytes) -> bool:
    """Canonical decimal text of an int64 (what goes into an intset)."""
    return re.fullmatch(rb"-?[1-9][0-9]*|0", b) is not None and -(2**63) <= int(b) < 2**63


def _small(items, n) -> bool:
    return len(items) <= n and all(len(x) <= 64 for x in items)


def expected_encoding(e: E, version: int, plain: bool) -> str:
    """docs/codec.md's version -> encoding table, written out independently."""
    level = 11 if version == 80 else version
    t, v = e.type, e.value
    if t == "string":
        return "string"
    if t == "module":
        return "module"
    if t == "stream":
        return "stream"
    if t == "list":
        if plain:
            return "linkedlist"
        if version == 6:
            return "ziplist" if _small(v, 512) else "linkedlist"
        return "quicklist2" if level >= 10 else "quicklist"
    if t == "set":
        if not plain and len(v) <= 512 and all(_canon_int(m) for m in v):
            return "intset"
        if not plain and level >= 11 and _small(list(v), 128):
            return "listpack"
        return "hashtable"
    if t == "zset":
        if not plain and _small(list(v), 128):
            return "listpack" if level >= 10 else "ziplist"
        return "skiplist"
    if t == "hash":
        items = [x for kv in v.items() for x in kv]
        packed = not plain and len(v) <= 512 and all(len(x) <= 64 for x in items)
        if e.field_expires and version in (12, 80):
            if version == 80:
                return "hashtable"
            return "listpack_ex" if packed else "hashtable"
        if packed:
            return "listpack" if level >= 10 else "ziplist"
        return "hashtable"
    raise AssertionError(t)


def expected_stream(s: Stream, version: int) -> Stream:
    """What a stream reads back as from a file of ``version`` (derived metadata)."""
    level = 11 if version == 80 else version
    if level == 9:
        groups = tuple(
            dataclasses.replace(g, entries_read=None, consumers=tuple(
                dataclasses.replace(c, active_time_ms=None) for c in g.consumers))
            for g in s.groups
        )
        return dataclasses.replace(s, first_id=None, max_deleted_id=None, entries_added=None,
                                   groups=groups)
    first = s.first_id or (s.entries[0].id if s.entries else StreamID(0, 0))
    groups = tuple(
        dataclasses.replace(
            g,
            entries_read=-1 if g.entries_read is None else g.entries_read,
            consumers=tuple(
                dataclasses.replace(
                    c,
                    active_time_ms=None if level < 11 else
                    (c.seen_time_ms if c.active_time_ms is None else c.active_time_ms))
                for c in g.consumers),
        )
        for g in s.groups
    )
    return dataclasses.replace(
        s, first_id=first, max_deleted_id=s.max_deleted_id or StreamID(0, 0),
        entries_added=s.length if s.entries_added is None else s.entries_added, groups=groups)


def expected_view(e: E, version: int) -> tuple:
    level = 11 if version == 80 else version
    value = expected_stream(e.value, version) if e.type == "stream" else e.value
    if e.type == "zset":
        value = {m: float(s) for m, s in value.items()}
    fe = e.field_expires if (e.field_expires and version in (12, 80)) else None
    return (e.db, e.key, e.type, value, e.expire_ms,
            e.idle if level >= 9 else None, e.freq if level >= 9 else None, fe)


def got_view(g) -> tuple:
    return (g.db, g.key, g.type, g.value, g.expire_ms, g.idle, g.freq, g.field_expires)


def check_roundtrip(entries: list[E], version: int, plain: bool = False, compress: bool = True):
    data, dropped = encode(entries, version, plain=plain, compress=compress, drop_unsupported=True)
    back = decode_both(data)
    level = 11 if version == 80 else version
    kept = [e for e in entries
            if not (e.type == "stream" and level < 9) and not (e.type == "module" and level < 8)]
    assert [got_view(g) for g in back] == [expected_view(e, version) for e in kept]
    assert [g.encoding for g in back] == [expected_encoding(e, version, plain) for e in kept]
    want_drops = {(e.key, "stream") for e in entries if e.type == "stream" and level < 9}
    want_drops |= {(e.key, "module value") for e in entries if e.type == "module" and level < 8}
    want_drops |= {(e.key, "hash field TTLs") for e in entries
                   if e.field_expires and version not in (12, 80)}
    assert set(dropped) == want_drops
    return data, back


# --------------------------------------------------------------------------- strategies

INTISH = [b"", b"0", b"-0", b"00", b"007", b"+5", b"-1", b" 1", b"1 ", b"1.5", b"1e3", b"12",
          b"127", b"128", b"-128", b"-129", b"4095", b"4096", b"-4096", b"-4097", b"32767",
          b"32768", b"-32768", b"-32769", b"8388607", b"8388608", b"-8388609", b"2147483647",
          b"2147483648", b"-2147483648", b"-2147483649", b"9223372036854775807",
          b"9223372036854775808", b"-9223372036854775808", b"-9223372036854775809",
          b"12345678901", b"-1234567890", b"99999999999999999999"]

element = st.one_of(
    st.sampled_from(INTISH),
    st.binary(max_size=70),
    st.binary(min_size=63, max_size=66),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: b"%d" % i),
)
big_element = st.one_of(
    st.tuples(st.binary(min_size=1, max_size=8), st.integers(1, 4000)).map(lambda t: t[0] * t[1]),
    st.integers(0, 2**32).map(lambda s: random.Random(s).randbytes(9000)),
)
any_element = st.one_of(element, element, element, big_element)
SIZES = [1, 2, 3, 127, 128, 129, 511, 512, 513]
scores = st.one_of(
    st.floats(allow_nan=False),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.0**53, 2.0**63, -(2.0**63), 1e300, math.inf,
                     -math.inf, 0.1, 5e-324]),
    st.integers(-(2**53), 2**53).map(float),
)


@st.composite
def members(draw, unique=True):
    """A boundary-sized run of members: ints, short, 64/65-byte or mixed."""
    n = draw(st.sampled_from(SIZES) | st.integers(1, 20))
    kind = draw(st.sampled_from(["int", "short", "edge", "mixed", "random"]))
    seed = draw(st.integers(0, 2**16))
    rng = random.Random(seed)
    if kind == "int":
        base = rng.choice([0, -5000, 2**31 - 3, -(2**63), 2**62])
        out = [b"%d" % (base + i) for i in range(n)]
    elif kind == "short":
        out = [b"m%d" % i for i in range(n)]
    elif kind == "edge":
        width = rng.choice([63, 64, 65])
        out = [(b"%d-" % i).ljust(width, b"x") for i in range(n)]
    elif kind == "mixed":
        out = [rng.choice([b"%d" % i, b"s%d" % i, b"%d" % -i]) + (b"" if i % 3 else b"") for i in range(n)]
        out = list(dict.fromkeys(out))
    else:
        out = [draw(element) for _ in range(min(n, 20))]
        if unique:
            out = list(dict.fromkeys(out))
        if not out:
            out = [b"x"]
    return out


@st.composite
def streams(draw):
    n = draw(st.integers(0, 250))
    rng = random.Random(draw(st.integers(0, 2**16)))
    ms, seq = rng.choice([(0, 1), (1_700_000_000_000, 0), (2**63, 5)])
    entries = []
    field_sets = [(b"name", b"value"), (b"a",), (b"x", b"y", b"z"), ()]
    for i in range(n):
        if rng.random() < 0.5:
            seq += rng.randint(1, 3)
        else:
            ms += rng.randint(1, 10**6)
            seq = rng.randint(0, 2**64 - 1) if rng.random() < 0.1 else 0
        names = rng.choice(field_sets)
        fields = tuple((f, rng.choice([b"%d" % rng.randint(-10**6, 10**6), b"v" * rng.randint(0, 80)]))
                       for f in names)
        entries.append(StreamEntry(StreamID(ms, seq), fields))
    last = entries[-1].id if entries else StreamID(5, 5)
    groups = []
    ids = [e.id for e in entries]
    for g in range(draw(st.integers(0, 2))):
        pel_ids = sorted(rng.sample(ids, min(len(ids), rng.randint(0, 5))))
        cons_names = [b"c%d" % i for i in range(rng.randint(0, 3))]
        owner = {}
        consumers = []
        for cname in cons_names:
            mine = tuple(p for p in pel_ids if rng.random() < 0.5 and p not in owner)
            for p in mine:
                owner[p] = cname
            consumers.append(StreamConsumer(cname, rng.randint(0, 2**40),
                                            rng.choice([None, rng.randint(0, 2**40)]), mine))
        pending = tuple(StreamPending(p, rng.randint(0, 2**40), rng.randint(0, 9), owner.get(p))
                        for p in pel_ids)
        groups.append(StreamGroup(b"g%d" % g, last, rng.choice([None, -1, 0, n]), pending,
                                  tuple(consumers)))
    return Stream(tuple(entries), n, last, draw(st.sampled_from([None, StreamID(0, 1)])),
                  None, draw(st.sampled_from([None, n + 3])), tuple(groups))


def _module_id(name: str, encver: int) -> int:
    mid = 0
    for ch in name:
        mid = (mid << 6) | MODULE_ID_CHARSET.index(ch)
    return (mid << 10) | encver


MODULE = ModuleValue(_module_id("rdbkittst", 3), "rdbkittst", 3,
                     b"\x02\x05\x05\x03hey\x04" + struct.pack("<d", 1.5) + b"\x00",
                     ((2, 5), (5, b"hey"), (4, 1.5)))


@st.composite
def values(draw):
    kind = draw(st.sampled_from(["string", "list", "set", "zset", "hash", "hash_ttl", "stream",
                                 "module"]))
    if kind == "string":
        return "string", draw(any_element), None
    if kind == "list":
        if draw(st.booleans()):
            return "list", draw(st.lists(any_element, min_size=1, max_size=40)), None
        return "list", draw(members(unique=False)), None
    if kind == "set":
        return "set", set(draw(members())), None
    if kind == "zset":
        ms = draw(members())
        sc = draw(st.lists(scores, min_size=len(ms), max_size=len(ms)))
        return "zset", dict(zip(ms, sc)), None
    if kind in ("hash", "hash_ttl"):
        ms = draw(members())
        vs = draw(st.lists(element | st.just(b"v" * 65), min_size=len(ms), max_size=len(ms)))
        h = dict(zip(ms, vs))
        fe = None
        if kind == "hash_ttl":
            fe = {f: draw(st.integers(1, 2**48 - 1)) for f in h if draw(st.booleans())} or None
        return "hash", h, fe
    if kind == "stream":
        return "stream", draw(streams()), None
    return "module", MODULE, None


@st.composite
def entry_lists(draw):
    n = draw(st.integers(1, 6))
    out = []
    for i in range(n):
        t, v, fe = draw(values())
        out.append(E(b"k%d:" % i + draw(st.binary(max_size=12)), t, v,
                     db=draw(st.sampled_from([0, 0, 1, 15, 300])),
                     expire_ms=draw(st.none() | st.integers(-(2**63), 2**63 - 1)),
                     idle=draw(st.none() | st.integers(0, 2**64 - 1)),
                     freq=draw(st.none() | st.integers(0, 255)),
                     field_expires=fe))
    return out


HSET = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("version", VERSIONS)
@HSET
@given(entries=entry_lists(), plain=st.booleans(), compress=st.booleans())
def test_roundtrip_both_decoders(version, entries, plain, compress):
    check_roundtrip(entries, version, plain, compress)


# --------------------------------------------------------------------------- deterministic cases


def threshold_entries() -> list[E]:
    out = []
    for n in (1, 127, 128, 129, 511, 512, 513, 5000):
        out.append(E(b"list:%d" % n, "list", [b"%d" % i for i in range(n)]))
        out.append(E(b"set:int:%d" % n, "set", {b"%d" % (i * 7919 - 3) for i in range(n)}))
        out.append(E(b"set:str:%d" % n, "set", {b"s%d" % i for i in range(n)}))
        out.append(E(b"zset:%d" % n, "zset", {b"m%d" % i: i / 4 for i in range(n)}))
        out.append(E(b"hash:%d" % n, "hash", {b"f%d" % i: b"%d" % i for i in range(n)}))
    for width in (64, 65):
        out.append(E(b"list:w%d" % width, "list", [b"a" * width]))
        out.append(E(b"set:w%d" % width, "set", {b"a" * width}))
        out.append(E(b"zset:w%d" % width, "zset", {b"a" * width: 1.0}))
        out.append(E(b"hashf:w%d" % width, "hash", {b"a" * width: b"v"}))
        out.append(E(b"hashv:w%d" % width, "hash", {b"f": b"a" * width}))
    out.append(E(b"big:list", "list", [b"x" * 20000, b"y", b"z" * 9000] + [b"q" * 100] * 300))
    out.append(E(b"str:int", "string", b"-2147483648", expire_ms=4_102_444_800_000))
    out.append(E(b"str:lzf", "string", b"abc" * 1000))
    return out


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("plain", [False, True])
def test_thresholds(version, plain):
    check_roundtrip(threshold_entries(), version, plain)


def test_lzf_compress_roundtrip():
    rng = random.Random(3)
    for data in [b"abcdefghij" * 300, b"a" * 100000, bytes(range(256)) * 40, b"x" * 21,
                 rng.randbytes(100) * 50, b"ab" * 3000 + rng.randbytes(100)]:
        packed = C.lzf_compress(data)
        assert packed is not None and len(packed) <= len(data) - 4
        assert C.lzf_decompress(packed, len(data)) == data
        assert P.lzf_decompress(packed, len(data)) == data
    assert C.lzf_compress(rng.randbytes(5000)) is None
    assert C.lzf_compress(b"abcd") is None


def test_errors_name_the_key_and_emit_nothing():
    enc = C.Encoder(10, max_string_len=100)
    head = enc.begin()
    bad = [
        E(b"k:wrongtype", "hash", [b"a"]),
        E(b"k:nan", "zset", {b"m": float("nan")}),
        E(b"k:score", "zset", {b"m": "1"}),
        E(b"k:str", "string", "text"),
        E(b"k:empty", "list", []),
        E(b"k:member", "set", {1, 2}),
        E(b"k:long", "string", b"v" * 101),
        E(b"k:fe", "string", b"v", field_expires={b"a": 1}),
        E(b"k:ttl", "hash", {b"a": b"b"}, field_expires={b"zz": 5}),
        E(b"k:stream", "stream", Stream((StreamEntry(StreamID(5, 0), ()), StreamEntry(StreamID(4, 0), ())),
                                        2, StreamID(5, 0))),
        E(b"k:db", "string", b"v", db=-1),
        E(b"k:freq", "string", b"v", freq=256),
    ]
    for e in bad:
        with pytest.raises(EncodeError) as info:
            enc.write(e)
        assert repr(e.key) in str(info.value)
    data = head + enc.write(E(b"ok", "string", b"v")) + enc.finish()
    assert [g.key for g in decode_both(data)] == [b"ok"]
    for v in (6, 8, 9, 11):
        enc = C.Encoder(v)
        enc.begin()
        with pytest.raises(EncodeError, match="hash field TTLs"):
            enc.write(E(b"h", "hash", {b"a": b"b"}, field_expires={b"a": 5}))
    with pytest.raises(EncodeError, match="function"):
        C.Encoder(9).begin(functions=[b"#!lua name=x\nredis.register_function('f', function() end)"])
    with pytest.raises(ValueError):
        C.Encoder(5)
    with pytest.raises(ValueError):
        C.Encoder(81)
    with pytest.raises(RuntimeError):
        C.Encoder(10).write(E(b"x", "string", b"v"))


def test_writer_and_dump_payload():
    out = io.BytesIO()
    with pytest.raises(EncodeError):
        with C.RdbWriter(out, version=12) as w:
            w.begin()
            w.write(E(b"good", "string", b"v"))
            w.write(E(b"bad", "zset", {b"m": float("nan")}))
    with pytest.raises(TruncatedError):     # no EOF after the error
        list(P.Decoder(io.BytesIO(out.getvalue())))
    chunks = []
    with C.RdbWriter(chunks.append, version=80) as w:
        w.begin(aux={"valkey-ver": "9.1.2"})
        w.resize_hint(3, 1, 1)
        w.write(E(b"good", "string", b"v", db=3, expire_ms=4_102_444_800_000))
    d = C.Decoder(io.BytesIO(b"".join(chunks)))
    assert [(e.db, e.key) for e in d] == [(3, b"good")]
    assert d.magic == "VALKEY" and d.resize_hints == {3: (1, 1)}
    for version in VERSIONS:
        for e in threshold_entries()[::7]:
            payload = C.dump_payload(e.type, e.value, version)
            parsed = C.parse_dump_payload(payload)
            assert parsed.value == e.value and parsed.version == version
            assert parsed == P.parse_dump_payload(payload)
            assert P.parse_dump_payload(PYENC.dump_payload(e.type, e.value, version)) == parsed


# --------------------------------------------------------------------------- C vs Python


def _quicklist_nodes(payload: bytes) -> list[int]:
    """Element counts of the nodes of an uncompressed list DUMP payload (types 14/18)."""
    t, pos = payload[0], 1

    def length():
        nonlocal pos
        b = payload[pos]
        if b < 0x40:
            pos += 1
            return b
        if b < 0x80:
            pos += 2
            return ((b & 0x3F) << 8) | payload[pos - 1]
        assert b == 0x80
        pos += 5
        return int.from_bytes(payload[pos - 4:pos], "big")

    counts = []
    for _ in range(length()):
        plain = t == 18 and length() == 1
        n = length()
        node = payload[pos:pos + n]
        pos += n
        counts.append(1 if plain else struct.unpack_from("<H", node, 4 if t == 18 else 8)[0])
    return counts


@pytest.mark.parametrize("version", VERSIONS)
@HSET
@given(entries=entry_lists(), plain=st.booleans())
def test_c_and_python_encoders_agree(version, entries, plain):
    c_data, c_dropped = encode(entries, version, C, plain=plain, drop_unsupported=True)
    p_data, p_dropped = encode(entries, version, PYENC, plain=plain, drop_unsupported=True)
    strip = lambda g: got_view(g) + (g.encoding,)
    assert [strip(g) for g in decode_both(c_data)] == [strip(g) for g in decode_both(p_data)]
    assert c_dropped == p_dropped
    for e in entries:
        if e.type == "list" and version >= 7 and not plain:
            c_nodes = _quicklist_nodes(C.dump_payload("list", e.value, version, compress=False))
            p_nodes = _quicklist_nodes(PYENC.dump_payload("list", e.value, version, compress=False))
            assert c_nodes == p_nodes


# --------------------------------------------------------------------------- real servers

LOADS = [("redis7", v) for v in (6, 7, 8, 9, 10)] + [("valkey9", 11), ("valkey9", 80), ("redis6", 9)]
FUTURE_MS = 4_102_444_800_000  # 2100-01-01


def server_entries(version: int) -> list[E]:
    level = 11 if version == 80 else version
    rng = random.Random(version)
    out = threshold_entries()
    for i in range(60):
        out.append(E(b"s:%d" % i, "string", rng.choice([b"%d" % rng.randint(-10**12, 10**12),
                                                        rng.randbytes(rng.randint(0, 300)),
                                                        b"ab" * rng.randint(0, 200)]),
                     db=rng.choice([0, 1, 7]), expire_ms=rng.choice([None, FUTURE_MS + i])))
    out.append(E(b"z:inf", "zset", {b"a": math.inf, b"b": -math.inf, b"c": -0.0, b"d": 1e300,
                                    b"e": 0.1, b"f": 2.0**60}))
    if level >= 9:
        entries = tuple(StreamEntry(StreamID(1_700_000_000_000 + i // 3, i % 3),
                                    ((b"name", b"n%d" % i), (b"v", b"%d" % i)) if i % 5 else ((b"x", b"y"),))
                        for i in range(400))
        out.append(E(b"stream", "stream", Stream(entries, 400, entries[-1].id)))
    if version in (12, 80):
        out.append(E(b"hfe", "hash", {b"a": b"1", b"b": b"2"}, field_expires={b"a": FUTURE_MS}))
    return out


def _view_of(e: E):
    value = e.value
    if e.type == "stream":
        return (e.type, (value.entries, value.length, value.last_id), e.expire_ms)
    return (e.type, value, e.expire_ms)


@pytest.mark.parametrize("server_name,version", LOADS, ids=[f"{n}-v{v}" for n, v in LOADS])
def test_real_server_loads_c_output(request, server_name, version):
    server = request.getfixturevalue(server_name)
    entries = server_entries(version)
    data, dropped = encode(entries, version)
    assert dropped == []
    backup = server.save()          # the fixture's current data, put back afterwards
    try:
        server.dump_path.write_bytes(data)
        with contextlib.closing(server.client()) as c:
            c.execute_command("DEBUG", "RELOAD", "NOSAVE")
        view = server_view(server)
        got = {}
        for (db, key), (kind, value, expire) in view.items():
            if kind == "stream":
                value = (value.entries, value.length, value.last_id)
            got[(db, key)] = (kind, value, expire)
        want = {(e.db, e.key): _view_of(e) for e in entries}
        tolerance = 1000 if server_name == "redis6" else 0
        problems = []
        for k, w in want.items():
            g = got.get(k)
            if g is None or g[:2] != w[:2]:
                problems.append(f"{k}: wrote {str(w)[:120]}, server has {str(g)[:120]}")
            elif (g[2] is None) != (w[2] is None) or (w[2] is not None and abs(g[2] - w[2]) > tolerance):
                problems.append(f"{k}: expiry {w[2]} vs {g[2]}")
        assert set(got) == set(want), set(got) ^ set(want)
        assert not problems, "\n".join(problems[:20])
        if version in (12, 80):
            with contextlib.closing(server.client()) as c:
                t = c.execute_command("HPEXPIRETIME", b"hfe", "FIELDS", 2, b"a", b"b")
            assert list(t) == [FUTURE_MS, -1]
    finally:
        shutil.copyfile(backup, server.dump_path)
        with contextlib.closing(server.client()) as c:
            c.execute_command("DEBUG", "RELOAD", "NOSAVE")
