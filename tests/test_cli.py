"""The ``rdbkit`` command line, on files real servers wrote and on damaged copies.

Commands run through click's ``CliRunner`` (stdout and stderr kept apart, so
``--json`` output must parse on its own), plus one real subprocess of
``python -m rdbkit.cli``. ``convert --to resp`` is replayed into the real
server with ``redis-cli --pipe`` and the server's own view compared with the
decoded file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from datasets import server_view, write_dataset
from rdbkit.cli import cli

from rdbkit.codec import Decoder

SERVER_NAMES = ("redis7", "valkey9", "redis6")


@dataclass
class Saved:
    name: str
    server: object
    path: Path
    entries: list  # decoded with rdbkit.codec


@pytest.fixture(scope="module", params=SERVER_NAMES)
def saved(request) -> Saved:
    """The full dataset written into one real server and SAVEd."""
    server = request.getfixturevalue(request.param)
    write_dataset(server)
    path = server.save()
    return Saved(request.param, server, path, list(Decoder(str(path))))


@pytest.fixture(scope="module")
def redis7_file(redis7) -> Path:
    write_dataset(redis7)
    return redis7.save()


def run(*args: str, input: bytes | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def one_error_line(result) -> str:
    """The single ``Error: ...`` line a user error must produce (no traceback)."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


# --- inspect -----------------------------------------------------------------------------


def test_inspect_json_counts_match_the_file(saved):
    result = run("inspect", saved.path, "--json", "--top", "3")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    entries = saved.entries
    assert report["keys"] == len(entries)
    assert report["version"] in (9, 10, 80)
    assert report["checksum"] == "ok"
    assert "redis-ver" in report["aux"] or "valkey-ver" in report["aux"]
    per_db = {}
    for e in entries:
        per_db[str(e.db)] = per_db.get(str(e.db), 0) + 1
    assert {db: info["keys"] for db, info in report["databases"].items()} == per_db
    assert report["expiring_keys"] == sum(e.expire_ms is not None for e in entries)
    hist = {(t["type"], t["encoding"]): t["keys"] for t in report["types"]}
    assert sum(hist.values()) == len(entries)
    assert hist[("list", "quicklist" if saved.name == "redis6" else "quicklist2")] >= 1
    biggest = sorted(entries, key=lambda e: e.size, reverse=True)[:3]
    assert [k["serialized_bytes"] for k in report["largest_keys"]] == [e.size for e in biggest]
    if saved.name != "redis6":
        assert any(f["library"] == "rdbkit_lib" for f in report["functions"])


def test_inspect_text_and_filters(redis7_file):
    result = run("inspect", redis7_file)
    assert result.exit_code == 0
    assert "version:   10" in result.stdout and "largest keys" in result.stdout
    assert result.stderr == ""
    only = json.loads(run("inspect", redis7_file, "--json", "--type", "hash", "--db", "0",
                          "--db", "1").stdout)
    assert {t["type"] for t in only["types"]} <= {"hash"}
    assert set(only["databases"]) <= {"0", "1"}


# --- verify --------------------------------------------------------------------------------


def test_verify_ok_line(saved):
    result = run("verify", saved.path)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("OK ")
    assert f"keys={len(saved.entries)}" in lines[0] and "checksum=ok" in lines[0]


