"""DUMP payloads cut straight from an RDB file: no value decoding, no re-encoding.

A DUMP payload (../shared/RDB_FORMAT.md §11) is ``type byte | value | u16 LE
version | u64 LE CRC64``, and the type byte and value are exactly the bytes
an RDB entry of that version holds around its key (§1: ``prefix opcodes* TYPE
key value``). So when the target reads the file's own format — same family
(REDIS or VALKEY magic) and the file's RDB version ≤ the target's — the
payload is::

    file[type byte] + file[end of key : end of entry] + u16(file's version) + crc64(...)

with the SOURCE's version in the footer (a server accepts any payload version
up to its own). :func:`raw_allowed` is that rule; :func:`restore_snapshot
<rdbkit.restore.restore.restore_snapshot>` applies it per shard file.

How entries are found: the C :class:`~rdbkit.codec.Decoder` with
``values=False`` walks (and validates: lengths, containers, LZF) the whole
file over an mmap and gives each entry's ``offset``/``size``, db, key,
expiry, idle and freq. Only the entry's prefix opcodes (EXPIRETIME_MS,
EXPIRETIME, IDLE, FREQ) and the key's string encoding (plain length,
int8/16/32, LZF: ``0xC3 clen ulen <clen bytes>``) are parsed here, in
Python, to find the type byte and where the value starts. Every length read
is bounds-checked against the entry's extent; an inconsistency (which the
decoder's walk should have made impossible) is a :class:`DecodeError` at
the offending byte, and so is a type byte or key length that disagrees with
what the decoder reported.

Entries that cannot be cut: a Redis KEY_META block (opcode 243, RDB 13+),
or any other file-level record inside the entry's unit (KeyDB's ``AUX``
between an expiry and the key, a SELECTDB there; docs/codec.md). Such an
entry is decoded on its own with the full decoder and yielded as a
:class:`DecodedEntry` (with ``value``, no ``payload``), which restore
re-encodes with ``dump_payload`` like any decoded entry: the fallback is per
entry, so the rest of the file stays on the fast path.

When the rule says no (``target_version`` given and not reachable as-is, or
``raw=False``), iteration is the plain full decoder's (``Entry`` objects
with values) over the same mmap.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from typing import Any, NamedTuple, Self

from rdbkit.codec import Decoder, crc64
from rdbkit.errors import DecodeError

#: Prefix opcodes this module steps over (anything else in front of the type byte
#: sends the entry to the per-entry full decode).
_OP_KEY_META = 243
_OP_IDLE = 248
_OP_FREQ = 249
_OP_EXPIRETIME_MS = 252
_OP_EXPIRETIME = 253

#: Type name the decoder reports for each type byte (both families agree on 0-22;
#: 22/23 are hash layouts under either magic).
_TYPE_NAMES: tuple[str | None, ...] = (
    "string", "list", "set", "zset", "hash", "zset", "module", "module", None,
    "hash", "list", "set", "zset", "hash", "list", "stream", "hash", "zset", "list",
    "stream", "set", "stream", "hash", "hash", "hash", "hash", "stream", "stream",
) + (None,) * 228


class RawEntry(NamedTuple):
    """One key whose DUMP payload was cut from the file (``payload`` is ready to RESTORE)."""

    db: int
    key: bytes
    type: str
    expire_ms: int | None
    idle: int | None
    freq: int | None
    payload: bytes

    # What restore reads of an entry besides the fields: a raw payload holds the value
    # (and any hash field TTLs) inside it.
    value = None
    field_expires = None


class DecodedEntry:
    """An entry the raw path could not cut, decoded on its own (same attributes as ``Entry``)."""

    __slots__ = ("db", "encoding", "expire_ms", "field_expires", "freq", "idle", "key",
                 "offset", "size", "type", "value")

    def __init__(self, db: int, entry: Any, offset: int, size: int) -> None:
        self.db = db
        self.key = entry.key
        self.type = entry.type
        self.value = entry.value
        self.expire_ms = entry.expire_ms
        self.idle = entry.idle
        self.freq = entry.freq
        self.field_expires = entry.field_expires
        self.encoding = entry.encoding
        self.offset = offset
        self.size = size

    def __repr__(self) -> str:
        return f"DecodedEntry(db={self.db}, key={self.key!r}, type={self.type!r})"


def read_magic(head: bytes) -> tuple[str, int] | None:
    """(magic, version) from an RDB's first 9 bytes, None if they are not an RDB magic
    (the decoder then reports the error)."""
    try:
        if head[:5] == b"REDIS" and head[5:9].isdigit():
            return "REDIS", int(head[5:9])
        if head[:6] == b"VALKEY" and head[6:9].isdigit():
            return "VALKEY", int(head[6:9])
    except ValueError:  # pragma: no cover - isdigit() guards int()
        pass
    return None


def raw_allowed(magic: str, version: int, target_version: int) -> bool:
    """May a file of ``magic``/``version`` be sent as raw payloads to a target reading
    RDB ``target_version``? Same family (VALKEY magic ⇔ target version ≥ 80) and not
    newer than the target (the rule of rdbkit/backup/cooperative.py's raw path)."""
    return (magic == "VALKEY") == (target_version >= 80) and version <= target_version


def _bad(message: str, offset: int, key: bytes | None = None) -> DecodeError:
    where = f" (key {key!r})" if key is not None else ""
    return DecodeError(f"raw payload: {message}{where}", offset=offset)


def _length(buf: Any, p: int, end: int, key: bytes | None) -> tuple[int, int]:
    """A plain length field at ``p`` (not a special encoding): (value, offset after it)."""
    if p >= end:
        raise _bad("length field runs past the entry", p, key)
    b = buf[p]
    kind = b >> 6
    if kind == 0:
        return b & 0x3F, p + 1
    if kind == 1:
        if p + 2 > end:
            raise _bad("14-bit length runs past the entry", p, key)
        return ((b & 0x3F) << 8) | buf[p + 1], p + 2
    if b == 0x80:
        if p + 5 > end:
            raise _bad("32-bit length runs past the entry", p, key)
        return int.from_bytes(buf[p + 1:p + 5], "big"), p + 5
    if b == 0x81:
        if p + 9 > end:
            raise _bad("64-bit length runs past the entry", p, key)
        return int.from_bytes(buf[p + 1:p + 9], "big"), p + 9
    raise _bad(f"bad length byte 0x{b:02x}", p, key)


def _skip_key(buf: Any, p: int, end: int, key: bytes) -> int:
    """Offset just after the RDB string (the key) at ``p``; checks it against ``key``."""
    if p >= end:
        raise _bad("key runs past the entry", p, key)
    b = buf[p]
    if b < 0x40:  # the common case: 6-bit length
        q = p + 1 + b
        n = b
    elif b >> 6 != 3:
        n, q = _length(buf, p, end, key)
        q += n
    else:
        enc = b & 0x3F
        if enc == 0:
            q, n = p + 2, -1
        elif enc == 1:
            q, n = p + 3, -1
        elif enc == 2:
            q, n = p + 5, -1
        elif enc == 3:  # LZF: clen, ulen, clen bytes
            clen, r = _length(buf, p + 1, end, key)
            ulen, r = _length(buf, r, end, key)
            if ulen != len(key):
                raise _bad(f"LZF key's length {ulen} is not the decoded key's {len(key)}", p, key)
            q, n = r + clen, -1
        else:
            raise _bad(f"unknown string encoding 0x{b:02x} for the key", p, key)
    if n >= 0 and n != len(key):
        raise _bad(f"key length {n} is not the decoded key's {len(key)}", p, key)
    if q > end:
        raise _bad("key runs past the entry", p, key)
    return q


class RawEntries:
    """Iterate one local RDB (path or buffer) as :class:`RawEntry` (see the module docstring).

    ``target_version``: the RDB version the target reads; when given and
    :func:`raw_allowed` says no, iteration yields the full decoder's entries
    instead (``raw`` tells which). ``raw=True`` cuts payloads whatever the
    rule says (the caller vouches for the target), ``raw=False`` never does.
    The header is read at construction: ``magic``/``version`` are set then;
    ``decoder`` is the Decoder in use (its ``functions``, ``aux`` ... fill in
    as iteration goes). Decoder options (``verify_checksum``, limits) are passed on.
    Counters ``cut`` and ``decoded`` say how many entries took each path.
    """

    def __init__(self, source: Any, *, target_version: int | None = None,
                 raw: bool | None = None, **decoder_options: Any) -> None:
        if "values" in decoder_options:
            raise TypeError("RawEntries chooses the decoder's values= itself")
        self._file = None
        self._map: Any = None
        if isinstance(source, (str, os.PathLike)):
            self._file = open(source, "rb")  # noqa: SIM115 - closed by close()
            try:
                if os.fstat(self._file.fileno()).st_size:
                    self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
                else:
                    self._map = b""
            except BaseException:
                self._file.close()
                raise
            buf: Any = self._map
        else:
            buf = bytes(source) if not isinstance(source, (bytes, mmap.mmap)) else source
        self._buf = buf
        header = read_magic(buf[:9])
        self.magic, self.version = header if header is not None else (None, None)
        if raw is None:
            raw = header is not None and (
                target_version is None or raw_allowed(header[0], header[1], target_version))
        self.raw = bool(raw) and header is not None
        self._options = decoder_options
        self.decoder = Decoder(self._reader(), values=not self.raw, **decoder_options)
        self.cut = 0
        self.decoded = 0

    def _reader(self) -> Any:
        return _MapReader(self._buf)

    @property
    def functions(self) -> list[bytes]:
        return self.decoder.functions

    def close(self) -> None:
        self.decoder.close()
        if self._map is not None and not isinstance(self._map, bytes):
            self._map.close()
        self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Any]:
        try:
            if not self.raw:
                for entry in self.decoder:
                    self.decoded += 1
                    yield entry
                return
            yield from self._cut()
        finally:
            self.close()

    def _cut(self) -> Iterator[Any]:
        buf = self._buf
        names = _TYPE_NAMES
        footer_version = (self.version or 0).to_bytes(2, "little")
        simple = (_OP_EXPIRETIME_MS, _OP_EXPIRETIME, _OP_IDLE, _OP_FREQ)
        cut = 0
        try:
            for e in self.decoder:
                p = e.offset
                end = p + e.size
                key = e.key
                if end > len(buf) or p < 9:
                    raise _bad(f"entry extent {p}+{e.size} outside the file", p, key)
                t = buf[p]
                if t >= 242:  # prefix opcodes
                    while t in simple:
                        if t == _OP_EXPIRETIME_MS:
                            p += 9
                        elif t == _OP_EXPIRETIME:
                            p += 5
                        elif t == _OP_FREQ:
                            p += 2
                        else:
                            p = _length(buf, p + 1, end, key)[1]
                        if p >= end:
                            raise _bad("prefix opcodes run past the entry", p, key)
                        t = buf[p]
                    if t >= 242:  # KEY_META, AUX, SELECTDB ... inside the unit
                        self.cut = cut
                        self.decoded += 1
                        yield self._decode_one(e)
                        continue
                if names[t] != e.type:
                    raise _bad(f"type byte {t} is not a {e.type}", p, key)
                b = buf[p + 1] if p + 1 < end else 0xFF
                if b < 0x40:  # inline the common 6-bit key length
                    v = p + 2 + b
                    if b != len(key) or v > end:
                        v = _skip_key(buf, p + 1, end, key)
                    elif buf[p + 2:v] != key:
                        raise _bad("key bytes are not the decoded key", p + 1, key)
                else:
                    v = _skip_key(buf, p + 1, end, key)
                body = b"".join((buf[p:p + 1], buf[v:end], footer_version))
                cut += 1
                yield RawEntry(e.db, key, e.type, e.expire_ms, e.idle, e.freq,
                               body + crc64(body).to_bytes(8, "little"))
        finally:
            self.cut = cut

    def _decode_one(self, e: Any) -> DecodedEntry:
        """One entry's unit decoded alone: magic + the unit + EOF (+ checksum 0 = not checked)."""
        buf = self._buf
        unit = buf[:9] + buf[e.offset:e.offset + e.size] + b"\xff"
        if (self.version or 0) >= 5:
            unit += b"\0" * 8
        options = {k: v for k, v in self._options.items() if k != "verify_checksum"}
        decoder = Decoder(**options)
        decoder.feed(unit)
        try:
            found = list(decoder)
            decoder.close()
        except DecodeError as exc:
            raise _bad(f"entry could not be decoded on its own: {exc.reason}",
                       e.offset + max(0, exc.offset - 9), e.key) from exc
        if len(found) != 1 or found[0].key != e.key:
            raise _bad("entry could not be decoded on its own", e.offset, e.key)
        return DecodedEntry(e.db, found[0], e.offset, e.size)


class _MapReader:
    """``read(n)`` over the mmap (or bytes) for the decoder; the cutter indexes the same buffer."""

    __slots__ = ("_map", "_pos")

    def __init__(self, buf: Any) -> None:
        self._map = buf
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        start = self._pos
        stop = len(self._map) if n is None or n < 0 else min(len(self._map), start + n)
        self._pos = stop
        return self._map[start:stop]


def raw_entries(path_or_buffer: Any, *, target_version: int | None = None,
                raw: bool | None = None, **decoder_options: Any) -> RawEntries:
    """The entries of one local RDB with their DUMP payloads cut from the file.

    Returns a :class:`RawEntries` (iterate it; it closes itself at the end).
    Yields :class:`RawEntry` tuples ``(db, key, type, expire_ms, idle, freq,
    payload)``, plus a :class:`DecodedEntry` for any entry that cannot be cut;
    when ``target_version`` is given and the file cannot go to it as-is, the
    full decoder's entries (see :class:`RawEntries`)."""
    return RawEntries(path_or_buffer, target_version=target_version, raw=raw, **decoder_options)


__all__ = ["DecodedEntry", "RawEntries", "RawEntry", "raw_allowed", "raw_entries", "read_magic"]
