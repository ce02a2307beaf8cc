"""Predictive: scale out ahead of the load earlier weeks say is coming, by a calibrated quantile.

A Teams Connector instance takes up to 20 minutes to boot and meetings start on the hour, so a
policy that reacts to the 09:00 step is 20 minutes late every morning. This one forecasts the
load over the next ``boot_minutes + margin_minutes`` as a *predictive distribution* and asks now
for the instances that cover its ``q`` quantile, where ``q`` follows from the one knob an
operator sets: ``target_unserved``, the share of call-minutes they accept to leave unserved.

**The point forecast** (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, §5.2
"seasonal naïve", §8.3 Holt–Winters' multiplicative level; the pure pieces are in
:mod:`policies.forecasting`, the pool's state and its arithmetic in :mod:`policies.forecaster`,
the settings in :mod:`policies.predictive_config`) for minute *m*, made with the load known up
to the settled edge *e* (``lead = m − e``)::

    forecast(m) = level × seasonal(m) + persistence(lead) × (load(e−1) − level × seasonal(e−1))

1. **seasonal**: the same local minute of the last ``weeks`` weeks, each scaled by the growth
   since then and blended (``weighted``: each week ``recency_decay`` times the weight of the week
   after it; ``max``, ``median``, ``mean``). Left out: weeks whose day was a holiday
   (``holidays``), days an event distorted as a whole (total beyond ``day_outlier_ratio`` of the
   same weekday's reference, either way), and a week's minute above ``outlier_ratio × (median +
   one instance)`` (an unannounced surge is not replayed). A holiday (or a half day's afternoon)
   is planned like the same hours of the last Sundays. Before a week of history exists, the last
   day of the same kind (working day, day off) stands in, so the forecaster measures its errors
   from its second day on (and plans from it with ``min_history_weeks = 0``).
2. **time base found from the data**: "the same minute last week" depends on whose clock the
   users live by. Each candidate time base (UTC, ``timezone``, ``time_bases``: one zone per
   daylight-saving rule) gives its own seasonal value; they differ only in the weeks around a
   DST change. Each is scored against what then happened, per local hour, and the forecast is the
   highest of those within an instance-hour of call-minutes of the best (both alignments until
   the data says which holds; per hour for a pool serving several regions).
3. **trend**: week-over-week growth from the daily totals of the last ``weeks`` weeks (a
   Theil–Sen median of the growth between every pair of weeks over the days both have),
   bounded to [``growth_min``, ``growth_max``], applied to each week back.
4. **level**, learnt beside the seasonal shape as a multiplicative Holt–Winters level: the last
   ``recent_days`` whole days and today so far against their seasonal forecast (a step in the
   base load lifts the next days before the weeks behind the forecast show it), times the last
   ``recent_minutes`` against that (today's pace), each smoothed by one instance of calls and
   their product bounded to [``adjust_min``, ``adjust_max``]: a quieter day lowers the forecast
   as a busier one raises it.
5. **calls in progress persist**: a deviation from the forecast now is meetings in progress;
   ``persistence(lead)`` of them are still running ``lead`` minutes later (the equilibrium
   residual life of 30/60/90/120-minute meetings: 57 % after 23 minutes).

**The predictive distribution.** Every settled minute the forecaster compares the load with the
forecasts it made for that minute at the shortest and the longest lead of its plans (the
horizon's near and far ends), as the normalised error ``r = (load − forecast) ÷ √(forecast +
calls_per_instance)`` (calls are counts: their spread grows with the square root of the level).
Per local hour and day kind (working day; weekend or holiday) and lead it keeps the
exponentially weighted mean and variance of ``r`` (half-life ``error_days / 2``), pooled with the
neighbouring hours and shrunk towards a prior (``prior_error``, weight ``min_error_days`` days of
an hour's minutes): enough samples for a location and a scale. The *shape* of the tail is
shared by every hour: the errors standardised by their hour's location and scale go into one
histogram (mixed with a standard normal until measurements outweigh it), whose quantiles and
expected shortfall are therefore estimated from thousands of minutes, not from one hour's worst
day (a split-conformal score with a local scale). Minutes far above the forecast
(``outlier_ratio``: unannounced events) teach neither.

**One knob.** Planning each minute at the same quantile ``q`` is what minimises capacity for a
given expected unserved total (Lagrange: the marginal instance-minute buys the same expected
service everywhere). ``q`` follows from ``target_unserved``: the ``z`` whose expected shortfall
``E[(u − z)⁺]`` times the pool's measured error scale equals ``target_unserved`` of its
forecast calls (``Σσ·E[(u−z)⁺] = target × Σ forecast`` over the last ``error_days``).
``error_quantile`` fixes ``q`` instead. Whole instances and the boot-time look-ahead round the
plan up, so the realised unserved share is at most the target; ``backtest --sweep
target_unserved=…`` shows the cost of each setting on a trace, ``forecast`` the coverage.

The plan: ``ceil(max over the horizon of (forecast + (mean + z·spread) × √(forecast + cpi))
÷ (calls_per_instance × plan_utilization))``, the spread and mean interpolated between the near
and far leads. It never recommends fewer instances than target tracking would from the current
reading (``target_utilization``); with less than ``min_history_weeks`` of seasonal history it
*is* target tracking; with an unusable metric it still recommends the forecast (a floor the core
never uses to scale in). ``headroom = "utilization"`` plans ``peak ÷ (calls_per_instance ×
target_utilization)`` instead (no error model).

**Memory and speed.** Per pool the policy keeps O(horizon + seasons) numbers in compact arrays:
the seasonal values, forecasts and day kinds of the minutes from the level window to the end of
the horizon, the level's sums (one per recent day), 48 × 2 error moments, the 160-bin tail, the
time bases' scores per hour, the daily totals of the weeks it blends and the fits of the days it
is planning. The pool's history is read in place, never copied. Every replayed minute costs the
same few operations (one seasonal blend as a minute enters the horizon, a few sums, two error
updates): no per-call scans, no caches that grow with time. After a start or a reload the first
call learns what the next plan needs from the history that exists (daily totals, the level's
windows, the horizon), and the error record is rebuilt from the last ``error_days`` of that
history by a replay that advances at most ``CATCH_UP_MINUTES`` a call (until then the prior
errors, which plan more capacity, fill in).
"""

