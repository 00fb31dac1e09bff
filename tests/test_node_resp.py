"""The node's sans-I/O RESP parser and reply encoders (no sockets)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rdbkit.errors import ProtocolError
from rdbkit.node.keyspace import Keyspace
from rdbkit.node.resp import (
    NULL_ARRAY,
    ErrorReply,
    Push,
    RequestParser,
    SimpleString,
    Verbatim,
    encode_reply,
    split_args,
)


def _encode(argv):
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)


def _parse_all(parser, data):
    parser.feed(data)
    out = []
    while (argv := parser.pop()) is not None:
        out.append(argv)
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=5), min_size=1, max_size=5),
       st.data())
def test_any_split_gives_the_same_commands(commands, data):
    stream = b"".join(_encode(c) for c in commands)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    parser = RequestParser()
    got = []
    last = 0
    for cut in cuts + [len(stream)]:
        got += _parse_all(parser, stream[last:cut])
        last = cut
    assert got == commands
    assert not parser.in_request


def test_inline_and_empty_requests():
    parser = RequestParser()
    assert _parse_all(parser, b"SET a \"b c\\n\" 'd\\'e'\r\n\r\n*0\r\nGET a\n") == [
        [b"SET", b"a", b"b c\n", b"d'e"], [b"GET", b"a"]]
    assert split_args(b"\"\\x41\\x4g\"") == [b"Ax4g"]
    assert split_args(b"\"abc") is None and split_args(b"'a'b") is None


def test_declared_sizes_are_not_allocated():
    parser = RequestParser()
    parser.feed(b"*2147483647\r\n$536870912\r\nab")
    assert parser.pop() is None and parser.buffered < 64
    for bad in (b"*2147483648\r\n", b"*1\r\n$536870913\r\n", b"*1\r\n$-1\r\n"):
        with pytest.raises(ProtocolError):
            _parse_all(RequestParser(), bad)


def test_limits_on_lines_and_query_buffer():
    with pytest.raises(ProtocolError, match="too big inline request"):
        _parse_all(RequestParser(), b"x" * (64 * 1024 + 1))
    assert _parse_all(RequestParser(), b"x" * 1000) == []  # not complete yet, not refused
    with pytest.raises(ProtocolError, match="query buffer"):
        RequestParser(max_query_buffer=100).feed(b"*1\r\n$200\r\n" + b"a" * 100)
    parser = RequestParser()
    with pytest.raises(ProtocolError):
        _parse_all(parser, b"*1\r\n:1\r\n")
    with pytest.raises(ProtocolError):
        parser.feed(b"PING\r\n")  # a failed parser stays failed


@pytest.mark.parametrize("value, resp2, resp3", [
    (SimpleString("OK"), b"+OK\r\n", b"+OK\r\n"),
    (ErrorReply("ERR x\r\ny"), b"-ERR x  y\r\n", b"-ERR x  y\r\n"),
    (5, b":5\r\n", b":5\r\n"),
    (True, b":1\r\n", b"#t\r\n"),
    (b"ab", b"$2\r\nab\r\n", b"$2\r\nab\r\n"),
    (None, b"$-1\r\n", b"_\r\n"),
    (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
    (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
    (float("inf"), b"$3\r\ninf\r\n", b",inf\r\n"),
    ([b"a", [1, None]], b"*2\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n", b"*2\r\n$1\r\na\r\n*2\r\n:1\r\n_\r\n"),
    ({b"k": 1}, b"*2\r\n$1\r\nk\r\n:1\r\n", b"%1\r\n$1\r\nk\r\n:1\r\n"),
    ({b"m"}, b"*1\r\n$1\r\nm\r\n", b"~1\r\n$1\r\nm\r\n"),
    (Push([b"x"]), b"*1\r\n$1\r\nx\r\n", b">1\r\n$1\r\nx\r\n"),
    (Verbatim(b"hi"), b"$2\r\nhi\r\n", b"=6\r\ntxt:hi\r\n"),
])
def test_reply_encoding(value, resp2, resp3):
    assert encode_reply(value, False) == resp2
    assert encode_reply(value, True) == resp3


def test_keyspace_expiry_and_dirty_counter():
    ks = Keyspace(2)
    db = ks[0]
    db.set(b"a", b"1", expire_at_ms=1)
    db.set(b"b", b"2", expire_at_ms=10**15)
    db.set(b"c", b"3")
    assert ks.dirty == 3
    assert db.get(b"a") is None and ks.expired_keys == 1  # lazy
    db.set(b"d", b"4", expire_at_ms=5)
    db.set_expire(b"c", 7)
    db.persist(b"c")  # the heap item for c is stale now and must be skipped
    assert ks.expire_cycle(now=100) == 1 and set(db.data) == {b"b", b"c"}
    assert db.ttl_ms(b"b") == 10**15 and db.ttl_ms(b"c") is None
    with pytest.raises(ErrorReply, match="WRONGTYPE"):
        db.get_typed(b"b", "list")
