"""Memory per pool: the load history and the predictive forecaster's state after weeks.

What a pool of ``examples/recommended.toml``'s policy set (schedule floor, predictive, target
tracking) holds in the daemon's memory after ``--days`` of uptime, measured in this process:

* **the load history**: ``--pools`` rolling stores (``scaler.core.history.ArrayHistory``) as the
  daemon's ``Ticker`` makes them (the capacity ``history_minutes`` of the pool's policies), each
  put one reading a minute of whole call counts (``scaler.loadgen``'s business days; as the
  daemon's ``_remember`` puts them) for ``--days`` days. Reported per pool: the buckets kept,
  the bytes a bucket, ``sys.getsizeof`` of the store's buffer (its allocation: the buckets, the
  chunk of old ones not yet dropped, the array's spare room) and what ``tracemalloc`` still
  traces after the fill (every allocation the stores made and hold, their objects included),
  and the same store of doubles for comparison (a pool whose readings are not float32: a
  fractional average, a CPU proxy).
* **the forecaster**: the policy set asked every ``--tick-minutes`` over the same days on
  ``--forecaster-pools`` pools (a day of history before the first ask, as at a start with
  backfill), ``Forecaster.state_bytes()`` sampled every simulated day; its largest value is the
  per-pool figure (the state is bounded by the horizon and the seasons, not by the weeks run).

The fleet figure is the measured history bytes at each size plus the forecaster's largest
per-pool figure times the pools (not measured at fleet size: asking 1,000 forecasters for five
weeks takes an hour). The process's own RSS (interpreter, SDKs, HTTP) is not in it: the
endurance bench (``bench/endurance.py``) measures the daemon process whole.

Usage: ``python bench/memory.py [--pools 200,1000] [--days 35] [--forecaster-pools 6]
[--write-docs NAME]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running without installing the package
    sys.path.insert(0, str(ROOT))

from bench.figures import run_pasted, write_docs_option  # noqa: E402
from bench.scale import machine  # noqa: E402
from scaler.config import load_config  # noqa: E402
from scaler.config_model import PoolConfig  # noqa: E402
from scaler.core import MetricReading, PoolState  # noqa: E402
from scaler.core.history import ArrayHistory  # noqa: E402
from scaler.core.types import PolicyContext  # noqa: E402
from scaler.kinds import limits_of  # noqa: E402
from scaler.loadgen import PoolProfile, generate  # noqa: E402
from scaler.policyset import build_policies  # noqa: E402
from scaler.tick import history_minutes  # noqa: E402

START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
"""A Monday, 00:00 UTC: the simulated start (as ``bench/endurance.py``)."""
CONFIG = ROOT / "examples" / "recommended.toml"
ZONES = ("Europe/London", "America/New_York", "Asia/Singapore")
SERIES = 6
"""Distinct load series the history fill cycles through (pool ``k`` reads series ``k % 6``):
what a bucket costs does not depend on the count in it, only on whether it is a float32."""


def recommended() -> tuple[PoolConfig, str]:
    """The first pool of ``examples/recommended.toml``: (its config, the default location)."""
    config = load_config(CONFIG, environ={"CVI_AUTOSCALER_PEXIP_PASSWORD": "x"}, offline=True)
    return config.pools[0], config.azure.location


def loads(count: int, days: int) -> list[list[int | None]]:
    """``count`` pools' calls a minute for ``days`` days (whole counts, business days in three
    time zones, peaks of 40–190 calls)."""
    profiles = [
        PoolProfile(
            name=f"p{k}", timezone=ZONES[k % len(ZONES)], peak_calls=40.0 + 30.0 * k, seed=k
        )
        for k in range(count)
    ]
    out: list[list[int | None]] = [[] for _ in profiles]
    index = {p.name: k for k, p in enumerate(profiles)}
    for _, name, calls in generate(profiles, START, days):
        out[index[name]].append(calls)
    return out


def filled(series: Sequence[int | None], capacity: int, typecode: str = "f") -> ArrayHistory:
    """A rolling store as the daemon keeps it (``typecode``: ``"d"`` for a store of doubles),
    put each minute's reading half a minute into the minute."""
    t0 = START.timestamp()
    values: Sequence[float] = array("d") if typecode == "d" else ()
    h = ArrayHistory(start=t0, capacity=capacity, values=values)
    put = h.put
    for minute, calls in enumerate(series):
        if calls is not None:
            put(t0 + 60.0 * minute + 30.0, calls)
    return h


def largest_allocation(series: Sequence[int | None], capacity: int, days: int) -> int:
    """The largest ``sys.getsizeof`` of a store's buffer, sampled every hour while it is filled
    for ``days`` days: past the capacity, old buckets go a chunk at a time, so the store holds
    up to 1/16 more before each drop."""
    t0 = START.timestamp()
    h = ArrayHistory(start=t0, capacity=capacity)
    largest = 0
    for minute, calls in enumerate(series[: days * 1440]):
        if calls is not None:
            h.put(t0 + 60.0 * minute + 30.0, calls)
        if minute % 60 == 59:
            largest = max(largest, sys.getsizeof(h.buffer()[1]))
    return largest


