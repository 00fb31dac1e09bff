"""Storage used per source and what it would cost, the way a managed service bills backups.

Per source: snapshots by kind, bytes stored (the shard objects as stored,
compressed or not), and an estimated monthly cost: the first (oldest)
snapshot of each active source is free, every other byte costs
``price_per_gb_month`` per GB-month (GB = 2^30 bytes; default 0.085, the
usual managed-cache backup price). A retired source has no free snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rdbkit.catalog.catalog import Catalog
from rdbkit.catalog.manifest import KINDS

DEFAULT_PRICE_PER_GB_MONTH = 0.085
GB = 1 << 30


@dataclass
class SourceUsage:
    source: str
    active: bool
    snapshots: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    bytes_stored: int = 0
    free_bytes: int = 0

    @property
    def billable_bytes(self) -> int:
        return self.bytes_stored - self.free_bytes

    def monthly_cost(self, price_per_gb_month: float) -> float:
        return self.billable_bytes / GB * price_per_gb_month

    def to_dict(self, price_per_gb_month: float) -> dict:
        return {
            "source": self.source,
            "active": self.active,
            "snapshots": dict(self.snapshots),
            "bytes_stored": self.bytes_stored,
            "free_bytes": self.free_bytes,
            "billable_bytes": self.billable_bytes,
            "monthly_cost": round(self.monthly_cost(price_per_gb_month), 6),
        }


def usage(catalog: Catalog) -> list[SourceUsage]:
    """One :class:`SourceUsage` per source that has snapshots, sorted by source."""
    by_source: dict[str, SourceUsage] = {}
    for manifest in catalog.list():  # oldest first
        url = manifest.source.url
        entry = by_source.get(url)
        if entry is None:
            active = not catalog.policy(url).retired
            entry = by_source[url] = SourceUsage(url, active)
            if active:
                entry.free_bytes = manifest.stored_size
        entry.snapshots[manifest.kind] += 1
        entry.bytes_stored += manifest.stored_size
    return [by_source[url] for url in sorted(by_source)]
