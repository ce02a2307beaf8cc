"""Backtest results: the figures of DESIGN.md's backtest JSON, and their table.

Every figure covers the scored window alone (after the warm-up). Units: hours of instances and
of vCPUs, minutes of calls (one call unserved for one minute is one unserved call-minute), calls.
"""

from __future__ import annotations

import itertools
import math
import operator
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scaler.backtest.engine import PoolRun, PoolTotals
from scaler.traces import format_timestamp

METRIC_KEYS = (
    "vcpu_hours",
    "instance_hours",
    "call_minutes",
    "served_call_minutes",
    "unserved_call_minutes",
    "dropped_calls",
    "peak_shortfall_calls",
    "scale_actions",
    "min_instances",
    "max_instances",
    "drain_instance_hours",
)


@dataclass(frozen=True, slots=True)
class Metrics:
    """The contract's ``M``: cost and service of one pool, or of all of them (``total``)."""

    vcpu_hours: float
    instance_hours: float
    call_minutes: float
    served_call_minutes: float
    unserved_call_minutes: float
    dropped_calls: float
    peak_shortfall_calls: float
    scale_actions: int
    min_instances: int
    max_instances: int
    drain_instance_hours: float = 0.0
    """Part of ``instance_hours``: instances kept only to let their calls end (``drain``)."""

    @staticmethod
    def of(totals: PoolTotals, *, vcpus_per_instance: int) -> Metrics:
        hours = (totals.instance_seconds + totals.drain_instance_seconds) / 3600.0
        return Metrics(
            vcpu_hours=hours * vcpus_per_instance,
            instance_hours=hours,
            call_minutes=totals.call_minutes,
            served_call_minutes=totals.served_call_minutes,
            unserved_call_minutes=totals.unserved_call_minutes,
            dropped_calls=totals.dropped_calls,
            peak_shortfall_calls=totals.peak_shortfall_calls,
            scale_actions=totals.scale_actions,
            min_instances=totals.min_instances,
            max_instances=totals.max_instances,
            drain_instance_hours=totals.drain_instance_seconds / 3600.0,
        )

    def to_json(self) -> dict[str, float | int]:
        """Rounded for reading and for stable golden files (0.001 h, 0.01 call-minutes)."""
        return {
            "vcpu_hours": round(self.vcpu_hours, 3),
            "instance_hours": round(self.instance_hours, 3),
            "call_minutes": round(self.call_minutes, 2),
            "served_call_minutes": round(self.served_call_minutes, 2),
            "unserved_call_minutes": round(self.unserved_call_minutes, 2),
            "dropped_calls": round(self.dropped_calls, 2),
            "peak_shortfall_calls": round(self.peak_shortfall_calls, 2),
            "scale_actions": self.scale_actions,
            "min_instances": self.min_instances,
            "max_instances": self.max_instances,
            "drain_instance_hours": round(self.drain_instance_hours, 3),
        }


def combine(
    parts: Sequence[Metrics],
    *,
    requested: Sequence[Sequence[float]],
    unserved: Sequence[Sequence[float]] | None = None,
) -> Metrics:
    """All pools together. Sums, except: ``peak_shortfall_calls`` is the worst minute of the
    summed shortfall, ``min/max_instances`` the extremes of the summed requested capacity."""
    total_req = _sum_series(requested)
    total_short = _sum_series(unserved) if unserved is not None else []
    return Metrics(
        vcpu_hours=sum(m.vcpu_hours for m in parts),
        instance_hours=sum(m.instance_hours for m in parts),
        call_minutes=sum(m.call_minutes for m in parts),
        served_call_minutes=sum(m.served_call_minutes for m in parts),
        unserved_call_minutes=sum(m.unserved_call_minutes for m in parts),
        dropped_calls=sum(m.dropped_calls for m in parts),
        peak_shortfall_calls=max(total_short, default=0.0),
        scale_actions=sum(m.scale_actions for m in parts),
        min_instances=int(min(total_req, default=0)),
        max_instances=int(max(total_req, default=0)),
        drain_instance_hours=sum(m.drain_instance_hours for m in parts),
    )


def _sum_series(series: Sequence[Sequence[float]]) -> Sequence[float]:
    """Bucket by bucket, the sum over ``series`` (added in order; a compact buffer)."""
    if not series:
        return []
    out = array("d", series[0])
    for other in series[1:]:
        if len(other) == len(out):
            out = array("d", map(operator.add, out, other))
        else:
            for i, v in enumerate(other):
                out[i] += v
    return out


