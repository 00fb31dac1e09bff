"""Backup (sync and cooperative) and restore over TLS (rediss://) against a real redis-server
7.0 with a throwaway CA, server certificate and client certificate made by openssl."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest

from datasets import server_view, write_dataset
from servers import free_port, redis7_binary, running_server
from rdbkit.backup.capture import backup
from rdbkit.backup.connection import Connection, ConnectionLostError
from rdbkit.catalog import Catalog
from rdbkit.restore.restore import restore_snapshot
from rdbkit.storage import LocalStore


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.crt", "-days", "2", "-subj", "/CN=rdbkit test CA", cwd=d)
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                 f"{name}.csr", "-subj", "/CN=127.0.0.1", cwd=d)
        (d / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile",
                 f"{name}.ext", cwd=d)
    return d


@pytest.fixture(scope="module")
def tls_server(certs):
    tls_port = free_port()
    config = {
        "tls-port": str(tls_port),
        "tls-cert-file": str(certs / "server.crt"),
        "tls-key-file": str(certs / "server.key"),
        "tls-ca-cert-file": str(certs / "ca.crt"),
        "maxmemory-policy": "allkeys-lru",
        "enable-debug-command": "local",  # the dataset forces quicklist plain nodes
    }
    with running_server("tls", redis7_binary(), config) as server:
        yield server, tls_port


@pytest.fixture
def tls_env(certs, monkeypatch):
    monkeypatch.setenv("RDBKIT_TLS_CA", str(certs / "ca.crt"))
    monkeypatch.setenv("RDBKIT_TLS_CERT", str(certs / "client.crt"))
    monkeypatch.setenv("RDBKIT_TLS_KEY", str(certs / "client.key"))


def test_without_a_client_certificate_the_server_refuses(tls_server, certs, monkeypatch):
    _, tls_port = tls_server
    monkeypatch.setenv("RDBKIT_TLS_CA", str(certs / "ca.crt"))
    monkeypatch.delenv("RDBKIT_TLS_CERT", raising=False)
    with pytest.raises(ConnectionLostError):
        with Connection("127.0.0.1", tls_port, tls=True, timeout=5) as conn:
            conn.call("PING")


@pytest.mark.parametrize("method", ["sync", "cooperative"])
def test_backup_and_restore_over_tls(tls_server, tls_env, tmp_path, method):
    server, tls_port = tls_server
    write_dataset(server)
    expected = server_view(server)
    url = f"rediss://127.0.0.1:{tls_port}/0"
    catalog = Catalog(LocalStore(tmp_path / "store"), account="t")
    manifest, decision = backup(catalog, url, "tls", method=method)
    assert decision.method == method and manifest.keys == len(expected)
    with contextlib.closing(server.client()) as c:
        c.set("left-over", "x")
    report = restore_snapshot(catalog, "tls", url, flush=True)  # FLUSHALL, then the snapshot
    assert report.keys_written == len(expected)
    view = server_view(server)
    assert set(view) == set(expected)
    assert all(view[k][:2] == expected[k][:2] for k in expected)
