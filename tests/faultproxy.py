"""A TCP proxy that breaks chosen HTTP/1.1 requests in the middle of their bodies.

Placed between boto3 and an S3 endpoint on a free loopback port, it reads each
request's head (request line and headers) and frames its body by
Content-Length or chunked transfer coding, so it finds every request on a
kept-alive connection. A request the predicate picks -- while cuts remain --
gets only part of its body through; then both connections are reset, as when a
network or a server dies mid-upload. Answers are piped back untouched, unless
``cut_responses`` is set: then a picked request goes through whole and its
answer is cut after its first bytes instead (a download dying mid-body). That
relies on the client not pipelining requests, which HTTP clients (urllib3) don't.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

#: Body bytes a cut request gets through before the reset (or half a shorter body).
CUT_AFTER = 64 * 1024


class FaultProxy:
    """Proxy to ``upstream`` (``http://host:port``); cut ``cuts`` picked requests (None: all).

    ``predicate(method, target)`` picks requests by their request line, e.g.
    ``lambda m, t: m == "PUT" and "partNumber=" in t``. ``requests`` records
    every request line seen and ``cut`` how many were cut.
    """

    def __init__(
        self,
        upstream: str,
        predicate: Callable[[str, str], bool],
        cuts: int | None = 1,
        *,
        cut_responses: bool = False,
    ) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.predicate = predicate
        self.cuts = cuts
        self.cut_responses = cut_responses
        self.cut = 0
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._closed = False
        self._start(self._accept)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening, reset every open connection and wait for every thread."""
        self._closed = True
        _close(self._listener)  # shutdown() wakes the accept() (close alone would not)
        with self._lock:
            socks = list(self._sockets)
        for sock in socks:
            _reset(sock)
        for thread in list(self._threads):
            thread.join(10)
            if thread.is_alive():
                raise RuntimeError("a fault proxy thread did not stop")

    def _start(self, target: Callable, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="faultproxy")
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            self._track(client)
            self._track(upstream)
            answers = _Answers()
            self._start(self._pipe, upstream, client, answers)
            self._start(self._requests, client, upstream, answers)

    def _pipe(self, src: socket.socket, dst: socket.socket, answers: _Answers) -> None:
        """Answers, byte for byte (up to a cut); the server's end of stream goes on as a FIN."""
        try:
            while data := src.recv(1 << 16):
                with answers.lock:
                    limit = answers.cut_at
                    if limit is not None and answers.piped + len(data) >= limit:
                        dst.sendall(data[: limit - answers.piped])
                        raise OSError("answer cut")
                    answers.piped += len(data)
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            _reset(src)
            _reset(dst)

    def _requests(self, client: socket.socket, upstream: socket.socket, answers: _Answers) -> None:
        """Requests, framed one by one; a doomed one is cut and both connections reset."""
        reader = client.makefile("rb")
        broken = True
        try:
            while (head := _read_head(reader)) is not None:
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                method, target = (line.split(" ") + ["", ""])[:2]
                with self._lock:
                    self.requests.append((method, target))
                    doomed = self.predicate(method, target) and (
                        self.cuts is None or self.cut < self.cuts
                    )
                    if doomed:
                        self.cut += 1
                if doomed and self.cut_responses:
                    with answers.lock:
                        answers.cut_at = answers.piped + CUT_AFTER
                    doomed = False
                upstream.sendall(head)
                headers = _headers(head)
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    sent = _forward_chunked(reader, upstream, CUT_AFTER if doomed else None)
                else:
                    length = int(headers.get("content-length", "0") or 0)
                    budget = min(CUT_AFTER, length // 2) if doomed else None
                    sent = _forward(reader, upstream, length, budget)
                if not sent:  # cut in the middle of the body
                    return
            broken = False  # the client closed its end
        except OSError:
            pass
        finally:
            reader.close()
            for sock in (client, upstream):
                (_reset if broken else _close)(sock)


class _Answers:
    """Bytes piped back on one connection, and where to cut them (None: nowhere)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.piped = 0
        self.cut_at: int | None = None


def _read_head(reader) -> bytes | None:
    lines = []
    while True:
        line = reader.readline(1 << 16)
        if not line:
            return None
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _headers(head: bytes) -> dict[str, str]:
    out = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip().lower()] = value.strip()
    return out


def _forward(reader, upstream: socket.socket, length: int, budget: int | None) -> bool:
    """Send ``length`` body bytes on, or only ``budget`` of them; False if cut."""
    limit = length if budget is None else budget
    left = limit
    while left:
        data = reader.read(min(left, 1 << 16))
        if not data:
            raise OSError("client went away mid-body")
        upstream.sendall(data)
        left -= len(data)
    return budget is None


def _forward_chunked(reader, upstream: socket.socket, budget: int | None) -> bool:
    """Send a chunked body on (chunks, last chunk, trailers), or cut after ``budget`` bytes."""
    sent = 0
    while True:
        size_line = reader.readline(1 << 16)
        if not size_line:
            raise OSError("client went away mid-body")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        piece = size_line + (reader.read(size + 2) if size else b"")
        if budget is not None and sent + len(piece) > budget:
            upstream.sendall(piece[: max(0, budget - sent)])
            return False
        upstream.sendall(piece)
        sent += len(piece)
        if size == 0:
            while True:  # trailers up to the empty line
                line = reader.readline(1 << 16)
                if not line:
                    raise OSError("client went away mid-trailers")
                upstream.sendall(line)
                if line in (b"\r\n", b"\n"):
                    return True


def _close(sock: socket.socket) -> None:
    """Close gracefully (FIN), waking any thread blocked reading it."""
    for step in (lambda: sock.shutdown(socket.SHUT_RDWR), sock.close):
        try:
            step()
        except OSError:
            pass


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), so the peer sees a broken connection at once.

    SHUT_RD first wakes a thread blocked reading it (close alone would not,
    while a makefile() reader still holds the descriptor).
    """
    for step in (
        lambda: sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)),
        lambda: sock.shutdown(socket.SHUT_RD),
        sock.close,
    ):
        try:
            step()
        except OSError:
            pass
