"""``azure-monitor``: a metric of a resource from Azure Monitor (a platform metric such as the
scale set's ``Percentage CPU``, or the ``Pexip/CVI`` ``ActiveCalls`` a cvi-autoscaler publishes).

As the pool's source its keys are ``[pools.metric]``'s own (``namespace``, ``name``,
``aggregation``, ``filter``, ``meaning``, ``unit``, ``resource_id``, ``published_elsewhere``:
``AzureMetricConfig``); standing in as a fallback it reads its table ``fallback_metric``
(``FallbackMetricConfig``) with the pool's window, lag and reduction. Azure emits a platform
metric whatever Pexip does, so it may stand in for a source that stops with the Management
Node — but never by reading what is published from that Management Node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from scaler.config_model import (
    PLATFORM_METRICS,
    PUBLISHED_NAME,
    PUBLISHED_NAMESPACE,
    VMSS_NAMESPACE,
    AzureMetricConfig,
    FallbackMetricConfig,
)
from scaler.sources.base import MetricSource

if TYPE_CHECKING:
    from scaler.config_model import MetricCheck, MetricConfig, PoolConfig


class AzureMonitor(MetricSource):
    name: ClassVar[str] = "azure-monitor"
    section: ClassVar[str] = "fallback_metric"
    Options = FallbackMetricConfig
    reads_calls: ClassVar[bool] = False

    def problems(self, check: MetricCheck) -> list[str]:
        at, m = check.at, check.metric
        out = _unit_problems(at, m)
        rid = check.pool.metric_resource_id.lower()
        if m.is_published and not (rid in check.published or m.published_elsewhere):
            out.append(
                f"{at}.namespace: {m.namespace} / {m.name} exists only where cvi-autoscaler "
                f"publishes it, and no pool here publishes it on this resource ([pexip] "
                f"publish_metrics with a source = 'pexip' pool); read a platform metric (the "
                f"default: {VMSS_NAMESPACE} / Percentage CPU), use source = 'pexip', or set "
                f"{at}.published_elsewhere = true if another cvi-autoscaler publishes it, "
                f"got {m.namespace!r}"
            )
        if m.published_elsewhere and not m.is_published:
            out.append(
                f"{at}.published_elsewhere: only for the published metric "
                f"{PUBLISHED_NAMESPACE} / {PUBLISHED_NAME}, got true"
            )
        return out

    def fallback_problems(self, check: MetricCheck) -> list[str]:
        at, m, pool = check.at, check.metric, check.pool
        out = []
        if check.kind is not None and check.kind.needs_pexip:
            out.append(
                f"{at}.fallback: kind {pool.kind!r} is observed and sized through the Management "
                f"Node, so while it is down the pool holds whatever the metric says; a fallback "
                f"helps kind 'vmss' only, got {m.fallback!r}"
            )
        fb = m.fallback_metric
        fat = f"{at}.{self.section}"
        if fb.is_published:
            out.append(
                f"{fat}.namespace: the fallback must not read what is published from the "
                f"Management Node (it stops when the Management Node does); read a platform "
                f"metric such as {VMSS_NAMESPACE} / Percentage CPU, got {fb.namespace!r}"
            )
        if not (fb.resource_id or pool.resource_id):
            out.append(
                f"{fat}.resource_id: required when the pool has no resource_id (the platform "
                f"metric is read from a resource), got ''"
            )
        return out + _unit_problems(fat, fb)

    def reads_section(self, metric: MetricConfig) -> bool:
        """Its table is read only in another source's stead (as the source, it reads the keys
        of ``[pools.metric]`` itself)."""
        return metric.fallback == self.name

    def section_problems(self, check: MetricCheck) -> list[str]:
        m = check.metric
        if self.reads_section(m) or not m.is_set(self.section):
            return []
        return [
            f"{check.at}.{self.section}: read only with fallback = {self.name!r}, got "
            f"fallback = {m.fallback!r}"
        ]

    def view(self, pool: PoolConfig) -> PoolConfig:
        """The pool reading ``fallback_metric`` from Azure Monitor, with its own window, lag
        and reduction (a pool read from Azure Monitor already is itself)."""
        if pool.metric.source == self.name:
            return pool
        return pool.model_copy(update={"metric": pool.metric.fallback_view(pool.resource_id)})

    def describe(self, metric: MetricConfig) -> str:
        return f"{metric.namespace}/{metric.name}"

    def export_problem(self, pools: Sequence[PoolConfig]) -> str:
        """Any pool's history can be read from Azure Monitor: its own metric, or its
        ``fallback_metric`` (by default the scale set's ``Percentage CPU``)."""
        return ""


def _unit_problems(at: str, m: AzureMetricConfig) -> list[str]:
    known = PLATFORM_METRICS.get((m.namespace.lower(), m.name.lower()))
    if known is not None and m.meaning != known[0]:
        return [
            f"{at}.meaning: {m.name!r} is a percentage (unit Percent in Microsoft's "
            f"supported-metrics list), so its meaning is {known[0]!r}, got {m.meaning!r}"
        ]
    published_calls = m.is_published and m.name.lower() == PUBLISHED_NAME.lower()
    if published_calls and m.meaning == "percent_of_capacity":
        return [f"{at}.meaning: {m.name!r} counts calls, got {m.meaning!r}"]
    return []
