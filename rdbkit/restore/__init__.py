"""Layer 4, restore side: put a snapshot back into a running node or seed a new one.

- :func:`restore_entries` / :func:`restore_snapshot`: pipelined RESTORE into a
  running node (``rdbkit/restore/restore.py``);
- :func:`seed`: place a verified RDB where a node loads it at start
  (``rdbkit/restore/seed.py``);
- ``rdbkit/restore/cluster_seed.py``: seed a new N-shard cluster (imported on its own).
"""

from rdbkit.restore.restore import (
    BusyKeyError,
    RestoreReport,
    restore_command,
    restore_entries,
    restore_snapshot,
)
from rdbkit.restore.seed import seed, start_seeded_server

__all__ = [
    "BusyKeyError",
    "RestoreReport",
    "restore_command",
    "restore_entries",
    "restore_snapshot",
    "seed",
    "start_seeded_server",
]
