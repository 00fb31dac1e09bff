"""What a live node is: INFO parsed, and the facts capture and restore decide on.

``rdb_version`` is the RDB version the node writes (and the highest it reads
in DUMP payloads), from its engine and version (../shared/RDB_FORMAT.md §2):
Redis 5.0-6.2 → 9, 7.0 → 10, 7.2 → 11, 7.4-8.4 → 12; Valkey 7.2-8.x → 11,
9.0 → 80, 9.2 → 81.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rdbkit.backup.connection import Connection, ReplyError

#: Settings a snapshot records because they change how a restored node behaves;
#: seeding a new node applies them (both the 7.0+ listpack and the older ziplist
#: names: a server answers the ones it has).
RECORDED_SETTINGS = (
    "maxmemory",
    "maxmemory-policy",
    "databases",
    "notify-keyspace-events",
    "hash-max-listpack-entries",
    "hash-max-listpack-value",
    "hash-max-ziplist-entries",
    "hash-max-ziplist-value",
    "list-max-listpack-size",
    "list-max-ziplist-size",
    "list-compress-depth",
    "set-max-intset-entries",
    "set-max-listpack-entries",
    "set-max-listpack-value",
    "zset-max-listpack-entries",
    "zset-max-listpack-value",
    "zset-max-ziplist-entries",
    "zset-max-ziplist-value",
    "stream-node-max-bytes",
    "stream-node-max-entries",
)


def parse_info(text: bytes | str) -> dict[str, str]:
    """``INFO`` text → {field: value} over all sections (``# Section`` lines skipped)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, value = line.split(":", 1)
        out[name.strip()] = value.strip()
    return out


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def rdb_version_for(engine: str, version: tuple[int, ...]) -> int:
    """The RDB version a server of ``engine`` ("redis"/"valkey") and ``version`` writes."""
    major_minor = version[:2]
    if engine == "valkey":
        if major_minor >= (9, 2):
            return 81
        if major_minor >= (9, 0):
            return 80
        return 11
    if major_minor >= (8, 6):
        return 13
    if major_minor >= (7, 4):
        return 12
    if major_minor >= (7, 2):
        return 11
    if major_minor >= (7, 0):
        return 10
    if major_minor >= (5, 0):
        return 9
    if major_minor >= (4, 0):
        return 8
    return 7 if major_minor >= (3, 2) else 6


@dataclass(frozen=True)
class ServerFacts:
    """The parts of INFO that capture and restore decide on (all of INFO in ``info``)."""

    engine: str  # "redis" or "valkey"
    version: str
    version_tuple: tuple[int, ...]
    rdb_version: int
    role: str  # "master" or "slave"
    cluster_enabled: bool
    info: dict[str, str] = field(default_factory=dict, repr=False)

    def int(self, name: str, default: int = 0) -> int:
        try:
            return int(float(self.info.get(name, default)))
        except ValueError:
            return default


def server_facts(conn: Connection) -> ServerFacts:
    """Ask the node (``INFO all``; ``INFO`` where ``all`` is refused)."""
    try:
        raw = conn.call("INFO", "all")
    except Exception:  # noqa: BLE001 - some proxies only know plain INFO
        raw = conn.call("INFO")
    info = parse_info(raw)
    if "valkey_version" in info or info.get("server_name") == "valkey":
        engine, version = "valkey", info.get("valkey_version") or info.get("redis_version", "0")
    else:
        engine, version = "redis", info.get("redis_version", "0")
    vt = _version_tuple(version)
    return ServerFacts(
        engine=engine,
        version=version,
        version_tuple=vt,
        rdb_version=rdb_version_for(engine, vt),
        role=info.get("role", "master"),
        cluster_enabled=info.get("cluster_enabled", "0") == "1",
        info=info,
    )


def node_settings(conn: Connection, names: tuple[str, ...] = RECORDED_SETTINGS) -> dict[str, str]:
    """CONFIG GET of each name the server answers ({} when CONFIG is refused or renamed).

    A 7.0+ server answers an old alias (``hash-max-ziplist-entries``) too; it is
    kept only when the new name was not answered, so each setting appears once.
    """
    replies = conn.pipeline([("CONFIG", "GET", name) for name in names])
    settings: dict[str, str] = {}
    for name, reply in zip(names, replies):
        if isinstance(reply, ReplyError) or not reply:
            continue
        if isinstance(reply, dict):
            reply = [x for kv in reply.items() for x in kv]
        if len(reply) >= 2 and reply[1] is not None:
            value = reply[1]
            settings[name] = value.decode("utf-8", "replace") if isinstance(value, bytes) \
                else str(value)
    for old, new in (("ziplist", "listpack"),):
        for name in list(settings):
            if old in name and name.replace(old, new) in settings:
                del settings[name]
    return settings
