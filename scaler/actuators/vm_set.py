"""The actuator of kind ``vm-set``: the adapters that observe and change its pools.

Wired here, in the composition root (``scaler.actuators``), so that ``scaler.kinds.vm_set`` stays
pure: its validation, planner and replay model import no adapter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from scaler.adapters.azure_instances import AzureVmSet, VmInfo
from scaler.adapters.handles import AllOf
from scaler.adapters.pexip import MAINTENANCE_REASON, PexipClient, WorkerVmConfig
from scaler.config_model import PoolConfig
from scaler.core.victims import (
    DEALLOCATED,
    Instance,
    InstanceActions,
)
from scaler.errors import AdapterError, PermanentError
from scaler.kinds.base import (
    KindActuator,
    KindContext,
    Preflight,
)
from scaler.kinds.vm_set import vm_set_of
from scaler.ports import Clock, PoolStatus, ResizeHandle


def build(ctx: KindContext) -> KindActuator | None:
    """The actuator of kind ``vm-set``, or ``None`` when its clients are not configured."""
    if ctx.pexip is None:
        return None
    return VmSetActuator(
        AzureVmSet(ctx.compute), ctx.pexip, ctx.clock, allow_competing=ctx.allow_competing
    )


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
        now = self._clock.now()
        vms = _listed(self._vms, pool)
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
        try:
            bursting = self._pexip.bursting()
            configs = self._pexip.worker_vm_configs()
            names = {v.name.lower() for v in _listed(self._vms, pool)}
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
            handles.append(self._vms.start(vm_set_of(pool).resource_group, name))
            self._started[name] = self._clock.now()
        for name in actions.deallocate:
            handles.append(self._vms.deallocate(vm_set_of(pool).resource_group, name))
            self._started.pop(name, None)
        return AllOf(handles)


def _listed(vms: AzureVmSet, pool: PoolConfig) -> list[VmInfo]:
    """The VMs of the pool's ``[pools.vm_set]``: its resource group's VMs carrying its tag."""
    group = vm_set_of(pool)
    return vms.list(group.resource_group, group.tag_pair)


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
        raise PermanentError(
            f"pool {pool.name}: VM {name!r} is not a Conferencing Node known to Pexip"
        )
    return node
