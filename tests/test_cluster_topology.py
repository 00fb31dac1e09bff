"""Cluster topology and slot hashing against real Redis Clusters (redis-server 7.0)."""

from __future__ import annotations

import pytest

from clusters import cluster3, cluster3r  # noqa: F401
from rdbkit.backup.cluster import SLOTS, discover, key_slot
from rdbkit.backup.connection import Connection
from rdbkit.errors import CaptureError


@pytest.mark.parametrize("key", [b"", b"a", b"user:1000", b"{user1000}.following",
                                 b"foo{}{bar}", b"foo{{bar}}zap", b"foo{bar}{zap}", b"\xff\x00"])
def test_key_slot_matches_the_server(cluster3, key):
    with Connection("127.0.0.1", cluster3.seed.port) as conn:
        assert key_slot(key) == conn.call("CLUSTER", "KEYSLOT", key)


def test_hash_tags():
    assert key_slot(b"{user1000}.following") == key_slot(b"{user1000}.followers")
    assert key_slot(b"foo{}{bar}") == key_slot(b"foo{}{bar}")  # empty tag: whole key
    assert key_slot(b"foo{}{bar}") != key_slot(b"bar")


@pytest.mark.parametrize("fixture", ["cluster3", "cluster3r"])
def test_discover_sees_every_slot_and_prefers_replicas(request, fixture):
    cluster = request.getfixturevalue(fixture)
    with Connection("127.0.0.1", cluster.seed.port) as conn:
        topology = discover(conn)
    topology.check_complete()
    assert len(topology.shards) == 3
    assert sum(e - s + 1 for shard in topology.shards for s, e in shard.slots) == SLOTS
    primaries = {n.port for n in cluster.primaries()}
    assert {s.primary.port for s in topology.shards} == primaries
    for shard in topology.shards:
        assert len(shard.replicas) == cluster.replicas_per_primary
        chosen = shard.backup_node()
        assert (chosen.role == "replica") == bool(cluster.replicas_per_primary)


def test_discover_refuses_a_standalone_node(redis7):
    with Connection("127.0.0.1", redis7.port) as conn, pytest.raises(CaptureError, match="cluster"):
        discover(conn)
