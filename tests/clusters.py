"""Real Redis Clusters for the tests: N primaries (and R replicas each) of Debian's
redis-server 7.0, each on a free loopback port, joined by ``redis-cli --cluster create``.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from servers import ServerHandle, free_port, redis7_binary, running_server

#: Seconds a new cluster gets to report cluster_state:ok on every node.
CLUSTER_READY_S = 60.0
CLUSTER_CONFIG = {
    "cluster-enabled": "yes",
    "cluster-config-file": "nodes.conf",
    "cluster-node-timeout": "5000",
    "enable-debug-command": "local",
}


@dataclass
class ClusterHandle:
    nodes: list[ServerHandle]
    replicas_per_primary: int

    @property
    def seed(self) -> ServerHandle:
        return self.nodes[0]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.seed.port}"

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.seed.port, socket_timeout=30,
                                  socket_connect_timeout=10)

    def primaries(self) -> list[ServerHandle]:
        out = []
        for node in self.nodes:
            with contextlib.closing(node.client()) as c:
                if c.info("replication")["role"] == "master":
                    out.append(node)
        return out


def _wait_ok(nodes: list[ServerHandle], replicas: int) -> None:
    deadline = time.monotonic() + CLUSTER_READY_S
    while time.monotonic() < deadline:
        ready = True
        for node in nodes:
            with contextlib.closing(node.client()) as c:
                info = c.execute_command("CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                if "cluster_state:ok" not in text:
                    ready = False
                    break
                repl = c.info("replication")
                if repl["role"] == "slave" and (repl.get("master_link_status") != "up"
                                                or repl.get("master_sync_in_progress")):
                    ready = False
                    break
        if ready:
            return
        time.sleep(0.2)
    raise RuntimeError("the cluster did not become ready: " + "; ".join(
        n.log_tail(5) for n in nodes))


@contextlib.contextmanager
def running_cluster(primaries: int = 3, replicas: int = 0) -> Iterator[ClusterHandle]:
    """Start ``primaries × (1 + replicas)`` redis-server 7.0 nodes and create the cluster."""
    binary = redis7_binary()
    with contextlib.ExitStack() as stack:
        nodes = [
            stack.enter_context(running_server(
                f"cluster{i}", binary,
                # the default bus port, port + 10000, does not exist for ports above 55535
                {**CLUSTER_CONFIG, "cluster-port": str(free_port())}))
            for i in range(primaries * (1 + replicas))
        ]
        subprocess.run(
            ["redis-cli", "--cluster", "create",
             *(f"127.0.0.1:{n.port}" for n in nodes),
             "--cluster-replicas", str(replicas), "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )
        _wait_ok(nodes, replicas)
        yield ClusterHandle(nodes, replicas)


@pytest.fixture(scope="session")
def cluster3() -> Iterator[ClusterHandle]:
    """Three primaries, no replicas."""
    with running_cluster(3, 0) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def cluster3r() -> Iterator[ClusterHandle]:
    """Three primaries with one replica each."""
    with running_cluster(3, 1) as cluster:
        yield cluster
