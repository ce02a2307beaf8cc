"""Predictive: scale out ahead of load that the same hour of earlier weeks says is coming.

A Teams Connector instance takes up to 20 minutes to boot and meetings start on the hour, so a
policy that reacts to the 09:00 step is 20 minutes late every morning. This one forecasts the
load over the next ``boot_minutes + margin_minutes`` and asks now for what that load will need.

The forecast is a seasonal-naive ensemble (Hyndman & Athanasopoulos, *Forecasting: Principles
and Practice*, §5.2 "seasonal naïve"; several seasons blended for robustness):

1. **seasonal**: for every minute of the horizon, the load at the same minute of the week in each
   of the last ``weeks`` weeks, blended by ``blend`` (``max``: cover the busiest of them;
   ``median``: ignore one odd week such as a holiday or a spike; ``mean``). With
   ``outlier_ratio`` set, a week whose value is more than that many times the weeks' median
   (smoothed by one instance of calls) is left out first when at least three weeks are known:
   an unannounced surge last week is not replayed this week, while a busy week still counts
   (``max`` then covers the busiest *ordinary* week). With ``timezone``
   set, "the same minute" is the same *local* minute, so a 09:00 step stays at 09:00 across a
   daylight-saving change;
2. **level adjustment**: the ratio of the load actually seen over the last ``recent_minutes`` to
   the seasonal forecast of those same minutes, smoothed by one instance's worth of calls (so a
   quiet night's 2 calls against 1 does not double the morning) and bounded to
   [``adjust_min``, ``adjust_max``]: a busier-than-usual day lifts the forecast. By default it
   never lowers it (``adjust_min = 1``): against a ``max`` blend an ordinary morning always looks
   quieter than the busiest of four weeks, and lowering the forecast for that left the 09:00 step
   short in backtests; set ``adjust_min`` below 1 to let a quiet day (a holiday) save cost;
3. ``desired = ceil(peak of the adjusted forecast ÷ (calls_per_instance × target_utilization))``;
   while a single week stands behind the forecast (a new deployment, a pool whose history was
   lost), ``single_week_utilization`` plans with more room: one earlier day says less about
   how busy this one will be than the busiest of several.

It only ever adds to the reactive answer: the result is never below what target tracking would
recommend from the current reading (same ``target_utilization``). With less than
``min_history_weeks`` of seasonal history it *is* target tracking. With an unusable metric it still
recommends the forecast (a floor, which the core never uses to scale in).

Speed: a backtest calls this ~400 000 times, so the blended seasonal value of each minute is
computed once and kept in the instance (the weeks it reads are long past and no longer change);
each call then reads about ``horizon + recent_minutes`` cached numbers. The cache is keyed to the
history object and bounded, so behaviour stays a pure function of the inputs.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scaler.core.history import LoadHistory
from scaler.core.types import PolicyContext, Recommendation

WEEK_SECONDS = 7 * 86400.0


class PredictiveConfig(BaseModel):
    """``[[pools.policies]] type = "predictive"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_utilization: float = Field(default=0.8, gt=0.0, le=1.0)
    """Share of ``calls_per_instance`` to plan for, as in target tracking."""
    boot_minutes: float | None = Field(default=None, ge=0.0, le=240.0)
    """Look-ahead before the margin; empty: the pool's ``boot_minutes``."""
    margin_minutes: float = Field(default=10.0, ge=0.0, le=240.0)
    """Extra look-ahead beyond the boot time (meetings that start a little early)."""
    weeks: int = Field(default=4, ge=1, le=5)
    """Seasonal weeks blended (the daemon keeps 5 weeks of history)."""
    blend: Literal["max", "median", "mean"] = "max"
    outlier_ratio: float | None = Field(default=None, gt=1.0, le=100.0)
    """Leave out a week above this many times the weeks' median (+ one instance of calls);
    empty: keep every week."""
    single_week_utilization: float | None = Field(default=None, gt=0.0, le=1.0)
    """``target_utilization`` for a forecast that rests on one week alone; empty: the same."""
    min_history_weeks: int = Field(default=1, ge=1, le=5)
    """Below this many weeks of history at the horizon, act as target tracking."""
    recent_minutes: int = Field(default=30, ge=0, le=720)
    """Window of the level adjustment (0: none)."""
    adjust_min: float = Field(default=1.0, gt=0.0, le=1.0)
    """Lowest level factor; 1 (the default) never lowers the seasonal forecast."""
    adjust_max: float = Field(default=1.5, ge=1.0, le=10.0)
    timezone: str | None = None
    """IANA zone whose local week the load follows; empty: UTC weeks."""

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @model_validator(mode="after")
    def _weeks(self) -> PredictiveConfig:
        if self.min_history_weeks > self.weeks:
            raise ValueError(
                f"min_history_weeks ({self.min_history_weeks}) must be <= weeks ({self.weeks})"
            )
        return self


