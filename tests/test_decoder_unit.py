"""Decoder unit tests on crafted inputs: every encoding, limits, offsets, streaming.

Inputs are built byte by byte with ``rdbbuild`` so each expected offset can be
computed from the test itself. Every test runs for both twins (``codec``).
"""

from __future__ import annotations

import io
import itertools
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdbbuild import (
    header,
    int_string,
    intset,
    kv,
    length,
    listpack,
    lzf_string,
    rdb,
    stream_id,
    stream_node,
    string,
    ziplist,
    zipmap,
)

from rdbkit.codec.model import (
    ModuleAux,
    ModuleValue,
    SlotInfo,
    Stream,
    StreamConsumer,
    StreamEntry,
    StreamGroup,
    StreamID,
    StreamPending,
)
from rdbkit.errors import (
    ChecksumError,
    DecodeError,
    LimitExceededError,
    RdbkitError,
    TruncatedError,
    UnsupportedEncodingError,
    UnsupportedVersionError,
)


def decode(codec, data: bytes, **kw):
    """One-shot push decode: (entries, decoder)."""
    dec = codec.Decoder(**kw)
    dec.feed(data)
    entries = list(dec)
    dec.close()
    return entries, dec


def one(codec, body: bytes, version: int = 11, magic: str = "REDIS", **kw):
    entries, _ = decode(codec, rdb(body, version, magic), **kw)
    assert len(entries) == 1
    return entries[0]


def error_of(codec, data: bytes, **kw) -> RdbkitError:
    with pytest.raises(RdbkitError) as info:
        decode(codec, data, **kw)
    return info.value


# ----------------------------------------------------------------- module surface


def test_exports(codec):
    for name in (
        "DEFAULT_MAX_STRING_LEN",
        "DEFAULT_MAX_COLLECTION_LEN",
        "DEFAULT_MAX_BUFFER_SIZE",
        "Entry",
        "Decoder",
        "crc64",
        "lzf_decompress",
    ):
        assert hasattr(codec, name)
    assert codec.DEFAULT_MAX_STRING_LEN == 512 * 1024 * 1024
    assert codec.DEFAULT_MAX_COLLECTION_LEN == 2**32
    assert codec.DEFAULT_MAX_BUFFER_SIZE == 1024 * 1024 * 1024


def test_crc64_check_value_and_incremental(codec):
    assert codec.crc64(b"123456789") == 0xE9C6D914C4B8D9CA
    assert codec.crc64(b"") == 0
    assert codec.crc64(b"6789", codec.crc64(b"12345")) == 0xE9C6D914C4B8D9CA


def test_lzf_decompress(codec):
    assert codec.lzf_decompress(b"\x02abc\x80\x02", 9) == b"abcabcabc"  # overlapping back-reference
    assert codec.lzf_decompress(b"\x04hello\x20\x04", 8) == b"hellohel"
    assert codec.lzf_decompress(b"", 0) == b""
    for bad, ulen in (
        (b"\x02abc\x80\x02", 8),  # output overflow
        (b"\x02abc\x80\x02", 10),  # output short
        (b"\x02abc\x80\x05", 9),  # back-reference before start
        (b"\x05ab", 6),  # literal overruns input
        (b"\xe0", 9),  # missing length byte
    ):
        with pytest.raises(DecodeError) as info:
            codec.lzf_decompress(bad, ulen)
        assert info.value.offset == 0


def test_entry_api(codec):
    e = one(codec, kv(0, b"k", string(b"v")))
    assert e.astuple() == (0, b"k", "string", b"v", None, None, None, None, "string", 9, 5)
    assert e == one(codec, kv(0, b"k", string(b"v")))
    assert e != one(codec, kv(0, b"k", string(b"w")))
    r = repr(e)
    assert "b'k'" in r and "string" in r and "db=0" in r


def test_constructor_validation(codec):
    with pytest.raises(ValueError):
        codec.Decoder(max_string_len=10, max_buffer_size=5)
    codec.Decoder(max_string_len=5, max_buffer_size=5)


# ----------------------------------------------------------------- header / versions


@pytest.mark.parametrize("version", list(range(1, 15)))
def test_every_redis_version_is_accepted(codec, version):
    e = one(codec, kv(0, b"k", string(b"v")), version=version)
    assert e.value == b"v"


@pytest.mark.parametrize("version", [80, 81])
def test_valkey_versions(codec, version):
    entries, dec = decode(codec, rdb(kv(0, b"k", string(b"v")), version, "VALKEY"))
    assert dec.magic == "VALKEY" and dec.version == version and entries[0].value == b"v"


@pytest.mark.parametrize(
    "magic",
    [
        b"REDIS0000",
        b"REDIS0015",
        b"REDIS0079",
        b"REDIS0080",
        b"REDIS0099",
        b"VALKEY079",
        b"VALKEY012",
        b"VALKEY082",
    ],
)
def test_unsupported_versions(codec, magic):
    err = error_of(codec, magic + b"\xff" + b"\0" * 8)
    assert type(err) is UnsupportedVersionError and err.offset == 0
    if magic == b"REDIS0099":
        assert "unsupported RDB version 99" in str(err)


