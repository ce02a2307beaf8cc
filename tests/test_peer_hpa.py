"""Kubernetes' own HPA test cases, replayed through ``decide()``.

Each case names its source: the test (and the case's ``name`` in a table test) in
kubernetes/kubernetes ``pkg/controller/podautoscaler/horizontal_test.go`` or
``replica_calculator_test.go``. The numbers are theirs; the harness is ours. HPA's "desired
replicas before normalisation" is a policy answer here (``Fixed``); its ``behavior`` is
``[pools.behavior]``; its ``minReplicas``/``maxReplicas`` are the pool's bounds.

Where the HPA test isolates one function (``convertDesiredReplicasWithBehaviorRate`` ignores the
stabilisation window, ``stabilizeRecommendationWithBehaviors`` ignores rate limits), the port
switches the other stage off, and the pool is one ``decide()`` has seen before
(``PoolState.since`` set), as the HPA controller in those tests has. Scale events are placed
where ``generateEventsUniformDistribution`` puts them (the centres of equal segments of the
period before now).

The cases that differ on purpose (docs/migrating.md: *Where this differs from HPA and Azure
autoscale*) are at the end, asserting what the project does instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import pytest

from policies.target_tracking import TargetTracking, TargetTrackingConfig
from scaler.core import (
    Behavior,
    DirectionBehavior,
    MetricReading,
    Observation,
    PolicyContext,
    PoolLimits,
    PoolState,
    Reason,
    Recommendation,
    decide,
)

NOW = 1_800_000_000.0
NO_LIMIT = DirectionBehavior(0.0, None, None, 60.0)
SEEN = PoolState(since=NOW - 86400.0)
"""A pool ``decide()`` has seen before and whose history holds nothing now (HPA: a key whose
recommendation list is empty)."""

HORIZONTAL = "pkg/controller/podautoscaler/horizontal_test.go"
REPLICA_CALC = "pkg/controller/podautoscaler/replica_calculator_test.go"


@dataclass(frozen=True)
class Fixed:
    """A policy whose answer is HPA's pre-normalisation desired replicas."""

    desired: int
    name: ClassVar[str] = "fixed"

    def recommend(self, ctx: PolicyContext) -> Recommendation:
        return Recommendation(desired=self.desired)


def pool(lo: int, hi: int, cpi: float = 15.0) -> PoolLimits:
    return PoolLimits("p", lo, hi, cpi, 4, "standardFSv2Family", "westeurope")


def rules(
    pods: int = 0,
    pods_period: float = 0.0,
    percent: float = 0.0,
    percent_period: float = 0.0,
    window: float = 0.0,
) -> DirectionBehavior:
    """HPA's ``generateScalingRules``: a Pods and/or a Percent policy with their own periods,
    ``selectPolicy: Max``."""
    return DirectionBehavior(
        stabilization_seconds=window,
        max_instances=pods or None,
        max_percent=percent or None,
        period_seconds=max(pods_period, percent_period) or 60.0,
        select="max",
        instances_period_seconds=pods_period or None,
        percent_period_seconds=percent_period or None,
    )


# HPA's defaults (``GenerateHPAScaleUpRules(nil)``/``...ScaleDownRules(nil)``): scale up by
# 100 % or 4 pods, whichever is more, every 15 s; scale down by 100 % every 15 s.
HPA_UP = DirectionBehavior(0.0, 4, 100.0, 15.0, "max")
HPA_DOWN = DirectionBehavior(0.0, None, 100.0, 15.0, "max")


def events(raw: list[int], period: float, sign: int) -> tuple[tuple[float, int], ...]:
    """HPA's ``generateEventsUniformDistribution(raw, period)`` as scale events of ``sign``."""
    seg = period / len(raw)
    return tuple(
        (NOW - (period - seg * (i + 1) + seg / 2), sign * change) for i, change in enumerate(raw)
    )


