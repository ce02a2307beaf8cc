"""``pexip``: the Management Node's status API — Teams Connector ``call_count`` per instance, or
Conferencing Node media load in HD calls (with ``locations`` and ``base_fill`` for a pool of
nodes whose load is its system locations').

Its readings name each instance's calls, so a ``vmss`` pool read from it drains by default, and
``[pexip] publish_metrics`` republishes them to Azure Monitor (``Pexip/CVI`` ``ActiveCalls``) on
the pool's metric resource. It has no table of its own: it cannot stand in as a fallback (it is
what stops when the Management Node does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from scaler.sources.base import MetricSource, unread_keys

if TYPE_CHECKING:
    from scaler.config_model import MetricCheck, PoolConfig


class Pexip(MetricSource):
    name: ClassVar[str] = "pexip"
    needs_pexip: ClassVar[bool] = True
    per_instance: ClassVar[bool] = True
    reads_members: ClassVar[bool] = True

    def problems(self, check: MetricCheck) -> list[str]:
        at, m, pool = check.at, check.metric, check.pool
        out = []
        publishes = check.config.pexip.publish_metrics
        node_metric = check.kind is not None and check.kind.node_metric
        if publishes and check.kind is not None and not node_metric and not pool.metric_resource_id:
            out.append(f"{at}.resource_id: publish_metrics needs a resource to publish on, got ''")
        why = f"the fallback reads {at}.fallback_metric"
        out += unread_keys(check, ("namespace", "name", "aggregation", "filter"), why)
        out += self.meaning_problems(check)
        if m.published_elsewhere:
            out.append(f"{at}.published_elsewhere: only for an azure-monitor metric, got true")
        return out

    def export_problem(self, pools: Sequence[PoolConfig]) -> str:
        """Pexip's call history does not say which Teams Connector carried a call."""
        if len(pools) <= 1:
            return ""
        return (
            "--pool: Pexip's call history does not say which Teams Connector carried a call; "
            f"export it for one pool at a time, got {', '.join(p.name for p in pools)}"
        )
