"""``rdbkit convert FILE --to json|jsonl|resp|rdb``: an RDB in another form.

- ``jsonl``: lossless, one object per key between a header and a footer line
  (schema in ``docs/jsonl.md``, code in ``rdbkit.codec.jsonl``).
- ``json``: one human-oriented document ``{"<db>": {"<key>": value}}`` like
  rdbtools' json: text where bytes are not UTF-8 gets ``\\xNN`` escapes, so it
  is not lossless (use jsonl for that); no TTLs or metadata.
- ``resp``: plain commands for ``redis-cli --pipe`` (``rdbkit.codec.commands``).
- ``rdb``: an RDB again, for any version the encoder writes (``--target-version``,
  ``--magic``), from an RDB or from a jsonl export (``--from``, else detected by
  content). Header aux fields, functions and module aux carry over; keys stream
  through ``RdbWriter`` one at a time. Binary output never goes to a terminal.

All three stream: memory stays bounded by the largest key, not the file.
"""

from __future__ import annotations

import base64
import io
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

from rdbkit.codec import Decoder, RdbWriter, commands, jsonl
from rdbkit.errors import EncodeError

FORMATS = ("json", "jsonl", "resp", "rdb")
SOURCES = ("rdb", "jsonl")
#: The versions ``Encoder`` writes: REDIS 6-12 and VALKEY 80 (docs/codec.md).
ENCODER_VERSIONS = (6, 7, 8, 9, 10, 11, 12, 80)


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


# --- --to rdb ------------------------------------------------------------------


