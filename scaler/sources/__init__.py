"""Metric sources: one module per source, found through a registry as kinds and policies are.

================= =========================================================================
``azure-monitor`` a metric of a resource from Azure Monitor (``scaler.sources.azure_monitor``)
``pexip``         the Management Node's status API (``scaler.sources.pexip``)
``log-analytics`` a KQL query over a Log Analytics workspace
                  (``scaler.sources.log_analytics``)
================= =========================================================================

Third-party packages add sources through the ``cvi_autoscaler.sources`` entry-point group, each
entry point naming a ``MetricSource`` subclass whose ``name`` is the entry point's name. The
config's ``metric.source`` and ``metric.fallback``, the daemon's reads and ``trace export`` all
go through ``source_of``.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from scaler.plugins import with_entry_points
from scaler.sources.azure_monitor import AzureMonitor
from scaler.sources.base import (
    ExportContext,
    Exporter,
    History,
    MetricSource,
    ReaderContext,
    unread_keys,
)
from scaler.sources.log_analytics import LogAnalytics
from scaler.sources.pexip import Pexip

if TYPE_CHECKING:
    from scaler.config_model import PoolConfig

ENTRY_POINT_GROUP = "cvi_autoscaler.sources"

BUILTINS: dict[str, type[MetricSource]] = {
    cls.name: cls for cls in (AzureMonitor, Pexip, LogAnalytics)
}


class SourceRegistryError(ValueError):
    """A source's entry point is malformed, or two sources claim the same name or table."""


@cache
def discover() -> dict[str, MetricSource]:
    """Every metric source by name: built-ins plus entry points (one instance each), read once
    per process (``discover.cache_clear()`` reads them again)."""
    found: dict[str, type[MetricSource]] = with_entry_points(
        ENTRY_POINT_GROUP,
        BUILTINS,
        base=MetricSource,
        label="metric source",
        error=SourceRegistryError,
    )
    sections = [cls.section for cls in found.values() if cls.section]
    for section in {s for s in sections if sections.count(s) > 1}:
        raise SourceRegistryError(f"two metric sources read the table {section!r}")
    return {name: cls() for name, cls in found.items()}


def source_of(pool: PoolConfig) -> MetricSource:
    """The source a (validated) pool is read from."""
    return discover()[pool.metric.source]


def fallback_of(pool: PoolConfig) -> MetricSource | None:
    """The source a (validated) pool falls back to, if any."""
    name = pool.metric.fallback
    return None if name == "none" else discover()[name]


__all__ = [
    "BUILTINS",
    "ENTRY_POINT_GROUP",
    "ExportContext",
    "Exporter",
    "History",
    "MetricSource",
    "ReaderContext",
    "SourceRegistryError",
    "discover",
    "fallback_of",
    "source_of",
    "unread_keys",
]
