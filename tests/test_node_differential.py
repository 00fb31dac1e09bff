"""Differential tests: the same commands to the node and to redis-server 7.0,
the raw reply bytes compared one by one (errors included).

Each script starts from empty databases on both. Commands whose replies
depend on the clock (TTL of a relative expiry) use values where rounding
cannot differ; anything the node knowingly does differently is not here but
listed in the report of issue 7.
"""

from __future__ import annotations

import contextlib

import pytest

from nodes import RawClient, node  # noqa: F401  (fixture)
from rdbkit.codec import dump_payload

LIST_PAYLOAD = dump_payload("list", [b"a", b"b"], 10)

BIG = "9223372036854775807"
SCRIPTS = {
    "set_get": [
        ("SET", "k", "v"), ("GET", "k"), ("GET", "missing"), ("SET", "k", "v2", "XX"),
        ("SET", "k", "v3", "NX"), ("SET", "n", "1", "NX"), ("SET", "k", "v4", "GET"),
        ("SET", "new", "x", "GET"), ("SET", "k", "a", "NX", "GET"), ("SET", "k", "b", "XX", "GET"),
        ("SET", "k", "v", "NX", "XX"), ("SET", "k", "v", "EX", "10", "PX", "100"),
        ("SET", "k", "v", "EX", "0"), ("SET", "k", "v", "EX", "-5"), ("SET", "k", "v", "EX", "abc"),
        ("SET", "k", "v", "EX"), ("SET", "k", "v", "KEEPTTL", "EX", "5"), ("SET", "k", "v", "FOO"),
        ("SET", "k", "v", "EX", BIG), ("SET", "k", "v", "PXAT", "1"), ("GET", "k"),
        ("SET", "k", "v", "EXAT", "99999999999"), ("PEXPIRETIME", "k"), ("SET", "k", "w", "KEEPTTL"),
        ("EXPIRETIME", "k"), ("SET", "k", "w"), ("TTL", "k"), ("SET",), ("SET", "k"),
        ("get", "k", "extra"), ("SET", "k", "v", "ex", "100", "ex", "200"), ("TTL", "k"),
        ("SET", "k", "v", "PERSIST"),
    ],
    "setnx_setex": [
        ("SETNX", "a", "1"), ("SETNX", "a", "2"), ("GET", "a"), ("SETEX", "b", "100", "x"), ("TTL", "b"),
        ("SETEX", "b", "0", "x"), ("SETEX", "b", "-1", "x"), ("SETEX", "b", "x", "x"),
        ("PSETEX", "c", "100000", "y"), ("PSETEX", "c", "0", "y"), ("GETSET", "a", "3"), ("GETSET", "zz", "3"),
    ],
    "mget_mset": [
        ("MSET", "a", "1", "b", "2"), ("MGET", "a", "b", "c"), ("MSET", "a"), ("MSET", "a", "1", "b"),
        ("MSETNX", "c", "3", "a", "9"), ("MSETNX", "c", "3", "d", "4"), ("MGET", "a", "c", "d"),
        ("MSETNX", "x"), ("MGET",),
    ],
    "counters": [
        ("INCR", "n"), ("INCRBY", "n", "10"), ("DECR", "n"), ("DECRBY", "n", "5"), ("GET", "n"),
        ("INCRBY", "n", "x"), ("INCRBY", "n", "1.5"), ("INCRBY", "n", " 1"), ("INCRBY", "n", "+1"),
        ("INCRBY", "n", "01"), ("SET", "n", BIG), ("INCR", "n"), ("SET", "n", "-9223372036854775808"),
        ("DECR", "n"), ("DECRBY", "m", "-9223372036854775808"), ("SET", "s", "abc"), ("INCR", "s"),
        ("SET", "s", " 1"), ("INCR", "s"), ("SET", "s", "-0"), ("INCR", "s"), ("SET", "s", "007"),
        ("INCR", "s"), ("INCRBY", "n", "99999999999999999999"),
    ],
    "incrbyfloat": [
        ("INCRBYFLOAT", "f", "1.5"), ("INCRBYFLOAT", "f", "0.1"), ("INCRBYFLOAT", "f", "-3"),
        ("INCRBYFLOAT", "f", "5.0e3"), ("INCRBYFLOAT", "f", "abc"), ("INCRBYFLOAT", "f", "nan"),
        ("INCRBYFLOAT", "f", "inf"), ("INCRBYFLOAT", "f", " 1"), ("SET", "g", "10.50"),
        ("INCRBYFLOAT", "g", "0.1"), ("SET", "g", "3"), ("INCRBYFLOAT", "g", "0.2"),
        ("INCRBYFLOAT", "z", "0.1"), ("INCRBYFLOAT", "z", "0.2"), ("SET", "h", "x"),
        ("INCRBYFLOAT", "h", "1"), ("INCRBYFLOAT", "i", "1e2"), ("INCRBYFLOAT", "i", "-100"),
    ],
    "append_range": [
        ("APPEND", "s", "Hello"), ("APPEND", "s", " World"), ("STRLEN", "s"), ("STRLEN", "none"),
        ("GETRANGE", "s", "0", "4"), ("GETRANGE", "s", "-5", "-1"), ("GETRANGE", "s", "5", "1"),
        ("GETRANGE", "s", "-1", "-5"), ("GETRANGE", "s", "0", "100"), ("GETRANGE", "s", "-100", "2"),
        ("GETRANGE", "none", "0", "1"), ("GETRANGE", "s", "a", "1"), ("SETRANGE", "s", "6", "Redis"),
        ("GET", "s"), ("SETRANGE", "p", "5", "x"), ("GET", "p"), ("SETRANGE", "q", "0", ""),
        ("EXISTS", "q"), ("SETRANGE", "s", "-1", "x"), ("SETRANGE", "s", "3", ""),
        ("SETRANGE", "s", "536870912", "x"), ("SUBSTR", "s", "0", "2"),
    ],
    "getdel_getex": [
        ("SET", "a", "1"), ("GETDEL", "a"), ("GETDEL", "a"), ("SET", "b", "2"), ("GETEX", "b", "EX", "100"),
        ("TTL", "b"), ("GETEX", "b", "PERSIST"), ("TTL", "b"), ("GETEX", "b", "EX", "0"),
        ("GETEX", "b", "FOO"), ("GETEX", "b", "PERSIST", "EX", "10"), ("GETEX", "none"),
        ("GETEX", "b", "PXAT", "1"), ("EXISTS", "b"), ("GETEX", "b", "KEEPTTL"),
    ],
    "keys_generic": [
        ("MSET", "a", "1", "b", "2", "c", "3"), ("DEL", "a", "b", "x"), ("EXISTS", "a", "c", "c"),
        ("UNLINK", "c"), ("TYPE", "c"), ("SET", "s", "v"), ("TYPE", "s"), ("RENAME", "s", "t"),
        ("GET", "t"), ("RENAME", "nokey", "t"), ("RENAME", "t", "t"), ("SET", "u", "1"),
        ("RENAMENX", "t", "u"), ("RENAMENX", "t", "v"), ("RENAMENX", "v", "v"), ("RENAMENX", "zz", "v"),
        ("DBSIZE",), ("KEYS", "*"), ("FLUSHDB", "bogus"), ("FLUSHDB", "ASYNC"), ("DBSIZE",),
        ("RANDOMKEY",), ("FLUSHALL", "SYNC"), ("DEL",),
    ],
    "keys_pattern": [
        ("MSET", "hello", "1", "hallo", "1", "hxllo", "1", "hllo", "1", "heeeello", "1", "h[ll]o", "1"),
        ("KEYS", "h?llo"), ("KEYS", "h*llo"), ("KEYS", "h[ae]llo"), ("KEYS", "h[^e]llo"),
        ("KEYS", "h[a-b]llo"), ("KEYS", "h\\[ll\\]o"), ("KEYS", "nomatch*"),
    ],
    "expire": [
        ("SET", "k", "v"), ("EXPIRE", "k", "100"), ("TTL", "k"), ("EXPIRE", "k", "50", "NX"),
        ("EXPIRE", "k", "50", "XX"), ("TTL", "k"), ("EXPIRE", "k", "40", "GT"), ("EXPIRE", "k", "60", "GT"),
        ("TTL", "k"), ("EXPIRE", "k", "70", "LT"), ("EXPIRE", "k", "30", "LT"), ("TTL", "k"),
        ("EXPIRE", "k", "1", "NX", "XX"), ("EXPIRE", "k", "1", "GT", "LT"), ("EXPIRE", "k", "1", "FOO"),
        ("PERSIST", "k"), ("PERSIST", "k"), ("TTL", "k"), ("EXPIRE", "k", "10", "XX"),
        ("EXPIRE", "k", "10", "GT"), ("EXPIRE", "k", "10", "LT"), ("TTL", "k"), ("EXPIRE", "nokey", "10"),
        ("TTL", "nokey"), ("PTTL", "nokey"), ("EXPIRETIME", "nokey"), ("PERSIST", "nokey"),
        ("PEXPIREAT", "k", "99999999999999"), ("PEXPIRETIME", "k"), ("EXPIRETIME", "k"),
        ("EXPIREAT", "k", "9999999999"), ("EXPIRETIME", "k"), ("EXPIRE", "k", BIG),
        ("PEXPIRE", "k", BIG), ("EXPIRE", "k", "x"), ("EXPIRE", "k", "-1"), ("EXISTS", "k"),
        ("SET", "k", "v"), ("PEXPIREAT", "k", "1"), ("EXISTS", "k"), ("SET", "k", "v"),
        ("PEXPIREAT", "k", "99999999999500"), ("EXPIRETIME", "k"),
    ],
    "scan": [
        ("SCAN", "0", "COUNT", "0"), ("SCAN", "x"), ("SCAN", "0", "FOO"), ("SCAN", "-1"),
        ("SCAN", "0", "MATCH"), ("SCAN", "0", "COUNT", "x"),
    ],
    "wrongtype_unknown": [
        ("FOO",), ("FOO", "a", "b"), ("foo\r\nbar",), ("GET",), ("PING", "a", "b"),
        ("CONFIG",), ("CONFIG", "FOO"), ("OBJECT", "FOO", "k"), ("OBJECT", "ENCODING"),
        ("CLIENT", "FOO"), ("ECHO",), ("ECHO", "hi"), ("PING",), ("PING", "x"),
    ],
    "select": [
        ("SELECT", "1"), ("SET", "a", "1"), ("SELECT", "0"), ("GET", "a"), ("SELECT", "16"),
        ("SELECT", "-1"), ("SELECT", "x"), ("SELECT", "99999999999"), ("SELECT", "1"), ("GET", "a"),
        ("DBSIZE",), ("FLUSHALL",),
    ],
    "object_encoding": [
        ("SET", "i", "12345"), ("OBJECT", "ENCODING", "i"), ("SET", "e", "hello"),
        ("OBJECT", "ENCODING", "e"), ("SET", "r", "x" * 45), ("OBJECT", "ENCODING", "r"),
        ("SET", "b", "x" * 44), ("OBJECT", "ENCODING", "b"), ("OBJECT", "ENCODING", "none"),
        ("SET", "big", "99999999999999999999"), ("OBJECT", "ENCODING", "big"),
        ("SET", "neg", "-5"), ("OBJECT", "ENCODING", "neg"), ("OBJECT", "REFCOUNT", "none"),
    ],
    "restore_errors": [
        ("SET", "k", "v"), ("RESTORE", "k", "0", "junk"), ("RESTORE", "new", "0", "junk"),
        ("RESTORE", "new", "-1", "junk"), ("RESTORE", "new", "x", "junk"),
        ("RESTORE", "new", "0", "junk", "FOO"), ("RESTORE", "new", "0", "junk", "IDLETIME", "-1"),
        ("RESTORE", "new", "0", "junk", "FREQ", "300"), ("DUMP", "none"),
        ("RESTORE", "new", "0", b"\x00\x05hello\n\x00cr\xdfve4 \n"), ("GET", "new"),
        ("RESTORE", "new", "0", b"\x00\x05hello\n\x00cr\xdfve4 \n"),
        ("RESTORE", "new", "0", b"\x00\x05hello\n\x00cr\xdfve4 \x00"),
        ("RESTORE", "new", "0", b"\x00\x05hello\n\x00cr\xdfve4 \n", "REPLACE"),
        ("RESTORE", "old", "1", b"\x00\x05hello\n\x00cr\xdfve4 \n", "ABSTTL"), ("EXISTS", "old"),
        ("RESTORE", "n2", "0", b"\x00\x05hello\x0b\x00\x1a\x1b\x8a\x8f\x12\xcb\xdd\x9e"),
    ],
    "wrongtype": [
        ("SET", "s", "v"), ("DEL", "s"), ("RESTORE", "l", "0", LIST_PAYLOAD),
        ("TYPE", "l"), ("GET", "l"), ("APPEND", "l", "x"), ("INCR", "l"), ("STRLEN", "l"),
        ("SET", "l", "x", "GET"), ("MGET", "l"), ("GETRANGE", "l", "0", "1"), ("GETDEL", "l"),
        ("SETRANGE", "l", "0", "x"), ("INCRBYFLOAT", "l", "1"), ("GETEX", "l"),
        ("OBJECT", "ENCODING", "l"), ("SET", "l", "x"), ("TYPE", "l"),
    ],
    "multi": [
        ("EXEC",), ("DISCARD",), ("MULTI",), ("MULTI",), ("SET", "a", "1"), ("INCR", "a"),
        ("GET", "a"), ("EXEC",), ("MULTI",), ("SET", "a"), ("EXEC",), ("MULTI",), ("FOO",),
        ("EXEC",), ("MULTI",), ("SET", "s", "x"), ("INCR", "s"), ("GET", "s"), ("EXEC",),
        ("MULTI",), ("SET", "a", "9"), ("DISCARD",), ("GET", "a"), ("WATCH", "a"), ("UNWATCH",),
        ("MULTI",), ("WATCH", "a"), ("DISCARD",),
    ],
    "hello": [
        ("HELLO", "4"), ("HELLO", "x"), ("HELLO", "2", "FOO"), ("CLIENT", "SETNAME", "a b"),
        ("CLIENT", "SETNAME", "good"), ("CLIENT", "GETNAME"), ("HELLO", "3", "SETNAME", "x y"),
    ],
    "config": [
        ("CONFIG", "GET", "databases"), ("CONFIG", "GET", "save"), ("CONFIG", "GET", "appendonly"),
        ("CONFIG", "GET", "proto-max-bulk-len"), ("CONFIG", "GET", "nonsense"),
        ("CONFIG", "SET", "nonsense", "1"), ("CONFIG", "SET", "databases", "3"),
        ("CONFIG", "SET", "hz"), ("CONFIG", "GET"), ("CONFIG", "RESETSTAT"),
        ("CLIENT", "SETNAME", "x"), ("CLIENT", "GETNAME"), ("CLIENT", "SETNAME", ""),
        ("CLIENT", "GETNAME"), ("COMMAND", "FOO"), ("COMMAND", "INFO", "nonsense"),
        ("BGSAVE", "FOO"), ("SHUTDOWN", "FOO"), ("LASTSAVE", "x"), ("TIME", "x"),
    ],
    "resp3": [
        ("SET", "f", "1"), ("INCRBYFLOAT", "f", "1.5"), ("HELLO_3",), ("GET", "missing"),
        ("MGET", "f", "missing"), ("EXISTS", "f"), ("TYPE", "f"), ("CONFIG", "GET", "databases"),
        ("SCAN", "0", "COUNT", "100"), ("TIME_LEN",), ("EXEC",), ("MULTI",), ("GET", "f"), ("EXEC",),
    ],
}


