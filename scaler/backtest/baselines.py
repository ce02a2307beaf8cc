"""The two reference points every backtest is scored against, computed from demand alone.

* **oracle** — perfect foresight under the same boot time: the cost floor. A minute's *need* is
  ``ceil(demand ÷ calls_per_instance)``: the pool's ``min`` and ``max`` are policy choices, not
  physics, so the floor ignores them and is the same for every config on the same pools. An
  instance needed at minute *i* must have been requested by *i - boot*, and is worth keeping
  through a lull shorter than the boot time rather than being released and requested again. Both
  rules together give the oracle's size at minute *t* exactly: **the largest need over minutes
  t … t + boot_minutes** (the end of the trace cuts the look-ahead). It serves every call and
  drops none (it releases only instances whose calls have ended). No policy that leaves nothing
  unserved in the scored window can be cheaper: every instance ready at some minute of
  ``[t, t + boot]`` is already billed at *t*.
* **clairvoyant** — perfect foresight that plays by the pool's own rules: the *call-safe floor*
  that cost targets are stated against. The oracle may pack calls onto fewer instances the moment
  demand falls and shrink a pool to zero; no policy can do either. The clairvoyant replays the
  pool through the backtest's own engine and ``decide()`` with one policy that *knows the trace*
  and asks at every tick for exactly the oracle's size, with no stabilisation, no rate limit and
  no missing-data floor; the pool's ``min``/``max``, boot time and scale-in mode (``drain``
  keeps a removed instance, billed, until its last call ends; ``idle`` removes only empty ones)
  hold as configured, and so does the rule that missing data never shrinks a pool (a trace gap
  holds it). It reads the trace's calls as its metric (foresight needs no proxy), so its cost
  is the same for every config with the same pools, min/max, boot time and scale-in mode. It is
  a reference, not a policy anyone can run: it reads the future.
* **static_peak** — the peak need of the scored window held all the time: what provisioning for
  the busiest minute (unannounced spikes included) costs.
"""

from __future__ import annotations

import dataclasses
import math
from array import array
from collections import deque
from collections.abc import Sequence
from typing import ClassVar

from scaler.backtest.engine import (
    Grid,
    PoolRun,
    PoolSpec,
    PoolTotals,
    Steps,
    carried_demand,
    nan_buffer,
    replay_pool,
)
from scaler.core.types import Behavior, DirectionBehavior, PolicyContext, Recommendation


def need(demand: Sequence[float], *, calls_per_instance: float, minimum: int) -> list[int]:
    """Instances each bucket's demand needs, at least ``minimum`` (1e-9 absorbs float noise)."""
    ceil = math.ceil
    cpi = calls_per_instance
    out = [ceil(d / cpi - 1e-9) for d in demand]
    if minimum > 0:
        out = [k if k > minimum else minimum for k in out]
    return out


def oracle_sizes(needs: Sequence[int], *, boot_steps: int) -> list[int]:
    """Size at each bucket: the max of ``needs`` over ``[i, i + boot_steps]`` (sliding window)."""
    n = len(needs)
    out = [0] * n
    window: deque[int] = deque()  # indices with decreasing needs
    j = 0  # next index to enter the window
    for i in range(n):
        end = min(n - 1, i + boot_steps)
        while j <= end:
            while window and needs[window[-1]] <= needs[j]:
                window.pop()
            window.append(j)
            j += 1
        while window[0] < i:
            window.popleft()
        out[i] = needs[window[0]]
    return out


