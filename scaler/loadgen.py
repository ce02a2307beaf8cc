"""Deterministic synthetic call load for Teams Connector pools.

Load is modelled as individual Teams meetings rather than a smooth curve, because the
autoscaler has to cope with what real CVI load does: meetings start on the hour and half
hour, so concurrent calls jump at :00 and :30 (most of all at 09:00 local), then fall away
as meetings end. Each meeting holds one concurrent call for its duration.

The shape follows the pool's local business day (DST-correct through ``zoneinfo``): little
before 07:00, a sharp rise at 09:00, a mid-morning peak, a lunch dip, a second afternoon
hump and a quiet evening. Tuesday to Thursday are busiest, Monday slightly lower, Friday
clearly lower; weekends and public holidays are near zero.

Everything is drawn from ``random.Random`` instances seeded from (seed, pool, local date),
so a given day of a given pool is identical whatever window it is generated in.

Scenario knobs (all off by default, so the bundled traces do not change): ``regions`` makes one
pool serve users in several time zones (follow-the-sun); ``weekday_factors`` another weekly
shape (a pool whose busiest day is not midweek); ``weekly_growth`` compound growth from
``growth_from``; ``level_steps`` a lasting change of the whole load from a date on (a new
customer onboarded); ``day_factors`` a quieter or busier date (the weeks around Christmas);
``half_days`` a half-day holiday (an ordinary morning, a holiday afternoon from 12:00 local).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import accumulate
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "MEAN_MEETING_MINUTES",
    "WEEKDAY_FACTORS",
    "Gap",
    "MeetingModel",
    "PoolProfile",
    "Region",
    "Spike",
    "generate",
]

# Relative meeting-start intensity per local half-hour slot; index 0 is 00:00, 18 is 09:00.
_SLOT_WEIGHTS: tuple[float, ...] = (
    0.010, 0.008, 0.006, 0.005, 0.005, 0.005,  # 00:00-02:30
    0.005, 0.005, 0.006, 0.008, 0.010, 0.015,  # 03:00-05:30
    0.025, 0.035, 0.080, 0.100, 0.300, 0.200,  # 06:00-08:30
    1.000, 0.600, 0.850, 0.500, 0.650, 0.400,  # 09:00-11:30
    0.300, 0.220, 0.500, 0.380, 0.650, 0.420,  # 12:00-14:30
    0.600, 0.380, 0.450, 0.280, 0.180, 0.100,  # 15:00-17:30
    0.070, 0.050, 0.040, 0.030, 0.025, 0.020,  # 18:00-20:30
    0.018, 0.015, 0.013, 0.012, 0.011, 0.010,  # 21:00-23:30
)  # fmt: skip

# Demand multiplier per local weekday (Monday first) and on a public holiday.
_WEEKDAY_FACTOR: tuple[float, ...] = (0.90, 1.00, 1.00, 0.97, 0.70, 0.04, 0.03)
_HOLIDAY_FACTOR = 0.03
WEEKDAY_FACTORS = _WEEKDAY_FACTOR
_AFTERNOON_SLOT = 24  # 12:00 local: a half-day holiday's afternoon starts here

# Share of calls that are ad-hoc (start anywhere in the half hour) rather than scheduled.
_ADHOC_SHARE = 0.12

# Minutes after the slot time that a scheduled meeting's call actually connects.
_JITTER: tuple[tuple[int, float], ...] = (
    (-2, 0.04), (-1, 0.08), (0, 0.30), (1, 0.22), (2, 0.14),
    (3, 0.09), (4, 0.06), (5, 0.04), (6, 0.02), (7, 0.01),
)  # fmt: skip

# Booked meeting length (minutes) and how many minutes early (-) or late (+) it really ends.
_NOMINAL: tuple[tuple[int, float], ...] = ((30, 0.35), (60, 0.55), (90, 0.05), (120, 0.05))
_OVERRUN: tuple[tuple[int, float], ...] = (
    (-5, 0.05), (-4, 0.06), (-3, 0.09), (-2, 0.13), (-1, 0.17),
    (0, 0.22), (1, 0.14), (2, 0.08), (3, 0.06),
)  # fmt: skip

# Day-to-day variation of a pool's whole-day demand (relative standard deviation).
_DAY_SPREAD = 0.05


def _mean(dist: Sequence[tuple[int, float]]) -> float:
    return sum(v * p for v, p in dist) / sum(p for _, p in dist)


MEAN_MEETING_MINUTES: float = _mean(_NOMINAL) + _mean(_OVERRUN)
"""Mean call duration in minutes (about 53) implied by the duration model."""


@dataclass(frozen=True)
class Region:
    """Users of a pool in one time zone: ``share`` of the pool's ``peak_calls`` (their own
    business day's peak, not necessarily at the same moment as the other regions')."""

    timezone: str
    share: float


@dataclass(frozen=True)
class PoolProfile:
    """One Teams Connector pool's demand.

    ``peak_calls`` is the expected number of concurrent calls at the busiest minute of a
    typical Wednesday (around 10:00 local); actual days vary by a few percent either way.
    ``holidays`` are local dates with near-zero demand. ``seed`` picks the random sequence.
    ``timezone`` is the users' zone (the business day's clock), whatever zone the pool's
    config assumes. The other fields are scenario knobs (module docstring); dates are local
    dates of the users' zone (of each region's, with ``regions``).
    """

    name: str
    timezone: str
    peak_calls: float
    holidays: tuple[date, ...] = ()
    seed: int = 0
    regions: tuple[Region, ...] = ()
    """Users in several zones (``timezone`` is then only the pool's nominal zone)."""
    weekday_factors: tuple[float, ...] | None = None
    """Demand multiplier per local weekday, Monday first (default ``WEEKDAY_FACTORS``)."""
    weekly_growth: float = 0.0
    """Compound growth per week (0.077 ≈ +45 % over five weeks), 1× on ``growth_from``."""
    growth_from: date | None = None
    level_steps: tuple[tuple[date, float], ...] = ()
    """(from local date, multiplier): the load is multiplied from that date on."""
    day_factors: tuple[tuple[date, float], ...] = ()
    """(local date, multiplier) for single days."""
    half_days: tuple[date, ...] = ()
    """Half-day holidays: the afternoon (from 12:00 local) is a holiday."""


@dataclass(frozen=True)
class Spike:
    """An unannounced surge: demand for ``pool`` is multiplied by ``factor``.

    Applies to minutes in [start, start + minutes); ``start`` is UTC (naive means UTC).
    """

    pool: str
    start: datetime
    minutes: int
    factor: float = 3.0


@dataclass(frozen=True)
class Gap:
    """A metric outage: ``calls`` is None for ``pool`` in [start, start + minutes).

    Demand carries on underneath; only the observation is missing.
    """

    pool: str
    start: datetime
    minutes: int


def generate(
    profiles: Sequence[PoolProfile],
    start: datetime,
    days: int,
    *,
    step_minutes: int = 1,
    spikes: Sequence[Spike] = (),
    gaps: Sequence[Gap] = (),
) -> Iterator[tuple[datetime, str, int | None]]:
    """Yield ``(timestamp, pool, calls)`` rows covering ``days`` days from ``start``.

    Timestamps are tz-aware UTC, ``step_minutes`` apart, in order; within a timestamp the
    pools come in profile order. ``calls`` is the instantaneous number of concurrent calls
    (an int >= 0), or None inside a :class:`Gap`. ``start`` must fall on a whole minute; a
    naive ``start`` is taken as UTC. Arguments are checked here, before the first row.
    """
    start = _as_utc(start)
    if start.second or start.microsecond:
        raise ValueError(f"start must be on a whole minute, got {start.isoformat()}")
    if days < 0:
        raise ValueError(f"days must be >= 0, got {days}")
    if step_minutes < 1:
        raise ValueError(f"step_minutes must be >= 1, got {step_minutes}")
    names = [p.name for p in profiles]
    if len(set(names)) != len(names):
        raise ValueError(f"pool names must be unique, got {names}")
    zones = {p.name: _zone(p) for p in profiles}
    for p in profiles:
        if not math.isfinite(p.peak_calls) or p.peak_calls < 0:
            raise ValueError(f"pool {p.name!r}: peak_calls must be >= 0, got {p.peak_calls}")
        _check_knobs(p)
    events: list[Spike | Gap] = [*spikes, *gaps]
    for event in events:
        if event.pool not in zones:
            known = ", ".join(names) or "none"
            raise ValueError(
                f"{type(event).__name__} for unknown pool {event.pool!r} (pools: {known})"
            )
        if event.minutes < 0:
            raise ValueError(f"{type(event).__name__} minutes must be >= 0, got {event.minutes}")
    for spike in spikes:
        if not math.isfinite(spike.factor) or spike.factor < 0:
            raise ValueError(f"Spike factor must be >= 0, got {spike.factor}")
    return _rows(profiles, zones, start, days, step_minutes, spikes, gaps)


def _rows(
    profiles: Sequence[PoolProfile],
    zones: dict[str, ZoneInfo],
    start: datetime,
    days: int,
    step_minutes: int,
    spikes: Sequence[Spike],
    gaps: Sequence[Gap],
) -> Iterator[tuple[datetime, str, int | None]]:
    total = days * 1440
    series: list[list[int | None]] = []
    for profile in profiles:
        calls: list[int | None] = list(_concurrency(profile, zones[profile.name], start, total))
        for spike in spikes:
            if spike.pool == profile.name:
                for i in _minute_range(spike.start, spike.minutes, start, total):
                    value = calls[i]
                    if value is not None:
                        calls[i] = round(value * spike.factor)
        for gap in gaps:
            if gap.pool == profile.name:
                for i in _minute_range(gap.start, gap.minutes, start, total):
                    calls[i] = None
        series.append(calls)
    names = [p.name for p in profiles]
    for i in range(0, total, step_minutes):
        ts = start + timedelta(minutes=i)
        for name, calls in zip(names, series, strict=True):
            yield ts, name, calls[i]


def _as_utc(value: datetime) -> datetime:
    """Return ``value`` in UTC, treating a naive datetime as UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _zone(profile: PoolProfile) -> ZoneInfo:
    try:
        return ZoneInfo(profile.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"pool {profile.name!r}: unknown timezone {profile.timezone!r}") from exc


def _minute_range(at: datetime, minutes: int, start: datetime, total: int) -> range:
    """Indices of the window's minutes that fall in [at, at + minutes), clipped to the window."""
    offset = (_as_utc(at) - start).total_seconds() / 60
    first = max(math.ceil(offset), 0)
    last = min(math.ceil(offset + minutes), total)
    return range(first, max(first, last))


def _check_knobs(p: PoolProfile) -> None:
    for region in p.regions:
        try:
            ZoneInfo(region.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"pool {p.name!r}: unknown region timezone {region.timezone!r}"
            ) from exc
        if not math.isfinite(region.share) or region.share < 0:
            raise ValueError(f"pool {p.name!r}: region share must be >= 0, got {region.share}")
    if p.weekday_factors is not None and (
        len(p.weekday_factors) != 7 or any(not math.isfinite(f) or f < 0 for f in p.weekday_factors)
    ):
        raise ValueError(f"pool {p.name!r}: weekday_factors needs 7 factors >= 0")
    if not math.isfinite(p.weekly_growth) or p.weekly_growth <= -1:
        raise ValueError(f"pool {p.name!r}: weekly_growth must be > -1, got {p.weekly_growth}")
    if p.weekly_growth and p.growth_from is None:
        raise ValueError(f"pool {p.name!r}: weekly_growth needs growth_from")
    for _, f in (*p.level_steps, *p.day_factors):
        if not math.isfinite(f) or f < 0:
            raise ValueError(f"pool {p.name!r}: factors must be >= 0, got {f}")


def _regions(profile: PoolProfile, tz: ZoneInfo) -> list[tuple[ZoneInfo, float, str]]:
    """``(zone, peak calls, seed salt)`` per region: one in the profile's own zone ``tz``, or
    the regions it lists (each its share of the peak, seeded by its zone)."""
    if not profile.regions:
        return [(tz, profile.peak_calls, "")]
    return [
        (ZoneInfo(r.timezone), profile.peak_calls * r.share, f"/{r.timezone}")
        for r in profile.regions
    ]


def _concurrency(profile: PoolProfile, tz: ZoneInfo, start: datetime, total: int) -> list[int]:
    """Concurrent calls at each minute of the window: a running sum of meeting starts/ends."""
    w0 = int(start.timestamp()) // 60
    diff = [0] * (total + 1)
    holidays = set(profile.holidays)
    regions = _regions(profile, tz)
    for zone, peak, salt in regions:
        scale = peak / _unit_peak()
        # Meetings can outlast midnight by a couple of hours, so start a local day early.
        day = (start - timedelta(days=1)).astimezone(zone).date()
        last_day = (start + timedelta(minutes=total)).astimezone(zone).date()
        while day <= last_day:
            for begin, length in _day_meetings(profile, zone, day, scale, holidays, salt):
                a = max(begin - w0, 0)
                b = min(begin + length - w0, total)
                if a < b:
                    diff[a] += 1
                    diff[b] -= 1
            day += timedelta(days=1)
    return list(accumulate(diff[:total]))


def _day_level(profile: PoolProfile, day: date) -> float:
    """The scenario knobs' multiplier for a local date (1 without any)."""
    level = 1.0
    if profile.weekly_growth and profile.growth_from is not None:
        level *= (1.0 + profile.weekly_growth) ** ((day - profile.growth_from).days / 7.0)
    for since, f in profile.level_steps:
        if day >= since:
            level *= f
    for on, f in profile.day_factors:
        if day == on:
            level *= f
    return level


def _day_meetings(
    profile: PoolProfile,
    tz: ZoneInfo,
    day: date,
    scale: float,
    holidays: set[date],
    salt: str = "",
) -> Iterator[tuple[int, int]]:
    """Meetings starting on local ``day``, as (start epoch minute, duration minutes)."""
    rng = random.Random(f"{profile.seed}/{profile.name}{salt}/{day.isoformat()}")
    weekly = profile.weekday_factors or _WEEKDAY_FACTOR
    normal = weekly[day.weekday()]
    factor = _HOLIDAY_FACTOR if day in holidays else normal
    spread = max(0.5, rng.gauss(1.0, _DAY_SPREAD))
    factor *= spread
    level = _day_level(profile, day)
    factor *= level
    # a half-day holiday: the afternoon's slots at the holiday's level
    afternoon = factor
    if day in profile.half_days and day not in holidays:
        afternoon = _HOLIDAY_FACTOR * spread * level
    jitter, jitter_cum = _cumulative(_JITTER)
    nominal, nominal_cum = _cumulative(_NOMINAL)
    overrun, overrun_cum = _cumulative(_OVERRUN)
    for slot, weight in enumerate(_SLOT_WEIGHTS):
        local = datetime(day.year, day.month, day.day, slot // 2, 30 * (slot % 2), tzinfo=tz)
        at = int(local.timestamp()) // 60
        lam = scale * weight * (factor if slot < _AFTERNOON_SLOT else afternoon)
        scheduled = _poisson(rng, lam * (1 - _ADHOC_SHARE))
        adhoc = _poisson(rng, lam * _ADHOC_SHARE)
        n = scheduled + adhoc
        if not n:
            continue
        offsets = rng.choices(jitter, cum_weights=jitter_cum, k=scheduled)
        offsets += [rng.randrange(30) for _ in range(adhoc)]
        booked = rng.choices(nominal, cum_weights=nominal_cum, k=n)
        ends = rng.choices(overrun, cum_weights=overrun_cum, k=n)
        for off, dur, end in zip(offsets, booked, ends, strict=True):
            yield at + off, dur + end


@dataclass(frozen=True)
class MeetingModel:
    """What the generator knows of one pool's load over a window (for the backtest's ideal
    online reference, ``scaler.backtest.ideal``).

    ``origin`` is the epoch minute of index 0 of every series (a day before the window, so the
    meetings in progress when it starts are known); ``rates[i]`` is the expected number of
    calls that connect in minute ``origin + i`` (every slot's Poisson mean, the day's level
    included, spread over its connect offsets); ``starts[i]`` and ``lengths`` list the meetings
    that did start (begin minute index, minutes); ``length_pmf`` is the law of a meeting's
    length (booked length plus overrun)."""

    origin: int
    rates: tuple[float, ...]
    starts: tuple[int, ...]
    lengths: tuple[int, ...]
    length_pmf: tuple[tuple[int, float], ...]


def meeting_model(profile: PoolProfile, start: datetime, minutes: int) -> MeetingModel:
    """The rates and meetings behind ``generate``'s calls of ``profile`` over ``minutes``
    minutes from ``start`` (the same random draws: the same meetings as the trace)."""
    start = _as_utc(start)
    tz = _zone(profile)
    _check_knobs(profile)
    origin = int(start.timestamp()) // 60 - 1440
    total = minutes + 1440
    rates = [0.0] * total
    starts: list[int] = []
    lengths: list[int] = []
    holidays = set(profile.holidays)
    regions = _regions(profile, tz)
    jitter_total = sum(p for _, p in _JITTER)
    for zone, peak, salt in regions:
        scale = peak / _unit_peak()
        day = (start - timedelta(days=2)).astimezone(zone).date()
        last_day = (start + timedelta(minutes=minutes)).astimezone(zone).date()
        while day <= last_day:
            for at, lam in _day_rates(profile, zone, day, scale, holidays, salt):
                for off, p in _JITTER:
                    i = at + off - origin
                    if 0 <= i < total:
                        rates[i] += lam * (1 - _ADHOC_SHARE) * p / jitter_total
                for off in range(30):
                    i = at + off - origin
                    if 0 <= i < total:
                        rates[i] += lam * _ADHOC_SHARE / 30
            for begin, length in _day_meetings(profile, zone, day, scale, holidays, salt):
                if begin + length > origin and begin < origin + total:
                    starts.append(begin - origin)
                    lengths.append(length)
            day += timedelta(days=1)
    pmf: dict[int, float] = {}
    n_total = sum(p for _, p in _NOMINAL)
    o_total = sum(p for _, p in _OVERRUN)
    for n, pn in _NOMINAL:
        for o, po in _OVERRUN:
            pmf[n + o] = pmf.get(n + o, 0.0) + pn * po / (n_total * o_total)
    return MeetingModel(
        origin=origin,
        rates=tuple(rates),
        starts=tuple(starts),
        lengths=tuple(lengths),
        length_pmf=tuple(sorted(pmf.items())),
    )


def _day_rates(
    profile: PoolProfile,
    tz: ZoneInfo,
    day: date,
    scale: float,
    holidays: set[date],
    salt: str = "",
) -> Iterator[tuple[int, float]]:
    """Per half-hour slot of local ``day``: (epoch minute, Poisson mean of its meetings), drawn
    as ``_day_meetings`` draws them (the day's level is its first draw)."""
    rng = random.Random(f"{profile.seed}/{profile.name}{salt}/{day.isoformat()}")
    weekly = profile.weekday_factors or _WEEKDAY_FACTOR
    factor = _HOLIDAY_FACTOR if day in holidays else weekly[day.weekday()]
    spread = max(0.5, rng.gauss(1.0, _DAY_SPREAD))
    factor *= spread
    level = _day_level(profile, day)
    factor *= level
    afternoon = factor
    if day in profile.half_days and day not in holidays:
        afternoon = _HOLIDAY_FACTOR * spread * level
    for slot, weight in enumerate(_SLOT_WEIGHTS):
        local = datetime(day.year, day.month, day.day, slot // 2, 30 * (slot % 2), tzinfo=tz)
        at = int(local.timestamp()) // 60
        yield at, scale * weight * (factor if slot < _AFTERNOON_SLOT else afternoon)


@cache
def _cumulative(dist: tuple[tuple[int, float], ...]) -> tuple[list[int], list[float]]:
    return [v for v, _ in dist], list(accumulate(p for _, p in dist))


def _poisson(rng: random.Random, lam: float) -> int:
    """Poisson sample: exact (Knuth) for small means, normal approximation above 40."""
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k = 0
    p = rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


@cache
def _unit_peak() -> float:
    """Expected busiest-minute concurrency of a Wednesday when every slot weight is taken
    as the expected number of arrivals; ``peak_calls`` divided by this gives the scale."""
    # P(call is connected tau minutes after its slot time), summed over offsets and lengths.
    offsets: dict[int, float] = {}
    jitter_total = sum(p for _, p in _JITTER)
    for off, p in _JITTER:
        offsets[off] = offsets.get(off, 0.0) + (1 - _ADHOC_SHARE) * p / jitter_total
    for off in range(30):
        offsets[off] = offsets.get(off, 0.0) + _ADHOC_SHARE / 30
    lengths: dict[int, float] = {}
    n_total = sum(p for _, p in _NOMINAL)
    o_total = sum(p for _, p in _OVERRUN)
    for n, pn in _NOMINAL:
        for o, po in _OVERRUN:
            lengths[n + o] = lengths.get(n + o, 0.0) + pn * po / (n_total * o_total)
    lo = min(offsets)
    hi = max(offsets) + max(lengths)
    kernel = [0.0] * (hi - lo + 1)
    for off, p_off in offsets.items():
        for length, p_len in lengths.items():
            for tau in range(off, off + length):
                kernel[tau - lo] += p_off * p_len
    # Two identical weekdays back to back (Tuesday and Wednesday both have factor 1).
    expected = [0.0] * (2 * 1440)
    for k, weight in enumerate(_SLOT_WEIGHTS * 2):
        at = 30 * k
        for i, p in enumerate(kernel):
            m = at + lo + i
            if 0 <= m < len(expected):
                expected[m] += weight * p
    return max(expected[1440:])
