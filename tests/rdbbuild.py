"""Tiny RDB byte builders for the decoder tests (independent of the codec under test).

Each helper writes one structure from RDB_FORMAT.md in the plainest form, so a
test can state its input byte by byte and know every offset.
"""

from __future__ import annotations

import dataclasses
import struct


def crc64(data: bytes, crc: int = 0) -> int:
    """Jones CRC-64, bit by bit (slow, obviously right; for building test files)."""
    poly = 0x95AC9329AC4BC9B5
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc


def length(n: int) -> bytes:
    """Shortest RDB length encoding of ``n``."""
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    if n < 2**32:
        return b"\x80" + struct.pack(">I", n)
    return b"\x81" + struct.pack(">Q", n)


def string(b: bytes) -> bytes:
    """A raw RDB string (length + bytes)."""
    return length(len(b)) + b


def int_string(v: int) -> bytes:
    """An integer-encoded RDB string (0xC0/0xC1/0xC2)."""
    if -128 <= v <= 127:
        return b"\xc0" + struct.pack("<b", v)
    if -32768 <= v <= 32767:
        return b"\xc1" + struct.pack("<h", v)
    return b"\xc2" + struct.pack("<i", v)


def lzf_literal(data: bytes) -> bytes:
    """LZF stream made of literal runs only (valid, never smaller)."""
    out = bytearray()
    for i in range(0, len(data), 32):
        chunk = data[i : i + 32]
        out.append(len(chunk) - 1)
        out += chunk
    return bytes(out)


def lzf_string(data: bytes, compressed: bytes | None = None) -> bytes:
    """An LZF-encoded RDB string (0xC3 clen ulen data)."""
    comp = lzf_literal(data) if compressed is None else compressed
    return b"\xc3" + length(len(comp)) + length(len(data)) + comp


def header(version: int = 11, magic: str = "REDIS") -> bytes:
    return (b"REDIS%04d" % version) if magic == "REDIS" else (b"VALKEY%03d" % version)


def rdb(body: bytes, version: int = 11, magic: str = "REDIS", checksum: int | None = None) -> bytes:
    """A whole file: header, ``body``, EOF and (version >= 5) the CRC64 (or ``checksum``)."""
    data = header(version, magic) + body + b"\xff"
    if version >= 5:
        crc = crc64(data) if checksum is None else checksum
        data += struct.pack("<Q", crc)
    return data


def kv(type_byte: int, key: bytes, value: bytes) -> bytes:
    """One key without prefix opcodes."""
    return bytes([type_byte]) + string(key) + value


def ziplist(items: list) -> bytes:
    """A ziplist holding ``items`` (bytes or int), choosing each entry's natural encoding."""
    entries = b""
    prev = 0
    last_len = 0
    for it in items:
        pre = bytes([prev]) if prev < 254 else b"\xfe" + struct.pack("<I", prev)
        if isinstance(it, int):
            if 0 <= it <= 12:
                enc = bytes([0xF1 + it])
            elif -128 <= it <= 127:
                enc = b"\xfe" + struct.pack("<b", it)
            elif -32768 <= it <= 32767:
                enc = b"\xc0" + struct.pack("<h", it)
            elif -(2**23) <= it < 2**23:
                enc = b"\xf0" + it.to_bytes(3, "little", signed=True)
            elif -(2**31) <= it < 2**31:
                enc = b"\xd0" + struct.pack("<i", it)
            else:
                enc = b"\xe0" + struct.pack("<q", it)
        else:
            n = len(it)
            if n < 64:
                enc = bytes([n]) + it
            elif n < 16384:
                enc = bytes([0x40 | (n >> 8), n & 0xFF]) + it
            else:
                enc = b"\x80" + struct.pack(">I", n) + it
        e = pre + enc
        entries += e
        prev = len(e)
        last_len = len(e)
    total = 10 + len(entries) + 1
    tail = 10 + len(entries) - last_len
    return struct.pack("<IIH", total, tail, min(len(items), 65535)) + entries + b"\xff"


def backlen(n: int) -> bytes:
    groups = []
    while True:
        groups.append(n & 127)
        n >>= 7
        if not n:
            break
    groups.reverse()
    return bytes([groups[0]] + [g | 128 for g in groups[1:]])


def lp_entry(it) -> bytes:
    if isinstance(it, int):
        if 0 <= it <= 127:
            enc = bytes([it])
        elif -4096 <= it <= 4095:
            v = it & 0x1FFF
            enc = bytes([0xC0 | (v >> 8), v & 0xFF])
        elif -(2**15) <= it < 2**15:
            enc = b"\xf1" + struct.pack("<h", it)
        elif -(2**23) <= it < 2**23:
            enc = b"\xf2" + it.to_bytes(3, "little", signed=True)
        elif -(2**31) <= it < 2**31:
            enc = b"\xf3" + struct.pack("<i", it)
        else:
            enc = b"\xf4" + struct.pack("<q", it)
    else:
        n = len(it)
        if n < 64:
            enc = bytes([0x80 | n]) + it
        elif n < 4096:
            enc = bytes([0xE0 | (n >> 8), n & 0xFF]) + it
        else:
            enc = b"\xf0" + struct.pack("<I", n) + it
    return enc + backlen(len(enc))


def listpack(items: list) -> bytes:
    body = b"".join(lp_entry(it) for it in items)
    return struct.pack("<IH", 6 + len(body) + 1, min(len(items), 65535)) + body + b"\xff"


def intset(values: list[int], width: int) -> bytes:
    fmt = {2: "h", 4: "i", 8: "q"}[width]
    return struct.pack("<II", width, len(values)) + struct.pack(f"<{len(values)}{fmt}", *values)


def zipmap(pairs: list[tuple[bytes, bytes]], free: int = 0) -> bytes:
    def zl(n: int) -> bytes:
        return bytes([n]) if n < 254 else b"\xfe" + struct.pack("<I", n)

    out = bytes([min(len(pairs), 254)])
    for k, v in pairs:
        out += zl(len(k)) + k + zl(len(v)) + bytes([free]) + v + b"\x00" * free
    return out + b"\xff"


def stream_id(ms: int, seq: int) -> bytes:
    return struct.pack(">QQ", ms, seq)


def stream_node(master: tuple[int, int], master_fields: list[bytes], entries: list) -> bytes:
    """One stream node: master-ID string + listpack string.

    ``entries``: (ms, seq, [(field, value), ...], deleted) in order.
    """
    live = sum(1 for e in entries if not e[3])
    els: list = [live, len(entries) - live, len(master_fields), *master_fields, 0]
    for ms, seq, fields, deleted in entries:
        flags = 1 if deleted else 0
        ms_d, seq_d = ms - master[0], seq - master[1]
        if [f for f, _ in fields] == master_fields:
            els += [flags | 2, ms_d, seq_d, *[v for _, v in fields], len(fields) + 3]
        else:
            flat = [x for pair in fields for x in pair]
            els += [flags, ms_d, seq_d, len(fields), *flat, 2 * len(fields) + 4]
    return string(stream_id(*master)) + string(listpack(els))


@dataclasses.dataclass
class E:
    """A minimal entry for the encoder tests: the attributes Encoder.write reads."""

    key: bytes
    type: str
    value: object
    db: int = 0
    expire_ms: int | None = None
    idle: int | None = None
    freq: int | None = None
    field_expires: dict | None = None
