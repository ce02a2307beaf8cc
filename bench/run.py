"""``make bench``: how fast the backtest is, and how good the example policy sets are.

1. **Speed**: a generated 30-day, 1-minute, 10-pool trace (≈ 432,000 pool-steps, one tick a
   minute) replayed with target tracking and with ``examples/recommended.toml``'s policy set;
   the median of a few runs (wall and CPU seconds), pool-steps per second and the peak RSS of
   this process (``resource.getrusage``, which includes the forked workers' peak through
   ``RUSAGE_CHILDREN``). With ``--write-docs`` they are saved in ``bench/results.json``
   (``speed``) and rendered into ``docs/benchmarks.md``.
2. **Decision quality**: the four example configs on the bundled five-week trace: vCPU-hours,
   their ratio to the oracle floor, unserved call-minutes inside and outside the unannounced
   spike, dropped calls; the recommended set also as a drain-aware ``vmss`` (no Event Hub), and
   perfect foresight through the same model (``bench/clairvoyant.py``) with its variations;
   then the recommended set and the schedule baseline on held-out traces.

3. **Scenario families** (``tools/gen_traces.py``: follow-the-sun, users in another zone across
   both DST changes, growth, Christmas then a launch surge, late-week peak, half-day holidays,
   metric gaps, a new customer's load step), each on held-out seeds nobody tuned for: one row
   per family with the recommended set's unserved call-minutes outside the unannounced events
   and inside them against their allowance (the excess demand of each event's first boot + lag
   + tick), its cost as a multiple of the call-safe floor (``baselines.clairvoyant`` of the
   recommended pools), the baselines' multiples and the saving against ``baseline-schedule``;
   then the issue's targets, met or not, per family.
4. **Memory**: a 20-pool, 60-day trace backtested by ``cvi-autoscaler backtest`` in a child
   process; the peak of the whole process tree's memory (sum of RSS and of PSS over the process
   and its forked workers, sampled from ``/proc``).

Usage: ``python bench/run.py [--runs N] [--skip-speed] [--skip-quality] [--skip-families]
[--skip-memory] [--seeds N ...] [--family NAME ...] [--markdown]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running without installing the package
    sys.path.insert(0, str(ROOT))

from bench.clairvoyant import clairvoyant  # noqa: E402
from scaler.backtest import BacktestResult, Options, run_backtest  # noqa: E402
from scaler.backtest.engine import ScaleIn, carry_demand  # noqa: E402
from scaler.config import Config, load_config, parse_config  # noqa: E402
from scaler.loadgen import PoolProfile, generate  # noqa: E402
from scaler.traces import Trace, load_trace  # noqa: E402
from tools.gen_traces import FAMILIES, FIVE_WEEKS_START, Scenario, five_weeks, scenario  # noqa: E402

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


def speed_trace(days: int = 30, pools: int = 10) -> Trace:
    """Pools in ten time zones, peaks from 40 to 265 calls, one-minute steps."""
    profiles = [
        PoolProfile(f"pool-{i:02d}", ZONES[i % len(ZONES)], peak_calls=40 + 25 * (i % 10), seed=i)
        for i in range(pools)
    ]
    start = datetime(2026, 9, 7, tzinfo=UTC)
    return Trace.from_rows(generate(profiles, start, days), start=start)


def recommended_policies() -> list[dict[str, Any]]:
    """The first pool's policy set of ``examples/recommended.toml``, as written there."""
    import tomllib

    doc = tomllib.loads(RECOMMENDED.read_text(encoding="utf-8"))
    policies: list[dict[str, Any]] = doc["pools"][0]["policies"]
    return policies


