"""The kinds' actuators, wired to their adapters: part of the composition root.

A kind (``scaler.kinds``) is pure — config checks, planner, replay model — and imports no
adapter; what observes and changes its pools lives here, one module per built-in kind, each with
a ``build(ctx)`` factory. ``actuator_of`` is what the daemon's wiring (``scaler.wiring``) asks:
the built-in factory of the kind's class (or of the built-in kind it extends), else the kind's
own ``PoolKind.actuator(ctx)`` — the hook a third-party kind (``cvi_autoscaler.kinds`` entry
point) uses to bring its own actuator.
"""

from __future__ import annotations

from collections.abc import Callable

from scaler.actuators import pexip_teams, vm_set, vmss
from scaler.kinds import KindActuator, KindContext, PoolKind
from scaler.kinds.pexip_teams import PexipTeams
from scaler.kinds.vm_set import VmSet
from scaler.kinds.vmss import Vmss

Factory = Callable[[KindContext], KindActuator | None]

BUILTINS: dict[type[PoolKind], Factory] = {
    Vmss: vmss.build,
    PexipTeams: pexip_teams.build,
    VmSet: vm_set.build,
}


def actuator_of(kind: PoolKind, ctx: KindContext) -> KindActuator | None:
    """The actuator for pools of ``kind``, or ``None`` when its clients are not configured. A
    subclass that defines its own ``actuator`` keeps it; one that does not inherits the
    built-in factory of the kind it extends."""
    for cls in type(kind).__mro__:
        if "actuator" in vars(cls) and cls is not PoolKind:
            return kind.actuator(ctx)
        factory = BUILTINS.get(cls)
        if factory is not None:
            return factory(ctx)
    return kind.actuator(ctx)


__all__ = ["BUILTINS", "Factory", "actuator_of"]
