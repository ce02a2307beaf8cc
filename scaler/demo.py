"""``cvi-autoscaler demo``: the real daemon loop on the simulator, a working day in a minute.

The loop, the scheduler, ``decide()`` and the policies are exactly those of ``run``; only the
adapters are the simulator's and the clock runs ``speed`` times faster than real time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TextIO

from scaler.adapters.sim import SimCloud, VirtualClock
from scaler.config import load_config
from scaler.daemon import Daemon, PoolOutcome
from scaler.traces import load_trace

DEMO_QUOTA = {"cores": 160, "standardFSv2Family": 120}


@dataclass(frozen=True, slots=True)
class DemoSummary:
    pools: int
    resizes: int
    instance_hours: float
    vcpu_hours: float
    call_minutes: float
    unserved_call_minutes: float
    peak_instances: int
    real_seconds: float

    def line(self, start: datetime, end: datetime) -> str:
        share = 100.0 * self.unserved_call_minutes / self.call_minutes if self.call_minutes else 0
        return (
            f"day done ({start:%H:%M}-{end:%H:%M} UTC in {self.real_seconds:.0f} s): "
            f"{self.pools} pools, {self.resizes} resizes, {self.instance_hours:.1f} "
            f"instance-hours ({self.vcpu_hours:.0f} vCPU-hours), peak {self.peak_instances} "
            f"instances, {self.unserved_call_minutes:,.0f} of {self.call_minutes:,.0f} "
            f"call-minutes unserved ({share:.1f}%)"
        )


def _data(name: str) -> Path:
    return Path(str(resources.files("scaler") / "data" / name))


def run_demo(
    *,
    out: TextIO,
    speed: float = 1080.0,
    start_hour: int = 5,
    end_hour: int = 23,
    config_path: Path | None = None,
    trace_path: Path | None = None,
    stop: threading.Event | None = None,
) -> DemoSummary:
    """Run the day from ``start_hour`` to ``end_hour`` (UTC) and print decisions as they
    happen. 18 simulated hours at the default speed take one real minute."""
    config = load_config(config_path or _data("demo.toml"), environ={})
    names = [p.name for p in config.pools]
    trace = load_trace(trace_path or _data("demo-day.csv"), known_pools=names)
    day = trace.start.replace(hour=0, minute=0, second=0, microsecond=0)
    start = day + timedelta(hours=start_hour)
    end = day + timedelta(hours=end_hour)
    clock = VirtualClock(start.timestamp(), speed)
    cloud = SimCloud(
        config, trace, clock=clock, quota_limits=DEMO_QUOTA, account_from=start.timestamp()
    )
    stop = stop or threading.Event()
    feed = _Feed(out, cloud, names, since=start.timestamp(), stop=stop)
    out.write(
        f"cvi-autoscaler demo: {len(names)} pools on the simulator, {start:%Y-%m-%d} "
        f"{start:%H:%M}-{end:%H:%M} UTC, one tick every {config.daemon.interval_seconds:.0f} "
        f"simulated seconds ({speed:.0f}x real time)\n{feed.header()}"
    )
    daemon = Daemon(
        config=config, metrics=cloud, actuator=cloud, quota=cloud, clock=clock, on_tick=feed
    )
    began = time.monotonic()
    clock.restart()
    daemon.run(
        stop,
        period_seconds=config.daemon.interval_seconds / speed,
        until=lambda: clock.now() >= end.timestamp(),
    )
    cloud.account(min(clock.now(), end.timestamp()))
    summary = _summary(cloud, real_seconds=time.monotonic() - began)
    if not out.closed:
        try:
            out.write(summary.line(start, end) + "\n")
            out.flush()
        except BrokenPipeError:
            pass
    return summary


class _Feed:
    """The daemon's ``on_tick`` hook: one line per resize as it happens, and every pool once
    a simulated hour. A reader that goes away (``| head``) stops the demo quietly."""

    def __init__(
        self,
        out: TextIO,
        cloud: SimCloud,
        names: Sequence[str],
        *,
        since: float,
        stop: threading.Event,
    ) -> None:
        self.out, self.cloud, self.stop = out, cloud, stop
        self.width = max(len(n) for n in names)
        self.last_report = since - 3600.0

    def header(self) -> str:
        return (
            f"{'time':5}  {'pool':<{self.width}}  {'calls (metric seen)':22}  {'ready/cap':11}  "
            f"{'resize':8}  reason\n"
        )

    def __call__(self, now: float, outcomes: Sequence[PoolOutcome]) -> None:
        try:
            self._report(now, outcomes)
        except (BrokenPipeError, ValueError):  # the reader went away (`| head`): end quietly
            self.stop.set()

    def _report(self, now: float, outcomes: Sequence[PoolOutcome]) -> None:
        self.cloud.account(now)
        hourly = now - self.last_report >= 3600.0
        if hourly:
            self.last_report = now - (now % 3600.0)
        stamp = datetime.fromtimestamp(now, UTC).strftime("%H:%M")
        for o in outcomes:
            if hourly or o.applied:
                self.out.write(f"{stamp}  {self._line(o, now)}\n")
        self.out.flush()

    def _line(self, o: PoolOutcome, now: float) -> str:
        sim = self.cloud.pools[o.pool]
        calls = self.cloud.demand(o.pool, now)
        seen = (
            "   ?"
            if o.decision is None or o.decision.calls is None
            else (f"{o.decision.calls:4.0f}")
        )
        policy = o.decision.policy if o.decision is not None else None
        by = f" ({policy})" if o.applied and policy else ""
        cur = "?" if o.current is None else str(o.current)
        move = f"{cur:>2} -> {o.desired!s:<2}" if o.applied else f"{cur:>2}      "
        return (
            f"{o.pool:<{self.width}}  calls {calls:4.0f} (seen {seen})  "
            f"ready {sim.ready(now):>2}/{sim.capacity:<2}  {move}  {o.reason}{by}"
        )


def _summary(cloud: SimCloud, *, real_seconds: float) -> DemoSummary:
    """The day's totals over every pool of the simulator."""
    totals = cloud.totals.values()
    return DemoSummary(
        pools=len(cloud.pools),
        resizes=sum(s.resizes for s in cloud.pools.values()),
        instance_hours=sum(t.instance_minutes for t in totals) / 60.0,
        vcpu_hours=sum(t.vcpu_minutes for t in totals) / 60.0,
        call_minutes=sum(t.call_minutes for t in totals),
        unserved_call_minutes=sum(t.unserved_call_minutes for t in totals),
        peak_instances=max(t.max_instances for t in totals),
        real_seconds=real_seconds,
    )
