"""Generic key commands: DEL, EXISTS, TYPE, the EXPIRE family, RENAME, KEYS,
SCAN, RANDOMKEY, FLUSH*, DUMP/RESTORE and OBJECT."""

from __future__ import annotations

import heapq
import random
import re

from rdbkit.codec import dump_payload, parse_dump_payload
from rdbkit.errors import DecodeError, EncodeError
from rdbkit.node.commands.registry import (
    LLONG_MAX,
    LLONG_MIN,
    NOT_INTEGER,
    SYNTAX_ERROR,
    command,
    int_arg,
    parse_int,
)
from rdbkit.node.keyspace import from_model, now_ms, object_encoding, to_model, type_name
from rdbkit.node.resp import OK, ErrorReply, SimpleString

#: RDB version of DUMP payloads (redis 7.0 writes and accepts up to 10).
DUMP_RDB_VERSION = 10


@command("DEL", arity=-2, flags=("write",), first_key=1, last_key=-1, step=1, group="keyspace")
def del_(client, argv):
    db = client.db
    return sum(1 for key in argv[1:] if db.delete(key))


@command("UNLINK", arity=-2, flags=("write", "fast"), first_key=1, last_key=-1, step=1,
         group="keyspace", since="4.0.0")
def unlink(client, argv):
    return del_(client, argv)


@command("EXISTS", arity=-2, flags=("readonly", "fast"), first_key=1, last_key=-1, step=1,
         group="keyspace")
def exists(client, argv):
    db = client.db
    return sum(1 for key in argv[1:] if db.get(key) is not None)


@command("TYPE", arity=2, flags=("readonly", "fast"), first_key=1, last_key=1, step=1,
         group="keyspace")
def type_(client, argv):
    value = client.db.get(argv[1])
    return SimpleString("none" if value is None else type_name(value))


def _expire_generic(client, argv, base_ms: int | None, scale: int, name: str):
    when = int_arg(argv[2])
    nx = xx = gt = lt = False
    for opt in argv[3:]:
        o = opt.lower()
        if o == b"nx":
            nx = True
        elif o == b"xx":
            xx = True
        elif o == b"gt":
            gt = True
        elif o == b"lt":
            lt = True
        else:
            raise ErrorReply(f"ERR Unsupported option {opt.decode('utf-8', 'replace')}")
    if nx and (xx or gt or lt):
        raise ErrorReply("ERR NX and XX, GT or LT options at the same time are not compatible")
    if gt and lt:
        raise ErrorReply("ERR GT and LT options at the same time are not compatible")
    invalid = ErrorReply(f"ERR invalid expire time in '{name}' command")
    if scale == 1000:
        if when > LLONG_MAX // 1000 or when < -(-LLONG_MIN // 1000):
            raise invalid
        when *= 1000
    if base_ms is not None:
        if when > LLONG_MAX - base_ms:
            raise invalid
        when += base_ms
    db = client.db
    key = argv[1]
    if db.get(key) is None:
        return 0
    current = db.ttl_ms(key)
    if nx and current is not None:
        return 0
    if xx and current is None:
        return 0
    if gt and (current is None or when <= current):
        return 0
    if lt and current is not None and when >= current:
        return 0
    if when <= now_ms():
        db.delete(key)
        return 1
    db.set_expire(key, when)
    return 1


@command("EXPIRE", arity=-3, flags=("write", "fast"), first_key=1, last_key=1, step=1,
         group="keyspace")
def expire(client, argv):
    return _expire_generic(client, argv, now_ms(), 1000, "expire")


@command("PEXPIRE", arity=-3, flags=("write", "fast"), first_key=1, last_key=1, step=1,
         group="keyspace")
def pexpire(client, argv):
    return _expire_generic(client, argv, now_ms(), 1, "pexpire")


@command("EXPIREAT", arity=-3, flags=("write", "fast"), first_key=1, last_key=1, step=1,
         group="keyspace")
def expireat(client, argv):
    return _expire_generic(client, argv, None, 1000, "expireat")


@command("PEXPIREAT", arity=-3, flags=("write", "fast"), first_key=1, last_key=1, step=1,
         group="keyspace")