@pytest.mark.parametrize(
    "data", [b"RADIS0011\xff", b"REDIS00x1\xff", b"hello world", b"VALKEYabc\xff"]
)
def test_bad_magic(codec, data):
    err = error_of(codec, data)
    assert type(err) is DecodeError and err.offset == 0 and "bad magic" in str(err)


@pytest.mark.parametrize("data", [b"", b"REDIS", b"REDIS001"])
def test_short_header_is_truncated_at_zero(codec, data):
    err = error_of(codec, data)
    assert type(err) is TruncatedError and err.offset == 0


# ----------------------------------------------------------------- strings


@pytest.mark.parametrize(
    "enc, value",
    [
        (string(b""), b""),
        (string(b"x" * 63), b"x" * 63),
        (string(b"y" * 64), b"y" * 64),  # 14-bit length
        (string(b"z" * 16384), b"z" * 16384),  # 32-bit length
        (b"\x81" + struct.pack(">Q", 3) + b"abc", b"abc"),  # 64-bit length form, non-minimal
        (b"\x80" + struct.pack(">I", 2) + b"ab", b"ab"),  # non-minimal 32-bit
        (int_string(-128), b"-128"),
        (int_string(127), b"127"),
        (int_string(-32768), b"-32768"),
        (int_string(2**31 - 1), b"2147483647"),
        (int_string(-(2**31)), b"-2147483648"),
        (lzf_string(b"a" * 100), b"a" * 100),
        (b"\xc3" + length(6) + length(9) + b"\x02abc\x80\x02", b"abcabcabc"),
    ],
)
def test_string_encodings(codec, enc, value):
    e = one(codec, kv(0, b"key", enc))
    assert e.value == value and e.type == "string" and e.encoding == "string"


def test_int_and_lzf_keys(codec):
    e = one(codec, bytes([0]) + int_string(12345) + string(b"v"))
    assert e.key == b"12345"
    e = one(codec, bytes([0]) + lzf_string(b"k" * 40) + string(b"v"))
    assert e.key == b"k" * 40


def test_bad_string_encodings(codec):
    body = kv(0, b"k", b"\xc4")
    err = error_of(codec, rdb(body))
    assert type(err) is DecodeError and err.offset == 9 + 3
    err = error_of(codec, rdb(kv(0, b"k", b"\x82")))  # invalid 10xxxxxx length byte
    assert type(err) is DecodeError and err.offset == 12
    # corrupt LZF inside a string value: offset = the string's first byte
    err = error_of(codec, rdb(kv(0, b"k", b"\xc3" + length(6) + length(9) + b"\x02abc\x80\x09")))
    assert type(err) is DecodeError and err.offset == 12 and "LZF" in str(err)


# ----------------------------------------------------------------- every value type


def test_plain_collections(codec):
    e = one(codec, kv(1, b"l", length(3) + string(b"a") + int_string(7) + string(b"c")))
    assert (e.type, e.encoding, e.value) == ("list", "linkedlist", [b"a", b"7", b"c"])
    e = one(codec, kv(2, b"s", length(2) + string(b"a") + string(b"b")))
    assert (e.type, e.encoding, e.value) == ("set", "hashtable", {b"a", b"b"})
    e = one(
        codec, kv(4, b"h", length(2) + string(b"f") + string(b"v") + string(b"g") + int_string(5))
    )
    assert (e.type, e.encoding, e.value) == ("hash", "hashtable", {b"f": b"v", b"g": b"5"})


def test_zset_string_scores(codec):
    body = kv(
        3,
        b"z",
        length(6)
        + string(b"a")
        + b"\x031.5"
        + string(b"b")
        + b"\xfd"
        + string(b"c")
        + b"\xfe"
        + string(b"d")
        + b"\xff"
        + string(b"e")
        + b"\x05-2e+3"
        + string(b"f")
        + b"\x03inf",
    )
    e = one(codec, body)
    assert (e.type, e.encoding) == ("zset", "skiplist")
    v = e.value
    assert v[b"a"] == 1.5 and math.isnan(v[b"b"]) and v[b"c"] == math.inf and v[b"d"] == -math.inf
    assert v[b"e"] == -2000.0 and v[b"f"] == math.inf


@pytest.mark.parametrize("text", [b" 1", b"1_0", b"0x10", b"", b"1.5x", b"\xff\xfe"])
def test_zset_bad_score_text(codec, text):
    body = kv(3, b"z", length(1) + string(b"a") + bytes([len(text)]) + text)
    err = error_of(codec, rdb(body))
    assert type(err) is DecodeError and err.offset == 9 + 3 + 1 + 2


