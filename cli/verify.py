"""``rdbkit verify FILE``: is this snapshot whole and valid? Exit 0 only if so."""

from __future__ import annotations

import json
from collections import Counter

import click
from rdbkit.cli.source import entries, open_input, progress_option

from rdbkit.codec import Decoder
from rdbkit.errors import DecodeError


def check(fileobj, size, progress) -> dict:
    """Walk every structure (values not built) and check EOF and checksum.

    Raises ``DecodeError`` (with the byte offset) at the first problem.
    """
    types: Counter[str] = Counter()
    dbs: set[int] = set()
    expiring = 0
    with Decoder(fileobj, values=False) as dec:
        for entry in entries(dec, size, progress, "verify"):
            types[entry.type] += 1
            dbs.add(entry.db)
            expiring += entry.expire_ms is not None
        # Iteration ending normally means EOF (and the checksum when present) were read.
        return {
            "ok": True,
            "magic": dec.magic,
            "version": dec.version,
            "keys": sum(types.values()),
            "databases": len(dbs),
            "expiring_keys": expiring,
            "types": dict(sorted(types.items())),
            "checksum": dec.checksum_status,
            "bytes": dec.tell(),
            "trailing_bytes": getattr(dec, "trailing_bytes", 0) or 0,
        }


def ok_line(result: dict) -> str:
    types = " ".join(f"{t}={n}" for t, n in result["types"].items())
    line = (f"OK {result['magic']} version={result['version']} keys={result['keys']} "
            f"databases={result['databases']} expiring={result['expiring_keys']} "
            f"checksum={result['checksum']} bytes={result['bytes']}")
    if types:
        line += f" ({types})"
    if result["trailing_bytes"]:
        line += f" trailing_bytes={result['trailing_bytes']}"
    return line


@click.command("verify")
@click.argument("file", metavar="FILE")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON document on stdout ({\"ok\": ...}), also on failure.")
@progress_option
def verify_command(file, as_json, progress) -> None:
    """Check structure and checksum of an RDB; exit 0 only when both are valid.

    Prints one line: "OK ..." with counts, or the problem and its byte offset
    (exit status 1). FILE is a path or - for stdin.
    """
    with open_input(file) as (fh, size):
        try:
            result = check(fh, size, progress)
        except DecodeError as exc:
            if not as_json:
                raise  # main prints it as one "Error: ... at byte N" line
            click.echo(json.dumps({"ok": False, "error": type(exc).__name__,
                                   "message": str(exc), "offset": exc.offset}))
            click.get_current_context().exit(1)
    click.echo(json.dumps(result) if as_json else ok_line(result))
