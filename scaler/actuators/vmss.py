"""The actuator of kind ``vmss``: the adapters that observe and change its pools.

Wired here, in the composition root (``scaler.actuators``), so that ``scaler.kinds.vmss`` stays
pure: its validation, planner and replay model import no adapter.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from scaler.adapters.azure import AzureCompute
from scaler.adapters.azure_instances import AzureScaleSetInstances
from scaler.adapters.handles import AllOf
from scaler.adapters.pexip import PexipClient, scale_set_matches, scale_set_named
from scaler.config_model import PoolConfig
from scaler.core.victims import (
    Instance,
    InstanceActions,
    not_serving,
    unproven_join,
)
from scaler.errors import AdapterError
from scaler.kinds.base import (
    KindActuator,
    KindContext,
    Preflight,
)
from scaler.kinds.vmss import drain_enabled
from scaler.ports import PoolStatus, ResizeHandle
from scaler.sources import source_of


def build(ctx: KindContext) -> KindActuator | None:
    """The actuator of kind ``vmss``, or ``None`` when its clients are not configured."""
    return VmssActuator(ctx.compute, AzureScaleSetInstances(ctx.compute), pexip=ctx.pexip)


class VmssActuator:
    """Capacity PATCH of the scale set; drain-aware pools also get the instance view and act
    per instance (protection, deletion by id).

    Right before ``deleteInstances`` the calls of the instances to remove are read once more
    from the Management Node (when the pool's source is Pexip): an instance that took a call
    since the tick's read is left out (it is removed on a later tick, once idle), and when the
    fresh records do not prove the name join (``unproven_join``) nothing is removed. Instances
    the planner removes deliberately after ``max_drain_minutes`` (``forced``) are not
    re-checked.
    """

    def __init__(
        self,
        compute: AzureCompute,
        instances: AzureScaleSetInstances,
        *,
        pexip: PexipClient | None = None,
    ) -> None:
        self._compute = compute
        self._instances = instances
        self._pexip = pexip

    def observe(self, pool: PoolConfig) -> PoolStatus:
        status = self._compute.observe(pool)
        if not drain_enabled(pool):
            return status
        instances = tuple(self._instances.list(pool))
        idle = not_serving(instances)
        notes = (
            (f"{idle} instances starting, stopped or of unknown power state are not capacity",)
            if idle
            else ()
        )
        return dataclasses.replace(
            status,
            capacity=max(0, status.capacity - idle),
            instances=instances,
            unserving=idle,
            notes=notes,
        )

    def member_names(self, pool: PoolConfig) -> Sequence[str] | None:
        return None

    def preflight(self, pool: PoolConfig) -> Preflight:
        """Warn when Pexip itself sizes this scale set: Pexip reports ``instance_status`` only
        with the Teams Connector's Azure Event Hub on (docs.pexip.com/admin/teams_status.htm),
        and then it owns the scale set's size (teams_scaling.htm) and would undo the daemon's
        capacity writes; such a connector is kind ``pexip-teams``."""
        if self._pexip is None:
            return Preflight()
        try:
            nodes = self._pexip.teams_nodes()
        except AdapterError as err:
            return Preflight(warnings=(f"cannot check Pexip's Teams Connector list: {err}",))
        if any(n.instance_status and scale_set_named(n, pool) for n in nodes):
            return Preflight(
                warnings=(
                    f"pool {pool.name}: Pexip reports instance_status for this scale set, so "
                    "its Teams Connector has the Azure Event Hub on and Pexip sizes it itself; "
                    "capacity written here would be overridden — use kind 'pexip-teams'",
                )
            )
        return Preflight()

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> ResizeHandle:
        if actions.protect:
            self._instances.set_protection(pool, actions.protect, True)
        if actions.unprotect:
            self._instances.set_protection(pool, actions.unprotect, False)
        handles: list[ResizeHandle] = []
        remove = self._recheck(pool, actions)
        if remove:
            handles.append(self._instances.delete(pool, remove))
        if actions.capacity is not None:
            handles.append(self._compute.resize(pool, actions.capacity))
        return AllOf(handles)

    def _recheck(self, pool: PoolConfig, actions: InstanceActions) -> tuple[str, ...]:
        """The instances still safe to delete, by a fresh read of their calls (Pexip only),
        joined to the instances by the same test as the planner's (``unproven_join``)."""
        if not actions.remove or self._pexip is None or not source_of(pool).needs_pexip:
            return actions.remove
        try:
            loads = _fresh_loads(self._pexip, pool)
            instances = self._instances.list(pool)
        except AdapterError:
            return actions.forced  # the fresh read failed: remove nothing that was not forced
        if unproven_join(instances, loads):
            return actions.forced
        forced = set(actions.forced)
        by_id = {i.id: i for i in instances}
        keep: list[str] = []
        for iid in actions.remove:
            inst = by_id.get(iid)
            if iid in forced or (inst is not None and _still_idle(inst, loads)):
                keep.append(iid)
        return tuple(keep)


def _still_idle(inst: Instance, loads: dict[str, float | None]) -> bool:
    """No fresh record with a call names the instance (a record with no call, or none at all
    with the Event Hub off, leaves it idle)."""
    names = {n.lower() for n in (inst.id, *inst.names)}
    for name, calls in loads.items():
        if name.lower() in names and (calls is None or calls != 0.0):
            return False
    return True


def _fresh_loads(client: PexipClient, pool: PoolConfig) -> dict[str, float | None]:
    """Calls per listed Teams Connector instance that may belong to the pool, from a fresh
    ``status/v1/teamsnode/`` read (``None``: a count that cannot be trusted)."""
    loads: dict[str, float | None] = {}
    for node in client.teams_nodes():
        if not scale_set_matches(node, pool):
            continue
        calls = node.call_count
        ok = node.valid and calls is not None and math.isfinite(calls) and calls >= 0
        loads[node.name] = float(calls) if ok and calls is not None else None
    return loads