def test_zset2_binary_scores(codec):
    body = kv(
        5,
        b"z",
        length(2)
        + string(b"a")
        + struct.pack("<d", 2.5)
        + string(b"b")
        + struct.pack("<d", -1e300),
    )
    e = one(codec, body, version=8)
    assert (e.type, e.encoding, e.value) == ("zset", "skiplist", {b"a": 2.5, b"b": -1e300})


def test_zipmap(codec):
    pairs = [(b"a", b"1"), (b"key2", b"x" * 300)]
    e = one(codec, kv(9, b"zm", string(zipmap(pairs, free=2))), version=2)
    assert (e.type, e.encoding, e.value) == ("hash", "zipmap", dict(pairs))
    e = one(codec, kv(9, b"zm", lzf_string(zipmap(pairs))), version=2)
    assert e.value == dict(pairs)


def test_ziplist_types(codec):
    ints = [0, 12, 13, -1, 127, -128, 300, -300, 2**20, -(2**20), 2**30, -(2**30), 2**62, -(2**63)]
    items = [b"a", b"b" * 70, b"c" * 20000, *ints]
    e = one(codec, kv(10, b"l", string(ziplist(items))), version=6)
    assert (e.type, e.encoding) == ("list", "ziplist")
    assert e.value == [b"a", b"b" * 70, b"c" * 20000, *[str(i).encode() for i in ints]]
    e = one(codec, kv(12, b"z", string(ziplist([b"m", 5, b"n", b"2.5", b"o", b"-inf"]))), version=6)
    assert (e.type, e.encoding, e.value) == (
        "zset",
        "ziplist",
        {b"m": 5.0, b"n": 2.5, b"o": -math.inf},
    )
    e = one(codec, kv(13, b"h", lzf_string(ziplist([b"f", b"v", 1, 2]))), version=6)
    assert (e.type, e.encoding, e.value) == ("hash", "ziplist", {b"f": b"v", b"1": b"2"})


@pytest.mark.parametrize(
    "width, values", [(2, [-5, 1, 300]), (4, [-70000, 0, 70000]), (8, [-(2**40), 2**62])]
)
def test_intset(codec, width, values):
    e = one(codec, kv(11, b"s", string(intset(values, width))))
    assert (e.type, e.encoding, e.value) == ("set", "intset", {str(v).encode() for v in values})


def test_quicklist_v1(codec):
    nodes = [ziplist([b"a", 1]), ziplist([b"b"])]
    body = kv(14, b"q", length(2) + string(nodes[0]) + lzf_string(nodes[1]))
    e = one(codec, body, version=7)
    assert (e.type, e.encoding, e.value) == ("list", "quicklist", [b"a", b"1", b"b"])


def test_quicklist_v2_plain_and_packed(codec):
    body = kv(
        18,
        b"q",
        length(3)
        + length(2)
        + string(listpack([b"a", 5, -4000]))
        + length(1)
        + string(b"P" * 100)
        + length(2)
        + lzf_string(listpack([b"z"])),
    )
    e = one(codec, body)
    assert (e.type, e.encoding, e.value) == (
        "list",
        "quicklist2",
        [b"a", b"5", b"-4000", b"P" * 100, b"z"],
    )


def test_listpack_types(codec):
    ints = [0, 127, 128, -1, 4095, -4096, 4096, 2**15, -(2**15) - 1, 2**23, 2**31, -(2**63)]
    strs = [b"", b"s" * 63, b"t" * 64, b"u" * 4095, b"v" * 4096]
    e = one(codec, kv(20, b"s", string(listpack(ints + strs))))
    assert (e.type, e.encoding) == ("set", "listpack")
    assert e.value == {str(i).encode() for i in ints} | set(strs)
    e = one(codec, kv(16, b"h", string(listpack([b"f", 1, 2, b"v"]))))
    assert (e.type, e.encoding, e.value) == ("hash", "listpack", {b"f": b"1", b"2": b"v"})
    e = one(codec, kv(17, b"z", string(listpack([b"a", 1, b"b", b"1.25", b"c", b"inf"]))))
    assert (e.type, e.encoding, e.value) == (
        "zset",
        "listpack",
        {b"a": 1.0, b"b": 1.25, b"c": math.inf},
    )


def _module_body() -> bytes:
    return (
        length(2)
        + length(42)
        + length(1)
        + b"\x81"
        + struct.pack(">Q", 2**64 - 1)
        + length(3)
        + struct.pack("<f", 1.5)
        + length(4)
        + struct.pack("<d", -2.25)
        + length(5)
        + string(b"blob")
        + length(0)
    )


def test_module_value_keeps_raw_bytes(codec):
    module_id = 0x1234_5678_9ABC_DEF0
    body = kv(7, b"m", b"\x81" + struct.pack(">Q", module_id) + _module_body())
    e = one(codec, body, version=8)
    assert (e.type, e.encoding) == ("module", "module")
    v = e.value
    assert isinstance(v, ModuleValue)
    assert v.module_id == module_id and v.raw == _module_body()
    assert v.items == ((2, 42), (1, 2**64 - 1), (3, 1.5), (4, -2.25), (5, b"blob"))
    assert v.encver == module_id & 1023 and len(v.name) == 9


