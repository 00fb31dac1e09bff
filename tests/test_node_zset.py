"""rdbkit.node.zset: SortedSet against a naive model, redis' texts, the codec and redis 7.0."""

# ruff: noqa: B023  (the lambdas handed to _ours/both run at once, inside the loop step)

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rdbkit.node.zset import (
    LEX_MAX,
    LEX_MIN,
    CommandError,
    LexBound,
    ScoreBound,
    SortedSet,
    format_score,
    parse_float,
    parse_lex_bound,
    parse_score_bound,
)

INF = math.inf


# --- text helpers ----------------------------------------------------------------


@pytest.mark.parametrize(
    "score, text",
    [
        (1.5, b"1.5"),
        (1e20, b"1e+20"),
        (1e16, b"10000000000000000"),
        (0.1, b"0.10000000000000001"),
        (1.1, b"1.1000000000000001"),
        (3.0, b"3"),
        (-2.0, b"-2"),
        (0.0, b"0"),
        (-0.0, b"-0"),
        (1e-05, b"1.0000000000000001e-05"),
        (INF, b"inf"),
        (-INF, b"-inf"),
    ],
)
def test_format_score_is_redis_7_0_text(score, text):
    assert format_score(score) == text


@pytest.mark.parametrize(
    "arg, value",
    [
        (b"1", 1.0),
        (b"-1.5", -1.5),
        (b"+.5", 0.5),
        (b"5.", 5.0),
        (b"1e3", 1000.0),
        (b"0x10", 16.0),
        (b"0x1.8p1", 3.0),
        (b"inf", INF),
        (b"+inf", INF),
        (b"-inf", -INF),
        (b"Infinity", INF),
        (b"4.9e-324", 5e-324),
        (b"0", 0.0),
        (b"0e500", 0.0),
    ],
)
def test_parse_float_accepts(arg, value):
    assert parse_float(arg) == value


@pytest.mark.parametrize(
    "arg",
    [
        b"",
        b" 5",
        b"5 ",
        b"nan",
        b"-nan",
        b"1e400",
        b"-1e400",
        b"1e-400",
        b"1_0",
        b"abc",
        b"1e",
        b"5\x00",
        b"0x",
        b"\xff",
        b"infinit",
    ],
)
def test_parse_float_refuses_with_redis_text(arg):
    with pytest.raises(CommandError, match=r"^ERR value is not a valid float$"):
        parse_float(arg)


@pytest.mark.parametrize(
    "arg, bound",
    [
        (b"1.5", ScoreBound(1.5, False)),
        (b"(1.5", ScoreBound(1.5, True)),
        (b"-inf", ScoreBound(-INF, False)),
        (b"+inf", ScoreBound(INF, False)),
        (b"(+inf", ScoreBound(INF, True)),
        (b"", ScoreBound(0.0, False)),  # strtod quirks redis keeps
        (b"(", ScoreBound(0.0, True)),
        (b" 5", ScoreBound(5.0, False)),
        (b"1e400", ScoreBound(INF, False)),
        (b"5\x00x", ScoreBound(5.0, False)),
        (b"0x10", ScoreBound(16.0, False)),
    ],
)
def test_parse_score_bound(arg, bound):
    assert parse_score_bound(arg) == bound


@pytest.mark.parametrize("arg", [b"5 ", b"nan", b"  ", b"x", b"[1", b"((1"])
def test_parse_score_bound_refuses(arg):
    with pytest.raises(CommandError, match=r"^ERR min or max is not a float$"):
        parse_score_bound(arg)


def test_parse_lex_bound():
    assert parse_lex_bound(b"-") == LEX_MIN
    assert parse_lex_bound(b"+") == LEX_MAX
    assert parse_lex_bound(b"[abc") == LexBound(b"abc", False)
    assert parse_lex_bound(b"(abc") == LexBound(b"abc", True)
    assert parse_lex_bound(b"[") == LexBound(b"", False)
    for bad in (b"abc", b"", b"--", b"]a"):
        with pytest.raises(CommandError, match=r"^ERR min or max not valid string range item$"):
            parse_lex_bound(bad)


# --- ZADD semantics -------------------------------------------------------------


