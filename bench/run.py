"""``make bench``: how fast the backtest is, and how good the example policy sets are.

1. **Speed**: a generated 30-day, 1-minute, 10-pool trace (≈ 432,000 pool-steps, one tick a
   minute) replayed with target tracking; the median of a few runs, pool-steps per second and the
   peak RSS of this process (``resource.getrusage``, which includes the forked workers' peak
   through ``RUSAGE_CHILDREN``).
2. **Decision quality**: the four example configs on the bundled five-week trace: vCPU-hours,
   their ratio to the oracle floor, unserved call-minutes inside and outside the unannounced
   spike, dropped calls; the recommended set also as a drain-aware ``vmss`` (no Event Hub), and
   perfect foresight through the same model (``bench/clairvoyant.py``) with its variations;
   then the recommended set and the schedule baseline on held-out traces.

Usage: ``python bench/run.py [--runs N] [--skip-speed] [--skip-quality] [--markdown]``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running without installing the package
    sys.path.insert(0, str(ROOT))

from bench.clairvoyant import clairvoyant  # noqa: E402
from scaler.backtest import BacktestResult, Options, run_backtest  # noqa: E402
from scaler.backtest.engine import ScaleIn  # noqa: E402
from scaler.config import Config, load_config, parse_config  # noqa: E402
from scaler.loadgen import PoolProfile, generate  # noqa: E402
from scaler.traces import Trace, load_trace  # noqa: E402
from tools.gen_traces import FIVE_WEEKS_START, five_weeks  # noqa: E402

TRACE = ROOT / "examples" / "traces" / "two-regions-5w.csv"
RECOMMENDED = ROOT / "examples" / "recommended.toml"
QUALITY_RUNS: tuple[tuple[str, Path, ScaleIn | None], ...] = (
    ("recommended", RECOMMENDED, None),
    ("recommended, vmss without Event Hub", RECOMMENDED, "idle"),
    ("baseline-schedule", ROOT / "examples" / "baseline-schedule.toml", None),
    ("baseline-cpu-rules", ROOT / "examples" / "baseline-cpu-rules.toml", None),
    ("baseline-static", ROOT / "examples" / "baseline-static.toml", None),
)
"""(label, config, scale-in mode): ``None`` replays each pool as its kind scales in. The second
row is the recommended set on Teams Connectors without the Event Hub, where the daemon can only
delete idle instances (the set itself is for the Event Hub, where Pexip drains them)."""
HOLD_MINUTES = (30, 45, 60, 90)
EARLY_MINUTES = (5, 10, 20)
"""Variations of perfect foresight (``bench.clairvoyant``): could it be spent more cheaply?"""
HELD_OUT_SEEDS = ((11, 12), (21, 22), (31, 32), (41, 42))
"""Other meetings in the bundled trace's scenario: the recommended set was tuned on the bundled
trace, so its service is also checked on these."""
HELD_OUT_CONFIGS = ("recommended", "baseline-schedule")
SPIKE_POOL = "teams-connector-us"
SPIKE_START = datetime(2026, 10, 29, 14, 20, tzinfo=UTC)
SPIKE_MINUTES = 45
SPIKE_FACTOR = 3.0
UNFORESEEABLE_MINUTES = 20 + 3 + 1
"""boot_minutes + metric lag + one tick: the part of an unannounced spike no policy can serve."""

ZONES = (
    "Europe/London",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Europe/Paris",
    "America/Chicago",
    "Asia/Singapore",
)
SUB = "00000000-0000-0000-0000-000000000000"


def speed_trace(days: int = 30) -> Trace:
    """Ten pools in ten time zones, peaks from 40 to 265 calls, one-minute steps."""
    profiles = [
        PoolProfile(f"pool-{i:02d}", zone, peak_calls=40 + 25 * i, seed=i)
        for i, zone in enumerate(ZONES)
    ]
    start = datetime(2026, 9, 7, tzinfo=UTC)
    columns: dict[str, list[float | None]] = {p.name: [] for p in profiles}
    for _, pool, calls in generate(profiles, start, days):
        columns[pool].append(None if calls is None else float(calls))
    length = days * 1440
    return Trace(
        start=start,
        step_seconds=60,
        pools=tuple(columns),
        calls=MappingProxyType({k: tuple(v) for k, v in columns.items()}),
        length=length,
    )


def speed_config(trace: Trace) -> Config:
    pools: list[dict[str, Any]] = []
    for name in trace.pools:
        pools.append(
            {
                "name": name,
                "resource_id": f"/subscriptions/{SUB}/resourceGroups/bench/providers/"
                f"Microsoft.Compute/virtualMachineScaleSets/{name}",
                "vcpus_per_instance": 4,
                "quota_family": "standardFSv2Family",
                "min": 1,
                "max": 40,
                "metric": {"lag_minutes": 3, "window_minutes": 5},
                "policies": [{"type": "target-tracking", "target_utilization": 0.7}],
            }
        )
    return parse_config(
        {
            "daemon": {"interval_seconds": 60},
            "azure": {"subscription_id": SUB, "location": "westeurope"},
            "pools": pools,
        }
    )


def bench_speed(runs: int) -> dict[str, float]:
    trace = speed_trace()
    config = speed_config(trace)
    steps = trace.length * len(trace.pools)
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        run_backtest(config, trace, options=Options(warmup_days=7))
        timings.append(time.perf_counter() - began)
    one = []
    for _ in range(max(1, runs // 2)):
        began = time.perf_counter()
        run_backtest(config, trace, options=Options(warmup_days=7, workers=1))
        one.append(time.perf_counter() - began)
    median = statistics.median(timings)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {
        "pool_steps": float(steps),
        "median_s": median,
        "median_one_process_s": statistics.median(one),
        "steps_per_s": steps / median,
        "rss_mb": own,
        "worker_rss_mb": children,
    }


def spike_split(result: BacktestResult) -> tuple[float, float]:
    """Unserved call-minutes (inside, outside) the unannounced spike and its aftermath.

    "Inside" is the spike's 45 minutes on its pool; everything else is "outside".
    """
    inside = outside = 0.0
    start = result.scored_from.timestamp()
    step = result.step_seconds
    lo = SPIKE_START.timestamp()
    hi = lo + SPIKE_MINUTES * 60.0
    for name, pool in result.pools.items():
        for i, short in enumerate(pool.run.series.unserved):
            if not short:
                continue
            t = start + i * step
            if name == SPIKE_POOL and lo <= t < hi:
                inside += short * step / 60.0
            else:
                outside += short * step / 60.0
    return inside, outside


def spike_allowance(trace: Trace) -> float:
    """The issue's allowance for the spike: its excess demand (demand − demand ÷ factor) over
    its first boot + lag + tick minutes, in call-minutes."""
    first = int((SPIKE_START - trace.start).total_seconds() // trace.step_seconds)
    column = trace.calls[SPIKE_POOL]
    total = 0.0
    for v in column[first : first + UNFORESEEABLE_MINUTES]:
        if v is not None:
            total += (v - v / SPIKE_FACTOR) * trace.step_seconds / 60.0
    return total


def bench_quality() -> list[dict[str, Any]]:
    rows = []
    traces: dict[frozenset[str], Trace] = {}
    for label, path, mode in QUALITY_RUNS:
        if not path.exists():
            print(f"(skipped {label}: {path.relative_to(ROOT)} not found)", file=sys.stderr)
            continue
        config = load_config(path)
        names = frozenset(p.name for p in config.pools)
        if names not in traces:
            traces[names] = load_trace(TRACE, known_pools=names)
        options = Options(warmup_days=7, scale_in=mode)
        result = run_backtest(config, traces[names], options=options)
        inside, outside = spike_split(result)
        foresight = hold = early = None
        if label == "recommended":
            foresight = clairvoyant(config, traces[names])
            hold = [(m, clairvoyant(config, traces[names], hold_minutes=m)) for m in HOLD_MINUTES]
            early = [
                (m, clairvoyant(config, traces[names], early_minutes=m)) for m in EARLY_MINUTES
            ]
        rows.append(
            {
                "allowance": spike_allowance(traces[names]),
                "config": label,
                "variant": mode is not None,
                "vcpu_hours": result.total.vcpu_hours,
                "ratio": result.total.vcpu_hours / result.oracle.vcpu_hours,
                "unserved_spike": inside,
                "unserved_outside": outside,
                "dropped": result.total.dropped_calls,
                "peak_short": result.total.peak_shortfall_calls,
                "actions": result.total.scale_actions,
                "oracle": result.oracle.vcpu_hours,
                "static_peak": result.static_peak.vcpu_hours,
                "clairvoyant": foresight,
                "foresight_hold": hold,
                "foresight_early": early,
            }
        )
    return rows


def bench_held_out() -> list[dict[str, Any]]:
    """The recommended set and the schedule baseline on the scenario with other seeds."""
    configs = [
        (label, load_config(path)) for label, path, _ in QUALITY_RUNS if label in HELD_OUT_CONFIGS
    ]
    rows = []
    for seeds in HELD_OUT_SEEDS:
        trace = Trace.from_rows(five_weeks(seeds), start=FIVE_WEEKS_START)
        for label, config in configs:
            result = run_backtest(config, trace, options=Options(warmup_days=7))
            inside, outside = spike_split(result)
            rows.append(
                {
                    "seeds": seeds,
                    "config": label,
                    "ratio": result.total.vcpu_hours / result.oracle.vcpu_hours,
                    "unserved_outside": outside,
                    "unserved_spike": inside,
                    "allowance": spike_allowance(trace),
                    "dropped": result.total.dropped_calls,
                }
            )
    return rows


def print_table(head: Sequence[str], body: Sequence[Sequence[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|")
        for row in body:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    for row in [head, *body]:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def print_held_out(rows: list[dict[str, Any]], markdown: bool) -> None:
    if not rows:
        return
    head = ("seeds", "config", "× oracle", "unserved elsewhere", "unserved in spike", "dropped")
    body = [
        (
            f"{r['seeds'][0]}/{r['seeds'][1]}",
            r["config"],
            f"{r['ratio']:.2f}",
            f"{r['unserved_outside']:,.0f}",
            f"{r['unserved_spike']:,.0f} of {r['allowance']:,.0f}",
            f"{r['dropped']:,.0f}",
        )
        for r in rows
    ]
    print("\nHeld-out traces (the same five weeks, other meetings; spike: unserved of allowed):")
    print_table(head, body, markdown)


def print_quality(rows: list[dict[str, Any]], markdown: bool) -> None:
    if not rows:
        return
    head = (
        "config",
        "vCPU-h",
        "× oracle",
        "unserved in spike",
        "unserved elsewhere",
        "dropped calls",
        "scale actions",
    )
    body = [
        (
            r["config"],
            f"{r['vcpu_hours']:,.0f}",
            f"{r['ratio']:.2f}",
            f"{r['unserved_spike']:,.0f}",
            f"{r['unserved_outside']:,.0f}",
            f"{r['dropped']:,.0f}",
            f"{r['actions']:,}",
        )
        for r in rows
    ]
    floor = rows[0]
    seer = floor["clairvoyant"]
    if seer is not None:
        body.append(
            (
                f"clairvoyant ({floor['config']}'s pools)",
                f"{seer['vcpu_hours']:,.0f}",
                f"{seer['vcpu_hours'] / floor['oracle']:.2f}",
                *(
                    ("0", "0")
                    if seer["unserved"] < 0.5
                    else ("-", f"{seer['unserved']:,.0f} in all")
                ),
                "0",
                "-",
            )
        )
    body.append(("oracle (floor)", f"{floor['oracle']:,.0f}", "1.00", "0", "0", "0", "-"))
    body.append(
        (
            "static_peak (baseline)",
            f"{floor['static_peak']:,.0f}",
            f"{floor['static_peak'] / floor['oracle']:.2f}",
            "0",
            "0",
            "0",
            "0",
        )
    )
    print("\nDecision quality on examples/traces/two-regions-5w.csv (28 scored days):")
    print_table(head, body, markdown)
    print_targets(rows)


def print_targets(rows: list[dict[str, Any]]) -> None:
    """The issue's targets for ``recommended``, checked against the table."""
    rec = next((r for r in rows if r["config"] == "recommended"), None)
    if rec is None:
        return
    allowance = rec["allowance"]
    checks = [
        (
            "zero unserved call-minutes outside the unannounced spike",
            rec["unserved_outside"] < 0.5,
            f"{rec['unserved_outside']:,.0f}",
        ),
        (
            f"in the spike at most its unforeseeable excess ({allowance:,.0f} call-min)",
            rec["unserved_spike"] <= allowance,
            f"{rec['unserved_spike']:,.0f}",
        ),
        ("at most 1.25x the oracle's vCPU-hours", rec["ratio"] <= 1.25, f"{rec['ratio']:.2f}x"),
    ]
    for other in rows:
        if other is rec or other["variant"]:
            continue
        service = (
            rec["unserved_outside"] + rec["unserved_spike"]
            <= (other["unserved_outside"] + other["unserved_spike"])
            and rec["dropped"] <= other["dropped"]
        )
        cheaper = rec["vcpu_hours"] < other["vcpu_hours"]
        checks.append(
            (
                f"beats {other['config']} on cost at equal or better service",
                service and cheaper,
                f"{rec['vcpu_hours']:,.0f} vs {other['vcpu_hours']:,.0f} vCPU-h, "
                f"service {'as good or better' if service else 'worse'}",
            )
        )
    print("\nTargets for examples/recommended.toml:")
    for text, ok, value in checks:
        print(f"  [{'met' if ok else 'NOT met'}] {text}: {value}")
    seer = rec["clairvoyant"]
    if seer is not None:
        print(
            f"\nPerfect foresight through the same model (the pools' min, call-safe scale-in, "
            f"no stabilisation) costs {seer['vcpu_hours'] / rec['oracle']:.2f}x the oracle, "
            f"{seer['drain_vcpu_hours'] / rec['oracle']:.2f}x of it draining; the recommended "
            f"set costs {rec['vcpu_hours'] / seer['vcpu_hours']:.2f}x perfect foresight."
        )
    for text, runs in (
        ("holding instances through lulls of", rec["foresight_hold"]),
        ("scaling in earlier than the oracle by", rec["foresight_early"]),
    ):
        if runs:
            print(f"  Perfect foresight {text}:")
            for minutes, r in runs:
                print(
                    f"    {minutes:>3} min: {r['vcpu_hours'] / rec['oracle']:.2f}x the oracle, "
                    f"{r['unserved']:,.0f} call-minutes unserved"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs of the speed bench")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-held-out", action="store_true", help="no held-out traces")
    parser.add_argument("--markdown", action="store_true", help="tables as Markdown")
    args = parser.parse_args()
    if not args.skip_quality:
        print_quality(bench_quality(), args.markdown)
        if not args.skip_held_out:
            print_held_out(bench_held_out(), args.markdown)
    if not args.skip_speed:
        s = bench_speed(max(1, args.runs))
        print(
            f"\nSpeed: 30 days × 1 minute × 10 pools = {s['pool_steps']:,.0f} pool-steps "
            f"(target tracking, one tick a minute)\n"
            f"  median {s['median_s']:.2f} s ({s['steps_per_s']:,.0f} pool-steps/s) with the "
            f"default workers; {s['median_one_process_s']:.2f} s in one process\n"
            f"  peak RSS {s['rss_mb']:.0f} MB (this process), {s['worker_rss_mb']:.0f} MB "
            f"(largest worker)"
        )


if __name__ == "__main__":
    main()
