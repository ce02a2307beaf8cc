"""Pool kinds: one module per kind, found through a registry as policies are.

=============== ===========================================================================
``vmss``        a scale set resized through ``sku.capacity``; call-safe with ``drain``
                (``scaler.kinds.vmss``)
``pexip-teams`` a Teams Connector sized through Pexip's ``min_number_of_instances``
                (``scaler.kinds.pexip_teams``)
``vm-set``      pre-provisioned Conferencing Node VMs started and deallocated
                (``scaler.kinds.vm_set``)
=============== ===========================================================================

Third-party packages add kinds through the ``cvi_autoscaler.kinds`` entry-point group, each
entry point naming a ``PoolKind`` subclass whose ``name`` is the entry point's name. The config's
``kind``, the daemon, the demo and the backtest all go through ``kind_of(pool)``; a kind's own
keys of ``[[pools]]`` are its ``Options`` model, which the loader validates (so a kind's keys
never sit on ``PoolConfig``, and none may share a name with one of its keys).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from scaler.config_model import PoolConfig
from scaler.kinds.base import (
    KindActuator,
    KindContext,
    KindOptions,
    PlanInput,
    PoolKind,
    Preflight,
    ScaleIn,
    options_of,
)
from scaler.kinds.pexip_teams import PexipTeams
from scaler.kinds.vm_set import VmSet
from scaler.kinds.vmss import Vmss
from scaler.plugins import with_entry_points

if TYPE_CHECKING:
    from scaler.core.types import PoolLimits

ENTRY_POINT_GROUP = "cvi_autoscaler.kinds"

BUILTINS: dict[str, type[PoolKind]] = {cls.name: cls for cls in (Vmss, PexipTeams, VmSet)}


class KindRegistryError(ValueError):
    """A kind's entry point is malformed, two kinds claim the same name, or a kind's options
    take a key every pool shares."""


@cache
def discover() -> dict[str, PoolKind]:
    """Every pool kind by name: built-ins plus entry points (one instance each)."""
    found = with_entry_points(
        ENTRY_POINT_GROUP, BUILTINS, base=PoolKind, label="pool kind", error=KindRegistryError
    )
    shared = {field.alias or key for key, field in PoolConfig.model_fields.items()}
    for name, cls in found.items():
        fields = cls.Options.model_fields if cls.Options is not None else {}
        clash = sorted({field.alias or key for key, field in fields.items()} & shared)
        if clash:
            raise KindRegistryError(
                f"pool kind {name!r} ({cls.__module__}): its Options take keys every pool "
                f"shares ({', '.join(clash)}); a kind's own keys need names of their own"
            )
    return {name: cls() for name, cls in found.items()}


def kind_of(pool: PoolConfig) -> PoolKind:
    """The kind of a (validated) pool."""
    return discover()[pool.kind]


def limits_of(pool: PoolConfig, default_location: str) -> PoolLimits:
    """What the core is told of a pool: its configured limits as its kind adjusts them."""
    return kind_of(pool).limits(pool, pool.limits(default_location))


__all__ = [
    "BUILTINS",
    "ENTRY_POINT_GROUP",
    "KindActuator",
    "KindContext",
    "KindOptions",
    "KindRegistryError",
    "PlanInput",
    "PoolKind",
    "Preflight",
    "ScaleIn",
    "discover",
    "kind_of",
    "limits_of",
    "options_of",
]
