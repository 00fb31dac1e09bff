"""The node driven by redis-py and redis-cli: every command of this slice."""

from __future__ import annotations

import contextlib
import subprocess
import time

import pytest
import redis

from nodes import RawClient, node  # noqa: F401  (fixture)


@pytest.fixture
def r(node):  # noqa: F811
    node.reset()
    with contextlib.closing(node.client()) as client:
        yield client


def test_strings(r):
    assert r.set("a", "1") is True
    assert r.get("a") == b"1"
    assert r.set("a", "2", nx=True) is None
    assert r.set("b", "2", xx=True) is None
    assert r.set("a", "3", get=True) == b"1"
    assert r.set("t", "v", ex=100) and 99 <= r.ttl("t") <= 100
    assert r.set("t", "v", px=100000) and 99000 < r.pttl("t") <= 100000
    at = int(time.time()) + 1000
    assert r.set("t", "v", exat=at) and r.expiretime("t") == at
    assert r.set("t", "v", pxat=at * 1000) and r.pexpiretime("t") == at * 1000
    assert r.set("t", "w", keepttl=True) and r.pexpiretime("t") == at * 1000
    assert r.setnx("n", "x") is True and r.setnx("n", "y") is False
    assert r.execute_command("SETEX", "e", 100, "v") and 99 <= r.ttl("e") <= 100
    assert r.psetex("p", 100000, "v") and r.pttl("p") > 90000
    assert r.mset({"m1": "1", "m2": "2"}) is True
    assert r.mget("m1", "m2", "nope") == [b"1", b"2", None]
    assert r.msetnx({"m1": "x", "m3": "3"}) is False and r.msetnx({"m3": "3", "m4": "4"}) is True
    assert r.incr("c") == 1 and r.incrby("c", 10) == 11 and r.decr("c") == 10
    assert r.decrby("c", 3) == 7
    assert r.incrbyfloat("f", 1.5) == 1.5 and r.incrbyfloat("f", 0.25) == 1.75
    assert r.append("s", "Hello") == 5 and r.append("s", " World") == 11
    assert r.strlen("s") == 11 and r.getrange("s", 0, 4) == b"Hello"
    assert r.setrange("s", 6, "Redis") == 11 and r.get("s") == b"Hello Redis"
    assert r.getdel("s") == b"Hello Redis" and r.get("s") is None
    r.set("g", "v")
    assert r.getex("g", ex=50) == b"v" and 49 <= r.ttl("g") <= 50
    assert r.getex("g", persist=True) == b"v" and r.ttl("g") == -1
    assert r.getset("g", "w") == b"v"
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.incr("g")


def test_binary_safe_values(r):
    value = bytes(range(256)) * 100
    r.set(b"\x00key\r\n", value)
    assert r.get(b"\x00key\r\n") == value


def test_keys_and_expiry(r):
    r.mset({"a": 1, "b": 2, "c": 3})
    assert r.exists("a", "b", "zz") == 2
    assert r.delete("a", "zz") == 1 and r.unlink("b") == 1
    assert r.type("c") == b"string" and r.type("zz") == b"none"
    assert r.expire("c", 100) and r.ttl("c") == 100
    assert r.expire("c", 50, nx=True) is False and r.expire("c", 50, xx=True) is True
    assert r.expire("c", 40, gt=True) is False and r.expire("c", 60, gt=True) is True
    assert r.pexpire("c", 10000, lt=True) is True and 0 < r.pttl("c") <= 10000
    assert r.expireat("c", int(time.time()) + 500) is True
    assert r.pexpireat("c", int(time.time() * 1000) + 500000) is True
    assert r.persist("c") is True and r.ttl("c") == -1 and r.persist("c") is False
    r.rename("c", "d")
    assert r.get("d") == b"3" and r.renamenx("d", "e") is True and r.renamenx("e", "e") is False
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.rename("nope", "x")
    assert sorted(r.keys("*")) == [b"e"] and r.randomkey() == b"e"
    assert r.dbsize() == 1
    r.set("short", "v", px=30)
    time.sleep(0.06)
    assert r.get("short") is None  # lazy expiry
    assert r.flushdb() is True and r.dbsize() == 0


