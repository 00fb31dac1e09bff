"""One ``store`` fixture over every kind of store, for the catalog tests.

``store`` runs a test three times: ``[local]`` (a LocalStore in tmp_path),
``[moto]`` (an S3Store on moto's server) and ``[seaweedfs]`` (an S3Store on
SeaweedFS), each in a fresh directory or bucket. ``make_store`` makes more
stores of the same kind (an export destination, another account's store).
A test module imports ``store_fixture`` (and ``make_store_fixture``,
``clock_fixture`` as needed) together with ``aws_env``, ``moto_s3`` and
``seaweedfs_s3``, which the S3 kinds look up by name.

S3 stores use 5 MiB parts (the S3 minimum), so a test with a dozen MiB goes
multipart. ``make_store(account=...)`` gives the store an owner account
(``Store.owner_account()``): through the store's own ``account`` setting when
it has one, else -- until that setting exists -- by setting ``owner_account``
on the instance.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import io
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from rdbbuild import E
from s3servers import aws_env, moto_s3, seaweedfs_s3  # noqa: F401  (fixtures)

from rdbkit.codec import RdbWriter
from rdbkit.storage import LocalStore, Store, UploadConfig

MiB = 1 << 20
STORE_KINDS = ["local", "moto", "seaweedfs"]
#: The account tests use unless they need a second one.
ACCOUNT = "111111111111"
OTHER = "222222222222"

_LOCAL_HAS_ACCOUNT = "account" in inspect.signature(LocalStore.__init__).parameters
_S3_HAS_ACCOUNT = "account" in {f.name for f in dataclasses.fields(UploadConfig)}


class Clock:
    """An injectable clock: ``clock()`` is an aware UTC time the test sets or advances."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2030, 1, 15, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime) -> datetime:
        assert when.tzinfo is not None
        self.now = when
        return when

    def advance(self, delta: timedelta | None = None, **kw) -> datetime:
        self.now += delta if delta is not None else timedelta(**kw)
        return self.now


def rdb_bytes(
    n_keys: int = 20, *, seed: str = "k", value_size: int = 32, version: int = 10
) -> bytes:
    """A valid RDB from rdbkit's own encoder: ``n_keys`` strings (compressible values)."""
    out = io.BytesIO()
    with RdbWriter(out, version=version) as w:
        w.begin()
        for i in range(n_keys):
            w.write(
                E(f"{seed}:{i:05d}".encode(), "string", (b"v%05d-" % i) * (value_size // 7 + 1))
            )
    return out.getvalue()


def random_rdb(total: int, *, seed: bytes = b"big", value_size: int = MiB) -> bytes:
    """A valid RDB of about ``total`` bytes of incompressible values (for multipart uploads)."""
    out = io.BytesIO()
    block = b"".join(
        hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(value_size // 32)
    )
    with RdbWriter(out, version=10) as w:
        w.begin()
        for i in range(max(1, total // value_size)):
            w.write(E(b"big:%04d" % i, "string", i.to_bytes(4, "big") + block[4:]))
    return out.getvalue()


def keys_under(store: Store, prefix: str) -> list[str]:
    return [info.key for info in store.list(prefix)]


def _give_account(store: Store, account: str | None) -> Store:
    if account is not None and not callable(getattr(type(store), "owner_account", None)):
        store.owner_account = lambda: account  # type: ignore[method-assign]  # pre-merge shim
    return store


@dataclasses.dataclass
class StoreMaker:
    """Makes stores of one kind; each call a fresh directory or bucket."""

    kind: str
    make: Callable[..., Store]
    client: object = None  # the S3 client of the endpoint (None for local)

    def __call__(self, account: str | None = None, **settings) -> Store:
        return self.make(account, **settings)


_CLIENTS: dict[str, object] = {}


def _s3_client(url: str):
    """One boto3 client per endpoint for the session (making one costs ~0.1 s)."""
    if url not in _CLIENTS:
        import boto3
        import botocore.config

        _CLIENTS[url] = boto3.session.Session().client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            config=botocore.config.Config(
                retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=20
            ),
        )
    return _CLIENTS[url]


@pytest.fixture(name="make_store", params=STORE_KINDS)
def make_store_fixture(request, tmp_path) -> StoreMaker:
    """A factory of fresh stores of the parametrized kind."""
    kind = request.param
    if kind == "local":
        count = iter(range(1000))

        def make_local(account: str | None = None, **settings) -> Store:
            root = tmp_path / f"store-{next(count)}"
            if account is not None and _LOCAL_HAS_ACCOUNT:
                return LocalStore(root, account=account, **settings)
            return _give_account(LocalStore(root, **settings), account)

        return StoreMaker(kind, make_local)

    pytest.importorskip("boto3")
    from rdbkit.storage.s3 import S3Store

    endpoint = request.getfixturevalue(f"{kind}_s3")
    client = _s3_client(endpoint.url)

    def make_s3(account: str | None = None, **settings) -> Store:
        bucket = f"rdbkit-cat-{uuid.uuid4().hex[:16]}"
        client.create_bucket(Bucket=bucket)
        settings.setdefault("part_size", 5 * MiB)
        settings.setdefault("max_parts_in_flight", 3)
        if account is not None and _S3_HAS_ACCOUNT:
            settings["account"] = account
        store = S3Store(bucket, "snaps", endpoint_url=endpoint.url, client=client, **settings)
        return _give_account(store, account)

    return StoreMaker(kind, make_s3, client)


@pytest.fixture(name="store")
def store_fixture(make_store) -> Store:
    """A fresh, empty store of each kind (local, moto, seaweedfs), owned by ACCOUNT."""
    return make_store(ACCOUNT)


@pytest.fixture(name="clock")
def clock_fixture() -> Clock:
    return Clock()


def reopen(store: Store) -> Store:
    """A new instance on the same directory or bucket (for another process)."""
    if isinstance(store, LocalStore):
        return LocalStore(store.root)
    from rdbkit.storage.s3 import S3Store

    return S3Store(store.bucket, store.prefix, config=store.config)  # its own client
