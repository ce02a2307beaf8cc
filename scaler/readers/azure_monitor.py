"""The ``azure-monitor`` source's readers: the daemon's (the shared ``AzureMonitorMetrics`` of
the Azure adapters, batched per region) and ``trace export``'s (``AzureMetricHistory``: 1-minute
grain in one-day queries; a percentage such as ``Percentage CPU`` is a *proxy* of calls)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scaler.config_model import PoolConfig
from scaler.ports import MetricsSource
from scaler.readers.common import credential
from scaler.sources import ExportContext, History, ReaderContext
from scaler.sources.azure_monitor import AzureMonitor


def build(ctx: ReaderContext) -> MetricsSource | str:
    if ctx.azure is None:
        return "azure-monitor source needs the Azure adapters"
    reader: MetricsSource = ctx.azure.metrics
    return reader


def retained_since(since: datetime) -> datetime:
    """The start of what Azure Monitor still keeps of ``[since, …)``: no query asks for a
    minute it has already discarded (``--days 400`` sent 400 one-day queries, 307 of them
    for nothing)."""
    from scaler.adapters.azure_history import RETENTION

    oldest = (datetime.now(UTC) - RETENTION + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return max(since, oldest)


class _Exporter:
    def steps(self, ctx: ExportContext, pool: PoolConfig) -> int:
        from scaler.adapters.azure_history import chunks

        kept = retained_since(ctx.since)
        return chunks(kept, ctx.until) if kept < ctx.until else 0

    def history(self, ctx: ExportContext, pool: PoolConfig) -> History:
        """The history of the pool's Azure Monitor metric (for a pool read from elsewhere: its
        ``fallback_metric``)."""
        from scaler.adapters.azure_history import RETENTION, AzureMetricHistory

        view = AzureMonitor().view(pool)
        m = view.metric
        reader = AzureMetricHistory(ctx.config, credential(ctx), **(ctx.client_kwargs or {}))
        ctx.opened.insert(0, reader)
        kept = retained_since(ctx.since)
        if kept >= ctx.until:
            return {}, f"{m.namespace}/{m.name}; Azure Monitor keeps metrics 93 days: all empty"
        found = reader.history(view, kept, ctx.until, progress=ctx.update)
        notes = [f"{m.namespace}/{m.name}"]
        if found.proxy:
            notes.append(
                f"a proxy: {m.meaning} converted per VM with calls_per_instance "
                f"{pool.calls_per_instance:g}; CPU counts more than calls, so this overstates them"
            )
        if found.invalid_minutes:
            notes.append(f"{found.invalid_minutes} minute(s) with invalid values left empty")
        if ctx.since < datetime.now(UTC) - RETENTION:
            notes.append("Azure Monitor keeps metrics 93 days: older minutes are empty")
        return found.calls, "; ".join(notes)


EXPORTER = _Exporter()
