"""Hostile clients: malformed RESP, huge declared lengths, oversize inline
requests, slow senders, many connections. The node answers with an error or
closes the connection, its memory stays bounded, and it keeps serving others."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest

from nodes import RawClient, node  # noqa: F401  (fixture)

MiB = 1024 * 1024


def _still_serves(n) -> None:
    with contextlib.closing(n.raw()) as c:
        assert c.call("SET", "alive", "yes") == b"+OK\r\n"
        assert c.call("GET", "alive") == b"$3\r\nyes\r\n"


@pytest.mark.parametrize("data, error", [
    (b"*1\r\n$1000000000000\r\n", b"invalid bulk length"),
    (b"*1\r\n$-3\r\n", b"invalid bulk length"),
    (b"*1\r\n$x\r\n", b"invalid bulk length"),
    (b"*1\r\n:5\r\n", b"expected '$', got ':'"),
    (b"*abc\r\n", b"invalid multibulk length"),
    (b"*99999999999\r\n", b"invalid multibulk length"),
    (b"ECHO \"open\r\n", b"unbalanced quotes in request"),
    (b"*1\r\n$" + b"1" * 70000, b"too big bulk count string"),
    (b"*" + b"1" * 70000, b"too big mbulk count string"),
    (b"GET " + b"a" * 70000, b"too big inline request"),
])
def test_protocol_errors_reply_and_close(node, data, error):  # noqa: F811
    with contextlib.closing(node.raw()) as c:
        c.send(data)
        assert c.closed(timeout=10)
        assert c.buf == b"-ERR Protocol error: " + error + b"\r\n"
    _still_serves(node)


def test_huge_declared_sizes_cost_nothing(node):  # noqa: F811
    node.reset()
    before = node.rss()
    conns = []
    for _ in range(50):
        c = node.raw()
        # 1e9 arguments of 512 MB each, declared but never sent.
        c.send(b"*1000000000\r\n$536870912\r\nabc")
        conns.append(c)
    time.sleep(0.3)
    _still_serves(node)
    assert node.rss() - before < 50 * MiB
    for c in conns:
        c.close()


def test_big_bulk_sent_slowly_is_accepted_with_bounded_memory(node):  # noqa: F811
    node.reset()
    before = node.rss()
    value = b"z" * (4 * MiB)
    with contextlib.closing(node.raw(timeout=30)) as slow:
        slow.send(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % len(value))
        for i in range(0, len(value), 256 * 1024):
            slow.send(value[i:i + 256 * 1024])
            _still_serves(node)  # others are served between the slow sender's chunks
        slow.send(b"\r\n")
        assert slow.reply() == b"+OK\r\n"
    with contextlib.closing(node.raw()) as c:
        assert c.call("STRLEN", "big") == b":%d\r\n" % len(value)
    assert node.rss() - before < 50 * MiB


def test_byte_by_byte_sender(node):  # noqa: F811
    node.reset()
    request = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    with contextlib.closing(node.raw()) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(request)):
            c.send(request[i:i + 1])
        assert c.reply() == b"+OK\r\n" and c.reply() == b"$5\r\nhello\r\n"


def test_random_garbage_never_kills_the_node(node):  # noqa: F811
    import random

    rng = random.Random(7)
    pieces = [b"*", b"$", b"\r\n", b"-1", b"3", b"999999999999", b"SET", b"\"", b"'", b"\\x4",
              b"\x00", b"\xff", b" ", b"\n", b"GET", b"*2", b"$3"]
    for _ in range(200):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
        with contextlib.closing(node.raw(timeout=5)) as c:
            with contextlib.suppress(OSError):
                c.send(data)
            with contextlib.suppress(OSError):
                c.sock.shutdown(socket.SHUT_WR)
                c.closed(timeout=2)
    _still_serves(node)
    assert node.process.poll() is None


def test_many_connections_and_a_client_that_never_reads(node):  # noqa: F811
    node.reset()
    before = node.rss()
    conns = [node.raw() for _ in range(300)]
    for i, c in enumerate(conns[:50]):
        assert c.call("PING") == b"+PONG\r\n"
    # A client that pipelines many requests for a big value and never reads the replies.
    with contextlib.closing(node.raw()) as c:
        c.call("SET", "v", "x" * MiB)
    lazy = node.raw()
    lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    request = b"*2\r\n$3\r\nGET\r\n$1\r\nv\r\n" * 64
    lazy.sock.settimeout(0.2)
    with contextlib.suppress(OSError):
        for _ in range(50):
            lazy.send(request)
    _still_serves(node)
    assert node.rss() - before < 200 * MiB
    lazy.close()
    for c in conns:
        c.close()
    _still_serves(node)
