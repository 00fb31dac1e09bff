"""Streams for the node: XADD/XRANGE/XDEL/XTRIM and consumer groups, redis 7.0 style.

``StreamLog`` is the mutable twin of ``rdbkit.codec.model.Stream``
(``from_model``/``to_model``). Entries live in a sorted list of IDs plus a
dict; IDs are appended in order, so XADD is O(1) and ranges O(log n + k).
XDEL in the middle and trimming are list deletions (a memmove in C).

Redis keeps entries in listpack nodes of at most ``stream-node-max-entries``
(100) entries or ``stream-node-max-bytes`` (4096); ``~`` trimming removes
whole nodes only. We remember which node each entry went to, counting
entries exactly (deleted ones included, as redis does) and bytes
approximately, so ``~`` trims close to where redis would.

Times are milliseconds since the epoch and are passed in (``now_ms``) so the
node can use one command time snapshot; they default to the wall clock.
Client-facing errors are ``CommandError`` with redis 7.0's reply text.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Iterable

from rdbkit.codec.model import (
    Stream,
    StreamConsumer,
    StreamEntry,
    StreamGroup,
    StreamID,
    StreamPending,
)
from rdbkit.node.zset import CommandError

__all__ = [
    "MAX_ID",
    "ZERO_ID",
    "CommandError",
    "Consumer",
    "ConsumerGroup",
    "NoGroupError",
    "PendingEntry",
    "StreamLog",
    "nogroup_text",
    "parse_id",
    "parse_range_id",
]

U64_MAX = (1 << 64) - 1
MAX_ID = StreamID(U64_MAX, U64_MAX)
ZERO_ID = StreamID(0, 0)
INVALID_ENTRIES_READ = -1  # redis' SCG_INVALID_ENTRIES_READ

ERR_INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
ERR_XADD_SMALLER = (
    "ERR The ID specified in XADD is equal or smaller than the target stream top item"
)
ERR_XADD_ZERO = "ERR The ID specified in XADD must be greater than 0-0"
ERR_EXHAUSTED = "ERR The stream has exhausted the last possible ID, unable to add more items"
ERR_START_INTERVAL = "ERR invalid start ID for the interval"
ERR_END_INTERVAL = "ERR invalid end ID for the interval"
ERR_BUSYGROUP = "BUSYGROUP Consumer Group name already exists"
ERR_ENTRIES_READ = "ERR value for ENTRIESREAD must be positive or -1"
ERR_MAXLEN = "ERR The MAXLEN argument must be >= 0."
ERR_LIMIT_NEEDS_APPROX = "ERR syntax error, LIMIT cannot be used without the special ~ option"
ERR_MAXLEN_MINID = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"

_SPACE = b" \t\n\v\f\r"


class NoGroupError(CommandError):
    """The consumer group does not exist. ``nogroup_text`` words it per command."""

    def __init__(self, group: bytes) -> None:
        super().__init__(f"NOGROUP No such consumer group '{group.decode('utf-8', 'replace')}'")
        self.group = group


def nogroup_text(command: str, key: bytes, group: bytes) -> str:
    """Redis 7.0's NOGROUP reply text for ``command`` (XGROUP, XREADGROUP, XPENDING, XINFO)."""
    k = key.decode("utf-8", "replace")
    g = group.decode("utf-8", "replace")
    if command.upper() == "XREADGROUP":
        return f"NOGROUP No such key '{k}' or consumer group '{g}' in XREADGROUP with GROUP option"
    if command.upper() == "XPENDING":
        return f"NOGROUP No such key '{k}' or consumer group '{g}'"
    return f"NOGROUP No such consumer group '{g}' for key name '{k}'"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _u64(text: bytes) -> int | None:
    """Redis' string2ull: unsigned decimal (strtoull's leading space and '+' allowed)."""
    body = text.lstrip(_SPACE)
    if body[:1] == b"+":
        body = body[1:]
    if not body or not body.isdigit():
        return None
    value = int(body)
    return value if value <= U64_MAX else None


