"""Composite: several policies as one, with the decision naming the one that won.

``desired`` is the highest of the parts' recommendations, so the pool scales out as soon as any
part asks for it and scales in only when every part agrees (the anchors' rule, the same the core
applies between a pool's top-level policies). The winning part's name goes into
``Recommendation.source``; the core then reports the decision's policy as
``composite:predictive`` (nested composites give ``composite:composite:schedule``); on a tie
the part listed first wins, so list the reactive base before parts that only sometimes add to it
(a predictive part that merely echoes the reactive answer then does not claim the win). The lowest
``ceiling`` of any part (a schedule's ``max``) is passed on. A part with no opinion is skipped;
with none at all, the composite has none.

Parts are ordinary ``{type = "...", ...}`` tables, built with the same registry as top-level
policies (so third-party policies work here too), and their config errors name their full key
path: ``pools[0].policies[0].policies[1].target_utilization: …``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from scaler.core.decide import combine
from scaler.core.types import PolicyContext, Recommendation, ScalingPolicy


class CompositeConfig(BaseModel):
    """``[[pools.policies]] type = "composite"`` with ``[[pools.policies.policies]]`` parts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policies: tuple[dict[str, Any], ...] = Field(min_length=1)
    """The parts, one ``[[pools.policies.policies]]`` table each (ordinary policy tables,
    third-party ones included)."""

    _built: tuple[ScalingPolicy, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _build_parts(self) -> CompositeConfig:
        # Imported here: the registry imports this module to list it as a built-in.
        from policies import RegistryError, build, discover

        errors: list[InitErrorDetails] = []
        built: list[ScalingPolicy] = []
        registry: dict[str, type[Any]] | None = None
        for i, entry in enumerate(self.policies):
            type_name = entry.get("type")
            if not isinstance(type_name, str):
                errors.append(_error((i, "type"), "needs a 'type' naming the policy", type_name))
                continue
            if registry is None:
                try:
                    registry = discover()
                except RegistryError as exc:
                    errors.append(_error((i, "type"), str(exc), type_name))
                    break
            options = {k: v for k, v in entry.items() if k != "type"}
            try:
                built.append(build(type_name, options, registry))
            except RegistryError as exc:
                errors.append(_error((i, "type"), str(exc), type_name))
            except ValidationError as exc:
                for err in exc.errors():
                    errors.append(
                        InitErrorDetails(
                            type=PydanticCustomError(
                                "policy_option", "{detail}", {"detail": _msg(err)}
                            ),
                            loc=("policies", i, *err["loc"]),
                            input=err.get("input"),
                        )
                    )
        names = [p.name for p in built]
        for name in sorted({n for n in names if names.count(n) > 1}):
            errors.append(_error((), f"policy {name!r} is listed twice", name, root=True))
        if errors:
            raise ValidationError.from_exception_data("CompositeConfig", errors)
        self._built = tuple(built)
        return self

    @property
    def parts(self) -> tuple[ScalingPolicy, ...]:
        return self._built


def _error(
    loc: tuple[int | str, ...], message: str, value: Any, *, root: bool = False
) -> InitErrorDetails:
    where: tuple[int | str, ...] = ("policies",) if root else ("policies", *loc)
    return InitErrorDetails(
        type=PydanticCustomError("policy_config", "{detail}", {"detail": message}),
        loc=where,
        input=value,
    )


def _msg(err: Any) -> str:
    if err.get("type") == "extra_forbidden":
        return "unknown key"
    if err.get("type") == "missing":
        return "required key is missing"
    return str(err.get("msg", ""))


class Composite:
    """Max of the parts' recommendations; ``source`` names the winning part."""

    name: ClassVar[str] = "composite"
    Config: ClassVar[type[CompositeConfig]] = CompositeConfig

    def __init__(self, config: CompositeConfig) -> None:
        self.config = config
        self.parts = config.parts
        self.lookback_minutes = max((lookback_of(p) for p in self.parts), default=0)
        """Minutes of the pool's load history its parts read, at most."""

    def recommend(self, ctx: PolicyContext) -> Recommendation | None:
        return combine(self.parts, ctx)


FULL_LOOKBACK_MINUTES = 5 * 7 * 24 * 60
"""What a policy that does not say how far back it reads is given: five weeks."""


def lookback_of(policy: ScalingPolicy) -> int:
    """Minutes of load history a policy reads: its ``lookback_minutes`` when it declares one
    (an optional attribute of the policy protocol), else the daemon's full five weeks."""
    value = getattr(policy, "lookback_minutes", None)
    return value if isinstance(value, int) and value >= 0 else FULL_LOOKBACK_MINUTES
