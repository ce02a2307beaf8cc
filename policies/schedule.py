"""Schedule: instance floors (and optional caps) by time of day, like Pexip's scheduled scaling.

Profiles are either **recurring** (``days`` of the week with ``from``/``to`` local times, or a
``cron`` pair of start and end expressions), or **fixed** (one ``date``, optionally with
``from``/``to``, or a ``start``/``end`` pair for an all-hands). At any instant the active
profiles of the highest precedence decide: fixed over recurring over the schedule's default.
Each profile may start early by ``minutes_in_advance`` (a pre-warm lead for instances that take
up to 20 minutes to boot).

**The cron form** is KEDA's cron scaler (https://keda.sh/docs/latest/scalers/cron/): ``start``
and ``end`` are standard five-field cron expressions in the profile's ``timezone``, and the
profile is active whenever the next ``end`` comes no later than the next ``start`` — the rule
of KEDA's ``pkg/scalers/cron_scaler.go`` (``isWithinInterval``), so a window is active from a
start up to (not including) the following end. KEDA's ``desiredReplicas`` is the profile's
``min``. The fire times are computed with APScheduler's ``CronTrigger`` (the wall-clock cron of
the scheduler this project already uses; DST-correct in an IANA zone). Cron's day-of-week
numbers (0 or 7 = Sunday) are translated to APScheduler's names, whose own numbers start on
Monday; a day-of-month *and* a day-of-week both restricted is refused, because cron fires on
either while APScheduler fires only on both.

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

``missing_data_floor`` (per profile, and ``default_missing_data_floor`` outside them) is a floor
that applies only while the pool's metric is unusable: Azure autoscale's per-profile
``capacity.default``, "If there's a problem reading the resource metric, and the current capacity
is below the default, autoscale scales out to the default"
(https://learn.microsoft.com/azure/azure-monitor/autoscale/autoscale-understanding-settings).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from policies.zones import TimeZoneName, zone
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


_CRON_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?,/-]+$")
_CRON_LIMITS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_CRON_NAMES = ("minute", "hour", "day of month", "month", "day of week")


def _cron_values(field: str, index: int) -> set[int]:
    """The values a standard cron field allows (``*``, ``?``, lists, ranges, steps, names)."""
    low, high = _CRON_LIMITS[index]
    names = {4: _CRON_DOW_NAMES, 3: _CRON_MONTHS}.get(index, ())
    out: set[int] = set()
    for part in field.lower().split(","):
        spec, _, step_text = part.partition("/")
        if step_text and not step_text.isdigit():
            raise ValueError(f"bad step {step_text!r}")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError("a step must be at least 1")
        if spec in ("*", "?"):
            first, last = low, high if index != 4 else 6
        else:
            ends = spec.split("-")
            if len(ends) > 2 or not all(ends):
                raise ValueError(f"bad range {spec!r}")
            bounds = []
            for e in ends:
                if e.isdigit():
                    bounds.append(int(e))
                elif e[:3] in names and len(e) == 3:
                    bounds.append(names.index(e) + (1 if index == 3 else 0))
                else:
                    raise ValueError(f"{e!r} is not a value")
            first, last = bounds[0], bounds[-1]
            if step_text and len(ends) == 1:
                last = high if index != 4 else 6
        if not (low <= first <= high and low <= last <= high) or first > last:
            raise ValueError(f"{part!r} is outside {low}-{high}")
        out.update(range(first, last + 1, step))
    return out


def cron_trigger(expr: str, zone: ZoneInfo) -> CronTrigger:
    """APScheduler's trigger for a standard five-field cron expression (KEDA's cron scaler
    parses ``Minute | Hour | Dom | Month | Dow``), with cron's day-of-week numbering (0 or 7 =
    Sunday) given to APScheduler as names. Raises ``ValueError`` saying what is wrong."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            f"{expr!r} must have 5 fields (minute hour day-of-month month day-of-week), "
            f"has {len(fields)}"
        )
    for i, f in enumerate(fields):
        if not _CRON_FIELD.match(f):
            raise ValueError(f"{expr!r}: the {_CRON_NAMES[i]} field {f!r} is not standard cron")
        try:
            _cron_values(f, i)
        except ValueError as exc:
            raise ValueError(f"{expr!r}: the {_CRON_NAMES[i]} field: {exc}") from None
    minute, hour, day, month, dow = fields
    if day not in ("*", "?") and dow not in ("*", "?"):
        raise ValueError(
            f"{expr!r}: restricts both day of month and day of week, which cron joins with "
            "'or' and APScheduler with 'and'; use two profiles"
        )
    days = sorted({d % 7 for d in _cron_values(dow, 4)})
    # APScheduler numbers weekdays from Monday; names are unambiguous
    week = "*" if len(days) == 7 else ",".join(_CRON_DOW_NAMES[d] for d in days)
    trigger = CronTrigger(
        minute=minute,
        hour=hour,
        day="*" if day == "?" else day,
        month=month,
        day_of_week=week,
        timezone=zone,
    )
    if trigger.get_next_fire_time(None, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) is None:
        raise ValueError(f"{expr!r} never fires")
    return trigger