def test_active_expiry_removes_keys_nobody_reads(r):
    for i in range(500):
        r.set(f"k{i}", "v", px=50)
    r.set("keep", "v")
    deadline = time.monotonic() + 5
    while r.dbsize() > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert r.dbsize() == 1
    assert r.info("stats")["expired_keys"] >= 500


def test_scan_returns_every_key_once_even_while_keys_change(r):
    keys = {f"key:{i}".encode() for i in range(3000)}
    r.mset({k: b"v" for k in keys})
    seen = []
    cursor = 0
    rounds = 0
    while True:
        cursor, batch = r.scan(cursor, count=100)
        seen.extend(batch)
        if rounds % 5 == 0:  # concurrent writes of other keys must not hide the stable ones
            r.set(f"extra:{rounds}", "x")
        rounds += 1
        if cursor == 0:
            break
    assert keys <= set(seen)
    assert len([k for k in seen if k in keys]) == len(keys)
    assert rounds > 10
    assert set(r.scan_iter(match="key:1*", count=1000)) == {k for k in keys if k.startswith(b"key:1")}
    assert set(r.scan_iter(_type="string", count=500)) >= keys
    assert list(r.scan_iter(_type="list")) == []


def test_dump_restore_round_trip(r):
    r.set("s", "hello", ex=100)
    payload = r.dump("s")
    r.restore("t", 0, payload)
    assert r.get("t") == b"hello" and r.ttl("t") == -1
    with pytest.raises(redis.ResponseError, match="BUSYKEY"):
        r.restore("t", 0, payload)
    r.restore("t", 5000, payload, replace=True)
    assert 0 < r.pttl("t") <= 5000
    r.restore("u", int(time.time() * 1000) + 100000, payload, absttl=True, idletime=10)
    assert 90 < r.ttl("u") <= 100
    r.restore("v", 0, payload, frequency=5)
    assert r.object("encoding", "v") == b"embstr"
    r.set("i", 42)
    assert r.object("encoding", "i") == b"int"
    with pytest.raises(redis.ResponseError, match="checksum"):
        r.restore("w", 0, payload[:-1] + b"\x00")


def test_select_and_databases(r):
    r.set("a", "db0")
    r.execute_command("SELECT", 5)  # the same connection now uses db 5
    assert r.get("a") is None
    r.set("a", "db5")
    r.execute_command("SELECT", 0)
    assert r.get("a") == b"db0"
    assert r.info("keyspace") == {"db0": {"keys": 1, "expires": 0, "avg_ttl": 0},
                                  "db5": {"keys": 1, "expires": 0, "avg_ttl": 0}}
    r.flushall()
    assert r.info("keyspace") == {}


def test_server_commands(r):
    assert r.ping() is True and r.echo("hi") == b"hi"
    seconds, micros = r.time()
    assert abs(seconds - time.time()) < 5 and 0 <= micros < 1_000_000
    info = r.info()
    for field in ("redis_version", "connected_clients", "used_memory", "rdb_changes_since_last_save",
                  "total_commands_processed", "role"):
        assert field in info
    assert r.info("replication")["role"] == "master"
    assert r.config_get("databases") == {"databases": "16"}
    assert r.config_get("dbfile*") == {"dbfilename": "dump.rdb"}
    assert r.config_set("hz", 20) is True and r.config_get("hz") == {"hz": "20"}
    r.config_set("hz", 10)
    with pytest.raises(redis.ResponseError, match="Unknown option"):
        r.config_set("nonsense", 1)
    with pytest.raises(redis.ResponseError, match="immutable"):
        r.config_set("databases", 3)
    assert r.client_setname("tester") is True and r.client_getname() == "tester"
    cid = r.client_id()
    assert any(c["id"] == str(cid) and c["name"] == "tester" for c in r.client_list())
    assert r.client_info()["name"] == "tester"
    assert r.lastsave() is not None
    assert r.command_count() > 50
    info = r.command()  # redis-py parses the whole COMMAND reply
    assert info["get"]["arity"] == 2 and info["set"]["arity"] == -3
    assert "readonly" in info["get"]["flags"] and info["mset"]["step_count"] == 2
    port = r.connection_pool.connection_kwargs["port"]
    with contextlib.closing(RawClient(port)) as raw:  # redis-py mis-parses COMMAND DOCS
        assert raw.call("COMMAND", "DOCS", "get").startswith(b"*2\r\n$3\r\nget\r\n*6\r\n")


