"""The ``pexip`` source's readers: the daemon's (``PexipMetrics`` over the status API) and
``trace export``'s (Pexip's call history).

The export turns the Teams legs of the history into concurrent calls per minute by a sweep over
their start and end times (``teams_legs`` says which participants are Teams legs). The history
does not say which Teams Connector carried a call, so it is attributed to exactly one pool
(``--pool``: ``Pexip.export_problem``). When no participant of the span can be told to be a
Teams leg, the column is left empty (unknown), never written as zeros — unless
``--teams-protocol`` forces a protocol, whose zeros are then trusted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scaler.config_model import PoolConfig
from scaler.errors import AdapterError, ConfigError, ScalerError
from scaler.logs import get_logger
from scaler.ports import MetricsSource
from scaler.readers.common import MINUTE, grid
from scaler.sources import ExportContext, History, ReaderContext


def build(ctx: ReaderContext) -> MetricsSource | str:
    from scaler.adapters.pexip import PexipMetrics

    if ctx.pexip is None or ctx.members is None or ctx.node_metric is None:
        return "pexip source needs [pexip] settings"
    return PexipMetrics(
        ctx.config,
        ctx.pexip,
        members=ctx.members,
        node_metric=ctx.node_metric,
        teams_connector=ctx.teams_connector or _no_connector,
    )


def _no_connector(pool: PoolConfig) -> str:
    return ""


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


class _Exporter:
    def steps(self, ctx: ExportContext, pool: PoolConfig) -> int:
        return 1

    def history(self, ctx: ExportContext, pool: PoolConfig) -> History:
        """The pool's Teams calls per minute from Pexip's call history."""
        client = _client(ctx)
        history = client.participant_history(ctx.since, ctx.until)
        retained = history.retained_from
        conferences: frozenset[str] = frozenset()
        if ctx.teams_protocol is None:
            conferences, kept = _teams_conferences(client, ctx)
            if kept is not None:
                retained = max(retained or kept, kept)
        ctx.update(1)
        lo, minutes = grid(ctx.since, ctx.until)
        calls, unknown = teams_calls(
            history.calls,
            since=lo,
            until=ctx.until.timestamp(),
            retained_from=retained,
            protocol=ctx.teams_protocol,
            conferences=conferences,
        )
        if not calls and ctx.teams_protocol is None:
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
        values: dict[float, float | None] = {
            lo + n * MINUTE: float(c) for n, c in enumerate(counts)
        }
        for a, b in unknown:
            first = max(0, math.floor((a - lo) / MINUTE))
            last = min(minutes, math.ceil((b - lo) / MINUTE))
            for n in range(first, last):
                values[lo + n * MINUTE] = None
        return values, _note(ctx, len(calls), len(conferences), retained, lo)


def _client(ctx: ExportContext) -> Any:
    if ctx.pexip_client is not None:
        return ctx.pexip_client
    if not ctx.config.pexip.url:
        raise ConfigError("pexip.url: required for --source pexip, got ''")
    from scaler.adapters.pexip import PexipClient

    client = PexipClient(ctx.config.pexip)
    ctx.opened.append(client)
    return client


def _teams_conferences(client: Any, ctx: ExportContext) -> tuple[frozenset[str], float | None]:
    """The conferences of the span linked to a Teams meeting (a backplane of protocol
    ``TEAMS``), and the oldest instant Pexip still keeps backplanes from."""
    try:
        backplanes = client.backplane_history(ctx.since, ctx.until)
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
    return conferences, backplanes.retained_from


def _note(
    ctx: ExportContext, calls: int, conferences: int, retained: float | None, lo: float
) -> str:
    protocol = ctx.teams_protocol
    how = f"protocol {protocol}" if protocol else f"{conferences} Teams conference(s)"
    note = f"Pexip call history, {calls} Teams call(s) ({how})"
    if retained is not None and retained > lo:
        kept = datetime.fromtimestamp(retained, UTC).isoformat(timespec="minutes")
        note += f"; Pexip keeps the newest 5,000 conferences: minutes before {kept} are empty"
    return note


EXPORTER = _Exporter()
