"""Call-safe scale-in and burst-node planning. Pure: no I/O, no clock, no logging.

A scale-in that drops a live Teams meeting is the worst thing the daemon can do, so which
instances go is decided here, from what was observed, and nowhere else:

* ``choose_victims`` picks only instances *known* to carry zero calls (an unknown load is busy).
* ``plan_drain`` turns a ``vmss`` pool's decision into instance deletions by id, protects busy
  instances from Azure's own scale-in while a removal is pending and releases them after; when
  too few instances are idle the pool waits (``WaitingForIdle``), for ever unless a maximum drain
  time is configured (then the least-loaded busy instances go: ``DrainTimedOut``).
* ``plan_vm_set`` does the same for a burst pool of stand-alone Conferencing Node VMs: start
  deallocated VMs (most recently healthy first), put nodes into maintenance to drain them, and
  deallocate a draining node only once its load is zero *and* its minimum lifetime has passed.

Units: times are seconds since the epoch, durations seconds, loads concurrent calls (HD-call
equivalents for Conferencing Nodes).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scaler.core.types import Decision, Reason, Step

ALLOCATED = frozenset({"running", "starting"})
"""Power states that hold vCPUs and (once booted) serve calls."""
DEALLOCATED = "deallocated"


@dataclass(frozen=True, slots=True)
class Instance:
    """One instance of a pool as observed this tick.

    ``id`` is what the actuator acts on (a scale set instance id, a VM name); ``names`` are the
    names under which load is reported for it (computer name, VM name, Pexip node name).
    """

    id: str
    names: tuple[str, ...] = ()
    state: str = "running"
    """``running``, ``starting``, ``deallocated``, ``deallocating``, ``deleting``…"""
    calls: float | None = None
    """Concurrent calls on it; ``None``: unknown, which counts as busy."""
    capacity_calls: float | None = None
    """Calls it can carry (``max_calls``, ``max_hd_calls``), when the source says."""
    protected: bool = False
    """Protected from scale-in (by anyone)."""
    maintenance: bool = False
    """Put into maintenance by someone else (an operator): never touched by the daemon."""
    draining: bool = False
    """Put into maintenance by the daemon to drain it before it is stopped."""
    started_at: float | None = None
    """When it was last started (for the minimum lifetime)."""
    last_healthy: float | None = None
    """When it last answered as healthy (burst nodes: the most recent start first)."""

    @property
    def allocated(self) -> bool:
        return self.state in ALLOCATED

    @property
    def idle(self) -> bool:
        return self.calls is not None and self.calls <= 0.0


@dataclass(frozen=True, slots=True)
class DrainState:
    """What a drain-aware pool remembers between ticks (returned updated by the planners)."""

    pending_since: float | None = None
    """When a scale-in first had to wait for busy instances (``None``: nothing waiting)."""
    protected: frozenset[str] = frozenset()
    """Instance ids the daemon itself protected from scale-in (so only those are released)."""


@dataclass(frozen=True, slots=True)
class InstanceActions:
    """Per-instance writes for an actuator to carry out, in this order."""

    capacity: int | None = None
    """New scale set capacity for a scale-out (``vmss``); ``None``: no capacity write."""
    protect: tuple[str, ...] = ()
    unprotect: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    """Scale set instances to delete by id."""
    undrain: tuple[str, ...] = ()
    """Nodes to take out of maintenance again (cheapest scale-out)."""
    start: tuple[str, ...] = ()
    drain: tuple[str, ...] = ()
    """Nodes to put into maintenance (no new calls land on them)."""
    deallocate: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.capacity is not None
            or self.protect
            or self.unprotect
            or self.remove
            or self.undrain
            or self.start
            or self.drain
            or self.deallocate
        )

    @property
    def changes_capacity(self) -> bool:
        """Whether the actions move the pool's size (protection alone does not)."""
        return bool(
            self.capacity is not None
            or self.remove
            or self.undrain
            or self.start
            or self.drain
            or self.deallocate
        )


@dataclass(frozen=True, slots=True)
class InstancePlan:
    """A decision refined per instance: the decision as it will really happen, and the writes."""

    decision: Decision
    actions: InstanceActions
    state: DrainState


def with_loads(
    instances: Sequence[Instance], loads: Mapping[str, float | None]
) -> tuple[Instance, ...]:
    """Fill each instance's ``calls`` from per-name loads (matched case-insensitively).

    An instance whose load the actuator already knows keeps it; one with no matching name stays
    unknown, and so busy.
    """
    by_name = {k.lower(): v for k, v in loads.items()}
    out = []
    for inst in instances:
        if inst.calls is None:
            for name in (inst.id, *inst.names):
                if name.lower() in by_name:
                    inst = dataclasses.replace(inst, calls=by_name[name.lower()])
                    break
        out.append(inst)
    return tuple(out)


