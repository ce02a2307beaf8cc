"""Target tracking: keep calls per instance at a target share of ``calls_per_instance``.

Kubernetes HPA's rule, expressed in calls: ``desired = ceil(current × utilisation / target)``,
where utilisation = calls ÷ (current × calls_per_instance). With ``current`` cancelling out this is
``ceil(calls ÷ (calls_per_instance × target))``, which also works from zero instances. The
tolerance band, stabilisation windows and rate limits are applied by the core to every policy
(pool ``behavior``), using the ``utilization_ratio`` reported here.
"""

from __future__ import annotations

import math
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from scaler.core.types import PolicyContext, Recommendation


class TargetTrackingConfig(BaseModel):
    """``target_utilization``: the share of ``calls_per_instance`` to aim for (0 < t ≤ 1).

    0.8 with 15 calls per instance aims at 12 calls per instance, leaving room for the calls that
    arrive while a new instance boots.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_utilization: float = Field(default=0.8, gt=0.0, le=1.0)
    """Share of ``calls_per_instance`` to aim for (0–1)."""


class TargetTracking:
    """Reactive base policy; has no opinion when the metric is not usable."""

    name: ClassVar[str] = "target-tracking"
    Config: ClassVar[type[TargetTrackingConfig]] = TargetTrackingConfig

    lookback_minutes: int = 0
    """Minutes of the pool's load history it reads (none: the current reading only)."""

    def __init__(self, config: TargetTrackingConfig | None = None) -> None:
        self.config = config or TargetTrackingConfig()

    def recommend(self, ctx: PolicyContext) -> Recommendation | None:
        if ctx.calls is None:
            return None
        per_instance_target = ctx.pool.calls_per_instance * self.config.target_utilization
        # Round before ceil so 24.000000001 instances of float noise does not become 25.
        desired = math.ceil(round(ctx.calls / per_instance_target, 9))
        ratio = None
        if ctx.current > 0:
            ratio = (ctx.calls / (ctx.current * ctx.pool.calls_per_instance)) / (
                self.config.target_utilization
            )
        return Recommendation(desired=desired, utilization_ratio=ratio)
