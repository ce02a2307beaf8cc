"""What perfect foresight costs when it plays by the same rules as a policy.

The backtest's ``oracle`` is the cost floor of *capacity*: at every minute the largest need of
that minute and the next ``boot_minutes``, as if calls could be packed onto fewer instances the
moment demand falls and a pool could shrink to zero. A policy cannot do either: the pool keeps
its ``min``, and a call-safe scale-in (``drain``) keeps a removed instance, billed, until its
last call ends (calls are spread over the instances by the load balancer, so every instance
holds some).

``clairvoyant()`` measures how much of a policy set's distance to the oracle those two rules
alone cost: it replays each pool of a config through the backtest's own engine and ``decide()``
with one policy that *knows the trace* and asks at every tick for exactly the oracle's size
(no stabilisation, no rate limit; the pool's ``min``/``max`` and scale-in mode as configured).
It is a benchmark reference, not a policy anyone can run: it reads the future.

Two variations show whether the same foresight could be spent better: ``hold_minutes`` keeps an
instance through lulls up to that long (the oracle's rule is the boot time: releasing it for a
shorter lull and asking again costs more), and ``early_minutes`` scales in that many minutes
before the oracle would (the size then is the smaller of now's and that later minute's), so
drained instances start emptying sooner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

from scaler.backtest.baselines import need, oracle_sizes
from scaler.backtest.engine import Grid, carry_demand, replay_pool
from scaler.backtest.runner import Options, grid_for, pool_specs
from scaler.config import Config
from scaler.core.types import Behavior, DirectionBehavior, PolicyContext, Recommendation
from scaler.traces import Trace


class Foresight:
    """Asks for the oracle's size at the tick's minute (it reads the whole trace)."""

    name: ClassVar[str] = "clairvoyant"

    def __init__(self, sizes: Sequence[int], grid: Grid) -> None:
        self._sizes = sizes
        self._start = grid.start
        self._step = grid.step_seconds

    def recommend(self, ctx: PolicyContext) -> Recommendation:
        i = int((ctx.now - self._start) // self._step)
        return Recommendation(desired=self._sizes[min(max(i, 0), len(self._sizes) - 1)])


IMMEDIATE = Behavior(
    tolerance=0.0,
    scale_up=DirectionBehavior(stabilization_seconds=0),
    scale_down=DirectionBehavior(stabilization_seconds=0),
)
"""No stabilisation, no rate limit: foresight needs neither."""


def clairvoyant(
    config: Config,
    trace: Trace,
    *,
    warmup_days: float = 7.0,
    hold_minutes: float | None = None,
    early_minutes: float = 0.0,
) -> dict[str, float]:
    """vCPU-hours (and the part of them spent draining) and unserved call-minutes of perfect
    foresight through the same model, over the scored window, all pools together.
    ``hold_minutes``: keep instances through lulls this long (default: the boot time);
    ``early_minutes``: scale in this much earlier than the oracle."""
    options = Options(warmup_days=warmup_days)
    grid = grid_for(config, trace, warmup_days)
    vcpu_seconds = drain_vcpu_seconds = unserved = 0.0
    for spec in pool_specs(config, options):
        column = trace.calls[spec.name]
        needs = need(
            carry_demand(column), calls_per_instance=spec.limits.calls_per_instance, minimum=0
        )
        hold = spec.boot_seconds if hold_minutes is None else hold_minutes * 60.0
        sizes = oracle_sizes(needs, boot_steps=round(hold / grid.step_seconds))
        early = round(early_minutes * 60.0 / grid.step_seconds)
        if early:
            later = [*sizes[early:], *[sizes[-1]] * early]
            sizes = [min(now, then) for now, then in zip(sizes, later, strict=True)]
        run = replay_pool(
            dataclasses.replace(spec, behavior=IMMEDIATE, policies=(Foresight(sizes, grid),)),
            column,
            grid,
        )
        vcpus = spec.limits.vcpus_per_instance
        vcpu_seconds += (run.totals.instance_seconds + run.totals.drain_instance_seconds) * vcpus
        drain_vcpu_seconds += run.totals.drain_instance_seconds * vcpus
        unserved += run.totals.unserved_call_minutes
    return {
        "vcpu_hours": vcpu_seconds / 3600.0,
        "drain_vcpu_hours": drain_vcpu_seconds / 3600.0,
        "unserved": unserved,
    }
