"""A plain Redis-protocol client connection, for capture and restore.

Why not redis-py: a replica link reads a raw RDB stream after a status line,
pipelined DUMP/RESTORE wants batches written and read in bulk, and every
read must obey one explicit timeout (redis-py's short default timeouts and
retries are wrong for multi-GB transfers). This is a socket with a receive
buffer, RESP2/RESP3 reply parsing, AUTH/ACL login, TLS and SELECT.

TLS (``rediss://``): without an explicit ``tls_context``, the context
verifies the server against the system CAs plus ``$RDBKIT_TLS_CA`` (a CA
file) and presents ``$RDBKIT_TLS_CERT``/``$RDBKIT_TLS_KEY`` as the client
certificate when set (redis' default ``tls-auth-clients yes`` wants one).
The CLI's ``--tls-ca``/``--tls-cert``/``--tls-key`` set those variables.

Timeouts: ``connect_timeout`` bounds connecting; ``timeout`` bounds each
blocking read or write (None waits forever). A timeout or a dropped
connection raises ConnectionLostError; an error reply from the server is a
ReplyError (raised by :meth:`call`, returned in place by :meth:`pipeline`).
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterable, Sequence
from typing import Any

from rdbkit.codec.commands import encode_command
from rdbkit.errors import ProtocolError, RdbkitError
from rdbkit.urls import RedisClusterUrl, RedisUrl

#: Bytes asked of the socket per recv.
RECV_SIZE = 1 << 18
#: Longest status/error/integer line accepted (a hostile server cannot make us buffer more).
MAX_LINE = 64 * 1024
#: Longest bulk string accepted in a reply (redis' own proto-max-bulk-len default).
MAX_BULK = 512 * 1024 * 1024
#: Deepest nesting of aggregate replies.
MAX_DEPTH = 32


class ConnectionLostError(RdbkitError):
    """The connection to a node failed, closed or timed out."""


class ReplyError(RdbkitError):
    """The server answered with an error reply (``-ERR ...``); ``code`` is its first word."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = message.split(" ", 1)[0] if message else ""


def default_tls_context() -> ssl.SSLContext:
    """The TLS context for ``rediss://`` (see the module docstring for the variables)."""
    context = ssl.create_default_context(cafile=os.environ.get("RDBKIT_TLS_CA") or None)
    cert = os.environ.get("RDBKIT_TLS_CERT")
    if cert:
        context.load_cert_chain(cert, os.environ.get("RDBKIT_TLS_KEY") or None)
    return context


def _arg(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value).encode()
    raise TypeError(f"cannot send {type(value).__name__} as a command argument")


def command(*args: Any) -> bytes:
    """One command as RESP (str, bytes, int and float arguments)."""
    return encode_command(_arg(a) for a in args)


