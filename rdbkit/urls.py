"""Parse the URL-like strings that address every store, source and target.

This is the one place that reads them (DESIGN.md, "Boundaries"). Accepted forms:

- a plain path, relative or absolute (``backups``, ``/var/lib/rdbkit``), or
  ``file:///absolute/path`` → :class:`FileUrl`;
- ``s3://bucket[/prefix]`` → :class:`S3Url`;
- ``redis://[user:password@]host[:port][/db]`` and ``rediss://`` (TLS)
  → :class:`RedisUrl`;
- ``redis+cluster://host[:port]`` and ``rediss+cluster://`` (TLS)
  → :class:`RedisClusterUrl`.

Anything else raises :class:`rdbkit.errors.UrlError` (a ``ValueError``) naming
the URL and what is wrong with it. Passwords never appear in messages or reprs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union
from urllib.parse import SplitResult, unquote, urlsplit

from rdbkit.errors import UrlError

DEFAULT_REDIS_PORT = 6379

# S3 bucket naming rules (general purpose buckets): 3-63 characters of lowercase
# letters, digits, dots and hyphens, starting and ending with a letter or digit.
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class FileUrl:
    """A local directory (or file): ``file:///path`` or a plain path."""

    path: Path

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class S3Url:
    """An S3 bucket and key prefix; ``prefix`` has no leading or trailing '/'."""

    bucket: str
    prefix: str = ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


@dataclass(frozen=True)
class RedisUrl:
    """One Redis-protocol node; ``tls`` for ``rediss://``."""

    host: str
    port: int = DEFAULT_REDIS_PORT
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://{_hostport(self.host, self.port)}/{self.db}"


@dataclass(frozen=True)
class RedisClusterUrl:
    """A Redis Cluster reached through one seed node (cluster mode has only db 0)."""

    host: str
    port: int = DEFAULT_REDIS_PORT
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        scheme = "rediss+cluster" if self.tls else "redis+cluster"
        return f"{scheme}://{_hostport(self.host, self.port)}"


Url = Union[FileUrl, S3Url, RedisUrl, RedisClusterUrl]


def parse_url(text: str) -> Url:
    """Parse a store, source or target address into its typed form.

    Raises UrlError (a ValueError) naming the URL and the problem.
    """
    if not isinstance(text, str):
        raise UrlError(f"expected a URL or path string, got {type(text).__name__}")
    if not text or text.isspace():
        raise UrlError("empty URL")
    if "\x00" in text:
        raise UrlError(f"URL {_redact(text)!r} contains a NUL character")
    if "://" not in text:
        return FileUrl(Path(text))
    scheme = text.split("://", 1)[0].lower()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - urlsplit validates the port lazily
    except ValueError as exc:
        raise UrlError(f"URL {_redact(text)!r} is malformed: {exc}") from exc
    if parts.query or parts.fragment:
        raise UrlError(f"URL {_redact(text)!r}: query strings and fragments are not supported")
    if scheme == "file":
        return _parse_file(text, parts)
    if scheme == "s3":
        return _parse_s3(text, parts)
    if scheme in ("redis", "rediss"):
        return _parse_redis(text, parts, tls=scheme == "rediss")
    if scheme in ("redis+cluster", "rediss+cluster"):
        return _parse_cluster(text, parts, tls=scheme == "rediss+cluster")
    raise UrlError(
        f"URL {_redact(text)!r} has unknown scheme {scheme!r} "
        "(expected file, s3, redis, rediss, redis+cluster or rediss+cluster)"
    )


def _parse_file(text: str, parts: SplitResult) -> FileUrl:
    if parts.netloc not in ("", "localhost"):
        raise UrlError(
            f"URL {text!r} names host {parts.netloc!r}; a file URL must be "
            "file:///absolute/path (use a plain path for a relative one)"
        )
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise UrlError(f"URL {text!r} has no absolute path")
    return FileUrl(Path(path))


def _parse_s3(text: str, parts: SplitResult) -> S3Url:
    if parts.username is not None or parts.password is not None or parts.port is not None:
        raise UrlError(f"URL {_redact(text)!r}: an s3 URL takes no credentials or port")
    bucket = parts.hostname or ""
    if not bucket:
        raise UrlError(f"URL {text!r} has no bucket name")
    # hostname is lower-cased by urlsplit; check the original spelling.
    if parts.netloc != bucket or not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise UrlError(
            f"URL {text!r} has an invalid bucket name {parts.netloc!r} "
            "(3-63 lowercase letters, digits, '.' or '-')"
        )
    prefix = unquote(parts.path).strip("/")
    if prefix and any(c in ("", ".", "..") for c in prefix.split("/")):
        raise UrlError(f"URL {text!r} has an empty, '.' or '..' component in its prefix")
    return S3Url(bucket=bucket, prefix=prefix)


def _host_and_port(text: str, parts: SplitResult) -> tuple[str, int]:
    host = parts.hostname
    if not host:
        raise UrlError(f"URL {_redact(text)!r} has no host")
    port = parts.port if parts.port is not None else DEFAULT_REDIS_PORT
    if port == 0:
        raise UrlError(f"URL {_redact(text)!r} has port 0")
    return host, port


def _credentials(parts: SplitResult) -> tuple[str | None, str | None]:
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return username, password


def _parse_redis(text: str, parts: SplitResult, *, tls: bool) -> RedisUrl:
    host, port = _host_and_port(text, parts)
    db_text = parts.path.strip("/")
    if not db_text:
        db = 0
    elif db_text.isdigit() and db_text.isascii():
        db = int(db_text)
    else:
        raise UrlError(f"URL {_redact(text)!r}: database {db_text!r} is not a non-negative integer")
    username, password = _credentials(parts)
    return RedisUrl(host=host, port=port, db=db, tls=tls, username=username, password=password)


def _parse_cluster(text: str, parts: SplitResult, *, tls: bool) -> RedisClusterUrl:
    host, port = _host_and_port(text, parts)
    if parts.path.strip("/") not in ("", "0"):
        raise UrlError(f"URL {_redact(text)!r}: a cluster has only database 0")
    username, password = _credentials(parts)
    return RedisClusterUrl(host=host, port=port, tls=tls, username=username, password=password)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _redact(text: str) -> str:
    """The URL with any password replaced by '***', for messages."""
    return re.sub(r"^([a-z0-9+.-]+://[^/@:]*):[^/@]*@", r"\1:***@", text, flags=re.I)
