"""The storage interface: where snapshot bytes live, behind one small API.

Every store maps '/'-separated relative keys to immutable objects. A put
takes a stream of unknown length and makes the object visible all at once or
not at all; a get returns a binary stream the caller closes.

A writer that dies mid-put can leave an unfinished upload behind (a
temporary file, an S3 multipart upload): never an object, but it takes
space. list_pending() finds those and abort_pending() removes one, so a
garbage collector can clean up after crashed writers.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Union

from rdbkit.errors import ObjectNotFoundError, StorageError

#: What put() accepts: a readable binary stream, an iterable of bytes-like
#: chunks, or a single bytes-like object.
Source = Union[BinaryIO, Iterable[bytes], bytes, bytearray, memoryview]

#: Chunk size used when reading a source stream or copying between streams.
CHUNK_SIZE = 1 << 20

#: Name prefix reserved for in-progress writes; keys may not use it.
TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object.

    ``checksum`` is ``"sha256:<hex>"`` of the stored bytes when the store
    recorded one at put time, else None. ``modified_at`` is timezone-aware UTC.
    """

    key: str
    size: int
    modified_at: datetime
    checksum: str | None = None


@dataclass(frozen=True)
class PendingUpload:
    """An upload that was started and never finished (a crashed writer's leftovers).

    ``key`` is the key it would have created; ``upload_id`` names the upload
    for abort_pending() (the S3 UploadId; for LocalStore the temporary file's
    path relative to the root); ``started_at`` is timezone-aware UTC.
    """

    key: str
    upload_id: str
    started_at: datetime


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative '/'-separated name.

    Raises StorageError naming the key when it is empty, absolute, has an empty,
    '.' or '..' component, contains NUL, or uses the reserved temporary prefix.
    """
    if not isinstance(key, str) or not key:
        raise StorageError(f"invalid key {key!r}: keys are non-empty strings")
    if key.startswith("/"):
        raise StorageError(f"invalid key {key!r}: keys are relative (no leading '/')")
    if "\x00" in key:
        raise StorageError(f"invalid key {key!r}: contains NUL")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise StorageError(f"invalid key {key!r}: empty, '.' or '..' component")
        if part.startswith(TEMP_PREFIX):
            raise StorageError(f"invalid key {key!r}: the prefix {TEMP_PREFIX!r} is reserved")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it could start a valid key ('' lists everything).

    Raises StorageError for an absolute prefix or one with a '.' or '..' component.
    """
    if not isinstance(prefix, str):
        raise StorageError(f"invalid prefix {prefix!r}: prefixes are strings")
    if prefix.startswith("/") or "\x00" in prefix:
        raise StorageError(f"invalid prefix {prefix!r}: prefixes are relative")
    if any(p in (".", "..") for p in prefix.split("/")):
        raise StorageError(f"invalid prefix {prefix!r}: '.' or '..' component")
    return prefix


def iter_chunks(source: Source, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield the bytes of ``source`` in chunks (at most ``chunk_size`` from a stream)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield bytes(source)
        return
    read = getattr(source, "read", None)
    if read is not None:
        while chunk := read(chunk_size):
            yield chunk
        return
    for chunk in source:
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise TypeError(f"stream chunks must be bytes-like, got {type(chunk).__name__}")
        yield chunk


class Store(abc.ABC):
    """A place objects live: put a stream, get a stream, list, head, delete."""

    @abc.abstractmethod
    def put(
        self,
        key: str,
        data: Source,
        *,
        size_hint: int | None = None,
        exclusive: bool = False,
        checksum: bool = True,
    ) -> ObjectInfo:
        """Store ``data`` (a stream of unknown length) under ``key``; all or nothing.

        ``size_hint`` is the expected size, if known (stores may size buffers or
        parts from it). With ``exclusive``, fail with StorageError if ``key``
        already exists, even when another process races for the same name.
        ``checksum=False`` skips the store's own sha256 (``ObjectInfo.checksum``
        is then None), for a caller that hashes the same bytes itself.
        Any failure, including one raised by ``data``, leaves no object behind
        and surfaces as StorageError.
        """

    @abc.abstractmethod
    def get(self, key: str) -> BinaryIO:
        """Open the object for reading; the caller closes the stream.

        Raises ObjectNotFoundError if there is no such object.
        """

    @abc.abstractmethod
    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Return bytes ``[start, end)`` of the object (end exclusive, like slicing).

        Raises StorageError unless ``0 <= start <= end <= size``.
        """

    @abc.abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """Describe one object. Raises ObjectNotFoundError if it does not exist."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield every complete object whose key starts with ``prefix``, in key order."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error (as in S3)."""

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        try:
            self.head(key)
        except ObjectNotFoundError:
            return False
        return True

    def list_pending(self, prefix: str = "") -> Iterator[PendingUpload]:
        """Yield unfinished uploads whose key starts with ``prefix`` (in no set order).

        A write still in progress is listed too: pick leftovers by
        ``started_at``. The default, for stores whose puts leave nothing
        behind, yields nothing.
        """
        validate_prefix(prefix)
        return iter(())

    def abort_pending(self, upload: PendingUpload) -> None:
        """Remove an unfinished upload; one already gone is not an error."""

    def owner_account(self) -> str:
        """The account that owns this store's objects (snapshots may not move between accounts).

        Raises StorageError when the store cannot tell.
        """
        raise StorageError(f"{self!r} cannot tell which account owns it")
