"""The lossless JSON Lines form of an RDB (schema 1; see ``docs/jsonl.md``).

Each decoded key becomes one JSON object; a header line before the keys and a
footer line after them carry what is not a key (magic, version, aux fields,
functions, module aux data), so the file as a whole can be turned back into an
RDB with the same content. Every Redis string (key, member, field, value,
stream field, consumer name, aux value) is written by ``encode_bytes``: a JSON
string when the bytes are valid UTF-8, else ``{"b64": "..."}``. Both forms
decode back to the very same bytes (``decode_bytes``).

This module only converts between the value model and JSON-ready data; it
never reads or writes files.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from rdbkit.codec.model import (
    MODULE_ID_CHARSET,
    ModuleAux,
    ModuleValue,
    Stream,
    StreamConsumer,
    StreamEntry,
    StreamGroup,
    StreamID,
    StreamPending,
    module_name,
)
from rdbkit.errors import RdbkitError

SCHEMA = 1

#: JSON has no infinities or NaN; scores that are not finite are written as these strings.
_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}

Json = Any


def encode_bytes(data: bytes) -> Json:
    """UTF-8 text as a JSON string, anything else as ``{"b64": base64}``; reversible."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(data).decode("ascii")}


def decode_bytes(obj: Json) -> bytes:
    """Inverse of ``encode_bytes``; raises ``ValueError`` on anything else."""
    if isinstance(obj, str):
        return obj.encode("utf-8")
    if isinstance(obj, dict) and set(obj) == {"b64"}:
        return base64.b64decode(obj["b64"], validate=True)
    raise ValueError(f"not an encoded Redis string: {obj!r}")


def encode_score(score: float) -> float | str:
    if math.isfinite(score):
        return score
    return "nan" if math.isnan(score) else ("inf" if score > 0 else "-inf")


def decode_score(obj: float | str) -> float:
    if isinstance(obj, str):
        return _NONFINITE[obj]
    return float(obj)


def encode_id(sid: StreamID | None) -> str | None:
    return None if sid is None else f"{sid.ms}-{sid.seq}"


def decode_id(obj: str | None) -> StreamID | None:
    if obj is None:
        return None
    ms, _, seq = obj.partition("-")
    return StreamID(int(ms), int(seq))


# --- values -------------------------------------------------------------------


def encode_value(type_name: str, value: Any) -> Json:
    """The JSON form of one value of the value model."""
    if type_name == "string":
        return encode_bytes(value)
    if type_name == "list":
        return [encode_bytes(v) for v in value]
    if type_name == "set":
        # sorted so the output is deterministic (a set has no order in Redis either)
        return [encode_bytes(v) for v in sorted(value)]
    if type_name == "zset":
        return [[encode_bytes(m), encode_score(s)] for m, s in value.items()]
    if type_name == "hash":
        return [[encode_bytes(f), encode_bytes(v)] for f, v in value.items()]
    if type_name == "stream":
        return _encode_stream(value)
    if type_name == "module":
        return _encode_module(value)
    raise ValueError(f"unknown type {type_name!r}")


def decode_value(type_name: str, obj: Json) -> Any:
    """Inverse of ``encode_value``: the value-model object back from its JSON form."""
    if type_name == "string":
        return decode_bytes(obj)
    if type_name == "list":
        return [decode_bytes(v) for v in obj]
    if type_name == "set":
        return {decode_bytes(v) for v in obj}
    if type_name == "zset":
        return {decode_bytes(m): decode_score(s) for m, s in obj}
    if type_name == "hash":
        return {decode_bytes(f): decode_bytes(v) for f, v in obj}
    if type_name == "stream":
        return _decode_stream(obj)
    if type_name == "module":
        return _decode_module(obj)
    raise ValueError(f"unknown type {type_name!r}")


def _encode_stream(s: Stream) -> Json:
    return {
        "length": s.length,
        "last_id": encode_id(s.last_id),
        "first_id": encode_id(s.first_id),
        "max_deleted_id": encode_id(s.max_deleted_id),
        "entries_added": s.entries_added,
        "entries": [
            {"id": encode_id(e.id), "fields": [[encode_bytes(f), encode_bytes(v)] for f, v in e.fields]}
            for e in s.entries
        ],
        "groups": [
            {
                "name": encode_bytes(g.name),
                "last_id": encode_id(g.last_id),
                "entries_read": g.entries_read,
                "pending": [
                    {
                        "id": encode_id(p.id),
                        "delivery_time_ms": p.delivery_time_ms,
                        "delivery_count": p.delivery_count,
                        "consumer": None if p.consumer is None else encode_bytes(p.consumer),
                    }
                    for p in g.pending
                ],
                "consumers": [
                    {
                        "name": encode_bytes(c.name),
                        "seen_time_ms": c.seen_time_ms,
                        "active_time_ms": c.active_time_ms,
                        "pending": [encode_id(i) for i in c.pending],
                    }
                    for c in g.consumers
                ],
            }
            for g in s.groups
        ],
    }


