"""The node's RDB file: SAVE, BGSAVE (fork) and load at start, through the codec.

Saving is atomic: the RDB is written to ``temp-<pid>.rdb`` in the same
directory, fsynced, renamed over ``dbfilename`` and the directory fsynced,
so a crash at any moment leaves either the old dump or the new one, never a
torn file. Files are RDB version 10 (what redis 7.0 writes and reads).

Loading streams the file through the ``Decoder``: strings become ``bytes``,
values of types the node has no container for yet stay as
``keyspace.OpaqueValue`` (the decoded model) and are written back unchanged
by SAVE and DUMP. Function libraries and module aux records are kept and
written back too. Keys already expired are skipped, as redis does when a
primary loads.

BGSAVE forks: the child writes the snapshot (the fork gives it a frozen copy
of the keyspace) and exits with status 0 on success; the parent notices in
``poll`` (called from the node's periodic task) and updates LASTSAVE and the
change counter.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rdbkit.codec import Decoder, RdbWriter
from rdbkit.errors import RdbkitError
from rdbkit.node.keyspace import Keyspace, from_model, now_ms, to_model

_log = logging.getLogger(__name__)

RDB_VERSION = 10
#: The redis version the node's files and replies claim to be compatible with.
REDIS_COMPAT_VERSION = "7.0.15"


class LoadError(RdbkitError):
    """The dump file cannot be loaded (corrupt, or holds what the node cannot keep)."""


class SaveError(RdbkitError):
    """Writing the dump file failed (the previous dump is left untouched)."""


@dataclass
class SaveEntry:
    """The attributes ``Encoder.write`` reads from an entry."""

    db: int
    key: bytes
    type: str
    value: object
    expire_ms: int | None = None
    idle: int | None = None
    freq: int | None = None
    field_expires: dict | None = None


class Persistence:
    """SAVE/BGSAVE/load for one keyspace in ``config.dir / config.dbfilename``.

    ``config`` is any object with ``dir`` and ``dbfilename`` attributes, read at
    each use so CONFIG SET takes effect for the next save.
    """

    def __init__(self, keyspace: Keyspace, config) -> None:
        self.keyspace = keyspace
        self.config = config
        self.functions: list[bytes] = []
        self.module_aux: list = []
        self.last_save_time = int(time.time())
        self.last_save_status_ok = True
        self.last_bgsave_status_ok = True
        self.last_save_duration_s = -1.0
        self.child_pid: int | None = None
        self._child_started = 0.0
        self._dirty_at_fork = 0
        self.changes_at_last_save = 0
        self.saves = 0

    @property
    def directory(self) -> Path:
        return Path(self.config.dir)

    @property
    def path(self) -> Path:
        return self.directory / self.config.dbfilename

    @property
    def bgsave_in_progress(self) -> bool:
        return self.child_pid is not None

    # -- load --------------------------------------------------------------------

    def load(self) -> int:
        """Load the dump file if it exists; returns the number of keys loaded."""
        path = self.path
        if not path.exists():
            return 0
        started = time.monotonic()
        loaded = 0
        now = now_ms()
        databases = len(self.keyspace)
        try:
            with Decoder(str(path)) as decoder:
                for entry in decoder:
                    if entry.db >= databases:
                        raise LoadError(
                            f"{path}: key {entry.key!r} is in db {entry.db}, but the node has "
                            f"{databases} databases (raise --databases)")
                    if entry.expire_ms is not None and entry.expire_ms <= now:
                        continue
                    value = from_model(entry.type, entry.value, entry.field_expires, entry.encoding)
                    db = self.keyspace[entry.db]
                    db.data[entry.key] = value
                    if entry.expire_ms is not None:
                        db.set_expire(entry.key, entry.expire_ms, _touch=False)
                    loaded += 1
                self.functions = list(decoder.functions)
                self.module_aux = list(decoder.module_aux)
        except RdbkitError as exc:
            if isinstance(exc, LoadError):
                raise
            raise LoadError(f"cannot load {path}: {exc}") from exc
        self.keyspace.dirty = 0
        _log.info("loaded %d keys from %s in %.3f s", loaded, path, time.monotonic() - started)
        return loaded

    # -- save --------------------------------------------------------------------

    def _write_file(self, target: Path) -> None:
        """Write the whole keyspace to ``target`` atomically (temp + fsync + rename)."""
        temp = target.parent / f"temp-{os.getpid()}.rdb"
        now = now_ms()
        aux = {
            b"redis-ver": REDIS_COMPAT_VERSION.encode(),
            b"redis-bits": b"64",
            b"ctime": str(int(time.time())).encode(),
            b"used-mem": b"0",
            b"aof-base": b"0",
        }
        try:
            with open(temp, "wb") as fileobj:
                writer = RdbWriter(fileobj, version=RDB_VERSION)
                writer.begin(aux, functions=self.functions,
                             module_aux=[m for m in self.module_aux if m.when == 1])
                for db in self.keyspace.dbs:
                    if not db.data:
                        continue
                    writer.resize_hint(db.index, len(db.data), len(db.expires))
                    for key, value in db.data.items():
                        expire = db.expires.get(key)
                        if expire is not None and expire <= now:
                            continue
                        kind, model, field_expires = to_model(value)
                        writer.write(SaveEntry(db.index, key, kind, model, expire,
                                               field_expires=field_expires))
                writer.close(module_aux_after=[m for m in self.module_aux if m.when == 2])
                fileobj.flush()
                os.fsync(fileobj.fileno())
            os.replace(temp, target)
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except BaseException:
            try:
                temp.unlink()
            except OSError:
                pass
            raise

    def save(self) -> None:
        """SAVE in the foreground; SaveError (the old dump intact) on failure."""
        started = time.monotonic()
        dirty = self.keyspace.dirty
        try:
            self._write_file(self.path)
        except (OSError, RdbkitError) as exc:
            self.last_save_status_ok = False
            _log.error("SAVE to %s failed: %s", self.path, exc)
            raise SaveError(f"saving {self.path} failed: {exc}") from exc
        self.keyspace.dirty -= dirty
        self.last_save_time = int(time.time())
        self.last_save_status_ok = True
        self.last_save_duration_s = time.monotonic() - started
        self.saves += 1

    def bgsave(self, in_child: Callable[[], None] | None = None) -> int:
        """Fork a child that writes the dump; returns its pid.

        ``in_child`` runs first in the child (the node closes its inherited
        sockets there, so an orphaned child never holds the port).
        """
        if self.child_pid is not None:
            raise SaveError("a background save is already in progress")
        self._dirty_at_fork = self.keyspace.dirty
        self._child_started = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child: write and leave without running any parent cleanup
            status = 1
            try:
                if in_child is not None:
                    in_child()
                self._write_file(self.path)
                status = 0
            except BaseException as exc:  # noqa: BLE001 - reported through the exit status
                try:
                    os.write(2, f"rdbkit node: background save failed: {exc}\n".encode())
                except OSError:
                    pass
            finally:
                os._exit(status)
        self.child_pid = pid
        _log.info("background saving started by pid %d", pid)
        return pid

    def poll(self) -> None:
        """Reap a finished BGSAVE child (non-blocking) and record its outcome."""
        if self.child_pid is None:
            return
        try:
            pid, status = os.waitpid(self.child_pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.child_pid, 1 << 8
        if pid == 0:
            return
        self.child_pid = None
        ok = os.waitstatus_to_exitcode(status) == 0
        self.last_bgsave_status_ok = ok
        self.last_save_duration_s = time.monotonic() - self._child_started
        if ok:
            self.keyspace.dirty = max(0, self.keyspace.dirty - self._dirty_at_fork)
            self.last_save_time = int(time.time())
            self.saves += 1
            _log.info("background saving terminated with success")
        else:
            _log.error("background saving failed (status %d)", status)
            try:
                (self.directory / f"temp-{pid}.rdb").unlink()
            except OSError:
                pass

    def kill_child(self) -> None:
        """Stop a running BGSAVE child (at shutdown)."""
        if self.child_pid is not None:
            try:
                os.kill(self.child_pid, 9)
                os.waitpid(self.child_pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            try:
                (self.directory / f"temp-{self.child_pid}.rdb").unlink()
            except OSError:
                pass
            self.child_pid = None
