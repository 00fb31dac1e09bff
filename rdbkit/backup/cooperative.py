"""Cooperative (forkless) capture: SCAN + DUMP + PEXPIRETIME/PTTL → a valid RDB.

The source never forks: every key is read with ``DUMP`` in small pipelined
batches, rate-limited by keys per second and/or by a latency budget, and the
payloads are framed into an RDB file as they arrive (``CooperativeDump`` is an
iterator of byte chunks, handed to the catalog as a shard stream).

Consistency: *fuzzy*. Each key is captured as of the moment its batch was
read; keys written during the scan appear in whichever state the scan met
them (or not at all if created behind the cursor); keys deleted before their
batch is read are skipped and counted (``stats.skipped_deleted``). The
capture carries :data:`CONSISTENCY` so a reader of the manifest knows.

RDB framing (../shared/RDB_FORMAT.md §11): a DUMP payload is ``type byte |
value | u16 version | u64 CRC``; the type byte and value are exactly what an
RDB entry of that version holds after the key. The header (magic, AUX,
function libraries) comes from the codec's ``Encoder.begin``. Per key:

- *raw path* (the payload's format family equals the target's — both REDIS or
  both VALKEY — and its version ≤ the target version, so the target reader
  knows every type byte the payload can hold): ``[SELECTDB] [EXPIRETIME_MS]
  type key value`` is written here, the value bytes straight from the DUMP
  reply (a large one as a memoryview: never copied);
- *transcode path* (anything else, e.g. a VALKEY 80 payload into REDIS 10):
  ``parse_dump_payload`` then ``Encoder(version=target).write`` — the encoder
  picks the target's encodings; a value the target cannot express raises the
  encoder's ``EncodeError`` naming the key, or with ``drop_unsupported=True``
  is dropped and listed in ``stats.dropped``.

The codec's Encoder has no raw-entry API, so the few framing bytes of the raw
path (SELECTDB, EXPIRETIME_MS, the key's length prefix, EOF, CRC64) are
written in this module (:func:`_length`); the CRC64 runs over every byte
emitted, including what the Encoder produced.

Duplicates: SCAN may return a key more than once (while the keyspace
rehashes); an RDB with a duplicate key is refused by Redis at load. So the
keys seen in the current db are remembered: keys of at most 16 bytes as
themselves, longer ones as a 16-byte BLAKE2b digest — about 90 bytes of
client memory per key of the db being scanned (≈ 0.9 GB for a 10 M-key db);
the set is dropped when the db is done. This is the one client-side cost that
grows with the keyspace.

Not captured: LRU idle / LFU counters (``OBJECT IDLETIME``/``FREQ`` would
cost a round of commands per key and DUMP itself touches the key), module
aux data, and keys that expire before they are read.
"""

from __future__ import annotations

import hashlib
import struct
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rdbkit.backup.connection import Connection, ReplyError
from rdbkit.backup.info import node_settings, parse_info, server_facts
from rdbkit.catalog.catalog import Capture, ShardInput
from rdbkit.catalog.manifest import SourceInfo
from rdbkit.codec import Encoder, crc64, encode_length, parse_dump_payload
from rdbkit.errors import CaptureError
from rdbkit.urls import RedisUrl

#: What a cooperative capture guarantees, recorded in the snapshot's manifest.
CONSISTENCY = "fuzzy: each key as of when it was read (cooperative SCAN+DUMP; no fork)"

#: Output is gathered into chunks of about this many bytes.
CHUNK_BYTES = 1 << 20
#: A DUMP value at least this big is yielded as a memoryview of the reply (no copy).
BIG_VALUE = 256 * 1024
#: Longest single sleep the latency governor takes after one slow batch (s).
MAX_BACKOFF_S = 1.0

_OP_EXPIRETIME_MS = 252
_OP_SELECTDB = 254
_OP_EOF = 255
_I64 = struct.Struct("<q")
_U64LE = struct.Struct("<Q")
_U16LE = struct.Struct("<H")
_DUMP_HEAD = b"*2\r\n$4\r\nDUMP\r\n"

