"""The options every catalog command shares: which store, whose, and S3 settings.

``--store URL`` (or ``$RDBKIT_STORE``) is a local directory or
``s3://bucket/prefix``. The S3 transfer settings map one to one onto
:class:`rdbkit.storage.UploadConfig` fields and are ignored for a local
store. ``--account`` (or ``$RDBKIT_ACCOUNT``) names the caller's account when
the store cannot tell (a local store defaults to the local user; S3 asks STS).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import click

from rdbkit.catalog import Catalog
from rdbkit.storage import Store, open_store
from rdbkit.storage.transfer import MiB
from rdbkit.urls import S3Url, parse_url

#: CLI option name → UploadConfig field, for the S3 settings.
_S3_SETTINGS = {
    "endpoint_url": "endpoint_url",
    "region": "region_name",
    "part_size_mib": "part_size",
    "concurrency": "max_concurrency",
    "parts_in_flight": "max_parts_in_flight",
    "checksum": "checksum_algorithm",
    "sse": "sse",
    "sse_kms_key_id": "sse_kms_key_id",
    "expected_bucket_owner": "expected_bucket_owner",
    "sts_endpoint_url": "sts_endpoint_url",
    "conditional_writes": "conditional_writes",
}


def store_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--store``, ``--account``, ``--compression`` and the S3 settings."""
    func = store_settings(func)
    return click.option(
        "--store", "-s", "store_url", envvar="RDBKIT_STORE", required=True, metavar="URL",
        help="Snapshot store: a directory or s3://bucket/prefix (env RDBKIT_STORE).",
    )(func)


def snapshot_store_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Like :func:`store_options`, but ``--store`` may be left out (a plain .rdb source)."""
    func = store_settings(func)
    return click.option(
        "--store", "-s", "store_url", envvar="RDBKIT_STORE", default=None, metavar="URL",
        help="Snapshot store holding SNAPSHOT (env RDBKIT_STORE); not needed for a plain "
        ".rdb path or s3:// URL.",
    )(func)


def store_settings(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--account``, ``--compression`` and the S3 settings (for a STORE argument)."""
    options = [
        click.option("--account", envvar="RDBKIT_ACCOUNT", default=None,
                     help="Your account (env RDBKIT_ACCOUNT; default: the store's: local "
                     "user, or the S3 caller identity)."),
        click.option("--compression", type=click.Choice(["none", "lz4"]), default="none",
                     show_default=True, help="Compress new snapshots' shard objects."),
        click.option("--endpoint-url", default=None, help="S3-compatible endpoint URL."),
        click.option("--region", default=None, help="S3 region."),
        click.option("--part-size-mib", type=click.IntRange(5, 5 * 1024), default=None,
                     help="S3 starting part size in MiB (default 8)."),
        click.option("--concurrency", type=click.IntRange(1, 1000), default=None,
                     help="S3 parts uploaded or ranges downloaded at once (default 10)."),
        click.option("--parts-in-flight", type=click.IntRange(1, 10000), default=None,
                     help="S3 parts held in memory at once (default 10)."),
        click.option("--checksum", type=click.Choice(["CRC32", "CRC32C", "SHA1", "SHA256"]),
                     default=None, help="S3 additional checksum (default CRC32)."),
        click.option("--sse", type=click.Choice(["AES256", "aws:kms"]), default=None,
                     help="S3 server-side encryption."),
        click.option("--sse-kms-key-id", default=None, help="KMS key id for --sse aws:kms."),
        click.option("--expected-bucket-owner", default=None, metavar="ACCOUNT_ID",
                     help="Refuse a bucket not owned by this 12-digit account."),
        click.option("--sts-endpoint-url", default=None,
                     help="STS endpoint used to find your account (default AWS's)."),
        click.option("--conditional-writes/--no-conditional-writes", default=None,
                     help="Use If-None-Match for unique names (default on; off for "
                     "endpoints without it: a check-then-write)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


_STORE_PARAMS = ("store_url", "account", "compression", *_S3_SETTINGS)


def pop_store_params(params: dict[str, Any]) -> dict[str, Any]:
    """Remove the store options from a command's keyword arguments; return them."""
    return {name: params.pop(name) for name in _STORE_PARAMS}


def open_cli_store(opts: dict[str, Any], url: str | None = None) -> Store:
    """The store named by ``url`` (default ``--store``) with the given settings."""
    url = url or opts["store_url"]
    parsed = parse_url(url)
    config: dict[str, Any] = {}
    if isinstance(parsed, S3Url):
        for option, field in _S3_SETTINGS.items():
            value = opts.get(option)
            if value is not None:
                config[field] = value * MiB if option == "part_size_mib" else value
        if opts.get("account"):
            config["account"] = opts["account"]
    elif opts.get("account"):
        config["account"] = opts["account"]
    return open_store(parsed, **config)


def open_cli_catalog(opts: dict[str, Any],
                     progress: Callable[[int, int], None] | None = None) -> Catalog:
    compression = None if opts["compression"] == "none" else opts["compression"]
    return Catalog(open_cli_store(opts), account=opts.get("account"), compression=compression,
                   progress=progress)


@contextmanager
def byte_progress(enabled: bool | None, label: str):
    """Yield a callback counting bytes into a progress line on stderr (or None).

    The line shows bytes done and the rate, at most 5 times a second.
    """
    if not (sys.stderr.isatty() if enabled is None else enabled):
        yield None
        return
    start = time.monotonic()
    state = {"done": 0, "shown": 0.0}

    def show(final: bool = False) -> None:
        elapsed = max(time.monotonic() - start, 1e-9)
        mib = state["done"] / MiB
        end = "\n" if final else ""
        sys.stderr.write(f"\r{label}: {mib:,.1f} MiB, {mib / elapsed:,.1f} MiB/s{end}")
        sys.stderr.flush()

    def update(n: int, keys: int = 0) -> None:
        state["done"] += n
        now = time.monotonic()
        if now - state["shown"] >= 0.2:
            state["shown"] = now
            show()

    try:
        yield update
    finally:
        show(final=True)
