"""The JSON Lines schema (``docs/jsonl.md``) is lossless: reading it back gives the entries.

``rdbkit convert --to jsonl`` output is parsed with ``rdbkit.codec.jsonl``
and compared with what ``rdbkit.codec.Decoder`` yields for the same file:
real-server files and every readable file of ``../shared/fixtures``.
"""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner
from datasets import write_dataset
from hypothesis import given
from hypothesis import strategies as st
from rdbkit.cli import cli

from rdbkit.codec import Decoder, jsonl
from rdbkit.errors import RdbkitError

FIELDS = ("db", "key", "type", "encoding", "value", "expire_ms", "idle", "freq", "field_expires")


def _entry_fields(entry) -> dict:
    fields = {name: getattr(entry, name) for name in FIELDS}
    if entry.type == "module":  # items are rebuilt from raw by a decoder, not stored twice
        v = entry.value
        fields["value"] = (v.module_id, v.name, v.encver, v.raw)
    return fields


def _record_fields(record) -> dict:
    fields = jsonl.record_fields(record)
    if fields["type"] == "module":
        v = fields["value"]
        fields["value"] = (v.module_id, v.name, v.encver, v.raw)
    return fields


def _same(a, b) -> bool:
    """Equality where NaN scores equal each other."""
    return json.dumps(repr(a)) == json.dumps(repr(b)) if a != b else True


def check_round_trip(path) -> int:
    result = CliRunner().invoke(cli, ["convert", str(path), "--to", "jsonl"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    records = [json.loads(line) for line in lines]
    decoder = Decoder(str(path))
    entries = list(decoder)
    header, footer = records[0], records[-1]
    assert header["kind"] == "header" and header["schema"] == jsonl.SCHEMA
    assert header["magic"] == decoder.magic and header["version"] == decoder.version
    assert [(jsonl.decode_bytes(k), jsonl.decode_bytes(v)) for k, v in header["aux"] + footer["aux"]] \
        == list(decoder.aux.items())
    assert [jsonl.decode_bytes(c) for c in header["functions"] + footer["functions"]] == \
        decoder.functions
    module_aux = [jsonl.decode_module_aux(m) for m in header["module_aux"] + footer["module_aux"]]
    assert [(m.module_id, m.when, m.raw) for m in module_aux] == \
        [(m.module_id, m.when, m.raw) for m in decoder.module_aux]
    assert footer["kind"] == "footer" and footer["keys"] == len(entries)
    keys = records[1:-1]
    assert len(keys) == len(entries)
    for record, entry in zip(keys, entries):
        got, want = _record_fields(record), _entry_fields(entry)
        assert _same(got, want), (entry, got, want)
    return len(entries)


@pytest.mark.parametrize("server_name", ["redis7", "valkey9", "redis6"])
def test_round_trip_real_servers(request, server_name):
    server = request.getfixturevalue(server_name)
    write_dataset(server)
    assert check_round_trip(server.save()) > 0


def _readable_fixtures(root):
    for path in sorted(root.glob("*/*.rdb")):
        try:
            for _ in Decoder(str(path), values=False):
                pass
        except RdbkitError:
            continue  # deliberately bad files; verify's tests cover them
        yield path


def test_round_trip_shared_fixtures(shared_fixtures):
    checked = [p for p in _readable_fixtures(shared_fixtures) if check_round_trip(p) >= 0]
    assert len(checked) > 100


@given(st.binary(max_size=64))
def test_bytes_encoding_is_reversible(data):
    encoded = jsonl.encode_bytes(data)
    assert jsonl.decode_bytes(json.loads(json.dumps(encoded))) == data
    if isinstance(encoded, dict):
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_scores_are_reversible(score):
    back = jsonl.decode_score(json.loads(json.dumps(jsonl.encode_score(score), allow_nan=False)))
    assert (math.isnan(back) and math.isnan(score)) or (back == score and
                                                         math.copysign(1, back) == math.copysign(1, score))


def test_text_that_looks_like_the_b64_form_stays_distinct():
    # A Redis string is always a JSON string or {"b64": ...}; a string spelling that object is just text.
    text = b'{"b64": "AAAA"}'
    assert jsonl.decode_bytes(json.loads(json.dumps(jsonl.encode_bytes(text)))) == text