#: Type byte → type name (RDB_FORMAT §4); bytes 22+ differ between the families.
_TYPE_NAMES = {
    0: "string", 1: "list", 2: "set", 3: "zset", 4: "hash", 5: "zset", 6: "module",
    7: "module", 9: "hash", 10: "list", 11: "set", 12: "zset", 13: "hash", 14: "list",
    15: "stream", 16: "hash", 17: "zset", 18: "list", 19: "stream", 20: "set", 21: "stream",
}
_REDIS_TYPE_NAMES = {22: "hash", 23: "hash", 24: "hash", 25: "hash", 26: "stream", 27: "stream"}
_VALKEY_TYPE_NAMES = {22: "hash"}


@dataclass
class CooperativeStats:
    """What a cooperative dump did (filled in while it runs)."""

    keys: int = 0  # entries written
    bytes: int = 0  # RDB bytes emitted
    skipped_deleted: int = 0  # DUMP answered nil: the key went away after SCAN saw it
    duplicates: int = 0  # keys SCAN returned again (ignored)
    batches: int = 0
    raw: int = 0  # entries written from the DUMP bytes as they are
    transcoded: int = 0  # entries parsed and re-encoded for the target version
    dropped: list[tuple[bytes | None, str]] = field(default_factory=list)
    by_type: dict[str, int] = field(default_factory=dict)
    dbs: list[int] = field(default_factory=list)
    functions: int = 0
    sleeps_s: float = 0.0  # total time slept by the rate limit and the latency governor
    rate_sleeps_s: float = 0.0  # part of sleeps_s due to max_ops_per_s
    budget_sleeps_s: float = 0.0  # part of sleeps_s due to latency_budget_ms
    batch_shrinks: int = 0  # times the latency governor halved the batch
    batch_min: int = 0  # smallest batch used
    batch_final: int = 0
    latency_p50_ms: float = 0.0  # round trip of the DUMP pipelines
    latency_p99_ms: float = 0.0
    latency_max_ms: float = 0.0
    elapsed_s: float = 0.0

    @property
    def keys_per_s(self) -> float:
        return self.keys / self.elapsed_s if self.elapsed_s > 0 else 0.0


