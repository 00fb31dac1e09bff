"""The "auto" capture method: will a forked save's copy-on-write memory fit?

A forked save (BGSAVE, or the save a replica's SYNC triggers) shares the
parent's pages with the child; every page the parent writes to while the
child is saving is copied. The estimate (DESIGN.md, layer 4 "auto"):

- **save time** ``T = dataset bytes / save throughput``. Throughput: the
  caller's ``save_throughput_bytes_s``; else measured from the node's last
  save (``used_memory / rdb_last_bgsave_time_sec`` when that save took at
  least 2 s — INFO has only whole seconds); else the default model
  ``T = keys × DEFAULT_SAVE_S_PER_KEY + dataset / DEFAULT_SAVE_BYTES_S``
  (a save's cost is mostly per key).
- **writes** ``W = write rate × T``, the write rate being the growth of
  ``rdb_changes_since_last_save`` (keys dirtied) over ``sample_s``; when a
  save reset that counter mid-sample, ``instantaneous_ops_per_sec`` (an upper
  bound: it counts reads too).
- **touched pages**: each write dirties about ``pages_per_write`` pages of
  ``P = used_memory / page size``; with writes spread at random the expected
  number of distinct pages touched is ``P × (1 − exp(−W·pages_per_write / P))``
  (≤ ``min(P, W·pages_per_write)``: the ``min(used_memory, writes × T × page)``
  rule with repeat hits counted once). ``model = pages × page size``.
- **blend**: ``cow = max(model, rdb_last_cow_size, current_cow_size)`` — the
  last measured COW (when the node reports one) is real evidence of this
  node's write pattern and allocator, the model is the guard for a load that
  grew since; take the larger so neither under-estimate wins.
- **available**: ``maxmemory × (1 − reserved_fraction) − used_memory``; with
  ``maxmemory 0`` (no limit), ``total_system_memory × (1 − reserved_fraction)
  − max(used_memory, used_memory_rss)`` (the process competes for the host).
- **method**: ``sync`` when ``cow ≤ available``, else ``cooperative``;
  unknown available memory chooses ``cooperative`` (never fork blind).

The pure part is :func:`estimate_from` (numbers in, decision out); the I/O
part :func:`estimate` reads INFO twice, ``sample_s`` apart.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

from rdbkit.backup.connection import Connection
from rdbkit.backup.info import parse_info

#: Save time model when nothing better is known: ``keys × DEFAULT_SAVE_S_PER_KEY
#: + dataset bytes / DEFAULT_SAVE_BYTES_S``. Measured with bench/cow_validate.py
#: (redis 7.0.15, rdbcompression yes, shared 2-core VM): 1.5 M keys of 64-byte
#: values (~150 MB) saved in 1.6-1.9 s, 0.6 M keys of 256-byte values (~200 MB)
#: in 0.8 s — the per-key cost dominates. Faster machines save faster (then the
#: model over-estimates COW: the safe side).
DEFAULT_SAVE_S_PER_KEY = 1.1e-6
DEFAULT_SAVE_BYTES_S = 1024 * 1024 * 1024
#: Pages one write dirties in the model. Measured with bench/cow_validate.py on
#: redis 7.0 (jemalloc): random SETs over existing keys at 2000/s copied 2.6
#: pages per write (the dict entry, the new value object and its sds, allocator
#: metadata); rounded up to 3.
DEFAULT_PAGES_PER_WRITE = 3.0
#: Shortest last-save duration (s) trusted to measure throughput (INFO rounds to whole seconds).
MIN_MEASURED_SAVE_S = 2


def page_size() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4096


@dataclass
class Estimate:
    cow_bytes: int
    available_bytes: int | None
    method: str  # "sync" | "cooperative"
    reasons: list[str] = field(default_factory=list)
    inputs: dict[str, float | int | str] = field(default_factory=dict)


def _num(info: dict, name: str, default: float | None = None) -> float | None:
    value = info.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def keyspace_keys(info: dict) -> int:
    """Keys in every db (the ``dbN:keys=...`` lines of INFO keyspace)."""
    total = 0
    for name, value in info.items():
        if name.startswith("db") and name[2:].isdigit() and isinstance(value, str):
            for part in value.split(","):
                if part.startswith("keys="):
                    try:
                        total += int(part[5:])
                    except ValueError:
                        pass
    return total


def estimate_from(
    info: dict,
    write_rate: float,
    *,
    reserved_fraction: float = 0.25,
    save_throughput_bytes_s: float | None = None,
    page_bytes: int | None = None,
    pages_per_write: float = DEFAULT_PAGES_PER_WRITE,
) -> Estimate:
    """The decision from INFO fields (str or number values) and a write rate (writes/s)."""
    if not 0 <= reserved_fraction < 1:
        raise ValueError(f"reserved_fraction must be in [0, 1), got {reserved_fraction!r}")
    page = int(page_bytes or page_size())
    used = int(_num(info, "used_memory", 0) or 0)
    rss = int(_num(info, "used_memory_rss", 0) or 0)
    dataset = int(_num(info, "used_memory_dataset", 0) or 0) or used
    maxmemory = int(_num(info, "maxmemory", 0) or 0)
    system = int(_num(info, "total_system_memory", 0) or 0)
    last_cow = int(_num(info, "rdb_last_cow_size", 0) or 0)
    current_cow = int(_num(info, "current_cow_size", 0) or 0)
    last_save_s = _num(info, "rdb_last_bgsave_time_sec", -1) or -1
    keys = keyspace_keys(info)
    write_rate = max(0.0, float(write_rate))
    reasons: list[str] = []

    if save_throughput_bytes_s:
        throughput, how = float(save_throughput_bytes_s), "given"
    elif last_save_s >= MIN_MEASURED_SAVE_S and used > 0:
        throughput, how = used / last_save_s, f"used_memory / last bgsave {last_save_s:.0f} s"
    else:
        model_s = keys * DEFAULT_SAVE_S_PER_KEY + dataset / DEFAULT_SAVE_BYTES_S
        throughput = dataset / model_s if model_s > 0 else float(DEFAULT_SAVE_BYTES_S)
        how = (f"default model {keys} keys × {DEFAULT_SAVE_S_PER_KEY * 1e6:g} µs + "
               f"bytes / {DEFAULT_SAVE_BYTES_S / 2**20:.0f} MiB/s")
    save_s = dataset / throughput if throughput > 0 else 0.0
    writes = write_rate * save_s
    pages_total = max(1, used // page)
    touched = pages_total * -math.expm1(-(writes * pages_per_write) / pages_total)
    model = int(touched * page)
    cow = max(model, last_cow, current_cow)
    reasons.append(
        f"save time {save_s:.2f} s = dataset {dataset} B / {throughput:.0f} B/s ({how})"
    )
    reasons.append(
        f"model COW {model} B = {touched:.0f} of {pages_total} pages × {page} B "
        f"({write_rate:.0f} writes/s × {save_s:.2f} s × {pages_per_write:g} pages/write, repeats once)"
    )
    if last_cow or current_cow:
        reasons.append(
            f"COW estimate {cow} B = max(model {model}, rdb_last_cow_size {last_cow}, "
            f"current_cow_size {current_cow})"
        )
    else:
        reasons.append(f"COW estimate {cow} B = model (no measured COW from the node)")

    available: int | None
    if maxmemory > 0:
        available = int(maxmemory * (1 - reserved_fraction)) - used
        reasons.append(
            f"available {available} B = maxmemory {maxmemory} × (1 − {reserved_fraction:g}) − used_memory {used}"
        )
    elif system > 0:
        resident = max(used, rss)
        available = int(system * (1 - reserved_fraction)) - resident
        reasons.append(
            f"available {available} B = total_system_memory {system} × (1 − {reserved_fraction:g}) "
            f"− max(used_memory, used_memory_rss) {resident} (maxmemory 0: no limit)"
        )
    else:
        available = None
        reasons.append("available memory unknown (maxmemory 0 and no total_system_memory)")

    if available is None:
        method = "cooperative"
        reasons.append("cooperative: cannot show that a fork's COW fits")
    elif cow <= available:
        method = "sync"
        reasons.append(f"sync: COW {cow} B ≤ available {available} B")
    else:
        method = "cooperative"
        reasons.append(f"cooperative: COW {cow} B > available {available} B")

    inputs: dict[str, float | int | str] = {
        "used_memory": used,
        "used_memory_rss": rss,
        "used_memory_dataset": dataset,
        "keys": keys,
        "maxmemory": maxmemory,
        "total_system_memory": system,
        "rdb_last_cow_size": last_cow,
        "current_cow_size": current_cow,
        "rdb_last_bgsave_time_sec": last_save_s,
        "write_rate": write_rate,
        "save_throughput_bytes_s": throughput,
        "save_throughput_source": how,
        "save_time_s": save_s,
        "page_size": page,
        "pages_per_write": pages_per_write,
        "model_cow_bytes": model,
        "reserved_fraction": reserved_fraction,
    }
    return Estimate(cow_bytes=cow, available_bytes=available, method=method, reasons=reasons, inputs=inputs)


def measure_write_rate(conn: Connection, sample_s: float = 1.0) -> tuple[float, dict[str, str], str]:
    """(writes/s, the second INFO, how it was measured) over ``sample_s``."""
    first = parse_info(conn.call("INFO", "all"))
    t0 = time.monotonic()
    time.sleep(max(0.0, sample_s))
    second = parse_info(conn.call("INFO", "all"))
    elapsed = max(1e-6, time.monotonic() - t0)
    a = _num(first, "rdb_changes_since_last_save")
    b = _num(second, "rdb_changes_since_last_save")
    if a is not None and b is not None and b >= a:
        return (b - a) / elapsed, second, "rdb_changes_since_last_save delta"
    ops = _num(second, "instantaneous_ops_per_sec", 0.0) or 0.0
    return ops, second, "instantaneous_ops_per_sec (a save reset the change counter)"


def estimate(
    conn: Connection,
    *,
    reserved_fraction: float = 0.25,
    sample_s: float = 1.0,
    save_throughput_bytes_s: float | None = None,
    pages_per_write: float = DEFAULT_PAGES_PER_WRITE,
) -> Estimate:
    """Sample the node's write rate for ``sample_s`` and decide (see the module docstring)."""
    rate, info, how = measure_write_rate(conn, sample_s)
    result = estimate_from(
        info,
        rate,
        reserved_fraction=reserved_fraction,
        save_throughput_bytes_s=save_throughput_bytes_s,
        pages_per_write=pages_per_write,
    )
    result.inputs["write_rate_source"] = how
    result.inputs["sample_s"] = sample_s
    return result
