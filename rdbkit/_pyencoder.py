"""The pure-Python twin of the RDB encoder (the second half of ``docs/codec.md``).

``Encoder`` turns entries (anything with ``Entry``'s attributes) into the bytes
of an RDB file of a chosen version, one call per record, so memory is bounded
by the largest value. ``RdbWriter`` wraps it around a file or a callable sink.
``dump_payload`` / ``parse_dump_payload`` build and read DUMP payloads; the
parser reuses the decoder's value parsers (``_pycodec._parse_value``).

Every choice of encoding (type byte, container, quicklist split) follows the
table in ``docs/codec.md`` so that the C twin (``ext/_encode.pxi``) chooses
alike. Format facts: ``../shared/RDB_FORMAT.md`` (section numbers below).
"""

from __future__ import annotations

import math as _math
import re as _re
import struct as _struct
from collections.abc import Callable, Iterable
from typing import Any

from rdbkit.codec.model import DumpValue, ModuleAux, ModuleValue, Stream, StreamID
from rdbkit.errors import (
    ChecksumError,
    DecodeError,
    EncodeError,
    LimitExceededError,
    UnsupportedVersionError,
)

__all__ = [
    "Encoder",
    "RdbWriter",
    "dump_payload",
    "lzf_compress",
    "parse_dump_payload",
]

_DEFAULT_MAX_STRING_LEN = 512 * 1024 * 1024  # = _pycodec.DEFAULT_MAX_STRING_LEN

_U64_MASK = (1 << 64) - 1
_HFE_MAX = (1 << 48) - 1  # largest hash field expireAt Redis accepts (§9)

# Server default thresholds (docs/codec.md table; checked with CONFIG GET on
# redis 7.0.15, redis 6.2.14 and valkey 9.1.2).
_MAX_VALUE = 64  # *-max-ziplist-value / *-max-listpack-value
_LIST_ZIPLIST_ENTRIES = 512  # v6 only (list-max-ziplist-entries of Redis 2.6-3.0)
_INTSET_ENTRIES = 512  # set-max-intset-entries
_SET_LISTPACK_ENTRIES = 128  # set-max-listpack-entries (RDB 11+)
_ZSET_PACKED_ENTRIES = 128  # zset-max-ziplist-entries / zset-max-listpack-entries
_HASH_PACKED_ENTRIES = 512  # hash-max-ziplist-entries / hash-max-listpack-entries
_QUICKLIST_NODE_BYTES = 8192  # list-max-*-size -2
_PLAIN_NODE_BYTES = 1 << 30  # Redis 7.0's packed threshold: PLAIN nodes at or above
_STREAM_NODE_ENTRIES = 100  # stream-node-max-entries
_STREAM_NODE_BYTES = 4096  # stream-node-max-bytes

_I64 = _struct.Struct("<q")
_U16LE = _struct.Struct("<H")
_U32LE = _struct.Struct("<I")
_U64LE = _struct.Struct("<Q")
_U32BE = _struct.Struct(">I")
_U64BE = _struct.Struct(">Q")
_F64 = _struct.Struct("<d")
_ID = _struct.Struct(">QQ")

# What Redis's string2ll accepts and prints back unchanged: canonical decimals.
_CANON_INT = _re.compile(rb"-?[1-9][0-9]{0,19}|0")

_OP_FUNCTION2 = 245
_OP_MODULE_AUX = 247
_OP_IDLE = 248
_OP_FREQ = 249
_OP_AUX = 250
_OP_RESIZEDB = 251
_OP_EXPIRETIME_MS = 252
_OP_SELECTDB = 254
_OP_EOF = 255

# type byte -> encoding name (as Entry.encoding names it); 22 with VALKEY magic.
_ENCODING_NAMES = {
    0: "string", 1: "linkedlist", 2: "hashtable", 3: "skiplist", 4: "hashtable",
    5: "skiplist", 7: "module", 10: "ziplist", 11: "intset", 12: "ziplist",
    13: "ziplist", 14: "quicklist", 15: "stream", 16: "listpack", 17: "listpack",
    18: "quicklist2", 19: "stream", 20: "listpack", 21: "stream", 22: "hashtable",
    24: "hashtable", 25: "listpack_ex",
}


class _Unsupported(Exception):
    """Internal: the target version cannot express ``feature`` (EncodeError or dropped)."""

    def __init__(self, feature: str, need: str) -> None:
        super().__init__(feature)
        self.feature = feature
        self.need = need


# --------------------------------------------------------------------------- LZF


