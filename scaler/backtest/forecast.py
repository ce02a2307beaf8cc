"""``cvi-autoscaler forecast``: the ``predictive`` policy's forecast against what happened.

For every pool whose policies include ``predictive`` (at the top level or inside a
``composite``), the command replays the trace as the policy would have seen it live and asks
the policy's own ``forecast(history=, at=, now=, pool=)`` for every scored minute *at*, made at
``now = at - boot - tick`` (the last moment an instance asked for could still be ready at *at*)
from the metric visible until ``now - lag``: the forecast's **lead time** is
``boot + lag + tick`` minutes after the newest data it had. ``error = actual - forecast`` in
calls, so a positive error is a forecast that fell short (the dangerous side); the command gives
its percentiles (p50, p90, p99, max) over the whole scored window and per hour of the day, so an
operator sees which hours the policy plans badly and why it plans the headroom it plans.
Minutes with no forecast (no earlier week covers them) or no actual value (a metric gap) are
counted but not scored.

**Coverage.** A policy that also gives its predictive distribution (``outlook``: the planned
quantile of the load and the quantile it promises, as ``predictive`` does) is checked against
it: per hour, the share of minutes whose load stayed at or below the planned quantile beside
the quantile promised. An operator who sets ``target_unserved`` sees whether the promise holds
hour by hour (covered below promised: that hour is planned too thin).

Exit codes as ``backtest``: 0 done; 2 a bad config, trace or option, or no pool with a
``predictive`` policy; 1 anything else (e.g. the report could not be written).
"""

from __future__ import annotations

import html
import json
import math
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Protocol, TextIO, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scaler.backtest.runner import BacktestError, check_pools, grid_for
from scaler.config import Config, PoolConfig, load_config
from scaler.core.history import ArrayHistory, LoadHistory
from scaler.core.types import PoolLimits, ScalingPolicy
from scaler.errors import ConfigError
from scaler.kinds import limits_of
from scaler.policyset import build_policies
from scaler.traces import Trace, TraceError, format_timestamp, load_trace

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
QUANTILES: tuple[tuple[str, float], ...] = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))


@runtime_checkable
class Forecaster(Protocol):
    """What the command needs of a policy: its forecast for the minute holding ``at`` as made
    at ``now`` from ``history`` cut at ``now - lag`` (calls; ``None``: no forecast)."""

    name: str

    def forecast(
        self, *, history: LoadHistory, at: float, now: float, pool: PoolLimits | None = None
    ) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Coverage:
    """How often the planned quantile covered the load, against what it promised."""

    points: int
    covered: float | None
    """Share of the minutes whose load was at or below the planned quantile."""
    promised: float | None
    """Mean quantile the plan promised over those minutes."""

    @staticmethod
    def of(hits: Sequence[tuple[bool, float]]) -> Coverage:
        if not hits:
            return Coverage(0, None, None)
        n = len(hits)
        return Coverage(n, sum(h for h, _ in hits) / n, sum(q for _, q in hits) / n)

    def to_json(self) -> dict[str, float | int | None]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 5)

        return {"points": self.points, "covered": r(self.covered), "promised": r(self.promised)}


@runtime_checkable
class Outlooking(Protocol):
    """A forecaster that also gives its predictive distribution (``predictive.Outlook``: the
    point forecast, the planned quantile ``upper`` and the ``quantile`` it promises)."""

    def outlook(
        self, *, history: LoadHistory, at: float, now: float, pool: PoolLimits | None = None
    ) -> Any: ...


@runtime_checkable
class Combining(Protocol):
    """A policy made of parts (``composite``)."""

    name: str
    parts: tuple[ScalingPolicy, ...]


