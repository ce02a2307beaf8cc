"""``log-analytics``: a KQL query over a Log Analytics workspace that yields each pool's
concurrent calls per minute (``[pools.metric.log_analytics]``; ``scaler.adapters.azure_logs``
states the query's contract: columns ``TimeGenerated``, ``pool``, ``calls``).

Its table is read whether it is the pool's source or its fallback: fed by another path than the
Management Node, it may stand in for any other source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from scaler.config_model import LogAnalyticsConfig
from scaler.sources.base import MetricSource, unread_keys

if TYPE_CHECKING:
    from scaler.config_model import MetricCheck, MetricConfig


class LogAnalytics(MetricSource):
    name: ClassVar[str] = "log-analytics"
    section: ClassVar[str] = "log_analytics"
    Options = LogAnalyticsConfig

    def problems(self, check: MetricCheck) -> list[str]:
        at, m = check.at, check.metric
        why = "the query's 'calls' column is the load"
        out = unread_keys(check, ("namespace", "name", "aggregation", "filter", "unit"), why)
        out += self.meaning_problems(check)
        if m.published_elsewhere:
            out.append(f"{at}.published_elsewhere: only for an azure-monitor metric, got true")
        return out + self.options_problems(check)

    def options_problems(self, check: MetricCheck) -> list[str]:
        la, at = check.metric.log_analytics, f"{check.at}.{self.section}"
        out = []
        if not la.workspace_id:
            out.append(f"{at}.workspace_id: required for log-analytics, got ''")
        if not la.query.strip():
            out.append(
                f"{at}.query: required for log-analytics (KQL yielding TimeGenerated, pool, "
                f"calls per minute), got ''"
            )
        return out

    def describe(self, metric: MetricConfig) -> str:
        return self.name
