"""Connection and server commands: PING, ECHO, SELECT, HELLO, INFO, CONFIG,
TIME, CLIENT, COMMAND, SAVE/BGSAVE/LASTSAVE, SHUTDOWN, QUIT, MULTI/EXEC."""

from __future__ import annotations

import time

from rdbkit.node.commands.registry import (
    COMMANDS,
    SYNTAX_ERROR,
    command,
    parse_int,
)
from rdbkit.node.commands.keys import glob_to_regex
from rdbkit.node.persistence import SaveError
from rdbkit.node.resp import NO_REPLY, NULL_ARRAY, OK, PONG, ErrorReply, SimpleString, Verbatim


@command("PING", arity=-1, flags=("fast",), group="connection")
def ping(client, argv):
    if len(argv) > 2:
        raise ErrorReply("ERR wrong number of arguments for 'ping' command")
    return PONG if len(argv) == 1 else argv[1]


@command("ECHO", arity=2, flags=("fast",), group="connection")
def echo(client, argv):
    return argv[1]


@command("SELECT", arity=2, flags=("loading", "stale", "fast"), group="connection")
def select(client, argv):
    index = parse_int(argv[1])
    if index is None:
        raise ErrorReply("ERR value is not an integer or out of range")
    if index > 2**31 - 1 or index < -(2**31):
        raise ErrorReply("ERR value is out of range, value must between -2147483648 and 2147483647")
    if index < 0 or index >= len(client.server.keyspace):
        raise ErrorReply("ERR DB index is out of range")
    client.select(index)
    return OK


@command("HELLO", arity=-1, flags=("noscript", "loading", "stale", "fast"), group="connection",
         since="6.0.0")
def hello(client, argv):
    version = None
    if len(argv) >= 2:
        version = parse_int(argv[1])
        if version is None:
            raise ErrorReply("ERR Protocol version is not an integer or out of range")
        if version < 2 or version > 3:
            raise ErrorReply("NOPROTO unsupported protocol version")
    name = None
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        left = len(argv) - i - 1
        if opt == b"auth" and left >= 2:
            i += 3  # no ACLs yet: any credentials are accepted, as with nopass
        elif opt == b"setname" and left >= 1:
            name = argv[i + 1]
            if not _valid_name(name):
                raise ErrorReply("ERR Client names cannot contain spaces, newlines or special characters.")
            i += 2
        else:
            raise ErrorReply(f"ERR Syntax error in HELLO option '{argv[i].decode('utf-8', 'replace')}'")
    if name is not None:
        client.name = name
    if version is not None:
        client.resp3 = version == 3
    return {
        b"server": b"redis",
        b"version": client.server.REDIS_VERSION.encode(),
        b"proto": 3 if client.resp3 else 2,
        b"id": client.id,
        b"mode": b"standalone",
        b"role": b"master",
        b"modules": [],
    }


@command("QUIT", arity=-1, flags=("allow_busy", "noscript", "loading", "stale", "fast"),
         group="connection")
def quit_(client, argv):
    client.close_after_reply = True
    return OK


