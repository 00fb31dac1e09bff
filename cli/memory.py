"""``rdbkit memory FILE``: estimated memory per key, as CSV or JSON.

Columns as rdbtools' memory report: database, type, key, size_in_bytes,
encoding, num_elements, len_largest_element, expiry. Differences: ``type`` is
rdbkit's type name (``zset``, not ``sortedset``); ``encoding`` is the
in-memory encoding the estimate assumes; ``expiry`` is ISO 8601 in UTC. The
model is documented in ``rdbkit.codec.memory``.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
from datetime import datetime, timezone

import click
from rdbkit.cli.source import (
    entries,
    filter_options,
    make_selection,
    open_input,
    progress_option,
    text,
)

from rdbkit.codec import Decoder
from rdbkit.codec.memory import estimate

COLUMNS = ("database", "type", "key", "size_in_bytes", "encoding", "num_elements",
           "len_largest_element", "expiry")


def iso_utc(expire_ms: int | None) -> str:
    if expire_ms is None:
        return ""
    try:
        moment = datetime.fromtimestamp(expire_ms / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):  # beyond year 9999 or before year 1
        return str(expire_ms)
    return moment.isoformat(timespec="milliseconds")


def records(fileobj, size, selection, min_bytes: int, progress):
    with Decoder(fileobj) as dec:
        for entry in entries(dec, size, progress, "memory"):
            if not selection.matches(entry):
                continue
            est = estimate(entry)
            if est.size_in_bytes < min_bytes:
                continue
            yield entry, est


@click.command("memory")
@click.argument("file", metavar="FILE")
@filter_options
@click.option("--bytes", "min_bytes", default=0, type=click.IntRange(min=0), metavar="N",
              help="Only keys estimated at N bytes or more.")
@click.option("--largest", type=click.IntRange(min=1), metavar="N",
              help="Only the N largest keys, largest first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (a list) on stdout.")
@progress_option
def memory_command(file, dbs, key_pattern, types, min_bytes, largest, as_json, progress) -> None:
    """Estimate per-key memory (CSV like rdbtools' memory report).

    FILE is a path or - for stdin. The figures approximate a 64-bit Redis 7
    with jemalloc; see rdbkit.codec.memory for the model.
    """
    selection = make_selection(dbs, key_pattern, types)
    with open_input(file) as (fh, size):
        rows = records(fh, size, selection, min_bytes, progress)
        if largest is not None:
            top = heapq.nlargest(largest, enumerate(rows), key=lambda item: item[1][1].size_in_bytes)
            rows = iter([row for _, row in top])
        if as_json:  # streamed as one array: memory stays bounded by one key
            click.echo("[", nl=False)
            for n, (e, est) in enumerate(rows):
                row = {"database": e.db, "type": e.type, "key": text(e.key),
                       "size_in_bytes": est.size_in_bytes, "encoding": est.encoding,
                       "num_elements": est.num_elements,
                       "len_largest_element": est.len_largest_element,
                       "expire_ms": e.expire_ms}
                click.echo(("," if n else "") + "\n" + json.dumps(row, ensure_ascii=False), nl=False)
            click.echo("\n]")
            return
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        click.echo(buf.getvalue(), nl=False)
        for e, est in rows:
            buf.seek(0)
            buf.truncate()
            writer.writerow((e.db, e.type, text(e.key), est.size_in_bytes, est.encoding,
                             est.num_elements, est.len_largest_element, iso_utc(e.expire_ms)))
            click.echo(buf.getvalue(), nl=False)
