"""Plain Redis commands that rebuild decoded keys (no RESTORE), as RESP arrays.

``rdbkit convert --to resp`` writes these so a stock server can replay a
snapshot with ``redis-cli --pipe``. What each type becomes:

- string → ``SET``; list → ``RPUSH``; set → ``SADD``; sorted set → ``ZADD``
  (NaN scores, which Redis refuses, are skipped); hash → ``HSET``. Every
  collection is preceded by ``DEL`` (so a replay into a non-empty db does not
  merge) and split into commands of at most ``max_items`` elements.
- hash field TTLs → ``HPEXPIREAT key ms FIELDS n f...`` (Redis 7.4+, Valkey 9+).
- key TTL → ``PEXPIREAT key ms`` after the value (a TTL already in the past
  deletes the key, which is what loading the RDB would do).
- stream → ``XADD`` per entry with its ID, ``XSETID`` with the last ID (plus
  ``ENTRIESADDED``/``MAXDELETEDID`` when the RDB stores them, Redis 7+),
  ``XGROUP CREATE ... ENTRIESREAD`` per group (``ENTRIESREAD`` only when
  stored), ``XGROUP CREATECONSUMER`` per consumer, and each pending entry as
  ``XCLAIM key group consumer 0 id TIME ms RETRYCOUNT n FORCE JUSTID``.
  Best effort: a pending entry whose stream entry was deleted cannot be
  re-created by any command and is dropped; consumers' seen/active times
  become the replay time. An empty stream is created with
  ``XADD key MAXLEN 0 <last id> ...`` which leaves it empty.
- functions → ``FUNCTION LOAD REPLACE code`` (Redis 7+).
- module values, LRU idle and LFU freq cannot be set without RESTORE:
  ``entry_commands`` yields nothing for a module key (the caller counts and
  reports it) and ignores idle/freq.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

#: Elements per command for big collections (a pair counts as one element).
DEFAULT_MAX_ITEMS = 512

Command = list[bytes]


def encode_command(argv: Iterable[bytes]) -> bytes:
    """One command as a RESP array of bulk strings."""
    args = list(argv)
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n" % len(arg))
        parts.append(arg)
        parts.append(b"\r\n")
    return b"".join(parts)


def _int(n: int) -> bytes:
    return str(n).encode("ascii")


def _id(sid) -> bytes:
    return f"{sid.ms}-{sid.seq}".encode("ascii")


def format_score(score: float) -> bytes:
    """A score as text Redis parses back to the same double (``repr`` round-trips)."""
    if math.isinf(score):
        return b"inf" if score > 0 else b"-inf"
    return repr(score).encode("ascii")


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def select_command(db: int) -> Command:
    return [b"SELECT", _int(db)]


def function_commands(functions: Iterable[bytes]) -> Iterator[Command]:
    for code in functions:
        yield [b"FUNCTION", b"LOAD", b"REPLACE", code]


def entry_commands(entry, max_items: int = DEFAULT_MAX_ITEMS) -> Iterator[Command]:
    """The commands that rebuild one key (needs a decoder run with values).

    Yields nothing for module values (only RESTORE can load those).
    """
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    key, value, kind = entry.key, entry.value, entry.type
    if kind == "module":
        return
    if kind == "string":
        yield [b"SET", key, value]
    elif kind == "list":
        yield [b"DEL", key]
        for chunk in _chunks(value, max_items):
            yield [b"RPUSH", key, *chunk]
    elif kind == "set":
        yield [b"DEL", key]
        for chunk in _chunks(sorted(value), max_items):
            yield [b"SADD", key, *chunk]
    elif kind == "zset":
        yield [b"DEL", key]
        pairs = [(s, m) for m, s in value.items() if not math.isnan(s)]
        for chunk in _chunks(pairs, max_items):
            argv = [b"ZADD", key]
            for score, member in chunk:
                argv += [format_score(score), member]
            yield argv
    elif kind == "hash":
        yield [b"DEL", key]
        for chunk in _chunks(list(value.items()), max_items):
            argv = [b"HSET", key]
            for field, val in chunk:
                argv += [field, val]
            yield argv
        if entry.field_expires:
            by_time: dict[int, list[bytes]] = {}
            for field, ms in entry.field_expires.items():
                by_time.setdefault(ms, []).append(field)
            for ms, fields in sorted(by_time.items()):
                for chunk in _chunks(fields, max_items):
                    yield [b"HPEXPIREAT", key, _int(ms), b"FIELDS", _int(len(chunk)), *chunk]
    elif kind == "stream":
        yield [b"DEL", key]
        yield from _stream_commands(key, value)
    else:
        raise ValueError(f"unknown type {kind!r}")
    if entry.expire_ms is not None:
        yield [b"PEXPIREAT", key, _int(entry.expire_ms)]


def _stream_commands(key: bytes, s) -> Iterator[Command]:
    if s.entries:
        for e in s.entries:
            argv = [b"XADD", key, _id(e.id)]
            for field, val in e.fields:
                argv += [field, val]
            yield argv
    else:
        # XADD then trim to nothing: creates the key as an empty stream.
        yield [b"XADD", key, b"MAXLEN", b"0", _id(s.last_id) if s.last_id != (0, 0) else b"0-1",
               b"_", b"_"]
    setid = [b"XSETID", key, _id(s.last_id)]
    if s.entries_added is not None:
        setid += [b"ENTRIESADDED", _int(s.entries_added)]
    if s.max_deleted_id is not None:
        setid += [b"MAXDELETEDID", _id(s.max_deleted_id)]
    yield setid
    live = {e.id for e in s.entries}
    for group in s.groups:
        create = [b"XGROUP", b"CREATE", key, group.name, _id(group.last_id)]
        if group.entries_read is not None:
            create += [b"ENTRIESREAD", _int(group.entries_read)]
        yield create
        for consumer in group.consumers:
            yield [b"XGROUP", b"CREATECONSUMER", key, group.name, consumer.name]
        for p in group.pending:
            if p.consumer is None or p.id not in live:
                continue
            yield [b"XCLAIM", key, group.name, p.consumer, b"0", _id(p.id),
                   b"TIME", _int(p.delivery_time_ms), b"RETRYCOUNT", _int(p.delivery_count),
                   b"FORCE", b"JUSTID"]
