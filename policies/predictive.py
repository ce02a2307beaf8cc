"""Predictive: scale out ahead of load that earlier weeks say is coming, with measured headroom.

A Teams Connector instance takes up to 20 minutes to boot and meetings start on the hour, so a
policy that reacts to the 09:00 step is 20 minutes late every morning. This one forecasts the
load over the next ``boot_minutes + margin_minutes`` and asks now for what that load will need.

The forecast is a seasonal one (Hyndman & Athanasopoulos, *Forecasting: Principles and
Practice*, §5.2 "seasonal naïve", extended with a trend, weights and outlier handling); the pure
pieces live in :mod:`policies.forecasting`:

1. **time base found from the data**: "the same minute last week" depends on whose clock the
   users live by. Each candidate time base (UTC, the pool's ``timezone``, and ``time_bases``:
   by default one zone per common daylight-saving rule — EU, US, southern Australia) gives its
   own seasonal forecast (``time_bases = []``: the configured zone alone, as before); they
   differ only in the weeks around a DST change. Each forecast is
   scored against what then happened (predict the last days from the weeks before them, per
   local hour of the day, errors decaying with a 14-day half-life); the forecast is the highest
   of the time bases not worse than the best by more than an instance-hour of call-minutes.
   So across a DST change both alignments are kept (the busier of the two) until the data says
   which holds, and a pool serving several regions (follow-the-sun) picks per hour of the day
   the alignment of the region that is awake then (a mixture). ``timezone`` is a hint: it sets
   the local day (holidays, day fits, error slots) and is one candidate among the others;
2. **seasonal value**: the same local minute of each of the last ``weeks`` weeks, scaled by the
   estimated growth to today and blended (``weighted``: each week ``recency_decay`` times the
   weight of the week after it; ``max``, ``median`` and ``mean`` as before). Left out: weeks
   whose day was a holiday (``holidays``), days that an event distorted as a whole (total beyond
   ``day_outlier_ratio`` of the same weekday's median, either way: a Christmas week does not
   teach January), and a week's minute above ``outlier_ratio × (median + one instance)``
   (an unannounced surge is not replayed);
3. **trend**: week-over-week growth from the daily totals of the last ``weeks`` weeks (median of
   the growth between every pair of weeks over the days both have; holidays and outlier days
   left out), bounded to [``growth_min``, ``growth_max``] per week and applied per week back;
4. **holidays**: a holiday (or a half day's afternoon) is planned like the same hours of the
   last Sundays; the first working day after it is planned from the normal days before it;
5. **level**: the ratio of the load seen over the last ``recent_minutes`` to the forecast of
   those minutes, smoothed by one instance of calls and bounded to [``adjust_min``,
   ``adjust_max``]: a busier-than-usual day lifts the forecast; with ``recent_days`` set, so
   does the last day(s) against their own forecast (a step in the base load lifts the next days
   before the weeks behind the forecast show it);
6. **headroom from measured error** (``headroom = "error-quantile"``, the default): for every
   minute the policy records how far the load went above the peak it had planned for that minute
   one boot time earlier (the lead time of its decisions: boot + metric lag + tick), normalised by
   ``√(forecast + calls_per_instance)``, per local hour of the day over the last ``error_days``.
   It plans ``peak + q × √(peak + calls_per_instance)`` calls, ``q`` the ``error_quantile`` of that
   hour's errors, at ``plan_utilization`` of ``calls_per_instance``: quiet hours get little
   headroom, volatile ramps more. Minutes more than ``outlier_ratio`` above the plan (an
   unannounced event) are not counted. Until an hour has ``min_error_days`` of errors, and with
   ``headroom = "utilization"``, it plans ``peak ÷ (calls_per_instance × target_utilization)``
   (``single_week_utilization`` while one week of history is all it has), as before.

It only ever adds to the reactive answer: the result is never below what target tracking would
recommend from the current reading (same ``target_utilization``). With less than
``min_history_weeks`` of seasonal history it *is* target tracking. With an unusable metric it still
recommends the forecast (a floor, which the core never uses to scale in).

Speed: a backtest calls this ~400 000 times. Every bucket's seasonal value is computed once, when
it enters the horizon, and kept; fits (growth, weights, outlier days) are made once per local day,
error quantiles at most every ``refit_minutes`` per hour of the day; errors and time-base scores
are updated once per bucket as it becomes visible. A call then reads about ``horizon`` cached
numbers. The caches are keyed to the history object and bounded, so behaviour stays a pure
function of the inputs (a fresh instance first replays the last ``error_days`` of history).
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import dataclass
from datetime import date, tzinfo
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from policies.forecasting import (
    Blend,
    Calendar,
    blend,
    check_country,
    day_outliers,
    day_start,
    growth_per_week,
    local_day,
    plan_instances,
    upper_quantile,
    utc_offset,
    without_outliers,
)
from scaler.core.history import ArrayHistory, LoadHistory
from scaler.core.types import PolicyContext, PoolLimits, Recommendation

WEEK_SECONDS = 7 * 86400.0
DAY_SECONDS = 86400.0


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


class HolidayConfig(BaseModel):
    """``holidays = {country = "GB", subdivision = "ENG", dates = [...], half_days = [...]}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str | None = None
    """ISO 3166 code whose public holidays count (the ``holidays`` package); empty: none."""
    subdivision: str | None = None
    """Region of ``country`` (e.g. ``ENG``, ``CA``, ``BY``)."""
    dates: tuple[date, ...] = ()
    """Further whole days off (company shutdowns)."""
    half_days: tuple[date, ...] = ()
    """Days whose afternoon (from ``half_day_from`` on) is off (e.g. Christmas Eve)."""
    half_day_from: int = Field(default=12, ge=0, le=23)
    """Local hour from which a half day is off."""

    @model_validator(mode="after")
    def _country(self) -> HolidayConfig:
        if self.country is not None:
            check_country(self.country, self.subdivision)
        elif self.subdivision is not None:
            raise ValueError("subdivision needs country")
        return self


