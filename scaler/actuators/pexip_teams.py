"""The actuator of kind ``pexip-teams``: the adapters that observe and change its pools.

Wired here, in the composition root (``scaler.actuators``), so that ``scaler.kinds.pexip_teams``
stays pure: its validation, planner and replay model import no adapter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from scaler.adapters.azure import AzureCompute
from scaler.adapters.handles import Done
from scaler.adapters.pexip import (
    PexipClient,
    TeamsProxy,
    active_scheduled_instances,
    scale_set_matches,
)
from scaler.config_model import PoolConfig
from scaler.core.victims import InstanceActions
from scaler.errors import AdapterError, PermanentError
from scaler.kinds.base import (
    KindActuator,
    KindContext,
    Preflight,
)
from scaler.kinds.pexip_teams import connector_of
from scaler.ports import Clock, PoolStatus, ResizeHandle

DRAINING_STATUSES = frozenset({"waiting for termination", "terminating"})
"""``instance_status`` values of instances on their way out
(docs.pexip.com/admin/teams_status.htm)."""

SERVING_STATUSES = frozenset({"active", ""})
"""``instance_status`` values of instances that serve calls: "Active", and none at all (the
Event Hub off: Pexip gives no status, docs.pexip.com/admin/teams_status.htm). Every other value
— "Maintenance" ("the instance is not currently operational"), "Failure", or one Pexip does
not document — is not capacity: for a scale-out the safe assumption is that it serves
nothing."""


def build(ctx: KindContext) -> KindActuator | None:
    """The actuator of kind ``pexip-teams``, or ``None`` when its clients are not configured."""
    if ctx.pexip is None:
        return None
    return PexipTeamsActuator(ctx.compute, ctx.pexip, ctx.clock)


class PexipTeamsActuator:
    """Observes the connector (scale set size, Pexip's instance list, schedule, licences) and
    writes only ``min_number_of_instances`` through Pexip; never the scale set."""

    def __init__(self, compute: AzureCompute, pexip: PexipClient, clock: Clock) -> None:
        self._compute = compute
        self._pexip = pexip
        self._clock = clock

    def member_names(self, pool: PoolConfig) -> Sequence[str] | None:
        return None

    def preflight(self, pool: PoolConfig) -> Preflight:
        try:
            proxy = self._pexip.teams_proxy(connector_of(pool))
        except AdapterError as err:
            return Preflight(
                warnings=(f"pool {pool.name}: cannot check the Teams Connector: {err}",)
            )
        if proxy.notifications_enabled is False:
            return Preflight(
                errors=(
                    f"pools.{pool.name}.kind: 'pexip-teams' needs the Teams Connector's Azure "
                    f"Event Hub (notifications_enabled is off on {proxy.name!r}); without it "
                    "Pexip ignores min_number_of_instances — use kind 'vmss' with drain",
                )
            )
        if proxy.notifications_enabled is None:
            return Preflight(
                warnings=(
                    f"pool {pool.name}: Pexip does not report notifications_enabled for "
                    f"{proxy.name!r}; cannot confirm the Event Hub is on",
                )
            )
        return Preflight()

    def observe(self, pool: PoolConfig) -> PoolStatus:
        """The connector as Pexip and Azure report it. Only the connector itself (where to
        write) and the pool's size are needed; every other read that fails is warned about
        (once a minute), noted, and replaced by its safe assumption (module docstring)."""
        proxy = self._pexip.teams_proxy(connector_of(pool))
        if proxy.notifications_enabled is False:
            raise PermanentError(
                f"pool {pool.name}: the Teams Connector {proxy.name!r} has no Event Hub "
                "(notifications_enabled off): Pexip would ignore min_number_of_instances",
                operation="pexip.teams_proxy",
            )
        notes: list[str] = []
        unverified = ""
        try:
            nodes = [n for n in self._pexip.teams_nodes() if scale_set_matches(n, pool)]
        except AdapterError as err:
            if not pool.resource_id:
                raise  # the instance list is the pool's only measure of its size
            self._pexip.warn_once("pexip.teams_status_unknown", pool=pool.name, error=str(err))
            nodes = []
            unverified = f"Pexip's instance status is unknown ({err})"
            notes.append("instance status unknown: the scale set's capacity is taken as is")
        statuses = [n.instance_status.strip().lower() for n in nodes]
        draining = sum(1 for s in statuses if s in DRAINING_STATUSES)
        odd = sorted({s for s in statuses if s not in SERVING_STATUSES | DRAINING_STATUSES})
        unserving = sum(1 for s in statuses if s not in SERVING_STATUSES | DRAINING_STATUSES)
        if unserving:
            notes.append(
                f"{unserving} instances in Maintenance, Failure or another state "
                f"({', '.join(odd)}) are not capacity"
            )
        if pool.resource_id:
            status = self._compute.observe(pool)
            total = status.capacity
        else:
            status = PoolStatus(capacity=len(nodes))
            total = len(nodes)
        extra = self._scheduled(pool, proxy, notes)
        return dataclasses.replace(
            status,
            capacity=max(0, total - draining - unserving),
            draining=draining,
            unserving=unserving,
            scheduled_instances=extra,
            free_call_licences=self._free_call_licences(),
            scale_in_unverified=unverified,
            notes=tuple(notes),
        )

    def _scheduled(self, pool: PoolConfig, proxy: TeamsProxy, notes: list[str]) -> int | None:
        """What Pexip's schedule adds now; ``None`` (noted) when it cannot be known."""
        try:
            return active_scheduled_instances(self._pexip, proxy, self._clock.now())
        except AdapterError as err:
            absent = err.status == 404
            self._pexip.warn_once(
                "pexip.scheduled_scaling_absent" if absent else "pexip.scheduled_scaling_unknown",
                pool=pool.name,
                error=str(err),
            )
            notes.append(
                "this Management Node has no scheduled scaling (404)"
                if absent
                else f"Pexip's scheduled scaling is unknown ({err})"
            )
            notes[-1] += ": taken to add nothing, the whole need is written as the minimum"
            return None

    def _free_call_licences(self) -> int | None:
        try:
            lic = self._pexip.licensing()
        except AdapterError as err:
            # licences never cap; an unknown count only loses a note
            self._pexip.warn_once("pexip.licensing_unknown", error=str(err))
            return None
        return lic.free_calls

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> ResizeHandle:
        if actions.capacity is None:
            return Done(changed=False)
        proxy = self._pexip.teams_proxy(connector_of(pool))
        if proxy.min_number_of_instances == actions.capacity:
            return Done(changed=False)
        self._pexip.set_min_instances(proxy.id, actions.capacity)
        return Done()
