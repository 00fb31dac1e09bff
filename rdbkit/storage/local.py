"""A store in a local directory: the embedded default.

A put streams into a temporary file named ``.tmp-<random>-<name>`` in the
destination directory, fsyncs it, moves it to the final name in one atomic
step and fsyncs the directory, so a reader (or a crash) sees either the whole
object or nothing under the final name. A writer killed with SIGKILL can leave
a temporary file behind; those are never listed and their names can never be
keys. list_pending() reports them (the key is read back from the temporary
name, so a final name longer than 150 bytes comes back cut) and
abort_pending() unlinks one.

The owner account is the ``account`` given to the constructor, else the
local user name.

Checksums: the sha256 of the bytes is computed while streaming and kept in
the ``user.rdbkit.sha256`` extended attribute, set on the temporary file so it
arrives with the rename. On a filesystem without user xattrs the put still
returns the checksum, but head() and list() report None.
"""

from __future__ import annotations

import errno
import getpass
import hashlib
import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from rdbkit.errors import ObjectExistsError, ObjectNotFoundError, StorageError
from rdbkit.storage.base import (
    TEMP_PREFIX,
    ObjectInfo,
    PendingUpload,
    Source,
    Store,
    iter_chunks,
    validate_key,
    validate_prefix,
)

_log = logging.getLogger(__name__)

_XATTR = "user.rdbkit.sha256"
_XATTR_UNSUPPORTED = {errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM}
# Keep temporary names under the usual 255-byte file name limit.
_MAX_TEMP_SUFFIX = 150