def test_module_errors(codec):
    err = error_of(codec, rdb(kv(7, b"m", length(5) + length(9))))
    assert type(err) is DecodeError and err.offset == 9 + 3 + 1
    data = rdb(kv(7, b"m", length(5) + length(2) + length(1)))[:-9]  # no EOF opcode, file ends
    assert type(error_of(codec, data)) is TruncatedError


def test_hash_field_expiry_types(codec):
    # 24: minExpire + (ttl, field, value); expireAt = ttl + min - 1, 0 = none
    body = kv(
        24,
        b"h",
        struct.pack("<q", 1000)
        + length(2)
        + length(1)
        + string(b"a")
        + string(b"1")
        + length(0)
        + string(b"b")
        + string(b"2"),
    )
    e = one(codec, body, version=12)
    assert (e.type, e.encoding, e.value, e.field_expires) == (
        "hash",
        "hashtable",
        {b"a": b"1", b"b": b"2"},
        {b"a": 1000},
    )
    # 25: minExpire + listpack triplets, absolute ms
    body = kv(
        25, b"h", struct.pack("<q", 5) + string(listpack([b"a", b"1", 0, b"b", 2, 1700000000000]))
    )
    e = one(codec, body, version=12)
    assert (e.encoding, e.value, e.field_expires) == (
        "listpack_ex",
        {b"a": b"1", b"b": b"2"},
        {b"b": 1700000000000},
    )
    # Redis 7.4-RC 22: (absolute ttl, field, value), no minExpire
    body = kv(22, b"h", length(1) + length(77) + string(b"a") + string(b"1"))
    e = one(codec, body, version=12)
    assert (e.encoding, e.value, e.field_expires) == ("hashtable", {b"a": b"1"}, {b"a": 77})
    # Redis 7.4-RC 23: triplet listpack without prefix
    body = kv(23, b"h", string(listpack([b"a", b"1", 0])))
    e = one(codec, body, version=12)
    assert (e.encoding, e.value, e.field_expires) == ("listpack_ex", {b"a": b"1"}, None)
    # Valkey 22 = HASH_2: (field, value, int64 ms; -1 = none)
    body = kv(
        22,
        b"h",
        length(2)
        + string(b"a")
        + string(b"1")
        + struct.pack("<q", -1)
        + string(b"b")
        + string(b"2")
        + struct.pack("<q", 99),
    )
    e = one(codec, body, version=80, magic="VALKEY")
    assert (e.encoding, e.value, e.field_expires) == (
        "hashtable",
        {b"a": b"1", b"b": b"2"},
        {b"b": 99},
    )


def test_hash_field_expiry_bounds(codec):
    ttl_field_offset = 9 + 3 + 8 + 1
    body = kv(
        24, b"h", struct.pack("<q", 2**48) + length(1) + length(5) + string(b"a") + string(b"1")
    )
    err = error_of(codec, rdb(body, 12))
    assert type(err) is DecodeError and err.offset == ttl_field_offset
    body = kv(25, b"h", struct.pack("<q", 0) + string(listpack([b"a", b"1", b"x"])))
    err = error_of(codec, rdb(body, 12))
    assert type(err) is DecodeError and err.offset == 9 + 3 + 8


def _stream_body(type_byte: int) -> bytes:
    node = stream_node(
        (1000, 0),
        [b"temp", b"hum"],
        [
            (1000, 0, [(b"temp", b"20"), (b"hum", b"1")], False),
            (1000, 1, [(b"temp", b"21"), (b"hum", b"2")], True),  # tombstone
            (1002, 0, [(b"other", b"x")], False),  # own field list, seq delta negative
        ],
    )
    body = length(1) + node
    body += length(2) + length(1002) + length(0)  # length, last id
    if type_byte != 15:
        body += length(1000) + length(0) + length(1000) + length(1) + length(3)
    body += length(1)  # one group
    body += string(b"g") + length(1000) + length(0)
    if type_byte != 15:
        body += length(1)  # entries_read
    body += length(2)  # PEL
    body += stream_id(1000, 0) + struct.pack("<q", 1700000000000) + length(3)
    body += stream_id(1002, 0) + struct.pack("<q", 1700000000001) + length(1)
    body += length(1)  # consumers
    body += string(b"alice") + struct.pack("<q", 1700000000002)
    if type_byte in (21, 26):
        body += struct.pack("<q", 1700000000003)
    body += length(1) + stream_id(1000, 0)
    if type_byte == 26:
        body += length(100) + length(100) + length(1) + string(b"p1") + length(1) + string(b"i1")
        body += length(1000) + length(0) + length(1) + length(0)
    return body


