"""``backtest --report DIR``: charts of a backtest, as PNG and as one self-contained HTML page.

Per config, one PNG (``<config>.png``) with a row per pool: on the left the whole scored window
(demand, ready capacity and requested capacity in calls, the oracle's capacity dotted,
shortfalls in red), on the right the day with the most unserved call-minutes (or the busiest
day). ``<config>-instances.png`` counts instances per pool over the scored window: requested,
ready, and the clairvoyant's requested (the call-safe floor). With several configs
(``--compare``), ``compare.png`` sets them side by side per pool: cost (money with ``[cost]``,
else vCPU-hours) and unserved call-minutes. ``index.html`` embeds every PNG as base64 next to the
summary table (and the cost table with ``[cost]``), so it can be mailed or attached to a change
request as one file.

matplotlib is optional (``pip install 'cvi-autoscaler[report]'``) and drawn with the Agg
backend: no display needed.
"""

from __future__ import annotations

import base64
import html
import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scaler.backtest.cost import Pricing, baseline_cost_rows, cost_rows, cost_text
from scaler.backtest.results import (
    BacktestResult,
    Metrics,
    PoolResult,
    baseline_rows,
    ratio_text,
    summary_text,
    table_rows,
)
from scaler.traces import format_timestamp

DEMAND = "#1f4e79"
READY = "#2e8b57"
REQUESTED = "#e0a030"
ORACLE = "#7f7f7f"
SHORT = "#d62728"
CLAIRVOYANT = "#8e44ad"
PALETTE = ("#1f4e79", "#e0a030", "#2e8b57", "#8e44ad", "#d62728", "#17becf", "#7f7f7f")


class ReportError(RuntimeError):
    """The report could not be drawn (matplotlib missing, directory not writable)."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ReportError(
            "--report needs matplotlib: pip install 'cvi-autoscaler[report]'"
        ) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _slug(text: str) -> str:
    stem = Path(text).stem if text else "backtest"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-") or "backtest"


def _worst_day(result: BacktestResult, name: str) -> tuple[int, int]:
    """(first, last+1) bucket index of the day with the most unserved calls (else busiest)."""
    pool = result.pools[name]
    per_day = max(1, round(86400.0 / result.step_seconds))
    series = pool.run.series
    n = len(series.demand)
    best, best_key = 0, (-1.0, -1.0)
    for first in range(0, n, per_day):
        short = sum(series.unserved[first : first + per_day])
        busy = sum(series.demand[first : first + per_day])
        key = (short, busy)
        if key > best_key:
            best, best_key = first, key
    return best, min(n, best + per_day)


def _date_axis(ax: Any, days: float, mdates: Any) -> None:
    if days > 10:
        ax.xaxis.set_major_locator(mdates.DayLocator(interval=7, tz=UTC))
        ax.xaxis.set_minor_locator(mdates.DayLocator(tz=UTC))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %d %b", tz=UTC))
    else:
        locator = mdates.AutoDateLocator(tz=UTC)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))


def draw_instances(result: BacktestResult, path: Path, pricing: Pricing | None = None) -> Path:
    """Instances over time, one row per pool: requested (billed), ready (serving) and the
    clairvoyant's requested instances, the call-safe floor the policy is measured against."""
    plt = _pyplot()
    mdates: Any = importlib.import_module("matplotlib.dates")

    names = list(result.pools)
    times = result.times()
    days = len(times) * result.step_seconds / 86400.0
    fig, axes = plt.subplots(
        len(names), 1, figsize=(16, 3.0 * len(names) + 0.9), squeeze=False, sharex=True
    )
    fig.suptitle(
        f"{result.config or 'backtest'}: instances requested, ready and the clairvoyant floor",
        fontsize=13,
        fontweight="bold",
    )
    for row, name in enumerate(names):
        pool = result.pools[name]
        s = pool.run.series
        ax = axes[row][0]
        seer = list(pool.clairvoyant_sizes)
        if len(seer) == len(times):
            ax.step(
                times, seer, where="post", color=CLAIRVOYANT, lw=0.9, ls="--", label="clairvoyant"
            )
        ax.step(times, list(s.requested), where="post", color=REQUESTED, lw=1.0, label="requested")
        ax.step(times, list(s.ready), where="post", color=READY, lw=1.1, label="ready")
        m = pool.metrics
        money = ""
        if pricing is not None:
            money = f", {pricing.text(pricing.pool_cost(name, m))}"
        ax.set_title(
            f"{name}: {m.instance_hours:,.0f} instance-h, {m.vcpu_hours:,.0f} vCPU-h{money}, "
            f"{m.min_instances}-{m.max_instances} instances requested",
            fontsize=11,
            loc="left",
        )
        ax.set_ylabel("instances")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.margins(x=0)
        _date_axis(ax, days, mdates)
    handles, labels = axes[0][0].get_legend_handles_labels()
    return _save(fig, handles, labels, path, ncols=3)


