"""The sync capture method against real servers: rdbkit as a replica, into a catalog.

Every backup here is ``Catalog(LocalStore(tmp)).create(name, capture_sync(url))``:
the node's RDB arrives over a replication link, the catalog validates it with
the streaming decoder while it is stored, and the stored snapshot is then
fetched, decoded and compared key by key with what the server itself returns.
Failures (a refusing server, a link cut mid-transfer, a killed or frozen
source) must leave no snapshot, no shard object and no pending upload.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import pytest
from datasets import field_expires_view, function_codes, server_view, write_dataset
from replicas import CutProxy, primary_with_replica
from servers import redis7_binary, running_server

from rdbkit.backup.replica import ReplicaStream, capture_sync, sync_capture
from rdbkit.catalog import Catalog
from rdbkit.codec import Decoder
from rdbkit.errors import CaptureError, DecodeError, ReplicationRefusedError
from rdbkit.storage import LocalStore
from rdbkit.urls import RedisUrl

SERVER_NAMES = ("redis7", "valkey9", "redis6")
#: ms: PEXPIRETIME (7.0+) is exact; Redis 6.2 gives only PTTL.
EXPIRE_TOLERANCE_MS = {"redis7": 0, "valkey9": 0, "redis6": 1000}
HEADERS = {"redis7": ("REDIS", 10), "valkey9": ("VALKEY", 80), "redis6": ("REDIS", 9)}


def url_of(server, port: int | None = None) -> RedisUrl:
    return RedisUrl("127.0.0.1", port or server.port)


def new_catalog(tmp_path, name: str = "store") -> Catalog:
    return Catalog(LocalStore(tmp_path / name), account="t")


def decode_snapshot(catalog: Catalog, name: str, directory):
    """Fetch snapshot ``name`` as a plain RDB and decode it (values on)."""
    (path,) = catalog.fetch(name, directory)
    decoder = Decoder(str(path))
    entries = list(decoder)
    assert decoder.done and decoder.checksum_status == "ok"
    return decoder, entries


def by_key(entries) -> dict:
    out = {}
    for entry in entries:
        assert (entry.db, entry.key) not in out, f"duplicate {entry!r}"
        out[(entry.db, entry.key)] = entry
    return out


def compare(view: dict, entries, tolerance_ms: int) -> None:
    decoded = by_key(entries)
    assert set(decoded) == set(view), (
        f"only in the snapshot: {sorted(set(decoded) - set(view))[:10]}; "
        f"only on the server: {sorted(set(view) - set(decoded))[:10]}"
    )
    problems = []
    for db_key, (kind, value, expire_ms) in sorted(view.items()):
        entry = decoded[db_key]
        if entry.type != kind or entry.value != value:
            problems.append(f"{db_key}: {entry.type} {entry.value!r:.200} != {kind} {value!r:.200}")
        if (entry.expire_ms is None) != (expire_ms is None) or (
            expire_ms is not None and abs(entry.expire_ms - expire_ms) > tolerance_ms
        ):
            problems.append(f"{db_key}: expire_ms {entry.expire_ms}, server says {expire_ms}")
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems[:20])


def assert_nothing_stored(catalog: Catalog) -> None:
    assert catalog.list() == []
    assert list(catalog.store.list("data/")) == []
    assert list(catalog.store.list_pending("")) == []


def fill_random(server, n_keys: int, value_size: int = 1024) -> None:
    """``n_keys`` strings of incompressible bytes (so the RDB is as big as the data)."""
    with contextlib.closing(server.client(socket_timeout=120)) as client:
        pipe = client.pipeline(transaction=False)
        for i in range(n_keys):
            pipe.set(b"rnd:%07d" % i, os.urandom(value_size))
            if i % 2000 == 1999:
                pipe.execute()
        pipe.execute()


# -- every type, every server ------------------------------------------------------


@pytest.fixture(scope="module", params=SERVER_NAMES)
def synced(request, tmp_path_factory):
    """One server's full dataset backed up by sync capture, and the server's own view."""
    server = request.getfixturevalue(request.param)
    dataset = write_dataset(server)
    server.config_set("repl-diskless-sync-delay", "0")
    tmp = tmp_path_factory.mktemp(f"sync-{request.param}")
    catalog = new_catalog(tmp)
    capture = capture_sync(url_of(server))
    manifest = catalog.create("full", capture)
    decoder, entries = decode_snapshot(catalog, "full", tmp / "fetched")
    view = server_view(server)
    fields = field_expires_view(server, dataset.field_expires)
    yield request.param, server, capture, manifest, decoder, entries, view, fields
    server.reset()


def test_every_key_equals_the_servers_view(synced):
    name, _, _, _, _, entries, view, _ = synced
    compare(view, entries, EXPIRE_TOLERANCE_MS[name])


def test_header_functions_and_field_expiry(synced):
    name, server, _, _, decoder, entries, _, fields = synced
    assert (decoder.magic, decoder.version) == HEADERS[name]
    assert sorted(decoder.functions) == function_codes(server)
    for db_key, entry in by_key(entries).items():
        assert entry.field_expires == fields.get(db_key), db_key
    if name == "valkey9":
        assert fields, "valkey 9 must have hashes with field TTLs (they need RDB 80 on the link)"


def test_manifest_records_the_source(synced):
    name, server, capture, manifest, _, entries, _, _ = synced
    stream = capture.shards[0].data
    assert isinstance(stream, ReplicaStream) and stream.complete
    assert manifest.keys == len(entries)
    assert manifest.shards[0].rdb_size == stream.bytes_received
    assert manifest.shards[0].node == f"127.0.0.1:{server.port}"
    assert manifest.consistency == "point-in-time"
    source = manifest.source
    assert source.url == f"redis://127.0.0.1:{server.port}/0"
    assert (source.engine, source.engine_version) == (
        "valkey" if name == "valkey9" else "redis",
        server.version,
    )
    assert source.cluster is False
    assert source.settings["databases"] == "16"
    assert source.settings["maxmemory-policy"] in ("allkeys-lru", "allkeys-lfu")
    assert "maxmemory" in source.settings
    assert stream.command == "PSYNC" and len(stream.replid) == 40 and stream.offset >= 0


# -- framings --------------------------------------------------------------------


@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_both_framings(redis7, tmp_path, diskless):
    write_dataset(redis7)
    redis7.config_set("repl-diskless-sync", diskless)
    redis7.config_set("repl-diskless-sync-delay", "0")
    catalog = new_catalog(tmp_path)
    capture = capture_sync(url_of(redis7))
    catalog.create("framing", capture)
    stream = capture.shards[0].data
    if diskless == "yes":
        assert (stream.framing, stream.size) == ("eof", None)
    else:
        assert stream.framing == "length" and stream.size == stream.bytes_received
    _, entries = decode_snapshot(catalog, "framing", tmp_path / "out")
    compare(server_view(redis7), entries, 0)
    redis7.reset()


def test_eof_mark_split_across_reads(redis7, monkeypatch):
    """Tiny reads: the 40-byte mark arrives in pieces and must still end the RDB exactly."""
    from rdbkit.backup import replica

    write_dataset(redis7)
    redis7.config_set("repl-diskless-sync-delay", "0")
    monkeypatch.setattr(replica, "RECV_SIZE", 7)
    facts, stream = sync_capture(url_of(redis7))
    data = b"".join(stream)
    monkeypatch.undo()
    assert stream.framing == "eof" and len(data) == stream.bytes_received
    decoder = Decoder()
    decoder.feed(data)
    n = sum(1 for _ in decoder)
    decoder.close()
    assert decoder.checksum_status == "ok" and n == len(server_view(redis7))
    assert facts.engine == "redis" and facts.version == redis7.version
    redis7.reset()


def test_psync_renamed_falls_back_to_sync(tmp_path):
    config = {"rename-command": 'PSYNC ""', "repl-diskless-sync": "no"}
    with running_server("nopsync", redis7_binary(), config) as server:
        with contextlib.closing(server.client()) as client:
            client.mset({f"k{i}": f"v{i}" for i in range(500)})
        catalog = new_catalog(tmp_path)
        capture = capture_sync(url_of(server), connection_options={"timeout": 60, "db": 0})
        manifest = catalog.create("fallback", capture)
        stream = capture.shards[0].data
        assert stream.timeout == 60
        assert stream.command == "SYNC" and stream.replid is None
        assert stream.framing == "length"
        assert manifest.keys == 500


# -- a busy source ---------------------------------------------------------------


def test_backup_under_concurrent_writes(redis7, tmp_path):
    redis7.reset()
    redis7.config_set("repl-diskless-sync-delay", "0")
    with contextlib.closing(redis7.client()) as client:
        client.execute_command("DEBUG", "POPULATE", 200_000, "pre", 100)
    stop = threading.Event()
    writes = [0]

    def load() -> None:
        with contextlib.closing(redis7.client()) as c:
            i = 0
            while not stop.is_set():
                pipe = c.pipeline(transaction=False)
                for _ in range(50):
                    pipe.set(f"w:{i}", "x" * (i % 300))
                    pipe.incr("counter")
                    pipe.lpush(f"list:{i % 100}", i)
                    i += 1
                pipe.execute()
                writes[0] = i

    writer = threading.Thread(target=load)
    writer.start()
    try:
        time.sleep(0.3)
        catalog = new_catalog(tmp_path)
        manifest = catalog.create("busy", capture_sync(url_of(redis7)))
        during = writes[0]
    finally:
        stop.set()
        writer.join()
    _, entries = decode_snapshot(catalog, "busy", tmp_path / "out")
    keys = {e.key for e in entries}
    assert manifest.keys == len(entries)
    assert sum(k.startswith(b"pre:") for k in keys) == 200_000
    assert b"counter" in keys and any(k.startswith(b"w:") for k in keys)
    assert during > 0 and writes[0] > during, "the writer must have run during the backup"
    redis7.reset()


def test_waits_through_a_delayed_sync_on_server_keepalives(redis7):
    """The server holds the sync back (diskless delay 3 s) and sends "\\n" meanwhile: a
    2 s read timeout does not fire, and rdbkit stays quiet (the server only forks
    once its waiting replicas have been idle for the delay)."""
    redis7.reset()
    redis7.config_set("repl-diskless-sync", "yes")
    redis7.config_set("repl-diskless-sync-delay", "3")
    with contextlib.closing(redis7.client()) as client:
        client.set("k", "v")
        started = time.monotonic()  # +FULLRESYNC itself comes only when the fork starts
        _, stream = sync_capture(url_of(redis7), timeout=2.0)
        data = b"".join(stream)
        waited = time.monotonic() - started
    assert 2.0 < waited < 30, "the server should have delayed the transfer"
    assert stream.framing == "eof" and data.startswith(b"REDIS0010")
    redis7.reset()


@pytest.mark.parametrize("rdb_only", [False, True])
def test_acks_while_the_payload_flows(redis7, rdb_only):
    """A slow consumer: between reads rdbkit sends REPLCONF ACK about once a second, except
    on an rdb-only link, which the server closes after the RDB (an unread ACK then turns
    its close into a reset that can cut the RDB's tail)."""
    redis7.reset()
    redis7.config_set("repl-diskless-sync", "no")
    fill_random(redis7, 8_000)
    slow = [0]

    def slow_consumer(n: int) -> None:
        if slow[0] < 4:
            slow[0] += 1
            time.sleep(0.6)

    with contextlib.closing(redis7.client()) as client:
        client.config_resetstat()
        _, stream = sync_capture(url_of(redis7), progress=slow_consumer, rdb_only=rdb_only)
        data = b"".join(stream)
        calls = client.info("commandstats")["cmdstat_replconf"]["calls"]
    assert stream.framing == "length" and len(data) == stream.size
    assert stream.rdb_only_accepted == rdb_only
    if rdb_only:
        assert calls == 3, f"3 handshake REPLCONFs and no ACK, got {calls}"
    else:
        assert calls >= 2 + 1, f"2 handshake REPLCONFs plus at least one ACK, got {calls}"
    redis7.reset()


def test_capture_from_a_replica(tmp_path):
    with primary_with_replica({"repl-diskless-sync-delay": "0"},
                              {"repl-diskless-sync-delay": "0"}) as (primary, replica):
        with contextlib.closing(primary.client()) as client:
            client.mset({f"k{i}": f"v{i}" for i in range(1000)})
            client.execute_command("WAIT", 1, 5000)
        catalog = new_catalog(tmp_path)
        manifest = catalog.create("from-replica", capture_sync(url_of(replica)))
        assert manifest.keys == 1000
        with contextlib.closing(primary.client()) as client:
            replicas = client.info("replication")["connected_slaves"]
        assert replicas == 1, "the backup must not linger as a replica"


# -- refusals and failures -------------------------------------------------------


def test_renamed_sync_and_psync_are_refused(tmp_path):
    config = {"rename-command": 'SYNC ""\nrename-command PSYNC ""'}
    with running_server("nosync", redis7_binary(), config) as server:
        catalog = new_catalog(tmp_path)
        with pytest.raises(ReplicationRefusedError) as info:
            catalog.create("refused", capture_sync(url_of(server)))
        message = str(info.value)
        assert f"127.0.0.1:{server.port}" in message and "SYNC" in message
        assert "unknown command" in message.lower() and "\n" not in message
        assert list(catalog.store.list("")) == []
        assert list(catalog.store.list_pending("")) == []


def test_user_without_replication_rights_is_refused(redis7, tmp_path):
    with contextlib.closing(redis7.client()) as client:
        client.execute_command("ACL", "SETUSER", "reader", "on", ">pw", "~*", "+@read", "+ping",
                               "+info", "+config|get", "+client|setname")
        try:
            url = RedisUrl("127.0.0.1", redis7.port, username="reader", password="pw")
            with pytest.raises(ReplicationRefusedError, match="(?i)noperm|permission"):
                capture_sync(url)
        finally:
            client.execute_command("ACL", "DELUSER", "reader")


@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_link_cut_mid_transfer_leaves_nothing(tmp_path, diskless):
    config = {"repl-diskless-sync": diskless, "repl-diskless-sync-delay": "0"}
    with running_server("cut", redis7_binary(), config) as server:
        fill_random(server, 8_000)  # ~8 MB of RDB
        with CutProxy(server.port, cut_after=2 << 20) as proxy:
            catalog = new_catalog(tmp_path)
            capture = capture_sync(url_of(server, proxy.port))
            with pytest.raises(CaptureError) as info:
                catalog.create("cut", capture)
            assert proxy.cuts == 1
        error = info.value
        assert isinstance(error, CaptureError), repr(info.value)
        stream = capture.shards[0].data
        assert stream.bytes_received < (2 << 20) and str(stream.bytes_received) in str(error)
        if diskless == "no":
            assert str(stream.size) in str(error)
        else:
            assert "end mark" in str(error)
        assert_nothing_stored(catalog)


def test_source_killed_mid_transfer_leaves_nothing(tmp_path):
    config = {"repl-diskless-sync": "yes", "repl-diskless-sync-delay": "0"}
    with running_server("killed", redis7_binary(), config) as server:
        fill_random(server, 30_000)  # ~30 MB of RDB
        seen = [0]

        def kill_at_4mb(n: int) -> None:
            seen[0] += n
            if seen[0] >= 4 << 20 and server.process.poll() is None:
                os.kill(server.process.pid, signal.SIGKILL)

        catalog = new_catalog(tmp_path)
        capture = capture_sync(url_of(server), progress=kill_at_4mb)
        with pytest.raises(CaptureError) as info:
            catalog.create("killed", capture)
        error = info.value
        assert isinstance(error, (CaptureError, DecodeError)), repr(info.value)
        assert server.process.wait(10) == -signal.SIGKILL
        assert_nothing_stored(catalog)


def test_frozen_source_times_out(tmp_path):
    config = {"repl-diskless-sync": "no"}
    with running_server("frozen", redis7_binary(), config) as server:
        fill_random(server, 30_000)
        frozen = []

        def freeze_at_1mb(n: int) -> None:
            if not frozen and capture.shards[0].data.bytes_received >= 1 << 20:
                frozen.append(time.monotonic())
                os.kill(server.process.pid, signal.SIGSTOP)

        catalog = new_catalog(tmp_path)
        capture = capture_sync(url_of(server), timeout=2.0, progress=freeze_at_1mb)
        try:
            with pytest.raises(CaptureError) as info:
                catalog.create("frozen", capture)
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        error = info.value
        assert isinstance(error, CaptureError) and "sent nothing for 2.0 s" in str(error)
        assert time.monotonic() - frozen[0] < 30
        assert_nothing_stored(catalog)


def test_stopping_early_closes_the_link(redis7):
    redis7.reset()
    redis7.config_set("repl-diskless-sync-delay", "0")
    with contextlib.closing(redis7.client()) as client:
        client.execute_command("DEBUG", "POPULATE", 50_000, "k", 100)
    _, stream = sync_capture(url_of(redis7))
    chunks = iter(stream)
    assert next(chunks)[:5] == b"REDIS"
    chunks.close()
    assert stream._conn is None and not stream.complete and stream.error is None
    with pytest.raises(CaptureError, match="already consumed"):
        iter(stream)
    redis7.reset()


def test_unreachable_source_is_a_capture_error():
    with running_server("gone", redis7_binary()) as server:
        port = server.port
    with pytest.raises(CaptureError, match=f"127.0.0.1:{port}"):
        capture_sync(RedisUrl("127.0.0.1", port))