@pytest.mark.parametrize("type_byte", [15, 19, 21, 26])
def test_streams(codec, type_byte):
    e = one(codec, kv(type_byte, b"st", _stream_body(type_byte)), version=13)
    assert (e.type, e.encoding) == ("stream", "stream")
    v2 = type_byte != 15
    expected = Stream(
        entries=(
            StreamEntry(StreamID(1000, 0), ((b"temp", b"20"), (b"hum", b"1"))),
            StreamEntry(StreamID(1002, 0), ((b"other", b"x"),)),
        ),
        length=2,
        last_id=StreamID(1002, 0),
        first_id=StreamID(1000, 0) if v2 else None,
        max_deleted_id=StreamID(1000, 1) if v2 else None,
        entries_added=3 if v2 else None,
        groups=(
            StreamGroup(
                b"g",
                StreamID(1000, 0),
                1 if v2 else None,
                (
                    StreamPending(StreamID(1000, 0), 1700000000000, 3, b"alice"),
                    StreamPending(StreamID(1002, 0), 1700000000001, 1, None),
                ),
                (
                    StreamConsumer(
                        b"alice",
                        1700000000002,
                        1700000000003 if type_byte in (21, 26) else None,
                        (StreamID(1000, 0),),
                    ),
                ),
            ),
        ),
    )
    assert e.value == expected


def test_stream_corruption_reports_listpack_offset(codec):
    good = stream_node((1, 0), [b"f"], [(1, 0, [(b"f", b"v")], False)])
    # flip the master count (first listpack element, value 1) to 5
    lp_start = len(string(stream_id(1, 0)))
    lp_payload = lp_start + 1 + 6  # length byte + listpack header
    bad = bytearray(good)
    assert bad[lp_payload] == 1
    bad[lp_payload] = 5
    bad[lp_payload + 1] = 1  # keep the backlen valid
    body = kv(
        21,
        b"st",
        length(1) + bytes(bad) + length(1) + length(1) + length(0) + b"\0" * 5 + length(0),
    )
    err = error_of(codec, rdb(body))
    assert type(err) is DecodeError and err.offset == 9 + 4 + 1 + lp_start
    # master ID that is not 16 bytes
    body = kv(21, b"st", length(1) + string(b"short") + string(listpack([0])))
    err = error_of(codec, rdb(body))
    assert type(err) is DecodeError and err.offset == 9 + 4 + 1


def test_empty_stream_is_valid(codec):
    body = kv(19, b"st", length(0) + length(0) * 3 + length(0) * 5 + length(0))
    e = one(codec, body, version=10)
    assert e.value == Stream((), 0, StreamID(0, 0), StreamID(0, 0), StreamID(0, 0), 0, ())


# ----------------------------------------------------------------- opcodes


def test_file_level_opcodes(codec):
    module_id = 0x0123_4567_89AB_CDEF
    body = (
        b"\xfa"
        + string(b"redis-ver")
        + string(b"7.4.0")
        + b"\xfa"
        + string(b"ctime")
        + int_string(1700000000)
        + b"\xf7"
        + b"\x81"
        + struct.pack(">Q", module_id)
        + length(2)
        + length(1)
        + _module_body()
        + b"\xf5"
        + string(b"#!lua name=lib\nreturn 1")
        + b"\xf6"
        + string(b"lib0")
        + string(b"LUA")
        + length(1)
        + string(b"desc")
        + string(b"code0")
        + b"\xfe"
        + length(3)
        + b"\xfb"
        + length(2)
        + length(1)
        + b"\xf4"
        + length(100)
        + length(2)
        + length(1)
        + b"\xfc"
        + struct.pack("<q", 1700000000123)
        + kv(0, b"a", string(b"1"))
        + b"\xfd"
        + struct.pack("<i", 1700000000)
        + kv(0, b"b", string(b"2"))
        + b"\xf8"
        + length(3600)
        + kv(0, b"c", string(b"3"))
        + b"\xf9"
        + b"\xc8"
        + kv(0, b"d", string(b"4"))
        + b"\xf3"
        + length(1)
        + b"ABCD"
        + length(2)
        + length(7)
        + length(0)
        + kv(0, b"e", string(b"5"))
        + b"\xfe"
        + length(0)
        + kv(0, b"f", string(b"6"))
    )
    entries, dec = decode(codec, rdb(body, 13))
    assert dec.aux == {b"redis-ver": b"7.4.0", b"ctime": b"1700000000"}
    assert dec.module_aux == [
        ModuleAux(
            module_id,
            dec.module_aux[0].name,
            module_id & 1023,
            1,
            _module_body(),
            dec.module_aux[0].items,
        )
    ]
    assert dec.module_aux[0].items[0] == (2, 42)
    assert dec.functions == [b"#!lua name=lib\nreturn 1", b"code0"]
    assert dec.resize_hints == {3: (2, 1)}
    assert dec.slot_info == [SlotInfo(100, 2, 1)]
    got = [(e.db, e.key, e.expire_ms, e.idle, e.freq) for e in entries]
    assert got == [
        (3, b"a", 1700000000123, None, None),
        (3, b"b", 1700000000000, None, None),
        (3, b"c", None, 3600, None),
        (3, b"d", None, None, 200),
        (3, b"e", None, None, None),
        (0, b"f", None, None, None),
    ]
    assert dec.done and dec.checksum_status == "ok"


