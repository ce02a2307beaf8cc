"""The daemon's rolling load history (``ArrayHistory.put``): what a policy reads back after any
sequence of readings, late ones and gaps included, with and without a capacity."""

from __future__ import annotations

import math
from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.core.history import ArrayHistory

START = 1_800_000_000.0
STEP = 60.0

readings = st.lists(
    st.tuples(
        st.integers(min_value=-2, max_value=400),  # bucket (a negative one: before the start)
        st.floats(min_value=0.0, max_value=59.0),  # seconds into it
        st.one_of(st.none(), st.floats(min_value=0.0, max_value=1e4), st.integers(0, 500)),
    ),
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(readings, st.one_of(st.none(), st.integers(min_value=1, max_value=150)))
def test_history_reads_back_the_last_reading_of_every_bucket_it_keeps(
    puts: list[tuple[int, float, float | int | None]], capacity: int | None
) -> None:
    h = ArrayHistory(start=START, step_seconds=STEP, capacity=capacity, visible_until=START)
    last: dict[int, float | None] = {}  # bucket -> the last value put (None: unknown)
    newest = -1
    for bucket, into, value in puts:
        before = h.visible_until
        h.put(START + bucket * STEP + into, value)
        if bucket < 0:
            assert h.visible_until == before, "a reading before the start changed nothing"
            continue
        last[bucket] = None if value is None else float(value)
        newest = max(newest, bucket)
        # a policy sees every bucket up to the newest one put, never less than before
        assert h.visible_until >= max(before, START + (bucket + 1) * STEP)
        assert h.visible_until <= START + (newest + 1) * STEP
    if newest < 0:
        assert len(h) == 0
        return
    kept_from = round((h.start - START) / STEP)
    assert h.start + len(h) * STEP == START + (newest + 1) * STEP  # nothing beyond the newest
    if capacity is not None:
        # old buckets go in chunks: at most max(60, capacity / 16) beyond the capacity stay
        assert capacity <= len(h) or kept_from == 0
        assert len(h) <= capacity + max(60, capacity // 16)
    for bucket in range(kept_from, newest + 1):
        got = h.value_at(START + bucket * STEP)
        assert got == last.get(bucket), f"bucket {bucket}: {got!r}, put {last.get(bucket)!r}"


# -- the compact store: float32 while exact, doubles once a value is not ---------------------

counts = st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=2**24)), max_size=300)


@settings(max_examples=200, deadline=None)
@given(counts, st.integers(min_value=0, max_value=320), st.integers(min_value=0, max_value=320))
def test_a_compact_history_answers_as_the_list_of_counts_it_holds(
    values: list[int | None], a: int, b: int
) -> None:
    """Whole call counts (up to 2**24) and unknown minutes: kept at 4 bytes a bucket, read back
    exactly as the list, built at once or put minute by minute as the daemon does."""
    built = ArrayHistory(start=START, step_seconds=STEP, values=values)
    rolled = ArrayHistory(start=START, step_seconds=STEP, visible_until=START)
    for i, v in enumerate(values):
        if v is not None:  # the daemon puts what it read; a minute it missed stays a gap
            rolled.put(START + i * STEP + 7.0, v)
    expected: list[float | None] = [None if v is None else float(v) for v in values]
    assert built.bytes_per_bucket == 4 and rolled.bytes_per_bucket == 4
    lo, hi = min(a, b), max(a, b)
    window = START + lo * STEP, START + hi * STEP
    assert built.values(*window) == (expected + [None] * hi)[lo:hi]
    newest = max((i for i, v in enumerate(values) if v is not None), default=-1)
    assert rolled.values(*window) == (expected[: newest + 1] + [None] * hi)[lo:hi]
    for i, v in enumerate(expected):
        assert built.value_at(START + i * STEP) == v
        assert rolled.value_at(START + i * STEP + 59.0) == (v if i <= newest else None)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=False)), max_size=60))
def test_a_value_a_float32_cannot_hold_widens_the_store_and_reads_back_exactly(
    values: list[float | None],
) -> None:
    """A fractional average or a CPU proxy is not rounded: the store becomes doubles."""
    rolled = ArrayHistory(start=START, step_seconds=STEP, visible_until=START)
    for i, v in enumerate(values):
        rolled.put(START + i * STEP, v)
    built = ArrayHistory(start=START, step_seconds=STEP, values=values)
    for h in (rolled, built):
        assert [h.value_at(START + i * STEP) for i in range(len(values))] == values
    exact = all(v is None or float(array("f", [v])[0]) == v for v in values)
    assert built.bytes_per_bucket == (4 if exact else 8)
    assert rolled.bytes_per_bucket == (4 if exact else 8)


