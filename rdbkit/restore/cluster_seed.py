"""Seed a new N-shard Redis Cluster from a snapshot.

Each of N fresh redis-server processes starts from its own RDB holding
exactly the keys of its contiguous slot range (0..16383 split evenly), so
nothing is routed over the network. The snapshot is read (and verified)
completely into the N files before any server starts: a checksum error
leaves no server running and no file behind. Then every node gets its whole
range (``CLUSTER ADDSLOTSRANGE``; a node that loaded keys has already taken
those slots itself), a distinct config epoch, and ``CLUSTER MEET`` joins
them; the call returns when every node reports ``cluster_state:ok``.

Function libraries are written to every node's RDB (functions are per node).
A snapshot with keys outside db 0 is refused: cluster mode has only db 0.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from rdbkit.backup.cluster import SLOTS, key_slot
from rdbkit.backup.connection import Connection, ConnectionLostError
from rdbkit.catalog import Catalog
from rdbkit.codec import Decoder, RdbWriter
from rdbkit.errors import RestoreError
from rdbkit.restore.seed import binary_rdb_version, settings_config, start_seeded_server

#: Seconds a seeded node gets to load its RDB and answer, and the cluster to form.
START_TIMEOUT_S = 120.0


def slot_ranges(shards: int) -> list[tuple[int, int]]:
    """16384 slots split into ``shards`` contiguous ranges (inclusive), as even as can be."""
    if not 1 <= shards <= SLOTS:
        raise RestoreError(f"a cluster needs 1..{SLOTS} shards, not {shards}")
    bounds = [SLOTS * i // shards for i in range(shards + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(shards)]


@dataclass
class SeededNode:
    port: int
    directory: Path
    slots: tuple[int, int]
    keys: int
    bus_port: int = 0
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class ClusterSeed:
    """The seeded cluster; :meth:`stop` shuts every node down."""

    nodes: list[SeededNode]
    seconds: float

    @property
    def url(self) -> str:
        return f"redis+cluster://{self.nodes[0].address}"

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                try:
                    with Connection("127.0.0.1", node.port, timeout=5) as conn:
                        conn.send(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
                except ConnectionLostError:
                    pass
                try:
                    node.process.wait(10)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait(10)


def split_snapshot(
    catalog: Catalog,
    name: str,
    directories: list[Path],
    *,
    account: str | None = None,
    target_version: int | None = None,
    dbfilename: str = "dump.rdb",
) -> list[int]:
    """Write one RDB per directory with exactly the keys of its slot range; return key counts.

    Every shard of the snapshot is read to its end (checksums verified)
    before the files get their final names.
    """
    manifest = catalog.describe(name)
    extra = sorted({db for s in manifest.shards for db in s.dbs} - {0})
    if extra:
        raise RestoreError(
            f"snapshot {name!r} has keys in db {', '.join(map(str, extra))}; "
            "cluster mode has only db 0"
        )
    ranges = slot_ranges(len(directories))
    owner = [0] * SLOTS
    for index, (start, end) in enumerate(ranges):
        owner[start : end + 1] = [index] * (end - start + 1)
    version = target_version or manifest.rdb_version
    temps = [d / f".rdbkit-seed-{os.getpid()}-{dbfilename}" for d in directories]
    counts = [0] * len(directories)
    files = [open(t, "wb") for t in temps]
    try:
        writers = [RdbWriter(f, version=version) for f in files]
        started = False
        for index in range(len(manifest.shards)):
            with catalog.open_shard(manifest, index, account=account) as raw:
                decoder = Decoder(raw)
                for entry in decoder:
                    if not started:
                        for w in writers:
                            w.begin(functions=tuple(decoder.functions))
                        started = True
                    target = owner[key_slot(entry.key)]
                    writers[target].write(entry)
                    counts[target] += 1
                if not started:  # a snapshot without keys
                    for w in writers:
                        w.begin(functions=tuple(decoder.functions))
                    started = True
        for w, f in zip(writers, files):
            w.close()
            f.flush()
            os.fsync(f.fileno())
        for temp, directory in zip(temps, directories):
            os.replace(temp, directory / dbfilename)
        temps = []
    finally:
        for f in files:
            f.close()
        for temp in temps:
            try:
                os.unlink(temp)
            except OSError:
                pass
    return counts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _own_slots(conn: Connection) -> set[int]:
    owned: set[int] = set()
    for shard in conn.call("CLUSTER", "SLOTS"):
        owned.update(range(int(shard[0]), int(shard[1]) + 1))
    return owned


def seed_cluster(
    catalog: Catalog,
    name: str,
    directory: str | os.PathLike[str],
    shards: int,
    *,
    binary: str = "redis-server",
    account: str | None = None,
    target_version: int | None = None,
    apply_settings: bool = True,
) -> ClusterSeed:
    """Start a ``shards``-node cluster under ``directory`` seeded from snapshot ``name``.

    With ``apply_settings`` every node starts with the settings the snapshot
    recorded from its source (maxmemory, policy, encoding thresholds, ...).
    """
    began = time.monotonic()
    settings = (settings_config(catalog.describe(name).source.settings, binary)
                if apply_settings else {})
    root = Path(directory)
    nodes = []
    for index, slots in enumerate(slot_ranges(shards)):
        node_dir = root / f"node-{index}"
        node_dir.mkdir(parents=True, exist_ok=True)
        nodes.append(SeededNode(port=_free_port(), directory=node_dir, slots=slots, keys=0,
                                bus_port=_free_port()))
    try:
        counts = split_snapshot(catalog, name, [n.directory for n in nodes], account=account,
                                target_version=target_version or binary_rdb_version(binary))
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    for node, count in zip(nodes, counts):
        node.keys = count
    seed = ClusterSeed(nodes, 0.0)
    try:
        for node in nodes:
            node.process = start_seeded_server(
                binary, node.directory, node.port, ready_timeout=START_TIMEOUT_S,
                extra_config={
                    **settings,
                    "cluster-enabled": "yes",
                    # the default bus port, port + 10000, does not exist above port 55535
                    "cluster-port": str(node.bus_port),
                    "cluster-config-file": "nodes.conf",
                    "cluster-node-timeout": "5000",
                })
        deadline = time.monotonic() + START_TIMEOUT_S
        conns = [Connection("127.0.0.1", node.port, timeout=30) for node in nodes]
        try:
            for epoch, (node, conn) in enumerate(zip(nodes, conns), 1):
                owned = _own_slots(conn)
                start, end = node.slots
                missing = [s for s in range(start, end + 1) if s not in owned]
                for i in range(0, len(missing), 1024):
                    conn.call("CLUSTER", "ADDSLOTS", *missing[i : i + 1024])
                conn.call("CLUSTER", "SET-CONFIG-EPOCH", epoch)
            for node in nodes[1:]:
                conns[0].call("CLUSTER", "MEET", "127.0.0.1", node.port, node.bus_port)
            while True:
                states = [c.call("CLUSTER", "INFO") for c in conns]
                if all(b"cluster_state:ok" in s for s in states):
                    break
                if time.monotonic() > deadline:
                    raise RestoreError("the seeded cluster did not reach cluster_state:ok")
                time.sleep(0.1)
        finally:
            for conn in conns:
                conn.close()
    except BaseException:
        seed.stop()
        raise
    seed.seconds = time.monotonic() - began
    return seed
