"""Schedule: instance floors (and optional caps) by time of day, like Pexip's scheduled scaling.

Profiles are either **recurring** (``days`` of the week with ``from``/``to`` local times) or
**fixed** (one ``date``, optionally with ``from``/``to``, or a ``start``/``end`` pair for an
all-hands). At any instant the active profiles of the highest precedence decide: fixed over
recurring over the schedule's default. Each profile may start early by ``minutes_in_advance``
(a pre-warm lead for instances that take up to 20 minutes to boot).

Local times are turned into UTC with ``zoneinfo``, so a 08:00 London profile starts at 07:00Z in
summer and at 08:00Z in winter, and the days of the week are the local ones. Computing local time
is pure (the tz database is data), so the policy stays a pure function of ``ctx.now``.

How the result combines with other policies:

* ``min`` is a **floor**: the policy recommends it, and since the core takes the highest
  recommendation, reactive policies can always go above it. It needs no metric, so it also holds
  (and pre-warms) while the metric is stale or missing.
* ``max`` is a **cap on the pool** while the profile is active, like the ``max`` of an Azure
  autoscale profile: it is returned as ``Recommendation.ceiling`` and the core applies it together
  with the pool's own ``max`` (never below the pool's ``min``; with unusable metrics it only stops
  a rise, it never forces a scale-in). A cap is the operator's explicit choice of cost over service.

Within one precedence level, overlapping active profiles combine generously: the highest ``min``
and the highest ``max`` (a profile without ``max`` means no cap). A profile that leaves ``min`` or
``max`` out takes the schedule's ``default_min`` / ``default_max``. The floor never exceeds the cap.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scaler.core.types import PolicyContext, Recommendation

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_SHORTHANDS: dict[str, tuple[Day, ...]] = {
    "weekdays": DAYS[:5],
    "weekend": DAYS[5:],
    "all": DAYS,
}

FIXED, RECURRING, DEFAULT = 2, 1, 0
"""Precedence levels: higher wins."""

_DAY_SECONDS = 86400.0


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _minutes(value: Any, *, allow_24: bool) -> int:
    """A local time of day as minutes after midnight; ``"24:00"`` (end of day) only for ``to``."""
    if isinstance(value, dt.time):
        if value.second or value.microsecond:
            raise ValueError("must be a whole minute (HH:MM)")
        return value.hour * 60 + value.minute
    if isinstance(value, str):
        parts = value.strip().split(":")
        if len(parts) in (2, 3) and all(p.isdigit() for p in parts):
            h, m = int(parts[0]), int(parts[1])
            if len(parts) == 3 and int(parts[2]) != 0:
                raise ValueError("must be a whole minute (HH:MM)")
            if (h == 24 and m == 0 and allow_24) or (0 <= h < 24 and 0 <= m < 60):
                return h * 60 + m
    end = ' or "24:00"' if allow_24 else ""
    raise ValueError(f'must be a local time "HH:MM" (00:00-23:59{end})')


class Profile(BaseModel):
    """One profile of a schedule (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = ""
    """Shown in the decision's note; empty: ``profiles[i]``."""
    days: tuple[Day, ...] | None = None
    """Recurring: local days of the week the window *starts* on (``mon``…``sun``, or the
    shorthands ``weekdays``, ``weekend``, ``all``)."""
    date: dt.date | None = None
    """Fixed: one local date (the whole day, or ``from``/``to`` on it)."""
    start: dt.datetime | None = None
    """Fixed: first instant (local to ``timezone`` unless it carries an offset)."""
    end: dt.datetime | None = None
    """Fixed: instant the profile ends (exclusive)."""
    from_minute: int | None = Field(default=None, alias="from")
    """Local start time, minutes after midnight (written ``from = "08:00"``)."""
    to_minute: int | None = Field(default=None, alias="to")
    """Local end time (exclusive); earlier than ``from`` means the window ends the next day."""
    timezone: str | None = None
    """IANA time zone; empty: the schedule's ``timezone``."""
    min: int | None = Field(default=None, ge=0, le=10000)
    max: int | None = Field(default=None, ge=0, le=10000)
    minutes_in_advance: int = Field(default=0, ge=0, le=1440)
    """Pre-warm lead: the profile applies this many minutes before its start."""

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if isinstance(v, list | tuple):
            out: list[Any] = []
            for item in v:
                key = item.lower() if isinstance(item, str) else item
                out.extend(_DAY_SHORTHANDS.get(key, (key,)))
            return tuple(dict.fromkeys(out))
        return v

    @field_validator("from_minute", mode="before")
    @classmethod
    def _from(cls, v: Any) -> int | None:
        return None if v is None else _minutes(v, allow_24=False)

    @field_validator("to_minute", mode="before")
    @classmethod
    def _to(cls, v: Any) -> int | None:
        return None if v is None else _minutes(v, allow_24=True)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str | None) -> str | None:
        if v is not None:
            _zone(v)
        return v

    @model_validator(mode="after")
    def _shape(self) -> Profile:
        kinds = [k for k, v in (("days", self.days), ("date", self.date)) if v is not None]
        if self.start is not None or self.end is not None:
            kinds.append("start/end")
        if len(kinds) != 1:
            raise ValueError(
                "needs exactly one of 'days' (recurring), 'date' or 'start'/'end' (fixed)"
                + (f"; has {', '.join(kinds)}" if kinds else "")
            )
        if self.min is None and self.max is None:
            raise ValueError("needs 'min' and/or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        if kinds[0] == "start/end":
            if self.start is None or self.end is None:
                raise ValueError("'start' and 'end' go together")
            if self.from_minute is not None or self.to_minute is not None:
                raise ValueError("'from'/'to' cannot be combined with 'start'/'end'")
            if (self.start.tzinfo is None) != (self.end.tzinfo is None):
                raise ValueError("'start' and 'end' must both have a UTC offset or neither")
            if self.end <= self.start:
                raise ValueError("'end' must be after 'start'")
        if kinds[0] == "days":
            if not self.days:
                raise ValueError("'days' must name at least one day")
            if self.from_minute is None or self.to_minute is None:
                raise ValueError("a recurring profile needs 'from' and 'to'")
        if (self.from_minute is None) != (self.to_minute is None):
            raise ValueError("'from' and 'to' go together")
        if self.from_minute is not None and self.from_minute == self.to_minute:
            raise ValueError("'from' and 'to' must differ (use 00:00 to 24:00 for a whole day)")
        return self

    @property
    def level(self) -> int:
        return RECURRING if self.days is not None else FIXED


class ScheduleConfig(BaseModel):
    """``[[pools.policies]] type = "schedule"``: profiles plus what applies outside them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    """IANA time zone of profiles that name none."""
    default_min: int = Field(default=0, ge=0, le=10000)
    """Floor when no profile is active (and for active profiles without ``min``)."""
    default_max: int | None = Field(default=None, ge=0, le=10000)
    """Cap when no profile is active (and for active profiles without ``max``); empty: none."""
    profiles: tuple[Profile, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        _zone(v)
        return v

    @model_validator(mode="after")
    def _defaults(self) -> ScheduleConfig:
        if self.default_max is not None and self.default_min > self.default_max:
            raise ValueError(
                f"default_min ({self.default_min}) must be <= default_max ({self.default_max})"
            )
        return self


_Interval = tuple[float, float, int, int | None, int | None, str]
"""(start epoch incl. pre-warm, end epoch, level, min, max, profile name)."""


class Schedule:
    """Floors and caps by time; pure in ``ctx.now`` (metrics are not needed)."""

    name: ClassVar[str] = "schedule"
    Config: ClassVar[type[ScheduleConfig]] = ScheduleConfig

    _CACHE_DAYS = 16

    lookback_minutes: int = 0
    """Minutes of the pool's load history it reads (none: time alone decides)."""

    def __init__(self, config: ScheduleConfig | None = None) -> None:
        self.config = config or ScheduleConfig()
        self._zones: list[ZoneInfo] = [
            _zone(p.timezone or self.config.timezone) for p in self.config.profiles
        ]
        self._names = [p.name or f"profiles[{i}]" for i, p in enumerate(self.config.profiles)]
        self._fixed: list[_Interval] = []
        for i, p in enumerate(self.config.profiles):
            if p.level == FIXED:
                start, end = self._fixed_span(p, self._zones[i])
                lead = p.minutes_in_advance * 60.0
                self._fixed.append((start - lead, end, FIXED, p.min, p.max, self._names[i]))
        # Intervals touching each UTC day, computed once per day: a month-long backtest calls
        # recommend() every tick, and building zone-aware datetimes each time would dominate.
        self._by_day: dict[int, list[_Interval]] = {}

    @staticmethod
    def _fixed_span(p: Profile, tz: ZoneInfo) -> tuple[float, float]:
        if p.date is not None:
            start_min = p.from_minute or 0
            end_min = 1440 if p.to_minute is None else p.to_minute
            end_day = p.date if end_min > start_min else p.date + dt.timedelta(days=1)
            return _local(p.date, start_min, tz), _local(end_day, end_min, tz)
        assert p.start is not None and p.end is not None
        s = p.start if p.start.tzinfo is not None else p.start.replace(tzinfo=tz)
        e = p.end if p.end.tzinfo is not None else p.end.replace(tzinfo=tz)
        return s.timestamp(), e.timestamp()

    def _intervals(self, day: int) -> list[_Interval]:
        found = self._by_day.get(day)
        if found is not None:
            return found
        lo, hi = day * _DAY_SECONDS, (day + 1) * _DAY_SECONDS
        out = [iv for iv in self._fixed if iv[0] < hi and iv[1] > lo]
        for i, p in enumerate(self.config.profiles):
            if p.days is None or p.from_minute is None or p.to_minute is None:
                continue
            tz = self._zones[i]
            lead = p.minutes_in_advance * 60.0
            # Local dates whose window could touch this UTC day: zone offsets are within ±1 day,
            # windows last at most a day and the lead at most a day.
            first = dt.datetime.fromtimestamp(lo, tz).date() - dt.timedelta(days=2)
            for k in range(5):
                d = first + dt.timedelta(days=k)
                if DAYS[d.weekday()] not in p.days:
                    continue
                end_day = d if p.to_minute > p.from_minute else d + dt.timedelta(days=1)
                start = _local(d, p.from_minute, tz) - lead
                end = _local(end_day, p.to_minute, tz)
                if start < hi and end > lo:
                    out.append((start, end, RECURRING, p.min, p.max, self._names[i]))
        if len(self._by_day) >= self._CACHE_DAYS:
            self._by_day.clear()
        self._by_day[day] = out
        return out

    def bounds(self, now: float) -> tuple[int, int | None, str]:
        """(floor, cap or ``None``, what set them) at ``now`` (epoch seconds)."""
        cfg = self.config
        level = DEFAULT
        active: list[_Interval] = []
        for iv in self._intervals(math.floor(now / _DAY_SECONDS)):
            if iv[0] <= now < iv[1]:
                if iv[2] > level:
                    level, active = iv[2], [iv]
                elif iv[2] == level:
                    active.append(iv)
        if not active:
            return cfg.default_min, cfg.default_max, "default"
        floor = max(cfg.default_min if iv[3] is None else iv[3] for iv in active)
        caps = [cfg.default_max if iv[4] is None else iv[4] for iv in active]
        cap = None if any(c is None for c in caps) else max(c for c in caps if c is not None)
        if cap is not None:
            floor = min(floor, cap)
        return floor, cap, "+".join(dict.fromkeys(iv[5] for iv in active))

    def recommend(self, ctx: PolicyContext) -> Recommendation:
        floor, cap, source = self.bounds(ctx.now)
        return Recommendation(desired=floor, ceiling=cap, note=source)


def _local(day: dt.date, minute: int, tz: ZoneInfo) -> float:
    """Epoch seconds of local ``minute`` after midnight on ``day`` (1440: the next midnight).

    A local time skipped by a DST change (01:30 on a spring-forward night) is read with the
    offset before the change, as ``zoneinfo`` does; a repeated one as its first occurrence.
    """
    if minute >= 1440:
        day, minute = day + dt.timedelta(days=1), minute - 1440
    return dt.datetime(
        day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz
    ).timestamp()
