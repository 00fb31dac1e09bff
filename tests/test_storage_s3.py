"""S3Store against real HTTP endpoints (moto's server and SeaweedFS): single and multipart puts, aborts
that leave no parts, exclusive names, ranged reads, parallel ranged gets, unfinished uploads, the
owner account, and the part sizing."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid

import pytest

boto3 = pytest.importorskip("boto3")
import botocore.exceptions  # noqa: E402

from s3servers import S3Endpoint, aws_env, moto_s3, seaweedfs_s3  # noqa: E402,F401
from rdbkit.errors import ObjectNotFoundError, StorageError  # noqa: E402
from rdbkit.storage import CompressedStore, PendingUpload, open_store  # noqa: E402
from rdbkit.storage.s3 import RANGE_THREAD_PREFIX, SHA256_METADATA, S3Store  # noqa: E402
from rdbkit.storage.transfer import (  # noqa: E402
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    GiB,
    MiB,
    TiB,
    UploadConfig,
    part_size_at,
    part_size_for,
)

ACCOUNT = "123456789012"  # moto's default account


def chunks(total: int, chunk: int = MiB):
    """Lazily yield ``total`` pseudo-random bytes; the length is not announced."""
    block = hashlib.sha256(b"seed").digest() * (chunk // 32)
    for i in range(0, total, chunk):
        yield (i.to_bytes(8, "little") + block)[: min(chunk, total - i)]


def data_of(total: int) -> bytes:
    return b"".join(chunks(total))


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["moto", "seaweedfs"])
def server(request) -> S3Endpoint:
    """Each S3 test runs against moto's server and against SeaweedFS."""
    return request.getfixturevalue(f"{request.param}_s3")


@pytest.fixture
def endpoint(server) -> str:
    return server.url


@pytest.fixture
def client(endpoint):
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(client) -> str:
    name = f"rdbkit-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def store(endpoint, bucket) -> S3Store:
    return S3Store(bucket, "snaps", endpoint_url=endpoint, part_size=5 * MiB, max_parts_in_flight=3)


def uploads(client, bucket) -> list:
    return client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def test_single_put_round_trip_and_head(store, client, bucket):
    info = store.put("a/shard-0.rdb", [b"hello ", b"world"])
    assert (info.key, info.size, info.checksum) == ("a/shard-0.rdb", 11, sha(b"hello world"))
    assert info.modified_at.tzinfo is not None
    with store.get("a/shard-0.rdb") as f:
        assert f.read() == b"hello world"
    head = store.head("a/shard-0.rdb")
    assert (head.size, head.checksum) == (11, info.checksum)
    raw = client.head_object(Bucket=bucket, Key="snaps/a/shard-0.rdb")  # under the prefix
    assert raw["Metadata"][SHA256_METADATA] == info.checksum
    assert store.exists("a/shard-0.rdb") and not store.exists("a")
    assert store.put("empty", iter(())).size == 0
    with store.get("empty") as f:
        assert f.read() == b""


@pytest.mark.parametrize("size_hint", [None, 12 * MiB])
def test_multipart_unknown_and_known_length(store, client, bucket, size_hint):
    total = 12 * MiB + 7
    data = data_of(total)
    step = 3 * MiB + 1  # chunks that straddle part boundaries
    info = store.put(
        "big", (data[i : i + step] for i in range(0, total, step)), size_hint=size_hint
    )
    assert (info.size, info.checksum) == (total, sha(data))
    raw = client.head_object(Bucket=bucket, Key="snaps/big", PartNumber=1)
    assert raw["PartsCount"] == 3  # 5 + 5 + 2 MiB
    with store.get("big") as f:
        assert f.read() == data
    assert store.head("big").size == total
    assert uploads(client, bucket) == []


def test_multipart_from_one_large_bytes_object(store):
    data = data_of(11 * MiB)
    assert store.put("bytes", data).checksum == sha(data)
    assert store.get_range("bytes", 5 * MiB - 3, 5 * MiB + 3) == data[5 * MiB - 3 : 5 * MiB + 3]


