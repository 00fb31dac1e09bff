"""RESP for the node, without I/O: a request parser and reply encoders.

``RequestParser`` takes bytes as they arrive (``feed``) and hands out whole
commands as argv lists (``pop``); a request that breaks the protocol raises
``ProtocolError`` whose message is what redis says after ``-ERR Protocol
error: `` (the caller replies that and closes the connection).

Limits, as facts from redis' ``src/networking.c``/``src/config.c`` (7.0):

- a request that starts with ``*`` is a multibulk; anything else is an inline
  command, one line split like a shell (quotes and ``\\x`` escapes);
- an inline line, a ``*count`` line or a ``$len`` line with no CRLF after
  64 KiB (``PROTO_INLINE_MAX_SIZE``) is refused (``too big inline request``,
  ``too big mbulk count string``, ``too big bulk count string``);
- a multibulk count that is not a number or above ``INT_MAX`` is ``invalid
  multibulk length``; zero or negative counts are empty requests (ignored);
- a bulk length that is not a number, negative or above
  ``proto-max-bulk-len`` (512 MiB) is ``invalid bulk length``;
- the two bytes after a bulk's payload are skipped, not checked.

Memory: the parser never allocates what a request merely declares. A bulk's
bytes are collected only as they arrive, and argv grows one argument at a
time, so a ``*1000000000`` or ``$1000000000000`` header costs nothing until
the client actually sends the data (bounded again by ``max_query_buffer``).

Replies: ``encode_reply(value, resp3)`` turns the Python values command
handlers return into RESP2 or RESP3 bytes (see the table on that function).
"""

from __future__ import annotations

import math

from rdbkit.errors import ProtocolError

#: Longest inline request / count line (redis' PROTO_INLINE_MAX_SIZE).
PROTO_INLINE_MAX_SIZE = 64 * 1024
#: Default largest bulk string (redis' proto-max-bulk-len).
DEFAULT_MAX_BULK_LEN = 512 * 1024 * 1024
#: Largest multibulk count (INT_MAX).
MAX_MULTIBULK_LEN = 2**31 - 1
#: Default bound on the bytes one client may have buffered and unparsed
#: (redis' client-query-buffer-limit, 1 GiB).
DEFAULT_MAX_QUERY_BUFFER = 1024 * 1024 * 1024


