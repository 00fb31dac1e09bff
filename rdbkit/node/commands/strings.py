"""String commands (redis 7.0 behaviour and error replies)."""

from __future__ import annotations

import re
from fractions import Fraction

from rdbkit.node.commands.registry import (
    LLONG_MAX,
    LLONG_MIN,
    NOT_FLOAT,
    NOT_INTEGER,
    SYNTAX_ERROR,
    command,
    int_arg,
    parse_int,
)
from rdbkit.node.keyspace import now_ms
from rdbkit.node.resp import OK, ErrorReply

_NX, _XX, _GET, _KEEPTTL, _PERSIST, _EX, _PX, _EXAT, _PXAT = (1 << i for i in range(9))
_ANY_EXPIRE = _EX | _PX | _EXAT | _PXAT
_UNIT = {_EX: (1000, True), _PX: (1, True), _EXAT: (1000, False), _PXAT: (1, False)}


def _string(client, key: bytes) -> bytes | None:
    return client.db.get_typed(key, "string")  # type: ignore[return-value]


def _too_big(client, size: int) -> None:
    if size > client.server.config.proto_max_bulk_len:
        raise ErrorReply("ERR string exceeds maximum allowed size (proto-max-bulk-len)")


def parse_set_options(argv: list[bytes], start: int, for_set: bool, name: str) -> tuple[int, int | None]:
    """SET / GETEX options → (flags, absolute expiry ms or None)."""
    flags = 0
    expire_arg = None
    j = start
    n = len(argv)
    while j < n:
        opt = argv[j].lower()
        has_next = j + 1 < n
        if opt == b"nx" and not flags & _XX and for_set:
            flags |= _NX
        elif opt == b"xx" and not flags & _NX and for_set:
            flags |= _XX
        elif opt == b"get" and for_set:
            flags |= _GET
        elif opt == b"keepttl" and not flags & (_PERSIST | _ANY_EXPIRE) and for_set:
            flags |= _KEEPTTL
        elif opt == b"persist" and not for_set and not flags & (_ANY_EXPIRE | _KEEPTTL):
            flags |= _PERSIST
        elif opt in (b"ex", b"px", b"exat", b"pxat") and has_next:
            unit = {b"ex": _EX, b"px": _PX, b"exat": _EXAT, b"pxat": _PXAT}[opt]
            if flags & (_KEEPTTL | _PERSIST | (_ANY_EXPIRE & ~unit)):
                raise SYNTAX_ERROR
            flags |= unit
            expire_arg = argv[j + 1]
            j += 1
        else:
            raise SYNTAX_ERROR
        j += 1
    if expire_arg is None:
        return flags, None
    return flags, _expire_ms(expire_arg, flags & _ANY_EXPIRE, name)


def _expire_ms(arg: bytes, unit: int, name: str) -> int:
    value = int_arg(arg)
    invalid = ErrorReply(f"ERR invalid expire time in '{name}' command")
    if value <= 0:
        raise invalid
    scale, relative = _UNIT[unit]
    if value > LLONG_MAX // scale:
        raise invalid
    value *= scale
    if relative:
        value += now_ms()
        if value > LLONG_MAX:
            raise invalid
    return value


@command("SET", arity=-3, flags=("write", "denyoom"), first_key=1, last_key=1, step=1,
         group="string", summary="Set the string value of a key.")
def set_(client, argv):
    flags, expire_at = parse_set_options(argv, 3, True, "set")
    db = client.db
    key = argv[1]
    old = _string(client, key) if flags & _GET else db.get(key)
    if (flags & _NX and old is not None) or (flags & _XX and old is None):
        return old if flags & _GET else None
    db.set(key, argv[2], expire_at, keep_ttl=bool(flags & _KEEPTTL))
    return old if flags & _GET else OK


@command("SETNX", arity=3, flags=("write", "denyoom", "fast"), first_key=1, last_key=1,
         step=1, group="string")
def setnx(client, argv):
    if client.db.get(argv[1]) is not None:
        return 0
    client.db.set(argv[1], argv[2])
    return 1


def _setex(client, argv, unit: int, name: str):
    expire_at = _expire_ms(argv[2], unit, name)
    client.db.set(argv[1], argv[3], expire_at)
    return OK


@command("SETEX", arity=4, flags=("write", "denyoom"), first_key=1, last_key=1, step=1,
         group="string")
def setex(client, argv):
    return _setex(client, argv, _EX, "setex")


@command("PSETEX", arity=4, flags=("write", "denyoom"), first_key=1, last_key=1, step=1,
         group="string")
