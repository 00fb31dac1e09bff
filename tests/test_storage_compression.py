"""CompressedStore: lz4 frames over a LocalStore, streamed both ways in bounded memory."""

from __future__ import annotations

import hashlib
import os
import tracemalloc

import lz4.frame
import pytest

from rdbkit.errors import StorageError
from rdbkit.storage import CompressedStore, LocalStore, open_store

MiB = 1 << 20


def compressible_chunks(total: int, chunk: int = MiB):
    """Lazily yield ``total`` bytes that compress well but not trivially."""
    for i in range(0, total, chunk):
        n = min(chunk, total - i)
        yield (f"key:{i:012d} value-".encode() * (n // 20 + 1))[:n]


def digest(chunks) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()


@pytest.fixture
def inner(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def test_round_trip_small_and_empty(inner):
    store = CompressedStore(inner)
    store.put("a", [b"hello ", b"world"])
    store.put("empty", [])
    with store.get("a") as f:
        assert f.read() == b"hello world"
    with store.get("empty") as f:
        assert f.read() == b""
    # Stored bytes are a standard lz4 frame.
    with inner.get("a") as f:
        assert lz4.frame.decompress(f.read()) == b"hello world"
    assert [i.key for i in store.list()] == ["a", "empty"]
    assert store.exists("a")
    store.delete("a")
    assert not store.exists("a")


def test_large_round_trip_in_bounded_memory(inner):
    total = 64 * MiB + 7
    store = CompressedStore(inner)
    tracemalloc.start()
    try:
        info = store.put("big", compressible_chunks(total))
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        h = hashlib.sha256()
        n = 0
        with store.get("big") as f:
            while c := f.read(MiB):
                h.update(c)
                n += len(c)
        _, get_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == total and h.hexdigest() == digest(compressible_chunks(total))
    assert info.size < total // 4  # it really compressed
    assert info.size == inner.head("big").size
    assert put_peak < 16 * MiB and get_peak < 16 * MiB


def test_file_written_by_lz4_tool_api_reads_back(inner):
    data = os.urandom(3 * MiB)
    inner.put("ext", lz4.frame.compress(data) + lz4.frame.compress(b"tail"))
    with CompressedStore(inner).get("ext") as f:
        assert f.read() == data + b"tail"  # concatenated frames are one stream


def test_ranged_get_is_refused(inner):
    store = CompressedStore(inner)
    store.put("a", b"x" * 1000)
    with pytest.raises(StorageError, match="not supported"):
        store.get_range("a", 0, 10)


def test_corrupt_and_truncated_objects_raise_storage_error(inner):
    frame = lz4.frame.compress(os.urandom(MiB), content_checksum=True)
    inner.put("trunc", frame[: len(frame) // 2])
    inner.put("plain", b"not an lz4 frame at all")
    bad = bytearray(frame)
    bad[len(bad) // 2] ^= 0xFF
    inner.put("flipped", bytes(bad))
    store = CompressedStore(inner)
    for key in ("trunc", "plain", "flipped"):
        with pytest.raises(StorageError, match=repr(key)):
            with store.get(key) as f:
                f.read()


def test_failure_midway_leaves_nothing(inner):
    def failing():
        yield from compressible_chunks(4 * MiB)
        raise OSError("source went away")

    with pytest.raises(StorageError):
        CompressedStore(inner).put("x", failing())
    assert not any(p.is_file() for p in inner.root.rglob("*"))


def test_open_store_with_lz4(tmp_path):
    store = open_store(str(tmp_path / "s"), compression="lz4")
    assert isinstance(store, CompressedStore)
    store.put("k", b"v" * 100)
    with store.get("k") as f:
        assert f.read() == b"v" * 100
    with pytest.raises(StorageError, match="unknown compression"):
        open_store(str(tmp_path / "s"), compression="zstd")


def test_pending_uploads_and_account_are_the_inner_stores(tmp_path):
    inner = LocalStore(tmp_path / "s", account="acct")
    store = CompressedStore(inner)
    (inner.root / ".tmp-abc-snap.rdb").write_bytes(b"partial")
    (pending,) = store.list_pending()
    assert (pending.key, pending.upload_id) == ("snap.rdb", ".tmp-abc-snap.rdb")
    store.abort_pending(pending)
    assert list(inner.list_pending()) == [] and not any(inner.root.iterdir())
    assert store.owner_account() == "acct"
