"""``reduce_window()``: what a pool's metric buckets amount to at a tick."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaler.core.metrics import Bucket, reduce_window
from scaler.core.types import MetricStatus

NOW = 10_000 * 60.0


def minutes(*values: float | None, end: float = NOW) -> list[Bucket]:
    """Buckets one minute apart, the last starting one minute before ``end``."""
    first = end - 60.0 * len(values)
    return [(first + 60.0 * i, v) for i, v in enumerate(values)]


def read(points: list[Bucket] | None, **kw: float | str) -> tuple[MetricStatus, float | None]:
    args: dict[str, float | str] = {"window_seconds": 300.0, "lag_seconds": 120.0} | kw
    r = reduce_window(points, now=NOW, **args)  # type: ignore[arg-type]
    return r.status, r.calls


@pytest.mark.parametrize(
    ("values", "reduce", "expected"),
    [
        # the newest two minutes are within the lag and not seen
        ((5, 9, 7, 3, 4, 50, 60), "max", 9),
        ((5, 9, 7, 3, 4, 50, 60), "mean", 28 / 5),
        ((5, 9, 7, 3, 4, 50, 60), "last", 4),
        # a bucket older than the window is not seen
        ((99, 5, 9, 7, 3, 4, 0, 0), "max", 9),
        # an unknown bucket is left out, never counted as zero
        ((5, None, 7, 3, 4, 0, 0), "mean", 19 / 4),
        ((5, math.nan, 7, -1, 4, 0, 0), "mean", 16 / 3),
        ((5, math.inf, 7, 3, 4, 0, 0), "max", 7),
        ((5, 9, 7, 3, None, 0, 0), "last", 3),
    ],
)
def test_reduces_the_complete_buckets_of_the_window(
    values: tuple[float | None, ...], reduce: str, expected: float
) -> None:
    status, calls = read(minutes(*values), reduce=reduce)
    assert status is MetricStatus.OK
    assert calls == pytest.approx(expected)


def test_no_known_bucket_is_stale_and_no_series_is_missing() -> None:
    assert read(minutes(None, math.nan, -3, None, None, 40, 40)) == (MetricStatus.STALE, None)
    assert read(None) == (MetricStatus.MISSING, None)
    assert read([]) == (MetricStatus.STALE, None)


def test_history_keeps_unknown_buckets_as_none() -> None:
    points = minutes(1, 2, None, math.nan, -1, 6, 7, 8)
    r = reduce_window(
        points, now=NOW, window_seconds=120.0, lag_seconds=60.0, history_seconds=300.0
    )
    assert [v for _, v in r.history] == [None, None, None, 6, 7]  # the last 5 minutes seen
    assert r.calls == 7
    assert r.as_of == points[-2][0]


values = st.one_of(
    st.none(),
    st.floats(min_value=-5, max_value=500),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)


@given(
    column=st.lists(values, max_size=30),
    window=st.integers(1, 10),
    lag=st.integers(0, 5),
    reduce=st.sampled_from(["max", "mean", "last"]),
)
def test_matches_the_definition(
    column: list[float | None], window: int, lag: int, reduce: str
) -> None:
    points = minutes(*column)
    r = reduce_window(
        points, now=NOW, window_seconds=60.0 * window, lag_seconds=60.0 * lag, reduce=reduce
    )
    newest = NOW - 60.0 * lag - 60.0
    seen = [
        (t, v)
        for t, v in points
        if newest - 60.0 * (window - 1) <= t <= newest
        and v is not None
        and v >= 0
        and math.isfinite(v)
    ]
    if not seen:
        assert r.status is MetricStatus.STALE and r.calls is None
        return
    known = [v for _, v in seen]
    want = {"max": max(known), "mean": sum(known) / len(known), "last": known[-1]}[reduce]
    assert r.status is MetricStatus.OK
    assert r.calls == pytest.approx(want)
    assert r.as_of == seen[-1][0]
