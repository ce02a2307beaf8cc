"""Safety invariants of the core, for any input hypothesis can think of."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.target_tracking import TargetTracking, TargetTrackingConfig
from scaler.core import (
    Behavior,
    DirectionBehavior,
    MetricReading,
    MetricStatus,
    Observation,
    PoolLimits,
    PoolPlan,
    PoolState,
    QuotaUsage,
    Reason,
    decide,
    plan_tick,
)
from tests.conftest import examples

NOW = 1_800_000_000.0

directions = st.builds(
    DirectionBehavior,
    stabilization_seconds=st.sampled_from([0.0, 60.0, 300.0]),
    max_instances=st.one_of(st.none(), st.integers(0, 10)),
    max_percent=st.one_of(st.none(), st.floats(0, 200)),
    period_seconds=st.sampled_from([15.0, 60.0, 300.0]),
    select=st.sampled_from(["max", "min"]),
)
behaviors = st.builds(
    Behavior,
    tolerance=st.floats(0, 0.5),
    scale_up=directions,
    scale_down=directions,
    missing_data_floor=st.one_of(st.none(), st.integers(0, 30)),
)
readings = st.one_of(
    st.builds(MetricReading.ok, st.floats(0, 5000)),
    st.just(MetricReading.stale()),
    st.just(MetricReading.missing()),
)
history = st.lists(st.tuples(st.floats(NOW - 600, NOW - 1), st.integers(0, 60)), max_size=20).map(
    lambda xs: tuple(sorted(xs))
)
events = st.lists(
    st.tuples(st.floats(NOW - 600, NOW - 1), st.integers(-10, 10).filter(bool)), max_size=10
).map(lambda xs: tuple(sorted(xs)))


@st.composite
def pools(draw: st.DrawFn, name: str = "p") -> PoolLimits:
    lo = draw(st.integers(0, 10))
    hi = draw(st.integers(lo, 40))
    return PoolLimits(
        name,
        lo,
        hi,
        draw(st.sampled_from([1.0, 15.0, 16.0])),
        draw(st.sampled_from([2, 4, 8])),
        draw(st.sampled_from(["fam-a", "fam-b"])),
        "westeurope",
        draw(st.integers(-2, 2)),
    )


@settings(max_examples=examples(400), deadline=None)
@given(
    pool=pools(),
    behavior=behaviors,
    current=st.integers(0, 50),
    reading=readings,
    recs=history,
    evts=events,
    headroom=st.one_of(st.none(), st.integers(-8, 200)),
    target=st.floats(0.1, 1.0),
)
def test_decide_invariants(pool, behavior, current, reading, recs, evts, headroom, target) -> None:
    policies = (TargetTracking(TargetTrackingConfig(target_utilization=target)),)
    d = decide(
        pool=pool,
        behavior=behavior,
        policies=policies,
        observation=Observation(current, reading),
        state=PoolState(recs, evts),
        now=NOW,
        headroom_vcpus=headroom,
    )
    # never below min, except where the quota (the last clamp) cannot fit min: then it rises as
    # far as the quota allows and says so
    if d.desired < pool.min:
        assert d.reason is Reason.QUOTA_LIMITED and d.desired >= current
    if d.desired > current:
        # a scale-up never exceeds the quota headroom, and never goes above max
        if headroom is not None:
            assert (d.desired - current) * pool.vcpus_per_instance <= max(0, headroom)
        assert d.desired <= max(pool.max, pool.min)
    if reading.status is not MetricStatus.OK:
        # no scale-in on missing or stale data
        assert d.desired >= current
    elif current <= pool.max and d.desired < current:
        assert d.desired >= pool.min
    if current > pool.max and reading.status is MetricStatus.OK:
        assert d.desired <= pool.max


@settings(max_examples=examples(200), deadline=None)
@given(
    specs=st.lists(
        st.tuples(pools(), st.integers(0, 20), st.floats(0, 2000)), min_size=1, max_size=6
    ),
    cores=st.tuples(st.integers(0, 100), st.integers(0, 200)),
    fam=st.tuples(st.integers(0, 100), st.integers(0, 200)),
)
def test_plan_tick_never_grants_more_than_the_quota(specs, cores, fam) -> None:
    plans = [
        PoolPlan(
            limits=PoolLimits(
                f"p{i}",
                p.min,
                p.max,
                p.calls_per_instance,
                p.vcpus_per_instance,
                p.quota_family,
                p.location,
                p.priority,
            ),
            behavior=Behavior(scale_up=DirectionBehavior(0, None, None, 60)),
            policies=(TargetTracking(),),
            observation=Observation(current, MetricReading.ok(calls)),
            state=PoolState(),
        )
        for i, (p, current, calls) in enumerate(specs)
    ]
    usage = {
        "westeurope": {
            "cores": QuotaUsage("cores", cores[0], cores[1]),
            "fam-a": QuotaUsage("fam-a", fam[0], fam[1]),
        }
    }
    decisions = plan_tick(pools=plans, usage=usage, now=NOW)
    added = {"cores": 0, "fam-a": 0}
    for plan, d in zip(plans, decisions, strict=True):
        assert d.pool == plan.limits.name
        # only scale-ups to reach min may exceed the quota (min is a floor the operator owes)
        up = max(0, d.desired - max(d.current, plan.limits.min)) * plan.limits.vcpus_per_instance
        added["cores"] += up
        if plan.limits.quota_family == "fam-a":
            added["fam-a"] += up
    assert added["cores"] <= usage["westeurope"]["cores"].headroom
    assert added["fam-a"] <= usage["westeurope"]["fam-a"].headroom
