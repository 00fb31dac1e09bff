"""rdbkit.node.stream: XADD/XRANGE/XDEL/XTRIM and groups, the codec and redis 7.0."""

# ruff: noqa: B023  (the lambdas handed to _ours/both run at once, inside the loop step)

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rdbkit.codec.model import StreamID
from rdbkit.node.stream import (
    MAX_ID,
    ZERO_ID,
    CommandError,
    NoGroupError,
    StreamLog,
    nogroup_text,
    parse_id,
    parse_range_id,
)

U64 = (1 << 64) - 1
F = ((b"f", b"v"),)


def sid(text: str) -> StreamID:
    ms, seq = text.split("-")
    return StreamID(int(ms), int(seq))


# --- IDs -------------------------------------------------------------------------------


def test_parse_id():
    assert parse_id(b"5-3") == StreamID(5, 3)
    assert parse_id(b"5") == StreamID(5, 0)
    assert parse_id(b"5", missing_seq=U64) == StreamID(5, U64)
    assert parse_id(b"018-+2") == StreamID(18, 2)  # strtoull's leading zeros and '+'
    assert parse_id(b"18446744073709551615-18446744073709551615") == MAX_ID
    assert parse_id(b"-", strict=False) == ZERO_ID and parse_id(b"+", strict=False) == MAX_ID
    assert parse_id(b"7-*", auto_seq=True) == (7, None)
    for bad in (
        b"",
        b"-",
        b"+",
        b"x",
        b"5-",
        b"-5",
        b"5-x",
        b"5--1",
        b"18446744073709551616",
        b"7-*",
        b"1" * 128,
    ):
        with pytest.raises(
            CommandError, match="^ERR Invalid stream ID specified as stream command argument$"
        ):
            parse_id(bad)


def test_parse_range_id():
    assert parse_range_id(b"-", end=False) == ZERO_ID
    assert parse_range_id(b"+", end=True) == MAX_ID
    assert parse_range_id(b"5", end=False) == StreamID(5, 0)
    assert parse_range_id(b"5", end=True) == StreamID(5, U64)
    assert parse_range_id(b"(5-3", end=False) == StreamID(5, 4)
    assert parse_range_id(b"(5-0", end=True) == StreamID(4, U64)
    assert parse_range_id(b"(5", end=True) == StreamID(5, U64 - 1)
    with pytest.raises(CommandError, match="^ERR Invalid stream ID"):
        parse_range_id(b"(", end=False)  # a lone "(" is not a prefix
    with pytest.raises(CommandError, match="^ERR invalid end ID for the interval$"):
        parse_range_id(b"(0-0", end=True)
    with pytest.raises(CommandError, match="^ERR invalid start ID for the interval$"):
        parse_range_id(b"(18446744073709551615-18446744073709551615", end=False)
    with pytest.raises(CommandError, match="^ERR Invalid stream ID"):
        parse_range_id(b"(-", end=False)


# --- XADD --------------------------------------------------------------------------------


def test_xadd_ids():
    s = StreamLog()
    with pytest.raises(
        CommandError, match="^ERR The ID specified in XADD must be greater than 0-0$"
    ):
        s.add(F, b"0-0")
    assert s.add(F, b"0-*") == StreamID(0, 1)
    assert s.add(F, b"*", now_ms=1000) == StreamID(1000, 0)
    assert s.add(F, b"*", now_ms=1000) == StreamID(1000, 1)
    assert s.add(F, b"*", now_ms=999) == StreamID(1000, 2)  # clock went back: sequence goes on
    assert s.add(F, b"1000-*") == StreamID(1000, 3)
    assert s.add(F, b"2000-*") == StreamID(2000, 0)
    assert s.add(F, b"2000-5") == StreamID(2000, 5)
    assert s.add(F, b"2001") == StreamID(2001, 0)
    for bad in (b"2001", b"2000-9", b"1999-*"):
        with pytest.raises(
            CommandError,
            match="^ERR The ID specified in XADD is equal or smaller than the target stream top",
        ):
            s.add(F, bad)
    with pytest.raises(CommandError, match="^ERR Invalid stream ID"):
        s.add(F, b"abc")
    assert len(s) == 8 and s.entries_added == 8
    s.add(F, b"%d-%d" % (2001, U64))
    assert s.add(F, b"*", now_ms=5) == StreamID(2002, 0)  # sequence overflow moves to the next ms
    s.add(F, b"%d-%d" % (U64, U64 - 1))
    with pytest.raises(CommandError, match="equal or smaller"):
        s.add(F, b"%d-%d" % (U64, U64 - 1))
    s.add(F, b"*")
    assert s.last_id == MAX_ID
    with pytest.raises(
        CommandError,
        match="^ERR The stream has exhausted the last possible ID, unable to add more items$",
    ):
        s.add(F, b"*")


