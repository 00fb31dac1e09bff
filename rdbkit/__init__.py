"""rdbkit: snapshot toolkit for Redis-protocol data stores.

The codec (RDB decoder and encoder, C core with a pure-Python twin) is layer 1; see
``docs/codec.md``. ``IMPLEMENTATION`` says which codec is active.
"""

from __future__ import annotations

from rdbkit.codec import (
    IMPLEMENTATION,
    Decoder,
    Encoder,
    Entry,
    RdbWriter,
    dump_payload,
    parse_dump_payload,
)
from rdbkit.errors import (
    ChecksumError,
    DecodeError,
    EncodeError,
    LimitExceededError,
    RdbkitError,
    TruncatedError,
    UnsupportedEncodingError,
    UnsupportedVersionError,
)

__version__ = "0.1.0"

__all__ = [
    "IMPLEMENTATION",
    "Decoder",
    "Entry",
    "Encoder",
    "RdbWriter",
    "dump_payload",
    "parse_dump_payload",
    "EncodeError",
    "RdbkitError",
    "DecodeError",
    "TruncatedError",
    "ChecksumError",
    "UnsupportedVersionError",
    "UnsupportedEncodingError",
    "LimitExceededError",
    "__version__",
]