def _decode_stream(obj: Json) -> Stream:
    return Stream(
        entries=tuple(
            StreamEntry(decode_id(e["id"]),
                        tuple((decode_bytes(f), decode_bytes(v)) for f, v in e["fields"]))
            for e in obj["entries"]
        ),
        length=obj["length"],
        last_id=decode_id(obj["last_id"]),
        first_id=decode_id(obj["first_id"]),
        max_deleted_id=decode_id(obj["max_deleted_id"]),
        entries_added=obj["entries_added"],
        groups=tuple(
            StreamGroup(
                name=decode_bytes(g["name"]),
                last_id=decode_id(g["last_id"]),
                entries_read=g["entries_read"],
                pending=tuple(
                    StreamPending(decode_id(p["id"]), p["delivery_time_ms"], p["delivery_count"],
                                  None if p["consumer"] is None else decode_bytes(p["consumer"]))
                    for p in g["pending"]
                ),
                consumers=tuple(
                    StreamConsumer(decode_bytes(c["name"]), c["seen_time_ms"], c["active_time_ms"],
                                   tuple(decode_id(i) for i in c["pending"]))
                    for c in g["consumers"]
                ),
            )
            for g in obj["groups"]
        ),
    )


def _encode_items(items) -> Json:
    out = []
    for opcode, value in items:
        if isinstance(value, bytes):
            out.append([opcode, encode_bytes(value)])
        elif isinstance(value, float):
            out.append([opcode, encode_score(value)])
        else:
            out.append([opcode, value])
    return out


def _encode_module(m: ModuleValue) -> Json:
    # The 64-bit id is name (9 chars) + encver, so those two rebuild it exactly
    # without a number JSON readers in other languages would round.
    return {"module": m.name, "encver": m.encver, "raw": base64.b64encode(m.raw).decode("ascii")}


def module_id(name: str, encver: int) -> int:
    """Rebuild the 64-bit module type id from its name and encoding version."""
    ident = 0
    for ch in name:
        ident = (ident << 6) | MODULE_ID_CHARSET.index(ch)
    ident = (ident << 10) | encver
    if module_name(ident) != (name, encver):
        raise ValueError(f"not a module name: {name!r}")
    return ident


def _decode_module(obj: Json) -> ModuleValue:
    """The module value without its walked ``items`` (a decoder rebuilds those from ``raw``)."""
    return ModuleValue(module_id(obj["module"], obj["encver"]), obj["module"], obj["encver"],
                       base64.b64decode(obj["raw"], validate=True))


# --- records --------------------------------------------------------------------


def entry_record(entry) -> dict[str, Json]:
    """One key as a JSON-ready dict (``"kind": "key"``); needs a decoder run with values."""
    record: dict[str, Json] = {
        "kind": "key",
        "db": entry.db,
        "key": encode_bytes(entry.key),
        "type": entry.type,
        "encoding": entry.encoding,
        "expire_ms": entry.expire_ms,
        "idle": entry.idle,
        "freq": entry.freq,
        "value": encode_value(entry.type, entry.value),
    }
    if entry.field_expires is not None:
        record["field_expires"] = [[encode_bytes(f), ms] for f, ms in entry.field_expires.items()]
    return record


def record_fields(record: dict[str, Json]) -> dict[str, Any]:
    """A ``"kind": "key"`` record back as Entry-like fields in the value model.

    Returns ``db, key, type, encoding, value, expire_ms, idle, freq,
    field_expires`` (the Entry attributes a writer needs; offsets and sizes
    belong to a file, not to the data).
    """
    if record.get("kind") != "key":
        raise ValueError(f"not a key record: kind={record.get('kind')!r}")
    field_expires = record.get("field_expires")
    return {
        "db": record["db"],
        "key": decode_bytes(record["key"]),
        "type": record["type"],
        "encoding": record["encoding"],
        "value": decode_value(record["type"], record["value"]),
        "expire_ms": record["expire_ms"],
        "idle": record["idle"],
        "freq": record["freq"],
        "field_expires": None if field_expires is None
        else {decode_bytes(f): ms for f, ms in field_expires},
    }


def _module_aux_record(m: ModuleAux) -> dict[str, Json]:
    return {"module": m.name, "encver": m.encver, "when": m.when,
            "raw": base64.b64encode(m.raw).decode("ascii")}


def decode_module_aux(obj: dict[str, Json]) -> ModuleAux:
    return ModuleAux(module_id(obj["module"], obj["encver"]), obj["module"], obj["encver"],
                     obj["when"], base64.b64decode(obj["raw"], validate=True))


def header_record(decoder) -> dict[str, Json]:
    """What the decoder has read before the first key: magic, version, aux, functions, module aux.

    Writers put aux fields, module aux data "before keys" and functions ahead
    of the keys; whatever a file has after its first key goes in the footer.
    """
    return {
        "kind": "header",
        "schema": SCHEMA,
        "magic": decoder.magic,
        "version": decoder.version,
        "aux": [[encode_bytes(k), encode_bytes(v)] for k, v in decoder.aux.items()],
        "functions": [encode_bytes(code) for code in decoder.functions],
        "module_aux": [_module_aux_record(m) for m in decoder.module_aux],
    }


