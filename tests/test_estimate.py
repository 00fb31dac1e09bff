"""The auto method's COW estimate: decision boundaries on numbers, then real servers.

The model itself is validated against real forks by bench/cow_validate.py
(not a timed unit test).
"""

from __future__ import annotations

import math

import pytest

from rdbkit.backup.connection import Connection
from rdbkit.backup.estimate import (
    DEFAULT_PAGES_PER_WRITE,
    Estimate,
    estimate,
    estimate_from,
    keyspace_keys,
    page_size,
)

MB = 1 << 20
PAGE = 4096


def info(**fields) -> dict:
    base = {
        "used_memory": 100 * MB,
        "used_memory_rss": 110 * MB,
        "used_memory_dataset": 100 * MB,
        "maxmemory": 0,
        "total_system_memory": 0,
        "db0": "keys=1000,expires=0,avg_ttl=0",
    }
    base.update(fields)
    return {k: str(v) for k, v in base.items()}


def est(i: dict, rate: float, **kw) -> Estimate:
    kw.setdefault("page_bytes", PAGE)
    kw.setdefault("save_throughput_bytes_s", 100 * MB)  # 1 s save for 100 MB
    return estimate_from(i, rate, **kw)


def test_no_writes_no_cow_and_sync_when_memory_allows():
    e = est(info(maxmemory=1000 * MB), 0)
    assert e.cow_bytes == 0 and e.method == "sync"
    assert e.available_bytes == int(1000 * MB * 0.75) - 100 * MB
    assert any("sync" in r for r in e.reasons)


def test_model_is_pages_touched_with_repeats_counted_once():
    e = est(info(maxmemory=1000 * MB), 1000, pages_per_write=1)
    pages = 100 * MB // PAGE
    expected = pages * -math.expm1(-1000 / pages) * PAGE  # 1000 writes in a 1 s save
    assert e.cow_bytes == int(expected)
    assert 0.97 * 1000 * PAGE < e.cow_bytes <= 1000 * PAGE  # ≈ one page per write at low rates
    assert e.inputs["save_time_s"] == pytest.approx(1.0)


def test_model_saturates_at_used_memory():
    e = est(info(maxmemory=10_000 * MB), 10_000_000)
    assert 0.99 * 100 * MB <= e.cow_bytes <= 100 * MB


def test_boundary_between_sync_and_cooperative():
    # available = maxmemory × 0.75 − 100 MB; the model at 1 page/write is ≈ writes × 4 KiB
    cow = est(info(maxmemory=400 * MB), 5000, pages_per_write=1).cow_bytes
    fits = int((cow + 100 * MB) / 0.75) + 2
    assert est(info(maxmemory=fits), 5000, pages_per_write=1).method == "sync"
    e = est(info(maxmemory=fits - 2 * PAGE), 5000, pages_per_write=1)
    assert e.method == "cooperative" and e.cow_bytes > e.available_bytes
    assert any(r.startswith("cooperative: COW") for r in e.reasons)


def test_last_measured_cow_wins_when_larger():
    e = est(info(maxmemory=1000 * MB, rdb_last_cow_size=300 * MB), 10)
    assert e.cow_bytes == 300 * MB > e.inputs["model_cow_bytes"]
    assert e.available_bytes == 650 * MB and e.method == "sync"
    assert any("rdb_last_cow_size" in r for r in e.reasons)


def test_blend_is_the_max_of_model_and_measured():
    small = est(info(maxmemory=1000 * MB, rdb_last_cow_size=1 * MB), 20_000)
    assert small.cow_bytes == small.inputs["model_cow_bytes"] > 1 * MB
    big = est(info(maxmemory=1000 * MB, rdb_last_cow_size=700 * MB), 0)
    assert big.cow_bytes == 700 * MB
    assert big.method == "cooperative"  # 700 MB > 650 MB available
    cur = est(info(maxmemory=1000 * MB, current_cow_size=5 * MB), 0)
    assert cur.cow_bytes == 5 * MB and cur.method == "sync"


def test_maxmemory_zero_uses_system_memory_and_rss():
    e = est(info(total_system_memory=1000 * MB, used_memory_rss=200 * MB), 0)
    assert e.available_bytes == int(1000 * MB * 0.75) - 200 * MB
    assert any("total_system_memory" in r for r in e.reasons)


def test_unknown_memory_is_cooperative():
    e = est(info(), 0)
    assert e.available_bytes is None and e.method == "cooperative"


def test_over_the_limit_already_is_cooperative():
    e = est(info(maxmemory=120 * MB), 0)  # 90 MB allowed, 100 MB used: nothing available
    assert e.available_bytes < 0 and e.method == "cooperative"


def test_reserved_fraction():
    loose = est(info(maxmemory=1000 * MB), 0, reserved_fraction=0)
    assert loose.available_bytes == 900 * MB
    with pytest.raises(ValueError):
        est(info(maxmemory=1000 * MB), 0, reserved_fraction=1)


def test_save_time_sources():
    measured = estimate_from(info(rdb_last_bgsave_time_sec=4), 0, page_bytes=PAGE)
    assert measured.inputs["save_throughput_bytes_s"] == pytest.approx(100 * MB / 4)
    assert measured.inputs["save_time_s"] == pytest.approx(4.0)
    # a last save under MIN_MEASURED_SAVE_S (INFO rounds to whole seconds) is not trusted
    default = estimate_from(info(rdb_last_bgsave_time_sec=1, db0="keys=1000000"), 0, page_bytes=PAGE)
    assert "default model" in default.inputs["save_throughput_source"]
    assert default.inputs["save_time_s"] == pytest.approx(1.1 + 100 / 1024, rel=1e-6)
    given = estimate_from(info(rdb_last_bgsave_time_sec=9), 0, save_throughput_bytes_s=50 * MB)
    assert given.inputs["save_time_s"] == pytest.approx(2.0)


def test_more_writes_never_lower_the_estimate():
    last = -1
    for rate in (0, 10, 100, 1000, 10_000, 100_000, 1_000_000):
        cow = est(info(maxmemory=1000 * MB), rate).cow_bytes
        assert cow >= last
        last = cow


def test_defaults_and_helpers():
    assert DEFAULT_PAGES_PER_WRITE >= 1
    assert page_size() in (4096, 16384, 65536)
    assert keyspace_keys({"db0": "keys=3,expires=1,avg_ttl=0", "db9": "keys=4,expires=0", "dbx": "keys=9"}) == 7
    e = est(info(maxmemory=1000 * MB), 100)
    assert {"used_memory", "write_rate", "save_time_s", "page_size", "model_cow_bytes"} <= set(e.inputs)
    assert all(isinstance(r, str) and "\n" not in r for r in e.reasons)


@pytest.mark.parametrize("name", ["redis7", "valkey9"])
def test_estimate_against_a_real_server(name, request):
    server = request.getfixturevalue(name)
    with server.client() as c:
        c.flushall()
        for i in range(100):
            c.set(f"k:{i}", "v" * 100)
    with Connection("127.0.0.1", server.port) as conn:
        e = estimate(conn, sample_s=0.2)
    assert e.method == "sync"  # a few KB of data on a host with GBs free
    assert e.available_bytes > 0
    assert 0 <= e.cow_bytes < 64 * MB
    assert e.inputs["write_rate"] >= 0 and e.inputs["sample_s"] == 0.2
    assert e.inputs["used_memory"] > 0 and e.inputs["keys"] >= 100
    assert len(e.reasons) >= 4