def pexpireat(client, argv):
    return _expire_generic(client, argv, None, 1, "pexpireat")


def _ttl(client, key: bytes, ms: bool, absolute: bool) -> int:
    db = client.db
    if db.get(key) is None:
        return -2
    at = db.ttl_ms(key)
    if at is None:
        return -1
    if absolute:
        return at if ms else (at + 500) // 1000
    left = max(at - now_ms(), 0)
    return left if ms else (left + 500) // 1000


@command("TTL", arity=2, flags=("readonly", "fast"), first_key=1, last_key=1, step=1,
         group="keyspace")
def ttl(client, argv):
    return _ttl(client, argv[1], False, False)


@command("PTTL", arity=2, flags=("readonly", "fast"), first_key=1, last_key=1, step=1,
         group="keyspace")
def pttl(client, argv):
    return _ttl(client, argv[1], True, False)


@command("EXPIRETIME", arity=2, flags=("readonly", "fast"), first_key=1, last_key=1, step=1,
         group="keyspace", since="7.0.0")
def expiretime(client, argv):
    return _ttl(client, argv[1], False, True)


@command("PEXPIRETIME", arity=2, flags=("readonly", "fast"), first_key=1, last_key=1, step=1,
         group="keyspace", since="7.0.0")
def pexpiretime(client, argv):
    return _ttl(client, argv[1], True, True)


@command("PERSIST", arity=2, flags=("write", "fast"), first_key=1, last_key=1, step=1,
         group="keyspace")
def persist(client, argv):
    db = client.db
    if db.get(argv[1]) is None:
        return 0
    return 1 if db.persist(argv[1]) else 0


def _rename(client, argv, nx: bool):
    db = client.db
    src, dst = argv[1], argv[2]
    value = db.get(src)
    if value is None:
        raise ErrorReply("ERR no such key")
    if src == dst:
        return 0 if nx else OK
    if nx and db.get(dst) is not None:
        return 0
    at = db.ttl_ms(src)
    db.delete(dst)
    db.delete(src)
    db.set(dst, value, at)
    return 1 if nx else OK


@command("RENAME", arity=3, flags=("write",), first_key=1, last_key=2, step=1, group="keyspace")
def rename(client, argv):
    return _rename(client, argv, False)


@command("RENAMENX", arity=3, flags=("write", "fast"), first_key=1, last_key=2, step=1,
         group="keyspace")
def renamenx(client, argv):
    return _rename(client, argv, True)


def glob_to_regex(pattern: bytes) -> re.Pattern[bytes]:
    """Redis' glob (``* ? [abc] [^a] [a-z] \\x``) as a compiled regex over bytes."""
    out = bytearray()
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == 42:  # *
            out += b".*"
        elif c == 63:  # ?
            out += b"."
        elif c == 91:  # [
            i += 1
            negate = i < n and pattern[i] == 94
            if negate:
                i += 1
            items = bytearray()
            while i < n and pattern[i] != 93:
                if pattern[i] == 92 and i + 1 < n:
                    i += 1
                    items += re.escape(bytes([pattern[i]]))
                elif i + 2 < n and pattern[i + 1] == 45 and pattern[i + 2] != 93:
                    lo, hi = sorted((pattern[i], pattern[i + 2]))
                    items += re.escape(bytes([lo])) + b"-" + re.escape(bytes([hi]))
                    i += 2
                else:
                    items += re.escape(bytes([pattern[i]]))
                i += 1
            # An unterminated class runs to the end of the pattern, as in redis.
            if not items:
                out += b"[^\\s\\S]" if not negate else b"[\\s\\S]"
            else:
                out += b"[" + (b"^" if negate else b"") + bytes(items) + b"]"
        elif c == 92 and i + 1 < n:  # backslash escapes the next byte
            i += 1
            out += re.escape(bytes([pattern[i]]))
        else:
            out += re.escape(bytes([c]))
        i += 1
    return re.compile(bytes(out), re.DOTALL)


