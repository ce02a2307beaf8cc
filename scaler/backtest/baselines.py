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
* **static_peak** — the peak need of the scored window held all the time: what provisioning for
  the busiest minute (unannounced spikes included) costs.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Sequence

from scaler.backtest.engine import Grid, PoolTotals


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
) -> tuple[PoolTotals, array[float]]:
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
    return totals, array("d", scored)


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