class _Prefixed(io.RawIOBase):
    """A non-seekable stream with the bytes already read for sniffing put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if self._head:
            n = min(len(buf), len(self._head))
            buf[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buf))
        buf[:len(data)] = data
        return len(data)


#: Bytes read to tell an RDB (magic) from a jsonl export (a JSON object line).
SNIFF_BYTES = 16


def sniff_input(fh: IO[bytes]) -> tuple[str, IO[bytes]]:
    """``("rdb" | "jsonl", stream positioned at the start)`` by content.

    A file beginning with ``REDIS`` or ``VALKEY`` is an RDB; one whose first
    non-blank byte is ``{`` is jsonl; anything else is handed to the decoder as
    an RDB (which then says what is wrong with it).
    """
    head = b""
    while len(head) < SNIFF_BYTES:
        chunk = fh.read(SNIFF_BYTES - len(head))
        if not chunk:
            break
        head += chunk
    seekable = False
    with suppress(AttributeError, OSError, ValueError):
        seekable = fh.seekable()
    if seekable:
        fh.seek(0)
        stream = fh
    else:
        stream = io.BufferedReader(_Prefixed(head, fh))
    if head.startswith((b"REDIS", b"VALKEY")):
        return "rdb", stream
    if head.lstrip().startswith(b"{"):
        return "jsonl", stream
    return "rdb", stream


def _stdout_is_tty() -> bool:
    with suppress(AttributeError, ValueError):
        return sys.stdout.isatty()
    return False


def _encoder_settings(source_magic: str, source_version: int, target_version: int | None,
                      magic: str | None) -> tuple[int, str | None]:
    """The (version, magic) to write: the source's own when the encoder supports it."""
    if target_version is None:
        if source_version not in ENCODER_VERSIONS or (
                source_magic == "VALKEY") != (source_version >= 80):
            raise click.UsageError(
                f"the source is {source_magic} version {source_version}, which the encoder cannot "
                f"write; pass --target-version (one of {', '.join(map(str, ENCODER_VERSIONS))})")
        target_version = source_version
        if magic is None:
            magic = source_magic
    return target_version, magic


def _make_writer(out: IO[bytes], version: int, magic: str | None, **kwargs) -> RdbWriter:
    try:
        return RdbWriter(out, version=version, magic=magic, **kwargs)
    except ValueError as exc:  # a version/magic pair the encoder does not write
        raise click.UsageError(str(exc)) from None


def _drop_line(key: bytes | None, feature: str) -> str:
    return f"dropped: {feature}" if key is None else f"dropped: {feature} of key {key!r}"


class _RdbOutput:
    """Drives an ``RdbWriter`` and reports drops on stderr as they happen."""

    def __init__(self, writer: RdbWriter) -> None:
        self.writer = writer
        self.keys = 0
        self.late_dropped: list[tuple[None, str]] = []
        self._reported = 0

    @property
    def dropped_count(self) -> int:
        return len(self.writer.dropped) + len(self.late_dropped)

    def _report(self) -> None:
        dropped = self.writer.dropped
        for key, feature in dropped[self._reported:]:
            click.echo(_drop_line(key, feature), err=True)
        self._reported = len(dropped)

    def begin(self, aux, functions, module_aux) -> None:
        self.writer.begin(aux=aux, functions=functions, module_aux=module_aux)
        self._report()

    def write(self, entry) -> None:
        before = len(self.writer.dropped)
        self.writer.write(entry)
        # a key skipped whole (stream, module below their version) is recorded with its key;
        # one that lost a part (field TTLs) is still written
        skipped = any(k == entry.key and f != "hash field TTLs"
                      for k, f in self.writer.dropped[before:])
        if not skipped:
            self.keys += 1
        self._report()

    def late_header(self, aux: list, functions: list, drop: bool) -> None:
        """Records met after the first key: functions are written there too (readers
        accept them anywhere); the encoder writes aux fields only before the keys."""
        for code in functions:
            self.writer.function(code)
        self._report()
        for item in [f"aux field {k!r}" for k, _ in aux]:
            if not drop:
                raise EncodeError(f"{item} comes after the first key; the encoder writes it only "
                                  "before the keys (--drop-unsupported drops it)")
            self.late_dropped.append((None, item))
            click.echo(_drop_line(None, item), err=True)

    def close(self, module_aux_after) -> None:
        self.writer.close(module_aux_after=module_aux_after)
        self._report()


def rdb_from_rdb(fh, size, progress, selection, out, target_version, magic, **kwargs) -> _RdbOutput:
    with Decoder(fh) as dec:
        stream = iter(entries(dec, size, progress, "convert to rdb"))
        first = next(stream, None)
        version, magic = _encoder_settings(dec.magic, dec.version, target_version, magic)
        rdb = _RdbOutput(_make_writer(out, version, magic, **kwargs))
        aux = list(dec.aux.items())
        functions = list(dec.functions)
        module_aux = list(dec.module_aux)
        rdb.begin(aux, functions, module_aux)
        if first is not None:
            if selection.matches(first):
                rdb.write(first)
            for entry in stream:
                if selection.matches(entry):
                    rdb.write(entry)
        rdb.late_header(list(dec.aux.items())[len(aux):], list(dec.functions)[len(functions):],
                        kwargs["drop_unsupported"])
        rdb.close(list(dec.module_aux)[len(module_aux):])
    return rdb


def rdb_from_jsonl(fh, selection, out, target_version, magic, **kwargs) -> _RdbOutput:
    reader = jsonl.JsonlReader(fh)
    head = reader.header
    version, magic = _encoder_settings(head.magic, head.version, target_version, magic)
    rdb = _RdbOutput(_make_writer(out, version, magic, **kwargs))
    rdb.begin(head.aux, head.functions, head.module_aux)
    for entry in reader:
        if selection.matches(entry):
            rdb.write(entry)
    foot = reader.footer
    assert foot is not None  # the reader raises on a missing footer
    rdb.late_header(foot.aux, foot.functions, kwargs["drop_unsupported"])
    rdb.close(foot.module_aux)
    return rdb


@click.command("convert")
@click.argument("file", metavar="FILE")
@click.option("--to", "fmt", type=click.Choice(FORMATS), required=True, help="Output format.")
@click.option("--from", "source", type=click.Choice(SOURCES),
              help="Input format (default: detected; a jsonl export converts only --to rdb).")
@click.option("-o", "--output", metavar="PATH", help="Write here instead of stdout (- = stdout).")
@click.option("--max-items", default=commands.DEFAULT_MAX_ITEMS, show_default=True,
              type=click.IntRange(min=1), help="resp: elements per command for big collections.")
@click.option("--target-version", type=click.Choice([str(v) for v in ENCODER_VERSIONS]),
              help="rdb: RDB version to write (default: the source's).")
@click.option("--magic", type=click.Choice(["REDIS", "VALKEY"]),
              help="rdb: file magic (default: VALKEY for version 80, else REDIS).")
@click.option("--plain", is_flag=True, help="rdb: only plain encodings (no ziplist/listpack/intset).")
@click.option("--no-compress", is_flag=True, help="rdb: no LZF string compression.")
@click.option("--drop-unsupported", is_flag=True,
              help="rdb: drop what the target version cannot express (listed on stderr) "
              "instead of failing.")
@filter_options
@progress_option
def convert_command(file, fmt, source, output, max_items, target_version, magic, plain,
                    no_compress, drop_unsupported, dbs, key_pattern, types, progress) -> None:
    """Convert an RDB to JSON Lines (lossless), JSON (human), RESP commands or another RDB.

    FILE is a path or - for stdin; --to rdb also reads a jsonl export. A
    summary line goes to stderr.
    """
    selection = make_selection(dbs, key_pattern, types)
    if fmt == "rdb":
        if output in (None, "-") and _stdout_is_tty():
            raise click.UsageError("refusing to write a binary RDB to a terminal: "
                                   "use -o FILE or redirect stdout")
        encoder_kwargs = {"plain": plain, "compress": not no_compress,
                          "drop_unsupported": drop_unsupported}
        version = None if target_version is None else int(target_version)
        with open_input(file) as (fh, size):
            kind, fh = sniff_input(fh)
            kind = source or kind
            with open_output(output) as out:
                if kind == "jsonl":
                    rdb = rdb_from_jsonl(fh, selection, out, version, magic, **encoder_kwargs)
                else:
                    rdb = rdb_from_rdb(fh, size, progress, selection, out, version, magic,
                                       **encoder_kwargs)
        enc = rdb.writer.encoder
        dest = "stdout" if output in (None, "-") else output
        summary = f"{rdb.keys} keys written to {dest} ({enc.magic} {enc.version})"
        if drop_unsupported:
            summary += f", {rdb.dropped_count} items dropped"
        click.echo(summary, err=True)
        return
    if source == "jsonl":
        raise click.UsageError("a jsonl export converts only --to rdb")
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