def test_prefix_opcodes_reset_per_key(codec):
    body = (
        b"\xfc"
        + struct.pack("<q", 5)
        + b"\xf9\x07"
        + kv(0, b"a", string(b"1"))
        + kv(0, b"b", string(b"2"))
    )
    entries, _ = decode(codec, rdb(body))
    assert [(e.expire_ms, e.freq) for e in entries] == [(5, 7), (None, None)]
    assert entries[0].offset == 9 and entries[0].size == 9 + 2 + 5


def test_aux_between_prefix_and_key_belongs_to_the_entry(codec):
    body = (
        b"\xfc"
        + struct.pack("<q", 5)
        + b"\xfa"
        + string(b"k")
        + string(b"v")
        + b"\xfe\x02"
        + kv(0, b"a", string(b"1"))
    )
    entries, dec = decode(codec, rdb(body))
    assert [(e.db, e.key, e.expire_ms, e.offset) for e in entries] == [(2, b"a", 5, 9)]
    assert entries[0].size == len(body)
    assert dec.aux == {b"k": b"v"}
    err = error_of(codec, rdb(b"\xfc" + struct.pack("<q", 5)))
    assert type(err) is DecodeError and err.offset == 9 + 9


@pytest.mark.parametrize(
    "magic, version, byte, cls",
    [
        ("REDIS", 14, 27, UnsupportedEncodingError),
        ("REDIS", 14, 28, UnsupportedEncodingError),
        ("REDIS", 14, 33, UnsupportedEncodingError),
        ("REDIS", 8, 6, UnsupportedEncodingError),
        ("REDIS", 12, 107, UnsupportedEncodingError),
        ("VALKEY", 81, 23, UnsupportedEncodingError),
        ("VALKEY", 81, 242, UnsupportedEncodingError),
        ("VALKEY", 80, 243, UnsupportedEncodingError),
        ("REDIS", 11, 8, DecodeError),
        ("REDIS", 11, 34, DecodeError),
        ("REDIS", 11, 242, DecodeError),
        ("VALKEY", 80, 24, DecodeError),
        ("VALKEY", 80, 26, DecodeError),
    ],
)
def test_unsupported_and_unknown_bytes(codec, magic, version, byte, cls):
    body = kv(0, b"ok", string(b"1")) + bytes([byte]) + string(b"k") + b"\0" * 20
    err = error_of(codec, rdb(body, version, magic))
    assert type(err) is cls and err.offset == 9 + 6
    assert str(byte) in str(err)


def test_module_aux_bad_when_opcode(codec):
    body = b"\xf7" + length(1) + length(3)
    err = error_of(codec, rdb(body))
    assert type(err) is DecodeError and err.offset == 11


# ----------------------------------------------------------------- semantic errors


@pytest.mark.parametrize(
    "body, offset",
    [
        (kv(1, b"k", length(0)), 12),  # empty list
        (kv(4, b"k", length(0)), 12),  # empty hash
        (kv(18, b"k", length(0)), 12),  # empty quicklist
        (kv(18, b"k", length(1) + length(3) + string(b"x")), 13),  # container 3
        (kv(18, b"k", length(1) + length(2) + string(listpack([]))), 14),  # empty node
        (kv(14, b"k", length(1) + string(ziplist([]))), 13),  # empty v1 node
        (kv(11, b"k", string(intset([3, 1], 2))), 12),  # unsorted intset
        (kv(11, b"k", string(intset([1, 1], 2))), 12),  # duplicate intset member
        (kv(11, b"k", string(b"\x03\0\0\0\x01\0\0\0abc")), 12),  # bad intset width
        (kv(11, b"k", string(intset([], 4))), 12),  # empty intset
        (kv(16, b"k", string(listpack([b"a", b"b", b"c"]))), 12),  # odd hash listpack
        (kv(13, b"k", string(ziplist([b"a"]))), 12),  # odd hash ziplist
        (kv(16, b"k", string(listpack([b"a", b"b"])[:-1] + b"\x00")), 12),  # no terminator
        (kv(16, b"k", string(listpack([b"a", b"b"]) + b"\xff")), 12),  # header bytes != length
        (kv(20, b"k", string(b"\x09\0\0\0\x05\0\x01\x01\xff")), 12),  # count mismatch
        (kv(10, b"k", string(ziplist([b"a"])[:-1] + b"\x00")), 12),
        (kv(9, b"k", string(b"\x02\x01a\x01\x00b\xff")), 12),  # zipmap count mismatch
        (
            kv(20, b"k", string(listpack([b"a"])[:-2] + b"\x05" + listpack([b"a"])[-1:])),
            12,
        ),  # bad backlen
    ],
)
def test_semantic_errors(codec, body, offset):
    err = error_of(codec, rdb(body))
    assert type(err) is DecodeError and err.offset == offset, str(err)
    assert "b'k'" in str(err)


