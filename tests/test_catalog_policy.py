"""Catalog policy rules at their boundaries, with an injected clock (LocalStore only:
pure logic): retention 0..35 days, the daily window (>= 60 minutes, may cross
midnight), 20 manual snapshots per source in any rolling 24 hours, and the
schedule pass that takes automatic snapshots in the window and prunes.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from stores import ACCOUNT, Clock, keys_under, rdb_bytes

from rdbkit.catalog import (
    MANUAL_QUOTA,
    MAX_RETENTION_DAYS,
    Capture,
    Catalog,
    Policy,
    ShardInput,
    SourceInfo,
    run_schedule,
)
from rdbkit.catalog.policy import next_manual_allowed, parse_window, source_id
from rdbkit.errors import CatalogError, PolicyError, QuotaExceededError, TruncatedError
from rdbkit.storage import LocalStore

SRC = "redis://cache-1.example:6379/0"
DATA = rdb_bytes(3)
T0 = datetime(2030, 3, 10, 8, 0, tzinfo=timezone.utc)
US = timedelta(microseconds=1)


def capture(url: str = SRC, data: bytes = DATA) -> Capture:
    return Capture(source=SourceInfo(url=url), shards=[ShardInput(data)])


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def cat(tmp_path, clock) -> Catalog:
    return Catalog(LocalStore(tmp_path / "store"), account=ACCOUNT, clock=clock)


# -- retention ------------------------------------------------------------------


@pytest.mark.parametrize("days", [0, 1, 35])
def test_retention_in_range_is_accepted(cat, days):
    assert MAX_RETENTION_DAYS == 35
    assert cat.set_policy(SRC, retention_days=days).retention_days == days
    assert cat.policy(SRC).retention_days == days
    assert cat.policy(SRC).automatic is (days > 0)


@pytest.mark.parametrize("days", [36, -1, 100, True, 1.5, "7"])
def test_retention_out_of_range_is_a_policy_error(cat, days):
    cat.set_policy(SRC, retention_days=5)
    with pytest.raises(PolicyError, match="retention"):
        cat.set_policy(SRC, retention_days=days)
    with pytest.raises(PolicyError):
        Policy(SRC, retention_days=days)
    assert cat.policy(SRC).retention_days == 5  # unchanged


def test_retention_zero_turns_automatic_snapshots_off(cat, clock, tmp_path):
    cat.set_policy(SRC, retention_days=0, window="08:00-09:00")
    with pytest.raises(PolicyError, match="retention 0"):
        cat.create("auto", capture(), kind="automatic")
    report = run_schedule(cat, lambda url: capture(url))
    assert report.taken == [] and report.skipped == [(SRC, "automatic snapshots off (retention 0)")]
    assert cat.list() == [] and keys_under(cat.store, "data/") == []
    cat.create("manual", capture())  # manual ones are not affected


@pytest.mark.parametrize("days", [1, 35])
def test_automatic_snapshot_expires_exactly_after_retention(cat, clock, days):
    cat.set_policy(SRC, retention_days=days)
    auto = cat.create("auto", capture(), kind="automatic")
    assert auto.expires_at == T0 + timedelta(days=days)
    cat.set_policy(SRC, retention_days=35 if days == 1 else 1)  # later changes do not move it
    assert cat.describe("auto").expires_at == T0 + timedelta(days=days)
    clock.set(T0 + timedelta(days=days) - US)
    assert cat.expired() == [] and cat.prune() == [] and cat.exists("auto")
    clock.set(T0 + timedelta(days=days))
    assert [m.name for m in cat.prune()] == ["auto"] and not cat.exists("auto")
    assert keys_under(cat.store, "data/") == []


def test_only_automatic_snapshots_expire(cat, clock):
    cat.set_policy(SRC, retention_days=1)
    cat.create("auto", capture(), kind="automatic")
    cat.create("manual", capture())
    cat.copy("auto", "copied")
    for kind in ("manual", "final", "copy"):
        if kind != "manual":
            cat.create(f"made-{kind}", capture(), kind=kind)
    assert {m.name: m.expires_at for m in cat.list() if m.name != "auto"} == dict.fromkeys(
        ["manual", "copied", "made-final", "made-copy"]
    )
    clock.advance(days=10_000)
    assert [m.name for m in cat.prune()] == ["auto"]
    assert sorted(m.name for m in cat.list()) == ["copied", "made-copy", "made-final", "manual"]
    with pytest.raises(CatalogError, match="unknown snapshot kind"):
        cat.create("odd", capture(), kind="weekly")


# -- the window ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "window, start, length",
    [
        ("05:00-06:00", 300, 60),
        ("23:30-00:30", 1410, 60),  # crosses midnight
        ("23:00-00:00", 1380, 60),
        ("22:00-04:00", 1320, 360),
        ("00:00-23:59", 0, 1439),
    ],
)
def test_windows_of_at_least_60_minutes_are_accepted(cat, window, start, length):
    assert parse_window(window) == (start, length)
    assert cat.set_policy(SRC, window=window).window == window


@pytest.mark.parametrize(
    "window",
    [
        "05:00-05:59",
        "23:30-00:29",
        "05:00-05:00",
        "5:00-6:00",
        "05:00-24:00",
        "05:00",
        "",
        "05:00 - 06:00",
    ],
)
def test_short_or_malformed_windows_are_a_policy_error(cat, window):
    with pytest.raises(PolicyError, match="window"):
        cat.set_policy(SRC, window=window)
    assert cat.policy(SRC).window == "05:00-06:00"  # the default, unchanged


def test_window_containing_edges():
    p = Policy(SRC, window="23:30-00:30")
    day = datetime(2030, 3, 10, tzinfo=timezone.utc)
    start = day + timedelta(hours=23, minutes=30)
    assert p.window_containing(start - US) is None
    assert p.window_containing(start) == (start, start + timedelta(hours=1))
    assert p.window_containing(start + timedelta(minutes=45)) == (start, start + timedelta(hours=1))
    assert p.window_containing(start + timedelta(hours=1) - US) == (
        start,
        start + timedelta(hours=1),
    )
    assert p.window_containing(start + timedelta(hours=1)) is None


# -- the manual quota -----------------------------------------------------------------


def test_21st_manual_snapshot_in_24h_is_refused_until_oldest_plus_24h(cat, clock):
    assert MANUAL_QUOTA == 20
    for i in range(20):
        clock.set(T0 + timedelta(minutes=i))
        cat.create(f"m{i:02d}", capture())
    clock.set(T0 + timedelta(minutes=20))
    with pytest.raises(QuotaExceededError) as info:
        cat.create("m20", capture())
    assert info.value.next_allowed_at == T0 + timedelta(hours=24)
    assert "20" in str(info.value) and "2030-03-11T08:00:00" in str(info.value)
    assert not cat.exists("m20") and len(keys_under(cat.store, "data/")) == 20

    # Other sources, and other kinds of the same source, are not limited by it.
    cat.create("other-source", capture("redis://other:6379"))
    cat.set_policy(SRC, retention_days=1)
    cat.create("auto", capture(), kind="automatic")
    cat.copy("m00", "m00-copy")

    # Deleting does not give quota back.
    cat.delete("m19")
    with pytest.raises(QuotaExceededError):
        cat.create("m20", capture())

    clock.set(T0 + timedelta(hours=24) - US)
    with pytest.raises(QuotaExceededError) as info:
        cat.create("m20", capture())
    assert info.value.next_allowed_at == T0 + timedelta(hours=24)

    clock.set(T0 + timedelta(hours=24))  # the oldest is now out of the rolling window
    cat.create("m20", capture())
    with pytest.raises(QuotaExceededError) as info:
        cat.create("m21", capture())
    assert info.value.next_allowed_at == T0 + timedelta(hours=24, minutes=1)
    assert cat.manual_quota_next(SRC) == T0 + timedelta(hours=24, minutes=1)
    assert cat.manual_quota_next("redis://other:6379") is None


def test_quota_counts_across_midnight(cat, clock):
    late = datetime(2030, 3, 10, 23, 50, tzinfo=timezone.utc)
    for i in range(20):
        clock.set(late + timedelta(seconds=30 * i))  # 23:50:00 .. 23:59:30
        cat.create(f"m{i:02d}", capture())
    clock.set(datetime(2030, 3, 11, 0, 5, tzinfo=timezone.utc))
    with pytest.raises(QuotaExceededError) as info:
        cat.create("after-midnight", capture())
    assert info.value.next_allowed_at == late + timedelta(hours=24)


def test_next_manual_allowed_rule():
    now = T0
    assert next_manual_allowed([], now) is None
    times = [now - timedelta(hours=23, minutes=59 - i) for i in range(20)]
    assert next_manual_allowed(times[:19], now) is None
    assert next_manual_allowed(times, now) == times[0] + timedelta(hours=24)
    assert next_manual_allowed(times, times[0] + timedelta(hours=24)) is None
    old = [now - timedelta(hours=24)] * 30  # exactly 24 h ago is outside (now - 24 h, now]
    assert next_manual_allowed(old, now) is None


# -- the schedule -------------------------------------------------------------------


def at(day: int, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2030, 3, day, hour, minute, second, micro, tzinfo=timezone.utc)


def test_schedule_takes_one_snapshot_per_window_occurrence(cat, clock):
    cat.set_policy(SRC, retention_days=1, window="05:00-06:00")
    calls = []

    def cap(url):
        calls.append(clock.now)
        return capture(url)

    def run(when):
        clock.set(when)
        return run_schedule(cat, cap)

    r = run(at(10, 4, 59, 59, 999_999))
    assert r.taken == [] and r.skipped == [(SRC, "outside its window 05:00-06:00 UTC")]
    r = run(at(10, 5))  # the window's first instant
    (m,) = r.taken
    assert (m.kind, m.created_at, m.expires_at) == ("automatic", at(10, 5), at(11, 5))
    assert m.name == f"automatic.0-{source_id(SRC)[:8]}-2030-03-10-05-00"
    r = run(at(10, 5, 30))
    assert r.taken == [] and r.skipped == [(SRC, "already taken in this window")]
    r = run(at(10, 5, 59, 59, 999_999))
    assert r.taken == []
    r = run(at(10, 6))  # the window's end is outside it
    assert r.taken == [] and "outside" in r.skipped[0][1]
    assert calls == [at(10, 5)]

    # The next day's window takes the next one; the first expires exactly then and is pruned.
    r = run(at(11, 5))
    assert [x.created_at for x in r.taken] == [at(11, 5)]
    assert [x.name for x in r.pruned] == [m.name]
    assert [x.name for x in cat.list(kind="automatic")] == [r.taken[0].name]
    assert [e.action for e in cat.events.read() if e.action in ("create", "prune")] == [
        "create",
        "create",
        "prune",
    ]


def test_schedule_window_crossing_midnight(cat, clock):
    cat.set_policy(SRC, retention_days=3, window="23:30-00:30")
    cap = capture
    clock.set(at(10, 23, 40))
    assert len(run_schedule(cat, cap).taken) == 1
    clock.set(at(11, 0, 10))  # the same occurrence, after midnight
    r = run_schedule(cat, cap)
    assert r.taken == [] and r.skipped == [(SRC, "already taken in this window")]
    clock.set(at(11, 0, 30))
    assert run_schedule(cat, cap).taken == []
    clock.set(at(11, 23, 30))  # the next occurrence
    assert len(run_schedule(cat, cap).taken) == 1
    # An occurrence first seen after midnight still counts as one.
    clock.set(at(13, 0, 29, 59))
    assert [m.created_at for m in run_schedule(cat, cap).taken] == [at(13, 0, 29, 59)]
    assert len(cat.list(kind="automatic")) == 3


def test_schedule_over_several_sources_and_failures(cat, clock):
    a, b, c = "file:///srv/a/dump.rdb", "file:///srv/b/dump.rdb", "redis://down:6379"
    for url in (a, b, c):
        cat.set_policy(url, retention_days=2, window="05:00-06:00")
    cat.set_policy("redis://off:6379", retention_days=0)

    def cap(url):
        if url == c:
            return capture(url, DATA[:-3])  # a broken RDB
        return capture(url)

    clock.set(at(10, 5, 15))
    r = run_schedule(cat, cap)
    assert sorted(m.source.url for m in r.taken) == sorted([a, b]), r.failed  # same label "dump"
    assert len({m.name for m in r.taken}) == 2
    assert [u for u, _ in r.failed] == [c]
    assert (("redis://off:6379", "automatic snapshots off (retention 0)")) in r.skipped
    assert len(keys_under(cat.store, "data/")) == 2  # the broken capture left nothing
    only = run_schedule(cat, cap, sources=[a])
    assert only.taken == [] and only.skipped == [(a, "already taken in this window")]


def test_schedule_skips_retired_sources(cat, clock):
    cat.set_policy(SRC, retention_days=1, window="05:00-06:00")
    cat.retire(SRC)
    clock.set(at(10, 5, 30))
    r = run_schedule(cat, lambda url: capture(url))
    assert r.taken == [] and r.skipped == [(SRC, "retired")]
    with pytest.raises(CatalogError, match="retired"):
        cat.set_policy(SRC, retention_days=3)


def test_retire_with_broken_final_capture_changes_nothing(cat, clock):
    cat.set_policy(SRC, retention_days=2)
    cat.create("auto", capture(), kind="automatic")
    with pytest.raises(TruncatedError):
        cat.retire(SRC, final_snapshot="final", capture=lambda url: capture(url, DATA[:-1]))
    assert not cat.policy(SRC).retired and cat.exists("auto") and not cat.exists("final")
    final, deleted = cat.retire(SRC, final_snapshot="final", capture=lambda url: capture(url))
    assert final.kind == "final" and [m.name for m in deleted] == ["auto"]