def lzf_compress(data: bytes) -> bytes | None:
    """LZF-compress ``data`` (§5), or None when that saves fewer than 4 bytes.

    A greedy compressor with a dictionary of the last position of each 3-byte
    sequence; back-references reach 8 KiB back and copy 3..264 bytes, the
    limits of the LZF format. The 4-byte rule is the one RDB writers apply
    (``clen <= len - 4``); the "> 20 bytes" rule is the caller's.
    """
    data = bytes(data)
    n = len(data)
    if n < 5:
        return None
    out = bytearray()
    table: dict[bytes, int] = {}
    lit = 0  # start of the pending literal run
    i = 0
    limit = n - 4  # give up as soon as the output cannot save 4 bytes
    from_bytes = int.from_bytes
    while i < n - 2:
        key = data[i : i + 3]
        ref = table.get(key)
        table[key] = i
        if ref is None or i - ref > 8192:
            i += 1
            continue
        # Extend the match: compare up to 264 bytes at once as big integers.
        maxlen = min(264, n - i)
        a = data[i : i + maxlen]
        b = data[ref : ref + maxlen]
        diff = from_bytes(a, "big") ^ from_bytes(b, "big")
        length = maxlen - (diff.bit_length() + 7) // 8 if diff else maxlen
        if length < 3:  # a hash collision cannot happen with bytes keys, but stay safe
            i += 1
            continue
        _flush_literals(out, data, lit, i)
        off = i - ref - 1
        run = length - 2
        if run < 7:
            out.append((run << 5) | (off >> 8))
        else:
            out.append((7 << 5) | (off >> 8))
            out.append(run - 7)
        out.append(off & 0xFF)
        if len(out) > limit:
            return None
        # Remember the positions inside the match too (cheaply: its last two).
        end = i + length
        for j in (end - 2, end - 1):
            if j + 3 <= n and j > i:
                table[data[j : j + 3]] = j
        i = end
        lit = i
    _flush_literals(out, data, lit, n)
    if len(out) > limit:
        return None
    return bytes(out)


def _flush_literals(out: bytearray, data: bytes, start: int, end: int) -> None:
    while start < end:
        run = min(32, end - start)
        out.append(run - 1)
        out += data[start : start + run]
        start += run


# --------------------------------------------------------------------------- primitives


def _canon_int(s: bytes) -> int | None:
    """The int64 whose canonical decimal text is ``s``, else None."""
    if len(s) > 20 or _CANON_INT.fullmatch(s) is None:
        return None
    v = int(s)
    if -(1 << 63) <= v < (1 << 63):
        return v
    return None


def _length(n: int) -> bytes:
    """A length field (§5), shortest form."""
    if n < 64:
        return bytes((n,))
    if n < 16384:
        return bytes((0x40 | (n >> 8), n & 0xFF))
    if n <= 0xFFFFFFFF:
        return b"\x80" + _U32BE.pack(n)
    return b"\x81" + _U64BE.pack(n)


#: Public name (``rdbkit.codec.encode_length``) for code that frames RDB records itself.
encode_length = _length


def _string(s: bytes, compress: bool) -> bytes:
    """An RDB string (§5): integer encoding, LZF when it pays, else raw."""
    n = len(s)
    if n <= 11:
        v = _canon_int(s)
        if v is not None:
            if -128 <= v <= 127:
                return b"\xc0" + _struct.pack("<b", v)
            if -32768 <= v <= 32767:
                return b"\xc1" + _struct.pack("<h", v)
            if -(1 << 31) <= v < (1 << 31):
                return b"\xc2" + _struct.pack("<i", v)
    if compress and n > 20:
        packed = lzf_compress(s)
        if packed is not None and len(packed) <= n - 4:
            return b"\xc3" + _length(len(packed)) + _length(n) + packed
    return _length(n) + s


def _signed64(v: int) -> int:
    v &= _U64_MASK
    return v - (1 << 64) if v >= 1 << 63 else v


# --- listpack (§6) -------------------------------------------------------------


def _lp_entry(x: int | bytes) -> bytes:
    """One listpack entry (encoding + data + backlen); bytes that are canonical ints become ints."""
    if type(x) is not int:
        v = _canon_int(x)
        if v is None:
            n = len(x)
            if n < 64:
                body = bytes((0x80 | n,)) + x
            elif n < 4096:
                body = bytes((0xE0 | (n >> 8), n & 0xFF)) + x
            else:
                body = b"\xf0" + _U32LE.pack(n) + x
            return body + _backlen(len(body))
        x = v
    if 0 <= x <= 127:
        return bytes((x, 1))
    if -4096 <= x <= 4095:
        u = x & 0x1FFF
        return bytes((0xC0 | (u >> 8), u & 0xFF, 2))
    if -32768 <= x <= 32767:
        return b"\xf1" + x.to_bytes(2, "little", signed=True) + b"\x03"
    if -(1 << 23) <= x < (1 << 23):
        return b"\xf2" + x.to_bytes(3, "little", signed=True) + b"\x04"
    if -(1 << 31) <= x < (1 << 31):
        return b"\xf3" + x.to_bytes(4, "little", signed=True) + b"\x05"
    return b"\xf4" + x.to_bytes(8, "little", signed=True) + b"\x09"


def _backlen(size: int) -> bytes:
    """Entry size, 7 bits a byte, most significant group first; later bytes have bit 7."""
    if size < 128:
        return bytes((size,))
    groups = []
    while size:
        groups.append(size & 0x7F)
        size >>= 7
    groups.reverse()
    return bytes([groups[0]] + [g | 0x80 for g in groups[1:]])


def _listpack_of(entries: list[bytes]) -> bytes:
    """A listpack from already encoded entries."""
    body = b"".join(entries)
    return _U32LE.pack(7 + len(body)) + _U16LE.pack(min(len(entries), 65535)) + body + b"\xff"


def _listpack(items: Iterable[int | bytes]) -> bytes:
    return _listpack_of([_lp_entry(x) for x in items])


