"""What perfect foresight costs when it plays by the same rules as a policy.

The backtest's ``oracle`` is the cost floor of *capacity*: at every minute the largest need of
that minute and the next ``boot_minutes``, as if calls could be packed onto fewer instances the
moment demand falls and a pool could shrink to zero. A policy cannot do either: the pool keeps
its ``min``, and a call-safe scale-in (``drain``) keeps a removed instance, billed, until its
last call ends (calls are spread over the instances by the load balancer, so every instance
holds some).

``clairvoyant()`` measures how much of a policy set's distance to the oracle those two rules
alone cost. The replay itself is the backtest's own baseline, ``scaler.backtest.baselines
.clairvoyant`` (``backtest --json`` reports it as ``baselines.clairvoyant``); this module adds up
its pools over a config and a trace and tries variations of it.

Two variations show whether the same foresight could be spent better: ``hold_minutes`` keeps an
instance through lulls up to that long (the oracle's rule is the boot time: releasing it for a
shorter lull and asking again costs more), and ``early_minutes`` scales in that many minutes
before the oracle would (the size then is the smaller of now's and that later minute's), so
drained instances start emptying sooner.
"""

from __future__ import annotations

from scaler.backtest.baselines import clairvoyant as replay_clairvoyant
from scaler.backtest.runner import Options, grid_for, pool_specs
from scaler.config import Config
from scaler.traces import Trace


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
        run = replay_clairvoyant(
            spec,
            trace.calls[spec.name],
            grid,
            hold_minutes=hold_minutes,
            early_minutes=early_minutes,
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