@command("KEYS", arity=2, flags=("readonly",), group="keyspace")
def keys(client, argv):
    pattern = argv[1]
    db = client.db
    if pattern == b"*":
        return list(db.keys())
    rx = glob_to_regex(pattern)
    return [k for k in db.keys() if rx.fullmatch(k)]


def _scan_hash(key: bytes) -> int:
    # Cursor space: a key's position is its (process-stable) hash, 1..2^63.
    return (hash(key) & 0x7FFF_FFFF_FFFF_FFFF) + 1


def _parse_cursor(text: bytes) -> int:
    # strtoul's rules, as redis reads a cursor: optional sign, digits; a minus wraps.
    if not re.fullmatch(rb"[+-]?\d{1,40}", text):
        raise ErrorReply("ERR invalid cursor")
    value = int(text)
    if abs(value) >= 2**64:
        raise ErrorReply("ERR invalid cursor")
    return value % 2**64


@command("SCAN", arity=-2, flags=("readonly",), group="keyspace", since="2.8.0")
def scan(client, argv):
    """Iterate the keyspace; the cursor is a position in hash order.

    A key present for the whole iteration is returned at least once (every
    key whose hash is at or above the cursor is still ahead); a call costs
    O(keys) time, not O(COUNT) as in redis.
    """
    cursor = _parse_cursor(argv[1])
    count = 10
    match = None
    kind = None
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"count" and i + 1 < len(argv):
            count = int_arg(argv[i + 1])
            if count < 1:
                raise SYNTAX_ERROR
            i += 2
        elif opt == b"match" and i + 1 < len(argv):
            match = None if argv[i + 1] == b"*" else glob_to_regex(argv[i + 1])
            i += 2
        elif opt == b"type" and i + 1 < len(argv):
            kind = argv[i + 1].decode("utf-8", "replace").lower()
            i += 2
        else:
            raise SYNTAX_ERROR
    db = client.db
    ahead = ((_scan_hash(k), k) for k in db.data)
    batch = heapq.nsmallest(count + 1, (item for item in ahead if item[0] >= cursor))
    if len(batch) <= count:
        next_cursor = 0
        chosen = batch
    else:
        # Keep every key sharing the last chosen hash, so none is skipped.
        last = batch[count - 1][0]
        chosen = [item for item in batch if item[0] <= last]
        more = [item for item in ((_scan_hash(k), k) for k in db.data) if item[0] == last]
        chosen = [item for item in chosen if item[0] < last] + more
        next_cursor = last + 1
    out = []
    for _, key in chosen:
        value = db.get(key)
        if value is None:
            continue
        if match is not None and not match.fullmatch(key):
            continue
        if kind is not None and type_name(value) != kind:
            continue
        out.append(key)
    return [b"%d" % next_cursor, out]


@command("RANDOMKEY", arity=1, flags=("readonly",), group="keyspace")
def randomkey(client, argv):
    db = client.db
    for _ in range(100):
        if not db.data:
            return None
        key = random.choice(list(db.data)) if len(db.data) < 1024 else _sample_key(db.data)
        if db.get(key) is not None:
            return key
    return next(iter(db.keys()), None)


def _sample_key(data: dict) -> bytes:
    # Uniform choice without materialising every key twice: skip ahead in one pass.
    target = random.randrange(len(data))
    for i, key in enumerate(data):
        if i == target:
            return key
    raise AssertionError("unreachable")


@command("DBSIZE", arity=1, flags=("readonly", "fast"), group="server")
def dbsize(client, argv):
    return len(client.db.data)


def _flush_mode(argv) -> None:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() not in (b"async", b"sync")):
        raise SYNTAX_ERROR


@command("FLUSHDB", arity=-1, flags=("write",), group="server")
def flushdb(client, argv):
    _flush_mode(argv)
    client.db.flush()
    return OK


@command("FLUSHALL", arity=-1, flags=("write",), group="server")
def flushall(client, argv):
    _flush_mode(argv)
    client.server.keyspace.flushall()
    return OK


@command("DUMP", arity=2, flags=("readonly",), first_key=1, last_key=1, step=1,
         group="keyspace", since="2.6.0")
