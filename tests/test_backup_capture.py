"""Choosing the backup method and backing up nodes and clusters end to end (library and CLI),
against real redis-server 7.0 nodes and clusters."""

from __future__ import annotations

import contextlib
import json
import time

import pytest
from click.testing import CliRunner

from clusters import cluster3, cluster3r  # noqa: F401
from datasets import server_view, write_dataset
from servers import redis7_binary, running_server
from rdbkit.backup.capture import backup, decide
from rdbkit.backup.cluster import key_slot
from rdbkit.catalog import Catalog, run_schedule
from rdbkit.backup.capture import capture_fn
from rdbkit.cli import cli
from rdbkit.codec import Decoder
from rdbkit.errors import ReplicationRefusedError
from rdbkit.storage import LocalStore
from rdbkit.urls import parse_url


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def catalog(tmp_path):
    return Catalog(LocalStore(tmp_path / "store"), account="t")


def _url(server) -> str:
    return f"redis://127.0.0.1:{server.port}/0"


def _decoded(catalog, name, tmp_path):
    paths = catalog.fetch(name, tmp_path / f"out-{name}")
    return {(e.db, e.key): e for p in paths for e in Decoder(str(p))}


def test_auto_picks_sync_when_the_fork_fits(redis7, catalog, tmp_path):
    write_dataset(redis7)
    expected = server_view(redis7)
    manifest, decision = backup(catalog, _url(redis7), "auto-1")
    assert decision.method == "sync" and decision.estimate is not None
    assert manifest.consistency == "point-in-time"
    assert manifest.source.engine == "redis" and manifest.source.engine_version.startswith("7.0")
    got = _decoded(catalog, "auto-1", tmp_path)
    assert set(got) == set(expected)


def test_cooperative_is_labelled_fuzzy(redis7, catalog, tmp_path):
    write_dataset(redis7)
    expected = server_view(redis7)
    manifest, decision = backup(catalog, _url(redis7), "coop-1", method="cooperative")
    assert decision.method == "cooperative"
    assert manifest.consistency.startswith("fuzzy")
    assert set(_decoded(catalog, "coop-1", tmp_path)) == set(expected)


@pytest.fixture(scope="module")
def no_replication():
    """A redis 7.0 node whose SYNC and PSYNC are renamed away, as on managed services."""
    with running_server("norepl", redis7_binary(),
                        {"rename-command SYNC": '""', "rename-command PSYNC": '""'}) as server:
        with contextlib.closing(server.client()) as c:
            c.mset({f"k{i}": i for i in range(500)})
        yield server


def test_refused_replication_falls_back_to_cooperative(no_replication, catalog):
    decision = decide(parse_url(_url(no_replication)))
    assert decision.method == "cooperative" and "replication refused" in decision.reason
    manifest, decision = backup(catalog, _url(no_replication), "fallback")
    assert decision.method == "cooperative" and manifest.keys == 500
    with pytest.raises(ReplicationRefusedError, match="SYNC"):
        backup(catalog, _url(no_replication), "forced", method="sync")
    assert [m.name for m in catalog.list()] == ["fallback"]
    assert list(catalog.store.list("data/forced")) == []


@pytest.mark.parametrize("fixture", ["cluster3", "cluster3r"])
def test_cluster_backup_one_object_per_shard(request, fixture, catalog, tmp_path):
    cluster = request.getfixturevalue(fixture)
    with contextlib.closing(cluster.client()) as c:
        c.flushall()
        for i in range(3000):
            c.set(f"key:{i}", i)
        c.hset("{tag}:h", mapping={"a": 1})
    if cluster.replicas_per_primary:
        time.sleep(1.0)  # let replicas catch up before reading from them
    manifest, decision = backup(catalog, cluster.url, f"cl-{fixture}")
    assert decision.method == "sync"
    assert len(manifest.shards) == 3 and manifest.source.cluster
    assert manifest.keys == 3001
    for shard in manifest.shards:
        assert shard.slots and shard.node
    primaries = {f"127.0.0.1:{n.port}" for n in cluster.primaries()}
    nodes = {s.node for s in manifest.shards}
    if cluster.replicas_per_primary:
        assert not nodes & primaries  # read from replicas
    else:
        assert nodes == primaries
    paths = catalog.fetch(manifest.name, tmp_path / "cl")
    for shard, path in zip(manifest.shards, paths):
        for entry in Decoder(str(path)):
            slot = key_slot(entry.key)
            assert any(a <= slot <= b for a, b in shard.slots)


def test_cli_backup_and_estimate(redis7, tmp_path):
    write_dataset(redis7)
    store = tmp_path / "store"
    out = run("backup", _url(redis7), store, "--account", "t", "--name", "cli-1", "--json")
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert summary["name"] == "cli-1" and summary["method"] in ("sync", "cooperative")
    assert summary["keys"] == sum(summary["keys_by_type"].values()) > 0
    est = run("estimate", _url(redis7), "--json", "--sample", "0.2")
    assert est.exit_code == 0, est.output
    data = json.loads(est.stdout)
    assert data["method"] in ("sync", "cooperative") and data["inputs"]["used_memory"] > 0
    bad = run("backup", _url(redis7), store, "--account", "t", "--name", "cli-1")
    assert bad.exit_code == 1 and "already exists" in bad.stderr


def test_schedule_takes_live_automatic_snapshots(redis7, catalog):
    with contextlib.closing(redis7.client()) as c:
        c.flushall()
        c.set("a", "1")
    url = _url(redis7)
    now = catalog.clock()
    start = f"{(now.hour - 1) % 24:02d}:{now.minute:02d}"
    end = f"{(now.hour + 1) % 24:02d}:{now.minute:02d}"
    catalog.set_policy(url, retention_days=1, window=f"{start}-{end}")
    report = run_schedule(catalog, capture_fn())
    assert [m.kind for m in report.taken] == ["automatic"] and not report.failed
    assert report.taken[0].keys == 1


