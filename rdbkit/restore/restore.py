"""Restore into a running node: pipelined ``RESTORE key ttl payload ABSTTL ...``.

Each entry becomes one DUMP payload built by the codec for the RDB version the
target reads (``server_facts(conn).rdb_version`` unless ``target_version`` is
given; an RDB version newer than the encoder writes is clamped to the newest
it does write, which the target also reads), then::

    RESTORE key <expire_ms or 0> <payload> ABSTTL [IDLETIME s | FREQ f] [REPLACE]

- ABSTTL: the TTL is the absolute expiry in ms (0 = none). A key already
  expired when it is reached is skipped and counted (``report.expired``).
  Targets older than Redis 5.0 (no ABSTTL) get a relative TTL instead.
- IDLETIME / FREQ: the server accepts only one of them per command and keeps
  the one its ``maxmemory-policy`` uses, so FREQ is sent to an LFU target
  (when the entry has a frequency), IDLETIME to any other (when the entry has
  an idle time); the other hint is dropped. If ``CONFIG GET`` is refused
  (renamed CONFIG) neither is sent.
- REPLACE only with ``replace=True``. Without it an existing key makes the
  server answer BUSYKEY: the restore stops and raises :class:`BusyKeyError`
  (a RestoreError) whose ``written`` is ``{db: keys written}`` — exact, since
  every RESTORE reply is counted — with ``key``/``db`` of the failing key and
  ``report`` (the partial RestoreReport). Nothing existing is overwritten.
  Batches already in flight complete (and are counted); nothing more is sent.
- ``flush=True`` sends FLUSHALL first — only then; it does not touch function
  libraries (see below).

Concurrency: ``connections`` connections, each its own :class:`Connection`,
driven from the caller's thread (see :class:`_Lanes` for why not threads):
entries are cut into batches (at most ``batch`` entries of one db) dealt
round-robin; a batch's connection SELECTs its db when it differs from the
connection's current one; every connection keeps up to two batches in flight
(the next is written before the previous one's replies are read). Memory is
bounded by ``2 × connections × batch`` entries.

Functions (Redis 7.0+/Valkey libraries, ``Decoder.functions``; an Entry has
none): loaded before any key with ``FUNCTION LOAD [REPLACE] code`` — the
library code is what the RDB stores, so FUNCTION RESTORE (which wants a
FUNCTION DUMP payload) is not needed. REPLACE is sent with ``replace=True``
or ``flush=True``; otherwise a library that already exists stops the restore
with a RestoreError before any key is written. A target without FUNCTION
(Redis < 7.0) follows ``unsupported``.

Features the target's RDB version cannot express (hash field TTLs below RDB
12, streams below 9, module values ...; the encoder's EncodeError):
``unsupported="error"`` (default) stops with a RestoreError at that key (what
was written so far is reported). ``unsupported="drop"`` does what
``Encoder(drop_unsupported=True)`` does: a hash loses its field TTLs (the
fields then never expire) but is restored; a key whose type the version
cannot hold (a stream below 9, a module value) is skipped and counted in
``keys_skipped``. Either way it is listed in ``report.unsupported`` and
``report.errors``. Functions on a target without FUNCTION: dropped likewise.

Cluster targets (``cluster_enabled``): entries outside db 0 are refused;
:func:`restore_snapshot` checks the manifest's dbs before writing anything.
Keys are not routed to slot owners here: a node that does not own a key's
slot answers MOVED, which stops the restore.

:func:`restore_snapshot` and verification: the catalog verifies a shard's
size and sha256 only at EOF of the stream. With ``verify_first=True``
(default) every shard is first fetched (``Catalog.fetch``) into a temporary
directory (``spool_dir``, default the system temp dir) and verified, and only
then decoded and restored — a corrupt snapshot is refused before the target
is touched, at the cost of local disk space for the uncompressed RDB and one
extra full read before the first RESTORE. With ``verify_first=False`` the
shard streams straight from the store into the target (no disk, restore
starts at once), but a checksum mismatch surfaces only at EOF, after every
key was decoded: it is then raised as a RestoreError carrying exactly what was
written (its ``__cause__`` is the SnapshotChecksumError, or the decoder's
ChecksumError when the damage is in the RDB's own CRC64). Everything already
sent stays on the target (the last partial batch, at most ``batch`` entries,
is not sent) — ``written`` tells exactly what landed.
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdbkit.backup.connection import Connection, ReplyError, command
from rdbkit.backup.info import ServerFacts, server_facts
from rdbkit.codec import Decoder, dump_payload
from rdbkit.errors import EncodeError, RdbkitError, RestoreError
from rdbkit.restore.raw import RawEntries, RawEntry
from rdbkit.urls import RedisClusterUrl, RedisUrl, parse_url

#: The newest DUMP payload version the codec writes, per magic.
MAX_REDIS_PAYLOAD = 12
VALKEY_PAYLOAD = 80

Progress = Callable[["RestoreReport"], None]


@dataclass
class RestoreReport:
    """What a restore did. ``dbs`` is {db: keys written}."""

    keys_written: int = 0
    keys_skipped: int = 0
    dbs: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    #: keys skipped because their expiry had passed
    expired: int = 0
    #: (db, key, reason): features dropped or keys left out with unsupported="drop"
    unsupported: list[tuple[int, bytes, str]] = field(default_factory=list)
    #: function libraries loaded
    functions: int = 0
    #: the RDB version of the payloads sent
    payload_version: int | None = None
    target: str = ""
    flushed: bool = False
    #: RESTORE command bytes sent
    bytes_sent: int = 0

    @property
    def keys_per_second(self) -> float:
        return self.keys_written / self.seconds if self.seconds > 0 else 0.0


class BusyKeyError(RestoreError):
    """RESTORE without replace met an existing key (``db``, ``key``); nothing was overwritten."""

    def __init__(self, message: str, *, written: dict, db: int, key: bytes, report: RestoreReport):
        super().__init__(message, written=written)
        self.db = db
        self.key = key
        self.report = report


class _NoFieldTTL:
    """An entry seen without its hash field TTLs (unsupported="drop")."""

    __slots__ = ("_entry",)

    def __init__(self, entry: Any) -> None:
        self._entry = entry

    def __getattr__(self, name: str) -> Any:
        return None if name == "field_expires" else getattr(self._entry, name)


def _fail(message: str, report: RestoreReport, *, cause: BaseException | None = None,
          db: int | None = None, key: bytes | None = None) -> RestoreError:
    exc = RestoreError(message, written=dict(report.dbs))
    exc.report = report  # type: ignore[attr-defined]
    exc.db = db  # type: ignore[attr-defined]
    exc.key = key  # type: ignore[attr-defined]
    if cause is not None:
        exc.__cause__ = cause
    return exc


def _target_url(target: RedisUrl | str) -> RedisUrl:
    if isinstance(target, str):
        target = parse_url(target)  # type: ignore[assignment]
    if isinstance(target, RedisClusterUrl):
        raise RestoreError(
            f"{target} is a cluster URL: restoring into a cluster (routing keys to slot "
            "owners) is not what restore_entries does; give one node's redis:// URL"
        )
    if not isinstance(target, RedisUrl):
        raise RestoreError(f"{target} is not a redis:// target")
    return target


def payload_version_for(facts: ServerFacts) -> int:
    """The DUMP payload version to send ``facts``' server (clamped to what the codec writes)."""
    return _clamp_version(facts.rdb_version)