class PredictiveConfig(BaseModel):
    """``[[pools.policies]] type = "predictive"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_utilization: float = Field(default=0.8, gt=0.0, le=1.0)
    """Share of ``calls_per_instance`` for the reactive floor and the utilisation headroom."""
    boot_minutes: float | None = Field(default=None, ge=0.0, le=240.0)
    """Look-ahead before the margin; empty: the pool's ``boot_minutes``."""
    margin_minutes: float = Field(default=10.0, ge=0.0, le=240.0)
    """Extra look-ahead beyond the boot time (meetings that start a little early)."""
    weeks: int = Field(default=4, ge=1, le=5)
    """Seasonal weeks blended (the daemon keeps 5 weeks of history)."""
    blend: Blend = "weighted"
    """``weighted`` (recent weeks more), ``max`` (the busiest week), ``median``, ``mean``."""
    recency_decay: float = Field(default=0.75, gt=0.0, le=1.0)
    """``weighted`` blend: weight of a week relative to the week after it."""
    outlier_ratio: float | None = Field(default=1.5, gt=1.0, le=100.0)
    """Leave out a week's minute above this many times the weeks' median (+ one instance of
    calls), and do not learn headroom from minutes this far above the plan; empty: keep all."""
    day_outlier_ratio: float | None = Field(default=1.5, gt=1.0, le=100.0)
    """Leave out a whole day whose total is above this factor of the same weekday's reference
    (the second-largest of the weeks, + an instance-hour); empty: keep every day."""
    day_low_ratio: float = Field(default=1.25, gt=1.0, le=100.0)
    """…and a day below the reference ÷ this factor (− an instance-hour): a quiet week between
    the holidays does not teach January."""
    growth_min: float = Field(default=0.95, gt=0.0, le=1.0)
    """Lowest week-over-week growth factor extrapolated (1: never a decline)."""
    growth_max: float = Field(default=1.25, ge=1.0, le=3.0)
    """Highest week-over-week growth factor extrapolated (1: no growth)."""
    single_week_utilization: float | None = Field(default=None, gt=0.0, le=1.0)
    """``target_utilization`` (and at most ``plan_utilization``) for a forecast that rests on one
    week alone; empty: the same."""
    min_history_weeks: int = Field(default=1, ge=1, le=5)
    """Below this many weeks of history at the horizon, act as target tracking."""
    recent_minutes: int = Field(default=30, ge=0, le=720)
    """Window of the level adjustment (0: none)."""
    recent_days: float = Field(default=0.0, ge=0.0, le=7.0)
    """Also lift the forecast by the last this many days against their own forecast (0: no)."""
    adjust_min: float = Field(default=1.0, gt=0.0, le=1.0)
    """Lowest level factor; 1 (the default) never lowers the seasonal forecast."""
    adjust_max: float = Field(default=1.5, ge=1.0, le=10.0)
    """Highest level factor of the level adjustment."""
    timezone: str | None = None
    """IANA zone of the pool's users as the operator believes: the local day for holidays, fits
    and error slots, and one candidate time base; empty: UTC."""
    time_bases: tuple[str, ...] = ("UTC", "Europe/London", "America/New_York", "Australia/Sydney")
    """Candidate time bases besides ``timezone`` (IANA zones; one per daylight-saving rule is
    enough). Empty: ``timezone`` alone (or UTC), as before time bases were found from the data."""
    headroom: Literal["error-quantile", "utilization"] = "error-quantile"
    """``error-quantile``: headroom from the measured forecast error; ``utilization``: plan the
    forecast at ``target_utilization`` (the behaviour before error-quantile headroom)."""
    error_quantile: float = Field(default=0.995, ge=0.5, lt=1.0)
    """Quantile of the hour's normalised forecast error to plan for."""
    error_days: int = Field(default=14, ge=1, le=35)
    """Days of forecast errors kept per hour of the day."""
    min_error_days: float = Field(default=3.0, ge=0.0, le=35.0)
    """Days of errors an hour needs before its quantile is trusted (until then: utilisation)."""
    plan_utilization: float = Field(default=1.0, gt=0.0, le=1.0)
    """Share of ``calls_per_instance`` the forecast plus error headroom is planned at."""
    refit_minutes: int = Field(default=60, ge=1, le=1440)
    """How often an hour's error quantile is recomputed."""
    holidays: HolidayConfig | None = None
    """``{country, subdivision, dates, half_days, half_day_from = 12}``: public holidays from the
    ``holidays`` package plus your own days."""

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str | None) -> str | None:
        if v is not None:
            _zone(v)
        return v

    @field_validator("time_bases")
    @classmethod
    def _time_bases(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            _zone(name)
        return v

    @model_validator(mode="after")
    def _weeks(self) -> PredictiveConfig:
        if self.min_history_weeks > self.weeks:
            raise ValueError(
                f"min_history_weeks ({self.min_history_weeks}) must be <= weeks ({self.weeks})"
            )
        if self.min_error_days > self.error_days:
            raise ValueError(
                f"min_error_days ({self.min_error_days}) must be <= error_days ({self.error_days})"
            )
        return self


@dataclass(frozen=True, slots=True)
class _DayFit:
    """How one local day (or half day) is forecast: per week back, the seconds back to its
    source, the source's weight (0: left out) and the growth factor to today."""

    backs: tuple[float, ...]
    weights: tuple[float, ...]
    growth: tuple[float, ...]
    rate: float
    """Estimated growth per week."""


_Groups = tuple[tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...], tuple[int, ...]], ...]
"""Time bases grouped by where their sources lie: (buckets back, weights, growth factors,
indices of the bases) over the weeks that count."""