def choose_victims(
    instances: Sequence[Instance], count: int, *, exclude: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """Up to ``count`` ids of allocated instances known to carry no calls.

    Never an instance with calls or with an unknown load, never one protected by someone else
    (``protected`` and not in ``exclude``) or in someone else's maintenance. Among the idle, the
    youngest go first (an instance still booting has never taken a call), then the highest id.
    """
    if count <= 0:
        return ()
    idle = [
        i
        for i in instances
        if i.allocated and i.idle and not i.maintenance and (not i.protected or i.id in exclude)
    ]
    idle.sort(key=lambda i: (-(i.started_at or 0.0), _neg_id_key(i.id)))
    return tuple(i.id for i in idle[:count])


def plan_drain(
    *,
    decision: Decision,
    instances: Sequence[Instance],
    state: DrainState,
    now: float,
    max_drain_seconds: float | None = None,
) -> InstancePlan:
    """Refine a ``vmss`` pool's decision into call-safe per-instance actions.

    * scale-out: a capacity write (new instances have no calls to lose); protection the daemon
      set earlier is released;
    * scale-in: delete idle instances by id; for the rest, hold and say ``WaitingForIdle``
      while busy instances stay protected from anybody's scale-in; after ``max_drain_seconds``
      of waiting (``None``: never), remove the least-loaded busy ones (``DrainTimedOut``);
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
            capacity=desired if desired > current else None, unprotect=tuple(sorted(ours))
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
        busy = [
            i
            for i in instances
            if i.allocated
            and i.id not in victims
            and not i.maintenance
            and (not i.protected or i.id in ours)
        ]
        busy.sort(key=lambda i: (math.inf if i.calls is None else i.calls, _id_key(i.id)))
        forced = [i.id for i in busy[:short]]
        victims += forced
        short -= len(forced)
        pending_since = pending_since if short else None

    removed = set(victims)
    busy_ids = [
        i.id
        for i in instances
        if i.allocated and i.id not in removed and not i.idle and not i.protected
    ]
    protect = tuple(sorted(busy_ids)) if short else ()
    still_ours = (ours - removed) | set(protect)
    unprotect = () if short else tuple(sorted(ours - removed))
    if not short:
        still_ours = frozenset()
    achieved = current - len(victims)
    out = decision
    if forced:
        dropped = sum(
            (i.calls or 0.0) for i in instances if i.id in set(forced) and i.calls is not None
        )
        waited = now - (state.pending_since or now)
        out = _amend(
            decision,
            achieved,
            Reason.DRAIN_TIMED_OUT,
            f"waited {waited:.0f} s for idle instances; removing busy {', '.join(forced)} "
            f"({dropped:g} calls)",
        )
    elif short:
        busy_desc = ", ".join(
            f"{_label(i)}={'?' if i.calls is None else f'{i.calls:g}'}"
            for i in instances
            if i.allocated and i.id not in removed and not i.idle
        )
        waited = now - (pending_since or now)
        out = _amend(
            decision,
            achieved,
            Reason.WAITING_FOR_IDLE,
            f"{short} of {need} instances to remove still carry calls ({busy_desc}); "
            f"waiting {waited:.0f} s so far",
        )
    actions = InstanceActions(
        protect=protect, unprotect=unprotect, remove=tuple(sorted(victims, key=_id_key))
    )
    return InstancePlan(out, actions, DrainState(pending_since, frozenset(still_ours)))


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
    nodes out of maintenance, then starts deallocated VMs, most recently healthy first. A
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
        spare = [i for i in instances if i.state == DEALLOCATED and not i.maintenance]
        spare.sort(key=lambda i: (-(i.last_healthy or 0.0), i.id))
        start = [i.id for i in spare[:want]]
        short = want - len(start)
        if short:
            out = _amend(
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


def _amend(decision: Decision, value: int, reason: Reason, detail: str) -> Decision:
    step = Step("drain", value, reason)
    joined = f"{decision.detail}; {detail}" if decision.detail else detail
    return dataclasses.replace(
        decision, desired=value, reason=reason, steps=(*decision.steps, step), detail=joined
    )


def _label(i: Instance) -> str:
    """An instance as operators know it: id and, when different, its last (computer) name."""
    return f"{i.id}/{i.names[-1]}" if i.names and i.names[-1] != i.id else i.id


def _id_key(value: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order, others after them by text."""
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


def _neg_id_key(value: str) -> tuple[int, int, str]:
    """Highest numeric id first (the newest instance of a scale set)."""
    return (0, -int(value), "") if value.isdigit() else (1, 0, value)
