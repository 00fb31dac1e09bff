"""Opening the RDB a command reads, the key filters, and progress on stderr.

Every command takes ``FILE`` (a path, or ``-`` for stdin) and the same filters:
``--db N`` (repeatable), ``--key REGEX`` (a Python regular expression searched
anywhere in the key's bytes; anchor it with ``^``/``$``), ``--type T``
(repeatable). Progress goes to stderr only when stderr is a terminal or
``--progress`` is given, so stdout stays clean for ``--json`` and conversions.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import click

from rdbkit.codec import Decoder, Entry
from rdbkit.codec.model import TYPE_NAMES

#: Entries between two progress updates: often enough to move, rare enough to cost nothing.
PROGRESS_EVERY = 2048


@dataclass(frozen=True)
class Selection:
    """Which keys a command looks at; an empty axis selects everything."""

    dbs: frozenset[int] = frozenset()
    key_pattern: re.Pattern[bytes] | None = None
    types: frozenset[str] = frozenset()

    def matches(self, entry: Entry) -> bool:
        if self.dbs and entry.db not in self.dbs:
            return False
        if self.types and entry.type not in self.types:
            return False
        return self.key_pattern is None or self.key_pattern.search(entry.key) is not None

    @property
    def is_everything(self) -> bool:
        return not self.dbs and self.key_pattern is None and not self.types


def _compile_key_pattern(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    try:
        # surrogateescape lets a pattern typed in a non-UTF-8 locale keep its raw bytes
        return re.compile(value.encode("utf-8", "surrogateescape"))
    except re.error as exc:
        raise click.BadParameter(f"not a regular expression: {exc}") from exc


def filter_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--db``/``--key``/``--type`` options, shared by every reading command."""
    func = click.option(
        "--type", "types", multiple=True, type=click.Choice(TYPE_NAMES),
        help="Only keys of this type (repeatable).",
    )(func)
    func = click.option(
        "--key", "key_pattern", metavar="REGEX", callback=_compile_key_pattern,
        help="Only keys matching this regular expression (searched anywhere in the key; "
        "use ^ and $ to anchor).",
    )(func)
    func = click.option(
        "--db", "dbs", multiple=True, type=click.IntRange(min=0), metavar="N",
        help="Only this database (repeatable).",
    )(func)
    return func


def progress_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--progress/--no-progress", default=None,
        help="Progress bar on stderr (default: only when stderr is a terminal).",
    )(func)


def make_selection(dbs: tuple[int, ...], key_pattern: re.Pattern[bytes] | None,
                   types: tuple[str, ...]) -> Selection:
    return Selection(frozenset(dbs), key_pattern, frozenset(types))


@contextmanager
def open_input(path: str) -> Iterator[tuple[IO[bytes], int | None]]:
    """Yield ``(binary file, size in bytes or None)`` for a path or ``-`` (stdin).

    Raises ``OSError`` for a missing or unreadable file; ``main`` turns it
    into a one-line error.
    """
    if path == "-":
        yield sys.stdin.buffer, None
        return
    with open(path, "rb") as fh:
        try:
            size: int | None = os.fstat(fh.fileno()).st_size
        except OSError:
            size = None
        yield fh, size or None


def _want_progress(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return sys.stderr.isatty()


def entries(decoder: Decoder, size: int | None, progress: bool | None,
            label: str) -> Iterator[Entry]:
    """Iterate a pull-mode decoder, drawing a byte-based progress bar on stderr when wanted."""
    if not _want_progress(progress):
        yield from decoder
        return
    stderr = sys.stderr
    if size is None:  # stdin: no total, count keys instead
        with click.progressbar(decoder, label=label, file=stderr, show_pos=True) as bar:
            yield from bar
        return
    with click.progressbar(length=size, label=label, file=stderr) as bar:
        done = 0
        for count, entry in enumerate(decoder, 1):
            if count % PROGRESS_EVERY == 0:
                now = decoder.tell()
                bar.update(now - done)
                done = now
            yield entry
        bar.update(max(decoder.tell() - done, 0))


def text(data: bytes) -> str:
    """Bytes for a human: UTF-8 where valid, ``\\xNN`` escapes elsewhere."""
    return data.decode("utf-8", "backslashreplace")
