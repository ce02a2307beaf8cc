"""Run a backtest: one config on one trace, every pool replayed by ``engine.replay_pool``.

Pools are independent (quota is not modelled), so a long backtest replays them in up to two
forked worker processes; short ones stay in this process. Results are identical either way.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import threading
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scaler.backtest.baselines import clairvoyant, oracle, static_peak
from scaler.backtest.engine import (
    DEFAULT_CPU_IDLE_PERCENT,
    MEAN_CALL_MINUTES,
    SCALE_IN_MODES,
    Grid,
    PoolRun,
    PoolSpec,
    PoolTotals,
    ScaleIn,
    Steps,
    carried_demand,
    nan_buffer,
    replay_pool,
)
from scaler.backtest.results import BacktestResult, Metrics, PoolResult, combine
from scaler.config import Config, PoolConfig
from scaler.errors import ConfigError
from scaler.kinds import kind_of, limits_of
from scaler.loadgen import MeetingModel
from scaler.policyset import build_policies
from scaler.traces import Trace

PARALLEL_MIN_STEPS = 150_000
"""Below this many pool-steps a backtest stays in one process (forking costs more)."""


class BacktestError(ConfigError):
    """The trace and the config (or the options) do not fit together: exit 2."""


@dataclass(frozen=True, slots=True)
class Options:
    """Knobs of the model (see ``engine``); the defaults are the documented ones."""

    warmup_days: float = 7.0
    scale_in: ScaleIn | None = None
    """``drop``, ``drain`` or ``idle`` for every pool; ``None``: by pool (``scale_in_mode``)."""
    cpu_idle_percent: float = DEFAULT_CPU_IDLE_PERCENT
    mean_call_minutes: float = MEAN_CALL_MINUTES
    workers: int | None = None
    """Processes for the replay; ``None``: up to 2 when the run is long enough."""

    def describe(self) -> dict[str, Any]:
        return {
            "scale_in": self.scale_in or "by pool",
            "cpu_idle_percent": self.cpu_idle_percent,
            "mean_call_minutes": self.mean_call_minutes,
        }


def scale_in_mode(pool: PoolConfig) -> ScaleIn:
    """How a pool's scale-in treats busy instances when the options do not say: as its kind
    replays it (``scaler.kinds``: a plain ``vmss`` drops, a drain-aware one removes only idle
    instances, ``pexip-teams`` and ``vm-set`` drain)."""
    return kind_of(pool).replay_mode(pool)


def _max_drain_seconds(pool: PoolConfig) -> float | None:
    """How long the pool's idle-only scale-in waits for busy instances, as its kind says."""
    return kind_of(pool).max_drain_seconds(pool)


def grid_for(config: Config, trace: Trace, warmup_days: float) -> Grid:
    step = float(trace.step_seconds)
    scored = math.ceil(round(warmup_days * 86400.0 / step, 9))
    if scored >= trace.length:
        days = trace.length * step / 86400.0
        raise BacktestError(
            f"--warmup-days: the trace covers {days:g} days, so a warm-up of "
            f"{warmup_days:g} days leaves nothing to score"
        )
    return Grid(
        start=trace.start.timestamp(),
        step_seconds=step,
        length=trace.length,
        scored_index=scored,
        interval_seconds=float(config.daemon.interval_seconds),
    )


def pool_spec(pool: PoolConfig, config: Config, options: Options) -> PoolSpec:
    """What the replay needs of ``pool``, with newly built policies."""
    m = pool.metric
    return PoolSpec(
        limits=limits_of(pool, config.azure.location),
        behavior=pool.behavior.to_core(),
        policies=build_policies(pool),
        boot_seconds=pool.boot_minutes * 60.0,
        window_seconds=m.window_minutes * 60.0,
        lag_seconds=m.lag_minutes * 60.0,
        reduce=m.reduce,
        meaning=m.meaning,
        history_seconds=m.history_minutes * 60.0,
        scale_in=options.scale_in or scale_in_mode(pool),
        max_drain_seconds=_max_drain_seconds(pool),
        cpu_idle_percent=options.cpu_idle_percent,
        mean_call_minutes=options.mean_call_minutes,
    )


def pool_specs(config: Config, options: Options) -> list[PoolSpec]:
    return [pool_spec(pool, config, options) for pool in config.pools]


@dataclass(frozen=True, slots=True)
class _FreshSpec:
    """The spec of the ``index``-th pool with policies built for one replay: what a policy
    learns as it replays (e.g. the predictive policy's caches, megabytes over a long trace)
    is garbage once its pool is scored, rather than kept for the rest of the run by a spec
    shared with the other pools."""

    config: Config
    options: Options

    def __call__(self, index: int) -> PoolSpec:
        return pool_spec(self.config.pools[index], self.config, self.options)


