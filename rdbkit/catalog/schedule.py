"""``rdbkit schedule run``: take due automatic snapshots and prune expired ones.

Meant for cron or a systemd timer every few minutes: for each source with a
policy (not retired, retention > 0), if ``now`` is inside its daily window
and it has no automatic snapshot from this window occurrence yet, capture it.
Then prune every expired automatic snapshot. The capture is a function, so
the schedule is the same whether it imports a file or backs up a live node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rdbkit.catalog.catalog import Catalog, CaptureFn
from rdbkit.catalog.manifest import Manifest
from rdbkit.catalog.policy import source_id
from rdbkit.errors import RdbkitError


@dataclass
class ScheduleReport:
    taken: list[Manifest] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, why)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (source, error)
    pruned: list[Manifest] = field(default_factory=list)


def automatic_name(source_url: str, when) -> str:
    """``automatic.<label>-<id>-YYYY-MM-DD-HH-MM``.

    The label is the source's last path part or host; ``<id>`` (8 hex digits
    of its source id) keeps two sources with the same label apart.
    """
    label = source_url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".rdb")
    label = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-._")[:60] or "source"
    return f"automatic.{label}-{source_id(source_url)[:8]}-{when:%Y-%m-%d-%H-%M}"


def run_schedule(
    catalog: Catalog, capture: CaptureFn, *, sources: list[str] | None = None
) -> ScheduleReport:
    """One pass of the schedule over ``sources`` (default: every source with a policy)."""
    report = ScheduleReport()
    now = catalog.clock()
    policies = [catalog.policy(s) for s in sources] if sources else catalog.policies()
    for policy in policies:
        url = policy.source_url
        if policy.retired:
            report.skipped.append((url, "retired"))
            continue
        if policy.retention_days == 0:
            report.skipped.append((url, "automatic snapshots off (retention 0)"))
            continue
        window = policy.window_containing(now)
        if window is None:
            report.skipped.append((url, f"outside its window {policy.window} UTC"))
            continue
        start, _end = window
        if any(m.created_at >= start for m in catalog.list(source=url, kind="automatic")):
            report.skipped.append((url, "already taken in this window"))
            continue
        try:
            with catalog.lease(url, "automatic backup"):
                report.taken.append(
                    catalog.create(automatic_name(url, now), capture(url), kind="automatic"))
        except (RdbkitError, OSError) as exc:
            report.failed.append((url, str(exc)))
    report.pruned = catalog.prune()
    return report