@dataclass(frozen=True, slots=True)
class PoolResult:
    """One pool: the policy's run and the two baselines on the same demand."""

    name: str
    vcpus_per_instance: int
    calls_per_instance: float
    metrics: Metrics
    oracle: Metrics
    static_peak: Metrics
    run: PoolRun
    oracle_sizes: Sequence[float]
    reasons: Mapping[str, int] = field(default_factory=dict)
    clairvoyant: Metrics | None = None
    """Perfect foresight under the pool's own rules (``baselines.clairvoyant``)."""
    clairvoyant_sizes: Sequence[int] = ()
    """The clairvoyant's requested instances per scored bucket."""
    ideal: Mapping[float, tuple[Metrics, Sequence[float]]] = field(default_factory=dict)
    """Per quantile, the ideal online reference (``ideal.py``) and its requested instances per
    scored bucket; empty when the trace's model is not known."""


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """A whole backtest of one config on one trace."""

    config: str
    trace: str
    scored_from: datetime
    scored_until: datetime
    step_seconds: float
    warmup_days: float
    pools: dict[str, PoolResult]
    total: Metrics
    oracle: Metrics
    static_peak: Metrics
    options: Mapping[str, Any] = field(default_factory=dict)
    clairvoyant: Metrics | None = None
    """The call-safe floor: perfect foresight under each pool's own min, boot time and scale-in
    mode (``baselines.clairvoyant``); cost targets are stated against it."""
    ideal: Mapping[float, Metrics] = field(default_factory=dict)
    """The ideal online reference at each quantile, all pools (empty: model not known)."""

    def times(self) -> list[datetime]:
        """UTC start of each scored bucket."""
        start = self.scored_from.timestamp()
        n = len(next(iter(self.pools.values())).run.series.demand) if self.pools else 0
        return [datetime.fromtimestamp(start + i * self.step_seconds, UTC) for i in range(n)]

    def _clairvoyant_json(self) -> dict[str, Any]:
        if self.clairvoyant is None:
            return {}
        return {
            "clairvoyant": {
                **self.clairvoyant.to_json(),
                "pools": {
                    name: p.clairvoyant.to_json()
                    for name, p in self.pools.items()
                    if p.clairvoyant is not None
                },
            }
        }

    def to_json(self) -> dict[str, Any]:
        """DESIGN.md's backtest JSON, plus per-pool baselines and what was run."""
        return {
            "scored_from": format_timestamp(self.scored_from),
            "scored_until": format_timestamp(self.scored_until),
            "config": self.config,
            "trace": self.trace,
            "warmup_days": self.warmup_days,
            "options": dict(self.options),
            "pools": {name: p.metrics.to_json() for name, p in self.pools.items()},
            "total": self.total.to_json(),
            "baselines": {
                "oracle": {
                    **self.oracle.to_json(),
                    "pools": {name: p.oracle.to_json() for name, p in self.pools.items()},
                },
                "static_peak": {
                    **self.static_peak.to_json(),
                    "pools": {name: p.static_peak.to_json() for name, p in self.pools.items()},
                },
                **self._clairvoyant_json(),
                **self._ideal_json(),
            },
            "reasons": {name: dict(sorted(p.reasons.items())) for name, p in self.pools.items()},
            **self._multiples_json(),
        }

    def _ideal_json(self) -> dict[str, Any]:
        if not self.ideal:
            return {}
        return {
            "ideal_online": {
                f"{q:g}": {
                    **m.to_json(),
                    "pools": {name: p.ideal[q][0].to_json() for name, p in self.pools.items()},
                }
                for q, m in self.ideal.items()
            }
        }

    def _multiples_json(self) -> dict[str, Any]:
        """``vs_clairvoyant``: vCPU-hours as a multiple of the call-safe floor's;
        ``vs_ideal``: of the ideal online reference's at the same unserved share."""
        if self.clairvoyant is None:
            return {}
        pools = {
            name: _multiple(p.metrics, p.clairvoyant)
            for name, p in self.pools.items()
            if p.clairvoyant is not None
        }
        out: dict[str, Any] = {
            "vs_clairvoyant": {"total": _multiple(self.total, self.clairvoyant), **pools}
        }
        at = ideal_at(self.ideal, unserved_share(self.total))
        if at is not None:
            out["vs_ideal"] = round(self.total.vcpu_hours / at, 4) if at > 0 else None
        return out


def unserved_share(m: Metrics) -> float:
    """Unserved call-minutes as a share of demand (0 without demand)."""
    return m.unserved_call_minutes / m.call_minutes if m.call_minutes > 0 else 0.0


