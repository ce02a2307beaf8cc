"""Regenerate the bundled synthetic call-load traces.

Writes ``scaler/data/demo-day.csv`` (one Wednesday, used by the daemon's demo) and
``examples/traces/two-regions-5w.csv`` (five weeks for back-tests; the first week is
warm-up history). Output is deterministic, so re-running it leaves the files unchanged
unless the load model or the scenario below changes. See ``examples/traces/README.md``.

Scenario families (``scenario(family, seed)``, ``FAMILIES``, defined in ``scaler.scenarios`` so
that the backtest can find the model behind a trace): load nobody tuned for, each deterministic
per seed, on the two pools of ``examples/recommended.toml``. ``--scenarios DIR`` writes each
trace with its unannounced events, family and seed beside it as ``<trace>.events.json`` (the
trace CSV itself stays the contract's three columns).

Usage: ``python tools/gen_traces.py`` from the repository root (the bundled traces), or
``python tools/gen_traces.py --scenarios DIR [--seeds 1 2 3] [--family NAME ...]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running without installing the package
    sys.path.insert(0, str(ROOT))

from scaler.loadgen import Gap, PoolProfile, Spike, generate  # noqa: E402
from scaler.scenarios import (  # noqa: E402
    FAMILIES,
    GROWTH_PER_WEEK,
    LONDON,
    NEW_YORK,
    Event,
    Scenario,
    scenario,
    write_scenario,
)
from scaler.traces import write_trace  # noqa: E402

__all__ = [
    "FAMILIES",
    "GROWTH_PER_WEEK",
    "Event",
    "Scenario",
    "five_weeks",
    "generate",
    "scenario",
    "write_scenario",
]

DEMO_START = datetime(2026, 11, 18, tzinfo=UTC)  # a Wednesday

FIVE_WEEKS_START = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday
FIVE_WEEKS_DAYS = 35
# Week 3: a bank-holiday-like Monday for the London pool only.
UK_HOLIDAY = date(2026, 10, 19)
# Week 4: an unannounced all-hands surge in New York (10:20-11:05 EDT).
SPIKES = (Spike("teams-connector-us", datetime(2026, 10, 29, 14, 20, tzinfo=UTC), 45, 3.0),)
# Weeks 2-5: metric outages (calls empty); demand carries on underneath.
GAPS = (
    Gap("teams-connector", datetime(2026, 10, 14, 10, 12, tzinfo=UTC), 12),
    Gap("teams-connector-us", datetime(2026, 10, 22, 15, 40, tzinfo=UTC), 7),
    Gap("teams-connector-us", datetime(2026, 10, 27, 13, 30, tzinfo=UTC), 5),
    Gap("teams-connector", datetime(2026, 11, 3, 8, 55, tzinfo=UTC), 18),
    Gap("teams-connector", datetime(2026, 11, 5, 16, 0, tzinfo=UTC), 20),
    Gap("teams-connector-us", datetime(2026, 11, 5, 16, 0, tzinfo=UTC), 20),
)


def five_weeks(
    seeds: tuple[int, int] = (LONDON.seed, NEW_YORK.seed),
) -> Iterator[tuple[datetime, str, int | None]]:
    """The five-week scenario's rows; other ``seeds`` (London, New York) give the same weeks,
    holiday, spike and gaps with other meetings (held-out traces for ``make bench``)."""
    london = PoolProfile(
        LONDON.name, LONDON.timezone, LONDON.peak_calls, holidays=(UK_HOLIDAY,), seed=seeds[0]
    )
    new_york = PoolProfile(NEW_YORK.name, NEW_YORK.timezone, NEW_YORK.peak_calls, seed=seeds[1])
    return generate((london, new_york), FIVE_WEEKS_START, FIVE_WEEKS_DAYS, spikes=SPIKES, gaps=GAPS)


# -- scenario families (in the package: ``scaler.scenarios``) ------------------------------------


def main() -> None:
    """Write the bundled traces (or, with ``--scenarios``, the scenario families)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=Path, help="write scenario traces to this directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--family", action="append", choices=list(FAMILIES))
    args = parser.parse_args()
    if args.scenarios is not None:
        for family in args.family or FAMILIES:
            for seed in args.seeds:
                began = time.perf_counter()
                path, _ = write_scenario(scenario(family, seed), args.scenarios)
                took = time.perf_counter() - began
                print(f"{path}: {path.stat().st_size / 1e6:.2f} MB in {took:.2f} s")
        return
    bundled()


def bundled() -> None:
    """Write both bundled traces and print their row counts and sizes."""
    demo = ROOT / "scaler" / "data" / "demo-day.csv"
    five = ROOT / "examples" / "traces" / "two-regions-5w.csv"
    jobs = (
        (demo, generate((LONDON, NEW_YORK), DEMO_START, 1)),
        (five, five_weeks()),
    )
    for path, rows in jobs:
        began = time.perf_counter()
        path.parent.mkdir(parents=True, exist_ok=True)
        count = write_trace(path, rows)
        took = time.perf_counter() - began
        size = path.stat().st_size
        print(f"{path.relative_to(ROOT)}: {count} rows, {size / 1e6:.2f} MB in {took:.2f} s")


if __name__ == "__main__":
    main()
