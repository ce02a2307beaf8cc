"""Pure building blocks of the ``predictive`` policy's forecaster (no I/O, no clock, no randomness).

Each function answers one question the forecaster asks of the past, so each can be tested on
its own table:

* :func:`blend` — the recency-weighted value of the same minute in earlier weeks;
* :func:`without_outliers` — which of those weeks an unannounced surge distorted;
* :func:`day_outliers` — which whole days (a Christmas week, an all-day event) to leave out;
* :func:`growth_per_week` — week-over-week growth, robustly (a Theil–Sen-style median of the
  growth between every pair of weeks, each pair compared on the same days only);
* :func:`upper_quantile` and :func:`plan_instances` — headroom from measured forecast error;
* :class:`Calendar` — public holidays (the maintained ``holidays`` package) and explicit dates;
* :func:`utc_offset` — the seconds a time base is ahead of UTC at an instant.

Units: calls (concurrent calls per one-minute bucket), seconds since the epoch, instances.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, tzinfo
from typing import Literal, Protocol

Blend = Literal["weighted", "max", "median", "mean"]


def blend(values: Sequence[float], weights: Sequence[float], how: Blend) -> float:
    """The weeks' values combined; -1 when there are none (calls are never negative).

    ``weighted`` is the weighted mean (recent weeks count more); ``max`` covers the busiest week;
    ``median`` and ``mean`` ignore the weights.
    """
    if not values:
        return -1.0
    if how == "weighted":
        total = sum(weights)
        if total <= 0.0:
            return sum(values) / len(values)
        return sum(v * w for v, w in zip(values, weights, strict=True)) / total
    if how == "max":
        return max(values)
    if how == "mean":
        return sum(values) / len(values)
    return median(values)


def median(values: Sequence[float]) -> float:
    """The middle value (mean of the middle two); ``values`` must not be empty."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2.0


def without_outliers(
    values: list[float], weights: list[float], ratio: float, smooth: float
) -> tuple[list[float], list[float]]:
    """``values`` (and their weights) without those above ``ratio × (median + smooth)``.

    ``smooth`` is one instance of calls, so a quiet minute's 3 calls against 1 is no outlier. With
    fewer than three values there is no majority to judge by and nothing is left out.
    """
    if len(values) < 3:
        return values, weights
    limit = ratio * (median(values) + smooth)
    if max(values) <= limit:
        return values, weights
    kept = [(v, w) for v, w in zip(values, weights, strict=True) if v <= limit]
    return [v for v, _ in kept], [w for _, w in kept]


def day_outliers(
    totals: Sequence[float | None], ratio: float, smooth: float, low_ratio: float | None = None
) -> list[bool]:
    """Which of the same weekday's daily totals (call-minutes) an event distorted.

    The reference is the second-largest known total: robust to one surge (the largest) and to
    up to half the days being quiet (a Christmas week or two among four). A day is an outlier
    when it is above ``ratio × (reference + smooth)`` or below ``reference ÷ low_ratio − smooth``
    (``low_ratio`` defaults to ``ratio``; ``smooth``: an instance-hour of calls, so a quiet
    Sunday is never judged). ``None`` (unknown) is never an outlier; with fewer than three known
    days nothing is.
    """
    known = sorted(t for t in totals if t is not None)
    if len(known) < 3:
        return [False] * len(totals)
    ref = known[-2]
    hi = ratio * (ref + smooth)
    lo = ref / (ratio if low_ratio is None else low_ratio) - smooth
    return [t is not None and (t > hi or t < lo) for t in totals]


def growth_per_week(weeks: Sequence[Sequence[float | None]], *, low: float, high: float) -> float:
    """Week-over-week growth factor, bounded to [``low``, ``high``].

    ``weeks[k][d]`` is the total of day ``d`` (0..6) of the week ``k + 1`` weeks back (newest
    first); ``None`` for a day that must not count (a holiday, an outlier, incomplete data). For
    every pair of weeks the ratio of their totals over the days known in *both* (matching
    windows) gives a per-week growth ``ratio ** (1 / weeks apart)``; the answer is the median of
    those (Theil–Sen on weekly levels: one odd week moves it little). No comparable pair: 1.
    """
    rates: list[float] = []
    for i in range(len(weeks)):
        for j in range(i + 1, len(weeks)):
            newer = older = 0.0
            for a, b in zip(weeks[i], weeks[j], strict=False):
                if a is not None and b is not None:
                    newer += a
                    older += b
            if newer > 0.0 and older > 0.0:
                rates.append((newer / older) ** (1.0 / (j - i)))
    if not rates:
        return 1.0
    return min(high, max(low, median(rates)))