def _clamp_version(version: int) -> int:
    if version >= VALKEY_PAYLOAD:
        return VALKEY_PAYLOAD
    return min(version, MAX_REDIS_PAYLOAD)


def _lru_mode(conn: Connection) -> str | None:
    """"freq" for an LFU target, "idle" for any other, None if CONFIG is refused."""
    try:
        reply = conn.call("CONFIG", "GET", "maxmemory-policy")
    except ReplyError:
        return None
    if isinstance(reply, dict):
        policy = next(iter(reply.values()), b"")
    elif isinstance(reply, list) and len(reply) >= 2:
        policy = reply[1]
    else:
        return None
    if isinstance(policy, bytes):
        policy = policy.decode("ascii", "replace")
    return "freq" if "lfu" in str(policy).lower() else "idle"


class _Plan:
    """Everything a worker needs to turn entries into RESTORE commands."""

    def __init__(self, version: int, replace: bool, lru: str | None, absttl: bool,
                 unsupported: str, cluster: bool, raw: bool = True) -> None:
        self.version = version
        self.raw = raw  # False: a RawEntry is an error (the caller asked for re-encoding)
        self.replace = replace
        self.lru = lru
        self.absttl = absttl
        self.unsupported = unsupported
        self.cluster = cluster

    def restore_command(self, entry: Any, now_ms: int) -> bytes:
        """RESP for one entry; EncodeError when the version cannot express it. A RawEntry
        (rdbkit.restore.raw: payload cut from the RDB, source version) is sent as it is."""
        if type(entry) is RawEntry:
            if not self.raw:
                raise ValueError(f"raw=False but key {entry.key!r} is a RawEntry (no value to "
                                 "encode)")
            payload = entry.payload
        else:
            payload = dump_payload(entry.type, entry.value, self.version,
                                   field_expires=entry.field_expires)
        # The bytes command(b"RESTORE", key, ttl, payload, ...) gives, formatted in one go.
        key = entry.key
        n = 4
        expire = entry.expire_ms
        absttl = b""
        if expire is None:
            ttl = b"0"
        elif self.absttl:
            ttl = b"%d" % expire
            absttl = b"$6\r\nABSTTL\r\n"
            n += 1
        else:
            ttl = b"%d" % max(1, expire - now_ms)
        hint = b""
        if self.lru == "idle" and entry.idle is not None:
            value = b"%d" % entry.idle
            hint = b"$8\r\nIDLETIME\r\n$%d\r\n%b\r\n" % (len(value), value)
            n += 2
        elif self.lru == "freq" and entry.freq is not None:
            value = b"%d" % entry.freq
            hint = b"$4\r\nFREQ\r\n$%d\r\n%b\r\n" % (len(value), value)
            n += 2
        replace = b""
        if self.replace:
            replace = b"$7\r\nREPLACE\r\n"
            n += 1
        return b"*%d\r\n$7\r\nRESTORE\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n%b%b%b" % (
            n, len(key), key, len(ttl), ttl, len(payload), payload, absttl, hint, replace)