def failing_source(after: int, exc: BaseException):
    yield from chunks(after)
    raise exc


def test_source_raising_midway_aborts_the_upload(store, client, bucket):
    with pytest.raises(StorageError, match="source broke") as info:
        store.put("broken", failing_source(11 * MiB, RuntimeError("source broke")))
    assert isinstance(info.value.__cause__, RuntimeError)
    assert uploads(client, bucket) == []
    assert not store.exists("broken")


def test_keyboard_interrupt_aborts_and_passes_through(store, client, bucket):
    with pytest.raises(KeyboardInterrupt):
        store.put("interrupted", failing_source(8 * MiB, KeyboardInterrupt()))
    assert uploads(client, bucket) == []
    assert not store.exists("interrupted")


def test_small_source_raising_writes_nothing(store, client, bucket):
    with pytest.raises(StorageError):
        store.put("small", failing_source(MiB, OSError("disk gone")))
    assert not store.exists("small") and uploads(client, bucket) == []


def test_exclusive_put_of_existing_name_fails(store, client, bucket):
    store.put("name", b"first")
    with pytest.raises(StorageError, match="already exists"):
        store.put("name", b"second", exclusive=True)
    with pytest.raises(StorageError, match="already exists"):
        store.put("name", chunks(11 * MiB), exclusive=True)
    with store.get("name") as f:
        assert f.read() == b"first"
    assert uploads(client, bucket) == []
    assert store.put("fresh", b"x", exclusive=True).size == 1


def racing_source(client, bucket: str, total: int):
    """Yield ``total`` bytes; a rival writer claims the name after the first chunk."""
    for i, chunk in enumerate(chunks(total)):
        yield chunk
        if i == 0:
            client.put_object(Bucket=bucket, Key="snaps/raced", Body=b"rival")


@pytest.mark.parametrize("total", [2 * MiB, 11 * MiB])
def test_exclusive_put_loses_a_race_atomically(store, client, bucket, total):
    # The HEAD before the upload saw nothing: only If-None-Match can refuse it.
    with pytest.raises(StorageError, match="already exists"):
        store.put("raced", racing_source(client, bucket, total), exclusive=True)
    with store.get("raced") as f:
        assert f.read() == b"rival"
    assert uploads(client, bucket) == []


def test_check_then_write_without_conditional_writes(endpoint, bucket):
    store = S3Store(bucket, endpoint_url=endpoint, conditional_writes=False)
    store.put("k", b"one", exclusive=True)
    with pytest.raises(StorageError, match="already exists"):
        store.put("k", b"two", exclusive=True)


def test_ranged_get(store):
    data = data_of(3 * MiB)
    store.put("r", data)
    assert store.get_range("r", 0, 10) == data[:10]
    assert store.get_range("r", 100, len(data)) == data[100:]
    assert store.get_range("r", 5, 5) == b""
    assert store.get_range("r", len(data), len(data)) == b""
    for start, end in [(0, len(data) + 1), (len(data) + 1, len(data) + 1), (5, 4), (-1, 3)]:
        with pytest.raises(StorageError):
            store.get_range("r", start, end)
    with pytest.raises(ObjectNotFoundError):
        store.get_range("missing", 0, 1)


def test_list_head_delete(server, store, client, bucket):
    client.put_object(Bucket=bucket, Key="outside", Body=b"not ours")
    if server.name == "seaweedfs":
        # SeaweedFS refuses a name with a `..` segment outright (InvalidRequest),
        # so no such object can appear under the prefix there.
        with pytest.raises(botocore.exceptions.ClientError, match="InvalidRequest"):
            client.put_object(Bucket=bucket, Key="snaps/bad/../key", Body=b"not a valid key")
    else:
        client.put_object(Bucket=bucket, Key="snaps/bad/../key", Body=b"not a valid key")
    for key in ["b/2", "a/1", "a/10", "c"]:
        store.put(key, key.encode())
    assert [i.key for i in store.list()] == ["a/1", "a/10", "b/2", "c"]
    assert [(i.key, i.size) for i in store.list("a/")] == [("a/1", 3), ("a/10", 4)]
    assert [i.key for i in store.list("a/1")] == ["a/1", "a/10"]
    assert list(store.list("zzz")) == []
    with pytest.raises(ObjectNotFoundError):
        store.head("nope")
    with pytest.raises(ObjectNotFoundError):
        store.get("nope")
    store.delete("a/1")
    store.delete("a/1")  # missing is fine
    assert not store.exists("a/1")
    assert [i.key for i in store.list()] == ["a/10", "b/2", "c"]
    with pytest.raises(StorageError):
        store.put("../escape", b"x")
    with pytest.raises(StorageError):
        list(store.list("/abs"))


