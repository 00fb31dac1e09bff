"""The pure-Python twin of the RDB decoder (``docs/codec.md`` is its contract).

Same names, values, error classes and error offsets as the C implementation
(``ext/_codec.pyx``); ``rdbkit.codec`` picks one of the two. Format facts are in
``../shared/RDB_FORMAT.md``; section numbers below refer to it.

How it works: the input is split into *units* (the header, one top-level
opcode record, one key with its prefix opcodes, EOF + checksum). A unit is
parsed from a buffer through a ``_Cursor`` whose every read checks what is
left; a read that runs out raises the internal ``_Short`` carrying where the
read started and how many bytes it needed. The unit is then thrown away and
parsed again from its first byte once the buffer holds at least that much
(msgpack's rollback); state changes only when a unit is complete, so an
error leaves the decoder as it was. Consumed bytes are dropped, so memory is
bounded by the largest unit. Nested encodings (quicklist -> listpack, stream
-> listpack) are walked with loops: no input-driven recursion.
"""

from __future__ import annotations

import os as _os
import re as _re
import struct as _struct
from collections.abc import Iterator
from typing import Any, BinaryIO

from rdbkit.codec.model import (
    ModuleAux,
    ModuleValue,
    SlotInfo,
    Stream,
    StreamConsumer,
    StreamEntry,
    StreamGroup,
    StreamID,
    StreamPending,
    module_name,
)
from rdbkit.errors import (
    ChecksumError,
    DecodeError,
    LimitExceededError,
    TruncatedError,
    UnsupportedEncodingError,
    UnsupportedVersionError,
)

__all__ = [
    "DEFAULT_MAX_BUFFER_SIZE",
    "DEFAULT_MAX_COLLECTION_LEN",
    "DEFAULT_MAX_STRING_LEN",
    "Decoder",
    "Entry",
    "crc64",
    "lzf_decompress",
]

DEFAULT_MAX_STRING_LEN = 512 * 1024 * 1024
DEFAULT_MAX_COLLECTION_LEN = 2**32
DEFAULT_MAX_BUFFER_SIZE = 1024 * 1024 * 1024

_U64_MASK = (1 << 64) - 1
_HFE_MAX = (1 << 48) - 1  # EB_EXPIRE_TIME_MAX: largest hash field expireAt Redis accepts
_LZF_MAX_RATIO = 88  # a 3-byte LZF back-reference yields at most 264 bytes

_U32BE = _struct.Struct(">I")
_U64BE = _struct.Struct(">Q")
_I8 = _struct.Struct("<b")
_I16 = _struct.Struct("<h")
_I32 = _struct.Struct("<i")
_I64 = _struct.Struct("<q")
_U64LE = _struct.Struct("<Q")
_F32 = _struct.Struct("<f")
_F64 = _struct.Struct("<d")
_ID = _struct.Struct(">QQ")
_ZL_HEADER = _struct.Struct("<IIH")
_LP_HEADER = _struct.Struct("<IH")
_INTSET_HEADER = _struct.Struct("<II")

# Score text accepted in type-3 zsets and ziplist/listpack zset entries (docs/codec.md).
_SCORE_RE = _re.compile(
    rb"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    _re.IGNORECASE,
)

# type byte -> (Entry.type, Entry.encoding); 22/23 are the Redis pre-GA meanings
# unless the file has the VALKEY magic (see _VALKEY_TYPES).
_TYPES = {
    0: ("string", "string"),
    1: ("list", "linkedlist"),
    2: ("set", "hashtable"),
    3: ("zset", "skiplist"),
    4: ("hash", "hashtable"),
    5: ("zset", "skiplist"),
    7: ("module", "module"),
    9: ("hash", "zipmap"),
    10: ("list", "ziplist"),
    11: ("set", "intset"),
    12: ("zset", "ziplist"),
    13: ("hash", "ziplist"),
    14: ("list", "quicklist"),
    15: ("stream", "stream"),
    16: ("hash", "listpack"),
    17: ("zset", "listpack"),
    18: ("list", "quicklist2"),
    19: ("stream", "stream"),
    20: ("set", "listpack"),
    21: ("stream", "stream"),
    22: ("hash", "hashtable"),
    23: ("hash", "listpack_ex"),
    24: ("hash", "hashtable"),
    25: ("hash", "listpack_ex"),
    26: ("stream", "stream"),
}
_VALKEY_MAX_TYPE = 22  # VALKEY magic: 0..21 as Redis, 22 = HASH_2, 23 = PATH_HASH (unsupported)

# Established-elsewhere layouts we refuse to guess (RDB_FORMAT.md marks them unverified).
_REDIS_UNSUPPORTED = {
    6: "type 6 (MODULE_PRE_GA, Redis 4.0 release candidates) cannot be skipped without its module",
    27: "type 27 (STREAM_LISTPACKS_5, NACK zone) has no established byte layout",
    28: "type 28 (ARRAY) has no established byte layout",
    29: "type 29 (HASH_TMPL_LP) has no established byte layout",
    30: "type 30 (HASH_TMPL_LP_REF) has no established byte layout",
    31: "type 31 (HASH_TMPL_ARRAY) has no established byte layout",
    32: "type 32 (HASH_TMPL_ARRAY_REF) has no established byte layout",
    33: "type 33 (GCRA) has no established byte layout",
    107: "Redis Enterprise opcode 107 (RAM_LRU) is not part of stock RDB",
}
_VALKEY_UNSUPPORTED = {
    6: _REDIS_UNSUPPORTED[6],
    23: "Valkey type 23 (PATH_HASH) has no established byte layout",
    107: _REDIS_UNSUPPORTED[107],
    242: "Valkey opcode 242 (UPDATE) has no established byte layout",
    243: "Valkey opcode 243 (SLOT_IMPORT) has no established byte layout",
}

_OP_SLOT_INFO = 244
_OP_FUNCTION2 = 245
_OP_FUNCTION_PRE_GA = 246
_OP_MODULE_AUX = 247
_OP_IDLE = 248
_OP_FREQ = 249
_OP_AUX = 250
_OP_RESIZEDB = 251
_OP_EXPIRETIME_MS = 252
_OP_EXPIRETIME = 253
_OP_SELECTDB = 254
_OP_EOF = 255
_OP_KEY_META = 243  # Redis (REDIS magic) only
_FILE_OPCODES = frozenset(
    {
        _OP_SLOT_INFO,
        _OP_FUNCTION2,
        _OP_FUNCTION_PRE_GA,
        _OP_MODULE_AUX,
        _OP_AUX,
        _OP_RESIZEDB,
        _OP_SELECTDB,
        _OP_EOF,
    }
)


# --------------------------------------------------------------------------- CRC64


def _crc64_table() -> tuple[int, ...]:
    poly = 0x95AC9329AC4BC9B5  # reflected form of 0xAD93D23594C935A9 (§10)
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc64_table()


def crc64(data: bytes, crc: int = 0) -> int:
    """Jones CRC-64 of ``data`` (RDB §10); pass the previous result as ``crc`` to continue."""
    table = _CRC_TABLE
    crc &= _U64_MASK
    for byte in memoryview(data).cast("B"):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


# --------------------------------------------------------------------------- LZF