class CronWindow(BaseModel):
    """``cron = {start = "0 8 * * 1-5", end = "0 18 * * 1-5"}``: KEDA's cron scaler window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str
    """Five-field cron expression: the profile is active from each start."""
    end: str
    """Five-field cron expression: until the next end (computed with APScheduler's
    ``CronTrigger``)."""

    @model_validator(mode="after")
    def _parse(self) -> CronWindow:
        for key in ("start", "end"):
            try:
                cron_trigger(getattr(self, key), ZoneInfo("UTC"))
            except ValueError as exc:
                raise ValueError(f"cron.{key}: {exc}") from None
        if self.start.split() == self.end.split():
            raise ValueError("cron start and end must differ (KEDA refuses the same too)")
        return self


class Profile(BaseModel):
    """One profile of a schedule (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = ""
    """Shown in the decision's note; empty: ``profiles[i]``."""
    days: tuple[Day, ...] | None = None
    """Recurring: local days of the week the window *starts* on (``mon``…``sun``, or the
    shorthands ``weekdays``, ``weekend``, ``all``)."""
    cron: CronWindow | None = None
    """Recurring, KEDA's form: start and end cron expressions in the profile's time zone."""
    date: dt.date | None = None
    """Fixed: one local date (the whole day, or ``from``/``to`` on it)."""
    start: dt.datetime | None = None
    """Fixed: first instant (local to ``timezone`` unless it carries an offset)."""
    end: dt.datetime | None = None
    """Fixed: instant the profile ends (exclusive)."""
    from_minute: int | None = Field(default=None, alias="from")
    """Local start time, written ``from = "08:00"`` (``HH:MM``, or a TOML time); kept as minutes
    after midnight."""
    to_minute: int | None = Field(default=None, alias="to")
    """Local end time (exclusive), written as ``from``; ``24:00`` is allowed, and earlier than
    ``from`` means the window ends the next day."""
    timezone: TimeZoneName | None = None
    """IANA time zone; empty: the schedule's ``timezone``."""
    min: int | None = Field(default=None, ge=0, le=10000)
    """Floor while the profile is active (at least one of ``min``, ``max``); any other policy may go
    higher."""
    max: int | None = Field(default=None, ge=0, le=10000)
    """Cap on the pool while the profile is active, never below the pool's ``min``; with an unusable
    metric it only stops a rise."""
    minutes_in_advance: int = Field(default=0, ge=0, le=1440)
    """Pre-warm lead: the profile applies this many minutes before its start."""
    missing_data_floor: int | None = Field(default=None, ge=0, le=10000)
    """A floor only while the metric is unusable (Azure's per-profile ``capacity.default``)."""

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

    @model_validator(mode="after")
    def _shape(self) -> Profile:
        kinds = [
            k
            for k, v in (("days", self.days), ("cron", self.cron), ("date", self.date))
            if v is not None
        ]
        if self.start is not None or self.end is not None:
            kinds.append("start/end")
        if len(kinds) != 1:
            raise ValueError(
                "needs exactly one of 'days' or 'cron' (recurring), 'date' or 'start'/'end' "
                "(fixed)" + (f"; has {', '.join(kinds)}" if kinds else "")
            )
        if self.min is None and self.max is None:
            raise ValueError("needs 'min' and/or 'max'")
        if (
            self.missing_data_floor is not None
            and self.max is not None
            and self.missing_data_floor > self.max
        ):
            raise ValueError(
                f"missing_data_floor ({self.missing_data_floor}) must be <= max ({self.max})"
            )
        if kinds[0] == "cron" and (self.from_minute is not None or self.to_minute is not None):
            raise ValueError("'from'/'to' cannot be combined with 'cron' (its start and end)")
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
        return RECURRING if self.days is not None or self.cron is not None else FIXED


class ScheduleConfig(BaseModel):
    """``[[pools.policies]] type = "schedule"``: profiles plus what applies outside them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: TimeZoneName = "UTC"
    """IANA time zone of profiles that name none."""
    default_min: int = Field(default=0, ge=0, le=10000)
    """Floor when no profile is active (and for active profiles without ``min``)."""
    default_max: int | None = Field(default=None, ge=0, le=10000)
    """Cap when no profile is active (and for active profiles without ``max``); empty: none."""
    default_missing_data_floor: int | None = Field(default=None, ge=0, le=10000)
    """Floor while the metric is unusable and no profile is active (Azure's default profile's
    ``capacity.default``)."""
    profiles: tuple[Profile, ...] = ()
    """The profiles, one ``[[pools.policies.profiles]]`` table each."""

    @model_validator(mode="after")
    def _defaults(self) -> ScheduleConfig:
        if self.default_max is not None and self.default_min > self.default_max:
            raise ValueError(
                f"default_min ({self.default_min}) must be <= default_max ({self.default_max})"
            )
        return self


_Interval = tuple[float, float, int, int | None, int | None, str, int | None]
"""(start epoch incl. pre-warm, end epoch, level, min, max, profile name, missing-data floor)."""


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
            zone(p.timezone or self.config.timezone) for p in self.config.profiles
        ]
        self._names = [p.name or f"profiles[{i}]" for i, p in enumerate(self.config.profiles)]
        self._fixed: list[_Interval] = []
        self._crons: dict[int, tuple[CronTrigger, CronTrigger]] = {}
        for i, p in enumerate(self.config.profiles):
            if p.level == FIXED:
                start, end = self._fixed_span(p, self._zones[i])
                lead = p.minutes_in_advance * 60.0
                self._fixed.append(
                    (start - lead, end, FIXED, p.min, p.max, self._names[i], p.missing_data_floor)
                )
            elif p.cron is not None:
                tz = self._zones[i]
                self._crons[i] = (cron_trigger(p.cron.start, tz), cron_trigger(p.cron.end, tz))
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
            if i in self._crons:
                lead = p.minutes_in_advance * 60.0
                start_t, end_t = self._crons[i]
                for a, b in _cron_windows(start_t, end_t, lo, hi + lead):
                    if a - lead < hi and b > lo:
                        out.append(
                            (a - lead, b, RECURRING, p.min, p.max, self._names[i],
                             p.missing_data_floor)
                        )  # fmt: skip
                continue
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
                    out.append(
                        (start, end, RECURRING, p.min, p.max, self._names[i], p.missing_data_floor)
                    )
        if len(self._by_day) >= self._CACHE_DAYS:
            self._by_day.clear()
        self._by_day[day] = out
        return out

    def bounds(self, now: float, *, metric_usable: bool = True) -> tuple[int, int | None, str]:
        """(floor, cap or ``None``, what set them) at ``now`` (epoch seconds); with
        ``metric_usable`` false the active ``missing_data_floor`` raises the floor."""
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
            floor = cfg.default_min
            if not metric_usable and cfg.default_missing_data_floor is not None:
                floor = max(floor, cfg.default_missing_data_floor)
            if cfg.default_max is not None:
                floor = min(floor, cfg.default_max)
            return floor, cfg.default_max, "default"
        floor = max(cfg.default_min if iv[3] is None else iv[3] for iv in active)
        if not metric_usable:
            missing = [iv[6] for iv in active if iv[6] is not None]
            if missing:
                floor = max(floor, *missing)
        caps = [cfg.default_max if iv[4] is None else iv[4] for iv in active]
        cap = None if any(c is None for c in caps) else max(c for c in caps if c is not None)
        if cap is not None:
            floor = min(floor, cap)
        return floor, cap, "+".join(dict.fromkeys(iv[5] for iv in active))

    def recommend(self, ctx: PolicyContext) -> Recommendation:
        floor, cap, source = self.bounds(ctx.now, metric_usable=ctx.calls is not None)
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


def _cron_windows(
    start: CronTrigger, end: CronTrigger, lo: float, hi: float
) -> list[tuple[float, float]]:
    """The spans of ``[lo, hi)`` in which KEDA's cron scaler is active: for every instant, the
    next ``end`` comes no later than the next ``start`` (both strictly after the instant). The
    first span may begin at ``lo`` (its real start lies before)."""
    events: dict[float, tuple[bool, bool]] = {}
    for trigger, is_end in ((start, False), (end, True)):
        t = lo
        while True:
            nxt = trigger.get_next_fire_time(
                None, dt.datetime.fromtimestamp(t + 1.0, dt.UTC)
            )  # strictly after t: fire times are whole minutes
            if nxt is None:
                break
            t = nxt.timestamp()
            was_start, was_end = events.get(t, (False, False))
            events[t] = (was_start or not is_end, was_end or is_end)
            if t >= hi:
                break
    out: list[tuple[float, float]] = []
    begin = lo
    for t in sorted(events):
        if events[t][1]:  # the next event after [begin, t) is an end: active
            if out and out[-1][1] == begin:
                out[-1] = (out[-1][0], t)
            else:
                out.append((begin, t))
        begin = t
        if begin >= hi:
            break
    return out
