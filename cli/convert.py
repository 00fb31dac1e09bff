"""``rdbkit convert FILE --to json|jsonl|resp``: an RDB in another form.

- ``jsonl``: lossless, one object per key between a header and a footer line
  (schema in ``docs/jsonl.md``, code in ``rdbkit.codec.jsonl``).
- ``json``: one human-oriented document ``{"<db>": {"<key>": value}}`` like
  rdbtools' json: text where bytes are not UTF-8 gets ``\\xNN`` escapes, so it
  is not lossless (use jsonl for that); no TTLs or metadata.
- ``resp``: plain commands for ``redis-cli --pipe`` (``rdbkit.codec.commands``).

All three stream: memory stays bounded by the largest key, not the file.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from contextlib import contextmanager, suppress
from typing import IO, Any

import click
from rdbkit.cli.source import (
    entries,
    filter_options,
    make_selection,
    open_input,
    progress_option,
    text,
)

from rdbkit.codec import Decoder, commands, jsonl

FORMATS = ("json", "jsonl", "resp")


@contextmanager
def open_output(path: str | None):
    """Binary stdout, or the file at ``path`` (``-`` also means stdout).

    A file is written beside its final name and renamed only on success, so a
    failed conversion never leaves a plausible-looking partial output.
    """
    if path is None or path == "-":
        out = sys.stdout.buffer
        yield out
        out.flush()
        return
    partial = f"{path}.partial"
    try:
        with open(partial, "wb") as fh:
            yield fh
        os.replace(partial, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(partial)
        raise


def human_value(type_name: str, value: Any) -> Any:
    """A value as readable JSON: text for bytes, objects for hashes and sorted sets."""
    if type_name == "string":
        return text(value)
    if type_name == "list":
        return [text(v) for v in value]
    if type_name == "set":
        return [text(v) for v in sorted(value)]
    if type_name == "zset":
        return {text(m): jsonl.encode_score(s) for m, s in value.items()}
    if type_name == "hash":
        return {text(f): text(v) for f, v in value.items()}
    if type_name == "stream":
        return {
            "entries": [{"id": str(e.id), "fields": {text(f): text(v) for f, v in e.fields}}
                        for e in value.entries],
            "last_id": str(value.last_id),
            "groups": [
                {"name": text(g.name), "last_id": str(g.last_id), "pending": len(g.pending),
                 "consumers": [text(c.name) for c in g.consumers]}
                for g in value.groups
            ],
        }
    if type_name == "module":
        return {"module": value.name, "encver": value.encver,
                "raw_base64": base64.b64encode(value.raw).decode("ascii")}
    raise ValueError(f"unknown type {type_name!r}")


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")


def write_jsonl(dec: Decoder, stream, selection, out: IO[bytes]) -> int:
    keys = 0
    header = None
    for entry in stream:
        if header is None:
            header = jsonl.header_record(dec)
            out.write(_dump(header) + b"\n")
        if selection.matches(entry):
            out.write(_dump(jsonl.entry_record(entry)) + b"\n")
            keys += 1
    if header is None:
        header = jsonl.header_record(dec)
        out.write(_dump(header) + b"\n")
    out.write(_dump(jsonl.footer_record(dec, keys, header)) + b"\n")
    return keys


def write_json(dec: Decoder, stream, selection, out: IO[bytes]) -> int:
    keys = 0
    db = None
    out.write(b"{")
    for entry in stream:
        if not selection.matches(entry):
            continue
        if entry.db != db:
            out.write(b"\n" if db is None else b"},\n")
            out.write(_dump(str(entry.db)) + b": {")
            db = entry.db
        else:
            out.write(b",")
        out.write(b"\n  " + _dump(text(entry.key)) + b": " + _dump(human_value(entry.type, entry.value)))
        keys += 1
    out.write(b"}\n}\n" if db is not None else b"}\n")
    return keys


def write_resp(dec: Decoder, stream, selection, out: IO[bytes], max_items: int) -> tuple[int, int]:
    keys = skipped = 0
    db = None
    functions_done = 0  # function libraries already written (they normally precede the keys)

    def functions() -> None:
        nonlocal functions_done
        for argv in commands.function_commands(dec.functions[functions_done:]):
            out.write(commands.encode_command(argv))
        functions_done = len(dec.functions)

    for entry in stream:
        if len(dec.functions) > functions_done:
            functions()
        if not selection.matches(entry):
            continue
        if entry.type == "module":
            skipped += 1
            continue
        if entry.db != db:
            out.write(commands.encode_command(commands.select_command(entry.db)))
            db = entry.db
        for argv in commands.entry_commands(entry, max_items):
            out.write(commands.encode_command(argv))
        keys += 1
    functions()
    return keys, skipped


@click.command("convert")
@click.argument("file", metavar="FILE")
@click.option("--to", "fmt", type=click.Choice(FORMATS), required=True, help="Output format.")
@click.option("-o", "--output", metavar="PATH", help="Write here instead of stdout.")
@click.option("--max-items", default=commands.DEFAULT_MAX_ITEMS, show_default=True,
              type=click.IntRange(min=1), help="resp: elements per command for big collections.")
@filter_options
@progress_option
def convert_command(file, fmt, output, max_items, dbs, key_pattern, types, progress) -> None:
    """Convert an RDB to JSON Lines (lossless), JSON (human) or RESP commands.

    FILE is a path or - for stdin. A summary line goes to stderr.
    """
    selection = make_selection(dbs, key_pattern, types)
    with open_input(file) as (fh, size), Decoder(fh) as dec, open_output(output) as out:
        stream = entries(dec, size, progress, f"convert to {fmt}")
        if fmt == "jsonl":
            keys = write_jsonl(dec, stream, selection, out)
        elif fmt == "json":
            keys = write_json(dec, stream, selection, out)
        else:
            keys, skipped = write_resp(dec, stream, selection, out, max_items)
            if skipped:
                click.echo(f"warning: {skipped} module keys skipped (only RESTORE can load "
                           "module values)", err=True)
    if output not in (None, "-"):
        click.echo(f"{keys} keys written to {output}", err=True)
