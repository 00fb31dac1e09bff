"""Restore into a running Redis Cluster: every key RESTOREd on the primary owning its slot.

The topology comes from the seed node (``CLUSTER SHARDS``, :func:`discover`);
a cluster leaving slots unassigned is refused before anything is written.
Each primary gets ``connections_per_node`` connections driven, like
:func:`restore_entries`, from the caller's thread (restore.py's ``_Lanes``):
entries are routed by :func:`key_slot` into one pending batch per primary; a
full batch (``batch`` entries) is written to that primary, every connection
keeping at most two batches in flight. Memory is bounded by
``primaries × (1 + 2 × connections_per_node) × batch`` entries.

Per primary, what :func:`restore_entries` does per node: the payload version
is the lowest ``rdb_version`` among the primaries (or ``target_version``),
IDLETIME/FREQ by each primary's own ``maxmemory-policy``, ABSTTL, REPLACE only
with ``replace=True`` (otherwise an existing key stops the restore with
:class:`BusyKeyError`, nothing existing overwritten), ``flush=True`` sends
FLUSHALL to every primary, function libraries are loaded on every primary
(functions are per node), ``unsupported`` as there.

Only db 0 exists in cluster mode: :func:`restore_cluster_snapshot` refuses a
snapshot with keys elsewhere before the cluster is touched;
:func:`restore_cluster_entries` refuses when the first entry is outside db 0
(nothing written) and otherwise stops at the first such entry with a
RestoreError whose ``written`` is exact.

Redirections (slots moving while the restore runs, or a stale slot map):

- ``MOVED <slot> <host>:<port>``: the slot's owner is now that node. The
  slot map is refreshed (``CLUSTER SHARDS`` again, from that node, at most
  once per batch of replies), the slot is pinned to the named node, and the
  entry goes into that node's next batch.
- ``ASK <slot> <host>:<port>``: the slot is being migrated and the key is
  not on the source any more; the entry is sent at once to that node as
  ``ASKING`` + ``RESTORE`` on a separate connection (the map is unchanged).

An entry redirected more than :data:`MAX_REDIRECTS` times stops the restore
with a RestoreError (a cluster whose nodes disagree about a slot). A
redirected entry is counted once, where it was finally written.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdbkit.backup.cluster import SLOTS, Topology, discover, key_slot
from rdbkit.backup.connection import Connection, ReplyError, command
from rdbkit.backup.info import ServerFacts, server_facts
from rdbkit.errors import CaptureError, RdbkitError, RestoreError
from rdbkit.restore.restore import (
    Progress,
    RestoreReport,
    _clamp_version,
    _collect,
    _fail,
    _Lanes,
    _lru_mode,
    _Plan,
    _Run,
    _send,
    conclude,
    load_functions,
    snapshot_entries,
)
from rdbkit.urls import RedisClusterUrl, RedisUrl, parse_url

#: Redirections (MOVED or ASK) one entry may get before the restore stops.
MAX_REDIRECTS = 5
CLIENT_NAME = "rdbkit-restore"


@dataclass
class ClusterRestoreReport(RestoreReport):
    """A RestoreReport (``dbs`` is ``{0: keys}``) plus where the keys went."""

    #: {"host:port" of a primary: keys written there}
    nodes: dict[str, int] = field(default_factory=dict)
    #: MOVED replies followed
    moved: int = 0
    #: ASK replies followed
    asked: int = 0
    #: times the slot map was fetched again (MOVED)
    refreshes: int = 0


def _seed_url(target: RedisClusterUrl | RedisUrl | str) -> RedisClusterUrl | RedisUrl:
    if isinstance(target, str):
        target = parse_url(target)  # type: ignore[assignment]
    if isinstance(target, RedisUrl):
        if target.db != 0:
            raise RestoreError(f"{target}: a cluster has only db 0")
        return target
    if not isinstance(target, RedisClusterUrl):
        raise RestoreError(f"{target} is not a redis+cluster:// (or redis://) seed node")
    return target


def _address(text: str, default_host: str) -> tuple[str, int]:
    """``host:port`` of a MOVED/ASK reply (an empty host is the replier's; IPv6 has colons)."""
    host, _, port = text.rpartition(":")
    return (host.strip("[]") or default_host), int(port)


class _NodeLanes(_Lanes):
    """One primary's connections; replies answered MOVED/ASK go to ``redirect``."""

    def __init__(self, url: RedisUrl, count: int, timeout: float, plan: _Plan, run: _Run,
                 redirect: Callable[[Any, ReplyError, RedisUrl], None],
                 written: Callable[[str, int], None]) -> None:
        super().__init__(url, count, timeout, plan, run)
        self.redirect = redirect
        self.written = written

    def _collect(self, i: int, batch: Any) -> None:
        conn = self.conns[i]
        if conn is None:
            return
        before = self.run.report.keys_written
        try:
            _collect(conn, batch, self.run, self.url,
                     redirect=lambda entry, reply: self.redirect(entry, reply, self.url))
        except RestoreError as exc:
            self.run.fail(exc)
        except BaseException as exc:  # noqa: BLE001 - lost connection, protocol error
            self.run.fail(exc)
            self._drop(i)
        finally:
            self.written(f"{self.url.host}:{self.url.port}",
                         self.run.report.keys_written - before)


class _Router:
    """The slot map, one _NodeLanes per primary, and the redirections to follow."""

    def __init__(self, seed: RedisClusterUrl | RedisUrl, topology: Topology, *, batch: int,
                 connections: int, timeout: float, replace: bool, unsupported: str,
                 version: int, run: _Run) -> None:
        self.seed = seed
        self.batch = batch
        self.connections = connections
        self.timeout = timeout
        self.replace = replace
        self.unsupported = unsupported
        self.version = version
        self.run = run
        self.report: ClusterRestoreReport = run.report  # type: ignore[assignment]
        self.owner: list[tuple[str, int] | None] = [None] * SLOTS
        self.lanes: dict[tuple[str, int], _NodeLanes] = {}
        self.ask_conns: dict[tuple[str, int], Connection] = {}
        self.chunks: dict[tuple[str, int], list] = {}
        self.redirected: list[tuple[Any, ReplyError, RedisUrl]] = []
        self.attempts: dict[bytes, int] = {}
        self._set_topology(topology)

    # -- nodes ---------------------------------------------------------------------

    def node_url(self, address: tuple[str, int]) -> RedisUrl:
        return RedisUrl(address[0], address[1], db=0, tls=self.seed.tls,
                        username=self.seed.username, password=self.seed.password)

    def connect(self, url: RedisUrl) -> Connection:
        return Connection.from_url(url, timeout=self.timeout, client_name=CLIENT_NAME)

    def plan_for(self, conn: Connection, facts: ServerFacts) -> _Plan:
        absttl = facts.engine == "valkey" or facts.version_tuple[:2] >= (5, 0)
        version = min(self.version, _clamp_version(facts.rdb_version))
        return _Plan(version, self.replace, _lru_mode(conn), absttl, self.unsupported, True)

    def open(self, address: tuple[str, int], facts: ServerFacts | None = None,
             conn: Connection | None = None) -> _NodeLanes:
        """The lanes to ``address`` (connected on first use)."""
        lanes = self.lanes.get(address)
        if lanes is None:
            url = self.node_url(address)
            own = conn is None
            conn = conn or self.connect(url)
            try:
                plan = self.plan_for(conn, facts or server_facts(conn))
            finally:
                if own:
                    conn.close()
            lanes = _NodeLanes(url, self.connections, self.timeout, plan, self.run,
                               self._redirect, self._written)
            self.lanes[address] = lanes
            self.chunks[address] = []
        return lanes

    def _written(self, address: str, n: int) -> None:
        if n:
            nodes = self.report.nodes
            nodes[address] = nodes.get(address, 0) + n

    def _set_topology(self, topology: Topology) -> None:
        owner: list[tuple[str, int] | None] = [None] * SLOTS
        for shard in topology.shards:
            address = (shard.primary.host, shard.primary.port)
            for start, end in shard.slots:
                owner[start : end + 1] = [address] * (end - start + 1)
        self.owner = owner

    # -- routing ---------------------------------------------------------------------

    def route(self, entry: Any, *, follow: bool = True) -> None:
        """Queue ``entry`` for its slot's owner; send the owner's batch when it is full."""
        address = self.owner[key_slot(entry.key)]
        if address is None:
            self.run.fail(_fail(f"no node serves the slot of key {entry.key!r} "
                                f"({key_slot(entry.key)})", self.report, db=0, key=entry.key))
            return
        if address not in self.lanes:
            try:
                self.open(address)
            except BaseException as exc:  # noqa: BLE001 - a node we cannot reach
                self.run.fail(exc)
                return
        chunk = self.chunks[address]
        chunk.append(entry)
        if len(chunk) >= self.batch:
            self.chunks[address] = []
            self.lanes[address].dispatch(0, chunk)
            if follow:  # (inside follow() its own loop picks the new redirections up)
                self.follow()

    def flush(self) -> None:
        """Send every pending batch, read every reply, follow redirections until none is left."""
        while self.run.failure is None:
            for address, chunk in list(self.chunks.items()):
                if chunk and self.run.failure is None:
                    self.chunks[address] = []
                    self.lanes[address].dispatch(0, chunk)
            for lanes in list(self.lanes.values()):
                lanes.finish()
            if not self.redirected:
                if not any(self.chunks.values()):
                    break
                continue
            self.follow()

    def finish(self) -> None:
        """After a failure: read what is in flight so ``written`` is exact."""
        for lanes in list(self.lanes.values()):
            lanes.finish()

    def close(self) -> None:
        for lanes in self.lanes.values():
            lanes.close()
        for conn in self.ask_conns.values():
            conn.close()

    # -- redirections ------------------------------------------------------------------

    def _redirect(self, entry: Any, reply: ReplyError, url: RedisUrl) -> None:
        self.redirected.append((entry, reply, url))

    def follow(self) -> None:
        """Re-send every entry answered MOVED/ASK (refreshing the slot map once for MOVED)."""
        while self.redirected and self.run.failure is None:
            todo, self.redirected = self.redirected, []
            refreshed = False
            for entry, reply, url in todo:
                if self.run.failure is not None:
                    return
                n = self.attempts.get(entry.key, 0) + 1
                self.attempts[entry.key] = n
                if n > MAX_REDIRECTS:
                    self.run.fail(_fail(
                        f"key {entry.key!r} was redirected {n} times (last by {url}: {reply}); "
                        "the cluster's nodes disagree about its slot", self.report, db=0,
                        key=entry.key))
                    return
                try:
                    _, slot, where = str(reply).split(" ")
                    address = _address(where, url.host)
                    slot_no = int(slot)
                except ValueError:
                    self.run.fail(_fail(f"cannot read the redirection {reply} from {url}",
                                        self.report, cause=reply, db=0, key=entry.key))
                    return
                if reply.code == "MOVED":
                    self.report.moved += 1
                    if not refreshed:
                        self._refresh(address)
                        refreshed = True
                    self.owner[slot_no] = address  # the replier's word wins for this slot
                    self.route(entry, follow=False)
                else:
                    self.report.asked += 1
                    self._ask(entry, address)

    def _refresh(self, address: tuple[str, int]) -> None:
        """Fetch the slot map again, from the node a MOVED named (else the seed)."""
        for url in (self.node_url(address), self.seed):
            try:
                with self.connect(url) as conn:  # type: ignore[arg-type]
                    topology = discover(conn)
            except (RdbkitError, OSError):
                continue
            self._set_topology(topology)
            self.report.refreshes += 1
            return

    def _ask(self, entry: Any, address: tuple[str, int]) -> None:
        """ASKING + RESTORE of one entry on ``address``, replies read at once."""
        try:
            lanes = self.open(address)
            conn = self.ask_conns.get(address)
            if conn is None:
                conn = self.ask_conns[address] = self.connect(lanes.url)
            before = self.report.keys_written
            conn.send(command("ASKING"))
            sent = _send(conn, {"db": 0}, 0, [entry], lanes.plan, self.run, lanes.url)
            asking = conn.read_reply()
            if isinstance(asking, ReplyError):
                raise _fail(f"ASKING failed on {lanes.url}: {asking}", self.report,
                            cause=asking, db=0, key=entry.key)
            try:
                _collect(conn, sent, self.run, lanes.url,
                         redirect=lambda e, r: self._redirect(e, r, lanes.url))
            finally:
                self._written(f"{address[0]}:{address[1]}", self.report.keys_written - before)
        except RestoreError as exc:
            self.run.fail(exc)
        except BaseException as exc:  # noqa: BLE001 - lost connection, protocol error
            self.run.fail(exc)
            conn = self.ask_conns.pop(address, None)
            if conn is not None:
                conn.close()


def restore_cluster_entries(
    entries: Iterable[Any],
    target: RedisClusterUrl | RedisUrl | str,
    *,
    replace: bool = False,
    flush: bool = False,
    batch: int = 256,
    connections_per_node: int = 1,
    timeout: float = 120.0,
    functions: Sequence[bytes] | Callable[[], Sequence[bytes]] = (),
    unsupported: str = "error",
    progress: Progress | None = None,
    target_version: int | None = None,
    _topology: Topology | None = None,
) -> ClusterRestoreReport:
    """RESTORE every entry (db 0 only) on the primary owning its slot; see the module docstring.

    ``target`` is any node of the cluster (``redis+cluster://host:port``).
    ``functions`` and ``progress`` as in :func:`restore_entries`. ``_topology``
    (tests) replaces the slot map discovered from the seed.
    """
    if connections_per_node < 1 or batch < 1:
        raise ValueError("connections_per_node and batch must be at least 1")
    if unsupported not in ("error", "drop"):
        raise ValueError("unsupported must be 'error' or 'drop'")
    seed = _seed_url(target)
    started = time.monotonic()
    report = ClusterRestoreReport(target=str(seed))
    run = _Run(report, progress)
    iterator: Iterator[Any] = iter(entries)
    with Connection.from_url(seed, timeout=timeout, client_name=CLIENT_NAME) as conn:
        try:
            topology = discover(conn)
        except CaptureError as exc:
            raise RestoreError(f"{seed} is not a cluster node: {exc}") from exc
    if _topology is not None:
        topology = _topology
    missing = topology.slot_owners().count(-1)
    if missing:
        raise RestoreError(f"the cluster at {seed} leaves {missing} of {SLOTS} slots "
                           "unassigned; nothing was written")
    primaries: list[tuple[tuple[str, int], Connection, ServerFacts]] = []
    router: _Router | None = None
    try:
        for shard in topology.shards:
            address = (shard.primary.host, shard.primary.port)
            node = Connection.from_url(RedisUrl(address[0], address[1], tls=seed.tls,
                                                username=seed.username, password=seed.password),
                                       timeout=timeout, client_name=CLIENT_NAME)
            primaries.append((address, node, server_facts(node)))
        lowest = min(_clamp_version(facts.rdb_version) for _, _, facts in primaries)
        version = _clamp_version(target_version) if target_version is not None else lowest
        report.payload_version = version
        # The first pull reads a decoder's header and functions (and fails on a bad file).
        first = list(itertools.islice(iterator, 1))
        if first and first[0].db != 0:
            raise _fail(f"{seed} is a cluster (db 0 only) and the data has keys in db "
                        f"{first[0].db}; nothing was written", report, db=first[0].db,
                        key=first[0].key)
        libs = list(functions() if callable(functions) else functions)
        router = _Router(seed, topology, batch=batch, connections=connections_per_node,
                         timeout=timeout, replace=replace, unsupported=unsupported,
                         version=version, run=run)
        for address, node, facts in primaries:  # every primary connected before any write
            router.open(address, facts, node)
        if flush:
            for _, node, _ in primaries:
                node.call("FLUSHALL")
            report.flushed = True
        for i, (_, node, facts) in enumerate(primaries):
            # every primary gets the libraries; the report counts them once
            load_functions(node, libs, replace=replace or flush, facts=facts,
                           unsupported=unsupported,
                           report=report if i == 0 else ClusterRestoreReport())
    except BaseException:
        if router is not None:
            router.close()
        raise
    finally:
        for _, node, _ in primaries:
            node.close()
    producer_error: BaseException | None = None
    try:
        for entry in itertools.chain(first, iterator):
            if run.failure is not None:
                break
            if entry.db != 0:
                run.fail(_fail(f"{seed} is a cluster (db 0 only) and the data has key "
                               f"{entry.key!r} in db {entry.db}", report, db=entry.db,
                               key=entry.key))
                break
            router.route(entry)
        if run.failure is None:
            router.flush()
    except BaseException as exc:  # noqa: BLE001 - the source failed (decode, checksum ...)
        producer_error = exc
    finally:
        try:
            router.finish()
        finally:
            router.close()
    report.seconds = time.monotonic() - started
    return conclude(run, producer_error, seed)  # type: ignore[return-value]


def restore_cluster_snapshot(
    catalog: Any,
    name: str,
    target: RedisClusterUrl | RedisUrl | str,
    *,
    account: str | None = None,
    verify_first: bool = True,
    spool_dir: str | Path | None = None,
    **options: Any,
) -> ClusterRestoreReport:
    """Restore every shard of snapshot ``name`` into the cluster at ``target``.

    Any number of shards into any number of primaries: keys are routed by
    slot, not by the shard they came from. A snapshot with keys outside db 0
    or of another account (AccountMismatchError) is refused before the
    cluster is contacted. ``verify_first`` and ``spool_dir`` as in
    :func:`restore_snapshot`; options as in :func:`restore_cluster_entries`.
    """
    seed = _seed_url(target)
    manifest = catalog.describe(name)
    catalog.open_shard(manifest, 0, account=account).close()  # the account check
    dbs = sorted({db for shard in manifest.shards for db in shard.dbs})
    if any(db != 0 for db in dbs):
        raise RestoreError(
            f"snapshot {name!r} has keys in dbs {dbs} but a cluster has only db 0; "
            "nothing was written"
        )
    raw = options.pop("raw", None)
    target_version = options.get("target_version")
    if target_version is None:  # the raw path must suit every primary
        timeout = options.get("timeout", 120.0)
        with Connection.from_url(seed, timeout=timeout) as conn:
            topology = discover(conn)
        versions = []
        for shard in topology.shards:
            with Connection(shard.primary.host, shard.primary.port, username=seed.username,
                            password=seed.password, tls=seed.tls, timeout=timeout) as conn:
                versions.append(server_facts(conn).rdb_version)
        target_version = min(versions)
    with catalog.lease(str(seed), "restore"), \
            snapshot_entries(catalog, manifest, account=account, verify_first=verify_first,
                             spool_dir=spool_dir, raw=raw,
                             target_version=target_version) as (entries, functions):
        return restore_cluster_entries(entries, seed, functions=functions, **options)


__all__ = [
    "MAX_REDIRECTS",
    "ClusterRestoreReport",
    "restore_cluster_entries",
    "restore_cluster_snapshot",
]