# --- ziplist (§6) --------------------------------------------------------------


def _zl_body(x: bytes) -> bytes:
    """A ziplist entry's encoding + data (no prevlen)."""
    v = _canon_int(x) if len(x) < 32 else None
    if v is None:
        n = len(x)
        if n < 64:
            return bytes((n,)) + x
        if n < 16384:
            return bytes((0x40 | (n >> 8), n & 0xFF)) + x
        return b"\x80" + _U32BE.pack(n) + x
    if 0 <= v <= 12:
        return bytes((0xF1 + v,))
    if -128 <= v <= 127:
        return b"\xfe" + v.to_bytes(1, "little", signed=True)
    if -32768 <= v <= 32767:
        return b"\xc0" + v.to_bytes(2, "little", signed=True)
    if -(1 << 23) <= v < (1 << 23):
        return b"\xf0" + v.to_bytes(3, "little", signed=True)
    if -(1 << 31) <= v < (1 << 31):
        return b"\xd0" + v.to_bytes(4, "little", signed=True)
    return b"\xe0" + v.to_bytes(8, "little", signed=True)


def _ziplist_of(bodies: list[bytes]) -> bytes:
    parts = []
    prev = 0
    tail = 10
    pos = 10
    for body in bodies:
        prevlen = bytes((prev,)) if prev < 254 else b"\xfe" + _U32LE.pack(prev)
        entry = prevlen + body
        tail = pos
        pos += len(entry)
        prev = len(entry)
        parts.append(entry)
    data = b"".join(parts)
    total = 10 + len(data) + 1
    return _U32LE.pack(total) + _U32LE.pack(tail) + _U16LE.pack(min(len(bodies), 65535)) + data + b"\xff"


def _ziplist(items: Iterable[bytes]) -> bytes:
    return _ziplist_of([_zl_body(x) for x in items])


def _zl_entry_size(prev: int, body_len: int) -> int:
    return (1 if prev < 254 else 5) + body_len


# --- intset, scores ----------------------------------------------------------------


def _intset(members: list[int]) -> bytes:
    members = sorted(members)
    lo, hi = members[0], members[-1]
    if -32768 <= lo and hi <= 32767:
        width, code = 2, "h"
    elif -(1 << 31) <= lo and hi < (1 << 31):
        width, code = 4, "i"
    else:
        width, code = 8, "q"
    return _struct.pack(f"<II{len(members)}{code}", width, len(members), *members)


def _score_text(score: float) -> bytes:
    """A score as ziplist/listpack text: integral values as canonical ints (like Redis)."""
    if score == 0:
        return b"-0" if _math.copysign(1.0, score) < 0 else b"0"
    if _math.isinf(score):
        return b"inf" if score > 0 else b"-inf"
    if score.is_integer() and -(1 << 63) <= score < (1 << 63):
        return b"%d" % int(score)
    return repr(score).encode()


# --------------------------------------------------------------------------- value encoder