def restore_command(entry: Any, version: int, *, replace: bool = False, lru: str | None = "idle",
                    absttl: bool = True, now_ms: int | None = None) -> bytes:
    """The RESP ``RESTORE`` command restore_entries sends for ``entry`` (EncodeError if the
    payload version cannot express it); ``lru`` is "idle", "freq" or None (see above)."""
    plan = _Plan(_clamp_version(version), replace, lru, absttl, "error", False)
    return plan.restore_command(entry, time.time_ns() // 1_000_000 if now_ms is None else now_ms)


class _Run:
    """Shared state of one restore: the report and the first fatal error."""

    def __init__(self, report: RestoreReport, progress: Progress | None) -> None:
        self.report = report
        self.lock = threading.Lock()  # the report may be read by a progress callback's thread
        self.failure: BaseException | None = None
        self.progress = progress

    def fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc


@dataclass
class _Sent:
    """One batch on the wire, its replies not read yet."""

    db: int
    select: bool
    entries: list
    commands: int
    nbytes: int
    expired: int
    skipped: list
    dropped: list
    refusal: RestoreError | None


def _send(conn: Connection, state: dict, db: int, entries: list, plan: _Plan, run: _Run,
          url: RedisUrl) -> _Sent:
    """Build one batch's RESTORE commands (SELECT first if needed) and write them."""
    now_ms = time.time_ns() // 1_000_000
    cmds: list[bytes] = []
    sent: list[Any] = []
    skipped: list[tuple[int, bytes, str]] = []
    dropped: list[tuple[int, bytes, str]] = []
    expired = 0
    refusal: RestoreError | None = None
    for entry in entries:
        if entry.expire_ms is not None and entry.expire_ms <= now_ms:
            expired += 1
            continue
        try:
            cmds.append(plan.restore_command(entry, now_ms))
        except EncodeError as exc:
            if plan.unsupported == "drop":
                if entry.field_expires:  # like Encoder(drop_unsupported=True): keep the hash
                    try:
                        cmds.append(plan.restore_command(_NoFieldTTL(entry), now_ms))
                    except EncodeError:
                        pass
                    else:
                        dropped.append((db, entry.key, f"hash field TTLs dropped: {exc}"))
                        sent.append(entry)
                        continue
                skipped.append((db, entry.key, str(exc)))
                continue
            refusal = _fail(
                f"cannot restore key {entry.key!r} (db {db}) into a target reading RDB "
                f"{plan.version}: {exc}; pass unsupported='drop' to leave such features out",
                run.report, cause=exc, db=db, key=entry.key)
            break  # send what came before it, then stop
        sent.append(entry)
    select = bool(cmds) and db != state["db"]
    if select:
        cmds.insert(0, command("SELECT", db))
        state["db"] = db  # checked when the replies are read
    nbytes = sum(len(c) for c in cmds)
    if cmds:
        conn.send(b"".join(cmds))
    return _Sent(db, select, sent, len(cmds), nbytes, expired, skipped, dropped, refusal)


def _collect(conn: Connection, batch: _Sent, run: _Run, url: RedisUrl,
             redirect: Callable[[Any, ReplyError], None] | None = None) -> None:
    """Read one sent batch's replies; count what the server accepted; raise on a refusal.

    With ``redirect``, an entry answered MOVED or ASK (a cluster node that does not
    serve its slot) is handed to ``redirect(entry, reply)`` and counted neither as
    written nor as failed."""
    replies = [conn.read_reply() for _ in range(batch.commands)]
    db = batch.db
    if batch.select:
        select_reply = replies.pop(0)
        if isinstance(select_reply, ReplyError):
            raise _fail(f"SELECT {db} failed on {url}: {select_reply}", run.report,
                        cause=select_reply, db=db)
    ok = 0
    first_error: tuple[Any, ReplyError] | None = None
    for entry, reply in zip(batch.entries, replies):
        if isinstance(reply, ReplyError):
            if redirect is not None and reply.code in ("MOVED", "ASK"):
                redirect(entry, reply)
            elif first_error is None:
                first_error = (entry, reply)
        else:
            ok += 1
    with run.lock:
        report = run.report
        report.keys_written += ok
        if ok:
            report.dbs[db] = report.dbs.get(db, 0) + ok
        report.expired += batch.expired
        report.keys_skipped += batch.expired + len(batch.skipped)
        report.bytes_sent += batch.nbytes
        for sdb, skey, why in batch.dropped:
            report.unsupported.append((sdb, skey, why))
            report.errors.append(f"key {skey!r} (db {sdb}): {why}")
        for sdb, skey, why in batch.skipped:
            report.unsupported.append((sdb, skey, why))
            report.errors.append(f"skipped key {skey!r} (db {sdb}): {why}")
    if first_error is not None:
        entry, reply = first_error
        if reply.code == "BUSYKEY":
            raise BusyKeyError(
                f"key {entry.key!r} already exists in db {db} of {url} and replace is off; "
                "stopped (nothing existing was overwritten)",
                written=dict(run.report.dbs), db=db, key=entry.key, report=run.report)
        raise _fail(f"RESTORE {entry.key!r} (db {db}) failed on {url}: {reply}", run.report,
                    cause=reply, db=db, key=entry.key)
    if batch.refusal is not None:
        raise batch.refusal
    if run.progress is not None:
        run.progress(run.report)


class _Lanes:
    """``connections`` connections driven from the caller's thread, batches dealt round-robin.

    Each connection has at most two batches in flight: batch N+1 is written
    before batch N's replies are read, so the server executes while Python
    decodes and encodes the next one. One thread drives them all (no GIL
    contention between a decoding producer and encoding workers: measured on
    a 2-CPU box, 200k keys, threads took 3.6 s with 1 connection and 5.1 s with
    4, this loop 2.9 s); several connections still overlap round trips to a
    distant target.
    """

    def __init__(self, url: RedisUrl, count: int, timeout: float, plan: _Plan, run: _Run) -> None:
        self.url = url
        self.plan = plan
        self.run = run
        self.conns: list[Connection | None] = []
        try:
            for _ in range(count):
                self.conns.append(Connection.from_url(url, timeout=timeout,
                                                      client_name="rdbkit-restore"))
        except BaseException:
            self.close()
            raise
        self.states = [{"db": url.db} for _ in range(count)]
        self.pending: list[_Sent | None] = [None] * count
        self.turn = 0

    def dispatch(self, db: int, entries: list) -> None:
        """Send one batch; read the replies of that connection's previous batch."""
        i = self.turn % len(self.conns)
        self.turn += 1
        conn = self.conns[i]
        if conn is None:
            return
        try:
            batch = _send(conn, self.states[i], db, entries, self.plan, self.run, self.url)
        except BaseException as exc:  # noqa: BLE001 - a failed write: the connection is unusable
            self.run.fail(exc)
            self._drop(i)
            return
        if batch.refusal is not None:
            self.run.fail(batch.refusal)  # stop now; counts settle in finish()
        previous, self.pending[i] = self.pending[i], batch
        if previous is not None:
            self._collect(i, previous)

    def _collect(self, i: int, batch: _Sent) -> None:
        conn = self.conns[i]
        if conn is None:
            return
        try:
            _collect(conn, batch, self.run, self.url)
        except ReplyError as exc:  # pragma: no cover - _collect turns replies into RestoreError
            self.run.fail(exc)
        except RestoreError as exc:
            self.run.fail(exc)
        except BaseException as exc:  # noqa: BLE001 - lost connection, protocol error
            self.run.fail(exc)
            self._drop(i)

    def _drop(self, i: int) -> None:
        conn, self.conns[i], self.pending[i] = self.conns[i], None, None
        if conn is not None:
            conn.close()

    def finish(self) -> None:
        """Read every batch still in flight (also after a failure, so ``written`` is exact)."""
        for i, batch in enumerate(self.pending):
            if batch is not None:
                self.pending[i] = None
                self._collect(i, batch)

    def close(self) -> None:
        for conn in self.conns:
            if conn is not None:
                conn.close()


def load_functions(conn: Connection, functions: Sequence[bytes], *, replace: bool,
                   facts: ServerFacts, unsupported: str, report: RestoreReport) -> None:
    """FUNCTION LOAD [REPLACE] each library; RestoreError on refusal (see module docstring)."""
    if not functions:
        return
    if facts.version_tuple[:1] < (7,) and facts.engine == "redis":
        why = (f"the snapshot holds {len(functions)} function librar(y/ies) and {facts.engine} "
               f"{facts.version} has no FUNCTION command")
        if unsupported == "drop":
            report.errors.append(f"functions dropped: {why}")
            return
        raise _fail(why + "; pass unsupported='drop' to restore the keys without them", report)
    for code in functions:
        args = ["FUNCTION", "LOAD"] + (["REPLACE"] if replace else []) + [code]
        try:
            conn.call(*args)
        except ReplyError as exc:
            name = code.split(b"\n", 1)[0][:80]
            hint = "" if replace else " (pass replace=True to replace an existing library)"
            raise _fail(f"FUNCTION LOAD of library {name!r} failed: {exc}{hint}", report,
                        cause=exc) from exc
        report.functions += 1


def restore_entries(
    entries: Iterable[Any],
    target: RedisUrl | str,
    *,
    target_version: int | None = None,
    replace: bool = False,
    flush: bool = False,
    connections: int = 4,
    batch: int = 256,
    progress: Progress | None = None,
    timeout: float = 120.0,
    functions: Sequence[bytes] | Callable[[], Sequence[bytes]] = (),
    unsupported: str = "error",
    raw: bool | None = None,
    _facts: ServerFacts | None = None,
) -> RestoreReport:
    """RESTORE every entry into ``target`` (one node); see the module docstring.

    ``functions`` is library code to FUNCTION LOAD before the first key, or a
    callable returning it, called after the first entry was pulled (a decoder
    knows its functions only once the header is read). ``progress`` is called
    with the live report after each batch.

    An entry that is a :class:`~rdbkit.restore.raw.RawEntry` (from
    ``raw_entries``) is sent with its own payload (the source's RDB version),
    every other entry is encoded for the target's version. ``raw`` is
    :func:`restore_snapshot`'s choice of how to read a fetched shard
    (``verify_first=True``): None = cut DUMP payloads straight from the file
    when the target reads its magic/version as-is (``raw.raw_allowed``),
    True = always (needs verify_first), False = never (decode + encode); see
    rdbkit/restore/raw.py. With ``raw=False`` a RawEntry here stops the restore (a
    RestoreError whose cause is a ValueError).
    """
    if connections < 1 or batch < 1:
        raise ValueError("connections and batch must be at least 1")
    if unsupported not in ("error", "drop"):
        raise ValueError("unsupported must be 'error' or 'drop'")
    if raw not in (None, True, False):
        raise ValueError("raw must be None, True or False")
    url = _target_url(target)
    started = time.monotonic()
    report = RestoreReport(target=str(url))
    run = _Run(report, progress)
    iterator: Iterator[Any] = iter(entries)
    with Connection.from_url(url, timeout=timeout, client_name="rdbkit-restore") as conn:
        facts = _facts or server_facts(conn)
        version = _clamp_version(target_version if target_version is not None
                                 else facts.rdb_version)
        report.payload_version = version
        lru = _lru_mode(conn)
        absttl = facts.engine == "valkey" or facts.version_tuple[:2] >= (5, 0)
        plan = _Plan(version, replace, lru, absttl, unsupported, facts.cluster_enabled,
                     raw is not False)
        # Pull the first entry before writing anything: a decoder reads its
        # header and function records (and fails on a bad file) on that pull.
        first = list(itertools.islice(iterator, 1))
        if facts.cluster_enabled and first and first[0].db != 0:
            raise _fail(f"{url} is a cluster node (db 0 only) and the data has keys in db "
                        f"{first[0].db}", report)
        libs = functions() if callable(functions) else functions
        lanes = _Lanes(url, connections, timeout, plan, run)  # all connected before any write
        try:
            if flush:
                conn.call("FLUSHALL")
                report.flushed = True
            load_functions(conn, list(libs), replace=replace or flush, facts=facts,
                           unsupported=unsupported, report=report)
        except BaseException:
            lanes.close()
            raise
    producer_error: BaseException | None = None
    try:
        chunk: list = []
        chunk_db = 0
        for entry in itertools.chain(first, iterator):
            if run.failure is not None:
                break
            if facts.cluster_enabled and entry.db != 0:
                run.fail(_fail(f"{url} is a cluster node (db 0 only) and the data has key "
                               f"{entry.key!r} in db {entry.db}", report, db=entry.db,
                               key=entry.key))
                break
            if entry.db != chunk_db or len(chunk) >= batch:
                if chunk:
                    lanes.dispatch(chunk_db, chunk)
                chunk, chunk_db = [], entry.db
            chunk.append(entry)
        if chunk and run.failure is None:
            lanes.dispatch(chunk_db, chunk)
    except BaseException as exc:  # the source failed (decode / checksum error, ...)
        producer_error = exc
    finally:
        try:
            lanes.finish()
        finally:
            lanes.close()
    report.seconds = time.monotonic() - started
    return conclude(run, producer_error, url)


def conclude(run: _Run, producer_error: BaseException | None, where: object) -> RestoreReport:
    """The report of a finished restore, or the error that ended it with ``written`` exact.

    A failure on the target wins over a failure of the source (decode,
    checksum), which is reported with how many keys were written before it.
    """
    report = run.report
    if run.failure is not None:
        failure = run.failure
        if isinstance(failure, RestoreError):
            failure.written = dict(report.dbs)
            raise failure
        raise _fail(f"restore into {where} failed: {failure}", report, cause=failure) from failure
    if producer_error is not None:
        if isinstance(producer_error, RdbkitError):
            raise _fail(f"reading the data to restore failed after {report.keys_written} keys "
                        f"were written: {producer_error}", report,
                        cause=producer_error) from producer_error
        raise producer_error
    return report


def restore_snapshot(
    catalog: Any,
    name: str,
    target: RedisUrl | str,
    *,
    account: str | None = None,
    verify_first: bool = True,
    spool_dir: str | Path | None = None,
    **options: Any,
) -> RestoreReport:
    """Restore every shard of snapshot ``name`` from ``catalog`` into ``target``.

    ``account`` is the target's account (default: the catalog's); a snapshot
    of another account is refused (AccountMismatchError) before the target
    is contacted. The restore holds the target's lease in the catalog, so a
    backup of the same node cannot run meanwhile (LeaseHeldError). Options are those of :func:`restore_entries`. See the module
    docstring for ``verify_first``.
    """
    url = _target_url(target)
    manifest = catalog.describe(name)
    # The account check (and its logged refusal) lives in the catalog: opening
    # a shard performs it. Nothing has touched the target yet.
    catalog.open_shard(manifest, 0, account=account).close()
    dbs = sorted({db for shard in manifest.shards for db in shard.dbs})
    timeout = options.get("timeout", 120.0)
    with Connection.from_url(url, timeout=timeout, client_name="rdbkit-restore") as conn:
        facts = server_facts(conn)
    if facts.cluster_enabled and any(db != 0 for db in dbs):
        raise RestoreError(
            f"snapshot {name!r} has keys in dbs {dbs} but {url} is a cluster node, which has "
            "only db 0; nothing was written"
        )
    target_version = options.get("target_version")
    with catalog.lease(str(url), "restore"), \
            snapshot_entries(catalog, manifest, account=account, verify_first=verify_first,
                             spool_dir=spool_dir, raw=options.get("raw"),
                             target_version=facts.rdb_version if target_version is None
                             else target_version) as (entries, functions):
        return restore_entries(entries, url, functions=functions, _facts=facts, **options)


@contextlib.contextmanager
def snapshot_entries(
    catalog: Any,
    manifest: Any,
    *,
    account: str | None,
    verify_first: bool,
    spool_dir: str | Path | None,
    raw: bool | None,
    target_version: int,
) -> Iterator[tuple[Iterator[Any], Callable[[], list[bytes]]]]:
    """The entries of every shard of ``manifest``, and a callable giving its function libraries.

    With ``verify_first`` the shards are fetched (verified) into a spool
    directory first; a fetched shard whose magic and version ``target_version``
    reads as-is is cut into raw payloads (:mod:`rdbkit.restore.raw`) unless
    ``raw`` is False, instead of decoded and re-encoded. The functions
    callable is meant for after the first entry was pulled (shard 0's header
    read); the other shards of a cluster snapshot repeat the same libraries.
    """
    if raw and not verify_first:
        raise ValueError("raw=True needs verify_first=True (payloads are cut from the fetched "
                         "local file)")
    spool: tempfile.TemporaryDirectory | None = None
    try:
        if verify_first:
            spool = tempfile.TemporaryDirectory(prefix="rdbkit-restore-", dir=spool_dir)
            paths = catalog.fetch(manifest.name, spool.name, account=account)
            sources: list[Any] = [str(p) for p in paths]
        else:
            sources = list(range(len(manifest.shards)))
        decoders: list[Decoder] = []

        def entries() -> Iterator[Any]:
            for source in sources:
                stream = None
                iterable: Iterable[Any]
                if isinstance(source, str) and raw is not False:
                    iterable = reader = RawEntries(source, target_version=target_version,
                                                   raw=raw)
                    decoder = reader.decoder
                elif isinstance(source, str):
                    iterable = decoder = Decoder(source)
                else:
                    stream = catalog.open_shard(manifest, source, account=account)
                    iterable = decoder = Decoder(stream)
                decoders.append(decoder)
                try:
                    yield from iterable
                finally:
                    if iterable is not decoder:
                        iterable.close()  # type: ignore[attr-defined]
                    decoder.close()
                    if stream is not None:
                        stream.close()

        def functions() -> list[bytes]:
            return list(decoders[0].functions) if decoders else []

        yield entries(), functions
    finally:
        if spool is not None:
            spool.cleanup()


__all__ = [
    "BusyKeyError",
    "RestoreReport",
    "load_functions",
    "payload_version_for",
    "restore_command",
    "restore_entries",
    "restore_snapshot",
    "snapshot_entries",
]
