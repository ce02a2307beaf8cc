"""The pure core: types, ``decide()`` and ``plan_tick()``. No I/O, no clock, no logging."""

from scaler.core.decide import decide, plan_tick, record_scale
from scaler.core.types import (
    Behavior,
    Decision,
    DirectionBehavior,
    MetricReading,
    MetricStatus,
    Observation,
    PolicyContext,
    PoolLimits,
    PoolPlan,
    PoolState,
    QuotaUsage,
    Reason,
    Recommendation,
    ScalingPolicy,
    Step,
)

__all__ = [
    "Behavior",
    "Decision",
    "DirectionBehavior",
    "MetricReading",
    "MetricStatus",
    "Observation",
    "PolicyContext",
    "PoolLimits",
    "PoolPlan",
    "PoolState",
    "QuotaUsage",
    "Reason",
    "Recommendation",
    "ScalingPolicy",
    "Step",
    "decide",
    "plan_tick",
    "record_scale",
]