def replay(
    *,
    current: int,
    desired: int,
    lo: int,
    hi: int,
    up: DirectionBehavior | None = None,
    down: DirectionBehavior | None = None,
    up_events: list[int] | None = None,
    down_events: list[int] | None = None,
    period: float = 120.0,
) -> tuple[int, Reason]:
    """``convertDesiredReplicasWithBehaviorRate`` (``TestScalingWithRules``): rate limits and
    bounds, no stabilisation."""
    up = up or HPA_UP
    down = down or HPA_DOWN
    behavior = Behavior(
        tolerance=0.1,
        scale_up=DirectionBehavior(
            0.0,
            up.max_instances,
            up.max_percent,
            up.period_seconds,
            up.select,
            up.instances_period_seconds,
            up.percent_period_seconds,
        ),
        scale_down=DirectionBehavior(
            0.0,
            down.max_instances,
            down.max_percent,
            down.period_seconds,
            down.select,
            down.instances_period_seconds,
            down.percent_period_seconds,
        ),
    )
    history = tuple(
        sorted(
            (events(up_events, period, +1) if up_events else ())
            + (events(down_events, period, -1) if down_events else ())
        )
    )
    d = decide(
        pool=pool(lo, hi),
        behavior=behavior,
        policies=(Fixed(desired),),
        observation=Observation(current, MetricReading.ok(1.0)),
        state=PoolState(scale_events=history, since=SEEN.since),
        now=NOW,
    )
    return d.desired, d.reason


