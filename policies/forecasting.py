"""Pure building blocks of the ``predictive`` policy's forecaster (no I/O, no clock, no randomness).

Each function answers one question the forecaster asks of the past, so each can be tested on
its own table:

* :func:`blend` — the recency-weighted value of the same minute in earlier weeks;
* :func:`without_outliers` — which of those weeks an unannounced surge distorted;
* :func:`day_outliers` — which whole days (a Christmas week, an all-day event) to leave out;
* :func:`growth_per_week` — week-over-week growth, robustly (a Theil–Sen-style median of the
  growth between every pair of weeks, each pair compared on the same days only);
* :func:`persistence` — how much of a deviation now is still there later (calls in progress);
* :class:`Tail` — the shape of the standardised forecast error, its quantiles and expected
  shortfall (the planned quantile follows from the unserved share an operator accepts);
* :class:`Calendar` — public holidays (the maintained ``holidays`` package) and explicit dates;
* :func:`utc_offset` — the seconds a time base is ahead of UTC at an instant.

Units: calls (concurrent calls per one-minute bucket), seconds since the epoch, instances.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, date, datetime, tzinfo
from statistics import NormalDist
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


def local_day(zone: tzinfo | None, t: float) -> tuple[int, int, int]:
    """(day ordinal, local hour, weekday Monday=0) of epoch second ``t`` in ``zone``."""
    local = datetime.fromtimestamp(t, zone if zone is not None else UTC)
    return local.toordinal(), local.hour, local.weekday()


def day_start(zone: tzinfo | None, ordinal: int) -> float:
    """Epoch second of local midnight starting day ``ordinal`` in ``zone``."""
    d = date.fromordinal(ordinal)
    return datetime(d.year, d.month, d.day, tzinfo=zone if zone is not None else UTC).timestamp()


# -- the predictive distribution ----------------------------------------------------------------

MEETING_LENGTHS: tuple[tuple[float, float], ...] = (
    (30.0, 0.35),
    (60.0, 0.55),
    (90.0, 0.05),
    (120.0, 0.05),
)
"""Booked Teams meeting lengths (minutes) and their shares: half-hour and hour meetings, a few
longer ones (the shape behind DESIGN.md's "average meeting ≈ 53 min")."""


def persistence(minutes: float, lengths: Sequence[tuple[float, float]] = MEETING_LENGTHS) -> float:
    """Share of the calls in progress now that are still in progress ``minutes`` later.

    A call in progress at a random moment is in a meeting picked in proportion to its length
    and has run a uniform part of it (the equilibrium residual life), so the share left after
    ``x`` minutes is ``Σ p·max(0, d − x) ÷ Σ p·d``: 57 % after 23 minutes, 8 % after an hour.
    A forecast that is short by some calls now is short by this share of them ``minutes``
    later: they are meetings that have not ended yet.
    """
    total = sum(p * d for d, p in lengths)
    if total <= 0.0:
        return 0.0
    return sum(p * max(0.0, d - minutes) for d, p in lengths) / total


NORMAL = NormalDist()

TAIL_LO = -6.0
"""Lowest standardised error the tail histogram resolves (below: the first bin)."""
TAIL_WIDTH = 0.125
"""Width of a tail histogram bin, in standard deviations."""
TAIL_BINS = 160
"""Bins of the tail histogram: ``TAIL_LO`` to ``TAIL_LO + TAIL_BINS × TAIL_WIDTH`` (= 14 σ)."""


def tail_bin(u: float) -> int:
    """The histogram bin of standardised error ``u`` (clamped to the first and last bins)."""
    k = int((u - TAIL_LO) / TAIL_WIDTH)
    return 0 if k < 0 else (TAIL_BINS - 1 if k >= TAIL_BINS else k)


def normal_shortfall(z: float) -> float:
    """``E[(U − z)⁺]`` for a standard normal ``U``: φ(z) − z·(1 − Φ(z))."""
    return NORMAL.pdf(z) - z * (1.0 - NORMAL.cdf(z))


class Tail:
    """The shape of the standardised forecast error ``u`` (error minus its hour's mean, over its
    hour's spread): a histogram of what was measured, pooled over every hour and weighted by
    each minute's spread in calls (so the tail is the one of the calls at stake, not of quiet
    nights' few), mixed with a standard normal of weight ``prior`` until measurements outweigh
    it.

    Why this form: each hour's own errors set its location and spread (there are enough of them
    for a mean and a standard deviation), but a 99.9 % quantile needs thousands of samples, and
    one hour has a few hundred whose tail is one bad day. The shape beyond a few standard
    deviations is shared by every hour once errors are standardised, so it is estimated from
    all of them together (a split-conformal score normalised by a local scale: Lei et al.,
    *Distribution-free predictive inference for regression*, 2018, §5.2), and the normal prior
    keeps the first days of a new pool from planning on a handful of samples.

    ``counts`` is read, not kept: the caller owns it (weights decay there).
    """

    __slots__ = ("_m0", "_m1", "_m2", "_prior", "_total")

    def __init__(self, counts: Sequence[float], prior: float) -> None:
        # Suffix sums over the bins above each bin: mass, first and second moments (centres).
        n = len(counts)
        m0 = [0.0] * (n + 1)
        m1 = [0.0] * (n + 1)
        m2 = [0.0] * (n + 1)
        for k in range(n - 1, -1, -1):
            c = counts[k]
            x = TAIL_LO + (k + 0.5) * TAIL_WIDTH
            m0[k] = m0[k + 1] + c
            m1[k] = m1[k + 1] + c * x
            m2[k] = m2[k + 1] + c * x * x
        self._m0, self._m1, self._m2 = m0, m1, m2
        self._total = m0[0]
        self._prior = prior

    @property
    def measured(self) -> float:
        """Weight of the measured errors (the prior's is ``prior``)."""
        return self._total

    def _above(self, z: float) -> int:
        """The first bin whose centre lies above ``z``."""
        k = math.ceil((z - TAIL_LO) / TAIL_WIDTH - 0.5)
        return 0 if k < 0 else (TAIL_BINS if k > TAIL_BINS else k)

    def _mix(self, measured: float, normal: float) -> float:
        w = self._total + self._prior
        if w <= 0.0:
            return normal
        return (max(0.0, measured) + self._prior * normal) / w

    def exceedance(self, z: float) -> float:
        """``P(u > z)``."""
        return self._mix(self._m0[self._above(z)], 1.0 - NORMAL.cdf(z))

    def shortfall(self, z: float) -> float:
        """``E[(u − z)⁺]``: the expected part of the error beyond ``z`` standard deviations."""
        k = self._above(z)
        return self._mix(self._m1[k] - z * self._m0[k], normal_shortfall(z))

    def shortfall2(self, z: float) -> float:
        """``E[((u − z)⁺)²] ÷ 2``, the integral of :meth:`shortfall` from ``z`` to infinity."""
        k = self._above(z)
        measured = (self._m2[k] - 2.0 * z * self._m1[k] + z * z * self._m0[k]) / 2.0
        return self._mix(measured, normal_shortfall2(z))

    def rounded_shortfall(self, z: float, slack: float) -> float:
        """Expected shortfall when the capacity planned at ``z`` is rounded up by a slack spread
        evenly over ``[0, slack)`` standard deviations (whole instances): the mean of
        ``shortfall(z + x)`` over that range."""
        at_z = self.shortfall(z)
        if slack <= 1e-6:
            return at_z
        # the mean of a decreasing function over [z, z + slack) is at most its value at z
        # (the difference quotient's rounding can put it a hair above)
        return min(at_z, (self.shortfall2(z) - self.shortfall2(z + slack)) / slack)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (bisection on :meth:`exceedance`)."""
        return bisect(lambda z: self.exceedance(z) - (1.0 - q))

    def for_shortfall(self, target: float, slack: float = 0.0) -> float:
        """The ``z`` whose expected shortfall (after rounding up by ``slack``, see
        :meth:`rounded_shortfall`) is ``target`` standard deviations."""
        return bisect(lambda z: self.rounded_shortfall(z, slack) - target)


def normal_shortfall2(z: float) -> float:
    """``E[((U − z)⁺)²] ÷ 2`` for a standard normal ``U``."""
    return ((1.0 + z * z) * (1.0 - NORMAL.cdf(z)) - z * NORMAL.pdf(z)) / 2.0


def bisect(f: Callable[[float], float], lo: float = -3.0, hi: float = 12.0) -> float:
    """The ``z`` in [lo, hi] where decreasing ``f`` crosses 0 (clamped to the ends)."""
    if f(hi) >= 0.0:
        return hi
    if f(lo) <= 0.0:
        return lo
    for _ in range(40):
        mid = (lo + hi) / 2.0
        if f(mid) > 0.0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0