class _Bad(Exception):
    """Internal: an embedded structure (LZF, ziplist, listpack, ...) is corrupt."""


def _lzf(src: bytes, ulen: int) -> bytes:
    """Decompress LZF ``src`` into exactly ``ulen`` bytes or raise ``_Bad``."""
    out = bytearray()
    i = 0
    n = len(src)
    while i < n:
        ctrl = src[i]
        i += 1
        if ctrl < 32:
            run = ctrl + 1
            if i + run > n:
                raise _Bad(f"literal run of {run} bytes at input byte {i - 1} overruns the input")
            if len(out) + run > ulen:
                raise _Bad(f"output exceeds the declared {ulen} bytes")
            out += src[i : i + run]
            i += run
            continue
        run = ctrl >> 5
        if run == 7:
            if i >= n:
                raise _Bad("back-reference length byte missing")
            run += src[i]
            i += 1
        if i >= n:
            raise _Bad("back-reference offset byte missing")
        dist = ((ctrl & 0x1F) << 8) + src[i] + 1
        i += 1
        run += 2
        ref = len(out) - dist
        if ref < 0:
            raise _Bad(f"back-reference {dist} bytes before the output start")
        if len(out) + run > ulen:
            raise _Bad(f"output exceeds the declared {ulen} bytes")
        if dist >= run:
            out += out[ref : ref + run]
        else:  # overlapping copy repeats the last `dist` bytes
            pattern = bytes(out[ref:])
            out += (pattern * (run // dist + 1))[:run]
    if len(out) != ulen:
        raise _Bad(f"output is {len(out)} bytes, declared {ulen}")
    return bytes(out)


def lzf_decompress(data: bytes, expected_len: int) -> bytes:
    """Decompress LZF ``data`` that must expand to exactly ``expected_len`` bytes.

    Raises ``DecodeError(offset=0)`` on corrupt input or a length mismatch.
    """
    data = bytes(data)
    if expected_len < 0:
        raise DecodeError(f"corrupt LZF data: negative expected length {expected_len}", offset=0)
    if expected_len > _LZF_MAX_RATIO * len(data):
        raise DecodeError(
            f"corrupt LZF data: {len(data)} bytes cannot expand to {expected_len}", offset=0
        )
    try:
        return _lzf(data, expected_len)
    except _Bad as exc:
        raise DecodeError(f"corrupt LZF data: {exc}", offset=0) from None


# --------------------------------------------------------------------------- embedded containers


def _as_bytes(x: int | bytes) -> bytes:
    return x if type(x) is bytes else str(x).encode()


def _parse_score(text: bytes) -> float:
    if _SCORE_RE.fullmatch(text) is None:
        raise _Bad(f"score {text[:40]!r} is not a number")
    return float(text)


def _score_of(x: int | bytes) -> float:
    return float(x) if type(x) is int else _parse_score(x)


def _ziplist(d: bytes) -> list:
    """Walk a ziplist (§6): elements as ``bytes`` or ``int``."""
    n = len(d)
    if n < 11:
        raise _Bad(f"{n} bytes is shorter than the 11-byte minimum")
    zlbytes, _zltail, zllen = _ZL_HEADER.unpack_from(d, 0)
    if zlbytes != n:
        raise _Bad(f"header says {zlbytes} bytes, the string holds {n}")
    last = n - 1  # the terminator's position; entries must end at or before it
    out: list = []
    p = 10
    while True:
        b = d[p]
        if b == 0xFF:
            if p != last:
                raise _Bad(f"terminator at byte {p}, {last - p} bytes before the end")
            break
        idx = len(out)
        p += 1 if b < 254 else 5  # prevlen
        if p >= last:
            raise _Bad(f"entry {idx} overruns the ziplist")
        e = d[p]
        kind = e >> 6
        if kind == 0:
            size = e & 0x3F
            p += 1
        elif kind == 1:
            if p + 2 > last:
                raise _Bad(f"entry {idx} overruns the ziplist")
            size = ((e & 0x3F) << 8) | d[p + 1]
            p += 2
        elif e == 0x80:
            if p + 5 > last:
                raise _Bad(f"entry {idx} overruns the ziplist")
            size = _U32BE.unpack_from(d, p + 1)[0]
            p += 5
        elif kind == 2:
            raise _Bad(f"entry {idx} has invalid encoding byte 0x{e:02x}")
        else:
            if e == 0xC0:
                width, fmt = 2, _I16
            elif e == 0xD0:
                width, fmt = 4, _I32
            elif e == 0xE0:
                width, fmt = 8, _I64
            elif e == 0xF0:
                width, fmt = 3, None
            elif e == 0xFE:
                width, fmt = 1, _I8
            elif 0xF1 <= e <= 0xFD:
                out.append((e & 0x0F) - 1)
                p += 1
                continue
            else:
                raise _Bad(f"entry {idx} has invalid encoding byte 0x{e:02x}")
            p += 1
            if p + width > last:
                raise _Bad(f"entry {idx} overruns the ziplist")
            if fmt is None:
                out.append(int.from_bytes(d[p : p + 3], "little", signed=True))
            else:
                out.append(fmt.unpack_from(d, p)[0])
            p += width
            continue
        if p + size > last:
            raise _Bad(f"entry {idx} overruns the ziplist")
        out.append(d[p : p + size])
        p += size
    if zllen != 65535 and zllen != len(out):
        raise _Bad(f"header counts {zllen} entries, found {len(out)}")
    return out


def _backlen_size(size: int) -> int:
    if size < 128:
        return 1
    if size < 16384:
        return 2
    if size < 2097152:
        return 3
    if size < 268435456:
        return 4
    return 5


def _listpack(d: bytes) -> list:
    """Walk a listpack (§6): elements as ``bytes`` or ``int``; backlens are checked."""
    n = len(d)
    if n < 7:
        raise _Bad(f"{n} bytes is shorter than the 7-byte minimum")
    total, count = _LP_HEADER.unpack_from(d, 0)
    if total != n:
        raise _Bad(f"header says {total} bytes, the string holds {n}")
    last = n - 1
    out: list = []
    p = 6
    while True:
        b = d[p]
        if b == 0xFF:
            if p != last:
                raise _Bad(f"terminator at byte {p}, {last - p} bytes before the end")
            break
        idx = len(out)
        start = p
        if b < 0x80:
            out.append(b)
            p += 1
        elif b < 0xC0:
            size = b & 0x3F
            if p + 1 + size > last:
                raise _Bad(f"entry {idx} overruns the listpack")
            out.append(d[p + 1 : p + 1 + size])
            p += 1 + size
        elif b < 0xE0:
            if p + 2 > last:
                raise _Bad(f"entry {idx} overruns the listpack")
            v = ((b & 0x1F) << 8) | d[p + 1]
            out.append(v - 8192 if v >= 4096 else v)
            p += 2
        elif b < 0xF0:
            if p + 2 > last:
                raise _Bad(f"entry {idx} overruns the listpack")
            size = ((b & 0x0F) << 8) | d[p + 1]
            if p + 2 + size > last:
                raise _Bad(f"entry {idx} overruns the listpack")
            out.append(d[p + 2 : p + 2 + size])
            p += 2 + size
        elif b == 0xF0:
            if p + 5 > last:
                raise _Bad(f"entry {idx} overruns the listpack")
            size = int.from_bytes(d[p + 1 : p + 5], "little")
            if p + 5 + size > last:
                raise _Bad(f"entry {idx} overruns the listpack")
            out.append(d[p + 5 : p + 5 + size])
            p += 5 + size
        elif b <= 0xF4:
            width = (2, 3, 4, 8)[b - 0xF1]
            if p + 1 + width > last:
                raise _Bad(f"entry {idx} overruns the listpack")
            out.append(int.from_bytes(d[p + 1 : p + 1 + width], "little", signed=True))
            p += 1 + width
        else:
            raise _Bad(f"entry {idx} has invalid encoding byte 0x{b:02x}")
        size = p - start
        blen = _backlen_size(size)
        if p + blen > last:
            raise _Bad(f"entry {idx} backlen overruns the listpack")
        v = d[p]
        if v & 0x80:
            raise _Bad(f"entry {idx} has a malformed backlen")
        for k in range(1, blen):
            c = d[p + k]
            if not c & 0x80:
                raise _Bad(f"entry {idx} has a malformed backlen")
            v = (v << 7) | (c & 0x7F)
        if v != size:
            raise _Bad(f"entry {idx} backlen says {v}, entry is {size} bytes")
        p += blen
    if count != 65535 and count != len(out):
        raise _Bad(f"header counts {count} elements, found {len(out)}")
    return out


def _intset(d: bytes) -> tuple[int, ...]:
    n = len(d)
    if n < 8:
        raise _Bad(f"{n} bytes is shorter than the 8-byte header")
    enc, length = _INTSET_HEADER.unpack_from(d, 0)
    if enc not in (2, 4, 8):
        raise _Bad(f"encoding {enc} is not 2, 4 or 8")
    if n != 8 + enc * length:
        raise _Bad(f"{length} members of {enc} bytes do not fill {n - 8} bytes")
    values = _struct.unpack_from(f"<{length}{'hiq'[enc // 4]}", d, 8)
    for i in range(1, length):
        if values[i - 1] >= values[i]:
            raise _Bad(f"member {i} is not above member {i - 1} (unsorted or duplicate)")
    return values


def _zipmap(d: bytes) -> list[tuple[bytes, bytes]]:
    n = len(d)
    if n < 2:
        raise _Bad(f"{n} bytes is shorter than the 2-byte minimum")
    zmlen = d[0]
    last = n - 1
    out = []
    p = 1
    while True:
        b = d[p]
        if b == 0xFF:
            if p != last:
                raise _Bad(f"terminator at byte {p}, {last - p} bytes before the end")
            break
        idx = len(out)
        lens = []
        for part in ("key", "value"):
            if p >= last:
                raise _Bad(f"pair {idx} overruns the zipmap")
            b = d[p]
            if b < 254:
                size = b
                p += 1
            elif b == 254:
                if p + 5 > last:
                    raise _Bad(f"pair {idx} overruns the zipmap")
                size = int.from_bytes(d[p + 1 : p + 5], "little")
                p += 5
            else:
                raise _Bad(f"pair {idx} {part} has length byte 255")
            free = 0
            if part == "value":
                if p >= last:
                    raise _Bad(f"pair {idx} overruns the zipmap")
                free = d[p]
                p += 1
            if p + size + free > last:
                raise _Bad(f"pair {idx} overruns the zipmap")
            lens.append(d[p : p + size])
            p += size + free
        out.append((lens[0], lens[1]))
    if zmlen < 254 and zmlen != len(out):
        raise _Bad(f"header counts {zmlen} pairs, found {len(out)}")
    return out


_EMBEDDED_ERRORS = (_Bad, IndexError, _struct.error, OverflowError)


def _stream_node(els: list, master: tuple[int, int], out: list | None) -> None:
    """Walk one stream listpack node (§7), appending live entries to ``out``."""

    def num(i: int, what: str) -> int:
        if i >= len(els):
            raise _Bad(f"{what} missing (element {i} of {len(els)})")
        v = els[i]
        if type(v) is not int:
            raise _Bad(f"{what} (element {i}) is not an integer")
        return v

    count = num(0, "master entry count")
    deleted = num(1, "master deleted count")
    nfields = num(2, "master field count")
    if count < 0 or deleted < 0 or nfields < 0:
        raise _Bad("negative count in the master entry")
    if 3 + nfields >= len(els):
        raise _Bad(f"master field count {nfields} overruns the node")
    master_fields = [_as_bytes(x) for x in els[3 : 3 + nfields]]
    if num(3 + nfields, "master entry terminator") != 0:
        raise _Bad("master entry terminator is not 0")
    i = 4 + nfields
    live = dead = 0
    ms0, seq0 = master
    while i < len(els):
        flags = num(i, "entry flags")
        ms_delta = num(i + 1, "entry ms delta")
        seq_delta = num(i + 2, "entry seq delta")
        i += 3
        if flags & 2:  # SAMEFIELDS
            if i + nfields > len(els):
                raise _Bad("entry values overrun the node")
            vals = els[i : i + nfields]
            i += nfields
            fields = master_fields
            expect = nfields + 3
        else:
            nf = num(i, "entry field count")
            if nf < 0:
                raise _Bad("negative entry field count")
            i += 1
            if i + 2 * nf > len(els):
                raise _Bad("entry fields overrun the node")
            pairs = els[i : i + 2 * nf]
            i += 2 * nf
            fields = pairs[0::2]
            vals = pairs[1::2]
            expect = 2 * nf + 4
        if num(i, "entry lp-count") != expect:
            raise _Bad(f"entry lp-count is not {expect}")
        i += 1
        if flags & 1:  # DELETED
            dead += 1
            continue
        live += 1
        if out is not None:
            sid = StreamID((ms0 + ms_delta) & _U64_MASK, (seq0 + seq_delta) & _U64_MASK)
            out.append(
                StreamEntry(sid, tuple((_as_bytes(f), _as_bytes(v)) for f, v in zip(fields, vals)))
            )
    if live != count or dead != deleted:
        raise _Bad(f"master entry counts {count} live + {deleted} deleted, found {live} + {dead}")


# --------------------------------------------------------------------------- cursor


class _Short(Exception):
    """Internal: a read needs bytes not buffered yet (``start``..``need`` absolute)."""

    def __init__(self, start: int, need: int, key: bytes | None) -> None:
        super().__init__(start, need)
        self.start = start
        self.need = need
        self.key = key


def _key_note(key: bytes | None) -> str:
    if key is None:
        return ""
    shown = repr(key[:64]) + ("..." if len(key) > 64 else "")
    return f" (key {shown})"


class _Cursor:
    """Reads one unit out of the decoder's buffer; every read checks what is left."""

    __slots__ = ("base", "buf", "end", "key", "max_coll", "max_str", "pos", "skim")

    def __init__(self, buf: bytearray, pos: int, base: int, max_str: int, max_coll: int) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf)
        self.base = base
        self.key: bytes | None = None
        self.max_str = max_str
        self.max_coll = max_coll
        self.skim = False  # only find the item's extent: no LZF, no container walks

    def off(self) -> int:
        return self.base + self.pos

    def error(self, cls: type, message: str, offset: int) -> DecodeError:
        return cls(message + _key_note(self.key), offset=offset)

    def _need(self, n: int) -> None:
        if self.pos + n > self.end:
            raise _Short(self.base + self.pos, self.base + self.pos + n, self.key)

    def u8(self) -> int:
        p = self.pos
        if p >= self.end:
            raise _Short(self.base + p, self.base + p + 1, self.key)
        self.pos = p + 1
        return self.buf[p]

    def take(self, n: int) -> bytes:
        p = self.pos
        if p + n > self.end:
            raise _Short(self.base + p, self.base + p + n, self.key)
        self.pos = p + n
        return bytes(self.buf[p : p + n])

    def unpack(self, st: _struct.Struct) -> Any:
        p = self.pos
        if p + st.size > self.end:
            raise _Short(self.base + p, self.base + p + st.size, self.key)
        self.pos = p + st.size
        return st.unpack_from(self.buf, p)[0]

    def length(self, what: str) -> int:
        """A length-encoded integer (§5); the whole 1/2/5/9-byte field is one read."""
        p = self.pos
        buf = self.buf
        if p >= self.end:
            raise _Short(self.base + p, self.base + p + 1, self.key)
        b = buf[p]
        kind = b >> 6
        if kind == 0:
            self.pos = p + 1
            return b & 0x3F
        if kind == 1:
            self._need(2)
            self.pos = p + 2
            return ((b & 0x3F) << 8) | buf[p + 1]
        if b == 0x80:
            self._need(5)
            self.pos = p + 5
            return _U32BE.unpack_from(buf, p + 1)[0]
        if b == 0x81:
            self._need(9)
            self.pos = p + 9
            return _U64BE.unpack_from(buf, p + 1)[0]
        if kind == 3:
            raise self.error(
                DecodeError,
                f"{what}: expected a length, found string encoding byte 0x{b:02x}",
                self.base + p,
            )
        raise self.error(DecodeError, f"{what}: invalid length byte 0x{b:02x}", self.base + p)

    def count(self, what: str) -> int:
        off = self.base + self.pos
        n = self.length(what)
        if n > self.max_coll:
            raise self.error(
                LimitExceededError, f"{what} {n} exceeds max_collection_len {self.max_coll}", off
            )
        return n

    def string(self, what: str) -> bytes:
        """An RDB string (§5): raw, integer-encoded or LZF."""
        p = self.pos
        if p >= self.end:
            raise _Short(self.base + p, self.base + p + 1, self.key)
        b = self.buf[p]
        if b < 0xC0:
            off = self.base + p
            n = self.length(what)
            if n > self.max_str:
                raise self.error(
                    LimitExceededError,
                    f"{what} length {n} exceeds max_string_len {self.max_str}",
                    off,
                )
            return self.take(n)
        off = self.base + p
        self.pos = p + 1
        enc = b & 0x3F
        if enc == 0:
            return b"%d" % self.unpack(_I8)
        if enc == 1:
            return b"%d" % self.unpack(_I16)
        if enc == 2:
            return b"%d" % self.unpack(_I32)
        if enc == 3:
            clen = self.length(what)
            if clen > self.max_str:
                raise self.error(
                    LimitExceededError,
                    f"{what} compressed length {clen} exceeds max_string_len {self.max_str}",
                    off,
                )
            ulen = self.length(what)
            if ulen > self.max_str:
                raise self.error(
                    LimitExceededError,
                    f"{what} length {ulen} exceeds max_string_len {self.max_str}",
                    off,
                )
            if ulen > _LZF_MAX_RATIO * clen:
                raise self.error(
                    LimitExceededError, f"{what}: {clen} LZF bytes cannot expand to {ulen}", off
                )
            data = self.take(clen)
            try:
                return _lzf(data, ulen)
            except _Bad as exc:
                raise self.error(DecodeError, f"corrupt LZF string: {exc}", off) from None
        raise self.error(DecodeError, f"{what}: unknown string encoding 0x{b:02x}", off)

    def embedded(self, kind: str, parse: Any) -> tuple[Any, int]:
        """Read a string holding a ``kind`` container and walk it with ``parse``."""
        off = self.base + self.pos
        data = self.string(kind)
        try:
            return parse(data), off
        except _EMBEDDED_ERRORS as exc:
            raise self.error(DecodeError, f"corrupt {kind}: {exc}", off) from None

    def score(self) -> float:
        """A type-3 zset score: 1-byte length + ASCII, or 253/254/255 = nan/+inf/-inf."""
        off = self.base + self.pos
        n = self.u8()
        if n == 253:
            return float("nan")
        if n == 254:
            return float("inf")
        if n == 255:
            return float("-inf")
        text = self.take(n)
        try:
            return _parse_score(text)
        except _Bad as exc:
            raise self.error(DecodeError, f"bad zset score: {exc}", off) from None

    def module_body(self, build: bool) -> tuple[bytes | None, tuple]:
        """Walk module opcodes (§8) up to and including EOF (0)."""
        start = self.pos
        items: list = []
        while True:
            op_off = self.base + self.pos
            op = self.length("module opcode")
            if op == 0:
                break
            if op == 1 or op == 2:
                v: Any = self.length("module integer")
            elif op == 3:
                v = self.unpack(_F32)
            elif op == 4:
                v = self.unpack(_F64)
            elif op == 5:
                v = self.string("module string")
            else:
                raise self.error(DecodeError, f"unknown module opcode {op}", op_off)
            if build:
                items.append((op, v))
        if not build:
            return None, ()
        return bytes(self.buf[start : self.pos]), tuple(items)


# --------------------------------------------------------------------------- Entry


# Entry attributes in the order of the docs/codec.md table (astuple() order).
_ENTRY_FIELDS = (
    "db",
    "key",
    "type",
    "value",
    "expire_ms",
    "idle",
    "freq",
    "field_expires",
    "encoding",
    "offset",
    "size",
)


class Entry:
    """One key read from an RDB file (see docs/codec.md for each attribute)."""

    __slots__ = (
        "db",
        "encoding",
        "expire_ms",
        "field_expires",
        "freq",
        "idle",
        "key",
        "offset",
        "size",
        "type",
        "value",
    )

    def __init__(
        self,
        db: int,
        key: bytes,
        type: str,
        value: Any,
        expire_ms: int | None,
        idle: int | None,
        freq: int | None,
        field_expires: dict[bytes, int] | None,
        encoding: str,
        offset: int,
        size: int,
    ) -> None:
        self.db = db
        self.key = key
        self.type = type
        self.value = value
        self.expire_ms = expire_ms
        self.idle = idle
        self.freq = freq
        self.field_expires = field_expires
        self.encoding = encoding
        self.offset = offset
        self.size = size

    def astuple(self) -> tuple:
        """The attributes in the order of the docs/codec.md table."""
        return tuple(getattr(self, name) for name in _ENTRY_FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entry):
            return NotImplemented
        return self.astuple() == other.astuple()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Entry(db={self.db}, key={self.key!r}, type={self.type!r}, encoding={self.encoding!r})"
        )


