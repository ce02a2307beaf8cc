"""Schedule policy: DST-correct recurring profiles, pre-warm, fixed-date precedence, caps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.schedule import DAYS, Schedule, ScheduleConfig
from policies.target_tracking import TargetTracking
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
)
from scaler.core.types import PolicyContext
from scaler.errors import ConfigError
from tests.conftest import config_doc, examples, pool_table

POOL = PoolLimits("tc", 1, 30, 15.0, 4, "standardFSv2Family", "westeurope")
FREE = Behavior(
    tolerance=0.0,
    scale_up=DirectionBehavior(0, None, None, 60),
    scale_down=DirectionBehavior(0, None, None, 60),
)


def at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def schedule(**doc: Any) -> Schedule:
    return Schedule(ScheduleConfig.model_validate(doc))


def floor_at(policy: Schedule, when: str) -> int:
    ctx = PolicyContext(at(when), 1, None, POOL, MetricReading.missing(), PoolState())
    return policy.recommend(ctx).desired


LONDON_OFFICE = {
    "timezone": "Europe/London",
    "profiles": [
        {"name": "office", "days": ["weekdays"], "from": "08:00", "to": "18:00", "min": 4}
    ],
}


@pytest.mark.parametrize(
    ("when", "floor"),
    [
        # Week of the autumn change (BST ends Sunday 2026-10-25): 08:00 local is 07:00Z...
        ("2026-10-23T06:59Z", 0),
        ("2026-10-23T07:00Z", 4),
        ("2026-10-23T16:59Z", 4),
        ("2026-10-23T17:00Z", 0),
        ("2026-10-24T10:00Z", 0),  # Saturday
        # ...and 08:00Z after it.
        ("2026-10-26T07:00Z", 0),
        ("2026-10-26T07:59Z", 0),
        ("2026-10-26T08:00Z", 4),
        ("2026-10-26T17:59Z", 4),
        ("2026-10-26T18:00Z", 0),
        # Spring change (BST starts Sunday 2026-03-29).
        ("2026-03-27T07:30Z", 0),
        ("2026-03-27T08:00Z", 4),
        ("2026-03-30T07:00Z", 4),
        ("2026-03-30T17:00Z", 0),
    ],
)
def test_recurring_profile_follows_local_time_across_dst(when: str, floor: int) -> None:
    assert floor_at(schedule(**LONDON_OFFICE), when) == floor


@pytest.mark.parametrize(
    ("when", "floor"),
    [
        ("2026-11-02T13:59Z", 0),  # 08:59 EST, the day after New York leaves DST
        ("2026-11-02T14:00Z", 6),
        ("2026-10-30T13:00Z", 6),  # 09:00 EDT the Friday before
        ("2026-10-30T12:59Z", 0),
    ],
)
def test_profile_time_zone_overrides_the_schedule_default(when: str, floor: int) -> None:
    policy = schedule(
        timezone="Europe/London",
        profiles=[
            {"days": ["mon", "fri"], "from": "09:00", "to": "17:00", "min": 6,
             "timezone": "America/New_York"},
        ],
    )  # fmt: skip
    assert floor_at(policy, when) == floor


@pytest.mark.parametrize(
    ("when", "floor"),
    [
        ("2026-10-26T07:39Z", 0),
        ("2026-10-26T07:40Z", 4),  # 20 minutes before 08:00 local (GMT)
        ("2026-10-23T06:40Z", 4),  # 20 minutes before 08:00 local (BST)
        ("2026-10-26T17:59Z", 4),  # the lead moves the start only
        ("2026-10-26T18:00Z", 0),
    ],
)
def test_minutes_in_advance_prewarms_before_the_start(when: str, floor: int) -> None:
    profile = {**LONDON_OFFICE["profiles"][0], "minutes_in_advance": 20}
    policy = schedule(timezone="Europe/London", profiles=[profile])
    assert floor_at(policy, when) == floor


PRECEDENCE = {
    "timezone": "Europe/London",
    "default_min": 1,
    "profiles": [
        {"name": "office", "days": ["weekdays"], "from": "08:00", "to": "18:00", "min": 4},
        {"name": "bank-holiday", "date": "2026-10-19", "max": 2},
        {
            "name": "all-hands",
            "start": "2026-10-29T14:00:00",
            "end": "2026-10-29T16:00:00",
            "min": 12,
            "minutes_in_advance": 30,
        },
        {"name": "late-shift", "date": "2026-10-30", "from": "18:00", "to": "22:00", "min": 3},
    ],
}


@pytest.mark.parametrize(
    ("when", "floor", "cap", "note"),
    [
        ("2026-10-19T10:00Z", 1, 2, "bank-holiday"),  # fixed beats recurring: no office floor
        ("2026-10-19T22:30Z", 1, 2, "bank-holiday"),  # whole local day (BST: until 23:00Z)
        ("2026-10-19T23:00Z", 1, None, "default"),
        ("2026-10-20T10:00Z", 4, None, "office"),
        ("2026-10-29T13:29Z", 4, None, "office"),
        ("2026-10-29T13:30Z", 12, None, "all-hands"),  # 30 minutes early
        ("2026-10-29T15:59Z", 12, None, "all-hands"),
        ("2026-10-29T16:00Z", 4, None, "office"),
        ("2026-10-30T17:00Z", 4, None, "office"),
        ("2026-10-30T19:00Z", 3, None, "late-shift"),
        ("2026-10-31T10:00Z", 1, None, "default"),
    ],
)
def test_fixed_profiles_take_precedence_over_recurring_over_default(
    when: str, floor: int, cap: int | None, note: str
) -> None:
    policy = schedule(**PRECEDENCE)
    ctx = PolicyContext(at(when), 3, 20.0, POOL, MetricReading.ok(20.0), PoolState())
    rec = policy.recommend(ctx)
    assert (rec.desired, rec.ceiling, rec.note) == (floor, cap, note)


def test_overnight_window_runs_past_midnight_from_its_start_day() -> None:
    policy = schedule(profiles=[{"days": ["fri"], "from": "22:00", "to": "06:00", "min": 2}])
    assert floor_at(policy, "2026-10-30T21:59Z") == 0
    assert floor_at(policy, "2026-10-31T03:00Z") == 2  # Saturday morning, Friday's window
    assert floor_at(policy, "2026-10-31T06:00Z") == 0
    assert floor_at(policy, "2026-11-01T03:00Z") == 0  # Sunday: Saturday has no window


def test_overlapping_profiles_of_one_level_take_the_highest_floor() -> None:
    policy = schedule(
        profiles=[
            {"name": "a", "days": ["all"], "from": "00:00", "to": "24:00", "min": 2, "max": 5},
            {"name": "b", "days": ["mon"], "from": "09:00", "to": "10:00", "min": 8, "max": 9},
        ]
    )
    ctx = PolicyContext(at("2026-10-26T09:30Z"), 3, None, POOL, MetricReading.stale(), PoolState())
    rec = policy.recommend(ctx)
    assert (rec.desired, rec.ceiling, rec.note) == (8, 9, "a+b")


def run_decide(policies: list[Any], current: int, calls: float | None, when: str) -> Any:
    reading = MetricReading.ok(calls) if calls is not None else MetricReading.stale()
    return decide(
        pool=POOL,
        behavior=FREE,
        policies=policies,
        observation=Observation(current, reading),
        state=PoolState(),
        now=at(when),
    )


def test_floor_holds_and_prewarms_without_metrics() -> None:
    policy = schedule(**{**LONDON_OFFICE, "default_min": 0})
    d = run_decide([policy, TargetTracking()], 2, None, "2026-10-26T09:00Z")
    assert (d.desired, d.reason, d.policy) == (4, Reason.METRICS_STALE, "schedule")
    d = run_decide([policy, TargetTracking()], 7, None, "2026-10-26T09:00Z")
    assert (d.desired, d.reason) == (7, Reason.METRICS_STALE)  # never a scale-in


@pytest.mark.parametrize(
    ("current", "calls", "when", "desired", "reason"),
    [
        (3, 150.0, "2026-10-31T10:00Z", 2, Reason.TOO_MANY_INSTANCES),  # weekend cap 2
        (3, 150.0, "2026-10-30T10:00Z", 13, Reason.DESIRED_WITHIN_RANGE),  # weekday: no cap
        (6, 40.0, "2026-10-31T10:00Z", 2, Reason.TOO_MANY_INSTANCES),  # cap forces scale-in
        (6, None, "2026-10-31T10:00Z", 6, Reason.METRICS_STALE),  # ...but not on bad data
    ],
)
def test_schedule_max_caps_the_pool_while_active(
    current: int, calls: float | None, when: str, desired: int, reason: Reason
) -> None:
    policy = schedule(profiles=[{"days": ["weekend"], "from": "00:00", "to": "24:00", "max": 2}])
    d = run_decide([policy, TargetTracking()], current, calls, when)
    assert (d.desired, d.reason) == (desired, reason)


def test_schedule_cap_never_goes_below_the_pool_min() -> None:
    policy = schedule(default_max=0)
    pool = PoolLimits("tc", 3, 30, 15.0, 4, "standardFSv2Family", "westeurope")
    d = decide(
        pool=pool,
        behavior=FREE,
        policies=[policy, TargetTracking()],
        observation=Observation(5, MetricReading.ok(100.0)),
        state=PoolState(),
        now=at("2026-10-30T10:00Z"),
    )
    assert (d.desired, d.reason) == (3, Reason.TOO_MANY_INSTANCES)


def problems(policy: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(config_doc(pool_table(policies=[policy])), environ={})
    return info.value.problems


OK = {"days": ["mon"], "from": "08:00", "to": "18:00", "min": 1}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            {"type": "schedule", "profiles": [OK, {**OK, "timezone": "Mars/Base"}]},
            "pools[0].policies[0].profiles[1].timezone: unknown time zone 'Mars/Base', "
            'got "Mars/Base"',
        ),
        (
            {"type": "schedule", "timezone": "Europe/Lundun", "profiles": [OK]},
            "pools[0].policies[0].timezone: unknown time zone 'Europe/Lundun'",
        ),
        (
            {"type": "schedule", "profiles": [{**OK, "from": "8 am"}]},
            'pools[0].policies[0].profiles[0].from: must be a local time "HH:MM"',
        ),
        (
            {"type": "schedule", "profiles": [{**OK, "days": ["mon", "funday"]}]},
            "pools[0].policies[0].profiles[0].days[1]: input should be 'mon'",
        ),
        (
            {"type": "schedule", "profiles": [{**OK, "min": 5, "max": 2}]},
            "pools[0].policies[0].profiles[0]: min (5) must be <= max (2)",
        ),
        (
            {"type": "schedule", "profiles": [{**OK, "date": "2026-12-24"}]},
            "pools[0].policies[0].profiles[0]: needs exactly one of 'days' or 'cron' (recurring)",
        ),
        (
            {"type": "schedule", "profiles": [{"days": ["mon"], "from": "08:00", "to": "18:00"}]},
            "pools[0].policies[0].profiles[0]: needs 'min' and/or 'max'",
        ),
        (
            {"type": "schedule", "profiles": [{**OK, "minutes_in_advance": -5}]},
            "pools[0].policies[0].profiles[0].minutes_in_advance: input should be greater",
        ),
        (
            {"type": "schedule", "profiles": [{**OK, "mins": 3}]},
            "pools[0].policies[0].profiles[0].mins: unknown key (did you mean 'min'?)",
        ),
    ],
)
def test_config_errors_name_the_key_path(policy: dict[str, Any], expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(policy)), problems(policy)


def test_toml_times_and_dates_are_accepted() -> None:
    import tomllib

    doc = tomllib.loads(
        """
        timezone = "Europe/London"
        [[profiles]]
        days = ["mon", "tue"]
        from = 08:00:00
        to = 18:00:00
        min = 2
        [[profiles]]
        date = 2026-10-27
        min = 9
        [[profiles]]
        start = 2026-10-28T10:00:00Z
        end = 2026-10-28T11:00:00Z
        min = 7
        """
    )
    policy = schedule(**doc)
    assert floor_at(policy, "2026-10-26T09:00Z") == 2
    assert floor_at(policy, "2026-10-27T03:00Z") == 9
    assert floor_at(policy, "2026-10-28T10:30Z") == 7


profile_st = st.fixed_dictionaries(
    {
        "days": st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True),
        "from": st.integers(0, 1439),
        "length": st.integers(1, 1440),
        "min": st.one_of(st.none(), st.integers(0, 50)),
        "max": st.one_of(st.none(), st.integers(0, 50)),
        "minutes_in_advance": st.integers(0, 120),
        "timezone": st.sampled_from(["Europe/London", "America/New_York", "Asia/Kolkata", "UTC"]),
    }
)


def _profile(p: dict[str, Any]) -> dict[str, Any] | None:
    if p["min"] is None and p["max"] is None:
        return None
    if p["min"] is not None and p["max"] is not None and p["min"] > p["max"]:
        p["min"], p["max"] = p["max"], p["min"]
    start = p.pop("from")
    end = (start + p.pop("length")) % 1440
    if end == start:
        end = (start + 1) % 1440
    return {
        **p,
        "from": f"{start // 60:02d}:{start % 60:02d}",
        "to": f"{end // 60:02d}:{end % 60:02d}" if end else "24:00",
    }


@settings(max_examples=examples(150), deadline=None)
@given(
    profiles=st.lists(profile_st, max_size=4),
    default_min=st.integers(0, 10),
    now=st.floats(at("2026-01-01T00:00Z"), at("2027-01-01T00:00Z")),
)
def test_floors_are_never_negative_and_never_above_what_is_configured(
    profiles: list[dict[str, Any]], default_min: int, now: float
) -> None:
    tables = [t for t in (_profile(dict(p)) for p in profiles) if t is not None]
    policy = schedule(default_min=default_min, profiles=tables)
    ctx = PolicyContext(now, 1, None, POOL, MetricReading.missing(), PoolState())
    rec = policy.recommend(ctx)
    configured_mins = [default_min] + [t["min"] for t in tables if t["min"] is not None]
    configured_maxes = [t["max"] for t in tables if t["max"] is not None]
    assert 0 <= rec.desired <= max(configured_mins)
    if rec.ceiling is not None:
        assert rec.ceiling in configured_maxes
        assert rec.desired <= rec.ceiling
    # The cached per-day intervals give the same answer as a fresh instance.
    assert Schedule(policy.config).recommend(ctx) == rec
