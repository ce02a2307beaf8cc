"""decide() and plan_tick(): the clamp pipeline, table-driven, including HPA's edge cases."""

from __future__ import annotations

from dataclasses import replace

import pytest

from policies.target_tracking import TargetTracking, TargetTrackingConfig
from scaler.core import (
    Behavior,
    DirectionBehavior,
    MetricReading,
    Observation,
    PoolLimits,
    PoolPlan,
    PoolState,
    QuotaUsage,
    Reason,
    decide,
    plan_tick,
    record_scale,
)

POOL = PoolLimits("tc", 1, 20, 15.0, 4, "standardFSv2Family", "westeurope")
TT = (TargetTracking(TargetTrackingConfig(target_utilization=0.8)),)
NO_LIMITS = Behavior(
    tolerance=0.1,
    scale_up=DirectionBehavior(0, None, None, 60),
    scale_down=DirectionBehavior(0, None, None, 60),
)
NOW = 1_800_000_000.0
EMPTY = PoolState()


def run(
    current: int,
    calls: float | None,
    *,
    behavior: Behavior = NO_LIMITS,
    state: PoolState = EMPTY,
    pool: PoolLimits = POOL,
    headroom: int | None = None,
    in_flight: bool = False,
    reading: MetricReading | None = None,
    now: float = NOW,
):
    metric = reading or (MetricReading.ok(calls) if calls is not None else MetricReading.stale())
    return decide(
        pool=pool,
        behavior=behavior,
        policies=TT,
        observation=Observation(current, metric, in_flight),
        state=state,
        now=now,
        headroom_vcpus=headroom,
    )


@pytest.mark.parametrize(
    ("current", "calls", "desired", "reason"),
    [
        # 12 calls per instance is the target (15 × 0.8)
        (2, 24, 2, Reason.DESIRED_WITHIN_RANGE),  # exactly on target
        (2, 60, 5, Reason.DESIRED_WITHIN_RANGE),  # ceil(60 / 12)
        (2, 61, 6, Reason.DESIRED_WITHIN_RANGE),
        (10, 24, 2, Reason.DESIRED_WITHIN_RANGE),  # scale in when all agree
        (5, 63, 5, Reason.WITHIN_TOLERANCE),  # ratio 1.05: inside ±0.1, recommendation 6 held
        (5, 66, 5, Reason.WITHIN_TOLERANCE),  # ratio 1.1: on the band's edge, held
        (5, 54, 5, Reason.DESIRED_WITHIN_RANGE),  # ratio 0.9: ceil already gives 5
        (5, 66.1, 6, Reason.DESIRED_WITHIN_RANGE),  # ratio 1.102: above the band
        (3, 0, 1, Reason.TOO_FEW_INSTANCES),  # never below min
        (20, 1000, 20, Reason.TOO_MANY_INSTANCES),  # never above max
        (0, 30, 3, Reason.DESIRED_WITHIN_RANGE),  # from zero instances (no ratio)
    ],
)
def test_target_tracking_pipeline(current: int, calls: float, desired: int, reason: Reason) -> None:
    d = run(current, calls)
    assert (d.desired, d.reason) == (desired, reason)


@pytest.mark.parametrize(
    ("reading", "reason"),
    [
        (MetricReading.stale("no bucket"), Reason.METRICS_STALE),
        (MetricReading.missing(), Reason.METRICS_MISSING),
    ],
)
def test_missing_or_stale_data_holds_and_never_scales_in(
    reading: MetricReading, reason: Reason
) -> None:
    d = run(10, None, reading=reading)
    assert (d.desired, d.reason) == (10, reason)
    assert d.state.recommendations == ()  # nothing unknown enters the stabilisation window


def test_missing_data_floor_scales_out_but_not_in() -> None:
    behavior = replace(NO_LIMITS, missing_data_floor=4)
    assert run(2, None, behavior=behavior).desired == 4
    assert run(6, None, behavior=behavior).desired == 6


def test_missing_data_still_respects_min_but_not_max_downwards() -> None:
    assert run(0, None).desired == POOL.min
    over_max = replace(POOL, max=5)
    d = run(8, None, pool=over_max)
    assert (d.desired, d.reason) == (8, Reason.METRICS_STALE)