def parse_id(
    arg: bytes, *, missing_seq: int = 0, strict: bool = True, auto_seq: bool = False
) -> StreamID | tuple[int, None]:
    """Parse a stream ID argument as redis does.

    ``ms`` alone takes ``missing_seq``. ``strict`` refuses ``-`` and ``+``
    (otherwise they are 0-0 and the maximum ID). With ``auto_seq`` (XADD),
    ``ms-*`` gives ``(ms, None)``. Raises ``CommandError`` with redis'
    "Invalid stream ID" text.
    """
    arg = bytes(arg)
    if len(arg) > 127:
        raise CommandError(ERR_INVALID_ID)
    if arg == b"-" or arg == b"+":
        if strict:
            raise CommandError(ERR_INVALID_ID)
        return ZERO_ID if arg == b"-" else MAX_ID
    head, dash, tail = arg.partition(b"-")
    ms = _u64(head)
    if ms is None:
        raise CommandError(ERR_INVALID_ID)
    if not dash:
        return StreamID(ms, missing_seq)
    if auto_seq and tail == b"*":
        return (ms, None)
    seq = _u64(tail)
    if seq is None:
        raise CommandError(ERR_INVALID_ID)
    return StreamID(ms, seq)


def _incr(sid: StreamID) -> StreamID | None:
    if sid.seq < U64_MAX:
        return StreamID(sid.ms, sid.seq + 1)
    if sid.ms < U64_MAX:
        return StreamID(sid.ms + 1, 0)
    return None


def _decr(sid: StreamID) -> StreamID | None:
    if sid.seq > 0:
        return StreamID(sid.ms, sid.seq - 1)
    if sid.ms > 0:
        return StreamID(sid.ms - 1, U64_MAX)
    return None


def parse_range_id(arg: bytes, *, end: bool) -> StreamID:
    """An XRANGE/XPENDING interval end: ``-``, ``+``, ``ms[-seq]`` or exclusive ``(ms[-seq]``.

    A missing sequence is 0 for the start and the maximum for the end. An
    exclusive ID is moved one step inwards; one that cannot move raises
    "invalid start/end ID for the interval".
    """
    arg = bytes(arg)
    missing = U64_MAX if end else 0
    if len(arg) > 1 and arg[:1] == b"(":
        sid = parse_id(arg[1:], missing_seq=missing, strict=True)
        assert isinstance(sid, StreamID)
        moved = _decr(sid) if end else _incr(sid)
        if moved is None:
            raise CommandError(ERR_END_INTERVAL if end else ERR_START_INTERVAL)
        return moved
    sid = parse_id(arg, missing_seq=missing, strict=False)
    assert isinstance(sid, StreamID)
    return sid


class PendingEntry:
    """One PEL entry: who has it, when it was last delivered, how often."""

    __slots__ = ("consumer", "delivery_count", "delivery_time_ms")

    def __init__(self, consumer: bytes, delivery_time_ms: int, delivery_count: int) -> None:
        self.consumer = consumer
        self.delivery_time_ms = delivery_time_ms
        self.delivery_count = delivery_count

    def __repr__(self) -> str:
        return f"PendingEntry({self.consumer!r}, {self.delivery_time_ms}, {self.delivery_count})"


class Consumer:
    """A consumer: its pending IDs (sorted) and when it was seen / last read."""

    __slots__ = ("active_time_ms", "name", "pending", "seen_time_ms")

    def __init__(self, name: bytes, seen_time_ms: int, active_time_ms: int = -1) -> None:
        self.name = name
        self.seen_time_ms = seen_time_ms
        self.active_time_ms = active_time_ms  # -1: never read (redis 7.2's field)
        self.pending: list[StreamID] = []


