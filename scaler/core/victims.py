"""Per-instance planning types shared by the pool kinds. Pure: no I/O, no clock, no logging.

A scale-in that drops a live Teams meeting is the worst thing the daemon can do, so which
instances go is decided by the pure planners of the pool kinds (``scaler.kinds``: ``vmss``'s
``plan_drain``, ``vm-set``'s ``plan_vm_set``), from what was observed, and nowhere else. They
share the records here: an ``Instance`` as observed, the ``InstanceActions`` for an actuator to
carry out, the ``InstancePlan`` (the decision as it will really happen, and its writes) and the
``DrainState`` a pool carries between ticks.

Units: times are seconds since the epoch, durations seconds, loads concurrent calls (HD-call
equivalents for Conferencing Nodes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scaler.core.metrics import ABSURD
from scaler.core.types import Decision, Reason, Step

ALLOCATED = frozenset({"running", "starting"})
"""Power states that hold vCPUs and (once booted) serve calls."""
DEALLOCATED = "deallocated"
NOT_SERVING = frozenset({"starting", "stopping", "stopped", "deallocating", "deallocated"})
"""Power states (the instance view's ``PowerState/…``,
https://learn.microsoft.com/azure/virtual-machines/states-billing) of instances a scale set
counts in ``sku.capacity`` that serve no call now: neither capacity nor idle."""
UNKNOWN = "unknown"
"""The state of an instance whose instance view names no power state: not capacity (for a
scale-out the safe assumption is that it serves nothing) and never idle."""


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

    def to_doc(self) -> dict[str, Any]:
        """The state as a JSON-able document (persisted between runs)."""
        return {"pending_since": self.pending_since, "protected": sorted(self.protected)}

    @staticmethod
    def from_doc(doc: Mapping[str, Any] | None) -> DrainState:
        """Read ``to_doc()``'s document back; anything unusable is the empty state."""
        if not doc:
            return DrainState()
        since = doc.get("pending_since")
        protected = doc.get("protected") or ()
        return DrainState(
            pending_since=float(since) if isinstance(since, int | float) else None,
            protected=frozenset(str(p) for p in protected if isinstance(p, str | int)),
        )


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
    forced: tuple[str, ...] = ()
    """Of ``remove``: instances removed although not known idle, because the configured maximum
    drain time passed (``DrainTimedOut``); the actuator does not re-check them."""

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
    waiting: str = ""
    """What the pool waits for (busy or young draining instances), for the log."""


def with_loads(
    instances: Sequence[Instance],
    loads: Mapping[str, float | None],
    *,
    unlisted_idle: bool = False,
) -> tuple[Instance, ...]:
    """Fill each instance's ``calls`` from per-name loads (matched case-insensitively).

    An instance whose load the actuator already knows keeps it; one with no matching name stays
    unknown, and so busy — unless the source lists only busy instances (``unlisted_idle``) and
    the instance is ``running`` (as the pool itself lists it), which then carries no call.
    """
    # a load that cannot be one (negative, NaN, absurd) is unknown, and so busy
    by_name = {
        k.lower(): (v if v is not None and 0.0 <= v <= ABSURD else None) for k, v in loads.items()
    }
    out = []
    for inst in instances:
        if inst.calls is None:
            for name in (inst.id, *inst.names):
                if name.lower() in by_name:
                    inst = dataclasses.replace(inst, calls=by_name[name.lower()])
                    break
            else:
                if unlisted_idle and inst.state == "running":
                    inst = dataclasses.replace(inst, calls=0.0)
        out.append(inst)
    return tuple(out)


def not_serving(instances: Sequence[Instance]) -> int:
    """Instances counted in the scale set's capacity that serve no call (``NOT_SERVING``) or
    whose power state is not known (``UNKNOWN``)."""
    return sum(1 for i in instances if i.state in NOT_SERVING or i.state == UNKNOWN)


def unproven_join(instances: Sequence[Instance], loads: Mapping[str, float | None]) -> str:
    """Why per-name loads cannot be trusted to tell which instance is idle ("" when they can).

    Pexip does not document that a ``teamsnode`` record's ``name`` equals a VM name or a
    computer name (docs.pexip.com/admin/teams_status.htm, the status API pages), so the join is
    taken only where this very reading proves it: **every record with a possible call** (calls
    above zero, or unknown) names exactly one instance that may be running (by id, VM name or
    computer name, case-insensitive — what ``with_loads`` matches by). A record with calls that
    names no instance (names differ on this deployment) or several (ambiguous) leaves the load
    of every instance in doubt; then nothing may be removed on the strength of it.
    """
    owners: dict[str, set[str]] = {}
    for inst in instances:
        if not (inst.allocated or inst.state == UNKNOWN):
            continue
        for name in {inst.id, *inst.names}:
            owners.setdefault(name.lower(), set()).add(inst.id)
    orphans: list[str] = []
    shared: list[str] = []
    for name, calls in loads.items():
        if calls is not None and calls == 0.0:
            continue  # no call to place
        found = owners.get(name.lower(), set())
        if not found:
            orphans.append(name)
        elif len(found) > 1:
            shared.append(name)
    problems = []
    if orphans:
        problems.append(
            f"{len(orphans)} record(s) with calls name no running instance "
            f"({', '.join(repr(n) for n in sorted(orphans)[:3])})"
        )
    if shared:
        problems.append(
            f"{len(shared)} record(s) name several instances "
            f"({', '.join(repr(n) for n in sorted(shared)[:3])})"
        )
    if not problems:
        return ""
    return (
        "the join of the load source's names to the scale set's instances is not proven on "
        "this deployment: " + "; ".join(problems)
    )


def amend(decision: Decision, value: int, reason: Reason, detail: str) -> Decision:
    step = Step("drain", value, reason)
    joined = f"{decision.detail}; {detail}" if decision.detail else detail
    return dataclasses.replace(
        decision, desired=value, reason=reason, steps=(*decision.steps, step), detail=joined
    )


def noted(decision: Decision, notes: Sequence[str]) -> Decision:
    """The decision with ``notes`` appended to its detail (value and reason unchanged)."""
    extra = "; ".join(n for n in notes if n)
    if not extra:
        return decision
    joined = f"{decision.detail}; {extra}" if decision.detail else extra
    return dataclasses.replace(decision, detail=joined)


def label(i: Instance) -> str:
    """An instance as operators know it: id and, when different, its last (computer) name."""
    return f"{i.id}/{i.names[-1]}" if i.names and i.names[-1] != i.id else i.id


def id_key(value: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order, others after them by text."""
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


def neg_id_key(value: str) -> tuple[int, int, str]:
    """Highest numeric id first (the newest instance of a scale set)."""
    return (0, -int(value), "") if value.isdigit() else (1, 0, value)