def test_progress_counts_every_byte_and_key(redis7, tmp_path):
    write_dataset(redis7)
    seen = {"bytes": 0, "keys": 0}

    def progress(nbytes: int, keys: int) -> None:
        seen["bytes"] += nbytes
        seen["keys"] += keys

    catalog = Catalog(LocalStore(tmp_path / "store"), account="t", progress=progress)
    manifest, _ = backup(catalog, _url(redis7), "p", method="cooperative")
    assert seen == {"bytes": manifest.rdb_size, "keys": manifest.keys}
    out = run("backup", _url(redis7), tmp_path / "store2", "--account", "t", "--progress")
    assert out.exit_code == 0 and "keys" in out.stderr and "MiB/s" in out.stderr


def test_one_failed_shard_publishes_nothing(cluster3, tmp_path):
    """A shard whose node stops answering mid-stream fails the whole cluster snapshot."""
    import os
    import signal

    from rdbkit.errors import CaptureError

    with contextlib.closing(cluster3.client()) as c:
        c.flushall()
        pipe = c.pipeline(transaction=False)
        for i in range(30_000):
            pipe.set(f"k:{i}", os.urandom(1000))
        pipe.execute()
    frozen = cluster3.primaries()[1]
    stopped = []

    def freeze_once(nbytes: int, keys: int) -> None:
        if not stopped:  # the streams have started: stop one shard's node now
            os.kill(frozen.process.pid, signal.SIGSTOP)
            stopped.append(True)

    catalog = Catalog(LocalStore(tmp_path / "store"), account="t", progress=freeze_once)
    try:
        with pytest.raises(CaptureError, match="sent nothing"):
            backup(catalog, cluster3.url, "broken", method="sync",
                   connection_options={"timeout": 1.5})
    finally:
        os.kill(frozen.process.pid, signal.SIGCONT)
    assert stopped
    assert catalog.list() == []
    assert list(catalog.store.list("data/")) == []
    assert list(catalog.store.list_pending("")) == []


@pytest.mark.parametrize("method", ["sync", "cooperative"])
def test_acl_user_with_rights_backs_up(redis7, catalog, method):
    with contextlib.closing(redis7.client()) as c:
        c.flushall()
        c.mset({f"a{i}": i for i in range(100)})
        c.execute_command("ACL", "SETUSER", "backup", "on", ">s3cret", "~*", "&*", "+@read",
                          "+@connection", "+info", "+config|get", "+command|info", "+psync",
                          "+sync", "+replconf", "+scan", "+dump", "+pexpiretime", "+pttl",
                          "+select", "+function|dump", "+function|list")
    try:
        url = f"redis://backup:s3cret@127.0.0.1:{redis7.port}/0"
        manifest, decision = backup(catalog, url, f"acl-{method}", method=method)
        assert decision.method == method and manifest.keys == 100
        assert "s3cret" not in manifest.to_json().decode()  # no password in the manifest
        bad = f"redis://backup:wrong@127.0.0.1:{redis7.port}/0"
        with pytest.raises(Exception, match="WRONGPASS|invalid"):
            backup(catalog, bad, f"acl-bad-{method}", method=method)
    finally:
        with contextlib.closing(redis7.client()) as c:
            c.execute_command("ACL", "DELUSER", "backup")


def test_retire_takes_the_final_snapshot_from_the_primaries(cluster3r, catalog):
    with contextlib.closing(cluster3r.client()) as c:
        c.flushall()
        for i in range(200):
            c.set(f"r:{i}", i)
    time.sleep(1.0)
    regular, _ = backup(catalog, cluster3r.url, "regular", method="sync", kind="automatic")
    final, deleted = catalog.retire(cluster3r.url, final_snapshot="last",
                                    capture=capture_fn(from_primaries=True))
    primaries = {f"127.0.0.1:{n.port}" for n in cluster3r.primaries()}
    assert {s.node for s in regular.shards}.isdisjoint(primaries)  # regular: replicas
    assert {s.node for s in final.shards} == primaries  # final: primaries
    assert final.kind == "final" and final.keys == 200
    assert [m.name for m in deleted] == ["regular"]
    assert [m.name for m in catalog.list()] == ["last"]


@pytest.mark.parametrize("method", ["sync", "cooperative", "auto"])
def test_a_single_shard_of_a_cluster_is_refused(cluster3, catalog, method):
    from rdbkit.errors import CaptureError

    node = cluster3.primaries()[0]
    with pytest.raises(CaptureError, match="backed up whole.*redis\\+cluster://"):
        backup(catalog, f"redis://127.0.0.1:{node.port}/0", "one-shard", method=method)
    assert catalog.list() == [] and list(catalog.store.list("data/")) == []


def test_cooperative_backup_reports_its_pacing(redis7, tmp_path):
    with contextlib.closing(redis7.client()) as c:
        c.flushall()
        c.mset({f"p{i}": i for i in range(2000)})
    out = run("backup", _url(redis7), tmp_path / "s", "--account", "t", "--method",
              "cooperative", "--batch", "100", "--latency-budget-ms", "0.001", "--json")
    assert out.exit_code == 0, out.stderr
    (pacing,) = json.loads(out.stdout)["pacing"]
    assert pacing["keys"] == 2000 and pacing["batches"] >= 20
    assert pacing["batch_shrinks"] > 0 and pacing["batch_final"] < 100  # it slowed down
    assert pacing["latency_p99_ms"] > 0
    text = run("backup", _url(redis7), tmp_path / "s", "--account", "t", "--method",
               "cooperative", "--name", "text")
    assert "paced (shard 0):" in text.stdout
