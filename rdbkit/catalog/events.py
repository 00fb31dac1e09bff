"""The catalog's event log: one small JSON object per event, in the store.

Object stores cannot append, so each event is its own object under
``events/YYYY/MM/DD/<time>-<action>-<random>.json``: listing a day's prefix
gives its events in time order, and the manual quota only reads two days.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rdbkit.catalog.manifest import format_time, parse_time
from rdbkit.errors import CatalogError
from rdbkit.storage import Store

PREFIX = "events/"

#: What gets logged.
ACTIONS = (
    "create",
    "delete",
    "prune",
    "copy",
    "export",
    "refuse",
    "policy",
    "retire",
    "gc",
    "takeover",
)


@dataclass(frozen=True)
class Event:
    """One thing that happened to the catalog (or was refused)."""

    at: datetime
    action: str
    account: str
    name: str | None = None
    source: str | None = None
    kind: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"at": format_time(self.at)}


class EventLog:
    """Appends and reads events of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def append(self, event: Event) -> None:
        if event.action not in ACTIONS:
            raise ValueError(f"unknown event action {event.action!r}")
        at = event.at
        key = (
            f"{PREFIX}{at:%Y/%m/%d}/{format_time(at).replace(':', '')}-"
            f"{event.action}-{secrets.token_hex(4)}.json"
        )
        self.store.put(key, json.dumps(event.to_dict()).encode(), exclusive=True)

    def read(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[Event]:
        """Yield events in time order, optionally only those with since <= at <= until."""
        if since is None:
            prefixes = [PREFIX]
        else:
            end = until or since + timedelta(days=1)
            days = (end.date() - since.date()).days
            if days > 62:
                prefixes = [PREFIX]
            else:
                prefixes = [f"{PREFIX}{since + timedelta(days=d):%Y/%m/%d}/" for d in range(days + 1)]
        for prefix in prefixes:
            for info in self.store.list(prefix):
                with self.store.get(info.key) as fh:
                    raw = fh.read()
                try:
                    data = json.loads(raw)
                    event = Event(**{**data, "at": parse_time(data["at"])})
                except (ValueError, TypeError, KeyError) as exc:
                    raise CatalogError(f"event {info.key!r} is malformed: {exc}") from exc
                if since is not None and event.at < since:
                    continue
                if until is not None and event.at > until:
                    continue
                yield event