# (HPA case name, current, prenormalized desired, min, max, scaleUp rules, scaleDown rules,
#  scale-up events, scale-down events, expected replicas, HPA condition)
SCALING_WITH_RULES = [
    ("prenormalized desired replicas within range", 5, 7, 3, 8, None, None, None, None, 7,
     "DesiredWithinRange"),
    ("prenormalized desired replicas < minReplicas", 3, 1, 2, 8, None, None, None, None, 2,
     "TooFewReplicas"),
    ("prenormalized desired replicas within range when minReplicas is 0", 1, 0, 0, 10, None,
     None, None, None, 0, "DesiredWithinRange"),
    ("maxReplicas is the limit because maxReplicas < scaleUpLimit", 20, 1000, 1, 10, None, None,
     None, None, 10, "TooManyReplicas"),
    ("desired replica count is more than the maximum replica count", 100, 1000, 100, 150, None,
     None, None, None, 150, "TooManyReplicas"),
    ("scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies", 3, 1000,
     1, 2000, rules(0, 0, 1, 60), None, None, None, 4, "ScaleUpLimit"),
    ("scaleDownLimit is the limit because scaleDownLimit > minReplicas with user defined "
     "policies", 1000, 3, 3, 2000, None, rules(20, 60), None, None, 980, "ScaleDownLimit"),
    ("scaleUp with default behavior", 10, 50, 1, 1000, None, None, None, None, 20,
     "ScaleUpLimit"),
    ("scaleUp with pods policy larger than percent policy", 10, 500, 1, 1000,
     rules(100, 60, 100, 60), None, None, None, 110, "ScaleUpLimit"),
    ("scaleUp with percent policy larger than pods policy", 10, 500, 1, 1000,
     rules(2, 60, 100, 60), None, None, None, 20, "ScaleUpLimit"),
    ("scaleUp with spec MaxReplicas limitation with large pod policy", 10, 50, 1, 1000,
     rules(100, 60), None, None, None, 50, "DesiredWithinRange"),
    ("scaleUp with spec MaxReplicas limitation with large percent policy", 10, 50, 1, 1000,
     rules(10000, 60), None, None, None, 50, "DesiredWithinRange"),
    ("scaleUp with pod policy limitation", 10, 50, 1, 1000, rules(30, 60), None, None, None, 40,
     "ScaleUpLimit"),
    ("scaleUp with percent policy limitation", 10, 50, 1, 1000, rules(0, 0, 200, 60), None,
     None, None, 30, "ScaleUpLimit"),
    ("scaleDown with percent policy larger than pod policy", 100, 2, 1, 1000, None,
     rules(20, 60, 1, 60, 300), None, None, 80, "ScaleDownLimit"),
    ("scaleDown with pod policy larger than percent policy", 100, 2, 1, 1000, None,
     rules(2, 60, 1, 60, 300), None, None, 98, "ScaleDownLimit"),
    ("scaleDown with spec MinReplicas=nil limitation with large pod policy", 10, 0, 1, 1000,
     None, rules(100, 60, 0, 0, 300), None, None, 1, "TooFewReplicas"),
    ("scaleDown with spec MinReplicas limitation with large percent policy", 10, 2, 5, 1000,
     None, rules(0, 0, 100, 60, 300), None, None, 5, "TooFewReplicas"),
    ("scaleDown with pod policy limitation", 10, 2, 1, 1000, None, rules(5, 60, 0, 0, 300),
     None, None, 5, "ScaleDownLimit"),
    ("scaleDown with percent policy limitation", 10, 5, 1, 1000, None,
     rules(0, 0, 50, 60, 300), None, None, 5, "DesiredWithinRange"),
    ("scaleUp with spec MaxReplicas limitation with large pod policy and events", 100, 500, 1,
     200, rules(300, 60), None, [1, 5, 9], None, 200, "TooManyReplicas"),
    ("scaleUp with spec MaxReplicas limitation with large percent policy and events", 100, 500,
     1, 200, rules(0, 0, 10000, 60), None, [1, 5, 9], None, 200, "TooManyReplicas"),
    ("scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent "
     "scale up events", 100, 500, 1, 1000, rules(5, 120), None, [1, 5, 9], None, 100,
     "ScaleUpLimit"),
    ("scaleUp with pod policy and previous scale up events", 100, 500, 1, 1000, rules(150, 120),
     None, [1, 5, 9], None, 235, "ScaleUpLimit"),
    ("scaleUp with percent policy and previous scale up events", 100, 500, 1, 1000,
     rules(0, 0, 200, 120), None, [1, 5, 9], None, 255, "ScaleUpLimit"),
    # kubernetes issue #108354, fixed by PR #109058: the period's start counts both directions
    ("scaleUp with percent policy and previous scale up and down events", 6, 24, 1, 1000,
     rules(0, 0, 300, 300), None, [4], [2], 16, "ScaleUpLimit"),
    ("scaleDown with default policy and previous events", 10, 5, 1, 1000, None, None, None,
     [1, 5, 9], 5, "DesiredWithinRange"),
    ("scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events",
     100, 0, 1, 1000, None, rules(115, 120, 0, 0, 300), None, [1, 5, 9], 1, "TooFewReplicas"),
    ("scaleDown with spec MinReplicas limitation with large pod policy and previous events",
     100, 0, 5, 1000, None, rules(130, 120, 0, 0, 300), None, [1, 5, 9], 5, "TooFewReplicas"),
    ("scaleDown with spec MinReplicas limitation with large percent policy and previous events",
     100, 2, 5, 1000, None, rules(0, 0, 100, 120, 300), None, [1, 5, 9], 5, "TooFewReplicas"),
    ("scaleDown with pod policy limitation and previous events", 100, 2, 1, 1000, None,
     rules(5, 120, 0, 0, 300), None, [1, 5, 9], 100, "ScaleDownLimit"),
    ("scaleDown with percent policy limitation and previous events", 100, 0, 1, 1000, None,
     rules(0, 0, 50, 120, 300), None, [2, 4, 6], 56, "ScaleDownLimit"),
    # the mirror of #108354: 6 -> 4 -> 8 within the period
    ("scaleDown with percent policy and previous scale up and down events", 10, 1, 1, 1000,
     None, rules(0, 0, 50, 180), [2], [4], 6, "ScaleDownLimit"),
    ("scaleDown with previous events preventing further scale down", 100, 0, 1, 1000, None,
     rules(0, 0, 10, 120, 300), None, [10, 10, 10], 100, "ScaleDownLimit"),
    ("scaleDown with with previous events still allowing more scale down", 10, 5, 1, 1000, None,
     rules(0, 0, 1000, 120, 300), None, [10, 10, 10], 5, "DesiredWithinRange"),
    ("check 'outdated' flag for events for one behavior for up", 100, 200, 1, 1000,
     rules(1000, 60), None, [8, 12, 9, 11], None, 200, "DesiredWithinRange"),
    ("check that events were not marked 'outdated' for two different policies in the behavior "
     "for up", 100, 200, 1, 1000, rules(1000, 120, 100, 60), None, [8, 12, 9, 11], None, 200,
     "DesiredWithinRange"),
    ("check that events were marked 'outdated' for two different policies in the behavior for "
     "up", 100, 200, 1, 1000, rules(1000, 30, 100, 60), None, [8, 12, 9, 11], None, 200,
     "DesiredWithinRange"),
    ("check 'outdated' flag for events for one behavior for down", 100, 5, 1, 1000, None,
     rules(1000, 60, 0, 0, 300), None, [8, 12, 9, 11], 5, "DesiredWithinRange"),
    ("check that events were not marked 'outdated' for two different policies in the behavior "
     "for down", 100, 5, 1, 1000, None, rules(1000, 120, 100, 60, 300), None, [8, 12, 9, 11], 5,
     "DesiredWithinRange"),
    ("check that events were marked 'outdated' for two different policies in the behavior for "
     "down", 100, 5, 1, 1000, None, rules(1000, 30, 100, 60, 300), None, [8, 12, 9, 11], 5,
     "DesiredWithinRange"),
]  # fmt: skip

