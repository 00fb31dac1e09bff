"""The command table: ``@command(...)`` registers a handler with its metadata.

A handler is ``handler(client, argv) -> reply`` where ``argv[0]`` is the
command name as sent and the reply is a value ``protocol.encode_reply``
understands; an ``ErrorReply`` may be raised or returned. The metadata
(arity, flags, key positions) is what redis' COMMAND reports and what the
dispatcher checks: ``arity`` N > 0 means exactly N arguments including the
name, -N means at least N.

A name with a space (``"CONFIG GET"``) registers a subcommand; its container
(``CONFIG``) is created on first use with arity -2.

The table is filled at import time by the command modules and never changed
afterwards; nothing in it depends on a running node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rdbkit.node.resp import ErrorReply

Handler = Callable[..., object]


@dataclass
class Command:
    """One command (or subcommand) and what COMMAND INFO says about it."""

    name: str  # lower case; "config|get" for a subcommand
    handler: Handler | None
    arity: int
    flags: tuple[str, ...] = ()
    first_key: int = 0
    last_key: int = 0
    step: int = 0
    group: str = "generic"
    summary: str = ""
    since: str = "1.0.0"
    subcommands: dict[bytes, Command] = field(default_factory=dict)

    @property
    def is_write(self) -> bool:
        return "write" in self.flags

    def arity_ok(self, argc: int) -> bool:
        return argc == self.arity if self.arity > 0 else argc >= -self.arity

    def key_positions(self, argc: int) -> range:
        """Indexes of the key arguments in an argv of ``argc`` items."""
        if self.first_key <= 0:
            return range(0)
        last = self.last_key if self.last_key >= 0 else argc + self.last_key
        return range(self.first_key, min(last, argc - 1) + 1, self.step or 1)

    def info(self) -> list:
        """The COMMAND INFO entry (redis 7 layout)."""
        from rdbkit.node.resp import SimpleString

        return [
            self.name.encode(),
            self.arity,
            {SimpleString(f) for f in self.flags},
            self.first_key,
            self.last_key,
            self.step,
            {SimpleString("@" + self.group)} if self.group else set(),
            [],
            [],
            [sub.info() for sub in self.subcommands.values()],
        ]

    def docs(self) -> dict:
        """The COMMAND DOCS entry (summary, since, group; no argument tree yet)."""
        doc: dict = {
            b"summary": self.summary.encode(),
            b"since": self.since.encode(),
            b"group": self.group.encode(),
        }
        if self.subcommands:
            doc[b"subcommands"] = {s.name.encode(): s.docs() for s in self.subcommands.values()}
        return doc


#: name (lower-case bytes) -> Command; filled by the command modules at import.
COMMANDS: dict[bytes, Command] = {}


def command(name: str, *, arity: int, flags: tuple[str, ...] = (), first_key: int = 0,
            last_key: int = 0, step: int = 0, group: str = "generic", summary: str = "",
            since: str = "1.0.0") -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``name``."""

    def register(handler: Handler) -> Handler:
        parts = name.lower().split()
        if len(parts) == 1:
            existing = COMMANDS.get(parts[0].encode())
            cmd = Command(parts[0], handler, arity, tuple(flags), first_key, last_key, step,
                          group, summary or (handler.__doc__ or "").split("\n")[0], since)
            if existing is not None:
                cmd.subcommands = existing.subcommands
            COMMANDS[parts[0].encode()] = cmd
        else:
            parent_name, sub = parts
            parent = COMMANDS.get(parent_name.encode())
            if parent is None:
                parent = Command(parent_name, None, -2, (), group=group,
                                 summary=f"A container for {parent_name.upper()} subcommands.")
                COMMANDS[parent_name.encode()] = parent
            parent.subcommands[sub.encode()] = Command(
                f"{parent_name}|{sub}", handler, arity, tuple(flags), first_key, last_key, step,
                group, summary or (handler.__doc__ or "").split("\n")[0], since)
        return handler

    return register


# --- argument helpers shared by the command modules ------------------------------

SYNTAX_ERROR = ErrorReply("ERR syntax error")
NOT_INTEGER = ErrorReply("ERR value is not an integer or out of range")
NOT_FLOAT = ErrorReply("ERR value is not a valid float")
LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)


def parse_int(data: bytes) -> int | None:
    """An int64 as redis' string2ll reads it (no spaces, no '+', no leading zeros)."""
    n = len(data)
    if n == 0 or n > 20:
        return None
    if n == 1 and data == b"0":
        return 0
    body = data[1:] if data[0] == 45 else data
    if not body.isdigit() or body[0] == 48 or not body.isascii():
        return None
    value = int(data)
    if value > LLONG_MAX or value < LLONG_MIN:
        return None
    return value


def int_arg(data: bytes, error: ErrorReply = NOT_INTEGER) -> int:
    value = parse_int(data)
    if value is None:
        raise error
    return value


def wrong_arity(name: str) -> ErrorReply:
    return ErrorReply(f"ERR wrong number of arguments for '{name}' command")
