"""Pool kinds as plug-ins: one planner shared by daemon and backtest, and call-safe drains
true to how Pexip lists Teams Connector instances."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scaler.kinds as kinds
from scaler.backtest import engine
from scaler.backtest.runner import scale_in_mode
from scaler.config import parse_config
from scaler.core import Decision, MetricReading, MetricStatus, PoolState, Reason
from scaler.core.victims import DrainState, Instance, InstanceActions, InstancePlan, amend
from scaler.errors import ConfigError
from scaler.kinds import PlanInput, PoolKind, kind_of
from scaler.kinds import vmss as vmss_kind
from scaler.kinds.pexip_teams import PexipTeams
from scaler.ports import PoolStatus
from tests.conftest import config_doc, examples, pool_table
from tests.test_backtest_engine import Fixed, grid, spec

NOW = 1_800_000_000.0


def decision(current: int, desired: int) -> Decision:
    return Decision(
        pool="tc",
        current=current,
        desired=desired,
        reason=Reason.DESIRED_WITHIN_RANGE,
        recommended=desired,
        policy="target-tracking",
        calls=0.0,
        metric_status=MetricStatus.OK,
        steps=(),
        state=PoolState(),
    )


# -- one planner for daemon and backtest --------------------------------------------------------


def test_the_backtest_replays_a_drain_aware_pool_through_the_kinds_planner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[int] = []
    real = vmss_kind.plan_drain

    def spy(**kw: Any) -> InstancePlan:
        seen.append(len(kw["instances"]))
        return real(**kw)

    sizes = [4] * 10 + [2] * 50
    calls = [20.0] * 30 + [1.0] * 30
    before = engine.replay_pool(
        spec(Fixed(sizes), boot_minutes=0, scale_in="idle"), calls, grid(60)
    )
    monkeypatch.setattr(vmss_kind, "plan_drain", spy)
    after = engine.replay_pool(spec(Fixed(sizes), boot_minutes=0, scale_in="idle"), calls, grid(60))
    assert seen and all(n == 4 for n in seen)  # the pool's four instances, as observed
    assert list(after.series.requested) == list(before.series.requested)


class Fixed3(PoolKind):
    """A fourth kind, as a third party would add it: never more than three instances."""

    name: ClassVar[str] = "fixed3"

    def problems(self, at: str, pool: Any, config: Any) -> list[str]:
        return [] if pool.max <= 10 else [f"{at}.max: fixed3 pools hold at most 10, got {pool.max}"]

    def plan(self, given: PlanInput) -> InstancePlan:
        d = given.decision
        if d.desired > 3:
            d = amend(d, 3, Reason.TOO_MANY_INSTANCES, "fixed3 holds at most three")
        capacity = d.desired if d.desired != d.current else None
        return InstancePlan(d, InstanceActions(capacity=capacity), DrainState())

    def replay_mode(self, pool: Any) -> engine.ScaleIn:
        return "drain"


@pytest.fixture
def fourth_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(kinds.BUILTINS, Fixed3.name, Fixed3)
    kinds.discover.cache_clear()
    yield
    kinds.discover.cache_clear()


def test_a_fourth_kind_is_one_class_and_its_registration(fourth_kind: None) -> None:
    from scaler.adapters.sim import ManualClock, SimCloud
    from scaler.daemon import Daemon
    from tests.test_daemon import START, flat_trace

    config = parse_config(config_doc(pool_table(kind="fixed3", max=8)), environ={})
    assert isinstance(kind_of(config.pools[0]), Fixed3)
    assert scale_in_mode(config.pools[0]) == "drain"
    with pytest.raises(ConfigError) as err:
        parse_config(config_doc(pool_table(kind="fixed3", max=20)), environ={})
    assert "pools[0].max: fixed3 pools hold at most 10, got 20" in err.value.problems

    clock = ManualClock(START.timestamp() + 10 * 60)
    cloud = SimCloud(config, flat_trace([200.0] * 60), clock=clock, quota_limits={})
    daemon = Daemon(config=config, metrics=cloud, actuator=cloud, quota=cloud, clock=clock)
    (o,) = daemon.tick()
    assert (o.desired, o.reason) == (3, "TooManyInstances")


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config_doc(pool_table(kind="vmms")), environ={})
    assert any(
        p.startswith("pools[0].kind: must be one of pexip-teams, vm-set, vmss, got 'vmms'")
        for p in err.value.problems
    )


# -- call-safe drains (the platform issue's finding 2) --------------------------------------


def scale_set(*running: str) -> tuple[Instance, ...]:
    """A scale set's instance list: ids 0.., computer names tc00000<i>."""
    return tuple(Instance(id=str(i), names=(name,)) for i, name in enumerate(running))