HPA_REASONS = {
    "DesiredWithinRange": Reason.DESIRED_WITHIN_RANGE,
    "TooFewReplicas": Reason.TOO_FEW_INSTANCES,
    "TooManyReplicas": Reason.TOO_MANY_INSTANCES,
    "ScaleUpLimit": Reason.SCALE_UP_LIMIT,
    "ScaleDownLimit": Reason.SCALE_DOWN_LIMIT,
}


@pytest.mark.parametrize(
    ("case", "current", "desired", "lo", "hi", "up", "down", "ups", "downs", "want", "cond"),
    SCALING_WITH_RULES,
    ids=[c[0] for c in SCALING_WITH_RULES],
)
def test_scaling_with_rules(
    case: str,
    current: int,
    desired: int,
    lo: int,
    hi: int,
    up: DirectionBehavior | None,
    down: DirectionBehavior | None,
    ups: list[int] | None,
    downs: list[int] | None,
    want: int,
    cond: str,
) -> None:
    """``TestScalingWithRules`` (horizontal_test.go): every case, with HPA's condition."""
    got = replay(
        current=current,
        desired=desired,
        lo=lo,
        hi=hi,
        up=up,
        down=down,
        up_events=ups,
        down_events=downs,
    )
    assert got == (want, HPA_REASONS[cond])


def test_calculate_scale_up_and_down_limits_with_select_min() -> None:
    """``TestCalculateScaleUpLimitWithScalingRules`` and
    ``TestCalculateScaleDownLimitWithBehaviors`` (horizontal_test.go): ``selectPolicy: Min``
    over "2 pods" and "50 %" per 60 s allows 1 → 2 and 5 → 3."""
    both = DirectionBehavior(300.0, 2, 50.0, 60.0, "min")
    up = replay(current=1, desired=100, lo=0, hi=1000, up=both)
    down = replay(current=5, desired=0, lo=0, hi=1000, down=both)
    assert up == (2, Reason.SCALE_UP_LIMIT)
    assert down == (3, Reason.SCALE_DOWN_LIMIT)


def test_issue_108354_in_a_daemon_sequence() -> None:
    """kubernetes issue #108354 as it reads: 4 → 8 → 6 within one 300 s period with "300 % per
    300 s", then a burst: HPA since PR #109058 allows 16 (from the period's start, 6 − 4 + 2);
    counting only scale-ups it allowed 8."""
    from scaler.core import record_scale

    up = DirectionBehavior(0.0, None, 300.0, 300.0)
    behavior = Behavior(scale_up=up, scale_down=DirectionBehavior(0.0, None, None, 300.0))
    state = record_scale(SEEN, now=NOW - 200, change=+4)  # 4 -> 8
    state = record_scale(state, now=NOW - 100, change=-2)  # 8 -> 6
    d = decide(
        pool=pool(1, 100),
        behavior=behavior,
        policies=(Fixed(24),),
        observation=Observation(6, MetricReading.ok(1.0)),
        state=state,
        now=NOW,
    )
    assert (d.desired, d.reason) == (16, Reason.SCALE_UP_LIMIT)


