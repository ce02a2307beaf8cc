"""Soak: the real daemon tick for 14 simulated days over 20 pools, under random faults.

Issue 11 ("prove the class is closed"), ``make soak``. In process, on a virtual clock: the
simulator (``scaler.adapters.sim``) behind the faulty adapters of ``tests/test_invariants.py``,
which check every write when it is asked for (within ``min``/``max`` and the tick's vCPU
headroom, no scale-in after an unusable read). Each pool's reads fail on 5 % of ticks, by a kind
drawn from all of them (observe raises, metrics raise, missing, stale, a quota read fails or
lacks the family line); the wall clock steps (±1 h, then back) and the process "dies" (the Daemon
is dropped mid-life without a clean stop and a new one restores from the state file, which is
sometimes corrupted first). Prints a summary table; exits 1 on any invariant violation or an
unhandled exception, or when RSS grew by 10 MB or more after warm-up.

    python tools/soak.py [--days 14] [--pools 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from structlog.testing import capture_logs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scaler.adapters.sim import ManualClock, SimCloud
from scaler.config import Config, parse_config
from scaler.daemon import Daemon
from scaler.state import StateFile, StateStore
from scaler.traces import Trace
from tests.conftest import config_doc, pool_table
from tests.test_invariants import Faults, FaultyCloud, Violation

START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
STEP = 60
KINDS = ("observe", "metrics-raise", "missing", "stale", "quota-raise", "quota-partial")


def rss_mb() -> float:
    """Resident set size now, in MB (Linux /proc; ru_maxrss as a fallback)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def demand(rng: random.Random, minutes: int, peak: float) -> list[float | None]:
    """Business-hours load with top-of-hour steps, noise and 1 % gaps."""
    out: list[float | None] = []
    for m in range(minutes):
        hour = (m // 60) % 24 + (m % 60) / 60.0
        weekday = (m // 1440) % 7 < 5
        day = max(0.0, math.sin(math.pi * (hour - 7.0) / 11.0)) if 7 <= hour <= 18 else 0.0
        step = 1.15 if m % 60 < 5 else 1.0
        level = peak * day * step * (1.0 if weekday else 0.2) + rng.uniform(0, 3)
        out.append(None if rng.random() < 0.01 else round(level, 1))
    return out


def build(pools: int, days: int, rng: random.Random, state: Path) -> tuple[Config, Trace]:
    names = [f"pool{i:02d}" for i in range(pools)]
    fast = {"scale_down": {"stabilization_seconds": 300, "max_percent": 50}}
    tables = []
    for i, n in enumerate(names):
        t = pool_table(n, min=1 + i % 3, max=8 + i % 12, boot_minutes=10, behavior=fast)
        t["metric"] = {**t["metric"], "lag_minutes": 2, "window_minutes": 3}
        tables.append(t)
    doc = config_doc(*tables, daemon={"interval_seconds": STEP, "state_dir": str(state)})
    config = parse_config(doc, environ={})
    minutes = days * 1440 + 60
    calls = {n: demand(rng, minutes, rng.uniform(40, 200)) for n in names}
    return config, Trace(
        start=START, step_seconds=STEP, pools=tuple(names), calls=calls, length=minutes
    )


def draw_faults(rng: random.Random, config: Config, rate: float, seen: Counter[str]) -> Faults:
    faults = Faults()
    for pool in config.pools:
        if rng.random() >= rate:
            continue
        kind = rng.choice(KINDS)
        seen[kind] += 1
        if kind == "observe":
            faults.observe[pool.name] = "raise"
        elif kind == "metrics-raise":
            faults.read[pool.name] = "raise"
        elif kind in ("missing", "stale"):
            faults.read[pool.name] = kind
        elif kind == "quota-raise":
            faults.quota = "raise"
        else:
            faults.quota = "partial"
    return faults


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--pools", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fault-rate", type=float, default=0.05)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    began = time.monotonic()
    shm = Path("/dev/shm")  # the state file is fsynced every tick: keep it off the disk
    where = str(shm) if shm.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="cvi-soak-", dir=where) as tmp:
        state = Path(tmp)
        config, trace = build(args.pools, args.days, rng, state)
        clock = ManualClock(START.timestamp() + 10 * 60)
        sim = SimCloud(
            config,
            trace,
            clock=clock,
            quota_limits={"cores": args.pools * 40, "standardFSv2Family": args.pools * 40},
        )
        cloud = FaultyCloud(sim, config)
        store = StateStore(local=StateFile(state))

        def new_daemon() -> Daemon:
            d = Daemon(
                config=config, metrics=cloud, actuator=cloud, quota=cloud, clock=clock, store=store
            )
            d.restore()
            return d

        seen: Counter[str] = Counter()
        restarts = corrupted = steps = violations = crashes = 0
        ticks = failed = 0
        total = args.days * 1440 * 60 // STEP
        warm = total // 7
        rss_warm = rss_start = rss_mb()
        with capture_logs() as events:
            daemon = new_daemon()
            for n in range(total):
                if n == warm:
                    rss_warm = rss_mb()
                roll = rng.random()
                if roll < 0.001:  # kill -9: the object goes, no stop, no save beyond the tick's
                    restarts += 1
                    if rng.random() < 0.3:
                        (state / "state.json").write_bytes(rng.randbytes(rng.randint(0, 64)))
                        corrupted += 1
                    daemon = new_daemon()
                elif roll < 0.002:  # a wall-clock step, undone on the next tick
                    steps += 1
                    seen["clock-step"] += 1
                    delta = rng.choice((-3600.0, 3600.0))
                    clock.advance(delta)
                    cloud.begin(Faults())
                    try:
                        daemon.tick()
                    except Violation:
                        violations += 1
                    clock.advance(-delta)
                cloud.begin(draw_faults(rng, config, args.fault_rate, seen))
                try:
                    daemon.tick()
                except Violation as v:
                    violations += 1
                    print(f"VIOLATION at tick {n}: {v}", file=sys.stderr)
                except Exception as exc:  # anything the loop would log as tick.failed
                    crashes += 1
                    print(f"UNHANDLED at tick {n}: {type(exc).__name__}: {exc}", file=sys.stderr)
                ticks += 1
                clock.advance(STEP)
                if n % 50 == 0:  # keep memory flat: the soak counts, it does not keep logs
                    failed += sum(1 for e in events if e["event"] == "tick.failed")
                    events.clear()
            failed += sum(1 for e in events if e["event"] == "tick.failed")
        rss_end = rss_mb()
    growth = rss_end - rss_warm
    rows = [
        ("ticks", f"{ticks} (+{steps} on a stepped clock)"),
        ("pools", str(args.pools)),
        ("simulated days", str(args.days)),
        *((f"faults: {k}", str(seen[k])) for k in (*KINDS, "clock-step")),
        ("restarts (kill -9)", str(restarts)),
        ("state files corrupted", str(corrupted)),
        ("invariant violations", str(violations)),
        ("unhandled exceptions", str(crashes + failed)),
        ("resizes", str(sum(p.resizes for p in sim.pools.values()))),
        ("RSS start / warm / end MB", f"{rss_start:.1f} / {rss_warm:.1f} / {rss_end:.1f}"),
        ("RSS growth after warm-up", f"{growth:+.1f} MB"),
        ("wall time", f"{time.monotonic() - began:.0f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    ok = violations == 0 and crashes == 0 and failed == 0 and growth < 10.0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