class _ValueWriter:
    """Chooses and writes the encoding of one value for a target version (stateless)."""

    def __init__(self, version: int, valkey: bool, plain: bool, compress: bool, max_str: int) -> None:
        self.version = version
        self.valkey = valkey
        # feature level: VALKEY 80 writes the RDB 11 types plus its own HASH_2
        self.level = 11 if valkey else version
        self.plain = plain
        self.compress = compress
        self.max_str = max_str

    # -- validation helpers
    def _fail(self, key: bytes | None, message: str) -> EncodeError:
        who = f"key {key!r}: " if key is not None else ""
        return EncodeError(who + message)

    def _bytes(self, key: bytes | None, x: Any, what: str) -> bytes:
        if type(x) is not bytes:
            if isinstance(x, (bytearray, memoryview)):
                x = bytes(x)
            else:
                raise self._fail(key, f"{what} must be bytes, got {type(x).__name__}")
        if len(x) > self.max_str:
            raise self._fail(key, f"{what} of {len(x)} bytes exceeds max_string_len {self.max_str}")
        return x

    def s(self, x: bytes) -> bytes:
        return _string(x, self.compress)

    # -- entry point
    def value(
        self, key: bytes | None, type_name: str, value: Any, field_expires: dict | None,
        drop_ttl: bool,
    ) -> tuple[int, bytes]:
        """(type byte, value bytes); raises EncodeError or _Unsupported."""
        if type_name == "string":
            return 0, self.s(self._bytes(key, value, "string value"))
        if type_name == "list":
            return self._list(key, value)
        if type_name == "set":
            return self._set(key, value)
        if type_name == "zset":
            return self._zset(key, value)
        if type_name == "hash":
            return self._hash(key, value, field_expires, drop_ttl)
        if type_name == "stream":
            return self._stream(key, value)
        if type_name == "module":
            return self._module(key, value)
        raise self._fail(key, f"unknown type {type_name!r}")

    def _list(self, key, value) -> tuple[int, bytes]:
        if not isinstance(value, (list, tuple)):
            raise self._fail(key, f"list value must be a list, got {type(value).__name__}")
        if not value:
            raise self._fail(key, "empty list")
        items = [self._bytes(key, x, "list element") for x in value]
        if self.plain or (self.version == 6 and not _small(items, _LIST_ZIPLIST_ENTRIES)):
            return 1, _length(len(items)) + b"".join(self.s(x) for x in items)
        if self.version == 6:
            return 10, self.s(_ziplist(items))
        return self._quicklist(items)

    def _quicklist(self, items: list[bytes]) -> tuple[int, bytes]:
        v2 = self.level >= 10
        nodes: list[bytes] = []
        cur: list[bytes] = []  # encoded entries (v2) or bodies (v1)
        size = 7 if v2 else 11
        prev = 0

        def flush() -> None:
            if not cur:
                return
            if v2:
                nodes.append(b"\x02" + self.s(_listpack_of(cur)))
            else:
                nodes.append(self.s(_ziplist_of(cur)))

        for x in items:
            if v2 and len(x) >= _PLAIN_NODE_BYTES:
                flush()
                cur, size = [], 7
                nodes.append(b"\x01" + self.s(x))
                continue
            if v2:
                enc = _lp_entry(x)
                add = len(enc)
            else:
                enc = _zl_body(x)
                add = _zl_entry_size(prev, len(enc))
            if cur and size + add > _QUICKLIST_NODE_BYTES:
                flush()
                cur, size, prev = [], (7 if v2 else 11), 0
                if not v2:
                    add = _zl_entry_size(0, len(enc))
            cur.append(enc)
            size += add
            prev = add
        flush()
        return (18 if v2 else 14), _length(len(nodes)) + b"".join(nodes)

    def _set(self, key, value) -> tuple[int, bytes]:
        if not isinstance(value, (set, frozenset)):
            raise self._fail(key, f"set value must be a set, got {type(value).__name__}")
        if not value:
            raise self._fail(key, "empty set")
        items = [self._bytes(key, x, "set member") for x in value]
        if not self.plain:
            if len(items) <= _INTSET_ENTRIES:
                ints = [_canon_int(x) for x in items]
                if None not in ints:
                    return 11, self.s(_intset(ints))  # type: ignore[arg-type]
            if self.level >= 11 and _small(items, _SET_LISTPACK_ENTRIES):
                return 20, self.s(_listpack(items))
        return 2, _length(len(items)) + b"".join(self.s(x) for x in items)

    def _zset(self, key, value) -> tuple[int, bytes]:
        if not isinstance(value, dict):
            raise self._fail(key, f"zset value must be a dict, got {type(value).__name__}")
        if not value:
            raise self._fail(key, "empty zset")
        pairs = []
        for m, score in value.items():
            m = self._bytes(key, m, "zset member")
            if type(score) is int:
                score = float(score)
            elif type(score) is not float:
                raise self._fail(key, f"zset score of {m[:64]!r} must be a float, got {type(score).__name__}")
            if score != score:
                raise self._fail(key, f"zset score of {m[:64]!r} is NaN")
            pairs.append((m, score))
        if not self.plain and len(pairs) <= _ZSET_PACKED_ENTRIES and all(len(m) <= _MAX_VALUE for m, _ in pairs):
            pairs.sort(key=lambda p: (p[1], p[0]))
            flat: list[bytes] = []
            for m, score in pairs:
                flat.append(m)
                flat.append(_score_text(score))
            if self.level >= 10:
                return 17, self.s(_listpack(flat))
            return 12, self.s(_ziplist(flat))
        pairs.sort(key=lambda p: (p[1], p[0]), reverse=True)  # highest first, like Redis
        out = [_length(len(pairs))]
        if self.version >= 8:
            for m, score in pairs:
                out.append(self.s(m))
                out.append(_F64.pack(score))
            return 5, b"".join(out)
        for m, score in pairs:
            out.append(self.s(m))
            if _math.isinf(score):
                out.append(b"\xfe" if score > 0 else b"\xff")
            else:
                text = repr(score).encode()
                out.append(bytes((len(text),)) + text)
        return 3, b"".join(out)

    def _hash(self, key, value, field_expires, drop_ttl: bool) -> tuple[int, bytes]:
        if not isinstance(value, dict):
            raise self._fail(key, f"hash value must be a dict, got {type(value).__name__}")
        if not value:
            raise self._fail(key, "empty hash")
        pairs = [
            (self._bytes(key, f, "hash field"), self._bytes(key, v, "hash value"))
            for f, v in value.items()
        ]
        if field_expires and not drop_ttl:
            return self._hash_ttl(key, pairs, field_expires)
        small = not self.plain and len(pairs) <= _HASH_PACKED_ENTRIES and all(
            len(f) <= _MAX_VALUE and len(v) <= _MAX_VALUE for f, v in pairs
        )
        if small:
            flat = [x for pair in pairs for x in pair]
            if self.level >= 10:
                return 16, self.s(_listpack(flat))
            return 13, self.s(_ziplist(flat))
        return 4, _length(len(pairs)) + b"".join(self.s(f) + self.s(v) for f, v in pairs)

    def _hash_ttl(self, key, pairs, field_expires: dict) -> tuple[int, bytes]:
        if not isinstance(field_expires, dict):
            raise self._fail(key, f"field_expires must be a dict, got {type(field_expires).__name__}")
        fields = {f for f, _ in pairs}
        for f, t in field_expires.items():
            if f not in fields:
                raise self._fail(key, f"field_expires names {f!r}, which is not a field of the hash")
            if type(t) is not int:
                raise self._fail(key, f"expiry of field {f!r} must be an int, got {type(t).__name__}")
        if self.valkey:
            out = [_length(len(pairs))]
            for f, v in pairs:
                t = field_expires.get(f, -1)
                if t == -1 and f in field_expires or not -(1 << 63) <= t < (1 << 63):
                    raise self._fail(key, f"expiry {t} of field {f!r} cannot be stored in HASH_2")
                out.append(self.s(f) + self.s(v) + _I64.pack(t))
            return 22, b"".join(out)
        if self.version < 12:
            raise _Unsupported("hash field TTLs", "RDB 12 or VALKEY")
        for f, t in field_expires.items():
            if not 1 <= t <= _HFE_MAX:
                raise self._fail(key, f"expiry {t} of field {f!r} is outside 1..2^48-1")
        min_expire = min(field_expires.values())
        small = not self.plain and len(pairs) <= _HASH_PACKED_ENTRIES and all(
            len(f) <= _MAX_VALUE and len(v) <= _MAX_VALUE for f, v in pairs
        )
        if small:
            # Fields with a TTL first, soonest first, then those without (TTL 0).
            ordered = sorted(pairs, key=lambda p: (p[0] not in field_expires, field_expires.get(p[0], 0)))
            items: list[int | bytes] = []
            for f, v in ordered:
                items += (f, v, field_expires.get(f, 0))
            return 25, _I64.pack(min_expire) + self.s(_listpack(items))
        out = [_I64.pack(min_expire), _length(len(pairs))]
        for f, v in pairs:
            t = field_expires.get(f)
            out.append(_length(0 if t is None else t - min_expire + 1) + self.s(f) + self.s(v))
        return 24, b"".join(out)

    def _stream(self, key, value) -> tuple[int, bytes]:
        if not isinstance(value, Stream):
            raise self._fail(key, f"stream value must be a model.Stream, got {type(value).__name__}")
        if self.level < 9:
            raise _Unsupported("stream", "RDB 9")
        out = [self._stream_nodes(key, value)]
        out.append(_length(value.length))
        out.append(_length(value.last_id.ms) + _length(value.last_id.seq))
        v2 = self.level >= 10
        v3 = self.level >= 11
        if v2:
            first = value.first_id
            if first is None:
                first = value.entries[0].id if value.entries else StreamID(0, 0)
            max_deleted = value.max_deleted_id or StreamID(0, 0)
            added = value.entries_added if value.entries_added is not None else value.length
            out.append(_length(first.ms) + _length(first.seq))
            out.append(_length(max_deleted.ms) + _length(max_deleted.seq) + _length(added))
        out.append(_length(len(value.groups)))
        for g in value.groups:
            out.append(self.s(self._bytes(key, g.name, "stream group name")))
            out.append(_length(g.last_id.ms) + _length(g.last_id.seq))
            if v2:
                read = -1 if g.entries_read is None else g.entries_read
                out.append(_length(read & _U64_MASK))
            out.append(_length(len(g.pending)))
            for p in g.pending:
                out.append(_ID.pack(*p.id) + _I64.pack(p.delivery_time_ms) + _length(p.delivery_count))
            out.append(_length(len(g.consumers)))
            in_pel = {p.id for p in g.pending}
            for c in g.consumers:
                for pid in c.pending:
                    if pid not in in_pel:  # servers refuse such a file on load
                        raise EncodeError(
                            f"key {key!r}: stream group {g.name!r} consumer {c.name!r} has pending ID "
                            f"{pid[0]}-{pid[1]} that is not in the group's pending entries list"
                        )
                out.append(self.s(self._bytes(key, c.name, "stream consumer name")))
                out.append(_I64.pack(c.seen_time_ms))
                if v3:
                    active = c.seen_time_ms if c.active_time_ms is None else c.active_time_ms
                    out.append(_I64.pack(active))
                out.append(_length(len(c.pending)))
                out.append(b"".join(_ID.pack(*pid) for pid in c.pending))
        t = 21 if v3 else 19 if v2 else 15
        return t, b"".join(out)

    def _stream_nodes(self, key, value: Stream) -> bytes:
        nodes: list[bytes] = []
        prev: StreamID | None = None
        node: list[bytes] = []  # encoded listpack entries after the master entry
        count = 0
        size = 0
        master = StreamID(0, 0)
        master_fields: tuple[bytes, ...] = ()

        def flush() -> None:
            head = [_lp_entry(count), _lp_entry(0), _lp_entry(len(master_fields))]
            head += [_lp_entry(f) for f in master_fields]
            head.append(_lp_entry(0))
            nodes.append(self.s(_ID.pack(*master)) + self.s(_listpack_of(head + node)))

        for e in value.entries:
            if prev is not None and (e.id.ms, e.id.seq) <= (prev.ms, prev.seq):
                raise self._fail(key, f"stream entry IDs must ascend ({e.id} after {prev})")
            prev = e.id
            names = tuple(self._bytes(key, f, "stream field") for f, _ in e.fields)
            values = [self._bytes(key, v, "stream value") for _, v in e.fields]
            if count and (count >= _STREAM_NODE_ENTRIES or size >= _STREAM_NODE_BYTES):
                flush()
                node, count, size = [], 0, 0
            if not count:
                master, master_fields = e.id, names
                size = sum(len(f) + 2 for f in names) + 16
            ms_delta = _signed64(e.id.ms - master.ms)
            seq_delta = _signed64(e.id.seq - master.seq)
            if names == master_fields:
                items: list[int | bytes] = [2, ms_delta, seq_delta, *values, len(names) + 3]
            else:
                items = [0, ms_delta, seq_delta, len(names)]
                for f, v in zip(names, values):
                    items += (f, v)
                items.append(2 * len(names) + 4)
            encoded = [_lp_entry(x) for x in items]
            node += encoded
            size += sum(len(x) for x in encoded)
            count += 1
        if count:
            flush()
        return _length(len(nodes)) + b"".join(nodes)

    def _module(self, key, value) -> tuple[int, bytes]:
        if not isinstance(value, ModuleValue):
            raise self._fail(key, f"module value must be a model.ModuleValue, got {type(value).__name__}")
        if self.level < 8:
            raise _Unsupported("module value", "RDB 8")
        return 7, _length(value.module_id) + bytes(value.raw)