def speed_config(trace: Trace, policies: list[dict[str, Any]] | None = None) -> Config:
    """The speed bench's pools; ``policies``: each pool's set (default: target tracking)."""
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
                "policies": policies or [{"type": "target-tracking", "target_utilization": 0.7}],
            }
        )
    return parse_config(
        {
            "daemon": {"interval_seconds": 60},
            "azure": {"subscription_id": SUB, "location": "westeurope"},
            "pools": pools,
        }
    )


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its children waited for so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bench_speed(runs: int, policies: list[dict[str, Any]] | None = None) -> dict[str, float]:
    """``runs`` timed backtests with the default workers and ``runs // 2`` (at least one) in
    one process: wall seconds (median, fastest, slowest), CPU seconds of the process and its
    workers (median), pool-steps per second at the median, peak RSS."""
    trace = speed_trace()
    config = speed_config(trace, policies)
    steps = trace.length * len(trace.pools)
    timings = []
    cpu = []
    for _ in range(runs):
        began, used = time.perf_counter(), _cpu_seconds()
        run_backtest(config, trace, options=Options(warmup_days=7))
        timings.append(time.perf_counter() - began)
        cpu.append(_cpu_seconds() - used)
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
        "runs": float(runs),
        "median_s": median,
        "min_s": min(timings),
        "max_s": max(timings),
        "cpu_s": statistics.median(cpu),
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


# -- scenario families --------------------------------------------------------------------------

FAMILY_SEEDS = (101, 102, 103)
"""Held-out seeds: nothing in ``examples/`` was tuned on them."""
FAMILY_CONFIGS: tuple[tuple[str, Path], ...] = (
    ("recommended", RECOMMENDED),
    ("baseline-schedule", ROOT / "examples" / "baseline-schedule.toml"),
    ("baseline-cpu-rules", ROOT / "examples" / "baseline-cpu-rules.toml"),
    ("baseline-static", ROOT / "examples" / "baseline-static.toml"),
)
TARGET_CLAIRVOYANT = 1.20
TARGET_SAVING = 0.35


def event_split(
    result: BacktestResult, sc: Scenario, trace: Trace, config: Config
) -> dict[str, float]:
    """Unserved call-minutes inside and outside the scenario's unannounced events, and the
    events' allowance: the excess demand (demand - demand / factor) over each event's first
    boot + lag + tick minutes, in call-minutes."""
    step = result.step_seconds
    per_min = step / 60.0
    first = round((result.scored_from - trace.start).total_seconds() / step)
    windows: dict[str, list[tuple[int, int]]] = {}
    allowance = 0.0
    pools = {p.name: p for p in config.pools}
    for e in sc.events():
        a = round((e.start - trace.start).total_seconds() / step)
        b = a + round(e.minutes * 60.0 / step)
        windows.setdefault(e.pool, []).append((a, b))
        pool = pools[e.pool]
        lead = pool.boot_minutes + pool.metric.lag_minutes + config.daemon.interval_seconds / 60
        demand = carry_demand(trace.calls[e.pool])
        for d in demand[max(a, first) : min(b, a + round(lead * 60.0 / step))]:
            allowance += (d - d / e.factor) * per_min
    inside = outside = 0.0
    for name, pool in result.pools.items():
        spans = windows.get(name, [])
        for i, short in enumerate(pool.run.series.unserved):
            if not short:
                continue
            k = first + i
            if any(a <= k < b for a, b in spans):
                inside += short * per_min
            else:
                outside += short * per_min
    return {"inside": inside, "outside": outside, "allowance": allowance}


def _family_job(job: tuple[str, int]) -> dict[str, Any]:
    """One family and seed: every config of ``FAMILY_CONFIGS`` on its trace."""
    family, seed = job
    sc = scenario(family, seed)
    trace = sc.trace()
    out: dict[str, Any] = {"family": family, "seed": seed}
    for label, path in FAMILY_CONFIGS:
        if not path.exists():
            continue
        config = load_config(path)
        result = run_backtest(config, trace, options=Options(warmup_days=7, workers=1))
        split = event_split(result, sc, trace, config)
        out[label] = {
            "vcpu_hours": result.total.vcpu_hours,
            "clairvoyant": result.clairvoyant.vcpu_hours if result.clairvoyant else float("nan"),
            "unserved": result.total.unserved_call_minutes,
            "dropped": result.total.dropped_calls,
            **split,
        }
    return out