from __future__ import annotations

import math
from typing import ClassVar

from policies.forecaster import WEEK_SECONDS as WEEK_SECONDS
from policies.forecaster import Forecaster, Outlook
from policies.predictive_config import HolidayConfig as HolidayConfig
from policies.predictive_config import PredictiveConfig as PredictiveConfig
from scaler.core.history import LoadHistory
from scaler.core.types import PolicyContext, PoolLimits, Recommendation


class Predictive:
    """Seasonal forecast with a calibrated predictive distribution, never below reactive.

    The policy (its config, the recommendation and its note) over a
    :class:`~policies.forecaster.Forecaster`, which holds the pool's forecasting state.
    """

    name: ClassVar[str] = "predictive"
    Config: ClassVar[type[PredictiveConfig]] = PredictiveConfig

    CATCH_UP_MINUTES: ClassVar[int] = Forecaster.CATCH_UP_MINUTES
    """Buckets of the error record's replay per call after a start or a reload (about 0.3 ms)."""

    def __init__(self, config: PredictiveConfig | None = None) -> None:
        self.config = config or PredictiveConfig()
        self.forecaster = Forecaster(self.config, self.CATCH_UP_MINUTES)
        """The pool's forecasting state (this policy's only state)."""
        self.lookback_minutes = self.forecaster.lookback_minutes
        """Minutes of the pool's history read: the weeks blended and one more, so that the
        error record's replay after a restart finds earlier weeks behind its first days too."""

    def recommend(self, ctx: PolicyContext) -> Recommendation | None:
        cfg = self.config
        cpi = ctx.pool.calls_per_instance
        per_instance = cpi * cfg.target_utilization
        reactive: int | None = None
        if ctx.calls is not None:
            reactive = math.ceil(ctx.calls / per_instance - 1e-9)
        planned = None
        if ctx.history is not None:
            planned = self.forecaster.plan(ctx.now, ctx.history, ctx.pool)
        weeks = planned.weeks if planned is not None else 0
        usable = planned is not None and weeks >= cfg.min_history_weeks
        if not usable or (
            reactive is not None and planned is not None and reactive >= planned.instances
        ):
            if reactive is None or ctx.calls is None:
                return None
            ratio = None
            if ctx.current > 0:
                ratio = ctx.calls / (ctx.current * per_instance)
            why = "reactive" if usable else f"reactive (history: {weeks} weeks)"
            return Recommendation(desired=reactive, utilization_ratio=ratio, note=why)
        assert planned is not None
        instances = planned.instances
        if planned.hold > instances:  # needed again within the hold look-ahead: keep, never add
            instances = max(instances, min(ctx.current, planned.hold))
        ratio = planned.upper / (ctx.current * cpi) if ctx.current > 0 else None
        if cfg.headroom == "error-quantile":
            note = "forecast %.0f calls, q%.4g plan %.0f" % (  # noqa: UP031
                planned.peak,
                planned.quantile,
                planned.upper,
            )
        else:
            note = "forecast %.0f calls" % planned.peak  # noqa: UP031
        return Recommendation(desired=instances, utilization_ratio=ratio, note=note)

    # -- what the forecast command reads --------------------------------------------------------

    def forecast(
        self, *, history: LoadHistory, at: float, now: float, pool: PoolLimits | None = None
    ) -> float | None:
        """The point forecast (calls) for the minute holding ``at``, as made at ``now``.

        ``history`` must be cut as it was visible at ``now`` (``visible_until`` = now − metric
        lag); ``pool`` gives ``boot_minutes`` and ``calls_per_instance`` (default: 20 and 15).
        ``None`` when no earlier day covers ``at``. Calls in time order reuse the state.
        """
        found = self.outlook(history=history, at=at, now=now, pool=pool)
        return None if found is None else found.forecast

    def outlook(
        self, *, history: LoadHistory, at: float, now: float, pool: PoolLimits | None = None
    ) -> Outlook | None:
        """The predictive distribution of the minute holding ``at`` as made at ``now``: its
        point forecast, the planned quantile and the instances for it (``None``: no forecast)."""
        return self.forecaster.outlook(history=history, at=at, now=now, pool=pool)

    def state_bytes(self) -> int:
        """Bytes of what this policy keeps for its pool (its forecaster's state; the config,
        the pool's limits and the history it reads in place are not its own)."""
        return self.forecaster.state_bytes()
