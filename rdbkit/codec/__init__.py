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

# The encoder (issue 4): the C twin may not have it yet; then the Python one
# is used for these names only (the decoder stays the chosen implementation).
_ENCODER_NAMES = ("Encoder", "RdbWriter", "dump_payload", "parse_dump_payload", "lzf_compress")
if all(hasattr(_impl, name) for name in _ENCODER_NAMES):
    _encoder_impl = _impl
    ENCODER_IMPLEMENTATION = IMPLEMENTATION
else:
    from rdbkit import _pycodec as _encoder_impl

    ENCODER_IMPLEMENTATION = "python"
    _log.info("rdbkit C codec has no encoder yet; using the pure-Python encoder")
Encoder = _encoder_impl.Encoder
RdbWriter = _encoder_impl.RdbWriter
dump_payload = _encoder_impl.dump_payload
parse_dump_payload = _encoder_impl.parse_dump_payload
lzf_compress = _encoder_impl.lzf_compress

__all__ = [
    "IMPLEMENTATION",
    "Decoder",
    "Entry",
    "crc64",
    "lzf_decompress",
    "DEFAULT_MAX_STRING_LEN",
    "DEFAULT_MAX_COLLECTION_LEN",
    "DEFAULT_MAX_BUFFER_SIZE",
    "ENCODER_IMPLEMENTATION",
    "Encoder",
    "RdbWriter",
    "dump_payload",
    "parse_dump_payload",
    "lzf_compress",
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