def _run(port: int, script) -> list[bytes]:
    out = []
    with contextlib.closing(RawClient(port)) as c:
        for cmd in script:
            if cmd == ("HELLO_3",):
                c.call("HELLO", "3")  # server-specific map: not compared
                out.append(b"(hello)")
                continue
            if cmd == ("TIME_LEN",):
                reply = c.call("TIME")
                out.append(reply[:4])
                continue
            reply = c.call(*cmd)
            if cmd[0] == "KEYS":  # hash-table order differs: compare as a sorted list
                lines = reply.split(b"\r\n")
                items = sorted(zip(lines[1:-1:2], lines[2:-1:2]))
                reply = lines[0] + b"".join(b"|" + a + b"|" + b for a, b in items)
            out.append(reply)
    return out


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_same_replies_as_redis7(name, node, redis7):  # noqa: F811
    node.reset()
    redis7.reset()
    script = SCRIPTS[name]
    ours = _run(node.port, script)
    theirs = _run(redis7.port, script)
    mismatches = [(cmd, o, t) for cmd, o, t in zip(script, ours, theirs) if o != t]
    assert not mismatches, "\n".join(f"{cmd!r}: node {o!r} redis {t!r}" for cmd, o, t in mismatches)


PROTOCOL_CASES = {
    "inline": [b"PING\r\n", b"SET a \"hello world\"\r\n", b"GET a\r\n", b"  \r\n", b"ECHO 'it''s'\r\n",
               b"ECHO \"\\x41\\n\"\r\n", b"GET a\n"],
    "empty_multibulk": [b"*0\r\n", b"*-1\r\n", b"PING\r\n"],
    "bad_bulk": [b"*1\r\n:3\r\n"],
    "bad_count": [b"*x\r\n"],
    "bad_len": [b"*1\r\n$-5\r\n"],
    "huge_len": [b"*1\r\n$1000000000000\r\n"],
    "quotes": [b"ECHO \"unterminated\r\n"],
    "close_quote": [b"ECHO \"a\"b\r\n"],
}


@pytest.mark.parametrize("name", sorted(PROTOCOL_CASES))
def test_protocol_replies_as_redis7(name, node, redis7):  # noqa: F811
    def run(port):
        with contextlib.closing(RawClient(port)) as c:
            for chunk in PROTOCOL_CASES[name]:
                c.send(chunk)
            c.closed(timeout=1.0)
            return c.buf

    assert run(node.port) == run(redis7.port)
