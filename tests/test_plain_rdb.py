"""``rdbkit restore`` and ``seed`` from a user's own plain .rdb (a path or an s3:// object),
verified before anything is written, with the account rule on the bucket's owner."""

from __future__ import annotations

import contextlib
import shutil
import uuid

import boto3
import pytest
from click.testing import CliRunner

from datasets import server_view, write_dataset
from s3servers import aws_env, moto_s3  # noqa: F401
from servers import free_port, redis7_binary, running_server, valkey9_binary
from rdbkit.cli import cli

MOTO_ACCOUNT = "123456789012"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def dump(redis7, tmp_path_factory):
    write_dataset(redis7)
    expected = server_view(redis7)
    path = tmp_path_factory.mktemp("plain") / "dump.rdb"
    shutil.copyfile(redis7.save(), path)
    return path, expected


def test_restore_from_a_local_path(dump):
    path, expected = dump
    with running_server("plain-target", redis7_binary()) as target:
        out = run("restore", path, f"redis://127.0.0.1:{target.port}/0", "--account", "t")
        assert out.exit_code == 0, out.stderr
        assert server_view(target) == expected


def test_a_damaged_file_is_refused_before_writing(dump, tmp_path):
    path, _ = dump
    bad = tmp_path / "bad.rdb"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with running_server("plain-target", redis7_binary()) as target:
        out = run("restore", bad, f"redis://127.0.0.1:{target.port}/0")
        assert out.exit_code == 1 and "at byte" in out.stderr
        with contextlib.closing(target.client()) as c:
            assert c.dbsize() == 0
    out = run("seed", bad, "--dir", tmp_path / "seeded")
    assert out.exit_code == 1 and not (tmp_path / "seeded" / "dump.rdb").exists()


def test_seed_checks_the_version_the_server_reads(valkey9, tmp_path):
    valkey9.reset()
    with contextlib.closing(valkey9.client()) as c:
        c.mset({f"k{i}": i for i in range(50)})
    path = tmp_path / "valkey.rdb"
    shutil.copyfile(valkey9.save(), path)  # VALKEY080
    out = run("seed", path, "--dir", tmp_path / "a", "--start", redis7_binary(),
              "--port", free_port())
    assert out.exit_code == 1 and "--target-version 10" in out.stderr
    port = free_port()
    out = run("seed", path, "--dir", tmp_path / "b", "--start", redis7_binary(), "--port", port,
              "--target-version", 10)
    assert out.exit_code == 0, out.stderr
    import redis

    client = redis.Redis(port=port, socket_timeout=30)
    try:
        assert client.dbsize() == 50 and client.get("k7") == b"7"
    finally:
        client.shutdown(nosave=True)
        client.close()
    assert valkey9_binary()  # the source really was a Valkey 9 file


def test_restore_from_s3_checks_the_bucket_owner(dump, moto_s3):
    path, expected = dump
    client = boto3.session.Session().client("s3", endpoint_url=moto_s3.url,
                                            region_name="us-east-1")
    bucket = f"rdbkit-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    client.upload_file(str(path), bucket, "exports/dump.rdb")
    url = f"s3://{bucket}/exports/dump.rdb"
    s3 = ["--endpoint-url", moto_s3.url, "--sts-endpoint-url", moto_s3.url]
    with running_server("plain-target", redis7_binary()) as target:
        to = f"redis://127.0.0.1:{target.port}/0"
        refused = run("restore", url, to, "--account", "210987654321", *s3)
        assert refused.exit_code == 1
        assert MOTO_ACCOUNT in refused.stderr and "210987654321" in refused.stderr
        with contextlib.closing(target.client()) as c:
            assert c.dbsize() == 0
        out = run("restore", url, to, "--account", MOTO_ACCOUNT, *s3)
        assert out.exit_code == 0, out.stderr
        assert server_view(target) == expected