def test_xadd_trim_arguments():
    s = StreamLog()
    with pytest.raises(CommandError, match="^ERR The MAXLEN argument must be >= 0.$"):
        s.add(F, maxlen=-1)
    with pytest.raises(
        CommandError, match="^ERR syntax error, LIMIT cannot be used without the special ~ option$"
    ):
        s.add(F, maxlen=1, limit=5)
    with pytest.raises(
        CommandError,
        match="^ERR syntax error, MAXLEN and MINID options at the same time are not compatible$",
    ):
        s.add(F, maxlen=1, minid=ZERO_ID)
    assert len(s) == 0 and s.entries_added == 0
    for i in range(1, 11):
        s.add(F, b"%d-1" % i, maxlen=3)
    assert [e[0] for e in s.range()] == [sid("8-1"), sid("9-1"), sid("10-1")]
    assert s.entries_added == 10 and s.max_deleted_id == ZERO_ID and s.first_id == sid("8-1")


# --- XRANGE / XDEL / XTRIM --------------------------------------------------------------------


def test_range_count_and_rev():
    s = StreamLog()
    for i in range(1, 8):
        s.add([(b"n", b"%d" % i)], b"%d-0" % i)
    ids = [e[0] for e in s.range()]
    assert ids == [StreamID(i, 0) for i in range(1, 8)]
    assert [e[0] for e in s.range(sid("2-0"), sid("5-0"), count=2)] == [sid("2-0"), sid("3-0")]
    assert [e[0] for e in s.range(sid("2-0"), sid("5-0"), count=2, rev=True)] == [
        sid("5-0"),
        sid("4-0"),
    ]
    assert s.range(parse_range_id(b"(2", end=False), parse_range_id(b"(4-0", end=True)) == [
        (sid("3-0"), ((b"n", b"3"),))
    ]
    assert [
        e[0] for e in s.range(parse_range_id(b"(2", end=False), parse_range_id(b"(4", end=True))
    ] == [sid("3-0"), sid("4-0")]
    assert s.range(sid("5-0"), sid("2-0")) == []
    assert s.range(count=0) is None and s.range(count=-3) is None
    assert s.get(sid("4-0")) == ((b"n", b"4"),) and s.get(sid("4-1")) is None


def test_xdel_tombstones_and_first_id():
    s = StreamLog()
    for i in range(1, 6):
        s.add(F, b"%d-0" % i)
    assert s.delete([sid("3-0"), sid("3-0"), sid("9-0")]) == 1
    assert s.max_deleted_id == sid("3-0") and s.first_id == sid("1-0")
    assert s.delete([sid("1-0")]) == 1
    assert s.max_deleted_id == sid("3-0") and s.first_id == sid(
        "2-0"
    )  # the largest deleted ID is kept
    assert s.delete([sid("2-0"), sid("4-0"), sid("5-0")]) == 3
    assert len(s) == 0 and s.first_id == ZERO_ID and s.max_deleted_id == sid("5-0")
    assert s.last_id == sid("5-0") and s.entries_added == 5
    with pytest.raises(CommandError, match="equal or smaller"):
        s.add(F, b"5-0")


def _filled(n: int, **kw) -> StreamLog:
    s = StreamLog(**kw)
    for i in range(1, n + 1):
        s.add(F, b"%d-0" % i)
    return s


