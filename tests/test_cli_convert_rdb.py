"""``rdbkit convert --to rdb``: RDB and jsonl back to an RDB real servers load.

A real server's own dump goes RDB -> jsonl -> RDB and a fresh server started
on the result holds the same data key by key (``datasets.server_view``);
downgrades drop (or refuse) what the target cannot express; the jsonl round
trip is exact on every third-party fixture the encoder can express. Commands
run through click's ``CliRunner`` plus one real subprocess.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from datasets import function_codes, server_view, write_dataset
from test_encoder import REDIS_CHECK_RDB, compare_views, server_on_file

from rdbkit.cli import cli, convert
from rdbkit.codec import Decoder
from rdbkit.errors import RdbkitError


def run(*args, input: bytes | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def one_error_line(result, code: int = 1) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 or code == 2, result.stderr
    assert lines[-1].startswith("Error: ")
    return lines[-1]


def decode(data: bytes):
    dec = Decoder(io.BytesIO(data))
    entries = list(dec)
    assert dec.checksum_status == "ok"
    return dec, entries


def strip(e):
    return (e.db, e.key, e.type, e.value, e.expire_ms, e.idle, e.freq, e.field_expires)


@pytest.fixture(scope="module")
def redis7_dump(redis7):
    write_dataset(redis7)
    path = redis7.save()
    return path, server_view(redis7), function_codes(redis7)


@pytest.fixture(scope="module")
def valkey9_dump(valkey9):
    dataset = write_dataset(valkey9)
    path = valkey9.save()
    return path, server_view(valkey9), list(dataset.field_expires)


def test_redis7_dump_via_jsonl_loads_into_redis7(redis7_dump, tmp_path):
    path, view, functions = redis7_dump
    jl, out = tmp_path / "d.jsonl", tmp_path / "back.rdb"
    assert run("convert", path, "--to", "jsonl", "-o", jl).exit_code == 0
    result = run("convert", jl, "--to", "rdb", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    dec, back = decode(out.read_bytes())
    assert (dec.magic, dec.version) == ("REDIS", 10)  # the source's version by default
    assert result.stderr.strip() == f"{len(back)} keys written to {out} (REDIS 10)"
    assert not (tmp_path / "back.rdb.partial").exists()
    if REDIS_CHECK_RDB.is_file():
        check = subprocess.run([str(REDIS_CHECK_RDB), str(out)], capture_output=True, text=True, timeout=120)
        assert check.returncode == 0 and "RDB looks OK" in check.stdout, check.stdout + check.stderr
    with server_on_file("redis7", out.read_bytes()) as loaded:
        problems = compare_views(view, server_view(loaded), 0, False)
        assert not problems, "\n".join(problems[:20])
        assert function_codes(loaded) == functions


def _no_active_time(view):
    """Redis 7.0 has no consumer active-time (RDB 11+): compare streams without it."""
    def fix(kind, value):
        if kind != "stream":
            return value
        groups = tuple(dataclasses.replace(g, consumers=tuple(
            dataclasses.replace(c, active_time_ms=None) for c in g.consumers)) for g in value.groups)
        return dataclasses.replace(value, groups=groups)
    return {k: (kind, fix(kind, value), exp) for k, (kind, value, exp) in view.items()}


def test_valkey9_to_v10_drops_field_ttls_and_loads_into_redis7(valkey9_dump, tmp_path):
    path, view, hfe_keys = valkey9_dump
    assert hfe_keys
    out = tmp_path / "v10.rdb"
    result = run("convert", path, "--to", "rdb", "--target-version", "10", "--drop-unsupported", "-o", out)
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    dropped = sorted(line for line in lines if line.startswith("dropped: "))
    assert dropped == sorted(f"dropped: hash field TTLs of key {key!r}" for _, key in hfe_keys)
    assert lines[-1].endswith(f"(REDIS 10), {len(hfe_keys)} items dropped")
    dec, back = decode(out.read_bytes())
    assert dec.version == 10 and all(e.field_expires is None for e in back)
    with server_on_file("redis7", out.read_bytes()) as loaded:
        problems = compare_views(_no_active_time(view), _no_active_time(server_view(loaded)), 0, False)
        assert not problems, "\n".join(problems[:20])


def test_valkey9_to_v10_without_drop_fails_naming_key_and_feature(valkey9_dump, tmp_path):
    path, _, hfe_keys = valkey9_dump
    out = tmp_path / "v10.rdb"
    result = run("convert", path, "--to", "rdb", "--target-version", "10", "-o", out)
    line = one_error_line(result)
    assert "hash field TTLs" in line and any(repr(key) in line for _, key in hfe_keys), line
    assert list(tmp_path.iterdir()) == []  # neither the output nor its .partial


def test_same_version_from_valkey9_keeps_field_ttls(valkey9_dump, tmp_path):
    path, _, _ = valkey9_dump
    original = list(Decoder(str(path)))
    result = run("convert", path, "--to", "rdb", "-o", tmp_path / "v.rdb")
    assert result.exit_code == 0, result.stderr
    dec, back = decode((tmp_path / "v.rdb").read_bytes())
    assert (dec.magic, dec.version) == ("VALKEY", 80)
    assert [strip(e) for e in back] == [strip(e) for e in original]


def test_stdin_and_stdout_with_dash(redis7_dump):
    path, _, _ = redis7_dump
    original = Decoder(str(path))
    entries = list(original)
    jl = run("convert", path, "--to", "jsonl").stdout_bytes
    for args in (("-",), ("-", "-o", "-"), ("-", "--from", "jsonl")):
        result = run("convert", *args, "--to", "rdb", "--target-version", "10", input=jl)
        assert result.exit_code == 0, result.stderr
        dec, back = decode(result.stdout_bytes)
        assert dec.version == 10 and dec.functions == original.functions
        assert [strip(e) for e in back] == [strip(e) for e in entries]
        assert "keys written to stdout (REDIS 10)" in result.stderr
    # an RDB on stdin, converted down with the filters
    result = run("convert", "-", "--to", "rdb", "--target-version", "9", "--type", "string",
                 "--plain", "--no-compress", "--drop-unsupported", input=path.read_bytes())
    assert result.exit_code == 0, result.stderr
    _, back = decode(result.stdout_bytes)
    assert back and [e.key for e in back] == [e.key for e in entries if e.type == "string"]


def test_refuses_binary_to_a_terminal(redis7_dump, monkeypatch):
    monkeypatch.setattr(convert, "_stdout_is_tty", lambda: True)
    result = run("convert", redis7_dump[0], "--to", "rdb")
    assert result.exit_code == 2 and "terminal" in result.stderr and result.stdout_bytes == b""


def test_cut_or_bad_jsonl_fails_with_one_line(redis7_dump, tmp_path):
    jl = run("convert", redis7_dump[0], "--to", "jsonl").stdout_bytes
    cut = b"\n".join(jl.splitlines()[:-1]) + b"\n"
    out = tmp_path / "o.rdb"
    line = one_error_line(run("convert", "-", "--to", "rdb", "-o", out, input=cut))
    assert "without a footer" in line and list(tmp_path.iterdir()) == []
    line = one_error_line(run("convert", "-", "--from", "jsonl", "--to", "rdb", "-o", out, input=b"{nope\n"))
    assert "jsonl line 1" in line and list(tmp_path.iterdir()) == []
    result = run("convert", "-", "--from", "jsonl", "--to", "json", input=jl)
    assert result.exit_code == 2 and "only --to rdb" in result.stderr


def test_real_subprocess_pipes_stdout(redis7_dump, tmp_path):
    path, _, _ = redis7_dump
    proc = subprocess.run([sys.executable, "-m", "rdbkit.cli", "convert", str(path), "--to", "rdb",
                           "--target-version", "9", "--drop-unsupported", "-o", "-"],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    dec, back = decode(proc.stdout)
    assert dec.version == 9 and back
    err = proc.stderr.decode().splitlines()
    assert err[-1].startswith(f"{len(back)} keys written to stdout (REDIS 9), ")
    assert any(line.startswith("dropped: function library") for line in err)


def _derived_as_in(e, original):
    """``strip(e)`` with the derived stream metadata the original file lacked left out.

    A stream read from an older layout (type 15, or 19 without active times)
    has ``None`` there; the target version's layout must store a value, which
    the encoder derives (first entry, 0-0, the entry count).
    """
    fields = strip(e)
    if e.type != "stream" or original.type != "stream":
        return fields
    v, o = e.value, original.value
    missing = {name: None for name in ("first_id", "max_deleted_id", "entries_added")
               if getattr(o, name) is None}
    groups = tuple(
        dataclasses.replace(
            g,
            entries_read=None if og.entries_read is None else g.entries_read,
            consumers=tuple(dataclasses.replace(c, active_time_ms=None) if oc.active_time_ms is None else c
                            for c, oc in zip(g.consumers, og.consumers)),
        )
        for g, og in zip(v.groups, o.groups)
    ) if len(v.groups) == len(o.groups) else v.groups
    return fields[:3] + (dataclasses.replace(v, groups=groups, **missing),) + fields[4:]


def _fixture_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix == ".rdb")


def test_jsonl_round_trip_is_exact_on_shared_fixtures(shared_fixtures):
    exact, refused, undecodable, other_version = [], [], [], []
    for path in _fixture_files(shared_fixtures):
        try:
            original = Decoder(str(path))
            entries = list(original)
        except RdbkitError:
            undecodable.append(path)
            continue
        jl = run("convert", path, "--to", "jsonl")
        assert jl.exit_code == 0, (path, jl.stderr)
        result = run("convert", "-", "--to", "rdb", input=jl.stdout_bytes)
        if result.exit_code == 2:  # a version the encoder does not write: it says what to pass
            assert "--target-version" in result.stderr, (path, result.stderr)
            other_version.append(path)
            result = run("convert", "-", "--to", "rdb", "--target-version", "12", input=jl.stdout_bytes)
            if result.exit_code != 0:
                one_error_line(result)
                refused.append(path)
            continue
        if result.exit_code != 0:
            line = one_error_line(result)  # the EncodeError's message, not a crash
            refused.append((path, line))
            continue
        dec, back = decode(result.stdout_bytes)
        assert (dec.magic, dec.version) == (original.magic, original.version), path
        assert len(back) == len(entries), path
        assert [_derived_as_in(e, o) for e, o in zip(back, entries)] == [strip(e) for e in entries], path
        assert dec.functions == original.functions, path
        assert dec.module_aux == original.module_aux, path
        if original.version >= 7:
            assert dec.aux == original.aux, path
        exact.append(path)
    print(f"exact {len(exact)}, refused {len(refused)}, other versions {len(other_version)}, "
          f"undecodable {len(undecodable)}")
    assert len(exact) >= 20, (exact, refused)