def vmss_plan(
    instances: tuple[Instance, ...],
    reading: MetricReading,
    *,
    current: int,
    desired: int,
    state: DrainState | None = None,
    now: float = NOW,
    max_drain_minutes: float | None = None,
) -> InstancePlan:
    config = parse_config(
        config_doc(
            pool_table(metric={"source": "pexip"}, max_drain_minutes=max_drain_minutes),
            pexip={"url": "https://pexip.example.com", "username": "u"},
        ),
        environ={},
    )
    pool = config.pools[0]
    return kind_of(pool).plan(
        PlanInput(
            pool=pool,
            decision=decision(current, desired),
            status=PoolStatus(capacity=current, instances=instances),
            reading=reading,
            state=state or DrainState(),
            now=now,
        )
    )


def test_without_the_event_hub_an_unlisted_running_instance_carries_no_call() -> None:
    # Pexip lists a Teams Connector instance only while a Teams call is in progress
    # (docs.pexip.com/admin/teams_status.htm): tc000000 has 3 calls, the other three none.
    pool = scale_set("tc000000", "tc000001", "tc000002", "tc000003")
    reading = MetricReading(
        MetricStatus.OK, 3.0, NOW, by_instance=(("tc000000", 3.0),), unlisted_is_idle=True
    )
    plan = vmss_plan(pool, reading, current=4, desired=1)
    assert plan.actions.remove == ("1", "2", "3")
    assert plan.decision.desired == 1 and plan.decision.reason is Reason.DESIRED_WITHIN_RANGE


def test_a_timed_out_drain_never_removes_known_calls_while_unknown_load_remains() -> None:
    # With the Event Hub on, an unlisted instance is unknown (not idle): after the maximum drain
    # time the unknown ones go first, the one with known calls stays.
    pool = scale_set("tc000000", "tc000001", "tc000002", "tc000003")
    reading = MetricReading(MetricStatus.OK, 3.0, NOW, by_instance=(("tc000000", 3.0),))
    first = vmss_plan(pool, reading, current=4, desired=1, max_drain_minutes=10)
    assert first.actions.remove == () and first.decision.reason is Reason.WAITING_FOR_IDLE
    late = vmss_plan(
        pool, reading, current=4, desired=1, state=first.state, now=NOW + 600, max_drain_minutes=10
    )
    assert late.decision.reason is Reason.DRAIN_TIMED_OUT
    assert late.actions.remove == ("1", "2", "3")
    assert "0" not in late.actions.remove


def test_a_stopped_instance_is_never_assumed_idle() -> None:
    pool = (
        Instance(id="0", names=("tc000000",), state="starting"),
        Instance(id="1", names=("tc000001",)),
    )
    reading = MetricReading(MetricStatus.OK, 0.0, NOW, unlisted_is_idle=True)
    plan = vmss_plan(pool, reading, current=2, desired=0)
    assert plan.actions.remove == ("1",)  # the starting one is not known idle


@settings(max_examples=examples(200), deadline=None)
@given(
    calls=st.lists(st.one_of(st.none(), st.integers(0, 16)), min_size=1, max_size=12),
    hub_off=st.booleans(),
    desired=st.integers(0, 12),
    waited=st.booleans(),
)
def test_property_a_scale_in_never_removes_an_instance_with_a_call(
    calls: list[int | None], hub_off: bool, desired: int, waited: bool
) -> None:
    """Whatever Pexip lists (an instance with calls may be listed or, with a failed read of one
    record, unknown), no plan without a maximum drain time removes an instance with a call."""
    pool = scale_set(*(f"tc{i:06d}" for i in range(len(calls))))
    listed = tuple(
        (f"tc{i:06d}", float(c))
        for i, c in enumerate(calls)
        if c is not None and (c or not hub_off)
    )
    truth = {str(i): c for i, c in enumerate(calls)}
    reading = MetricReading(
        MetricStatus.OK, sum(c or 0 for c in calls), NOW, by_instance=listed, unlisted_is_idle=False
    )
    state = DrainState(pending_since=NOW - 86400 if waited else None)
    plan = vmss_plan(
        pool, reading, current=len(calls), desired=min(desired, len(calls)), state=state
    )
    for iid in plan.actions.remove:
        assert truth[iid] == 0