# -- stabilisation ------------------------------------------------------------------------------

M = 60.0
# (HPA case name, recommendations (instances, seconds ago), current, prenormalized, up-window,
#  down-window, expected)
STABILIZE = [
    ("empty recommendations for scaling down", [], 100, 5, 0, 0, 5),
    ("simple scale down stabilization", [(4, 2 * M), (5, M)], 100, 3, 0, 3 * M, 5),
    ("simple scale up stabilization", [(4, 2 * M), (5, M)], 1, 7, 5 * M, 0, 4),
    ("no scale down stabilization", [(1, 2 * M), (2, M)], 100, 3, 5 * M, 0, 3),
    ("no scale up stabilization", [(4, 2 * M), (5, M)], 1, 3, 0, 5 * M, 3),
    ("no scale down stabilization, reuse recommendation element", [(10, 10 * M), (9, 9 * M)],
     100, 3, 0, 0, 3),
    ("no scale up stabilization, reuse recommendation element", [(10, 10 * M), (9, 9 * M)], 1,
     100, 0, 0, 100),
    ("scale down stabilization, reuse one of obsolete recommendation element",
     [(10, 10 * M), (4, M), (5, 2 * M), (9, 9 * M)], 100, 3, 0, 3 * M, 5),
    ("scale up stabilization, reuse one of obsolete recommendation element",
     [(10, 100 * M), (6, M), (5, 2 * M), (9, 3 * M)], 1, 100, 300, 0, 5),
    ("scale up and down stabilization, do not scale up when prenormalized rec goes down",
     [(2, 100 * M), (3, 3 * M)], 2, 1, 300, 300, 2),
    ("scale up and down stabilization, do not scale down when prenormalized rec goes up",
     [(2, 100 * M), (1, 3 * M)], 2, 3, 300, 300, 2),
]  # fmt: skip


def stabilize(
    recs: list[tuple[int, float]], current: int, desired: int, up_w: float, down_w: float
) -> int:
    state = PoolState(
        recommendations=tuple(sorted((NOW - ago, v) for v, ago in recs)), since=SEEN.since
    )
    behavior = Behavior(
        tolerance=0.1,
        scale_up=DirectionBehavior(up_w, None, None, 60.0),
        scale_down=DirectionBehavior(down_w, None, None, 60.0),
    )
    d = decide(
        pool=pool(0, 1000),
        behavior=behavior,
        policies=(Fixed(desired),),
        observation=Observation(current, MetricReading.ok(1.0)),
        state=state,
        now=NOW,
    )
    return d.desired


@pytest.mark.parametrize(
    ("case", "recs", "current", "desired", "up_w", "down_w", "want"),
    STABILIZE,
    ids=[c[0] for c in STABILIZE],
)
def test_normalize_desired_replicas_with_behavior(
    case: str,
    recs: list[tuple[int, float]],
    current: int,
    desired: int,
    up_w: float,
    down_w: float,
    want: int,
) -> None:
    """``TestNormalizeDesiredReplicasWithBehavior`` (horizontal_test.go): every case."""
    assert stabilize(recs, current, desired, up_w, down_w) == want


@pytest.mark.parametrize(
    ("case", "recs", "desired", "want"),
    [
        ("empty log", [], 5, 5),
        ("stabilize", [(4, 2 * M), (5, M)], 3, 5),
        ("no stabilize", [(1, 2 * M), (2, M)], 3, 3),
        ("no stabilize - old recommendations", [(10, 10 * M), (9, 9 * M)], 3, 3),
        ("stabilize - old recommendations", [(10, 10 * M), (4, M), (5, 2 * M), (9, 9 * M)], 3, 5),
    ],
)
def test_normalize_desired_replicas(
    case: str, recs: list[tuple[int, float]], desired: int, want: int
) -> None:
    """``TestNormalizeDesiredReplicas`` (horizontal_test.go): the 5-minute downscale window
    without ``behavior`` (the controller's ``--horizontal-pod-autoscaler-downscale-
    stabilization``), from a large current size."""
    assert stabilize(recs, 100, desired, 0, 5 * M) == want