def test_trim_exact_and_approx_follow_nodes():
    s = _filled(350)
    assert s.trim(maxlen=120, approx=True) == 200  # whole 100-entry nodes only
    assert len(s) == 150 and s.first_id == sid("201-0")
    assert s.trim(maxlen=120) == 30 and len(s) == 120
    assert s.trim(maxlen=120) == 0
    s = _filled(350)
    assert s.trim(maxlen=0, approx=True, limit=150) == 100
    assert s.trim(maxlen=0, approx=True, limit=0) == 250 and len(s) == 0
    s = _filled(350)
    assert s.trim(minid=sid("150-0"), approx=True) == 100
    assert s.trim(minid=sid("150-0")) == 49 and s.first_id == sid("150-0")
    assert s.max_deleted_id == ZERO_ID  # trimming leaves no tombstone record
    s = _filled(30, node_max_entries=10)
    s.delete([StreamID(i, 0) for i in range(1, 10)])  # node 1 keeps one entry (10-0)
    assert s.trim(maxlen=15, approx=True) == 1  # node 1 (1 live) goes; node 2 would leave 10 < 15
    assert s.info()["radix-tree-keys"] == 2
    big = StreamLog()
    for i in range(1, 21):
        big.add([(b"f", b"x" * 1000)], b"%d-0" % i)  # 4096-byte nodes: about 4 entries each
    assert big.info()["radix-tree-keys"] in (5, 6, 7)


def test_node_emptied_by_xdel_is_dropped():
    s = _filled(250)
    s.delete([StreamID(i, 0) for i in range(101, 201)])
    assert s.info()["radix-tree-keys"] == 2
    assert s.trim(maxlen=50, approx=True) == 100 and len(s) == 50


# --- groups ------------------------------------------------------------------------------------


def test_group_lifecycle():
    s = _filled(5)
    s.create_group(b"g", b"0")
    with pytest.raises(CommandError, match="^BUSYGROUP Consumer Group name already exists$"):
        s.create_group(b"g", b"$")
    with pytest.raises(CommandError, match="^ERR value for ENTRIESREAD must be positive or -1$"):
        s.create_group(b"h", b"$", entries_read=-2)
    with pytest.raises(NoGroupError) as info:
        s.set_group_id(b"nope", b"0")
    assert info.value.group == b"nope"
    assert (
        nogroup_text("XGROUP", b"k", b"nope")
        == "NOGROUP No such consumer group 'nope' for key name 'k'"
    )
    assert (
        nogroup_text("XREADGROUP", b"k", b"g")
        == "NOGROUP No such key 'k' or consumer group 'g' in XREADGROUP with GROUP option"
    )
    assert nogroup_text("XPENDING", b"k", b"g") == "NOGROUP No such key 'k' or consumer group 'g'"
    got = s.read_group(b"g", b"alice", count=2, now_ms=100)
    assert [e[0] for e in got] == [sid("1-0"), sid("2-0")]
    assert s.groups[b"g"].last_id == sid("2-0") and s.groups[b"g"].entries_read == 2
    got = s.read_group(b"g", b"bob", now_ms=200)
    assert [e[0] for e in got] == [sid("3-0"), sid("4-0"), sid("5-0")]
    assert s.read_group(b"g", b"bob", now_ms=300) is None
    assert s.read_group(b"g", b"carol") is None and b"carol" not in s.groups[b"g"].consumers
    assert s.pending_summary(b"g") == (5, sid("1-0"), sid("5-0"), [(b"alice", 2), (b"bob", 3)])
    assert s.pending(b"g", count=10, now_ms=1000) == [
        (sid("1-0"), b"alice", 900, 1),
        (sid("2-0"), b"alice", 900, 1),
        (sid("3-0"), b"bob", 800, 1),
        (sid("4-0"), b"bob", 800, 1),
        (sid("5-0"), b"bob", 800, 1),
    ]
    assert [p[0] for p in s.pending(b"g", consumer=b"bob", count=2, now_ms=1000)] == [
        sid("3-0"),
        sid("4-0"),
    ]
    assert s.pending(b"g", min_idle_ms=850, now_ms=1000, count=10)[-1][0] == sid("2-0")
    assert [p[0] for p in s.pending(b"g", min_idle_ms=900, now_ms=1000)] == [sid("1-0"), sid("2-0")]
    assert s.pending(b"g", count=0) == [] and s.pending(b"g", consumer=b"zed") == []
    # history: the consumer's own pending entries after the given ID, bumped
    assert [e[0] for e in s.read_group(b"g", b"alice", b"0", now_ms=1500)] == [
        sid("1-0"),
        sid("2-0"),
    ]
    assert s.pending(b"g", count=1, now_ms=2000) == [(sid("1-0"), b"alice", 500, 2)]
    s.delete([sid("2-0")])
    assert s.read_group(b"g", b"alice", b"1-0", now_ms=1600) == [(sid("2-0"), None)]
    assert (
        s.ack(b"g", [sid("1-0"), sid("2-0"), sid("9-0")]) == 2 and s.ack(b"nope", [sid("3-0")]) == 0
    )
    assert s.pending_summary(b"g") == (3, sid("3-0"), sid("5-0"), [(b"bob", 3)])
    assert s.create_consumer(b"g", b"dave", now_ms=5) == 1 and s.create_consumer(b"g", b"dave") == 0
    assert s.delete_consumer(b"g", b"bob") == 3 and s.delete_consumer(b"g", b"bob") == 0
    assert s.pending_summary(b"g") == (0, None, None, None)
    s.set_group_id(b"g", b"0", entries_read=0)
    got = s.read_group(b"g", b"erin", count=1, noack=True)
    assert [e[0] for e in got] == [sid("1-0")] and s.pending_summary(b"g")[0] == 0
    assert s.destroy_group(b"g") == 1 and s.destroy_group(b"g") == 0


