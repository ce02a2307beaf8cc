"""What ``decide()`` remembers and when: a safe start without a state store, and wall-clock
timestamps from the future (a backward clock step, a state file written ahead) that must never
freeze a scale-out and may hold a scale-in for at most one window."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.step import StepConfig, StepRules
from policies.target_tracking import TargetTracking, TargetTrackingConfig
from scaler.adapters.sim import ManualClock, SimCloud
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
from scaler.daemon import Daemon
from scaler.state import decode, encode
from scaler.traces import Trace
from tests.conftest import config_doc, pool_table

POOL = PoolLimits("tc", 1, 40, 15.0, 4, "standardFSv2Family", "westeurope")
TT = (TargetTracking(TargetTrackingConfig(target_utilization=0.8)),)
NOW = 1_800_000_000.0


def run(current: int, calls: float, state: PoolState, *, now: float = NOW, behavior=None):
    return decide(
        pool=POOL,
        behavior=behavior or Behavior(),
        policies=TT,
        observation=Observation(current, MetricReading.ok(calls)),
        state=state,
        now=now,
    )


def test_a_pool_never_seen_holds_its_size_for_one_down_window() -> None:
    """The docs' promise, "no scale-in until one down-stabilisation window has passed",
    for ``decide()`` given an empty state (no ``state_dir``, no ``[ha]``)."""
    d = run(10, 12.0, PoolState())
    assert (d.desired, d.reason) == (10, Reason.SCALE_DOWN_STABILIZED)
    state = d.state
    for minute in range(1, 6):
        d = run(10, 12.0, state, now=NOW + minute * 60.0 - 1)
        state = d.state
        assert d.desired == 10
    d = run(10, 12.0, state, now=NOW + 301)
    assert d.desired == 1


def test_a_pool_never_seen_scales_out_at_once() -> None:
    d = run(1, 120.0, PoolState())
    assert d.desired == 5  # +4 a minute (the default rate limit), not held


def test_the_daemon_without_a_state_store_does_not_scale_in_on_its_first_tick() -> None:
    """No ``state_dir``, no ``$STATE_DIRECTORY``, no ``[ha]``: 10 instances with load for 1
    stay 10 on the first tick and for the 300 s window, then go."""
    config = parse_config(config_doc(pool_table(min=1, max=20)), environ={})
    start = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)
    trace = Trace(start=start, step_seconds=60, pools=("tc",), calls={"tc": [6.0] * 60}, length=60)
    clock = ManualClock(start.timestamp() + 10 * 60)
    cloud = SimCloud(config, trace, clock=clock)
    cloud.resize(config.pools[0], 10)
    clock.advance(1200)  # the ten are ready
    daemon = Daemon(config=config, metrics=cloud, actuator=cloud, quota=cloud, clock=clock)
    (o,) = daemon.tick()
    assert (o.current, o.desired, o.reason) == (10, 10, "ScaleDownStabilized")
    clock.advance(240)
    (o,) = daemon.tick()
    assert o.desired == 10
    clock.advance(90)
    (o,) = daemon.tick()
    assert (o.current, o.desired) == (10, 1)


def test_future_recommendations_never_hold_a_scale_out() -> None:
    """A state whose recommendations lie an hour ahead (a backward clock step): a low one
    would freeze scale-out under an up-window; it is re-stamped outside the up-window."""
    behavior = Behavior(
        scale_up=DirectionBehavior(120.0, None, None, 60.0),
        scale_down=DirectionBehavior(300.0, None, None, 60.0),
    )
    state = PoolState(recommendations=((NOW + 3600, 1),), since=NOW - 86400)
    d = run(2, 120.0, state, behavior=behavior)
    assert d.desired == 10
    assert all(t <= NOW for t, _ in d.state.recommendations)


def test_future_recommendations_hold_a_scale_in_for_at_most_one_window() -> None:
    behavior = Behavior(
        scale_up=DirectionBehavior(0.0, None, None, 60.0),
        scale_down=DirectionBehavior(300.0, None, None, 60.0),
    )
    state = PoolState(recommendations=((NOW + 86400 * 365, 10),), since=NOW - 86400)
    d = run(10, 12.0, state, behavior=behavior)
    assert (d.desired, d.reason) == (10, Reason.SCALE_DOWN_STABILIZED)
    d = run(10, 12.0, d.state, now=NOW + 301, behavior=behavior)
    assert d.desired == 1


def test_future_scale_up_events_never_shrink_the_scale_up_allowed() -> None:
    """Scale-ups stamped in the future would count as "added this period" until the clock
    reaches them: 10 added in the future at 10 instances would leave "+4 or 100 %" of 0."""
    state = PoolState(scale_events=((NOW + 3600, 10),), since=NOW - 86400)
    d = run(10, 600.0, state)
    assert (d.desired, d.reason) == (20, Reason.SCALE_UP_LIMIT)  # 100 % of 10, as without it
    assert d.state.scale_events == ()


def test_future_scale_in_events_count_for_one_period_only() -> None:
    behavior = Behavior(scale_down=DirectionBehavior(0.0, 2, None, 60.0))
    state = PoolState(scale_events=((NOW + 3600, -2),), since=NOW - 86400)
    d = run(10, 12.0, state, behavior=behavior)
    assert (d.desired, d.reason) == (10, Reason.SCALE_DOWN_LIMIT)  # the 2 of this period used
    later = run(10, 12.0, d.state, now=NOW + 61, behavior=behavior)
    assert later.desired == 8


def test_future_cooldown_stamps_never_freeze_step_rules() -> None:
    """``last_scale_up`` an hour ahead: the increase rule still fires now."""
    step = StepRules(
        StepConfig.model_validate(
            {
                "rules": [
                    {
                        "operator": ">",
                        "threshold": 70,
                        "direction": "increase",
                        "change_count": 1,
                        "cooldown_minutes": 5,
                    }
                ]
            }
        )
    )
    state = PoolState(last_scale_up=NOW + 3600, last_scale_down=NOW + 3600, since=NOW - 86400)
    d = decide(
        pool=POOL,
        behavior=Behavior(),
        policies=(step,),
        observation=Observation(2, MetricReading.ok(27.0)),  # 90 % of 2 × 15
        state=state,
        now=NOW,
    )
    assert d.desired == 3
    assert d.state.last_scale_up is None and d.state.last_scale_down is None


def test_a_state_file_written_ahead_never_freezes_scale_out_after_restore() -> None:
    saved = record_scale(PoolState(since=NOW + 7200), now=NOW + 7200, change=+30)
    saved = PoolState(
        recommendations=((NOW + 7200, 1),),
        scale_events=saved.scale_events,
        last_scale_up=saved.last_scale_up,
        since=saved.since,
    )
    from scaler.state import PoolSnapshot, Snapshot

    doc = encode(Snapshot(saved_at=NOW + 7200, pools={"tc": PoolSnapshot(state=saved)}))
    restored = decode(doc).pools["tc"].state
    d = run(4, 300.0, restored)
    assert d.desired == 8  # +4 or 100 % of 4 a minute, as for any pool


@settings(max_examples=200, deadline=None)
@given(
    offsets=st.lists(st.floats(min_value=1.0, max_value=10**8), max_size=6),
    changes=st.lists(st.integers(min_value=-20, max_value=20), max_size=6),
    current=st.integers(min_value=1, max_value=30),
)
def test_future_timestamps_never_make_a_scale_out_smaller_than_no_history(
    offsets: list[float], changes: list[int], current: int
) -> None:
    """Whatever lies in the future in the state, at least the scale-out of a pool with an empty
    history is allowed, and a decision never hands back a future stamp."""
    events = tuple(sorted((NOW + o, c) for o, c in zip(offsets, changes, strict=False) if c))
    recs = tuple(sorted((NOW + o, 1) for o in offsets))
    state = PoolState(recs, events, NOW + 10**6, NOW + 10**6, since=NOW - 1)
    baseline = run(current, 600.0, PoolState(since=NOW - 1))
    d = run(current, 600.0, state)
    assert d.desired >= baseline.desired
    stamps = [t for t, _ in d.state.recommendations] + [t for t, _ in d.state.scale_events]
    assert all(t <= NOW for t in stamps)


def test_a_state_file_from_before_since_existed_still_knows_its_pools() -> None:
    """Written by an earlier release: no ``since``. Its pools are known (no first-sight hold);
    a pool saved before it was ever decided (``since`` null) is still unseen."""
    import json

    doc = {
        "version": 1,
        "saved_at": NOW - 60,
        "pools": {
            "old": {"recommendations": [[NOW - 120, 10]]},
            "unseen": {"since": None},
        },
    }
    pools = decode(json.dumps(doc).encode()).pools
    assert pools["old"].state.since == NOW - 60
    assert pools["unseen"].state.since is None