# -- whole reconciliations (target tracking on a utilisation) -----------------------------------


def tracking(
    current: int,
    metric: MetricReading,
    goal: float,
    *,
    state: PoolState = SEEN,
    lo: int = 0,
    hi: int = 1000,
    cpi: float = 100.0,
):
    """One reconciliation of target tracking at ``goal`` with HPA's default behaviour (a
    300 s down-window; the rate limits never bind in these cases)."""
    return decide(
        pool=pool(lo, hi, cpi=cpi),
        behavior=Behavior(),
        policies=(TargetTracking(TargetTrackingConfig(target_utilization=goal)),),
        observation=Observation(current, metric),
        state=state,
        now=NOW,
    )


def target(current: int, utilisation: float, goal: float, state: PoolState, lo: int, hi: int):
    """An HPA CPU-utilisation reconciliation as target tracking: the pool's calls are its
    utilisation × instances × ``calls_per_instance`` (100), the target is ``goal``."""
    reading = MetricReading.ok(utilisation * current * 100.0)
    return tracking(current, reading, goal, state=state, lo=lo, hi=hi)


def test_scale_down_stabilize_initial_size() -> None:
    """``TestScaleDownStabilizeInitialSize`` (horizontal_test.go): a new HPA (no recommendations
    at all) at 5 replicas with 28 % of a 50 % target holds at 5 (``ScaleDownStabilized``);
    ``TestScaleDown``, the same with an empty history of a known HPA, goes to 3."""
    fresh = target(5, 0.28, 0.5, PoolState(), 2, 6)
    known = target(5, 0.28, 0.5, SEEN, 2, 6)
    assert (fresh.desired, fresh.reason) == (5, Reason.SCALE_DOWN_STABILIZED)
    assert (known.desired, known.reason) == (3, Reason.DESIRED_WITHIN_RANGE)


def test_stabilize_downscale() -> None:
    """``TestStabilizeDownscale`` (horizontal_test.go): 4 replicas at half the target, with 10
    recommended 10 minutes ago (outside the window) and 4 a minute ago: stays at 4."""
    state = PoolState(recommendations=((NOW - 600, 10), (NOW - 60, 4)), since=SEEN.since)
    d = target(4, 0.5, 1.0, state, 1, 5)
    assert (d.desired, d.reason) == (4, Reason.SCALE_DOWN_STABILIZED)


def test_scale_up_and_down_rc_immediately() -> None:
    """``TestScaleUpRCImmediately`` / ``TestScaleDownRCImmediately`` (horizontal_test.go): a
    size below ``minReplicas`` (1 < 2) or above ``maxReplicas`` (6 > 5) is corrected at once."""
    up = target(1, 0.0, 0.5, SEEN, 2, 6)
    down = target(6, 6.0, 0.5, SEEN, 2, 5)
    assert (up.desired, up.reason) == (2, Reason.TOO_FEW_INSTANCES)
    assert (down.desired, down.reason) == (5, Reason.TOO_MANY_INSTANCES)


def test_computed_tolerance_alg_implementation() -> None:
    """``TestComputedToleranceAlgImplementation`` (horizontal_test.go): 10 pods at 50 %
    utilisation; a 56 % target is just outside the 0.1 tolerance (→ 9 pods), a 55 % target just
    inside it (stays at 10)."""
    outside = target(10, 0.5, 0.56, SEEN, 0, 1000)
    inside = target(10, 0.5, 0.55, SEEN, 0, 1000)
    assert outside.desired == 9 == math.ceil(10 * 0.50 / 0.56)
    assert inside.desired == 10