def footer_record(decoder, keys: int, header: dict[str, Json]) -> dict[str, Json]:
    """What came after the first key (module aux "after", ...), the checksum status, the key count.

    ``header`` is the header record written earlier; only later items appear here.
    """
    aux = list(decoder.aux.items())[len(header["aux"]):]
    return {
        "kind": "footer",
        "keys": keys,
        "aux": [[encode_bytes(k), encode_bytes(v)] for k, v in aux],
        "functions": [encode_bytes(c) for c in decoder.functions[len(header["functions"]):]],
        "module_aux": [_module_aux_record(m) for m in decoder.module_aux[len(header["module_aux"]):]],
        "checksum": decoder.checksum_status,
    }


# --- reading a whole export back ------------------------------------------------


class JsonlError(RdbkitError, ValueError):
    """A JSON Lines export that is not schema 1 as written by ``convert --to jsonl``."""


@dataclass
class JsonlHeader:
    """The header line in the value model: what ``Encoder.begin`` takes, plus magic/version."""

    magic: str
    version: int
    aux: list[tuple[bytes, bytes]]
    functions: list[bytes]
    module_aux: list[ModuleAux]


@dataclass
class JsonlEntry:
    """One key line in the value model, with the attributes ``Encoder.write`` reads."""

    db: int
    key: bytes
    type: str
    encoding: str | None
    value: Any
    expire_ms: int | None
    idle: int | None
    freq: int | None
    field_expires: dict[bytes, int] | None


@dataclass
class JsonlFooter:
    keys: int
    aux: list[tuple[bytes, bytes]]
    functions: list[bytes]
    module_aux: list[ModuleAux]
    checksum: str | None


def _header_parts(record: dict[str, Json]) -> tuple[list, list, list]:
    return (
        [(decode_bytes(k), decode_bytes(v)) for k, v in record.get("aux", [])],
        [decode_bytes(code) for code in record.get("functions", [])],
        [decode_module_aux(m) for m in record.get("module_aux", [])],
    )


class JsonlReader:
    """Read an export back: ``header`` at once, keys by iterating, then ``footer``.

    ``lines`` is any iterable of lines (bytes or str, e.g. a binary file);
    one line is held at a time, so memory is bounded by the largest key.
    Anything malformed, and an export cut before its footer, is a
    ``JsonlError`` naming the line number.
    """

    def __init__(self, lines: Iterable[bytes | str]) -> None:
        self._lines = iter(lines)
        self.lineno = 0
        self.footer: JsonlFooter | None = None
        self.keys = 0
        first = self._next_record()
        if first is None:
            raise JsonlError("jsonl input is empty (expected a header line)")
        if first.get("kind") != "header":
            raise JsonlError(f"jsonl line 1: expected the header, got kind={first.get('kind')!r}")
        if first.get("schema") != SCHEMA:
            raise JsonlError(f"jsonl line 1: unsupported schema {first.get('schema')!r} (expected {SCHEMA})")
        try:
            aux, functions, module_aux = _header_parts(first)
            self.header = JsonlHeader(str(first["magic"]), int(first["version"]), aux, functions, module_aux)
        except (KeyError, TypeError, ValueError) as exc:
            raise JsonlError(f"jsonl line 1: bad header: {exc!r}") from None

    def _next_record(self) -> dict[str, Json] | None:
        for line in self._lines:
            self.lineno += 1
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise JsonlError(f"jsonl line {self.lineno}: not JSON: {exc}") from None
            if not isinstance(record, dict):
                raise JsonlError(f"jsonl line {self.lineno}: expected an object")
            return record
        return None

    def __iter__(self) -> Iterator[JsonlEntry]:
        while True:
            record = self._next_record()
            if record is None:
                raise JsonlError(
                    f"jsonl input ends after line {self.lineno} without a footer (a cut export?)")
            kind = record.get("kind")
            if kind == "footer":
                try:
                    aux, functions, module_aux = _header_parts(record)
                    self.footer = JsonlFooter(int(record["keys"]), aux, functions, module_aux,
                                              record.get("checksum"))
                except (KeyError, TypeError, ValueError) as exc:
                    raise JsonlError(f"jsonl line {self.lineno}: bad footer: {exc!r}") from None
                if self.footer.keys != self.keys:
                    raise JsonlError(f"jsonl footer says {self.footer.keys} keys, "
                                     f"the file has {self.keys}")
                if self._next_record() is not None:
                    raise JsonlError(f"jsonl line {self.lineno}: data after the footer")
                return
            if kind != "key":
                raise JsonlError(f"jsonl line {self.lineno}: unexpected kind={kind!r}")
            try:
                entry = JsonlEntry(**record_fields(record))
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise JsonlError(f"jsonl line {self.lineno}: bad key record: {exc!r}") from None
            self.keys += 1
            yield entry