def test_list_paginates(endpoint, bucket, client):
    store = S3Store(bucket, endpoint_url=endpoint)
    for i in range(1005):  # one page holds 1,000
        client.put_object(Bucket=bucket, Key=f"k/{i:04d}", Body=b"")
    keys = [i.key for i in store.list("k/")]
    assert keys == [f"k/{i:04d}" for i in range(1005)]


def test_corrupt_object_is_refused_at_end_of_stream(store, client, bucket):
    store.put("c", b"good bytes")
    client.put_object(
        Bucket=bucket,
        Key="snaps/c",
        Body=b"evil bytes",
        Metadata={SHA256_METADATA: sha(b"good bytes")},
    )
    with store.get("c") as f, pytest.raises(StorageError, match="corrupt"):
        f.read()


def test_missing_bucket_is_a_storage_error(endpoint):
    store = S3Store("no-such-bucket-rdbkit", endpoint_url=endpoint)
    with pytest.raises(StorageError):
        store.put("k", b"x")
    with pytest.raises(StorageError):
        list(store.list())


def test_request_options_are_sent(server, endpoint, bucket, client):
    """ExpectedBucketOwner on every request, SSE and checksums on writes."""
    # SeaweedFS without a configured SSE-S3 key (s3.sse.kek in security.toml)
    # answers SSE-S3 writes with 500 InternalError: the store reports a
    # StorageError and leaves nothing behind. The other options work there.
    sse = "AES256" if server.name == "moto" else None
    if server.name == "seaweedfs":
        refused = S3Store(bucket, endpoint_url=endpoint, sse="AES256", retries=1)
        with pytest.raises(StorageError, match="InternalError"):
            refused.put("sse", b"abc")
        assert not refused.exists("sse") and uploads(client, bucket) == []
    store = S3Store(
        bucket,
        endpoint_url=endpoint,
        expected_bucket_owner=ACCOUNT,
        sse=sse,
        part_size=5 * MiB,
    )
    seen: list[tuple[str, dict]] = []

    def record(request, **_):
        headers = {
            k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
        }
        seen.append((request.method, headers))

    store.client.meta.events.register("before-send.s3", record)
    store.put("small", b"abc")
    store.put("big", chunks(11 * MiB))
    store.head("big")
    store.get_range("big", 0, 1)
    list(store.list())
    store.delete("small")
    assert len(seen) >= 10
    assert all(h.get("x-amz-expected-bucket-owner") == ACCOUNT for _, h in seen)
    writes = [h for m, h in seen if m == "PUT"]  # PutObject and each UploadPart
    assert len(writes) == 4
    assert all(
        "x-amz-checksum-crc32" in h or h.get("x-amz-trailer") == "x-amz-checksum-crc32"
        for h in writes
    )
    raw = store.client.head_object(Bucket=bucket, Key="big")
    if sse:
        assert raw["ServerSideEncryption"] == "AES256"


