"""The bundled node as a real process for tests, plus raw-RESP helpers.

``running_node(directory)`` starts ``python -m rdbkit.cli node`` on a free
loopback port in ``directory`` and stops it (SHUTDOWN NOSAVE, then kill)
on exit. The session fixture ``node`` shares one such process; test modules
import it (``from nodes import node``) and call ``handle.reset()`` first.

``RawClient`` sends bytes and reads back exactly one reply's bytes, so a
differential test can compare what the node and a real redis-server send,
byte for byte.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from servers import _die_with_parent, _kill_if_running, free_port

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


@dataclass
class NodeHandle:
    port: int
    dir: Path
    process: subprocess.Popen
    log_path: Path

    @property
    def dump_path(self) -> Path:
        return self.dir / "dump.rdb"

    def client(self, db: int = 0, **kwargs) -> redis.Redis:
        options = {"host": "127.0.0.1", "port": self.port, "db": db, "socket_timeout": 30,
                   "socket_connect_timeout": 30, "retry": Retry(NoBackoff(), 0)}
        options.update(kwargs)
        return redis.Redis(**options)

    def raw(self, timeout: float = 10.0) -> RawClient:
        return RawClient(self.port, timeout)

    def reset(self) -> None:
        with contextlib.closing(self.client()) as c:
            c.flushall()

    def rss(self) -> int:
        """Resident memory of the node process, bytes."""
        with open(f"/proc/{self.process.pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return "(no log)"


def stop_node(handle: NodeHandle) -> None:
    if handle.process.poll() is None:
        try:
            with contextlib.closing(handle.client(socket_timeout=STOP_TIMEOUT_S)) as c:
                c.shutdown(nosave=True)
        except redis.exceptions.RedisError:
            pass
        try:
            handle.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            handle.process.kill()
            handle.process.wait(STOP_TIMEOUT_S)


@contextlib.contextmanager
def running_node(directory: Path | None = None, *extra_args: str) -> Iterator[NodeHandle]:
    """A node process in ``directory`` (a fresh temp dir if None); stopped on exit."""
    own_dir = directory is None
    directory = Path(tempfile.mkdtemp(prefix="rdbkit-node-")) if own_dir else Path(directory)
    handle = None
    try:
        port = free_port()
        log_path = directory / "node.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "rdbkit.cli", "node", "--port", str(port),
                 "--dir", str(directory), "--loglevel", "warning", *extra_args],
                cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent)
        atexit.register(_kill_if_running, process)
        handle = NodeHandle(port, directory, process, log_path)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"node exited with {process.returncode}:\n{handle.log_tail()}")
            try:
                with contextlib.closing(handle.client(socket_timeout=1, socket_connect_timeout=1)) as c:
                    if c.ping():
                        break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"node did not answer PING:\n{handle.log_tail()}") from None
                time.sleep(0.05)
        yield handle
    finally:
        if handle is not None:
            stop_node(handle)
        if own_dir:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def node() -> Iterator[NodeHandle]:
    """One bundled node process shared by the session (call ``reset()`` per test)."""
    try:
        with running_node() as handle:
            yield handle
    except RuntimeError as exc:
        pytest.fail(f"cannot start the node: {exc}", pytrace=False)


# --- raw RESP ------------------------------------------------------------------


def encode(*args) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


class RawClient:
    """A socket that returns each reply as the exact bytes the server sent."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        data = self.sock.recv(1 << 16)
        if not data:
            return False
        self.buf += data
        return True

    def _line_end(self, pos: int) -> int:
        while True:
            end = self.buf.find(b"\r\n", pos)
            if end >= 0:
                return end
            if not self._fill():
                raise ConnectionError("closed mid-reply")

    def _skip_one(self, pos: int) -> int:
        """Position just after the reply starting at ``pos`` (reading more as needed)."""
        pending = 1
        while pending:
            end = self._line_end(pos)
            kind = self.buf[pos:pos + 1]
            rest = self.buf[pos + 1:end]
            pos = end + 2
            pending -= 1
            if kind in (b"$", b"=", b"!"):
                n = int(rest)
                if n >= 0:
                    while len(self.buf) < pos + n + 2:
                        if not self._fill():
                            raise ConnectionError("closed mid-reply")
                    pos += n + 2
            elif kind in (b"*", b"~", b">", b"%", b"|"):
                n = int(rest)
                if n > 0:
                    pending += n * (2 if kind in (b"%", b"|") else 1)
        return pos

    def reply(self) -> bytes:
        end = self._skip_one(0)
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def call(self, *args) -> bytes:
        self.send(encode(*args))
        return self.reply()

    def closed(self, timeout: float = 5.0) -> bool:
        """True if the server closes the connection (after any reply bytes) within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    return True
                self.buf += data
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