_DEFAULT_POOL = PoolLimits("forecast", 0, 1, 15.0, 1, "", "")


class Predictive:
    """Seasonal forecast over the boot horizon with measured headroom, never below reactive."""

    name: ClassVar[str] = "predictive"
    Config: ClassVar[type[PredictiveConfig]] = PredictiveConfig

    _FRESH = 2
    """The newest visible buckets are re-read every call: a late metric may still revise them."""
    _HALF_LIFE_DAYS = 14.0
    """Half-life of the time bases' error scores."""

    def __init__(self, config: PredictiveConfig | None = None) -> None:
        self.config = cfg = config or PredictiveConfig()
        self._hint: tzinfo | None = ZoneInfo(cfg.timezone) if cfg.timezone else None
        seen: list[str] = []
        for n in (cfg.timezone or "UTC", *cfg.time_bases):
            if n not in seen:
                seen.append(n)
        self._bases: tuple[tzinfo | None, ...] = tuple(
            None if n == "UTC" else ZoneInfo(n) for n in seen
        )
        hol = cfg.holidays
        self._calendar = (
            None
            if hol is None
            else Calendar(
                country=hol.country,
                subdivision=hol.subdivision,
                dates=hol.dates,
                half_days=hol.half_days,
                half_day_from=hol.half_day_from,
            )
        )
        self._half_from = hol.half_day_from if hol is not None else 12
        self._blocks: dict[int, tuple[int, int, bool]] = {}
        self._groups: dict[tuple[int, int, bool], _Groups] = {}
        self._totals: dict[int, tuple[float, float]] = {}
        self._fits: dict[tuple[int, bool], _DayFit] = {}
        self._plans: dict[int, tuple[int, _Groups]] = {}
        self._outlier = cfg.outlier_ratio
        self._weighted = cfg.blend == "weighted"
        self._how = cfg.blend
        self._smooth = 0.0  # one instance of calls
        self._pool: PoolLimits | None = None
        self._boot_b = 0
        self._margin_b = 0
        self._recent_b = 0
        self._recent_days_b = 0
        self._reset(None, 60.0, 0)

    def _reset(self, owner: LoadHistory | None, step: float, base: int) -> None:
        cfg = self.config
        self._owner = owner
        self._step = step
        day_b = round(DAY_SECONDS / step)
        # The settled past as read once from the history (-1: unknown), from ``_abase`` on:
        # every source of a forecast lies at least a week back, so it is read from here.
        self._reach = (7 * cfg.weeks + 7) * day_b
        self._abase = base - self._reach
        self._act = array("d")
        # Per bucket from ``_base`` on: the seasonal forecast (-1: unknown), the weeks behind it,
        # the time bases' own forecasts where they differ, the level at the tick there, and the
        # local hour (the slot of errors and time-base scores).
        self._base = base
        self._sea: list[float] = []
        self._cnt: list[int] = []
        self._cand: list[tuple[float, ...] | None] = []
        self._lev: list[float] = []
        self._plans_made: list[float] = []  # peak × level planned at a tick there, -2: none
        self._slot: list[int] = []
        self._lev_last = base - 1
        self._lev_value = 1.0
        # Prefix sums, over settled buckets from ``_base`` on, of actual and seasonal calls and
        # of the number of buckets where both are known (for the level adjustment).
        self._pa: list[float] = [0.0]
        self._ps: list[float] = [0.0]
        self._pn: list[int] = [0]
        # What was learnt from the visible past: errors per local hour, time-base scores.
        self._done = base
        per_slot = max(1, round(cfg.error_days * 3600.0 / step))
        self._errors: dict[int, deque[float]] = {s: deque(maxlen=per_slot) for s in range(24)}
        self._quant: dict[int, tuple[int, float | None]] = {}
        self._scores: dict[int, tuple[int, list[float]]] = {}
        self._totals.clear()
        self._fits.clear()
        self._groups.clear()
        self._plans.clear()

    # -- public forecast --------------------------------------------------------------------------

    def forecast(
        self, *, history: LoadHistory, at: float, now: float, pool: PoolLimits | None = None
    ) -> float | None:
        """The forecast load (calls) for the minute holding ``at``, as made at ``now``.

        ``history`` must be cut as it was visible at ``now`` (``visible_until`` = now − metric
        lag); ``pool`` gives ``boot_minutes`` and ``calls_per_instance`` (default: 20 and 15).
        ``None`` when no earlier week covers ``at``. The seasonal value times the level seen at
        ``now``, before headroom; calls in time order reuse the caches.
        """
        limits = pool or _DEFAULT_POOL
        _, _, last, recent = self._prepare(history, now, limits)
        b = math.floor(at / self._step)
        k = b - self._base
        value = self._sea[k] if 0 <= k < len(self._sea) else self._seasonal(b)[0]
        if value < 0.0:
            return None
        return value * self._level(limits, last, recent)

    # -- caches ---------------------------------------------------------------------------------

    def _prepare(self, h: LoadHistory, now: float, pool: PoolLimits) -> tuple[int, int, int, int]:
        """Bring the caches up to ``now``; returns (first, end, last, recent) in buckets."""
        step = h.step_seconds
        if pool is not self._pool or step != self._step or h is not self._owner:
            cfg = self.config
            boot = pool.boot_minutes if cfg.boot_minutes is None else cfg.boot_minutes
            boot_b = max(0, math.ceil(boot * 60.0 / step))
            margin_b = max(0, math.ceil(cfg.margin_minutes * 60.0 / step))
            self._recent_b = max(0, math.ceil(cfg.recent_minutes * 60.0 / step))
            self._recent_days_b = round(cfg.recent_days * DAY_SECONDS / step)
            backfill = math.ceil(cfg.error_days * DAY_SECONDS / step)
            if (
                h is not self._owner
                or step != self._step
                or pool.calls_per_instance != self._smooth
                or boot_b != self._boot_b
                or margin_b != self._margin_b
            ):
                self._smooth = pool.calls_per_instance
                self._boot_b, self._margin_b = boot_b, margin_b
                self._reset(h, step, math.floor(h.visible_until / step) - backfill)
            self._pool = pool
        first = math.floor(now / step)
        end = first + max(1, self._boot_b + self._margin_b)
        last = math.floor(h.visible_until / step)  # first bucket not yet visible
        recent = self._recent_b
        lo = min(first, last - recent)
        base = self._base
        if lo < base or lo > base + len(self._sea) + 1440 or last < self._abase + len(self._act):
            backfill = math.ceil(self.config.error_days * DAY_SECONDS / step)
            self._reset(h, step, min(lo, last) - backfill)
        elif lo - base > 5 * 1440:
            self._trim(lo)
        settled = last - self._FRESH
        self._mirror(h, settled)
        # Learn from the past before forecasting what is ahead: the time bases' scores decide
        # which of them the new buckets follow.
        target = min(end, settled + self._margin_b)
        b = self._base + len(self._sea)
        while True:  # in hours while catching up (a fresh instance replays its backfill)
            b = min(target, b + 60)
            self._fill(b)
            self._learn(settled)
            if b >= target:
                break
        self._fill(end)
        return first, end, last, recent

    def _mirror(self, h: LoadHistory, upto: int) -> None:
        """Read the settled buckets up to ``upto`` (exclusive) from the history, once."""
        act = self._act
        step = self._step
        b = self._abase + len(act)
        if isinstance(h, ArrayHistory):  # nothing before its start: skip without reading
            skip = min(upto, math.floor(h.start / step)) - b
            if skip > 0:
                act.extend([-1.0] * skip)
                b += skip
        while b < upto:
            v = h.value_at((b + 0.5) * step)
            act.append(-1.0 if v is None else v)
            b += 1

    def _trim(self, lo: int) -> None:
        """Drop what no forecast, error or level will read again (in large steps)."""
        day_b = round(DAY_SECONDS / self._step)
        drop = lo - self._base - 2 * day_b
        if drop > 2 * day_b and self._done - self._base > drop + 2 * day_b:
            self._base += drop
            del self._sea[:drop], self._cnt[:drop], self._cand[:drop]
            del self._lev[:drop], self._slot[:drop], self._plans_made[:drop]
            if len(self._pa) > drop:
                del self._pa[:drop], self._ps[:drop], self._pn[:drop]
            else:
                self._pa, self._ps, self._pn = [0.0], [0.0], [0]
        drop = self._base - self._reach - self._abase
        if drop > 2 * day_b:
            self._abase += drop
            del self._act[:drop]
        if len(self._blocks) > 8192:
            self._blocks.clear()
        if len(self._groups) > 4096:
            self._groups.clear()

    def _fill(self, end: int) -> None:
        """Extend the seasonal cache up to bucket ``end`` (exclusive) as far as its sources are
        settled."""
        b = self._base + len(self._sea)
        if b >= end:
            return
        sea, cnt, cand, lev, slots = self._sea, self._cnt, self._cand, self._lev, self._slot
        plans = self._plans_made
        while b < end:
            value, n, settled, per_base, hour = self._seasonal(b)
            if not settled:
                break
            sea.append(value)
            cnt.append(n)
            cand.append(per_base)
            lev.append(1.0)
            plans.append(-2.0)
            slots.append(hour)
            b += 1

    # -- seasonal forecast ------------------------------------------------------------------------

    def _block(self, t: float) -> tuple[int, int, bool]:
        """(local day ordinal, local hour, afternoon of a half day?) for the 15 minutes holding
        ``t`` in the hinted zone (15 minutes: every zone's offset is a multiple of them)."""
        key = math.floor(t / 900.0)
        found = self._blocks.get(key)
        if found is None:
            day, hour, _ = local_day(self._hint, key * 900.0)
            found = (day, hour, hour >= self._half_from)
            self._blocks[key] = found
        return found

    def _off(self, day: int, pm: bool) -> bool:
        cal = self._calendar
        if cal is None:
            return False
        return cal.is_off(date.fromordinal(day), self._half_from if pm else 0)

    def _total(self, day: int) -> tuple[float, float]:
        """(call-minutes scaled to the whole day, share of buckets known) of local ``day``;
        (0, 0) while the day is not wholly settled."""
        found = self._totals.get(day)
        if found is not None:
            return found
        step = self._step
        i = math.floor(day_start(self._hint, day) / step) - self._abase
        j = math.floor(day_start(self._hint, day + 1) / step) - self._abase
        if i < 0 or j > len(self._act) or j <= i:
            return 0.0, 0.0
        known = [v for v in self._act[i:j] if v >= 0.0]
        share = len(known) / (j - i)
        total = sum(known) / share * step / 60.0 if known else 0.0
        found = (total, share)
        if len(self._totals) > 400:
            self._totals.clear()
        self._totals[day] = found
        return found

    def _fit(self, day: int, pm: bool) -> _DayFit:
        """Sources, weights and growth for local ``day`` (its afternoon when ``pm``)."""
        found = self._fits.get((day, pm))
        if found is not None:
            return found
        cfg = self.config
        weeks = cfg.weeks
        smooth_day = self._smooth * 60.0  # an instance-hour of call-minutes
        # Daily totals of the last ``weeks`` weeks (newest first), None where they must not count.
        grid: list[list[float | None]] = []
        for k in range(1, weeks + 1):
            row: list[float | None] = []
            for j in range(7):
                d = day - 7 * k + j
                total, share = self._total(d)
                bad = share < 0.9 or self._off(d, False) or self._off(d, True)
                row.append(None if bad else total)
            grid.append(row)
        if cfg.day_outlier_ratio is not None:
            for j in range(7):
                column = [grid[k][j] for k in range(weeks)]
                flags = day_outliers(column, cfg.day_outlier_ratio, smooth_day, cfg.day_low_ratio)
                for k, out in enumerate(flags):
                    if out:
                        grid[k][j] = None
        rate = growth_per_week(grid, low=cfg.growth_min, high=cfg.growth_max)
        # Sources: the same weekday, or for a day off the last Sundays.
        off = self._off(day, pm)
        lead = date.fromordinal(day).weekday() + 1 if off else 0
        sources = [day - lead - 7 * (w - 1) if off else day - 7 * w for w in range(1, weeks + 1)]
        totals: list[float | None] = []
        for d in sources:
            total, share = self._total(d)
            totals.append(None if share <= 0.0 or self._off(d, pm) else total)
        outs = [False] * weeks
        if cfg.day_outlier_ratio is not None:
            scaled = [
                None if t is None else t * rate ** ((day - d) / 7.0)
                for t, d in zip(totals, sources, strict=True)
            ]
            outs = day_outliers(scaled, cfg.day_outlier_ratio, smooth_day, cfg.day_low_ratio)
        weights = tuple(
            0.0 if t is None or out else cfg.recency_decay**w
            for w, (t, out) in enumerate(zip(totals, outs, strict=True))
        )
        fit = _DayFit(
            backs=tuple((day - d) * DAY_SECONDS for d in sources),
            weights=weights,
            growth=tuple(rate ** ((day - d) / 7.0) for d in sources),
            rate=rate,
        )
        if len(self._fits) > 64:
            self._fits.clear()
            self._groups.clear()
            self._plans.clear()
        self._fits[(day, pm)] = fit
        return fit

    def _shift_groups(self, block: int, day: int, pm: bool, fit: _DayFit) -> _Groups:
        """The sources of the 15 minutes ``block`` per time base, grouped by where they lie:
        (bucket offsets back, weights, growth factors, members) of the weeks that count."""
        key = (block, day, pm)
        found = self._groups.get(key)
        if found is None:
            at = block * 900.0
            step = self._step
            by_offsets: dict[tuple[int, ...], list[int]] = {}
            for i, zone in enumerate(self._bases):
                now = utc_offset(zone, at)
                offsets = tuple(
                    round((back - (now - utc_offset(zone, at - back))) / step)
                    for back, weight in zip(fit.backs, fit.weights, strict=True)
                    if weight > 0.0
                )
                by_offsets.setdefault(offsets, []).append(i)
            weights = tuple(w for w in fit.weights if w > 0.0)
            growth = tuple(g for g, w in zip(fit.growth, fit.weights, strict=True) if w > 0.0)
            found = tuple((o, weights, growth, tuple(ix)) for o, ix in by_offsets.items())
            self._groups[key] = found
        return found

    def _plan(self, block: int) -> tuple[int, _Groups]:
        """(local hour, source groups; empty when no week counts) of the 15 minutes ``block``."""
        found = self._plans.get(block)
        if found is None:
            day, hour, pm = self._block(block * 900.0)
            fit = self._fit(day, pm)
            groups = self._shift_groups(block, day, pm, fit) if any(fit.weights) else ()
            found = (hour, groups)
            if len(self._plans) > 4096:
                self._plans.clear()
            self._plans[block] = found
        return found

    def _seasonal(self, bucket: int) -> tuple[float, int, bool, tuple[float, ...] | None, int]:
        """(forecast or -1, weeks found, all sources settled, each time base's forecast when
        they differ, local hour)."""
        block = math.floor((bucket + 0.5) * self._step / 900.0)
        found_plan = self._plans.get(block)
        hour, groups = found_plan if found_plan is not None else self._plan(block)
        if not groups:
            return -1.0, 0, True, None, hour
        act = self._act
        n = len(act)
        at = bucket - self._abase
        settled = True
        weeks = 0
        values: list[float] = []
        ratio = self._outlier
        weighted = self._weighted
        smooth = self._smooth
        for offsets, weights_all, growth_all, _ in groups:
            found: list[float] = []
            weights: list[float] = []
            total = weight_sum = 0.0
            for off, weight, growth in zip(offsets, weights_all, growth_all, strict=False):
                i = at - off
                if i >= n:
                    settled = False
                elif i >= 0:
                    v = act[i]
                    if v >= 0.0:
                        v *= growth
                        found.append(v)
                        weights.append(weight)
                        total += v * weight
                        weight_sum += weight
            count = len(found)
            if count > weeks:
                weeks = count
            if ratio is not None and count >= 3:
                kept, kept_w = without_outliers(found, weights, ratio, smooth)
                if len(kept) < count:
                    found, weights = kept, kept_w
                    total = sum(v * w for v, w in zip(found, weights, strict=True))
                    weight_sum = sum(weights)
            if weighted:
                values.append(total / weight_sum if weight_sum > 0.0 else -1.0)
            else:
                values.append(blend(found, weights, self._how))
        if len(values) == 1 or max(values) - min(values) < 1e-9:
            return values[0], weeks, settled, None, hour
        per_base = [0.0] * len(self._bases)
        for value, group in zip(values, groups, strict=True):
            for i in group[3]:
                per_base[i] = value
        chosen = self._kept(hour)
        best = max(v for v, keep in zip(per_base, chosen, strict=True) if keep)
        return best, weeks, settled, tuple(per_base), hour

    def _kept(self, slot: int) -> tuple[bool, ...]:
        """Time bases still in the running for local hour ``slot``: error score within an
        instance-hour of call-minutes of the best (all of them before any evidence)."""
        found = self._scores.get(slot)
        if found is None:
            return (True,) * len(self._bases)
        scores = found[1]
        best = min(scores)
        tolerance = self._smooth * 60.0
        return tuple(s <= best + tolerance for s in scores)

    # -- learning from the visible past -----------------------------------------------------------

    def _learn(self, upto: int) -> None:
        """Score time bases and record forecast errors for settled buckets up to ``upto``."""
        base = self._base
        b = max(self._done, base)
        sea, cand, lev, slots = self._sea, self._cand, self._lev, self._slot
        plans = self._plans_made
        boot_b = self._boot_b
        width = max(1, boot_b + self._margin_b)  # the horizon each tick planned for
        upto = min(upto, base + len(sea) - width + boot_b, self._abase + len(self._act))
        cpi = self._smooth
        ratio = self.config.outlier_ratio
        limit = math.inf if ratio is None else ratio
        half_life = self._HALF_LIFE_DAYS * DAY_SECONDS / self._step
        errors = self._errors
        act, abase = self._act, self._abase
        sqrt = math.sqrt
        while b < upto:
            k = b - base
            a = act[b - abase]
            if a >= 0.0:
                slot = slots[k]
                per_base = cand[k]
                if per_base is not None:
                    found = self._scores.get(slot)
                    if found is None:
                        scores = [0.0] * len(per_base)
                    else:
                        decay = 0.5 ** ((b - found[0]) / half_life)
                        scores = [s * decay for s in found[1]]
                    for i, f in enumerate(per_base):
                        scores[i] += abs(a - f)
                    self._scores[slot] = (b, scores)
                i0 = k - boot_b
                if i0 >= 0:
                    planned = plans[i0]
                    if planned == -2.0:  # no tick there: the plan as it would have been
                        planned = max(sea[i0 : i0 + width])
                        if planned >= 0.0:
                            planned *= lev[i0]
                    if planned >= 0.0 and a <= limit * (planned + cpi):
                        errors[slot].append((a - planned) / sqrt(planned + cpi))
            b += 1
        if b > self._done:
            self._done = b

    def _error_z(self, slot: int, first: int) -> float | None:
        """The hour's error quantile, refreshed at most every ``refit_minutes``; ``None`` while
        it has fewer than ``min_error_days`` of errors."""
        cfg = self.config
        found = self._quant.get(slot)
        refit = cfg.refit_minutes * 60.0 / self._step
        if found is not None and first - found[0] < refit:
            return found[1]
        errs = self._errors[slot]
        need = cfg.min_error_days * 3600.0 / self._step
        value = upper_quantile(errs, cfg.error_quantile) if errs and len(errs) >= need else None
        self._quant[slot] = (first, value)
        return value

    def _level(self, pool: PoolLimits, last: int, recent: int) -> float:
        """Recent actual ÷ recent seasonal, smoothed by one instance of calls and bounded.

        Over the settled buckets of the window (the newest ``_FRESH`` may still be revised)."""
        cfg = self.config
        if recent <= 0 and self._recent_days_b <= 0:
            return 1.0
        base, abase = self._base, self._abase
        act, sea = self._act, self._sea
        lo = last - recent
        fresh = max(lo, last - self._FRESH)
        # Settled buckets: prefix sums, extended to ``fresh``.
        pa, ps, pn = self._pa, self._ps, self._pn
        b = base + len(pa) - 1
        stop_at = min(fresh, base + len(sea), abase + len(act))
        while b < stop_at:
            s = sea[b - base]
            a = act[b - abase]
            if a >= 0.0 and s >= 0.0:
                pa.append(pa[-1] + a)
                ps.append(ps[-1] + s)
                pn.append(pn[-1] + 1)
            else:
                pa.append(pa[-1])
                ps.append(ps[-1])
                pn.append(pn[-1])
            b += 1
        stop = min(fresh, b)
        actual_sum = seasonal_sum = 0.0
        pairs = 0
        if stop > lo:
            i, j = lo - base, stop - base
            actual_sum, seasonal_sum, pairs = pa[j] - pa[i], ps[j] - ps[i], pn[j] - pn[i]
        k1 = pool.calls_per_instance
        ratio = 1.0
        if pairs:
            ratio = (actual_sum / pairs + k1) / (seasonal_sum / pairs + k1)
        days = self._recent_days_b
        if days > 0 and stop > base:
            # The last day(s) against their forecast: a step in the base load (a new customer)
            # lifts today before the weeks behind the forecast show it.
            j = stop - base
            i = max(0, j - days)
            n = pn[j] - pn[i]
            if n >= days // 2:
                day_ratio = ((pa[j] - pa[i]) / n + k1) / ((ps[j] - ps[i]) / n + k1)
                ratio = max(ratio, day_ratio)
        return min(cfg.adjust_max, max(cfg.adjust_min, ratio))

    def _peak(self, ctx: PolicyContext) -> tuple[float | None, int, float | None]:
        """(peak calls expected over the horizon, weeks of history behind it, the error
        quantile to plan it with or ``None`` for the utilisation headroom)."""
        h = ctx.history
        if h is None:
            return None, 0, None
        first, end, last, recent = self._prepare(h, ctx.now, ctx.pool)
        base = self._base
        cfg = self.config
        cached = base + len(self._sea) >= end
        if cached:
            peak = max(self._sea[first - base : end - base])
            # Weeks behind it matter only for min_history_weeks > 1 or a one-week plan.
            weeks = 1 if peak >= 0.0 else 0
            if cfg.min_history_weeks > 1 or cfg.single_week_utilization is not None:
                weeks = max(self._cnt[first - base : end - base])
        else:  # sources not settled yet (a history that lags by a week): no caching
            found = [self._seasonal(b) for b in range(first, end)]
            peak = max(p[0] for p in found)
            weeks = max(p[1] for p in found)
        level = self._level(ctx.pool, last, recent)
        self._record_level(first, level, peak if cached else -2.0)
        if peak < 0.0 or weeks < cfg.min_history_weeks:
            return None, weeks, None
        z: float | None = None
        if cached and cfg.headroom == "error-quantile":
            slots = self._slot
            sa = slots[min(first + self._boot_b, end - 1) - base]
            sb = slots[end - 1 - base]
            z = self._error_z(sa, first)
            if sb != sa and z is not None:
                zb = self._error_z(sb, first)
                z = None if zb is None else max(z, zb)
        return peak * level, weeks, z

    def _record_level(self, first: int, level: float, peak: float) -> None:
        """Remember the level and plan made at tick bucket ``first`` (errors are measured against
        the plan as it was made); buckets since the previous tick keep the previous level."""
        lev, base = self._lev, self._base
        k = first - base
        if not 0 <= k < len(lev):
            return
        for i in range(max(self._lev_last - base + 1, 0), k):
            lev[i] = self._lev_value
        lev[k] = level
        self._plans_made[k] = peak * level if peak >= 0.0 else -2.0
        self._lev_last, self._lev_value = first, level

    # -- policy ---------------------------------------------------------------------------------

    def recommend(self, ctx: PolicyContext) -> Recommendation | None:
        cfg = self.config
        cpi = ctx.pool.calls_per_instance
        per_instance = cpi * cfg.target_utilization
        reactive: int | None = None
        if ctx.calls is not None:
            reactive = math.ceil(round(ctx.calls / per_instance, 9))
        peak, weeks, z = self._peak(ctx)
        predicted: int | None = None
        planned = per_instance
        if peak is not None:
            if z is not None:
                utilization = cfg.plan_utilization
                if cfg.single_week_utilization is not None and weeks <= 1:
                    # One earlier day says little about this one, whatever errors it showed.
                    utilization = min(utilization, cfg.single_week_utilization)
                predicted = plan_instances(peak, z, calls_per_instance=cpi, utilization=utilization)
            else:
                if cfg.single_week_utilization is not None and weeks <= 1:
                    planned = cpi * cfg.single_week_utilization
                predicted = math.ceil(round(peak / planned, 9))
        if predicted is None or (reactive is not None and reactive >= predicted):
            if reactive is None or ctx.calls is None:
                return None
            ratio = None
            if ctx.current > 0:
                ratio = ctx.calls / (ctx.current * per_instance)
            why = "reactive" if peak is not None else f"reactive (history: {weeks} weeks)"
            return Recommendation(desired=reactive, utilization_ratio=ratio, note=why)
        assert peak is not None
        ratio = peak / (ctx.current * planned) if ctx.current > 0 else None
        note = f"forecast {peak:.0f} calls"
        if z is not None:
            note += f" + error q{cfg.error_quantile:g} z={z:.2f}"
        return Recommendation(desired=predicted, utilization_ratio=ratio, note=note)
