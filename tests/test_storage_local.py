"""LocalStore on the real filesystem: atomic puts, exclusive names, safe keys,
streaming of unknown length, what crashes and races leave behind (and cleaning it up), and the
owner account."""

from __future__ import annotations

import getpass
import hashlib
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rdbkit.errors import ObjectNotFoundError, StorageError, UrlError
from rdbkit.storage import LocalStore, PendingUpload, open_store
from rdbkit.storage.base import TEMP_PREFIX

MiB = 1 << 20
REPO = Path(__file__).resolve().parent.parent


def chunks(total: int, chunk: int = MiB):
    """Lazily yield ``total`` pseudo-random bytes; the length is not announced."""
    block = hashlib.sha256(b"seed").digest() * (chunk // 32)
    for i in range(0, total, chunk):
        yield (i.to_bytes(8, "little") + block)[: min(chunk, total - i)]


def sha256_of(total: int) -> str:
    h = hashlib.sha256()
    for c in chunks(total):
        h.update(c)
    return "sha256:" + h.hexdigest()


def all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def test_round_trip_and_head(store):
    info = store.put("snaps/a/shard-0.rdb", [b"hello ", b"world"])
    assert (info.key, info.size) == ("snaps/a/shard-0.rdb", 11)
    assert info.checksum == "sha256:" + hashlib.sha256(b"hello world").hexdigest()
    assert info.modified_at.tzinfo is not None
    with store.get("snaps/a/shard-0.rdb") as f:
        assert f.read() == b"hello world"
    head = store.head("snaps/a/shard-0.rdb")
    assert head.size == 11
    assert head.checksum in (info.checksum, None)  # None only without user xattrs
    assert store.exists("snaps/a/shard-0.rdb") and not store.exists("snaps/a")


def test_put_accepts_streams_bytes_and_empty(store, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * (3 * MiB + 5))
    with open(src, "rb") as f:
        assert store.put("from-file", f).size == 3 * MiB + 5
    assert store.put("from-bytes", b"abc").size == 3
    assert store.put("empty", iter(())).size == 0
    assert store.get_range("empty", 0, 0) == b""


def test_large_stream_of_unknown_length_in_bounded_memory(store):
    total = 64 * MiB + 123
    tracemalloc.start()
    try:
        info = store.put("big", chunks(total))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == total and info.checksum == sha256_of(total)
    assert peak < 8 * MiB
    h = hashlib.sha256()
    with store.get("big") as f:
        while c := f.read(MiB):
            h.update(c)
    assert "sha256:" + h.hexdigest() == info.checksum


def test_overwrite_replaces_whole_object(store):
    store.put("k", b"old contents")
    store.put("k", b"new")
    with store.get("k") as f:
        assert f.read() == b"new"


def test_get_range_validates_bounds(store):
    store.put("r", bytes(range(100)))
    assert store.get_range("r", 10, 20) == bytes(range(10, 20))
    assert store.get_range("r", 0, 100) == bytes(range(100))
    for start, end in [(-1, 5), (5, 4), (0, 101), (100, 101)]:
        with pytest.raises(StorageError, match="outside object 'r'"):
            store.get_range("r", start, end)
    with pytest.raises(ObjectNotFoundError):
        store.get_range("missing", 0, 1)


def test_missing_objects(store):
    with pytest.raises(ObjectNotFoundError, match="'nope'"):
        store.get("nope")
    with pytest.raises(ObjectNotFoundError):
        store.head("nope")
    store.delete("nope")  # idempotent, as in S3


def test_list_and_delete(store):
    for key in ["b/2", "a/1", "a/2", "ab", "c"]:
        store.put(key, key.encode())
    assert [i.key for i in store.list()] == ["a/1", "a/2", "ab", "b/2", "c"]
    assert [i.key for i in store.list("a")] == ["a/1", "a/2", "ab"]
    assert [i.key for i in store.list("a/")] == ["a/1", "a/2"]
    assert [i.key for i in store.list("zz/")] == []
    store.delete("a/1")
    assert [i.key for i in store.list("a/")] == ["a/2"]


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "a/", "./a", "a/./b", "a\x00b",
            f"{TEMP_PREFIX}x", f"a/{TEMP_PREFIX}x"],
)
def test_unsafe_keys_are_rejected(store, key):
    for op in (lambda: store.put(key, b"x"), lambda: store.get(key), lambda: store.head(key),
               lambda: store.delete(key)):
        with pytest.raises(StorageError, match="invalid key"):
            op()
    assert all_files(store.root) == []


