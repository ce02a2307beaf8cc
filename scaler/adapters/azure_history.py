"""Azure Monitor history of a pool's metric, minute by minute, for ``trace export``.

Reads the same metric the daemon reads live (``metrics:getBatch`` through ``MetricsClient``), at
a 1-minute grain, over a long span cut into chunks of at most ``CHUNK`` (one day: 1,440 points
per series). Azure Monitor keeps platform metrics for 93 days
(https://learn.microsoft.com/azure/azure-monitor/essentials/data-platform-metrics#retention-of-metrics)
and answers each request with data points of one resource batch, without paging ("the API does
not support paging; split the query", metrics:getBatch reference,
https://learn.microsoft.com/rest/api/monitor/metrics-batch/batch), so a long span is many
small queries; each still holds the ``[azure] call_deadline_seconds`` bound of the live reads.

What each minute becomes, by the pool's ``metric.meaning``:

* ``calls``: the value as the live reader sums it (series by ``VMName`` when the filter splits
  them; one null among the series makes the minute unknown).
* ``percent_of_capacity`` (e.g. ``Percentage CPU``) and ``calls_per_instance``: a **proxy**. The
  history has no instance count, so the metric is split by ``VMName`` and each VM's value is
  turned into calls on its own (``percent / 100 × calls_per_instance``, or the per-instance
  value) and summed over the VMs that reported that minute; a minute no VM reported is unknown.
  CPU also counts work that is not calls (an idle Teams Connector instance is not at 0 %), so a
  trace from a CPU metric overstates the calls; prefer Pexip's history or Log Analytics.

A value that is not a load (negative, NaN, absurd) or a series in a unit that does not match
the metric's meaning makes the minute unknown (empty in the trace), never 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core.credentials import TokenCredential
from azure.monitor.querymetrics import MetricsClient

from scaler.adapters.azure import CallObserver, _Calls, _client_kwargs, _metric_series, _units_for
from scaler.config_model import Config, PoolConfig
from scaler.core.metrics import is_valid_value
from scaler.errors import PermanentError

CHUNK = timedelta(days=1)
"""Longest span of one history query (1,440 one-minute points per series)."""
RETENTION = timedelta(days=93)
"""How far back Azure Monitor keeps platform metrics."""
MAX_SERIES = 1000
"""``top`` of a split query: a scale set holds at most 1,000 VMs (Azure's default is 10)."""

Minute = float


@dataclass(frozen=True, slots=True)
class MetricHistory:
    """A pool's calls per minute (``None``: unknown) and how many minutes were refused."""

    calls: dict[Minute, float | None]
    invalid_minutes: int
    proxy: bool
    """Converted from a percentage or per-instance value (see the module docstring)."""


def chunks(since: datetime, until: datetime) -> int:
    """How many queries one pool's history takes (for a progress bar)."""
    return max(0, math.ceil((until - since) / CHUNK))


class AzureMetricHistory:
    """Reads metric history for ``trace export`` (one client per regional endpoint)."""

    def __init__(
        self,
        config: Config,
        credential: TokenCredential,
        *,
        observer: CallObserver | None = None,
        **client_kwargs: Any,
    ) -> None:
        self._config = config
        self._credential = credential
        self._calls = _Calls(observer)
        self._client_kwargs = {**_client_kwargs(config.azure), **client_kwargs}
        self._clients: dict[str, MetricsClient] = {}

    def _client(self, location: str) -> MetricsClient:
        endpoint = self._config.azure.metrics_endpoint(location)
        client = self._clients.get(endpoint)
        if client is None:
            client = MetricsClient(
                endpoint,
                self._credential,
                audience=self._config.azure.metrics_audience,
                **self._client_kwargs,
            )
            self._clients[endpoint] = client
        return client

    def history(
        self,
        pool: PoolConfig,
        since: datetime,
        until: datetime,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> MetricHistory:
        """The pool's metric (``pool.metric``, an Azure Monitor metric) over ``[since, until)``
        as calls per minute. Raises ``AdapterError`` when a chunk cannot be read."""
        m = pool.metric
        proxy = m.meaning != "calls"
        filt = m.filter
        if proxy and "vmname" not in filt.lower():
            if filt:
                raise PermanentError(
                    f"pool {pool.name}: metric.filter {filt!r} does not split by VMName, which a "
                    f"{m.meaning} history needs (it has no instance count to convert with)",
                    operation="metrics.history",
                )
            filt = "VMName eq '*'"
        rid = pool.metric_resource_id
        units = {u.lower() for u in _units_for(m)}
        out: dict[Minute, float | None] = {}
        invalid = 0
        start = since
        while start < until:
            end = min(until, start + CHUNK)
            with self._calls.call("metrics.query_resources"):
                results = self._client(self._config.location_of(pool)).query_resources(
                    resource_ids=[rid],
                    metric_namespace=m.namespace,
                    metric_names=[m.name],
                    timespan=(start, end),
                    granularity=timedelta(minutes=1),
                    aggregations=[m.aggregation],
                    filter=filt or None,
                    max_results=MAX_SERIES,
                )
                found = _metric_series(results, [rid], m.aggregation.lower()).get(rid.lower())
            lo, hi = start.timestamp(), end.timestamp()
            if found is not None and (found.unit or "").lower() not in units:
                raise PermanentError(
                    f"pool {pool.name}: {m.namespace}/{m.name} is in unit {found.unit!r}, but "
                    f"metric.meaning = {m.meaning!r} needs {' or '.join(sorted(units))}",
                    operation="metrics.history",
                )
            minutes: dict[Minute, list[float | None]] = {}
            for _, points in found.series if found is not None else []:
                for t, v in points:
                    if not lo <= t < hi:
                        continue
                    if v is not None and not is_valid_value(v):
                        minutes.setdefault(t, []).append(math.nan)
                    else:
                        minutes.setdefault(t, []).append(None if v is None else float(v))  # type: ignore[arg-type]
            for t, values in minutes.items():
                if any(v is not None and math.isnan(v) for v in values):
                    invalid += 1
                    out[t] = None
                elif proxy:
                    known = [v for v in values if v is not None]
                    out[t] = _as_calls(sum(known), m.meaning, pool) if known else None
                else:
                    out[t] = None if any(v is None for v in values) else sum(values)  # type: ignore[arg-type]
            if progress is not None:
                progress(1)
            start = end
        return MetricHistory(out, invalid, proxy)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def _as_calls(total: float, meaning: str, pool: PoolConfig) -> float:
    """Σ over VMs of each VM's value, as calls."""
    if meaning == "percent_of_capacity":
        return total / 100.0 * pool.calls_per_instance
    return total  # calls_per_instance: each VM's own calls
