"""Step rules: Azure autoscale's threshold rules, so existing rule sets carry over as they are.

Each rule compares a statistic of a metric over a time window with a threshold and, when it
fires, changes the instance count by a count, a percentage or to an exact number. As in Azure
autoscale:

* the pool scales **out** if *any* increase rule fires (the largest resulting count wins);
* it scales **in** only if *all* decrease rules fire (the smallest change wins), and only when no
  increase rule fired;
* a **flapping check** projects the per-instance load after a scale-in (the same calls spread over
  fewer instances) and shrinks the scale-in, or skips it, if the projection would make an
  increase rule fire at once;
* each rule has a **cooldown**: an increase rule does not fire within its ``cooldown_minutes``
  after the pool's last scale-out, a decrease rule not within its ``cooldown_minutes`` after the
  last resize in either direction (a scale-in right after a scale-out is what flapping is; a
  scale-out is never delayed by an earlier scale-in).

When nothing fires the policy recommends the current count (hold), so in a pool with several
policies step rules veto a scale-in their decrease rules do not agree to.

Metrics, all derived from the pool's calls (what a Teams Connector pool really has):
``calls`` (the pool's total), ``calls_per_instance`` (calls ÷ instances) and ``percent``
(100 × calls ÷ (instances × calls_per_instance)), which is how a CPU-style percent-of-capacity
threshold maps onto calls. Statistics over the window are read from the pool's load history; past
buckets are divided by the *current* instance count (the history keeps calls, not the counts of
the time), and without history the current reading stands for the whole window.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scaler.core.types import PolicyContext, Recommendation

Metric = Literal["calls", "calls_per_instance", "percent"]
Statistic = Literal["average", "max", "min"]
Operator = Literal[">", ">=", "<", "<="]


class Rule(BaseModel):
    """One threshold rule (Azure: ``metricTrigger`` + ``scaleAction``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Metric = "percent"
    statistic: Statistic = "average"
    time_window_minutes: int = Field(default=10, ge=1, le=720)
    operator: Operator
    threshold: float = Field(ge=0.0, allow_inf_nan=False)
    direction: Literal["increase", "decrease"]
    change_count: int | None = Field(default=None, ge=1, le=1000)
    percent_change: float | None = Field(default=None, gt=0.0, le=1000.0)
    exact_count: int | None = Field(default=None, ge=0, le=10000)
    cooldown_minutes: float = Field(default=5.0, ge=0.0, le=1440.0)

    @model_validator(mode="after")
    def _one_change(self) -> Rule:
        given = [
            k
            for k in ("change_count", "percent_change", "exact_count")
            if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "needs exactly one of change_count, percent_change, exact_count"
                + (f"; has {', '.join(given)}" if given else "")
            )
        return self

    def fires(self, value: float) -> bool:
        op, t = self.operator, self.threshold
        if op == ">":
            return value > t
        if op == ">=":
            return value >= t
        if op == "<":
            return value < t
        return value <= t

    def target(self, current: int) -> int:
        """The instance count this rule asks for from ``current``.

        A percentage rounds up for a scale-out and down for a scale-in, moving at least one
        instance either way.
        """
        if self.exact_count is not None:
            return self.exact_count
        if self.change_count is not None:
            step = self.change_count
        else:
            assert self.percent_change is not None
            exact = current * self.percent_change / 100.0
            raw = math.ceil(round(exact, 9)) if self.direction == "increase" else int(exact)
            step = max(1, raw)
        return current + step if self.direction == "increase" else current - step


class StepConfig(BaseModel):
    """``[[pools.policies]] type = "step"`` with ``[[pools.policies.rules]]`` tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[Rule, ...] = Field(min_length=1)


class StepRules:
    """Azure-autoscale-compatible threshold rules; no opinion when the metric is unusable."""

    name: ClassVar[str] = "step"
    Config: ClassVar[type[StepConfig]] = StepConfig

    def __init__(self, config: StepConfig) -> None:
        self.config = config
        self._up = [r for r in config.rules if r.direction == "increase"]
        self._down = [r for r in config.rules if r.direction == "decrease"]
        self.lookback_minutes = max((r.time_window_minutes for r in config.rules), default=0)
        """Minutes of the pool's load history it reads: its longest rule window."""

    def recommend(self, ctx: PolicyContext) -> Recommendation | None:
        if ctx.calls is None:
            return None
        current = ctx.current
        stats: dict[tuple[Statistic, int], float] = {}

        def calls_stat(rule: Rule) -> float:
            key = (rule.statistic, rule.time_window_minutes)
            found = stats.get(key)
            if found is None:
                found = stats[key] = _window_stat(ctx, rule.statistic, rule.time_window_minutes)
            return found

        def value(rule: Rule, calls: float, instances: int) -> float:
            return _metric(rule.metric, calls, instances, ctx.pool.calls_per_instance)

        since_up = _since(ctx.now, ctx.state.last_scale_up)
        since_any = min(since_up, _since(ctx.now, ctx.state.last_scale_down))

        out = [
            r.target(current)
            for r in self._up
            if since_up >= r.cooldown_minutes * 60.0 and r.fires(value(r, calls_stat(r), current))
        ]
        if out:
            desired = max(current, *out)
            fired = "increase rule fired" if desired > current else "increase rule at bound"
            return Recommendation(desired=desired, note=fired)

        if not self._down or current <= 0:
            return Recommendation(desired=current, note="no rule fired")
        for r in self._down:
            if since_any < r.cooldown_minutes * 60.0:
                return Recommendation(desired=current, note="decrease cooldown")
            if not r.fires(value(r, calls_stat(r), current)):
                return Recommendation(desired=current, note="no rule fired")
        desired = max(0, min(current, max(r.target(current) for r in self._down)))

        # Flapping check: with the same calls over fewer instances, would a scale-out fire now?
        while desired < current:
            if not any(r.fires(value(r, calls_stat(r), desired)) for r in self._up):
                break
            desired += 1
        note = "decrease rules agree" if desired < current else "scale-in would flap"
        return Recommendation(desired=desired, note=note)


def _since(now: float, then: float | None) -> float:
    return math.inf if then is None else now - then


def _metric(metric: Metric, calls: float, instances: int, calls_per_instance: float) -> float:
    if metric == "calls":
        return calls
    if instances <= 0:
        return math.inf if calls > 0 else 0.0
    per_instance = calls / instances
    if metric == "calls_per_instance":
        return per_instance
    return 100.0 * per_instance / calls_per_instance


def _window_stat(ctx: PolicyContext, statistic: Statistic, minutes: int) -> float:
    """The statistic of the pool's calls over the last ``minutes`` visible minutes.

    Unknown buckets are skipped; with no history (or none known in the window) the current
    reading alone stands for the window.
    """
    assert ctx.calls is not None
    h = ctx.history
    known: list[float] = []
    if h is not None:
        end = min(ctx.now, h.visible_until)
        known = [v for v in h.values(end - minutes * 60.0, end) if v is not None]
    if not known:
        return ctx.calls
    if statistic == "max":
        return max(known)
    if statistic == "min":
        return min(known)
    return sum(known) / len(known)
