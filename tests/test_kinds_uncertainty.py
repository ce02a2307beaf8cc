"""The one rule, as a property over every pool kind: uncertainty may hold a scale-in, never a
scale-out.

For each built-in kind a true platform state is drawn (instances or nodes, their power state,
their calls, Pexip's schedule and licences), then read twice through the kind's real actuator
over in-memory stand-ins of the adapters it uses (``PexipClient``, ``AzureCompute``, the
instance lists — our own ports, no SDK): once cleanly, and once with any combination of failed
or odd auxiliary reads — the ones Pexip or Azure may not answer, or answer in a form the
documentation does not promise:

* Pexip's scheduled scaling failing, absent (404, a version before the feature) or holding a
  record that cannot be evaluated; licences failing or null;
* an ``instance_status`` Pexip does not document;
* ``teamsnode`` names that are not the scale set's computer names (nothing documents that
  they are), a count that cannot be read;
* a scale set instance or VM whose instance view names no power state; calls per Conferencing
  Node that cannot be read; a VM Pexip does not list.

The load reading itself (the total calls) is the same in both. Then, for the same decision
rule, the size the degraded plan writes (or keeps) is at least the clean plan's, and no plan
ever removes, deletes or deallocates an instance that may carry a call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scaler.kinds as kinds
from scaler.actuators.pexip_teams import PexipTeamsActuator
from scaler.actuators.vm_set import VmSetActuator
from scaler.actuators.vmss import VmssActuator
from scaler.adapters.azure_instances import VmInfo
from scaler.adapters.pexip import Licensing, ScheduledScaling, TeamsNode, TeamsProxy, WorkerVm
from scaler.config import PoolConfig, parse_config
from scaler.core import Decision, MetricReading, MetricStatus, PoolState, Reason
from scaler.core.victims import DrainState, Instance, InstancePlan
from scaler.errors import PermanentError, TransientError
from scaler.kinds import PlanInput
from scaler.ports import PoolStatus
from tests.conftest import config_doc, pool_table

NOW = 1_795_000_000.0  # a Thursday
PEXIP = {"url": "https://pexip.example.com", "username": "admin"}
EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def test_the_property_covers_every_built_in_kind() -> None:
    assert set(kinds.BUILTINS) == {"vmss", "pexip-teams", "vm-set"}


class Clock:
    def now(self) -> float:
        return NOW


def pool_of(table: dict[str, Any]) -> PoolConfig:
    return parse_config(config_doc(table, pexip=PEXIP), environ={}).pools[0]


def decide(pool: PoolConfig, status: PoolStatus, load: float, cpi: float) -> Decision:
    """The core's answer in short: target tracking at 80 % within the pool's bounds."""
    need = min(pool.max, max(pool.min, math.ceil(load / (cpi * 0.8) - 1e-9)))
    return Decision(
        pool=pool.name,
        current=status.capacity,
        desired=need,
        reason=Reason.DESIRED_WITHIN_RANGE,
        recommended=need,
        policy="target-tracking",
        calls=load,
        metric_status=MetricStatus.OK,
        steps=(),
        state=PoolState(),
    )


def plan(pool: PoolConfig, status: PoolStatus, reading: MetricReading, cpi: float) -> InstancePlan:
    decision = decide(pool, status, reading.calls or 0.0, cpi)
    given = PlanInput(pool, decision, status, reading, DrainState(), NOW)
    return kinds.kind_of(pool).plan(given)


# ------------------------------------------------------------------------------ pexip-teams


@dataclass
class TeamsPexip:
    """What the pexip-teams actuator reads of the Management Node."""

    nodes: list[TeamsNode]
    extra: int
    schedule: str  # clean, failing, absent, odd
    licences: str  # clean, failing, null
    warnings: int = 0

    def teams_proxy(self, ref: str) -> TeamsProxy:
        return TeamsProxy(7, ref, 1, notifications_enabled=True)

    def teams_nodes(self) -> list[TeamsNode]:
        return list(self.nodes)

    def scheduled_scaling(self) -> list[ScheduledScaling]:
        if self.schedule == "failing":
            raise TransientError("pexip scheduled_scaling: HTTP 503", status=503)
        if self.schedule == "absent":
            raise PermanentError("pexip scheduled_scaling: HTTP 404", status=404)
        policy = ScheduledScaling(
            id=1,
            policy_name="business hours",
            enabled=True,
            instances_to_add=self.extra,
            minutes_in_advance=0,
            local_timezone="UTC",
            time_from="00:00",
            time_to="23:59",
            days=EVERY_DAY,
        )
        if self.schedule == "odd":
            policy = replace(policy, local_timezone="Not/AZone")
        return [policy]

    def licensing(self) -> Licensing:
        if self.licences == "failing":
            raise TransientError("pexip licensing: timed out")
        if self.licences == "null":
            return Licensing(None, None)
        return Licensing(1, 1, port_count=30, port_total=100)

    def warn_once(self, event: str, **fields: Any) -> None:
        self.warnings += 1


class Compute:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity

    def observe(self, pool: PoolConfig) -> PoolStatus:
        return PoolStatus(capacity=self.capacity)


TEAMS_STATUSES = ("Active", "Active", "Active", "Waiting for termination", "Maintenance", "Failure")


@settings(max_examples=300, deadline=None)
@given(
    instances=st.lists(
        st.tuples(st.sampled_from(TEAMS_STATUSES), st.integers(0, 16)), min_size=1, max_size=10
    ),
    extra=st.integers(0, 3),
    schedule=st.sampled_from(["clean", "failing", "absent", "odd"]),
    licences=st.sampled_from(["clean", "failing", "null"]),
    renamed_status=st.booleans(),
)
def test_pexip_teams_writes_no_less_for_any_failed_or_odd_auxiliary_read(
    instances: list[tuple[str, int]],
    extra: int,
    schedule: str,
    licences: str,
    renamed_status: bool,
) -> None:
    pool = pool_of(pool_table(kind="pexip-teams", teams_proxy="cvi", metric={"source": "pexip"}))
    nodes = [
        TeamsNode(f"tc{i:06d}", calls, 16, instance_status=status)
        for i, (status, calls) in enumerate(instances)
    ]
    load = float(sum(calls for _, calls in instances))
    reading = MetricReading(MetricStatus.OK, calls=load, as_of=NOW)

    def run(pexip: TeamsPexip) -> tuple[PoolStatus, InstancePlan]:
        actuator = PexipTeamsActuator(Compute(len(nodes)), pexip, Clock())  # type: ignore[arg-type]
        status = actuator.observe(pool)
        return status, plan(pool, status, reading, pool.calls_per_instance)

    _, clean = run(TeamsPexip(nodes, extra, "clean", "clean"))
    odd_nodes = list(nodes)
    if renamed_status:  # a status Pexip does not document, on instances that do not serve
        odd_nodes = [
            replace(n, instance_status="Unavailable")
            if n.instance_status in ("Maintenance", "Failure")
            else n
            for n in nodes
        ]
    _, degraded = run(TeamsPexip(odd_nodes, extra, schedule, licences))

    for p in (clean, degraded):
        assert not p.actions.remove and not p.actions.deallocate  # Pexip drains, never us
    # Pexip runs the minimum plus what its schedule (truly) adds (teams_scaling.htm)
    wrote_clean, wrote_degraded = clean.actions.capacity, degraded.actions.capacity
    if wrote_clean is not None and wrote_degraded is not None:
        assert wrote_degraded >= wrote_clean
    elif wrote_clean is not None:
        # the degraded read may hold, but only what would have been a scale-in
        assert clean.decision.desired < clean.decision.current
    if wrote_degraded is not None:
        # whatever it writes, Pexip's target still covers what the clean read wants served
        assert wrote_degraded + extra >= clean.decision.desired


# -------------------------------------------------------------------------------------- vmss


class Instances:
    def __init__(self, instances: Sequence[Instance]) -> None:
        self.instances = list(instances)

    def list(self, pool: PoolConfig) -> list[Instance]:
        return list(self.instances)


POWER = ("running", "running", "running", "running", "deallocated", "starting")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    world=st.lists(
        st.tuples(
            st.sampled_from(POWER),
            st.one_of(st.just(0), st.integers(0, 16)),
            st.booleans(),  # its instance view names no power state
            st.booleans(),  # its count cannot be read
        ),
        min_size=1,
        max_size=8,
    ),
    hub=st.booleans(),
    renamed=st.booleans(),
)
def test_vmss_writes_no_less_and_never_removes_a_possible_call(
    world: list[tuple[str, int, bool, bool]], hub: bool, renamed: bool
) -> None:
    pool = pool_of(pool_table(metric={"source": "pexip"}, min=0))
    sku = len(world)
    truth = [(power, calls) for power, calls, _, _ in world]
    unknown_power = {i for i, w in enumerate(world) if w[2]}
    unreadable = {i for i, w in enumerate(world) if w[3]}
    calls_of = {str(i): (n if power == "running" else 0) for i, (power, n) in enumerate(truth)}
    instances = [
        Instance(id=str(i), names=(f"tc_{i}", f"tc{i:06d}"), state=power)
        for i, (power, _) in enumerate(truth)
    ]

    def reading(name: Any, bad: set[int]) -> MetricReading:
        records = [
            (name(i), None if i in bad else float(calls_of[str(i)]))
            for i, (power, _) in enumerate(truth)
            if power == "running" and (hub or calls_of[str(i)] > 0)
        ]
        load = float(sum(calls_of.values()))
        return MetricReading(
            MetricStatus.OK, calls=load, as_of=NOW, by_instance=tuple(records),
            unlisted_is_idle=not hub,
        )  # fmt: skip

    def run(listed: Sequence[Instance], read: MetricReading) -> InstancePlan:
        actuator = VmssActuator(Compute(sku), Instances(listed))  # type: ignore[arg-type]
        return plan(pool, actuator.observe(pool), read, pool.calls_per_instance)

    clean = run(instances, reading(lambda i: f"tc{i:06d}", set()))
    odd = [replace(x, state="unknown") if int(x.id) in unknown_power else x for x in instances]
    name = (lambda i: f"tc-teams-{i}.example.net") if renamed else (lambda i: f"tc{i:06d}")
    degraded = run(odd, reading(name, unreadable))

    def size(p: InstancePlan) -> int:
        return p.actions.capacity if p.actions.capacity is not None else sku - len(p.actions.remove)

    assert size(degraded) >= size(clean)
    for p in (clean, degraded):
        for victim in p.actions.remove:
            power = truth[int(victim)][0]
            assert power == "running" and calls_of[victim] == 0, (victim, p)


# ------------------------------------------------------------------------------------ vm-set


@dataclass
class NodesPexip:
    workers: list[WorkerVm]

    def worker_vms(self, *, with_calls: bool = True) -> list[WorkerVm]:
        return list(self.workers)

    def warn_once(self, event: str, **fields: Any) -> None:
        pass


class Vms:
    def __init__(self, vms: Sequence[VmInfo]) -> None:
        self.vms = list(vms)

    def list(self, rg: str, tag: tuple[str, str]) -> list[VmInfo]:
        assert (rg, tag) == ("cvi", ("pexip-role", "burst"))  # the pool's [pools.vm_set]
        return list(self.vms)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    world=st.lists(
        st.tuples(
            st.sampled_from(["running", "deallocated"]),
            st.one_of(st.just(0), st.integers(0, 20)),
            st.booleans(),  # its power state is not reported
            st.booleans(),  # Pexip does not list the node
        ),
        min_size=1,
        max_size=6,
    ),
    base=st.integers(0, 60),
    calls_unknown=st.booleans(),
)
def test_vm_set_starts_no_fewer_and_never_stops_a_node_with_calls(
    world: list[tuple[str, int, bool, bool]], base: int, calls_unknown: bool
) -> None:
    truth = [(power, calls) for power, calls, _, _ in world]
    unknown_power = {i for i, w in enumerate(world) if w[2]}
    unlisted = {i for i, w in enumerate(world) if w[3]}
    pool = pool_of(
        pool_table(
            "burst",
            kind="vm-set",
            resource_id="",
            vm_set={"resource_group": "cvi", "tag": "pexip-role=burst", "min_lifetime_minutes": 0},
            metric={"source": "pexip"},
            min=0,
            max=6,
            calls_per_instance=20,
        )
    )
    calls_of = {f"burst-{i}": (n if p == "running" else 0) for i, (p, n) in enumerate(truth)}
    load = float(base + sum(calls_of.values()))

    def observe(unknown: set[int], missing: set[int], no_calls: bool) -> InstancePlan:
        vms = [
            VmInfo(f"burst-{i}", "unknown" if i in unknown else power)
            for i, (power, _) in enumerate(truth)
        ]
        workers = [
            WorkerVm(
                f"burst-{i}",
                "London",
                False,
                0.0,
                20.0,
                calls=None if no_calls else float(calls_of[f"burst-{i}"]),
            )
            for i in range(len(truth))
            if i not in missing
        ]
        actuator = VmSetActuator(Vms(vms), NodesPexip(workers), Clock())  # type: ignore[arg-type]
        status = actuator.observe(pool)
        by_instance = tuple((w.name, w.calls) for w in workers)
        reading = MetricReading(MetricStatus.OK, calls=load, as_of=NOW, by_instance=by_instance)
        return plan(pool, status, reading, 20.0)

    clean = observe(set(), set(), False)
    degraded = observe(unknown_power, unlisted, calls_unknown)
    serving = {f"burst-{i}" for i, (power, _) in enumerate(truth) if power == "running"}

    def size(p: InstancePlan) -> int:
        a = p.actions
        return len((serving | set(a.undrain) | set(a.start)) - set(a.drain) - set(a.deallocate))

    assert size(degraded) >= size(clean)
    for p in (clean, degraded):
        for name in p.actions.deallocate:
            assert calls_of[name] == 0, (name, p)