def test_redelivery_after_setid_moves_ownership():
    s = _filled(3)
    s.create_group(b"g", b"0")
    s.read_group(b"g", b"a", now_ms=10)
    s.set_group_id(b"g", b"0")
    s.read_group(b"g", b"b", count=2, now_ms=20)
    assert s.pending(b"g", now_ms=30) == [
        (sid("1-0"), b"b", 10, 1),
        (sid("2-0"), b"b", 10, 1),
        (sid("3-0"), b"a", 20, 1),
    ]
    assert s.groups[b"g"].consumers[b"a"].pending == [sid("3-0")]


def test_entries_read_and_lag():
    s = _filled(10)
    s.create_group(b"from0", b"0")
    s.create_group(b"end", b"$")
    s.create_group(b"known", b"0", entries_read=0)
    info = {g["name"]: g for g in s.groups_info()}
    assert (info[b"from0"]["entries-read"], info[b"from0"]["lag"]) == (None, 10)
    assert (info[b"end"]["entries-read"], info[b"end"]["lag"]) == (None, 0)
    assert info[b"known"]["lag"] == 10
    s.delete([sid("5-0")])
    assert s.lag(b"known") is None  # a tombstone ahead: unknown
    s.read_group(b"known", b"c", count=6)
    assert s.groups[b"known"].last_id == sid("7-0") and s.lag(b"known") is None  # as redis 7.0.15
    assert s.groups[b"known"].entries_read == -1
    s.read_group(b"known", b"c")
    assert s.groups[b"known"].entries_read == 10 and s.lag(b"known") == 0
    assert s.estimate_entries_read(sid("10-0")) == 10 and s.estimate_entries_read(sid("11-0")) == -1


def test_info():
    s = _filled(3)
    s.delete([sid("2-0")])
    s.create_group(b"g")
    info = s.info()
    assert info["length"] == 2 and info["last-generated-id"] == sid("3-0")
    assert info["max-deleted-entry-id"] == sid("2-0") and info["entries-added"] == 3
    assert info["recorded-first-entry-id"] == sid("1-0") and info["groups"] == 1
    assert info["first-entry"] == (sid("1-0"), F) and info["last-entry"] == (sid("3-0"), F)
    assert StreamLog().info()["first-entry"] is None