def test_resize_in_flight_holds_even_under_load() -> None:
    d = run(2, 500, in_flight=True)
    assert (d.desired, d.reason) == (2, Reason.RESIZE_IN_FLIGHT)


def test_scale_down_stabilisation_uses_the_highest_recommendation_of_the_window() -> None:
    behavior = replace(NO_LIMITS, scale_down=DirectionBehavior(300, None, None, 60))
    state = PoolState()
    # a burst asks for 8, then load drops: for 300 s the pool stays at 8
    d = run(8, 96, behavior=behavior, state=state, now=NOW)
    assert d.desired == 8
    d = run(8, 12, behavior=behavior, state=d.state, now=NOW + 120)
    assert (d.desired, d.reason) == (8, Reason.SCALE_DOWN_STABILIZED)
    d = run(8, 12, behavior=behavior, state=d.state, now=NOW + 299)
    assert d.desired == 8
    d = run(8, 12, behavior=behavior, state=d.state, now=NOW + 301)
    assert (d.desired, d.reason) == (1, Reason.DESIRED_WITHIN_RANGE)


def test_scale_up_stabilisation_uses_the_lowest_recommendation_of_the_window() -> None:
    behavior = replace(NO_LIMITS, scale_up=DirectionBehavior(60, None, None, 60))
    d = run(2, 24, behavior=behavior, now=NOW)
    d = run(2, 120, behavior=behavior, state=d.state, now=NOW + 30)
    assert (d.desired, d.reason) == (2, Reason.SCALE_UP_STABILIZED)
    d = run(2, 120, behavior=behavior, state=d.state, now=NOW + 61)
    assert d.desired == 10


@pytest.mark.parametrize(
    ("rule", "current", "events", "desired"),
    [
        (DirectionBehavior(0, 4, None, 60), 2, (), 6),  # +4 instances per minute
        (DirectionBehavior(0, None, 100, 60), 2, (), 4),  # +100 % per minute
        (DirectionBehavior(0, 4, 100, 60, "max"), 10, (), 20),  # the policy allowing more
        (DirectionBehavior(0, 4, 100, 60, "min"), 10, (), 14),  # the policy allowing less
        (DirectionBehavior(0, 4, None, 60), 6, ((NOW - 30, 4),), 6),  # period already used up
        (DirectionBehavior(0, 4, None, 60), 6, ((NOW - 61, 4),), 10),  # period has passed
        (DirectionBehavior(0, 0, 0, 60), 2, (), 2),  # scale-up disabled
    ],
)
def test_scale_up_rate_limit(rule, current, events, desired) -> None:
    behavior = replace(NO_LIMITS, scale_up=rule)
    d = run(current, 20 * 12, behavior=behavior, state=PoolState(scale_events=events))
    assert d.desired == desired
    if desired < 20:
        assert d.reason in (Reason.SCALE_UP_LIMIT,)


@pytest.mark.parametrize(
    ("rule", "current", "events", "desired"),
    [
        (DirectionBehavior(0, 1, None, 300), 10, (), 9),
        (DirectionBehavior(0, None, 50, 300), 10, (), 5),
        (DirectionBehavior(0, 2, 50, 300, "max"), 10, (), 5),
        (DirectionBehavior(0, 2, 50, 300, "min"), 10, (), 8),
        (DirectionBehavior(0, 2, None, 300), 9, ((NOW - 100, -1),), 8),
    ],
)
def test_scale_down_rate_limit(rule, current, events, desired) -> None:
    behavior = replace(NO_LIMITS, scale_down=rule)
    d = run(current, 0, behavior=behavior, state=PoolState(scale_events=events))
    assert (d.desired, d.reason) == (desired, Reason.SCALE_DOWN_LIMIT)


def test_record_scale_feeds_the_rate_limit() -> None:
    behavior = replace(NO_LIMITS, scale_up=DirectionBehavior(0, 2, None, 60))
    d = run(2, 240, behavior=behavior)
    assert d.desired == 4
    state = record_scale(d.state, now=NOW, change=d.change)
    assert state.last_scale_up == NOW
    d = run(4, 240, behavior=behavior, state=state, now=NOW + 30)
    assert (d.desired, d.reason) == (4, Reason.SCALE_UP_LIMIT)


