"""The backtest's model and accounting: exact small cases, and properties over random demand."""

from __future__ import annotations

import math
import pickle
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import pairwise
from types import MappingProxyType
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.target_tracking import TargetTracking, TargetTrackingConfig
from scaler.backtest import BacktestError, Options, run_backtest
from scaler.backtest.baselines import need, oracle, oracle_sizes, static_peak
from scaler.backtest.engine import Grid, PoolSpec, Steps, carry_demand, replay_pool
from scaler.config import parse_config
from scaler.core.types import (
    Behavior,
    DirectionBehavior,
    PolicyContext,
    PoolLimits,
    Recommendation,
)
from scaler.traces import Column, Trace
from tests.conftest import config_doc, examples, pool_table

START = datetime(2026, 11, 18, tzinfo=UTC).timestamp()
FREE = Behavior(
    tolerance=0.0,
    scale_up=DirectionBehavior(0.0, None, None, 60.0, "max"),
    scale_down=DirectionBehavior(0.0, None, None, 60.0, "max"),
)
"""No tolerance, stabilisation or rate limit: the policy's answer is applied as it is."""


def limits(*, min_: int = 0, max_: int = 50, cpi: float = 10.0, vcpus: int = 4) -> PoolLimits:
    return PoolLimits("p", min_, max_, cpi, vcpus, "fam", "loc")


def spec(
    policy: object,
    *,
    min_: int = 0,
    cpi: float = 10.0,
    boot_minutes: float = 5.0,
    lag_minutes: float = 0.0,
    window_minutes: float = 1.0,
    behavior: Behavior = FREE,
    scale_in: str = "drop",
    meaning: str = "calls",
) -> PoolSpec:
    return PoolSpec(
        limits=limits(min_=min_, cpi=cpi),
        behavior=behavior,
        policies=(policy,),  # type: ignore[arg-type]
        boot_seconds=boot_minutes * 60.0,
        window_seconds=window_minutes * 60.0,
        lag_seconds=lag_minutes * 60.0,
        reduce="max",
        meaning=meaning,
        scale_in=scale_in,  # type: ignore[arg-type]
    )


def grid(n: int, scored: int = 0) -> Grid:
    return Grid(START, 60.0, n, scored, 60.0)


