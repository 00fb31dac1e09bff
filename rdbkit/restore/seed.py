"""Seed a new node: place a verified RDB where the node loads it at start.

:func:`seed` writes ``directory/dbfilename`` from a catalog snapshot. The
bytes go to a temporary name inside ``directory`` (so the final rename is
atomic on one file system) and are renamed only after the catalog verified
size and sha256 at EOF; on any failure nothing is left behind and an existing
file of that name is untouched. With ``target_version`` the verified file is
re-encoded (Decoder → RdbWriter(version=target_version)) first, so a node that
cannot read the snapshot's version (a Valkey 9 ``VALKEY080`` file for Redis
7.0, which reads RDB ≤ 10) can still be seeded.

:func:`start_seeded_server` starts a redis-server/valkey-server on that
directory and waits until it has loaded the file and answers PING.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from rdbkit.backup.connection import Connection, ConnectionLostError, ReplyError
from rdbkit.backup.info import rdb_version_for
from rdbkit.codec import Decoder, RdbWriter
from rdbkit.errors import EncodeError, RestoreError

_log = logging.getLogger(__name__)


def seed(
    catalog: Any,
    name: str,
    directory: str | os.PathLike[str],
    *,
    account: str | None = None,
    target_version: int | None = None,
    dbfilename: str = "dump.rdb",
    unsupported: str = "error",
) -> Path:
    """Place snapshot ``name`` as ``directory/dbfilename``, verified; return its path.

    ``account`` is the account of the node being seeded (default: the
    catalog's); another account's snapshot is refused (AccountMismatchError).
    A cluster snapshot seeds as a whole (a snapshot restores only whole): its
    shards are merged into one RDB (they hold disjoint keys, all in db 0).
    ``target_version`` re-encodes for that RDB version (REDIS 6–12 or
    VALKEY 80); what the version cannot express (hash field TTLs below 12,
    functions below 10, ...) raises RestoreError with ``unsupported="error"``
    or is dropped (and logged) with ``unsupported="drop"``: Encoder(drop_unsupported=True)
    semantics, a hash loses its field TTLs, a key of a type the version lacks is left out.
    """
    if unsupported not in ("error", "drop"):
        raise ValueError("unsupported must be 'error' or 'drop'")
    if "/" in dbfilename or dbfilename in ("", ".", ".."):
        raise ValueError(f"dbfilename must be a plain file name, not {dbfilename!r}")
    manifest = catalog.describe(name)
    count = len(manifest.shards)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / dbfilename
    work = Path(tempfile.mkdtemp(prefix=".rdbkit-seed-", dir=directory))
    try:
        shards = catalog.fetch(name, work, account=account)  # all verified, else nothing
        if count > 1 or target_version is not None:
            version = target_version if target_version is not None else manifest.rdb_version
            fetched = _reencode(shards, work / "reencoded.rdb", version, unsupported, name)
        else:
            (fetched,) = shards
        with open(fetched, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(fetched, final)
        _fsync_dir(directory)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _reencode(sources: list[Path], dest: Path, version: int, unsupported: str,
              name: str) -> Path:
    """Decode every file of ``sources`` and write them as one RDB ``version``; returns ``dest``.

    Function libraries come from the first file (a cluster's shards repeat them).
    """
    decoders = [Decoder(str(src)) for src in sources]
    entries = iter(decoders[0])
    first = next(entries, None)  # reads the header and the function records before the keys
    try:
        with open(dest, "wb") as out:
            writer = RdbWriter(out, version=version, drop_unsupported=(unsupported == "drop"))
            with writer:
                writer.begin(aux={b"rdbkit-seed": name.encode()},
                             functions=list(decoders[0].functions))
                if first is not None:
                    writer.write(first)
                    for entry in entries:
                        writer.write(entry)
                for decoder in decoders[1:]:
                    for entry in decoder:
                        writer.write(entry)
            for key, feature in writer.dropped:
                _log.warning("seed %s: dropped %s of key %r (RDB %d cannot express it)",
                             name, feature, key, version)
            out.flush()
    except EncodeError as exc:
        raise RestoreError(
            f"snapshot {name!r} cannot be written as RDB {version}: {exc}; pass "
            "unsupported='drop' to drop what that version cannot express"
        ) from exc
    finally:
        for decoder in decoders:
            decoder.close()
    return dest


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def binary_version(binary: str | os.PathLike[str]) -> tuple[str, tuple[int, ...]]:
    """(engine, version) of a redis-server or valkey-server binary, from ``--version``."""
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except OSError as exc:
        raise RestoreError(f"cannot run {binary}: {exc}") from exc
    match = re.search(r"v=(\d+(?:\.\d+)*)", out)
    if not match:
        raise RestoreError(f"cannot tell the version of {binary} from {out.strip()!r}")
    engine = "valkey" if "valkey" in out.lower() else "redis"
    return engine, tuple(int(p) for p in match.group(1).split("."))


def binary_rdb_version(binary: str | os.PathLike[str]) -> int:
    """The RDB version ``binary`` writes and reads."""
    return rdb_version_for(*binary_version(binary))


def settings_config(settings: dict[str, str], binary: str | os.PathLike[str]) -> dict[str, str]:
    """A snapshot's recorded settings as config lines ``binary`` understands.

    Redis before 7.0 knows the ``*-listpack-*`` settings by their ``ziplist``
    names (``set-max-listpack-*`` not at all); an empty value is written as ``""``.
    """
    engine, version = binary_version(binary)
    old = engine == "redis" and version[:1] < (7,)
    config = {}
    for name, value in settings.items():
        if old and "listpack" in name:
            if name.startswith("set-max-listpack"):
                continue
            name = name.replace("listpack", "ziplist")
        config[name] = value if value != "" else '""'
    return config


def start_seeded_server(
    binary: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    port: int,
    dbfilename: str = "dump.rdb",
    extra_config: dict[str, str] | None = None,
    *,
    ready_timeout: float = 60.0,
) -> subprocess.Popen:
    """Start ``binary`` (redis-server/valkey-server) on ``directory/dbfilename``.

    Listens on 127.0.0.1:``port`` (``extra_config`` may override ``bind`` and
    anything else), no saving, log in ``directory/server.log``. Returns once
    the node has loaded the file and answers PING; if it exits or is not ready
    in ``ready_timeout`` seconds it is stopped and RestoreError raised with the
    log's tail.
    """
    directory = Path(directory)
    settings = {
        "bind": "127.0.0.1",
        "port": str(port),
        "dir": str(directory),
        "dbfilename": dbfilename,
        "save": '""',
        "appendonly": "no",
        "daemonize": "no",
        "logfile": str(directory / "server.log"),
    }
    settings.update(extra_config or {})
    conf = directory / "rdbkit-seeded.conf"
    conf.write_text("".join(f"{k} {v}\n" for k, v in settings.items()))
    process = subprocess.Popen([str(binary), str(conf)], cwd=directory, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + ready_timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with Connection(settings["bind"].split()[0], port, timeout=5, connect_timeout=1,
                            client_name=None) as conn:
                conn.call("PING")
                return process
        except ReplyError as exc:  # -LOADING while the RDB is read
            last = str(exc)
        except ConnectionLostError as exc:
            last = str(exc)
        time.sleep(0.05)
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log = directory / "server.log"
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.exists() else ""
    raise RestoreError(
        f"{binary} did not start on {directory / dbfilename} (exit code {process.returncode}, "
        f"last: {last}); log:\n{tail}"
    )