def test_transactions(r):
    with r.pipeline(transaction=True) as pipe:
        pipe.set("a", 1).incr("a").get("a")
        assert pipe.execute() == [True, 2, b"2"]
    other = redis.Redis(port=r.connection_pool.connection_kwargs["port"])
    try:
        with r.pipeline(transaction=True) as pipe:
            pipe.watch("a")
            other.set("a", 100)
            pipe.multi()
            pipe.incr("a")
            with pytest.raises(redis.WatchError):
                pipe.execute()
        with r.pipeline(transaction=True) as pipe:
            pipe.watch("a")
            pipe.multi()
            pipe.incr("a")
            assert pipe.execute() == [101]
    finally:
        other.close()


def test_resp3_with_redis_py(node):  # noqa: F811
    node.reset()
    with contextlib.closing(node.client(protocol=3)) as r3:
        assert r3.set("f", "1.5") is True
        assert r3.incrbyfloat("f", 1) == 2.5
        assert r3.config_get("databases") == {"databases": "16"}
        assert r3.exists("f") == 1 and r3.get("missing") is None


def test_pipelining(r):
    with r.pipeline(transaction=False) as pipe:
        for i in range(5000):
            pipe.set(f"k{i}", i)
        for i in range(5000):
            pipe.get(f"k{i}")
        out = pipe.execute()
    assert out[5000:] == [str(i).encode() for i in range(5000)]


def _cli(node, *args, stdin: str | None = None) -> str:  # noqa: F811
    return subprocess.run(["redis-cli", "-p", str(node.port), *args], input=stdin,
                          capture_output=True, text=True, timeout=30, check=True).stdout


def test_redis_cli(node):  # noqa: F811
    node.reset()
    assert _cli(node, "PING") == "PONG\n"
    assert _cli(node, "SET", "k", "hello world") == "OK\n"
    assert _cli(node, "GET", "k") == "hello world\n"
    assert _cli(node, "INCR", "n") == "1\n"
    assert "ERR unknown command" in _cli(node, "NOPE")
    assert _cli(node, "--scan") == "k\nn\n" or _cli(node, "--scan") == "n\nk\n"
    assert "redis_version:" in _cli(node, "INFO", "server")
    assert _cli(node, "-3", "HELLO", "3").split()[:6] == ["server", "redis", "version", "7.0.15",
                                                           "proto", "3"]
    out = _cli(node, stdin="SET a 1\nGET a\nMULTI\nINCR a\nEXEC\n")
    assert out.split() == ["OK", "1", "OK", "QUEUED", "2"]
    piped = "".join(f"*3\r\n$3\r\nSET\r\n${len(f'p{i}')}\r\np{i}\r\n$1\r\nv\r\n" for i in range(1000))
    out = subprocess.run(["redis-cli", "-p", str(node.port), "--pipe"], input=piped,
                         capture_output=True, text=True, timeout=30)
    assert "errors: 0, replies: 1000" in out.stdout
    assert _cli(node, "DBSIZE") == "1003\n"


def test_redis_benchmark_runs_without_errors(node):  # noqa: F811
    node.reset()
    out = subprocess.run(["redis-benchmark", "-p", str(node.port), "-t", "set,get", "-n", "20000",
                          "-q"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    text = out.stdout.replace("\r", "\n")
    assert "SET:" in text and "GET:" in text and "requests per second" in text
    assert "ERR" not in text and "error" not in text.lower()