class ConsumerGroup:
    """A consumer group: last delivered ID, read counter, PEL and consumers."""

    __slots__ = ("consumers", "entries_read", "last_id", "name", "pel", "pel_ids")

    def __init__(
        self, name: bytes, last_id: StreamID, entries_read: int = INVALID_ENTRIES_READ
    ) -> None:
        self.name = name
        self.last_id = last_id
        self.entries_read = entries_read  # -1: unknown
        self.pel: dict[StreamID, PendingEntry] = {}
        self.pel_ids: list[StreamID] = []  # sorted keys of pel
        self.consumers: dict[bytes, Consumer] = {}

    def _pel_add(self, sid: StreamID, entry: PendingEntry) -> None:
        self.pel[sid] = entry
        if not self.pel_ids or self.pel_ids[-1] < sid:
            self.pel_ids.append(sid)
        else:
            insort(self.pel_ids, sid)

    def _pel_remove(self, sid: StreamID) -> PendingEntry | None:
        entry = self.pel.pop(sid, None)
        if entry is not None:
            ids = self.pel_ids
            del ids[bisect_left(ids, sid)]
            owner = self.consumers.get(entry.consumer)
            if owner is not None:
                del owner.pending[bisect_left(owner.pending, sid)]
        return entry


def _sorted_insert(ids: list[StreamID], sid: StreamID) -> None:
    if not ids or ids[-1] < sid:
        ids.append(sid)
    else:
        insort(ids, sid)


