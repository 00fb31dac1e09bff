"""Sorted sets for the node: a member -> score dict plus an ordered index.

The order is redis' (score, then member bytes). The index is a chunked sorted
list of ``(score, member)`` tuples: chunks of at most ``2 * load`` items, each
chunk's last item in ``_maxes`` for bisect, and a Fenwick tree over chunk
lengths so that rank <-> position is O(log chunks). Insert and delete are
O(log n + load) (a list insert inside one chunk), ranges O(log n + k). Pure
Python stays fast to millions of members because the per-item work is done
by ``bisect`` and list slicing in C.

Errors meant for clients are ``CommandError`` whose text is redis 7.0's reply
(without the leading ``-``). Argument parsing of whole commands belongs to the
command layer; the helpers here parse the pieces whose error texts are zset's
own (scores, score bounds, lex bounds).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from itertools import islice
from operator import itemgetter
from typing import NamedTuple

from rdbkit.errors import RdbkitError

__all__ = [
    "CommandError",
    "LexBound",
    "ScoreBound",
    "SortedSet",
    "format_score",
    "parse_float",
    "parse_lex_bound",
    "parse_score_bound",
]

ERR_NOT_FLOAT = "ERR value is not a valid float"
ERR_BOUND_NOT_FLOAT = "ERR min or max is not a float"
ERR_LEX_BOUND = "ERR min or max not valid string range item"
ERR_NAN = "ERR resulting score is not a number (NaN)"
ERR_NX_XX = "ERR XX and NX options at the same time are not compatible"
ERR_GT_LT_NX = "ERR GT, LT, and/or NX options at the same time are not compatible"
ERR_INCR_PAIRS = "ERR INCR option supports a single increment-element pair"


class CommandError(RdbkitError):
    """A command failed the way redis would reply an error; ``str()`` is the reply text.

    The text starts with the error code (``ERR``, ``NOGROUP``, ...) and has no
    leading ``-``; the node writes ``-`` + text + CRLF.
    """


class ScoreBound(NamedTuple):
    """One end of a score range: ``(1.5`` is ``ScoreBound(1.5, True)``."""

    value: float
    exclusive: bool = False


class LexBound(NamedTuple):
    """One end of a lex range. ``infinity`` is -1 for ``-``, +1 for ``+``, else 0."""

    value: bytes
    exclusive: bool = False
    infinity: int = 0


LEX_MIN = LexBound(b"", False, -1)
LEX_MAX = LexBound(b"", False, 1)

_score = itemgetter(0)
_member = itemgetter(1)
_SPACE = b" \t\n\v\f\r"


def format_score(score: float) -> bytes:
    """A score as redis 7.0 replies it in RESP2 (``%.17g``; ``inf``/``-inf``).

    ``rdbkit.codec.commands.format_score`` is different on purpose: it gives the
    shortest text that parses back (for rebuilding keys), not the reply text.
    """
    if math.isinf(score):
        return b"inf" if score > 0 else b"-inf"
    return b"%.17g" % score


def _strtod_prefix(text: bytes) -> tuple[float, int] | None:
    """Emulate C ``strtod`` on ASCII: the value and how many bytes it consumed.

    Returns None when no conversion is possible. Handles decimal, hex
    (``0x1.8p3``), ``inf``/``infinity``/``nan``, like glibc in the C locale.
    Overflow gives +-inf (C gives HUGE_VAL), which callers check themselves.
    """
    n = len(text)
    i = 0
    while i < n and text[i] in _SPACE:
        i += 1
    start = i
    if i < n and text[i] in b"+-":
        i += 1
    rest = text[i : i + 8].lower()
    if rest.startswith(b"infinity"):
        return float(text[start : i + 8]), i + 8
    if rest.startswith(b"inf"):
        return float(text[start : i + 3]), i + 3
    if rest.startswith(b"nan"):
        j = i + 3
        if j < n and text[j : j + 1] == b"(":  # nan(n-char-sequence)
            k = j + 1
            while k < n and (chr(text[k]).isalnum() or text[k] == 0x5F):
                k += 1
            if k < n and text[k : k + 1] == b")":
                j = k + 1
        return math.nan, j
    if rest[:2] == b"0x" and (rest[2:3].isalnum() or rest[2:3] == b"."):
        j = i + 2
        digits = 0
        while j < n and chr(text[j]) in "0123456789abcdefABCDEF":
            j += 1
            digits += 1
        if j < n and text[j] == 0x2E:
            j += 1
            while j < n and chr(text[j]) in "0123456789abcdefABCDEF":
                j += 1
                digits += 1
        if digits == 0:  # "0x" alone: strtod reads the "0"
            return 0.0 if text[start : start + 1] != b"-" else -0.0, i + 1
        end_mant = j
        if j < n and text[j] in b"pP":
            k = j + 1
            if k < n and text[k] in b"+-":
                k += 1
            if k < n and text[k] in b"0123456789":
                while k < n and text[k] in b"0123456789":
                    k += 1
                j = k
        body = text[start:j].decode("ascii")
        if j == end_mant:
            body += "p0"
        try:
            return float.fromhex(body), j
        except OverflowError:
            return (-math.inf if text[start : start + 1] == b"-" else math.inf), j
    j = i
    digits = 0
    while j < n and text[j] in b"0123456789":
        j += 1
        digits += 1
    if j < n and text[j] == 0x2E:
        j += 1
        while j < n and text[j] in b"0123456789":
            j += 1
            digits += 1
    if digits == 0:
        return None
    if j < n and text[j] in b"eE":
        k = j + 1
        if k < n and text[k] in b"+-":
            k += 1
        if k < n and text[k] in b"0123456789":
            while k < n and text[k] in b"0123456789":
                k += 1
            j = k
    return float(text[start:j]), j


def parse_float(arg: bytes) -> float:
    """Parse a score or increment as ZADD/ZINCRBY do (redis' getDoubleFromObject).

    The whole argument must be a number: no leading space, no trailing bytes,
    no NaN, no overflow to infinity or underflow to zero (``inf`` itself is fine).
    Raises ``CommandError("ERR value is not a valid float")``.
    """
    if not arg or arg[0] in _SPACE:
        raise CommandError(ERR_NOT_FLOAT)
    parsed = _strtod_prefix(bytes(arg))
    if parsed is None or parsed[1] != len(arg):
        raise CommandError(ERR_NOT_FLOAT)
    value = parsed[0]
    if math.isnan(value):
        raise CommandError(ERR_NOT_FLOAT)
    if math.isinf(value) and b"inf" not in arg.lower():
        raise CommandError(ERR_NOT_FLOAT)  # ERANGE overflow
    if value == 0.0 and _mantissa_nonzero(arg):
        raise CommandError(ERR_NOT_FLOAT)  # ERANGE underflow to zero
    return value


def _mantissa_nonzero(arg: bytes) -> bool:
    body = arg.lower().lstrip(b"+-")
    if body.startswith(b"0x"):
        mant = body[2:].split(b"p", 1)[0]
        return any(c in b"123456789abcdef" for c in mant)
    mant = body.split(b"e", 1)[0]
    return any(c in b"123456789" for c in mant)


def parse_score_bound(arg: bytes) -> ScoreBound:
    """Parse a ZRANGEBYSCORE/ZCOUNT bound: ``1.5``, ``(1.5``, ``-inf``, ``+inf``.

    Redis parses these with a bare strtod, so it is laxer than ``parse_float``:
    leading spaces pass, overflow gives infinity, an empty number is 0, and
    the text stops at a NUL byte. NaN or trailing bytes raise
    ``CommandError("ERR min or max is not a float")``.
    """
    arg = bytes(arg)
    exclusive = arg[:1] == b"("
    text = arg[1:] if exclusive else arg
    nul = text.find(b"\0")
    if nul >= 0:
        text = text[:nul]
    if not text:
        return ScoreBound(0.0, exclusive)
    parsed = _strtod_prefix(text)
    if parsed is None:
        raise CommandError(ERR_BOUND_NOT_FLOAT)
    value, used = parsed
    if used != len(text) or math.isnan(value):
        raise CommandError(ERR_BOUND_NOT_FLOAT)
    return ScoreBound(value, exclusive)


def parse_lex_bound(arg: bytes) -> LexBound:
    """Parse a ZRANGEBYLEX bound: ``-``, ``+``, ``[abc`` or ``(abc``.

    Raises ``CommandError("ERR min or max not valid string range item")``.
    """
    arg = bytes(arg)
    if arg == b"-":
        return LEX_MIN
    if arg == b"+":
        return LEX_MAX
    if arg[:1] == b"[":
        return LexBound(arg[1:], False)
    if arg[:1] == b"(":
        return LexBound(arg[1:], True)
    raise CommandError(ERR_LEX_BOUND)


def _score_range_empty(low: ScoreBound, high: ScoreBound) -> bool:
    return low.value > high.value or (low.value == high.value and (low.exclusive or high.exclusive))


def _lex_cmp(a: LexBound, b: LexBound) -> int:
    if a.infinity or b.infinity:
        return (a.infinity > b.infinity) - (a.infinity < b.infinity)
    return (a.value > b.value) - (a.value < b.value)


def _lex_range_empty(low: LexBound, high: LexBound) -> bool:
    if low.infinity == 1 or high.infinity == -1:
        return True
    c = _lex_cmp(low, high)
    return c > 0 or (c == 0 and (low.exclusive or high.exclusive))


class _Index:
    """A chunked sorted list of ``(score, member)`` with positional access."""

    __slots__ = ("_len", "_lists", "_load", "_maxes", "_tree")

    def __init__(self, load: int = 1000) -> None:
        self._load = load
        self._lists: list[list[tuple[float, bytes]]] = []
        self._maxes: list[tuple[float, bytes]] = []
        self._tree: list[int] = [0]
        self._len = 0

    # --- Fenwick tree over chunk lengths -----------------------------------

    def _rebuild(self) -> None:
        n = len(self._lists)
        tree = [0] * (n + 1)
        for i, chunk in enumerate(self._lists, 1):
            tree[i] += len(chunk)
            parent = i + (i & -i)
            if parent <= n:
                tree[parent] += tree[i]
        self._tree = tree

    def _bump(self, chunk: int, delta: int) -> None:
        tree = self._tree
        n = len(tree)
        i = chunk + 1
        while i < n:
            tree[i] += delta
            i += i & -i

    def _prefix(self, chunk: int) -> int:
        """Items in the chunks before ``chunk``."""
        tree = self._tree
        total = 0
        i = chunk
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total

    def _locate(self, index: int) -> tuple[int, int]:
        """(chunk, offset) of the item at ``0 <= index < len``."""
        tree = self._tree
        n = len(tree) - 1
        pos = 0
        step = 1 << n.bit_length()
        while step:
            nxt = pos + step
            if nxt <= n and tree[nxt] <= index:
                pos = nxt
                index -= tree[nxt]
            step >>= 1
        return pos, index

    # --- building ----------------------------------------------------------

    def load_sorted(self, items: list[tuple[float, bytes]]) -> None:
        load = self._load
        self._lists = [items[i : i + load] for i in range(0, len(items), load)]
        self._maxes = [chunk[-1] for chunk in self._lists]
        self._len = len(items)
        self._rebuild()

    def __len__(self) -> int:
        return self._len

    def add(self, item: tuple[float, bytes]) -> None:
        lists, maxes = self._lists, self._maxes
        if not lists:
            lists.append([item])
            maxes.append(item)
            self._len = 1
            self._rebuild()
            return
        i = bisect_right(maxes, item)
        if i == len(maxes):
            i -= 1
            lists[i].append(item)
            maxes[i] = item
        else:
            insort(lists[i], item)
        self._len += 1
        chunk = lists[i]
        if len(chunk) > 2 * self._load:
            half = len(chunk) >> 1
            lists[i : i + 1] = [chunk[:half], chunk[half:]]
            maxes[i : i + 1] = [chunk[half - 1], chunk[-1]]
            self._rebuild()
        else:
            self._bump(i, 1)

    def remove(self, item: tuple[float, bytes]) -> None:
        lists, maxes = self._lists, self._maxes
        i = bisect_left(maxes, item)
        chunk = lists[i]
        j = bisect_left(chunk, item)
        del chunk[j]
        self._len -= 1
        self._after_delete(i)

    def _after_delete(self, i: int) -> None:
        lists, maxes = self._lists, self._maxes
        chunk = lists[i]
        if not chunk:
            del lists[i]
            del maxes[i]
            self._rebuild()
            return
        maxes[i] = chunk[-1]
        if len(chunk) < self._load >> 1 and len(lists) > 1:
            # merge with a neighbour; split again if the result is too big
            k = i - 1 if i > 0 else i
            merged = lists[k] + lists[k + 1]
            if len(merged) > 2 * self._load:
                half = len(merged) >> 1
                lists[k : k + 2] = [merged[:half], merged[half:]]
                maxes[k : k + 2] = [merged[half - 1], merged[-1]]
            else:
                lists[k : k + 2] = [merged]
                maxes[k : k + 2] = [merged[-1]]
            self._rebuild()
        else:
            self._bump(i, -1)

    def rank(self, item: tuple[float, bytes]) -> int:
        i = bisect_left(self._maxes, item)
        return self._prefix(i) + bisect_left(self._lists[i], item)

    def at(self, index: int) -> tuple[float, bytes]:
        i, j = self._locate(index)
        return self._lists[i][j]

    def bisect(self, value, key, right: bool) -> int:
        """Global index of the first item whose ``key`` is >= (right: >) ``value``."""
        find = bisect_right if right else bisect_left
        i = find(self._maxes, value, key=key)
        if i == len(self._maxes):
            return self._len
        return self._prefix(i) + find(self._lists[i], value, key=key)

    def iter_from(self, index: int, reverse: bool = False) -> Iterator[tuple[float, bytes]]:
        """Items from ``index`` on (towards the end, or the start when ``reverse``)."""
        if index < 0 or index >= self._len:
            return
        i, j = self._locate(index)
        lists = self._lists
        if reverse:
            yield from reversed(lists[i][: j + 1])
            for k in range(i - 1, -1, -1):
                yield from reversed(lists[k])
        else:
            yield from islice(lists[i], j, None)
            for k in range(i + 1, len(lists)):
                yield from lists[k]

    def slice(self, start: int, stop: int) -> list[tuple[float, bytes]]:
        """Items ``start <= index < stop`` in order (list slices, no per-item skipping)."""
        start = max(start, 0)
        stop = min(stop, self._len)
        if start >= stop:
            return []
        i, j = self._locate(start)
        need = stop - start
        lists = self._lists
        out = lists[i][j : j + need]
        i += 1
        while len(out) < need:
            out.extend(lists[i][: need - len(out)])
            i += 1
        return out

    def delete_slice(self, start: int, stop: int) -> list[tuple[float, bytes]]:
        """Remove and return the items ``start <= index < stop``."""
        items = self.slice(start, stop)
        if not items:
            return items
        if len(items) > self._len // 4:
            rest = self.slice(0, start) + self.slice(stop, self._len)
            self.load_sorted(rest)
        else:
            for item in items:
                self.remove(item)
        return items


class SortedSet:
    """A redis sorted set: unique members ordered by (score, member).

    Scores are floats, never NaN. Range results are lists of
    ``(member, score)`` pairs in reply order.
    """

    __slots__ = ("_index", "_scores")

    def __init__(self, items: Iterable[tuple[bytes, float]] = (), *, load: int = 1000) -> None:
        self._scores: dict[bytes, float] = {}
        self._index = _Index(load)
        pairs = dict(items)
        if pairs:
            self._bulk(pairs)

    def _bulk(self, pairs: dict[bytes, float]) -> None:
        for member, score in pairs.items():
            if not isinstance(member, bytes):
                raise TypeError(f"zset member must be bytes, got {type(member).__name__}")
            if math.isnan(score):
                raise ValueError(f"zset score of {member[:64]!r} is NaN")
        self._scores = {m: float(s) for m, s in pairs.items()}
        self._index.load_sorted(sorted((s, m) for m, s in self._scores.items()))

    @classmethod
    def from_model(cls, value: dict[bytes, float], *, load: int = 1000) -> SortedSet:
        """Build from the codec's value model (``dict[bytes, float]``)."""
        return cls(value.items(), load=load)

    def to_model(self) -> dict[bytes, float]:
        """The codec's value model: a new ``dict[bytes, float]`` in zset order."""
        return {m: s for s, m in self._index.iter_from(0)}

    # --- basics ------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._scores)

    def __contains__(self, member: bytes) -> bool:
        return member in self._scores

    def __iter__(self) -> Iterator[tuple[bytes, float]]:
        """``(member, score)`` pairs from the lowest score up."""
        for score, member in self._index.iter_from(0):
            yield member, score

    def __reversed__(self) -> Iterator[tuple[bytes, float]]:
        for score, member in self._index.iter_from(len(self._scores) - 1, reverse=True):
            yield member, score

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SortedSet):
            return NotImplemented
        return self._scores == other._scores

    def __repr__(self) -> str:
        return f"SortedSet({len(self)} members)"

    def score(self, member: bytes) -> float | None:
        """ZSCORE: the member's score, or None."""
        return self._scores.get(member)

    def _set(self, member: bytes, score: float) -> None:
        old = self._scores.get(member)
        if old is not None:
            self._index.remove((old, member))
        self._scores[member] = score
        self._index.add((score, member))

    # --- ZADD / ZINCRBY / ZREM ---------------------------------------------

    def add(
        self,
        member: bytes,
        score: float,
        *,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
        incr: bool = False,
    ) -> tuple[str, float | None]:
        """Add or update one member as ZADD does; returns ``(outcome, score)``.

        ``outcome`` is ``"added"``, ``"updated"`` (score changed), ``"same"``
        (touched, score unchanged) or ``"nop"`` (NX/XX/GT/LT refused it; the
        score is then None). ``score`` is the member's score afterwards. With
        ``incr`` the given score is an increment; a NaN result raises
        ``CommandError("ERR resulting score is not a number (NaN)")``.
        Option compatibility is ``zadd``'s job.
        """
        if math.isnan(score):
            raise CommandError(ERR_NAN)
        current = self._scores.get(member)
        if current is None:
            if xx:
                return "nop", None
            self._set(member, score)
            return "added", score
        if nx:
            return "nop", None
        new = current + score if incr else score
        if math.isnan(new):
            raise CommandError(ERR_NAN)
        if (gt and new <= current) or (lt and new >= current):
            return "nop", None
        if new != current:
            self._set(member, new)
            return "updated", new
        return "same", current

    def zadd(
        self,
        pairs: Iterable[tuple[float, bytes]],
        *,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
        ch: bool = False,
        incr: bool = False,
    ) -> int | float | None:
        """ZADD with its flags on ``(score, member)`` pairs; returns ZADD's reply.

        The count of added members (plus updated ones with ``ch``); with
        ``incr`` the new score, or None when a flag stopped the update.
        Raises the option-compatibility ``CommandError``s redis gives.
        """
        if nx and xx:
            raise CommandError(ERR_NX_XX)
        if (gt and nx) or (lt and nx) or (gt and lt):
            raise CommandError(ERR_GT_LT_NX)
        pairs = list(pairs)
        if incr and len(pairs) > 1:
            raise CommandError(ERR_INCR_PAIRS)
        added = updated = 0
        result: float | None = None
        for score, member in pairs:
            outcome, result = self.add(member, score, nx=nx, xx=xx, gt=gt, lt=lt, incr=incr)
            if outcome == "added":
                added += 1
            elif outcome == "updated":
                updated += 1
        if incr:
            return result
        return added + updated if ch else added

    def incrby(self, member: bytes, increment: float) -> float:
        """ZINCRBY: add ``increment`` (a missing member starts at 0); the new score."""
        _, score = self.add(member, increment, incr=True)
        assert score is not None
        return score

    def remove(self, member: bytes) -> bool:
        """ZREM of one member: True if it was there."""
        score = self._scores.pop(member, None)
        if score is None:
            return False
        self._index.remove((score, member))
        return True

    def remove_many(self, members: Iterable[bytes]) -> int:
        """ZREM: how many of ``members`` were removed."""
        return sum(1 for m in members if self.remove(m))

    # --- ranks --------------------------------------------------------------

    def rank(self, member: bytes, *, rev: bool = False) -> int | None:
        """ZRANK (ZREVRANK with ``rev``): the 0-based rank, or None."""
        score = self._scores.get(member)
        if score is None:
            return None
        r = self._index.rank((score, member))
        return len(self._scores) - 1 - r if rev else r

    def _rank_span(self, start: int, stop: int) -> tuple[int, int] | None:
        """Redis' rank normalisation: inclusive indexes -> [lo, hi] or None."""
        n = len(self._scores)
        if start < 0:
            start += n
        if stop < 0:
            stop += n
        start = max(start, 0)
        if start > stop or start >= n:
            return None
        if stop >= n:
            stop = n - 1
        return start, stop

    def range_by_rank(
        self, start: int, stop: int, *, rev: bool = False
    ) -> list[tuple[bytes, float]]:
        """ZRANGE start stop [REV]: inclusive, negative indexes count from the end."""
        span = self._rank_span(start, stop)
        if span is None:
            return []
        lo, hi = span
        if rev:
            n = len(self._scores)
            return [(m, s) for s, m in reversed(self._index.slice(n - 1 - hi, n - lo))]
        return [(m, s) for s, m in self._index.slice(lo, hi + 1)]

    # --- score ranges ---------------------------------------------------------

    def _score_span(self, low: ScoreBound, high: ScoreBound) -> tuple[int, int]:
        """Global [first, stop) of the members inside the score range."""
        if _score_range_empty(low, high):
            return 0, 0
        first = self._index.bisect(low.value, _score, right=low.exclusive)
        stop = self._index.bisect(high.value, _score, right=not high.exclusive)
        return first, max(first, stop)

    def range_by_score(
        self,
        low: ScoreBound,
        high: ScoreBound,
        *,
        rev: bool = False,
        offset: int = 0,
        count: int = -1,
    ) -> list[tuple[bytes, float]]:
        """ZRANGEBYSCORE (ZREVRANGEBYSCORE with ``rev``) with LIMIT offset count.

        ``low``/``high`` are the range's ends whatever the direction (the
        command layer swaps ZREVRANGEBYSCORE's max/min). A negative offset
        gives nothing and a negative count means all, as in redis.
        """
        first, stop = self._score_span(low, high)
        return self._window(first, stop, rev, offset, count)

    def _window(
        self, first: int, stop: int, rev: bool, offset: int, count: int
    ) -> list[tuple[bytes, float]]:
        if offset < 0 or first >= stop:
            return []
        avail = stop - first - offset
        if avail <= 0:
            return []
        take = avail if count < 0 else min(count, avail)
        if take <= 0:
            return []
        if rev:
            end = stop - offset
            return [(m, s) for s, m in reversed(self._index.slice(end - take, end))]
        return [(m, s) for s, m in self._index.slice(first + offset, first + offset + take)]

    def count_by_score(self, low: ScoreBound, high: ScoreBound) -> int:
        """ZCOUNT."""
        first, stop = self._score_span(low, high)
        return stop - first

    def remove_range_by_score(self, low: ScoreBound, high: ScoreBound) -> int:
        """ZREMRANGEBYSCORE: how many members were removed."""
        first, stop = self._score_span(low, high)
        return self._delete_span(first, stop)

    def _delete_span(self, first: int, stop: int) -> int:
        for _, member in self._index.delete_slice(first, stop):
            del self._scores[member]
        return max(0, stop - first)

    def remove_range_by_rank(self, start: int, stop: int) -> int:
        """ZREMRANGEBYRANK (inclusive, negative indexes allowed)."""
        span = self._rank_span(start, stop)
        if span is None:
            return 0
        return self._delete_span(span[0], span[1] + 1)

    # --- lex ranges ----------------------------------------------------------

    def _lex_span(self, low: LexBound, high: LexBound) -> tuple[int, int]:
        """Global [first, stop) of members inside the lex range.

        Meaningful when all scores are equal (then the order is member order);
        otherwise the result is what a binary search on members gives, which
        redis documents as unspecified too.
        """
        if _lex_range_empty(low, high):
            return 0, 0
        n = len(self._scores)
        if low.infinity == -1:
            first = 0
        else:
            first = self._index.bisect(low.value, _member, right=low.exclusive)
        if high.infinity == 1:
            stop = n
        else:
            stop = self._index.bisect(high.value, _member, right=not high.exclusive)
        return first, max(first, stop)

    def range_by_lex(
        self,
        low: LexBound,
        high: LexBound,
        *,
        rev: bool = False,
        offset: int = 0,
        count: int = -1,
    ) -> list[bytes]:
        """ZRANGEBYLEX (ZREVRANGEBYLEX with ``rev``): members only."""
        first, stop = self._lex_span(low, high)
        return [m for m, _ in self._window(first, stop, rev, offset, count)]

    def count_by_lex(self, low: LexBound, high: LexBound) -> int:
        """ZLEXCOUNT."""
        first, stop = self._lex_span(low, high)
        return stop - first

    def remove_range_by_lex(self, low: LexBound, high: LexBound) -> int:
        """ZREMRANGEBYLEX."""
        first, stop = self._lex_span(low, high)
        return self._delete_span(first, stop)

    # --- pops ------------------------------------------------------------------

    def pop(self, count: int = 1, *, max: bool = False) -> list[tuple[bytes, float]]:
        """ZPOPMIN (ZPOPMAX with ``max``): remove and return up to ``count`` members."""
        n = len(self._scores)
        count = min(count, n)
        if count <= 0:
            return []
        if max:
            items = self._index.slice(n - count, n)[::-1]
            self._index.delete_slice(n - count, n)
        else:
            items = self._index.delete_slice(0, count)
        for _, member in items:
            del self._scores[member]
        return [(m, s) for s, m in items]