class Predictive:
    """Seasonal forecast over the boot horizon, never below the reactive answer."""

    name: ClassVar[str] = "predictive"
    Config: ClassVar[type[PredictiveConfig]] = PredictiveConfig

    _KEEP = 40_000
    """Buckets kept in the caches (about four weeks of minutes) before the oldest half goes."""
    _FRESH = 2
    """The newest visible buckets are re-read every call: a late metric may still revise them."""

    def __init__(self, config: PredictiveConfig | None = None) -> None:
        self.config = config or PredictiveConfig()
        self._tz = ZoneInfo(self.config.timezone) if self.config.timezone else None
        self._shifts: dict[int, tuple[float, ...]] = {}
        self._smooth = 0.0  # one instance of calls: the outlier test's smoothing
        self._reset(None, 60.0, 0)

    def _reset(self, owner: LoadHistory | None, step: float, base: int) -> None:
        self._owner = owner
        self._step = step
        # Per bucket from ``_base`` on: the blended seasonal calls (-1: unknown) and how many
        # weeks had a value; filled forward, one new bucket per minute of time passing.
        self._base = base
        self._sea: list[float] = []
        self._cnt: list[int] = []
        # Prefix sums, over settled buckets from ``_base`` on, of actual and seasonal calls and
        # of the number of buckets where both are known (for the level adjustment).
        self._pa: list[float] = [0.0]
        self._ps: list[float] = [0.0]
        self._pn: list[int] = [0]

    # -- forecast -------------------------------------------------------------------------------

    def forecast(self, ctx: PolicyContext) -> tuple[float | None, int]:
        """(peak calls expected over the horizon, weeks of history behind it)."""
        h = ctx.history
        if h is None:
            return None, 0
        cfg = self.config
        step = h.step_seconds
        boot = ctx.pool.boot_minutes if cfg.boot_minutes is None else cfg.boot_minutes
        first = math.floor(ctx.now / step)
        end = first + max(1, math.ceil((boot + cfg.margin_minutes) * 60.0 / step))
        visible = h.visible_until
        last = math.floor(visible / step)  # first bucket not yet visible
        recent = max(0, math.ceil(cfg.recent_minutes * 60.0 / step))
        lo = min(first, last - recent)
        smooth = ctx.pool.calls_per_instance
        if (
            h is not self._owner
            or step != self._step
            or smooth != self._smooth
            or lo < self._base
            or lo > self._base + len(self._sea) + 1440
        ):
            self._smooth = smooth
            self._reset(h, step, lo)
        elif len(self._sea) > self._KEEP and lo - self._base > self._KEEP // 2:
            self._trim(self._KEEP // 2)

        filled = self._fill(h, end, visible)
        base = self._base
        if filled >= end:
            peak = max(self._sea[first - base : end - base])
            weeks = max(self._cnt[first - base : end - base])
        else:  # sources not visible yet (a history that lags by a week): no caching
            pairs = [self._seasonal(h, b, visible) for b in range(first, end)]
            peak = max(p[0] for p in pairs)
            weeks = max(p[1] for p in pairs)
        if peak < 0.0 or weeks < cfg.min_history_weeks:
            return None, weeks
        return peak * self._level(ctx, h, last, recent, visible), weeks

    def _trim(self, drop: int) -> None:
        self._base += drop
        del self._sea[:drop], self._cnt[:drop]
        if len(self._pa) > drop:
            del self._pa[:drop], self._ps[:drop], self._pn[:drop]
        else:
            self._pa, self._ps, self._pn = [0.0], [0.0], [0]

    def _fill(self, h: LoadHistory, end: int, visible: float) -> int:
        """Extend the seasonal cache up to bucket ``end`` (exclusive) as far as its sources are
        visible; returns the first bucket not cached."""
        sea, cnt = self._sea, self._cnt
        b = self._base + len(sea)
        while b < end:
            value, n, settled = self._seasonal(h, b, visible)
            if not settled:
                break
            sea.append(value)
            cnt.append(n)
            b += 1
        return b

    def _seasonal(self, h: LoadHistory, bucket: int, visible: float) -> tuple[float, int, bool]:
        """(blend of the same minute in earlier weeks or -1, weeks found, all sources visible)."""
        step = self._step
        mid = (bucket + 0.5) * step
        found: list[float] = []
        settled = True
        t = mid
        for shift in self._shift(mid):
            t -= WEEK_SECONDS
            if t + shift + step / 2 > visible:
                settled = False
                continue
            v = h.value_at(t + shift)
            if v is not None:
                found.append(v)
        weeks = len(found)
        ratio = self.config.outlier_ratio
        if ratio is not None and weeks >= 3:
            found = _without_outliers(found, ratio, self._smooth)
        return _reduce(found, self.config.blend), weeks, settled

    def _shift(self, t: float) -> tuple[float, ...]:
        """Per week back, seconds to add to ``t - w weeks`` to land on the same local time."""
        hour = math.floor(t / 3600.0)
        found = self._shifts.get(hour)
        if found is None:
            weeks = range(1, self.config.weeks + 1)
            if self._tz is None:
                found = tuple(0.0 for _ in weeks)
            else:
                now = self._offset(hour * 3600.0)
                found = tuple(now - self._offset(hour * 3600.0 - w * WEEK_SECONDS) for w in weeks)
            if len(self._shifts) > 4096:
                self._shifts.clear()
            self._shifts[hour] = found
        return found

    def _offset(self, t: float) -> float:
        delta = datetime.fromtimestamp(t, self._tz).utcoffset()
        return delta.total_seconds() if delta is not None else 0.0

    def _level(
        self, ctx: PolicyContext, h: LoadHistory, last: int, recent: int, visible: float
    ) -> float:
        """Recent actual ÷ recent seasonal, smoothed by one instance of calls and bounded."""
        cfg = self.config
        if recent <= 0:
            return 1.0
        step, base = self._step, self._base
        lo = last - recent
        fresh = max(lo, last - self._FRESH)
        # Settled buckets: prefix sums, extended to ``fresh``.
        pa, ps, pn = self._pa, self._ps, self._pn
        b = base + len(pa) - 1
        while b < fresh and b - base < len(self._sea):
            s = self._sea[b - base]
            a = h.value_at((b + 0.5) * step)
            both = a is not None and s >= 0.0
            pa.append(pa[-1] + (a if both and a is not None else 0.0))
            ps.append(ps[-1] + (s if both else 0.0))
            pn.append(pn[-1] + both)
            b += 1
        stop = min(fresh, b)
        actual_sum = seasonal_sum = 0.0
        pairs = 0
        if stop > lo:
            i, j = lo - base, stop - base
            actual_sum, seasonal_sum, pairs = pa[j] - pa[i], ps[j] - ps[i], pn[j] - pn[i]
        # Newest buckets (and any the caches do not hold yet): read every time.
        for b in range(max(lo, stop), last):
            a = h.value_at((b + 0.5) * step)
            k = b - base
            s = self._sea[k] if k < len(self._sea) else self._seasonal(h, b, visible)[0]
            if a is not None and s >= 0.0:
                actual_sum += a
                seasonal_sum += s
                pairs += 1
        if not pairs:
            return 1.0
        k1 = ctx.pool.calls_per_instance
        ratio = (actual_sum / pairs + k1) / (seasonal_sum / pairs + k1)
        return min(cfg.adjust_max, max(cfg.adjust_min, ratio))

    # -- policy ---------------------------------------------------------------------------------

    def recommend(self, ctx: PolicyContext) -> Recommendation | None:
        cfg = self.config
        per_instance = ctx.pool.calls_per_instance * cfg.target_utilization
        reactive: int | None = None
        if ctx.calls is not None:
            reactive = math.ceil(round(ctx.calls / per_instance, 9))
        peak, weeks = self.forecast(ctx)
        planned = per_instance
        if cfg.single_week_utilization is not None and weeks <= 1:
            planned = ctx.pool.calls_per_instance * cfg.single_week_utilization
        predicted = None if peak is None else math.ceil(round(peak / planned, 9))
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
        return Recommendation(
            desired=predicted, utilization_ratio=ratio, note=f"forecast {peak:.0f} calls"
        )


def _without_outliers(values: list[float], ratio: float, smooth: float) -> list[float]:
    """``values`` without those above ``ratio × (median + smooth)`` (``smooth``: one instance of
    calls, so a quiet minute's 3 calls against 1 is no outlier)."""
    limit = ratio * (_reduce(values, "median") + smooth)
    return [v for v in values if v <= limit]


def _reduce(values: list[float], how: str) -> float:
    """Blend of the weeks' values; -1 when there are none (calls are never negative)."""
    if not values:
        return -1.0
    if how == "max":
        return max(values)
    if how == "mean":
        return sum(values) / len(values)
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2.0
