"""A user's own plain ``.rdb`` (a local path or an ``s3://bucket/key.rdb`` object) as a
snapshot, so restore and seed treat it exactly like a catalog snapshot.

The file is imported into a temporary local catalog: the streaming decoder
walks every byte on the way (structure, checksum, version, which dbs hold
keys), so a damaged file is refused before anything reaches a target, and
the restore then reads a verified copy. An S3 object must belong to the
account being restored into: the bucket's owner (``S3Store.owner_account``:
the configured account, ``ExpectedBucketOwner``, or the caller's identity)
is compared with ``account`` and a mismatch is an AccountMismatchError.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from rdbkit.catalog import Capture, Catalog, ShardInput, SourceInfo, file_capture
from rdbkit.errors import AccountMismatchError, CatalogError
from rdbkit.storage import LocalStore, open_store
from rdbkit.urls import FileUrl, S3Url, parse_url

#: The name the plain file gets in its temporary catalog.
NAME = "plain"


def is_plain_rdb(text: str) -> bool:
    """Whether a SNAPSHOT argument names a file or object rather than a snapshot.

    Snapshot names cannot contain '/', so a path with one (``./dump.rdb``,
    ``/data/dump.rdb``) or any URL (``s3://...``, ``file://...``) is a file.
    """
    return "/" in text


@contextlib.contextmanager
def plain_snapshot(
    source: str,
    *,
    account: str | None = None,
    spool_dir: str | None = None,
    **store_config: Any,
) -> Iterator[tuple[Catalog, str]]:
    """Yield ``(catalog, name)`` holding ``source`` as a verified one-shard snapshot.

    ``account`` is the account of the target (default: the local user);
    ``store_config`` goes to the S3 store (``endpoint_url=``, ...).
    """
    url = parse_url(source)
    with tempfile.TemporaryDirectory(prefix="rdbkit-plain-", dir=spool_dir) as spool:
        catalog = Catalog(LocalStore(spool, account=account), account=account)
        if isinstance(url, FileUrl):
            catalog.create(NAME, file_capture(str(url.path)))
        elif isinstance(url, S3Url):
            key_path = PurePosixPath(url.prefix)
            if not url.prefix or str(key_path.parent) in ("", "."):
                bucket_store = open_store(S3Url(url.bucket), **store_config)
            else:
                bucket_store = open_store(S3Url(url.bucket, str(key_path.parent)), **store_config)
            owner = bucket_store.owner_account()
            if owner != catalog.account:
                raise AccountMismatchError(
                    f"cannot use {source}: the bucket belongs to account {owner!r}, the target "
                    f"to {catalog.account!r}", owner=owner, other=catalog.account)
            with bucket_store.get(key_path.name) as stream:
                catalog.create(NAME, Capture(
                    source=SourceInfo(url=str(url), engine="file"),
                    shards=[ShardInput(stream, size_hint=bucket_store.head(key_path.name).size)],
                ))
        else:
            raise CatalogError(f"{source} is not a path or an s3:// object URL")
        yield catalog, NAME
