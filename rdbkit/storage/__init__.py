"""Storage (layer 2): where snapshot bytes live.

``open_store(url)`` turns a store URL (see :mod:`rdbkit.urls`) into a
:class:`Store`: a plain path or ``file:///path`` is a :class:`LocalStore`;
``s3://bucket/prefix`` is parsed but the S3 store is not available yet.
``compression="lz4"`` wraps the store in a :class:`CompressedStore`.
"""

from __future__ import annotations

from typing import Any

from rdbkit.errors import StorageError
from rdbkit.storage.base import ObjectInfo, Source, Store, validate_key
from rdbkit.storage.compression import CompressedStore
from rdbkit.storage.local import LocalStore
from rdbkit.urls import FileUrl, S3Url, Url, parse_url

__all__ = [
    "CompressedStore",
    "LocalStore",
    "ObjectInfo",
    "Source",
    "Store",
    "open_store",
    "validate_key",
]


def open_store(url: str | Url, *, compression: str | None = None, **config: Any) -> Store:
    """Open the store ``url`` names; ``config`` goes to the store's constructor.

    Raises UrlError for an unparsable URL and StorageError for a URL that is
    not a store (redis://...), a store kind not available yet (S3), or an
    unknown ``compression`` (None or "lz4").
    """
    parsed = parse_url(url) if isinstance(url, str) else url
    if compression not in (None, "lz4"):
        raise StorageError(f"unknown compression {compression!r} (expected None or 'lz4')")
    store: Store
    if isinstance(parsed, FileUrl):
        store = LocalStore(parsed.path, **config)
    elif isinstance(parsed, S3Url):
        raise StorageError(f"cannot open {parsed}: the S3 store is not available yet")
    else:
        raise StorageError(f"{parsed} is a Redis node, not a snapshot store")
    return CompressedStore(store) if compression == "lz4" else store