# --- against a naive model --------------------------------------------------------------


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(1, 3), st.integers(0, 2)),
        st.tuples(st.just("del"), st.integers(0, 40)),
        st.tuples(st.just("maxlen"), st.integers(0, 30), st.booleans()),
        st.tuples(st.just("minid"), st.integers(0, 60), st.booleans()),
    ),
    min_size=5,
    max_size=150,
)


@settings(max_examples=150, deadline=None)
@given(ops=OPS, node=st.sampled_from([2, 5, 100]))
def test_matches_naive_list(ops, node):
    s = StreamLog(node_max_entries=node)
    ref: list[StreamID] = []
    added = 0
    max_deleted = ZERO_ID
    for op in ops:
        if op[0] == "add":
            new = s.add(
                F,
                b"%d-*" % (s.last_id.ms + op[2]) if op[1] != 3 else b"*",
                now_ms=s.last_id.ms + op[2],
            )
            ref.append(new)
            added += 1
        elif op[0] == "del" and ref:
            target = ref[op[1] % len(ref)]
            assert s.delete([target]) == 1
            ref.remove(target)
            max_deleted = max(max_deleted, target)
        elif op[0] == "maxlen":
            removed = s.trim(maxlen=op[1], approx=op[2])
            if op[2]:
                assert 0 <= removed <= max(0, len(ref) - op[1])
            else:
                assert removed == max(0, len(ref) - op[1])
            ref = ref[removed:]
        elif op[0] == "minid":
            minid = StreamID(op[1], 0)
            removed = s.trim(minid=minid, approx=op[2])
            below = sum(1 for x in ref if x < minid)
            assert removed <= below if op[2] else removed == below
            ref = ref[removed:]
        assert [e[0] for e in s.range()] == ref
        assert len(s) == len(ref) and s.entries_added == added and s.max_deleted_id == max_deleted
        assert s.first_id == (ref[0] if ref else ZERO_ID)
    model = s.to_model()
    assert StreamLog.from_model(model).to_model() == model


# --- through the codec -------------------------------------------------------------------