# --------------------------------------------------------------------------- Decoder


class Decoder:
    """Decode an RDB stream into ``Entry`` objects, pushed (``feed``) or pulled (file).

    Memory is bounded by the largest single unit (entry or opcode record), never
    the file; ``max_buffer_size`` caps that. Raises ``rdbkit.errors`` classes only.
    """

    def __init__(
        self,
        fileobj: Any = None,
        *,
        verify_checksum: bool = True,
        values: bool = True,
        max_string_len: int = DEFAULT_MAX_STRING_LEN,
        max_collection_len: int = DEFAULT_MAX_COLLECTION_LEN,
        max_buffer_size: int = DEFAULT_MAX_BUFFER_SIZE,
        read_size: int = 1 << 20,
    ) -> None:
        for name, v in (
            ("max_string_len", max_string_len),
            ("max_collection_len", max_collection_len),
            ("max_buffer_size", max_buffer_size),
            ("read_size", read_size),
        ):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name} must be a non-negative int, got {v!r}")
        if read_size == 0:
            raise ValueError("read_size must be positive")
        if max_string_len > max_buffer_size:
            raise ValueError(
                f"max_string_len {max_string_len} exceeds max_buffer_size {max_buffer_size}"
            )
        self._verify = bool(verify_checksum)
        self._values = bool(values)
        self._max_str = max_string_len
        self._max_coll = max_collection_len
        self._max_buf = max_buffer_size
        self._read_size = read_size

        self._buf = bytearray()
        self._base = 0  # absolute offset of _buf[0]
        self._pos = 0  # index in _buf of the first unconsumed byte
        self._need = 0  # push mode: absolute end the next attempt needs buffered
        self._crc = 0
        self._db = 0
        self._closed = False

        self.version: int | None = None
        self.magic: str | None = None
        self.aux: dict[bytes, bytes] = {}
        self.functions: list[bytes] = []
        self.module_aux: list[ModuleAux] = []
        self.slot_info: list[SlotInfo] = []
        self.resize_hints: dict[int, tuple[int, int]] = {}
        self.done = False
        self.checksum: int | None = None
        self.checksum_status: str | None = None
        self.trailing_bytes = 0

        self._file: BinaryIO | None = None
        self._owns_file = False
        if fileobj is not None:
            if isinstance(fileobj, (str, bytes, _os.PathLike)):
                self._file = open(fileobj, "rb")  # noqa: SIM115 - closed in _release()
                self._owns_file = True
            elif hasattr(fileobj, "read") or hasattr(fileobj, "readinto"):
                self._file = fileobj
            else:
                raise TypeError(
                    f"fileobj must be a path or have .read(), got {type(fileobj).__name__}"
                )

    # ------------------------------------------------------------ public API

    def feed(self, data: bytes) -> None:
        """Push mode: append ``data``; iterate afterwards to get the entries it completes."""
        if self._file is not None:
            raise RuntimeError("feed() is for push mode; this Decoder reads its own file")
        if self._closed:
            raise RuntimeError("feed() called after close()")
        if self.done:
            self.trailing_bytes += len(data)
            return
        self._buf += data

    def tell(self) -> int:
        """Absolute offset of the first byte not yet consumed (start of the next item)."""
        return self._base + self._pos

    def __iter__(self) -> Iterator[Entry]:
        return self

    def __next__(self) -> Entry:
        while True:
            if self.done:
                raise StopIteration
            push = self._file is None
            if push and self._base + len(self._buf) < self._need:
                raise StopIteration
            try:
                if push and self._need:
                    self._skim()  # a retry: first check the whole item is here
                entry = self._step()
            except DecodeError:
                self._release()
                raise
            except _Short as short:
                self._need = short.need
                self._limit(short)
                if push:
                    raise StopIteration from None
                if not self._fill(short.need):
                    self._release()
                    raise self._truncated(short) from None
                continue
            if entry is not None:
                return entry

    def close(self) -> None:
        """Finish: push mode raises ``TruncatedError`` if the data stopped before EOF/checksum.

        Push mode first decodes whatever is still buffered (entries not iterated
        are discarded). Pull mode only releases the file.
        """
        if self._closed:
            return
        self._closed = True
        if self._file is not None:
            self._release()
            return
        while not self.done:
            try:
                self._step()
            except _Short as short:
                self._limit(short)
                raise self._truncated(short) from None

    def __enter__(self) -> Decoder:  # noqa: PYI034 - typing.Self needs 3.11, we support 3.10
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True
            self._release()

    # ------------------------------------------------------------ internals

    def _limit(self, short: _Short) -> None:
        """Raise LimitExceededError if the item being read needs more than max_buffer_size."""
        unit_start = self._base + self._pos
        if short.need - unit_start > self._max_buf:
            raise LimitExceededError(
                f"item needs {short.need - unit_start} buffered bytes, above max_buffer_size "
                f"{self._max_buf}{_key_note(short.key)}",
                offset=unit_start,
            ) from None

    @staticmethod
    def _truncated(short: _Short) -> TruncatedError:
        return TruncatedError(
            f"input ends {short.need - short.start} bytes short of a complete read{_key_note(short.key)}",
            offset=short.start,
        )

    def _release(self) -> None:
        f = self._file
        if f is not None and self._owns_file:
            self._owns_file = False
            f.close()

    def _read(self, n: int) -> bytes:
        f = self._file
        assert f is not None
        read = getattr(f, "read", None)
        if read is not None:
            chunk = read(n)
        else:
            tmp = bytearray(n)
            got = f.readinto(tmp)
            chunk = bytes(tmp[: got or 0])
        return bytes(chunk) if chunk else b""

    def _fill(self, need: int) -> bool:
        """Pull mode: read until ``need`` (absolute) is buffered; False at end of input.

        Each read asks for at most max(read_size, bytes already buffered for the
        unit), so big units grow geometrically and nothing is sized from a claim.
        """
        unit_start = self._base + self._pos
        have = self._base + len(self._buf)
        while have < need:
            want = max(self._read_size, min(have - unit_start, self._max_buf))
            chunk = self._read(want)
            if not chunk:
                return False
            self._buf += chunk
            have += len(chunk)
        return True

    def _consume(self, new_pos: int, crc: bool) -> None:
        if crc:
            self._crc = crc64(self._buf[self._pos : new_pos], self._crc)
        self._pos = new_pos
        self._need = 0
        if self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._base += self._pos
            self._pos = 0

    def _skim(self) -> None:
        """Raise ``_Short`` if the item at the current position is still incomplete.

        Walks only its file-level layout (``_skim_value``) and commits nothing;
        an error found on the way is left for the full parse to report.
        """
        if self.version is None or self._buf[self._pos] == _OP_EOF:
            return
        c = _Cursor(self._buf, self._pos, self._base, self._max_str, self._max_coll)
        c.end = min(c.end, self._pos + self._max_buf)
        c.skim = True
        try:
            self._unit(c)
        except (DecodeError, _Bad):
            return

    def _step(self) -> Entry | None:
        """Parse one unit at the current position and commit it; ``_Short`` if incomplete."""
        c = _Cursor(self._buf, self._pos, self._base, self._max_str, self._max_coll)
        # An item may not span more than max_buffer_size bytes, however it arrived:
        # a read past that window runs short and is reported as a limit by _limit().
        c.end = min(c.end, self._pos + self._max_buf)
        if self.version is None:
            self._header(c)
            return None
        crc = self._verify and self.version >= 5
        result = self._unit(c)
        if result is None:  # EOF (+ checksum): already committed
            return None
        commit, entry = result
        if commit is not None:
            commit()
        self._consume(c.pos, crc)
        return entry

    def _header(self, c: _Cursor) -> None:
        raw = c.take(9)
        if raw[:5] == b"REDIS" and raw[5:9].isdigit():
            magic, version = "REDIS", int(raw[5:9])
            ok = 1 <= version <= 14
        elif raw[:6] == b"VALKEY" and raw[6:9].isdigit():
            magic, version = "VALKEY", int(raw[6:9])
            ok = version in (80, 81)
        else:
            raise DecodeError(f"not an RDB file: bad magic {raw!r}", offset=0)
        if not ok:
            raise UnsupportedVersionError(
                f"unsupported RDB version {version} ({magic} magic)", offset=0
            )
        self.magic = magic
        self.version = version
        self._consume(c.pos, self._verify)

    def _unit(self, c: _Cursor) -> tuple | None:
        """One top-level item: returns (commit callable or None, Entry or None)."""
        valkey = self.magic == "VALKEY"
        unsupported = _VALKEY_UNSUPPORTED if valkey else _REDIS_UNSUPPORTED
        start = c.off()
        expire_ms = idle = freq = None
        prefixed = False
        db = self._db
        commits: list = []  # file-level opcodes met between a key's prefix opcodes and its type
        while True:
            op_off = c.off()
            t = c.u8()
            if t in unsupported:
                raise UnsupportedEncodingError(unsupported[t], offset=op_off)
            if prefixed and t in _FILE_OPCODES:
                # Redis (and KeyDB, which writes AUX mvcc-tstamp there) keeps the
                # pending expiry/idle/freq across other opcodes until the next key.
                if t == _OP_EOF:
                    raise DecodeError(
                        "EOF follows a key prefix opcode; expected a key", offset=op_off
                    )
                if t == _OP_SELECTDB:
                    db = c.length("SELECTDB db number")
                    commits.append(lambda db=db: setattr(self, "_db", db))
                else:
                    commits.append(self._file_opcode(c, t, op_off)[0])
                continue
            if t == _OP_EXPIRETIME_MS:
                expire_ms = c.unpack(_I64)
            elif t == _OP_EXPIRETIME:
                expire_ms = c.unpack(_I32) * 1000
            elif t == _OP_IDLE:
                idle = c.length("IDLE")
            elif t == _OP_FREQ:
                freq = c.u8()
            elif t == _OP_KEY_META and not valkey:
                n = c.count("KEY_META class count")
                for _ in range(n):
                    c.take(4)  # class spec: name, version, flags (§8)
                    c.module_body(False)
            else:
                break
            prefixed = True

        if t in _FILE_OPCODES:
            return self._file_opcode(c, t, start)
        if t not in _TYPES or (valkey and t > _VALKEY_MAX_TYPE):
            raise DecodeError(f"unknown type byte {t}", offset=op_off)
        key = c.string("key")
        c.key = key
        type_name, encoding = _TYPES[t]
        value, field_expires = self._value(c, t, valkey)
        entry = Entry(
            db,
            key,
            type_name,
            value,
            expire_ms,
            idle,
            freq,
            field_expires,
            encoding,
            start,
            c.off() - start,
        )
        if not commits:
            return None, entry

        def commit_all() -> None:
            for commit in commits:
                commit()

        return commit_all, entry

    def _file_opcode(self, c: _Cursor, t: int, start: int) -> tuple | None:
        if t == _OP_EOF:
            end_of_eof = c.pos
            stored = None
            status = "absent"
            assert self.version is not None
            if self.version >= 5:
                ck_off = c.off()
                stored = c.unpack(_U64LE)
                if stored == 0:
                    status = "disabled"
                elif not self._verify:
                    status = "unchecked"
                else:
                    calc = crc64(self._buf[self._pos : end_of_eof], self._crc)
                    if calc != stored:
                        raise ChecksumError(
                            f"checksum mismatch: stored 0x{stored:016x}, computed 0x{calc:016x}",
                            offset=ck_off,
                        )
                    status = "ok"
            self.checksum = stored
            self.checksum_status = status
            self.done = True
            self._consume(c.pos, False)
            self.trailing_bytes += len(self._buf) - self._pos
            self._buf = bytearray()
            self._base += self._pos
            self._pos = 0
            if self._file is not None:
                self._release()
            return None
        if t == _OP_SELECTDB:
            db = c.length("SELECTDB db number")

            def commit() -> None:
                self._db = db

        elif t == _OP_RESIZEDB:
            db_size = c.length("RESIZEDB db size")
            expires_size = c.length("RESIZEDB expires size")

            def commit() -> None:
                self.resize_hints[self._db] = (db_size, expires_size)

        elif t == _OP_AUX:
            aux_key = c.string("AUX key")
            aux_value = c.string("AUX value")

            def commit() -> None:
                self.aux[aux_key] = aux_value

        elif t == _OP_MODULE_AUX:
            module_id = c.length("MODULE_AUX module id")
            when_off = c.off()
            when_opcode = c.length("MODULE_AUX when opcode")
            if when_opcode != 2:
                raise DecodeError(
                    f"MODULE_AUX when opcode is {when_opcode}, expected 2 (UINT)", offset=when_off
                )
            when = c.length("MODULE_AUX when")
            raw, items = c.module_body(True)
            name, encver = module_name(module_id)
            aux = ModuleAux(module_id, name, encver, when, raw or b"", items)

            def commit() -> None:
                self.module_aux.append(aux)

        elif t == _OP_FUNCTION2:
            code = c.string("FUNCTION2 library code")

            def commit() -> None:
                self.functions.append(code)

        elif t == _OP_FUNCTION_PRE_GA:
            c.string("FUNCTION name")
            c.string("FUNCTION engine")
            if c.length("FUNCTION description flag"):
                c.string("FUNCTION description")
            code = c.string("FUNCTION code")

            def commit() -> None:
                self.functions.append(code)

        else:  # _OP_SLOT_INFO
            info = SlotInfo(
                c.length("SLOT_INFO slot"),
                c.length("SLOT_INFO keys"),
                c.length("SLOT_INFO expires"),
            )

            def commit() -> None:
                self.slot_info.append(info)

        return commit, None

    # ------------------------------------------------------------ values

    def _empty(self, c: _Cursor, what: str, off: int) -> DecodeError:
        return c.error(DecodeError, f"empty {what}", off)

    def _value(self, c: _Cursor, t: int, valkey: bool) -> tuple[Any, dict | None]:
        """Parse the value of type byte ``t``: (value or None, field_expires or None)."""
        if c.skim:
            _skim_value(c, t, valkey)
            return None, None
        build = self._values
        if t == 0:
            s = c.string("string value")
            return (s if build else None), None

        if t in (1, 2, 3, 4, 5):
            off = c.off()
            n = c.count("element count")
            if n == 0:
                raise self._empty(c, ("", "list", "set", "zset", "hash", "zset")[t], off)
            if t == 1 or t == 2:
                items = [c.string("element") for _ in range(n)]
                return ((items if t == 1 else set(items)) if build else None), None
            if t == 3:
                zset = {}
                for _ in range(n):
                    member = c.string("zset member")
                    zset[member] = c.score()
                return (zset if build else None), None
            if t == 5:
                zset = {}
                for _ in range(n):
                    member = c.string("zset member")
                    zset[member] = c.unpack(_F64)
                return (zset if build else None), None
            h = {}
            for _ in range(n):
                field = c.string("hash field")
                h[field] = c.string("hash value")
            return (h if build else None), None

        if t == 7:
            module_id = c.length("module id")
            raw, items = c.module_body(build)
            if not build:
                return None, None
            name, encver = module_name(module_id)
            return ModuleValue(module_id, name, encver, raw or b"", items), None

        if t == 9:
            pairs, off = c.embedded("zipmap", _zipmap)
            if not pairs:
                raise self._empty(c, "zipmap", off)
            return (dict(pairs) if build else None), None

        if t in (10, 11, 12, 13, 16, 17, 20):
            if t == 11:
                members, off = c.embedded("intset", _intset)
                if not members:
                    raise self._empty(c, "intset", off)
                return ({b"%d" % m for m in members} if build else None), None
            kind = "ziplist" if t in (10, 12, 13) else "listpack"
            els, off = c.embedded(kind, _ziplist if kind == "ziplist" else _listpack)
            if not els:
                raise self._empty(c, kind, off)
            if t == 10:
                return ([_as_bytes(x) for x in els] if build else None), None
            if t == 20:
                return ({_as_bytes(x) for x in els} if build else None), None
            if len(els) % 2:
                raise c.error(
                    DecodeError,
                    f"corrupt {kind}: odd element count {len(els)} in a pair container",
                    off,
                )
            if t in (12, 17):
                try:
                    zset = {_as_bytes(els[i]): _score_of(els[i + 1]) for i in range(0, len(els), 2)}
                except _Bad as exc:
                    raise c.error(DecodeError, f"corrupt {kind}: {exc}", off) from None
                return (zset if build else None), None
            if not build:
                return None, None
            return {_as_bytes(els[i]): _as_bytes(els[i + 1]) for i in range(0, len(els), 2)}, None

        if t == 14 or t == 18:
            off = c.off()
            n = c.count("quicklist node count")
            if n == 0:
                raise self._empty(c, "quicklist", off)
            items: list = []
            for _ in range(n):
                if t == 14:
                    els, noff = c.embedded("ziplist", _ziplist)
                else:
                    coff = c.off()
                    container = c.length("quicklist container")
                    if container == 1:
                        poff = c.off()
                        data = c.string("quicklist plain node")
                        if not data:
                            raise c.error(DecodeError, "zero-length quicklist node", poff)
                        if build:
                            items.append(data)
                        continue
                    if container != 2:
                        raise c.error(
                            DecodeError,
                            f"quicklist node container {container} is not 1 (plain) or 2 (packed)",
                            coff,
                        )
                    els, noff = c.embedded("listpack", _listpack)
                if not els:
                    raise c.error(DecodeError, "corrupt quicklist: empty node", noff)
                if build:
                    items.extend(_as_bytes(x) for x in els)
            return (items if build else None), None

        if t in (15, 19, 21, 26):
            return self._stream(c, t), None

        if t == 22 and valkey:  # HASH_2: field, value, int64 absolute ms (-1 = none)
            off = c.off()
            n = c.count("hash field count")
            if n == 0:
                raise self._empty(c, "hash", off)
            h = {}
            fexp: dict[bytes, int] = {}
            for _ in range(n):
                field = c.string("hash field")
                h[field] = c.string("hash value")
                ttl = c.unpack(_I64)
                if ttl == -1:
                    fexp.pop(field, None)
                else:
                    fexp[field] = ttl
            if not build:
                return None, None
            return h, (fexp or None)

        if t == 22 or t == 24:  # HASH_METADATA (24) / its 7.4-RC form (22)
            min_expire = c.unpack(_I64) if t == 24 else 0
            off = c.off()
            n = c.count("hash field count")
            if n == 0:
                raise self._empty(c, "hash", off)
            h = {}
            fexp = {}
            for _ in range(n):
                ttl_off = c.off()
                ttl = c.length("hash field TTL")
                field = c.string("hash field")
                h[field] = c.string("hash value")
                if ttl == 0:
                    fexp.pop(field, None)
                    continue
                expire_at = ttl + min_expire - 1 if t == 24 else ttl
                if not 0 <= expire_at <= _HFE_MAX:
                    raise c.error(
                        DecodeError, f"hash field expiry {expire_at} outside 0..2^48-1", ttl_off
                    )
                fexp[field] = expire_at
            if not build:
                return None, None
            return h, (fexp or None)

        # t == 25 (HASH_LISTPACK_EX) or 23 (its 7.4-RC form): triplets field, value, ttl
        if t == 25:
            c.unpack(_I64)  # minExpire: informational
        els, off = c.embedded("listpack", _listpack)
        if not els:
            raise self._empty(c, "listpack", off)
        if len(els) % 3:
            raise c.error(
                DecodeError,
                f"corrupt listpack: {len(els)} elements are not field/value/TTL triplets",
                off,
            )
        h = {}
        fexp = {}
        for i in range(0, len(els), 3):
            field = _as_bytes(els[i])
            h[field] = _as_bytes(els[i + 1])
            ttl = els[i + 2]
            if type(ttl) is not int:
                raise c.error(
                    DecodeError, f"corrupt listpack: TTL of triplet {i // 3} is not an integer", off
                )
            if ttl == 0:
                fexp.pop(field, None)
            elif not 0 <= ttl <= _HFE_MAX:
                raise c.error(
                    DecodeError, f"corrupt listpack: hash field expiry {ttl} outside 0..2^48-1", off
                )
            else:
                fexp[field] = ttl
        if not build:
            return None, None
        return h, (fexp or None)

    def _stream(self, c: _Cursor, t: int) -> Stream | None:
        """Stream types 15/19/21/26 (§7); type 26 adds the IDMP block (read, not kept)."""
        build = self._values
        entries: list | None = [] if build else None
        n = c.count("stream listpack count")
        for _ in range(n):
            id_off = c.off()
            raw_id = c.string("stream master ID")
            if len(raw_id) != 16:
                raise c.error(
                    DecodeError, f"stream master ID is {len(raw_id)} bytes, expected 16", id_off
                )
            master = _ID.unpack(raw_id)
            els, off = c.embedded("stream listpack", _listpack)
            if not els:
                raise c.error(DecodeError, "corrupt stream listpack: empty node", off)
            try:
                _stream_node(els, master, entries)
            except _EMBEDDED_ERRORS as exc:
                raise c.error(DecodeError, f"corrupt stream listpack: {exc}", off) from None
        length = c.length("stream length")
        last_id = StreamID(c.length("stream last ID ms"), c.length("stream last ID seq"))
        first_id = max_deleted = entries_added = None
        if t != 15:
            first_id = StreamID(c.length("stream first ID ms"), c.length("stream first ID seq"))
            max_deleted = StreamID(
                c.length("stream max-deleted ID ms"), c.length("stream max-deleted ID seq")
            )
            entries_added = c.length("stream entries added")
        groups = []
        for _ in range(c.count("stream group count")):
            gname = c.string("stream group name")
            glast = StreamID(c.length("group last ID ms"), c.length("group last ID seq"))
            entries_read = None
            if t != 15:  # a signed long long in Redis: -1 (stored as 2^64-1) = unknown
                entries_read = c.length("group entries read")
                if entries_read >= 1 << 63:
                    entries_read -= 1 << 64
            pel = []
            for _ in range(c.count("group PEL size")):
                pid = StreamID(*_ID.unpack(c.take(16)))
                delivery_time = c.unpack(_I64)
                delivery_count = c.length("PEL delivery count")
                pel.append((pid, delivery_time, delivery_count))
            owners: dict[StreamID, bytes] = {}
            consumers = []
            for _ in range(c.count("group consumer count")):
                cname = c.string("consumer name")
                seen = c.unpack(_I64)
                active = c.unpack(_I64) if t in (21, 26) else None
                cpel = []
                for _ in range(c.count("consumer PEL size")):
                    cid = StreamID(*_ID.unpack(c.take(16)))
                    cpel.append(cid)
                    owners[cid] = cname
                consumers.append(StreamConsumer(cname, seen, active, tuple(cpel)))
            if build:
                pending = tuple(StreamPending(p, dt, dc, owners.get(p)) for p, dt, dc in pel)
                groups.append(StreamGroup(gname, glast, entries_read, pending, tuple(consumers)))
        if t == 26:  # IDMP (§7.5): established from redis__librdb/stream_v13_idmp.rdb
            c.length("IDMP duration")
            c.length("IDMP max size")
            for _ in range(c.count("IDMP producer count")):
                c.string("IDMP producer id")
                for _ in range(c.count("IDMP entry count")):
                    c.string("IDMP idempotent id")
                    c.length("IDMP stream ID ms")
                    c.length("IDMP stream ID seq")
            c.length("IDMP iids added")
            c.length("IDMP iids duplicates")
        if not build:
            return None
        assert entries is not None
        return Stream(
            tuple(entries), length, last_id, first_id, max_deleted, entries_added, tuple(groups)
        )