def draw_compare(
    results: Sequence[BacktestResult], pricings: Sequence[Pricing | None], path: Path
) -> Path:
    """The configs side by side, per pool and in total: cost (money when every config has
    ``[cost]`` in one currency, else vCPU-hours) and unserved call-minutes."""
    plt = _pyplot()
    currencies = {p.currency for p in pricings if p is not None}
    in_money = all(p is not None for p in pricings) and len(currencies) == 1
    names: list[str] = []
    for r in results:
        names += [n for n in r.pools if n not in names]
    groups = [*names, "total"]

    def cost(r: BacktestResult, pricing: Pricing | None, name: str) -> float:
        if name == "total":
            if in_money and pricing is not None:
                return pricing.total_cost({n: p.metrics for n, p in r.pools.items()}) or 0.0
            return r.total.vcpu_hours
        pool = r.pools.get(name)
        if pool is None:
            return 0.0
        if in_money and pricing is not None:
            return pricing.pool_cost(name, pool.metrics)
        return pool.metrics.vcpu_hours

    def unserved(r: BacktestResult, name: str) -> float:
        if name == "total":
            return r.total.unserved_call_minutes
        pool = r.pools.get(name)
        return pool.metrics.unserved_call_minutes if pool is not None else 0.0

    fig, (left, right) = plt.subplots(1, 2, figsize=(max(10, 2.2 * len(groups) + 6), 5.2))
    width = 0.8 / len(results)
    for k, (r, pricing) in enumerate(zip(results, pricings, strict=True)):
        xs = [g + (k - (len(results) - 1) / 2) * width for g in range(len(groups))]
        label = _slug(r.config)
        colour = PALETTE[k % len(PALETTE)]
        left.bar(xs, [cost(r, pricing, g) for g in groups], width, label=label, color=colour)
        right.bar(xs, [unserved(r, g) for g in groups], width, label=label, color=colour)
    first = results[0]
    seer = first.clairvoyant
    if seer is not None:
        first_pricing = pricings[0]
        if in_money and first_pricing is not None:
            floor = first_pricing.total_cost({n: p.clairvoyant for n, p in first.pools.items()})
        else:
            floor = seer.vcpu_hours
        if floor is not None:
            g = len(groups) - 1
            left.hlines(
                floor, g - 0.45, g + 0.45, colors=CLAIRVOYANT, linestyles="--", label="clairvoyant"
            )
    unit = next(iter(currencies)) if in_money else "vCPU-hours"
    left.set_title(f"cost ({unit})", fontsize=12, loc="left")
    right.set_title("unserved call-minutes", fontsize=12, loc="left")
    for ax in (left, right):
        ax.set_xticks(range(len(groups)), groups)
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    left.legend(fontsize=9, frameon=False)
    fig.suptitle("configs compared", fontsize=13, fontweight="bold")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def draw(result: BacktestResult, path: Path, pricing: Pricing | None = None) -> Path:
    """Draw one config's chart to ``path`` (PNG)."""
    plt = _pyplot()
    mdates: Any = importlib.import_module("matplotlib.dates")  # untyped helpers

    names = list(result.pools)
    times = result.times()
    days = len(times) * result.step_seconds / 86400.0
    zoom = days > 2.0  # a second panel with the worst day only when there is more to see
    fig, axes = plt.subplots(
        len(names),
        2 if zoom else 1,
        figsize=(16, 3.6 * len(names) + 0.8),
        gridspec_kw={"width_ratios": [3, 1]} if zoom else None,
        squeeze=False,
    )
    fig.suptitle(_headline(result, pricing), fontsize=13, fontweight="bold")
    for row, name in enumerate(names):
        pool = result.pools[name]
        curves = _Curves.of(pool)
        first, last = _worst_day(result, name)
        panels = [(0, len(times)), (first, last)] if zoom else [(0, len(times))]
        top = max([*curves.demand, *curves.requested, *curves.oracle, 1.0]) * 1.1
        for col, (a, b) in enumerate(panels):
            ax = axes[row][col]
            t = times[a:b]
            _plot_panel(ax, t, curves, a, b, whole=col == 0)
            ax.set_ylim(0, top)
            ax.grid(True, alpha=0.3)
            ax.margins(x=0)
            if col == 0:
                ax.set_title(_pool_headline(name, pool), fontsize=11, loc="left")
                ax.set_ylabel("calls")
                _date_axis(ax, days, mdates)
            else:
                day = t[0].strftime("%a %d %b %Y") if t else ""
                worst = sum(curves.unserved[a:b]) / 60.0 * result.step_seconds
                label = "worst day" if worst > 0 else "busiest day"
                ax.set_title(f"{label}: {day} (UTC)", fontsize=11, loc="left")
                ax.xaxis.set_major_locator(mdates.HourLocator(byhour=range(0, 24, 4), tz=UTC))
                ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))
    handles, labels = axes[0][0].get_legend_handles_labels()
    if "unserved" not in labels:
        handles.append(plt.Rectangle((0, 0), 1, 1, color=SHORT, alpha=0.55))
        labels.append("unserved")
    return _save(fig, handles, labels, path, ncols=5)