class StreamLog:
    """A mutable redis stream (entries, metadata, consumer groups)."""

    def __init__(self, *, node_max_entries: int = 100, node_max_bytes: int = 4096) -> None:
        self.node_max_entries = node_max_entries
        self.node_max_bytes = node_max_bytes
        self._ids: list[StreamID] = []
        self._entries: dict[StreamID, tuple[tuple[tuple[bytes, bytes], ...], int]] = {}
        self.last_id = ZERO_ID
        self.max_deleted_id = ZERO_ID
        self.entries_added = 0
        self.groups: dict[bytes, ConsumerGroup] = {}
        # node bookkeeping for "~" trimming
        self._node_seq = 0
        self._node_live: dict[int, int] = {}
        self._node_last: dict[int, StreamID] = {}
        self._node_order: deque[int] = deque()
        self._tail_node: int | None = None
        self._tail_count = 0
        self._tail_bytes = 0
        self._tail_fields: tuple[bytes, ...] = ()

    # --- model conversion ------------------------------------------------------

    @classmethod
    def from_model(cls, value: Stream, **kwargs: int) -> StreamLog:
        """Build from a decoded ``model.Stream`` (fields missing in old RDBs are estimated)."""
        s = cls(**kwargs)
        for e in value.entries:
            s._append(e.id, tuple(e.fields))
        s.last_id = value.last_id
        s.max_deleted_id = value.max_deleted_id or ZERO_ID
        s.entries_added = (
            value.entries_added if value.entries_added is not None else len(value.entries)
        )
        for g in value.groups:
            group = ConsumerGroup(
                g.name,
                g.last_id,
                INVALID_ENTRIES_READ if g.entries_read is None else g.entries_read,
            )
            for c in g.consumers:
                consumer = Consumer(
                    c.name, c.seen_time_ms, -1 if c.active_time_ms is None else c.active_time_ms
                )
                consumer.pending = sorted(c.pending)
                group.consumers[c.name] = consumer
            owners = {pid: c.name for c in g.consumers for pid in c.pending}
            for p in g.pending:
                owner = owners.get(p.id, p.consumer)
                group._pel_add(
                    p.id, PendingEntry(owner or b"", p.delivery_time_ms, p.delivery_count)
                )
            s.groups[g.name] = group
        return s

    def to_model(self) -> Stream:
        """The codec's ``model.Stream``; groups and consumers in name order, as redis keeps them."""
        groups = []
        for name in sorted(self.groups):
            g = self.groups[name]
            consumers = tuple(
                StreamConsumer(
                    name=c.name,
                    seen_time_ms=c.seen_time_ms,
                    active_time_ms=c.active_time_ms,
                    pending=tuple(c.pending),
                )
                for c in (g.consumers[n] for n in sorted(g.consumers))
            )
            pending = tuple(
                StreamPending(
                    id=sid,
                    delivery_time_ms=g.pel[sid].delivery_time_ms,
                    delivery_count=g.pel[sid].delivery_count,
                    consumer=g.pel[sid].consumer if g.pel[sid].consumer in g.consumers else None,
                )
                for sid in g.pel_ids
            )
            groups.append(
                StreamGroup(
                    name=g.name,
                    last_id=g.last_id,
                    entries_read=g.entries_read,  # -1 (unknown) is what RDB 10+ stores
                    pending=pending,
                    consumers=consumers,
                )
            )
        return Stream(
            entries=tuple(StreamEntry(sid, self._entries[sid][0]) for sid in self._ids),
            length=len(self._ids),
            last_id=self.last_id,
            first_id=self.first_id,
            max_deleted_id=self.max_deleted_id,
            entries_added=self.entries_added,
            groups=tuple(groups),
        )

    # --- basics ------------------------------------------------------------------

    def __len__(self) -> int:
        """XLEN."""
        return len(self._ids)

    @property
    def first_id(self) -> StreamID:
        """The first live entry's ID (0-0 when empty, as redis records it)."""
        return self._ids[0] if self._ids else ZERO_ID

    def get(self, sid: StreamID) -> tuple[tuple[bytes, bytes], ...] | None:
        """The fields of one entry, or None."""
        found = self._entries.get(sid)
        return None if found is None else found[0]

    def _append(self, sid: StreamID, fields: tuple[tuple[bytes, bytes], ...]) -> None:
        names = tuple(f for f, _ in fields)
        size = sum(len(f) + len(v) for f, v in fields)
        node = self._tail_node
        if node is not None and (
            self._tail_bytes + size >= self.node_max_bytes
            or (self.node_max_entries and self._tail_count >= self.node_max_entries)
        ):
            node = None
        if node is None:
            self._node_seq += 1
            node = self._node_seq
            self._tail_node = node
            self._tail_count = 0
            self._tail_fields = names
            # listpack header + master entry (count, deleted, field names)
            self._tail_bytes = 16 + sum(len(f) + 2 for f in names)
            self._node_live[node] = 0
            self._node_order.append(node)
        # an entry: flags, ms/seq deltas, values (+ names unless the master's), lp-count
        self._tail_bytes += 6 + sum(len(v) + 2 for _, v in fields)
        if names != self._tail_fields:
            self._tail_bytes += 2 + sum(len(f) + 2 for f in names)
        self._tail_count += 1
        self._node_live[node] += 1
        self._node_last[node] = sid
        self._entries[sid] = (fields, node)
        self._ids.append(sid)

    def _drop(self, sid: StreamID) -> None:
        """Remove one live entry from the ID list's bookkeeping (not from _ids)."""
        _, node = self._entries.pop(sid)
        live = self._node_live[node] - 1
        if live:
            self._node_live[node] = live
        else:  # redis frees a node once all its entries are deleted
            del self._node_live[node]
            del self._node_last[node]
            if node == self._tail_node:
                self._tail_node = None

    # --- XADD ----------------------------------------------------------------------

    def next_id(self, id_arg: bytes = b"*", *, now_ms: int | None = None) -> StreamID:
        """The ID XADD would give ``id_arg`` (``*``, ``ms-*``, ``ms``, ``ms-seq``), or its error."""
        if id_arg == b"*":
            spec: StreamID | tuple[int, None] | None = None
        else:
            spec = parse_id(id_arg, strict=True, auto_seq=True)
            if spec == ZERO_ID:
                raise CommandError(ERR_XADD_ZERO)
        if self.last_id == MAX_ID:
            raise CommandError(ERR_EXHAUSTED)
        last = self.last_id
        if spec is None:
            ms = _now_ms() if now_ms is None else now_ms
            if ms > last.ms:
                new = StreamID(ms, 0)
            else:
                new = _incr(last)
                assert new is not None  # last != MAX_ID
        elif spec[1] is None:
            ms = spec[0]
            if ms == last.ms:
                if last.seq == U64_MAX:
                    raise CommandError(ERR_XADD_SMALLER)
                new = StreamID(ms, last.seq + 1)
            else:
                new = StreamID(ms, 0)
        else:
            new = StreamID(*spec)
        if new <= last:
            raise CommandError(ERR_XADD_SMALLER)
        return new

    def add(
        self,
        fields: Iterable[tuple[bytes, bytes]],
        id_arg: bytes = b"*",
        *,
        maxlen: int | None = None,
        minid: StreamID | None = None,
        approx: bool = False,
        limit: int | None = None,
        now_ms: int | None = None,
    ) -> StreamID:
        """XADD: append one entry, then trim as ``trim`` does; returns the new ID."""
        fields = tuple((bytes(f), bytes(v)) for f, v in fields)
        if not fields:
            raise ValueError("a stream entry needs at least one field")
        _check_trim_args(maxlen, minid, approx, limit)
        sid = self.next_id(id_arg, now_ms=now_ms)
        self._append(sid, fields)
        self.last_id = sid
        self.entries_added += 1
        if maxlen is not None or minid is not None:
            self.trim(maxlen=maxlen, minid=minid, approx=approx, limit=limit)
        return sid

    # --- trimming and deletion --------------------------------------------------

    def trim(
        self,
        *,
        maxlen: int | None = None,
        minid: StreamID | None = None,
        approx: bool = False,
        limit: int | None = None,
    ) -> int:
        """XTRIM MAXLEN|MINID [=|~] threshold [LIMIT n]: how many entries were removed.

        Exact trimming removes entries one by one; ``approx`` removes whole
        nodes only, at most ``limit`` entries (default 100 x node_max_entries,
        0 = no limit). Trimming does not move ``max_deleted_id`` (only XDEL does).
        """
        _check_trim_args(maxlen, minid, approx, limit)
        if maxlen is None and minid is None:
            raise ValueError("trim needs maxlen or minid")
        if limit is None:
            limit = (100 * self.node_max_entries or 10000) if approx else 0
        removed = 0
        ids = self._ids
        order = self._node_order
        while ids:
            if maxlen is not None and len(ids) <= maxlen:
                break
            while order[0] not in self._node_live:  # nodes emptied by XDEL
                order.popleft()
            node = order[0]
            live = self._node_live[node]
            if limit and removed + live > limit:
                break
            if maxlen is not None:
                whole = len(ids) - live >= maxlen
            else:
                whole = self._node_last[node] < minid
            if whole:
                for sid in ids[:live]:
                    self._drop(sid)
                del ids[:live]
                removed += live
                continue
            if approx:
                break
            n = 0
            while n < live:
                if maxlen is not None:
                    if len(ids) - n <= maxlen:
                        break
                elif ids[n] >= minid:
                    break
                n += 1
            for sid in ids[:n]:
                self._drop(sid)
            del ids[:n]
            removed += n
            break
        return removed

    def delete(self, ids: Iterable[StreamID]) -> int:
        """XDEL: how many of ``ids`` existed; records the largest as ``max_deleted_id``."""
        deleted = 0
        for sid in ids:
            if sid not in self._entries:
                continue
            self._drop(sid)
            del self._ids[bisect_left(self._ids, sid)]
            self.max_deleted_id = max(self.max_deleted_id, sid)
            deleted += 1
        return deleted

    # --- XRANGE ----------------------------------------------------------------------

    def range(
        self,
        start: StreamID = ZERO_ID,
        end: StreamID = MAX_ID,
        *,
        count: int | None = None,
        rev: bool = False,
    ) -> list[tuple[StreamID, tuple[tuple[bytes, bytes], ...]]] | None:
        """XRANGE start end (XREVRANGE with ``rev``; pass the bounds low, high).

        ``count`` None means all. ``count <= 0`` returns None: redis 7.0
        replies a null array to COUNT 0 (and to a negative COUNT).
        """
        if count is not None and count <= 0:
            return None
        lo = bisect_left(self._ids, start)
        hi = bisect_right(self._ids, end)
        if lo >= hi:
            return []
        if rev:
            stop = lo if count is None else max(lo, hi - count)
            picked = self._ids[stop:hi][::-1]
        else:
            picked = self._ids[lo : hi if count is None else min(hi, lo + count)]
        entries = self._entries
        return [(sid, entries[sid][0]) for sid in picked]

    # --- groups ------------------------------------------------------------------------

    def _group(self, name: bytes) -> ConsumerGroup:
        group = self.groups.get(name)
        if group is None:
            raise NoGroupError(name)
        return group

    def _group_id(self, id_arg: bytes) -> StreamID:
        if id_arg == b"$":
            return self.last_id
        sid = parse_id(id_arg, strict=True)
        assert isinstance(sid, StreamID)
        return sid

    def create_group(
        self, name: bytes, id_arg: bytes = b"$", *, entries_read: int | None = None
    ) -> None:
        """XGROUP CREATE key group id|$ [ENTRIESREAD n]; BUSYGROUP if it exists."""
        sid = self._group_id(id_arg)
        read = _entries_read(entries_read)
        if name in self.groups:
            raise CommandError(ERR_BUSYGROUP)
        self.groups[name] = ConsumerGroup(name, sid, read)

    def set_group_id(self, name: bytes, id_arg: bytes, *, entries_read: int | None = None) -> None:
        """XGROUP SETID key group id|$ [ENTRIESREAD n]."""
        read = _entries_read(entries_read)
        group = self._group(name)
        group.last_id = self._group_id(id_arg)
        group.entries_read = read

    def destroy_group(self, name: bytes) -> int:
        """XGROUP DESTROY: 1 if the group existed."""
        return 1 if self.groups.pop(name, None) is not None else 0

    def create_consumer(
        self, group_name: bytes, consumer: bytes, *, now_ms: int | None = None
    ) -> int:
        """XGROUP CREATECONSUMER: 1 if created, 0 if it existed."""
        group = self._group(group_name)
        if consumer in group.consumers:
            return 0
        now = _now_ms() if now_ms is None else now_ms
        group.consumers[consumer] = Consumer(consumer, now)
        return 1

    def delete_consumer(self, group_name: bytes, consumer: bytes) -> int:
        """XGROUP DELCONSUMER: the consumer's pending count (its PEL entries are dropped)."""
        group = self._group(group_name)
        c = group.consumers.get(consumer)
        if c is None:
            return 0
        pending = list(c.pending)
        for sid in pending:
            group._pel_remove(sid)
        del group.consumers[consumer]
        return len(pending)

    def _has_tombstones_from(self, start: StreamID) -> bool:
        """Is there a deleted entry at or after ``start`` (redis' streamRangeHasTombstones)?"""
        if not self._ids or self.max_deleted_id == ZERO_ID:
            return False
        if self.first_id > self.max_deleted_id:
            return False
        return start <= self.max_deleted_id

    def estimate_entries_read(self, sid: StreamID) -> int:
        """Entries ever added up to ``sid``, or -1 if unknown (redis 7.0's estimate)."""
        if not self.entries_added:
            return 0
        if not self._ids and sid <= self.last_id:
            return self.entries_added
        if sid == self.last_id:
            return self.entries_added
        if sid > self.last_id:
            return INVALID_ENTRIES_READ
        first = self.first_id
        if self.max_deleted_id == ZERO_ID or self.max_deleted_id < first:
            if sid < first:
                return self.entries_added - len(self._ids)
            if sid == first:
                return self.entries_added - len(self._ids) + 1
        return INVALID_ENTRIES_READ

    def lag(self, group_name: bytes) -> int | None:
        """XINFO GROUPS' lag: entries not yet delivered to the group, None if unknown."""
        group = self._group(group_name)
        if not self.entries_added:
            return 0
        if group.entries_read != INVALID_ENTRIES_READ and not self._has_tombstones_from(
            group.last_id
        ):
            return self.entries_added - group.entries_read
        read = self.estimate_entries_read(group.last_id)
        if read != INVALID_ENTRIES_READ:
            return self.entries_added - read
        return None

    def read_group(
        self,
        group_name: bytes,
        consumer: bytes,
        id_arg: bytes = b">",
        *,
        count: int | None = None,
        noack: bool = False,
        now_ms: int | None = None,
    ) -> list[tuple[StreamID, tuple[tuple[bytes, bytes], ...] | None]] | None:
        """XREADGROUP GROUP g c [COUNT n] [NOACK] STREAMS key id, for one stream.

        ``>``: entries after the group's last ID, added to the PEL (unless
        ``noack``); None when there are none (redis would block or reply nil,
        and does not create the consumer). An explicit ID: the consumer's own
        pending entries after it, delivery count and time bumped; a deleted
        entry comes back as ``(id, None)``. ``count`` None or 0 means all.
        """
        group = self._group(group_name)
        now = _now_ms() if now_ms is None else now_ms
        if id_arg == b">":
            last_live = self._ids[-1] if self._ids else None
            if last_live is None or last_live <= group.last_id:
                return None
            c = self._consumer(group, consumer, now)
            lo = bisect_right(self._ids, group.last_id)
            picked = self._ids[lo:] if not count else self._ids[lo : lo + count]
            out = []
            for sid in picked:
                if group.entries_read != INVALID_ENTRIES_READ and not self._has_tombstones_from(
                    sid
                ):
                    group.entries_read += 1
                elif self.entries_added:
                    group.entries_read = self.estimate_entries_read(sid)
                group.last_id = sid
                if not noack:
                    old = group.pel.get(sid)
                    if old is None:
                        group._pel_add(sid, PendingEntry(consumer, now, 1))
                        _sorted_insert(c.pending, sid)
                    else:  # re-delivered after SETID: it moves to this consumer
                        prev = group.consumers.get(old.consumer)
                        if prev is not None:
                            del prev.pending[bisect_left(prev.pending, sid)]
                        old.consumer, old.delivery_time_ms, old.delivery_count = consumer, now, 1
                        _sorted_insert(c.pending, sid)
                out.append((sid, self._entries[sid][0]))
            if out:
                c.active_time_ms = now
            return out
        start = parse_id(id_arg, strict=True)
        assert isinstance(start, StreamID)
        c = self._consumer(group, consumer, now)
        begin = _incr(start)
        if begin is None:
            return []
        lo = bisect_left(c.pending, begin)
        picked = c.pending[lo:] if not count else c.pending[lo : lo + count]
        out = []
        for sid in picked:
            found = self._entries.get(sid)
            if found is None:
                out.append((sid, None))
            else:
                p = group.pel[sid]
                p.delivery_time_ms = now
                p.delivery_count += 1
                out.append((sid, found[0]))
        return out

    def _consumer(self, group: ConsumerGroup, name: bytes, now: int) -> Consumer:
        c = group.consumers.get(name)
        if c is None:
            c = group.consumers[name] = Consumer(name, now)
        c.seen_time_ms = now
        return c

    def ack(self, group_name: bytes, ids: Iterable[StreamID]) -> int:
        """XACK: how many IDs left the PEL (0 when the group does not exist)."""
        group = self.groups.get(group_name)
        if group is None:
            return 0
        return sum(1 for sid in ids if group._pel_remove(sid) is not None)

    def pending_summary(
        self, group_name: bytes
    ) -> tuple[int, StreamID | None, StreamID | None, list[tuple[bytes, int]] | None]:
        """XPENDING key group: (count, smallest, largest, [(consumer, count)]); Nones when empty."""
        group = self._group(group_name)
        if not group.pel_ids:
            return 0, None, None, None
        per = [(name, len(group.consumers[name].pending)) for name in sorted(group.consumers)]
        return (
            len(group.pel_ids),
            group.pel_ids[0],
            group.pel_ids[-1],
            [(n, k) for n, k in per if k],
        )

    def pending(
        self,
        group_name: bytes,
        start: StreamID = ZERO_ID,
        end: StreamID = MAX_ID,
        count: int = 10,
        *,
        consumer: bytes | None = None,
        min_idle_ms: int = 0,
        now_ms: int | None = None,
    ) -> list[tuple[StreamID, bytes, int, int]]:
        """XPENDING key group [IDLE ms] start end count [consumer].

        Returns ``(id, consumer, idle_ms, delivery_count)`` tuples in ID order.
        """
        group = self._group(group_name)
        if count <= 0:
            return []
        now = _now_ms() if now_ms is None else now_ms
        if consumer is not None:
            c = group.consumers.get(consumer)
            if c is None:
                return []
            ids = c.pending
        else:
            ids = group.pel_ids
        out = []
        for k in range(bisect_left(ids, start), len(ids)):
            sid = ids[k]
            if sid > end or len(out) >= count:
                break
            p = group.pel[sid]
            idle = now - p.delivery_time_ms
            if min_idle_ms and idle < min_idle_ms:
                continue
            out.append((sid, p.consumer, idle, p.delivery_count))
        return out

    # --- XINFO ---------------------------------------------------------------------

    def info(self) -> dict[str, object]:
        """XINFO STREAM (the non-FULL form) as an ordered dict of redis 7.0's fields.

        ``radix-tree-keys`` is our node count (it matches redis while node
        sizes do); ``radix-tree-nodes`` is a rough estimate (we keep no radix tree).
        """
        nodes = len(self._node_live)
        first = self.range(count=1)
        last = self.range(count=1, rev=True)
        return {
            "length": len(self._ids),
            "radix-tree-keys": nodes,
            "radix-tree-nodes": nodes + 1 if nodes else 1,
            "last-generated-id": self.last_id,
            "max-deleted-entry-id": self.max_deleted_id,
            "entries-added": self.entries_added,
            "recorded-first-entry-id": self.first_id,
            "groups": len(self.groups),
            "first-entry": first[0] if first else None,
            "last-entry": last[0] if last else None,
        }

    def groups_info(self) -> list[dict[str, object]]:
        """XINFO GROUPS: name, consumers, pending, last-delivered-id, entries-read, lag."""
        out = []
        for name in sorted(self.groups):
            g = self.groups[name]
            out.append(
                {
                    "name": name,
                    "consumers": len(g.consumers),
                    "pending": len(g.pel_ids),
                    "last-delivered-id": g.last_id,
                    "entries-read": None
                    if g.entries_read == INVALID_ENTRIES_READ
                    else g.entries_read,
                    "lag": self.lag(name),
                }
            )
        return out


def _entries_read(value: int | None) -> int:
    if value is None:
        return INVALID_ENTRIES_READ
    if value < 0 and value != INVALID_ENTRIES_READ:
        raise CommandError(ERR_ENTRIES_READ)
    return value


def _check_trim_args(
    maxlen: int | None, minid: StreamID | None, approx: bool, limit: int | None
) -> None:
    if maxlen is not None and minid is not None:
        raise CommandError(ERR_MAXLEN_MINID)
    if maxlen is not None and maxlen < 0:
        raise CommandError(ERR_MAXLEN)
    if limit is not None and not approx:
        raise CommandError(ERR_LIMIT_NEEDS_APPROX)
