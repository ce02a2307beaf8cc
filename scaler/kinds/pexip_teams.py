"""Kind ``pexip-teams``: a Teams Connector whose size Pexip Infinity owns.

With the Teams Connector's Azure Event Hub enabled, Pexip sizes the scale set itself and drains
instances before it removes them ("Waiting for termination"); the daemon's control surface is
the connector's ``min_number_of_instances`` (docs.pexip.com/admin/teams_scaling.htm: "Specify a
minimum number of instances (capacity) that is always available"). Without the Event Hub Pexip
ignores that minimum, so the kind refuses a connector whose ``notifications_enabled`` is off
(use kind ``vmss`` with ``drain`` there).

What the pool has (``capacity``) is what serves calls. Pexip's ``instance_status``
(docs.pexip.com/admin/teams_status.htm) takes out instances on their way out ("Waiting for
termination", "Terminating": they may still carry calls but take no new ones) and instances
that do not serve: "Maintenance" ("the instance is not currently operational") and "Failure"
(it kept failing to restart). Pexip does not say whether these count towards its minimum, so
the minimum written counts them in (``unserving``): the serving instances reach the desired size
whichever way Pexip counts (what we could not verify, docs/pool-kinds.md).

Pexip's own scheduled-scaling policies add ``instances_to_add`` on top of the minimum while they
are active (teams_scaling.htm, "How scheduled scaling works"), so the minimum written is the
desired size less what is scheduled now. When the schedule cannot be read (a failed read, or a
Management Node without ``configuration/v1/scheduled_scaling/``) it is taken to add nothing:
the whole need is written as the minimum, and Pexip's target (minimum + schedule) is then at
least the need whatever the schedule holds — safe in both directions, so nothing holds.

Licences never cap the size: Pexip's Teams licence counts Teams *tenants*, "there is no limit to
the number of … instances within each Teams Connector" (docs.pexip.com/admin/
teams_configuration.htm). A scale-out that needs more calls than the free call licences
(``port_total - port_count``; each gateway call into Teams needs one, same page) says so in its
detail and goes ahead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scaler.core.types import Reason
from scaler.core.victims import DrainState, InstanceActions, InstancePlan, amend, noted
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
    from scaler.adapters.azure import AzureCompute
    from scaler.adapters.pexip import PexipClient, TeamsProxy
    from scaler.config import Config, PoolConfig
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


class PexipTeams(PoolKind):
    name = "pexip-teams"
    needs_pexip = True

    def problems(self, at: str, pool: PoolConfig, config: Config) -> list[str]:
        out = []
        if not pool.teams_proxy:
            out.append(f"{at}.teams_proxy: required for kind 'pexip-teams', got ''")
        if pool.drain is not None:
            out.append(f"{at}.drain: only for kind 'vmss' (Pexip drains itself), got true")
        if pool.max_drain_minutes is not None:
            out.append(
                f"{at}.max_drain_minutes: only for kind 'vmss' (Pexip drains itself), got "
                f"{pool.max_drain_minutes:g}"
            )
        return out

    def plan(self, given: PlanInput) -> InstancePlan:
        """The minimum to write: desired less what Pexip's schedule adds now, plus the
        instances Pexip lists that serve nothing."""
        d = guard(given)
        status = given.status
        extra = status.scheduled_instances or 0  # unknown: assume it adds nothing
        if extra and d.desired < extra and d.desired < d.current:
            # Pexip's schedule keeps at least ``extra`` instances, whatever the minimum
            d = amend(
                d,
                min(d.current, extra),
                Reason.PEXIP_SCHEDULED,
                f"Pexip's scheduled scaling adds {extra} instances now",
            )
        if d.desired == d.current:
            return InstancePlan(d, InstanceActions(), DrainState())
        free = status.free_call_licences
        cpi = status.calls_per_instance or given.pool.calls_per_instance
        if free is not None and d.desired > d.current and (d.desired - d.current) * cpi > free:
            d = noted(
                d,
                (
                    f"only {free} Pexip call licences are free (port_total - port_count): "
                    "Pexip refuses gateway calls beyond them whatever the instances; not a cap",
                ),
            )
        minimum = max(0, d.desired - extra + status.unserving)
        return InstancePlan(d, InstanceActions(capacity=minimum), DrainState())

    def replay_mode(self, pool: PoolConfig) -> ScaleIn:
        return "drain"

    def actuator(self, ctx: KindContext) -> KindActuator | None:
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
        from scaler.errors import AdapterError

        try:
            proxy = self._pexip.teams_proxy(pool.teams_proxy)
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
        from scaler.adapters.pexip import scale_set_matches
        from scaler.errors import AdapterError, PermanentError
        from scaler.ports import PoolStatus

        proxy = self._pexip.teams_proxy(pool.teams_proxy)
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
        from scaler.adapters.pexip import active_scheduled_instances
        from scaler.errors import AdapterError

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
        from scaler.errors import AdapterError

        try:
            lic = self._pexip.licensing()
        except AdapterError as err:
            # licences never cap; an unknown count only loses a note
            self._pexip.warn_once("pexip.licensing_unknown", error=str(err))
            return None
        return lic.free_calls

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> ResizeHandle:
        from scaler.adapters.handles import Done

        if actions.capacity is None:
            return Done(changed=False)
        proxy = self._pexip.teams_proxy(pool.teams_proxy)
        if proxy.min_number_of_instances == actions.capacity:
            return Done(changed=False)
        self._pexip.set_min_instances(proxy.id, actions.capacity)
        return Done()
