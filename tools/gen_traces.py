"""Regenerate the bundled synthetic call-load traces.

Writes ``scaler/data/demo-day.csv`` (one Wednesday, used by the daemon's demo) and
``examples/traces/two-regions-5w.csv`` (five weeks for back-tests; the first week is
warm-up history). Output is deterministic, so re-running it leaves the files unchanged
unless the load model or the scenario below changes. See ``examples/traces/README.md``.

Usage: ``python tools/gen_traces.py`` from the repository root.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running without installing the package
    sys.path.insert(0, str(ROOT))

from scaler.loadgen import Gap, PoolProfile, Spike, generate  # noqa: E402
from scaler.traces import write_trace  # noqa: E402

LONDON = PoolProfile("teams-connector", "Europe/London", peak_calls=150, seed=1)
NEW_YORK = PoolProfile("teams-connector-us", "America/New_York", peak_calls=90, seed=2)

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


def main() -> None:
    """Write both traces and print their row counts and sizes."""
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
