"""rdbkit.urls: the one parser for store, source and target addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from rdbkit.errors import RdbkitError, UrlError
from rdbkit.urls import FileUrl, RedisClusterUrl, RedisUrl, S3Url, parse_url


@pytest.mark.parametrize(
    "text, path",
    [
        ("backups", "backups"),
        ("./a/b", "a/b"),
        ("/var/lib/rdbkit", "/var/lib/rdbkit"),
        ("file:///var/lib/rdbkit", "/var/lib/rdbkit"),
        ("file://localhost/srv/x", "/srv/x"),
        ("file:///with%20space", "/with space"),
    ],
)
def test_paths_and_file_urls(text, path):
    assert parse_url(text) == FileUrl(Path(path))


@pytest.mark.parametrize(
    "text, bucket, prefix",
    [
        ("s3://my-bucket", "my-bucket", ""),
        ("s3://my-bucket/", "my-bucket", ""),
        ("s3://my.bucket/snapshots", "my.bucket", "snapshots"),
        ("s3://b01/a/b/c/", "b01", "a/b/c"),
    ],
)
def test_s3(text, bucket, prefix):
    url = parse_url(text)
    assert url == S3Url(bucket=bucket, prefix=prefix)
    assert parse_url(str(url)) == url


def test_redis_defaults_and_db():
    assert parse_url("redis://localhost") == RedisUrl(host="localhost", port=6379, db=0)
    assert parse_url("redis://127.0.0.1:7000/3") == RedisUrl(host="127.0.0.1", port=7000, db=3)
    assert parse_url("rediss://h:6380") == RedisUrl(host="h", port=6380, tls=True)
    assert parse_url("redis://[::1]:7001/0").host == "::1"


def test_redis_credentials_are_kept_but_never_shown():
    url = parse_url("redis://alice:s%40cret@h:1/2")
    assert (url.username, url.password) == ("alice", "s@cret")
    assert "cret" not in repr(url) and "cret" not in str(url)
    with pytest.raises(UrlError) as err:
        parse_url("redis://alice:topsecret@h:1/x")
    assert "topsecret" not in str(err.value)


def test_cluster():
    assert parse_url("redis+cluster://h:7000") == RedisClusterUrl(host="h", port=7000)
    assert parse_url("rediss+cluster://h") == RedisClusterUrl(host="h", port=6379, tls=True)


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "empty"),
        ("ftp://host/x", "unknown scheme"),
        ("file://host/x", "host"),
        ("s3://", "no bucket"),
        ("s3://Bad_Bucket/x", "invalid bucket"),
        ("s3://ab", "invalid bucket"),
        ("s3://bucket/a/../b", "'..'"),
        ("s3://key:secret@bucket/x", "credentials"),
        ("redis://", "no host"),
        ("redis://h:notaport", "malformed"),
        ("redis://h:99999", "malformed"),
        ("redis://h:1/db", "not a non-negative integer"),
        ("redis://h:1/-1", "not a non-negative integer"),
        ("redis+cluster://h:1/2", "only database 0"),
        ("redis://h?x=1", "query"),
    ],
)
def test_errors_name_the_url_and_the_problem(text, words):
    with pytest.raises(UrlError) as err:
        parse_url(text)
    assert isinstance(err.value, ValueError) and isinstance(err.value, RdbkitError)
    assert words in str(err.value)
    if text and "secret" not in text:
        assert text in str(err.value)
