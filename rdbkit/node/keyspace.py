"""The node's data: numbered databases of key -> value with absolute-ms expiry.

A value is ``bytes`` for a string. Other types are objects with a
``type_name`` attribute (``"list"``, ``"hash"``, ...) and a ``to_model()``
method giving the codec's value model; until the node has its own container
for a type, a value of that type read from an RDB or a RESTORE payload is an
``OpaqueValue`` that keeps the decoded model as it came, so SAVE and DUMP
write it back unchanged. ``from_model`` is the one place that turns a model
value into a node value (later containers register there).

Expiry is lazy (every lookup drops an expired key first) and active:
``Keyspace.expire_cycle`` deletes keys whose time has passed, a bounded
number per call, from a heap of (expire_at_ms, key) kept beside each
database's ``expires`` dict. Heap items are hints: one whose time no longer
matches ``expires`` is skipped, and the heap is rebuilt when stale items
outnumber live ones.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator
from dataclasses import dataclass

from rdbkit.node.resp import ErrorReply

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"

#: Keys examined per database per active-expiry call (redis: 20 per loop).
ACTIVE_EXPIRE_KEYS_PER_LOOP = 20


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(eq=True)
class OpaqueValue:
    """A value of a type the node cannot operate on yet, kept as the codec model.

    ``encoding`` is the RDB encoding it was read with (for OBJECT ENCODING).
    """

    type_name: str
    model: object
    field_expires: dict | None = None
    encoding: str = ""

    def to_model(self) -> object:
        return self.model


def type_name(value: object) -> str:
    """The TYPE of a node value."""
    if type(value) is bytes:
        return "string"
    return value.type_name  # type: ignore[attr-defined]


def to_model(value: object) -> tuple[str, object, dict | None]:
    """(type name, codec model value, field expires) for SAVE and DUMP."""
    if type(value) is bytes:
        return "string", value, None
    return value.type_name, value.to_model(), getattr(value, "field_expires", None)  # type: ignore[attr-defined]


def from_model(type_name_: str, model: object, field_expires: dict | None = None,
               encoding: str = "") -> object:
    """A node value from a codec model value (RDB load, RESTORE)."""
    if type_name_ == "string":
        return bytes(model)  # type: ignore[arg-type]
    return OpaqueValue(type_name_, model, field_expires or None, encoding)


_RDB_TO_OBJECT_ENCODING = {
    "quicklist": "quicklist", "quicklist2": "quicklist", "linkedlist": "quicklist",
    "ziplist": "listpack", "zipmap": "listpack", "listpack": "listpack",
    "listpack_ex": "listpack", "intset": "intset", "hashtable": "hashtable",
    "skiplist": "skiplist", "stream": "stream", "module": "raw",
}


def object_encoding(value: object) -> str:
    """What OBJECT ENCODING says for a value (redis 7.0 names)."""
    if type(value) is bytes:
        if len(value) <= 20 and is_canonical_int(value):
            return "int"
        return "embstr" if len(value) <= 44 else "raw"
    if isinstance(value, OpaqueValue):
        return _RDB_TO_OBJECT_ENCODING.get(value.encoding, "raw")
    return value.object_encoding()  # type: ignore[attr-defined]


def is_canonical_int(data: bytes) -> bool:
    """True if ``data`` is the canonical decimal text of an int64."""
    if not data or len(data) > 20:
        return False
    body = data[1:] if data[:1] == b"-" else data
    if not body.isdigit() or (body[:1] == b"0" and (len(body) > 1 or data[:1] == b"-")):
        return False
    return -(2**63) <= int(data) < 2**63


class Database:
    """One numbered database: ``data`` (key -> value) and ``expires`` (key -> ms).

    Every change goes through a method here, which counts it in the owning
    keyspace's ``dirty`` and tells WATCHing clients (``touch``).
    """

    __slots__ = ("index", "data", "expires", "_heap", "_keyspace", "watched")

    def __init__(self, index: int, keyspace: Keyspace) -> None:
        self.index = index
        self.data: dict[bytes, object] = {}
        self.expires: dict[bytes, int] = {}
        self._heap: list[tuple[int, bytes]] = []
        self._keyspace = keyspace
        self.watched: dict[bytes, set] = {}

    def __len__(self) -> int:
        return len(self.data)

    # -- reading ---------------------------------------------------------------

    def get(self, key: bytes) -> object | None:
        """The live value of ``key`` (dropping it first if it has expired)."""
        if key in self.expires and self.expires[key] <= now_ms():
            self._expire(key)
            return None
        return self.data.get(key)

    def get_typed(self, key: bytes, kind: str) -> object | None:
        """Like get, but a value of another type raises WRONGTYPE."""
        value = self.get(key)
        if value is not None and type_name(value) != kind:
            raise ErrorReply(WRONGTYPE)
        return value

    def exists(self, key: bytes) -> bool:
        return self.get(key) is not None

    def ttl_ms(self, key: bytes) -> int | None:
        """Absolute expiry of a live key, None if it has none."""
        return self.expires.get(key)

    def keys(self) -> Iterator[bytes]:
        """Every live key (expired ones are skipped and dropped afterwards)."""
        now = now_ms()
        expired = []
        for key in self.data:
            at = self.expires.get(key)
            if at is not None and at <= now:
                expired.append(key)
                continue
            yield key
        for key in expired:
            if key in self.expires and self.expires[key] <= now:
                self._expire(key)

    # -- writing ---------------------------------------------------------------

    def set(self, key: bytes, value: object, expire_at_ms: int | None = None,
            keep_ttl: bool = False) -> None:
        """Store ``value``; the old TTL goes unless ``keep_ttl``."""
        self.data[key] = value
        if expire_at_ms is not None:
            self.set_expire(key, expire_at_ms, _touch=False)
        elif not keep_ttl:
            self.expires.pop(key, None)
        self._changed(key)

    def replace_value(self, key: bytes, value: object) -> None:
        """Change a key's value in place, keeping its TTL (APPEND, INCR...)."""
        self.data[key] = value
        self._changed(key)

    def delete(self, key: bytes) -> bool:
        if key in self.expires and self.expires[key] <= now_ms():
            self._expire(key)
            return False
        if key not in self.data:
            return False
        del self.data[key]
        self.expires.pop(key, None)
        self._changed(key)
        return True

    def set_expire(self, key: bytes, at_ms: int, _touch: bool = True) -> None:
        self.expires[key] = at_ms
        heapq.heappush(self._heap, (at_ms, key))
        if len(self._heap) > 2 * len(self.expires) + 1024:
            self._heap = [(at, k) for k, at in self.expires.items()]
            heapq.heapify(self._heap)
        if _touch:
            self._changed(key)

    def persist(self, key: bytes) -> bool:
        if self.expires.pop(key, None) is None:
            return False
        self._changed(key)
        return True

    def flush(self) -> int:
        n = len(self.data)
        for key in list(self.watched):
            if key in self.data:
                self.touch(key)
        self.data = {}
        self.expires = {}
        self._heap = []
        self._keyspace.dirty += n
        return n

    def touch(self, key: bytes) -> None:
        """Tell clients WATCHing ``key`` that it changed."""
        clients = self.watched.get(key)
        if clients:
            for client in clients:
                client.watch_dirty = True

    def _changed(self, key: bytes) -> None:
        self._keyspace.dirty += 1
        if self.watched:
            self.touch(key)

    def _expire(self, key: bytes) -> None:
        del self.data[key]
        del self.expires[key]
        self._keyspace.expired_keys += 1
        self._changed(key)

    def expire_some(self, now: int, budget: int) -> int:
        """Delete up to ``budget`` keys whose time has passed; returns how many."""
        heap = self._heap
        done = 0
        while heap and done < budget and heap[0][0] <= now:
            at, key = heapq.heappop(heap)
            if self.expires.get(key) == at:
                self._expire(key)
                done += 1
        return done


class Keyspace:
    """All databases of a node, plus the counters INFO reports."""

    def __init__(self, databases: int = 16) -> None:
        if databases < 1:
            raise ValueError("databases must be at least 1")
        self.dbs = [Database(i, self) for i in range(databases)]
        self.dirty = 0  # changes since the last successful save
        self.expired_keys = 0

    def __len__(self) -> int:
        return len(self.dbs)

    def __getitem__(self, index: int) -> Database:
        return self.dbs[index]

    def flushall(self) -> int:
        return sum(db.flush() for db in self.dbs)

    def expire_cycle(self, max_keys: int = 2000, now: int | None = None) -> int:
        """One active-expiry pass over every database; at most ``max_keys`` deletions."""
        now = now_ms() if now is None else now
        total = 0
        for db in self.dbs:
            if db._heap:
                total += db.expire_some(now, max_keys - total)
                if total >= max_keys:
                    break
        return total
