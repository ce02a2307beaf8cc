"""Composite policy, the registry's plugins and an end-to-end day on generated load."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from policies import BUILTINS, build, discover
from policies.composite import Composite
from policies.example_headroom import Headroom
from scaler.config import parse_config
from scaler.core import (
    Behavior,
    DirectionBehavior,
    MetricReading,
    Observation,
    PoolLimits,
    PoolState,
    Reason,
    decide,
    record_scale,
)
from scaler.core.history import ArrayHistory
from scaler.core.types import PolicyContext, Recommendation
from scaler.errors import ConfigError
from scaler.loadgen import PoolProfile, generate
from scaler.policyset import build_policies
from tests.conftest import config_doc, pool_table

POOL = PoolLimits("tc", 1, 40, 15.0, 4, "standardFSv2Family", "westeurope", boot_minutes=20)
FREE = Behavior(
    tolerance=0.0,
    scale_up=DirectionBehavior(0, None, None, 60),
    scale_down=DirectionBehavior(0, None, None, 60),
)
MON_10Z = datetime(2026, 10, 26, 10, 0, tzinfo=UTC).timestamp()
SAT_10Z = datetime(2026, 10, 31, 10, 0, tzinfo=UTC).timestamp()

SCHEDULE = {
    "type": "schedule",
    "timezone": "Europe/London",
    "profiles": [{"days": ["weekdays"], "from": "08:00", "to": "18:00", "min": 5}],
}


def composite(*parts: dict[str, Any]) -> Composite:
    policy = build("composite", {"policies": list(parts)}, discover())
    assert isinstance(policy, Composite)
    return policy


def run(policies: list[Any], current: int, calls: float | None, now: float) -> Any:
    reading = MetricReading.ok(calls) if calls is not None else MetricReading.stale()
    return decide(
        pool=POOL,
        behavior=FREE,
        policies=policies,
        observation=Observation(current, reading),
        state=PoolState(),
        now=now,
    )


@pytest.mark.parametrize(
    ("calls", "now", "desired", "winner"),
    [
        (24.0, MON_10Z, 5, "composite:schedule"),  # the floor beats 2 instances of load
        (120.0, MON_10Z, 10, "composite:target-tracking"),  # load beats the floor
        (24.0, SAT_10Z, 2, "composite:target-tracking"),  # no floor at the weekend
        (None, MON_10Z, 5, "composite:schedule"),  # target tracking has no opinion
    ],
)
def test_decision_names_the_part_that_won(
    calls: float | None, now: float, desired: int, winner: str
) -> None:
    policy = composite(SCHEDULE, {"type": "target-tracking"})
    d = run([policy], 3, calls, now)
    assert (d.desired, d.policy) == (desired, winner)


def test_scales_in_only_when_every_part_agrees() -> None:
    policy = composite(SCHEDULE, {"type": "target-tracking"})
    assert run([policy], 8, 24.0, MON_10Z).desired == 5  # the schedule holds the floor
    assert run([policy], 8, 24.0, SAT_10Z).desired == 2  # both agree: scale in


def test_nested_composites_name_the_whole_path() -> None:
    inner = {"type": "composite", "policies": [SCHEDULE]}
    policy = composite(inner, {"type": "target-tracking"})
    d = run([policy], 3, 24.0, MON_10Z)
    assert (d.desired, d.policy) == (5, "composite:composite:schedule")


def test_a_composite_next_to_other_policies_competes_like_any_policy() -> None:
    policy = composite(SCHEDULE)
    d = run([policy, build("target-tracking", {}, discover())], 3, 120.0, MON_10Z)
    assert d.policy == "target-tracking"
    d = run([policy, build("target-tracking", {}, discover())], 3, 24.0, MON_10Z)
    assert d.policy == "composite:schedule"


def test_ceilings_pass_through_and_no_opinion_stays_none() -> None:
    capped = {**SCHEDULE, "default_max": 3}
    policy = composite(capped, {"type": "target-tracking"})
    d = run([policy], 2, 120.0, SAT_10Z)
    assert (d.desired, d.reason) == (3, Reason.TOO_MANY_INSTANCES)
    lonely = composite({"type": "target-tracking"})
    ctx = PolicyContext(MON_10Z, 3, None, POOL, MetricReading.stale(), PoolState())
    assert lonely.recommend(ctx) is None


def problems(policy: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(config_doc(pool_table(policies=[policy])), environ={})
    return info.value.problems


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (
            [{"type": "target-tracking"}, {"type": "target-tracking", "target_utilization": 2}],
            "pools[0].policies[0].policies[1].target_utilization: input should be less than or "
            "equal to 1, got 2",
        ),
        (
            [{"type": "nope"}],
            "pools[0].policies[0].policies[0].type: unknown policy 'nope'",
        ),
        (
            [{"target_utilization": 0.5}],
            "pools[0].policies[0].policies[0].type: needs a 'type' naming the policy",
        ),
        (
            [{**SCHEDULE, "profiles": [{**SCHEDULE["profiles"][0], "timezone": "Mars/Base"}]}],
            "pools[0].policies[0].policies[0].profiles[0].timezone: unknown time zone "
            "'Mars/Base', got \"Mars/Base\"",
        ),
        (
            [{"type": "composite", "policies": [{"type": "predictive", "weeks": 9}]}],
            "pools[0].policies[0].policies[0].policies[0].weeks: input should be less than or "
            "equal to 5, got 9",
        ),
        (
            [{"type": "target-tracking"}, {"type": "target-tracking"}],
            "pools[0].policies[0].policies: policy 'target-tracking' is listed twice",
        ),
        ([], "pools[0].policies[0].policies: "),
    ],
)
def test_config_errors_name_the_key_path(parts: list[dict[str, Any]], expected: str) -> None:
    found = problems({"type": "composite", "policies": parts})
    assert any(p.startswith(expected) for p in found), found


def test_every_builtin_is_registered_and_the_example_comes_through_its_entry_point() -> None:
    registry = discover()
    assert {"target-tracking", "step", "schedule", "predictive", "composite"} <= set(BUILTINS)
    assert registry["example-headroom"] is Headroom
    assert "example-headroom" not in BUILTINS  # found only as a plugin would be
    policy = build("example-headroom", {"spare_instances": 2}, registry)
    ctx = PolicyContext(MON_10Z, 3, 31.0, POOL, MetricReading.ok(31.0), PoolState())
    assert policy.recommend(ctx) == Recommendation(desired=5)


def test_a_whole_config_with_every_policy_type_validates() -> None:
    policies = [
        {
            "type": "composite",
            "policies": [
                SCHEDULE,
                {"type": "predictive", "timezone": "Europe/London"},
                {"type": "target-tracking"},
            ],
        },
        {
            "type": "step",
            "rules": [
                {"operator": ">", "threshold": 70, "direction": "increase", "change_count": 1}
            ],
        },
        {"type": "example-headroom"},
    ]
    config = parse_config(config_doc(pool_table(policies=policies)), environ={})
    names = [p.name for p in build_policies(config.pools[0])]
    assert names == ["composite", "step", "example-headroom"]
    assert config.pool_limits()[0].boot_minutes == 20


def replay_a_wednesday(parts: list[dict[str, Any]]) -> tuple[dict[str, int], float]:
    """Three weeks of generated London load as history, then Wednesday 2026-10-28 replayed
    minute by minute through decide(): instances asked for at t serve calls from t + 20
    minutes, the metric lags 3 minutes. Returns (ticks won per policy, unserved call-minutes)."""
    start = datetime(2026, 10, 5, tzinfo=UTC)
    rows = generate([PoolProfile("tc", "Europe/London", 150.0, seed=7)], start, 24)
    calls = [c for _, _, c in rows]
    t0 = start.timestamp()
    history = ArrayHistory(start=t0, values=calls, visible_until=t0)
    policy = composite(*parts)
    behavior = Behavior()  # the defaults: 5-minute scale-in stabilisation, +4 per minute
    day = int((datetime(2026, 10, 28, tzinfo=UTC) - start) / timedelta(minutes=1))
    current, state = 2, PoolState()
    arrivals: list[tuple[int, int]] = []  # (minute ready, instances)
    ready = current
    unserved = 0.0
    winners: dict[str, int] = {}
    for i in range(day, day + 1440):
        now = t0 + 60.0 * i
        history.visible_until = now - 180.0
        window = [v for v in calls[i - 8 : i - 3] if v is not None]
        reading = MetricReading.ok(max(window), now - 240.0) if window else MetricReading.stale()
        d = decide(
            pool=POOL,
            behavior=behavior,
            policies=[policy],
            observation=Observation(current, reading),
            state=state,
            now=now,
            history=history,
        )
        winners[d.policy or "-"] = winners.get(d.policy or "-", 0) + 1
        state = record_scale(d.state, now=now, change=d.change)
        if d.change > 0:
            arrivals.append((i + 20, d.change))
        elif d.change < 0:  # the newest go first (highest instance ids): booting, then ready
            gone = -d.change
            while gone and arrivals and arrivals[-1][0] > i:  # still booting
                m, n = arrivals.pop()
                if n > gone:
                    arrivals.append((m, n - gone))
                gone = max(0, gone - n)
            ready -= gone
        current = d.desired
        ready += sum(n for m, n in arrivals if m == i)
        demand = calls[i] or 0
        unserved += max(0.0, demand - min(ready, current) * POOL.calls_per_instance)
    return winners, unserved


def test_end_to_end_schedule_predictive_and_target_tracking_on_generated_load() -> None:
    office = {**SCHEDULE, "profiles": [{**SCHEDULE["profiles"][0], "from": "07:00", "min": 4}]}
    reactive = {"type": "target-tracking"}  # before predictive: a tie goes to the part first
    predictive = {"type": "predictive", "timezone": "Europe/London"}

    winners, unserved = replay_a_wednesday([office, reactive, predictive])
    assert set(winners) == {
        "composite:schedule",
        "composite:predictive",
        "composite:target-tracking",
    }
    assert unserved == 0.0  # the 09:00 step (09:00Z, after BST ended) was pre-warmed in time

    _, unserved_without = replay_a_wednesday([office, reactive])
    assert unserved_without > 500  # reacting to the step is 20 minutes late
