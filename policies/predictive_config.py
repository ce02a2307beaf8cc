"""The predictive policy's settings (``[[pools.policies]] type = "predictive"``).

Apart from :mod:`policies.predictive` so that the policy and its pure
:class:`~policies.forecaster.Forecaster` both read them, one way.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policies.forecasting import Blend, check_country
from policies.zones import TimeZoneName


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

    target_unserved: float = Field(default=1e-4, gt=0.0, le=0.1)
    """Share of call-minutes the operator accepts to leave unserved (1e-4: 0.01 %); the planned
    quantile follows from it and the pool's measured error."""
    error_quantile: float | None = Field(default=None, ge=0.5, lt=1.0)
    """A fixed quantile of the predictive distribution to plan for, instead of the one
    ``target_unserved`` gives; empty: from ``target_unserved``."""
    target_utilization: float = Field(default=0.8, gt=0.0, le=1.0)
    """Share of ``calls_per_instance`` of the reactive floor (and of ``headroom =
    "utilization"``)."""
    boot_minutes: float | None = Field(default=None, ge=0.0, le=240.0)
    """Look-ahead before the margin; empty: the pool's ``boot_minutes``."""
    margin_minutes: float = Field(default=1.0, ge=0.0, le=240.0)
    """Extra look-ahead beyond the boot time (a tick: the next tick can ask for more)."""
    hold_minutes: float = Field(default=0.0, ge=0.0, le=240.0)
    """Keep the instances the plan needs again within this many minutes (from now; beyond the
    boot time + margin): a removed instance drains, billed until its last call ends, so giving
    it up to ask for another soon pays twice. Never adds an instance (0: off)."""
    weeks: int = Field(default=4, ge=1, le=5)
    """Seasonal weeks blended."""
    blend: Blend = "weighted"
    """``weighted`` (recent weeks more), ``max`` (the busiest week), ``median``, ``mean``."""
    recency_decay: float = Field(default=0.9, gt=0.0, le=1.0)
    """``weighted`` blend: weight of a week relative to the week after it."""
    outlier_ratio: float | None = Field(default=1.5, gt=1.0, le=100.0)
    """Leave out a week's minute above this many times the weeks' median (+ one instance of
    calls), and learn no error from minutes this far above the forecast; empty: keep all."""
    day_outlier_ratio: float | None = Field(default=1.5, gt=1.0, le=100.0)
    """Leave out a whole day whose total is above this factor of the same weekday's reference
    (the second-largest of the weeks, + an instance-hour); empty: keep every day."""
    day_low_ratio: float = Field(default=1.25, gt=1.0, le=100.0)
    """…and a day below the reference ÷ this factor (− an instance-hour)."""
    growth_min: float = Field(default=0.95, gt=0.0, le=1.0)
    """Lowest week-over-week growth factor extrapolated (1: never a decline)."""
    growth_max: float = Field(default=1.25, ge=1.0, le=3.0)
    """Highest week-over-week growth factor extrapolated (1: no growth)."""
    pool_days: float = Field(default=0.5, ge=0.0, le=1.0)
    """Weight of each other working day of the last week beside the same weekday (its shape at
    today's expected total); 0: the same weekday alone."""
    single_week_utilization: float | None = Field(default=None, gt=0.0, le=1.0)
    """Plan at this share of ``calls_per_instance`` (at most ``plan_utilization``) while the
    forecast rests on one week alone; empty: as with more weeks."""
    min_history_weeks: int = Field(default=1, ge=0, le=5)
    """Below this many weeks of seasonal history at the horizon, act as target tracking (0:
    plan from the last day of the same kind while no week exists)."""
    recent_minutes: int = Field(default=0, ge=0, le=720)
    """Window of today's pace in the level, smoothed by one instance of calls (0: none; today
    so far is in the level anyway)."""
    recent_days: float = Field(default=1.0, ge=0.0, le=7.0)
    """Whole days (rounded up) behind the level besides today so far (0: today alone)."""
    today_level: bool = True
    """Scale the forecast by today so far against its forecast (shrunk as below)."""
    level_prior_call_minutes: float = Field(default=20000.0, ge=0.0, le=1e7)
    """Evidence (call-minutes) a day's level needs to move halfway from the forecast: the mean
    meeting length over the day-to-day spread squared (53 min ÷ 0.05² ≈ 20,000): less noise in
    a busier pool's level, no chasing a quiet morning's few calls."""
    adjust_min: float = Field(default=0.5, gt=0.0, le=1.0)
    """Lowest level factor (1: the level never lowers the seasonal forecast)."""
    adjust_max: float = Field(default=1.5, ge=1.0, le=10.0)
    """Highest level factor."""
    persistence: bool = True
    """Carry the deviation of the calls in progress into the forecast as meetings end."""
    timezone: TimeZoneName | None = None
    """IANA zone of the pool's users as the operator believes: the local day for holidays, fits
    and error slots, and one candidate time base; empty: UTC."""
    time_bases: tuple[TimeZoneName, ...] = (
        "UTC",
        "Europe/London",
        "America/New_York",
        "Australia/Sydney",
    )
    """Candidate time bases besides ``timezone`` (one per daylight-saving rule is enough);
    empty: ``timezone`` alone."""
    headroom: Literal["error-quantile", "utilization"] = "error-quantile"
    """``error-quantile``: the calibrated predictive distribution; ``utilization``: plan the
    forecast at ``target_utilization``."""
    error_days: int = Field(default=14, ge=1, le=35)
    """Span of the error record: errors weigh half after ``error_days / 2`` days."""
    min_error_days: float = Field(default=1.0, ge=0.0, le=35.0)
    """Weight of the prior error, in days of one hour's minutes (measured errors outweigh it
    after that long)."""
    prior_error: float = Field(default=2.0, gt=0.0, le=20.0)
    """Spread of the normalised error assumed before any is measured (√2 for two Poisson
    counts, more for the day-to-day level)."""
    plan_utilization: float = Field(default=1.0, gt=0.0, le=1.0)
    """Share of ``calls_per_instance`` the planned quantile is planned at."""
    refit_minutes: int = Field(default=60, ge=1, le=1440)
    """How often the quantile and each hour's error moments are recomputed."""
    holidays: HolidayConfig | None = None
    """``{country, subdivision, dates, half_days, half_day_from = 12}``: public holidays from the
    ``holidays`` package plus your own days."""

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