def _small(items: list[bytes], max_entries: int) -> bool:
    return len(items) <= max_entries and all(len(x) <= _MAX_VALUE for x in items)


def _check_version(version: int, magic: str | None) -> tuple[int, bool]:
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"version must be an int, got {version!r}")
    if magic is None:
        magic = "VALKEY" if version >= 80 else "REDIS"
    if magic == "REDIS" and 6 <= version <= 12:
        return version, False
    if magic == "VALKEY" and version == 80:
        return version, True
    raise ValueError(f"cannot write {magic} version {version}: REDIS 6-12 and VALKEY 80 are supported")


# --------------------------------------------------------------------------- Encoder


class Encoder:
    """Encode entries into the bytes of an RDB file, one record per call.

    ``begin()`` gives the header, each ``write(entry)`` one key with its prefix
    opcodes, ``finish()`` EOF and the CRC64. Memory is bounded by the largest
    value. An entry that fails validation raises ``EncodeError`` naming the key
    and emits nothing, so the caller may go on (or stop without a valid file).
    """

    def __init__(
        self,
        version: int = 12,
        *,
        magic: str | None = None,
        plain: bool = False,
        compress: bool = True,
        drop_unsupported: bool = False,
        max_string_len: int = _DEFAULT_MAX_STRING_LEN,
    ) -> None:
        self.version, valkey = _check_version(version, magic)
        self.magic = "VALKEY" if valkey else "REDIS"
        if not isinstance(max_string_len, int) or max_string_len < 0:
            raise ValueError(f"max_string_len must be a non-negative int, got {max_string_len!r}")
        self.plain = bool(plain)
        self.compress = bool(compress)
        self.drop_unsupported = bool(drop_unsupported)
        self.max_string_len = max_string_len
        self.dropped: list[tuple[bytes | None, str]] = []
        self._values = _ValueWriter(self.version, valkey, self.plain, self.compress, max_string_len)
        self._state = "new"  # new -> open -> done
        self._db: int | None = None
        self._crc = 0

    def _emit(self, data: bytes) -> bytes:
        self._crc = _crc64(data, self._crc)
        return data

    def _unsupported(self, key: bytes | None, feature: str, need: str) -> None:
        """Record a drop, or raise the EncodeError naming the key and the feature."""
        if self.drop_unsupported:
            self.dropped.append((key, feature))
            return
        who = f"key {key!r}: " if key is not None else ""
        raise EncodeError(f"{who}{feature} need {need} (target is {self.magic} {self.version})")

    def begin(
        self,
        aux: dict | Iterable[tuple] | None = None,
        functions: Iterable[bytes] = (),
        module_aux: Iterable[ModuleAux] = (),
    ) -> bytes:
        """The magic, AUX fields (v >= 7), module aux "before" records and functions."""
        if self._state != "new":
            raise RuntimeError("begin() called twice" if self._state == "open" else "begin() after finish()")
        out = [f"{self.magic}{self.version:0{9 - len(self.magic)}d}".encode()]
        if aux:
            pairs = aux.items() if isinstance(aux, dict) else aux
            if self.version >= 7:
                for k, v in pairs:
                    out.append(bytes((_OP_AUX,)) + self._values.s(_text(k)) + self._values.s(_text(v)))
        out += self._module_aux(module_aux, 1)
        for code in functions:
            code = _text(code)
            if self._values.level < 10:
                self._unsupported(None, f"function library {_lib_name(code)!r}", "RDB 10")
                continue
            out.append(bytes((_OP_FUNCTION2,)) + self._values.s(code))
        data = b"".join(out)
        self._state = "open"
        return self._emit(data)

    def _module_aux(self, records: Iterable[ModuleAux], when: int) -> list[bytes]:
        out = []
        for rec in records:
            if not isinstance(rec, ModuleAux):
                raise EncodeError(f"module aux must be a model.ModuleAux, got {type(rec).__name__}")
            if self._values.level < 9:
                self._unsupported(None, f"module aux data of {rec.name!r}", "RDB 9")
                continue
            out.append(
                bytes((_OP_MODULE_AUX,)) + _length(rec.module_id) + _length(2)
                + _length(rec.when if rec.when in (1, 2) else when) + bytes(rec.raw)
            )
        return out

    def _check_open(self, what: str) -> None:
        if self._state == "new":
            raise RuntimeError(f"{what} called before begin()")
        if self._state == "done":
            raise RuntimeError(f"{what} called after finish()")

    def _select(self, db: int) -> bytes:
        if not isinstance(db, int) or isinstance(db, bool) or db < 0:
            raise EncodeError(f"db must be a non-negative int, got {db!r}")
        if db == self._db:
            return b""
        return bytes((_OP_SELECTDB,)) + _length(db)

    def function(self, code: bytes) -> bytes:
        """A FUNCTION2 record between entries (v >= 10).

        Redis writes libraries before the keys (``begin``), but a reader accepts
        them anywhere and some writers put them after keys; this keeps them.
        """
        self._check_open("function()")
        code = _text(code)
        if self._values.level < 10:
            self._unsupported(None, f"function library {_lib_name(code)!r}", "RDB 10")
            return b""
        return self._emit(bytes((_OP_FUNCTION2,)) + self._values.s(code))

    def resize_hint(self, db: int, db_size: int, expires_size: int) -> bytes:
        """RESIZEDB for ``db`` (v >= 7; selects the db first if needed); a hint only."""
        self._check_open("resize_hint()")
        if self.version < 7 and self._values.level < 7:
            return b""
        data = self._select(db) + bytes((_OP_RESIZEDB,)) + _length(db_size) + _length(expires_size)
        self._db = db
        return self._emit(data)

    def write(self, entry: Any) -> bytes:
        """One key (SELECTDB if needed, EXPIRETIME_MS, IDLE/FREQ, type, key, value).

        Returns b"" for an entry dropped with ``drop_unsupported``. Raises
        ``EncodeError`` naming the key when the entry is invalid or cannot be
        expressed in the target version; nothing of it is emitted then.
        """
        self._check_open("write()")
        key = entry.key
        vw = self._values
        if type(key) is not bytes:
            if isinstance(key, (bytearray, memoryview)):
                key = bytes(key)
            else:
                raise EncodeError(f"key {key!r}: key must be bytes, got {type(key).__name__}")
        if len(key) > self.max_string_len:
            raise EncodeError(
                f"key {key[:64]!r}...: key of {len(key)} bytes exceeds max_string_len {self.max_string_len}"
            )
        type_name = entry.type
        field_expires = getattr(entry, "field_expires", None) or None
        if field_expires is not None and type_name != "hash":
            raise EncodeError(f"key {key!r}: field_expires given for a {type_name}")
        drop_ttl = False
        if field_expires and not vw.valkey and self.version < 12:
            self._unsupported(key, "hash field TTLs", "RDB 12 or VALKEY")
            drop_ttl = True
        try:
            t, body = vw.value(key, type_name, entry.value, field_expires, drop_ttl)
        except _Unsupported as exc:
            self._unsupported(key, exc.feature, exc.need)
            return b""
        head = [self._select(entry.db)]
        expire_ms = getattr(entry, "expire_ms", None)
        if expire_ms is not None:
            if type(expire_ms) is not int or not -(1 << 63) <= expire_ms < (1 << 63):
                raise EncodeError(f"key {key!r}: expire_ms must be an int64, got {expire_ms!r}")
            head.append(bytes((_OP_EXPIRETIME_MS,)) + _I64.pack(expire_ms))
        if vw.level >= 9:
            idle = getattr(entry, "idle", None)
            freq = getattr(entry, "freq", None)
            if idle is not None:
                if type(idle) is not int or idle < 0 or idle > _U64_MASK:
                    raise EncodeError(f"key {key!r}: idle must be a non-negative int, got {idle!r}")
                head.append(bytes((_OP_IDLE,)) + _length(idle))
            if freq is not None:
                if type(freq) is not int or not 0 <= freq <= 255:
                    raise EncodeError(f"key {key!r}: freq must be an int 0..255, got {freq!r}")
                head.append(bytes((_OP_FREQ, freq)))
        head.append(bytes((t,)) + vw.s(key))
        self._db = entry.db
        return self._emit(b"".join(head) + body)

    def finish(self, module_aux_after: Iterable[ModuleAux] = ()) -> bytes:
        """Module aux "after" records, EOF and the CRC64; the encoder is then done."""
        self._check_open("finish()")
        data = b"".join(self._module_aux(module_aux_after, 2)) + bytes((_OP_EOF,))
        crc = _crc64(data, self._crc)
        self._state = "done"
        return data + _U64LE.pack(crc)