def find_forecaster(policies: Sequence[ScalingPolicy]) -> tuple[str, ScalingPolicy] | None:
    """The first ``predictive`` policy of a pool (searched inside composites too), with its
    path as decisions name it (``composite:predictive``)."""
    for policy in policies:
        if policy.name == "predictive":
            return policy.name, policy
        if isinstance(policy, Combining):
            found = find_forecaster(policy.parts)
            if found is not None:
                return f"{policy.name}:{found[0]}", found[1]
    return None


@dataclass(frozen=True, slots=True)
class Errors:
    """Percentiles of ``actual - forecast`` (calls) over some minutes."""

    points: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    mean_abs: float | None
    bias: float | None
    """Mean of ``actual - forecast``: above 0, the forecast is short on average."""

    @staticmethod
    def of(errors: Sequence[float]) -> Errors:
        if not errors:
            return Errors(0, None, None, None, None, None, None)
        ordered = sorted(errors)
        q = {name: _quantile(ordered, p) for name, p in QUANTILES}
        n = len(ordered)
        return Errors(
            points=n,
            p50=q["p50"],
            p90=q["p90"],
            p99=q["p99"],
            max=ordered[-1],
            mean_abs=sum(abs(e) for e in ordered) / n,
            bias=sum(ordered) / n,
        )

    def to_json(self) -> dict[str, float | int | None]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 2)

        return {
            "points": self.points,
            "p50": r(self.p50),
            "p90": r(self.p90),
            "p99": r(self.p99),
            "max": r(self.max),
            "mean_abs": r(self.mean_abs),
            "bias": r(self.bias),
        }