def bench_families(families: Sequence[str], seeds: Sequence[int]) -> list[dict[str, Any]]:
    jobs = [(f, s) for f in families for s in seeds]
    workers = min(2, os.cpu_count() or 1)
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return pool.map(_family_job, jobs, chunksize=1)
    return [_family_job(j) for j in jobs]


def print_families(runs: list[dict[str, Any]], markdown: bool) -> None:
    if not runs:
        return
    by_family: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_family.setdefault(r["family"], []).append(r)
    head = (
        "family",
        "seeds",
        "unserved outside",
        "in events / allowed",
        "× clairv.",
        "schedule ×",
        "cpu-rules ×",
        "static ×",
        "saving vs schedule",
        "targets",
    )
    body = []
    verdicts: list[tuple[str, list[tuple[str, bool, str]]]] = []
    for family, rows in by_family.items():
        rec = [r["recommended"] for r in rows]
        floor = [r["clairvoyant"] for r in rec]  # the recommended pools' call-safe floor

        def ratio(label: str, rows: list[dict[str, Any]] = rows, floor: list[float] = floor) -> str:
            got = [
                r[label]["vcpu_hours"] / f for r, f in zip(rows, floor, strict=True) if label in r
            ]
            return f"{statistics.mean(got):.2f}" if got else "-"

        outside = [r["outside"] for r in rec]
        inside = sum(r["inside"] for r in rec)
        allowed = sum(r["allowance"] for r in rec)
        ratios = [r["vcpu_hours"] / f for r, f in zip(rec, floor, strict=True)]
        savings = []
        service = True
        for r in rows:
            sched = r.get("baseline-schedule")
            if sched is None:
                continue
            savings.append(1.0 - r["recommended"]["vcpu_hours"] / sched["vcpu_hours"])
            service &= (
                r["recommended"]["unserved"] <= sched["unserved"] + 0.5
                and r["recommended"]["dropped"] <= sched["dropped"] + 0.5
            )
        checks = [
            ("0 unserved outside events", max(outside) < 0.5, f"{sum(outside):,.0f}"),
            (
                "inside events at most the allowance",
                all(r["inside"] <= r["allowance"] + 0.5 for r in rec),
                f"{inside:,.0f} of {allowed:,.0f}",
            ),
            (
                f"≤ {TARGET_CLAIRVOYANT:.2f}× clairvoyant",
                max(ratios) <= TARGET_CLAIRVOYANT,
                f"{max(ratios):.2f}× worst seed",
            ),
            (
                f"≥ {TARGET_SAVING:.0%} cheaper than baseline-schedule at equal or better service",
                bool(savings) and min(savings) >= TARGET_SAVING and service,
                f"{min(savings, default=float('nan')):.0%} worst seed, service "
                f"{'as good or better' if service else 'worse'}",
            ),
        ]
        verdicts.append((family, checks))
        met = sum(ok for _, ok, _ in checks)
        body.append(
            (
                family,
                ",".join(str(r["seed"]) for r in rows),
                f"{sum(outside):,.0f}",
                f"{inside:,.0f} / {allowed:,.0f}" if allowed or inside else "- (none)",
                f"{statistics.mean(ratios):.2f}",
                ratio("baseline-schedule"),
                ratio("baseline-cpu-rules"),
                ratio("baseline-static"),
                f"{statistics.mean(savings):.0%}" if savings else "-",
                f"{met}/{len(checks)}",
            )
        )
    print(
        "\nScenario families (held-out seeds; examples/recommended.toml unless named; costs as "
        "multiples of the recommended pools' call-safe floor, mean over seeds; unserved in "
        "call-minutes summed over seeds):"
    )
    print_table(head, body, markdown)
    print(
        f"\nTargets per family: 0 unserved call-minutes outside unannounced events (inside: at "
        f"most their first boot + lag + tick of excess demand), ≤ {TARGET_CLAIRVOYANT:.2f}× the "
        f"clairvoyant floor, ≥ {TARGET_SAVING:.0%} cheaper than baseline-schedule at equal or "
        "better service:"
    )
    for family, checks in verdicts:
        print(f"  {family}:")
        for text, ok, value in checks:
            print(f"    [{'met' if ok else 'NOT met'}] {text}: {value}")