def test_duplicates_last_wins(codec):
    e = one(
        codec, kv(4, b"h", length(2) + string(b"f") + string(b"1") + string(b"f") + string(b"2"))
    )
    assert e.value == {b"f": b"2"}


# ----------------------------------------------------------------- limits


def test_max_string_len(codec):
    body = kv(0, b"k", string(b"x" * 100))
    assert one(codec, body, max_string_len=100).value == b"x" * 100
    err = error_of(codec, rdb(body), max_string_len=99)
    assert type(err) is LimitExceededError and err.offset == 12 and "b'k'" in str(err)
    # a claim far beyond the data is refused before any read or allocation
    err = error_of(codec, rdb(kv(0, b"k", b"\x81" + struct.pack(">Q", 2**62))))
    assert type(err) is LimitExceededError and err.offset == 12


def test_max_string_len_lzf(codec):
    err = error_of(codec, rdb(kv(0, b"k", lzf_string(b"a" * 50))), max_string_len=49)
    assert type(err) is LimitExceededError and err.offset == 12
    # ulen above 88 x clen cannot be LZF output
    err = error_of(codec, rdb(kv(0, b"k", b"\xc3" + length(1) + length(89) + b"\x00")))
    assert type(err) is LimitExceededError and err.offset == 12


def test_max_collection_len(codec):
    body = kv(1, b"k", length(3) + string(b"a") * 3)
    assert len(one(codec, body, max_collection_len=3).value) == 3
    err = error_of(codec, rdb(body), max_collection_len=2)
    assert type(err) is LimitExceededError and err.offset == 12
    err = error_of(codec, rdb(kv(2, b"k", b"\x81" + struct.pack(">Q", 2**40))))
    assert type(err) is LimitExceededError and err.offset == 12


def test_max_buffer_size(codec):
    body = kv(1, b"k", length(20) + string(b"abcdefghij") * 20)
    assert len(one(codec, body, max_buffer_size=1000, max_string_len=100).value) == 20
    dec = codec.Decoder(max_buffer_size=100, max_string_len=50)
    dec.feed(rdb(body)[:150])
    with pytest.raises(LimitExceededError) as info:
        list(dec)
    assert info.value.offset == 9


# ----------------------------------------------------------------- checksum


def test_checksum_states(codec):
    body = kv(0, b"k", string(b"v"))
    _, dec = decode(codec, rdb(body))
    assert dec.checksum_status == "ok" and dec.checksum == struct.unpack("<Q", rdb(body)[-8:])[0]
    _, dec = decode(codec, rdb(body, checksum=0))
    assert (dec.checksum_status, dec.checksum) == ("disabled", 0)
    _, dec = decode(codec, rdb(body, checksum=12345), verify_checksum=False)
    assert (dec.checksum_status, dec.checksum) == ("unchecked", 12345)
    _, dec = decode(codec, rdb(body, version=4))
    assert (dec.checksum_status, dec.checksum) == ("absent", None)
    data = rdb(body, checksum=12345)
    err = error_of(codec, data)
    assert type(err) is ChecksumError and err.offset == len(data) - 8
    assert "0x0000000000003039" in str(err)


def test_checksum_status_none_before_eof(codec):
    dec = codec.Decoder()
    dec.feed(rdb(kv(0, b"k", string(b"v")))[:-3])
    list(dec)
    assert dec.checksum_status is None and dec.checksum is None and not dec.done


# ----------------------------------------------------------------- streaming


def _mixed_file() -> bytes:
    body = (
        b"\xfa"
        + string(b"redis-ver")
        + string(b"7.2.0")
        + b"\xfe\x00\xfb\x05\x00"
        + kv(0, b"str", lzf_string(b"hello" * 30))
        + b"\xfc"
        + struct.pack("<q", 1700000000000)
        + kv(18, b"list", length(1) + length(2) + string(listpack([b"a", 1, b"b" * 300])))
        + kv(16, b"hash", string(listpack([b"f", b"v"])))
        + kv(11, b"set", string(intset([1, 2, 3], 2)))
        + kv(21, b"stream", _stream_body(21))
        + kv(2, b"bigset", length(200) + b"".join(string(b"m%d" % i) for i in range(200)))
    )
    return rdb(body)


def test_tell_and_offsets(codec):
    data = _mixed_file()
    dec = codec.Decoder()
    assert dec.tell() == 0
    dec.feed(data)
    prev_end = None
    for e in dec:
        if prev_end is not None:
            assert e.offset == prev_end
        prev_end = e.offset + e.size
        assert dec.tell() == prev_end
    assert dec.tell() == len(data)
    dec.close()


