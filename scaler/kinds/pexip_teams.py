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

from typing import TYPE_CHECKING

from scaler.core.types import Reason
from scaler.core.victims import DrainState, InstanceActions, InstancePlan, amend, noted
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


class PexipTeamsOptions(KindOptions):
    """The keys of ``[[pools]]`` only a ``pexip-teams`` pool takes."""

    teams_proxy: str = ""
    """``pexip-teams``: the Teams Connector's name or id in Pexip's configuration."""


def connector_of(pool: PoolConfig) -> str:
    """The pool's ``teams_proxy``: its Teams Connector's name or id in Pexip's configuration."""
    return options_of(pool, PexipTeamsOptions).teams_proxy


class PexipTeams(PoolKind):
    name = "pexip-teams"
    Options = PexipTeamsOptions
    needs_pexip = True

    def problems(self, at: str, pool: PoolConfig, config: Config) -> list[str]:
        if not self.teams_connector(pool):
            return [f"{at}.teams_proxy: required for kind 'pexip-teams', got ''"]
        return []

    def teams_connector(self, pool: PoolConfig) -> str:
        return connector_of(pool)

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
