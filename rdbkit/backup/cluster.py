"""Redis Cluster topology: who owns which hash slots, and which node to back up.

A key's slot is CRC16/XMODEM of the key (or of its hash tag: the part
between the first ``{`` and the next ``}``, when non-empty) modulo 16384.
``binascii.crc_hqx(data, 0)`` is exactly that CRC, in C.

Topology comes from ``CLUSTER SHARDS`` (Redis 7+, Valkey) or, on older
servers, ``CLUSTER SLOTS``. A backup reads each shard from a replica whose
link to its primary is up, else from the primary, so primaries keep serving.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable
from dataclasses import dataclass, field

from rdbkit.backup.connection import Connection, ReplyError
from rdbkit.errors import CaptureError

SLOTS = 16384


def key_slot(key: bytes) -> int:
    """The hash slot of ``key`` (hash tags honoured)."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return binascii.crc_hqx(key, 0) & (SLOTS - 1)


@dataclass(frozen=True)
class Node:
    host: str
    port: int
    node_id: str = ""
    role: str = "master"  # "master" or "replica"
    healthy: bool = True

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Shard:
    """One primary, its replicas and the slot ranges it serves (inclusive)."""

    primary: Node
    replicas: tuple[Node, ...] = ()
    slots: tuple[tuple[int, int], ...] = ()

    def backup_node(self) -> Node:
        """A healthy replica if there is one, else the primary."""
        for replica in self.replicas:
            if replica.healthy:
                return replica
        return self.primary

    def to_dict(self) -> dict:
        return {
            "primary": self.primary.address,
            "primary_id": self.primary.node_id,
            "replicas": [r.address for r in self.replicas],
            "slots": [list(r) for r in self.slots],
        }


@dataclass
class Topology:
    shards: list[Shard] = field(default_factory=list)

    def slot_owners(self) -> list[int]:
        """For each of the 16384 slots, the index of its shard (-1 if unassigned)."""
        owners = [-1] * SLOTS
        for index, shard in enumerate(self.shards):
            for start, end in shard.slots:
                owners[start : end + 1] = [index] * (end - start + 1)
        return owners

    def check_complete(self) -> None:
        """CaptureError unless every slot is served (a backup would miss keys)."""
        missing = self.slot_owners().count(-1)
        if missing:
            raise CaptureError(f"the cluster leaves {missing} of {SLOTS} slots unassigned")


def _pairs(reply: list) -> dict:
    """A RESP2 flat [k, v, k, v] list (or a RESP3 map) as a dict with str keys."""
    if isinstance(reply, dict):
        items = reply.items()
    else:
        items = zip(reply[::2], reply[1::2])
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in items}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ranges(flat: Iterable[int]) -> tuple[tuple[int, int], ...]:
    values = list(flat)
    return tuple(sorted((int(values[i]), int(values[i + 1])) for i in range(0, len(values), 2)))


def discover(conn: Connection) -> Topology:
    """The cluster's shards as ``conn``'s node sees them.

    Raises CaptureError if the node is not in cluster mode.
    """
    try:
        reply = conn.call("CLUSTER", "SHARDS")
    except ReplyError as exc:
        if "disabled" in str(exc).lower():
            raise CaptureError(f"{conn} is not in cluster mode: {exc}") from exc
        return _from_slots(conn)
    shards = []
    for raw in reply:
        info = _pairs(raw)
        nodes = [_pairs(n) for n in info.get("nodes", [])]
        primary = None
        replicas = []
        for n in nodes:
            host = _text(n.get("ip") or n.get("endpoint") or "")
            node = Node(
                host=host,
                port=int(n.get("port") or n.get("tls-port") or 0),
                node_id=_text(n.get("id", "")),
                role="master" if _text(n.get("role", "")) == "master" else "replica",
                # 7.0 reports a replica "loading" until its offset moves (no writes yet)
                healthy=_text(n.get("health", "online")) in ("online", "loading"),
            )
            if node.role == "master":
                primary = node
            else:
                replicas.append(node)
        slots = _ranges(info.get("slots", []))
        if primary is None or not slots:
            continue  # a shard without a primary or slots holds no data to back up
        shards.append(Shard(primary, tuple(replicas), slots))
    return Topology(sorted(shards, key=lambda s: s.slots[0]))


def _from_slots(conn: Connection) -> Topology:
    """Pre-7.0 servers: CLUSTER SLOTS, one entry per contiguous range."""
    by_primary: dict[str, tuple[Node, list[Node], list[tuple[int, int]]]] = {}
    for entry in conn.call("CLUSTER", "SLOTS"):
        start, end, primary_raw, *replica_raw = entry
        primary = Node(_text(primary_raw[0]), int(primary_raw[1]), _text(primary_raw[2]) if len(primary_raw) > 2 else "")
        replicas = [
            Node(_text(r[0]), int(r[1]), _text(r[2]) if len(r) > 2 else "", role="replica")
            for r in replica_raw
        ]
        slot = by_primary.setdefault(primary.address, (primary, replicas, []))
        slot[2].append((int(start), int(end)))
    shards = [Shard(p, tuple(r), tuple(sorted(s))) for p, r, s in by_primary.values()]
    return Topology(sorted(shards, key=lambda s: s.slots[0]))