def _headline(result: BacktestResult, pricing: Pricing | None) -> str:
    """The chart's title: the config's cost, its ratios to the floors and its shortfalls."""
    total = result.total
    money = ""
    if pricing is not None:
        money = (
            f"{pricing.text(pricing.total_cost({n: p.metrics for n, p in result.pools.items()}))}, "
        )
    return (
        f"{result.config or 'backtest'}: {money}{total.vcpu_hours:,.0f} vCPU-h "
        f"({ratio_text(total, result.clairvoyant)}× clairvoyant, "
        f"{ratio_text(total, result.oracle)}× oracle), "
        f"{total.unserved_call_minutes:,.0f} unserved call-minutes, "
        f"{total.dropped_calls:,.0f} dropped calls"
    )


def _pool_headline(name: str, pool: PoolResult) -> str:
    """A pool's row title: its cost, its ratios to the floors and its shortfalls."""
    m = pool.metrics
    return (
        f"{name}: {m.vcpu_hours:,.0f} vCPU-h "
        f"({ratio_text(m, pool.clairvoyant)}× clairvoyant, "
        f"{ratio_text(m, pool.oracle)}× oracle), "
        f"unserved {m.unserved_call_minutes:,.0f} call-min, "
        f"dropped {m.dropped_calls:,.0f}"
    )


@dataclass(frozen=True)
class _Curves:
    """A pool's series over the scored window, all in calls (instances × calls per instance)."""

    demand: list[float]
    ready: list[float]
    requested: list[float]
    oracle: list[float]
    unserved: list[float]

    @classmethod
    def of(cls, pool: PoolResult) -> _Curves:
        s = pool.run.series
        cpi = pool.calls_per_instance
        return cls(
            demand=list(s.demand),
            ready=[r * cpi for r in s.ready],
            requested=[r * cpi for r in s.requested],
            oracle=[r * cpi for r in pool.oracle_sizes],
            unserved=list(s.unserved),
        )