def dump(client, argv):
    value = client.db.get(argv[1])
    if value is None:
        return None
    kind, model, field_expires = to_model(value)
    try:
        return dump_payload(kind, model, DUMP_RDB_VERSION, field_expires=field_expires)
    except EncodeError as exc:
        raise ErrorReply(f"ERR {exc}") from None


@command("RESTORE", arity=-4, flags=("write", "denyoom"), first_key=1, last_key=1, step=1,
         group="keyspace", since="2.6.0")
def restore(client, argv):
    key, ttl_arg, payload = argv[1], argv[2], argv[3]
    replace = absttl = False
    idle = freq = None
    i = 4
    while i < len(argv):
        opt = argv[i].lower()
        more = i + 1 < len(argv)
        if opt == b"replace":
            replace = True
        elif opt == b"absttl":
            absttl = True
        elif opt == b"idletime" and more and freq is None:
            idle = parse_int(argv[i + 1])
            if idle is None:
                raise NOT_INTEGER
            if idle < 0:
                raise ErrorReply("ERR Invalid IDLETIME value, must be >= 0")
            i += 1
        elif opt == b"freq" and more and idle is None:
            freq = parse_int(argv[i + 1])
            if freq is None:
                raise NOT_INTEGER
            if freq < 0 or freq > 255:
                raise ErrorReply("ERR Invalid FREQ value, must be >= 0 and <= 255")
            i += 1
        else:
            raise SYNTAX_ERROR
        i += 1
    ttl = int_arg(ttl_arg)
    if ttl < 0:
        raise ErrorReply("ERR Invalid TTL value, must be >= 0")
    db = client.db
    if not replace and db.get(key) is not None:
        raise ErrorReply("BUSYKEY Target key name already exists.")
    try:
        parsed = parse_dump_payload(payload, max_string_len=client.server.config.proto_max_bulk_len)
    except DecodeError as exc:
        if "checksum" in str(exc).lower() or "version" in str(exc).lower() or len(payload) < 10:
            raise ErrorReply("ERR DUMP payload version or checksum are wrong") from None
        raise ErrorReply("ERR Bad data format") from None
    if parsed.version > DUMP_RDB_VERSION:
        raise ErrorReply("ERR DUMP payload version or checksum are wrong")
    value = from_model(parsed.type, parsed.value, parsed.field_expires, parsed.encoding)
    expire_at = None
    if ttl:
        expire_at = ttl if absttl else ttl + now_ms()
    if replace:
        db.delete(key)
    if expire_at is not None and expire_at <= now_ms():
        return OK  # already expired: nothing is created
    db.set(key, value, expire_at)
    return OK


@command("OBJECT ENCODING", arity=3, flags=("readonly",), first_key=2, last_key=2, step=1,
         group="keyspace", since="2.2.3")
def object_encoding_(client, argv):
    value = client.db.get(argv[2])
    if value is None:
        return None
    return object_encoding(value).encode()


@command("OBJECT FREQ", arity=3, flags=("readonly",), first_key=2, last_key=2, step=1,
         group="keyspace", since="4.0.0")
def object_freq(client, argv):
    if client.db.get(argv[2]) is None:
        return None
    raise ErrorReply("ERR An LFU maxmemory policy is not selected, access frequency not tracked. "
                     "Please note that when switching between policies at runtime LRU and LFU "
                     "data will take some time to adjust.")


@command("OBJECT REFCOUNT", arity=3, flags=("readonly",), first_key=2, last_key=2, step=1,
         group="keyspace", since="2.2.3")
def object_refcount(client, argv):
    return None if client.db.get(argv[2]) is None else 1


@command("OBJECT IDLETIME", arity=3, flags=("readonly",), first_key=2, last_key=2, step=1,
         group="keyspace", since="2.2.3")
def object_idletime(client, argv):
    return None if client.db.get(argv[2]) is None else 0


@command("OBJECT HELP", arity=2, flags=("loading", "stale"), group="keyspace", since="6.2.0")
def object_help(client, argv):
    return [SimpleString(line) for line in (
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>", "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>", "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>", "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>", "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP", "    Print this help.")]
