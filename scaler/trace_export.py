"""``trace export``: a backtest trace (``timestamp,pool,calls``) from one's own recorded load.

Sources, per pool (``--source``, default ``auto``: each pool's own ``metric.source``): each
registered metric source reads its own history (``scaler.readers``, one module per built-in):

* ``azure-monitor``: the history of the pool's Azure Monitor metric (for a pool read from
  elsewhere: its ``fallback_metric``), 1-minute grain, in one-day queries
  (``scaler.adapters.azure_history``); a percentage (``Percentage CPU``) is a *proxy* of calls.
* ``pexip``: Pexip's call history, its Teams legs as concurrent calls per minute
  (``scaler.readers.pexip``), for one pool at a time.
* ``log-analytics``: the pool's ``[pools.metric.log_analytics]`` query, in one-week chunks.

Every minute of ``[since, until)`` gets a row; a minute that is unknown (no data, an invalid
value, before the oldest call Pexip still keeps, inside an unreadable call record) has an empty
``calls`` cell, which the backtest treats as the metric being unavailable, never as 0.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from scaler.config import Config, PoolConfig
from scaler.errors import ConfigError
from scaler.logs import get_logger
from scaler.readers import exporter_of
from scaler.readers.azure_monitor import retained_since
from scaler.readers.common import MINUTE, grid
from scaler.readers.pexip import TEAMS, Call, concurrent_per_minute, teams_calls, teams_legs
from scaler.sources import ExportContext, Exporter, MetricSource, discover
from scaler.traces import write_trace

MAX_SPAN_DAYS = 400
"""Longest span one export covers: a year of minutes and then some (the backtest's own grid
limit is of that order). ``--since 0001-01-01`` grew memory without bound before this."""

__all__ = [
    "TEAMS",
    "Call",
    "PoolExport",
    "concurrent_per_minute",
    "export",
    "parse_span",
    "retained_since",
    "teams_calls",
    "teams_legs",
]


@dataclass(frozen=True, slots=True)
class PoolExport:
    pool: str
    source: str
    minutes: int
    known: int
    note: str = ""


def export(
    config: Config,
    *,
    since: datetime,
    until: datetime,
    output: Path,
    source: str = "auto",
    pools: Sequence[str] = (),
    teams_protocol: str | None = None,
    progress: TextIO | None = None,
    credential: Any = None,
    client_kwargs: dict[str, Any] | None = None,
    pexip_client: Any = None,
) -> list[PoolExport]:
    """Write the trace; returns what each pool got. ``credential``, ``client_kwargs`` and
    ``pexip_client`` are for tests and emulators (defaults: the configured ones)."""
    chosen = _select(config, pools)
    by_source = {p.name: _source_of(p, source) for p in chosen}
    _check(chosen, by_source)
    lo, minutes = grid(since, until)
    columns: dict[str, list[float | None]] = {}
    summary: list[PoolExport] = []
    ctx = ExportContext(
        config,
        since,
        until,
        update=lambda n: None,
        credential=credential,
        client_kwargs=client_kwargs,
        pexip_client=pexip_client,
        teams_protocol=teams_protocol,
    )
    total = sum(_exporter(by_source[p.name]).steps(ctx, p) for p in chosen)
    bar = _progress(total, progress)
    ctx = dataclasses.replace(ctx, update=bar.update, opened=[])
    try:
        for pool in chosen:
            name = by_source[pool.name].name
            values, note = _exporter(by_source[pool.name]).history(ctx, pool)
            column = [values.get(lo + n * MINUTE) for n in range(minutes)]
            columns[pool.name] = column
            known = sum(v is not None for v in column)
            summary.append(PoolExport(pool.name, name, minutes, known, note))
            get_logger().info(
                "trace.exported", pool=pool.name, source=name, minutes=minutes, known=known
            )
    finally:
        bar.close()
        for thing in ctx.opened:
            thing.close()
    write_trace(output, _rows(lo, minutes, columns))
    return summary


def _check(pools: Sequence[PoolConfig], by_source: dict[str, MetricSource]) -> None:
    """Each source says whether it can export the pools given to it."""
    for source in dict.fromkeys(by_source.values()):
        problem = source.export_problem([p for p in pools if by_source[p.name] is source])
        if problem:
            raise ConfigError(problem)


def _exporter(source: MetricSource) -> Exporter:
    found = exporter_of(source)
    if found is None:
        raise ConfigError(f"--source: the {source.name} source keeps no history to export")
    return found


def _rows(
    lo: float, minutes: int, columns: dict[str, list[float | None]]
) -> Iterator[tuple[datetime, str, float | None]]:
    for n in range(minutes):
        ts = datetime.fromtimestamp(lo + n * MINUTE, UTC)
        for name, column in columns.items():
            yield ts, name, column[n]


def _select(config: Config, names: Sequence[str]) -> list[PoolConfig]:
    if not names:
        return list(config.pools)
    known = {p.name: p for p in config.pools}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"--pool: no pool named {', '.join(map(repr, unknown))} in the configuration "
            f"(pools: {', '.join(known)})"
        )
    return [known[n] for n in dict.fromkeys(names)]


def _source_of(pool: PoolConfig, source: str) -> MetricSource:
    """The source the pool's history is read from: its own (``auto``) or the one named."""
    registry = discover()
    name = pool.metric.source if source == "auto" else source
    if name not in registry:
        choices = ", ".join(["auto", *sorted(registry)])
        raise ConfigError(f"--source: must be one of {choices}, got {source!r}")
    return registry[name]


class _Bar:
    def __init__(self, bar: Any) -> None:
        self._bar = bar

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _progress(total: int, stream: TextIO | None) -> _Bar:
    """A tqdm bar on a terminal; nothing at all off one (no control characters in logs)."""
    out = stream if stream is not None else sys.stderr
    if not (hasattr(out, "isatty") and out.isatty()):
        return _Bar(None)
    from tqdm import tqdm

    return _Bar(tqdm(total=total, unit="query", file=out, desc="trace export"))


def parse_span(
    since: datetime | None, until: datetime | None, days: float | None, now: datetime
) -> tuple[datetime, datetime]:
    """``--since/--until`` or ``--days`` as a UTC span on whole minutes."""
    end = (until or now).astimezone(UTC) if (until or now).tzinfo else (until or now)
    end = end.replace(tzinfo=UTC) if end.tzinfo is None else end
    if since is not None and days is not None:
        raise ConfigError("--days: give --since or --days, not both")
    if since is None:
        if days is None:
            raise ConfigError("--since: give --since (or --days)")
        if not 0 < days <= MAX_SPAN_DAYS:  # also NaN; and no OverflowError from timedelta
            raise ConfigError(f"--days: must be within (0, {MAX_SPAN_DAYS}], got {days:g}")
        start = end - timedelta(days=days)
    else:
        start = since if since.tzinfo else since.replace(tzinfo=UTC)
        start = start.astimezone(UTC)
    start = start.replace(second=0, microsecond=0)
    end = end.replace(second=0, microsecond=0)
    if end <= start:
        raise ConfigError(f"--until: must be after --since ({start.isoformat()}), got {end}")
    if end > now + timedelta(minutes=1):
        raise ConfigError(f"--until: must not be in the future, got {end.isoformat()}")
    if end - start > timedelta(days=MAX_SPAN_DAYS):
        days_given = (end - start) / timedelta(days=1)
        raise ConfigError(
            f"--since: the span is at most {MAX_SPAN_DAYS} days (export longer spans in "
            f"parts), got {days_given:.0f} days from {start.date().isoformat()}"
        )
    return start, end