def test_zadd_flags():
    z = SortedSet()
    assert z.zadd([(1.0, b"a"), (2.0, b"b")]) == 2
    assert z.zadd([(5.0, b"a"), (3.0, b"c")], nx=True) == 1
    assert z.score(b"a") == 1.0
    assert z.zadd([(5.0, b"a"), (4.0, b"d")], xx=True) == 0
    assert z.score(b"a") == 5.0 and b"d" not in z
    assert (
        z.zadd([(6.0, b"a"), (1.0, b"b"), (9.0, b"e")], gt=True, ch=True) == 2
    )  # a updated, e added
    assert z.score(b"b") == 2.0
    assert z.zadd([(1.0, b"a"), (7.0, b"b")], lt=True, ch=True) == 1
    assert z.score(b"a") == 1.0 and z.score(b"b") == 2.0
    assert z.zadd([(1.0, b"a")], ch=True) == 0  # unchanged score is not counted
    assert z.zadd([(2.5, b"a")], incr=True) == 3.5
    assert z.zadd([(1.0, b"a")], incr=True, nx=True) is None
    assert z.zadd([(1.0, b"zz")], incr=True, xx=True) is None
    assert z.zadd([(-1.0, b"a")], incr=True, gt=True) is None
    assert z.zadd([(1.0, b"new")], incr=True, gt=True) == 1.0  # GT does not stop adding
    assert z.zadd([(0.0, b"new")], incr=True, gt=True) is None  # equal is not greater
    assert z.zadd([(0.0, b"new")], incr=True, lt=True) is None
    assert z.zadd([(0.0, b"new")], incr=True) == 1.0
    assert z.incrby(b"fresh", 2.5) == 2.5
    assert z.incrby(b"fresh", -0.5) == 2.0


@pytest.mark.parametrize(
    "flags, text",
    [
        ({"nx": True, "xx": True}, "ERR XX and NX options at the same time are not compatible"),
        (
            {"gt": True, "nx": True},
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ),
        (
            {"lt": True, "nx": True},
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ),
        (
            {"gt": True, "lt": True},
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ),
    ],
)
def test_zadd_incompatible_flags(flags, text):
    with pytest.raises(CommandError) as info:
        SortedSet().zadd([(1.0, b"a")], **flags)
    assert str(info.value) == text


def test_zadd_incr_single_pair_and_nan():
    z = SortedSet()
    with pytest.raises(
        CommandError, match="^ERR INCR option supports a single increment-element pair$"
    ):
        z.zadd([(1.0, b"a"), (2.0, b"b")], incr=True)
    assert len(z) == 0
    z.zadd([(INF, b"a")])
    with pytest.raises(CommandError, match=r"^ERR resulting score is not a number \(NaN\)$"):
        z.incrby(b"a", -INF)
    with pytest.raises(CommandError, match=r"^ERR resulting score is not a number \(NaN\)$"):
        z.zadd([(-INF, b"a")], incr=True)
    assert z.score(b"a") == INF


