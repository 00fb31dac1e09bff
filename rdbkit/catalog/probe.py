"""Validate an RDB stream while it passes through on its way to the store.

:class:`RdbProbe` wraps the chunks of a shard: every chunk is hashed, counted
and fed to the streaming decoder (keys only, values skipped) before it is
handed on, so a corrupt or truncated RDB fails the upload it is part of and
never becomes a snapshot. The decoder's own error (with its byte offset) is
kept in ``error`` because stores wrap whatever their source raises.
``progress(bytes, keys)`` is called per chunk with what that chunk added.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator

from rdbkit.codec import Decoder
from rdbkit.errors import DecodeError
from rdbkit.storage.base import Source, iter_chunks


class RdbProbe:
    """Iterate over this to pass ``source`` through; read the results afterwards."""

    def __init__(self, source: Source, *, progress=None) -> None:
        self._chunks: Iterable[bytes] = iter_chunks(source)
        self._decoder = Decoder(values=False)
        self._digest = hashlib.sha256()
        self._progress = progress
        self.size = 0
        self.keys = 0
        self.keys_by_type: Counter[str] = Counter()
        self.dbs: set[int] = set()
        self.version: int | None = None
        self.error: DecodeError | None = None
        self.complete = False

    @property
    def sha256(self) -> str:
        return "sha256:" + self._digest.hexdigest()

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._chunks:
                if not chunk:
                    continue
                self._digest.update(chunk)
                self.size += len(chunk)
                self._decoder.feed(chunk)
                keys_before = self.keys
                self._drain()
                if self._progress is not None:
                    self._progress(len(chunk), self.keys - keys_before)
                yield chunk
            self._drain()
            self._decoder.close()
            self.version = self._decoder.version
            self.complete = True
        except DecodeError as exc:
            self.error = exc
            raise

    def _drain(self) -> None:
        for entry in self._decoder:
            self.keys += 1
            self.keys_by_type[entry.type] += 1
            self.dbs.add(entry.db)