def psetex(client, argv):
    return _setex(client, argv, _PX, "psetex")


@command("GET", arity=2, flags=("readonly", "fast"), first_key=1, last_key=1, step=1,
         group="string", summary="Get the value of a key.")
def get(client, argv):
    return _string(client, argv[1])


@command("GETDEL", arity=2, flags=("write", "fast"), first_key=1, last_key=1, step=1,
         group="string", since="6.2.0")
def getdel(client, argv):
    value = _string(client, argv[1])
    if value is not None:
        client.db.delete(argv[1])
    return value


@command("GETEX", arity=-2, flags=("write", "fast"), first_key=1, last_key=1, step=1,
         group="string", since="6.2.0")
def getex(client, argv):
    flags, expire_at = parse_set_options(argv, 2, False, "getex")
    db = client.db
    value = _string(client, argv[1])
    if value is None:
        return None
    if expire_at is not None:
        if expire_at <= now_ms():
            db.delete(argv[1])
        else:
            db.set_expire(argv[1], expire_at)
    elif flags & _PERSIST:
        db.persist(argv[1])
    return value


@command("GETSET", arity=3, flags=("write", "denyoom", "fast"), first_key=1, last_key=1,
         step=1, group="string")
def getset(client, argv):
    old = _string(client, argv[1])
    client.db.set(argv[1], argv[2])
    return old


@command("MGET", arity=-2, flags=("readonly", "fast"), first_key=1, last_key=-1, step=1,
         group="string")
def mget(client, argv):
    db = client.db
    out = []
    for key in argv[1:]:
        value = db.get(key)
        out.append(value if type(value) is bytes else None)
    return out


def _check_pairs(argv, name: str) -> None:
    if len(argv) % 2 == 0:
        raise ErrorReply(f"ERR wrong number of arguments for '{name}' command")


@command("MSET", arity=-3, flags=("write", "denyoom"), first_key=1, last_key=-1, step=2,
         group="string")
def mset(client, argv):
    _check_pairs(argv, "mset")
    db = client.db
    for i in range(1, len(argv), 2):
        db.set(argv[i], argv[i + 1])
    return OK


@command("MSETNX", arity=-3, flags=("write", "denyoom"), first_key=1, last_key=-1, step=2,
         group="string")
def msetnx(client, argv):
    _check_pairs(argv, "msetnx")
    db = client.db
    if any(db.get(argv[i]) is not None for i in range(1, len(argv), 2)):
        return 0
    for i in range(1, len(argv), 2):
        db.set(argv[i], argv[i + 1])
    return 1


def _incr(client, key: bytes, delta: int):
    value = _string(client, key)
    current = 0
    if value is not None:
        current = parse_int(value)
        if current is None:
            raise NOT_INTEGER
    result = current + delta
    if result > LLONG_MAX or result < LLONG_MIN:
        raise ErrorReply("ERR increment or decrement would overflow")
    data = b"%d" % result
    if value is None:
        client.db.set(key, data)
    else:
        client.db.replace_value(key, data)
    return result


@command("INCR", arity=2, flags=("write", "denyoom", "fast"), first_key=1, last_key=1, step=1,
         group="string")
def incr(client, argv):
    return _incr(client, argv[1], 1)


@command("DECR", arity=2, flags=("write", "denyoom", "fast"), first_key=1, last_key=1, step=1,
         group="string")
def decr(client, argv):
    return _incr(client, argv[1], -1)


@command("INCRBY", arity=3, flags=("write", "denyoom", "fast"), first_key=1, last_key=1,
         step=1, group="string")
def incrby(client, argv):
    return _incr(client, argv[1], int_arg(argv[2]))


@command("DECRBY", arity=3, flags=("write", "denyoom", "fast"), first_key=1, last_key=1,
         step=1, group="string")
def decrby(client, argv):
    delta = int_arg(argv[2])
    if delta == LLONG_MIN:
        raise ErrorReply("ERR decrement would overflow")
    return _incr(client, argv[1], -delta)


_FLOAT_TEXT = re.compile(rb"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,6})?")
_INF_TEXT = re.compile(rb"[+-]?inf(inity)?", re.I)
#: x87 80-bit long double: 64-bit significand, largest finite value ~1.19e4932.
_LD_BITS = 64
_LD_MAX_EXP = 16384


class _Infinite(Exception):
    pass


