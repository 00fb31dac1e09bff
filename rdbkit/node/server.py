"""The node's asyncio server: connections, dispatch, INFO and the periodic task.

One event loop. Each connection is a ``ClientConnection`` (an
``asyncio.Protocol``): ``data_received`` feeds the client's
``RequestParser``, runs every complete command it yields, and writes all
their replies in one ``transport.write`` — so a pipelined batch costs one
write. When the transport's buffer is full (``pause_writing``) the client's
reading is paused until it drains; a client that stops reading cannot make
the node buffer unboundedly (``client-output-buffer-limit`` style cap:
``max_output_buffer``).

A protocol error is answered with ``-ERR Protocol error: ...`` and the
connection is closed, as redis does. The periodic task (``hz`` times a
second, 10 by default) runs active expiry with a time budget and reaps a
finished BGSAVE child.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
import socket
import sys
import time
from dataclasses import dataclass, fields

import rdbkit
from rdbkit.errors import ProtocolError
from rdbkit.node.commands import COMMANDS
from rdbkit.node.commands.registry import Command, wrong_arity
from rdbkit.node.keyspace import Keyspace
from rdbkit.node.persistence import REDIS_COMPAT_VERSION, Persistence, SaveError
from rdbkit.node.resp import (
    DEFAULT_MAX_BULK_LEN,
    QUEUED,
    ErrorReply,
    RequestParser,
    encode_reply,
)
from rdbkit.node.zset import CommandError

_log = logging.getLogger(__name__)

#: Commands that run at once even inside MULTI.
_MULTI_IMMEDIATE = {b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"}
#: Bytes a client may have waiting in its output before it is disconnected.
DEFAULT_MAX_OUTPUT_BUFFER = 256 * 1024 * 1024
#: Replies are written in pieces of about this size (then backpressure is checked).
OUTPUT_CHUNK = 256 * 1024


@dataclass
class NodeConfig:
    """What ``rdbkit node`` is configured with; CONFIG GET/SET see these fields."""

    port: int = 6379
    bind: str = "127.0.0.1"
    dir: str = "."
    dbfilename: str = "dump.rdb"
    databases: int = 16
    maxclients: int = 10000
    proto_max_bulk_len: int = DEFAULT_MAX_BULK_LEN
    client_query_buffer_limit: int = 1024 * 1024 * 1024
    hz: int = 10
    save: str = ""
    appendonly: str = "no"
    timeout: int = 0
    maxmemory: int = 0

    _IMMUTABLE = ("port", "bind", "databases")
    _INTS = ("port", "databases", "maxclients", "proto_max_bulk_len",
             "client_query_buffer_limit", "hz", "timeout", "maxmemory")

    def as_strings(self) -> dict[str, str]:
        """Every setting under its redis name (dashes), as text."""
        return {f.name.replace("_", "-"): str(getattr(self, f.name)) for f in fields(self)}

    def apply(self, changes: dict[str, str]) -> None:
        """CONFIG SET: all or nothing, redis' error messages."""
        known = self.as_strings()
        parsed = {}
        for name, text in changes.items():
            attr = name.replace("-", "_")
            if name not in known:
                raise ErrorReply(f"ERR Unknown option or number of arguments for CONFIG SET - '{name}'")
            if attr in self._IMMUTABLE:
                raise ErrorReply(f"ERR CONFIG SET failed (possibly related to argument '{name}') "
                                 "- can't set immutable config")
            if attr in self._INTS:
                value = _parse_memory(text)
                if value is None or value < 0:
                    raise ErrorReply(f"ERR CONFIG SET failed (possibly related to argument '{name}') "
                                     "- argument couldn't be parsed into an integer")
                parsed[attr] = value
            elif attr == "appendonly":
                if text.lower() not in ("yes", "no"):
                    raise ErrorReply(f"ERR CONFIG SET failed (possibly related to argument '{name}') "
                                     "- argument must be 'yes' or 'no'")
                if text.lower() == "yes":
                    raise ErrorReply(f"ERR CONFIG SET failed (possibly related to argument '{name}') "
                                     "- the node has no AOF")
                parsed[attr] = "no"
            elif attr == "dir":
                if not os.path.isdir(text):
                    raise ErrorReply(f"ERR CONFIG SET failed (possibly related to argument '{name}') "
                                     "- No such file or directory")
                parsed[attr] = os.path.abspath(text)
            else:
                parsed[attr] = text
        for attr, value in parsed.items():
            setattr(self, attr, value)


