"""The catalog commands end to end: ``rdbkit import``, ``snapshot ...``, ``policy``,
``schedule run``, ``retire``, ``events`` and ``gc``, on a local store and on real
S3 endpoints, including a writer killed with SIGKILL mid-upload."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from datasets import write_dataset
from rdbbuild import E
from s3servers import aws_env, moto_s3, seaweedfs_s3  # noqa: F401
from rdbkit.cli import cli
from rdbkit.codec import Decoder, RdbWriter


def run(*args, env: dict | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, env=env)


def ok(result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result.stdout


def error_line(result) -> str:
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def write_rdb(path: Path, keys: int = 100, value_size: int = 10) -> Path:
    with open(path, "wb") as fh, RdbWriter(fh, version=10) as w:
        w.begin()
        for i in range(keys):
            w.write(E(b"key:%d" % i, "string", os.urandom(value_size)))
    return path


@pytest.fixture(scope="module")
def real_dump(redis7) -> Path:
    """A real redis-server 7.0 dump of the mixed dataset."""
    write_dataset(redis7)
    return redis7.save()


@pytest.fixture
def local(tmp_path):
    return ["--store", tmp_path / "store", "--account", "alice"]


def test_import_describe_fetch_round_trip(real_dump, local, tmp_path):
    created = json.loads(ok(run("import", real_dump, "--name", "prod-1", "--json", *local)))
    expected = list(Decoder(str(real_dump), values=False))
    assert created["keys"] == len(expected)
    assert created["rdb_version"] == 10
    assert created["kind"] == "manual" and created["owner_account"] == "alice"

    described = json.loads(ok(run("snapshot", "describe", "prod-1", "--json", *local)))
    assert described == created
    text = ok(run("snapshot", "describe", "prod-1", *local))
    assert "kept until deleted" in text and f"keys:          {len(expected)}" in text

    listed = json.loads(ok(run("snapshot", "list", "--json", *local)))
    assert [m["name"] for m in listed] == ["prod-1"]

    out = ok(run("snapshot", "fetch", "prod-1", "--dir", tmp_path / "out", *local))
    assert Path(out.strip()).read_bytes() == real_dump.read_bytes()


def test_duplicate_name_and_bad_file_are_one_line_errors(local, tmp_path):
    rdb = write_rdb(tmp_path / "a.rdb")
    ok(run("import", rdb, "--name", "a", *local))
    assert "already exists" in error_line(run("import", rdb, "--name", "a", *local))
    bad = tmp_path / "bad.rdb"
    bad.write_bytes(rdb.read_bytes()[:-30])
    line = error_line(run("import", bad, "--name", "b", *local))
    assert "at byte" in line
    assert json.loads(ok(run("snapshot", "list", "--json", *local)))[0]["name"] == "a"
    assert not list((tmp_path / "store" / "data").glob("b/*/*"))


def test_copy_export_delete_and_accounts(local, tmp_path):
    rdb = write_rdb(tmp_path / "a.rdb")
    ok(run("import", rdb, "--name", "a", *local))
    copied = json.loads(ok(run("snapshot", "copy", "a", "a-copy", "--json", *local)))
    assert copied["kind"] == "copy" and copied["copied_from"] == "a"

    ok(run("snapshot", "export", "a", tmp_path / "exports" / "a.rdb", *local))
    assert (tmp_path / "exports" / "a.rdb").read_bytes() == rdb.read_bytes()

    # Another account may not export, copy, fetch or write into alice's store.
    line = error_line(run("snapshot", "export", "a", tmp_path / "x", *local, "--to-account", "bob"))
    assert "'alice'" in line and "'bob'" in line
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
    bob = ["--store", tmp_path / "store", "--account", "bob"]
    for args in (["snapshot", "fetch", "a", "--dir", tmp_path / "bob"],
                 ["snapshot", "copy", "a", "b"],
                 ["import", rdb, "--name", "bobs"],
                 ["snapshot", "delete", "a"]):
        line = error_line(run(*args, *bob))
        assert "'alice'" in line and "'bob'" in line, line
    events = json.loads(ok(run("events", "--json", *local)))
    assert sum(e["action"] == "refuse" for e in events) == 5
    assert [e["action"] for e in events if e["action"] != "refuse"] == [
        "create", "create", "copy", "export"]

    ok(run("snapshot", "delete", "a-copy", *local))
    names = [m["name"] for m in json.loads(ok(run("snapshot", "list", "--json", *local)))]
    assert names == ["a"]


def test_policy_schedule_prune_retire(local, tmp_path):
    rdb = write_rdb(tmp_path / "cache.rdb")
    assert "outside 0..35" in error_line(run("policy", "set", rdb, "--retention-days", "36", *local))
    assert "at least 60" in error_line(run("policy", "set", rdb, "--window", "05:00-05:59", *local))
    # A window around now, so the schedule is due.
    now = time.gmtime()
    start = f"{(now.tm_hour - 1) % 24:02d}:{now.tm_min:02d}"
    end = f"{(now.tm_hour + 1) % 24:02d}:{now.tm_min:02d}"
    ok(run("policy", "set", rdb, "--retention-days", "2", "--window", f"{start}-{end}", *local))
    report = json.loads(ok(run("schedule", "run", "--json", *local)))
    assert len(report["taken"]) == 1 and report["failed"] == []
    again = json.loads(ok(run("schedule", "run", "--json", *local)))
    assert again["taken"] == [] and again["skipped"][0][1] == "already taken in this window"
    auto = json.loads(ok(run("snapshot", "list", "--kind", "automatic", "--json", *local)))
    assert len(auto) == 1 and auto[0]["expires_at"] is not None

    out = ok(run("retire", rdb, "--final-snapshot", "cache-final", *local))
    assert "deleted 1 automatic" in out
    remaining = json.loads(ok(run("snapshot", "list", "--json", *local)))
    assert [(m["name"], m["kind"]) for m in remaining] == [("cache-final", "final")]
    assert "retired" in error_line(run("snapshot", "create", "late", rdb, *local))


def test_retire_stops_when_the_final_snapshot_fails(local, tmp_path):
    rdb = write_rdb(tmp_path / "cache.rdb")
    ok(run("policy", "set", rdb, "--retention-days", "1", *local))
    rdb.write_bytes(rdb.read_bytes()[:-5])  # the source is now unreadable
    error_line(run("retire", rdb, "--final-snapshot", "final", *local))
    shown = json.loads(ok(run("policy", "show", rdb, "--json", *local)))
    assert shown[0]["retired"] is False
    assert json.loads(ok(run("snapshot", "list", "--json", *local))) == []


# --- a writer killed mid-upload, then gc ----------------------------------------------


def _s3_args(endpoint, bucket):
    return ["--store", f"s3://{bucket}/snaps", "--endpoint-url", endpoint.url,
            "--account", "123456789012", "--part-size-mib", "5", "--concurrency", "1",
            "--parts-in-flight", "1"]


def import_killed_when(args, rdb: Path, ready) -> None:
    """Run ``rdbkit import`` in a subprocess and SIGKILL it as soon as ``ready()``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rdbkit.cli", "import", str(rdb), "--name", "big", *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the import wrote nothing within 60 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("endpoint_name", ["moto", "seaweedfs"])