def test_widening_keeps_what_was_there_and_what_comes_after() -> None:
    h = ArrayHistory(start=START, step_seconds=STEP, capacity=120)
    for i in range(300):
        h.put(START + i * STEP, i % 7)
    assert h.bytes_per_bucket == 4
    h.put(START + 300 * STEP, 2.1)
    assert h.bytes_per_bucket == 8
    h.put(START + 301 * STEP, 3)
    first = round((h.start - START) / STEP)
    assert [h.value_at(START + i * STEP) for i in range(first, 302)] == [
        *(float(i % 7) for i in range(first, 300)),
        2.1,
        3.0,
    ]


def test_a_trace_column_of_doubles_is_read_in_place() -> None:
    """The backtest's trace columns (doubles) are adopted, not copied or narrowed."""
    column = array("d", [1.0, math.nan, 2.5])
    h = ArrayHistory(start=START, step_seconds=STEP, values=column)
    assert h.buffer()[1] is column and h.bytes_per_bucket == 8
    assert h.values(START, START + 3 * STEP) == [1.0, None, 2.5]


def test_the_predictive_policy_decides_the_same_on_the_compact_store() -> None:
    """The daemon's store (float32) and a store of doubles, fed the same whole call counts with
    the same gaps and the same capacity (old weeks dropped as the daemon drops them): every
    recommendation and note of the predictive policy is the same."""
    from policies.predictive import Predictive, PredictiveConfig
    from scaler.core import MetricReading, PoolLimits, PoolState
    from scaler.core.types import PolicyContext

    pool = PoolLimits("tc", 1, 50, 15.0, 4, "standardFSv2Family", "westeurope", boot_minutes=20)
    start = 1_788_739_200.0  # Monday 2026-09-07 00:00Z

    def calls(minute: int) -> int | None:
        if 9 * 1440 + 600 <= minute < 9 * 1440 + 700:
            return None  # a metric outage
        local = (minute + 60) % 1440
        busy = minute // 1440 % 7 < 5 and 8 * 60 <= local < 17 * 60
        return (120 if busy else 10) + (minute * 37 % 11)

    cap = 9 * 1440
    compact = ArrayHistory(start=start, capacity=cap)
    doubles = ArrayHistory(start=start, values=array("d"), capacity=cap)
    policies = [Predictive(PredictiveConfig(timezone="Europe/London")) for _ in range(2)]
    for minute in range(16 * 1440):
        value = calls(minute)
        if value is not None:
            for h in (compact, doubles):
                h.put(start + 60.0 * minute + 30.0, value)
        if minute >= 14 * 1440 and minute % 5 == 0:
            now = start + 60.0 * minute + 60.0
            answers = [
                p.recommend(
                    PolicyContext(now, 2, value, pool, MetricReading.ok(value or 0), PoolState(), h)
                )
                for p, h in zip(policies, (compact, doubles), strict=True)
            ]
            assert answers[0] == answers[1], minute
    assert compact.bytes_per_bucket == 4 and doubles.bytes_per_bucket == 8
    assert len(compact) < 16 * 1440  # old buckets were dropped along the way


def test_a_five_week_store_costs_what_the_docs_say() -> None:
    """``docs/benchmarks.md`` ("Memory per pool", pasted by ``bench/memory.py``): a pool of the
    recommended set keeps five weeks of minutes at 4 bytes each; refilled here as the bench
    fills it, one store allocates exactly the bytes the page gives, and traces what it says."""
    import re
    import sys
    import tracemalloc

    from bench import figures
    from bench.memory import filled, largest_allocation, loads, recommended
    from scaler.policyset import build_policies
    from scaler.tick import HISTORY_MINUTES, history_minutes

    block = figures.output_blocks(figures.BENCHMARKS.read_text(encoding="utf-8"))["memory-per-pool"]
    command = block.splitlines()[1]
    days = int(re.search(r"--days (\d+)", command)[1])  # type: ignore[index]
    rows = re.findall(
        r"^float32 \| (\d+) \| ([\d,]+) \| (\d) \| ([\d,]+) \| ([\d,]+) \|", block, re.M
    )
    assert {int(r[0]) for r in rows} == {200, 1000}, block
    (peak,) = re.findall(r"largest allocation ([\d,]+) B", block)

    pool, _ = recommended()
    capacity = history_minutes(build_policies(pool))  # type: ignore[arg-type]
    assert capacity == HISTORY_MINUTES == days * 1440  # five weeks
    series = loads(1, days + 7)[0]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = filled(series[: days * 1440], capacity)
        traced = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    allocated = sys.getsizeof(store.buffer()[1])
    for _, buckets, width, per_pool, traced_per_pool in rows:
        assert (len(store), store.bytes_per_bucket) == (int(buckets.replace(",", "")), int(width))
        assert allocated == int(per_pool.replace(",", ""))
        assert abs(traced - int(traced_per_pool.replace(",", ""))) <= 0.01 * traced
    assert store.bytes_per_bucket == 4 and allocated <= 1.05 * 4 * capacity
    largest = largest_allocation(series, capacity, days + 7)
    assert largest == int(peak.replace(",", "")) and largest <= 1.11 * 4 * capacity
