"""The predictive policy's forecaster: its state and how it learns, forecasts and plans.

Pure (no I/O): it reads a pool's load history in place and keeps, per pool, the seasonal values,
the level and the calls in progress (``_Track``: the live edge, and a replay of the error record
after a start), the error moments per hour-of-week slot, the standardised errors' tail, the time
bases' scores and the plan over the horizon. The method is described in
:mod:`policies.predictive`; that module's ``Predictive`` is the policy built on a ``Forecaster``
(its config, the recommendation and its note).
"""

from __future__ import annotations

import functools
import math
import operator
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, tzinfo
from typing import ClassVar
from zoneinfo import ZoneInfo

from policies.forecasting import (
    TAIL_BINS,
    Calendar,
    Tail,
    blend,
    day_outliers,
    day_start,
    growth_per_week,
    local_day,
    persistence,
    tail_bin,
    utc_offset,
    without_outliers,
)
from policies.predictive_config import PredictiveConfig
from scaler.core.history import ArrayHistory, LoadHistory
from scaler.core.types import PoolLimits

WEEK_SECONDS = 7 * 86400.0
DAY_SECONDS = 86400.0
_NAN = math.nan


@dataclass(frozen=True, slots=True)
class HorizonPlan:
    """What the forecaster plans over the horizon (``Forecaster.plan``), read by name."""

    peak: float
    """The peak point forecast over the horizon (calls, at least 0)."""
    upper: float
    """The planned calls: the peak of the planned quantile of the load over the horizon (the
    peak point forecast under ``headroom = "utilization"``)."""
    instances: int
    """Whole instances the plan asks for now."""
    weeks: int
    """Weeks of history behind the horizon's buckets (the most any of them has)."""
    quantile: float
    """The quantile ``upper`` promises (1.0 under ``headroom = "utilization"``)."""
    hold: int
    """Instances the plan needs again within the hold look-ahead (``hold_minutes``); above
    ``instances`` they are kept, never added."""


@dataclass(frozen=True, slots=True)
class Outlook:
    """The predictive distribution of one minute as the policy plans it (``forecast`` command)."""

    forecast: float
    """Point forecast (calls)."""
    upper: float
    """The planned quantile of the load (calls): the forecast plus its headroom."""
    quantile: float
    """The quantile ``upper`` promises: the share of minutes the load should stay at or below."""
    instances: int
    """Whole instances that ``upper`` asks for (``plan_utilization`` applied)."""


@dataclass(frozen=True, slots=True)
class _DayFit:
    """How one local day (or half day) is forecast: per source day, the seconds back to it, its
    weight (0: left out) and growth factor to today; ``daily``: the sources are the last day of
    the same kind, not earlier weeks."""

    backs: tuple[float, ...]
    weights: tuple[float, ...]
    growth: tuple[float, ...]
    rate: float
    daily: bool = False
    weeks: int = 0
    """How many of the first sources are earlier weeks (the others: other days pooled)."""


_Group = tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...], tuple[int, ...], int]
"""The sources of some time bases: (buckets back, weights, scale factors, indices of the
bases, how many of the first sources are earlier weeks) over the sources that count."""
_Groups = tuple[_Group, ...]

_DEFAULT_POOL = PoolLimits("forecast", 0, 1, 15.0, 1, "", "")
_SLOTS = 48
"""Error slots: local hour (0-23) + 24 on a day off (weekend or holiday)."""
_MOMENTS = 3
_NEVER = -(2**62)
"""A refit stamp older than any bucket."""
_DEV_DECAY = 1.0 - 1.0 / 53.0
"""Per unknown bucket, the share of the calls-in-progress deviation kept (53-minute meetings)."""


class _Track:
    """The forecaster walking the settled past a bucket at a time.

    Per bucket from ``base`` on (compact arrays): ``seasonal``, its value (-1 unknown);
    ``planned``, the value a plan reads (the highest of the time bases still in the running);
    ``weeks``, the earlier weeks behind it; ``slot``, its error slot; ``near``/``far``, the
    forecasts made for it at the near and far leads (-1 none) with ``near_dev``/``far_dev``, the
    deviation of the calls in progress they carried; ``per_base``, each time base's value (NaN
    where they agree; ``differing`` buckets where they do not). They cover the level window
    behind the edge and the horizon ahead of it. Plus the level's sums: today's pace
    (``pace_*``: the last ``recent`` buckets), the last whole ``days`` and today so far
    (``today_*``, per local day), and the ``level`` and deviation (``dev``) at the edge.
    """

    __slots__ = (
        "base",
        "day_end",
        "days",
        "days_level",
        "dev",
        "differing",
        "edge",
        "far",
        "far_dev",
        "level",
        "nbases",
        "near",
        "near_dev",
        "pace_actual",
        "pace_count",
        "pace_seasonal",
        "per_base",
        "planned",
        "seasonal",
        "slot",
        "stop",
        "today_actual",
        "today_count",
        "today_seasonal",
        "weeks",
    )

    def __init__(self, base: int, nbases: int, stop: int | None = None) -> None:
        self.base = base
        self.edge = base
        self.stop = stop
        """A replay stops here (its errors are the live track's past); ``None``: live."""
        self.seasonal = array("d")
        self.planned = array("d")
        self.weeks = array("b")
        self.slot = array("b")
        self.near = array("d")
        self.far = array("d")
        self.near_dev = array("d")
        self.far_dev = array("d")
        self.nbases = nbases
        self.per_base = array("d")  # per bucket: each time base's value (NaN: they agree)
        self.differing = 0  # buckets whose time bases differ
        self.pace_actual = self.pace_seasonal = 0.0
        self.pace_count = 0
        self.days: list[tuple[float, float, float]] = []  # (actual, seasonal, buckets) per day
        self.days_level = 1.0
        self.today_actual = self.today_seasonal = self.today_count = 0.0
        self.day_end = base
        self.level = 1.0
        self.dev = 0.0