@pytest.mark.parametrize(
    ("headroom", "desired", "reason"),
    [
        (None, 10, Reason.DESIRED_WITHIN_RANGE),  # unknown quota: Azure itself will refuse
        (100, 10, Reason.DESIRED_WITHIN_RANGE),
        (12, 5, Reason.QUOTA_LIMITED),  # 12 vCPUs = 3 more instances of 4 vCPUs
        (15, 5, Reason.QUOTA_LIMITED),  # partial instances do not count
        (0, 2, Reason.QUOTA_LIMITED),
    ],
)
def test_quota_clamps_scale_up(headroom, desired, reason) -> None:
    d = run(2, 120, headroom=headroom)
    assert (d.desired, d.reason) == (desired, reason)
    if reason is Reason.QUOTA_LIMITED:
        assert "headroom" in d.detail


def test_quota_never_blocks_scale_in() -> None:
    assert run(10, 12, headroom=0).desired == 1


def test_steps_record_the_clamp_order() -> None:
    behavior = replace(NO_LIMITS, scale_up=DirectionBehavior(0, 6, None, 60))
    d = run(2, 1000, behavior=behavior, headroom=8)
    assert [s.stage for s in d.steps] == ["policy", "rate_limit", "quota"]
    assert [s.reason for s in d.steps] == [
        Reason.DESIRED_WITHIN_RANGE,
        Reason.SCALE_UP_LIMIT,
        Reason.QUOTA_LIMITED,
    ]
    assert d.reason is Reason.QUOTA_LIMITED and d.desired == 4


def _plan(name: str, priority: int, current: int, calls: float, family: str = "standardFSv2Family"):
    return PoolPlan(
        limits=PoolLimits(name, 1, 50, 15.0, 4, family, "westeurope", priority),
        behavior=NO_LIMITS,
        policies=TT,
        observation=Observation(current, MetricReading.ok(calls)),
        state=PoolState(),
    )


def test_plan_tick_shares_regional_quota_by_priority() -> None:
    usage = {
        "westeurope": {
            "cores": QuotaUsage("cores", 16, 40),  # 24 vCPUs free in the region
            "standardFSv2Family": QuotaUsage("standardFSv2Family", 16, 100),
        }
    }
    pools = [_plan("b-low", 0, 2, 120), _plan("a-high", 10, 2, 120)]
    low, high = plan_tick(pools=pools, usage=usage, now=NOW)
    assert (high.pool, high.desired, high.reason) == ("a-high", 8, Reason.QUOTA_LIMITED)
    assert (low.pool, low.desired, low.reason) == ("b-low", 2, Reason.QUOTA_LIMITED)


def test_plan_tick_family_and_regional_total_both_bind() -> None:
    usage = {
        "westeurope": {
            "cores": QuotaUsage("cores", 0, 1000),
            "standardFSv2Family": QuotaUsage("standardFSv2Family", 8, 16),
            "standardDSv5Family": QuotaUsage("standardDSv5Family", 0, 1000),
        }
    }
    pools = [_plan("fs", 0, 2, 120), _plan("ds", 0, 2, 120, "standardDSv5Family")]
    ds, fs = plan_tick(pools=pools, usage=usage, now=NOW)[::-1]
    assert (fs.desired, fs.reason) == (4, Reason.QUOTA_LIMITED)
    assert (ds.desired, ds.reason) == (10, Reason.DESIRED_WITHIN_RANGE)


def test_plan_tick_is_deterministic_on_ties() -> None:
    # usage.list always lists the pool's family too; without it the quota is unknown (QuotaUnknown)
    usage = {
        "westeurope": {
            "cores": QuotaUsage("cores", 0, 8),
            "standardFSv2Family": QuotaUsage("standardFSv2Family", 0, 100),
        }
    }
    pools = [_plan("zeta", 0, 1, 120), _plan("alpha", 0, 1, 120)]
    zeta, alpha = plan_tick(pools=pools, usage=usage, now=NOW)
    assert (alpha.desired, zeta.desired) == (3, 1)
