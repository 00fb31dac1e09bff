"""Storage (layer 2): where snapshot bytes live.

``open_store(url)`` turns a store URL (see :mod:`rdbkit.urls`) into a
:class:`Store`: a plain path or ``file:///path`` is a :class:`LocalStore`;
``s3://bucket/prefix`` is an :class:`~rdbkit.storage.s3.S3Store` (needs
boto3, imported only then; settings such as ``endpoint_url=`` go to its
:class:`~rdbkit.storage.transfer.UploadConfig`). ``compression="lz4"`` wraps
the store in a :class:`CompressedStore`.
"""

from __future__ import annotations

from typing import Any

from rdbkit.errors import StorageError
from rdbkit.storage.base import ObjectInfo, PendingUpload, Source, Store, validate_key
from rdbkit.storage.compression import CompressedStore
from rdbkit.storage.local import LocalStore
from rdbkit.storage.transfer import UploadConfig
from rdbkit.urls import FileUrl, S3Url, Url, parse_url

__all__ = [
    "CompressedStore",
    "LocalStore",
    "ObjectInfo",
    "PendingUpload",
    "Source",
    "Store",
    "UploadConfig",
    "open_store",
    "validate_key",
]


def open_store(url: str | Url, *, compression: str | None = None, **config: Any) -> Store:
    """Open the store ``url`` names; ``config`` goes to the store's constructor.

    ``account=`` names the owner account for either kind of store (see
    :meth:`Store.owner_account`).

    Raises UrlError for an unparsable URL and StorageError for a URL that is
    not a store (redis://...), an S3 URL without boto3 installed, or an
    unknown ``compression`` (None or "lz4"); ValueError for an invalid setting.
    """
    parsed = parse_url(url) if isinstance(url, str) else url
    if compression not in (None, "lz4"):
        raise StorageError(f"unknown compression {compression!r} (expected None or 'lz4')")
    store: Store
    if isinstance(parsed, FileUrl):
        store = LocalStore(parsed.path, **config)
    elif isinstance(parsed, S3Url):
        try:
            from rdbkit.storage.s3 import S3Store
        except ImportError as exc:
            raise StorageError(f"cannot open {parsed}: {exc}") from exc
        store = S3Store(parsed.bucket, parsed.prefix, **config)
    else:
        raise StorageError(f"{parsed} is a Redis node, not a snapshot store")
    return CompressedStore(store) if compression == "lz4" else store