def oracle(
    demand: Sequence[float],
    grid: Grid,
    *,
    calls_per_instance: float,
    minimum: int,
    boot_minutes: float,
) -> tuple[PoolTotals, Steps[float]]:
    """The oracle's figures and its size per scored bucket (see the module docstring)."""
    step = grid.step_seconds
    boot_steps = math.ceil(round(boot_minutes * 60.0 / step, 9))
    sizes = oracle_sizes(
        need(demand, calls_per_instance=calls_per_instance, minimum=minimum),
        boot_steps=boot_steps,
    )
    first = grid.scored_index
    scored = sizes[first:]
    totals = _served_in_full(demand[first:], step)
    totals.instance_seconds = sum(scored) * step
    previous = sizes[first - 1] if first > 0 else minimum
    actions = 0
    for size in scored:
        if size != previous:
            actions += 1
        previous = size
    totals.scale_actions = actions
    totals.min_instances = min(scored) if scored else minimum
    totals.max_instances = max(scored) if scored else minimum
    return totals, Steps.of(array("d", scored))


class Foresight:
    """The clairvoyant's policy: asks for a precomputed size at the tick's bucket (it reads the
    whole trace, which no real policy can)."""

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
"""No stabilisation, no rate limit, no missing-data floor: foresight needs none of them."""


def clairvoyant_sizes(
    demand: Sequence[float],
    *,
    calls_per_instance: float,
    hold_steps: int,
    early_steps: int = 0,
) -> list[int]:
    """What the clairvoyant asks for at each bucket: the oracle's size with lulls up to
    ``hold_steps`` bridged (the oracle's own rule is the boot time), scaled in ``early_steps``
    buckets ahead of it (the smaller of now's size and that later bucket's)."""
    needs = need(demand, calls_per_instance=calls_per_instance, minimum=0)
    sizes = oracle_sizes(needs, boot_steps=hold_steps)
    if early_steps > 0 and sizes:
        later = [*sizes[early_steps:], *[sizes[-1]] * min(early_steps, len(sizes))]
        sizes = [min(now, then) for now, then in zip(sizes, later, strict=False)]
    return sizes


def clairvoyant(
    spec: PoolSpec,
    calls: Sequence[float | None],
    grid: Grid,
    *,
    hold_minutes: float | None = None,
    early_minutes: float = 0.0,
    demand: Sequence[float] | None = None,
) -> PoolRun:
    """Replay one pool as perfect foresight under its own rules (see the module docstring).

    ``hold_minutes``: keep instances through lulls this long (default: the boot time, rounded
    up to whole buckets as the oracle does); ``early_minutes``: scale in this much earlier than
    the oracle. Both are for ``make bench``'s "could foresight be spent better" rows; the
    baseline itself uses neither. ``demand``: ``carry_demand(calls)`` when the caller has it.
    """
    step = grid.step_seconds
    hold = spec.boot_seconds if hold_minutes is None else hold_minutes * 60.0
    sizes = clairvoyant_sizes(
        carried_demand(nan_buffer(calls)) if demand is None else demand,
        calls_per_instance=spec.limits.calls_per_instance,
        hold_steps=math.ceil(round(hold / step, 9)),
        early_steps=round(early_minutes * 60.0 / step),
    )
    lim = spec.limits
    # The size decide() would reach (its min/max clamp): a tick that finds the pool there holds.
    reach = [min(max(k, lim.min), lim.max) for k in sizes]
    seer = dataclasses.replace(
        spec,
        behavior=IMMEDIATE,
        policies=(Foresight(sizes, grid),),
        meaning="calls",
        hold_at=reach,
    )
    return replay_pool(seer, calls, grid)


def static_peak(
    demand: Sequence[float], grid: Grid, *, calls_per_instance: float, minimum: int
) -> PoolTotals:
    """The peak need of the scored window, held for all of it."""
    first = grid.scored_index
    scored = demand[first:]
    busiest = max(scored, default=0.0)
    peak = need([busiest], calls_per_instance=calls_per_instance, minimum=minimum)[0]
    totals = _served_in_full(scored, grid.step_seconds)
    totals.instance_seconds = peak * len(scored) * grid.step_seconds
    totals.min_instances = totals.max_instances = peak
    return totals


def _served_in_full(demand: Sequence[float], step: float) -> PoolTotals:
    call_minutes = sum(demand) * step / 60.0
    return PoolTotals(call_minutes=call_minutes, served_call_minutes=call_minutes)
