"""The value model shared by both codec implementations.

Plain Python values stand for Redis values: string -> ``bytes``, list ->
``list[bytes]``, set -> ``set[bytes]``, hash -> ``dict[bytes, bytes]``, sorted
set -> ``dict[bytes, float]``. Streams, module values and the file-level
records (module aux data, slot info) are the small frozen dataclasses below,
so the C and the pure-Python decoder build the very same objects and the
encoder can write them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

#: The logical type names an entry can have.
TYPE_NAMES = ("string", "list", "set", "zset", "hash", "stream", "module")

MODULE_ID_CHARSET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class StreamID(NamedTuple):
    """A stream entry ID ``ms-seq``."""

    ms: int
    seq: int

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


@dataclass(frozen=True)
class StreamEntry:
    """One live stream entry; ``fields`` keeps order and repeated names."""

    id: StreamID
    fields: tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True)
class StreamPending:
    """One entry of a consumer group's pending entries list (PEL)."""

    id: StreamID
    delivery_time_ms: int
    delivery_count: int
    consumer: bytes | None = None  # the consumer owning it, None if none claims it


@dataclass(frozen=True)
class StreamConsumer:
    """A consumer of a group, with the IDs it has pending."""

    name: bytes
    seen_time_ms: int
    active_time_ms: int | None  # stored since stream layout 3 (RDB 11); None before
    pending: tuple[StreamID, ...]


@dataclass(frozen=True)
class StreamGroup:
    """A consumer group."""

    name: bytes
    last_id: StreamID
    entries_read: int | None  # stored since stream layout 2 (RDB 10); None before
    pending: tuple[StreamPending, ...]
    consumers: tuple[StreamConsumer, ...]


@dataclass(frozen=True)
class Stream:
    """A stream value: live entries (tombstones dropped) plus its metadata.

    ``first_id``, ``max_deleted_id`` and ``entries_added`` are stored since
    stream layout 2 (RDB 10); for older files they are None.
    """

    entries: tuple[StreamEntry, ...]
    length: int
    last_id: StreamID
    first_id: StreamID | None = None
    max_deleted_id: StreamID | None = None
    entries_added: int | None = None
    groups: tuple[StreamGroup, ...] = ()


@dataclass(frozen=True)
class ModuleValue:
    """A module type's value, kept as its raw RDB bytes so it can be written back.

    ``raw`` is the body after the module id, up to and including the closing
    EOF opcode; ``items`` is that body walked without the module's help:
    ``(opcode, value)`` pairs where opcode 1/2 give ints, 3/4 floats and 5 bytes.
    """

    module_id: int
    name: str
    encver: int
    raw: bytes
    items: tuple[tuple[int, object], ...] = field(default=(), compare=True)


@dataclass(frozen=True)
class ModuleAux:
    """Module auxiliary data stored outside keys (opcode MODULE_AUX)."""

    module_id: int
    name: str
    encver: int
    when: int  # 1 = before keys, 2 = after keys
    raw: bytes
    items: tuple[tuple[int, object], ...] = ()


@dataclass(frozen=True)
class SlotInfo:
    """A cluster slot's key counts (opcode SLOT_INFO, a hint)."""

    slot: int
    keys: int
    expires: int


@dataclass(frozen=True)
class DumpValue:
    """One value parsed from a DUMP payload (``parse_dump_payload``).

    ``type`` and ``encoding`` use the names of ``Entry``; ``version`` is the RDB
    version in the payload's footer; ``field_expires`` is as in ``Entry``.
    """

    type: str
    value: object
    version: int
    field_expires: dict | None = None
    encoding: str = ""


def module_name(module_id: int) -> tuple[str, int]:
    """Split a 64-bit module type id into its 9-character name and encoding version."""
    chars = []
    for i in range(9):
        chars.append(MODULE_ID_CHARSET[(module_id >> (64 - 6 * (i + 1))) & 63])
    return "".join(chars), module_id & 1023
