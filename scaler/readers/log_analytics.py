"""The ``log-analytics`` source's readers: the daemon's (``LogAnalyticsMetrics``, one query per
workspace, query and endpoint per tick) and ``trace export``'s (the same query over the span,
in one-week chunks)."""

from __future__ import annotations

from scaler.config_model import PoolConfig
from scaler.ports import MetricsSource
from scaler.readers.common import credential
from scaler.sources import ExportContext, History, ReaderContext


def build(ctx: ReaderContext) -> MetricsSource | str:
    from scaler.adapters.azure_logs import LogAnalyticsMetrics

    if ctx.azure is None:
        return "log-analytics source is not available (no Log Analytics client)"
    reader = LogAnalyticsMetrics(ctx.config, ctx.azure.credential, observer=ctx.observer)
    ctx.opened.append(reader)
    return reader


class _Exporter:
    def steps(self, ctx: ExportContext, pool: PoolConfig) -> int:
        from scaler.adapters.azure_logs import history_chunks

        return history_chunks(ctx.since, ctx.until)

    def history(self, ctx: ExportContext, pool: PoolConfig) -> History:
        from scaler.adapters.azure_logs import LogAnalyticsMetrics

        reader = LogAnalyticsMetrics(ctx.config, credential(ctx), **(ctx.client_kwargs or {}))
        ctx.opened.insert(0, reader)
        values = reader.history(pool, ctx.since, ctx.until, progress=ctx.update)
        return values, f"log-analytics workspace {pool.metric.log_analytics.workspace_id}"


EXPORTER = _Exporter()