def _quantile(ordered: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    pos = (len(ordered) - 1) * p
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class PoolForecast:
    """One pool's forecast against the actual load over the scored window."""

    name: str
    policy: str
    lead_minutes: float
    times: Sequence[float] = field(repr=False)
    forecast: Sequence[float | None] = field(repr=False)
    actual: Sequence[float | None] = field(repr=False)
    overall: Errors
    hours: tuple[Errors, ...]
    """Per hour of the day (0-23 in the report's zone)."""
    no_forecast: int
    no_actual: int
    coverage: Coverage = Coverage(0, None, None)
    hour_coverage: tuple[Coverage, ...] = ()
    """Per hour of the day (empty: the policy gives no predictive distribution)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "lead_minutes": self.lead_minutes,
            "minutes": len(self.times),
            "no_forecast": self.no_forecast,
            "no_actual": self.no_actual,
            "error": self.overall.to_json(),
            "hours": {f"{h:02d}": e.to_json() for h, e in enumerate(self.hours)},
            **(
                {
                    "coverage": self.coverage.to_json(),
                    "hour_coverage": {
                        f"{h:02d}": c.to_json() for h, c in enumerate(self.hour_coverage)
                    },
                }
                if self.hour_coverage
                else {}
            ),
        }


@dataclass(frozen=True, slots=True)
class ForecastResult:
    config: str
    trace: str
    scored_from: datetime
    scored_until: datetime
    zone: str
    pools: dict[str, PoolForecast]
    skipped: tuple[str, ...]
    """Pools without a ``predictive`` policy."""

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "trace": self.trace,
            "scored_from": format_timestamp(self.scored_from),
            "scored_until": format_timestamp(self.scored_until),
            "hours_in": self.zone,
            "error": "actual - forecast (calls); positive: the forecast fell short",
            "pools": {name: p.to_json() for name, p in self.pools.items()},
            "skipped": list(self.skipped),
        }


def lead_seconds(pool: PoolConfig, interval_seconds: float) -> tuple[float, float]:
    """(boot + tick, lag) in seconds: the forecast for minute *at* is made at
    ``at - boot - tick`` from data visible until ``now - lag``."""
    return pool.boot_minutes * 60.0 + interval_seconds, pool.metric.lag_minutes * 60.0


def forecast_pool(
    pool: PoolConfig,
    limits: PoolLimits,
    path: str,
    policy: Forecaster,
    column: Sequence[float | None],
    *,
    start: float,
    step: float,
    first: int,
    interval_seconds: float,
    zone: tzinfo,
) -> PoolForecast:
    """Forecast every scored minute of one pool (see the module docstring)."""
    ahead, lag = lead_seconds(pool, interval_seconds)
    # The policy sees the trace's calls as the daemon's history would hold them.
    history = ArrayHistory(start=start, step_seconds=step, values=column, visible_until=start)
    n = len(column)
    times: list[float] = []
    forecasts: list[float | None] = []
    actuals: list[float | None] = []
    by_hour: list[list[float]] = [[] for _ in range(24)]
    covered: list[list[tuple[bool, float]]] = [[] for _ in range(24)]
    overall: list[float] = []
    no_forecast = no_actual = 0
    hour_cache: dict[int, int] = {}
    outlooking = isinstance(policy, Outlooking)
    for i in range(first, n):
        at = start + (i + 0.5) * step
        now = start + i * step - ahead
        history.visible_until = max(start, now - lag)
        value: float | None = None
        plan: Any = None
        if now <= start:
            pass
        elif outlooking:
            plan = policy.outlook(history=history, at=at, now=now, pool=limits)  # type: ignore[attr-defined]
            value = None if plan is None else float(plan.forecast)
        else:
            value = policy.forecast(history=history, at=at, now=now, pool=limits)
        actual = column[i]
        times.append(start + i * step)
        forecasts.append(value)
        actuals.append(actual)
        if value is None:
            no_forecast += 1
            continue
        if actual is None:
            no_actual += 1
            continue
        err = actual - value
        overall.append(err)
        hour_key = int((start + i * step) // 3600)
        hour = hour_cache.get(hour_key)
        if hour is None:
            hour = datetime.fromtimestamp(hour_key * 3600, zone).hour
            if len(hour_cache) > 100_000:
                hour_cache.clear()
            hour_cache[hour_key] = hour
        by_hour[hour].append(err)
        if plan is not None:
            covered[hour].append((actual <= plan.upper + 1e-9, float(plan.quantile)))
    return PoolForecast(
        name=pool.name,
        policy=path,
        lead_minutes=(ahead + lag) / 60.0,
        times=times,
        forecast=forecasts,
        actual=actuals,
        overall=Errors.of(overall),
        hours=tuple(Errors.of(h) for h in by_hour),
        no_forecast=no_forecast,
        no_actual=no_actual,
        coverage=Coverage.of([c for hour in covered for c in hour]),
        hour_coverage=tuple(Coverage.of(c) for c in covered) if outlooking else (),
    )


def run_forecast(
    config: Config,
    trace: Trace,
    *,
    warmup_days: float = 7.0,
    zone: str = "UTC",
    config_name: str = "",
    trace_name: str = "",
) -> ForecastResult:
    """Forecast against actual for every pool with a ``predictive`` policy.

    Raises ``BacktestError`` when the trace lacks a pool of the config, the warm-up leaves
    nothing to score, the zone is unknown or no pool has a ``predictive`` policy."""
    found_by_pool = {pool.name: find_forecaster(build_policies(pool)) for pool in config.pools}
    if not any(found_by_pool.values()):
        raise BacktestError(
            "no pool of the config has a predictive policy (at the top level or in a composite)"
        )
    check_pools(config, trace)
    grid = grid_for(config, trace, warmup_days)
    try:
        tz: tzinfo = UTC if zone == "UTC" else ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BacktestError(f"--hours-in: unknown time zone {zone!r}") from exc
    pools: dict[str, PoolForecast] = {}
    skipped: list[str] = []
    for pool in config.pools:
        found = found_by_pool[pool.name]
        if found is None:
            skipped.append(pool.name)
            continue
        path, policy = found
        if not isinstance(policy, Forecaster):
            raise BacktestError(
                f"pool {pool.name!r}: its predictive policy has no "
                "forecast(history=, at=, now=, pool=) method"
            )
        pools[pool.name] = forecast_pool(
            pool,
            limits_of(pool, config.azure.location),
            path,
            policy,
            trace.calls[pool.name],
            start=grid.start,
            step=grid.step_seconds,
            first=grid.scored_index,
            interval_seconds=grid.interval_seconds,
            zone=tz,
        )
    return ForecastResult(
        config=config_name,
        trace=trace_name,
        scored_from=datetime.fromtimestamp(grid.scored_from, UTC),
        scored_until=datetime.fromtimestamp(grid.end, UTC),
        zone=zone,
        pools=pools,
        skipped=tuple(skipped),
    )


# -- output -----------------------------------------------------------------------------------


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100.0 * v:.2f} %"


def summary_text(result: ForecastResult) -> str:
    """Per pool: the overall error and a table of error percentiles per hour of the day."""
    days = (result.scored_until - result.scored_from).total_seconds() / 86400.0
    lines = [
        f"trace {result.trace}: scored {format_timestamp(result.scored_from)} to "
        f"{format_timestamp(result.scored_until)} ({days:g} days)",
        "error = actual - forecast (calls); positive: the forecast fell short",
    ]
    for p in result.pools.values():
        o = p.overall
        lines += [
            "",
            f"pool {p.name} ({p.policy}, lead {p.lead_minutes:g} min = boot + lag + tick): "
            f"{o.points:,} minutes scored, {p.no_forecast:,} without a forecast, "
            f"{p.no_actual:,} without a metric",
            f"  all hours: p50 {_fmt(o.p50)}  p90 {_fmt(o.p90)}  p99 {_fmt(o.p99)}  "
            f"max {_fmt(o.max)}  mean |error| {_fmt(o.mean_abs)}  bias {_fmt(o.bias)}",
        ]
        head: tuple[str, ...] = ("hour", "minutes", "p50", "p90", "p99", "max", "mean |err|")
        body: list[tuple[str, ...]] = [
            (
                f"{h:02d} {result.zone}",
                f"{e.points:,}",
                _fmt(e.p50),
                _fmt(e.p90),
                _fmt(e.p99),
                _fmt(e.max),
                _fmt(e.mean_abs),
            )
            for h, e in enumerate(p.hours)
        ]
        if p.hour_coverage:
            c = p.coverage
            lines.append(
                f"  coverage: the load stayed within the planned quantile {_pct(c.covered)} of "
                f"the minutes; promised {_pct(c.promised)}"
            )
            head = (*head, "covered", "promised")
            body = [
                (*row, _pct(c.covered), _pct(c.promised))
                for row, c in zip(body, p.hour_coverage, strict=True)
            ]
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        for row in [head, *body]:
            cells = [
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  " + "  ".join(cells))
    if result.skipped:
        lines += ["", f"no predictive policy (not forecast): {', '.join(result.skipped)}"]
    return "\n".join(lines)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "pool"


def draw(result: ForecastResult, pool: PoolForecast, path: Path) -> Path:
    """One PNG per pool: forecast and actual over the scored window, and the error
    percentiles per hour of the day."""
    from scaler.backtest.report import _pyplot

    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(16, 8.5), gridspec_kw={"height_ratios": [3, 2]}
    )
    times = [datetime.fromtimestamp(t, UTC) for t in pool.times]
    nan = float("nan")
    top.plot(
        times,
        [nan if v is None else v for v in pool.actual],
        color="#1f4e79",
        lw=0.7,
        label="actual",
    )
    top.plot(
        times,
        [nan if v is None else v for v in pool.forecast],
        color="#e0a030",
        lw=0.9,
        label=f"forecast ({pool.lead_minutes:g} min ahead)",
    )
    o = pool.overall
    top.set_title(
        f"{pool.name} ({pool.policy}): error p50 {_fmt(o.p50)}, p90 {_fmt(o.p90)}, "
        f"p99 {_fmt(o.p99)}, max {_fmt(o.max)} calls",
        fontsize=11,
        loc="left",
    )
    top.set_ylabel("calls")
    top.grid(True, alpha=0.3)
    top.margins(x=0)
    top.legend(loc="upper right", fontsize=9)
    hours = list(range(24))
    for key, color in (
        ("p50", "#2e8b57"),
        ("p90", "#e0a030"),
        ("p99", "#d62728"),
        ("max", "#7f7f7f"),
    ):
        values = [getattr(e, key) for e in pool.hours]
        bottom.plot(
            hours,
            [nan if v is None else v for v in values],
            marker="o",
            ms=3,
            color=color,
            label=key,
        )
    bottom.axhline(0.0, color="black", lw=0.6)
    bottom.set_xticks(hours)
    bottom.set_xlabel(f"hour of day ({result.zone})")
    bottom.set_ylabel("actual - forecast (calls)")
    bottom.set_title(
        "error percentiles per hour (above 0: forecast short)", fontsize=11, loc="left"
    )
    bottom.grid(True, alpha=0.3)
    bottom.legend(loc="upper right", fontsize=9, ncols=4)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_report(result: ForecastResult, directory: Path) -> list[Path]:
    """One PNG per pool and ``index.html`` embedding them with the text summary."""
    import base64

    from scaler.backtest.report import ReportError

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"--report: cannot create {directory}: {exc.strerror}") from exc
    written: list[Path] = []
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>cvi-autoscaler forecast: {html.escape(result.trace)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1500px}"
        "img{max-width:100%;border:1px solid #ddd}pre{background:#f6f6f6;padding:1em}</style>",
        "</head><body><h1>cvi-autoscaler forecast</h1>",
    ]
    for pool in result.pools.values():
        png = draw(result, pool, directory / f"forecast-{_slug(pool.name)}.png")
        written.append(png)
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(f"<h2>{html.escape(pool.name)}</h2>")
        parts.append(
            f'<img alt="forecast and actual of {html.escape(pool.name)}" '
            f'src="data:image/png;base64,{data}">'
        )
    parts.append(f"<pre>{html.escape(summary_text(result))}</pre></body></html>")
    page = directory / "index.html"
    page.write_text("\n".join(parts), encoding="utf-8")
    written.append(page)
    return written


def run_command(
    *,
    config_path: Path,
    trace_path: Path,
    as_json: bool,
    report_dir: Path | None,
    warmup_days: float,
    zone: str,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """The body of ``cvi-autoscaler forecast``; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr

    def fail(code: int, lines: Iterator[str] | Sequence[str], kind: str) -> int:
        for line in lines:
            print(f"{kind}: {line}", file=err)
        return code

    try:
        config = load_config(config_path, offline=True)
    except ConfigError as exc:
        return fail(EXIT_USAGE, [f"{config_path}: {p}" for p in exc.problems], "config error")
    try:
        trace = load_trace(trace_path, known_pools={p.name for p in config.pools})
    except TraceError as exc:
        return fail(EXIT_USAGE, [str(exc)], "trace error")
    except OSError as exc:
        return fail(EXIT_USAGE, [f"{trace_path}: {exc.strerror}"], "trace error")
    try:
        result = run_forecast(
            config,
            trace,
            warmup_days=warmup_days,
            zone=zone,
            config_name=str(config_path),
            trace_name=str(trace_path),
        )
    except BacktestError as exc:
        return fail(EXIT_USAGE, [f"{config_path}: {p}" for p in exc.problems], "error")
    if as_json:
        print(json.dumps(result.to_json(), indent=2), file=out)
    else:
        print(summary_text(result), file=out)
    if report_dir is not None:
        from scaler.backtest.report import ReportError

        try:
            written = write_report(result, report_dir)
        except ReportError as exc:
            return fail(EXIT_FAILURE, [str(exc)], "error")
        print(f"report: {', '.join(str(p) for p in written)}", file=err)
    return EXIT_OK
