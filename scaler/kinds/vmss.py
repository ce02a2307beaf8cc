"""Kind ``vmss``: a scale set resized through ``sku.capacity`` — call-safe with ``drain``.

Without ``drain`` a scale-in is a capacity PATCH and Azure picks and deletes instances at once
(the scale set's own scale-in policy; no draining — DESIGN §1.1). With ``drain`` (on by default
with the ``pexip`` metric source, which splits calls per instance) the planner below removes only
instances known to carry no call, deleted by id (``deleteInstances``). While a removal waits
(``WaitingForIdle``) the busy instances get ``protectFromScaleIn``, which "protects instance
from Autoscale initiated scale-in" only — "user-initiated instance operations (including
instance delete) are not blocked" and operations on the scale set are not blocked either
(https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-instance-protection).
It keeps an Azure autoscale setting from taking them; it does not stop an operator or another
tool, and the daemon itself never relies on it: it deletes by id and only idle instances.

Known calls per instance come from the pool's reading: Pexip's ``call_count`` per Teams Connector
instance, or an Azure Monitor metric split by ``VMName``. Without the Azure Event Hub Pexip lists
an instance in ``status/v1/teamsnode/`` only while a Teams call is in progress
(docs.pexip.com/admin/teams_status.htm), so — for such a reading (``unlisted_is_idle``) — an
instance the scale set itself lists as running and Pexip does not list carries no call. That
depends on joining Pexip's records to the instances by name, which Pexip does not document:
the join is used only when the reading proves it (``unproven_join``: every record with a call
names exactly one running instance); otherwise the reading is missing for scale-in purposes —
a scale-in holds (``ScaleInUnverified``), a scale-out still writes capacity. The re-read right
before ``deleteInstances`` applies the same test.

Power states come from the instance view (``$expand=instanceView``): an instance that is
starting, stopping, stopped or deallocated is neither capacity nor idle (``NOT_SERVING``), and a
scale-out writes the desired size plus such instances. One whose power state is not reported
is treated alike: not capacity (a scale-out assumes it serves nothing) and never idle.

When ``max_drain_minutes`` has passed, the rest of the scale-in goes ahead (``DrainTimedOut``),
but an instance with known calls is never removed while one of unknown or zero load remains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import Field

from scaler.core.types import Decision, MetricStatus, Reason
from scaler.core.victims import (
    DrainState,
    Instance,
    InstanceActions,
    InstancePlan,
    amend,
    id_key,
    label,
    neg_id_key,
    noted,
    unproven_join,
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
from scaler.sources import source_of

if TYPE_CHECKING:
    from scaler.config_model import Config, PoolConfig


class VmssOptions(KindOptions):
    """The keys of ``[[pools]]`` only a ``vmss`` pool takes."""

    drain: bool | None = None
    """``vmss``: scale in only idle instances, deleted by id. Empty: on with the ``pexip``
    source (per-instance call counts); set it for an Azure Monitor metric split by ``VMName``."""
    max_drain_minutes: float | None = Field(default=None, gt=0.0)
    """``vmss`` with drain: how long a scale-in waits for busy instances before dropping their
    calls; empty: for ever (never drop calls)."""


def drain_enabled(pool: PoolConfig) -> bool:
    """Whether scale-in of this pool removes only idle instances, by id: ``drain`` when set,
    else on with a source of per-instance call counts (``MetricSource.per_instance``: the
    ``pexip`` source)."""
    drain = options_of(pool, VmssOptions).drain
    if drain is not None:
        return drain
    return source_of(pool).per_instance


class Vmss(PoolKind):
    name = "vmss"
    Options = VmssOptions

    def problems(self, at: str, pool: PoolConfig, config: Config) -> list[str]:
        out = []
        if not pool.resource_id:
            out.append(f"{at}.resource_id: required for kind 'vmss', got ''")
        max_drain = options_of(pool, VmssOptions).max_drain_minutes
        if max_drain is not None and not drain_enabled(pool):
            out.append(
                f"{at}.max_drain_minutes: only with drain (a plain vmss pool does not wait "
                f"for calls), got {max_drain:g}"
            )
        return out

    def plan(self, given: PlanInput) -> InstancePlan:
        if not drain_enabled(given.pool) or given.status.instances is None:
            return super().plan(given)
        d = guard(given)
        reading = given.reading
        loads = dict(reading.by_instance) if reading is not None else {}
        doubt = unproven_join(given.status.instances, loads)
        if doubt and d.desired < d.current and d.reason is not Reason.RESIZE_IN_FLIGHT:
            d = amend(d, d.current, Reason.SCALE_IN_UNVERIFIED, f"scale-in held: {doubt}")
        unlisted_idle = bool(
            not doubt
            and reading is not None
            and reading.status is MetricStatus.OK
            and reading.unlisted_is_idle
        )
        if unlisted_idle and d.desired < d.current:
            busy = sum(1 for v in loads.values() if v is None or v != 0.0)
            d = noted(
                d,
                (
                    "Event Hub off: instances Pexip does not list are taken as idle, through a "
                    f"name join this reading proves ({busy} busy records, each one instance)",
                ),
            )
        instances = with_loads(given.status.instances, loads, unlisted_idle=unlisted_idle)
        return plan_drain(
            decision=d,
            instances=instances,
            state=given.state,
            now=given.now,
            max_drain_seconds=self.max_drain_seconds(given.pool),
            unserving=given.status.unserving,
        )

    def replay_mode(self, pool: PoolConfig) -> ScaleIn:
        return "idle" if drain_enabled(pool) else "drop"

    def max_drain_seconds(self, pool: PoolConfig) -> float | None:
        minutes = options_of(pool, VmssOptions).max_drain_minutes
        return float(minutes) * 60.0 if minutes else None


def choose_victims(
    instances: Sequence[Instance], count: int, *, exclude: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """Up to ``count`` ids of allocated instances known to carry no calls.

    Never an instance with calls or with an unknown load, never one that is not ``running``
    (starting or stopping: neither capacity nor idle), never one protected by someone else
    (``protected`` and not in ``exclude``) or in someone else's maintenance. Among the idle, the
    youngest go first, then the highest id.
    """
    if count <= 0:
        return ()
    idle = [
        i
        for i in instances
        if i.state == "running"
        and i.idle
        and not i.maintenance
        and (not i.protected or i.id in exclude)
    ]
    idle.sort(key=lambda i: (-(i.started_at or 0.0), neg_id_key(i.id)))
    return tuple(i.id for i in idle[:count])


def plan_drain(
    *,
    decision: Decision,
    instances: Sequence[Instance],
    state: DrainState,
    now: float,
    max_drain_seconds: float | None = None,
    unserving: int = 0,
) -> InstancePlan:
    """Refine a drain-aware pool's decision into call-safe per-instance actions.

    * scale-out: a capacity write (new instances have no calls to lose) of the desired size plus
      the ``unserving`` instances the scale set counts that serve nothing (stopped, starting);
      protection the daemon set earlier is released;
    * scale-in: delete idle instances by id; for the rest, hold and say ``WaitingForIdle``
      while busy instances get ``protectFromScaleIn`` (Azure autoscale's scale-in skips them);
      after ``max_drain_seconds`` of waiting (``None``: never), remove more — instances of
      unknown load first (they may well be idle), those with known calls only when no other
      is left, least loaded first (``DrainTimedOut``);
    * hold: release whatever protection the daemon set.

    A decision that holds because a resize is in flight is passed through untouched.
    """
    current, desired = decision.current, decision.desired
    live = {i.id for i in instances}
    ours = frozenset(state.protected & live)
    if decision.reason is Reason.RESIZE_IN_FLIGHT:
        return InstancePlan(decision, InstanceActions(), DrainState(state.pending_since, ours))
    if desired >= current:
        actions = InstanceActions(
            capacity=desired + unserving if desired > current else None,
            unprotect=tuple(sorted(ours)),
        )
        return InstancePlan(decision, actions, DrainState(None, frozenset()))

    need = current - desired
    victims = list(choose_victims(instances, need, exclude=ours))
    short = need - len(victims)
    pending_since = (
        (state.pending_since if state.pending_since is not None else now) if short else None
    )
    forced: list[str] = []
    if (
        short
        and max_drain_seconds is not None
        and pending_since is not None
        and now - pending_since >= max_drain_seconds
    ):
        forced = _forced_victims(instances, victims, ours, short)
        victims += forced
        short -= len(forced)
        pending_since = pending_since if short else None

    removed = set(victims)
    protect, unprotect, still_ours = _protection(instances, removed, ours, waiting=bool(short))
    waited = now - (state.pending_since or now)
    out = _drain_reason(
        decision,
        instances,
        removed,
        forced,
        achieved=current - len(victims),
        short=short,
        waited=waited,
    )
    actions = InstanceActions(
        protect=protect,
        unprotect=unprotect,
        remove=tuple(sorted(victims, key=id_key)),
        forced=tuple(sorted(forced, key=id_key)),
    )
    return InstancePlan(out, actions, DrainState(pending_since, still_ours))


def _forced_victims(
    instances: Sequence[Instance], victims: Sequence[str], ours: frozenset[str], short: int
) -> list[str]:
    """After the drain timed out: ``short`` more instances to remove beyond the idle
    ``victims`` — unknown load before known calls (an instance with calls is never removed
    while one of unknown or zero load remains), least loaded first, then by id."""
    rest = [
        i
        for i in instances
        if i.allocated
        and i.id not in victims
        and not i.maintenance
        and (not i.protected or i.id in ours)
    ]
    rest.sort(key=lambda i: ((0, 0.0) if i.calls is None else (1, i.calls), id_key(i.id)))
    return [i.id for i in rest[:short]]


def _protection(
    instances: Sequence[Instance], removed: set[str], ours: frozenset[str], *, waiting: bool
) -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]:
    """``(protect, unprotect, still ours)``: while a removal waits, the busy instances that
    stay get ``protectFromScaleIn`` and the daemon remembers them as its own; once nothing
    waits, every protection it set on an instance that stays is released."""
    if not waiting:
        return (), tuple(sorted(ours - removed)), frozenset()
    busy_ids = [
        i.id
        for i in instances
        if i.allocated and i.id not in removed and not i.idle and not i.protected
    ]
    protect = tuple(sorted(busy_ids))
    return protect, (), frozenset((ours - removed) | set(protect))


def _drain_reason(
    decision: Decision,
    instances: Sequence[Instance],
    removed: set[str],
    forced: Sequence[str],
    *,
    achieved: int,
    short: int,
    waited: float,
) -> Decision:
    """The scale-in's decision as far as it goes now (``achieved`` instances), and
    why it stops there: ``DrainTimedOut`` naming what is forced out and its calls, or
    ``WaitingForIdle`` naming the busy instances; unchanged when every removal is idle."""
    need = decision.current - decision.desired
    if forced:
        known = [i for i in instances if i.id in set(forced)]
        dropped = sum(i.calls or 0.0 for i in known if i.calls is not None)
        unknown = sum(1 for i in known if i.calls is None)
        return amend(
            decision,
            achieved,
            Reason.DRAIN_TIMED_OUT,
            f"waited {waited:.0f} s for idle instances; removing {', '.join(forced)} "
            f"({dropped:g} calls" + (f"; {unknown} of unknown load)" if unknown else ")"),
        )
    if short:
        busy_desc = ", ".join(
            f"{label(i)}={'?' if i.calls is None else f'{i.calls:g}'}"
            for i in instances
            if i.allocated and i.id not in removed and not i.idle
        )
        return amend(
            decision,
            achieved,
            Reason.WAITING_FOR_IDLE,
            f"{short} of {need} instances to remove still carry calls ({busy_desc}); "
            f"waiting {waited:.0f} s so far",
        )
    return decision
