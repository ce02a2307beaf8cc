"""An example third-party policy: keep a fixed number of spare instances above the load.

This module is the template for writing your own policy (docs/policies.md, "Writing a policy").
It lives in its own package in real life and is registered through an entry point in that
package's ``pyproject.toml``::

    [project.entry-points."cvi_autoscaler.policies"]
    example-headroom = "my_policies.headroom:Headroom"

The entry-point name must equal the class's ``name``. This distribution registers the example the
same way, so ``type = "example-headroom"`` works out of the box.
"""

from __future__ import annotations

import math
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from scaler.core.types import PolicyContext, Recommendation


class HeadroomConfig(BaseModel):
    """The options of the policy's ``[[pools.policies]]`` table (everything but ``type``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # typos are config errors

    spare_instances: int = Field(default=1, ge=0, le=100)
    """Instances to keep on top of those the current calls fill completely."""


class Headroom:
    """``desired = ceil(calls ÷ calls_per_instance) + spare_instances``.

    Pure: it reads only ``ctx`` (no clock, no I/O, no randomness) and returns ``None`` (no
    opinion) when the metric is unusable, leaving the core to hold the pool.
    """

    name: ClassVar[str] = "example-headroom"
    Config: ClassVar[type[HeadroomConfig]] = HeadroomConfig

    lookback_minutes: int = 0
    """It reads the current calls only, so the pool keeps no more history for it."""

    def __init__(self, config: HeadroomConfig | None = None) -> None:
        self.config = config or HeadroomConfig()

    def recommend(self, ctx: PolicyContext) -> Recommendation | None:
        if ctx.calls is None:
            return None
        full = math.ceil(round(ctx.calls / ctx.pool.calls_per_instance, 9))
        return Recommendation(desired=full + self.config.spare_instances)