def _plot_panel(ax: Any, t: list[datetime], c: _Curves, a: int, b: int, *, whole: bool) -> None:
    """One panel, buckets ``a`` to ``b``: the oracle's, requested and ready capacity, demand,
    and what went unserved shaded in red with a tick under each short bucket."""
    demand = c.demand[a:b]
    ax.plot(t, c.oracle[a:b], color=ORACLE, lw=0.8, ls=":", label="oracle capacity")
    ax.step(t, c.requested[a:b], where="post", color=REQUESTED, lw=0.9, label="requested")
    ax.step(t, c.ready[a:b], where="post", color=READY, lw=1.1, label="ready capacity")
    ax.plot(t, demand, color=DEMAND, lw=0.7 if whole else 1.0, label="demand")
    unserved = c.unserved[a:b]
    short = [u > 1e-9 for u in unserved]
    if any(short):
        ax.fill_between(
            t,
            [d - u for d, u in zip(demand, unserved, strict=True)],
            demand,
            where=short,
            color=SHORT,
            alpha=0.55,
            step=None,
            label="unserved",
            interpolate=False,
        )
        marks = [tt for tt, flag in zip(t, short, strict=True) if flag]
        ax.plot(marks, [0.0] * len(marks), "|", color=SHORT, markersize=9, clip_on=False)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222;max-width:1500px}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;font-size:.9em}
