"""Log Analytics as a call-load source: a configured KQL query, run with ``LogsQueryClient``.

Many estates forward Pexip's call events to a Log Analytics workspace. A pool with
``[pools.metric] source = "log-analytics"`` (or ``fallback = "log-analytics"``) reads its calls
from the query in ``[pools.metric.log_analytics]``.

**The query's contract** (what the operator's KQL must yield): one row per pool and minute with

* ``TimeGenerated`` — ``datetime``, the start of the minute (UTC);
* ``pool`` — ``string``, the name of a pool of the configuration;
* ``calls`` — a number, the concurrent calls on that pool during that minute; ``null`` when
  unknown.

Column names are matched without regard to case; other columns are ignored. For example::

    PexipCallEvents_CL
    | where TimeGenerated > ago(2h)
    | summarize calls = dcount(CallId) by pool = Pool_s, TimeGenerated = bin(TimeGenerated, 1m)

The service applies the request's ``timespan`` on top of the query (Log Analytics query API:
https://learn.microsoft.com/rest/api/loganalytics/dataaccess/query/execute), so the same query
serves the live tick (a few minutes) and ``trace export`` (days, in chunks).

The same fail-closed rules as the other sources apply: a minute without a row or with a null
``calls`` is unknown (never 0); a row with an invalid value (negative, NaN, absurd, not a number,
an unreadable time) or two rows for one pool and minute make the reading ``MISSING``; a
partial answer (the service hit a limit) is ``MISSING``; the newest ``lag_minutes`` are ignored
and a window without a known minute is ``STALE``. Rows naming no configured pool are ignored.

Answers are shaped as in Microsoft's example (``{"tables": [{"name", "columns": [{"name",
"type"}], "rows"}]}``, oms-post-example.json in azure-rest-api-specs, operationalinsights
data-plane v1): row cells may be strings even in numeric columns, and may be ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.credentials import TokenCredential
from azure.monitor.query import LogsQueryClient, LogsQueryStatus

from scaler.adapters.azure import CallObserver, _Calls, _client_kwargs
from scaler.config_model import Config, LogAnalyticsConfig, PoolConfig
from scaler.core.metrics import is_valid_value, merge_series, reduce_window, screen_series
from scaler.core.types import MetricReading
from scaler.errors import AdapterError, PermanentError, TransientError

HISTORY_CHUNK = timedelta(days=7)
"""Longest span one history query asks for: a week is 10,080 rows per pool, far inside the
service's limits on a query's result (500,000 rows, ~64 MB, 10 minutes:
https://learn.microsoft.com/azure/azure-monitor/service-limits#log-queries-and-language)."""

Minute = float
"""The start of a minute, seconds since the epoch."""


@dataclass(frozen=True, slots=True)
class PoolRows:
    """One pool's rows of an answer: minute → calls (``None``: unknown), and the first
    problem that makes the answer unusable for it (``""`` when none)."""

    values: dict[Minute, object]
    problem: str = ""


def _group_key(la: LogAnalyticsConfig) -> tuple[str, str, str, str, int]:
    return (la.logs_url, la.audience, la.workspace_id, la.query, la.server_timeout_seconds)


class LogAnalyticsMetrics:
    """``MetricsSource`` over ``LogsQueryClient.query_workspace``.

    Pools sharing a workspace, query and endpoint are read with one query per tick.
    """

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
        self._clients: dict[tuple[str, str], LogsQueryClient] = {}

    def _client(self, la: LogAnalyticsConfig) -> LogsQueryClient:
        key = (la.logs_url, la.audience or la.logs_url)
        client = self._clients.get(key)
        if client is None:
            client = LogsQueryClient(
                self._credential, endpoint=key[0], audience=key[1], **self._client_kwargs
            )
            self._clients[key] = client
        return client

    def read(self, pools: Sequence[PoolConfig], now: float) -> Mapping[str, MetricReading]:
        groups: dict[tuple[str, str, str, str, int], list[PoolConfig]] = {}
        for pool in pools:
            groups.setdefault(_group_key(pool.metric.log_analytics), []).append(pool)
        out: dict[str, MetricReading] = {}
        for members in groups.values():
            longest = max(
                (p.metric.window_minutes + p.metric.lag_minutes + 1 + p.metric.history_minutes)
                for p in members
            )
            end = datetime.fromtimestamp(now, UTC).replace(second=0, microsecond=0)
            end += timedelta(minutes=1)
            start = end - timedelta(minutes=longest)
            try:
                rows = self.query(members[0].metric.log_analytics, members, start, end)
            except AdapterError as err:
                out.update({p.name: MetricReading.missing(str(err)) for p in members})
                continue
            except Exception as exc:  # the port's contract: MISSING, never an exception
                detail = f"logs.query_workspace: unexpected {type(exc).__name__}: {exc}"
                out.update({p.name: MetricReading.missing(detail) for p in members})
                continue
            for pool in members:
                out[pool.name] = _reading(pool, rows.get(pool.name), now)
        return out

    def query(
        self,
        la: LogAnalyticsConfig,
        pools: Sequence[PoolConfig],
        start: datetime,
        end: datetime,
    ) -> dict[str, PoolRows]:
        """The query's rows over ``[start, end)`` by pool name (only ``pools``); raises
        ``AdapterError`` when the answer as a whole is unusable."""
        operation = "logs.query_workspace"
        with self._calls.call(operation):
            result = self._client(la).query_workspace(
                la.workspace_id,
                la.query,
                timespan=(start, end),
                server_timeout=la.server_timeout_seconds,
            )
            if result.status != LogsQueryStatus.SUCCESS:
                error = getattr(result, "partial_error", None)
                raise TransientError(
                    f"{operation}: partial answer ({getattr(error, 'message', error)}); "
                    "the missing rows cannot be told from minutes without calls",
                    operation=operation,
                    code=str(getattr(error, "code", "") or "PartialError"),
                )
            tables = list(result.tables)
            if not tables:
                raise PermanentError(f"{operation}: the answer has no table", operation=operation)
            return split_rows(tables[0].columns, [list(r) for r in tables[0].rows], pools)

    def history(
        self,
        pool: PoolConfig,
        since: datetime,
        until: datetime,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> dict[Minute, float | None]:
        """The pool's calls per minute over ``[since, until)`` (``None``: unknown), queried in
        chunks of ``HISTORY_CHUNK``. Raises ``AdapterError`` when a chunk cannot be read or holds
        an invalid row (a trace must not silently carry a wrong value)."""
        la = pool.metric.log_analytics
        out: dict[Minute, float | None] = {}
        start = since
        while start < until:
            end = min(until, start + HISTORY_CHUNK)
            rows = self.query(la, [pool], start, end).get(pool.name, PoolRows({}))
            if rows.problem:
                raise PermanentError(
                    f"logs.query_workspace: pool {pool.name}: {rows.problem}",
                    operation="logs.query_workspace",
                )
            for t, v in rows.values.items():
                if start.timestamp() <= t < end.timestamp():
                    out[t] = _checked(v)
            if progress is not None:
                progress(1)
            start = end
        return out

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def history_chunks(since: datetime, until: datetime) -> int:
    """How many queries ``history`` sends for the span (for a progress bar)."""
    return max(0, math.ceil((until - since) / HISTORY_CHUNK))


def split_rows(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], pools: Sequence[PoolConfig]
) -> dict[str, PoolRows]:
    """The rows of the query's table by pool (contract in the module docstring). Values are
    kept as sent (checked later against the window); a row whose time cannot be read, or a
    second row for the same pool and minute, is a problem for that pool."""
    names = [str(c).lower() for c in columns]
    missing = [c for c in ("timegenerated", "pool", "calls") if c not in names]
    if missing:
        raise PermanentError(
            f"logs.query_workspace: the query's table lacks column(s) {', '.join(missing)} "
            f"(needs TimeGenerated, pool, calls; has {', '.join(map(str, columns)) or 'none'})",
            operation="logs.query_workspace",
            code="QueryContract",
        )
    it, ip, ic = names.index("timegenerated"), names.index("pool"), names.index("calls")
    wanted = {p.name: p for p in pools}
    values: dict[str, dict[Minute, object]] = {name: {} for name in wanted}
    problems: dict[str, str] = {}
    for row in rows:
        name = row[ip]
        if not isinstance(name, str) or name not in wanted:
            continue  # another pool's rows, or a row naming no pool of this file
        moment = _minute(row[it])
        if moment is None:
            problems.setdefault(name, f"a row has an unreadable TimeGenerated {row[it]!r}")
            continue
        if moment in values[name]:
            at = datetime.fromtimestamp(moment, UTC).isoformat(timespec="minutes")
            problems.setdefault(name, f"two rows for minute {at}")
            continue
        values[name][moment] = _number(row[ic])
    return {name: PoolRows(values[name], problems.get(name, "")) for name in wanted}


def _minute(value: object) -> Minute | None:
    """A row's ``TimeGenerated`` as the start of its minute (the SDK turns ``datetime`` cells
    into datetimes when it can, and leaves the text otherwise)."""
    moment: datetime
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.replace(second=0, microsecond=0).timestamp()


def _number(value: Any) -> object:
    """A ``calls`` cell: ``None`` stays unknown; numbers and numeric text become floats; any
    other value is kept as it is, to be refused as invalid."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _checked(value: object) -> float | None:
    if value is None:
        return None
    if not is_valid_value(value):
        raise PermanentError(
            f"logs.query_workspace: invalid calls value {value!r} (not a number ≥ 0 and ≤ 1e6)",
            operation="logs.query_workspace",
        )
    return float(value)  # type: ignore[arg-type]  # checked to be a number


def _reading(pool: PoolConfig, rows: PoolRows | None, now: float) -> MetricReading:
    """One pool's reading from its rows, with the window, lag and reduction of its metric."""
    m = pool.metric
    what = f"log-analytics workspace {m.log_analytics.workspace_id}"
    if rows is None or not rows.values:
        if rows is not None and rows.problem:
            return MetricReading.missing(f"{what}: {rows.problem}")
        return MetricReading.missing(f"{what}: no row for pool {pool.name}")
    if rows.problem:
        return MetricReading.missing(f"{what}: {rows.problem}")
    window, lag = m.window_minutes * 60, m.lag_minutes * 60
    series = [("", sorted(rows.values.items()))]
    clean, invalid = screen_series(series, now=now, window_seconds=window, lag_seconds=lag)
    if invalid:
        return MetricReading.missing(f"{what}: {invalid}")
    return reduce_window(
        merge_series(clean),
        now=now,
        window_seconds=window,
        lag_seconds=lag,
        reduce=m.reduce,
        history_seconds=m.history_minutes * 60,
    )
