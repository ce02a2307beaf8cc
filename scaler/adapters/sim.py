"""The embedded simulator: in-memory metrics, quota and scale sets on a virtual clock.

It implements the same ports as the Azure adapters, so the real daemon loop runs on it unchanged
(``cvi-autoscaler demo``). Its model, in one place:

* **Demand** comes from a trace (calls per step); where the trace's metric is unavailable the
  demand carries on at its last known level, and only the *metric* is unknown.
* **Metrics** lag: a bucket becomes visible ``ingestion_delay_seconds`` after it closes, as Azure
  Monitor's do; before that, and in trace gaps, it is null.
* **Scale sets**: a resize takes effect at once for billing and quota; each new instance serves
  calls ``boot_minutes`` later; the resize operation itself stays in flight ``lro_seconds``.
  Scale-in removes the youngest instances first (those not yet serving go first).
* **Capacity** is ``ready instances × calls_per_instance``; demand above it is unserved.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from scaler.config_model import Config, PoolConfig
from scaler.core.metrics import reduce_window
from scaler.core.types import MetricReading, QuotaUsage
from scaler.core.victims import InstanceActions
from scaler.errors import PermanentError
from scaler.ports import Clock, PoolStatus, Preflight
from scaler.traces import Trace


class ManualClock:
    """A clock that moves only when told to (tests, backtests)."""

    def __init__(self, start: float) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def set(self, now: float) -> None:
        self._now = now


class VirtualClock:
    """Real time sped up ``speed`` times from ``start`` (the demo's day in a minute)."""

    def __init__(self, start: float, speed: float) -> None:
        self.start = start
        self.speed = speed
        self._t0 = time.monotonic()

    def now(self) -> float:
        return self.start + (time.monotonic() - self._t0) * self.speed

    def restart(self) -> None:
        """Begin again at ``start`` (call right before the loop starts)."""
        self._t0 = time.monotonic()


@dataclass(slots=True)
class SimPool:
    """One simulated scale set and the demand it faces."""

    config: PoolConfig
    demand: list[float]
    metric: list[float | None]
    ready_at: list[float] = field(default_factory=list)
    """One entry per instance: when it starts serving calls (sorted)."""
    busy_until: float = 0.0
    resizes: int = 0

    @property
    def capacity(self) -> int:
        return len(self.ready_at)

    def ready(self, now: float) -> int:
        return bisect.bisect_right(self.ready_at, now)


UNLIMITED_VCPUS = 1_000_000
"""The limit of a quota line the simulator was not given."""


@dataclass(frozen=True, slots=True)
class SimResize:
    """A simulated resize operation: done once the virtual clock passes ``done_at``."""

    clock: Clock
    done_at: float
    changed: bool = True

    def done(self) -> bool:
        return self.clock.now() >= self.done_at

    def result(self, timeout: float | None = None) -> None:
        if not self.done():
            raise TimeoutError("simulated resize still running")

    def continuation_token(self) -> str | None:
        return None


@dataclass(slots=True)
class Totals:
    """What the simulated day cost and how well it served, per pool."""

    instance_minutes: float = 0.0
    vcpu_minutes: float = 0.0
    call_minutes: float = 0.0
    unserved_call_minutes: float = 0.0
    peak_shortfall: float = 0.0
    max_instances: int = 0


class SimCloud:
    """Metrics source, pool actuator and quota reader over simulated pools.

    ``quota_limits`` maps a quota name (``cores``, a family) to its limit in vCPUs; usage counts
    the simulated pools plus ``other_usage`` (vCPUs used by things the daemon does not manage).
    """

    def __init__(
        self,
        config: Config,
        trace: Trace,
        *,
        clock: Clock,
        ingestion_delay_seconds: float = 120.0,
        lro_seconds: float = 60.0,
        quota_limits: Mapping[str, int] | None = None,
        other_usage: Mapping[str, int] | None = None,
        account_from: float | None = None,
    ) -> None:
        self.config = config
        self.trace = trace
        self.clock = clock
        self.ingestion_delay = ingestion_delay_seconds
        self.lro_seconds = lro_seconds
        self.quota_limits = dict(quota_limits or {})
        self.other_usage = dict(other_usage or {})
        self.start = trace.start.timestamp()
        self.step = float(trace.step_seconds)
        self.pools: dict[str, SimPool] = {}
        for pool in config.pools:
            series = trace.calls.get(pool.name)
            if series is None:
                raise PermanentError(f"trace has no pool {pool.name!r}")
            demand: list[float] = []
            last = 0.0
            for v in series:
                last = last if v is None else float(v)
                demand.append(last)
            self.pools[pool.name] = SimPool(pool, demand, list(series), [self.start] * pool.min)
        self.totals = {name: Totals() for name in self.pools}
        self._accounted_to = self.start if account_from is None else account_from

    # -- helpers ------------------------------------------------------------------------------

    def index(self, t: float) -> int:
        """The trace step holding time ``t`` (clamped to the trace)."""
        i = int((t - self.start) // self.step)
        return min(max(i, 0), self.trace.length - 1)

    def demand(self, pool: str, t: float) -> float:
        return self.pools[pool].demand[self.index(t)]

    def account(self, now: float) -> None:
        """Add up cost and service for every whole step since the last call."""
        while self._accounted_to + self.step <= now:
            t = self._accounted_to
            i = self.index(t)
            minutes = self.step / 60.0
            for name, sim in self.pools.items():
                tot = self.totals[name]
                cap = sim.capacity
                served = sim.ready(t) * sim.config.calls_per_instance
                want = sim.demand[i]
                short = max(0.0, want - served)
                tot.instance_minutes += cap * minutes
                tot.vcpu_minutes += cap * sim.config.vcpus_per_instance * minutes
                tot.call_minutes += want * minutes
                tot.unserved_call_minutes += short * minutes
                tot.peak_shortfall = max(tot.peak_shortfall, short)
                tot.max_instances = max(tot.max_instances, cap)
            self._accounted_to += self.step

    # -- MetricsSource ------------------------------------------------------------------------

    def read(self, pools: Sequence[PoolConfig], now: float) -> Mapping[str, MetricReading]:
        out: dict[str, MetricReading] = {}
        visible_before = now - self.ingestion_delay
        for pool in pools:
            sim = self.pools[pool.name]
            m = pool.metric
            span = (m.window_minutes + m.lag_minutes + 1 + m.history_minutes) * 60.0
            first = self.index(now - span)
            last = self.index(now)
            points: list[tuple[float, float | None]] = []
            for i in range(first, last + 1):
                t = self.start + i * self.step
                visible = t + self.step <= visible_before
                points.append((t, sim.metric[i] if visible else None))
            out[pool.name] = reduce_window(
                points,
                now=now,
                window_seconds=m.window_minutes * 60.0,
                lag_seconds=m.lag_minutes * 60.0,
                reduce=m.reduce,
                bucket_seconds=self.step,
                history_seconds=m.history_minutes * 60.0,
            )
        return out

    # -- PoolActuator -------------------------------------------------------------------------

    def observe(self, pool: PoolConfig) -> PoolStatus:
        sim = self.pools[pool.name]
        busy = self.clock.now() < sim.busy_until
        return PoolStatus(
            sim.capacity,
            "Updating" if busy else "Succeeded",
            quota_family=pool.quota_family or "standardFSv2Family",
        )

    def resize(self, pool: PoolConfig, capacity: int) -> SimResize:
        now = self.clock.now()
        self.account(now)
        sim = self.pools[pool.name]
        if capacity > sim.capacity:
            ready = now + pool.boot_minutes * 60.0
            sim.ready_at.extend([ready] * (capacity - sim.capacity))
        else:
            del sim.ready_at[capacity:]
        sim.busy_until = now + self.lro_seconds
        sim.resizes += 1
        return SimResize(self.clock, sim.busy_until)

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> SimResize:
        """The simulator sizes pools as a whole: only a capacity write is meaningful."""
        if actions.capacity is None:
            if not actions.empty:
                raise PermanentError(f"pool {pool.name}: the simulator sizes pools as a whole")
            return SimResize(self.clock, self.clock.now(), changed=False)
        return self.resize(pool, actions.capacity)

    def preflight(self, pool: PoolConfig) -> Preflight:
        return Preflight()

    def resume(self, pool: PoolConfig, token: str) -> SimResize:
        raise PermanentError(f"pool {pool.name}: the simulator has nothing to resume")

    # -- QuotaReader --------------------------------------------------------------------------

    def usage(self, location: str) -> Mapping[str, QuotaUsage]:
        out: dict[str, QuotaUsage] = {}
        # Azure's usage.list always lists the regional total and every family in use; the
        # simulator gives those it was not told about a limit nothing reaches
        limits = dict(self.quota_limits)
        for sim in self.pools.values():
            for name in ("cores", sim.config.quota_family or "standardFSv2Family"):
                limits.setdefault(name, UNLIMITED_VCPUS)
        for name, limit in limits.items():
            used = self.other_usage.get(name, 0)
            for sim in self.pools.values():
                cfg = sim.config
                if self.config.quota_scope_of(cfg) != location:
                    continue
                if name in ("cores", cfg.quota_family or "standardFSv2Family"):
                    used += sim.capacity * cfg.vcpus_per_instance
            out[name] = QuotaUsage(name, used, limit)
        return out