def _percentile(values: array, q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[index]


class _Entry:
    """The attributes Encoder.write reads."""

    __slots__ = ("db", "key", "type", "value", "expire_ms", "idle", "freq", "field_expires")

    def __init__(self, db, key, type_name, value, expire_ms, field_expires):
        self.db = db
        self.key = key
        self.type = type_name
        self.value = value
        self.expire_ms = expire_ms
        self.idle = None
        self.freq = None
        self.field_expires = field_expires


class CooperativeDump:
    """Iterate to get a valid RDB (bytes chunks) built from SCAN + DUMP + PTTL, never forking the source.

    ``conn_factory`` makes the one connection used (opened when iteration
    starts, closed when it ends). ``source_rdb_version`` is the version the
    source writes (``server_facts(conn).rdb_version``); ``target_version``
    the version of the RDB produced (default: the source's). ``batch`` keys
    per SCAN COUNT and per DUMP pipeline (the latency governor may shrink it).
    ``max_ops_per_s`` caps keys read per second (a pacing token bucket with no
    burst beyond one batch). ``latency_budget_ms``: a batch whose round trip
    exceeds it halves the batch (down to 1) and sleeps for the overshoot
    (``rtt − budget``, at most ``MAX_BACKOFF_S``: the server gets back the time
    the batch took beyond budget); batches within budget grow it back by
    ``batch/16`` up to the initial size (AIMD). ``progress(keys)`` is called
    after each batch with the keys written so far. ``dbs`` limits the dbs read
    (default: the non-empty ones of ``INFO keyspace``). ``drop_unsupported``
    drops (and lists in ``stats.dropped``) values the target cannot express
    instead of raising EncodeError. ``functions``: capture function libraries
    (FUNCTION LIST WITHCODE; Redis 7+/Valkey).

    Chunks are ``bytes`` of about ``CHUNK_BYTES``, except that a DUMP value of
    ``BIG_VALUE`` bytes or more is yielded as a ``memoryview`` of the reply
    (bytes-like: the catalog, files and ``b"".join`` take it as is). Single
    use: iterate once.
    """

    def __init__(
        self,
        conn_factory: Callable[[], Connection],
        *,
        source_rdb_version: int,
        target_version: int | None = None,
        batch: int = 500,
        max_ops_per_s: float | None = None,
        latency_budget_ms: float | None = None,
        progress: Callable[[int], None] | None = None,
        dbs: list[int] | None = None,
        drop_unsupported: bool = False,
        functions: bool = True,
        aux: dict[str, str] | None = None,
    ) -> None:
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive int, got {batch!r}")
        if max_ops_per_s is not None and not max_ops_per_s > 0:
            raise ValueError(f"max_ops_per_s must be > 0, got {max_ops_per_s!r}")
        if latency_budget_ms is not None and not latency_budget_ms > 0:
            raise ValueError(f"latency_budget_ms must be > 0, got {latency_budget_ms!r}")
        self.conn_factory = conn_factory
        self.source_rdb_version = source_rdb_version
        self.target_version = source_rdb_version if target_version is None else target_version
        # Construct now so an impossible target fails before any I/O.
        self._encoder = Encoder(self.target_version, drop_unsupported=drop_unsupported)
        self._target_valkey = self._encoder.magic == "VALKEY"
        self.batch = batch
        self._max_batch = batch
        self.max_ops_per_s = max_ops_per_s
        self.latency_budget_ms = latency_budget_ms
        self.progress = progress
        self.dbs = None if dbs is None else list(dbs)
        self.functions = functions
        self.aux = aux
        self.stats = CooperativeStats(batch_min=batch, batch_final=batch)
        self._started = False
        self._crc = 0
        self._out = bytearray()
        self._db: int | None = None  # the db the output has selected
        self._pace = 0.0  # monotonic time the next batch may start (max_ops_per_s)
        self._rtts = array("d")

    # -- output ------------------------------------------------------------------

    def _put(self, data: bytes | bytearray | memoryview) -> Iterator[bytes | memoryview]:
        """Add ``data`` to the output; yield a chunk when enough has gathered."""
        if len(data) >= BIG_VALUE:
            yield from self._flush()
            self._crc = crc64(data, self._crc)
            self.stats.bytes += len(data)
            yield data
            return
        self._out += data
        if len(self._out) >= CHUNK_BYTES:
            yield from self._flush()

    def _flush(self) -> Iterator[bytes]:
        if self._out:
            chunk = bytes(self._out)
            self._out.clear()
            self._crc = crc64(chunk, self._crc)
            self.stats.bytes += len(chunk)
            yield chunk

    # -- the run -----------------------------------------------------------------

    def __iter__(self) -> Iterator[bytes]:
        if self._started:
            raise RuntimeError("a CooperativeDump can be iterated only once")
        self._started = True
        start = time.monotonic()
        conn = self.conn_factory()
        try:
            yield from self._run(conn)
        finally:
            conn.close()
            self.stats.elapsed_s = time.monotonic() - start
            self.stats.dropped = list(self._encoder.dropped)
            self.stats.latency_p50_ms = _percentile(self._rtts, 0.50)
            self.stats.latency_p99_ms = _percentile(self._rtts, 0.99)
            self.stats.latency_max_ms = max(self._rtts) if self._rtts else 0.0

    def _run(self, conn: Connection) -> Iterator[bytes]:
        facts = server_facts(conn)
        if facts.rdb_version != self.source_rdb_version:
            raise CaptureError(
                f"{conn} writes RDB {facts.rdb_version}, not the announced {self.source_rdb_version}"
            )
        has_pexpiretime = facts.engine == "valkey" or facts.version_tuple >= (7, 0)
        codes: list[bytes] = []
        if self.functions and (facts.engine == "valkey" or facts.version_tuple >= (7, 0)):
            codes = _function_codes(conn)
        aux = {"ctime": str(int(time.time())), "rdbkit-capture": "cooperative"}
        same_family = (facts.engine == "valkey") == self._target_valkey
        if same_family:
            aux["valkey-ver" if self._target_valkey else "redis-ver"] = facts.version
        aux.update(self.aux or {})
        yield from self._put(self._encoder.begin(aux=aux, functions=codes))
        self.stats.functions = len(codes) - sum(1 for k, _ in self._encoder.dropped if k is None)

        dbs = self.dbs if self.dbs is not None else _nonempty_dbs(conn)
        for db in dbs:
            self.stats.dbs.append(db)
            yield from self._scan_db(conn, db, has_pexpiretime)

        yield from self._put(bytes((_OP_EOF,)))
        yield from self._flush()
        if self.target_version >= 5:
            crc = self._crc
            self.stats.bytes += 8
            yield _U64LE.pack(crc)

    def _scan_db(self, conn: Connection, db: int, has_pexpiretime: bool) -> Iterator[bytes]:
        conn.call("SELECT", db)
        seen: set[bytes] = set()
        cursor = b"0"
        pending: list[bytes] = []
        while True:
            reply = conn.call("SCAN", cursor, "COUNT", self.batch)
            cursor = reply[0]
            for key in reply[1]:
                token = key if len(key) <= 16 else hashlib.blake2b(key, digest_size=16).digest()
                if token in seen:
                    self.stats.duplicates += 1
                    continue
                seen.add(token)
                pending.append(key)
            done = cursor in (b"0", 0, "0")
            while pending and (len(pending) >= self.batch or done):
                n = self.batch
                keys, pending = pending[:n], pending[n:]
                yield from self._dump_batch(conn, db, keys, has_pexpiretime)
            if done:
                break

    def _dump_batch(self, conn: Connection, db: int, keys: list[bytes], has_pexpiretime: bool) -> Iterator[bytes]:
        stats = self.stats
        if self.max_ops_per_s is not None:
            now = time.monotonic()
            allowed = max(self._pace, now)
            if allowed > now:
                time.sleep(allowed - now)
                stats.sleeps_s += allowed - now
                stats.rate_sleeps_s += allowed - now
            self._pace = allowed + len(keys) / self.max_ops_per_s
        ttl_cmd = "PEXPIRETIME" if has_pexpiretime else "PTTL"
        ttl_head = b"*2\r\n$%d\r\n%s\r\n" % (len(ttl_cmd), ttl_cmd.encode())
        commands = []  # RESP built here: encoding 2 commands per key is the hot loop
        for key in keys:
            arg = b"$%d\r\n%s\r\n" % (len(key), key)
            commands.append(ttl_head + arg)
            commands.append(_DUMP_HEAD + arg)
        sent_ms = time.time_ns() // 1_000_000
        t0 = time.monotonic()
        replies = conn.pipeline(commands)
        rtt = time.monotonic() - t0
        del commands
        stats.batches += 1
        self._rtts.append(rtt * 1000.0)
        for i, key in enumerate(keys):
            ttl, payload = replies[2 * i], replies[2 * i + 1]
            replies[2 * i + 1] = None  # the payload lives on only in ``payload``
            if isinstance(payload, ReplyError):
                raise CaptureError(f"DUMP {key!r} in db {db} failed: {payload}")
            if isinstance(ttl, ReplyError):
                raise CaptureError(f"{ttl_cmd} {key!r} in db {db} failed: {ttl}")
            if payload is None:
                stats.skipped_deleted += 1
                continue
            if ttl is None or ttl < 0:
                expire_ms = None  # -1: no expiry (-2 would mean gone, but DUMP found it)
            else:
                expire_ms = ttl if has_pexpiretime else sent_ms + ttl
            yield from self._entry(db, key, expire_ms, payload)
            del payload
        del replies
        if self.progress is not None:
            self.progress(stats.keys)
        if self.latency_budget_ms is not None:
            self._govern(rtt)

    def _govern(self, rtt: float) -> None:
        """AIMD on the batch size against the latency budget."""
        budget = self.latency_budget_ms / 1000.0
        stats = self.stats
        if rtt > budget:
            if self.batch > 1:
                self.batch = max(1, self.batch // 2)
                stats.batch_shrinks += 1
            pause = min(MAX_BACKOFF_S, rtt - budget)  # give back the overshoot
            time.sleep(pause)
            stats.sleeps_s += pause
            stats.budget_sleeps_s += pause
        elif self.batch < self._max_batch:
            self.batch = min(self._max_batch, self.batch + max(1, self._max_batch // 16))
        stats.batch_min = min(stats.batch_min, self.batch)
        stats.batch_final = self.batch

    def _entry(self, db: int, key: bytes, expire_ms: int | None, payload: bytes) -> Iterator[bytes]:
        n = len(payload)
        if n < 10:
            raise CaptureError(f"DUMP of {key!r} in db {db} is only {n} bytes")
        version = _U16LE.unpack_from(payload, n - 10)[0]
        valkey = version >= 80
        t = payload[0]
        if valkey == self._target_valkey and version <= self.target_version:
            crc = _U64LE.unpack_from(payload, n - 8)[0]
            view = memoryview(payload)
            if crc and crc64(view[: n - 8]) != crc:
                raise CaptureError(f"DUMP of {key!r} in db {db}: payload checksum mismatch")
            head = bytearray()
            if db != self._db:
                head += bytes((_OP_SELECTDB,)) + encode_length(db)
                self._db = db
            if expire_ms is not None:
                head += bytes((_OP_EXPIRETIME_MS,)) + _I64.pack(expire_ms)
            head.append(t)
            head += encode_length(len(key))
            head += key
            if n - 11 < BIG_VALUE:
                head += view[1 : n - 10]
                yield from self._put(head)
            else:
                yield from self._put(head)
                yield from self._put(view[1 : n - 10])
            names = _VALKEY_TYPE_NAMES if valkey else _REDIS_TYPE_NAMES
            type_name = _TYPE_NAMES.get(t) or names.get(t, f"type{t}")
            self.stats.raw += 1
        else:
            parsed = parse_dump_payload(payload)
            entry = _Entry(db, key, parsed.type, parsed.value, expire_ms, parsed.field_expires)
            del parsed
            before = len(self._encoder.dropped)
            data = self._encoder.write(entry)  # selects db itself when its own view differs
            if len(self._encoder.dropped) > before and not data:
                return
            if db != self._db:
                # The Encoder tracks its own current db; ours may differ after raw
                # entries. Make the output select ``db`` before the entry if the
                # encoder did not (its SELECTDB is at the start when present).
                if data[:1] != bytes((_OP_SELECTDB,)):
                    yield from self._put(bytes((_OP_SELECTDB,)) + encode_length(db))
                self._db = db
            yield from self._put(data)
            type_name = entry.type
            self.stats.transcoded += 1
        self.stats.keys += 1
        self.stats.by_type[type_name] = self.stats.by_type.get(type_name, 0) + 1


def _function_codes(conn: Connection) -> list[bytes]:
    try:
        libs = conn.call("FUNCTION", "LIST", "WITHCODE")
    except ReplyError:
        return []
    codes = []
    for lib in libs or ():
        if isinstance(lib, dict):
            fields = lib
        else:
            fields = dict(zip(lib[::2], lib[1::2]))
        code = fields.get(b"library_code") or fields.get("library_code")
        if code:
            codes.append(code)
    return codes


def _nonempty_dbs(conn: Connection) -> list[int]:
    """The dbs ``INFO keyspace`` lists (those holding at least one key), in order."""
    info = parse_info(conn.call("INFO", "keyspace"))
    dbs = []
    for name, value in info.items():
        if name.startswith("db") and name[2:].isdigit():
            fields = dict(p.split("=", 1) for p in value.split(",") if "=" in p)
            if int(fields.get("keys", "0")) > 0:
                dbs.append(int(name[2:]))
    return sorted(dbs)


def capture_cooperative(url: RedisUrl, **options: Any) -> Capture:
    """A Capture of the node at ``url`` by SCAN + DUMP (no fork); see CooperativeDump.

    ``options`` go to CooperativeDump (``target_version``, ``batch``,
    ``max_ops_per_s``, ``latency_budget_ms``, ``progress``, ``dbs``,
    ``drop_unsupported``, ...), except ``connection_options`` (a dict for
    ``Connection.from_url``). The node is asked for its facts now; the data
    is read when the catalog consumes the shard stream. The dump object is
    ``capture.shards[0].data`` (its ``stats`` are complete after the run).
    """
    conn_options = options.pop("connection_options", None) or {}

    def factory() -> Connection:
        return Connection.from_url(url, **conn_options)

    with factory() as conn:
        facts = server_facts(conn)
        settings = node_settings(conn)
    if facts.cluster_enabled:
        raise CaptureError(f"{url} is a cluster node: capture each shard (redis+cluster://) instead")
    dump = CooperativeDump(factory, source_rdb_version=facts.rdb_version, **options)
    source = SourceInfo(url=str(url), engine=facts.engine, engine_version=facts.version,
                        settings=settings)
    return Capture(source=source, shards=[ShardInput(data=dump)], consistency=CONSISTENCY)