# -- pexip-teams -----------------------------------------------------------------------------


def teams_plan(status: PoolStatus, current: int, desired: int) -> InstancePlan:
    config = parse_config(
        config_doc(
            pool_table(kind="pexip-teams", teams_proxy="tc", metric={"source": "pexip"}),
            pexip={"url": "https://pexip.example.com", "username": "u"},
        ),
        environ={},
    )
    return PexipTeams().plan(
        PlanInput(
            pool=config.pools[0],
            decision=decision(current, desired),
            status=status,
            reading=None,
            state=DrainState(),
            now=NOW,
        )
    )


def test_the_minimum_written_leaves_room_for_pexips_scheduled_instances() -> None:
    # Pexip's target is the minimum plus the active schedules' instances_to_add
    # (docs.pexip.com/admin/teams_scaling.htm): to have 7, write 5 while a schedule adds 2.
    plan = teams_plan(PoolStatus(capacity=4, scheduled_instances=2), current=4, desired=7)
    assert plan.actions.capacity == 5 and plan.decision.desired == 7


def test_a_schedule_keeps_instances_the_daemon_cannot_remove() -> None:
    plan = teams_plan(PoolStatus(capacity=6, scheduled_instances=4), current=6, desired=2)
    assert plan.decision.desired == 4 and plan.decision.reason is Reason.PEXIP_SCHEDULED
    assert plan.actions.capacity == 0


def test_licences_never_cap_a_teams_connector() -> None:
    # Pexip's Teams licence counts tenants, "no limit to … the number of instances within each
    # Teams Connector" (docs.pexip.com/admin/teams_configuration.htm); few free call licences
    # are said, never a cap.
    plan = teams_plan(PoolStatus(capacity=4, free_call_licences=10), current=4, desired=12)
    assert plan.decision.desired == 12 and plan.actions.capacity == 12
    assert plan.decision.reason is Reason.DESIRED_WITHIN_RANGE
    assert "only 10 Pexip call licences are free" in plan.decision.detail
    roomy = teams_plan(PoolStatus(capacity=4, free_call_licences=500), current=4, desired=12)
    assert roomy.decision.detail == "" and roomy.actions.capacity == 12


def test_instances_pexip_reports_not_serving_are_added_to_the_minimum() -> None:
    # One instance in Maintenance: not capacity (current 3 of 4), and Pexip may count it
    # towards its minimum, so to serve 5 the minimum written is 6.
    plan = teams_plan(PoolStatus(capacity=3, unserving=1), current=3, desired=5)
    assert plan.decision.desired == 5 and plan.actions.capacity == 6


def test_an_unknown_schedule_writes_the_whole_need() -> None:
    # Scheduled scaling unknown: taken to add nothing, so the minimum is the whole need; Pexip's
    # target (minimum + schedule) can only be higher. Neither direction holds.
    up = teams_plan(PoolStatus(capacity=4, scheduled_instances=None), current=4, desired=7)
    assert up.actions.capacity == 7
    down = teams_plan(PoolStatus(capacity=6, scheduled_instances=None), current=6, desired=4)
    assert down.decision.desired == 4 and down.actions.capacity == 4


def test_a_scale_in_the_observation_cannot_vouch_for_holds_and_says_why() -> None:
    status = PoolStatus(
        capacity=6,
        scale_in_unverified="Pexip's instance status is unknown (timed out)",
        notes=("instance status unknown: the scale set's capacity is taken as is",),
    )
    down = teams_plan(status, current=6, desired=4)
    assert down.decision.desired == 6 and down.decision.reason is Reason.SCALE_IN_UNVERIFIED
    assert down.actions.empty
    assert "instance status is unknown" in down.decision.detail
    assert "taken as is" in down.decision.detail
    up = teams_plan(status, current=6, desired=8)
    assert up.decision.desired == 8 and up.actions.capacity == 8
    assert "a scale-in would hold" in up.decision.detail


