"""Kind ``vm-set``: pre-provisioned Conferencing Node VMs (Pexip dynamic bursting style).

The pool's VMs are stand-alone Azure VMs of ``vm_set.resource_group`` carrying ``vm_set.tag``.
A scale-out starts deallocated VMs ("up to 5 minutes" to start, DESIGN §1.1); a scale-in puts
the least-loaded nodes into maintenance mode — a node in maintenance takes no new calls and keeps
the ones it has (docs.pexip.com/admin/maintenance_mode.htm) — and deallocates a draining node
only once it carries **no call** and its minimum lifetime (``min_lifetime_minutes``, Pexip's
``bursting_min_lifetime``: hourly billing) has passed.

Emptiness is never read from ``media_load``: a node in maintenance reports a media load of 100 %
"to indicate that there is no current capacity available" (maintenance_mode.htm); the calls on
the node come from what Pexip reports per node. Nodes in maintenance count neither as load nor
as capacity.

Quota: Azure counts the vCPUs of allocated *and* deallocated VMs against the regional and family
limits (learn.microsoft.com/azure/virtual-machines/quotas: "Quota is calculated based on the
total number of cores in use both allocated and deallocated"), so starting a pre-provisioned VM
needs no headroom and deallocating one frees none (``PoolLimits.scale_up_uses_quota``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from scaler.core.types import Decision, PoolLimits, Reason
from scaler.core.victims import (
    DEALLOCATED,
    UNKNOWN,
    DrainState,
    Instance,
    InstanceActions,
    InstancePlan,
    amend,
    with_loads,
)
from scaler.kinds.base import (
    KindActuator,
    KindContext,
    PlanInput,
    PoolKind,
    Preflight,
    ScaleIn,
    guard,
)

if TYPE_CHECKING:
    from scaler.adapters.azure_instances import AzureVmSet
    from scaler.adapters.pexip import PexipClient, WorkerVmConfig
    from scaler.config import Config, PoolConfig
    from scaler.ports import Clock, PoolStatus, ResizeHandle


class VmSet(PoolKind):
    name = "vm-set"
    needs_pexip = True
    node_metric = True

    def problems(self, at: str, pool: PoolConfig, config: Config) -> list[str]:
        out: list[str] = []
        if pool.resource_id:
            out.append(
                f"{at}.resource_id: not used by kind 'vm-set' (set vm_set.resource_group and "
                f"vm_set.tag), got {pool.resource_id!r}"
            )
        for key in ("resource_group", "tag"):
            if not getattr(pool.vm_set, key):
                out.append(f"{at}.vm_set.{key}: required for kind 'vm-set', got ''")
        if not config.azure.subscription_id:
            out.append("azure.subscription_id: required with a 'vm-set' pool, got ''")
        if pool.teams_proxy:
            out.append(f"{at}.teams_proxy: only for kind 'pexip-teams', got {pool.teams_proxy!r}")
        if pool.drain is not None:
            out.append(f"{at}.drain: only for kind 'vmss' (vm-set always drains), got true")
        if pool.max_drain_minutes is not None:
            out.append(
                f"{at}.max_drain_minutes: only for kind 'vmss' (a vm-set node is stopped only "
                f"once empty), got {pool.max_drain_minutes:g}"
            )
        return out

    def limits(self, pool: PoolConfig, limits: PoolLimits) -> PoolLimits:
        return dataclasses.replace(limits, scale_up_uses_quota=False)

    def plan(self, given: PlanInput) -> InstancePlan:
        if given.status.instances is None:
            return super().plan(given)
        reading = given.reading
        loads = dict(reading.by_instance) if reading is not None else {}
        instances = with_loads(given.status.instances, loads)
        lifetime = given.pool.vm_set.min_lifetime_minutes * 60.0
        plan = plan_vm_set(
            decision=guard(given),
            instances=instances,
            now=given.now,
            min_lifetime_seconds=lifetime,
        )
        waiting = draining_detail(instances, now=given.now, min_lifetime_seconds=lifetime)
        return dataclasses.replace(plan, waiting=waiting)

    def replay_mode(self, pool: PoolConfig) -> ScaleIn:
        return "drain"

    def actuator(self, ctx: KindContext) -> KindActuator | None:
        if ctx.pexip is None:
            return None
        from scaler.adapters.azure_instances import AzureVmSet

        return VmSetActuator(
            AzureVmSet(ctx.compute), ctx.pexip, ctx.clock, allow_competing=ctx.allow_competing
        )


def plan_vm_set(
    *,
    decision: Decision,
    instances: Sequence[Instance],
    now: float,
    min_lifetime_seconds: float,
) -> InstancePlan:
    """Refine a ``vm-set`` (burst node) pool's decision into node actions.

    ``decision.current`` counts allocated nodes that take calls (not draining, not in an
    operator's maintenance). Every tick, draining nodes whose load is known to be zero and whose
    minimum lifetime (billing hour) has passed are deallocated. A scale-out first takes draining
    nodes out of maintenance, then starts deallocated VMs, most recently healthy first (then VMs
    whose power state is unknown). A
    scale-in puts the least-loaded serving nodes into maintenance (closest to the end of their
    minimum lifetime first); they are stopped on a later tick, once empty.
    """
    current, desired = decision.current, decision.desired
    if decision.reason is Reason.RESIZE_IN_FLIGHT:
        return InstancePlan(decision, InstanceActions(), DrainState())
    draining = [i for i in instances if i.draining and i.allocated]
    undrain: list[str] = []
    start: list[str] = []
    drain: list[str] = []
    out = decision
    if desired > current:
        want = desired - current
        # Busiest draining nodes first: taking them back saves the most calls from moving.
        for inst in sorted(draining, key=lambda i: (-(i.calls or 0.0), i.id))[:want]:
            undrain.append(inst.id)
        want -= len(undrain)
        # a VM whose power state is not known may be stopped: it is started after the known
        # deallocated ones (starting a running VM changes nothing), never left out
        spare = [i for i in instances if i.state in (DEALLOCATED, UNKNOWN) and not i.maintenance]
        spare.sort(key=lambda i: (i.state == UNKNOWN, -(i.last_healthy or 0.0), i.id))
        start = [i.id for i in spare[:want]]
        short = want - len(start)
        if short:
            out = amend(
                decision,
                desired - short,
                Reason.NO_SPARE_INSTANCES,
                f"{short} more wanted but the set has no deallocated VM left",
            )
    elif desired < current:
        serving = [i for i in instances if i.allocated and not i.draining and not i.maintenance]

        def remaining(i: Instance) -> float:
            return max(0.0, (i.started_at or now) + min_lifetime_seconds - now)

        serving.sort(key=lambda i: (math.inf if i.calls is None else i.calls, remaining(i), i.id))
        drain = [i.id for i in serving[: current - desired]]

    taken_back = set(undrain)
    deallocate = [
        i.id
        for i in draining
        if i.id not in taken_back and i.idle and (i.started_at or now) + min_lifetime_seconds <= now
    ]
    actions = InstanceActions(
        undrain=tuple(undrain),
        start=tuple(start),
        drain=tuple(drain),
        deallocate=tuple(sorted(deallocate)),
    )
    return InstancePlan(out, actions, DrainState())


def draining_detail(
    instances: Sequence[Instance], *, now: float, min_lifetime_seconds: float
) -> str:
    """A short account of draining nodes still waiting: load or minimum lifetime."""
    parts = []
    for i in instances:
        if not (i.draining and i.allocated):
            continue
        left = (i.started_at or now) + min_lifetime_seconds - now
        if not i.idle:
            load = "?" if i.calls is None else f"{i.calls:g}"
            parts.append(f"{i.id} draining ({load} calls)")
        elif left > 0:
            parts.append(f"{i.id} idle, minimum lifetime ends in {left:.0f} s")
    return "; ".join(parts)


class VmSetActuator:
    """Stand-alone Conferencing Node VMs joined with their Pexip status.

    Remembers, per VM, when it saw it start (the minimum lifetime counts from the later of that
    and Pexip's ``boot_time``) and when it last saw it serving (most recently healthy first).
    """

    def __init__(
        self, vms: AzureVmSet, pexip: PexipClient, clock: Clock, *, allow_competing: bool = False
    ) -> None:
        self._vms = vms
        self._pexip = pexip
        self._clock = clock
        self._allow_competing = allow_competing
        self._started: dict[str, float] = {}
        self._healthy: dict[str, float] = {}
        self.members: dict[str, tuple[str, ...]] = {}

    def member_names(self, pool: PoolConfig) -> Sequence[str] | None:
        return self.members.get(pool.name)

    def observe(self, pool: PoolConfig) -> PoolStatus:
        from scaler.adapters.pexip import MAINTENANCE_REASON
        from scaler.ports import PoolStatus

        now = self._clock.now()
        vms = self._vms.list(pool)
        self.members[pool.name] = tuple(v.name for v in vms)
        workers = {w.name.lower(): w for w in self._pexip.worker_vms()}
        instances = []
        capacities = []
        for vm in vms:
            worker = workers.get(vm.name.lower())
            state = vm.power_state
            if state in ("stopped", "deallocated"):
                state = DEALLOCATED
            allocated = state in ("running", "starting")
            if allocated:
                self._started.setdefault(vm.name, now)
            else:
                self._started.pop(vm.name, None)
            calls: float | None = None
            started = self._started.get(vm.name)
            ours = maint = False
            healthy = self._healthy.get(vm.name)
            if worker is not None:
                capacities.append(worker.max_hd_calls)
                ours = worker.maintenance_mode and worker.maintenance_mode_reason == (
                    MAINTENANCE_REASON
                )
                maint = worker.maintenance_mode and not ours
                if allocated:
                    # the calls Pexip reports on the node, never its media load (which reads
                    # 100 % in maintenance: docs.pexip.com/admin/maintenance_mode.htm)
                    calls = worker.calls
                    if worker.boot_time is not None and started is not None:
                        started = max(started, worker.boot_time)
                healthy = max(healthy or 0.0, worker.last_contacted or 0.0) or None
            if state == "running" and worker is not None:
                self._healthy[vm.name] = now
            if state == DEALLOCATED:
                calls = 0.0
            instances.append(
                Instance(
                    id=vm.name,
                    names=(vm.name,),
                    state=state,
                    calls=calls,
                    capacity_calls=worker.max_hd_calls if worker is not None else None,
                    maintenance=maint,
                    draining=ours and allocated,
                    started_at=started,
                    last_healthy=healthy,
                )
            )
        serving = sum(1 for i in instances if i.allocated and not i.draining and not i.maintenance)
        per_instance = None
        if not pool.calls_per_instance_set and capacities:
            per_instance = sum(capacities) / len(capacities)
        return PoolStatus(
            capacity=serving, instances=tuple(instances), calls_per_instance=per_instance
        )

    def preflight(self, pool: PoolConfig) -> Preflight:
        """Refuse a pool whose nodes Pexip's dynamic bursting also starts and stops: with
        ``bursting_enabled`` "everything is then controlled automatically by the Management
        Node" (https://docs.pexip.com/admin/bursting.htm), which starts overflow nodes
        (``cloud_bursting``) of a location when its free capacity falls to the threshold and
        stops them again — a second scaler on the same nodes or location, like an Azure
        autoscale setting on a scale set. ``--allow-competing`` makes it a warning; a setting
        that cannot be read is a warning (nothing known either way)."""
        from scaler.errors import AdapterError

        try:
            bursting = self._pexip.bursting()
            configs = self._pexip.worker_vm_configs()
            names = {v.name.lower() for v in self._vms.list(pool)}
        except AdapterError as err:
            return Preflight(warnings=(f"cannot check Pexip's dynamic bursting: {err}",))
        clash = bursting_clash(configs, names)
        if not clash:
            return Preflight()
        if bursting.enabled is None:
            return Preflight(
                warnings=(
                    f"pool {pool.name}: {clash}, and Pexip does not say whether dynamic "
                    "bursting (bursting_enabled) is on",
                )
            )
        if not bursting.enabled:
            return Preflight(
                warnings=(
                    f"pool {pool.name}: {clash}; dynamic bursting is off, enabling it "
                    "would fight this daemon",
                )
            )
        text = (
            f"pool {pool.name}: Pexip's dynamic bursting is enabled (bursting_enabled) and "
            f"{clash}: Pexip starts and stops those nodes itself"
        )
        if self._allow_competing:
            return Preflight(warnings=(f"{text}; allowed by --allow-competing",))
        return Preflight(
            errors=(
                f"{text}; turn bursting off in Pexip (Platform > Global settings), take the "
                "nodes out of the pool's tag, or start with --allow-competing",
            )
        )

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> ResizeHandle:
        from scaler.adapters.pexip import MAINTENANCE_REASON

        configs: dict[str, WorkerVmConfig] = {}
        if actions.drain or actions.undrain or actions.start:
            configs = {c.name.lower(): c for c in self._pexip.worker_vm_configs()}
        for name in actions.undrain:
            self._pexip.set_maintenance(_node(configs, name, pool).id, False)
        for name in actions.drain:
            self._pexip.set_maintenance(_node(configs, name, pool).id, True)
        handles: list[ResizeHandle] = []
        for name in actions.start:
            # A node stopped after a drain is still in our maintenance: lift it before it boots.
            node = configs.get(name.lower())
            ours = node is not None and node.maintenance_mode_reason == MAINTENANCE_REASON
            if node is not None and node.maintenance_mode and ours:
                self._pexip.set_maintenance(node.id, False)
            handles.append(self._vms.start(pool, name))
            self._started[name] = self._clock.now()
        for name in actions.deallocate:
            handles.append(self._vms.deallocate(pool, name))
            self._started.pop(name, None)
        from scaler.adapters.handles import AllOf

        return AllOf(handles)


def bursting_clash(configs: Sequence[WorkerVmConfig], members: set[str]) -> str:
    """What of Pexip's dynamic bursting touches a pool whose VMs are ``members`` (lower-case
    names): its own nodes marked ``cloud_bursting``, or bursting nodes in a system location of
    its nodes ("Pexip Infinity automatically detects the purpose of the location according to
    whether it contains Conferencing Nodes that may be used for dynamic bursting",
    https://docs.pexip.com/admin/azure_bursting.htm). "" when nothing does."""
    mine = [c for c in configs if c.name.lower() in members]
    own = sorted(c.name for c in mine if c.cloud_bursting)
    if own:
        return f"its nodes {', '.join(own)} are bursting nodes (cloud_bursting)"
    places = {c.system_location for c in mine if c.system_location}
    near = sorted(
        c.name
        for c in configs
        if c.cloud_bursting and c.system_location in places and c.name.lower() not in members
    )
    if near:
        return (
            f"the bursting nodes {', '.join(near)} (cloud_bursting) share a system location "
            "with its nodes"
        )
    return ""


def _node(configs: Mapping[str, WorkerVmConfig], name: str, pool: PoolConfig) -> WorkerVmConfig:
    node = configs.get(name.lower())
    if node is None:
        from scaler.errors import PermanentError

        raise PermanentError(
            f"pool {pool.name}: VM {name!r} is not a Conferencing Node known to Pexip"
        )
    return node
