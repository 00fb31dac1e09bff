"""Catalog (layer 3): snapshots as named, governed things in a store.

:class:`Catalog` holds the operations (create, import, list, describe,
delete, copy, export, fetch, prune, retire, gc); :mod:`.manifest` the
versioned manifest; :mod:`.policy` retention, window and quota rules;
:mod:`.schedule` the automatic-snapshot pass; :mod:`.events` the event log.
"""

from rdbkit.catalog.catalog import (
    Capture,
    CaptureFn,
    Catalog,
    GcReport,
    ShardInput,
    export_names,
    file_capture,
    utcnow,
)
from rdbkit.catalog.events import Event, EventLog
from rdbkit.catalog.manifest import SCHEMA_VERSION, Manifest, ShardRecord, SourceInfo
from rdbkit.catalog.policy import MANUAL_QUOTA, MAX_RETENTION_DAYS, Policy
from rdbkit.catalog.schedule import ScheduleReport, run_schedule

__all__ = [
    "MANUAL_QUOTA",
    "MAX_RETENTION_DAYS",
    "SCHEMA_VERSION",
    "Capture",
    "CaptureFn",
    "Catalog",
    "Event",
    "EventLog",
    "GcReport",
    "Manifest",
    "Policy",
    "ScheduleReport",
    "ShardInput",
    "ShardRecord",
    "SourceInfo",
    "export_names",
    "file_capture",
    "run_schedule",
    "utcnow",
]
