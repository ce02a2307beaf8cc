"""The daemon's rolling load history (``ArrayHistory.put``): what a policy reads back after any
sequence of readings, late ones and gaps included, with and without a capacity."""

from __future__ import annotations

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