def _parse_memory(text: str) -> int | None:
    units = {"k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}
    lower = text.lower()
    for suffix in ("kb", "mb", "gb", "k", "m", "g"):
        if lower.endswith(suffix):
            number = lower[: -len(suffix)]
            return int(number) * units[suffix] if number.isdigit() else None
    return int(lower) if lower.lstrip("-").isdigit() else None


class Stats:
    """Counters INFO stats reports (CONFIG RESETSTAT clears them)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total_connections = 0
        self.total_commands = 0
        self.rejected_connections = 0
        self.net_input_bytes = 0
        self.net_output_bytes = 0
        self.keyspace_hits = 0
        self.keyspace_misses = 0


class Client:
    """Per-connection state seen by command handlers (``client.db``, ``client.server``)."""

    def __init__(self, server: Node, client_id: int, addr: str, laddr: str) -> None:
        self.server = server
        self.id = client_id
        self.addr = addr
        self.laddr = laddr
        self.name: bytes | None = None
        self.db_index = 0
        self.db = server.keyspace[0]
        self.resp3 = False
        self.created = time.monotonic()
        self.last_interaction = self.created
        self.last_command = b"NULL"
        self.close_after_reply = False
        self.in_multi = False
        self.multi_queue: list[tuple[Command, list[bytes]]] = []
        self.multi_failed = False
        self.watch_dirty = False
        self.watched: list[tuple[int, bytes]] = []
        self.connection: ClientConnection | None = None

    def select(self, index: int) -> None:
        self.db_index = index
        self.db = self.server.keyspace[index]

    # -- transactions ----------------------------------------------------------

    def start_multi(self) -> None:
        self.in_multi = True
        self.multi_queue = []
        self.multi_failed = False

    def end_multi(self) -> None:
        self.in_multi = False
        self.multi_queue = []
        self.multi_failed = False

    def watch(self, key: bytes) -> None:
        if (self.db_index, key) in self.watched:
            return
        self.watched.append((self.db_index, key))
        self.db.watched.setdefault(key, set()).add(self)

    def unwatch(self) -> None:
        for index, key in self.watched:
            db = self.server.keyspace[index]
            clients = db.watched.get(key)
            if clients is not None:
                clients.discard(self)
                if not clients:
                    del db.watched[key]
        self.watched = []
        self.watch_dirty = False

    # -- dispatch --------------------------------------------------------------

    def execute(self, argv: list[bytes]) -> object:
        """Look up, check and run one command (or queue it inside MULTI)."""
        name = argv[0].lower()
        cmd = COMMANDS.get(name)
        if cmd is None:
            self.multi_failed = self.in_multi
            return _unknown_command(argv)
        if cmd.subcommands and len(argv) >= 2:
            sub = cmd.subcommands.get(argv[1].lower())
            if sub is not None:
                cmd = sub
            elif cmd.handler is None:
                self.multi_failed = self.in_multi
                text = argv[1].decode("utf-8", "replace")
                return ErrorReply(f"ERR unknown subcommand '{text[:128]}'. "
                                  f"Try {cmd.name.upper()} HELP.")
        if cmd.handler is None:
            self.multi_failed = self.in_multi
            return wrong_arity(cmd.name)
        if not cmd.arity_ok(len(argv)):
            self.multi_failed = self.in_multi
            return wrong_arity(cmd.name)
        if self.in_multi and name not in _MULTI_IMMEDIATE:
            if "no_multi" in cmd.flags:
                self.multi_failed = True
                return ErrorReply("ERR Command not allowed inside a transaction")
            self.multi_queue.append((cmd, argv))
            return QUEUED
        return self.call(cmd, argv)

    def call(self, cmd: Command, argv: list[bytes]) -> object:
        self.server.stats.total_commands += 1
        self.last_command = cmd.name.encode()
        try:
            return cmd.handler(self, argv)  # type: ignore[misc]
        except ErrorReply as exc:
            return exc
        except CommandError as exc:  # the data structures' errors carry redis' reply text
            return ErrorReply(str(exc))

    def kill(self) -> None:
        if self.connection is not None:
            self.connection.close()

    def describe(self) -> str:
        """One CLIENT LIST line."""
        now = time.monotonic()
        name = (self.name or b"").decode("utf-8", "replace")
        flags = "x" if self.in_multi else "N"
        qbuf = self.connection.parser.buffered if self.connection else 0
        return (f"id={self.id} addr={self.addr} laddr={self.laddr} fd=-1 name={name} "
                f"age={int(now - self.created)} idle={int(now - self.last_interaction)} "
                f"flags={flags} db={self.db_index} sub=0 psub=0 ssub=0 "
                f"multi={len(self.multi_queue) if self.in_multi else -1} qbuf={qbuf} "
                f"qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 "
                f"tot-mem=0 events=r cmd={self.last_command.decode('utf-8', 'replace')} "
                f"user=default redir=-1 resp={3 if self.resp3 else 2}")


def _unknown_command(argv: list[bytes]) -> ErrorReply:
    name = argv[0].decode("utf-8", "replace")
    args = ""
    for arg in argv[1:]:
        if len(args) >= 128:
            break
        text = arg.decode("utf-8", "replace")
        args += f"'{text[:128 - len(args)]}' "
    return ErrorReply(f"ERR unknown command '{name[:128]}', with args beginning with: {args}")


class ClientConnection(asyncio.Protocol):
    """One client socket: parse, run, reply; backpressure both ways."""

    def __init__(self, server: Node) -> None:
        self.server = server
        self.parser = RequestParser(max_bulk_len=server.config.proto_max_bulk_len,
                                    max_query_buffer=server.config.client_query_buffer_limit)
        self.transport: asyncio.Transport | None = None
        self.client: Client | None = None
        self.closing = False
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        server = self.server
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        peer = transport.get_extra_info("peername") or ("?", 0)
        local = transport.get_extra_info("sockname") or ("?", 0)
        server.stats.total_connections += 1
        if len(server.clients) >= server.config.maxclients:
            server.stats.rejected_connections += 1
            transport.write(b"-ERR max number of clients reached\r\n")
            transport.close()
            self.closing = True
            return
        client = Client(server, server.next_client_id(), f"{peer[0]}:{peer[1]}",
                        f"{local[0]}:{local[1]}")
        client.connection = self
        self.client = client
        server.clients[client.id] = client
        self.transport.set_write_buffer_limits(high=1 << 20)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        client = self.client
        if client is not None:
            client.unwatch()
            self.server.clients.pop(client.id, None)
            client.connection = None

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def pause_writing(self) -> None:
        # The transport's buffer passed its high-water mark: stop reading and stop
        # running this client's already-buffered commands until it drains.
        self.paused = True
        if self.transport is not None and not self.closing:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()
            self._process()

    def eof_received(self) -> bool:
        return False  # the client is done sending: close once replies are written

    def data_received(self, data: bytes) -> None:
        if self.closing or self.client is None:
            return
        self.server.stats.net_input_bytes += len(data)
        self.client.last_interaction = time.monotonic()
        try:
            self.parser.feed(data)
        except ProtocolError as exc:
            self._protocol_error(exc)
            return
        if not self.paused:
            self._process()

    def _protocol_error(self, exc: ProtocolError) -> None:
        _log.info("closing %s: protocol error: %s", self.client.addr, exc)  # type: ignore[union-attr]
        self._write(b"-ERR Protocol error: " + str(exc).encode() + b"\r\n")
        self.close()

    def _write(self, data: bytes | bytearray) -> None:
        self.server.stats.net_output_bytes += len(data)
        self.transport.write(bytes(data))  # type: ignore[union-attr]

    def _process(self) -> None:
        """Run the buffered commands and write their replies, until none is
        complete, the client must close, or the output backs up."""
        client = self.client
        assert client is not None
        server = self.server
        parser = self.parser
        out = bytearray()
        while not self.closing:
            try:
                argv = parser.pop()
            except ProtocolError as exc:
                if out:
                    self._write(out)
                self._protocol_error(exc)
                return
            if argv is None:
                break
            reply = client.execute(argv)
            if type(reply) is bytes or type(reply) is int:  # the hot path
                out += encode_reply(reply)
            else:
                out += encode_reply(reply, client.resp3)
            if client.close_after_reply or server.shutting_down:
                break
            if len(out) >= OUTPUT_CHUNK:
                self._write(out)
                out = bytearray()
                if self.paused or self.closing:
                    return  # resume_writing picks up the rest
        if out:
            self._write(out)
        if client.close_after_reply:
            self.close()
            return
        if self.transport.get_write_buffer_size() > server.max_output_buffer:  # type: ignore[union-attr]
            _log.warning("closing %s: output buffer over the limit", client.addr)
            self.transport.abort()  # type: ignore[union-attr]


class Node:
    """A running node: keyspace, clients, persistence and the listening socket."""

    REDIS_VERSION = REDIS_COMPAT_VERSION

    def __init__(self, config: NodeConfig) -> None:
        config.dir = os.path.abspath(config.dir)
        self.config = config
        self.keyspace = Keyspace(config.databases)
        self.persistence = Persistence(self.keyspace, config)
        self.clients: dict[int, Client] = {}
        self.stats = Stats()
        self.started = time.time()
        self.max_output_buffer = DEFAULT_MAX_OUTPUT_BUFFER
        self.shutting_down = False
        self.run_id = os.urandom(20).hex()
        self._next_id = 0
        self._server: asyncio.base_events.Server | None = None
        self._stopped: asyncio.Event | None = None
        self._cron: asyncio.Task | None = None

    def next_client_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Load the dump file, listen, start the periodic task."""
        self.persistence.load()
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._server = await loop.create_server(
            lambda: ClientConnection(self), self.config.bind, self.config.port,
            reuse_address=True, backlog=511)
        if self.config.port == 0:
            self.config.port = self._server.sockets[0].getsockname()[1]
        self._cron = loop.create_task(self._periodic())
        _log.info("rdbkit node ready on %s:%d", self.config.bind, self.config.port)

    def request_shutdown(self) -> None:
        self.shutting_down = True
        if self._stopped is not None:
            self._stopped.set()

    def close_sockets_in_child(self) -> None:
        """In a forked BGSAVE child: close the listening and client sockets it inherited."""
        socks = list(self._server.sockets) if self._server is not None else []
        for client in self.clients.values():
            conn = client.connection
            if conn is not None and conn.transport is not None:
                sock = conn.transport.get_extra_info("socket")
                if sock is not None:
                    socks.append(sock)
        for sock in socks:
            try:
                os.close(sock.fileno())
            except OSError:
                pass

    def signal_shutdown(self) -> None:
        """SIGTERM/SIGINT: save first when save points are configured, then stop."""
        if self.config.save and not self.shutting_down:
            try:
                self.persistence.save()
            except SaveError as exc:
                _log.error("not saved before exit: %s", exc)
        self.request_shutdown()

    async def serve_until_stopped(self) -> None:
        assert self._stopped is not None
        await self._stopped.wait()
        await self.stop()

    async def stop(self) -> None:
        if self._cron is not None:
            self._cron.cancel()
        if self._server is not None:
            self._server.close()
        for client in list(self.clients.values()):
            client.kill()
        self.persistence.kill_child()
        if self._server is not None:
            await self._server.wait_closed()

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(1.0 / max(1, min(self.config.hz, 500)))
            deadline = time.monotonic() + 0.025
            # Bounded chunks so a flood of expiring keys never stalls clients long.
            while self.keyspace.expire_cycle(max_keys=200) == 200 and time.monotonic() < deadline:
                pass
            self.persistence.poll()

    # -- self-description ------------------------------------------------------

    def info_text(self, sections: list[str]) -> str:
        every = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu",
                 "keyspace"]
        if not sections or any(s in ("all", "everything", "default") for s in sections):
            wanted = every
        else:
            wanted = [s for s in every if s in sections]
        parts = []
        for name in wanted:
            lines = getattr(self, f"_info_{name}")()
            parts.append(f"# {name.capitalize()}\r\n" + "".join(f"{k}:{v}\r\n" for k, v in lines))
        return "\r\n".join(parts)

    def _info_server(self):
        uptime = int(time.time() - self.started)
        return [("redis_version", self.REDIS_VERSION), ("rdbkit_version", rdbkit.__version__),
                ("redis_mode", "standalone"), ("os", os.uname().sysname),
                ("arch_bits", 64), ("multiplexing_api", "asyncio"),
                ("process_id", os.getpid()), ("run_id", self.run_id),
                ("tcp_port", self.config.port), ("uptime_in_seconds", uptime),
                ("uptime_in_days", uptime // 86400), ("hz", self.config.hz),
                ("executable", sys.executable), ("config_file", "")]

    def _info_clients(self):
        return [("connected_clients", len(self.clients)), ("maxclients", self.config.maxclients),
                ("blocked_clients", 0)]

    def _info_memory(self):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        current = _current_rss() or rss
        return [("used_memory", current), ("used_memory_human", _human(current)),
                ("used_memory_rss", current), ("used_memory_peak", rss),
                ("maxmemory", self.config.maxmemory), ("maxmemory_policy", "noeviction")]

    def _info_persistence(self):
        p = self.persistence
        return [("loading", 0), ("rdb_changes_since_last_save", self.keyspace.dirty),
                ("rdb_bgsave_in_progress", int(p.bgsave_in_progress)),
                ("rdb_last_save_time", p.last_save_time),
                ("rdb_last_bgsave_status", "ok" if p.last_bgsave_status_ok else "err"),
                ("rdb_last_bgsave_time_sec", int(p.last_save_duration_s)),
                ("rdb_saves", p.saves), ("aof_enabled", 0), ("aof_rewrite_in_progress", 0)]

    def _info_stats(self):
        s = self.stats
        return [("total_connections_received", s.total_connections),
                ("total_commands_processed", s.total_commands),
                ("total_net_input_bytes", s.net_input_bytes),
                ("total_net_output_bytes", s.net_output_bytes),
                ("rejected_connections", s.rejected_connections),
                ("expired_keys", self.keyspace.expired_keys), ("evicted_keys", 0),
                ("keyspace_hits", s.keyspace_hits), ("keyspace_misses", s.keyspace_misses)]

    def _info_replication(self):
        return [("role", "master"), ("connected_slaves", 0), ("master_replid", self.run_id),
                ("master_repl_offset", 0)]

    def _info_cpu(self):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return [("used_cpu_sys", f"{usage.ru_stime:.6f}"), ("used_cpu_user", f"{usage.ru_utime:.6f}")]

    def _info_keyspace(self):
        out = []
        for db in self.keyspace.dbs:
            if db.data:
                out.append((f"db{db.index}", f"keys={len(db.data)},expires={len(db.expires)},avg_ttl=0"))
        return out


def _current_rss() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _human(n: int) -> str:
    for unit in ("B", "K", "M", "G"):
        if n < 1024:
            return f"{n:.2f}{unit}" if unit != "B" else f"{n}B"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.2f}T"


async def _serve(node: Node, ready=None) -> None:
    await node.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node.signal_shutdown)
    if ready is not None:
        ready(node)
    await node.serve_until_stopped()


def run_node(config: NodeConfig, ready=None) -> Node:
    """Run a node in the foreground until SIGTERM/SIGINT/SHUTDOWN; returns it stopped.

    ``ready(node)`` is called once it listens. On SIGTERM/SIGINT the dump is
    saved first when save points are configured (as redis does).
    """
    node = Node(config)
    asyncio.run(_serve(node, ready))
    return node
