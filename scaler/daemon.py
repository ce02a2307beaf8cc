"""The loop: observe → decide → act, once per interval.

Each tick re-reads every pool's real capacity (level-triggered: a change made in the portal is
simply the new truth), reads all metrics in batches and each region's quota once, lets the pure
core decide, and writes only where the decision differs from what Azure has. A resize is started
and not waited for: while it runs the pool holds (``ResizeInFlight``), so one slow scale set never
stalls the others. Errors of one pool never stop the loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from scaler.config import Config, PoolConfig
from scaler.core import (
    Decision,
    MetricReading,
    MetricStatus,
    Observation,
    PoolPlan,
    PoolState,
    QuotaUsage,
    Reason,
    plan_tick,
    record_scale,
)
from scaler.core.history import ArrayHistory
from scaler.core.metrics import to_calls
from scaler.errors import AdapterError
from scaler.logs import get_logger
from scaler.ports import Clock, MetricsSource, PoolActuator, PoolStatus, QuotaReader, ResizeHandle

HISTORY_MINUTES = 5 * 7 * 24 * 60
"""Minutes of load kept per pool for policies that look back (five weeks, ~400 kB a pool)."""


@dataclass(frozen=True, slots=True)
class PoolOutcome:
    """What a tick did for one pool; ``once --json`` prints these."""

    pool: str
    current: int | None
    desired: int | None
    reason: str
    applied: bool = False
    dry_run: bool = False
    error: str | None = None
    decision: Decision | None = None

    def to_json(self) -> dict[str, Any]:
        d = self.decision
        return {
            "pool": self.pool,
            "current": self.current,
            "desired": self.desired,
            "reason": self.reason,
            "applied": self.applied,
            "dry_run": self.dry_run,
            "recommended": d.recommended if d else None,
            "policy": d.policy if d else None,
            "calls": d.calls if d else None,
            "metric_status": str(d.metric_status) if d else None,
            "steps": [[s.stage, s.value, str(s.reason)] for s in d.steps] if d else [],
            "detail": (d.detail if d else "") or None,
            "error": self.error,
        }


@dataclass(slots=True)
class _InFlight:
    handle: ResizeHandle
    target: int
    started: float


class Daemon:
    """One daemon: its config, its adapters (injected), and the state carried between ticks."""

    def __init__(
        self,
        *,
        config: Config,
        metrics: MetricsSource,
        actuator: PoolActuator,
        quota: QuotaReader,
        clock: Clock,
        dry_run: bool | None = None,
        on_tick: Callable[[float, Sequence[PoolOutcome]], None] | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.actuator = actuator
        self.quota = quota
        self.clock = clock
        self.dry_run = config.daemon.dry_run if dry_run is None else dry_run
        self.on_tick = on_tick
        self.states: dict[str, PoolState] = {p.name: PoolState() for p in config.pools}
        self.inflight: dict[str, _InFlight] = {}
        self.last: dict[str, PoolOutcome] = {}
        self.usage: dict[str, Mapping[str, QuotaUsage]] = {}
        self.ticks = 0
        self.last_tick_at: float | None = None
        self.stopping = threading.Event()
        self._tick_lock = threading.Lock()
        self._limits = {p.name: p.limits(config.azure.location) for p in config.pools}
        self._behaviors = {p.name: p.behavior.to_core() for p in config.pools}
        self.history = {
            p.name: ArrayHistory(start=clock.now() // 60.0 * 60.0, capacity=HISTORY_MINUTES)
            for p in config.pools
        }
        self.log = get_logger()

    # -- one pass -----------------------------------------------------------------------------

    def tick(self) -> list[PoolOutcome]:
        """Observe, decide and act once for every pool."""
        with self._tick_lock:
            return self._tick()

    def _tick(self) -> list[PoolOutcome]:
        now = self.clock.now()
        pools = self.config.pools
        statuses: dict[str, PoolStatus] = {}
        failed: dict[str, str] = {}
        for pool in pools:
            try:
                statuses[pool.name] = self.actuator.observe(pool)
            except AdapterError as err:
                failed[pool.name] = str(err)
                self.log.warning("pool.observe_failed", pool=pool.name, error=str(err))
        self._reap_finished()

        readable = [p for p in pools if p.name in statuses]
        readings: Mapping[str, MetricReading] = {}
        if readable:
            try:
                readings = self.metrics.read(readable, now)
            except AdapterError as err:
                self.log.warning("metrics.read_failed", error=str(err))
        self.usage = self._read_quota(readable)

        plans = []
        for pool in readable:
            status = statuses[pool.name]
            reading = readings.get(pool.name) or MetricReading.missing("no reading")
            reading = to_calls(
                reading,
                meaning=pool.metric.meaning,
                current=status.capacity,
                calls_per_instance=pool.calls_per_instance,
            )
            self._remember(pool.name, reading)
            plans.append(
                PoolPlan(
                    limits=self._limits[pool.name],
                    behavior=self._behaviors[pool.name],
                    policies=pool.policies_built,
                    observation=Observation(
                        current=status.capacity,
                        metric=reading,
                        in_flight=status.in_flight or pool.name in self.inflight,
                    ),
                    state=self.states[pool.name],
                    history=self.history[pool.name],
                )
            )
        decisions = plan_tick(pools=plans, usage=self.usage, now=now)

        by_name = {p.name: p for p in pools}
        outcomes: list[PoolOutcome] = []
        for decision in decisions:
            outcomes.append(self._act(by_name[decision.pool], decision, now))
        for name, error in failed.items():
            prev = self.last.get(name)
            outcomes.append(
                PoolOutcome(
                    pool=name,
                    current=prev.current if prev else None,
                    desired=prev.current if prev else None,
                    reason=Reason.OBSERVE_FAILED,
                    error=error,
                )
            )
        order = {p.name: i for i, p in enumerate(pools)}
        outcomes.sort(key=lambda o: order[o.pool])
        for o in outcomes:
            self.last[o.pool] = o
        self.ticks += 1
        self.last_tick_at = now
        if self.on_tick is not None:
            self.on_tick(now, outcomes)
        return outcomes

    def _remember(self, pool: str, reading: MetricReading) -> None:
        """Feed the pool's rolling history with what this tick's reading saw."""
        store = self.history[pool]
        for t, v in reading.history:
            if v is not None:
                store.put(t, v)
        if reading.as_of is not None and reading.calls is not None:
            store.put(reading.as_of, reading.calls)

    def _read_quota(self, pools: Sequence[PoolConfig]) -> dict[str, Mapping[str, QuotaUsage]]:
        usage: dict[str, Mapping[str, QuotaUsage]] = {}
        for location in sorted({self.config.location_of(p) for p in pools}):
            try:
                usage[location] = self.quota.usage(location)
            except AdapterError as err:
                self.log.warning("quota.read_failed", location=location, error=str(err))
        return usage

    def _act(self, pool: PoolConfig, d: Decision, now: float) -> PoolOutcome:
        self.states[pool.name] = d.state
        self.log.info(
            "decision.made",
            pool=pool.name,
            current=d.current,
            desired=d.desired,
            reason=str(d.reason),
            recommended=d.recommended,
            policy=d.policy,
            calls=d.calls,
            metric_status=str(d.metric_status),
            steps=[f"{s.stage}={s.value}:{s.reason}" for s in d.steps],
            detail=d.detail or None,
        )
        if d.metric_status is not MetricStatus.OK:
            self.log.warning(f"metrics.{d.metric_status}", pool=pool.name, detail=d.detail or None)
        if d.reason is Reason.QUOTA_LIMITED:
            self.log.warning(
                "quota.limited",
                pool=pool.name,
                current=d.current,
                desired=d.desired,
                detail=d.detail,
            )
        base = PoolOutcome(pool.name, d.current, d.desired, str(d.reason), decision=d)
        if d.desired == d.current:
            return base
        if self.dry_run:
            self.log.info(
                "scale.dry_run",
                pool=pool.name,
                current=d.current,
                desired=d.desired,
                reason=str(d.reason),
            )
            return PoolOutcome(
                pool.name, d.current, d.desired, str(d.reason), dry_run=True, decision=d
            )
        if self.stopping.is_set():
            self.log.info("scale.skipped_stopping", pool=pool.name, desired=d.desired)
            return base
        try:
            handle = self.actuator.resize(pool, d.desired)
        except AdapterError as err:
            self.log.error(
                "scale.failed",
                pool=pool.name,
                current=d.current,
                desired=d.desired,
                error=str(err),
                code=err.code or None,
            )
            return PoolOutcome(
                pool.name, d.current, d.desired, str(d.reason), error=str(err), decision=d
            )
        self.inflight[pool.name] = _InFlight(handle, d.desired, now)
        self.states[pool.name] = record_scale(d.state, now=now, change=d.change)
        self.log.info(
            "scale.applied",
            pool=pool.name,
            current=d.current,
            desired=d.desired,
            reason=str(d.reason),
        )
        return PoolOutcome(pool.name, d.current, d.desired, str(d.reason), applied=True, decision=d)

    def _reap_finished(self) -> None:
        for name, op in list(self.inflight.items()):
            if not op.handle.done():
                continue
            del self.inflight[name]
            try:
                op.handle.result(0)
            except AdapterError as err:
                self.log.error(
                    "scale.failed",
                    pool=name,
                    desired=op.target,
                    error=str(err),
                    code=err.code or None,
                )
            else:
                self.log.info("scale.completed", pool=name, capacity=op.target)

    def wait_for_resizes(self, timeout: float) -> dict[str, str | None]:
        """Wait (``once``) for the resizes started by this process; pool → error or ``None``."""
        deadline = self.clock.now() + timeout
        results: dict[str, str | None] = {}
        for name, op in list(self.inflight.items()):
            remaining = max(0.0, deadline - self.clock.now())
            try:
                op.handle.result(remaining)
            except AdapterError as err:
                results[name] = str(err)
            except TimeoutError as err:
                results[name] = str(err)
                continue
            del self.inflight[name]
            results.setdefault(name, None)
        return results

    # -- the loop -----------------------------------------------------------------------------

    def safe_tick(self) -> None:
        """A tick that never raises: the loop must survive anything one tick meets."""
        try:
            self.tick()
        except Exception:
            self.log.exception("tick.failed")

    def run(
        self,
        stop: threading.Event,
        *,
        period_seconds: float | None = None,
        until: Callable[[], bool] | None = None,
    ) -> bool:
        """Tick every ``period_seconds`` (default ``[daemon] interval_seconds``) until ``stop``
        is set (by a signal) or ``until()`` says so. Returns ``False`` if a tick was still
        running when the shutdown deadline passed."""
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        period = period_seconds or self.config.daemon.interval_seconds

        def job() -> None:
            if stop.is_set():
                return
            self.safe_tick()
            if until is not None and until():
                stop.set()

        scheduler = BackgroundScheduler(timezone=UTC)

        def overrun(event: Any) -> None:
            self.log.warning("tick.overrun", period_seconds=period)

        scheduler.add_listener(overrun, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        scheduler.add_job(
            job,
            IntervalTrigger(seconds=period, timezone=UTC),
            id="tick",
            next_run_time=datetime.now(UTC) + timedelta(milliseconds=1),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(period)),
        )
        scheduler.start()
        self.log.info(
            "daemon.started",
            pools=[p.name for p in self.config.pools],
            interval_seconds=self.config.daemon.interval_seconds,
            dry_run=self.dry_run,
        )
        try:
            while not stop.wait(0.5):
                pass
        finally:
            self.stopping.set()
            scheduler.shutdown(wait=False)
        finished = self._tick_lock.acquire(timeout=self.config.daemon.shutdown_deadline_seconds)
        if finished:
            self._tick_lock.release()
        self.log.info(
            "daemon.stopped",
            ticks=self.ticks,
            clean=finished,
            resizes_in_flight=sorted(self.inflight),
        )
        return finished