def test_unsafe_list_prefix_is_rejected(store):
    for prefix in ["/", "../", "a/../"]:
        with pytest.raises(StorageError, match="invalid prefix"):
            list(store.list(prefix))


def failing_after(n: int, exc: BaseException):
    for c in chunks(n * MiB):
        yield c
    raise exc


@pytest.mark.parametrize("exc", [OSError("source went away"), ValueError("bad")])
def test_failure_midway_leaves_nothing(store, exc):
    with pytest.raises(StorageError, match="cannot put 'x/obj'") as err:
        store.put("x/obj", failing_after(5, exc))
    assert err.value.__cause__ is exc
    assert all_files(store.root) == []


def test_keyboard_interrupt_cleans_up_and_passes_through(store):
    store.put("obj", b"previous")
    with pytest.raises(KeyboardInterrupt):
        store.put("obj", failing_after(3, KeyboardInterrupt()))
    assert all_files(store.root) == ["obj"]
    with store.get("obj") as f:
        assert f.read() == b"previous"


def test_listing_excludes_temp_files(store):
    store.put("a/real", b"1")
    (store.root / "a" / f"{TEMP_PREFIX}abc-real2").write_bytes(b"partial")
    (store.root / f"{TEMP_PREFIX}zzz-top").write_bytes(b"partial")
    assert [i.key for i in store.list()] == ["a/real"]


def test_exclusive_put(store):
    store.put("name", b"first", exclusive=True)
    with pytest.raises(StorageError, match="already exists"):
        store.put("name", b"second", exclusive=True)
    with store.get("name") as f:
        assert f.read() == b"first"
    assert all_files(store.root) == ["name"]


def test_open_store(tmp_path, monkeypatch):
    assert isinstance(open_store(f"file://{tmp_path}/s1"), LocalStore)
    monkeypatch.chdir(tmp_path)
    assert open_store("rel/dir").root == tmp_path / "rel" / "dir"
    with pytest.raises(ValueError, match="unknown S3 store setting"):
        open_store("s3://bucket/prefix", create=False)  # S3: see test_storage_s3.py
    with pytest.raises(StorageError, match="not a snapshot store"):
        open_store("redis://localhost:6379")
    with pytest.raises(UrlError):
        open_store("nosuch://x")
    (tmp_path / "afile").write_bytes(b"")
    with pytest.raises(StorageError, match="not a directory"):
        LocalStore(tmp_path / "afile")


# --- separate processes -------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from rdbkit.storage import LocalStore

    root, key, marker = sys.argv[1:4]

    def slow():
        yield b"a" * (1 << 20)
        Path(marker).write_text("started")
        while True:
            time.sleep(0.05)
            yield b"b" * 4096

    LocalStore(root).put(key, slow())
    """
)


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "writer never started"
        time.sleep(0.01)


def test_killed_writer_leaves_nothing_under_the_final_name(store, tmp_path):
    marker = tmp_path / "marker"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store.root), "snap/shard-0.rdb", str(marker)],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for(marker, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (store.root / "snap" / "shard-0.rdb").exists()
    assert not store.exists("snap/shard-0.rdb")
    assert list(store.list()) == []
    # The killed writer's partial temp file is the only thing left, and it is hidden.
    leftovers = all_files(store.root)
    assert len(leftovers) == 1 and leftovers[0].startswith(f"snap/{TEMP_PREFIX}")
    # It is a pending upload, which gc can abort.
    (pending,) = store.list_pending()
    assert pending.key == "snap/shard-0.rdb" and pending.upload_id == leftovers[0]
    store.abort_pending(pending)
    assert all_files(store.root) == [] and list(store.list_pending()) == []


RACER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from rdbkit.errors import StorageError
    from rdbkit.storage import LocalStore

    root, who, go, rounds = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    store = LocalStore(root)
    while not go.exists():
        time.sleep(0.001)
    for i in range(rounds):
        data = (who.encode() * 4096) * 64  # 1 MiB-ish, distinct per writer
        try:
            store.put(f"names/n{i}", [data, data], exclusive=True)
            print(f"won {i}", flush=True)
        except StorageError as exc:
            assert "already exists" in str(exc), exc
            print(f"lost {i}", flush=True)
    """
)