class RequestParser:
    """Incremental RESP request parser: ``feed(bytes)``, then ``pop()`` until None.

    State survives between feeds, so a request split anywhere (even inside a
    length line) parses the same as one sent whole. After a ``ProtocolError``
    the parser is unusable: the connection must close.
    """

    __slots__ = ("_buf", "_pos", "_argv", "_remaining", "_bulk_len", "max_bulk_len",
                 "max_query_buffer", "_failed")

    def __init__(self, *, max_bulk_len: int = DEFAULT_MAX_BULK_LEN,
                 max_query_buffer: int = DEFAULT_MAX_QUERY_BUFFER) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._argv: list[bytes] | None = None  # the multibulk being collected
        self._remaining = 0  # arguments still expected for _argv
        self._bulk_len = -1  # length of the bulk being collected, -1 = read its header
        self.max_bulk_len = max_bulk_len
        self.max_query_buffer = max_query_buffer
        self._failed = False

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed (what a client costs us right now)."""
        return len(self._buf) - self._pos

    @property
    def in_request(self) -> bool:
        """True while a request is partly received."""
        return self._argv is not None or self.buffered > 0

    def feed(self, data: bytes) -> None:
        if self._failed:
            raise ProtocolError("parser already failed")
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        self._buf += data
        if len(self._buf) - self._pos > self.max_query_buffer:
            self._failed = True
            raise ProtocolError("client query buffer exceeds the limit")

    def pop(self) -> list[bytes] | None:
        """The next complete command, or None when the buffered bytes hold none yet."""
        try:
            while True:
                if self._argv is None:
                    if self._pos >= len(self._buf):
                        self._compact()
                        return None
                    if self._buf[self._pos] == 42:  # '*'
                        if not self._start_multibulk():
                            self._compact()
                            return None
                        if self._argv is None:
                            continue  # empty multibulk: nothing to run
                    else:
                        argv = self._inline()
                        if argv is None:
                            self._compact()
                            return None
                        if argv:
                            return argv
                        continue
                argv = self._collect_bulks()
                if argv is None:
                    self._compact()
                    return None
                return argv
        except ProtocolError:
            self._failed = True
            raise

    def _compact(self) -> None:
        # Drop consumed bytes once they dominate the buffer (amortised O(n)).
        if self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0

    def _line(self, too_big: str) -> bytes | None:
        """One CRLF line from _pos (without CRLF), or None if not all here yet."""
        buf = self._buf
        end = buf.find(b"\r\n", self._pos, self._pos + PROTO_INLINE_MAX_SIZE + 2)
        if end < 0:
            if len(buf) - self._pos > PROTO_INLINE_MAX_SIZE:
                raise ProtocolError(too_big)
            return None
        line = bytes(buf[self._pos:end])
        self._pos = end + 2
        return line

    def _start_multibulk(self) -> bool:
        buf = self._buf
        pos = self._pos
        end = buf.find(b"\r\n", pos, pos + PROTO_INLINE_MAX_SIZE + 2)
        if end < 0:
            if len(buf) - pos > PROTO_INLINE_MAX_SIZE:
                raise ProtocolError("too big mbulk count string")
            return False
        digits = buf[pos + 1:end]
        if 0 < len(digits) < 10 and digits.isdigit() and (digits[0] != 48 or len(digits) == 1):
            count = int(digits)
        else:
            count = _parse_int(bytes(digits))
            if count is None or count > MAX_MULTIBULK_LEN:
                raise ProtocolError("invalid multibulk length")
        self._pos = end + 2
        if count > 0:
            self._argv = []
            self._remaining = count
            self._bulk_len = -1
        return True

    def _collect_bulks(self) -> list[bytes] | None:
        # The hot path: locals, one find per header, state written back on exit.
        buf = self._buf
        argv = self._argv
        assert argv is not None
        pos = self._pos
        size = len(buf)
        remaining = self._remaining
        n = self._bulk_len
        try:
            while remaining:
                if n < 0:
                    if pos >= size:
                        return None
                    if buf[pos] != 36:  # '$'
                        raise ProtocolError(f"expected '$', got '{chr(buf[pos])}'")
                    end = buf.find(b"\r\n", pos, pos + PROTO_INLINE_MAX_SIZE + 2)
                    if end < 0:
                        if size - pos > PROTO_INLINE_MAX_SIZE:
                            raise ProtocolError("too big bulk count string")
                        return None
                    digits = buf[pos + 1:end]
                    if 0 < len(digits) < 10 and digits.isdigit() and (digits[0] != 48 or len(digits) == 1):
                        n = int(digits)
                    else:
                        n = _parse_int(bytes(digits))
                        if n is None or n < 0:
                            raise ProtocolError("invalid bulk length")
                    if n > self.max_bulk_len:
                        raise ProtocolError("invalid bulk length")
                    pos = end + 2
                if size - pos < n + 2:
                    return None
                argv.append(bytes(buf[pos:pos + n]))
                pos += n + 2
                n = -1
                remaining -= 1
        finally:
            self._pos = pos
            self._remaining = remaining
            self._bulk_len = n
        self._argv = None
        return argv

    def _inline(self) -> list[bytes] | None:
        buf = self._buf
        end = buf.find(b"\n", self._pos, self._pos + PROTO_INLINE_MAX_SIZE + 1)
        if end < 0:
            if len(buf) - self._pos > PROTO_INLINE_MAX_SIZE:
                raise ProtocolError("too big inline request")
            return None
        line = bytes(buf[self._pos:end])
        self._pos = end + 1
        if line.endswith(b"\r"):
            line = line[:-1]
        argv = split_args(line)
        if argv is None:
            raise ProtocolError("unbalanced quotes in request")
        return argv


def _parse_int(text: bytes) -> int | None:
    """A signed decimal as redis' string2ll reads it: no spaces, no '+', at most 20 chars."""
    if not text or len(text) > 20:
        return None
    body = text[1:] if text[:1] == b"-" else text
    if not body.isdigit() or (len(body) > 1 and body[:1] == b"0"):
        return None
    return int(text)


_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = b"0123456789abcdefABCDEF"


def split_args(line: bytes) -> list[bytes] | None:
    """Split an inline request into words like a shell (redis' quoting rules).

    Double quotes allow ``\\n \\r \\t \\b \\a \\xHH`` and ``\\<any>``;
    single quotes allow only ``\\'``. A closing quote must be followed by
    a space or the end. Returns None on unbalanced quotes.
    """
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \n\r\t\v\f\0":
            i += 1
        if i >= n:
            return args
        word = bytearray()
        in_dq = in_sq = False
        while True:
            if in_dq:
                if i >= n:
                    return None
                c = line[i]
                if (c == 92 and i + 3 < n and line[i + 1] == ord("x")
                        and line[i + 2] in _HEX and line[i + 3] in _HEX):
                    word.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    word.append(_ESCAPES.get(line[i], line[i]))
                elif c == 34:
                    if i + 1 < n and line[i + 1] not in b" \n\r\t\v\f\0":
                        return None
                    in_dq = False
                    i += 1
                    break
                else:
                    word.append(c)
            elif in_sq:
                if i >= n:
                    return None
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    word.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in b" \n\r\t\v\f\0":
                        return None
                    in_sq = False
                    i += 1
                    break
                else:
                    word.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in b" \n\r\t\0":
                    break
                if c == 34:
                    in_dq = True
                elif c == 39:
                    in_sq = True
                else:
                    word.append(c)
            i += 1
        args.append(bytes(word))


# --- replies -------------------------------------------------------------------