# --------------------------------------------------------------------------- skim


def _skim_string(c: _Cursor) -> None:
    """Step over an RDB string without decompressing it (limits still apply)."""
    p = c.pos
    if p >= c.end:
        raise _Short(c.base + p, c.base + p + 1, c.key)
    if c.buf[p] == 0xC3:
        c.pos = p + 1
        clen = c.length("LZF compressed length")
        c.length("LZF length")
        c.take(clen)
    else:
        c.string("string")


def _skim_value(c: _Cursor, t: int, valkey: bool) -> None:
    """The file-level layout of a value only: where it ends, or ``_Short``.

    Used on a push-mode retry so that one huge entry arriving in many feeds is
    not parsed in full each time (docs/codec.md, "Streaming and memory"). It
    validates little: any error it meets is left for the full parse to report.
    """
    if t in (0, 9, 10, 11, 12, 13, 16, 17, 20) or (t == 23 and not valkey):
        _skim_string(c)
    elif t == 25:
        c.take(8)
        _skim_string(c)
    elif t in (1, 2, 4):
        for _ in range(c.count("element count") * (2 if t == 4 else 1)):
            _skim_string(c)
    elif t in (3, 5):
        for _ in range(c.count("element count")):
            _skim_string(c)
            if t == 5:
                c.take(8)
            else:
                n = c.u8()
                if n < 253:
                    c.take(n)
    elif t == 7:
        c.length("module id")
        c.module_body(False)
    elif t == 14 or t == 18:
        for _ in range(c.count("quicklist node count")):
            if t == 18:
                c.length("quicklist container")
            _skim_string(c)
    elif t == 22 and valkey:
        for _ in range(c.count("hash field count")):
            _skim_string(c)
            _skim_string(c)
            c.take(8)
    elif t == 22 or t == 24:
        if t == 24:
            c.take(8)
        for _ in range(c.count("hash field count")):
            c.length("hash field TTL")
            _skim_string(c)
            _skim_string(c)
    elif t in (15, 19, 21, 26):
        for _ in range(c.count("stream listpack count")):
            _skim_string(c)
            _skim_string(c)
        for _ in range(3 if t == 15 else 8):
            c.length("stream metadata")
        for _ in range(c.count("stream group count")):
            _skim_string(c)
            for _ in range(2 if t == 15 else 3):
                c.length("group metadata")
            for _ in range(c.count("group PEL size")):
                c.take(24)
                c.length("PEL delivery count")
            for _ in range(c.count("group consumer count")):
                _skim_string(c)
                c.take(16 if t in (21, 26) else 8)
                c.take(16 * c.count("consumer PEL size"))
        if t == 26:
            c.length("IDMP duration")
            c.length("IDMP max size")
            for _ in range(c.count("IDMP producer count")):
                _skim_string(c)
                for _ in range(c.count("IDMP entry count")):
                    _skim_string(c)
                    c.length("IDMP stream ID ms")
                    c.length("IDMP stream ID seq")
            c.length("IDMP iids added")
            c.length("IDMP iids duplicates")
    else:
        raise _Bad(f"type {t}")  # the full parse reports it