@command("TIME", arity=1, flags=("loading", "stale", "fast"), group="server", since="2.6.0")
def time_(client, argv):
    ns = time.time_ns()
    return [b"%d" % (ns // 1_000_000_000), b"%d" % ((ns // 1000) % 1_000_000)]


@command("LASTSAVE", arity=1, flags=("loading", "stale", "fast"), group="server")
def lastsave(client, argv):
    return client.server.persistence.last_save_time


@command("SAVE", arity=1, flags=("admin", "noscript", "no_async_loading", "no_multi"),
         group="server")
def save(client, argv):
    persistence = client.server.persistence
    if persistence.bgsave_in_progress:
        raise ErrorReply("ERR Background save already in progress")
    try:
        persistence.save()
    except SaveError as exc:
        raise ErrorReply(f"ERR {exc}") from None
    return OK


@command("BGSAVE", arity=-1, flags=("admin", "noscript", "no_async_loading"), group="server")
def bgsave(client, argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() != b"schedule"):
        raise SYNTAX_ERROR
    persistence = client.server.persistence
    if persistence.bgsave_in_progress:
        if len(argv) == 2:
            return SimpleString("Background saving scheduled")
        raise ErrorReply("ERR Background save already in progress")
    try:
        persistence.bgsave(client.server.close_sockets_in_child)
    except (SaveError, OSError) as exc:
        raise ErrorReply(f"ERR {exc}") from None
    return SimpleString("Background saving started")


@command("SHUTDOWN", arity=-1, flags=("admin", "noscript", "loading", "stale", "no_multi",
                                      "allow_busy"), group="server")
def shutdown(client, argv):
    save_mode = None
    for opt in argv[1:]:
        o = opt.lower()
        if o in (b"save", b"nosave") and save_mode is None:
            save_mode = o == b"save"
        elif o in (b"now", b"force", b"abort"):
            continue
        else:
            raise SYNTAX_ERROR
    server = client.server
    if save_mode is None:
        save_mode = bool(server.config.save)
    if save_mode:
        try:
            server.persistence.save()
        except SaveError:
            raise ErrorReply("ERR Errors trying to SHUTDOWN. Check logs.") from None
    server.request_shutdown()
    client.close_after_reply = True
    return NO_REPLY  # the connection just closes, like redis


# --- CONFIG ---------------------------------------------------------------------


@command("CONFIG GET", arity=-3, flags=("admin", "noscript", "loading", "stale"), group="server")
def config_get(client, argv):
    values = client.server.config.as_strings()
    out: dict = {}
    for pattern in argv[2:]:
        name = pattern.lower().decode("utf-8", "replace")
        if name in values:
            out[name.encode()] = values[name].encode()
            continue
        rx = glob_to_regex(pattern.lower())
        for key, value in values.items():
            if rx.fullmatch(key.encode()):
                out[key.encode()] = value.encode()
    return out


@command("CONFIG SET", arity=-4, flags=("admin", "noscript", "loading", "stale"), group="server")
def config_set(client, argv):
    if len(argv) % 2:
        raise ErrorReply("ERR wrong number of arguments for 'config|set' command")
    changes = {}
    for i in range(2, len(argv), 2):
        name = argv[i].lower().decode("utf-8", "replace")
        changes[name] = argv[i + 1].decode("utf-8", "replace")
    client.server.config.apply(changes)
    return OK


@command("CONFIG RESETSTAT", arity=2, flags=("admin", "noscript", "loading", "stale"),
         group="server")
def config_resetstat(client, argv):
    client.server.stats.reset()
    return OK


@command("CONFIG REWRITE", arity=2, flags=("admin", "noscript", "loading", "stale"),
         group="server")
def config_rewrite(client, argv):
    raise ErrorReply("ERR The server is running without a config file")


# --- CLIENT ---------------------------------------------------------------------


def _valid_name(name: bytes) -> bool:
    return all(33 <= c <= 126 for c in name)


@command("CLIENT ID", arity=2, flags=("noscript", "loading", "stale"), group="connection")
def client_id(client, argv):
    return client.id


@command("CLIENT SETNAME", arity=3, flags=("noscript", "loading", "stale"), group="connection")
def client_setname(client, argv):
    if not _valid_name(argv[2]):
        raise ErrorReply("ERR Client names cannot contain spaces, newlines or special characters.")
    client.name = argv[2] or None
    return OK


@command("CLIENT GETNAME", arity=2, flags=("noscript", "loading", "stale"), group="connection")
def client_getname(client, argv):
    return client.name


@command("CLIENT INFO", arity=2, flags=("noscript", "loading", "stale"), group="connection")
def client_info(client, argv):
    return Verbatim(client.describe().encode() + b"\n")


@command("CLIENT LIST", arity=-2, flags=("admin", "noscript", "loading", "stale"),
         group="connection")
def client_list(client, argv):
    clients = list(client.server.clients.values())
    if len(argv) > 2:
        if argv[2].lower() == b"id" and len(argv) > 3:
            ids = set()
            for arg in argv[3:]:
                value = parse_int(arg)
                if value is None or value <= 0:
                    raise ErrorReply("ERR Invalid client ID")
                ids.add(value)
            clients = [c for c in clients if c.id in ids]
        elif argv[2].lower() == b"type" and len(argv) == 4:
            kind = argv[3].lower()
            if kind not in (b"normal", b"master", b"replica", b"pubsub"):
                raise ErrorReply(f"ERR Unknown client type '{argv[3].decode('utf-8', 'replace')}'")
            clients = clients if kind == b"normal" else []
        else:
            raise SYNTAX_ERROR
    return Verbatim("".join(c.describe() + "\n" for c in clients).encode())


@command("CLIENT KILL", arity=-3, flags=("admin", "noscript", "loading", "stale"),
         group="connection")
def client_kill(client, argv):
    server = client.server
    if len(argv) == 3:
        addr = argv[2].decode("utf-8", "replace")
        for other in list(server.clients.values()):
            if other.addr == addr:
                other.kill()
                return OK
        raise ErrorReply("ERR No such client")
    killed = 0
    i = 2
    while i + 1 < len(argv):
        field, value = argv[i].lower(), argv[i + 1]
        for other in list(server.clients.values()):
            if (field == b"id" and str(other.id).encode() == value) or (
                    field == b"addr" and other.addr.encode() == value):
                other.kill()
                killed += 1
        i += 2
    if i != len(argv):
        raise SYNTAX_ERROR
    return killed


# --- COMMAND --------------------------------------------------------------------


@command("COMMAND", arity=-1, flags=("loading", "stale"), group="server", since="2.8.13")
def command_(client, argv):
    if len(argv) > 1:
        sub = argv[1].decode("utf-8", "replace")
        raise ErrorReply(f"ERR unknown subcommand '{sub}'. Try COMMAND HELP.")
    return [cmd.info() for cmd in COMMANDS.values()]


@command("COMMAND COUNT", arity=2, flags=("loading", "stale"), group="server")
def command_count(client, argv):
    return len(COMMANDS)


@command("COMMAND INFO", arity=-2, flags=("loading", "stale"), group="server")
def command_info(client, argv):
    if len(argv) == 2:
        return [cmd.info() for cmd in COMMANDS.values()]
    return [_lookup(name).info() if _lookup(name) else None for name in argv[2:]]


@command("COMMAND DOCS", arity=-2, flags=("loading", "stale"), group="server")
def command_docs(client, argv):
    names = argv[2:] or list(COMMANDS)
    out = {}
    for name in names:
        cmd = _lookup(name)
        if cmd is not None:
            out[cmd.name.encode()] = cmd.docs()
    return out


@command("COMMAND LIST", arity=-2, flags=("loading", "stale"), group="server")
def command_list(client, argv):
    return [cmd.name.encode() for cmd in COMMANDS.values()]


def _lookup(name: bytes):
    parts = name.lower().split(b"|")
    cmd = COMMANDS.get(parts[0])
    if cmd is not None and len(parts) == 2:
        return cmd.subcommands.get(parts[1])
    return cmd


# --- INFO -----------------------------------------------------------------------


@command("INFO", arity=-1, flags=("loading", "stale"), group="server")
def info(client, argv):
    sections = [a.lower().decode("utf-8", "replace") for a in argv[1:]]
    return Verbatim(client.server.info_text(sections).encode())


# --- transactions ---------------------------------------------------------------


@command("MULTI", arity=1, flags=("noscript", "loading", "stale", "fast", "allow_busy"),
         group="transactions")
def multi(client, argv):
    if client.in_multi:
        raise ErrorReply("ERR MULTI calls can not be nested")
    client.start_multi()
    return OK


@command("DISCARD", arity=1, flags=("noscript", "loading", "stale", "fast", "allow_busy"),
         group="transactions")
def discard(client, argv):
    if not client.in_multi:
        raise ErrorReply("ERR DISCARD without MULTI")
    client.end_multi()
    client.unwatch()
    return OK


@command("EXEC", arity=1, flags=("noscript", "loading", "stale", "skip_slowlog"),
         group="transactions")
def exec_(client, argv):
    if not client.in_multi:
        raise ErrorReply("ERR EXEC without MULTI")
    queue, failed = client.multi_queue, client.multi_failed
    dirty = client.watch_dirty
    client.end_multi()
    client.unwatch()
    if failed:
        return ErrorReply("EXECABORT Transaction discarded because of previous errors.")
    if dirty:
        return NULL_ARRAY
    return [client.call(cmd, args) for cmd, args in queue]


@command("WATCH", arity=-2, flags=("noscript", "loading", "stale", "fast", "allow_busy"),
         first_key=1, last_key=-1, step=1, group="transactions")
def watch(client, argv):
    if client.in_multi:
        raise ErrorReply("ERR WATCH inside MULTI is not allowed")
    for key in argv[1:]:
        client.watch(key)
    return OK


@command("UNWATCH", arity=1, flags=("noscript", "loading", "stale", "fast", "allow_busy"),
         group="transactions")
def unwatch(client, argv):
    client.unwatch()
    return OK


@command("DEBUG SLEEP", arity=3, flags=("admin", "noscript"), group="server")
def debug_sleep(client, argv):
    """Block the node for a while (tests of slow paths); seconds may be fractional."""
    try:
        seconds = float(argv[2])
    except ValueError:
        raise ErrorReply("ERR value is not a valid float") from None
    time.sleep(max(0.0, min(seconds, 60.0)))
    return OK

