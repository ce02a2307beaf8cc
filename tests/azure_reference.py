"""An independent reference of Azure autoscale's documented evaluation, for replaying Microsoft's
example settings minute by minute beside the daemon.

Written from Microsoft Learn alone, not from this project's code:

* *Understand autoscale settings* (``autoscale-understanding-settings``): each run "begins by
  choosing the applicable profile" — fixed date, then recurring, then default, "The first
  suitable profile that's found is used"; a recurring profile ends at "the start time of the
  following profile"; "Autoscale then evaluates the minimum and maximum values"; the scale-out
  rules first, "If more than one scale-out rule is triggered, autoscale scales to the highest
  specified capacity"; scale-in "only if all the scale-in rules are triggered" and then "by as
  little as possible"; "After a scale action occurs, the autoscale job waits for the cooldown
  period before it scales again. The cooldown period applies to both scale-out and scale-in
  actions"; ``capacity.default``: "If there's a problem reading the resource metric, and the
  current capacity is below the default, autoscale scales out to the default ... If the current
  capacity is already higher than the default capacity, autoscale doesn't scale in";
  ``timeGrain``/``statistic``: the metric aggregated per grain, then ``timeAggregation`` over the
  grains of ``timeWindow`` ("take the ten 1-minute samples, and average them").
* *Flapping in autoscale* (``autoscale-flapping``): a scale-in is first estimated — the metric
  per instance after it is the same total over fewer instances; if that would trigger a
  scale-out, autoscale tries the counts between the target and the current one and takes the
  lowest that would not, else skips; "checking for potential flapping doesn't occur for
  scale-out events".
* *Best practices* (``autoscale-best-practices``): "Manual scaling is reset by autoscale min and
  max".

Where the pages are silent the reference says so: grains are counted back from the evaluation
minute; a percentage change rounds away from the current count (only used in cases that do not
depend on it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

WINDOWS = {
    "UTC": "UTC",
    "W. Europe Standard Time": "Europe/Berlin",
    "Pacific Standard Time": "America/Los_Angeles",
    "E. Europe Standard Time": "Europe/Chisinau",
}
"""The few Windows zones the replayed settings use (CLDR windowsZones, territory 001)."""


def _get(table: Mapping[str, Any], key: str) -> Any:
    for k, v in table.items():
        if k.lower() == key.lower():
            return v
    return None


def _duration(text: str) -> int:
    """Minutes of ``PT5M``/``PT1H``/``P1D``."""
    text = text.upper().removeprefix("P")
    days, _, rest = text.partition("T") if "D" in text else ("", "", text.removeprefix("T"))
    total = int(days.removesuffix("D") or 0) * 1440
    number = ""
    for ch in rest:
        if ch.isdigit():
            number += ch
        else:
            total += int(number) * {"H": 60, "M": 1, "S": 0}[ch]
            number = ""
    return total


@dataclass(frozen=True)
class Rule:
    window: int
    grain: int
    aggregation: str
    operator: str
    threshold: float
    increase: bool
    kind: str
    value: float
    cooldown: int

    def fires(self, value: float) -> bool:
        return {
            "greaterthan": value > self.threshold,
            "greaterthanorequal": value >= self.threshold,
            "lessthan": value < self.threshold,
            "lessthanorequal": value <= self.threshold,
        }[self.operator]

    def target(self, capacity: int) -> int:
        sign = 1 if self.increase else -1
        if self.kind == "exactcount":
            return int(self.value)
        if self.kind == "changecount":
            return capacity + sign * int(self.value)
        change = capacity * self.value / 100.0
        step = max(1, math.ceil(change) if self.increase else math.floor(change))
        return capacity + sign * step


@dataclass(frozen=True)
class Profile:
    name: str
    minimum: int
    maximum: int
    default: int
    rules: tuple[Rule, ...]
    fixed: tuple[float, float] | None = None
    recurrence: tuple[ZoneInfo, tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None = None


def _rules(raw: Sequence[Mapping[str, Any]]) -> tuple[Rule, ...]:
    out = []
    for r in raw:
        t, a = _get(r, "metricTrigger"), _get(r, "scaleAction")
        out.append(
            Rule(
                window=_duration(_get(t, "timeWindow")),
                grain=_duration(_get(t, "timeGrain") or "PT1M"),
                aggregation=str(_get(t, "timeAggregation")).lower(),
                operator=str(_get(t, "operator")).lower(),
                threshold=float(_get(t, "threshold")),
                increase=str(_get(a, "direction")).lower() == "increase",
                kind=str(_get(a, "type")).lower(),
                value=float(_get(a, "value")),
                cooldown=_duration(_get(a, "cooldown")),
            )
        )
    return tuple(out)


_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


def parse(setting: Mapping[str, Any]) -> list[Profile]:
    """Profiles of an autoscale setting in the ARM shape or the az shape."""
    props = _get(setting, "properties") or setting
    out = []
    for p in _get(props, "profiles"):
        cap = _get(p, "capacity")
        fixed = recurrence = None
        fd, rec = _get(p, "fixedDate"), _get(p, "recurrence")
        if fd:
            zone = ZoneInfo(WINDOWS[_get(fd, "timeZone") or "UTC"])

            def instant(text: str, zone: ZoneInfo = zone) -> float:
                t = datetime.fromisoformat(text.replace("Z", "+00:00"))
                return (t if t.tzinfo else t.replace(tzinfo=zone)).timestamp()

            fixed = (instant(_get(fd, "start")), instant(_get(fd, "end")))
        elif rec:
            s = _get(rec, "schedule")
            days = tuple(
                int(d) if str(d).isdigit() else _DAYS.index(str(d).lower()) for d in _get(s, "days")
            )
            recurrence = (
                ZoneInfo(WINDOWS[_get(s, "timeZone")]),
                days,
                tuple(_get(s, "hours")),
                tuple(_get(s, "minutes")),
            )
        out.append(
            Profile(
                name=str(_get(p, "name")),
                minimum=int(_get(cap, "minimum")),
                maximum=int(_get(cap, "maximum")),
                default=int(_get(cap, "default")),
                rules=_rules(_get(p, "rules") or []),
                fixed=fixed,
                recurrence=recurrence,
            )
        )
    return out


def _last_start(profile: Profile, now: float) -> float | None:
    """The latest start of a recurring profile at or before ``now`` (within a week)."""
    assert profile.recurrence is not None
    zone, days, hours, minutes = profile.recurrence
    local = datetime.fromtimestamp(now, zone)
    best = None
    for back in range(8):
        day = (local - timedelta(days=back)).date()
        weekday = (day.weekday() + 1) % 7  # .NET DayOfWeek: 0 = Sunday
        if weekday not in days:
            continue
        for h in hours:
            for m in minutes:
                t = datetime(day.year, day.month, day.day, h, m, tzinfo=zone).timestamp()
                if t <= now and (best is None or t > best):
                    best = t
    return best


def select(profiles: Sequence[Profile], now: float) -> Profile:
    for p in profiles:
        if p.fixed and p.fixed[0] <= now < p.fixed[1]:
            return p
    recurring = [(s, p) for p in profiles if p.recurrence for s in [_last_start(p, now)] if s]
    if recurring:
        return max(recurring, key=lambda sp: sp[0])[1]
    for p in profiles:
        if not p.fixed and not p.recurrence:
            return p
    raise LookupError("no profile applies")


@dataclass
class Engine:
    """Azure autoscale over one scale set, one evaluation a minute."""

    profiles: list[Profile]
    last_action: float | None = None
    last_cooldown: int = 0
    log: list[tuple[float, int, int, str]] = field(default_factory=list)

    def evaluate(self, now: float, capacity: int, cpu: Callable[[float], float | None]) -> int:
        """The capacity after the run at ``now``; ``cpu(t)`` is the scale set's Percentage CPU
        (average over instances) of the minute starting at ``t``, ``None`` when missing."""
        profile = select(self.profiles, now)
        if capacity < profile.minimum:
            return self._act(now, capacity, profile.minimum, "minimum", profile)
        if capacity > profile.maximum:
            return self._act(now, capacity, profile.maximum, "maximum", profile)
        if not profile.rules:
            return capacity
        values = [self._value(r, now, cpu) for r in profile.rules]
        if any(v is None for v in values):
            if capacity < profile.default:
                return self._act(now, capacity, profile.default, "default", profile)
            return capacity
        if self.last_action is not None and now - self.last_action < self.last_cooldown * 60:
            return capacity
        ups = [(r, v) for r, v in zip(profile.rules, values, strict=True) if r.increase]
        downs = [(r, v) for r, v in zip(profile.rules, values, strict=True) if not r.increase]
        fired = [r for r, v in ups if v is not None and r.fires(v)]
        if fired:
            winner = max(fired, key=lambda r: r.target(capacity))
            new = min(profile.maximum, winner.target(capacity))
            return self._act(now, capacity, new, "out", profile, winner.cooldown)
        if not downs or not all(r.fires(v) for r, v in downs if v is not None):
            return capacity
        target = max(profile.minimum, max(r.target(capacity) for r, _ in downs))
        for n in range(target, capacity):
            projected = [(r, v * capacity / n) for r, v in ups if v is not None]
            if not any(r.fires(p) for r, p in projected):
                cooldown = max(r.cooldown for r, _ in downs)
                return self._act(now, capacity, n, "in", profile, cooldown)
        return capacity  # flapping: skipped

    def _act(
        self, now: float, old: int, new: int, why: str, profile: Profile, cooldown: int = 0
    ) -> int:
        if new != old:
            self.last_action = now
            self.last_cooldown = cooldown or max((r.cooldown for r in profile.rules), default=0)
            self.log.append((now, old, new, why))
        return new

    @staticmethod
    def _value(rule: Rule, now: float, cpu: Callable[[float], float | None]) -> float | None:
        grains: list[float] = []
        minute = now
        stop = now - rule.window * 60
        while minute > stop:
            first = max(stop, minute - rule.grain * 60)
            vals = [
                v for t in range(int(first), int(minute), 60) if (v := cpu(float(t))) is not None
            ]
            if vals:
                grains.append(sum(vals) / len(vals))
            minute = first
        if not grains:
            return None
        if rule.aggregation == "maximum":
            return max(grains)
        if rule.aggregation == "minimum":
            return min(grains)
        return sum(grains) / len(grains)