def _busy_stream() -> StreamLog:
    s = StreamLog()
    for i in range(1, 251):
        fields = (
            ((b"name", b"n%d" % i), (b"v", b"%d" % (i * 7)))
            if i % 3
            else ((b"other", b"x" * (i % 50)),)
        )
        s.add(fields, b"%d-%d" % (1000 + i // 2, i % 2))
    s.delete([StreamID(1000 + i // 2, i % 2) for i in range(5, 40, 3)])
    s.create_group(b"g1", b"0", entries_read=0)
    s.create_group(b"g2", b"$")
    s.read_group(b"g1", b"alice", count=20, now_ms=1_700_000_000_000)
    s.read_group(b"g1", b"bob", count=5, now_ms=1_700_000_000_500)
    s.ack(b"g1", [StreamID(1000 + i // 2, i % 2) for i in range(8, 14)])
    s.create_consumer(b"g2", b"idle", now_ms=1_700_000_001_000)
    return s


def _without_active_time(model):
    groups = tuple(
        dataclasses.replace(
            g, consumers=tuple(dataclasses.replace(c, active_time_ms=None) for c in g.consumers)
        )
        for g in model.groups
    )
    return dataclasses.replace(model, groups=groups)


@pytest.mark.parametrize("version", [10, 11])
def test_round_trip_through_dump_payload(codec, version):
    s = _busy_stream()
    model = s.to_model()
    parsed = codec.parse_dump_payload(codec.dump_payload("stream", model, version))
    assert parsed.type == "stream"
    back = StreamLog.from_model(parsed.value).to_model()
    if version < 11:  # RDB 10 stores no consumer active time
        assert _without_active_time(back) == _without_active_time(model)
    else:
        assert back == model
    # empty after deletions, with a group: still round-trips
    e = _filled(3)
    e.create_group(b"g", b"$")
    e.delete([sid("1-0"), sid("2-0"), sid("3-0")])
    again = codec.parse_dump_payload(codec.dump_payload("stream", e.to_model(), version)).value
    assert again == e.to_model()


# --- against redis 7.0 ------------------------------------------------------------------------


SEEDS = int(__import__("os").environ.get("NODE_DIFF_SEEDS", "4"))


def _redis(client, *argv):
    import redis

    try:
        return client.execute_command(*argv)
    except redis.ResponseError as exc:
        return ("error", str(exc))


def _ours(call):
    try:
        return call()
    except CommandError as exc:
        text = str(exc)
        return ("error", text.removeprefix("ERR "))


def _b(i: StreamID | None):
    return None if i is None else b"%d-%d" % i


def _entries(items):
    if items is None:
        return None
    return [[_b(i), None if f is None else [x for pair in f for x in pair]] for i, f in items]


@pytest.mark.parametrize("seed", range(SEEDS))
def test_differential_against_redis7(redis7, seed):
    rng = random.Random(seed)
    client = redis7.client(protocol=2)
    client.response_callbacks.clear()
    key = b"node-stream-diff"
    client.delete(key)
    s = StreamLog()

    def both(argv, ours):
        assert _redis(client, *argv) == _ours(ours), argv

    ms = 1
    for step in range(600):
        roll = rng.random() if s.entries_added else 0.0  # the key exists after the first XADD
        if roll < 0.45:
            ms += rng.choice([0, 0, 1, 3])
            form = rng.choice(["explicit", "auto-seq", "ms"])
            id_arg = {
                "explicit": b"%d-%d" % (ms, rng.randint(0, 3)),
                "auto-seq": b"%d-*" % ms,
                "ms": b"%d" % ms,
            }[form]
            fields = [(b"f%d" % rng.randint(0, 2), b"v%d" % step)] * rng.randint(1, 2)
            trim = rng.random()
            argv = [b"XADD", key]
            kw = {}
            if trim < 0.1:
                argv += [b"MAXLEN", b"~", b"40"]
                kw = {"maxlen": 40, "approx": True}
            elif trim < 0.15:
                argv += [b"MINID", b"=", b"%d" % max(ms - 30, 0)]
                kw = {"minid": StreamID(max(ms - 30, 0), 0)}
            argv += [id_arg] + [x for p in fields for x in p]
            both(argv, lambda: _b(s.add(fields, id_arg, **kw)))
        elif roll < 0.55:
            victims = [
                _b(StreamID(rng.randint(max(ms - 40, 0), ms), rng.randint(0, 2))) for _ in range(3)
            ]
            both([b"XDEL", key, *victims], lambda: s.delete(parse_id(v) for v in victims))
        elif roll < 0.65:
            lo = rng.choice(
                [
                    b"-",
                    b"(%d" % rng.randint(0, ms),
                    b"%d" % rng.randint(0, ms),
                    b"%d-1" % rng.randint(0, ms),
                ]
            )
            hi = rng.choice([b"+", b"(%d" % rng.randint(0, ms), b"%d" % rng.randint(0, ms)])
            count = rng.choice([None, 0, 1, 5])
            extra = [] if count is None else [b"COUNT", b"%d" % count]
            rev = rng.random() < 0.4
            if rev:
                argv = [b"XREVRANGE", key, hi, lo, *extra]
            else:
                argv = [b"XRANGE", key, lo, hi, *extra]
            both(
                argv,
                lambda: _entries(
                    s.range(
                        parse_range_id(lo, end=False),
                        parse_range_id(hi, end=True),
                        count=count,
                        rev=rev,
                    )
                ),
            )
        elif roll < 0.7:
            both([b"XTRIM", key, b"MAXLEN", b"~", b"30"], lambda: s.trim(maxlen=30, approx=True))
        elif roll < 0.72:
            both([b"XTRIM", key, b"MAXLEN", b"35"], lambda: s.trim(maxlen=35))
        elif roll < 0.76:
            group = rng.choice([b"ga", b"gb"])
            start = rng.choice([b"0", b"$", b"%d" % max(ms - 10, 0)])
            read = rng.choice([None, None, -1, 0, 3, -7])
            extra = [] if read is None else [b"ENTRIESREAD", b"%d" % read]
            sub = b"SETID" if group in s.groups else b"CREATE"
            op = s.set_group_id if group in s.groups else s.create_group
            if group in s.groups and rng.random() < 0.5:
                sub = rng.choice([b"CREATECONSUMER", b"DELCONSUMER", b"DESTROY"])
                c = rng.choice([b"c1", b"c2", b"c9"])
                argv = [b"XGROUP", sub, key, group] + ([] if sub == b"DESTROY" else [c])
                calls = {
                    b"CREATECONSUMER": lambda: s.create_consumer(group, c),
                    b"DELCONSUMER": lambda: s.delete_consumer(group, c),
                    b"DESTROY": lambda: s.destroy_group(group),
                }
                both(argv, calls[sub])
            else:
                argv = [b"XGROUP", sub, key, group, start, *extra]
                both(argv, lambda: op(group, start, entries_read=read) or b"OK")
        elif roll < 0.88 and s.groups:
            group = rng.choice(sorted(s.groups))
            consumer = rng.choice([b"c1", b"c2", b"c3"])
            which = rng.choice([b">", b">", b"0", b"%d" % max(ms - 5, 0)])
            count = rng.choice([1, 3, 10])
            argv = [
                b"XREADGROUP",
                b"GROUP",
                group,
                consumer,
                b"COUNT",
                b"%d" % count,
                b"STREAMS",
                key,
                which,
            ]
            got = _redis(client, *argv)
            ours = s.read_group(group, consumer, which, count=count)
            assert got == (None if ours is None else [[key, _entries(ours)]]), argv
        elif roll < 0.93 and s.groups:
            group = rng.choice(sorted(s.groups))
            ids = [
                _b(StreamID(rng.randint(max(ms - 20, 0), ms), rng.randint(0, 2))) for _ in range(4)
            ]
            both([b"XACK", key, group, *ids], lambda: s.ack(group, [parse_id(i) for i in ids]))
        elif s.groups:
            group = rng.choice(sorted(s.groups))
            summary = s.pending_summary(group)
            expected = [
                summary[0],
                _b(summary[1]),
                _b(summary[2]),
                None if summary[3] is None else [[c, b"%d" % n] for c, n in summary[3]],
            ]
            assert _redis(client, b"XPENDING", key, group) == expected
            consumer = rng.choice([None, b"c1", b"c2"])
            argv = [b"XPENDING", key, group, b"-", b"+", b"7"] + ([consumer] if consumer else [])
            got = [[i, c, d] for i, c, _idle, d in _redis(client, *argv)]
            ours = [
                [_b(i), c, d] for i, c, _idle, d in s.pending(group, count=7, consumer=consumer)
            ]
            assert got == ours, argv
    info = _redis(client, b"XINFO", b"STREAM", key)
    theirs = dict(zip(info[::2], info[1::2]))
    ours = s.info()
    for field in ("length", "radix-tree-keys", "entries-added", "groups"):
        assert theirs[field.encode()] == ours[field], field
    for field in ("last-generated-id", "max-deleted-entry-id", "recorded-first-entry-id"):
        assert theirs[field.encode()] == _b(ours[field]), field
    for theirs_group, ours_group in zip(_redis(client, b"XINFO", b"GROUPS", key), s.groups_info()):
        g = dict(zip(theirs_group[::2], theirs_group[1::2]))
        assert g[b"name"] == ours_group["name"]
        assert g[b"pending"] == ours_group["pending"] and g[b"consumers"] == ours_group["consumers"]
        assert g[b"last-delivered-id"] == _b(ours_group["last-delivered-id"])
        assert g[b"entries-read"] == ours_group["entries-read"] and g[b"lag"] == ours_group["lag"]
    # error texts
    both([b"XADD", key, b"0-0", b"a", b"b"], lambda: s.add([(b"a", b"b")], b"0-0"))
    both([b"XADD", key, b"1-1", b"a", b"b"], lambda: s.add([(b"a", b"b")], b"1-1"))
    both(
        [b"XRANGE", key, b"-", b"(0-0"], lambda: s.range(ZERO_ID, parse_range_id(b"(0-0", end=True))
    )
    for _ in range(2):  # the second one is BUSYGROUP
        both([b"XGROUP", b"CREATE", key, b"gz", b"$"], lambda: s.create_group(b"gz", b"$") or b"OK")
    client.delete(key)
    client.close()