def test_sigkill_mid_upload_leaves_no_snapshot_and_gc_cleans(endpoint_name, request, tmp_path):
    import boto3

    endpoint = request.getfixturevalue(f"{endpoint_name}_s3")
    client = boto3.session.Session().client("s3", endpoint_url=endpoint.url,
                                            region_name="us-east-1")
    bucket = f"rdbkit-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    rdb = write_rdb(tmp_path / "big.rdb", keys=160, value_size=1 << 20)  # 160 MiB
    args = _s3_args(endpoint, bucket)

    def a_part_landed() -> bool:
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return bool(uploads) and bool(client.list_parts(
            Bucket=bucket, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"]).get("Parts"))

    import_killed_when(args, rdb, a_part_landed)
    assert json.loads(ok(run("snapshot", "list", "--json", *args))) == []
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads")

    dry = json.loads(ok(run("gc", "--older-than", "0s", "--json", *args)))
    assert len(dry["pending_uploads"]) == 1 and not dry["applied"]
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads")  # dry run kept it
    applied = json.loads(ok(run("gc", "--older-than", "0s", "--apply", "--json", *args)))
    assert len(applied["pending_uploads"]) == 1
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    left = client.list_objects_v2(Bucket=bucket, Prefix="snaps/data/").get("Contents", [])
    assert left == []


def test_sigkill_mid_write_local_then_gc(tmp_path):
    rdb = write_rdb(tmp_path / "big.rdb", keys=400, value_size=1 << 20)  # 400 MiB
    store = tmp_path / "store"
    args = ["--store", store, "--account", "alice"]
    import_killed_when(args, rdb, lambda: store.exists() and any(
        p.stat().st_size > 0 for p in store.rglob(".tmp-*")))
    assert json.loads(ok(run("snapshot", "list", "--json", *args))) == []
    # Too young for the default threshold: gc leaves a possibly live writer alone.
    assert json.loads(ok(run("gc", "--json", "--apply", *args)))["pending_uploads"] == []
    applied = json.loads(ok(run("gc", "--older-than", "0s", "--apply", "--json", *args)))
    assert len(applied["pending_uploads"]) == 1
    assert not list(store.rglob(".tmp-*"))


def test_usage_report_per_source(local, tmp_path):
    a = write_rdb(tmp_path / "a.rdb", keys=200, value_size=100)
    b = write_rdb(tmp_path / "b.rdb", keys=50, value_size=100)
    for name in ("a1", "a2", "a3"):
        ok(run("import", a, "--name", name, *local))
    ok(run("snapshot", "copy", "a1", "a1-copy", *local))
    ok(run("import", b, "--name", "b1", *local))
    ok(run("retire", b, *local))
    report = json.loads(ok(run("usage", "--json", "--price", "1000", *local)))
    by_source = {Path(s["source"]).name: s for s in report["sources"]}
    size_a, size_b = a.stat().st_size, b.stat().st_size
    sa, sb = by_source["a.rdb"], by_source["b.rdb"]
    assert sa["snapshots"] == {"manual": 3, "automatic": 0, "final": 0, "copy": 1}
    assert sa["bytes_stored"] == 4 * size_a and sa["free_bytes"] == size_a
    assert sa["monthly_cost"] == pytest.approx(1000 * 3 * size_a / 2**30, abs=1e-6)
    assert not sb["active"] and sb["free_bytes"] == 0  # a retired source has no free snapshot
    assert sb["monthly_cost"] == pytest.approx(1000 * size_b / 2**30, abs=1e-6)
    assert report["monthly_cost"] == pytest.approx(sa["monthly_cost"] + sb["monthly_cost"], abs=2e-6)
    text = ok(run("snapshot", "list", *local))
    assert "billable" in text and "total: $" in text
