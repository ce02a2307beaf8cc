"""Turning a metric's buckets into one reading, and a reading into calls. Pure.

Azure Monitor publishes a minute's bucket 1–3 minutes late and the newest buckets are often
null or still filling. So: buckets newer than ``now - lag`` are ignored, a null bucket is
*unknown* (never zero), and a window with no known bucket is ``STALE`` (or ``MISSING`` when the
source returned no series at all). Nothing here guesses a value it did not see.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from scaler.core.types import MetricReading, MetricStatus

_INF = float("inf")

Bucket = tuple[float, float | None]
"""(bucket start, seconds since the epoch; value or ``None`` for an unknown bucket)."""


ABSURD = 1e6
"""No load the pools read (calls, calls per instance, percent) comes near this: a larger value is
a fault in the source, not a load."""


def is_valid_value(v: object) -> bool:
    """Whether a reported (non-null) bucket value can be a load: a number, finite, not negative,
    not absurd (> ``ABSURD``)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    return 0.0 <= v <= ABSURD  # NaN fails both comparisons


def screen_series(
    series: Sequence[tuple[str, Sequence[tuple[float, object]]]],
    *,
    now: float,
    window_seconds: float,
    lag_seconds: float,
    bucket_seconds: float = 60.0,
) -> tuple[list[list[Bucket]], str]:
    """Check every series (one per VM, or one for the whole pool) before anything is summed.

    One invalid value (see ``is_valid_value``) in any series inside the reading's window makes
    the whole reading unusable: returns ``([], detail)`` naming the series, the bucket and the
    value, and the caller reports ``MISSING`` (hold). A sum over ``[30, -25, 0]`` would otherwise
    read as 5 calls. Outside the window (older history) an invalid value is only an unknown
    bucket. Returns the series with those values as ``None`` and ``""`` when usable.
    """
    newest_complete = now - lag_seconds - bucket_seconds
    oldest = newest_complete - window_seconds + bucket_seconds
    clean: list[list[Bucket]] = []
    for name, points in series:
        out: list[Bucket] = []
        for t, v in points:
            if v is None:
                out.append((t, None))
            elif is_valid_value(v):
                out.append((t, float(v)))  # type: ignore[arg-type]  # checked to be a number
            elif oldest <= t <= newest_complete:
                label = f"series {name!r}" if name else "the series"
                at = datetime.fromtimestamp(t, UTC).isoformat(timespec="minutes")
                return [], f"invalid value {v!r} in {label} at {at} (not a number ≥ 0 and ≤ 1e6)"
            else:
                out.append((t, None))
        clean.append(out)
    return clean, ""


def merge_series(series: Iterable[Sequence[Bucket]]) -> list[Bucket]:
    """Sum several series (one per dimension value, e.g. per VM) bucket by bucket.

    A bucket is known when every series that has it reports a value; one null among them makes
    the sum unknown rather than an undercount.
    """
    totals: dict[float, float | None] = {}
    for points in series:
        for t, v in points:
            if t in totals:
                prev = totals[t]
                totals[t] = None if prev is None or v is None else prev + v
            else:
                totals[t] = v
    return sorted(totals.items())


def reduce_window(
    points: Sequence[Bucket] | None,
    *,
    now: float,
    window_seconds: float,
    lag_seconds: float,
    reduce: str = "max",
    bucket_seconds: float = 60.0,
    history_seconds: float = 0.0,
) -> MetricReading:
    """One reading from the complete buckets of ``[now - lag - window, now - lag)``.

    ``points is None`` means the source had no series at all (``MISSING``). Values that are not
    finite or are negative are treated as unknown.
    """
    if points is None:
        return MetricReading.missing("no time series")
    newest_complete = now - lag_seconds - bucket_seconds
    oldest = newest_complete - window_seconds + bucket_seconds
    oldest_history = newest_complete - history_seconds
    history: list[Bucket] = []
    keep_history = history.append if history_seconds else None
    known: list[float] = []
    put = known.append
    as_of = -_INF
    # this runs once per pool per tick of every backtest: keep the loop lean
    for t, v in points:
        if t > newest_complete:
            continue
        if v is None or not 0.0 <= v < _INF:  # unknown: null, negative, NaN or infinite
            if keep_history is not None and t > oldest_history:
                keep_history((t, None))
            continue
        if keep_history is not None and t > oldest_history:
            keep_history((t, v))
        if t < oldest:
            continue
        put(v)
        if t > as_of:
            as_of = t
    if not known:
        return MetricReading(
            MetricStatus.STALE, None, None, "no known bucket in window", tuple(history)
        )
    if reduce == "last":
        value = known[-1]
    elif reduce == "mean":
        value = sum(known) / len(known)
    else:
        value = max(known)
    return MetricReading(MetricStatus.OK, value, as_of, "", tuple(history))


def to_calls(
    reading: MetricReading, *, meaning: str, current: int, calls_per_instance: float
) -> MetricReading:
    """Convert a reading's value to concurrent calls for the pool (see ``MetricConfig.meaning``)."""
    if reading.calls is None or meaning == "calls":
        return reading
    if meaning == "calls_per_instance":
        factor = float(current)
    else:  # percent_of_capacity
        factor = current * calls_per_instance / 100.0
    history = reading.history
    return MetricReading(
        reading.status,
        reading.calls * factor,
        reading.as_of,
        reading.detail,
        tuple([(t, None if v is None else v * factor) for t, v in history]) if history else (),
        reading.by_instance,
    )
