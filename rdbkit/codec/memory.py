"""Estimate the memory a key would take in a running server (``rdbkit memory``).

An approximation, like rdbtools' memory report: it models a 64-bit Redis 7
with jemalloc loading this file, in the in-memory encoding that matches what
the file stores. Legacy RDB encodings map to what a current server keeps:
ziplist and zipmap become listpacks, linkedlist and ziplist-based quicklists
become quicklists of listpacks (8 KiB nodes, the default
``list-max-listpack-size -2``). What is counted:

- every allocation rounded up to jemalloc's size class (8, then steps of 16
  up to 128, then four classes per power of two: 160, 192, 224, 256, 320...);
- per key: the main dict's entry (3 pointers), one bucket pointer (load
  factor 1), the key's sds string, the value's ``robj`` (16 bytes), and for
  a key with a TTL the entry in the expires dict;
- strings: ``int`` (a canonical 64-bit integer lives in the robj pointer),
  ``embstr`` (≤ 44 bytes, one allocation with the robj) or ``raw`` (robj +
  sds); sds headers are 1/3/5/9/17 bytes by length (sdshdr5/8/16/32/64);
- listpacks byte by byte (6-byte header, per entry encoding + data + back
  length, end byte), intsets (8-byte header + width × n);
- hash tables: the dict struct, a power-of-two bucket array, a 3-pointer
  entry per element and each element's sds; skiplists: as a dict plus one
  node per element whose level is the expected value for p = 1/4 (rdbtools
  draws it at random; we want the same input to give the same number);
- streams roughly: listpack bytes of entries (nodes of ≤ 100 entries as
  ``stream-node-max-entries``), a radix tree estimated at 2.5 nodes per
  element, consumer groups, pending entries and consumers;
- module values: the raw serialized size (the module's real layout is
  unknowable without it).

Not counted: per-db dict struct and rehashing tables, allocator metadata,
client buffers, fragmentation. Expect the same order of magnitude as
``MEMORY USAGE``, not its exact figure.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

POINTER = 8
ROBJ = 16
DICT_ENTRY = 3 * POINTER  # key, value, next
DICT_STRUCT = 56
EMBSTR_MAX = 44
QUICKLIST_STRUCT = 40
QUICKLIST_NODE = 32
QUICKLIST_NODE_MAX_BYTES = 8192
ZSET_STRUCT = 2 * POINTER
ZSKIPLIST_STRUCT = 32
ZSKIPLIST_MAXLEVEL = 32
STREAM_STRUCT = 88
STREAM_NODE_MAX_ENTRIES = 100
STREAM_CG = 48
STREAM_NACK = 24
STREAM_CONSUMER = 40
RAX_STRUCT = 24


class MemoryEstimate(NamedTuple):
    """One key's estimate; ``encoding`` is the in-memory encoding estimated for."""

    size_in_bytes: int
    encoding: str
    num_elements: int
    len_largest_element: int


def allocation(size: int) -> int:
    """``size`` rounded up to jemalloc's size class (x86-64 quantum of 16 bytes)."""
    if size <= 8:
        return 8
    if size <= 128:
        return (size + 15) & ~15
    group = 1 << ((size - 1).bit_length() - 1)  # largest power of two below size
    step = group // 4
    return (size + step - 1) // step * step


def sds_size(length: int) -> int:
    """Bytes malloc'd for an sds of ``length`` bytes (header + data + NUL)."""
    if length < 1 << 5:
        header = 1
    elif length < 1 << 8:
        header = 3
    elif length < 1 << 16:
        header = 5
    elif length < 1 << 32:
        header = 9
    else:
        header = 17
    return allocation(header + length + 1)


def as_int64(data: bytes) -> int | None:
    """The integer ``data`` spells canonically (how Redis decides to store an int), else None."""
    if not data or len(data) > 20:
        return None
    body = data[1:] if data[:1] == b"-" else data
    if not body.isdigit() or (body[:1] == b"0" and data != b"0"):
        return None
    value = int(data)
    return value if -(1 << 63) <= value < (1 << 63) else None


