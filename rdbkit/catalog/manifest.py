"""The snapshot manifest: what a snapshot is, as the JSON object written last.

A snapshot exists exactly when its manifest does (``snapshots/<name>.json``
in the store); the shard objects it lists are written before it. The schema
is versioned (``schema_version``); a reader refuses a manifest of a newer
schema rather than guess. README.md ("Snapshot manifest") documents it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from rdbkit.errors import CatalogError

SCHEMA_VERSION = 1

#: Snapshot kinds. automatic ones expire; the others are kept until deleted.
KINDS = ("manual", "automatic", "final", "copy")

#: Snapshot names: what S3 keys and file names take without quoting.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid snapshot name, else raise CatalogError."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name.endswith(".json"):
        raise CatalogError(
            f"invalid snapshot name {name!r}: use 1-200 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def format_time(value: datetime) -> str:
    """ISO 8601 UTC with microseconds and a ``Z``: sorts as text in time order."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time` (accepts any ISO 8601 with an offset)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} has no timezone")
    return value.astimezone(timezone.utc)


@dataclass(frozen=True)
class SourceInfo:
    """Where a snapshot came from.

    ``url`` carries no password. ``shards`` lists, for a cluster, each shard's
    node address and slot ranges (empty for a single node or a file).
    ``settings`` holds server settings worth restoring with the data.
    """

    url: str
    engine: str | None = None  # "redis", "valkey", "file", ...
    engine_version: str | None = None
    cluster: bool = False
    shards: tuple[dict[str, Any], ...] = ()
    settings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ShardRecord:
    """One stored RDB of a snapshot (one per cluster shard; one for a node).

    ``rdb_size``/``rdb_sha256`` describe the RDB bytes themselves;
    ``stored_size``/``stored_sha256`` the object in the store (they differ when
    the snapshot is compressed).
    """

    index: int
    key: str
    rdb_version: int
    rdb_size: int
    rdb_sha256: str
    stored_size: int
    stored_sha256: str
    keys: int
    keys_by_type: dict[str, int] = field(default_factory=dict)
    dbs: tuple[int, ...] = ()
    slots: tuple[tuple[int, int], ...] | None = None
    node: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A committed snapshot. ``expires_at`` is set for automatic ones only."""

    name: str
    kind: str
    created_at: datetime
    owner_account: str
    source: SourceInfo
    shards: tuple[ShardRecord, ...]
    compression: str | None = None
    expires_at: datetime | None = None
    consistency: str = "point-in-time"
    copied_from: str | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def rdb_version(self) -> int:
        """The highest RDB version among the shards (they normally agree)."""
        return max(s.rdb_version for s in self.shards)

    @property
    def keys(self) -> int:
        return sum(s.keys for s in self.shards)

    @property
    def rdb_size(self) -> int:
        return sum(s.rdb_size for s in self.shards)

    @property
    def stored_size(self) -> int:
        return sum(s.stored_size for s in self.shards)

    def with_changes(self, **changes: Any) -> Manifest:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The manifest as plain JSON-ready data (the stored form)."""
        data = asdict(self)
        data["created_at"] = format_time(self.created_at)
        data["expires_at"] = format_time(self.expires_at) if self.expires_at else None
        data["rdb_version"] = self.rdb_version
        data["keys"] = self.keys
        data["rdb_size"] = self.rdb_size
        data["stored_size"] = self.stored_size
        order = ["schema_version", "name", "kind", "created_at", "expires_at", "owner_account"]
        return {k: data[k] for k in order} | {k: v for k, v in data.items() if k not in order}

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes, *, where: str = "manifest") -> Manifest:
        """Parse a stored manifest; CatalogError names ``where`` and what is wrong."""
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CatalogError(f"{where} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise CatalogError(f"{where} is not a JSON object")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise CatalogError(
                f"{where} has schema_version {version!r}; this rdbkit reads {SCHEMA_VERSION}"
            )
        try:
            source = data["source"]
            shards = tuple(
                ShardRecord(
                    **{
                        **s,
                        "dbs": tuple(s.get("dbs", ())),
                        "slots": None
                        if s.get("slots") is None
                        else tuple(tuple(r) for r in s["slots"]),
                    }
                )
                for s in data["shards"]
            )
            manifest = cls(
                name=data["name"],
                kind=data["kind"],
                created_at=parse_time(data["created_at"]),
                owner_account=data["owner_account"],
                source=SourceInfo(**{**source, "shards": tuple(source.get("shards", ()))}),
                shards=shards,
                compression=data.get("compression"),
                expires_at=parse_time(data["expires_at"]) if data.get("expires_at") else None,
                consistency=data.get("consistency", "point-in-time"),
                copied_from=data.get("copied_from"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogError(f"{where} is malformed: {exc!r}") from exc
        if manifest.kind not in KINDS or not manifest.shards:
            raise CatalogError(f"{where} is malformed: kind {manifest.kind!r}, {len(shards)} shards")
        return manifest
