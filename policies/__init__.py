"""Scaling policies: small pure modules, plus the registry that finds them.

A policy is a class with a ``name``, a pydantic ``Config`` model and ``recommend(ctx)``
(see ``scaler.core.types.ScalingPolicy``). Built-ins are registered here explicitly; third-party
packages add theirs through the ``cvi_autoscaler.policies`` entry-point group, each entry point
naming the policy class. A config entry ``{type = "NAME", ...}`` picks the class by ``NAME`` and
validates the rest against its ``Config``.
"""

from __future__ import annotations

from functools import cache
from typing import Any, ClassVar, Protocol, cast

from pydantic import BaseModel

from policies.composite import Composite
from policies.predictive import Predictive
from policies.schedule import Schedule
from policies.step import StepRules
from policies.target_tracking import TargetTracking
from scaler.core.types import PolicyContext, Recommendation, ScalingPolicy
from scaler.plugins import with_entry_points

ENTRY_POINT_GROUP = "cvi_autoscaler.policies"

BUILTINS: dict[str, type[Any]] = {
    cls.name: cls for cls in (TargetTracking, StepRules, Schedule, Predictive, Composite)
}


class PolicyClass(Protocol):
    """What the registry needs of a policy class."""

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]

    def __call__(self, config: Any) -> ScalingPolicy: ...

    def recommend(self, ctx: PolicyContext) -> Recommendation | None: ...


class RegistryError(ValueError):
    """A policy name is unknown, or two policies claim the same name."""


def discover() -> dict[str, type[Any]]:
    """All policy classes by name: built-ins plus entry points (a copy: the caller may keep or
    change it).

    Two *different* classes under one name is an error (the operator could not tell which runs);
    the built-ins' own entry points (this distribution registers them too) are not duplicates.
    The installed entry points are read once per process (``_scan``): scanning them reads every
    installed distribution's metadata (~2-5 ms), and a config builds policies for every pool (a
    composite's parts too), so a 1,000-pool fleet rescanned them thousands of times at start-up
    and on each reload. A scan that fails is not kept: the next call tries again.
    """
    return dict(_scan())


@cache
def _scan() -> dict[str, type[Any]]:
    return with_entry_points(ENTRY_POINT_GROUP, BUILTINS, label="policy name", error=RegistryError)


def build(type_name: str, options: dict[str, Any], registry: dict[str, type[Any]]) -> ScalingPolicy:
    """Build one policy from its config table (``type`` removed). Raises ``RegistryError`` for an
    unknown name and pydantic's ``ValidationError`` for bad options."""
    cls = registry.get(type_name)
    if cls is None:
        raise RegistryError(f"unknown policy {type_name!r} (known: {', '.join(sorted(registry))})")
    config = cast(type[BaseModel], cls.Config).model_validate(options)
    return cast(ScalingPolicy, cls(config))


__all__ = ["BUILTINS", "ENTRY_POINT_GROUP", "RegistryError", "build", "discover"]
