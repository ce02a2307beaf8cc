"""Policy objects for validated pools: the config describes policies, this builds them.

The config is validated once (``scaler.config.parse_config``, which also checks every policy's
options by building it); the runtime — the tick and the backtest — builds the objects it runs
from a pool's ``policies`` tables here, so config objects stay plain data.
"""

from __future__ import annotations

from policies import build, discover
from scaler.config import PoolConfig
from scaler.core.types import ScalingPolicy


def build_policies(pool: PoolConfig) -> tuple[ScalingPolicy, ...]:
    """The policies of a pool whose config has been validated, in their configured order."""
    registry = discover()
    return tuple(
        build(entry["type"], {k: v for k, v in entry.items() if k != "type"}, registry)
        for entry in pool.policies
    )