def _lp_backlen(n: int) -> int:
    if n <= 127:
        return 1
    if n < 16383:
        return 2
    if n < 2097151:
        return 3
    if n < 268435455:
        return 4
    return 5


def lp_entry_size(element: bytes) -> int:
    """Bytes one element takes inside a listpack (integers are stored compactly)."""
    value = as_int64(element)
    if value is not None:
        if 0 <= value <= 127:
            body = 1
        elif -4096 <= value < 4096:
            body = 2
        elif -(1 << 15) <= value < 1 << 15:
            body = 3
        elif -(1 << 23) <= value < 1 << 23:
            body = 4
        elif -(1 << 31) <= value < 1 << 31:
            body = 5
        else:
            body = 9
    else:
        n = len(element)
        body = n + (1 if n < 64 else 2 if n < 4096 else 5)
    return body + _lp_backlen(body)


def listpack_size(elements) -> int:
    """malloc'd bytes of a listpack holding ``elements`` (bytes)."""
    return allocation(6 + sum(lp_entry_size(e) for e in elements) + 1)


def _next_power(n: int) -> int:
    power = 4  # DICT_HT_INITIAL_SIZE
    while power < n:
        power <<= 1
    return power


def dict_size(n: int) -> int:
    """A dict with ``n`` entries: struct, bucket array, entries (not the keys/values)."""
    return allocation(DICT_STRUCT) + allocation(_next_power(n) * POINTER) + n * allocation(DICT_ENTRY)


def _expected_skiplist_node() -> int:
    # Node: member pointer, score, backward pointer, then (forward, span) per level;
    # a node has level L with probability 0.75 * 0.25 ** (L - 1).
    total = 0.0
    for level in range(1, ZSKIPLIST_MAXLEVEL + 1):
        p = 0.75 * 0.25 ** (level - 1)
        total += p * allocation(3 * POINTER + level * 2 * POINTER)
    return round(total)


SKIPLIST_NODE = _expected_skiplist_node()
SKIPLIST_HEADER = allocation(3 * POINTER + ZSKIPLIST_MAXLEVEL * 2 * POINTER)


def rax_size(elements: int) -> int:
    """A radix tree of ``elements`` 16-byte IDs (rough: 2.5 nodes per element)."""
    nodes = int(elements * 2.5)
    return allocation(RAX_STRUCT) + nodes * allocation(4 + 2 * POINTER) + elements * 16


def _string_value(value: bytes) -> tuple[int, str]:
    if as_int64(value) is not None:
        return ROBJ, "int"
    if len(value) <= EMBSTR_MAX:
        return allocation(ROBJ + 3 + len(value) + 1), "embstr"
    return allocation(ROBJ) + sds_size(len(value)), "raw"


def _quicklist(value: list[bytes]) -> int:
    size = allocation(QUICKLIST_STRUCT)
    node: list[bytes] = []
    node_bytes = 7
    for element in value:
        cost = lp_entry_size(element)
        if node and node_bytes + cost > QUICKLIST_NODE_MAX_BYTES:
            size += allocation(QUICKLIST_NODE) + allocation(node_bytes)
            node, node_bytes = [], 7
        node.append(element)
        node_bytes += cost
    if node:
        size += allocation(QUICKLIST_NODE) + allocation(node_bytes)
    return size


def _intset(value) -> int:
    width = 2
    for member in value:
        n = int(member)
        if not -(1 << 15) <= n < 1 << 15:
            width = 4 if -(1 << 31) <= n < 1 << 31 else 8
            if width == 8:
                break
    return allocation(8 + width * len(value))


