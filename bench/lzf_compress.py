"""A small greedy LZF compressor, to make inputs for lzf_decompress.

rdbkit itself only decompresses (the encoder comes later). This writes the
same format from its description in RDB_FORMAT.md: a control byte below 32
starts a literal run of ``ctrl + 1`` bytes; otherwise its top 3 bits are the
back-reference length minus 2 (7 means "add the next byte"), its low 5 bits
and the following byte the distance minus 1 (so distances 1..8192, lengths
3..264).
"""

from __future__ import annotations

_MAX_DISTANCE = 8192
_MAX_LENGTH = 264


def lzf_compress(data: bytes) -> bytes:
    """Compress ``data`` into LZF blocks; the output always decompresses to ``data``."""
    out = bytearray()
    literal_start = 0
    last_seen: dict[bytes, int] = {}
    n = len(data)
    i = 0

    def flush_literals(end: int) -> None:
        for start in range(literal_start, end, 32):
            chunk = data[start : min(start + 32, end)]
            out.append(len(chunk) - 1)
            out.extend(chunk)

    while i + 2 < n:
        triple = data[i : i + 3]
        ref = last_seen.get(triple)
        last_seen[triple] = i
        if ref is None or i - ref > _MAX_DISTANCE:
            i += 1
            continue
        length = 3
        limit = min(_MAX_LENGTH, n - i)
        while length < limit and data[ref + length] == data[i + length]:
            length += 1
        flush_literals(i)
        distance = i - ref - 1
        code = length - 2
        if code < 7:
            out.append(code << 5 | distance >> 8)
        else:
            out.append(7 << 5 | distance >> 8)
            out.append(code - 7)
        out.append(distance & 0xFF)
        i += length
        literal_start = i
    flush_literals(n)
    return bytes(out)
