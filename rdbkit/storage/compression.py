"""Optional lz4 frame compression around any store.

Objects are stored as standard lz4 frames (readable by the ``lz4`` command
line tool) with a content checksum, so corruption is caught on read. Both
directions stream: memory stays at a few chunks whatever the object's size.

Ranged reads are refused: an lz4 frame has no index from uncompressed offsets
to compressed ones, so serving ``[start, end)`` would mean decompressing from
the start of the object, which would silently turn a cheap ranged GET into a
full download. Callers that need ranges (parallel restore) must read
uncompressed objects.

Unfinished uploads and the owner account are those of the inner store.

Sizes and checksums reported by head(), list() and put() are those of the
stored (compressed) bytes; the catalog's manifest records the compression.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

import lz4.frame

from rdbkit.errors import CorruptObjectError, StorageError
from rdbkit.storage.base import (
    CHUNK_SIZE,
    ObjectInfo,
    PendingUpload,
    Source,
    Store,
    iter_chunks,
)

#: Name recorded for this compression (e.g. in manifests).
COMPRESSION = "lz4"


class CompressedStore(Store):
    """Compress on put and decompress on get, storing lz4 frames in ``inner``."""

    def __init__(self, inner: Store, *, compression_level: int = 0) -> None:
        """Wrap ``inner``; ``compression_level`` is lz4's (0 fast ... 16 high compression)."""
        if not 0 <= compression_level <= 16:
            raise ValueError(f"compression_level {compression_level} is outside 0..16")
        self.inner = inner
        self.compression_level = compression_level

    def __repr__(self) -> str:
        return f"CompressedStore({self.inner!r})"

    def put(
        self,
        key: str,
        data: Source,
        *,
        size_hint: int | None = None,
        exclusive: bool = False,
        checksum: bool = True,
    ) -> ObjectInfo:
        """Compress ``data`` chunk by chunk into ``inner`` under ``key``.

        ``size_hint`` (uncompressed) is passed on as an upper bound.
        """
        return self.inner.put(
            key, self._compress(data), size_hint=size_hint, exclusive=exclusive,
            checksum=checksum,
        )

    def _compress(self, data: Source) -> Iterator[bytes]:
        compressor = lz4.frame.LZ4FrameCompressor(
            compression_level=self.compression_level, content_checksum=True
        )
        yield _lz4_call(compressor.begin)
        for chunk in iter_chunks(data):
            out = _lz4_call(compressor.compress, chunk)
            if out:
                yield out
        yield _lz4_call(compressor.flush)

    def get(self, key: str) -> BinaryIO:
        """Open the object as a stream of decompressed bytes; the caller closes it."""
        raw = self.inner.get(key)
        return io.BufferedReader(_Lz4Reader(raw, key), buffer_size=CHUNK_SIZE)  # type: ignore[return-value]

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Not supported for compressed objects (see the module docstring)."""
        raise StorageError(
            f"ranged read of {key!r} is not supported on an lz4-compressed store: "
            "compressed offsets do not map to uncompressed ones without decompressing "
            "from the start; use get() instead"
        )

    def head(self, key: str) -> ObjectInfo:
        """Describe the stored (compressed) object."""
        return self.inner.head(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """List the stored (compressed) objects."""
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        """Delete the object from ``inner``."""
        self.inner.delete(key)

    def exists(self, key: str) -> bool:
        """Whether ``inner`` holds ``key``."""
        return self.inner.exists(key)

    def list_pending(self, prefix: str = "") -> Iterator[PendingUpload]:
        """The unfinished uploads of ``inner``."""
        return self.inner.list_pending(prefix)

    def abort_pending(self, upload: PendingUpload) -> None:
        """Abort an unfinished upload of ``inner``."""
        self.inner.abort_pending(upload)

    def owner_account(self) -> str:
        """The account that owns ``inner``."""
        return self.inner.owner_account()


def _lz4_call(fn, *args) -> bytes:
    try:
        return fn(*args)
    except RuntimeError as exc:  # lz4 reports its own failures as RuntimeError
        raise StorageError(f"lz4 compression failed: {exc}") from exc


class _Lz4Reader(io.RawIOBase):
    """Raw stream decoding (possibly concatenated) lz4 frames from ``raw``."""

    def __init__(self, raw: BinaryIO, key: str) -> None:
        self._raw = raw
        self._key = key
        self._dec = lz4.frame.LZ4FrameDecompressor()
        self._pending = b""  # compressed bytes read but not yet fed
        self._started = False  # inside a frame (bytes fed since the last frame end)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        want = len(buffer)
        if want == 0:
            return 0
        try:
            while True:
                if self._dec.needs_input and not self._pending:
                    self._pending = self._raw.read(CHUNK_SIZE)
                    if not self._pending:
                        if self._started:
                            raise CorruptObjectError(f"lz4 object {self._key!r} is truncated")
                        return 0
                feed, self._pending = self._pending, b""
                self._started = True
                out = self._dec.decompress(feed, max_length=want)
                if self._dec.eof:
                    # Frame finished: keep what follows it for a next frame.
                    self._pending = (self._dec.unused_data or b"") + self._pending
                    self._dec = lz4.frame.LZ4FrameDecompressor()
                    self._started = False
                if out:
                    buffer[: len(out)] = out
                    return len(out)
        except RuntimeError as exc:
            raise CorruptObjectError(f"lz4 object {self._key!r} is corrupt: {exc}") from exc

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()