def _stream(s) -> int:
    size = allocation(STREAM_STRUCT)
    nodes = 0
    lp_bytes = 0
    for i, entry in enumerate(s.entries):
        if i % STREAM_NODE_MAX_ENTRIES == 0:
            nodes += 1
            lp_bytes += 7 + 5 * 2  # header/end + master entry counters
        lp_bytes += 4 * 2  # flags, ms delta, seq delta, lp-count (small ints)
        lp_bytes += sum(lp_entry_size(f) + lp_entry_size(v) for f, v in entry.fields)
    size += lp_bytes + nodes * 16 + rax_size(nodes)
    for group in s.groups:
        size += allocation(STREAM_CG) + rax_size(len(group.pending))
        size += len(group.pending) * allocation(STREAM_NACK)
        for consumer in group.consumers:
            size += allocation(STREAM_CONSUMER) + sds_size(len(consumer.name))
            size += rax_size(len(consumer.pending))
    return size


def _score_text(score: float) -> bytes:
    # Redis stores a listpack score as its shortest text: integral values without ".0"
    if math.isfinite(score) and abs(score) < 2**53 and score.is_integer():
        return str(int(score)).encode("ascii")
    return repr(score).encode("ascii")


def _largest(elements) -> int:
    return max((len(e) for e in elements), default=0)


def estimate(entry: Any) -> MemoryEstimate:
    """Estimate one decoded key (an ``Entry`` from a decoder run with values).

    Raises ``ValueError`` when the entry has no value (``values=False``).
    """
    value = entry.value
    if value is None:
        raise ValueError("memory estimate needs the value (decode with values=True)")
    size = allocation(DICT_ENTRY) + POINTER + sds_size(len(entry.key))
    if entry.expire_ms is not None:
        size += allocation(DICT_ENTRY) + POINTER
    kind, enc = entry.type, entry.encoding
    if kind == "string":
        extra, encoding = _string_value(value)
        return MemoryEstimate(size + extra, encoding, len(value), len(value))
    size += allocation(ROBJ)
    if kind == "list":
        size += _quicklist(value)
        return MemoryEstimate(size, "quicklist", len(value), _largest(value))
    if kind == "set":
        if enc == "intset":
            size += _intset(value)
            encoding = "intset"
        elif enc == "listpack":
            size += listpack_size(value)
            encoding = "listpack"
        else:
            size += dict_size(len(value)) + sum(sds_size(len(m)) for m in value)
            encoding = "hashtable"
        return MemoryEstimate(size, encoding, len(value), _largest(value))
    if kind == "hash":
        largest = max(_largest(value), _largest(value.values()))
        if enc in ("zipmap", "ziplist", "listpack", "listpack_ex"):
            flat = [x for pair in value.items() for x in pair]
            if enc == "listpack_ex":  # each field also carries its TTL in the listpack
                flat += [b"0"] * len(value)
            size += listpack_size(flat)
            encoding = "listpackex" if enc == "listpack_ex" else "listpack"
        else:
            size += dict_size(len(value))
            size += sum(sds_size(len(f)) + sds_size(len(v)) for f, v in value.items())
            if entry.field_expires:  # field TTLs: the ebuckets entries
                size += len(entry.field_expires) * 16
            encoding = "hashtable"
        return MemoryEstimate(size, encoding, len(value), largest)
    if kind == "zset":
        if enc in ("ziplist", "listpack"):
            flat = []
            for member, score in value.items():
                flat += [member, _score_text(score)]
            size += listpack_size(flat)
            encoding = "listpack"
        else:
            size += allocation(ZSET_STRUCT) + dict_size(len(value))
            size += allocation(ZSKIPLIST_STRUCT) + SKIPLIST_HEADER
            size += sum(SKIPLIST_NODE + sds_size(len(m)) for m in value)
            encoding = "skiplist"
        return MemoryEstimate(size, encoding, len(value), _largest(value))
    if kind == "stream":
        size += _stream(value)
        largest = max((len(x) for e in value.entries for pair in e.fields for x in pair), default=0)
        return MemoryEstimate(size, "stream", value.length, largest)
    if kind == "module":
        size += allocation(len(value.raw))
        return MemoryEstimate(size, value.name, 1, len(value.raw))
    raise ValueError(f"unknown type {kind!r}")