def test_ranges_by_rank_score_lex():
    z = SortedSet((bytes([c]), float(i // 2)) for i, c in enumerate(b"abcdefgh"))
    # a b -> 0, c d -> 1, e f -> 2, g h -> 3
    assert z.range_by_rank(0, -1) == list(z)
    assert z.range_by_rank(-2, -1) == [(b"g", 3.0), (b"h", 3.0)]
    assert z.range_by_rank(1, 2, rev=True) == [(b"g", 3.0), (b"f", 2.0)]
    assert z.range_by_rank(5, 2) == [] and z.range_by_rank(-100, 0) == [(b"a", 0.0)]
    assert z.range_by_rank(6, 100) == [(b"g", 3.0), (b"h", 3.0)]
    assert [m for m, _ in z.range_by_score(ScoreBound(1.0, True), ScoreBound(3.0))] == [
        b"e",
        b"f",
        b"g",
        b"h",
    ]
    assert [
        m
        for m, _ in z.range_by_score(ScoreBound(-INF), ScoreBound(INF), rev=True, offset=1, count=2)
    ] == [b"g", b"f"]
    assert z.range_by_score(ScoreBound(2.0), ScoreBound(2.0, True)) == []
    assert z.range_by_score(ScoreBound(0.0), ScoreBound(5.0), offset=-1) == []
    assert len(z.range_by_score(ScoreBound(0.0), ScoreBound(5.0), count=-1)) == 8
    assert z.count_by_score(ScoreBound(1.0), ScoreBound(2.0)) == 4
    assert z.rank(b"e") == 4 and z.rank(b"e", rev=True) == 3 and z.rank(b"zz") is None
    same = SortedSet((m, 0.0) for m in [b"a", b"b", b"c", b"d", b"e"])
    assert same.range_by_lex(parse_lex_bound(b"[b"), parse_lex_bound(b"(d")) == [b"b", b"c"]
    assert same.range_by_lex(LEX_MIN, LEX_MAX, rev=True, offset=1, count=2) == [b"d", b"c"]
    assert same.range_by_lex(LEX_MAX, LEX_MIN) == []
    assert same.count_by_lex(parse_lex_bound(b"(a"), LEX_MAX) == 4
    assert same.remove_range_by_lex(parse_lex_bound(b"[b"), parse_lex_bound(b"[c")) == 2
    assert [m for m, _ in same] == [b"a", b"d", b"e"]


def test_remove_ranges_and_pops():
    z = SortedSet((b"m%02d" % i, float(i)) for i in range(20))
    assert z.remove_range_by_rank(0, 1) == 2
    assert z.remove_range_by_rank(-2, -1) == 2
    assert z.remove_range_by_score(ScoreBound(5.0, True), ScoreBound(7.0)) == 2
    assert z.pop(2) == [(b"m02", 2.0), (b"m03", 3.0)]
    assert z.pop(1, max=True) == [(b"m17", 17.0)]
    assert z.pop(0) == []
    assert [m for m, _ in z] == [b"m04", b"m05", b"m08"] + [b"m%02d" % i for i in range(9, 17)]
    assert z.remove(b"m04") and not z.remove(b"m04")
    assert z.remove_many([b"m05", b"nope", b"m08"]) == 2
    assert z.pop(100) and len(z) == 0 and z.to_model() == {}


def test_model_conversion_and_nan_refusal():
    value = {b"a": 1.0, b"b": -INF, b"c": 1.0}
    z = SortedSet.from_model(value)
    assert list(z.to_model().items()) == [(b"b", -INF), (b"a", 1.0), (b"c", 1.0)]
    assert z == SortedSet(value.items())
    with pytest.raises(ValueError):
        SortedSet.from_model({b"x": math.nan})


# --- against a naive model --------------------------------------------------------


class Naive:
    """A sorted list of (score, member): obviously right, O(n) per operation."""

    def __init__(self):
        self.items: list[tuple[float, bytes]] = []
        self.scores: dict[bytes, float] = {}

    def set(self, member, score):
        if member in self.scores:
            self.items.remove((self.scores[member], member))
        self.scores[member] = score
        self.items.insert(bisect_left(self.items, (score, member)), (score, member))

    def remove(self, member):
        if member in self.scores:
            self.items.remove((self.scores.pop(member), member))

    def in_score(self, lo: ScoreBound, hi: ScoreBound):
        return [
            (m, s)
            for s, m in self.items
            if (s > lo.value if lo.exclusive else s >= lo.value)
            and (s < hi.value if hi.exclusive else s <= hi.value)
        ]


SCORES = st.sampled_from([-INF, -3.0, -1.5, 0.0, 1.0, 2.0, 2.5, 7.0, INF])
MEMBERS = st.binary(min_size=0, max_size=3)
BOUNDS = st.builds(ScoreBound, SCORES, st.booleans())
OPS = st.one_of(
    st.tuples(st.just("add"), MEMBERS, SCORES),
    st.tuples(st.just("remove"), MEMBERS),
    st.tuples(st.just("incr"), MEMBERS, st.sampled_from([-1.0, 0.5, 3.0])),
    st.tuples(st.just("remrank"), st.integers(-8, 8), st.integers(-8, 8)),
    st.tuples(st.just("remscore"), BOUNDS, BOUNDS),
    st.tuples(st.just("pop"), st.integers(0, 3), st.booleans()),
)


@settings(max_examples=150, deadline=None)
@given(
    ops=st.lists(OPS, min_size=10, max_size=200),
    load=st.sampled_from([2, 3, 8, 1000]),
    data=st.data(),
)
def test_matches_naive_model(ops, load, data):
    z = SortedSet(load=load)
    ref = Naive()
    for op in ops:
        kind = op[0]
        if kind == "add":
            z.zadd([(op[2], op[1])])
            ref.set(op[1], op[2])
        elif kind == "remove":
            z.remove(op[1])
            ref.remove(op[1])
        elif kind == "incr":
            old = ref.scores.get(op[1], 0.0)
            if math.isnan(old + op[2]):
                with pytest.raises(CommandError):
                    z.incrby(op[1], op[2])
            else:
                assert z.incrby(op[1], op[2]) == old + op[2]
                ref.set(op[1], old + op[2])
        elif kind == "remrank":
            expected = [m for m, _ in _naive_rank(ref, op[1], op[2])]
            assert z.remove_range_by_rank(op[1], op[2]) == len(expected)
            for m in expected:
                ref.remove(m)
        elif kind == "remscore":
            expected = [m for m, _ in ref.in_score(op[1], op[2])]
            assert z.remove_range_by_score(op[1], op[2]) == len(expected)
            for m in expected:
                ref.remove(m)
        elif kind == "pop":
            items = [(m, s) for s, m in ref.items]
            taken = (items[::-1] if op[2] else items)[: op[1]]
            assert z.pop(op[1], max=op[2]) == taken
            for m, _ in taken:
                ref.remove(m)
    expected = [(m, s) for s, m in ref.items]
    assert list(z) == expected
    assert list(reversed(z)) == expected[::-1]
    assert len(z) == len(expected)
    for i, (m, s) in enumerate(expected):
        assert z.rank(m) == i and z.score(m) == s
    start, stop = data.draw(st.integers(-10, 10)), data.draw(st.integers(-10, 10))
    assert z.range_by_rank(start, stop) == _naive_rank(ref, start, stop)
    assert z.range_by_rank(start, stop, rev=True) == _naive_rank(ref, start, stop, rev=True)
    lo, hi = data.draw(BOUNDS), data.draw(BOUNDS)
    offset, count = data.draw(st.integers(-1, 4)), data.draw(st.integers(-1, 4))
    inside = ref.in_score(lo, hi)
    assert z.count_by_score(lo, hi) == len(inside)
    assert z.range_by_score(lo, hi, offset=offset, count=count) == _limit(inside, offset, count)
    assert z.range_by_score(lo, hi, rev=True, offset=offset, count=count) == _limit(
        inside[::-1], offset, count
    )


def _naive_rank(ref: Naive, start: int, stop: int, rev: bool = False):
    items = [(m, s) for s, m in ref.items]
    if rev:
        items.reverse()
    n = len(items)
    start = start + n if start < 0 else start
    stop = stop + n if stop < 0 else stop
    start = max(start, 0)
    if start > stop or start >= n:
        return []
    return items[start : min(stop, n - 1) + 1]


def _limit(items, offset, count):
    if offset < 0:
        return []
    items = items[offset:]
    return items if count < 0 else items[:count]


@settings(max_examples=100, deadline=None)
@given(
    members=st.sets(st.binary(max_size=3), max_size=40),
    low=st.one_of(
        st.just(b"-"),
        st.just(b"+"),
        st.builds(lambda p, v: p + v, st.sampled_from([b"[", b"("]), st.binary(max_size=2)),
    ),
    high=st.one_of(
        st.just(b"-"),
        st.just(b"+"),
        st.builds(lambda p, v: p + v, st.sampled_from([b"[", b"("]), st.binary(max_size=2)),
    ),
    load=st.sampled_from([2, 1000]),
)
def test_lex_ranges_match_naive(members, low, high, load):
    z = SortedSet(((m, 0.0) for m in members), load=load)
    lo, hi = parse_lex_bound(low), parse_lex_bound(high)

    def above(m):
        if lo.infinity:
            return lo.infinity < 0
        return m > lo.value if lo.exclusive else m >= lo.value

    def below(m):
        if hi.infinity:
            return hi.infinity > 0
        return m < hi.value if hi.exclusive else m <= hi.value

    expected = [m for m in sorted(members) if above(m) and below(m)]
    assert z.range_by_lex(lo, hi) == expected
    assert z.range_by_lex(lo, hi, rev=True) == expected[::-1]
    assert z.count_by_lex(lo, hi) == len(expected)
    assert z.remove_range_by_lex(lo, hi) == len(expected)
    assert [m for m, _ in z] == [m for m in sorted(members) if m not in expected]


def test_large_set_with_small_chunks_stays_consistent():
    rng = random.Random(7)
    z = SortedSet(load=16)
    ref: dict[bytes, float] = {}
    for i in range(5000):
        m = b"k%d" % rng.randrange(2000)
        if rng.random() < 0.25:
            z.remove(m)
            ref.pop(m, None)
        else:
            s = float(rng.randrange(100))
            z.zadd([(s, m)])
            ref[m] = s
    expected = sorted((s, m) for m, s in ref.items())
    assert [(s, m) for m, s in z] == expected
    for _ in range(200):
        i = rng.randrange(len(expected))
        assert z.range_by_rank(i, i) == [(expected[i][1], expected[i][0])]
        assert z.rank(expected[i][1]) == i
    lo = rng.randrange(100)
    scores = [s for s, _ in expected]
    assert z.count_by_score(ScoreBound(lo), ScoreBound(lo + 10, True)) == bisect_left(
        scores, lo + 10
    ) - bisect_left(scores, lo)
    assert z.count_by_score(ScoreBound(lo, True), ScoreBound(INF)) == len(scores) - bisect_right(
        scores, lo
    )


# --- through the codec -----------------------------------------------------------


@pytest.mark.parametrize("size", [3, 200])
def test_round_trip_through_dump_payload(codec, size):
    rng = random.Random(size)
    z = SortedSet()
    for i in range(size):
        z.zadd(
            [
                (
                    rng.choice(
                        [-INF, INF, 0.5, float(rng.randrange(-50, 50)), rng.random() * 1e10]
                    ),
                    b"member:%d" % i,
                )
            ]
        )
    payload = codec.dump_payload("zset", z.to_model(), 10)
    parsed = codec.parse_dump_payload(payload)
    assert parsed.type == "zset"
    back = SortedSet.from_model(parsed.value)
    assert back == z
    assert list(back) == list(z)


# --- against redis 7.0 -------------------------------------------------------------


def _raw_client(redis7):
    client = redis7.client(protocol=2)
    client.response_callbacks.clear()  # raw RESP2 replies: scores stay text
    return client


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
        return ("error", str(exc).split(" ", 1)[1])


def _flat(pairs):
    out = []
    for m, s in pairs:
        out += [m, format_score(s)]
    return out


SEEDS = int(__import__("os").environ.get("NODE_DIFF_SEEDS", "2"))


@pytest.mark.parametrize("seed", range(SEEDS))
@pytest.mark.parametrize("size", [20, 300])  # listpack and skiplist on the server's side
def test_differential_against_redis7(redis7, size, seed):
    rng = random.Random(size * 1000 + seed)
    client = _raw_client(redis7)
    key = b"node-zset-diff-%d" % size
    client.delete(key)
    z = SortedSet(load=8)
    members = [b"m%03d" % i for i in range(size)]
    score_texts = [b"1", b"2.5", b"-3", b"0.1", b"1e20", b"inf", b"-inf", b"1.1", b"7", b"2"]
    bounds = [b"-inf", b"+inf", b"(1", b"2.5", b"(0.1", b"1e20", b"0", b"(inf", b"-3", b"x"]
    flag_sets = [
        [],
        [b"NX"],
        [b"XX"],
        [b"GT"],
        [b"LT"],
        [b"CH"],
        [b"GT", b"CH"],
        [b"XX", b"LT", b"CH"],
        [b"NX", b"XX"],
    ]
    for step in range(400):
        roll = rng.random()
        if roll < 0.45:
            flags = rng.choice(flag_sets)
            pairs = [
                (rng.choice(score_texts), rng.choice(members)) for _ in range(rng.randint(1, 3))
            ]
            argv = [b"ZADD", key, *flags] + [x for p in pairs for x in p]
            opts = {f.decode().lower(): True for f in flags}
            got = _ours(lambda: z.zadd([(parse_float(s), m) for s, m in pairs], **opts))
        elif roll < 0.55:
            inc, m = rng.choice([b"1", b"-2.5", b"0.1"]), rng.choice(members)
            argv = [b"ZINCRBY", key, inc, m]
            got = format_score(z.incrby(m, parse_float(inc)))
        elif roll < 0.75:
            lo, hi = rng.choice(bounds), rng.choice(bounds)
            rev = rng.random() < 0.5
            limit = (
                []
                if rng.random() < 0.5
                else [b"LIMIT", b"%d" % rng.randint(0, 3), b"%d" % rng.randint(-1, 5)]
            )
            argv = [
                b"ZREVRANGEBYSCORE" if rev else b"ZRANGEBYSCORE",
                key,
                lo,
                hi,
                b"WITHSCORES",
                *limit,
            ]
            kw = {"offset": int(limit[1]), "count": int(limit[2])} if limit else {}

            def call(lo=lo, hi=hi, rev=rev, kw=kw):
                a, b = parse_score_bound(lo), parse_score_bound(hi)
                return _flat(
                    z.range_by_score(b, a, rev=True, **kw) if rev else z.range_by_score(a, b, **kw)
                )

            got = _ours(call)
        elif roll < 0.82:
            start, stop = rng.randint(-5, 5), rng.randint(-5, 5)
            rev = rng.random() < 0.4
            argv = [b"ZRANGE", key, b"%d" % start, b"%d" % stop, *([b"REV"] if rev else [])]
            got = _flat(z.range_by_rank(start, stop, rev=rev))
            argv.append(b"WITHSCORES")
        elif roll < 0.9:
            m = rng.choice(members)
            argv = [b"ZREVRANK" if step % 2 else b"ZRANK", key, m]
            got = z.rank(m, rev=bool(step % 2))
        elif roll < 0.95:
            lo, hi = rng.choice(bounds[:7]), rng.choice(bounds[:7])
            argv = [b"ZCOUNT", key, lo, hi]
            got = z.count_by_score(parse_score_bound(lo), parse_score_bound(hi))
        elif roll < 0.98:
            lo, hi = rng.choice(bounds[:7]), rng.choice(bounds[:7])
            argv = [b"ZREMRANGEBYSCORE", key, lo, hi]
            got = z.remove_range_by_score(parse_score_bound(lo), parse_score_bound(hi))
        elif roll < 0.99:
            argv = [rng.choice([b"ZPOPMIN", b"ZPOPMAX"]), key, b"2"]
            got = _flat(z.pop(2, max=argv[0] == b"ZPOPMAX"))
        else:
            start, stop = rng.randint(-3, 3), rng.randint(-3, 3)
            argv = [b"ZREMRANGEBYRANK", key, b"%d" % start, b"%d" % stop]
            got = z.remove_range_by_rank(start, stop)
        assert _redis(client, *argv) == got, (step, argv)
    assert _flat(z.range_by_rank(0, -1)) == _redis(
        client, b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"
    )
    # lex ranges on equal scores
    lex_key = key + b":lex"
    client.delete(lex_key)
    words = [b"", b"a", b"ab", b"b", b"ba", b"c", b"\xff", b"a\x00"]
    client.execute_command(b"ZADD", lex_key, *[x for w in words for x in (b"0", w)])
    same = SortedSet((w, 0.0) for w in words)
    for lo in (b"-", b"+", b"[a", b"(a", b"[", b"(b", b"[\xff"):
        for hi in (b"+", b"-", b"(b", b"[ba", b"(\xff"):
            assert _redis(client, b"ZRANGEBYLEX", lex_key, lo, hi) == same.range_by_lex(
                parse_lex_bound(lo), parse_lex_bound(hi)
            )
            assert _redis(
                client, b"ZREVRANGEBYLEX", lex_key, hi, lo, b"LIMIT", b"1", b"2"
            ) == same.range_by_lex(
                parse_lex_bound(lo), parse_lex_bound(hi), rev=True, offset=1, count=2
            )
            assert _redis(client, b"ZLEXCOUNT", lex_key, lo, hi) == same.count_by_lex(
                parse_lex_bound(lo), parse_lex_bound(hi)
            )
    assert _redis(client, b"ZRANGEBYLEX", lex_key, b"a", b"+") == _ours(
        lambda: parse_lex_bound(b"a")
    )
    client.delete(key, lex_key)
    client.close()