def test_truncation_in_push_mode(codec):
    data = _mixed_file()
    full, _ = decode(codec, data)
    for cut in (0, 5, 9, 20, len(data) // 2, len(data) - 9, len(data) - 1):
        dec = codec.Decoder()
        dec.feed(data[:cut])
        got = list(dec)
        assert [e.astuple() for e in got] == [e.astuple() for e in full[: len(got)]]
        assert dec.tell() <= cut
        with pytest.raises(TruncatedError) as info:
            dec.close()
        assert dec.tell() <= info.value.offset <= cut
        dec.close()  # second close is a no-op


def test_truncated_string_payload_offset(codec):
    data = rdb(kv(0, b"key", string(b"x" * 40)))
    cut = data[: 9 + 1 + 4 + 1 + 10]
    err = error_of(codec, cut)
    assert type(err) is TruncatedError and err.offset == 9 + 1 + 4 + 1  # the payload's first byte
    err = error_of(codec, data[: 9 + 1 + 4])  # cut before the value's length byte
    assert type(err) is TruncatedError and err.offset == 9 + 1 + 4


def test_trailing_bytes_and_feed_after_eof(codec):
    data = rdb(kv(0, b"k", string(b"v")))
    dec = codec.Decoder()
    dec.feed(data + b"junk")
    assert len(list(dec)) == 1 and dec.done
    dec.feed(b"more")
    assert dec.trailing_bytes == 8
    dec.close()
    with pytest.raises(RuntimeError):
        dec.feed(b"x")


def test_pull_mode_file_and_path(codec, tmp_path):
    data = _mixed_file()
    full, _ = decode(codec, data)
    for read_size in (1, 7, 1 << 20):
        dec = codec.Decoder(io.BytesIO(data), read_size=read_size)
        assert [e.astuple() for e in dec] == [e.astuple() for e in full]
        assert dec.done and dec.checksum_status == "ok"
    path = tmp_path / "dump.rdb"
    path.write_bytes(data)
    with codec.Decoder(str(path)) as dec:
        assert [e.astuple() for e in dec] == [e.astuple() for e in full]
    assert [e.key for e in codec.Decoder(path)] == [e.key for e in full]
    with pytest.raises(RuntimeError):
        codec.Decoder(io.BytesIO(data)).feed(b"x")


def test_pull_mode_truncation_raises_at_once(codec):
    data = _mixed_file()
    cut = data[: len(data) - 20]
    dec = codec.Decoder(io.BytesIO(cut), read_size=16)
    with pytest.raises(TruncatedError):
        for _ in dec:
            pass


def test_values_false(codec):
    data = _mixed_file()
    full, dec_full = decode(codec, data)
    fast, dec_fast = decode(codec, data, values=False)
    assert len(full) == len(fast)
    for a, b in zip(full, fast):
        assert b.value is None and b.field_expires is None
        assert (a.db, a.key, a.type, a.encoding, a.expire_ms, a.offset, a.size) == (
            b.db,
            b.key,
            b.type,
            b.encoding,
            b.expire_ms,
            b.offset,
            b.size,
        )
    assert dec_full.aux == dec_fast.aux
    # corrupt containers are still found
    err = error_of(codec, rdb(kv(11, b"k", string(intset([3, 1], 2)))), values=False)
    assert type(err) is DecodeError and err.offset == 12


def test_every_split_point(codec):
    data = _mixed_file()
    full = [e.astuple() for e in decode(codec, data)[0]]
    for split in range(len(data) + 1):
        dec = codec.Decoder()
        dec.feed(data[:split])
        got = [e.astuple() for e in dec]
        dec.feed(data[split:])
        got += [e.astuple() for e in dec]
        dec.close()
        assert got == full, split


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=40))
def test_random_chunkings(codec, cuts):
    data = _mixed_file()
    full = [e.astuple() for e in decode(codec, data)[0]]
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    dec = codec.Decoder()
    got = []
    for a, b in itertools.pairwise(points):
        dec.feed(data[a:b])
        got += [e.astuple() for e in dec]
    dec.close()
    assert got == full
    assert dec.done and dec.tell() == len(data)


def test_error_is_sticky_and_state_unchanged(codec):
    body = kv(0, b"a", string(b"1")) + kv(11, b"k", string(intset([3, 1], 2)))
    dec = codec.Decoder()
    dec.feed(rdb(body))
    assert next(dec).key == b"a"
    pos = dec.tell()
    for _ in range(2):
        with pytest.raises(DecodeError) as info:
            next(dec)
        assert info.value.offset == pos + 3 and dec.tell() == pos  # the intset's string


def test_header_attributes(codec):
    dec = codec.Decoder()
    assert dec.version is None and not dec.done
    dec.feed(header(9))
    assert list(dec) == []
    assert (dec.version, dec.magic, dec.tell()) == (9, "REDIS", 9)
