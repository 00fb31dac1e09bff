"""Hostile input: truncations and random mutations end in entries or an RdbkitError.

Never IndexError, struct.error, UnicodeDecodeError, RecursionError,
MemoryError or a hang. Seeded and bounded so the sweep runs in seconds.
"""

from __future__ import annotations

import io
import random

import pytest
from rdbbuild import kv, length, rdb, string

from rdbkit.errors import RdbkitError, TruncatedError

FILES = [
    "redis__librdb/stream_v11.rdb",
    "redis__librdb/stream_v13_idmp.rdb",
    "apache__kvrocks/encodings_ver10.rdb",
    "HDT3213__rdb/hash_with_hfe.rdb",
    "HDT3213__rdb/hash_as_listpack_with_hfe.rdb",
    "HDT3213__rdb/valkey_hash2_with_hfe.rdb",
    "HDT3213__rdb/listpack.rdb",
    "redis__librdb/hash_lp_with_hexpire_v12.rdb",
    "redis__librdb/hash_with_expire_v12.rdb",
    "redis__librdb/module_aux_v12.rdb",
    "redis__librdb/string_lzf.rdb",
    "sripathikrishnan__redis-rdb-tools/zipmap_that_compresses_easily.rdb",
    "sripathikrishnan__redis-rdb-tools/ziplist_with_integers.rdb",
    "sripathikrishnan__redis-rdb-tools/redis_50_with_streams.rdb",
    "sripathikrishnan__redis-rdb-tools/intset_64.rdb",
    "sripathikrishnan__redis-rdb-tools/sorted_set_as_ziplist.rdb",
    "bimtauer__rdb-rs/quicklist_with_multiple_nodes.rdb",
    "HDT3213__rdb/zipmap_big_len.rdb",
]
MUTATIONS_PER_FILE = 250


def _push(codec, data: bytes, **kw) -> list:
    dec = codec.Decoder(**kw)
    dec.feed(data)
    out = [e.astuple() for e in dec]
    dec.close()
    return out


def _pull(codec, data: bytes, **kw) -> list:
    return [e.astuple() for e in codec.Decoder(io.BytesIO(data), read_size=64, **kw)]


def _outcome(fn, *args, **kw):
    """Run a decode; any exception other than RdbkitError fails the test."""
    try:
        return fn(*args, **kw), None
    except RdbkitError as exc:
        return None, exc


@pytest.mark.parametrize("name", FILES)
def test_every_truncation_point(codec, shared_fixtures, name):
    data = (shared_fixtures / name).read_bytes()
    full = _push(codec, data)
    for cut in range(len(data)):
        for mode in (_push, _pull):
            got, err = _outcome(mode, codec, data[:cut])
            assert got is None and type(err) is TruncatedError, (name, cut, mode.__name__, err)
            assert err.offset <= cut
        # whatever was yielded before the cut is a prefix of the real entries
        dec = codec.Decoder()
        dec.feed(data[:cut])
        partial = [e.astuple() for e in dec]
        assert partial == full[: len(partial)]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    kind = rng.random()
    if kind < 0.6:
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(b))
            b[i] = rng.randrange(256)
    elif kind < 0.75:
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    elif kind < 0.85:
        i = rng.randrange(len(b))
        del b[i : i + rng.randint(1, 8)]
    elif kind < 0.95:
        i = rng.randrange(len(b))
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    else:  # a hostile length: 0x81 + a huge u64 somewhere
        i = rng.randrange(len(b))
        b[i : i + 9] = b"\x81" + rng.randrange(2**64).to_bytes(8, "big")
    return bytes(b)


@pytest.mark.parametrize("name", FILES)
def test_random_mutations(codec, shared_fixtures, name):
    data = (shared_fixtures / name).read_bytes()
    rng = random.Random(f"rdbkit-{name}")
    for i in range(MUTATIONS_PER_FILE):
        mutated = _mutate(rng, data)
        verify = bool(i % 2)
        pushed, perr = _outcome(_push, codec, mutated, verify_checksum=verify)
        pulled, lerr = _outcome(_pull, codec, mutated, verify_checksum=verify)
        # push and pull see the same bytes: same entries, same error class and offset
        assert pushed == pulled or (pushed is None and pulled is None), (name, i)
        if perr is not None or lerr is not None:
            assert type(perr) is type(lerr) and perr.offset == lerr.offset, (name, i, perr, lerr)
        _outcome(_push, codec, mutated, values=False, max_buffer_size=4096, max_string_len=4096)


def test_hostile_claims_allocate_nothing(codec):
    """Huge claimed lengths and counts are refused or wait for data; never allocated."""
    claims = [
        kv(0, b"k", b"\x81" + (2**63).to_bytes(8, "big")),
        kv(1, b"k", b"\x81" + (2**32).to_bytes(8, "big") + string(b"x")),
        kv(
            0,
            b"k",
            b"\xc3" + b"\x80" + (2**31).to_bytes(4, "big") + b"\x80" + (2**31).to_bytes(4, "big"),
        ),
        kv(18, b"k", length(2**32 - 1) + length(2)),
        kv(15, b"k", length(0) + length(0) * 3 + b"\x80\xff\xff\xff\xff"),
    ]
    for body in claims:
        data = rdb(body)[:-9]
        _got, err = _outcome(_push, codec, data)
        assert isinstance(err, RdbkitError)
        _got, err = _outcome(_pull, codec, data)
        assert isinstance(err, RdbkitError)


def test_deep_nesting_is_not_recursive(codec):
    """A quicklist of 20000 nodes (deep for a recursive walker) decodes with loops."""
    from rdbbuild import listpack

    node = length(2) + string(listpack([b"x"]))
    e = _push(codec, rdb(kv(18, b"k", length(20000) + node * 20000)))[0]
    assert len(e[3]) == 20000
