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
* a **cooldown** follows every resize of the pool, in *both* directions, as in Azure: "After a
  scale action occurs, the autoscale job waits for the cooldown period before it scales again.
  The cooldown period applies to both scale-out and scale-in actions"
  (https://learn.microsoft.com/azure/azure-monitor/autoscale/autoscale-understanding-settings,
  *Autoscale evaluation*). So a scale-in at 13:00 whose rule has a 40-minute cooldown defers a
  scale-out condition of 13:20 to 13:40, and a scale-out at 10:00 with a 60-minute cooldown
  blocks a scale-in at 10:45. The cooldown is that of the rule that fired last; the policy
  knows only the direction of the last resize, so where that direction has several rules with
  different cooldowns it takes the assumption that is safe for calls (Microsoft does not say
  which applies): the shortest of them before a scale-out, the longest before a scale-in.

When nothing fires the policy recommends the current count (hold), so in a pool with several
policies step rules veto a scale-in their decrease rules do not agree to.

Metrics, all derived from the pool's calls (what a Teams Connector pool really has):
``calls`` (the pool's total), ``calls_per_instance`` (calls ÷ instances) and ``percent``
(100 × calls ÷ (instances × calls_per_instance)), which is how a CPU-style percent-of-capacity
threshold maps onto calls. Statistics over the window are read from the pool's load history; past
buckets are divided by the *current* instance count (the history keeps calls, not the counts of
the time), and without history the current reading stands for the whole window.

Time grain (Azure's ``timeGrain``, ``time_grain_minutes``): the window's minutes are first
averaged per grain, the grains counted back from the newest visible minute (the oldest may be
partial), and the rule's statistic is taken over those averages: "take the ten 1-minute
samples, and average them" for a PT1M grain over PT10M, the highest 5-minute average for a
PT5M grain with ``Maximum``.
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
    """``calls`` (the pool's total), ``calls_per_instance``, or ``percent`` = 100 × calls ÷
    (instances × ``calls_per_instance``) — what a CPU percentage threshold maps to."""
    statistic: Statistic = "average"
    """``average``, ``max`` or ``min`` of the metric over the window (from the pool's history; the
    current reading alone without it)."""
    time_window_minutes: int = Field(default=10, ge=1, le=720)
    """Window of the statistic."""
    time_grain_minutes: int = Field(default=1, ge=1, le=720)
    """Minutes averaged into one sample before ``statistic`` is taken (Azure's ``timeGrain``)."""
    operator: Operator
    """``>``, ``>=``, ``<``, ``<=``."""
    threshold: float = Field(ge=0.0, allow_inf_nan=False)
    """Compared with the statistic."""
    direction: Literal["increase", "decrease"]
    """``increase`` or ``decrease``."""
    change_count: int | None = Field(default=None, ge=1, le=1000)
    """± instances (exactly one of ``change_count``, ``percent_change``, ``exact_count``)."""
    percent_change: float | None = Field(default=None, gt=0.0, le=1000.0)
    """± percent of the current count, rounded up for a scale-out, down for a scale-in, at least 1
    (exactly one of ``change_count``, ``percent_change``, ``exact_count``)."""
    exact_count: int | None = Field(default=None, ge=0, le=10000)
    """A count to go to (exactly one of ``change_count``, ``percent_change``, ``exact_count``)."""
    cooldown_minutes: float = Field(default=5.0, ge=0.0, le=1440.0)
    """No rule fires this soon after a resize in this rule's direction; as in Azure the cooldown
    follows every resize in both directions."""

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
        if self.time_grain_minutes > self.time_window_minutes:
            raise ValueError(
                f"time_grain_minutes ({self.time_grain_minutes}) must not exceed "
                f"time_window_minutes ({self.time_window_minutes})"
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
    """The rules, one ``[[pools.policies.rules]]`` table each."""


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
        stats: dict[tuple[Statistic, int, int], float] = {}

        def calls_stat(rule: Rule) -> float:
            key = (rule.statistic, rule.time_window_minutes, rule.time_grain_minutes)
            found = stats.get(key)
            if found is None:
                found = stats[key] = _window_stat(
                    ctx, rule.statistic, rule.time_window_minutes, rule.time_grain_minutes
                )
            return found

        def value(rule: Rule, calls: float, instances: int) -> float:
            return _metric(rule.metric, calls, instances, ctx.pool.calls_per_instance)

        out_wait, in_wait = self._cooldown(ctx)
        if out_wait:
            return Recommendation(desired=current, note=out_wait)

        out = [r.target(current) for r in self._up if r.fires(value(r, calls_stat(r), current))]
        if out:
            desired = max(current, *out)
            fired = "increase rule fired" if desired > current else "increase rule at bound"
            return Recommendation(desired=desired, note=fired)

        if in_wait:
            return Recommendation(desired=current, note=in_wait)
        if not self._down or current <= 0:
            return Recommendation(desired=current, note="no rule fired")
        for r in self._down:
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

    def _cooldown(self, ctx: PolicyContext) -> tuple[str, str]:
        """Why increase rules, and why decrease rules, may not fire now (empty: they may): the
        cooldown after the pool's last resize in either direction, that of the rules of the
        direction it went (the shortest of them before a scale-out, the longest before a
        scale-in; a resize in a direction without rules — a schedule's floor, say — takes the
        other rules' cooldowns)."""
        up, down = ctx.state.last_scale_up, ctx.state.last_scale_down
        if up is None and down is None:
            return "", ""
        went_up = down is None or (up is not None and up >= down)
        last = up if went_up else down
        assert last is not None
        rules = (self._up if went_up else self._down) or self.config.rules
        cooldowns = [r.cooldown_minutes * 60.0 for r in rules]
        elapsed = ctx.now - last
        why = f"cooldown after the scale-{'out' if went_up else 'in'}"
        return (
            why if elapsed < min(cooldowns) else "",
            why if elapsed < max(cooldowns) else "",
        )


def _metric(metric: Metric, calls: float, instances: int, calls_per_instance: float) -> float:
    if metric == "calls":
        return calls
    if instances <= 0:
        return math.inf if calls > 0 else 0.0
    per_instance = calls / instances
    if metric == "calls_per_instance":
        return per_instance
    return 100.0 * per_instance / calls_per_instance


def _window_stat(ctx: PolicyContext, statistic: Statistic, minutes: int, grain: int = 1) -> float:
    """The statistic of the pool's calls over the last ``minutes`` visible minutes, each grain
    of ``grain`` minutes (counted back from the newest) averaged first.

    Unknown buckets are skipped (a grain with none known is left out); with no history (or none
    known in the window) the current reading alone stands for the window.
    """
    assert ctx.calls is not None
    h = ctx.history
    known: list[float] = []
    if h is not None:
        end = min(ctx.now, h.visible_until)
        values = h.values(end - minutes * 60.0, end)
        if grain <= 1:
            known = [v for v in values if v is not None]
        else:
            for stop in range(len(values), 0, -grain):
                part = [v for v in values[max(0, stop - grain) : stop] if v is not None]
                if part:
                    known.append(sum(part) / len(part))
    if not known:
        return ctx.calls
    if statistic == "max":
        return max(known)
    if statistic == "min":
        return min(known)
    return sum(known) / len(known)
