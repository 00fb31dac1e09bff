"""``rdbkit inspect FILE``: what a snapshot holds, without building its values."""

from __future__ import annotations

import heapq
import json
import re
from collections import Counter

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

_LIBRARY_NAME = re.compile(rb"^#!\S+\s+name=(\S+)")


def library_name(code: bytes) -> str:
    """The ``name=`` of a function library's ``#!lua name=...`` shebang, or ``?``."""
    match = _LIBRARY_NAME.match(code)
    return text(match.group(1)) if match else "?"


def summarize(fileobj, size, selection, top: int, progress) -> dict:
    """Walk the file once (values not built) and collect the report as plain data."""
    per_db: Counter[int] = Counter()
    per_db_expiring: Counter[int] = Counter()
    histogram: Counter[tuple[str, str]] = Counter()
    expiring = idle = freq = field_ttl_hashes = 0
    largest: list[tuple[int, int, int, bytes, str]] = []  # min-heap (size, -n, db, key, type)
    keys = total_bytes = 0
    with Decoder(fileobj, values=False) as dec:
        for n, entry in enumerate(entries(dec, size, progress, "inspect")):
            if not selection.matches(entry):
                continue
            keys += 1
            total_bytes += entry.size
            per_db[entry.db] += 1
            histogram[(entry.type, entry.encoding)] += 1
            if entry.expire_ms is not None:
                expiring += 1
                per_db_expiring[entry.db] += 1
            idle += entry.idle is not None
            freq += entry.freq is not None
            field_ttl_hashes += entry.field_expires is not None
            item = (entry.size, -n, entry.db, entry.key, entry.type)
            if len(largest) < top:
                heapq.heappush(largest, item)
            elif top:
                heapq.heappushpop(largest, item)
        report = {
            "magic": dec.magic,
            "version": dec.version,
            "checksum": dec.checksum_status,
            "aux": {text(k): text(v) for k, v in dec.aux.items()},
            "keys": keys,
            "serialized_bytes": total_bytes,
            "expiring_keys": expiring,
            "keys_with_idle": idle,
            "keys_with_freq": freq,
            "hashes_with_field_ttl": field_ttl_hashes,
            "databases": {
                str(db): {
                    "keys": per_db[db],
                    "expiring_keys": per_db_expiring[db],
                    **_resize_hint(dec.resize_hints.get(db)),
                }
                for db in sorted(per_db)
            },
            "types": [
                {"type": t, "encoding": e, "keys": c}
                for (t, e), c in sorted(histogram.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "largest_keys": [
                {"db": db, "key": text(key), "type": t, "serialized_bytes": sz}
                for sz, _, db, key, t in sorted(largest, reverse=True)
            ],
            "functions": [
                {"library": library_name(code), "bytes": len(code)} for code in dec.functions
            ],
            "module_aux": [
                {"module": m.name, "encver": m.encver, "when": "before keys" if m.when == 1 else "after keys",
                 "bytes": len(m.raw)}
                for m in dec.module_aux
            ],
            "module_keys": histogram_count(histogram, "module"),
            "slot_info": len(dec.slot_info),
        }
    return report


def histogram_count(histogram: Counter, type_name: str) -> int:
    return sum(c for (t, _), c in histogram.items() if t == type_name)


def _resize_hint(hint) -> dict:
    if hint is None:
        return {}
    return {"resize_hint": {"keys": hint[0], "expires": hint[1]}}


def render(report: dict) -> str:
    lines = [
        f"magic:     {report['magic']}",
        f"version:   {report['version']}",
        f"checksum:  {report['checksum']}",
        (f"keys:      {report['keys']} ({report['expiring_keys']} expiring, "
         f"{report['serialized_bytes']} serialized bytes)"),
    ]
    if report["keys_with_idle"] or report["keys_with_freq"]:
        lines.append(f"lru/lfu:   {report['keys_with_idle']} with idle, {report['keys_with_freq']} with freq")
    if report["hashes_with_field_ttl"]:
        lines.append(f"field ttl: {report['hashes_with_field_ttl']} hashes")
    if report["aux"]:
        lines.append("aux:")
        width = max(len(k) for k in report["aux"])
        lines += [f"  {k:<{width}}  {v}" for k, v in report["aux"].items()]
    if report["databases"]:
        lines.append("databases:")
        for db, info in report["databases"].items():
            lines.append(f"  db{db}: {info['keys']} keys, {info['expiring_keys']} expiring")
    if report["types"]:
        lines.append("types:")
        width = max(len(f"{t['type']}/{t['encoding']}") for t in report["types"])
        lines += [f"  {t['type'] + '/' + t['encoding']:<{width}}  {t['keys']}" for t in report["types"]]
    if report["largest_keys"]:
        lines.append("largest keys (serialized bytes):")
        lines += [f"  {k['serialized_bytes']:>10}  db{k['db']} {k['type']:<6} {k['key']}"
                  for k in report["largest_keys"]]
    if report["functions"]:
        lines.append(f"functions: {len(report['functions'])} libraries: "
                     + ", ".join(f["library"] for f in report["functions"]))
    if report["module_keys"] or report["module_aux"]:
        names = sorted({m["module"] for m in report["module_aux"]})
        lines.append(f"modules:   {report['module_keys']} module keys; aux data from "
                     + (", ".join(names) if names else "none"))
    return "\n".join(lines)


@click.command("inspect")
@click.argument("file", metavar="FILE")
@filter_options
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=0),
              help="How many of the largest keys to list.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@progress_option
def inspect_command(file, dbs, key_pattern, types, top, as_json, progress) -> None:
    """Summarize an RDB: header, aux fields, keys per db, types x encodings, largest keys.

    FILE is a path or - for stdin. Values are walked and validated but not built.
    """
    selection = make_selection(dbs, key_pattern, types)
    with open_input(file) as (fh, size):
        report = summarize(fh, size, selection, top, progress)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
    else:
        click.echo(render(report))
