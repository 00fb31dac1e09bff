"""atheris fuzz target for the C decoder (``rdbkit._codec``).

Run through ``fuzz/run.sh`` (it builds the extension with clang,
AddressSanitizer and libFuzzer coverage, and preloads atheris' ASan runtime);
running this file by hand works too, without coverage of the C code.

Every input goes through:

* ``Decoder()`` push mode, fed in one piece, then ``close()``;
* ``Decoder()`` push mode, fed in small pieces (sizes derived from the
  input), iterating after every piece, then ``close()``; with
  ``values=False`` for inputs of odd length;
* ``Decoder(BytesIO(data), read_size=...)`` pull mode with ``values=False``.

Inputs that do not start with an RDB magic also go to ``parse_dump_payload``
(raw, and re-sealed with a valid version and CRC64 so the value parser is
reached) when the extension has it, and to ``lzf_decompress``.

``RDBKIT_FUZZ_IMPL=python`` runs the same target on the pure-Python twin.

A crash is anything other than an ``rdbkit.errors.RdbkitError`` subclass
escaping (libFuzzer saves the input as ``crash-<sha1>``), or a sanitizer
report from the C code. With ``RDBKIT_FUZZ_DIFFERENTIAL=1`` the one-piece
and the split feeds must also agree: same entries, same error class and
offset.
"""

from __future__ import annotations

import io
import os
import sys

import atheris

# Import the codec before atheris.Setup so libFuzzer registers its counters.
# RDBKIT_FUZZ_IMPL=python fuzzes the pure-Python twin instead (Python coverage).
if os.environ.get("RDBKIT_FUZZ_IMPL") == "python":
    with atheris.instrument_imports(include=["rdbkit"]):
        from rdbkit import _pycodec as codec
else:
    from rdbkit import _codec as codec  # never a silent fallback to the twin
from rdbkit.errors import RdbkitError  # noqa: E402

MAGICS = (b"REDIS", b"VALKEY")
DIFFERENTIAL = bool(os.environ.get("RDBKIT_FUZZ_DIFFERENTIAL"))
HAS_PAYLOAD = hasattr(codec, "parse_dump_payload")
# Tight limits so a bug that trusts a claimed length shows up as a big
# allocation (libFuzzer's -malloc_limit_mb) rather than passing quietly.
LIMITS = {"max_string_len": 1 << 20, "max_collection_len": 1 << 20, "max_buffer_size": 4 << 20}


def _touch(entry) -> tuple:
    """Read every attribute so building them is exercised, not just parsing."""
    repr(entry)
    return entry.astuple()


def _one_piece(data: bytes, values: bool) -> tuple[list, object]:
    entries: list = []
    dec = codec.Decoder(values=values, **LIMITS)
    try:
        dec.feed(data)
        for entry in dec:
            entries.append(_touch(entry))
        dec.tell()
        dec.close()
    except RdbkitError as exc:
        return entries, (type(exc), getattr(exc, "offset", None))
    return entries, None


def _split(data: bytes, values: bool) -> tuple[list, object]:
    entries: list = []
    step = 1 + (data[-1] % 97 if data else 0)
    step = max(step, len(data) // 256)  # at most ~256 pieces, to keep executions fast
    dec = codec.Decoder(values=values, **LIMITS)
    try:
        for start in range(0, len(data), step):
            dec.feed(data[start : start + step])
            for entry in dec:
                entries.append(_touch(entry))
        dec.close()
    except RdbkitError as exc:
        return entries, (type(exc), getattr(exc, "offset", None))
    return entries, None


def _pull(data: bytes) -> None:
    read_size = 1 + (data[0] % 61 if data else 0)
    try:
        with codec.Decoder(io.BytesIO(data), values=False, read_size=read_size, **LIMITS) as dec:
            for entry in dec:
                _touch(entry)
            (dec.version, dec.magic, dec.aux, dec.functions, dec.module_aux, dec.slot_info,
             dec.resize_hints, dec.checksum, dec.checksum_status)
    except RdbkitError:
        pass


def _payload(data: bytes) -> None:
    try:
        codec.parse_dump_payload(data, **LIMITS)
    except RdbkitError:
        pass
    if len(data) >= 3:
        # Re-seal: keep the body, put a plausible RDB version and the right CRC64.
        body = data[:-2] + bytes([data[-1] % 13, 0])
        sealed = body + codec.crc64(body).to_bytes(8, "little")
        try:
            codec.parse_dump_payload(sealed, **LIMITS)
        except RdbkitError:
            pass


def _lzf(data: bytes) -> None:
    if len(data) < 2:
        return
    expected = (data[0] << 8 | data[1]) % 8192
    try:
        out = codec.lzf_decompress(data[2:], expected)
    except RdbkitError:
        return
    if len(out) != expected:
        raise AssertionError(f"lzf_decompress returned {len(out)} bytes, expected {expected}")


def test_one_input(data: bytes) -> None:
    whole = _one_piece(data, values=True)
    if DIFFERENTIAL:
        pieces = _split(data, values=True)
        if whole != pieces:
            raise AssertionError(f"one-piece and split feeds disagree:\n{whole!r}\n{pieces!r}")
    else:
        _split(data, values=len(data) % 2 == 0)  # the values=False walk on odd lengths
    _pull(data)
    if not data.startswith(MAGICS):
        codec.crc64(data)
        _lzf(data)
        if HAS_PAYLOAD:
            _payload(data)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