class Connection:
    """One connection to one node; not thread-safe (use one per thread)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        tls: bool = False,
        tls_context: ssl.SSLContext | None = None,
        timeout: float | None = 30.0,
        connect_timeout: float = 10.0,
        client_name: str | None = "rdbkit",
    ) -> None:
        """Connect, log in (AUTH) and select ``db``; ConnectionLostError or ReplyError if that fails."""
        self.host = host
        self.port = port
        self.timeout = timeout
        self._buf = bytearray()
        self._pos = 0
        try:
            sock = socket.create_connection((host, port), timeout=connect_timeout)
        except OSError as exc:
            raise ConnectionLostError(f"cannot connect to {self}: {exc}") from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls:
                context = tls_context or default_tls_context()
                sock = context.wrap_socket(sock, server_hostname=host)
            sock.settimeout(timeout)
        except (OSError, ssl.SSLError) as exc:
            sock.close()
            raise ConnectionLostError(f"TLS handshake with {self} failed: {exc}") from exc
        self.sock = sock
        try:
            if password is not None:
                self.call("AUTH", *([username] if username else []), password)
            if client_name:
                try:
                    self.call("CLIENT", "SETNAME", client_name)
                except ReplyError:
                    pass  # CLIENT renamed or refused: the name is only a courtesy
            if db:
                self.call("SELECT", db)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_url(cls, url: RedisUrl | RedisClusterUrl, **options: Any) -> Connection:
        db = url.db if isinstance(url, RedisUrl) else 0
        return cls(url.host, url.port, username=url.username, password=url.password, db=db,
                   tls=url.tls, **options)

    def __repr__(self) -> str:
        return f"Connection({self.host}:{self.port})"

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:
            self.sock = None
            try:
                sock.close()
            except OSError:
                pass

    def settimeout(self, timeout: float | None) -> None:
        self.timeout = timeout
        if self.sock is not None:
            self.sock.settimeout(timeout)

    # -- writing -----------------------------------------------------------------

    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Write raw bytes (already RESP)."""
        if self.sock is None:
            raise ConnectionLostError(f"connection to {self} is closed")
        try:
            self.sock.sendall(data)
        except (OSError, ssl.SSLError) as exc:
            raise ConnectionLostError(f"writing to {self} failed: {exc}") from exc

    def call(self, *args: Any) -> Any:
        """Send one command and return its reply; an error reply raises ReplyError."""
        self.send(command(*args))
        reply = self.read_reply()
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def pipeline(self, commands: Iterable[Sequence[Any] | bytes]) -> list[Any]:
        """Send every command in one write, then read one reply each (errors in place)."""
        encoded = [c if isinstance(c, bytes) else command(*c) for c in commands]
        self.send(b"".join(encoded))
        return [self.read_reply() for _ in encoded]

    # -- reading -----------------------------------------------------------------

    def _fill(self) -> None:
        """Read more bytes into the buffer; ConnectionLostError on EOF or timeout."""
        if self.sock is None:
            raise ConnectionLostError(f"connection to {self} is closed")
        if self._pos > RECV_SIZE and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0
        try:
            data = self.sock.recv(RECV_SIZE)
        except socket.timeout as exc:
            raise ConnectionLostError(f"{self} sent nothing for {self.timeout} s") from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectionLostError(f"reading from {self} failed: {exc}") from exc
        if not data:
            raise ConnectionLostError(f"{self} closed the connection")
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed."""
        return len(self._buf) - self._pos

    def read_line(self, limit: int = MAX_LINE) -> bytes:
        """One CRLF-terminated line, without the CRLF."""
        while True:
            end = self._buf.find(b"\r\n", self._pos)
            if end >= 0:
                if end - self._pos > limit:
                    break
                line = bytes(self._buf[self._pos : end])
                self._pos = end + 2
                return line
            if len(self._buf) - self._pos > limit:
                break
            self._fill()
        raise ProtocolError(f"{self} sent a line longer than {limit} bytes")

    def read_exact(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n:
            self._fill()
        data = bytes(self._buf[self._pos : self._pos + n])
        self._pos += n
        return data

    def read_some(self, limit: int = RECV_SIZE) -> bytes:
        """Whatever is buffered (up to ``limit``), else one recv's worth."""
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
            self._fill()
        end = min(len(self._buf), self._pos + limit)
        data = bytes(self._buf[self._pos : end])
        self._pos = end
        return data

    def read_reply(self, _depth: int = 0) -> Any:
        """One reply: str for status, int, bytes or None for bulk, list for arrays,
        a ReplyError instance for an error reply (returned, not raised)."""
        if _depth > MAX_DEPTH:
            raise ProtocolError(f"{self} sent replies nested deeper than {MAX_DEPTH}")
        line = self.read_line()
        if not line:
            raise ProtocolError(f"{self} sent an empty reply line")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", "replace")
        if kind == b"-":
            return ReplyError(rest.decode("utf-8", "replace"))
        if kind in (b":", b"("):
            return self._int(rest)
        if kind in (b"$", b"=", b"!"):
            n = self._int(rest)
            if n < 0:
                return None
            if n > MAX_BULK:
                raise ProtocolError(f"{self} announced a {n}-byte bulk reply (limit {MAX_BULK})")
            data = self.read_exact(n + 2)
            if data[-2:] != b"\r\n":
                raise ProtocolError(f"{self} sent a bulk reply without its CRLF")
            if kind == b"!":
                return ReplyError(data[:-2].decode("utf-8", "replace"))
            return data[:-2]
        if kind in (b"*", b"~", b">", b"%", b"|"):
            n = self._int(rest)
            if n < 0:
                return None
            items = n * 2 if kind in (b"%", b"|") else n
            values = [self.read_reply(_depth + 1) for _ in range(items)]
            if kind == b"%":
                return dict(zip(values[::2], values[1::2]))
            if kind == b"|":  # attributes: skip, the reply follows
                return self.read_reply(_depth)
            return values
        if kind == b"_":
            return None
        if kind == b"#":
            return rest == b"t"
        if kind == b",":
            return float(rest)
        raise ProtocolError(f"{self} sent an unknown reply type {kind!r}")

    def _int(self, text: bytes) -> int:
        try:
            return int(text)
        except ValueError:
            raise ProtocolError(f"{self} sent {text[:40]!r} where a number belongs") from None