def test_open_store_s3_with_lz4(endpoint, bucket):
    plain = open_store(f"s3://{bucket}/pre/fix", endpoint_url=endpoint)
    assert isinstance(plain, S3Store) and plain.prefix == "pre/fix"
    plain.put("x", b"plain")
    assert [i.key for i in plain.list()] == ["x"]
    packed = open_store(
        f"s3://{bucket}/pre/fix", compression="lz4", endpoint_url=endpoint, part_size=5 * MiB
    )
    assert isinstance(packed, CompressedStore)
    data = data_of(12 * MiB) + bytes(8 * MiB)
    info = packed.put("snap.rdb", iter([data[i : i + MiB] for i in range(0, len(data), MiB)]))
    assert 0 < info.size < len(data)
    with packed.get("snap.rdb") as f:
        assert f.read() == data
    with pytest.raises(ValueError, match="unknown S3 store setting"):
        open_store(f"s3://{bucket}", endpont_url=endpoint)


# -- configuration and part sizing (pure computation) -------------------------


def test_upload_config_validates():
    cfg = UploadConfig()
    assert (cfg.part_size, cfg.checksum_algorithm, cfg.max_parts_in_flight) == (
        8 * MiB,
        "CRC32",
        10,
    )
    with pytest.raises(AttributeError):
        cfg.part_size = 1  # type: ignore[misc]
    for bad in [
        {"part_size": 4 * MiB},
        {"part_size": 6 * GiB},
        {"max_parts_in_flight": 0},
        {"max_concurrency": 0},
        {"checksum_algorithm": "MD5"},
        {"sse": "des"},
        {"sse": "AES256", "sse_kms_key_id": "k"},
        {"expected_bucket_owner": "me"},
        {"retries": 0},
        {"part_size": True},
    ]:
        with pytest.raises(ValueError):
            UploadConfig(**bad)
    UploadConfig(sse="aws:kms", sse_kms_key_id="alias/x", checksum_algorithm=None)