def test_drain_state_survives_its_document() -> None:
    state = DrainState(pending_since=NOW, protected=frozenset({"1", "3"}))
    assert DrainState.from_doc(state.to_doc()) == state
    assert DrainState.from_doc({"pending_since": "x", "protected": [None]}) == DrainState()
    assert dataclasses.asdict(DrainState.from_doc(None)) == dataclasses.asdict(DrainState())


class Unattributable:
    """The simulator's metric, except on the ticks the script marks, where the reading cannot be
    attributed to the pool (as Pexip's records naming another scale set are)."""

    def __init__(self, cloud: Any, script: list[bool]) -> None:
        self.cloud = cloud
        self.script = list(script)

    def read(self, pools: Any, now: float) -> dict[str, MetricReading]:
        bad = self.script.pop(0) if self.script else False
        if bad:
            return {p.name: MetricReading.missing("no record attributable to tc") for p in pools}
        return dict(self.cloud.read(pools, now))


@settings(max_examples=examples(40), deadline=None)
@given(
    script=st.lists(st.booleans(), min_size=2, max_size=25),
    load=st.lists(st.floats(0, 200), min_size=60, max_size=60),
)
def test_property_an_unattributable_read_never_lowers_the_pool(
    script: list[bool], load: list[float]
) -> None:
    from scaler.adapters.sim import ManualClock, SimCloud
    from scaler.daemon import Daemon
    from tests.test_daemon import START, flat_trace

    config = parse_config(
        config_doc(
            pool_table(behavior={"scale_down": {"stabilization_seconds": 0, "max_percent": 100}})
        ),
        environ={},
    )
    clock = ManualClock(START.timestamp() + 10 * 60)
    cloud = SimCloud(config, flat_trace([*load] * 2), clock=clock, quota_limits={}, lro_seconds=0)
    daemon = Daemon(
        config=config,
        metrics=Unattributable(cloud, script),
        actuator=cloud,
        quota=cloud,
        clock=clock,
    )
    last_good: int | None = None
    for bad in script:
        (o,) = daemon.tick()
        if bad and last_good is not None:
            assert o.desired is not None and o.desired >= last_good
        if not bad and o.desired is not None:
            last_good = o.desired
        elif bad and o.desired is not None and last_good is not None:
            last_good = max(last_good, o.desired)
        clock.advance(60)


def test_a_pool_keeps_only_the_history_its_policies_read() -> None:
    """Five weeks of minutes per pool is 200 kB: a target-tracking pool keeps an hour of it, a
    step pool its longest rule window plus an hour, a predictive pool the five weeks."""
    from scaler.policyset import build_policies
    from scaler.tick import HISTORY_MINUTES, history_minutes

    def minutes(*policies: dict[str, Any]) -> int:
        config = parse_config(config_doc(pool_table(policies=list(policies))), environ={})
        return history_minutes(build_policies(config.pools[0]))

    tt = {"type": "target-tracking", "target_utilization": 0.8}
    assert minutes(tt) == 60
    step = {
        "type": "step",
        "rules": [
            {
                "direction": "increase",
                "statistic": "average",
                "time_window_minutes": 30,
                "operator": ">",
                "threshold": 0.8,
                "change_count": 1,
            }
        ],
    }
    assert minutes(tt, step) == 90
    assert minutes(tt, {"type": "predictive"}) == HISTORY_MINUTES
    composite = {"type": "composite", "policies": [tt, step]}
    assert minutes(composite) == 90


def test_a_reload_gives_a_pool_the_history_its_new_policies_read() -> None:
    from scaler.adapters.sim import ManualClock, SimCloud
    from scaler.daemon import Daemon
    from scaler.tick import HISTORY_MINUTES
    from tests.test_daemon import START, flat_trace

    config = parse_config(config_doc(pool_table()), environ={})
    clock = ManualClock(START.timestamp())
    cloud = SimCloud(config, flat_trace([10.0] * 60), clock=clock, quota_limits={})
    daemon = Daemon(config=config, metrics=cloud, actuator=cloud, quota=cloud, clock=clock)
    assert daemon.ticker.history["tc"].capacity == 60
    table = pool_table(policies=[{"type": "predictive"}])
    daemon.ticker.use_config(parse_config(config_doc(table), environ={}))
    assert daemon.ticker.history["tc"].capacity == HISTORY_MINUTES
