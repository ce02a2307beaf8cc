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
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

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
    KindOptions,
    PlanInput,
    PoolKind,
    ScaleIn,
    guard,
    options_of,
)

if TYPE_CHECKING:
    from scaler.config_model import Config, PoolConfig


class VmSetConfig(KindOptions):
    """``[pools.vm_set]``: the pre-provisioned VMs of a ``vm-set`` (burst node) pool."""

    resource_group: str = ""
    """``vm-set``: the VMs of this resource group carrying tag ``key=value``."""
    tag: str = ""
    """``key=value``: VMs of ``resource_group`` carrying this tag belong to the pool."""
    min_lifetime_minutes: float = Field(default=50.0, ge=0.0, le=1440.0)
    """A started node is kept at least this long (hourly billing)."""

    @field_validator("tag")
    @classmethod
    def _tag(cls, v: str) -> str:
        if v and ("=" not in v or not v.split("=", 1)[0].strip()):
            raise ValueError("must be key=value")
        return v

    @property
    def tag_pair(self) -> tuple[str, str]:
        key, _, value = self.tag.partition("=")
        return key.strip(), value.strip()


class VmSetOptions(KindOptions):
    """The keys of ``[[pools]]`` only a ``vm-set`` pool takes."""

    vm_set: VmSetConfig = VmSetConfig()
    """``[pools.vm_set]``: the VMs of a ``vm-set`` pool."""


def vm_set_of(pool: PoolConfig) -> VmSetConfig:
    """The pool's ``[pools.vm_set]`` table (its defaults when the pool sets none)."""
    return options_of(pool, VmSetOptions).vm_set


class VmSet(PoolKind):
    name = "vm-set"
    Options = VmSetOptions
    needs_pexip = True
    node_metric = True

    def problems(self, at: str, pool: PoolConfig, config: Config) -> list[str]:
        out: list[str] = []
        if pool.resource_id:
            out.append(
                f"{at}.resource_id: not used by kind 'vm-set' (set vm_set.resource_group and "
                f"vm_set.tag), got {pool.resource_id!r}"
            )
        vm_set = vm_set_of(pool)
        for key in ("resource_group", "tag"):
            if not getattr(vm_set, key):
                out.append(f"{at}.vm_set.{key}: required for kind 'vm-set', got ''")
        if not config.azure.subscription_id:
            out.append("azure.subscription_id: required with a 'vm-set' pool, got ''")
        return out

    def limits(self, pool: PoolConfig, limits: PoolLimits) -> PoolLimits:
        return dataclasses.replace(limits, scale_up_uses_quota=False)

    def plan(self, given: PlanInput) -> InstancePlan:
        if given.status.instances is None:
            return super().plan(given)
        reading = given.reading
        loads = dict(reading.by_instance) if reading is not None else {}
        instances = with_loads(given.status.instances, loads)
        lifetime = vm_set_of(given.pool).min_lifetime_minutes * 60.0
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
