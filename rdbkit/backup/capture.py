"""Backups of live nodes and clusters: choose the method, capture, store.

``method``:

- ``sync``: act as a replica and stream the node's own RDB (point in time);
- ``cooperative``: SCAN + DUMP, never forking the source (each key as read);
- ``auto``: sync when the copy-on-write estimate of a forked save fits the
  node's memory headroom and replication is allowed, else cooperative. A
  node that refuses or renamed SYNC/PSYNC/REPLCONF (managed services) falls
  back to cooperative with a one-line reason; asking for ``sync`` there
  fails with ReplicationRefusedError.

A ``redis+cluster://`` source is backed up shard by shard, all at once: each
shard from a replica whose link is up (else its primary), each streaming
its own object; the manifest records every shard's slot ranges. If one
shard fails the catalog publishes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rdbkit.backup.cluster import Node, discover
from rdbkit.backup.connection import Connection, ReplyError
from rdbkit.backup.cooperative import CONSISTENCY as COOPERATIVE_CONSISTENCY
from rdbkit.backup.cooperative import CooperativeDump, capture_cooperative
from rdbkit.backup.estimate import Estimate, estimate
from rdbkit.backup.info import node_settings, server_facts
from rdbkit.backup.replica import ReplicaStream, capture_sync
from rdbkit.catalog import Capture, Catalog, Manifest, ShardInput, SourceInfo, file_capture
from rdbkit.errors import CaptureError, ReplicationRefusedError
from rdbkit.urls import FileUrl, RedisClusterUrl, RedisUrl, Url, parse_url

METHODS = ("auto", "sync", "cooperative")
#: Commands a replica-style backup needs.
REPLICATION_COMMANDS = ("SYNC", "PSYNC", "REPLCONF")


@dataclass
class Decision:
    """Which method a backup uses and why (one line), with the estimate when one was made."""

    method: str
    reason: str
    estimate: Estimate | None = None
    notes: list[str] = field(default_factory=list)
    #: After a cooperative backup: per shard, how it paced itself against the source
    #: (batches, latency p50/p99 of its pipelines, time slept, batch shrinks).
    pacing: list[dict] = field(default_factory=list)


def replication_refusal(conn: Connection) -> str | None:
    """Why replication commands cannot be used on this node, or None if they look available.

    ``COMMAND INFO`` answers nil for a renamed or disabled command; a refused
    ``COMMAND`` says nothing either way (None: the sync attempt will tell).
    """
    try:
        info = conn.call("COMMAND", "INFO", *REPLICATION_COMMANDS)
    except ReplyError:
        return None
    missing = [name for name, item in zip(REPLICATION_COMMANDS, info) if not item]
    if missing:
        return f"{conn} has no {'/'.join(missing)} (renamed or disabled, as on managed services)"
    return None


def decide(url: RedisUrl, method: str = "auto", **connection_options: Any) -> Decision:
    """Choose the backup method for the node at ``url`` (see the module docstring)."""
    if method not in METHODS:
        raise CaptureError(f"unknown backup method {method!r} (expected one of {', '.join(METHODS)})")
    if method == "cooperative":
        return Decision("cooperative", "asked for (--method cooperative)")
    with Connection.from_url(url, **connection_options) as conn:
        refusal = replication_refusal(conn)
        if method == "sync":
            if refusal:
                raise ReplicationRefusedError(f"cannot back up {url} as a replica: {refusal}")
            return Decision("sync", "asked for (--method sync)")
        if refusal:
            return Decision("cooperative", f"replication refused: {refusal}")
        est = estimate(conn)
    # The last reason is the comparison that decided; the others show how it was reached.
    reason = est.reasons[-1] if est.reasons else f"estimate chose {est.method}"
    return Decision(est.method, reason, est, list(est.reasons[:-1]))


def capture(source: str | Url, *, method: str = "auto", **options: Any) -> tuple[Capture, Decision]:
    """The Capture of ``source`` (file, node or cluster) and the method decision.

    ``options`` go to the method: ``connection_options`` (timeouts, TLS) for
    both, the rest to CooperativeDump (batch, max_ops_per_s,
    latency_budget_ms, ...) when cooperative. Nothing is read yet: the data
    streams when the catalog stores the capture.
    """
    url = parse_url(source) if isinstance(source, str) else source
    conn_options = dict(options.pop("connection_options", None) or {})
    if isinstance(url, FileUrl):
        return file_capture(str(url.path)), Decision("file", "an RDB file is imported as it is")
    if isinstance(url, RedisClusterUrl):
        return capture_cluster(url, method=method, connection_options=conn_options, **options)
    options.pop("from_primaries", None)  # a single node is its own primary
    if not isinstance(url, RedisUrl):
        raise CaptureError(f"{url} is not a Redis node, cluster or RDB file")
    with Connection.from_url(url, **conn_options) as conn:
        if server_facts(conn).cluster_enabled:
            raise CaptureError(
                f"{url} is a node of a Redis Cluster, and a cluster is backed up whole (one "
                f"shard alone could not be restored as the cluster): use "
                f"redis+cluster://{url.host}:{url.port}")
    decision = decide(url, method, **conn_options)
    if decision.method == "sync":
        return capture_sync(url, connection_options=conn_options), decision
    return capture_cooperative(url, connection_options=conn_options, **options), decision


def capture_cluster(
    url: RedisClusterUrl, *, method: str = "auto", connection_options: dict | None = None,
    from_primaries: bool = False, **options: Any,
) -> tuple[Capture, Decision]:
    """One shard stream per primary's slot ranges, from a healthy replica where there is one.

    ``from_primaries`` reads every shard from its primary instead (a final
    snapshot before a cluster is retired: the primaries hold the last writes).
    """
    conn_options = dict(connection_options or {})
    with Connection.from_url(url, **conn_options) as conn:
        topology = discover(conn)
        facts = server_facts(conn)
        settings = node_settings(conn)
    topology.check_complete()
    decision = _cluster_decision(url, topology, method, conn_options, from_primaries)
    shards = []
    for shard in topology.shards:
        node = (shard.backup_node() if decision.method == "sync" and not from_primaries
                else shard.primary)
        shards.append(ShardInput(
            data=_shard_stream(url, node, decision.method, facts.rdb_version, conn_options,
                               options),
            slots=shard.slots, node=node.address,
        ))
    source = SourceInfo(
        url=str(url), engine=facts.engine, engine_version=facts.version, cluster=True,
        shards=tuple(s.to_dict() for s in topology.shards), settings=settings,
    )
    consistency = (
        "point-in-time per shard (each shard's replica stream; shards are not synchronised)"
        if decision.method == "sync" else COOPERATIVE_CONSISTENCY
    )
    return Capture(source=source, shards=shards, consistency=consistency), decision


def _cluster_decision(url: RedisClusterUrl, topology, method: str, conn_options: dict,
                      from_primaries: bool = False) -> Decision:
    if method == "cooperative":
        return Decision("cooperative", "asked for (--method cooperative)")
    refusals = []
    for shard in topology.shards:
        node = shard.primary if from_primaries else shard.backup_node()
        with _node_connection(url, node, conn_options) as conn:
            refusal = replication_refusal(conn)
        if refusal:
            refusals.append(refusal)
    if refusals:
        if method == "sync":
            raise ReplicationRefusedError(f"cannot back up {url} as a replica: {refusals[0]}")
        return Decision("cooperative", f"replication refused: {refusals[0]}")
    if method == "sync":
        return Decision("sync", "asked for (--method sync)")
    # auto: a replica's save costs its primary nothing; primaries must fit their estimate.
    notes = []
    for shard in topology.shards:
        node = shard.primary if from_primaries else shard.backup_node()
        if node.role == "replica":
            notes.append(f"{shard.primary.address}: sync from replica {node.address}")
            continue
        with _node_connection(url, node, conn_options) as conn:
            est = estimate(conn)
        notes.append(f"{node.address}: {'; '.join(est.reasons)}")
        if est.method != "sync":
            return Decision("cooperative", f"primary {node.address} has no room for a fork: "
                            f"{'; '.join(est.reasons)}", est, notes)
    return Decision("sync", "every shard fits a replica sync", None, notes)


def _node_connection(url: RedisClusterUrl, node: Node, conn_options: dict) -> Connection:
    return Connection(node.host, node.port, username=url.username, password=url.password,
                      tls=url.tls, **conn_options)


def _shard_stream(url: RedisClusterUrl, node: Node, method: str, rdb_version: int,
                  conn_options: dict, options: dict):
    if method == "sync":
        return ReplicaStream(node.host, node.port, username=url.username,
                             password=url.password, tls=url.tls, **conn_options)

    def factory() -> Connection:
        return _node_connection(url, node, conn_options)

    return CooperativeDump(factory, source_rdb_version=rdb_version, dbs=[0], **options)


def backup(
    catalog: Catalog,
    source: str | Url,
    name: str,
    *,
    method: str = "auto",
    kind: str = "manual",
    **options: Any,
) -> tuple[Manifest, Decision]:
    """Back up ``source`` into ``catalog`` as snapshot ``name``.

    With ``auto``, a sync that the node refuses once it is asked (an ACL
    without replication rights) is retried as cooperative, and the reason is
    added to the decision's notes.
    """
    url = parse_url(source) if isinstance(source, str) else source
    key = url.path.resolve().as_uri() if isinstance(url, FileUrl) else str(url)
    with catalog.lease(key, "backup"):  # one operation per source at a time
        cap, decision = capture(url, method=method, **dict(options))
        try:
            manifest = catalog.create(name, cap, kind=kind)
        except ReplicationRefusedError as exc:
            if method != "auto":
                raise
            cap, _ = capture(url, method="cooperative", **dict(options))
            decision = Decision("cooperative", f"replication refused: {exc}", decision.estimate,
                                decision.notes + [f"sync refused: {exc}"])
            manifest = catalog.create(name, cap, kind=kind)
        decision.pacing = [_pacing(s.data.stats) for s in cap.shards
                           if isinstance(s.data, CooperativeDump)]
        return manifest, decision


def _pacing(stats) -> dict:
    return {
        "keys": stats.keys, "batches": stats.batches, "batch_final": stats.batch_final,
        "batch_min": stats.batch_min, "batch_shrinks": stats.batch_shrinks,
        "latency_p50_ms": round(stats.latency_p50_ms, 3),
        "latency_p99_ms": round(stats.latency_p99_ms, 3),
        "slept_s": round(stats.sleeps_s, 3), "skipped_deleted": stats.skipped_deleted,
        "keys_per_s": round(stats.keys_per_s, 1),
    }


def capture_fn(method: str = "auto", **options: Any):
    """A CaptureFn (url → Capture) for the schedule and retire: live nodes or files.

    For a retire's final snapshot pass ``from_primaries=True``.
    """

    def run(url: str) -> Capture:
        return capture(url, method=method, **dict(options))[0]

    return run