@pytest.mark.parametrize(
    ("case", "current", "utilisation", "goal", "want"),
    [
        # TestReplicaCalcScaleUp: 300, 500, 700 m of 1.0 each, target 30 % → 5
        ("TestReplicaCalcScaleUp", 3, 0.5, 0.3, 5),
        # TestReplicaCalcScaleDown: 100, 300, 500, 250, 250 m of 1.0, target 50 % → 3
        ("TestReplicaCalcScaleDown", 5, 0.28, 0.5, 3),
        # TestReplicaCalcTolerance: 1010, 1030, 1020 m of 0.9, 1.0, 1.1 (102 %), target 100 %
        ("TestReplicaCalcTolerance", 3, 1.02, 1.0, 3),
        # TestReplicaCalcToleranceCM: 20000, 21000, 21000 of a 20000 target per pod
        ("TestReplicaCalcToleranceCM", 3, 20666 / 20000, 1.0, 3),
    ],
)
def test_replica_calculator(
    case: str, current: int, utilisation: float, goal: float, want: int
) -> None:
    """``replica_calculator_test.go``: the cases where every pod is ready and reports."""
    assert target(current, utilisation, goal, SEEN, 0, 1000).desired == want


def test_replica_calc_scale_down_per_pod_cm_external() -> None:
    """``TestReplicaCalcScaleDownPerPodCMExternal`` (replica_calculator_test.go): an external
    metric of 8600 with an ``AverageValue`` target of 2867 per pod: 5 → 3 (target tracking on
    the pool's total, 2867 calls per instance at 100 %)."""
    assert tracking(5, MetricReading.ok(8600.0), 1.0, cpi=2867.0).desired == 3


# -- deliberate differences (docs/migrating.md: Where this differs from HPA and Azure autoscale) -


def test_difference_unready_pods_are_not_modelled() -> None:
    """``TestReplicaCalcScaleDownIgnoresUnreadyPods`` (replica_calculator_test.go) expects 2:
    HPA averages only the 3 ready pods (30 %). A pool has one reading for all its instances, so
    the same load over 5 instances (28 %) gives 3 — one more instance, never fewer."""
    assert target(5, 0.28, 0.5, SEEN, 0, 1000).desired == 3


def test_difference_missing_metric_holds_instead_of_max_of_the_others() -> None:
    """``TestScaleUpOneMetricEmpty`` (horizontal_test.go) scales 3 → 4 on the one metric that
    still reads; a pool has one metric, so an unusable reading holds it (or raises it to
    ``missing_data_floor``), and never shrinks it (``TestNoScaleDownOneMetricInvalid``
    agrees: 5 stays 5)."""
    for current in (3, 5):
        d = tracking(current, MetricReading.missing("no series"), 0.3, lo=2, hi=6, cpi=15.0)
        assert (d.desired, d.reason) == (current, Reason.METRICS_MISSING)


def test_difference_zero_instances_is_a_size_not_disabled() -> None:
    """HPA does not scale a target at 0 replicas (autoscaling is then off: ``ScalingDisabled``);
    a pool at 0 (``min = 0``) is just empty and scales out when calls arrive."""
    assert target(0, 0.0, 0.5, SEEN, 0, 10).desired == 0
    assert tracking(0, MetricReading.ok(120.0), 0.5, hi=10).desired == 3


def test_difference_default_rate_limits_are_per_minute() -> None:
    """HPA's default ``behavior`` (``GenerateHPAScaleUpRules(nil)``): +100 % or +4 pods every
    15 s. 4 → 8 twenty seconds ago, then a recommendation of 32: HPA allows 16 now; the
    defaults here count the minute (8 from a start of 4), and HPA's own period written out gives
    HPA's answer."""
    from scaler.core import record_scale

    state = record_scale(SEEN, now=NOW - 20, change=+4)
    ours = decide(
        pool=pool(1, 100),
        behavior=Behavior(),
        policies=(Fixed(32),),
        observation=Observation(8, MetricReading.ok(1.0)),
        state=state,
        now=NOW,
    )
    hpa = decide(
        pool=pool(1, 100),
        behavior=Behavior(scale_up=HPA_UP, scale_down=HPA_DOWN),
        policies=(Fixed(32),),
        observation=Observation(8, MetricReading.ok(1.0)),
        state=state,
        now=NOW,
    )
    assert (ours.desired, hpa.desired) == (8, 16)
