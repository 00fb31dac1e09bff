"""Per-source snapshot policy: retention, daily window, the manual quota.

The rules, as a managed cache service keeps them:

- automatic snapshots are kept ``retention_days`` (0..35; 0 turns them off),
  then pruned; manual, final and copied ones are kept until deleted;
- automatic snapshots are taken in a daily UTC window of at least 60 minutes
  (``"05:00-06:00"``; a window may cross midnight);
- at most 20 manual snapshots of one source in any rolling 24 hours.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from rdbkit.errors import CatalogError, PolicyError

MAX_RETENTION_DAYS = 35
MIN_WINDOW_MINUTES = 60
MANUAL_QUOTA = 20
QUOTA_PERIOD = timedelta(hours=24)
DEFAULT_RETENTION_DAYS = 1
DEFAULT_WINDOW = "05:00-06:00"

_WINDOW_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")


def source_id(url: str) -> str:
    """A short stable id for a source URL (policy object names, event filters)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def parse_window(text: str) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` (UTC) → (start minute of day, length in minutes).

    Raises PolicyError for bad syntax or a window shorter than 60 minutes.
    """
    match = _WINDOW_RE.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise PolicyError(f"snapshot window {text!r} is not HH:MM-HH:MM (UTC, 24-hour)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    length = (end - start) % (24 * 60)
    if length < MIN_WINDOW_MINUTES:
        raise PolicyError(
            f"snapshot window {text!r} lasts {length} minutes; it must be at least "
            f"{MIN_WINDOW_MINUTES}"
        )
    return start, length


def check_retention(days: int) -> int:
    """Return ``days`` if it is an allowed retention period, else raise PolicyError."""
    if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= MAX_RETENTION_DAYS:
        raise PolicyError(
            f"retention {days!r} days is outside 0..{MAX_RETENTION_DAYS} "
            "(0 turns automatic snapshots off)"
        )
    return days


@dataclass(frozen=True)
class Policy:
    """The snapshot policy of one source (stored as ``policies/<id>.json``)."""

    source_url: str
    retention_days: int = DEFAULT_RETENTION_DAYS
    window: str = DEFAULT_WINDOW
    retired: bool = False

    def __post_init__(self) -> None:
        check_retention(self.retention_days)
        parse_window(self.window)

    @property
    def automatic(self) -> bool:
        """Whether automatic snapshots are on for this source."""
        return self.retention_days > 0 and not self.retired

    def window_containing(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The window occurrence [start, end) that ``now`` falls in, or None."""
        start_min, length = parse_window(self.window)
        now = now.astimezone(timezone.utc)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        for day in (-1, 0):  # yesterday's window may run past midnight into today
            start = midnight + timedelta(days=day, minutes=start_min)
            end = start + timedelta(minutes=length)
            if start <= now < end:
                return start, end
        return None

    def expiry_for(self, created_at: datetime) -> datetime:
        """When an automatic snapshot created at ``created_at`` expires."""
        return created_at + timedelta(days=self.retention_days)

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes, *, where: str) -> Policy:
        try:
            return cls(**json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise CatalogError(f"{where} is not a valid policy: {exc}") from exc


def next_manual_allowed(created: list[datetime], now: datetime) -> datetime | None:
    """None if a manual snapshot is allowed at ``now``, else when the next one is.

    ``created`` holds the creation times of the source's manual snapshots
    (deleted ones included). The rolling window is (now - 24 h, now].
    """
    recent = sorted(t for t in created if now - QUOTA_PERIOD < t <= now)
    if len(recent) < MANUAL_QUOTA:
        return None
    return recent[len(recent) - MANUAL_QUOTA] + QUOTA_PERIOD