def test_five_tib_fits_in_ten_thousand_parts():
    size = part_size_for(5 * TiB)
    assert MIN_PART_SIZE <= size <= MAX_PART_SIZE
    assert -(-5 * TiB // size) <= MAX_PARTS
    parts = -(-5 * TiB // size)
    assert all(part_size_at(n, 5 * TiB) == size for n in (1, parts // 2, parts))
    for total in [0, 1, 8 * MiB, 80 * GiB, 78 * GiB + 1, TiB, 5 * TiB]:
        s = part_size_for(total)
        assert MIN_PART_SIZE <= s <= MAX_PART_SIZE and -(-total // s) <= MAX_PARTS
    assert part_size_for(80 * GiB) == 16 * MiB  # doubled once: 8 MiB would need 10,240 parts
    with pytest.raises(StorageError):
        part_size_for(5 * TiB + 1)


def test_unknown_size_doubles_every_thousand_parts():
    sizes = [part_size_at(n, None) for n in range(1, MAX_PARTS + 1)]
    assert sizes[0] == sizes[999] == 8 * MiB and sizes[1000] == 16 * MiB
    assert all(MIN_PART_SIZE <= s <= MAX_PART_SIZE for s in sizes)
    assert sum(sizes) >= 5 * TiB  # 8 MiB start reaches past S3's object limit
    with pytest.raises(StorageError):
        part_size_at(MAX_PARTS + 1, None)


def test_stream_longer_than_its_hint_gets_growing_parts():
    base = part_size_for(GiB)
    planned = -(-GiB // base)
    assert part_size_at(planned, GiB) == base == part_size_at(planned + 1000, GiB)
    assert part_size_at(planned + 1001, GiB) == 2 * base


def test_part_failing_in_a_worker_fails_the_put(store, client, bucket):
    """S3 itself rejects a part (the upload vanished): StorageError, nothing left."""

    def source():
        yield from chunks(6 * MiB)
        for upload in uploads(client, bucket):  # a rival (say `rdbkit gc`) aborts it
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        yield from chunks(6 * MiB)

    # moto answers 500 here (real S3: 404 NoSuchUpload); either way the put fails.
    with pytest.raises(StorageError, match="UploadPart"):
        store.put("vanished", source())
    assert uploads(client, bucket) == [] and not store.exists("vanished")


# -- parallel ranged gets -------------------------------------------------------


class CountingStore(S3Store):
    """An S3Store that records its range fetches (the hook get() runs in its threads)."""

    def __init__(self, *args, delay: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.delay = delay
        self.lock = threading.Lock()
        self.fetched: list[int] = []
        self.running = 0
        self.peak_running = 0

    def _fetch_range(self, name, key, start, end, etag, cancel, body=None):
        with self.lock:
            self.running += 1
            self.peak_running = max(self.peak_running, self.running)
        try:
            time.sleep(self.delay)
            data = super()._fetch_range(name, key, start, end, etag, cancel, body)
            if data is not None:
                with self.lock:
                    self.fetched.append(start)
            return data
        finally:
            with self.lock:
                self.running -= 1


def range_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(RANGE_THREAD_PREFIX)]


@pytest.fixture
def ranged(endpoint, bucket) -> CountingStore:
    return CountingStore(
        bucket, "r", endpoint_url=endpoint, part_size=5 * MiB, max_parts_in_flight=2,
        max_concurrency=3,
    )


@pytest.mark.parametrize("total", [5 * MiB + 1, 15 * MiB, 17 * MiB - 3])
def test_get_of_several_parts_is_byte_identical(ranged, total):
    data = data_of(total)
    ranged.put("obj", data)
    with ranged.get("obj") as f:
        assert f.raw.peak_held >= 1  # the ranged reader, not the single GET
        assert f.read() == data
        assert f.read() == b""
    assert sorted(ranged.fetched) == list(range(0, total, 5 * MiB))
    assert range_threads() == []


def test_small_objects_stream_from_one_get(ranged, client, bucket):
    data = data_of(5 * MiB)  # exactly one part
    ranged.put("one", data)
    ranged.put("empty", b"")
    with ranged.get("one") as f:
        assert not hasattr(f.raw, "peak_held") and f.read() == data
    with ranged.get("empty") as f:
        assert f.read() == b""
    assert ranged.fetched == []


def test_recorded_sha256_is_checked_after_ranged_reads(ranged, client, bucket):
    data = data_of(11 * MiB)
    client.put_object(Bucket=bucket, Key="r/good", Body=data, Metadata={SHA256_METADATA: sha(data)})
    with ranged.get("good") as f:
        assert f.read() == data
    client.put_object(Bucket=bucket, Key="r/bad", Body=data, Metadata={SHA256_METADATA: sha(b"x")})
    with ranged.get("bad") as f, pytest.raises(StorageError, match="corrupt"):
        f.read()


def test_ranged_get_holds_at_most_max_parts_in_flight(endpoint, bucket):
    """A slow reader: prefetch fills the window and stops; fetches stay within max_concurrency."""
    store = CountingStore(
        bucket, endpoint_url=endpoint, part_size=5 * MiB, max_parts_in_flight=3,
        max_concurrency=2, delay=0.05,
    )
    total = 6 * 5 * MiB + 5
    data = data_of(total)
    store.put("obj", data)
    out = bytearray()
    with store.get("obj") as f:
        raw = f.raw
        while chunk := f.read(MiB):
            assert raw.held <= 3
            out += chunk
            time.sleep(0.005)
        assert raw.peak_held == 3  # the window was used, and never exceeded
    assert out == data
    assert store.peak_running <= 2
    assert range_threads() == []


def test_close_midway_cancels_and_leaves_no_threads(endpoint, bucket):
    store = CountingStore(
        bucket, endpoint_url=endpoint, part_size=5 * MiB, max_parts_in_flight=2, delay=0.2
    )
    data = data_of(5 * 5 * MiB)
    store.put("obj", data)
    f = store.get("obj")
    assert f.read(10) == data[:10]
    f.close()
    assert range_threads() == []
    assert len(store.fetched) <= 2 < 5  # ranges beyond the window were never fetched
    with pytest.raises(ValueError):
        f.read(1)


def test_object_replaced_midway_fails_instead_of_mixing(server, client, bucket):
    """Later ranges send If-Match with the first answer's ETag (moto and SeaweedFS honour it)."""
    store = S3Store(
        bucket, endpoint_url=server.url, part_size=5 * MiB, max_parts_in_flight=1
    )
    old, new = data_of(11 * MiB), bytes(11 * MiB)
    store.put("obj", old)
    with store.get("obj") as f:
        assert f.read(MiB) == old[:MiB]  # only the first range has been asked for
        client.put_object(Bucket=bucket, Key="obj", Body=new)
        with pytest.raises(StorageError, match="changed while it was read"):
            f.read()
    assert range_threads() == []
    with store.get("obj") as f:
        assert f.read() == new


def test_object_deleted_midway_is_not_found(client, bucket, endpoint):
    store = S3Store(bucket, endpoint_url=endpoint, part_size=5 * MiB, max_parts_in_flight=1)
    store.put("obj", data_of(11 * MiB))
    with store.get("obj") as f:
        f.read(1)
        store.delete("obj")
        with pytest.raises(StorageError):
            f.read()


# -- unfinished uploads and the owner account -------------------------------------


def leave_upload(client, bucket: str, name: str) -> str:
    """Start a multipart upload and send one part, as a writer that then crashed would."""
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=name)["UploadId"]
    client.upload_part(Bucket=bucket, Key=name, UploadId=upload_id, PartNumber=1, Body=b"x" * 1000)
    return upload_id


def test_list_and_abort_pending(server, store, client, bucket):
    kept = leave_upload(client, bucket, "snaps/a/shard-0.rdb")
    other = leave_upload(client, bucket, "snaps/b/shard-0.rdb")
    leave_upload(client, bucket, "outside/x")  # not under the store prefix
    # S3 and moto list in key order; SeaweedFS does not (the interface promises no order).
    pending = sorted(store.list_pending(), key=lambda p: p.key)
    assert [(p.key, p.upload_id) for p in pending] == [
        ("a/shard-0.rdb", kept),
        ("b/shard-0.rdb", other),
    ]
    assert all(p.started_at.tzinfo is not None for p in pending)
    # moto reports a fixed Initiated time (2010-11-10); SeaweedFS the real one.
    if server.name == "seaweedfs":
        assert abs(time.time() - pending[0].started_at.timestamp()) < 300
    assert [p.key for p in store.list_pending("a/")] == ["a/shard-0.rdb"]
    assert list(store.list_pending("zz")) == []
    assert list(store.list()) == []  # never objects
    store.abort_pending(pending[0])
    store.abort_pending(pending[0])  # already gone: fine
    store.abort_pending(PendingUpload("a/x", "no-such-upload", pending[0].started_at))
    assert [p.key for p in store.list_pending()] == ["b/shard-0.rdb"]
    CompressedStore(store).abort_pending(pending[1])  # delegates
    assert list(CompressedStore(store).list_pending()) == []
    assert [u["Key"] for u in uploads(client, bucket)] == ["outside/x"]
    with pytest.raises(StorageError):
        list(store.list_pending("../x"))


def test_owner_account(server, endpoint, bucket):
    assert S3Store(bucket, endpoint_url=endpoint, account="acct-1").owner_account() == "acct-1"
    assert S3Store(
        bucket, endpoint_url=endpoint, account="acct-1", expected_bucket_owner=ACCOUNT
    ).owner_account() == "acct-1"
    owned = S3Store(bucket, endpoint_url=endpoint, expected_bucket_owner=ACCOUNT)
    assert owned.owner_account() == ACCOUNT
    assert open_store(f"s3://{bucket}", endpoint_url=endpoint, account="a2").owner_account() == "a2"
    assert open_store(
        f"s3://{bucket}", compression="lz4", endpoint_url=endpoint, account="a3"
    ).owner_account() == "a3"
    asks_sts = S3Store(bucket, endpoint_url=endpoint, sts_endpoint_url=endpoint, retries=1)
    if server.name == "moto":  # moto answers STS at its own URL
        assert asks_sts.owner_account() == ACCOUNT
        assert asks_sts.owner_account() == ACCOUNT  # cached
    else:  # SeaweedFS has no STS
        with pytest.raises(StorageError, match="set account="):
            asks_sts.owner_account()
    with pytest.raises(ValueError):
        UploadConfig(account="")