class Forecaster:
    """The seasonal forecast of one pool with its calibrated predictive distribution: settled
    buckets teach it (``_advance``: ``_learn`` the errors, the level's sums, ``_look_ahead``),
    ``plan`` reads the horizon for a recommendation and ``outlook`` one minute of it."""

    _FRESH = 2
    """The newest visible buckets may still be revised by a late metric: learning waits."""
    _HALF_LIFE_DAYS = 14.0
    """Half-life of the time bases' error scores."""

    CATCH_UP_MINUTES: ClassVar[int] = 120
    """Buckets of the error record's replay per call after a start or a reload (about 0.3 ms)."""

    def __init__(self, config: PredictiveConfig, catch_up_minutes: int | None = None) -> None:
        self.config = cfg = config
        self.catch_up_minutes = (
            self.CATCH_UP_MINUTES if catch_up_minutes is None else catch_up_minutes
        )
        """Buckets of the error record's replay per call (``CATCH_UP_MINUTES`` by default)."""
        self._hint: tzinfo | None = ZoneInfo(cfg.timezone) if cfg.timezone else None
        seen: list[str] = []
        for n in (cfg.timezone or "UTC", *cfg.time_bases):
            if n not in seen:
                seen.append(n)
        self._bases: tuple[tzinfo | None, ...] = tuple(
            None if n == "UTC" else ZoneInfo(n) for n in seen
        )
        self._agree = array("d", [_NAN] * len(self._bases))  # a bucket whose bases agree
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
        self.lookback_minutes = (7 * cfg.weeks + 7) * 1440
        """Minutes of the pool's history read: the weeks blended and one more, so that the
        error record's replay after a restart finds earlier weeks behind its first days too."""
        self._owner: LoadHistory | None = None
        self._pool: PoolLimits | None = None
        self._geometry: tuple[float, int, int, int] | None = None
        self._live: _Track | None = None
        self._replay: _Track | None = None
        self._last_now = -math.inf
        self._buf: array[float] = array("d")
        self._boff = 0
        self._array = False
        self._visible = 0
        self._blocks: dict[int, tuple[int, int, bool, bool]] = {}
        self._groups: dict[tuple[int, int, bool], _Groups] = {}
        self._plans: dict[int, tuple[int, bool, _Groups, bool]] = {}
        self._totals: dict[int, tuple[float, float]] = {}
        self._fits: dict[tuple[int, bool], _DayFit] = {}
        self._starts: dict[int, int] = {}
        self._scores = array("d")  # per local hour: each time base's decayed error score
        self._scored = array("q", [-1] * 24)  # per local hour: bucket of its last score (-1: none)
        self._weighted = cfg.blend == "weighted"
        self._outlier = cfg.outlier_ratio
        self._smooth = 15.0
        self._today = cfg.today_level
        self._adjust_min, self._adjust_max = cfg.adjust_min, cfg.adjust_max
        self._norm = 1.0  # calls added under the square root of the error's scale
        self._setup(60.0, 20, 0, 3)

    # -- geometry and learnt state ------------------------------------------------------------

    def _setup(self, step: float, boot_b: int, margin_b: int, lag_b: int) -> None:
        """Fix the geometry (bucket length, look-ahead, lead of the data) and clear what was
        learnt under another one."""
        cfg = self.config
        self._step = step
        self._boot_b = boot_b
        self._horizon = max(1, boot_b + margin_b)
        self._lag_b = lag_b
        self._lead_near = lag_b + self._FRESH  # lead of the horizon's first bucket from the edge
        self._lead_far = self._lead_near + self._horizon - 1
        self._hold = max(self._horizon, math.ceil(round(cfg.hold_minutes * 60.0 / step, 9)))
        self._far = self._lead_near + self._hold - 1  # the furthest bucket a plan reads
        self._recent = max(0, math.ceil(cfg.recent_minutes * 60.0 / step))
        self._keep_days = math.ceil(cfg.recent_days) if cfg.recent_days > 0 else 0
        self._kappa = cfg.level_prior_call_minutes * 60.0 / step  # in calls × buckets
        self._limit = math.inf if cfg.outlier_ratio is None else cfg.outlier_ratio
        self._per = self._smooth * cfg.plan_utilization  # calls an instance is planned for
        self._span = self._recent + self._far + 2  # buckets a track keeps
        self._day_b = round(DAY_SECONDS / step)
        minutes = step / 60.0
        self._rho_near = persistence(self._lead_near * minutes)
        self._rho_far = persistence(self._lead_far * minutes)
        self._rho = [0.0] * self._hold  # per bucket of the plan: share of the deviation kept
        self._error_half_life = max(1.0, cfg.error_days / 2.0 * DAY_SECONDS / step)  # in buckets
        self._ref = 0  # bucket the weights are relative to
        self._stats = array("d", bytes(8 * _SLOTS * 2 * _MOMENTS))
        self._hist = array("d", bytes(8 * TAIL_BINS))
        self._spread_sum = 0.0  # Σ w·σ (each minute's far-lead spread in calls)
        self._spread_sq_sum = 0.0  # Σ w·σ²
        self._forecast_sum = 0.0  # Σ w·forecast
        self._persist_sums = array("d", bytes(8 * 6))  # per lead: Σ w·dev·residual, Σ w·dev², Σ w
        self._coef: tuple[int, tuple[float, float]] | None = None
        self._params = array("d", bytes(8 * _SLOTS * 4))  # per slot: near mean, spread; far
        self._params_at = array("q", [_NEVER] * _SLOTS)  # per slot: bucket of the refit
        self._z: tuple[int, float, float] | None = None
        self._z_stamp = 0  # bumped when the quantile is refitted (headroom lists follow)

        self._heads = array("d", bytes(8 * _SLOTS * 2))  # per slot: near and far headroom
        self._heads_at = array("q", [_NEVER] * _SLOTS)  # per slot: bucket of the refit
        self._heads_z = array("q", [-1] * _SLOTS)  # per slot: ``_z_stamp`` it was made with
        # the last two ``_head_row``s (a plan crossing into the next hour reads two)
        self._row: tuple[float, float, list[float]] | None = None
        self._row2: tuple[float, float, list[float]] | None = None
        self._refit = max(1, round(cfg.refit_minutes * 60.0 / step))
        self._clear_scores()
        self._live = None
        self._replay = None

    def _bind(self, h: LoadHistory, now: float, pool: PoolLimits) -> tuple[int, int]:
        """Read ``h`` in place and bring the tracks up to ``now``; (first, edge) in buckets."""
        live = self._live
        if h is self._owner and pool is self._pool and live is not None and now >= self._last_now:
            # the steady case: the same history and pool, a minute or so later
            step = self._step
            first = int(now // step)
            last = int(h.visible_until // step)
            edge = last - self._FRESH
            if first - last == self._lag_b and 0 <= edge - live.edge <= self._day_b:
                if self._array:
                    start, self._buf = h.buffer()  # type: ignore[attr-defined]
                    self._boff = int(start // step)
                self._visible = last
                if edge > live.edge:
                    self._advance(live, edge)
                self._last_now = now
                if self._replay is not None:
                    self._catch_up()
                return first, edge
        return self._bind_slow(h, now, pool)

    def _bind_slow(self, h: LoadHistory, now: float, pool: PoolLimits) -> tuple[int, int]:
        step = h.step_seconds
        cfg = self.config
        first = math.floor(now / step)
        last = math.floor(h.visible_until / step)  # first bucket not visible
        lag_b = max(0, first - last)
        boot = pool.boot_minutes if cfg.boot_minutes is None else cfg.boot_minutes
        geometry = (
            step,
            max(0, math.ceil(round(boot * 60.0 / step, 9))),
            max(0, math.ceil(round(cfg.margin_minutes * 60.0 / step, 9))),
            lag_b,
        )
        fresh = h is not self._owner
        if geometry != self._geometry or pool.calls_per_instance != self._smooth:
            self._geometry = geometry
            self._smooth = pool.calls_per_instance
            self._setup(*geometry)
            fresh = True
        self._pool = pool
        self._array = isinstance(h, ArrayHistory) and h.start % step == 0.0
        if self._array:
            start, buf = h.buffer()  # type: ignore[attr-defined]
            self._buf = buf
            self._boff = int(start // step)
        else:  # any other history: a copy of what a forecast reads (slow, but correct)
            lo = last - self.lookback_minutes * 60.0 / step
            lo_t = math.floor(lo) * step
            vals = h.values(lo_t, last * step)
            self._buf = array("d", (_NAN if v is None else v for v in vals))
            self._boff = math.floor(lo)
        self._visible = last
        edge = last - self._FRESH
        live = self._live
        if (
            fresh
            or live is None
            or now < self._last_now
            or edge < live.edge
            or edge - live.edge > self._day_b  # a long pause: learn what is there, as at a start
        ):
            self._restart(h, edge)
        else:
            self._advance(live, edge)
        self._last_now = now
        if self._replay is not None:
            self._catch_up()
        return first, edge

    def _catch_up(self) -> None:
        """Advance the error record's replay by ``CATCH_UP_MINUTES`` buckets at most."""
        replay = self._replay
        assert replay is not None and replay.stop is not None
        self._advance(replay, min(replay.stop, replay.edge + self.catch_up_minutes))
        if replay.edge >= replay.stop:
            self._replay = None
            self._merge_scores()

    def _restart(self, h: LoadHistory, edge: int) -> None:
        """Start over at ``edge`` from the history that exists: the live track there, and a
        replay of the last ``error_days`` before it for the error record."""
        self._owner = h
        for cache in (self._blocks, self._groups, self._plans, self._totals, self._fits):
            cache.clear()
        self._clear_scores()
        self._stats = array("d", bytes(8 * _SLOTS * 2 * _MOMENTS))
        self._hist = array("d", bytes(8 * TAIL_BINS))
        self._spread_sum = self._spread_sq_sum = self._forecast_sum = 0.0
        self._persist_sums = array("d", bytes(8 * 6))
        self._coef = None
        self._forget_fits()
        self._z = None
        self._ref = edge
        self._live = self._start_track(edge)
        known = self._first_known()
        span = math.ceil(self.config.error_days * self._day_b)
        begin = max(edge - span, known + self._day_b) if known is not None else edge
        self._replay = self._start_track(begin, stop=edge) if begin < edge else None

    def _first_known(self) -> int | None:
        """The first bucket the history holds a value for (``None``: none visible)."""
        buf, boff = self._buf, self._boff
        stop = min(len(buf), self._visible - boff)
        for i in range(max(0, stop - (7 * self.config.weeks + 2) * self._day_b), stop):
            if buf[i] == buf[i]:
                return i + boff
        return None

    def _start_track(self, edge: int, stop: int | None = None) -> _Track:
        """A track at ``edge``: its level windows read from the history, its horizon filled."""
        t = _Track(edge - self._recent - 1, len(self._bases), stop)
        self._extend(t, edge + self._far + 1)
        t.edge = edge
        buf, boff, n = self._buf, self._boff, len(self._buf)
        # today's pace: the last ``recent`` settled buckets
        for b in range(edge - self._recent, edge):
            i = b - boff
            y = buf[i] if 0 <= i < n else _NAN
            s = t.seasonal[b - t.base]
            if y == y and s >= 0.0:
                t.pace_actual += y
                t.pace_seasonal += s
                t.pace_count += 1
        # the last whole days and today so far, from daily totals and their sources
        day, _, _, _ = self._block(edge * self._step)
        t.day_end = self._day_first(day + 1)
        start = self._day_first(day)
        t.today_actual, t.today_seasonal, t.today_count = self._range_level(day, start, edge)
        for d in range(day - self._keep_days, day):
            got = self._range_level(d, self._day_first(d), self._day_first(d + 1))
            if got[2] > 0.0:
                t.days.append(got)
        t.days_level = self._days_level(t)
        t.level = self._level(t)
        i = edge - 1 - boff
        y = buf[i] if 0 <= i < n else _NAN
        s = t.seasonal[edge - 1 - t.base]
        if y == y and s >= 0.0:
            t.dev = y - t.level * s
        return t

    def _range_level(self, day: int, lo: int, hi: int) -> tuple[float, float, float]:
        """(actual, seasonal, buckets) over settled buckets [lo, hi) of local ``day``: the
        actual summed in place, the seasonal from the same ranges of the day's sources."""
        buf, boff = self._buf, self._boff
        hi = min(hi, self._visible - self._FRESH)
        if hi <= lo:
            return 0.0, 0.0, 0.0
        y, n = _sum_known(buf, lo - boff, hi - boff)
        if n == 0:
            return 0.0, 0.0, 0.0
        fit = self._fit(day, False)
        total = weight_sum = 0.0
        for back, w, g in zip(fit.backs, fit.weights, fit.growth, strict=True):
            if w <= 0.0:
                continue
            off = round(back / self._step)
            s, m = _sum_known(buf, lo - off - boff, hi - off - boff)
            if m:
                total += w * g * s * n / m
                weight_sum += w
        if weight_sum <= 0.0:
            return 0.0, 0.0, 0.0
        return y, total / weight_sum, float(n)

    # -- walking the settled past -------------------------------------------------------------

    def _advance(self, t: _Track, upto: int) -> None:
        """Settle buckets ``t.edge`` … ``upto - 1``: errors of the forecasts made for them
        (``_learn``), the level's sums, then the forecasts from the new edge (``_look_ahead``);
        the hot path: a few operations a bucket."""
        if t.edge >= upto:
            return
        buf, boff = self._buf, self._boff
        nbuf = len(buf)
        recent = self._recent
        span2 = 2 * self._span
        while t.edge < upto:
            b = t.edge
            k = b - t.base
            i = b - boff
            y = buf[i] if 0 <= i < nbuf else _NAN
            s = t.seasonal[k]
            known = y == y and s >= 0.0
            if recent:  # today's pace: the last ``recent`` buckets
                if known:
                    t.pace_actual += y
                    t.pace_seasonal += s
                    t.pace_count += 1
                o = k - recent
                if o >= 0:
                    so = t.seasonal[o]
                    io = i - recent
                    yo = buf[io] if 0 <= io < nbuf else _NAN
                    if yo == yo and so >= 0.0:
                        t.pace_actual -= yo
                        t.pace_seasonal -= so
                        t.pace_count -= 1
            if b >= t.day_end:
                self._roll_day(t, b)
            if known:
                t.today_actual += y
                t.today_seasonal += s
                t.today_count += 1.0
            if y == y:
                if t.near[k] >= 0.0 or t.far[k] >= 0.0:
                    self._learn(t, k, b, y)
                if t.differing:
                    nb = t.nbases
                    per_base = t.per_base[k * nb : k * nb + nb]
                    if per_base[0] == per_base[0]:
                        self._score(b, t.slot[k] % 24, y, per_base, t.stop is None)
            b += 1
            t.edge = b
            self._look_ahead(t, b, y, s, known)
            if b - t.base > span2:
                self._trim(t, b - recent - 1)

    def _look_ahead(self, t: _Track, b: int, y: float, s: float, known: bool) -> None:
        """At the new edge ``b``: the level, the deviation of the calls in progress, and the
        forecasts for the near and far leads' buckets."""
        t.level = level = self._level(t)
        if known:
            t.dev = y - level * s
        else:
            t.dev *= _DEV_DECAY
        base = t.base
        if len(t.seasonal) <= b + self._far - base:
            self._extend(t, b + self._far + 1)
        j = b + self._lead_near - base
        s_near = t.seasonal[j]
        if s_near >= 0.0:
            t.near[j] = level * s_near
            t.near_dev[j] = t.dev
        j = b + self._lead_far - base
        s_far = t.seasonal[j]
        if s_far >= 0.0:
            t.far[j] = level * s_far
            t.far_dev[j] = t.dev

    def _learn(self, t: _Track, k: int, b: int, y: float) -> None:
        """The load ``y`` of bucket ``b`` against the forecasts made for it at the near and far
        leads: each hour's error moments, the persistence of the deviation, and (far lead) the
        standardised error's tail and the spread it carries."""
        x = (b - self._ref) / self._error_half_life
        w = 2.0**x if x <= 30.0 else self._weight(b)
        coef = self._coef
        c_near, c_far = (
            coef[1] if coef is not None and b - coef[0] < self._refit else self._persist(b)
        )
        slot = t.slot[k]
        j = slot * 6
        stats, pers = self._stats, self._persist_sums
        limit, smooth, norm = self._limit, self._smooth, self._norm
        near = t.near[k]
        if near >= 0.0:
            dev = t.near_dev[k]
            f = max(0.0, near + c_near * dev)
            if y <= limit * (f + smooth):
                r = (y - f) / math.sqrt(f + norm)
                stats[j] += w
                stats[j + 1] += w * r
                stats[j + 2] += w * r * r
                pers[0] += w * dev * (y - near)
                pers[1] += w * dev * dev
                pers[2] += w
        far = t.far[k]
        if far < 0.0:
            return
        dev = t.far_dev[k]
        f = max(0.0, far + c_far * dev)
        if y > limit * (f + smooth):
            return
        root = math.sqrt(f + norm)
        r = (y - f) / root
        stats[j + 3] += w
        stats[j + 4] += w * r
        stats[j + 5] += w * r * r
        pers[3] += w * dev * (y - far)
        pers[4] += w * dev * dev
        pers[5] += w
        if b - self._params_at[slot] < self._refit:
            mean = self._params[slot * 4 + 2]
            spread = self._params[slot * 4 + 3]
        else:
            mean, spread = self._moments(b, slot)[1]
        scale = spread * root  # this minute's spread in calls
        self._hist[tail_bin((r - mean) / spread)] += w * scale
        self._spread_sum += w * scale
        self._spread_sq_sum += w * scale * scale
        self._forecast_sum += w * f

    def _roll_day(self, t: _Track, b: int) -> None:
        """A local day ended: keep its level sums among the last ``recent_days``."""
        if t.today_count > 0.0 and self._keep_days:
            t.days.append((t.today_actual, t.today_seasonal, t.today_count))
            if len(t.days) > self._keep_days:
                del t.days[0]
        t.days_level = self._days_level(t)
        t.today_actual = t.today_seasonal = t.today_count = 0.0
        day, _, _, _ = self._block(b * self._step)
        t.day_end = self._day_first(day + 1)

    def _days_level(self, t: _Track) -> float:
        """The last whole days against their forecast, shrunk towards 1."""
        if not t.days:
            return 1.0
        y = s = 0.0
        for dy, ds, _ in t.days:
            y += dy
            s += ds
        kappa = self._kappa
        return (y + kappa) / (s + kappa) if s + kappa > 0.0 else 1.0

    def _level(self, t: _Track) -> float:
        """Level factor at the track's edge (see the module docstring, step 4): the last whole
        days against their forecast, then today so far against that, each ratio shrunk
        towards 1 by ``level_prior_call_minutes`` of evidence, then today's pace."""
        kappa = self._kappa
        level = t.days_level
        if self._today and t.today_count:
            den = level * t.today_seasonal + kappa
            if den > 0.0:
                level *= (t.today_actual + kappa) / den
        if t.pace_count:
            c = self._smooth
            level *= (t.pace_actual / t.pace_count + c) / (
                level * t.pace_seasonal / t.pace_count + c
            )
        if level < self._adjust_min:
            return self._adjust_min
        return self._adjust_max if level > self._adjust_max else level

    def _extend(self, t: _Track, end: int) -> None:
        """Seasonal values (and slots, weeks) for buckets up to ``end`` (exclusive)."""
        b = t.base + len(t.seasonal)
        seasonal = self._seasonal
        sea, sp, cnt, slots, cand = t.seasonal, t.planned, t.weeks, t.slot, t.per_base
        fs, fl, ds, dl = t.near, t.far, t.near_dev, t.far_dev
        while b < end:
            value, n, per_base, slot = seasonal(b)
            sea.append(value)
            if per_base is not None:  # around a DST change: cover every base in the running
                keep = self._kept(slot % 24)
                sp.append(max(v for v, k in zip(per_base, keep, strict=True) if k))
                cand.extend(per_base)
                t.differing += 1
            else:
                sp.append(value)
                cand.extend(self._agree)
            cnt.append(n)
            slots.append(slot)
            fs.append(-1.0)
            fl.append(-1.0)
            ds.append(0.0)
            dl.append(0.0)
            b += 1

    def _trim(self, t: _Track, keep_from: int) -> None:
        drop = keep_from - t.base
        if drop <= 0:
            return
        for a in (t.seasonal, t.planned, t.weeks, t.slot, t.near, t.far, t.near_dev, t.far_dev):
            del a[:drop]
        t.base = keep_from
        n = t.nbases
        if t.differing:
            t.differing -= sum(1 for j in range(0, drop * n, n) if t.per_base[j] == t.per_base[j])
        del t.per_base[: drop * n]
        self._forget()

    def _forget(self) -> None:
        """Drop what no track will read again: the caches hold the blocks from the oldest
        track's level window to the horizon, the fits of the days around them and the daily
        totals of the weeks blended; bounded by the horizon and the seasons, not by counts."""
        bases = [t.base for t in (self._live, self._replay) if t is not None]
        if not bases:
            return
        oldest = min(bases)
        block = int(oldest * self._step // 900.0) - 1
        for cache in (self._blocks, self._plans):
            for key in [k for k in cache if k < block]:
                del cache[key]
        for gkey in [k for k in self._groups if k[0] < block]:
            del self._groups[gkey]
        day = self._block(oldest * self._step)[0]
        for fkey in [k for k in self._fits if k[0] < day - 1]:
            del self._fits[fkey]
        first_day = day - 7 * self.config.weeks - 2
        for cache2 in (self._totals, self._starts):
            for d in [k for k in cache2 if k < first_day]:
                del cache2[d]

    # -- the error record ---------------------------------------------------------------------

    def _weight(self, b: int) -> float:
        """Weight of a sample at bucket ``b`` relative to ``_ref`` (rescaled when it grows)."""
        x = (b - self._ref) / self._error_half_life
        if x > 30.0:  # move the reference: every sum scales down by the same factor
            scale = 2.0 ** (-x)
            for a in (self._stats, self._hist, self._persist_sums):
                for j in range(len(a)):
                    a[j] *= scale
            self._spread_sum *= scale
            self._spread_sq_sum *= scale
            self._forecast_sum *= scale
            self._ref = b
            for j in range(_SLOTS):  # moments are refitted (the sums' scale changed)
                self._params_at[j] = _NEVER
            self._coef = None
            x = 0.0
        return float(2.0**x)

    def _persist(self, b: int) -> tuple[float, float]:
        """The share of the deviation at the edge still there at the near and far leads: the
        least-squares slope of what remained on what was seen, with a day of pseudo-samples at
        the meetings' persistence (``forecasting.persistence``); refreshed every
        ``refit_minutes``."""
        found = self._coef
        refit = self.config.refit_minutes * 60.0 / self._step
        if found is not None and b - found[0] < refit:
            return found[1]
        pr = self._persist_sums
        prior_n = self._day_b * 2.0 ** ((b - self._ref) / self._error_half_life)
        out = []
        for lead, rho in ((0, self._rho_near), (1, self._rho_far)):
            sxy, sxx, sw = pr[lead * 3], pr[lead * 3 + 1], pr[lead * 3 + 2]
            v = sxx / sw if sw > 0.0 else 1.0
            c = (sxy + prior_n * v * rho) / (sxx + prior_n * v) if v > 0.0 else rho
            out.append(min(1.5, max(0.0, c)))
        if not self.config.persistence:
            out = [0.0, 0.0]
        coef = (out[0], out[1])
        self._coef = (b, coef)
        h = self._horizon
        step = (coef[1] - coef[0]) / (h - 1) if h > 1 else 0.0
        near = [coef[0] + step * j for j in range(h - 1)]
        self._rho = near + [coef[1]] * (self._hold - h + 1)
        return coef

    def _forget_fits(self) -> None:
        """Every slot's error moments and headroom are refitted at their next use."""
        for j in range(_SLOTS):
            self._params_at[j] = _NEVER
            self._heads_at[j] = _NEVER

    def _clear_scores(self) -> None:
        n = 24 * len(self._bases)
        self._scores = array("d", bytes(8 * n))
        self._scored = array("q", [-1] * 24)
        # the replay's (the hours before the live track's first) until it is merged
        self._early_scores = array("d", bytes(8 * n))
        self._early_scored = array("q", [-1] * 24)

    def _merge_scores(self) -> None:
        """The replay is done: its scores, decayed to the live track's, join them."""
        half_life = self._HALF_LIFE_DAYS * DAY_SECONDS / self._step
        n = len(self._bases)
        for hour in range(24):
            early = self._early_scored[hour]
            if early < 0:
                continue
            last = self._scored[hour]
            decay = 0.5 ** ((last - early) / half_life) if last >= 0 else 1.0
            for j in range(hour * n, hour * n + n):
                self._scores[j] += self._early_scores[j] * decay
            if last < 0:
                self._scored[hour] = early

    def _moments(self, b: int, slot: int) -> tuple[tuple[float, float], tuple[float, float]]:
        """(mean, spread) of the normalised error at the near and far leads for ``slot``: its
        hour and the neighbouring ones (half weight), shrunk to the prior; refreshed every
        ``refit_minutes``."""
        p = self._params
        j0 = slot * 4
        if b - self._params_at[slot] < self._refit:
            return (p[j0], p[j0 + 1]), (p[j0 + 2], p[j0 + 3])
        cfg = self.config
        st = self._stats
        hour, off = slot % 24, slot // 24
        now_w = 2.0 ** ((b - self._ref) / self._error_half_life)
        prior = cfg.min_error_days * 3600.0 / self._step * now_w
        for lead in (0, 1):
            w = m1 = m2 = 0.0
            for dh, share in ((-1, 0.5), (0, 1.0), (1, 0.5)):
                j = ((((hour + dh) % 24) + 24 * off) * 2 + lead) * _MOMENTS
                w += share * st[j]
                m1 += share * st[j + 1]
                m2 += share * st[j + 2]
            total = w + prior
            mean = m1 / total
            var = (m2 + prior * cfg.prior_error**2) / total - mean * mean
            p[j0 + 2 * lead] = mean
            p[j0 + 2 * lead + 1] = math.sqrt(max(var, 1e-6))
        self._params_at[slot] = b
        return (p[j0], p[j0 + 1]), (p[j0 + 2], p[j0 + 3])

    def _quantile_z(self, b: int) -> tuple[float, float]:
        """(z, promised quantile) of the standardised error to plan for, refreshed every
        ``refit_minutes``: with ``error_quantile`` its quantile of the tail; otherwise the ``z``
        at which each minute's expected shortfall, with the plan rounded up to whole instances
        (a slack spread evenly over one instance), sums to ``target_unserved`` of the forecast
        calls: ``Σσ × E[(u − z − slack)⁺] = target × Σ forecast`` over the error record."""
        found = self._z
        refit = self._refit
        if found is not None and b - found[0] < refit:
            return found[1], found[2]
        cfg = self.config
        now_w = 2.0 ** ((b - self._ref) / self._error_half_life)
        measured = self._persist_sums[5]  # Σ w of the far lead's errors
        typical = self._spread_sum / measured if measured > 0.0 else 1.0  # mean spread in calls
        prior = cfg.min_error_days * 24 * 3600.0 / self._step * now_w * typical
        tail = Tail(self._hist, prior)
        if cfg.error_quantile is not None:
            q = cfg.error_quantile
            z = tail.quantile(q)
        else:
            if self._forecast_sum > 0.0 and self._spread_sum > 0.0:
                scale = self._spread_sum / self._forecast_sum
                spread = (
                    self._spread_sq_sum / self._spread_sum
                )  # the spread that carries the shortfall
            else:  # nothing measured yet: the prior spread at a typical 50 calls
                spread = cfg.prior_error * math.sqrt(50.0 + self._norm)
                scale = spread / 50.0
            z = tail.for_shortfall(cfg.target_unserved / scale, self._per / spread)
            q = 1.0 - tail.exceedance(z)
        self._z = (b, z, q)
        self._z_stamp += 1
        return z, q

    def _headroom(self, b: int, slot: int, z: float) -> tuple[float, float]:
        """mean + z × spread of the normalised error for ``slot`` at the near and far leads
        (never below 0); refreshed every ``refit_minutes`` and with the quantile."""
        hd = self._heads
        if self._heads_z[slot] == self._z_stamp and b - self._heads_at[slot] < self._refit:
            return hd[2 * slot], hd[2 * slot + 1]
        (mn, sn), (mf, sf) = self._moments(b, slot)
        a0 = hd[2 * slot] = max(0.0, mn + z * sn)
        a1 = hd[2 * slot + 1] = max(0.0, mf + z * sf)
        self._heads_at[slot] = b
        self._heads_z[slot] = self._z_stamp
        return a0, a1

    def _head_row(self, b: int, slot: int, z: float) -> list[float]:
        """Per bucket of the plan (near to far lead, then the hold look-ahead at the far
        lead's): the headroom of ``slot`` interpolated between the leads (the last row made
        is kept: consecutive plans mostly read the same hour's)."""
        a0, a1 = self._headroom(b, slot, z)
        last = self._row
        if last is not None and last[0] == a0 and last[1] == a1:
            return last[2]
        other = self._row2
        if other is not None and other[0] == a0 and other[1] == a1:
            self._row, self._row2 = other, last
            return other[2]
        h = self._horizon
        step = (a1 - a0) / (h - 1) if h > 1 else 0.0
        row = [a0 + step * j for j in range(h - 1)] + [a1] * (self._hold - h + 1)
        self._row, self._row2 = (a0, a1, row), last
        return row

    # -- seasonal forecast --------------------------------------------------------------------

    def _block(self, t: float) -> tuple[int, int, bool, bool]:
        """(local day ordinal, local hour, afternoon of a half day?, day off?) for the 15
        minutes holding ``t`` in the hinted zone (every zone's offset is a multiple of them)."""
        key = math.floor(t / 900.0)
        found = self._blocks.get(key)
        if found is None:
            day, hour, weekday = local_day(self._hint, key * 900.0)
            pm = hour >= self._half_from
            off = weekday >= 5 or self._off(day, pm)
            found = (day, hour, pm, off)
            if len(self._blocks) > 64:
                self._blocks.clear()
            self._blocks[key] = found
        return found

    def _day_first(self, day: int) -> int:
        """First bucket of local ``day``."""
        found = self._starts.get(day)
        if found is None:
            found = math.ceil(round(day_start(self._hint, day) / self._step, 9))
            if len(self._starts) > 64:
                self._starts.clear()
            self._starts[day] = found
        return found

    def _off(self, day: int, pm: bool) -> bool:
        cal = self._calendar
        if cal is None:
            return False
        return cal.is_off(date.fromordinal(day), self._half_from if pm else 0)

    def _total(self, day: int) -> tuple[float, float]:
        """(call-minutes scaled to the whole day, share of buckets known) of local ``day``;
        (0, 0) while the day is not wholly settled (read in place)."""
        found = self._totals.get(day)
        if found is not None:
            return found
        i = self._day_first(day)
        j = self._day_first(day + 1)
        if j > self._visible - self._FRESH or j <= i:
            return 0.0, 0.0
        total, n = _sum_known(self._buf, i - self._boff, j - self._boff)
        share = n / (j - i)
        found = (total / share * self._step / 60.0 if n else 0.0, share)
        self._totals[day] = found
        return found

    def _fit(self, day: int, pm: bool) -> _DayFit:
        """Sources, weights and scale factors for local ``day`` (its afternoon when ``pm``).

        The same weekday of the last ``weeks`` weeks (a holiday: the last Sundays), and with
        ``pool_days`` the other days of the same kind (working day, day off) of the last week.
        Each source is scaled to the day's expected total, so a source day's own busy or quiet
        level is not replayed, only its shape: the expected total is the recency-weighted mean
        of the same weekday's totals, each grown to today. Without an earlier week the recent
        days of the same kind stand in unscaled (the level scales them)."""
        found = self._fits.get((day, pm))
        if found is not None:
            return found
        cfg = self.config
        weeks = cfg.weeks
        smooth_day = self._smooth * 60.0  # an instance-hour of call-minutes
        rate = self._growth(day)
        off = self._off(day, pm)
        lead = date.fromordinal(day).weekday() + 1 if off else 0
        sources = [day - lead - 7 * (w - 1) if off else day - 7 * w for w in range(1, weeks + 1)]
        totals: list[float | None] = []
        whole: list[bool] = []  # a day wholly known: its total may scale the others
        for d in sources:
            total, share = self._total(d)
            totals.append(None if share <= 0.0 or self._off(d, pm) else total)
            whole.append(share >= 0.9)
        outs = [False] * weeks
        scaled = [
            None if t is None else t * rate ** ((day - d) / 7.0)
            for t, d in zip(totals, sources, strict=True)
        ]
        if cfg.day_outlier_ratio is not None:
            outs = day_outliers(scaled, cfg.day_outlier_ratio, smooth_day, cfg.day_low_ratio)
        weights = [
            0.0 if t is None or out else cfg.recency_decay**w
            for w, (t, out) in enumerate(zip(totals, outs, strict=True))
        ]
        growth = [rate ** ((day - d) / 7.0) for d in sources]
        backs = [(day - d) * DAY_SECONDS for d in sources]
        weekly = sum(1 for w in weights if w > 0.0)
        expected = 0.0
        known = [
            (w, g)
            for w, g, ok in zip(weights, scaled, whole, strict=True)
            if w > 0.0 and g is not None and ok
        ]
        if known:
            expected = sum(w * g for w, g in known) / sum(w for w, _ in known)
        pool = cfg.pool_days
        if pool > 0.0 and not off and not pm:
            self._pool_days(day, expected, backs, weights, growth)
        if expected > 0.0 and pool > 0.0 and not off and not pm:
            for k, t in enumerate(totals):  # the same weekday: its shape at today's total
                if weights[k] > 0.0 and t and whole[k]:
                    growth[k] = expected / t
        fit = _DayFit(
            backs=tuple(backs),
            weights=tuple(weights),
            growth=tuple(growth),
            rate=rate,
            daily=weekly == 0,
            weeks=len(sources),
        )
        if not any(fit.weights):
            fit = self._daily_fit(day, pm)
        if len(self._fits) > 8:
            self._fits.clear()
            self._groups.clear()
            self._plans.clear()
        self._fits[(day, pm)] = fit
        return fit

    def _growth(self, day: int) -> float:
        """Week-over-week growth from the daily totals of the ``weeks`` weeks before ``day``
        (holidays, partly known days and outlier days left out)."""
        cfg = self.config
        weeks = cfg.weeks
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
            smooth_day = self._smooth * 60.0
            for j in range(7):
                column = [grid[k][j] for k in range(weeks)]
                flags = day_outliers(column, cfg.day_outlier_ratio, smooth_day, cfg.day_low_ratio)
                for k, out in enumerate(flags):
                    if out:
                        grid[k][j] = None
        return growth_per_week(grid, low=cfg.growth_min, high=cfg.growth_max)

    def _pool_days(
        self,
        day: int,
        expected: float,
        backs: list[float],
        weights: list[float],
        growth: list[float],
    ) -> None:
        """Add the last week's other days of ``day``'s kind as sources, each at ``pool_days``
        weight and scaled to the ``expected`` total."""
        cfg = self.config
        kind = self._kind(day)
        for back in range(1, 7):
            d = day - back
            if (day - d) % 7 == 0 or self._kind(d) != kind:
                continue
            total, share = self._total(d)
            if share < 0.9 or total <= 0.0:
                continue
            backs.append(back * DAY_SECONDS)
            weights.append(cfg.pool_days * cfg.recency_decay ** (back / 7.0))
            growth.append(expected / total if expected > 0.0 else 1.0)

    def _daily_fit(self, day: int, pm: bool) -> _DayFit:
        """No earlier week to go by: the recent days of the same kind (working day or day
        off) within the week, the latest weighing most; the level scales them to today."""
        kind = self._kind(day) or self._off(day, pm)
        backs: list[float] = []
        weights: list[float] = []
        for back in range(1, 7):
            d = day - back
            if (self._kind(d) or self._off(d, pm)) != kind:
                continue
            if self._total(d)[1] >= 0.9:
                backs.append(back * DAY_SECONDS)
                weights.append(0.5 ** len(weights))
        return _DayFit(tuple(backs), tuple(weights), (1.0,) * len(backs), 1.0, daily=True)

    def _kind(self, day: int) -> bool:
        """Whether local ``day`` is a day off (weekend or holiday)."""
        return date.fromordinal(day).weekday() >= 5 or self._off(day, False)

    def _shift_groups(self, block: int, day: int, pm: bool, fit: _DayFit) -> _Groups:
        """The sources of the 15 minutes ``block`` per time base, grouped by where they lie."""
        key = (block, day, pm)
        found = self._groups.get(key)
        if found is None:
            at = block * 900.0
            step = self._step
            by_offsets: dict[tuple[int, ...], list[int]] = {}
            for i, zone in enumerate(self._bases):
                now = _block_offset(zone, at)
                offsets = tuple(
                    round((back - (now - _block_offset(zone, at - back))) / step)
                    for back, weight in zip(fit.backs, fit.weights, strict=True)
                    if weight > 0.0
                )
                by_offsets.setdefault(offsets, []).append(i)
            weights = tuple(w for w in fit.weights if w > 0.0)
            growth = tuple(g for g, w in zip(fit.growth, fit.weights, strict=True) if w > 0.0)
            weekly = 0 if fit.daily else sum(1 for w in fit.weights[: fit.weeks] if w > 0.0)
            found = tuple((o, weights, growth, tuple(ix), weekly) for o, ix in by_offsets.items())
            if len(self._groups) > 32:
                self._groups.clear()
            self._groups[key] = found
        return found

    def _plan_of(self, block: int) -> tuple[int, bool, _Groups, bool]:
        """(local hour, day off?, source groups, daily sources?) of the 15 minutes ``block``."""
        found = self._plans.get(block)
        if found is None:
            day, hour, pm, off = self._block(block * 900.0)
            fit = self._fit(day, pm)
            groups = self._shift_groups(block, day, pm, fit) if any(fit.weights) else ()
            found = (hour, off, groups, fit.daily)
            if len(self._plans) > 32:
                self._plans.clear()
            self._plans[block] = found
        return found

    def _seasonal(self, bucket: int) -> tuple[float, int, tuple[float, ...] | None, int]:
        """(forecast or -1, weeks found, each time base's forecast when they differ, slot)."""
        block = int((bucket + 0.5) * self._step // 900.0)
        found_plan = self._plans.get(block)
        hour, off, groups, daily = found_plan if found_plan is not None else self._plan_of(block)
        slot = hour + 24 if off else hour
        if not groups:
            return -1.0, 0, None, slot
        buf = self._buf
        at = bucket - self._boff
        n = min(len(buf), self._visible - self._boff)
        if len(groups) == 1:  # every time base agrees (all but the weeks around a DST change)
            value, weeks = self._blend_sources(buf, at, n, groups[0])
            return value, 0 if daily else weeks, None, slot
        weeks = 0
        values: list[float] = []
        for group in groups:
            value, count = self._blend_sources(buf, at, n, group)
            values.append(value)
            if count > weeks:
                weeks = count
        if daily:
            weeks = 0
        if max(values) - min(values) < 1e-9:
            return values[0], weeks, None, slot
        per_base = [0.0] * len(self._bases)
        for value, group in zip(values, groups, strict=True):
            for i in group[3]:
                per_base[i] = value
        return per_base[self._best(hour)], weeks, tuple(per_base), slot

    def _blend_sources(
        self,
        buf: Sequence[float],
        at: int,
        n: int,
        group: _Group,
    ) -> tuple[float, int]:
        """(blended seasonal value or -1, earlier weeks found) of one group of sources."""
        offsets, weights_all, growth_all, _, weekly = group
        found: list[float] = []
        weights: list[float] = []
        weeks = 0
        for k, off_b in enumerate(offsets):  # a bucket entering the horizon: kept lean
            i = at - off_b
            if 0 <= i < n:
                v = buf[i]
                if v == v:
                    if k < weekly:
                        weeks += 1
                    found.append(v * growth_all[k])
                    weights.append(weights_all[k])
        count = len(found)
        if not count:
            return -1.0, 0
        ratio = self._outlier
        if ratio is not None and count >= 3 and max(found) > ratio * (min(found) + self._smooth):
            found, weights = without_outliers(found, weights, ratio, self._smooth)
        if self._weighted:
            total = sum(map(operator.mul, found, weights))
            weight_sum = sum(weights)
            return (total / weight_sum if weight_sum > 0.0 else -1.0), weeks
        return blend(found, weights, self.config.blend), weeks

    def _hour_scores(self, hour: int) -> array[float] | None:
        """Each time base's error score for local ``hour`` (``None``: none measured yet)."""
        if self._scored[hour] < 0:
            return None
        n = len(self._bases)
        return self._scores[hour * n : hour * n + n]

    def _best(self, hour: int) -> int:
        """The time base with the lowest error score for local ``hour`` (the configured zone
        before any evidence): the forecast's own value, which the level and the errors are
        measured against; the plan covers every base still in the running (``_kept``)."""
        scores = self._hour_scores(hour)
        if scores is None:
            return 0
        return scores.index(min(scores))

    def _kept(self, hour: int) -> tuple[bool, ...]:
        """Time bases still in the running for local ``hour``: error score within an
        instance-hour of call-minutes of the best (all of them before any evidence)."""
        scores = self._hour_scores(hour)
        if scores is None:
            return (True,) * len(self._bases)
        best = min(scores)
        tolerance = self._smooth * 60.0
        return tuple(s <= best + tolerance for s in scores)

    def _score(
        self, b: int, hour: int, actual: float, per_base: Sequence[float], live: bool
    ) -> None:
        """Add each time base's absolute error at bucket ``b`` to its score for ``hour``
        (scores decay with a 14-day half-life); the replay's go apart until it is done."""
        half_life = self._HALF_LIFE_DAYS * DAY_SECONDS / self._step
        n = len(self._bases)
        scores = self._scores if live else self._early_scores
        stamps = self._scored if live else self._early_scored
        last = stamps[hour]
        decay = 0.5 ** ((b - last) / half_life) if last >= 0 else 0.0
        for i, f in enumerate(per_base):
            j = hour * n + i
            scores[j] *= decay
            if f >= 0.0:
                scores[j] += abs(actual - f)
        stamps[hour] = b

    # -- the plan -------------------------------------------------------------------------------

    def plan(self, now: float, history: LoadHistory, pool: PoolLimits) -> HorizonPlan | None:
        """The plan over the horizon (see the module docstring): the peak forecast, the
        planned calls, the instances, the weeks behind it, its quantile and the instances to
        keep; ``None`` without a forecast. The plan's
        seasonal values are fixed as buckets enter the horizon, so a call costs one pass over
        the horizon."""
        first, edge = self._bind(history, now, pool)
        t = self._live
        if t is None:
            return None
        lo = first - t.base
        n = self._hold
        h = self._horizon
        if lo < 0 or edge != t.edge:
            return None
        if len(t.planned) < lo + n:
            self._extend(t, first + n)
        level, dev = t.level, t.dev
        self._persist(edge)
        points = [
            level * s + r * dev if s >= 0.0 else -1.0
            for s, r in zip(t.planned[lo : lo + n], self._rho, strict=True)
        ]
        peak = max(points) if n == h else max(points[:h])
        if peak < -0.5:
            return None
        peak = peak if peak > 0.0 else 0.0
        cfg = self.config
        weeks = max(t.weeks[lo : lo + h])
        cpi = pool.calls_per_instance
        if cfg.headroom == "utilization":
            per = cpi * cfg.target_utilization
            if cfg.single_week_utilization is not None and weeks <= 1:
                per = cpi * cfg.single_week_utilization
            hold = math.ceil(round(max(points) / per, 9))
            return HorizonPlan(peak, peak, math.ceil(round(peak / per, 9)), weeks, 1.0, hold)
        z, q = self._quantile_z(edge)
        slots = t.slot
        s0, s1 = slots[lo], slots[lo + n - 1]
        heads = self._head_row(edge, s0, z)
        if s1 != s0:  # the plan crosses into another hour: each bucket its own hour's headroom
            seg = slots[lo : lo + n]
            split = seg.index(s1)
            if seg.count(s0) == split and seg.count(s1) == n - split:  # one hour, then the next
                heads = heads[:split] + self._head_row(edge, s1, z)[split:]
            else:
                row = {s0: heads}
                heads = list(heads)
                for j in range(n):
                    sj = seg[j]
                    if sj != s0:
                        other = row.get(sj)
                        if other is None:
                            other = row[sj] = self._head_row(edge, sj, z)
                        heads[j] = other[j]
        c = self._norm
        sqrt = math.sqrt
        uppers = [
            f + a * sqrt(f + c) if f > 0.0 else (a * sqrt(c) if f > -0.5 else -1.0)
            for f, a in zip(points, heads, strict=True)
        ]
        upper = max(uppers) if n == h else max(uppers[:h])
        utilization = cfg.plan_utilization
        if cfg.single_week_utilization is not None and weeks <= 1:
            utilization = min(utilization, cfg.single_week_utilization)
        per = cpi * utilization
        instances = math.ceil(upper / per - 1e-9)
        hold = instances
        if n > h:
            kept = max(uppers[h:])
            if kept > upper:
                hold = math.ceil(kept / per - 1e-9)
        return HorizonPlan(peak, upper, instances, weeks, q, hold)

    def outlook(
        self, *, history: LoadHistory, at: float, now: float, pool: PoolLimits | None = None
    ) -> Outlook | None:
        """The predictive distribution of the minute holding ``at`` as made at ``now``: its
        point forecast, the planned quantile and the instances for it (``None``: no forecast)."""
        limits = pool or _DEFAULT_POOL
        _, edge = self._bind(history, now, limits)
        t = self._live
        assert t is not None
        m = math.floor(at / self._step)
        k = m - edge
        lo = m - t.base
        if 0 <= lo < len(t.seasonal):
            s = t.seasonal[lo]
            slot = t.slot[lo]
        else:
            s, _, _, slot = self._seasonal(m)
        if s < 0.0:
            return None
        self._persist(edge)
        rho = self._rho[min(max(k - self._lead_near, 0), len(self._rho) - 1)]
        f = max(0.0, t.level * s + rho * t.dev)
        cfg = self.config
        cpi = limits.calls_per_instance
        if cfg.headroom == "utilization":
            upper, q = f / cfg.target_utilization, 1.0
            per = cpi
        else:
            z, q = self._quantile_z(edge)
            heads = self._head_row(edge, slot, z)
            j = min(max(k - self._lead_near, 0), len(heads) - 1)
            upper = f + max(0.0, heads[j]) * math.sqrt(f + self._norm)
            per = cpi * cfg.plan_utilization
        return Outlook(f, upper, q, math.ceil(round(upper / per, 9)))

    def state_bytes(self) -> int:
        """Bytes of what this forecaster keeps for its pool: every array, list, dict, tuple and
        number it holds, counted once each (``sys.getsizeof``); the config, the pool's limits
        and the history it reads in place are not its own and are left out."""
        import sys

        seen: set[int] = set()
        skip = {id(self.config), id(self._owner), id(self._buf), id(self._pool)}
        skip.update(id(z) for z in self._bases)
        skip.add(id(self._calendar))
        total = 0
        todo: list[object] = [
            v for k, v in vars(self).items() if k not in ("config", "catch_up_minutes")
        ]
        while todo:
            obj = todo.pop()
            if id(obj) in seen or id(obj) in skip or obj is None:
                continue
            seen.add(id(obj))
            total += sys.getsizeof(obj)
            if isinstance(obj, dict):
                todo.extend(obj.keys())
                todo.extend(obj.values())
            elif isinstance(obj, list | tuple | set):
                todo.extend(obj)
            elif isinstance(obj, _Track | _DayFit):
                todo.extend(getattr(obj, name) for name in obj.__slots__)
        return total


@functools.lru_cache(maxsize=4096)
def _block_offset(zone: tzinfo | None, t: float) -> float:
    """``utc_offset`` at the start of a 15-minute block: the same few instants (the horizon's
    blocks and their sources, a day and weeks back) for every pool of a time base, so they are
    kept process-wide (4,096 entries, well under a megabyte)."""
    return utc_offset(zone, t)


def _sum_known(buf: Sequence[float], i: int, j: int) -> tuple[float, int]:
    """(sum, count) of the known (not NaN) values of ``buf[i:j]``, clamped to the buffer."""
    i = max(i, 0)
    j = min(j, len(buf))
    if j <= i:
        return 0.0, 0
    part = buf[i:j]
    total = sum(part)
    if total == total:
        return total, j - i
    known = [v for v in part if v == v]
    return sum(known), len(known)