def _round_ld(value: Fraction) -> Fraction:
    """``value`` rounded to the nearest C long double (x87 extended), ties to even."""
    if value == 0:
        return value
    sign = -1 if value < 0 else 1
    a = abs(value)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    if e >= _LD_MAX_EXP:
        raise _Infinite()
    if e < -16382 - _LD_BITS:
        return Fraction(0)
    scale = Fraction(2) ** (_LD_BITS - 1 - e)
    rounded = round(a * scale)  # Fraction.__round__ rounds half to even
    result = sign * Fraction(rounded) / scale
    if abs(result) >= Fraction(2) ** _LD_MAX_EXP:
        raise _Infinite()
    return result


def parse_long_double(data: bytes) -> Fraction | None:
    """A number as redis' strtold-based parser accepts it, rounded to a long double.

    No spaces, no NaN; values that overflow or underflow to zero are refused
    like strtold's ERANGE. Infinity parses (as None-free ``_Infinite``)."""
    if _INF_TEXT.fullmatch(data):
        raise _Infinite()
    if not data or len(data) > 5000 or not _FLOAT_TEXT.fullmatch(data):
        return None
    exact = Fraction(data.decode("ascii"))
    try:
        value = _round_ld(exact)
    except _Infinite:
        return None
    if value == 0 and exact != 0:
        return None
    return value


def format_long_double(value: Fraction) -> bytes:
    """INCRBYFLOAT's text, as C's ``%.17Lf`` then trailing zeros trimmed (redis' human form)."""
    scaled = round(abs(value) * 10**17)
    whole, frac = divmod(scaled, 10**17)
    text = f"{whole}.{frac:017d}".rstrip("0").rstrip(".")
    if value < 0 and text != "0":
        text = "-" + text
    return text.encode()


@command("INCRBYFLOAT", arity=3, flags=("write", "denyoom", "fast"), first_key=1, last_key=1,
         step=1, group="string")
def incrbyfloat(client, argv):
    value = _string(client, argv[1])
    overflow = ErrorReply("ERR increment would produce NaN or Infinity")
    try:
        current = Fraction(0)
        if value is not None:
            parsed = parse_long_double(value)
            if parsed is None:
                raise NOT_FLOAT
            current = parsed
        incr_by = parse_long_double(argv[2])
        if incr_by is None:
            raise NOT_FLOAT
        result = _round_ld(current + incr_by)
    except _Infinite:
        raise overflow from None
    data = format_long_double(result)
    if value is None:
        client.db.set(argv[1], data)
    else:
        client.db.replace_value(argv[1], data)
    return data


@command("APPEND", arity=3, flags=("write", "denyoom"), first_key=1, last_key=1, step=1,
         group="string")
def append(client, argv):
    value = _string(client, argv[1])
    if value is None:
        client.db.set(argv[1], argv[2])
        return len(argv[2])
    _too_big(client, len(value) + len(argv[2]))
    new = value + argv[2]
    client.db.replace_value(argv[1], new)
    return len(new)


@command("STRLEN", arity=2, flags=("readonly", "fast"), first_key=1, last_key=1, step=1,
         group="string")
def strlen(client, argv):
    value = _string(client, argv[1])
    return 0 if value is None else len(value)


@command("GETRANGE", arity=4, flags=("readonly",), first_key=1, last_key=1, step=1,
         group="string")
def getrange(client, argv):
    start = int_arg(argv[2])
    end = int_arg(argv[3])
    value = _string(client, argv[1])
    if value is None:
        return b""
    if start < 0 and end < 0 and start > end:
        return b""
    n = len(value)
    if start < 0:
        start += n
    if end < 0:
        end += n
    start = max(start, 0)
    end = max(end, 0)
    if end >= n:
        end = n - 1
    if n == 0 or start > end:
        return b""
    return value[start:end + 1]


@command("SUBSTR", arity=4, flags=("readonly",), first_key=1, last_key=1, step=1,
         group="string")
def substr(client, argv):
    return getrange(client, argv)


@command("SETRANGE", arity=4, flags=("write", "denyoom"), first_key=1, last_key=1, step=1,
         group="string")
def setrange(client, argv):
    offset = int_arg(argv[2])
    if offset < 0:
        raise ErrorReply("ERR offset is out of range")
    data = argv[3]
    value = _string(client, argv[1])
    if value is None:
        if not data:
            return 0
        _too_big(client, offset + len(data))
        client.db.set(argv[1], bytes(offset) + data)
        return offset + len(data)
    if not data:
        return len(value)
    _too_big(client, offset + len(data))
    buf = bytearray(value)
    if len(buf) < offset:
        buf.extend(bytes(offset - len(buf)))
    buf[offset:offset + len(data)] = data
    client.db.replace_value(argv[1], bytes(buf))
    return len(buf)