class Fixed:
    """Recommends a size per minute from a list (a scripted operator)."""

    name: ClassVar[str] = "fixed"

    def __init__(self, sizes: Sequence[int]) -> None:
        self.sizes = sizes

    def recommend(self, ctx: PolicyContext) -> Recommendation:
        i = int((ctx.now - START) // 60)
        return Recommendation(self.sizes[min(i, len(self.sizes) - 1)])


class Clairvoyant:
    """Knows the demand: asks at t for the largest need over [t, t + boot] (the oracle's rule)."""

    name: ClassVar[str] = "clairvoyant"

    def __init__(self, demand: Sequence[float], cpi: float, boot_steps: int) -> None:
        self.needs = need(demand, calls_per_instance=cpi, minimum=0)
        self.boot = boot_steps

    def recommend(self, ctx: PolicyContext) -> Recommendation:
        i = int((ctx.now - START) // 60)
        return Recommendation(max(self.needs[i : i + self.boot + 1]))


class Recorder:
    """Target tracking that remembers what it was shown."""

    name: ClassVar[str] = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[float, float | None, int]] = []
        self.inner = TargetTracking(TargetTrackingConfig(target_utilization=1.0))

    def recommend(self, ctx: PolicyContext) -> Recommendation | None:
        self.seen.append((ctx.now, ctx.calls, ctx.current))
        return self.inner.recommend(ctx)


# -- exact cases ------------------------------------------------------------------------------


def test_an_instance_serves_boot_minutes_after_it_is_requested_and_is_billed_from_then() -> None:
    # 30 calls from minute 10; the policy sees minute 10 at the tick of minute 11 (lag 0, the
    # bucket must be complete) and asks for 3 instances of 10 calls; they serve from minute 16.
    calls = [0.0] * 10 + [30.0] * 20
    rec = Recorder()
    run = replay_pool(spec(rec, boot_minutes=5), calls, grid(30))
    t = run.totals
    assert t.unserved_call_minutes == pytest.approx(6 * 30.0)  # minutes 10..15
    assert t.peak_shortfall_calls == pytest.approx(30.0)
    assert t.instance_seconds == pytest.approx(3 * 19 * 60.0)  # billed from minute 11
    assert t.call_minutes == pytest.approx(20 * 30.0)
    assert list(run.series.ready[:16]) == [0.0] * 16
    assert run.series.ready[16] == 3.0
    assert t.scale_actions == 1
    assert (t.min_instances, t.max_instances) == (0, 3)


def test_boot_zero_serves_the_minute_it_was_requested() -> None:
    run = replay_pool(spec(Fixed([2] * 10), boot_minutes=0), [20.0] * 10, grid(10))
    assert run.totals.unserved_call_minutes == 0.0


def test_the_metric_is_delayed_by_the_lag() -> None:
    calls = [float(i) for i in range(20)]
    rec = Recorder()
    replay_pool(spec(rec, lag_minutes=3), calls, grid(20))
    by_minute = {int((now - START) // 60): seen for now, seen, _ in rec.seen}
    # at minute 10 the newest complete bucket older than the 3-minute lag is minute 6
    assert by_minute[10] == 6.0
    assert by_minute[3] is None  # nothing visible yet: stale


def test_a_gap_hides_the_metric_but_demand_carries_on() -> None:
    calls: list[float | None] = [20.0] * 5 + [None] * 5 + [20.0] * 5
    rec = Recorder()
    run = replay_pool(spec(rec, min_=1), calls, grid(15))
    assert run.totals.call_minutes == pytest.approx(15 * 20.0)
    seen = {int((now - START) // 60): c for now, c, _ in rec.seen}
    assert seen[7] is None  # the policy saw nothing in the gap
    assert carry_demand([None, 3.0, None, 5.0]) == [0.0, 3.0, 3.0, 5.0]


def test_warm_up_is_not_scored() -> None:
    calls = [50.0] * 10 + [0.0] * 10
    run = replay_pool(spec(Fixed([0] * 20)), calls, grid(20, scored=10))
    assert run.totals.call_minutes == 0.0
    assert run.totals.unserved_call_minutes == 0.0
    assert len(run.series.demand) == 10


def test_dropping_a_busy_instance_drops_its_calls() -> None:
    sizes = [4] * 10 + [2] * 10
    run = replay_pool(spec(Fixed(sizes), min_=0, boot_minutes=0), [20.0] * 20, grid(20))
    # 20 calls over 4 instances; 2 removed at minute 10 with about 5 calls each (after churn)
    assert 8.0 < run.totals.dropped_calls <= 10.0
    assert run.totals.unserved_call_minutes == 0.0  # the 2 remaining hold the 20 calls
    assert run.totals.drain_instance_seconds == 0.0


def test_draining_keeps_the_calls_and_bills_until_they_end() -> None:
    sizes = [4] * 10 + [2] * 290
    calls = [20.0] * 10 + [10.0] * 290
    run = replay_pool(spec(Fixed(sizes), boot_minutes=0, scale_in="drain"), calls, grid(300))
    t = run.totals
    assert t.dropped_calls == 0.0
    assert t.unserved_call_minutes == 0.0
    assert t.drain_instance_seconds > 0
    drained = list(run.series.draining)
    assert drained[10] == 2.0 and drained[-1] == 0.0  # drained, then released


def test_drain_deadline_drops_what_is_left() -> None:
    sizes = [4] * 10 + [2] * 50
    calls = [40.0] * 10 + [20.0] * 50
    s = spec(Fixed(sizes), boot_minutes=0, scale_in="drain")
    s = PoolSpec(**{**{f: getattr(s, f) for f in s.__slots__}, "max_drain_seconds": 600.0})
    t = replay_pool(s, calls, grid(60)).totals
    assert t.dropped_calls > 0.0
    assert t.drain_instance_seconds <= 2 * 11 * 60.0


def test_idle_only_scale_in_waits_for_idle_instances_and_drops_nothing() -> None:
    # a drain-aware vmss: 4 instances with 5 calls each have none idle (4 × e^-5 < 1), so the
    # scale-in to 2 waits; once the load is down to 1 call, 3 are idle and 2 of them go
    sizes = [4] * 10 + [2] * 50
    calls = [20.0] * 30 + [1.0] * 30
    run = replay_pool(spec(Fixed(sizes), boot_minutes=0, scale_in="idle"), calls, grid(60))
    requested = list(run.series.requested)
    assert requested[10:30] == [4.0] * 20  # still 4 while every instance is busy
    assert requested[-1] == 2.0
    assert run.reasons["WaitingForIdle"] >= 20
    t = run.totals
    assert t.dropped_calls == 0.0
    assert t.unserved_call_minutes == 0.0
    assert t.drain_instance_seconds == 0.0  # nothing leaves busy, so nothing drains
    drain = replay_pool(spec(Fixed(sizes), boot_minutes=0, scale_in="drain"), calls, grid(60))
    assert t.instance_seconds > drain.totals.instance_seconds + drain.totals.drain_instance_seconds


def test_idle_only_scale_in_gives_up_waiting_after_max_drain_minutes() -> None:
    sizes = [4] * 10 + [2] * 50
    s = spec(Fixed(sizes), boot_minutes=0, scale_in="idle")
    s = PoolSpec(**{**{f: getattr(s, f) for f in s.__slots__}, "max_drain_seconds": 600.0})
    run = replay_pool(s, [20.0] * 60, grid(60))
    requested = list(run.series.requested)
    assert requested[10:20] == [4.0] * 10 and requested[21:] == [2.0] * 39
    assert run.reasons["DrainTimedOut"] == 1
    assert (
        8.0 < run.totals.dropped_calls <= 10.0
    )  # two busy instances' calls, as Azure deletes them


def test_cpu_metric_follows_the_documented_model() -> None:
    # 15 calls on 2 ready instances of 15: 7.5 per instance, cpu = 10 + 90 × 0.5 = 55 %,
    # which to_calls turns back into 0.55 × 2 × 15 = 16.5 calls
    rec = Recorder()
    s = spec(rec, min_=2, cpi=15.0, meaning="percent_of_capacity", behavior=Behavior(tolerance=0.5))
    replay_pool(s, [15.0] * 30, grid(30))
    later = [c for now, c, cur in rec.seen if now >= START + 5 * 60 and cur == 2]
    assert later and all(c == pytest.approx(16.5) for c in later)


def test_oracle_holds_the_largest_need_of_the_next_boot_minutes() -> None:
    assert oracle_sizes([0, 0, 3, 0, 0, 0, 1], boot_steps=2) == [3, 3, 3, 0, 1, 1, 1]
    demand = [0.0] * 5 + [25.0] * 5 + [0.0] * 10
    totals, sizes = oracle(demand, grid(20), calls_per_instance=10, minimum=0, boot_minutes=3)
    assert list(sizes[:11]) == [0, 0, 3, 3, 3, 3, 3, 3, 3, 3, 0]
    assert totals.instance_seconds == pytest.approx(8 * 3 * 60.0)
    assert totals.unserved_call_minutes == 0.0
    peak = static_peak(demand, grid(20), calls_per_instance=10, minimum=0)
    assert peak.instance_seconds == pytest.approx(3 * 20 * 60.0)


def test_a_clairvoyant_policy_costs_exactly_the_oracle() -> None:
    demand = [float(v) for v in [0, 5, 12, 30, 31, 8, 0, 0, 44, 44, 44, 10, 10, 3, 0, 0, 60, 2]]
    demand = [d for d in demand for _ in range(4)]
    boot = 3
    run = replay_pool(
        spec(Clairvoyant(demand, 10.0, boot), boot_minutes=boot), demand, grid(len(demand))
    )
    o, _ = oracle(demand, grid(len(demand)), calls_per_instance=10, minimum=0, boot_minutes=boot)
    assert run.totals.unserved_call_minutes == 0.0
    assert run.totals.instance_seconds == pytest.approx(o.instance_seconds)


def _config(**pool_over: object) -> object:
    return parse_config(
        config_doc(
            pool_table("a", **pool_over),
            pool_table("b", **pool_over),
            daemon={"interval_seconds": 60},
        )
    )


def _trace(columns: dict[str, list[float | None]]) -> Trace:
    n = len(next(iter(columns.values())))
    return Trace(
        start=datetime.fromtimestamp(START, UTC),
        step_seconds=60,
        pools=tuple(columns),
        calls=MappingProxyType({k: tuple(v) for k, v in columns.items()}),
        length=n,
    )


def test_forked_workers_give_the_same_result_as_one_process() -> None:
    wave = [float(40 + 35 * math.sin(i / 37.0)) for i in range(3000)]
    trace = _trace({"a": wave, "b": [w / 2 for w in wave]})
    config = _config()
    one = run_backtest(config, trace, options=Options(warmup_days=0.5, workers=1))  # type: ignore[arg-type]
    two = run_backtest(config, trace, options=Options(warmup_days=0.5, workers=2))  # type: ignore[arg-type]
    assert one.to_json() == two.to_json()


def test_a_warm_up_longer_than_the_trace_is_an_error() -> None:
    trace = _trace({"a": [1.0] * 100, "b": [1.0] * 100})
    with pytest.raises(BacktestError, match="leaves nothing to score"):
        run_backtest(_config(), trace)  # type: ignore[arg-type]


def test_a_pool_missing_from_the_trace_is_an_error() -> None:
    trace = _trace({"a": [1.0] * 100})
    with pytest.raises(BacktestError, match="no rows for pool"):
        run_backtest(_config(), trace, options=Options(warmup_days=0))  # type: ignore[arg-type]


def test_totals_add_up_the_pools() -> None:
    wave = [float(40 + 35 * math.sin(i / 37.0)) for i in range(1440)]
    trace = _trace({"a": wave, "b": [w / 2 for w in wave]})
    r = run_backtest(_config(), trace, options=Options(warmup_days=0.25))  # type: ignore[arg-type]
    a, b = r.pools["a"].metrics, r.pools["b"].metrics
    assert r.total.vcpu_hours == pytest.approx(a.vcpu_hours + b.vcpu_hours)
    assert r.total.call_minutes == pytest.approx(a.call_minutes + b.call_minutes)
    assert r.total.max_instances <= a.max_instances + b.max_instances
    assert r.oracle.vcpu_hours <= r.static_peak.vcpu_hours
    doc = r.to_json()
    assert set(doc) >= {"scored_from", "pools", "total", "baselines"}
    assert set(doc["baselines"]) == {"oracle", "static_peak", "clairvoyant"}
    for m in (doc["total"], doc["pools"]["a"], doc["baselines"]["oracle"]):
        assert set(m) >= {
            "vcpu_hours",
            "instance_hours",
            "call_minutes",
            "unserved_call_minutes",
            "dropped_calls",
            "peak_shortfall_calls",
            "scale_actions",
            "min_instances",
            "max_instances",
        }


# -- properties -------------------------------------------------------------------------------

demands = st.lists(
    st.one_of(st.none(), st.integers(0, 80).map(float)), min_size=20, max_size=240
).filter(lambda xs: any(x is not None for x in xs))


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    calls=demands,
    boot=st.integers(0, 8),
    lag=st.integers(0, 3),
    window=st.integers(1, 4),
    target=st.floats(0.4, 1.0),
    min_=st.integers(0, 2),
    scale_in=st.sampled_from(["drop", "drain", "idle"]),
    stabilize=st.sampled_from([0.0, 300.0]),
    scored=st.integers(0, 10),
)
def test_accounting_is_consistent(
    calls: list[float | None],
    boot: int,
    lag: int,
    window: int,
    target: float,
    min_: int,
    scale_in: str,
    stabilize: float,
    scored: int,
) -> None:
    n = len(calls)
    scored = min(scored, n - 1)
    behavior = Behavior(
        tolerance=0.1,
        scale_up=DirectionBehavior(0.0, 4, 100.0, 60.0, "max"),
        scale_down=DirectionBehavior(stabilize, None, 100.0, 60.0, "max"),
    )
    policy = TargetTracking(TargetTrackingConfig(target_utilization=target))
    s = spec(
        policy,
        min_=min_,
        boot_minutes=boot,
        lag_minutes=lag,
        window_minutes=window,
        behavior=behavior,
        scale_in=scale_in,
    )
    g = grid(n, scored)
    run = replay_pool(s, calls, g)
    t, series = run.totals, run.series
    step_minutes = 1.0

    # instance-hours are the integral of the requested capacity (+ the drained minutes)
    assert t.instance_seconds == pytest.approx(sum(series.requested) * 60.0)
    assert t.drain_instance_seconds == pytest.approx(sum(series.draining) * 60.0)
    if scale_in == "drop":
        assert t.drain_instance_seconds == 0.0

    # served + unserved = demand, minute by minute and in total
    assert t.served_call_minutes + t.unserved_call_minutes == pytest.approx(t.call_minutes)
    demand = carry_demand(calls)[scored:]
    assert t.call_minutes == pytest.approx(sum(demand) * step_minutes)
    for d, u, r in zip(demand, series.unserved, series.ready, strict=True):
        assert -1e-9 <= u <= d + 1e-9
        assert d - u <= r * 10.0 + sum(series.draining) * 10.0 + 1e-6
    assert t.peak_shortfall_calls == pytest.approx(max(series.unserved, default=0.0))
    assert t.min_instances <= min(series.requested) and max(series.requested) <= t.max_instances
    assert min(series.requested) >= min_

    # the oracle is the floor of every policy that leaves nothing unserved
    o, sizes = oracle(carry_demand(calls), g, calls_per_instance=10.0, minimum=0, boot_minutes=boot)
    if t.unserved_call_minutes == 0.0:
        assert o.instance_seconds <= t.instance_seconds + t.drain_instance_seconds + 1e-6
    assert all(sz * 10.0 >= d - 1e-9 for sz, d in zip(sizes, demand, strict=True))


class Generous(Clairvoyant):
    """The oracle's rule plus a few spare instances and a slow way down: never short, never
    cheaper than the oracle."""

    name: ClassVar[str] = "generous"

    def __init__(self, demand: Sequence[float], cpi: float, boot_steps: int, spare: int) -> None:
        super().__init__(demand, cpi, boot_steps)
        self.spare = spare

    def recommend(self, ctx: PolicyContext) -> Recommendation:
        return Recommendation(super().recommend(ctx).desired + self.spare)


@settings(max_examples=examples(40), deadline=None)
@given(
    demand=st.lists(st.integers(0, 60).map(float), min_size=10, max_size=200),
    boot=st.integers(0, 6),
    spare=st.integers(0, 3),
    scale_in=st.sampled_from(["drop", "drain", "idle"]),
    stabilize=st.sampled_from([0.0, 120.0, 600.0]),
)
def test_the_oracle_is_never_beaten_without_shortfall(
    demand: list[float], boot: int, spare: int, scale_in: str, stabilize: float
) -> None:
    behavior = Behavior(
        tolerance=0.0,
        scale_up=DirectionBehavior(0.0, None, None, 60.0, "max"),
        scale_down=DirectionBehavior(stabilize, None, None, 60.0, "max"),
    )
    policy = Generous(demand, 10.0, boot, spare)
    g = grid(len(demand), min(boot, len(demand) - 1))  # the first boot minutes cannot be served
    run = replay_pool(
        spec(policy, boot_minutes=boot, behavior=behavior, scale_in=scale_in), demand, g
    )
    o, _ = oracle(demand, g, calls_per_instance=10.0, minimum=0, boot_minutes=boot)
    assert run.totals.unserved_call_minutes == 0.0
    cost = run.totals.instance_seconds + run.totals.drain_instance_seconds
    assert o.instance_seconds <= cost + 1e-6
    if spare == 0 and stabilize == 0.0 and scale_in == "drop":
        assert cost == pytest.approx(o.instance_seconds)


@settings(max_examples=examples(80), deadline=None)
@given(
    st.lists(st.sampled_from([0.0, 1.0, 2.5, 3.0, 7.0]), max_size=60),
    st.integers(-70, 70),
    st.integers(-70, 70),
    st.sampled_from([1, 2, 3, -1]),
)
def test_steps_read_as_the_series_they_stand_for(
    items: list[float], a: int, b: int, stride: int
) -> None:
    steps = Steps.of(items)
    assert list(steps) == items and len(steps) == len(items)
    assert steps == items
    assert sum(steps) == sum(items)  # the same additions in the same order: equal, not close
    assert max(steps, default=-1.0) == max(items, default=-1.0)
    assert list(steps[a:b:stride]) == items[a:b:stride]
    assert list(steps[a:]) == items[a:] and list(steps[:b]) == items[:b]
    for i in (a, b):
        if -len(items) <= i < len(items):
            assert steps[i] == items[i]
        else:
            with pytest.raises(IndexError, match="Steps index out of range"):
                steps[i]
    runs = list(steps.runs())
    assert sum(n for _, n, _ in runs) == len(items)
    assert all(x[2] != y[2] for x, y in pairwise(runs))  # maximal runs
    assert list(steps.whole()) == [int(v) for v in items]
    assert pickle.loads(pickle.dumps(steps)) == items


def test_replay_of_a_column_is_the_replay_of_its_tuple() -> None:
    calls: list[float | None] = [0, 4, 12, 30, None, None, 45, 38, 20, 7, 0, None, 3] * 3
    policy = TargetTracking(TargetTrackingConfig(target_utilization=0.7))
    for scale_in, meaning in (
        ("drop", "calls"),
        ("drain", "calls"),
        ("idle", "calls"),
        ("drop", "percent_of_capacity"),
        ("drain", "calls_per_instance"),
    ):
        s = spec(policy, min_=1, boot_minutes=2, lag_minutes=1, scale_in=scale_in, meaning=meaning)
        g = grid(len(calls), 5)
        as_tuple = replay_pool(s, tuple(calls), g)
        as_column = replay_pool(s, Column(calls), g)
        assert as_column.totals == as_tuple.totals
        assert as_column.reasons == as_tuple.reasons
        for key in ("demand", "ready", "requested", "unserved", "draining"):
            assert list(getattr(as_column.series, key)) == list(getattr(as_tuple.series, key))
