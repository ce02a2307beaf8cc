"""The metric sources' readers, wired to their adapters: part of the composition root.

A source (``scaler.sources``) is pure — config checks, the view a fallback reads, capabilities —
and imports no adapter; what reads it lives here, one module per built-in source, each with a
``build(ctx)`` factory of the daemon's reader (a ``MetricsSource``, or why there is none) and an
``EXPORTER`` for ``trace export``. ``reader_of`` and ``exporter_of`` are what the wiring and the
export ask: the built-in of the source's class (or of the built-in source it extends), else the
source's own ``MetricSource.reader(ctx)`` / ``exporter()`` — the hooks a third-party source
(``cvi_autoscaler.sources`` entry point) uses to bring its own.
"""

from __future__ import annotations

from collections.abc import Callable

from scaler.ports import MetricsSource
from scaler.readers import azure_monitor, log_analytics, pexip
from scaler.sources import Exporter, MetricSource, ReaderContext
from scaler.sources.azure_monitor import AzureMonitor
from scaler.sources.log_analytics import LogAnalytics
from scaler.sources.pexip import Pexip

Factory = Callable[[ReaderContext], MetricsSource | str]

BUILTINS: dict[type[MetricSource], tuple[Factory, Exporter]] = {
    AzureMonitor: (azure_monitor.build, azure_monitor.EXPORTER),
    Pexip: (pexip.build, pexip.EXPORTER),
    LogAnalytics: (log_analytics.build, log_analytics.EXPORTER),
}


def _builtin(source: MetricSource, hook: str) -> tuple[Factory, Exporter] | None:
    """The built-in reader of the source's class or of the built-in it extends, unless a class
    on the way defines its own ``hook``."""
    for cls in type(source).__mro__:
        if hook in vars(cls) and cls is not MetricSource:
            return None
        found = BUILTINS.get(cls)
        if found is not None:
            return found
    return None


def reader_of(source: MetricSource, ctx: ReaderContext) -> MetricsSource | str:
    """The daemon's reader of ``source``, or why there is none (its pools are then missing)."""
    found = _builtin(source, "reader")
    return found[0](ctx) if found is not None else source.reader(ctx)


def exporter_of(source: MetricSource) -> Exporter | None:
    """How ``trace export`` reads the history of ``source`` (``None``: it cannot)."""
    found = _builtin(source, "exporter")
    return found[1] if found is not None else source.exporter()


__all__ = ["BUILTINS", "Factory", "exporter_of", "reader_of"]