class SimpleString(str):
    """A status reply (``+OK``)."""

    __slots__ = ()


class ErrorReply(Exception):
    """An error reply; ``str(self)`` is the whole line, code first (``ERR ...``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        # A reply line cannot hold CR or LF: redis turns them into spaces too.
        self.message = message.replace("\r", " ").replace("\n", " ")


class Verbatim(bytes):
    """A RESP3 verbatim string (``=len\\r\\ntxt:...``); a bulk string in RESP2."""

    __slots__ = ()


class Push(list):
    """A RESP3 push; an array in RESP2."""

    __slots__ = ()


class NullArray:
    """RESP2 ``*-1`` (EXEC aborted by WATCH, ...); RESP3 null."""

    __slots__ = ()


class Raw(bytes):
    """Bytes already encoded (written as they are)."""

    __slots__ = ()


OK = SimpleString("OK")
QUEUED = SimpleString("QUEUED")
PONG = SimpleString("PONG")
NULL_ARRAY = NullArray()
#: A handler result that writes nothing (SHUTDOWN closes without a reply).
NO_REPLY = Raw(b"")


def format_double(value: float) -> bytes:
    """A double as redis 7.0 writes it in replies (``%.17g``, ``inf``/``-inf``/``nan``)."""
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if math.isnan(value):
        return b"nan"
    return (b"%.17g" % value)


def encode_reply(value: object, resp3: bool = False) -> bytes:
    """One reply as bytes.

    ============================  ==================  ======================
    Python value                  RESP2               RESP3
    ============================  ==================  ======================
    ``SimpleString``              ``+text``           same
    ``ErrorReply``                ``-text``           same
    ``bool``                      ``:1`` / ``:0``     ``#t`` / ``#f``
    ``int``                       ``:n``              same
    ``bytes``                     ``$len`` bulk       same
    ``str``                       bulk (UTF-8)        same
    ``None``                      ``$-1``             ``_``
    ``NullArray``                 ``*-1``             ``_``
    ``float``                     bulk ``%.17g``      ``,double``
    ``list``/``tuple``            ``*n``              same
    ``Push``                      ``*n``              ``>n``
    ``set``/``frozenset``         ``*n``              ``~n``
    ``dict``                      ``*2n`` flat        ``%n``
    ``Verbatim``                  bulk                ``=len\\r\\ntxt:``
    ``Raw``                       as is               as is
    ============================  ==================  ======================
    """
    out = bytearray()
    _encode_into(out, value, resp3)
    return bytes(out)


def _encode_into(out: bytearray, value: object, resp3: bool) -> None:
    # Iterative over a work stack: reply nesting comes from our own handlers,
    # but a loop keeps it safe for any depth.
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is bytes:
            out += b"$%d\r\n%s\r\n" % (len(v), v)
        elif t is int:
            out += b":%d\r\n" % v
        elif t is SimpleString:
            out += b"+" + v.encode() + b"\r\n"
        elif v is None:
            out += b"_\r\n" if resp3 else b"$-1\r\n"
        elif t is list or t is tuple:
            out += b"*%d\r\n" % len(v)
            stack.extend(reversed(v))
        elif t is bool:
            out += (b"#t\r\n" if v else b"#f\r\n") if resp3 else (b":1\r\n" if v else b":0\r\n")
        elif isinstance(v, ErrorReply):
            out += b"-" + v.message.encode("utf-8", "replace") + b"\r\n"
        elif t is str:
            data = v.encode()
            out += b"$%d\r\n%s\r\n" % (len(data), data)
        elif t is float:
            text = format_double(v)
            out += b",%s\r\n" % text if resp3 else b"$%d\r\n%s\r\n" % (len(text), text)
        elif t is dict:
            out += (b"%%%d\r\n" if resp3 else b"*%d\r\n") % (len(v) if resp3 else 2 * len(v))
            flat: list = []
            for k, item in v.items():
                flat.append(k)
                flat.append(item)
            stack.extend(reversed(flat))
        elif t is set or t is frozenset:
            out += (b"~%d\r\n" if resp3 else b"*%d\r\n") % len(v)
            stack.extend(v)
        elif t is Push:
            out += (b">%d\r\n" if resp3 else b"*%d\r\n") % len(v)
            stack.extend(reversed(v))
        elif t is NullArray:
            out += b"_\r\n" if resp3 else b"*-1\r\n"
        elif t is Verbatim:
            if resp3:
                out += b"=%d\r\ntxt:%s\r\n" % (len(v) + 4, bytes(v))
            else:
                out += b"$%d\r\n%s\r\n" % (len(v), bytes(v))
        elif t is Raw:
            out += v
        elif isinstance(v, int):  # an int subclass (IntEnum...)
            out += b":%d\r\n" % int(v)
        elif isinstance(v, bytes):
            out += b"$%d\r\n%s\r\n" % (len(v), bytes(v))
        else:
            raise TypeError(f"cannot encode {t.__name__} as a reply")