class LocalStore(Store):
    """Objects as files under ``root``; keys map to relative paths."""

    def __init__(
        self, root: str | os.PathLike[str], *, create: bool = True, account: str | None = None
    ) -> None:
        """Open (and with ``create``, make) the directory ``root``.

        ``account`` is what owner_account() reports (default: the local user).
        Raises StorageError if it does not exist (or cannot be made) or is not
        a directory; ValueError for an empty or non-string ``account``.
        """
        if account is not None and not (isinstance(account, str) and account):
            raise ValueError(f"account {account!r} is not a non-empty string")
        self.account = account
        self.root = Path(root).absolute()
        if self.root.exists() and not self.root.is_dir():
            raise StorageError(f"local store root {self.root} is not a directory")
        try:
            if create:
                self.root.mkdir(parents=True, exist_ok=True)
            elif not self.root.is_dir():
                raise StorageError(f"local store root {self.root} does not exist")
        except OSError as exc:
            raise StorageError(f"cannot open local store at {self.root}: {exc}") from exc

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def put(
        self,
        key: str,
        data: Source,
        *,
        size_hint: int | None = None,
        exclusive: bool = False,
        checksum: bool = True,
    ) -> ObjectInfo:
        """Write ``data`` to ``key`` atomically (see the module docstring).

        With ``exclusive``, the final name is claimed with a hard link, which
        the kernel refuses if the name exists: of two racing writers exactly
        one wins. ``size_hint`` is accepted for interface parity and unused.
        """
        final = self._path(key)
        tmp: str | None = None
        try:
            self._make_parents(final.parent)
            fd, tmp = tempfile.mkstemp(
                prefix=TEMP_PREFIX, suffix="-" + final.name[:_MAX_TEMP_SUFFIX], dir=final.parent
            )
            digest = hashlib.sha256() if checksum else None
            size = 0
            with open(fd, "wb", closefd=True) as out:
                for chunk in iter_chunks(data):
                    out.write(chunk)
                    if digest is not None:
                        digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
                recorded = None
                if digest is not None:
                    recorded = "sha256:" + digest.hexdigest()
                    _set_checksum(out.fileno(), recorded)
            if exclusive:
                try:
                    os.link(tmp, final)
                except FileExistsError as exc:
                    raise ObjectExistsError(f"cannot put {key!r}: it already exists in {self.root}") from exc
                os.unlink(tmp)
            else:
                os.replace(tmp, final)
            tmp = None
            _fsync_dir(final.parent)
            st = os.stat(final)
        except BaseException as exc:
            if tmp is not None:
                _remove_quietly(tmp)
            if isinstance(exc, StorageError) or not isinstance(exc, Exception):
                raise  # KeyboardInterrupt and friends pass through unchanged
            raise StorageError(f"cannot put {key!r} in {self.root}: {exc}") from exc
        return ObjectInfo(key=key, size=size, modified_at=_mtime(st), checksum=recorded)

    def get(self, key: str) -> BinaryIO:
        """Open the object's file for reading."""
        path = self._path(key)
        try:
            return open(path, "rb")  # noqa: SIM115 - the caller owns the stream
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFoundError(f"no object {key!r} in {self.root}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {key!r} in {self.root}: {exc}") from exc

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Read bytes ``[start, end)``; the bounds must lie within the object."""
        with self.get(key) as f:
            try:
                size = os.fstat(f.fileno()).st_size
                _check_range(key, start, end, size)
                f.seek(start)
                data = f.read(end - start)
            except OSError as exc:
                raise StorageError(f"cannot read {key!r} in {self.root}: {exc}") from exc
        if len(data) != end - start:
            raise StorageError(f"object {key!r} shrank while reading range [{start}, {end})")
        return data

    def head(self, key: str) -> ObjectInfo:
        """Size, modification time and (where recorded) checksum of one object."""
        path = self._path(key)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFoundError(f"no object {key!r} in {self.root}") from exc
        except OSError as exc:
            raise StorageError(f"cannot stat {key!r} in {self.root}: {exc}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise ObjectNotFoundError(f"no object {key!r} in {self.root}")
        return ObjectInfo(key=key, size=st.st_size, modified_at=_mtime(st), checksum=_get_checksum(path))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield complete objects under ``prefix`` in key order; temporary files never appear."""
        validate_prefix(prefix)
        # Walk only the deepest directory the prefix names completely.
        start_dir = self.root.joinpath(*prefix.split("/")[:-1])
        keys = []
        try:
            for dirpath, dirnames, filenames in os.walk(start_dir):
                dirnames[:] = [d for d in dirnames if not d.startswith(TEMP_PREFIX)]
                rel = Path(dirpath).relative_to(self.root).as_posix()
                for name in filenames:
                    if name.startswith(TEMP_PREFIX):
                        continue
                    key = name if rel == "." else f"{rel}/{name}"
                    if key.startswith(prefix):
                        keys.append(key)
        except OSError as exc:
            raise StorageError(f"cannot list {prefix!r} in {self.root}: {exc}") from exc
        for key in sorted(keys):
            try:
                yield self.head(key)
            except ObjectNotFoundError:
                continue  # deleted since the walk

    def delete(self, key: str) -> None:
        """Unlink the object's file and fsync its directory; a missing key is fine."""
        path = self._path(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        except IsADirectoryError as exc:
            raise ObjectNotFoundError(f"no object {key!r} in {self.root}") from exc
        except OSError as exc:
            raise StorageError(f"cannot delete {key!r} in {self.root}: {exc}") from exc
        try:
            _fsync_dir(path.parent)
        except OSError as exc:
            raise StorageError(f"cannot sync directory after deleting {key!r}: {exc}") from exc

    def list_pending(self, prefix: str = "") -> Iterator[PendingUpload]:
        """Yield temporary files of puts that never finished (or are still running), by key.

        ``upload_id`` is the file's path relative to the root; ``started_at``
        its modification time (the last write, for a writer still going).
        """
        validate_prefix(prefix)
        start_dir = self.root.joinpath(*prefix.split("/")[:-1])
        found = []
        try:
            for dirpath, dirnames, filenames in os.walk(start_dir):
                dirnames[:] = [d for d in dirnames if not d.startswith(TEMP_PREFIX)]
                rel = Path(dirpath).relative_to(self.root).as_posix()
                for name in filenames:
                    final = _final_name(name)
                    if final is None:
                        continue
                    key = final if rel == "." else f"{rel}/{final}"
                    upload_id = name if rel == "." else f"{rel}/{name}"
                    if key.startswith(prefix):
                        found.append((key, upload_id))
        except OSError as exc:
            raise StorageError(f"cannot list pending {prefix!r} in {self.root}: {exc}") from exc
        for key, upload_id in sorted(found):
            try:
                st = os.stat(self.root / upload_id)
            except FileNotFoundError:
                continue  # finished or removed since the walk
            except OSError as exc:
                raise StorageError(f"cannot stat {upload_id!r} in {self.root}: {exc}") from exc
            yield PendingUpload(key=key, upload_id=upload_id, started_at=_mtime(st))

    def abort_pending(self, upload: PendingUpload) -> None:
        """Unlink the temporary file; one already gone is fine.

        Raises StorageError if ``upload_id`` is not a temporary file's name
        under the root (so an object can never be removed this way).
        """
        parts = upload.upload_id.split("/")
        if (
            upload.upload_id.startswith("/")
            or "\x00" in upload.upload_id
            or any(p in ("", ".", "..") for p in parts)
            or _final_name(parts[-1]) is None
            or any(p.startswith(TEMP_PREFIX) for p in parts[:-1])
        ):
            raise StorageError(f"{upload.upload_id!r} is not a pending upload in {self.root}")
        path = self.root.joinpath(*parts)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise StorageError(f"cannot remove pending upload {upload.upload_id!r}: {exc}") from exc
        try:
            _fsync_dir(path.parent)
        except OSError as exc:
            raise StorageError(
                f"cannot sync directory after aborting {upload.upload_id!r}: {exc}"
            ) from exc

    def owner_account(self) -> str:
        """The ``account`` given at construction, else the local user name (or uid)."""
        if self.account is not None:
            return self.account
        try:
            return getpass.getuser()
        except Exception:  # noqa: BLE001 - no name for this uid (KeyError or OSError)
            return str(os.getuid())

    def _make_parents(self, directory: Path) -> None:
        """Create missing directories below root, fsyncing each new entry's parent."""
        missing = []
        d = directory
        while d != self.root and not d.is_dir():
            missing.append(d)
            d = d.parent
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:
                if not d.is_dir():
                    raise
                continue  # another writer made it; they sync it
            _fsync_dir(d.parent)


def _final_name(name: str) -> str | None:
    """The final name a temporary file ``.tmp-<random>-<name>`` was writing, else None."""
    if not name.startswith(TEMP_PREFIX):
        return None
    rest = name[len(TEMP_PREFIX) :]
    _, dash, final = rest.partition("-")  # tempfile's random part has no '-'
    return (final if dash else rest) or None


def _check_range(key: str, start: int, end: int, size: int) -> None:
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= size):
        raise StorageError(f"range [{start}, {end}) is outside object {key!r} of {size} bytes")


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime, tz=timezone.utc)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        _log.warning("could not remove temporary file %s: %s", path, exc)


def _set_checksum(fd: int, checksum: str) -> None:
    try:
        os.setxattr(fd, _XATTR, checksum.encode())
    except OSError as exc:
        if exc.errno not in _XATTR_UNSUPPORTED:
            raise
        _log.debug("no user xattrs here; checksum not persisted (%s)", exc)


def _get_checksum(path: Path) -> str | None:
    try:
        return os.getxattr(path, _XATTR).decode()
    except OSError as exc:
        if exc.errno in _XATTR_UNSUPPORTED or exc.errno == errno.ENODATA:
            return None
        raise StorageError(f"cannot read checksum of {path}: {exc}") from exc