# -- memory -----------------------------------------------------------------------------------

MEMORY_TARGET_MB = 200.0


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return out


def _kib(pid: int, path: str, key: str) -> int:
    try:
        with open(f"/proc/{pid}/{path}", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def bench_memory(pools: int = 20, days: int = 60) -> dict[str, float] | None:
    """Peak memory of ``cvi-autoscaler backtest`` and its workers on a ``pools`` × ``days``
    trace (sum over the process tree, sampled every 20 ms)."""
    if not os.path.isdir("/proc/self/task"):
        return None
    from scaler.traces import write_trace
    from tools.gen_traces import generate

    with tempfile.TemporaryDirectory() as tmp:
        trace_path = Path(tmp) / "trace.csv"
        config_path = Path(tmp) / "config.toml"
        profiles = [
            PoolProfile(
                f"pool-{i:02d}", ZONES[i % len(ZONES)], peak_calls=40 + 25 * (i % 10), seed=i
            )
            for i in range(pools)
        ]
        start = datetime(2026, 9, 7, tzinfo=UTC)
        write_trace(trace_path, generate(profiles, start, days))
        lines = [
            "[daemon]\ninterval_seconds = 60\n[azure]\n"
            f'subscription_id = "{SUB}"\nlocation = "westeurope"\n'
        ]
        for p in profiles:
            lines.append(
                f'[[pools]]\nname = "{p.name}"\n'
                f'resource_id = "/subscriptions/{SUB}/resourceGroups/bench/providers/'
                f'Microsoft.Compute/virtualMachineScaleSets/{p.name}"\n'
                'vcpus_per_instance = 4\nquota_family = "standardFSv2Family"\nmin = 1\nmax = 40\n'
                "[pools.metric]\nlag_minutes = 3\nwindow_minutes = 5\n"
                '[[pools.policies]]\ntype = "target-tracking"\ntarget_utilization = 0.7\n'
            )
        config_path.write_text("".join(lines), encoding="utf-8")
        command = [
            sys.executable, "-m", "scaler", "backtest", "--config", str(config_path),
            "--trace", str(trace_path), "--json",
        ]  # fmt: skip
        began = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peak_rss = peak_pss = 0
        procs = 0
        hwm: dict[int, int] = {}  # each process's own peak RSS (VmHWM)
        while child.poll() is None:
            tree = _tree(child.pid)
            procs = max(procs, len(tree))
            peak_rss = max(peak_rss, sum(_kib(p, "status", "VmRSS:") for p in tree))
            peak_pss = max(peak_pss, sum(_kib(p, "smaps_rollup", "Pss:") for p in tree))
            for p in tree:
                hwm[p] = max(hwm.get(p, 0), _kib(p, "status", "VmHWM:"))
            time.sleep(0.02)
        took = time.perf_counter() - began
        if child.returncode != 0:
            why = child.stderr.read().decode()[-500:] if child.stderr else ""
            print(f"(memory bench failed: {why})")
            return None
    return {
        "rss_mb": peak_rss / 1024.0,
        "pss_mb": peak_pss / 1024.0,
        "largest_mb": max(hwm.values(), default=0) / 1024.0,
        "processes": float(procs),
        "seconds": took,
    }


def write_figures(
    rows: list[dict[str, Any]] | None,
    speed: list[tuple[str, dict[str, float]]] | None = None,
    machine: str = "",
) -> None:
    """``bench/results.json`` and the documents' marked figures (``bench/figures.py``): the
    decision quality from ``rows`` and the backtest's speed from ``speed`` ((label, figures)
    per policy set, measured on ``machine``); a part that did not run keeps what
    ``results.json`` says."""
    import json

    from bench import figures

    results: dict[str, Any] = figures.load() if figures.RESULTS.exists() else {}
    if rows is not None:
        labels = {label for label, _, _ in QUALITY_RUNS}
        if {r["config"] for r in rows} != labels:
            print("(--write-docs: not every example config ran; nothing written)", file=sys.stderr)
            return
        kept = results.get("speed")
        results = figures.results_of(rows, trace=str(TRACE.relative_to(ROOT)), scored_days=28)
        if kept is not None:
            results["speed"] = kept
    if speed:
        results["speed"] = figures.speed_of(speed, machine=machine, target_s=SPEED_TARGET_S)
    if "configs" not in results:
        print("(--write-docs: no quality results yet; run without --skip-quality)", file=sys.stderr)
        return
    figures.RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    changed = figures.write_documents(results)
    done = ", ".join(str(p.relative_to(ROOT)) for p in changed) or "no document changed"
    print(f"\nwrote {figures.RESULTS.relative_to(ROOT)}; {done}")


SPEED_SETS: tuple[tuple[str, Any], ...] = (
    ("target tracking", lambda: None),
    ("examples/recommended.toml's policy set", recommended_policies),
)
"""The speed bench's policy sets: (label, the policies of every pool)."""
SPEED_TARGET_S = 5.0
"""30 days × 10 pools × 1 minute in under this many seconds (wall, default workers, 2 cores)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs of the speed bench")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-held-out", action="store_true", help="no held-out traces")
    parser.add_argument("--skip-families", action="store_true", help="no scenario families")
    parser.add_argument("--skip-memory", action="store_true", help="no 20-pool 60-day run")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(FAMILY_SEEDS))
    parser.add_argument("--family", action="append", choices=list(FAMILIES))
    parser.add_argument("--markdown", action="store_true", help="tables as Markdown")
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="save the quality and speed results in bench/results.json and rewrite the figures "
        "marked <!-- bench:… --> in README.md and docs/ (figures.DOCUMENTS) from them (a part "
        "skipped keeps its earlier figures)",
    )
    args = parser.parse_args()
    quality = None
    if not args.skip_quality:
        quality = bench_quality()
        print_quality(quality, args.markdown)
        if not args.skip_held_out:
            print_held_out(bench_held_out(), args.markdown)
    if not args.skip_families:
        print_families(bench_families(args.family or list(FAMILIES), args.seeds), args.markdown)
    from bench.scale import machine

    speed = []
    where = machine()  # its load average: how busy the machine was as the timing began
    for label, policies in () if args.skip_speed else SPEED_SETS:
        s = bench_speed(max(1, args.runs), policies())
        speed.append((label, s))
        print(
            f"\nSpeed: 30 days × 1 minute × 10 pools = {s['pool_steps']:,.0f} pool-steps "
            f"({label}, one tick a minute)\n"
            f"  median {s['median_s']:.2f} s of {s['runs']:.0f} runs ({s['min_s']:.2f}–"
            f"{s['max_s']:.2f} s; {s['steps_per_s']:,.0f} pool-steps/s; {s['cpu_s']:.1f} CPU-s "
            f"with the workers') with the default workers; {s['median_one_process_s']:.2f} s in "
            f"one process\n"
            f"  peak RSS {s['rss_mb']:.0f} MB (this process), {s['worker_rss_mb']:.0f} MB "
            f"(largest worker); target < {SPEED_TARGET_S:g} s: "
            f"{'met' if s['median_s'] < SPEED_TARGET_S else 'NOT met'} ({os.cpu_count()} CPUs "
            "here)"
        )
    if args.write_docs and (quality is not None or speed):
        write_figures(quality, speed, where)
    if not args.skip_memory:
        m = bench_memory()
        if m is not None:
            print(
                f"\nMemory: cvi-autoscaler backtest on 20 pools × 60 days × 1 minute "
                f"({m['seconds']:.1f} s, {m['processes']:.0f} processes at most): peak of the "
                f"process tree {m['rss_mb']:.0f} MB RSS summed (pages a forked worker shares "
                f"counted in each process), {m['pss_mb']:.0f} MB PSS (shared pages counted "
                f"once); largest process {m['largest_mb']:.0f} MB; target < "
                f"{MEMORY_TARGET_MB:.0f} MB RSS summed: "
                f"{'met' if m['rss_mb'] < MEMORY_TARGET_MB else 'NOT met'}"
            )


if __name__ == "__main__":
    main()