def check_pools(config: Config, trace: Trace) -> None:
    """Every pool of the config needs its column in the trace (the reverse is ``load_trace``'s
    ``known_pools`` check, which names the line)."""
    missing = [p.name for p in config.pools if p.name not in trace.calls]
    if missing:
        have = ", ".join(trace.pools) or "none"
        raise BacktestError(
            f"trace has no rows for pool(s) {', '.join(map(repr, missing))} of the config "
            f"(trace has: {have})"
        )


def run_backtest(
    config: Config,
    trace: Trace,
    *,
    options: Options | None = None,
    config_name: str = "",
    trace_name: str = "",
    progress: Callable[[int], None] | None = None,
    models: Mapping[str, MeetingModel] | None = None,
) -> BacktestResult:
    """Replay ``trace`` through ``config``'s pools and policies and score it.

    ``progress(n)`` is called with the number of pool-buckets done since its last call.
    ``models``: the generator's model of each pool's load (a scenario family's trace): the
    ideal online reference (``ideal.py``) is then computed at ``ideal.QUANTILES``.
    """
    options = options or Options()
    if options.scale_in is not None and options.scale_in not in SCALE_IN_MODES:
        raise BacktestError(f"--scale-in: must be one of {', '.join(SCALE_IN_MODES)}")
    check_pools(config, trace)
    grid = grid_for(config, trace, options.warmup_days)
    specs = pool_specs(config, options)
    columns = [trace.calls[s.name] for s in specs]
    pool_models = [None if models is None else models.get(s.name) for s in specs]
    scored_pools = _replay_all(
        specs,
        columns,
        grid,
        options.workers,
        progress,
        fresh=_FreshSpec(config, options),
        models=pool_models,
    )

    pools = {
        spec.name: _pool_result(spec, scored)
        for spec, scored in zip(specs, scored_pools, strict=True)
    }
    totals = _Totals.of(list(pools.values()), grid.scored_steps)
    return BacktestResult(
        config=config_name,
        trace=trace_name,
        scored_from=datetime.fromtimestamp(grid.scored_from, UTC),
        scored_until=datetime.fromtimestamp(grid.end, UTC),
        step_seconds=grid.step_seconds,
        warmup_days=options.warmup_days,
        pools=pools,
        total=totals.policy,
        oracle=totals.oracle,
        static_peak=totals.static_peak,
        options=options.describe(),
        clairvoyant=totals.clairvoyant,
        ideal=totals.ideal,
    )


def _pool_result(spec: PoolSpec, scored: Scored) -> PoolResult:
    """One pool's replay and its references, scored as metrics in its vCPUs."""
    run, o_totals, o_sizes, s_totals, c_totals, c_sizes, ideal = scored
    lim = spec.limits
    vcpus = lim.vcpus_per_instance
    return PoolResult(
        name=spec.name,
        vcpus_per_instance=vcpus,
        calls_per_instance=lim.calls_per_instance,
        metrics=Metrics.of(run.totals, vcpus_per_instance=vcpus),
        oracle=Metrics.of(o_totals, vcpus_per_instance=vcpus),
        static_peak=Metrics.of(s_totals, vcpus_per_instance=vcpus),
        run=run,
        oracle_sizes=o_sizes,
        reasons=run.reasons,
        clairvoyant=Metrics.of(c_totals, vcpus_per_instance=vcpus),
        clairvoyant_sizes=c_sizes,
        ideal={q: (Metrics.of(t, vcpus_per_instance=vcpus), req) for q, (t, req) in ideal.items()},
    )


@dataclass(frozen=True, slots=True)
class _Totals:
    """The whole config's figures: the policies' and each reference's, pools combined bucket
    by bucket (so ``max_instances`` is the fleet's peak, not a sum of peaks)."""

    policy: Metrics
    oracle: Metrics
    static_peak: Metrics
    clairvoyant: Metrics
    ideal: dict[float, Metrics]

    @classmethod
    def of(cls, results: list[PoolResult], n: int) -> _Totals:
        """``n``: scored buckets."""
        ideal = {}
        if results and all(p.ideal for p in results):
            for q in sorted(set.intersection(*(set(p.ideal) for p in results))):
                ideal[q] = combine(
                    [p.ideal[q][0] for p in results],
                    requested=[p.ideal[q][1] for p in results],
                )
        return cls(
            policy=combine(
                [p.metrics for p in results],
                requested=[p.run.series.requested for p in results],
                unserved=[p.run.series.unserved for p in results],
            ),
            oracle=combine(
                [p.oracle for p in results], requested=[p.oracle_sizes for p in results]
            ),
            static_peak=combine(
                [p.static_peak for p in results],
                requested=[_constant(float(p.static_peak.max_instances), n) for p in results],
            ),
            clairvoyant=combine(
                [p.clairvoyant for p in results if p.clairvoyant is not None],
                requested=[p.clairvoyant_sizes for p in results],
            ),
            ideal=ideal,
        )