def ideal_at(ideal: Mapping[float, Metrics], share: float) -> float | None:
    """The ideal online reference's vCPU-hours at unserved share ``share``: on its frontier
    (the cheapest of its quantiles that leaves at most each share unserved), interpolated
    linearly in the logarithm of the share and held at its ends (``None`` without one)."""
    if not ideal:
        return None
    floor = 1e-9  # a share of 0 on a log scale
    points: list[tuple[float, float]] = []
    for m in sorted(ideal.values(), key=lambda m: (unserved_share(m), m.vcpu_hours)):
        x = math.log(max(unserved_share(m), floor))
        if points and x == points[-1][0]:
            continue  # the cheaper one at this share came first
        if points and m.vcpu_hours >= points[-1][1]:
            continue  # leaves more unserved for no saving: off the frontier
        points.append((x, m.vcpu_hours))
    x = math.log(max(share, floor))
    if x <= points[0][0]:
        return points[0][1]
    for (x0, c0), (x1, c1) in itertools.pairwise(points):
        if x <= x1:
            return c0 + (c1 - c0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def _multiple(m: Metrics, floor: Metrics) -> float | None:
    return round(m.vcpu_hours / floor.vcpu_hours, 4) if floor.vcpu_hours > 0 else None


# -- tables -----------------------------------------------------------------------------------

Row = tuple[str, Metrics, Metrics, "Metrics | None"]
"""(label, figures, the oracle to compare with, the clairvoyant to compare with)."""

COLUMNS: tuple[tuple[str, str], ...] = (
    ("vCPU-h", "vcpu_hours"),
    ("× clairv.", "ratio_clairvoyant"),
    ("× oracle", "ratio"),
    ("inst-h", "instance_hours"),
    ("call-min", "call_minutes"),
    ("unserved", "unserved_call_minutes"),
    ("dropped", "dropped_calls"),
    ("peak short", "peak_shortfall_calls"),
    ("actions", "scale_actions"),
    ("min", "min_instances"),
    ("max", "max_instances"),
)


def ratio_text(m: Metrics, floor: Metrics | None) -> str:
    """``m``'s vCPU-hours as a multiple of ``floor``'s (``-`` without one)."""
    if floor is None or floor.vcpu_hours <= 0:
        return "-"
    return f"{m.vcpu_hours / floor.vcpu_hours:.2f}"


def _cell(m: Metrics, key: str, floor: Metrics, seer: Metrics | None) -> str:
    if key == "ratio":
        return ratio_text(m, floor)
    if key == "ratio_clairvoyant":
        return ratio_text(m, seer)
    value = getattr(m, key)
    if isinstance(value, int):
        return f"{value:,}"
    if key in ("dropped_calls", "peak_shortfall_calls"):
        return f"{value:,.1f}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def table_rows(result: BacktestResult, *, label: str = "") -> list[Row]:
    """(row label, figures, oracle and clairvoyant to compare with) for the pools and the
    total."""
    rows: list[Row] = []
    prefix = f"{label} " if label else ""
    for name, p in result.pools.items():
        rows.append((f"{prefix}{name}", p.metrics, p.oracle, p.clairvoyant))
    rows.append((f"{prefix}total", result.total, result.oracle, result.clairvoyant))
    return rows


def baseline_rows(result: BacktestResult) -> list[Row]:
    """The baselines' rows (all pools together), each compared with the same floors."""
    rows: list[Row] = []
    o, c = result.oracle, result.clairvoyant
    if c is not None:
        rows.append(("clairvoyant (call-safe floor)", c, o, c))
    rows.append(("oracle (cost floor)", o, o, c))
    rows.append(("static_peak", result.static_peak, o, c))
    for q, m in result.ideal.items():
        rows.append((f"ideal online q={q:g}", m, o, c))
    return rows


def render_table(rows: Sequence[Row], *, title: str = "") -> str:
    """A plain-text table, right-aligned numbers."""
    header = ["", *[c for c, _ in COLUMNS]]
    body = [
        [label, *[_cell(m, key, floor, seer) for _, key in COLUMNS]]
        for label, m, floor, seer in rows
    ]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [title] if title else []

    def fmt(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = "  ".join(v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True))
        return f"{first}  {rest}".rstrip()

    lines.append(fmt(header))
    lines.append("-" * len(fmt(header)))
    for row in body:
        lines.append(fmt(row))
    return "\n".join(lines)


def summary_text(results: Sequence[BacktestResult]) -> str:
    """The readable output of ``backtest`` for one config or several (``--compare``)."""
    first = results[0]
    days = (first.scored_until - first.scored_from).total_seconds() / 86400.0
    lines = [
        f"trace {first.trace}: scored {format_timestamp(first.scored_from)} to "
        f"{format_timestamp(first.scored_until)} ({days:g} days after {first.warmup_days:g} "
        f"warm-up days)",
        "",
    ]
    rows: list[Row] = []
    if len(results) == 1:
        rows += table_rows(first)
    else:
        for r in results:
            rows += table_rows(r, label=r.config)
            if r.clairvoyant is not None and r.clairvoyant != first.clairvoyant:
                # another min/max, boot time or scale-in mode: another call-safe floor
                rows.append((f"{r.config} clairvoyant", r.clairvoyant, r.oracle, r.clairvoyant))
    rows += baseline_rows(first)
    title = f"config {first.config}" if len(results) == 1 else "configs compared"
    lines.append(render_table(rows, title=title))
    lines.append("")
    lines.append(
        "vCPU-h and inst-h: cost; × clairv.: vCPU-hours over the call-safe floor (perfect "
        "foresight that keeps the pool's min and scales in as its kind does); "
        "× oracle: vCPU-hours over the capacity floor (perfect foresight that may pack calls); "
        "unserved: call-minutes without capacity; dropped: calls cut by a scale-in; "
        "peak short: worst minute's unserved calls."
    )
    return "\n".join(lines)
