"""The RDB codec: picks the C implementation or its pure-Python twin, once.

``RDBKIT_PUREPYTHON=1`` in the environment forces the pure-Python twin; a
missing or broken extension falls back to it with a logged warning (tests
check that the default really is the C one).
"""

from __future__ import annotations

import logging
import os

from rdbkit.codec.model import (
    DumpValue,
    ModuleAux,
    ModuleValue,
    SlotInfo,
    Stream,
    StreamConsumer,
    StreamEntry,
    StreamGroup,
    StreamID,
    StreamPending,
)

_log = logging.getLogger(__name__)

if os.environ.get("RDBKIT_PUREPYTHON"):
    from rdbkit import _pycodec as _impl

    IMPLEMENTATION = "python"
else:
    try:
        from rdbkit import _codec as _impl  # type: ignore[attr-defined]

        IMPLEMENTATION = "c"
    except ImportError as exc:  # pragma: no cover - exercised only on broken builds
        _log.warning("rdbkit C codec unavailable (%s); using the pure-Python twin", exc)
        from rdbkit import _pycodec as _impl

        IMPLEMENTATION = "python"

Decoder = _impl.Decoder
Entry = _impl.Entry
crc64 = _impl.crc64
lzf_decompress = _impl.lzf_decompress
DEFAULT_MAX_STRING_LEN = _impl.DEFAULT_MAX_STRING_LEN
DEFAULT_MAX_COLLECTION_LEN = _impl.DEFAULT_MAX_COLLECTION_LEN
DEFAULT_MAX_BUFFER_SIZE = _impl.DEFAULT_MAX_BUFFER_SIZE

Encoder = _impl.Encoder
RdbWriter = _impl.RdbWriter
dump_payload = _impl.dump_payload
parse_dump_payload = _impl.parse_dump_payload
lzf_compress = _impl.lzf_compress
# A length field in its shortest form: pure Python in both implementations.
from rdbkit._pyencoder import encode_length  # noqa: E402

__all__ = [
    "IMPLEMENTATION",
    "Decoder",
    "Entry",
    "crc64",
    "lzf_decompress",
    "DEFAULT_MAX_STRING_LEN",
    "DEFAULT_MAX_COLLECTION_LEN",
    "DEFAULT_MAX_BUFFER_SIZE",
    "Encoder",
    "RdbWriter",
    "dump_payload",
    "parse_dump_payload",
    "lzf_compress",
    "encode_length",
    "DumpValue",
    "ModuleAux",
    "ModuleValue",
    "SlotInfo",
    "Stream",
    "StreamConsumer",
    "StreamEntry",
    "StreamGroup",
    "StreamID",
    "StreamPending",
]
