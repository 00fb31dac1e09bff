"""The *sync* capture method: receive a node's RDB as one of its replicas would.

The link speaks ../shared/RDB_FORMAT.md §12: PING, (AUTH,)
``REPLCONF listening-port 0``, ``REPLCONF capa eof capa psync2``,
``REPLCONF rdb-only 1`` where the server knows it (Redis 7+, Valkey; older
servers answer an error, which is ignored), then ``PSYNC ? -1`` (answered by
``+FULLRESYNC <replid> <offset>``), or plain ``SYNC`` when PSYNC is refused.
The RDB follows as ``$<len>\\r\\n`` + len bytes (disk-based sync) or as
``$EOF:<40-byte mark>\\r\\n`` + RDB + the same mark (diskless sync); before
it the server may send bare ``\\n`` keepalives for as long as its BGSAVE runs.
Valkey picks the RDB version by the replica's (``REPLCONF version``; without
it Valkey 9 sends RDB 11 and fails on keys that need 80), so the stream
announces the server's own version to a Valkey server.

:class:`ReplicaStream` yields the RDB bytes (never the framing) as they
arrive, so the catalog can validate and upload them while the transfer is
still going. One thread does everything: reads use a short socket timeout,
and once the payload flows the stream sends ``REPLCONF ACK 0`` between reads
about once a second so the server keeps the link (not before it, and not on
an rdb-only link, which the server closes after the RDB: see
:meth:`ReplicaStream._ack`). ``timeout`` bounds how long the server may send
nothing at all (keepalives count as something).

Listening port 0: nothing listens on our side, and a real port would make
Sentinel or an operator reading ``INFO replication`` try to reach a replica
that does not exist. ACK offset 0: a backup must never count as a replica
that has the data for ``WAIT`` or ``min-replicas-to-write``.

Errors: a server that refuses the replication commands (unknown or renamed
command, NOPERM) raises ReplicationRefusedError; a link that fails, times
out or ends before the announced length or the end mark raises CaptureError
naming the bytes received and expected. The link is closed at the end of
the RDB, on any error, and when the consumer stops iterating early.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any, Self

from rdbkit.backup.connection import Connection, ConnectionLostError, ReplyError, command
from rdbkit.backup.info import ServerFacts, node_settings, parse_info, server_facts
from rdbkit.catalog import Capture, Catalog, ShardInput, SourceInfo
from rdbkit.errors import CaptureError, CatalogError, ProtocolError, ReplicationRefusedError
from rdbkit.urls import RedisUrl, parse_url

#: Bytes asked of the socket per recv while streaming.
RECV_SIZE = 1 << 20
#: Seconds between ``REPLCONF ACK`` keepalives (the server's own replicas send one a second).
ACK_INTERVAL_S = 1.0
#: Length of the diskless end mark (``$EOF:<mark>``): CONFIG_RUN_ID_SIZE in redis.
EOF_MARK_LEN = 40
#: Longest header / status line accepted from the server.
MAX_LINE = 64 * 1024
#: Server settings recorded with a sync snapshot (CONFIG GET; failures ignored).
#: Error reply words and phrases meaning "this server will not replicate to you".
_REFUSALS = ("unknown command", "noperm", "not allowed", "no permissions", "unknown subcommand",
             "disabled", "renamed")


def _is_refusal(reply: ReplyError) -> bool:
    text = str(reply).lower()
    return any(word in text for word in _REFUSALS)


class ReplicaStream:
    """Iterate to receive the node's RDB as bytes chunks, as a replica would.

    :meth:`start` connects and runs the handshake up to the server's answer
    to PSYNC/SYNC (so a refusal shows before anything is stored);
    iterating calls it if nobody did. A stream can be iterated once.
    ``progress`` is called with the size of each chunk handed on.
    """

    framing: str | None  # "length" or "eof", known after the header line
    size: int | None  # announced RDB length ("length" framing)
    replid: str | None  # from +FULLRESYNC (None after a SYNC fallback)
    offset: int | None
    bytes_received: int  # RDB bytes received so far (framing excluded)

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        tls_context: ssl.SSLContext | None = None,
        timeout: float | None = 300.0,
        connect_timeout: float = 10.0,
        rdb_only: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._login = {"username": username, "password": password, "tls": tls,
                       "tls_context": tls_context}
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.rdb_only = rdb_only
        self.rdb_only_accepted = False
        self.progress = progress
        self.framing = None
        self.size = None
        self.replid = None
        self.offset = None
        self.command: str | None = None  # "PSYNC" or "SYNC": what the server accepted
        self.bytes_received = 0
        self.complete = False
        self.error: BaseException | None = None
        self._conn: Connection | None = None
        self._sock: socket.socket | None = None
        self._buf = b""  # received, not yet consumed
        self._mark = b""  # the diskless end mark
        self._last_ack = 0.0
        self._started = False
        self._iterated = False

    def __repr__(self) -> str:
        return f"ReplicaStream({self.host}:{self.port}, framing={self.framing!r})"

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    # -- life cycle --------------------------------------------------------

    def start(self) -> None:
        """Connect and handshake up to the server's acceptance of PSYNC or SYNC."""
        if self._started:
            return
        self._started = True
        try:
            self._handshake()
        except BaseException as exc:
            self._fail(exc)
            raise

    def close(self) -> None:
        """Drop the link (the server forgets this replica)."""
        conn, self._conn, self._sock = self._conn, None, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[bytes]:
        if self._iterated:
            raise CaptureError(f"the replication stream from {self.server} was already consumed")
        self._iterated = True
        return self._generate()

    def _generate(self) -> Iterator[bytes]:
        try:
            self.start()
            self._read_header()
            chunks = self._length_body() if self.framing == "length" else self._eof_body()
            for chunk in chunks:
                if self.progress is not None:
                    self.progress(len(chunk))
                yield chunk
            self.complete = True
        except BaseException as exc:
            self._fail(exc)
            raise
        finally:
            self.close()

    def _fail(self, exc: BaseException) -> None:
        if self.error is None and not isinstance(exc, GeneratorExit):
            self.error = exc
        self.close()

    # -- handshake -----------------------------------------------------------

    def _handshake(self) -> None:
        try:
            conn = Connection(self.host, self.port, timeout=self.timeout,
                              connect_timeout=self.connect_timeout, client_name="rdbkit-sync",
                              **self._login)
        except ConnectionLostError as exc:
            raise CaptureError(f"sync capture of {self.server}: {exc}") from exc
        except ReplyError as exc:
            raise CaptureError(f"sync capture of {self.server}: login refused: {exc}") from exc
        self._conn = conn
        try:
            self._ask("PING")
            for args in (("listening-port", 0), ("capa", "eof", "capa", "psync2")):
                reply = self._ask("REPLCONF", *args)
                if isinstance(reply, ReplyError):
                    raise self._refused(f"REPLCONF {args[0]}", reply)
            if self.rdb_only:  # unknown before Redis 7: then it is ignored
                self.rdb_only_accepted = self._ask("REPLCONF", "rdb-only", 1) == "OK"
            version = self._valkey_version()
            if version is not None:  # else Valkey 9 sends RDB 11 and fails on keys it cannot fit
                self._ask("REPLCONF", "version", version)
            conn.send(command("PSYNC", "?", -1))
            self._take_over(conn)
            line = self._read_line()
            if line.startswith(b"+FULLRESYNC"):
                parts = line.split()
                if len(parts) != 3:
                    raise CaptureError(f"{self.server} answered PSYNC with {line[:200]!r}")
                self.replid = parts[1].decode("ascii", "replace")
                try:
                    self.offset = int(parts[2])
                except ValueError:
                    raise CaptureError(
                        f"{self.server} answered PSYNC with {line[:200]!r}"
                    ) from None
                self.command = "PSYNC"
            elif line.startswith(b"-"):
                self._sync_fallback(ReplyError(line[1:].decode("utf-8", "replace")))
            else:  # +CONTINUE cannot answer "?", anything else is not a replication master
                raise CaptureError(f"{self.server} answered PSYNC ? -1 with {line[:200]!r}")
        except ConnectionLostError as exc:
            raise CaptureError(f"sync capture of {self.server}: {exc}") from exc
        except ProtocolError as exc:
            raise CaptureError(f"sync capture of {self.server}: {exc}") from exc

    def _ask(self, *args: Any) -> Any:
        """One handshake command; an error reply is returned (PING's raises CaptureError)."""
        assert self._conn is not None
        self._conn.send(command(*args))
        reply = self._conn.read_reply()
        if isinstance(reply, ReplyError) and args[0] == "PING":
            if _is_refusal(reply):
                raise self._refused("PING", reply)
            raise CaptureError(f"{self.server} answered PING with an error: {reply}")
        return reply

    def _valkey_version(self) -> str | None:
        """The server's version if it is Valkey (which picks the RDB version by the replica's)."""
        reply = self._ask("INFO", "server")
        if not isinstance(reply, bytes):
            return None  # INFO renamed or refused: Valkey then sends its compatible format
        info = parse_info(reply)
        if "valkey_version" in info or info.get("server_name") == "valkey":
            return info.get("valkey_version") or info.get("redis_version")
        return None

    def _refused(self, what: str, reply: ReplyError, before: str = "") -> ReplicationRefusedError:
        return ReplicationRefusedError(
            f"{self.server} refuses replication: {before}{what} was answered {str(reply)[:200]!r} "
            "(command renamed or disabled, or the user lacks replication permissions); "
            "use the cooperative capture method for this node"
        )

    def _sync_fallback(self, psync_reply: ReplyError) -> None:
        """PSYNC was refused: try the old SYNC (no status line, straight to the payload)."""
        assert self._sock is not None
        self._send(command("SYNC"))
        # Whatever SYNC gets comes at once: an error, a "\n" keepalive or the payload.
        self._fill()
        if self._buf.startswith(b"-"):
            reply = ReplyError(self._read_line()[1:].decode("utf-8", "replace"))
            before = f"PSYNC was answered {str(psync_reply)[:200]!r} and "
            if _is_refusal(reply) or _is_refusal(psync_reply):
                raise self._refused("SYNC", reply, before)
            raise CaptureError(f"{self.server} cannot serve a full sync now: {before}SYNC was "
                               f"answered {str(reply)[:200]!r}")
        self.command = "SYNC"

    # -- raw link --------------------------------------------------------------

    def _take_over(self, conn: Connection) -> None:
        """From here on read the socket directly, with a short timeout for keepalives."""
        self._buf = conn.read_exact(conn.buffered) if conn.buffered else b""
        self._sock = conn.sock
        tick = ACK_INTERVAL_S if self.timeout is None else min(ACK_INTERVAL_S, self.timeout)
        self._sock.settimeout(tick)
        self._last_ack = time.monotonic()

    def _send(self, data: bytes) -> None:
        assert self._sock is not None
        try:
            self._sock.sendall(data)
        except (OSError, ssl.SSLError) as exc:
            raise CaptureError(f"writing to {self.server} failed: {exc}") from exc

    def _ack(self) -> None:
        """``REPLCONF ACK 0`` if a second has passed, once the payload flows.

        Not before: a replica waiting for its RDB sends nothing, and the
        server's diskless delay (``repl-diskless-sync-delay``) waits for its
        waiting replicas to be idle that long, so ACKs would postpone the
        fork for ever. Not on an rdb-only link either: the server closes it
        right after the RDB and expects nothing, and an ACK it has not read
        when it closes makes the kernel answer with a reset that discards the
        RDB's last bytes still unread on our side.
        """
        if self.framing is None or self.rdb_only_accepted:
            return
        now = time.monotonic()
        if now - self._last_ack >= ACK_INTERVAL_S:
            self._last_ack = now
            self._send(b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$1\r\n0\r\n")

    def _recv(self) -> bytes:
        """One recv's worth (b"" when the server closed), sending ACKs while waiting."""
        assert self._sock is not None
        waited_since = time.monotonic()
        while True:
            try:
                data = self._sock.recv(RECV_SIZE)
            except TimeoutError:
                if self.timeout is not None and time.monotonic() - waited_since >= self.timeout:
                    raise CaptureError(
                        f"{self.server} sent nothing for {self.timeout} s {self._where()}"
                    ) from None
                self._ack()
                continue
            except (OSError, ssl.SSLError) as exc:
                raise CaptureError(
                    f"reading from {self.server} failed {self._where()}: {exc}"
                ) from exc
            self._ack()
            return data

    def _fill(self) -> None:
        data = self._recv()
        if not data:
            raise CaptureError(f"{self.server} closed the link {self._where()}")
        self._buf += data

    def _where(self) -> str:
        if self.framing == "length":
            return f"after {self.bytes_received} of {self.size} RDB bytes"
        if self.framing == "eof":
            return (f"after {self.bytes_received} RDB bytes, before the end mark "
                    "(diskless transfer, length unknown)")
        return "before the RDB began"

    def _read_line(self) -> bytes:
        """The next CRLF line, skipping bare "\\n" keepalives before it."""
        while True:
            stripped = self._buf.lstrip(b"\n")
            if len(stripped) != len(self._buf):
                self._buf = stripped
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line, self._buf = self._buf[:end], self._buf[end + 2 :]
                return line
            if len(self._buf) > MAX_LINE:
                raise CaptureError(f"{self.server} sent a line longer than {MAX_LINE} bytes "
                                   "where the RDB header belongs")
            self._fill()

    # -- the payload -------------------------------------------------------------

    def _read_header(self) -> None:
        line = self._read_line()
        if line.startswith(b"$EOF:"):
            mark = line[5:]
            if len(mark) != EOF_MARK_LEN:
                raise CaptureError(f"{self.server} sent a bad diskless header {line[:100]!r}")
            self.framing, self._mark = "eof", mark
            self._last_ack = time.monotonic()
            return
        if line.startswith(b"$"):
            try:
                size = int(line[1:])
            except ValueError:
                size = -1
            if size < 0:
                raise CaptureError(f"{self.server} sent a bad RDB header {line[:100]!r}")
            self.framing, self.size = "length", size
            self._last_ack = time.monotonic()
            return
        if line.startswith(b"-"):
            reply = ReplyError(line[1:].decode("utf-8", "replace"))
            if _is_refusal(reply):
                raise self._refused(self.command or "SYNC", reply)
            raise CaptureError(f"{self.server} aborted the full sync: {str(reply)[:200]!r}")
        raise CaptureError(f"{self.server} sent {line[:100]!r} where the RDB header belongs")

    def _length_body(self) -> Iterator[bytes]:
        assert self.size is not None
        remaining = self.size
        data, self._buf = self._buf, b""
        while remaining > 0:
            if not data:
                data = self._recv()
                if not data:
                    raise CaptureError(f"{self.server} closed the link {self._where()}")
            chunk = data[:remaining] if len(data) > remaining else data
            data = b""  # anything past the RDB is the command stream: not ours
            remaining -= len(chunk)
            self.bytes_received += len(chunk)
            yield chunk

    def _eof_body(self) -> Iterator[bytes]:
        mark = self._mark
        held, self._buf = self._buf, b""  # bytes that might start the mark
        while True:
            end = held.find(mark)
            if end >= 0:  # the RDB ends here; what follows is the command stream
                if end:
                    self.bytes_received += end
                    yield held[:end]
                return
            if len(held) > len(mark):
                cut = len(held) - len(mark)
                self.bytes_received += cut
                yield held[:cut]
                held = held[cut:]
            data = self._recv()
            if not data:
                raise CaptureError(f"{self.server} closed the link {self._where()}")
            held += data


# -- capture ---------------------------------------------------------------------


def _redis_url(url: RedisUrl | str) -> RedisUrl:
    if isinstance(url, str):
        url = parse_url(url)  # type: ignore[assignment]
    if not isinstance(url, RedisUrl):
        raise CaptureError(f"sync capture needs a single node (redis:// or rediss://), not {url}")
    return url


#: Connection settings ReplicaStream takes (the rest of a ``connection_options`` is ignored).
_LINK_OPTIONS = ("timeout", "connect_timeout", "tls_context")


def _merge(options: dict[str, Any], connection_options: dict[str, Any] | None) -> dict[str, Any]:
    merged = {k: v for k, v in (connection_options or {}).items() if k in _LINK_OPTIONS}
    merged.update(options)
    return merged


def sync_capture(
    url: RedisUrl | str, *, connection_options: dict[str, Any] | None = None, **options: Any
) -> tuple[ServerFacts, ReplicaStream]:
    """Facts from INFO (over a normal connection), then a started :class:`ReplicaStream`.

    ``options`` are ReplicaStream's keyword arguments (``timeout``,
    ``connect_timeout``, ``tls_context``, ``rdb_only``, ``progress``);
    ``connection_options`` (as other capture methods take it) supplies
    ``timeout``, ``connect_timeout`` and ``tls_context`` where ``options``
    does not. The handshake has run when this returns, so a refusing server
    raises ReplicationRefusedError here; the RDB flows when the stream is
    iterated.
    """
    url = _redis_url(url)
    options = _merge(options, connection_options)
    login: dict[str, Any] = {"connect_timeout": options.get("connect_timeout", 10.0)}
    if "tls_context" in options:
        login["tls_context"] = options["tls_context"]
    try:
        with Connection.from_url(url, client_name="rdbkit", **login) as conn:
            facts = server_facts(conn)
    except (ConnectionLostError, ReplyError, ProtocolError) as exc:
        raise CaptureError(f"sync capture of {url}: cannot read INFO: {exc}") from exc
    stream = ReplicaStream(url.host, url.port, username=url.username, password=url.password,
                           tls=url.tls, **options)
    stream.start()
    return facts, stream


def server_settings(url: RedisUrl, **options: Any) -> dict[str, str]:
    """The node's :data:`~rdbkit.backup.info.RECORDED_SETTINGS` ({} if CONFIG is refused)."""
    try:
        with Connection.from_url(url, client_name="rdbkit", **options) as conn:
            return node_settings(conn)
    except (ConnectionLostError, ReplyError, ProtocolError):
        return {}


def capture_sync(
    url: RedisUrl | str,
    catalog: Catalog | None = None,
    *,
    connection_options: dict[str, Any] | None = None,
    **options: Any,
) -> Capture:
    """A sync capture of one node, for ``catalog.create(name, capture_sync(url))``.

    The catalog validates the RDB with the streaming decoder as it uploads;
    a DecodeError or a failed link aborts the upload and nothing is
    published. With ``catalog``, a source it has retired is refused before
    the node is asked to fork. ``connection_options`` and ``options`` go to
    :func:`sync_capture`.
    """
    url = _redis_url(url)
    options = _merge(options, connection_options)
    if catalog is not None and catalog.policy(str(url)).retired:
        raise CatalogError(f"source {str(url)!r} is retired: it takes no new snapshots")
    login = {k: options[k] for k in ("connect_timeout", "tls_context") if k in options}
    settings = server_settings(url, **login)
    facts, stream = sync_capture(url, **options)
    return Capture(
        source=SourceInfo(
            url=str(url),
            engine=facts.engine,
            engine_version=facts.version,
            cluster=facts.cluster_enabled,
            settings=settings,
        ),
        shards=[ShardInput(data=stream, size_hint=None, node=f"{url.host}:{url.port}")],
        consistency="point-in-time",
    )
