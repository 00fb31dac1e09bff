"""Real network faults under S3Store: a proxy (tests/faultproxy.py) resets connections in the
middle of upload_part bodies on their way to moto's server, or in the middle of the answers to
ranged GETs; and the leftovers of crashed writers
(S3 multipart uploads on moto and SeaweedFS, LocalStore temporary files) are found and removed."""

from __future__ import annotations

import hashlib
import os
import time
import uuid

import pytest

boto3 = pytest.importorskip("boto3")
import botocore.config  # noqa: E402

from faultproxy import FaultProxy  # noqa: E402
from s3servers import aws_env, moto_s3, seaweedfs_s3  # noqa: E402,F401
from rdbkit.errors import StorageError  # noqa: E402
from rdbkit.storage import LocalStore  # noqa: E402
from rdbkit.storage.base import TEMP_PREFIX  # noqa: E402
from rdbkit.storage.s3 import S3Store  # noqa: E402

MiB = 1 << 20
PART = 5 * MiB


def is_upload_part(method: str, target: str) -> bool:
    return method == "PUT" and "partNumber=" in target


def data_of(total: int) -> bytes:
    block = hashlib.sha256(b"faults").digest() * (MiB // 32)
    return b"".join(
        (i.to_bytes(8, "little") + block)[: min(MiB, total - i)] for i in range(0, total, MiB)
    )


def s3_client(url: str, attempts: int = 1):
    """A client with short timeouts, so a broken connection costs little time."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        config=botocore.config.Config(
            connect_timeout=2,
            read_timeout=5,
            retries={"mode": "standard", "max_attempts": attempts},
        ),
    )


@pytest.fixture
def bucket(moto_s3) -> str:
    name = f"rdbkit-{uuid.uuid4().hex[:16]}"
    s3_client(moto_s3.url).create_bucket(Bucket=name)
    return name


def uploads(url: str, bucket: str) -> list:
    """Multipart uploads, asked of the endpoint directly (never through the proxy)."""
    return s3_client(url).list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def test_parts_cut_midway_are_retried_and_the_upload_completes(moto_s3, bucket):
    data = data_of(3 * PART + 123)
    with FaultProxy(moto_s3.url, is_upload_part, cuts=2) as proxy:
        store = S3Store(
            bucket, "p", client=s3_client(proxy.url, attempts=4), part_size=PART,
            max_concurrency=2,
        )
        info = store.put("snap.rdb", data)
        assert proxy.cut == 2
        parts_sent = [t for m, t in proxy.requests if is_upload_part(m, t)]
        assert len(parts_sent) == 4 + 2  # every part, plus the two retried ones
    direct = S3Store(bucket, "p", endpoint_url=moto_s3.url, part_size=PART)
    assert info.size == len(data)
    with direct.get("snap.rdb") as f:
        assert f.read() == data
    assert uploads(moto_s3.url, bucket) == []


def test_parts_that_always_fail_abort_the_upload(moto_s3, bucket):
    with FaultProxy(moto_s3.url, is_upload_part, cuts=None) as proxy:
        store = S3Store(bucket, client=s3_client(proxy.url, attempts=2), part_size=PART)
        started = time.monotonic()
        with pytest.raises(StorageError, match="cannot put 'doomed'"):
            store.put("doomed", data_of(2 * PART + 1))
        assert time.monotonic() - started < 20
        assert proxy.cut >= 2
        assert any(m == "DELETE" and "uploadId=" in t for m, t in proxy.requests)  # the abort
    assert uploads(moto_s3.url, bucket) == []
    assert not S3Store(bucket, endpoint_url=moto_s3.url).exists("doomed")


def test_ranges_cut_midway_are_asked_for_again(moto_s3, bucket):
    data = data_of(3 * PART + 7)
    S3Store(bucket, endpoint_url=moto_s3.url, part_size=PART).put("obj", data)
    is_get = lambda method, target: method == "GET"  # noqa: E731
    with FaultProxy(moto_s3.url, is_get, cuts=2, cut_responses=True) as proxy:
        store = S3Store(bucket, client=s3_client(proxy.url, attempts=3), part_size=PART)
        with store.get("obj") as f:
            assert f.read() == data
        assert proxy.cut == 2
        assert len(proxy.requests) == 4 + 2  # 4 ranges (the first from the probe GET), 2 again
    with FaultProxy(moto_s3.url, is_get, cuts=None, cut_responses=True) as proxy:
        store = S3Store(
            bucket, client=s3_client(proxy.url, attempts=1), part_size=PART, retries=2
        )
        with store.get("obj") as f, pytest.raises(StorageError, match="failed 2 times"):
            f.read()


@pytest.mark.parametrize("server", ["moto", "seaweedfs"])
def test_crashed_writers_upload_is_found_and_aborted(request, server):
    url = request.getfixturevalue(f"{server}_s3").url
    client = s3_client(url, attempts=3)
    name = f"rdbkit-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    # What a writer killed after its first part leaves behind.
    upload_id = client.create_multipart_upload(Bucket=name, Key="snaps/s1/shard-0.rdb")["UploadId"]
    client.upload_part(
        Bucket=name, Key="snaps/s1/shard-0.rdb", UploadId=upload_id, PartNumber=1,
        Body=data_of(PART),
    )
    store = S3Store(name, "snaps", endpoint_url=url)
    (pending,) = store.list_pending()
    assert (pending.key, pending.upload_id) == ("s1/shard-0.rdb", upload_id)
    assert list(store.list()) == []
    store.abort_pending(pending)
    assert list(store.list_pending()) == []
    assert client.list_multipart_uploads(Bucket=name).get("Uploads", []) == []
    store.abort_pending(pending)  # already gone: fine


def test_local_temp_file_of_a_killed_put_is_found_and_removed(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.put("s1/other.rdb", b"done")
    # A killed put leaves its mkstemp file: .tmp-<random>-<final name>, in the final directory.
    left = store.root / "s1" / f"{TEMP_PREFIX}q8z1_x0a-shard-0.rdb"
    left.write_bytes(b"partial")
    old = time.time() - 3600
    os.utime(left, (old, old))
    (pending,) = store.list_pending()
    assert pending.key == "s1/shard-0.rdb"
    assert pending.upload_id == f"s1/{TEMP_PREFIX}q8z1_x0a-shard-0.rdb"
    assert abs(pending.started_at.timestamp() - old) < 1
    store.abort_pending(pending)
    assert not left.exists() and list(store.list_pending()) == []
    assert [i.key for i in store.list()] == ["s1/other.rdb"]
