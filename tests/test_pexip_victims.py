"""Call-safe scale-in: victims, drains and burst nodes, decided by pure functions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.core import Decision, MetricStatus, PoolState, Reason
from scaler.core.victims import DrainState, Instance, not_serving, unproven_join, with_loads
from scaler.kinds.vm_set import plan_vm_set
from scaler.kinds.vmss import choose_victims, plan_drain
from tests.conftest import examples

NOW = 1_800_000_000.0


def decision(current: int, desired: int, reason: Reason = Reason.DESIRED_WITHIN_RANGE) -> Decision:
    return Decision(
        pool="tc",
        current=current,
        desired=desired,
        reason=reason,
        recommended=desired,
        policy="target-tracking",
        calls=0.0,
        metric_status=MetricStatus.OK,
        steps=(),
        state=PoolState(),
    )


def vm(i: int, calls: float | None, **kw: object) -> Instance:
    return Instance(id=str(i), names=(f"tc00000{i}",), calls=calls, **kw)  # type: ignore[arg-type]


def test_only_idle_instances_are_victims_youngest_first() -> None:
    pool = [
        vm(0, 3, started_at=NOW - 900),
        vm(1, 0, started_at=NOW - 900),
        vm(2, None),
        vm(3, 0, started_at=NOW - 60),
    ]
    assert choose_victims(pool, 1) == ("3",)
    assert choose_victims(pool, 5) == ("3", "1")


def test_protected_or_maintenance_instances_are_left_alone() -> None:
    pool = [vm(0, 0, protected=True), vm(1, 0, maintenance=True), vm(2, 0)]
    assert choose_victims(pool, 3) == ("2",)
    assert choose_victims(pool, 3, exclude=frozenset({"0"})) == ("2", "0")


def test_loads_join_by_any_name_case_insensitively() -> None:
    pool = [vm(0, None), vm(1, None), Instance(id="2", calls=5)]
    joined = with_loads(pool, {"TC000000": 4.0, "1": 0.0, "2": 0.0})
    assert [i.calls for i in joined] == [4.0, 0.0, 5]


def test_a_name_join_is_trusted_only_where_every_busy_record_names_one_instance() -> None:
    pool = [vm(0, None), vm(1, None), vm(2, None, state="deallocated")]
    assert unproven_join(pool, {}) == ""  # nothing busy: nothing to place
    assert unproven_join(pool, {"tc000000": 3.0, "somewhere-else": 0.0}) == ""
    # a busy record named otherwise (an FQDN), or on an instance that is not running
    assert "name no running instance" in unproven_join(pool, {"tc-0.example.net": 3.0})
    assert "name no running instance" in unproven_join(pool, {"tc000002": 1.0})
    # unknown counts are busy too
    assert unproven_join(pool, {"x": None}) != ""
    # one name shared by two instances (one's VM name, the other's computer name)
    shared = [Instance(id="0", names=("a", "b")), Instance(id="1", names=("b",))]
    assert "several instances" in unproven_join(shared, {"B": 2.0})


def test_stopped_or_starting_instances_are_neither_capacity_nor_idle() -> None:
    pool = [
        vm(0, 0.0, state="starting"),
        vm(1, 0.0, state="deallocated"),
        vm(2, 0.0),
        vm(3, 0.0, state="unknown"),
    ]
    assert not_serving(pool) == 3  # starting, deallocated, and of unknown power state
    assert choose_victims(pool, 4) == ("2",)  # only the running one known idle
    up = plan_drain(
        decision=decision(1, 4), instances=pool, state=DrainState(), now=NOW, unserving=3
    )
    assert up.actions.capacity == 7  # four serving, plus the three that serve nothing


def test_scale_in_without_idle_instances_waits_and_protects_the_busy() -> None:
    pool = [vm(0, 3), vm(1, 2), vm(2, 0)]
    plan = plan_drain(decision=decision(3, 1), instances=pool, state=DrainState(), now=NOW)
    assert plan.actions.remove == ("2",)
    assert plan.actions.protect == ("0", "1")
    assert plan.decision.desired == 2
    assert plan.decision.reason is Reason.WAITING_FOR_IDLE
    assert "0=3" in plan.decision.detail and plan.decision.steps[-1].stage == "drain"
    assert plan.state == DrainState(NOW, frozenset({"0", "1"}))

    # Ten minutes later instance 1 is empty: it goes, and nothing waits any more.
    later = [vm(0, 3, protected=True), vm(1, 0, protected=True)]
    plan = plan_drain(decision=decision(2, 1), instances=later, state=plan.state, now=NOW + 600)
    assert plan.actions.remove == ("1",)
    assert plan.actions.unprotect == ("0",)
    assert plan.decision.reason is Reason.DESIRED_WITHIN_RANGE
    assert plan.state == DrainState()


def test_a_configured_maximum_drain_time_removes_the_least_loaded() -> None:
    pool = [vm(0, 3), vm(1, 1)]
    first = plan_drain(
        decision=decision(2, 1), instances=pool, state=DrainState(), now=NOW, max_drain_seconds=600
    )
    assert first.actions.remove == () and first.decision.reason is Reason.WAITING_FOR_IDLE
    late = plan_drain(
        decision=decision(2, 1),
        instances=pool,
        state=first.state,
        now=NOW + 600,
        max_drain_seconds=600,
    )
    assert late.actions.remove == ("1",)
    assert late.decision.reason is Reason.DRAIN_TIMED_OUT and "1 calls" in late.decision.detail


def test_scale_out_and_hold_release_only_our_protection() -> None:
    pool = [vm(0, 3, protected=True), vm(1, 1, protected=True)]
    state = DrainState(NOW, frozenset({"0"}))
    up = plan_drain(decision=decision(2, 4), instances=pool, state=state, now=NOW)
    assert up.actions.capacity == 4 and up.actions.unprotect == ("0",)
    held = plan_drain(
        decision=decision(2, 2, Reason.RESIZE_IN_FLIGHT), instances=pool, state=state, now=NOW
    )
    assert held.actions.empty and held.state.protected == frozenset({"0"})


placements = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(0, 16).map(float)),
        st.booleans(),
        st.sampled_from(["running", "running", "starting", "deleting"]),
    ),
    min_size=0,
    max_size=12,
)


@settings(max_examples=examples(400), deadline=None)
@given(
    placements,
    st.integers(0, 12),
    st.integers(0, 1800),
    st.one_of(st.none(), st.just(DrainState(NOW - 3600, frozenset({"0", "1"})))),
)
def test_no_scale_in_ever_removes_an_instance_with_calls(
    placed: list[tuple[float | None, bool, str]],
    desired: int,
    elapsed: int,
    state: DrainState | None,
) -> None:
    pool = [
        Instance(id=str(i), calls=calls, protected=prot, state=power)
        for i, (calls, prot, power) in enumerate(placed)
    ]
    current = len(pool)
    state = state or DrainState()
    plan = plan_drain(
        decision=decision(current, desired), instances=pool, state=state, now=NOW + elapsed
    )
    by_id = {i.id: i for i in pool}
    for victim in plan.actions.remove:
        assert by_id[victim].calls == 0.0
        assert by_id[victim].state != "deleting"
    assert len(set(plan.actions.remove)) == len(plan.actions.remove)
    if desired >= current:
        assert plan.actions.remove == () and plan.decision.desired == desired
    else:
        assert plan.decision.desired == current - len(plan.actions.remove) >= desired
        if plan.decision.desired > desired:
            assert plan.decision.reason is Reason.WAITING_FOR_IDLE
    # Nothing is ever both protected and released, and releases are only ours.
    assert not set(plan.actions.protect) & set(plan.actions.unprotect)
    assert set(plan.actions.unprotect) <= state.protected


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 30).map(float)),
            st.sampled_from(["running", "starting", "deallocated", "deallocating"]),
            st.booleans(),
            st.integers(0, 7200),
        ),
        max_size=10,
    ),
    st.integers(0, 10),
)
def test_burst_nodes_stop_only_when_empty_and_past_their_lifetime(
    nodes: list[tuple[float | None, str, bool, int]], desired: int
) -> None:
    pool = [
        Instance(
            id=f"node{i}",
            calls=calls,
            state=power,
            draining=draining and power in ("running", "starting"),
            started_at=NOW - age,
        )
        for i, (calls, power, draining, age) in enumerate(nodes)
    ]
    current = sum(1 for i in pool if i.allocated and not i.draining)
    plan = plan_vm_set(
        decision=decision(current, desired), instances=pool, now=NOW, min_lifetime_seconds=3000
    )
    by_id = {i.id: i for i in pool}
    for name in plan.actions.deallocate:
        node = by_id[name]
        assert node.draining and node.calls == 0.0 and NOW - (node.started_at or NOW) >= 3000
    for name in plan.actions.start:
        assert by_id[name].state == "deallocated"
    assert not set(plan.actions.deallocate) & set(plan.actions.undrain)


def test_burst_scale_out_prefers_draining_then_most_recently_healthy() -> None:
    pool = [
        Instance(id="a", state="deallocated", last_healthy=NOW - 86400),
        Instance(id="b", state="deallocated", last_healthy=NOW - 3600),
        Instance(id="c", state="running", draining=True, calls=2.0, started_at=NOW - 600),
        Instance(id="d", state="deallocated"),
    ]
    plan = plan_vm_set(decision=decision(0, 3), instances=pool, now=NOW, min_lifetime_seconds=3000)
    assert plan.actions.undrain == ("c",)
    assert plan.actions.start == ("b", "a")
    short = plan_vm_set(decision=decision(0, 9), instances=pool, now=NOW, min_lifetime_seconds=0)
    assert short.decision.reason is Reason.NO_SPARE_INSTANCES and short.decision.desired == 4
