"""``backtest --report DIR``: charts of a backtest, as PNG and as one self-contained HTML page.

Per config, one PNG (``<config>.png``) with a row per pool: on the left the whole scored window
(demand, ready capacity and requested capacity in calls, the oracle's capacity dotted,
shortfalls in red), on the right the day with the most unserved call-minutes (or the busiest
day). ``index.html`` embeds every PNG as base64 next to the summary table, so it can be mailed
or attached to a change request as one file.

matplotlib is optional (``pip install 'cvi-autoscaler[report]'``) and drawn with the Agg
backend: no display needed.
"""

from __future__ import annotations

import base64
import html
import importlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scaler.backtest.results import (
    BacktestResult,
    Metrics,
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


def draw(result: BacktestResult, path: Path) -> Path:
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
    title = result.config or "backtest"
    total = result.total
    fig.suptitle(
        f"{title}: {total.vcpu_hours:,.0f} vCPU-h "
        f"({ratio_text(total, result.clairvoyant)}× clairvoyant, "
        f"{ratio_text(total, result.oracle)}× oracle), "
        f"{total.unserved_call_minutes:,.0f} unserved call-minutes, "
        f"{total.dropped_calls:,.0f} dropped calls",
        fontsize=13,
        fontweight="bold",
    )
    for row, name in enumerate(names):
        pool = result.pools[name]
        s = pool.run.series
        cpi = pool.calls_per_instance
        demand = list(s.demand)
        ready = [r * cpi for r in s.ready]
        requested = [r * cpi for r in s.requested]
        oracle = [r * cpi for r in pool.oracle_sizes]
        first, last = _worst_day(result, name)
        panels = [(0, len(times)), (first, last)] if zoom else [(0, len(times))]
        top = max([*demand, *requested, *oracle, 1.0]) * 1.1
        for col, (a, b) in enumerate(panels):
            ax = axes[row][col]
            t = times[a:b]
            ax.plot(t, oracle[a:b], color=ORACLE, lw=0.8, ls=":", label="oracle capacity")
            ax.step(t, requested[a:b], where="post", color=REQUESTED, lw=0.9, label="requested")
            ax.step(t, ready[a:b], where="post", color=READY, lw=1.1, label="ready capacity")
            ax.plot(t, demand[a:b], color=DEMAND, lw=0.7 if col == 0 else 1.0, label="demand")
            unserved = list(s.unserved[a:b])
            short = [u > 1e-9 for u in unserved]
            if any(short):
                ax.fill_between(
                    t,
                    [d - u for d, u in zip(demand[a:b], unserved, strict=True)],
                    demand[a:b],
                    where=short,
                    color=SHORT,
                    alpha=0.55,
                    step=None,
                    label="unserved",
                    interpolate=False,
                )
                marks = [tt for tt, flag in zip(t, short, strict=True) if flag]
                ax.plot(
                    marks,
                    [0.0] * len(marks),
                    "|",
                    color=SHORT,
                    markersize=9,
                    clip_on=False,
                )
            ax.set_ylim(0, top)
            ax.grid(True, alpha=0.3)
            ax.margins(x=0)
            if col == 0:
                m = pool.metrics
                ax.set_title(
                    f"{name}: {m.vcpu_hours:,.0f} vCPU-h "
                    f"({ratio_text(m, pool.clairvoyant)}× clairvoyant, "
                    f"{ratio_text(m, pool.oracle)}× oracle), "
                    f"unserved {m.unserved_call_minutes:,.0f} call-min, "
                    f"dropped {m.dropped_calls:,.0f}",
                    fontsize=11,
                    loc="left",
                )
                ax.set_ylabel("calls")
                if days > 10:
                    ax.xaxis.set_major_locator(mdates.DayLocator(interval=7, tz=UTC))
                    ax.xaxis.set_minor_locator(mdates.DayLocator(tz=UTC))
                    ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %d %b", tz=UTC))
                else:
                    locator = mdates.AutoDateLocator(tz=UTC)
                    ax.xaxis.set_major_locator(locator)
                    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
            else:
                day = t[0].strftime("%a %d %b %Y") if t else ""
                worst = sum(unserved) / 60.0 * result.step_seconds
                label = "worst day" if worst > 0 else "busiest day"
                ax.set_title(f"{label}: {day} (UTC)", fontsize=11, loc="left")
                ax.xaxis.set_major_locator(mdates.HourLocator(byhour=range(0, 24, 4), tz=UTC))
                ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))
    handles, labels = axes[0][0].get_legend_handles_labels()
    if "unserved" not in labels:
        handles.append(plt.Rectangle((0, 0), 1, 1, color=SHORT, alpha=0.55))
        labels.append("unserved")
    fig.legend(
        handles,
        labels,
        loc="upper center",
        ncols=5,
        fontsize=10,
        frameon=False,
        bbox_to_anchor=(0.5, 1.0 - 0.45 / fig.get_figheight()),
    )
    fig.tight_layout(rect=(0, 0, 1, 1.0 - 0.75 / fig.get_figheight()))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


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


def write_report(results: Sequence[BacktestResult], directory: Path) -> list[Path]:
    """Write one PNG per config and ``index.html``; returns the paths written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"--report: cannot create {directory}: {exc.strerror}") from exc
    written: list[Path] = []
    images: list[tuple[BacktestResult, Path]] = []
    used: set[str] = set()
    for r in results:
        slug = _slug(r.config)
        while slug in used:
            slug += "-2"
        used.add(slug)
        png = draw(r, directory / f"{slug}.png")
        written.append(png)
        images.append((r, png))
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
        "<p>Cost is billed from the request of an instance; unserved call-minutes are demand "
        "above ready capacity; dropped calls were on instances removed busy. The clairvoyant has "
        "perfect foresight under each pool's own min, boot time and scale-in mode (the "
        "call-safe floor cost targets are stated against); the oracle has perfect foresight "
        "under the same boot time but may pack calls and release capacity at once (the "
        "capacity floor); static_peak holds the peak need all the time.</p>",
    ]
    for r, png in images:
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(f"<h2>{html.escape(r.config or 'backtest')}</h2>")
        parts.append(
            f'<img alt="demand, ready and requested capacity of {html.escape(r.config)}" '
            f'src="data:image/png;base64,{data}">'
        )
    parts.append("<h2>Summary as text</h2>")
    parts.append(f"<pre>{html.escape(summary_text(results))}</pre>")
    parts.append("</body></html>")
    page = directory / "index.html"
    page.write_text("\n".join(parts), encoding="utf-8")
    written.append(page)
    return written