def test_verify_truncated_copy_names_the_offset(redis7_file, tmp_path):
    data = redis7_file.read_bytes()
    cut = tmp_path / "cut.rdb"
    cut.write_bytes(data[: len(data) // 2])
    line = one_error_line(run("verify", cut))
    offset = int(line.rsplit("at byte ", 1)[1])
    assert 0 < offset <= len(data) // 2
    report = json.loads(run("verify", cut, "--json").stdout)
    assert report["ok"] is False and report["offset"] == offset
    assert report["error"] == "TruncatedError"


def test_verify_bit_flip_is_caught(redis7_file, tmp_path):
    data = bytearray(redis7_file.read_bytes())
    for position in (len(data) // 3, len(data) - 20, len(data) - 3):
        bad = tmp_path / f"flip{position}.rdb"
        flipped = bytearray(data)
        flipped[position] ^= 0x40
        bad.write_bytes(bytes(flipped))
        line = one_error_line(run("verify", bad))
        assert " at byte " in line


def test_verify_checksum_mismatch(shared_fixtures):
    line = one_error_line(run("verify", shared_fixtures / "redis__librdb" / "invalid_chksum_v8.rdb"))
    assert "checksum" in line and line.endswith("at byte 201")


def test_missing_file_is_one_line():
    line = one_error_line(run("verify", "/nonexistent/dump.rdb"))
    assert "cannot open" in line and "No such file" in line


def test_not_an_rdb(tmp_path):
    junk = tmp_path / "junk.rdb"
    junk.write_bytes(b"GARBAGE!!" * 10)
    assert "at byte 0" in one_error_line(run("inspect", junk))


def test_stdin_dash(redis7_file):
    from_file = run("verify", redis7_file).stdout
    from_stdin = run("verify", "-", input=redis7_file.read_bytes())
    assert from_stdin.exit_code == 0
    assert from_stdin.stdout == from_file


def test_progress_goes_to_stderr_only(redis7_file):
    result = run("inspect", redis7_file, "--json", "--progress")
    assert result.exit_code == 0
    json.loads(result.stdout)
    assert "inspect" in result.stderr


# --- convert -------------------------------------------------------------------------------


def test_convert_jsonl_one_line_per_key(saved):
    result = run("convert", saved.path, "--to", "jsonl")
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[0]["kind"] == "header" and records[-1]["kind"] == "footer"
    keys = [r for r in records if r["kind"] == "key"]
    assert len(keys) == len(saved.entries) == records[-1]["keys"]


def test_convert_filters(redis7_file):
    result = run("convert", redis7_file, "--to", "jsonl", "--key", "^hash:", "--type", "hash",
                 "--type", "zset", "--db", "1")
    keys = [json.loads(line) for line in result.stdout.splitlines()][1:-1]
    assert keys
    assert all(r["db"] == 1 and r["type"] in ("hash", "zset") and r["key"].startswith("hash:")
               for r in keys)


def test_convert_json_document(redis7_file):
    result = run("convert", redis7_file, "--to", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    entries = list(Decoder(str(redis7_file)))
    assert set(doc) == {str(e.db) for e in entries}
    assert sum(len(keys) for keys in doc.values()) == len(entries)


def test_convert_output_file(redis7_file, tmp_path):
    out = tmp_path / "out.jsonl"
    result = run("convert", redis7_file, "--to", "jsonl", "-o", out)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "keys written to" in result.stderr
    assert out.read_text().count("\n") == len(list(Decoder(str(redis7_file)))) + 2


def test_convert_failure_leaves_no_output(redis7_file, tmp_path):
    cut = tmp_path / "cut.rdb"
    cut.write_bytes(redis7_file.read_bytes()[:-100])
    out = tmp_path / "out.resp"
    one_error_line(run("convert", cut, "--to", "resp", "-o", out))
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def _comparable(kind: str, value):
    """Stream state a replay can reproduce (not seen times, not deleted pending entries)."""
    if kind != "stream":
        return value
    live = {e.id for e in value.entries}
    return (
        value.entries, value.length, value.last_id,
        tuple(
            (g.name, g.last_id,
             sorted((p.id, p.consumer, p.delivery_count, p.delivery_time_ms)
                    for p in g.pending if p.id in live),
             sorted(c.name for c in g.consumers))
            for g in value.groups
        ),
    )


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli (redis-tools) missing")
def test_convert_resp_replays_into_a_plain_server(saved, tmp_path):
    resp = tmp_path / "dump.resp"
    result = run("convert", saved.path, "--to", "resp", "--max-items", "100", "-o", resp)
    assert result.exit_code == 0, result.stderr
    server = saved.server
    server.reset()
    with resp.open("rb") as fh:
        piped = subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], stdin=fh,
                               capture_output=True, timeout=120, check=False)
    assert piped.returncode == 0, piped.stdout + piped.stderr
    assert b"errors: 0" in piped.stdout, piped.stdout
    view = server_view(server)
    expected = {(e.db, e.key): (e.type, e.value, e.expire_ms) for e in saved.entries
                if e.type != "module"}
    assert set(view) == set(expected)
    for k, (kind, value, expire) in expected.items():
        got_kind, got_value, got_expire = view[k]
        assert got_kind == kind, k
        assert _comparable(kind, got_value) == _comparable(kind, value), k
        if expire is not None and saved.name != "redis6":
            assert got_expire == expire, k
        else:
            assert (got_expire is None) == (expire is None), k


# --- memory --------------------------------------------------------------------------------


def test_memory_csv(saved):
    result = run("memory", saved.path)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["database", "type", "key", "size_in_bytes", "encoding", "num_elements",
                       "len_largest_element", "expiry"]
    assert len(rows) - 1 == len(saved.entries)
    for row in rows[1:]:
        assert int(row[3]) > 0
    expiring = [r for r in rows[1:] if r[7]]
    assert len(expiring) == sum(e.expire_ms is not None for e in saved.entries)
    assert all(r[7].endswith("+00:00") for r in expiring)


def test_memory_json_largest(redis7_file):
    result = run("memory", redis7_file, "--json", "--largest", "5")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    sizes = [r["size_in_bytes"] for r in rows]
    assert len(rows) == 5 and sizes == sorted(sizes, reverse=True)
    everything = json.loads(run("memory", redis7_file, "--json").stdout)
    assert sizes == sorted((r["size_in_bytes"] for r in everything), reverse=True)[:5]


# --- the real entry point ------------------------------------------------------------------


def test_module_entry_point_in_a_subprocess(redis7_file, tmp_path):
    ok = subprocess.run([sys.executable, "-m", "rdbkit.cli", "verify", str(redis7_file)],
                        capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK REDIS version=10 ")
    bad = tmp_path / "bad.rdb"
    bad.write_bytes(redis7_file.read_bytes()[:50])
    failed = subprocess.run([sys.executable, "-m", "rdbkit.cli", "verify", str(bad)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr.count("\n") == 1 and failed.stderr.startswith("Error: ")
    with contextlib.suppress(FileNotFoundError):
        bad.unlink()
