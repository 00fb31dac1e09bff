"""Micro-benchmarks (pytest-benchmark) for the codec's hot paths, both twins.

Run with ``bash bench/run.sh micro``; never part of the test suite
(``testpaths = ["tests"]``), and nothing here asserts a speed, only that the
work was done right.
"""

from __future__ import annotations

import importlib
import random
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dataset  # noqa: E402

from rdbkit._pycodec import lzf_compress as reference_lzf_compress  # noqa: E402

IMPLEMENTATIONS = {"c": "rdbkit._codec", "python": "rdbkit._pycodec"}
SMALL_KEYS = 2_000  # ~1.6 MB of RDB 10


@pytest.fixture(params=sorted(IMPLEMENTATIONS), ids=lambda p: p)
def codec(request):
    """The codec module; a missing C build is an error here, not a skip."""
    return importlib.import_module(IMPLEMENTATIONS[request.param])


@pytest.fixture(scope="session")
def small_rdb() -> Path:
    return dataset.dataset("redis7", SMALL_KEYS, seed=1, log=lambda msg: None).path


@pytest.fixture(scope="session")
def payload() -> bytes:
    return random.Random(7).randbytes(256 * 1024)


@pytest.fixture(scope="session")
def lzf_case() -> tuple[bytes, bytes]:
    rng = random.Random(11)
    raw = b"".join(
        b'{"id":%d,"user":"user:%d","score":%d.%d,"tags":["a","b"]},'
        % (i, rng.randrange(10_000), rng.randrange(1000), rng.randrange(100))
        for i in range(4_000)
    )
    packed = reference_lzf_compress(raw)
    assert packed is not None  # repetitive JSON always compresses
    return raw, packed


def test_crc64(benchmark, codec, payload):
    assert codec.crc64(b"123456789") == 0xE9C6D914C4B8D9CA  # the Jones CRC-64 check value
    benchmark(codec.crc64, payload)


def test_lzf_decompress(benchmark, codec, lzf_case):
    raw, compressed = lzf_case
    assert benchmark(codec.lzf_decompress, compressed, len(raw)) == raw


def _decode(codec, path: Path, values: bool) -> int:
    n = 0
    for _entry in codec.Decoder(str(path), values=values):
        n += 1
    return n


def test_decode_small_file(benchmark, codec, small_rdb):
    assert benchmark(_decode, codec, small_rdb, True) == SMALL_KEYS


def test_verify_small_file(benchmark, codec, small_rdb):
    assert benchmark(_decode, codec, small_rdb, False) == SMALL_KEYS


def test_decode_small_file_push(benchmark, codec, small_rdb):
    """Push mode in 64 KiB pieces, as a replica stream arrives."""
    data = small_rdb.read_bytes()

    def run() -> int:
        dec = codec.Decoder()
        n = 0
        for start in range(0, len(data), 65536):
            dec.feed(data[start : start + 65536])
            for _entry in dec:
                n += 1
        dec.close()
        return n

    assert benchmark(run) == SMALL_KEYS


def test_rdbpy_small_file(benchmark, small_rdb):
    """Reference: rdb-py (Rust) on the same file (it skips streams)."""
    rdb = pytest.importorskip("rdb")
    benchmark(lambda: sum(1 for _ in rdb.RdbDecoder(str(small_rdb))))
