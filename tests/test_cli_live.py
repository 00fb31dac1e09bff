"""The live-node commands end to end: ``rdbkit backup`` then ``restore``, ``seed``
(with ``--start``) and ``cluster seed``, against real redis-server 7.0 processes."""

from __future__ import annotations

import contextlib
import json
import subprocess

import pytest
import redis
from click.testing import CliRunner

from datasets import server_view, write_dataset
from servers import free_port, redis7_binary, running_server
from rdbkit.cli import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def ok(result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result.stdout


@pytest.fixture(scope="module")
def backed_up(redis7, tmp_path_factory):
    """The mixed dataset backed up from redis7 with the CLI, and the server's view of it."""
    write_dataset(redis7)
    expected = server_view(redis7)
    store = tmp_path_factory.mktemp("cli-live") / "store"
    ok(run("backup", f"redis://127.0.0.1:{redis7.port}/0", store, "--account", "t",
           "--name", "b1", "--method", "sync"))
    return ["--store", store, "--account", "t"], expected


def _same(view, expected):
    assert set(view) == set(expected)
    for key, (kind, value, expire) in expected.items():
        got_kind, got_value, got_expire = view[key]
        assert (got_kind, got_value) == (kind, value), key
        assert (expire is None) == (got_expire is None), key


def test_restore_into_a_fresh_node_and_refuse_existing(backed_up):
    store, expected = backed_up
    with running_server("target", redis7_binary()) as target:
        url = f"redis://127.0.0.1:{target.port}/0"
        report = json.loads(ok(run("restore", "b1", url, "--json", *store)))
        assert report["keys_written"] == len(expected)
        _same(server_view(target), expected)
        again = run("restore", "b1", url, *store)
        assert again.exit_code == 1 and "already exists" in again.stderr
        assert "Traceback" not in again.stderr
        ok(run("restore", "b1", url, "--replace", *store))


def test_seed_and_start(backed_up, tmp_path):
    store, expected = backed_up
    port = free_port()
    out = ok(run("seed", "b1", "--dir", tmp_path / "node", "--start", redis7_binary(),
                 "--port", port, *store))
    assert "seeded" in out and "started" in out
    client = redis.Redis(port=port, socket_timeout=30)
    try:
        assert client.dbsize() == sum(1 for db, _ in expected if db == 0)
        check = subprocess.run(["redis-check-rdb", str(tmp_path / "node" / "dump.rdb")],
                               capture_output=True, text=True, timeout=120)
        assert check.returncode == 0, check.stdout
    finally:
        with contextlib.suppress(redis.RedisError):
            client.shutdown(nosave=True)
        client.close()


def test_cluster_seed_refuses_multi_db_and_seeds_db0(redis7, backed_up, tmp_path):
    store, _ = backed_up
    bad = run("cluster", "seed", "b1", "--shards", 3, "--dir", tmp_path / "c1", *store)
    assert bad.exit_code == 1 and "only db 0" in bad.stderr
    redis7.reset()
    with contextlib.closing(redis7.client()) as c:
        c.mset({f"k{i}": i for i in range(1000)})
    ok(run("backup", f"redis://127.0.0.1:{redis7.port}/0", store[1], "--account", "t",
           "--name", "db0"))
    out = ok(run("cluster", "seed", "db0", "--shards", 3, "--dir", tmp_path / "c2",
                 "--binary", redis7_binary(), *store))
    assert "cluster ready at redis+cluster://" in out
    ports = [int(line.split(":")[1].split()[0]) for line in out.splitlines()
             if line.startswith("127.0.0.1:")]
    try:
        cluster = redis.RedisCluster(host="127.0.0.1", port=ports[0], socket_timeout=30)
        with contextlib.closing(cluster):
            assert sum(redis.Redis(port=p).dbsize() for p in ports) == 1000
            assert cluster.get("k999") == b"999"
    finally:
        for p in ports:
            with contextlib.suppress(redis.RedisError):
                redis.Redis(port=p).shutdown(nosave=True)


def test_settings_recorded_and_applied_when_seeding(redis7, tmp_path):
    redis7.reset()
    redis7.config_set("maxmemory", "123456789")
    redis7.config_set("hash-max-listpack-entries", "77")
    redis7.config_set("notify-keyspace-events", "")
    with contextlib.closing(redis7.client()) as c:
        c.set("a", "1")
    store = ["--store", tmp_path / "store", "--account", "t"]
    ok(run("backup", f"redis://127.0.0.1:{redis7.port}/0", tmp_path / "store", "--account", "t",
           "--name", "cfg", "--method", "cooperative"))
    described = json.loads(ok(run("snapshot", "describe", "cfg", "--json", *store)))
    settings = described["source"]["settings"]
    assert settings["maxmemory"] == "123456789" and settings["hash-max-listpack-entries"] == "77"
    assert "hash-max-ziplist-entries" not in settings  # one name per setting
    assert "settings:" in ok(run("snapshot", "describe", "cfg", *store))
    port = free_port()
    ok(run("seed", "cfg", "--dir", tmp_path / "n1", "--start", redis7_binary(), "--port", port,
           *store))
    seeded = redis.Redis(port=port, socket_timeout=30)
    try:
        assert seeded.config_get("maxmemory")["maxmemory"] == "123456789"
        assert seeded.config_get("hash-max-listpack-entries")["hash-max-listpack-entries"] == "77"
    finally:
        seeded.shutdown(nosave=True)
        seeded.close()
    redis7.reset()  # puts the source's settings back for the other tests
    port = free_port()
    ok(run("seed", "cfg", "--dir", tmp_path / "n2", "--start", redis7_binary(), "--port", port,
           "--no-settings", *store))
    plain = redis.Redis(port=port, socket_timeout=30)
    try:
        assert plain.config_get("maxmemory")["maxmemory"] == "0"
    finally:
        plain.shutdown(nosave=True)
        plain.close()
