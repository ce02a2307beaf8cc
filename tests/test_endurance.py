"""The endurance bench's short form (``bench/endurance.py``), run by ``make test``: 200 pools
with the recommended set for a simulated week, the real daemon process (``run --dry-run``) on a
stepped clock against the fake Azure; it fails when the process grows (RSS beyond the load
history the policies keep, CPU per tick) over the second half of the week, when a tick fails or
overruns, or when 200 pools need 150 MB. ``make endurance`` runs the long form (200 and 1,000
pools, six weeks)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.endurance import report, run_fleet  # noqa: E402


@pytest.mark.long
def test_a_simulated_week_of_200_pools_does_not_grow() -> None:
    # The recommended set: schedule floor, predictive and target tracking, so every part the
    # daemon keeps per pool is in it (target tracking alone is the bench's: make endurance)
    run = run_fleet(
        200,
        days=7,
        step_minutes=60,
        latency=0.0,
        bodies="example",
        sample_hours=12,
        one_core=False,
        policies="recommended",
        validate_runs=0,  # validate's time is the long form's figure
    )
    # The CPU of a quiet tick (the lower quartile of each window's ticks) moves a few per cent
    # from one run to the next on a shared machine; a 25 % bound still fails the growth this
    # guards against (a cache that grew with the history seen doubled the tick's CPU over
    # weeks), and the bench's long form holds the 5 % target
    missed = [label for label, ok in report(run, cpu_growth=0.25) if not ok]
    assert run.samples and run.samples[-1].day >= 7.0
    assert not missed, missed