th,td{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.total td{font-weight:bold} tr.base td{color:#666;font-style:italic}
td.bad{color:#c00;font-weight:bold}
img{max-width:100%;border:1px solid #ddd}
pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:.85em}
"""

_HTML_COLUMNS = (
    ("vCPU-hours", "vcpu_hours"),
    ("× clairvoyant", "ratio_clairvoyant"),
    ("× oracle", "ratio"),
    ("instance-hours", "instance_hours"),
    ("call-minutes", "call_minutes"),
    ("unserved call-min", "unserved_call_minutes"),
    ("dropped calls", "dropped_calls"),
    ("peak shortfall", "peak_shortfall_calls"),
    ("scale actions", "scale_actions"),
    ("min", "min_instances"),
    ("max", "max_instances"),
)


def _html_cell(m: Metrics, key: str, floor: Metrics, seer: Metrics | None) -> str:
    if key == "ratio":
        return f"<td>{ratio_text(m, floor)}</td>"
    if key == "ratio_clairvoyant":
        return f"<td>{ratio_text(m, seer)}</td>"
    v = getattr(m, key)
    text = f"{v:,}" if isinstance(v, int) else f"{v:,.1f}"
    bad = key in ("unserved_call_minutes", "dropped_calls") and v > 0
    return f'<td class="bad">{text}</td>' if bad else f"<td>{text}</td>"


def html_table(results: Sequence[BacktestResult]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c, _ in _HTML_COLUMNS)
    rows = [f"<tr><th></th>{head}</tr>"]
    many = len(results) > 1
    for r in results:
        for label, m, floor, seer in table_rows(r, label=r.config if many else ""):
            cls = ' class="total"' if label.endswith("total") else ""
            cells = "".join(_html_cell(m, k, floor, seer) for _, k in _HTML_COLUMNS)
            rows.append(f"<tr{cls}><td>{html.escape(label)}</td>{cells}</tr>")
        if many and r.clairvoyant is not None and r.clairvoyant != results[0].clairvoyant:
            cells = "".join(
                _html_cell(r.clairvoyant, k, r.oracle, r.clairvoyant) for _, k in _HTML_COLUMNS
            )
            label = html.escape(f"{r.config} clairvoyant")
            rows.append(f'<tr class="base"><td>{label}</td>{cells}</tr>')
    for label, m, floor, seer in baseline_rows(results[0]):
        cells = "".join(_html_cell(m, k, floor, seer) for _, k in _HTML_COLUMNS)
        rows.append(f'<tr class="base"><td>{html.escape(label)}</td>{cells}</tr>')
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def html_cost_table(results: Sequence[BacktestResult], pricings: Sequence[Pricing | None]) -> str:
    """The cost table (money per pool, total and baselines); "" without ``[cost]``."""
    priced = [(r, p) for r, p in zip(results, pricings, strict=True) if p is not None]
    if not priced:
        return ""
    many = len(results) > 1
    rows = ["<tr><th></th><th>cost</th><th>per 30 days</th></tr>"]
    for r, pricing in priced:
        for row in cost_rows(r, pricing, label=r.config if many else ""):
            cls = ' class="total"' if row.label.endswith("total") else ""
            rows.append(
                f"<tr{cls}><td>{html.escape(row.label)}</td>"
                f"<td>{html.escape(pricing.text(row.cost))}</td>"
                f"<td>{html.escape(pricing.text(row.per_month))}</td></tr>"
            )
    for row in baseline_cost_rows(*priced[0]):
        rows.append(
            f'<tr class="base"><td>{html.escape(row.label)}</td>'
            f"<td>{html.escape(row.pricing.text(row.cost))}</td>"
            f"<td>{html.escape(row.pricing.text(row.per_month))}</td></tr>"
        )
    return "<h2>Cost</h2>\n<table>\n" + "\n".join(rows) + "\n</table>"


def write_report(
    results: Sequence[BacktestResult],
    directory: Path,
    *,
    pricings: Sequence[Pricing | None] | None = None,
) -> list[Path]:
    """Write per config its chart and its instance-count chart, ``compare.png`` for several
    configs, and ``index.html``; returns the paths written."""
    prices: list[Pricing | None] = list(pricings) if pricings else [None] * len(results)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"--report: cannot create {directory}: {exc.strerror}") from exc
    written: list[Path] = []
    images: list[tuple[str, str, Path]] = []
    used: set[str] = {"compare"}
    for r, pricing in zip(results, prices, strict=True):
        slug = _slug(r.config)
        while slug in used or slug.endswith("-instances"):
            slug += "-2"
        used.add(slug)
        name = html.escape(r.config or "backtest")
        png = draw(r, directory / f"{slug}.png", pricing)
        counts = draw_instances(r, directory / f"{slug}-instances.png", pricing)
        written += [png, counts]
        images.append((name, f"demand, ready and requested capacity of {name}", png))
        images.append(
            (f"{name}: instances", f"instances requested, ready and clairvoyant of {name}", counts)
        )
    if len(results) > 1:
        side = draw_compare(results, prices, directory / "compare.png")
        written.append(side)
        images.insert(0, ("configs compared", "cost and unserved call-minutes per config", side))
    first = results[0]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>cvi-autoscaler backtest: {html.escape(first.trace)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>cvi-autoscaler backtest</h1>",
        f"<p>Trace <code>{html.escape(first.trace)}</code>, scored "
        f"{format_timestamp(first.scored_from)} to {format_timestamp(first.scored_until)} "
        f"after {first.warmup_days:g} warm-up days. Generated "
        f"{format_timestamp(datetime.now(UTC).replace(microsecond=0))}.</p>",
        html_table(results),
        html_cost_table(results, prices),
        "<p>Cost is billed from the request of an instance; unserved call-minutes are demand "
        "above ready capacity; dropped calls were on instances removed busy. The clairvoyant has "
        "perfect foresight under each pool's own min, boot time and scale-in mode (the "
        "call-safe floor cost targets are stated against); the oracle has perfect foresight "
        "under the same boot time but may pack calls and release capacity at once (the "
        "capacity floor); static_peak holds the peak need all the time.</p>",
    ]
    for heading, alt, png in images:
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(f"<h2>{heading}</h2>")
        parts.append(f'<img alt="{alt}" src="data:image/png;base64,{data}">')
    parts.append("<h2>Summary as text</h2>")
    text = summary_text(results)
    money = cost_text(list(results), prices)
    parts.append(f"<pre>{html.escape(text + (chr(10) * 2 + money if money else ''))}</pre>")
    parts.append("</body></html>")
    page = directory / "index.html"
    page.write_text("\n".join(parts), encoding="utf-8")
    written.append(page)
    return written


def _save(fig: Any, handles: Any, labels: Any, path: Path, *, ncols: int) -> Path:
    """One legend above the charts, then the figure written to ``path`` (PNG) and closed."""
    import matplotlib.pyplot as plt

    fig.legend(
        handles,
        labels,
        loc="upper center",
        ncols=ncols,
        fontsize=10,
        frameon=False,
        bbox_to_anchor=(0.5, 1.0 - 0.45 / fig.get_figheight()),
    )
    fig.tight_layout(rect=(0, 0, 1, 1.0 - 0.75 / fig.get_figheight()))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