def test_racing_exclusive_puts_have_exactly_one_winner(store, tmp_path):
    rounds = 20
    go = tmp_path / "go"
    procs = {
        who: subprocess.Popen(
            [sys.executable, "-c", RACER, str(store.root), who, str(go), str(rounds)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for who in ("A", "B")
    }
    go.write_text("go")
    results = {}
    for who, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results[who] = out.split("\n")
    for i in range(rounds):
        winners = [who for who in procs if f"won {i}" in results[who]]
        losers = [who for who in procs if f"lost {i}" in results[who]]
        assert len(winners) == 1 and len(losers) == 1, (i, results)
        with store.get(f"names/n{i}") as f:
            data = f.read()
        assert data == (winners[0].encode() * 4096) * 64 * 2
    assert all_files(store.root) == sorted(f"names/n{i}" for i in range(rounds))


# --- unfinished uploads and the owner account ------------------------------------------


def test_pending_temp_files_are_listed_and_aborted(store):
    store.put("snap/real", b"1")
    left = store.root / "snap" / f"{TEMP_PREFIX}k3x_9abc-shard-0.rdb"
    left.write_bytes(b"partial")
    top = store.root / f"{TEMP_PREFIX}zzz-top"
    top.write_bytes(b"partial")
    pending = list(store.list_pending())
    assert [(p.key, p.upload_id) for p in pending] == [
        ("snap/shard-0.rdb", f"snap/{TEMP_PREFIX}k3x_9abc-shard-0.rdb"),
        ("top", f"{TEMP_PREFIX}zzz-top"),
    ]
    assert abs(pending[0].started_at.timestamp() - left.stat().st_mtime) < 1e-3
    assert pending[0].started_at.tzinfo is not None
    assert [p.key for p in store.list_pending("snap/")] == ["snap/shard-0.rdb"]
    assert list(store.list_pending("nope/")) == []
    store.abort_pending(pending[0])
    store.abort_pending(pending[0])  # already gone: fine
    assert all_files(store.root) == [f"{TEMP_PREFIX}zzz-top", "snap/real"]
    assert [p.key for p in store.list_pending()] == ["top"]


def test_abort_pending_never_removes_an_object(store):
    store.put("a/obj", b"1")
    for upload_id in ["a/obj", "../x", f"/{TEMP_PREFIX}x-y", f"a/../{TEMP_PREFIX}x-y"]:
        with pytest.raises(StorageError, match="not a pending upload"):
            store.abort_pending(PendingUpload("a/obj", upload_id, datetime.now(timezone.utc)))
    assert all_files(store.root) == ["a/obj"]


def test_owner_account(tmp_path):
    assert LocalStore(tmp_path / "a", account="acct-7").owner_account() == "acct-7"
    assert open_store(str(tmp_path / "b"), account="acct-8").owner_account() == "acct-8"
    assert open_store(str(tmp_path / "c"), compression="lz4", account="x").owner_account() == "x"
    default = LocalStore(tmp_path / "d").owner_account()
    assert default == getpass.getuser()
    with pytest.raises(ValueError):
        LocalStore(tmp_path / "e", account="")