def _text(x: Any) -> bytes:
    if isinstance(x, str):
        return x.encode()
    if isinstance(x, int) and not isinstance(x, bool):
        return b"%d" % x
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x)
    raise EncodeError(f"expected bytes or str, got {type(x).__name__}")


def _lib_name(code: bytes) -> str:
    first = code.split(b"\n", 1)[0]
    _, _, name = first.partition(b"name=")
    return name.split()[0].decode(errors="replace") if name.split() else "?"


class RdbWriter:
    """An ``Encoder`` writing to a binary file object or a callable sink.

    Use as a context manager: a clean exit writes EOF + CRC64 (``close()``);
    an exception inside the block writes nothing more, so the output never
    looks like a complete file.
    """

    def __init__(self, sink: Any, **encoder_kwargs: Any) -> None:
        if callable(sink) and not hasattr(sink, "write"):
            self._write: Callable[[bytes], Any] = sink
            self._flush: Callable[[], Any] | None = None
        elif hasattr(sink, "write"):
            self._write = sink.write
            self._flush = getattr(sink, "flush", None)
        else:
            raise TypeError(f"sink must have .write() or be callable, got {type(sink).__name__}")
        self.encoder = Encoder(**encoder_kwargs)
        self._closed = False

    @property
    def dropped(self) -> list[tuple[bytes | None, str]]:
        return self.encoder.dropped

    def begin(self, aux: Any = None, functions: Iterable[bytes] = (), module_aux: Iterable[ModuleAux] = ()) -> None:
        self._write(self.encoder.begin(aux, functions, module_aux))

    def write(self, entry: Any) -> None:
        data = self.encoder.write(entry)
        if data:
            self._write(data)

    def function(self, code: bytes) -> None:
        data = self.encoder.function(code)
        if data:
            self._write(data)

    def resize_hint(self, db: int, db_size: int, expires_size: int) -> None:
        data = self.encoder.resize_hint(db, db_size, expires_size)
        if data:
            self._write(data)

    def close(self, module_aux_after: Iterable[ModuleAux] = ()) -> None:
        """Finish the file (EOF + CRC64) and flush the sink; a second call is a no-op."""
        if self._closed:
            return
        if self.encoder._state == "new":
            self.begin()
        self._write(self.encoder.finish(module_aux_after))
        self._closed = True
        if self._flush is not None:
            self._flush()

    def __enter__(self) -> RdbWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True  # no EOF after an error: the output stays incomplete
            if self._flush is not None:
                self._flush()