# --------------------------------------------------------------------------- one value


def _parse_value(
    data: bytes,
    t: int,
    *,
    pos: int = 0,
    end: int | None = None,
    valkey: bool = False,
    max_string_len: int = DEFAULT_MAX_STRING_LEN,
    max_collection_len: int = DEFAULT_MAX_COLLECTION_LEN,
) -> tuple[Any, dict | None, int]:
    """Parse the value of type byte ``t`` from ``data[pos:end]`` with the decoder's own parsers.

    Returns ``(value, field_expires, position after the value)``. Used for DUMP
    payloads (``parse_dump_payload``). Errors carry offsets into ``data``; a value
    running past ``end`` is a ``TruncatedError`` where the short read started.
    """
    unsupported = _VALKEY_UNSUPPORTED if valkey else _REDIS_UNSUPPORTED
    if t in unsupported:
        raise UnsupportedEncodingError(unsupported[t], offset=pos - 1 if pos else 0)
    if t not in _TYPES or (valkey and t > _VALKEY_MAX_TYPE):
        raise DecodeError(f"unknown type byte {t}", offset=pos - 1 if pos else 0)
    c = _Cursor(data, pos, 0, max_string_len, max_collection_len)  # type: ignore[arg-type]
    if end is not None:
        c.end = end
    parser = Decoder.__new__(Decoder)  # only the value parsers are used: they need _values
    parser._values = True
    try:
        value, field_expires = parser._value(c, t, valkey)
    except _Short as short:
        raise TruncatedError(
            "value runs past the end of its data" + _key_note(short.key), offset=short.start
        ) from None
    return value, field_expires, c.pos


# The encoder twin (docs/codec.md, "The encoder API") lives in its own module.
from rdbkit._pyencoder import Encoder, RdbWriter, dump_payload, lzf_compress, parse_dump_payload  # noqa: E402, F401