def _constant(value: float, length: int) -> Steps[float]:
    return Steps(array("q", (0,) if length else ()), array("d", (value,) if length else ()), length)


# -- running the pools ------------------------------------------------------------------------

IdealRuns = dict[float, tuple[PoolTotals, "Steps[int]"]]
"""Per quantile, the ideal online reference's totals and requested size per scored bucket."""
Scored = tuple[PoolRun, PoolTotals, "Steps[float]", PoolTotals, PoolTotals, "Steps[int]", IdealRuns]
"""A pool's run, the oracle's totals and sizes, the static-peak totals, the clairvoyant's
totals and requested size per scored bucket, and the ideal online reference (empty without a
model)."""


def _score_pool(
    spec: PoolSpec,
    column: Sequence[float | None],
    grid: Grid,
    progress: Callable[[int], None] | None,
    model: MeetingModel | None = None,
) -> Scored:
    """Replay one pool and compute its baselines (in a worker when there are workers)."""
    run = replay_pool(spec, column, grid, progress=progress)
    demand = carried_demand(nan_buffer(column))
    cpi = spec.limits.calls_per_instance
    o_totals, o_sizes = oracle(
        demand, grid, calls_per_instance=cpi, minimum=0, boot_minutes=spec.boot_seconds / 60.0
    )
    s_totals = static_peak(demand, grid, calls_per_instance=cpi, minimum=0)
    seer = clairvoyant(spec, column, grid, demand=demand)
    ideal: IdealRuns = {}
    if model is not None:
        from scaler.backtest.ideal import ideal_runs

        for q, r in ideal_runs(spec, column, grid, model).items():
            ideal[q] = (r.totals, r.series.requested.whole())
    return (
        run,
        o_totals,
        o_sizes,
        s_totals,
        seer.totals,
        seer.series.requested.whole(),
        ideal,
    )


SpecOf = Callable[[int], PoolSpec]
"""The spec a pool is replayed with, by index (``_FreshSpec``: with policies of its own)."""

_FORKED: (
    tuple[SpecOf, Sequence[Sequence[float | None]], Grid, Sequence[MeetingModel | None]] | None
) = None
_COUNTER: Any = None


def _replay_forked(index: int) -> Scored:
    assert _FORKED is not None
    spec_of, columns, grid, models = _FORKED
    counter = _COUNTER

    def tick(n: int) -> None:
        if counter is not None:
            with counter.get_lock():
                counter.value += n

    return _score_pool(spec_of(index), columns[index], grid, tick, models[index])


def _replay_all(
    specs: Sequence[PoolSpec],
    columns: Sequence[Sequence[float | None]],
    grid: Grid,
    workers: int | None,
    progress: Callable[[int], None] | None,
    *,
    fresh: SpecOf | None = None,
    models: Sequence[MeetingModel | None] | None = None,
) -> list[Scored]:
    """Score every pool, in forked workers when the run is long enough. ``fresh``: the spec
    each replay uses (default: ``specs[index]``, whose policies then keep what they learn)."""
    spec_of: SpecOf = fresh if fresh is not None else specs.__getitem__
    pool_models: Sequence[MeetingModel | None] = models or [None] * len(specs)
    steps = grid.length * len(specs)
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if steps >= PARALLEL_MIN_STEPS else 1
    workers = min(workers, len(specs))
    forkable = "fork" in multiprocessing.get_all_start_methods()
    if workers <= 1 or not forkable or threading.active_count() > 1:
        return [
            _score_pool(spec_of(index), column, grid, progress, pool_models[index])
            for index, column in enumerate(columns)
        ]

    global _FORKED, _COUNTER
    ctx = multiprocessing.get_context("fork")
    _FORKED = (spec_of, columns, grid, pool_models)
    _COUNTER = ctx.Value("q", 0)
    reported = 0
    try:
        with ctx.Pool(workers) as pool:
            pending = pool.map_async(_replay_forked, range(len(specs)), chunksize=1)
            while not pending.ready():
                pending.wait(0.2)
                if progress is not None:
                    done = int(_COUNTER.value)
                    if done > reported:
                        progress(done - reported)
                        reported = done
            runs: list[Scored] = pending.get()
    finally:
        _FORKED = None
        _COUNTER = None
    if progress is not None and steps > reported:
        progress(steps - reported)
    sys.stderr.flush()
    return runs
