"""``trace export``: a backtest trace (``timestamp,pool,calls``) from one's own recorded load.

Sources, per pool (``--source``, default ``auto``: each pool's own ``metric.source``):

* ``azure-monitor``: the history of the pool's Azure Monitor metric (for a ``pexip`` or
  ``log-analytics`` pool: its ``fallback_metric``), 1-minute grain, in one-day queries
  (``scaler.adapters.azure_history``); a percentage (``Percentage CPU``) is a *proxy* of calls.
* ``pexip``: Pexip's call history: the Teams legs become concurrent calls per minute by a sweep
  over their start and end times (``teams_legs`` says which participants are Teams legs). The
  history does not say which Teams Connector carried a call, so it is attributed to exactly one
  pool (``--pool``). When no participant of the span can be told to be a Teams leg, the column
  is left empty (unknown), never written as zeros — unless ``--teams-protocol`` forces a
  protocol, whose zeros are then trusted.
* ``log-analytics``: the pool's ``[pools.metric.log_analytics]`` query, in one-week chunks.

Every minute of ``[since, until)`` gets a row; a minute that is unknown (no data, an invalid
value, before the oldest call Pexip still keeps, inside an unreadable call record) has an empty
``calls`` cell, which the backtest treats as the metric being unavailable, never as 0.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TextIO

from scaler.config import Config, PoolConfig
from scaler.errors import ConfigError, ScalerError
from scaler.logs import get_logger
from scaler.traces import write_trace

MAX_SPAN_DAYS = 400
"""Longest span one export covers: a year of minutes and then some (the backtest's own grid
limit is of that order). ``--since 0001-01-01`` grew memory without bound before this."""

Source = Literal["auto", "azure-monitor", "pexip", "log-analytics"]
SOURCES: tuple[str, ...] = ("auto", "azure-monitor", "pexip", "log-analytics")
MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class PoolExport:
    pool: str
    source: str
    minutes: int
    known: int
    note: str = ""


@dataclass(frozen=True, slots=True)
class Call:
    """One call with a known span (seconds since the epoch)."""

    start: float
    end: float


def concurrent_per_minute(
    calls: Sequence[Call],
    *,
    since: float,
    minutes: int,
) -> list[int]:
    """The peak number of calls in progress during each minute of ``[since, since + minutes·60)``
    (a sweep over start and end times). A call ending at an instant and one starting at that
    instant do not overlap; a call is in progress during ``[start, end)``."""
    events = sorted(
        [(c.start, 1) for c in calls if c.end > c.start]
        + [(c.end, -1) for c in calls if c.end > c.start],
        key=lambda e: (e[0], e[1]),  # ends (-1) before starts (+1) at the same instant
    )
    out: list[int] = []
    current, i = 0, 0
    for n in range(minutes):
        lo = since + n * MINUTE
        hi = lo + MINUTE
        while i < len(events) and events[i][0] <= lo:
            current += events[i][1]
            i += 1
        peak = current
        while i < len(events) and events[i][0] < hi:
            current += events[i][1]
            peak = max(peak, current)
            i += 1
        out.append(peak)
    return out


TEAMS = "TEAMS"


def teams_legs(
    records: Sequence[Any], *, protocol: str | None, conferences: frozenset[str]
) -> list[Any]:
    """The participants of Pexip's history that are Teams legs.

    Pexip's client model of a history participant has no ``protocol`` (go-infinity-sdk
    ``history/models.go``) and no Pexip page lists a ``TEAMS`` value for one; a VTC joining a
    Teams meeting is a participant "directly connected to an externally-hosted conference"
    (https://docs.pexip.com/admin/participant_history.htm), linked to the meeting by a backplane
    that Pexip's client models with ``protocol`` ``TEAMS`` (``conferences``: the names of the
    conferences with such a backplane, from ``history/v1/backplane/``). So, by default, a Teams
    leg is a participant of such a conference — unless the record itself says ``TEAMS`` (the
    Teams side of that conference, counted through the VTC leg), or a participant of no such
    conference whose own record says ``TEAMS`` (a version that records it). Each Teams call is
    counted once per VTC participant: a meeting room cascaded into Teams counts each of its
    participants, which overstates what the Teams Connector carries (the safe side for
    sizing). ``protocol`` given (``--teams-protocol``): exactly the participants whose
    ``protocol`` is it.
    """
    if protocol is not None:
        return [r for r in records if r.protocol.upper() == protocol.upper()]
    out = []
    for r in records:
        own = r.protocol.upper() == TEAMS
        if (r.conference_name in conferences) != own:
            out.append(r)
    return out


def teams_calls(
    records: Sequence[Any],
    *,
    since: float,
    until: float,
    retained_from: float | None,
    protocol: str | None = None,
    conferences: frozenset[str] = frozenset(),
) -> tuple[list[Call], list[tuple[float, float]]]:
    """The Teams legs of Pexip's history (``teams_legs``) as calls, and the spans that are
    unknown: before the oldest record Pexip keeps, and inside any Teams record whose times
    cannot be read."""
    calls: list[Call] = []
    unknown: list[tuple[float, float]] = []
    if retained_from is not None and retained_from > since:
        unknown.append((since, retained_from))
    for r in teams_legs(records, protocol=protocol, conferences=conferences):
        if r.problem:
            if r.start is None and r.end is None:
                raise ScalerError(
                    f"pexip history: participant {r.id} ({r.problem}) has no start_time and "
                    f"no end_time; the minutes it covers cannot be known"
                )
            lo = r.start if r.start is not None else since
            hi = r.end if r.end is not None and r.end >= lo else until
            unknown.append((lo, hi))
            continue
        calls.append(Call(r.start, r.end))
    return calls, unknown


def _grid(since: datetime, until: datetime) -> tuple[float, int]:
    lo = since.timestamp()
    return lo, max(0, math.ceil((until.timestamp() - lo) / MINUTE))


def export(
    config: Config,
    *,
    since: datetime,
    until: datetime,
    output: Path,
    source: Source = "auto",
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
    pexip_pools = [p for p in chosen if by_source[p.name] == "pexip"]
    if len(pexip_pools) > 1:
        raise ConfigError(
            "--pool: Pexip's call history does not say which Teams Connector carried a call; "
            f"export it for one pool at a time, got {', '.join(p.name for p in pexip_pools)}"
        )
    for p in chosen:
        if by_source[p.name] == "log-analytics" and "log-analytics" not in (
            p.metric.source,
            p.metric.fallback,
        ):
            raise ConfigError(
                f"--source: pool {p.name} has no [pools.metric.log_analytics] query "
                f"(source or fallback 'log-analytics'), got 'log-analytics'"
            )
    lo, minutes = _grid(since, until)
    columns: dict[str, list[float | None]] = {}
    summary: list[PoolExport] = []
    total_steps = _steps(chosen, by_source, since, until)
    bar = _progress(total_steps, progress)
    opened: list[Any] = []
    try:
        for pool in chosen:
            kind = by_source[pool.name]
            if kind == "pexip":
                values, note = _from_pexip(
                    config, pool, since, until, teams_protocol, bar.update, pexip_client, opened
                )
            elif kind == "log-analytics":
                values, note = _from_logs(
                    config, pool, since, until, bar.update, credential, client_kwargs, opened
                )
            else:
                values, note = _from_azure(
                    config, pool, since, until, bar.update, credential, client_kwargs, opened
                )
            column = [values.get(lo + n * MINUTE) for n in range(minutes)]
            columns[pool.name] = column
            known = sum(v is not None for v in column)
            summary.append(PoolExport(pool.name, kind, minutes, known, note))
            get_logger().info(
                "trace.exported", pool=pool.name, source=kind, minutes=minutes, known=known
            )
    finally:
        bar.close()
        for thing in opened:
            thing.close()
    write_trace(output, _rows(lo, minutes, columns))
    return summary


def _rows(
    lo: float, minutes: int, columns: dict[str, list[float | None]]
) -> Iterator[tuple[datetime, str, float | None]]:
    for n in range(minutes):
        ts = datetime.fromtimestamp(lo + n * MINUTE, UTC)
        for name, column in columns.items():
            yield ts, name, column[n]


def retained_since(since: datetime) -> datetime:
    """The start of what Azure Monitor still keeps of ``[since, …)``: no query asks for a
    minute it has already discarded (``--days 400`` sent 400 one-day queries, 307 of them
    for nothing)."""
    from scaler.adapters.azure_history import RETENTION

    oldest = (datetime.now(UTC) - RETENTION + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return max(since, oldest)


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


def _source_of(pool: PoolConfig, source: Source) -> str:
    return pool.metric.source if source == "auto" else source


def _azure_view(pool: PoolConfig) -> PoolConfig:
    """The pool with the Azure Monitor metric its history is read from."""
    if pool.metric.source == "azure-monitor":
        return pool
    view = pool.metric.fallback_view(pool.resource_id)
    return pool.model_copy(update={"metric": view})


def _steps(
    pools: Sequence[PoolConfig], by_source: dict[str, str], since: datetime, until: datetime
) -> int:
    from scaler.adapters.azure_history import chunks
    from scaler.adapters.azure_logs import history_chunks

    total = 0
    for p in pools:
        kind = by_source[p.name]
        if kind == "pexip":
            total += 1
        elif kind == "log-analytics":
            total += history_chunks(since, until)
        else:
            kept = retained_since(since)
            total += chunks(kept, until) if kept < until else 0
    return total


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


def _credential(config: Config, credential: Any, opened: list[Any]) -> Any:
    if credential is not None:
        return credential
    from scaler.adapters.azure import make_credential

    made = make_credential(config.azure)
    if hasattr(made, "close"):
        opened.append(made)
    return made


def _from_azure(
    config: Config,
    pool: PoolConfig,
    since: datetime,
    until: datetime,
    update: Callable[[int], None],
    credential: Any,
    client_kwargs: dict[str, Any] | None,
    opened: list[Any],
) -> tuple[dict[float, float | None], str]:
    from scaler.adapters.azure_history import RETENTION, AzureMetricHistory

    view = _azure_view(pool)
    m = view.metric
    reader = AzureMetricHistory(
        config, _credential(config, credential, opened), **(client_kwargs or {})
    )
    opened.insert(0, reader)
    kept = retained_since(since)
    if kept >= until:
        return {}, f"{m.namespace}/{m.name}; Azure Monitor keeps metrics 93 days: all empty"
    found = reader.history(view, kept, until, progress=update)
    notes = [f"{m.namespace}/{m.name}"]
    if found.proxy:
        notes.append(
            f"a proxy: {m.meaning} converted per VM with calls_per_instance "
            f"{pool.calls_per_instance:g}; CPU counts more than calls, so this overstates them"
        )
    if found.invalid_minutes:
        notes.append(f"{found.invalid_minutes} minute(s) with invalid values left empty")
    if since < datetime.now(UTC) - RETENTION:
        notes.append("Azure Monitor keeps metrics 93 days: older minutes are empty")
    return found.calls, "; ".join(notes)


def _from_logs(
    config: Config,
    pool: PoolConfig,
    since: datetime,
    until: datetime,
    update: Callable[[int], None],
    credential: Any,
    client_kwargs: dict[str, Any] | None,
    opened: list[Any],
) -> tuple[dict[float, float | None], str]:
    from scaler.adapters.azure_logs import LogAnalyticsMetrics

    reader = LogAnalyticsMetrics(
        config, _credential(config, credential, opened), **(client_kwargs or {})
    )
    opened.insert(0, reader)
    values = reader.history(pool, since, until, progress=update)
    return values, f"log-analytics workspace {pool.metric.log_analytics.workspace_id}"


def _from_pexip(
    config: Config,
    pool: PoolConfig,
    since: datetime,
    until: datetime,
    protocol: str | None,
    update: Callable[[int], None],
    client: Any,
    opened: list[Any],
) -> tuple[dict[float, float | None], str]:
    from scaler.errors import AdapterError

    if client is None:
        if not config.pexip.url:
            raise ConfigError("pexip.url: required for --source pexip, got ''")
        from scaler.adapters.pexip import PexipClient

        client = PexipClient(config.pexip)
        opened.append(client)
    history = client.participant_history(since, until)
    retained = history.retained_from
    conferences: frozenset[str] = frozenset()
    if protocol is None:
        try:
            backplanes = client.backplane_history(since, until)
        except AdapterError as err:
            if err.status != 404:
                raise
            raise ScalerError(
                "pexip history: this Management Node keeps no backplane history "
                "(history/v1/backplane/ answers 404), so its Teams legs cannot be told from "
                "other calls; give --teams-protocol if its participant history records a "
                "protocol for them"
            ) from err
        conferences = frozenset(
            b.conference_name
            for b in backplanes.backplanes
            if b.protocol.upper() == TEAMS and b.conference_name
        )
        if backplanes.retained_from is not None:
            retained = max(retained or backplanes.retained_from, backplanes.retained_from)
    update(1)
    lo, minutes = _grid(since, until)
    calls, unknown = teams_calls(
        history.calls,
        since=lo,
        until=until.timestamp(),
        retained_from=retained,
        protocol=protocol,
        conferences=conferences,
    )
    if not calls and protocol is None:
        # Nothing recognisable as a Teams leg: zeros would read as "no load" and a backtest
        # would recommend too little. Unknown, unless the user forces a protocol.
        get_logger().warning(
            "trace.no_teams_legs",
            pool=pool.name,
            participants=len(history.calls),
            teams_conferences=len(conferences),
        )
        return {lo + n * MINUTE: None for n in range(minutes)}, (
            f"no Teams leg found among {len(history.calls)} participant(s) of Pexip's call "
            "history: every minute left empty (unknown), not 0; give --teams-protocol to "
            "count legs by protocol and trust the zeros"
        )
    counts = concurrent_per_minute(calls, since=lo, minutes=minutes)
    values: dict[float, float | None] = {lo + n * MINUTE: float(c) for n, c in enumerate(counts)}
    for a, b in unknown:
        first = max(0, math.floor((a - lo) / MINUTE))
        last = min(minutes, math.ceil((b - lo) / MINUTE))
        for n in range(first, last):
            values[lo + n * MINUTE] = None
    how = f"protocol {protocol}" if protocol else f"{len(conferences)} Teams conference(s)"
    note = f"Pexip call history, {len(calls)} Teams call(s) ({how})"
    if retained is not None and retained > lo:
        kept = datetime.fromtimestamp(retained, UTC).isoformat(timespec="minutes")
        note += f"; Pexip keeps the newest 5,000 conferences: minutes before {kept} are empty"
    return values, note


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
