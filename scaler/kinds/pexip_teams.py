"""Kind ``pexip-teams``: a Teams Connector whose size Pexip Infinity owns.

With the Teams Connector's Azure Event Hub enabled, Pexip sizes the scale set itself and drains
instances before it removes them ("Waiting for termination"); the daemon's control surface is
the connector's ``min_number_of_instances`` (docs.pexip.com/admin/teams_scaling.htm: "Specify a
minimum number of instances (capacity) that is always available"). Without the Event Hub Pexip
ignores that minimum, so the kind refuses a connector whose ``notifications_enabled`` is off
(use kind ``vmss`` with ``drain`` there).

What the pool has (``capacity``) is what serves calls: instances Pexip is draining ("Waiting
for termination", "Terminating") are not counted. Pexip's own scheduled-scaling policies add
``instances_to_add`` on top of the minimum while they are active (teams_scaling.htm, "How
scheduled scaling works"), so the minimum the daemon writes is its desired size less what is
scheduled now; and capacity beyond what the Teams licences can carry (``status/v1/licensing``)
is never asked for (``LicenseLimited``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scaler.core.types import Reason
from scaler.core.victims import DrainState, InstanceActions, InstancePlan, amend
from scaler.kinds.base import KindActuator, KindContext, PlanInput, PoolKind, Preflight, ScaleIn

if TYPE_CHECKING:
    from scaler.adapters.azure import AzureCompute
    from scaler.adapters.pexip import PexipClient, TeamsProxy
    from scaler.config import Config, PoolConfig
    from scaler.ports import Clock, PoolStatus, ResizeHandle

DRAINING_STATUSES = frozenset({"waiting for termination", "terminating"})
"""``instance_status`` values of instances on their way out
(docs.pexip.com/admin/teams_status.htm)."""


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
        """The minimum to write: desired less what Pexip's schedule adds, licence-capped."""
        d = given.decision
        status = given.status
        cpi = status.calls_per_instance or given.pool.calls_per_instance
        if status.licensed_calls is not None and d.desired > d.current:
            allowed = max(d.current, math.ceil(status.licensed_calls / cpi - 1e-9))
            if d.desired > allowed:
                d = amend(
                    d,
                    allowed,
                    Reason.LICENSE_LIMITED,
                    f"Teams licences allow {status.licensed_calls:g} calls "
                    f"({allowed} instances of {cpi:g} calls)",
                )
        extra = status.scheduled_instances
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
        minimum = max(0, d.desired - extra)
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
        from scaler.adapters.pexip import scale_set_matches
        from scaler.errors import PermanentError
        from scaler.ports import PoolStatus

        proxy = self._pexip.teams_proxy(pool.teams_proxy)
        if proxy.notifications_enabled is False:
            raise PermanentError(
                f"pool {pool.name}: the Teams Connector {proxy.name!r} has no Event Hub "
                "(notifications_enabled off): Pexip would ignore min_number_of_instances",
                operation="pexip.teams_proxy",
            )
        nodes = [n for n in self._pexip.teams_nodes() if scale_set_matches(n, pool)]
        draining = sum(1 for n in nodes if n.instance_status.lower() in DRAINING_STATUSES)
        if pool.resource_id:
            status = self._compute.observe(pool)
            capacity = max(0, status.capacity - draining)
        else:
            status = PoolStatus(capacity=len(nodes))
            capacity = len(nodes) - draining
        extra = self._scheduled(proxy)
        licensed = self._licensed()
        return dataclasses.replace(
            status,
            capacity=capacity,
            draining=draining,
            scheduled_instances=extra,
            licensed_calls=licensed,
        )

    def _scheduled(self, proxy: TeamsProxy) -> int:
        from scaler.adapters.pexip import active_scheduled_instances

        return active_scheduled_instances(self._pexip, proxy, self._clock.now())

    def _licensed(self) -> float | None:
        from scaler.errors import AdapterError

        try:
            lic = self._pexip.licensing()
        except AdapterError as err:
            # unknown licences cap nothing: the pool is sized by its load alone
            self._pexip.warn_once("pexip.licensing_unknown", error=str(err))
            return None
        return None if lic.teams_total is None else float(lic.teams_total)

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> ResizeHandle:
        from scaler.adapters.handles import Done

        if actions.capacity is None:
            return Done(changed=False)
        proxy = self._pexip.teams_proxy(pool.teams_proxy)
        if proxy.min_number_of_instances == actions.capacity:
            return Done(changed=False)
        self._pexip.set_min_instances(proxy.id, actions.capacity)
        return Done()
