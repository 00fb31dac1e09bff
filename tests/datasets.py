"""A dataset that makes a real server write every type in every encoding it uses.

``write_dataset(server)`` fills a running server (see ``tests/servers.py``)
and returns what the test should then find in the RDB beyond the plain
values: the encoding each key must have been written in, the LRU idle / LFU
frequency it must carry, the function libraries. ``server_view(client)``
reads everything back *through the server itself* in rdbkit's value model
(``rdbkit/codec/model.py``), so a test can compare ``Decoder`` output with
what the server holds, not with what we think we wrote.

Encodings per server, as verified from the files (RDB type byte, rdbkit's name):

======================  ================  ================  ==============
what                    redis 7.0         valkey 9.1        redis 6.2
======================  ================  ================  ==============
any list                18 quicklist2     18 quicklist2     14 quicklist
small set of ints       11 intset         11 intset         11 intset
small set of strings    2 hashtable       20 listpack       2 hashtable
big set                 2 hashtable       2 hashtable       2 hashtable
small zset              17 listpack       17 listpack       12 ziplist
big zset                5 skiplist        5 skiplist        5 skiplist
small hash              16 listpack       16 listpack       13 ziplist
big hash                4 hashtable       4 hashtable       4 hashtable
hash with field TTLs    –                 22 hashtable      –
stream                  19 stream         21 stream         15 stream
======================  ================  ================  ==============

Lists: a listpack-encoded list (Valkey) is written as a quicklist2 with one
PACKED node. PLAIN nodes: Redis 7.0 makes them only for elements at or above
its packed threshold (1 GiB unless ``DEBUG QUICKLIST-PACKED-THRESHOLD``);
Valkey 9 (like Redis 7.2+) also for an element bigger than the node size
limit (``list-max-listpack-size`` -2 = 8 KiB). Quicklist node strings over
20 bytes are LZF-compressed on save whatever ``list-compress-depth`` says.
IDLE (LRU policy, redis7 here) or FREQ (LFU, valkey9/redis6) is written
before every key.
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass, field

import redis

from rdbkit.codec.model import (
    Stream,
    StreamConsumer,
    StreamEntry,
    StreamGroup,
    StreamID,
    StreamPending,
)

#: An absolute expiry far in the future (2100-01-01), so it cannot lapse mid-test.
FAR_EXPIRE_MS = 4_102_444_800_000
#: Entries per quicklist node for the big lists (small, so there are many nodes).
LIST_NODE_ENTRIES = 16
#: Elements at least this big go into quicklist PLAIN nodes (Redis 7+/Valkey, via DEBUG).
PLAIN_THRESHOLD = 1000
#: Idle seconds / LFU counter given to the keys restored with IDLETIME / FREQ.
RESTORED_IDLE_S = 5000
RESTORED_FREQ = 200

FUNCTION_CODE = (
    b"#!lua name=rdbkit_lib\n"
    b"redis.register_function('rdbkit_echo', function(keys, args) return args[1] end)\n"
    b"redis.register_function{function_name='rdbkit_ro', "
    b"callback=function(keys, args) return #keys end, flags={'no-writes'}}\n"
)
FUNCTION_CODE_2 = b"#!lua name=rdbkit_lib2\nredis.register_function('rdbkit_two', function() return 2 end)\n"


@dataclass
class Dataset:
    """What ``write_dataset`` wrote, beyond the values ``server_view`` reads back."""

    #: (db, key) -> the encoding name the entry must carry in the RDB.
    encodings: dict[tuple[int, bytes], str] = field(default_factory=dict)
    #: "idle" (LRU policy) or "freq" (LFU policy): which one every entry carries.
    lru_field: str = "idle"
    #: (db, key) -> idle seconds (at least) / LFU counter set with RESTORE.
    idle: dict[tuple[int, bytes], int] = field(default_factory=dict)
    freq: dict[tuple[int, bytes], int] = field(default_factory=dict)
    #: (db, key) -> {field: absolute ms} for hashes with field TTLs (Valkey 9).
    field_expires: dict[tuple[int, bytes], dict[bytes, int]] = field(default_factory=dict)
    #: library code of every FUNCTION LOAD, in load order.
    functions: list[bytes] = field(default_factory=list)


def _ints_text(values) -> list[bytes]:
    return [str(v).encode() for v in values]


def write_dataset(server, seed: int = 1234) -> Dataset:
    """Reset ``server`` and write the full dataset into dbs 0, 1, 7 and 15."""
    rng = random.Random(seed)
    server.reset()
    version = server.version_tuple
    is_valkey = server.name.startswith("valkey")
    redis7_or_later = version >= (7,)  # Redis 7.0+ and every Valkey 9
    small_list = "quicklist2" if redis7_or_later else "quicklist"
    small_pack = "listpack" if redis7_or_later else "ziplist"

    ds = Dataset()
    with contextlib.closing(server.client()) as c:
        policy = c.config_get("maxmemory-policy")["maxmemory-policy"]
        ds.lru_field = "freq" if "lfu" in policy else "idle"
        server.config_set("lfu-decay-time", "0")  # freq counters must not decay mid-test
        list_size_name = "list-max-listpack-size" if redis7_or_later else "list-max-ziplist-size"

    def expect(db: int, key: bytes, encoding: str) -> None:
        ds.encodings[(db, key)] = encoding

    # ---- db 0: strings --------------------------------------------------
    with contextlib.closing(server.client(db=0)) as c:
        p = c.pipeline(transaction=False)
        p.set(b"str:short", b"hello")
        p.set(b"str:empty", b"")
        p.set(b"str:binary", bytes(range(256)) * 2)
        p.set(b"str:\x00\xffbinary-key\r\n", b"\x00\r\n\xff")
        for i, text in enumerate(
            ["0", "1", "-1", "127", "-128", "32767", "-32768", "2147483647", "-2147483648",
             "2147483648", "4294967296", "9223372036854775807", "-9223372036854775808",
             "007", "+5", "1.5", "12345678901234567890"]
        ):
            p.set(f"str:int:{i}".encode(), text.encode())
        p.set(b"str:lzf", b"abcdefghij" * 30)  # > 20 bytes, compressible: LZF
        p.set(b"str:lzf:big", (b"rdbkit compressible line %d\n" % 7) * 40000)  # ~1 MB
        p.set(b"str:random:big", rng.randbytes(200_000))  # incompressible: stored raw
        p.set(b"str:random:small", rng.randbytes(30))
        p.set(b"str:21", b"x" * 21)
        p.set(b"str:unicode", "grüße, 世界".encode())
        p.execute()
        for key in (b"str:short", b"str:lzf", b"str:lzf:big", b"str:random:big", b"str:int:0"):
            expect(0, key, "string")

        # expiries: absolute ms, relative seconds, relative ms, one set then removed
        c.set(b"exp:abs", b"v", pxat=FAR_EXPIRE_MS)
        c.set(b"exp:rel", b"v", ex=3600)
        c.set(b"exp:relms", b"v", px=7_200_123)
        c.set(b"exp:persisted", b"v", ex=3600)
        c.persist(b"exp:persisted")
        c.rpush(b"exp:list", b"a", b"b")
        c.pexpireat(b"exp:list", FAR_EXPIRE_MS + 1)
        c.hset(b"exp:hash", mapping={b"f": b"v"})
        c.expire(b"exp:hash", 100_000)

    # ---- db 1: lists, sets, zsets, hashes --------------------------------
    with contextlib.closing(server.client(db=1)) as c:
        server.config_set(list_size_name, str(LIST_NODE_ENTRIES))
        server.config_set("list-compress-depth", "0")
        c.rpush(b"list:small", b"a", b"bb", b"", b"0", b"-1", b"127", b"128", b"-4096",
                b"4095", b"32767", b"-32768", b"8388607", b"-8388608", b"2147483647",
                b"-2147483648", b"9223372036854775807", b"-9223372036854775808",
                b"x" * 63, b"y" * 64, b"z" * 4095, b"w" * 4096, b"\x00\xff")
        expect(1, b"list:small", small_list)
        server.config_set(list_size_name, "-2")
        c.rpush(b"list:tiny", b"one", b"2", b"three")  # Valkey: listpack-encoded list
        expect(1, b"list:tiny", small_list)
        server.config_set(list_size_name, str(LIST_NODE_ENTRIES))
        big = [b"item:%d" % i if i % 3 else str(i * 7919).encode() for i in range(3000)]
        for start in range(0, len(big), 500):
            c.rpush(b"list:big", *big[start:start + 500])
        expect(1, b"list:big", small_list)
        # interior nodes of this list are LZF-compressed inside the quicklist
        server.config_set("list-compress-depth", "1")
        c.rpush(b"list:compressed", *[b"compressible-element-%04d-" % i + b"pad" * 10 for i in range(800)])
        expect(1, b"list:compressed", small_list)
        server.config_set("list-compress-depth", "0")
        server.config_set(list_size_name, "-2")
        # one element bigger than a whole node (8 KiB): it gets a node of its own
        c.rpush(b"list:bigelem", b"head", rng.randbytes(20_000), b"tail")
        expect(1, b"list:bigelem", small_list)
        if redis7_or_later:
            c.execute_command("DEBUG", "QUICKLIST-PACKED-THRESHOLD", str(PLAIN_THRESHOLD))
            try:
                c.rpush(b"list:plain", b"before", b"P" * (PLAIN_THRESHOLD + 10),
                        rng.randbytes(5000), b"after")
                c.lpush(b"list:plain", b"Q" * (PLAIN_THRESHOLD * 3))
            finally:
                c.execute_command("DEBUG", "QUICKLIST-PACKED-THRESHOLD", str(1 << 30))
            expect(1, b"list:plain", "quicklist2")

        c.sadd(b"set:int16", 1, 2, 3, -5, 32767, -32768)
        c.sadd(b"set:int32", 1, 70000, -70000, 2147483647)
        c.sadd(b"set:int64", 1, 2**40, -(2**62), 9223372036854775807, -9223372036854775808)
        for key in (b"set:int16", b"set:int32", b"set:int64"):
            expect(1, key, "intset")
        c.sadd(b"set:small", b"apple", b"banana", b"", b"12", b"\x00bin")
        expect(1, b"set:small", "listpack" if is_valkey else "hashtable")
        c.sadd(b"set:big", *[b"member:%d" % i for i in range(2000)])
        expect(1, b"set:big", "hashtable")
        c.sadd(b"set:bigints", *range(0, 6000, 3))  # > set-max-intset-entries: hashtable
        expect(1, b"set:bigints", "hashtable")

        scores = {b"int": 1, b"neg": -42, b"frac": 1.5, b"tenth": 0.1, b"pi": 3.141592653589793,
                  b"inf": float("inf"), b"ninf": float("-inf"), b"huge": 1e300, b"tiny": 5e-324,
                  b"zero": 0, b"big-int": 2**53, b"": 7, b"\x00": -0.5}
        c.zadd(b"zset:small", scores)
        expect(1, b"zset:small", small_pack)
        c.zadd(b"zset:big", {b"m:%d" % i: (i * 0.37 if i % 2 else i) for i in range(1000)})
        c.zadd(b"zset:big", {b"inf": float("inf"), b"ninf": float("-inf")})
        expect(1, b"zset:big", "skiplist")
        c.zadd(b"zset:longmember", {b"L" * 100: 1, b"s": 2})  # member > 64 bytes: skiplist
        expect(1, b"zset:longmember", "skiplist")

        c.hset(b"hash:small", mapping={b"f1": b"v1", b"int": b"12345", b"neg": b"-7",
                                       b"empty": b"", b"": b"empty-field", b"big": b"99999999999"})
        expect(1, b"hash:small", small_pack)
        c.hset(b"hash:big", mapping={b"field:%d" % i: b"value:%d" % (i * 31) for i in range(1500)})
        expect(1, b"hash:big", "hashtable")
        c.hset(b"hash:longvalue", mapping={b"f": b"V" * 200, b"g": b"1"})
        expect(1, b"hash:longvalue", "hashtable")

    # ---- db 7: streams -------------------------------------------------------
    with contextlib.closing(server.client(db=7)) as c:
        _write_streams(c, server)
        expect(7, b"stream:groups", "stream")
        expect(7, b"stream:big", "stream")

    # ---- db 15: hash field TTLs, LRU/LFU via RESTORE, functions ----------------
    with contextlib.closing(server.client(db=15)) as c:
        c.set(b"db15:plain", b"in the last db")
        if is_valkey:
            c.hset(b"hfe:some", mapping={b"a": b"1", b"b": b"2", b"c": b"3"})
            c.execute_command("HPEXPIREAT", b"hfe:some", FAR_EXPIRE_MS, "FIELDS", 2, b"a", b"c")
            c.hset(b"hfe:all", mapping={b"x": b"X", b"y": b"Y"})
            c.execute_command("HPEXPIREAT", b"hfe:all", FAR_EXPIRE_MS + 5, "FIELDS", 2, b"x", b"y")
            c.expire(b"hfe:all", 3600)
            ds.field_expires[(15, b"hfe:some")] = {b"a": FAR_EXPIRE_MS, b"c": FAR_EXPIRE_MS}
            ds.field_expires[(15, b"hfe:all")] = {b"x": FAR_EXPIRE_MS + 5, b"y": FAR_EXPIRE_MS + 5}
            expect(15, b"hfe:some", "hashtable")
            expect(15, b"hfe:all", "hashtable")
        c.set(b"lru:source", b"payload")
        payload = c.dump(b"lru:source")
        if ds.lru_field == "idle":
            c.restore(b"lru:restored", 0, payload, idletime=RESTORED_IDLE_S)
            ds.idle[(15, b"lru:restored")] = RESTORED_IDLE_S
        else:
            c.restore(b"lru:restored", 0, payload, frequency=RESTORED_FREQ)
            ds.freq[(15, b"lru:restored")] = RESTORED_FREQ
        if redis7_or_later:
            c.execute_command("FUNCTION", "LOAD", FUNCTION_CODE)
            c.execute_command("FUNCTION", "LOAD", FUNCTION_CODE_2)
            ds.functions = [FUNCTION_CODE, FUNCTION_CODE_2]
    return ds


def _write_streams(c: redis.Redis, server) -> None:
    """Streams with groups, PEL, consumers, tombstones, trims and repeated fields."""
    s = b"stream:groups"
    ids = []
    for i in range(20):
        fields = [(b"temp", str(20 + i).encode()), (b"hum", str(i).encode())]
        if i % 5 == 3:  # different fields from the master entry
            fields = [(b"other", b"x"), (b"n", str(i).encode()), (b"n", b"repeated-field")]
        ids.append(c.execute_command("XADD", s, f"{1_700_000_000_000 + i}-{i % 3}",
                                     *[x for pair in fields for x in pair]))
    if server.version_tuple >= (7,):  # explicit ms with an auto seq: 7.0+
        c.execute_command("XADD", s, "1700000000100-*", "only", "one")
    else:
        c.execute_command("XADD", s, "1700000000100-0", "only", "one")
    c.xdel(s, ids[4], ids[10])  # tombstones inside a node
    c.xgroup_create(s, b"g1", id="0")
    c.xgroup_create(s, b"g2", id="$")
    c.xgroup_create(s, b"g3", id=ids[2])  # entries_read unknown to the server
    c.xreadgroup(b"g1", b"alice", {s: ">"}, count=5)
    c.xreadgroup(b"g1", b"bob", {s: ">"}, count=3)
    c.xreadgroup(b"g1", b"carol", {s: ">"}, count=2)
    c.xack(s, b"g1", ids[0], ids[6])  # acked entries leave the PEL
    c.execute_command("XCLAIM", s, b"g1", b"carol", 0, ids[1])  # moves ownership
    c.xgroup_createconsumer(s, b"g1", b"idle-consumer")
    c.xreadgroup(b"g3", b"dave", {s: ">"}, count=1)

    big = b"stream:big"
    for i in range(1200):
        if i % 2:
            c.xadd(big, {b"a": str(i).encode(), b"b": b"same-fields"})
        else:
            c.xadd(big, {b"k%d" % (i % 7): rnd_text(i)})
    first_ids = [e[0] for e in c.xrange(big, count=40)]
    c.xdel(big, *first_ids[::4])
    c.xtrim(big, maxlen=1000, approximate=False)
    c.xgroup_create(big, b"readers", id="0")
    c.xreadgroup(b"readers", b"r1", {big: ">"}, count=300)

    # no deletions before the group exists: the server knows entries_read (7.0+)
    clean = b"stream:clean"
    for i in range(10):
        c.xadd(clean, {b"n": str(i).encode()}, id=f"{i + 1}-0")
    c.xgroup_create(clean, b"cg", id="0")
    c.xreadgroup(b"cg", b"c1", {clean: ">"}, count=4)
    c.xack(clean, b"cg", b"1-0")

    # a stream whose every entry was deleted: no live entries, metadata only
    e = b"stream:emptied"
    first = c.xadd(e, {b"f": b"v"})
    c.xdel(e, first)
    c.xgroup_create(e, b"g", id="$")


def rnd_text(i: int) -> bytes:
    return (b"%d-" % (i * 2654435761 % 1000003)) * (1 + i % 4)


# ---- reading back through the server ------------------------------------------

_RAW = ("XRANGE", "XINFO STREAM", "ZRANGE", "HGETALL", "FUNCTION LIST")


def _raw_client(server, db: int) -> redis.Redis:
    """A client that returns replies as the server sent them (no dict-building callbacks)."""
    client = server.client(db=db, protocol=2)  # RESP3 would turn pairs into dicts
    for name in _RAW:
        client.set_response_callback(name, lambda response, **options: response)
    return client


def _pairs(flat: list) -> list[tuple]:
    return list(zip(flat[0::2], flat[1::2]))


def _sid(raw: bytes | None) -> StreamID | None:
    if raw is None:
        return None
    ms, seq = raw.split(b"-")
    return StreamID(int(ms), int(seq))


def _stream_value(c: redis.Redis, key: bytes, version: tuple[int, ...]) -> Stream:
    entries = tuple(
        StreamEntry(_sid(eid), tuple(_pairs(flat)))
        for eid, flat in c.execute_command("XRANGE", key, "-", "+")
    )
    info = dict(_pairs(c.execute_command("XINFO STREAM", key, "FULL", "COUNT", 0)))
    layout2 = version >= (7,)
    groups = []
    for graw in info[b"groups"]:
        g = dict(_pairs(graw))
        pending = tuple(
            StreamPending(_sid(pid), int(delivered_ms), int(count), consumer)
            for pid, consumer, delivered_ms, count in g[b"pending"]
        )
        consumers = []
        for craw in g[b"consumers"]:
            cons = dict(_pairs(craw))
            consumers.append(
                StreamConsumer(
                    name=cons[b"name"],
                    seen_time_ms=int(cons[b"seen-time"]),
                    active_time_ms=int(cons[b"active-time"]) if b"active-time" in cons else None,
                    pending=tuple(_sid(p[0]) for p in cons[b"pending"]),
                )
            )
        if layout2:
            read = g.get(b"entries-read")
            entries_read = int(read) if read is not None else -1  # unknown to the server
        else:
            entries_read = None
        groups.append(
            StreamGroup(g[b"name"], _sid(g[b"last-delivered-id"]), entries_read, pending,
                        tuple(consumers))
        )
    return Stream(
        entries=entries,
        length=int(info[b"length"]),
        last_id=_sid(info[b"last-generated-id"]),
        first_id=_sid(info[b"recorded-first-entry-id"]) if layout2 else None,
        max_deleted_id=_sid(info[b"max-deleted-entry-id"]) if layout2 else None,
        entries_added=int(info[b"entries-added"]) if layout2 else None,
        groups=tuple(groups),
    )


def _value(c: redis.Redis, key: bytes, kind: str, version: tuple[int, ...]):
    if kind == "string":
        return c.get(key)
    if kind == "list":
        return c.lrange(key, 0, -1)
    if kind == "set":
        return c.smembers(key)
    if kind == "zset":
        flat = c.execute_command("ZRANGE", key, 0, -1, "WITHSCORES")
        return {member: float(score) for member, score in _pairs(flat)}
    if kind == "hash":
        return dict(_pairs(c.execute_command("HGETALL", key)))
    if kind == "stream":
        return _stream_value(c, key, version)
    raise AssertionError(f"unexpected type {kind!r} for key {key!r}")


def server_view(server) -> dict[tuple[int, bytes], tuple[str, object, int | None]]:
    """Every key of every db as ``(type, value, expire_ms)``, read through the server.

    Values use rdbkit's value model. Expiries are absolute unix ms: exact from
    PEXPIRETIME where the server has it (7.0+), else ``now + PTTL`` (within
    a few ms of the truth; compare with a tolerance). Reading values touches
    keys, so read LRU/LFU data before calling this.
    """
    version = server.version_tuple
    with contextlib.closing(server.client()) as c:
        databases = int(c.config_get("databases")["databases"])
    view: dict[tuple[int, bytes], tuple[str, object, int | None]] = {}
    for db in range(databases):
        with contextlib.closing(_raw_client(server, db)) as c:
            for key in c.scan_iter(count=1000):
                kind = c.type(key).decode()
                value = _value(c, key, kind, version)
                if version >= (7,):
                    expire = c.execute_command("PEXPIRETIME", key)
                else:
                    before = time.time_ns() // 1_000_000
                    pttl = c.pttl(key)
                    expire = before + pttl if pttl >= 0 else -1
                view[(db, key)] = (kind, value, expire if expire >= 0 else None)
    return view


def field_expires_view(server, keys) -> dict[tuple[int, bytes], dict[bytes, int]]:
    """``{(db, key): {field: absolute ms}}`` for hashes, via HPEXPIRETIME (Valkey 9)."""
    result = {}
    for db, key in keys:
        with contextlib.closing(server.client(db=db)) as c:
            fields = list(c.hkeys(key))
            times = c.execute_command("HPEXPIRETIME", key, "FIELDS", len(fields), *fields)
            result[(db, key)] = {f: t for f, t in zip(fields, times) if t >= 0}
    return result


def function_codes(server) -> list[bytes]:
    """Library code of every loaded function library (FUNCTION LIST WITHCODE)."""
    if server.version_tuple < (7,):
        return []
    with contextlib.closing(_raw_client(server, 0)) as c:
        libs = c.execute_command("FUNCTION LIST", "WITHCODE")
    return sorted(dict(_pairs(lib))[b"library_code"] for lib in libs)