def upper_quantile(values: Collection[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of ``values`` for q ≥ 0.5 (the ``k``-th largest,
    ``k = ceil((1 - q) × n)``, at least 1); ``values`` must not be empty."""
    k = max(1, math.ceil(round((1.0 - q) * len(values), 9)))
    return heapq.nlargest(k, values)[-1]


def plan_instances(
    peak: float, error_z: float, *, calls_per_instance: float, utilization: float
) -> int:
    """Instances for ``peak`` calls plus headroom for the measured error.

    ``error_z`` is the high quantile of the normalised forecast error ``(actual − forecast) ÷
    √(forecast + calls_per_instance)`` (calls are counts, so their spread grows with the square
    root of the level: a quiet hour gets little headroom); negative values count as 0. The
    result rises with ``peak`` and with ``error_z``.
    """
    headroom = max(0.0, error_z) * math.sqrt(max(0.0, peak) + calls_per_instance)
    return math.ceil(round((max(0.0, peak) + headroom) / (calls_per_instance * utilization), 9))


def utc_offset(zone: tzinfo | None, t: float) -> float:
    """Seconds ``zone`` is ahead of UTC at epoch second ``t`` (``None``: UTC)."""
    if zone is None:
        return 0.0
    delta = datetime.fromtimestamp(t, zone).utcoffset()
    return delta.total_seconds() if delta is not None else 0.0


class _HolidayLookup(Protocol):
    def __contains__(self, key: object) -> bool: ...


class Calendar:
    """Days off: a country's (and region's) public holidays plus explicit dates.

    Public holidays come from the maintained ``holidays`` package
    (https://holidays.readthedocs.io/, ``country_holidays(country, subdiv=...)``); ``dates`` add
    whole days off and ``half_days`` afternoons off (from ``half_day_from`` local hour on).
    """

    def __init__(
        self,
        *,
        country: str | None = None,
        subdivision: str | None = None,
        dates: Collection[date] = (),
        half_days: Collection[date] = (),
        half_day_from: int = 12,
    ) -> None:
        self._public: _HolidayLookup | None = None
        if country is not None:
            import holidays  # a pure data package; imported only when a country is configured

            self._public = holidays.country_holidays(country, subdiv=subdivision)
        self._dates = frozenset(dates)
        self._half = frozenset(half_days)
        self._from = half_day_from
        self._cache: dict[date, bool] = {}

    def is_off(self, day: date, hour: int) -> bool:
        """Whether local ``hour`` (0..23) of ``day`` is a holiday."""
        if day in self._half and hour >= self._from:
            return True
        full = self._cache.get(day)
        if full is None:
            full = day in self._dates or (self._public is not None and day in self._public)
            self._cache[day] = full
        return full


def check_country(country: str, subdivision: str | None) -> None:
    """Raise ``ValueError`` naming the problem when ``holidays`` does not know the country or
    its subdivision."""
    import holidays

    try:
        holidays.country_holidays(country, subdiv=subdivision)
    except (NotImplementedError, ValueError, KeyError) as exc:
        where = country if subdivision is None else f"{country}/{subdivision}"
        raise ValueError(f"unknown holiday country or subdivision {where!r}: {exc}") from exc


EPOCH_DAY = date(1970, 1, 1).toordinal()


def local_day(zone: tzinfo | None, t: float) -> tuple[int, int, int]:
    """(day ordinal, local hour, weekday Monday=0) of epoch second ``t`` in ``zone``."""
    local = datetime.fromtimestamp(t, zone if zone is not None else UTC)
    return local.toordinal(), local.hour, local.weekday()


def day_start(zone: tzinfo | None, ordinal: int) -> float:
    """Epoch second of local midnight starting day ``ordinal`` in ``zone``."""
    d = date.fromordinal(ordinal)
    return datetime(d.year, d.month, d.day, tzinfo=zone if zone is not None else UTC).timestamp()
