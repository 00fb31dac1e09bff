"""The exception hierarchy: every error rdbkit raises on purpose is an RdbkitError.

Decode errors carry the byte offset at which the failing read started, so a
user can find the damage in the file (``rdbkit verify`` prints it).
"""

from __future__ import annotations


class RdbkitError(Exception):
    """Root of every error rdbkit raises deliberately."""


class DecodeError(RdbkitError, ValueError):
    """The input is not a valid RDB (or DUMP payload) at ``offset``."""

    def __init__(self, message: str, *, offset: int) -> None:
        super().__init__(f"{message} at byte {offset}")
        self.reason = message
        self.offset = offset

    def __reduce__(self):  # keep pickling (multiprocessing) working with the keyword
        return (_rebuild, (type(self), self.reason, self.offset))


def _rebuild(cls: type, message: str, offset: int) -> DecodeError:
    return cls(message, offset=offset)


class TruncatedError(DecodeError):
    """The input ended in the middle of an item (or before EOF and checksum)."""


class ChecksumError(DecodeError):
    """The stored CRC64 does not match the bytes read."""


class UnsupportedVersionError(DecodeError):
    """The header names an RDB version (or magic) this decoder does not know."""


class UnsupportedEncodingError(DecodeError):
    """A type or opcode byte whose layout is not established (never guessed)."""


class LimitExceededError(DecodeError):
    """A length in the input exceeds a configured limit (max_string_len, ...)."""


class EncodeError(RdbkitError, ValueError):
    """A value cannot be written in the requested format or version."""


class UrlError(RdbkitError, ValueError):
    """A store, source or target URL (or path) cannot be parsed."""


class StorageError(RdbkitError):
    """A snapshot store failed (local directory or S3)."""


class ObjectNotFoundError(StorageError):
    """The store holds no object under the requested key."""


class ObjectExistsError(StorageError):
    """An exclusive put found the key already taken (or lost a race for it)."""


class CorruptObjectError(StorageError):
    """A stored object's bytes fail their own check (recorded sha256, lz4 frame)."""


class CatalogError(RdbkitError):
    """A catalog rule was broken (name taken, quota, account, ...)."""


class SnapshotNotFoundError(CatalogError):
    """The catalog holds no snapshot of that name."""


class SnapshotExistsError(CatalogError):
    """A snapshot of that name already exists (or another process just took it)."""


class SnapshotChecksumError(CatalogError):
    """A stored shard does not match the size or sha256 its manifest records."""


class PolicyError(CatalogError, ValueError):
    """A policy setting is outside its allowed range (retention, window, ...)."""


class QuotaExceededError(CatalogError):
    """Too many manual snapshots of a source in the rolling 24 hours.

    ``next_allowed_at`` is when the next one will be accepted (UTC datetime).
    """

    def __init__(self, message: str, *, next_allowed_at) -> None:
        super().__init__(message)
        self.next_allowed_at = next_allowed_at


class AccountMismatchError(CatalogError):
    """A snapshot would move between accounts; ``owner`` and ``other`` name both."""

    def __init__(self, message: str, *, owner: str, other: str) -> None:
        super().__init__(message)
        self.owner = owner
        self.other = other


class CaptureError(RdbkitError):
    """A backup of a live node failed (the source, the link, or the data it sent)."""


class ReplicationRefusedError(CaptureError):
    """The source refuses or renamed the replication commands (SYNC/PSYNC/REPLCONF)."""


class RestoreError(RdbkitError):
    """A restore or seed failed; ``written`` says exactly what reached the target."""

    def __init__(self, message: str, *, written: dict | None = None) -> None:
        super().__init__(message)
        self.written = written or {}


class ProtocolError(RdbkitError):
    """A peer spoke invalid Redis protocol."""