# --------------------------------------------------------------------------- DUMP payloads


def dump_payload(
    type_name: str,
    value: Any,
    version: int,
    *,
    field_expires: dict | None = None,
    plain: bool = False,
    compress: bool = True,
) -> bytes:
    """The DUMP payload of one value: type byte, value, u16 LE version, CRC64 LE.

    ``version`` is 6..12 (REDIS) or 80 (VALKEY). Raises ``EncodeError`` when the
    value is invalid or the version cannot express it.
    """
    version, valkey = _check_version(version, None)
    vw = _ValueWriter(version, valkey, plain, compress, _DEFAULT_MAX_STRING_LEN)
    if field_expires and type_name != "hash":
        raise EncodeError(f"field_expires given for a {type_name}")
    try:
        t, body = vw.value(None, type_name, value, field_expires or None, False)
    except _Unsupported as exc:
        raise EncodeError(f"{exc.feature} need {exc.need} (payload version {version})") from None
    data = bytes((t,)) + body + _U16LE.pack(version)
    return data + _U64LE.pack(_crc64(data))


def parse_dump_payload(
    payload: bytes,
    *,
    max_string_len: int = _DEFAULT_MAX_STRING_LEN,
    max_collection_len: int = 2**32,
    max_buffer_size: int = 1024 * 1024 * 1024,
) -> DumpValue:
    """Parse a DUMP payload: check its length, CRC64 and version, then decode the value.

    The value is decoded by the decoder's own parsers with the given limits.
    Raises ``DecodeError`` subclasses (offsets are payload offsets).
    """
    payload = bytes(payload)
    n = len(payload)
    if max_string_len > max_buffer_size:
        raise ValueError(f"max_string_len {max_string_len} exceeds max_buffer_size {max_buffer_size}")
    if n > max_buffer_size:
        raise LimitExceededError(
            f"DUMP payload of {n} bytes exceeds max_buffer_size {max_buffer_size}", offset=0
        )
    if n < 10:
        raise DecodeError(f"DUMP payload of {n} bytes is shorter than the 10-byte footer", offset=0)
    stored = _U64LE.unpack_from(payload, n - 8)[0]
    computed = _crc64(payload[: n - 8])
    if stored != computed:
        raise ChecksumError(
            f"DUMP payload checksum mismatch: stored 0x{stored:016x}, computed 0x{computed:016x}",
            offset=n - 8,
        )
    version = _U16LE.unpack_from(payload, n - 10)[0]
    if not (1 <= version <= 12 or version == 80):
        raise UnsupportedVersionError(f"unsupported DUMP payload version {version}", offset=n - 10)
    valkey = version >= 80
    t = payload[0]
    value, field_expires, end = _pc._parse_value(
        payload, t, pos=1, end=n - 10, valkey=valkey,
        max_string_len=max_string_len, max_collection_len=max_collection_len,
    )
    if end != n - 10:
        raise DecodeError(f"{n - 10 - end} bytes left between the value and the footer", offset=end)
    type_name = _pc._TYPES[t][0]
    return DumpValue(type_name, value, version, field_expires, _ENCODING_NAMES.get(t, _pc._TYPES[t][1]))


def _crc64(data: bytes, crc: int = 0) -> int:
    return _pc.crc64(data, crc)


# Imported last: _pycodec re-exports this module's names at its end, so either
# module may be imported first (the names above exist before _pycodec runs).
from rdbkit import _pycodec as _pc  # noqa: E402
