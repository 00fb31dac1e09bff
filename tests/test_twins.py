"""The C decoder and its pure-Python twin agree entry for entry and error for error.

Every shared fixture is decoded by both (pull and push mode, with and without
values); then truncated copies and seeded random byte flips of a few files.
Agreement means: the same entries (``astuple()``), the same decoder attributes,
and, when decoding fails, the same error class at the same offset. The last
tests cover limits specific to the C buffer handling (huge claimed lengths
must fail without a big allocation).
"""

from __future__ import annotations

import importlib
import io
import math
import random
from pathlib import Path

import pytest

from rdbkit import errors
C = importlib.import_module("rdbkit._codec")
P = importlib.import_module("rdbkit._pycodec")

ATTRS = ("version", "magic", "aux", "functions", "module_aux", "slot_info", "resize_hints",
         "done", "checksum", "checksum_status")


def _norm(x):
    """NaN-safe comparable form (NaN != NaN would make equal decodes differ)."""
    if isinstance(x, float) and math.isnan(x):
        return ("nan",)
    if isinstance(x, dict):
        return {k: _norm(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_norm(v) for v in x) if not hasattr(x, "_fields") else tuple(_norm(v) for v in x)
    return x


def _outcome(mod, data: bytes, mode: str, **kw):
    """Decode data fully; returns (entries, error, attributes)."""
    entries = []
    err = None
    if mode == "pull":
        dec = mod.Decoder(io.BytesIO(data), **kw)
        try:
            for e in dec:
                entries.append(_norm(e.astuple()))
        except errors.RdbkitError as exc:
            err = (type(exc).__name__, exc.offset)
    else:
        dec = mod.Decoder(**kw)
        try:
            # odd chunk size splits structures anywhere; big files in a few chunks
            # (the twin re-parses a partial entry per chunk)
            step = max(4099, len(data) // 3)
            for i in range(0, len(data), step):
                dec.feed(data[i:i + step])
                for e in dec:
                    entries.append(_norm(e.astuple()))
            dec.close()
        except errors.RdbkitError as exc:
            err = (type(exc).__name__, exc.offset)
    attrs = tuple(_norm(getattr(dec, a)) for a in ATTRS)
    return entries, err, attrs


def _assert_same(data: bytes, label: str, modes=("pull", "push"), **kw) -> None:
    for mode in modes:
        a = _outcome(C, data, mode, **kw)
        b = _outcome(P, data, mode, **kw)
        assert a[1] == b[1], f"{label} [{mode}] errors differ: C {a[1]} / Python {b[1]}"
        assert a[2] == b[2], f"{label} [{mode}] decoder attributes differ"
        assert len(a[0]) == len(b[0]), f"{label} [{mode}] entry counts differ"
        for x, y in zip(a[0], b[0]):
            assert x == y, f"{label} [{mode}] entry differs: C {x[:3]} / Python {y[:3]}"


def _fixtures(root: Path) -> list[Path]:
    return sorted(root.glob("*/*.rdb"))


def test_fixtures_agree(shared_fixtures):
    files = _fixtures(shared_fixtures)
    assert files
    for f in files:
        data = f.read_bytes()
        _assert_same(data, f.name)
        if len(data) < 1 << 20:  # the multi-MB file takes the twin seconds per pass
            _assert_same(data, f.name + " values=False", modes=("pull",), values=False)


def test_fixture_files_by_path_agree(shared_fixtures):
    f = shared_fixtures / "redis__librdb" / "stream_v11.rdb"
    a = [e.astuple() for e in C.Decoder(str(f))]
    b = [e.astuple() for e in P.Decoder(str(f))]
    assert a == b and a


SMALL = [
    "redis__librdb/stream_v11.rdb",
    "redis__librdb/stream_v13_idmp.rdb",
    "HDT3213__rdb/listpack.rdb",
    "HDT3213__rdb/hash_with_hfe.rdb",
    "HDT3213__rdb/valkey_hash2_with_hfe.rdb",
    "redis__librdb/hash_lp_with_hexpire_v12.rdb",
    "redis__librdb/module_aux_v12.rdb",
    "sripathikrishnan__redis-rdb-tools/zipmap_that_compresses_easily.rdb",
    "sripathikrishnan__redis-rdb-tools/ziplist_with_integers.rdb",
    "sripathikrishnan__redis-rdb-tools/intset_64.rdb",
    "Snapchat__KeyDB/redis-save.rdb",
    "Snapchat__KeyDB/expire.rdb",
    "redis__librdb/zset_zl_v6.rdb",
    "redis__librdb/plain_zset_v6.rdb",
    "redis__librdb/string_lzf.rdb",
    "redis__librdb/function.rdb",
]


def test_truncations_agree(shared_fixtures):
    for name in SMALL:
        data = (shared_fixtures / name).read_bytes()
        for cut in range(len(data)):
            _assert_same(data[:cut], f"{name}[:{cut}]")


def test_byte_flips_agree(shared_fixtures):
    rng = random.Random(20240611)
    files = [shared_fixtures / n for n in SMALL] + [
        shared_fixtures / "HDT3213__rdb/memory.rdb",
        shared_fixtures / "redis__librdb/misc_with_stream.rdb",
        shared_fixtures / "leonchen83__redis-rdb-cli/rdt__89__at_7f1c027a5d.rdb",
    ]
    for f in files:
        data = f.read_bytes()
        for _ in range(400):
            b = bytearray(data)
            for _ in range(rng.choice((1, 1, 2, 3))):
                i = rng.randrange(9, len(b))
                b[i] = rng.randrange(256) if rng.random() < 0.7 else b[i] ^ (1 << rng.randrange(8))
            _assert_same(bytes(b), f"{f.name} flipped", modes=("pull",), verify_checksum=False)


def _rdb(body: bytes, version: int = 11) -> bytes:
    return b"REDIS%04d" % version + body


@pytest.mark.parametrize(
    "body",
    [
        b"\x00\x81\xff\xff\xff\xff\xff\xff\xff\xff",  # key length 2^64-1
        b"\x00\x80\xff\xff\xff\xff",  # key length 2^32-1
        b"\x00\x01k\xc3\x80\x7f\xff\xff\xff\x81\x00\x00\x00\x01\x00\x00\x00\x00",  # LZF clen 2 GiB
        b"\x00\x01k\xc3\x01\x81\x00\x00\x00\x01\x00\x00\x00\x00a",  # LZF ulen 4 GiB from 1 byte
        b"\x01\x01k\x81\x00\x00\x00\x00\xff\xff\xff\xff",  # list of 2^32-1 elements
        b"\x02\x01k\x81\xff\xff\xff\xff\xff\xff\xff\xff",  # set of 2^64-1 members
        b"\x12\x01k\x81\x00\x00\x10\x00\x00\x00\x00\x00\x02\x00",  # quicklist2 of 2^44 nodes
        b"\x0f\x01k\x81\x00\x00\x00\x01\x00\x00\x00\x00",  # stream of 2^32 nodes
    ],
)
def test_huge_claims_fail_small(body):
    data = _rdb(body)
    for mod in (C, P):
        with pytest.raises((errors.TruncatedError, errors.LimitExceededError)):
            list(mod.Decoder(io.BytesIO(data)))
    _assert_same(data, repr(body[:12]))
    small = {"max_string_len": 1 << 16, "max_collection_len": 1 << 20, "max_buffer_size": 1 << 20}
    _assert_same(data, repr(body[:12]) + " small limits", modes=("pull",), **small)


def test_limit_errors_name_the_field():
    data = _rdb(b"\x00\x80\x00\x10\x00\x00" + b"x" * 10)
    with pytest.raises(errors.LimitExceededError) as info:
        list(C.Decoder(io.BytesIO(data), max_string_len=1000, max_buffer_size=1000))
    assert info.value.offset == 10  # the key's length field
    data = _rdb(b"\x01\x01k\x80\x00\x01\x00\x00" + b"\x01a" * 5)
    with pytest.raises(errors.LimitExceededError) as info:
        list(C.Decoder(io.BytesIO(data), max_collection_len=100))
    assert info.value.offset == 12  # the list's count field


def test_entry_larger_than_max_buffer_size():
    element = b"v" * 3000
    one = bytes([0x40 | (3000 >> 8), 3000 & 0xFF]) + element
    data = _rdb(b"\x01\x01k\x02" + one + one + b"\xff", 4)
    assert [e.value for e in C.Decoder(io.BytesIO(data))] == [[element, element]]
    for how in ("all", "chunks", "pull"):
        limits = {"max_string_len": 4096, "max_buffer_size": 4096}
        with pytest.raises(errors.LimitExceededError) as info:
            if how == "pull":
                list(C.Decoder(io.BytesIO(data), read_size=1000, **limits))
            else:
                dec = C.Decoder(**limits)
                for i in range(0, len(data), len(data) if how == "all" else 1000):
                    dec.feed(data[i:i + 1000 if how == "chunks" else len(data)])
                    list(dec)
                dec.close()
        assert info.value.offset == 9  # the entry's first byte


def test_lzf_bounds():
    assert C.lzf_decompress(b"\x02abc\x40\x02", 7) == P.lzf_decompress(b"\x02abc\x40\x02", 7) == b"abcabca"
    for bad, n in ((b"\x20\x05", 3), (b"\x05ab", 6), (b"\x00a\xe0\xff\x00", 300), (b"\x00a", 2)):
        with pytest.raises(errors.DecodeError) as ci:
            C.lzf_decompress(bad, n)
        with pytest.raises(errors.DecodeError) as pi:
            P.lzf_decompress(bad, n)
        assert ci.value.offset == pi.value.offset == 0


def test_crc64_matches_twin():
    rng = random.Random(5)
    for n in (0, 1, 7, 8, 9, 63, 64, 1000):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert C.crc64(data) == P.crc64(data)
        assert C.crc64(data[n // 2:], C.crc64(data[:n // 2])) == C.crc64(data)
    assert C.crc64(b"123456789") == 0xE9C6D914C4B8D9CA
    assert C.crc64(bytearray(b"123456789")) == C.crc64(memoryview(b"123456789"))


def test_same_names_exported():
    for name in ("Decoder", "Entry", "crc64", "lzf_decompress", "DEFAULT_MAX_STRING_LEN",
                 "DEFAULT_MAX_COLLECTION_LEN", "DEFAULT_MAX_BUFFER_SIZE"):
        assert hasattr(C, name) and hasattr(P, name)
        if name.startswith("DEFAULT"):
            assert getattr(C, name) == getattr(P, name)


def test_entry_api():
    e = C.Entry(0, b"k", "string", b"v", None, None, None, None, "string", 9, 5)
    assert e == C.Entry(0, b"k", "string", b"v", None, None, None, None, "string", 9, 5)
    assert e != C.Entry(1, b"k", "string", b"v", None, None, None, None, "string", 9, 5)
    assert e.astuple() == (0, b"k", "string", b"v", None, None, None, None, "string", 9, 5)
    assert "key=b'k'" in repr(e)
    with pytest.raises(AttributeError):
        e.key = b"x"
    with pytest.raises(TypeError):
        hash(e)
