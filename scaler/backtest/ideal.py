"""The ideal online reference: the best any online policy could do on a trace whose model is known.

The clairvoyant reads the future; no policy can. The *ideal online* policy reads only the past,
but knows everything about it that the generator knows (``scaler.loadgen.MeetingModel``):

* the exact rates: the expected number of calls connecting in every minute (the day's level
  included), so it never has to learn a seasonal shape, a trend, a holiday or a step;
* every meeting in progress and when it started (Pexip lists each call's connect time), but not
  when it will end: a meeting of age ``a`` is still running ``k`` minutes later with probability
  ``S(a + k) ÷ S(a)``, ``S`` the survival of the meeting-length law (booked length + overrun).

At each tick *t* it sees the minutes before ``t − lag`` and asks for the instances that cover,
at quantile ``q``, the load of every minute from *t* to *t + boot* (an instance asked for now
serves from *t + boot*; until then the instances asked for earlier serve, and asking for fewer
now would remove one of them): the load of minute *m* is the meetings in progress that are still
running (a sum of independent Bernoulli trials) plus the calls that connect from ``t − lag`` to
*m* and are still running at *m* (Poisson: thinned Poisson arrivals). Its quantile is the
Cornish–Fisher expansion of the sum's first three cumulants (Bernoulli sums and Poisson counts
of tens to hundreds of calls are near normal; the skew term corrects the tail), rounded up to a
whole call. The sizes are then replayed through the backtest's own engine and ``decide()`` like
the clairvoyant's (``baselines.Foresight``): the pool's min, max, boot time and scale-in mode
hold, no stabilisation, no rate limit.

So its cost at a given unserved share is a bound for policies that learn (they must estimate the
rates; it knows them) and a reference for design: the gap between a policy and it at the same
unserved share is what learning the model costs plus what the policy's design adds. It does not
know unannounced events (surges are multiplied into the trace after the meetings are drawn) any
better than a policy does.

Needs ``numpy`` (installed with the ``report`` extra, as matplotlib's dependency).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

from scaler.backtest.baselines import IMMEDIATE, Foresight
from scaler.backtest.engine import Grid, PoolRun, PoolSpec, replay_pool
from scaler.errors import ConfigError
from scaler.loadgen import MeetingModel

QUANTILES: tuple[float, ...] = (0.99, 0.995, 0.998, 0.9995)
"""The quantiles the reference is reported at (the issue's table)."""


class IdealError(ConfigError):
    """The ideal reference cannot be computed for this trace (no model, or no numpy)."""


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:  # pragma: no cover - numpy comes with matplotlib
        raise IdealError("--ideal needs numpy: pip install 'cvi-autoscaler[report]'") from exc
    return numpy


def ideal_sizes(
    model: MeetingModel,
    grid: Grid,
    *,
    calls_per_instance: float,
    boot_minutes: float,
    lag_minutes: float,
    quantiles: Sequence[float] = QUANTILES,
) -> dict[float, list[int]]:
    """Per quantile, the instances the ideal online policy asks for at each bucket of ``grid``
    (one-minute buckets; see the module docstring)."""
    np = _numpy()
    if round(grid.step_seconds) != 60:
        raise IdealError("the ideal reference models one-minute traces only")
    first = round(grid.start / 60.0) - model.origin  # model index of the trace's first minute
    n = grid.length
    lag = max(0, math.ceil(round(lag_minutes, 9)))
    boot = max(0, math.ceil(round(boot_minutes, 9)))
    ahead = boot + max(0, math.ceil(round(grid.interval_seconds / 60.0, 9)) - 1)
    rates = np.asarray(model.rates, dtype=float)
    total = len(rates)
    # Meeting-length law: survival S[x] = P(length > x).
    longest = max(d for d, _ in model.length_pmf) + 2
    pmf = np.zeros(longest + 1)
    for d, p in model.length_pmf:
        pmf[d] += p
    pmf /= pmf.sum()
    surv = 1.0 - np.cumsum(pmf)  # surv[x] = P(D > x)
    surv[surv < 1e-12] = 0.0
    ages = longest
    # Meetings begun at each minute still running at each age a: running[b, a] = #{D > a}.
    starts = np.asarray(model.starts, dtype=np.int64)
    lengths = np.asarray(model.lengths, dtype=np.int64)
    keep = (starts >= 0) & (starts < total)
    count = np.zeros((total, ages + 1), dtype=np.int32)
    np.add.at(count, (starts[keep], np.minimum(lengths[keep], ages)), 1)
    running = np.cumsum(count[:, ::-1], axis=1)[:, ::-1]  # #{D >= a}
    running = np.concatenate([running[:, 1:], np.zeros((total, 1), dtype=np.int32)], axis=1)
    # In progress at minute tau - 1 by age a: begun at tau - 1 - a, still running at age a.
    leads = np.arange(lag + 1, lag + 2 + ahead)  # minutes from the last one seen to the target
    taus = np.arange(first, first + n) - lag  # tau - 1 is the last minute the policy has seen
    mean = np.zeros((n, len(leads)))
    var = np.zeros_like(mean)
    third = np.zeros_like(mean)
    a_idx = np.arange(ages)
    s_now = surv[a_idx]
    for a in range(ages):
        b = taus - 1 - a
        ok = (b >= 0) & (b < total)
        col = np.zeros(n)
        col[ok] = running[b[ok], a]
        if not col.any() or s_now[a] <= 0.0:
            continue
        p = np.array([surv[min(a + k, len(surv) - 1)] for k in leads]) / s_now[a]
        mean += np.outer(col, p)
        var += np.outer(col, p * (1.0 - p))
        third += np.outer(col, p * (1.0 - p) * (1.0 - 2.0 * p))
    # Calls connecting from tau to the target minute, still running there: Poisson.
    padded = np.concatenate([rates, np.zeros(ahead + lag + 2)])
    for j, k in enumerate(leads):
        lam = np.zeros(n)
        for i in range(k):  # connects at tau + i, target tau - 1 + k: running if D > k - 1 - i
            idx = taus + i
            ok = (idx >= 0) & (idx < len(padded))
            lam[ok] += padded[idx[ok]] * surv[k - 1 - i]
        mean[:, j] += lam
        var[:, j] += lam
        third[:, j] += lam
    sd = np.sqrt(np.maximum(var, 1e-12))
    gamma = third / sd**3
    out: dict[float, list[int]] = {}
    for q in quantiles:
        z = NormalDist().inv_cdf(q)
        calls = np.ceil(mean + sd * (z + (z * z - 1.0) * gamma / 6.0) - 0.5)
        calls = np.maximum(calls, 0.0)
        inst = np.ceil(calls / calls_per_instance - 1e-9).max(axis=1)
        out[q] = [int(v) for v in inst]
    return out


def ideal_runs(
    spec: PoolSpec,
    calls: Sequence[float | None],
    grid: Grid,
    model: MeetingModel,
    *,
    quantiles: Sequence[float] = QUANTILES,
) -> dict[float, PoolRun]:
    """Replay one pool as the ideal online policy at each quantile (see the module docstring)."""
    sizes = ideal_sizes(
        model,
        grid,
        calls_per_instance=spec.limits.calls_per_instance,
        boot_minutes=spec.boot_seconds / 60.0,
        lag_minutes=spec.lag_seconds / 60.0,
        quantiles=quantiles,
    )
    lim = spec.limits
    runs: dict[float, PoolRun] = {}
    for q, per_bucket in sizes.items():
        reach = [min(max(k, lim.min), lim.max) for k in per_bucket]
        seer = dataclasses.replace(
            spec,
            behavior=IMMEDIATE,
            policies=(Foresight(per_bucket, grid),),
            meaning="calls",
            hold_at=reach,
        )
        runs[q] = replay_pool(seer, calls, grid)
    return runs
