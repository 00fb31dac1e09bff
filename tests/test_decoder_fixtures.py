"""Every third-party RDB file in ../shared/fixtures decodes (or fails as expected).

Expected facts come from ../shared/fixtures/INVENTORY.md and the upstream
projects' own expectations (rdbtools parser_tests, librdb test/dumps/*.json,
HDT3213/rdb cases/*.json|.aof). Files not in ``FACTS`` must at least decode
with a good (or disabled/absent) checksum, identically in pull, push and
``values=False`` mode.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest

from rdbkit.codec.model import ModuleValue, Stream
from rdbkit.errors import (
    ChecksumError,
    TruncatedError,
    UnsupportedEncodingError,
    UnsupportedVersionError,
)

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"
FILES = (
    sorted(p.relative_to(FIXTURES).as_posix() for p in FIXTURES.glob("*/*.rdb"))
    if FIXTURES.is_dir()
    else []
)

ERRORS = {
    "redis__librdb/invalid_chksum_v8.rdb": ChecksumError,
    "redis__librdb/future_v19.rdb": UnsupportedVersionError,
    "apache__kvrocks/empty.rdb": TruncatedError,
    "redis__librdb/redis_ent_opcode_ram_lru.rdb": UnsupportedEncodingError,
}


def by_key(entries):
    return {e.key: e for e in entries}


def _list_decode(entries, dec):
    (e,) = entries
    assert (e.key, e.type, e.encoding) == (b"list", "list", "quicklist")
    assert e.value == [str(i).encode() for i in range(1_000_000)]


def _intset(bits, members):
    def check(entries, dec):
        (e,) = entries
        assert (e.key, e.type, e.encoding) == (b"intset_%d" % bits, "set", "intset")
        assert e.value == {str(m).encode() for m in members}

    return check


def _zipmap_easy(entries, dec):
    (e,) = entries
    assert (e.key, e.encoding) == (b"zipmap_compresses_easily", "zipmap")
    assert e.value == {b"a": b"aa", b"aa": b"aaaa", b"aaaaa": b"aaaaaaaaaaaaaa"}


def _zipmap_plain(entries, dec):
    (e,) = entries
    assert e.encoding == "zipmap" and e.value == {b"MKD1G6": b"2", b"YNNXK": b"F7TI"}


def _zipmap_big(entries, dec):
    (e,) = entries
    assert e.type == "hash"
    assert {k: len(v) for k, v in e.value.items()} == {
        b"253bytes": 253,
        b"254bytes": 254,
        b"255bytes": 255,
        b"300bytes": 300,
        b"20kbytes": 20000,
    }


def _hash_as_ziplist(entries, dec):
    (e,) = entries
    assert (e.key, e.encoding) == (b"zipmap_compresses_easily", "ziplist")
    assert e.value == {b"a": b"aa", b"aa": b"aaaa", b"aaaaa": b"aaaaaaaaaaaaaa"}


def _keys_with_expiry(entries, dec):
    (e,) = entries
    assert (
        e.key == b"expires_ms_precision" and e.expire_ms == 1671963072573
    )  # 2022-12-25 10:11:12.573 UTC
    assert e.value == b"2022-12-25 10:11:12.573 UTC"


def _mixed_expiry(entries, dec):
    exp = {e.key: e.expire_ms for e in entries}
    assert exp[b"key02"] is None and exp[b"key03"] is None
    assert exp[b"key01"] is not None and exp[b"key04"] is not None


def _multiple_databases(entries, dec):
    assert [(e.db, e.key, e.value) for e in entries] == [
        (0, b"key_in_zeroth_database", b"zero"),
        (2, b"key_in_second_database", b"second"),
    ]


def _multiple_dbs(entries, dec):
    assert [(e.db, e.key, e.value) for e in entries] == [
        (0, b"x", b"0"),
        (1, b"y", b"1"),
        (2, b"z", b"2"),
    ]
    assert dec.resize_hints == {0: (1, 0), 1: (1, 0), 2: (1, 0)}


def _keydb_multidb(entries, dec):
    assert [(e.db, e.key, e.value) for e in entries] == [(3, b"testkey", b"bar")]


def _keydb_expire(entries, dec):
    (e,) = entries
    assert e.key == b"testkey" and e.expire_ms is not None and b"mvcc-tstamp" in dec.aux


def _integer_keys(entries, dec):
    assert {e.key for e in entries} == {
        b"125",
        b"43947",
        b"183358245",
        b"-123",
        b"-29477",
        b"-183358245",
    }


def _linkedlist(entries, dec):
    (e,) = entries
    assert (e.key, e.encoding, len(e.value)) == (b"force_linkedlist", "linkedlist", 1000)


def _dictionary(entries, dec):
    (e,) = entries
    assert (e.key, e.encoding, len(e.value)) == (b"force_dictionary", "hashtable", 1000)


def _regular_set(entries, dec):
    (e,) = entries
    assert e.value == {b"alpha", b"beta", b"gamma", b"delta", b"phi", b"kappa"}


def _regular_sorted_set(entries, dec):
    (e,) = entries
    assert (e.key, e.encoding, len(e.value)) == (b"force_sorted_set", "skiplist", 500)


def _zset_ziplist(entries, dec):
    (e,) = entries
    assert e.encoding == "ziplist" and sorted(e.value.values()) == [1.0, 2.37, 3.423]


def _ziplist_integers(entries, dec):
    (e,) = entries
    ints = [int(x) for x in e.value]
    assert ints[:13] == list(range(13))
    assert {-2, 25, -61, 63, 16380, -16000, 65535, -65523, 4194304, 2**63 - 1} <= set(ints)


def _ziplist_easy(entries, dec):
    (e,) = entries
    assert e.key == b"ziplist_compresses_easily" and e.value == [
        b"a" * n for n in (6, 12, 18, 24, 30, 36)
    ]


def _ziplist_doesnt(entries, dec):
    (e,) = entries
    assert e.value[0] == b"aj2410" and len(e.value) == 2 and len(e.value[1]) == 64


def _easy_key(entries, dec):
    (e,) = entries
    assert e.key == b"a" * 200


def _uncompressible(entries, dec):
    assert sorted(len(e.key) for e in entries) == [60, 16382, 16386]


def _v5_checksum(entries, dec):
    vals = by_key(entries)
    assert (
        vals[b"abcd"].value == b"efgh"
        and vals[b"foo"].value == b"bar"
        and vals[b"bar"].value == b"baz"
    )
    assert dec.checksum_status == "ok"


def _v8_scores(entries, dec):
    vals = by_key(entries)
    assert vals[b"foo"].value == b"bar"
    (z,) = [e for e in entries if e.type == "zset"]
    assert z.encoding == "skiplist" and len(z.value) == 1000 and z.value[b"finalfield"] == 2.718


def _module_rejson(entries, dec):
    e = by_key(entries)[b"foo"]
    assert e.type == "module" and isinstance(e.value, ModuleValue)
    assert e.value.name == "ReJSON-RL" and e.value.raw.endswith(b"\x00")
    assert dec.checksum_status == "disabled" and dec.trailing_bytes == 40


def _module_librdb(entries, dec):
    (e,) = entries
    assert (
        e.value.name == "test__rdb"
        and e.value.items == ((5, b"value1"),)
        and e.value.raw == b"\x05\x06value1\x00"
    )


def _module_aux(entries, dec):
    assert [(m.name, m.when) for m in dec.module_aux] == [("test__rdb", 1), ("test__rdb", 2)]
    assert [(e.db, e.key) for e in entries] == [(9, b"x")]


def _module_aux_rdbtools(entries, dec):
    assert dec.module_aux and entries == []


def _stream_rdbtools(entries, dec):
    s = by_key(entries)[b"mystream"].value
    assert isinstance(s, Stream) and s.length == 4 and len(s.entries) == 4 and s.first_id is None


def _stream_librdb(entries, dec):
    (e,) = entries
    s = e.value
    assert e.type == "stream" and s.groups and s.groups[0].consumers
    assert s.groups[0].consumers[0].active_time_ms is not None  # type 21


def _stream_groups(entries, dec):
    streams = [e.value for e in entries if e.type == "stream"]
    assert streams and any(s.groups for s in streams)
    for (
        s
    ) in streams:  # HDT3213's "trim" stream stores length 120 over 118 live entries (Redis 5 era)
        assert s.length >= len(s.entries)


def _stream_idmp(entries, dec):
    (e,) = entries
    s = e.value
    assert e.key == b"stream_lp1_cg2_pel1_prod2_ent1"
    assert [(str(x.id), x.fields) for x in s.entries] == [
        ("1771945454291-0", ((b"field1", b"value1"),)),
        ("1771945454291-1", ((b"idmp_field", b"prod1_ent1"),)),
        ("1771945454291-2", ((b"idmp_field", b"prod2_ent1"),)),
    ]
    assert [g.name for g in s.groups] == [b"group1", b"group2"]
    assert all(len(g.pending) == 1 and g.pending[0].consumer for g in s.groups)


def _stream_issue27(entries, dec):
    (e,) = entries
    ids = [x.id for x in e.value.entries]
    assert ids == sorted(ids) and len(ids) == e.value.length


def _functions(n):
    def check(entries, dec):
        assert len(dec.functions) == n and all(f.startswith(b"#!lua name=") for f in dec.functions)

    return check


def _functions_pre_ga(entries, dec):
    assert len(dec.functions) == 2 and all(b"redis.register_function" in f for f in dec.functions)


def _slot_info(entries, dec):
    assert [(s.slot, s.keys, s.expires) for s in dec.slot_info] == [(7638, 1, 0)]


def _lfu(entries, dec):
    (e,) = entries
    assert e.freq == 5 and e.idle is None


def _lru(entries, dec):
    (e,) = entries
    assert e.idle == 24 and e.freq is None


def _hfe_hashtable(entries, dec):
    (e,) = entries
    assert (e.key, e.encoding) == (b"hash-hfe", "hashtable")
    assert e.value == {b"F%d" % i: b"V%d" % i for i in range(1, 9)}
    assert e.field_expires == {b"F1": 2755482424661, b"F2": 2755483429282, b"F3": 2755484433842}


def _hfe_listpack(entries, dec):
    (e,) = entries
    assert (e.key, e.encoding) == (b"listpack-hfe", "listpack_ex")
    assert e.value == {b"F1": b"V1", b"F2": b"V2", b"F3": b"V3"}
    assert e.field_expires == {b"F1": 2755482478325, b"F3": 2755484483878}


def _valkey_hash2(entries, dec):
    (e,) = entries
    assert dec.magic == "VALKEY" and dec.version == 80
    assert (e.key, e.encoding) == (b"hash2-hfe", "hashtable")
    assert e.value == {b"F1": b"V1", b"F2": b"V2", b"F3": b"V3"}
    assert e.field_expires == {b"F1": 2715785640000, b"F2": 2400425640000}  # HDT3213 cases/*.aof


def _redis_pre_ga_22(entries, dec):
    (e,) = entries
    assert e.value == {b"field1": b"value1", b"field3": b"value3", b"field2": b"value2"}
    assert set(e.field_expires) == {b"field1", b"field2"}


def _redis_pre_ga_23(entries, dec):
    (e,) = entries
    assert e.encoding == "listpack_ex" and e.value == {
        b"field1": b"value1",
        b"field2": b"value2",
        b"field3": b"value3",
    }
    assert set(e.field_expires) == {b"field1", b"field2"}


def _quicklist_v7(entries, dec):
    (e,) = entries
    assert (e.key, e.encoding, e.value) == (b"foo", "quicklist", [b"bar", b"baz", b"boo"])
    assert dec.resize_hints == {0: (1, 0)}


def _encodings_v10(entries, dec):
    assert len(entries) == 13
    assert {e.encoding for e in entries} >= {"listpack", "intset", "quicklist2", "string"}


def _redisshake(entries, dec):
    assert len(entries) == 10016 and dec.aux[b"aof-base"] == b"1"


def _empty(entries, dec):
    assert entries == []


def _no_checksum(entries, dec):
    assert entries == [] and dec.checksum_status == "disabled"


FACTS = {
    "CodisLabs__redis-port/list_decode.rdb": _list_decode,
    "CodisLabs__redis-port/empty_database.rdb": _empty,
    "CodisLabs__redis-port/empty_database_nochecksum.rdb": _no_checksum,
    "redis__librdb/script.rdb": _no_checksum,
    "sripathikrishnan__redis-rdb-tools/empty_database.rdb": _empty,
    "redis__librdb/empty.rdb": _empty,
    "sripathikrishnan__redis-rdb-tools/intset_16.rdb": _intset(16, [0x7FFE, 0x7FFD, 0x7FFC]),
    "sripathikrishnan__redis-rdb-tools/intset_32.rdb": _intset(
        32, [0x7FFEFFFE, 0x7FFEFFFD, 0x7FFEFFFC]
    ),
    "sripathikrishnan__redis-rdb-tools/intset_64.rdb": _intset(
        64, [0x7FFEFFFEFFFEFFFE, 0x7FFEFFFEFFFEFFFD, 0x7FFEFFFEFFFEFFFC]
    ),
    "sripathikrishnan__redis-rdb-tools/zipmap_that_compresses_easily.rdb": _zipmap_easy,
    "sripathikrishnan__redis-rdb-tools/zipmap_that_doesnt_compress.rdb": _zipmap_plain,
    "sripathikrishnan__redis-rdb-tools/zipmap_with_big_values.rdb": _zipmap_big,
    "sripathikrishnan__redis-rdb-tools/hash_as_ziplist.rdb": _hash_as_ziplist,
    "sripathikrishnan__redis-rdb-tools/keys_with_expiry.rdb": _keys_with_expiry,
    "cupcake__rdb/keys_with_mixed_expiry.rdb": _mixed_expiry,
    "sripathikrishnan__redis-rdb-tools/multiple_databases.rdb": _multiple_databases,
    "redis__librdb/multiple_dbs.rdb": _multiple_dbs,
    "Snapchat__KeyDB/multidb.rdb": _keydb_multidb,
    "Snapchat__KeyDB/expire.rdb": _keydb_expire,
    "sripathikrishnan__redis-rdb-tools/integer_keys.rdb": _integer_keys,
    "sripathikrishnan__redis-rdb-tools/linkedlist.rdb": _linkedlist,
    "sripathikrishnan__redis-rdb-tools/dictionary.rdb": _dictionary,
    "sripathikrishnan__redis-rdb-tools/regular_set.rdb": _regular_set,
    "sripathikrishnan__redis-rdb-tools/regular_sorted_set.rdb": _regular_sorted_set,
    "sripathikrishnan__redis-rdb-tools/sorted_set_as_ziplist.rdb": _zset_ziplist,
    "sripathikrishnan__redis-rdb-tools/ziplist_with_integers.rdb": _ziplist_integers,
    "sripathikrishnan__redis-rdb-tools/ziplist_that_compresses_easily.rdb": _ziplist_easy,
    "sripathikrishnan__redis-rdb-tools/ziplist_that_doesnt_compress.rdb": _ziplist_doesnt,
    "sripathikrishnan__redis-rdb-tools/easily_compressible_string_key.rdb": _easy_key,
    "sripathikrishnan__redis-rdb-tools/uncompressible_string_keys.rdb": _uncompressible,
    "sripathikrishnan__redis-rdb-tools/rdb_version_5_with_checksum.rdb": _v5_checksum,
    "sripathikrishnan__redis-rdb-tools/rdb_version_8_with_64b_length_and_scores.rdb": _v8_scores,
    "sripathikrishnan__redis-rdb-tools/redis_40_with_module.rdb": _module_rejson,
    "sripathikrishnan__redis-rdb-tools/redis_50_with_streams.rdb": _stream_rdbtools,
    "sripathikrishnan__redis-rdb-tools/redis_60_with_module_aux.rdb": _module_aux_rdbtools,
    "redis__librdb/module.rdb": _module_librdb,
    "redis__librdb/module_aux.rdb": _module_aux,
    "redis__librdb/stream_v11.rdb": _stream_librdb,
    "redis__librdb/stream_v13_idmp.rdb": _stream_idmp,
    "HDT3213__rdb/stream_listpacks_1.rdb": _stream_groups,
    "redis__librdb/misc_with_stream.rdb": _stream_groups,
    "HDT3213__rdb/issue27.rdb": _stream_issue27,
    "HDT3213__rdb/function.rdb": _functions(1),
    "redis__librdb/function.rdb": _functions(1),
    "redis__librdb/function2.rdb": _functions(2),
    "leonchen83__redis-rdb-cli/rdt__34.rdb": _functions_pre_ga,
    "leonchen83__redis-rdb-cli/rct__all.rdb": _functions_pre_ga,
    "redis__librdb/cluster_slot_info.rdb": _slot_info,
    "redis__librdb/mem_policy_lfu.rdb": _lfu,
    "redis__librdb/mem_policy_lru.rdb": _lru,
    "HDT3213__rdb/hash_with_hfe.rdb": _hfe_hashtable,
    "HDT3213__rdb/hash_as_listpack_with_hfe.rdb": _hfe_listpack,
    "HDT3213__rdb/valkey_hash2_with_hfe.rdb": _valkey_hash2,
    "redis__librdb/hash_with_expire_v12.rdb": _redis_pre_ga_22,
    "redis__librdb/hash_lp_with_hexpire_v12.rdb": _redis_pre_ga_23,
    "cupcake__rdb/rdb_v7_list_quicklist.rdb": _quicklist_v7,
    "apache__kvrocks/encodings_ver10.rdb": _encodings_v10,
    "tair-opensource__RedisShake/appendonly.aof.2.base.rdb": _redisshake,
}

BIG = {"CodisLabs__redis-port/list_decode.rdb"}


def test_fixture_inventory_is_complete(shared_fixtures):
    assert len(FILES) == 129
    for name in list(FACTS) + list(ERRORS):
        assert name in FILES, name


@pytest.mark.parametrize("name", FILES)
def test_fixture_decodes(codec, shared_fixtures, name):
    path = shared_fixtures / name
    if name in ERRORS:
        with pytest.raises(ERRORS[name]) as info:
            list(codec.Decoder(path))
        err = info.value
        if name.endswith("empty.rdb"):
            assert err.offset == 0
        elif name.endswith("future_v19.rdb"):
            assert "unsupported RDB version 99" in str(err) and err.offset == 0
        elif name.endswith("invalid_chksum_v8.rdb"):
            assert err.offset == path.stat().st_size - 8
        return
    dec = codec.Decoder(path)
    entries = list(dec)
    assert dec.done
    assert dec.checksum_status in ("ok", "disabled", "absent")
    assert (dec.checksum_status == "absent") == (dec.version < 5)
    for e in entries:
        assert e.type in ("string", "list", "set", "zset", "hash", "stream", "module")
        assert e.value is not None
    check = FACTS.get(name)
    if check is not None:
        check(entries, dec)


@pytest.mark.parametrize("name", [n for n in FILES if n not in ERRORS and n not in BIG])
def test_fixture_push_and_values_false_agree(codec, shared_fixtures, name):
    data = (shared_fixtures / name).read_bytes()
    pulled = [e.astuple() for e in codec.Decoder(io.BytesIO(data), read_size=4096)]
    dec = codec.Decoder()
    pushed = []
    for i in range(0, len(data), 997):
        dec.feed(data[i : i + 997])
        pushed += [e.astuple() for e in dec]
    dec.close()
    assert _comparable(pushed) == _comparable(pulled)
    fast = list(codec.Decoder(io.BytesIO(data), values=False))
    assert [(e.key, e.type, e.encoding, e.offset, e.size) for e in fast] == [
        (t[1], t[2], t[8], t[9], t[10]) for t in pulled
    ]


def _comparable(rows):
    """NaN scores compare unequal to themselves; map them to a marker."""

    def fix(v):
        if isinstance(v, dict):
            return {
                k: ("nan" if isinstance(x, float) and math.isnan(x) else x) for k, x in v.items()
            }
        return v

    return [tuple(fix(x) for x in row) for row in rows]