@dataclass(frozen=True)
class HistoryFigure:
    pools: int
    buckets: int
    bytes_per_bucket: int
    allocated: int
    """``sys.getsizeof`` of one store's buffer (all stores alike: the same puts)."""
    traced: int
    """Bytes ``tracemalloc`` traces after the fill, for all the stores."""
    seconds: float


def history_figure(pools: int, series: list[list[int | None]], capacity: int) -> HistoryFigure:
    """``pools`` stores filled from ``series`` (cycled), measured."""
    began = time.monotonic()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        stores = [filled(series[k % len(series)], capacity) for k in range(pools)]
        traced = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    sizes = {sys.getsizeof(h.buffer()[1]) for h in stores}
    widths = {h.bytes_per_bucket for h in stores}
    assert len(sizes) == 1 and len(widths) == 1, (sizes, widths)
    return HistoryFigure(
        pools=pools,
        buckets=len(stores[0]),
        bytes_per_bucket=widths.pop(),
        allocated=sizes.pop(),
        traced=traced,
        seconds=time.monotonic() - began,
    )


def forecaster_bytes(series: list[list[int | None]], tick_minutes: int) -> list[int]:
    """Per pool, the largest ``Forecaster.state_bytes()`` sampled daily while the policy set is
    asked every ``tick_minutes`` (from the second day on) over ``series``."""
    from policies.predictive import Predictive

    pool, location = recommended()
    limits = limits_of(pool, location)
    capacity = history_minutes(build_policies(pool))
    t0 = START.timestamp()
    largest = []
    for calls in series:
        (policy,) = build_policies(pool)
        predictive = next(p for p in policy.parts if isinstance(p, Predictive))  # type: ignore[attr-defined]
        h = ArrayHistory(start=t0, capacity=capacity)
        current, sizes = limits.min, [0]
        for minute, value in enumerate(calls):
            if value is not None:
                h.put(t0 + 60.0 * minute + 30.0, value)
            if minute < 1440 or minute % tick_minutes:
                continue
            reading = MetricReading.ok(value) if value is not None else MetricReading.stale()
            ctx = PolicyContext(
                t0 + 60.0 * (minute + 1), current, value, limits, reading, PoolState(), h
            )
            answer = policy.recommend(ctx)
            if answer is not None:
                current = min(max(answer.desired, limits.min), limits.max)
            if minute % 1440 == 0:
                sizes.append(predictive.state_bytes())
        sizes.append(predictive.state_bytes())
        largest.append(max(sizes))
    return largest


def run(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in args.pools.split(",")]
    pool, _ = recommended()
    capacity = history_minutes(build_policies(pool))
    print(
        f"memory per pool: {CONFIG.relative_to(ROOT)}'s policy set, whole call counts "
        f"(scaler.loadgen), {args.days} simulated days from {START:%Y-%m-%d}; {machine()}"
    )
    print(
        f"load history kept per pool: {capacity:,} minutes (history_minutes of the set), "
        "one reading put a minute"
    )
    series = loads(SERIES, args.days)
    print("store | pools | buckets/pool | bytes/bucket | allocated B/pool | traced B/pool | MB")
    figures = []
    for n in sizes:
        f = history_figure(n, series, capacity)
        figures.append(f)
        print(
            f"float32 | {n} | {f.buckets:,} | {f.bytes_per_bucket} | {f.allocated:,} | "
            f"{f.traced // n:,} | {f.traced / 2**20:.1f}"
        )
    weeks = 6 * 7
    peak = largest_allocation(series[0] * (weeks // args.days + 1), capacity, weeks)
    print(
        f"float32 | 1 | over {weeks} days, sampled hourly: largest allocation {peak:,} B "
        f"({peak / capacity:.2f} B a minute kept: the old buckets dropped a chunk at a time)"
    )
    doubles = filled(series[0], capacity, "d")
    d_bytes = sys.getsizeof(doubles.buffer()[1])
    print(
        f"doubles | 1 | {len(doubles):,} | {doubles.bytes_per_bucket} | {d_bytes:,} | | "
        f"(a pool whose readings are not float32; {d_bytes / figures[0].allocated:.2f}×)"
    )
    state = forecaster_bytes(loads(args.forecaster_pools, args.days), args.tick_minutes)
    top = max(state)
    print(
        f"forecaster state (Forecaster.state_bytes, largest of daily samples), "
        f"{len(state)} pools, a tick every {args.tick_minutes} min: "
        f"{min(state):,}–{top:,} B a pool"
    )
    for f in figures:
        per_pool = f.traced // f.pools + top
        print(
            f"{f.pools} pools at {args.days} days: {per_pool:,} B a pool (history "
            f"{f.traced // f.pools:,} + forecaster {top:,}), "
            f"{per_pool * f.pools / 2**20:.1f} MB in all; at most {peak + top:,} B a pool "
            f"after weeks, {(peak + top) * f.pools / 2**20:.1f} MB"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--pools", default="200,1000", help="fleet sizes, comma-separated")
    ap.add_argument("--days", type=int, default=35, help="simulated days (five weeks: 35)")
    ap.add_argument("--forecaster-pools", type=int, default=6)
    ap.add_argument("--tick-minutes", type=int, default=5)
    write_docs_option(ap)
    args = ap.parse_args(argv)
    if args.write_docs:
        return run_pasted(args.write_docs, "bench/memory.py", argv, lambda: run(args))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
